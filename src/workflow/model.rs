//! The compiled workflow: what the loader produces and the runner walks. Plain data, built
//! once at load; a run never parses or compiles anything.

use super::expr::{Arg, Expr, Template};
use super::version::Version;
use jaq_json::Val;
use serde::Serialize;
use std::path::{Path, PathBuf};

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
    /// The workflow's `input.from`, if any.
    pub(crate) input_from: Option<Template>,
    /// The workflow's `output.as`, if any.
    pub(crate) output_as: Option<Template>,
    /// The top-level `do`.
    pub(crate) tasks: TaskList,
    /// The whole document as a value (`$workflow.definition`).
    pub(crate) definition: Val,
    /// `$runtime`.
    pub(crate) runtime: Val,
    /// `$secrets` (empty for now).
    pub(crate) secrets: Val,
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
}

impl std::fmt::Debug for Workflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workflow")
            .field("id", &self.id)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A `do` list: tasks run in order unless a flow directive says otherwise.
pub(crate) struct TaskList {
    pub(crate) tasks: Box<[Task]>,
}

/// One task with the fields every task shares.
pub(crate) struct Task {
    /// JSON pointer of the task, e.g. `/do/0/greet` (its `$task.reference` and error `instance`).
    pub(crate) reference: Box<str>,
    /// `{ name, reference, definition }`, the static part of `$task`.
    pub(crate) descriptor: Val,
    /// Whether any of the task's own expressions reads `$task` (else it is never built).
    pub(crate) uses_descriptor: bool,
    /// `if`: run only when it is truthy.
    pub(crate) condition: Option<Expr>,
    /// `input.from`.
    pub(crate) input_from: Option<Template>,
    /// `output.as`.
    pub(crate) output_as: Option<Template>,
    /// `export.as`.
    pub(crate) export_as: Option<Template>,
    /// `then`.
    pub(crate) then: Flow,
    /// What the task does.
    pub(crate) kind: TaskKind,
}

impl Task {
    /// Whether any expression of this task itself (not of its subtasks) reads `arg`.
    pub(crate) fn uses(&self, arg: Arg) -> bool {
        let templates = [&self.input_from, &self.output_as, &self.export_as];
        self.condition.as_ref().is_some_and(|c| c.uses(arg))
            || templates
                .iter()
                .any(|t| t.as_ref().is_some_and(|t| t.uses(arg)))
            || match &self.kind {
                TaskKind::Set(template) => template.uses(arg),
                TaskKind::Do(_) => false,
            }
    }
}

/// The kinds of task this engine runs. Each has one runner in `run.rs`.
pub(crate) enum TaskKind {
    /// `do`: subtasks in sequence.
    Do(TaskList),
    /// `set`: the output is the evaluated value.
    Set(Template),
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
