// `make test-e2e`: the pages of `alertresponder serve` in headless Chromium.
//
// 1. Seeds a scratch database (out/e2e/) with `alertresponder run`: the example alerts
//    with the example inspectors and policy, the hostile alerts of
//    fixtures/hostile-alerts.jsonl (accepted: their text is shown on the pages), then
//    fixtures/rejected-alerts.jsonl (rejected: shown on the error page). "@HUGE@" and
//    "@10MB@" in a fixture stand for strings too large to commit (lib/server.mjs).
// 2. Starts two `serve`s on free loopback ports: one open (loopback, no token), one
//    that wants the API token (its own copy of the database).
// 3. Runs tests/*.test.mjs with Node's test runner; they find the servers in E2E_*
//    environment variables.
// 4. Always stops both servers (also on an error or Ctrl-C), and fails if one did not
//    stop cleanly or logged a panic.
//
// Usage: node e2e/run.mjs [--binary target/debug/alertresponder] [test files…]
// UPDATE_SCREENSHOTS=1 writes the screenshots to docs/screenshots/ (else out/e2e/screenshots/).

import { spawn } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { expandFixture, runToEnd, startServe, tomlString } from "./lib/server.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");

const { values, positionals } = parseArgs({
  options: { binary: { type: "string", default: "target/debug/alertresponder" } },
  allowPositionals: true,
});
const binary = path.resolve(ROOT, values.binary);
const scratch = path.join(ROOT, "out", "e2e");
const started = [];

function step(text) {
  process.stderr.write(`e2e: ${text}\n`);
}

async function seed() {
  await rm(scratch, { recursive: true, force: true });
  await mkdir(scratch, { recursive: true });
  const examples = path.join(ROOT, "examples");
  // The example config's plugins, with absolute paths, and a file emitter in scratch so
  // that the timeline has deliveries and nothing is written outside out/e2e/.
  const runConfig = path.join(scratch, "run.toml");
  await writeFile(
    runConfig,
    [
      'aggregation_window = "3h"',
      "max_depth = 3",
      "",
      "[[inspector]]",
      'name = "threat-intel"',
      `command = [${tomlString(path.join(examples, "inspectors", "threat-intel.py"))}]`,
      'types = ["ipaddr", "domain", "filehashvalue"]',
      'timeout = "10s"',
      "",
      "[[inspector]]",
      'name = "user-directory"',
      `command = [${tomlString(path.join(examples, "inspectors", "user-directory.py"))}]`,
      'types = ["username"]',
      'timeout = "5s"',
      "",
      "[reviewer]",
      `policy = ${tomlString(path.join(examples, "policy.rego"))}`,
      "",
      "[[emitter]]",
      'name = "reports-file"',
      `file = ${tomlString(path.join(scratch, "reports.jsonl"))}`,
      "",
    ].join("\n"),
  );
  const db = path.join(scratch, "e2e.db");
  const hostile = await expandFixture(
    path.join(HERE, "fixtures", "hostile-alerts.jsonl"),
    path.join(scratch, "hostile-alerts.jsonl"),
  );
  const rejected = await expandFixture(
    path.join(HERE, "fixtures", "rejected-alerts.jsonl"),
    path.join(scratch, "rejected-alerts.jsonl"),
  );
  const env = { ...process.env, RUST_LOG: "warn" };
  delete env.ALERTRESPONDER_CONFIG;
  const accepted = await runToEnd(
    binary,
    // The hostile alert first: the oldest report, last in the list (and in the screenshot).
    ["run", "--config", runConfig, "--database", db, "--quiet", hostile, path.join(examples, "alerts.jsonl")],
    { env },
  );
  if (accepted.code !== 0) {
    throw new Error(`alertresponder run (accepted alerts) exited ${accepted.code}:\n${accepted.stderr}`);
  }
  // Rejected inputs: `run` says so with exit code 1.
  const refused = await runToEnd(binary, ["run", "--config", runConfig, "--database", db, "--quiet", rejected], {
    env,
  });
  if (refused.code !== 1) {
    throw new Error(`alertresponder run (rejected alerts) exited ${refused.code}, not 1:\n${refused.stderr}`);
  }
  // How many reports the list should show: what `report list` counts.
  const listed = await runToEnd(binary, ["report", "list", "--database", db], { env });
  if (listed.code !== 0) {
    throw new Error(`alertresponder report list exited ${listed.code}:\n${listed.stderr}`);
  }
  const reports = listed.stdout.split("\n").filter((l) => l.trim() !== "").length;
  // serve needs no plugin: the pages only read what `run` stored.
  const config = (name, database) => {
    const file = path.join(scratch, name);
    return writeFile(file, `database = ${tomlString(database)}\n`).then(() => file);
  };
  const tokenDb = path.join(scratch, "e2e-token.db");
  for (const suffix of ["", "-wal", "-shm"]) {
    if (existsSync(db + suffix)) {
      await copyFile(db + suffix, tokenDb + suffix);
    }
  }
  return {
    open: await config("serve-open.toml", db),
    token: await config("serve-token.toml", tokenDb),
    reports,
  };
}

async function stopAll() {
  const problems = [];
  while (started.length > 0) {
    const { name, server } = started.pop();
    const code = await server.stop();
    const log = server.log.join("");
    if (code !== 0) {
      problems.push(`${name} serve stopped with ${code}:\n${log}`);
    } else if (/panicked/.test(log)) {
      problems.push(`${name} serve panicked:\n${log}`);
    }
  }
  return problems;
}

async function runTests(env) {
  const files =
    positionals.length > 0
      ? positionals.map((f) => path.resolve(f))
      : (await readdir(path.join(HERE, "tests")))
          .filter((f) => f.endsWith(".test.mjs"))
          .sort()
          .map((f) => path.join(HERE, "tests", f));
  // One file at a time: each drives its own Chromium, and the machine has 2 cores.
  const child = spawn(process.execPath, ["--test", "--test-concurrency=1", "--test-timeout=120000", ...files], {
    env,
    stdio: "inherit",
    cwd: ROOT,
  });
  const [code, signal] = await once(child, "exit");
  return code ?? (signal ? 1 : 0);
}

async function main() {
  if (!existsSync(binary)) {
    throw new Error(`${binary} not found: make build-cli`);
  }
  const t0 = Date.now();
  step("seeding a scratch database with alertresponder run");
  const configs = await seed();
  step(`seeded ${configs.reports} reports in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const token = randomBytes(24).toString("hex");
  const open = await startServe(binary, configs.open);
  started.push({ name: "open", server: open });
  const guarded = await startServe(binary, configs.token, { token });
  started.push({ name: "token", server: guarded });
  step(`serving ${open.base} (no token) and ${guarded.base} (token)`);
  const screenshots = process.env.UPDATE_SCREENSHOTS === "1"
    ? path.join(ROOT, "docs", "screenshots")
    : path.join(scratch, "screenshots");
  const env = {
    ...process.env,
    E2E_OPEN_URL: open.base,
    E2E_TOKEN_URL: guarded.base,
    E2E_TOKEN: token,
    E2E_BINARY: binary,
    E2E_SCRATCH: scratch,
    E2E_REPORTS: String(configs.reports),
    E2E_SCREENSHOTS: screenshots,
  };
  delete env.ALERTRESPONDER_API_TOKEN;
  const code = await runTests(env);
  const problems = await stopAll();
  for (const p of problems) {
    process.stderr.write(`e2e: ${p}\n`);
  }
  step(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return code !== 0 || problems.length > 0 ? 1 : 0;
}

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    step(`${sig}: stopping the servers`);
    stopAll().finally(() => process.exit(130));
  });
}

main()
  .then((code) => {
    process.exitCode = code;
  })
  .catch(async (e) => {
    process.stderr.write(`e2e: ${e.stack ?? e}\n`);
    await stopAll();
    process.exitCode = 1;
  });
