//! `emit`: the CloudEvent its attributes describe (`source` and `type` required; `id`,
//! `specversion`, `time` and `datacontenttype` filled in when absent) is the task's output,
//! and is collected for the host to deliver.

use super::{expression_error, lock, Runner, Stop, NULL};
use crate::error::WorkflowError;
use crate::model::Emit;
use crate::value::{from_json_ref, to_json};
use jaq_json::Val;
use serde_json::Value;
use std::time::SystemTime;

impl<'r> Runner<'r> {
    /// `emit`: the CloudEvent (id, specversion, time filled in when absent), collected.
    pub(super) fn emit(
        &self,
        emit: &Emit,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        locals: &[Val],
    ) -> Result<Val, Stop> {
        let attributes = self
            .eval(input, &NULL, descriptor, locals, |args| {
                emit.attributes.eval(input, args)
            })
            .map_err(|e| expression_error(instance, e))?;
        let Ok(Value::Object(mut event)) = to_json(&attributes) else {
            return Err(Stop::Fault(WorkflowError::validation(
                instance,
                "the event's attributes must be a map".into(),
            )));
        };
        for attribute in ["source", "type"] {
            let present = event
                .get(attribute)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty());
            if !present {
                return Err(Stop::Fault(WorkflowError::validation(
                    instance,
                    format!("the event's `{attribute}` must be a non-empty string"),
                )));
            }
        }
        let now = SystemTime::now();
        if !event.get("id").is_some_and(Value::is_string) {
            event.insert("id".into(), Value::String(uuid::Uuid::now_v7().to_string()));
        }
        event
            .entry("specversion")
            .or_insert_with(|| Value::String("1.0".into()));
        if !event.get("time").is_some_and(Value::is_string) {
            event.insert(
                "time".into(),
                Value::String(crate::time::rfc3339_millis(now)),
            );
        }
        if event.contains_key("data") && !event.contains_key("datacontenttype") {
            event.insert(
                "datacontenttype".into(),
                Value::String("application/json".into()),
            );
        }
        let event = Value::Object(event);
        let output = from_json_ref(&event);
        lock(&self.shared.events).push(event);
        Ok(output)
    }
}
