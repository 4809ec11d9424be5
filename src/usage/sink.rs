//! Usage sinks: where an execution's events go (CONTRACT §7).
//!
//! - With no bus configured (the embedded default) every event is one stdout line
//!   `{"usage_event": <entry>}`.
//! - With `MOZAIKS_USAGE_EVENT_BUS`, events go to EventBridge with PutEvents (see
//!   [`super::delivery`] for batching, retries and the deadline); every event that cannot be
//!   delivered is one stdout line `{"usage_event_undelivered": <entry>, "error": "…"}`.
//!
//! An entry has the fields of an EventBridge PutEvents entry (`EventBusName` when there is a
//! bus, `Source`, `DetailType`, `Time`, `Detail`), `Detail` as a JSON object rather than a
//! string. No event is ever dropped without a line saying so.

use std::io::Write;
use std::time::{Instant as StdInstant, SystemTime};

use serde::Serialize;
use serde_json::value::RawValue;

use super::delivery::{self, entry_size, Entry, RetryPolicy};
use super::eventbridge::{AwsSettings, EventBridge, SettingsError};
use super::events::UsageEvent;
use crate::config::UsageConfig;
use crate::time::rfc3339_millis;

/// Time kept back from the invocation deadline for writing undelivered events to stdout and
/// sending the response.
const FINISH_MARGIN: std::time::Duration = std::time::Duration::from_millis(50);

/// A destination for usage events, built once at init.
#[derive(Debug, Clone)]
pub enum Sink {
    /// One JSON line per event on stdout.
    Stdout {
        /// The `Source` of every event.
        source: String,
    },
    /// PutEvents on an EventBridge bus; stdout for what cannot be delivered.
    EventBridge {
        /// The client, bus and source.
        client: EventBridge,
        /// Retry bounds.
        policy: RetryPolicy,
    },
}

/// What became of the events handed to a sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Events accepted by the destination.
    pub delivered: usize,
    /// Events written to stdout as undelivered, with the reason each was not delivered.
    pub undelivered: Vec<UndeliveredEvent>,
    /// PutEvents calls made (0 for stdout).
    pub calls: u32,
}

/// An event written to stdout as undelivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliveredEvent {
    /// Its `event_id`.
    pub event_id: String,
    /// Why it was not delivered (the line's `error`).
    pub error: String,
}

#[derive(Serialize)]
struct StdoutEntry<'a> {
    #[serde(rename = "EventBusName", skip_serializing_if = "Option::is_none")]
    event_bus_name: Option<&'a str>,
    #[serde(rename = "Source")]
    source: &'a str,
    #[serde(rename = "DetailType")]
    detail_type: &'a str,
    #[serde(rename = "Time")]
    time: String,
    #[serde(rename = "Detail")]
    detail: &'a RawValue,
}

#[derive(Serialize)]
struct UsageLine<'a> {
    usage_event: StdoutEntry<'a>,
}

#[derive(Serialize)]
struct UndeliveredLine<'a> {
    usage_event_undelivered: StdoutEntry<'a>,
    error: &'a str,
}

impl Sink {
    /// The sink configuration asks for: stdout without a bus; otherwise an EventBridge client
    /// for the bus, from the Lambda environment read through `lookup`, its connection opened
    /// (bounded, best effort) so that the first invocation does not pay for it.
    pub async fn from_config(
        config: &UsageConfig,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Sink, SettingsError> {
        let Some(bus) = &config.event_bus else {
            return Ok(Sink::Stdout {
                source: config.source.clone(),
            });
        };
        let settings = AwsSettings::from_lookup(lookup)?;
        let client = EventBridge::new(settings, bus.clone(), config.source.clone());
        client.warm_up().await;
        Ok(Sink::EventBridge {
            client,
            policy: RetryPolicy::default(),
        })
    }

    /// Delivers one execution's events, in order (its model calls' events, then its execution
    /// event), finishing before `deadline`, the invocation's. Never fails: whatever cannot be
    /// delivered is written to stdout with the reason.
    pub async fn emit(&self, events: &[UsageEvent], deadline: SystemTime) -> Delivery {
        if events.is_empty() {
            return Delivery::default();
        }
        match self {
            Sink::Stdout { source } => {
                let lines = events.iter().map(|event| {
                    serde_json::to_vec(&UsageLine {
                        usage_event: stdout_entry(None, source, event),
                    })
                });
                match write_lines(lines) {
                    Ok(()) => Delivery {
                        delivered: events.len(),
                        ..Delivery::default()
                    },
                    Err(e) => {
                        tracing::error!(error = %e, events = events.len(), "could not write usage events to stdout");
                        Delivery {
                            undelivered: events
                                .iter()
                                .map(|e| UndeliveredEvent {
                                    event_id: e.event_id.clone(),
                                    error: "stdout not writable".to_owned(),
                                })
                                .collect(),
                            ..Delivery::default()
                        }
                    }
                }
            }
            Sink::EventBridge { client, policy } => {
                let started = StdInstant::now();
                let entries: Vec<Entry<'_>> = events
                    .iter()
                    .map(|e| Entry {
                        event_id: &e.event_id,
                        detail_type: e.detail_type,
                        detail: e.detail.get(),
                        time: e.time,
                        size: entry_size(client.source(), e.detail_type, e.detail.get(), true),
                    })
                    .collect();
                let report =
                    delivery::deliver(client, &entries, tokio_deadline(deadline), policy).await;
                let undelivered: Vec<UndeliveredEvent> = report
                    .undelivered
                    .iter()
                    .map(|u| UndeliveredEvent {
                        event_id: events[u.index].event_id.clone(),
                        error: u.error.clone(),
                    })
                    .collect();
                // Milliseconds with microsecond precision.
                let delivery_ms = started.elapsed().as_micros() as f64 / 1000.0;
                if undelivered.is_empty() {
                    tracing::info!(
                        delivered = report.delivered,
                        calls = report.calls,
                        delivery_ms,
                        "usage events delivered"
                    );
                } else {
                    let lines = report.undelivered.iter().map(|u| {
                        serde_json::to_vec(&UndeliveredLine {
                            usage_event_undelivered: stdout_entry(
                                Some(client.bus()),
                                client.source(),
                                &events[u.index],
                            ),
                            error: &u.error,
                        })
                    });
                    if let Err(e) = write_lines(lines) {
                        tracing::error!(error = %e, "could not write undelivered usage events to stdout");
                    }
                    tracing::warn!(
                        delivered = report.delivered,
                        undelivered = undelivered.len(),
                        calls = report.calls,
                        delivery_ms,
                        error = %undelivered[0].error,
                        "usage events not delivered to EventBridge; written to stdout as usage_event_undelivered"
                    );
                }
                Delivery {
                    delivered: report.delivered,
                    undelivered,
                    calls: report.calls,
                }
            }
        }
    }
}

fn stdout_entry<'a>(
    bus: Option<&'a str>,
    source: &'a str,
    event: &'a UsageEvent,
) -> StdoutEntry<'a> {
    StdoutEntry {
        event_bus_name: bus,
        source,
        detail_type: event.detail_type,
        time: rfc3339_millis(event.time),
        detail: &event.detail,
    }
}

/// Writes serialized lines to stdout at once, under one lock, so that no log line lands
/// between them.
fn write_lines(lines: impl Iterator<Item = serde_json::Result<Vec<u8>>>) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(1024);
    for line in lines {
        // Serializing borrowed strings and a raw value cannot fail.
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
