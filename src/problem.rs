//! The runtime's rejections (a request that never ran) and their RFC 9457 problem details.
//!
//! Every layer reports its own error type; this is the one place they become the contract's
//! statuses and problem types. Problem bodies are generic on purpose: they never echo the token
//! or its claims, and an authentication failure does not say which check failed (the precise
//! reason goes to the logs only).

use serde::Serialize;

/// Base of the problem type URIs of the runtime's own rejections.
pub const PROBLEM_BASE: &str = "https://mozaiks.ai/problems/runtime/";

/// RFC 9457 problem details, as carried in `error` (direct) or as an HTTP problem body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// Problem type URI.
    #[serde(rename = "type")]
    pub type_: String,
    /// HTTP status code of the problem.
    pub status: u16,
    /// Short, human-readable summary of the problem type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Explanation specific to this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Reference to the occurrence (for workflow errors, the JSON pointer of the task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// Why a request was rejected before (or instead of) running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The payload or body is not what the contract describes.
    Malformed(String),
    /// The HTTP body is not declared as JSON.
    UnsupportedMediaType,
    /// The input exceeds the configured limit (bytes).
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The launch token is missing, malformed, invalid or expired. The reason is for logs only.
    InvalidToken {
        /// Internal reason (logged, never returned).
        reason: &'static str,
    },
    /// The launch token is valid but lacks the required scope.
    InsufficientScope {
        /// The scope the runtime requires.
        scope: String,
    },
    /// The token names a workflow this deployment does not bundle.
    UnknownWorkflow,
    /// The continuation is tampered, foreign, expired or was never issued. The reason is for
    /// logs only.
    InvalidContinuation {
        /// Internal reason (logged, never returned), e.g. `tampered`, `foreign`, `expired`.
        reason: &'static str,
    },
    /// The HTTP event carries more header fields or bytes than the runtime reads
    /// (`invoke::headers`).
    HeadersTooLarge,
    /// No such HTTP route.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
}

impl Rejection {
    /// HTTP status of this rejection.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Malformed(_) | Rejection::InvalidContinuation { .. } => 400,
            Rejection::InvalidToken { .. } => 401,
            Rejection::InsufficientScope { .. } => 403,
            Rejection::UnknownWorkflow | Rejection::NotFound => 404,
            Rejection::MethodNotAllowed => 405,
            Rejection::TooLarge { .. } => 413,
            Rejection::HeadersTooLarge => 431,
            Rejection::UnsupportedMediaType => 415,
        }
    }

    /// Stable reason for logs (never includes caller data).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed_request",
            Rejection::UnsupportedMediaType => "unsupported_media_type",
            Rejection::TooLarge { .. } => "input_too_large",
            Rejection::HeadersTooLarge => "headers_too_large",
            Rejection::InvalidToken { reason } => reason,
            Rejection::InsufficientScope { .. } => "insufficient_scope",
            Rejection::UnknownWorkflow => "unknown_workflow",
            Rejection::InvalidContinuation { .. } => "invalid_continuation",
            Rejection::NotFound => "not_found",
            Rejection::MethodNotAllowed => "method_not_allowed",
        }
    }

    /// The `WWW-Authenticate` challenge an HTTP answer carries (RFC 6750), if any.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Rejection::InvalidToken { .. } => Some(r#"Bearer error="invalid_token""#.to_owned()),
            Rejection::InsufficientScope { scope } => Some(format!(
                r#"Bearer error="insufficient_scope", scope="{scope}""#
            )),
            _ => None,
        }
    }

    /// The problem details for this rejection.
    pub fn problem(&self) -> Problem {
        let (slug, title, detail): (&str, &str, String) = match self {
            Rejection::Malformed(detail) => {
                ("malformed-request", "Malformed request", detail.clone())
            }
            Rejection::UnsupportedMediaType => (
                "unsupported-media-type",
                "Unsupported media type",
                "the body must be JSON: send Content-Type: application/json".to_owned(),
            ),
            Rejection::TooLarge { limit } => (
                "input-too-large",
                "Input too large",
                format!("the execution input exceeds the limit of {limit} bytes"),
            ),
            Rejection::HeadersTooLarge => (
                "headers-too-large",
                "Request header fields too large",
                format!(
                    "the request carries more than {} header fields or {} bytes of headers",
                    crate::invoke::headers::MAX_HEADER_FIELDS,
                    crate::invoke::headers::MAX_HEADER_BYTES
                ),
            ),
            Rejection::InvalidToken { .. } => (
                "invalid-token",
                "Invalid launch token",
                "the launch token is missing, malformed, expired or not valid for this runtime"
                    .to_owned(),
            ),
            Rejection::InsufficientScope { scope } => (
                "insufficient-scope",
                "Insufficient scope",
                format!("the launch token does not carry the scope `{scope}`"),
            ),
            Rejection::UnknownWorkflow => (
                "unknown-workflow",
                "Unknown workflow",
                "the workflow named by the launch token is not bundled with this deployment"
                    .to_owned(),
            ),
            Rejection::InvalidContinuation { .. } => (
                "invalid-continuation",
                "Invalid continuation",
                "the continuation is not valid for this execution".to_owned(),
            ),
            Rejection::NotFound => (
                "not-found",
                "Not found",
                "no such resource: send POST /executions".to_owned(),
            ),
            Rejection::MethodNotAllowed => (
                "method-not-allowed",
                "Method not allowed",
                "/executions accepts POST only".to_owned(),
            ),
        };
        Problem {
            type_: format!("{PROBLEM_BASE}{slug}"),
            status: self.status(),
            title: Some(title.to_owned()),
            detail: Some(detail),
            instance: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_challenges_follow_the_contract() {
        let token = Rejection::InvalidToken {
            reason: "bad_signature",
        };
        assert_eq!(token.status(), 401);
        assert_eq!(
            token.www_authenticate().as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
        // The internal reason never reaches the caller.
        assert!(!serde_json::to_string(&token.problem())
            .unwrap()
            .contains("signature"));
        let scope = Rejection::InsufficientScope {
            scope: "workflow:execute".into(),
        };
        assert_eq!(scope.status(), 403);
        assert_eq!(
            scope.www_authenticate().as_deref(),
            Some(r#"Bearer error="insufficient_scope", scope="workflow:execute""#)
        );
        assert_eq!(Rejection::TooLarge { limit: 1 }.status(), 413);
        assert_eq!(Rejection::UnsupportedMediaType.status(), 415);
        assert_eq!(Rejection::MethodNotAllowed.status(), 405);
        assert_eq!(Rejection::UnknownWorkflow.status(), 404);
        assert_eq!(Rejection::Malformed("x".into()).problem().status, 400);
        // A continuation's refusal reason stays in the logs too.
        let continuation = Rejection::InvalidContinuation { reason: "foreign" };
        assert_eq!(continuation.status(), 400);
        assert_eq!(continuation.reason(), "invalid_continuation");
        assert!(continuation.www_authenticate().is_none());
        let body = serde_json::to_string(&continuation.problem()).unwrap();
        assert!(!body.contains("foreign"), "{body}");
        assert!(body.contains("invalid-continuation"), "{body}");
        assert!(Rejection::NotFound
            .problem()
            .type_
            .starts_with(PROBLEM_BASE));
    }
}
