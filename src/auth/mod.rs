//! Launch token → [`ExecutionContext`]: the checks of CONTRACT §4 (issue 3), built once at init
//! as a [`Verifier`] and run on every invocation.
//!
//! aws-lc-rs (the crypto `jsonwebtoken` links) performs only the signature arithmetic, with keys
//! parsed once at init; everything around it is done here, stricter than RFC 7519 and RFC 8725
//! require:
//!
//! * **Size and encoding** — at most 16 KiB, checked before any work; exactly three segments;
//!   canonical unpadded base64url (no `=`, whitespace, `+`, `/`, or non-zero trailing bits).
//! * **Header** — a JSON object without repeated member names. `alg` must be one of RS256 RS384
//!   RS512 PS256 PS384 PS512 ES256 ES384 EdDSA HS256, spelled exactly (`none` and mis-cased names
//!   are refused). Any `crit` is refused (no extension is understood). `typ`, when present, must
//!   be `JWT` or `at+jwt` (case-insensitive, `application/` optional); `cty` is refused (no nested
//!   tokens). `jku`, `x5u`, `jwk` and `x5c` are **refused**, not ignored: keys come from
//!   configuration only, and a token carrying its own key or key URL is an attack or a
//!   misconfigured issuer either way. Other header members (`x5t`, …) are ignored.
//! * **Keys** — from configuration only: a JWKS (every key has `kid` and `alg`, `use` is `sig`
//!   when present, RSA ≥ 2048 bits, `kty`/`crv` consistent with `alg`, no private members, no
//!   duplicate `kid`) and/or an HS256 shared secret (≥ 32 bytes). Each key verifies with its own
//!   `alg` only.
//! * **Key selection** — a token *with* `kid` may use only the JWKS key of that `kid` (none →
//!   `UnknownKey`; its `alg` differs from the header's → `AlgorithmMismatch`); the HS256 secret
//!   has no `kid` and is never chosen this way. A token *without* `kid` uses the HS256 secret when
//!   its `alg` is HS256 and a secret is configured (MozaiksCore signs that way); otherwise the
//!   single JWKS key whose `alg` equals the header's, if there is exactly one; otherwise
//!   `UnknownKey`. Signatures must have the exact length of the key's algorithm (raw `r||s` for
//!   ECDSA, so DER signatures are refused).
//! * **Claims** — the payload is a JSON object without repeated member names at any depth, and is
//!   kept byte for byte as the [`ExecutionContext`]. `exp` and `iat` are required, `nbf` enforced
//!   when present; NumericDates are JSON numbers in `0 ..< 2^53`. `now < exp + leeway`,
//!   `nbf <= now + leeway`, `iat <= now + leeway`. `iss` is a string equal to the configured
//!   issuer; `aud` a string or array of strings containing the audience; `mozaiks_token_use`
//!   equals the configured value when one is set; `workflow_id` a non-empty string;
//!   `workflow_version`, when present, a non-empty string. Last, the required scope must be one of
//!   the space-separated tokens of `scope`, or of `scp` (same form, or an array of strings).
//!
//! Errors name the failed rule only ([`AuthError::reason`]), never token content or claim values.

mod claims;
mod error;
mod json;
mod jws;
mod keys;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use error::{AuthError, KeyError};
pub use jws::MAX_TOKEN_BYTES;

use claims::ClaimRules;
use keys::KeySet;

/// Largest clock-skew leeway accepted, in seconds (CONTRACT §4).
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// What the verifier needs, already read from the environment by the caller.
#[derive(Clone)]
pub struct AuthConfig {
    /// `MOZAIKS_JWT_ISSUER`: `iss` must equal it exactly.
    pub issuer: String,
    /// `MOZAIKS_JWT_AUDIENCE`: must appear in `aud`.
    pub audience: String,
    /// JWKS JSON text (`MOZAIKS_JWT_JWKS`, or the contents of `MOZAIKS_JWT_JWKS_FILE`).
    pub jwks_json: Option<String>,
    /// `MOZAIKS_JWT_HS256_SECRET` bytes (at least 32).
    pub hs256_secret: Option<Vec<u8>>,
    /// `MOZAIKS_JWT_REQUIRED_SCOPE`: one scope token, no spaces.
    pub required_scope: String,
    /// `MOZAIKS_JWT_TOKEN_USE`: required `mozaiks_token_use`; `None` or empty disables the check.
    pub token_use: Option<String>,
    /// `MOZAIKS_JWT_LEEWAY_SECONDS`: clock skew tolerated, at most 300.
    pub leeway_seconds: u64,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwks_json", &self.jwks_json.as_ref().map(|_| "[set]"))
            .field(
                "hs256_secret",
                &self.hs256_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("required_scope", &self.required_scope)
            .field("token_use", &self.token_use)
            .field("leeway_seconds", &self.leeway_seconds)
            .finish()
    }
}

/// Verifies launch tokens; built once at init, shared by all invocations.
pub struct Verifier {
    keys: KeySet,
    rules: ClaimRules,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.describe())
            .field("rules", &self.rules)
            .finish()
    }
}

impl Verifier {
    /// Checks the configuration and every key; the error says which setting or key is wrong.
    pub fn new(cfg: AuthConfig) -> Result<Verifier, KeyError> {
        if cfg.issuer.is_empty() {
            return Err(KeyError::new(
                "MOZAIKS_JWT_ISSUER is empty; set it to the exact iss your control plane signs",
            ));
        }
        if cfg.audience.is_empty() {
            return Err(KeyError::new(
                "MOZAIKS_JWT_AUDIENCE is empty; set it to the aud your control plane signs",
            ));
        }
        if cfg.required_scope.is_empty() || cfg.required_scope.chars().any(char::is_whitespace) {
            return Err(KeyError::new(
                "MOZAIKS_JWT_REQUIRED_SCOPE must be one scope token without spaces (default workflow:execute)",
            ));
        }
        if cfg.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(KeyError::new(format!(
                "MOZAIKS_JWT_LEEWAY_SECONDS is {}; at most {MAX_LEEWAY_SECONDS} is allowed",
                cfg.leeway_seconds
            )));
        }
        let keys = KeySet::from_config(cfg.jwks_json.as_deref(), cfg.hs256_secret.as_deref())?;
        Ok(Verifier {
            keys,
            rules: ClaimRules {
                issuer: cfg.issuer,
                audience: cfg.audience,
                required_scope: cfg.required_scope,
                token_use: cfg.token_use.filter(|token_use| !token_use.is_empty()),
                leeway_seconds: cfg.leeway_seconds,
            },
        })
    }

    /// Verifies `token` at `now_unix` (seconds since the epoch) and returns its claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<ExecutionContext, AuthError> {
        let payload = jws::verify_compact(token, &self.keys)?;
        let raw_json =
            String::from_utf8(payload).map_err(|_| AuthError::Malformed("payload is not UTF-8"))?;
        let claims = json::parse_object(&raw_json).map_err(|err| {
            AuthError::Malformed(match err {
                json::JsonError::Invalid => "payload is not valid JSON",
                json::JsonError::DuplicateMember => "payload repeats a member name",
                json::JsonError::NotAnObject => "payload is not a JSON object",
            })
        })?;
        claims::check(&claims, &self.rules, now_unix)?;
        let workflow_id = claims
            .get("workflow_id")
            .and_then(Value::as_str)
            .ok_or(AuthError::BadClaim("workflow_id"))?
            .to_owned();
        let workflow_version = claims
            .get("workflow_version")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(ExecutionContext(Arc::new(Context {
            raw_json: raw_json.into_boxed_str(),
            claims: Value::Object(claims),
            workflow_id,
            workflow_version,
        })))
    }

    /// The scope a token must carry (for `WWW-Authenticate: … scope="…"` on a 403).
    pub fn required_scope(&self) -> &str {
        &self.rules.required_scope
    }
}

/// The verified claim set of one launch token, exactly as signed (CONTRACT §5). Cheap to clone.
#[derive(Clone)]
pub struct ExecutionContext(Arc<Context>);

struct Context {
    raw_json: Box<str>,
    claims: Value,
    workflow_id: String,
    workflow_version: Option<String>,
}

impl ExecutionContext {
    /// The payload JSON exactly as signed (the decoded bytes, valid UTF-8).
    pub fn raw_json(&self) -> &str {
        &self.0.raw_json
    }

    /// The parsed claim set (a JSON object).
    pub fn claims(&self) -> &Value {
        &self.0.claims
    }

    /// The `workflow_id` claim (a non-empty string).
    pub fn workflow_id(&self) -> &str {
        &self.0.workflow_id
    }

    /// The `workflow_version` claim, when present (a non-empty string).
    pub fn workflow_version(&self) -> Option<&str> {
        self.0.workflow_version.as_deref()
    }

    /// The identifying claims `sub`, `app_id`, `user_id`, `chat_id` as they are (raw values,
    /// never interpreted; `None` when absent), for binding continuations.
    pub fn identity(&self) -> Vec<(&'static str, Option<&Value>)> {
        ["sub", "app_id", "user_id", "chat_id"]
            .into_iter()
            .map(|name| (name, self.0.claims.get(name)))
            .collect()
    }
}

impl fmt::Debug for ExecutionContext {
    /// Claim values are never printed: logs must not carry them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionContext").finish_non_exhaustive()
    }
}
