// What the pages once got wrong, found by these tests and fixed: each stays to keep
// it fixed.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { VIEWPORT, launch, settings } from "../lib/browser.mjs";
import { size } from "../lib/pages.mjs";

const cfg = settings();
let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test(
  "a long unbroken alert description wraps: the report is no wider than the window",
  async () => {
    const page = await browser.context.newPage();
    await page.goto(`${cfg.open}/`);
    const row = page.getByTestId("report-row").filter({ hasText: "e2e-hostile" });
    await page.goto(new URL(await row.getByTestId("report-link").getAttribute("href"), cfg.open).toString());
    const s = await size(page);
    await page.close();
    assert.ok(s.width <= VIEWPORT.width, `the page is ${s.width} px wide in a ${VIEWPORT.width} px window`);
  },
);

test(
  "the browser's request for /favicon.ico is answered (no 404 in the console of every page)",
  async () => {
    const page = await browser.context.newPage();
    const answer = await page.request.get(`${cfg.open}/favicon.ico`);
    await page.close();
    assert.notEqual(answer.status(), 404);
  },
);
