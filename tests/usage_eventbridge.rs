//! Usage events delivered to EventBridge (CONTRACT §7), black-box and through the library:
//!
//! - against `moto_server` (started here on loopback, with a bus, a rule on `source` and an SQS
//!   queue as in template.yaml): K executions of the built `bootstrap` put exactly K
//!   `mozaiks.usage.execution` events on the bus, fields and `context` as specified; more than
//!   ten events of one execution are split into PutEvents calls moto accepts;
//! - against a scripted EventBridge stand-in (tests/support/eventbridge_standin.rs) for the
//!   faults moto cannot make: whole-call throttling, 500s, per-entry failures with retryable and
//!   non-retryable codes, a hung connection, a dropped one, and no endpoint at all. In every
//!   case delivered + written to stdout as undelivered = emitted, no entry is sent again once
//!   accepted (a resend after an unknown outcome carries the same `event_id`), and the
//!   response is the one the function gives with usage on stdout.
//!
//! Every emitted event is validated against schemas/ (tests/support/usage.rs).

#[path = "support/eventbridge_standin.rs"]
mod eventbridge_standin;
#[path = "support/function.rs"]
mod function;
#[path = "support/runtime_api.rs"]
mod runtime_api;
#[path = "support/usage.rs"]
mod usage;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use eventbridge_standin::{event_id_of, Reply, StandIn};
use function::{
    claims, dev_env, mint, now, payload_json, root, Function, STDOUT_EVENT, TIMEOUT, WAIT,
};
use mozaiks_runtime::config::UsageConfig;
use mozaiks_runtime::usage::events::{event_id, HttpTotals, LlmTotals};
use mozaiks_runtime::usage::{Delivery, ExecutionUsage, LlmCallUsage, Sink, UsageEvent};
use mozaiks_runtime::workflow::WorkflowId;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use usage::{free_port, validate_details, Moto};

const BUS: &str = "mozaiks-usage-test";
const SOURCE: &str = "mozaiks.runtime";
const UNDELIVERED: &str = r#"{"usage_event_undelivered""#;

/// The Lambda environment with a usage bus at `endpoint` (dummy credentials).
fn bus_env(endpoint: &str) -> Vec<(String, String)> {
    let mut env = dev_env();
    for (k, v) in [
        ("MOZAIKS_USAGE_EVENT_BUS", BUS),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "ASIATESTING"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_SESSION_TOKEN", "testing"),
    ] {
        env.push((k.to_owned(), v.to_owned()));
    }
    env
}

/// What these tests read from the function's stdout besides usage events.
trait StdoutExt {
    /// Stdout lines starting with `prefix`, parsed, once at least `count` are there (or `WAIT`).
    fn lines(&self, prefix: &str, count: usize) -> Vec<Value>;
    /// The parsed JSON log lines (not usage lines) with this message.
    fn logs(&self, message: &str) -> Vec<Value>;
}

impl StdoutExt for Function {
    fn lines(&self, prefix: &str, count: usize) -> Vec<Value> {
        self.process
            .wait_stdout_matches(|l| l.starts_with(prefix), count, WAIT)
            .iter()
            .map(|l| serde_json::from_str(l).expect("stdout line is JSON"))
            .collect()
    }

    fn logs(&self, message: &str) -> Vec<Value> {
        self.process
            .stdout_lines()
            .iter()
            .filter(|l| !l.starts_with(STDOUT_EVENT) && !l.starts_with(UNDELIVERED))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["fields"]["message"] == message)
            .collect()
    }
}

fn direct(token: &str, input: Value) -> Vec<u8> {
    json!({ "launch_token": token, "input": input })
        .to_string()
        .into_bytes()
}

/// A response with its execution id (which differs per run) blanked.
fn normalized(response: &Value) -> Value {
    let id = response["execution_id"].as_str().unwrap_or_default();
    let text = response.to_string().replace(id, "<execution-id>");
    serde_json::from_str(&text).unwrap()
}

// ───────────────────────────── against moto ─────────────────────────────

#[test]
fn k_executions_put_exactly_k_execution_events_on_the_bus() {
    let moto = Moto::start();
    let queue = moto.setup_usage_bus(BUS, SOURCE);
    let f = Function::start(&bus_env(moto.endpoint()));

    let token = mint(&claims());
    let signed = payload_json(&token);
    let mut runs: BTreeMap<String, (String, Value)> = BTreeMap::new(); // execution id → (request id, response)
    let mut run_times = Vec::new();
    for name in ["Ada", "Bo", "Cy", "Di", "Ed"] {
        let (r, request_id, run_time) =
            f.invoke_timed(&direct(&token, json!({ "name": name })), TIMEOUT);
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["output"]["greeting"], format!("Hello, {name}!"));
        runs.insert(
            r["execution_id"].as_str().unwrap().to_owned(),
            (request_id, r),
        );
        run_times.push(run_time);
    }
    // A run cut by its deadline faults and still reports its usage.
    let (faulted, request_id, _) =
        f.invoke_timed(&direct(&token, json!({})), Duration::from_millis(300));
    assert_eq!(faulted["status"], "faulted", "{faulted}");
    runs.insert(
        faulted["execution_id"].as_str().unwrap().to_owned(),
        (request_id, faulted.clone()),
    );
    // A rejected request never ran and emits nothing.
    let mut expired_claims = claims();
    expired_claims["exp"] = json!(now() - 3600);
    expired_claims["iat"] = json!(now() - 7200);
    let expired = mint(&expired_claims);
    let (rejected, _, _) = f.invoke_timed(&direct(&expired, json!({})), TIMEOUT);
    assert_eq!(rejected["status"], "rejected");
    let k = runs.len();

    let messages = moto.drain(&queue, k, Duration::from_secs(20));
    assert_eq!(
        messages.len(),
        k,
        "exactly one event per execution that ran: {messages:#?}"
    );
    let mut details = Vec::new();
    for message in &messages {
        assert_eq!(message["source"], SOURCE);
        assert_eq!(message["detail-type"], "mozaiks.usage.execution");
        let detail = &message["detail"];
        let execution_id = detail["execution_id"].as_str().unwrap();
        let (request_id, response) = runs
            .remove(execution_id)
            .unwrap_or_else(|| panic!("an event for an unknown or repeated execution: {detail}"));
        assert_eq!(detail["request_id"], request_id.as_str());
        assert_eq!(detail["status"], response["status"]);
        assert_eq!(detail["workflow"], response["workflow"]);
        assert_eq!(detail["sequence"], 1);
        assert_eq!(
            detail["event_id"],
            event_id(execution_id, "mozaiks.usage.execution", 1)
        );
        assert_eq!(detail["schema_version"], "1");
        // The ExecutionContext, as signed.
        assert_eq!(detail["context"], signed);
        match response["status"].as_str() {
            Some("completed") => {
                assert_eq!(detail["output_bytes"], response["output"].to_string().len());
                assert!(detail["tasks_executed"].as_u64().unwrap() >= 1);
            }
            _ => assert_eq!(detail["output_bytes"], 0),
        }
        details.push(("mozaiks.usage.execution".to_owned(), detail.clone()));
    }
    assert!(runs.is_empty(), "executions without an event: {runs:?}");
    validate_details(&details);

    // Nothing went to stdout instead; every delivery was logged with its latency.
    assert!(f.lines(UNDELIVERED, 0).is_empty());
    assert!(f.lines(STDOUT_EVENT, 0).is_empty());
    let delivered = f.logs("events delivered");
    assert_eq!(delivered.len(), k, "{delivered:?}");
    let delivery_ms: Vec<f64> = delivered
        .iter()
        .map(|l| l["fields"]["delivery_ms"].as_f64().unwrap())
        .collect();
    eprintln!(
        "usage delivery against moto (PutEvents, in order): {delivery_ms:?} ms; invocation run times {run_times:?}"
    );
}

/// The library's sink against moto: 25 events of one execution go out in PutEvents calls moto
/// accepts (it refuses more than 10 entries per call), all reach the queue, in order.
#[test]
fn more_than_ten_events_of_one_execution_are_split_into_batches_moto_accepts() {
    let moto = Moto::start();
    let queue = moto.setup_usage_bus(BUS, SOURCE);
    let events = synthetic_execution("0193a000-0000-7000-8000-000000000001", 24, 0);
    assert_eq!(events.len(), 25);
    let delivery = emit_through_library(moto.endpoint(), &events);
    assert_eq!(delivery.delivered, 25, "{delivery:?}");
    assert!(delivery.undelivered.is_empty());
    assert_eq!(delivery.calls, 3);

    let messages = moto.drain(&queue, 25, Duration::from_secs(20));
    assert_eq!(messages.len(), 25);
    let mut sequences: Vec<u64> = messages
        .iter()
        .map(|m| m["detail"]["sequence"].as_u64().unwrap())
        .collect();
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=25).collect::<Vec<u64>>());
    let details: Vec<(String, Value)> = messages
        .iter()
        .map(|m| {
            (
                m["detail-type"].as_str().unwrap().to_owned(),
                m["detail"].clone(),
            )
        })
        .collect();
    assert_eq!(
        details
            .iter()
            .filter(|(t, _)| t == "mozaiks.usage.llm")
            .count(),
        24
    );
    validate_details(&details);
}

// ───────────────────────────── against the stand-in ─────────────────────────────

/// The outcome of one invocation against a scripted stand-in.
struct Scenario {
    response: Value,
    run_time: Duration,
    standin: StandIn,
    undelivered: Vec<Value>,
}

/// Starts the function against a stand-in with `script` (or against a closed port when
/// `None`), invokes the sample direct request once with `deadline`, and checks the invariants:
/// one event emitted, delivered or written to stdout as undelivered (never both, never
/// neither); nothing resent once accepted; the response equal to the stdout sink's.
fn scenario(script: Option<Vec<Reply>>, deadline: Duration) -> Scenario {
    let (standin, endpoint) = match script {
        Some(script) => {
            let standin = StandIn::start(script).expect("stand-in");
            let endpoint = standin.endpoint();
            (standin, endpoint)
        }
        None => (
            StandIn::start(vec![]).expect("stand-in"), // unused: nothing points at it
            format!("http://127.0.0.1:{}", free_port()),
        ),
    };
    let function = Function::start(&bus_env(&endpoint));
    let event = sample_request();
    let (response, _, run_time) = function.invoke_timed(&event, deadline);
    let execution_id = response["execution_id"].as_str().unwrap().to_owned();
    let expected_id = event_id(&execution_id, "mozaiks.usage.execution", 1);

    let accepted = standin.accepted_event_ids();
    let undelivered = function.lines(UNDELIVERED, 1 - accepted.len().min(1));
    let emitted = accepted.len() + undelivered.len();
    assert_eq!(
        emitted,
        1,
        "delivered {accepted:?} + undelivered {undelivered:?} must be the one event emitted\n{}",
        function.process.output_report()
    );
    for line in &undelivered {
        assert_eq!(
            line["usage_event_undelivered"]["Detail"]["event_id"],
            expected_id.as_str()
        );
        assert_eq!(line["usage_event_undelivered"]["EventBusName"], BUS);
        assert_eq!(line["usage_event_undelivered"]["Source"], SOURCE);
        assert!(line["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    assert_eq!(
        accepted.iter().filter(|id| **id == expected_id).count(),
        accepted.len()
    );
    check_no_resend_after_acceptance(&standin);
    assert!(
        standin.protocol_errors().is_empty(),
        "{:?}",
        standin.protocol_errors()
    );
    for call in standin.calls() {
        // Every (re)send carries the same event, event_id included.
        assert_eq!(call.event_ids(), std::slice::from_ref(&expected_id));
    }
    assert!(function.lines(STDOUT_EVENT, 0).is_empty());
    assert_eq!(
        normalized(&response),
        baseline_response(),
        "the response must not depend on usage delivery"
    );
    // Validate whatever was emitted.
    let mut details: Vec<(String, Value)> = standin
        .calls()
        .iter()
        .flat_map(|c| c.entries.clone())
        .map(|e| {
            (
                e["DetailType"].as_str().unwrap().to_owned(),
                e["Detail"].clone(),
            )
        })
        .collect();
    details.extend(undelivered.iter().map(|l| {
        let entry = &l["usage_event_undelivered"];
        (
            entry["DetailType"].as_str().unwrap().to_owned(),
            entry["Detail"].clone(),
        )
    }));
    validate_details(&details);
    Scenario {
        response,
        run_time,
        standin,
        undelivered,
    }
}

/// No call sends an entry a previous call accepted.
fn check_no_resend_after_acceptance(standin: &StandIn) {
    let calls = standin.calls();
    for (n, call) in calls.iter().enumerate() {
        for (entry, ok) in call.entries.iter().zip(&call.accepted) {
            if *ok {
                let id = event_id_of(entry);
                assert!(
                    calls[n + 1..]
                        .iter()
                        .all(|later| !later.event_ids().contains(&id)),
                    "{id} was sent again after call {n} accepted it"
                );
            }
        }
    }
}

/// The direct request every scenario sends (a fixed input and token).
fn sample_request() -> Vec<u8> {
    std::fs::read(root().join("events/direct.json")).expect("events/direct.json")
}

/// The response to [`sample_request`] with usage on stdout (no bus), execution id blanked.
fn baseline_response() -> Value {
    static BASELINE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    BASELINE
        .get_or_init(|| {
            let f = Function::start(&dev_env());
            let (r, _, _) = f.invoke_timed(&sample_request(), TIMEOUT);
            assert_eq!(r["status"], "completed", "{r}");
            let line = &f.lines(STDOUT_EVENT, 1)[0];
            validate_details(&[(
                "mozaiks.usage.execution".to_owned(),
                line["usage_event"]["Detail"].clone(),
            )]);
            normalized(&r)
        })
        .clone()
}

#[test]
fn whole_call_throttling_is_retried_until_accepted() {
    let s = scenario(
        Some(vec![
            Reply::Fail(400, "ThrottlingException"),
            Reply::Fail(400, "ThrottlingException"),
        ]),
        TIMEOUT,
    );
    assert_eq!(s.standin.accepted_event_ids().len(), 1);
    assert_eq!(s.standin.calls().len(), 3);
    assert!(s.undelivered.is_empty());
}

#[test]
fn server_errors_are_retried_then_written_to_stdout_with_the_reason() {
    let s = scenario(
        Some(vec![Reply::Fail(500, "InternalException"); 10]),
        TIMEOUT,
    );
    assert_eq!(s.standin.calls().len(), 5, "five attempts");
    assert!(s.standin.accepted_event_ids().is_empty());
    let error = s.undelivered[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("InternalException: scripted failure (HTTP 500)")
            && error.ends_with("gave up after 5 attempts"),
        "{error}"
    );
}

#[test]
fn a_503_without_a_known_code_is_retried() {
    let s = scenario(Some(vec![Reply::Fail(503, "SlowDown")]), TIMEOUT);
    assert_eq!(s.standin.calls().len(), 2);
    assert_eq!(s.standin.accepted_event_ids().len(), 1);
}

#[test]
fn a_refused_call_is_not_retried() {
    let s = scenario(
        Some(vec![Reply::Fail(400, "AccessDeniedException")]),
        TIMEOUT,
    );
    assert_eq!(s.standin.calls().len(), 1);
    let error = s.undelivered[0]["error"].as_str().unwrap();
    assert_eq!(
        error,
        "AccessDeniedException: scripted failure (HTTP 400) (not retryable)"
    );
}

#[test]
fn a_retryable_entry_failure_is_resent() {
    let s = scenario(
        Some(vec![
            Reply::FailEntries(vec![(0, "ThrottlingException")]),
            Reply::FailEntries(vec![(0, "InternalFailure")]),
        ]),
        TIMEOUT,
    );
    assert_eq!(s.standin.calls().len(), 3);
    assert_eq!(s.standin.accepted_event_ids().len(), 1);
}

#[test]
fn a_non_retryable_entry_failure_goes_to_stdout_at_once() {
    let s = scenario(
        Some(vec![Reply::FailEntries(vec![(0, "MalformedDetail")])]),
        TIMEOUT,
    );
    assert_eq!(s.standin.calls().len(), 1);
    assert_eq!(
        s.undelivered[0]["error"],
        "MalformedDetail: scripted entry failure (not retryable)"
    );
}

#[test]
fn a_dropped_connection_is_retried_with_the_same_event() {
    let s = scenario(Some(vec![Reply::Drop]), TIMEOUT);
    assert_eq!(s.standin.calls().len(), 2);
    assert_eq!(s.standin.accepted_event_ids().len(), 1);
}

#[test]
fn a_hung_connection_is_bounded_by_the_invocation_deadline() {
    let deadline = Duration::from_millis(1800);
    let s = scenario(Some(vec![Reply::Hang; 5]), deadline);
    assert!(
        s.run_time < deadline,
        "answered after the deadline: {:?}",
        s.run_time
    );
    // 1 s per attempt, then what the deadline leaves: two calls, the same event both times.
    assert_eq!(s.standin.calls().len(), 2);
    let error = s.undelivered[0]["error"].as_str().unwrap();
    assert!(
        error.contains("outcome unknown") && error.contains("deadline"),
        "{error}"
    );
    assert_eq!(s.response["status"], "completed");
}

#[test]
fn no_endpoint_at_all_writes_the_event_to_stdout() {
    let s = scenario(None, TIMEOUT);
    let error = s.undelivered[0]["error"].as_str().unwrap();
    assert!(error.contains("could not send PutEvents"), "{error}");
    assert!(error.ends_with("gave up after 5 attempts"), "{error}");
    assert!(s.run_time < Duration::from_secs(2), "{:?}", s.run_time);
}

#[test]
fn the_client_is_built_once_and_its_connection_reused_across_invocations() {
    const N: usize = 20;
    let standin = StandIn::start(vec![]).expect("stand-in");
    let f = Function::start(&bus_env(&standin.endpoint()));
    // The warm-up at init opened the connection with a request that named no operation.
    assert_eq!(standin.no_operation_calls(), 1);
    let mut with_bus = Vec::new();
    for _ in 0..N {
        let (r, _, run_time) = f.invoke_timed(&sample_request(), TIMEOUT);
        assert_eq!(r["status"], "completed");
        with_bus.push(run_time);
    }
    assert_eq!(standin.accepted_event_ids().len(), N);
    assert_eq!(
        standin.connections(),
        1,
        "one connection for the warm-up and every call"
    );

    // What delivery adds to an invocation, against a stand-in that answers at once: the
    // runtime's own cost (entry building, signing, HTTP), without EventBridge's service time.
    let stdout = Function::start(&dev_env());
    let mut without_bus = Vec::new();
    for _ in 0..N {
        let (_, _, run_time) = stdout.invoke_timed(&sample_request(), TIMEOUT);
        without_bus.push(run_time);
    }
    let delivery_ms: Vec<f64> = f
        .logs("events delivered")
        .iter()
        .map(|l| l["fields"]["delivery_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(delivery_ms.len(), N);
    eprintln!(
        "usage delivery against the stand-in: median {:.3} ms (first {:.3} ms, max {:.3} ms); invocation run time median {:?} with the bus, {:?} with stdout",
        median_f64(&delivery_ms),
        delivery_ms[0],
        delivery_ms.iter().cloned().fold(0.0, f64::max),
        median(&with_bus),
        median(&without_bus)
    );
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

fn median_f64(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

#[test]
fn the_function_refuses_to_start_with_a_bus_but_no_credentials() {
    let env: Vec<(String, String)> = bus_env("http://127.0.0.1:9")
        .into_iter()
        .filter(|(k, _)| k != "AWS_SECRET_ACCESS_KEY")
        .collect();
    let f = Function::spawn(&env);
    let init = f.api.wait_init_error(WAIT).expect("init error reported");
    let body: Value = serde_json::from_slice(&init.body).unwrap();
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("AWS_SECRET_ACCESS_KEY: is not set"),
        "{body}"
    );
    assert!(f.process.wait_exit(WAIT).is_some());
}

// ───────────────────────────── the library's sink against the stand-in ─────────────────────────────

/// Builds the library's sink for `endpoint` (as `App::new` does) and emits `events` through it
/// with a 10 s deadline, on one current-thread runtime (as the function runs).
fn emit_through_library(endpoint: &str, events: &[UsageEvent]) -> Delivery {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let sink = sink_for(endpoint).await;
        sink.emit(&[], events, SystemTime::now() + Duration::from_secs(10))
            .await
    })
}

async fn sink_for(endpoint: &str) -> Sink {
    let config = UsageConfig {
        event_bus: Some(BUS.to_owned()),
        source: SOURCE.to_owned(),
    };
    let vars: HashMap<&str, String> = [
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "ASIATESTING".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_SESSION_TOKEN", "testing".to_owned()),
    ]
    .into_iter()
    .collect();
    Sink::from_config(&config, None, |name| vars.get(name).cloned())
        .await
        .expect("sink")
}

/// One execution's events: `llm_calls` model-call events (sequence 1..n), then its execution
/// event; agent names `agent_bytes` long when non-zero (to make entries big).
fn synthetic_execution(execution_id: &str, llm_calls: u64, agent_bytes: usize) -> Vec<UsageEvent> {
    let context: Box<RawValue> =
        serde_json::value::to_raw_value(&claims()).expect("claims as a raw value");
    let workflow = WorkflowId {
        namespace: "mozaiks".into(),
        name: "hello".into(),
        version: "1.0.0".into(),
    };
    let started = SystemTime::now();
    let agent = if agent_bytes == 0 {
        "writer".to_owned()
    } else {
        "a".repeat(agent_bytes)
    };
    let mut events = Vec::new();
    for n in 1..=llm_calls {
        let call = LlmCallUsage {
            execution_id,
            model: "model-x",
            provider: "provider-y",
            agent: &agent,
            prompt_tokens: 100 + n,
            completion_tokens: 20,
            total_tokens: 120 + n,
            cached_tokens: n % 3,
            started_at: started,
            ended_at: started + Duration::from_millis(5),
            context: &context,
        };
        events.push(call.to_event(n).expect("llm event"));
    }
    let usage = ExecutionUsage {
        execution_id,
        request_id: "request-1",
        workflow: &workflow,
        status: "completed",
        started_at: started,
        ended_at: started + Duration::from_millis(9),
        tasks_executed: 2,
        llm: LlmTotals {
            calls: llm_calls,
            ..LlmTotals::default()
        },
        http: HttpTotals::default(),
        input_bytes: 2,
        output_bytes: 2,
        context: &context,
    };
    events.push(usage.to_event(llm_calls + 1).expect("execution event"));
    events
}

#[test]
fn mixed_entry_failures_across_split_batches_resend_only_what_failed_retryably() {
    let standin = StandIn::start(vec![
        // Call 1 (entries 1..10): one throttled, one malformed, one internal failure.
        Reply::FailEntries(vec![
            (1, "ThrottlingException"),
            (3, "MalformedDetail"),
            (5, "InternalFailure"),
        ]),
        // Call 2 (entries 11..20): the whole call fails with a 500.
        Reply::Fail(500, "InternalException"),
        // Call 3 (entries 21..23) and every later call: accepted.
    ])
    .expect("stand-in");
    let events = synthetic_execution("0193a000-0000-7000-8000-000000000002", 22, 0);
    let delivery = emit_through_library(&standin.endpoint(), &events);

    let calls = standin.calls();
    let sizes: Vec<usize> = calls.iter().map(|c| c.entries.len()).collect();
    // Round 1: 10, 10, 3. Round 2: the 2 retryable entry failures and the 10 of the failed
    // call, in order: 10 and 2.
    assert_eq!(sizes, [10, 10, 3, 10, 2]);
    let ids = |range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| events[i].event_id.clone()).collect()
    };
    let mut round_two = vec![events[1].event_id.clone(), events[5].event_id.clone()];
    round_two.extend(ids(10..20));
    assert_eq!(
        [calls[3].event_ids(), calls[4].event_ids()].concat(),
        round_two
    );

    assert_eq!(delivery.delivered, 22);
    assert_eq!(delivery.undelivered.len(), 1);
    assert_eq!(delivery.undelivered[0].event_id, events[3].event_id);
    assert_eq!(
        delivery.undelivered[0].error,
        "MalformedDetail: scripted entry failure (not retryable)"
    );
    let mut accepted = standin.accepted_event_ids();
    accepted.sort();
    let mut expected: Vec<String> = events
        .iter()
        .filter(|e| e.event_id != events[3].event_id)
        .map(|e| e.event_id.clone())
        .collect();
    expected.sort();
    assert_eq!(
        accepted, expected,
        "each delivered event accepted exactly once"
    );
    check_no_resend_after_acceptance(&standin);
    let details: Vec<(String, Value)> = calls[..3]
        .iter()
        .flat_map(|c| c.entries.clone())
        .map(|e| {
            (
                e["DetailType"].as_str().unwrap().to_owned(),
                e["Detail"].clone(),
            )
        })
        .collect();
    assert_eq!(details.len(), 23);
    validate_details(&details);
}

#[test]
fn batches_respect_256_kib_and_an_entry_over_it_is_never_sent() {
    let standin = StandIn::start(vec![]).expect("stand-in");
    // Four model-call events of ~100 KiB each (two fit a call), then the execution event.
    let mut events = synthetic_execution("0193a000-0000-7000-8000-000000000003", 4, 100 * 1024);
    // And one model call whose entry alone is over 256 KiB.
    let huge = synthetic_execution("0193a000-0000-7000-8000-000000000004", 1, 300 * 1024);
    events.insert(2, huge[0].clone());
    let delivery = emit_through_library(&standin.endpoint(), &events);
    assert_eq!(delivery.delivered, 5);
    assert_eq!(delivery.undelivered.len(), 1);
    assert_eq!(delivery.undelivered[0].event_id, huge[0].event_id);
    assert!(
        delivery.undelivered[0]
            .error
            .contains("over EventBridge's 262144-byte PutEvents limit"),
        "{:?}",
        delivery.undelivered
    );
    let sizes: Vec<usize> = standin.calls().iter().map(|c| c.entries.len()).collect();
    // 2 × ~100 KiB, then 2 × ~100 KiB and the small execution event.
    assert_eq!(sizes, [2, 3]);
    assert!(!standin.accepted_event_ids().contains(&huge[0].event_id));
}
