// Attacker text on the pages (fixtures/hostile-alerts.jsonl, rejected-alerts.jsonl):
// `<script>`, `<img onerror>`, `javascript:` URLs and strings of 70 kB to 10 MB must
// render as inert, bounded text.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { VIEWPORT, assertQuiet, launch, settings, watchedPage } from "../lib/browser.mjs";
import { liveMarkup, size } from "../lib/pages.mjs";

const cfg = settings();
let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

async function openHostileReport(seen) {
  const { page } = seen;
  const response = await page.goto(`${cfg.open}/`);
  assert.ok(response.headers()["content-security-policy"], "the list has a CSP");
  const row = page.getByTestId("report-row").filter({ hasText: "e2e-hostile" });
  assert.equal(await row.count(), 1, "the hostile report is listed");
  // Its title is the rule name, shown as text.
  assert.match(await row.getByTestId("report-link").textContent(), /<script>alert\('title'\)<\/script>/);
  const href = await row.getByTestId("report-link").getAttribute("href");
  assert.match(href, /^\/reports\/[^/]+$/);
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(href)),
    row.getByTestId("report-link").click(),
  ]);
  await page.waitForLoadState("load");
  return answer;
}

test("the list shows hostile titles, keys and detectors as text", async () => {
  const seen = await watchedPage(browser.context);
  const { page } = seen;
  await page.goto(`${cfg.open}/`);
  assert.deepEqual(await liveMarkup(page), []);
  const options = await page.getByTestId("filter-detector").locator("option").allTextContents();
  assert.ok(options.some((o) => o.includes("<script>alert('detector')</script>")), `detector shown as text: ${options}`);
  // Choosing the hostile detector filters by it, still as text.
  const value = await page
    .getByTestId("filter-detector")
    .locator("option")
    .filter({ hasText: "e2e-hostile" })
    .getAttribute("value");
  await Promise.all([page.waitForURL(/detector=/), page.getByTestId("filter-detector").selectOption(value)]);
  assert.equal(await page.getByTestId("report-row").count(), 1);
  assert.deepEqual(await liveMarkup(page), []);
  // Search by a hostile attribute value finds the report too.
  await page.goto(`${cfg.open}/`);
  await page.getByTestId("filter-q").fill("javascript:alert('url')");
  await Promise.all([page.waitForURL(/q=/), page.getByTestId("filter-submit").click()]);
  assert.equal(await page.getByTestId("report-row").count(), 1, "found by its javascript: attribute");
  assert.deepEqual(await liveMarkup(page), []);
  assertQuiet(assert, seen);
  await page.close();
});

test("a report of hostile alert text renders inert and bounded", async () => {
  const seen = await watchedPage(browser.context);
  const { page } = seen;
  const answer = await openHostileReport(seen);
  assert.equal(answer.status(), 200);
  const csp = answer.headers()["content-security-policy"];
  assert.ok(csp, "Content-Security-Policy header present");
  assert.doesNotMatch(csp, /unsafe-inline/);

  // Give any injected handler a chance to fire (an <img src=x> would error at once).
  await page.waitForTimeout(500);
  assert.deepEqual(await liveMarkup(page), []);

  // The text is there, as text: the page shows what the attacker wrote.
  const body = await page.locator("body").innerText();
  assert.match(body, /<script>alert\('title'\)<\/script>/);
  assert.match(body, /<img src=x onerror=alert\('description'\)>/);
  assert.match(body, /javascript:alert\('url'\)/);
  assert.match(body, /<b>link<\/b>/, "markup in an attribute's key is text");

  // Bounded: three 70 kB strings in the alert, a page far smaller (its width:
  // known-issues.test.mjs).
  const s = await size(page);
  assert.ok(s.text < 60_000, `page text is ${s.text} chars`);
  assert.ok(s.html < 400_000, `page HTML is ${s.html} chars`);
  assert.ok(s.height < 30_000, `page is ${s.height} px high`);
  assert.match(body, /more chars/, "a cut value says it was cut");
  assert.doesNotMatch(body, /A{5000}/, "no 5,000-character run of the huge string");

  // The graph draws the hostile values as SVG text, not markup.
  const graph = page.locator("svg[data-testid=graph]");
  assert.ok((await graph.getByTestId("graph-node").count()) >= 3);
  const nodeText = (await graph.locator("text").allTextContents()).join(" ");
  assert.doesNotMatch(nodeText, /A{200}/, "node labels are short");

  // Every link on the page is one of ours (a path, a fragment) — none from alert text.
  const hrefs = await page.locator("[href]").evaluateAll((els) => els.map((e) => e.getAttribute("href")));
  for (const href of hrefs) {
    assert.match(href, /^(\/|#)/, `link ${href}`);
  }
  // The raw JSON is served as JSON, never sniffed as HTML.
  const json = await page.request.get(new URL(await page.getByTestId("link-json").getAttribute("href"), cfg.open).toString());
  assert.match(json.headers()["content-type"], /application\/json/);
  assertQuiet(assert, seen);
  await page.close();
});

test("rejected inputs, 10 MB one included, show inert and bounded on the error page", async () => {
  const seen = await watchedPage(browser.context);
  const { page } = seen;
  const answer = await page.goto(`${cfg.open}/errors`);
  assert.equal(answer.status(), 200);
  assert.ok(answer.headers()["content-security-policy"]);
  const rows = page.getByTestId("error-row");
  assert.ok((await rows.count()) >= 3, "the three rejected inputs are listed");
  // Open every input: it is still text.
  for (const summary of await page.locator("[data-testid=error-row] summary").all()) {
    await summary.click();
  }
  await page.waitForTimeout(300);
  assert.deepEqual(await liveMarkup(page), []);
  const text = await page.locator("body").innerText();
  assert.match(text, /<script>alert\('not json'\)<\/script>/);
  assert.match(text, /attributes\[0\]\.value/, "the field at fault is named");
  const s = await size(page);
  assert.ok(s.text < 150_000, `page text is ${s.text} chars`);
  assert.ok(s.html < 600_000, `page HTML is ${s.html} chars`);
  assert.ok(s.width <= VIEWPORT.width, `page is ${s.width} px wide`);
  assertQuiet(assert, seen);
  await page.close();
});
