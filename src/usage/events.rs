//! The usage event schema (CONTRACT §7): `mozaiks.usage.execution` and `mozaiks.usage.llm`.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::time::rfc3339_millis;
use crate::workflow::WorkflowId;

/// `DetailType` of the once-per-execution event.
pub const DETAIL_TYPE_EXECUTION: &str = "mozaiks.usage.execution";
/// `DetailType` of the once-per-model-call event.
pub const DETAIL_TYPE_LLM: &str = "mozaiks.usage.llm";
/// `schema_version` of every detail this runtime writes.
pub const SCHEMA_VERSION: &str = "1";

/// Namespace of the name-based (v5) UUIDs used as `event_id`.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d6f7a61_696b_7375_7361_676565766e74);

/// The deterministic `event_id` of an execution's event: the same execution id, detail type and
/// sequence always give the same id, so a resent entry can be de-duplicated downstream.
pub fn event_id(execution_id: &str, detail_type: &str, sequence: u64) -> String {
    let name = format!("{execution_id}/{detail_type}/{sequence}");
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes()).to_string()
}

/// One usage event, ready for a sink: its `DetailType`, time and serialized `Detail`.
#[derive(Debug, Clone)]
pub struct UsageEvent {
    /// The detail's `event_id` (deterministic: a resend carries the same one).
    pub event_id: String,
    /// EventBridge `DetailType`.
    pub detail_type: &'static str,
    /// EventBridge `Time`.
    pub time: SystemTime,
    /// The `Detail` JSON object, serialized once.
    pub detail: Box<RawValue>,
}

/// Model-call totals of an execution.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct LlmTotals {
    /// Model calls made.
    pub calls: u64,
    /// Prompt tokens, as the providers reported them.
    pub prompt_tokens: u64,
    /// Completion tokens, as the providers reported them.
    pub completion_tokens: u64,
    /// Total tokens, as the providers reported them.
    pub total_tokens: u64,
}

/// Outbound HTTP totals of an execution.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct HttpTotals {
    /// HTTP calls made by the workflow.
    pub calls: u64,
    /// Request bytes sent.
    pub bytes_sent: u64,
    /// Response bytes received.
    pub bytes_received: u64,
}

/// What one execution did: the measured facts the execution event reports.
#[derive(Debug, Clone)]
pub struct ExecutionUsage<'a> {
    /// The execution id.
    pub execution_id: &'a str,
    /// The Lambda request id.
    pub request_id: &'a str,
    /// The workflow that ran.
    pub workflow: &'a WorkflowId,
    /// `completed`, `waiting` or `faulted`.
    pub status: &'static str,
    /// When the execution started.
    pub started_at: SystemTime,
    /// When it ended.
    pub ended_at: SystemTime,
    /// Tasks executed.
    pub tasks_executed: u64,
    /// Model-call totals.
    pub llm: LlmTotals,
    /// HTTP totals.
    pub http: HttpTotals,
    /// Size of the execution input as received.
    pub input_bytes: u64,
    /// Size of the serialized output.
    pub output_bytes: u64,
    /// The ExecutionContext, verbatim as signed.
    pub context: &'a RawValue,
}

#[derive(Serialize)]
struct ExecutionDetail<'a> {
    schema_version: &'static str,
    event_id: &'a str,
    execution_id: &'a str,
    sequence: u64,
    workflow: &'a WorkflowId,
    status: &'static str,
    started_at: String,
    ended_at: String,
    duration_ms: u64,
    tasks_executed: u64,
    llm: LlmTotals,
    http: HttpTotals,
    input_bytes: u64,
    output_bytes: u64,
    request_id: &'a str,
    context: &'a RawValue,
}

impl ExecutionUsage<'_> {
    /// The `mozaiks.usage.execution` event, with the given sequence number.
    pub fn to_event(&self, sequence: u64) -> Result<UsageEvent, serde_json::Error> {
        let duration_ms = millis_between(self.started_at, self.ended_at);
        let event_id = event_id(self.execution_id, DETAIL_TYPE_EXECUTION, sequence);
        let detail = ExecutionDetail {
            schema_version: SCHEMA_VERSION,
            event_id: &event_id,
            execution_id: self.execution_id,
            sequence,
            workflow: self.workflow,
            status: self.status,
            started_at: rfc3339_millis(self.started_at),
            ended_at: rfc3339_millis(self.ended_at),
            duration_ms,
            tasks_executed: self.tasks_executed,
            llm: self.llm,
            http: self.http,
            input_bytes: self.input_bytes,
            output_bytes: self.output_bytes,
            request_id: self.request_id,
            context: self.context,
        };
        let detail = serde_json::value::to_raw_value(&detail)?;
        Ok(UsageEvent {
            event_id,
            detail_type: DETAIL_TYPE_EXECUTION,
            time: self.ended_at,
            detail,
        })
    }
}

/// What one model call used: the facts a `mozaiks.usage.llm` event reports. The events of an
/// execution's model calls come before its execution event, in call order (lower sequences).
#[derive(Debug, Clone)]
pub struct LlmCallUsage<'a> {
    /// The execution id.
    pub execution_id: &'a str,
    /// The model, as named to the provider.
    pub model: &'a str,
    /// The provider that served the call.
    pub provider: &'a str,
    /// The agent (task) that made the call.
    pub agent: &'a str,
    /// Prompt tokens, as the provider reported them.
    pub prompt_tokens: u64,
    /// Completion tokens, as the provider reported them.
    pub completion_tokens: u64,
    /// Total tokens, as the provider reported them.
    pub total_tokens: u64,
    /// Prompt tokens served from the provider's cache, as it reported them (0 when it did not).
    pub cached_tokens: u64,
    /// When the call started.
    pub started_at: SystemTime,
    /// When its answer was complete.
    pub ended_at: SystemTime,
    /// The ExecutionContext, verbatim as signed.
    pub context: &'a RawValue,
}

#[derive(Serialize)]
struct LlmDetail<'a> {
    schema_version: &'static str,
    event_id: &'a str,
    execution_id: &'a str,
    sequence: u64,
    model: &'a str,
    provider: &'a str,
    agent: &'a str,
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    cached_tokens: u64,
    duration_ms: u64,
    context: &'a RawValue,
}

impl LlmCallUsage<'_> {
    /// The `mozaiks.usage.llm` event, with the given sequence number.
    pub fn to_event(&self, sequence: u64) -> Result<UsageEvent, serde_json::Error> {
        let event_id = event_id(self.execution_id, DETAIL_TYPE_LLM, sequence);
        let detail = LlmDetail {
            schema_version: SCHEMA_VERSION,
            event_id: &event_id,
            execution_id: self.execution_id,
            sequence,
            model: self.model,
            provider: self.provider,
            agent: self.agent,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
            total_tokens: self.total_tokens,
            cached_tokens: self.cached_tokens,
            duration_ms: millis_between(self.started_at, self.ended_at),
            context: self.context,
        };
        let detail = serde_json::value::to_raw_value(&detail)?;
        Ok(UsageEvent {
            event_id,
            detail_type: DETAIL_TYPE_LLM,
            time: self.ended_at,
            detail,
        })
    }
}

/// Whole milliseconds from `start` to `end` (0 if the clock went backwards).
fn millis_between(start: SystemTime, end: SystemTime) -> u64 {
    let millis = end.duration_since(start).unwrap_or_default().as_millis();
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn event_ids_are_deterministic_and_distinct() {
        let a = event_id("exec-1", DETAIL_TYPE_EXECUTION, 1);
        assert_eq!(a, event_id("exec-1", DETAIL_TYPE_EXECUTION, 1));
        assert_ne!(a, event_id("exec-1", DETAIL_TYPE_EXECUTION, 2));
        assert_ne!(a, event_id("exec-1", DETAIL_TYPE_LLM, 1));
        assert_ne!(a, event_id("exec-2", DETAIL_TYPE_EXECUTION, 1));
        assert_eq!(Uuid::parse_str(&a).unwrap().get_version_num(), 5);
    }

    #[test]
    fn execution_detail_carries_every_field_and_the_context_verbatim() {
        let raw_context = r#"{"sub":"u1",  "plan":"pro","n":1.50}"#;
        let context: Box<RawValue> = serde_json::from_str(raw_context).unwrap();
        let workflow = WorkflowId {
            namespace: "mozaiks".into(),
            name: "hello".into(),
            version: "1.0.0".into(),
        };
        let started = UNIX_EPOCH + Duration::from_millis(1_000_000);
        let usage = ExecutionUsage {
            execution_id: "e1",
            request_id: "r1",
            workflow: &workflow,
            status: "completed",
            started_at: started,
            ended_at: started + Duration::from_millis(42),
            tasks_executed: 3,
            llm: LlmTotals::default(),
            http: HttpTotals::default(),
            input_bytes: 10,
            output_bytes: 20,
            context: &context,
        };
        let event = usage.to_event(1).unwrap();
        assert_eq!(event.detail_type, DETAIL_TYPE_EXECUTION);
        // Byte for byte, as signed: spacing and number spelling preserved.
        assert!(event.detail.get().contains(raw_context));
        let v: serde_json::Value = serde_json::from_str(event.detail.get()).unwrap();
        assert_eq!(v["schema_version"], "1");
        assert_eq!(v["duration_ms"], 42);
        assert_eq!(v["tasks_executed"], 3);
        assert_eq!(v["workflow"]["name"], "hello");
        assert_eq!(v["started_at"], "1970-01-01T00:16:40.000Z");
        assert_eq!(v["http"]["calls"], 0);
        assert_eq!(v["llm"]["total_tokens"], 0);
        assert_eq!(v["event_id"], event_id("e1", DETAIL_TYPE_EXECUTION, 1));
    }

    #[test]
    fn llm_detail_carries_every_field_and_its_own_sequence() {
        let context: Box<RawValue> = serde_json::from_str(r#"{"sub":"u1"}"#).unwrap();
        let started = UNIX_EPOCH + Duration::from_millis(5_000);
        let call = LlmCallUsage {
            execution_id: "e1",
            model: "m",
            provider: "p",
            agent: "writer",
            prompt_tokens: 7,
            completion_tokens: 3,
            total_tokens: 10,
            cached_tokens: 2,
            started_at: started,
            ended_at: started + Duration::from_millis(250),
            context: &context,
        };
        let event = call.to_event(2).unwrap();
        assert_eq!(event.detail_type, DETAIL_TYPE_LLM);
        assert_eq!(event.event_id, event_id("e1", DETAIL_TYPE_LLM, 2));
        assert_eq!(event.time, started + Duration::from_millis(250));
        let v: serde_json::Value = serde_json::from_str(event.detail.get()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "schema_version": "1", "event_id": event.event_id, "execution_id": "e1",
                "sequence": 2, "model": "m", "provider": "p", "agent": "writer",
                "prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
                "cached_tokens": 2, "duration_ms": 250, "context": {"sub": "u1"}
            })
        );
    }
}
