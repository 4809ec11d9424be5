//! The headers of an HTTP event, checked before any header map is built.
//!
//! An event is JSON that anyone who can invoke the function can write, so its `headers` and
//! `multiValueHeaders` can hold far more than any front door forwards (tens of thousands of
//! names, which the `http` crate's header map refuses by aborting the process) or bytes a
//! header cannot carry (control characters). This pass reads just those two members of the
//! event, counts fields and bytes against [`MAX_HEADER_FIELDS`] and [`MAX_HEADER_BYTES`], and
//! checks every name and value by the rules the header map applies, so the event parse that
//! follows cannot fail or abort on a header. What it reports names the header and the rule,
//! never a value (a header can carry a credential).

use serde::Deserialize;
use serde_json::Value;

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

/// The two members of an event that hold headers (every other member is skipped unread).
#[derive(Deserialize)]
struct Members {
    #[serde(default)]
    headers: Value,
    #[serde(default, rename = "multiValueHeaders")]
    multi_value_headers: Value,
}

/// Checks the `headers` and `multiValueHeaders` members of an HTTP event's JSON text. Text that
/// is not a JSON object, or members of other shapes, are left to the event parse (whose errors
/// are reported without values).
pub fn check(event: &str) -> Result<(), HeaderFault> {
    let Ok(members) = serde_json::from_str::<Members>(event) else {
        return Ok(());
    };
    let mut scan = Scan::default();
    for member in [&members.headers, &members.multi_value_headers] {
        let Value::Object(headers) = member else {
            continue;
        };
        for (name, values) in headers {
            check_name(name)?;
            match values {
                Value::Null => {}
                Value::String(value) => scan.field(name, value)?,
                // Strings are checked; any other element (byte arrays) still counts as a field.
                Value::Array(items) => {
                    for item in items {
                        scan.field(name, item.as_str().unwrap_or_default())?;
                    }
                }
                _ => scan.field(name, "")?,
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Scan {
    fields: usize,
    bytes: usize,
}

impl Scan {
    /// Records one field.
    fn field(&mut self, name: &str, value: &str) -> Result<(), HeaderFault> {
        self.fields += 1;
        self.bytes += name.len();
        if !name.eq_ignore_ascii_case(super::http::CONTINUATION_HEADER) {
            self.bytes += value.len();
        }
        if self.fields > MAX_HEADER_FIELDS || self.bytes > MAX_HEADER_BYTES {
            return Err(HeaderFault::TooLarge);
        }
        if let Some(byte) = value.bytes().find(|&b| !is_value_byte(b)) {
            return Err(HeaderFault::Invalid(format!(
                "the value of header {} holds a control character (0x{byte:02x}), which a header \
                 value cannot carry",
                quoted(name)
            )));
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), HeaderFault> {
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(HeaderFault::Invalid(
            "a header name is empty or holds a character a header name cannot carry (RFC 9110 \
             token characters only)"
                .into(),
        ));
    }
    Ok(())
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
