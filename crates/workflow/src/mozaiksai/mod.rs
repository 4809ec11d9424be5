//! MozaiksAI workflow folders → one Serverless Workflow document with one `call: agents` task.
//!
//! A sub-directory of the workflows directory that holds `orchestrator.yaml` is a MozaiksAI
//! folder (YAML only, as MozaiksAI loads them). [`translate`] turns it into a DSL document (a
//! `serde_json::Value`) that then goes through the normal load path, so the engine validates
//! and compiles it like any bundled file (its errors name the folder and a JSON pointer into
//! the generated document). Errors of the translation name the MozaiksAI file and the JSON
//! pointer of the place in it. Unknown keys are errors (typos stop the load), except where
//! MozaiksAI files carry UI or Python-runtime settings listed below.
//!
//! | MozaiksAI | DSL (`call: agents`, see `crates/workflow/src/agents/`) |
//! |---|---|
//! | `orchestrator.yaml` `workflow_name` (absent: the folder's name, as MozaiksAI names it; letters, digits, `-` and `_`) | `document.name`; `document.namespace` is `namespace` or `mozaiks`, `document.version` is `version` or `1.0.0`; `description` → `document.summary` |
//! | `initial_agent`, `max_turns` | the same |
//! | `initial_message` | `initial_message: ${ .message // "<initial_message>" }` and `reply_message: ${ .message }`: the input's `message` is the user's message (first turn and every reply); without one the first turn uses the orchestrator's, and a resume faults (without `initial_message`: `initial_message: ${ .message }`) |
//! | `orchestration_pattern` | `DefaultPattern` (explicit handoffs) and `ag2_network` translate; `AutoPattern`, `RoundRobinPattern`, `RandomPattern` → `speaker_selection` `auto` (a model names the next speaker, with AG2's group manager prompt), `round_robin`, `random` (the user a candidate with `human_in_the_loop: true`), applied whenever an agent's own handoffs do not decide; with a `transition_graph.yaml` any value is a label, as in MozaiksAI; `ManualPattern` is rejected |
//! | `agents.yaml` `agents` (a list, or a mapping of name → agent, taken in name order), `name`, `prompt_sections` / `system_message` (empty `prompt_sections` defer to `system_message`), `max_consecutive_auto_reply`, `llm_config` (`model`, `temperature`, `max_tokens`, `api_type`) | `name`, `prompt_sections` / `instructions`, `max_consecutive_auto_reply`, `model` (`provider` from `api_type`, default `openai`) |
//! | `handoffs.yaml` `handoff_rules` | `handoffs`, in order: `after_work` → `{from, after_work}` (a repeated one: the last stands, as MozaiksAI keeps it); `condition` + `expression` → `{from, to, when}` (the condition in jq, `condition_scope: pre` → `scope: pre`, `post`/`after`/none → after the reply); `condition` + `string_llm` → `{from, to, description}` (the model decides); no `condition_type`: `expression` when the condition reads a variable (`${…}`) or is a YAML boolean, else `string_llm`; `true`/`false`/`null` in conditions are Python's `True`/`False`/`None` |
//! | `transition_graph.yaml` `transition_rules` (the current format) | `handoffs`: each speaker's `condition` rules in order (`context_equals` → `when: <variable> == <condition_value>`, `context_expression` → the expression in jq), then its first `after_turn` as `after_work`; no rule that holds ends the run (`terminate`), a rule to `user` (or `user_proxy`, any case) makes it wait; `TerminateTarget` needs `target_agent: terminate`; `tool_called` and model-decided conditions are rejected with the reason; both routing files in one folder are an error |
//! | rules with `source_agent: user` | apply right after the user replies: for every agent that hands the conversation to the user, an expression rule becomes `{from: <agent>, to, when: <last message is the user's> and <condition>, scope: pre}`, a `string_llm` rule `{from: <agent>, to, description}`, an `after_work` rule `{from: <agent>, to, when: <last message is the user's>, scope: pre}` |
//! | `context_variables.yaml` `definitions` | `context: ${ <defaults> + (.context // {}) }`: each variable's `source.default` (or `default`), under the caller's `.context`; on a resume, `reply_context` sets the defined variables the new input's `context` names, over the conversation's (undefined keys dropped, as MozaiksAI merges a resume's context). Sources the runtime does not read (`config` env vars, `data_reference`, `data_entity`, `computed`, `external`, `file`) take their default: the caller passes the real value in `.context` |
//! | `state` variables with `agent_text` (or `user_text`) `triggers` | in conditions, `${x}` is `true` once the trigger's agent (or the user) said a matching message (`equals` after trimming / `contains` / `regex`, case-insensitive, as MozaiksAI matches), else `.context.x`; and a `context_triggers` entry sets `x` to `true` in the conversation's context then (what the exposure, `$context` and the output show) |
//! | `ui_response` `triggers` (`tool`, `response_key`) | the UI tool's `context`: when the user answers, `x` takes the answer's `response_key` (the key itself, else a dotted path; no key: the whole answer; absent: unchanged), before the agent sees the answer |
//! | `context_variables.yaml` `agents` (`{ Agent: { variables: [..] } }` or a list of `{ agent, variables }`) | each listed agent's `context_variables`: its system message ends, after a blank line, with `NAME: value` for each (upper-cased name; `None`, `true`/`false`, strings as they are, other values JSON), rendered for every model call from the conversation's context; agents agents.yaml does not define are skipped and an undefined variable renders `None`, as MozaiksAI does |
//! | `structured_outputs.yaml` `models`, `registry` | each registered agent's `output_schema` (see [`outputs`]) |
//! | `tools.yaml` `tools` | each tool (`function`) binds to the DSL function of the same name in `functions.yaml` (`functions: { <name>: <DSL task> }`, copied to `use.functions`) and is added to its `agent`'s `tools`; its `description` becomes the function's `metadata.description` unless that is set |
//! | `tool_type: UI_Tool` / `UI_Surface` without a DSL function (`ui: { component, mode }`, `ui_contract: { payload_schema, actions_schema }`) | the agent's `ui_tools`: a `UI_Tool` call ends the run `waiting` with an `input_request`, and the resume's `ui_response` (checked against the chosen action's `payload_schema`) is the tool's result; a `UI_Surface` is shown (the output's `ui_surfaces`) without waiting. `auto_tool_call` (or the older `auto_invoke`; on by default for UI tools) is the model calling the tool, as here, unless the agent has a structured output (then MozaiksAI calls the tool itself with it: rejected) |
//!
//! Not translatable, so rejected naming the file and place: Python tools without a DSL
//! function, `lifecycle_tools`, `hooks.yaml` hooks, `middleware.yaml` prompt middleware (all
//! Python), `extended_orchestration/` and `_pack/` (task batches, child workflows) and
//! `a2a.yaml` (remote agents), tools invoked automatically with an agent's
//! structured output (`auto_tool_call`/`auto_invoke` on an agent with one; `auto_tool_mode: true`),
//! `transitions` of state variables (MozaiksAI's Python runtime drives them), handoff targets
//! other than agents, `user` and `terminate`, conditions
//! outside the mini-language of [`condition`], `runtime_extensions` (Python plug-ins), AG2's
//! built-in tools turned on (`sandbox_shell`, `web_search`, `web_fetch`, `duck_search`,
//! `image_generation`, `multimodal_inputs_enabled`). Accepted and not used:
//! `entry_point`, `triggers` (how a host starts the workflow: the control plane's here),
//! `inputs`/`outputs`/`metadata` (descriptive), agents' `human_input_mode` (MozaiksAI ignores
//! it too) and those built-in tools turned off; an agent's `description` is passed on, and
//! `prompt_sections_custom` is used when `prompt_sections` is empty. `human_in_the_loop`,
//! `startup_mode` / `workflow_startup_mode` (checked: `AgentDriven`, `UserDriven` or
//! `BackendOnly`, any case; on this runtime the caller decides who opens the conversation, by
//! invoking with or without a user `message`), `initial_message_to_user` (UI), `structured_outputs_required` (the
//! registry decides), variable `type`/`description`/`source` details, `ui_config.yaml`, the
//! `tools/` directory.

mod condition;
mod outputs;
#[cfg(test)]
mod tests;

use super::error::child;
use super::error::LoadError;
use condition::{json_string, Variables};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file whose presence makes a directory a MozaiksAI folder.
pub(crate) const MARKER: &str = "orchestrator.yaml";
/// The companion file holding the DSL functions that `tools.yaml` entries bind to.
pub(crate) const FUNCTIONS: &str = "functions.yaml";
/// Namespace of the generated document when `orchestrator.yaml` names none.
pub(crate) const DEFAULT_NAMESPACE: &str = "mozaiks";
/// Version of the generated document when `orchestrator.yaml` names none.
pub(crate) const DEFAULT_VERSION: &str = "1.0.0";
/// Name of the generated `call: agents` task.
const TASK: &str = "conversation";

type Error = LoadError;

/// What this runtime does with an entry of a MozaiksAI folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Read and translated (its keys each translated, accepted as MozaiksAI reads them, or
    /// refused at init naming the key and why).
    Translated,
    /// Known, and without meaning on this runtime (UI layout, Python sources): not read.
    Ignored,
    /// Refused at init when it holds anything, with the reason.
    Rejected,
}

impl Fate {
    /// `translated`, `ignored` or `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Translated => "translated",
            Fate::Ignored => "ignored by design",
            Fate::Rejected => "rejected",
        }
    }
}

/// Every file and directory a MozaiksAI folder may hold, its fate here, and what becomes of
/// it. The README's MozaiksAI table lists the same entries (a test keeps the two equal).
pub const ENTRIES: &[(&str, Fate, &str)] = &[
    ("orchestrator.yaml", Fate::Translated, "the document (name, namespace, version, summary) and the `call: agents` task's `initial_agent`, `initial_message`, `max_turns`; routing pattern and startup mode checked"),
    ("agents.yaml", Fate::Translated, "the agents: name, instructions (`prompt_sections` or `system_message`), model, `max_consecutive_auto_reply`, description"),
    ("transition_graph.yaml", Fate::Translated, "`transition_rules` → the agents' handoffs (conditions in jq, after-turn handoffs, waits for the user)"),
    ("handoffs.yaml", Fate::Translated, "`handoff_rules` (the earlier routing file) → the same handoffs"),
    ("context_variables.yaml", Fate::Translated, "variables and defaults → the task's `context`; `agents:` exposures → the agents' `context_variables`; `agent_text`/`user_text` triggers → `context_triggers`; `ui_response` triggers → the UI tool's `context`; a resume's `context` → `reply_context`"),
    ("structured_outputs.yaml", Fate::Translated, "`models` and `registry` → the agents' `output_schema` (JSON Schema)"),
    ("tools.yaml", Fate::Translated, "each tool → the agent's tool bound to the same-named DSL function of functions.yaml; a UI_Tool / UI_Surface without one → the agent's UI tool (the run waits for the user's answer, or shows a surface); another tool without one → the tool host (MOZAIKS_TOOL_HOST_URL), else refused naming it"),
    (FUNCTIONS, Fate::Translated, "this runtime's own companion file: `functions: { <tool>: <DSL task> }` → `use.functions`"),
    ("hooks.yaml", Fate::Rejected, "hooks are Python functions (an empty `hooks` list is accepted)"),
    ("middleware.yaml", Fate::Rejected, "prompt middleware are Python functions (an empty list is accepted)"),
    ("extended_orchestration", Fate::Rejected, "task batches and fan-outs to child workflows run in MozaiksAI's own orchestrator"),
    ("_pack", Fate::Rejected, "nested chats and child workflows run in MozaiksAI's own orchestrator"),
    ("a2a.yaml", Fate::Rejected, "remote A2A agents: call one with a `call: a2a` task instead"),
    ("ui_config.yaml", Fate::Ignored, "the chat UI's layout"),
    ("tools", Fate::Ignored, "the Python sources of tools.yaml's tools, which this binary cannot run (the tool host serves them)"),
    ("smoke_responses.json", Fate::Ignored, "scripted replies for MozaiksAI's smoke runs (test data)"),
    ("__init__.py", Fate::Ignored, "a Python package marker"),
    ("__pycache__", Fate::Ignored, "Python's bytecode cache"),
    ("README.md", Fate::Ignored, "documentation"),
];

/// The entries of folder `dir`, each with its fate and meaning: `None` for an entry the
/// table does not know (not read by the runtime; listed so that nothing goes unmentioned).
/// In name order.
pub fn inventory(dir: &Path) -> Vec<(String, Option<(Fate, &'static str)>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let fate = ENTRIES
                .iter()
                .find(|(entry, _, _)| *entry == name)
                .map(|(_, fate, what)| (*fate, *what));
            (name, fate)
        })
        .collect()
}

/// Whether `dir` is a MozaiksAI folder (holds `orchestrator.yaml`).
pub fn is_folder(dir: &Path) -> bool {
    std::fs::metadata(dir.join(MARKER)).is_ok_and(|m| m.is_file())
}

/// A place in one MozaiksAI file: builds its errors.
pub(crate) struct Place<'a> {
    file: &'a Path,
}

impl Place<'_> {
    fn error(&self, pointer: &str, message: impl Into<String>) -> Error {
        LoadError::new(self.file, pointer, message)
    }

    fn object<'v>(&self, value: &'v Value, pointer: &str) -> Result<&'v Map<String, Value>, Error> {
        value.as_object().ok_or_else(|| {
            self.error(
                pointer,
                format!("expected a mapping; found {}", kind(value)),
            )
        })
    }

    fn list<'v>(&self, value: &'v Value, pointer: &str) -> Result<&'v Vec<Value>, Error> {
        value
            .as_array()
            .ok_or_else(|| self.error(pointer, format!("expected a list; found {}", kind(value))))
    }

    fn known(&self, map: &Map<String, Value>, pointer: &str, known: &[&str]) -> Result<(), Error> {
        match map.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => Err(self.error(
                &child(pointer, key),
                format!(
                    "unknown key `{key}`; this loader knows: {}",
                    known.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// A required non-empty string field.
    fn string<'v>(
        &self,
        map: &'v Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Result<&'v str, Error> {
        match map.get(key) {
            Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
            None | Some(Value::Null) => Err(self.error(pointer, format!("`{key}` is required"))),
            Some(other) => Err(self.error(
                &child(pointer, key),
                format!("`{key}` must be a non-empty string; found {}", kind(other)),
            )),
        }
    }

    /// An optional string field (null = absent).
    fn opt_string<'v>(
        &self,
        map: &'v Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Result<Option<&'v str>, Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(self.error(
                &child(pointer, key),
                format!("`{key}` must be a string; found {}", kind(other)),
            )),
        }
    }

    /// An optional boolean field (null = absent).
    fn opt_bool(
        &self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Result<Option<bool>, Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(
                &child(pointer, key),
                format!("`{key}` must be true or false; found {}", kind(other)),
            )),
        }
    }

    /// An optional positive integer field (null = absent).
    fn opt_count(
        &self,
        map: &Map<String, Value>,
        pointer: &str,
        key: &str,
    ) -> Result<Option<u64>, Error> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => Ok(n.as_u64()),
            Some(other) => Err(self.error(
                &child(pointer, key),
                format!("`{key}` must be a whole number of at least 1; found {other}"),
            )),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// One YAML file of the folder, parsed; `None` if the file does not exist.
fn read(dir: &Path, name: &str) -> Result<Option<(PathBuf, Value)>, Error> {
    let path = dir.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LoadError::new(
                &path,
                "",
                format!("cannot read the file: {e}"),
            ))
        }
    };
    let value: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| LoadError::new(&path, "", format!("not valid YAML: {e}")))?;
    Ok(Some((path, value)))
}

/// Translates the MozaiksAI folder `dir` into a DSL workflow document (not yet validated:
/// [`crate::Workflow::load_path`] loads the folder through it).
pub fn translate(dir: &Path) -> Result<Value, Error> {
    translate_with(dir, None)
}

/// [`translate`], with the folder's Python tools bound to the MozaiksAI tool host
/// `tool_host` (the folder's endpoint is `<url>/<folder name>/mcp`).
pub fn translate_with(
    dir: &Path,
    tool_host: Option<&crate::options::ToolHost>,
) -> Result<Value, Error> {
    let Some((orchestrator_path, orchestrator)) = read(dir, MARKER)? else {
        return Err(LoadError::new(
            dir,
            "",
            format!("not a MozaiksAI folder: `{MARKER}` is missing"),
        ));
    };
    let Some((agents_path, agents_doc)) = read(dir, "agents.yaml")? else {
        return Err(LoadError::new(
            &dir.join("agents.yaml"),
            "",
            "a MozaiksAI folder needs agents.yaml (`agents: [{ name, prompt_sections | system_message }]`)",
        ));
    };
    let folder_name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let orchestrator = Orchestrator::read(
        &Place {
            file: &orchestrator_path,
        },
        &orchestrator,
        folder_name,
        dir.join(TRANSITIONS).is_file(),
    )?;
    let mut agents = read_agents(&Place { file: &agents_path }, &agents_doc)?;
    let agent_names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
    if !agent_names.contains(&orchestrator.initial_agent) {
        return Err(LoadError::new(
            &orchestrator_path,
            "/initial_agent",
            format!(
                "initial_agent {} is not an agent of agents.yaml ({})",
                orchestrator.initial_agent,
                agent_names.join(", ")
            ),
        ));
    }

    let variables = match read(dir, "context_variables.yaml")? {
        Some((path, doc)) => ContextVariables::read(&Place { file: &path }, &doc, &agent_names)?,
        None => ContextVariables::default(),
    };

    for agent in agents.iter_mut() {
        if let Some(names) = variables.exposures.get(&agent.name) {
            agent.spec.insert("context_variables".into(), json!(names));
        }
    }

    let handoffs =
        match (read(dir, "handoffs.yaml")?, read(dir, TRANSITIONS)?) {
            (Some((path, doc)), None) => {
                read_handoffs(&Place { file: &path }, &doc, &agent_names, &variables)?
            }
            (None, Some((path, doc))) => {
                read_transitions(&Place { file: &path }, &doc, &agent_names, &variables)?
            }
            (None, None) => Vec::new(),
            (Some(_), Some((path, _))) => return Err(LoadError::new(
                &path,
                "",
                "the folder routes with both handoffs.yaml and transition_graph.yaml; keep one \
                 (transition_graph.yaml is the current format)",
            )),
        };

    if let Some((path, doc)) = read(dir, "structured_outputs.yaml")? {
        let place = Place { file: &path };
        for (agent, schema) in outputs::compile(&doc, &place, &agent_names)?.by_agent {
            if let Some(target) = agents.iter_mut().find(|a| a.name == agent) {
                target.spec.insert("output_schema".into(), schema);
            }
        }
    }

    let functions = match read(dir, FUNCTIONS)? {
        Some((path, doc)) => {
            let place = Place { file: &path };
            let map = place.object(&doc, "")?;
            place.known(map, "", &["functions"])?;
            match map.get("functions") {
                None | Some(Value::Null) => Map::new(),
                Some(value) => place.object(value, "/functions")?.clone(),
            }
        }
        None => Map::new(),
    };
    let functions = match read(dir, "tools.yaml")? {
        Some((path, doc)) => bind_tools(
            &Place { file: &path },
            &doc,
            functions,
            &mut agents,
            dir,
            tool_host,
        )?,
        None => functions,
    };
    attach_ui_triggers(dir, &variables.ui_triggers, &mut agents)?;

    if let Some((path, doc)) = read(dir, "hooks.yaml")? {
        let place = Place { file: &path };
        let hooks = match &doc {
            Value::Null => None,
            Value::Object(map) => map.get("hooks").filter(|h| !h.is_null()),
            other => {
                return Err(place.error("", format!("expected a mapping; found {}", kind(other))))
            }
        };
        if hooks.is_some_and(|h| h.as_array().is_none_or(|list| !list.is_empty())) {
            return Err(place.error(
                "/hooks",
                "MozaiksAI hooks are Python functions, which cannot run in this runtime; remove them (a `call: agents` task has no hooks)",
            ));
        }
    }

    if let Some((path, doc)) = read(dir, "middleware.yaml")? {
        let place = Place { file: &path };
        let middleware = match &doc {
            Value::Null => None,
            Value::Object(map) => {
                place.known(map, "", &["prompt_middleware"])?;
                map.get("prompt_middleware").filter(|h| !h.is_null())
            }
            other => {
                return Err(place.error("", format!("expected a mapping; found {}", kind(other))))
            }
        };
        if middleware.is_some_and(|h| h.as_array().is_none_or(|list| !list.is_empty())) {
            return Err(place.error(
                "/prompt_middleware",
                "prompt middleware are Python functions called before each model call, which cannot run in this runtime; remove them (an agent's `context_variables` exposure covers showing context values in its prompt)",
            ));
        }
    }
    // What MozaiksAI's own orchestrator adds around the conversation, and remote agents:
    // not translated, and never silently skipped.
    for (entry, why) in [
        ("extended_orchestration", "task batches, conveyors and fan-outs to child workflows run in MozaiksAI's orchestrator, which a `call: agents` task does not have"),
        ("_pack", "nested chats and child workflows (`_pack/workflow_graph.json`) run in MozaiksAI's orchestrator, which a `call: agents` task does not have"),
        ("a2a.yaml", "remote A2A agents replacing agents are not translated; call an A2A agent with a `call: a2a` task instead"),
    ] {
        let path = dir.join(entry);
        let present = match std::fs::read_dir(&path) {
            Ok(mut entries) => entries.next().is_some(),
            Err(_) => path.is_file(),
        };
        if present {
            return Err(LoadError::new(&path, "", format!("{entry} cannot be translated: {why}")));
        }
    }

    let mut with = Map::new();
    with.insert(
        "agents".into(),
        Value::Array(agents.into_iter().map(|a| Value::Object(a.spec)).collect()),
    );
    if !handoffs.is_empty() {
        with.insert("handoffs".into(), Value::Array(handoffs));
    }
    with.insert(
        "initial_agent".into(),
        Value::String(orchestrator.initial_agent.clone()),
    );
    with.insert(
        "initial_message".into(),
        Value::String(match &orchestrator.initial_message {
            Some(text) => format!("${{ .message // {} }}", json_string(text)),
            None => "${ .message }".into(),
        }),
    );
    if orchestrator.initial_message.is_some() {
        // A resume without `message` has no reply: never the orchestrator's opening again.
        with.insert(
            "reply_message".into(),
            Value::String("${ .message }".into()),
        );
    }
    // A resume's `context` sets the declared variables it names, over the conversation's, as
    // MozaiksAI merges it (undeclared keys are dropped).
    if !variables.defined.is_empty() {
        let names = serde_json::to_string(&variables.defined).unwrap_or_default();
        with.insert(
            "reply_context".into(),
            json!(format!(
                "${{ (.context // {{}}) | with_entries(select(.key as $k | {names} | any(. == $k))) }}"
            )),
        );
    }
    let triggers = variables.trigger_list();
    if !triggers.is_empty() {
        with.insert("context_triggers".into(), Value::Array(triggers));
    }
    with.insert(
        "context".into(),
        Value::String(variables.context_expression()),
    );
    if let Some(selection) = &orchestrator.selection {
        with.insert("speaker_selection".into(), selection.clone());
    }
    if let Some(max_turns) = orchestrator.max_turns {
        with.insert("max_turns".into(), json!(max_turns));
    }

    let mut document = json!({
        "dsl": "1.0.3",
        "namespace": orchestrator.namespace,
        "name": orchestrator.name,
        "version": orchestrator.version,
        "title": orchestrator.name,
    });
    if let Some(summary) = &orchestrator.description {
        document["summary"] = Value::String(summary.clone());
    }
    let mut workflow = json!({
        "document": document,
        "do": [ { TASK: { "call": "agents", "with": with } } ],
    });
    if !functions.is_empty() {
        workflow["use"] = json!({ "functions": functions });
    }
    Ok(workflow)
}

/// What `orchestrator.yaml` says.
struct Orchestrator {
    name: String,
    namespace: String,
    version: String,
    description: Option<String>,
    initial_agent: String,
    initial_message: Option<String>,
    max_turns: Option<u64>,
    /// AG2's AutoPattern, RoundRobinPattern, RandomPattern: the task's `speaker_selection`.
    selection: Option<Value>,
}

impl Orchestrator {
    fn read<'d>(
        at: &Place<'_>,
        doc: &'d Value,
        folder: &'d str,
        routed_by_graph: bool,
    ) -> Result<Orchestrator, Error> {
        let map = at.object(doc, "")?;
        at.known(
            map,
            "",
            &[
                "workflow_name",
                "namespace",
                "version",
                "description",
                "initial_agent",
                "initial_message",
                "max_turns",
                "orchestration_pattern",
                "human_in_the_loop",
                "startup_mode",
                "workflow_startup_mode",
                "initial_message_to_user",
                "entry_point",
                "triggers",
                "inputs",
                "outputs",
                "metadata",
                "runtime_extensions",
            ],
        )?;
        // Python plug-ins of MozaiksAI's own server: nothing to run them here.
        if map
            .get("runtime_extensions")
            .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Err(at.error(
                "/runtime_extensions",
                "runtime_extensions are Python plug-ins of MozaiksAI's server (lifecycle hooks, API routers, startup services), which this runtime cannot load; remove them",
            ));
        }
        // How and where the host starts the workflow (the control plane's business here), and
        // descriptive specs: accepted, with no effect on a run.
        if let Some(flag) = map.get("entry_point").filter(|v| !v.is_null()) {
            if !flag.is_boolean() {
                return Err(at.error("/entry_point", "`entry_point` is true or false"));
            }
        }
        if let Some(triggers) = map.get("triggers").filter(|v| !v.is_null()) {
            at.list(triggers, "/triggers")?;
        }
        // MozaiksAI names a workflow by its folder when `workflow_name` is absent.
        let name = match map.get("workflow_name") {
            None | Some(Value::Null) => folder,
            _ => at.string(map, "", "workflow_name")?,
        };
        dsl_name(at, name, "/workflow_name", "name")?;
        let namespace = at
            .opt_string(map, "", "namespace")?
            .unwrap_or(DEFAULT_NAMESPACE);
        dsl_name(at, namespace, "/namespace", "namespace")?;
        let version = match map.get("version") {
            None | Some(Value::Null) => DEFAULT_VERSION.to_owned(),
            Some(Value::String(v)) => v.clone(),
            // `version: 1.0` in YAML is a number: take it as the text it was.
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(at.error(
                    "/version",
                    format!(
                        "`version` must be a semantic version such as '1.0.0'; found {}",
                        kind(other)
                    ),
                ))
            }
        };
        // With a transition graph, MozaiksAI routes by it and the pattern is a label
        // (`ag2_network`, or a patternbook name); without one, only DefaultPattern's explicit
        // handoffs translate.
        let human_in_the_loop = at.opt_bool(map, "", "human_in_the_loop")?.unwrap_or(false);
        let mut selection = None;
        if let Some(pattern) = at.opt_string(map, "", "orchestration_pattern")? {
            let mode = match pattern {
                "DefaultPattern" | "ag2_network" => None,
                _ if routed_by_graph => None,
                "AutoPattern" => Some("auto"),
                "RoundRobinPattern" => Some("round_robin"),
                "RandomPattern" => Some("random"),
                "ManualPattern" => {
                    return Err(at.error(
                        "/orchestration_pattern",
                        "ManualPattern (the user picks every next speaker in MozaiksAI's UI) cannot be translated; use AutoPattern, or explicit handoffs to `user` with DefaultPattern",
                    ))
                }
                other => {
                    return Err(at.error(
                        "/orchestration_pattern",
                        format!("orchestration pattern {other} is unknown: use DefaultPattern, AutoPattern, RoundRobinPattern, RandomPattern or ag2_network"),
                    ))
                }
            };
            // As AG2's patterns do: the user is a candidate when a human is in the loop.
            selection = mode.map(|mode| json!({ "mode": mode, "user": human_in_the_loop }));
        }
        // Who opens the conversation (AgentDriven, UserDriven, BackendOnly): on this runtime
        // the caller decides, by invoking with or without a user message; the value is checked.
        for key in ["startup_mode", "workflow_startup_mode"] {
            if let Some(mode) = at.opt_string(map, "", key)? {
                if !["agentdriven", "userdriven", "backendonly"]
                    .contains(&mode.to_ascii_lowercase().as_str())
                {
                    return Err(at.error(
                        &format!("/{key}"),
                        format!(
                            "{key} `{mode}` is unknown: use AgentDriven, UserDriven or BackendOnly"
                        ),
                    ));
                }
            }
        }
        at.opt_string(map, "", "initial_message_to_user")?;
        Ok(Orchestrator {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            version,
            description: at.opt_string(map, "", "description")?.map(str::to_owned),
            initial_agent: at.string(map, "", "initial_agent")?.to_owned(),
            initial_message: at
                .opt_string(map, "", "initial_message")?
                .map(str::to_owned),
            max_turns: at.opt_count(map, "", "max_turns")?,
            selection,
        })
    }
}

/// Checks a DSL `name`/`namespace`: 1–63 letters, digits and `-`, alphanumeric at both ends.
fn dsl_name(at: &Place<'_>, text: &str, pointer: &str, what: &str) -> Result<(), Error> {
    if super::load::is_dsl_name(text) {
        Ok(())
    } else {
        Err(at.error(
            pointer,
            format!("`{text}` cannot be a workflow {what}: use 1 to 63 ASCII letters, digits and `-`, starting and ending with a letter or digit (launch tokens name the workflow by it)"),
        ))
    }
}

/// One agent: its name and its entry of `with.agents`.
struct Agent {
    name: String,
    spec: Map<String, Value>,
}

fn read_agents(at: &Place<'_>, doc: &Value) -> Result<Vec<Agent>, Error> {
    let map = at.object(doc, "")?;
    at.known(map, "", &["agents"])?;
    let Some(list) = map.get("agents") else {
        return Err(at.error(
            "",
            "`agents` is required: a list of `{ name, prompt_sections | system_message }`",
        ));
    };
    // A list of `{ name, … }`, or (as MozaiksAI also reads them) a mapping `{ Name: { … } }`
    // whose keys are the names.
    let entries: Vec<(String, Map<String, Value>)> = match list {
        Value::Object(by_name) => by_name
            .iter()
            .map(|(name, entry)| {
                let pointer = child("/agents", name);
                let mut fields = at.object(entry, &pointer)?.clone();
                match fields.get("name") {
                    None => {
                        fields.insert("name".into(), Value::String(name.clone()));
                    }
                    Some(Value::String(inner)) if inner == name => {}
                    Some(_) => {
                        return Err(at.error(
                            &child(&pointer, "name"),
                            format!(
                            "agent {name}: `name` differs from its key; drop it or make them equal"
                        ),
                        ))
                    }
                }
                Ok((pointer, fields))
            })
            .collect::<Result<_, Error>>()?,
        other => at
            .list(other, "/agents")?
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let pointer = format!("/agents/{i}");
                Ok((pointer.clone(), at.object(entry, &pointer)?.clone()))
            })
            .collect::<Result<_, Error>>()?,
    };
    if entries.is_empty() {
        return Err(at.error("/agents", "a workflow needs at least one agent"));
    }
    let mut agents: Vec<Agent> = Vec::new();
    for (pointer, fields) in &entries {
        let pointer = pointer.as_str();
        at.known(
            fields,
            pointer,
            &[
                "name",
                "prompt_sections",
                "system_message",
                "max_consecutive_auto_reply",
                "llm_config",
                "auto_tool_mode",
                "structured_outputs_required",
                "description",
                "human_input_mode",
                "prompt_sections_custom",
                "image_generation_enabled",
                "image_generation",
                "multimodal_inputs_enabled",
                "sandbox_shell",
                "web_search",
                "web_fetch",
                "duck_search",
            ],
        )?;
        let name = at.string(fields, pointer, "name")?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(at.error(
                &format!("{pointer}/name"),
                format!("agent name `{name}` must use only ASCII letters, digits, `_` and `-` (it names the model's transfer tools)"),
            ));
        }
        if matches!(name, "user" | "terminate") {
            return Err(at.error(
                &format!("{pointer}/name"),
                format!("`{name}` is a handoff target, not an agent name"),
            ));
        }
        if agents.iter().any(|a| a.name == name) {
            return Err(at.error(
                &format!("{pointer}/name"),
                format!("agent {name} is defined twice"),
            ));
        }
        let mut spec = Map::new();
        spec.insert("name".into(), Value::String(name.to_owned()));
        // `prompt_sections: []` beside a `system_message` means the system message (MozaiksAI
        // composes the sections only when there are some).
        let non_empty = |key: &str| {
            fields
                .get(key)
                .filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        };
        let sections = non_empty("prompt_sections").or_else(|| non_empty("prompt_sections_custom"));
        match (sections, at.opt_string(fields, pointer, "system_message")?) {
            (Some(_), Some(_)) => {
                return Err(at.error(
                    pointer,
                    format!(
                        "agent {name} has both `prompt_sections` and `system_message`; keep one"
                    ),
                ))
            }
            (None, None) => {
                return Err(at.error(
                    pointer,
                    format!("agent {name} needs `prompt_sections` or `system_message`"),
                ))
            }
            (None, Some(message)) => {
                spec.insert("instructions".into(), Value::String(message.to_owned()));
            }
            (Some(sections), None) => {
                let spointer = format!("{pointer}/prompt_sections");
                let mut out = Vec::new();
                for (j, section) in at.list(sections, &spointer)?.iter().enumerate() {
                    let sp = format!("{spointer}/{j}");
                    let s = at.object(section, &sp)?;
                    at.known(s, &sp, &["id", "heading", "content"])?;
                    let mut entry = Map::new();
                    if let Some(id) = at.opt_string(s, &sp, "id")? {
                        entry.insert("id".into(), Value::String(id.to_owned()));
                    }
                    entry.insert(
                        "heading".into(),
                        Value::String(
                            at.opt_string(s, &sp, "heading")?
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                    );
                    entry.insert(
                        "content".into(),
                        Value::String(at.string(s, &sp, "content")?.to_owned()),
                    );
                    out.push(Value::Object(entry));
                }
                if out.is_empty() {
                    return Err(at.error(&spointer, format!("agent {name} has no prompt sections")));
                }
                spec.insert("prompt_sections".into(), Value::Array(out));
            }
        }
        if let Some(llm) = fields.get("llm_config").filter(|v| !v.is_null()) {
            spec.insert(
                "model".into(),
                model(at, llm, &format!("{pointer}/llm_config"))?,
            );
        }
        if let Some(n) = at.opt_count(fields, pointer, "max_consecutive_auto_reply")? {
            spec.insert("max_consecutive_auto_reply".into(), json!(n));
        }
        if at.opt_bool(fields, pointer, "auto_tool_mode")? == Some(true) {
            return Err(at.error(
                &format!("{pointer}/auto_tool_mode"),
                format!("agent {name}: auto_tool_mode (tools invoked automatically with the structured output) cannot be translated; set it to false: the model calls its tools itself"),
            ));
        }
        at.opt_bool(fields, pointer, "structured_outputs_required")?;
        if let Some(description) = at.opt_string(fields, pointer, "description")? {
            spec.insert("description".into(), json!(description));
        }
        // MozaiksAI ignores it (every agent replies without asking a person; the user's turn
        // comes from routing), and so does this translation.
        at.opt_string(fields, pointer, "human_input_mode")?;
        // AG2's built-in tools of MozaiksAI's current runtime: off is the default; on needs a
        // tool this runtime does not have.
        for key in [
            "image_generation_enabled",
            "image_generation",
            "multimodal_inputs_enabled",
            "sandbox_shell",
            "web_search",
            "web_fetch",
            "duck_search",
        ] {
            let on = match fields.get(key) {
                None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                Some(Value::Object(config)) => {
                    !config.is_empty() && config.get("enabled") != Some(&Value::Bool(false))
                }
                Some(_) => true,
            };
            if on {
                return Err(at.error(
                    &format!("{pointer}/{key}"),
                    format!("agent {name}: `{key}` turns on one of AG2's built-in tools (image generation, a shell sandbox, web search or fetch), which this runtime does not provide; set it to false, or serve such a tool over MCP"),
                ));
            }
        }
        agents.push(Agent {
            name: name.to_owned(),
            spec,
        });
    }
    Ok(agents)
}

/// An agent's `llm_config` → the `model` of the shape.
fn model(at: &Place<'_>, llm: &Value, pointer: &str) -> Result<Value, Error> {
    let map = at.object(llm, pointer)?;
    at.known(
        map,
        pointer,
        &["model", "api_type", "temperature", "max_tokens"],
    )?;
    let mut model = Map::new();
    let provider = at.opt_string(map, pointer, "api_type")?.unwrap_or("openai");
    model.insert("provider".into(), Value::String(provider.to_owned()));
    model.insert(
        "name".into(),
        Value::String(at.string(map, pointer, "model")?.to_owned()),
    );
    match map.get("temperature") {
        None | Some(Value::Null) => {}
        Some(Value::Number(t)) => {
            model.insert("temperature".into(), Value::Number(t.clone()));
        }
        Some(other) => {
            return Err(at.error(
                &format!("{pointer}/temperature"),
                format!("`temperature` must be a number; found {}", kind(other)),
            ))
        }
    }
    if let Some(n) = at.opt_count(map, pointer, "max_tokens")? {
        model.insert("max_tokens".into(), json!(n));
    }
    Ok(Value::Object(model))
}

/// A derived variable's `agent_text` trigger: the agent and how its message matches.
#[derive(Debug, Clone)]
struct Trigger {
    /// The agent whose message sets the variable (`agent_text`); `None`: the user's reply
    /// (`user_text`).
    agent: Option<String>,
    equals: Option<String>,
    contains: Option<String>,
    regex: Option<String>,
}

/// `context_variables.yaml` `agents:` — `{ Agent: { variables: [..] } }` or
/// `[{ agent | agent_name | name, variables }]`. Agents that agents.yaml does not define are
/// skipped (MozaiksAI ignores them); a variable `definitions` does not define renders `None`.
fn read_exposures(
    at: &Place<'_>,
    value: Option<&Value>,
    agents: &[String],
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut out = BTreeMap::new();
    let entries: Vec<(String, String, Option<&Value>)> = match value {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(by_agent)) => by_agent
            .iter()
            .map(|(agent, entry)| {
                let pointer = child("/agents", agent);
                let fields = match entry {
                    Value::Null => None,
                    other => Some(at.object(other, &pointer)?),
                };
                if let Some(fields) = fields {
                    at.known(fields, &pointer, &["variables"])?;
                }
                Ok((
                    agent.clone(),
                    pointer,
                    fields.and_then(|f| f.get("variables")),
                ))
            })
            .collect::<Result<_, Error>>()?,
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let pointer = format!("/agents/{i}");
                let fields = at.object(entry, &pointer)?;
                at.known(
                    fields,
                    &pointer,
                    &["agent", "agent_name", "name", "variables"],
                )?;
                let agent = ["agent", "agent_name", "name"]
                    .iter()
                    .find_map(|key| fields.get(*key).and_then(Value::as_str))
                    .ok_or_else(|| at.error(&pointer, "an exposure names its agent (`agent`)"))?;
                Ok((agent.to_owned(), pointer, fields.get("variables")))
            })
            .collect::<Result<_, Error>>()?,
        Some(other) => {
            return Err(at.error(
                "/agents",
                format!(
                    "expected a mapping of agent → {{ variables: [..] }}; found {}",
                    kind(other)
                ),
            ))
        }
    };
    for (agent, pointer, names) in entries {
        let names: Vec<String> = match names {
            None | Some(Value::Null) => Vec::new(),
            Some(list) => at
                .list(list, &child(&pointer, "variables"))?
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    let npointer = format!("{pointer}/variables/{i}");
                    let name = name
                        .as_str()
                        .ok_or_else(|| at.error(&npointer, "a variable name is a string"))?;
                    // An undefined variable is kept: it renders `None`, as in MozaiksAI.
                    Ok(name.to_owned())
                })
                .collect::<Result<_, Error>>()?,
        };
        if agents.contains(&agent) && !names.is_empty() {
            out.insert(agent, names);
        }
    }
    Ok(out)
}

/// `context_variables.yaml`: defaults and derived triggers.
#[derive(Debug, Default)]
struct ContextVariables {
    defaults: Map<String, Value>,
    triggers: BTreeMap<String, Vec<Trigger>>,
    /// `agents:` — the variables each agent's system message exposes, in list order.
    exposures: BTreeMap<String, Vec<String>>,
    /// Every variable `definitions` defines.
    defined: Vec<String>,
    /// `ui_response` triggers, in the order written.
    ui_triggers: Vec<UiTrigger>,
}

impl ContextVariables {
    fn read(at: &Place<'_>, doc: &Value, agents: &[String]) -> Result<ContextVariables, Error> {
        let mut out = ContextVariables::default();
        if doc.is_null() {
            return Ok(out);
        }
        let map = at.object(doc, "")?;
        at.known(map, "", &["definitions", "agents"])?;
        let definitions: Vec<(String, String, &Value)> = match map.get("definitions") {
            None | Some(Value::Null) => Vec::new(),
            // The list form: `- name: x`.
            Some(Value::Array(list)) => {
                let mut defs = Vec::new();
                for (i, entry) in list.iter().enumerate() {
                    let pointer = format!("/definitions/{i}");
                    let name = at.string(at.object(entry, &pointer)?, &pointer, "name")?;
                    defs.push((name.to_owned(), pointer, entry));
                }
                defs
            }
            // The mapping form: `x: { … }`.
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(name, entry)| (name.clone(), child("/definitions", name), entry))
                .collect(),
            Some(other) => {
                return Err(at.error(
                    "/definitions",
                    format!("expected a list of variables; found {}", kind(other)),
                ))
            }
        };
        for (name, pointer, entry) in definitions {
            out.defined.push(name.clone());
            let fields = at.object(entry, &pointer)?;
            at.known(
                fields,
                &pointer,
                &["name", "type", "description", "source", "default"],
            )?;
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(at.error(
                    &pointer,
                    format!(
                        "context variable `{name}` must use only ASCII letters, digits and `_`"
                    ),
                ));
            }
            if out.defaults.contains_key(&name) || out.triggers.contains_key(&name) {
                return Err(at.error(
                    &pointer,
                    format!("context variable {name} is defined twice"),
                ));
            }
            let mut default = fields.get("default").cloned();
            if let Some(source) = fields.get("source").filter(|s| !s.is_null()) {
                let spointer = format!("{pointer}/source");
                let source = at.object(source, &spointer)?;
                if let Some(d) = source.get("default") {
                    default = Some(d.clone());
                }
                if source
                    .get("transitions")
                    .and_then(Value::as_array)
                    .is_some_and(|t| !t.is_empty())
                {
                    return Err(at.error(
                        &format!("{spointer}/transitions"),
                        format!("state transitions of {name} cannot be translated; use `triggers` of type agent_text, or let a tool or the caller set {name}"),
                    ));
                }
                if let Some(triggers) = source.get("triggers").filter(|t| !t.is_null()) {
                    let tpointer = format!("{spointer}/triggers");
                    for (i, trigger) in at.list(triggers, &tpointer)?.iter().enumerate() {
                        match read_trigger(at, trigger, &format!("{tpointer}/{i}"), &name, agents)?
                        {
                            ReadTrigger::Text(trigger) => {
                                out.triggers.entry(name.clone()).or_default().push(trigger);
                            }
                            ReadTrigger::Ui(trigger) => out.ui_triggers.push(trigger),
                        }
                    }
                }
            }
            if let Some(default) = default {
                out.defaults.insert(name, default);
            }
        }
        out.exposures = read_exposures(at, map.get("agents"), agents)?;
        Ok(out)
    }

    /// The `context` expression: the defaults under the caller's `.context`.
    /// The `call: agents` `context_triggers` of the variables with `agent_text` triggers: each
    /// becomes `true` in the conversation's context once its agent said a matching message
    /// (so `$context`, the exposure and the output see it, as conditions already do).
    fn trigger_list(&self) -> Vec<Value> {
        self.triggers
            .iter()
            .map(|(name, triggers)| {
                let matches: Vec<String> = triggers.iter().map(Trigger::to_jq).collect();
                json!({
                    "variable": name,
                    "when": format!("${{ any(.messages[]?; {}) }}", matches.join(" or ")),
                })
            })
            .collect()
    }

    fn context_expression(&self) -> String {
        if self.defaults.is_empty() {
            return "${ .context // {} }".into();
        }
        // A JSON object is a jq object literal (JSON never writes jq's `\(` interpolation).
        let defaults = Value::Object(self.defaults.clone()).to_string();
        format!("${{ {defaults} + (.context // {{}}) }}")
    }
}

impl Variables for ContextVariables {
    fn variable(&self, name: &str) -> String {
        let plain = format!(".context.{name}");
        let Some(triggers) = self.triggers.get(name) else {
            return plain;
        };
        let matches: Vec<String> = triggers.iter().map(Trigger::to_jq).collect();
        format!(
            "(if any(.messages[]?; {}) then true else {plain} end)",
            matches.join(" or ")
        )
    }
}

impl Trigger {
    /// A jq test on one message: from this agent, with text that matches.
    fn to_jq(&self) -> String {
        let mut tests = Vec::new();
        if let Some(equals) = &self.equals {
            tests.push(format!(
                "(.content | trim | ascii_downcase) == {}",
                json_string(&equals.trim().to_lowercase())
            ));
        }
        if let Some(contains) = &self.contains {
            tests.push(format!(
                "(.content | ascii_downcase | contains({}))",
                json_string(&contains.to_lowercase())
            ));
        }
        if let Some(regex) = &self.regex {
            tests.push(format!("(.content | test({}; \"i\"))", json_string(regex)));
        }
        let speaker = match &self.agent {
            Some(agent) => format!(".role == \"assistant\" and .name == {}", json_string(agent)),
            None => ".role == \"user\"".to_owned(),
        };
        format!(
            "({speaker} and (.content | type) == \"string\" and ({}))",
            tests.join(" or ")
        )
    }
}

/// A trigger as read: on a message's text, or on a UI tool's answer.
enum ReadTrigger {
    Text(Trigger),
    Ui(UiTrigger),
}

/// A `ui_response` trigger: when the user answers UI tool `tool`, the variable takes the
/// answer's `response_key` (a key, or a dotted path; none: the whole answer), unless absent.
#[derive(Debug)]
struct UiTrigger {
    variable: String,
    tool: String,
    response_key: Option<String>,
    /// Where it is written in context_variables.yaml.
    pointer: String,
}

impl UiTrigger {
    /// The jq that looks the value up in the answer (an object): the key as is first, then
    /// as a dotted path, as MozaiksAI resolves it; `null` when absent.
    fn lookup(&self) -> String {
        match &self.response_key {
            None => ".".to_owned(),
            Some(key) => {
                let parts: Vec<&str> = key.split('.').filter(|p| !p.is_empty()).collect();
                let path = serde_json::to_string(&parts).unwrap_or_default();
                format!(
                    "(if has({key}) then .[{key}] else (try getpath({path}) catch null) end)",
                    key = json_string(key)
                )
            }
        }
    }
}

/// The `context` expression of a UI tool: the variables its answer sets.
fn ui_context(triggers: &[&UiTrigger]) -> String {
    let parts: Vec<String> = triggers
        .iter()
        .map(|t| {
            format!(
                "({} as $v | if $v == null then {{}} else {{{}: $v}} end)",
                t.lookup(),
                json_string(&t.variable)
            )
        })
        .collect();
    format!("${{ [{}] | add }}", parts.join(", "))
}

fn read_trigger(
    at: &Place<'_>,
    value: &Value,
    pointer: &str,
    variable: &str,
    agents: &[String],
) -> Result<ReadTrigger, Error> {
    let map = at.object(value, pointer)?;
    at.known(
        map,
        pointer,
        &[
            "type",
            "agent",
            "match",
            "ui_hidden",
            "tool",
            "response_key",
        ],
    )?;
    let kind = at.string(map, pointer, "type")?;
    let agent = match kind {
        "agent_text" => {
            let agent = at.string(map, pointer, "agent")?;
            if !agents.iter().any(|a| a == agent) {
                return Err(at.error(
                    &format!("{pointer}/agent"),
                    format!(
                        "{variable}: trigger agent {agent} is not an agent of agents.yaml ({})",
                        agents.join(", ")
                    ),
                ));
            }
            Some(agent.to_owned())
        }
        "user_text" => None,
        "ui_response" => {
            return Ok(ReadTrigger::Ui(UiTrigger {
                variable: variable.to_owned(),
                tool: at.string(map, pointer, "tool")?.to_owned(),
                response_key: at.opt_string(map, pointer, "response_key")?.map(str::to_owned),
                pointer: pointer.to_owned(),
            }))
        }
        other => {
            return Err(at.error(
                &format!("{pointer}/type"),
                format!("{variable}: trigger type `{other}` is unknown: use agent_text, user_text or ui_response"),
            ))
        }
    };
    let mpointer = format!("{pointer}/match");
    let Some(matcher) = map.get("match").filter(|m| !m.is_null()) else {
        return Err(at.error(
            pointer,
            format!("{variable}: a {kind} trigger needs `match` (equals, contains or regex)"),
        ));
    };
    let m = at.object(matcher, &mpointer)?;
    at.known(m, &mpointer, &["equals", "contains", "regex"])?;
    let trigger = Trigger {
        agent,
        equals: at.opt_string(m, &mpointer, "equals")?.map(str::to_owned),
        contains: at.opt_string(m, &mpointer, "contains")?.map(str::to_owned),
        regex: at.opt_string(m, &mpointer, "regex")?.map(str::to_owned),
    };
    if let Some(regex) = &trigger.regex {
        if regex_bites::Regex::new(regex).is_err() {
            return Err(at.error(
                &format!("{mpointer}/regex"),
                format!(
                    "{variable}: `{regex}` is not a regular expression this runtime understands"
                ),
            ));
        }
    }
    if trigger.equals.is_none() && trigger.contains.is_none() && trigger.regex.is_none() {
        return Err(at.error(
            &mpointer,
            format!("{variable}: `match` needs equals, contains or regex"),
        ));
    }
    Ok(ReadTrigger::Text(trigger))
}

/// A handoff target: an agent, `user` or `terminate`.
fn target(
    at: &Place<'_>,
    rule: &Map<String, Value>,
    pointer: &str,
    agents: &[String],
) -> Result<String, Error> {
    let target = at.string(rule, pointer, "target_agent")?;
    let expected = match target {
        "user" => "RevertToUserTarget",
        "terminate" => "TerminateTarget",
        agent if agents.iter().any(|a| a == agent) => "AgentTarget",
        other => {
            return Err(at.error(
                &format!("{pointer}/target_agent"),
                format!(
                    "target {other} is not an agent of agents.yaml ({}), `user` or `terminate`",
                    agents.join(", ")
                ),
            ))
        }
    };
    if let Some(transition) = at.opt_string(rule, pointer, "transition_target")? {
        if transition != expected {
            return Err(at.error(
                &format!("{pointer}/transition_target"),
                format!("transition_target {transition} cannot be translated with target_agent {target}: expected {expected} (AgentTarget for an agent, RevertToUserTarget for user, TerminateTarget for terminate)"),
            ));
        }
    }
    Ok(target.to_owned())
}

/// The jq test that the user's reply is the last message (rules whose source is `user`).
const USER_JUST_REPLIED: &str = "(.messages | last | .role) == \"user\"";

/// The current routing file of MozaiksAI folders.
const TRANSITIONS: &str = "transition_graph.yaml";

/// `user` as transition graphs may write it.
fn is_user(name: &str) -> bool {
    ["user", "user_proxy", "userproxy", "userproxyagent"]
        .iter()
        .any(|alias| name.eq_ignore_ascii_case(alias))
}

/// `transition_graph.yaml` → the shape's `handoffs`. MozaiksAI tries, after a speaker's turn,
/// every `condition` rule of that speaker in order, then its `after_turn` rules in order (the
/// first that holds wins), and ends the run when none does; a rule to `user` pauses the run
/// for the user. So: condition rules become `{from, to, when}` in order, the first
/// `after_turn` of an agent its `after_work` (the engine's default, `terminate`, is
/// MozaiksAI's), and rules from `user` apply right after the user replies, as in
/// `handoffs.yaml`.
fn read_transitions(
    at: &Place<'_>,
    doc: &Value,
    agents: &[String],
    variables: &ContextVariables,
) -> Result<Vec<Value>, Error> {
    if doc.is_null() {
        return Ok(Vec::new());
    }
    let map = at.object(doc, "")?;
    at.known(map, "", &["transition_rules"])?;
    let rules = match map.get("transition_rules") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(rules) => at.list(rules, "/transition_rules")?,
    };
    let endpoint = |rule: &Value, key: &str| -> Option<String> {
        let name = rule.get(key)?.as_str()?;
        Some(if is_user(name) {
            "user".into()
        } else {
            name.to_owned()
        })
    };
    // Who hands the conversation to the user (rules from `user` apply after their turns).
    let mut to_user: Vec<String> = Vec::new();
    for rule in rules {
        if let (Some(source), Some(target)) = (
            endpoint(rule, "source_agent"),
            endpoint(rule, "target_agent"),
        ) {
            if target == "user" && source != "user" && !to_user.contains(&source) {
                to_user.push(source);
            }
        }
    }
    let mut conditions = Vec::new();
    let mut user_fallbacks = Vec::new();
    let mut fallbacks: Vec<Value> = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let pointer = format!("/transition_rules/{i}");
        let fields = at.object(rule, &pointer)?;
        at.known(
            fields,
            &pointer,
            &[
                "source_agent",
                "target_agent",
                "transition_type",
                "condition_type",
                "condition_key",
                "condition_value",
                "context_expression",
                "tool_name",
                "transition_target",
                "description",
            ],
        )?;
        at.string(fields, &pointer, "source_agent")?;
        let source = endpoint(rule, "source_agent").unwrap_or_default();
        if source != "user" && !agents.contains(&source) {
            return Err(at.error(
                &format!("{pointer}/source_agent"),
                format!(
                    "source {source} is not an agent of agents.yaml ({}) or `user`",
                    agents.join(", ")
                ),
            ));
        }
        at.string(fields, &pointer, "target_agent")?;
        let target = endpoint(rule, "target_agent").unwrap_or_default();
        if target != "user" && target != "terminate" && !agents.contains(&target) {
            return Err(at.error(
                &format!("{pointer}/target_agent"),
                format!(
                    "target {target} is not an agent of agents.yaml ({}), `user` or `terminate`",
                    agents.join(", ")
                ),
            ));
        }
        // Only TerminateTarget means something to MozaiksAI (it must go with `terminate`).
        if let Some(kind) = at.opt_string(fields, &pointer, "transition_target")? {
            if kind.eq_ignore_ascii_case("TerminateTarget") && target != "terminate" {
                return Err(at.error(
                    &format!("{pointer}/transition_target"),
                    "TerminateTarget transitions must use target_agent: terminate",
                ));
            }
        }
        let user_guard = (source == "user").then_some(USER_JUST_REPLIED);
        let froms: Vec<String> = if source == "user" {
            to_user.iter().filter(|a| **a != target).cloned().collect()
        } else {
            vec![source.clone()]
        };
        let kind = at.string(fields, &pointer, "transition_type")?;
        let condition_keys = [
            "condition_type",
            "condition_key",
            "condition_value",
            "context_expression",
            "tool_name",
        ];
        match kind.to_ascii_lowercase().as_str() {
            "after_turn" => {
                if let Some(key) = condition_keys.iter().find(|k| fields.contains_key(**k)) {
                    return Err(at.error(
                        &format!("{pointer}/{key}"),
                        "an after_turn rule is unconditional; make it transition_type: condition, or drop the condition fields",
                    ));
                }
                match user_guard {
                    Some(guard) => {
                        for from in &froms {
                            user_fallbacks.push(json!({ "from": from, "to": target, "when": format!("${{ {guard} }}"), "scope": "pre" }));
                        }
                    }
                    // The first after_turn of a speaker wins.
                    None if fallbacks.iter().any(|h| h["from"] == source.as_str()) => {}
                    None => fallbacks.push(json!({ "from": source, "after_work": target })),
                }
            }
            "condition" => {
                let condition_type = at.string(fields, &pointer, "condition_type")?;
                let jq = match condition_type.to_ascii_lowercase().as_str() {
                    "context_equals" => {
                        let key = at.string(fields, &pointer, "condition_key")?;
                        let Some(value) = fields.get("condition_value") else {
                            return Err(at.error(&pointer, "a context_equals condition needs `condition_value`"));
                        };
                        format!("({}) == {}", variables.variable(key), serde_json::to_string(value).unwrap_or_default())
                    }
                    "context_expression" => {
                        let text = at.string(fields, &pointer, "context_expression")?;
                        condition::to_jq(text, variables).map_err(|e| {
                            at.error(
                                &format!("{pointer}/context_expression"),
                                format!("cannot translate `{text}` (at character {}): {}", e.at + 1, e.message),
                            )
                        })?
                    }
                    "tool_called" => {
                        return Err(at.error(
                            &format!("{pointer}/condition_type"),
                            "tool_called conditions are not translated yet: route on a context variable the tool sets (context_equals)",
                        ))
                    }
                    other => {
                        return Err(at.error(
                            &format!("{pointer}/condition_type"),
                            format!("condition_type `{other}` is not a transition condition: use context_equals or context_expression (MozaiksAI's transition graphs route deterministically; an intent the model decides belongs to handoffs.yaml's string_llm)"),
                        ))
                    }
                };
                let when = match user_guard {
                    Some(guard) => format!("${{ {guard} and {jq} }}"),
                    None => format!("${{ {jq} }}"),
                };
                for from in &froms {
                    let mut handoff = json!({ "from": from, "to": target, "when": when });
                    if user_guard.is_some() {
                        handoff["scope"] = json!("pre");
                    }
                    conditions.push(handoff);
                }
            }
            other => {
                return Err(at.error(
                    &format!("{pointer}/transition_type"),
                    format!("transition_type `{other}` is unknown: use condition or after_turn"),
                ))
            }
        }
    }
    conditions.extend(user_fallbacks);
    conditions.extend(fallbacks);
    Ok(conditions)
}

/// `handoffs.yaml` → the shape's `handoffs`, in rule order.
fn read_handoffs(
    at: &Place<'_>,
    doc: &Value,
    agents: &[String],
    variables: &ContextVariables,
) -> Result<Vec<Value>, Error> {
    if doc.is_null() {
        return Ok(Vec::new());
    }
    let map = at.object(doc, "")?;
    at.known(map, "", &["handoff_rules"])?;
    let rules = match map.get("handoff_rules") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(rules) => at.list(rules, "/handoff_rules")?,
    };
    // First pass: who hands the conversation to the user (user-sourced rules apply after them).
    let mut to_user: Vec<String> = Vec::new();
    for rule in rules {
        let (Some(source), Some("user")) = (
            rule.get("source_agent").and_then(Value::as_str),
            rule.get("target_agent").and_then(Value::as_str),
        ) else {
            continue;
        };
        if source != "user" && !to_user.iter().any(|a| a == source) {
            to_user.push(source.to_owned());
        }
    }
    let mut out = Vec::new();
    let mut after_work: Vec<(String, String)> = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let pointer = format!("/handoff_rules/{i}");
        let fields = at.object(rule, &pointer)?;
        at.known(
            fields,
            &pointer,
            &[
                "source_agent",
                "target_agent",
                "handoff_type",
                "condition_type",
                "condition_scope",
                "condition",
                "transition_target",
                "description",
            ],
        )?;
        let source = at.string(fields, &pointer, "source_agent")?;
        if source != "user" && !agents.iter().any(|a| a == source) {
            return Err(at.error(
                &format!("{pointer}/source_agent"),
                format!(
                    "source {source} is not an agent of agents.yaml ({}) or `user`",
                    agents.join(", ")
                ),
            ));
        }
        let target = target(at, fields, &pointer, agents)?;
        let handoff_type = at.string(fields, &pointer, "handoff_type")?;
        let scope = at.opt_string(fields, &pointer, "condition_scope")?;
        // MozaiksAI checks `pre` before the source agent replies and anything else after it.
        let pre = match scope {
            None | Some("post" | "after") => false,
            Some("pre") => true,
            Some(other) => {
                return Err(at.error(
                    &format!("{pointer}/condition_scope"),
                    format!("condition_scope `{other}` is unknown: use pre, post (after) or null"),
                ))
            }
        };
        // The agents this rule applies to, and the jq test that the user just replied.
        let (froms, user_guard): (Vec<&str>, Option<&str>) = if source == "user" {
            (
                to_user
                    .iter()
                    .map(String::as_str)
                    .filter(|a| *a != target)
                    .collect(),
                Some(USER_JUST_REPLIED),
            )
        } else {
            (vec![source], None)
        };
        match handoff_type {
            "after_work" => {
                if at.opt_string(fields, &pointer, "condition_type")?.is_some()
                    || at.opt_string(fields, &pointer, "condition")?.is_some()
                {
                    return Err(at.error(&pointer, "an after_work rule has no condition; make it handoff_type: condition, or drop condition/condition_type"));
                }
                if let Some(guard) = user_guard {
                    for from in froms {
                        out.push(json!({ "from": from, "to": target, "when": format!("${{ {guard} }}"), "scope": "pre" }));
                    }
                    continue;
                }
                // An agent has one after_work; MozaiksAI keeps the last one a folder gives.
                if let Some(at_index) = after_work.iter().position(|(from, _)| from == source) {
                    after_work.remove(at_index);
                    out.retain(|h| {
                        !(h.get("from").and_then(Value::as_str) == Some(source)
                            && h.get("after_work").is_some())
                    });
                }
                after_work.push((source.to_owned(), target.clone()));
                out.push(json!({ "from": source, "after_work": target }));
            }
            "condition" => {
                // A YAML boolean condition is a constant (MozaiksAI takes `true` as always).
                let constant;
                let condition = match fields.get("condition") {
                    Some(Value::Bool(b)) => {
                        constant = if *b { "True" } else { "False" };
                        constant
                    }
                    _ => at.string(fields, &pointer, "condition")?,
                };
                // Without a condition_type, MozaiksAI evaluates a condition that reads a
                // variable (`${…}`) and asks the model about any other text.
                let condition_type = match at.opt_string(fields, &pointer, "condition_type")? {
                    Some(kind) => Some(kind),
                    None if condition.contains("${")
                        || matches!(fields.get("condition"), Some(Value::Bool(_))) =>
                    {
                        Some("expression")
                    }
                    None => Some("string_llm"),
                };
                match condition_type {
                    Some("expression") => {
                        let jq = condition::to_jq(condition, variables).map_err(|e| {
                            at.error(
                                &format!("{pointer}/condition"),
                                format!(
                                    "cannot translate `{condition}` (at character {}): {}",
                                    e.at + 1,
                                    e.message
                                ),
                            )
                        })?;
                        let when = match user_guard {
                            Some(guard) => format!("${{ {guard} and {jq} }}"),
                            None => format!("${{ {jq} }}"),
                        };
                        for from in froms {
                            let mut handoff = json!({ "from": from, "to": target, "when": when });
                            if pre || user_guard.is_some() {
                                handoff["scope"] = json!("pre");
                            }
                            out.push(handoff);
                        }
                    }
                    Some("string_llm") => {
                        if pre {
                            return Err(at.error(&format!("{pointer}/condition_scope"), "condition_scope pre applies to expression conditions; a string_llm condition is decided by the model when it replies"));
                        }
                        for from in froms {
                            out.push(
                                json!({ "from": from, "to": target, "description": condition }),
                            );
                        }
                    }
                    Some(other) => {
                        return Err(at.error(
                            &format!("{pointer}/condition_type"),
                            format!(
                                "condition_type `{other}` is unknown: use expression or string_llm"
                            ),
                        ))
                    }
                    None => {
                        return Err(at.error(
                            &pointer,
                            "a condition rule needs condition_type: expression or string_llm",
                        ))
                    }
                }
            }
            other => {
                return Err(at.error(
                    &format!("{pointer}/handoff_type"),
                    format!("handoff_type `{other}` is unknown: use condition or after_work"),
                ))
            }
        }
    }
    Ok(out)
}

/// `tools.yaml`: binds each tool to its DSL function and to its agent. Returns the functions.
fn bind_tools(
    at: &Place<'_>,
    doc: &Value,
    functions: Map<String, Value>,
    agents: &mut [Agent],
    dir: &Path,
    tool_host: Option<&crate::options::ToolHost>,
) -> Result<Map<String, Value>, Error> {
    let mut functions = functions;
    if doc.is_null() {
        return Ok(functions);
    }
    let map = at.object(doc, "")?;
    at.known(map, "", &["tools", "lifecycle_tools"])?;
    if map
        .get("lifecycle_tools")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty())
        || map
            .get("lifecycle_tools")
            .is_some_and(|l| !l.is_null() && !l.is_array())
    {
        return Err(at.error(
            "/lifecycle_tools",
            "lifecycle tools run Python around an agent's turn, which this runtime cannot do; remove them (a `call: agents` task has no lifecycle hooks)",
        ));
    }
    let tools = match map.get("tools") {
        None | Some(Value::Null) => return Ok(functions),
        Some(tools) => at.list(tools, "/tools")?,
    };
    let functions_file = dir.join(FUNCTIONS);
    for (i, tool) in tools.iter().enumerate() {
        let pointer = format!("/tools/{i}");
        let fields = at.object(tool, &pointer)?;
        at.known(
            fields,
            &pointer,
            &[
                "agent",
                "file",
                "function",
                "description",
                "tool_type",
                "auto_invoke",
                "auto_tool_call",
                "integration",
                "ui",
                "ui_contract",
            ],
        )?;
        let name = at.string(fields, &pointer, "function")?;
        let agent = at.string(fields, &pointer, "agent")?;
        let tool_type = at.opt_string(fields, &pointer, "tool_type")?;
        if let Some(t) = tool_type {
            if !matches!(t, "Agent_Tool" | "UI_Tool" | "UI_Surface") {
                return Err(at.error(
                    &format!("{pointer}/tool_type"),
                    format!("tool {name}: tool_type `{t}` is unknown: use Agent_Tool, UI_Tool or UI_Surface"),
                ));
            }
        }
        let known: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
        let Some(owner) = agents.iter_mut().find(|a| a.name == agent) else {
            return Err(at.error(
                &format!("{pointer}/agent"),
                format!(
                    "tool {name}: agent {agent} is not an agent of agents.yaml ({})",
                    known.join(", ")
                ),
            ));
        };
        // MozaiksAI calls an auto tool itself with the agent's structured output
        // (`auto_tool_call`, formerly `auto_invoke`; by default on for UI tools); an agent
        // without a structured output has the model call it, as here.
        let ui_type = matches!(tool_type, Some("UI_Tool" | "UI_Surface"));
        let (auto_key, explicit) = match at.opt_bool(fields, &pointer, "auto_tool_call")? {
            Some(value) => ("auto_tool_call", Some(value)),
            None => ("auto_invoke", at.opt_bool(fields, &pointer, "auto_invoke")?),
        };
        if explicit.unwrap_or(ui_type) && owner.spec.contains_key("output_schema") {
            return Err(at.error(
                &format!("{pointer}/{auto_key}"),
                format!("tool {name}: {auto_key} (MozaiksAI calls the tool itself with agent {agent}'s structured output; the default of UI tools) cannot be translated; set {auto_key}: false so the model calls it"),
            ));
        }
        if ui_type && !functions.contains_key(name) {
            let ui = ui_tool(at, fields, &pointer, name, tool_type == Some("UI_Tool"))?;
            let list = owner.spec.entry("ui_tools").or_insert_with(|| json!([]));
            if let Value::Array(list) = list {
                list.push(ui);
            }
            continue;
        }
        if let (None, Some(host)) = (functions.get(name), tool_host) {
            // A Python tool, served by the tool host: one MCP server per agent, its tools
            // allowed by name, the context passed (the host's protocol).
            let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let endpoint = format!("{}/{folder}/mcp", host.url.trim_end_matches('/'));
            let servers = owner.spec.entry("mcp_servers").or_insert_with(|| json!([]));
            if let Value::Array(servers) = servers {
                if servers.is_empty() {
                    servers.push(json!({
                        "endpoint": endpoint, "tools": [], "context": true, "aws_iam": host.aws_iam,
                    }));
                }
                if let Some(Value::Array(tools)) =
                    servers.get_mut(0).and_then(|s| s.get_mut("tools"))
                {
                    if !tools.iter().any(|t| t.as_str() == Some(name)) {
                        tools.push(json!(name));
                    }
                }
            }
            continue;
        }
        let Some(function) = functions.get_mut(name) else {
            let python = at
                .opt_string(fields, &pointer, "file")?
                .map(|f| format!(" (tools/{f})"))
                .unwrap_or_default();
            return Err(at.error(
                &format!("{pointer}/function"),
                format!(
                    "tool {name}: {} defines no DSL function `{name}`; MozaiksAI's Python tools{python} cannot run in this runtime: serve them with the tool host (toolhost/, MOZAIKS_TOOL_HOST_URL), or define `{name}` under `functions:` in {FUNCTIONS} as a DSL task (its input.schema is the tool's arguments)",
                    functions_file.display()
                ),
            ));
        };
        if let (Some(description), Value::Object(task)) =
            (at.opt_string(fields, &pointer, "description")?, function)
        {
            let metadata = task.entry("metadata").or_insert_with(|| json!({}));
            if let Value::Object(metadata) = metadata {
                metadata
                    .entry("description")
                    .or_insert_with(|| Value::String(description.to_owned()));
            }
        }
        let list = owner.spec.entry("tools").or_insert_with(|| json!([]));
        if let Value::Array(list) = list {
            if !list.iter().any(|t| t.as_str() == Some(name)) {
                list.push(Value::String(name.to_owned()));
            }
        }
    }
    Ok(functions)
}

/// `ui_response` triggers → the `context` of the UI tool each names: the variables its answer
/// sets. The tool must be a `UI_Tool` of tools.yaml that this runtime answers (one without a
/// DSL function).
fn attach_ui_triggers(
    dir: &Path,
    triggers: &[UiTrigger],
    agents: &mut [Agent],
) -> Result<(), Error> {
    let mut tools: Vec<&str> = Vec::new();
    for trigger in triggers {
        if !tools.contains(&trigger.tool.as_str()) {
            tools.push(&trigger.tool);
        }
    }
    for tool in tools {
        let mine: Vec<&UiTrigger> = triggers.iter().filter(|t| t.tool == tool).collect();
        let entry = agents.iter_mut().find_map(|agent| {
            agent
                .spec
                .get_mut("ui_tools")?
                .as_array_mut()?
                .iter_mut()
                .find(|t| t["name"] == tool && t["wait"] == true)
        });
        let Some(Value::Object(entry)) = entry else {
            let first = mine
                .first()
                .map(|t| (t.variable.as_str(), t.pointer.as_str()));
            let (variable, pointer) = first.unwrap_or_default();
            return Err(LoadError::new(
                &dir.join("context_variables.yaml"),
                format!("{pointer}/tool"),
                format!("{variable}: the ui_response trigger names tool {tool}, which is not a UI_Tool of tools.yaml that waits for the user's answer (one with `ui` and no DSL function)"),
            ));
        };
        entry.insert("context".into(), Value::String(ui_context(&mine)));
    }
    Ok(())
}

/// A `UI_Tool` (the run waits for the user's answer) or `UI_Surface` (display only) without a
/// DSL function, as an agent's `ui_tools` entry: `ui.component` and `ui.mode`, and
/// `ui_contract`'s `payload_schema` (the model's arguments) and `actions_schema` (each
/// action's `payload_schema` becomes its `schema`, the rest is passed to the UI as written).
fn ui_tool(
    at: &Place<'_>,
    fields: &Map<String, Value>,
    pointer: &str,
    name: &str,
    wait: bool,
) -> Result<Value, Error> {
    let ui_at = format!("{pointer}/ui");
    let Some(ui) = fields.get("ui").filter(|u| !u.is_null()) else {
        return Err(at.error(
            &ui_at,
            format!("UI tool {name} needs `ui: {{ component }}` (what the chat UI renders)"),
        ));
    };
    let ui = at.object(ui, &ui_at)?;
    at.known(
        ui,
        &ui_at,
        &["component", "mode", "workflow_primitive", "realization"],
    )?;
    let component = at.string(ui, &ui_at, "component")?;
    let mut tool = json!({ "name": name, "component": component, "wait": wait });
    if let Some(mode) = at.opt_string(ui, &ui_at, "mode")? {
        tool["mode"] = json!(mode);
    }
    if let Some(description) = at.opt_string(fields, pointer, "description")? {
        tool["description"] = json!(description);
    }
    let contract_at = format!("{pointer}/ui_contract");
    if let Some(contract) = fields.get("ui_contract").filter(|c| !c.is_null()) {
        let contract = at.object(contract, &contract_at)?;
        at.known(
            contract,
            &contract_at,
            &["surface_kind", "payload_schema", "actions_schema"],
        )?;
        if let Some(schema) = contract.get("payload_schema").filter(|s| !s.is_null()) {
            tool["payload_schema"] = schema.clone();
        }
        if let Some(actions) = contract.get("actions_schema").filter(|a| !a.is_null()) {
            let list_at = format!("{contract_at}/actions_schema");
            let mut out = Vec::new();
            for (i, action) in at.list(actions, &list_at)?.iter().enumerate() {
                let mut action = at.object(action, &format!("{list_at}/{i}"))?.clone();
                if let Some(schema) = action.remove("payload_schema") {
                    action.insert("schema".into(), schema);
                }
                out.push(Value::Object(action));
            }
            tool["actions"] = Value::Array(out);
        }
    }
    Ok(tool)
}
