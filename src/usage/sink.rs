//! The sink: where an execution's outgoing events go — its usage events (CONTRACT §7) and the
//! CloudEvents its workflow emitted ([`super::workflow_events`]).
//!
//! Each stream has its own destination:
//!
//! | stream | with a bus | without (the embedded default) |
//! |---|---|---|
//! | usage events | `MOZAIKS_USAGE_EVENT_BUS` | stdout `{"usage_event": <entry>}` |
//! | workflow events | `MOZAIKS_WORKFLOW_EVENT_BUS` | stdout `{"workflow_event": <entry>}` |
//!
//! Both buses share one EventBridge client and one delivery ([`super::delivery`]: batching,
//! retries, the deadline): an execution's workflow events come first and its usage events
//! after them, in the same PutEvents calls when they fit. Every event that cannot be delivered
//! is one stdout line `{"usage_event_undelivered" | "workflow_event_undelivered": <entry>,
//! "error": "…"}`.
//!
//! An entry has the fields of an EventBridge PutEvents entry (`EventBusName` when there is a
//! bus, `Source`, `DetailType`, `Time`, `Detail`), `Detail` as a JSON object rather than a
//! string. No event is ever dropped without a line saying so.

use std::io::Write;
use std::time::{Instant as StdInstant, SystemTime};

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::delivery::{self, Entry, RetryPolicy};
use super::eventbridge::{AwsSettings, EventBridge, SettingsError};
use super::events::UsageEvent;
use super::workflow_events::WorkflowEvent;
use crate::config::UsageConfig;
use crate::time::rfc3339_millis;

/// Time kept back from the invocation deadline for writing undelivered events to stdout and
/// sending the response.
const FINISH_MARGIN: std::time::Duration = std::time::Duration::from_millis(50);

/// Destinations for an execution's outgoing events, built once at init.
#[derive(Debug, Clone)]
pub struct Sink {
    /// The `Source` of every usage event.
    usage_source: String,
    /// How events that have a bus get there.
    transport: Transport,
}

#[derive(Debug, Clone)]
enum Transport {
    /// No bus at all: every event is a stdout line.
    Stdout,
    /// PutEvents for the streams that have a bus (at least one does); stdout for the others
    /// and for whatever cannot be delivered.
    EventBridge {
        client: EventBridge,
        policy: RetryPolicy,
        usage_bus: Option<String>,
        workflow_bus: Option<String>,
    },
}

/// Which stream an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// A usage event (`mozaiks.usage.*`).
    Usage,
    /// A CloudEvent a workflow emitted.
    Workflow,
}

impl Stream {
    /// The key of its stdout line, and of its undelivered line.
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Stream::Usage => ("usage_event", "usage_event_undelivered"),
            Stream::Workflow => ("workflow_event", "workflow_event_undelivered"),
        }
    }
}

/// What became of the events handed to a sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Events that reached their destination (their bus, or stdout when they have none).
    pub delivered: usize,
    /// Events written to stdout as undelivered, with the reason each was not delivered.
    pub undelivered: Vec<UndeliveredEvent>,
    /// PutEvents calls made (0 for stdout).
    pub calls: u32,
}

/// An event written to stdout as undelivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliveredEvent {
    /// Its stream.
    pub stream: Stream,
    /// Its id (a usage event's `event_id`, a CloudEvent's `id`).
    pub event_id: String,
    /// Why it was not delivered (the line's `error`).
    pub error: String,
}

/// One event on its way out.
struct Outgoing<'a> {
    stream: Stream,
    event_id: &'a str,
    /// `None`: a stdout line.
    bus: Option<&'a str>,
    source: &'a str,
    detail_type: &'a str,
    time: Option<SystemTime>,
    detail: &'a RawValue,
}

impl Outgoing<'_> {
    fn entry(&self) -> StdoutEntry<'_> {
        StdoutEntry {
            event_bus_name: self.bus,
            source: self.source,
            detail_type: self.detail_type,
            time: self.time.map(rfc3339_millis),
            detail: self.detail,
        }
    }

    /// Its stdout line: the event, or the undelivered event and why.
    fn line(&self, error: Option<&str>) -> serde_json::Result<Vec<u8>> {
        let (key, undelivered_key) = self.stream.keys();
        match error {
            None => serde_json::to_vec(&Line {
                key,
                entry: self.entry(),
                error: None,
            }),
            Some(error) => serde_json::to_vec(&Line {
                key: undelivered_key,
                entry: self.entry(),
                error: Some(error),
            }),
        }
    }
}

#[derive(Serialize)]
struct StdoutEntry<'a> {
    #[serde(rename = "EventBusName", skip_serializing_if = "Option::is_none")]
    event_bus_name: Option<&'a str>,
    #[serde(rename = "Source")]
    source: &'a str,
    #[serde(rename = "DetailType")]
    detail_type: &'a str,
    #[serde(rename = "Time", skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(rename = "Detail")]
    detail: &'a RawValue,
}

/// `{"<key>": <entry>, "error": "…"}` (no `error` for a plain event line).
struct Line<'a> {
    key: &'static str,
    entry: StdoutEntry<'a>,
    error: Option<&'a str>,
}

impl Serialize for Line<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1 + usize::from(self.error.is_some())))?;
        map.serialize_entry(self.key, &self.entry)?;
        if let Some(error) = self.error {
            map.serialize_entry("error", error)?;
        }
        map.end()
    }
}

/// `{"workflow_event_undelivered": {"Detail": <event>}, "error": "…"}`: an emitted event that
/// is not a CloudEvent EventBridge could take (the engine never produces one).
#[derive(Serialize)]
struct MalformedWorkflowEventLine<'a> {
    workflow_event_undelivered: MalformedEntry<'a>,
    error: &'a str,
}

#[derive(Serialize)]
struct MalformedEntry<'a> {
    #[serde(rename = "Detail")]
    detail: &'a Value,
}

impl Sink {
    /// The sink configuration asks for: stdout without any bus; otherwise an EventBridge client
    /// for the buses, from the Lambda environment read through `lookup`, its connection opened
    /// (bounded, best effort) so that the first invocation does not pay for it.
    pub async fn from_config(
        usage: &UsageConfig,
        workflow_event_bus: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Sink, SettingsError> {
        let needed_by = match (&usage.event_bus, workflow_event_bus) {
            (None, None) => {
                return Ok(Sink {
                    usage_source: usage.source.clone(),
                    transport: Transport::Stdout,
                })
            }
            (Some(_), _) => "MOZAIKS_USAGE_EVENT_BUS",
            (None, Some(_)) => "MOZAIKS_WORKFLOW_EVENT_BUS",
        };
        let settings = AwsSettings::from_lookup(lookup, needed_by)?;
        let client = EventBridge::new(settings);
        client.warm_up().await;
        Ok(Sink {
            usage_source: usage.source.clone(),
            transport: Transport::EventBridge {
                client,
                policy: RetryPolicy::default(),
                usage_bus: usage.event_bus.clone(),
                workflow_bus: workflow_event_bus.map(str::to_owned),
            },
        })
    }

    /// Delivers one execution's outgoing events, finishing before `deadline`, the
    /// invocation's: the CloudEvents its workflow emitted (in the order emitted), then its
    /// usage events (its model calls' events, then its execution event). Never fails: whatever
    /// cannot be delivered is written to stdout with the reason.
    pub async fn emit(
        &self,
        workflow_events: &[Value],
        usage_events: &[UsageEvent],
        deadline: SystemTime,
    ) -> Delivery {
        if workflow_events.is_empty() && usage_events.is_empty() {
            return Delivery::default();
        }
        let (usage_bus, workflow_bus) = match &self.transport {
            Transport::Stdout => (None, None),
            Transport::EventBridge {
                usage_bus,
                workflow_bus,
                ..
            } => (usage_bus.as_deref(), workflow_bus.as_deref()),
        };

        let mut report = Delivery::default();
        let mut lines: Vec<serde_json::Result<Vec<u8>>> = Vec::new();
        let mut converted = Vec::with_capacity(workflow_events.len());
        for event in workflow_events {
            match WorkflowEvent::from_cloud_event(event) {
                Ok(event) => converted.push(event),
                Err(error) => {
                    lines.push(serde_json::to_vec(&MalformedWorkflowEventLine {
                        workflow_event_undelivered: MalformedEntry { detail: event },
                        error: &error,
                    }));
                    report.undelivered.push(UndeliveredEvent {
                        stream: Stream::Workflow,
                        event_id: event
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        error,
                    });
                }
            }
        }
        let outgoing: Vec<Outgoing<'_>> = converted
            .iter()
            .map(|e| Outgoing {
                stream: Stream::Workflow,
                event_id: &e.id,
                bus: workflow_bus,
                source: &e.source,
                detail_type: &e.type_,
                time: e.time,
                detail: &e.detail,
            })
            .chain(usage_events.iter().map(|e| Outgoing {
                stream: Stream::Usage,
                event_id: &e.event_id,
                bus: usage_bus,
                source: &self.usage_source,
                detail_type: e.detail_type,
                time: Some(e.time),
                detail: &e.detail,
            }))
            .collect();

        // Events without a bus: stdout lines.
        let to_stdout: Vec<&Outgoing<'_>> = outgoing.iter().filter(|o| o.bus.is_none()).collect();
        lines.extend(to_stdout.iter().map(|o| o.line(None)));

        // Events with a bus: one delivery.
        let to_bus: Vec<(&Outgoing<'_>, &str)> = outgoing
            .iter()
            .filter_map(|o| o.bus.map(|bus| (o, bus)))
            .collect();
        if let (Transport::EventBridge { client, policy, .. }, false) =
            (&self.transport, to_bus.is_empty())
        {
            let started = StdInstant::now();
            let entries: Vec<Entry<'_>> = to_bus
                .iter()
                .map(|(o, bus)| {
                    Entry::new(
                        o.event_id,
                        bus,
                        o.source,
                        o.detail_type,
                        o.detail.get(),
                        o.time,
                    )
                })
                .collect();
            let delivered =
                delivery::deliver(client, &entries, tokio_deadline(deadline), policy).await;
            for u in &delivered.undelivered {
                let (o, _) = to_bus[u.index];
                lines.push(o.line(Some(&u.error)));
                report.undelivered.push(UndeliveredEvent {
                    stream: o.stream,
                    event_id: o.event_id.to_owned(),
                    error: u.error.clone(),
                });
            }
            report.delivered += delivered.delivered;
            report.calls = delivered.calls;
            let count = |stream: Stream| to_bus.iter().filter(|(o, _)| o.stream == stream).count();
            // Milliseconds with microsecond precision.
            let delivery_ms = started.elapsed().as_micros() as f64 / 1000.0;
            if delivered.undelivered.is_empty() {
                tracing::info!(
                    delivered = delivered.delivered,
                    usage_events = count(Stream::Usage),
                    workflow_events = count(Stream::Workflow),
                    calls = delivered.calls,
                    delivery_ms,
                    "events delivered"
                );
            } else {
                tracing::warn!(
                    delivered = delivered.delivered,
                    undelivered = delivered.undelivered.len(),
                    usage_events = count(Stream::Usage),
                    workflow_events = count(Stream::Workflow),
                    calls = delivered.calls,
                    delivery_ms,
                    error = %delivered.undelivered[0].error,
                    "events not delivered to EventBridge; written to stdout as usage_event_undelivered / workflow_event_undelivered"
                );
            }
        }

        match write_lines(lines) {
            Ok(()) => report.delivered += to_stdout.len(),
            Err(e) => {
                tracing::error!(error = %e, events = to_stdout.len(), "could not write events to stdout");
                report
                    .undelivered
                    .extend(to_stdout.iter().map(|o| UndeliveredEvent {
                        stream: o.stream,
                        event_id: o.event_id.to_owned(),
                        error: "stdout not writable".to_owned(),
                    }));
            }
        }
        report
    }
}

/// Writes serialized lines to stdout at once, under one lock, so that no log line lands
/// between them.
fn write_lines(lines: Vec<serde_json::Result<Vec<u8>>>) -> std::io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut out = Vec::with_capacity(1024);
    for line in lines {
        // Serializing strings and JSON values cannot fail.
        let line = line.map_err(std::io::Error::other)?;
        out.extend_from_slice(&line);
        out.push(b'\n');
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()
}

/// The instant delivery must be done by: the invocation deadline less [`FINISH_MARGIN`].
fn tokio_deadline(deadline: SystemTime) -> tokio::time::Instant {
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(FINISH_MARGIN);
    tokio::time::Instant::now() + remaining
}
