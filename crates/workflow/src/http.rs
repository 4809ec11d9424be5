//! `call: http` (and the requests of `call: openapi`): the compiled call, the client, and the
//! DSL's HTTP response shapes.
//!
//! The client is hyper over rustls with aws-lc-rs (the crypto stack `jsonwebtoken` already
//! links) and Mozilla's root certificates, HTTP/1.1, built once per bundle on first use. Every
//! request (redirects included) is metered: calls, request body bytes sent, response body
//! bytes received. Response bodies larger than 16 MiB fault the call.
//!
//! Status handling per the DSL: with `redirect: false` (the default) a status outside 200–299
//! is a `communication` error carrying that status; with `redirect: true` redirects (301, 302,
//! 303, 307, 308) are followed, at most 10, and only a final status outside 200–399 is an
//! error. `Authorization` is not forwarded to another origin, and never appears in the
//! `request` part of a `response` output.

use super::error::WorkflowError;
use super::expr::{Args, EvalError, Expr, Template};
use super::value::{from_json, to_json, truncate};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, StatusCode};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jaq_json::Val;
use serde_json::{Map, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use url::Url;

/// The title of the failure of every call when the client could not be built.
pub(crate) const CLIENT_UNAVAILABLE: &str = "HTTP client unavailable";
/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Most redirects followed for one call.
const MAX_REDIRECTS: usize = 10;
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A compiled `call: http`.
pub(crate) struct HttpCall {
    /// `with.method`, upper-cased.
    pub(crate) method: Method,
    /// `with.endpoint`.
    pub(crate) endpoint: Endpoint,
    /// `with.headers`: a map or an expression producing one.
    pub(crate) headers: Option<Template>,
    /// `with.query`: a map or an expression producing one.
    pub(crate) query: Option<Template>,
    /// `with.body`.
    pub(crate) body: Option<Template>,
    /// `with.output`.
    pub(crate) output: OutputFormat,
    /// `with.redirect`.
    pub(crate) redirect: bool,
}

/// Where a call goes, and how it authenticates.
pub(crate) struct Endpoint {
    /// `uri` (or the endpoint itself when it is a string).
    pub(crate) uri: UriSpec,
    /// `authentication`.
    pub(crate) auth: Option<Arc<Auth>>,
}

/// An endpoint URI.
pub(crate) enum UriSpec {
    /// A URI, possibly with RFC 6570 `{var}` placeholders filled from the task input.
    Template(String),
    /// A runtime expression that produces the URI.
    Expr(Expr),
}

/// An authentication policy this runtime applies.
pub(crate) enum Auth {
    /// `basic`: `Authorization: Basic base64(username:password)`.
    Basic {
        username: Template,
        password: Template,
    },
    /// `bearer`: `Authorization: Bearer <token>`.
    Bearer { token: Template },
}

/// `with.output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    /// The response content, base64-encoded.
    Raw,
    /// The response content, deserialized when JSON or text.
    Content,
    /// The whole response: `request`, `statusCode`, `headers`, `content`.
    Response,
}

impl OutputFormat {
    /// Parses `raw`, `content` or `response`.
    pub(crate) fn parse(text: &str) -> Option<OutputFormat> {
        match text {
            "raw" => Some(OutputFormat::Raw),
            "content" => Some(OutputFormat::Content),
            "response" => Some(OutputFormat::Response),
            _ => None,
        }
    }
}

/// HTTP counters of one run (shared by concurrent branches).
#[derive(Debug, Default)]
pub(crate) struct HttpMeter {
    pub(crate) calls: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
}

/// A request ready to send.
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// Header names and values, in order (`Authorization` included).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Bytes>,
}

/// A received response.
pub(crate) struct Response {
    pub(crate) status: StatusCode,
    /// Header names (lower case) and values, in order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
}

/// Why a call failed before a usable response arrived (a `communication` error's detail).
#[derive(Debug)]
pub(crate) struct CallFailure {
    /// The status of the error: the HTTP status when there was one, else 500.
    pub(crate) status: u16,
    /// The title of the error.
    pub(crate) title: String,
    /// What happened.
    pub(crate) detail: String,
}

impl CallFailure {
    /// As the DSL `communication` error of `instance`.
    pub(crate) fn into_error(self, instance: &str) -> WorkflowError {
        WorkflowError {
            type_: WorkflowError::standard_type("communication"),
            status: self.status,
            title: Some(self.title),
            detail: Some(self.detail),
            instance: Some(instance.to_owned()),
        }
    }
}

impl HttpCall {
    /// Evaluates the call's templates on the task input into a request.
    pub(crate) fn request(&self, input: &Val, args: &Args<'_>) -> Result<Request, EvalError> {
        let url = self.endpoint.url(input, args)?;
        let mut request = Request {
            method: self.method.clone(),
            url,
            headers: Vec::new(),
            body: None,
        };
        if let Some(query) = &self.query {
            let query = json_of(&query.eval(input, args)?, "")?;
            append_query(&mut request.url, &query).map_err(|message| EvalError {
                pointer: String::new(),
                message,
            })?;
        }
        if let Some(headers) = &self.headers {
            let value = json_of(&headers.eval(input, args)?, "")?;
            request.headers = header_pairs(&value).map_err(|message| EvalError {
                pointer: String::new(),
                message,
            })?;
        }
        if let Some(body) = &self.body {
            let body = body.eval(input, args)?;
            let (bytes, content_type) = encode_body(&body)?;
            if let Some(content_type) = content_type {
                if !request
                    .headers
                    .iter()
                    .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                {
                    request
                        .headers
                        .push(("content-type".into(), content_type.into()));
                }
            }
            request.body = Some(bytes);
        }
        if let Some(auth) = &self.endpoint.auth {
            let value = auth.header_value(input, args)?;
            request
                .headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
            request.headers.push(("authorization".into(), value));
        }
        Ok(request)
    }
}

impl Endpoint {
    /// The URL, with the template filled or the expression evaluated.
    pub(crate) fn url(&self, input: &Val, args: &Args<'_>) -> Result<Url, EvalError> {
        let (text, pointer) = match &self.uri {
            UriSpec::Template(template) => (expand_uri_template(template, input)?, ""),
            UriSpec::Expr(expr) => match expr.eval(input.clone(), args)? {
                Val::TStr(bytes) | Val::BStr(bytes) => {
                    (String::from_utf8_lossy(&bytes).into_owned(), expr.pointer())
                }
                other => {
                    return Err(EvalError {
                        pointer: expr.pointer().to_owned(),
                        message: format!(
                            "the endpoint expression must produce a URL string; it produced {}",
                            truncate(&other.to_string(), 60)
                        ),
                    })
                }
            },
        };
        parse_url(&text).map_err(|message| EvalError {
            pointer: pointer.to_owned(),
            message,
        })
    }
}

/// Parses an absolute `http(s)` URL.
pub(crate) fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text)
        .map_err(|e| format!("`{}` is not a valid URL ({e})", truncate(text, 120)))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(url),
        scheme => Err(format!(
            "`{}`: only http and https URLs with a host can be called (scheme `{scheme}`)",
            truncate(text, 120)
        )),
    }
}

impl Auth {
    /// The `Authorization` header value.
    pub(crate) fn header_value(&self, input: &Val, args: &Args<'_>) -> Result<String, EvalError> {
        match self {
            Auth::Basic { username, password } => {
                let username = text_of(&username.eval(input, args)?);
                let password = text_of(&password.eval(input, args)?);
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Ok(format!("Basic {credentials}"))
            }
            Auth::Bearer { token } => Ok(format!("Bearer {}", text_of(&token.eval(input, args)?))),
        }
    }
}

/// A value as header/query text: strings as is, other scalars as JSON.
fn text_of(value: &Val) -> String {
    match value {
        Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Val::Null => String::new(),
        other => other.to_string(),
    }
}

fn json_of(value: &Val, pointer: &str) -> Result<Value, EvalError> {
    to_json(value).map_err(|message| EvalError {
        pointer: pointer.to_owned(),
        message,
    })
}

/// RFC 6570 simple string expansion: `{name}` becomes the percent-encoded value of the
/// top-level property `name` of `input` (a string, number, boolean, or null = empty).
pub(crate) fn expand_uri_template(template: &str, input: &Val) -> Result<String, EvalError> {
    let fail = |message: String| EvalError {
        pointer: String::new(),
        message,
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(fail(format!(
                "the URI template `{template}` has an unclosed `{{`"
            )));
        };
        let name = &after[..close];
        let value = match input {
            Val::Obj(map) => map
                .get(&Val::from(name.to_owned()))
                .cloned()
                .unwrap_or(Val::Null),
            _ => Val::Null,
        };
        match &value {
            Val::Null => {}
            Val::TStr(_) | Val::BStr(_) | Val::Num(_) | Val::Bool(_) => {
                encode_unreserved(&text_of(&value), &mut out)
            }
            _ => {
                return Err(fail(format!(
                    "the URI template variable `{{{name}}}` must be a string, number, boolean or null; the input's `{name}` is {}",
                    truncate(&value.to_string(), 60)
                )))
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_unreserved(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// Appends a query map: scalars as text, lists as repeated keys, null skipped.
pub(crate) fn append_query(url: &mut Url, query: &Value) -> Result<(), String> {
    let Value::Object(map) = query else {
        return Err("`query` must be a map of parameter names to values".into());
    };
    if map.is_empty() {
        return Ok(());
    }
    let mut pairs = url.query_pairs_mut();
    for (key, value) in map {
        match value {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    pairs.append_pair(key, &scalar_text(item));
                }
            }
            other => {
                pairs.append_pair(key, &scalar_text(other));
            }
        }
    }
    drop(pairs);
    Ok(())
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Header pairs from a map of names to values.
pub(crate) fn header_pairs(value: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Object(map) = value else {
        return Err("`headers` must be a map of header names to values".into());
    };
    let mut headers = Vec::with_capacity(map.len());
    for (name, value) in map {
        if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("`{name}` is not a valid HTTP header name"));
        }
        let text = scalar_text(value);
        if hyper::header::HeaderValue::from_str(&text).is_err() {
            return Err(format!(
                "the value of header `{name}` is not a valid HTTP header value"
            ));
        }
        headers.push((name.to_ascii_lowercase(), text));
    }
    Ok(headers)
}

/// A request body: strings as text, anything else as JSON.
fn encode_body(body: &Val) -> Result<(Bytes, Option<&'static str>), EvalError> {
    match body {
        Val::TStr(bytes) | Val::BStr(bytes) => Ok((
            Bytes::copy_from_slice(bytes),
            Some("text/plain; charset=utf-8"),
        )),
        other => {
            let json = json_of(other, "")?;
            let bytes = serde_json::to_vec(&json).map_err(|e| EvalError {
                pointer: String::new(),
                message: format!("the body cannot be serialized as JSON: {e}"),
            })?;
            Ok((Bytes::from(bytes), Some("application/json")))
        }
    }
}

/// The task output of a call, in `format`.
pub(crate) fn output(format: OutputFormat, request: &Request, response: &Response) -> Val {
    match format {
        OutputFormat::Raw => from_json(raw_content(&response.body)),
        OutputFormat::Content => from_json(content(response)),
        OutputFormat::Response => {
            let mut request_headers = Map::new();
            for (name, value) in &request.headers {
                if !name.eq_ignore_ascii_case("authorization") {
                    request_headers.insert(name.clone(), Value::String(value.clone()));
                }
            }
            let mut headers = Map::new();
            for (name, value) in &response.headers {
                match headers.get_mut(name) {
                    Some(Value::String(existing)) => {
                        existing.push_str(", ");
                        existing.push_str(value);
                    }
                    _ => {
                        headers.insert(name.clone(), Value::String(value.clone()));
                    }
                }
            }
            from_json(serde_json::json!({
                "request": {
                    "method": request.method.as_str().to_ascii_lowercase(),
                    "uri": request.url.as_str(),
                    "headers": request_headers,
                },
                "statusCode": response.status.as_u16(),
                "headers": headers,
                "content": content(response),
            }))
        }
    }
}

fn raw_content(body: &Bytes) -> Value {
    if body.is_empty() {
        Value::Null
    } else {
        Value::String(base64::engine::general_purpose::STANDARD.encode(body))
    }
}

/// The content: JSON parsed, text as a string, anything else base64; empty is null.
fn content(response: &Response) -> Value {
    if response.body.is_empty() {
        return Value::Null;
    }
    let content_type = response
        .headers
        .iter()
        .find(|(name, _)| name == "content-type")
        .map(|(_, value)| value.to_ascii_lowercase())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let is_json = essence == "application/json" || essence.ends_with("+json");
    if is_json {
        if let Ok(value) = serde_json::from_slice::<Value>(&response.body) {
            return value;
        }
    }
    let is_text = is_json
        || essence.starts_with("text/")
        || essence.ends_with("+xml")
        || matches!(
            essence,
            "application/xml" | "application/javascript" | "application/x-www-form-urlencoded"
        );
    match std::str::from_utf8(&response.body) {
        Ok(text) if is_text => Value::String(text.to_owned()),
        _ => raw_content(&response.body),
    }
}

/// The shared HTTP client of a bundle.
pub(crate) struct HttpClient {
    overrides: Arc<[(String, SocketAddr)]>,
    client: OnceLock<Result<Client<Connector, Full<Bytes>>, String>>,
}

impl HttpClient {
    /// A client that sends requests for the `overrides` hosts to their addresses (tests).
    pub(crate) fn new(overrides: Vec<(String, SocketAddr)>) -> HttpClient {
        HttpClient {
            overrides: overrides.into(),
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> Result<&Client<Connector, Full<Bytes>>, CallFailure> {
        self.client
            .get_or_init(|| self.build())
            .as_ref()
            .map_err(|message| CallFailure {
                status: 500,
                title: CLIENT_UNAVAILABLE.into(),
                detail: message.clone(),
            })
    }

    fn build(&self) -> Result<Client<Connector, Full<Bytes>>, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let connector = Connector {
            https,
            overrides: self.overrides.clone(),
        };
        Ok(Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector))
    }

    /// Sends `request`, following redirects when `redirect` is set; checks the status.
    pub(crate) async fn send(
        &self,
        request: &Request,
        redirect: bool,
        meter: &HttpMeter,
    ) -> Result<Response, CallFailure> {
        let client = self.client()?;
        let mut method = request.method.clone();
        let mut url = request.url.clone();
        let mut body = request.body.clone();
        let mut headers = request.headers.clone();
        let mut hops = 0;
        loop {
            let response = self
                .once(client, &method, &url, &headers, body.clone(), meter)
                .await?;
            let status = response.status;
            let location = response
                .headers
                .iter()
                .find(|(name, _)| name == "location")
                .map(|(_, value)| value.clone());
            let follow = redirect
                && matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
                && location.is_some();
            if !follow {
                let ok = if redirect {
                    (200..400).contains(&status.as_u16())
                } else {
                    status.is_success()
                };
                if ok {
                    return Ok(response);
                }
                return Err(CallFailure {
                    status: status.as_u16(),
                    title: format!(
                        "HTTP {} {}",
                        status.as_u16(),
                        status.canonical_reason().unwrap_or("")
                    )
                    .trim_end()
                    .to_owned(),
                    detail: format!(
                        "{} {} answered {}",
                        method,
                        display_url(&url),
                        status.as_u16()
                    ),
                });
            }
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(CallFailure {
                    status: 500,
                    title: "Too many redirects".into(),
                    detail: format!(
                        "{} {}: more than {MAX_REDIRECTS} redirects",
                        method,
                        display_url(&request.url)
                    ),
                });
            }
            let target = location
                .as_deref()
                .and_then(|location| url.join(location).ok())
                .filter(|target| matches!(target.scheme(), "http" | "https"))
                .ok_or_else(|| CallFailure {
                    status: 500,
                    title: "Invalid redirect".into(),
                    detail: format!(
                        "{} {} redirected to an invalid location",
                        method,
                        display_url(&url)
                    ),
                })?;
            if target.origin() != url.origin() {
                headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
            }
            let downgrade = status == StatusCode::SEE_OTHER
                || (matches!(status.as_u16(), 301 | 302) && method == Method::POST);
            if downgrade && method != Method::HEAD {
                method = Method::GET;
                body = None;
                headers.retain(|(name, _)| {
                    !name.eq_ignore_ascii_case("content-type")
                        && !name.eq_ignore_ascii_case("content-length")
                });
            }
            url = target;
        }
    }

    /// Sends `request` once: no redirect is followed and any status is a response (for callers
    /// that classify statuses themselves, such as the retries of model providers).
    pub(crate) async fn exchange(
        &self,
        request: &Request,
        meter: &HttpMeter,
    ) -> Result<Response, CallFailure> {
        let client = self.client()?;
        self.once(
            client,
            &request.method,
            &request.url,
            &request.headers,
            request.body.clone(),
            meter,
        )
        .await
    }

    /// One exchange.
    async fn once(
        &self,
        client: &Client<Connector, Full<Bytes>>,
        method: &Method,
        url: &Url,
        headers: &[(String, String)],
        body: Option<Bytes>,
        meter: &HttpMeter,
    ) -> Result<Response, CallFailure> {
        let fail = |what: String| CallFailure {
            status: 500,
            title: "HTTP call failed".into(),
            detail: format!("{} {}: {what}", method, display_url(url)),
        };
        let mut builder = hyper::Request::builder()
            .method(method.clone())
            .uri(url.as_str());
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("user-agent"))
        {
            builder = builder.header(
                "user-agent",
                concat!("mozaiks-runtime/", env!("CARGO_PKG_VERSION")),
            );
        }
        let sent = body.as_ref().map_or(0, Bytes::len) as u64;
        let request = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| fail(format!("the request is invalid: {e}")))?;
        meter.calls.fetch_add(1, Ordering::Relaxed);
        meter.bytes_sent.fetch_add(sent, Ordering::Relaxed);
        let response = client
            .request(request)
            .await
            .map_err(|e| fail(describe_client_error(&e)))?;
        let status = response.status();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    fail(format!(
                        "the response body is larger than {} MiB",
                        MAX_RESPONSE_BYTES / (1024 * 1024)
                    ))
                } else {
                    fail(format!("reading the response failed: {e}"))
                }
            })?
            .to_bytes();
        meter
            .bytes_received
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// A URL for messages: scheme, host, port and path (the query may hold secrets).
pub(crate) fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.to_string()
}

/// The innermost cause of a client error, which says what actually went wrong.
fn describe_client_error(error: &hyper_util::client::legacy::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = cause.to_string();
        source = cause.source();
    }
    message
}

/// Connects through rustls, or in plain text to an overridden host's stand-in.
#[derive(Clone)]
pub(crate) struct Connector {
    https: HttpsConnector<HttpConnector>,
    overrides: Arc<[(String, SocketAddr)]>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.https.poll_ready(cx)
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let overridden = uri.host().and_then(|host| {
            self.overrides
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(host))
                .map(|(_, addr)| *addr)
        });
        match overridden {
            Some(addr) => Box::pin(async move {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                Ok(MaybeHttpsStream::Http(TokioIo::new(stream)))
            }),
            None => {
                let connecting = self.https.call(uri);
                Box::pin(connecting)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::object;

    #[test]
    fn uri_templates_fill_top_level_scalars() {
        let input = object([
            ("status", Val::from("sold out".to_owned())),
            ("id", Val::from(7isize)),
            ("ok", Val::Bool(true)),
            ("list", [Val::Null].into_iter().collect()),
        ]);
        let url = expand_uri_template("https://h/p/{id}?s={status}&b={ok}&m={missing}", &input);
        assert_eq!(
            url.map_err(|e| e.message).as_deref(),
            Ok("https://h/p/7?s=sold%20out&b=true&m=")
        );
        let err = expand_uri_template("https://h/{list}", &input).err();
        assert!(err
            .map(|e| e.message)
            .unwrap_or_default()
            .contains("`{list}` must be a string"));
        assert!(expand_uri_template("https://h/{id", &input).is_err());
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(parse_url("https://example.com/x").is_ok());
        assert!(parse_url("ftp://example.com/x").is_err());
        assert!(parse_url("not a url").is_err());
        let url = parse_url("https://user:pw@example.com/p?key=secret").ok();
        assert_eq!(
            url.map(|u| display_url(&u)).as_deref(),
            Some("https://example.com/p")
        );
    }

    #[test]
    fn queries_append_scalars_and_lists() {
        let Ok(mut url) = parse_url("https://h/p?a=1") else {
            panic!("valid")
        };
        let query = serde_json::json!({ "b": "x y", "n": 2, "l": ["p", "q"], "skip": null });
        assert_eq!(append_query(&mut url, &query), Ok(()));
        assert_eq!(url.as_str(), "https://h/p?a=1&b=x+y&l=p&l=q&n=2");
        assert!(append_query(&mut url, &serde_json::json!([1])).is_err());
    }

    #[test]
    fn content_is_decoded_by_media_type() {
        let response = |content_type: &str, body: &'static [u8]| Response {
            status: StatusCode::OK,
            headers: vec![("content-type".into(), content_type.into())],
            body: Bytes::from_static(body),
        };
        let json = content(&response("application/json; charset=utf-8", br#"{"a":1}"#));
        assert_eq!(json, serde_json::json!({ "a": 1 }));
        let text = content(&response("text/plain", b"hi"));
        assert_eq!(text, serde_json::json!("hi"));
        let binary = content(&response("application/octet-stream", b"\x00\x01"));
        assert_eq!(binary, serde_json::json!("AAE="));
        let empty = content(&response("application/json", b""));
        assert_eq!(empty, Value::Null);
    }
}
