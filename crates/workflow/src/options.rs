//! What a host gives the engine at load: where secrets come from, and (for tests) where HTTP
//! calls to some hosts really go. Built once per bundle and shared by its workflows.

use super::http::HttpClient;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The default prefix of the environment variables that hold secrets.
pub const DEFAULT_SECRET_PREFIX: &str = "MOZAIKS_SECRET_";

/// Options for loading a bundle: [`Registry::load_dir_with`](super::Registry::load_dir_with),
/// [`Workflow::parse_with`](super::Workflow::parse_with).
#[derive(Clone, Default)]
pub struct EngineOptions {
    /// Where the secrets a workflow declares in `use.secrets` come from.
    pub secrets: SecretSource,
    /// **For tests only.** HTTP calls (`call: http`, `call: openapi`) to one of these host
    /// names, any scheme and port, are sent over plain HTTP to the paired socket address
    /// instead (the request line and `Host` header keep the original URL). This lets a test
    /// stand in for public hosts on loopback. Production hosts leave it empty: nothing in
    /// the runtime reads it from the environment.
    pub resolve_overrides: Vec<(String, SocketAddr)>,
    /// The language-model providers of `call: agents` tasks (the host fills it; the engine
    /// reads no environment variable for them).
    pub llm: LlmOptions,
    /// The MozaiksAI tool host (`toolhost/`, an MCP server of a folder's Python tools): its
    /// base URL, `https://host` serving `<base>/<Folder>/mcp`. A MozaiksAI folder's tool
    /// without a DSL function is bound to it; without it, such a tool stops the load.
    pub tool_host: Option<ToolHost>,
}

/// Where a MozaiksAI folder's Python tools are served (see [`EngineOptions::tool_host`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolHost {
    /// The base URL: each folder's endpoint is `<url>/<Folder>/mcp`.
    pub url: String,
    /// Sign its requests with the function's IAM credentials (a Function URL with
    /// `AuthType: AWS_IAM`).
    pub aws_iam: bool,
}

impl fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineOptions")
            .field("secrets", &self.secrets)
            .field("resolve_overrides", &self.resolve_overrides)
            .field("llm", &self.llm)
            .field("tool_host", &self.tool_host)
            .finish()
    }
}

/// Where `$secrets` come from. A workflow sees only the secrets it declares in `use.secrets`,
/// and a declared secret that is not configured stops the load (naming what to set).
#[derive(Clone)]
pub enum SecretSource {
    /// Secret `name` is the environment variable `<prefix><NAME>`, the name upper-cased with
    /// every character other than a letter or digit replaced by `_` (`petstore-key` →
    /// `MOZAIKS_SECRET_PETSTORE_KEY`). A value that is a JSON object (e.g.
    /// `{"username":"u","password":"p"}` for basic authentication) is used as that object;
    /// any other value is a string.
    Environment {
        /// The variable name prefix, [`DEFAULT_SECRET_PREFIX`] by default.
        prefix: String,
    },
    /// Fixed values by secret name (tests, or a host that fetched them itself).
    Values(BTreeMap<String, Value>),
    /// Every declared secret is the string `<secret NAME>`: for checking workflows without
    /// their secrets (`mozaiks-workflow validate`), never for running them.
    Placeholders,
}

impl Default for SecretSource {
    fn default() -> Self {
        SecretSource::Environment {
            prefix: DEFAULT_SECRET_PREFIX.to_owned(),
        }
    }
}

impl fmt::Debug for SecretSource {
    /// Names where secrets come from, never their values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Environment { prefix } => f
                .debug_struct("Environment")
                .field("prefix", prefix)
                .finish(),
            SecretSource::Values(values) => f
                .debug_struct("Values")
                .field("names", &values.keys().collect::<Vec<_>>())
                .finish(),
            SecretSource::Placeholders => f.write_str("Placeholders"),
        }
    }
}

impl SecretSource {
    /// The value of secret `name`, or what to configure to provide it.
    pub(crate) fn lookup(&self, name: &str) -> Result<Value, String> {
        match self {
            SecretSource::Placeholders => Ok(Value::String(format!("<secret {name}>"))),
            SecretSource::Values(values) => values.get(name).cloned().ok_or_else(|| {
                format!("secret `{name}` is declared in `use.secrets` but the host provides no value for it")
            }),
            SecretSource::Environment { prefix } => {
                let variable = Self::variable(prefix, name);
                match std::env::var(&variable) {
                    Ok(text) => Ok(Self::parse(text)),
                    Err(std::env::VarError::NotPresent) => Err(format!(
                        "secret `{name}` is declared in `use.secrets` but not configured: set the environment variable {variable}"
                    )),
                    Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                        "secret `{name}`: the environment variable {variable} is not valid UTF-8"
                    )),
                }
            }
        }
    }

    /// The environment variable of secret `name`.
    pub(crate) fn variable(prefix: &str, name: &str) -> String {
        let suffix: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{prefix}{suffix}")
    }

    /// A secret's text: a JSON object if it is one, else the string itself.
    fn parse(text: String) -> Value {
        if text.trim_start().starts_with('{') {
            if let Ok(value @ Value::Object(_)) = serde_json::from_str(&text) {
                return value;
            }
        }
        Value::String(text)
    }
}

/// The default OpenAI-compatible endpoint (`OPENAI_BASE_URL` when the host sets none).
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// Language-model providers and call policy for `call: agents` tasks. The host builds it (the
/// runtime from `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `MOZAIKS_DEFAULT_MODEL` and the Lambda
/// environment's AWS variables); a model call to a provider that is not configured faults with
/// a `configuration` error.
#[derive(Clone, Default)]
pub struct LlmOptions {
    /// The OpenAI-compatible Chat Completions endpoint (OpenAI, Azure OpenAI's v1 API, vLLM,
    /// Ollama, LiteLLM, …), when configured.
    pub openai: Option<OpenAiOptions>,
    /// Amazon Bedrock (the Converse API): region, credentials and endpoint.
    pub bedrock: BedrockOptions,
    /// The model of agents that name none (`name` at provider `openai`).
    pub default_model: Option<String>,
    /// Timeouts and retries of model calls.
    pub calls: LlmCallPolicy,
}

impl fmt::Debug for LlmOptions {
    /// Never shows the API key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmOptions")
            .field(
                "openai",
                &self.openai.as_ref().map(|openai| {
                    format!(
                        "{} ({})",
                        openai.base_url,
                        if openai.api_key.is_some() {
                            "with an API key"
                        } else {
                            "without an API key"
                        }
                    )
                }),
            )
            .field("bedrock", &self.bedrock)
            .field("default_model", &self.default_model)
            .field("calls", &self.calls)
            .finish()
    }
}

/// An OpenAI-compatible Chat Completions endpoint.
#[derive(Clone)]
pub struct OpenAiOptions {
    /// The API base URL, e.g. `https://api.openai.com/v1` ([`DEFAULT_OPENAI_BASE_URL`]);
    /// requests go to `<base_url>/chat/completions`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer <key>` when set (local servers often need none).
    pub api_key: Option<String>,
}

/// Amazon Bedrock Runtime: where the Converse API is and as whom it is called (SigV4). The
/// runtime fills it from the Lambda environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`); what is
/// missing faults a Bedrock model call with a `configuration` error that names it.
#[derive(Clone, Default)]
pub struct BedrockOptions {
    /// The AWS region of the endpoint and of the signature.
    pub region: Option<String>,
    /// The IAM credentials requests are signed with.
    pub credentials: Option<AwsCredentials>,
    /// An endpoint that replaces `https://bedrock-runtime.<region>.amazonaws.com` (a VPC
    /// endpoint, a proxy, a test stand-in); requests go to `<endpoint>/model/<id>/converse`.
    pub endpoint_url: Option<String>,
}

impl fmt::Debug for BedrockOptions {
    /// Never shows the secret key or the session token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BedrockOptions")
            .field("region", &self.region)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|c| &c.access_key_id),
            )
            .field("endpoint_url", &self.endpoint_url)
            .finish()
    }
}

/// IAM credentials (a Lambda function's are its execution role's, temporary, with a token).
#[derive(Clone)]
pub struct AwsCredentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN`, for temporary credentials (sent as `x-amz-security-token`).
    pub session_token: Option<String>,
}

impl fmt::Debug for AwsCredentials {
    /// Shows the access key id only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// How model calls are timed and retried. Retries (429, 5xx, connection errors) back off
/// exponentially with full jitter, honour `Retry-After`, and never go past the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlmCallPolicy {
    /// The most one attempt may take (the run's deadline may cut it shorter).
    pub attempt_timeout: Duration,
    /// Attempts per model call, the first included (at least 1).
    pub max_attempts: u32,
    /// The backoff before the first retry; it doubles for each further retry.
    pub base_delay: Duration,
    /// The longest backoff between two attempts (a longer `Retry-After` is still honoured).
    pub max_delay: Duration,
}

impl Default for LlmCallPolicy {
    fn default() -> Self {
        LlmCallPolicy {
            attempt_timeout: Duration::from_secs(120),
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// What the workflows of one bundle share at run time.
pub(crate) struct Services {
    /// The HTTP client (built on first use).
    pub(crate) http: HttpClient,
    /// The language-model providers of agent tasks.
    pub(crate) llm: LlmOptions,
}

impl Services {
    /// The services for `options`.
    pub(crate) fn new(options: &EngineOptions) -> Services {
        Services {
            http: HttpClient::new(options.resolve_overrides.clone()),
            llm: options.llm.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_variables_are_upper_snake_case() {
        assert_eq!(
            SecretSource::variable("MOZAIKS_SECRET_", "petstore-key.v2"),
            "MOZAIKS_SECRET_PETSTORE_KEY_V2"
        );
        assert_eq!(SecretSource::parse("plain".into()), json!("plain"));
        assert_eq!(
            SecretSource::parse(r#" {"username":"u","password":"p"}"#.into()),
            json!({"username":"u","password":"p"})
        );
        assert_eq!(SecretSource::parse("{not json".into()), json!("{not json"));
    }

    #[test]
    fn missing_secrets_say_what_to_set_and_debug_never_shows_values() {
        let source = SecretSource::Environment {
            prefix: "MOZAIKS_TEST_UNSET_".into(),
        };
        let err = source.lookup("api-key").err().unwrap_or_default();
        assert!(err.contains("MOZAIKS_TEST_UNSET_API_KEY"), "{err}");
        let values = SecretSource::Values([("k".to_owned(), json!("hunter2"))].into());
        assert_eq!(values.lookup("k"), Ok(json!("hunter2")));
        let shown = format!(
            "{:?}",
            EngineOptions {
                secrets: values,
                resolve_overrides: vec![],
                tool_host: None,
                llm: LlmOptions {
                    openai: Some(OpenAiOptions {
                        base_url: DEFAULT_OPENAI_BASE_URL.into(),
                        api_key: Some("sk-hunter3".into()),
                    }),
                    bedrock: BedrockOptions {
                        region: Some("eu-west-1".into()),
                        credentials: Some(AwsCredentials {
                            access_key_id: "AKIDEXAMPLE".into(),
                            secret_access_key: "aws-hunter4".into(),
                            session_token: Some("aws-hunter5".into()),
                        }),
                        endpoint_url: None,
                    },
                    ..LlmOptions::default()
                },
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("aws-hunter"), "{shown}");
        assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(!shown.contains("sk-hunter3"), "{shown}");
        assert!(shown.contains("with an API key"), "{shown}");
        assert!(shown.contains("\"k\""), "{shown}");
    }
}
