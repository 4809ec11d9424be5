//! The Model Context Protocol client: `call: mcp` tasks and the MCP tools of agents, over MCP's
//! streamable HTTP transport, through the engine's HTTP client (metered as `http` usage).
//!
//! A session is `initialize` (the task's `protocolVersion`, default [`DEFAULT_PROTOCOL`]; the
//! server may answer with another version, which is used when this client speaks it:
//! [`SPOKEN`]), the `notifications/initialized` notification, the requests, and a `DELETE` of
//! the session when the server issued an `Mcp-Session-Id`. Every POST accepts both answer
//! forms of the transport: a JSON body, or an SSE stream read to the response with the
//! request's id (server notifications and requests on the stream are skipped: this client
//! offers no capabilities the server could ask for). After `initialize`, requests carry
//! `MCP-Protocol-Version` and `Mcp-Session-Id`.
//!
//! Failures are [`McpFailure`]s: the transport (connection, a status outside 2xx), the protocol
//! (an answer that is not JSON-RPC, a version this client does not speak), a JSON-RPC error, and
//! a `tools/call` result with `isError: true` (its text content). `call: mcp` raises them as the
//! DSL's `runtime` error; an agent's MCP tool returns them to the model as the tool's error.
//! Messages name the server by scheme, host, port and path, never its headers.

use crate::error::WorkflowError;
use crate::expr::{Args, EvalError, Template};
use crate::http::{display_url, CallFailure, Endpoint, HttpClient, HttpMeter, Request, Response};
use crate::value::{to_json, truncate};
use bytes::Bytes;
use hyper::Method;
use jaq_json::Val;
use serde_json::{json, Value};
use url::Url;

/// `protocolVersion` when the task names none (the DSL's default).
pub(crate) const DEFAULT_PROTOCOL: &str = "2025-06-18";
/// The protocol versions this client speaks (their differences do not touch what it uses).
pub(crate) const SPOKEN: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The methods `call: mcp` may call (the DSL's list).
pub(crate) const METHODS: [&str; 7] = [
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
];
/// Most pages of a `…/list` answer followed for an agent's tools.
const MAX_PAGES: usize = 32;

/// A compiled `call: mcp`.
pub(crate) struct McpCall {
    /// `with.method`.
    pub(crate) method: String,
    /// `with.parameters`.
    pub(crate) parameters: Option<Template>,
    /// `with.protocolVersion`.
    pub(crate) protocol_version: String,
    /// `with.transport.http`.
    pub(crate) server: McpServer,
    /// `with.timeout`.
    pub(crate) timeout: Option<crate::duration::DurationSpec>,
    /// `with.client`: `name` and `version` sent in `initialize`.
    pub(crate) client: ClientInfo,
}

/// An MCP server reached over streamable HTTP.
pub(crate) struct McpServer {
    /// `endpoint` (and its `authentication`).
    pub(crate) endpoint: Endpoint,
    /// `headers`: a map, or an expression producing one.
    pub(crate) headers: Option<Template>,
}

/// The client's `clientInfo`.
#[derive(Clone)]
pub(crate) struct ClientInfo {
    pub(crate) name: String,
    pub(crate) version: String,
}

impl Default for ClientInfo {
    fn default() -> Self {
        ClientInfo {
            name: "mozaiks-runtime".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// A server, evaluated: where to POST, and the headers of every request.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) url: Url,
    pub(crate) headers: Vec<(String, String)>,
    /// Requests signed with SigV4 for service `lambda` (a Function URL with `AWS_IAM` auth).
    pub(crate) sign: Option<Signer>,
}

/// The function's AWS credentials and the region its requests are signed for.
#[derive(Clone)]
pub(crate) struct Signer {
    pub(crate) credentials: crate::options::AwsCredentials,
    pub(crate) region: String,
}

impl Target {
    /// Signs this target's requests with the function's IAM credentials (`bedrock` options
    /// hold them: the standard AWS variables), for the region of its Lambda Function URL
    /// (`<id>.lambda-url.<region>.on.aws`), else the function's.
    pub(crate) fn signed_with(
        mut self,
        aws: &crate::options::BedrockOptions,
    ) -> Result<Target, McpFailure> {
        let host = self.url.host_str().unwrap_or_default();
        let labels: Vec<&str> = host.split('.').collect();
        let from_url = labels
            .iter()
            .position(|l| *l == "lambda-url")
            .and_then(|i| labels.get(i + 1))
            .map(|r| (*r).to_owned());
        let Some(region) = from_url.or_else(|| aws.region.clone()) else {
            return Err(McpFailure::Protocol(
                "signing with the function's IAM credentials needs a region (AWS_REGION)".into(),
            ));
        };
        let Some(credentials) = aws.credentials.clone() else {
            return Err(McpFailure::Protocol(
                "signing with the function's IAM credentials needs them (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)".into(),
            ));
        };
        self.sign = Some(Signer {
            credentials,
            region,
        });
        Ok(self)
    }

    /// `headers` with the SigV4 signature of the request added, when the target signs.
    fn signed_headers(
        &self,
        method: &str,
        mut headers: Vec<(String, String)>,
        body: &[u8],
    ) -> Result<Vec<(String, String)>, McpFailure> {
        let Some(signer) = &self.sign else {
            return Ok(headers);
        };
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
        headers.push(("host".into(), crate::aws::host_header(&self.url)));
        let signature = crate::aws::signature_headers(
            &signer.credentials,
            &signer.region,
            "lambda",
            (method, self.url.as_str()),
            &headers,
            body,
            std::time::SystemTime::now(),
        )
        .map_err(|e| McpFailure::Protocol(format!("signing the request failed: {e}")))?;
        headers.extend(signature);
        Ok(headers)
    }
}

impl McpServer {
    /// The URL and headers, evaluated on `input`.
    pub(crate) fn target(&self, input: &Val, args: &Args<'_>) -> Result<Target, EvalError> {
        let url = self.endpoint.url(input, args)?;
        let mut headers = match &self.headers {
            None => Vec::new(),
            Some(template) => {
                let value = to_json(&template.eval(input, args)?).map_err(|message| EvalError {
                    pointer: String::new(),
                    message,
                })?;
                crate::http::header_pairs(&value).map_err(|message| EvalError {
                    pointer: String::new(),
                    message,
                })?
            }
        };
        if let Some(auth) = &self.endpoint.auth {
            let value = auth.header_value(input, args)?;
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
            headers.push(("authorization".into(), value));
        }
        // The transport's own headers are the client's to set.
        headers.retain(|(name, _)| {
            ![
                "content-type",
                "accept",
                "mcp-session-id",
                "mcp-protocol-version",
            ]
            .iter()
            .any(|own| name.eq_ignore_ascii_case(own))
        });
        Ok(Target {
            url,
            headers,
            sign: None,
        })
    }
}

/// Why an MCP exchange failed.
#[derive(Debug)]
pub(crate) enum McpFailure {
    /// The HTTP exchange failed, or answered a status outside 2xx.
    Transport(CallFailure),
    /// The answer is not what the protocol says.
    Protocol(String),
    /// A JSON-RPC error answer.
    Rpc {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    /// A `tools/call` result with `isError: true`: its text content.
    Tool { text: String },
}

impl McpFailure {
    /// What happened, for an error's detail or a model's tool result.
    pub(crate) fn detail(&self, server: &Url, method: &str) -> String {
        self.detail_of("MCP", server, method)
    }

    /// [`McpFailure::detail`] for a call of `protocol` (`MCP`, `A2A`).
    pub(crate) fn detail_of(&self, protocol: &str, server: &Url, method: &str) -> String {
        let at = display_url(server);
        match self {
            McpFailure::Transport(failure) => {
                format!(
                    "{protocol} {method} at {at}: {}: {}",
                    failure.title, failure.detail
                )
            }
            McpFailure::Protocol(what) => format!("{protocol} {method} at {at}: {what}"),
            McpFailure::Rpc {
                code,
                message,
                data,
            } => {
                let data = data
                    .as_ref()
                    .map(|d| format!(" ({})", truncate(&d.to_string(), 200)))
                    .unwrap_or_default();
                format!(
                    "{protocol} {method} at {at} answered JSON-RPC error {code}: {}{data}",
                    truncate(message, 500)
                )
            }
            McpFailure::Tool { text, .. } => {
                format!(
                    "{protocol} tool call at {at} answered an error: {}",
                    truncate(text, 1000)
                )
            }
        }
    }

    /// As the DSL's `runtime` error of `instance` (the HTTP status kept when there was one).
    pub(crate) fn into_error(self, instance: &str, server: &Url, method: &str) -> WorkflowError {
        let mut error = WorkflowError::runtime(instance, self.detail(server, method));
        if let McpFailure::Transport(failure) = &self {
            error.status = failure.status;
        }
        error
    }
}

/// An open MCP session.
pub(crate) struct Session<'a> {
    http: &'a HttpClient,
    meter: &'a HttpMeter,
    target: Target,
    /// `Mcp-Session-Id`, when the server issued one.
    id: Option<String>,
    /// The negotiated protocol version.
    version: String,
    next_id: u64,
    /// The server's `initialize` result.
    pub(crate) server_info: Value,
}

impl<'a> Session<'a> {
    /// `initialize` and `notifications/initialized`.
    pub(crate) async fn open(
        http: &'a HttpClient,
        meter: &'a HttpMeter,
        target: Target,
        version: &str,
        client: &ClientInfo,
    ) -> Result<Session<'a>, McpFailure> {
        let mut session = Session {
            http,
            meter,
            target,
            id: None,
            version: version.to_owned(),
            next_id: 0,
            server_info: Value::Null,
        };
        let params = json!({
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": client.name, "version": client.version },
        });
        let (result, response) = session.exchange("initialize", Some(params)).await?;
        session.id = header(&response, "mcp-session-id").map(str::to_owned);
        let answered = result["protocolVersion"].as_str().unwrap_or_default();
        if !SPOKEN.contains(&answered) {
            // Ends what the server opened before saying why.
            session.close().await;
            return Err(McpFailure::Protocol(format!(
                "the server speaks protocol version `{}`, which this client does not ({})",
                truncate(answered, 40),
                SPOKEN.join(", ")
            )));
        }
        session.version = answered.to_owned();
        session.server_info = result;
        let notification = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let response = session.post(&notification).await;
        if let Err(failure) = response {
            session.close().await;
            return Err(failure);
        }
        Ok(session)
    }

    /// Sends a request; its result.
    pub(crate) async fn request(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, McpFailure> {
        let (result, _) = self.exchange(method, params).await?;
        if method == "tools/call" && result["isError"] == true {
            return Err(McpFailure::Tool {
                text: content_text(&result),
            });
        }
        Ok(result)
    }

    /// Every item of a paginated `…/list` method (`field` of each page), following
    /// `nextCursor` at most [`MAX_PAGES`] times.
    pub(crate) async fn list_all(
        &mut self,
        method: &str,
        field: &str,
    ) -> Result<Vec<Value>, McpFailure> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
            let mut page = self.request(method, params).await?;
            if let Some(Value::Array(list)) = page.get_mut(field).map(Value::take) {
                items.extend(list);
            }
            match page["nextCursor"].as_str() {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => return Ok(items),
            }
        }
        Err(McpFailure::Protocol(format!(
            "{method} kept paginating after {MAX_PAGES} pages"
        )))
    }

    /// Ends the session: a `DELETE` when the server issued an id (its answer does not matter:
    /// a server may refuse to end sessions on request).
    pub(crate) async fn close(self) {
        let Some(id) = &self.id else {
            return;
        };
        let mut headers = self.target.headers.clone();
        headers.push(("mcp-session-id".into(), id.clone()));
        headers.push(("mcp-protocol-version".into(), self.version.clone()));
        let Ok(headers) = self.target.signed_headers("DELETE", headers, b"") else {
            return;
        };
        let request = Request {
            method: Method::DELETE,
            url: self.target.url.clone(),
            headers,
            body: None,
        };
        let _ = self.http.exchange(&request, self.meter).await;
    }

    /// One request and its answer.
    async fn exchange(
        &mut self,
        method: &str,
        params: Option<Value>,
    ) -> Result<(Value, Response), McpFailure> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "jsonrpc": "2.0", "id": id, "method": method });
        if let Some(params) = params.filter(|p| !p.is_null()) {
            message["params"] = params;
        }
        let response = self.post(&message).await?;
        let answer = find_answer(&response, id)?;
        Ok((answer?, response))
    }

    /// POSTs one message; the response (2xx) or why not.
    async fn post(&self, message: &Value) -> Result<Response, McpFailure> {
        let mut headers = self.target.headers.clone();
        headers.push(("content-type".into(), "application/json".into()));
        headers.push((
            "accept".into(),
            "application/json, text/event-stream".into(),
        ));
        if message["method"] != "initialize" {
            headers.push(("mcp-protocol-version".into(), self.version.clone()));
            if let Some(id) = &self.id {
                headers.push(("mcp-session-id".into(), id.clone()));
            }
        }
        let body = Bytes::from(message.to_string());
        let headers = self.target.signed_headers("POST", headers, &body)?;
        let request = Request {
            method: Method::POST,
            url: self.target.url.clone(),
            headers,
            body: Some(body),
        };
        let response = self
            .http
            .exchange(&request, self.meter)
            .await
            .map_err(McpFailure::Transport)?;
        if !response.status.is_success() {
            let status = response.status.as_u16();
            return Err(McpFailure::Transport(CallFailure {
                status,
                title: format!(
                    "HTTP {status} {}",
                    response.status.canonical_reason().unwrap_or("")
                )
                .trim_end()
                .to_owned(),
                detail: format!("POST {} answered {status}", display_url(&request.url)),
            }));
        }
        Ok(response)
    }
}

/// A response header's value.
fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The JSON-RPC messages of a response: its JSON body (one message or a batch), or the data of
/// each event of its SSE stream.
pub(crate) fn messages(response: &Response) -> Result<Vec<Value>, McpFailure> {
    let content_type = header(response, "content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(&response.body)
        .map_err(|_| McpFailure::Protocol("the answer is not UTF-8 text".into()))?;
    if content_type.starts_with("text/event-stream") {
        return sse_data(text)
            .iter()
            .filter(|data| !data.trim().is_empty())
            .map(|data| {
                serde_json::from_str(data).map_err(|e| {
                    McpFailure::Protocol(format!("an event of the SSE answer is not JSON ({e})"))
                })
            })
            .collect();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(batch)) => Ok(batch),
        Ok(message) => Ok(vec![message]),
        Err(e) => Err(McpFailure::Protocol(format!(
            "the answer ({}) is neither JSON-RPC nor an SSE stream ({e})",
            if content_type.is_empty() {
                "no content type".to_owned()
            } else {
                truncate(&content_type, 60)
            }
        ))),
    }
}

/// The result (or error) answering request `id`.
fn find_answer(response: &Response, id: u64) -> Result<Result<Value, McpFailure>, McpFailure> {
    for message in messages(response)? {
        if message["id"] != id {
            continue;
        }
        return Ok(rpc_result(message));
    }
    Err(McpFailure::Protocol(format!(
        "the answer holds no JSON-RPC response to request {id}"
    )))
}

/// A JSON-RPC response: its `result`, or its `error` as a failure.
pub(crate) fn rpc_result(mut message: Value) -> Result<Value, McpFailure> {
    if let Some(error) = message.get_mut("error").map(Value::take) {
        return Err(McpFailure::Rpc {
            code: error["code"].as_i64().unwrap_or_default(),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            data: error.get("data").cloned(),
        });
    }
    match message.get_mut("result").map(Value::take) {
        Some(result) => Ok(result),
        None => Err(McpFailure::Protocol(
            "a JSON-RPC response without `result` or `error`".into(),
        )),
    }
}

/// The `data` of each event of an SSE stream (lines joined with `\n`, as the standard says).
pub(crate) fn sse_data(text: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut data {
                Some(existing) => {
                    existing.push('\n');
                    existing.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    events.extend(data);
    events
}

/// The text items of a tool result's `content`, joined (what a model reads).
pub(crate) fn content_text(result: &Value) -> String {
    let texts: Vec<&str> = result["content"]
        .as_array()
        .map(|items| items.iter().filter_map(|i| i["text"].as_str()).collect())
        .unwrap_or_default();
    texts.join("\n")
}

/// A tool result as the model reads it: its `structuredContent` when there is one, else its
/// text content (one text item: as is), else the content items.
pub(crate) fn tool_result_for_model(result: &Value) -> String {
    if let Some(structured) = result.get("structuredContent").filter(|s| !s.is_null()) {
        return structured.to_string();
    }
    let items = result["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if items.iter().all(|i| i["type"] == "text") {
        return content_text(result);
    }
    Value::Array(items.to_vec()).to_string()
}

/// The `params` of a call: an object, or nothing.
pub(crate) fn params_of(value: Value, what: &str) -> Result<Option<Value>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(Value::Object(map))),
        other => Err(format!(
            "`{what}` must produce an object; it produced {}",
            truncate(&other.to_string(), 60)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_join_data_lines_and_skip_comments() {
        let stream = ": keep-alive\r\nevent: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nid: 7\ndata: two\n\ndata:three";
        assert_eq!(sse_data(stream), ["{\"a\":\n1}", "two", "three"]);
    }

    #[test]
    fn answers_are_found_by_id_in_either_form() {
        let sse = Response {
            status: hyper::StatusCode::OK,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: Bytes::from(
                "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"ok\":true}}\n\n",
            ),
        };
        assert_eq!(
            find_answer(&sse, 2).unwrap().unwrap(),
            json!({ "ok": true })
        );
        assert!(matches!(find_answer(&sse, 3), Err(McpFailure::Protocol(_))));
        let json = Response {
            status: hyper::StatusCode::OK,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601,\"message\":\"Method not found\"}}",
            ),
        };
        let Ok(Err(McpFailure::Rpc { code, message, .. })) = find_answer(&json, 1) else {
            panic!("an error answer")
        };
        assert_eq!((code, message.as_str()), (-32601, "Method not found"));
        let html = Response {
            status: hyper::StatusCode::OK,
            headers: vec![("content-type".into(), "text/html".into())],
            body: Bytes::from("<html>"),
        };
        assert!(matches!(messages(&html), Err(McpFailure::Protocol(_))));
    }

    #[test]
    fn a_tool_result_reads_as_its_structured_content_or_its_text() {
        let structured = json!({ "content": [{ "type": "text", "text": "5" }], "structuredContent": { "sum": 5 } });
        assert_eq!(tool_result_for_model(&structured), "{\"sum\":5}");
        let text = json!({ "content": [{ "type": "text", "text": "a" }, { "type": "text", "text": "b" }] });
        assert_eq!(tool_result_for_model(&text), "a\nb");
        let image =
            json!({ "content": [{ "type": "image", "data": "AA==", "mimeType": "image/png" }] });
        assert!(tool_result_for_model(&image).starts_with("[{"));
    }
}
