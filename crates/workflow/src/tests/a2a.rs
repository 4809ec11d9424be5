//! `call: a2a` against a real A2A agent (tests/support/a2a_server.py: the official `a2a-sdk`,
//! JSON-RPC with the protocol's v0.3 method names, on loopback): the spec's example (the agent
//! found through its card, `messageId` and `role` defaulted), a stream's every result, a task
//! got by id, JSON-RPC errors as the DSL's `runtime` error, and the load-time refusals.

use super::mcp_server::McpServer;
use super::*;

fn base(server: &McpServer) -> String {
    server.url().to_owned()
}

#[tokio::test]
async fn the_specs_example_finds_the_agent_by_its_card_and_sends_the_message() {
    let mut server = McpServer::start_script("a2a_server.py", &[]);
    let body = format!(
        "{HEAD}do:\n- GenerateReport:\n    call: a2a\n    with:\n      method: message/send\n      agentCard:\n        endpoint: {}/.well-known/agent-card.json\n      parameters:\n        message:\n          kind: message\n          parts:\n          - kind: text\n            text: Generate the Q1 sales report.\n",
        base(&server)
    );
    let result = run(&workflow(&body), json!({})).await;
    let task = output(&result);
    assert_eq!(task["kind"], "task", "{task}");
    assert_eq!(task["status"]["state"], "completed", "{task}");
    assert_eq!(
        task["artifacts"][0]["parts"][0]["text"],
        "echo: Generate the Q1 sales report."
    );
    // The defaults the DSL gives a message.
    let sent = &task["history"][0];
    assert_eq!(sent["role"], "user");
    assert!(
        sent["messageId"].as_str().is_some_and(|id| id.len() == 36),
        "{sent}"
    );
    let requests = server.requests(2);
    assert_eq!(
        requests,
        [
            json!({ "method": "GET", "path": "/.well-known/agent-card.json" }),
            json!({ "method": "POST", "path": "/a2a" })
        ]
    );
    assert_eq!(result.metrics.http_calls, 2);

    // tasks/get of that task, straight to the server this time.
    let get = format!(
        "{HEAD}do:\n- t:\n    call: a2a\n    with:\n      method: tasks/get\n      server: {}/a2a\n      parameters: {{ id: '${{ .id }}' }}\n",
        base(&server)
    );
    let result = run(&workflow(&get), json!({ "id": task["id"] })).await;
    assert_eq!(output(&result)["id"], task["id"]);
    assert_eq!(output(&result)["status"]["state"], "completed");
}

#[tokio::test]
async fn a_stream_is_every_result_in_order() {
    let server = McpServer::start_script("a2a_server.py", &[]);
    let body = format!(
        "{HEAD}do:\n- s:\n    call: a2a\n    with:\n      method: message/stream\n      server: {{ uri: '{}/a2a' }}\n      parameters: {{ message: {{ kind: message, messageId: m-7, parts: [ {{ kind: text, text: hi }} ] }} }}\n",
        base(&server)
    );
    let result = run(&workflow(&body), json!({})).await;
    let events = output(&result).as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["task", "status-update", "artifact-update", "status-update"]
    );
    assert_eq!(
        events[0]["history"][0]["messageId"], "m-7",
        "a given messageId is kept"
    );
    assert_eq!(events[2]["artifact"]["parts"][0]["text"], "echo: hi");
    assert_eq!(events[3]["final"], true);
    assert_eq!(events[3]["status"]["state"], "completed");
}

#[tokio::test]
async fn json_rpc_errors_and_unreachable_agents_are_runtime_errors() {
    let server = McpServer::start_script("a2a_server.py", &[]);
    let runtime = WorkflowError::standard_type("runtime");
    let cancel = format!(
        "{HEAD}do:\n- c:\n    call: a2a\n    with:\n      method: tasks/cancel\n      server: {}/a2a\n      parameters: {{ id: no-such-task }}\n",
        base(&server)
    );
    let error = fault(&run(&workflow(&cancel), json!({})).await).clone();
    assert_eq!(error.type_, runtime);
    assert!(
        error
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("JSON-RPC error -3200"),
        "{error:?}"
    );
    let closed = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let down = format!(
        "{HEAD}do:\n- c:\n    call: a2a\n    with:\n      method: message/send\n      agentCard: {{ endpoint: 'http://127.0.0.1:{closed}/.well-known/agent-card.json' }}\n      parameters: {{ message: {{ parts: [] }} }}\n"
    );
    assert_eq!(
        fault(&run(&workflow(&down), json!({})).await).type_,
        runtime
    );
}

#[test]
fn a2a_calls_are_checked_at_load() {
    let cases = [
        (
            "do: [ { c: { call: a2a, with: { method: message/shout, server: 'http://h/a2a' } } } ]",
            "/do/0/c/with/method",
            "is not an A2A method",
        ),
        (
            "do: [ { c: { call: a2a, with: { method: tasks/get } } } ]",
            "/do/0/c/with",
            "needs `agentCard`",
        ),
        (
            "do: [ { c: { call: a2a, with: { method: tasks/get, server: 'http://h/a2a', extra: 1 } } } ]",
            "/do/0/c/with/extra",
            "",
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
