// Drives a minimal example's page (axum-minimal, actix-minimal, hyper-minimal: the same page)
// in headless Chromium: click "Start a job", wait for the progress bar at 100 and "completed".
//
//   node minimal_page.mjs <base-url> <screenshot-dir> <name>
//
// playwright-core is loaded from PLAYWRIGHT_DIR (this directory, the examples' shared setup).
// Exits non-zero on the first failed check.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const { chromium } = createRequire(join(process.env.PLAYWRIGHT_DIR || ".", "package.json"))("playwright-core");

const [base, shotDir, name] = process.argv.slice(2);
if (!base || !shotDir || !name) {
  console.error("usage: node minimal_page.mjs <base-url> <screenshot-dir> <name>");
  process.exit(2);
}
mkdirSync(shotDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  await page.click("#start");
  await page.waitForFunction(() => document.getElementById("state").textContent === "completed",
    null, { timeout: 15_000 });
  assert.equal(await page.$eval("#bar", (b) => b.value), 100);
  await page.screenshot({ path: join(shotDir, `${name}.png`) });
  console.log(`${name}: the page reached 100 % and completed`);
} finally {
  await browser.close();
}
