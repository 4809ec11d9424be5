//! Usage: what an execution did, measured and emitted as events (CONTRACT §7) — and the way out
//! for the other events an execution produces, the CloudEvents its workflow emitted.
//!
//! - [`events`]: the event schema (`mozaiks.usage.execution`, `mozaiks.usage.llm`) and ids.
//! - [`workflow_events`]: an emitted CloudEvent as an EventBridge entry
//!   (`MOZAIKS_WORKFLOW_EVENT_BUS`).
//! - [`sink`]: where an execution's events go: stdout lines, or EventBridge with a stdout
//!   fallback for whatever cannot be delivered; both streams share one client and one delivery.
//! - [`delivery`]: PutEvents batching, retries and the deadline, independent of the client.
//! - [`eventbridge`]: the PutEvents client (JSON protocol, SigV4, the engine's HTTP client),
//!   built once at init from the Lambda environment.
//!
//! Usage is informational. The runtime measures and emits it; nothing in the runtime reads it
//! back to decide anything, and its delivery never changes an execution's result.

pub mod delivery;
pub mod eventbridge;
pub mod events;
pub mod sink;
pub mod workflow_events;

pub use events::{
    ExecutionUsage, LlmCallUsage, UsageEvent, DETAIL_TYPE_EXECUTION, DETAIL_TYPE_LLM,
};
pub use sink::{Delivery, Sink, Stream};
pub use workflow_events::WorkflowEvent;
