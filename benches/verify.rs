//! Launch-token verification throughput per algorithm, on one core: each iteration is one full
//! `Verifier::verify` (size cap, base64url, header, key selection, signature, claims, the
//! ExecutionContext) of a valid token signed with the test keys of `src/auth/testdata/`.
//!
//! `cargo bench --bench verify` (or `make bench`); criterion reports `thrpt` in verifications
//! per second (elem/s). Kept short: 0.5 s warm-up and 2 s of measurement per algorithm.
//!
//! `signature/<alg>` is the floor under `verify/<alg>`: the same token's signature checked by
//! aws-lc-rs alone, with the key parsed beforehand (as the verifier holds it). The difference
//! is what the verifier adds per token (decoding, header and claim rules, the context).

#[path = "../tests/support/verify_harness.rs"]
mod verify_harness;

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::{hmac, signature};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Value;
use verify_harness::{Signer, NOW, SECRET, VALID_TOKENS, VERIFIER};

const JWKS: &str = include_str!("../src/auth/testdata/test-jwks.json");

fn verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    for (signer, token) in VALID_TOKENS.iter() {
        // Measure the path that accepts: a refused token would skip the work being measured.
        if let Err(err) = VERIFIER.verify(token, NOW) {
            panic!("the {signer:?} benchmark token does not verify: {err}");
        }
        group.bench_function(signer.alg(), |b| {
            b.iter(|| VERIFIER.verify(black_box(token), black_box(NOW)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("signature");
    group.throughput(Throughput::Elements(1));
    for (signer, token) in VALID_TOKENS.iter() {
        let (signing_input, signature_b64) = token.rsplit_once('.').expect("three segments");
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).expect("base64url");
        let check = floor(*signer);
        assert!(
            check(signing_input.as_bytes(), &signature),
            "the {signer:?} floor does not verify its own token"
        );
        group.bench_function(signer.alg(), |b| {
            b.iter(|| check(black_box(signing_input.as_bytes()), black_box(&signature)))
        });
    }
    group.finish();
}

/// A bare signature check: `(signing input, signature) → valid`.
type Check = Box<dyn Fn(&[u8], &[u8]) -> bool>;

/// The bare signature check of `signer`'s key, parsed once here as the verifier parses it.
fn floor(signer: Signer) -> Check {
    let Some(kid) = signer.kid() else {
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
        return Box::new(move |message, tag| hmac::verify(&key, message, tag).is_ok());
    };
    let jwks: Value = serde_json::from_str(JWKS).expect("test JWKS");
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .expect("the signer's kid is in the test JWKS");
    let member = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().expect("JWK member"))
            .expect("base64url")
    };
    let ec_point = || [vec![0x04], member("x"), member("y")].concat();
    let key = match signer.alg() {
        "ES256" => signature::ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, ec_point()),
        "ES384" => signature::ParsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, ec_point()),
        "EdDSA" => signature::ParsedPublicKey::new(&signature::ED25519, member("x")),
        alg => {
            let params = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                other => panic!("no floor for {other}"),
            };
            let (n, e) = (member("n"), member("e"));
            signature::RsaPublicKeyComponents {
                n: &n[..],
                e: &e[..],
            }
            .to_parsed_public_key(params)
        }
    }
    .expect("the test key parses");
    Box::new(move |message, sig| key.verify_sig(message, sig).is_ok())
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = verify
}
criterion_main!(benches);
