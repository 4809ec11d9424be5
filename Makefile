# mozaiks-runtime — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# What the targets need and a machine lacks is installed into .venv/ (scripts/tools.sh), whose
# bin/ comes first on PATH for every recipe and test.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
# What runs on Lambda (BENCHMARKS.md has the figures of each):
# - a non-PIE executable (-C relocation-model=static): the dynamic loader then has no
#   relocations to apply at each cold start (about 15,000 on x86_64, 0.9 ms of it);
# - without unwind tables (scripts/lambda-no-unwind.ld): panics abort, nothing unwinds, and the
#   tables were about 180 kB of the zip.
# The flags are set per target triple, so only what cargo-lambda builds for Lambda (always with
# --target) gets them: proc-macros and build scripts, and `cargo test`, stay as they are.
LAMBDA_RUSTFLAGS := -Crelocation-model=static -Clink-arg=-Wl,-T,$(CURDIR)/scripts/lambda-no-unwind.ld
export LAMBDA_RUSTFLAGS
LAMBDA_BUILD = CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$(LAMBDA_RUSTFLAGS)" \
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$(LAMBDA_RUSTFLAGS)" $(CARGO) lambda build

.PHONY: help run test build lint fmt bench events check-workflows

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

run: ## build and start the function locally (cargo-lambda emulator), invoke every sample in events/, print responses and usage events
	@scripts/tools.sh lambda
	@scripts/run-local.sh

test: ## every test: unit, black-box (Runtime API emulator, EventBridge via moto), CTK, SAM template; benches run once as a check
	@scripts/tools.sh test
	@mkdir -p target
	set -o pipefail; { $(CARGO) test --locked --workspace --lib --bins --tests --benches && $(CARGO) test --locked --workspace --doc; } 2>&1 | tee target/test-output.log
	set -o pipefail; cd toolhost && python3 -m unittest discover -v -s tests -t . 2>&1 | tee ../target/toolhost-test-output.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "all Rust tests: %d passed, %d failed\n", p, f }' target/test-output.log
	@awk '/^Ran [0-9]+ test/ { n = $$2 } END { printf "tool host (Python) tests: %d ran, all passed\n", n }' target/toolhost-test-output.log

build: ## release zip for Lambda (arm64) with cargo-lambda, the bundled workflows included
	@scripts/tools.sh lambda
	$(LAMBDA_BUILD) --release --arm64 --output-format zip --include workflows
	@ls -l target/lambda/bootstrap/bootstrap.zip

lint: ## rustfmt, clippy -D warnings, cfn-lint
	@scripts/tools.sh lint
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	cfn-lint template.yaml

check-workflows: ## check every MozaiksAI folder under DIR (default workflows/): loads, and the fate of each file; exit 1 on any rejection
	$(CARGO) run -q --locked -p mozaiks-workflow-cli -- check $(or $(DIR),workflows)

fmt: ## format the code
	$(CARGO) fmt --all

events: ## re-mint the development tokens in events/ (development keys only)
	@scripts/make-events.sh

build-MozaiksRuntimeFunction: ## what `sam build` runs (BuildMethod: makefile): bootstrap + workflows into $(ARTIFACTS_DIR)
	$(LAMBDA_BUILD) --release --arm64 --bin bootstrap
	cp target/lambda/bootstrap/bootstrap "$(ARTIFACTS_DIR)/bootstrap"
	cp -R workflows "$(ARTIFACTS_DIR)/workflows"

build-ToolHostFunction: ## what `sam build` runs for the tool host (DeployToolHost=true): toolhost/ + workflows + its Python dependencies (arm64 wheels) into $(ARTIFACTS_DIR)
	cp -R toolhost/mozaiks_toolhost "$(ARTIFACTS_DIR)/mozaiks_toolhost"
	cp toolhost/lambda/run.sh "$(ARTIFACTS_DIR)/run.sh"
	cp -R workflows "$(ARTIFACTS_DIR)/workflows"
	python3 -m pip install --quiet --target "$(ARTIFACTS_DIR)" --platform manylinux2014_aarch64 \
	  --implementation cp --python-version 3.12 --only-binary=:all: "mcp>=2,<3" pyyaml

bench: ## benchmarks (criterion, Runtime API cold/warm vs. an echo floor, PyJWT, zip sizes) → BENCHMARKS.md
	@scripts/tools.sh lambda
	@scripts/bench.sh
