#!/usr/bin/env bash
# `make run`: start the function locally under the cargo-lambda emulator on its embedded
# defaults (development key, bundled workflows, stdout usage sink), invoke every sample in
# events/, print each response and the usage events it emitted, then stop.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-lambda >/dev/null; then
  echo "cargo-lambda is not installed: pip install cargo-lambda" >&2
  exit 1
fi

port="${MOZAIKS_LOCAL_PORT:-9765}"
log="$(mktemp -t mozaiks-run.XXXXXX)"
watch_pid=""
cleanup() {
  if [ -n "$watch_pid" ]; then
    kill -- "-$watch_pid" 2>/dev/null || kill "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" 2>/dev/null || true
  fi
  rm -f "$log"
}
trap cleanup EXIT INT TERM

echo "==> building bootstrap"
cargo build --locked --quiet --bin bootstrap

echo "==> starting the cargo-lambda emulator on 127.0.0.1:$port (configuration: dev/local.env)"
set -m
cargo lambda watch --quiet --ignore-changes --env-file dev/local.env \
  -A 127.0.0.1 -P "$port" >"$log" 2>&1 &
watch_pid=$!
set +m

# The emulator answers once it listens; give it up to 60 s (it compiles nothing new here).
for _ in $(seq 1 120); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$watch_pid" 2>/dev/null; then cat "$log" >&2; exit 1; fi
  sleep 0.5
done

status=0
for event in events/*.json; do
  echo
  echo "==> invoke $event"
  before=$(wc -l <"$log")
  if ! response=$(cargo lambda invoke bootstrap -A 127.0.0.1 -P "$port" --data-file "$event" -o json 2>&1); then
    status=1
  fi
  echo "response:"
  echo "$response" | python3 -m json.tool 2>/dev/null || echo "$response"
  # Usage events are the function's stdout lines that start with {"usage_event":
  usage=$(tail -n +"$((before + 1))" "$log" | grep -o '{"usage_event".*' || true)
  if [ -n "$usage" ]; then
    echo "usage events:"
    echo "$usage" | python3 -c 'import json,sys
for line in sys.stdin:
    print(json.dumps(json.loads(line), indent=2))'
  else
    echo "usage events: none (the request was rejected, or did not run)"
  fi
done
echo
echo "==> stopping the emulator"
exit $status
