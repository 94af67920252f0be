// The reading path on the open server (loopback, no token): the list, the urgent
// filter, a report with its graph and timeline; headers, requests and console watched.

import assert from "node:assert/strict";
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

/** The timeline's events: { kind, when, text }, as listed. */
async function timeline(page) {
  const events = page.getByTestId("timeline").getByTestId("event");
  return events.evaluateAll((els) =>
    els.map((e) => ({
      kind: e.dataset.kind,
      when: e.querySelector(".time").textContent.trim(),
      text: e.querySelector(".what").textContent.trim(),
    })),
  );
}

/** Fails unless the events' times (`2026-11-20 10:10:00 UTC`) never go back. */
function assertOldestFirst(rows) {
  const whens = rows.map((r) => r.when);
  for (const w of whens) {
    assert.match(w, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  }
  assert.deepEqual(whens, [...whens].sort(), "oldest first");
}

/** The severity labels of the list's rows, in order. */
async function badges(page) {
  return page.getByTestId("report-row").getByTestId("severity").allTextContents();
}

test("the list shows every seeded report, newest first, with the security headers", async () => {
  const seen = await watchedPage(browser.context);
  const { page } = seen;
  const response = await page.goto(`${cfg.open}/`);
  assert.equal(response.status(), 200);
  const headers = response.headers();
  const csp = headers["content-security-policy"] ?? "";
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(headers["x-content-type-options"], "nosniff");
  const rows = page.getByTestId("report-row");
  // As many as `alertresponder report list` counts (run.mjs).
  assert.equal(await rows.count(), cfg.reports);
  const opened = await rows.locator("td.time").evaluateAll((cells) =>
    cells.filter((_, i) => i % 2 === 0).map((c) => c.textContent.trim()),
  );
  assert.deepEqual(opened, [...opened].sort().reverse(), "newest first");
  const labels = await badges(page);
  assert.ok(labels.includes("urgent") && labels.some((l) => l !== "urgent"), `mixed severities: ${labels}`);
  assertQuiet(assert, seen);
  await page.close();
});

test("filtering to urgent leaves only urgent badges", async () => {
  const seen = await watchedPage(browser.context);
  const { page } = seen;
  await page.goto(`${cfg.open}/`);
  const before = await badges(page);
  // pages.js submits the form when a filter is chosen.
  await Promise.all([
    page.waitForURL(/[?&]severity=urgent(&|$)/),
    page.getByTestId("filter-severity").selectOption("urgent"),
  ]);
  await page.waitForLoadState("domcontentloaded");
  const after = await badges(page);
  assert.ok(after.length > 0, "some report is urgent");
  assert.ok(after.length < before.length, `the filter removed something (${before.length} → ${after.length})`);
  assert.deepEqual(new Set(after), new Set(["urgent"]));
  for (const cls of await page.getByTestId("severity").evaluateAll((els) => els.map((e) => e.className))) {
    assert.match(cls, /\bsev-urgent\b/);
  }
  assert.equal(await page.getByTestId("filter-severity").inputValue(), "urgent", "the choice stays selected");
  // The filter also works without the script: the form's own submit button.
  await page.goto(`${cfg.open}/`);
  await page.getByTestId("filter-severity").evaluate((el) => {
    el.value = "safe";
  });
  await Promise.all([page.waitForURL(/severity=safe/), page.getByTestId("filter-submit").click()]);
  assert.deepEqual(new Set(await badges(page)), new Set(["safe"]));
  assertQuiet(assert, seen);
  await page.close();
});

test("a report shows its verdict, its graph as SVG with nodes, and its timeline in order", async () => {
  const seen = await watchedPage(browser.context);
  const { page } = seen;
  await page.goto(`${cfg.open}/?severity=urgent`);
  // The malware beacon: found through an attribute an inspector discovered.
  const row = page.getByTestId("report-row").filter({ hasText: "Malware beacon" });
  assert.equal(await row.count(), 1);
  await Promise.all([page.waitForURL(/\/reports\//), row.getByTestId("report-link").click()]);
  assert.match(await page.getByTestId("report-title").textContent(), /Malware beacon/);
  assert.equal((await page.getByTestId("verdict-severity").textContent()).trim(), "urgent");
  assert.match(await page.getByTestId("verdict-reason").textContent(), /Mirai/);

  // The graph: an inline SVG drawn by the server, alert → attribute → discovered.
  const graph = page.locator("svg[data-testid=graph]");
  assert.equal(await graph.count(), 1);
  assert.ok(await graph.isVisible());
  const nodes = graph.getByTestId("graph-node");
  assert.ok((await nodes.count()) >= 4, "the alert, its two attributes, the address discovered");
  const kinds = await nodes.evaluateAll((els) => els.map((e) => e.dataset.kind));
  assert.ok(kinds.includes("alert"), `node kinds: ${kinds}`);
  const nodeText = (await graph.getByTestId("graph-node").locator("text").allTextContents()).join(" | ");
  assert.match(nodeText, /update-check\.example\.net/);
  assert.match(nodeText, /203\.0\.113\.50/, `the discovered address is drawn: ${nodeText}`);
  const labels = await graph.getByTestId("graph-edge").evaluateAll((els) => els.map((e) => e.dataset.label));
  assert.ok(labels.includes("threat-intel"), `a discovered attribute is labelled by its inspector: ${labels}`);
  for (const node of await nodes.all()) {
    const box = await node.boundingBox();
    assert.ok(box && box.width > 0 && box.height > 0, "every node is drawn");
  }

  // The timeline: opened, the arrival, inspections, the publication, the delivery.
  const rows = await timeline(page);
  assert.deepEqual(
    rows.map((r) => r.kind),
    ["opened", "arrival", "inspection", "inspection", "inspection", "publication", "delivery"],
  );
  assertOldestFirst(rows);

  // The raw JSON and the text rendering are links of this server.
  for (const id of ["link-json", "link-text"]) {
    const href = await page.getByTestId(id).getAttribute("href");
    assert.match(href, /^\//, `${id} is a path of this server`);
    const answer = await page.request.get(new URL(href, cfg.open).toString());
    assert.equal(answer.status(), 200, `${id} answers`);
  }
  assertQuiet(assert, seen);
  await page.close();
});

test("a re-reviewed report shows both versions, the previous verdict and both publications in time", async () => {
  const seen = await watchedPage(browser.context);
  const { page } = seen;
  await page.goto(`${cfg.open}/`);
  const row = page.getByTestId("report-row").filter({ hasText: "SSH brute force" });
  await Promise.all([page.waitForURL(/\/reports\//), row.getByTestId("report-link").click()]);
  assert.equal((await page.getByTestId("verdict-severity").textContent()).trim(), "urgent");
  assert.match(await page.getByTestId("previous-verdict").textContent(), /unclassified/);
  const versions = await page
    .getByTestId("version-row")
    .evaluateAll((els) => els.map((e) => [e.dataset.version, e.querySelector(".badge").textContent.trim()]));
  assert.deepEqual(versions, [
    ["2", "urgent"],
    ["1", "unclassified"],
  ]);
  const rows = await timeline(page);
  assertOldestFirst(rows);
  const kinds = rows.map((r) => r.kind);
  const at = (kind, n) => kinds.reduce((found, k, i) => (k === kind ? [...found, i] : found), [])[n];
  assert.equal(kinds.filter((k) => k === "arrival").length, 3, `three alerts: ${kinds}`);
  assert.equal(kinds.filter((k) => k === "publication").length, 2, `two versions: ${kinds}`);
  // v1 after the first two alerts, the third alert after v1, v2 after it, each delivered.
  assert.ok(at("arrival", 1) < at("publication", 0));
  assert.ok(at("publication", 0) < at("arrival", 2));
  assert.ok(at("arrival", 2) < at("publication", 1));
  assert.ok(at("publication", 1) < at("delivery", 1));
  assert.match(rows[at("publication", 0)].text, /version 1/);
  assert.match(rows[at("publication", 1)].text, /version 2/);
  assertQuiet(assert, seen);
  await page.close();
});

test("the pages read without JavaScript", async () => {
  const { context, close } = await launch();
  try {
    // A second context without script: the report list and a report still read.
    const page = await context.newPage();
    await page.route("**/static/pages.js", (route) => route.abort());
    await page.goto(`${cfg.open}/?severity=urgent`);
    const href = await page.getByTestId("report-link").first().getAttribute("href");
    await page.goto(new URL(href, cfg.open).toString());
    assert.ok((await page.locator("svg[data-testid=graph] [data-testid=graph-node]").count()) > 0);
    assert.ok((await page.getByTestId("event").count()) > 0);
  } finally {
    await close();
  }
});
