//! Test support for usage events: a `moto_server` on loopback (tests/support/moto_server.py) with its EventBridge bus, rule
//! and SQS queue (through tests/support/aws_helper.py, boto3), and validation of event details
//! against schemas/ (through tests/support/validate_usage.py, Python's jsonschema, the reference
//! implementation of JSON Schema 2020-12).
//!
//! Include it with `#[path = "support/usage.rs"] mod usage;`.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

/// How long `moto_server` may take to start listening.
const MOTO_START: Duration = Duration::from_secs(60);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn support(file: &str) -> PathBuf {
    root().join("tests/support").join(file)
}

/// A `moto_server` on 127.0.0.1, killed when dropped.
pub struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// Starts `moto_server` on a free loopback port and waits until it listens.
    pub fn start() -> Moto {
        let port = free_port();
        // moto_server, through a wrapper that makes moto's EventBridge-to-SQS delivery take
        // milliseconds rather than 0.3 s per event (see the wrapper).
        let mut child = Command::new("python3")
            .arg(support("moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start python3 for moto_server ({e}): install Python 3 and pip install \"moto[server]\"")
            });
        // Werkzeug says "Running on http://127.0.0.1:PORT" once it listens; keep draining both
        // pipes afterwards so that moto never blocks on a full one.
        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        let mut pipes: Vec<Box<dyn std::io::Read + Send>> = Vec::new();
        if let Some(out) = child.stdout.take() {
            pipes.push(Box::new(out));
        }
        if let Some(err) = child.stderr.take() {
            pipes.push(Box::new(err));
        }
        for pipe in pipes {
            let ready_tx = ready_tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.contains("Running on") {
                        let _ = ready_tx.send(line);
                    }
                }
            });
        }
        drop(ready_tx);
        if ready_rx.recv_timeout(MOTO_START).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "moto_server did not start listening within {MOTO_START:?}: is it installed? pip install \"moto[server]\""
            );
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Creates bus `bus`, a rule on `source` with DetailType prefix `mozaiks.usage.`, and an SQS
    /// queue as its target; returns the queue URL.
    pub fn setup_usage_bus(&self, bus: &str, source: &str) -> String {
        let out = aws_helper(&[&self.endpoint, "setup", bus, source]);
        out["queue_url"]
            .as_str()
            .unwrap_or_else(|| panic!("no queue_url from the helper: {out}"))
            .to_owned()
    }

    /// Creates bus `bus`, a rule on it with `pattern` (an EventBridge event pattern), and an SQS
    /// queue as its target; returns the queue URL. Call [`Moto::setup_usage_bus`] first (it
    /// primes moto's delivery path once).
    pub fn setup_bus(&self, bus: &str, pattern: &Value) -> String {
        let out = aws_helper(&[&self.endpoint, "setup-bus", bus, &pattern.to_string()]);
        out["queue_url"]
            .as_str()
            .unwrap_or_else(|| panic!("no queue_url from the helper: {out}"))
            .to_owned()
    }

    /// Receives and deletes the queue's messages until `count` arrived or `within` passed, plus
    /// one more poll (so that extra messages show); returns the EventBridge events.
    pub fn drain(&self, queue_url: &str, count: usize, within: Duration) -> Vec<Value> {
        let out = aws_helper(&[
            &self.endpoint,
            "drain",
            queue_url,
            &count.to_string(),
            &within.as_secs_f64().to_string(),
        ]);
        out.as_array()
            .unwrap_or_else(|| panic!("the helper did not list messages: {out}"))
            .clone()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on (now).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

fn aws_helper(args: &[&str]) -> Value {
    let output = Command::new("python3")
        .arg(support("aws_helper.py"))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): install Python 3 and pip install \"moto[server]\"")
        });
    assert!(
        output.status.success(),
        "aws_helper.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "aws_helper.py {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Validates event details against schemas/ (JSON Schema 2020-12, formats checked), and checks
/// that each detail has exactly the fields its schema lists. Panics listing every violation.
pub fn validate_details(events: &[(String, Value)]) {
    assert!(!events.is_empty(), "nothing to validate");
    let mut input = Vec::new();
    for (detail_type, detail) in events {
        let line = json!({ "detail_type": detail_type, "detail": detail });
        input.extend_from_slice(line.to_string().as_bytes());
        input.push(b'\n');
    }
    let mut child = Command::new("python3")
        .arg(support("validate_usage.py"))
        .arg(root().join("schemas"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install Python 3 and pip install jsonschema rfc3339-validator"));
    let mut stdin = child.stdin.take().expect("stdin piped");
    let writer = thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("validator output");
    writer
        .join()
        .expect("writer thread")
        .expect("events written to the validator");
    assert!(
        output.status.success(),
        "validate_usage.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("validator report");
    assert_eq!(report["validated"], events.len(), "{report}");
    assert_eq!(report["errors"], json!([]), "schema violations");

    for (detail_type, detail) in events {
        let schema = schema_for(detail_type);
        let listed: BTreeSet<&str> = schema["properties"]
            .as_object()
            .expect("schema properties")
            .keys()
            .map(String::as_str)
            .collect();
        let present: BTreeSet<&str> = detail
            .as_object()
            .expect("detail is an object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            present, listed,
            "{detail_type}: the detail's fields and the published schema's differ"
        );
    }
}

fn schema_for(detail_type: &str) -> Value {
    let file = match detail_type {
        "mozaiks.usage.execution" => "usage-execution.v1.json",
        "mozaiks.usage.llm" => "usage-llm.v1.json",
        other => panic!("no schema for {other}"),
    };
    let text = std::fs::read_to_string(root().join("schemas").join(file)).expect("schema file");
    serde_json::from_str(&text).expect("schema is JSON")
}
