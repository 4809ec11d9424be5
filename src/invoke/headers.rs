//! The headers of an HTTP event, checked before any header map is built.
//!
//! An event is JSON that anyone who can invoke the function can write, so its `headers` and
//! `multiValueHeaders` can hold far more than any front door forwards (tens of thousands of
//! names, which the `http` crate's header map refuses by aborting the process) or bytes a
//! header cannot carry (control characters). This pass walks those two members of the event
//! text once, without allocating, counts fields and bytes against [`MAX_HEADER_FIELDS`] and
//! [`MAX_HEADER_BYTES`], and checks every name and value by the rules the header map applies,
//! so the event parse that follows cannot fail or abort on a header. What it reports names
//! the header and the rule, never a value (a header can carry a credential).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Most header fields an event may carry: each value of a multi-valued header counts, and a
/// name present in both `headers` and `multiValueHeaders` counts in each. Browsers send about
/// 20; API Gateway forwards at most 10 KiB of headers, an ALB 64 KiB.
pub const MAX_HEADER_FIELDS: usize = 1024;

/// Most bytes of header names and values an event may carry (64 KiB, the most any HTTP front
/// door of Lambda forwards). The value of `Mozaiks-Continuation` is not counted: its own limit,
/// `MOZAIKS_CONTINUATION_MAX_BYTES`, applies to it.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Longest header name quoted in a problem detail; longer names are not quoted.
const MAX_QUOTED_NAME: usize = 64;

/// Why an event's headers were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderFault {
    /// More fields or bytes than the limits allow (431).
    TooLarge,
    /// A name or value a header cannot hold (400); the text names the header and the rule.
    Invalid(String),
}

/// Checks the `headers` and `multiValueHeaders` members of an HTTP event's JSON text. Text that
/// is not a JSON object, or members of other shapes, are left to the event parse (whose errors
/// are reported without values).
pub fn check(event: &str) -> Result<(), HeaderFault> {
    let mut scan = Scan::default();
    let mut de = serde_json::Deserializer::from_str(event);
    let _ = (&mut de).deserialize_map(EventVisitor { scan: &mut scan });
    match scan.fault {
        Some(fault) => Err(fault),
        None => Ok(()),
    }
}

#[derive(Default)]
struct Scan {
    fields: usize,
    bytes: usize,
    fault: Option<HeaderFault>,
}

impl Scan {
    /// Records one field; `Err` stops the walk once a fault is recorded.
    fn field<E: de::Error>(&mut self, name: &str, value: &str) -> Result<(), E> {
        self.fields += 1;
        self.bytes += name.len();
        if !name.eq_ignore_ascii_case(super::http::CONTINUATION_HEADER) {
            self.bytes += value.len();
        }
        if self.fields > MAX_HEADER_FIELDS || self.bytes > MAX_HEADER_BYTES {
            return self.stop(HeaderFault::TooLarge);
        }
        if let Some(byte) = value.bytes().find(|&b| !is_value_byte(b)) {
            return self.stop(HeaderFault::Invalid(format!(
                "the value of header {} holds a control character (0x{byte:02x}), which a header \
                 value cannot carry",
                quoted(name)
            )));
        }
        Ok(())
    }

    fn name<E: de::Error>(&mut self, name: &str) -> Result<(), E> {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return self.stop(HeaderFault::Invalid(
                "a header name is empty or holds a character a header name cannot carry (RFC 9110 \
                 token characters only)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn stop<E: de::Error>(&mut self, fault: HeaderFault) -> Result<(), E> {
        self.fault = Some(fault);
        Err(E::custom("header check stopped"))
    }
}

/// A header name as a problem detail may quote it: a valid token of reasonable length.
fn quoted(name: &str) -> String {
    if name.len() <= MAX_QUOTED_NAME {
        format!("`{}`", name.to_ascii_lowercase())
    } else {
        "(a long name)".into()
    }
}

/// Bytes `http::HeaderValue` accepts: visible ASCII, space, tab and obs-text.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

struct EventVisitor<'s> {
    scan: &'s mut Scan,
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an HTTP event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "headers" || key == "multiValueHeaders" {
                map.next_value_seed(HeadersSeed {
                    scan: &mut *self.scan,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// One `headers` / `multiValueHeaders` member: `null` or an object of name → value(s).
struct HeadersSeed<'s> {
    scan: &'s mut Scan,
}

impl<'de> DeserializeSeed<'de> for HeadersSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeadersSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of header names and values")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            self.scan.name(&name)?;
            map.next_value_seed(ValuesSeed {
                scan: &mut *self.scan,
                name: &name,
            })?;
        }
        Ok(())
    }

    // Other shapes are the event parse's to refuse.
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
}

/// The value(s) of one header: a string, an array of them, or `null`.
struct ValuesSeed<'s, 'n> {
    scan: &'s mut Scan,
    name: &'n str,
}

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a header value or an array of them")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.scan.field(self.name, value)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Strings are checked; any other element (byte arrays) still counts as a field.
        while let Some(element) = seq.next_element::<Element<'de>>()? {
            match element {
                Element::Text(text) => self.scan.field(self.name, &text)?,
                Element::Other => self.scan.field(self.name, "")?,
            }
        }
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scan.field(self.name, "")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scan.field(self.name, "")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scan.field(self.name, "")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scan.field(self.name, "")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.scan.field(self.name, "")
    }
}

/// An element of a multi-value array.
enum Element<'de> {
    Text(std::borrow::Cow<'de, str>),
    Other,
}

impl<'de> de::Deserialize<'de> for Element<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementVisitor;
        impl<'de> Visitor<'de> for ElementVisitor {
            type Value = Element<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Element<'de>, E> {
                Ok(Element::Text(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Element<'de>, E> {
                Ok(Element::Text(v.to_owned().into()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Element<'de>, E> {
                Ok(Element::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Element<'de>, E> {
                Ok(Element::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Element<'de>, E> {
                Ok(Element::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Element<'de>, E> {
                Ok(Element::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Element<'de>, E> {
                Ok(Element::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Element::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Element::Other)
            }
        }
        deserializer.deserialize_any(ElementVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event_with(member: &str, headers: serde_json::Value) -> String {
        json!({ "version": "2.0", member: headers, "body": "{}" }).to_string()
    }

    #[test]
    fn ordinary_headers_pass() {
        let event = event_with(
            "headers",
            json!({ "Authorization": "Bearer a.b.c", "content-type": "application/json; charset=utf-8", "x-caf\u{e9}": "ok" }),
        );
        // A non-token name is refused; the plain ones pass.
        assert!(matches!(check(&event), Err(HeaderFault::Invalid(_))));
        let event = event_with(
            "multiValueHeaders",
            json!({ "Accept": ["a", "b\tc", "caf\u{e9}"], "X-Null": null }),
        );
        assert_eq!(check(&event), Ok(()));
        assert_eq!(check("{}"), Ok(()));
        assert_eq!(check("not json"), Ok(()));
        assert_eq!(
            check(r#"{"headers": null, "multiValueHeaders": 3}"#),
            Ok(())
        );
    }

    #[test]
    fn too_many_fields_or_bytes_are_refused() {
        let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_HEADER_FIELDS)
            .map(|i| (format!("x-h{i}"), json!("v")))
            .collect();
        assert_eq!(
            check(&event_with("headers", many.clone().into())),
            Err(HeaderFault::TooLarge)
        );
        let multi: serde_json::Map<String, serde_json::Value> = many
            .into_iter()
            .map(|(name, value)| (name, json!([value])))
            .collect();
        assert_eq!(
            check(&event_with("multiValueHeaders", multi.into())),
            Err(HeaderFault::TooLarge)
        );
        let values = vec![json!("x"); MAX_HEADER_FIELDS + 1];
        assert_eq!(
            check(&event_with("multiValueHeaders", json!({ "a": values }))),
            Err(HeaderFault::TooLarge)
        );
        let long = "v".repeat(MAX_HEADER_BYTES);
        assert_eq!(
            check(&event_with("headers", json!({ "x-long": long }))),
            Err(HeaderFault::TooLarge)
        );
        // The continuation's value has its own limit.
        let continuation = "A".repeat(MAX_HEADER_BYTES * 2);
        assert_eq!(
            check(&event_with(
                "headers",
                json!({ "Mozaiks-Continuation": continuation })
            )),
            Ok(())
        );
    }

    #[test]
    fn bad_bytes_are_named_by_header_never_quoted() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        for value in [
            format!("Bearer {token}\u{7f}"),
            format!("Bearer {token}\n"),
            format!("Bearer {token}\u{0}"),
        ] {
            for member in ["headers", "multiValueHeaders"] {
                let headers = if member == "headers" {
                    json!({ "Authorization": value })
                } else {
                    json!({ "Authorization": [value] })
                };
                let Err(HeaderFault::Invalid(detail)) = check(&event_with(member, headers)) else {
                    panic!("{member}: {value:?} passed");
                };
                assert!(detail.contains("`authorization`"), "{detail}");
                assert!(
                    !detail.contains(token) && !detail.contains("Bearer"),
                    "{detail}"
                );
            }
        }
        let Err(HeaderFault::Invalid(detail)) = check(&event_with(
            "headers",
            json!({ format!("x-{token}\n"): "v" }),
        )) else {
            panic!("a bad name passed");
        };
        assert!(!detail.contains(token), "{detail}");
    }
}
