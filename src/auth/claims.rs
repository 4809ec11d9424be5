//! Claim checks of CONTRACT §4 on a verified payload: times, issuer, audience, token use,
//! workflow, and the scope last (so a 403 only ever answers an otherwise valid token).

use serde_json::{Map, Value};

use super::error::AuthError;

/// Largest NumericDate accepted: 2^53, the edge of exactly representable integers.
const MAX_NUMERIC_DATE: f64 = 9_007_199_254_740_992.0;

/// What a claim set must satisfy; built once from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    /// `iss` must equal this exactly.
    pub(crate) issuer: String,
    /// `aud` must be, or contain, this.
    pub(crate) audience: String,
    /// Must be one token of `scope` or `scp`.
    pub(crate) required_scope: String,
    /// `mozaiks_token_use` must equal this, when set.
    pub(crate) token_use: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub(crate) leeway_seconds: u64,
}

/// Checks `claims` against `rules` at `now_unix` (seconds since the epoch).
pub(crate) fn check(
    claims: &Map<String, Value>,
    rules: &ClaimRules,
    now_unix: u64,
) -> Result<(), AuthError> {
    let exp = numeric_date(claims, "exp")?.ok_or(AuthError::BadClaim("exp"))?;
    let iat = numeric_date(claims, "iat")?.ok_or(AuthError::BadClaim("iat"))?;
    let nbf = numeric_date(claims, "nbf")?;
    // Every operand is below 2^53 (or a u64 clock, far below it), so f64 is exact enough.
    let now = now_unix as f64;
    let leeway = rules.leeway_seconds as f64;
    if now >= exp + leeway {
        return Err(AuthError::Expired);
    }
    if nbf.is_some_and(|nbf| now + leeway < nbf) {
        return Err(AuthError::NotYetValid);
    }
    if iat > now + leeway {
        return Err(AuthError::IssuedInFuture);
    }

    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == rules.issuer => {}
        Some(Value::String(_)) => return Err(AuthError::Issuer),
        _ => return Err(AuthError::BadClaim("iss")),
    }

    let audience_found = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == rules.audience,
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                let aud = item.as_str().ok_or(AuthError::BadClaim("aud"))?;
                found |= aud == rules.audience;
            }
            found
        }
        _ => return Err(AuthError::BadClaim("aud")),
    };
    if !audience_found {
        return Err(AuthError::Audience);
    }

    if let Some(expected) = &rules.token_use {
        match claims.get("mozaiks_token_use") {
            Some(Value::String(token_use)) if token_use == expected => {}
            _ => return Err(AuthError::TokenUse),
        }
    }

    match claims.get("workflow_id") {
        Some(Value::String(id)) if !id.is_empty() => {}
        _ => return Err(AuthError::BadClaim("workflow_id")),
    }
    match claims.get("workflow_version") {
        None => {}
        Some(Value::String(version)) if !version.is_empty() => {}
        Some(_) => return Err(AuthError::BadClaim("workflow_version")),
    }

    if has_scope(claims, &rules.required_scope)? {
        Ok(())
    } else {
        Err(AuthError::InsufficientScope)
    }
}

/// A NumericDate claim: absent, or a JSON number in `0 ..< 2^53` (no strings, null, 1e30).
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => match number.as_f64() {
            Some(value) if value.is_finite() && (0.0..MAX_NUMERIC_DATE).contains(&value) => {
                Ok(Some(value))
            }
            _ => Err(AuthError::BadClaim(name)),
        },
        Some(_) => Err(AuthError::BadClaim(name)),
    }
}

/// True when `required` is one of the space-separated tokens of `scope`, or of `scp` (a string
/// of the same form, or an array of strings). Matching is exact and case-sensitive.
fn has_scope(claims: &Map<String, Value>, required: &str) -> Result<bool, AuthError> {
    let in_list = |list: &str| list.split(' ').any(|token| token == required);
    let mut found = match claims.get("scope") {
        None => false,
        Some(Value::String(scope)) => in_list(scope),
        Some(_) => return Err(AuthError::BadClaim("scope")),
    };
    match claims.get("scp") {
        None => {}
        Some(Value::String(scp)) => found |= in_list(scp),
        Some(Value::Array(items)) => {
            for item in items {
                found |= item.as_str().ok_or(AuthError::BadClaim("scp"))? == required;
            }
        }
        Some(_) => return Err(AuthError::BadClaim("scp")),
    }
    Ok(found)
}
