//! The MCP tools of agents (`mcp_servers`): discovered with `tools/list` (cached per process for
//! [`MCP_TOOLS_TTL`](super::MCP_TOOLS_TTL), by URL and headers), offered to the model beside the
//! agent's other tools, and called with `tools/call` — one MCP session per call (initialize,
//! the call, the session's end), so nothing is held between model turns or invocations.
//!
//! A tool's failure (a JSON-RPC error, `isError: true`, a transport failure) goes back to the
//! model as the tool's result `{"error": {…}}`, as a DSL function's fault does; a server whose
//! tools cannot be listed faults the task (`runtime`), and one that lacks a tool of the
//! allow-list, or offers a name another tool of the agent has, faults it (`configuration`).
//!
//! With `context: true` (the MozaiksAI tool host, `toolhost/`), a call's `_meta` carries the
//! conversation's context variables as `mozaiks.ai/context_variables`; the result's `_meta` may
//! hold `mozaiks.ai/context_variables` (updates, merged), `mozaiks.ai/handoff` (the agent to
//! hand off to, or `user` / `terminate`), `mozaiks.ai/ui_surfaces` (shown, as a `UI_Surface`)
//! and `mozaiks.ai/input_request` (`{component, mode, payload}`: the run ends `waiting` with it
//! as its `input_request`; the resume's `ui_response` is sent back by calling the tool again
//! with the same arguments and `mozaiks.ai/ui_responses`, the answers so far, in order).

use super::provider::ToolCall;
use super::run::Place;
use super::state::Conversation;
use super::{Agent, AgentsCall, McpTools, Target, ToolSpec, MCP_TOOLS_TTL};
use crate::error::WorkflowError;
use crate::mcp::{self, ClientInfo, McpFailure, Session, Target as Server};
use crate::run::{expression_error, lock, Runner, Stop};
use jaq_json::Val;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// The `_meta` key of the context variables sent to a `context: true` server and the updates
/// it answers.
pub(crate) const CONTEXT_META: &str = "mozaiks.ai/context_variables";
/// The `_meta` key of a handoff answered by a `context: true` server.
pub(crate) const HANDOFF_META: &str = "mozaiks.ai/handoff";
/// The `_meta` key of a `context: true` server's request for the user's answer.
pub(crate) const INPUT_REQUEST_META: &str = "mozaiks.ai/input_request";
/// The `_meta` key of the surfaces a `context: true` server showed.
pub(crate) const UI_SURFACES_META: &str = "mozaiks.ai/ui_surfaces";
/// The `_meta` key of the user's answers sent when a call is replayed.
pub(crate) const UI_RESPONSES_META: &str = "mozaiks.ai/ui_responses";

impl Runner<'_> {
    /// The server of `tools` evaluated on the task input.
    fn mcp_target(&self, tools: &McpTools, at: &Place<'_>) -> Result<Server, Stop> {
        let target = self
            .eval(
                at.input,
                &Val::Null,
                at.descriptor,
                at.frame.locals,
                |args| tools.server.target(at.input, args),
            )
            .map_err(|e| Stop::Fault(expression_error(at.instance, e)))?;
        if !tools.aws_iam {
            return Ok(target);
        }
        let url = target.url.clone();
        target
            .signed_with(&self.workflow.services.llm.bedrock)
            .map_err(|failure| {
                Stop::Fault(WorkflowError::configuration(
                    at.instance,
                    failure.detail(&url, "tools"),
                ))
            })
    }

    /// The tools of each of `agent`'s MCP servers (from the cache when fresh).
    pub(super) async fn mcp_tool_specs(
        &self,
        agent: &Agent,
        at: &Place<'_>,
    ) -> Result<Vec<Arc<[ToolSpec]>>, Stop> {
        let mut all = Vec::with_capacity(agent.mcp.len());
        for tools in agent.mcp.iter() {
            let target = self.mcp_target(tools, at)?;
            all.push(self.listed(agent, tools, target, at).await?);
        }
        Ok(all)
    }

    /// One server's tools, checked against the allow-list and the agent's other tools.
    async fn listed(
        &self,
        agent: &Agent,
        tools: &McpTools,
        target: Server,
        at: &Place<'_>,
    ) -> Result<Arc<[ToolSpec]>, Stop> {
        let key = format!("{} {:?}", target.url, target.headers);
        if let Some((_, _, specs)) = lock(&tools.cache)
            .iter()
            .find(|(k, when, _)| *k == key && when.elapsed() < MCP_TOOLS_TTL)
        {
            return Ok(specs.clone());
        }
        let url = target.url.clone();
        let http = &self.workflow.services.http;
        let meter = &self.shared.http;
        let listed = async {
            let mut session = Session::open(
                http,
                meter,
                target,
                &tools.protocol_version,
                &ClientInfo::default(),
            )
            .await?;
            let result = session.list_all("tools/list", "tools").await;
            session.close().await;
            result
        }
        .await
        .map_err(|failure| {
            Stop::Fault(WorkflowError::runtime(
                at.instance,
                format!(
                    "agent `{}`: listing the tools of its MCP server failed: {}",
                    agent.name,
                    failure.detail(&url, "tools/list")
                ),
            ))
        })?;
        let at_server = crate::http::display_url(&url);
        let configuration = |message: String| {
            Stop::Fault(WorkflowError::configuration(
                at.instance,
                format!("agent `{}`, MCP server {at_server}: {message}", agent.name),
            ))
        };
        let offered: Vec<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
        if let Some(allow) = &tools.allow {
            if let Some(missing) = allow.iter().find(|name| !offered.contains(&name.as_str())) {
                return Err(configuration(format!(
                    "the server offers no tool `{missing}` (it offers: {})",
                    offered.join(", ")
                )));
            }
        }
        let mut specs = Vec::new();
        for tool in &listed {
            let Some(name) = tool["name"].as_str() else {
                continue;
            };
            if tools
                .allow
                .as_ref()
                .is_some_and(|allow| !allow.iter().any(|a| a == name))
            {
                continue;
            }
            let valid = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(configuration(format!(
                    "tool `{}` has a name models do not accept (1 to 64 ASCII letters, digits, `_` and `-`); leave it out with `tools`",
                    crate::value::truncate(name, 80)
                )));
            }
            if agent.tool_specs.iter().any(|t| t.name == name) {
                return Err(configuration(format!(
                    "tool `{name}` has the name of another tool of the agent; leave it out with `tools`"
                )));
            }
            let parameters = match tool.get("inputSchema") {
                Some(schema @ Value::Object(_)) => schema.clone(),
                _ => json!({ "type": "object" }),
            };
            specs.push(ToolSpec {
                name: name.to_owned(),
                description: tool["description"].as_str().unwrap_or_default().to_owned(),
                parameters,
            });
        }
        let specs: Arc<[ToolSpec]> = specs.into();
        let mut cache = lock(&tools.cache);
        cache.retain(|(k, when, _)| *k != key && when.elapsed() < MCP_TOOLS_TTL);
        cache.push((key, Instant::now(), specs.clone()));
        Ok(specs)
    }

    /// Answers a call of one of `agent`'s MCP tools: the tool message's content (`None` when
    /// the run is to wait for the user, see [`Conversation::ui_replay`]) and the handoff it
    /// asks for; `None` when no server of the agent offers the tool.
    pub(super) async fn mcp_tool_call(
        &self,
        call: &AgentsCall,
        agent: &Agent,
        tool_call: &ToolCall,
        conversation: &mut Conversation,
        at: &Place<'_>,
    ) -> Result<Option<Answer>, Stop> {
        if agent.mcp.is_empty() {
            return Ok(None);
        }
        let name = &tool_call.function.name;
        let lists = self.mcp_tool_specs(agent, at).await?;
        let Some(server) = lists
            .iter()
            .position(|specs| specs.iter().any(|s| &s.name == name))
        else {
            return Ok(None);
        };
        let arguments: Value = match serde_json::from_str(&tool_call.function.arguments) {
            Ok(Value::Object(arguments)) => Value::Object(arguments),
            Ok(_) => {
                return Ok(Some(refusal(
                    at.instance,
                    format!("tool `{name}`: the arguments must be a JSON object"),
                )))
            }
            Err(e) => {
                return Ok(Some(refusal(
                    at.instance,
                    format!("tool `{name}`: the arguments are not JSON: {e}"),
                )))
            }
        };
        let pending = Pending {
            server,
            tool: name.clone(),
            tool_call_id: tool_call.id.clone(),
            arguments,
            answers: Vec::new(),
        };
        self.mcp_invoke(call, agent, pending, conversation, at)
            .await
            .map(Some)
    }

    /// Resumes the MCP tool call the run waited on with the user's `answer`: the call again,
    /// with the answers so far.
    pub(super) async fn mcp_replay(
        &self,
        call: &AgentsCall,
        replay: Value,
        answer: Value,
        conversation: &mut Conversation,
        at: &Place<'_>,
    ) -> Result<(Option<String>, Option<Target>, String), Stop> {
        let broken = || {
            Stop::Fault(WorkflowError::runtime(
                at.instance,
                "the waiting MCP tool call cannot be replayed: its record is incomplete".into(),
            ))
        };
        let mut pending: Pending = serde_json::from_value(replay).map_err(|_| broken())?;
        let Some(agent) = call
            .agent(&conversation.agent)
            .and_then(|i| call.agents.get(i))
        else {
            return Err(broken());
        };
        if agent.mcp.get(pending.server).is_none() {
            return Err(broken());
        }
        pending.answers.push(answer);
        let id = pending.tool_call_id.clone();
        let (content, target) = self
            .mcp_invoke(call, agent, pending, conversation, at)
            .await?;
        Ok((content, target, id))
    }

    /// Calls the tool of `pending` and reads its answer.
    async fn mcp_invoke(
        &self,
        call: &AgentsCall,
        agent: &Agent,
        pending: Pending,
        conversation: &mut Conversation,
        at: &Place<'_>,
    ) -> Result<Answer, Stop> {
        let Some(tools) = agent.mcp.get(pending.server) else {
            return Ok(refusal(
                at.instance,
                format!("tool `{}` is not available", pending.tool),
            ));
        };
        let name = pending.tool.clone();
        let mut params = json!({ "name": name, "arguments": pending.arguments });
        if tools.context {
            params["_meta"] = json!({ CONTEXT_META: conversation.context_variables });
            if !pending.answers.is_empty() {
                params["_meta"][UI_RESPONSES_META] = Value::Array(pending.answers.clone());
            }
        }
        let target = self.mcp_target(tools, at)?;
        let url = target.url.clone();
        let http = &self.workflow.services.http;
        let meter = &self.shared.http;
        let result = async {
            let mut session = Session::open(
                http,
                meter,
                target,
                &tools.protocol_version,
                &ClientInfo::default(),
            )
            .await?;
            let result = session.request("tools/call", Some(params)).await;
            session.close().await;
            result
        }
        .await;
        let result = match result {
            Ok(result) => result,
            Err(failure) => {
                let error = tool_failure(at.instance, &failure, &url, &name);
                return Ok((Some(json!({ "error": error }).to_string()), None));
            }
        };
        if !tools.context {
            return Ok((Some(mcp::tool_result_for_model(&result)), None));
        }
        let meta = &result["_meta"];
        if let Some(Value::Object(updates)) = meta.get(CONTEXT_META) {
            conversation
                .context_variables
                .extend(updates.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(Value::Array(surfaces)) = meta.get(UI_SURFACES_META) {
            for surface in surfaces {
                conversation.ui_surfaces.push(json!({
                    "tool": name, "agent": agent.name,
                    "component": surface["component"], "mode": surface["mode"],
                    "payload": surface["payload"],
                }));
            }
        }
        if let Some(request @ Value::Object(_)) = meta.get(INPUT_REQUEST_META) {
            if conversation.input_request.is_some() {
                return Ok(refusal(at.instance, "one UI interaction at a time: this call was not shown; call it again after the user answers the first".into()));
            }
            conversation.input_request = Some(json!({
                "tool": name, "tool_call_id": pending.tool_call_id, "agent": agent.name,
                "component": request["component"], "mode": request["mode"],
                "payload": request["payload"],
            }));
            conversation.ui_replay = serde_json::to_value(&pending).ok();
            return Ok((None, None));
        }
        let mut target = None;
        if let Some(to) = meta.get(HANDOFF_META).and_then(Value::as_str) {
            target = match to {
                "user" => Some(Target::User),
                "terminate" => Some(Target::Terminate),
                agent_name => call.agent(agent_name).map(Target::Agent),
            };
            if target.is_none() {
                return Ok(refusal(
                    at.instance,
                    format!(
                    "tool `{name}` handed off to `{}`, which is not an agent of this conversation",
                    crate::value::truncate(to, 60)
                ),
                ));
            }
        }
        Ok((Some(mcp::tool_result_for_model(&result)), target))
    }
}

/// A tool message's content (`None`: the run waits) and the handoff it asks for.
pub(super) type Answer = (Option<String>, Option<Target>);

/// An MCP tool call, as kept while the run waits on its UI request.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pending {
    /// Index into the agent's `mcp_servers`.
    server: usize,
    tool: String,
    tool_call_id: String,
    arguments: Value,
    /// The user's answers to its `use_ui_tool` calls so far.
    answers: Vec<Value>,
}

/// A tool call refused before it ran, as the tool's error.
fn refusal(instance: &str, detail: String) -> Answer {
    let error = WorkflowError::validation(instance, detail);
    (Some(json!({ "error": error }).to_string()), None)
}

/// A failed MCP tool call as the tool's error the model reads.
fn tool_failure(instance: &str, failure: &McpFailure, url: &url::Url, name: &str) -> WorkflowError {
    WorkflowError::runtime(
        instance,
        format!("tool `{name}`: {}", failure.detail(url, "tools/call")),
    )
}
