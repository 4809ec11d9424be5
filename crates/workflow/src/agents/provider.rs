//! The provider boundary: a provider-neutral chat request and reply, and the retry loop every
//! provider shares. A provider is one file that sends one attempt and classifies its failure
//! ([`openai`](super::openai), [`bedrock`](super::bedrock)); adding one is a
//! [`ProviderKind`](super::ProviderKind) variant, its file, and one arm in [`attempt`].

use super::{bedrock, openai, ModelSpec, ProviderKind, ToolSpec};
use crate::http::{CallFailure, HttpClient, HttpMeter, Request, Response};
use crate::options::Services;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// One message of a conversation, as the task's output and its saved state show it (the shape
/// of OpenAI Chat Completions messages, without the system message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub(crate) enum Message {
    /// What the user said.
    User {
        /// The text.
        content: String,
    },
    /// An agent's reply.
    Assistant {
        /// The agent.
        name: String,
        /// Its text (none when it only called tools).
        content: Option<String>,
        /// The tools it called.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// A tool's result.
    Tool {
        /// The call it answers.
        tool_call_id: String,
        /// The tool.
        name: String,
        /// The result (JSON text).
        content: String,
    },
}

/// A tool call of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ToolCall {
    /// The provider's id of the call (a tool message answers it).
    pub(crate) id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The tool and its arguments.
    pub(crate) function: FunctionCall,
}

/// The tool and arguments of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FunctionCall {
    /// The tool's name.
    pub(crate) name: String,
    /// The arguments, as the model wrote them (JSON text).
    pub(crate) arguments: String,
}

/// One model call to make.
pub(crate) struct ChatRequest<'a> {
    /// The model, as named to the provider.
    pub(crate) model: &'a str,
    /// Sampling settings.
    pub(crate) spec: &'a ModelSpec,
    /// The system message (the agent's instructions).
    pub(crate) system: &'a str,
    /// The conversation.
    pub(crate) messages: &'a [Message],
    /// The tools offered.
    pub(crate) tools: &'a [ToolSpec],
    /// The JSON Schema of a structured reply, and its name.
    pub(crate) output_schema: Option<(&'a str, &'a Value)>,
}

/// A model's answer.
#[derive(Debug)]
pub(crate) struct ChatReply {
    /// Its text.
    pub(crate) content: Option<String>,
    /// The tools it calls.
    pub(crate) tool_calls: Vec<ToolCall>,
    /// Token counts, as the provider reported them.
    pub(crate) usage: Usage,
}

/// Token counts of one call, as the provider reported them (0 for what it did not report).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) total_tokens: u64,
    pub(crate) cached_tokens: u64,
}

impl Usage {
    /// Reads the counts of a provider's answer at the JSON pointers of its wire format
    /// (prompt, completion, total, cached); a missing total is the sum of the other two.
    pub(crate) fn read(body: &Value, [prompt, completion, total, cached]: [&str; 4]) -> Usage {
        let count = |pointer: &str| body.pointer(pointer).and_then(Value::as_u64);
        let prompt_tokens = count(prompt).unwrap_or(0);
        let completion_tokens = count(completion).unwrap_or(0);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: count(total).unwrap_or(prompt_tokens.saturating_add(completion_tokens)),
            cached_tokens: count(cached).unwrap_or(0),
        }
    }
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug)]
pub(crate) struct AttemptFailure {
    /// 429, 5xx, connection failures, timeouts.
    pub(crate) retryable: bool,
    /// How long the provider asked to wait (`Retry-After`).
    pub(crate) retry_after: Option<Duration>,
    /// What the caller sees.
    pub(crate) failure: CallFailure,
}

/// Sends one model request as is (any status comes back). Model calls are metered as `llm`
/// usage, not as `http`; a transport failure is worth another attempt.
pub(crate) async fn send(
    client: &HttpClient,
    request: &Request,
) -> Result<Response, AttemptFailure> {
    client
        .exchange(request, &HttpMeter::default())
        .await
        .map_err(|failure| AttemptFailure {
            retryable: true,
            retry_after: None,
            failure,
        })
}

/// The title of a provider's error answer: `HTTP 429 Too Many Requests`.
pub(crate) fn status_title(status: hyper::StatusCode) -> String {
    format!(
        "HTTP {} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned()
}

/// Why a model call failed.
#[derive(Debug)]
pub(crate) enum ProviderError {
    /// The provider is not configured (a `configuration` error).
    Configuration(String),
    /// The provider could not be reached or refused (a `communication` error).
    Communication(CallFailure),
}

/// Makes one model call: attempts with retries, within `deadline`.
pub(crate) async fn chat(
    services: &Services,
    provider: ProviderKind,
    request: &ChatRequest<'_>,
    deadline: Instant,
) -> Result<ChatReply, ProviderError> {
    let policy = services.llm.calls;
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let per_attempt = Instant::now() + policy.attempt_timeout;
        let until = per_attempt.min(deadline);
        let result = match tokio::time::timeout_at(
            until,
            self::attempt(services, provider, request),
        )
        .await
        {
            Ok(result) => result?,
            Err(_elapsed) => Err(AttemptFailure {
                retryable: true,
                retry_after: None,
                failure: CallFailure {
                    status: 504,
                    title: "Model call timed out".into(),
                    detail: if per_attempt < deadline {
                        format!(
                            "the {} model `{}` did not answer within {:.3}s",
                            provider.name(),
                            request.model,
                            policy.attempt_timeout.as_secs_f64()
                        )
                    } else {
                        format!(
                            "the {} model `{}` did not answer before the deadline",
                            provider.name(),
                            request.model
                        )
                    },
                },
            }),
        };
        let failed = match result {
            Ok(reply) => return Ok(reply),
            Err(failed) => failed,
        };
        let mut failure = failed.failure;
        if !failed.retryable {
            return Err(ProviderError::Communication(failure));
        }
        if attempt >= max_attempts {
            failure.detail = format!("{}; gave up after {attempt} attempts", failure.detail);
            return Err(ProviderError::Communication(failure));
        }
        let delay = failed
            .retry_after
            .unwrap_or_else(|| backoff(policy.base_delay, policy.max_delay, attempt));
        if Instant::now() + delay >= deadline {
            failure.detail = format!(
                "{}; gave up after {attempt} attempts: the next one would start after the deadline",
                failure.detail
            );
            return Err(ProviderError::Communication(failure));
        }
        tokio::time::sleep(delay).await;
    }
}

/// One attempt at the provider. The outer `Err` is a configuration problem (never retried).
async fn attempt(
    services: &Services,
    provider: ProviderKind,
    request: &ChatRequest<'_>,
) -> Result<Result<ChatReply, AttemptFailure>, ProviderError> {
    match provider {
        ProviderKind::OpenAi => {
            let Some(options) = &services.llm.openai else {
                return Err(ProviderError::Configuration(
                    "no OpenAI-compatible provider is configured: the runtime needs OPENAI_API_KEY (and OPENAI_BASE_URL for endpoints other than api.openai.com)".into(),
                ));
            };
            Ok(openai::attempt(&services.http, options, request).await)
        }
        ProviderKind::Bedrock => {
            let target = bedrock::Target::new(&services.llm.bedrock)
                .map_err(ProviderError::Configuration)?;
            Ok(bedrock::attempt(&services.http, &target, request).await)
        }
    }
}

/// Full-jitter exponential backoff before retry `attempt` (1-based): a random delay up to
/// `base × 2^(attempt-1)`, capped at `max`.
fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1u32 << (attempt - 1).min(16)).min(max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// The delay a response asks for: `retry-after-ms` (milliseconds) or `Retry-After` (seconds;
/// an HTTP date is not used, the backoff applies instead).
pub(crate) fn retry_after(headers: &[(String, String)]) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let seconds = |text: &str, scale: f64| {
        text.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(|n| Duration::from_secs_f64((n * scale).min(86_400.0)))
    };
    header("retry-after-ms")
        .and_then(|ms| seconds(ms, 0.001))
        .or_else(|| header("retry-after").and_then(|s| seconds(s, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(250);
        for _ in 0..50 {
            assert!(backoff(base, max, 1) <= base);
            assert!(backoff(base, max, 2) <= Duration::from_millis(200));
            assert!(backoff(base, max, 9) <= max);
            assert!(backoff(base, max, 40) <= max);
        }
    }

    #[test]
    fn retry_after_reads_milliseconds_then_seconds() {
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            retry_after(&h(&[("retry-after", "2"), ("retry-after-ms", "150")])),
            Some(Duration::from_millis(150))
        );
        assert_eq!(
            retry_after(&h(&[("Retry-After", "1.5")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])),
            None
        );
        assert_eq!(retry_after(&h(&[("retry-after", "-1")])), None);
    }

    #[test]
    fn messages_serialize_as_chat_completions_messages() {
        let messages = vec![
            Message::User {
                content: "hi".into(),
            },
            Message::Assistant {
                name: "Triage".into(),
                content: None,
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    kind: "function".into(),
                    function: FunctionCall {
                        name: "lookup".into(),
                        arguments: "{}".into(),
                    },
                }],
            },
            Message::Tool {
                tool_call_id: "call_1".into(),
                name: "lookup".into(),
                content: "{}".into(),
            },
            Message::Assistant {
                name: "Triage".into(),
                content: Some("done".into()),
                tool_calls: vec![],
            },
        ];
        let value = serde_json::to_value(&messages).unwrap_or_default();
        assert_eq!(
            value,
            json!([
                { "role": "user", "content": "hi" },
                { "role": "assistant", "name": "Triage", "content": null, "tool_calls": [
                    { "id": "call_1", "type": "function", "function": { "name": "lookup", "arguments": "{}" } } ] },
                { "role": "tool", "tool_call_id": "call_1", "name": "lookup", "content": "{}" },
                { "role": "assistant", "name": "Triage", "content": "done" }
            ])
        );
        let back: Vec<Message> = serde_json::from_value(value).unwrap_or_default();
        assert_eq!(back, messages);
    }
}
