//! Running `call: agents`: the conversation loop (see the module docs of [`super`]).

use super::mcp_tools::Answer;
use super::provider::{self, ChatReply, ChatRequest, Message, ProviderError, ToolCall};
use super::state::{Conversation, Suspension};
use super::{Agent, AgentsCall, Condition, Target, STRUCTURED_REASKS};
use crate::error::WorkflowError;
use crate::expr::Template;
use crate::run::{expression_error, lock, truthy, Frame, LlmCall, Runner, Stop};
use crate::value::{from_json, to_json, truncate};
use jaq_json::Val;
use serde_json::{json, Map, Value};
use std::time::SystemTime;

/// What a waiting agents task needs to go on.
#[derive(Debug)]
pub(crate) struct Resume {
    /// The conversation as it stopped.
    pub(crate) conversation: Conversation,
    /// The caller's new input (`reply_message`, else `initial_message`, makes the user's reply
    /// of it).
    pub(crate) reply: Val,
}

/// Where the task's evaluations happen: its instance, `$input`, `$task` and frame.
#[derive(Clone, Copy)]
pub(super) struct Place<'a> {
    pub(super) instance: &'a str,
    pub(super) input: &'a Val,
    pub(super) descriptor: &'a Val,
    pub(super) frame: Frame<'a>,
}

impl<'r> Runner<'r> {
    /// `call: agents`: runs (or resumes) the conversation; its output, or a [`Stop::Wait`]
    /// when it hands back to the user.
    pub(crate) async fn agents(
        &self,
        call: &'r AgentsCall,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
        resume: Option<&Resume>,
    ) -> Result<Val, Stop> {
        let place = Place {
            instance,
            input,
            descriptor,
            frame,
        };
        // A handoff the resumed MCP tool call asked for.
        let mut resumed_target = None;
        let mut conversation = match resume {
            None => self.open(call, place)?,
            Some(resume) if resume.conversation.ui_replay.is_some() => {
                let mut conversation = resume.conversation.clone();
                resumed_target = self
                    .ui_replay(call, &mut conversation, &resume.reply, place)
                    .await?;
                conversation
            }
            Some(resume) if resume.conversation.input_request.is_some() => {
                let mut conversation = resume.conversation.clone();
                self.ui_answer(call, &mut conversation, &resume.reply, place)?;
                conversation
            }
            Some(resume) => {
                let mut conversation = resume.conversation.clone();
                let (template, field) = match &call.reply_message {
                    Some(template) => (Some(template), "reply_message"),
                    None => (call.initial_message.as_ref(), "initial_message"),
                };
                let Some(reply) = self.user_message(template, field, &resume.reply, place)? else {
                    return Err(Stop::Fault(WorkflowError::validation(
                        instance,
                        format!("resuming the conversation needs the user's reply, but `{field}` produced nothing from the new input"),
                    )));
                };
                // The resume's own context (`reply_context`), over what the conversation has.
                let updates = self.context_object(
                    call.reply_context.as_ref(),
                    "reply_context",
                    &resume.reply,
                    place,
                )?;
                conversation.context_variables.extend(updates);
                conversation.messages.push(Message::User { content: reply });
                conversation.consecutive = 0;
                conversation
            }
        };
        let Some(mut current) = call.agent(&conversation.agent) else {
            return Err(Stop::Fault(WorkflowError::runtime(
                instance,
                format!(
                    "the conversation's agent `{}` is not an agent of this task",
                    conversation.agent
                ),
            )));
        };
        if conversation.input_request.is_some() {
            // The replayed tool asks the user again.
            self.hand_off(call, Target::User, &mut conversation, &mut current, place)?;
        }
        if let Some(target) = resumed_target {
            if !self.hand_off(call, target, &mut conversation, &mut current, place)? {
                return Ok(from_json(conversation.output()));
            }
        }
        // Handoffs in a row without a reply (`scope: pre` conditions passing it around).
        let mut silent_handoffs = 0;
        while let Some(agent) = call.agents.get(current) {
            self.triggers(call, &mut conversation, place)?;
            if let Some(target) = self.condition(&agent.pre, &conversation, place)? {
                silent_handoffs += 1;
                if silent_handoffs > call.agents.len() {
                    return Err(Stop::Fault(WorkflowError::configuration(
                        instance,
                        format!("the `scope: pre` handoffs pass the conversation from agent to agent without any of them replying (last from `{}`); check their conditions", agent.name),
                    )));
                }
                if self.hand_off(call, target, &mut conversation, &mut current, place)? {
                    continue;
                }
                break;
            }
            if call.max_turns.is_some_and(|max| conversation.turns >= max) {
                break;
            }
            let tool_calls = self.reply(agent, &mut conversation, place).await?;
            silent_handoffs = 0;
            let mut transfer = None;
            for tool_call in &tool_calls {
                if let Some(ui) = agent
                    .ui_tools
                    .iter()
                    .find(|t| t.name == tool_call.function.name)
                {
                    if let Some(content) = ui_call(ui, agent, tool_call, &mut conversation) {
                        conversation.messages.push(Message::Tool {
                            tool_call_id: tool_call.id.clone(),
                            name: tool_call.function.name.clone(),
                            content,
                        });
                    }
                    continue;
                }
                let (content, target) = self
                    .tool_call(call, agent, tool_call, &mut conversation, place)
                    .await?;
                if transfer.is_none() {
                    transfer = target;
                }
                if let Some(content) = content {
                    conversation.messages.push(Message::Tool {
                        tool_call_id: tool_call.id.clone(),
                        name: tool_call.function.name.clone(),
                        content,
                    });
                }
            }
            self.triggers(call, &mut conversation, place)?;
            if conversation.input_request.is_some() {
                // A UI tool waits for the user's answer: the run waits, whatever else the
                // turn asked for.
                self.hand_off(call, Target::User, &mut conversation, &mut current, place)?;
            }
            let next = match transfer {
                Some(target) => Some(target),
                None => match self.condition(&agent.post, &conversation, place)? {
                    Some(target) => Some(target),
                    None if tool_calls.is_empty() => Some(agent.after_work),
                    None => agent
                        .max_consecutive_auto_reply
                        .filter(|max| conversation.consecutive >= *max)
                        .map(|_| agent.after_work),
                },
            };
            let next = match next {
                // `max_turns` reached: nobody is picked (no model call for nothing).
                Some(Target::Select)
                    if call.max_turns.is_some_and(|max| conversation.turns >= max) =>
                {
                    Some(Target::Terminate)
                }
                Some(Target::Select) => Some(
                    self.select_speaker(call, &conversation, current, place)
                        .await?,
                ),
                other => other,
            };
            if let Some(target) = next {
                if !self.hand_off(call, target, &mut conversation, &mut current, place)? {
                    break;
                }
            }
        }
        Ok(from_json(conversation.output()))
    }

    /// The user's answer to the MCP tool's UI request the conversation waits on (the resume
    /// input's `ui_response`, an object): the tool called again with it; its result becomes
    /// the tool message. Returns the handoff the tool asks for.
    async fn ui_replay(
        &self,
        call: &AgentsCall,
        conversation: &mut Conversation,
        reply: &Val,
        place: Place<'_>,
    ) -> Result<Option<Target>, Stop> {
        let answer = to_json(reply)
            .ok()
            .and_then(|input| input.get("ui_response").cloned());
        let Some(answer @ Value::Object(_)) = answer else {
            let tool = conversation
                .input_request
                .as_ref()
                .and_then(|r| r["tool"].as_str())
                .unwrap_or_default()
                .to_owned();
            return Err(Stop::Fault(WorkflowError::validation(
                place.instance,
                format!("the run waits for the user's answer to tool `{tool}`: resume with the answer as `ui_response` (an object) in the input"),
            )));
        };
        let replay = conversation.ui_replay.take().unwrap_or_default();
        let request = conversation.input_request.take();
        let tool = request
            .as_ref()
            .and_then(|r| r["tool"].as_str())
            .unwrap_or_default()
            .to_owned();
        let (content, target, tool_call_id) = self
            .mcp_replay(call, replay, answer, conversation, &place)
            .await?;
        if let Some(content) = content {
            conversation.messages.push(Message::Tool {
                tool_call_id,
                name: tool,
                content,
            });
        }
        Ok(target)
    }

    /// The user's answer to the UI tool the conversation waits on (the resume input's
    /// `ui_response`), checked, as that tool's result.
    fn ui_answer(
        &self,
        call: &AgentsCall,
        conversation: &mut Conversation,
        reply: &Val,
        place: Place<'_>,
    ) -> Result<(), Stop> {
        let request = conversation.input_request.take().unwrap_or_default();
        let tool_name = request["tool"].as_str().unwrap_or_default().to_owned();
        let invalid = |message: String| {
            Stop::Fault(WorkflowError::validation(
                place.instance,
                format!("the run waits for the user's answer to UI tool `{tool_name}`: {message}"),
            ))
        };
        let tool = request["agent"]
            .as_str()
            .and_then(|agent| call.agent(agent))
            .and_then(|index| call.agents.get(index))
            .and_then(|agent| agent.ui_tools.iter().find(|t| t.name == tool_name))
            .ok_or_else(|| invalid("the tool is no longer declared".into()))?;
        let answer = to_json(reply)
            .ok()
            .and_then(|input| input.get("ui_response").cloned());
        let Some(answer @ Value::Object(_)) = answer else {
            return Err(invalid(
                "resume with the answer as `ui_response` (an object) in the input".into(),
            ));
        };
        if !tool.actions.is_empty() {
            let chosen = answer["action"].as_str().unwrap_or_default();
            let Some((_, schema)) = tool.actions.iter().find(|(a, _)| a["id"] == chosen) else {
                let ids: Vec<&str> = tool
                    .actions
                    .iter()
                    .filter_map(|(a, _)| a["id"].as_str())
                    .collect();
                return Err(invalid(format!(
                    "`ui_response.action` must be one of {}",
                    ids.join(", ")
                )));
            };
            if let Some(schema) = schema {
                schema.validate(&answer).map_err(|message| {
                    invalid(format!(
                        "the answer does not match action `{chosen}`'s schema: {message}"
                    ))
                })?;
            }
        }
        // What the answer sets (mozaiks `ui_response` triggers), before the agent sees it.
        let updates = self.context_object(
            tool.context.as_ref(),
            "the UI tool's `context`",
            &from_json(answer.clone()),
            place,
        )?;
        conversation.context_variables.extend(updates);
        conversation.messages.push(Message::Tool {
            tool_call_id: request["tool_call_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            name: tool_name,
            content: answer.to_string(),
        });
        Ok(())
    }

    /// Sets the context variables whose `context_triggers` now hold.
    fn triggers(
        &self,
        call: &AgentsCall,
        conversation: &mut Conversation,
        place: Place<'_>,
    ) -> Result<(), Stop> {
        let pending: Vec<&super::ContextTrigger> = call
            .context_triggers
            .iter()
            .filter(|t| conversation.context_variables.get(&t.variable) != Some(&Value::Bool(true)))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let subject = from_json(json!({
            "context": conversation.context_variables,
            "messages": conversation.messages,
            "agent": conversation.agent,
        }));
        for trigger in pending {
            let verdict = self
                .eval(
                    place.input,
                    &Val::Null,
                    place.descriptor,
                    place.frame.locals,
                    |args| trigger.when.eval(subject.clone(), args),
                )
                .map_err(|e| Stop::Fault(expression_error(place.instance, e)))?;
            if truthy(&verdict) {
                conversation
                    .context_variables
                    .insert(trigger.variable.clone(), Value::Bool(true));
            }
        }
        Ok(())
    }

    /// The context variables `template` (the task's `field`) makes of `subject`.
    fn context_object(
        &self,
        template: Option<&Template>,
        field: &str,
        subject: &Val,
        place: Place<'_>,
    ) -> Result<Map<String, Value>, Stop> {
        Ok(match template {
            None => Map::new(),
            Some(template) => {
                let value = self
                    .eval(
                        place.input,
                        &Val::Null,
                        place.descriptor,
                        place.frame.locals,
                        |args| template.eval(subject, args),
                    )
                    .map_err(|e| Stop::Fault(expression_error(place.instance, e)))?;
                match to_json(&value) {
                    Ok(Value::Object(map)) => map,
                    Ok(Value::Null) => Map::new(),
                    _ => {
                        return Err(Stop::Fault(WorkflowError::validation(
                            place.instance,
                            format!(
                            "`{field}` must produce an object of context variables; it produced {}",
                            truncate(&value.to_string(), 60)
                        ),
                        )))
                    }
                }
            }
        })
    }

    /// The conversation at its start: context variables and the opening message.
    fn open(&self, call: &AgentsCall, place: Place<'_>) -> Result<Conversation, Stop> {
        let context_variables =
            self.context_object(call.context.as_ref(), "context", place.input, place)?;
        let mut messages = Vec::new();
        if let Some(content) = self.user_message(
            call.initial_message.as_ref(),
            "initial_message",
            place.input,
            place,
        )? {
            messages.push(Message::User { content });
        }
        let agent = call
            .agents
            .get(call.initial_agent)
            .map(|agent| agent.name.clone())
            .unwrap_or_default();
        Ok(Conversation {
            messages,
            agent,
            context_variables,
            structured_outputs: Map::new(),
            turns: 0,
            consecutive: 0,
            input_request: None,
            ui_surfaces: Vec::new(),
            ui_replay: None,
        })
    }

    /// `template` (the task's `field`) evaluated on `subject`: the user's message, if any.
    fn user_message(
        &self,
        template: Option<&Template>,
        field: &str,
        subject: &Val,
        place: Place<'_>,
    ) -> Result<Option<String>, Stop> {
        let Some(template) = template else {
            return Ok(None);
        };
        let value = self
            .eval(
                place.input,
                &Val::Null,
                place.descriptor,
                place.frame.locals,
                |args| template.eval(subject, args),
            )
            .map_err(|e| Stop::Fault(expression_error(place.instance, e)))?;
        let text = match value {
            Val::Null => return Ok(None),
            Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            other => match to_json(&other) {
                Ok(json) => json.to_string(),
                Err(message) => {
                    return Err(Stop::Fault(WorkflowError::expression(
                        place.instance,
                        format!("`{field}` is not JSON: {message}"),
                    )))
                }
            },
        };
        Ok((!text.is_empty()).then_some(text))
    }

    /// The first of `conditions` that holds, if any.
    fn condition(
        &self,
        conditions: &[Condition],
        conversation: &Conversation,
        place: Place<'_>,
    ) -> Result<Option<Target>, Stop> {
        if conditions.is_empty() {
            return Ok(None);
        }
        let subject = from_json(json!({
            "context": conversation.context_variables,
            "messages": conversation.messages,
            "agent": conversation.agent,
        }));
        for condition in conditions {
            let verdict = self
                .eval(
                    place.input,
                    &Val::Null,
                    place.descriptor,
                    place.frame.locals,
                    |args| condition.when.eval(subject.clone(), args),
                )
                .map_err(|e| Stop::Fault(expression_error(place.instance, e)))?;
            if truthy(&verdict) {
                return Ok(Some(condition.target));
            }
        }
        Ok(None)
    }

    /// Applies a handoff; whether the conversation goes on (`false`: it terminates). A handoff
    /// to the user stops the run to wait.
    fn hand_off(
        &self,
        call: &AgentsCall,
        target: Target,
        conversation: &mut Conversation,
        current: &mut usize,
        place: Place<'_>,
    ) -> Result<bool, Stop> {
        match target {
            // A selection that picked nobody (see `select_speaker`) ends the conversation.
            Target::Terminate | Target::Select => Ok(false),
            Target::Agent(index) => {
                *current = index;
                conversation.agent = call
                    .agents
                    .get(index)
                    .map(|agent| agent.name.clone())
                    .unwrap_or_default();
                conversation.consecutive = 0;
                Ok(true)
            }
            Target::User => match call.waits_at {
                Some(index) if place.frame.depth == 0 => {
                    let task_input = to_json(place.input).map_err(|message| {
                        Stop::Fault(WorkflowError::runtime(
                            place.instance,
                            format!("the task's input cannot be saved while the run waits: {message}"),
                        ))
                    })?;
                    Err(Stop::Wait(Box::new(Suspension {
                        index,
                        reference: place.instance.to_owned(),
                        conversation: conversation.clone(),
                        task_input,
                        context: Value::Null,
                        workflow_input: Value::Null,
                        started_at: Value::Null,
                    })))
                }
                _ => Err(Stop::Fault(WorkflowError::configuration(
                    place.instance,
                    "the conversation hands back to the user, so the run would wait, but this task runs inside a sub-workflow or function; only a task of the top-level `do` of the invoked workflow can wait".into(),
                ))),
            },
        }
    }

    /// The next speaker under the task's `speaker_selection` (AG2's patterns), after agent
    /// `current` spoke: in turn, at random, or named by a model that reads the conversation
    /// (AG2's group manager prompt). A model's answer naming no candidate falls back to the next
    /// in turn, as AG2 does after its attempts; the call is metered as agent `speaker_selection`.
    async fn select_speaker(
        &self,
        call: &AgentsCall,
        conversation: &Conversation,
        current: usize,
        place: Place<'_>,
    ) -> Result<Target, Stop> {
        let Some(selection) = &call.selection else {
            return Ok(Target::Terminate);
        };
        let count = call.agents.len() + usize::from(selection.user);
        let in_turn = |from: usize| {
            let next = (from + 1) % count.max(1);
            if next == call.agents.len() {
                Target::User
            } else {
                Target::Agent(next)
            }
        };
        match selection.mode {
            super::Selection::RoundRobin => Ok(in_turn(current)),
            super::Selection::Random => {
                if count <= 1 {
                    return Ok(Target::Agent(current));
                }
                // Any candidate but the one who just spoke: 74 random bits of a UUIDv7.
                let random = u64::from_le_bytes(
                    uuid::Uuid::now_v7().as_bytes()[8..16]
                        .try_into()
                        .unwrap_or_default(),
                );
                let pick = (current + 1 + (random % (count as u64 - 1)) as usize) % count;
                Ok(if pick == call.agents.len() {
                    Target::User
                } else {
                    Target::Agent(pick)
                })
            }
            super::Selection::Auto => {
                let mut names: Vec<&str> = call.agents.iter().map(|a| a.name.as_str()).collect();
                if selection.user {
                    names.push("user");
                }
                let roles: Vec<String> = call
                    .agents
                    .iter()
                    .map(|a| {
                        let about = a
                            .description
                            .clone()
                            .unwrap_or_else(|| truncate(&a.system, 300));
                        format!("{}: {}", a.name, about)
                    })
                    .chain(selection.user.then(|| {
                        "user: the person in the conversation, who answers when asked".to_owned()
                    }))
                    .collect();
                let list = format!("[{}]", names.join(", "));
                let system = format!(
                    "You are in a role play game. The following roles are available:\n{}.\nRead the following conversation.\nThen select the next role from {list} to play. Only return the role.",
                    roles.join("\n")
                );
                let mut messages = conversation.messages.clone();
                messages.push(Message::User {
                    content: format!("Read the above conversation. Then select the next role from {list} to play. Only return the role."),
                });
                let services = &self.workflow.services;
                let Some(model) = selection
                    .model
                    .name
                    .as_deref()
                    .or(services.llm.default_model.as_deref())
                else {
                    return Err(Stop::Fault(WorkflowError::configuration(
                        place.instance,
                        "the speaker selection names no model and the host sets no default model (MOZAIKS_DEFAULT_MODEL)".into(),
                    )));
                };
                let request = ChatRequest {
                    model,
                    spec: &selection.model,
                    system: &system,
                    messages: &messages,
                    tools: &[],
                    output_schema: None,
                };
                let started_at = SystemTime::now();
                let reply = match provider::chat(
                    services,
                    selection.model.provider,
                    &request,
                    place.frame.limit.until,
                )
                .await
                {
                    Ok(reply) => reply,
                    Err(ProviderError::Configuration(message)) => {
                        return Err(Stop::Fault(WorkflowError::configuration(
                            place.instance,
                            message,
                        )))
                    }
                    Err(ProviderError::Communication(failure)) => {
                        return Err(Stop::Fault(failure.into_error(place.instance)))
                    }
                };
                lock(&self.shared.llm_calls).push(LlmCall {
                    model: model.to_owned(),
                    provider: selection.model.provider.name().to_owned(),
                    agent: "speaker_selection".to_owned(),
                    prompt_tokens: reply.usage.prompt_tokens,
                    completion_tokens: reply.usage.completion_tokens,
                    total_tokens: reply.usage.total_tokens,
                    cached_tokens: reply.usage.cached_tokens,
                    started_at,
                    ended_at: SystemTime::now(),
                });
                let answer = reply.content.unwrap_or_default();
                let answer = answer
                    .trim()
                    .trim_matches(|c: char| c == '"' || c == '\'' || c == '.');
                // The name answered, else the one name the answer mentions.
                let picked = names.iter().position(|n| *n == answer).or_else(|| {
                    let mentioned: Vec<usize> = names
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| answer.contains(**n))
                        .map(|(i, _)| i)
                        .collect();
                    (mentioned.len() == 1).then(|| mentioned[0])
                });
                Ok(match picked {
                    Some(i) if i == call.agents.len() => Target::User,
                    Some(i) => Target::Agent(i),
                    None => in_turn(current),
                })
            }
        }
    }

    /// One reply of `agent` (re-asked while a structured output does not match), added to the
    /// conversation; the tools it calls.
    async fn reply(
        &self,
        agent: &Agent,
        conversation: &mut Conversation,
        place: Place<'_>,
    ) -> Result<Vec<ToolCall>, Stop> {
        let mut corrections: Vec<Message> = Vec::new();
        let mut reasks = 0;
        loop {
            let reply = if corrections.is_empty() {
                self.model_call(
                    agent,
                    &conversation.messages,
                    &conversation.context_variables,
                    place,
                )
                .await?
            } else {
                let mut messages = conversation.messages.clone();
                messages.extend(corrections.iter().cloned());
                self.model_call(agent, &messages, &conversation.context_variables, place)
                    .await?
            };
            let ChatReply {
                content,
                tool_calls,
                ..
            } = reply;
            let schema = match &agent.output_schema {
                Some((_, schema)) if tool_calls.is_empty() => schema,
                _ => {
                    conversation.turns += 1;
                    conversation.consecutive += 1;
                    // A reply that calls tools need not be the structured output; when its
                    // text is one (e.g. next to a transfer), it is kept.
                    if let (Some((_, schema)), Some(text)) = (&agent.output_schema, &content) {
                        if let Ok(value) = serde_json::from_str::<Value>(without_fences(text)) {
                            if schema.validate(&value).is_ok() {
                                conversation
                                    .structured_outputs
                                    .insert(agent.name.clone(), value);
                            }
                        }
                    }
                    conversation.messages.push(Message::Assistant {
                        name: agent.name.clone(),
                        content,
                        tool_calls: tool_calls.clone(),
                    });
                    return Ok(tool_calls);
                }
            };
            let text = content.unwrap_or_default();
            let problem = match serde_json::from_str::<Value>(without_fences(&text)) {
                Err(e) => format!("it is not JSON ({e})"),
                Ok(value) => match schema.validate(&value) {
                    Ok(()) => {
                        conversation.turns += 1;
                        conversation.consecutive += 1;
                        conversation
                            .structured_outputs
                            .insert(agent.name.clone(), value);
                        conversation.messages.push(Message::Assistant {
                            name: agent.name.clone(),
                            content: Some(text),
                            tool_calls: Vec::new(),
                        });
                        return Ok(Vec::new());
                    }
                    Err(message) => message,
                },
            };
            if reasks >= STRUCTURED_REASKS {
                return Err(Stop::Fault(WorkflowError::validation(
                    place.instance,
                    format!(
                        "agent `{}` did not give a structured output matching its `output_schema` after {} re-asks: {}",
                        agent.name,
                        STRUCTURED_REASKS,
                        truncate(&problem, 300)
                    ),
                )));
            }
            reasks += 1;
            corrections.push(Message::Assistant {
                name: agent.name.clone(),
                content: Some(text),
                tool_calls: Vec::new(),
            });
            corrections.push(Message::User {
                content: format!(
                    "Your reply does not match the required JSON Schema: {problem}. Reply again with only a JSON value that matches the schema."
                ),
            });
        }
    }

    /// One model call of `agent` on `messages`, recorded as an [`LlmCall`].
    async fn model_call(
        &self,
        agent: &Agent,
        messages: &[Message],
        context: &Map<String, Value>,
        place: Place<'_>,
    ) -> Result<ChatReply, Stop> {
        let system = exposed_system(agent, context);
        let services = &self.workflow.services;
        let Some(model) = agent
            .model
            .name
            .as_deref()
            .or(services.llm.default_model.as_deref())
        else {
            return Err(Stop::Fault(WorkflowError::configuration(
                place.instance,
                format!("agent `{}` names no model and the host sets no default model (MOZAIKS_DEFAULT_MODEL)", agent.name),
            )));
        };
        let schema_name = format!("{}_output", agent.name);
        // The tools of its MCP servers join its own.
        let offered: Vec<super::ToolSpec>;
        let tools: &[super::ToolSpec] = if agent.mcp.is_empty() {
            &agent.tool_specs
        } else {
            let lists = self.mcp_tool_specs(agent, &place).await?;
            offered = agent
                .tool_specs
                .iter()
                .chain(lists.iter().flat_map(|list| list.iter()))
                .cloned()
                .collect();
            &offered
        };
        let request = ChatRequest {
            model,
            spec: &agent.model,
            system: &system,
            messages,
            tools,
            output_schema: agent
                .output_schema
                .as_ref()
                .map(|(document, _)| (schema_name.as_str(), document)),
        };
        let started_at = SystemTime::now();
        let result = provider::chat(
            services,
            agent.model.provider,
            &request,
            place.frame.limit.until,
        )
        .await;
        match result {
            Ok(reply) => {
                lock(&self.shared.llm_calls).push(LlmCall {
                    model: model.to_owned(),
                    provider: agent.model.provider.name().to_owned(),
                    agent: agent.name.clone(),
                    prompt_tokens: reply.usage.prompt_tokens,
                    completion_tokens: reply.usage.completion_tokens,
                    total_tokens: reply.usage.total_tokens,
                    cached_tokens: reply.usage.cached_tokens,
                    started_at,
                    ended_at: SystemTime::now(),
                });
                Ok(reply)
            }
            Err(ProviderError::Configuration(message)) => Err(Stop::Fault(
                WorkflowError::configuration(place.instance, message),
            )),
            Err(ProviderError::Communication(failure)) => {
                Err(Stop::Fault(failure.into_error(place.instance)))
            }
        }
    }

    /// Answers one tool call: the tool message's content (`None`: the run waits for the
    /// user's answer to an MCP tool's UI request), and the handoff it asks for.
    async fn tool_call(
        &self,
        call: &AgentsCall,
        agent: &Agent,
        tool_call: &ToolCall,
        conversation: &mut Conversation,
        place: Place<'_>,
    ) -> Result<Answer, Stop> {
        let name = &tool_call.function.name;
        let own = agent.transfers.iter().any(|t| &t.tool == name)
            || agent.tools.iter().any(|t| &t.name == name);
        if !own {
            if let Some(answer) = self
                .mcp_tool_call(call, agent, tool_call, conversation, &place)
                .await?
            {
                return Ok(answer);
            }
        }
        let (content, target) = self
            .function_tool_call(call, agent, tool_call, conversation, place)
            .await?;
        Ok((Some(content), target))
    }

    /// Answers a call of a transfer or of a DSL function tool (or of no tool of the agent).
    async fn function_tool_call(
        &self,
        call: &AgentsCall,
        agent: &Agent,
        tool_call: &ToolCall,
        conversation: &mut Conversation,
        place: Place<'_>,
    ) -> Result<(String, Option<Target>), Stop> {
        let name = &tool_call.function.name;
        if let Some(transfer) = agent.transfers.iter().find(|t| &t.tool == name) {
            let to = match transfer.target {
                Target::Agent(index) => call
                    .agents
                    .get(index)
                    .map_or("another agent", |a| a.name.as_str()),
                Target::User => "the user",
                Target::Terminate | Target::Select => "the end of the conversation",
            };
            return Ok((
                json!({ "result": format!("Transferred to {to}.") }).to_string(),
                Some(transfer.target),
            ));
        }
        let Some(tool) = agent.tools.iter().find(|t| &t.name == name) else {
            return Ok((
                tool_error(&WorkflowError::validation(
                    place.instance,
                    format!(
                        "there is no tool named `{name}` available to agent `{}`",
                        agent.name
                    ),
                )),
                None,
            ));
        };
        let Some(function) = self.workflow.functions.get(tool.function) else {
            return Err(Stop::Fault(WorkflowError::runtime(
                place.instance,
                format!("the function of tool `{name}` is missing"),
            )));
        };
        let arguments: Value = match serde_json::from_str(&tool_call.function.arguments) {
            Ok(arguments) => arguments,
            Err(e) => {
                return Ok((
                    tool_error(&WorkflowError::validation(
                        &function.reference,
                        format!("the arguments are not JSON: {e}"),
                    )),
                    None,
                ))
            }
        };
        if let Some(schema) = &function.input.schema {
            if let Err(message) = schema.validate(&arguments) {
                return Ok((
                    tool_error(&WorkflowError::validation(
                        &function.reference,
                        format!("the arguments do not match the tool's input schema: {message}"),
                    )),
                    None,
                ));
            }
        }
        let depth = self.deeper(place.frame, place.instance)?;
        let inner = Frame {
            locals: &[],
            limit: place.frame.limit,
            depth,
        };
        let output = match self.task_boxed(function, from_json(arguments), inner).await {
            Ok((output, _flow)) => output,
            Err(Stop::Fault(error)) => return Ok((tool_error(&error), None)),
            Err(stop) => return Err(stop),
        };
        let mut output = match to_json(&output) {
            Ok(output) => output,
            Err(message) => {
                return Ok((
                    tool_error(&WorkflowError::expression(
                        &function.reference,
                        format!("the tool's output is not JSON: {message}"),
                    )),
                    None,
                ))
            }
        };
        if let Value::Object(fields) = &mut output {
            if let Some(Value::Object(_)) = fields.get("context_variables") {
                if let Some(Value::Object(updates)) = fields.remove("context_variables") {
                    conversation.context_variables.extend(updates);
                }
            }
        }
        Ok((output.to_string(), None))
    }
}

/// A call of UI tool `ui`: the tool message to answer it with now, or `None` when the run is
/// to wait for the user's answer (recorded as the conversation's `input_request`).
fn ui_call(
    ui: &super::UiTool,
    agent: &Agent,
    tool_call: &ToolCall,
    conversation: &mut Conversation,
) -> Option<String> {
    let refuse = |message: String| {
        Some(json!({ "error": { "title": "Invalid UI tool call", "detail": message } }).to_string())
    };
    let payload: Value = match serde_json::from_str(&tool_call.function.arguments) {
        Ok(payload) => payload,
        Err(e) => return refuse(format!("the arguments are not JSON: {e}")),
    };
    if let Some(schema) = &ui.payload {
        if let Err(message) = schema.validate(&payload) {
            return refuse(format!(
                "the arguments do not match the tool's payload schema: {message}"
            ));
        }
    }
    let mut request = json!({
        "tool": ui.name,
        "agent": agent.name,
        "component": ui.component,
        "mode": ui.mode,
        "payload": payload,
    });
    if !ui.wait {
        conversation.ui_surfaces.push(request);
        return Some(json!({ "result": "shown to the user" }).to_string());
    }
    if conversation.input_request.is_some() {
        return refuse("one UI interaction at a time: this call was not shown; call it again after the user answers the first".into());
    }
    request["tool_call_id"] = json!(tool_call.id);
    request["actions"] = Value::Array(ui.actions.iter().map(|(a, _)| a.clone()).collect());
    conversation.input_request = Some(request);
    None
}

/// A tool's failure as the model sees it: `{"error": <the DSL error>}`.
fn tool_error(error: &WorkflowError) -> String {
    json!({ "error": error }).to_string()
}

/// `text` without a Markdown code fence around it (models sometimes fence JSON).
fn without_fences(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let rest = rest.strip_suffix("```").unwrap_or(rest);
    // Drop the info string (`json`) on the opening line.
    match rest.split_once('\n') {
        Some((info, body)) if !info.trim_start().starts_with(['{', '[']) => body.trim(),
        _ => rest.trim(),
    }
}

/// The agent's system message, with the current value of each context variable it exposes
/// after a blank line (`NAME: value`, the name upper-cased; `None` for null or absent, `true` /
/// `false`, strings as they are, other values as JSON), as MozaiksAI renders them.
fn exposed_system<'a>(agent: &'a Agent, context: &Map<String, Value>) -> std::borrow::Cow<'a, str> {
    if agent.context_variables.is_empty() {
        return std::borrow::Cow::Borrowed(&agent.system);
    }
    let mut system = agent.system.clone();
    system.push('\n');
    for name in agent.context_variables.iter() {
        let value = match context.get(name) {
            None | Some(Value::Null) => "None".to_owned(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        system.push_str(&format!("\n{}: {value}", name.to_ascii_uppercase()));
    }
    std::borrow::Cow::Owned(system)
}

#[cfg(test)]
mod tests {
    use super::without_fences;

    #[test]
    fn fences_are_stripped_from_json_replies() {
        assert_eq!(without_fences(" {\"a\":1} "), "{\"a\":1}");
        assert_eq!(without_fences("```json\n{\"a\":1}\n```"), "{\"a\":1}");
        assert_eq!(without_fences("```\n[1]\n```"), "[1]");
        assert_eq!(without_fences("```{\"a\":1}```"), "{\"a\":1}");
    }
}
