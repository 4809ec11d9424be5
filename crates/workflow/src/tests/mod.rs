//! Engine tests across rooms: the bundled sample, the DSL data flow, flow directives,
//! errors, the deadline, and the CTK scenarios that use only `do` and `set` (transcribed by
//! hand from `sw-spec/ctk/features/{set,do,data-flow,flow}.feature`). Each task kind has its
//! own file; `standin` is a loopback HTTP server for the calls, `openai_standin` a scripted
//! OpenAI-compatible server for agent tasks (also the Bedrock Converse stand-in of `bedrock`),
//! `mozaiksai` drives the bundled MozaiksAI sample's conversation with it.

mod a2a;
mod agents;
mod bedrock;
mod calls;
mod hostile;
mod mcp;
pub(crate) mod mcp_server;
mod mozaiksai;
mod openai_standin;
mod standin;
mod tasks;

use super::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;

pub(super) const HEAD: &str =
    "document: { dsl: '1.0.3', namespace: test, name: t, version: '1.0.0' }\n";

pub(super) fn workflow(yaml: &str) -> Workflow {
    match Workflow::parse(Path::new("test.yaml"), yaml) {
        Ok(workflow) => workflow,
        Err(e) => panic!("{e}"),
    }
}

pub(super) fn exec() -> ExecutionInfo {
    ExecutionInfo {
        execution_id: "exec-1".into(),
        claims: json!({ "sub": "user-7", "app_id": "app-42", "plan": { "tier": "pro" } }),
    }
}

pub(super) async fn run_with(workflow: &Workflow, input: Value, deadline: Instant) -> RunResult {
    workflow.run(input, &exec(), deadline).await
}

pub(super) async fn run(workflow: &Workflow, input: Value) -> RunResult {
    run_with(workflow, input, Instant::now() + Duration::from_secs(30)).await
}

pub(super) fn output(result: &RunResult) -> &Value {
    match &result.outcome {
        Outcome::Completed(output) => output,
        Outcome::Faulted(e) => panic!("faulted: {e} — {:?}", e.detail),
        Outcome::Waiting { output, .. } => panic!("waiting with {output}"),
    }
}

pub(super) fn fault(result: &RunResult) -> &WorkflowError {
    match &result.outcome {
        Outcome::Faulted(e) => e,
        Outcome::Completed(output) => panic!("completed with {output}"),
        Outcome::Waiting { output, .. } => panic!("waiting with {output}"),
    }
}

/// Runs `body` (everything after `document`) on `input`, expecting completion.
pub(super) async fn completes(body: &str, input: Value) -> Value {
    output(&run(&workflow(&format!("{HEAD}{body}")), input).await).clone()
}

#[tokio::test]
async fn the_bundled_sample_greets_and_echoes_the_execution() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let registry = match Registry::load_dir(&dir) {
        Ok(registry) => registry,
        Err(e) => panic!("{e}"),
    };
    let Some(hello) = registry.resolve("mozaiks/hello", Some("1.0.0")) else {
        panic!("mozaiks/hello@1.0.0 is bundled");
    };
    assert_eq!(
        registry.resolve("hello", None).map(|w| w.id().clone()),
        Some(WorkflowId {
            namespace: "mozaiks".into(),
            name: "hello".into(),
            version: "1.0.0".into()
        })
    );
    let result = run(&hello, json!({ "name": "Ada" })).await;
    assert_eq!(
        output(&result),
        &json!({ "greeting": "Hello, Ada!", "app_id": "app-42", "execution_id": "exec-1" })
    );
    assert_eq!(
        result.metrics,
        Metrics {
            tasks_executed: 2,
            ..Metrics::default()
        }
    );
    let result = run(&hello, json!({})).await;
    assert_eq!(output(&result)["greeting"], json!("Hello, world!"));
}

#[tokio::test]
async fn runs_are_send_so_any_tokio_runtime_can_drive_them() {
    fn assert_send<T: Send>(_: &T) {}
    let workflow = workflow(&format!("{HEAD}do: [ {{ a: {{ set: {{ x: 1 }} }} }} ]"));
    let info = exec();
    let future = workflow.run(json!({}), &info, Instant::now());
    assert_send(&future);
    drop(future);
}

#[tokio::test]
async fn input_from_output_as_and_export_as_follow_the_data_flow() {
    let out = completes(
        r#"
input: { from: '${ .payload }' }
do:
  - first:
      input: { from: .user }
      set: { id: '${ .id }', seen: '${ $input.id }' }
      output: { as: '${ { id: .id, from_input: $input.id } }' }
      export: { as: '${ $context + { first: $output.id } }' }
  - second:
      set:
        previous: '${ . }'
        context: '${ $context }'
      export: { as: { second: done, kept: '${ $context.first }' } }
output: { as: '${ { result: ., context: $context } }' }
"#,
        json!({ "payload": { "user": { "id": 7 } }, "ignored": true }),
    )
    .await;
    assert_eq!(
        out,
        json!({
            "result": {
                "previous": { "id": 7, "from_input": 7 },
                "context": { "first": 7 }
            },
            "context": { "second": "done", "kept": 7 }
        })
    );
}

#[tokio::test]
async fn if_skips_a_task_which_then_passes_its_raw_input_on() {
    let yaml = format!(
        "{HEAD}{}",
        r#"
do:
  - skipped:
      if: '${ .go }'
      input: { from: '${ error("input.from must not run") }' }
      set: { x: never }
      then: end
  - runs:
      if: .go == false
      set: { ran: true, input: '${ . }' }
"#
    );
    let result = run(&workflow(&yaml), json!({ "go": false })).await;
    // The skipped task's raw input became its output; its `then: end` did not apply.
    assert_eq!(
        output(&result),
        &json!({ "ran": true, "input": { "go": false } })
    );
    assert_eq!(result.metrics.tasks_executed, 1);
}

#[tokio::test]
async fn then_jumps_exits_and_ends() {
    // A named target jumps (backwards too: a loop bounded by `if`).
    let out = completes(
        r#"
do:
  - start: { set: { n: 0 } }
  - inc:
      set: { n: '${ .n + 1 }' }
  - loop:
      if: .n < 3
      set: '${ . }'
      then: inc
  - done: { set: { n: '${ .n }', finished: true } }
"#,
        json!({}),
    )
    .await;
    assert_eq!(out, json!({ "n": 3, "finished": true }));

    // `exit` completes the enclosing list only; the parent goes on.
    let out = completes(
        r#"
do:
  - outer:
      do:
        - a: { set: { trail: [ a ] } }
        - b: { set: { trail: '${ .trail + [ "b" ] }' }, then: exit }
        - c: { set: { trail: '${ .trail + [ "c" ] }' } }
  - after: { set: { trail: '${ .trail + [ "after" ] }' } }
"#,
        json!({}),
    )
    .await;
    assert_eq!(out, json!({ "trail": ["a", "b", "after"] }));

    // `end` ends the whole workflow from any depth; the workflow's `output.as` still applies.
    let yaml = format!(
        "{HEAD}{}",
        r#"
output: { as: '${ .trail }' }
do:
  - outer:
      do:
        - a: { set: { trail: [ a ] }, then: end }
        - b: { set: { trail: '${ .trail + [ "b" ] }' } }
  - after: { set: { trail: '${ .trail + [ "after" ] }' } }
"#
    );
    let result = run(&workflow(&yaml), json!({})).await;
    assert_eq!(output(&result), &json!(["a"]));
    // `outer` and `a` ran; `b` and `after` did not.
    assert_eq!(result.metrics.tasks_executed, 2);

    // `exit` at the top level completes the workflow.
    let out = completes(
        "do:\n  - a: { set: { x: 1 }, then: exit }\n  - b: { set: { x: 2 } }\n",
        json!({}),
    )
    .await;
    assert_eq!(out, json!({ "x": 1 }));
}

#[tokio::test]
async fn nested_tasks_are_counted_and_see_their_own_descriptors() {
    let yaml = format!(
        "{HEAD}{}",
        r#"
do:
  - outer:
      do:
        - inner:
            set:
              name: '${ $task.name }'
              reference: '${ $task.reference }'
              kind: '${ $task.definition.set | keys }'
              raw_input: '${ $task.input }'
              started: '${ $task.startedAt.iso8601 | test("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$") }'
              workflow_id: '${ $workflow.id }'
              workflow_input: '${ $workflow.input }'
              workflow_name: '${ $workflow.definition.document.name }'
              runtime: '${ $runtime.name }'
              secrets: '${ $secrets }'
              plan: '${ $execution.claims.plan.tier }'
            output: { as: '${ { name, raw: $task.output.name } }' }
"#
    );
    let result = run(&workflow(&yaml), json!({ "in": 1 })).await;
    assert_eq!(output(&result), &json!({ "name": "inner", "raw": "inner" }));
    assert_eq!(result.metrics.tasks_executed, 2);

    let yaml = yaml.replace(
        "output: { as: '${ { name, raw: $task.output.name } }' }",
        "",
    );
    let result = run(&workflow(&yaml), json!({ "in": 1 })).await;
    assert_eq!(
        output(&result),
        &json!({
            "name": "inner",
            "reference": "/do/0/outer/do/0/inner",
            "kind": [
                "kind", "name", "plan", "raw_input", "reference", "runtime", "secrets",
                "started", "workflow_id", "workflow_input", "workflow_name"
            ],
            "raw_input": { "in": 1 },
            "started": true,
            "workflow_id": "exec-1",
            "workflow_input": { "in": 1 },
            "workflow_name": "t",
            "runtime": "mozaiks-runtime",
            "secrets": {},
            "plan": "pro"
        })
    );
}

#[tokio::test]
async fn expression_runtime_errors_fault_with_the_task_as_instance() {
    let yaml = format!(
        "{HEAD}do:\n  - ok: {{ set: {{ a: 1 }} }}\n  - greet:\n      set:\n        x: '${{ .a.b }}'\n"
    );
    let result = run(&workflow(&yaml), json!({})).await;
    let error = fault(&result);
    assert_eq!(
        error.type_,
        "https://serverlessworkflow.io/spec/1.0.0/errors/expression"
    );
    assert_eq!(error.status, 400);
    assert_eq!(error.instance.as_deref(), Some("/do/1/greet"));
    let detail = error.detail.clone().unwrap_or_default();
    assert!(
        detail.starts_with("/do/1/greet/set/x: jq: cannot index"),
        "{detail}"
    );
    // Both tasks started; the second faulted.
    assert_eq!(result.metrics.tasks_executed, 2);

    // Faults in transformations and in the workflow's own expressions, too.
    let cases = [
        ("input: { from: '${ error(\"no\") }' }\ndo: [ { a: { set: { x: 1 } } } ]", "/input/from", "/input/from: jq: no"),
        ("output: { as: '${ .[] }' }\ndo: [ { a: { set: { x: 1, y: 2 } } } ]", "/output/as", "more than one value"),
        ("do: [ { a: { if: '${ error(\"if\") }', set: { x: 1 } } } ]", "/do/0/a", "/do/0/a/if: jq: if"),
        ("do: [ { a: { set: { x: 1 }, export: { as: '${ error(\"export\") }' } } } ]", "/do/0/a", "/do/0/a/export/as: jq: export"),
        ("do: [ { a: { set: { x: 1 }, output: { as: { y: '${ .x | ltrimstr(1) | explode }' } } } } ]", "/do/0/a", "/do/0/a/output/as/y: jq: cannot use"),
        ("do: [ { a: { set: '${ {(1): 2} }' } } ]", "/do", "key 1 is not a string"),
        ("do: [ { a: { set: '${ halt }' } } ]", "/do/0/a", "halt"),
    ];
    for (body, instance, fragment) in cases {
        let result = run(&workflow(&format!("{HEAD}{body}")), json!({})).await;
        let error = fault(&result);
        assert_eq!(error.instance.as_deref(), Some(instance), "{body}");
        let detail = error.detail.clone().unwrap_or_default();
        assert!(detail.contains(fragment), "{body}: {detail}");
        assert_eq!(error.status, 400);
    }
}

#[tokio::test]
async fn a_deadline_in_the_past_faults_with_timeout_before_any_task() {
    let workflow = workflow(&format!("{HEAD}do: [ {{ a: {{ set: {{ x: 1 }} }} }} ]"));
    let result = run_with(&workflow, json!({}), Instant::now()).await;
    let error = fault(&result);
    assert_eq!(
        error.type_,
        "https://serverlessworkflow.io/spec/1.0.0/errors/timeout"
    );
    assert_eq!(error.status, 408);
    assert_eq!(error.instance.as_deref(), Some("/do/0/a"));
    assert_eq!(result.metrics.tasks_executed, 0);
}

#[tokio::test]
async fn an_endless_loop_is_cut_by_the_deadline() {
    let workflow = workflow(&format!(
        "{HEAD}do:\n  - spin:\n      set: {{ n: '${{ .n + 1 }}' }}\n      then: spin\n"
    ));
    let started = std::time::Instant::now();
    let result = run_with(
        &workflow,
        json!({ "n": 0 }),
        Instant::now() + Duration::from_millis(50),
    )
    .await;
    let error = fault(&result);
    assert_eq!(error.status, 408);
    assert_eq!(error.instance.as_deref(), Some("/do/0/spin"));
    assert!(result.metrics.tasks_executed > 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn workflows_are_reusable_and_runs_independent() {
    let workflow = workflow(&format!(
        "{HEAD}do:\n  - a:\n      set: {{ n: '${{ ($context.n // 0) + .n }}' }}\n      export: {{ as: '${{ {{ n: .n }} }}' }}\n"
    ));
    for n in [1, 2, 3] {
        let result = run(&workflow, json!({ "n": n })).await;
        // `$context` starts empty in every run.
        assert_eq!(output(&result), &json!({ "n": n }));
    }
}

// ---- CTK scenarios (do/set only), transcribed from sw-spec/ctk/features ----

/// set.feature — "Set Task".
#[tokio::test]
async fn ctk_set_task() {
    let out = completes(
        r#"
do:
  - setShape:
      set:
        shape: circle
        size: ${ .configuration.size }
        fill: ${ .configuration.fill }
"#,
        json!({ "configuration": {
            "size": { "width": 6, "height": 6 },
            "fill": { "red": 69, "green": 69, "blue": 69 }
        }}),
    )
    .await;
    assert_eq!(
        out,
        json!({
            "shape": "circle",
            "size": { "width": 6, "height": 6 },
            "fill": { "red": 69, "green": 69, "blue": 69 }
        })
    );
}

/// do.feature — "Task With Sequential Sub Tasks" (no input given: `{}`).
#[tokio::test]
async fn ctk_do_sequential_sub_tasks() {
    let out = completes(
        r#"
do:
  - compositeExample:
      do:
        - setRed:
            set:
              colors: ${ .colors + ["red"] }
        - setGreen:
            set:
              colors: ${ .colors + ["green"] }
        - setBlue:
            set:
              colors: ${ .colors + ["blue"] }
"#,
        json!({}),
    )
    .await;
    assert_eq!(out, json!({ "colors": ["red", "green", "blue"] }));
}

/// data-flow.feature — "Input Filtering" (a bare jq `input.from`).
#[tokio::test]
async fn ctk_data_flow_input_filtering() {
    let out = completes(
        r#"
do:
  - setPlayerId:
      input:
        from: .user.claims.subject #filters the input of the task, using only the user's subject
      set:
        playerId: ${ . }
"#,
        json!({ "user": { "claims": { "subject": "6AsnRgGEB0q2O7ux9JXFAw" } } }),
    )
    .await;
    assert_eq!(out, json!({ "playerId": "6AsnRgGEB0q2O7ux9JXFAw" }));
}

/// flow.feature — "Implicit Sequence Flow" (the order shows in the colors).
#[tokio::test]
async fn ctk_flow_implicit_sequence() {
    let out = completes(
        r#"
do:
  - setRed:
      set:
        colors: '${ .colors + [ "red" ] }'
  - setGreen:
      set:
        colors: '${ .colors + [ "green" ] }'
  - setBlue:
      set:
        colors: '${ .colors + [ "blue" ] }'
"#,
        json!({}),
    )
    .await;
    assert_eq!(out, json!({ "colors": ["red", "green", "blue"] }));
}

/// flow.feature — "Explicit Sequence Flow" (setRed → setGreen → setBlue → end).
#[tokio::test]
async fn ctk_flow_explicit_sequence() {
    let yaml = format!(
        "{HEAD}{}",
        r#"
do:
  - setRed:
      set:
        colors: '${ .colors + [ "red" ] }'
      then: setGreen
  - setBlue:
      set:
        colors: '${ .colors + [ "blue" ] }'
      then: end
  - setGreen:
      set:
        colors: '${ .colors + [ "green" ] }'
      then: setBlue
"#
    );
    let result = run(&workflow(&yaml), json!({})).await;
    assert_eq!(
        output(&result),
        &json!({ "colors": ["red", "green", "blue"] })
    );
    assert_eq!(result.metrics.tasks_executed, 3);
}
