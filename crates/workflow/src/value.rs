//! Conversions between `serde_json::Value` (the engine's edges) and jaq's `Val` (its inside).
//!
//! Workflow data stays a jaq `Val` for the whole run (cheap clones: arrays and objects are
//! reference counted), so JSON is converted once on the way in and once on the way out.

use jaq_json::{Map, Num, Val};
use serde_json::Value;
use std::time::SystemTime;

/// Deepest nesting converted back to JSON; deeper values are reported, not overflowed.
const MAX_DEPTH: usize = 512;

/// Converts owned JSON into a jaq value (strings are moved, not copied).
pub(crate) fn from_json(value: Value) -> Val {
    match value {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(b),
        Value::Number(n) => from_number(&n),
        Value::String(s) => Val::from(s),
        Value::Array(items) => items.into_iter().map(from_json).collect(),
        Value::Object(entries) => Val::obj(
            entries
                .into_iter()
                .map(|(k, v)| (Val::from(k), from_json(v)))
                .collect(),
        ),
    }
}

/// Converts borrowed JSON into a jaq value.
pub(crate) fn from_json_ref(value: &Value) -> Val {
    match value {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => from_number(n),
        Value::String(s) => Val::from(s.clone()),
        Value::Array(items) => items.iter().map(from_json_ref).collect(),
        Value::Object(entries) => Val::obj(
            entries
                .iter()
                .map(|(k, v)| (Val::from(k.clone()), from_json_ref(v)))
                .collect(),
        ),
    }
}

fn from_number(n: &serde_json::Number) -> Val {
    if let Some(i) = n.as_i64() {
        Val::Num(Num::from_integral(i))
    } else if let Some(u) = n.as_u64() {
        Val::Num(Num::from_integral(u))
    } else {
        Val::from(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Builds an object value from string keys.
pub(crate) fn object<'a>(entries: impl IntoIterator<Item = (&'a str, Val)>) -> Val {
    Val::obj(
        entries
            .into_iter()
            .map(|(k, v)| (Val::from(k.to_owned()), v))
            .collect::<Map>(),
    )
}

/// Builds a string value.
pub(crate) fn string(s: &str) -> Val {
    Val::from(s.to_owned())
}

/// Converts a jaq value to JSON.
///
/// jq numbers map like jq prints them (NaN → null, ±infinity → ±f64::MAX); byte strings and
/// invalid UTF-8 are converted lossily. Fails on what JSON cannot hold: an object key that is
/// not a string, or nesting deeper than 512 levels.
pub(crate) fn to_json(value: &Val) -> Result<Value, String> {
    to_json_at(value, 0)
}

fn to_json_at(value: &Val, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the value is nested deeper than {MAX_DEPTH} levels, which this runtime does not return"
        ));
    }
    Ok(match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => number_to_json(n),
        Val::TStr(bytes) | Val::BStr(bytes) => Value::String(lossy(bytes)),
        Val::Arr(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json_at(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Val::Obj(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (k, v) in entries.iter() {
                let key = match k {
                    Val::TStr(bytes) | Val::BStr(bytes) => lossy(bytes),
                    other => {
                        return Err(format!(
                            "the object key {} is not a string; JSON object keys must be strings (convert it with `tostring`)",
                            truncate(&other.to_string(), 80)
                        ))
                    }
                };
                map.insert(key, to_json_at(v, depth + 1)?);
            }
            Value::Object(map)
        }
    })
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn number_to_json(n: &Num) -> Value {
    let float = |f: f64| {
        if f.is_nan() {
            Value::Null
        } else {
            let f = f.clamp(f64::MIN, f64::MAX);
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
    };
    match n {
        Num::Int(i) => Value::from(*i as i64),
        Num::Float(f) => float(*f),
        // Big integers and decimal literals: reuse jaq's exact text, fall back to f64.
        Num::BigInt(_) | Num::Dec(_) => {
            let text = n.to_string();
            match serde_json::from_str::<serde_json::Number>(&text) {
                Ok(number) => Value::Number(number),
                Err(_) => float(text.parse::<f64>().unwrap_or(f64::NAN)),
            }
        }
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with `…`.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// The DSL's dateTimeDescriptor of an instant: `{ iso8601, epoch: { seconds, milliseconds } }`.
pub(crate) fn datetime_descriptor(at: SystemTime) -> Val {
    let since = crate::time::since_epoch(at);
    let millis = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
    let epoch = object([
        ("seconds", Val::Num(Num::from_integral(since.as_secs()))),
        ("milliseconds", Val::Num(Num::from_integral(millis))),
    ]);
    object([
        ("iso8601", Val::from(crate::time::rfc3339_millis(at))),
        ("epoch", epoch),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips() {
        let doc = json!({
            "s": "héllo", "i": -42, "u": u64::MAX, "f": 1.5, "b": true, "n": null,
            "a": [1, [2, {"x": []}]], "o": {}
        });
        assert_eq!(to_json(&from_json(doc.clone())), Ok(doc.clone()));
        assert_eq!(to_json(&from_json_ref(&doc)), Ok(doc));
    }

    #[test]
    fn non_string_keys_are_reported() {
        let val = Val::obj([(Val::from(1isize), Val::Null)].into_iter().collect());
        let err = to_json(&val).err().unwrap_or_default();
        assert!(err.contains("key 1 is not a string"), "{err}");
    }

    #[test]
    fn special_floats_map_like_jq() {
        assert_eq!(to_json(&Val::from(f64::NAN)), Ok(Value::Null));
        assert_eq!(to_json(&Val::from(f64::INFINITY)), Ok(json!(f64::MAX)));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut val = Val::Null;
        for _ in 0..(MAX_DEPTH + 2) {
            val = [val].into_iter().collect();
        }
        assert!(to_json(&val).is_err());
    }

    #[test]
    fn describes_instants() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_641_024_000_123);
        assert_eq!(
            to_json(&datetime_descriptor(at)),
            Ok(json!({
                "iso8601": "2022-01-01T08:00:00.123Z",
                "epoch": { "seconds": 1_641_024_000u64, "milliseconds": 1_641_024_000_123u64 }
            }))
        );
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hi", 2), "hi");
    }
}
