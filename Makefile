# AlertResponder — build, run, test. `make run` and `make test` are the two commands
# a newcomer needs; CI runs `make test` (see .ci/run). `make help` lists every target:
# each has a `## what it does` after its prerequisites, and `make help-check` (part of
# `make test`) fails on one that has none.

CARGO ?= cargo
BIN := target/debug/alertresponder
OUT := out

# The AWS suite: tools in a local venv (pinned), the five Lambda binaries.
PYTHON ?= python3
VENV := .venv
VENV_BIN := $(CURDIR)/$(VENV)/bin
VENV_STAMP := $(VENV)/.installed
PY := $(VENV_BIN)/python
PY_TOOLS := 'moto[server]==5.2.5' aws-sam-cli==1.170.0 cfn-lint==1.58.0 cargo-lambda==1.9.2 ziglang==0.17.1 awscli==1.46.3 schemathesis==4.32.5
# sam, cargo-lambda and zig from the venv; no telemetry. The Lambda builds skip the
# release profile's LTO: linking the SDK-heavy binaries with thin LTO takes about
# 2 min each on 2 cores (45 s without) and gives no smaller binary.
TOOLS_ENV = PATH="$(VENV_BIN):$$PATH" SAM_CLI_TELEMETRY=0 CARGO_PROFILE_RELEASE_LTO=false $(LAMBDA_TEST_PROFILE)
# `make test` builds the zips to check what sam build and the packaging do, not how
# fast the code runs: there the release profile is not optimised (opt-level 0, many
# codegen units), which roughly halves the cold build of the SDK-heavy binaries.
# `make build`, `make deploy` and `make release` run alone keep the real profile.
LAMBDA_TEST_PROFILE :=
# Linting needs a region but no account.
LINT_ENV = $(TOOLS_ENV) AWS_DEFAULT_REGION=us-east-1
ARCH ?= x86_64
LAMBDA_BINARIES := receptor dispatcher inspector-harness reviewer-invoker emitter-fanout
CONFIG ?= config.json

.PHONY: all build build-cli run serve test check fmt fmt-check clippy unit bench clean help \
	help-check no-testkit venv lint-template sam-build test-deploy deploy deploy-dry config-present \
	sam-build-tester integration deploy-test-stacks destroy-test-stacks tester-config-present aws-cost \
	release test-release test-api fuzz-tools fuzz-build fuzz fuzz-smoke fuzz-cmin

all: build-cli ## the alertresponder command (same as build-cli)

# Every line `target: ... ## text` of this Makefile, in file order.
help: ## every target, with what it does
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "make %-22s %s\n", $$1, $$2 }' $(firstword $(MAKEFILE_LIST))

# A target without `##` would be missing from `make help`.
help-check: ## fails if a target has no description here (make help would not list it)
	@missing="$$(grep -E '^[a-zA-Z0-9_-]+:' $(firstword $(MAKEFILE_LIST)) | grep -v ':=' | grep -v ':.*## ' | cut -d: -f1)"; \
	if [ -n "$$missing" ]; then echo "targets without a '## what it does' (make help omits them):" $$missing; exit 1; fi

# The command alone, debug: what `run` and `serve` use. Not the workspace: that is the
# AWS SDK and the Lambda binaries, which the command does not need.
build-cli: ## the alertresponder command, debug (target/debug/alertresponder)
	$(CARGO) build -p alertresponder --bin alertresponder

# The Lambda binaries, as Lambda runs them (zig links them for Amazon Linux 2023).
build: venv ## the five Lambda binaries, release, zipped: target/lambda/<bin>/bootstrap.zip (ARCH=x86_64|arm64)
	@case "$(ARCH)" in x86_64|arm64) ;; *) echo "ARCH must be x86_64 or arm64, not $(ARCH)"; exit 1;; esac
	$(TOOLS_ENV) cargo lambda build --release --output-format zip \
		$(if $(filter arm64,$(ARCH)),--arm64,--x86-64) $(addprefix --bin ,$(LAMBDA_BINARIES))

# The main job on the embedded default: alerts in, reports out.
run: build-cli ## run the example alerts through the whole pipeline (embedded, virtual time)
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

serve: build-cli ## serve the HTTP API with the example config on 127.0.0.1:8080
	$(BIN) serve --config examples/alertresponder.toml --listen 127.0.0.1:8080

fmt: ## format every crate (cargo fmt)
	$(CARGO) fmt --all

fmt-check: ## fails if a file is not formatted
	$(CARGO) fmt --all -- --check

clippy: ## lints of every crate and target, warnings as errors (and the command with its `aws` feature)
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p alertresponder --features aws --all-targets -- -D warnings

# The AWS adapters' tests start .venv/bin/moto_server.
unit: venv ## cargo test of the workspace: unit, property, end-to-end, the AWS suite on moto
	$(CARGO) test --workspace

# The packages Lambda functions are built from: the stack's five and the tester's two.
SHIPPED_PACKAGES := $(LAMBDA_BINARIES) alertresponder-tester-functions
# Test code stays out of them: no test kit or wiremock, nor a `testing` feature, in any
# of their trees (dev-dependencies included), nor core's `fixtures` in what ships.
no-testkit: ## fails if a Lambda binary's dependency tree has test code (the AWS test kit, wiremock, fixtures)
	@for p in $(SHIPPED_PACKAGES); do \
		tree="$$($(CARGO) tree -e features -p $$p)" || exit 1; \
		shipped="$$($(CARGO) tree -e features,no-dev -p $$p)" || exit 1; \
		found="$$(echo "$$tree" | grep -iE 'testkit|wiremock|feature "testing"'; \
			echo "$$shipped" | grep -E 'feature "fixtures"')"; \
		if [ -n "$$found" ]; then echo "$$p depends on test code:"; echo "$$found"; exit 1; fi; \
	done; echo "no test code in $(SHIPPED_PACKAGES)"

check: fmt-check clippy help-check no-testkit ## the fast checks: fmt-check, clippy, help-check, no-testkit

# Every test: formatting, lints, the Makefile's help and the Lambda binaries' trees; unit,
# property and end-to-end tests (run, serve, crash/restart), and the AWS suite: template
# lint, deploy script, release (its template deployed on moto), sam build of the five
# functions; the tester's scenarios on the stack in a box (and its deployed-stack test,
# which says it was skipped unless tester/config.json names a stack), sam build of the
# tester stack.
test: LAMBDA_TEST_PROFILE := CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_DEBUG=false
test: venv check lint-template test-deploy test-release unit test-api test-e2e sam-build sam-build-tester fuzz-smoke ## every check and test (what CI runs): check, the AWS suite on moto, sam builds, schemathesis on serve, the pages in headless Chromium, a short run of each fuzz target

# schemathesis against `serve` (scripts/schemathesis_run.py): the debug binary on a free
# loopback port with a scratch database and a token, API_EXAMPLES cases per operation and
# phase (50: about 30 s), checked against /v1/openapi.json: no 5xx, answers as documented,
# requests the document forbids refused, every 4xx naming its field
# (scripts/schemathesis_hooks.py); then the server must still answer /healthz and stop cleanly.
API_EXAMPLES ?= 50
test-api: venv build-cli ## schemathesis against serve: no 5xx, answers as /v1/openapi.json says, 4xx name the field, server stays up
	$(PY) scripts/schemathesis_run.py --binary $(BIN) --max-examples $(API_EXAMPLES)

# The pages in headless Chromium (README "Tests in a browser"): e2e/run.mjs seeds a
# scratch database in out/e2e/ (the example alerts and e2e/fixtures/' hostile ones),
# starts `serve` twice on free loopback ports (open, and wanting a token), runs
# e2e/tests/ with Node's test runner, and always stops both servers. The browser is
# Debian's chromium, driven by playwright-core (pinned in e2e/package-lock.json; no
# browser download). UPDATE_SCREENSHOTS=1 rewrites docs/screenshots/ (else out/e2e/).
CHROMIUM := /usr/bin/chromium
E2E_STAMP := e2e/node_modules/.installed
.PHONY: test-e2e e2e-tools
test-e2e: build-cli e2e-tools ## the pages in headless Chromium: list, urgent filter, report, sign-in, hostile text, screenshots
	node e2e/run.mjs --binary $(BIN)

e2e-tools: $(E2E_STAMP) ## Debian's chromium (apt-get, when /usr/bin/chromium is missing) and e2e/'s playwright-core (npm ci)
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "installing Debian's chromium (apt-get)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		mkdir -p $(OUT); \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >$(OUT)/apt-chromium.log 2>&1 \
			|| { cat $(OUT)/apt-chromium.log; echo "cannot install chromium: run 'apt-get install chromium' as root"; exit 1; }; fi

$(E2E_STAMP): e2e/package.json e2e/package-lock.json
	cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

# ---------------------------------------------------------------- AWS

# The pinned Python tools (sam, cfn-lint, cargo-lambda, zig, aws, moto). The stamp
# records the pins: changing PY_TOOLS reinstalls.
venv: ## install the pinned Python tools into .venv (moto, sam, cfn-lint, cargo-lambda, zig, aws)
	@if [ "$$(cat $(VENV_STAMP) 2>/dev/null)" != "$(PY_TOOLS)" ]; then \
		rm -f $(VENV_STAMP) && $(MAKE) --no-print-directory $(VENV_STAMP); fi

$(VENV_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV_BIN)/pip install --disable-pip-version-check --quiet $(PY_TOOLS)
	echo "$(PY_TOOLS)" > $@

lint-template: venv ## cfn-lint and sam validate of both templates, lint of the state machine
	$(LINT_ENV) cfn-lint template.yaml tester/template.yaml
	$(LINT_ENV) sam validate --lint --template-file template.yaml
	$(LINT_ENV) sam validate --lint --template-file tester/template.yaml
	$(LINT_ENV) $(PY) scripts/deploy.py lint-state-machine

# Builds each function as `sam deploy` would (cargo lambda, release), offline. `build`
# first: one cargo run links the five binaries in parallel; sam then finds them fresh.
sam-build: build ## sam build of the stack (as sam deploy would, offline), checked
	$(TOOLS_ENV) sam build --template-file template.yaml --build-dir .aws-sam/build \
		--parameter-overrides Architecture=$(ARCH)
	$(PY) scripts/deploy.py check-build

# The tester stack's two functions, as `make deploy-test-stacks` builds them (offline).
sam-build-tester: venv ## sam build of the tester stack's two functions (offline), checked
	$(TOOLS_ENV) cargo lambda build --release $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) \
		--bin tester-inspector --bin tester-reviewer
	$(TOOLS_ENV) sam build --template-file tester/template.yaml --build-dir .aws-sam/tester-build \
		--parameter-overrides Architecture=$(ARCH) MainStackName=alertresponder
	$(PY) scripts/deploy.py check-build --build-dir .aws-sam/tester-build --template tester/template.yaml

# The commands `make deploy` runs, checked on a sample config.
test-deploy: venv ## tests of scripts/deploy.py: the commands make deploy runs, on a sample config
	$(TOOLS_ENV) $(PY) scripts/deploy_test.py

# A release anyone deploys with `aws cloudformation deploy` (README "Deploy to AWS"):
# dist/alertresponder.yml, the template with the SAM transform applied, whose functions
# run s3://<BUCKET>-<region>/<VERSION>/<arch>/<binary>.zip, and those zips under
# dist/<VERSION>/. Prints the command that uploads them to each of REGIONS' buckets.
RELEASE_ARCHS ?= $(ARCH)
REGIONS ?= us-east-1
release: venv ## dist/alertresponder.yml and its zips (VERSION=x.y.z BUCKET=name [REGIONS="us-east-1 eu-west-1"])
	@test -n "$(VERSION)" && test -n "$(BUCKET)" || { echo "usage: make release VERSION=x.y.z BUCKET=name [REGIONS=\"us-east-1 eu-west-1\"]"; exit 1; }
	$(TOOLS_ENV) $(PY) scripts/release.py --version "$(VERSION)" --bucket "$(BUCKET)" \
		$(addprefix --arch ,$(RELEASE_ARCHS)) $(addprefix --region ,$(REGIONS))

# The release's template deployed on moto from the printed upload (stand-in zips: seconds).
test-release: venv ## tests of scripts/release.py: its template deployed on moto's CloudFormation
	$(TOOLS_ENV) $(PY) scripts/release_test.py

config-present: ## fails unless the deploy config exists (CONFIG, default config.json)
	@test -f "$(CONFIG)" || { echo "$(CONFIG) not found: copy config.example.json to $(CONFIG) and fill it in (README.md, \"Deploy to AWS\")"; exit 1; }

# sam build, then aws cloudformation package and deploy with the values of config.json.
deploy: config-present venv ## deploy the stack to AWS with config.json (README.md, "Deploy to AWS")
	$(TOOLS_ENV) $(PY) scripts/deploy.py deploy --config "$(CONFIG)"

# Prints what `make deploy` would run.
deploy-dry: config-present venv ## print the commands make deploy would run, run nothing
	$(TOOLS_ENV) $(PY) scripts/deploy.py deploy --config "$(CONFIG)" --dry-run

# ---------------------------------------------------------------- tests on your AWS account
# See README "Testing against your own AWS account". TESTER_CONFIG names the file.
TESTER_CONFIG ?= tester/config.json

tester-config-present: ## fails unless the test-stack config exists (TESTER_CONFIG, default tester/config.json)
	@test -f "$(TESTER_CONFIG)" || { echo "$(TESTER_CONFIG) not found: copy tester/config.example.json to $(TESTER_CONFIG) and fill it in"; exit 1; }

# The stack under test (short delays, the tester's inspector and reviewer), then the tester stack.
deploy-test-stacks: tester-config-present venv ## deploy the stack with short delays and the tester stack (tester/config.json)
	$(TOOLS_ENV) $(PY) scripts/deploy.py test-stacks --config "$(TESTER_CONFIG)"

# The scenarios against the deployed stacks (minutes: they wait for real reviews).
integration: tester-config-present ## the tester's scenarios against the deployed test stacks (minutes)
	TESTER_CONFIG="$(abspath $(TESTER_CONFIG))" $(CARGO) test -p alertresponder-tester --test deployed -- --nocapture

# Deletes the tester stack, then the stack under test; prints how to delete its retained tables.
destroy-test-stacks: tester-config-present venv ## delete both test stacks (prints how to delete their retained tables)
	$(TOOLS_ENV) $(PY) scripts/deploy.py teardown-test-stacks --config "$(TESTER_CONFIG)"

bench: ## benchmark program, release build (installs prometheus-alertmanager if missing)
	$(CARGO) build --release -p alertresponder -p alertresponder-bench
	./target/release/alertresponder-bench

# The pages of `serve` at 100,000 stored reports: the release `serve` answers; the
# program that fills the file and times the requests is a debug build (a release build
# of its package compiles the AWS SDK, for the `aws-cost` program beside it).
.PHONY: bench-pages
bench-pages: ## page-load benchmark: 100,000 reports, p50/p99 of the list (each filter, search) and report pages
	$(CARGO) build --release -p alertresponder
	$(CARGO) run -p alertresponder-bench --bin page-bench -- --serve target/release/alertresponder

clean: ## remove build output: target/, out/, .aws-sam/, dist/
	$(CARGO) clean
	rm -rf $(OUT) .aws-sam dist

# AWS cost per million reports of 1 and 10 alerts, measured on moto + cargo-lambda's
# emulator, beside DeepAlert v1 (the first run compiles the functions: minutes).
aws-cost: venv ## AWS cost per million reports, measured on the stack in a box (moto + Lambda emulator)
	$(CARGO) run -p alertresponder-bench --bin aws-cost

# ---------------------------------------------------------------- fuzzing
# The fuzz targets (README "Fuzzing"): fuzz/ is its own workspace, built by cargo-fuzz
# (from crates.io, pinned) with libFuzzer's instrumentation into fuzz/target, so its
# cold build counts apart from the workspace's. fuzz/run.sh says how a target runs
# (input and memory bounds, the corpus it starts from and where it writes).
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_RUNS ?= 1000000
FUZZ_SMOKE_SECONDS ?= 5
# Empty: every target (fuzz/run.sh lists them).
FUZZ_TARGETS ?=

fuzz-tools: ## install cargo-fuzz (the pinned version, from crates.io) when it is missing
	@if [ "$$($(CARGO) fuzz --version 2>/dev/null)" != "cargo-fuzz $(CARGO_FUZZ_VERSION)" ]; then \
		$(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked; fi

fuzz-build: fuzz-tools ## build the fuzz targets (instrumented, in fuzz/target) and print the time it took
	fuzz/run.sh build

fuzz: fuzz-build ## each fuzz target to FUZZ_RUNS executions (1,000,000): runs, time, exec/s per target
	fuzz/run.sh runs $(FUZZ_RUNS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build ## each fuzz target for FUZZ_SMOKE_SECONDS seconds (5), from the committed corpus
	fuzz/run.sh time $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

fuzz-cmin: fuzz-build ## merge what fuzz runs found into fuzz/corpus, minimised (commit the result)
	fuzz/run.sh cmin $(FUZZ_TARGETS)
