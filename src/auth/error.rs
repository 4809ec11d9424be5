//! The two error types of the auth layer: [`KeyError`] at init, [`AuthError`] per token.
//!
//! Neither ever carries token content or claim values: an [`AuthError`] names only the rule that
//! failed (and, for claims, the claim's *name*), so it is safe to log.

use std::fmt;

/// Why the verifier could not be built from its configuration (keys, issuer, audience…).
///
/// The message names the setting and, for a JWKS key, its position and `kid`, and says what to
/// change. It never contains secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(String);

impl KeyError {
    /// Wraps a complete, person-readable message.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        KeyError(message.into())
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// Why a launch token was refused.
///
/// Every variant maps to HTTP 401 `invalid_token` except [`AuthError::InsufficientScope`] (403).
/// [`AuthError::reason`] gives a stable snake_case name for logs; the caller answers with a
/// generic body and never echoes the token or its claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// The token is longer than the size cap; nothing was decoded.
    TooLarge,
    /// The token is not a well-formed compact JWS (segments, base64url, JSON, header fields).
    Malformed(&'static str),
    /// The header `alg` is not one this runtime accepts (including `none` and mis-cased names).
    UnsupportedAlgorithm,
    /// The header `alg` differs from the `alg` of the key chosen by `kid`.
    AlgorithmMismatch,
    /// No configured key matches the token (unknown `kid`, or no unambiguous key for its `alg`).
    UnknownKey,
    /// The signature does not verify with the selected key.
    BadSignature,
    /// The header has `crit`: no JWS extension is understood here.
    CriticalHeader,
    /// The header carries `jku`, `x5u`, `jwk` or `x5c`; keys come from configuration only.
    KeyReferenceHeader,
    /// The header `typ` (or `cty`) says this is not a plain JWT.
    BadType,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// A claim is missing or has the wrong type or range; the payload names the claim.
    BadClaim(&'static str),
    /// `iss` is a string but not the configured issuer.
    Issuer,
    /// `aud` does not contain the configured audience.
    Audience,
    /// `mozaiks_token_use` is missing or not the configured value.
    TokenUse,
    /// The token is valid but lacks the required scope (HTTP 403).
    InsufficientScope,
}

impl AuthError {
    /// Stable snake_case reason for logs and metrics, e.g. `"expired"`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::TooLarge => "too_large",
            AuthError::Malformed(_) => "malformed",
            AuthError::UnsupportedAlgorithm => "unsupported_algorithm",
            AuthError::AlgorithmMismatch => "algorithm_mismatch",
            AuthError::UnknownKey => "unknown_key",
            AuthError::BadSignature => "bad_signature",
            AuthError::CriticalHeader => "critical_header",
            AuthError::KeyReferenceHeader => "key_reference_header",
            AuthError::BadType => "bad_type",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::IssuedInFuture => "issued_in_future",
            AuthError::BadClaim(_) => "bad_claim",
            AuthError::Issuer => "issuer",
            AuthError::Audience => "audience",
            AuthError::TokenUse => "token_use",
            AuthError::InsufficientScope => "insufficient_scope",
        }
    }

    /// True only for a valid token without the required scope (→ 403); all else is 401.
    pub fn is_insufficient_scope(&self) -> bool {
        matches!(self, AuthError::InsufficientScope)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::TooLarge => f.write_str("launch token exceeds the size limit"),
            AuthError::Malformed(what) => write!(f, "malformed launch token: {what}"),
            AuthError::UnsupportedAlgorithm => {
                f.write_str("launch token algorithm is not accepted")
            }
            AuthError::AlgorithmMismatch => {
                f.write_str("launch token algorithm does not match its key")
            }
            AuthError::UnknownKey => f.write_str("no configured key matches the launch token"),
            AuthError::BadSignature => f.write_str("launch token signature is invalid"),
            AuthError::CriticalHeader => {
                f.write_str("launch token has critical header extensions that are not supported")
            }
            AuthError::KeyReferenceHeader => f.write_str(
                "launch token header carries a key or key URL (jku, x5u, jwk, x5c); keys come from configuration only",
            ),
            AuthError::BadType => f.write_str("launch token type is not JWT"),
            AuthError::Expired => f.write_str("launch token has expired"),
            AuthError::NotYetValid => f.write_str("launch token is not valid yet (nbf)"),
            AuthError::IssuedInFuture => f.write_str("launch token is issued in the future (iat)"),
            AuthError::BadClaim(name) => {
                write!(f, "launch token claim {name} is missing or malformed")
            }
            AuthError::Issuer => f.write_str("launch token issuer is not accepted"),
            AuthError::Audience => f.write_str("launch token audience is not accepted"),
            AuthError::TokenUse => f.write_str("launch token is not meant for this use"),
            AuthError::InsufficientScope => {
                f.write_str("launch token lacks the required scope")
            }
        }
    }
}

impl std::error::Error for AuthError {}
