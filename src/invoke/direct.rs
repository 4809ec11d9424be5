//! Direct invocation (CONTRACT §2): `{ "launch_token", "input"?, "continuation"? }` in, the
//! result object out. Every caller fault is a `rejected` answer, never a function error.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::MALFORMED_PAYLOAD_KEY;
use crate::execution::{App, ExecutionResult, Invocation, Request};
use crate::problem::Rejection;

/// The members of a direct payload, as sent (in order, duplicates kept).
struct Members<'a>(Vec<(std::borrow::Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> serde::de::Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// The fields a direct payload may carry.
const FIELDS: [&str; 3] = ["launch_token", "input", "continuation"];

/// A field name as a detail may quote it: a short identifier. Anything else sent as a name
/// could be a credential pasted in the wrong place, so it is not repeated.
fn quoted_field(name: &str) -> String {
    if name.len() <= 32 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!("`{name}`")
    } else {
        "a field whose name is not shown".into()
    }
}

/// The parts of a well-formed direct payload.
#[derive(Debug, PartialEq)]
pub struct DirectRequest {
    /// The launch token, if present.
    pub token: Option<String>,
    /// The input (`{}` when absent or null).
    pub input: Value,
    /// Size of the input as sent, in bytes.
    pub input_bytes: usize,
    /// The continuation, if present.
    pub continuation: Option<String>,
}

/// Parses a direct payload. Input larger than `max_input_bytes` is refused before it is parsed.
pub fn parse(payload: &RawValue, max_input_bytes: usize) -> Result<DirectRequest, Rejection> {
    let text = payload.get();
    if !text.trim_start().starts_with('{') {
        return Err(Rejection::Malformed(
            "the payload must be a JSON object: { \"launch_token\": …, \"input\": … }".into(),
        ));
    }
    if let Ok(marker) = serde_json::from_str::<serde_json::Map<String, Value>>(text) {
        if marker.len() == 1 {
            if let Some(Value::String(e)) = marker.get(MALFORMED_PAYLOAD_KEY) {
                return Err(Rejection::Malformed(format!(
                    "the payload is not valid JSON: {e}"
                )));
            }
        }
    }
    let Members(members) = serde_json::from_str(text)
        .map_err(|_| Rejection::Malformed("the payload must be a JSON object".into()))?;
    let mut fields: [Option<&RawValue>; 3] = [None; 3];
    for (name, value) in members {
        let Some(slot) = FIELDS.iter().position(|field| *field == name) else {
            return Err(Rejection::Malformed(format!(
                "invalid payload: unknown field {}, expected one of `launch_token`, `input`, \
                 `continuation`",
                quoted_field(&name)
            )));
        };
        if fields[slot].replace(value).is_some() {
            return Err(Rejection::Malformed(format!(
                "invalid payload: duplicate field `{}`",
                FIELDS[slot]
            )));
        }
    }
    let [launch_token, input, continuation] = fields;
    let string_field = |raw: Option<&RawValue>, name: &str| -> Result<Option<String>, Rejection> {
        match raw {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str::<String>(raw.get())
                .map(Some)
                .map_err(|_| Rejection::Malformed(format!("`{name}` must be a string"))),
        }
    };
    let token = string_field(launch_token, "launch_token")?;
    let continuation = string_field(continuation, "continuation")?;
    let (input, input_bytes) = match input {
        None => (Value::Object(Default::default()), 0),
        Some(raw) => {
            let bytes = raw.get().len();
            if bytes > max_input_bytes {
                return Err(Rejection::TooLarge {
                    limit: max_input_bytes,
                });
            }
            match serde_json::from_str::<Value>(raw.get()) {
                Ok(Value::Null) => (Value::Object(Default::default()), bytes),
                Ok(value) => (value, bytes),
                Err(e) => return Err(Rejection::Malformed(format!("invalid `input`: {e}"))),
            }
        }
    };
    Ok(DirectRequest {
        token,
        input,
        input_bytes,
        continuation,
    })
}

/// Handles a direct invocation: parse → authenticate → execute.
pub async fn handle(app: &App, payload: &RawValue, invocation: &Invocation) -> ExecutionResult {
    let parsed = match parse(payload, app.max_input_bytes()) {
        Ok(parsed) => parsed,
        Err(rejection) => return invocation.reject(rejection),
    };
    let context = match app.authenticate(parsed.token.as_deref()) {
        Ok(context) => context,
        Err(rejection) => return invocation.reject(rejection),
    };
    let request = Request {
        context,
        input: parsed.input,
        input_bytes: parsed.input_bytes,
        continuation: parsed.continuation,
    };
    app.execute(request, invocation).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_str(s: &str) -> Result<DirectRequest, Rejection> {
        let raw: Box<RawValue> = serde_json::from_str(s).unwrap();
        parse(&raw, 64)
    }

    fn malformed(s: &str) -> String {
        match parse_str(s) {
            Err(Rejection::Malformed(detail)) => detail,
            other => panic!("expected malformed for {s}, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_contract_shape() {
        let r = parse_str(r#"{"launch_token":"t","input":{"a":1},"continuation":"c"}"#).unwrap();
        assert_eq!(r.token.as_deref(), Some("t"));
        assert_eq!(r.input, json!({"a": 1}));
        assert_eq!(r.input_bytes, 7);
        assert_eq!(r.continuation.as_deref(), Some("c"));
        let r = parse_str(r#"{"launch_token":"t"}"#).unwrap();
        assert_eq!(r.input, json!({}));
        let r = parse_str(r#"{"launch_token":"t","input":null}"#).unwrap();
        assert_eq!(r.input, json!({}));
        let r = parse_str(r#"{"input":[1]}"#).unwrap();
        assert_eq!(r.token, None);
        assert_eq!(r.input, json!([1]));
    }

    #[test]
    fn rejects_bad_shapes_with_a_clear_detail() {
        assert!(malformed(r#"[]"#).contains("JSON object"));
        assert!(malformed(r#""eyJhbGciOi.x.y""#).contains("JSON object"));
        assert!(malformed(r#"{"launch_token":"t","extra":1}"#).contains("unknown field `extra`"));
        assert!(malformed(r#"{"launch_token":"t","launch_token":"u"}"#).contains("duplicate field"));
        assert!(malformed(r#"{"launch_token":42}"#).contains("`launch_token` must be a string"));
        assert!(malformed(r#"{"launch_token":"t","continuation":{}}"#).contains("`continuation`"));
        let detail = malformed(&format!(
            r#"{{"{MALFORMED_PAYLOAD_KEY}":"expected value at line 1 column 1"}}"#
        ));
        assert!(detail.contains("not valid JSON"));
    }

    #[test]
    fn refuses_large_input_before_parsing_it() {
        let big = format!(r#"{{"launch_token":"t","input":"{}"}}"#, "x".repeat(100));
        assert_eq!(parse_str(&big), Err(Rejection::TooLarge { limit: 64 }));
    }

    #[test]
    fn errors_never_echo_the_token() {
        let detail = malformed(r#"{"launch_token":["eyJsecret"]}"#);
        assert!(!detail.contains("eyJsecret"));
        // A token sent as a field name is not repeated either.
        let detail = malformed(r#"{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln":1}"#);
        assert!(
            detail.contains("unknown field") && !detail.contains("eyJ"),
            "{detail}"
        );
    }
}
