//! A MozaiksAI folder with Python tools, unmodified, through the built `bootstrap` and the tool
//! host (issue 15): tests/fixtures/toolhost_workflows/Order_Desk served by
//! `python3 -m mozaiks_toolhost` (toolhost/) on loopback, `MOZAIKS_TOOL_HOST_URL` pointing at it,
//! model calls answered by the scripted OpenAI-compatible stand-in.
//!
//! The desk agent's Python tool reads and sets context variables; its async tool returns AG2's
//! `ReplyResult` with a target, which hands the conversation to the refund agent (whose system
//! message shows the values the tools set); the refund agent's tool asks the user with
//! `use_ui_tool`: the run ends `waiting` with the request, and the resume's `ui_response` is
//! delivered to the tool, which finishes; then the run completes. MCP traffic counts as `http`
//! usage.

#[path = "support/function.rs"]
mod function;
#[path = "../crates/workflow/src/tests/mcp_server.rs"]
mod mcp_server;
#[path = "../crates/workflow/src/tests/openai_standin.rs"]
mod openai_standin;
#[path = "support/runtime_api.rs"]
mod runtime_api;

use function::{claims, dev_env, mint, now, root, Function};
use mcp_server::McpServer;
use openai_standin::{text, tool_calls, usage, OpenAiStandIn};
use serde_json::{json, Value};

fn invocation(input: Value, continuation: Option<&str>, jti: &str) -> Value {
    let mut claims = claims();
    claims["workflow_id"] = json!("Order_Desk");
    claims["jti"] = json!(jti);
    claims["iat"] = json!(now());
    claims["exp"] = json!(now() + 300);
    let mut event = json!({ "launch_token": mint(&claims), "input": input });
    if let Some(continuation) = continuation {
        event["continuation"] = json!(continuation);
    }
    event
}

#[test]
fn python_tools_run_unmodified_through_the_tool_host_with_context_handoff_and_a_ui_answer() {
    let dir = root().join("tests/fixtures/toolhost_workflows");
    let host = McpServer::start_toolhost(&dir);
    let base = host.url().to_owned();
    let standin = OpenAiStandIn::start(vec![
        tool_calls(
            &[("t1", "lookup_order", json!({ "order_id": "A-1" }))],
            usage(10, 3, 0),
        ),
        tool_calls(
            &[("t2", "route_to_refunds", json!({ "reason": "broken" }))],
            usage(20, 3, 0),
        ),
        tool_calls(
            &[("t3", "approve_refund", json!({ "amount": 40 }))],
            usage(30, 3, 0),
        ),
        text("Your refund of 40 is done.", usage(40, 6, 0)),
    ]);
    let mut env: Vec<(String, String)> = dev_env()
        .into_iter()
        .filter(|(k, _)| k != "MOZAIKS_WORKFLOWS_DIR")
        .collect();
    env.push(("MOZAIKS_WORKFLOWS_DIR".into(), dir.display().to_string()));
    env.push(("MOZAIKS_TOOL_HOST_URL".into(), base));
    env.push(("OPENAI_BASE_URL".into(), standin.base_url()));
    env.push(("OPENAI_API_KEY".into(), "sk-e2e".into()));
    let f = Function::start(&env);

    let first = f.invoke_json(&invocation(
        json!({ "message": "Order A-1 arrived broken" }),
        None,
        "th-1",
    ));
    assert_eq!(first["status"], "waiting", "{first}");
    let output = &first["output"];
    assert_eq!(
        output["input_request"],
        json!({ "tool": "approve_refund", "tool_call_id": "t3", "agent": "RefundAgent",
                "component": "RefundConfirm", "mode": "inline",
                "payload": { "order_id": "A-1", "amount": 40 } }),
        "{first}"
    );
    // The Python tools set the context; ReplyResult's target handed off.
    assert_eq!(output["context"]["order_id"], "A-1", "{first}");
    assert_eq!(output["context"]["order_total"], 40, "{first}");
    assert_eq!(output["context"]["refund_reason"], "broken", "{first}");
    assert_eq!(output["last_agent"], "RefundAgent", "{first}");
    let messages = output["messages"].as_array().cloned().unwrap_or_default();
    let looked_up: Value =
        serde_json::from_str(messages[2]["content"].as_str().unwrap_or("null")).unwrap_or_default();
    assert_eq!(
        looked_up,
        json!({ "order_id": "A-1", "total": 40, "status": "delivered" })
    );
    assert_eq!(messages[4]["content"], "Routing to the refund desk: broken");
    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    // The model saw the folder's Python tools, with schemas from their signatures.
    assert_eq!(
        requests[0].tool_names(),
        ["lookup_order", "route_to_refunds"]
    );
    assert_eq!(requests[2].tool_names(), ["approve_refund"]);
    let refund_system = requests[2].system();
    assert!(
        refund_system.ends_with("ORDER_ID: A-1\nORDER_TOTAL: 40\nREFUND_APPROVED: false"),
        "{refund_system}"
    );
    let continuation = first["continuation"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // The user's answer goes to the tool (replayed with it), which finishes.
    let done = f.invoke_json(&invocation(
        json!({ "ui_response": { "approved": true } }),
        Some(&continuation),
        "th-2",
    ));
    assert_eq!(done["status"], "completed", "{done}");
    let output = &done["output"];
    assert_eq!(output["context"]["refund_approved"], true, "{done}");
    let messages = output["messages"].as_array().cloned().unwrap_or_default();
    let tool = &messages[messages.len() - 2];
    assert_eq!(tool["tool_call_id"], "t3", "{done}");
    let approved: Value =
        serde_json::from_str(tool["content"].as_str().unwrap_or("null")).unwrap_or_default();
    assert_eq!(approved, json!({ "approved": true, "amount": 40 }));
    assert_eq!(
        messages.last().map(|m| m["content"].clone()),
        Some(json!("Your refund of 40 is done."))
    );
    assert_eq!(standin.remaining(), 0);

    // MCP exchanges are `http` usage of the execution.
    let id = done["execution_id"].as_str().unwrap_or_default();
    f.usage_line(id);
    let execution = f
        .usage_events()
        .into_iter()
        .find(|e| e["Detail"]["execution_id"] == id && e["DetailType"] == "mozaiks.usage.execution")
        .unwrap_or_default();
    assert!(
        execution["Detail"]["http"]["calls"].as_u64().unwrap_or(0) >= 2,
        "{execution}"
    );
}
