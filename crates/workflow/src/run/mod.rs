//! Running a compiled workflow: the DSL's data flow, flow directives, each task kind's runner,
//! errors, timeouts and the deadline, metering.
//!
//! Data flow per task (DSL "Data Flow"): raw input → `if` (skip: the raw input is the output)
//! → `input.schema` → `input.from` (= `$input`) → the task → `output.as` (= `$output`, the
//! next task's raw input) → `output.schema` → `export.as` (replaces `$context`) →
//! `export.schema` → `then`. The workflow's `input` and `output` wrap the top-level `do`.
//! `$context` starts as `{}`. A skipped task ignores its `then` (it did not run).
//!
//! Time: the invocation deadline bounds everything and cannot be caught; a workflow's
//! `timeout` and a task's `timeout` fault with the DSL `timeout` error (a task's can be caught
//! by an enclosing `try`). A `wait` or a retry delay that would end after the tightest limit in
//! force faults (or stops retrying) at once instead of sleeping into it.
//!
//! Choices where the DSL leaves room, per task kind:
//! - `switch`: the output is the input; the first case whose `when` holds decides the flow,
//!   else the default case, else the task's own `then`.
//! - `try`: an error is caught when it matches `errors.with` (the DSL's two spellings of the
//!   standard error types, `…/spec/1.0.0/errors/<kind>` and `…/dsl/errors/types/<kind>`, are
//!   the same type), `when` holds and `exceptWhen` does not (both see the error as
//!   `$<as>`, `$error` by default). With `retry`, the `try` tasks run again from the start
//!   while the policy allows; when it no longer does, the error is handled: `catch.do` runs
//!   on the `try` task's input, or, without `do`, that input is the output.
//! - `for`: iterations chain (each one's output is the next one's input, the last one's is
//!   the task's); `while` is checked before each iteration; `in` must produce a list (or null).
//! - `fork`: branches run concurrently on the current Tokio task, each on the fork's input.
//!   Without `compete` the output is the list of branch outputs in declaration order and the
//!   first fault cancels the rest; with `compete` the first branch to complete wins and the
//!   others are cancelled (a faulted branch does not win unless all fault).
//! - `call` of a function: the function task runs on `with` (or on the calling task's input).
//! - `run: workflow`: the sub-workflow runs with its own `$context` under the same deadline;
//!   its fault is the task's fault.
//! - `emit`: the task's output is the CloudEvent; the run collects the events for the host.
//!
//! Nesting of functions and sub-workflows is limited to 32 levels.
//!
//! Rooms: this file (the entry points, what a run shares — [`Progress`], limits, frames — and
//! the runner's evaluation), `flow` (the document body, task lists, one task's `if`,
//! `timeout`, `export` and `then`, the dispatch by kind), `data` (`input`, `output`,
//! `export`), then one file per task kind: `set`, `switch`, `raise`, `try_` (with `retry`),
//! `for_`, `fork`, `wait`, `call` (functions, `http`, `openapi`), `emit`, `workflow`
//! (`run: workflow`); agents tasks run in `crate::agents`.

mod call;
mod data;
mod emit;
mod flow;
mod for_;
mod fork;
mod raise;
mod set;
mod switch;
mod try_;
mod wait;
mod workflow;

use super::agents::state::{self as agents_state, Suspension};
use super::error::WorkflowError;
use super::expr::{Args, EvalError};
use super::http::HttpMeter;
use super::model::Workflow;
use super::value::{datetime_descriptor, from_json, from_json_ref, object, string, to_json};
use jaq_json::Val;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The value of absent runtime arguments (never read: expressions only declare available ones).
static NULL: Val = Val::Null;

/// Deepest nesting of function calls and sub-workflows.
const MAX_DEPTH: usize = 32;

/// Who runs the workflow: the execution id and the verified claims (`$execution`).
#[derive(Debug, Clone)]
pub struct ExecutionInfo {
    /// The execution id (`$execution.id`, `$workflow.id`).
    pub execution_id: String,
    /// The ExecutionContext claims, as signed (`$execution.claims`), read-only.
    pub claims: Value,
}

/// What a run produced and what it did.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Completed with an output, or faulted with a DSL error.
    pub outcome: Outcome,
    /// What the run did, for usage metering.
    pub metrics: Metrics,
    /// The CloudEvents the run emitted (`emit` tasks), in order, for the host to deliver.
    pub events: Vec<Value>,
    /// The language-model calls the run made (agent tasks), in the order they ended, for
    /// usage metering.
    pub llm_calls: Vec<LlmCall>,
}

/// One language-model call, as metered for usage (CONTRACT §7 `mozaiks.usage.llm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmCall {
    /// The model, as named to the provider.
    pub model: String,
    /// The provider that served the call (`openai`, `bedrock`, …).
    pub provider: String,
    /// The agent that made the call.
    pub agent: String,
    /// Prompt tokens, as the provider reported them.
    pub prompt_tokens: u64,
    /// Completion tokens, as the provider reported them.
    pub completion_tokens: u64,
    /// Total tokens, as the provider reported them.
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's cache, as it reported them (0 when it did not).
    pub cached_tokens: u64,
    /// When the call started.
    pub started_at: SystemTime,
    /// When its answer was complete.
    pub ended_at: SystemTime,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The workflow ran to completion; this is its (transformed) output.
    Completed(Value),
    /// The workflow faulted: an expression failed, the deadline passed, …
    Faulted(WorkflowError),
    /// The workflow needs the caller before it can go on (an agent conversation handed back
    /// to the user): `output` is what it has so far, `state` what [`Workflow::resume`] needs
    /// to go on. The host seals `state` into a continuation; the engine never keeps it.
    Waiting {
        /// What the run has so far (the conversation), returned to the caller.
        output: Value,
        /// The engine's resumable state, opaque to the host.
        state: Value,
    },
}

/// Counters of one run, for usage events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Tasks that ran, nested ones included (a task skipped by `if` does not count; each
    /// attempt of a retried task counts).
    pub tasks_executed: u64,
    /// HTTP requests sent (`call: http`, `call: openapi`, redirects and document fetches).
    pub http_calls: u64,
    /// Request body bytes sent by HTTP calls.
    pub http_bytes_sent: u64,
    /// Response body bytes received by HTTP calls.
    pub http_bytes_received: u64,
}

impl Workflow {
    /// Runs the workflow on `input` until it completes, faults, or `deadline` passes (then it
    /// faults with the DSL `timeout` error). Never panics on input; needs a Tokio runtime
    /// with the time driver enabled.
    pub async fn run(&self, input: Value, exec: &ExecutionInfo, deadline: Instant) -> RunResult {
        self.run_observed(input, exec, deadline, Arc::default())
            .await
    }

    /// [`Workflow::run`], recording what the run does in `progress` as it goes, so that a host
    /// can account for a run it stopped waiting for (see [`Progress::snapshot`]).
    pub async fn run_observed(
        &self,
        input: Value,
        exec: &ExecutionInfo,
        deadline: Instant,
        progress: Arc<Progress>,
    ) -> RunResult {
        self.execute(Start::Fresh(from_json(input)), exec, deadline, progress)
            .await
    }

    /// Runs from `start` under `deadline`: the outcome and what the run did.
    async fn execute(
        &self,
        start: Start,
        exec: &ExecutionInfo,
        deadline: Instant,
        progress: Arc<Progress>,
    ) -> RunResult {
        let shared = Shared {
            execution_id: exec.execution_id.clone(),
            execution_arg: object([
                ("id", string(&exec.execution_id)),
                ("claims", from_json_ref(&exec.claims)),
            ]),
            progress,
            limits: AtomicU64::new(0),
        };
        let limit = Limit {
            until: deadline,
            owner: Owner::Deadline,
            id: 0,
        };
        let result =
            tokio::time::timeout_at(deadline, shared.document(self, start, 0, &limit)).await;
        let outcome = match result {
            Ok(Ok(output)) => match to_json(&output) {
                Ok(output) => Outcome::Completed(output),
                Err(message) => Outcome::Faulted(WorkflowError::expression(
                    if self.output.as_.is_some() {
                        "/output/as"
                    } else {
                        "/do"
                    },
                    format!("the workflow output is not JSON: {message}"),
                )),
            },
            Ok(Err(Stop::Fault(error) | Stop::Abort(error) | Stop::Expired(error, _))) => {
                Outcome::Faulted(error)
            }
            Ok(Err(Stop::Wait(suspension))) => {
                let (output, state) = suspension.into_outcome(self);
                Outcome::Waiting { output, state }
            }
            Err(_elapsed) => Outcome::Faulted(WorkflowError::timeout(
                &shared.current_task(),
                "the execution deadline passed while this task was running".into(),
            )),
        };
        let metrics = shared.progress.metrics();
        let events = std::mem::take(&mut *lock(&shared.events));
        let llm_calls = std::mem::take(&mut *lock(&shared.llm_calls));
        RunResult {
            outcome,
            metrics,
            events,
            llm_calls,
        }
    }
}

/// A continuation's state this workflow cannot resume (the host answers "invalid
/// continuation").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeError(pub String);

impl std::fmt::Display for ResumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResumeError {}

impl Workflow {
    /// Resumes a run that ended [`Outcome::Waiting`] with `state`, on the caller's new
    /// `input`, under a new deadline. The state must be one this workflow issued (the host
    /// has checked its integrity and binding; the engine checks that it fits the workflow:
    /// format, workflow id, definition fingerprint, position). The waiting task goes on with
    /// `input` (an agents task turns it into the user's reply), then the rest of the workflow.
    pub async fn resume(
        &self,
        state: Value,
        input: Value,
        exec: &ExecutionInfo,
        deadline: Instant,
    ) -> Result<RunResult, ResumeError> {
        self.resume_observed(state, input, exec, deadline, Arc::default())
            .await
    }

    /// [`Workflow::resume`], recording what the run does in `progress` as it goes.
    pub async fn resume_observed(
        &self,
        state: Value,
        input: Value,
        exec: &ExecutionInfo,
        deadline: Instant,
        progress: Arc<Progress>,
    ) -> Result<RunResult, ResumeError> {
        let saved = agents_state::read(self, state)?;
        Ok(self
            .execute(
                Start::Resume(Box::new((saved, from_json(input)))),
                exec,
                deadline,
                progress,
            )
            .await)
    }
}

/// How a document run starts.
enum Start {
    /// From the beginning, on this raw input.
    Fresh(Val),
    /// From a waiting task's saved state, with the caller's new input.
    Resume(Box<(agents_state::Saved, Val)>),
}

/// Why a run stopped early.
#[derive(Debug)]
pub(super) enum Stop {
    /// A DSL error that a `try` may catch.
    Fault(WorkflowError),
    /// A stop no `try` catches: the invocation deadline.
    Abort(WorkflowError),
    /// The timeout of limit `id` passed: nothing inside the task (or document) that set the
    /// limit may catch it; that task (or document) turns it into a [`Stop::Fault`].
    Expired(WorkflowError, u64),
    /// The run waits for the caller (an agents task handed the conversation to the user). No
    /// `try` catches it; only a task of the top-level `do` stops this way.
    Wait(Box<Suspension>),
}

impl Stop {
    /// At the boundary of limit `id`: its expiry becomes an ordinary fault.
    fn surface(self, id: u64) -> Stop {
        match self {
            Stop::Expired(error, expired) if expired == id => Stop::Fault(error),
            other => other,
        }
    }
}

impl From<WorkflowError> for Stop {
    fn from(error: WorkflowError) -> Self {
        Stop::Fault(error)
    }
}

/// A boxed, sendable future (for the recursion of nested task lists).
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A `Mutex` lock that survives poisoning (a panicking holder cannot happen here, and if it
/// did, the data is still consistent: every critical section is a single assignment).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What every document of one execution shares: the deadline, the counters, the events.
pub(super) struct Shared {
    execution_id: String,
    /// `$execution`.
    execution_arg: Val,
    /// What the run has done so far (also readable by the host while it runs).
    progress: Arc<Progress>,
    /// The last [`Limit`] id handed out.
    limits: AtomicU64,
}

impl std::ops::Deref for Shared {
    type Target = Progress;

    fn deref(&self) -> &Progress {
        &self.progress
    }
}

/// What a run has done so far: its counters, emitted events and model calls, and the task it
/// is in. A run records into it as it goes; a host that holds it can account for a run it
/// stopped waiting for (one cut by the invocation deadline in the middle of a computation
/// that cannot be interrupted).
#[derive(Default)]
pub struct Progress {
    tasks: AtomicU64,
    pub(crate) http: HttpMeter,
    events: Mutex<Vec<Value>>,
    /// The model calls made so far (agents tasks), in the order they ended.
    pub(super) llm_calls: Mutex<Vec<LlmCall>>,
    /// Reference of the task started last (the `instance` of a deadline timeout).
    current: Mutex<Option<Arc<str>>>,
}

/// A copy of a run's [`Progress`] at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The counters so far.
    pub metrics: Metrics,
    /// The CloudEvents emitted so far.
    pub events: Vec<Value>,
    /// The model calls made so far.
    pub llm_calls: Vec<LlmCall>,
    /// Reference of the task the run is in (`/do` before the first).
    pub current_task: String,
    /// Whether a part could not be read because the run held it at that moment (it is then
    /// left out).
    pub partial: bool,
}

impl Progress {
    fn metrics(&self) -> Metrics {
        Metrics {
            tasks_executed: self.tasks.load(Ordering::Relaxed),
            http_calls: self.http.calls.load(Ordering::Relaxed),
            http_bytes_sent: self.http.bytes_sent.load(Ordering::Relaxed),
            http_bytes_received: self.http.bytes_received.load(Ordering::Relaxed),
        }
    }

    /// Copies what the run has done so far, while it may still be running on another thread.
    /// It never blocks: the run holds each part only to push one item, so a part that stays
    /// held after a few tries (a run stopped in the middle of that push) is left out and the
    /// snapshot says so. Nothing the run owns is freed here.
    pub fn snapshot(&self) -> Snapshot {
        fn read<T, R>(mutex: &Mutex<T>, copy: impl Fn(&T) -> R) -> Option<R> {
            for _ in 0..1000 {
                match mutex.try_lock() {
                    Ok(guard) => return Some(copy(&guard)),
                    Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                        return Some(copy(&poisoned.into_inner()))
                    }
                    Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
                }
            }
            None
        }
        let events = read(&self.events, Vec::clone);
        let llm_calls = read(&self.llm_calls, Vec::clone);
        let current = read(&self.current, |current| {
            current.as_deref().unwrap_or("/do").to_owned()
        });
        Snapshot {
            metrics: self.metrics(),
            partial: events.is_none() || llm_calls.is_none() || current.is_none(),
            events: events.unwrap_or_default(),
            llm_calls: llm_calls.unwrap_or_default(),
            current_task: current.unwrap_or_else(|| "/do".to_owned()),
        }
    }
}

/// The tightest time limit in force, and whose it is.
#[derive(Clone)]
pub(super) struct Limit {
    pub(super) until: Instant,
    owner: Owner,
    /// Unique within the run (0 is the deadline).
    id: u64,
}

#[derive(Clone)]
enum Owner {
    /// The invocation deadline.
    Deadline,
    /// The (sub-)workflow's `timeout`.
    Workflow(Duration),
    /// A task's `timeout`: the task and its duration.
    Task(Arc<str>, Duration),
}

impl Limit {
    /// The error of this limit passing while `instance` runs.
    fn error(&self, instance: &str) -> Stop {
        match &self.owner {
            Owner::Deadline => Stop::Abort(WorkflowError::timeout(
                instance,
                "the execution deadline would pass before this task could finish".into(),
            )),
            Owner::Workflow(after) => Stop::Expired(
                WorkflowError::timeout(
                    instance,
                    format!("the workflow's timeout of {} passed", show(*after)),
                ),
                self.id,
            ),
            Owner::Task(task, after) => Stop::Expired(
                WorkflowError::timeout(
                    task,
                    format!("the task's timeout of {} passed", show(*after)),
                ),
                self.id,
            ),
        }
    }
}

/// The instant `after` from now (durations are capped at a year, delays saturate: far
/// future stands for "never").
fn later(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// A duration for messages.
fn show(duration: Duration) -> String {
    format!("{:.3}s", duration.as_secs_f64())
}

/// Where a task runs: the locals in scope, the time limit, and how many function calls and
/// sub-workflows enclose it.
#[derive(Clone, Copy)]
pub(super) struct Frame<'a> {
    pub(super) locals: &'a [Val],
    pub(super) limit: &'a Limit,
    pub(super) depth: usize,
}

impl Shared {
    /// A new time limit.
    fn limit(&self, until: Instant, owner: Owner) -> Limit {
        Limit {
            until,
            owner,
            id: self.limits.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }

    fn current_task(&self) -> String {
        lock(&self.current).as_deref().unwrap_or("/do").to_owned()
    }

    /// Runs one document (the workflow, or a sub-workflow) from `start`.
    fn document<'a>(
        &'a self,
        workflow: &'a Workflow,
        start: Start,
        depth: usize,
        outer: &'a Limit,
    ) -> BoxFuture<'a, Result<Val, Stop>> {
        Box::pin(async move {
            let (context, raw, started_at) = match &start {
                Start::Fresh(raw) => (
                    object([]),
                    raw.clone(),
                    datetime_descriptor(SystemTime::now()),
                ),
                Start::Resume(resume) => (
                    from_json_ref(&resume.0.context),
                    from_json_ref(&resume.0.workflow_input),
                    from_json_ref(&resume.0.started_at),
                ),
            };
            let runner = Runner {
                shared: self,
                workflow,
                context: Mutex::new(context),
                workflow_arg: object([
                    ("id", string(&self.execution_id)),
                    ("definition", workflow.definition.clone()),
                    ("input", raw.clone()),
                    ("startedAt", started_at),
                ]),
            };
            let Some(timeout) = &workflow.timeout else {
                return runner.body(start, outer, depth).await;
            };
            let after = timeout
                .eval(&raw, &runner.args(&NULL, &NULL, &NULL, &[]))
                .map_err(|e| expression_error("/timeout", e))?;
            let until = later(after);
            if until >= outer.until {
                return runner.body(start, outer, depth).await;
            }
            let limit = self.limit(until, Owner::Workflow(after));
            match tokio::time::timeout_at(until, runner.body(start, &limit, depth)).await {
                Ok(result) => result.map_err(|stop| stop.surface(limit.id)),
                Err(_elapsed) => Err(limit.error(&self.current_task()).surface(limit.id)),
            }
        })
    }
}

/// The state of one document's run.
pub(super) struct Runner<'r> {
    pub(super) shared: &'r Shared,
    pub(super) workflow: &'r Workflow,
    /// `$context`.
    context: Mutex<Val>,
    /// `$workflow`.
    workflow_arg: Val,
}

/// An expression failure as the DSL `expression` error of `instance`.
pub(super) fn expression_error(instance: &str, error: EvalError) -> WorkflowError {
    let detail = if error.pointer.is_empty() {
        error.message
    } else {
        format!("{}: {}", error.pointer, error.message)
    };
    WorkflowError::expression(instance, detail)
}

/// jq truthiness: everything but `false` and `null`.
pub(super) fn truthy(value: &Val) -> bool {
    !matches!(value, Val::Null | Val::Bool(false))
}

impl<'r> Runner<'r> {
    /// The runtime arguments, with this task's `$input`, `$output`, `$task` and locals.
    fn args<'a>(
        &'a self,
        input: &'a Val,
        output: &'a Val,
        task: &'a Val,
        locals: &'a [Val],
    ) -> Args<'a> {
        Args {
            context: &NULL,
            input,
            output,
            secrets: &self.workflow.secrets,
            task,
            workflow: &self.workflow_arg,
            runtime: &self.workflow.runtime,
            execution: &self.shared.execution_arg,
            locals,
        }
    }

    fn context(&self) -> Val {
        lock(&self.context).clone()
    }

    /// Evaluates `f` with the arguments and a snapshot of `$context`.
    pub(super) fn eval<T>(
        &self,
        input: &Val,
        output: &Val,
        task: &Val,
        locals: &[Val],
        f: impl FnOnce(&Args<'_>) -> Result<T, EvalError>,
    ) -> Result<T, EvalError> {
        let context = self.context();
        let mut args = self.args(input, output, task, locals);
        args.context = &context;
        f(&args)
    }

    /// Guards the nesting of functions and sub-workflows.
    pub(super) fn deeper(&self, frame: Frame<'_>, instance: &str) -> Result<usize, Stop> {
        if frame.depth >= MAX_DEPTH {
            return Err(Stop::Fault(WorkflowError::runtime(
                instance,
                format!("functions and sub-workflows are nested more than {MAX_DEPTH} levels deep; is one calling itself?"),
            )));
        }
        Ok(frame.depth + 1)
    }
}
