// Drives the resume screener's page in headless Chromium (playwright-core, the system's chromium).
//
//   node resume_screener.mjs <base-url> <files-dir> <screenshot-dir>
//
// Run by examples/resume-screener/tests/browser.rs, which starts the server and writes the files
// (strong.pdf, medium.txt, unrelated.pdf, corrupt.pdf). playwright-core is loaded from the
// directory named by PLAYWRIGHT_DIR (the examples' shared setup in examples/browser/).
// Scenario: two tabs of the same user; the first submits a batch with the file picker; both
// watch the per-file progress reach the end and show the same ranking; the corrupt PDF fails
// alone; "Clear progress" resets both tabs. Exits non-zero on the first failed check.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const [base, filesDir, shotDir] = process.argv.slice(2);
if (!base || !filesDir || !shotDir) {
  console.error("usage: node resume_screener.mjs <base-url> <files-dir> <screenshot-dir>");
  process.exit(2);
}
const require = createRequire(join(process.env.PLAYWRIGHT_DIR || ".", "package.json"));
const { chromium } = require("playwright-core");
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const STEP_TIMEOUT = 20_000;
mkdirSync(shotDir, { recursive: true });

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const pageErrors = [];

async function openTab(context) {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1000, height: 1300 });
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") console.log(`[page console] ${m.text()}`);
  });
  const res = await page.goto(`${base}/`);
  assert.equal(res.status(), 200, "the page loads");
  await page.waitForFunction(() => document.getElementById("conn").dataset.state === "open");
  assert.equal(await page.textContent("#user"), "alice");
  return page;
}

async function snapshot(page) {
  return {
    status: await page.textContent("#status"),
    count: await page.textContent("#count"),
    bar: await page.$eval("#bar", (b) => [b.value, b.max]),
    files: await page.$$eval("#file-rows tr", (trs) =>
      trs.map((tr) => [tr.children[1].textContent, tr.dataset.status])),
    ranking: await page.$$eval("#result-rows tr", (trs) => trs.map((tr) => tr.dataset.file)),
    summary: await page.textContent("#summary"),
    events: Number(await page.textContent("#events")),
  };
}

const files = ["strong.pdf", "medium.txt", "unrelated.pdf", "corrupt.pdf"];

try {
  const context = await browser.newContext();
  const tab1 = await openTab(context);
  const tab2 = await openTab(context);

  await tab1.fill("#description",
    "Senior Rust engineer: Tokio, axum, PostgreSQL, Kubernetes and Server-Sent Events.");
  await tab1.setInputFiles("#files", files.map((f) => join(filesDir, f)));
  assert.equal(await tab1.$$eval("#chosen li", (lis) => lis.length), files.length);
  await tab1.click("#submit");

  // Per-file progress, mid-batch, in the other tab too.
  await tab2.waitForFunction(() =>
    [...document.querySelectorAll("#file-rows tr")].some((tr) => tr.dataset.status === "processing"));
  const mid = await snapshot(tab2);
  console.log("mid-batch (tab 2):", JSON.stringify(mid));
  assert.equal(mid.status, "processing");
  await tab2.screenshot({ path: join(shotDir, "resume_screener_progress.png"), fullPage: true });

  for (const tab of [tab1, tab2]) {
    await tab.waitForFunction(() => document.getElementById("status").textContent === "completed");
  }
  const a = await snapshot(tab1);
  const b = await snapshot(tab2);
  console.log("done (tab 1):", JSON.stringify(a));
  console.log("done (tab 2):", JSON.stringify(b));
  assert.equal(a.count, "4 / 4");
  assert.deepEqual(a.bar, [4, 4], "progress bar at the end");
  assert.deepEqual(a.files, [
    ["strong.pdf", "done"],
    ["medium.txt", "done"],
    ["unrelated.pdf", "done"],
    ["corrupt.pdf", "failed"],
  ]);
  assert.deepEqual(a.ranking, ["strong.pdf", "medium.txt", "unrelated.pdf"]);
  assert.match(a.summary, /^3 ranked, 1 failed/);
  assert.equal(await tab1.textContent("#error"), "", "no error shown");
  // Both tabs received every update: 1 accepted + 2 per file + 1 completed.
  assert.equal(a.events, 1 + 2 * files.length + 1);
  assert.deepEqual({ ...b }, { ...a }, "the second tab shows the same state");

  const shot = join(shotDir, "resume_screener.png");
  await tab1.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);

  // The status endpoint, from the page.
  await tab1.click("#check");
  await tab1.waitForFunction(() => document.getElementById("status-json").textContent.includes("completed"));

  // A bad batch shows its error and changes nothing.
  await tab1.click("#reset-files");
  await tab1.setInputFiles("#files", [join(filesDir, "photo.png")]);
  await tab1.click("#submit");
  await tab1.waitForFunction(() => document.getElementById("error").textContent.startsWith("Error 415"));
  assert.equal(await tab1.textContent("#status"), "completed");

  // Clear: both tabs are reset and re-attach to a fresh stream.
  await tab1.click("#clear");
  for (const tab of [tab1, tab2]) {
    await tab.waitForFunction(() =>
      document.getElementById("status").textContent === "idle"
      && document.querySelectorAll("#file-rows tr").length === 0
      && document.getElementById("conn").dataset.state === "open");
  }
  await tab2.screenshot({ path: join(shotDir, "resume_screener_cleared.png"), fullPage: true });

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  console.log("browser: resume screener passed");
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
