#!/usr/bin/env bash
# `make run`: start the function locally under the cargo-lambda emulator on its embedded
# defaults (development key, bundled workflows, stdout usage sink), invoke every sample in
# events/, print each response and the usage events it emitted, then stop.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-lambda >/dev/null; then
  echo "cargo-lambda is not installed: run \`make run\`, which installs it into .venv/" >&2
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
for event in events/direct.json $(ls events/*.json | grep -v '/direct.json$'); do
  echo
  echo "==> invoke $event"
  if ! response=$(cargo lambda invoke bootstrap -A 127.0.0.1 -P "$port" --data-file "$event" -o json 2>&1); then
    status=1
  fi
  # Print the response, then its usage events: the function's stdout lines {"usage_event": …}
  # that carry its execution id (written before the response; the emulator may relay them a
  # moment later, so wait up to 5 s for them).
  RESPONSE="$response" LOG="$log" python3 - <<'PY' || status=1
import json, os, time
raw = os.environ["RESPONSE"]
try:
    response = json.loads(raw)
except ValueError:
    print(raw)
    raise SystemExit(1)
print("response:")
print(json.dumps(response, indent=2))
result = json.loads(response["body"]) if isinstance(response.get("body"), str) else response
execution_id, ran = result.get("execution_id"), result.get("status") in ("completed", "faulted")
lines, deadline = [], time.monotonic() + 5
while ran and not lines and time.monotonic() < deadline:
    with open(os.environ["LOG"], errors="replace") as f:
        lines = [l[l.index('{"usage_event"'):] for l in f if '{"usage_event"' in l and execution_id in l]
    if not lines:
        time.sleep(0.1)
if lines:
    print("usage events:")
    for line in lines:
        print(json.dumps(json.loads(line), indent=2))
elif ran:
    print("usage events: none found in the function's output")
    raise SystemExit(1)
else:
    print("usage events: none (the request was rejected; nothing ran)")
PY
done
echo
echo "==> stopping the emulator"
exit $status
