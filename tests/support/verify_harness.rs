//! The launch-token verifier under hostile input: test keys, valid tokens for every algorithm,
//! and [`run`], one fuzz case driven by bytes.
//!
//! Shared, through `#[path]`, by the property test of the normal test run
//! (`tests/auth_properties.rs`), the `cargo fuzz` target (`fuzz/fuzz_targets/verify.rs`) and the
//! benchmark (`benches/verify.rs`), so the fuzzer and the test suite explore one input space
//! with one oracle. Public API of `mozaiks_runtime::auth` only.
//!
//! The oracle: the verifier never panics, and it accepts a token only if
//! - its signing input (`header.payload`) is one the test keys signed here (a raw or mutated
//!   token: nothing an attacker edits verifies), or
//! - the header and claims independently satisfy every documented rule (a token re-signed with
//!   a test key over fuzzed header or claims: the rule layer accepts nothing it should refuse).
//!
//! For structured claim edits the oracle is exact both ways: an independent reading of the
//! claim rules decides accepted / 403 / 401, and the verifier must agree.
//!
//! Keys are the throwaway test keys of `src/auth/testdata/` (never deploy them).
#![allow(dead_code)]

use std::sync::LazyLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{crypto, Algorithm, EncodingKey};
use mozaiks_runtime::auth::{AuthConfig, AuthError, Verifier};
use serde_json::{json, Map, Value};

/// The fixed clock of every case (2023-11-14T22:13:20Z), so cases are reproducible.
pub const NOW: u64 = 1_700_000_000;
/// `MOZAIKS_JWT_ISSUER` of the test verifier.
pub const ISSUER: &str = "https://issuer.test";
/// `MOZAIKS_JWT_AUDIENCE` of the test verifier.
pub const AUDIENCE: &str = "mozaiks-runtime";
/// `MOZAIKS_JWT_REQUIRED_SCOPE` of the test verifier.
pub const SCOPE: &str = "workflow:execute";
/// `MOZAIKS_JWT_TOKEN_USE` of the test verifier.
pub const TOKEN_USE: &str = "execution";
/// `MOZAIKS_JWT_LEEWAY_SECONDS` of the test verifier.
pub const LEEWAY: u64 = 30;
/// `MOZAIKS_JWT_HS256_SECRET` of the test verifier.
pub const SECRET: &[u8] = b"test-only-hs256-secret-0123456789abcdef";

const JWKS: &str = include_str!("../../src/auth/testdata/test-jwks.json");
const RSA_PEM: &str = include_str!("../../src/auth/testdata/test-rsa2048.pem");
const P256_PEM: &str = include_str!("../../src/auth/testdata/test-p256.pem");
const P384_PEM: &str = include_str!("../../src/auth/testdata/test-p384.pem");
const ED25519_PEM: &str = include_str!("../../src/auth/testdata/test-ed25519.pem");

/// The test verifier: the test JWKS and the HS256 secret, default scope and token use.
pub fn config() -> AuthConfig {
    AuthConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_json: Some(JWKS.into()),
        hs256_secret: Some(SECRET.to_vec()),
        required_scope: SCOPE.into(),
        token_use: Some(TOKEN_USE.into()),
        leeway_seconds: LEEWAY,
    }
}

/// The verifier every case runs against, built once.
pub static VERIFIER: LazyLock<Verifier> =
    LazyLock::new(|| Verifier::new(config()).expect("the test configuration is valid"));

/// A test signing key and the algorithm it signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The HS256 shared secret (tokens without `kid`, as MozaiksCore signs).
    Hs256,
    /// The test RSA key, PKCS#1 v1.5 with SHA-256 (`kid` test-rs256).
    Rs256,
    /// The test RSA key, PSS with SHA-256 (`kid` test-ps256).
    Ps256,
    /// The test P-256 key (`kid` test-es256).
    Es256,
    /// The test P-384 key (`kid` test-es384).
    Es384,
    /// The test Ed25519 key (`kid` test-eddsa).
    EdDsa,
}

impl Signer {
    /// Every signer, in benchmark order.
    pub const ALL: [Signer; 6] = [
        Signer::Hs256,
        Signer::Rs256,
        Signer::Ps256,
        Signer::Es256,
        Signer::Es384,
        Signer::EdDsa,
    ];

    /// The JWA name (`alg`).
    pub fn alg(self) -> &'static str {
        match self {
            Signer::Hs256 => "HS256",
            Signer::Rs256 => "RS256",
            Signer::Ps256 => "PS256",
            Signer::Es256 => "ES256",
            Signer::Es384 => "ES384",
            Signer::EdDsa => "EdDSA",
        }
    }

    /// The `kid` of its key in the test JWKS (`None` for the HS256 secret, which has none).
    pub fn kid(self) -> Option<&'static str> {
        match self {
            Signer::Hs256 => None,
            Signer::Rs256 => Some("test-rs256"),
            Signer::Ps256 => Some("test-ps256"),
            Signer::Es256 => Some("test-es256"),
            Signer::Es384 => Some("test-es384"),
            Signer::EdDsa => Some("test-eddsa"),
        }
    }

    /// The usual header for this key: `alg`, `typ: JWT` and the `kid` when it has one.
    pub fn header(self) -> String {
        match self.kid() {
            Some(kid) => json!({"alg": self.alg(), "typ": "JWT", "kid": kid}).to_string(),
            None => json!({"alg": self.alg(), "typ": "JWT"}).to_string(),
        }
    }

    fn key(self) -> &'static (EncodingKey, Algorithm) {
        static KEYS: LazyLock<Vec<(EncodingKey, Algorithm)>> = LazyLock::new(|| {
            Signer::ALL
                .iter()
                .map(|signer| match signer {
                    Signer::Hs256 => (EncodingKey::from_secret(SECRET), Algorithm::HS256),
                    Signer::Rs256 => (
                        EncodingKey::from_rsa_der(&pem_der(RSA_PEM)),
                        Algorithm::RS256,
                    ),
                    Signer::Ps256 => (
                        EncodingKey::from_rsa_der(&pem_der(RSA_PEM)),
                        Algorithm::PS256,
                    ),
                    Signer::Es256 => (
                        EncodingKey::from_ec_der(&pem_der(P256_PEM)),
                        Algorithm::ES256,
                    ),
                    Signer::Es384 => (
                        EncodingKey::from_ec_der(&pem_der(P384_PEM)),
                        Algorithm::ES384,
                    ),
                    Signer::EdDsa => (
                        EncodingKey::from_ed_der(&pem_der(ED25519_PEM)),
                        Algorithm::EdDSA,
                    ),
                })
                .collect()
        });
        let index = Signer::ALL
            .iter()
            .position(|signer| *signer == self)
            .expect("every signer is listed in ALL");
        &KEYS[index]
    }
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).expect("test PEM is base64")
}

/// A compact JWS of exactly these header and payload bytes, signed by `signer`.
pub fn token(header: &[u8], payload: &[u8], signer: Signer) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let (key, alg) = signer.key();
    let signature = crypto::sign(input.as_bytes(), key, *alg).expect("test key signs");
    format!("{input}.{signature}")
}

/// A claim set that verifies at [`NOW`]: MozaiksCore's claims plus the scope.
pub fn good_claims() -> Map<String, Value> {
    let claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": NOW - 10,
        "exp": NOW + 600,
        "scope": "openid workflow:execute",
        "mozaiks_token_use": TOKEN_USE,
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
        _ => unreachable!("the literal is an object"),
    }
}

/// One valid token per signer (in [`Signer::ALL`] order), signed once.
pub static VALID_TOKENS: LazyLock<Vec<(Signer, String)>> = LazyLock::new(|| {
    let payload = Value::Object(good_claims()).to_string();
    Signer::ALL
        .iter()
        .map(|&signer| {
            let token = token(signer.header().as_bytes(), payload.as_bytes(), signer);
            (signer, token)
        })
        .collect()
});

/// The signing inputs (`header.payload`) of [`VALID_TOKENS`].
static SIGNED_INPUTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    VALID_TOKENS
        .iter()
        .map(|(_, token)| signing_input(token).to_owned())
        .collect()
});

/// Everything before the last `.` (the whole text when there is none).
fn signing_input(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(input, _)| input)
}

/// Runs one fuzz case. The first byte picks the mode, the rest drives it:
///
/// | `data[0] % 5` | case |
/// |---|---|
/// | 0 | the bytes as a token (UTF-8-lossy), or mapped onto the base64url alphabet and `.` |
/// | 1 | a valid token of some algorithm with up to 16 byte and segment edits |
/// | 2 | the bytes as the payload of a token signed with the HS256 secret |
/// | 3 | the bytes as the header of a token of good claims, or up to 8 hostile header members, signed with HS256 or Ed25519 |
/// | 4 | good claims with up to 16 claims set to hostile values, signed with HS256 |
///
/// Panics (the fuzz failure) when the verifier panics or breaks the oracle of this module.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        assert_refused_unless_signed("");
        return;
    };
    match mode % 5 {
        0 => raw(rest),
        1 => mutated(rest),
        2 => signed_payload(rest),
        3 => signed_header(rest),
        _ => edited_claims(rest),
    }
}

/// A token is accepted only if its signing input is one the test keys signed.
fn assert_refused_unless_signed(token: &str) {
    if VERIFIER.verify(token, NOW).is_ok() {
        let input = signing_input(token);
        assert!(
            SIGNED_INPUTS.iter().any(|signed| signed == input),
            "accepted a token whose content no key signed: {token:?}"
        );
    }
}

const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_..";

fn raw(data: &[u8]) {
    let Some((&shape, bytes)) = data.split_first() else {
        assert_refused_unless_signed("");
        return;
    };
    if shape % 2 == 0 {
        assert_refused_unless_signed(&String::from_utf8_lossy(bytes));
    } else {
        let text: String = bytes
            .iter()
            .map(|&b| char::from(TOKEN_ALPHABET[usize::from(b) % TOKEN_ALPHABET.len()]))
            .collect();
        assert_refused_unless_signed(&text);
    }
}

/// Bytes that matter to a JWS parser, for edit 7.
const SPECIAL_BYTES: [u8; 10] = [b'.', b'=', b'+', b'/', b' ', b'\n', 0, 0x80, 0xff, b'A'];

fn mutated(data: &[u8]) {
    let Some((&which, edits)) = data.split_first() else {
        return;
    };
    let tokens = &*VALID_TOKENS;
    let mut bytes = tokens[usize::from(which) % tokens.len()]
        .1
        .as_bytes()
        .to_vec();
    for edit in edits.chunks_exact(4).take(16) {
        let (op, value) = (edit[0] % 8, edit[3]);
        let at = usize::from(u16::from_le_bytes([edit[1], edit[2]]));
        let pos = at % (bytes.len() + 1);
        match op {
            0 if pos < bytes.len() => bytes[pos] = value,
            1 => bytes.insert(pos, value),
            2 if pos < bytes.len() => {
                bytes.remove(pos);
            }
            3 => bytes.truncate(pos),
            4 => {
                // Segment splice: segment `i` takes segment `j` of another valid token
                // (algorithm confusion, signature transplant, header swap).
                let donor = &tokens[usize::from(value) % tokens.len()].1;
                let donor_segment = donor.split('.').nth(edit[2] as usize % 3).unwrap_or("");
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut segments: Vec<&str> = text.split('.').collect();
                let i = usize::from(edit[1]) % segments.len();
                segments[i] = donor_segment;
                bytes = segments.join(".").into_bytes();
            }
            5 if pos < bytes.len() => bytes[pos] ^= 1 << (value % 8),
            6 => {
                // Repeat a span (a doubled segment, a repeated separator).
                let end = (pos + usize::from(value % 64) + 1).min(bytes.len());
                let span = bytes[pos..end].to_vec();
                bytes.splice(pos..pos, span);
            }
            7 if pos < bytes.len() => {
                bytes[pos] = SPECIAL_BYTES[usize::from(value) % SPECIAL_BYTES.len()];
            }
            _ => {}
        }
    }
    assert_refused_unless_signed(&String::from_utf8_lossy(&bytes));
}

fn signed_payload(payload: &[u8]) {
    let token = token(Signer::Hs256.header().as_bytes(), payload, Signer::Hs256);
    if let Ok(context) = VERIFIER.verify(&token, NOW) {
        assert_eq!(
            context.raw_json().as_bytes(),
            payload,
            "the context is not the signed payload"
        );
        let claims: Map<String, Value> = serde_json::from_slice(payload)
            .unwrap_or_else(|err| panic!("accepted a payload that is not a JSON object: {err}"));
        assert_eq!(
            expected(&claims),
            Expected::Accepted,
            "accepted claims the rules refuse: {}",
            String::from_utf8_lossy(payload)
        );
        assert_eq!(context.claims(), &Value::Object(claims));
    }
}

fn signed_header(data: &[u8]) {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let signer = if choice % 2 == 0 {
        Signer::Hs256
    } else {
        Signer::EdDsa
    };
    let payload = Value::Object(good_claims()).to_string();
    if choice & 2 == 0 {
        // Arbitrary header bytes: acceptance implies a header the rules allow.
        let token = token(body, payload.as_bytes(), signer);
        if VERIFIER.verify(&token, NOW).is_ok() {
            let header: Map<String, Value> = serde_json::from_slice(body)
                .unwrap_or_else(|err| panic!("accepted a header that is not a JSON object: {err}"));
            assert!(
                header_allowed(&header, signer),
                "accepted a header the rules refuse: {header:?}"
            );
        }
        return;
    }
    // Structured header edits: the verifier's answer is exactly the rules' answer.
    let mut header = match serde_json::from_str::<Value>(&signer.header()) {
        Ok(Value::Object(map)) => map,
        _ => unreachable!("the usual header is a JSON object"),
    };
    for edit in body.chunks_exact(2).take(8) {
        let name = HEADER_MEMBERS[usize::from(edit[0]) % HEADER_MEMBERS.len()];
        match &HEADER_VALUES[usize::from(edit[1]) % HEADER_VALUES.len()] {
            None => header.remove(name),
            Some(value) => header.insert(name.to_owned(), value.clone()),
        };
    }
    let header_text = Value::Object(header.clone()).to_string();
    let token = token(header_text.as_bytes(), payload.as_bytes(), signer);
    let accepted = VERIFIER.verify(&token, NOW).is_ok();
    assert_eq!(
        accepted,
        header_allowed(&header, signer),
        "{signer:?} header {header_text}"
    );
}

/// The README's header rules, restated, for a token of good claims signed by `signer`.
pub fn header_allowed(header: &Map<String, Value>, signer: Signer) -> bool {
    let alg_ok = header.get("alg") == Some(&Value::from(signer.alg()));
    // Without kid: the HS256 secret for HS256, else the single JWKS key of that alg (the test
    // JWKS has exactly one per algorithm of Signer); with kid: that key, whose alg must match.
    let kid_ok = match header.get("kid") {
        None => true,
        Some(kid) => signer.kid().is_some_and(|expected| kid == expected),
    };
    let no_refused_member = ["crit", "jku", "x5u", "jwk", "x5c", "cty"]
        .iter()
        .all(|name| !header.contains_key(*name));
    let typ_ok = match header.get("typ") {
        None => true,
        Some(Value::String(typ)) => {
            let typ = typ.to_ascii_lowercase();
            let media = typ.strip_prefix("application/").unwrap_or(&typ);
            media == "jwt" || media == "at+jwt"
        }
        Some(_) => false,
    };
    alg_ok && kid_ok && no_refused_member && typ_ok
}

/// Header members the structured edits touch.
pub const HEADER_MEMBERS: [&str; 11] = [
    "alg", "kid", "typ", "cty", "crit", "jku", "x5u", "jwk", "x5c", "x5t", "b64",
];

/// Hostile and edge values for them (`None` removes the member).
pub static HEADER_VALUES: LazyLock<Vec<Option<Value>>> = LazyLock::new(|| {
    let mut values = vec![
        None,
        Some(Value::Null),
        Some(json!(false)),
        Some(json!(0)),
        Some(json!("")),
        Some(json!("none")),
        Some(json!("None")),
        Some(json!("hs256")),
        Some(json!("HS256 ")),
        Some(json!("RS256")),
        Some(json!("HS512")),
        Some(json!(["HS256"])),
        Some(json!("JWT")),
        Some(json!("jwt")),
        Some(json!("application/JWT")),
        Some(json!("at+jwt")),
        Some(json!("JWE")),
        Some(json!("dpop+jwt")),
        Some(json!("secevent+jwt")),
        Some(json!("text/jwt")),
        Some(json!("test-es256")),
        Some(json!("../../../dev/null")),
        Some(json!(["b64"])),
        Some(json!([])),
        Some(json!({})),
        Some(json!("http://127.0.0.1:9/jwks.json")),
        Some(
            serde_json::from_str(include_str!(
                "../../src/auth/testdata/test-attacker-jwk.json"
            ))
            .expect("the attacker JWK is JSON"),
        ),
    ];
    for signer in Signer::ALL {
        values.push(Some(json!(signer.alg())));
        values.extend(signer.kid().map(|kid| Some(json!(kid))));
    }
    values
});

/// Claims the structured edits touch.
pub const CLAIMS: [&str; 11] = [
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "scope",
    "scp",
    "mozaiks_token_use",
    "workflow_id",
    "workflow_version",
    "sub",
];

/// Hostile and edge values for them (`None` removes the claim).
pub static VALUES: LazyLock<Vec<Option<Value>>> = LazyLock::new(|| {
    let now = NOW;
    let leeway = LEEWAY;
    vec![
        None,
        Some(Value::Null),
        Some(json!(true)),
        Some(json!(0)),
        Some(json!(-1)),
        Some(json!(now - 3600)),
        Some(json!(now - leeway)),
        Some(json!(now - leeway + 1)),
        Some(json!(now)),
        Some(json!(now + leeway)),
        Some(json!(now + leeway + 1)),
        Some(json!(now + 3600)),
        Some(json!(now as f64 + 0.5)),
        Some(json!(1e30)),
        Some(json!(9_007_199_254_740_992u64)),
        Some(json!(9_007_199_254_740_991u64)),
        Some(json!(u64::MAX)),
        Some(json!(now.to_string())),
        Some(json!("")),
        Some(json!(ISSUER)),
        Some(json!([ISSUER])),
        Some(json!(format!("{ISSUER}/"))),
        Some(json!(AUDIENCE)),
        Some(json!(["other", AUDIENCE])),
        Some(json!(["other"])),
        Some(json!([AUDIENCE, 7])),
        Some(json!([])),
        Some(json!({})),
        Some(json!({"aud": AUDIENCE})),
        Some(json!(SCOPE)),
        Some(json!(format!("openid {SCOPE}"))),
        Some(json!(format!("{SCOPE} "))),
        Some(json!(format!("{SCOPE},openid"))),
        Some(json!(SCOPE.to_uppercase())),
        Some(json!([SCOPE])),
        Some(json!(["openid", SCOPE])),
        Some(json!([format!("openid {SCOPE}")])),
        Some(json!([SCOPE, null])),
        Some(json!(TOKEN_USE)),
        Some(json!("Execution")),
        Some(json!("refresh")),
        Some(json!("hello")),
        Some(json!("1.0.0")),
        Some(json!("../../etc/passwd")),
    ]
});

fn edited_claims(edits: &[u8]) {
    let mut claims = good_claims();
    for edit in edits.chunks_exact(2).take(16) {
        let name = CLAIMS[usize::from(edit[0]) % CLAIMS.len()];
        match &VALUES[usize::from(edit[1]) % VALUES.len()] {
            None => claims.remove(name),
            Some(value) => claims.insert(name.to_owned(), value.clone()),
        };
    }
    let payload = Value::Object(claims.clone()).to_string();
    let token = token(
        Signer::Hs256.header().as_bytes(),
        payload.as_bytes(),
        Signer::Hs256,
    );
    let got = match VERIFIER.verify(&token, NOW) {
        Ok(context) => {
            assert_eq!(context.raw_json(), payload);
            Expected::Accepted
        }
        Err(AuthError::InsufficientScope) => Expected::Forbidden,
        Err(_) => Expected::Refused,
    };
    assert_eq!(got, expected(&claims), "claims: {payload}");
}

/// What the claim rules say about a claim set, read independently of the verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// Every rule holds.
    Accepted,
    /// Every rule but the scope holds (403 `insufficient_scope`).
    Forbidden,
    /// Some other rule fails (401 `invalid_token`).
    Refused,
}

/// The README's claim rules, restated: the reference the verifier is checked against.
pub fn expected(claims: &Map<String, Value>) -> Expected {
    /// A NumericDate: a JSON number in 0 ..< 2^53. `Err` when present and not one.
    fn date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, ()> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if (0.0..9_007_199_254_740_992.0).contains(&v) => Ok(Some(v)),
                _ => Err(()),
            },
            Some(_) => Err(()),
        }
    }
    let now = NOW as f64;
    let leeway = LEEWAY as f64;
    let (Ok(Some(exp)), Ok(Some(iat)), Ok(nbf)) = (
        date(claims, "exp"),
        date(claims, "iat"),
        date(claims, "nbf"),
    ) else {
        return Expected::Refused;
    };
    let times_ok =
        now < exp + leeway && nbf.is_none_or(|nbf| nbf <= now + leeway) && iat <= now + leeway;
    let iss_ok = claims.get("iss") == Some(&Value::from(ISSUER));
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == AUDIENCE,
        Some(Value::Array(items)) => {
            items.iter().all(Value::is_string) && items.iter().any(|a| a == AUDIENCE)
        }
        _ => false,
    };
    let use_ok = claims.get("mozaiks_token_use") == Some(&Value::from(TOKEN_USE));
    let non_empty = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    let workflow_ok = claims.get("workflow_id").is_some_and(non_empty)
        && claims.get("workflow_version").is_none_or(non_empty);
    let listed = |v: &Value| {
        v.as_str()
            .is_some_and(|list| list.split(' ').any(|token| token == SCOPE))
    };
    let scope_typed = claims.get("scope").is_none_or(Value::is_string)
        && match claims.get("scp") {
            None | Some(Value::String(_)) => true,
            Some(Value::Array(items)) => items.iter().all(Value::is_string),
            Some(_) => false,
        };
    if !(times_ok && iss_ok && aud_ok && use_ok && workflow_ok && scope_typed) {
        return Expected::Refused;
    }
    let scope_found = claims.get("scope").is_some_and(listed)
        || match claims.get("scp") {
            Some(Value::Array(items)) => items.iter().any(|s| s == SCOPE),
            Some(scp) => listed(scp),
            None => false,
        };
    if scope_found {
        Expected::Accepted
    } else {
        Expected::Forbidden
    }
}
