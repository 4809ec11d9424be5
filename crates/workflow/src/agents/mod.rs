//! `call: agents`: a multi-agent conversation on language models (MozaiksAI's AG2-style
//! workflows), run in-process, every model call metered as an [`LlmCall`](super::LlmCall).
//!
//! ```yaml
//! - chat:
//!     call: agents
//!     with:
//!       agents:
//!         - name: Triage                       # unique, [A-Za-z0-9_-], at most 52 characters
//!           instructions: You route customers. # or prompt_sections: [{ id?, heading, content }]
//!           model: { provider: openai, name: gpt-4o-mini, temperature: 0.2, max_tokens: 800 }
//!                                              # or { provider: bedrock, name: <modelId> }
//!           tools: [ lookupOrder ]             # functions of `use.functions`
//!           mcp_servers:                       # tools served over MCP (streamable HTTP)
//!             - { endpoint: { uri: 'https://tools.example.com/mcp',
//!                             authentication: { bearer: { token: '${ $secrets.tools }' } } },
//!                 headers: { x-team: support },  # optional
//!                 tools: [ search_orders ],      # allow-list (default: all it lists)
//!                 context: false,                # true: the MozaiksAI tool host protocol
//!                 aws_iam: false }               # true: SigV4-signed (a Function URL's AWS_IAM)
//!           output_schema: { type: object }    # optional JSON Schema: structured output
//!           max_consecutive_auto_reply: 3
//!           context_variables: [ tier ]        # (mozaiks) its system message ends with the
//!                                              # current `TIER: <value>`, each model call
//!           ui_tools:                          # (mozaiks) answered by the user in the chat UI
//!             - { name: approve, component: ApprovalCard, mode: inline,
//!                 payload_schema: { type: object }, wait: true,
//!                 actions: [ { id: approve, label: Approve, schema: { type: object } } ],
//!                 context: '${ {approved: (.action == "approve")} }' } # sets context variables
//!       handoffs:
//!         - { from: Triage, to: Orders, description: the customer asks about an order }
//!         - { from: Orders, to: Triage, when: '${ .context.escalate }' }
//!         - { from: Orders, to: user, when: '${ .context.x }', scope: pre }
//!         - { from: Orders, after_work: terminate }    # terminate | user | <agent>
//!       initial_agent: Triage                  # default: the first agent
//!       initial_message: '${ .message }'
//!       reply_message: '${ .message }'         # on resume; default: initial_message
//!       context: '${ .context // {} }'
//!       reply_context: '${ .context // {} }'  # (mozaiks) on resume, over the conversation's
//!       context_triggers:                      # (mozaiks) set once true, never reset
//!         - { variable: ready, when: '${ .messages[-1].content == "NEXT" }' }
//!       max_turns: 10
//!       speaker_selection: { mode: auto, user: false, model: { name: gpt-4o-mini } }
//!                                              # (AG2 patterns) auto | round_robin | random:
//!                                              # who speaks when no handoff decides
//! ```
//!
//! **Load.** Everything is checked when the workflow loads, each error naming its JSON pointer:
//! agent names unique (and not `user` or `terminate`), handoff sources and targets, at most one
//! `after_work` per agent, `tools` naming functions of `use.functions` (the function's
//! `input.schema` document becomes the tool's parameters, its `metadata.description` the tool's
//! description), `initial_agent`, every jq expression compiled, `output_schema` compiled by the
//! engine's JSON Schema validator, the model's fields.
//!
//! **The loop.** `initial_message` (evaluated on the task input; absent or `null`: no message)
//! opens the conversation as the user's message; `context` (an object) sets the context
//! variables. Then, for the current agent:
//! 1. its `scope: pre` conditions are checked in order; the first that holds hands off before
//!    the agent replies;
//! 2. if `max_turns` replies were made, the conversation ends (the task completes: `max_turns`
//!    is the workflow's declaration, not a limit of the runtime);
//! 3. the agent's model is called with its instructions as the system message, the whole
//!    conversation (other agents' replies are assistant messages carrying their `name`), its
//!    tools and a `transfer_to_<target>` tool per model-decided handoff;
//! 4. tool calls run: a function tool runs the DSL function on the model's arguments, which are
//!    first validated against its `input.schema` — a mismatch, or a fault of the function, is
//!    returned to the model as the tool's result (`{"error": {…}}`), not a fault of the run. A
//!    function whose output is an object with a `context_variables` object merges it into the
//!    context variables (the model sees the rest). A transfer tool hands off once the turn's
//!    tool calls are answered (the first transfer wins);
//!    An MCP tool (`mcp_servers`, see [`mcp_tools`]) is called with `tools/call` on the
//!    model's arguments; its result (structured content, else its text) is the tool's result,
//!    and its failures go back to the model as `{"error": {…}}`.
//!    A UI tool's arguments are checked against its `payload_schema` (a mismatch goes back to
//!    the model as the tool's result); a `wait: false` one is recorded in the output's
//!    `ui_surfaces` and answered `{"result": "shown to the user"}`; a waiting one ends the run
//!    `waiting` once the turn's other tool calls are answered, with `input_request`
//!    (`{tool, tool_call_id, agent, component, mode, payload, actions}`) in the output. The
//!    resume's input carries the answer as `ui_response` (an object; with `actions`, its
//!    `action` names one of their ids and it matches that action's `schema`); it becomes the
//!    tool's result and the same agent goes on. A resume without a valid answer faults with a
//!    `validation` error and changes nothing (the caller still holds the continuation);
//! 5. the `scope: post` conditions (the default) are checked; the first that holds hands off;
//! 6. otherwise, after tool calls the same agent goes on — unless it has made
//!    `max_consecutive_auto_reply` consecutive replies, when its `after_work` applies; after a
//!    text reply, its `after_work` applies (default `terminate`).
//!
//! A condition (`when`) sees `{ context, messages, agent }` as `.` (plus `$input`, `$context`,
//! … as in any task definition). A handoff to `terminate` ends the conversation; to `user` ends
//! the run `waiting`. A turn is one reply of an agent (one model call); re-asks of a structured
//! output belong to the reply they correct.
//!
//! **Structured output.** An agent with `output_schema` is asked for JSON with
//! `response_format: json_schema` (non-strict; on Bedrock, in the system prompt); its text reply is parsed and validated, and on a
//! mismatch it is re-asked, telling it what was wrong, at most [`STRUCTURED_REASKS`] times; then
//! the task faults with a `validation` error. Valid values are kept in `structured_outputs`
//! under the agent's name (the last one wins). A reply that calls tools is not held to the
//! schema; when its text is a valid structured output (a model may answer and take a
//! model-decided handoff in one reply), it is kept too.
//!
//! **Output** of the task: `{ messages, last_agent, context, structured_outputs }` (`last_agent`:
//! the agent that replied last; `context`: the context variables); messages are
//! `{ role: user|assistant|tool, name?, content, tool_calls?, tool_call_id? }` as in OpenAI
//! Chat Completions.
//!
//! **Waiting and resume.** A handoff to `user` ends the run [`Outcome::Waiting`]: `output` is the
//! task's output so far, `state` a JSON object ([`state`]) with a format version, the workflow's
//! id and a fingerprint of its definition, the task's position, the conversation, current agent,
//! context variables, turn counts, `$context` and what `$workflow` and `$input` were.
//! [`Workflow::resume`](super::Workflow::resume) refuses a state of another format, workflow or
//! definition; otherwise it evaluates `reply_message` (default: `initial_message`) on the new
//! input to produce the user's reply (nothing: the resume faults with a `validation` error),
//! appends it, and continues the conversation with the agent that handed over (its
//! consecutive replies start again from zero), then the rest of the workflow. `max_turns` counts
//! the whole conversation, across resumes. An agents task that can hand back to the user (a
//! `user` target anywhere in its handoffs) must sit in the workflow's top-level `do` list — not
//! inside `for`, `fork`, `try`, a nested `do`, or a function (rejected at load); run as a
//! sub-workflow, such a task faults with a `configuration` error when it would wait.
//!
//! **Providers.** `openai`: any OpenAI-compatible Chat Completions endpoint
//! ([`LlmOptions`](super::LlmOptions): base URL and key from the host), over the engine's HTTP
//! client. An agent without `model` (or without `model.name`) uses the host's default model.
//! `bedrock`: Amazon Bedrock's Converse API ([`bedrock`]: SigV4-signed with the host's IAM
//! credentials, over the same client); `model.name` (a model id or inference profile) is
//! required, and a structured output is asked for in the system prompt, then validated and
//! re-asked as above.
//! Each attempt is bounded by the call policy's timeout and by the deadline; 429, 5xx and
//! connection failures are retried with exponential backoff and full jitter, honouring
//! `Retry-After` / `retry-after-ms`, as long as the wait ends before the deadline; other
//! failures, and the last one, fault the task with a `communication` error. Model calls are
//! metered as `llm` usage, not as `http`. Every model call that got an answer is recorded,
//! with the token counts the provider reported, even when the run faults later.

mod bedrock;
mod load;
mod mcp_tools;
mod openai;
mod provider;
mod run;
pub(crate) mod state;

pub(crate) use run::Resume;
pub(crate) use state::fingerprint;

use super::expr::{Expr, Template};
use super::schema::Schema;
use serde_json::Value;

/// How many times an agent is re-asked for a structured output that does not match its schema.
pub(crate) const STRUCTURED_REASKS: u32 = 2;

/// A compiled `call: agents`.
pub(crate) struct AgentsCall {
    /// `context_triggers` (mozaiks): context variables set once a condition holds.
    pub(crate) context_triggers: Box<[ContextTrigger]>,
    /// The agents, in declaration order.
    pub(crate) agents: Box<[Agent]>,
    /// Index of `initial_agent`.
    pub(crate) initial_agent: usize,
    /// `initial_message`: the user's opening message (and their reply on resume, without
    /// `reply_message`).
    pub(crate) initial_message: Option<Template>,
    /// `reply_message`: the user's reply on resume, from the new input.
    pub(crate) reply_message: Option<Template>,
    /// `reply_context` (mozaiks): context variables from the new input on resume, set over
    /// the conversation's (an object; `null` sets nothing).
    pub(crate) reply_context: Option<Template>,
    /// `context`: the initial context variables.
    pub(crate) context: Option<Template>,
    /// `max_turns`.
    pub(crate) max_turns: Option<u64>,
    /// The task's index in the top-level `do` list, when the conversation can hand back to the
    /// user (so the run can wait there and resume).
    pub(crate) waits_at: Option<usize>,
    /// `speaker_selection`.
    pub(crate) selection: Option<SpeakerSelection>,
}

impl AgentsCall {
    /// The index of the agent called `name`.
    pub(crate) fn agent(&self, name: &str) -> Option<usize> {
        self.agents.iter().position(|agent| agent.name == name)
    }
}

/// One agent.
pub(crate) struct Agent {
    /// `name`.
    pub(crate) name: String,
    /// `description` (what a speaker selection reads of it).
    pub(crate) description: Option<String>,
    /// The system message: `instructions`, or the `prompt_sections` joined.
    pub(crate) system: String,
    /// `context_variables`: the context variables whose current values its system message
    /// carries, one `NAME: value` line each, rendered anew for every model call.
    pub(crate) context_variables: Box<[String]>,
    /// `model`.
    pub(crate) model: ModelSpec,
    /// The functions it may call (`tools`).
    pub(crate) tools: Box<[Tool]>,
    /// Its model-decided handoffs, each a `transfer_to_<target>` tool.
    pub(crate) transfers: Box<[Transfer]>,
    /// Its `scope: pre` conditions, in order.
    pub(crate) pre: Box<[Condition]>,
    /// Its `scope: post` conditions, in order.
    pub(crate) post: Box<[Condition]>,
    /// `after_work`.
    pub(crate) after_work: Target,
    /// `output_schema`: the document (sent to the model) and its compiled form.
    pub(crate) output_schema: Option<(Value, Schema)>,
    /// `max_consecutive_auto_reply`.
    pub(crate) max_consecutive_auto_reply: Option<u64>,
    /// The tools as offered to the model: the functions, the UI tools, then the transfers.
    pub(crate) tool_specs: Box<[ToolSpec]>,
    /// `ui_tools`: tools the user answers in the chat UI (or, without `wait`, that show
    /// something there).
    pub(crate) ui_tools: Box<[UiTool]>,
    /// `mcp_servers`: MCP servers whose tools it may call.
    pub(crate) mcp: Box<[McpTools]>,
}

/// How long a server's `tools/list` answer is reused (per process, per URL and headers): a
/// cache, which a changed tool list outlives by this much at most.
pub(crate) const MCP_TOOLS_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// A server's tools as listed: its URL and headers, when, and the tools.
pub(crate) type ListedTools = (String, std::time::Instant, std::sync::Arc<[ToolSpec]>);

/// An `mcp_servers` entry: the tools an agent takes from an MCP server.
pub(crate) struct McpTools {
    /// `endpoint` (with `authentication`) and `headers`.
    pub(crate) server: crate::mcp::McpServer,
    /// `tools`: the names offered to the model (all the server lists, without it).
    pub(crate) allow: Option<Box<[String]>>,
    /// `protocolVersion`.
    pub(crate) protocol_version: String,
    /// `context: true` (the MozaiksAI tool host): each call carries the conversation's context
    /// variables, and the result's `_meta` may update them or hand off.
    pub(crate) context: bool,
    /// `aws_iam: true`: requests signed with the function's IAM credentials (SigV4, service
    /// `lambda`), for a tool host behind a Function URL with `AuthType: AWS_IAM`.
    pub(crate) aws_iam: bool,
    /// `tools/list` answers, by URL and headers: when fetched, and the tools.
    pub(crate) cache: std::sync::Mutex<Vec<ListedTools>>,
}

/// A UI tool: the model's call is a request to the chat UI, not a function run.
pub(crate) struct UiTool {
    /// The tool's name.
    pub(crate) name: String,
    /// `component`: what the chat UI renders.
    pub(crate) component: String,
    /// `mode` (`inline` by default, `artifact`, …: the chat UI's).
    pub(crate) mode: String,
    /// `payload_schema`: the call's arguments, checked before anything reaches the UI.
    pub(crate) payload: Option<Schema>,
    /// `actions`: what the user may answer, each `{id, …}` as declared (sent to the UI) and
    /// the schema of its answer.
    pub(crate) actions: Vec<(Value, Option<Schema>)>,
    /// `wait` (default `true`): the run waits for the user's answer, which becomes the tool's
    /// result; `false`: display only, the tool's result says it was shown.
    pub(crate) wait: bool,
    /// `context` (mozaiks `ui_response` triggers): evaluated on the user's answer (as `.`), an
    /// object of context variables set over the conversation's.
    pub(crate) context: Option<Template>,
}

/// A function an agent may call.
pub(crate) struct Tool {
    /// The function's name (the tool's name).
    pub(crate) name: String,
    /// Index into `Workflow::functions`.
    pub(crate) function: usize,
}

/// A model-decided handoff.
pub(crate) struct Transfer {
    /// `transfer_to_<target>`.
    pub(crate) tool: String,
    /// Where it goes.
    pub(crate) target: Target,
}

/// A handoff on a condition.
/// `context_triggers` entry: `variable` becomes `true` once `when` holds (over `{ context,
/// messages, agent }`, like a handoff's `when`); it is checked whenever the conversation is
/// about to be routed, and never reset (MozaiksAI's `agent_text` / `user_text` triggers).
pub(crate) struct ContextTrigger {
    /// The context variable it sets.
    pub(crate) variable: String,
    /// When.
    pub(crate) when: Expr,
}

pub(crate) struct Condition {
    /// `when`.
    pub(crate) when: Expr,
    /// Where it goes.
    pub(crate) target: Target,
}

/// Where the conversation goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Another agent (or the same), by index.
    Agent(usize),
    /// Back to the user: the run waits.
    User,
    /// The conversation ends.
    Terminate,
    /// The task's `speaker_selection` picks (the default `after_work` under a pattern).
    Select,
}

/// `speaker_selection` (AG2's AutoPattern, RoundRobinPattern, RandomPattern): who speaks next
/// when no handoff decides.
pub(crate) struct SpeakerSelection {
    /// How.
    pub(crate) mode: Selection,
    /// `user: true`: the user is a candidate (the run waits when picked).
    pub(crate) user: bool,
    /// `model`: the model that picks (`auto`); default: the host's default model.
    pub(crate) model: ModelSpec,
}

/// How the next speaker is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selection {
    /// A model reads the conversation and names the next speaker, as AG2's group manager does.
    Auto,
    /// The next agent in declaration order (then the user, with `user: true`), round and round.
    RoundRobin,
    /// Any other candidate, at random.
    Random,
}

/// Which provider serves an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProviderKind {
    /// OpenAI-compatible Chat Completions.
    OpenAi,
    /// Amazon Bedrock Runtime, the Converse API.
    Bedrock,
}

impl ProviderKind {
    /// The name used in workflows and usage events.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Bedrock => "bedrock",
        }
    }
}

/// An agent's `model`.
pub(crate) struct ModelSpec {
    /// `provider`.
    pub(crate) provider: ProviderKind,
    /// `name`; `None`: the host's default model.
    pub(crate) name: Option<String>,
    /// `temperature`.
    pub(crate) temperature: Option<f64>,
    /// `top_p`.
    pub(crate) top_p: Option<f64>,
    /// `max_tokens`.
    pub(crate) max_tokens: Option<u64>,
}

/// A tool as offered to a model.
#[derive(Clone)]
pub(crate) struct ToolSpec {
    /// The tool's name.
    pub(crate) name: String,
    /// What it does, for the model.
    pub(crate) description: String,
    /// The JSON Schema of its arguments (an object schema).
    pub(crate) parameters: Value,
}
