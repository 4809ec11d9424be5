//! The task kinds besides `call`: `switch`, `raise`, `try`, `for`, `fork`, `wait`,
//! `run: workflow`, functions, timeouts, schemas, `evaluate.mode: loose`, secrets, `emit`.
//! Time-dependent tests run on Tokio's paused clock: waits advance virtual time instantly,
//! so durations are asserted exactly and nothing really sleeps.

use super::*;
use crate::{EngineOptions, SecretSource};

const ERRORS: &str = "https://serverlessworkflow.io/spec/1.0.0/errors/";

fn type_of(kind: &str) -> String {
    format!("{ERRORS}{kind}")
}

async fn faults(body: &str, input: Value) -> WorkflowError {
    fault(&run(&workflow(&format!("{HEAD}{body}")), input).await).clone()
}

// ---- switch ----

const SWITCH_COLORS: &str = r#"
do:
  - switchColor:
      switch:
        - red:
            when: '.color == "red"'
            then: setRed
        - green:
            when: '.color == "green"'
            then: setGreen
        - blue:
            when: '.color == "blue"'
            then: setBlue
  - setRed:
      set:
        colors: '${ .colors + [ "red" ] }'
      then: end
  - setGreen:
      set:
        colors: '${ .colors + [ "green" ] }'
      then: end
  - setBlue:
      set:
        colors: '${ .colors + [ "blue" ] }'
      then: end
"#;

/// switch.feature — "Switch task with matching case" (switchColor first, setRed last).
#[tokio::test]
async fn ctk_switch_matching_case() {
    let result = run(
        &workflow(&format!("{HEAD}{SWITCH_COLORS}")),
        json!({ "color": "red" }),
    )
    .await;
    assert_eq!(output(&result), &json!({ "colors": ["red"] }));
    assert_eq!(result.metrics.tasks_executed, 2);
    let result = run(
        &workflow(&format!("{HEAD}{SWITCH_COLORS}")),
        json!({ "color": "blue" }),
    )
    .await;
    assert_eq!(output(&result), &json!({ "colors": ["blue"] }));
}

/// switch.feature — "Switch task with implicit default case": no match, the switch's own
/// `then: end` applies and its output is its input.
#[tokio::test]
async fn ctk_switch_implicit_default() {
    let body = SWITCH_COLORS.replacen(
        "            then: setBlue\n",
        "            then: setBlue\n      then: end\n",
        1,
    );
    let result = run(
        &workflow(&format!("{HEAD}{body}")),
        json!({ "color": "yellow" }),
    )
    .await;
    assert_eq!(output(&result), &json!({ "color": "yellow" }));
    assert_eq!(result.metrics.tasks_executed, 1);
}

/// switch.feature — "Switch task with explicit default case".
#[tokio::test]
async fn ctk_switch_explicit_default() {
    let out = completes(
        r#"
do:
  - switchColor:
      switch:
        - red:
            when: '.color == "red"'
            then: setRed
        - anyOtherColor:
            then: setCustomColor
        - blue:
            when: '.color == "blue"'
            then: setBlue
  - setRed:
      set:
        colors: '${ .colors + [ "red" ] }'
  - setBlue:
      set:
        colors: '${ .colors + [ "blue" ] }'
  - setCustomColor:
      set:
        colors: '${ .colors + [ $input.color ] }'
"#,
        json!({ "color": "yellow" }),
    )
    .await;
    assert_eq!(out, json!({ "colors": ["yellow"] }));
}

#[tokio::test]
async fn switch_cases_can_exit_end_or_continue_and_faulty_conditions_fault() {
    let body = r#"
do:
  - outer:
      do:
        - pick:
            switch:
              - stop: { when: .mode == "exit", then: exit }
              - finish: { when: .mode == "end", then: end }
              - go: { when: .mode == "continue", then: continue }
        - inner: { set: { trail: '${ (.trail // []) + ["inner"] }' } }
  - after: { set: { trail: '${ (.trail // []) + ["after"] }' } }
"#;
    let run_mode =
        |mode: &'static str| async move { completes(body, json!({ "mode": mode })).await };
    assert_eq!(run_mode("exit").await, json!({ "trail": ["after"] }));
    assert_eq!(run_mode("end").await, json!({ "mode": "end" }));
    assert_eq!(
        run_mode("continue").await,
        json!({ "trail": ["inner", "after"] })
    );
    let error = faults(
        "do: [ { s: { switch: [ { a: { when: '.x.y', then: end } } ] } } ]",
        json!({ "x": "text" }),
    )
    .await;
    assert_eq!(error.type_, type_of("expression"));
    assert_eq!(error.instance.as_deref(), Some("/do/0/s"));
    assert!(error
        .detail
        .unwrap_or_default()
        .starts_with("/do/0/s/switch/0/a/when: jq: cannot index"));
}

// ---- raise ----

/// raise.feature — "Raise task with inline error".
#[tokio::test]
async fn ctk_raise_inline_error() {
    let error = faults(
        r#"
do:
  - raiseError:
      raise:
        error:
          status: 400
          type: https://serverlessworkflow.io/errors/types/compliance
          title: Compliance Error
"#,
        json!({}),
    )
    .await;
    assert_eq!(
        serde_json::to_value(&error).ok(),
        Some(json!({
            "status": 400,
            "type": "https://serverlessworkflow.io/errors/types/compliance",
            "title": "Compliance Error",
            "instance": "/do/0/raiseError"
        }))
    );
}

#[tokio::test]
async fn raise_uses_reusable_errors_and_evaluates_expressions() {
    let body = r#"
use:
  errors:
    notFound:
      type: https://example.com/errors/not-found
      status: 404
      title: Not found
      detail: '${ "no pet " + (.id | tostring) + " in " + $task.name }'
do:
  - lookup: { raise: { error: notFound } }
"#;
    let error = faults(body, json!({ "id": 7 })).await;
    assert_eq!(error.status, 404);
    assert_eq!(error.detail.as_deref(), Some("no pet 7 in lookup"));
    assert_eq!(error.instance.as_deref(), Some("/do/0/lookup"));

    let error = faults(
        "do: [ { r: { raise: { error: { type: '${ .t }', status: '${ .s }', instance: /custom } } } } ]",
        json!({ "t": "https://example.com/e", "s": 409 }),
    )
    .await;
    assert_eq!(
        (error.type_.as_str(), error.status),
        ("https://example.com/e", 409)
    );
    assert_eq!(error.instance.as_deref(), Some("/custom"));

    let error = faults(
        "do: [ { r: { raise: { error: { type: x, status: '${ .s }' } } } } ]",
        json!({ "s": "teapot" }),
    )
    .await;
    assert_eq!(error.type_, type_of("expression"));
    assert!(error
        .detail
        .unwrap_or_default()
        .contains("integer `status`"));
}

// ---- try ----

/// A try whose first task counts attempts in `$context` and fails until the `n`-th.
fn flaky(succeed_at: u32, catch: &str) -> String {
    format!(
        r#"
do:
  - attempt:
      try:
        - count:
            set: {{ n: '${{ ($context.n // 0) + 1 }}' }}
            export: {{ as: '${{ {{ n: .n }} }}' }}
        - maybeFail:
            if: '${{ $context.n < {succeed_at} }}'
            raise: {{ error: {{ type: https://example.com/flaky, status: 503, title: '${{ "attempt " + ($context.n | tostring) }}' }} }}
        - done: {{ set: {{ attempts: '${{ $context.n }}' }} }}
      catch:
{catch}
"#
    )
}

#[tokio::test(start_paused = true)]
async fn try_retries_with_backoff_until_the_tasks_succeed() {
    let catch = r#"
        errors: { with: { status: 503 } }
        retry:
          delay: { seconds: 1 }
          backoff: { exponential: {} }
          limit: { attempt: { count: 5 } }
"#;
    let started = Instant::now();
    let result = run(&workflow(&format!("{HEAD}{}", flaky(4, catch))), json!({})).await;
    assert_eq!(output(&result), &json!({ "attempts": 4 }));
    // Three retries, waiting 1 s, 2 s, 4 s (exponential).
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    // attempt + (count, maybeFail) × 3 failed attempts + (count, done) on the last.
    assert_eq!(result.metrics.tasks_executed, 1 + 2 * 3 + 2);
}

#[tokio::test(start_paused = true)]
async fn linear_and_constant_backoff_and_jitter_bound_the_delays() {
    let delays = |backoff: &'static str| async move {
        let catch = format!(
            "        retry: {{ delay: {{ seconds: 1 }}, backoff: {{ {backoff}: {{}} }}, limit: {{ attempt: {{ count: 3 }} }} }}\n"
        );
        let started = Instant::now();
        let result = run(&workflow(&format!("{HEAD}{}", flaky(4, &catch))), json!({})).await;
        assert_eq!(output(&result), &json!({ "attempts": 4 }));
        started.elapsed()
    };
    assert_eq!(delays("constant").await, Duration::from_secs(3));
    assert_eq!(delays("linear").await, Duration::from_secs(6));

    let catch = "        retry: { jitter: { from: { seconds: 1 }, to: { seconds: 2 } }, limit: { attempt: { count: 3 } } }\n";
    let started = Instant::now();
    let result = run(&workflow(&format!("{HEAD}{}", flaky(4, catch))), json!({})).await;
    assert_eq!(output(&result), &json!({ "attempts": 4 }));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_hand_the_error_to_the_catch_tasks() {
    let catch = r#"
        as: failure
        retry: { limit: { attempt: { count: 2 } } }
        do:
          - report: { set: { gaveUp: '${ $failure.title }', input: '${ . }' } }
"#;
    let result = run(
        &workflow(&format!("{HEAD}{}", flaky(10, catch))),
        json!({ "in": 1 }),
    )
    .await;
    // Three attempts (the first and two retries); the handler runs on the try's input.
    assert_eq!(
        output(&result),
        &json!({ "gaveUp": "attempt 3", "input": { "in": 1 } })
    );
}

#[tokio::test(start_paused = true)]
async fn reusable_retry_policies_see_the_error() {
    let body = format!(
        "use:\n  retries:\n    onlyUnavailable: {{ when: '${{ $error.status == 503 }}', limit: {{ attempt: {{ count: 9 }} }} }}\n{}",
        flaky(3, "        retry: onlyUnavailable\n")
    );
    let result = run(&workflow(&format!("{HEAD}{body}")), json!({})).await;
    assert_eq!(output(&result), &json!({ "attempts": 3 }));
    // The policy's `when` refuses other errors: handled without retry, output = input.
    let body = body.replace("status: 503", "status: 500");
    let result = run(&workflow(&format!("{HEAD}{body}")), json!({ "x": 1 })).await;
    assert_eq!(output(&result), &json!({ "x": 1 }));
    assert_eq!(result.metrics.tasks_executed, 3);
}

#[tokio::test(start_paused = true)]
async fn retry_stops_when_the_next_delay_would_pass_the_deadline() {
    let catch = "        retry: { delay: { seconds: 10 }, limit: { attempt: { count: 100 } } }\n        do: [ { handled: { set: { handled: true } } } ]\n";
    let started = Instant::now();
    let result = run_with(
        &workflow(&format!("{HEAD}{}", flaky(100, catch))),
        json!({}),
        Instant::now() + Duration::from_secs(25),
    )
    .await;
    // Retries at 10 s and 20 s; a third would end at 30 s > 25 s: handled at once instead.
    assert_eq!(output(&result), &json!({ "handled": true }));
    assert_eq!(started.elapsed(), Duration::from_secs(20));

    // A delay too long for any clock (a day, doubling) is simply past the deadline.
    let catch = "        retry: { delay: P1D, backoff: { exponential: {} } }\n";
    let started = Instant::now();
    let result = run(
        &workflow(&format!("{HEAD}{}", flaky(100, catch))),
        json!({}),
    )
    .await;
    assert!(matches!(result.outcome, Outcome::Completed(_)));
    assert_eq!(started.elapsed(), Duration::ZERO);

    // limit.duration: no retry starts 15 s after the first attempt.
    let catch = "        retry: { delay: { seconds: 10 }, limit: { duration: PT15S } }\n";
    let started = Instant::now();
    let result = run(
        &workflow(&format!("{HEAD}{}", flaky(100, catch))),
        json!({}),
    )
    .await;
    assert!(matches!(result.outcome, Outcome::Completed(_)));
    assert_eq!(started.elapsed(), Duration::from_secs(20));
}

#[tokio::test]
async fn catch_filters_when_and_except_when_decide_what_is_caught() {
    let body = |catch: &str| {
        format!(
            r#"
do:
  - guarded:
      try:
        - fail: {{ raise: {{ error: {{ type: https://example.com/e, status: 422, title: bad }} }} }}
      catch:
{catch}
        do: [ {{ handled: {{ set: {{ error: '${{ $error }}' }} }} }} ]
"#
        )
    };
    let caught = json!({ "error": {
        "type": "https://example.com/e", "status": 422, "title": "bad", "instance": "/do/0/guarded/try/0/fail"
    }});
    for catch in [
        "        errors: { with: { type: https://example.com/e, status: 422, title: bad, instance: /do/0/guarded/try/0/fail } }",
        "        when: '${ $error.status == 422 }'",
        "        exceptWhen: '${ $error.status == 500 }'",
        "        errors: {}",
    ] {
        assert_eq!(completes(&body(catch), json!({})).await, caught, "{catch}");
    }
    for catch in [
        "        errors: { with: { status: 500 } }",
        "        errors: { with: { type: https://example.com/other } }",
        "        when: '${ .retry == true }'",
        "        exceptWhen: '${ $error.title == \"bad\" }'",
    ] {
        let error = faults(&body(catch), json!({})).await;
        assert_eq!(error.status, 422, "{catch}");
        assert_eq!(error.instance.as_deref(), Some("/do/0/guarded/try/0/fail"));
    }
}

#[tokio::test]
async fn errors_of_any_origin_are_caught_and_the_deadline_is_not() {
    // An expression error is an error like any other.
    let out = completes(
        r#"
do:
  - guarded:
      try:
        - bad: { set: { x: '${ .a.b }' } }
      catch:
        errors: { with: { type: https://serverlessworkflow.io/dsl/errors/types/expression } }
        as: e
        do: [ { h: { set: { caught: '${ $e.status }', at: '${ $e.instance }' } } } ]
"#,
        json!({ "a": "s" }),
    )
    .await;
    assert_eq!(
        out,
        json!({ "caught": 400, "at": "/do/0/guarded/try/0/bad" })
    );

    // The execution deadline cannot be caught.
    let yaml = format!(
        "{HEAD}do:\n  - guarded:\n      try:\n        - spin: {{ set: {{ n: '${{ .n + 1 }}' }}, then: spin }}\n      catch:\n        do: [ {{ h: {{ set: {{ caught: true }} }} }} ]\n"
    );
    let result = run_with(
        &workflow(&yaml),
        json!({ "n": 0 }),
        Instant::now() + Duration::from_millis(50),
    )
    .await;
    let error = fault(&result);
    assert_eq!(error.status, 408);
    assert_eq!(error.instance.as_deref(), Some("/do/0/guarded/try/0/spin"));
}

// ---- for ----

/// for.feature — "For Task".
#[tokio::test]
async fn ctk_for_task() {
    let out = completes(
        r#"
do:
  - loopColors:
      for:
        each: color
        in: '.colors'
      do:
        - markProcessed:
            set:
              processed: '${ { colors: (.processed.colors + [ $color ]), indexes: (.processed.indexes + [ $index ])} }'
"#,
        json!({ "colors": ["red", "green", "blue"] }),
    )
    .await;
    assert_eq!(
        out,
        json!({ "processed": { "colors": ["red", "green", "blue"], "indexes": [0, 1, 2] } })
    );
}

#[tokio::test]
async fn for_supports_while_nesting_custom_names_and_end() {
    let out = completes(
        r#"
do:
  - sum:
      input: { from: '${ { total: 0, rows: .rows } }' }
      for: { in: .rows, each: row, at: r }
      while: '${ .total < 10 }'
      do:
        - inner:
            for: { in: $row, each: cell }
            do:
              - add: { set: { total: '${ .total + $cell }', rows: '${ .rows }', last: '${ [$r, $cell] }' } }
"#,
        json!({ "rows": [[1, 2], [3, 4], [5, 6]] }),
    )
    .await;
    // Rows 0 and 1 run (total 10 after row 1); `while` stops row 2.
    assert_eq!(out["total"], json!(10));
    assert_eq!(out["last"], json!([1, 4]));

    assert_eq!(
        completes(
            "do: [ { l: { for: { in: .none }, do: [ { s: { set: { ran: true } } } ] } } ]",
            json!({ "k": 1 })
        )
        .await,
        json!({ "k": 1 })
    );
    let result = run(
        &workflow(&format!(
            "{HEAD}do:\n  - l:\n      for: {{ in: .xs }}\n      do: [ {{ s: {{ set: {{ x: '${{ $item }}' }}, then: end }} }} ]\n  - after: {{ set: {{ after: true }} }}\n"
        )),
        json!({ "xs": [1, 2, 3] }),
    )
    .await;
    assert_eq!(output(&result), &json!({ "x": 1 }));
    assert_eq!(result.metrics.tasks_executed, 2);

    let error = faults(
        "do: [ { l: { for: { in: .x }, do: [ { s: { set: { a: 1 } } } ] } } ]",
        json!({ "x": 5 }),
    )
    .await;
    assert_eq!(error.instance.as_deref(), Some("/do/0/l"));
    assert!(error
        .detail
        .unwrap_or_default()
        .contains("must produce a list"));
}

#[tokio::test]
async fn for_over_many_items_counts_every_task() {
    let result = run(
        &workflow(&format!(
            "{HEAD}do:\n  - l:\n      for: {{ in: '[range(1000)]' }}\n      do: [ {{ s: {{ set: {{ n: '${{ .n + $item }}' }} }} }} ]\n"
        )),
        json!({ "n": 0 }),
    )
    .await;
    assert_eq!(output(&result), &json!({ "n": 499_500 }));
    assert_eq!(result.metrics.tasks_executed, 1001);
}

// ---- fork ----

/// branch.feature — "Fork Task With Competing Concurrent Sub Tasks".
#[tokio::test]
async fn ctk_fork_with_competing_branches() {
    let out = completes(
        r#"
do:
  - branchWithCompete:
      fork:
        compete: true
        branches:
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
    assert_eq!(out["colors"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(start_paused = true)]
async fn fork_branches_run_concurrently_and_keep_their_order() {
    let started = Instant::now();
    let out = completes(
        r#"
do:
  - both:
      fork:
        branches:
          - slow: { wait: PT2S, output: { as: '"slow"' } }
          - fast: { wait: PT1S, output: { as: '"fast"' } }
"#,
        json!({}),
    )
    .await;
    assert_eq!(out, json!(["slow", "fast"]));
    assert_eq!(started.elapsed(), Duration::from_secs(2));

    // Competing: the first to complete wins; a faulted branch does not win.
    let started = Instant::now();
    let out = completes(
        r#"
do:
  - race:
      fork:
        compete: true
        branches:
          - slow: { wait: PT5S, output: { as: '"slow"' } }
          - broken: { raise: { error: { type: https://example.com/e, status: 500 } } }
          - fast: { wait: PT1S, output: { as: '"fast"' } }
"#,
        json!({}),
    )
    .await;
    assert_eq!(out, json!("fast"));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_fault_in_a_branch_cancels_the_fork() {
    let started = Instant::now();
    let result = run(
        &workflow(&format!(
            "{HEAD}{}",
            r#"
do:
  - both:
      fork:
        branches:
          - slow: { wait: PT20S }
          - broken: { wait: PT1S, then: continue }
          - boom: { raise: { error: { type: https://example.com/e, status: 418 } } }
"#
        )),
        json!({}),
    )
    .await;
    assert_eq!(fault(&result).status, 418);
    assert!(started.elapsed() < Duration::from_secs(1));
    let result = run(
        &workflow(&format!(
            "{HEAD}do:\n  - race:\n      fork:\n        compete: true\n        branches:\n          - a: {{ raise: {{ error: {{ type: https://e/a, status: 401 }} }} }}\n          - b: {{ raise: {{ error: {{ type: https://e/b, status: 402 }} }} }}\n"
        )),
        json!({}),
    )
    .await;
    assert_eq!(fault(&result).status, 401);
}

// ---- wait and timeouts ----

#[tokio::test(start_paused = true)]
async fn wait_pauses_for_iso_inline_and_computed_durations() {
    let started = Instant::now();
    let out = completes(
        "do:\n  - a: { wait: PT1.5S }\n  - b: { wait: { seconds: 1, milliseconds: 500 } }\n  - c: { wait: '${ .pause }' }\n",
        json!({ "pause": "PT3S" }),
    )
    .await;
    assert_eq!(out, json!({ "pause": "PT3S" }));
    assert_eq!(started.elapsed(), Duration::from_millis(6_000));
    let error = faults(
        "do: [ { a: { wait: '${ .pause }' } } ]",
        json!({ "pause": 3 }),
    )
    .await;
    assert_eq!(error.type_, type_of("expression"));
    assert!(error.detail.unwrap_or_default().contains("ISO 8601"));
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_the_deadline_times_out_at_once() {
    let started = Instant::now();
    let result = run_with(
        &workflow(&format!("{HEAD}do: [ {{ a: {{ wait: PT1H }} }} ]")),
        json!({}),
        Instant::now() + Duration::from_secs(10),
    )
    .await;
    let error = fault(&result);
    assert_eq!(
        (error.status, error.instance.as_deref()),
        (408, Some("/do/0/a"))
    );
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn task_timeouts_fault_and_can_be_caught() {
    let body = r#"
use:
  timeouts:
    brief: { after: PT2S }
do:
  - guarded:
      try:
        - slow: { wait: PT1M, timeout: brief }
      catch:
        errors: { with: { type: https://serverlessworkflow.io/spec/1.0.0/errors/timeout } }
        do: [ { h: { set: { timedOut: '${ $error.instance }' } } } ]
  - inline:
      timeout: { after: { seconds: 1 } }
      do:
        - slow: { wait: PT10S }
"#;
    let started = Instant::now();
    let result = run(&workflow(&format!("{HEAD}{body}")), json!({})).await;
    let error = fault(&result);
    assert_eq!(error.type_, type_of("timeout"));
    assert_eq!(error.instance.as_deref(), Some("/do/1/inline"));
    assert!(error
        .detail
        .clone()
        .unwrap_or_default()
        .contains("timeout of 1.000s"));
    // Both waits would outlast their timeouts, so both faulted at once (the first was caught).
    assert_eq!(started.elapsed(), Duration::ZERO);
    let body = body.replace("      timeout: { after: { seconds: 1 } }\n", "");
    let body = body.replace("PT10S", "PT1S");
    assert_eq!(
        completes(&body, json!({})).await,
        json!({ "timedOut": "/do/0/guarded/try/0/slow" })
    );
}

#[tokio::test(start_paused = true)]
async fn workflow_timeouts_fault_the_run() {
    let started = Instant::now();
    let error = faults(
        "timeout: { after: PT3S }\ndo:\n  - a: { wait: PT2S }\n  - c: { wait: PT2S }\n",
        json!({}),
    )
    .await;
    assert_eq!(
        (error.status, error.instance.as_deref()),
        (408, Some("/do/1/c"))
    );
    assert!(error
        .detail
        .unwrap_or_default()
        .contains("workflow's timeout of 3.000s"));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    // No task of the workflow can catch the workflow's timeout.
    let started = Instant::now();
    let error = faults(
        "timeout: { after: PT1S }\ndo:\n  - t:\n      try:\n        - a: { wait: PT0.5S, then: a }\n      catch: { do: [ { h: { set: { caught: true } } } ] }\n",
        json!({}),
    )
    .await;
    assert_eq!(error.status, 408);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    // Nor can a task catch its own timeout (only an enclosing `try` can).
    let error = faults(
        "do:\n  - t:\n      timeout: { after: PT1S }\n      try:\n        - a: { wait: PT5S }\n      catch: { do: [ { h: { set: { caught: true } } } ] }\n",
        json!({}),
    )
    .await;
    assert_eq!(
        (error.status, error.instance.as_deref()),
        (408, Some("/do/0/t"))
    );
}

// ---- run: workflow and functions ----

fn registry(documents: &[&str]) -> Registry {
    let workflows = documents.iter().enumerate().map(|(i, text)| {
        match Workflow::parse(Path::new(&format!("w{i}.yaml")), text) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        }
    });
    match Registry::from_workflows(workflows) {
        Ok(registry) => registry,
        Err(e) => panic!("{e}"),
    }
}

const CHILD: &str = r#"
document: { dsl: '1.0.3', namespace: lib, name: child, version: '1.2.0' }
input: { schema: { format: json, document: { type: object, required: [ n ] } } }
do:
  - double: { set: { n: '${ .n * 2 }', context: '${ $context }', seen: '${ $workflow.input }' } }
  - fail: { if: '${ .n > 100 }', raise: { error: { type: https://example.com/too-big, status: 400 } } }
"#;

#[tokio::test]
async fn run_workflow_runs_a_bundled_sub_workflow() {
    let parent = r#"
document: { dsl: '1.0.3', namespace: app, name: parent, version: '1.0.0' }
do:
  - remember: { set: { n: '${ .n }' }, export: { as: { mine: true } } }
  - call:
      run:
        workflow: { namespace: lib, name: child, version: latest, input: { n: '${ .n + 1 }' } }
  - after: { set: { child: '${ . }', context: '${ $context }' } }
"#;
    let registry = registry(&[CHILD, parent]);
    let Some(parent) = registry.resolve("app/parent", None) else {
        panic!("bundled")
    };
    let result = run(&parent, json!({ "n": 20 })).await;
    assert_eq!(
        output(&result),
        &json!({
            "child": { "n": 42, "context": {}, "seen": { "n": 21 } },
            "context": { "mine": true }
        })
    );
    // remember, call, the child's double (its `fail` is skipped), after.
    assert_eq!(result.metrics.tasks_executed, 4);
    let error = fault(&run(&parent, json!({ "n": 60 })).await).clone();
    assert_eq!(
        (error.status, error.type_.as_str()),
        (400, "https://example.com/too-big")
    );
    // The child's input schema applies.
    let result = run(&parent, json!({ "n": "x" })).await;
    assert_eq!(fault(&result).type_, type_of("expression"));
}

#[tokio::test]
async fn sub_workflows_must_be_bundled_and_linked() {
    let parent = "document: { dsl: '1.0.3', namespace: app, name: p, version: '1.0.0' }\ndo: [ { c: { run: { workflow: { namespace: lib, name: child, version: '9.0.0' } } } } ]\n";
    let Ok(alone) = Workflow::parse(Path::new("p.yaml"), parent) else {
        panic!("parses")
    };
    let error = fault(&run(&alone, json!({})).await).clone();
    assert_eq!(error.type_, type_of("configuration"));
    assert!(error.detail.unwrap_or_default().contains("not linked"));
    let workflows = [CHILD, parent].map(|text| Workflow::parse(Path::new("x.yaml"), text));
    let workflows: Vec<Workflow> = workflows.into_iter().filter_map(Result::ok).collect();
    let err = Registry::from_workflows(workflows)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("/do/0/c/run/workflow: `run: workflow` names lib/child 9.0.0"),
        "{err}"
    );

    // A workflow running itself is stopped by the nesting limit.
    let recursive = "document: { dsl: '1.0.3', namespace: app, name: r, version: '1.0.0' }\ndo: [ { again: { run: { workflow: { namespace: app, name: r, version: '1.0.0' } } } } ]\n";
    let registry = registry(&[recursive]);
    let Some(recursive) = registry.resolve("app/r", None) else {
        panic!("bundled")
    };
    let error = fault(&run(&recursive, json!({})).await).clone();
    assert_eq!(error.type_, type_of("runtime"));
    assert!(error
        .detail
        .unwrap_or_default()
        .contains("nested more than 32 levels"));
}

#[tokio::test]
async fn functions_are_reusable_tasks_called_with_arguments() {
    let out = completes(
        r#"
use:
  functions:
    greet:
      set: { greeting: '${ "Hello, " + .name + "!" }' }
    greetTwice:
      do:
        - first: { call: greet, with: { name: '${ .name }' } }
        - second: { call: greet, with: { name: '${ .greeting }' } }
do:
  - hello: { call: greet, with: { name: '${ .user }' } }
  - again: { call: greetTwice, with: { name: '${ .greeting }' }, output: { as: .greeting } }
"#,
        json!({ "user": "Ada" }),
    )
    .await;
    assert_eq!(out, json!("Hello, Hello, Hello, Ada!!!"));
    let error = faults(
        "use: { functions: { loop: { call: loop } } }\ndo: [ { a: { call: loop } } ]",
        json!({}),
    )
    .await;
    assert!(error
        .detail
        .unwrap_or_default()
        .contains("nested more than 32"));
    assert_eq!(error.instance.as_deref(), Some("/use/functions/loop"));
}

// ---- schemas, loose mode, secrets ----

#[tokio::test]
async fn schemas_validate_inputs_outputs_and_the_context() {
    let schema = "{ format: json, document: { type: object, required: [ id ], properties: { id: { type: string } } } }";
    let error = faults(
        &format!("input: {{ schema: {schema} }}\ndo: [ {{ a: {{ set: {{ x: 1 }} }} }} ]"),
        json!({ "id": 3 }),
    )
    .await;
    assert_eq!(error.type_, type_of("validation"));
    assert_eq!(error.instance.as_deref(), Some("/input/schema"));
    assert_eq!(
        error.detail.as_deref(),
        Some("the input does not match its schema: `/id` must be of type string, found a number")
    );
    let error = faults(
        &format!("output: {{ schema: {schema} }}\ndo: [ {{ a: {{ set: {{ x: 1 }} }} }} ]"),
        json!({}),
    )
    .await;
    assert_eq!(error.instance.as_deref(), Some("/output/schema"));
    let error = faults(
        &format!("do: [ {{ a: {{ set: {{ x: 1 }}, output: {{ schema: {schema} }} }} }} ]"),
        json!({}),
    )
    .await;
    assert_eq!(
        (error.status, error.instance.as_deref()),
        (400, Some("/do/0/a"))
    );
    let error = faults(
        &format!("do: [ {{ a: {{ set: {{ x: 1 }}, input: {{ schema: {schema} }} }} }} ]"),
        json!({}),
    )
    .await;
    assert!(error
        .detail
        .unwrap_or_default()
        .starts_with("the input does not match"));
    let error = faults(
        &format!("do: [ {{ a: {{ set: {{ x: 1 }}, export: {{ as: '.', schema: {schema} }} }} }} ]"),
        json!({}),
    )
    .await;
    assert!(error
        .detail
        .unwrap_or_default()
        .starts_with("the exported context does not match"));
    assert_eq!(
        completes(&format!("input: {{ schema: {schema} }}\ndo: [ {{ a: {{ set: {{ ok: true }}, output: {{ schema: {{ format: json, document: {{ type: object }} }} }} }} }} ]"), json!({ "id": "7" })).await,
        json!({ "ok": true })
    );
}

#[tokio::test(start_paused = true)]
async fn reusable_timeouts_apply_to_the_workflow() {
    let error = faults(
        "use: { timeouts: { brief: { after: PT10S } } }\ntimeout: brief\ndo: [ { a: { wait: PT20S } } ]",
        json!({}),
    )
    .await;
    assert_eq!(error.status, 408);
    assert!(error
        .detail
        .unwrap_or_default()
        .contains("workflow's timeout of 10.000s"));
}

#[tokio::test]
async fn loose_mode_evaluates_plain_strings() {
    let out = completes(
        "evaluate: { mode: loose }\ndo: [ { a: { set: { size: .configuration.size, shape: circle, label: 'big circle' } } } ]",
        json!({ "configuration": { "size": 6 } }),
    )
    .await;
    assert_eq!(
        out,
        json!({ "size": 6, "shape": "circle", "label": "big circle" })
    );
    let out = completes(
        "do: [ { a: { set: { size: .configuration.size } } } ]",
        json!({ "configuration": { "size": 6 } }),
    )
    .await;
    assert_eq!(out, json!({ "size": ".configuration.size" }));
}

#[tokio::test]
async fn declared_secrets_are_available_and_undeclared_ones_are_not() {
    let options = EngineOptions {
        secrets: SecretSource::Values(
            [
                ("apiKey".to_owned(), json!("s3cr3t")),
                ("other".to_owned(), json!("no")),
            ]
            .into(),
        ),
        resolve_overrides: Vec::new(),
        ..EngineOptions::default()
    };
    let yaml = format!("{HEAD}use: {{ secrets: [ apiKey ] }}\ndo: [ {{ a: {{ set: {{ secrets: '${{ $secrets }}' }} }} }} ]");
    let Ok(workflow) = Workflow::parse_with(Path::new("s.yaml"), &yaml, &options) else {
        panic!("parses")
    };
    let result = run(&workflow, json!({})).await;
    assert_eq!(
        output(&result),
        &json!({ "secrets": { "apiKey": "s3cr3t" } })
    );
}

// ---- emit ----

/// emit.feature — "Emit Task".
#[tokio::test]
async fn ctk_emit_task() {
    let yaml = format!(
        "{HEAD}{}",
        r#"
do:
  - emitEvent:
      emit:
        event:
          with:
            source: https://fake-source.com
            type: com.fake-source.user.greeted.v1
            data:
              greetings: ${ "Hello \(.user.firstName) \(.user.lastName)!" }
"#
    );
    let result = run(
        &workflow(&yaml),
        json!({ "user": { "firstName": "John", "lastName": "Doe" } }),
    )
    .await;
    let event = output(&result).clone();
    for property in ["id", "specversion", "time", "source", "type", "data"] {
        assert!(event.get(property).is_some(), "{property} in {event}");
    }
    assert_eq!(event["source"], json!("https://fake-source.com"));
    assert_eq!(event["type"], json!("com.fake-source.user.greeted.v1"));
    assert_eq!(event["data"], json!({ "greetings": "Hello John Doe!" }));
    assert_eq!(event["specversion"], json!("1.0"));
    assert_eq!(result.events, vec![event]);
}

#[tokio::test]
async fn emitted_events_keep_given_attributes_and_are_collected_in_order() {
    let result = run(
        &workflow(&format!(
            "{HEAD}do:\n  - one: {{ emit: {{ event: {{ with: {{ id: fixed, source: /orders, type: a, time: '2024-01-01T00:00:00Z', subject: '${{ .s }}' }} }} }} }}\n  - two: {{ emit: {{ event: {{ with: {{ source: /orders, type: '${{ $workflow.input.t }}' }} }} }} }}\n"
        )),
        json!({ "s": "order-1", "t": "b" }),
    )
    .await;
    assert_eq!(result.events.len(), 2);
    assert_eq!(
        result.events[0],
        json!({ "id": "fixed", "source": "/orders", "type": "a", "time": "2024-01-01T00:00:00Z", "subject": "order-1", "specversion": "1.0" })
    );
    assert_eq!(result.events[1]["type"], json!("b"));
    assert!(result.events[1]["id"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    let error = faults(
        "do: [ { e: { emit: { event: { with: { source: /s, type: '${ .t }' } } } } } ]",
        json!({}),
    )
    .await;
    assert_eq!(error.type_, type_of("validation"));
}
