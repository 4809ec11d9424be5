//! Strict decoding helpers shared by the header, claims and JWKS parsers: JSON objects that
//! reject duplicate member names at any depth, and canonical unpadded base64url.

use std::cell::Cell;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Why a text is not a strict JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON at all (syntax, bad escapes, lone surrogates, numbers out of range, nesting).
    Invalid,
    /// Valid JSON, but some object repeats a member name.
    DuplicateMember,
    /// Valid JSON, but the top level is not an object.
    NotAnObject,
}

/// Parses `text` as one JSON object, refusing duplicate member names at any depth.
///
/// serde_json keeps the last of two equal names silently; a signed claim set must have exactly
/// one reading, so here a repeat is an error. Nesting is bounded by serde_json's recursion limit.
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, JsonError> {
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = StrictSeed {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match parsed {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JsonError::NotAnObject),
        Err(_) if duplicate.get() => Err(JsonError::DuplicateMember),
        Err(_) => Err(JsonError::Invalid),
    }
}

/// Decodes canonical base64url without padding: only `A–Z a–z 0–9 - _`, no `=`, no whitespace,
/// no standard-alphabet `+ /`, and unused trailing bits must be zero (one text per byte string).
/// The engine enforces all of it (URL-safe alphabet, padding refused, trailing bits checked);
/// the test below pins each case.
pub(crate) fn decode_b64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Builds a `serde_json::Value`, failing (and flagging it) on a repeated member name.
#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    duplicate: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            // One search per member: the slot found empty is the one filled.
            match map.entry(key) {
                Entry::Occupied(_) => {
                    self.duplicate.set(true);
                    return Err(de::Error::custom("duplicate member name"));
                }
                Entry::Vacant(slot) => {
                    slot.insert(access.next_value_seed(self)?);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_parse_and_keep_values() {
        let map = parse_object(r#" {"a":1,"b":[true,null,"x"],"c":{"d":-2.5}} "#);
        let map = map.unwrap_or_default();
        assert_eq!(map.get("a"), Some(&Value::from(1)));
        assert_eq!(map["c"]["d"], Value::from(-2.5));
        assert_eq!(map["b"][2], Value::from("x"));
    }

    #[test]
    fn duplicates_are_refused_at_any_depth() {
        for text in [
            r#"{"iss":"a","iss":"b"}"#,
            r#"{"a":{"x":1,"x":1}}"#,
            r#"{"a":[{"x":1,"x":2}]}"#,
            r#"{"a":1,"\u0061":2}"#,
        ] {
            assert_eq!(
                parse_object(text),
                Err(JsonError::DuplicateMember),
                "{text}"
            );
        }
    }

    #[test]
    fn non_objects_and_invalid_json_are_refused() {
        assert_eq!(parse_object("[1]"), Err(JsonError::NotAnObject));
        assert_eq!(parse_object("\"x\""), Err(JsonError::NotAnObject));
        for text in [
            "",
            "{",
            "{} {}",
            "{\"a\":1e400}",
            "{\"a\":\"\\ud800\"}",
            "{'a':1}",
            "{\"a\":NaN}",
        ] {
            assert_eq!(parse_object(text), Err(JsonError::Invalid), "{text:?}");
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse_object(&deep), Err(JsonError::Invalid));
    }

    proptest::proptest! {
        /// Whatever the text, what decodes is URL-safe alphabet only and re-encodes to itself.
        #[test]
        fn base64url_decodes_only_canonical_text(text in "[A-Za-z0-9_+/= .\n-]{0,12}") {
            if let Some(bytes) = decode_b64url(&text) {
                proptest::prop_assert!(text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                proptest::prop_assert_eq!(URL_SAFE_NO_PAD.encode(bytes), text);
            }
        }
    }

    #[test]
    fn base64url_is_strict_and_canonical() {
        assert_eq!(decode_b64url("aGk"), Some(b"hi".to_vec()));
        assert_eq!(decode_b64url(""), Some(Vec::new()));
        assert_eq!(decode_b64url("_-8"), Some(vec![0xff, 0xef]));
        for bad in [
            "aGk=", "aGk==", "aG k", "aGk\n", " aGk", "+/8", "aG+", "aG/", "aGl", "a", "aGk.",
            "aGkä", "aGk\0", "=aGk",
        ] {
            assert_eq!(decode_b64url(bad), None, "{bad:?}");
        }
    }
}
