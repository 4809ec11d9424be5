//! Workflow events: the CloudEvents a workflow's `emit` tasks produce, put onto
//! `MOZAIKS_WORKFLOW_EVENT_BUS` through the same delivery as usage events, black-box through
//! the built `bootstrap` running the fixture workflow tests/fixtures/workflows/emitter.yaml:
//!
//! - against `moto_server`: a rule and an SQS queue on the workflow bus (a consumer of the
//!   workflow's events) receive each emitted CloudEvent as EventBridge delivers it — `source`,
//!   `detail-type` = the CloudEvent's `type`, `detail` = the whole CloudEvent, `time` = its
//!   `time` — while the usage bus gets only the usage events, both in one PutEvents call;
//! - without a workflow bus: each emitted event is a stdout line `{"workflow_event": …}`,
//!   before the execution's usage event;
//! - against the EventBridge stand-in: a workflow bus that refuses its entries, and a bus that
//!   is down, leave `workflow_event_undelivered` lines with the reason, deliver what they can
//!   (the usage event still reaches its bus), and never change the response.

#[path = "support/eventbridge_standin.rs"]
mod eventbridge_standin;
#[path = "support/function.rs"]
mod function;
#[path = "support/runtime_api.rs"]
mod runtime_api;
#[path = "support/usage.rs"]
mod usage;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use eventbridge_standin::{Reply, StandIn};
use function::{claims, dev_env, mint, Function, WAIT};
use mozaiks_runtime::config::UsageConfig;
use mozaiks_runtime::usage::{Sink, Stream};
use serde_json::{json, Value};
use usage::Moto;

const USAGE_BUS: &str = "mozaiks-usage-test";
const WORKFLOW_BUS: &str = "mozaiks-workflow-events-test";
const USAGE_SOURCE: &str = "mozaiks.runtime";
/// The `source` of the fixture's CloudEvents.
const ORDERS: &str = "https://mozaiks.ai/tests/orders";
const PLACED: &str = "ai.mozaiks.tests.order.placed";
const SHIPPED: &str = "ai.mozaiks.tests.order.shipped";
/// The fixture's explicit `time` of its `shipped` event, in UTC.
const SHIPPED_AT: &str = "2026-11-24T22:52:21.250Z";

const WORKFLOW_LINE: &str = r#"{"workflow_event""#;
const WORKFLOW_UNDELIVERED: &str = r#"{"workflow_event_undelivered""#;
const USAGE_LINE: &str = r#"{"usage_event""#;
const USAGE_UNDELIVERED: &str = r#"{"usage_event_undelivered""#;

/// The function's environment: the dev configuration with the fixture workflows, and the
/// buses given (on `endpoint`, with dummy credentials).
fn env(endpoint: Option<&str>, usage_bus: bool, workflow_bus: bool) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = dev_env()
        .into_iter()
        .filter(|(k, _)| k != "MOZAIKS_WORKFLOWS_DIR")
        .collect();
    let mut set = |k: &str, v: &str| env.push((k.to_owned(), v.to_owned()));
    set("MOZAIKS_WORKFLOWS_DIR", "tests/fixtures/workflows");
    if let Some(endpoint) = endpoint {
        set("AWS_ENDPOINT_URL", endpoint);
        set("AWS_REGION", "us-east-1");
        set("AWS_ACCESS_KEY_ID", "ASIATESTING");
        set("AWS_SECRET_ACCESS_KEY", "testing");
        set("AWS_SESSION_TOKEN", "testing");
    }
    if usage_bus {
        set("MOZAIKS_USAGE_EVENT_BUS", USAGE_BUS);
    }
    if workflow_bus {
        set("MOZAIKS_WORKFLOW_EVENT_BUS", WORKFLOW_BUS);
    }
    env
}

/// A direct request running the fixture with `{"order": order}`.
fn request(order: u64) -> Vec<u8> {
    let mut claims = claims();
    claims["workflow_id"] = json!("mozaiks-tests/emitter");
    json!({ "launch_token": mint(&claims), "input": { "order": order } })
        .to_string()
        .into_bytes()
}

/// A response with its execution id blanked.
fn normalized(response: &Value) -> Value {
    let id = response["execution_id"].as_str().unwrap_or_default();
    serde_json::from_str(&response.to_string().replace(id, "<execution-id>")).unwrap()
}

/// The response to `request(7)` with every event on stdout (no bus), execution id blanked.
fn baseline_response() -> Value {
    let f = Function::start(&env(None, false, false));
    let r = f.invoke(&request(7));
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(
        r["output"],
        json!({ "order": 7, "app_id": "app-42", "emitted": 2 })
    );
    normalized(&r)
}

/// Stdout lines starting with `prefix`, parsed, once at least `count` are there (or `WAIT`).
fn lines(f: &Function, prefix: &str, count: usize) -> Vec<Value> {
    f.process
        .wait_stdout_matches(|l| l.starts_with(prefix), count, WAIT)
        .iter()
        .map(|l| serde_json::from_str(l).expect("stdout line is JSON"))
        .collect()
}

/// The JSON log lines with this message.
fn logs(f: &Function, message: &str) -> Vec<Value> {
    f.process
        .stdout_lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == message)
        .collect()
}

/// Checks that `detail` is the fixture's CloudEvent of `type_` for `order` in `execution_id`,
/// as the engine emitted it.
fn check_cloud_event(detail: &Value, type_: &str, order: u64, execution_id: &str) {
    assert_eq!(detail["specversion"], "1.0", "{detail}");
    assert_eq!(detail["source"], ORDERS);
    assert_eq!(detail["type"], type_);
    assert_eq!(detail["datacontenttype"], "application/json");
    assert!(
        detail["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{detail}"
    );
    match type_ {
        PLACED => {
            assert_eq!(detail["id"], format!("{execution_id}/placed"));
            assert_eq!(
                detail["data"],
                json!({ "order": order, "app_id": "app-42" })
            );
            assert!(detail["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        }
        SHIPPED => {
            assert_eq!(detail["time"], "2026-11-24T23:52:21.250+01:00");
            assert_eq!(
                detail["carrier"], "mozaiks-post",
                "extension attributes are kept"
            );
            assert_eq!(detail["data"], json!({ "order": order }));
        }
        other => panic!("unexpected type {other}"),
    }
}

/// EventBridge's `time` of an event (second precision) for a CloudEvent `time` in UTC.
fn to_seconds(rfc3339_utc: &str) -> String {
    format!("{}Z", &rfc3339_utc[..19])
}

// ───────────────────────────── against moto ─────────────────────────────

#[test]
fn a_consumer_of_the_workflow_bus_receives_each_emitted_cloud_event() {
    let moto = Moto::start();
    let usage_queue = moto.setup_usage_bus(USAGE_BUS, USAGE_SOURCE);
    // A consumer of the workflow's events: a rule on their source, an SQS queue as target.
    let orders_queue = moto.setup_bus(WORKFLOW_BUS, &json!({ "source": [ORDERS] }));
    let f = Function::start(&env(Some(moto.endpoint()), true, true));

    let mut executions: BTreeMap<String, u64> = BTreeMap::new();
    for order in [7, 8] {
        let r = f.invoke(&request(order));
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(
            r["output"],
            json!({ "order": order, "app_id": "app-42", "emitted": 2 })
        );
        executions.insert(r["execution_id"].as_str().unwrap().to_owned(), order);
    }

    let messages = moto.drain(&orders_queue, 4, Duration::from_secs(20));
    assert_eq!(messages.len(), 4, "two events per execution: {messages:#?}");
    let mut seen: Vec<(u64, String)> = Vec::new();
    for message in &messages {
        let detail = &message["detail"];
        let type_ = message["detail-type"].as_str().unwrap();
        assert_eq!(
            message["source"], ORDERS,
            "Source is the CloudEvent's source"
        );
        assert_eq!(detail["type"], type_, "DetailType is the CloudEvent's type");
        let order = detail["data"]["order"].as_u64().unwrap();
        let execution_id = executions
            .iter()
            .find(|(_, o)| **o == order)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("an event for an unknown order: {detail}"));
        check_cloud_event(detail, type_, order, &execution_id);
        // Time is the CloudEvent's time (EventBridge keeps seconds).
        let expected_time = match type_ {
            SHIPPED => to_seconds(SHIPPED_AT),
            _ => to_seconds(detail["time"].as_str().unwrap()),
        };
        assert_eq!(message["time"], expected_time, "{message}");
        seen.push((order, type_.to_owned()));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            (7, PLACED.to_owned()),
            (7, SHIPPED.to_owned()),
            (8, PLACED.to_owned()),
            (8, SHIPPED.to_owned())
        ]
    );

    // The usage bus got the usage events, and only them.
    let usage = moto.drain(&usage_queue, 2, Duration::from_secs(20));
    assert_eq!(usage.len(), 2, "{usage:#?}");
    for message in &usage {
        assert_eq!(message["source"], USAGE_SOURCE);
        assert_eq!(message["detail-type"], "mozaiks.usage.execution");
        let execution_id = message["detail"]["execution_id"].as_str().unwrap();
        assert!(executions.contains_key(execution_id), "{message}");
        assert_eq!(message["detail"]["tasks_executed"], 3);
    }

    // Each execution's three events went out in one delivery of one PutEvents call.
    let delivered = logs(&f, "events delivered");
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    for line in &delivered {
        let fields = &line["fields"];
        assert_eq!(fields["workflow_events"], 2, "{line}");
        assert_eq!(fields["usage_events"], 1, "{line}");
        assert_eq!(fields["delivered"], 3, "{line}");
        assert_eq!(fields["calls"], 1, "{line}");
    }
    for prefix in [
        WORKFLOW_LINE,
        WORKFLOW_UNDELIVERED,
        USAGE_LINE,
        USAGE_UNDELIVERED,
    ] {
        assert!(lines(&f, prefix, 0).is_empty(), "{prefix} on stdout");
    }
}

// ───────────────────────────── without a workflow bus ─────────────────────────────

#[test]
fn without_a_workflow_bus_each_emitted_event_is_a_stdout_line_before_the_usage_event() {
    let f = Function::start(&env(None, false, false));
    let r = f.invoke(&request(7));
    assert_eq!(r["status"], "completed", "{r}");
    let execution_id = r["execution_id"].as_str().unwrap();
    lines(&f, USAGE_LINE, 1);

    // In stdout order: the two CloudEvents, as emitted, then the usage event.
    let ordered: Vec<Value> = f
        .process
        .stdout_lines()
        .iter()
        .filter(|l| l.starts_with(WORKFLOW_LINE) || l.starts_with(USAGE_LINE))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(ordered.len(), 3, "{ordered:#?}");
    for (line, type_) in ordered[..2].iter().zip([PLACED, SHIPPED]) {
        let entry = &line["workflow_event"];
        assert_eq!(
            line.as_object().unwrap().len(),
            1,
            "{{\"workflow_event\": …}}: {line}"
        );
        assert!(entry.get("EventBusName").is_none(), "{entry}");
        assert_eq!(entry["Source"], ORDERS);
        assert_eq!(entry["DetailType"], type_);
        check_cloud_event(&entry["Detail"], type_, 7, execution_id);
        let time = match type_ {
            SHIPPED => SHIPPED_AT.to_owned(),
            _ => entry["Detail"]["time"].as_str().unwrap().to_owned(),
        };
        assert_eq!(entry["Time"], time);
    }
    assert_eq!(
        ordered[2]["usage_event"]["Detail"]["execution_id"],
        execution_id
    );
    assert!(lines(&f, WORKFLOW_UNDELIVERED, 0).is_empty());
}

#[test]
fn with_only_a_usage_bus_workflow_events_stay_on_stdout() {
    let standin = StandIn::start(vec![]).expect("stand-in");
    let f = Function::start(&env(Some(&standin.endpoint()), true, false));
    let r = f.invoke(&request(7));
    assert_eq!(r["status"], "completed", "{r}");
    let workflow_lines = lines(&f, WORKFLOW_LINE, 2);
    assert_eq!(workflow_lines.len(), 2);
    let calls = standin.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].entries.len(), 1, "only the usage event is put");
    assert_eq!(calls[0].entries[0]["EventBusName"], USAGE_BUS);
    assert_eq!(calls[0].entries[0]["DetailType"], "mozaiks.usage.execution");
    assert!(lines(&f, USAGE_LINE, 0).is_empty());
}

// ───────────────────────────── failing buses (stand-in) ─────────────────────────────

/// Runs `request(7)` against a stand-in holding both buses, prepared by `prepare`; returns
/// the function (for its stdout), the stand-in and the response.
fn against_standin(
    script: Vec<Reply>,
    prepare: impl FnOnce(&StandIn),
) -> (Function, StandIn, Value) {
    let standin = StandIn::start(script).expect("stand-in");
    prepare(&standin);
    let f = Function::start(&env(Some(&standin.endpoint()), true, true));
    let r = f.invoke(&request(7));
    assert!(
        standin.protocol_errors().is_empty(),
        "{:?}",
        standin.protocol_errors()
    );
    (f, standin, r)
}

#[test]
fn a_workflow_bus_that_refuses_its_entries_leaves_undelivered_lines_and_the_result_unchanged() {
    let (f, standin, response) = against_standin(vec![], |s| {
        s.refuse_bus(WORKFLOW_BUS, "AccessDeniedException")
    });
    let execution_id = response["execution_id"].as_str().unwrap();
    assert_eq!(normalized(&response), baseline_response());

    // One call: the workflow's events first, then the usage event, each to its own bus.
    let calls = standin.calls();
    assert_eq!(calls.len(), 1, "a refused entry is not retried");
    let call = &calls[0];
    let routed: Vec<(&str, &str, &str)> = call
        .entries
        .iter()
        .map(|e| {
            (
                e["EventBusName"].as_str().unwrap(),
                e["Source"].as_str().unwrap(),
                e["DetailType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        routed,
        [
            (WORKFLOW_BUS, ORDERS, PLACED),
            (WORKFLOW_BUS, ORDERS, SHIPPED),
            (USAGE_BUS, USAGE_SOURCE, "mozaiks.usage.execution"),
        ]
    );
    assert_eq!(call.accepted, [false, false, true]);
    // The entry's Detail is the CloudEvent, sent as a JSON string.
    check_cloud_event(&call.entries[0]["Detail"], PLACED, 7, execution_id);
    check_cloud_event(&call.entries[1]["Detail"], SHIPPED, 7, execution_id);

    let undelivered = lines(&f, WORKFLOW_UNDELIVERED, 2);
    assert_eq!(undelivered.len(), 2, "{undelivered:#?}");
    for (line, type_) in undelivered.iter().zip([PLACED, SHIPPED]) {
        let entry = &line["workflow_event_undelivered"];
        assert_eq!(entry["EventBusName"], WORKFLOW_BUS);
        assert_eq!(entry["Source"], ORDERS);
        assert_eq!(entry["DetailType"], type_);
        check_cloud_event(&entry["Detail"], type_, 7, execution_id);
        assert_eq!(
            line["error"],
            "AccessDeniedException: scripted entry failure (not retryable)"
        );
    }
    assert!(lines(&f, USAGE_UNDELIVERED, 0).is_empty());
    assert!(lines(&f, WORKFLOW_LINE, 0).is_empty());
    let warned = logs(&f, "events not delivered to EventBridge; written to stdout as usage_event_undelivered / workflow_event_undelivered");
    assert_eq!(warned.len(), 1);
    assert_eq!(warned[0]["fields"]["undelivered"], 2);
}

#[test]
fn a_bus_that_is_down_leaves_every_event_on_stdout_after_its_retries_and_the_result_unchanged() {
    let (f, standin, response) =
        against_standin(vec![Reply::Fail(500, "InternalException"); 10], |_| {});
    assert_eq!(normalized(&response), baseline_response());
    let calls = standin.calls();
    assert_eq!(calls.len(), 5, "five attempts");
    for call in &calls {
        // Every attempt resends the same three events (same ids), in order.
        assert_eq!(call.event_ids(), calls[0].event_ids());
        assert_eq!(call.entries.len(), 3);
    }
    let workflow = lines(&f, WORKFLOW_UNDELIVERED, 2);
    let usage = lines(&f, USAGE_UNDELIVERED, 1);
    assert_eq!((workflow.len(), usage.len()), (2, 1));
    for line in workflow.iter().chain(&usage) {
        let error = line["error"].as_str().unwrap();
        assert!(
            error.starts_with("InternalException: scripted failure (HTTP 500)")
                && error.ends_with("gave up after 5 attempts"),
            "{error}"
        );
    }
}

// ───────────────────────────── the library's sink ─────────────────────────────

#[test]
fn an_emitted_event_eventbridge_could_not_take_is_reported_not_dropped() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let delivery = runtime.block_on(async {
        let usage = UsageConfig {
            event_bus: None,
            source: USAGE_SOURCE.to_owned(),
        };
        let sink = Sink::from_config(&usage, None, |_| None)
            .await
            .expect("a stdout sink needs nothing");
        let events = [
            json!({ "id": "ok-1", "source": ORDERS, "type": PLACED, "specversion": "1.0" }),
            json!({ "id": "bad-1", "type": PLACED }),
        ];
        sink.emit(&events, &[], SystemTime::now() + Duration::from_secs(5))
            .await
    });
    assert_eq!(delivery.delivered, 1);
    assert_eq!(delivery.calls, 0);
    assert_eq!(delivery.undelivered.len(), 1);
    let undelivered = &delivery.undelivered[0];
    assert_eq!(undelivered.stream, Stream::Workflow);
    assert_eq!(undelivered.event_id, "bad-1");
    assert!(
        undelivered.error.contains("`source`"),
        "{}",
        undelivered.error
    );
}

#[test]
fn the_function_refuses_to_start_with_a_workflow_bus_but_no_credentials() {
    let env: Vec<(String, String)> = env(Some("http://127.0.0.1:9"), false, true)
        .into_iter()
        .filter(|(k, _)| k != "AWS_ACCESS_KEY_ID")
        .collect();
    let f = Function::spawn(&env);
    let init = f.api.wait_init_error(WAIT).expect("init error reported");
    let body: Value = serde_json::from_slice(&init.body).unwrap();
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("AWS_ACCESS_KEY_ID: is not set, and MOZAIKS_WORKFLOW_EVENT_BUS is"),
        "{body}"
    );
    assert!(f.process.wait_exit(WAIT).is_some());
}
