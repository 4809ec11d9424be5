//! Workflow events: the CloudEvents a run's `emit` tasks produced, as EventBridge entries for
//! `MOZAIKS_WORKFLOW_EVENT_BUS`.
//!
//! One entry per CloudEvent: `Source` is the event's `source`, `DetailType` its `type`, `Detail`
//! the whole CloudEvent as JSON (`id`, `specversion`, `source`, `type`, `time`, `data`,
//! extension attributes — so a consumer sees exactly what the workflow emitted), and `Time` its
//! `time` when that is an RFC 3339 date-time (otherwise no `Time`, and EventBridge stamps the
//! time it received the entry). The engine fills in `id`, `specversion` and `time` when the
//! workflow leaves them out.

use std::time::SystemTime;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::time::parse_rfc3339;

/// One emitted CloudEvent, ready for a sink.
#[derive(Debug, Clone)]
pub struct WorkflowEvent {
    /// The CloudEvent `id`.
    pub id: String,
    /// The CloudEvent `source`: the entry's `Source`.
    pub source: String,
    /// The CloudEvent `type`: the entry's `DetailType`.
    pub type_: String,
    /// The CloudEvent `time`, when it is RFC 3339: the entry's `Time`.
    pub time: Option<SystemTime>,
    /// The whole CloudEvent, serialized once: the entry's `Detail`.
    pub detail: Box<RawValue>,
}

impl WorkflowEvent {
    /// The entry of a CloudEvent as the engine returns it (a JSON object with string `id`,
    /// `source` and `type`). The error says which attribute is missing.
    pub fn from_cloud_event(event: &Value) -> Result<WorkflowEvent, String> {
        if !event.is_object() {
            return Err("the emitted event is not a JSON object".to_owned());
        }
        let attribute = |name: &str| -> Result<String, String> {
            match event.get(name).and_then(Value::as_str) {
                Some(value) if !value.is_empty() => Ok(value.to_owned()),
                _ => Err(format!(
                    "the emitted event has no `{name}` string: EventBridge needs it"
                )),
            }
        };
        let id = attribute("id")?;
        let source = attribute("source")?;
        let type_ = attribute("type")?;
        let time = event
            .get("time")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339);
        let detail = serde_json::value::to_raw_value(event)
            .map_err(|e| format!("the emitted event cannot be serialized: {e}"))?;
        Ok(WorkflowEvent {
            id,
            source,
            type_,
            time,
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn maps_source_type_time_and_keeps_the_whole_event_as_detail() {
        let cloud_event = json!({
            "id": "e-1", "specversion": "1.0", "source": "https://mozaiks.ai/orders",
            "type": "com.example.order.placed", "time": "2026-11-24T22:52:21.123Z",
            "datacontenttype": "application/json", "data": { "order": 7 }, "traceparent": "00-ab"
        });
        let event = WorkflowEvent::from_cloud_event(&cloud_event).unwrap();
        assert_eq!(event.id, "e-1");
        assert_eq!(event.source, "https://mozaiks.ai/orders");
        assert_eq!(event.type_, "com.example.order.placed");
        assert_eq!(
            event.time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_560_741_123))
        );
        let detail: Value = serde_json::from_str(event.detail.get()).unwrap();
        assert_eq!(detail, cloud_event);
    }

    #[test]
    fn a_time_that_is_not_rfc_3339_leaves_time_unset() {
        let event = WorkflowEvent::from_cloud_event(
            &json!({ "id": "e", "source": "s", "type": "t", "time": "yesterday" }),
        )
        .unwrap();
        assert_eq!(event.time, None);
        assert!(event.detail.get().contains("yesterday"));
    }

    #[test]
    fn a_missing_attribute_is_named() {
        for (event, missing) in [
            (json!({ "source": "s", "type": "t" }), "id"),
            (json!({ "id": "e", "type": "t" }), "source"),
            (json!({ "id": "e", "source": "", "type": "t" }), "source"),
            (json!({ "id": "e", "source": "s", "type": 7 }), "type"),
        ] {
            let error = WorkflowEvent::from_cloud_event(&event).unwrap_err();
            assert!(error.contains(&format!("`{missing}`")), "{error}");
        }
        assert!(WorkflowEvent::from_cloud_event(&json!([1])).is_err());
    }
}
