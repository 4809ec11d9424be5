//! Loading: a YAML or JSON document becomes a validated, compiled [`Workflow`].
//!
//! The document is walked as JSON (not deserialized into structs) so that every error can
//! name the exact place, as a JSON pointer, and say what to fix. Unknown fields are errors:
//! strictness catches typos. What can never run here (it needs a stateful host or a container
//! runtime) is rejected here, never at run time.
//!
//! Rooms: this file (documents, `Format`, the loader and its expression compilation, the
//! field helpers), `flow` (task lists, common task fields, `then`, timeouts, the dispatch by
//! kind), `data` (`input`, `output`, `export`), `components` (`use`: secrets,
//! authentications, errors, retries, timeouts, functions), then one file per task kind:
//! `set`, `switch`, `raise`, `try_`, `for_`, `fork`, `calls` (`call`, `emit`, `run`).

mod calls;
mod components;
mod data;
mod flow;
mod for_;
mod fork;
mod raise;
mod set;
mod switch;
#[cfg(test)]
mod tests;
mod try_;

use super::error::LoadError;
use super::expr::{Arg, Expr, ExprCompiler, Position, Scope, Site, Template};
#[cfg(test)]
use super::model::Flow; // for the tests (`use super::*`)
use super::model::{SubflowLink, Workflow, WorkflowId};
use super::options::{EngineOptions, Services};
use super::value::{from_json_ref, object, string};
use super::version::Version;
use components::Components;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::sync::Arc;

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
            let document = super::mozaiksai::translate_with(path, options.tool_host.as_ref())?;
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
