//! The edges: a Lambda event becomes a request; a result becomes the response its origin expects.
//!
//! One binary serves both entry points. The event's shape decides which (CONTRACT §2, §3):
//!
//! | shape | origin | answered as |
//! |---|---|---|
//! | `requestContext.elb` | ALB target group | ALB response |
//! | `version: "2.0"` + `requestContext` | HTTP API v2 or Lambda Function URL | v2 response |
//! | `httpMethod` + `requestContext` | REST API v1 | v1 proxy response |
//! | anything else | direct invocation | the §2 object |
//!
//! Nothing outside this module knows Lambda event shapes.

pub mod direct;
pub mod headers;
pub mod http;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tracing::Instrument;

use crate::execution::{new_execution_id, App, ExecutionResult, Invocation};

/// Key of the marker event [`json_guard`] substitutes for a payload that is not JSON.
pub const MALFORMED_PAYLOAD_KEY: &str = "$mozaiks_malformed_payload";

/// What the function answers: a direct-invocation result or an HTTP response of the origin's kind.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// Direct invocation: the object of CONTRACT §2.
    Direct(ExecutionResult),
    /// An HTTP response in the shape its origin expects.
    Http(http::HttpResponse),
}

/// Which entry point an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Lambda Invoke with the §2 payload.
    Direct,
    /// An HTTP event.
    Http(http::Origin),
}

#[derive(Deserialize)]
struct ShapeProbe {
    #[serde(rename = "requestContext")]
    request_context: Option<ContextProbe>,
    #[serde(rename = "httpMethod")]
    http_method: Option<serde::de::IgnoredAny>,
    version: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ContextProbe {
    elb: Option<serde::de::IgnoredAny>,
    http: Option<serde::de::IgnoredAny>,
}

/// Classifies an event by its shape, without deserializing it fully.
pub fn classify(event: &RawValue) -> EventKind {
    let text = event.get();
    if !text.trim_start().starts_with('{') {
        return EventKind::Direct;
    }
    let Ok(probe) = serde_json::from_str::<ShapeProbe>(text) else {
        return EventKind::Direct;
    };
    match probe.request_context {
        Some(ContextProbe { elb: Some(_), .. }) => EventKind::Http(http::Origin::Alb),
        Some(ContextProbe { http: Some(_), .. }) if probe.version.is_some() => {
            EventKind::Http(http::Origin::HttpApiV2)
        }
        Some(_) if probe.http_method.is_some() => EventKind::Http(http::Origin::RestApiV1),
        _ => EventKind::Direct,
    }
}

/// Handles one Lambda invocation. Never fails: every caller fault is an answer.
pub async fn handle(app: &App, event: LambdaEvent<Box<RawValue>>) -> Response {
    let (payload, context) = event.into_parts();
    let invocation = Invocation {
        execution_id: new_execution_id(),
        request_id: context.request_id,
        deadline: deadline_of(context.deadline, SystemTime::now()),
    };
    let span = tracing::info_span!("execution", execution_id = %invocation.execution_id);
    async move {
        match classify(&payload) {
            EventKind::Direct => Response::Direct(direct::handle(app, &payload, &invocation).await),
            EventKind::Http(origin) => {
                Response::Http(http::handle(app, origin, &payload, &invocation).await)
            }
        }
    }
    .instrument(span)
    .await
}

/// Deadlines before this instant (2001-09-09, 10^12 ms) cannot be epoch times.
const EARLIEST_EPOCH_DEADLINE_MS: u64 = 1_000_000_000_000;

/// The invocation deadline from `Lambda-Runtime-Deadline-Ms`. Lambda sends epoch milliseconds;
/// some local emulators (cargo-lambda's among them) send the function timeout in milliseconds
/// instead, which is read as that long from now rather than as a deadline in 1970.
pub fn deadline_of(deadline_ms: u64, now: SystemTime) -> SystemTime {
    if deadline_ms < EARLIEST_EPOCH_DEADLINE_MS {
        now + Duration::from_millis(deadline_ms)
    } else {
        UNIX_EPOCH + Duration::from_millis(deadline_ms)
    }
}

/// Replaces a payload that is not valid JSON by a marker object, so that the handler answers it
/// as a malformed request instead of the runtime reporting a function error. (Lambda's Invoke
/// API already refuses non-JSON payloads; this keeps the guarantee whatever the caller.)
pub fn json_guard(body: bytes::Bytes) -> bytes::Bytes {
    // JSON is UTF-8 (RFC 8259 §8.1). serde skips the strings it ignores without checking them,
    // so the check comes first: the runtime would refuse such bytes as a function error.
    let fault = match std::str::from_utf8(&body) {
        Err(e) => format!(
            "it is not UTF-8 (an invalid byte sequence at byte {})",
            e.valid_up_to()
        ),
        Ok(text) => match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => return body,
            // Syntax errors name a position, never a value.
            Err(e) => e.to_string(),
        },
    };
    let marker = serde_json::json!({ MALFORMED_PAYLOAD_KEY: fault });
    bytes::Bytes::from(marker.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(json: &str) -> EventKind {
        classify(&serde_json::from_str::<Box<RawValue>>(json).unwrap())
    }

    #[test]
    fn classifies_by_shape() {
        assert_eq!(kind(r#"{"launch_token":"x"}"#), EventKind::Direct);
        assert_eq!(kind(r#"[1,2]"#), EventKind::Direct);
        assert_eq!(kind(r#""str""#), EventKind::Direct);
        assert_eq!(
            kind(r#"{"httpMethod":"POST","requestContext":{"elb":{"targetGroupArn":"a"}}}"#),
            EventKind::Http(http::Origin::Alb)
        );
        assert_eq!(
            kind(r#"{"version":"2.0","requestContext":{"http":{"method":"POST"}}}"#),
            EventKind::Http(http::Origin::HttpApiV2)
        );
        assert_eq!(
            kind(r#"{"httpMethod":"POST","requestContext":{"stage":"prod"}}"#),
            EventKind::Http(http::Origin::RestApiV1)
        );
        // A direct payload that merely has a field named like an HTTP one stays direct.
        assert_eq!(kind(r#"{"httpMethod":"POST"}"#), EventKind::Direct);
    }

    #[test]
    fn deadlines_are_epoch_milliseconds_or_an_emulator_timeout() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_560_741);
        let epoch = 1_795_560_744_000;
        assert_eq!(
            deadline_of(epoch, now),
            UNIX_EPOCH + Duration::from_millis(epoch)
        );
        assert_eq!(deadline_of(600_000, now), now + Duration::from_secs(600));
    }

    #[test]
    fn guard_turns_non_json_into_a_marker() {
        let ok = bytes::Bytes::from_static(br#"{"a":1}"#);
        assert_eq!(json_guard(ok.clone()), ok);
        let bad = json_guard(bytes::Bytes::from_static(b"{not json"));
        let v: serde_json::Value = serde_json::from_slice(&bad).unwrap();
        assert!(v[MALFORMED_PAYLOAD_KEY].is_string());
        let trailing = json_guard(bytes::Bytes::from_static(b"{} trailing"));
        assert!(
            serde_json::from_slice::<serde_json::Value>(&trailing).unwrap()[MALFORMED_PAYLOAD_KEY]
                .is_string()
        );
        // Bytes that are not UTF-8 inside a string serde would skip unchecked.
        let raw = json_guard(bytes::Bytes::from_static(
            b"{\"launch_token\":\"\xff\xfe\"}",
        ));
        let marker: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert!(
            marker[MALFORMED_PAYLOAD_KEY]
                .as_str()
                .unwrap()
                .contains("not UTF-8"),
            "{marker}"
        );
    }
}
