//! Load errors: every problem names its place and says what to fix.

use super::*;

const HEAD: &str = "document: { dsl: '1.0.3', namespace: test, name: t, version: '1.0.0' }\n";

/// Loads YAML and returns the error's pointer and message.
fn error(yaml: &str) -> (String, String) {
    match Workflow::parse(Path::new("t.yaml"), yaml) {
        Ok(_) => panic!("expected a load error for:\n{yaml}"),
        Err(e) => (e.pointer().to_owned(), e.message().to_owned()),
    }
}

fn error_with_head(body: &str) -> (String, String) {
    error(&format!("{HEAD}{body}"))
}

fn assert_error(body: &str, pointer: &str, fragment: &str) {
    let (at, message) = error_with_head(body);
    assert_eq!(at, pointer, "pointer for:\n{body}\nmessage: {message}");
    assert!(
        message.contains(fragment),
        "message for:\n{body}\nshould contain {fragment:?}, is: {message}"
    );
}

#[test]
fn loads_a_valid_workflow() {
    let yaml = format!(
        "{HEAD}input: {{ from: '${{ . }}' }}\noutput: {{ as: .x }}\nevaluate: {{ language: jq, mode: strict }}\n\
         do:\n  - a:\n      if: .go\n      set: {{ x: '${{ .y }}', lit: 1 }}\n      then: b\n      metadata: {{ owner: me }}\n\
         \x20 - b:\n      do:\n        - c: {{ set: '${{ . }}', export: {{ as: '$context + {{c: 1}}' }} }}\n"
    );
    let workflow = Workflow::parse(Path::new("ok.yaml"), &yaml);
    let workflow = match workflow {
        Ok(w) => w,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(workflow.id().name, "t");
    assert_eq!(workflow.id().namespace, "test");
    assert_eq!(workflow.id().version, "1.0.0");
    assert_eq!(workflow.tasks.tasks.len(), 2);
    assert_eq!(&*workflow.tasks.tasks[0].reference, "/do/0/a");
    assert_eq!(workflow.tasks.tasks[0].then, Flow::Goto(1));
}

#[test]
fn loads_json_documents() {
    let json = r#"{"document": {"dsl": "1.0.0", "namespace": "n", "name": "j", "version": "2.0.0"},
                   "do": [{"s": {"set": {"a": "${ 1 }"}}}]}"#;
    let workflow = Workflow::parse(Path::new("j.json"), json);
    assert_eq!(
        workflow.map(|w| w.id().version.clone()).ok().as_deref(),
        Some("2.0.0")
    );
    let err = Workflow::parse(Path::new("j.json"), "document: {}").err();
    assert!(err
        .map(|e| e.message().starts_with("not valid JSON"))
        .unwrap_or(false));
}

#[test]
fn syntax_errors_name_the_file() {
    let err = Workflow::parse(Path::new("workflows/bad.yaml"), "do: [\n").err();
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.starts_with("workflows/bad.yaml: not valid YAML"),
        "{text}"
    );
    let (at, message) = error("- just\n- a list\n");
    assert_eq!(at, "");
    assert!(
        message.contains("a workflow document must be a map"),
        "{message}"
    );
}

#[test]
fn document_errors_point_at_the_field() {
    let do_ = "do: [ { a: { set: { x: 1 } } } ]\n";
    let cases = [
        (
            "document: { namespace: n, name: a, version: '1.0.0' }",
            "/document/dsl",
            "`dsl` is required",
        ),
        (
            "document: { dsl: '0.9.0', namespace: n, name: a, version: '1.0.0' }",
            "/document/dsl",
            "DSL 1.0.x",
        ),
        (
            "document: { dsl: '1.0', namespace: n, name: a, version: '1.0.0' }",
            "/document/dsl",
            "not a DSL version",
        ),
        (
            "document: { dsl: '1.0.3', namespace: 'a b', name: a, version: '1.0.0' }",
            "/document/namespace",
            "not a valid namespace",
        ),
        (
            "document: { dsl: '1.0.3', namespace: n, name: '-a', version: '1.0.0' }",
            "/document/name",
            "not a valid name",
        ),
        (
            "document: { dsl: '1.0.3', namespace: n, name: a, version: 1.0 }",
            "/document/version",
            "quote it",
        ),
        (
            "document: { dsl: '1.0.3', namespace: n, name: a, version: '1.0' }",
            "/document/version",
            "not a semantic version",
        ),
        (
            "document: { dsl: '1.0.3', namespace: n, name: a, version: '1.0.0', titel: x }",
            "/document/titel",
            "did you mean `title`?",
        ),
        (
            "document: { dsl: '1.0.3', namespace: n, name: a, version: '1.0.0', tags: { a: 1 } }",
            "/document/tags/a",
            "tag values must be strings",
        ),
    ];
    for (document, pointer, fragment) in cases {
        let (at, message) = error(&format!("{document}\n{do_}"));
        assert_eq!(at, pointer, "{document}: {message}");
        assert!(message.contains(fragment), "{document}: {message}");
    }
    let (at, message) = error("do: []\n");
    assert_eq!(
        (at.as_str(), message.contains("`document` is required")),
        ("/document", true),
        "{message}"
    );
}

#[test]
fn structural_errors_point_at_the_place() {
    assert_error("", "/do", "`do` is required");
    assert_error("do: []", "/do", "lists no tasks");
    assert_error("do: { a: { set: { x: 1 } } }", "/do", "must be a list");
    assert_error(
        "do: [ { a: { set: { x: 1 } }, b: { set: { x: 1 } } } ]",
        "/do/0",
        "exactly one key",
    );
    assert_error("do: [ 'a' ]", "/do/0", "must be a map `name: { task }`");
    assert_error(
        "do: [ { a: { set: { x: 1 } } }, { a: { set: { x: 1 } } } ]",
        "/do/1/a",
        "already used at /do/0/a",
    );
    assert_error(
        "do: [ { end: { set: { x: 1 } } } ]",
        "/do/0/end",
        "flow directive",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 }, iff: .x } } ]",
        "/do/0/a/iff",
        "did you mean `if`?",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 }, if: true } } ]",
        "/do/0/a/if",
        "must be a runtime expression",
    );
    assert_error(
        "do: [ { a: { set: { } } } ]",
        "/do/0/a/set",
        "`set` is empty",
    );
    assert_error(
        "do: [ { a: { set: 'hello' } } ]",
        "/do/0/a/set",
        "must be a runtime expression",
    );
    assert_error("do: [ { a: { set: 3 } } ]", "/do/0/a/set", "must be a map");
    assert_error("do: [ { a: { } } ]", "/do/0/a", "does not say what to do");
    assert_error(
        "do: [ { a: { set: { x: 1 }, do: [] } } ]",
        "/do/0/a",
        "several task kinds (set, do)",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 }, input: { from: 3 } } } ]",
        "/do/0/a/input/from",
        "must be a runtime expression",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 }, output: { as: .x, schema: {} } } } ]",
        "/do/0/a/output/schema",
        "needs a `document`",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 }, export: { from: .x } } } ]",
        "/do/0/a/export/from",
        "unknown field `from`",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 }, timeout: { after: 1S } } } ]",
        "/do/0/a/timeout/after",
        "not an ISO 8601 duration",
    );
    assert_error("do: [ { a: { do: [] } } ]", "/do/0/a/do", "lists no tasks");
    assert_error(
        "do: [ { a: { set: { x: 1 } } } ]\nextra: 1",
        "/extra",
        "unknown field `extra` in the workflow",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 } } } ]\nevaluate: { mode: lax }",
        "/evaluate/mode",
        "must be `strict` or `loose`",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 } } } ]\nevaluate: { language: js }",
        "/evaluate/language",
        "must be `jq`",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 } } } ]\nuse: { secrets: [ mozaiks-test-never-set ] }",
        "/use/secrets/0",
        "set the environment variable MOZAIKS_SECRET_MOZAIKS_TEST_NEVER_SET",
    );
}

#[test]
fn bad_then_targets_are_load_errors() {
    assert_error(
        "do: [ { a: { set: { x: 1 }, then: nowhere } }, { b: { set: { x: 1 } } } ]",
        "/do/0/a/then",
        "no task named `nowhere` in this `do` list (it has: a, b)",
    );
    // A flow directive cannot leave its own list.
    assert_error(
        "do: [ { a: { do: [ { inner: { set: { x: 1 }, then: b } } ] } }, { b: { set: { x: 1 } } } ]",
        "/do/0/a/do/0/inner/then",
        "no task named `b`",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 }, then: 1 } } ]",
        "/do/0/a/then",
        "must be `continue`",
    );
}

#[test]
fn expression_errors_carry_the_expression_pointer() {
    assert_error(
        "do: [ { greet: { set: { x: '${ $foo }' } } } ]",
        "/do/0/greet/set/x",
        "jq: undefined variable `$foo`",
    );
    assert_error(
        "do: [ { greet: { set: { x: { y: [ 1, '${ .a | }' ] } } } } ]",
        "/do/0/greet/set/x/y/1",
        "jq: expected",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 }, input: { from: '$output' } } } ]",
        "/do/0/a/input/from",
        "`$output` is not available in a task's `input.from`",
    );
    assert_error(
        "do: [ { a: { set: { x: 1 }, if: '${ nofilter }' } } ]",
        "/do/0/a/if",
        "undefined filter `nofilter/0`",
    );
    assert_error(
        "input: { from: '$context' }\ndo: [ { a: { set: { x: 1 } } } ]",
        "/input/from",
        "not available in the workflow's `input.from`",
    );
    assert_error(
        "output: { as: { a: '${ $input }' } }\ndo: [ { a: { set: { x: 1 } } } ]",
        "/output/as/a",
        "not available in the workflow's `output.as`",
    );
    // Names with `/` or `~` are escaped in pointers.
    assert_error(
        "do: [ { 'a/b~c': { set: { 'k/1': '${ $nope }' } } } ]",
        "/do/0/a~1b~0c/set/k~11",
        "undefined variable",
    );
}

#[test]
fn every_task_kind_loads() {
    let yaml = format!(
        "{HEAD}{}",
        r#"
use:
  errors:
    notFound: { type: https://example.com/errors/not-found, status: 404, title: '${ "missing " + .id }' }
  retries:
    quick: { delay: { milliseconds: 1 }, backoff: { exponential: {} }, limit: { attempt: { count: 2 } }, when: '${ $error.status >= 500 }' }
  timeouts:
    short: { after: PT1S }
  authentications:
    token: { bearer: { token: '${ .token }' } }
  functions:
    double: { set: { n: '${ .n * 2 }' } }
do:
  - pick:
      switch:
        - one: { when: .n == 1, then: loop }
        - other: { then: continue }
  - loop:
      for: { each: x, in: .items, at: i }
      while: $i < 10
      do:
        - add: { set: { sum: '${ .sum + $x }' } }
  - both:
      fork:
        compete: false
        branches:
          - a: { wait: PT0S }
          - b: { wait: { milliseconds: 0 } }
  - guarded:
      timeout: short
      try:
        - fail: { raise: { error: notFound } }
      catch:
        errors: { with: { status: 404 } }
        as: problem
        when: $problem.title != null
        retry: quick
        do:
          - note: { set: { caught: '${ $problem.type }' } }
  - twice: { call: double, with: { n: 2 } }
  - fetch:
      call: http
      with:
        method: get
        endpoint: { uri: 'https://example.com/items/{id}', authentication: { use: token } }
        query: { q: x }
        output: response
  - tell:
      emit:
        event:
          with: { source: https://example.com, type: com.example.done, data: '${ . }' }
"#
    );
    let workflow = Workflow::parse(Path::new("all.yaml"), &yaml);
    if let Err(e) = workflow {
        panic!("{e}");
    }
}

#[test]
fn task_kind_errors_point_at_the_place() {
    let cases = [
        ("do: [ { a: { switch: [] } } ]", "/do/0/a/switch", "lists no cases"),
        ("do: [ { a: { switch: [ { x: { when: .a } } ] } } ]", "/do/0/a/switch/0/x/then", "needs `then`"),
        ("do: [ { a: { switch: [ { x: { then: end } }, { y: { then: exit } } ] } } ]", "/do/0/a/switch/1/y", "at most one default"),
        ("do: [ { a: { switch: [ { x: { when: .a, then: nowhere } } ] } } ]", "/do/0/a/switch/0/x/then", "no task named `nowhere`"),
        ("do: [ { a: { raise: { error: nope } } } ]", "/do/0/a/raise/error", "no error named `nope` in `use.errors` (none is defined)"),
        ("do: [ { a: { raise: { error: { type: x } } } } ]", "/do/0/a/raise/error/status", "`status` is required"),
        ("do: [ { a: { raise: { error: { type: x, status: 1000 } } } } ]", "/do/0/a/raise/error/status", "100 to 999"),
        ("do: [ { a: { try: [ { b: { set: { x: 1 } } } ] } } ]", "/do/0/a/catch", "`catch` is required"),
        ("do: [ { a: { try: [ { b: { set: { x: 1 } } } ], catch: { as: input } } } ]", "/do/0/a/catch/as", "runtime argument"),
        ("do: [ { a: { try: [ { b: { set: { x: 1 } } } ], catch: { retry: slow } } } ]", "/do/0/a/catch/retry", "no retry policy named `slow`"),
        ("do: [ { a: { try: [ { b: { set: { x: 1 } } } ], catch: { retry: { backoff: { linear: {}, constant: {} } } } } } ]", "/do/0/a/catch/retry/backoff", "exactly one"),
        ("do: [ { a: { try: [ { b: { set: { x: 1 } } } ], catch: { errors: { with: { status: x } } } } } ]", "/do/0/a/catch/errors/with/status", "integer"),
        ("do: [ { a: { try: [ { b: { set: { x: '${ $error }' } } } ], catch: {} } } ]", "/do/0/a/try/0/b/set/x", "undefined variable `$error`"),
        ("do: [ { a: { for: { in: .x }, do: [ { b: { set: { x: '${ $nope }' } } } ] } } ]", "/do/0/a/do/0/b/set/x", "$item, $index"),
        ("do: [ { a: { for: { in: .x, each: i, at: i }, do: [ { b: { set: { x: 1 } } } ] } } ]", "/do/0/a/for/at", "give the index another name"),
        ("do: [ { a: { for: { in: .x } } } ]", "/do/0/a/do", "needs `do`"),
        ("do: [ { a: { fork: { branches: [ { b: { set: { x: 1 }, then: c } }, { c: { set: { x: 1 } } } ] } } } ]", "/do/0/a/fork/branches/0/b/then", "branches run concurrently"),
        ("do: [ { a: { wait: 5 } } ]", "/do/0/a/wait", "a duration must be"),
        ("do: [ { a: { wait: { secs: 5 } } } ]", "/do/0/a/wait/secs", "unknown duration unit"),
        ("do: [ { a: { set: { x: 1 }, timeout: later } } ]", "/do/0/a/timeout", "no timeout named `later`"),
        ("do: [ { a: { call: missing } } ]", "/do/0/a/call", "`use.functions` has no function by that name"),
        ("do: [ { a: { call: 'log:1.0.0@global' } } ]", "/do/0/a/call", "catalogs or URLs are not supported"),
        ("do: [ { a: { call: a2a, with: { method: message/send } } } ]", "/do/0/a/with", "needs `agentCard`"),
        ("do: [ { a: { call: http, with: { method: get } } } ]", "/do/0/a/with/endpoint", "`endpoint` is required"),
        ("do: [ { a: { call: http, with: { method: 'g t', endpoint: 'https://x' } } } ]", "/do/0/a/with/method", "not an HTTP method"),
        ("do: [ { a: { call: http, with: { method: get, endpoint: 'x/{id}' } } } ]", "/do/0/a/with/endpoint", "not a valid URL"),
        ("do: [ { a: { call: http, with: { method: get, endpoint: 'ftp://h/x' } } } ]", "/do/0/a/with/endpoint", "only http and https"),
        ("do: [ { a: { call: http, with: { method: get, endpoint: 'https://h/{id' } } } ]", "/do/0/a/with/endpoint", "unclosed"),
        ("do: [ { a: { call: http, with: { method: get, endpoint: 'https://h', output: body } } } ]", "/do/0/a/with/output", "`content`"),
        ("do: [ { a: { call: http, with: { method: get, endpoint: { uri: 'https://h', authentication: { use: nope } } } } } ]", "/do/0/a/with/endpoint/authentication/use", "no authentication named `nope`"),
        ("do: [ { a: { call: http, with: { method: get, endpoint: { uri: 'https://h', authentication: { oauth2: {} } } } } } ]", "/do/0/a/with/endpoint/authentication/oauth2", "not supported by this runtime"),
        ("do: [ { a: { call: http, with: { method: get, endpoint: { uri: 'https://h', authentication: { basic: { use: s } } } } } } ]", "/do/0/a/with/endpoint/authentication/basic/use", "add it to `use.secrets`"),
        ("do: [ { a: { call: openapi, with: { document: { endpoint: missing.json }, operationId: x } } } ]", "/do/0/a/with/document/endpoint", "cannot read the OpenAPI document"),
        ("do: [ { a: { emit: { event: { with: { type: t } } } } } ]", "/do/0/a/emit/event/with/source", "`source` is required"),
        ("do: [ { a: { emit: { event: { with: { type: t, source: 'not a uri' } } } } } ]", "/do/0/a/emit/event/with/source", "not a URI reference"),
        ("do: [ { a: { run: { workflow: { namespace: n, name: w, version: 1 } } } } ]", "/do/0/a/run/workflow/version", "quote it"),
        ("do: [ { a: { run: { workflow: { namespace: n, name: w } }, await: false } } ]", "/do/0/a/await", "stateless"),
        ("do: [ { a: { run: {} } } ]", "/do/0/a/run", "needs `workflow`"),
        ("do: [ { a: { set: { x: 1 }, input: { schema: { format: json, document: { type: text } } } } } ]", "/do/0/a/input/schema/document/type", "must be one of"),
        ("do: [ { a: { set: { x: 1 } } } ]\ntimeout: { after: { minutes: x } }", "/timeout/after/minutes", "non-negative integer"),
        ("do: [ { a: { set: { x: 1 } } } ]\nuse: { catalogs: {} }", "/use/catalogs", "not supported"),
        ("do: [ { a: { set: { x: 1 } } } ]\nuse: { extensions: [] }", "/use/extensions", "not supported"),
        ("do: [ { a: { set: { x: 1 } } } ]\nuse: { functions: { f: { set: { x: '${ $nope }' } } } }", "/use/functions/f/set/x", "undefined variable"),
    ];
    for (body, pointer, fragment) in cases {
        assert_error(body, pointer, fragment);
    }
}

#[test]
fn secrets_back_authentication_and_must_be_declared_objects() {
    let options = EngineOptions {
        secrets: crate::SecretSource::Values(
            [
                (
                    "api".to_owned(),
                    serde_json::json!({ "username": "u", "password": "p" }),
                ),
                ("plain".to_owned(), serde_json::json!("text")),
            ]
            .into(),
        ),
        resolve_overrides: Vec::new(),
        ..EngineOptions::default()
    };
    let parse = |auth: &str, secrets: &str| {
        let yaml = format!(
            "{HEAD}use: {{ secrets: [ {secrets} ] }}\ndo: [ {{ a: {{ call: http, with: {{ method: get, endpoint: {{ uri: 'https://h', authentication: {auth} }} }} }} }} ]"
        );
        Workflow::parse_with(Path::new("s.yaml"), &yaml, &options)
            .err()
            .map(|e| e.to_string())
    };
    assert_eq!(parse("{ basic: { use: api } }", "api"), None);
    let err = parse("{ basic: { use: plain } }", "plain").unwrap_or_default();
    assert!(
        err.contains("must be a JSON object with a string `username`"),
        "{err}"
    );
    let err = parse("{ bearer: { use: missing } }", "missing").unwrap_or_default();
    assert!(
        err.contains("/use/secrets/0: secret `missing` is declared"),
        "{err}"
    );
}

#[test]
fn stateful_features_say_never() {
    let cases = [
        (
            "listen: { to: { any: [] } }",
            "/do/0/a/listen",
            "a stateful host",
        ),
        (
            "run: { container: { image: alpine } }",
            "/do/0/a/run",
            "a container runtime",
        ),
        (
            "run: { shell: { command: ls } }",
            "/do/0/a/run",
            "`run: shell`",
        ),
        (
            "run: { script: { language: js, code: '1' } }",
            "/do/0/a/run",
            "`run: script`",
        ),
        (
            "call: grpc\n        with: {}",
            "/do/0/a/call",
            "`call: grpc`",
        ),
        (
            "call: asyncapi\n        with: {}",
            "/do/0/a/call",
            "`call: asyncapi`",
        ),
    ];
    for (body, pointer, fragment) in cases {
        let (at, message) = error_with_head(&format!("do:\n  - a:\n        {body}\n"));
        assert_eq!(at, pointer, "{message}");
        assert!(message.contains(fragment), "{message}");
        assert!(message.contains("can never run here"), "{message}");
    }
    let (at, message) =
        error_with_head("schedule: { every: PT1M }\ndo: [ { a: { set: { x: 1 } } } ]");
    assert_eq!(at, "/schedule");
    assert!(message.contains("scheduler"), "{message}");
}

#[test]
fn pointer_tokens_are_escaped() {
    assert_eq!(child("/do", "a/b~c"), "/do/a~1b~0c");
    assert_eq!(child("", "do"), "/do");
}

#[test]
fn suggests_close_field_names() {
    assert_eq!(closest("exprot", &["export", "output"]), Some("export"));
    assert_eq!(closest("zzzzzz", &["export", "output"]), None);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}
