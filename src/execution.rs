//! One execution, end to end (CONTRACT §1): verify → resolve → run → meter → emit → result.
//!
//! [`App`] holds everything built at init (keys, compiled workflows, the usage sink); an
//! invocation only reads it. Edges ([`crate::invoke`]) turn events into a [`Request`] and the
//! [`ExecutionResult`] into their response shapes.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tracing::{info, warn};

use crate::auth::{ExecutionContext, Verifier};
use crate::config::Config;
use crate::problem::{Problem, Rejection};
use crate::usage::events::LlmCallUsage;
use crate::usage::events::{HttpTotals, LlmTotals};
use crate::usage::{ExecutionUsage, Sink};
use crate::workflow::{ExecutionInfo, LlmCall, Outcome, Registry, WorkflowError, WorkflowId};

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
        info!(
            status = "rejected",
            reason = rejection.reason(),
            "execution rejected"
        );
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
        let registry = crate::workflow::Registry::load_dir(&config.workflows_dir).map_err(|e| {
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
        Ok(App {
            verifier,
            registry,
            sink,
            max_input_bytes: config.max_input_bytes,
            usage_reserve: config.usage_reserve,
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
        if request.continuation.is_some() {
            // No workflow of this deployment can end `waiting` yet, so no continuation it
            // could have issued exists (agent tasks, issue 6, bring them).
            return reject(Rejection::InvalidContinuation);
        }
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

        let run_deadline = self.run_deadline(invocation.deadline);
        let info = ExecutionInfo {
            execution_id: invocation.execution_id.clone(),
            claims: context.claims().clone(),
        };
        let run = workflow.run(request.input, &info, run_deadline).await;
        let ended_at = SystemTime::now();

        let (status, output, error) = match run.outcome {
            Outcome::Completed(output) => (Status::Completed, Some(output), None),
            Outcome::Faulted(error) => (Status::Faulted, None, Some(problem_of(error))),
            Outcome::Waiting { .. } => {
                // Continuations (sealing the state) are not wired yet: a run that would wait
                // faults instead of losing its state silently.
                let error = WorkflowError::runtime(
                    "/do",
                    "this deployment cannot issue continuations yet".into(),
                );
                (Status::Faulted, None, Some(problem_of(error)))
            }
        };
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
            continuation: None,
            rejection: None,
        }
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

fn problem_of(e: WorkflowError) -> Problem {
    Problem {
        type_: e.type_,
        status: e.status,
        title: e.title,
        detail: e.detail,
        instance: e.instance,
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
