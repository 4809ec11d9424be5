//! Loading `call: agents`: the `with` map becomes an [`AgentsCall`], or an error naming the
//! JSON pointer of the offending place.

use super::{
    Agent, AgentsCall, Condition, McpTools, ModelSpec, ProviderKind, Selection, SpeakerSelection,
    Target, Tool, ToolSpec, Transfer, UiTool,
};
use crate::agents::ContextTrigger;
use crate::expr::{Position, Scope, Template};
use crate::load::{check_fields, child, describe, map, required, required_str, Invalid, Loader};
use crate::schema::Schema;
use serde_json::{json, Map, Value};

/// Longest agent name: `transfer_to_<name>` must fit the 64 characters of a tool name.
const MAX_AGENT_NAME: usize = 52;
/// Names that are handoff targets, not agents.
const RESERVED: [&str; 2] = ["user", "terminate"];

/// One handoff entry, parsed but not yet attached to its agent.
struct Handoff {
    from: usize,
    pointer: String,
    kind: HandoffKind,
}

enum HandoffKind {
    /// `to` without `when`: the model decides (a transfer tool).
    Model {
        target: Target,
        target_name: String,
        description: Option<String>,
    },
    /// `to` with `when`.
    Condition { condition: Condition, pre: bool },
    /// `after_work`.
    AfterWork(Target),
}

impl Loader<'_> {
    /// `call: agents`'s `with`; `task` is the task's pointer.
    pub(crate) fn agents(
        &self,
        with: &Map<String, Value>,
        task: &str,
        scope: &Scope,
    ) -> Result<AgentsCall, Invalid> {
        let pointer = &child(task, "with");
        check_fields(
            with,
            pointer,
            "`call: agents` arguments",
            &[
                "agents",
                "handoffs",
                "initial_agent",
                "initial_message",
                "reply_message",
                "context",
                "reply_context",
                "max_turns",
                "context_triggers",
                "speaker_selection",
            ],
        )?;
        let selection = speaker_selection(
            with.get("speaker_selection"),
            &child(pointer, "speaker_selection"),
        )?;
        let context_triggers = self.context_triggers(
            with.get("context_triggers"),
            &child(pointer, "context_triggers"),
            scope,
        )?;
        let agents_at = child(pointer, "agents");
        let Value::Array(items) = required(with, pointer, "agents")? else {
            return Err(Invalid::new(
                &agents_at,
                "`agents` must be a list of agents, each `{ name, instructions, … }`",
            ));
        };
        if items.is_empty() {
            return Err(Invalid::new(&agents_at, "`agents` lists no agent; add one"));
        }
        // Names first: handoffs and targets refer to agents by name.
        let mut names: Vec<&str> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let at = child(&agents_at, &index.to_string());
            let fields = map(item, &at, "an agent")?;
            let name = required_str(fields, &at, "name", "Triage")?;
            check_agent_name(name, &child(&at, "name"))?;
            if let Some(first) = names.iter().position(|other| *other == name) {
                return Err(Invalid::new(
                    &child(&at, "name"),
                    format!("agent name `{name}` is already used by agent {first}; agent names must be unique"),
                ));
            }
            names.push(name);
        }
        let handoffs = match with.get("handoffs") {
            None => Vec::new(),
            Some(value) => self.handoffs(value, &child(pointer, "handoffs"), &names, scope)?,
        };
        // A handoff to the user, or a UI tool that waits for the user's answer, can end the
        // run `waiting`.
        let ui_waits = with
            .get("agents")
            .and_then(Value::as_array)
            .and_then(|agents| {
                agents.iter().enumerate().find_map(|(i, agent)| {
                    let tools = agent.get("ui_tools")?.as_array()?;
                    let j = tools
                        .iter()
                        .position(|t| t.get("wait") != Some(&Value::Bool(false)))?;
                    let at = child(&child(pointer, "agents"), &i.to_string());
                    Some(child(&child(&at, "ui_tools"), &j.to_string()))
                })
            });
        let to_user = handoffs
            .iter()
            .find(|h| h.targets_user())
            .map(|h| h.pointer.clone())
            .or(ui_waits)
            .or_else(|| {
                // A selection that may pick the user.
                let user = with.get("speaker_selection")?.get("user")?;
                (user == &Value::Bool(true))
                    .then(|| child(&child(pointer, "speaker_selection"), "user"))
            })
            .or_else(|| {
                // A tool host's tool may ask the user (`use_ui_tool`).
                let agents = with.get("agents").and_then(Value::as_array)?;
                agents.iter().enumerate().find_map(|(i, agent)| {
                    let servers = agent.get("mcp_servers")?.as_array()?;
                    let j = servers
                        .iter()
                        .position(|s| s.get("context") == Some(&Value::Bool(true)))?;
                    let at = child(&child(pointer, "agents"), &i.to_string());
                    Some(child(&child(&at, "mcp_servers"), &j.to_string()))
                })
            });
        let mut by_agent: Vec<Vec<Handoff>> = items.iter().map(|_| Vec::new()).collect();
        for handoff in handoffs {
            if let Some(mine) = by_agent.get_mut(handoff.from) {
                mine.push(handoff);
            }
        }
        let mut agents = Vec::with_capacity(items.len());
        for (index, (item, mine)) in items.iter().zip(by_agent).enumerate() {
            let at = child(&agents_at, &index.to_string());
            agents.push(self.agent(item, &at, mine, scope, selection.is_some())?);
        }
        let initial_agent = match with.get("initial_agent") {
            None => 0,
            Some(Value::String(name)) => names.iter().position(|n| n == name).ok_or_else(|| {
                Invalid::new(
                    &child(pointer, "initial_agent"),
                    format!(
                        "`initial_agent` names `{name}`, which is not an agent of this task (agents: {})",
                        names.join(", ")
                    ),
                )
            })?,
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "initial_agent"),
                    format!(
                        "`initial_agent` must be an agent's name; found {}",
                        describe(other)
                    ),
                ))
            }
        };
        let template = |field: &str| {
            with.get(field)
                .map(|value| {
                    self.template(
                        value,
                        Position::TaskDefinition,
                        scope,
                        &child(pointer, field),
                    )
                })
                .transpose()
        };
        let initial_message = template("initial_message")?;
        let reply_message = template("reply_message")?;
        let context = template("context")?;
        let reply_context = template("reply_context")?;
        let max_turns = match with.get("max_turns") {
            None => None,
            Some(value) => Some(positive(value, &child(pointer, "max_turns"), "max_turns")?),
        };
        let waits_at = match to_user {
            None => None,
            Some(handoff) => Some(top_level_index(task).ok_or_else(|| {
                Invalid::new(
                    &handoff,
                    format!(
                        "this handoff hands the conversation back to the user, which ends the run `waiting` until the caller resumes it; \
                         a task that can wait must sit in the workflow's top-level `do` list, and this one is at {task} \
                         (inside a `for`, `fork`, `try`, nested `do` or function) — move it to the top-level `do`"
                    ),
                )
            })?),
        };
        Ok(AgentsCall {
            context_triggers,
            agents: agents.into_boxed_slice(),
            initial_agent,
            initial_message,
            reply_message,
            reply_context,
            context,
            max_turns,
            waits_at,
            selection,
        })
    }

    /// `handoffs`: a list of `{ from, to, description?, when?, scope? }` or `{ from, after_work }`.
    fn handoffs(
        &self,
        value: &Value,
        pointer: &str,
        names: &[&str],
        scope: &Scope,
    ) -> Result<Vec<Handoff>, Invalid> {
        let Value::Array(items) = value else {
            return Err(Invalid::new(
                pointer,
                format!(
                    "`handoffs` must be a list of `{{ from, to, … }}` or `{{ from, after_work }}`; found {}",
                    describe(value)
                ),
            ));
        };
        let mut handoffs: Vec<Handoff> = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let at = child(pointer, &index.to_string());
            let fields = map(item, &at, "a handoff")?;
            check_fields(
                fields,
                &at,
                "a handoff",
                &["from", "to", "description", "when", "scope", "after_work"],
            )?;
            let from_name = required_str(fields, &at, "from", "Triage")?;
            let from = agent_index(names, from_name, &child(&at, "from"), "`from`")?;
            let kind = match (fields.get("to"), fields.get("after_work")) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(Invalid::new(
                        &at,
                        "a handoff has either `to` (with `when` for a condition, else the model decides) or `after_work`, not both and not neither",
                    ))
                }
                (None, Some(target)) => {
                    for field in ["description", "when", "scope"] {
                        if fields.contains_key(field) {
                            return Err(Invalid::new(
                                &child(&at, field),
                                format!("`{field}` belongs to handoffs with `to`; an `after_work` handoff applies after the agent's reply, unconditionally"),
                            ));
                        }
                    }
                    let (target, _) = target_of(target, names, &child(&at, "after_work"))?;
                    if let Some(other) = handoffs
                        .iter()
                        .find(|h| h.from == from && matches!(h.kind, HandoffKind::AfterWork(_)))
                    {
                        return Err(Invalid::new(
                            &child(&at, "after_work"),
                            format!(
                                "agent `{from_name}` already has an `after_work` at {}; an agent has at most one",
                                other.pointer
                            ),
                        ));
                    }
                    HandoffKind::AfterWork(target)
                }
                (Some(to), None) => {
                    let (target, target_name) = target_of(to, names, &child(&at, "to"))?;
                    let description = match fields.get("description") {
                        None => None,
                        Some(Value::String(text)) => Some(text.clone()),
                        Some(other) => {
                            return Err(Invalid::new(
                                &child(&at, "description"),
                                format!("`description` must be a string; found {}", describe(other)),
                            ))
                        }
                    };
                    match fields.get("when") {
                        None => {
                            if fields.contains_key("scope") {
                                return Err(Invalid::new(
                                    &child(&at, "scope"),
                                    "`scope` applies to handoffs with `when`; without `when` the model decides the handoff",
                                ));
                            }
                            if let Some(other) = handoffs.iter().find(|h| {
                                h.from == from
                                    && matches!(&h.kind, HandoffKind::Model { target: t, .. } if *t == target)
                            }) {
                                return Err(Invalid::new(
                                    &at,
                                    format!(
                                        "agent `{from_name}` already hands off to `{target_name}` by the model's decision at {}",
                                        other.pointer
                                    ),
                                ));
                            }
                            HandoffKind::Model {
                                target,
                                target_name,
                                description,
                            }
                        }
                        Some(when) => {
                            let when = self.expr_field_any(when, &child(&at, "when"), scope)?;
                            let pre = match fields.get("scope").map(|s| (s, s.as_str())) {
                                None | Some((_, Some("post"))) => false,
                                Some((_, Some("pre"))) => true,
                                Some((other, _)) => {
                                    return Err(Invalid::new(
                                        &child(&at, "scope"),
                                        format!(
                                            "`scope` must be `pre` (checked before the agent replies) or `post` (after; the default); found {}",
                                            describe(other)
                                        ),
                                    ))
                                }
                            };
                            HandoffKind::Condition {
                                condition: Condition { when, target },
                                pre,
                            }
                        }
                    }
                }
            };
            handoffs.push(Handoff {
                from,
                pointer: at,
                kind,
            });
        }
        Ok(handoffs)
    }

    /// `context_triggers`: `[{ variable, when }]` — once `when` holds, `variable` is `true`.
    fn context_triggers(
        &self,
        value: Option<&Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<Box<[ContextTrigger]>, Invalid> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(Box::default());
        };
        let Value::Array(items) = value else {
            return Err(Invalid::new(
                pointer,
                format!(
                    "`context_triggers` must be a list of `{{ variable, when }}`; found {}",
                    describe(value)
                ),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = child(pointer, &i.to_string());
                let fields = map(item, &at, "a context trigger")?;
                check_fields(fields, &at, "a context trigger", &["variable", "when"])?;
                let variable = required_str(fields, &at, "variable", "ready")?.to_owned();
                let when = self.expr_field_any(
                    required(fields, &at, "when")?,
                    &child(&at, "when"),
                    scope,
                )?;
                Ok(ContextTrigger { variable, when })
            })
            .collect()
    }

    /// A `when`: a runtime expression.
    fn expr_field_any(
        &self,
        value: &Value,
        pointer: &str,
        scope: &Scope,
    ) -> Result<crate::expr::Expr, Invalid> {
        match value {
            Value::String(code) => self.expr(code, Position::TaskDefinition, scope, pointer),
            other => Err(Invalid::new(
                pointer,
                format!(
                    "`when` must be a runtime expression such as `${{ .context.ready }}`; found {}",
                    describe(other)
                ),
            )),
        }
    }

    /// One agent, with the handoffs that start from it.
    fn agent(
        &self,
        value: &Value,
        pointer: &str,
        handoffs: Vec<Handoff>,
        scope: &Scope,
        selects: bool,
    ) -> Result<Agent, Invalid> {
        let fields = map(value, pointer, "an agent")?;
        check_fields(
            fields,
            pointer,
            "an agent",
            &[
                "name",
                "instructions",
                "prompt_sections",
                "model",
                "tools",
                "output_schema",
                "max_consecutive_auto_reply",
                "description",
                "context_variables",
                "ui_tools",
                "mcp_servers",
            ],
        )?;
        let name = required_str(fields, pointer, "name", "Triage")?.to_owned();
        let system = match (fields.get("instructions"), fields.get("prompt_sections")) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(Invalid::new(
                    pointer,
                    format!("agent `{name}` needs its instructions: either `instructions` (a string) or `prompt_sections` (a list of `{{ heading, content }}`), not both"),
                ))
            }
            (Some(Value::String(text)), None) => text.clone(),
            (Some(other), None) => {
                return Err(Invalid::new(
                    &child(pointer, "instructions"),
                    format!("`instructions` must be a string; found {}", describe(other)),
                ))
            }
            (None, Some(sections)) => prompt_sections(sections, &child(pointer, "prompt_sections"))?,
        };
        let description = fields
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(description) = fields.get("description") {
            if !description.is_string() {
                return Err(Invalid::new(
                    &child(pointer, "description"),
                    format!(
                        "`description` must be a string; found {}",
                        describe(description)
                    ),
                ));
            }
        }
        let model = match fields.get("model") {
            None => ModelSpec {
                provider: ProviderKind::OpenAi,
                name: None,
                temperature: None,
                top_p: None,
                max_tokens: None,
            },
            Some(value) => model(value, &child(pointer, "model"))?,
        };
        let mut tool_specs = Vec::new();
        let mut tools = Vec::new();
        if let Some(value) = fields.get("tools") {
            let at = child(pointer, "tools");
            let Value::Array(items) = value else {
                return Err(Invalid::new(
                    &at,
                    format!(
                        "`tools` must be a list of function names of `use.functions`; found {}",
                        describe(value)
                    ),
                ));
            };
            for (i, item) in items.iter().enumerate() {
                let item_at = child(&at, &i.to_string());
                let (tool, spec) = self.tool(item, &item_at)?;
                if tools.iter().any(|t: &Tool| t.name == tool.name) {
                    return Err(Invalid::new(
                        &item_at,
                        format!("tool `{}` is listed twice", tool.name),
                    ));
                }
                tools.push(tool);
                tool_specs.push(spec);
            }
        }
        let mut ui_tools = Vec::new();
        if let Some(value) = fields.get("ui_tools") {
            let at = child(pointer, "ui_tools");
            let Value::Array(items) = value else {
                return Err(Invalid::new(
                    &at,
                    format!("`ui_tools` must be a list; found {}", describe(value)),
                ));
            };
            for (i, item) in items.iter().enumerate() {
                let item_at = child(&at, &i.to_string());
                let (tool, spec) = self.ui_tool(item, &item_at, scope)?;
                if tool_specs.iter().any(|t: &ToolSpec| t.name == tool.name) {
                    return Err(Invalid::new(
                        &item_at,
                        format!("tool `{}` is listed twice", tool.name),
                    ));
                }
                ui_tools.push(tool);
                tool_specs.push(spec);
            }
        }
        let mut transfers = Vec::new();
        let mut pre = Vec::new();
        let mut post = Vec::new();
        // Under a pattern, the selection picks when no handoff of the agent's decides.
        let mut after_work = if selects {
            Target::Select
        } else {
            Target::Terminate
        };
        for handoff in handoffs {
            match handoff.kind {
                HandoffKind::Model {
                    target,
                    target_name,
                    description,
                } => {
                    let tool = format!("transfer_to_{target_name}");
                    if tools.iter().any(|t| t.name == tool) {
                        return Err(Invalid::new(
                            &handoff.pointer,
                            format!("agent `{name}` has a tool named `{tool}`, which is also the name of this handoff's transfer tool; rename the function"),
                        ));
                    }
                    let description = description.unwrap_or_else(|| match target {
                        Target::User => "Hand the conversation back to the user, who must answer before it goes on.".to_owned(),
                        Target::Terminate => "End the conversation.".to_owned(),
                        Target::Agent(_) | Target::Select => format!("Transfer the conversation to {target_name}."),
                    });
                    tool_specs.push(ToolSpec {
                        name: tool.clone(),
                        description,
                        parameters: json!({ "type": "object", "properties": {} }),
                    });
                    transfers.push(Transfer { tool, target });
                }
                HandoffKind::Condition {
                    condition,
                    pre: true,
                } => pre.push(condition),
                HandoffKind::Condition {
                    condition,
                    pre: false,
                } => post.push(condition),
                HandoffKind::AfterWork(target) => after_work = target,
            }
        }
        let output_schema = match fields.get("output_schema") {
            None => None,
            Some(document) => {
                let at = child(pointer, "output_schema");
                if !document.is_object() {
                    return Err(Invalid::new(
                        &at,
                        format!(
                            "`output_schema` must be a JSON Schema (a map); found {}",
                            describe(document)
                        ),
                    ));
                }
                Some((document.clone(), Schema::compile_document(document, &at)?))
            }
        };
        let max_consecutive_auto_reply = match fields.get("max_consecutive_auto_reply") {
            None => None,
            Some(value) => Some(positive(
                value,
                &child(pointer, "max_consecutive_auto_reply"),
                "max_consecutive_auto_reply",
            )?),
        };
        let context_variables = match fields.get("context_variables") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(name) if !name.is_empty() => Ok(name.clone()),
                    other => Err(Invalid::new(
                        &child(&child(pointer, "context_variables"), &i.to_string()),
                        format!(
                            "a context variable name is a non-empty string; found {}",
                            describe(other)
                        ),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "context_variables"),
                    format!(
                        "`context_variables` must be a list of context variable names; found {}",
                        describe(other)
                    ),
                ))
            }
        };
        let mcp = match fields.get("mcp_servers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    self.mcp_tools(
                        item,
                        &child(&child(pointer, "mcp_servers"), &i.to_string()),
                        scope,
                    )
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "mcp_servers"),
                    format!(
                    "`mcp_servers` must be a list of {{ endpoint, headers?, tools? }}; found {}",
                    describe(other)
                ),
                ))
            }
        };
        for (i, server) in mcp.iter().enumerate() {
            for tool in server.allow.iter().flatten() {
                if tool_specs.iter().any(|t: &ToolSpec| &t.name == tool) {
                    return Err(Invalid::new(
                        &child(&child(pointer, "mcp_servers"), &i.to_string()),
                        format!("MCP tool `{tool}` has the name of another tool of agent `{name}`; tool names must be unique"),
                    ));
                }
            }
        }
        Ok(Agent {
            name,
            description,
            system,
            context_variables: context_variables.into_boxed_slice(),
            model,
            tools: tools.into_boxed_slice(),
            transfers: transfers.into_boxed_slice(),
            pre: pre.into_boxed_slice(),
            post: post.into_boxed_slice(),
            after_work,
            output_schema,
            max_consecutive_auto_reply,
            tool_specs: tool_specs.into_boxed_slice(),
            ui_tools: ui_tools.into_boxed_slice(),
            mcp: mcp.into_boxed_slice(),
        })
    }

    /// An `mcp_servers` entry: `{ endpoint, headers?, tools?, protocolVersion?, context? }`.
    fn mcp_tools(&self, value: &Value, pointer: &str, scope: &Scope) -> Result<McpTools, Invalid> {
        let fields = map(value, pointer, "an MCP server")?;
        check_fields(
            fields,
            pointer,
            "an MCP server",
            &[
                "endpoint",
                "headers",
                "tools",
                "protocolVersion",
                "context",
                "aws_iam",
            ],
        )?;
        let mut http = fields.clone();
        for own in ["tools", "protocolVersion", "context", "aws_iam"] {
            http.remove(own);
        }
        let server = self.mcp_server(&http, pointer, scope)?;
        let allow = match fields.get("tools") {
            None | Some(Value::Null) => None,
            Some(Value::Array(names)) => Some(
                names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| match name {
                        Value::String(name) if !name.is_empty() => Ok(name.clone()),
                        other => Err(Invalid::new(
                            &child(&child(pointer, "tools"), &i.to_string()),
                            format!("a tool name is a string; found {}", describe(other)),
                        )),
                    })
                    .collect::<Result<Box<[String]>, Invalid>>()?,
            ),
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "tools"),
                    format!(
                        "`tools` lists the tool names the agent may call; found {}",
                        describe(other)
                    ),
                ))
            }
        };
        let protocol_version = match fields.get("protocolVersion") {
            None | Some(Value::Null) => crate::mcp::DEFAULT_PROTOCOL.to_owned(),
            Some(Value::String(v)) if crate::mcp::SPOKEN.contains(&v.as_str()) => v.clone(),
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "protocolVersion"),
                    format!(
                        "protocol version {} is not one this runtime speaks ({})",
                        describe(other),
                        crate::mcp::SPOKEN.join(", ")
                    ),
                ))
            }
        };
        let flag = |key: &str| match fields.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(Invalid::new(
                &child(pointer, key),
                format!("`{key}` must be true or false; found {}", describe(other)),
            )),
        };
        let context = flag("context")?;
        let aws_iam = flag("aws_iam")?;
        Ok(McpTools {
            server,
            allow,
            protocol_version,
            context,
            aws_iam,
            cache: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// A `tools` entry: the name of a function of `use.functions`.
    fn tool(&self, value: &Value, pointer: &str) -> Result<(Tool, ToolSpec), Invalid> {
        let Value::String(name) = value else {
            return Err(Invalid::new(
                pointer,
                format!(
                    "a tool is the name of a function of `use.functions`; found {}",
                    describe(value)
                ),
            ));
        };
        let functions = self.function_names();
        let Some(function) = functions.iter().position(|f| f == name) else {
            return Err(Invalid::new(
                pointer,
                format!(
                    "tool `{name}` is not a function of `use.functions` ({})",
                    if functions.is_empty() {
                        "none is defined".to_owned()
                    } else {
                        format!("defined: {}", functions.join(", "))
                    }
                ),
            ));
        };
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(Invalid::new(
                pointer,
                format!("function `{name}` cannot be offered to a model as a tool: tool names are 1 to 64 ASCII letters, digits, `_` and `-`; rename the function"),
            ));
        }
        let definition = self.function_definition(name);
        let parameters = definition
            .and_then(|d| d.get("input"))
            .and_then(|input| input.get("schema"))
            .and_then(|schema| schema.get("document"))
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object" }));
        if parameters.get("type").and_then(Value::as_str) != Some("object") {
            return Err(Invalid::new(
                pointer,
                format!("function `{name}` is offered as a tool, so its `input.schema` document must describe an object (`type: object`): a model calls tools with named arguments"),
            ));
        }
        let description = definition
            .and_then(|d| d.get("metadata"))
            .and_then(|m| m.get("description"))
            .and_then(Value::as_str)
            .map_or_else(|| format!("Runs the `{name}` function."), str::to_owned);
        Ok((
            Tool {
                name: name.clone(),
                function,
            },
            ToolSpec {
                name: name.clone(),
                description,
                parameters,
            },
        ))
    }
}

impl Handoff {
    /// Whether this handoff can hand the conversation back to the user.
    fn targets_user(&self) -> bool {
        match &self.kind {
            HandoffKind::Model { target, .. } | HandoffKind::AfterWork(target) => {
                *target == Target::User
            }
            HandoffKind::Condition { condition, .. } => condition.target == Target::User,
        }
    }
}

/// The index of the task at `pointer` in the top-level `do` list (`/do/<index>/<name>`).
fn top_level_index(pointer: &str) -> Option<usize> {
    let (index, name) = pointer.strip_prefix("/do/")?.split_once('/')?;
    if name.contains('/') {
        return None;
    }
    index.parse().ok()
}

/// Agent names: `[A-Za-z0-9_-]`, 1 to 52 characters, not a reserved target.
fn check_agent_name(name: &str, pointer: &str) -> Result<(), Invalid> {
    let valid = (1..=MAX_AGENT_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(Invalid::new(
            pointer,
            format!("`{name}` is not a valid agent name: use 1 to {MAX_AGENT_NAME} ASCII letters, digits, `_` and `-` (it becomes part of a tool name)"),
        ));
    }
    if RESERVED.contains(&name) {
        return Err(Invalid::new(
            pointer,
            format!("`{name}` is a handoff target, so it cannot name an agent; rename the agent"),
        ));
    }
    Ok(())
}

/// The index of agent `name`, or an error naming the agents.
fn agent_index(names: &[&str], name: &str, pointer: &str, what: &str) -> Result<usize, Invalid> {
    names.iter().position(|n| *n == name).ok_or_else(|| {
        Invalid::new(
            pointer,
            format!(
                "{what} names `{name}`, which is not an agent of this task (agents: {})",
                names.join(", ")
            ),
        )
    })
}

/// A handoff target: an agent, `user` or `terminate`; and its name.
fn target_of(value: &Value, names: &[&str], pointer: &str) -> Result<(Target, String), Invalid> {
    let Value::String(name) = value else {
        return Err(Invalid::new(
            pointer,
            format!(
                "a handoff target is an agent's name, `user` or `terminate`; found {}",
                describe(value)
            ),
        ));
    };
    let target = match name.as_str() {
        "user" => Target::User,
        "terminate" => Target::Terminate,
        agent => Target::Agent(
            names
                .iter()
                .position(|n| *n == agent)
                .ok_or_else(|| {
                    Invalid::new(
                        pointer,
                        format!(
                            "the handoff target `{agent}` is not an agent of this task (agents: {}), `user` or `terminate`",
                            names.join(", ")
                        ),
                    )
                })?,
        ),
    };
    Ok((target, name.clone()))
}

/// `prompt_sections`: `[{ id?, heading, content }]`, joined as Markdown sections.
fn prompt_sections(value: &Value, pointer: &str) -> Result<String, Invalid> {
    let Value::Array(items) = value else {
        return Err(Invalid::new(
            pointer,
            format!(
                "`prompt_sections` must be a list of `{{ heading, content }}`; found {}",
                describe(value)
            ),
        ));
    };
    if items.is_empty() {
        return Err(Invalid::new(
            pointer,
            "`prompt_sections` is empty; add a section",
        ));
    }
    let mut sections = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = child(pointer, &index.to_string());
        let fields = map(item, &at, "a prompt section")?;
        check_fields(
            fields,
            &at,
            "a prompt section",
            &["id", "heading", "content"],
        )?;
        if let Some(id) = fields.get("id") {
            if !id.is_string() {
                return Err(Invalid::new(&child(&at, "id"), "`id` must be a string"));
            }
        }
        let content = required_str(fields, &at, "content", "You answer order questions.")?;
        match fields.get("heading") {
            None => sections.push(content.to_owned()),
            Some(Value::String(heading)) if heading.is_empty() => sections.push(content.to_owned()),
            Some(Value::String(heading)) => sections.push(format!("## {heading}\n{content}")),
            Some(other) => {
                return Err(Invalid::new(
                    &child(&at, "heading"),
                    format!("`heading` must be a string; found {}", describe(other)),
                ))
            }
        }
    }
    Ok(sections.join("\n\n"))
}

/// `model`: a model name, or `{ provider, name, temperature, top_p, max_tokens }`.
fn model(value: &Value, pointer: &str) -> Result<ModelSpec, Invalid> {
    let fields = match value {
        Value::String(name) if !name.is_empty() => {
            return Ok(ModelSpec {
                provider: ProviderKind::OpenAi,
                name: Some(name.clone()),
                temperature: None,
                top_p: None,
                max_tokens: None,
            })
        }
        Value::Object(fields) => fields,
        other => {
            return Err(Invalid::new(
                pointer,
                format!("`model` must be a model name or `{{ provider, name, temperature, max_tokens }}`; found {}", describe(other)),
            ))
        }
    };
    check_fields(
        fields,
        pointer,
        "`model`",
        &["provider", "name", "temperature", "top_p", "max_tokens"],
    )?;
    let provider = match fields.get("provider").map(|p| (p, p.as_str())) {
        None | Some((_, Some("openai"))) => ProviderKind::OpenAi,
        Some((_, Some("bedrock"))) => ProviderKind::Bedrock,
        Some((other, _)) => {
            return Err(Invalid::new(
                &child(pointer, "provider"),
                format!(
                    "the provider {} is not supported; this runtime calls `openai` (any OpenAI-compatible Chat Completions endpoint) and `bedrock` (Amazon Bedrock's Converse API)",
                    match other {
                        Value::String(name) => format!("`{name}`"),
                        other => describe(other).to_owned(),
                    }
                ),
            ))
        }
    };
    let name = match fields.get("name") {
        None => None,
        Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
        Some(other) => {
            return Err(Invalid::new(
                &child(pointer, "name"),
                format!(
                    "`name` must be a non-empty model name; found {}",
                    describe(other)
                ),
            ))
        }
    };
    if provider == ProviderKind::Bedrock && name.is_none() {
        return Err(Invalid::new(
            pointer,
            "`name` is required with provider `bedrock` (the host's default model is an `openai` model): give a Bedrock model id or inference profile, e.g. `anthropic.claude-3-5-haiku-20241022-v1:0` or `us.amazon.nova-lite-v1:0`",
        ));
    }
    let number = |field: &str, max: f64| -> Result<Option<f64>, Invalid> {
        match fields.get(field) {
            None => Ok(None),
            Some(value) => match value.as_f64() {
                Some(n) if (0.0..=max).contains(&n) => Ok(Some(n)),
                _ => Err(Invalid::new(
                    &child(pointer, field),
                    format!("`{field}` must be a number from 0 to {max}"),
                )),
            },
        }
    };
    Ok(ModelSpec {
        provider,
        name,
        temperature: number("temperature", 2.0)?,
        top_p: number("top_p", 1.0)?,
        max_tokens: match fields.get("max_tokens") {
            None => None,
            Some(value) => Some(positive(
                value,
                &child(pointer, "max_tokens"),
                "max_tokens",
            )?),
        },
    })
}

/// A positive integer field.
fn positive(value: &Value, pointer: &str, field: &str) -> Result<u64, Invalid> {
    value.as_u64().filter(|n| *n > 0).ok_or_else(|| {
        Invalid::new(
            pointer,
            format!(
                "`{field}` must be a positive integer; found {}",
                describe(value)
            ),
        )
    })
}

impl Loader<'_> {
    /// One `ui_tools` entry, and how the model is offered it.
    fn ui_tool(
        &self,
        value: &Value,
        pointer: &str,
        scope: &Scope,
    ) -> Result<(UiTool, ToolSpec), Invalid> {
        let fields = map(value, pointer, "a UI tool")?;
        check_fields(
            fields,
            pointer,
            "a UI tool",
            &[
                "name",
                "description",
                "component",
                "mode",
                "payload_schema",
                "actions",
                "wait",
                "context",
            ],
        )?;
        let name = required_str(fields, pointer, "name", "request_approval")?.to_owned();
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(Invalid::new(
                &child(pointer, "name"),
                format!(
                    "UI tool `{name}`: tool names are 1 to 64 ASCII letters, digits, `_` and `-`"
                ),
            ));
        }
        let component = required_str(fields, pointer, "component", "ApprovalCard")?.to_owned();
        let text = |key: &str| match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(Invalid::new(
                &child(pointer, key),
                format!("`{key}` must be a string; found {}", describe(other)),
            )),
        };
        let mode = text("mode")?.unwrap_or_else(|| "inline".to_owned());
        let description = text("description")?
            .unwrap_or_else(|| format!("Ask the user through the chat UI ({component})."));
        let wait = match fields.get("wait") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(wait)) => *wait,
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "wait"),
                    format!("`wait` must be true or false; found {}", describe(other)),
                ))
            }
        };
        let schema = |document: Option<&Value>, at: &str| -> Result<Option<Schema>, Invalid> {
            match document {
                None | Some(Value::Null) => Ok(None),
                Some(document @ Value::Object(_)) => {
                    Ok(Some(Schema::compile_document(document, at)?))
                }
                Some(other) => Err(Invalid::new(
                    at,
                    format!(
                        "a JSON Schema (a map) is expected; found {}",
                        describe(other)
                    ),
                )),
            }
        };
        let payload_at = child(pointer, "payload_schema");
        let payload = schema(fields.get("payload_schema"), &payload_at)?;
        let parameters = match fields.get("payload_schema") {
            Some(document @ Value::Object(_)) => document.clone(),
            _ => json!({ "type": "object" }),
        };
        let mut actions = Vec::new();
        match fields.get("actions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = child(&child(pointer, "actions"), &i.to_string());
                    let action = map(item, &at, "an action")?;
                    let id = required_str(action, &at, "id", "approve")?;
                    if actions
                        .iter()
                        .any(|(a, _): &(Value, Option<Schema>)| a["id"] == id)
                    {
                        return Err(Invalid::new(
                            &child(&at, "id"),
                            format!("action `{id}` is listed twice"),
                        ));
                    }
                    let answer = schema(action.get("schema"), &child(&at, "schema"))?;
                    actions.push((item.clone(), answer));
                }
            }
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "actions"),
                    format!(
                        "`actions` must be a list of {{ id, schema?, … }}; found {}",
                        describe(other)
                    ),
                ))
            }
        }
        let context = match fields.get("context") {
        None | Some(Value::Null) => None,
        Some(Value::String(code)) => Some(Template::Expr(self.expr(
            code,
            Position::TaskDefinition,
            scope,
            &child(pointer, "context"),
        )?)),
        Some(other) => {
            return Err(Invalid::new(
                &child(pointer, "context"),
                format!(
                    "`context` must be a runtime expression producing an object from the user's answer, such as `${{ {{approved: .approved}} }}`; found {}",
                    describe(other)
                ),
            ))
        }
    };
        let spec = ToolSpec {
            name: name.clone(),
            description,
            parameters,
        };
        Ok((
            UiTool {
                name,
                component,
                mode,
                payload,
                actions,
                wait,
                context,
            },
            spec,
        ))
    }
}

/// `speaker_selection`: `auto`, `round_robin` or `random`, or `{ mode, user?, model? }`.
fn speaker_selection(
    value: Option<&Value>,
    pointer: &str,
) -> Result<Option<SpeakerSelection>, Invalid> {
    let (mode, fields) = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(mode)) => (mode.as_str(), None),
        Some(Value::Object(fields)) => {
            check_fields(fields, pointer, "`speaker_selection`", &["mode", "user", "model"])?;
            (required_str(fields, pointer, "mode", "auto")?, Some(fields))
        }
        Some(other) => {
            return Err(Invalid::new(
                pointer,
                format!("`speaker_selection` must be auto, round_robin, random or {{ mode, user?, model? }}; found {}", describe(other)),
            ))
        }
    };
    let mode = match mode {
        "auto" => Selection::Auto,
        "round_robin" => Selection::RoundRobin,
        "random" => Selection::Random,
        other => {
            return Err(Invalid::new(
                pointer,
                format!("speaker selection `{other}` is unknown: use auto (a model picks), round_robin or random"),
            ))
        }
    };
    let user = match fields.and_then(|f| f.get("user")) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(user)) => *user,
        Some(other) => {
            return Err(Invalid::new(
                &child(pointer, "user"),
                format!("`user` must be true or false; found {}", describe(other)),
            ))
        }
    };
    let model = match fields.and_then(|f| f.get("model")) {
        None | Some(Value::Null) => ModelSpec {
            provider: ProviderKind::OpenAi,
            name: None,
            temperature: None,
            top_p: None,
            max_tokens: None,
        },
        Some(value) => model(value, &child(pointer, "model"))?,
    };
    Ok(Some(SpeakerSelection { mode, user, model }))
}
