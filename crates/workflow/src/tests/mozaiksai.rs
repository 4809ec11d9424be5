//! The bundled MozaiksAI sample (`workflows/CustomerIntake/`) end to end through the engine:
//! loaded by the bundle loader (`Registry::load_dir`), its conversation driven by the scripted
//! OpenAI-compatible stand-in — the interview and its condition handoff (IntakeAgent says
//! `NEXT`, `${intake_complete} == True`), after_work `user` (waiting) and resumes, the triage's
//! structured output (validated, re-asked once), the `string_llm` handoffs decided by the model
//! (to BillingAgent, and to `terminate` after the user's last reply), and the refund tool
//! running its DSL function.

use super::agents::options;
use super::openai_standin::{text, tool_calls, usage, OpenAiStandIn, Recorded, Reply};
use super::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The bundle directory, as the function loads it.
fn bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows")
}

/// The sample, loaded with the bundle under `options`.
fn sample(options: &EngineOptions) -> Arc<Workflow> {
    let registry = match Registry::load_dir_with(&bundle(), options) {
        Ok(registry) => registry,
        Err(e) => panic!("{e}"),
    };
    match registry.resolve("mozaiks/CustomerIntake", None) {
        Some(workflow) => workflow,
        None => panic!("mozaiks/CustomerIntake is bundled"),
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

/// The waiting run's output and state; the state round-trips through JSON text, as a
/// continuation carries it.
fn waiting(result: &RunResult) -> (Value, Value) {
    let Outcome::Waiting { output, state } = &result.outcome else {
        panic!("expected waiting, got {:?}", result.outcome);
    };
    let text = state.to_string();
    match serde_json::from_str(&text) {
        Ok(state) => (output.clone(), state),
        Err(e) => panic!("the state is not JSON text: {e}"),
    }
}

async fn resume(workflow: &Workflow, state: Value, input: Value) -> RunResult {
    match workflow.resume(state, input, &exec(), deadline()).await {
        Ok(result) => result,
        Err(e) => panic!("refused: {e}"),
    }
}

/// `(agent, model, prompt, completion, total, cached)` of each metered call.
fn metered(result: &RunResult) -> Vec<(String, String, u64, u64, u64, u64)> {
    result
        .llm_calls
        .iter()
        .map(|c| {
            assert_eq!(c.provider, "openai");
            (
                c.agent.clone(),
                c.model.clone(),
                c.prompt_tokens,
                c.completion_tokens,
                c.total_tokens,
                c.cached_tokens,
            )
        })
        .collect()
}

fn call(
    agent: &str,
    model: &str,
    prompt: u64,
    completion: u64,
    cached: u64,
) -> (String, String, u64, u64, u64, u64) {
    (
        agent.into(),
        model.into(),
        prompt,
        completion,
        prompt + completion,
        cached,
    )
}

/// The last message the model was sent.
fn last_message(request: &Recorded) -> Value {
    request.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or(Value::Null)
}

const TRIAGE_WRONG: &str = r#"{"category": "billing", "priority": "low", "summary": "Charged twice for invoice INV-9.", "needs_human": false, "confidence": 0.9, "contact": null}"#;

fn triage() -> Value {
    json!({
        "category": "billing", "priority": 3, "summary": "Charged twice for invoice INV-9; wants a refund.",
        "needs_human": false, "confidence": 0.92, "products": ["Pro plan"],
        "contact": { "channel": "email", "address": "ada@example.com" }
    })
}

/// A reply carrying a structured output and a handoff chosen by the model.
fn triage_and_transfer(usage: Value) -> Reply {
    super::openai_standin::completion(
        json!({ "role": "assistant", "content": triage().to_string(), "refusal": null,
                "tool_calls": [ { "id": "call_t", "type": "function",
                                  "function": { "name": "transfer_to_BillingAgent", "arguments": "{}" } } ] }),
        "tool_calls",
        usage,
    )
}

const OPENING: &str = "Hi, I was charged twice for my last invoice.";
const DETAILS: &str = "Invoice INV-9: 120 EUR, bought 10 days ago. I'd like a refund; not urgent.";
const ANSWER: &str = "You are eligible: the purchase is within 30 days and at most 500. I have started the refund of 120 EUR.";
const THANKS: &str = "Great, that's all I needed. Thanks!";

#[tokio::test]
async fn the_sample_interviews_waits_triages_hands_off_runs_its_tool_and_resumes_to_the_end() {
    let standin = OpenAiStandIn::start(vec![
        // Run 1: IntakeAgent asks; after_work user → waiting.
        text(
            "Which invoice is it, and how urgent is it?",
            usage(120, 11, 0),
        ),
        // Run 2: IntakeAgent knows enough (intake_complete) → TriageAgent, whose first
        // structured output does not match (re-asked once), then matches and hands off by
        // the model's decision → BillingAgent calls its tool, answers; after_work user.
        text("NEXT", usage(160, 1, 64)),
        text(TRIAGE_WRONG, usage(210, 40, 0)),
        triage_and_transfer(usage(290, 60, 128)),
        tool_calls(
            &[(
                "call_r",
                "refund_eligibility",
                json!({ "amount": 120, "days_since_purchase": 10 }),
            )],
            usage(330, 25, 0),
        ),
        text(ANSWER, usage(380, 30, 256)),
        // Run 3: the customer is done: the model takes the `terminate` handoff.
        tool_calls(
            &[("call_e", "transfer_to_terminate", json!({}))],
            usage(420, 9, 384),
        ),
    ]);
    let options = options(&standin);
    let workflow = sample(&options);

    // ---- run 1: the interview's first question, then the user's turn ----
    let input = json!({ "message": OPENING, "context": { "account_id": "A-17" } });
    let first = workflow.run(input, &exec(), deadline()).await;
    let (output, state) = waiting(&first);
    assert_eq!(
        output["messages"],
        json!([
            { "role": "user", "content": OPENING },
            { "role": "assistant", "name": "IntakeAgent", "content": "Which invoice is it, and how urgent is it?" }
        ])
    );
    assert_eq!(output["last_agent"], json!("IntakeAgent"));
    assert_eq!(
        output["context"],
        json!({ "intake_complete": false, "customer_tier": "standard", "account_id": "A-17" })
    );
    assert_eq!(output["structured_outputs"], json!({}));
    assert_eq!(
        state["position"],
        json!({ "task": 0, "reference": "/do/0/conversation" })
    );
    assert_eq!(
        metered(&first),
        vec![call("IntakeAgent", "default-model", 120, 11, 0)]
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    let intake = &requests[0];
    assert_eq!(intake.body["model"], json!("default-model"));
    assert_eq!(
        intake.system(),
        "## [ROLE]\nYou are a friendly customer intake specialist.\n\n\
         ## [INSTRUCTIONS]\nAsk one question at a time until you know what the customer needs, which product or\ninvoice it concerns, and how urgent it is.\n\n\
         ## [OUTPUT FORMAT]\nReply with one question, or exactly NEXT (nothing else) once you know enough."
    );
    // The user's `string_llm` rule (done → terminate) is offered to the agents that hand the
    // conversation to the user.
    assert_eq!(intake.tool_names(), vec!["transfer_to_terminate"]);
    assert_eq!(
        intake.body["tools"][0]["function"]["description"],
        json!("When the customer says the question is answered and needs nothing else.")
    );
    assert_eq!(intake.body.get("response_format"), None);

    // ---- run 2: the reply, the interview ends, triage, billing, the user's turn again ----
    let second = resume(&workflow, state, json!({ "message": DETAILS })).await;
    let (output, state) = waiting(&second);
    let requests = standin.requests();
    assert_eq!(requests.len(), 6);
    // Right after the resume the user's reply is the last message.
    assert_eq!(
        last_message(&requests[1]),
        json!({ "role": "user", "content": DETAILS })
    );
    // TriageAgent: the structured output is asked for, the model-decided handoff offered.
    let triage_request = &requests[2];
    assert_eq!(triage_request.body["model"], json!("gpt-4o-mini"));
    assert_eq!(triage_request.body["temperature"], json!(0.0));
    assert!(triage_request
        .system()
        .starts_with("You classify the customer's request"));
    assert_eq!(
        triage_request.tool_names(),
        vec!["transfer_to_BillingAgent"]
    );
    assert_eq!(
        triage_request.body["tools"][0]["function"]["description"],
        json!("When the request concerns an invoice, a charge or a refund.")
    );
    let format = &triage_request.body["response_format"];
    assert_eq!(format["type"], json!("json_schema"));
    assert_eq!(format["json_schema"]["name"], json!("TriageAgent_output"));
    assert_eq!(
        format["json_schema"]["schema"]["properties"]["category"]["enum"],
        json!(["billing", "technical", "account", "other"])
    );
    // The re-ask shows the wrong reply and says what is wrong with it.
    let reask = &requests[3].body["messages"];
    let n = reask.as_array().map_or(0, Vec::len);
    assert_eq!(reask[n - 2]["content"], json!(TRIAGE_WRONG));
    let correction = reask[n - 1]["content"].as_str().unwrap_or_default();
    assert!(correction.contains("priority"), "{correction}");
    // BillingAgent: its tool is its DSL function, described by tools.yaml.
    let billing = &requests[4];
    assert_eq!(billing.body["model"], json!("gpt-4o-mini"));
    assert_eq!(billing.body["max_tokens"], json!(600));
    assert_eq!(
        billing.tool_names(),
        vec!["refund_eligibility", "transfer_to_terminate"]
    );
    assert_eq!(
        billing.body["tools"][0]["function"],
        json!({
            "name": "refund_eligibility",
            "description": "Whether a purchase can be refunded, from its amount and age.",
            "parameters": {
                "type": "object",
                "properties": {
                    "amount": { "type": "number", "minimum": 0 },
                    "days_since_purchase": { "type": "integer", "minimum": 0 }
                },
                "required": ["amount", "days_since_purchase"]
            }
        })
    );
    let tool_result = last_message(&requests[5]);
    assert_eq!(tool_result["role"], json!("tool"));
    assert_eq!(tool_result["tool_call_id"], json!("call_r"));
    let result: Value = serde_json::from_str(tool_result["content"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(
        result,
        json!({ "eligible": true, "reason": "within 30 days and at most 500" })
    );

    let roles: Vec<(String, String)> = output["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_owned(),
                m["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("user", ""),
        ("assistant", "IntakeAgent"),
        ("user", ""),
        ("assistant", "IntakeAgent"),
        ("assistant", "TriageAgent"),
        ("tool", "transfer_to_BillingAgent"),
        ("assistant", "BillingAgent"),
        ("tool", "refund_eligibility"),
        ("assistant", "BillingAgent"),
    ]
    .iter()
    .map(|(r, n)| ((*r).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(roles, expected);
    assert_eq!(output["messages"][3]["content"], json!("NEXT"));
    assert_eq!(output["messages"][8]["content"], json!(ANSWER));
    assert_eq!(output["last_agent"], json!("BillingAgent"));
    assert_eq!(
        output["structured_outputs"],
        json!({ "TriageAgent": triage() })
    );
    assert_eq!(
        metered(&second),
        vec![
            call("IntakeAgent", "default-model", 160, 1, 64),
            call("TriageAgent", "gpt-4o-mini", 210, 40, 0),
            call("TriageAgent", "gpt-4o-mini", 290, 60, 128),
            call("BillingAgent", "gpt-4o-mini", 330, 25, 0),
            call("BillingAgent", "gpt-4o-mini", 380, 30, 256),
        ]
    );
    // The conversation task and the tool's function ran.
    assert_eq!(second.metrics.tasks_executed, 2);
    assert_eq!(second.metrics.http_calls, 0);

    // ---- run 3: the customer is done ----
    let third = resume(&workflow, state, json!({ "message": THANKS })).await;
    let out = super::output(&third);
    let requests = standin.requests();
    assert_eq!(requests.len(), 7);
    assert_eq!(
        last_message(&requests[6]),
        json!({ "role": "user", "content": THANKS })
    );
    assert_eq!(
        requests[6].tool_names(),
        vec!["refund_eligibility", "transfer_to_terminate"]
    );
    let messages = out["messages"].as_array().map_or(0, Vec::len);
    assert_eq!(messages, 12);
    assert_eq!(
        out["messages"][9],
        json!({ "role": "user", "content": THANKS })
    );
    assert_eq!(out["messages"][11]["role"], json!("tool"));
    assert_eq!(out["messages"][11]["name"], json!("transfer_to_terminate"));
    assert_eq!(out["last_agent"], json!("BillingAgent"));
    assert_eq!(
        out["structured_outputs"],
        json!({ "TriageAgent": triage() })
    );
    assert_eq!(out["context"]["account_id"], json!("A-17"));
    assert_eq!(
        metered(&third),
        vec![call("BillingAgent", "gpt-4o-mini", 420, 9, 384)]
    );
    assert_eq!(standin.remaining(), 0);
}

#[tokio::test]
async fn a_priority_customer_goes_straight_to_triage_which_ends_the_conversation() {
    // customer_tier priority and the interview not done: the user-sourced rule hands the
    // user's first message to TriageAgent before IntakeAgent replies; its structured output
    // is valid at once, and its after_work ends the conversation (a technical request: no
    // billing handoff).
    let decision = json!({
        "category": "technical", "priority": 1, "summary": "The app crashes at login.",
        "needs_human": true, "confidence": 0.8, "contact": null
    });
    let standin = OpenAiStandIn::start(vec![text(&decision.to_string(), usage(90, 35, 0))]);
    let workflow = sample(&options(&standin));
    let input = json!({ "message": "The app crashes at login!", "context": { "customer_tier": "priority" } });
    let result = workflow.run(input, &exec(), deadline()).await;
    let out = output(&result);
    assert_eq!(out["last_agent"], json!("TriageAgent"));
    assert_eq!(
        out["structured_outputs"],
        json!({ "TriageAgent": decision })
    );
    assert_eq!(out["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        metered(&result),
        vec![call("TriageAgent", "gpt-4o-mini", 90, 35, 0)]
    );
    assert_eq!(
        standin.requests()[0].tool_names(),
        vec!["transfer_to_BillingAgent"]
    );
    // context_variables.yaml exposes customer_tier and account_id to TriageAgent: its system
    // message ends with their current values (account_id was not given: None).
    let system = standin.requests()[0].system();
    assert!(
        system.ends_with("\n\nCUSTOMER_TIER: priority\nACCOUNT_ID: None"),
        "{system}"
    );
}

#[tokio::test]
async fn on_the_embedded_defaults_the_sample_loads_and_its_run_faults_with_a_configuration_error() {
    // What a host gives the engine when no OPENAI_* variable is set (the function's
    // configuration test checks it maps the environment so): the bundle still loads (the
    // function starts); a run faults, saying what to configure, without a model call.
    let mut options = EngineOptions::default();
    options.llm.default_model = Some("gpt-4o-mini".into());
    assert!(options.llm.openai.is_none());
    let workflow = sample(&options);
    let result = workflow
        .run(json!({ "message": "hello" }), &exec(), deadline())
        .await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("configuration"));
    assert!(
        error
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("OPENAI_API_KEY")),
        "{error:?}"
    );
    assert!(result.llm_calls.is_empty());
}

/// What the translator makes of a `string_llm` rule to `user` (and an after_work `terminate`).
const ASKS_BACK: &str = r#"
document: { dsl: '1.0.3', namespace: test, name: asks-back, version: '1.0.0' }
do:
  - conversation:
      call: agents
      with:
        agents:
          - { name: Helper, instructions: You help. }
        handoffs:
          - { from: Helper, to: user, description: When you need more details from the customer. }
          - { from: Helper, after_work: terminate }
        initial_message: '${ .message }'
"#;

#[tokio::test]
async fn a_model_decided_handoff_to_the_user_waits_and_the_reply_follows_the_transfer() {
    let standin = OpenAiStandIn::start(vec![
        tool_calls(
            &[("call_u", "transfer_to_user", json!({}))],
            usage(30, 4, 0),
        ),
        text("Done: the order ships tomorrow.", usage(50, 8, 16)),
    ]);
    let workflow =
        match Workflow::parse_with(Path::new("asks-back.yaml"), ASKS_BACK, &options(&standin)) {
            Ok(workflow) => workflow,
            Err(e) => panic!("{e}"),
        };
    let first = workflow
        .run(
            json!({ "message": "Where is my order?" }),
            &exec(),
            deadline(),
        )
        .await;
    let (output, state) = waiting(&first);
    assert_eq!(output["messages"][2]["role"], json!("tool"));
    assert_eq!(output["messages"][2]["name"], json!("transfer_to_user"));
    assert_eq!(
        standin.requests()[0].body["tools"][0]["function"]["description"],
        json!("When you need more details from the customer.")
    );
    let second = resume(&workflow, state, json!({ "message": "Order 42" })).await;
    let out = super::output(&second);
    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    // The transfer is answered, then the user's reply: a valid Chat Completions history.
    let sent = &requests[1].body["messages"];
    assert_eq!(sent[2]["tool_calls"][0]["id"], json!("call_u"));
    assert_eq!(sent[3]["tool_call_id"], json!("call_u"));
    assert_eq!(sent[4], json!({ "role": "user", "content": "Order 42" }));
    assert_eq!(out["messages"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        metered(&second),
        vec![call("Helper", "default-model", 50, 8, 16)]
    );
}

#[tokio::test]
async fn a_resume_without_the_users_message_faults_instead_of_replaying_the_opening() {
    // The first turn may go without `message` (the orchestrator's opening message speaks);
    // a reply may not: the resume faults with a validation error, with no model call.
    let standin = OpenAiStandIn::start(vec![text(
        "Hello! What can I help you with?",
        usage(60, 9, 0),
    )]);
    let workflow = sample(&options(&standin));
    let first = workflow.run(json!({}), &exec(), deadline()).await;
    let (output, state) = waiting(&first);
    assert_eq!(
        output["messages"][0],
        json!({ "role": "user", "content": "IntakeAgent, greet the customer and ask what they need help with." })
    );
    let second = resume(&workflow, state, json!({})).await;
    let error = fault(&second);
    assert_eq!(error.type_, WorkflowError::standard_type("validation"));
    assert!(
        error
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("`reply_message` produced nothing")),
        "{error:?}"
    );
    assert!(second.llm_calls.is_empty());
    assert_eq!(standin.requests().len(), 1);
}

/// A folder in the current format: routing in `transition_graph.yaml`, a state variable set
/// by the interviewer's `NEXT`, written for this test in the shape MozaiksAI's current folders
/// use (user → Intake while the intake is open, Intake → user to wait, Intake → Review once it
/// is complete, Review → terminate after its turn).
fn transition_folder() -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("mozaiksai-transitions-{}", std::process::id()))
        .join("Routed_Intake");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        (
            "orchestrator.yaml",
            "workflow_name: Routed_Intake\nworkflow_startup_mode: UserDriven\norchestration_pattern: ag2_network\ninitial_agent: IntakeAgent\nmax_turns: 10\n",
        ),
        (
            "agents.yaml",
            "agents:\n- name: IntakeAgent\n  system_message: Ask until you know, then say NEXT.\n  prompt_sections: []\n- name: ReviewAgent\n  system_message: Summarise the request.\n",
        ),
        (
            "context_variables.yaml",
            "definitions:\n- name: intake_complete\n  source:\n    type: state\n    default: false\n    triggers:\n    - { type: agent_text, agent: IntakeAgent, match: { equals: NEXT } }\n- name: tone\n  source: { type: state, default: plain }\n",
        ),
        (
            "transition_graph.yaml",
            "transition_rules:
- { source_agent: user, target_agent: IntakeAgent, transition_type: condition, condition_type: context_equals, condition_key: intake_complete, condition_value: false }
- { source_agent: IntakeAgent, target_agent: user, transition_type: condition, condition_type: context_equals, condition_key: intake_complete, condition_value: false, transition_target: RevertToUserTarget }
- { source_agent: IntakeAgent, target_agent: ReviewAgent, transition_type: condition, condition_type: context_expression, context_expression: '${intake_complete} == true', transition_target: AgentTarget }
- { source_agent: ReviewAgent, target_agent: terminate, transition_type: after_turn, transition_target: TerminateTarget }
",
        ),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

#[tokio::test]
async fn a_transition_graph_routes_waits_for_the_user_and_ends_as_it_declares() {
    let standin = OpenAiStandIn::start(vec![
        text("What do you need?", usage(10, 4, 0)),
        text("NEXT", usage(20, 1, 0)),
        text("The customer needs a refund.", usage(30, 6, 0)),
    ]);
    let workflow = match Workflow::load_path(&transition_folder(), &options(&standin)) {
        Ok(workflow) => workflow,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(workflow.id().name, "Routed_Intake");
    // Intake asks; intake_complete is still false → the rule to `user` makes the run wait.
    let first = workflow
        .run(json!({ "message": "hello" }), &exec(), deadline())
        .await;
    let (output, state) = waiting(&first);
    assert_eq!(output["last_agent"], "IntakeAgent");
    assert_eq!(output["context"]["intake_complete"], false);
    // The user's reply goes to Intake (the rule from `user`); it says NEXT, the trigger sets
    // intake_complete, the expression rule routes to Review, whose after_turn ends the run.
    // The resume's context sets a defined variable; an undefined key is dropped.
    let second = resume(
        &workflow,
        state,
        json!({ "message": "a refund", "context": { "tone": "formal", "junk": 1 } }),
    )
    .await;
    let output = output_of(&second);
    let speakers: Vec<&str> = output["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(
        speakers,
        ["IntakeAgent", "IntakeAgent", "ReviewAgent"],
        "{output}"
    );
    assert_eq!(output["last_agent"], "ReviewAgent");
    // The trigger set the variable itself (context_triggers), not only the condition's view.
    assert_eq!(output["context"]["intake_complete"], true, "{output}");
    assert_eq!(output["context"]["tone"], "formal", "{output}");
    assert!(output["context"].get("junk").is_none(), "{output}");
    assert_eq!(standin.remaining(), 0);
}

fn output_of(result: &RunResult) -> &Value {
    match &result.outcome {
        Outcome::Completed(output) => output,
        other => panic!("expected completed, got {other:?}"),
    }
}

/// A folder with a `UI_Tool` (ui_contract with two actions) and a `UI_Surface`, no Python.
fn ui_folder() -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("mozaiksai-ui-{}", std::process::id()))
        .join("Approvals");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        ("orchestrator.yaml", "initial_agent: ReviewAgent\nmax_turns: 6\n"),
        ("agents.yaml", "agents:\n- name: ReviewAgent\n  system_message: Ask for approval, then show the diagram.\n"),
        ("ui_config.yaml", "layout: {}\n"),
        (
            "context_variables.yaml",
            "definitions:
- name: approved
  source:
    type: state
    default: false
    triggers:
    - { type: ui_response, tool: request_approval, response_key: approved }
- name: approver
  source: { type: state, triggers: [ { type: ui_response, tool: request_approval, response_key: meta.by } ] }
- name: missing
  source: { type: state, default: kept, triggers: [ { type: ui_response, tool: request_approval, response_key: nowhere } ] }
- name: polite
  source: { type: state, default: false, triggers: [ { type: user_text, match: { contains: please } } ] }
agents:
  ReviewAgent: { variables: [approved, polite] }
",
        ),
        (
            "tools.yaml",
            "tools:
- agent: ReviewAgent
  file: request_approval.py
  function: request_approval
  description: Ask the user to approve.
  tool_type: UI_Tool
  auto_tool_call: false
  ui: { component: ApprovalCard, mode: inline }
  ui_contract:
    surface_kind: agent_tool
    payload_schema: { type: object, required: [title], properties: { title: { type: string } } }
    actions_schema:
    - { id: approve, label: Approve, payload_schema: { type: object, required: [approved], properties: { approved: { const: true } } } }
    - { id: request_changes, label: Request Changes }
- agent: ReviewAgent
  file: show_diagram.py
  function: show_diagram
  tool_type: UI_Surface
  ui: { component: DiagramViewer, mode: artifact }
lifecycle_tools: []
",
        ),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

#[tokio::test]
async fn a_ui_tool_waits_with_its_input_request_and_the_answer_becomes_the_tools_result() {
    let standin = OpenAiStandIn::start(vec![
        // A payload that misses `title`: refused back to the model, not shown.
        tool_calls(&[("c0", "request_approval", json!({}))], usage(10, 2, 0)),
        tool_calls(
            &[("c1", "request_approval", json!({ "title": "Ship it?" }))],
            usage(12, 3, 0),
        ),
        tool_calls(
            &[("c2", "show_diagram", json!({ "nodes": 3 }))],
            usage(14, 3, 0),
        ),
        text("Approved and shown.", usage(16, 4, 0)),
    ]);
    let workflow = match Workflow::load_path(&ui_folder(), &options(&standin)) {
        Ok(workflow) => workflow,
        Err(e) => panic!("{e}"),
    };
    let first = workflow
        .run(json!({ "message": "review please" }), &exec(), deadline())
        .await;
    let (output, state) = waiting(&first);
    let request = &output["input_request"];
    assert_eq!(request["tool"], "request_approval", "{output}");
    assert_eq!(request["tool_call_id"], "c1");
    assert_eq!(request["component"], "ApprovalCard");
    assert_eq!(request["mode"], "inline");
    assert_eq!(request["payload"], json!({ "title": "Ship it?" }));
    assert_eq!(request["actions"][0]["id"], "approve");
    assert_eq!(request["actions"][1]["label"], "Request Changes");
    // The first, invalid call came back to the model as a tool error.
    let requests = standin.requests();
    let refused = last_message(&requests[1]);
    assert_eq!(refused["role"], "tool");
    assert!(
        refused["content"]
            .as_str()
            .unwrap()
            .contains("payload schema"),
        "{refused}"
    );
    assert_eq!(requests.len(), 2, "no model call while the run waits");

    // An answer that names no declared action, or breaks the action's schema, is refused.
    for bad in [
        json!({ "ui_response": { "action": "maybe" } }),
        json!({ "ui_response": { "action": "approve", "approved": false } }),
        json!({ "message": "yes" }),
    ] {
        let refused = resume(&workflow, state.clone(), bad.clone()).await;
        let Outcome::Faulted(error) = &refused.outcome else {
            panic!("{bad}: expected a fault, got {:?}", refused.outcome);
        };
        assert_eq!(error.status, 400, "{bad}");
    }
    assert_eq!(standin.requests().len(), 2);

    // The user's own words set `polite` (a user_text trigger); the agent saw it.
    assert_eq!(output["context"]["polite"], true, "{output}");
    assert!(
        requests[0]
            .system()
            .ends_with("\n\nAPPROVED: false\nPOLITE: true"),
        "{}",
        requests[0].system()
    );

    let answer = json!({ "action": "approve", "approved": true, "rationale": "fine", "meta": { "by": "ada" } });
    let second = resume(&workflow, state, json!({ "ui_response": answer })).await;
    let output = output_of(&second);
    // The answer set the ui_response variables (a key, a dotted path; an absent key sets
    // nothing), before the agent saw it.
    assert_eq!(output["context"]["approved"], true, "{output}");
    assert_eq!(output["context"]["approver"], "ada", "{output}");
    assert_eq!(output["context"]["missing"], "kept", "{output}");
    assert!(standin.requests()[2]
        .system()
        .ends_with("APPROVED: true\nPOLITE: true"));
    assert!(output.get("input_request").is_none(), "{output}");
    assert_eq!(
        output["ui_surfaces"],
        json!([{ "tool": "show_diagram", "agent": "ReviewAgent", "component": "DiagramViewer",
                 "mode": "artifact", "payload": { "nodes": 3 } }])
    );
    let requests = standin.requests();
    // The answer is the tool's result the agent sees next.
    let seen = last_message(&requests[2]);
    assert_eq!(seen["role"], "tool");
    assert_eq!(seen["tool_call_id"], "c1");
    let content: Value = serde_json::from_str(seen["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, answer);
    assert_eq!(standin.remaining(), 0);
}

/// A folder in AG2's AutoPattern (mozaiks-core's format): no handoffs; after each reply a model
/// names the next speaker.
fn auto_folder() -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("mozaiksai-auto-{}", std::process::id()))
        .join("Subscription_Desk");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [
        (
            "orchestrator.yaml",
            "max_turns: 3\nstartup_mode: AgentDriven\norchestration_pattern: AutoPattern\nhuman_in_the_loop: false\ninitial_agent: Assistant\n",
        ),
        (
            "agents.yaml",
            "agents:\n- name: Assistant\n  description: Answers questions about plans.\n  system_message: You help with subscriptions.\n- name: Billing\n  description: Handles invoices.\n  system_message: You handle invoices.\n",
        ),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

#[tokio::test]
async fn an_auto_pattern_lets_a_model_pick_each_next_speaker_until_max_turns() {
    let standin = OpenAiStandIn::start(vec![
        text("Which invoice?", usage(10, 3, 0)),
        // The selection: the model names Billing (with some noise around the name).
        text("\"Billing\"", usage(30, 1, 0)),
        text("Invoice 7 is paid.", usage(20, 5, 0)),
        // A name that is no candidate: the next in turn (Assistant) speaks.
        text("Nobody", usage(31, 1, 0)),
        text("Anything else?", usage(22, 3, 0)),
    ]);
    let workflow = match Workflow::load_path(&auto_folder(), &options(&standin)) {
        Ok(workflow) => workflow,
        Err(e) => panic!("{e}"),
    };
    let result = workflow
        .run(json!({ "message": "my invoice" }), &exec(), deadline())
        .await;
    let output = output_of(&result);
    let speakers: Vec<&str> = output["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(speakers, ["Assistant", "Billing", "Assistant"], "{output}");
    let requests = standin.requests();
    // The selection's prompt lists the roles with their descriptions, then asks for one.
    let selector = &requests[1];
    assert!(selector
        .system()
        .contains("Assistant: Answers questions about plans."));
    assert!(selector
        .system()
        .contains("select the next role from [Assistant, Billing]"));
    assert!(selector.tool_names().is_empty());
    // Selections are metered as their own model calls.
    let agents: Vec<&str> = result.llm_calls.iter().map(|c| c.agent.as_str()).collect();
    assert_eq!(
        agents,
        [
            "Assistant",
            "speaker_selection",
            "Billing",
            "speaker_selection",
            "Assistant"
        ]
    );
    assert_eq!(standin.remaining(), 0);
}

#[tokio::test]
async fn round_robin_takes_turns_and_hands_to_the_user_when_it_is_a_candidate() {
    let standin = OpenAiStandIn::start(vec![
        text("A speaks", usage(1, 1, 0)),
        text("B speaks", usage(1, 1, 0)),
    ]);
    let body = "document: { dsl: '1.0.3', namespace: t, name: rr, version: '1.0.0' }\ndo:\n- chat:\n    call: agents\n    with:\n      agents: [ { name: A, instructions: a }, { name: B, instructions: b } ]\n      speaker_selection: { mode: round_robin, user: true }\n      initial_message: '${ .message }'\n";
    let workflow = match Workflow::parse_with(Path::new("rr.yaml"), body, &options(&standin)) {
        Ok(workflow) => workflow,
        Err(e) => panic!("{e}"),
    };
    let result = workflow
        .run(json!({ "message": "go" }), &exec(), deadline())
        .await;
    let (output, _state) = waiting(&result);
    let speakers: Vec<&str> = output["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(speakers, ["A", "B"], "A, B, then the user: the run waits");
    assert_eq!(standin.remaining(), 0);
    assert!(result
        .llm_calls
        .iter()
        .all(|c| c.agent != "speaker_selection"));
}
