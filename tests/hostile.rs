//! Hostile input against the built `bootstrap` (issue 13): events with more headers than any
//! front door forwards, header bytes that carry a token, payloads that are not UTF-8,
//! expressions that compute past the deadline or recurse as deep as their input asks, and
//! errors that would quote a secret. Each must get a clear answer, lose no usage event, and
//! leave the function serving (or, for a run still computing at its deadline, answer and then
//! end the process so Lambda starts a fresh one).

#[path = "support/function.rs"]
mod function;
#[path = "support/runtime_api.rs"]
mod runtime_api;

use std::time::Duration;

use function::{claims, dev_env, mint, root, Function, TIMEOUT, WAIT};
use runtime_api::{InvokeSpec, Outcome};
use serde_json::{json, Value};

fn sample(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join("events").join(name)).unwrap()).unwrap()
}

fn token_for(workflow: &str) -> String {
    let mut c = claims();
    c["workflow_id"] = workflow.into();
    mint(&c)
}

/// The value of the `probe` secret that `secret.yaml` declares.
const SECRET: &str = "sk-live-7Hq2vN9xRb4Lm0Pz";

/// The function with the workflows of tests/fixtures/hostile_workflows (the secret `probe`
/// set to [`SECRET`]) and `extra` variables.
fn hostile_function(extra: &[(&str, &str)]) -> Function {
    let mut env = dev_env();
    env.push(("MOZAIKS_SECRET_PROBE".into(), SECRET.into()));
    env.retain(|(k, _)| k != "MOZAIKS_WORKFLOWS_DIR");
    env.push((
        "MOZAIKS_WORKFLOWS_DIR".into(),
        "tests/fixtures/hostile_workflows".into(),
    ));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Function::start(&env)
}

fn body_of(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().expect("an HTTP body")).expect("JSON body")
}

/// The sample event works: the function is still serving.
fn still_serves(f: &Function) {
    let r = f.invoke_json(&sample("direct.json"));
    assert_eq!(r["status"], "completed", "{r}");
}

#[test]
fn many_headers_are_a_431_and_the_function_keeps_serving() {
    let f = Function::start(&dev_env());
    let many: serde_json::Map<String, Value> = (0..25_000)
        .map(|i| (format!("x-h{i}"), json!("v")))
        .collect();
    let many_multi: serde_json::Map<String, Value> =
        many.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
    let mut v2 = sample("apigw-v2.json");
    v2["headers"] = many.clone().into();
    let mut v1 = sample("apigw-v1.json");
    v1["multiValueHeaders"] = many_multi.clone().into();
    let mut alb = sample("alb.json");
    alb["headers"] = many.into();
    for (origin, event) in [("v2", v2), ("v1", v1), ("alb", alb)] {
        let r = f.invoke_json(&event);
        assert_eq!(r["statusCode"], 431, "{origin}: {r}");
        let problem = body_of(&r);
        assert_eq!(
            problem["type"], "https://mozaiks.ai/problems/runtime/headers-too-large",
            "{origin}: {problem}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains("1024"),
            "{problem}"
        );
        still_serves(&f);
    }
    assert!(!f.process.has_exited());
}

#[test]
fn header_bytes_that_carry_a_token_are_refused_without_echoing_it() {
    let f = Function::start(&dev_env());
    let token = mint(&claims());
    let signature = token.rsplit('.').next().unwrap().to_owned();
    for (what, value) in [
        ("DEL after", format!("Bearer {token}\u{7f}")),
        ("newline inside", {
            let (head, tail) = token.split_at(40);
            format!("Bearer {head}\n{tail}")
        }),
        ("NUL after", format!("Bearer {token}\u{0}")),
    ] {
        for origin in ["apigw-v2.json", "apigw-v1.json", "alb.json"] {
            let mut event = sample(origin);
            event["headers"] =
                json!({ "authorization": value, "content-type": "application/json" });
            if event.get("multiValueHeaders").is_some() {
                event["multiValueHeaders"] = json!({ "authorization": [value] });
            }
            let r = f.invoke_json(&event);
            let text = r.to_string();
            assert_eq!(r["statusCode"], 400, "{what} {origin}: {r}");
            assert!(
                !text.contains(&signature) && !text.contains("eyJ"),
                "{what} {origin}: the answer carries the token: {text}"
            );
            let problem = body_of(&r);
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains("`authorization`"),
                "{problem}"
            );
        }
    }
    // A direct payload with a token where a field name goes.
    let r = f.invoke_json(&json!({ token.clone(): 1 }));
    assert_eq!(r["status"], "rejected");
    assert!(!r.to_string().contains(&signature), "{r}");
    // Nothing the function printed carries it either.
    let printed = f.process.stdout_lines().join("\n") + &f.process.stderr_lines().join("\n");
    assert!(!printed.contains(&signature));
    still_serves(&f);
}

#[test]
fn a_payload_that_is_not_utf8_is_a_rejected_answer_not_a_function_error() {
    let f = Function::start(&dev_env());
    for bytes in [
        &b"{\"launch_token\":\"\xff\xfe\"}"[..],
        b"{\"input\":{\"a\":\"\xc3\x28\"}}",
        b"\xef\xbb\xbf{}",
    ] {
        let id = f.api.submit(InvokeSpec::new(bytes, TIMEOUT)).unwrap();
        let invocation = f.api.wait_for(&id, WAIT).unwrap();
        let Outcome::Response(body) = &invocation.outcome else {
            panic!("a function error: {}", invocation.outcome.body_text());
        };
        let r: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(r["status"], "rejected", "{r}");
        assert_eq!(r["error"]["status"], 400, "{r}");
    }
    still_serves(&f);
}

#[test]
fn a_computation_past_the_deadline_faults_in_time_emits_usage_and_ends_the_process() {
    let f = hostile_function(&[]);
    let event = json!({ "launch_token": token_for("compute"), "input": { "n": 1_000_000_000u64 } });
    let deadline = Duration::from_secs(3);
    let (r, _, took) = f.invoke_timed(event.to_string().as_bytes(), deadline);
    assert_eq!(r["status"], "faulted", "{r}");
    assert_eq!(
        r["error"]["type"],
        "https://serverlessworkflow.io/spec/1.0.0/errors/timeout"
    );
    assert_eq!(r["error"]["instance"], "/do/0/count");
    assert!(took < deadline, "answered after {took:?}");
    let execution_id = r["execution_id"].as_str().unwrap();
    let usage = f.usage_of(execution_id);
    assert_eq!(usage["Detail"]["status"], "faulted");
    assert_eq!(usage["Detail"]["tasks_executed"], 1);
    // The engine thread is still computing: the process ends once it has answered.
    let status = f
        .process
        .wait_exit(WAIT)
        .expect("the process ends after answering");
    assert!(status.success(), "{status:?}");
}

#[test]
fn deep_recursion_faults_and_the_function_keeps_serving() {
    let f = hostile_function(&[]);
    let run = |n: u64| {
        f.invoke_json(&json!({ "launch_token": token_for("recurse"), "input": { "n": n } }))
    };
    // 10,000 levels: computed where the engine's stack allows it (release builds), else the
    // recursion error; never a crash.
    let r = run(10_000);
    match r["status"].as_str() {
        Some("completed") => assert_eq!(r["output"]["depth"], 10_000),
        Some("faulted") => assert!(r["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("recursed too deeply")),
        _ => panic!("{r}"),
    }
    let r = run(10_000_000);
    assert_eq!(r["status"], "faulted", "{r}");
    assert_eq!(
        r["error"]["type"],
        "https://serverlessworkflow.io/spec/1.0.0/errors/expression"
    );
    assert!(r["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("recursed too deeply"));
    let usage = f.usage_of(r["execution_id"].as_str().unwrap());
    assert_eq!(usage["Detail"]["status"], "faulted");
    let r = run(50);
    assert_eq!(r["output"]["depth"], 50, "{r}");
    assert!(!f.process.has_exited());
}

#[test]
fn a_secret_never_reaches_an_answer_an_event_or_a_log_line() {
    let secret = SECRET;
    let f = hostile_function(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]);
    let mut answers = Vec::new();
    for copy in [false, true] {
        let r = f.invoke_json(
            &json!({ "launch_token": token_for("secret"), "input": { "copy": copy } }),
        );
        assert_eq!(r["status"], "faulted", "{r}");
        assert!(
            r["error"]["detail"]
                .as_str()
                .unwrap()
                .contains("[redacted]"),
            "{r}"
        );
        f.usage_of(r["execution_id"].as_str().unwrap());
        answers.push(r.to_string());
    }
    let everything = answers.join("\n")
        + &f.process.stdout_lines().join("\n")
        + &f.process.stderr_lines().join("\n");
    for needle in [secret, &secret.to_ascii_lowercase(), "7Hq2vN9x"] {
        assert!(
            !everything.contains(needle),
            "{needle} was printed or answered:\n{everything}"
        );
    }
}
