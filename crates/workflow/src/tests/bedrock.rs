//! `call: agents` on Amazon Bedrock's Converse API, against a scripted stand-in on loopback
//! (`openai_standin` answering Converse bodies): the wire format, the SigV4 signature (checked
//! here by an independent implementation of the algorithm, with AWS's example key), a tool call
//! round trip, a handoff, usage counts, throttling retried, client errors and missing
//! credentials.

use super::openai_standin::{OpenAiStandIn, Recorded, Reply};
use super::*;
use aws_lc_rs::{digest, hmac};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// AWS's documented example credentials.
const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE/session+token==";
const REGION: &str = "us-east-1";
const HAIKU: &str = "anthropic.claude-3-5-haiku-20241022-v1:0";

/// Engine options that send Bedrock calls to `standin` (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`),
/// retrying fast.
fn options(standin: &OpenAiStandIn, session_token: Option<&str>) -> EngineOptions {
    EngineOptions {
        llm: LlmOptions {
            bedrock: BedrockOptions {
                region: Some(REGION.into()),
                credentials: Some(AwsCredentials {
                    access_key_id: ACCESS_KEY_ID.into(),
                    secret_access_key: SECRET_ACCESS_KEY.into(),
                    session_token: session_token.map(str::to_owned),
                }),
                endpoint_url: Some(format!("http://{}", standin.addr)),
            },
            calls: LlmCallPolicy {
                attempt_timeout: Duration::from_secs(10),
                max_attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
            ..LlmOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn load_with(yaml: &str, options: &EngineOptions) -> Workflow {
    match Workflow::parse_with(Path::new("bedrock.yaml"), yaml, options) {
        Ok(workflow) => workflow,
        Err(e) => panic!("{e}"),
    }
}

/// A 200 Converse answer with these content blocks and token counts.
fn converse(content: Value, stop_reason: &str, usage: (u64, u64, u64)) -> Reply {
    let (input, output, cache_read) = usage;
    Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: json!({
            "output": { "message": { "role": "assistant", "content": content } },
            "stopReason": stop_reason,
            "usage": { "inputTokens": input, "outputTokens": output,
                       "totalTokens": input + output + cache_read,
                       "cacheReadInputTokens": cache_read, "cacheWriteInputTokens": 0 },
            "metrics": { "latencyMs": 42 }
        }),
    }
}

fn text(content: &str, usage: (u64, u64, u64)) -> Reply {
    converse(json!([{ "text": content }]), "end_turn", usage)
}

fn tool_use(id: &str, name: &str, input: Value, usage: (u64, u64, u64)) -> Reply {
    converse(
        json!([{ "toolUse": { "toolUseId": id, "name": name, "input": input } }]),
        "tool_use",
        usage,
    )
}

/// An error answer as Bedrock Runtime sends it.
fn aws_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::Json {
        status,
        headers: vec![(
            "x-amzn-ErrorType".into(),
            format!("{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )],
        body: json!({ "message": message }),
    }
}

/// Order support on Bedrock: Triage hands off to Orders (a model decision), Orders looks orders
/// up.
const SUPPORT: &str = r#"
document: { dsl: '1.0.3', namespace: test, name: support, version: '1.0.0' }
use:
  functions:
    lookupOrder:
      metadata: { description: Looks an order up by its id. }
      input:
        schema:
          format: json
          document: { type: object, properties: { order_id: { type: string } }, required: [ order_id ] }
      set: { order: '${ { id: .order_id, state: "shipped" } }' }
do:
  - chat:
      call: agents
      with:
        agents:
          - name: Triage
            instructions: You route customers.
            model: { provider: bedrock, name: 'anthropic.claude-3-5-haiku-20241022-v1:0', temperature: 0.2, max_tokens: 800 }
          - name: Orders
            instructions: You answer order questions.
            model: { provider: bedrock, name: amazon.nova-lite-v1:0, top_p: 0.9 }
            tools: [ lookupOrder ]
        handoffs:
          - { from: Triage, to: Orders, description: the customer asks about an order }
        initial_message: '${ .message }'
"#;

#[tokio::test]
async fn a_signed_conversation_hands_off_calls_a_dsl_function_and_is_metered() {
    let standin = OpenAiStandIn::start(vec![
        tool_use("tooluse_1", "transfer_to_Orders", json!({}), (100, 5, 0)),
        tool_use(
            "tooluse_2",
            "lookupOrder",
            json!({ "order_id": "42" }),
            (150, 10, 64),
        ),
        text("Order 42 has shipped.", (200, 12, 128)),
    ]);
    let workflow = load_with(SUPPORT, &options(&standin, Some(SESSION_TOKEN)));
    let result = run(&workflow, json!({ "message": "Where is order 42?" })).await;
    let out = output(&result);
    assert_eq!(out["last_agent"], json!("Orders"));
    assert_eq!(
        serde_json::from_str::<Value>(out["messages"][4]["content"].as_str().unwrap_or_default())
            .unwrap_or_default(),
        json!({ "order": { "id": "42", "state": "shipped" } })
    );
    assert_eq!(
        out["messages"][5]["content"],
        json!("Order 42 has shipped.")
    );

    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        verify_signature(request, Some(SESSION_TOKEN));
    }
    let first = &requests[0];
    assert_eq!(
        first.path,
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert_eq!(first.header("content-type"), Some("application/json"));
    let mut sent = first.body.clone();
    let tool_config = sent
        .as_object_mut()
        .and_then(|body| body.remove("toolConfig"))
        .unwrap_or_default();
    assert_eq!(
        sent,
        json!({
            "messages": [{ "role": "user", "content": [{ "text": "Where is order 42?" }] }],
            "system": [{ "text": "You route customers." }],
            "inferenceConfig": { "maxTokens": 800, "temperature": 0.2 }
        })
    );
    let transfer = &tool_config["tools"][0]["toolSpec"];
    assert_eq!(tool_config["tools"].as_array().map(Vec::len), Some(1));
    assert_eq!(transfer["name"], json!("transfer_to_Orders"));
    assert!(
        transfer["description"]
            .as_str()
            .is_some_and(|d| d.contains("the customer asks about an order")),
        "{transfer}"
    );
    assert_eq!(transfer["inputSchema"]["json"]["type"], json!("object"));

    let second = &requests[1];
    assert_eq!(second.path, "/model/amazon.nova-lite-v1%3A0/converse");
    assert_eq!(second.body["inferenceConfig"], json!({ "topP": 0.9 }));
    assert_eq!(
        second.body["toolConfig"]["tools"][0]["toolSpec"],
        json!({ "name": "lookupOrder", "description": "Looks an order up by its id.",
                "inputSchema": { "json": { "type": "object", "properties": { "order_id": { "type": "string" } }, "required": [ "order_id" ] } } })
    );
    // The transfer is a toolUse answered by a toolResult in the next user turn.
    assert_eq!(
        second.body["messages"][1],
        json!({ "role": "assistant", "content": [
            { "toolUse": { "toolUseId": "tooluse_1", "name": "transfer_to_Orders", "input": {} } } ] })
    );
    assert_eq!(second.body["messages"][2]["role"], json!("user"));
    assert_eq!(
        second.body["messages"][2]["content"][0]["toolResult"]["toolUseId"],
        json!("tooluse_1")
    );

    // The tool's arguments reached the DSL function, and its output went back to the model.
    let third = &requests[2].body["messages"];
    assert_eq!(
        third[3],
        json!({ "role": "assistant", "content": [
            { "toolUse": { "toolUseId": "tooluse_2", "name": "lookupOrder", "input": { "order_id": "42" } } } ] })
    );
    let result_block = &third[4]["content"][0]["toolResult"];
    assert_eq!(result_block["toolUseId"], json!("tooluse_2"));
    assert_eq!(
        serde_json::from_str::<Value>(
            result_block["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
        )
        .unwrap_or_default(),
        json!({ "order": { "id": "42", "state": "shipped" } })
    );

    let calls: Vec<(&str, &str, &str, u64, u64, u64, u64)> = result
        .llm_calls
        .iter()
        .map(|c| {
            (
                c.agent.as_str(),
                c.model.as_str(),
                c.provider.as_str(),
                c.prompt_tokens,
                c.completion_tokens,
                c.total_tokens,
                c.cached_tokens,
            )
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            ("Triage", HAIKU, "bedrock", 100, 5, 105, 0),
            (
                "Orders",
                "amazon.nova-lite-v1:0",
                "bedrock",
                150,
                10,
                224,
                64
            ),
            (
                "Orders",
                "amazon.nova-lite-v1:0",
                "bedrock",
                200,
                12,
                340,
                128
            ),
        ]
    );
    assert_eq!(result.metrics.http_calls, 0);
}

/// One agent that replies once.
fn single(model: &str) -> String {
    format!(
        r#"
document: {{ dsl: '1.0.3', namespace: test, name: single, version: '1.0.0' }}
do:
  - chat:
      call: agents
      with:
        agents:
          - name: Rater
            instructions: You rate.
            model: {{ provider: bedrock, name: '{model}' }}
        initial_message: '${{ .text }}'
"#
    )
}

#[tokio::test]
async fn without_a_session_token_the_signature_covers_no_token() {
    let standin = OpenAiStandIn::start(vec![text("ok", (3, 1, 0))]);
    let workflow = load_with(&single(HAIKU), &options(&standin, None));
    let result = run(&workflow, json!({ "text": "x" })).await;
    assert_eq!(output(&result)["messages"][1]["content"], json!("ok"));
    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("x-amz-security-token"), None);
    verify_signature(&requests[0], None);
}

#[tokio::test]
async fn throttling_is_retried_then_the_call_succeeds() {
    let standin = OpenAiStandIn::start(vec![
        aws_error(
            429,
            "ThrottlingException",
            "Too many requests, please wait.",
        ),
        // A throttling code is retried whatever the status it comes with.
        aws_error(400, "ThrottlingException", "Rate exceeded"),
        text("done", (5, 1, 0)),
    ]);
    let workflow = load_with(&single(HAIKU), &options(&standin, Some(SESSION_TOKEN)));
    let result = run(&workflow, json!({ "text": "x" })).await;
    assert_eq!(output(&result)["messages"][1]["content"], json!("done"));
    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        verify_signature(request, Some(SESSION_TOKEN));
    }
    assert_eq!(result.llm_calls.len(), 1);
    assert_eq!(result.llm_calls[0].total_tokens, 6);
}

#[tokio::test]
async fn server_errors_are_retried_until_the_attempts_run_out() {
    let standin = OpenAiStandIn::start(vec![
        aws_error(500, "InternalServerException", "internal"),
        aws_error(503, "ServiceUnavailableException", "unavailable"),
        aws_error(503, "ServiceUnavailableException", "still unavailable"),
        text("too late", (1, 1, 0)),
    ]);
    let workflow = load_with(&single(HAIKU), &options(&standin, Some(SESSION_TOKEN)));
    let result = run(&workflow, json!({ "text": "x" })).await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("communication"));
    assert_eq!(error.status, 503);
    let detail = error.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("ServiceUnavailableException: still unavailable"),
        "{detail}"
    );
    assert!(detail.contains("gave up after 3 attempts"), "{detail}");
    assert_eq!(standin.requests().len(), 3);
    assert!(result.llm_calls.is_empty());
}

#[tokio::test]
async fn client_errors_fault_communication_at_once_and_say_what_to_fix() {
    let standin = OpenAiStandIn::start(vec![aws_error(
        400,
        "ValidationException",
        "The provided model identifier is invalid.",
    )]);
    let workflow = load_with(
        &single("no-such-model"),
        &options(&standin, Some(SESSION_TOKEN)),
    );
    let result = run(&workflow, json!({ "text": "x" })).await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("communication"));
    assert_eq!(error.status, 400);
    let detail = error.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("`no-such-model`")
            && detail.contains("ValidationException: The provided model identifier is invalid."),
        "{detail}"
    );
    assert_eq!(standin.requests().len(), 1);

    let standin = OpenAiStandIn::start(vec![aws_error(
        403,
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    )]);
    let workflow = load_with(&single(HAIKU), &options(&standin, Some(SESSION_TOKEN)));
    let result = run(&workflow, json!({ "text": "x" })).await;
    let error = fault(&result);
    assert_eq!(error.status, 403);
    let detail = error.detail.clone().unwrap_or_default();
    assert!(detail.contains("bedrock:InvokeModel"), "{detail}");
    assert_eq!(standin.requests().len(), 1);
}

#[tokio::test]
async fn missing_credentials_or_region_fault_with_a_configuration_error() {
    let standin = OpenAiStandIn::start(vec![text("never", (1, 1, 0))]);
    for (bedrock, names) in [
        (
            BedrockOptions {
                region: Some(REGION.into()),
                credentials: None,
                endpoint_url: Some(format!("http://{}", standin.addr)),
            },
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        (
            BedrockOptions {
                region: None,
                ..options(&standin, None).llm.bedrock
            },
            "AWS_REGION",
        ),
    ] {
        let options = EngineOptions {
            llm: LlmOptions {
                bedrock,
                ..LlmOptions::default()
            },
            ..EngineOptions::default()
        };
        let workflow = load_with(&single(HAIKU), &options);
        let result = run(&workflow, json!({ "text": "x" })).await;
        let error = fault(&result);
        assert_eq!(error.type_, WorkflowError::standard_type("configuration"));
        let detail = error.detail.clone().unwrap_or_default();
        assert!(detail.contains(names), "{detail}");
        assert!(result.llm_calls.is_empty());
    }
    assert!(standin.requests().is_empty());
}

#[tokio::test]
async fn structured_outputs_are_asked_for_in_the_system_prompt_and_validated() {
    let yaml = single(HAIKU).replace(
        "instructions: You rate.",
        "instructions: You rate.\n            output_schema: { type: object, properties: { score: { type: integer } }, required: [ score ] }",
    );
    let standin = OpenAiStandIn::start(vec![
        text("Great!", (10, 2, 0)),
        text("```json\n{\"score\": 5}\n```", (20, 4, 0)),
    ]);
    let workflow = load_with(&yaml, &options(&standin, Some(SESSION_TOKEN)));
    let result = run(&workflow, json!({ "text": "rate this" })).await;
    assert_eq!(
        output(&result)["structured_outputs"],
        json!({ "Rater": { "score": 5 } })
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    let system = requests[0].body["system"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        system.starts_with("You rate.\n\nReply with only a JSON value"),
        "{system}"
    );
    assert!(system.contains(r#""required":["score"]"#), "{system}");
    // The re-ask is the user's turn after the rejected reply.
    let messages = &requests[1].body["messages"];
    assert_eq!(messages[1]["content"][0]["text"], json!("Great!"));
    assert_eq!(messages[2]["role"], json!("user"));
    assert!(messages[2]["content"][0]["text"]
        .as_str()
        .is_some_and(|t| t.contains("does not match the required JSON Schema")));
    assert_eq!(result.llm_calls.len(), 2);
}

#[test]
fn a_bedrock_model_needs_a_name() {
    let yaml = single(HAIKU).replace(
        &format!("{{ provider: bedrock, name: '{HAIKU}' }}"),
        "{ provider: bedrock, temperature: 0.1 }",
    );
    let message = match Workflow::parse(Path::new("bedrock.yaml"), &yaml) {
        Ok(_) => panic!("loaded without a model name"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("`name` is required with provider `bedrock`")
            && message.contains("/do/0/chat/with/agents/0/model"),
        "{message}"
    );
}

/// Checks the SigV4 `Authorization` of `request` as AWS would: scope (date, region, service
/// `bedrock`), signed headers, and the signature recomputed from the request as received
/// (canonical request → string to sign → HMAC chain from the example secret key).
fn verify_signature(request: &Recorded, session_token: Option<&str>) {
    let authorization = request.header("authorization").unwrap_or_default();
    let Some(fields) = authorization.strip_prefix("AWS4-HMAC-SHA256 ") else {
        panic!("not a SigV4 authorization: `{authorization}`");
    };
    let field = |name: &str| {
        fields
            .split(", ")
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_default()
            .to_owned()
    };
    let (credential, signed_headers, signature) = (
        field("Credential="),
        field("SignedHeaders="),
        field("Signature="),
    );
    let amz_date = request.header("x-amz-date").unwrap_or_default();
    assert_eq!(amz_date.len(), 16, "x-amz-date `{amz_date}`");
    let date = &amz_date[..8];
    let scope = format!("{date}/{REGION}/bedrock/aws4_request");
    assert_eq!(credential, format!("{ACCESS_KEY_ID}/{scope}"));
    let signed: Vec<&str> = signed_headers.split(';').collect();
    for name in ["content-type", "host", "x-amz-date"] {
        assert!(
            signed.contains(&name),
            "{name} is not signed: {signed_headers}"
        );
    }
    assert_eq!(request.header("x-amz-security-token"), session_token);
    assert_eq!(
        signed.contains(&"x-amz-security-token"),
        session_token.is_some(),
        "{signed_headers}"
    );

    // Non-S3 services sign the path with every segment encoded once more.
    let canonical_uri: String = request
        .path
        .split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/");
    let canonical_headers: String = signed
        .iter()
        .map(|name| {
            let value = request.header(name).unwrap_or_default();
            format!("{name}:{}\n", value.trim())
        })
        .collect();
    let canonical_request = format!(
        "POST\n{canonical_uri}\n\n{canonical_headers}\n{signed_headers}\n{}",
        hex(digest::digest(&digest::SHA256, &request.raw_body).as_ref())
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let mut key = format!("AWS4{SECRET_ACCESS_KEY}").into_bytes();
    for part in [date, REGION, "bedrock", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    assert_eq!(
        signature,
        hex(&hmac_sha256(&key, string_to_sign.as_bytes())),
        "signature mismatch for the canonical request:\n{canonical_request}"
    );
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 encoding of everything but the unreserved characters.
fn uri_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
