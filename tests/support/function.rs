//! The built `bootstrap` under the Lambda Runtime API emulator (tests/support/runtime_api.rs),
//! configured as `make run` configures it (dev/local.env): the helpers the black-box tests
//! share — starting the function, invoking it, finding its usage events, minting dev tokens.
//!
//! Included by each test binary with `#[path = "support/function.rs"] mod function;` next to
//! `mod runtime_api;`; each uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

use crate::runtime_api::{
    spawn_function, Deadline, FunctionProcess, Invocation, InvokeSpec, Outcome, RuntimeApi,
};

/// How long to wait for the function (to start, answer, print) before failing the test.
pub const WAIT: Duration = Duration::from_secs(30);
/// The invocation timeout given to the function.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How a usage event line on stdout starts.
pub const STDOUT_EVENT: &str = r#"{"usage_event""#;

/// The repository (CARGO_MANIFEST_DIR).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The function under test: the `bootstrap` cargo built for the tests, or the one named by
/// `MOZAIKS_TEST_BOOTSTRAP` (to measure a release build with the same tests).
pub fn bootstrap() -> PathBuf {
    std::env::var_os("MOZAIKS_TEST_BOOTSTRAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bootstrap")))
}

/// The variables of dev/local.env, plus LAMBDA_TASK_ROOT = the repository (as on Lambda).
pub fn dev_env() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("dev/local.env")).expect("dev/local.env");
    let mut vars: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    vars.push(("LAMBDA_TASK_ROOT".into(), root().display().to_string()));
    vars
}

/// A running `bootstrap` process and the Runtime API it polls.
pub struct Function {
    pub api: RuntimeApi,
    pub process: FunctionProcess,
}

impl Function {
    /// Spawns the function with `env`, without waiting for it to start (it may refuse to).
    pub fn spawn(env: &[(String, String)]) -> Function {
        let api = RuntimeApi::start().expect("runtime api");
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let process = spawn_function(&bootstrap(), &api, &env).expect("spawn bootstrap");
        Function { api, process }
    }

    /// Spawns the function with `env` and waits until it polls for its first invocation.
    pub fn start(env: &[(String, String)]) -> Function {
        let f = Function::spawn(env);
        assert!(
            f.api.wait_ready(WAIT),
            "the function did not start\n{}",
            f.process.output_report()
        );
        f
    }

    /// Submits `spec`; the answer must be a response, never a function error. Returns the
    /// response, parsed, with the invocation.
    fn answer(&self, spec: InvokeSpec) -> (Value, Invocation) {
        let id = self.api.submit(spec).expect("submit");
        let invocation = self
            .api
            .wait_for(&id, WAIT)
            .unwrap_or_else(|e| panic!("no answer: {e:?}\n{}", self.process.output_report()));
        let response = match &invocation.outcome {
            Outcome::Response(body) => serde_json::from_slice(body).expect("response is JSON"),
            other => panic!(
                "function error instead of a response: {}\n{}",
                other.body_text(),
                self.process.output_report()
            ),
        };
        (response, invocation)
    }

    /// Invokes with `spec`; returns the response.
    pub fn invoke_spec(&self, spec: InvokeSpec) -> Value {
        self.answer(spec).0
    }

    /// Invokes with the bytes of `event` (timeout `TIMEOUT`); returns the response.
    pub fn invoke(&self, event: &[u8]) -> Value {
        self.invoke_spec(InvokeSpec::new(event, TIMEOUT))
    }

    /// Invokes with `event` serialized (timeout `TIMEOUT`); returns the response.
    pub fn invoke_json(&self, event: &Value) -> Value {
        self.invoke(event.to_string().as_bytes())
    }

    /// Invokes with `deadline` counted from delivery; returns the response, the request id and
    /// the time from delivery to answer.
    pub fn invoke_timed(&self, event: &[u8], deadline: Duration) -> (Value, String, Duration) {
        let mut spec = InvokeSpec::new(event, deadline);
        spec.deadline = Deadline::AfterDelivery(deadline);
        let (response, invocation) = self.answer(spec);
        (response, invocation.request_id, invocation.run_time)
    }

    /// The usage events printed so far on stdout.
    pub fn usage_events(&self) -> Vec<Value> {
        self.process
            .stdout_lines()
            .iter()
            .filter(|l| l.starts_with(STDOUT_EVENT))
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("usage line is JSON")["usage_event"].clone()
            })
            .collect()
    }

    /// Waits for the stdout line of the usage event of `execution_id`.
    pub fn usage_line(&self, execution_id: &str) -> String {
        let needle = format!(r#""execution_id":"{execution_id}""#);
        self.process
            .wait_stdout_line(|l| l.starts_with(STDOUT_EVENT) && l.contains(&needle), WAIT)
            .unwrap_or_else(|| {
                panic!(
                    "no usage event for {execution_id}\n{}",
                    self.process.output_report()
                )
            })
    }

    /// Waits for the usage event of an execution (written before the response, so present).
    pub fn usage_of(&self, execution_id: &str) -> Value {
        let line = self.usage_line(execution_id);
        serde_json::from_str::<Value>(&line).expect("usage line is JSON")["usage_event"].clone()
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

/// Launch-token claims the dev configuration accepts, for the bundled `hello` workflow.
pub fn claims() -> Value {
    json!({
        "iss": "https://dev.mozaiks.local",
        "aud": "mozaiks-runtime",
        "sub": "user-1",
        "app_id": "app-42",
        "user_id": "user-1",
        "chat_id": "chat-7",
        "workflow_id": "hello",
        "mozaiks_token_use": "execution",
        "scope": "workflow:execute",
        "roles": ["member"],
        "plan": "pro",
        "iat": now(),
        "exp": now() + 600,
    })
}

/// The dev ES256 signing key (dev/dev-es256-private.pem).
pub fn dev_key() -> EncodingKey {
    let pem = std::fs::read(root().join("dev/dev-es256-private.pem")).expect("dev key");
    EncodingKey::from_ec_pem(&pem).expect("dev key is a P-256 PKCS#8 PEM")
}

/// A launch token of `claims`, signed with the dev key (kid `mozaiks-dev-es256`).
pub fn mint(claims: &Value) -> String {
    let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("mozaiks-dev-es256".into());
    jsonwebtoken::encode(&header, claims, &dev_key()).expect("signs")
}

/// Decoded claims payload of a compact JWS, as signed (text).
pub fn payload_of(token: &str) -> String {
    let part = token.split('.').nth(1).expect("a compact JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url payload");
    String::from_utf8(bytes).expect("UTF-8 payload")
}

/// The claims payload of a compact JWS, as signed (parsed).
pub fn payload_json(token: &str) -> Value {
    serde_json::from_str(&payload_of(token)).expect("JSON payload")
}
