//! Agent conversations through the built `bootstrap` (issue 6; CONTRACT §2, §2a, §3, §7): the
//! workflows of tests/fixtures/agents_workflows, model calls answered by the scripted
//! OpenAI-compatible stand-in on loopback (`OPENAI_BASE_URL`), the development continuation key
//! of dev/local.env.
//!
//! - a run hands the conversation back to the user and ends `waiting`; a fresh launch token for
//!   the same caller plus its continuation resumes it where it stopped (the model sees the whole
//!   conversation), it waits again, and the second resume completes — directly and over HTTP
//!   (`Mozaiks-Continuation`);
//! - foreign, expired and tampered continuations are refused with a 400 problem, and the next
//!   invocation still resumes;
//! - usage on an EventBridge bus (moto): one `mozaiks.usage.llm` event per model call with the
//!   stand-in's token counts, before the execution event whose `llm` totals sum them; a provider
//!   failure faults `communication` and still reports the calls that answered;
//! - without `MOZAIKS_CONTINUATION_KEY` the start warns about the workflow that can wait, and its
//!   waiting run faults with a `configuration` error naming the variable.

#[path = "support/function.rs"]
mod function;
#[path = "../crates/workflow/src/tests/openai_standin.rs"]
mod openai_standin;
#[path = "support/runtime_api.rs"]
mod runtime_api;
#[path = "support/usage.rs"]
mod usage;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use function::{claims, dev_env, mint, now, payload_json, root, Function, STDOUT_EVENT, WAIT};
use mozaiks_runtime::continuation::{Binding, Key, Sealer};
use mozaiks_runtime::usage::events::event_id;
use mozaiks_runtime::workflow::WorkflowId;
use openai_standin::{error, text, tool_calls, usage as tokens, OpenAiStandIn, Reply};
use serde_json::{json, Value};
use usage::{validate_details, Moto};

const CONTINUATION_PROBLEM: &str = "https://mozaiks.ai/problems/runtime/invalid-continuation";
const DSL_ERRORS: &str = "https://serverlessworkflow.io/spec/1.0.0/errors/";
/// `MOZAIKS_DEFAULT_MODEL` in these tests: the model of agents that name none.
const DEFAULT_MODEL: &str = "standin-default";
const BUS: &str = "mozaiks-usage-agents";
const SOURCE: &str = "mozaiks.runtime";

// ───────────────────────────── helpers ─────────────────────────────

/// `dev_env()` with `changes` applied: `Some` sets (or replaces) a variable, `None` removes it.
fn env_with(changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = dev_env()
        .into_iter()
        .filter(|(k, _)| !changes.iter().any(|(name, _)| name == k))
        .collect();
    for (name, value) in changes {
        if let Some(value) = value {
            env.push(((*name).to_owned(), (*value).to_owned()));
        }
    }
    env
}

/// The environment of `make run`, with the fixture workflows and the stand-in as provider.
fn agents_env(standin: &OpenAiStandIn, extra: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let dir = root().join("tests/fixtures/agents_workflows");
    let dir = dir.display().to_string();
    let base_url = standin.base_url();
    let mut changes: Vec<(&str, Option<&str>)> = vec![
        ("MOZAIKS_WORKFLOWS_DIR", Some(&dir)),
        ("OPENAI_BASE_URL", Some(&base_url)),
        ("OPENAI_API_KEY", Some("sk-e2e")),
        ("MOZAIKS_DEFAULT_MODEL", Some(DEFAULT_MODEL)),
    ];
    changes.extend_from_slice(extra);
    env_with(&changes)
}

fn desk_id() -> WorkflowId {
    WorkflowId {
        namespace: "e2e".into(),
        name: "support-desk".into(),
        version: "1.0.0".into(),
    }
}

/// The claims of a caller of the support desk (sub, app_id, user_id, chat_id from `claims()`).
fn desk_claims() -> Value {
    let mut claims = claims();
    claims["workflow_id"] = json!("support-desk");
    claims
}

/// A fresh launch token for the same claims: its own `jti`, `iat` and `exp`.
fn fresh_token(claims: &Value) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let mut claims = claims.clone();
    claims["jti"] = json!(format!("token-{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
    claims["iat"] = json!(now());
    claims["exp"] = json!(now() + 300);
    mint(&claims)
}

fn direct(token: &str, input: Value, continuation: Option<&str>) -> Value {
    let mut event = json!({ "launch_token": token, "input": input });
    if let Some(continuation) = continuation {
        event["continuation"] = json!(continuation);
    }
    event
}

/// An API Gateway HTTP API (v2) `POST /executions` with the token, `body` and, when given,
/// the `Mozaiks-Continuation` header.
fn http_event(token: &str, body: &Value, continuation: Option<&str>) -> Value {
    let mut headers = json!({
        "authorization": format!("Bearer {token}"),
        "content-type": "application/json",
    });
    if let Some(continuation) = continuation {
        headers["mozaiks-continuation"] = json!(continuation);
    }
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/executions", "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "24/Nov/2026:22:52:21 +0000", "timeEpoch": 1795560741000u64,
            "http": { "method": "POST", "path": "/executions", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" }
        },
        "body": body.to_string(), "isBase64Encoded": false,
    })
}

/// The JSON body of an HTTP answer, after checking its status code.
fn http_body(answer: &Value, status: u16) -> Value {
    assert_eq!(answer["statusCode"], status, "{answer}");
    let body = answer["body"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"));
    serde_json::from_str(body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {answer}"))
}

/// A `waiting` response's continuation, after checking the response's shape.
fn waiting(r: &Value) -> String {
    assert_eq!(r["status"], "waiting", "{r}");
    assert_eq!(r["workflow"], json!(desk_id()), "{r}");
    assert!(r.get("error").is_none(), "{r}");
    let continuation = r["continuation"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(continuation.len() > 40, "{r}");
    continuation.to_owned()
}

fn assistant(agent: &str, content: &str) -> Value {
    json!({ "role": "assistant", "name": agent, "content": content })
}

fn user(content: &str) -> Value {
    json!({ "role": "user", "content": content })
}

/// The conversation the model is sent: `messages` without the system message.
fn history(request: &openai_standin::Recorded) -> Vec<Value> {
    request.body["messages"]
        .as_array()
        .map(|m| m[1..].to_vec())
        .unwrap_or_default()
}

/// The parsed JSON log lines on stdout (not usage lines).
fn logs(f: &Function) -> Vec<Value> {
    f.process
        .stdout_lines()
        .iter()
        .filter(|l| !l.starts_with(STDOUT_EVENT))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// Waits for the `execution rejected` log line of `execution_id`; its `continuation` reason.
fn logged_reason(f: &Function, execution_id: &str) -> String {
    let line = f
        .process
        .wait_stdout_line(
            |l| l.contains(execution_id) && l.contains("execution rejected"),
            WAIT,
        )
        .unwrap_or_else(|| {
            panic!(
                "no rejection log for {execution_id}\n{}",
                f.process.output_report()
            )
        });
    let line: Value = serde_json::from_str(&line).unwrap_or_default();
    line["fields"]["continuation"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The dev continuation key's sealer (dev/local.env), as the function builds it.
fn dev_sealer() -> Sealer {
    let env = dev_env();
    let key = env
        .iter()
        .find(|(k, _)| k == "MOZAIKS_CONTINUATION_KEY")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let key = Key::from_base64(key).unwrap_or_else(|e| panic!("dev continuation key: {e}"));
    Sealer::new(key, Vec::new(), 3600, 1 << 20)
}

/// The desk's first turn (the Desk asks back) and the resumed turns (Desk hands off to
/// Orders, which answers and asks back; then Orders ends the conversation).
fn desk_script() -> Vec<Reply> {
    vec![
        text("Hello! What can I do for you?", tokens(11, 7, 0)),
        tool_calls(
            &[("call_1", "transfer_to_Orders", json!({}))],
            tokens(40, 5, 16),
        ),
        text(
            "Order 42 shipped yesterday. Anything else?",
            tokens(60, 9, 32),
        ),
        tool_calls(
            &[("call_2", "transfer_to_terminate", json!({}))],
            tokens(80, 4, 48),
        ),
    ]
}

// ───────────────────────────── direct and HTTP ─────────────────────────────

#[test]
fn a_conversation_waits_resumes_where_it_stopped_waits_again_and_completes() {
    let standin = OpenAiStandIn::start(desk_script());
    let f = Function::start(&agents_env(&standin, &[]));
    let owner = desk_claims();

    // 1. The desk asks back: waiting, with the conversation so far and a continuation.
    let first = f.invoke_json(&direct(
        &fresh_token(&owner),
        json!({ "message": "My order is late" }),
        None,
    ));
    let c1 = waiting(&first);
    let greeting = assistant("Desk", "Hello! What can I do for you?");
    assert_eq!(
        first["output"],
        json!({
            "messages": [user("My order is late"), greeting],
            "last_agent": "Desk",
            "context": { "ticket": "T-chat-7" },
            "structured_outputs": {}
        })
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].header("authorization"), Some("Bearer sk-e2e"));
    assert_eq!(requests[0].body["model"], "gpt-4o-mini");
    assert_eq!(history(&requests[0]), vec![user("My order is late")]);

    // 2. A fresh token of the same caller + the continuation + the reply: the Desk goes on with
    //    the whole conversation, hands off to Orders, which asks back: waiting again.
    let second = f.invoke_json(&direct(
        &fresh_token(&owner),
        json!({ "message": "Order 42" }),
        Some(&c1),
    ));
    let c2 = waiting(&second);
    assert_ne!(c2, c1);
    assert_ne!(second["execution_id"], first["execution_id"]);
    let messages = second["output"]["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{second}"))
        .clone();
    assert_eq!(messages.len(), 6, "{second}");
    assert_eq!(
        messages[..3],
        [user("My order is late"), greeting.clone(), user("Order 42")]
    );
    assert_eq!(
        messages[3]["tool_calls"][0]["function"]["name"],
        "transfer_to_Orders"
    );
    assert_eq!(messages[4]["role"], "tool");
    assert_eq!(messages[4]["tool_call_id"], "call_1");
    assert_eq!(
        messages[5],
        assistant("Orders", "Order 42 shipped yesterday. Anything else?")
    );
    assert_eq!(second["output"]["last_agent"], "Orders");
    assert_eq!(second["output"]["context"], json!({ "ticket": "T-chat-7" }));
    let requests = standin.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        history(&requests[1]),
        vec![user("My order is late"), greeting.clone(), user("Order 42")]
    );
    assert_eq!(
        requests[1].system(),
        "You greet customers and find out what they need."
    );
    assert_eq!(requests[2].system(), "You answer order questions.");
    assert_eq!(requests[2].body["model"], DEFAULT_MODEL);
    assert_eq!(history(&requests[2]), messages[..5].to_vec());

    // 3. The second wait resumes too, and the conversation ends; the rest of the workflow runs
    //    with what the first run set ($context, $workflow.input).
    let third = f.invoke_json(&direct(
        &fresh_token(&owner),
        json!({ "message": "No, thanks" }),
        Some(&c2),
    ));
    assert_eq!(third["status"], "completed", "{third}");
    assert!(third.get("continuation").is_none(), "{third}");
    assert_eq!(
        third["output"],
        json!({ "ticket": "T-chat-7", "last_agent": "Orders", "replies": 4, "first": "My order is late" })
    );
    let requests = standin.requests();
    assert_eq!(requests.len(), 4);
    let mut seen = messages.clone();
    seen.push(user("No, thanks"));
    assert_eq!(history(&requests[3]), seen);
    assert_eq!(standin.remaining(), 0);

    // Each resume names the execution it continues; no log line carries a continuation.
    let resumed: Vec<Value> = f
        .process
        .wait_stdout_matches(|l| l.contains("resuming a waiting execution"), 2, WAIT)
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|l| l["fields"]["resumes"].clone())
        .collect();
    assert_eq!(
        resumed,
        vec![
            first["execution_id"].clone(),
            second["execution_id"].clone()
        ]
    );
    for line in f
        .process
        .stdout_lines()
        .iter()
        .chain(f.process.stderr_lines().iter())
    {
        assert!(
            !line.contains(&c1[..40]) && !line.contains(&c2[..40]),
            "continuation logged: {line}"
        );
    }
}

#[test]
fn over_http_the_continuation_travels_in_the_mozaiks_continuation_header() {
    let standin = OpenAiStandIn::start(desk_script());
    let f = Function::start(&agents_env(&standin, &[]));
    let owner = desk_claims();

    let answer = f.invoke_json(&http_event(
        &fresh_token(&owner),
        &json!({ "message": "My order is late" }),
        None,
    ));
    let first = http_body(&answer, 200);
    let c1 = waiting(&first);
    assert_eq!(
        answer["headers"]["x-mozaiks-execution-id"],
        first["execution_id"]
    );
    // The continuation is in the body only.
    assert!(
        !answer["headers"].to_string().contains(&c1[..40]),
        "{answer}"
    );
    assert_eq!(
        first["output"]["messages"][1],
        assistant("Desk", "Hello! What can I do for you?")
    );

    let answer = f.invoke_json(&http_event(
        &fresh_token(&owner),
        &json!({ "message": "Order 42" }),
        Some(&c1),
    ));
    let second = http_body(&answer, 200);
    let c2 = waiting(&second);
    assert_eq!(second["output"]["last_agent"], "Orders");
    assert_eq!(
        history(&standin.requests()[1]),
        vec![
            user("My order is late"),
            assistant("Desk", "Hello! What can I do for you?"),
            user("Order 42")
        ]
    );

    let answer = f.invoke_json(&http_event(
        &fresh_token(&owner),
        &json!({ "message": "No, thanks" }),
        Some(&c2),
    ));
    let third = http_body(&answer, 200);
    assert_eq!(third["status"], "completed", "{third}");
    assert_eq!(third["output"]["replies"], 4, "{third}");
    assert_eq!(third["output"]["first"], "My order is late", "{third}");
    assert_eq!(standin.requests().len(), 4);
}

// ───────────────────────────── refusals ─────────────────────────────

#[test]
fn foreign_expired_and_tampered_continuations_are_refused_and_the_next_resume_works() {
    let standin = OpenAiStandIn::start(vec![
        text("Which order?", tokens(10, 3, 0)),
        tool_calls(
            &[("call_1", "transfer_to_Orders", json!({}))],
            tokens(20, 4, 8),
        ),
        text("Order 42 shipped yesterday.", tokens(30, 2, 8)),
        text("Anything else?", tokens(40, 3, 8)),
    ]);
    let f = Function::start(&agents_env(&standin, &[]));
    let owner = desk_claims();
    let first = f.invoke_json(&direct(
        &fresh_token(&owner),
        json!({ "message": "My order is late" }),
        None,
    ));
    let continuation = waiting(&first);

    // Expired: the very state the function sealed, sealed again by the same key two hours ago
    // (the library's API with an old `now`); fresh, the same state is accepted (checked below).
    let sealer = dev_sealer();
    let desk = desk_id();
    let binding = Binding::new(&desk, &owner);
    let opened = sealer
        .open(&continuation, &binding, now())
        .unwrap_or_else(|e| panic!("the function's continuation opens: {}", e.reason()));
    let expired = sealer
        .seal(&binding, "issuer", &opened.state, now() - 7200)
        .unwrap_or_else(|e| panic!("{e}"));
    let resealed = sealer
        .seal(&binding, "issuer", &opened.state, now())
        .unwrap_or_else(|e| panic!("{e}"));

    let mut tampered = continuation.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    let foreign = |claim: &str, value: &str| {
        let mut claims = owner.clone();
        claims[claim] = json!(value);
        fresh_token(&claims)
    };
    let cases = [
        (foreign("sub", "user-2"), continuation.clone(), "foreign"),
        (
            foreign("chat_id", "chat-8"),
            continuation.clone(),
            "foreign",
        ),
        (fresh_token(&owner), expired, "expired"),
        (fresh_token(&owner), tampered, "tampered"),
    ];
    let reply = json!({ "message": "Order 42" });
    for (token, continuation, reason) in &cases {
        // Direct: a `rejected` answer carrying the 400 problem.
        let r = f.invoke_json(&direct(token, reply.clone(), Some(continuation)));
        assert_eq!(r["status"], "rejected", "{reason}: {r}");
        assert_eq!(r["error"]["type"], CONTINUATION_PROBLEM, "{r}");
        assert_eq!(r["error"]["status"], 400, "{r}");
        assert!(
            r.get("workflow").is_none() && r.get("output").is_none(),
            "{r}"
        );
        let id = r["execution_id"].as_str().unwrap_or_default();
        assert_eq!(logged_reason(&f, id), *reason);
        assert!(!r.to_string().contains(reason), "the reason leaked: {r}");
        // HTTP: 400 application/problem+json.
        let answer = f.invoke_json(&http_event(token, &reply, Some(continuation)));
        assert_eq!(
            answer["headers"]["content-type"], "application/problem+json",
            "{answer}"
        );
        let problem = http_body(&answer, 400);
        assert_eq!(problem["type"], CONTINUATION_PROBLEM, "{problem}");
        assert_eq!(problem["status"], 400, "{problem}");
        let id = problem["execution_id"].as_str().unwrap_or_default();
        assert_eq!(logged_reason(&f, id), *reason);
    }
    // None of that reached the model.
    assert_eq!(standin.requests().len(), 1);

    // The next invocation resumes: the original continuation (not consumed by the refusals) …
    let second = f.invoke_json(&direct(
        &fresh_token(&owner),
        reply.clone(),
        Some(&continuation),
    ));
    assert_eq!(second["status"], "waiting", "{second}");
    assert_eq!(second["output"]["last_agent"], "Orders", "{second}");
    // … and the state re-sealed now, which proves `expired` was the only fault of the other.
    let third = f.invoke_json(&direct(
        &fresh_token(&owner),
        json!({ "message": "That's all" }),
        Some(&resealed),
    ));
    assert_eq!(third["status"], "waiting", "{third}");
    assert_eq!(third["output"]["last_agent"], "Desk", "{third}");
    let requests = standin.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(
        history(&requests[3]),
        vec![
            user("My order is late"),
            assistant("Desk", "Which order?"),
            user("That's all")
        ]
    );
}

// ───────────────────────────── usage ─────────────────────────────

/// The Lambda environment with a usage bus at `endpoint` (dummy credentials).
fn bus_vars(endpoint: &str) -> Vec<(&'static str, Option<&str>)> {
    vec![
        ("MOZAIKS_USAGE_EVENT_BUS", Some(BUS)),
        ("AWS_ENDPOINT_URL", Some(endpoint)),
        ("AWS_REGION", Some("us-east-1")),
        ("AWS_ACCESS_KEY_ID", Some("ASIATESTING")),
        ("AWS_SECRET_ACCESS_KEY", Some("testing")),
        ("AWS_SESSION_TOKEN", Some("testing")),
    ]
}

/// What one model call's `mozaiks.usage.llm` event must say.
struct Call {
    agent: &'static str,
    model: &'static str,
    prompt: u64,
    completion: u64,
    cached: u64,
}

#[test]
fn every_model_call_is_one_llm_event_with_the_providers_counts_before_the_execution_event() {
    let moto = Moto::start();
    let queue = moto.setup_usage_bus(BUS, SOURCE);
    let mut script = desk_script();
    script.truncate(2);
    // The second leg ends the conversation; the third run's Orders call fails four times.
    script.push(tool_calls(
        &[("call_2", "transfer_to_terminate", json!({}))],
        tokens(80, 4, 48),
    ));
    script.push(tool_calls(
        &[("call_3", "transfer_to_Orders", json!({}))],
        tokens(30, 3, 0),
    ));
    for _ in 0..4 {
        script.push(error(
            500,
            "The server had an error",
            &[("retry-after-ms", "1")],
        ));
    }
    let standin = OpenAiStandIn::start(script);
    let f = Function::start(&agents_env(&standin, &bus_vars(moto.endpoint())));
    let owner = desk_claims();

    let token = fresh_token(&owner);
    let first = f.invoke_json(&direct(
        &token,
        json!({ "message": "My order is late" }),
        None,
    ));
    let continuation = waiting(&first);
    let token2 = fresh_token(&owner);
    let second = f.invoke_json(&direct(
        &token2,
        json!({ "message": "Order 42" }),
        Some(&continuation),
    ));
    assert_eq!(second["status"], "completed", "{second}");
    let token3 = fresh_token(&owner);
    let third = f.invoke_json(&direct(&token3, json!({ "message": "Order 43?" }), None));
    assert_eq!(third["status"], "faulted", "{third}");
    assert_eq!(
        third["error"]["type"],
        format!("{DSL_ERRORS}communication"),
        "{third}"
    );
    let detail = third["error"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("The server had an error") && detail.contains("gave up after 4 attempts"),
        "{detail}"
    );
    assert!(third.get("output").is_none(), "{third}");
    assert_eq!(standin.requests().len(), 8);

    let desk = |prompt, completion, cached| Call {
        agent: "Desk",
        model: "gpt-4o-mini",
        prompt,
        completion,
        cached,
    };
    let orders = |prompt, completion, cached| Call {
        agent: "Orders",
        model: DEFAULT_MODEL,
        prompt,
        completion,
        cached,
    };
    let runs: [(&Value, &str, &str, Vec<Call>); 3] = [
        (&first, &token, "waiting", vec![desk(11, 7, 0)]),
        (
            &second,
            &token2,
            "completed",
            vec![desk(40, 5, 16), orders(80, 4, 48)],
        ),
        // The call that answered is reported; the one that failed has no counts to report.
        (&third, &token3, "faulted", vec![desk(30, 3, 0)]),
    ];
    let expected: usize = runs.iter().map(|(_, _, _, calls)| calls.len() + 1).sum();

    let messages = moto.drain(&queue, expected, Duration::from_secs(20));
    assert_eq!(messages.len(), expected, "{messages:#?}");
    let mut by_execution: BTreeMap<String, BTreeMap<u64, Value>> = BTreeMap::new();
    let mut details = Vec::new();
    for message in &messages {
        assert_eq!(message["source"], SOURCE);
        let detail_type = message["detail-type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let detail = message["detail"].clone();
        details.push((detail_type.clone(), detail.clone()));
        let execution = detail["execution_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let sequence = detail["sequence"].as_u64().unwrap_or_default();
        assert_eq!(
            detail["event_id"],
            event_id(&execution, &detail_type, sequence),
            "{detail}"
        );
        let mut detail = detail;
        detail["detail_type"] = json!(detail_type);
        let previous = by_execution
            .entry(execution)
            .or_default()
            .insert(sequence, detail);
        assert!(
            previous.is_none(),
            "a sequence number repeated: {messages:#?}"
        );
    }
    validate_details(&details);

    for (response, token, status, calls) in &runs {
        let execution = response["execution_id"].as_str().unwrap_or_default();
        let events = by_execution
            .remove(execution)
            .unwrap_or_else(|| panic!("no events for {execution}"));
        let context = payload_json(token);
        // Sequence 1..n: the model calls in call order, then the execution event.
        assert_eq!(
            events.keys().copied().collect::<Vec<u64>>(),
            (1..=calls.len() as u64 + 1).collect::<Vec<u64>>()
        );
        let mut totals = (0, 0, 0, 0);
        for (call, (_, event)) in calls.iter().zip(&events) {
            assert_eq!(event["detail_type"], "mozaiks.usage.llm", "{event}");
            assert_eq!(event["agent"], call.agent, "{event}");
            assert_eq!(event["model"], call.model, "{event}");
            assert_eq!(event["provider"], "openai", "{event}");
            assert_eq!(event["prompt_tokens"], call.prompt, "{event}");
            assert_eq!(event["completion_tokens"], call.completion, "{event}");
            assert_eq!(
                event["total_tokens"],
                call.prompt + call.completion,
                "{event}"
            );
            assert_eq!(event["cached_tokens"], call.cached, "{event}");
            assert!(event["duration_ms"].as_u64().is_some(), "{event}");
            assert_eq!(event["context"], context, "{event}");
            totals.0 += 1;
            totals.1 += call.prompt;
            totals.2 += call.completion;
            totals.3 += call.prompt + call.completion;
        }
        let (_, last) = events
            .last_key_value()
            .unwrap_or_else(|| panic!("no events for {execution}"));
        assert_eq!(last["detail_type"], "mozaiks.usage.execution", "{last}");
        assert_eq!(last["status"], *status, "{last}");
        assert_eq!(last["workflow"], json!(desk_id()), "{last}");
        assert_eq!(
            last["llm"],
            json!({ "calls": totals.0, "prompt_tokens": totals.1, "completion_tokens": totals.2, "total_tokens": totals.3 }),
            "{last}"
        );
        // Model calls are `llm` usage, not `http`.
        assert_eq!(last["http"]["calls"], 0, "{last}");
        assert_eq!(last["context"], context, "{last}");
    }
    assert!(
        by_execution.is_empty(),
        "events of unknown executions: {by_execution:#?}"
    );
}

// ───────────────────────────── no continuation key ─────────────────────────────

#[test]
fn without_a_continuation_key_the_start_warns_and_a_run_that_would_wait_faults_naming_it() {
    let standin = OpenAiStandIn::start(vec![
        text("Paris.", tokens(9, 2, 0)),
        text("Hello! What can I do for you?", tokens(11, 7, 0)),
    ]);
    let f = Function::start(&agents_env(&standin, &[("MOZAIKS_CONTINUATION_KEY", None)]));

    // At init: one warning, for the workflow that can wait, naming the variable (logged
    // before the start is announced).
    assert!(f
        .process
        .wait_stdout_line(|l| l.contains("mozaiks-runtime ready"), WAIT)
        .is_some());
    let warnings: Vec<Value> = logs(&f)
        .into_iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("MOZAIKS_CONTINUATION_KEY is not set"))
        })
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "{warnings:#?}\n{}",
        f.process.output_report()
    );
    assert_eq!(warnings[0]["level"], "WARN", "{}", warnings[0]);
    assert_eq!(warnings[0]["fields"]["workflow"], "e2e/support-desk@1.0.0");

    // A workflow that never waits runs as ever.
    let mut claims = desk_claims();
    claims["workflow_id"] = json!("answer");
    let r = f.invoke_json(&direct(
        &fresh_token(&claims),
        json!({ "question": "Capital of France?" }),
        None,
    ));
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["output"], json!({ "answer": "Paris." }));

    // The one that would wait faults with a configuration error that says what to set; the
    // model call it made is still reported.
    let r = f.invoke_json(&direct(
        &fresh_token(&desk_claims()),
        json!({ "message": "My order is late" }),
        None,
    ));
    assert_eq!(r["status"], "faulted", "{r}");
    assert_eq!(
        r["error"]["type"],
        format!("{DSL_ERRORS}configuration"),
        "{r}"
    );
    let detail = r["error"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("set MOZAIKS_CONTINUATION_KEY"), "{detail}");
    assert!(
        r.get("continuation").is_none() && r.get("output").is_none(),
        "{r}"
    );
    let execution = r["execution_id"].as_str().unwrap_or_default();
    let needle = format!(r#""execution_id":"{execution}""#);
    let events: Vec<Value> = f
        .process
        .wait_stdout_matches(
            |l| l.starts_with(STDOUT_EVENT) && l.contains(&needle),
            2,
            WAIT,
        )
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|l| l["usage_event"].clone())
        .collect();
    let types: Vec<&Value> = events.iter().map(|e| &e["DetailType"]).collect();
    assert_eq!(types, ["mozaiks.usage.llm", "mozaiks.usage.execution"]);
    assert_eq!(events[0]["Detail"]["total_tokens"], 18);
    assert_eq!(events[1]["Detail"]["status"], "faulted");
    assert_eq!(events[1]["Detail"]["llm"]["calls"], 1);
    assert_eq!(events[1]["Detail"]["llm"]["total_tokens"], 18);
    assert_eq!(standin.requests().len(), 2);
}
