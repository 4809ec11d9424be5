//! Expressions a workflow's input can turn against the engine: recursion as deep as the input
//! asks, and errors that would quote a secret.

use super::*;

const RECURSIVE: &str = r#"
do:
  - count:
      set:
        depth: '${ def f: if . == 0 then 0 else (. - 1 | f) + 1 end; .n | f }'
"#;

/// Runs `body` on a thread with `stack` bytes of stack (as the function's engine thread has).
fn on_stack(stack: usize, body: &'static str, input: Value) -> RunResult {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async { run(&workflow(&format!("{HEAD}{body}")), input).await })
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn recursion_the_stack_allows_completes_and_deeper_recursion_faults() {
    // A level costs about 5 KiB of stack in a release build, up to 30 KiB in a debug one.
    let shallow = on_stack(16 << 20, RECURSIVE, json!({ "n": 200 }));
    assert_eq!(output(&shallow)["depth"], 200);
    // Deep enough to overflow 16 MiB many times over: an expression error, and the thread lives.
    let deep = on_stack(16 << 20, RECURSIVE, json!({ "n": 10_000_000 }));
    let error = fault(&deep);
    assert_eq!(error.status, 400);
    assert!(error.type_.ends_with("/expression"), "{error:?}");
    assert!(
        error
            .detail
            .as_deref()
            .unwrap()
            .contains("recursed too deeply"),
        "{error:?}"
    );
    assert_eq!(error.instance.as_deref(), Some("/do/0/count"));
}

#[test]
fn recursive_library_filters_still_run() {
    // `recurse(f)` and `until` recurse through a nested definition of jaq's library, which now
    // checks the stack first; as tail calls they run in constant stack.
    let body = r#"
do:
  - deep:
      set:
        count: '${ [limit(.n; 0 | recurse(. + 1))] | length }'
        until: '${ 0 | until(. >= 100000; . + 1) }'
"#;
    let result = on_stack(4 << 20, body, json!({ "n": 100_000 }));
    assert_eq!(output(&result)["count"], 100_000);
    assert_eq!(output(&result)["until"], 100_000);
}

#[test]
fn nested_and_parameterised_definitions_are_guarded() {
    let body = r#"
do:
  - nested:
      set:
        n: '${ def outer(g): def inner: if . == 0 then 0 else (. - 1 | inner) + g end; inner; .n | outer(1) }'
"#;
    let ok = on_stack(16 << 20, body, json!({ "n": 100 }));
    assert_eq!(output(&ok)["n"], 100);
    let deep = on_stack(4 << 20, body, json!({ "n": 50_000_000 }));
    assert!(fault(&deep)
        .detail
        .as_deref()
        .is_some_and(|d| d.contains("recursed too deeply")));
}

#[tokio::test]
async fn jq_errors_never_quote_a_secret() {
    let secret = "sk-live-4f1c2a9e8b7d6c5f";
    let mut values = std::collections::BTreeMap::new();
    values.insert("probe".to_owned(), json!(secret));
    values.insert(
        "basic".to_owned(),
        json!({ "username": "svc", "password": "p@ss\"w0rd-long" }),
    );
    let options = EngineOptions {
        secrets: SecretSource::Values(values),
        ..EngineOptions::default()
    };
    let text = format!(
        "{HEAD}use: {{ secrets: [probe, basic] }}\n{}",
        r#"
do:
  - parse:
      set:
        n: '${ $secrets.probe | tonumber }'
"#
    );
    let workflow = Workflow::parse_with(Path::new("s.yaml"), &text, &options).unwrap();
    let result = run(&workflow, json!({})).await;
    let error = fault(&result);
    let detail = error.detail.as_deref().unwrap();
    assert!(
        !detail.contains(secret) && !detail.contains("sk-live"),
        "{detail}"
    );
    assert!(detail.contains(REDACTED), "{detail}");
    // An object secret's strings, written escaped as jq writes them, and a long message cut
    // inside the secret.
    for expr in [
        r#"${ $secrets.basic.password | tonumber }"#,
        r#"${ ("x" * 395) + $secrets.probe | error }"#,
    ] {
        let text = format!(
            "{HEAD}use: {{ secrets: [probe, basic] }}\ndo:\n  - e:\n      set:\n        n: '{expr}'\n"
        );
        let workflow = Workflow::parse_with(Path::new("s.yaml"), &text, &options).unwrap();
        let result = run(&workflow, json!({})).await;
        let detail = fault(&result).detail.clone().unwrap();
        for leak in ["p@ss", "w0rd", "sk-l"] {
            assert!(!detail.contains(leak), "{expr}: {detail}");
        }
    }
}
