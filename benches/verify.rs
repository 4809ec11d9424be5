//! Launch-token verification throughput per algorithm, on one core: each iteration is one full
//! `Verifier::verify` (size cap, base64url, header, key selection, signature, claims, the
//! ExecutionContext) of a valid token signed with the test keys of `src/auth/testdata/`.
//!
//! `cargo bench --bench verify` (or `make bench`); criterion reports `thrpt` in verifications
//! per second (elem/s). Kept short: 0.5 s warm-up and 2 s of measurement per algorithm.

#[path = "../tests/support/verify_harness.rs"]
mod verify_harness;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use verify_harness::{NOW, VALID_TOKENS, VERIFIER};

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
