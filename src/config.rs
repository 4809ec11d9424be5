//! Configuration: the environment (CONTRACT §4, §6, §7), parsed once at init into typed values.
//!
//! Every error names the variable at fault and says what would be accepted, so a function that
//! refuses to start tells its operator what to change. Nothing here has a development default:
//! keys, issuer and audience must be named explicitly by the deployment.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::auth::AuthConfig;
use crate::continuation::Key;
use crate::workflow::Redactor;
use crate::workflow::{
    AwsCredentials, BedrockOptions, EngineOptions, LlmOptions, OpenAiOptions, ToolHost,
    DEFAULT_OPENAI_BASE_URL,
};

/// Default `MOZAIKS_JWT_REQUIRED_SCOPE`.
pub const DEFAULT_SCOPE: &str = "workflow:execute";
/// Default `MOZAIKS_JWT_TOKEN_USE`.
pub const DEFAULT_TOKEN_USE: &str = "execution";
/// Default `MOZAIKS_USAGE_SOURCE`.
pub const DEFAULT_USAGE_SOURCE: &str = "mozaiks.runtime";
/// Default `MOZAIKS_MAX_INPUT_BYTES`: 1 MiB of execution input.
pub const DEFAULT_MAX_INPUT_BYTES: usize = 1024 * 1024;
/// Default `MOZAIKS_USAGE_RESERVE_MS`: time kept back from the invocation deadline to emit usage.
pub const DEFAULT_USAGE_RESERVE_MS: u64 = 500;
/// Default `MOZAIKS_CONTINUATION_TTL_SECONDS`: a continuation is valid for 24 hours.
pub const DEFAULT_CONTINUATION_TTL_SECONDS: u64 = 24 * 3600;
/// Default `MOZAIKS_CONTINUATION_MAX_BYTES`: 1 MiB of continuation text.
pub const DEFAULT_CONTINUATION_MAX_BYTES: usize = 1024 * 1024;
/// Default `MOZAIKS_DEFAULT_MODEL`: the model of agents that name none.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";

/// The runtime's whole configuration.
#[derive(Debug)]
pub struct Config {
    /// Launch-token verification settings and key material.
    pub auth: AuthConfig,
    /// Directory holding the bundled workflows.
    pub workflows_dir: PathBuf,
    /// Where usage events go.
    pub usage: UsageConfig,
    /// EventBridge bus (name or ARN) for the CloudEvents workflows emit; `None` writes them to
    /// stdout.
    pub workflow_event_bus: Option<String>,
    /// Largest execution input accepted (direct `input`, or the HTTP body once decoded).
    pub max_input_bytes: usize,
    /// Time kept back from the invocation deadline so that usage can still be emitted.
    pub usage_reserve: Duration,
    /// Continuation keys and limits (CONTRACT §2a).
    pub continuation: ContinuationConfig,
    /// Where the JWKS came from (`MOZAIKS_JWT_JWKS`, or `MOZAIKS_JWT_JWKS_FILE (path)`), for errors.
    pub jwks_origin: Option<String>,
    /// What the workflow engine is given: the model providers of agent tasks
    /// (`OPENAI_BASE_URL`, `OPENAI_API_KEY`, `MOZAIKS_DEFAULT_MODEL`; Amazon Bedrock from the
    /// AWS variables of the Lambda environment).
    pub engine: EngineOptions,
    /// The values that must never reach a caller, a log line or an event: the keys of this
    /// configuration and every `MOZAIKS_SECRET_*` value (see [`SENSITIVE_VARIABLES`]).
    pub secrets: Redactor,
    /// Stack of the engine thread (from `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, see
    /// [`crate::engine_thread::stack_size`]).
    pub engine_stack: usize,
}

/// Variables whose values are secret (besides every `MOZAIKS_SECRET_*`): they are taken out of
/// every error a caller sees, whatever a workflow does.
pub const SENSITIVE_VARIABLES: [&str; 6] = [
    "MOZAIKS_JWT_HS256_SECRET",
    "MOZAIKS_CONTINUATION_KEY",
    "MOZAIKS_CONTINUATION_KEYS_PREVIOUS",
    "OPENAI_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// A redactor for the sensitive variables `lookup` gives, and for `extra` `(name, value)`
/// pairs whose names start with the secret prefix.
fn redactor_of(
    lookup: &dyn Fn(&str) -> Option<String>,
    extra: impl IntoIterator<Item = (String, String)>,
) -> Redactor {
    let mut redactor = Redactor::default();
    let mut add = |text: &str| {
        redactor.add(text.trim());
        // A JSON object value (basic-auth style secrets): every string inside.
        if text.trim_start().starts_with('{') {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
                redactor.add_json(&value);
            }
        }
    };
    for name in SENSITIVE_VARIABLES {
        if let Some(value) = lookup(name) {
            add(&value);
            if name == "MOZAIKS_CONTINUATION_KEYS_PREVIOUS" {
                value.split(',').for_each(&mut add);
            }
        }
    }
    for (name, value) in extra {
        if name.starts_with(crate::workflow::DEFAULT_SECRET_PREFIX) {
            add(&value);
        }
    }
    redactor.finish()
}

/// Usage event destination (CONTRACT §7).
#[derive(Debug, Clone)]
pub struct UsageConfig {
    /// EventBridge bus name or ARN; `None` writes events to stdout.
    pub event_bus: Option<String>,
    /// The `Source` of every usage event.
    pub source: String,
}

/// Continuation settings (CONTRACT §2a).
#[derive(Debug)]
pub struct ContinuationConfig {
    /// The key that seals and opens continuations; `None`: this deployment issues none.
    pub key: Option<Key>,
    /// Earlier keys, which only open continuations (rotation).
    pub previous_keys: Vec<Key>,
    /// How long a continuation stays valid, in seconds.
    pub ttl_seconds: u64,
    /// Longest continuation accepted or issued, in bytes of its text.
    pub max_bytes: usize,
}

/// A configuration error: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable at fault (or the first of several).
    pub variable: &'static str,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut config = Config::from_lookup(|name| std::env::var(name).ok())?;
        config.secrets = redactor_of(&|name| std::env::var(name).ok(), std::env::vars());
        Ok(config)
    }

    /// Reads configuration through `lookup` (a variable name → its value), so tests need not
    /// touch the process environment. Empty values count as unset, except where noted.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let task_root = get("LAMBDA_TASK_ROOT").map(PathBuf::from);
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            match (&task_root, p.is_relative()) {
                (Some(root), true) => root.join(p),
                _ => p.to_path_buf(),
            }
        };

        let issuer = get("MOZAIKS_JWT_ISSUER").ok_or_else(|| {
            err(
                "MOZAIKS_JWT_ISSUER",
                "is required: set it to the exact `iss` your control plane puts in launch tokens",
            )
        })?;
        let audience = get("MOZAIKS_JWT_AUDIENCE").ok_or_else(|| {
            err(
                "MOZAIKS_JWT_AUDIENCE",
                "is required: set it to the audience launch tokens are issued for",
            )
        })?;

        let inline_jwks = get("MOZAIKS_JWT_JWKS");
        let jwks_file = get("MOZAIKS_JWT_JWKS_FILE");
        let jwks_origin = match (&inline_jwks, &jwks_file) {
            (Some(_), _) => Some("MOZAIKS_JWT_JWKS".to_owned()),
            (None, Some(file)) => Some(format!(
                "MOZAIKS_JWT_JWKS_FILE ({})",
                resolve(file).display()
            )),
            (None, None) => None,
        };
        let jwks_json =
            match (inline_jwks, jwks_file) {
                (Some(_), Some(_)) => return Err(err(
                    "MOZAIKS_JWT_JWKS_FILE",
                    "cannot be combined with MOZAIKS_JWT_JWKS: configure the key set in one place",
                )),
                (Some(inline), None) => Some(inline),
                (None, Some(file)) => {
                    let path = resolve(&file);
                    Some(std::fs::read_to_string(&path).map_err(|e| {
                        err(
                            "MOZAIKS_JWT_JWKS_FILE",
                            format!("cannot read {}: {e}", path.display()),
                        )
                    })?)
                }
                (None, None) => None,
            };
        let hs256_secret = get("MOZAIKS_JWT_HS256_SECRET").map(String::into_bytes);
        if let Some(secret) = &hs256_secret {
            if secret.len() < 32 {
                return Err(err(
                    "MOZAIKS_JWT_HS256_SECRET",
                    format!(
                        "is {} bytes long; an HS256 secret must be at least 32 bytes",
                        secret.len()
                    ),
                ));
            }
        }
        if jwks_json.is_none() && hs256_secret.is_none() {
            return Err(err(
                "MOZAIKS_JWT_JWKS",
                "no launch-token key is configured: set MOZAIKS_JWT_JWKS, MOZAIKS_JWT_JWKS_FILE \
                 or MOZAIKS_JWT_HS256_SECRET (the runtime has no default key)",
            ));
        }

        let required_scope = get("MOZAIKS_JWT_REQUIRED_SCOPE")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| DEFAULT_SCOPE.to_owned());
        if required_scope.contains(char::is_whitespace) {
            return Err(err(
                "MOZAIKS_JWT_REQUIRED_SCOPE",
                "must be a single scope token without spaces",
            ));
        }
        // Set but empty disables the token-use check (CONTRACT §4).
        let token_use = match lookup("MOZAIKS_JWT_TOKEN_USE") {
            None => Some(DEFAULT_TOKEN_USE.to_owned()),
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(v.trim().to_owned()),
        };
        let leeway_seconds = parse_number("MOZAIKS_JWT_LEEWAY_SECONDS", get, 30, 0, 300)?;

        let workflows_dir = match get("MOZAIKS_WORKFLOWS_DIR") {
            Some(dir) => resolve(&dir),
            None => match &task_root {
                Some(root) => root.join("workflows"),
                None => PathBuf::from("workflows"),
            },
        };

        let event_bus = get("MOZAIKS_USAGE_EVENT_BUS").map(|s| s.trim().to_owned());
        let workflow_event_bus = get("MOZAIKS_WORKFLOW_EVENT_BUS").map(|s| s.trim().to_owned());
        if workflow_event_bus.is_some() && workflow_event_bus == event_bus {
            return Err(err(
                "MOZAIKS_WORKFLOW_EVENT_BUS",
                "names the usage event bus (MOZAIKS_USAGE_EVENT_BUS): give workflow events a bus \
                 of their own, so that an emitted event can never pass for a usage event",
            ));
        }
        let source = get("MOZAIKS_USAGE_SOURCE")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| DEFAULT_USAGE_SOURCE.to_owned());

        let max_input_bytes = parse_number(
            "MOZAIKS_MAX_INPUT_BYTES",
            get,
            DEFAULT_MAX_INPUT_BYTES as u64,
            2,
            6 * 1024 * 1024,
        )? as usize;
        let usage_reserve_ms = parse_number(
            "MOZAIKS_USAGE_RESERVE_MS",
            get,
            DEFAULT_USAGE_RESERVE_MS,
            0,
            60_000,
        )?;

        let continuation = continuation_config(get)?;

        // OpenAI-compatible provider: configured when either variable is set (local servers
        // need no key; api.openai.com needs one).
        let openai_base_url = get("OPENAI_BASE_URL").map(|s| s.trim().to_owned());
        if let Some(url) = &openai_base_url {
            let valid = url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !valid {
                return Err(err(
                    "OPENAI_BASE_URL",
                    "must be an http(s) URL such as https://api.openai.com/v1",
                ));
            }
        }
        let openai_api_key = get("OPENAI_API_KEY").map(|s| s.trim().to_owned());
        let openai =
            (openai_base_url.is_some() || openai_api_key.is_some()).then(|| OpenAiOptions {
                base_url: openai_base_url.unwrap_or_else(|| DEFAULT_OPENAI_BASE_URL.to_owned()),
                api_key: openai_api_key,
            });
        let tool_host =
            get("MOZAIKS_TOOL_HOST_URL").map(|s| s.trim().trim_end_matches('/').to_owned());
        if let Some(url) = &tool_host {
            let valid = url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            if !valid {
                return Err(err(
                    "MOZAIKS_TOOL_HOST_URL",
                    "must be the tool host's http(s) base URL, such as https://abc.lambda-url.us-east-1.on.aws",
                ));
            }
        }
        let aws_iam = match get("MOZAIKS_TOOL_HOST_AUTH").as_deref().map(str::trim) {
            None | Some("") | Some("none") => false,
            Some("aws_iam") => true,
            Some(_) => {
                return Err(err(
                    "MOZAIKS_TOOL_HOST_AUTH",
                    "must be `none` or `aws_iam` (requests signed with the function's role, for a Function URL with AuthType AWS_IAM)",
                ))
            }
        };
        let tool_host = tool_host.map(|url| ToolHost { url, aws_iam });
        let engine = EngineOptions {
            tool_host,
            llm: LlmOptions {
                openai,
                bedrock: bedrock_options(get)?,
                default_model: Some(
                    get("MOZAIKS_DEFAULT_MODEL")
                        .map(|s| s.trim().to_owned())
                        .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
                ),
                ..LlmOptions::default()
            },
            ..EngineOptions::default()
        };

        Ok(Config {
            auth: AuthConfig {
                issuer: issuer.trim().to_owned(),
                audience: audience.trim().to_owned(),
                jwks_json,
                hs256_secret,
                required_scope,
                token_use,
                leeway_seconds,
            },
            workflows_dir,
            usage: UsageConfig { event_bus, source },
            workflow_event_bus,
            max_input_bytes,
            usage_reserve: Duration::from_millis(usage_reserve_ms),
            continuation,
            jwks_origin,
            secrets: redactor_of(&lookup, []),
            engine_stack: crate::engine_thread::stack_size(
                lookup("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").as_deref(),
            ),
            engine,
        })
    }
}

/// Amazon Bedrock from the Lambda environment: the region (`AWS_REGION`, else
/// `AWS_DEFAULT_REGION`), the execution role's credentials, and the SDKs' endpoint variables
/// (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, else `AWS_ENDPOINT_URL`, unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`). What is missing is named when a workflow
/// calls Bedrock, not here: a deployment that never does needs none of it.
fn bedrock_options(get: impl Fn(&str) -> Option<String>) -> Result<BedrockOptions, ConfigError> {
    let get = |name: &str| get(name).map(|v| v.trim().to_owned());
    let credentials = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => Some(AwsCredentials {
            access_key_id,
            secret_access_key,
            session_token: get("AWS_SESSION_TOKEN"),
        }),
        _ => None,
    };
    let ignore_endpoints =
        get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let endpoint = if ignore_endpoints {
        None
    } else {
        get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
            .map(|url| ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url))
            .or_else(|| get("AWS_ENDPOINT_URL").map(|url| ("AWS_ENDPOINT_URL", url)))
    };
    let endpoint_url = match endpoint {
        None => None,
        Some((variable, url)) => {
            let valid = url::Url::parse(&url).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            if !valid {
                return Err(err(
                    variable,
                    format!("`{url}` is not an endpoint URL: give one such as https://bedrock-runtime.us-east-1.amazonaws.com or http://127.0.0.1:4566"),
                ));
            }
            Some(url)
        }
    };
    Ok(BedrockOptions {
        region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
        credentials,
        endpoint_url,
    })
}

fn continuation_config(
    get: impl Fn(&str) -> Option<String>,
) -> Result<ContinuationConfig, ConfigError> {
    const KEY: &str = "MOZAIKS_CONTINUATION_KEY";
    const PREVIOUS: &str = "MOZAIKS_CONTINUATION_KEYS_PREVIOUS";
    let key = get(KEY)
        .map(|text| Key::from_base64(&text).map_err(|e| err(KEY, e.to_string())))
        .transpose()?;
    let mut previous_keys: Vec<Key> = Vec::new();
    let entries = get(PREVIOUS).unwrap_or_default();
    for (index, entry) in entries
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let previous = Key::from_base64(entry)
            .map_err(|e| err(PREVIOUS, format!("entry {}: {e}", index + 1)))?;
        let repeated = key
            .iter()
            .chain(&previous_keys)
            .any(|k| k.id() == previous.id());
        if repeated {
            return Err(err(
                PREVIOUS,
                format!(
                    "entry {} is the same key as MOZAIKS_CONTINUATION_KEY or an earlier entry: \
                     list each previous key once",
                    index + 1
                ),
            ));
        }
        previous_keys.push(previous);
    }
    if key.is_none() && !previous_keys.is_empty() {
        return Err(err(
            PREVIOUS,
            "is set without MOZAIKS_CONTINUATION_KEY: set the current key too (previous keys \
             only open continuations, they never seal one)",
        ));
    }
    let ttl_seconds = parse_number(
        "MOZAIKS_CONTINUATION_TTL_SECONDS",
        &get,
        DEFAULT_CONTINUATION_TTL_SECONDS,
        60,
        30 * 24 * 3600,
    )?;
    let max_bytes = parse_number(
        "MOZAIKS_CONTINUATION_MAX_BYTES",
        &get,
        DEFAULT_CONTINUATION_MAX_BYTES as u64,
        1024,
        6 * 1024 * 1024,
    )? as usize;
    Ok(ContinuationConfig {
        key,
        previous_keys,
        ttl_seconds,
        max_bytes,
    })
}

fn parse_number(
    name: &'static str,
    get: impl Fn(&str) -> Option<String>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(name) else {
        return Ok(default);
    };
    let value: u64 = raw.trim().parse().map_err(|_| {
        err(
            name,
            format!("must be a whole number from {min} to {max} (default {default})"),
        )
    })?;
    if !(min..=max).contains(&value) {
        return Err(err(
            name,
            format!("is {value}; it must be from {min} to {max} (default {default})"),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("MOZAIKS_JWT_ISSUER", "https://issuer.example"),
            ("MOZAIKS_JWT_AUDIENCE", "mozaiks-runtime"),
            ("MOZAIKS_JWT_HS256_SECRET", SECRET),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = base();
        v.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn defaults_apply() {
        let c = config(&base()).unwrap();
        assert_eq!(c.auth.required_scope, DEFAULT_SCOPE);
        assert_eq!(c.auth.token_use.as_deref(), Some(DEFAULT_TOKEN_USE));
        assert_eq!(c.auth.leeway_seconds, 30);
        assert_eq!(c.workflows_dir, PathBuf::from("workflows"));
        assert_eq!(c.usage.source, DEFAULT_USAGE_SOURCE);
        assert!(c.usage.event_bus.is_none());
        assert!(c.workflow_event_bus.is_none());
        assert_eq!(c.max_input_bytes, DEFAULT_MAX_INPUT_BYTES);
        assert!(c.continuation.key.is_none());
        assert!(c.continuation.previous_keys.is_empty());
        assert_eq!(c.continuation.ttl_seconds, DEFAULT_CONTINUATION_TTL_SECONDS);
        assert_eq!(c.continuation.max_bytes, DEFAULT_CONTINUATION_MAX_BYTES);
        assert!(c.engine.llm.openai.is_none());
        assert_eq!(c.engine.llm.default_model.as_deref(), Some(DEFAULT_MODEL));
    }

    // base64 of 32 bytes 0x01, 0x02, 0x03; and of 16 bytes.
    const KEY_1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const KEY_2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    const KEY_3: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM";
    const SHORT_KEY: &str = "BAQEBAQEBAQEBAQEBAQEBA==";

    #[test]
    fn continuation_keys_rotate_and_limits_apply() {
        let c = config(&with(&[
            ("MOZAIKS_CONTINUATION_KEY", KEY_1),
            (
                "MOZAIKS_CONTINUATION_KEYS_PREVIOUS",
                format!(" {KEY_2} ,, {KEY_3},").leak(),
            ),
            ("MOZAIKS_CONTINUATION_TTL_SECONDS", "600"),
            ("MOZAIKS_CONTINUATION_MAX_BYTES", "20000"),
        ]))
        .unwrap();
        let key = c.continuation.key.as_ref().unwrap();
        assert_eq!(
            key.id(),
            crate::continuation::Key::from_material(&[1; 32])
                .unwrap()
                .id()
        );
        let previous: Vec<String> = c
            .continuation
            .previous_keys
            .iter()
            .map(|k| k.id())
            .collect();
        assert_eq!(
            previous,
            [
                crate::continuation::Key::from_material(&[2; 32])
                    .unwrap()
                    .id(),
                crate::continuation::Key::from_material(&[3; 32])
                    .unwrap()
                    .id(),
            ]
        );
        assert_eq!(c.continuation.ttl_seconds, 600);
        assert_eq!(c.continuation.max_bytes, 20000);
    }

    #[test]
    fn continuation_errors_name_their_variable_and_never_echo_a_key() {
        let previous_dup: &'static str = format!("{KEY_2},{KEY_1}").leak();
        let previous_bad: &'static str = format!("{KEY_2},{SHORT_KEY}").leak();
        type Vars = Vec<(&'static str, &'static str)>;
        let cases: Vec<(Vars, &str, &str)> = vec![
            (
                with(&[("MOZAIKS_CONTINUATION_KEY", SHORT_KEY)]),
                "MOZAIKS_CONTINUATION_KEY",
                "16 bytes",
            ),
            (
                with(&[("MOZAIKS_CONTINUATION_KEY", "not base64 at all!")]),
                "MOZAIKS_CONTINUATION_KEY",
                "not base64",
            ),
            (
                with(&[("MOZAIKS_CONTINUATION_KEYS_PREVIOUS", KEY_2)]),
                "MOZAIKS_CONTINUATION_KEYS_PREVIOUS",
                "without MOZAIKS_CONTINUATION_KEY",
            ),
            (
                with(&[
                    ("MOZAIKS_CONTINUATION_KEY", KEY_1),
                    ("MOZAIKS_CONTINUATION_KEYS_PREVIOUS", previous_bad),
                ]),
                "MOZAIKS_CONTINUATION_KEYS_PREVIOUS",
                "entry 2",
            ),
            (
                with(&[
                    ("MOZAIKS_CONTINUATION_KEY", KEY_1),
                    ("MOZAIKS_CONTINUATION_KEYS_PREVIOUS", previous_dup),
                ]),
                "MOZAIKS_CONTINUATION_KEYS_PREVIOUS",
                "entry 2 is the same key",
            ),
            (
                with(&[("MOZAIKS_CONTINUATION_TTL_SECONDS", "59")]),
                "MOZAIKS_CONTINUATION_TTL_SECONDS",
                "60",
            ),
            (
                with(&[("MOZAIKS_CONTINUATION_TTL_SECONDS", "1d")]),
                "MOZAIKS_CONTINUATION_TTL_SECONDS",
                "whole number",
            ),
            (
                with(&[("MOZAIKS_CONTINUATION_MAX_BYTES", "100")]),
                "MOZAIKS_CONTINUATION_MAX_BYTES",
                "1024",
            ),
        ];
        for (vars, variable, says) in cases {
            let e = config(&vars).expect_err(variable);
            assert_eq!(e.variable, variable, "{e}");
            assert!(e.message.contains(says), "{e}");
            for key in [KEY_1, KEY_2, SHORT_KEY] {
                assert!(!e.to_string().contains(key), "{e}");
            }
        }
    }

    #[test]
    fn model_providers_come_from_the_openai_variables() {
        let c = config(&with(&[("OPENAI_API_KEY", "sk-test")])).unwrap();
        let openai = c.engine.llm.openai.as_ref().unwrap();
        assert_eq!(openai.base_url, DEFAULT_OPENAI_BASE_URL);
        assert_eq!(openai.api_key.as_deref(), Some("sk-test"));
        assert!(!format!("{c:?}").contains("sk-test"));
        let c = config(&with(&[
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("MOZAIKS_DEFAULT_MODEL", "llama3.1"),
        ]))
        .unwrap();
        let openai = c.engine.llm.openai.as_ref().unwrap();
        assert_eq!(openai.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(openai.api_key, None);
        assert_eq!(c.engine.llm.default_model.as_deref(), Some("llama3.1"));
        let e = config(&with(&[("OPENAI_BASE_URL", "api.openai.com")])).unwrap_err();
        assert_eq!(e.variable, "OPENAI_BASE_URL");
    }

    #[test]
    fn bedrock_comes_from_the_lambda_environment() {
        let c = config(&base()).unwrap();
        assert!(c.engine.llm.bedrock.region.is_none());
        assert!(c.engine.llm.bedrock.credentials.is_none());
        let c = config(&with(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-example"),
            ("AWS_SESSION_TOKEN", "aws-token-example"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ]))
        .unwrap();
        let bedrock = &c.engine.llm.bedrock;
        assert_eq!(bedrock.region.as_deref(), Some("eu-west-1"));
        let credentials = bedrock.credentials.as_ref().unwrap();
        assert_eq!(credentials.access_key_id, "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key, "aws-secret-example");
        assert_eq!(
            credentials.session_token.as_deref(),
            Some("aws-token-example")
        );
        assert_eq!(
            bedrock.endpoint_url.as_deref(),
            Some("http://127.0.0.1:4566")
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("aws-secret-example"), "{shown}");
        assert!(!shown.contains("aws-token-example"), "{shown}");
        // The service's own variable wins; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS turns both off.
        let c = config(&with(&[
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            (
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                "https://vpce.example.com",
            ),
        ]))
        .unwrap();
        assert_eq!(c.engine.llm.bedrock.region.as_deref(), Some("us-east-1"));
        assert_eq!(
            c.engine.llm.bedrock.endpoint_url.as_deref(),
            Some("https://vpce.example.com")
        );
        let c = config(&with(&[
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "not a url"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]))
        .unwrap();
        assert!(c.engine.llm.bedrock.endpoint_url.is_none());
        let e = config(&with(&[(
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
            "localhost:4566",
        )]))
        .unwrap_err();
        assert_eq!(e.variable, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME");
        // One half of a key pair is no credentials (the call says what is missing).
        let c = config(&with(&[("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE")])).unwrap();
        assert!(c.engine.llm.bedrock.credentials.is_none());
    }

    #[test]
    fn each_missing_or_invalid_variable_is_named() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (
                base()
                    .into_iter()
                    .filter(|(k, _)| *k != "MOZAIKS_JWT_ISSUER")
                    .collect(),
                "MOZAIKS_JWT_ISSUER",
            ),
            (
                base()
                    .into_iter()
                    .filter(|(k, _)| *k != "MOZAIKS_JWT_AUDIENCE")
                    .collect(),
                "MOZAIKS_JWT_AUDIENCE",
            ),
            (
                base()
                    .into_iter()
                    .filter(|(k, _)| *k != "MOZAIKS_JWT_HS256_SECRET")
                    .collect(),
                "MOZAIKS_JWT_JWKS",
            ),
            (
                with(&[("MOZAIKS_JWT_HS256_SECRET", "short")]),
                "MOZAIKS_JWT_HS256_SECRET",
            ),
            (
                with(&[("MOZAIKS_JWT_LEEWAY_SECONDS", "301")]),
                "MOZAIKS_JWT_LEEWAY_SECONDS",
            ),
            (
                with(&[("MOZAIKS_JWT_LEEWAY_SECONDS", "-1")]),
                "MOZAIKS_JWT_LEEWAY_SECONDS",
            ),
            (
                with(&[("MOZAIKS_JWT_LEEWAY_SECONDS", "ten")]),
                "MOZAIKS_JWT_LEEWAY_SECONDS",
            ),
            (
                with(&[("MOZAIKS_JWT_REQUIRED_SCOPE", "a b")]),
                "MOZAIKS_JWT_REQUIRED_SCOPE",
            ),
            (
                with(&[("MOZAIKS_MAX_INPUT_BYTES", "99999999")]),
                "MOZAIKS_MAX_INPUT_BYTES",
            ),
            (
                with(&[
                    ("MOZAIKS_USAGE_EVENT_BUS", "shared"),
                    ("MOZAIKS_WORKFLOW_EVENT_BUS", " shared "),
                ]),
                "MOZAIKS_WORKFLOW_EVENT_BUS",
            ),
            (
                with(&[("MOZAIKS_CONTINUATION_KEY", "short")]),
                "MOZAIKS_CONTINUATION_KEY",
            ),
            (
                with(&[("MOZAIKS_JWT_JWKS_FILE", "/nonexistent/jwks.json")]),
                "MOZAIKS_JWT_JWKS_FILE",
            ),
            (
                with(&[
                    ("MOZAIKS_JWT_JWKS", "{}"),
                    ("MOZAIKS_JWT_JWKS_FILE", "x.json"),
                ]),
                "MOZAIKS_JWT_JWKS_FILE",
            ),
        ];
        for (vars, variable) in cases {
            let e = config(&vars).expect_err(variable);
            assert_eq!(e.variable, variable, "{e}");
            assert!(e.to_string().starts_with(variable));
        }
    }

    #[test]
    fn workflow_events_have_a_bus_of_their_own() {
        let c = config(&with(&[
            ("MOZAIKS_USAGE_EVENT_BUS", "usage"),
            (
                "MOZAIKS_WORKFLOW_EVENT_BUS",
                "arn:aws:events:eu-west-1:123456789012:event-bus/app",
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.workflow_event_bus.as_deref(),
            Some("arn:aws:events:eu-west-1:123456789012:event-bus/app")
        );
        let c = config(&with(&[("MOZAIKS_WORKFLOW_EVENT_BUS", "  ")])).unwrap();
        assert!(c.workflow_event_bus.is_none(), "empty counts as unset");
    }

    #[test]
    fn empty_token_use_disables_the_check() {
        let c = config(&with(&[("MOZAIKS_JWT_TOKEN_USE", "")])).unwrap();
        assert_eq!(c.auth.token_use, None);
    }

    #[test]
    fn relative_paths_resolve_from_the_task_root() {
        let dir = std::env::temp_dir().join(format!("mozaiks-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("keys.json"), r#"{"keys":[]}"#).unwrap();
        let root = dir.to_str().unwrap();
        let c = config(&[
            ("MOZAIKS_JWT_ISSUER", "i"),
            ("MOZAIKS_JWT_AUDIENCE", "a"),
            ("MOZAIKS_JWT_JWKS_FILE", "keys.json"),
            ("LAMBDA_TASK_ROOT", root),
        ])
        .unwrap();
        assert_eq!(c.auth.jwks_json.as_deref(), Some(r#"{"keys":[]}"#));
        assert_eq!(c.workflows_dir, dir.join("workflows"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
