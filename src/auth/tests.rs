//! Table-driven tests of the verifier: every accepted algorithm, one hostile token per rule,
//! the RFC 7515 Appendix A signatures, init errors, and property tests.

use std::sync::LazyLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{crypto, Algorithm, EncodingKey};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::keys::KeySet;
use super::*;

const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "mozaiks-runtime";
const SCOPE: &str = "workflow:execute";
const SECRET: &[u8] = b"test-only-hs256-secret-0123456789abcdef";
const JWKS: &str = include_str!("testdata/test-jwks.json");
const RSA_PEM: &str = include_str!("testdata/test-rsa2048.pem");
const P256_PEM: &str = include_str!("testdata/test-p256.pem");
const P384_PEM: &str = include_str!("testdata/test-p384.pem");
const ED25519_PEM: &str = include_str!("testdata/test-ed25519.pem");
const ATTACKER_PEM: &str = include_str!("testdata/test-attacker-p256.pem");
const ATTACKER_JWK: &str = include_str!("testdata/test-attacker-jwk.json");

fn config() -> AuthConfig {
    AuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_json: Some(JWKS.into()),
        hs256_secret: Some(SECRET.to_vec()),
        required_scope: SCOPE.into(),
        token_use: Some("execution".into()),
        leeway_seconds: 30,
    }
}

static VERIFIER: LazyLock<Verifier> =
    LazyLock::new(|| Verifier::new(config()).expect("test configuration is valid"));

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).expect("test PEM is base64")
}

/// Who signs a test token.
#[derive(Clone, Copy)]
enum Signer {
    /// HMAC-SHA256 with these bytes.
    Hmac(&'static [u8]),
    /// The test RSA key with this algorithm.
    Rsa(Algorithm),
    Es256,
    Es384,
    Ed25519,
    Attacker,
}

fn sign(input: &str, signer: Signer) -> String {
    let (key, alg) = match signer {
        Signer::Hmac(secret) => (EncodingKey::from_secret(secret), Algorithm::HS256),
        Signer::Rsa(alg) => (EncodingKey::from_rsa_der(&pem_der(RSA_PEM)), alg),
        Signer::Es256 => (
            EncodingKey::from_ec_der(&pem_der(P256_PEM)),
            Algorithm::ES256,
        ),
        Signer::Es384 => (
            EncodingKey::from_ec_der(&pem_der(P384_PEM)),
            Algorithm::ES384,
        ),
        Signer::Ed25519 => (
            EncodingKey::from_ed_der(&pem_der(ED25519_PEM)),
            Algorithm::EdDSA,
        ),
        Signer::Attacker => (
            EncodingKey::from_ec_der(&pem_der(ATTACKER_PEM)),
            Algorithm::ES256,
        ),
    };
    crypto::sign(input.as_bytes(), &key, alg).expect("test key signs")
}

fn b64(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// A compact JWS of these exact header and payload texts.
fn token(header: &str, payload: &str, signer: Signer) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = sign(&input, signer);
    format!("{input}.{signature}")
}

fn good_claims() -> Map<String, Value> {
    let claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": NOW - 10,
        "exp": NOW + 600,
        "scope": "openid workflow:execute",
        "mozaiks_token_use": "execution",
        "workflow_id": "hello",
        "sub": "user-1",
        "app_id": "app-1",
        "user_id": "user-1",
        "chat_id": "chat-1",
        "capability_id": "cap-1",
        "roles": ["user"],
        "plan": "free"
    });
    match claims {
        Value::Object(map) => map,
        _ => unreachable!("literal is an object"),
    }
}

/// The good claims with `edit` applied, as JSON text.
fn claims_with(edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut claims = good_claims();
    edit(&mut claims);
    Value::Object(claims).to_string()
}

fn good_payload() -> String {
    claims_with(|_| {})
}

const HS_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
const ES_HEADER: &str = r#"{"alg":"ES256","typ":"JWT","kid":"test-es256"}"#;

/// An HS256 token (no kid, the shared secret) with this payload, as MozaiksCore signs.
fn hs(payload: &str) -> String {
    token(HS_HEADER, payload, Signer::Hmac(SECRET))
}

/// An HS256 token of the good claims with `name` set to `value`.
fn set(name: &str, value: Value) -> String {
    hs(&claims_with(|c| {
        c.insert(name.into(), value);
    }))
}

/// The good claims without `name`, as JSON text.
fn unset_text(name: &str) -> String {
    claims_with(|c| {
        c.remove(name);
    })
}

/// An HS256 token of the good claims without `name`.
fn unset(name: &str) -> String {
    hs(&unset_text(name))
}

/// An ES256 token with kid and this header, signed by the test P-256 key.
fn es_with_header(header: &str) -> String {
    token(header, &good_payload(), Signer::Es256)
}

fn verify(token: &str) -> Result<ExecutionContext, AuthError> {
    VERIFIER.verify(token, NOW)
}

/// Replaces segment `index` (0 header, 1 payload, 2 signature) of a token.
fn with_segment(token: &str, index: usize, segment: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = segment;
    parts.join(".")
}

/// Raw ECDSA r||s → ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn raw_to_der(raw: &[u8]) -> Vec<u8> {
    let integer = |bytes: &[u8]| {
        let start = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        let mut value = bytes[start..].to_vec();
        if value[0] & 0x80 != 0 {
            value.insert(0, 0);
        }
        let mut out = vec![0x02, value.len() as u8];
        out.extend(value);
        out
    };
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [integer(r), integer(s)].concat();
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    der
}

#[test]
fn every_supported_algorithm_verifies() {
    let cases: [(&str, Option<&str>, Signer); 12] = [
        ("HS256", None, Signer::Hmac(SECRET)),
        ("RS256", Some("test-rs256"), Signer::Rsa(Algorithm::RS256)),
        ("RS384", Some("test-rs384"), Signer::Rsa(Algorithm::RS384)),
        ("RS512", Some("test-rs512"), Signer::Rsa(Algorithm::RS512)),
        ("PS256", Some("test-ps256"), Signer::Rsa(Algorithm::PS256)),
        ("PS384", Some("test-ps384"), Signer::Rsa(Algorithm::PS384)),
        ("PS512", Some("test-ps512"), Signer::Rsa(Algorithm::PS512)),
        ("ES256", Some("test-es256"), Signer::Es256),
        ("ES384", Some("test-es384"), Signer::Es384),
        ("EdDSA", Some("test-eddsa"), Signer::Ed25519),
        // Without kid, the single JWKS key of that alg is used.
        ("ES256", None, Signer::Es256),
        ("EdDSA", None, Signer::Ed25519),
    ];
    let payload = good_payload();
    for (alg, kid, signer) in cases {
        let header = match kid {
            Some(kid) => json!({"alg": alg, "typ": "JWT", "kid": kid}),
            None => json!({"alg": alg, "typ": "JWT"}),
        };
        let token = token(&header.to_string(), &payload, signer);
        let context = verify(&token);
        assert!(context.is_ok(), "{alg} kid {kid:?}: {context:?}");
    }
}

#[test]
fn dev_keys_match_the_dev_jwks() {
    let dev = Verifier::new(AuthConfig {
        issuer: "https://dev.mozaiks.local".into(),
        jwks_json: Some(include_str!("../../dev/dev-jwks.json").into()),
        hs256_secret: None,
        ..config()
    })
    .expect("dev JWKS is valid");
    let payload = claims_with(|c| {
        c.insert("iss".into(), json!("https://dev.mozaiks.local"));
    });
    let keys = [
        (
            r#"{"alg":"ES256","kid":"mozaiks-dev-es256"}"#,
            EncodingKey::from_ec_der(&pem_der(include_str!("../../dev/dev-es256-private.pem"))),
            Algorithm::ES256,
        ),
        (
            r#"{"alg":"RS256","kid":"mozaiks-dev-rs256"}"#,
            EncodingKey::from_rsa_der(&pem_der(include_str!("../../dev/dev-rs256-private.pem"))),
            Algorithm::RS256,
        ),
    ];
    for (header, key, alg) in keys {
        let input = format!("{}.{}", b64(header), b64(&payload));
        let signature = crypto::sign(input.as_bytes(), &key, alg).expect("dev key signs");
        let result = dev.verify(&format!("{input}.{signature}"), NOW);
        assert!(result.is_ok(), "{header}: {result:?}");
    }
}

#[test]
fn accepted_header_variants() {
    for header in [
        r#"{"alg":"ES256","kid":"test-es256"}"#,
        r#"{"alg":"ES256","kid":"test-es256","typ":"application/jwt"}"#,
        r#"{"alg":"ES256","kid":"test-es256","typ":"at+JWT"}"#,
        r#"{"alg":"ES256","kid":"test-es256","typ":"jwt","x5t":"ignored"}"#,
    ] {
        let result = verify(&es_with_header(header));
        assert!(result.is_ok(), "{header}: {result:?}");
    }
}

#[test]
fn execution_context_is_the_signed_payload_byte_for_byte() {
    // Odd spacing, key order and escapes must survive untouched.
    let payload = format!(
        "{{ \"workflow_id\":\"hello\",\"workflow_version\" : \"1.2.0\", \"iss\":\"{ISSUER}\",\
         \"aud\":[\"other\",\"{AUDIENCE}\"],\"iat\":{},\"exp\":{}.5,\"scp\":[\"a\",\"{SCOPE}\"],\
         \"mozaiks_token_use\":\"execution\",\"sub\":\"s\\u00e9\",\"app_id\":42,\
         \"plan\":{{\"tier\":\"pro\"}} }}",
        NOW - 5,
        NOW + 60
    );
    let context = verify(&hs(&payload)).expect("valid token");
    assert_eq!(context.raw_json(), payload);
    assert_eq!(context.workflow_id(), "hello");
    assert_eq!(context.workflow_version(), Some("1.2.0"));
    assert_eq!(context.claims()["plan"]["tier"], "pro");
    let identity = context.identity();
    assert_eq!(
        identity,
        vec![
            ("sub", Some(&Value::from("sé"))),
            ("app_id", Some(&Value::from(42))),
            ("user_id", None),
            ("chat_id", None),
        ]
    );
    let copy = context.clone();
    assert_eq!(copy.raw_json(), context.raw_json());
    assert_eq!(format!("{context:?}"), "ExecutionContext { .. }");
}

#[test]
fn mozaiks_core_style_hs256_token_verifies() {
    // MozaiksCore (PyJWT) signs HS256 without kid, with `typ: JWT` and these claims.
    let payload = claims_with(|c| {
        c.remove("scope");
        c.insert("scope".into(), Value::from(SCOPE));
    });
    let context = verify(&hs(&payload)).expect("MozaiksCore token verifies");
    assert_eq!(context.workflow_id(), "hello");
    assert_eq!(context.workflow_version(), None);
}

#[test]
fn hostile_tokens_are_refused_for_the_right_reason() {
    let good = hs(&good_payload());
    let good_es = es_with_header(ES_HEADER);
    let es_signature = good_es
        .rsplit('.')
        .next()
        .expect("three segments")
        .to_owned();
    let es_raw = URL_SAFE_NO_PAD.decode(&es_signature).expect("base64url");
    let der_signature = URL_SAFE_NO_PAD.encode(raw_to_der(&es_raw));
    let jwks: Value = serde_json::from_str(JWKS).expect("test JWKS");
    let rsa_jwk_text = jwks["keys"][0].to_string();
    let rsa_modulus = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["n"].as_str().expect("n"))
        .expect("n is base64url");
    let rsa_modulus: &'static [u8] = Vec::leak(rsa_modulus);
    let rsa_jwk_text: &'static [u8] = String::leak(rsa_jwk_text).as_bytes();
    let attacker_jwk: Value = serde_json::from_str(ATTACKER_JWK).expect("attacker JWK");
    let five_mb = format!(
        "{}.{}.{}",
        b64(HS_HEADER),
        "A".repeat(5 << 20),
        "A".repeat(43)
    );
    use AuthError::*;

    let cases: Vec<(&str, String, AuthError)> = vec![
        // Size and shape.
        ("5 MB token", five_mb, TooLarge),
        (
            "16 KiB + 1 of junk",
            "a".repeat(MAX_TOKEN_BYTES + 1),
            TooLarge,
        ),
        ("empty", String::new(), Malformed("token is empty")),
        (
            "two segments",
            good.rsplit_once('.')
                .map(|(a, _)| a.to_owned())
                .unwrap_or_default(),
            Malformed("token does not have exactly three segments"),
        ),
        (
            "four segments",
            format!("{good}.AAAA"),
            Malformed("token does not have exactly three segments"),
        ),
        (
            "JWE-like five segments",
            "a.b.c.d.e".into(),
            Malformed("token does not have exactly three segments"),
        ),
        // Base64url strictness.
        (
            "padded header",
            with_segment(&good, 0, &format!("{}=", b64(HS_HEADER))),
            Malformed("header is not unpadded base64url"),
        ),
        (
            "padded signature",
            format!("{good}="),
            Malformed("signature is not unpadded base64url"),
        ),
        (
            "whitespace in payload",
            with_segment(&good, 1, &format!(" {}", b64(&good_payload()))),
            Malformed("payload is not unpadded base64url"),
        ),
        (
            "trailing newline",
            format!("{good}\n"),
            Malformed("signature is not unpadded base64url"),
        ),
        (
            "standard alphabet + in payload",
            with_segment(&good, 1, &format!("+{}", &b64(&good_payload())[1..])),
            Malformed("payload is not unpadded base64url"),
        ),
        (
            "standard alphabet / in signature",
            {
                let (head, sig) = good.rsplit_once('.').unwrap_or_default();
                format!("{head}./{}", &sig[1..])
            },
            Malformed("signature is not unpadded base64url"),
        ),
        (
            "non-canonical trailing bits",
            {
                // 32-byte HMAC → 43 chars, the last carrying 2 unused bits.
                let (head, sig) = good.rsplit_once('.').unwrap_or_default();
                let mut sig = sig.to_owned();
                let last = sig.pop().unwrap_or('A');
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                let index = alphabet
                    .iter()
                    .position(|&c| c as char == last)
                    .unwrap_or(0);
                sig.push(alphabet[index | 1] as char);
                format!("{head}.{sig}")
            },
            Malformed("signature is not unpadded base64url"),
        ),
        // Header JSON.
        (
            "header not JSON",
            with_segment(&good, 0, &b64("alg=HS256")),
            Malformed("header is not valid JSON"),
        ),
        (
            "header is an array",
            with_segment(&good, 0, &b64(r#"["HS256"]"#)),
            Malformed("header is not a JSON object"),
        ),
        (
            "duplicate alg",
            token(
                r#"{"alg":"HS256","alg":"none"}"#,
                &good_payload(),
                Signer::Hmac(SECRET),
            ),
            Malformed("header repeats a member name"),
        ),
        (
            "no alg",
            token(r#"{"typ":"JWT"}"#, &good_payload(), Signer::Hmac(SECRET)),
            Malformed("header has no alg"),
        ),
        (
            "alg not a string",
            token(r#"{"alg":256}"#, &good_payload(), Signer::Hmac(SECRET)),
            Malformed("header alg is not a string"),
        ),
        (
            "kid not a string",
            token(r#"{"alg":"ES256","kid":1}"#, &good_payload(), Signer::Es256),
            Malformed("header kid is not a string"),
        ),
        // Algorithms.
        (
            "alg none, null signature",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&good_payload())
            ),
            UnsupportedAlgorithm,
        ),
        (
            "alg None",
            format!("{}.{}.", b64(r#"{"alg":"None"}"#), b64(&good_payload())),
            UnsupportedAlgorithm,
        ),
        (
            "alg NONE",
            format!("{}.{}.", b64(r#"{"alg":"NONE"}"#), b64(&good_payload())),
            UnsupportedAlgorithm,
        ),
        (
            "mis-cased hs256",
            token(r#"{"alg":"hs256"}"#, &good_payload(), Signer::Hmac(SECRET)),
            UnsupportedAlgorithm,
        ),
        (
            "HS384 is not accepted",
            with_segment(&good, 0, &b64(r#"{"alg":"HS384"}"#)),
            UnsupportedAlgorithm,
        ),
        (
            "ES512 is not accepted",
            with_segment(&good, 0, &b64(r#"{"alg":"ES512"}"#)),
            UnsupportedAlgorithm,
        ),
        // Signatures.
        (
            "stripped signature",
            format!(
                "{}.",
                good.rsplit_once('.').map(|(a, _)| a).unwrap_or_default()
            ),
            BadSignature,
        ),
        (
            "signature of another token",
            with_segment(&good, 2, &es_signature),
            BadSignature,
        ),
        (
            "wrong HMAC secret",
            token(
                HS_HEADER,
                &good_payload(),
                Signer::Hmac(b"another-secret-that-is-long-enough!!"),
            ),
            BadSignature,
        ),
        (
            "tampered payload",
            with_segment(
                &good,
                1,
                &b64(&claims_with(|c| {
                    c.insert("plan".into(), "pro".into());
                })),
            ),
            BadSignature,
        ),
        (
            "DER ECDSA signature",
            with_segment(&good_es, 2, &der_signature),
            BadSignature,
        ),
        (
            "ECDSA signature truncated",
            with_segment(&good_es, 2, &es_signature[..80]),
            BadSignature,
        ),
        (
            "RS256 signature stripped to zero bytes",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"RS256","kid":"test-rs256"}"#),
                b64(&good_payload())
            ),
            BadSignature,
        ),
        // Key confusion and selection.
        (
            "RS→HS confusion via kid (modulus as secret)",
            token(
                r#"{"alg":"HS256","kid":"test-rs256"}"#,
                &good_payload(),
                Signer::Hmac(rsa_modulus),
            ),
            AlgorithmMismatch,
        ),
        (
            "RS→HS confusion without kid (JWK as secret)",
            token(HS_HEADER, &good_payload(), Signer::Hmac(rsa_jwk_text)),
            BadSignature,
        ),
        (
            "ES256 key named for RS256",
            token(
                r#"{"alg":"RS256","kid":"test-es256"}"#,
                &good_payload(),
                Signer::Rsa(Algorithm::RS256),
            ),
            AlgorithmMismatch,
        ),
        (
            "kid path traversal",
            token(
                r#"{"alg":"ES256","kid":"../../etc/passwd"}"#,
                &good_payload(),
                Signer::Es256,
            ),
            UnknownKey,
        ),
        (
            "unknown kid",
            token(
                r#"{"alg":"ES256","kid":"attacker"}"#,
                &good_payload(),
                Signer::Attacker,
            ),
            UnknownKey,
        ),
        (
            "attacker key without kid",
            token(r#"{"alg":"ES256"}"#, &good_payload(), Signer::Attacker),
            BadSignature,
        ),
        // Headers that are never honoured.
        (
            "embedded attacker jwk",
            token(
                &json!({"alg":"ES256","jwk":attacker_jwk}).to_string(),
                &good_payload(),
                Signer::Attacker,
            ),
            KeyReferenceHeader,
        ),
        (
            "embedded jwk with our kid",
            token(
                &json!({"alg":"ES256","kid":"test-es256","jwk":attacker_jwk}).to_string(),
                &good_payload(),
                Signer::Attacker,
            ),
            KeyReferenceHeader,
        ),
        (
            "jku to loopback",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","jku":"http://127.0.0.1:9/jwks"}"#),
            KeyReferenceHeader,
        ),
        (
            "x5u",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","x5u":"http://127.0.0.1:9/cert"}"#),
            KeyReferenceHeader,
        ),
        (
            "x5c",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","x5c":["MIIB"]}"#),
            KeyReferenceHeader,
        ),
        (
            "crit exp",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","crit":["exp"],"exp":1}"#),
            CriticalHeader,
        ),
        (
            "crit b64",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","crit":["b64"],"b64":false}"#),
            CriticalHeader,
        ),
        (
            "crit empty",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","crit":[]}"#),
            CriticalHeader,
        ),
        (
            "typ JWE",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","typ":"JWE"}"#),
            BadType,
        ),
        (
            "typ dpop+jwt",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","typ":"dpop+jwt"}"#),
            BadType,
        ),
        (
            "typ secevent+jwt",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","typ":"secevent+jwt"}"#),
            BadType,
        ),
        (
            "typ not a string",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","typ":1}"#),
            BadType,
        ),
        (
            "nested cty JWT",
            es_with_header(r#"{"alg":"ES256","kid":"test-es256","cty":"JWT"}"#),
            BadType,
        ),
        // Payload JSON.
        (
            "duplicate iss",
            hs(&format!(
                "{{\"iss\":\"https://evil.test\",{}",
                &good_payload()[1..]
            )),
            Malformed("payload repeats a member name"),
        ),
        (
            "duplicate nested member",
            hs(&claims_with(|c| {
                c.remove("plan");
            })
            .replacen('{', "{\"plan\":{\"a\":1,\"a\":2},", 1)),
            Malformed("payload repeats a member name"),
        ),
        (
            "payload is an array",
            hs("[1,2]"),
            Malformed("payload is not a JSON object"),
        ),
        (
            "payload is not JSON",
            hs("iss=joe"),
            Malformed("payload is not valid JSON"),
        ),
        (
            "payload is not UTF-8",
            {
                let input = format!(
                    "{}.{}",
                    b64(HS_HEADER),
                    URL_SAFE_NO_PAD.encode([0x7b, 0xff, 0x7d])
                );
                let signature = sign(&input, Signer::Hmac(SECRET));
                format!("{input}.{signature}")
            },
            Malformed("payload is not UTF-8"),
        ),
        // Times.
        ("expired", set("exp", json!(NOW - 100)), Expired),
        (
            "expired at the leeway edge",
            set("exp", json!(NOW - 30)),
            Expired,
        ),
        ("exp missing", unset("exp"), BadClaim("exp")),
        (
            "exp string",
            set("exp", json!((NOW + 600).to_string())),
            BadClaim("exp"),
        ),
        ("exp null", set("exp", Value::Null), BadClaim("exp")),
        (
            "exp 1e30",
            hs(&unset_text("exp").replacen('{', "{\"exp\":1e30,", 1)),
            BadClaim("exp"),
        ),
        ("exp 2^53", set("exp", json!(1u64 << 53)), BadClaim("exp")),
        ("exp negative", set("exp", json!(-1)), BadClaim("exp")),
        ("exp bool", set("exp", json!(true)), BadClaim("exp")),
        ("iat missing", unset("iat"), BadClaim("iat")),
        ("iat string", set("iat", json!("now")), BadClaim("iat")),
        (
            "iat in the future",
            set("iat", json!(NOW + 31)),
            IssuedInFuture,
        ),
        (
            "nbf in the future",
            set("nbf", json!(NOW + 120)),
            NotYetValid,
        ),
        ("nbf string", set("nbf", json!("0")), BadClaim("nbf")),
        // Issuer and audience.
        ("iss missing", unset("iss"), BadClaim("iss")),
        ("iss array", set("iss", json!([ISSUER])), BadClaim("iss")),
        ("iss number", set("iss", json!(1)), BadClaim("iss")),
        (
            "iss other",
            set("iss", json!("https://issuer.test/")),
            Issuer,
        ),
        (
            "iss case differs",
            set("iss", json!("https://ISSUER.test")),
            Issuer,
        ),
        ("aud missing", unset("aud"), BadClaim("aud")),
        ("aud number", set("aud", json!(7)), BadClaim("aud")),
        (
            "aud object",
            set("aud", json!({ "aud": AUDIENCE })),
            BadClaim("aud"),
        ),
        (
            "aud array with non-string",
            set("aud", json!([AUDIENCE, 1])),
            BadClaim("aud"),
        ),
        (
            "aud other",
            set("aud", json!("mozaiks-runtime-2")),
            Audience,
        ),
        ("aud empty array", set("aud", json!([])), Audience),
        // Token use and workflow.
        (
            "token use other",
            set("mozaiks_token_use", json!("refresh")),
            TokenUse,
        ),
        ("token use missing", unset("mozaiks_token_use"), TokenUse),
        (
            "token use array",
            set("mozaiks_token_use", json!(["execution"])),
            TokenUse,
        ),
        (
            "workflow_id missing",
            unset("workflow_id"),
            BadClaim("workflow_id"),
        ),
        (
            "workflow_id empty",
            set("workflow_id", json!("")),
            BadClaim("workflow_id"),
        ),
        (
            "workflow_id number",
            set("workflow_id", json!(5)),
            BadClaim("workflow_id"),
        ),
        (
            "workflow_version empty",
            set("workflow_version", json!("")),
            BadClaim("workflow_version"),
        ),
        (
            "workflow_version null",
            set("workflow_version", Value::Null),
            BadClaim("workflow_version"),
        ),
        // Scope (last: only an otherwise valid token gets 403).
        ("scope missing", unset("scope"), InsufficientScope),
        (
            "scope other",
            set("scope", json!("workflow:read")),
            InsufficientScope,
        ),
        (
            "scope prefix",
            set("scope", json!("workflow:execute:all")),
            InsufficientScope,
        ),
        (
            "scope comma list",
            set("scope", json!("openid,workflow:execute")),
            InsufficientScope,
        ),
        (
            "scope case differs",
            set("scope", json!("WORKFLOW:EXECUTE")),
            InsufficientScope,
        ),
        (
            "scope array",
            set("scope", json!([SCOPE])),
            BadClaim("scope"),
        ),
        ("scp number", set("scp", json!(1)), BadClaim("scp")),
        (
            "scp array with non-string",
            set("scp", json!([SCOPE, 1])),
            BadClaim("scp"),
        ),
        (
            "scp array without it",
            hs(&claims_with(|c| {
                c.remove("scope");
                c.insert("scp".into(), json!(["a b"]));
            })),
            InsufficientScope,
        ),
        (
            "scope is checked last",
            hs(&claims_with(|c| {
                c.remove("scope");
                c.insert("aud".into(), json!("x"));
            })),
            Audience,
        ),
    ];

    let mut failures = Vec::new();
    for (name, token, expected) in &cases {
        let got = verify(token).map(|_| ());
        if got != Err(*expected) {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn scope_may_come_from_scp() {
    for scp in [
        json!(["a", SCOPE]),
        json!(format!("a {SCOPE}")),
        json!(SCOPE),
    ] {
        let token = hs(&claims_with(|c| {
            c.remove("scope");
            c.insert("scp".into(), scp.clone());
        }));
        assert!(verify(&token).is_ok(), "{scp}");
    }
}

#[test]
fn leeway_applies_to_every_time_claim() {
    let cases = [
        ("exp just inside the leeway", "exp", NOW - 29),
        ("nbf just inside the leeway", "nbf", NOW + 30),
        ("iat just inside the leeway", "iat", NOW + 30),
    ];
    for (name, claim, value) in cases {
        let token = hs(&claims_with(|c| {
            c.insert(claim.into(), value.into());
        }));
        assert!(verify(&token).is_ok(), "{name}");
    }
    let strict = Verifier::new(AuthConfig {
        leeway_seconds: 0,
        ..config()
    })
    .expect("valid config");
    let exp_now = hs(&claims_with(|c| {
        c.insert("exp".into(), NOW.into());
    }));
    assert_eq!(strict.verify(&exp_now, NOW).err(), Some(AuthError::Expired));
    assert!(strict.verify(&exp_now, NOW - 1).is_ok());
    let fractional = hs(&claims_with(|c| {
        c.insert("exp".into(), json!(NOW as f64 + 0.5));
    }));
    assert!(strict.verify(&fractional, NOW).is_ok());
    assert_eq!(
        strict.verify(&fractional, NOW + 1).err(),
        Some(AuthError::Expired)
    );
}

#[test]
fn token_use_check_can_be_disabled() {
    let token = hs(&claims_with(|c| {
        c.remove("mozaiks_token_use");
    }));
    for token_use in [None, Some(String::new())] {
        let verifier = Verifier::new(AuthConfig {
            token_use,
            ..config()
        })
        .expect("valid config");
        assert!(verifier.verify(&token, NOW).is_ok());
    }
}

#[test]
fn key_selection_without_kid() {
    // No HS256 secret: HS256 without kid needs exactly one oct JWK.
    let jwks_only = Verifier::new(AuthConfig {
        hs256_secret: None,
        ..config()
    })
    .expect("valid config");
    let hs_token = hs(&good_payload());
    assert_eq!(
        jwks_only.verify(&hs_token, NOW).err(),
        Some(AuthError::UnknownKey)
    );

    let oct = json!({"keys": [{
        "kty": "oct", "kid": "shared", "alg": "HS256",
        "k": URL_SAFE_NO_PAD.encode(SECRET)
    }]});
    let oct_only = Verifier::new(AuthConfig {
        hs256_secret: None,
        jwks_json: Some(oct.to_string()),
        ..config()
    })
    .expect("valid config");
    assert!(oct_only.verify(&hs_token, NOW).is_ok());
    let with_kid = token(
        r#"{"alg":"HS256","kid":"shared"}"#,
        &good_payload(),
        Signer::Hmac(SECRET),
    );
    assert!(oct_only.verify(&with_kid, NOW).is_ok());

    // A kid never reaches the HS256 secret, which has none.
    let kid_to_secret = token(
        r#"{"alg":"HS256","kid":"shared"}"#,
        &good_payload(),
        Signer::Hmac(SECRET),
    );
    assert_eq!(verify(&kid_to_secret).err(), Some(AuthError::UnknownKey));

    // Two ES256 keys: a token without kid is ambiguous.
    let mut jwks: Value = serde_json::from_str(JWKS).expect("test JWKS");
    let keys = jwks["keys"].as_array_mut().expect("keys");
    let mut twin = keys
        .iter()
        .find(|key| key["alg"] == "ES256")
        .cloned()
        .expect("ES256 key");
    twin["kid"] = "test-es256-twin".into();
    keys.push(twin);
    let twins = Verifier::new(AuthConfig {
        jwks_json: Some(jwks.to_string()),
        ..config()
    })
    .expect("valid config");
    let no_kid = token(r#"{"alg":"ES256"}"#, &good_payload(), Signer::Es256);
    assert_eq!(
        twins.verify(&no_kid, NOW).err(),
        Some(AuthError::UnknownKey)
    );
    assert!(twins.verify(&es_with_header(ES_HEADER), NOW).is_ok());
}

#[test]
fn size_cap_is_exact() {
    let mut last_accepted = None;
    let mut first_refused = None;
    for filler in 11_500.. {
        let token = hs(&claims_with(|c| {
            c.insert("filler".into(), "x".repeat(filler).into());
        }));
        if token.len() <= MAX_TOKEN_BYTES {
            last_accepted = Some(token);
        } else {
            first_refused = Some(token);
            break;
        }
    }
    let accepted = last_accepted.expect("a token under the cap");
    assert!(accepted.len() > MAX_TOKEN_BYTES - 4);
    assert!(verify(&accepted).is_ok());
    let refused = first_refused.expect("a token over the cap");
    assert_eq!(verify(&refused).err(), Some(AuthError::TooLarge));
}

// RFC 7515 Appendix A: the published signatures verify through the JWS layer.
const RFC_PAYLOAD_B64: &str =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const RFC_PAYLOAD: &str =
    "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
const RFC_A1_HEADER: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
const RFC_A1_KEY: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const RFC_A1_SIG: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC_A2_HEADER: &str = "eyJhbGciOiJSUzI1NiJ9";
const RFC_A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const RFC_A2_SIG: &str = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
const RFC_A3_HEADER: &str = "eyJhbGciOiJFUzI1NiJ9";
const RFC_A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const RFC_A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const RFC_A3_SIG: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

fn rfc_key_sets() -> Vec<(&'static str, KeySet, String)> {
    let a1_key = URL_SAFE_NO_PAD.decode(RFC_A1_KEY).expect("A.1 key");
    let a2 = json!({"keys": [{"kty": "RSA", "kid": "rfc7515-a2", "alg": "RS256", "n": RFC_A2_N, "e": "AQAB"}]});
    let a3 = json!({"keys": [{"kty": "EC", "kid": "rfc7515-a3", "alg": "ES256", "crv": "P-256",
        "x": RFC_A3_X, "y": RFC_A3_Y}]});
    vec![
        (
            "A.1 HS256",
            KeySet::from_config(None, Some(&a1_key)).expect("A.1 key set"),
            format!("{RFC_A1_HEADER}.{RFC_PAYLOAD_B64}.{RFC_A1_SIG}"),
        ),
        (
            "A.2 RS256",
            KeySet::from_config(Some(&a2.to_string()), None).expect("A.2 key set"),
            format!("{RFC_A2_HEADER}.{RFC_PAYLOAD_B64}.{RFC_A2_SIG}"),
        ),
        (
            "A.3 ES256",
            KeySet::from_config(Some(&a3.to_string()), None).expect("A.3 key set"),
            format!("{RFC_A3_HEADER}.{RFC_PAYLOAD_B64}.{RFC_A3_SIG}"),
        ),
    ]
}

#[test]
fn rfc7515_appendix_a_signatures_verify() {
    for (name, keys, token) in rfc_key_sets() {
        assert_eq!(
            jws::verify_compact(&token, &keys),
            Ok(RFC_PAYLOAD.as_bytes().to_vec()),
            "{name}"
        );
        // Any change to the signing input breaks it.
        let tampered = token.replacen("eyJpc3MiOiJqb2Ui", "eyJpc3MiOiJqb2Ki", 1);
        assert_eq!(
            jws::verify_compact(&tampered, &keys),
            Err(AuthError::BadSignature),
            "{name} tampered"
        );
    }
}

#[test]
fn rfc7515_a1_token_reaches_the_claim_checks() {
    let verifier = Verifier::new(AuthConfig {
        issuer: "joe".into(),
        jwks_json: None,
        hs256_secret: Some(URL_SAFE_NO_PAD.decode(RFC_A1_KEY).expect("A.1 key")),
        ..config()
    })
    .expect("valid config");
    let token = format!("{RFC_A1_HEADER}.{RFC_PAYLOAD_B64}.{RFC_A1_SIG}");
    // Signature and header pass; the example has no iat.
    assert_eq!(
        verifier.verify(&token, 1_300_819_000).err(),
        Some(AuthError::BadClaim("iat"))
    );
}

fn init_error(cfg: AuthConfig) -> String {
    match Verifier::new(cfg) {
        Ok(_) => "no error".into(),
        Err(err) => err.to_string(),
    }
}

fn jwks_error(key: Value) -> String {
    init_error(AuthConfig {
        jwks_json: Some(json!({ "keys": [key] }).to_string()),
        hs256_secret: None,
        ..config()
    })
}

#[test]
fn init_rejects_bad_keys_with_a_message_naming_the_key() {
    let weak_n = URL_SAFE_NO_PAD.encode([0xc5u8; 128]);
    let ec = |alg: &str, crv: &str| {
        json!({"kty": "EC", "kid": "ec", "alg": alg, "crv": crv,
            "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])})
    };
    let rsa = |n: &str, e: &str| json!({"kty": "RSA", "kid": "r", "alg": "RS256", "n": n, "e": e});
    let good_n = URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "1024-bit RSA",
            json!({"kty": "RSA", "kid": "k2", "alg": "RS256", "n": weak_n, "e": "AQAB"}),
            "JWKS key 1 of 1 (kid \"k2\"): RSA modulus is 1024 bits; at least 2048 are required",
        ),
        (
            "missing alg",
            json!({"kty": "RSA", "kid": "k", "n": good_n, "e": "AQAB"}),
            "\"alg\" is missing",
        ),
        (
            "missing kid",
            json!({"kty": "RSA", "alg": "RS256", "n": good_n, "e": "AQAB"}),
            "JWKS key 1 of 1 (no kid): \"kid\" is missing",
        ),
        (
            "unsupported alg",
            json!({"kty": "RSA", "kid": "k", "alg": "RSA-OAEP", "n": good_n, "e": "AQAB"}),
            "alg \"RSA-OAEP\" is not accepted",
        ),
        (
            "HS384",
            json!({"kty": "oct", "kid": "k", "alg": "HS384", "k": "AAAA"}),
            "alg \"HS384\" is not accepted",
        ),
        (
            "use enc",
            json!({"kty": "RSA", "kid": "k", "alg": "RS256", "use": "enc", "n": good_n, "e": "AQAB"}),
            "\"use\" must be \"sig\"",
        ),
        (
            "key_ops without verify",
            json!({"kty": "RSA", "kid": "k", "alg": "RS256", "key_ops": ["sign"],
            "n": good_n, "e": "AQAB"}),
            "\"key_ops\" must be an array that includes \"verify\"",
        ),
        (
            "ES256 on P-384",
            ec("ES256", "P-384"),
            "crv \"P-384\" does not fit alg ES256",
        ),
        (
            "ES384 on P-256",
            ec("ES384", "P-256"),
            "crv \"P-256\" does not fit alg ES384",
        ),
        (
            "kty mismatch",
            json!({"kty": "RSA", "kid": "k", "alg": "ES256", "n": good_n, "e": "AQAB"}),
            "kty \"RSA\" does not fit alg ES256",
        ),
        (
            "private d",
            json!({"kty": "RSA", "kid": "k", "alg": "RS256", "n": good_n, "e": "AQAB", "d": "AQAB"}),
            "contains private key material (\"d\")",
        ),
        (
            "short oct",
            json!({"kty": "oct", "kid": "k", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode([7u8; 16])}),
            "\"k\" is 16 bytes; at least 32 are required",
        ),
        (
            "Ed448",
            json!({"kty": "OKP", "kid": "k", "alg": "EdDSA", "crv": "Ed448", "x": "AAAA"}),
            "crv \"Ed448\" does not fit alg EdDSA",
        ),
        (
            "short EC coordinate",
            json!({"kty": "EC", "kid": "k", "alg": "ES256", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode([1u8; 31]), "y": URL_SAFE_NO_PAD.encode([2u8; 32])}),
            "\"x\" is 31 bytes; a P-256 coordinate is 32",
        ),
        (
            // Keys are parsed at init: a point off the curve fails there, not at each token.
            "EC point off the curve",
            ec("ES256", "P-256"),
            "JWKS key 1 of 1 (kid \"ec\"): \"x\" and \"y\" are not a point of P-256",
        ),
        (
            "even exponent",
            rsa(&good_n, "AQAA"),
            "RSA exponent \"e\" must be an odd number",
        ),
        (
            "exponent 1",
            rsa(&good_n, "AQ"),
            "RSA exponent \"e\" must be an odd number",
        ),
        (
            "padded modulus",
            rsa(&format!("{good_n}=="), "AQAB"),
            "\"n\" is not unpadded base64url",
        ),
        (
            "not an object",
            json!("key"),
            "JWKS key 1 of 1 (no kid): is not a JSON object",
        ),
    ];
    for (name, key, expected) in cases {
        let message = jwks_error(key);
        assert!(message.contains(expected), "{name}: {message}");
    }
}

#[test]
fn init_rejects_bad_configuration() {
    let dup = json!({"keys": [
        {"kty": "oct", "kid": "same", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode([1u8; 32])},
        {"kty": "oct", "kid": "same", "alg": "HS256", "k": URL_SAFE_NO_PAD.encode([2u8; 32])}
    ]});
    let cases: Vec<(&str, AuthConfig, &str)> = vec![
        (
            "no key source",
            AuthConfig {
                jwks_json: None,
                hs256_secret: None,
                ..config()
            },
            "no launch-token key is configured",
        ),
        (
            "short secret",
            AuthConfig {
                hs256_secret: Some(vec![1; 31]),
                ..config()
            },
            "MOZAIKS_JWT_HS256_SECRET is 31 bytes; at least 32 are required",
        ),
        (
            "duplicate kid",
            AuthConfig {
                jwks_json: Some(dup.to_string()),
                ..config()
            },
            "JWKS key 2 of 2 (kid \"same\"): the kid is already used by key 1",
        ),
        (
            "JWKS not JSON",
            AuthConfig {
                jwks_json: Some("{keys:[]}".into()),
                ..config()
            },
            "JWKS is not valid JSON",
        ),
        (
            "JWKS duplicate member",
            AuthConfig {
                jwks_json: Some(r#"{"keys":[],"keys":[]}"#.into()),
                ..config()
            },
            "JWKS repeats a member name",
        ),
        (
            "JWKS without keys",
            AuthConfig {
                jwks_json: Some("{}".into()),
                ..config()
            },
            "JWKS has no \"keys\" array",
        ),
        (
            "JWKS empty",
            AuthConfig {
                jwks_json: Some(r#"{"keys":[]}"#.into()),
                ..config()
            },
            "JWKS \"keys\" is empty",
        ),
        (
            "empty issuer",
            AuthConfig {
                issuer: String::new(),
                ..config()
            },
            "MOZAIKS_JWT_ISSUER is empty",
        ),
        (
            "empty audience",
            AuthConfig {
                audience: String::new(),
                ..config()
            },
            "MOZAIKS_JWT_AUDIENCE is empty",
        ),
        (
            "scope with space",
            AuthConfig {
                required_scope: "a b".into(),
                ..config()
            },
            "MOZAIKS_JWT_REQUIRED_SCOPE",
        ),
        (
            "leeway 301",
            AuthConfig {
                leeway_seconds: 301,
                ..config()
            },
            "MOZAIKS_JWT_LEEWAY_SECONDS is 301; at most 300",
        ),
    ];
    for (name, cfg, expected) in cases {
        let message = init_error(cfg);
        assert!(message.contains(expected), "{name}: {message}");
    }
    let secret_config = format!("{:?}", config());
    assert!(
        !secret_config.contains("test-only-hs256"),
        "{secret_config}"
    );
}

#[test]
fn reasons_are_distinct_and_only_scope_is_403() {
    use AuthError::*;
    let all = [
        TooLarge,
        Malformed("x"),
        UnsupportedAlgorithm,
        AlgorithmMismatch,
        UnknownKey,
        BadSignature,
        CriticalHeader,
        KeyReferenceHeader,
        BadType,
        Expired,
        NotYetValid,
        IssuedInFuture,
        BadClaim("exp"),
        Issuer,
        Audience,
        TokenUse,
        InsufficientScope,
    ];
    let mut reasons: Vec<&str> = all.iter().map(AuthError::reason).collect();
    assert!(reasons
        .iter()
        .all(|r| r.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    reasons.sort_unstable();
    reasons.dedup();
    assert_eq!(reasons.len(), all.len());
    let forbidden: Vec<_> = all.iter().filter(|e| e.is_insufficient_scope()).collect();
    assert_eq!(forbidden, [&InsufficientScope]);
}

#[test]
fn shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
    assert_send_sync::<ExecutionContext>();
    let token = hs(&good_payload());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| assert!(verify(&token).is_ok()));
        }
    });
}

/// One valid token per key family, for mutation.
static VALID_TOKENS: LazyLock<Vec<String>> = LazyLock::new(|| {
    vec![
        hs(&good_payload()),
        es_with_header(ES_HEADER),
        token(
            r#"{"alg":"EdDSA","kid":"test-eddsa"}"#,
            &good_payload(),
            Signer::Ed25519,
        ),
        token(
            r#"{"alg":"PS256","kid":"test-ps256"}"#,
            &good_payload(),
            Signer::Rsa(Algorithm::PS256),
        ),
    ]
});

const TOKEN_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";

proptest! {
    #[test]
    fn arbitrary_bytes_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(verify(&text).is_err());
    }

    #[test]
    fn token_shaped_text_never_verifies(
        parts in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(TOKEN_ALPHABET), 0..300), 1..5)
    ) {
        let text = parts
            .iter()
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect::<Vec<_>>()
            .join(".");
        prop_assert!(verify(&text).is_err());
    }

    #[test]
    fn single_byte_mutations_never_verify(
        which in 0..4usize,
        position in any::<proptest::sample::Index>(),
        byte in prop_oneof![proptest::sample::select(TOKEN_ALPHABET), any::<u8>()],
    ) {
        let original = &VALID_TOKENS[which];
        prop_assert!(verify(original).is_ok());
        let mut bytes = original.as_bytes().to_vec();
        let index = position.index(bytes.len());
        prop_assume!(bytes[index] != byte);
        bytes[index] = byte;
        let mutated = String::from_utf8_lossy(&bytes);
        prop_assert!(verify(&mutated).is_err());
    }

    #[test]
    fn payload_mutations_resigned_never_panic(
        position in any::<proptest::sample::Index>(),
        byte in any::<u8>(),
    ) {
        // Validly signed but arbitrary payload bytes: the claim layer must refuse or accept
        // without panicking.
        let mut payload = good_payload().into_bytes();
        let index = position.index(payload.len());
        payload[index] = byte;
        let input = format!("{}.{}", b64(HS_HEADER), URL_SAFE_NO_PAD.encode(&payload));
        let signature = sign(&input, Signer::Hmac(SECRET));
        let _ = verify(&format!("{input}.{signature}"));
    }
}
