//! One execution, end to end (CONTRACT §1): verify → resolve → run → meter → emit → result.
//!
//! [`App`] holds everything built at init (keys, compiled workflows, the usage sink); an
//! invocation only reads it. Edges ([`crate::invoke`]) turn events into a [`Request`] and the
//! [`ExecutionResult`] into their response shapes.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tracing::{info, warn, Instrument as _};

use crate::auth::{ExecutionContext, Verifier};
use crate::config::Config;
use crate::continuation::{Binding, Sealer};
use crate::engine_thread::{EngineThread, Late, GRACE};
use crate::problem::{Problem, Rejection};
use crate::usage::events::LlmCallUsage;
use crate::usage::events::{HttpTotals, LlmTotals};
use crate::usage::{ExecutionUsage, Sink};
use crate::workflow::{
    ExecutionInfo, LlmCall, Outcome, Progress, Redactor, Registry, RunResult, WorkflowError,
    WorkflowId,
};

/// An authenticated request, ready to run.
#[derive(Debug)]
pub struct Request {
    /// The verified launch token's claims.
    pub context: ExecutionContext,
    /// The execution input.
    pub input: Value,
    /// Size of the input as received, in bytes.
    pub input_bytes: usize,
    /// An opaque continuation, when resuming a waiting execution.
    pub continuation: Option<String>,
}

/// The invocation an execution runs in.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The execution id (a UUIDv7), generated when the event arrived.
    pub execution_id: String,
    /// The Lambda request id.
    pub request_id: String,
    /// The invocation deadline (`Lambda-Runtime-Deadline-Ms`).
    pub deadline: SystemTime,
}

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The workflow ran to its end.
    Completed,
    /// The workflow needs the caller before it can go on.
    Waiting,
    /// The workflow raised or failed.
    Faulted,
    /// The request never ran.
    Rejected,
}

impl Status {
    /// The status as written in responses and usage events.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Waiting => "waiting",
            Status::Faulted => "faulted",
            Status::Rejected => "rejected",
        }
    }
}

/// The result of one invocation: the response object of CONTRACT §2.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionResult {
    /// The execution id.
    pub execution_id: String,
    /// How it ended.
    pub status: Status,
    /// The workflow, once resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowId>,
    /// The workflow output (completed), or what it has so far (waiting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The workflow error (faulted) or the rejection (rejected), as problem details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// The continuation of a waiting execution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<String>,
    /// The rejection, for edges that map it to their own answer (HTTP status, challenge).
    #[serde(skip)]
    pub rejection: Option<Rejection>,
}

impl Invocation {
    /// Logs a rejection (its reason only, never caller data) and builds its result.
    pub fn reject(&self, rejection: Rejection) -> ExecutionResult {
        match &rejection {
            Rejection::InvalidContinuation { reason } => info!(
                status = "rejected",
                reason = rejection.reason(),
                continuation = reason,
                "execution rejected"
            ),
            _ => info!(
                status = "rejected",
                reason = rejection.reason(),
                "execution rejected"
            ),
        }
        ExecutionResult::rejected(self.execution_id.clone(), rejection)
    }
}

impl ExecutionResult {
    /// A request that never ran.
    pub fn rejected(execution_id: String, rejection: Rejection) -> ExecutionResult {
        ExecutionResult {
            execution_id,
            status: Status::Rejected,
            workflow: None,
            output: None,
            error: Some(rejection.problem()),
            continuation: None,
            rejection: Some(rejection),
        }
    }
}

/// A failure to build the [`App`] at init.
#[derive(Debug)]
pub struct InitError(String);

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InitError {}

/// Everything built at init and shared, read-only, by every invocation.
pub struct App {
    verifier: Verifier,
    registry: Registry,
    sink: Sink,
    max_input_bytes: usize,
    usage_reserve: Duration,
    /// Seals and opens continuations; `None` without `MOZAIKS_CONTINUATION_KEY`.
    sealer: Option<Sealer>,
    /// Secret values taken out of every error detail a caller sees.
    secrets: Redactor,
    /// Where runs happen.
    engine: EngineThread,
    /// Set when a run was cut while computing (see [`App::must_exit`]).
    exit_after_answer: AtomicBool,
}

/// Refusal reason logged when a continuation arrives and no key is configured.
const NO_CONTINUATION_KEY: &str = "not_configured";
/// Refusal reason logged when an authentic continuation does not fit the workflow's engine.
const UNRESUMABLE: &str = "unresumable";

/// How a run ended, as the response and the usage event carry it.
#[derive(Debug)]
struct Settled {
    status: Status,
    output: Option<Value>,
    error: Option<Problem>,
    continuation: Option<String>,
}

impl App {
    /// Builds the app from configuration: parses keys, loads and compiles every workflow, and
    /// builds the event sink (with a bus: the EventBridge client, its connection opened).
    pub async fn new(config: Config) -> Result<App, InitError> {
        let jwks_origin = config.jwks_origin.clone();
        let verifier = Verifier::new(config.auth).map_err(|e| {
            // Key-set errors name the key; say which variable the key set came from.
            let message = e.to_string();
            match jwks_origin {
                Some(origin) if message.starts_with("JWKS") => {
                    InitError(format!("{origin}: {message}"))
                }
                _ => InitError(message),
            }
        })?;
        let registry =
            crate::workflow::Registry::load_dir_with(&config.workflows_dir, &config.engine)
                .map_err(|e| {
                    InitError(format!(
                        "MOZAIKS_WORKFLOWS_DIR ({}): {e}",
                        config.workflows_dir.display()
                    ))
                })?;
        let sink = Sink::from_config(
            &config.usage,
            config.workflow_event_bus.as_deref(),
            |name| std::env::var(name).ok(),
        )
        .await
        .map_err(|e| InitError(e.to_string()))?;
        let engine = EngineThread::start(config.engine_stack)
            .map_err(|e| InitError(format!("could not start the engine thread: {e}")))?;
        let continuation = config.continuation;
        let sealer = continuation.key.map(|key| {
            Sealer::new(
                key,
                continuation.previous_keys,
                continuation.ttl_seconds,
                continuation.max_bytes,
            )
        });
        if sealer.is_none() {
            for workflow in registry.workflows().filter(|w| w.can_wait()) {
                // Not a failure: the deployment may not need waiting; the run says so if it does.
                warn!(
                    workflow = %workflow.id(),
                    "this workflow can hand a conversation back to the user, but \
                     MOZAIKS_CONTINUATION_KEY is not set: its runs that would wait fault with a \
                     configuration error until a key is configured"
                );
            }
        }
        Ok(App {
            verifier,
            registry,
            sink,
            max_input_bytes: config.max_input_bytes,
            usage_reserve: config.usage_reserve,
            sealer,
            secrets: config.secrets,
            engine,
            exit_after_answer: AtomicBool::new(false),
        })
    }

    /// Largest execution input accepted, in bytes.
    pub fn max_input_bytes(&self) -> usize {
        self.max_input_bytes
    }

    /// Number of bundled workflows.
    pub fn workflow_count(&self) -> usize {
        self.registry.len()
    }

    /// Verifies a launch token (CONTRACT §4). The error is the rejection to answer with; its
    /// precise reason is logged, never returned to the caller.
    pub fn authenticate(&self, token: Option<&str>) -> Result<ExecutionContext, Rejection> {
        let Some(token) = token else {
            return Err(Rejection::InvalidToken {
                reason: "missing_token",
            });
        };
        let now = crate::time::since_epoch(SystemTime::now()).as_secs();
        self.verifier.verify(token, now).map_err(|e| {
            if e.is_insufficient_scope() {
                Rejection::InsufficientScope {
                    scope: self.verifier.required_scope().to_owned(),
                }
            } else {
                Rejection::InvalidToken { reason: e.reason() }
            }
        })
    }

    /// Runs one execution for an authenticated request: resolve → run → meter → emit → result.
    pub async fn execute(&self, request: Request, invocation: &Invocation) -> ExecutionResult {
        let started_at = SystemTime::now();
        let reject = |rejection: Rejection| invocation.reject(rejection);
        let context = request.context;
        let Some(workflow) = self
            .registry
            .resolve(context.workflow_id(), context.workflow_version())
        else {
            return reject(Rejection::UnknownWorkflow);
        };
        let Ok(raw_context) = serde_json::from_str::<&RawValue>(context.raw_json()) else {
            // The verifier only accepts a JSON object; this cannot happen for a verified token.
            return reject(Rejection::InvalidToken {
                reason: "malformed_claims",
            });
        };
        let binding = Binding::new(workflow.id(), context.claims());
        let now = || crate::time::since_epoch(SystemTime::now()).as_secs();
        let resumed = match request.continuation.as_deref() {
            None => None,
            Some(text) => {
                let Some(sealer) = &self.sealer else {
                    warn!(
                        "a continuation arrived but MOZAIKS_CONTINUATION_KEY is not set, so \
                         this deployment cannot open it"
                    );
                    return reject(Rejection::InvalidContinuation {
                        reason: NO_CONTINUATION_KEY,
                    });
                };
                match sealer.open(text, &binding, now()) {
                    Ok(opened) => Some(opened),
                    Err(invalid) => {
                        return reject(Rejection::InvalidContinuation {
                            reason: invalid.reason(),
                        })
                    }
                }
            }
        };

        let run_deadline = self.run_deadline(invocation.deadline);
        let info = ExecutionInfo {
            execution_id: invocation.execution_id.clone(),
            claims: context.claims().clone(),
        };
        if let Some(opened) = &resumed {
            info!(resumes = %opened.issued_by, "resuming a waiting execution");
        }
        // The run happens on the engine thread; this thread waits for it until its deadline
        // (plus a grace for the engine's own timeout to answer), and answers for it if it is
        // still computing then.
        let progress = Arc::new(Progress::default());
        let run = {
            let progress = progress.clone();
            let input = request.input;
            let workflow = workflow.clone();
            async move {
                match resumed {
                    None => Ok(workflow
                        .run_observed(input, &info, run_deadline, progress)
                        .await),
                    Some(opened) => {
                        workflow
                            .resume_observed(opened.state, input, &info, run_deadline, progress)
                            .await
                    }
                }
            }
            .instrument(tracing::Span::current())
        };
        let grace = GRACE.min(self.usage_reserve / 2);
        let run = match self.engine.run(run, run_deadline + grace).await {
            Ok(Ok(run)) => run,
            // The engine's explanation may describe the state (caller data): not logged.
            Ok(Err(_)) => {
                return reject(Rejection::InvalidContinuation {
                    reason: UNRESUMABLE,
                })
            }
            Err(late) => self.cut(&progress, late),
        };
        let ended_at = SystemTime::now();

        let Settled {
            status,
            output,
            error,
            continuation,
        } = self.settle(run.outcome, &binding, &invocation.execution_id, now());
        let output_bytes = output.as_ref().map(serialized_len).unwrap_or_default();
        let usage = ExecutionUsage {
            execution_id: &invocation.execution_id,
            request_id: &invocation.request_id,
            workflow: workflow.id(),
            status: status.as_str(),
            started_at,
            ended_at,
            tasks_executed: run.metrics.tasks_executed,
            llm: llm_totals(&run.llm_calls),
            http: HttpTotals {
                calls: run.metrics.http_calls,
                bytes_sent: run.metrics.http_bytes_sent,
                bytes_received: run.metrics.http_bytes_received,
            },
            input_bytes: request.input_bytes as u64,
            output_bytes,
            context: raw_context,
        };
        // An execution's events in the order they happened: its model calls' `mozaiks.usage.llm`
        // events (agent tasks, issue 6) come first, its `mozaiks.usage.execution` event last;
        // `sequence` numbers them from 1.
        let mut events = Vec::with_capacity(run.llm_calls.len() + 1);
        for call in &run.llm_calls {
            let sequence = events.len() as u64 + 1;
            let usage = LlmCallUsage {
                execution_id: &invocation.execution_id,
                model: &call.model,
                provider: &call.provider,
                agent: &call.agent,
                prompt_tokens: call.prompt_tokens,
                completion_tokens: call.completion_tokens,
                total_tokens: call.total_tokens,
                cached_tokens: call.cached_tokens,
                started_at: call.started_at,
                ended_at: call.ended_at,
                context: raw_context,
            };
            match usage.to_event(sequence) {
                Ok(event) => events.push(event),
                Err(e) => warn!(error = %e, "could not build an llm usage event"),
            }
        }
        let sequence = events.len() as u64 + 1;
        match usage.to_event(sequence) {
            Ok(event) => events.push(event),
            Err(e) => warn!(error = %e, "could not build the usage event"),
        }
        // The workflow's emitted CloudEvents and the usage events go out in one delivery, which
        // finishes before the response is returned (Lambda freezes the process once it is
        // sent); what it reports is logged by the sink and never changes the result.
        self.sink
            .emit(&run.events, &events, invocation.deadline)
            .await;
        info!(
            status = status.as_str(),
            workflow = %workflow.id().name,
            tasks = run.metrics.tasks_executed,
            duration_ms = ended_at.duration_since(started_at).unwrap_or_default().as_millis() as u64,
            "execution finished"
        );
        ExecutionResult {
            execution_id: invocation.execution_id.clone(),
            status,
            workflow: Some(workflow.id().clone()),
            output,
            error,
            continuation,
            rejection: None,
        }
    }

    /// The response parts of a run's outcome; a waiting run's state is sealed into its
    /// continuation (or, without a key or over the size limit, the run faults saying so).
    fn settle(
        &self,
        outcome: Outcome,
        binding: &Binding<'_>,
        execution_id: &str,
        now: u64,
    ) -> Settled {
        let faulted = |error: WorkflowError| Settled {
            status: Status::Faulted,
            output: None,
            error: Some(self.problem_of(error)),
            continuation: None,
        };
        match outcome {
            Outcome::Completed(output) => Settled {
                status: Status::Completed,
                output: Some(output),
                error: None,
                continuation: None,
            },
            Outcome::Faulted(error) => faulted(error),
            Outcome::Waiting { output, state } => {
                let Some(sealer) = &self.sealer else {
                    warn!(
                        "a run is waiting for the caller but MOZAIKS_CONTINUATION_KEY is not set"
                    );
                    return faulted(WorkflowError::configuration(
                        "/do",
                        "the workflow is waiting for the caller, but this deployment cannot \
                         issue continuations: set MOZAIKS_CONTINUATION_KEY (base64 of at least 32 \
                         random bytes) to let executions wait"
                            .into(),
                    ));
                };
                match sealer.seal(binding, execution_id, &state, now) {
                    Ok(continuation) => Settled {
                        status: Status::Waiting,
                        output: Some(output),
                        error: None,
                        continuation: Some(continuation),
                    },
                    Err(e) => {
                        warn!(error = %e, "could not seal the continuation of a waiting run");
                        faulted(WorkflowError::runtime("/do", e.to_string()))
                    }
                }
            }
        }
    }

    /// The result of a run still computing at its deadline: a `timeout` fault at the task it is
    /// in, with what it had done (so its usage is emitted as for any run). The engine thread
    /// cannot be stopped, so the process ends once this invocation is answered.
    fn cut(&self, progress: &Progress, late: Late) -> RunResult {
        let snapshot = progress.snapshot();
        self.exit_after_answer.store(true, Ordering::SeqCst);
        tracing::error!(
            task = %snapshot.current_task,
            engine = ?late,
            partial = snapshot.partial,
            "the run was still computing at its deadline: answering for it; this process ends \
             after the answer (Lambda starts a fresh one)"
        );
        RunResult {
            outcome: Outcome::Faulted(WorkflowError::timeout(
                &snapshot.current_task,
                "the execution deadline passed while this task was computing (an expression \
                 that ran longer than the time left)"
                    .into(),
            )),
            metrics: snapshot.metrics,
            events: snapshot.events,
            llm_calls: snapshot.llm_calls,
        }
    }

    /// Whether this process must end once the current answer is sent: a run was cut while
    /// computing, and its thread cannot be stopped.
    pub fn must_exit(&self) -> bool {
        self.exit_after_answer.load(Ordering::SeqCst)
    }

    /// The instant the workflow run must end by: the invocation deadline less the usage reserve.
    fn run_deadline(&self, deadline: SystemTime) -> tokio::time::Instant {
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(self.usage_reserve);
        tokio::time::Instant::now() + remaining
    }
}

/// The execution event's `llm` totals: the sums of its model calls, as the providers reported.
fn llm_totals(calls: &[LlmCall]) -> LlmTotals {
    calls
        .iter()
        .fold(LlmTotals::default(), |totals, call| LlmTotals {
            calls: totals.calls + 1,
            prompt_tokens: totals.prompt_tokens.saturating_add(call.prompt_tokens),
            completion_tokens: totals
                .completion_tokens
                .saturating_add(call.completion_tokens),
            total_tokens: totals.total_tokens.saturating_add(call.total_tokens),
        })
}

impl App {
    /// The problem details of a workflow error, without any secret value of the configuration
    /// (a workflow's error texts may quote what it computed from `$secrets`).
    fn problem_of(&self, e: WorkflowError) -> Problem {
        let mut problem = Problem {
            type_: e.type_,
            status: e.status,
            title: e.title,
            detail: e.detail,
            instance: e.instance,
        };
        self.secrets.redact_in_place(&mut problem.title);
        self.secrets.redact_in_place(&mut problem.detail);
        self.secrets.redact_in_place(&mut problem.instance);
        problem
    }
}

/// Length of a value's compact JSON serialization, without building the string.
pub fn serialized_len(value: &Value) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => 0,
    }
}

/// A new execution id: a UUIDv7, time-ordered.
pub fn new_execution_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::continuation::Key;
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    // base64 of 32 bytes 0x01.
    const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    async fn app(continuation_key: Option<&str>) -> App {
        let workflows = format!("{}/workflows", env!("CARGO_MANIFEST_DIR"));
        let config = Config::from_lookup(|name| match name {
            "MOZAIKS_JWT_ISSUER" => Some("https://issuer.test".into()),
            "MOZAIKS_JWT_AUDIENCE" => Some("mozaiks-runtime".into()),
            "MOZAIKS_JWT_HS256_SECRET" => Some(SECRET.into()),
            "MOZAIKS_WORKFLOWS_DIR" => Some(workflows.clone()),
            "MOZAIKS_CONTINUATION_KEY" => continuation_key.map(str::to_owned),
            _ => None,
        })
        .unwrap();
        App::new(config).await.unwrap()
    }

    fn claims(sub: &str) -> Value {
        let now = crate::time::since_epoch(SystemTime::now()).as_secs();
        json!({
            "iss": "https://issuer.test", "aud": "mozaiks-runtime", "iat": now, "exp": now + 600,
            "mozaiks_token_use": "execution", "scope": "workflow:execute", "workflow_id": "hello",
            "sub": sub, "app_id": "app-1", "chat_id": "chat-1"
        })
    }

    fn context(app: &App, claims: &Value) -> ExecutionContext {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        app.authenticate(Some(&token)).unwrap()
    }

    fn invocation() -> Invocation {
        Invocation {
            execution_id: new_execution_id(),
            request_id: "req-1".into(),
            deadline: SystemTime::now() + Duration::from_secs(30),
        }
    }

    async fn execute(app: &App, claims: &Value, continuation: Option<String>) -> ExecutionResult {
        let request = Request {
            context: context(app, claims),
            input: json!({ "name": "Ada" }),
            input_bytes: 14,
            continuation,
        };
        app.execute(request, &invocation()).await
    }

    fn hello() -> WorkflowId {
        WorkflowId {
            namespace: "mozaiks".into(),
            name: "hello".into(),
            version: "1.0.0".into(),
        }
    }

    fn rejected_for(result: &ExecutionResult) -> &'static str {
        assert_eq!(result.status, Status::Rejected, "{result:?}");
        let problem = result.error.as_ref().unwrap();
        assert_eq!(problem.status, 400);
        assert!(problem.type_.ends_with("/invalid-continuation"));
        match result.rejection {
            Some(Rejection::InvalidContinuation { reason }) => reason,
            ref other => panic!("expected an invalid continuation, got {other:?}"),
        }
    }

    fn waiting() -> Outcome {
        Outcome::Waiting {
            output: json!({ "messages": [{ "role": "assistant", "content": "Which order?" }] }),
            state: json!({ "at": "/do/0/chat", "turn": 3 }),
        }
    }

    #[tokio::test]
    async fn a_waiting_run_is_sealed_into_its_continuation() {
        let app = app(Some(KEY)).await;
        let workflow = hello();
        let claims = claims("user-1");
        let binding = Binding::new(&workflow, &claims);
        let settled = app.settle(waiting(), &binding, "exec-1", 1_000);
        assert_eq!(settled.status, Status::Waiting);
        assert_eq!(
            settled.output,
            Some(json!({ "messages": [{ "role": "assistant", "content": "Which order?" }] }))
        );
        assert!(settled.error.is_none());
        let continuation = settled.continuation.unwrap();
        let opened = app
            .sealer
            .as_ref()
            .unwrap()
            .open(&continuation, &binding, 1_001)
            .unwrap();
        assert_eq!(opened.state, json!({ "at": "/do/0/chat", "turn": 3 }));
        assert_eq!(opened.issued_by, "exec-1");
        assert_eq!(Status::Waiting.as_str(), "waiting");
    }

    #[tokio::test]
    async fn a_waiting_run_without_a_key_faults_naming_the_variable() {
        let app = app(None).await;
        let workflow = hello();
        let claims = claims("user-1");
        let settled = app.settle(waiting(), &Binding::new(&workflow, &claims), "e", 1_000);
        assert_eq!(settled.status, Status::Faulted);
        assert!(settled.output.is_none() && settled.continuation.is_none());
        let error = settled.error.unwrap();
        assert_eq!(error.type_, WorkflowError::standard_type("configuration"));
        assert!(error.detail.unwrap().contains("MOZAIKS_CONTINUATION_KEY"));
    }

    #[tokio::test]
    async fn a_state_too_large_to_seal_faults_naming_the_limit() {
        let mut app = app(Some(KEY)).await;
        app.sealer = Some(Sealer::new(
            Key::from_base64(KEY).unwrap(),
            Vec::new(),
            60,
            300,
        ));
        let workflow = hello();
        let claims = claims("user-1");
        let big = Outcome::Waiting {
            output: json!({}),
            state: json!({ "text": "x".repeat(300) }),
        };
        let settled = app.settle(big, &Binding::new(&workflow, &claims), "e", 1_000);
        assert_eq!(settled.status, Status::Faulted);
        let error = settled.error.unwrap();
        assert_eq!(error.type_, WorkflowError::standard_type("runtime"));
        assert!(error
            .detail
            .unwrap()
            .contains("MOZAIKS_CONTINUATION_MAX_BYTES"));
    }

    #[tokio::test]
    async fn continuations_the_workflow_cannot_take_are_refused_and_the_next_run_works() {
        let app = app(Some(KEY)).await;
        let workflow = hello();
        let owner = claims("user-1");
        let now = crate::time::since_epoch(SystemTime::now()).as_secs();
        let sealer = app.sealer.as_ref().unwrap();
        // Authentic and bound to this caller and workflow, but `hello` has nothing that waits.
        let valid = sealer
            .seal(
                &Binding::new(&workflow, &owner),
                "e0",
                &json!({ "at": "/do/0" }),
                now,
            )
            .unwrap();
        let r = execute(&app, &owner, Some(valid.clone())).await;
        assert_eq!(rejected_for(&r), "unresumable");
        assert!(r.workflow.is_none() && r.output.is_none());
        // The same continuation under another caller's token.
        let r = execute(&app, &claims("user-2"), Some(valid.clone())).await;
        assert_eq!(rejected_for(&r), "foreign");
        // One byte changed.
        let mut forged = valid.into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let r = execute(&app, &owner, Some(String::from_utf8(forged).unwrap())).await;
        assert_eq!(rejected_for(&r), "tampered");
        // Issued for another version of the workflow.
        let mut other = hello();
        other.version = "0.9.0".into();
        let old = sealer
            .seal(&Binding::new(&other, &owner), "e0", &json!({}), now)
            .unwrap();
        let r = execute(&app, &owner, Some(old)).await;
        assert_eq!(rejected_for(&r), "wrong_workflow");
        let r = execute(&app, &owner, Some("garbage".into())).await;
        assert_eq!(rejected_for(&r), "malformed");
        // The next invocation, without a continuation, runs as ever.
        let r = execute(&app, &owner, None).await;
        assert_eq!(r.status, Status::Completed, "{r:?}");
        assert_eq!(r.output.unwrap()["greeting"], "Hello, Ada!");
        assert!(r.continuation.is_none());
    }

    #[tokio::test]
    async fn without_a_key_every_continuation_is_refused() {
        let app = app(None).await;
        let r = execute(&app, &claims("user-1"), Some("AQID".into())).await;
        assert_eq!(rejected_for(&r), "not_configured");
    }
}
