//! Task lists and the frame of every task: the document body (the workflow's `input`, its
//! top-level `do`, its `output`, or a resumed run from its waiting task), a `do` list run in
//! order with its `then` directives (`continue`, `exit`, `end`, a sibling), one task's `if`,
//! data flow, `timeout` and `export`, and the dispatch to the runner of its kind.

use super::data::validate;
use super::{
    expression_error, later, lock, truthy, BoxFuture, Frame, Limit, Owner, Runner, Start, Stop,
    NULL,
};
use crate::agents::state as agents_state;
use crate::agents::Resume;
use crate::error::WorkflowError;
use crate::model::{Flow, Task, TaskKind, TaskList};
use crate::value::{datetime_descriptor, from_json, string, to_json};
use jaq_json::Val;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use tokio::time::Instant;
use tracing::Instrument as _;

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

impl<'r> Runner<'r> {
    /// The document: `input`, the top-level `do`, `output` — or, resuming, the waiting task,
    /// the rest of the top-level `do`, `output`.
    pub(super) async fn body(
        &self,
        start: Start,
        limit: &Limit,
        depth: usize,
    ) -> Result<Val, Stop> {
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
            resume: Box::new(Resume {
                conversation: saved.conversation,
                reply,
            }),
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

    /// A task list; returns the last output and whether the workflow must end (`then: end`).
    pub(super) fn list<'a>(
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
    pub(crate) fn task_boxed<'a>(
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
            Entry::Resume { input, resume } => (input, Some(*resume)),
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
                self.set(template, instance, input, descriptor, frame.locals)?,
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
            TaskKind::CallHttp(call) => Ok((
                self.call_http(call, instance, input, descriptor, frame)
                    .await?,
                None,
            )),
            TaskKind::CallOpenApi(call) => Ok((
                self.openapi(call, instance, input, descriptor, frame)
                    .await?,
                None,
            )),
            TaskKind::CallA2a(call) => Ok((
                Box::pin(self.call_a2a(call, instance, input, descriptor, frame)).await?,
                None,
            )),
            TaskKind::CallMcp(call) => Ok((
                Box::pin(self.call_mcp(call, instance, input, descriptor, frame)).await?,
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
}

/// How a task is entered.
enum Entry {
    /// With its raw input.
    Fresh(Val),
    /// Where it waited: its transformed input, and what it needs to go on.
    Resume { input: Val, resume: Box<Resume> },
}
