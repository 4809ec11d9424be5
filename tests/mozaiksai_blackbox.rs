//! MozaiksAI folders as their authors write them, through the built `bootstrap` (issue 14): the
//! Runtime API emulator, the scripted OpenAI-compatible stand-in on loopback, the development
//! keys of dev/local.env.
//!
//! - the current format (tests/fixtures/mozaiksai_workflows/Launch_Review: no `workflow_name`,
//!   agents as a mapping, `transition_graph.yaml`, exposures, an `agent_text` and a
//!   `ui_response` trigger, a `UI_Tool` without Python, a structured output): the interviewer's
//!   `NEXT` sets its variable and routes to the reviewer, whose system message carries the
//!   exposed values; the reviewer's UI tool ends the run `waiting` with its `input_request`; a
//!   resume without a valid answer is refused and changes nothing; the answer sets its
//!   variable, becomes the tool's result, and the verdict (validated) ends the run;
//! - the earlier format (the bundled workflows/CustomerIntake, `handoffs.yaml`): the interview
//!   waits for the user, the `NEXT` condition hands over to triage, whose structured output ends
//!   the conversation.
//!
//! Every model call is one `mozaiks.usage.llm` usage event, with the execution event's totals.

#[path = "support/function.rs"]
mod function;
#[path = "../crates/workflow/src/tests/openai_standin.rs"]
mod openai_standin;
#[path = "support/runtime_api.rs"]
mod runtime_api;

use function::{claims, dev_env, mint, now, root, Function};
use openai_standin::{text, tool_calls, usage, OpenAiStandIn, Recorded};
use serde_json::{json, Value};

/// dev/local.env with `dir` as the workflows and the stand-in as the provider.
fn env(standin: &OpenAiStandIn, dir: &str) -> Vec<(String, String)> {
    let dir = root().join(dir).display().to_string();
    let mut env: Vec<(String, String)> = dev_env()
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "MOZAIKS_WORKFLOWS_DIR" | "OPENAI_BASE_URL"))
        .collect();
    env.push(("MOZAIKS_WORKFLOWS_DIR".into(), dir));
    env.push(("OPENAI_BASE_URL".into(), standin.base_url()));
    env.push(("OPENAI_API_KEY".into(), "sk-e2e".into()));
    env
}

/// A direct invocation of `workflow` with `input` (and a continuation to resume).
fn invocation(workflow: &str, input: Value, continuation: Option<&str>) -> Value {
    let mut claims = claims();
    claims["workflow_id"] = json!(workflow);
    claims["jti"] = json!(format!("{workflow}-{}", input));
    claims["iat"] = json!(now());
    claims["exp"] = json!(now() + 300);
    let mut event = json!({ "launch_token": mint(&claims), "input": input });
    if let Some(continuation) = continuation {
        event["continuation"] = json!(continuation);
    }
    event
}

/// The continuation of a `waiting` answer.
fn continuation(answer: &Value) -> String {
    assert_eq!(answer["status"], "waiting", "{answer}");
    answer["continuation"]
        .as_str()
        .unwrap_or_else(|| panic!("no continuation: {answer}"))
        .to_owned()
}

/// The details of the usage events of the answer's execution: the `llm` ones, and the
/// execution event.
fn usage_events(f: &Function, answer: &Value) -> (Vec<Value>, Value) {
    let id = answer["execution_id"].as_str().unwrap_or_default();
    f.usage_line(id);
    let mut llm = Vec::new();
    let mut execution = Vec::new();
    for event in f.usage_events() {
        if event["Detail"]["execution_id"] != id {
            continue;
        }
        match event["DetailType"].as_str() {
            Some("mozaiks.usage.llm") => llm.push(event["Detail"].clone()),
            Some("mozaiks.usage.execution") => execution.push(event["Detail"].clone()),
            other => panic!("unexpected usage event {other:?}"),
        }
    }
    assert_eq!(execution.len(), 1, "{execution:?}");
    (llm, execution.remove(0))
}

fn last_message(request: &Recorded) -> Value {
    request.body["messages"]
        .as_array()
        .and_then(|m| m.last().cloned())
        .unwrap_or_default()
}

#[test]
fn a_current_format_folder_routes_exposes_context_waits_on_its_ui_tool_and_resumes_with_the_answer()
{
    let verdict = json!({ "decision": "go", "reason": "approved by the user" });
    let standin = OpenAiStandIn::start(vec![
        text("NEXT", usage(20, 1, 0)),
        tool_calls(
            &[(
                "ui_1",
                "request_approval",
                json!({ "title": "Launch Orbit?" }),
            )],
            usage(40, 8, 0),
        ),
        text(&verdict.to_string(), usage(60, 12, 0)),
    ]);
    let f = Function::start(&env(&standin, "tests/fixtures/mozaiksai_workflows"));

    // 1. Intake says NEXT → intake_complete → Review, which asks for approval: waiting.
    let first = f.invoke_json(&invocation(
        "Launch_Review",
        json!({ "message": "We launch Orbit on Monday" }),
        None,
    ));
    let c1 = continuation(&first);
    let request = &first["output"]["input_request"];
    assert_eq!(
        *request,
        json!({
            "tool": "request_approval", "tool_call_id": "ui_1", "agent": "ReviewAgent",
            "component": "ApprovalCard", "mode": "inline",
            "payload": { "title": "Launch Orbit?" },
            "actions": [
                { "id": "approve", "label": "Approve", "schema": { "type": "object", "required": ["approved"], "properties": { "approved": { "type": "boolean" } } } },
                { "id": "reject", "label": "Reject" }
            ]
        }),
        "{first}"
    );
    assert_eq!(first["output"]["context"]["intake_complete"], true);
    assert_eq!(first["output"]["context"]["approved"], false);
    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    // The reviewer's system message: its prompt sections, then the exposed variables.
    let review = requests[1].system();
    assert!(
        review.starts_with("## [ROLE]\nYou review launches."),
        "{review}"
    );
    assert!(
        review.ends_with("\n\nPRODUCT: Orbit\nINTAKE_COMPLETE: true\nAPPROVED: false"),
        "{review}"
    );
    assert_eq!(requests[1].tool_names(), ["request_approval"]);
    let (llm, execution) = usage_events(&f, &first);
    assert_eq!(llm.len(), 2, "{llm:?}");
    assert_eq!(execution["status"], "waiting", "{execution}");
    assert_eq!(execution["llm"]["prompt_tokens"], 60, "{execution}");

    // 2. A reply that is not the UI's answer is refused; the continuation still holds.
    let refused = f.invoke_json(&invocation(
        "Launch_Review",
        json!({ "message": "yes" }),
        Some(&c1),
    ));
    assert_eq!(refused["status"], "faulted", "{refused}");
    assert_eq!(refused["error"]["status"], 400, "{refused}");
    assert!(
        refused["error"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ui_response"),
        "{refused}"
    );
    assert_eq!(
        standin.requests().len(),
        2,
        "no model call on a refused answer"
    );

    // 3. The answer: `approved` set by its trigger, the answer is the tool's result, the
    //    verdict (validated against Verdict) ends the run after Review's turn.
    let answer = json!({ "action": "approve", "approved": true });
    let done = f.invoke_json(&invocation(
        "Launch_Review",
        json!({ "ui_response": answer }),
        Some(&c1),
    ));
    assert_eq!(done["status"], "completed", "{done}");
    let output = &done["output"];
    assert_eq!(
        output["structured_outputs"]["ReviewAgent"], verdict,
        "{done}"
    );
    assert_eq!(output["context"]["approved"], true, "{done}");
    assert_eq!(output["last_agent"], "ReviewAgent");
    assert!(output.get("input_request").is_none(), "{done}");
    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    let seen = last_message(&requests[2]);
    assert_eq!(seen["role"], "tool");
    assert_eq!(seen["tool_call_id"], "ui_1");
    let content: Value =
        serde_json::from_str(seen["content"].as_str().unwrap_or("null")).unwrap_or_default();
    assert_eq!(content, answer);
    assert!(requests[2].system().ends_with("APPROVED: true"));
    assert_eq!(standin.remaining(), 0);
    let (llm, execution) = usage_events(&f, &done);
    assert_eq!(llm.len(), 1, "{llm:?}");
    assert_eq!(llm[0]["agent"], "ReviewAgent", "{llm:?}");
    assert_eq!(execution["status"], "completed", "{execution}");
}

#[test]
fn the_bundled_early_format_folder_interviews_waits_and_hands_over_on_next() {
    let triage = json!({
        "category": "billing", "priority": 2, "summary": "A refund for invoice 7.",
        "needs_human": false, "confidence": 0.9, "products": [], "contact": null
    });
    let standin = OpenAiStandIn::start(vec![
        text("Which invoice is it about?", usage(30, 6, 0)),
        text("NEXT", usage(45, 1, 0)),
        text(&triage.to_string(), usage(70, 30, 0)),
    ]);
    let f = Function::start(&env(&standin, "workflows"));
    let first = f.invoke_json(&invocation(
        "CustomerIntake",
        json!({ "message": "I want a refund" }),
        None,
    ));
    let c1 = continuation(&first);
    assert_eq!(first["output"]["last_agent"], "IntakeAgent", "{first}");
    let done = f.invoke_json(&invocation(
        "CustomerIntake",
        json!({ "message": "Invoice 7" }),
        Some(&c1),
    ));
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["structured_outputs"]["TriageAgent"], triage);
    assert_eq!(done["output"]["context"]["intake_complete"], true, "{done}");
    let speakers: Vec<&str> = done["output"]["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(speakers, ["IntakeAgent", "IntakeAgent", "TriageAgent"]);
    assert_eq!(standin.remaining(), 0);
    let (llm, _) = usage_events(&f, &done);
    assert_eq!(llm.len(), 2);
}
