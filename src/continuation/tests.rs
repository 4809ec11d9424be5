use super::*;
use proptest::prelude::*;
use serde_json::json;

const NOW: u64 = 1_795_560_741;
const TTL: u64 = 3600;
const MAX: usize = 64 * 1024;

fn key(byte: u8) -> Key {
    Key::from_material(&[byte; 32]).unwrap()
}

fn sealer() -> Sealer {
    Sealer::new(key(7), Vec::new(), TTL, MAX)
}

fn workflow() -> WorkflowId {
    WorkflowId {
        namespace: "mozaiks".into(),
        name: "support".into(),
        version: "1.0.0".into(),
    }
}

fn claims() -> Value {
    json!({
        "iss": "https://issuer", "sub": "user-1", "app_id": "app-1", "user_id": 42,
        "chat_id": "chat-9", "plan": "pro", "exp": 1, "iat": 0
    })
}

fn state() -> Value {
    json!({ "task": "/do/0/chat", "messages": [{ "role": "user", "content": "where is my order?" }] })
}

fn seal_with(sealer: &Sealer, workflow: &WorkflowId, claims: &Value) -> String {
    sealer
        .seal(&Binding::new(workflow, claims), "exec-1", &state(), NOW)
        .unwrap()
}

fn open_with(
    sealer: &Sealer,
    text: &str,
    workflow: &WorkflowId,
    claims: &Value,
    now: u64,
) -> Result<Opened, Invalid> {
    sealer.open(text, &Binding::new(workflow, claims), now)
}

fn decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

#[test]
fn round_trip_returns_the_state_and_its_origin() {
    let s = sealer();
    let text = seal_with(&s, &workflow(), &claims());
    let opened = open_with(&s, &text, &workflow(), &claims(), NOW).unwrap();
    assert_eq!(opened.state, state());
    assert_eq!(opened.issued_by, "exec-1");
    assert_eq!(opened.expires_at, NOW + TTL);
    // The text is canonical unpadded base64url.
    assert!(text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    // Sealing twice never gives the same text (random nonces).
    assert_ne!(text, seal_with(&s, &workflow(), &claims()));
}

#[test]
fn the_contents_are_confidential() {
    let s = sealer();
    let text = seal_with(&s, &workflow(), &claims());
    let bytes = decode(&text);
    let haystack = String::from_utf8_lossy(&bytes);
    for needle in [
        "where is my order",
        "messages",
        "user-1",
        "chat-9",
        "support",
        "exec-1",
    ] {
        assert!(!haystack.contains(needle), "{needle} is readable");
    }
    assert_eq!(bytes[0], VERSION);
    assert_eq!(&bytes[1..1 + KEY_ID_LEN], &s.current.id);
}

#[test]
fn every_byte_tampered_is_refused_with_its_region() {
    let s = sealer();
    let text = seal_with(&s, &workflow(), &claims());
    let bytes = decode(&text);
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut forged = bytes.clone();
            forged[i] ^= bit;
            let expected = match i {
                0 => Invalid::Malformed,
                i if i < 1 + KEY_ID_LEN => Invalid::UnknownKey,
                _ => Invalid::Tampered,
            };
            let got = open_with(&s, &base64url(&forged), &workflow(), &claims(), NOW);
            assert_eq!(got, Err(expected), "byte {i}, bit {bit:#x}");
        }
    }
    // Truncated (tag cut short), extended, or only a header.
    let cut = base64url(&bytes[..bytes.len() - 1]);
    assert_eq!(
        open_with(&s, &cut, &workflow(), &claims(), NOW),
        Err(Invalid::Tampered)
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        open_with(&s, &base64url(&longer), &workflow(), &claims(), NOW),
        Err(Invalid::Tampered)
    );
    let header_only = base64url(&bytes[..HEADER_LEN + TAG_LEN - 1]);
    assert_eq!(
        open_with(&s, &header_only, &workflow(), &claims(), NOW),
        Err(Invalid::Malformed)
    );
}

#[test]
fn a_key_id_pointing_at_another_held_key_is_tampered() {
    // Sealed with the previous key, relabelled with the current key's id: the tag fails.
    let old = key(1);
    let s = Sealer::new(key(2), vec![key(1)], TTL, MAX);
    let text = Sealer::new(old, Vec::new(), TTL, MAX)
        .seal(&Binding::new(&workflow(), &claims()), "e", &state(), NOW)
        .unwrap();
    let mut bytes = decode(&text);
    bytes[1..1 + KEY_ID_LEN].copy_from_slice(&s.current.id);
    assert_eq!(
        open_with(&s, &base64url(&bytes), &workflow(), &claims(), NOW),
        Err(Invalid::Tampered)
    );
}

#[test]
fn each_identifying_claim_changed_added_or_removed_is_foreign() {
    let s = sealer();
    let text = seal_with(&s, &workflow(), &claims());
    let mut variants: Vec<Value> = Vec::new();
    for name in IDENTIFYING_CLAIMS {
        let mut changed = claims();
        changed[name] = json!("someone-else");
        variants.push(changed);
        let mut removed = claims();
        removed.as_object_mut().unwrap().remove(name);
        variants.push(removed);
        let mut null = claims();
        null[name] = Value::Null;
        variants.push(null);
    }
    // Same meaning to a person, another JSON value: compared, never interpreted.
    let mut as_string = claims();
    as_string["user_id"] = json!("42");
    variants.push(as_string);
    let mut as_float = claims();
    as_float["user_id"] = json!(42.0);
    variants.push(as_float);
    let mut padded = claims();
    padded["sub"] = json!("user-1 ");
    variants.push(padded);
    for claims_now in &variants {
        assert_eq!(
            open_with(&s, &text, &workflow(), claims_now, NOW),
            Err(Invalid::Foreign),
            "{claims_now}"
        );
    }
    // A claim added that was absent when sealed.
    let mut without = claims();
    without.as_object_mut().unwrap().remove("chat_id");
    let text = seal_with(&s, &workflow(), &without);
    assert_eq!(
        open_with(&s, &text, &workflow(), &claims(), NOW),
        Err(Invalid::Foreign)
    );
    assert!(open_with(&s, &text, &workflow(), &without, NOW).is_ok());
    // Other claims (plan, exp, iat, …) are not part of the binding.
    let mut other = claims();
    other["plan"] = json!("free");
    other["exp"] = json!(99);
    let text = seal_with(&s, &workflow(), &claims());
    assert!(open_with(&s, &text, &workflow(), &other, NOW).is_ok());
}

#[test]
fn identity_values_of_any_json_type_round_trip() {
    let s = sealer();
    let mut structured = claims();
    structured["sub"] = json!({ "tenant": "t", "ids": [1, 2.5, null, true] });
    structured["user_id"] = json!(18_446_744_073_709_551_615u64);
    structured["app_id"] = json!(-3);
    structured["chat_id"] = json!(1.0e-7);
    let text = seal_with(&s, &workflow(), &structured);
    assert!(open_with(&s, &text, &workflow(), &structured, NOW).is_ok());
}

#[test]
fn another_workflow_or_version_is_refused() {
    let s = sealer();
    let text = seal_with(&s, &workflow(), &claims());
    for (field, value) in [
        ("namespace", "other"),
        ("name", "other"),
        ("version", "1.0.1"),
    ] {
        let mut other = workflow();
        match field {
            "namespace" => other.namespace = value.into(),
            "name" => other.name = value.into(),
            _ => other.version = value.into(),
        }
        assert_eq!(
            open_with(&s, &text, &other, &claims(), NOW),
            Err(Invalid::WrongWorkflow),
            "{field}"
        );
    }
}

#[test]
fn expiry_is_enforced() {
    let s = sealer();
    let text = seal_with(&s, &workflow(), &claims());
    assert!(open_with(&s, &text, &workflow(), &claims(), NOW + TTL - 1).is_ok());
    assert_eq!(
        open_with(&s, &text, &workflow(), &claims(), NOW + TTL),
        Err(Invalid::Expired)
    );
    assert_eq!(
        open_with(&s, &text, &workflow(), &claims(), u64::MAX),
        Err(Invalid::Expired)
    );
}

#[test]
fn keys_rotate_and_unknown_keys_are_refused() {
    let old = Sealer::new(key(1), Vec::new(), TTL, MAX);
    let text = seal_with(&old, &workflow(), &claims());
    // Another deployment's key.
    let other = Sealer::new(key(2), Vec::new(), TTL, MAX);
    assert_eq!(
        open_with(&other, &text, &workflow(), &claims(), NOW),
        Err(Invalid::UnknownKey)
    );
    // Rotated: the old key opens what it sealed; new continuations use the new key.
    let rotated = Sealer::new(key(2), vec![key(3), key(1)], TTL, MAX);
    assert_eq!(
        open_with(&rotated, &text, &workflow(), &claims(), NOW)
            .unwrap()
            .state,
        state()
    );
    let fresh = seal_with(&rotated, &workflow(), &claims());
    assert_eq!(&decode(&fresh)[1..1 + KEY_ID_LEN], &key(2).id);
    assert!(open_with(&other, &fresh, &workflow(), &claims(), NOW).is_ok());
    assert_eq!(
        open_with(&old, &fresh, &workflow(), &claims(), NOW),
        Err(Invalid::UnknownKey)
    );
}

#[test]
fn size_is_capped_before_decoding_and_when_sealing() {
    let s = Sealer::new(key(7), Vec::new(), TTL, 400);
    // Over the cap: refused whatever it holds (here not even base64).
    assert_eq!(
        open_with(&s, &"*".repeat(401), &workflow(), &claims(), NOW),
        Err(Invalid::TooLarge)
    );
    // A state that would seal over the cap is not sealed.
    let big = json!({ "text": "x".repeat(400) });
    match s.seal(&Binding::new(&workflow(), &claims()), "e", &big, NOW) {
        Err(SealError::TooLarge(len, 400)) => assert!(len > 400),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // What it does seal, it can open: the cap is the same on both sides.
    let small = s
        .seal(&Binding::new(&workflow(), &claims()), "e", &json!({}), NOW)
        .unwrap();
    assert!(small.len() <= 400);
    assert!(open_with(&s, &small, &workflow(), &claims(), NOW).is_ok());
}

#[test]
fn base64_lengths_match_the_encoder() {
    for n in 0..50 {
        assert_eq!(base64_len(n), base64url(&vec![0u8; n]).len(), "{n}");
    }
}

#[test]
fn garbage_is_malformed() {
    let s = sealer();
    let text = seal_with(&s, &workflow(), &claims());
    for garbage in [
        "",
        "not a continuation",
        "AAAA",
        "====",
        &format!("{text}="),
        &format!(" {text}"),
        &text.replace('-', "+").replace('_', "/"),
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",
    ] {
        if garbage == text {
            continue; // the alphabet swap changed nothing
        }
        assert_eq!(
            open_with(&s, garbage, &workflow(), &claims(), NOW),
            Err(Invalid::Malformed),
            "{garbage}"
        );
    }
    // A non-canonical last character (non-zero trailing bits) is not another spelling.
    let mut bytes = decode(&text);
    bytes.truncate(HEADER_LEN + TAG_LEN + 1); // a length that leaves trailing bits
    let canonical = base64url(&bytes);
    let last = canonical.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    let sibling = alphabet.as_bytes()[index ^ 1] as char;
    let non_canonical = format!("{}{sibling}", &canonical[..canonical.len() - 1]);
    assert_eq!(
        open_with(&s, &non_canonical, &workflow(), &claims(), NOW),
        Err(Invalid::Malformed)
    );
}

#[test]
fn an_authentic_plaintext_of_an_unknown_shape_is_malformed() {
    let s = sealer();
    let mut bytes = vec![VERSION];
    bytes.extend_from_slice(&s.current.id);
    bytes.extend_from_slice(&[9u8; NONCE_LEN]);
    let mut body = br#"{"state":{},"unknown":1}"#.to_vec();
    s.current
        .aead
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key([9u8; NONCE_LEN]),
            Aad::from(associated_data(&s.current.id)),
            &mut body,
        )
        .unwrap();
    bytes.extend_from_slice(&body);
    assert_eq!(
        open_with(&s, &base64url(&bytes), &workflow(), &claims(), NOW),
        Err(Invalid::Malformed)
    );
}

#[test]
fn keys_parse_from_base64_of_at_least_32_bytes() {
    let raw = [5u8; 32];
    let id = Key::from_material(&raw).unwrap().id;
    for text in [
        base64::engine::general_purpose::STANDARD.encode(raw),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        format!(
            "  {}\n",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ),
    ] {
        assert_eq!(Key::from_base64(&text).unwrap().id, id, "{text}");
    }
    assert_eq!(
        Key::from_base64(&base64::engine::general_purpose::STANDARD.encode([5u8; 31])).unwrap_err(),
        KeyError::TooShort(31)
    );
    assert_eq!(
        Key::from_base64("not base64!").unwrap_err(),
        KeyError::NotBase64
    );
    assert_eq!(Key::from_base64("").unwrap_err(), KeyError::TooShort(0));
    // Longer material is fine; distinct material gives distinct ids; ids are stable.
    assert!(Key::from_material(&[5u8; 64]).is_ok());
    assert_ne!(key(1).id, key(2).id);
    assert_eq!(key(1).id, key(1).id);
    assert_eq!(key(1).id().len(), 11);
    // Debug never prints the key.
    assert!(!format!("{:?}", key(1)).contains("aead"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics_and_never_opens(text in ".{0,300}") {
        let s = sealer();
        prop_assert!(open_with(&s, &text, &workflow(), &claims(), NOW).is_err());
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_open(tail in proptest::collection::vec(any::<u8>(), 0..300)) {
        let s = sealer();
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(&s.current.id);
        bytes.extend_from_slice(&tail);
        let got = open_with(&s, &base64url(&bytes), &workflow(), &claims(), NOW);
        prop_assert!(matches!(got, Err(Invalid::Malformed) | Err(Invalid::Tampered)), "{:?}", got);
    }
}
