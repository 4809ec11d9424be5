//! Prints a development launch token signed with the committed dev keys in `dev/`.
//!
//! ```text
//! cargo run --example mint_dev_token -- --workflow-id hello
//! cargo run --example mint_dev_token -- --workflow-id hello --exp-days 7 \
//!     --claims '{"app_id":"app-42","workflow_version":"1.0.0"}'
//! cargo run --example mint_dev_token -- --workflow-id hello --alg HS256 --hs-secret "$SECRET"
//! ```
//!
//! The claims are those MozaiksCore puts in launch tokens plus the scope, for the dev settings
//! `MOZAIKS_JWT_ISSUER=https://dev.mozaiks.local`, `MOZAIKS_JWT_AUDIENCE=mozaiks-runtime` and
//! `MOZAIKS_JWT_JWKS_FILE=dev/dev-jwks.json`. `--claims` merges a JSON object over them (a
//! `null` value removes a claim). The keys are for development only; see `dev/README.md`.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};

/// The committed development ES256 key (PKCS#8), kid `mozaiks-dev-es256`.
const DEV_ES256_PEM: &str = include_str!("../dev/dev-es256-private.pem");
/// The committed development RS256 key (PKCS#1), kid `mozaiks-dev-rs256`.
const DEV_RS256_PEM: &str = include_str!("../dev/dev-rs256-private.pem");

const USAGE: &str = "usage: mint_dev_token --workflow-id ID [--exp-days N] [--claims JSON] \
                     [--alg ES256|RS256|HS256] [--hs-secret SECRET]";

/// Parsed command line.
struct Args {
    workflow_id: String,
    exp_days: i64,
    claims: Option<String>,
    alg: String,
    hs_secret: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut workflow_id = None;
    let mut exp_days = 1;
    let mut claims = None;
    let mut alg = "ES256".to_owned();
    let mut hs_secret = None;
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--workflow-id" => workflow_id = Some(value()?),
            "--exp-days" => {
                let text = value()?;
                exp_days = text.parse().map_err(|_| {
                    format!("--exp-days must be a whole number of days, not {text:?}")
                })?;
            }
            "--claims" => claims = Some(value()?),
            "--alg" => alg = value()?,
            "--hs-secret" => hs_secret = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let workflow_id = workflow_id.ok_or_else(|| format!("--workflow-id is required\n{USAGE}"))?;
    Ok(Args {
        workflow_id,
        exp_days,
        claims,
        alg,
        hs_secret,
    })
}

/// The DER body of a PEM block with this label.
fn pem_body(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| format!("the key is not a PEM \"{label}\""))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| format!("the PEM \"{label}\" block is not closed"))?
        + start;
    let body: String = pem[start..stop].split_whitespace().collect();
    STANDARD
        .decode(body)
        .map_err(|err| format!("the PEM body is not base64: {err}"))
}

fn claims(args: &Args, now: i64) -> Result<Map<String, Value>, String> {
    let exp = now
        .checked_add(args.exp_days.saturating_mul(86_400))
        .ok_or("--exp-days is out of range")?;
    let mut claims = match json!({
        "sub": "dev-user",
        "app_id": "dev-app",
        "chat_id": "dev-chat",
        "capability_id": "dev-capability",
        "workflow_id": args.workflow_id,
        "user_id": "dev-user",
        "roles": ["user"],
        "plan": "free",
        "mozaiks_token_use": "execution",
        "iss": "https://dev.mozaiks.local",
        "aud": "mozaiks-runtime",
        "iat": now,
        "exp": exp,
        "scope": "workflow:execute",
    }) {
        Value::Object(map) => map,
        _ => return Err("default claims are not an object".into()),
    };
    if let Some(text) = &args.claims {
        let extra: Map<String, Value> = serde_json::from_str(text)
            .map_err(|err| format!("--claims must be a JSON object: {err}"))?;
        for (name, value) in extra {
            if value.is_null() {
                claims.remove(&name);
            } else {
                claims.insert(name, value);
            }
        }
    }
    Ok(claims)
}

fn mint(args: &Args) -> Result<String, String> {
    let (header, key) = match args.alg.as_str() {
        "ES256" => {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some("mozaiks-dev-es256".into());
            let der = pem_body(DEV_ES256_PEM, "PRIVATE KEY")?;
            (header, EncodingKey::from_ec_der(&der))
        }
        "RS256" => {
            let mut header = Header::new(Algorithm::RS256);
            header.kid = Some("mozaiks-dev-rs256".into());
            let der = pem_body(DEV_RS256_PEM, "RSA PRIVATE KEY")?;
            (header, EncodingKey::from_rsa_der(&der))
        }
        "HS256" => {
            // MozaiksCore signs HS256 without a kid.
            let secret = args
                .hs_secret
                .as_deref()
                .ok_or("--alg HS256 needs --hs-secret (the runtime's MOZAIKS_JWT_HS256_SECRET)")?;
            if secret.len() < 32 {
                return Err("--hs-secret must be at least 32 bytes".into());
            }
            (
                Header::new(Algorithm::HS256),
                EncodingKey::from_secret(secret.as_bytes()),
            )
        }
        other => return Err(format!("--alg {other:?} is not one of ES256, RS256, HS256")),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970")?
        .as_secs();
    let now = i64::try_from(now).map_err(|_| "the system clock is out of range")?;
    let claims = claims(args, now)?;
    encode(&header, &claims, &key).map_err(|err| format!("signing failed: {err}"))
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| mint(&args)) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("mint_dev_token: {message}");
            ExitCode::from(2)
        }
    }
}
