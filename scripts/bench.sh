#!/usr/bin/env bash
# `make bench`: build what is needed, run every benchmark, write BENCHMARKS.md.
#   criterion (in-process): benches/runtime.rs, benches/verify.rs
#   Runtime API harness (process level, bootstrap vs. the echo floor): benches/lambda.rs
#   PyJWT peer: scripts/pyjwt_bench.py
#   package size: cargo-lambda zips for arm64 and x86_64
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/bench
mkdir -p "$out"

echo "==> release binaries (bootstrap, echo floor)"
cargo build --locked --release --bin bootstrap --example echo

echo "==> criterion benches"
cargo bench --locked --bench runtime --bench verify -- --noplot 2>&1 | tee "$out/criterion.txt"

echo "==> Runtime API harness (cold start, warm latency, RSS)"
cargo bench --locked --bench lambda -- --cold "${BENCH_COLD:-20}" --warm "${BENCH_WARM:-1000}" | tail -n 1 >"$out/lambda.json"
cat "$out/lambda.json"

echo "==> PyJWT peer"
python3 -m pip install --quiet --disable-pip-version-check "pyjwt[crypto]"
python3 scripts/pyjwt_bench.py 1.0 >"$out/pyjwt.json"
cat "$out/pyjwt.json"

echo "==> package size (cargo-lambda zips)"
for arch in arm64 x86-64; do
  cargo lambda build --release --"$arch" --output-format zip --include workflows --lambda-dir "$out/lambda-$arch" >/dev/null
  stat -c %s "$out/lambda-$arch/bootstrap/bootstrap.zip" >"$out/zip-$arch.txt"
done

python3 scripts/bench_report.py "$out" > BENCHMARKS.md
echo "==> wrote BENCHMARKS.md"
