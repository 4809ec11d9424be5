//! Compact JWS (RFC 7515) parsing and signature verification, with every check done here
//! rather than left to a library: size cap, segment count, canonical base64url, a
//! duplicate-free header, exact `alg`, `crit`, `typ`, key-reference headers, key selection and
//! the exact signature length.

use serde_json::{Map, Value};

use super::error::AuthError;
use super::json::{decode_b64url, parse_object, JsonError};
use super::keys::{Alg, KeySet};

/// Longest token accepted, in bytes; checked before any decoding or signature work.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Header parameters that point at or carry key material. Keys come from configuration only,
/// so a token carrying any of them is refused outright rather than silently ignored.
const KEY_REFERENCE_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// Checks the JWS layer of `token` and returns the decoded payload once its signature verifies
/// with the one key [`KeySet::select`] allows. The payload is not interpreted here.
pub(crate) fn verify_compact(token: &str, keys: &KeySet) -> Result<Vec<u8>, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::TooLarge);
    }
    if token.is_empty() {
        return Err(AuthError::Malformed("token is empty"));
    }
    let mut segments = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(AuthError::Malformed(
            "token does not have exactly three segments",
        ));
    };

    let header_bytes = decode_b64url(header_b64)
        .ok_or(AuthError::Malformed("header is not unpadded base64url"))?;
    let header_text = std::str::from_utf8(&header_bytes)
        .map_err(|_| AuthError::Malformed("header is not UTF-8"))?;
    let header = parse_object(header_text).map_err(|err| {
        AuthError::Malformed(match err {
            JsonError::Invalid => "header is not valid JSON",
            JsonError::DuplicateMember => "header repeats a member name",
            JsonError::NotAnObject => "header is not a JSON object",
        })
    })?;
    let (alg, kid) = check_header(&header)?;
    let key = keys.select(kid, alg)?;

    let payload = decode_b64url(payload_b64)
        .ok_or(AuthError::Malformed("payload is not unpadded base64url"))?;
    let signature = decode_b64url(signature_b64)
        .ok_or(AuthError::Malformed("signature is not unpadded base64url"))?;
    // A DER-encoded ECDSA signature, a truncated or stripped one, or one made for another key
    // size has the wrong length; refuse it before any crypto.
    if signature.len() != key.signature_len {
        return Err(AuthError::BadSignature);
    }
    let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    if key.material.verifies(signing_input, &signature) {
        Ok(payload)
    } else {
        Err(AuthError::BadSignature)
    }
}

/// Checks the protected header and returns its algorithm and optional `kid`.
fn check_header(header: &Map<String, Value>) -> Result<(Alg, Option<&str>), AuthError> {
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name).ok_or(AuthError::UnsupportedAlgorithm)?,
        Some(_) => return Err(AuthError::Malformed("header alg is not a string")),
        None => return Err(AuthError::Malformed("header has no alg")),
    };
    // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; none are.
    if header.contains_key("crit") {
        return Err(AuthError::CriticalHeader);
    }
    if KEY_REFERENCE_HEADERS
        .iter()
        .any(|name| header.contains_key(*name))
    {
        return Err(AuthError::KeyReferenceHeader);
    }
    if let Some(typ) = header.get("typ") {
        if !typ.as_str().is_some_and(typ_is_jwt) {
            return Err(AuthError::BadType);
        }
    }
    // `cty` announces nested content (a JWT inside the JWT); launch tokens are never nested.
    if header.contains_key("cty") {
        return Err(AuthError::BadType);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(AuthError::Malformed("header kid is not a string")),
    };
    Ok((alg, kid))
}

/// `typ` is a media type, compared case-insensitively, with `application/` optional
/// (RFC 7515 §4.1.9): `JWT` (RFC 7519) and `at+jwt` (RFC 9068) are accepted.
fn typ_is_jwt(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    let media = lower.strip_prefix("application/").unwrap_or(&lower);
    media == "jwt" || media == "at+jwt"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_accepts_only_jwt_media_types() {
        for ok in [
            "JWT",
            "jwt",
            "application/jwt",
            "APPLICATION/JWT",
            "at+jwt",
            "application/at+JWT",
        ] {
            assert!(typ_is_jwt(ok), "{ok}");
        }
        for bad in [
            "JWE",
            "dpop+jwt",
            "secevent+jwt",
            "JOSE",
            "JOSE+JSON",
            "jwt ",
            "text/jwt",
            "",
        ] {
            assert!(!typ_is_jwt(bad), "{bad}");
        }
    }
}
