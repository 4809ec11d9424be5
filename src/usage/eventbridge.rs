//! The EventBridge client of the sink: built once at init from the Lambda environment, one
//! PutEvents call at a time for [`super::delivery`]. Usage events and workflow events share it
//! (each entry names its own bus and `Source`).
//!
//! Lambda gives a function its role's credentials and its region as environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`), and they do
//! not change for the life of the process. They are read here, once, without `aws-config` and
//! its credential chain (profiles, SSO, IMDS, STS), which a Lambda function never uses. The
//! SDK's standard endpoint variables are honoured: `AWS_ENDPOINT_URL_EVENTBRIDGE`, else
//! `AWS_ENDPOINT_URL`, unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`.
//!
//! The call is EventBridge's JSON protocol (`POST /`, `X-Amz-Target: AWSEvents.PutEvents`,
//! `application/x-amz-json-1.1`, SigV4 for `events`) over the engine's HTTP client
//! ([`mozaiks_workflow::AwsClient`]): the request and its answer are a few fields, which do
//! not need the AWS SDK's generated client and orchestrator (about 0.4 MB of the bootstrap).
//! The client keeps its connections for the next invocation. It makes one attempt per call:
//! delivery retries per entry (only the entries that failed), under the invocation deadline.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use mozaiks_workflow::{AwsClient, AwsCredentials, AwsResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use super::delivery::{CallError, Entry, EntryOutcome, PutEvents};

/// The SigV4 signing name of EventBridge.
const SIGNING_NAME: &str = "events";
/// The JSON protocol's name of the PutEvents operation.
const PUT_EVENTS: &str = "AWSEvents.PutEvents";
/// How long the warm-up call at init may take.
const WARM_UP_TIMEOUT: Duration = Duration::from_millis(1500);

/// Per-entry error codes EventBridge documents as retryable.
const RETRYABLE_ENTRY_CODES: &[&str] = &["InternalFailure", "ThrottlingException"];
/// Whole-call error codes worth another call: throttling and the service's own failures.
const RETRYABLE_CALL_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "InternalException",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// An EventBridge sink that cannot be built: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong, and what to do.
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

impl std::error::Error for SettingsError {}

/// Where and as whom the client talks to EventBridge.
#[derive(Clone)]
pub struct AwsSettings {
    /// The AWS region (`AWS_REGION`, else `AWS_DEFAULT_REGION`).
    pub region: String,
    /// The access key id (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: String,
    /// The secret access key (`AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: String,
    /// The session token (`AWS_SESSION_TOKEN`), which Lambda always sets.
    pub session_token: Option<String>,
    /// An endpoint that replaces EventBridge's regional one (a local emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
}

impl fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret or the token.
        f.debug_struct("AwsSettings")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

impl AwsSettings {
    /// Reads the Lambda environment through `lookup` (a variable name → its value); empty
    /// values count as unset. `needed_by` is the variable that asked for EventBridge (a bus),
    /// named in the errors.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        needed_by: &str,
    ) -> Result<AwsSettings, SettingsError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let needed = |name: &'static str| {
            get(name).ok_or_else(|| SettingsError {
                variable: name,
                message: format!(
                    "is not set, and {needed_by} is: EventBridge delivery needs the function's \
                     credentials and region (Lambda sets them; elsewhere set AWS_ACCESS_KEY_ID, \
                     AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION)"
                ),
            })
        };
        let region = match get("AWS_REGION") {
            Some(region) => region,
            None => get("AWS_DEFAULT_REGION").ok_or_else(|| SettingsError {
                variable: "AWS_REGION",
                message: format!(
                    "is not set (nor AWS_DEFAULT_REGION), and {needed_by} is: set the region of \
                     the event bus"
                ),
            })?,
        };
        let access_key_id = needed("AWS_ACCESS_KEY_ID")?;
        let secret_access_key = needed("AWS_SECRET_ACCESS_KEY")?;
        let session_token = get("AWS_SESSION_TOKEN");

        let ignore_endpoints = get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let endpoint_url = if ignore_endpoints {
            None
        } else {
            let specific =
                get("AWS_ENDPOINT_URL_EVENTBRIDGE").map(|v| ("AWS_ENDPOINT_URL_EVENTBRIDGE", v));
            let general = || get("AWS_ENDPOINT_URL").map(|v| ("AWS_ENDPOINT_URL", v));
            match specific.or_else(general) {
                Some((variable, url)) => {
                    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
                    if !scheme_ok || url.len() <= "https://".len() {
                        return Err(SettingsError {
                            variable,
                            message: format!(
                                "`{url}` is not an endpoint URL: give one such as https://events.eu-west-1.amazonaws.com or http://127.0.0.1:5000"
                            ),
                        });
                    }
                    Some(url)
                }
                None => None,
            }
        };
        Ok(AwsSettings {
            region,
            access_key_id,
            secret_access_key,
            session_token,
            endpoint_url,
        })
    }
}

/// The EventBridge side of the sink: one client for every bus the entries name.
#[derive(Debug, Clone)]
pub struct EventBridge {
    client: Arc<AwsClient>,
    url: Url,
}

impl EventBridge {
    /// Builds the client. No request is made.
    pub fn new(settings: AwsSettings) -> EventBridge {
        let url = settings
            .endpoint_url
            .as_deref()
            .and_then(|url| Url::parse(url).ok())
            .unwrap_or_else(|| regional_endpoint(&settings.region));
        let credentials = AwsCredentials {
            access_key_id: settings.access_key_id,
            secret_access_key: settings.secret_access_key,
            session_token: settings.session_token,
        };
        EventBridge {
            client: Arc::new(AwsClient::new(SIGNING_NAME, settings.region, credentials)),
            url,
        }
    }

    /// Opens the connection (DNS, TCP, TLS) at init, so that the first invocation's delivery
    /// does not pay for it. The request is a PutEvents call without its `X-Amz-Target`:
    /// EventBridge refuses it before any operation runs, so nothing is put, no PutEvents metric
    /// or log counts it, and the connection stays in the client's pool. Bounded; its outcome is
    /// only logged.
    pub async fn warm_up(&self) {
        let started = Instant::now();
        let call = self
            .client
            .post(&self.url, json_headers(None), b"{}".to_vec());
        let answer = tokio::time::timeout(WARM_UP_TIMEOUT, call).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match answer {
            // The service was reached (and, as expected, named no operation or refused it).
            Ok(Ok(_)) => tracing::debug!(elapsed_ms, "EventBridge connection opened at init"),
            Ok(Err(e)) => tracing::warn!(
                elapsed_ms,
                error = %e.message,
                "could not reach EventBridge at init; event delivery will try per invocation"
            ),
            Err(_) => tracing::warn!(
                elapsed_ms,
                "EventBridge did not answer at init; event delivery will try per invocation"
            ),
        }
    }
}

/// `https://events.<region>.amazonaws.com/` (`.amazonaws.com.cn` in China regions).
fn regional_endpoint(region: &str) -> Url {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Url::parse(&format!("https://events.{region}.{domain}/"))
        .unwrap_or_else(|_| Url::parse("https://events.amazonaws.com/").expect("a valid URL"))
}

/// The headers of a JSON-protocol request, naming `target` (none: no operation).
fn json_headers(target: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![(
        "content-type".to_owned(),
        "application/x-amz-json-1.1".to_owned(),
    )];
    if let Some(target) = target {
        headers.push(("x-amz-target".to_owned(), target.to_owned()));
    }
    headers
}

/// The PutEvents request body.
fn request_body(entries: &[Entry<'_>]) -> Vec<u8> {
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut entry = json!({
                "EventBusName": e.bus,
                "Source": e.source,
                "DetailType": e.detail_type,
                "Detail": e.detail,
            });
            if let Some(time) = e.time {
                // The JSON protocol's timestamps: seconds since the epoch.
                let seconds = time
                    .duration_since(UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64());
                entry["Time"] = json!(seconds);
            }
            entry
        })
        .collect();
    serde_json::to_vec(&json!({ "Entries": entries })).unwrap_or_default()
}

impl PutEvents for EventBridge {
    async fn put_events(&self, entries: &[Entry<'_>]) -> Result<Vec<EntryOutcome>, CallError> {
        let body = request_body(entries);
        let call = self
            .client
            .post(&self.url, json_headers(Some(PUT_EVENTS)), body);
        // Boxed: a deep future, nested in the runtime's handler future; one allocation per call.
        let response = Box::pin(call).await.map_err(|e| CallError {
            error: format!("could not send PutEvents: {}", e.message),
            retryable: e.retryable,
        })?;
        if !(200..300).contains(&response.status) {
            return Err(service_error(&response));
        }
        let answer: PutEventsAnswer =
            serde_json::from_slice(&response.body).map_err(|e| CallError {
                error: format!(
                "PutEvents answer unreadable (outcome unknown: resent with the same event_id): {e}"
            ),
                retryable: true,
            })?;
        if answer.entries.len() != entries.len() {
            return Err(CallError {
                error: format!(
                    "PutEvents answered {} entries for {} sent (outcome unknown: resent with the same event_id)",
                    answer.entries.len(),
                    entries.len()
                ),
                retryable: true,
            });
        }
        Ok(answer.entries.iter().map(entry_outcome).collect())
    }
}

/// A PutEvents answer (HTTP 2xx).
#[derive(Debug, Deserialize)]
struct PutEventsAnswer {
    #[serde(rename = "Entries", default)]
    entries: Vec<ResultEntry>,
}

/// One entry of a PutEvents answer.
#[derive(Debug, Default, Deserialize)]
struct ResultEntry {
    #[serde(rename = "EventId")]
    event_id: Option<String>,
    #[serde(rename = "ErrorCode")]
    error_code: Option<String>,
    #[serde(rename = "ErrorMessage")]
    error_message: Option<String>,
}

/// One entry of a PutEvents answer: accepted when it has an `EventId` and no `ErrorCode`.
fn entry_outcome(result: &ResultEntry) -> EntryOutcome {
    match (result.error_code.as_deref(), result.event_id.as_deref()) {
        (None, Some(_)) => EntryOutcome::Accepted,
        (Some(code), _) => EntryOutcome::Failed {
            error: format!(
                "{code}: {}",
                result.error_message.as_deref().unwrap_or("no message")
            ),
            retryable: RETRYABLE_ENTRY_CODES.contains(&code),
        },
        (None, None) => EntryOutcome::Failed {
            error: "PutEvents answered this entry with neither EventId nor ErrorCode (outcome unknown: resent with the same event_id)".to_owned(),
            retryable: true,
        },
    }
}

/// A PutEvents call refused as a whole, classified: throttling and the service's failures
/// (5xx, 429) are retryable; the rest (access denied, an unknown bus, a refused request) would
/// fail the same way again. The code is the JSON protocol's: `x-amzn-errortype`, else the
/// body's `__type` (either without its namespace before `#` or the detail after `:`).
fn service_error(response: &AwsResponse) -> CallError {
    #[derive(Deserialize, Default)]
    struct ErrorBody {
        #[serde(rename = "__type")]
        type_: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let body: ErrorBody = serde_json::from_slice(&response.body).unwrap_or_default();
    let header = response
        .headers
        .iter()
        .find(|(name, _)| name == "x-amzn-errortype")
        .map(|(_, value)| value.clone());
    let raw = header.or(body.type_).unwrap_or_default();
    let code = raw.split(':').next().unwrap_or_default();
    let code = code.rsplit('#').next().unwrap_or_default();
    let code = if code.is_empty() {
        "unknown error"
    } else {
        code
    };
    let status = response.status;
    CallError {
        error: format!(
            "{code}: {} (HTTP {status})",
            body.message.as_deref().unwrap_or("no message")
        ),
        retryable: status >= 500 || status == 429 || RETRYABLE_CALL_CODES.contains(&code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BUS_VARIABLE: &str = "MOZAIKS_WORKFLOW_EVENT_BUS";

    const LAMBDA: &[(&str, &str)] = &[
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars: Vec<(&str, &str)> = LAMBDA.to_vec();
        vars.extend_from_slice(extra);
        vars
    }

    #[test]
    fn reads_the_lambda_environment() {
        let s = AwsSettings::from_lookup(lookup(LAMBDA), BUS_VARIABLE).unwrap();
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.access_key_id, "ASIAEXAMPLE");
        assert_eq!(s.session_token.as_deref(), Some("token"));
        assert!(s.endpoint_url.is_none());
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("token\""),
            "{debug}"
        );
    }

    #[test]
    fn the_service_specific_endpoint_wins_and_can_be_ignored() {
        let general = with(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]);
        let s = AwsSettings::from_lookup(lookup(&general), BUS_VARIABLE).unwrap();
        assert_eq!(s.endpoint_url.as_deref(), Some("http://127.0.0.1:1"));
        let both = with(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", "https://vpce.example"),
        ]);
        let s = AwsSettings::from_lookup(lookup(&both), BUS_VARIABLE).unwrap();
        assert_eq!(s.endpoint_url.as_deref(), Some("https://vpce.example"));
        let ignored = with(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert!(AwsSettings::from_lookup(lookup(&ignored), BUS_VARIABLE)
            .unwrap()
            .endpoint_url
            .is_none());
    }

    #[test]
    fn errors_name_the_variable() {
        let no_region: Vec<(&str, &str)> = LAMBDA
            .iter()
            .filter(|(k, _)| *k != "AWS_REGION")
            .copied()
            .collect();
        assert_eq!(
            AwsSettings::from_lookup(lookup(&no_region), BUS_VARIABLE)
                .unwrap_err()
                .variable,
            "AWS_REGION"
        );
        let mut default_region = no_region.clone();
        default_region.push(("AWS_DEFAULT_REGION", "us-east-2"));
        assert_eq!(
            AwsSettings::from_lookup(lookup(&default_region), BUS_VARIABLE)
                .unwrap()
                .region,
            "us-east-2"
        );
        let no_key: Vec<(&str, &str)> = LAMBDA
            .iter()
            .filter(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY")
            .copied()
            .collect();
        let e = AwsSettings::from_lookup(lookup(&no_key), BUS_VARIABLE).unwrap_err();
        assert_eq!(e.variable, "AWS_SECRET_ACCESS_KEY");
        assert!(e
            .to_string()
            .starts_with("AWS_SECRET_ACCESS_KEY: is not set, and MOZAIKS_WORKFLOW_EVENT_BUS is"));
        let bad = with(&[("AWS_ENDPOINT_URL_EVENTBRIDGE", "localhost:4566")]);
        let e = AwsSettings::from_lookup(lookup(&bad), BUS_VARIABLE).unwrap_err();
        assert_eq!(e.variable, "AWS_ENDPOINT_URL_EVENTBRIDGE");
    }

    #[test]
    fn entry_answers_are_classified_by_eventbridges_codes() {
        let accepted = ResultEntry {
            event_id: Some("id-1".into()),
            ..ResultEntry::default()
        };
        assert_eq!(entry_outcome(&accepted), EntryOutcome::Accepted);
        for (code, retryable) in [
            ("ThrottlingException", true),
            ("InternalFailure", true),
            ("MalformedDetail", false),
            ("AccessDeniedException", false),
            ("NotAuthorizedForSourceException", false),
            ("InvalidArgument", false),
        ] {
            let failed = ResultEntry {
                error_code: Some(code.into()),
                error_message: Some("why".into()),
                ..ResultEntry::default()
            };
            assert_eq!(
                entry_outcome(&failed),
                EntryOutcome::Failed {
                    error: format!("{code}: why"),
                    retryable
                },
                "{code}"
            );
        }
        let neither = ResultEntry::default();
        assert!(matches!(
            entry_outcome(&neither),
            EntryOutcome::Failed {
                retryable: true,
                ..
            }
        ));
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> AwsResponse {
        AwsResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn refused_calls_are_classified_by_code_and_status() {
        let throttled = service_error(&answer(
            400,
            &[],
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        ));
        assert_eq!(
            throttled.error,
            "ThrottlingException: Rate exceeded (HTTP 400)"
        );
        assert!(throttled.retryable);
        let denied = service_error(&answer(
            400,
            &[],
            r#"{"__type":"com.amazonaws.events#AccessDeniedException","Message":"no"}"#,
        ));
        assert_eq!(denied.error, "AccessDeniedException: no (HTTP 400)");
        assert!(!denied.retryable);
        let header = service_error(&answer(
            404,
            &[(
                "x-amzn-errortype",
                "ResourceNotFoundException:http://internal",
            )],
            "not json",
        ));
        assert_eq!(
            header.error,
            "ResourceNotFoundException: no message (HTTP 404)"
        );
        assert!(!header.retryable);
        let unavailable = service_error(&answer(503, &[], ""));
        assert_eq!(unavailable.error, "unknown error: no message (HTTP 503)");
        assert!(unavailable.retryable);
    }

    #[test]
    fn the_request_carries_every_field_and_the_time_in_seconds() {
        let time = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let entry = Entry {
            event_id: "e-1",
            bus: "usage-bus",
            source: "mozaiks.runtime",
            detail_type: "ExecutionUsage",
            detail: r#"{"a":1}"#,
            time: Some(time),
            size: 0,
        };
        let body: Value = serde_json::from_slice(&request_body(&[entry])).unwrap();
        assert_eq!(
            body,
            json!({"Entries": [{
                "EventBusName": "usage-bus",
                "Source": "mozaiks.runtime",
                "DetailType": "ExecutionUsage",
                "Detail": "{\"a\":1}",
                "Time": 1_700_000_000.25,
            }]})
        );
        assert_eq!(
            regional_endpoint("cn-north-1").as_str(),
            "https://events.cn-north-1.amazonaws.com.cn/"
        );
    }
}
