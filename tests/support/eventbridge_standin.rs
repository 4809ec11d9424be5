//! A scripted stand-in for Amazon EventBridge's PutEvents, for the faults a real service (or
//! moto) will not make on demand: throttling, 500s, per-entry failures, hung and dropped
//! connections.
//!
//! [`StandIn::start`] listens on `127.0.0.1` (OS-assigned port) and speaks the AWS JSON 1.1
//! protocol of `AWSEvents.PutEvents` over HTTP/1.1 with keep-alive, as the SDK does. Each call
//! that carries entries takes the next [`Reply`] of its script (then [`Reply::Accept`] once the
//! script is spent) and is recorded: the entries sent and which of them were accepted. Entries
//! addressed to a bus given to [`StandIn::refuse_bus`] fail in every call, per entry, with its
//! error code (as EventBridge answers an entry its caller may not put on that bus). A request
//! that names no operation (no `X-Amz-Target`: the sink's warm-up at init) is answered 400
//! `UnknownOperationException` and only counted.
//!
//! Std threads only; nothing sleeps as synchronisation. Include it with
//! `#[path = "support/eventbridge_standin.rs"] mod eventbridge_standin;`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use serde_json::{json, Value};

const MAX_HEAD_BYTES: u64 = 64 * 1024;

/// What the stand-in does with one PutEvents call that carries entries.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200, every entry accepted.
    Accept,
    /// The whole call fails: this HTTP status and error code (`__type`).
    Fail(u16, &'static str),
    /// 200 with per-entry results: the entries at these positions (in the call) fail with
    /// these error codes; the others are accepted.
    FailEntries(Vec<(usize, &'static str)>),
    /// Read the call and never answer (the connection stays open until the client drops it).
    Hang,
    /// Read the call and close the connection without an answer.
    Drop,
}

/// One PutEvents call with entries, as received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The request's entries, as sent (`Detail` parsed from its string).
    pub entries: Vec<Value>,
    /// Per entry: did this call accept it.
    pub accepted: Vec<bool>,
    /// The reply it got.
    pub reply: String,
}

impl Call {
    /// The `event_id` in each entry's detail, in call order.
    pub fn event_ids(&self) -> Vec<String> {
        self.entries.iter().map(event_id_of).collect()
    }
}

/// The id in an entry's `Detail`: a usage event's `event_id`, a CloudEvent's `id`.
pub fn event_id_of(entry: &Value) -> String {
    let detail = &entry["Detail"];
    detail["event_id"]
        .as_str()
        .or_else(|| detail["id"].as_str())
        .unwrap_or("<no event id>")
        .to_owned()
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    refused_buses: Vec<(String, &'static str)>,
    calls: Vec<Call>,
    no_operation_calls: usize,
    connections: usize,
    protocol_errors: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running stand-in; stops listening when dropped.
pub struct StandIn {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Starts listening, with this script for the calls that carry entries.
    pub fn start(script: Vec<Reply>) -> io::Result<StandIn> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                script: script.into(),
                ..State::default()
            }),
            stop: AtomicBool::new(false),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("eventbridge-standin".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if shared.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let _ = stream.set_nodelay(true);
                        shared.state().connections += 1;
                        let shared = Arc::clone(&shared);
                        // A connection's thread ends when the client closes it.
                        let _ = thread::Builder::new()
                            .name("eventbridge-standin-conn".into())
                            .spawn(move || serve(stream, &shared));
                    }
                })?
        };
        Ok(StandIn {
            address,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// From now on, every entry addressed to `bus` fails with `code` (not retryable by
    /// EventBridge's rules when the code is, e.g., `AccessDeniedException`), whatever the script
    /// says for the rest of its call.
    pub fn refuse_bus(&self, bus: &str, code: &'static str) {
        self.shared
            .state()
            .refused_buses
            .push((bus.to_owned(), code));
    }

    /// The endpoint URL to give the SDK (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every call with entries received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.state().calls.clone()
    }

    /// Requests that named no operation (warm-ups) received so far.
    pub fn no_operation_calls(&self) -> usize {
        self.shared.state().no_operation_calls
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.state().connections
    }

    /// Requests that were not a well-formed `AWSEvents.PutEvents` call.
    pub fn protocol_errors(&self) -> Vec<String> {
        self.shared.state().protocol_errors.clone()
    }

    /// The event ids accepted so far, in acceptance order.
    pub fn accepted_event_ids(&self) -> Vec<String> {
        self.calls()
            .iter()
            .flat_map(|c| {
                c.entries
                    .iter()
                    .zip(&c.accepted)
                    .filter(|(_, ok)| **ok)
                    .map(|(e, _)| event_id_of(e))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Serves one connection: requests until the client closes it, or a reply drops or hangs it.
fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = write_half;
    loop {
        let request = match read_request(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) | Err(_) => return,
        };
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        match answer(&request, shared) {
            Answer::Respond(status, body) => {
                let reason = match status {
                    200 => "OK",
                    400 => "Bad Request",
                    429 => "Too Many Requests",
                    500 => "Internal Server Error",
                    503 => "Service Unavailable",
                    _ => "Status",
                };
                let head = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nx-amzn-requestid: standin\r\n\r\n",
                    body.len()
                );
                // One write: a head and a body in two small segments would meet Nagle's
                // algorithm and the client's delayed ACK (a 40 ms stall per answer).
                let answer = [head.as_bytes(), body.as_bytes()].concat();
                let sent = writer.write_all(&answer).and_then(|()| writer.flush());
                if sent.is_err() {
                    return;
                }
            }
            Answer::Hang => {
                // Never answer: wait for the client to give up and close the connection.
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink);
                return;
            }
            Answer::Drop => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

struct Request {
    target: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut head = String::new();
    let mut limited = reader.by_ref().take(MAX_HEAD_BYTES);
    loop {
        let before = head.len();
        let n = limited.read_line(&mut head)?;
        if n == 0 {
            return Ok(None); // closed
        }
        if head[before..] == *"\r\n" {
            break;
        }
    }
    let mut target = None;
    let mut content_type = None;
    let mut length = 0usize;
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match name.trim().to_ascii_lowercase().as_str() {
            "x-amz-target" => target = Some(value),
            "content-type" => content_type = Some(value),
            "content-length" => {
                length = value
                    .parse()
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "content-length"))?
            }
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Request {
        target,
        content_type,
        body,
    }))
}

enum Answer {
    Respond(u16, String),
    Hang,
    Drop,
}

fn error_body(code: &str, message: &str) -> String {
    json!({ "__type": code, "message": message }).to_string()
}

fn answer(request: &Request, shared: &Shared) -> Answer {
    let mut state = shared.state();
    if request.target.is_none() {
        state.no_operation_calls += 1;
        return Answer::Respond(
            400,
            error_body("UnknownOperationException", "no operation named"),
        );
    }
    if request.target.as_deref() != Some("AWSEvents.PutEvents")
        || request.content_type.as_deref() != Some("application/x-amz-json-1.1")
    {
        state.protocol_errors.push(format!(
            "target {:?}, content type {:?}",
            request.target, request.content_type
        ));
        return Answer::Respond(
            400,
            error_body("UnknownOperationException", "not PutEvents"),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        state.protocol_errors.push("body is not JSON".into());
        return Answer::Respond(400, error_body("SerializationException", "body"));
    };
    let raw_entries = body["Entries"].as_array().cloned().unwrap_or_default();
    if raw_entries.is_empty() || raw_entries.len() > 10 {
        state
            .protocol_errors
            .push(format!("{} entries in one call", raw_entries.len()));
        return Answer::Respond(
            400,
            error_body("ValidationException", "from 1 to 10 entries"),
        );
    }
    let entries: Vec<Value> = raw_entries
        .into_iter()
        .map(|mut e| {
            let detail = e["Detail"].as_str().unwrap_or("null").to_owned();
            e["Detail"] = serde_json::from_str(&detail).unwrap_or(Value::String(detail));
            e
        })
        .collect();
    let mut reply = state.script.pop_front().unwrap_or(Reply::Accept);
    let n = entries.len();
    // Entries for a refused bus fail in a call that is otherwise answered per entry.
    let refused: Vec<(usize, &'static str)> = entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            state
                .refused_buses
                .iter()
                .find(|(bus, _)| e["EventBusName"] == bus.as_str())
                .map(|(_, code)| (i, *code))
        })
        .collect();
    if !refused.is_empty() {
        reply = match reply {
            Reply::Accept => Reply::FailEntries(refused),
            Reply::FailEntries(mut failures) => {
                failures.extend(refused);
                Reply::FailEntries(failures)
            }
            other => other,
        };
    }
    let record = |state: &mut State, accepted: Vec<bool>| {
        state.calls.push(Call {
            entries: entries.clone(),
            accepted,
            reply: format!("{reply:?}"),
        });
    };
    match &reply {
        Reply::Accept => {
            let results: Vec<Value> = (0..n)
                .map(|i| json!({ "EventId": format!("standin-{}-{i}", state.calls.len()) }))
                .collect();
            record(&mut state, vec![true; n]);
            Answer::Respond(
                200,
                json!({ "FailedEntryCount": 0, "Entries": results }).to_string(),
            )
        }
        Reply::Fail(status, code) => {
            record(&mut state, vec![false; n]);
            Answer::Respond(*status, error_body(code, "scripted failure"))
        }
        Reply::FailEntries(failures) => {
            let mut accepted = Vec::with_capacity(n);
            let results: Vec<Value> = (0..n)
                .map(|i| match failures.iter().find(|(at, _)| *at == i) {
                    Some((_, code)) => {
                        accepted.push(false);
                        json!({ "ErrorCode": code, "ErrorMessage": "scripted entry failure" })
                    }
                    None => {
                        accepted.push(true);
                        json!({ "EventId": format!("standin-{}-{i}", state.calls.len()) })
                    }
                })
                .collect();
            let failed = accepted.iter().filter(|ok| !**ok).count();
            record(&mut state, accepted);
            Answer::Respond(
                200,
                json!({ "FailedEntryCount": failed, "Entries": results }).to_string(),
            )
        }
        Reply::Hang => {
            record(&mut state, vec![false; n]);
            Answer::Hang
        }
        Reply::Drop => {
            record(&mut state, vec![false; n]);
            Answer::Drop
        }
    }
}
