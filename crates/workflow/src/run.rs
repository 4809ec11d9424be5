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

use super::agents::state::{self as agents_state, Suspension};
use super::agents::Resume;
use super::duration::DurationSpec;
use super::error::WorkflowError;
use super::expr::{Args, EvalError};
use super::http::{self, HttpMeter};
use super::model::{
    Backoff, CallFunction, Case, DataIn, DataOut, Emit, ErrorFilter, ErrorSpec, Flow, For, Fork,
    RetryPolicy, RunWorkflow, Task, TaskKind, TaskList, Try, Workflow,
};
use super::openapi::{DocSource, OpenApiCall, Operation, OperationError};
use super::schema::Schema;
use super::value::{
    datetime_descriptor, from_json, from_json_ref, object, string, to_json, truncate,
};
use futures_util::stream::{FuturesUnordered, StreamExt};
use jaq_json::Val;
use serde::Serialize;
use serde_json::Value;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tracing::Instrument as _;

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
    http: HttpMeter,
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

/// `base` (an object) with `entries` added.
fn with_entries<const N: usize>(base: &Val, entries: [(&str, Val); N]) -> Val {
    match base {
        Val::Obj(map) => {
            let mut map = (**map).clone();
            for (key, value) in entries {
                map.insert(string(key), value);
            }
            Val::obj(map)
        }
        other => other.clone(),
    }
}

/// Member `key` of object `value` as JSON (null when absent).
fn json_field(value: &Val, key: &str) -> Value {
    match value {
        Val::Obj(map) => map
            .get(&string(key))
            .and_then(|v| to_json(v).ok())
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Validates `value` against `schema`, as the DSL `validation` error of `instance`.
fn validate(schema: &Schema, value: &Val, instance: &str, what: &str) -> Result<(), Stop> {
    let json = to_json(value).map_err(|message| {
        WorkflowError::validation(instance, format!("{what} is not JSON: {message}"))
    })?;
    schema.validate(&json).map_err(|message| {
        Stop::Fault(WorkflowError::validation(
            instance,
            format!("{what} does not match its schema: {message}"),
        ))
    })
}

/// The error as a value (`$error`), without absent fields.
fn error_value(error: &WorkflowError) -> Val {
    match serde_json::to_value(error) {
        Ok(value) => from_json(value),
        Err(_) => Val::Null,
    }
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

    /// The document: `input`, the top-level `do`, `output` — or, resuming, the waiting task,
    /// the rest of the top-level `do`, `output`.
    async fn body(&self, start: Start, limit: &Limit, depth: usize) -> Result<Val, Stop> {
        let workflow = self.workflow;
        let frame = Frame {
            locals: &[],
            limit,
            depth,
        };
        let result = match start {
            Start::Fresh(raw) => {
                let input = self.data_in(&workflow.input, raw, &NULL, &[], "/input")?;
                self.list(&workflow.tasks, input, frame).await
            }
            Start::Resume(resume) => {
                let (saved, reply) = *resume;
                // Boxed: only a resumed run needs this future's room.
                Box::pin(self.resume_list(saved, reply, frame)).await
            }
        };
        let (output, _ended) = match result {
            Err(Stop::Wait(mut suspension)) => {
                suspension.context = to_json(&self.context()).unwrap_or(Value::Null);
                suspension.workflow_input = json_field(&self.workflow_arg, "input");
                suspension.started_at = json_field(&self.workflow_arg, "startedAt");
                return Err(Stop::Wait(suspension));
            }
            other => other?,
        };
        self.data_out(&workflow.output, output, &NULL, &NULL, &[], "/output")
    }

    /// Resumes the waiting task of the top-level `do`, then the tasks after it.
    async fn resume_list(
        &self,
        saved: agents_state::Saved,
        reply: Val,
        frame: Frame<'_>,
    ) -> Result<(Val, bool), Stop> {
        let tasks = &self.workflow.tasks;
        let index = saved.index;
        let Some(task) = tasks.tasks.get(index) else {
            return Err(Stop::Fault(WorkflowError::runtime(
                "/do",
                "the waiting task is missing".into(),
            )));
        };
        let entry = Entry::Resume {
            input: from_json(saved.task_input),
            resume: Resume {
                conversation: saved.conversation,
                reply,
            },
        };
        let span = tracing::debug_span!("task", reference = &*task.reference, resumed = true);
        let (output, flow) = self.task_entry(task, entry, frame).instrument(span).await?;
        match flow {
            Flow::Continue => self.list_from(tasks, index + 1, output, frame).await,
            Flow::Goto(target) => self.list_from(tasks, target, output, frame).await,
            Flow::Exit => Ok((output, false)),
            Flow::End => Ok((output, true)),
        }
    }

    /// An `input`: validate the raw input, then transform it.
    fn data_in(
        &self,
        spec: &DataIn,
        raw: Val,
        task: &Val,
        locals: &[Val],
        instance: &str,
    ) -> Result<Val, Stop> {
        if let Some(schema) = &spec.schema {
            validate(
                schema,
                &raw,
                instance_of(instance, "/input/schema"),
                "the input",
            )?;
        }
        match &spec.from {
            Some(from) => Ok(self
                .eval(&NULL, &NULL, task, locals, |args| from.eval(&raw, args))
                .map_err(|e| expression_error(instance_of(instance, "/input/from"), e))?),
            None => Ok(raw),
        }
    }

    /// An `output` (or `export`): transform, then validate the result.
    fn data_out(
        &self,
        spec: &DataOut,
        value: Val,
        input: &Val,
        task: &Val,
        locals: &[Val],
        instance: &str,
    ) -> Result<Val, Stop> {
        let value = match &spec.as_ {
            Some(as_) => self
                .eval(input, &NULL, task, locals, |args| as_.eval(&value, args))
                .map_err(|e| expression_error(instance_of(instance, "/output/as"), e))?,
            None => value,
        };
        if let Some(schema) = &spec.schema {
            validate(
                schema,
                &value,
                instance_of(instance, "/output/schema"),
                "the output",
            )?;
        }
        Ok(value)
    }

    /// A task list; returns the last output and whether the workflow must end (`then: end`).
    fn list<'a>(
        &'a self,
        list: &'r TaskList,
        input: Val,
        frame: Frame<'a>,
    ) -> BoxFuture<'a, Result<(Val, bool), Stop>> {
        self.list_from(list, 0, input, frame)
    }

    /// A task list from the task at `start`.
    fn list_from<'a>(
        &'a self,
        list: &'r TaskList,
        start: usize,
        input: Val,
        frame: Frame<'a>,
    ) -> BoxFuture<'a, Result<(Val, bool), Stop>> {
        Box::pin(async move {
            let mut data = input;
            let mut index = start;
            while let Some(task) = list.tasks.get(index) {
                // Lets the timeout (and other tasks of the runtime) in on long sequences.
                tokio::task::coop::consume_budget().await;
                if Instant::now() >= frame.limit.until {
                    return Err(frame.limit.error(&task.reference));
                }
                // One span per task: logs inside it carry the task's reference, and a
                // subscriber sees which tasks ran in which order (the CTK's `X should run
                // first`). `skipped` is set when `if` skips the task.
                let span = tracing::debug_span!(
                    "task",
                    reference = &*task.reference,
                    skipped = tracing::field::Empty
                );
                let (output, flow) = self.task(task, data, frame).instrument(span).await?;
                data = output;
                match flow {
                    Flow::Continue => index += 1,
                    Flow::Exit => break,
                    Flow::End => return Ok((data, true)),
                    Flow::Goto(target) => index = target,
                }
            }
            Ok((data, false))
        })
    }

    /// [`Runner::task`], boxed (for kinds that run tasks of their own).
    pub(super) fn task_boxed<'a>(
        &'a self,
        task: &'r Task,
        raw: Val,
        frame: Frame<'a>,
    ) -> BoxFuture<'a, Result<(Val, Flow), Stop>> {
        Box::pin(self.task(task, raw, frame))
    }

    /// One task with its data flow; returns its transformed output and what comes next.
    async fn task(&self, task: &'r Task, raw: Val, frame: Frame<'_>) -> Result<(Val, Flow), Stop> {
        self.task_entry(task, Entry::Fresh(raw), frame).await
    }

    /// One task, from its raw input or resumed where it waited (then its `if` and `input`
    /// already applied, and `$task.input` is its transformed input).
    async fn task_entry(
        &self,
        task: &'r Task,
        entry: Entry,
        frame: Frame<'_>,
    ) -> Result<(Val, Flow), Stop> {
        let instance = &*task.reference;
        let locals = frame.locals;
        let fault = |e| Stop::Fault(expression_error(instance, e));
        let (raw, resume) = match entry {
            Entry::Fresh(raw) => (raw, None),
            Entry::Resume { input, resume } => (input, Some(resume)),
        };
        let mut descriptor = if task.uses_descriptor {
            with_entries(
                &task.descriptor,
                [
                    ("input", raw.clone()),
                    ("startedAt", datetime_descriptor(SystemTime::now())),
                ],
            )
        } else {
            Val::Null
        };
        if let (Some(condition), None) = (&task.condition, &resume) {
            let verdict = self
                .eval(&NULL, &NULL, &descriptor, locals, |args| {
                    condition.eval(raw.clone(), args)
                })
                .map_err(fault)?;
            if !truthy(&verdict) {
                tracing::Span::current().record("skipped", true);
                return Ok((raw, Flow::Continue));
            }
        }
        self.shared.tasks.fetch_add(1, Ordering::Relaxed);
        *lock(&self.shared.current) = Some(task.reference.clone());
        let input = match resume {
            None => self.data_in(&task.input, raw, &descriptor, locals, instance)?,
            Some(_) => raw,
        };
        let resume = resume.as_ref();
        let (raw_output, flow) = match &task.timeout {
            None => self.kind(task, &input, &descriptor, frame, resume).await?,
            Some(timeout) => {
                let after = self
                    .eval(&input, &NULL, &descriptor, locals, |args| {
                        timeout.eval(&input, args)
                    })
                    .map_err(fault)?;
                let until = later(after);
                if until >= frame.limit.until {
                    self.kind(task, &input, &descriptor, frame, resume).await?
                } else {
                    let limit = self
                        .shared
                        .limit(until, Owner::Task(task.reference.clone(), after));
                    let inner = Frame {
                        limit: &limit,
                        ..frame
                    };
                    match tokio::time::timeout_at(
                        until,
                        self.kind(task, &input, &descriptor, inner, resume),
                    )
                    .await
                    {
                        Ok(result) => result.map_err(|stop| stop.surface(limit.id))?,
                        Err(_elapsed) => return Err(limit.error(instance).surface(limit.id)),
                    }
                }
            }
        };
        if task.uses_descriptor {
            descriptor = with_entries(&descriptor, [("output", raw_output.clone())]);
        }
        let output = self.data_out(
            &task.output,
            raw_output,
            &input,
            &descriptor,
            locals,
            instance,
        )?;
        if let Some(export_as) = &task.export.as_ {
            let context = self
                .eval(&input, &output, &descriptor, locals, |args| {
                    export_as.eval(&output, args)
                })
                .map_err(fault)?;
            if let Some(schema) = &task.export.schema {
                validate(schema, &context, instance, "the exported context")?;
            }
            *lock(&self.context) = context;
        }
        Ok((output, flow.unwrap_or(task.then)))
    }

    /// What the task does: its raw output, and a flow directive that overrides `then`.
    /// `resume` continues a task that waited (only an agents task waits).
    async fn kind(
        &self,
        task: &'r Task,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
        resume: Option<&Resume>,
    ) -> Result<(Val, Option<Flow>), Stop> {
        let instance = &*task.reference;
        let fault = |e| Stop::Fault(expression_error(instance, e));
        let ended = |(output, ended): (Val, bool)| (output, ended.then_some(Flow::End));
        match &task.kind {
            TaskKind::Set(template) => Ok((
                self.eval(input, &NULL, descriptor, frame.locals, |args| {
                    template.eval(input, args)
                })
                .map_err(fault)?,
                None,
            )),
            TaskKind::Do(list) => Ok(ended(self.list(list, input.clone(), frame).await?)),
            TaskKind::Switch(cases) => Ok((
                input.clone(),
                self.switch(cases, input, descriptor, frame)
                    .map_err(fault)?,
            )),
            TaskKind::Raise(spec) => {
                Err(self.raise(spec, instance, input, descriptor, frame.locals))
            }
            TaskKind::Try(try_) => self.try_(try_, instance, input, descriptor, frame).await,
            TaskKind::For(for_) => self
                .for_(for_, instance, input, descriptor, frame)
                .await
                .map(ended),
            TaskKind::Fork(fork) => self.fork(fork, input, frame).await,
            TaskKind::Wait(duration) => {
                self.wait(duration, instance, input, descriptor, frame)
                    .await?;
                Ok((input.clone(), None))
            }
            TaskKind::RunWorkflow(run) => Ok((
                self.run_workflow(run, instance, input, descriptor, frame)
                    .await?,
                None,
            )),
            TaskKind::CallFunction(call) => Ok((
                self.call_function(call, instance, input, descriptor, frame)
                    .await?,
                None,
            )),
            TaskKind::CallHttp(call) => {
                let request = self
                    .eval(input, &NULL, descriptor, frame.locals, |args| {
                        call.request(input, args)
                    })
                    .map_err(fault)?;
                let response = self.send(&request, call.redirect, instance).await?;
                Ok((http::output(call.output, &request, &response), None))
            }
            TaskKind::CallOpenApi(call) => Ok((
                self.openapi(call, instance, input, descriptor, frame)
                    .await?,
                None,
            )),
            TaskKind::Emit(emit) => Ok((
                self.emit(emit, instance, input, descriptor, frame.locals)?,
                None,
            )),
            // Boxed: the conversation's future is large, and would otherwise grow every
            // task's future (and the stack of deeply nested runs) with it.
            TaskKind::Agents(call) => Ok((
                Box::pin(self.agents(call, instance, input, descriptor, frame, resume)).await?,
                None,
            )),
        }
    }

    /// `switch`: the flow of the first matching case, else of the default case.
    fn switch(
        &self,
        cases: &[Case],
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Option<Flow>, EvalError> {
        let mut default = None;
        for case in cases {
            match &case.when {
                None => default = default.or(Some(case.then)),
                Some(when) => {
                    let verdict = self.eval(input, &NULL, descriptor, frame.locals, |args| {
                        when.eval(input.clone(), args)
                    })?;
                    if truthy(&verdict) {
                        return Ok(Some(case.then));
                    }
                }
            }
        }
        Ok(default)
    }

    /// `raise`: the error, its fields evaluated; `instance` defaults to the task.
    fn raise(
        &self,
        spec: &ErrorSpec,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        locals: &[Val],
    ) -> Stop {
        let result = self.eval(input, &NULL, descriptor, locals, |args| {
            let text = |value: Val| match value {
                Val::TStr(bytes) | Val::BStr(bytes) => {
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                Val::Null => None,
                other => Some(other.to_string()),
            };
            let optional =
                |template: &Option<super::expr::Template>| -> Result<Option<String>, EvalError> {
                    match template {
                        Some(template) => Ok(text(template.eval(input, args)?)),
                        None => Ok(None),
                    }
                };
            let status = spec.status.eval(input, args)?;
            Ok((
                text(spec.type_.eval(input, args)?),
                status,
                optional(&spec.title)?,
                optional(&spec.detail)?,
                optional(&spec.instance)?,
            ))
        });
        let (type_, status, title, detail, raised_instance) = match result {
            Ok(parts) => parts,
            Err(e) => return Stop::Fault(expression_error(instance, e)),
        };
        let status = match &status {
            Val::Num(n) => n.as_isize().and_then(|s| u16::try_from(s).ok()),
            _ => None,
        };
        let (Some(type_), Some(status)) = (type_.filter(|t| !t.is_empty()), status) else {
            return Stop::Fault(WorkflowError::expression(
                instance,
                "the raised error needs a non-empty `type` and an integer `status`; its expressions produced something else".into(),
            ));
        };
        Stop::Fault(WorkflowError {
            type_,
            status,
            title,
            detail,
            instance: Some(raised_instance.unwrap_or_else(|| instance.to_owned())),
        })
    }

    /// `try`: attempts, retries, and the handler.
    async fn try_(
        &self,
        try_: &'r Try,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<(Val, Option<Flow>), Stop> {
        let started = Instant::now();
        let mut retries: u64 = 0;
        loop {
            let attempt = match &try_
                .retry
                .as_ref()
                .and_then(|p| p.attempt_duration.as_ref())
            {
                None => self.list(&try_.tasks, input.clone(), frame).await,
                Some(duration) => {
                    let after = self
                        .eval(input, &NULL, descriptor, frame.locals, |args| {
                            duration.eval(input, args)
                        })
                        .map_err(|e| expression_error(instance, e))?;
                    let until = later(after);
                    if until >= frame.limit.until {
                        self.list(&try_.tasks, input.clone(), frame).await
                    } else {
                        let limit = self
                            .shared
                            .limit(until, Owner::Task(Arc::from(instance), after));
                        let inner = Frame {
                            limit: &limit,
                            ..frame
                        };
                        match tokio::time::timeout_at(
                            until,
                            self.list(&try_.tasks, input.clone(), inner),
                        )
                        .await
                        {
                            Ok(result) => result.map_err(|stop| stop.surface(limit.id)),
                            Err(_elapsed) => Err(limit.error(instance).surface(limit.id)),
                        }
                    }
                }
            };
            let error = match attempt {
                Ok((output, ended)) => return Ok((output, ended.then_some(Flow::End))),
                Err(Stop::Fault(error)) => error,
                Err(stop) => return Err(stop),
            };
            let error_val = error_value(&error);
            let mut locals = Vec::with_capacity(frame.locals.len() + 1);
            locals.extend_from_slice(frame.locals);
            locals.push(error_val.clone());
            if !self
                .catches(try_, &error, input, descriptor, &locals)
                .map_err(|e| expression_error(instance, e))?
            {
                return Err(Stop::Fault(error));
            }
            if let Some(policy) = &try_.retry {
                let delay = self
                    .retry_delay(
                        policy, retries, started, input, descriptor, &locals, &error_val,
                    )
                    .map_err(|e| expression_error(instance, e))?;
                if let Some(delay) = delay {
                    if later(delay) < frame.limit.until {
                        tokio::time::sleep(delay).await;
                        retries += 1;
                        continue;
                    }
                }
            }
            return match &try_.handler {
                Some(handler) => {
                    let catch_frame = Frame {
                        locals: &locals,
                        ..frame
                    };
                    let (output, ended) = self.list(handler, input.clone(), catch_frame).await?;
                    Ok((output, ended.then_some(Flow::End)))
                }
                None => Ok((input.clone(), None)),
            };
        }
    }

    /// Whether `try_`'s `catch` catches `error`.
    fn catches(
        &self,
        try_: &Try,
        error: &WorkflowError,
        input: &Val,
        descriptor: &Val,
        locals: &[Val],
    ) -> Result<bool, EvalError> {
        if !matches_filter(&try_.filter, error) {
            return Ok(false);
        }
        if let Some(when) = &try_.when {
            if !truthy(&self.eval(input, &NULL, descriptor, locals, |args| {
                when.eval(input.clone(), args)
            })?) {
                return Ok(false);
            }
        }
        if let Some(except_when) = &try_.except_when {
            if truthy(&self.eval(input, &NULL, descriptor, locals, |args| {
                except_when.eval(input.clone(), args)
            })?) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The delay before the next retry, or `None` when the policy allows no more.
    #[allow(clippy::too_many_arguments)]
    fn retry_delay(
        &self,
        policy: &RetryPolicy,
        retries: u64,
        started: Instant,
        input: &Val,
        descriptor: &Val,
        catch_locals: &[Val],
        error: &Val,
    ) -> Result<Option<Duration>, EvalError> {
        if policy.max_attempts.is_some_and(|max| retries >= max) {
            return Ok(None);
        }
        let standalone = [error.clone()];
        let locals: &[Val] = if policy.standalone {
            &standalone
        } else {
            catch_locals
        };
        self.eval(input, &NULL, descriptor, locals, |args| {
            if let Some(when) = &policy.when {
                if !truthy(&when.eval(input.clone(), args)?) {
                    return Ok(None);
                }
            }
            if let Some(except_when) = &policy.except_when {
                if truthy(&except_when.eval(input.clone(), args)?) {
                    return Ok(None);
                }
            }
            if let Some(total) = &policy.total_duration {
                if started.elapsed() >= total.eval(input, args)? {
                    return Ok(None);
                }
            }
            let base = match &policy.delay {
                Some(delay) => delay.eval(input, args)?,
                None => Duration::ZERO,
            };
            let factor: u32 = match policy.backoff {
                Backoff::Constant => 1,
                Backoff::Linear => u32::try_from(retries + 1).unwrap_or(u32::MAX),
                Backoff::Exponential => 1u32 << retries.min(20),
            };
            let mut delay = base.saturating_mul(factor);
            if let Some((from, to)) = &policy.jitter {
                let (from, to) = (from.eval(input, args)?, to.eval(input, args)?);
                if to > from {
                    let span = (to - from).as_nanos().min(u128::from(u64::MAX)) as u64;
                    let random = RandomState::new().build_hasher().finish();
                    delay = delay.saturating_add(from + Duration::from_nanos(random % span.max(1)));
                } else {
                    delay = delay.saturating_add(from);
                }
            }
            Ok(Some(delay))
        })
    }

    /// `for`: the iterations, chained.
    async fn for_(
        &self,
        for_: &'r For,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<(Val, bool), Stop> {
        let collection = self
            .eval(input, &NULL, descriptor, frame.locals, |args| {
                for_.collection.eval(input.clone(), args)
            })
            .map_err(|e| expression_error(instance, e))?;
        let items: Vec<Val> = match collection {
            Val::Arr(items) => Arc::unwrap_or_clone(items),
            Val::Null => Vec::new(),
            other => {
                return Err(Stop::Fault(WorkflowError::expression(
                    instance,
                    format!(
                        "{}: `for.in` must produce a list to iterate over; it produced {}",
                        for_.collection.pointer(),
                        truncate(&other.to_string(), 60)
                    ),
                )))
            }
        };
        let mut locals = Vec::with_capacity(for_.scope_len.max(frame.locals.len() + 2));
        locals.extend_from_slice(frame.locals);
        locals.push(Val::Null);
        locals.push(Val::Null);
        let (item_slot, index_slot) = (locals.len() - 2, locals.len() - 1);
        let mut data = input.clone();
        for (index, item) in items.into_iter().enumerate() {
            locals[item_slot] = item;
            locals[index_slot] = Val::from(index);
            if let Some(while_) = &for_.while_ {
                let verdict = self
                    .eval(&data, &NULL, descriptor, &locals, |args| {
                        while_.eval(data.clone(), args)
                    })
                    .map_err(|e| expression_error(instance, e))?;
                if !truthy(&verdict) {
                    break;
                }
            }
            let inner = Frame {
                locals: &locals,
                ..frame
            };
            let (output, ended) = self.list(&for_.tasks, data, inner).await?;
            data = output;
            if ended {
                return Ok((data, true));
            }
        }
        Ok((data, false))
    }

    /// `fork`: the branches, concurrently.
    async fn fork(
        &self,
        fork: &'r Fork,
        input: &Val,
        frame: Frame<'_>,
    ) -> Result<(Val, Option<Flow>), Stop> {
        let mut running: FuturesUnordered<_> = fork
            .branches
            .tasks
            .iter()
            .enumerate()
            .map(|(index, branch)| {
                let future = self.task_boxed(branch, input.clone(), frame);
                async move { (index, future.await) }
            })
            .collect();
        if fork.compete {
            let mut first_error = None;
            while let Some((_, result)) = running.next().await {
                match result {
                    Ok((output, flow)) => {
                        return Ok((output, (flow == Flow::End).then_some(Flow::End)))
                    }
                    Err(Stop::Fault(error)) => {
                        first_error.get_or_insert(error);
                    }
                    Err(stop) => return Err(stop),
                }
            }
            return Err(Stop::Fault(first_error.unwrap_or_else(|| {
                WorkflowError::runtime(
                    &self.shared.current_task(),
                    "the fork has no branches".into(),
                )
            })));
        }
        let mut outputs: Vec<Val> = vec![Val::Null; fork.branches.tasks.len()];
        let mut end = false;
        while let Some((index, result)) = running.next().await {
            let (output, flow) = result?;
            end |= flow == Flow::End;
            if let Some(slot) = outputs.get_mut(index) {
                *slot = output;
            }
        }
        Ok((outputs.into_iter().collect(), end.then_some(Flow::End)))
    }

    /// `wait`: sleeps, or faults at once when a limit would pass first.
    async fn wait(
        &self,
        duration: &DurationSpec,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<(), Stop> {
        let duration = self
            .eval(input, &NULL, descriptor, frame.locals, |args| {
                duration.eval(input, args)
            })
            .map_err(|e| expression_error(instance, e))?;
        if later(duration) > frame.limit.until {
            return Err(frame.limit.error(instance));
        }
        tokio::time::sleep(duration).await;
        Ok(())
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

    /// `run: workflow`.
    async fn run_workflow(
        &self,
        run: &'r RunWorkflow,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Val, Stop> {
        let depth = self.deeper(frame, instance)?;
        let link = &run.link;
        let Some(target) = link.target.get().and_then(std::sync::Weak::upgrade) else {
            return Err(Stop::Fault(WorkflowError::configuration(
                instance,
                format!(
                    "the sub-workflow {}/{}@{} is not linked: load workflows through a Registry, which links `run: workflow` targets",
                    link.namespace,
                    link.name,
                    link.version.as_deref().unwrap_or("latest")
                ),
            )));
        };
        let child_input = match &run.input {
            Some(template) => self
                .eval(input, &NULL, descriptor, frame.locals, |args| {
                    template.eval(input, args)
                })
                .map_err(|e| expression_error(instance, e))?,
            None => input.clone(),
        };
        self.shared
            .document(&target, Start::Fresh(child_input), depth, frame.limit)
            .await
    }

    /// `call` of a function of `use.functions`.
    async fn call_function(
        &self,
        call: &CallFunction,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Val, Stop> {
        let depth = self.deeper(frame, instance)?;
        let Some(function) = self.workflow.functions.get(call.index) else {
            return Err(Stop::Fault(WorkflowError::runtime(
                instance,
                "the called function is missing".into(),
            )));
        };
        let arguments = match &call.with {
            Some(with) => self
                .eval(input, &NULL, descriptor, frame.locals, |args| {
                    with.eval(input, args)
                })
                .map_err(|e| expression_error(instance, e))?,
            None => input.clone(),
        };
        let inner = Frame {
            locals: &[],
            limit: frame.limit,
            depth,
        };
        let (output, _flow) = self.task_boxed(function, arguments, inner).await?;
        Ok(output)
    }

    /// `call: openapi`: resolve the operation (fetching the document once), then call it.
    async fn openapi(
        &self,
        call: &'r OpenApiCall,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Val, Stop> {
        let operation = match call.operation.get() {
            Some(operation) => operation.clone(),
            None => {
                let operation = Arc::new(
                    self.fetch_operation(call, instance, input, descriptor, frame)
                        .await?,
                );
                let _ = call.operation.set(operation.clone());
                operation
            }
        };
        let request = self
            .eval(input, &NULL, descriptor, frame.locals, |args| {
                Ok(call.request(&operation, input, args))
            })
            .map_err(|e| expression_error(instance, e))?
            .map_err(|e| match e {
                OperationError::Expression(e) => Stop::Fault(expression_error(instance, e)),
                OperationError::Parameters(message) => {
                    Stop::Fault(WorkflowError::validation(instance, message))
                }
            })?;
        let response = self.send(&request, call.redirect, instance).await?;
        Ok(http::output(call.output, &request, &response))
    }

    /// Sends an HTTP request of a `call` task (metered); a failure faults the task at `instance`.
    async fn send(
        &self,
        request: &http::Request,
        redirect: bool,
        instance: &str,
    ) -> Result<http::Response, Stop> {
        self.workflow
            .services
            .http
            .send(request, redirect, &self.shared.http)
            .await
            .map_err(|failure| Stop::Fault(failure.into_error(instance)))
    }

    /// Fetches and parses an OpenAPI document named by URL, and finds the operation.
    async fn fetch_operation(
        &self,
        call: &OpenApiCall,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Operation, Stop> {
        let DocSource::Url { url, auth } = &call.source else {
            return Err(Stop::Fault(WorkflowError::configuration(
                instance,
                "the bundled OpenAPI operation was not resolved at load".into(),
            )));
        };
        let mut headers = vec![(
            "accept".to_owned(),
            "application/json, application/yaml;q=0.9".to_owned(),
        )];
        if let Some(auth) = auth {
            let value = self
                .eval(input, &NULL, descriptor, frame.locals, |args| {
                    auth.header_value(input, args)
                })
                .map_err(|e| expression_error(instance, e))?;
            headers.push(("authorization".into(), value));
        }
        let request = http::Request {
            method: hyper::Method::GET,
            url: url.clone(),
            headers,
            body: None,
        };
        let response = self
            .workflow
            .services
            .http
            .send(&request, true, &self.shared.http)
            .await
            .map_err(|failure| Stop::Fault(failure.into_error(instance)))?;
        let document: Value = serde_json::from_slice(&response.body)
            .or_else(|_| serde_yaml_ng::from_slice(&response.body))
            .map_err(|_| {
                Stop::Fault(WorkflowError::configuration(
                    instance,
                    format!(
                        "the OpenAPI document at {} is neither JSON nor YAML",
                        http::display_url(url)
                    ),
                ))
            })?;
        Operation::resolve(&document, Some(url), &call.operation_id).map_err(|message| {
            Stop::Fault(WorkflowError::configuration(
                instance,
                format!(
                    "the OpenAPI document at {}: {message}",
                    http::display_url(url)
                ),
            ))
        })
    }

    /// `emit`: the CloudEvent (id, specversion, time filled in when absent), collected.
    fn emit(
        &self,
        emit: &Emit,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        locals: &[Val],
    ) -> Result<Val, Stop> {
        let attributes = self
            .eval(input, &NULL, descriptor, locals, |args| {
                emit.attributes.eval(input, args)
            })
            .map_err(|e| expression_error(instance, e))?;
        let Ok(Value::Object(mut event)) = to_json(&attributes) else {
            return Err(Stop::Fault(WorkflowError::validation(
                instance,
                "the event's attributes must be a map".into(),
            )));
        };
        for attribute in ["source", "type"] {
            let present = event
                .get(attribute)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty());
            if !present {
                return Err(Stop::Fault(WorkflowError::validation(
                    instance,
                    format!("the event's `{attribute}` must be a non-empty string"),
                )));
            }
        }
        let now = SystemTime::now();
        if !event.get("id").is_some_and(Value::is_string) {
            event.insert("id".into(), Value::String(uuid::Uuid::now_v7().to_string()));
        }
        event
            .entry("specversion")
            .or_insert_with(|| Value::String("1.0".into()));
        if !event.get("time").is_some_and(Value::is_string) {
            event.insert(
                "time".into(),
                Value::String(crate::time::rfc3339_millis(now)),
            );
        }
        if event.contains_key("data") && !event.contains_key("datacontenttype") {
            event.insert(
                "datacontenttype".into(),
                Value::String("application/json".into()),
            );
        }
        let event = Value::Object(event);
        let output = from_json_ref(&event);
        lock(&self.shared.events).push(event);
        Ok(output)
    }
}

/// How a task is entered.
enum Entry {
    /// With its raw input.
    Fresh(Val),
    /// Where it waited: its transformed input, and what it needs to go on.
    Resume { input: Val, resume: Resume },
}

/// The `instance` of a data-flow error: the task, or the workflow's `input`/`output` place.
fn instance_of<'a>(instance: &'a str, workflow_place: &'a str) -> &'a str {
    match instance {
        "/input" | "/output" => workflow_place,
        task => task,
    }
}

/// Base of the standard error types as the CTK and older documents spell them.
const DSL_ERROR_TYPES: &str = "https://serverlessworkflow.io/dsl/errors/types/";

/// Whether `error` passes `filter` (every field set must be equal).
fn matches_filter(filter: &ErrorFilter, error: &WorkflowError) -> bool {
    let same_type = |expected: &str| {
        expected == error.type_
            || match (standard_kind(expected), standard_kind(&error.type_)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            }
    };
    filter.type_.as_deref().is_none_or(same_type)
        && filter.status.is_none_or(|status| status == error.status)
        && filter
            .instance
            .as_deref()
            .is_none_or(|i| error.instance.as_deref() == Some(i))
        && filter
            .title
            .as_deref()
            .is_none_or(|t| error.title.as_deref() == Some(t))
        && filter
            .detail
            .as_deref()
            .is_none_or(|d| error.detail.as_deref() == Some(d))
}

/// The kind of a standard error type URI, in either spelling.
fn standard_kind(type_: &str) -> Option<&str> {
    type_
        .strip_prefix(DSL_ERROR_TYPES)
        .or_else(|| type_.strip_prefix(&WorkflowError::standard_type("")[..]))
        .filter(|kind| !kind.is_empty() && !kind.contains('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_types_match_in_both_spellings() {
        let error = WorkflowError::runtime("/do/0/a", "x".into());
        let filter = |type_: &str| ErrorFilter {
            type_: Some(type_.into()),
            ..ErrorFilter::default()
        };
        assert!(matches_filter(
            &filter("https://serverlessworkflow.io/dsl/errors/types/runtime"),
            &error
        ));
        assert!(matches_filter(
            &filter("https://serverlessworkflow.io/spec/1.0.0/errors/runtime"),
            &error
        ));
        assert!(!matches_filter(
            &filter("https://serverlessworkflow.io/dsl/errors/types/timeout"),
            &error
        ));
        assert!(!matches_filter(
            &filter("https://example.com/errors/runtime"),
            &error
        ));
        let status = ErrorFilter {
            status: Some(500),
            instance: Some("/do/0/a".into()),
            ..ErrorFilter::default()
        };
        assert!(matches_filter(&status, &error));
        assert!(!matches_filter(
            &ErrorFilter {
                status: Some(404),
                ..ErrorFilter::default()
            },
            &error
        ));
    }
}
