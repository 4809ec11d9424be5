//! `call: http` and `call: openapi` against the loopback stand-in: the CTK scenarios of
//! call.feature and try.feature (their public hosts mapped to 127.0.0.1), and the error paths.

use super::standin::StandIn;
use super::*;
use crate::{EngineOptions, SecretSource};
use std::net::SocketAddr;

/// Options that send the CTK's public hosts and `example.test` to the stand-in.
fn options(standin: &StandIn, secrets: &[(&str, Value)]) -> EngineOptions {
    EngineOptions {
        secrets: SecretSource::Values(
            secrets
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
        ),
        resolve_overrides: ["petstore.swagger.io", "httpbin.org", "example.test"]
            .into_iter()
            .map(|host| (host.to_owned(), standin.addr))
            .collect(),
        ..EngineOptions::default()
    }
}

fn parse_with(yaml: &str, options: &EngineOptions) -> Workflow {
    match Workflow::parse_with(Path::new("call.yaml"), yaml, options) {
        Ok(workflow) => workflow,
        Err(e) => panic!("{e}"),
    }
}

/// Runs `body` against the stand-in.
async fn call(body: &str, input: Value) -> (RunResult, StandIn) {
    let standin = StandIn::start();
    let workflow = parse_with(&format!("{HEAD}{body}"), &options(&standin, &[]));
    (run(&workflow, input).await, standin)
}

fn has_properties(value: &Value, paths: &[&str]) {
    for path in paths {
        let found = path.split('.').try_fold(value, |value, key| value.get(key));
        assert!(found.is_some(), "`{path}` in {value}");
    }
}

/// call.feature — "Call HTTP With Content Output".
#[tokio::test]
async fn ctk_call_http_with_content_output() {
    let (result, standin) = call(
        r#"
do:
  - findPet:
      call: http
      with:
        method: get
        endpoint:
          uri: https://petstore.swagger.io/v2/pet/findByStatus?status={status}
      output:
        as: .[0]
"#,
        json!({ "status": "available" }),
    )
    .await;
    has_properties(output(&result), &["id", "name", "status"]);
    let received = standin.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].target, "/v2/pet/findByStatus?status=available");
    assert_eq!(received[0].header("host"), Some("petstore.swagger.io"));
    assert_eq!(result.metrics.http_calls, 1);
    assert_eq!(result.metrics.http_bytes_sent, 0);
    assert!(result.metrics.http_bytes_received > 100);
}

/// call.feature — "Call HTTP With Response Output".
#[tokio::test]
async fn ctk_call_http_with_response_output() {
    let (result, _standin) = call(
        r#"
do:
  - getPet:
      call: http
      with:
        method: get
        endpoint:
          uri: https://petstore.swagger.io/v2/pet/{petId}
        output: response
"#,
        json!({ "petId": 1 }),
    )
    .await;
    let out = output(&result);
    has_properties(
        out,
        &[
            "request",
            "request.method",
            "request.uri",
            "request.headers",
            "headers",
            "statusCode",
            "content",
        ],
    );
    has_properties(out, &["content.id", "content.name", "content.status"]);
    assert_eq!(out["statusCode"], json!(200));
    assert_eq!(
        out["request"]["uri"],
        json!("https://petstore.swagger.io/v2/pet/1")
    );
    assert_eq!(out["request"]["method"], json!("get"));
    assert_eq!(out["headers"]["content-type"], json!("application/json"));
}

/// call.feature — "Call HTTP Using Basic Authentication".
#[tokio::test]
async fn ctk_call_http_using_basic_authentication() {
    let body = r#"
do:
  - login:
      call: http
      with:
        method: get
        endpoint:
          uri: https://httpbin.org/basic-auth/{username}/{password}
          authentication:
            basic:
              username: ${ .username }
              password: ${ .password }
"#;
    let (result, _standin) = call(
        body,
        json!({ "username": "serverless-workflow", "password": "conformance-test" }),
    )
    .await;
    assert_eq!(
        output(&result),
        &json!({ "authenticated": true, "user": "serverless-workflow" })
    );
    // Wrong credentials: httpbin answers 401, a communication error with that status.
    let (result, _standin) = call(
        &body.replace("${ .password }", "wrong"),
        json!({ "username": "serverless-workflow", "password": "conformance-test" }),
    )
    .await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("communication"));
    assert_eq!(error.status, 401);
    assert_eq!(error.instance.as_deref(), Some("/do/0/login"));
}

/// call.feature — "Call OpenAPI With Content Output" and "… With Response Output".
#[tokio::test]
async fn ctk_call_openapi() {
    let (result, standin) = call(
        r#"
do:
  - findPet:
      call: openapi
      with:
        document:
          endpoint: "https://petstore.swagger.io/v2/swagger.json"
        operationId: findPetsByStatus
        parameters:
          status: ${ .status }
      output:
        as: . | length
"#,
        json!({ "status": "available" }),
    )
    .await;
    assert_eq!(output(&result), &json!(3));
    let targets: Vec<String> = standin.received().into_iter().map(|r| r.target).collect();
    assert_eq!(
        targets,
        ["/v2/swagger.json", "/v2/pet/findByStatus?status=available"]
    );
    assert_eq!(result.metrics.http_calls, 2);

    let standin = StandIn::start();
    let workflow = parse_with(
        &format!(
            "{HEAD}{}",
            r#"
do:
  - getPet:
      call: openapi
      with:
        document:
          endpoint: "https://petstore.swagger.io/v2/swagger.json"
        operationId: getPetById
        parameters:
          petId: ${ .petId }
        output: response
"#
        ),
        &options(&standin, &[]),
    );
    for pet in [1, 2] {
        let result = run(&workflow, json!({ "petId": pet })).await;
        let out = output(&result);
        has_properties(
            out,
            &[
                "request",
                "request.method",
                "request.uri",
                "request.headers",
                "headers",
                "statusCode",
                "content",
            ],
        );
        has_properties(out, &["content.id", "content.name", "content.status"]);
        assert_eq!(out["content"]["id"], json!(pet));
    }
    // The document was fetched once for both runs.
    let fetches = standin
        .received()
        .iter()
        .filter(|r| r.target == "/v2/swagger.json")
        .count();
    assert_eq!(fetches, 1);
    // A missing required parameter is a validation error.
    let result = run(&workflow, json!({})).await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("validation"));
    assert!(error
        .detail
        .clone()
        .unwrap_or_default()
        .contains("`petId` is required"));
}

const TRY_GET_PET: &str = r#"
do:
  - tryGetPet:
      try:
        - getPet:
            call: http
            with:
              method: get
              endpoint:
                uri: https://petstore.swagger.io/v2/pet/getPetByName/{petName}
      catch:
        errors:
          with:
            type: https://serverlessworkflow.io/dsl/errors/types/communication
            status: STATUS
        as: err
        do:
          - setError:
              set:
                error: ${ $err }
"#;

/// try.feature — "Try Handle Caught Error".
#[tokio::test]
async fn ctk_try_handle_caught_error() {
    let (result, _standin) = call(
        &TRY_GET_PET.replace("STATUS", "404"),
        json!({ "petName": "Milou" }),
    )
    .await;
    let out = output(&result);
    has_properties(out, &["error", "error.type", "error.status", "error.title"]);
    assert_eq!(
        out["error"]["instance"],
        json!("/do/0/tryGetPet/try/0/getPet")
    );
    assert_eq!(out["error"]["status"], json!(404));
}

/// try.feature — "Try Raise Uncaught Error".
#[tokio::test]
async fn ctk_try_raise_uncaught_error() {
    let (result, _standin) = call(
        &TRY_GET_PET.replace("STATUS", "503"),
        json!({ "petName": "Milou" }),
    )
    .await;
    let error = fault(&result);
    assert_eq!(error.status, 404);
    assert_eq!(
        error.instance.as_deref(),
        Some("/do/0/tryGetPet/try/0/getPet")
    );
}

#[tokio::test]
async fn requests_carry_method_query_headers_body_and_bearer_secrets() {
    let standin = StandIn::start();
    let options = options(&standin, &[("api", json!({ "token": "t0k3n" }))]);
    let workflow = parse_with(
        &format!(
            "{HEAD}{}",
            r#"
use:
  secrets: [ api ]
  authentications:
    service: { bearer: { use: api } }
do:
  - send:
      call: http
      with:
        method: post
        endpoint: { uri: 'http://example.test/echo/{id}', authentication: { use: service } }
        query: { page: '${ .page }', tags: [ a, b ], skip: null }
        headers: { X-Trace: '${ "t-" + .id }' }
        body: { name: '${ .name }', n: 1 }
        output: response
"#
        ),
        &options,
    );
    let result = run(&workflow, json!({ "id": "a/b", "page": 2, "name": "Ada" })).await;
    let out = output(&result);
    let echo = &out["content"];
    assert_eq!(echo["method"], json!("POST"));
    assert_eq!(echo["target"], json!("/echo/a%2Fb?page=2&tags=a&tags=b"));
    assert_eq!(echo["headers"]["authorization"], json!("Bearer t0k3n"));
    assert_eq!(echo["headers"]["x-trace"], json!("t-a/b"));
    assert_eq!(echo["headers"]["content-type"], json!("application/json"));
    assert_eq!(echo["body"], json!(r#"{"n":1,"name":"Ada"}"#));
    // The secret never shows in the task output's request.
    assert_eq!(
        out["request"]["headers"],
        json!({ "x-trace": "t-a/b", "content-type": "application/json" })
    );
    assert_eq!(result.metrics.http_bytes_sent, 20);
    // The stand-in serializes with sorted keys, as serde_json does again here.
    let received = serde_json::to_vec(echo)
        .map(|bytes| bytes.len() as u64)
        .ok();
    assert_eq!(Some(result.metrics.http_bytes_received), received);
    assert_eq!(standin.received().len(), 1);
}

#[tokio::test]
async fn redirects_are_errors_unless_followed() {
    let body = "do: [ { r: { call: http, with: { method: get, endpoint: 'https://petstore.swagger.io/redirect' } } } ]";
    let (result, _standin) = call(body, json!({})).await;
    let error = fault(&result);
    assert_eq!(
        (error.status, error.type_.clone()),
        (302, WorkflowError::standard_type("communication"))
    );
    assert_eq!(
        error.detail.as_deref(),
        Some("GET https://petstore.swagger.io/redirect answered 302")
    );
    let (result, standin) = call(
        &body.replace("method: get", "method: get, redirect: true"),
        json!({}),
    )
    .await;
    assert_eq!(output(&result)["id"], json!(9));
    assert_eq!(standin.received().len(), 2);
    assert_eq!(result.metrics.http_calls, 2);
}

#[tokio::test]
async fn contents_decode_by_media_type_and_raw_is_base64() {
    let (result, _standin) = call(
        r#"
do:
  - bytes: { call: http, with: { method: get, endpoint: 'http://example.test/bytes' }, output: { as: '{ bytes: . }' } }
  - raw: { call: http, with: { method: get, endpoint: 'http://example.test/text', output: raw }, output: { as: '. as $raw | $input + { raw: $raw }' } }
  - text: { call: http, with: { method: get, endpoint: 'http://example.test/text' }, output: { as: '$input + { text: . }' } }
  - empty: { call: http, with: { method: delete, endpoint: 'http://example.test/empty' }, output: { as: '$input + { empty: . }' } }
"#,
        json!({}),
    )
    .await;
    assert_eq!(
        output(&result),
        &json!({ "bytes": "AAEC/w==", "raw": "cGxhaW4gd29yZHM=", "text": "plain words", "empty": null })
    );
}

#[tokio::test]
async fn server_and_network_failures_are_communication_errors() {
    let (result, _standin) = call(
        "do: [ { s: { call: http, with: { method: get, endpoint: 'http://example.test/status/503' } } } ]",
        json!({}),
    )
    .await;
    let error = fault(&result);
    assert_eq!(
        (error.status, error.title.as_deref()),
        (503, Some("HTTP 503 Service Unavailable"))
    );

    // Nothing listens on this port any more.
    let closed: SocketAddr =
        match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(addr) => addr,
            Err(e) => panic!("{e}"),
        };
    let options = EngineOptions {
        secrets: SecretSource::Values(Default::default()),
        resolve_overrides: vec![("example.test".into(), closed)],
        ..EngineOptions::default()
    };
    let workflow = parse_with(
        &format!("{HEAD}do: [ {{ s: {{ call: http, with: {{ method: get, endpoint: 'https://example.test/x?key=secret' }} }} }} ]"),
        &options,
    );
    let result = run(&workflow, json!({})).await;
    let error = fault(&result);
    assert_eq!(
        (error.status, error.type_.clone()),
        (500, WorkflowError::standard_type("communication"))
    );
    let detail = error.detail.clone().unwrap_or_default();
    assert!(
        detail.starts_with("GET https://example.test/x: "),
        "{detail}"
    );
    assert!(!detail.contains("secret"), "{detail}");

    // A URL computed at run time must still be http(s).
    let (result, _standin) = call(
        "do: [ { s: { call: http, with: { method: get, endpoint: '${ .url }' } } } ]",
        json!({ "url": "file:///etc/passwd" }),
    )
    .await;
    let error = fault(&result);
    assert_eq!(error.type_, WorkflowError::standard_type("expression"));
    assert!(error
        .detail
        .clone()
        .unwrap_or_default()
        .contains("only http and https"));
}

#[tokio::test]
async fn a_task_timeout_interrupts_a_slow_call() {
    let started = std::time::Instant::now();
    let (result, standin) = call(
        "do: [ { s: { call: http, with: { method: get, endpoint: 'http://example.test/slow' }, timeout: { after: { milliseconds: 200 } } } } ]",
        json!({}),
    )
    .await;
    let error = fault(&result);
    assert_eq!(
        (error.status, error.instance.as_deref()),
        (408, Some("/do/0/s"))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(standin.received().len(), 1);
}

#[tokio::test]
async fn bundled_openapi_documents_are_resolved_at_load() {
    let dir = std::env::temp_dir().join(format!("mozaiks-openapi-{}", std::process::id()));
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        let parent = path.parent().unwrap_or(&dir).to_path_buf();
        if let Err(e) = std::fs::create_dir_all(parent).and_then(|()| std::fs::write(&path, text)) {
            panic!("{e}");
        }
    };
    // In a subdirectory: the registry loads the directory's own files as workflows.
    write(
        "openapi/api.yaml",
        "openapi: 3.0.0\nservers: [ { url: 'http://example.test/echo' } ]\npaths:\n  /items/{id}:\n    put:\n      operationId: putItem\n      parameters: [ { name: id, in: path, required: true }, { name: dry, in: query } ]\n      requestBody: { required: true }\n",
    );
    write(
        "flow.yaml",
        &format!(
            "{HEAD}do:\n  - put:\n      call: openapi\n      with:\n        document: {{ endpoint: openapi/api.yaml }}\n        operationId: putItem\n        parameters: {{ id: 5, dry: true, body: {{ a: 1 }} }}\n"
        ),
    );
    let standin = StandIn::start();
    let registry = Registry::load_dir_with(&dir, &options(&standin, &[]));
    let registry = match registry {
        Ok(registry) => registry,
        Err(e) => panic!("{e}"),
    };
    let Some(workflow) = registry.resolve("test/t", None) else {
        panic!("loaded")
    };
    let result = run(&workflow, json!({})).await;
    let out = output(&result);
    assert_eq!(out["method"], json!("PUT"));
    assert_eq!(out["target"], json!("/echo/items/5?dry=true"));
    assert_eq!(out["body"], json!(r#"{"a":1}"#));
    // A wrong operationId stops the load.
    write(
        "flow.yaml",
        &format!("{HEAD}do: [ {{ p: {{ call: openapi, with: {{ document: {{ endpoint: openapi/api.yaml }}, operationId: nope }} }} }} ]\n"),
    );
    let err = Registry::load_dir(&dir)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("/do/0/p/with/document/endpoint"), "{err}");
    assert!(
        err.contains("no operation with operationId `nope`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
