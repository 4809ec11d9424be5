//! Black-box tests of continuations (CONTRACT §2a) through the built `bootstrap`, configured as
//! `make run` configures it (dev/local.env, with its development continuation key).
//!
//! These drive what the host decides on its own, against the bundled `hello` (which never
//! waits): continuations sealed here with the development key (authentic, bound to the caller)
//! that the workflow cannot resume, forged, foreign and expired ones, both entry points, and a
//! bad key at init. The waiting → resume round trip of an agent conversation, and refusals of
//! its real continuations, are in tests/agents_blackbox.rs.

#[path = "support/function.rs"]
mod function;
#[path = "support/runtime_api.rs"]
mod runtime_api;

use function::{claims, dev_env, mint, Function, WAIT};
use mozaiks_runtime::continuation::{Binding, Key, Sealer};
use mozaiks_runtime::workflow::WorkflowId;
use serde_json::{json, Value};

const PROBLEM: &str = "https://mozaiks.ai/problems/runtime/invalid-continuation";

fn dev_sealer() -> Sealer {
    let env = dev_env();
    let (_, key) = env
        .iter()
        .find(|(k, _)| k == "MOZAIKS_CONTINUATION_KEY")
        .expect("dev/local.env sets MOZAIKS_CONTINUATION_KEY");
    Sealer::new(
        Key::from_base64(key).expect("dev key"),
        Vec::new(),
        3600,
        1 << 20,
    )
}

fn hello() -> WorkflowId {
    WorkflowId {
        namespace: "mozaiks".into(),
        name: "hello".into(),
        version: "1.0.0".into(),
    }
}

fn seal(claims: &Value, now: u64) -> String {
    dev_sealer()
        .seal(
            &Binding::new(&hello(), claims),
            "issuer-exec",
            &json!({ "at": "/do/0" }),
            now,
        )
        .expect("seals")
}

fn direct(token: &str, continuation: &str) -> Value {
    json!({ "launch_token": token, "input": { "name": "Ada" }, "continuation": continuation })
}

fn assert_refused(r: &Value) {
    assert_eq!(r["status"], "rejected", "{r}");
    assert_eq!(r["error"]["type"], PROBLEM, "{r}");
    assert_eq!(r["error"]["status"], 400, "{r}");
    assert!(
        r.get("workflow").is_none() && r.get("output").is_none(),
        "{r}"
    );
}

/// Waits for the `execution rejected` log line of `r` and returns its `continuation` reason.
fn logged_reason(f: &Function, r: &Value) -> String {
    let id = r["execution_id"].as_str().unwrap();
    let line = f
        .process
        .wait_stdout_line(|l| l.contains(id) && l.contains("execution rejected"), WAIT)
        .unwrap_or_else(|| panic!("no rejection log for {id}\n{}", f.process.output_report()));
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["fields"]["reason"], "invalid_continuation", "{line}");
    line["fields"]["continuation"].as_str().unwrap().to_owned()
}

#[test]
fn refused_continuations_are_400_with_the_reason_in_the_logs_only() {
    let f = Function::spawn(&dev_env());
    let owner = claims();
    let token = mint(&owner);
    let now = function::now();
    let valid = seal(&owner, now);

    let mut foreign_claims = owner.clone();
    foreign_claims["chat_id"] = json!("chat-other");
    let mut forged = valid.clone().into_bytes();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let cases = [
        // Authentic and bound to this caller, but `hello` has no task that waits.
        (valid.clone(), token.clone(), "unresumable"),
        (forged, token.clone(), "tampered"),
        (valid.clone(), mint(&foreign_claims), "foreign"),
        (seal(&owner, now - 7200), token.clone(), "expired"),
        ("not-a-continuation".to_owned(), token.clone(), "malformed"),
        ("x".repeat(2 << 20), token.clone(), "too_large"),
    ];
    let mut rejected = Vec::new();
    for (continuation, token, reason) in &cases {
        let r = f.invoke_json(&direct(token, continuation));
        assert_refused(&r);
        let body = r.to_string();
        assert!(!body.contains(reason), "the reason leaked: {body}");
        assert_eq!(logged_reason(&f, &r), *reason);
        rejected.push(r["execution_id"].as_str().unwrap().to_owned());
    }

    // The next invocation runs as ever; only it emits usage.
    let r = f.invoke_json(&json!({ "launch_token": token, "input": { "name": "Ada" } }));
    assert_eq!(r["status"], "completed", "{r}");
    assert!(r.get("continuation").is_none());
    f.usage_of(r["execution_id"].as_str().unwrap());
    let usage = f.usage_events();
    for id in &rejected {
        assert!(
            !usage
                .iter()
                .any(|e| e["Detail"]["execution_id"] == id.as_str()),
            "a rejected request emitted usage"
        );
    }
    // No log line carries a continuation.
    for line in f
        .process
        .stdout_lines()
        .iter()
        .chain(f.process.stderr_lines().iter())
    {
        assert!(!line.contains(&valid[..40]), "continuation logged: {line}");
    }
}

#[test]
fn http_takes_the_continuation_from_its_header() {
    let f = Function::spawn(&dev_env());
    let owner = claims();
    let token = mint(&owner);
    let event = |headers: Value| {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/executions", "rawQueryString": "",
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
                "domainPrefix": "api", "requestId": "r", "routeKey": "$default", "stage": "$default",
                "time": "24/Nov/2026:22:52:21 +0000", "timeEpoch": 1795560741000u64,
                "http": { "method": "POST", "path": "/executions", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" }
            },
            "body": r#"{"name":"Ada"}"#, "isBase64Encoded": false,
        })
    };
    let headers = |continuation: Option<&str>| {
        let mut h = json!({ "authorization": format!("Bearer {token}"), "content-type": "application/json" });
        if let Some(c) = continuation {
            h["mozaiks-continuation"] = json!(c);
        }
        h
    };
    for (continuation, reason) in [
        (seal(&owner, function::now()), "unresumable"),
        ("Zm9yZ2Vk".to_owned(), "malformed"),
        ("   ".to_owned(), "malformed"),
    ] {
        let r = f.invoke_json(&event(headers(Some(&continuation))));
        assert_eq!(r["statusCode"], 400, "{r}");
        assert_eq!(
            r["headers"]["content-type"], "application/problem+json",
            "{r}"
        );
        let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["type"], PROBLEM, "{body}");
        assert_eq!(body["status"], 400);
        let id = body["execution_id"].as_str().unwrap();
        assert_eq!(logged_reason(&f, &json!({ "execution_id": id })), reason);
    }
    let r = f.invoke_json(&event(headers(None)));
    assert_eq!(r["statusCode"], 200, "{r}");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "completed", "{body}");
}

#[test]
fn a_bad_continuation_key_stops_the_start_naming_the_variable() {
    for bad in ["c2hvcnQ=", "not base64!"] {
        let env: Vec<(String, String)> = dev_env()
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "MOZAIKS_CONTINUATION_KEY" => (k, bad.to_owned()),
                _ => (k, v),
            })
            .collect();
        let f = Function::spawn(&env);
        let init = f.api.wait_init_error(WAIT).expect("init error reported");
        assert_eq!(
            init.error_type.as_deref(),
            Some("Runtime.ConfigurationError")
        );
        let body: Value = serde_json::from_slice(&init.body).unwrap();
        let message = body["errorMessage"].as_str().unwrap();
        assert!(
            message.starts_with("MOZAIKS_CONTINUATION_KEY: "),
            "{message}"
        );
        assert!(!message.contains(bad), "the key was echoed: {message}");
        assert!(!f
            .process
            .wait_exit(WAIT)
            .expect("the process exits")
            .success());
    }
}
