//! HTTP events (CONTRACT §3): API Gateway REST v1, HTTP API v2, Lambda Function URLs (v2
//! format) and ALB, parsed with `lambda_http`'s event types and answered in the origin's shape.
//!
//! `POST /executions` (also under one stage prefix, `/prod/executions`) with
//! `Authorization: Bearer <launch token>` and a JSON body that is the input. Checks run in this
//! order: route (404/405) → token (401/403) → media type (415) → size (413) → JSON (400).

use base64::Engine as _;
use lambda_http::aws_lambda_events::alb::{AlbTargetGroupRequest, AlbTargetGroupResponse};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use lambda_http::aws_lambda_events::encodings::Body;
use lambda_http::http::header::{
    HeaderName, HeaderValue, ALLOW, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use lambda_http::http::{HeaderMap, Method};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::headers::HeaderFault;
use crate::execution::{App, ExecutionResult, Invocation, Request};
use crate::problem::{Problem, Rejection};

/// Header carrying a continuation on HTTP (CONTRACT §2a).
pub const CONTINUATION_HEADER: &str = "mozaiks-continuation";

/// Which HTTP front door an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// API Gateway REST API (payload format 1.0).
    RestApiV1,
    /// API Gateway HTTP API or Lambda Function URL (payload format 2.0).
    HttpApiV2,
    /// Application Load Balancer target group.
    Alb,
}

/// An HTTP response in its origin's shape.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum HttpResponse {
    /// REST API v1 proxy response.
    RestApiV1(ApiGatewayProxyResponse),
    /// HTTP API v2 / Function URL response.
    HttpApiV2(ApiGatewayV2httpResponse),
    /// ALB response.
    Alb(AlbTargetGroupResponse),
}

/// The parts of an HTTP event the runtime reads.
#[derive(Debug)]
pub struct HttpRequest {
    /// Request method.
    pub method: Method,
    /// Request path (with the stage prefix, where the origin gives it).
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Request body as delivered.
    pub body: Option<String>,
    /// Whether `body` is base64-encoded.
    pub is_base64_encoded: bool,
}

/// Reads the parts of an event of the given origin.
pub fn parse_event(origin: Origin, event: &RawValue) -> Result<HttpRequest, serde_json::Error> {
    Ok(match origin {
        Origin::RestApiV1 => {
            let e: ApiGatewayProxyRequest = serde_json::from_str(event.get())?;
            // `requestContext.path` includes the stage; `path` does not.
            let path = e.request_context.path.or(e.path).unwrap_or_default();
            let mut headers = e.multi_value_headers;
            for (name, value) in e.headers.iter() {
                if !headers.contains_key(name) {
                    headers.insert(name.clone(), value.clone());
                }
            }
            HttpRequest {
                method: e.http_method,
                path,
                headers,
                body: e.body,
                is_base64_encoded: e.is_base64_encoded,
            }
        }
        Origin::HttpApiV2 => {
            let e: ApiGatewayV2httpRequest = serde_json::from_str(event.get())?;
            HttpRequest {
                method: e.request_context.http.method,
                path: e
                    .raw_path
                    .or(e.request_context.http.path)
                    .unwrap_or_default(),
                headers: e.headers,
                body: e.body,
                is_base64_encoded: e.is_base64_encoded,
            }
        }
        Origin::Alb => {
            let e: AlbTargetGroupRequest = serde_json::from_str(event.get())?;
            let mut headers = e.multi_value_headers;
            for (name, value) in e.headers.iter() {
                if !headers.contains_key(name) {
                    headers.insert(name.clone(), value.clone());
                }
            }
            HttpRequest {
                method: e.http_method,
                path: e.path.unwrap_or_default(),
                headers,
                body: e.body,
                is_base64_encoded: e.is_base64_encoded,
            }
        }
    })
}

/// Whether `path` is `/executions`, optionally under one stage segment and a trailing slash.
pub fn is_executions_path(path: &str) -> bool {
    let path = path.strip_suffix('/').unwrap_or(path);
    let Some(prefix) = path.strip_suffix("/executions") else {
        return false;
    };
    prefix.is_empty()
        || (prefix.starts_with('/') && !prefix[1..].is_empty() && !prefix[1..].contains('/'))
}

/// The bearer token of an `Authorization` header (scheme case-insensitive, RFC 6750 §2.1).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None; // two Authorization headers: ambiguous, so none
    }
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The continuation of a `Mozaiks-Continuation` header (name case-insensitive, surrounding
/// whitespace ignored). Present more than once, empty or not visible ASCII: refused (400), as
/// the caller meant to resume and did not send one continuation.
pub fn continuation_header(headers: &HeaderMap) -> Result<Option<&str>, Rejection> {
    let malformed = Rejection::InvalidContinuation {
        reason: "malformed",
    };
    let mut values = headers.get_all(CONTINUATION_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(malformed);
    }
    match value.to_str().map(str::trim) {
        Ok(text) if !text.is_empty() => Ok(Some(text)),
        _ => Err(malformed),
    }
}

/// Whether a Content-Type declares JSON (`application/json` or any `+json` type).
pub fn is_json_media_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads the input from the body: media type, size (before decoding) and JSON.
fn read_input(request: &HttpRequest, max_input_bytes: usize) -> Result<(Value, usize), Rejection> {
    let body = request.body.as_deref().unwrap_or("");
    if body.is_empty() {
        return Ok((Value::Object(Default::default()), 0));
    }
    let content_type = request
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(is_json_media_type) {
        return Err(Rejection::UnsupportedMediaType);
    }
    let too_large = Rejection::TooLarge {
        limit: max_input_bytes,
    };
    let decoded;
    let bytes: &[u8] = if request.is_base64_encoded {
        if body.len() / 4 * 3 > max_input_bytes + 2 {
            return Err(too_large);
        }
        decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| {
                Rejection::Malformed(
                    "the body is marked base64-encoded but is not valid base64".into(),
                )
            })?;
        &decoded
    } else {
        body.as_bytes()
    };
    if bytes.len() > max_input_bytes {
        return Err(too_large);
    }
    let input = serde_json::from_slice(bytes)
        .map_err(|e| Rejection::Malformed(format!("the body is not valid JSON: {e}")))?;
    Ok((input, bytes.len()))
}

/// Handles an HTTP event of the given origin.
pub async fn handle(
    app: &App,
    origin: Origin,
    event: &RawValue,
    invocation: &Invocation,
) -> HttpResponse {
    let parsed = super::headers::check(event.get())
        .map_err(|fault| match fault {
            HeaderFault::TooLarge => Rejection::HeadersTooLarge,
            HeaderFault::Invalid(detail) => Rejection::Malformed(detail),
        })
        .and_then(|()| {
            parse_event(origin, event)
                .map_err(|e| Rejection::Malformed(unreadable_event_detail(&e)))
        });
    let result = match parsed {
        Ok(request) => run(app, &request, invocation).await,
        Err(rejection) => invocation.reject(rejection),
    };
    respond(origin, &result)
}

/// What a caller is told about an event the event types cannot read: the kind of fault and
/// where, never serde's message, which quotes the offending value (a header, a cookie or a
/// body can carry a credential).
fn unreadable_event_detail(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io | Category::Syntax => "it is not valid JSON",
        Category::Eof => "it ends too early",
        Category::Data => "a member has a type or value the event format does not allow",
    };
    format!(
        "unreadable HTTP event: {what} (line {}, column {})",
        e.line(),
        e.column()
    )
}

async fn run(app: &App, request: &HttpRequest, invocation: &Invocation) -> ExecutionResult {
    if !is_executions_path(&request.path) {
        return invocation.reject(Rejection::NotFound);
    }
    if request.method != Method::POST {
        return invocation.reject(Rejection::MethodNotAllowed);
    }
    let context = match app.authenticate(bearer_token(&request.headers)) {
        Ok(context) => context,
        Err(rejection) => return invocation.reject(rejection),
    };
    let (input, input_bytes) = match read_input(request, app.max_input_bytes()) {
        Ok(input) => input,
        Err(rejection) => return invocation.reject(rejection),
    };
    let continuation = match continuation_header(&request.headers) {
        Ok(continuation) => continuation.map(str::to_owned),
        Err(rejection) => return invocation.reject(rejection),
    };
    let request = Request {
        context,
        input,
        input_bytes,
        continuation,
    };
    app.execute(request, invocation).await
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(flatten)]
    problem: &'a Problem,
    execution_id: &'a str,
}

/// Builds the origin's response for a result: 200 with the §2 object for executions that ran,
/// the rejection's status with an `application/problem+json` body otherwise.
pub fn respond(origin: Origin, result: &ExecutionResult) -> HttpResponse {
    let mut headers = HeaderMap::new();
    let (status, body) = match (&result.rejection, &result.error) {
        (Some(rejection), Some(problem)) => {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            if let Some(challenge) = rejection
                .www_authenticate()
                .and_then(|c| HeaderValue::from_str(&c).ok())
            {
                headers.insert(WWW_AUTHENTICATE, challenge);
            }
            if *rejection == Rejection::MethodNotAllowed {
                headers.insert(ALLOW, HeaderValue::from_static("POST"));
            }
            let body = ProblemBody {
                problem,
                execution_id: &result.execution_id,
            };
            (rejection.status(), serde_json::to_string(&body))
        }
        _ => {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            (200, serde_json::to_string(result))
        }
    };
    // Serializing these plain structures cannot fail; answer 500 rather than panic if it did.
    let (status, body) = match body {
        Ok(body) => (status, body),
        Err(_) => (
            500,
            r#"{"type":"about:blank","status":500,"title":"Internal error"}"#.to_owned(),
        ),
    };
    headers.insert(
        HeaderName::from_static("x-mozaiks-execution-id"),
        HeaderValue::from_str(&result.execution_id).unwrap_or(HeaderValue::from_static("unknown")),
    );
    let body = Some(Body::Text(body));
    let status_code = i64::from(status);
    match origin {
        Origin::RestApiV1 => {
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = status_code;
            r.headers = headers;
            r.body = body;
            HttpResponse::RestApiV1(r)
        }
        Origin::HttpApiV2 => {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = status_code;
            r.headers = headers;
            r.body = body;
            HttpResponse::HttpApiV2(r)
        }
        Origin::Alb => {
            let mut r = AlbTargetGroupResponse::default();
            r.status_code = status_code;
            r.status_description = Some(format!(
                "{status} {}",
                lambda_http::http::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("")
            ));
            // An ALB target group answers with whichever of the two fields it was set up for.
            r.multi_value_headers = headers.clone();
            r.headers = headers;
            r.body = body;
            HttpResponse::Alb(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_and_without_a_stage() {
        for ok in [
            "/executions",
            "/executions/",
            "/prod/executions",
            "/v1/executions/",
        ] {
            assert!(is_executions_path(ok), "{ok}");
        }
        for bad in [
            "/",
            "",
            "/execution",
            "/a/b/executions",
            "//executions",
            "/executionsx",
            "executions",
        ] {
            assert!(!is_executions_path(bad), "{bad}");
        }
    }

    #[test]
    fn reads_bearer_tokens_strictly() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer abc.def.ghi"),
        );
        assert_eq!(bearer_token(&h), Some("abc.def.ghi"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer_token(&h), None);
    }

    #[test]
    fn reads_the_continuation_header_strictly() {
        let mut h = HeaderMap::new();
        assert_eq!(continuation_header(&h), Ok(None));
        h.insert(
            HeaderName::from_static("mozaiks-continuation"),
            HeaderValue::from_static("  AQID-_x  "),
        );
        assert_eq!(continuation_header(&h), Ok(Some("AQID-_x")));
        let malformed = Err(Rejection::InvalidContinuation {
            reason: "malformed",
        });
        h.append(
            HeaderName::from_static("mozaiks-continuation"),
            HeaderValue::from_static("AQID"),
        );
        assert_eq!(continuation_header(&h), malformed);
        for bad in [&b""[..], b"   ", b"caf\xc3\xa9"] {
            let mut h = HeaderMap::new();
            h.insert(
                HeaderName::from_static("mozaiks-continuation"),
                HeaderValue::from_bytes(bad).unwrap(),
            );
            assert_eq!(continuation_header(&h), malformed, "{bad:?}");
        }
    }

    #[test]
    fn reads_the_continuation_header_of_every_origin() {
        // Header names arrive in any case; REST v1 and ALB may send them multi-valued.
        let sample = |name: &str, patch: &dyn Fn(&mut Value)| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("events")
                .join(name);
            let mut event: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            patch(&mut event);
            event
        };
        let v2 = sample("apigw-v2.json", &|e| {
            e["headers"]["Mozaiks-Continuation"] = "abc".into();
        });
        let v1 = sample("apigw-v1.json", &|e| {
            e["headers"]["MOZAIKS-CONTINUATION"] = "abc".into();
            e["multiValueHeaders"]["MOZAIKS-CONTINUATION"] = serde_json::json!(["abc"]);
        });
        let alb = sample("alb.json", &|e| {
            e["multiValueHeaders"]["mozaiks-continuation"] = serde_json::json!(["abc", "def"]);
        });
        for (origin, event, expected) in [
            (Origin::HttpApiV2, v2, Ok(Some("abc"))),
            (Origin::RestApiV1, v1, Ok(Some("abc"))),
            (
                Origin::Alb,
                alb,
                Err(Rejection::InvalidContinuation {
                    reason: "malformed",
                }),
            ),
        ] {
            let raw = serde_json::value::to_raw_value(&event).unwrap();
            let request = parse_event(origin, &raw).unwrap();
            assert_eq!(
                continuation_header(&request.headers),
                expected,
                "{origin:?}"
            );
        }
    }

    #[test]
    fn recognises_json_media_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.api+json",
        ] {
            assert!(is_json_media_type(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
            "application/jsonx",
        ] {
            assert!(!is_json_media_type(bad), "{bad}");
        }
    }

    fn request(
        body: Option<&str>,
        content_type: Option<&'static str>,
        base64: bool,
    ) -> HttpRequest {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        HttpRequest {
            method: Method::POST,
            path: "/executions".into(),
            headers,
            body: body.map(str::to_owned),
            is_base64_encoded: base64,
        }
    }

    #[test]
    fn reads_input_bodies() {
        let json = Some("application/json");
        assert_eq!(
            read_input(&request(None, None, false), 10).unwrap().0,
            serde_json::json!({})
        );
        assert_eq!(
            read_input(&request(Some(r#"{"a":1}"#), json, false), 10).unwrap(),
            (serde_json::json!({"a":1}), 7)
        );
        // {"a":1} base64-encoded, as API Gateway delivers binary media types.
        assert_eq!(
            read_input(&request(Some("eyJhIjoxfQ=="), json, true), 10)
                .unwrap()
                .0,
            serde_json::json!({"a":1})
        );
        assert_eq!(
            read_input(&request(Some("{}"), None, false), 10),
            Err(Rejection::UnsupportedMediaType)
        );
        assert_eq!(
            read_input(&request(Some("{}"), Some("text/plain"), false), 10),
            Err(Rejection::UnsupportedMediaType)
        );
        assert_eq!(
            read_input(&request(Some(r#"{"a":"long"}"#), json, false), 5),
            Err(Rejection::TooLarge { limit: 5 })
        );
        assert!(matches!(
            read_input(&request(Some("{"), json, false), 10),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            read_input(&request(Some("%%%"), json, true), 10),
            Err(Rejection::Malformed(_))
        ));
    }
}
