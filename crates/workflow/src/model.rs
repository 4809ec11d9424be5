//! The compiled workflow: what the loader produces and the runner walks. Plain data, built
//! once at load; a run never parses or compiles anything (an OpenAPI document named by URL is
//! the one exception: it is fetched on first use and kept).

use super::agents::AgentsCall;
use super::duration::DurationSpec;
use super::expr::{Expr, Template};
use super::http::HttpCall;
use super::openapi::OpenApiCall;
use super::options::Services;
use super::schema::Schema;
use super::version::Version;
use jaq_json::Val;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};

/// Identifies one bundled workflow version (`document.namespace`, `.name`, `.version`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct WorkflowId {
    /// `document.namespace`.
    pub namespace: String,
    /// `document.name`.
    pub name: String,
    /// `document.version` (a semantic version).
    pub version: String,
}

impl std::fmt::Display for WorkflowId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.namespace, self.name, self.version)
    }
}

/// A validated, compiled workflow, ready to run any number of times (see `run`).
pub struct Workflow {
    pub(crate) id: WorkflowId,
    /// `id.version`, parsed, for ordering.
    pub(crate) version: Version,
    /// The file it was loaded from.
    pub(crate) source: PathBuf,
    /// The workflow's `input` (`schema`, `from`).
    pub(crate) input: DataIn,
    /// The workflow's `output` (`as`, `schema`).
    pub(crate) output: DataOut,
    /// The workflow's `timeout`.
    pub(crate) timeout: Option<Arc<DurationSpec>>,
    /// The top-level `do`.
    pub(crate) tasks: TaskList,
    /// `use.functions`, called by index from `call: <name>` tasks.
    pub(crate) functions: Box<[Task]>,
    /// The `run: workflow` references, linked to their targets by the registry.
    pub(crate) subflows: Vec<Arc<SubflowLink>>,
    /// The whole document as a value (`$workflow.definition`).
    pub(crate) definition: Val,
    /// `$runtime`.
    pub(crate) runtime: Val,
    /// `$secrets`: the secrets the document declares in `use.secrets`. Never logged.
    pub(crate) secrets: Val,
    /// What runs need from the host: the HTTP client, the model providers.
    pub(crate) services: Arc<Services>,
    /// A digest of the document, so that a waiting run's state is resumed only by the very
    /// definition that issued it.
    pub(crate) fingerprint: String,
}

impl Workflow {
    /// Namespace, name and version of this workflow.
    pub fn id(&self) -> &WorkflowId {
        &self.id
    }

    /// The file this workflow was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Whether a run of this workflow can end `waiting`: a task of its top-level `do` is an
    /// agents conversation that can hand back to the user (the only place a run may wait, as
    /// checked at load). A host needs a continuation key to let such a run wait.
    pub fn can_wait(&self) -> bool {
        self.tasks.tasks.iter().any(|task| match &task.kind {
            TaskKind::Agents(call) => call.waits_at.is_some(),
            _ => false,
        })
    }
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow")
            .field("id", &self.id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// An `input`: validation of the raw input, then its transformation.
#[derive(Default)]
pub(crate) struct DataIn {
    /// `input.schema`.
    pub(crate) schema: Option<Schema>,
    /// `input.from`.
    pub(crate) from: Option<Template>,
}

/// An `output` (or `export`): the transformation, then validation of its result.
#[derive(Default)]
pub(crate) struct DataOut {
    /// `output.as` / `export.as`.
    pub(crate) as_: Option<Template>,
    /// `output.schema` / `export.schema`.
    pub(crate) schema: Option<Schema>,
}

/// A `do` list: tasks run in order unless a flow directive says otherwise.
pub(crate) struct TaskList {
    pub(crate) tasks: Box<[Task]>,
}

/// One task with the fields every task shares.
pub(crate) struct Task {
    /// JSON pointer of the task, e.g. `/do/0/greet` (its `$task.reference` and error `instance`).
    pub(crate) reference: Arc<str>,
    /// `{ name, reference, definition }`, the static part of `$task`.
    pub(crate) descriptor: Val,
    /// Whether any of the task's own expressions reads `$task` (else it is never built).
    pub(crate) uses_descriptor: bool,
    /// `if`: run only when it is truthy.
    pub(crate) condition: Option<Expr>,
    /// `input`.
    pub(crate) input: DataIn,
    /// `output`.
    pub(crate) output: DataOut,
    /// `export`.
    pub(crate) export: DataOut,
    /// `timeout`.
    pub(crate) timeout: Option<Arc<DurationSpec>>,
    /// `then`.
    pub(crate) then: Flow,
    /// What the task does.
    pub(crate) kind: TaskKind,
}

/// The kinds of task this engine runs. Each has one runner in `run/` (`do` in `run/flow.rs`,
/// agents in `agents/run.rs`).
pub(crate) enum TaskKind {
    /// `do`: subtasks in sequence.
    Do(TaskList),
    /// `set`: the output is the evaluated value.
    Set(Template),
    /// `switch`: the first matching case's flow directive.
    Switch(Box<[Case]>),
    /// `raise`: fault with an error.
    Raise(Arc<ErrorSpec>),
    /// `try`: run tasks, catch (and maybe retry) their errors.
    Try(Box<Try>),
    /// `for`: run tasks for each item of a collection.
    For(Box<For>),
    /// `fork`: run branches concurrently.
    Fork(Box<Fork>),
    /// `wait`: pause.
    Wait(DurationSpec),
    /// `run: workflow`: run another bundled workflow.
    RunWorkflow(Box<RunWorkflow>),
    /// `call: <function>`: a task of `use.functions`.
    CallFunction(Box<CallFunction>),
    /// `call: http`.
    CallHttp(Box<HttpCall>),
    /// `call: openapi`.
    CallOpenApi(Box<OpenApiCall>),
    /// `call: mcp`.
    CallMcp(Box<crate::mcp::McpCall>),
    /// `call: a2a`.
    CallA2a(Box<crate::a2a::A2aCall>),
    /// `emit`: a CloudEvent.
    Emit(Box<Emit>),
    /// `call: agents`: a multi-agent conversation on language models.
    Agents(Box<AgentsCall>),
}

/// One case of a `switch`.
pub(crate) struct Case {
    /// `when`; `None` for the default case.
    pub(crate) when: Option<Expr>,
    /// `then`.
    pub(crate) then: Flow,
}

/// An error definition (`raise.error` or `use.errors`): each field literal or an expression.
pub(crate) struct ErrorSpec {
    pub(crate) type_: Template,
    pub(crate) status: Template,
    pub(crate) title: Option<Template>,
    pub(crate) detail: Option<Template>,
    pub(crate) instance: Option<Template>,
}

/// A `try` task.
pub(crate) struct Try {
    /// `try`: the tasks to attempt.
    pub(crate) tasks: TaskList,
    /// `catch.errors.with`: every field set must match.
    pub(crate) filter: ErrorFilter,
    /// `catch.when`.
    pub(crate) when: Option<Expr>,
    /// `catch.exceptWhen`.
    pub(crate) except_when: Option<Expr>,
    /// `catch.retry`.
    pub(crate) retry: Option<Arc<RetryPolicy>>,
    /// `catch.do`.
    pub(crate) handler: Option<TaskList>,
}

/// `catch.errors.with`.
#[derive(Default)]
pub(crate) struct ErrorFilter {
    pub(crate) type_: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) instance: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) detail: Option<String>,
}

/// A retry policy (inline or `use.retries`).
pub(crate) struct RetryPolicy {
    /// `when`.
    pub(crate) when: Option<Expr>,
    /// `exceptWhen`.
    pub(crate) except_when: Option<Expr>,
    /// `delay` (zero when absent).
    pub(crate) delay: Option<DurationSpec>,
    /// `backoff`.
    pub(crate) backoff: Backoff,
    /// `limit.attempt.count`: retries after the first attempt.
    pub(crate) max_attempts: Option<u64>,
    /// `limit.attempt.duration`: the most each attempt may take.
    pub(crate) attempt_duration: Option<DurationSpec>,
    /// `limit.duration`: no retry starts after this long since the first attempt.
    pub(crate) total_duration: Option<DurationSpec>,
    /// `jitter` (`from`, `to`).
    pub(crate) jitter: Option<(DurationSpec, DurationSpec)>,
    /// Whether the policy's expressions were compiled on their own (`use.retries`, seeing
    /// only `$error`) rather than inside the `catch` (seeing its locals).
    pub(crate) standalone: bool,
}

/// How the delay grows between retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backoff {
    /// The same delay each time.
    Constant,
    /// `delay × n` before the n-th retry.
    Linear,
    /// `delay × 2^(n-1)` before the n-th retry.
    Exponential,
}

/// A `for` task.
pub(crate) struct For {
    /// `for.in`.
    pub(crate) collection: Expr,
    /// `while`, evaluated before each iteration with the item and index in scope.
    pub(crate) while_: Option<Expr>,
    /// `do`.
    pub(crate) tasks: TaskList,
    /// How many locals the body's scope has (the item and index are the last two).
    pub(crate) scope_len: usize,
}

/// A `fork` task.
pub(crate) struct Fork {
    /// `fork.branches`.
    pub(crate) branches: TaskList,
    /// `fork.compete`.
    pub(crate) compete: bool,
}

/// A `run: workflow` task.
pub(crate) struct RunWorkflow {
    /// The target, linked at registry load.
    pub(crate) link: Arc<SubflowLink>,
    /// `run.workflow.input` (default: the task's input).
    pub(crate) input: Option<Template>,
}

/// A reference to another workflow, resolved once every workflow of the bundle is loaded.
pub(crate) struct SubflowLink {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// `None` (or `latest`): the highest version bundled.
    pub(crate) version: Option<String>,
    /// Where the reference is, for load errors.
    pub(crate) pointer: String,
    /// The target; weak so that workflows running each other do not keep each other alive.
    pub(crate) target: OnceLock<Weak<Workflow>>,
}

/// A `call` of a `use.functions` task.
pub(crate) struct CallFunction {
    /// Index into `Workflow::functions`.
    pub(crate) index: usize,
    /// `with`: the function's input (default: the calling task's input).
    pub(crate) with: Option<Template>,
}

/// An `emit` task: the CloudEvent's attributes.
pub(crate) struct Emit {
    /// `emit.event.with`, every attribute (`data` included) as a template.
    pub(crate) attributes: Template,
}

/// A flow directive (`then`), resolved at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on with the next task of the list.
    Continue,
    /// Complete the current list (the whole workflow at the top level).
    Exit,
    /// End the workflow gracefully.
    End,
    /// Go to the task at this index of the same list.
    Goto(usize),
}
