//! OpenAI-compatible Chat Completions (`POST <base_url>/chat/completions`): one attempt over
//! the engine's HTTP client, its request body, and its answer read into a
//! [`ChatReply`](super::provider::ChatReply).
//!
//! Sent: `model`, the system message then the conversation, `tools` (functions), `temperature`,
//! `top_p`, `max_tokens`, and `response_format: { type: json_schema }` (non-strict) for a
//! structured reply. Read: `choices[0].message` (`content`, else `refusal`; `tool_calls`) and
//! `usage` (`prompt_tokens`, `completion_tokens`, `total_tokens` — their sum when absent —
//! and `prompt_tokens_details.cached_tokens`). 408, 409, 429 and 5xx answers, and failures
//! to connect or read, may be retried; any other status is final.

use super::provider::{
    self, retry_after, AttemptFailure, ChatReply, ChatRequest, FunctionCall, ToolCall, Usage,
};
use crate::http::{self, CallFailure, HttpClient, Request};
use crate::options::OpenAiOptions;
use crate::value::truncate;
use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Map, Value};

/// Longest part of a provider's error message quoted in a fault.
const MAX_QUOTED: usize = 300;

/// One attempt at `<base_url>/chat/completions`.
pub(super) async fn attempt(
    client: &HttpClient,
    options: &OpenAiOptions,
    request: &ChatRequest<'_>,
) -> Result<ChatReply, AttemptFailure> {
    let endpoint = format!(
        "{}/chat/completions",
        options.base_url.trim_end_matches('/')
    );
    let url = http::parse_url(&endpoint).map_err(|message| AttemptFailure {
        retryable: false,
        retry_after: None,
        failure: CallFailure {
            status: 500,
            title: "Invalid provider URL".into(),
            detail: format!("the OpenAI-compatible base URL gives `{endpoint}`: {message}"),
        },
    })?;
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    if let Some(key) = &options.api_key {
        headers.push(("authorization".to_owned(), format!("Bearer {key}")));
    }
    let body = serde_json::to_vec(&body(request)).map_err(|e| AttemptFailure {
        retryable: false,
        retry_after: None,
        failure: CallFailure {
            status: 500,
            title: "Invalid model request".into(),
            detail: format!("the request could not be serialized: {e}"),
        },
    })?;
    let request_out = Request {
        method: Method::POST,
        url,
        headers,
        body: Some(Bytes::from(body)),
    };
    let response = provider::send(client, &request_out).await?;
    let status = response.status.as_u16();
    if !response.status.is_success() {
        let reason = serde_json::from_slice::<Value>(&response.body)
            .ok()
            .and_then(|body| {
                body.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(|m| truncate(m, MAX_QUOTED))
            })
            .unwrap_or_else(|| "no error message".to_owned());
        return Err(AttemptFailure {
            retryable: matches!(status, 408 | 409 | 429) || status >= 500,
            retry_after: retry_after(&response.headers),
            failure: CallFailure {
                status,
                title: provider::status_title(response.status),
                detail: format!(
                    "the model `{}` at {} answered {status}: {reason}",
                    request.model,
                    http::display_url(&request_out.url)
                ),
            },
        });
    }
    reply(&response.body).map_err(|what| AttemptFailure {
        retryable: false,
        retry_after: None,
        failure: CallFailure {
            status: 502,
            title: "Invalid model answer".into(),
            detail: format!(
                "the model `{}` at {} answered something that is not a Chat Completions response: {what}",
                request.model,
                http::display_url(&request_out.url)
            ),
        },
    })
}

/// The request body.
fn body(request: &ChatRequest<'_>) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(json!({ "role": "system", "content": request.system }));
    }
    messages.extend(
        request
            .messages
            .iter()
            .map(|m| serde_json::to_value(m).unwrap_or(Value::Null)),
    );
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|tool| {
                json!({ "type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": tool.parameters } })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(t) = request.spec.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.spec.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(n) = request.spec.max_tokens {
        body.insert("max_tokens".into(), json!(n));
    }
    if let Some((name, schema)) = request.output_schema {
        body.insert(
            "response_format".into(),
            json!({ "type": "json_schema", "json_schema": { "name": name, "schema": schema, "strict": false } }),
        );
    }
    Value::Object(body)
}

/// Reads a Chat Completions response.
fn reply(body: &[u8]) -> Result<ChatReply, String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e})"))?;
    let message = body
        .pointer("/choices/0/message")
        .ok_or("it has no `choices[0].message`")?;
    let text = |field: &str| {
        message
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let content = text("content").or_else(|| text("refusal"));
    let mut tool_calls = Vec::new();
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        for (index, call) in calls.iter().enumerate() {
            let name = call
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("tool call {index} has no `function.name`"))?;
            let arguments = match call.pointer("/function/arguments") {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => "{}".to_owned(),
                Some(other) => other.to_string(),
            };
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{index}"), str::to_owned);
            tool_calls.push(ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall {
                    name: name.to_owned(),
                    arguments,
                },
            });
        }
    }
    let usage = Usage::read(
        &body,
        [
            "/usage/prompt_tokens",
            "/usage/completion_tokens",
            "/usage/total_tokens",
            "/usage/prompt_tokens_details/cached_tokens",
        ],
    );
    Ok(ChatReply {
        content,
        tool_calls,
        usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_text_tool_calls_and_usage() {
        let body = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{ "id": "call_9", "type": "function",
                    "function": { "name": "lookupOrder", "arguments": "{\"order_id\":\"42\"}" } }] } }],
            "usage": { "prompt_tokens": 120, "completion_tokens": 7, "total_tokens": 127,
                "prompt_tokens_details": { "cached_tokens": 64 } }
        });
        let read = reply_or_panic(&body);
        assert_eq!(read.content, None);
        assert_eq!(read.tool_calls.len(), 1);
        assert_eq!(read.tool_calls[0].id, "call_9");
        assert_eq!(
            read.tool_calls[0].function.arguments,
            r#"{"order_id":"42"}"#
        );
        assert_eq!(
            read.usage,
            Usage {
                prompt_tokens: 120,
                completion_tokens: 7,
                total_tokens: 127,
                cached_tokens: 64
            }
        );
        let refusal = json!({ "choices": [{ "message": { "content": null, "refusal": "no" } }] });
        let refused = reply_or_panic(&refusal);
        assert_eq!(refused.content.as_deref(), Some("no"));
        assert_eq!(refused.usage, Usage::default());
        let partial = json!({ "choices": [{ "message": { "content": "x" } }],
            "usage": { "prompt_tokens": 3, "completion_tokens": 4 } });
        assert_eq!(reply_or_panic(&partial).usage.total_tokens, 7);
        assert!(reply(b"not json").is_err());
        assert!(reply(br#"{"choices": []}"#).is_err());
    }

    fn reply_or_panic(body: &Value) -> ChatReply {
        match reply(body.to_string().as_bytes()) {
            Ok(reply) => reply,
            Err(e) => panic!("{e}"),
        }
    }
}
