//! `call: mcp` against a real MCP server (the official `mcp` Python SDK, streamable HTTP, on
//! loopback): the session as the protocol has it (initialize first, the initialized
//! notification, the method, the DELETE of the session), both answer forms (SSE streams and
//! JSON bodies), stateless servers, every method of the DSL's list, errors as the DSL's
//! `runtime` error (a JSON-RPC error, a transport failure, `isError: true`), authentication,
//! the call's `timeout`, and the load-time refusals.

use super::mcp_server::McpServer;
use super::*;

fn call(url: &str, method: &str, parameters: Value) -> String {
    format!(
        "{HEAD}do:\n- c:\n    call: mcp\n    with:\n      method: {method}\n      parameters: {parameters}\n      transport: {{ http: {{ endpoint: '{url}' }} }}\n"
    )
}

#[tokio::test]
async fn a_tool_call_is_a_session_initialize_the_call_and_its_end() {
    let mut server = McpServer::start(&[]);
    let result = run(
        &workflow(&call(
            server.url(),
            "tools/call",
            json!({ "name": "add", "arguments": { "a": 2, "b": 3 } }),
        )),
        json!({}),
    )
    .await;
    let out = output(&result);
    assert_eq!(out["isError"], false, "{out}");
    assert_eq!(out["content"][0]["type"], "text", "{out}");
    let text: Value = serde_json::from_str(out["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, json!({ "sum": 5 }));
    // initialize (no session yet, no version header), initialized, tools/call, DELETE.
    let requests = server.requests(4);
    let methods: Vec<&str> = requests
        .iter()
        .filter_map(|r| r["method"].as_str())
        .collect();
    assert_eq!(methods, ["POST", "POST", "POST", "DELETE"], "{requests:?}");
    assert!(requests[0]["session"].is_null());
    assert!(requests[0]["version"].is_null());
    let session = requests[1]["session"].as_str().expect("a session id");
    for later in &requests[1..] {
        assert_eq!(later["session"], session);
        assert_eq!(later["version"], "2025-06-18");
    }
    assert_eq!(requests[0]["accept"], "application/json, text/event-stream");
    // Each exchange is metered as HTTP usage.
    assert_eq!(result.metrics.http_calls, 4);
    assert!(result.metrics.http_bytes_received > 0);
}

#[tokio::test]
async fn every_method_runs_on_a_stateless_server_answering_json() {
    let mut server = McpServer::start(&["--json", "--stateless"]);
    let url = server.url().to_owned();
    let cases = [
        ("tools/list", json!(null)),
        ("prompts/list", json!(null)),
        (
            "prompts/get",
            json!({ "name": "review", "arguments": { "topic": "the launch" } }),
        ),
        ("resources/list", json!(null)),
        ("resources/read", json!({ "uri": "memo://readme" })),
        ("resources/templates/list", json!(null)),
    ];
    let mut outputs = Vec::new();
    for (method, parameters) in cases {
        let result = run(&workflow(&call(&url, method, parameters)), json!({})).await;
        outputs.push(output(&result).clone());
    }
    let tools: Vec<&str> = outputs[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tools, ["add", "greet", "fail", "slow"]);
    assert_eq!(outputs[1]["prompts"][0]["name"], "review");
    assert_eq!(
        outputs[2]["messages"][0]["content"]["text"],
        "Please review the launch."
    );
    assert_eq!(outputs[3]["resources"][0]["uri"], "memo://readme");
    assert_eq!(outputs[4]["contents"][0]["text"], "Read me first.");
    assert_eq!(
        outputs[5]["resourceTemplates"][0]["uriTemplate"],
        "memo://notes/{name}"
    );
    // Stateless: no session id, so no DELETE.
    let requests = server.requests(18);
    assert!(
        requests
            .iter()
            .all(|r| r["method"] == "POST" && r["session"].is_null()),
        "{requests:?}"
    );
}

#[tokio::test]
async fn parameters_and_the_endpoint_are_runtime_expressions() {
    let server = McpServer::start(&["--json"]);
    let body = format!(
        "{HEAD}do:\n- c:\n    call: mcp\n    with:\n      method: tools/call\n      parameters: {{ name: greet, arguments: {{ name: '${{ .who }}' }} }}\n      transport: {{ http: {{ endpoint: '${{ .server }}' }} }}\n    output: {{ as: '${{ .content[0].text }}' }}\n"
    );
    let result = run(
        &workflow(&body),
        json!({ "who": "Ada", "server": server.url() }),
    )
    .await;
    assert_eq!(output(&result), &json!("Hello, Ada!"));
}

#[tokio::test]
async fn failures_are_runtime_errors_that_say_what_happened() {
    let server = McpServer::start(&[]);
    let runtime = WorkflowError::standard_type("runtime");
    // A tool result with isError: its content in the detail.
    let result = run(
        &workflow(&call(
            server.url(),
            "tools/call",
            json!({ "name": "fail", "arguments": { "reason": "no stock" } }),
        )),
        json!({}),
    )
    .await;
    let error = fault(&result);
    assert_eq!(error.type_, runtime);
    assert_eq!(error.instance.as_deref(), Some("/do/0/c"));
    assert!(
        error
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("failed on purpose: no stock"),
        "{error:?}"
    );
    // A JSON-RPC error.
    let result = run(
        &workflow(&call(
            server.url(),
            "prompts/get",
            json!({ "name": "nope" }),
        )),
        json!({}),
    )
    .await;
    let error = fault(&result);
    assert_eq!(error.type_, runtime);
    assert!(
        error
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("JSON-RPC error"),
        "{error:?}"
    );
    // Nothing listening: a transport failure.
    let closed = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let result = run(
        &workflow(&call(
            &format!("http://127.0.0.1:{closed}/mcp"),
            "tools/list",
            json!(null),
        )),
        json!({}),
    )
    .await;
    assert_eq!(fault(&result).type_, runtime);
}

#[tokio::test]
async fn authentication_is_sent_and_never_shown() {
    let server = McpServer::start(&["--token", "s3cret-token"]);
    let with_token = |token: &str| {
        format!(
            "{HEAD}do:\n- c:\n    call: mcp\n    with:\n      method: tools/list\n      transport:\n        http:\n          endpoint: {{ uri: '{}', authentication: {{ bearer: {{ token: {token} }} }} }}\n",
            server.url()
        )
    };
    let result = run(&workflow(&with_token("s3cret-token")), json!({})).await;
    assert!(output(&result)["tools"].is_array());
    let result = run(&workflow(&with_token("wrong-token")), json!({})).await;
    let error = fault(&result);
    assert_eq!(error.status, 401, "{error:?}");
    let shown = format!("{error:?}");
    assert!(!shown.contains("wrong-token"), "{shown}");
    // Headers of the transport are sent too.
    let headers = format!(
        "{HEAD}do:\n- c:\n    call: mcp\n    with:\n      method: tools/list\n      transport: {{ http: {{ endpoint: '{}', headers: {{ authorization: Bearer s3cret-token }} }} }}\n",
        server.url()
    );
    let result = run(&workflow(&headers), json!({})).await;
    assert!(output(&result)["tools"].is_array());
}

#[tokio::test]
async fn the_calls_timeout_is_honoured() {
    let server = McpServer::start(&["--json"]);
    let body = format!(
        "{HEAD}do:\n- c:\n    call: mcp\n    with:\n      method: tools/call\n      parameters: {{ name: slow, arguments: {{ seconds: 20 }} }}\n      timeout: {{ milliseconds: 300 }}\n      transport: {{ http: {{ endpoint: '{}' }} }}\n",
        server.url()
    );
    let started = Instant::now();
    let result = run(&workflow(&body), json!({})).await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("timeout"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn what_cannot_run_here_is_refused_at_load() {
    let cases = [
        (
            "do: [ { c: { call: mcp, with: { method: tools/list, transport: { stdio: { command: npx } } } } } ]",
            "/do/0/c/with/transport/stdio",
            "no process spawning",
        ),
        (
            "do: [ { c: { call: mcp, with: { method: tools/delete, transport: { http: { endpoint: 'http://h/mcp' } } } } } ]",
            "/do/0/c/with/method",
            "is not an MCP method",
        ),
        (
            "do: [ { c: { call: mcp, with: { method: tools/list, protocolVersion: '1999-01-01', transport: { http: { endpoint: 'http://h/mcp' } } } } } ]",
            "/do/0/c/with/protocolVersion",
            "not one this runtime speaks",
        ),
        (
            "do: [ { c: { call: mcp, with: { method: tools/list } } } ]",
            "/do/0/c/with/transport",
            "is required",
        ),
    ];
    for (body, pointer, message) in cases {
        let error = match Workflow::parse(Path::new("t.yaml"), &format!("{HEAD}{body}")) {
            Ok(_) => panic!("{body} loaded"),
            Err(e) => e,
        };
        assert_eq!(error.pointer(), pointer, "{body}: {error}");
        assert!(error.message().contains(message), "{body}: {error}");
    }
}

// ───────────────────────── agents' MCP tools ─────────────────────────

use super::agents::options;
use super::openai_standin::{text, tool_calls, usage, OpenAiStandIn};

fn agent_with_mcp(url: &str, tools: &str, options: &EngineOptions) -> Workflow {
    let body = format!(
        "{HEAD}do:\n- chat:\n    call: agents\n    with:\n      agents:\n      - name: Clerk\n        instructions: Use your tools.\n        model: {{ name: m }}\n        mcp_servers:\n        - {{ endpoint: '{url}'{tools} }}\n      initial_message: '${{ .message }}'\n"
    );
    match Workflow::parse_with(Path::new("t.yaml"), &body, options) {
        Ok(workflow) => workflow,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn an_agent_calls_mcp_tools_and_reads_their_errors_as_tool_results() {
    let server = McpServer::start(&["--json"]);
    let standin = OpenAiStandIn::start(vec![
        tool_calls(
            &[
                ("c1", "add", json!({ "a": 2, "b": 40 })),
                ("c2", "fail", json!({ "reason": "no stock" })),
            ],
            usage(10, 5, 0),
        ),
        text("2 + 40 = 42; the other failed.", usage(20, 8, 0)),
    ]);
    let workflow = agent_with_mcp(server.url(), ", tools: [add, fail]", &options(&standin));
    let result = run(&workflow, json!({ "message": "add 2 and 40" })).await;
    let out = output(&result);
    let requests = standin.requests();
    // The allow-list: only add and fail are offered, with the server's schemas.
    assert_eq!(requests[0].tool_names(), ["add", "fail"]);
    assert_eq!(
        requests[0].body["tools"][0]["function"]["parameters"]["required"],
        json!(["a", "b"])
    );
    let messages = out["messages"].as_array().unwrap();
    let added: Value = serde_json::from_str(messages[2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(added, json!({ "sum": 42 }), "{out}");
    assert_eq!(messages[2]["tool_call_id"], "c1");
    let failed = messages[3]["content"].as_str().unwrap();
    assert!(failed.contains("failed on purpose: no stock"), "{failed}");
    assert!(failed.starts_with("{\"error\""), "{failed}");
    assert_eq!(
        out["messages"][4]["content"],
        "2 + 40 = 42; the other failed."
    );
    // One tools/list session (cached for the second model call) and one session per call.
    assert!(result.metrics.http_calls >= 6, "{:?}", result.metrics);
}

#[tokio::test]
async fn a_server_without_an_allowed_tool_or_unreachable_faults_the_task() {
    let server = McpServer::start(&["--json", "--stateless"]);
    let standin = OpenAiStandIn::start(vec![]);
    let missing = agent_with_mcp(server.url(), ", tools: [add, teleport]", &options(&standin));
    let error = fault(&run(&missing, json!({ "message": "hi" })).await).clone();
    assert_eq!(error.type_, WorkflowError::standard_type("configuration"));
    assert!(error
        .detail
        .unwrap_or_default()
        .contains("offers no tool `teleport`"),);
    assert!(
        standin.requests().is_empty(),
        "no model call without its tools"
    );
    let closed = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let down = agent_with_mcp(
        &format!("http://127.0.0.1:{closed}/mcp"),
        "",
        &options(&standin),
    );
    let error = fault(&run(&down, json!({ "message": "hi" })).await).clone();
    assert_eq!(error.type_, WorkflowError::standard_type("runtime"));
    assert!(error
        .detail
        .unwrap_or_default()
        .contains("listing the tools of its MCP server failed"),);
}

#[tokio::test]
async fn a_server_behind_aws_iam_gets_requests_signed_with_the_functions_credentials() {
    let mut server = McpServer::start(&["--json", "--sigv4", "AKIDTOOLHOST:tool-host-secret"]);
    let with_secret = |secret: &str, standin: &OpenAiStandIn| {
        let mut options = options(standin);
        options.llm.bedrock.region = Some("eu-west-1".into());
        options.llm.bedrock.credentials = Some(AwsCredentials {
            access_key_id: "AKIDTOOLHOST".into(),
            secret_access_key: secret.into(),
            session_token: None,
        });
        agent_with_mcp(server.url(), ", tools: [add], aws_iam: true", &options)
    };
    let standin = OpenAiStandIn::start(vec![
        tool_calls(&[("c1", "add", json!({ "a": 1, "b": 2 }))], usage(5, 2, 0)),
        text("3", usage(6, 1, 0)),
    ]);
    let signed = with_secret("tool-host-secret", &standin);
    let result = run(&signed, json!({ "message": "1 + 2" })).await;
    let out = output(&result);
    let sum: Value = serde_json::from_str(out["messages"][2]["content"].as_str().unwrap()).unwrap();
    assert_eq!(sum, json!({ "sum": 3 }));
    // Signed with the wrong secret: the server refuses (403), the tools cannot be listed.
    let wrong = with_secret("not-the-secret", &standin);
    let error = fault(&run(&wrong, json!({ "message": "1 + 2" })).await).clone();
    assert!(
        error.detail.unwrap_or_default().contains("403"),
        "the server refused the signature"
    );
    assert!(server.output().contains("request refused: bad signature"));
    assert!(!format!("{:?}", server.requests(1)).contains("not-the-secret"));
}
