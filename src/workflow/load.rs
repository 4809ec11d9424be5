//! Loading: a YAML or JSON document becomes a validated, compiled [`Workflow`].
//!
//! The document is walked as JSON (not deserialized into structs) so that every error can
//! name the exact place, as a JSON pointer, and say what to fix. Unknown fields are errors:
//! strictness catches typos. Task kinds this engine does not run yet, or can never run
//! (they need a stateful host or a container runtime), are rejected here, never at run time.

use super::error::LoadError;
use super::expr::{Arg, ExprCompiler, Position, Template};
use super::model::{Flow, Task, TaskKind, TaskList, Workflow, WorkflowId};
use super::value::{from_json_ref, object, string};
use super::version::Version;
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// The fields every task may have, besides its kind.
const TASK_FIELDS: [&str; 7] = [
    "if", "input", "output", "export", "timeout", "then", "metadata",
];
/// The task kinds of the DSL. `for` comes before `do`: a `for` task has a `do` too.
const TASK_KINDS: [&str; 12] = [
    "call", "emit", "for", "fork", "listen", "raise", "run", "set", "switch", "try", "wait", "do",
];
/// What this engine runs, for error messages.
const SUPPORTED: &str = "this runtime currently runs `do` and `set` tasks";
/// Why some parts of the DSL can never run here.
const STATELESS: &str = "this runtime runs each execution statelessly, within one invocation";

/// A problem at a place in a document (the file is added by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pointer: String,
    message: String,
}

impl Invalid {
    /// A problem at `pointer`.
    pub(crate) fn new(pointer: &str, message: impl Into<String>) -> Self {
        Invalid {
            pointer: pointer.to_owned(),
            message: message.into(),
        }
    }

    fn in_file(self, file: &Path) -> LoadError {
        LoadError::new(file, self.pointer, self.message)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// The JSON pointer of `token` under `pointer` (escaping `~` and `/` per RFC 6901).
pub(crate) fn child(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

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
}

impl Workflow {
    /// Parses, validates and compiles one workflow document. `path` names it in errors and
    /// picks the format: `.json` is JSON, anything else YAML.
    pub fn parse(path: &Path, text: &str) -> Result<Workflow, LoadError> {
        let format = Format::of(path).unwrap_or(Format::Yaml);
        parse_text(path, text, format, &ExprCompiler::new())
    }
}

/// Reads and compiles the workflow file at `path`.
pub(crate) fn load_file(
    path: &Path,
    format: Format,
    compiler: &ExprCompiler,
) -> Result<Workflow, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::new(path, "", format!("cannot read the file: {e}")))?;
    parse_text(path, &text, format, compiler)
}

/// Parses and compiles a workflow document.
pub(crate) fn parse_text(
    path: &Path,
    text: &str,
    format: Format,
    compiler: &ExprCompiler,
) -> Result<Workflow, LoadError> {
    let doc: Value = match format {
        Format::Yaml => serde_yaml_ng::from_str(text)
            .map_err(|e| LoadError::new(path, "", format!("not valid YAML: {e}")))?,
        Format::Json => serde_json::from_str(text)
            .map_err(|e| LoadError::new(path, "", format!("not valid JSON: {e}")))?,
    };
    Loader { compiler }
        .workflow(&doc, path)
        .map_err(|invalid| invalid.in_file(path))
}

/// Compiles one document.
struct Loader<'c> {
    compiler: &'c ExprCompiler,
}

impl Loader<'_> {
    fn workflow(&self, doc: &Value, path: &Path) -> Result<Workflow, Invalid> {
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
        if root.contains_key("use") {
            return Err(not_yet("/use", "reusable components (`use`) are"));
        }
        if root.contains_key("timeout") {
            return Err(Invalid::new(
                "/timeout",
                "workflow timeouts are not supported yet; the invocation's deadline bounds \
                 every run — remove `timeout`",
            ));
        }
        if let Some(evaluate) = root.get("evaluate") {
            self.evaluate(evaluate)?;
        }
        let input_from = self.transform(
            root.get("input"),
            "/input",
            "from",
            Position::WorkflowInputFrom,
        )?;
        let output_as = self.transform(
            root.get("output"),
            "/output",
            "as",
            Position::WorkflowOutputAs,
        )?;
        let tasks = self.task_list(required(root, "", "do")?, "/do")?;
        Ok(Workflow {
            id,
            version,
            source: path.to_path_buf(),
            input_from,
            output_as,
            tasks,
            definition: from_json_ref(doc),
            runtime: object([
                ("name", string("mozaiks-runtime")),
                ("version", string(env!("CARGO_PKG_VERSION"))),
            ]),
            secrets: object([]),
        })
    }

    /// `evaluate`: only jq, only strict mode for now.
    fn evaluate(&self, value: &Value) -> Result<(), Invalid> {
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
            None | Some((_, Some("strict"))) => Ok(()),
            Some((_, Some("loose"))) => {
                Err(not_yet("/evaluate/mode", "the `loose` evaluation mode is"))
            }
            Some((mode, _)) => Err(Invalid::new(
                "/evaluate/mode",
                format!(
                    "the evaluation mode must be `strict` or `loose`, found {}",
                    describe(mode)
                ),
            )),
        }
    }

    /// `input` (`from`), `output` (`as`) or `export` (`as`): an optional transformation.
    fn transform(
        &self,
        value: Option<&Value>,
        pointer: &str,
        field: &str,
        position: Position,
    ) -> Result<Option<Template>, Invalid> {
        let Some(value) = value else {
            return Ok(None);
        };
        let name = pointer.rsplit('/').next().unwrap_or(pointer);
        let what = format!("`{name}`");
        let fields = map(value, pointer, &what)?;
        check_fields(fields, pointer, &what, &["schema", field])?;
        if fields.contains_key("schema") {
            return Err(not_yet(&child(pointer, "schema"), "schema validation is"));
        }
        let pointer = child(pointer, field);
        match fields.get(field) {
            None => Ok(None),
            Some(Value::String(code)) => Ok(Some(Template::Expr(
                self.compiler.field(code, position, &pointer)?,
            ))),
            Some(value @ Value::Object(_)) => {
                Ok(Some(self.compiler.template(value, position, &pointer)?))
            }
            Some(other) => Err(Invalid::new(
                &pointer,
                format!(
                    "`{field}` must be a runtime expression (a string) or a map whose `${{ … }}` values are evaluated; found {}",
                    describe(other)
                ),
            )),
        }
    }

    /// A `do` list: `- name: { task }` entries, names unique, flow targets resolved.
    fn task_list(&self, value: &Value, pointer: &str) -> Result<TaskList, Invalid> {
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
            let single = match item {
                Value::Object(entry) if entry.len() == 1 => entry.iter().next(),
                Value::Object(entry) => {
                    let keys: Vec<&str> = entry.keys().map(String::as_str).collect();
                    return Err(Invalid::new(
                        &at,
                        format!(
                            "each entry of `do` must have exactly one key, the task's name; found {} keys ({}) — is the task's body indented under its name?",
                            keys.len(),
                            keys.join(", ")
                        ),
                    ));
                }
                other => {
                    return Err(Invalid::new(
                        &at,
                        format!(
                            "each entry of `do` must be a map `name: {{ task }}`; found {}",
                            describe(other)
                        ),
                    ))
                }
            };
            let Some((name, task)) = single else {
                return Err(Invalid::new(
                    &at,
                    "the entry is empty; give the task a name",
                ));
            };
            if name.is_empty() {
                return Err(Invalid::new(&at, "a task name must not be empty"));
            }
            if matches!(name.as_str(), "continue" | "exit" | "end") {
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
            .map(|(name, task, at)| self.task(name, task, at, &names))
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(TaskList { tasks })
    }

    /// One task: its kind, the common fields, and its body.
    fn task(
        &self,
        name: &str,
        value: &Value,
        pointer: &str,
        siblings: &[&str],
    ) -> Result<Task, Invalid> {
        let fields = map(value, pointer, &format!("task `{name}`"))?;
        let kind = kind(name, fields, pointer)?;
        let allowed: Vec<&str> = TASK_FIELDS.iter().copied().chain([kind]).collect();
        check_fields(
            fields,
            pointer,
            &format!("`{kind}` task `{name}`"),
            &allowed,
        )?;
        if fields.contains_key("timeout") {
            return Err(Invalid::new(
                &child(pointer, "timeout"),
                "task timeouts are not supported yet; the invocation's deadline bounds \
                 every run — remove `timeout`",
            ));
        }
        if let Some(metadata) = fields.get("metadata") {
            map(metadata, &child(pointer, "metadata"), "`metadata`")?;
        }
        let condition = match fields.get("if") {
            None => None,
            Some(Value::String(code)) => {
                Some(self.compiler.field(code, Position::TaskIf, &child(pointer, "if"))?)
            }
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "if"),
                    format!(
                        "`if` must be a runtime expression (a string such as `${{ .ready }}`); found {}",
                        describe(other)
                    ),
                ))
            }
        };
        let input_from = self.transform(
            fields.get("input"),
            &child(pointer, "input"),
            "from",
            Position::TaskInputFrom,
        )?;
        let output_as = self.transform(
            fields.get("output"),
            &child(pointer, "output"),
            "as",
            Position::TaskOutputAs,
        )?;
        let export_as = self.transform(
            fields.get("export"),
            &child(pointer, "export"),
            "as",
            Position::TaskExportAs,
        )?;
        let then = flow(fields.get("then"), &child(pointer, "then"), siblings)?;
        let body_pointer = child(pointer, kind);
        let body = fields.get(kind).unwrap_or(&Value::Null);
        let kind = match kind {
            "set" => TaskKind::Set(self.set(body, &body_pointer)?),
            _ => TaskKind::Do(self.task_list(body, &body_pointer)?),
        };
        let mut task = Task {
            reference: pointer.into(),
            descriptor: jaq_json::Val::Null,
            uses_descriptor: false,
            condition,
            input_from,
            output_as,
            export_as,
            then,
            kind,
        };
        if task.uses(Arg::Task) {
            task.uses_descriptor = true;
            task.descriptor = object([
                ("name", string(name)),
                ("reference", string(pointer)),
                ("definition", from_json_ref(value)),
            ]);
        }
        Ok(task)
    }

    /// The body of a `set` task: a map (its `${ … }` values evaluated) or one expression.
    fn set(&self, value: &Value, pointer: &str) -> Result<Template, Invalid> {
        match value {
            Value::Object(fields) if fields.is_empty() => Err(Invalid::new(
                pointer,
                "`set` is empty; give it at least one property",
            )),
            Value::Object(_) => self
                .compiler
                .template(value, Position::TaskDefinition, pointer),
            Value::String(text) => match super::expr::strip_expression(text) {
                Some(code) => Ok(Template::Expr(
                    self.compiler
                        .compile(code, Position::TaskDefinition, pointer)
                        .map_err(|message| Invalid::new(pointer, message))?,
                )),
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

/// Names and namespaces: 1–63 ASCII letters, digits and `-`, starting and ending alphanumeric.
fn check_name(text: &str, pointer: &str, what: &str) -> Result<(), Invalid> {
    let bytes = text.as_bytes();
    let ok = (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            pointer,
            format!("`{text}` is not a valid {what}: use 1 to 63 ASCII letters, digits and `-`, starting and ending with a letter or digit"),
        ))
    }
}

/// Which kind of task this is; errors for the kinds this engine does not or cannot run.
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
                    "task `{name}` does not say what to do: give it one task kind ({}); {SUPPORTED}",
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
        "set" | "do" => Ok(kind),
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
                Some(process) => Err(not_yet(&at, &format!("task `{name}`: `run: {process}` is"))),
                None => Err(not_yet(&at, &format!("task `{name}`: `run` tasks are"))),
            }
        }
        "call" => match fields.get("call").and_then(Value::as_str) {
            Some(protocol @ ("grpc" | "asyncapi")) => never(
                &format!("`call: {protocol}`"),
                "a stateful host (long-lived channels, brokers and subscriptions)",
            ),
            Some(function) => Err(not_yet(
                &at,
                &format!("task `{name}`: `call: {function}` is"),
            )),
            None => Err(not_yet(&at, &format!("task `{name}`: `call` tasks are"))),
        },
        other => Err(not_yet(&at, &format!("task `{name}`: `{other}` tasks are"))),
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

/// "X is/are not supported yet" at `pointer`.
fn not_yet(pointer: &str, what: &str) -> Invalid {
    Invalid::new(pointer, format!("{what} not supported yet; {SUPPORTED}"))
}

/// `value` as a map, or an error naming `what` it should be.
fn map<'v>(value: &'v Value, pointer: &str, what: &str) -> Result<&'v Map<String, Value>, Invalid> {
    value.as_object().ok_or_else(|| {
        Invalid::new(
            pointer,
            format!("{what} must be a map; found {}", describe(value)),
        )
    })
}

/// A required field of `fields` (at `pointer`).
fn required<'v>(
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
fn required_str<'v>(
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
fn check_fields(
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
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "document: { dsl: '1.0.3', namespace: test, name: t, version: '1.0.0' }\n";

    /// Loads YAML and returns the error's pointer and message.
    fn error(yaml: &str) -> (String, String) {
        match Workflow::parse(Path::new("t.yaml"), yaml) {
            Ok(_) => panic!("expected a load error for:\n{yaml}"),
            Err(e) => (e.pointer().to_owned(), e.message().to_owned()),
        }
    }

    fn error_with_head(body: &str) -> (String, String) {
        error(&format!("{HEAD}{body}"))
    }

    fn assert_error(body: &str, pointer: &str, fragment: &str) {
        let (at, message) = error_with_head(body);
        assert_eq!(at, pointer, "pointer for:\n{body}\nmessage: {message}");
        assert!(
            message.contains(fragment),
            "message for:\n{body}\nshould contain {fragment:?}, is: {message}"
        );
    }

    #[test]
    fn loads_a_valid_workflow() {
        let yaml = format!(
            "{HEAD}input: {{ from: '${{ . }}' }}\noutput: {{ as: .x }}\nevaluate: {{ language: jq, mode: strict }}\n\
             do:\n  - a:\n      if: .go\n      set: {{ x: '${{ .y }}', lit: 1 }}\n      then: b\n      metadata: {{ owner: me }}\n\
             \x20 - b:\n      do:\n        - c: {{ set: '${{ . }}', export: {{ as: '$context + {{c: 1}}' }} }}\n"
        );
        let workflow = Workflow::parse(Path::new("ok.yaml"), &yaml);
        let workflow = match workflow {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(workflow.id().name, "t");
        assert_eq!(workflow.id().namespace, "test");
        assert_eq!(workflow.id().version, "1.0.0");
        assert_eq!(workflow.tasks.tasks.len(), 2);
        assert_eq!(&*workflow.tasks.tasks[0].reference, "/do/0/a");
        assert_eq!(workflow.tasks.tasks[0].then, Flow::Goto(1));
    }

    #[test]
    fn loads_json_documents() {
        let json = r#"{"document": {"dsl": "1.0.0", "namespace": "n", "name": "j", "version": "2.0.0"},
                       "do": [{"s": {"set": {"a": "${ 1 }"}}}]}"#;
        let workflow = Workflow::parse(Path::new("j.json"), json);
        assert_eq!(
            workflow.map(|w| w.id().version.clone()).ok().as_deref(),
            Some("2.0.0")
        );
        let err = Workflow::parse(Path::new("j.json"), "document: {}").err();
        assert!(err
            .map(|e| e.message().starts_with("not valid JSON"))
            .unwrap_or(false));
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = Workflow::parse(Path::new("workflows/bad.yaml"), "do: [\n").err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            text.starts_with("workflows/bad.yaml: not valid YAML"),
            "{text}"
        );
        let (at, message) = error("- just\n- a list\n");
        assert_eq!(at, "");
        assert!(
            message.contains("a workflow document must be a map"),
            "{message}"
        );
    }

    #[test]
    fn document_errors_point_at_the_field() {
        let do_ = "do: [ { a: { set: { x: 1 } } } ]\n";
        let cases = [
            ("document: { namespace: n, name: a, version: '1.0.0' }", "/document/dsl", "`dsl` is required"),
            ("document: { dsl: '0.9.0', namespace: n, name: a, version: '1.0.0' }", "/document/dsl", "DSL 1.0.x"),
            ("document: { dsl: '1.0', namespace: n, name: a, version: '1.0.0' }", "/document/dsl", "not a DSL version"),
            ("document: { dsl: '1.0.3', namespace: 'a b', name: a, version: '1.0.0' }", "/document/namespace", "not a valid namespace"),
            ("document: { dsl: '1.0.3', namespace: n, name: '-a', version: '1.0.0' }", "/document/name", "not a valid name"),
            ("document: { dsl: '1.0.3', namespace: n, name: a, version: 1.0 }", "/document/version", "quote it"),
            ("document: { dsl: '1.0.3', namespace: n, name: a, version: '1.0' }", "/document/version", "not a semantic version"),
            ("document: { dsl: '1.0.3', namespace: n, name: a, version: '1.0.0', titel: x }", "/document/titel", "did you mean `title`?"),
            ("document: { dsl: '1.0.3', namespace: n, name: a, version: '1.0.0', tags: { a: 1 } }", "/document/tags/a", "tag values must be strings"),
        ];
        for (document, pointer, fragment) in cases {
            let (at, message) = error(&format!("{document}\n{do_}"));
            assert_eq!(at, pointer, "{document}: {message}");
            assert!(message.contains(fragment), "{document}: {message}");
        }
        let (at, message) = error("do: []\n");
        assert_eq!(
            (at.as_str(), message.contains("`document` is required")),
            ("/document", true),
            "{message}"
        );
    }

    #[test]
    fn structural_errors_point_at_the_place() {
        assert_error("", "/do", "`do` is required");
        assert_error("do: []", "/do", "lists no tasks");
        assert_error("do: { a: { set: { x: 1 } } }", "/do", "must be a list");
        assert_error(
            "do: [ { a: { set: { x: 1 } }, b: { set: { x: 1 } } } ]",
            "/do/0",
            "exactly one key",
        );
        assert_error("do: [ 'a' ]", "/do/0", "must be a map `name: { task }`");
        assert_error(
            "do: [ { a: { set: { x: 1 } } }, { a: { set: { x: 1 } } } ]",
            "/do/1/a",
            "already used at /do/0/a",
        );
        assert_error(
            "do: [ { end: { set: { x: 1 } } } ]",
            "/do/0/end",
            "flow directive",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 }, iff: .x } } ]",
            "/do/0/a/iff",
            "did you mean `if`?",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 }, if: true } } ]",
            "/do/0/a/if",
            "must be a runtime expression",
        );
        assert_error(
            "do: [ { a: { set: { } } } ]",
            "/do/0/a/set",
            "`set` is empty",
        );
        assert_error(
            "do: [ { a: { set: 'hello' } } ]",
            "/do/0/a/set",
            "must be a runtime expression",
        );
        assert_error("do: [ { a: { set: 3 } } ]", "/do/0/a/set", "must be a map");
        assert_error("do: [ { a: { } } ]", "/do/0/a", "does not say what to do");
        assert_error(
            "do: [ { a: { set: { x: 1 }, do: [] } } ]",
            "/do/0/a",
            "several task kinds (set, do)",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 }, input: { from: 3 } } } ]",
            "/do/0/a/input/from",
            "must be a runtime expression",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 }, output: { as: .x, schema: {} } } } ]",
            "/do/0/a/output/schema",
            "not supported yet",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 }, export: { from: .x } } } ]",
            "/do/0/a/export/from",
            "unknown field `from`",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 }, timeout: { after: PT1S } } } ]",
            "/do/0/a/timeout",
            "not supported yet",
        );
        assert_error("do: [ { a: { do: [] } } ]", "/do/0/a/do", "lists no tasks");
        assert_error(
            "do: [ { a: { set: { x: 1 } } } ]\nextra: 1",
            "/extra",
            "unknown field `extra` in the workflow",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 } } } ]\nevaluate: { mode: loose }",
            "/evaluate/mode",
            "not supported yet",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 } } } ]\nevaluate: { language: js }",
            "/evaluate/language",
            "must be `jq`",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 } } } ]\nuse: { secrets: [ s ] }",
            "/use",
            "not supported yet",
        );
    }

    #[test]
    fn bad_then_targets_are_load_errors() {
        assert_error(
            "do: [ { a: { set: { x: 1 }, then: nowhere } }, { b: { set: { x: 1 } } } ]",
            "/do/0/a/then",
            "no task named `nowhere` in this `do` list (it has: a, b)",
        );
        // A flow directive cannot leave its own list.
        assert_error(
            "do: [ { a: { do: [ { inner: { set: { x: 1 }, then: b } } ] } }, { b: { set: { x: 1 } } } ]",
            "/do/0/a/do/0/inner/then",
            "no task named `b`",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 }, then: 1 } } ]",
            "/do/0/a/then",
            "must be `continue`",
        );
    }

    #[test]
    fn expression_errors_carry_the_expression_pointer() {
        assert_error(
            "do: [ { greet: { set: { x: '${ $foo }' } } } ]",
            "/do/0/greet/set/x",
            "jq: undefined variable `$foo`",
        );
        assert_error(
            "do: [ { greet: { set: { x: { y: [ 1, '${ .a | }' ] } } } } ]",
            "/do/0/greet/set/x/y/1",
            "jq: expected",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 }, input: { from: '$output' } } } ]",
            "/do/0/a/input/from",
            "`$output` is not available in a task's `input.from`",
        );
        assert_error(
            "do: [ { a: { set: { x: 1 }, if: '${ nofilter }' } } ]",
            "/do/0/a/if",
            "undefined filter `nofilter/0`",
        );
        assert_error(
            "input: { from: '$context' }\ndo: [ { a: { set: { x: 1 } } } ]",
            "/input/from",
            "not available in the workflow's `input.from`",
        );
        assert_error(
            "output: { as: { a: '${ $input }' } }\ndo: [ { a: { set: { x: 1 } } } ]",
            "/output/as/a",
            "not available in the workflow's `output.as`",
        );
        // Names with `/` or `~` are escaped in pointers.
        assert_error(
            "do: [ { 'a/b~c': { set: { 'k/1': '${ $nope }' } } } ]",
            "/do/0/a~1b~0c/set/k~11",
            "undefined variable",
        );
    }

    #[test]
    fn unsupported_task_kinds_say_not_yet() {
        let cases = [
            (
                "switch: [ { x: { then: end } } ]",
                "switch",
                "`switch` tasks are not supported yet",
            ),
            (
                "for: { in: .x }\n        do: [ { b: { set: { x: 1 } } } ]",
                "for",
                "`for` tasks are not supported yet",
            ),
            ("fork: { branches: [] }", "fork", "`fork` tasks"),
            ("try: []\n        catch: {}", "try", "`try` tasks"),
            (
                "raise: { error: { type: x, status: 400 } }",
                "raise",
                "`raise` tasks",
            ),
            (
                "emit: { event: { with: { source: s, type: t } } }",
                "emit",
                "`emit` tasks",
            ),
            ("wait: PT1S", "wait", "`wait` tasks"),
            (
                "call: http\n        with: { method: get, endpoint: 'http://x' }",
                "call",
                "`call: http` is not supported yet",
            ),
            (
                "run: { workflow: { namespace: a, name: b, version: '1.0.0' } }",
                "run",
                "`run: workflow` is not supported yet",
            ),
        ];
        for (body, kind, fragment) in cases {
            let yaml = format!("do:\n  - a:\n        {body}\n");
            let (at, message) = error_with_head(&yaml);
            assert_eq!(at, format!("/do/0/a/{kind}"), "{message}");
            assert!(message.contains(fragment), "{body}: {message}");
            assert!(message.contains("task `a`"), "{message}");
            assert!(message.contains("`do` and `set`"), "{message}");
        }
    }

    #[test]
    fn stateful_features_say_never() {
        let cases = [
            (
                "listen: { to: { any: [] } }",
                "/do/0/a/listen",
                "a stateful host",
            ),
            (
                "run: { container: { image: alpine } }",
                "/do/0/a/run",
                "a container runtime",
            ),
            (
                "run: { shell: { command: ls } }",
                "/do/0/a/run",
                "`run: shell`",
            ),
            (
                "run: { script: { language: js, code: '1' } }",
                "/do/0/a/run",
                "`run: script`",
            ),
            (
                "call: grpc\n        with: {}",
                "/do/0/a/call",
                "`call: grpc`",
            ),
            (
                "call: asyncapi\n        with: {}",
                "/do/0/a/call",
                "`call: asyncapi`",
            ),
        ];
        for (body, pointer, fragment) in cases {
            let (at, message) = error_with_head(&format!("do:\n  - a:\n        {body}\n"));
            assert_eq!(at, pointer, "{message}");
            assert!(message.contains(fragment), "{message}");
            assert!(message.contains("can never run here"), "{message}");
        }
        let (at, message) =
            error_with_head("schedule: { every: PT1M }\ndo: [ { a: { set: { x: 1 } } } ]");
        assert_eq!(at, "/schedule");
        assert!(message.contains("scheduler"), "{message}");
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(child("/do", "a/b~c"), "/do/a~1b~0c");
        assert_eq!(child("", "do"), "/do");
    }

    #[test]
    fn suggests_close_field_names() {
        assert_eq!(closest("exprot", &["export", "output"]), Some("export"));
        assert_eq!(closest("zzzzzz", &["export", "output"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
