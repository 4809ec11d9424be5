//! Fuzz target for `Verifier::verify`: arbitrary bytes as tokens, edited valid tokens of every
//! algorithm, and tokens re-signed with a test key over fuzzed headers and claims.
//!
//! The case layout and the oracle (never panic, never accept content no key signed, never
//! accept a header or claims the rules refuse) are in `tests/support/verify_harness.rs`, which
//! the property tests of the normal test run (`tests/auth_properties.rs`) drive as well.
//!
//! ```text
//! cargo +nightly fuzz run verify -- -max_total_time=300
//! ```
#![no_main]

#[path = "../../tests/support/verify_harness.rs"]
mod verify_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| verify_harness::run(data));
