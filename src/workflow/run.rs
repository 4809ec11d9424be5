//! Running a compiled workflow: the DSL's data flow, flow directives, the deadline, metering.
//!
//! Data flow per task (DSL "Data Flow"): raw input → `if` (skip: the raw input is the output)
//! → `input.from` (= `$input`) → the task → `output.as` (= `$output`, the next task's raw
//! input) → `export.as` (replaces `$context`) → `then`. The workflow's `input.from` and
//! `output.as` wrap the top-level `do`. `$context` starts as `{}`.
//!
//! A skipped task ignores its `then` (it did not run); the next task in order follows.

use super::error::WorkflowError;
use super::expr::{Args, EvalError};
use super::model::{Flow, Task, TaskKind, TaskList, Workflow};
use super::value::{datetime_descriptor, from_json, from_json_ref, object, string, to_json};
use jaq_json::Val;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;
use tokio::time::Instant;
use tracing::Instrument as _;

/// The value of absent runtime arguments (never read: expressions only declare available ones).
static NULL: Val = Val::Null;

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
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The workflow ran to completion; this is its (transformed) output.
    Completed(Value),
    /// The workflow faulted: an expression failed, the deadline passed, …
    Faulted(WorkflowError),
}

/// Counters of one run, for usage events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Tasks that ran, nested ones included (a task skipped by `if` does not count).
    pub tasks_executed: u64,
    /// HTTP calls made (none yet: no task calls out).
    pub http_calls: u64,
    /// Request bytes sent by HTTP calls.
    pub http_bytes_sent: u64,
    /// Response bytes received by HTTP calls.
    pub http_bytes_received: u64,
}

impl Workflow {
    /// Runs the workflow on `input` until it completes, faults, or `deadline` passes (then it
    /// faults with the DSL `timeout` error). Never panics on input; needs a Tokio runtime
    /// with the time driver enabled.
    pub async fn run(&self, input: Value, exec: &ExecutionInfo, deadline: Instant) -> RunResult {
        let raw_input = from_json(input);
        let workflow = object([
            ("id", string(&exec.execution_id)),
            ("definition", self.definition.clone()),
            ("input", raw_input.clone()),
            ("startedAt", datetime_descriptor(SystemTime::now())),
        ]);
        let execution = object([
            ("id", string(&exec.execution_id)),
            ("claims", from_json_ref(&exec.claims)),
        ]);
        let mut runner = Runner {
            workflow: self,
            deadline,
            context: object([]),
            workflow_arg: workflow,
            execution_arg: execution,
            metrics: Metrics::default(),
            current: None,
        };
        let result = tokio::time::timeout_at(deadline, runner.run(raw_input)).await;
        let outcome = match result {
            Ok(Ok(output)) => Outcome::Completed(output),
            Ok(Err(error)) => Outcome::Faulted(error),
            Err(_elapsed) => Outcome::Faulted(WorkflowError::timeout(
                runner.current.unwrap_or("/do"),
                "the execution deadline passed while this task was running".into(),
            )),
        };
        RunResult {
            outcome,
            metrics: runner.metrics,
        }
    }
}

/// A boxed, sendable future (for the recursion of nested `do` lists).
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The state of one run.
struct Runner<'w> {
    workflow: &'w Workflow,
    deadline: Instant,
    /// `$context`.
    context: Val,
    /// `$workflow`.
    workflow_arg: Val,
    /// `$execution`.
    execution_arg: Val,
    metrics: Metrics,
    /// Reference of the task started last (the `instance` of a timeout).
    current: Option<&'w str>,
}

/// An expression failure as the DSL `expression` error of `instance`.
fn expression_error(instance: &str, error: EvalError) -> WorkflowError {
    WorkflowError::expression(instance, format!("{}: {}", error.pointer, error.message))
}

/// jq truthiness: everything but `false` and `null`.
fn truthy(value: &Val) -> bool {
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

impl<'w> Runner<'w> {
    /// The runtime arguments, with this task's `$input`, `$output` and `$task`.
    fn args<'a>(&'a self, input: &'a Val, output: &'a Val, task: &'a Val) -> Args<'a> {
        Args {
            context: &self.context,
            input,
            output,
            secrets: &self.workflow.secrets,
            task,
            workflow: &self.workflow_arg,
            runtime: &self.workflow.runtime,
            execution: &self.execution_arg,
        }
    }

    /// The workflow: `input.from`, the top-level `do`, `output.as`, back to JSON.
    async fn run(&mut self, raw_input: Val) -> Result<Value, WorkflowError> {
        let workflow = self.workflow;
        let input = match &workflow.input_from {
            Some(from) => from
                .eval(&raw_input, &self.args(&NULL, &NULL, &NULL))
                .map_err(|e| expression_error("/input/from", e))?,
            None => raw_input,
        };
        let (output, _ended) = self.list(&workflow.tasks, input).await?;
        let (output, instance) = match &workflow.output_as {
            Some(output_as) => (
                output_as
                    .eval(&output, &self.args(&NULL, &NULL, &NULL))
                    .map_err(|e| expression_error("/output/as", e))?,
                "/output/as",
            ),
            None => (output, "/do"),
        };
        to_json(&output).map_err(|message| {
            WorkflowError::expression(
                instance,
                format!("the workflow output is not JSON: {message}"),
            )
        })
    }

    /// A `do` list; returns the last output and whether the workflow must end (`then: end`).
    fn list<'a>(
        &'a mut self,
        list: &'w TaskList,
        input: Val,
    ) -> BoxFuture<'a, Result<(Val, bool), WorkflowError>> {
        Box::pin(async move {
            let mut data = input;
            let mut index = 0;
            while let Some(task) = list.tasks.get(index) {
                // Lets the timeout (and other tasks of the runtime) in on long sequences.
                tokio::task::coop::consume_budget().await;
                if Instant::now() >= self.deadline {
                    return Err(WorkflowError::timeout(
                        &task.reference,
                        "the execution deadline passed before this task could start".into(),
                    ));
                }
                // One span per task: logs inside it carry the task's reference, and a
                // subscriber sees which tasks ran in which order (the CTK's `X should run
                // first`). `skipped` is set when `if` skips the task.
                let span = tracing::debug_span!(
                    "task",
                    reference = &*task.reference,
                    skipped = tracing::field::Empty
                );
                let (output, flow) = self.task(task, data).instrument(span).await?;
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

    /// One task with its data flow; returns its transformed output and what comes next.
    async fn task(&mut self, task: &'w Task, raw: Val) -> Result<(Val, Flow), WorkflowError> {
        let instance = &*task.reference;
        let fault = |e| expression_error(instance, e);
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
        if let Some(condition) = &task.condition {
            let verdict = condition
                .eval(raw.clone(), &self.args(&NULL, &NULL, &descriptor))
                .map_err(fault)?;
            if !truthy(&verdict) {
                tracing::Span::current().record("skipped", true);
                return Ok((raw, Flow::Continue));
            }
        }
        self.metrics.tasks_executed += 1;
        self.current = Some(instance);
        let input = match &task.input_from {
            Some(from) => from
                .eval(&raw, &self.args(&NULL, &NULL, &descriptor))
                .map_err(fault)?,
            None => raw,
        };
        let (raw_output, ended) = match &task.kind {
            TaskKind::Set(template) => (
                template
                    .eval(&input, &self.args(&input, &NULL, &descriptor))
                    .map_err(fault)?,
                false,
            ),
            TaskKind::Do(list) => self.list(list, input.clone()).await?,
        };
        if task.uses_descriptor {
            descriptor = with_entries(&descriptor, [("output", raw_output.clone())]);
        }
        let output = match &task.output_as {
            Some(output_as) => output_as
                .eval(&raw_output, &self.args(&input, &NULL, &descriptor))
                .map_err(fault)?,
            None => raw_output,
        };
        if let Some(export_as) = &task.export_as {
            let context = export_as
                .eval(&output, &self.args(&input, &output, &descriptor))
                .map_err(fault)?;
            self.context = context;
        }
        let flow = if ended { Flow::End } else { task.then };
        Ok((output, flow))
    }
}
