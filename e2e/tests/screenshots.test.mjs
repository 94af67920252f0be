// The README's screenshots: the list and a report at 1280x900, as PNG. Written to
// docs/screenshots/ with UPDATE_SCREENSHOTS=1, else to out/e2e/screenshots/ (so that
// `make test` never changes the tree).

import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";

import { launch, settings, VIEWPORT } from "../lib/browser.mjs";

const cfg = settings();
let browser;

before(async () => {
  browser = await launch();
  await mkdir(cfg.screenshots, { recursive: true });
});

after(async () => {
  await browser?.close();
});

/** Checks `file` is a PNG of the viewport's width. */
async function assertPng(file) {
  const bytes = await readFile(file);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} is a PNG`);
  assert.equal(bytes.readUInt32BE(16), VIEWPORT.width, `${file} is ${VIEWPORT.width} px wide`);
}

test("screenshot of the report list", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${cfg.open}/`);
  await page.getByTestId("reports").waitFor();
  const file = path.join(cfg.screenshots, "reports.png");
  await page.screenshot({ path: file, animations: "disabled", caret: "hide" });
  await assertPng(file);
  await page.close();
});

test("screenshot of a report", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${cfg.open}/?severity=urgent`);
  const row = page.getByTestId("report-row").filter({ hasText: "Malware beacon" });
  await page.goto(new URL(await row.getByTestId("report-link").getAttribute("href"), cfg.open).toString());
  await page.locator("svg[data-testid=graph]").waitFor();
  const file = path.join(cfg.screenshots, "report.png");
  await page.screenshot({ path: file, animations: "disabled", caret: "hide" });
  await assertPng(file);
  await page.close();
});
