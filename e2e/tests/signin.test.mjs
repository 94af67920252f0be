// Signing in with the API token on a server that wants one, and `serve` refusing to
// listen beyond loopback without a token.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { after, before, test } from "node:test";

import { assertQuiet, launch, settings, watchedPage } from "../lib/browser.mjs";

const cfg = settings();
let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test("a page asks for the token, refuses a wrong one, and a right one opens the pages", async () => {
  await browser.context.clearCookies();
  const seen = await watchedPage(browser.context);
  const { page } = seen;
  // Straight to a filtered list: sent to sign in, and back there afterwards.
  await page.goto(`${cfg.guarded}/?severity=urgent`);
  assert.match(new URL(page.url()).pathname, /^\/signin$/);
  assert.equal(await page.getByTestId("report-row").count(), 0, "nothing shown before signing in");
  const form = page.getByTestId("signin-form");
  assert.equal(await form.getAttribute("method"), "post", "the token goes in a POST body, never a URL");

  // A wrong token: refused, no cookie, still on the sign-in form.
  await page.getByTestId("signin-token").fill(`${cfg.token}x`);
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/signin") && r.request().method() === "POST"),
    page.getByTestId("signin-submit").click(),
  ]);
  assert.equal(refused.status(), 401);
  await page.waitForLoadState("load");
  assert.ok(await page.getByTestId("signin-error").isVisible());
  assert.deepEqual(await browser.context.cookies(cfg.guarded), []);
  // The browser logs the 401 of the form's answer; nothing else may show.
  seen.consoleErrors = seen.consoleErrors.filter((m) => !/status of 401/.test(m));

  // The right token: a session cookie, HttpOnly and SameSite=Strict, and the page asked for.
  await page.getByTestId("signin-token").fill(cfg.token);
  await Promise.all([page.waitForURL(/\/\?severity=urgent$/), page.getByTestId("signin-submit").click()]);
  const cookies = await browser.context.cookies(cfg.guarded);
  assert.equal(cookies.length, 1, JSON.stringify(cookies));
  const [cookie] = cookies;
  assert.equal(cookie.name, "ar_session");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(cookie.path, "/");
  assert.ok(!cookie.value.includes(cfg.token), "the cookie is not the token");
  assert.ok(!page.url().includes(cfg.token), "the token is in no URL");
  assert.ok(!seen.requests.some((u) => u.includes(cfg.token)), "nor in any request's URL");

  // Pages load now: the list, a report, the errors.
  const rows = page.getByTestId("report-row");
  assert.ok((await rows.count()) > 0);
  await Promise.all([page.waitForURL(/\/reports\//), rows.first().getByTestId("report-link").click()]);
  assert.ok((await page.locator("svg[data-testid=graph] [data-testid=graph-node]").count()) > 0);
  const errors = await page.goto(`${cfg.guarded}/errors`);
  assert.equal(errors.status(), 200);
  assert.ok(errors.headers()["content-security-policy"]);

  // Signing out ends the session.
  await Promise.all([page.waitForURL(/\/signin$/), page.getByTestId("signout").click()]);
  assert.deepEqual(await browser.context.cookies(cfg.guarded), []);
  await page.goto(`${cfg.guarded}/`);
  assert.match(new URL(page.url()).pathname, /^\/signin$/);
  assertQuiet(assert, seen);
  await page.close();
});

test("without a session no page nor API answer leaks a report", async () => {
  await browser.context.clearCookies();
  const page = await browser.context.newPage();
  for (const path of ["/", "/errors", "/reports/anything"]) {
    const answer = await page.request.get(`${cfg.guarded}${path}`, { maxRedirects: 0 });
    assert.equal(answer.status(), 303, path);
    assert.match(answer.headers().location, /^\/signin\?next=/);
  }
  const api = await page.request.get(`${cfg.guarded}/v1/reports`);
  assert.equal(api.status(), 401);
  // A forged cookie is not a session.
  await browser.context.addCookies([{ name: "ar_session", value: "99999999999.00ff", url: cfg.guarded }]);
  const forged = await page.request.get(`${cfg.guarded}/`, { maxRedirects: 0 });
  assert.equal(forged.status(), 303);
  await page.close();
});

test("the open server shows no sign-in (loopback without a token)", async () => {
  await browser.context.clearCookies();
  const page = await browser.context.newPage();
  await page.goto(`${cfg.open}/`);
  assert.equal(new URL(page.url()).pathname, "/");
  assert.equal(await page.getByTestId("signout").count(), 0);
  assert.ok((await page.getByTestId("report-row").count()) > 0);
  await page.close();
});

test("serve refuses to listen beyond loopback without a token", async () => {
  // It refuses before binding; should it not, it is stopped as soon as it listens.
  const env = { ...process.env };
  delete env.ALERTRESPONDER_API_TOKEN;
  delete env.ALERTRESPONDER_CONFIG;
  const child = spawn(cfg.binary, ["serve", "--config", path.join(cfg.scratch, "serve-open.toml"), "--listen", "0.0.0.0:0"], {
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    log += d;
    if (/listening on/.test(log)) {
      child.kill("SIGKILL");
    }
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [code] = await once(child, "exit");
  clearTimeout(timer);
  assert.doesNotMatch(log, /listening on/);
  assert.notEqual(code, 0);
  assert.match(log, /refusing to listen on 0\.0\.0\.0:0 without an API token/);
});
