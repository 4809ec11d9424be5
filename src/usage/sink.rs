//! Usage sinks: where emitted events go.
//!
//! With no bus configured (the embedded default) every event is one stdout line
//! `{"usage_event": <entry>}`, where the entry has the fields of an EventBridge PutEvents entry
//! (`Source`, `DetailType`, `Time`, `Detail`; `Detail` as a JSON object rather than a string).

use std::io::Write;

use serde::Serialize;
use serde_json::value::RawValue;

use super::events::UsageEvent;
use crate::time::rfc3339_millis;

/// A destination for usage events, built once at init.
#[derive(Debug, Clone)]
pub enum Sink {
    /// One JSON line per event on stdout.
    Stdout {
        /// The `Source` of every event.
        source: String,
    },
}

/// What became of the events handed to a sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Events accepted by the destination.
    pub delivered: usize,
    /// Events written to stdout as undelivered.
    pub undelivered: usize,
}

#[derive(Serialize)]
struct StdoutEntry<'a> {
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

impl Sink {
    /// Delivers `events`. Never fails: whatever cannot be delivered is written to stdout.
    pub async fn emit(&self, events: &[UsageEvent]) -> Delivery {
        match self {
            Sink::Stdout { source } => {
                let mut out = Vec::with_capacity(events.len() * 512);
                for event in events {
                    let line = UsageLine {
                        usage_event: StdoutEntry {
                            source,
                            detail_type: event.detail_type,
                            time: rfc3339_millis(event.time),
                            detail: &event.detail,
                        },
                    };
                    // Serializing borrowed strings and a raw value cannot fail.
                    if serde_json::to_writer(&mut out, &line).is_ok() {
                        out.push(b'\n');
                    }
                }
                let mut stdout = std::io::stdout().lock();
                let written = stdout.write_all(&out).and_then(|()| stdout.flush());
                match written {
                    Ok(()) => Delivery {
                        delivered: events.len(),
                        undelivered: 0,
                    },
                    Err(e) => {
                        tracing::error!(error = %e, "could not write usage events to stdout");
                        Delivery {
                            delivered: 0,
                            undelivered: events.len(),
                        }
                    }
                }
            }
        }
    }
}
