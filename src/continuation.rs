//! Continuations (CONTRACT §2a): the engine state of a `waiting` execution, sealed for the
//! caller to send back, since the runtime keeps nothing between invocations.
//!
//! A continuation is AES-256-GCM, so the caller can neither read nor change it. Its text is
//! unpadded base64url of
//!
//! ```text
//! version (1 byte = 1) ‖ key id (8 bytes) ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag (16 bytes)
//! ```
//!
//! with `"mozaiks-continuation" ‖ version ‖ key id` as associated data. The plaintext is a JSON
//! object holding the engine state, `iat`/`exp` (seconds since the epoch), the workflow
//! (namespace, name, version), the identifying claims `sub`, `app_id`, `user_id`, `chat_id` of
//! the token it was issued under (only those present, as JSON values), and the execution that
//! issued it. Opening checks, in order: size (before any decoding or crypto), encoding, version,
//! key id, tag, then the workflow, the identifying claims (equal as JSON values, present where
//! they were present and absent where they were absent, never interpreted) and expiry.
//!
//! Keys: `MOZAIKS_CONTINUATION_KEY` seals and opens; `MOZAIKS_CONTINUATION_KEYS_PREVIOUS` (a
//! comma-separated list) only opens, for rotation. Each is base64 of at least 32 bytes; the
//! AES key and the 8-byte key id are derived from it with HKDF-SHA256, so no key id needs
//! configuring and a key id reveals nothing of its key. Nonces are random (96 bits): rotate a
//! key well before 2^32 continuations have been sealed with it.
//!
//! Why a continuation was refused ([`Invalid::reason`]) is logged, never told to the caller.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf::{self, Salt, HKDF_SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::workflow::WorkflowId;

/// Format version written as the first byte.
pub const VERSION: u8 = 1;
/// Length of a key id, in bytes.
pub const KEY_ID_LEN: usize = 8;
/// Length of the AES-GCM tag, in bytes.
const TAG_LEN: usize = 16;
/// Bytes before the ciphertext: version, key id, nonce.
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// Shortest key material accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 32;
/// The identifying claims a continuation is bound to (CONTRACT §2a).
pub const IDENTIFYING_CLAIMS: [&str; 4] = ["sub", "app_id", "user_id", "chat_id"];
/// Domain separation: HKDF salt and the prefix of the associated data.
const DOMAIN: &[u8] = b"mozaiks-continuation";

/// A continuation key: the AES-256-GCM key and its id, both derived from the key material.
pub struct Key {
    id: [u8; KEY_ID_LEN],
    aead: LessSafeKey,
}

impl fmt::Debug for Key {
    /// Only the key id is printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &base64url(&self.id))
            .finish_non_exhaustive()
    }
}

/// An HKDF output length (the crate's `KeyType` is how a length is asked for).
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl Key {
    /// Derives a key from raw key material (at least [`MIN_KEY_BYTES`] bytes).
    pub fn from_material(material: &[u8]) -> Result<Key, KeyError> {
        if material.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort(material.len()));
        }
        let prk = Salt::new(HKDF_SHA256, DOMAIN).extract(material);
        let mut id = [0u8; KEY_ID_LEN];
        prk.expand(&[b"v1 key id"], Len(KEY_ID_LEN))
            .and_then(|okm| okm.fill(&mut id))
            .map_err(|_| KeyError::Derivation)?;
        let mut secret = [0u8; 32];
        prk.expand(&[b"v1 aes-256-gcm"], Len(secret.len()))
            .and_then(|okm| okm.fill(&mut secret))
            .map_err(|_| KeyError::Derivation)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &secret).map_err(|_| KeyError::Derivation)?;
        secret.fill(0);
        Ok(Key {
            id,
            aead: LessSafeKey::new(unbound),
        })
    }

    /// Decodes key material written as base64 (standard or URL-safe alphabet, padded or not)
    /// and derives the key from it.
    pub fn from_base64(text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        let material = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
        .ok_or(KeyError::NotBase64)?;
        Key::from_material(&material)
    }

    /// The key id (unpadded base64url), as it may be logged.
    pub fn id(&self) -> String {
        base64url(&self.id)
    }
}

/// Why key material is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The text is not base64.
    NotBase64,
    /// Fewer than [`MIN_KEY_BYTES`] bytes (the length found).
    TooShort(usize),
    /// The crypto library refused to derive the key (not expected).
    Derivation,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotBase64 => f.write_str(
                "is not base64: generate a key with `openssl rand -base64 32` and set that",
            ),
            KeyError::TooShort(n) => write!(
                f,
                "decodes to {n} bytes; a continuation key must be at least {MIN_KEY_BYTES} random \
                 bytes (`openssl rand -base64 32`)"
            ),
            KeyError::Derivation => f.write_str("could not derive an AES-256-GCM key from it"),
        }
    }
}

impl std::error::Error for KeyError {}

/// What a continuation is bound to: the workflow and the token's identifying claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding<'a> {
    /// The workflow that issued it (and the only one that may resume it).
    pub workflow: &'a WorkflowId,
    /// The identifying claims present in the token, by name (absent claims are not listed).
    pub identity: BTreeMap<&'static str, &'a Value>,
}

impl<'a> Binding<'a> {
    /// The binding of `workflow` under a token whose claim set is `claims` (a JSON object).
    pub fn new(workflow: &'a WorkflowId, claims: &'a Value) -> Binding<'a> {
        let identity = IDENTIFYING_CLAIMS
            .into_iter()
            .filter_map(|name| claims.get(name).map(|value| (name, value)))
            .collect();
        Binding { workflow, identity }
    }
}

/// The sealed plaintext, as written.
#[derive(Serialize)]
struct SealedRef<'a> {
    iat: u64,
    exp: u64,
    workflow: &'a WorkflowId,
    identity: &'a BTreeMap<&'static str, &'a Value>,
    execution_id: &'a str,
    state: &'a Value,
}

/// The sealed plaintext, as read back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    #[allow(dead_code)]
    iat: u64,
    exp: u64,
    workflow: SealedWorkflow,
    identity: BTreeMap<String, Value>,
    execution_id: String,
    state: Value,
}

/// The workflow of a sealed plaintext (the engine's `WorkflowId` is serialize-only).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedWorkflow {
    namespace: String,
    name: String,
    version: String,
}

impl SealedWorkflow {
    fn is(&self, id: &WorkflowId) -> bool {
        self.namespace == id.namespace && self.name == id.name && self.version == id.version
    }
}

/// A continuation that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The engine state to resume.
    pub state: Value,
    /// The execution that issued the continuation (for logs: it links the two executions).
    pub issued_by: String,
    /// Expiry, in seconds since the epoch.
    pub expires_at: u64,
}

/// Why a continuation was refused. Logged through [`Invalid::reason`]; the caller only ever
/// gets the generic "invalid continuation" problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Longer than the configured limit (checked before decoding).
    TooLarge,
    /// Not a continuation of a known format (encoding, version, length).
    Malformed,
    /// Sealed with a key this deployment does not hold (or no key is configured).
    UnknownKey,
    /// The authentication tag does not match: changed or forged.
    Tampered,
    /// Issued under a token with other identifying claims.
    Foreign,
    /// Past its expiry.
    Expired,
    /// Issued by another workflow, or another version of it.
    WrongWorkflow,
}

impl Invalid {
    /// Stable reason for logs.
    pub fn reason(self) -> &'static str {
        match self {
            Invalid::TooLarge => "too_large",
            Invalid::Malformed => "malformed",
            Invalid::UnknownKey => "unknown_key",
            Invalid::Tampered => "tampered",
            Invalid::Foreign => "foreign",
            Invalid::Expired => "expired",
            Invalid::WrongWorkflow => "wrong_workflow",
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Why a state could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// The sealed continuation would be longer than the limit (its length, the limit).
    TooLarge(usize, usize),
    /// The system random generator or the cipher failed (not expected).
    Crypto,
    /// The state could not be serialized (not expected for a JSON value).
    Serialize(String),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::TooLarge(len, limit) => write!(
                f,
                "the execution's state sealed into a continuation of {len} bytes, over \
                 MOZAIKS_CONTINUATION_MAX_BYTES ({limit}); it could not be resumed"
            ),
            SealError::Crypto => f.write_str("the continuation could not be sealed (crypto)"),
            SealError::Serialize(e) => write!(f, "the state could not be serialized: {e}"),
        }
    }
}

impl std::error::Error for SealError {}

/// Seals and opens continuations with the configured keys. Built once at init.
pub struct Sealer {
    current: Key,
    previous: Vec<Key>,
    ttl_seconds: u64,
    max_bytes: usize,
    random: SystemRandom,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current)
            .field("previous", &self.previous)
            .field("ttl_seconds", &self.ttl_seconds)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Sealer {
    /// A sealer with `current` (seals and opens), `previous` (open only), continuations valid
    /// for `ttl_seconds` and at most `max_bytes` long.
    pub fn new(current: Key, previous: Vec<Key>, ttl_seconds: u64, max_bytes: usize) -> Sealer {
        Sealer {
            current,
            previous,
            ttl_seconds,
            max_bytes,
            random: SystemRandom::new(),
        }
    }

    /// Seals `state` for `binding`, issued by `execution_id` at `now` (seconds since the epoch).
    pub fn seal(
        &self,
        binding: &Binding<'_>,
        execution_id: &str,
        state: &Value,
        now: u64,
    ) -> Result<String, SealError> {
        let plaintext = SealedRef {
            iat: now,
            exp: now.saturating_add(self.ttl_seconds),
            workflow: binding.workflow,
            identity: &binding.identity,
            execution_id,
            state,
        };
        let mut bytes = Vec::with_capacity(HEADER_LEN + 256);
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.current.id);
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SealError::Crypto)?;
        bytes.extend_from_slice(&nonce);
        serde_json::to_writer(&mut bytes, &plaintext)
            .map_err(|e| SealError::Serialize(e.to_string()))?;
        let encoded_len = base64_len(bytes.len() + TAG_LEN);
        if encoded_len > self.max_bytes {
            return Err(SealError::TooLarge(encoded_len, self.max_bytes));
        }
        let aad = associated_data(&self.current.id);
        let mut body = bytes.split_off(HEADER_LEN);
        self.current
            .aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SealError::Crypto)?;
        bytes.extend_from_slice(&body);
        Ok(base64url(&bytes))
    }

    /// Opens `text` for `binding` at `now` (seconds since the epoch): every check of the module
    /// documentation, in that order.
    pub fn open(&self, text: &str, binding: &Binding<'_>, now: u64) -> Result<Opened, Invalid> {
        if text.len() > self.max_bytes {
            return Err(Invalid::TooLarge);
        }
        let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| Invalid::Malformed)?;
        if bytes.len() < HEADER_LEN + TAG_LEN || bytes[0] != VERSION {
            return Err(Invalid::Malformed);
        }
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&bytes[1..1 + KEY_ID_LEN]);
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == id)
            .ok_or(Invalid::UnknownKey)?;
        let nonce = Nonce::try_assume_unique_for_key(&bytes[1 + KEY_ID_LEN..HEADER_LEN])
            .map_err(|_| Invalid::Malformed)?;
        let plaintext = key
            .aead
            .open_in_place(
                nonce,
                Aad::from(associated_data(&id)),
                &mut bytes[HEADER_LEN..],
            )
            .map_err(|_| Invalid::Tampered)?;
        // Authentic, so written by this runtime: a plaintext that does not parse is a format
        // this version does not know.
        let sealed: Sealed = serde_json::from_slice(plaintext).map_err(|_| Invalid::Malformed)?;
        if !sealed.workflow.is(binding.workflow) {
            return Err(Invalid::WrongWorkflow);
        }
        let same_identity = sealed.identity.len() == binding.identity.len()
            && binding
                .identity
                .iter()
                .all(|(name, value)| sealed.identity.get(*name) == Some(*value));
        if !same_identity {
            return Err(Invalid::Foreign);
        }
        if now >= sealed.exp {
            return Err(Invalid::Expired);
        }
        Ok(Opened {
            state: sealed.state,
            issued_by: sealed.execution_id,
            expires_at: sealed.exp,
        })
    }
}

fn associated_data(id: &[u8; KEY_ID_LEN]) -> [u8; DOMAIN.len() + 1 + KEY_ID_LEN] {
    let mut aad = [0u8; DOMAIN.len() + 1 + KEY_ID_LEN];
    aad[..DOMAIN.len()].copy_from_slice(DOMAIN);
    aad[DOMAIN.len()] = VERSION;
    aad[DOMAIN.len() + 1..].copy_from_slice(id);
    aad
}

/// Length of the unpadded base64 encoding of `n` bytes.
fn base64_len(n: usize) -> usize {
    n / 3 * 4 + [0, 2, 3][n % 3]
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests;
