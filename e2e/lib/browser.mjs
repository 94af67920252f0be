// Debian's Chromium driven by playwright-core (no browser download), and the watch
// every test keeps on a page: dialogs, requests beyond loopback, console errors.

import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { chromium } from "playwright-core";

export const CHROMIUM = process.env.E2E_CHROMIUM ?? "/usr/bin/chromium";
export const VIEWPORT = { width: 1280, height: 900 };

/** What run.mjs hands the tests. */
export function settings() {
  const need = (name) => {
    const v = process.env[name];
    if (!v) {
      throw new Error(`${name} is not set: run the tests with \`make test-e2e\` (e2e/run.mjs starts the servers)`);
    }
    return v;
  };
  return {
    open: need("E2E_OPEN_URL"),
    guarded: need("E2E_TOKEN_URL"),
    token: need("E2E_TOKEN"),
    binary: need("E2E_BINARY"),
    screenshots: need("E2E_SCREENSHOTS"),
    scratch: need("E2E_SCRATCH"),
    reports: Number(need("E2E_REPORTS")),
  };
}

/**
 * A fresh Chromium with its own new profile directory: `{ context, close }`. The
 * profile is removed by close(). Flags: no sandbox (root in a container), no GPU, and
 * none of Chromium's own traffic (component updates, sync, QUIC, first-run pings).
 * Playwright refuses `--user-data-dir` in `args`: the fresh directory is passed as
 * launchPersistentContext's own argument, which becomes that flag.
 */
export async function launch() {
  const profile = await mkdtemp(path.join(os.tmpdir(), "alertresponder-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: VIEWPORT,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Belt and braces: no host name resolves, so nothing could leave this machine
      // even if a page asked (the tests still see and fail on such a request).
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}

const LOCAL_HOSTS = new Set(["127.0.0.1"]);

/**
 * A new page of `context` under watch: `{ page, dialogs, offsite, consoleErrors,
 * pageErrors }`, lists filled as things happen. A dialog is dismissed (and recorded):
 * one would mean attacker script ran.
 */
export async function watchedPage(context) {
  const page = await context.newPage();
  const seen = { page, dialogs: [], offsite: [], consoleErrors: [], pageErrors: [], requests: [] };
  page.on("dialog", (dialog) => {
    seen.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on("request", (request) => {
    const url = request.url();
    seen.requests.push(url);
    let host = "";
    try {
      const u = new URL(url);
      host = u.protocol === "data:" || u.protocol === "about:" ? "127.0.0.1" : u.hostname;
    } catch {
      host = url;
    }
    if (!LOCAL_HOSTS.has(host)) {
      seen.offsite.push(url);
    }
  });
  page.on("console", (message) => {
    // The browser's own guess at /favicon.ico (no page asks for it) is left to
    // tests/known-issues.test.mjs; any other error counts.
    if (message.type() === "error" && !message.location().url?.endsWith("/favicon.ico")) {
      seen.consoleErrors.push(`${message.text()} (${message.location().url ?? "?"})`);
    }
  });
  page.on("pageerror", (error) => seen.pageErrors.push(String(error)));
  return seen;
}

/** Fails (via `assert`) if anything the watch saw should not have happened. */
export function assertQuiet(assert, seen) {
  assert.deepEqual(seen.dialogs, [], "a dialog opened: script from the page's text ran");
  assert.deepEqual(seen.offsite, [], "a request left 127.0.0.1");
  assert.deepEqual(seen.consoleErrors, [], "the console logged errors (a CSP violation shows there)");
  assert.deepEqual(seen.pageErrors, [], "a script on the page threw");
}
