//! The state of a run waiting for the user: what [`Outcome::Waiting`](crate::Outcome)
//! carries and [`Workflow::resume`](crate::Workflow::resume) takes back.
//!
//! ```json
//! { "format": "mozaiks.workflow.waiting/1",
//!   "workflow": { "namespace": "…", "name": "…", "version": "…" },
//!   "fingerprint": "<HMAC-SHA256 of the definition, base64url>",
//!   "position": { "task": 0, "reference": "/do/0/chat" },
//!   "workflow_input": { … }, "started_at": { … }, "context": { … }, "task_input": { … },
//!   "conversation": { "messages": [ … ], "agent": "Orders", "context_variables": { … },
//!                     "structured_outputs": { … }, "turns": 3, "consecutive": 1 } }
//! ```
//!
//! `workflow_input` and `started_at` are what `$workflow.input` and `$workflow.startedAt` were,
//! `context` is `$context`, `task_input` the waiting task's `$input`. The host keeps the state
//! opaque and protects it (integrity, binding, expiry); the engine refuses a state of another
//! format, workflow, or definition (a redeployed workflow with any change to its document).

use super::provider::Message;
use crate::model::{TaskKind, Workflow};
use crate::run::ResumeError;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// The state format this engine writes and reads.
pub(crate) const FORMAT: &str = "mozaiks.workflow.waiting/1";
/// The key of the definition fingerprint (a domain separator, not a secret).
const FINGERPRINT_KEY: &[u8] = b"mozaiks-runtime/workflow-definition-fingerprint/v1";

/// A digest of a workflow document (HMAC-SHA256 under a fixed key, base64url): equal for the
/// same document, different for any change to it.
pub(crate) fn fingerprint(document: &Value) -> String {
    let text = serde_json::to_vec(document).unwrap_or_default();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, FINGERPRINT_KEY);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, &text))
}

/// A conversation in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Conversation {
    /// Everything said so far.
    pub(crate) messages: Vec<Message>,
    /// The agent whose turn it is.
    pub(crate) agent: String,
    /// The context variables.
    pub(crate) context_variables: Map<String, Value>,
    /// The agents' structured outputs, by agent.
    pub(crate) structured_outputs: Map<String, Value>,
    /// Replies so far (model calls, re-asks not counted), for `max_turns`.
    pub(crate) turns: u64,
    /// Consecutive replies of the current agent, for `max_consecutive_auto_reply`.
    pub(crate) consecutive: u64,
    /// The UI tool call the run waits on: the output's `input_request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) input_request: Option<Value>,
    /// What display-only UI tools showed, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) ui_surfaces: Vec<Value>,
    /// When the run waits on an MCP tool's UI request (the tool host's `use_ui_tool`): the
    /// call to replay with the user's answer (`{server, tool, arguments, answers}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ui_replay: Option<Value>,
}

impl Conversation {
    /// The task's output: `{ messages, last_agent, context, structured_outputs }`.
    /// `last_agent` is the agent that replied last (the current one before any reply).
    pub(crate) fn output(&self) -> Value {
        let last_agent = self
            .messages
            .iter()
            .rev()
            .find_map(|message| match message {
                Message::Assistant { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .unwrap_or(&self.agent);
        let mut output = json!({
            "messages": self.messages,
            "last_agent": last_agent,
            "context": self.context_variables,
            "structured_outputs": self.structured_outputs,
        });
        if let Some(request) = &self.input_request {
            output["input_request"] = request.clone();
        }
        if !self.ui_surfaces.is_empty() {
            output["ui_surfaces"] = Value::Array(self.ui_surfaces.clone());
        }
        output
    }
}

/// A run stopped to wait for the user, on its way out of the runner.
#[derive(Debug)]
pub(crate) struct Suspension {
    /// The waiting task's index in the top-level `do`.
    pub(crate) index: usize,
    /// The waiting task's reference.
    pub(crate) reference: String,
    /// The conversation.
    pub(crate) conversation: Conversation,
    /// The task's `$input`.
    pub(crate) task_input: Value,
    /// `$context`, `$workflow.input` and `$workflow.startedAt` (set by the document runner).
    pub(crate) context: Value,
    pub(crate) workflow_input: Value,
    pub(crate) started_at: Value,
}

impl Suspension {
    /// The run's output while it waits, and the state to resume it.
    pub(crate) fn into_outcome(self, workflow: &Workflow) -> (Value, Value) {
        let output = self.conversation.output();
        let state = json!({
            "format": FORMAT,
            "workflow": workflow.id,
            "fingerprint": workflow.fingerprint,
            "position": { "task": self.index, "reference": self.reference },
            "workflow_input": self.workflow_input,
            "started_at": self.started_at,
            "context": self.context,
            "task_input": self.task_input,
            "conversation": self.conversation,
        });
        (output, state)
    }
}

/// A state read back, checked against the workflow.
#[derive(Debug)]
pub(crate) struct Saved {
    pub(crate) index: usize,
    pub(crate) conversation: Conversation,
    pub(crate) task_input: Value,
    pub(crate) context: Value,
    pub(crate) workflow_input: Value,
    pub(crate) started_at: Value,
}

/// The state as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    format: String,
    workflow: StoredId,
    fingerprint: String,
    position: Position,
    workflow_input: Value,
    started_at: Value,
    context: Value,
    task_input: Value,
    conversation: Conversation,
}

#[derive(Deserialize)]
struct StoredId {
    namespace: String,
    name: String,
    version: String,
}

#[derive(Deserialize)]
struct Position {
    task: usize,
    reference: String,
}

/// Reads `state` and checks that `workflow` issued it and can resume it.
pub(crate) fn read(workflow: &Workflow, state: Value) -> Result<Saved, ResumeError> {
    let format = state.get("format").and_then(Value::as_str);
    if format != Some(FORMAT) {
        return Err(ResumeError(format!(
            "the state is not a waiting run's state of this engine (format {}, expected {FORMAT})",
            format.map_or_else(|| "missing".to_owned(), |f| format!("`{f}`"))
        )));
    }
    let stored: Stored = serde_json::from_value(state)
        .map_err(|e| ResumeError(format!("the state is malformed: {e}")))?;
    let id = &workflow.id;
    if stored.workflow.namespace != id.namespace
        || stored.workflow.name != id.name
        || stored.workflow.version != id.version
    {
        return Err(ResumeError(format!(
            "the state belongs to workflow {}/{}@{}, not {id}",
            stored.workflow.namespace, stored.workflow.name, stored.workflow.version
        )));
    }
    if stored.fingerprint != workflow.fingerprint || stored.format != FORMAT {
        return Err(ResumeError(format!(
            "the state was issued by another definition of {id}: the workflow changed since, so the conversation cannot resume; start a new execution"
        )));
    }
    let task = workflow
        .tasks
        .tasks
        .get(stored.position.task)
        .filter(|task| *task.reference == stored.position.reference);
    let Some(TaskKind::Agents(call)) = task.map(|task| &task.kind) else {
        return Err(ResumeError(format!(
            "the state's position {} is not a task of {id} that can wait",
            stored.position.reference
        )));
    };
    if call.waits_at != Some(stored.position.task) {
        return Err(ResumeError(format!(
            "the task at {} cannot wait, so it has nothing to resume",
            stored.position.reference
        )));
    }
    if call.agent(&stored.conversation.agent).is_none() {
        return Err(ResumeError(format!(
            "the state's current agent `{}` is not an agent of the task at {}",
            stored.conversation.agent, stored.position.reference
        )));
    }
    if !stored.context.is_object() && !stored.context.is_null() {
        return Err(ResumeError("the state's `context` is not an object".into()));
    }
    Ok(Saved {
        index: stored.position.task,
        conversation: stored.conversation,
        task_input: stored.task_input,
        context: stored.context,
        workflow_input: stored.workflow_input,
        started_at: stored.started_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_for_any_change() {
        let a = fingerprint(&json!({ "document": { "name": "a" }, "do": [] }));
        let b = fingerprint(&json!({ "document": { "name": "a" }, "do": [1] }));
        assert_eq!(
            a,
            fingerprint(&json!({ "document": { "name": "a" }, "do": [] }))
        );
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "{a}");
    }
}
