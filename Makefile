# AlertResponder — build, run, test. `make run` and `make test` are the two commands
# a newcomer needs; CI runs `make test` (see .ci/run).

CARGO ?= cargo
BIN := target/debug/alertresponder
OUT := out

.PHONY: all build run serve test check fmt fmt-check clippy unit bench clean help

all: build

help:
	@echo "make run     - run the example alerts through the whole pipeline (embedded, virtual time)"
	@echo "make test    - every check and test: fmt, clippy, unit, property and end-to-end tests"
	@echo "make serve   - serve the HTTP API with the example config on 127.0.0.1:8080"
	@echo "make bench   - benchmark program (release build; installs prometheus-alertmanager if missing)"

build:
	$(CARGO) build --workspace

# The main job on the embedded default: alerts in, reports out.
run: build
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

serve: build
	$(BIN) serve --config examples/alertresponder.toml --listen 127.0.0.1:8080

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

check: fmt-check clippy

# Every test: formatting, lints, unit, property and end-to-end tests (run, serve, crash/restart).
test: fmt-check clippy unit

bench:
	$(CARGO) build --release -p alertresponder -p alertresponder-bench
	./target/release/alertresponder-bench

clean:
	$(CARGO) clean
	rm -rf $(OUT)
