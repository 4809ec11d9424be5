//! Task lists and the fields every task has: a `do` list (names unique, `then` targets
//! resolved to siblings), one task (which kind it is, and the kinds that can never run here;
//! `if`, `input`, `output`, `export`, `timeout`, `then`, `metadata`), the dispatch to the
//! loader of its kind, and timeouts and durations (also the workflow's `timeout`).

use super::components;
use super::{check_fields, child, describe, map, single_entry, Invalid, Loader, STATELESS};
use crate::duration::DurationSpec;
use crate::expr::{Arg, Position, Scope};
use crate::model::{Flow, Task, TaskKind, TaskList};
use crate::value::{from_json_ref, object, string};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The fields every task may have, besides its kind.
const TASK_FIELDS: [&str; 7] = [
    "if", "input", "output", "export", "timeout", "then", "metadata",
];
/// The task kinds of the DSL. `for` comes before `do`: a `for` task has a `do` too.
const TASK_KINDS: [&str; 12] = [
    "call", "emit", "for", "fork", "listen", "raise", "run", "set", "switch", "try", "wait", "do",
];

impl Loader<'_> {
    /// `timeout`: `{ after: duration }` or the name of one in `use.timeouts`.
    pub(super) fn timeout(
        &self,
        value: &Value,
        pointer: &str,
        position: Position,
    ) -> Result<Arc<DurationSpec>, Invalid> {
        match value {
            Value::String(name) => {
                let (timeout, uses_task) = self.components.timeouts.get(name).ok_or_else(|| {
                    Invalid::new(
                        pointer,
                        format!(
                            "there is no timeout named `{name}` in `use.timeouts` ({})",
                            components::names(&self.components.timeouts)
                        ),
                    )
                })?;
                self.note(*uses_task);
                Ok(timeout.clone())
            }
            value => {
                let duration = components::timeout(self, value, pointer, position)?;
                self.note(duration_uses_task(&duration));
                Ok(Arc::new(duration))
            }
        }
    }

    /// A duration field.
    pub(super) fn duration(
        &self,
        value: &Value,
        position: Position,
        scope: &Scope,
        pointer: &str,
    ) -> Result<DurationSpec, Invalid> {
        let duration =
            DurationSpec::compile(value, self.compiler, self.site(position, scope), pointer)?;
        self.note(duration_uses_task(&duration));
        Ok(duration)
    }

    /// A `do` list: `- name: { task }` entries, names unique, flow targets resolved.
    pub(super) fn task_list(
        &self,
        value: &Value,
        pointer: &str,
        scope: &Scope,
    ) -> Result<TaskList, Invalid> {
        let Value::Array(items) = value else {
            return Err(Invalid::new(
                pointer,
                format!(
                    "`do` must be a list of tasks, each `- name: {{ task }}`; found {}",
                    describe(value)
                ),
            ));
        };
        if items.is_empty() {
            return Err(Invalid::new(
                pointer,
                "`do` lists no tasks; add at least one",
            ));
        }
        let mut entries: Vec<(&str, &Value, String)> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let at = child(pointer, &index.to_string());
            let (name, task) = single_entry(item, &at, "`do`", "the task's name")?;
            if name.is_empty() {
                return Err(Invalid::new(&at, "a task name must not be empty"));
            }
            if matches!(name, "continue" | "exit" | "end") {
                return Err(Invalid::new(
                    &child(&at, name),
                    format!("`{name}` is a flow directive and cannot name a task; rename the task"),
                ));
            }
            if let Some(first) = entries.iter().position(|(other, _, _)| *other == name) {
                return Err(Invalid::new(
                    &child(&at, name),
                    format!(
                        "task name `{name}` is already used at {}; names must be unique within a `do` list",
                        child(&child(pointer, &first.to_string()), name)
                    ),
                ));
            }
            entries.push((name, task, child(&at, name)));
        }
        let names: Vec<&str> = entries.iter().map(|(name, _, _)| *name).collect();
        let tasks = entries
            .iter()
            .map(|(name, task, at)| self.task(name, task, at, &names, scope))
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(TaskList { tasks })
    }

    /// One task: its kind, the common fields, and its body.
    pub(crate) fn task(
        &self,
        name: &str,
        value: &Value,
        pointer: &str,
        siblings: &[&str],
        scope: &Scope,
    ) -> Result<Task, Invalid> {
        let outer_uses_task = self.uses_task.replace(false);
        let result = self.task_body(name, value, pointer, siblings, scope);
        let uses_task = self.uses_task.replace(outer_uses_task);
        let mut task = result?;
        if uses_task {
            task.uses_descriptor = true;
            task.descriptor = object([
                ("name", string(name)),
                ("reference", string(pointer)),
                ("definition", from_json_ref(value)),
            ]);
        }
        Ok(task)
    }

    fn task_body(
        &self,
        name: &str,
        value: &Value,
        pointer: &str,
        siblings: &[&str],
        scope: &Scope,
    ) -> Result<Task, Invalid> {
        let fields = map(value, pointer, &format!("task `{name}`"))?;
        let kind = kind(name, fields, pointer)?;
        let extra: &[&str] = match kind {
            "for" => &["do", "while"],
            "try" => &["catch"],
            "call" => &["with"],
            "run" => &["await", "return"],
            _ => &[],
        };
        let allowed: Vec<&str> = TASK_FIELDS
            .iter()
            .copied()
            .chain([kind])
            .chain(extra.iter().copied())
            .collect();
        check_fields(
            fields,
            pointer,
            &format!("`{kind}` task `{name}`"),
            &allowed,
        )?;
        if let Some(metadata) = fields.get("metadata") {
            map(metadata, &child(pointer, "metadata"), "`metadata`")?;
        }
        let condition = match fields.get("if") {
            None => None,
            Some(value) => Some(self.expr_field(
                value,
                Position::TaskIf,
                scope,
                &child(pointer, "if"),
                "`if`",
            )?),
        };
        let input = self.data_in(
            fields.get("input"),
            &child(pointer, "input"),
            Position::TaskInputFrom,
            scope,
        )?;
        let output = self.data_out(
            fields.get("output"),
            &child(pointer, "output"),
            "as",
            Position::TaskOutputAs,
            scope,
        )?;
        let export = self.data_out(
            fields.get("export"),
            &child(pointer, "export"),
            "as",
            Position::TaskExportAs,
            scope,
        )?;
        let timeout = match fields.get("timeout") {
            Some(value) => {
                Some(self.timeout(value, &child(pointer, "timeout"), Position::TaskDefinition)?)
            }
            None => None,
        };
        let then = flow(fields.get("then"), &child(pointer, "then"), siblings)?;
        let body_pointer = child(pointer, kind);
        let body = fields.get(kind).unwrap_or(&Value::Null);
        let kind = match kind {
            "set" => TaskKind::Set(self.set(body, &body_pointer, scope)?),
            "do" => TaskKind::Do(self.task_list(body, &body_pointer, scope)?),
            "switch" => TaskKind::Switch(self.switch(body, &body_pointer, siblings, scope)?),
            "raise" => TaskKind::Raise(self.raise(body, &body_pointer, scope)?),
            "try" => TaskKind::Try(Box::new(self.try_(fields, pointer, scope)?)),
            "for" => TaskKind::For(Box::new(self.for_(fields, pointer, scope)?)),
            "fork" => TaskKind::Fork(Box::new(self.fork(body, &body_pointer, scope)?)),
            "wait" => TaskKind::Wait(self.duration(
                body,
                Position::TaskDefinition,
                scope,
                &body_pointer,
            )?),
            "call" => self.call(name, fields, pointer, scope)?,
            "emit" => TaskKind::Emit(Box::new(self.emit(body, &body_pointer, scope)?)),
            _ => TaskKind::RunWorkflow(Box::new(self.run(fields, pointer, scope)?)),
        };
        Ok(Task {
            reference: pointer.into(),
            descriptor: jaq_json::Val::Null,
            uses_descriptor: false,
            condition,
            input,
            output,
            export,
            timeout,
            then,
            kind,
        })
    }
}

fn duration_uses_task(duration: &DurationSpec) -> bool {
    match duration {
        DurationSpec::Fixed(_) => false,
        DurationSpec::Expr(expr) => expr.uses(Arg::Task),
    }
}

/// Which kind of task this is; errors for the kinds this runtime can never run.
fn kind(name: &str, fields: &Map<String, Value>, pointer: &str) -> Result<&'static str, Invalid> {
    let mut present: Vec<&'static str> = TASK_KINDS
        .iter()
        .copied()
        .filter(|kind| fields.contains_key(*kind))
        .collect();
    if present.contains(&"for") {
        present.retain(|kind| *kind != "do");
    }
    let kind = match present.as_slice() {
        [] => {
            return Err(Invalid::new(
                pointer,
                format!(
                    "task `{name}` does not say what to do: give it one task kind ({})",
                    TASK_KINDS.join(", ")
                ),
            ))
        }
        [kind] => *kind,
        several => {
            return Err(Invalid::new(
                pointer,
                format!(
                    "task `{name}` has several task kinds ({}); a task has exactly one — split it into separate tasks",
                    several.join(", ")
                ),
            ))
        }
    };
    let at = child(pointer, kind);
    let never = |what: &str, needs: &str| {
        Err(Invalid::new(
            &at,
            format!(
                "task `{name}` uses {what}, which needs {needs}; {STATELESS}, so it can never run here — remove it or run this workflow on another host"
            ),
        ))
    };
    match kind {
        "listen" => never("`listen`", "a stateful host that waits for events"),
        "run" => {
            let process = fields
                .get("run")
                .and_then(Value::as_object)
                .and_then(|run| {
                    ["container", "shell", "script", "workflow"]
                        .into_iter()
                        .find(|process| run.contains_key(*process))
                });
            match process {
                Some("container") => never("`run: container`", "a container runtime"),
                Some(process @ ("shell" | "script")) => never(
                    &format!("`run: {process}`"),
                    "a container runtime to run processes in",
                ),
                Some(_) => Ok(kind),
                None => Err(Invalid::new(
                    &at,
                    format!("task `{name}`: `run` needs `workflow` (the only process this runtime runs): `run: {{ workflow: {{ namespace, name, version }} }}`"),
                )),
            }
        }
        "call" => match fields.get("call").and_then(Value::as_str) {
            Some(protocol @ ("grpc" | "asyncapi")) => never(
                &format!("`call: {protocol}`"),
                "a stateful host (long-lived channels, brokers and subscriptions)",
            ),
            Some(_) => Ok(kind),
            None => Err(Invalid::new(
                &at,
                format!("task `{name}`: `call` must name what to call: `http`, `openapi`, `agents`, or a function of `use.functions`"),
            )),
        },
        other => Ok(other),
    }
}

/// `then`: `continue`, `exit`, `end`, or the name of a task in the same list.
pub(super) fn flow(
    value: Option<&Value>,
    pointer: &str,
    siblings: &[&str],
) -> Result<Flow, Invalid> {
    let target = match value {
        None => return Ok(Flow::Continue),
        Some(Value::String(target)) => target.as_str(),
        Some(other) => {
            return Err(Invalid::new(
                pointer,
                format!(
                    "`then` must be `continue`, `exit`, `end` or the name of a task; found {}",
                    describe(other)
                ),
            ))
        }
    };
    match target {
        "continue" => Ok(Flow::Continue),
        "exit" => Ok(Flow::Exit),
        "end" => Ok(Flow::End),
        name => siblings
            .iter()
            .position(|sibling| *sibling == name)
            .map(Flow::Goto)
            .ok_or_else(|| {
                Invalid::new(
                    pointer,
                    format!(
                        "there is no task named `{name}` in this `do` list (it has: {}); `then` can only target a task of the same list, or be `continue`, `exit` or `end`",
                        siblings.join(", ")
                    ),
                )
            }),
    }
}
