//! The workflow engine: Serverless Workflow DSL 1.0 documents, loaded and compiled once,
//! run in-process as many times as needed. It knows nothing of Lambda, JWT or EventBridge.
//!
//! - [`Registry::load_dir`] loads a bundle (YAML/JSON), validates it and compiles every jq
//!   expression; [`Registry::resolve`] picks a workflow by id and version (CONTRACT §6).
//! - [`Workflow::run`] runs one execution under a deadline and returns its [`Outcome`] and
//!   [`Metrics`]. Faults are DSL errors ([`WorkflowError`]), load problems [`LoadError`]s.
//!
//! Runs `do` and `set` tasks with the DSL's data flow (`input.from`, `output.as`,
//! `export.as`, `if`, `then`) and the runtime arguments `$context`, `$input`, `$output`,
//! `$secrets` (empty), `$task`, `$workflow`, `$runtime`, plus `$execution`
//! (`{ id, claims }`). Other task kinds are rejected at load.
//!
//! Rooms: `load` (document → model, validation), `model` (the compiled form), `expr` (jq),
//! `run` (the runners), `registry` (versions), `error`, `value` (JSON ↔ jq), `version` (semver).

mod error;
mod expr;
mod load;
mod model;
mod registry;
mod run;
mod value;
mod version;

#[cfg(test)]
mod tests;

pub use error::{LoadError, WorkflowError};
pub use model::{Workflow, WorkflowId};
pub use registry::Registry;
pub use run::{ExecutionInfo, Metrics, Outcome, RunResult};
