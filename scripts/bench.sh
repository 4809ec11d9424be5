#!/usr/bin/env bash
# `make bench`: build what is needed (each release artefact once), run every benchmark, write
# BENCHMARKS.md.
#   package size: cargo-lambda zips for x86_64 and arm64
#   Runtime API harness (process level, bootstrap vs. the echo floor): benches/lambda.rs, run on
#     the x86_64 cargo-lambda binaries (the very binary that is zipped, and the echo example
#     built the same way)
#   criterion (in-process): benches/runtime.rs, benches/verify.rs
#   PyJWT peer: scripts/pyjwt_bench.py
# BENCH_COLD / BENCH_WARM set the number of cold starts and warm invocations (20 / 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"
started=$SECONDS
: "${LAMBDA_RUSTFLAGS:?run this through make bench, which sets the release flags for Lambda}"

lambda_build() { # cargo lambda build, with the Makefile's flags for what runs on Lambda (LAMBDA_RUSTFLAGS)
  CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$LAMBDA_RUSTFLAGS" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$LAMBDA_RUSTFLAGS" cargo lambda build "$@"
}

zip_of() { # arch → zips the bootstrap (and the bundled workflows) with cargo-lambda, records its size
  lambda_build --locked --release --"$1" --bin bootstrap --output-format zip --include workflows \
    --lambda-dir "$out/lambda-$1" >/dev/null
  stat -c %s "$out/lambda-$1/bootstrap/bootstrap.zip" >"$out/zip-$1.txt"
  echo "bootstrap.zip ($1): $(cat "$out/zip-$1.txt") bytes"
}

echo "==> x86_64: package, and the binaries the harness measures (cargo-lambda, release profile)"
zip_of x86-64
rm -rf "$out/bin" && mkdir -p "$out/bin"
unzip -q -o "$out/lambda-x86-64/bootstrap/bootstrap.zip" bootstrap -d "$out/bin"
lambda_build --locked --release --x86-64 --example echo --lambda-dir "$out/lambda-x86-64" >/dev/null
cp "$out/lambda-x86-64/echo/bootstrap" "$out/bin/echo"

echo "==> Runtime API harness (cold start, warm latency, RSS)"
BENCH_BOOTSTRAP="$PWD/$out/bin/bootstrap" BENCH_ECHO="$PWD/$out/bin/echo" \
  cargo bench --locked --bench lambda -- --cold "${BENCH_COLD:-20}" --warm "${BENCH_WARM:-1000}" \
  | tail -n 1 >"$out/lambda.json"
cat "$out/lambda.json"

echo "==> criterion benches"
cargo bench --locked --bench runtime --bench verify -- --noplot 2>&1 | tee "$out/criterion.txt"

echo "==> PyJWT peer"
python3 -m pip install --quiet --disable-pip-version-check "pyjwt[crypto]"
python3 scripts/pyjwt_bench.py 1.0 >"$out/pyjwt.json"
cat "$out/pyjwt.json"

echo "==> arm64: package"
zip_of arm64

python3 scripts/bench_report.py "$out" > BENCHMARKS.md
echo "==> wrote BENCHMARKS.md ($(( (SECONDS - started) / 60 )) min)"
