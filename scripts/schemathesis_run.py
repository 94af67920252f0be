"""`make test-api`: schemathesis against a real `alertresponder serve`.

Starts the debug binary on a free loopback port with a scratch database and an API
token, runs schemathesis on the OpenAPI document it serves (GET /v1/openapi.json)
with a bounded number of cases per operation, then checks that the server is still
up and stops it. Fails on any 5xx, on an answer the document does not describe, on
a 4xx that does not name its field (scripts/schemathesis_hooks.py), and on a server
that died, panicked or did not stop cleanly.
"""

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOOKS = ROOT / "scripts" / "schemathesis_hooks.py"
CONFIG = ROOT / "scripts" / "schemathesis.toml"

# Ours (hooks) and schemathesis' own: no 5xx, answers as documented (status, content
# type, headers, body schema), schema-invalid requests refused, and the token enforced.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
    "four_xx_names_the_field",
]


def start_server(binary, workdir, token):
    """Starts `serve` on 127.0.0.1:0; returns the process, its base URL and its log lines."""
    config = workdir / "alertresponder.toml"
    config.write_text(
        f'database = "{workdir / "api.db"}"\n'
        'inspection_delay = "1s"\n'
        'review_delay = "2s"\n'
    )
    proc = subprocess.Popen(
        [str(binary), "serve", "--config", str(config), "--listen", "127.0.0.1:0", "--token", token],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    log, ready = [], threading.Event()
    base = []

    def read():
        for line in proc.stderr:
            log.append(line.rstrip("\n"))
            if "listening on " in line and not base:
                base.append(line.split("listening on ", 1)[1].split()[0])
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(30) or not base:
        proc.kill()
        sys.exit("serve did not start:\n" + "\n".join(log))
    return proc, base[0], log


def healthy(base):
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as answer:
            return answer.status == 200
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=str(ROOT / "target" / "debug" / "alertresponder"))
    parser.add_argument("--max-examples", type=int, default=50, help="cases per operation and phase")
    parser.add_argument("--max-time", type=int, default=300, help="seconds for the whole run, at most")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (printed by schemathesis)")
    args = parser.parse_args()

    schemathesis = Path(sys.executable).parent / "schemathesis"
    if not schemathesis.exists():
        sys.exit(f"{schemathesis} not found: run `make venv`")
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="alertresponder-api-") as tmp:
        proc, base, log = start_server(args.binary, Path(tmp), token)
        print(f"schemathesis against {base} (scratch database {tmp}/api.db, token set)", flush=True)
        command = [
            str(schemathesis), "--config-file", str(CONFIG), "run", f"{base}/v1/openapi.json",
            "--checks", ",".join(CHECKS),
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", str(args.max_examples),
            "--generation-database", "none",
            "--no-color",
        ]
        if args.seed is not None:
            command += ["--seed", str(args.seed)]
        started = time.monotonic()
        try:
            run = subprocess.run(
                command,
                cwd=tmp,
                env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
                timeout=args.max_time,
            )
            code = run.returncode
        except subprocess.TimeoutExpired:
            print(f"schemathesis ran over {args.max_time} s", flush=True)
            code = 1
        took = time.monotonic() - started

        failures = []
        if code != 0:
            failures.append(f"schemathesis failed (exit {code})")
        if proc.poll() is not None:
            failures.append(f"serve exited during the run (status {proc.returncode})")
        elif not healthy(base):
            failures.append("serve no longer answers GET /healthz")
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                failures.append("serve did not stop within 30 s of SIGTERM")
            else:
                if proc.returncode != 0:
                    failures.append(f"serve stopped with status {proc.returncode}")
        time.sleep(0.2)  # the log reader drains the last lines
        panics = [line for line in log if "panicked" in line]
        if panics:
            failures.append("serve panicked:\n  " + "\n  ".join(panics))
        if failures:
            print("\n".join(["test-api FAILED:"] + failures + ["serve's log:"] + log[-40:]))
            sys.exit(1)
        print(f"test-api: schemathesis passed in {took:.0f} s; serve stayed up (healthz 200) and stopped cleanly")


if __name__ == "__main__":
    main()
