//! The workflow engine: Serverless Workflow DSL 1.0 documents, loaded and compiled once,
//! run in-process as many times as needed. It knows nothing of Lambda, JWT or EventBridge.
//!
//! - [`Registry::load_dir`] loads a bundle (YAML/JSON), validates it, compiles every jq
//!   expression and links `run: workflow` references; [`Registry::resolve`] picks a workflow
//!   by id and version (CONTRACT §6). [`Registry::load_dir_with`] and
//!   [`Workflow::parse_with`] take [`EngineOptions`].
//! - A sub-directory of the bundle holding `orchestrator.yaml` is a MozaiksAI workflow folder:
//!   `mozaiksai` translates it into one document with one `call: agents` task, which then
//!   loads like any other (the mapping, and what cannot be translated, are in its docs).
//! - [`Workflow::run`] runs one execution under a deadline and returns its [`Outcome`], its
//!   [`Metrics`], the CloudEvents it emitted and its model calls ([`LlmCall`]). Faults are
//!   DSL errors ([`WorkflowError`]), load problems [`LoadError`]s. A run that hands a
//!   conversation back to the user ends [`Outcome::Waiting`] with a state that
//!   [`Workflow::resume`] takes back (the host seals it into a continuation).
//!
//! Runs every task kind a stateless invocation can: `do`, `set`, `switch`, `for`, `fork`,
//! `try` (with retry policies), `raise`, `wait`, `emit`, `call` (`http`, `openapi`,
//! `agents` — multi-agent conversations on language models, see `agents` — and functions of
//! `use.functions`), `run: workflow`; with the DSL's data flow (`input.from`
//! and `input.schema`, `output.as` and `output.schema`, `export.as` and `export.schema`,
//! `if`, `then`), `timeout` on workflows and tasks, `evaluate.mode` strict or loose, and
//! `use` (`authentications`, `errors`, `functions`, `retries`, `secrets`, `timeouts`).
//! Rejected at load, naming the task and why: `listen`, `run: container|shell|script`,
//! `call: grpc|asyncapi` (they need a stateful host or a container runtime), `schedule`
//! (the caller schedules invocations), `call: a2a|mcp`, `use.catalogs`, `use.extensions`,
//! and `oauth2`/`oidc`/`digest`/`certificate` authentication.
//!
//! Runtime arguments: `$context`, `$input`, `$output`, `$secrets`, `$task`, `$workflow`,
//! `$runtime`, plus `$execution` (`{ id, claims }`, CONTRACT §5).
//!
//! **Secrets.** A workflow declares the secrets it needs in `use.secrets`; only those appear
//! in `$secrets` (and can back `basic`/`bearer` authentication with `use: <secret>`). By
//! default secret `name` is read at load from the environment variable
//! `MOZAIKS_SECRET_<NAME>` (upper-cased, other characters `_`; see [`SecretSource`]); a value
//! that is a JSON object is used as an object. A declared secret that is not configured stops
//! the load with an error naming the variable to set — an execution never starts without its
//! secrets. Hosts may pass values directly ([`SecretSource::Values`]). Secret values are never
//! logged: `Debug` output of the options names secrets without values, and nothing in the
//! engine logs workflow data. (Expressions can still copy a secret into the output: that is
//! the workflow author's choice, as the DSL warns.)
//!
//! **Agents.** `call: agents` (module `agents`: its docs hold the shape and every rule) runs
//! agents with instructions, tools (functions of `use.functions`), handoffs by the model's
//! decision or on jq conditions, `after_work`, structured outputs and `max_turns`, on an
//! OpenAI-compatible Chat Completions endpoint or on Amazon Bedrock's Converse API, as the host
//! configures them ([`LlmOptions`]; the engine reads no environment variable for them). A handoff to `user` makes the run wait; only a task
//! of the top-level `do` may wait (checked at load).
//!
//! # Example
//!
//! Load a document and run it (a Tokio runtime with the time driver drives the run):
//!
//! ```
//! use std::path::Path;
//! use std::time::Duration;
//! use mozaiks_workflow::{ExecutionInfo, Outcome, Workflow};
//! use serde_json::json;
//!
//! let workflow = Workflow::parse(
//!     Path::new("greet.yaml"),
//!     r#"
//! document: { dsl: '1.0.3', namespace: docs, name: greet, version: '1.0.0' }
//! do:
//!   - greet:
//!       set:
//!         greeting: '${ "Hello, " + .name + "!" }'
//! "#,
//! )?;
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let exec = ExecutionInfo { execution_id: "exec-1".into(), claims: json!({}) };
//! let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
//! let result = runtime.block_on(workflow.run(json!({ "name": "Ada" }), &exec, deadline));
//! assert_eq!(result.outcome, Outcome::Completed(json!({ "greeting": "Hello, Ada!" })));
//! assert_eq!(result.metrics.tasks_executed, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Rooms
//!
//! In layers, each using only those below it: `value`, `error`, `time`, `version`,
//! `duration`, `redact`, `stack` (the bottom: data, errors, clocks); `jq_library` and `expr`
//! (jq); `schema` (JSON Schema); `options` (what a host configures); `model` (the compiled
//! form) and `load` (document → model, validation); `mozaiksai` (MozaiksAI folders →
//! documents); `http` and `openapi` (calls); `agents` (conversations, model providers,
//! waiting state); `run` (the runners); `registry` (bundles: versions, links).

#![warn(missing_docs)]

mod a2a;
mod agents;
pub mod aws;
mod duration;
mod error;
mod expr;
mod http;
mod jq_library;
mod load;
mod mcp;
mod model;
pub mod mozaiksai;
mod openapi;
mod options;
mod redact;
mod registry;
mod run;
mod schema;
mod stack;
pub mod time;
mod value;
mod version;

#[cfg(test)]
mod tests;

pub use aws::{AwsClient, AwsFailure, AwsResponse};
pub use error::{LoadError, WorkflowError};
pub use model::{Workflow, WorkflowId};
pub use options::{
    AwsCredentials, BedrockOptions, EngineOptions, LlmCallPolicy, LlmOptions, OpenAiOptions,
    SecretSource, ToolHost, DEFAULT_OPENAI_BASE_URL, DEFAULT_SECRET_PREFIX,
};
pub use redact::{Redactor, REDACTED};
pub use registry::Registry;
pub use run::{
    ExecutionInfo, LlmCall, Metrics, Outcome, Progress, ResumeError, RunResult, Snapshot,
};
