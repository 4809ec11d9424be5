//! `call: a2a`: a JSON-RPC call of an A2A agent (the DSL's A2A call, protocol v0.3 method names)
//! through the engine's HTTP client (metered as `http` usage).
//!
//! The server is `server`, or the JSON-RPC URL of the agent card `agentCard` names (fetched with
//! a `GET`: `url` with `preferredTransport` `JSONRPC` or no transport, else the first
//! `additionalInterfaces`/`supportedInterfaces` entry whose transport is JSON-RPC). The card's
//! endpoint authentication is sent to the agent only when both are of one origin. For
//! `message/send` and `message/stream`, `message.messageId` defaults to a new UUID and
//! `message.role` to `user`, as the DSL says. The output is the JSON-RPC result; for
//! `message/stream` and `tasks/resubscribe` (an SSE answer) it is the array of every event's
//! result, in order. A JSON-RPC error (of the answer or of any event), a transport failure or an
//! answer that is not JSON-RPC raises the DSL's `runtime` error.

use crate::expr::{Args, EvalError, Template};
use crate::http::{display_url, CallFailure, Endpoint, HttpClient, HttpMeter, Request};
use crate::mcp::{messages, rpc_result, McpFailure};
use crate::value::truncate;
use bytes::Bytes;
use hyper::Method;
use jaq_json::Val;
use serde_json::{json, Value};
use url::Url;

/// The methods `call: a2a` may send (the DSL's list).
pub(crate) const METHODS: [&str; 11] = [
    "message/send",
    "message/stream",
    "tasks/get",
    "tasks/list",
    "tasks/cancel",
    "tasks/resubscribe",
    "tasks/pushNotificationConfig/set",
    "tasks/pushNotificationConfig/get",
    "tasks/pushNotificationConfig/list",
    "tasks/pushNotificationConfig/delete",
    "agent/getAuthenticatedExtendedCard",
];

/// A compiled `call: a2a`.
pub(crate) struct A2aCall {
    /// `with.method`.
    pub(crate) method: String,
    /// `with.agentCard` (its endpoint) or `with.server`.
    pub(crate) agent: AgentRef,
    /// `with.parameters`.
    pub(crate) parameters: Option<Template>,
}

/// How the agent is found.
pub(crate) enum AgentRef {
    /// The agent card at this endpoint names the JSON-RPC URL.
    Card(Endpoint),
    /// The JSON-RPC endpoint itself.
    Server(Endpoint),
}

/// Where the call goes, evaluated: a URL and the headers of its authentication.
pub(crate) enum Resolved {
    /// The agent card's.
    Card(Url, Vec<(String, String)>),
    /// The server's.
    Server(Url, Vec<(String, String)>),
}

impl A2aCall {
    /// Evaluates the endpoint on `input`.
    pub(crate) fn resolve(&self, input: &Val, args: &Args<'_>) -> Result<Resolved, EvalError> {
        let evaluate = |endpoint: &Endpoint| -> Result<(Url, Vec<(String, String)>), EvalError> {
            let url = endpoint.url(input, args)?;
            let mut headers = Vec::new();
            if let Some(auth) = &endpoint.auth {
                headers.push(("authorization".to_owned(), auth.header_value(input, args)?));
            }
            Ok((url, headers))
        };
        Ok(match &self.agent {
            AgentRef::Card(endpoint) => {
                let (url, headers) = evaluate(endpoint)?;
                Resolved::Card(url, headers)
            }
            AgentRef::Server(endpoint) => {
                let (url, headers) = evaluate(endpoint)?;
                Resolved::Server(url, headers)
            }
        })
    }

    /// `parameters` with the defaults the DSL gives `message/send` and `message/stream`.
    pub(crate) fn params(&self, mut params: Value) -> Value {
        if matches!(self.method.as_str(), "message/send" | "message/stream") {
            if let Some(Value::Object(message)) = params.get_mut("message") {
                message
                    .entry("messageId")
                    .or_insert_with(|| json!(uuid::Uuid::now_v7().to_string()));
                message.entry("role").or_insert_with(|| json!("user"));
            }
        }
        params
    }

    /// Whether the answer is an SSE stream of results.
    fn streams(&self) -> bool {
        matches!(self.method.as_str(), "message/stream" | "tasks/resubscribe")
    }
}

/// Sends the call; the JSON-RPC result (or the array of a stream's results), or why not, with
/// the URL it concerns.
pub(crate) async fn call(
    http: &HttpClient,
    meter: &HttpMeter,
    call: &A2aCall,
    resolved: Resolved,
    params: Value,
) -> Result<Value, (McpFailure, Url)> {
    let (url, headers) = match resolved {
        Resolved::Server(url, headers) => (url, headers),
        Resolved::Card(card_url, card_headers) => {
            let card = get_card(http, meter, &card_url, &card_headers)
                .await
                .map_err(|f| (f, card_url.clone()))?;
            let url = jsonrpc_url(&card, &card_url).map_err(|f| (f, card_url.clone()))?;
            // The card's credentials go only to its own origin.
            let headers = if url.origin() == card_url.origin() {
                card_headers
            } else {
                Vec::new()
            };
            (url, headers)
        }
    };
    let message = json!({ "jsonrpc": "2.0", "id": 1, "method": call.method, "params": params });
    let mut all = headers;
    all.push(("content-type".into(), "application/json".into()));
    all.push((
        "accept".into(),
        if call.streams() {
            "text/event-stream".into()
        } else {
            "application/json".into()
        },
    ));
    let request = Request {
        method: Method::POST,
        url: url.clone(),
        headers: all,
        body: Some(Bytes::from(message.to_string())),
    };
    let response = exchange(http, meter, &request)
        .await
        .map_err(|f| (f, url.clone()))?;
    let answers = messages(&response).map_err(|f| (f, url.clone()))?;
    if call.streams() {
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(rpc_result(answer).map_err(|f| (f, url.clone()))?);
        }
        return Ok(Value::Array(results));
    }
    let Some(answer) = answers.into_iter().find(|m| m["id"] == 1) else {
        return Err((
            McpFailure::Protocol("the answer holds no JSON-RPC response to the request".into()),
            url,
        ));
    };
    rpc_result(answer).map_err(|f| (f, url))
}

async fn exchange(
    http: &HttpClient,
    meter: &HttpMeter,
    request: &Request,
) -> Result<crate::http::Response, McpFailure> {
    let response = http
        .exchange(request, meter)
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
            detail: format!(
                "{} {} answered {status}",
                request.method,
                display_url(&request.url)
            ),
        }));
    }
    Ok(response)
}

/// Fetches the agent card.
async fn get_card(
    http: &HttpClient,
    meter: &HttpMeter,
    url: &Url,
    headers: &[(String, String)],
) -> Result<Value, McpFailure> {
    let mut headers = headers.to_vec();
    headers.push(("accept".into(), "application/json".into()));
    let request = Request {
        method: Method::GET,
        url: url.clone(),
        headers,
        body: None,
    };
    let response = exchange(http, meter, &request).await?;
    serde_json::from_slice(&response.body)
        .map_err(|e| McpFailure::Protocol(format!("the agent card is not JSON ({e})")))
}

/// The JSON-RPC URL an agent card names (relative URLs against the card's).
fn jsonrpc_url(card: &Value, card_url: &Url) -> Result<Url, McpFailure> {
    let jsonrpc = |transport: &Value| {
        transport.is_null()
            || transport
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("JSONRPC"))
    };
    let mut candidates: Vec<&str> = Vec::new();
    if let Some(url) = card["url"].as_str() {
        if jsonrpc(&card["preferredTransport"]) {
            candidates.push(url);
        }
    }
    for list in ["additionalInterfaces", "supportedInterfaces"] {
        for interface in card[list].as_array().into_iter().flatten() {
            let transport = interface
                .get("transport")
                .or_else(|| interface.get("protocolBinding"))
                .unwrap_or(&Value::Null);
            if let (Some(url), true) = (interface["url"].as_str(), jsonrpc(transport)) {
                candidates.push(url);
            }
        }
    }
    let Some(first) = candidates.first() else {
        return Err(McpFailure::Protocol(
            "the agent card names no JSON-RPC interface (`url` with transport JSONRPC)".into(),
        ));
    };
    let url = card_url.join(first).map_err(|e| {
        McpFailure::Protocol(format!(
            "the agent card's URL `{}` is invalid ({e})",
            truncate(first, 80)
        ))
    })?;
    crate::http::parse_url(url.as_str()).map_err(McpFailure::Protocol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_names_the_jsonrpc_url_in_either_protocol_version() {
        let base = Url::parse("https://agents.example.com/.well-known/agent-card.json").unwrap();
        let v03 =
            json!({ "url": "https://agents.example.com/a2a", "preferredTransport": "JSONRPC" });
        assert_eq!(
            jsonrpc_url(&v03, &base).unwrap().as_str(),
            "https://agents.example.com/a2a"
        );
        let grpc_first = json!({ "url": "grpc://x", "preferredTransport": "GRPC",
            "additionalInterfaces": [{ "url": "/rpc", "transport": "JSONRPC" }] });
        assert_eq!(
            jsonrpc_url(&grpc_first, &base).unwrap().as_str(),
            "https://agents.example.com/rpc"
        );
        let v10 = json!({ "supportedInterfaces": [{ "url": "http://127.0.0.1:9/a2a", "protocolBinding": "JSONRPC" }] });
        assert_eq!(
            jsonrpc_url(&v10, &base).unwrap().as_str(),
            "http://127.0.0.1:9/a2a"
        );
        assert!(jsonrpc_url(&json!({ "name": "x" }), &base).is_err());
    }
}
