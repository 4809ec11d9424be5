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
//! The client keeps its connections for the next invocation. Its own retries are off: delivery
//! retries per entry (only the entries that failed), under the invocation deadline.

use std::fmt;
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::config::timeout::TimeoutConfig;
use aws_sdk_eventbridge::config::{
    BehaviorVersion, ConfigBag, Credentials, Intercept, Region, RuntimeComponents,
};
use aws_sdk_eventbridge::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::operation::put_events::PutEventsError;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, PutEventsResultEntry};
use aws_sdk_eventbridge::Client;

use super::delivery::{CallError, Entry, EntryOutcome, PutEvents};

/// How long opening a connection to EventBridge may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
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

/// The EventBridge side of the sink: one SDK client for every bus the entries name.
#[derive(Debug, Clone)]
pub struct EventBridge {
    client: Client,
}

impl EventBridge {
    /// Builds the client (its HTTPS connector and trust roots included). No request is made.
    pub fn new(settings: AwsSettings) -> EventBridge {
        let credentials = Credentials::new(
            settings.access_key_id,
            settings.secret_access_key,
            settings.session_token,
            None,
            "lambda-environment",
        );
        let mut config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::v2026_01_12())
            .region(Region::new(settings.region))
            .credentials_provider(credentials)
            .http_client(super::https::SdkHttpsClient::default())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            );
        if let Some(url) = settings.endpoint_url {
            config = config.endpoint_url(url);
        }
        EventBridge {
            client: Client::from_conf(config.build()),
        }
    }

    /// Opens the connection (DNS, TCP, TLS) at init, so that the first invocation's delivery
    /// does not pay for it. The request is a PutEvents call stripped of its `X-Amz-Target`
    /// ([`NotAnApiCall`]): EventBridge refuses it before any operation runs, so nothing is put,
    /// no PutEvents metric or log counts it, and the connection stays in the client's pool.
    /// Bounded; its outcome is only logged.
    pub async fn warm_up(&self) {
        let started = Instant::now();
        let call = self
            .client
            .put_events()
            .set_entries(Some(Vec::new()))
            .customize()
            .interceptor(NotAnApiCall)
            .send();
        let answer = tokio::time::timeout(WARM_UP_TIMEOUT, call).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match answer {
            // The service was reached (and, as expected, named no operation or refused it).
            Ok(Ok(_)) | Ok(Err(SdkError::ServiceError(_))) => {
                tracing::debug!(elapsed_ms, "EventBridge connection opened at init")
            }
            Ok(Err(e)) => tracing::warn!(
                elapsed_ms,
                error = %DisplayErrorContext(&e),
                "could not reach EventBridge at init; event delivery will try per invocation"
            ),
            Err(_) => tracing::warn!(
                elapsed_ms,
                "EventBridge did not answer at init; event delivery will try per invocation"
            ),
        }
    }
}

/// Makes the warm-up request name no operation: without `X-Amz-Target`, EventBridge's JSON
/// protocol has nothing to run, and answers with an error.
#[derive(Debug)]
struct NotAnApiCall;

impl Intercept for NotAnApiCall {
    fn name(&self) -> &'static str {
        "MozaiksWarmUpNotAnApiCall"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context.request_mut().headers_mut().remove("x-amz-target");
        Ok(())
    }
}

impl PutEvents for EventBridge {
    async fn put_events(&self, entries: &[Entry<'_>]) -> Result<Vec<EntryOutcome>, CallError> {
        let request: Vec<PutEventsRequestEntry> = entries
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(e.bus)
                    .source(e.source)
                    .detail_type(e.detail_type)
                    .detail(e.detail)
                    .set_time(e.time.map(DateTime::from))
                    .build()
            })
            .collect();
        // Boxed: the SDK's send future is deep enough to overflow the compiler's layout
        // queries when nested in the runtime's handler future; one allocation per call.
        let call = Box::pin(self.client.put_events().set_entries(Some(request)).send());
        match call.await {
            Ok(output) => Ok(output.entries().iter().map(entry_outcome).collect()),
            Err(e) => Err(call_error(&e)),
        }
    }
}

/// One entry of a PutEvents answer: accepted when it has an `EventId` and no `ErrorCode`.
fn entry_outcome(result: &PutEventsResultEntry) -> EntryOutcome {
    match (result.error_code(), result.event_id()) {
        (None, Some(_)) => EntryOutcome::Accepted,
        (Some(code), _) => EntryOutcome::Failed {
            error: format!("{code}: {}", result.error_message().unwrap_or("no message")),
            retryable: RETRYABLE_ENTRY_CODES.contains(&code),
        },
        (None, None) => EntryOutcome::Failed {
            error: "PutEvents answered this entry with neither EventId nor ErrorCode (outcome unknown: resent with the same event_id)".to_owned(),
            retryable: true,
        },
    }
}

/// A failed PutEvents call, classified: throttling, the service's failures (5xx), connection
/// errors, timeouts and unreadable answers are retryable; the rest (access denied, an unknown
/// bus, a refused request) would fail the same way again.
fn call_error(e: &SdkError<PutEventsError>) -> CallError {
    match e {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("unknown error");
            let message = service.err().message().unwrap_or("no message");
            CallError {
                error: format!("{code}: {message} (HTTP {status})"),
                retryable: status >= 500 || status == 429 || RETRYABLE_CALL_CODES.contains(&code),
            }
        }
        SdkError::DispatchFailure(failure) => CallError {
            error: format!("could not send PutEvents: {}", DisplayErrorContext(e)),
            // A bad endpoint URL or the like fails the same way every time.
            retryable: !failure.is_user(),
        },
        SdkError::TimeoutError(_) => CallError {
            error: format!(
                "PutEvents timed out (outcome unknown: resent with the same event_id): {}",
                DisplayErrorContext(e)
            ),
            retryable: true,
        },
        SdkError::ResponseError(_) => CallError {
            error: format!(
                "PutEvents answer unreadable (outcome unknown: resent with the same event_id): {}",
                DisplayErrorContext(e)
            ),
            retryable: true,
        },
        _ => CallError {
            error: format!(
                "could not make the PutEvents call: {}",
                DisplayErrorContext(e)
            ),
            retryable: false,
        },
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
        let accepted = PutEventsResultEntry::builder().event_id("id-1").build();
        assert_eq!(entry_outcome(&accepted), EntryOutcome::Accepted);
        for (code, retryable) in [
            ("ThrottlingException", true),
            ("InternalFailure", true),
            ("MalformedDetail", false),
            ("AccessDeniedException", false),
            ("NotAuthorizedForSourceException", false),
            ("InvalidArgument", false),
        ] {
            let failed = PutEventsResultEntry::builder()
                .error_code(code)
                .error_message("why")
                .build();
            assert_eq!(
                entry_outcome(&failed),
                EntryOutcome::Failed {
                    error: format!("{code}: why"),
                    retryable
                },
                "{code}"
            );
        }
        let neither = PutEventsResultEntry::builder().build();
        assert!(matches!(
            entry_outcome(&neither),
            EntryOutcome::Failed {
                retryable: true,
                ..
            }
        ));
    }
}
