//! Black-box tests of launch-token verification through the built `bootstrap` and the Lambda
//! Runtime API emulator (tests/support/runtime_api.rs), configured as `make run` configures it
//! (dev/local.env):
//!
//! - a token whose `jku` / `x5u` header points at a loopback listener is refused, and the
//!   function never connects to it (keys come from configuration only, CONTRACT §4);
//! - a token minted exactly as MozaiksCore mints launch tokens (HS256, no `kid`) runs with
//!   `MOZAIKS_JWT_HS256_SECRET`, and its usage event carries the signed payload byte for byte.

#[path = "support/function.rs"]
mod function;
#[path = "support/runtime_api.rs"]
mod runtime_api;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use function::{dev_env, dev_key, now, root, Function, WAIT};
use jsonwebtoken::{crypto, Algorithm, EncodingKey};
use serde_json::value::RawValue;
use serde_json::{json, Value};

const ISSUER: &str = "https://dev.mozaiks.local";
const AUDIENCE: &str = "mozaiks-runtime";
/// `MOZAIKS_JWT_HS256_SECRET` for the MozaiksCore test (test-only, ≥ 32 bytes).
const CORE_SECRET: &str = "mozaiks-core-shared-secret-for-tests-only-0123456789";

/// A compact JWS of exactly these header and payload texts, signed with `key`.
fn sign(header: &str, payload: &str, key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = crypto::sign(input.as_bytes(), key, alg).expect("signs");
    format!("{input}.{signature}")
}

fn attacker_key() -> EncodingKey {
    let pem = std::fs::read(root().join("src/auth/testdata/test-attacker-p256.pem"))
        .expect("attacker key");
    EncodingKey::from_ec_pem(&pem).expect("attacker key is a P-256 PKCS#8 PEM")
}

/// Claims the dev configuration accepts, for the bundled `hello` workflow.
fn dev_claims() -> String {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "app_id": "app-42",
        "workflow_id": "hello",
        "mozaiks_token_use": "execution",
        "scope": "workflow:execute",
        "iat": now(),
        "exp": now() + 600,
    })
    .to_string()
}

fn http_v2(token: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/executions",
        "rawQueryString": "",
        "headers": { "authorization": format!("Bearer {token}"), "content-type": "application/json" },
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "r", "routeKey": "$default", "stage": "$default",
            "time": "24/Nov/2026:22:52:21 +0000", "timeEpoch": 1795560741000u64,
            "http": { "method": "POST", "path": "/executions", "protocol": "HTTP/1.1",
                      "sourceIp": "127.0.0.1", "userAgent": "test" }
        },
        "body": "{}",
        "isBase64Encoded": false,
    })
}

#[test]
fn jku_and_x5u_at_a_loopback_listener_are_refused_without_a_connection() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback listener");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("local address").port();
    let jku = format!("http://127.0.0.1:{port}/jwks.json");
    let x5u = format!("http://127.0.0.1:{port}/cert.pem");

    let payload = dev_claims();
    let attacker = attacker_key();
    let dev = dev_key();
    let tokens: Vec<(&str, String)> = vec![
        (
            "attacker key, jku, unknown kid",
            sign(
                &json!({"alg": "ES256", "typ": "JWT", "kid": "attacker", "jku": jku}).to_string(),
                &payload,
                &attacker,
                Algorithm::ES256,
            ),
        ),
        (
            "attacker key, jku, no kid",
            sign(
                &json!({"alg": "ES256", "jku": jku}).to_string(),
                &payload,
                &attacker,
                Algorithm::ES256,
            ),
        ),
        (
            "attacker key, jku, the dev kid",
            sign(
                &json!({"alg": "ES256", "kid": "mozaiks-dev-es256", "jku": jku}).to_string(),
                &payload,
                &attacker,
                Algorithm::ES256,
            ),
        ),
        (
            "attacker key, x5u",
            sign(
                &json!({"alg": "ES256", "kid": "attacker", "x5u": x5u}).to_string(),
                &payload,
                &attacker,
                Algorithm::ES256,
            ),
        ),
        (
            "attacker key, jku and x5u",
            sign(
                &json!({"alg": "ES256", "jku": jku, "x5u": x5u}).to_string(),
                &payload,
                &attacker,
                Algorithm::ES256,
            ),
        ),
        (
            "dev key, jku",
            sign(
                &json!({"alg": "ES256", "kid": "mozaiks-dev-es256", "jku": jku}).to_string(),
                &payload,
                &dev,
                Algorithm::ES256,
            ),
        ),
    ];

    let f = Function::spawn(&dev_env());
    // The same claims under the dev key, without a key URL, run: the refusals below are the
    // key-reference headers, not the claims.
    let control = sign(
        &json!({"alg": "ES256", "kid": "mozaiks-dev-es256"}).to_string(),
        &payload,
        &dev,
        Algorithm::ES256,
    );
    let ok = f.invoke_json(&json!({ "launch_token": control }));
    assert_eq!(ok["status"], "completed", "{ok}");

    for (what, token) in &tokens {
        let r = f.invoke_json(&json!({ "launch_token": token }));
        assert_eq!(r["status"], "rejected", "{what}: {r}");
        assert_eq!(r["error"]["status"], 401, "{what}: {r}");
        assert_eq!(
            r["error"]["type"], "https://mozaiks.ai/problems/runtime/invalid-token",
            "{what}: {r}"
        );
        assert!(r.get("workflow").is_none(), "{what}: {r}");

        let r = f.invoke_json(&http_v2(token));
        assert_eq!(r["statusCode"], 401, "{what}: {r}");
        assert_eq!(
            r["headers"]["content-type"], "application/problem+json",
            "{what}: {r}"
        );
        assert_eq!(
            r["headers"]["www-authenticate"], r#"Bearer error="invalid_token""#,
            "{what}: {r}"
        );
        let body = r["body"].as_str().expect("a problem body");
        assert!(
            !body.contains(&port.to_string()),
            "{what}: the URL is echoed"
        );
        assert!(
            !body.contains(token.as_str()),
            "{what}: the token is echoed"
        );
    }

    // Every answer is in. A fetch would have had to connect before the verifier could answer,
    // and a completed TCP handshake waits in the backlog until accepted: none arrived.
    match listener.accept() {
        Err(err) if err.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the function connected to the key URL from {peer}"),
        Err(err) => panic!("accept failed: {err}"),
    }
    // Each refusal is logged for what it is (12 = 6 tokens × 2 edges), without the token.
    let logged = f.process.wait_stdout_matches(
        |l| l.contains(r#""reason":"key_reference_header""#),
        12,
        WAIT,
    );
    assert_eq!(logged.len(), 12, "{}", f.process.output_report());
    for line in f.process.stdout_lines() {
        assert!(
            !line.contains(&jku) && !line.contains(&x5u),
            "key URL logged: {line}"
        );
    }
    assert!(
        f.process.wait_exit(Duration::from_millis(1)).is_none(),
        "the function died"
    );
}

#[test]
fn a_token_minted_as_mozaiks_core_mints_runs_with_the_shared_secret() {
    let mut env: Vec<(String, String)> = dev_env()
        .into_iter()
        .filter(|(k, _)| k != "MOZAIKS_JWT_JWKS_FILE")
        .collect();
    env.push(("MOZAIKS_JWT_HS256_SECRET".into(), CORE_SECRET.into()));
    let f = Function::spawn(&env);

    // As MozaiksCore signs with PyJWT: header {"alg":"HS256","typ":"JWT"} (no kid), compact
    // JSON, its claims in its order, `aud` because an audience is configured, plus the scope.
    let iat = now();
    let payload = format!(
        concat!(
            r#"{{"iss":"{iss}","iat":{iat},"exp":{exp},"mozaiks_token_use":"execution","#,
            r#""sub":"user-1","app_id":"app-42","chat_id":"chat-7","capability_id":"cap-3","#,
            r#""workflow_id":"hello","user_id":"user-1","roles":["member","owner"],"#,
            r#""plan":"pro","aud":"{aud}","scope":"workflow:execute"}}"#
        ),
        iss = ISSUER,
        iat = iat,
        exp = iat + 300,
        aud = AUDIENCE,
    );
    let token = sign(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload,
        &EncodingKey::from_secret(CORE_SECRET.as_bytes()),
        Algorithm::HS256,
    );

    let r = f.invoke_json(&json!({ "launch_token": token, "input": {"name": "Core"} }));
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["output"]["greeting"], "Hello, Core!", "{r}");
    assert_eq!(r["output"]["app_id"], "app-42", "{r}");
    let execution_id = r["execution_id"].as_str().expect("an execution id");

    // The usage event's context is the signed payload, byte for byte.
    let line = f.usage_line(execution_id);
    let outer: HashMap<String, Box<RawValue>> =
        serde_json::from_str(&line).expect("the usage line is a JSON object");
    let event: HashMap<String, Box<RawValue>> =
        serde_json::from_str(outer["usage_event"].get()).expect("usage_event is an object");
    let detail: HashMap<String, Box<RawValue>> =
        serde_json::from_str(event["Detail"].get()).expect("Detail is an object");
    assert_eq!(detail["context"].get(), payload);

    // The same token under the wrong secret is refused: the secret is what verifies it.
    let forged = sign(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload,
        &EncodingKey::from_secret(b"another-shared-secret-of-32-bytes-or-more"),
        Algorithm::HS256,
    );
    let r = f.invoke_json(&json!({ "launch_token": forged }));
    assert_eq!(r["status"], "rejected", "{r}");
    assert_eq!(r["error"]["status"], 401, "{r}");
}
