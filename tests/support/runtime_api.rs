//! A small, real AWS Lambda Runtime API emulator for black-box tests and benchmarks.
//!
//! [`RuntimeApi::start`] listens on `127.0.0.1` (OS-assigned port) and speaks the
//! Runtime API that `lambda_runtime` uses (HTTP/1.1, keep-alive, `Content-Length` or
//! chunked bodies, several connections):
//!
//! - `GET /2018-06-01/runtime/invocation/next` blocks until a test queues an event;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `…/{id}/error` record the
//!   outcome and answer 202;
//! - `POST /2018-06-01/runtime/init/error` records the init error and answers 202;
//! - anything else answers 404 (and is listed by [`RuntimeApi::rejected_requests`]).
//!
//! [`spawn_function`] starts a built binary as the Lambda function against it and captures
//! its stdout and stderr line by line. Everything waits on condition variables or channels,
//! bounded by a wall-clock limit; nothing sleeps as synchronisation.
//!
//! Std only, one file: include it with `#[path = "support/runtime_api.rs"] mod runtime_api;`.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Function name the emulator reports (ARN) and [`spawn_function`] sets by default.
pub const FUNCTION_NAME: &str = "mozaiks-runtime-test";
/// Region the emulator reports (ARN) and [`spawn_function`] sets by default.
pub const REGION: &str = "us-east-1";
/// Account id used in the invoked function ARN.
pub const ACCOUNT_ID: &str = "123456789012";
/// Extra time [`RuntimeApi::invoke`] waits beyond the function timeout (covers a cold start).
pub const INVOKE_GRACE: Duration = Duration::from_secs(10);

const API_PREFIX: &str = "/2018-06-01/runtime/";
const MAX_HEAD_BYTES: u64 = 64 * 1024;
const MAX_HEADERS: usize = 128;
const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;
const EXIT_POLL: Duration = Duration::from_millis(5);
const DROP_REAP_WAIT: Duration = Duration::from_secs(5);

// ───────────────────────────── public types ─────────────────────────────

/// When the function's deadline (`Lambda-Runtime-Deadline-Ms`) falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// This long after the function takes the event from `/next` (as Lambda's timeout runs).
    AfterDelivery(Duration),
    /// A fixed instant in epoch milliseconds (may lie in the past, to test expiry handling).
    EpochMs(u64),
}

/// One event to queue, with everything the `/next` answer carries.
#[derive(Debug, Clone)]
pub struct InvokeSpec {
    /// The event payload, sent verbatim as the `/next` body.
    pub event: Vec<u8>,
    /// The deadline the function is told.
    pub deadline: Deadline,
    /// Request id to use; `None` picks a fresh unique one.
    pub request_id: Option<String>,
    /// Extra headers for the `/next` answer (e.g. `Lambda-Runtime-Client-Context`).
    pub extra_headers: Vec<(String, String)>,
}

impl InvokeSpec {
    /// An event with a deadline of `timeout` after delivery and a fresh request id.
    pub fn new(event: &[u8], timeout: Duration) -> InvokeSpec {
        InvokeSpec {
            event: event.to_vec(),
            deadline: Deadline::AfterDelivery(timeout),
            request_id: None,
            extra_headers: Vec::new(),
        }
    }
}

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `POST …/{id}/response` with this body.
    Response(Vec<u8>),
    /// `POST …/{id}/error` with its `Lambda-Runtime-Function-Error-Type` header and body.
    Error {
        /// The `Lambda-Runtime-Function-Error-Type` header, if sent.
        error_type: Option<String>,
        /// The error body (normally `{"errorType":…,"errorMessage":…}`).
        body: Vec<u8>,
    },
}

impl Outcome {
    /// The body bytes, whichever kind of outcome this is.
    pub fn body(&self) -> &[u8] {
        match self {
            Outcome::Response(body) | Outcome::Error { body, .. } => body,
        }
    }

    /// The body as text (invalid UTF-8 replaced), for assertions and messages.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }

    /// True for a `/response` outcome.
    pub fn is_response(&self) -> bool {
        matches!(self, Outcome::Response(_))
    }
}

/// A finished invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The request id sent as `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// What the function answered.
    pub outcome: Outcome,
    /// From queueing the event to the function's answer (what a caller of Invoke sees).
    pub elapsed: Duration,
    /// From the function taking the event off `/next` to its answer.
    pub run_time: Duration,
    /// The `Lambda-Runtime-Deadline-Ms` value the function was given.
    pub deadline_ms: u64,
    /// Headers (and chunked trailers) of the function's outcome request, names lower-case.
    pub headers: Vec<(String, String)>,
}

impl Invocation {
    /// The first header (or trailer) of the outcome request with this name, any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }
}

/// An init error the function posted to `/runtime/init/error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError {
    /// The `Lambda-Runtime-Function-Error-Type` header, if sent.
    pub error_type: Option<String>,
    /// The error body (normally `{"errorType":…,"errorMessage":…}`).
    pub body: Vec<u8>,
}

impl InitError {
    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a harness call did not produce an invocation.
#[derive(Debug)]
pub enum HarnessError {
    /// No answer within the wall-clock limit.
    Timeout {
        /// The invocation's request id.
        request_id: String,
        /// How long the call waited.
        waited: Duration,
        /// Whether the function had taken the event off `/next`.
        delivered: bool,
    },
    /// Every function spawned against this emulator has exited before answering.
    FunctionExited {
        /// The invocation's request id.
        request_id: String,
        /// Exit status of the last function that exited, if known.
        status: Option<ExitStatus>,
        /// Whether the function had taken the event off `/next`.
        delivered: bool,
    },
    /// The request id is already queued or running.
    DuplicateRequestId(String),
    /// A request id or extra header cannot be sent in an HTTP header.
    InvalidHeader(String),
    /// No invocation with this request id is pending (never submitted or already collected).
    UnknownRequestId(String),
    /// The emulator is shutting down.
    Shutdown,
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Timeout {
                request_id,
                waited,
                delivered: true,
            } => write!(
                f,
                "invocation {request_id}: the function took the event but did not answer within \
                 {waited:?}; check its stderr for a hang or panic, or raise the wait"
            ),
            HarnessError::Timeout {
                request_id,
                waited,
                delivered: false,
            } => write!(
                f,
                "invocation {request_id}: no function polled /next within {waited:?}; is a \
                 function running with AWS_LAMBDA_RUNTIME_API set to this emulator's address?"
            ),
            HarnessError::FunctionExited {
                request_id,
                status,
                delivered,
            } => {
                let status = status.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
                let phase = if *delivered {
                    "while handling the event"
                } else {
                    "before taking the event"
                };
                write!(
                    f,
                    "invocation {request_id}: the function exited ({status}) {phase}; see its \
                     stderr and any init error"
                )
            }
            HarnessError::DuplicateRequestId(id) => {
                write!(
                    f,
                    "request id {id} is already pending; use a unique id or None"
                )
            }
            HarnessError::InvalidHeader(what) => {
                write!(
                    f,
                    "{what} contains CR, LF or NUL and cannot be sent as a header"
                )
            }
            HarnessError::UnknownRequestId(id) => write!(
                f,
                "no pending invocation {id}: it was never submitted or was already collected"
            ),
            HarnessError::Shutdown => write!(f, "the Runtime API emulator is shutting down"),
        }
    }
}

impl std::error::Error for HarnessError {}

// ───────────────────────────── shared state ─────────────────────────────

#[derive(Debug)]
enum SlotState {
    Queued,
    Delivered {
        at: Instant,
        deadline_ms: u64,
    },
    Done {
        outcome: Outcome,
        headers: Vec<(String, String)>,
        delivered_at: Instant,
        done_at: Instant,
        deadline_ms: u64,
    },
}

#[derive(Debug)]
struct Slot {
    spec: InvokeSpec,
    queued_at: Instant,
    state: SlotState,
}

#[derive(Debug, Default)]
struct State {
    shutdown: bool,
    queue: VecDeque<String>,
    slots: HashMap<String, Slot>,
    init_errors: Vec<InitError>,
    rejected: Vec<String>,
    waiting_next: usize,
    next_polls: u64,
    connections_accepted: u64,
    functions_spawned: u64,
    functions_live: u64,
    last_exit: Option<ExitStatus>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes connection threads blocked in `/next` (an event was queued, or shutdown).
    events: Condvar,
    /// Wakes test-side waiters (an outcome, init error, poll or function exit happened).
    changed: Condvar,
    addr: SocketAddr,
    arn: String,
    id_salt: u32,
    id_counter: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh_request_id(&self) -> String {
        let n = self.id_counter.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}-0000-4000-8000-{:012x}", self.id_salt, n)
    }

    fn trace_id(&self, request_id: &str) -> String {
        let secs = epoch_ms() / 1000;
        let digest = fnv1a(request_id.as_bytes());
        format!(
            "Root=1-{secs:08x}-{:08x}{digest:016x};Parent={digest:016x};Sampled=0",
            self.id_salt
        )
    }
}

/// Open connections, so shutdown can unblock their reads.
#[derive(Debug, Default)]
struct Connections {
    next_id: u64,
    open: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

// ───────────────────────────── the emulator ─────────────────────────────

/// A running Runtime API emulator; dropping it stops the listener and closes connections.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    connections: Arc<Mutex<Connections>>,
    listener: Option<JoinHandle<()>>,
}

impl fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

impl RuntimeApi {
    /// Binds `127.0.0.1:0` and starts serving on a listener thread.
    pub fn start() -> io::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            events: Condvar::new(),
            changed: Condvar::new(),
            addr,
            arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION_NAME}"),
            id_salt: nanos ^ u32::from(addr.port()).rotate_left(16),
            id_counter: AtomicU64::new(1),
        });
        let connections = Arc::new(Mutex::new(Connections::default()));
        let handle = {
            let shared = Arc::clone(&shared);
            let connections = Arc::clone(&connections);
            thread::Builder::new()
                .name(format!("runtime-api-{}", addr.port()))
                .spawn(move || accept_loop(&listener, &shared, &connections))?
        };
        Ok(RuntimeApi {
            shared,
            connections,
            listener: Some(handle),
        })
    }

    /// `127.0.0.1:PORT`, the value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.shared.addr.to_string()
    }

    /// The ARN sent as `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn function_arn(&self) -> &str {
        &self.shared.arn
    }

    /// Queues `event` with a deadline of `timeout` after delivery and waits up to
    /// `timeout + INVOKE_GRACE` for the function's answer.
    pub fn invoke(&self, event: &[u8], timeout: Duration) -> Result<Invocation, HarnessError> {
        let id = self.submit(InvokeSpec::new(event, timeout))?;
        self.wait_for(&id, timeout.saturating_add(INVOKE_GRACE))
    }

    /// Queues `event` with the given deadline and waits up to `wait` for the answer.
    pub fn invoke_with_deadline(
        &self,
        event: &[u8],
        deadline: Deadline,
        wait: Duration,
    ) -> Result<Invocation, HarnessError> {
        let id = self.submit(InvokeSpec {
            deadline,
            ..InvokeSpec::new(event, Duration::ZERO)
        })?;
        self.wait_for(&id, wait)
    }

    /// Queues an invocation without waiting; returns its request id for [`Self::wait_for`].
    pub fn submit(&self, spec: InvokeSpec) -> Result<String, HarnessError> {
        let id = match &spec.request_id {
            Some(id) => id.clone(),
            None => self.shared.fresh_request_id(),
        };
        let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
        if !id_ok {
            return Err(HarnessError::InvalidHeader(format!("request id {id:?}")));
        }
        for (name, value) in &spec.extra_headers {
            if !is_token(name) || !is_header_safe(value) {
                return Err(HarnessError::InvalidHeader(format!("header {name:?}")));
            }
        }
        let mut st = self.shared.lock();
        if st.shutdown {
            return Err(HarnessError::Shutdown);
        }
        if st.slots.contains_key(&id) {
            return Err(HarnessError::DuplicateRequestId(id));
        }
        st.slots.insert(
            id.clone(),
            Slot {
                spec,
                queued_at: Instant::now(),
                state: SlotState::Queued,
            },
        );
        st.queue.push_back(id.clone());
        drop(st);
        self.shared.events.notify_all();
        Ok(id)
    }

    /// Waits up to `wait` for the answer to a submitted invocation and collects it.
    ///
    /// Returns early with [`HarnessError::FunctionExited`] once every function spawned
    /// against this emulator has exited. On failure the invocation is withdrawn: an event
    /// not yet delivered is taken off the queue, and a late answer is discarded.
    pub fn wait_for(&self, request_id: &str, wait: Duration) -> Result<Invocation, HarnessError> {
        let start = Instant::now();
        let limit = start.checked_add(wait);
        let mut st = self.shared.lock();
        loop {
            let Some(slot) = st.slots.get(request_id) else {
                return Err(HarnessError::UnknownRequestId(request_id.to_owned()));
            };
            let delivered = !matches!(slot.state, SlotState::Queued);
            if matches!(slot.state, SlotState::Done { .. }) {
                if let Some(slot) = st.slots.remove(request_id) {
                    if let SlotState::Done {
                        outcome,
                        headers,
                        delivered_at,
                        done_at,
                        deadline_ms,
                    } = slot.state
                    {
                        return Ok(Invocation {
                            request_id: request_id.to_owned(),
                            outcome,
                            elapsed: done_at.saturating_duration_since(slot.queued_at),
                            run_time: done_at.saturating_duration_since(delivered_at),
                            deadline_ms,
                            headers,
                        });
                    }
                }
            }
            if st.shutdown {
                return Err(HarnessError::Shutdown);
            }
            if st.functions_spawned > 0 && st.functions_live == 0 {
                let status = st.last_exit;
                withdraw(&mut st, request_id);
                return Err(HarnessError::FunctionExited {
                    request_id: request_id.to_owned(),
                    status,
                    delivered,
                });
            }
            let now = Instant::now();
            let remaining = match limit {
                Some(limit) if now < limit => limit - now,
                Some(_) => {
                    withdraw(&mut st, request_id);
                    return Err(HarnessError::Timeout {
                        request_id: request_id.to_owned(),
                        waited: now.saturating_duration_since(start),
                        delivered,
                    });
                }
                None => Duration::from_secs(3600),
            };
            st = self
                .shared
                .changed
                .wait_timeout(st, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits up to `wait` for an init error; returns the first one recorded, if any.
    pub fn wait_init_error(&self, wait: Duration) -> Option<InitError> {
        let st = self.shared.lock();
        let (st, _) = self
            .shared
            .changed
            .wait_timeout_while(st, wait, |st| st.init_errors.is_empty() && !st.shutdown)
            .unwrap_or_else(PoisonError::into_inner);
        st.init_errors.first().cloned()
    }

    /// Every init error recorded so far, oldest first.
    pub fn init_errors(&self) -> Vec<InitError> {
        self.shared.lock().init_errors.clone()
    }

    /// Waits up to `wait` until a function is blocked in `/next` (ready for an event).
    pub fn wait_ready(&self, wait: Duration) -> bool {
        let st = self.shared.lock();
        let (st, _) = self
            .shared
            .changed
            .wait_timeout_while(st, wait, |st| st.waiting_next == 0 && !st.shutdown)
            .unwrap_or_else(PoisonError::into_inner);
        st.waiting_next > 0
    }

    /// How many `GET /next` requests have arrived so far.
    pub fn next_polls(&self) -> u64 {
        self.shared.lock().next_polls
    }

    /// How many TCP connections the emulator has accepted (keep-alive keeps this low).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.lock().connections_accepted
    }

    /// Events queued and not yet taken by a function.
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Requests the emulator refused (unknown path, bad request id, malformed HTTP), as
    /// `"METHOD /path -> STATUS"` lines; a well-behaved function causes none.
    pub fn rejected_requests(&self) -> Vec<String> {
        self.shared.lock().rejected.clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.shutdown = true;
        }
        self.shared.events.notify_all();
        self.shared.changed.notify_all();
        // Wake the accept loop; if that fails, leave the listener thread detached.
        let woke = TcpStream::connect(self.shared.addr).is_ok();
        let threads = {
            let mut conns = self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for stream in conns.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut conns.threads)
        };
        if woke {
            if let Some(handle) = self.listener.take() {
                let _ = handle.join();
            }
        }
        // The listener may have accepted one more connection before it saw the flag.
        let late = {
            let mut conns = self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for stream in conns.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut conns.threads)
        };
        for handle in threads.into_iter().chain(late) {
            let _ = handle.join();
        }
    }
}

/// Takes a pending invocation back: off the queue if undelivered, and forgets its slot.
fn withdraw(st: &mut State, request_id: &str) {
    st.queue.retain(|id| id != request_id);
    st.slots.remove(request_id);
}

// ───────────────────────────── server side ─────────────────────────────

fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    connections: &Arc<Mutex<Connections>>,
) {
    let mut consecutive_errors = 0u32;
    for incoming in listener.incoming() {
        if shared.lock().shutdown {
            return;
        }
        let stream = match incoming {
            Ok(stream) => {
                consecutive_errors = 0;
                shared.lock().connections_accepted += 1;
                stream
            }
            Err(err) => {
                consecutive_errors += 1;
                shared.lock().rejected.push(format!("accept failed: {err}"));
                if consecutive_errors >= 100 {
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        let mut conns = connections.lock().unwrap_or_else(PoisonError::into_inner);
        conns.threads.retain(|h| !h.is_finished());
        let conn_id = conns.next_id;
        conns.next_id += 1;
        conns.open.insert(conn_id, registered);
        let shared_for_conn = Arc::clone(shared);
        let connections_for_conn = Arc::clone(connections);
        let spawned = thread::Builder::new()
            .name(format!("runtime-api-conn-{conn_id}"))
            .spawn(move || {
                serve_connection(stream, &shared_for_conn);
                connections_for_conn
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .open
                    .remove(&conn_id);
            });
        match spawned {
            Ok(handle) => conns.threads.push(handle),
            Err(_) => {
                if let Some(stream) = conns.open.remove(&conn_id) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

/// A parsed HTTP/1.x request.
struct HttpRequest {
    method: String,
    target: String,
    keep_alive: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Why a request could not be read.
enum ReadFailure {
    /// The peer closed the connection (cleanly, between requests).
    Closed,
    /// An I/O error; the connection is unusable.
    Io,
    /// Malformed or oversized request: answer this status, then close.
    Bad(u16, &'static str),
}

/// A response to write.
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn json(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn error(status: u16, error_type: &str, message: &str) -> HttpResponse {
        HttpResponse::json(
            status,
            &format!(
                "{{\"errorType\":\"{}\",\"errorMessage\":\"{}\"}}",
                json_escape(error_type),
                json_escape(message)
            ),
        )
    }
}

/// What the router decided for one request.
enum Action {
    Respond(HttpResponse),
    /// Close without answering (shutdown while blocked in `/next`, or the peer went away).
    Close,
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    loop {
        let request = match read_request(&mut reader, &mut writer) {
            Ok(request) => request,
            Err(ReadFailure::Closed | ReadFailure::Io) => return,
            Err(ReadFailure::Bad(status, why)) => {
                shared
                    .lock()
                    .rejected
                    .push(format!("malformed request -> {status} ({why})"));
                let mut response = HttpResponse::error(status, "InvalidRequest", why);
                response.headers.push(("Connection".into(), "close".into()));
                let _ = write_response(&mut writer, &response);
                return;
            }
        };
        let keep_alive = request.keep_alive;
        let mut response = match route(&request, shared, &reader) {
            Action::Respond(response) => response,
            Action::Close => return,
        };
        if !keep_alive {
            response.headers.push(("Connection".into(), "close".into()));
        }
        if write_response(&mut writer, &response).is_err() || !keep_alive {
            return;
        }
    }
}

fn route(request: &HttpRequest, shared: &Shared, reader: &BufReader<TcpStream>) -> Action {
    let path = request
        .target
        .split_once('?')
        .map_or(request.target.as_str(), |(path, _)| path);
    let rest = path.strip_prefix(API_PREFIX);
    let response = match (request.method.as_str(), rest) {
        ("GET", Some("invocation/next")) => return next_event(shared, reader),
        ("POST", Some("init/error")) => {
            let mut st = shared.lock();
            st.init_errors.push(InitError {
                error_type: header_value(&request.headers, "lambda-runtime-function-error-type")
                    .map(str::to_owned),
                body: request.body.clone(),
            });
            drop(st);
            shared.changed.notify_all();
            HttpResponse::json(202, "{\"status\":\"OK\"}")
        }
        ("POST", Some(rest)) => match rest
            .strip_prefix("invocation/")
            .and_then(|r| r.rsplit_once('/'))
        {
            Some((id, kind @ ("response" | "error"))) if !id.is_empty() && !id.contains('/') => {
                record_outcome(shared, id, kind == "error", request)
            }
            _ => HttpResponse::error(404, "NotFound", "no such Runtime API resource"),
        },
        _ => HttpResponse::error(404, "NotFound", "no such Runtime API resource"),
    };
    if response.status >= 400 {
        shared.lock().rejected.push(format!(
            "{} {} -> {}",
            request.method, request.target, response.status
        ));
    }
    Action::Respond(response)
}

fn record_outcome(
    shared: &Shared,
    id: &str,
    is_error: bool,
    request: &HttpRequest,
) -> HttpResponse {
    let mut st = shared.lock();
    let Some(slot) = st.slots.get_mut(id) else {
        // Unknown, or withdrawn after the test stopped waiting: Lambda's answer for both.
        return HttpResponse::error(400, "InvalidRequestID", "Invalid request ID");
    };
    let (delivered_at, deadline_ms) = match slot.state {
        SlotState::Delivered { at, deadline_ms } => (at, deadline_ms),
        SlotState::Queued | SlotState::Done { .. } => {
            return HttpResponse::error(
                403,
                "InvalidStateTransition",
                "State transition from Ready to InvocationErrorResponse failed",
            );
        }
    };
    let outcome = if is_error {
        Outcome::Error {
            error_type: header_value(&request.headers, "lambda-runtime-function-error-type")
                .map(str::to_owned),
            body: request.body.clone(),
        }
    } else {
        Outcome::Response(request.body.clone())
    };
    slot.state = SlotState::Done {
        outcome,
        headers: request.headers.clone(),
        delivered_at,
        done_at: Instant::now(),
        deadline_ms,
    };
    drop(st);
    shared.changed.notify_all();
    HttpResponse::json(202, "{\"status\":\"OK\"}")
}

/// `GET /next`: blocks until an event is queued, then hands it over.
fn next_event(shared: &Shared, reader: &BufReader<TcpStream>) -> Action {
    let mut st = shared.lock();
    st.waiting_next += 1;
    st.next_polls += 1;
    shared.changed.notify_all();
    let delivered = loop {
        if st.shutdown {
            break None;
        }
        if !st.queue.is_empty() {
            // Do not hand an event to a peer that has gone away (a killed function).
            if !peer_alive(reader) {
                break None;
            }
            let Some(id) = st.queue.pop_front() else {
                continue;
            };
            let Some(slot) = st.slots.get_mut(&id) else {
                continue;
            };
            let now = Instant::now();
            let deadline_ms = match slot.spec.deadline {
                Deadline::AfterDelivery(d) => {
                    epoch_ms().saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                }
                Deadline::EpochMs(ms) => ms,
            };
            slot.state = SlotState::Delivered {
                at: now,
                deadline_ms,
            };
            let mut headers = vec![
                ("Content-Type".to_owned(), "application/json".to_owned()),
                ("Lambda-Runtime-Aws-Request-Id".to_owned(), id.clone()),
                (
                    "Lambda-Runtime-Deadline-Ms".to_owned(),
                    deadline_ms.to_string(),
                ),
                (
                    "Lambda-Runtime-Invoked-Function-Arn".to_owned(),
                    shared.arn.clone(),
                ),
                ("Lambda-Runtime-Trace-Id".to_owned(), shared.trace_id(&id)),
            ];
            headers.extend(slot.spec.extra_headers.iter().cloned());
            break Some(HttpResponse {
                status: 200,
                headers,
                body: slot.spec.event.clone(),
            });
        }
        st = shared
            .events
            .wait(st)
            .unwrap_or_else(PoisonError::into_inner);
    };
    st.waiting_next -= 1;
    drop(st);
    // Another waiter may be able to take what this one could not.
    shared.events.notify_all();
    shared.changed.notify_all();
    match delivered {
        Some(response) => Action::Respond(response),
        None => Action::Close,
    }
}

/// True unless the peer has closed its side (EOF) or the socket failed.
fn peer_alive(reader: &BufReader<TcpStream>) -> bool {
    if !reader.buffer().is_empty() {
        return true;
    }
    let stream = reader.get_ref();
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut probe = [0u8; 1];
    let alive = match stream.peek(&mut probe) {
        Ok(0) => false,
        Ok(_) => true,
        Err(err) => err.kind() == io::ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    alive
}

fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> Result<HttpRequest, ReadFailure> {
    let mut head_budget = MAX_HEAD_BYTES;
    // Request line (tolerating empty lines before it, RFC 9112 §2.2).
    let line = loop {
        match read_line(reader, &mut head_budget)? {
            None => return Err(ReadFailure::Closed),
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadFailure::Bad(400, "malformed request line"));
    };
    let http_10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => {
            return Err(ReadFailure::Bad(
                505,
                "only HTTP/1.0 and HTTP/1.1 are supported",
            ))
        }
    };
    if method.is_empty() || !target.starts_with('/') {
        return Err(ReadFailure::Bad(400, "malformed request line"));
    }
    let headers = read_headers(reader, &mut head_budget)?;

    let connection = header_value(&headers, "connection")
        .unwrap_or("")
        .to_ascii_lowercase();
    let keep_alive = if http_10 {
        connection.split(',').any(|t| t.trim() == "keep-alive")
    } else {
        !connection.split(',').any(|t| t.trim() == "close")
    };
    if header_value(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| ReadFailure::Io)?;
    }

    let mut headers = headers;
    let transfer_encoding =
        header_value(&headers, "transfer-encoding").map(str::to_ascii_lowercase);
    let body = match transfer_encoding {
        Some(te) => {
            if te.rsplit(',').next().map(str::trim) != Some("chunked") {
                return Err(ReadFailure::Bad(501, "unsupported transfer-encoding"));
            }
            read_chunked(reader, &mut headers)?
        }
        None => {
            let mut lengths = headers
                .iter()
                .filter(|(n, _)| n == "content-length")
                .map(|(_, v)| v.trim().parse::<u64>());
            let length = match lengths.next() {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => return Err(ReadFailure::Bad(400, "invalid content-length")),
            };
            if lengths.any(|other| other.ok() != Some(length)) {
                return Err(ReadFailure::Bad(400, "conflicting content-length headers"));
            }
            if length > MAX_BODY_BYTES {
                return Err(ReadFailure::Bad(413, "request body too large"));
            }
            read_exact_vec(reader, length)?
        }
    };
    Ok(HttpRequest {
        method: method.to_owned(),
        target: target.to_owned(),
        keep_alive,
        headers,
        body,
    })
}

/// Reads header lines up to the empty line; names lower-cased, values trimmed.
fn read_headers(
    reader: &mut BufReader<TcpStream>,
    budget: &mut u64,
) -> Result<Vec<(String, String)>, ReadFailure> {
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(reader, budget)? else {
            return Err(ReadFailure::Io);
        };
        if line.is_empty() {
            return Ok(headers);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadFailure::Bad(400, "malformed header line"));
        };
        if !is_token(name) {
            return Err(ReadFailure::Bad(400, "malformed header name"));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(ReadFailure::Bad(431, "too many headers"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
}

/// Reads one CRLF- (or LF-) terminated line as text; `None` on EOF before any byte.
fn read_line(
    reader: &mut BufReader<TcpStream>,
    budget: &mut u64,
) -> Result<Option<String>, ReadFailure> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(budget.saturating_add(1))
        .read_until(b'\n', &mut buf)
        .map_err(|_| ReadFailure::Io)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return if n as u64 > *budget {
            Err(ReadFailure::Bad(431, "request head too large"))
        } else {
            Err(ReadFailure::Io)
        };
    }
    *budget = budget.saturating_sub(n as u64);
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| ReadFailure::Bad(400, "request head is not UTF-8"))
}

fn read_exact_vec(reader: &mut BufReader<TcpStream>, length: u64) -> Result<Vec<u8>, ReadFailure> {
    let mut body = Vec::new();
    let got = reader
        .by_ref()
        .take(length)
        .read_to_end(&mut body)
        .map_err(|_| ReadFailure::Io)?;
    if got as u64 != length {
        return Err(ReadFailure::Io);
    }
    Ok(body)
}

/// Decodes a chunked body; trailers are appended to `headers`.
fn read_chunked(
    reader: &mut BufReader<TcpStream>,
    headers: &mut Vec<(String, String)>,
) -> Result<Vec<u8>, ReadFailure> {
    let mut body = Vec::new();
    loop {
        let mut line_budget = 4096;
        let Some(line) = read_line(reader, &mut line_budget)? else {
            return Err(ReadFailure::Io);
        };
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| ReadFailure::Bad(400, "malformed chunk size"))?;
        if size == 0 {
            let mut trailer_budget = MAX_HEAD_BYTES;
            let trailers = read_headers(reader, &mut trailer_budget)?;
            headers.extend(trailers);
            return Ok(body);
        }
        if (body.len() as u64).saturating_add(size) > MAX_BODY_BYTES {
            return Err(ReadFailure::Bad(413, "request body too large"));
        }
        body.extend(read_exact_vec(reader, size)?);
        let mut crlf_budget = 2;
        match read_line(reader, &mut crlf_budget) {
            Ok(Some(rest)) if rest.is_empty() => {}
            Ok(_) | Err(ReadFailure::Bad(..)) => {
                return Err(ReadFailure::Bad(400, "chunk not followed by CRLF"))
            }
            Err(other) => return Err(other),
        }
    }
}

fn write_response(writer: &mut TcpStream, response: &HttpResponse) -> io::Result<()> {
    let mut out = Vec::with_capacity(256 + response.body.len());
    let reason = match response.status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    };
    write!(out, "HTTP/1.1 {} {reason}\r\n", response.status)?;
    for (name, value) in &response.headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    write!(out, "Content-Length: {}\r\n\r\n", response.body.len())?;
    out.extend_from_slice(&response.body);
    writer.write_all(&out)?;
    writer.flush()
}

// ───────────────────────────── the function process ─────────────────────────────

/// One captured output stream.
#[derive(Debug, Default)]
struct Stream {
    lines: Vec<String>,
    /// Lines removed by a `take_*` call, so positions stay absolute.
    drained: usize,
    closed: bool,
}

#[derive(Debug, Default)]
struct Output {
    stdout: Stream,
    stderr: Stream,
}

#[derive(Debug, Default)]
struct ExitState {
    done: bool,
    status: Option<ExitStatus>,
}

#[derive(Debug, Default)]
struct ProcessShared {
    output: Mutex<Output>,
    output_changed: Condvar,
    exit: Mutex<ExitState>,
    exited: Condvar,
}

impl ProcessShared {
    fn output(&self) -> MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn exit(&self) -> MutexGuard<'_, ExitState> {
        self.exit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A function binary running against a [`RuntimeApi`]; dropping it kills the process.
#[derive(Debug)]
pub struct FunctionProcess {
    pid: u32,
    shared: Arc<ProcessShared>,
    control: Sender<Control>,
    waiter: Option<JoinHandle<()>>,
}

/// Starts `binary` as a Lambda function against `api`.
///
/// The child gets a clean Lambda environment: inherited `AWS_*`, `MOZAIKS_*`, `LAMBDA_*`
/// and `_X_AMZN_*` variables are removed; `AWS_LAMBDA_RUNTIME_API`, the function name,
/// memory size, version, log group and stream, `AWS_REGION` and
/// `AWS_LAMBDA_INITIALIZATION_TYPE` are set; then `env` is applied on top (it can override
/// any of them). When `env` sets `LAMBDA_TASK_ROOT`, the child also runs in that directory,
/// as on Lambda. Stdin is closed; stdout and stderr are captured line by line.
pub fn spawn_function(
    binary: &Path,
    api: &RuntimeApi,
    env: &[(&str, &str)],
) -> io::Result<FunctionProcess> {
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        let strip = key.to_str().is_some_and(|k| {
            ["AWS_", "MOZAIKS_", "LAMBDA_", "_X_AMZN_"]
                .iter()
                .any(|prefix| k.starts_with(prefix))
        });
        if strip {
            command.env_remove(&key);
        }
    }
    let address = api.address();
    let log_group = format!("/aws/lambda/{FUNCTION_NAME}");
    let defaults = [
        ("AWS_LAMBDA_RUNTIME_API", address.as_str()),
        ("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2025/01/01/[$LATEST]00000000000000000000000000000000",
        ),
        ("AWS_LAMBDA_LOG_GROUP_NAME", log_group.as_str()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
    ];
    command.envs(defaults);
    command.envs(env.iter().copied());
    if let Some((_, root)) = env.iter().rev().find(|(k, _)| *k == "LAMBDA_TASK_ROOT") {
        command.current_dir(root);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let shared = Arc::new(ProcessShared::default());
    let (control, control_rx) = mpsc::channel::<Control>();
    // The watcher starts first, so a failure to create threads never leaves a child unwatched.
    let (child_tx, child_rx) = mpsc::channel::<Child>();
    let waiter = {
        let shared = Arc::clone(&shared);
        let api_shared = Arc::clone(&api.shared);
        thread::Builder::new()
            .name("function-waiter".to_owned())
            .spawn(move || {
                let Ok(mut child) = child_rx.recv() else {
                    return; // spawning the child failed
                };
                let status = watch_child(&mut child, &control_rx);
                // The emulator first, so that once `wait_exit` returns, `wait_for` knows too.
                {
                    let mut st = api_shared.lock();
                    st.functions_live = st.functions_live.saturating_sub(1);
                    st.last_exit = status;
                }
                api_shared.changed.notify_all();
                {
                    let mut exit = shared.exit();
                    exit.done = true;
                    exit.status = status;
                }
                shared.exited.notify_all();
            })?
    };

    let mut child = command.spawn()?;
    let pid = child.id();
    match child.stdout.take() {
        Some(stdout) => spawn_reader(stdout, &shared, true, control.clone()),
        None => shared.output().stdout.closed = true,
    }
    match child.stderr.take() {
        Some(stderr) => spawn_reader(stderr, &shared, false, control.clone()),
        None => shared.output().stderr.closed = true,
    }
    {
        let mut st = api.shared.lock();
        st.functions_spawned += 1;
        st.functions_live += 1;
    }
    if let Err(mpsc::SendError(mut child)) = child_tx.send(child) {
        // The watcher thread is gone (it cannot be, short of a panic): do its job here.
        let _ = child.kill();
        let status = child.wait().ok();
        let mut st = api.shared.lock();
        st.functions_live = st.functions_live.saturating_sub(1);
        st.last_exit = status;
        return Err(io::Error::other(
            "the function watcher thread stopped unexpectedly",
        ));
    }
    Ok(FunctionProcess {
        pid,
        shared,
        control,
        waiter: Some(waiter),
    })
}

/// Messages to the thread that watches the child.
#[derive(Debug, Clone, Copy)]
enum Control {
    /// Kill the child.
    Kill,
    /// A pipe closed: the child is probably exiting, check now.
    PipeClosed,
}

/// Waits for the child to exit, killing it when asked (or when the owner is gone).
///
/// Std cannot wait for a child on one thread and kill it from another, so this checks
/// `try_wait` between short bounded waits on the control channel.
fn watch_child(child: &mut Child, control: &mpsc::Receiver<Control>) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
        match control.recv_timeout(EXIT_POLL) {
            Ok(Control::PipeClosed) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Control::Kill) | Err(RecvTimeoutError::Disconnected) => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
    }
}

fn spawn_reader<R: Read + Send + 'static>(
    pipe: R,
    shared: &Arc<ProcessShared>,
    is_stdout: bool,
    nudge: Sender<Control>,
) {
    let shared_for_thread = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(
            if is_stdout {
                "function-stdout"
            } else {
                "function-stderr"
            }
            .to_owned(),
        )
        .spawn(move || {
            let shared = shared_for_thread;
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&b'\n') {
                            buf.pop();
                        }
                        if buf.last() == Some(&b'\r') {
                            buf.pop();
                        }
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        let mut out = shared.output();
                        let stream = if is_stdout {
                            &mut out.stdout
                        } else {
                            &mut out.stderr
                        };
                        stream.lines.push(line);
                        drop(out);
                        shared.output_changed.notify_all();
                    }
                }
            }
            let mut out = shared.output();
            if is_stdout {
                out.stdout.closed = true;
            } else {
                out.stderr.closed = true;
            }
            drop(out);
            shared.output_changed.notify_all();
            // The pipe closing usually means the process is exiting: check promptly.
            let _ = nudge.send(Control::PipeClosed);
        });
    if spawned.is_err() {
        let mut out = shared.output();
        if is_stdout {
            out.stdout.closed = true;
        } else {
            out.stderr.closed = true;
        }
    }
}

impl FunctionProcess {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Every stdout line captured so far (without line endings).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.shared.output().stdout.lines.clone()
    }

    /// Every stderr line captured so far (without line endings).
    pub fn stderr_lines(&self) -> Vec<String> {
        self.shared.output().stderr.lines.clone()
    }

    /// Removes and returns the stdout lines captured so far (bounds memory in long runs).
    pub fn take_stdout_lines(&self) -> Vec<String> {
        let mut out = self.shared.output();
        let lines = std::mem::take(&mut out.stdout.lines);
        out.stdout.drained += lines.len();
        lines
    }

    /// Removes and returns the stderr lines captured so far.
    pub fn take_stderr_lines(&self) -> Vec<String> {
        let mut out = self.shared.output();
        let lines = std::mem::take(&mut out.stderr.lines);
        out.stderr.drained += lines.len();
        lines
    }

    /// Waits up to `wait` for a stdout line (already captured or new) matching `pred`.
    ///
    /// Returns `None` on timeout, or as soon as stdout is closed with no match.
    pub fn wait_stdout_line(&self, pred: impl Fn(&str) -> bool, wait: Duration) -> Option<String> {
        self.wait_line(true, &pred, wait)
    }

    /// Waits up to `wait` for a stderr line (already captured or new) matching `pred`.
    pub fn wait_stderr_line(&self, pred: impl Fn(&str) -> bool, wait: Duration) -> Option<String> {
        self.wait_line(false, &pred, wait)
    }

    /// Waits up to `wait` until at least `count` stdout lines match `pred`, and returns all
    /// matching lines captured by then (fewer than `count` on timeout or once stdout closes).
    ///
    /// Use it instead of [`Self::stdout_lines`] right after an invocation: the pipe may
    /// deliver a line the function printed a moment after its HTTP answer arrives.
    pub fn wait_stdout_matches(
        &self,
        pred: impl Fn(&str) -> bool,
        count: usize,
        wait: Duration,
    ) -> Vec<String> {
        let out = self.shared.output();
        let (out, _) = self
            .shared
            .output_changed
            .wait_timeout_while(out, wait, |out| {
                !out.stdout.closed && out.stdout.lines.iter().filter(|l| pred(l)).count() < count
            })
            .unwrap_or_else(PoisonError::into_inner);
        out.stdout
            .lines
            .iter()
            .filter(|l| pred(l))
            .cloned()
            .collect()
    }

    fn wait_line(
        &self,
        stdout: bool,
        pred: &dyn Fn(&str) -> bool,
        wait: Duration,
    ) -> Option<String> {
        let limit = Instant::now().checked_add(wait);
        let mut out = self.shared.output();
        let mut seen = 0usize; // absolute index of the next line to check
        loop {
            let stream = if stdout { &out.stdout } else { &out.stderr };
            let start = seen.saturating_sub(stream.drained);
            if let Some(line) = stream.lines.iter().skip(start).find(|l| pred(l)) {
                return Some(line.clone());
            }
            seen = stream.drained + stream.lines.len();
            if stream.closed {
                return None;
            }
            let now = Instant::now();
            let remaining = match limit {
                Some(limit) if now < limit => limit - now,
                Some(_) => return None,
                None => Duration::from_secs(3600),
            };
            out = self
                .shared
                .output_changed
                .wait_timeout(out, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits up to `wait` for the process to exit; `None` if it is still running.
    pub fn wait_exit(&self, wait: Duration) -> Option<ExitStatus> {
        let exit = self.shared.exit();
        let (exit, _) = self
            .shared
            .exited
            .wait_timeout_while(exit, wait, |e| !e.done)
            .unwrap_or_else(PoisonError::into_inner);
        exit.status
    }

    /// True once the process has exited (and been reaped).
    pub fn has_exited(&self) -> bool {
        self.shared.exit().done
    }

    /// Kills the process (if still running) and waits up to five seconds for it to be reaped.
    pub fn kill(&self) -> Option<ExitStatus> {
        self.request_kill();
        self.wait_exit(DROP_REAP_WAIT)
    }

    fn request_kill(&self) {
        // Fails only when the watcher has already finished, i.e. the child was reaped.
        let _ = self.control.send(Control::Kill);
    }

    /// Captured stdout and stderr, formatted for an assertion message.
    pub fn output_report(&self) -> String {
        let out = self.shared.output();
        let mut report = format!("--- function {} stdout ---\n", self.pid);
        for line in &out.stdout.lines {
            report.push_str(line);
            report.push('\n');
        }
        report.push_str("--- stderr ---\n");
        for line in &out.stderr.lines {
            report.push_str(line);
            report.push('\n');
        }
        report
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        self.request_kill();
        if self.wait_exit(DROP_REAP_WAIT).is_some() || self.has_exited() {
            if let Some(handle) = self.waiter.take() {
                let _ = handle.join();
            }
        }
    }
}

// ───────────────────────────── helpers ─────────────────────────────

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_header_safe(value: &str) -> bool {
    !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
