# AlertResponder — build, run, test. `make run` and `make test` are the two commands
# a newcomer needs; CI runs `make test` (see .ci/run).

CARGO ?= cargo
BIN := target/debug/alertresponder
OUT := out

# The AWS suite: tools in a local venv (pinned), the six Lambda binaries.
PYTHON ?= python3
VENV := .venv
VENV_BIN := $(CURDIR)/$(VENV)/bin
VENV_STAMP := $(VENV)/.installed
PY := $(VENV_BIN)/python
PY_TOOLS := 'moto[server]==5.2.5' aws-sam-cli==1.170.0 cfn-lint==1.58.0 cargo-lambda==1.9.2 ziglang==0.17.1 awscli==1.46.3
# sam, cargo-lambda and zig from the venv; no telemetry. The Lambda builds skip the
# release profile's LTO: linking the SDK-heavy binaries with thin LTO takes about
# 2 min each on 2 cores (45 s without) and gives no smaller binary.
TOOLS_ENV := PATH="$(VENV_BIN):$$PATH" SAM_CLI_TELEMETRY=0 CARGO_PROFILE_RELEASE_LTO=false
# Linting needs a region but no account.
LINT_ENV := $(TOOLS_ENV) AWS_DEFAULT_REGION=us-east-1
ARCH ?= x86_64
LAMBDA_BINARIES := receptor dispatcher inspector-harness compiler reviewer-invoker emitter-fanout
CONFIG ?= config.json

.PHONY: all build build-cli run serve test check fmt fmt-check clippy unit bench clean help \
	venv lint-template sam-build test-deploy deploy deploy-dry config-present \
	sam-build-tester integration deploy-test-stacks destroy-test-stacks tester-config-present

all: build-cli

help:
	@echo "make run     - run the example alerts through the whole pipeline (embedded, virtual time)"
	@echo "make test    - every check and test: fmt, clippy, unit, property and end-to-end tests, the AWS suite on moto"
	@echo "make serve   - serve the HTTP API with the example config on 127.0.0.1:8080"
	@echo "make bench   - benchmark program (release build; installs prometheus-alertmanager if missing)"
	@echo "make build   - the six Lambda binaries, release, zipped: target/lambda/<bin>/bootstrap.zip (ARCH=x86_64|arm64)"
	@echo "make deploy  - deploy the stack to AWS with config.json (make deploy-dry prints the commands)"
	@echo "make aws-cost - AWS cost per million reports, measured on the stack in a box (moto + Lambda emulator)"
	@echo "make deploy-test-stacks - deploy the stack with short delays and the tester stack (tester/config.json)"
	@echo "make integration - the tester's scenarios against those deployed stacks"
	@echo "make destroy-test-stacks - delete both test stacks"

# The command and every crate, debug: what `run` and `serve` use.
build-cli:
	$(CARGO) build --workspace

# The Lambda binaries, as Lambda runs them (zig links them for Amazon Linux 2023).
build: venv
	@case "$(ARCH)" in x86_64|arm64) ;; *) echo "ARCH must be x86_64 or arm64, not $(ARCH)"; exit 1;; esac
	$(TOOLS_ENV) cargo lambda build --release --output-format zip \
		$(if $(filter arm64,$(ARCH)),--arm64,--x86-64) $(addprefix --bin ,$(LAMBDA_BINARIES))

# The main job on the embedded default: alerts in, reports out.
run: build-cli
	@rm -f $(OUT)/run.db $(OUT)/run.db-wal $(OUT)/run.db-shm $(OUT)/reports.jsonl $(OUT)/notifications.log
	@mkdir -p $(OUT)
	$(BIN) run --config examples/alertresponder.toml --database $(OUT)/run.db examples/alerts.jsonl > $(OUT)/run-stdout.jsonl
	@echo
	@echo "== Reports (JSON lines on stdout were saved to $(OUT)/run-stdout.jsonl) =="
	@$(BIN) report list --database $(OUT)/run.db
	@echo
	@echo "== The report that was re-reviewed, as a person reads it =="
	@$(BIN) report show --database $(OUT)/run.db "$$($(BIN) report list --database $(OUT)/run.db | awk '$$3 == "v2" {print $$1; exit}')"
	@echo "== Ticket emitter log ($(OUT)/notifications.log) =="
	@cat $(OUT)/notifications.log

serve: build-cli
	$(BIN) serve --config examples/alertresponder.toml --listen 127.0.0.1:8080

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The AWS adapters' tests start .venv/bin/moto_server.
unit: venv
	$(CARGO) test --workspace

check: fmt-check clippy

# Every test: formatting, lints, unit, property and end-to-end tests (run, serve, crash/restart),
# and the AWS suite: template lint, deploy script, sam build of the six functions; the
# tester's scenarios on the stack in a box (and its deployed-stack test, which says it
# was skipped unless tester/config.json names a stack), sam build of the tester stack.
test: venv fmt-check clippy lint-template test-deploy unit sam-build sam-build-tester

# ---------------------------------------------------------------- AWS

# The pinned Python tools (sam, cfn-lint, cargo-lambda, zig, aws, moto). The stamp
# records the pins: changing PY_TOOLS reinstalls.
venv:
	@if [ "$$(cat $(VENV_STAMP) 2>/dev/null)" != "$(PY_TOOLS)" ]; then \
		rm -f $(VENV_STAMP) && $(MAKE) --no-print-directory $(VENV_STAMP); fi

$(VENV_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV_BIN)/pip install --disable-pip-version-check --quiet $(PY_TOOLS)
	echo "$(PY_TOOLS)" > $@

lint-template: venv
	$(LINT_ENV) cfn-lint template.yaml tester/template.yaml
	$(LINT_ENV) sam validate --lint --template-file template.yaml
	$(LINT_ENV) sam validate --lint --template-file tester/template.yaml
	$(LINT_ENV) $(PY) scripts/deploy.py lint-state-machine

# Builds each function as `sam deploy` would (cargo lambda, release), offline. `build`
# first: one cargo run links the six binaries in parallel; sam then finds them fresh.
sam-build: build
	$(TOOLS_ENV) sam build --template-file template.yaml --build-dir .aws-sam/build \
		--parameter-overrides Architecture=$(ARCH)
	$(PY) scripts/deploy.py check-build

# The tester stack's two functions, as `make deploy-test-stacks` builds them (offline).
sam-build-tester: venv
	$(TOOLS_ENV) cargo lambda build --release $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) \
		--bin tester-inspector --bin tester-reviewer
	$(TOOLS_ENV) sam build --template-file tester/template.yaml --build-dir .aws-sam/tester-build \
		--parameter-overrides Architecture=$(ARCH) MainStackName=alertresponder
	$(PY) scripts/deploy.py check-build --build-dir .aws-sam/tester-build --template tester/template.yaml

# The commands `make deploy` runs, checked on a sample config.
test-deploy: venv
	$(TOOLS_ENV) $(PY) scripts/deploy_test.py

config-present:
	@test -f "$(CONFIG)" || { echo "$(CONFIG) not found: copy config.example.json to $(CONFIG) and fill it in (docs/deploy-aws.md)"; exit 1; }

# sam build, then aws cloudformation package and deploy with the values of config.json.
deploy: config-present venv
	$(TOOLS_ENV) $(PY) scripts/deploy.py deploy --config "$(CONFIG)"

# Prints what `make deploy` would run.
deploy-dry: config-present venv
	$(TOOLS_ENV) $(PY) scripts/deploy.py deploy --config "$(CONFIG)" --dry-run

# ---------------------------------------------------------------- tests on your AWS account
# See README "Testing against your own AWS account". TESTER_CONFIG names the file.
TESTER_CONFIG ?= tester/config.json

tester-config-present:
	@test -f "$(TESTER_CONFIG)" || { echo "$(TESTER_CONFIG) not found: copy tester/config.example.json to $(TESTER_CONFIG) and fill it in"; exit 1; }

# The stack under test (short delays, the tester's inspector and reviewer), then the tester stack.
deploy-test-stacks: tester-config-present venv
	$(TOOLS_ENV) $(PY) scripts/deploy.py test-stacks --config "$(TESTER_CONFIG)"

# The scenarios against the deployed stacks (minutes: they wait for real reviews).
integration: tester-config-present
	TESTER_CONFIG="$(abspath $(TESTER_CONFIG))" $(CARGO) test -p alertresponder-tester --test deployed -- --nocapture

# Deletes the tester stack, then the stack under test; prints how to delete its retained tables.
destroy-test-stacks: tester-config-present venv
	$(TOOLS_ENV) $(PY) scripts/deploy.py teardown-test-stacks --config "$(TESTER_CONFIG)"

bench:
	$(CARGO) build --release -p alertresponder -p alertresponder-bench
	./target/release/alertresponder-bench

clean:
	$(CARGO) clean
	rm -rf $(OUT) .aws-sam

# AWS cost per million reports of 1 and 10 alerts, measured on moto + cargo-lambda's
# emulator, beside DeepAlert v1 (the first run compiles the functions: minutes).
.PHONY: aws-cost
aws-cost: venv
	$(CARGO) run -p alertresponder-bench --bin aws-cost
