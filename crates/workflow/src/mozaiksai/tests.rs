//! The MozaiksAI folder loader: the sample's document, each translation rule (checked by
//! running the produced jq and schemas through the engine), each error.

use super::*;
use crate::schema::Schema;
use crate::{ExecutionInfo, Outcome, Registry, Workflow};
use serde_json::json;
use std::time::Duration;

fn sample_dir() -> PathBuf {
    // The function's bundle, two levels up from this crate.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/CustomerIntake")
}

fn sample() -> Value {
    match translate(&sample_dir()) {
        Ok(doc) => doc,
        Err(e) => panic!("{e}"),
    }
}

fn with_of(doc: &Value) -> &Value {
    &doc["do"][0][TASK]["with"]
}

/// A scratch copy of the sample folder, removed when dropped.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    /// A copy of the sample with `edits` (file name → new content; `None` deletes the file).
    fn sample_with(edits: &[(&str, Option<&str>)]) -> Scratch {
        let root = std::env::temp_dir().join(format!("mozaiksai-{}", uuid::Uuid::now_v7()));
        let folder = root.join("CustomerIntake");
        let copy = || -> std::io::Result<()> {
            std::fs::create_dir_all(&folder)?;
            for entry in std::fs::read_dir(sample_dir())? {
                let path = entry?.path();
                if let Some(name) = path.file_name() {
                    std::fs::copy(&path, folder.join(name))?;
                }
            }
            for (name, content) in edits {
                match content {
                    Some(text) => std::fs::write(folder.join(name), text)?,
                    None => std::fs::remove_file(folder.join(name))?,
                }
            }
            Ok(())
        };
        if let Err(e) = copy() {
            panic!("cannot prepare {}: {e}", folder.display());
        }
        Scratch { root }
    }

    fn folder(&self) -> PathBuf {
        self.root.join("CustomerIntake")
    }

    /// The translation's error, as displayed.
    fn error(&self) -> String {
        match translate(&self.folder()) {
            Ok(doc) => panic!("translated: {doc}"),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temp dir harms nothing.
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The error of translating the sample with one file replaced by `content`.
fn error_with(file: &str, content: &str) -> String {
    Scratch::sample_with(&[(file, Some(content))]).error()
}

fn assert_error(text: &str, file: &str, pointer: &str, message: &str) {
    let head = format!("{file}: {pointer}: ");
    let Some(at) = text.find(&head) else {
        panic!("expected `{head}…` in: {text}");
    };
    assert!(
        text[at + head.len()..].contains(message),
        "expected `{message}` in: {text}"
    );
}

/// Evaluates a `${ … }` expression of the generated document on `input` through the engine.
async fn eval(expression: &str, input: Value) -> Result<Value, String> {
    let yaml = format!(
        "document: {{ dsl: '1.0.3', namespace: t, name: t, version: '1.0.0' }}\ndo: [ {{ e: {{ set: {{ r: {} }} }} }} ]",
        json_string(expression)
    );
    let workflow = Workflow::parse(Path::new("eval.yaml"), &yaml).map_err(|e| e.to_string())?;
    let exec = ExecutionInfo {
        execution_id: "exec-1".into(),
        claims: json!({}),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    match workflow.run(input, &exec, deadline).await.outcome {
        Outcome::Completed(output) => Ok(output["r"].clone()),
        Outcome::Faulted(e) => Err(format!("{e}: {:?}", e.detail)),
        Outcome::Waiting { .. } => Err("waiting".into()),
    }
}

async fn holds(expression: &str, input: Value) -> bool {
    match eval(expression, input).await {
        Ok(Value::Bool(b)) => b,
        other => panic!("`{expression}` gave {other:?}"),
    }
}

/// A context-variable table with `done` derived from Intake saying `NEXT`.
fn derived() -> ContextVariables {
    let mut variables = ContextVariables::default();
    variables.triggers.insert(
        "done".into(),
        vec![Trigger {
            agent: Some("Intake".into()),
            equals: Some("NEXT".into()),
            contains: None,
            regex: None,
        }],
    );
    variables
}

fn jq(condition: &str) -> String {
    match condition::to_jq(condition, &ContextVariables::default()) {
        Ok(code) => format!("${{ {code} }}"),
        Err(e) => panic!("{condition}: {e:?}"),
    }
}

fn context(vars: Value) -> Value {
    json!({ "context": vars, "messages": [], "agent": "A" })
}

// ---- the sample ----

#[test]
fn the_sample_becomes_one_agents_call() {
    let doc = sample();
    assert_eq!(
        doc["document"],
        json!({
            "dsl": "1.0.3", "namespace": "mozaiks", "name": "CustomerIntake", "version": "1.0.0",
            "title": "CustomerIntake",
            "summary": "Interviews a customer, triages the request, and answers billing questions."
        })
    );
    let tasks = doc["do"].as_array().map(Vec::len);
    assert_eq!(tasks, Some(1));
    assert_eq!(doc["do"][0][TASK]["call"], json!("agents"));
    let with = with_of(&doc);
    assert_eq!(with["initial_agent"], json!("IntakeAgent"));
    assert_eq!(with["max_turns"], json!(20));
    assert_eq!(
        with["initial_message"],
        json!("${ .message // \"IntakeAgent, greet the customer and ask what they need help with.\" }")
    );
    assert_eq!(with["reply_message"], json!("${ .message }"));
    assert_eq!(
        with["context"],
        json!("${ {\"customer_tier\":\"standard\",\"intake_complete\":false} + (.context // {}) }")
    );
    let names: Vec<&str> = with["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["IntakeAgent", "TriageAgent", "BillingAgent"]);
}

#[test]
fn the_sample_agents_keep_prompts_models_limits_tools_and_outputs() {
    let doc = sample();
    let agents = &with_of(&doc)["agents"];
    assert_eq!(
        agents[0],
        json!({
            "name": "IntakeAgent",
            "prompt_sections": [
                { "id": "role", "heading": "[ROLE]", "content": "You are a friendly customer intake specialist." },
                { "id": "instructions", "heading": "[INSTRUCTIONS]", "content": "Ask one question at a time until you know what the customer needs, which product or\ninvoice it concerns, and how urgent it is." },
                { "id": "output_format", "heading": "[OUTPUT FORMAT]", "content": "Reply with one question, or exactly NEXT (nothing else) once you know enough." }
            ],
            "max_consecutive_auto_reply": 5
        })
    );
    assert_eq!(
        agents[1]["instructions"],
        json!("You classify the customer's request from the conversation so far: category, priority (1 = urgent … 4 = low), a one-sentence summary, and whether a human must follow up.")
    );
    assert_eq!(
        agents[1]["model"],
        json!({ "provider": "openai", "name": "gpt-4o-mini", "temperature": 0 })
    );
    assert_eq!(agents[1]["max_consecutive_auto_reply"], json!(2));
    assert_eq!(agents[1]["output_schema"]["title"], json!("TriageDecision"));
    assert_eq!(agents[1].get("tools"), None);
    assert_eq!(
        agents[2]["model"],
        json!({ "provider": "openai", "name": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 600 })
    );
    assert_eq!(agents[2]["tools"], json!(["refund_eligibility"]));
    assert_eq!(agents[2].get("output_schema"), None);
    assert_eq!(agents[0].get("output_schema"), None);
}

#[test]
fn the_sample_handoffs_follow_the_rules_in_order() {
    let doc = sample();
    let handoffs = &with_of(&doc)["handoffs"];
    let derived_done = "(if any(.messages[]?; (.role == \"assistant\" and .name == \"IntakeAgent\" and (.content | type) == \"string\" and ((.content | trim | ascii_downcase) == \"next\"))) then true else .context.intake_complete end)";
    let user_rule = format!(
        "${{ (.messages | last | .role) == \"user\" and ((.context.customer_tier == \"priority\") and (({derived_done} | . != null and . != false and . != 0 and . != \"\" and . != [] and . != {{}}) | not)) }}"
    );
    assert_eq!(
        handoffs,
        &json!([
            { "from": "IntakeAgent", "to": "TriageAgent", "when": format!("${{ ({derived_done} == true) }}") },
            { "from": "IntakeAgent", "after_work": "user" },
            { "from": "TriageAgent", "to": "BillingAgent", "description": "When the request concerns an invoice, a charge or a refund." },
            { "from": "TriageAgent", "after_work": "terminate" },
            { "from": "BillingAgent", "after_work": "user" },
            // `source_agent: user` rules apply after each agent that hands to the user.
            { "from": "IntakeAgent", "to": "terminate", "description": "When the customer says the question is answered and needs nothing else." },
            { "from": "BillingAgent", "to": "terminate", "description": "When the customer says the question is answered and needs nothing else." },
            { "from": "IntakeAgent", "to": "TriageAgent", "when": user_rule, "scope": "pre" },
            { "from": "BillingAgent", "to": "TriageAgent", "when": user_rule, "scope": "pre" }
        ])
    );
}

#[test]
fn the_sample_tool_binds_to_its_dsl_function() {
    let doc = sample();
    let function = &doc["use"]["functions"]["refund_eligibility"];
    assert_eq!(
        function["metadata"],
        json!({ "description": "Whether a purchase can be refunded, from its amount and age." })
    );
    assert_eq!(
        function["input"]["schema"]["document"]["required"],
        json!(["amount", "days_since_purchase"])
    );
}

#[tokio::test]
async fn the_sample_function_runs_in_the_engine() {
    let doc = sample();
    let probe = json!({
        "document": { "dsl": "1.0.3", "namespace": "t", "name": "probe", "version": "1.0.0" },
        "use": doc["use"],
        "do": [
            { "recent": { "call": "refund_eligibility", "with": { "amount": 120, "days_since_purchase": 3 }, "export": { "as": "{ recent: . }" } } },
            { "old": { "call": "refund_eligibility", "with": { "amount": 120, "days_since_purchase": 45 }, "output": { "as": "{ recent: $context.recent, old: . }" } } }
        ]
    });
    let yaml = probe.to_string();
    let workflow = match Workflow::parse(Path::new("probe.json"), &yaml) {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    };
    let exec = ExecutionInfo {
        execution_id: "exec-1".into(),
        claims: json!({}),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let Outcome::Completed(output) = workflow.run(json!({}), &exec, deadline).await.outcome else {
        panic!("the probe completes");
    };
    assert_eq!(
        output,
        json!({
            "recent": { "eligible": true, "reason": "within 30 days and at most 500" },
            "old": { "eligible": false, "reason": "purchases older than 30 days are not refunded" }
        })
    );
}

#[tokio::test]
async fn the_sample_context_puts_defaults_under_the_callers_context() {
    let doc = sample();
    let Some(expression) = with_of(&doc)["context"].as_str().map(str::to_owned) else {
        panic!("context is an expression");
    };
    assert_eq!(
        eval(&expression, json!({})).await,
        Ok(json!({ "customer_tier": "standard", "intake_complete": false }))
    );
    assert_eq!(
        eval(
            &expression,
            json!({ "context": { "customer_tier": "priority", "account_id": "acc-9" } })
        )
        .await,
        Ok(json!({ "customer_tier": "priority", "intake_complete": false, "account_id": "acc-9" }))
    );
    assert!(eval(&expression, json!({ "context": "not an object" }))
        .await
        .is_err());
}

#[tokio::test]
async fn the_sample_condition_fires_once_the_interviewer_says_next() {
    let doc = sample();
    let Some(when) = with_of(&doc)["handoffs"][0]["when"]
        .as_str()
        .map(str::to_owned)
    else {
        panic!("the first handoff has `when`");
    };
    let talk = |last: &str| {
        json!({
            "context": { "intake_complete": false },
            "agent": "IntakeAgent",
            "messages": [
                { "role": "user", "content": "hi" },
                { "role": "assistant", "name": "IntakeAgent", "content": "What do you need?" },
                { "role": "user", "content": "a refund, NEXT week please" },
                { "role": "assistant", "name": "IntakeAgent", "content": last }
            ]
        })
    };
    assert!(!holds(&when, talk("Which invoice?")).await);
    assert!(holds(&when, talk("  next \n")).await);
    // Only the trigger's agent counts; the context value counts too.
    let mut other = talk("NEXT");
    other["messages"][3]["name"] = json!("TriageAgent");
    assert!(!holds(&when, other.clone()).await);
    other["context"]["intake_complete"] = json!(true);
    assert!(holds(&when, other).await);
}

#[tokio::test]
async fn user_sourced_conditions_apply_only_right_after_the_user() {
    let doc = sample();
    let Some(when) = with_of(&doc)["handoffs"][7]["when"]
        .as_str()
        .map(str::to_owned)
    else {
        panic!("the eighth handoff has `when`");
    };
    let input = |tier: &str, last_role: &str| {
        json!({
            "context": { "customer_tier": tier, "intake_complete": false },
            "agent": "IntakeAgent",
            "messages": [ { "role": "assistant", "name": "IntakeAgent", "content": "Hello?" }, { "role": last_role, "content": "help" } ]
        })
    };
    assert!(holds(&when, input("priority", "user")).await);
    assert!(!holds(&when, input("standard", "user")).await);
    assert!(!holds(&when, input("priority", "assistant")).await);
}

#[test]
fn the_sample_structured_output_is_a_json_schema() {
    let doc = sample();
    let schema = &with_of(&doc)["agents"][1]["output_schema"];
    assert_eq!(
        schema,
        &json!({
            "type": "object",
            "title": "TriageDecision",
            "description": "The triage of one customer request.",
            "properties": {
                "category": { "enum": ["billing", "technical", "account", "other"], "description": "What the request is about." },
                "priority": { "type": "integer", "description": "1 (urgent) to 4 (low)." },
                "summary": { "type": "string", "description": "One sentence." },
                "needs_human": { "type": "boolean", "description": "Whether a person must follow up." },
                "confidence": { "type": "number", "description": "0 to 1." },
                "products": { "type": "array", "items": { "type": "string" }, "description": "Products the request mentions.", "default": [] },
                "contact": {
                    "anyOf": [
                        {
                            "type": "object", "title": "Contact",
                            "properties": {
                                "channel": { "enum": ["email", "phone", "chat"], "description": "How the customer wants to be answered." },
                                "address": { "anyOf": [ { "type": "string" }, { "type": "null" } ], "description": "The address or number, if given." }
                            },
                            "required": ["address", "channel"]
                        },
                        { "type": "null" }
                    ],
                    "description": "How to reach the customer, if they said."
                }
            },
            "required": ["category", "confidence", "contact", "needs_human", "priority", "summary"]
        })
    );
    let compiled = match Schema::compile_document(schema, "/output_schema") {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let good = json!({
        "category": "billing", "priority": 2, "summary": "Refund for invoice 7.", "needs_human": false,
        "confidence": 0.8, "contact": { "channel": "email", "address": null }
    });
    assert_eq!(compiled.validate(&good), Ok(()));
    let mut bad = good.clone();
    bad["category"] = json!("sales");
    assert!(compiled.validate(&bad).is_err());
    let mut missing = good;
    if let Some(map) = missing.as_object_mut() {
        map.remove("summary");
    }
    assert!(compiled.validate(&missing).is_err());
}

// ---- translation rules ----

#[tokio::test]
async fn conditions_translate_to_jq_over_the_context() {
    assert_eq!(jq("${x} == True"), "${ (.context.x == true) }");
    assert_eq!(jq("${x} != None"), "${ (.context.x != null) }");
    assert_eq!(jq("${x} is not None"), "${ (.context.x != null) }");
    assert_eq!(jq("${x} is None"), "${ (.context.x == null) }");
    assert_eq!(jq("${n} >= 2.5"), "${ (.context.n >= 2.5) }");
    assert_eq!(jq("${s} == 'a\"b'"), "${ (.context.s == \"a\\\"b\") }");
    // Precedence: not > and > or; parentheses group.
    let cases: [(&str, Value, bool); 12] = [
        (
            "${a} == 1 or ${b} == 2 and ${c} == 3",
            json!({ "a": 1, "b": 0 }),
            true,
        ),
        (
            "(${a} == 1 or ${b} == 2) and ${c} == 3",
            json!({ "a": 1, "c": 0 }),
            false,
        ),
        ("not ${a} == 1", json!({ "a": 1 }), false),
        ("not ${missing}", json!({}), true),
        // Python truthiness for bare operands: 0, "", [], {} are false.
        ("${a}", json!({ "a": 0 }), false),
        ("${a}", json!({ "a": "" }), false),
        ("${a}", json!({ "a": [] }), false),
        ("${a} and ${b}", json!({ "a": "x", "b": [1] }), true),
        ("${a} or ${b}", json!({ "a": {}, "b": null }), false),
        ("${n} < -1", json!({ "n": -3 }), true),
        (
            "${s} == \"accepted\" and ${plan} != None",
            json!({ "s": "accepted", "plan": { "x": 1 } }),
            true,
        ),
        ("${flag} == False", json!({ "flag": false }), true),
    ];
    for (condition, vars, expected) in cases {
        assert_eq!(
            holds(&jq(condition), context(vars.clone())).await,
            expected,
            "{condition} on {vars}"
        );
    }
}

#[tokio::test]
async fn derived_variables_read_their_triggers() {
    let code = match condition::to_jq("${done} == True", &derived()) {
        Ok(code) => format!("${{ {code} }}"),
        Err(e) => panic!("{e:?}"),
    };
    let said = |text: &str| json!({ "context": {}, "messages": [ { "role": "assistant", "name": "Intake", "content": text } ] });
    assert!(holds(&code, said("next")).await);
    assert!(!holds(&code, said("NEXT question")).await);
    let contains = Trigger {
        agent: Some("Intake".into()),
        equals: None,
        contains: Some("ALL SET".into()),
        regex: None,
    };
    let regex = Trigger {
        agent: Some("Intake".into()),
        equals: None,
        contains: None,
        regex: Some("^done\\b".into()),
    };
    let mut variables = ContextVariables::default();
    variables
        .triggers
        .insert("done".into(), vec![contains, regex]);
    let code = match condition::to_jq("${done}", &variables) {
        Ok(code) => format!("${{ {code} }}"),
        Err(e) => panic!("{e:?}"),
    };
    assert!(holds(&code, said("We are all set.")).await);
    assert!(holds(&code, said("DONE, thanks")).await);
    assert!(!holds(&code, said("not done")).await);
    // A message without text (a tool call) is skipped, not an error.
    let tool_call = json!({ "context": {}, "messages": [ { "role": "assistant", "name": "Intake", "content": null } ] });
    assert!(!holds(&code, tool_call).await);
}

#[test]
fn agents_take_system_message_or_prompt_sections() {
    let doc = Scratch::sample_with(&[(
        "agents.yaml",
        Some("agents:\n- name: IntakeAgent\n  system_message: Hi.\n- name: TriageAgent\n  prompt_sections: [ { heading: H, content: C } ]\n  llm_config: { model: claude, api_type: bedrock }\n- name: BillingAgent\n  system_message: B\n"),
    )]);
    let doc = match translate(&doc.folder()) {
        Ok(doc) => doc,
        Err(e) => panic!("{e}"),
    };
    let agents = &with_of(&doc)["agents"];
    assert_eq!(
        agents[0],
        json!({ "name": "IntakeAgent", "instructions": "Hi." })
    );
    assert_eq!(
        agents[1]["prompt_sections"],
        json!([ { "heading": "H", "content": "C" } ])
    );
    assert_eq!(
        agents[1]["model"],
        json!({ "provider": "bedrock", "name": "claude" })
    );
}

#[test]
fn orchestrator_defaults_and_overrides() {
    let scratch = Scratch::sample_with(&[(
        "orchestrator.yaml",
        Some("workflow_name: Intake-2\nnamespace: acme\nversion: 2.1.0\ninitial_agent: IntakeAgent\n"),
    )]);
    let doc = match translate(&scratch.folder()) {
        Ok(doc) => doc,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(doc["document"]["namespace"], json!("acme"));
    assert_eq!(doc["document"]["name"], json!("Intake-2"));
    assert_eq!(doc["document"]["version"], json!("2.1.0"));
    assert_eq!(doc["document"].get("summary"), None);
    let with = with_of(&doc);
    assert_eq!(with["initial_message"], json!("${ .message }"));
    assert_eq!(with.get("reply_message"), None);
    assert_eq!(with.get("max_turns"), None);
}

#[test]
fn optional_files_may_be_absent() {
    let scratch = Scratch::sample_with(&[
        ("handoffs.yaml", None),
        ("context_variables.yaml", None),
        ("structured_outputs.yaml", None),
        ("tools.yaml", None),
        ("functions.yaml", None),
    ]);
    let doc = match translate(&scratch.folder()) {
        Ok(doc) => doc,
        Err(e) => panic!("{e}"),
    };
    let with = with_of(&doc);
    assert_eq!(with.get("handoffs"), None);
    assert_eq!(with["context"], json!("${ .context // {} }"));
    assert_eq!(doc.get("use"), None);
    assert_eq!(with["agents"][1].get("output_schema"), None);
}

#[test]
fn condition_scope_pre_and_after_work_to_an_agent() {
    let handoffs = "handoff_rules:\n- { source_agent: IntakeAgent, target_agent: TriageAgent, handoff_type: condition, condition_type: expression, condition_scope: pre, condition: '${customer_tier} == \"priority\"' }\n- { source_agent: IntakeAgent, target_agent: BillingAgent, handoff_type: after_work }\n- { source_agent: user, target_agent: BillingAgent, handoff_type: after_work }\n";
    let scratch = Scratch::sample_with(&[("handoffs.yaml", Some(handoffs))]);
    let doc = match translate(&scratch.folder()) {
        Ok(doc) => doc,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        with_of(&doc)["handoffs"],
        json!([
            { "from": "IntakeAgent", "to": "TriageAgent", "when": "${ (.context.customer_tier == \"priority\") }", "scope": "pre" },
            { "from": "IntakeAgent", "after_work": "BillingAgent" }
            // The `user` after_work rule: no agent hands to the user here, so it applies nowhere.
        ])
    );
}

#[test]
fn structured_output_types_translate() {
    let outputs = r#"
models:
  Item:
    type: model
    fields:
      sku: { type: string }
  Everything:
    type: model
    fields:
      a: { type: optional_str }
      b: { type: dict }
      c: { type: 'list[Item]' }
      d: { type: optional_list, items: int }
      e: { type: union, variants: [int, str] }
      f: { type: Item, default: null }
      g: { type: 'Optional[str]' }
registry:
  TriageAgent: Everything
"#;
    let scratch = Scratch::sample_with(&[("structured_outputs.yaml", Some(outputs))]);
    let doc = match translate(&scratch.folder()) {
        Ok(doc) => doc,
        Err(e) => panic!("{e}"),
    };
    let item = json!({ "type": "object", "title": "Item", "properties": { "sku": { "type": "string" } }, "required": ["sku"] });
    let mut item_with_default = item.clone();
    item_with_default["default"] = Value::Null;
    assert_eq!(
        with_of(&doc)["agents"][1]["output_schema"],
        json!({
            "type": "object", "title": "Everything",
            "properties": {
                "a": { "type": ["string", "null"] },
                "b": { "type": "object" },
                "c": { "type": "array", "items": item },
                "d": { "anyOf": [ { "type": "array", "items": { "type": "integer" } }, { "type": "null" } ], "default": null },
                "e": { "anyOf": [ { "type": "integer" }, { "type": "string" } ] },
                "f": item_with_default,
                "g": { "type": ["string", "null"] }
            },
            "required": ["a", "b", "c", "e", "g"]
        })
    );
}

// ---- errors ----

#[test]
fn orchestrator_errors_name_the_place() {
    let cases: [(&str, &str, &str); 8] = [
        ("workflow_name: Customer Intake\ninitial_agent: IntakeAgent\n", "/workflow_name", "cannot be a workflow name"),
        ("workflow_name: W\ninitial_agent: IntakeAgent\nworkflow_startup_mode: Sometimes\n", "/workflow_startup_mode", "`Sometimes` is unknown: use AgentDriven, UserDriven or BackendOnly"),
        ("workflow_name: W\ninitial_agent: Nobody\n", "/initial_agent", "initial_agent Nobody is not an agent of agents.yaml (IntakeAgent, TriageAgent, BillingAgent)"),
        ("workflow_name: W\ninitial_agent: IntakeAgent\norchestration_pattern: ManualPattern\n", "/orchestration_pattern", "ManualPattern (the user picks"),
        ("workflow_name: W\ninitial_agent: IntakeAgent\norchestration_pattern: SwarmPattern\n", "/orchestration_pattern", "SwarmPattern is unknown"),
        ("workflow_name: W\ninitial_agent: IntakeAgent\nmax_turns: 0\n", "/max_turns", "at least 1"),
        ("workflow_name: W\ninitial_agent: IntakeAgent\nmax_turn: 3\n", "/max_turn", "unknown key `max_turn`"),
        ("workflow_name: W\ninitial_agent: IntakeAgent\nversion: [1]\n", "/version", "semantic version"),
    ];
    for (content, pointer, message) in cases {
        let text = error_with("orchestrator.yaml", content);
        if pointer.is_empty() {
            assert!(
                text.contains("orchestrator.yaml: ") && text.contains(message),
                "{text}"
            );
        } else {
            assert_error(&text, "orchestrator.yaml", pointer, message);
        }
    }
    let text = error_with("orchestrator.yaml", "workflow_name: [unclosed\n");
    assert!(text.contains("orchestrator.yaml: not valid YAML"), "{text}");
}

#[test]
fn agent_errors_name_the_place() {
    let cases: [(&str, &str, &str); 8] = [
        ("agents: []\n", "/agents", "at least one agent"),
        (
            "agents:\n- name: A B\n  system_message: x\n",
            "/agents/0/name",
            "only ASCII letters",
        ),
        (
            "agents:\n- name: A\n  system_message: x\n- name: A\n  system_message: y\n",
            "/agents/1/name",
            "defined twice",
        ),
        (
            "agents:\n- name: A\n",
            "/agents/0",
            "needs `prompt_sections` or `system_message`",
        ),
        (
            "agents:\n- name: A\n  system_message: x\n  prompt_sections: [{ heading: H, content: c }]\n",
            "/agents/0",
            "both",
        ),
        (
            "agents:\n  A: { name: B, system_message: x }\n",
            "/agents/A/name",
            "differs from its key",
        ),
        (
            "agents:\n- name: A\n  system_message: x\n  auto_tool_mode: true\n",
            "/agents/0/auto_tool_mode",
            "cannot be translated",
        ),
        (
            "agents:\n- name: A\n  system_message: x\n  llm_config: { model: m, seed: 1 }\n",
            "/agents/0/llm_config/seed",
            "unknown key `seed`",
        ),
    ];
    for (content, pointer, message) in cases {
        assert_error(
            &error_with("agents.yaml", content),
            "agents.yaml",
            pointer,
            message,
        );
    }
    let text = Scratch::sample_with(&[("agents.yaml", None)]).error();
    assert!(
        text.contains("agents.yaml: a MozaiksAI folder needs agents.yaml"),
        "{text}"
    );
}

#[test]
fn handoff_errors_name_the_rule() {
    let rule = |fields: &str| format!("handoff_rules:\n- {{ {fields} }}\n");
    let cases: [(String, &str, &str); 9] = [
        (rule("source_agent: Nobody, target_agent: user, handoff_type: after_work"), "/handoff_rules/0/source_agent", "source Nobody is not an agent"),
        (rule("source_agent: IntakeAgent, target_agent: Nobody, handoff_type: after_work"), "/handoff_rules/0/target_agent", "target Nobody is not an agent"),
        (rule("source_agent: IntakeAgent, target_agent: user, handoff_type: after_work, transition_target: StayTarget"), "/handoff_rules/0/transition_target", "StayTarget cannot be translated"),
        (rule("source_agent: IntakeAgent, target_agent: user, handoff_type: sometimes"), "/handoff_rules/0/handoff_type", "unknown"),
        (rule("source_agent: IntakeAgent, target_agent: user, handoff_type: condition, condition_type: regex, condition: x"), "/handoff_rules/0/condition_type", "`regex` is unknown"),
        (rule("source_agent: IntakeAgent, target_agent: user, handoff_type: condition, condition_type: expression, condition: '${a} in ${b}'"), "/handoff_rules/0/condition", "cannot translate `${a} in ${b}` (at character 6): `in` cannot be translated"),
        (rule("source_agent: IntakeAgent, target_agent: user, handoff_type: condition, condition_type: string_llm, condition_scope: pre, condition: x"), "/handoff_rules/0/condition_scope", "applies to expression conditions"),
        (rule("source_agent: IntakeAgent, target_agent: user, handoff_type: condition, condition_type: expression"), "/handoff_rules/0", "`condition` is required"),
        (
            rule("source_agent: IntakeAgent, target_agent: user, handoff_type: condition, condition_type: expression, condition_scope: sometime, condition: '${a}'"),
            "/handoff_rules/0/condition_scope",
            "`sometime` is unknown",
        ),
    ];
    for (content, pointer, message) in cases {
        assert_error(
            &error_with("handoffs.yaml", &content),
            "handoffs.yaml",
            pointer,
            message,
        );
    }
}

#[test]
fn untranslatable_conditions_are_rejected_with_the_reason() {
    let cases: [(&str, &str); 10] = [
        ("${a} = 1", "compare with `==`"),
        ("${a} == [1, 2]", "`[` cannot be translated"),
        ("${a} == none", "write None (or null)"),
        ("size(${a}) > 1", "`size` cannot be translated"),
        ("${a} < ${b} < ${c}", "chained comparisons"),
        ("${a} + 1 == 2", "`+` cannot be translated"),
        ("(${a} == 1", "never closed"),
        ("${a} ==", "ends where a value was expected"),
        ("${a.b} == 1", "not a context variable name"),
        ("${a} == 1 ${b}", "after a complete condition"),
    ];
    let deep = format!("{}${{a}}{}", "(".repeat(100_000), ")".repeat(100_000));
    let not_deep = format!("{}${{a}}", "not ".repeat(100_000));
    let deep_cases = [
        (deep.as_str(), "nested more than 32"),
        (not_deep.as_str(), "nested more than 32"),
    ];
    for (condition, message) in cases.into_iter().chain(deep_cases) {
        match condition::to_jq(condition, &ContextVariables::default()) {
            Ok(code) => panic!("{condition} translated to {code}"),
            Err(e) => assert!(e.message.contains(message), "{condition}: {}", e.message),
        }
    }
}

#[test]
fn context_variable_errors_name_the_variable() {
    let ui = "definitions:\n- name: accepted\n  source: { type: state, default: false, triggers: [ { type: ui_response, tool: t, response_key: k } ] }\n";
    assert_error(
        &error_with("context_variables.yaml", ui),
        "context_variables.yaml",
        "/definitions/0/source/triggers/0/tool",
        "accepted: the ui_response trigger names tool t, which is not a UI_Tool",
    );
    let unknown =
        "definitions:\n- name: seen\n  source: { type: state, triggers: [ { type: on_click } ] }\n";
    assert_error(
        &error_with("context_variables.yaml", unknown),
        "context_variables.yaml",
        "/definitions/0/source/triggers/0/type",
        "seen: trigger type `on_click` is unknown: use agent_text, user_text or ui_response",
    );
    let agent = "definitions:\n- name: done\n  source: { type: state, triggers: [ { type: agent_text, agent: Ghost, match: { equals: X } } ] }\n";
    assert_error(
        &error_with("context_variables.yaml", agent),
        "context_variables.yaml",
        "/definitions/0/source/triggers/0/agent",
        "trigger agent Ghost",
    );
    let no_match = "definitions:\n- name: done\n  source: { type: state, triggers: [ { type: agent_text, agent: IntakeAgent, match: {} } ] }\n";
    assert_error(
        &error_with("context_variables.yaml", no_match),
        "context_variables.yaml",
        "/definitions/0/source/triggers/0/match",
        "needs equals, contains or regex",
    );
    let transitions =
        "definitions:\n- name: s\n  source: { type: state, transitions: [ { to_state: b } ] }\n";
    assert_error(
        &error_with("context_variables.yaml", transitions),
        "context_variables.yaml",
        "/definitions/0/source/transitions",
        "cannot be translated",
    );
    let twice = "definitions:\n- { name: a, default: 1 }\n- { name: a, default: 2 }\n";
    assert_error(
        &error_with("context_variables.yaml", twice),
        "context_variables.yaml",
        "/definitions/1",
        "defined twice",
    );
}

#[test]
fn structured_output_errors_name_the_model_and_field() {
    let cases: [(&str, &str, &str); 6] = [
        ("models: {}\nregistry: { TriageAgent: Missing }\n", "/registry/TriageAgent", "model `Missing`, which `models` does not define"),
        ("models: { M: { type: model, fields: {} } }\nregistry: { Ghost: M }\n", "/registry/Ghost", "Ghost, which is not an agent"),
        ("models: { M: { type: model, fields: { x: { type: decimal } } } }\nregistry: { TriageAgent: M }\n", "/models/M/fields/x/type", "unknown type `decimal`"),
        ("models: { M: { type: model, fields: { x: { type: list } } } }\nregistry: { TriageAgent: M }\n", "/models/M/fields/x", "needs `items`"),
        ("models: { M: { type: model, fields: { x: { type: literal, values: [] } } } }\nregistry: { TriageAgent: M }\n", "/models/M/fields/x", "needs `values`"),
        ("models: { M: { type: model, fields: { me: { type: M } } } }\nregistry: { TriageAgent: M }\n", "/models/M", "contains itself (M → M)"),
    ];
    for (content, pointer, message) in cases {
        assert_error(
            &error_with("structured_outputs.yaml", content),
            "structured_outputs.yaml",
            pointer,
            message,
        );
    }
}

#[test]
fn a_tool_without_a_dsl_function_fails_naming_both() {
    let text = Scratch::sample_with(&[("functions.yaml", None)]).error();
    assert_error(
        &text,
        "tools.yaml",
        "/tools/0/function",
        "tool refund_eligibility:",
    );
    assert!(
        text.contains("functions.yaml defines no DSL function `refund_eligibility`"),
        "{text}"
    );
    assert!(
        text.contains("Python tools (tools/refund_eligibility.py) cannot run in this runtime"),
        "{text}"
    );
}

#[test]
fn tool_errors_name_the_place() {
    let tool = |extra: &str| {
        format!("tools:\n- {{ agent: BillingAgent, function: refund_eligibility{extra} }}\n")
    };
    // MozaiksAI calls an auto tool itself with the agent's structured output: refused for an
    // agent that has one (TriageAgent), the model calls it otherwise (BillingAgent).
    let auto = |extra: &str| {
        format!("tools:\n- {{ agent: TriageAgent, function: refund_eligibility{extra} }}\n")
    };
    let cases: [(String, &str, &str); 5] = [
        (auto(", tool_type: UI_Tool, ui: { component: C }"), "/tools/0/auto_invoke", "cannot be translated"),
        (auto(", auto_invoke: true"), "/tools/0/auto_invoke", "cannot be translated"),
        (auto(", auto_tool_call: true"), "/tools/0/auto_tool_call", "cannot be translated"),
        ("tools:\n- { agent: Ghost, function: refund_eligibility }\n".into(), "/tools/0/agent", "agent Ghost is not an agent"),
        (format!("{}lifecycle_tools: [ {{ trigger: before_agent, agent: BillingAgent, function: f }} ]\n", tool("")), "/lifecycle_tools", "cannot do"),
    ];
    for (content, pointer, message) in cases {
        assert_error(
            &error_with("tools.yaml", &content),
            "tools.yaml",
            pointer,
            message,
        );
    }
    let loads = Scratch::sample_with(&[("tools.yaml", Some(&tool(", auto_invoke: true")))]);
    assert!(
        translate(&loads.folder()).is_ok(),
        "BillingAgent has no structured output"
    );
    let hooks = "hooks:\n- { hook_type: update_agent_state, hook_agent: IntakeAgent, filename: h.py, function: f }\n";
    assert_error(
        &error_with("hooks.yaml", hooks),
        "hooks.yaml",
        "/hooks",
        "cannot run in this runtime",
    );
}

// ---- the bundle loader ----

#[test]
fn the_bundle_loader_finds_mozaiksai_folders() {
    let scratch = Scratch::sample_with(&[(
        "orchestrator.yaml",
        Some("workflow_name: W\ninitial_agent: Nobody\n"),
    )]);
    // A folder without orchestrator.yaml is not a workflow; the MozaiksAI folder is translated.
    let other = scratch.root.join("openapi");
    if let Err(e) = std::fs::create_dir_all(&other)
        .and_then(|()| std::fs::write(other.join("pets.yaml"), "openapi: 3.0.0\n"))
    {
        panic!("{e}");
    }
    let err = Registry::load_dir(&scratch.root)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_error(
        &err,
        "CustomerIntake/orchestrator.yaml",
        "/initial_agent",
        "initial_agent Nobody",
    );
    // Without MozaiksAI folders or documents the directory is empty.
    if let Err(e) = std::fs::remove_dir_all(scratch.folder()) {
        panic!("{e}");
    }
    let err = Registry::load_dir(&scratch.root)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("no workflows in this directory"), "{err}");
}

// ---- what MozaiksAI accepts, accepted as it means it ----

/// The sample with edits, translated.
fn translated_with(edits: &[(&str, Option<&str>)]) -> Value {
    let scratch = Scratch::sample_with(edits);
    match translate(&scratch.folder()) {
        Ok(doc) => doc,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_folder_without_workflow_name_is_named_by_its_folder_and_names_may_hold_underscores() {
    let doc = translated_with(&[(
        "orchestrator.yaml",
        Some("initial_agent: IntakeAgent\nworkflow_startup_mode: UserDriven\n"),
    )]);
    assert_eq!(doc["document"]["name"], "CustomerIntake");
    let doc = translated_with(&[(
        "orchestrator.yaml",
        Some("workflow_name: Customer_Intake\ninitial_agent: IntakeAgent\nstartup_mode: agentdriven\n"),
    )]);
    assert_eq!(doc["document"]["name"], "Customer_Intake");
    assert!(crate::load::is_dsl_name("HelloWorld_Facts"));
    assert!(!crate::load::is_dsl_name("_x") && !crate::load::is_dsl_name("a b"));
}

#[test]
fn agents_may_be_a_mapping_and_empty_sections_defer_to_the_system_message() {
    let agents = "agents:\n  IntakeAgent: { system_message: You interview., prompt_sections: [] }\n  TriageAgent: { name: TriageAgent, system_message: You triage. }\n  BillingAgent: { system_message: You bill. }\n";
    let doc = translated_with(&[
        ("agents.yaml", Some(agents)),
        ("structured_outputs.yaml", None),
        ("tools.yaml", None),
        ("functions.yaml", None),
    ]);
    let names: Vec<&str> = with_of(&doc)["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    // A mapping's agents come in name order (the order of its keys is not kept).
    assert_eq!(names, ["BillingAgent", "IntakeAgent", "TriageAgent"]);
    assert_eq!(with_of(&doc)["agents"][1]["instructions"], "You interview.");
    assert!(with_of(&doc)["agents"][1].get("prompt_sections").is_none());
}

#[test]
fn handoff_rules_as_mozaiksai_reads_them() {
    let rules = "handoff_rules:
- { source_agent: IntakeAgent, target_agent: user, handoff_type: after_work }
- { source_agent: IntakeAgent, target_agent: terminate, handoff_type: after_work }
- { source_agent: IntakeAgent, target_agent: TriageAgent, handoff_type: condition, condition: '${intake_complete} == true', condition_scope: after }
- { source_agent: TriageAgent, target_agent: BillingAgent, handoff_type: condition, condition: the request is about billing }
- { source_agent: BillingAgent, target_agent: terminate, handoff_type: condition, condition: true }
";
    let doc = translated_with(&[("handoffs.yaml", Some(rules))]);
    let handoffs = with_of(&doc)["handoffs"].as_array().unwrap().clone();
    // A repeated after_work: the last one stands, alone.
    let after: Vec<&Value> = handoffs
        .iter()
        .filter(|h| h["from"] == "IntakeAgent" && h.get("after_work").is_some())
        .collect();
    assert_eq!(
        after,
        [&json!({ "from": "IntakeAgent", "after_work": "terminate" })]
    );
    // No condition_type: `${…}` is an expression (lowercase `true` as Python's True), other text
    // is for the model; `condition_scope: after` is MozaiksAI's post.
    let expression = handoffs.iter().find(|h| h["to"] == "TriageAgent").unwrap();
    assert!(
        expression["when"].as_str().unwrap().contains("== true"),
        "{expression}"
    );
    assert!(expression.get("scope").is_none());
    let llm = handoffs.iter().find(|h| h["to"] == "BillingAgent").unwrap();
    assert_eq!(llm["description"], "the request is about billing");
    // A YAML boolean condition is a constant expression.
    let always = handoffs
        .iter()
        .find(|h| h["from"] == "BillingAgent" && h["to"] == "terminate")
        .unwrap();
    assert_eq!(
        always["when"],
        "${ (true | . != null and . != false and . != 0 and . != \"\" and . != [] and . != {}) }"
    );
}

#[test]
fn transition_graph_errors_name_the_rule() {
    let rule = |fields: &str| format!("transition_rules:\n- {{ {fields} }}\n");
    let cases = [
        (rule("source_agent: IntakeAgent, target_agent: user, transition_type: condition, condition_type: string_llm, condition_key: x"), "/transition_rules/0/condition_type", "route deterministically"),
        (rule("source_agent: IntakeAgent, target_agent: user, transition_type: condition, condition_type: tool_called, tool_name: t"), "/transition_rules/0/condition_type", "not translated yet"),
        (rule("source_agent: IntakeAgent, target_agent: user, transition_type: after_turn, transition_target: TerminateTarget"), "/transition_rules/0/transition_target", "target_agent: terminate"),
        (rule("source_agent: IntakeAgent, target_agent: user, transition_type: after_turn, condition_key: x"), "/transition_rules/0/condition_key", "unconditional"),
        (rule("source_agent: IntakeAgent, target_agent: user, transition_type: after_work"), "/transition_rules/0/transition_type", "`after_work` is unknown"),
        (rule("source_agent: Nobody, target_agent: user, transition_type: after_turn"), "/transition_rules/0/source_agent", "source Nobody is not an agent"),
        (rule("source_agent: IntakeAgent, target_agent: user, transition_type: condition, condition_type: context_equals"), "/transition_rules/0", "`condition_key` is required"),
    ];
    for (content, pointer, message) in cases {
        let scratch = Scratch::sample_with(&[
            ("handoffs.yaml", None),
            ("transition_graph.yaml", Some(&content)),
        ]);
        assert_error(&scratch.error(), "transition_graph.yaml", pointer, message);
    }
    // Both routing files: which one is meant is unclear.
    let both = Scratch::sample_with(&[("transition_graph.yaml", Some("transition_rules: []\n"))]);
    assert!(both
        .error()
        .contains("both handoffs.yaml and transition_graph.yaml"));
    // User aliases, and the first after_turn of a speaker standing.
    let doc = translated_with(&[
        ("handoffs.yaml", None),
        (
            "transition_graph.yaml",
            Some("transition_rules:\n- { source_agent: IntakeAgent, target_agent: User_Proxy, transition_type: after_turn }\n- { source_agent: IntakeAgent, target_agent: terminate, transition_type: after_turn }\n"),
        ),
    ]);
    assert_eq!(
        with_of(&doc)["handoffs"],
        json!([{ "from": "IntakeAgent", "after_work": "user" }])
    );
}

#[test]
fn keys_of_mozaiksai_hosts_and_builtin_tools_have_a_fate() {
    // Accepted with no effect: how a host starts the workflow, descriptive specs, built-in
    // tools left off, human_input_mode; an agent's description is passed on.
    let doc = translated_with(&[
        (
            "orchestrator.yaml",
            Some("workflow_name: CustomerIntake\ninitial_agent: IntakeAgent\nentry_point: true\ntriggers: [ { type: chat } ]\ninputs: { message: string }\n"),
        ),
        (
            "agents.yaml",
            Some("agents:\n- { name: IntakeAgent, description: Interviews., system_message: x, human_input_mode: NEVER, sandbox_shell: false, web_search: { enabled: false } }\n- { name: TriageAgent, prompt_sections: [], prompt_sections_custom: [ { heading: H, content: c } ] }\n- { name: BillingAgent, system_message: z }\n"),
        ),
        ("structured_outputs.yaml", None),
        ("tools.yaml", None),
        ("functions.yaml", None),
    ]);
    let agents = &with_of(&doc)["agents"];
    assert_eq!(agents[0]["description"], "Interviews.");
    assert_eq!(agents[1]["prompt_sections"][0]["heading"], "H");
    // Refused with the reason: what needs Python or a tool this runtime lacks.
    for (file, content, pointer, message) in [
        ("orchestrator.yaml", "workflow_name: W\ninitial_agent: IntakeAgent\nruntime_extensions: [ { kind: api_router, entrypoint: 'm:f' } ]\n", "/runtime_extensions", "Python plug-ins"),
        ("agents.yaml", "agents:\n- { name: IntakeAgent, system_message: x, sandbox_shell: true }\n", "/agents/0/sandbox_shell", "built-in tools"),
        ("orchestrator.yaml", "workflow_name: W\ninitial_agent: IntakeAgent\nentry_point: maybe\n", "/entry_point", "true or false"),
    ] {
        assert_error(&error_with(file, content), file, pointer, message);
    }
}

#[test]
fn python_and_orchestrator_files_are_refused_never_skipped() {
    let middleware = error_with(
        "middleware.yaml",
        "prompt_middleware:\n- { agent: all, function: pkg.inject }\n",
    );
    assert_error(
        &middleware,
        "middleware.yaml",
        "/prompt_middleware",
        "Python functions",
    );
    // An empty list is nothing to run.
    translated_with(&[("middleware.yaml", Some("prompt_middleware: []\n"))]);
    for (entry, file, message) in [
        (
            "extended_orchestration/task_batches.yaml",
            "version: 1\n",
            "extended_orchestration cannot be translated",
        ),
        (
            "_pack/workflow_graph.json",
            "{}",
            "_pack cannot be translated",
        ),
        ("a2a.yaml", "agents: []\n", "a2a.yaml cannot be translated"),
    ] {
        let scratch = Scratch::sample_with(&[]);
        let path = scratch.folder().join(entry);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, file).unwrap();
        let text = scratch.error();
        assert!(text.contains(message), "{text}");
    }
}

#[test]
fn len_counts_as_in_mozaiksai() {
    struct Plain;
    impl super::condition::Variables for Plain {
        fn variable(&self, name: &str) -> String {
            format!(".context.{name}")
        }
    }
    let jq = super::condition::to_jq("${ready} and len(${items}) > 0", &Plain).unwrap();
    assert!(jq.contains("(.context.items | length) > 0"), "{jq}");
    assert!(super::condition::to_jq("len(${items} > 0", &Plain).is_err());
}
