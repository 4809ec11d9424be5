//! Amazon Bedrock Runtime, the Converse API (`POST <endpoint>/model/<modelId>/converse`): one
//! attempt over the engine's HTTP client, signed with SigV4 (`aws-sigv4`, service `bedrock`)
//! with the IAM credentials the host gives (a Lambda function's execution role), its request
//! body, and its answer read into a [`ChatReply`](super::provider::ChatReply).
//!
//! Endpoint: `https://bedrock-runtime.<region>.amazonaws.com` (`.amazonaws.com.cn` in China
//! regions), or the host's override. The model id (or inference profile id or ARN) is one
//! percent-encoded path segment, as the AWS SDKs send it.
//!
//! Sent: `messages` (user and assistant turns; consecutive messages of one role are merged into
//! one turn, the conversation opens with a user turn, tool calls are `toolUse` blocks and tool
//! results `toolResult` blocks in the next user turn), `system` (the agent's instructions),
//! `toolConfig` (`toolSpec` with `inputSchema.json`) and `inferenceConfig` (`maxTokens`,
//! `temperature`, `topP`). Converse refuses `toolUse`/`toolResult` blocks in a request without
//! `toolConfig`, so when an agent is offered no tools, earlier tool calls and results are shown
//! to it as text.
//!
//! Structured output: the JSON Schema is put in the system prompt, with the instruction to
//! reply with only a matching JSON value; the agent runner validates the reply and re-asks on a
//! mismatch. (A forced tool would need `toolChoice`, which only some Bedrock models accept.)
//!
//! Read: the text blocks of `output.message.content` (joined), its `toolUse` blocks, and `usage`
//! (`inputTokens`, `outputTokens`, `totalTokens` — their sum when absent —, and
//! `cacheReadInputTokens`). Failures: the error code (`x-amzn-ErrorType`, else `__type`) and
//! `message`; 408, 429 and 5xx answers, throttling and the service's transient codes, and
//! failures to connect or read may be retried; any other status is final.

use super::provider::{
    self, retry_after, AttemptFailure, ChatReply, ChatRequest, FunctionCall, Message, ToolCall,
    Usage,
};
use crate::http::{self, CallFailure, HttpClient, Request};
use crate::options::{AwsCredentials, BedrockOptions};
use crate::value::truncate;
use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Map, Value};
use std::time::SystemTime;

/// The SigV4 signing name of Bedrock Runtime.
const SIGNING_NAME: &str = "bedrock";
/// Longest part of a provider's error message quoted in a fault.
const MAX_QUOTED: usize = 300;
/// The user turn that opens a conversation that has none (Converse requires one first).
const OPENING: &str = "(The conversation begins.)";
/// Error codes worth another attempt, whatever their status.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ModelNotReadyException",
    "ModelTimeoutException",
    "ServiceUnavailableException",
    "InternalServerException",
];

/// Where and as whom one call goes: the host's options, checked.
pub(super) struct Target<'a> {
    /// The endpoint, without a trailing `/`.
    endpoint: String,
    /// The region of the signature.
    region: &'a str,
    /// The credentials of the signature.
    credentials: &'a AwsCredentials,
}

impl<'a> Target<'a> {
    /// The target of `options`, or what to configure (a `configuration` error's detail).
    pub(super) fn new(options: &'a BedrockOptions) -> Result<Target<'a>, String> {
        let Some(region) = options.region.as_deref() else {
            return Err("Amazon Bedrock needs a region and none is configured: set AWS_REGION (Lambda sets it)".into());
        };
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "Amazon Bedrock: `{region}` is not an AWS region (such as us-east-1); check AWS_REGION"
            ));
        }
        let Some(credentials) = options.credentials.as_ref() else {
            return Err("Amazon Bedrock needs IAM credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set (with AWS_SESSION_TOKEN for temporary credentials); on Lambda the function's execution role provides them".into());
        };
        let endpoint = match options.endpoint_url.as_deref() {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => default_endpoint(region),
        };
        Ok(Target {
            endpoint,
            region,
            credentials,
        })
    }
}

/// The regional endpoint of Bedrock Runtime.
fn default_endpoint(region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://bedrock-runtime.{region}.{domain}")
}

/// One attempt at `<endpoint>/model/<modelId>/converse`.
pub(super) async fn attempt(
    client: &HttpClient,
    target: &Target<'_>,
    request: &ChatRequest<'_>,
) -> Result<ChatReply, AttemptFailure> {
    let final_failure = |title: &str, detail: String| AttemptFailure {
        retryable: false,
        retry_after: None,
        failure: CallFailure {
            status: 500,
            title: title.into(),
            detail,
        },
    };
    let endpoint = format!(
        "{}/model/{}/converse",
        target.endpoint,
        encode_segment(request.model)
    );
    let url = http::parse_url(&endpoint).map_err(|message| {
        final_failure(
            "Invalid provider URL",
            format!("the Bedrock endpoint gives `{endpoint}`: {message}"),
        )
    })?;
    let body = serde_json::to_vec(&body(request)).map_err(|e| {
        final_failure(
            "Invalid model request",
            format!("the request could not be serialized: {e}"),
        )
    })?;
    let mut headers = vec![
        ("host".to_owned(), crate::aws::host_header(&url)),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    let signature = crate::aws::signature_headers(
        target.credentials,
        target.region,
        SIGNING_NAME,
        ("POST", url.as_str()),
        &headers,
        &body,
        SystemTime::now(),
    )
    .map_err(|e| {
        final_failure(
            "Request signing failed",
            format!(
                "the request to the Bedrock model `{}` could not be signed: {e}",
                request.model
            ),
        )
    })?;
    headers.extend(signature);
    let request_out = Request {
        method: Method::POST,
        url,
        headers,
        body: Some(Bytes::from(body)),
    };
    let response = provider::send(client, &request_out).await?;
    let status = response.status.as_u16();
    if !response.status.is_success() {
        let (code, message) = error_of(&response.headers, &response.body);
        let retryable = matches!(status, 408 | 429)
            || status >= 500
            || code
                .as_deref()
                .is_some_and(|c| RETRYABLE_CODES.contains(&c));
        let hint = match code.as_deref() {
            Some("AccessDeniedException") => " (the function's role needs bedrock:InvokeModel on this model or inference profile, and the model must be enabled in the account's Bedrock model access)",
            Some("UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException") => " (check the AWS credentials and region of the function)",
            _ => "",
        };
        return Err(AttemptFailure {
            retryable,
            retry_after: retry_after(&response.headers),
            failure: CallFailure {
                status,
                title: provider::status_title(response.status),
                detail: format!(
                    "the Bedrock model `{}` at {} answered {status}{}: {}{hint}",
                    request.model,
                    http::display_url(&request_out.url),
                    code.map(|c| format!(" {c}")).unwrap_or_default(),
                    message.unwrap_or_else(|| "no error message".to_owned()),
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
                "the Bedrock model `{}` at {} answered something that is not a Converse response: {what}",
                request.model,
                http::display_url(&request_out.url)
            ),
        },
    })
}

/// A path segment, percent-encoded but for RFC 3986's unreserved characters (`:` and `/` of
/// model ids and ARNs included), as the AWS SDKs encode a URI label.
fn encode_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The request body.
fn body(request: &ChatRequest<'_>) -> Value {
    let tools_offered = !request.tools.is_empty();
    let mut body = Map::new();
    body.insert(
        "messages".into(),
        Value::Array(turns(request.messages, tools_offered)),
    );
    let mut system = request.system.to_owned();
    if let Some((_, schema)) = request.output_schema {
        if !system.is_empty() {
            system.push_str("\n\n");
        }
        system.push_str(
            "Reply with only a JSON value, without any other text, that matches this JSON Schema:\n",
        );
        system.push_str(&schema.to_string());
    }
    if !system.is_empty() {
        body.insert("system".into(), json!([{ "text": system }]));
    }
    if tools_offered {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut spec = Map::new();
                spec.insert("name".into(), json!(tool.name));
                // Converse refuses an empty description.
                if !tool.description.is_empty() {
                    spec.insert("description".into(), json!(tool.description));
                }
                spec.insert("inputSchema".into(), json!({ "json": tool.parameters }));
                json!({ "toolSpec": spec })
            })
            .collect();
        body.insert("toolConfig".into(), json!({ "tools": tools }));
    }
    let mut inference = Map::new();
    if let Some(n) = request.spec.max_tokens {
        inference.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = request.spec.temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = request.spec.top_p {
        inference.insert("topP".into(), json!(p));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    Value::Object(body)
}

/// The conversation as Converse turns: roles alternate, the first is the user's. With
/// `tools_offered` false, tool calls and results become text (Converse accepts tool blocks
/// only in a request with `toolConfig`).
fn turns(messages: &[Message], tools_offered: bool) -> Vec<Value> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, block: Value| match turns.last_mut() {
        Some((last, blocks)) if *last == role => blocks.push(block),
        _ => turns.push((role, vec![block])),
    };
    for message in messages {
        match message {
            Message::User { content } => {
                if !content.trim().is_empty() {
                    push("user", json!({ "text": content }));
                }
            }
            Message::Assistant {
                content,
                tool_calls,
                ..
            } => {
                if let Some(text) = content.as_deref().filter(|t| !t.trim().is_empty()) {
                    push("assistant", json!({ "text": text }));
                }
                for call in tool_calls {
                    let FunctionCall { name, arguments } = &call.function;
                    if tools_offered {
                        let input = match serde_json::from_str::<Value>(arguments) {
                            Ok(value @ Value::Object(_)) => value,
                            _ => json!({}),
                        };
                        push(
                            "assistant",
                            json!({ "toolUse": { "toolUseId": call.id, "name": name, "input": input } }),
                        );
                    } else {
                        push(
                            "assistant",
                            json!({ "text": format!("(called the tool `{name}` with {arguments})") }),
                        );
                    }
                }
            }
            Message::Tool {
                tool_call_id,
                name,
                content,
            } => {
                if tools_offered {
                    push(
                        "user",
                        json!({ "toolResult": { "toolUseId": tool_call_id, "content": [{ "text": content }] } }),
                    );
                } else {
                    push(
                        "user",
                        json!({ "text": format!("(the tool `{name}` returned {content})") }),
                    );
                }
            }
        }
    }
    if turns.first().is_none_or(|(role, _)| *role != "user") {
        turns.insert(0, ("user", vec![json!({ "text": OPENING })]));
    }
    turns
        .into_iter()
        .map(|(role, content)| json!({ "role": role, "content": content }))
        .collect()
}

/// Reads a Converse response.
fn reply(body: &[u8]) -> Result<ChatReply, String> {
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e})"))?;
    let blocks = body
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or("it has no `output.message.content` list")?;
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            texts.push(text);
        } else if let Some(tool_use) = block.get("toolUse") {
            let name = tool_use
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("content block {index} has a `toolUse` without `name`"))?;
            let id = tool_use
                .get("toolUseId")
                .and_then(Value::as_str)
                .map_or_else(|| format!("tooluse_{index}"), str::to_owned);
            let arguments = match tool_use.get("input") {
                None | Some(Value::Null) => "{}".to_owned(),
                Some(input) => input.to_string(),
            };
            tool_calls.push(ToolCall {
                id,
                kind: "function".into(),
                function: FunctionCall {
                    name: name.to_owned(),
                    arguments,
                },
            });
        }
        // Other blocks (reasoning, citations, images) are not part of the reply.
    }
    let content = (!texts.is_empty()).then(|| texts.join("\n"));
    let usage = Usage::read(
        &body,
        [
            "/usage/inputTokens",
            "/usage/outputTokens",
            "/usage/totalTokens",
            "/usage/cacheReadInputTokens",
        ],
    );
    Ok(ChatReply {
        content,
        tool_calls,
        usage,
    })
}

/// The error code and message of a failed call: `x-amzn-ErrorType` (`Code:…`) or the body's
/// `__type` (`…#Code`), and `message` (or `Message`).
fn error_of(headers: &[(String, String)], body: &[u8]) -> (Option<String>, Option<String>) {
    let body = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let from_header = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("x-amzn-errortype"))
        .and_then(|(_, value)| value.split(':').next());
    let from_body = || {
        body.get("__type")
            .and_then(Value::as_str)
            .and_then(|t| t.rsplit('#').next())
    };
    let code = from_header
        .or_else(from_body)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| truncate(c, 100));
    let message = body
        .get("message")
        .or_else(|| body.get("Message"))
        .and_then(Value::as_str)
        .map(|m| truncate(m, MAX_QUOTED));
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::super::{ModelSpec, ProviderKind, ToolSpec};
    use super::*;

    fn spec() -> ModelSpec {
        ModelSpec {
            provider: ProviderKind::Bedrock,
            name: Some("m".into()),
            temperature: Some(0.5),
            top_p: None,
            max_tokens: Some(300),
        }
    }

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            kind: "function".into(),
            function: FunctionCall {
                name: name.into(),
                arguments: arguments.into(),
            },
        }
    }

    fn conversation() -> Vec<Message> {
        vec![
            Message::User {
                content: "Where is order 42?".into(),
            },
            Message::Assistant {
                name: "Triage".into(),
                content: Some("Let me look.".into()),
                tool_calls: vec![call("t1", "lookupOrder", r#"{"order_id":"42"}"#)],
            },
            Message::Tool {
                tool_call_id: "t1".into(),
                name: "lookupOrder".into(),
                content: r#"{"state":"shipped"}"#.into(),
            },
            Message::User {
                content: "Thanks".into(),
            },
            Message::Assistant {
                name: "Triage".into(),
                content: Some("Shipped.".into()),
                tool_calls: vec![],
            },
            Message::Assistant {
                name: "Orders".into(),
                content: Some("Anything else?".into()),
                tool_calls: vec![],
            },
        ]
    }

    #[test]
    fn requests_carry_alternating_turns_tools_and_inference_settings() {
        let messages = conversation();
        let tools = [ToolSpec {
            name: "lookupOrder".into(),
            description: String::new(),
            parameters: json!({ "type": "object" }),
        }];
        let spec = spec();
        let request = ChatRequest {
            model: "m",
            spec: &spec,
            system: "You route.",
            messages: &messages,
            tools: &tools,
            output_schema: None,
        };
        assert_eq!(
            body(&request),
            json!({
                "messages": [
                    { "role": "user", "content": [{ "text": "Where is order 42?" }] },
                    { "role": "assistant", "content": [
                        { "text": "Let me look." },
                        { "toolUse": { "toolUseId": "t1", "name": "lookupOrder", "input": { "order_id": "42" } } } ] },
                    { "role": "user", "content": [
                        { "toolResult": { "toolUseId": "t1", "content": [{ "text": "{\"state\":\"shipped\"}" }] } },
                        { "text": "Thanks" } ] },
                    { "role": "assistant", "content": [{ "text": "Shipped." }, { "text": "Anything else?" }] }
                ],
                "system": [{ "text": "You route." }],
                "toolConfig": { "tools": [{ "toolSpec": { "name": "lookupOrder", "inputSchema": { "json": { "type": "object" } } } }] },
                "inferenceConfig": { "maxTokens": 300, "temperature": 0.5 }
            })
        );
    }

    #[test]
    fn without_tools_tool_blocks_become_text_and_a_schema_goes_in_the_system_prompt() {
        let messages = conversation()[1..3].to_vec();
        let schema = json!({ "type": "object", "required": ["ok"] });
        let spec = ModelSpec {
            temperature: None,
            max_tokens: None,
            ..spec()
        };
        let request = ChatRequest {
            model: "m",
            spec: &spec,
            system: "",
            messages: &messages,
            tools: &[],
            output_schema: Some(("A_output", &schema)),
        };
        let sent = body(&request);
        assert_eq!(
            sent["messages"],
            json!([
                { "role": "user", "content": [{ "text": OPENING }] },
                { "role": "assistant", "content": [
                    { "text": "Let me look." },
                    { "text": "(called the tool `lookupOrder` with {\"order_id\":\"42\"})" } ] },
                { "role": "user", "content": [{ "text": "(the tool `lookupOrder` returned {\"state\":\"shipped\"})" }] }
            ])
        );
        let system = sent["system"][0]["text"].as_str().unwrap_or_default();
        assert!(
            system.starts_with("Reply with only a JSON value"),
            "{system}"
        );
        assert!(
            system.ends_with(r#"{"required":["ok"],"type":"object"}"#),
            "{system}"
        );
        assert!(sent.get("toolConfig").is_none());
        assert!(sent.get("inferenceConfig").is_none());
    }

    #[test]
    fn replies_read_text_tool_uses_and_usage() {
        let body = json!({
            "output": { "message": { "role": "assistant", "content": [
                { "text": "Looking it up." },
                { "reasoningContent": { "reasoningText": { "text": "hmm" } } },
                { "toolUse": { "toolUseId": "tooluse_abc", "name": "lookupOrder", "input": { "order_id": "42" } } } ] } },
            "stopReason": "tool_use",
            "usage": { "inputTokens": 120, "outputTokens": 7, "totalTokens": 191, "cacheReadInputTokens": 64 },
            "metrics": { "latencyMs": 310 }
        });
        let read = reply_or_panic(&body);
        assert_eq!(read.content.as_deref(), Some("Looking it up."));
        assert_eq!(
            read.tool_calls,
            vec![call("tooluse_abc", "lookupOrder", r#"{"order_id":"42"}"#)]
        );
        assert_eq!(
            read.usage,
            Usage {
                prompt_tokens: 120,
                completion_tokens: 7,
                total_tokens: 191,
                cached_tokens: 64
            }
        );
        let partial = json!({ "output": { "message": { "role": "assistant", "content": [] } },
            "stopReason": "max_tokens", "usage": { "inputTokens": 3, "outputTokens": 4 } });
        let partial = reply_or_panic(&partial);
        assert_eq!(partial.content, None);
        assert_eq!(partial.usage.total_tokens, 7);
        assert!(reply(b"not json").is_err());
        assert!(reply(br#"{"output": {}}"#).is_err());
        assert!(reply(br#"{"output": {"message": {"content": [{"toolUse": {}}]}}}"#).is_err());
    }

    #[test]
    fn errors_name_their_code_from_the_header_or_the_body() {
        let headers = vec![(
            "x-amzn-errortype".to_owned(),
            "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/".to_owned(),
        )];
        assert_eq!(
            error_of(&headers, br#"{"message":"Too many requests"}"#),
            (
                Some("ThrottlingException".into()),
                Some("Too many requests".into())
            )
        );
        assert_eq!(
            error_of(
                &[],
                br#"{"__type":"com.amazon.coral.validate#ValidationException","Message":"bad"}"#
            ),
            (Some("ValidationException".into()), Some("bad".into()))
        );
        assert_eq!(error_of(&[], b"<html>"), (None, None));
    }

    #[test]
    fn model_ids_are_one_encoded_segment_and_endpoints_follow_the_region() {
        assert_eq!(
            encode_segment("anthropic.claude-3-5-haiku-20241022-v1:0"),
            "anthropic.claude-3-5-haiku-20241022-v1%3A0"
        );
        assert_eq!(
            encode_segment("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.x"
        );
        assert_eq!(
            default_endpoint("eu-west-3"),
            "https://bedrock-runtime.eu-west-3.amazonaws.com"
        );
        assert_eq!(
            default_endpoint("cn-north-1"),
            "https://bedrock-runtime.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn missing_settings_say_what_to_set() {
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        };
        let message = |options: &BedrockOptions| Target::new(options).err().unwrap_or_default();
        assert!(message(&BedrockOptions::default()).contains("AWS_REGION"));
        let no_credentials = BedrockOptions {
            region: Some("us-east-1".into()),
            ..BedrockOptions::default()
        };
        assert!(message(&no_credentials).contains("AWS_ACCESS_KEY_ID"));
        let bad_region = BedrockOptions {
            region: Some("us-east-1.evil.example/".into()),
            credentials: Some(credentials.clone()),
            endpoint_url: None,
        };
        assert!(message(&bad_region).contains("not an AWS region"));
        let overridden = BedrockOptions {
            region: Some("us-east-1".into()),
            credentials: Some(credentials),
            endpoint_url: Some("http://127.0.0.1:9/".into()),
        };
        assert!(matches!(Target::new(&overridden), Ok(t) if t.endpoint == "http://127.0.0.1:9"));
    }

    fn reply_or_panic(body: &Value) -> ChatReply {
        match reply(body.to_string().as_bytes()) {
            Ok(reply) => reply,
            Err(e) => panic!("{e}"),
        }
    }
}
