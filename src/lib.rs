//! MozaiksAI execution runtime: one AWS Lambda invocation = one stateless workflow execution.
//!
//! The flow (CONTRACT §1), and the module that owns each step:
//!
//! ```text
//! event ─▶ invoke (parse) ─▶ auth (verify) ─▶ workflow (resolve, run) ─▶ usage (emit) ─▶ invoke (respond)
//!                     └──────────── execution: one execution, end to end ────────────┘
//! ```
//!
//! - [`config`]: the environment, parsed and validated once at init into typed configuration.
//! - [`invoke`]: the edges. A Lambda event (direct payload or API Gateway / ALB / Function URL
//!   HTTP event) becomes an [`execution::Request`]; an [`execution::ExecutionResult`] becomes the
//!   response shape its origin expects. Nothing else knows Lambda event shapes.
//! - [`auth`]: launch token (compact JWS) → [`auth::ExecutionContext`], with keys from
//!   configuration only.
//! - [`workflow`]: the Serverless Workflow DSL 1.0 engine (loading, validation, jq expressions,
//!   task runners). It knows nothing of Lambda, JWT or EventBridge.
//! - [`usage`]: metering and the usage events of CONTRACT §7, and the sink that delivers them
//!   together with the CloudEvents workflows emit (`MOZAIKS_WORKFLOW_EVENT_BUS`).
//! - [`continuation`]: the sealed state of a `waiting` execution, handed to the caller and
//!   opened (checked, bound to workflow and caller) when it comes back.
//! - [`execution`]: verify → resolve → run → meter → emit → result, for one invocation.
//! - [`engine_thread`]: the thread runs happen on, so that a computation no timer can
//!   interrupt never holds back the answer (the Lambda thread answers at the deadline).
//! - [`problem`]: the runtime's rejections as RFC 9457 problem details.
//! - [`time`]: wall-clock helpers (RFC 3339 timestamps).
//!
//! The runtime never authorizes, budgets or stops a run for policy: the token's claims are
//! opaque data, and usage is measured and emitted, never read back.

pub mod auth;
pub mod config;
pub mod continuation;
pub mod engine_thread;
pub mod execution;
pub mod invoke;
pub mod problem;
pub mod usage;

/// The workflow engine (crate `mozaiks-workflow`, `crates/workflow`).
pub use mozaiks_workflow as workflow;
/// Wall-clock helpers (the engine's).
pub use mozaiks_workflow::time;
