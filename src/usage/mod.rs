//! Usage: what an execution did, measured and emitted as events (CONTRACT §7).
//!
//! Usage is informational. The runtime measures and emits it; nothing in the runtime reads it
//! back to decide anything, and its delivery never changes an execution's result.

pub mod events;
pub mod sink;

pub use events::{ExecutionUsage, UsageEvent, DETAIL_TYPE_EXECUTION, DETAIL_TYPE_LLM};
pub use sink::Sink;
