//! `call: agents` against a scripted OpenAI-compatible server on loopback
//! (`openai_standin`): handoffs by model decision and by condition, `after_work`, tools,
//! structured outputs, `max_turns`, provider failures and retries, waiting and resuming, and
//! the metering of every model call.

use super::openai_standin::{error, text, tool_calls, usage, OpenAiStandIn, Reply};
use super::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

/// Engine options that send model calls to `standin`, retrying fast.
pub(super) fn options(standin: &OpenAiStandIn) -> EngineOptions {
    EngineOptions {
        llm: LlmOptions {
            openai: Some(OpenAiOptions {
                base_url: standin.base_url(),
                api_key: Some("sk-test".into()),
            }),
            bedrock: BedrockOptions::default(),
            default_model: Some("default-model".into()),
            calls: LlmCallPolicy {
                attempt_timeout: Duration::from_secs(10),
                max_attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
        },
        ..EngineOptions::default()
    }
}

fn load_with(yaml: &str, options: &EngineOptions) -> Workflow {
    match Workflow::parse_with(Path::new("agents.yaml"), yaml, options) {
        Ok(workflow) => workflow,
        Err(e) => panic!("{e}"),
    }
}

fn load_error(yaml: &str) -> LoadError {
    match Workflow::parse(Path::new("agents.yaml"), yaml) {
        Ok(_) => panic!("loaded:\n{yaml}"),
        Err(e) => e,
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// Order support: Triage hands off to Orders (a model decision), Orders looks orders up.
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
            model: { provider: openai, name: gpt-4o-mini, temperature: 0.2, max_tokens: 800 }
          - name: Orders
            prompt_sections:
              - { id: role, heading: Role, content: You answer order questions. }
              - { heading: Style, content: Be brief. }
            tools: [ lookupOrder ]
        handoffs:
          - { from: Triage, to: Orders, description: the customer asks about an order }
        initial_agent: Triage
        initial_message: '${ .message }'
  - summary:
      set: { last: '${ .last_agent }', count: '${ .messages | length }', tool: '${ .messages[4].content | fromjson }' }
"#;

#[tokio::test]
async fn the_model_hands_off_and_calls_a_dsl_function_and_every_call_is_metered() {
    let standin = OpenAiStandIn::start(vec![
        tool_calls(
            &[("call_1", "transfer_to_Orders", json!({}))],
            usage(100, 5, 0),
        ),
        tool_calls(
            &[("call_2", "lookupOrder", json!({ "order_id": "42" }))],
            usage(150, 10, 64),
        ),
        text("Order 42 has shipped.", usage(200, 12, 128)),
    ]);
    let workflow = load_with(SUPPORT, &options(&standin));
    let result = run(&workflow, json!({ "message": "Where is order 42?" })).await;
    assert_eq!(
        output(&result),
        &json!({ "last": "Orders", "count": 6, "tool": { "order": { "id": "42", "state": "shipped" } } })
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    let first = &requests[0];
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(first.body["model"], json!("gpt-4o-mini"));
    assert_eq!(first.body["temperature"], json!(0.2));
    assert_eq!(first.body["max_tokens"], json!(800));
    assert_eq!(first.system(), "You route customers.");
    assert_eq!(first.tool_names(), vec!["transfer_to_Orders"]);
    assert_eq!(
        first.body["messages"][1],
        json!({ "role": "user", "content": "Where is order 42?" })
    );
    let second = &requests[1];
    assert_eq!(second.body["model"], json!("default-model"));
    assert_eq!(
        second.system(),
        "## Role\nYou answer order questions.\n\n## Style\nBe brief."
    );
    assert_eq!(second.tool_names(), vec!["lookupOrder"]);
    assert_eq!(
        second.body["tools"][0]["function"],
        json!({ "name": "lookupOrder", "description": "Looks an order up by its id.",
                "parameters": { "type": "object", "properties": { "order_id": { "type": "string" } }, "required": [ "order_id" ] } })
    );
    // The transfer was answered, so the conversation stays valid for the provider.
    assert_eq!(
        second.body["messages"][2]["tool_calls"][0]["id"],
        json!("call_1")
    );
    assert_eq!(second.body["messages"][2]["name"], json!("Triage"));
    assert_eq!(second.body["messages"][3]["role"], json!("tool"));
    assert_eq!(second.body["messages"][3]["tool_call_id"], json!("call_1"));
    let last = &requests[2].body["messages"];
    assert_eq!(last[5]["role"], json!("tool"));
    assert_eq!(last[5]["tool_call_id"], json!("call_2"));
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
            ("Triage", "gpt-4o-mini", "openai", 100, 5, 105, 0),
            ("Orders", "default-model", "openai", 150, 10, 160, 64),
            ("Orders", "default-model", "openai", 200, 12, 212, 128),
        ]
    );
    assert!(result.llm_calls.iter().all(|c| c.ended_at >= c.started_at));
    // Model calls are `llm` usage, not `http`; the function ran as a task.
    assert_eq!(result.metrics.http_calls, 0);
    assert_eq!(result.metrics.tasks_executed, 3);
}

#[tokio::test]
async fn tool_arguments_that_do_not_fit_the_schema_go_back_to_the_model() {
    let standin = OpenAiStandIn::start(vec![
        tool_calls(
            &[("call_1", "transfer_to_Orders", json!({}))],
            usage(1, 1, 0),
        ),
        tool_calls(
            &[
                ("call_2", "lookupOrder", json!({ "order": 42 })),
                ("call_3", "cancelOrder", json!({})),
            ],
            usage(1, 1, 0),
        ),
        tool_calls(
            &[("call_4", "lookupOrder", json!({ "order_id": "42" }))],
            usage(1, 1, 0),
        ),
        text("Shipped.", usage(1, 1, 0)),
    ]);
    let workflow = load_with(SUPPORT, &options(&standin));
    let result = run(&workflow, json!({ "message": "Where is order 42?" })).await;
    assert_eq!(output(&result)["last"], json!("Orders"));
    let requests = standin.requests();
    assert_eq!(requests.len(), 4);
    let messages = &requests[2].body["messages"];
    let bad: Value = serde_json::from_str(messages[5]["content"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(
        bad["error"]["type"],
        json!("https://serverlessworkflow.io/spec/1.0.0/errors/validation")
    );
    assert!(
        bad["error"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("order_id")),
        "{bad}"
    );
    let unknown = messages[6]["content"].as_str().unwrap_or_default();
    assert!(unknown.contains("no tool named `cancelOrder`"), "{unknown}");
    // The function ran once: for the valid call only.
    assert_eq!(result.metrics.tasks_executed, 3);
}

/// Three agents passing the conversation on conditions and after their work.
const RELAY: &str = r#"
document: { dsl: '1.0.3', namespace: test, name: relay, version: '1.0.0' }
do:
  - chat:
      call: agents
      with:
        agents:
          - { name: A, instructions: a }
          - { name: B, instructions: b }
          - { name: C, instructions: c }
        handoffs:
          - { from: A, after_work: B }
          - { from: B, to: C, when: '${ .context.escalate and .agent == "B" }' }
          - { from: C, to: terminate, when: '${ (.messages | length) >= 3 }', scope: pre }
        initial_message: hello
        context: '${ .context }'
"#;

#[tokio::test]
async fn conditions_hand_off_after_and_before_replies_and_after_work_passes_on() {
    let standin = OpenAiStandIn::start(vec![
        text("from A", usage(1, 1, 0)),
        text("from B", usage(1, 1, 0)),
    ]);
    let workflow = load_with(RELAY, &options(&standin));
    let result = run(&workflow, json!({ "context": { "escalate": true } })).await;
    let out = output(&result);
    // A → (after_work) B → (post condition) C → (pre condition, before C replies) terminate.
    assert_eq!(out["last_agent"], json!("B"));
    assert_eq!(out["context"], json!({ "escalate": true }));
    assert_eq!(
        out["messages"],
        json!([
            { "role": "user", "content": "hello" },
            { "role": "assistant", "name": "A", "content": "from A" },
            { "role": "assistant", "name": "B", "content": "from B" }
        ])
    );
    let systems: Vec<String> = standin.requests().iter().map(|r| r.system()).collect();
    assert_eq!(systems, vec!["a", "b"]);

    // Without the condition, B's after_work (terminate by default) ends it.
    let standin = OpenAiStandIn::start(vec![
        text("from A", usage(1, 1, 0)),
        text("from B", usage(1, 1, 0)),
    ]);
    let workflow = load_with(RELAY, &options(&standin));
    let result = run(&workflow, json!({ "context": { "escalate": false } })).await;
    assert_eq!(output(&result)["last_agent"], json!("B"));
    assert_eq!(standin.requests().len(), 2);
    assert_eq!(result.llm_calls.len(), 2);
}

#[tokio::test]
async fn max_turns_ends_the_conversation_and_completes() {
    let yaml = r#"
document: { dsl: '1.0.3', namespace: test, name: pingpong, version: '1.0.0' }
do:
  - chat:
      call: agents
      with:
        agents: [ { name: Ping, instructions: ping }, { name: Pong, instructions: pong } ]
        handoffs: [ { from: Ping, after_work: Pong }, { from: Pong, after_work: Ping } ]
        initial_message: go
        max_turns: 3
"#;
    let standin = OpenAiStandIn::start(vec![
        text("1", usage(1, 1, 0)),
        text("2", usage(1, 1, 0)),
        text("3", usage(1, 1, 0)),
        text("never", usage(1, 1, 0)),
    ]);
    let workflow = load_with(yaml, &options(&standin));
    let result = run(&workflow, json!({})).await;
    let out = output(&result);
    assert_eq!(out["last_agent"], json!("Ping"));
    assert_eq!(out["messages"].as_array().map(Vec::len), Some(4));
    assert_eq!(standin.requests().len(), 3);
    assert_eq!(standin.remaining(), 1);
}

#[tokio::test]
async fn max_consecutive_auto_reply_applies_after_work_to_a_looping_agent() {
    let yaml = r#"
document: { dsl: '1.0.3', namespace: test, name: looping, version: '1.0.0' }
use:
  functions:
    tick:
      set: { ticked: true, context_variables: { ticks: '${ 1 }' } }
do:
  - chat:
      call: agents
      with:
        agents: [ { name: Worker, instructions: work, tools: [ tick ], max_consecutive_auto_reply: 2 } ]
        initial_message: go
"#;
    let standin = OpenAiStandIn::start(vec![
        tool_calls(&[("c1", "tick", json!({}))], usage(1, 1, 0)),
        tool_calls(&[("c2", "tick", json!({}))], usage(1, 1, 0)),
        tool_calls(&[("c3", "tick", json!({}))], usage(1, 1, 0)),
    ]);
    let workflow = load_with(yaml, &options(&standin));
    let result = run(&workflow, json!({})).await;
    let out = output(&result);
    assert_eq!(standin.requests().len(), 2);
    // The function's `context_variables` went into the context, the rest to the model.
    assert_eq!(out["context"], json!({ "ticks": 1 }));
    assert_eq!(out["messages"][2]["content"], json!(r#"{"ticked":true}"#));
}

/// A rater that must answer with a structured output.
const RATER: &str = r#"
document: { dsl: '1.0.3', namespace: test, name: rater, version: '1.0.0' }
do:
  - chat:
      call: agents
      with:
        agents:
          - name: Rater
            instructions: Rate the text.
            output_schema: { type: object, properties: { score: { type: integer } }, required: [ score ] }
        initial_message: '${ .text }'
"#;

#[tokio::test]
async fn structured_outputs_are_validated_and_re_asked() {
    let standin = OpenAiStandIn::start(vec![
        text("a seven", usage(10, 2, 0)),
        text(r#"{"score": "high"}"#, usage(20, 3, 0)),
        text("```json\n{\"score\": 7}\n```", usage(30, 4, 0)),
    ]);
    let workflow = load_with(RATER, &options(&standin));
    let result = run(&workflow, json!({ "text": "fine prose" })).await;
    let out = output(&result);
    assert_eq!(
        out["structured_outputs"],
        json!({ "Rater": { "score": 7 } })
    );
    // Only the accepted reply stays in the conversation.
    assert_eq!(out["messages"].as_array().map(Vec::len), Some(2));
    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].body["response_format"]["type"],
        json!("json_schema")
    );
    assert_eq!(
        requests[0].body["response_format"]["json_schema"]["schema"]["required"],
        json!(["score"])
    );
    let correction = requests[1].body["messages"][3]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(correction.contains("not JSON"), "{correction}");
    let correction = requests[2].body["messages"][5]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(correction.contains("score"), "{correction}");
    assert_eq!(
        result.llm_calls.iter().map(|c| c.total_tokens).sum::<u64>(),
        12 + 23 + 34
    );
}

#[tokio::test]
async fn a_structured_output_that_never_fits_faults_and_its_calls_are_still_metered() {
    let standin = OpenAiStandIn::start(vec![
        text("no", usage(1, 1, 0)),
        text("{}", usage(1, 1, 0)),
        text(r#"{"score": 1.5}"#, usage(1, 1, 0)),
    ]);
    let workflow = load_with(RATER, &options(&standin));
    let result = run(&workflow, json!({ "text": "x" })).await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("validation"));
    assert_eq!(error.instance.as_deref(), Some("/do/0/chat"));
    assert!(
        error
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("after 2 re-asks")),
        "{error:?}"
    );
    assert_eq!(result.llm_calls.len(), 3);
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_time_the_provider_asks_for() {
    let standin = OpenAiStandIn::start(vec![
        error(429, "Rate limit reached", &[("retry-after-ms", "300")]),
        text("done", usage(5, 1, 0)),
    ]);
    let workflow = load_with(&echo(), &{
        let mut options = options(&standin);
        options.llm.calls.base_delay = Duration::from_secs(5);
        options
    });
    let started = std::time::Instant::now();
    let result = run(&workflow, json!({ "text": "x" })).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "Retry-After wins over the backoff"
    );
    assert_eq!(output(&result)["messages"][1]["content"], json!("done"));
    assert_eq!(standin.requests().len(), 2);
    assert_eq!(result.llm_calls.len(), 1);
    assert_eq!(result.llm_calls[0].total_tokens, 6);
}

/// RATER without structured output (any reply ends it).
fn echo() -> String {
    RATER.replace(
        "output_schema: { type: object, properties: { score: { type: integer } }, required: [ score ] }",
        "description: replies once",
    )
}

#[tokio::test]
async fn server_errors_are_retried_until_the_attempts_run_out_then_fault_communication() {
    let standin = OpenAiStandIn::start(vec![
        error(500, "The server had an error", &[]),
        error(503, "Overloaded", &[]),
        error(500, "The server had an error again", &[]),
        text("too late", usage(1, 1, 0)),
    ]);
    let workflow = load_with(&echo(), &options(&standin));
    let result = run(&workflow, json!({ "text": "x" })).await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("communication"));
    assert_eq!(error.status, 500);
    let detail = error.detail.clone().unwrap_or_default();
    assert!(detail.contains("The server had an error again"), "{detail}");
    assert!(detail.contains("gave up after 3 attempts"), "{detail}");
    assert_eq!(standin.requests().len(), 3);
    assert!(result.llm_calls.is_empty());
}

#[tokio::test]
async fn client_errors_are_not_retried_and_dropped_connections_are() {
    let standin = OpenAiStandIn::start(vec![error(401, "Incorrect API key provided", &[])]);
    let workflow = load_with(&echo(), &options(&standin));
    let result = run(&workflow, json!({ "text": "x" })).await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("communication"));
    assert_eq!(error.status, 401);
    assert_eq!(standin.requests().len(), 1);

    let standin =
        OpenAiStandIn::start(vec![Reply::Drop, text("after a reconnect", usage(1, 1, 0))]);
    let workflow = load_with(&echo(), &options(&standin));
    let result = run(&workflow, json!({ "text": "x" })).await;
    assert_eq!(
        output(&result)["messages"][1]["content"],
        json!("after a reconnect")
    );
    assert_eq!(standin.requests().len(), 2);
}

#[tokio::test]
async fn retries_stop_before_the_deadline() {
    let standin = OpenAiStandIn::start(vec![
        error(429, "slow down", &[("retry-after", "30")]),
        text("never", usage(1, 1, 0)),
    ]);
    let workflow = load_with(&echo(), &options(&standin));
    let started = std::time::Instant::now();
    let result = run_with(
        &workflow,
        json!({ "text": "x" }),
        Instant::now() + Duration::from_secs(5),
    )
    .await;
    let error = fault(&result);
    assert_eq!(error.status, 429);
    assert!(
        error
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("after the deadline")),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(standin.requests().len(), 1);
}

#[tokio::test]
async fn without_a_provider_the_task_faults_with_a_configuration_error() {
    let options = EngineOptions {
        llm: LlmOptions {
            default_model: Some("gpt-4o-mini".into()),
            ..LlmOptions::default()
        },
        ..EngineOptions::default()
    };
    let workflow = load_with(&echo(), &options);
    let result = run(&workflow, json!({ "text": "x" })).await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("configuration"));
    assert!(
        error
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("OPENAI_API_KEY")),
        "{error:?}"
    );
}

/// A support desk that asks the user back, then goes on after the conversation.
const DESK: &str = r#"
document: { dsl: '1.0.3', namespace: test, name: desk, version: '1.0.0' }
do:
  - remember:
      set: { ticket: T-1, message: '${ .message }' }
      export: { as: '${ { ticket: .ticket } }' }
  - chat:
      call: agents
      with:
        agents:
          - { name: Desk, instructions: You help. }
        handoffs:
          - { from: Desk, to: terminate, description: the customer's question is answered }
          - { from: Desk, after_work: user }
        initial_message: '${ .message }'
        context: '${ { ticket: $context.ticket } }'
        max_turns: 5
  - close:
      set: { ticket: '${ $context.ticket }', turns: '${ [.messages[] | select(.role == "assistant")] | length }', first: '${ $workflow.input.message }' }
"#;

#[tokio::test]
async fn handing_back_to_the_user_waits_and_resume_continues_the_same_conversation() {
    let standin = OpenAiStandIn::start(vec![
        text("Which order?", usage(10, 3, 0)),
        tool_calls(
            &[("c1", "transfer_to_terminate", json!({}))],
            usage(20, 4, 8),
        ),
    ]);
    let workflow = load_with(DESK, &options(&standin));
    let first = run(&workflow, json!({ "message": "My order is late" })).await;
    let Outcome::Waiting { output, state } = &first.outcome else {
        panic!("expected waiting, got {:?}", first.outcome);
    };
    assert_eq!(
        output["messages"],
        json!([
            { "role": "user", "content": "My order is late" },
            { "role": "assistant", "name": "Desk", "content": "Which order?" }
        ])
    );
    assert_eq!(output["context"], json!({ "ticket": "T-1" }));
    assert_eq!(state["format"], json!("mozaiks.workflow.waiting/1"));
    assert_eq!(
        state["position"],
        json!({ "task": 1, "reference": "/do/1/chat" })
    );
    assert_eq!(state["context"], json!({ "ticket": "T-1" }));
    assert_eq!(first.llm_calls.len(), 1);

    let second = workflow
        .resume(
            state.clone(),
            json!({ "message": "Order 42" }),
            &exec(),
            deadline(),
        )
        .await;
    let second = match second {
        Ok(result) => result,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        output_of(&second),
        json!({ "ticket": "T-1", "turns": 2, "first": "My order is late" })
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].body["messages"],
        json!([
            { "role": "system", "content": "You help." },
            { "role": "user", "content": "My order is late" },
            { "role": "assistant", "name": "Desk", "content": "Which order?" },
            { "role": "user", "content": "Order 42" }
        ])
    );
    assert_eq!(second.llm_calls.len(), 1);
    assert_eq!(second.llm_calls[0].cached_tokens, 8);
    // The resumed run counts the tasks it ran: the conversation and `close`.
    assert_eq!(second.metrics.tasks_executed, 2);
}

fn output_of(result: &RunResult) -> Value {
    output(result).clone()
}

/// Resumes `workflow` with `state`, expecting a refusal; its message.
async fn refused(workflow: &Workflow, state: Value) -> String {
    match workflow
        .resume(state, json!({ "message": "x" }), &exec(), deadline())
        .await
    {
        Ok(result) => panic!("resumed: {:?}", result.outcome),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_state_from_another_workflow_or_definition_is_refused() {
    let standin = OpenAiStandIn::start(vec![text("Which order?", usage(1, 1, 0))]);
    let workflow = load_with(DESK, &options(&standin));
    let first = run(&workflow, json!({ "message": "hi" })).await;
    let Outcome::Waiting { state, .. } = first.outcome else {
        panic!("expected waiting");
    };
    let other = load_with(
        &DESK.replace("name: desk", "name: other-desk"),
        &options(&standin),
    );
    let message = refused(&other, state.clone()).await;
    assert!(
        message.contains("belongs to workflow test/desk@1.0.0"),
        "{message}"
    );
    let changed = load_with(
        &DESK.replace("You help.", "You help politely."),
        &options(&standin),
    );
    let message = refused(&changed, state.clone()).await;
    assert!(message.contains("another definition"), "{message}");
    let mut moved = state.clone();
    moved["position"] = json!({ "task": 0, "reference": "/do/0/remember" });
    let message = refused(&workflow, moved).await;
    assert!(message.contains("not a task of"), "{message}");
    let mut old = state.clone();
    old["format"] = json!("mozaiks.workflow.waiting/0");
    let message = refused(&workflow, old).await;
    assert!(message.contains("format"), "{message}");
    let mut stranger = state.clone();
    stranger["conversation"]["agent"] = json!("Nobody");
    let message = refused(&workflow, stranger).await;
    assert!(message.contains("`Nobody`"), "{message}");
    let message = refused(&workflow, json!("not a state")).await;
    assert!(message.contains("format"), "{message}");
    // None of that called the model again.
    assert_eq!(standin.requests().len(), 1);
}

#[test]
fn only_a_conversation_that_can_hand_back_to_the_user_makes_a_workflow_able_to_wait() {
    let options = EngineOptions::default();
    assert!(load_with(DESK, &options).can_wait());
    // Agents that only hand off between themselves and terminate never wait.
    assert!(!load_with(SUPPORT, &options).can_wait());
    assert!(!load_with(
        &DESK.replace("after_work: user", "after_work: terminate"),
        &options
    )
    .can_wait());
}

#[tokio::test]
async fn a_resume_without_a_reply_faults() {
    let standin = OpenAiStandIn::start(vec![text("Which order?", usage(1, 1, 0))]);
    let workflow = load_with(DESK, &options(&standin));
    let Outcome::Waiting { state, .. } = run(&workflow, json!({ "message": "hi" })).await.outcome
    else {
        panic!("expected waiting");
    };
    let result = match workflow.resume(state, json!({}), &exec(), deadline()).await {
        Ok(result) => result,
        Err(e) => panic!("{e}"),
    };
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("validation"));
    assert!(
        error
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("user's reply")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_waiting_task_run_as_a_sub_workflow_faults_instead_of_losing_its_state() {
    let standin = OpenAiStandIn::start(vec![text("Which order?", usage(1, 1, 0))]);
    let options = options(&standin);
    let parent = load_with(
        r#"
document: { dsl: '1.0.3', namespace: test, name: parent, version: '1.0.0' }
do:
  - inner:
      run: { workflow: { namespace: test, name: desk, version: '1.0.0' } }
"#,
        &options,
    );
    let registry = match Registry::from_workflows([parent, load_with(DESK, &options)]) {
        Ok(registry) => registry,
        Err(e) => panic!("{e}"),
    };
    let Some(parent) = registry.resolve("test/parent", None) else {
        panic!("bundled");
    };
    let result = run(&parent, json!({ "message": "hi" })).await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("configuration"));
    assert_eq!(error.instance.as_deref(), Some("/do/1/chat"));
    assert_eq!(result.llm_calls.len(), 1);
}

#[test]
fn agents_tasks_are_checked_at_load_and_errors_name_the_place() {
    let task = |with: &str| {
        format!(
            "document: {{ dsl: '1.0.3', namespace: test, name: t, version: '1.0.0' }}\nuse:\n  functions:\n    f: {{ set: {{ a: 1 }} }}\ndo:\n  - chat:\n      call: agents\n      with: {with}\n"
        )
    };
    let cases = [
        (
            task("{ agents: [ { name: A, instructions: a }, { name: A, instructions: b } ] }"),
            "/do/0/chat/with/agents/1/name",
            "already used",
        ),
        (
            task("{ agents: [ { name: A, instructions: a } ], handoffs: [ { from: A, to: B } ] }"),
            "/do/0/chat/with/handoffs/0/to",
            "not an agent",
        ),
        (
            task("{ agents: [ { name: A, instructions: a } ], handoffs: [ { from: Z, after_work: user } ] }"),
            "/do/0/chat/with/handoffs/0/from",
            "not an agent",
        ),
        (
            task("{ agents: [ { name: A, instructions: a, tools: [ g ] } ] }"),
            "/do/0/chat/with/agents/0/tools/0",
            "defined: f",
        ),
        (
            task("{ agents: [ { name: A, instructions: a } ], initial_agent: B }"),
            "/do/0/chat/with/initial_agent",
            "not an agent",
        ),
        (
            task("{ agents: [ { name: A, instructions: a } ], handoffs: [ { from: A, to: A, when: '${ .context | nope }' } ] }"),
            "/do/0/chat/with/handoffs/0/when",
            "nope",
        ),
        (
            task("{ agents: [ { name: A, instructions: a, output_schema: { type: nothing } } ] }"),
            "/do/0/chat/with/agents/0/output_schema/type",
            "must be one of",
        ),
        (
            task("{ agents: [ { name: user, instructions: a } ] }"),
            "/do/0/chat/with/agents/0/name",
            "handoff target",
        ),
        (
            task("{ agents: [ { name: A, instructions: a, temperature: 1 } ] }"),
            "/do/0/chat/with/agents/0/temperature",
            "unknown field",
        ),
        (
            task("{ agents: [ { name: A } ] }"),
            "/do/0/chat/with/agents/0",
            "instructions",
        ),
        (
            task("{ agents: [ { name: A, instructions: a, model: { provider: vertex } } ] }"),
            "/do/0/chat/with/agents/0/model/provider",
            "not supported",
        ),
        (
            task("{ agents: [ { name: A, instructions: a } ], handoffs: [ { from: A, after_work: user }, { from: A, after_work: terminate } ] }"),
            "/do/0/chat/with/handoffs/1/after_work",
            "at most one",
        ),
        (
            task("{ agents: [ { name: A, instructions: a } ], max_turns: 0 }"),
            "/do/0/chat/with/max_turns",
            "positive integer",
        ),
        (
            "document: { dsl: '1.0.3', namespace: test, name: t, version: '1.0.0' }\ndo:\n  - each:\n      for: { in: '${ [1] }' }\n      do:\n        - chat:\n            call: agents\n            with: { agents: [ { name: A, instructions: a } ], handoffs: [ { from: A, after_work: user } ] }\n".to_owned(),
            "/do/0/each/do/0/chat/with/handoffs/0",
            "top-level `do`",
        ),
    ];
    for (yaml, pointer, words) in cases {
        let error = load_error(&yaml);
        assert_eq!(error.pointer(), pointer, "{error}\n{yaml}");
        assert!(error.message().contains(words), "{error}");
    }
    // A conversation that never waits may sit anywhere (here inside `for`).
    let nested = "document: { dsl: '1.0.3', namespace: test, name: t, version: '1.0.0' }\ndo:\n  - each:\n      for: { in: '${ [1] }' }\n      do:\n        - chat:\n            call: agents\n            with: { agents: [ { name: A, instructions: a } ] }\n";
    assert!(Workflow::parse(Path::new("nested.yaml"), nested).is_ok());
}

#[test]
fn context_triggers_are_checked_at_load() {
    let with = |triggers: &str| {
        format!(
            "{HEAD}do:\n  - chat:\n      call: agents\n      with:\n        agents: [ {{ name: A, instructions: x }} ]\n        context_triggers: {triggers}\n"
        )
    };
    for (triggers, message) in [
        ("3", "`context_triggers` must be a list"),
        ("[ { variable: ready } ]", "when"),
        ("[ { variable: ready, when: '${ .nope( }' } ]", "jq"),
        ("[ { variable: ready, when: x, extra: 1 } ]", "extra"),
    ] {
        let error = Workflow::parse(Path::new("t.yaml"), &with(triggers))
            .err()
            .unwrap_or_else(|| panic!("{triggers} loaded"))
            .to_string();
        assert!(
            error.contains("/do/0/chat/with/context_triggers"),
            "{error}"
        );
        assert!(error.contains(message), "{triggers}: {error}");
    }
    assert!(Workflow::parse(
        Path::new("t.yaml"),
        &with("[ { variable: ready, when: '${ .messages | length > 2 }' } ]")
    )
    .is_ok());
}
