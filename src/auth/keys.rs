//! Verification keys from configuration: a JWKS and/or an HS256 shared secret, checked once at
//! init, and the rule that picks the one key a token may be verified with.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::{hmac, signature};
use serde_json::{Map, Value};

use super::error::{AuthError, KeyError};
use super::json::{decode_b64url, parse_object, JsonError};

/// Smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus the crypto backend verifies, in bits.
const MAX_RSA_BITS: usize = 8192;
/// Smallest HMAC key accepted, in bytes (RFC 7518 §3.2: at least the hash output size).
pub(crate) const MIN_HMAC_BYTES: usize = 32;

/// A signature algorithm this runtime accepts. Names are matched exactly (case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    HS256,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    /// Every accepted algorithm, in the order used in messages.
    const ALL: [Alg; 10] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
        Alg::HS256,
    ];

    /// The algorithm with exactly this JWA name, if it is accepted.
    pub(crate) fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The JWA name (`"RS256"`, `"EdDSA"`…).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::HS256 => "HS256",
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// The RSA verification parameters of an RSA algorithm.
    fn rsa(self) -> Option<&'static signature::RsaParameters> {
        Some(match self {
            Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            _ => return None,
        })
    }

    fn names_for_message() -> String {
        Alg::ALL.map(Alg::name).join(", ")
    }
}

/// One usable verification key, pinned to a single algorithm.
pub(crate) struct Key {
    /// The JWK `kid`; `None` only for the HS256 shared secret.
    pub(crate) kid: Option<String>,
    /// The only algorithm this key verifies.
    pub(crate) alg: Alg,
    /// The key, parsed once at init for its algorithm.
    pub(crate) material: Material,
    /// The exact signature length in bytes this key produces (raw r||s for ECDSA).
    pub(crate) signature_len: usize,
}

/// Key material ready to verify: parsed (and, for public keys, validated) once at init, so a
/// verification is the signature arithmetic alone, with no key parsing, point decoding or
/// Montgomery set-up per token.
pub(crate) enum Material {
    /// The HS256 secret, as an HMAC-SHA256 key (boxed: its state is much larger than a
    /// parsed public key's handle).
    Hmac(Box<hmac::Key>),
    /// An RSA, ECDSA or Ed25519 public key, bound to the key's algorithm.
    Public(signature::ParsedPublicKey),
}

impl Material {
    /// Whether `signature` signs `message` under this key (HMAC compared in constant time).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Material::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Material::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }

    fn hs256(secret: &[u8]) -> Material {
        Material::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg.name())
            .finish_non_exhaustive()
    }
}

/// All configured keys, indexed for selection.
#[derive(Debug)]
pub(crate) struct KeySet {
    jwks: Vec<Key>,
    by_kid: HashMap<String, usize>,
    hs256_secret: Option<Key>,
}

impl KeySet {
    /// Parses and checks the configured key sources; at least one must be given.
    pub(crate) fn from_config(
        jwks_json: Option<&str>,
        hs256_secret: Option<&[u8]>,
    ) -> Result<KeySet, KeyError> {
        if jwks_json.is_none() && hs256_secret.is_none() {
            return Err(KeyError::new(
                "no launch-token key is configured: set MOZAIKS_JWT_JWKS, MOZAIKS_JWT_JWKS_FILE \
                 or MOZAIKS_JWT_HS256_SECRET (the runtime has no default key)",
            ));
        }
        let hs256_secret = match hs256_secret {
            Some(secret) if secret.len() < MIN_HMAC_BYTES => {
                return Err(KeyError::new(format!(
                    "MOZAIKS_JWT_HS256_SECRET is {} bytes; at least {MIN_HMAC_BYTES} are required \
                     (use a random secret, e.g. `openssl rand -base64 48`)",
                    secret.len()
                )));
            }
            Some(secret) => Some(Key {
                kid: None,
                alg: Alg::HS256,
                material: Material::hs256(secret),
                signature_len: 32,
            }),
            None => None,
        };
        let jwks = match jwks_json {
            Some(text) => parse_jwks(text)?,
            None => Vec::new(),
        };
        let mut by_kid = HashMap::with_capacity(jwks.len());
        for (index, key) in jwks.iter().enumerate() {
            let Some(kid) = key.kid.as_deref() else {
                continue;
            };
            if let Some(first) = by_kid.insert(kid.to_owned(), index) {
                return Err(KeyError::new(format!(
                    "JWKS key {} of {} (kid {kid:?}): the kid is already used by key {}; \
                     every key needs its own kid",
                    index + 1,
                    jwks.len(),
                    first + 1
                )));
            }
        }
        Ok(KeySet {
            jwks,
            by_kid,
            hs256_secret,
        })
    }

    /// Picks the one key a token with this header `kid` and `alg` may be verified with.
    ///
    /// See the module documentation of `auth` for the rule.
    pub(crate) fn select(&self, kid: Option<&str>, alg: Alg) -> Result<&Key, AuthError> {
        match kid {
            Some(kid) => {
                let key = self
                    .by_kid
                    .get(kid)
                    .and_then(|&index| self.jwks.get(index))
                    .ok_or(AuthError::UnknownKey)?;
                if key.alg == alg {
                    Ok(key)
                } else {
                    Err(AuthError::AlgorithmMismatch)
                }
            }
            None => {
                if alg == Alg::HS256 {
                    if let Some(secret) = &self.hs256_secret {
                        return Ok(secret);
                    }
                }
                let mut candidates = self.jwks.iter().filter(|key| key.alg == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(key), None) => Ok(key),
                    _ => Err(AuthError::UnknownKey),
                }
            }
        }
    }

    /// `(kid, alg)` of every JWKS key, for diagnostics.
    pub(crate) fn describe(&self) -> Vec<(Option<&str>, &'static str)> {
        self.jwks
            .iter()
            .chain(self.hs256_secret.iter())
            .map(|key| (key.kid.as_deref(), key.alg.name()))
            .collect()
    }
}

/// Parses a JWKS document and checks every key in it.
fn parse_jwks(text: &str) -> Result<Vec<Key>, KeyError> {
    let document = parse_object(text).map_err(|err| {
        KeyError::new(match err {
            JsonError::Invalid => "JWKS is not valid JSON; expected {\"keys\": [ ... ]}",
            JsonError::DuplicateMember => "JWKS repeats a member name inside an object",
            JsonError::NotAnObject => "JWKS is not a JSON object; expected {\"keys\": [ ... ]}",
        })
    })?;
    let Some(Value::Array(entries)) = document.get("keys") else {
        return Err(KeyError::new(
            "JWKS has no \"keys\" array; expected {\"keys\": [ ... ]}",
        ));
    };
    if entries.is_empty() {
        return Err(KeyError::new(
            "JWKS \"keys\" is empty; add at least one public key or leave the JWKS unset",
        ));
    }
    let total = entries.len();
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let place = KeyPlace {
                number: index + 1,
                total,
                kid: entry.get("kid").and_then(Value::as_str),
            };
            match entry {
                Value::Object(jwk) => parse_jwk(jwk).map_err(|problem| place.error(&problem)),
                _ => Err(place.error("is not a JSON object")),
            }
        })
        .collect()
}

/// Where a key sits in the JWKS, for messages.
struct KeyPlace<'a> {
    number: usize,
    total: usize,
    kid: Option<&'a str>,
}

impl KeyPlace<'_> {
    fn error(&self, problem: &str) -> KeyError {
        let Self { number, total, kid } = self;
        KeyError::new(match kid {
            Some(kid) => format!("JWKS key {number} of {total} (kid {kid:?}): {problem}"),
            None => format!("JWKS key {number} of {total} (no kid): {problem}"),
        })
    }
}

/// Checks one JWK and turns it into a [`Key`]; the error is the problem, without the place.
fn parse_jwk(jwk: &Map<String, Value>) -> Result<Key, String> {
    let kid = match jwk.get("kid") {
        Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
        Some(_) => return Err("\"kid\" must be a non-empty string".into()),
        None => return Err("\"kid\" is missing; every key needs a kid".into()),
    };
    let alg = match jwk.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name).ok_or_else(|| {
            format!(
                "alg {name:?} is not accepted; use one of {}",
                Alg::names_for_message()
            )
        })?,
        Some(_) => return Err("\"alg\" must be a string".into()),
        None => {
            return Err(format!(
                "\"alg\" is missing; every key must name its algorithm ({})",
                Alg::names_for_message()
            ))
        }
    };
    match jwk.get("use") {
        None => {}
        Some(Value::String(usage)) if usage == "sig" => {}
        Some(_) => return Err("\"use\" must be \"sig\" for a signature key".into()),
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verify {
            return Err("\"key_ops\" must be an array that includes \"verify\"".into());
        }
    }
    let kty = jwk
        .get("kty")
        .and_then(Value::as_str)
        .ok_or("\"kty\" is missing or not a string")?;
    if kty != "oct" {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
            if jwk.contains_key(private) {
                return Err(format!(
                    "contains private key material ({private:?}); configure only the public key"
                ));
            }
        }
    }
    let expected_kty = match alg {
        Alg::HS256 => "oct",
        Alg::ES256 | Alg::ES384 => "EC",
        Alg::EdDSA => "OKP",
        _ => "RSA",
    };
    if kty != expected_kty {
        return Err(format!(
            "kty {kty:?} does not fit alg {}; a {} key needs kty {expected_kty:?}",
            alg.name(),
            alg.name()
        ));
    }
    let (material, signature_len) = match alg {
        Alg::HS256 => {
            let secret = b64_member(jwk, "k")?;
            if secret.len() < MIN_HMAC_BYTES {
                return Err(format!(
                    "the HS256 secret \"k\" is {} bytes; at least {MIN_HMAC_BYTES} are required",
                    secret.len()
                ));
            }
            (Material::hs256(&secret), 32)
        }
        Alg::ES256 | Alg::ES384 => {
            let (curve, size) = if alg == Alg::ES256 {
                ("P-256", 32)
            } else {
                ("P-384", 48)
            };
            expect_curve(jwk, alg, curve)?;
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            for coordinate in ["x", "y"] {
                let bytes = b64_member(jwk, coordinate)?;
                if bytes.len() != size {
                    return Err(format!(
                        "\"{coordinate}\" is {} bytes; a {curve} coordinate is {size}",
                        bytes.len()
                    ));
                }
                point.extend_from_slice(&bytes);
            }
            // The uncompressed SEC1 point 04||x||y; parsing checks that it is on the curve.
            let algorithm = if alg == Alg::ES256 {
                &signature::ECDSA_P256_SHA256_FIXED
            } else {
                &signature::ECDSA_P384_SHA384_FIXED
            };
            let key = signature::ParsedPublicKey::new(algorithm, &point)
                .map_err(|_| format!("\"x\" and \"y\" are not a point of {curve}"))?;
            (Material::Public(key), 2 * size)
        }
        Alg::EdDSA => {
            expect_curve(jwk, alg, "Ed25519")?;
            let x = b64_member(jwk, "x")?;
            if x.len() != 32 {
                return Err(format!(
                    "\"x\" is {} bytes; an Ed25519 public key is 32",
                    x.len()
                ));
            }
            let key = signature::ParsedPublicKey::new(&signature::ED25519, &x)
                .map_err(|_| "\"x\" is not an Ed25519 public key".to_owned())?;
            (Material::Public(key), 64)
        }
        _ => rsa_material(jwk, alg)?,
    };
    Ok(Key {
        kid: Some(kid),
        alg,
        material,
        signature_len,
    })
}

/// Checks an RSA public key (n, e) and returns it with its signature length.
fn rsa_material(jwk: &Map<String, Value>, alg: Alg) -> Result<(Material, usize), String> {
    let n = b64_member(jwk, "n")?;
    let e = b64_member(jwk, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = bit_length(n);
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA modulus is {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!(
            "RSA modulus is {bits} bits; at most {MAX_RSA_BITS} are supported"
        ));
    }
    let e_odd = e.last().is_some_and(|last| last & 1 == 1);
    if e.len() > 4 || !e_odd || (e.len() == 1 && e[0] < 3) {
        return Err(
            "RSA exponent \"e\" must be an odd number from 3 to 2^32 (usually AQAB)".into(),
        );
    }
    let params = alg
        .rsa()
        .ok_or_else(|| format!("{} is not an RSA algorithm", alg.name()))?;
    let key = signature::RsaPublicKeyComponents { n, e }
        .to_parsed_public_key(params)
        .map_err(|_| "\"n\" and \"e\" are not an RSA public key".to_owned())?;
    Ok((Material::Public(key), n.len()))
}

/// Requires `crv` to be exactly `curve`.
fn expect_curve(jwk: &Map<String, Value>, alg: Alg, curve: &str) -> Result<(), String> {
    match jwk.get("crv").and_then(Value::as_str) {
        Some(crv) if crv == curve => Ok(()),
        Some(crv) => Err(format!(
            "crv {crv:?} does not fit alg {}; it needs crv {curve:?}",
            alg.name()
        )),
        None => Err(format!(
            "\"crv\" is missing; alg {} needs crv {curve:?}",
            alg.name()
        )),
    }
}

/// A member that must be a canonical base64url string; decoded.
fn b64_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = jwk
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("\"{name}\" is missing or not a string"))?;
    decode_b64url(text).ok_or_else(|| format!("\"{name}\" is not unpadded base64url"))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Bit length of a big-endian unsigned integer without leading zero bytes.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(&first) => (bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_are_exact() {
        assert_eq!(Alg::from_name("RS256"), Some(Alg::RS256));
        assert_eq!(Alg::from_name("EdDSA"), Some(Alg::EdDSA));
        for name in [
            "none", "None", "rs256", "HS384", "HS512", "ES512", "EDDSA", "RS256 ", "",
        ] {
            assert_eq!(Alg::from_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn bit_length_counts_from_the_top_bit() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(strip_leading_zeros(&[0, 0, 0x7f])), 7);
    }
}
