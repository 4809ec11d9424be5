//! Black-box tests: the built `bootstrap` served through a real Lambda Runtime API emulator
//! (tests/support/runtime_api.rs), configured as `make run` configures it (dev/local.env).

#[path = "support/function.rs"]
mod function;
#[path = "support/runtime_api.rs"]
mod runtime_api;

use std::time::Duration;

use base64::Engine as _;
use function::{claims, dev_env, mint, now, payload_of, root, Function, TIMEOUT, WAIT};
use runtime_api::{Deadline, InvokeSpec};
use serde_json::{json, Value};

fn with(mut base: Value, patch: Value) -> Value {
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

fn direct(token: &str, input: Value) -> Value {
    json!({ "launch_token": token, "input": input })
}

fn http_v2(method: &str, path: &str, headers: Value, body: Option<&str>, base64: bool) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "24/Nov/2026:22:52:21 +0000", "timeEpoch": 1795560741000u64,
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" }
        },
        "body": body,
        "isBase64Encoded": base64,
    })
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(root().join("events").join(name)).unwrap_or_else(|e| panic!("events/{name}: {e}"))
}

#[test]
fn sample_direct_invocation_completes_and_emits_its_usage_event() {
    let f = Function::spawn(&dev_env());
    let event = sample("direct.json");
    let r = f.invoke(&event);
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(
        r["workflow"],
        json!({"namespace": "mozaiks", "name": "hello", "version": "1.0.0"})
    );
    assert_eq!(r["output"]["greeting"], "Hello, Ada!", "{r}");
    let execution_id = r["execution_id"].as_str().unwrap();
    assert_eq!(r["output"]["execution_id"], execution_id);
    assert!(r.get("error").is_none());

    let usage = f.usage_of(execution_id);
    assert_eq!(usage["Source"], "mozaiks.runtime");
    assert_eq!(usage["DetailType"], "mozaiks.usage.execution");
    let detail = &usage["Detail"];
    assert_eq!(detail["status"], "completed");
    assert_eq!(detail["schema_version"], "1");
    assert_eq!(detail["sequence"], 1);
    assert!(detail["tasks_executed"].as_u64().unwrap() >= 1, "{detail}");
    assert_eq!(detail["workflow"], r["workflow"]);
    // input_bytes counts the input as received (the sample is pretty-printed).
    let raw: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_slice(&event).unwrap();
    assert_eq!(detail["input_bytes"], raw["input"].get().len());
    assert_eq!(detail["output_bytes"], r["output"].to_string().len());
    // The context is the signed claim set, unchanged.
    let sent: Value = serde_json::from_slice(&event).unwrap();
    let token = sent["launch_token"].as_str().unwrap();
    let signed: Value = serde_json::from_str(&payload_of(token)).unwrap();
    assert_eq!(detail["context"], signed);
    // The raw line carries the claims byte for byte.
    let line = f
        .process
        .stdout_lines()
        .into_iter()
        .find(|l| l.contains(execution_id) && l.starts_with(r#"{"usage_event""#))
        .unwrap();
    assert!(line.contains(&payload_of(token)));
}

#[test]
fn every_event_sample_gets_the_right_answer() {
    let f = Function::spawn(&dev_env());
    let mut names: Vec<String> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "alb.json",
            "apigw-v1.json",
            "apigw-v2.json",
            "direct.json",
            "function-url.json"
        ]
    );
    for name in names {
        let r = f.invoke(&sample(&name));
        let result: Value = if name == "direct.json" {
            r.clone()
        } else {
            assert_eq!(r["statusCode"], 200, "{name}: {r}");
            let headers = &r["headers"];
            assert_eq!(headers["content-type"], "application/json", "{name}: {r}");
            if name == "alb.json" {
                assert_eq!(r["statusDescription"], "200 OK");
                assert_eq!(
                    r["multiValueHeaders"]["content-type"],
                    json!(["application/json"])
                );
            }
            assert_eq!(r["isBase64Encoded"], false);
            serde_json::from_str(r["body"].as_str().unwrap()).unwrap()
        };
        assert_eq!(result["status"], "completed", "{name}: {result}");
        assert_eq!(
            result["output"]["greeting"], "Hello, Ada!",
            "{name}: {result}"
        );
        f.usage_of(result["execution_id"].as_str().unwrap());
    }
}

/// Every caller fault is an answer (never a function error); the next invocation still works;
/// nothing that was rejected emits usage.
#[test]
fn caller_faults_are_answers_and_the_function_keeps_serving() {
    let f = Function::spawn(&dev_env());
    let good = mint(&claims());
    let bearer = |t: &str| json!({ "authorization": format!("Bearer {t}"), "content-type": "application/json" });
    let six_mb = format!(r#"{{"blob":"{}"}}"#, "x".repeat(6 * 1024 * 1024));

    let direct_cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("not JSON", b"{not json".to_vec(), 400),
        ("array", b"[]".to_vec(), 400),
        (
            "unknown field",
            direct(&good, json!({}))
                .to_string()
                .replace("\"input\"", "\"inputs\"")
                .into_bytes(),
            400,
        ),
        (
            "token not a string",
            br#"{"launch_token": 42}"#.to_vec(),
            400,
        ),
        ("missing token", br#"{"input": {}}"#.to_vec(), 401),
        (
            "garbage token",
            direct("abc.def.ghi", json!({})).to_string().into_bytes(),
            401,
        ),
        (
            "expired",
            direct(
                &mint(&with(
                    claims(),
                    json!({"exp": now() - 3600, "iat": now() - 7200}),
                )),
                json!({}),
            )
            .to_string()
            .into_bytes(),
            401,
        ),
        (
            "wrong audience",
            direct(
                &mint(&with(claims(), json!({"aud": "someone-else"}))),
                json!({}),
            )
            .to_string()
            .into_bytes(),
            401,
        ),
        (
            "no scope",
            direct(
                &mint(&with(claims(), json!({"scope": "other:thing"}))),
                json!({}),
            )
            .to_string()
            .into_bytes(),
            403,
        ),
        (
            "unknown workflow",
            direct(
                &mint(&with(claims(), json!({"workflow_id": "nope"}))),
                json!({}),
            )
            .to_string()
            .into_bytes(),
            404,
        ),
        (
            "continuation never issued",
            json!({"launch_token": good, "continuation": "forged"})
                .to_string()
                .into_bytes(),
            400,
        ),
        (
            "6 MB input",
            format!(r#"{{"launch_token":"{good}","input":{six_mb}}}"#).into_bytes(),
            413,
        ),
    ];
    for (what, event, status) in direct_cases {
        let r = f.invoke(&event);
        assert_eq!(r["status"], "rejected", "{what}: {r}");
        assert_eq!(r["error"]["status"], status, "{what}: {r}");
        assert!(
            r["error"]["type"].as_str().unwrap().starts_with("https://"),
            "{what}"
        );
        assert!(r.get("workflow").is_none(), "{what}");
        assert!(
            !r.to_string().contains(&good),
            "{what}: the token is echoed"
        );
        let ok = f.invoke_json(&direct(&good, json!({"name": "Bo"})));
        assert_eq!(ok["status"], "completed", "after {what}: {ok}");
    }

    let b64 = base64::engine::general_purpose::STANDARD.encode(br#"{"name":"Cy"}"#);
    let http_cases: Vec<(&str, Value, u64)> = vec![
        (
            "other path",
            http_v2("POST", "/other", bearer(&good), Some("{}"), false),
            404,
        ),
        (
            "nested path",
            http_v2("POST", "/a/b/executions", bearer(&good), Some("{}"), false),
            404,
        ),
        (
            "GET",
            http_v2("GET", "/executions", bearer(&good), None, false),
            405,
        ),
        (
            "no authorization",
            http_v2(
                "POST",
                "/executions",
                json!({"content-type": "application/json"}),
                Some("{}"),
                false,
            ),
            401,
        ),
        (
            "basic auth",
            http_v2(
                "POST",
                "/executions",
                json!({"authorization": "Basic dXNlcg==", "content-type": "application/json"}),
                Some("{}"),
                false,
            ),
            401,
        ),
        (
            "no scope",
            http_v2(
                "POST",
                "/executions",
                bearer(&mint(&with(claims(), json!({"scope": null})))),
                Some("{}"),
                false,
            ),
            403,
        ),
        (
            "text/plain",
            http_v2(
                "POST",
                "/executions",
                json!({"authorization": format!("Bearer {good}"), "content-type": "text/plain"}),
                Some("{}"),
                false,
            ),
            415,
        ),
        (
            "no content type",
            http_v2(
                "POST",
                "/executions",
                json!({"authorization": format!("Bearer {good}")}),
                Some("{}"),
                false,
            ),
            415,
        ),
        (
            "not JSON",
            http_v2("POST", "/executions", bearer(&good), Some("{oops"), false),
            400,
        ),
        (
            "bad base64",
            http_v2("POST", "/executions", bearer(&good), Some("%%%"), true),
            400,
        ),
        (
            "6 MB body",
            http_v2("POST", "/executions", bearer(&good), Some(&six_mb), false),
            413,
        ),
        (
            "unknown workflow",
            http_v2(
                "POST",
                "/executions",
                bearer(&mint(&with(claims(), json!({"workflow_id": "nope"})))),
                Some("{}"),
                false,
            ),
            404,
        ),
    ];
    for (what, event, status) in http_cases {
        let r = f.invoke_json(&event);
        assert_eq!(r["statusCode"], status, "{what}: {r}");
        assert_eq!(
            r["headers"]["content-type"], "application/problem+json",
            "{what}: {r}"
        );
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["status"], status, "{what}: {body}");
        assert!(
            !r.to_string().contains(&good),
            "{what}: the token is echoed"
        );
        match status {
            401 => assert_eq!(
                r["headers"]["www-authenticate"], r#"Bearer error="invalid_token""#,
                "{what}"
            ),
            403 => assert_eq!(
                r["headers"]["www-authenticate"],
                r#"Bearer error="insufficient_scope", scope="workflow:execute""#
            ),
            405 => assert_eq!(r["headers"]["allow"], "POST"),
            _ => assert!(r["headers"].get("www-authenticate").is_none(), "{what}"),
        }
    }

    // A base64-encoded JSON body (API Gateway binary media types) is decoded and runs.
    let r = f.invoke_json(&http_v2(
        "POST",
        "/prod/executions",
        bearer(&good),
        Some(&b64),
        true,
    ));
    assert_eq!(r["statusCode"], 200, "{r}");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["output"]["greeting"], "Hello, Cy!");

    // Only executions that ran emitted usage: the 12 good direct runs and the base64 run.
    let lines = f
        .process
        .wait_stdout_matches(|l| l.starts_with(r#"{"usage_event""#), 13, WAIT);
    assert_eq!(lines.len(), 13, "{lines:?}");
    let usage = f.usage_events();
    assert_eq!(usage.len(), 13, "{usage:?}");
    assert!(usage.iter().all(|u| u["Detail"]["status"] == "completed"));
    assert!(
        f.process.wait_exit(Duration::from_millis(1)).is_none(),
        "the function died"
    );
}

#[test]
fn a_run_cut_by_the_deadline_faults_with_the_timeout_error_and_still_emits_usage() {
    let f = Function::spawn(&dev_env());
    let token = mint(&claims());
    // 200 ms left is inside the usage reserve (500 ms): the run has no time at all.
    let mut spec = InvokeSpec::new(direct(&token, json!({})).to_string().as_bytes(), TIMEOUT);
    spec.deadline = Deadline::AfterDelivery(Duration::from_millis(200));
    let r = f.invoke_spec(spec);
    assert_eq!(r["status"], "faulted", "{r}");
    assert_eq!(
        r["error"]["type"],
        "https://serverlessworkflow.io/spec/1.0.0/errors/timeout"
    );
    assert_eq!(r["error"]["status"], 408);
    let usage = f.usage_of(r["execution_id"].as_str().unwrap());
    assert_eq!(usage["Detail"]["status"], "faulted");
}

#[test]
fn logs_are_json_lines_with_request_and_execution_ids_and_never_a_token() {
    let f = Function::spawn(&dev_env());
    let claims = claims();
    let token = mint(&claims);
    let r = f.invoke_json(&direct(&token, json!({"name": "Di"})));
    assert_eq!(r["status"], "completed");
    let bad = f.invoke_json(&direct(
        &mint(&with(claims.clone(), json!({"exp": now() - 3600}))),
        json!({}),
    ));
    assert_eq!(bad["status"], "rejected");
    let execution_ids = [
        r["execution_id"].as_str().unwrap(),
        bad["execution_id"].as_str().unwrap(),
    ];

    // Log lines travel through a pipe: wait for each execution's last line before reading.
    for (id, last) in execution_ids
        .iter()
        .zip(["execution finished", "execution rejected"])
    {
        f.process
            .wait_stdout_line(|l| l.contains(id) && l.contains(last), WAIT)
            .unwrap_or_else(|| panic!("no `{last}` log line for {id}"));
    }
    let lines = f.process.stdout_lines();
    let logs: Vec<Value> = lines
        .iter()
        .filter(|l| !l.starts_with(r#"{"usage_event""#))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    for id in execution_ids {
        let of_execution: Vec<&Value> =
            logs.iter().filter(|l| l.to_string().contains(id)).collect();
        assert!(!of_execution.is_empty(), "no log line for {id}");
        for line in of_execution {
            let spans = line["spans"].as_array().expect("span list");
            assert!(spans.iter().any(|s| s["requestId"].is_string()), "{line}");
            assert!(spans.iter().any(|s| s["execution_id"] == id), "{line}");
        }
    }
    // The rejection is logged with its reason, without the token or any claim value.
    assert!(
        logs.iter().any(|l| l["fields"]["reason"] == "expired"),
        "{logs:?}"
    );
    for line in lines.iter().chain(f.process.stderr_lines().iter()) {
        if line.starts_with(r#"{"usage_event""#) {
            continue; // usage events carry the context by design (CONTRACT §7)
        }
        assert!(!line.contains(&token), "token logged: {line}");
        for value in ["app-42", "chat-7", "user-1"] {
            assert!(!line.contains(value), "claim value {value} logged: {line}");
        }
    }
}

#[test]
fn the_function_refuses_to_start_without_keys_and_says_which_variable() {
    let env: Vec<(String, String)> = dev_env()
        .into_iter()
        .filter(|(k, _)| k != "MOZAIKS_JWT_JWKS_FILE")
        .collect();
    let f = Function::spawn(&env);
    let init = f.api.wait_init_error(WAIT).expect("init error reported");
    assert_eq!(
        init.error_type.as_deref(),
        Some("Runtime.ConfigurationError")
    );
    let body: Value = serde_json::from_slice(&init.body).unwrap();
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("MOZAIKS_JWT_JWKS"),
        "{body}"
    );
    let status = f.process.wait_exit(WAIT).expect("the process exits");
    assert!(!status.success());
}

#[test]
fn the_function_refuses_to_start_on_an_invalid_workflow_and_names_the_file() {
    let dir = std::env::temp_dir().join(format!("mozaiks-bad-bundle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("broken.yaml"),
        "document: { dsl: '1.0.0', namespace: t, name: broken, version: '1.0.0' }\ndo:\n  - a:\n      set:\n        x: '${ .a | }'\n",
    )
    .unwrap();
    let mut env = dev_env();
    env.retain(|(k, _)| k != "MOZAIKS_WORKFLOWS_DIR");
    env.push(("MOZAIKS_WORKFLOWS_DIR".into(), dir.display().to_string()));
    let f = Function::spawn(&env);
    let init = f.api.wait_init_error(WAIT).expect("init error reported");
    let message = serde_json::from_slice::<Value>(&init.body).unwrap()["errorMessage"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("broken.yaml"), "{message}");
    assert!(message.contains("/do/0/a/set/x"), "{message}");
    assert!(f.process.wait_exit(WAIT).is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}
