// Seeding a scratch database with `alertresponder run`, and `alertresponder serve` as a
// child process on a free loopback port: started, waited for, always stopped.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";

/** The fixtures' stand-ins for strings too large to commit. */
export const MARKERS = {
  // As much attacker text as one alert may carry (the limit is 256 KiB per alert).
  "@HUGE@": () => "A".repeat(70_000) + "<script>alert('end of huge')</script>",
  // The "10 MB string": rejected whole as an input, kept (cut) in the error list.
  "@10MB@": () => "B".repeat(10 * 1024 * 1024),
};

/** `line` with every marker of MARKERS replaced by the string it stands for. */
export function expand(line) {
  let out = line;
  for (const [marker, make] of Object.entries(MARKERS)) {
    if (out.includes(marker)) {
      out = out.split(marker).join(make());
    }
  }
  return out;
}

/** Writes fixture `src` with its markers expanded to `dest`. */
export async function expandFixture(src, dest) {
  const text = await readFile(src, "utf8");
  await writeFile(dest, text.split("\n").map(expand).join("\n"));
  return dest;
}

/** A TOML basic string holding `s` (a path). */
export function tomlString(s) {
  return JSON.stringify(s);
}

/** Runs `binary args…` to its end; resolves to { code, stdout, stderr }. */
export async function runToEnd(binary, args, { env = process.env, timeoutMs = 300_000 } = {}) {
  const child = spawn(binary, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code, signal] = await once(child, "exit");
  clearTimeout(timer);
  return { code: code ?? signal, stdout, stderr };
}

/** A running `serve`: its base URL, its log, and stop(). */
export class Server {
  constructor(child, base, log) {
    this.child = child;
    this.base = base;
    this.log = log;
    this.exit = once(child, "exit");
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves to the exit code (or signal name). */
  async stop(graceMs = 15_000) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      const [code, signal] = await this.exit;
      return code ?? signal;
    }
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    const [code, signal] = await this.exit;
    clearTimeout(timer);
    return code ?? signal;
  }
}

/**
 * Starts `binary serve --config config --listen 127.0.0.1:0` (the token, if any, in
 * the environment, never on the command line) and waits for its "listening on" line.
 */
export async function startServe(binary, config, { token, listen = "127.0.0.1:0", timeoutMs = 60_000 } = {}) {
  const env = { ...process.env, RUST_LOG: "warn" };
  delete env.ALERTRESPONDER_API_TOKEN;
  delete env.ALERTRESPONDER_CONFIG;
  if (token) {
    env.ALERTRESPONDER_API_TOKEN = token;
  }
  const child = spawn(binary, ["serve", "--config", config, "--listen", listen], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log = [];
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`serve did not start in ${timeoutMs} ms:\n${log.join("")}`));
    }, timeoutMs);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      log.push(chunk);
      // The whole address: up to the space that follows it.
      const m = /listening on (http:\/\/\S+)\s/.exec(log.join(""));
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`serve exited (${code ?? signal}) before listening:\n${log.join("")}`));
    });
  });
  return new Server(child, base, log);
}

