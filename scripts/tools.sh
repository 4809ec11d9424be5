#!/usr/bin/env bash
# Makes sure what `make run`, `make test` (and build, bench, lint) need is there, installing what is missing into the
# project's own .venv/ (made on first use; the user's Python is left alone). Prints one line per
# thing it installs, saying why. Used by the Makefile, which puts .venv/bin first on PATH.
#   scripts/tools.sh lambda cargo-lambda (the local Lambda emulator of `make run`)
#   scripts/tools.sh test   cfn-lint, moto[server] + boto3, jsonschema + rfc3339-validator, mcp, a2a-sdk
#   scripts/tools.sh lint   cfn-lint, rustfmt, clippy
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
export PATH="$PWD/$venv/bin:$PATH"

say() { echo "==> $*" >&2; }

# The Python the tests run (`python3` on PATH: .venv's once it exists).
has_module() { python3 -c "import $1" 2>/dev/null; }

ensure_venv() {
  if [ ! -x "$venv/bin/python3" ]; then
    say "creating $venv/ (a Python environment of this project's own, for its tools)"
    if ! python3 -m venv "$venv" 2>/dev/null; then
      # Debian's python3 without ensurepip: a venv without pip, then pip from PyPI.
      python3 -m venv --without-pip "$venv"
      python3 -m pip --python "$venv/bin/python3" --version >/dev/null 2>&1 ||
        { say "python3 -m venv needs the python3-venv package (apt-get install python3-venv)"; exit 1; }
    fi
  fi
}

pip_install() { # why, packages…
  local why=$1; shift
  ensure_venv
  say "installing $* into $venv/ ($why)"
  "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "$@"
}

need_rust_components() {
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
      say "installing the Rust component $component (make lint runs it)"
      rustup component add "$component" >/dev/null
    fi
  done
}

need_test() {
  # The tests run `python3` with these modules, and `cfn-lint` / `moto_server` from PATH. Once
  # .venv exists it is the `python3` on PATH, so everything goes into it together.
  local missing=()
  has_module cfnlint && command -v cfn-lint >/dev/null || missing+=(cfn-lint)
  has_module moto.server && has_module boto3 && command -v moto_server >/dev/null ||
    missing+=("moto[server]" boto3)
  has_module jsonschema && has_module rfc3339_validator || missing+=(jsonschema rfc3339-validator)
  has_module mcp.server.mcpserver && has_module uvicorn && has_module httpx || missing+=("mcp>=2,<3")
  has_module yaml || missing+=(pyyaml)
  has_module a2a.server.routes.jsonrpc_routes && has_module sse_starlette || missing+=("a2a-sdk[http-server]>=1.3,<2")
  if [ ${#missing[@]} -gt 0 ]; then
    if [ ! -x "$venv/bin/python3" ]; then
      # A new .venv replaces the system python3 on PATH: give it every module the tests use.
      missing=(cfn-lint "moto[server]" boto3 jsonschema rfc3339-validator "mcp>=2,<3" pyyaml "a2a-sdk[http-server]>=1.3,<2")
    fi
    pip_install "the tests lint template.yaml, run EventBridge and SQS on loopback, check usage events against their schemas, and run MCP and A2A servers on loopback" "${missing[@]}"
  fi
}

for what in "$@"; do
  case "$what" in
    lambda)
      command -v cargo-lambda >/dev/null ||
        pip_install "make run starts the function under cargo-lambda's Lambda emulator" cargo-lambda
      ;;
    test) need_test ;;
    lint) need_test; need_rust_components ;;
    *) echo "scripts/tools.sh: unknown need '$what' (lambda, test, lint)" >&2; exit 2 ;;
  esac
done
