//! Loading: a YAML or JSON document becomes a validated, compiled [`Workflow`].
//!
//! The document is walked as JSON (not deserialized into structs) so that every error can
//! name the exact place, as a JSON pointer, and say what to fix. Unknown fields are errors:
//! strictness catches typos. What can never run here (it needs a stateful host or a container
//! runtime) is rejected here, never at run time.
//!
//! Rooms: this file (documents, the task list, common task fields, the simple task kinds),
//! `components` (`use`: secrets, authentications, errors, retries, timeouts, functions),
//! `calls` (`call`, `emit`, `run`).

mod calls;
mod components;
#[cfg(test)]
mod tests;

use super::duration::DurationSpec;
use super::error::LoadError;
use super::expr::{Arg, Expr, ExprCompiler, Position, Scope, Site, Template};
use super::model::{
    Case, DataIn, DataOut, ErrorFilter, Flow, For, Fork, SubflowLink, Task, TaskKind, TaskList,
    Try, Workflow, WorkflowId,
};
use super::options::{EngineOptions, Services};
use super::schema::Schema;
use super::value::{from_json_ref, object, string};
use super::version::Version;
use components::Components;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::sync::Arc;

/// The fields every task may have, besides its kind.
const TASK_FIELDS: [&str; 7] = [
    "if", "input", "output", "export", "timeout", "then", "metadata",
];
/// The task kinds of the DSL. `for` comes before `do`: a `for` task has a `do` too.
const TASK_KINDS: [&str; 12] = [
    "call", "emit", "for", "fork", "listen", "raise", "run", "set", "switch", "try", "wait", "do",
];
/// Why some parts of the DSL can never run here.
const STATELESS: &str = "this runtime runs each execution statelessly, within one invocation";

pub(crate) use crate::error::{child, Invalid};

/// The document formats the loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `.yaml`, `.yml`.
    Yaml,
    /// `.json`.
    Json,
}

impl Format {
    /// The format of a workflow file, by its extension (case-insensitive); `None` if not one.
    pub(crate) fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Parses a document of this format.
    pub(crate) fn parse(self, text: &str) -> Result<Value, String> {
        match self {
            Format::Yaml => {
                serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML: {e}"))
            }
            Format::Json => serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}")),
        }
    }
}

impl Workflow {
    /// Parses, validates and compiles one workflow document with default [`EngineOptions`].
    /// `path` names it in errors and picks the format: `.json` is JSON, anything else YAML.
    /// A `run: workflow` task of a workflow parsed alone faults at run time: link workflows
    /// with [`Registry::from_workflows`](super::Registry::from_workflows).
    pub fn parse(path: &Path, text: &str) -> Result<Workflow, LoadError> {
        Self::parse_with(path, text, &EngineOptions::default())
    }

    /// [`Workflow::parse`] with `options` (secrets, test host overrides).
    pub fn parse_with(
        path: &Path,
        text: &str,
        options: &EngineOptions,
    ) -> Result<Workflow, LoadError> {
        let format = Format::of(path).unwrap_or(Format::Yaml);
        let services = Arc::new(Services::new(options));
        parse_text(path, text, format, &ExprCompiler::new(), options, &services)
    }
}

impl Workflow {
    /// Loads one workflow from `path`: a document (`.json` is JSON, anything else YAML), or a
    /// MozaiksAI workflow folder (a directory holding `orchestrator.yaml`), translated as the
    /// bundle loader translates it.
    pub fn load_path(path: &Path, options: &EngineOptions) -> Result<Workflow, LoadError> {
        let services = Arc::new(Services::new(options));
        let compiler = ExprCompiler::new();
        if path.is_dir() {
            let document = super::mozaiksai::translate(path)?;
            return compile_document(path, &document, &compiler, options, &services);
        }
        load_file(
            path,
            Format::of(path).unwrap_or(Format::Yaml),
            &compiler,
            options,
            &services,
        )
    }
}

/// Reads and compiles the workflow file at `path`.
pub(crate) fn load_file(
    path: &Path,
    format: Format,
    compiler: &ExprCompiler,
    options: &EngineOptions,
    services: &Arc<Services>,
) -> Result<Workflow, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::new(path, "", format!("cannot read the file: {e}")))?;
    parse_text(path, &text, format, compiler, options, services)
}

/// Parses and compiles a workflow document.
pub(crate) fn parse_text(
    path: &Path,
    text: &str,
    format: Format,
    compiler: &ExprCompiler,
    options: &EngineOptions,
    services: &Arc<Services>,
) -> Result<Workflow, LoadError> {
    let doc = format
        .parse(text)
        .map_err(|message| LoadError::new(path, "", message))?;
    compile_document(path, &doc, compiler, options, services)
}

/// Validates and compiles a workflow document already parsed (or generated, e.g. from a
/// MozaiksAI folder); `path` names it in errors.
pub(crate) fn compile_document(
    path: &Path,
    doc: &Value,
    compiler: &ExprCompiler,
    options: &EngineOptions,
    services: &Arc<Services>,
) -> Result<Workflow, LoadError> {
    Loader::new(compiler, path, options, services)
        .workflow(doc)
        .map_err(|invalid| invalid.in_file(path))
}

/// Compiles one document.
pub(crate) struct Loader<'c> {
    compiler: &'c ExprCompiler,
    path: &'c Path,
    options: &'c EngineOptions,
    services: &'c Arc<Services>,
    /// `evaluate.mode: loose`.
    loose: bool,
    /// The compiled `use` section.
    components: Components,
    /// The `run: workflow` references found so far.
    subflows: RefCell<Vec<Arc<SubflowLink>>>,
    /// Whether an expression of the task being compiled (not of its subtasks) reads `$task`.
    uses_task: Cell<bool>,
    /// The definitions of `use.functions`, as written (agent tools describe them).
    function_definitions: Map<String, Value>,
}

impl<'c> Loader<'c> {
    fn new(
        compiler: &'c ExprCompiler,
        path: &'c Path,
        options: &'c EngineOptions,
        services: &'c Arc<Services>,
    ) -> Self {
        Loader {
            compiler,
            path,
            options,
            services,
            loose: false,
            components: Components::default(),
            subflows: RefCell::new(Vec::new()),
            uses_task: Cell::new(false),
            function_definitions: Map::new(),
        }
    }

    /// The names of `use.functions`, in order (a `call` or an agent's `tools` names one).
    pub(crate) fn function_names(&self) -> &[String] {
        &self.components.functions
    }

    /// The definition of function `name` of `use.functions`, as written.
    pub(crate) fn function_definition(&self, name: &str) -> Option<&Value> {
        self.function_definitions.get(name)
    }

    fn workflow(mut self, doc: &Value) -> Result<Workflow, Invalid> {
        let root = map(doc, "", "a workflow document")?;
        check_fields(
            root,
            "",
            "the workflow",
            &[
                "document", "input", "use", "do", "timeout", "output", "schedule", "evaluate",
            ],
        )?;
        let (id, version) = document(required(root, "", "document")?)?;
        if root.contains_key("schedule") {
            return Err(Invalid::new(
                "/schedule",
                format!(
                    "`schedule` needs a scheduler that starts executions by itself, and {STATELESS}; \
                     remove it and have the caller schedule the invocations"
                ),
            ));
        }
        if let Some(evaluate) = root.get("evaluate") {
            self.loose = evaluate_mode(evaluate)?;
        }
        let (components, secrets) = match root.get("use") {
            Some(value) => components::compile(&self, value)?,
            None => (Components::default(), object([])),
        };
        self.components = components;
        if let Some(definitions) = root
            .get("use")
            .and_then(|fields| fields.get("functions"))
            .and_then(Value::as_object)
        {
            self.function_definitions = definitions.clone();
        }
        let functions = components::functions(&self, root.get("use"))?;
        let scope = Scope::default();
        let timeout = match root.get("timeout") {
            Some(value) => Some(self.timeout(value, "/timeout", Position::WorkflowInputFrom)?),
            None => None,
        };
        let input = self.data_in(
            root.get("input"),
            "/input",
            Position::WorkflowInputFrom,
            &scope,
        )?;
        let output = self.data_out(
            root.get("output"),
            "/output",
            "as",
            Position::WorkflowOutputAs,
            &scope,
        )?;
        let tasks = self.task_list(required(root, "", "do")?, "/do", &scope)?;
        Ok(Workflow {
            id,
            version,
            source: self.path.to_path_buf(),
            input,
            output,
            timeout,
            tasks,
            functions,
            subflows: self.subflows.take(),
            definition: from_json_ref(doc),
            runtime: object([
                ("name", string("mozaiks-runtime")),
                ("version", string(env!("CARGO_PKG_VERSION"))),
            ]),
            secrets,
            services: self.services.clone(),
            fingerprint: super::agents::fingerprint(doc),
        })
    }

    /// The site of an expression at `position` in `scope`.
    fn site<'s>(&self, position: Position, scope: &'s Scope) -> Site<'s> {
        Site {
            position,
            scope,
            loose: self.loose,
        }
    }

    /// Notes whether a compiled expression reads `$task`.
    fn note(&self, uses_task: bool) {
        if uses_task {
            self.uses_task.set(true);
        }
    }

    /// Compiles a field that is always an expression (`${ … }` or bare jq).
    pub(crate) fn expr(
        &self,
        code: &str,
        position: Position,
        scope: &Scope,
        pointer: &str,
    ) -> Result<Expr, Invalid> {
        let expr = self
            .compiler
            .field(code, self.site(position, scope), pointer)?;
        self.note(expr.uses(Arg::Task));
        Ok(expr)
    }

    /// Compiles a string field that must be an expression; `what` names it in the error.
    fn expr_field(
        &self,
        value: &Value,
        position: Position,
        scope: &Scope,
        pointer: &str,
        what: &str,
    ) -> Result<Expr, Invalid> {
        match value {
            Value::String(code) => self.expr(code, position, scope, pointer),
            other => Err(Invalid::new(
                pointer,
                format!(
                    "{what} must be a runtime expression (a string such as `${{ .ready }}`); found {}",
                    describe(other)
                ),
            )),
        }
    }

    /// Compiles a value whose `${ … }` strings are expressions.
    pub(crate) fn template(
        &self,
        value: &Value,
        position: Position,
        scope: &Scope,
        pointer: &str,
    ) -> Result<Template, Invalid> {
        let template = self
            .compiler
            .template(value, self.site(position, scope), pointer)?;
        self.note(template.uses(Arg::Task));
        Ok(template)
    }

    /// `input`: `schema`, then `from`.
    fn data_in(
        &self,
        value: Option<&Value>,
        pointer: &str,
        position: Position,
        scope: &Scope,
    ) -> Result<DataIn, Invalid> {
        let Some(value) = value else {
            return Ok(DataIn::default());
        };
        let fields = map(value, pointer, "`input`")?;
        check_fields(fields, pointer, "`input`", &["schema", "from"])?;
        Ok(DataIn {
            schema: match fields.get("schema") {
                Some(schema) => Some(Schema::compile(schema, &child(pointer, "schema"))?),
                None => None,
            },
            from: self.transform(
                fields.get("from"),
                &child(pointer, "from"),
                "from",
                position,
                scope,
            )?,
        })
    }

    /// `output` (`as`, `schema`) or `export` (`as`, `schema`).
    fn data_out(
        &self,
        value: Option<&Value>,
        pointer: &str,
        field: &str,
        position: Position,
        scope: &Scope,
    ) -> Result<DataOut, Invalid> {
        let Some(value) = value else {
            return Ok(DataOut::default());
        };
        let name = pointer.rsplit('/').next().unwrap_or(pointer);
        let what = format!("`{name}`");
        let fields = map(value, pointer, &what)?;
        check_fields(fields, pointer, &what, &["schema", field])?;
        Ok(DataOut {
            as_: self.transform(
                fields.get(field),
                &child(pointer, field),
                field,
                position,
                scope,
            )?,
            schema: match fields.get("schema") {
                Some(schema) => Some(Schema::compile(schema, &child(pointer, "schema"))?),
                None => None,
            },
        })
    }

    /// `input.from`, `output.as` or `export.as`: an expression, or a map of expressions.
    fn transform(
        &self,
        value: Option<&Value>,
        pointer: &str,
        field: &str,
        position: Position,
        scope: &Scope,
    ) -> Result<Option<Template>, Invalid> {
        match value {
            None => Ok(None),
            Some(Value::String(code)) => {
                Ok(Some(Template::Expr(self.expr(code, position, scope, pointer)?)))
            }
            Some(value @ Value::Object(_)) => {
                Ok(Some(self.template(value, position, scope, pointer)?))
            }
            Some(other) => Err(Invalid::new(
                pointer,
                format!(
                    "`{field}` must be a runtime expression (a string) or a map whose `${{ … }}` values are evaluated; found {}",
                    describe(other)
                ),
            )),
        }
    }

    /// `timeout`: `{ after: duration }` or the name of one in `use.timeouts`.
    fn timeout(
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
    fn duration(
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
    fn task_list(&self, value: &Value, pointer: &str, scope: &Scope) -> Result<TaskList, Invalid> {
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

    /// The body of a `set` task: a map (its `${ … }` values evaluated) or one expression.
    fn set(&self, value: &Value, pointer: &str, scope: &Scope) -> Result<Template, Invalid> {
        match value {
            Value::Object(fields) if fields.is_empty() => Err(Invalid::new(
                pointer,
                "`set` is empty; give it at least one property",
            )),
            Value::Object(_) => self.template(value, Position::TaskDefinition, scope, pointer),
            Value::String(_) if self.loose => {
                self.template(value, Position::TaskDefinition, scope, pointer)
            }
            Value::String(text) => match super::expr::strip_expression(text) {
                Some(_) => Ok(Template::Expr(self.expr(text, Position::TaskDefinition, scope, pointer)?)),
                None => Err(Invalid::new(
                    pointer,
                    format!(
                        "`set` as a string must be a runtime expression `${{ … }}`; found `{}` — to set literal data, use a map",
                        super::value::truncate(text, 60)
                    ),
                )),
            },
            other => Err(Invalid::new(
                pointer,
                format!(
                    "`set` must be a map of the data to set, or a runtime expression `${{ … }}`; found {}",
                    describe(other)
                ),
            )),
        }
    }

    /// `switch`: a list of `- name: { when, then }` cases, at most one without `when`.
    fn switch(
        &self,
        value: &Value,
        pointer: &str,
        siblings: &[&str],
        scope: &Scope,
    ) -> Result<Box<[Case]>, Invalid> {
        let Value::Array(items) = value else {
            return Err(Invalid::new(
                pointer,
                format!(
                    "`switch` must be a list of cases, each `- name: {{ when: <expression>, then: <flow directive> }}`; found {}",
                    describe(value)
                ),
            ));
        };
        if items.is_empty() {
            return Err(Invalid::new(
                pointer,
                "`switch` lists no cases; add at least one",
            ));
        }
        let mut cases = Vec::with_capacity(items.len());
        let mut default: Option<String> = None;
        for (index, item) in items.iter().enumerate() {
            let at = child(pointer, &index.to_string());
            let (name, case) = single_entry(item, &at, "`switch`", "the case's name")?;
            let at = child(&at, name);
            let fields = map(case, &at, &format!("case `{name}`"))?;
            check_fields(fields, &at, &format!("case `{name}`"), &["when", "then"])?;
            let then = match fields.get("then") {
                Some(value) => flow(Some(value), &child(&at, "then"), siblings)?,
                None => {
                    return Err(Invalid::new(
                        &child(&at, "then"),
                        format!(
                        "case `{name}` needs `then`: the flow directive to follow when it matches"
                    ),
                    ))
                }
            };
            let when = match fields.get("when") {
                Some(value) => Some(self.expr_field(
                    value,
                    Position::TaskDefinition,
                    scope,
                    &child(&at, "when"),
                    "`when`",
                )?),
                None => {
                    if let Some(first) = &default {
                        return Err(Invalid::new(
                            &at,
                            format!("case `{name}` has no `when`, like {first}; a switch has at most one default case — give one of them a `when`"),
                        ));
                    }
                    default = Some(at.clone());
                    None
                }
            };
            cases.push(Case { when, then });
        }
        Ok(cases.into_boxed_slice())
    }

    /// `raise`: `{ error: <error> | <name of a use.errors entry> }`.
    fn raise(
        &self,
        value: &Value,
        pointer: &str,
        scope: &Scope,
    ) -> Result<Arc<super::model::ErrorSpec>, Invalid> {
        let fields = map(value, pointer, "`raise`")?;
        check_fields(fields, pointer, "`raise`", &["error"])?;
        let at = child(pointer, "error");
        match required(fields, pointer, "error")? {
            Value::String(name) => {
                let (error, uses_task) = self.components.errors.get(name).ok_or_else(|| {
                    Invalid::new(
                        &at,
                        format!(
                            "there is no error named `{name}` in `use.errors` ({})",
                            components::names(&self.components.errors)
                        ),
                    )
                })?;
                self.note(*uses_task);
                Ok(error.clone())
            }
            definition => Ok(Arc::new(components::error(self, definition, &at, scope)?)),
        }
    }

    /// `try` and `catch`.
    fn try_(
        &self,
        fields: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<Try, Invalid> {
        let tasks = self.task_list(
            required(fields, pointer, "try")?,
            &child(pointer, "try"),
            scope,
        )?;
        let at = child(pointer, "catch");
        let catch = map(required(fields, pointer, "catch")?, &at, "`catch`")?;
        check_fields(
            catch,
            &at,
            "`catch`",
            &["errors", "as", "when", "exceptWhen", "retry", "do"],
        )?;
        let name = match catch.get("as") {
            Some(value) => variable_name(value, &child(&at, "as"))?,
            None => "error",
        };
        let inner = scope.with(&[name]);
        let filter = match catch.get("errors") {
            Some(errors) => {
                let errors_at = child(&at, "errors");
                let errors = map(errors, &errors_at, "`errors`")?;
                check_fields(errors, &errors_at, "`errors`", &["with"])?;
                match errors.get("with") {
                    Some(with) => error_filter(with, &child(&errors_at, "with"))?,
                    None => ErrorFilter::default(),
                }
            }
            None => ErrorFilter::default(),
        };
        let condition = |field: &str| -> Result<Option<Expr>, Invalid> {
            catch
                .get(field)
                .map(|value| {
                    self.expr_field(
                        value,
                        Position::TaskDefinition,
                        &inner,
                        &child(&at, field),
                        &format!("`{field}`"),
                    )
                })
                .transpose()
        };
        let when = condition("when")?;
        let except_when = condition("exceptWhen")?;
        let retry = match catch.get("retry") {
            None => None,
            Some(Value::String(name)) => {
                let (policy, uses_task) = self.components.retries.get(name).ok_or_else(|| {
                    Invalid::new(
                        &child(&at, "retry"),
                        format!(
                            "there is no retry policy named `{name}` in `use.retries` ({})",
                            components::names(&self.components.retries)
                        ),
                    )
                })?;
                self.note(*uses_task);
                Some(policy.clone())
            }
            Some(policy) => Some(Arc::new(components::retry(
                self,
                policy,
                &child(&at, "retry"),
                &inner,
                false,
            )?)),
        };
        let handler = catch
            .get("do")
            .map(|tasks| self.task_list(tasks, &child(&at, "do"), &inner))
            .transpose()?;
        Ok(Try {
            tasks,
            filter,
            when,
            except_when,
            retry,
            handler,
        })
    }

    /// `for` (`each`, `in`, `at`), `while` and `do`.
    fn for_(
        &self,
        fields: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<For, Invalid> {
        let at = child(pointer, "for");
        let spec = map(required(fields, pointer, "for")?, &at, "`for`")?;
        check_fields(spec, &at, "`for`", &["each", "in", "at"])?;
        let each = match spec.get("each") {
            Some(value) => variable_name(value, &child(&at, "each"))?,
            None => "item",
        };
        let index = match spec.get("at") {
            Some(value) => variable_name(value, &child(&at, "at"))?,
            None => "index",
        };
        if each == index {
            return Err(Invalid::new(
                &child(&at, "at"),
                format!("`each` and `at` both name `${each}`; give the index another name"),
            ));
        }
        let collection = self.expr_field(
            required(spec, &at, "in")?,
            Position::TaskDefinition,
            scope,
            &child(&at, "in"),
            "`in`",
        )?;
        let inner = scope.with(&[each, index]);
        let while_ = fields
            .get("while")
            .map(|value| {
                self.expr_field(
                    value,
                    Position::TaskDefinition,
                    &inner,
                    &child(pointer, "while"),
                    "`while`",
                )
            })
            .transpose()?;
        let tasks = match fields.get("do") {
            Some(tasks) => self.task_list(tasks, &child(pointer, "do"), &inner)?,
            None => {
                return Err(Invalid::new(
                    &child(pointer, "do"),
                    "a `for` task needs `do`: the tasks to run for each item",
                ))
            }
        };
        Ok(For {
            collection,
            while_,
            tasks,
            scope_len: inner.len(),
        })
    }

    /// `fork`: `branches` (a task list whose tasks run concurrently) and `compete`.
    fn fork(&self, value: &Value, pointer: &str, scope: &Scope) -> Result<Fork, Invalid> {
        let fields = map(value, pointer, "`fork`")?;
        check_fields(fields, pointer, "`fork`", &["branches", "compete"])?;
        let compete = match fields.get("compete") {
            None => false,
            Some(Value::Bool(compete)) => *compete,
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "compete"),
                    format!("`compete` must be true or false; found {}", describe(other)),
                ))
            }
        };
        let at = child(pointer, "branches");
        let branches = self.task_list(required(fields, pointer, "branches")?, &at, scope)?;
        for (index, task) in branches.tasks.iter().enumerate() {
            if let Flow::Goto(_) = task.then {
                return Err(Invalid::new(
                    &format!("{}/then", task.reference),
                    format!(
                        "branch {index} of the fork names another branch in `then`; branches run concurrently, so `then` can only be `continue`, `exit` or `end`"
                    ),
                ));
            }
        }
        Ok(Fork { branches, compete })
    }
}

/// The one `name: value` entry of a list item (`do`, `switch`, `use.extensions`).
fn single_entry<'v>(
    item: &'v Value,
    at: &str,
    list: &str,
    key: &str,
) -> Result<(&'v str, &'v Value), Invalid> {
    match item {
        Value::Object(entry) if entry.len() == 1 => match entry.iter().next() {
            Some((name, value)) => Ok((name.as_str(), value)),
            None => Err(Invalid::new(
                at,
                format!("the entry is empty; give it {key}"),
            )),
        },
        Value::Object(entry) if entry.is_empty() => Err(Invalid::new(
            at,
            format!("the entry is empty; give it {key}"),
        )),
        Value::Object(entry) => {
            let keys: Vec<&str> = entry.keys().map(String::as_str).collect();
            Err(Invalid::new(
                at,
                format!(
                    "each entry of {list} must have exactly one key, {key}; found {} keys ({}) — is the body indented under its name?",
                    keys.len(),
                    keys.join(", ")
                ),
            ))
        }
        other => Err(Invalid::new(
            at,
            format!(
                "each entry of {list} must be a map `name: {{ {} }}`; found {}",
                if list == "`do`" { "task" } else { "…" },
                describe(other)
            ),
        )),
    }
}

/// A variable name declared by the document (`for.each`, `for.at`, `catch.as`).
fn variable_name<'v>(value: &'v Value, pointer: &str) -> Result<&'v str, Invalid> {
    let Value::String(name) = value else {
        return Err(Invalid::new(
            pointer,
            format!(
                "a variable name must be a string; found {}",
                describe(value)
            ),
        ));
    };
    let name = name.strip_prefix('$').unwrap_or(name);
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(Invalid::new(
            pointer,
            format!("`{name}` is not a valid variable name: use letters, digits and `_`, starting with a letter or `_`"),
        ));
    }
    if Arg::ALL.iter().any(|arg| &arg.var()[1..] == name) {
        return Err(Invalid::new(
            pointer,
            format!("`${name}` is a runtime argument; choose another variable name"),
        ));
    }
    Ok(name)
}

/// `catch.errors.with`: `type`, `status`, `instance`, `title`, `detail` (or `details`).
fn error_filter(value: &Value, pointer: &str) -> Result<ErrorFilter, Invalid> {
    let fields = map(value, pointer, "the error filter")?;
    check_fields(
        fields,
        pointer,
        "the error filter",
        &["type", "status", "instance", "title", "detail", "details"],
    )?;
    let text = |field: &str| -> Result<Option<String>, Invalid> {
        match fields.get(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(Invalid::new(
                &child(pointer, field),
                format!("`{field}` must be a string; found {}", describe(other)),
            )),
        }
    };
    let status = match fields.get("status") {
        None => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| {
                    Invalid::new(
                        &child(pointer, "status"),
                        "`status` must be an integer status code",
                    )
                })?,
        ),
    };
    Ok(ErrorFilter {
        type_: text("type")?,
        status,
        instance: text("instance")?,
        title: text("title")?,
        detail: match text("detail")? {
            Some(detail) => Some(detail),
            None => text("details")?,
        },
    })
}

/// `evaluate`: only jq; whether the mode is `loose`.
fn evaluate_mode(value: &Value) -> Result<bool, Invalid> {
    let evaluate = map(value, "/evaluate", "`evaluate`")?;
    check_fields(evaluate, "/evaluate", "`evaluate`", &["language", "mode"])?;
    if let Some(language) = evaluate.get("language") {
        if language.as_str() != Some("jq") {
            return Err(Invalid::new(
                "/evaluate/language",
                format!(
                    "the expression language must be `jq` (found {}); it is the only one this runtime supports",
                    describe(language)
                ),
            ));
        }
    }
    match evaluate.get("mode").map(|mode| (mode, mode.as_str())) {
        None | Some((_, Some("strict"))) => Ok(false),
        Some((_, Some("loose"))) => Ok(true),
        Some((mode, _)) => Err(Invalid::new(
            "/evaluate/mode",
            format!(
                "the evaluation mode must be `strict` or `loose`, found {}",
                describe(mode)
            ),
        )),
    }
}

fn duration_uses_task(duration: &DurationSpec) -> bool {
    match duration {
        DurationSpec::Fixed(_) => false,
        DurationSpec::Expr(expr) => expr.uses(Arg::Task),
    }
}

/// `document`: dsl 1.0.x, namespace, name, semantic version, optional descriptive fields.
fn document(value: &Value) -> Result<(WorkflowId, Version), Invalid> {
    let doc = map(value, "/document", "`document`")?;
    check_fields(
        doc,
        "/document",
        "`document`",
        &[
            "dsl",
            "namespace",
            "name",
            "version",
            "title",
            "summary",
            "tags",
            "metadata",
        ],
    )?;
    let dsl = required_str(doc, "/document", "dsl", "'1.0.3'")?;
    match Version::parse(dsl) {
        Ok(v) if v.major() == 1 && v.minor() == 0 => {}
        Ok(_) => {
            return Err(Invalid::new(
                "/document/dsl",
                format!("DSL version `{dsl}` is not supported: this runtime runs Serverless Workflow DSL 1.0.x documents"),
            ))
        }
        Err(reason) => {
            return Err(Invalid::new(
                "/document/dsl",
                format!("`{dsl}` is not a DSL version ({reason}); write e.g. '1.0.3'"),
            ))
        }
    }
    let namespace = required_str(doc, "/document", "namespace", "'mozaiks'")?;
    check_name(namespace, "/document/namespace", "namespace")?;
    let name = required_str(doc, "/document", "name", "'hello'")?;
    check_name(name, "/document/name", "name")?;
    let version_text = required_str(doc, "/document", "version", "'1.0.0'")?;
    let version = Version::parse(version_text).map_err(|reason| {
        Invalid::new(
            "/document/version",
            format!("`{version_text}` is not a semantic version ({reason}); write MAJOR.MINOR.PATCH, e.g. '1.0.0'"),
        )
    })?;
    for field in ["title", "summary"] {
        if let Some(value) = doc.get(field) {
            if !value.is_string() {
                return Err(Invalid::new(
                    &child("/document", field),
                    format!("`{field}` must be a string; found {}", describe(value)),
                ));
            }
        }
    }
    if let Some(tags) = doc.get("tags") {
        for (key, value) in map(tags, "/document/tags", "`tags`")? {
            if !value.is_string() {
                return Err(Invalid::new(
                    &child("/document/tags", key),
                    format!(
                        "tag values must be strings; found {} (quote it)",
                        describe(value)
                    ),
                ));
            }
        }
    }
    if let Some(metadata) = doc.get("metadata") {
        map(metadata, "/document/metadata", "`metadata`")?;
    }
    let id = WorkflowId {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        version: version_text.to_owned(),
    };
    Ok((id, version))
}

/// Whether `text` is a DSL name or namespace: 1–63 ASCII letters, digits and `-`, starting and
/// ending alphanumeric.
pub(crate) fn is_dsl_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Names and namespaces ([`is_dsl_name`]).
fn check_name(text: &str, pointer: &str, what: &str) -> Result<(), Invalid> {
    if is_dsl_name(text) {
        Ok(())
    } else {
        Err(Invalid::new(
            pointer,
            format!("`{text}` is not a valid {what}: use 1 to 63 ASCII letters, digits and `-`, starting and ending with a letter or digit"),
        ))
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
fn flow(value: Option<&Value>, pointer: &str, siblings: &[&str]) -> Result<Flow, Invalid> {
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

/// `value` as a map, or an error naming `what` it should be.
pub(crate) fn map<'v>(
    value: &'v Value,
    pointer: &str,
    what: &str,
) -> Result<&'v Map<String, Value>, Invalid> {
    value.as_object().ok_or_else(|| {
        Invalid::new(
            pointer,
            format!("{what} must be a map; found {}", describe(value)),
        )
    })
}

/// A required field of `fields` (at `pointer`).
pub(crate) fn required<'v>(
    fields: &'v Map<String, Value>,
    pointer: &str,
    field: &str,
) -> Result<&'v Value, Invalid> {
    fields.get(field).ok_or_else(|| {
        let place = if pointer.is_empty() {
            "the workflow"
        } else {
            pointer
        };
        Invalid::new(
            &child(pointer, field),
            format!("`{field}` is required in {place} but missing"),
        )
    })
}

/// A required string field; the error shows an `example` (numbers must be quoted in YAML).
pub(crate) fn required_str<'v>(
    fields: &'v Map<String, Value>,
    pointer: &str,
    field: &str,
    example: &str,
) -> Result<&'v str, Invalid> {
    match required(fields, pointer, field)? {
        Value::String(text) => Ok(text),
        other => Err(Invalid::new(
            &child(pointer, field),
            format!(
                "`{field}` must be a string; found {} (in YAML, quote it: {field}: {example})",
                describe(other)
            ),
        )),
    }
}

/// Errors on the first field not in `allowed`, suggesting the closest allowed one.
pub(crate) fn check_fields(
    fields: &Map<String, Value>,
    pointer: &str,
    what: &str,
    allowed: &[&str],
) -> Result<(), Invalid> {
    match fields.keys().find(|key| !allowed.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => {
            let hint = closest(key, allowed)
                .map(|near| format!("did you mean `{near}`? "))
                .unwrap_or_default();
            Err(Invalid::new(
                &child(pointer, key),
                format!(
                    "unknown field `{key}` in {what}; {hint}allowed: {}",
                    allowed.join(", ")
                ),
            ))
        }
    }
}

/// The allowed word within edit distance 2 of `word`, if any (for "did you mean").
fn closest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(current).min(row[j])
            };
            previous = current;
        }
    }
    row[b.len()]
}

/// How a value is named in messages.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}
