//! Property tests of the launch-token verifier, over the input space of the `cargo fuzz` target
//! (`fuzz/fuzz_targets/verify.rs`): both drive `support/verify_harness.rs`, whose oracle is
//! "never panics, never accepts content no key signed, never accepts claims the rules refuse".
//! The fuzzer explores that space guided by coverage (nightly); this test samples it on every
//! `cargo test`.

#[path = "support/verify_harness.rs"]
mod verify_harness;

use proptest::collection::vec;
use proptest::prelude::*;
use verify_harness::{
    run, Signer, CLAIMS, HEADER_MEMBERS, HEADER_VALUES, NOW, VALID_TOKENS, VALUES, VERIFIER,
};

/// Cases per mode: every mode is sampled this many times on each run.
const CASES: u32 = 512;

#[test]
fn the_valid_tokens_the_cases_start_from_verify() {
    assert_eq!(VALID_TOKENS.len(), Signer::ALL.len());
    for (signer, token) in VALID_TOKENS.iter() {
        let verified = VERIFIER.verify(token, NOW);
        assert!(verified.is_ok(), "{signer:?}: {verified:?}");
    }
}

/// Mode 4 exhaustively for one edit: every claim the edits touch, set to every hostile value
/// (or removed), gets exactly the answer the rules give.
#[test]
fn every_single_claim_edit_gets_exactly_the_rules_answer() {
    for claim in 0..CLAIMS.len() {
        for value in 0..VALUES.len() {
            let edit = [
                4,
                u8::try_from(claim).unwrap(),
                u8::try_from(value).unwrap(),
            ];
            run(&edit);
        }
    }
}

/// Mode 3 exhaustively for one edit: every header member the edits touch, set to every hostile
/// value (or removed), on an HS256 and an EdDSA token, gets exactly the answer the rules give.
#[test]
fn every_single_header_edit_gets_exactly_the_rules_answer() {
    for structured_signer in [2u8, 3] {
        for member in 0..HEADER_MEMBERS.len() {
            for value in 0..HEADER_VALUES.len() {
                let member = u8::try_from(member).unwrap();
                let value = u8::try_from(value).unwrap();
                run(&[3, structured_signer, member, value]);
            }
        }
    }
}

/// A fuzz case of mode `mode` (see `verify_harness::run`) with this body.
fn case(mode: u8, body: Vec<u8>) -> Vec<u8> {
    let mut data = Vec::with_capacity(body.len() + 1);
    data.push(mode);
    data.extend(body);
    data
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn raw_and_token_shaped_bytes_never_verify(body in vec(any::<u8>(), 0..2048)) {
        run(&case(0, body));
    }

    #[test]
    fn edited_valid_tokens_never_verify(body in vec(any::<u8>(), 0..65)) {
        run(&case(1, body));
    }

    #[test]
    fn signed_arbitrary_payloads_verify_only_when_the_rules_hold(body in vec(any::<u8>(), 0..512)) {
        run(&case(2, body));
    }

    #[test]
    fn signed_arbitrary_headers_verify_only_when_the_rules_hold(body in vec(any::<u8>(), 0..256)) {
        run(&case(3, body));
    }

    #[test]
    fn hostile_header_members_get_exactly_the_rules_answer(
        signer in 0..2u8,
        edits in vec(any::<u8>(), 2..17),
    ) {
        let mut body = vec![2 | signer];
        body.extend(edits);
        run(&case(3, body));
    }

    #[test]
    fn many_hostile_claim_values_get_exactly_the_rules_answer(body in vec(any::<u8>(), 0..33)) {
        run(&case(4, body));
    }

    #[test]
    fn any_bytes_at_all(data in vec(any::<u8>(), 0..1024)) {
        run(&data);
    }
}

proptest! {
    // Cheap cases (HMAC) where combinations matter: sample pairs to quadruples densely.
    #![proptest_config(ProptestConfig::with_cases(4 * CASES))]

    #[test]
    fn a_few_hostile_claim_values_get_exactly_the_rules_answer(body in vec(any::<u8>(), 4..9)) {
        run(&case(4, body));
    }
}
