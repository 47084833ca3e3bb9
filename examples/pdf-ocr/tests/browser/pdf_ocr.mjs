// Drives the PDF OCR page in headless Chromium (playwright-core, the system's chromium).
//
//   node pdf_ocr.mjs <base-url> <pdf-path> <pages> <screenshot-dir>
//
// Run by examples/pdf-ocr/tests/browser.rs, which starts the server and makes the PDF.
// Scenarios: a plain upload (progress bar to 100 %, completion text, one log line per page);
// an upload whose stream the page drops after a few events (it re-attaches with Last-Event-ID
// and still shows every page once); a wrong token (the error is shown).
// Exits non-zero on the first failed check.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

// playwright-core from the examples' shared setup (examples/browser/), named by PLAYWRIGHT_DIR.
const { chromium } = createRequire(join(process.env.PLAYWRIGHT_DIR || ".", "package.json"))("playwright-core");

const [base, pdfPath, pagesArg, shotDir] = process.argv.slice(2);
if (!base || !pdfPath || !pagesArg || !shotDir) {
  console.error("usage: node pdf_ocr.mjs <base-url> <pdf-path> <pages> <screenshot-dir>");
  process.exit(2);
}
const pages = Number(pagesArg);
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const STEP_TIMEOUT = 30_000;
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

async function openPage(query = "") {
  const page = await browser.newPage({ viewport: { width: 960, height: 1000 } });
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") console.log(`[page console] ${m.text()}`);
  });
  const res = await page.goto(`${base}/${query}`);
  assert.equal(res.status(), 200, "the page loads");
  return page;
}

async function uploadAndWait(page, title) {
  await page.fill("#title", title);
  await page.fill("#author", "Headless Chromium");
  await page.setInputFiles("#file", pdfPath);
  await page.click("#submit");
  await page.waitForFunction(
    () => /^(Completed|Error)/.test(document.getElementById("result").textContent),
  );
  return {
    result: await page.textContent("#result"),
    bar: await page.$eval("#bar", (b) => b.value),
    pct: await page.textContent("#pct"),
    engine: await page.textContent("#engine"),
    job: await page.textContent("#job"),
    reattaches: Number(await page.textContent("#reattaches")),
    logPages: await page.$$eval("#log li[data-page]", (lis) => lis.map((li) => Number(li.dataset.page))),
  };
}

const expectedPages = Array.from({ length: pages }, (_, i) => i + 1);

try {
  // 1. A plain upload.
  {
    const page = await openPage();
    const s = await uploadAndWait(page, "Browser Book");
    console.log("plain upload:", JSON.stringify(s));
    assert.match(s.result, /^Completed: book #\d+ “Browser Book” by Headless Chromium, \d+ pages/);
    assert.ok(s.result.includes(`${pages} pages`), s.result);
    assert.equal(s.bar, 100, "progress bar at 100 %");
    assert.equal(s.pct, "100%");
    assert.match(s.job, /^job-/);
    assert.ok(["tesseract", "text-layer"].includes(s.engine), s.engine);
    assert.deepEqual(s.logPages, expectedPages, "one log line per page, in order");
    const shot = join(shotDir, "pdf_ocr.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    await page.close();
  }

  // 2. The stream breaks after 4 events: the page re-attaches and misses nothing.
  {
    const page = await openPage("?drop_after=4");
    const s = await uploadAndWait(page, "Resumed Book");
    console.log("dropped stream:", JSON.stringify(s));
    assert.match(s.result, /^Completed: book #\d+ “Resumed Book”/);
    assert.ok(s.reattaches >= 1, "re-attached at least once");
    assert.equal(s.bar, 100);
    assert.deepEqual(s.logPages, expectedPages, "every page once after re-attaching");
    const shot = join(shotDir, "pdf_ocr_resumed.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    await page.close();
  }

  // 3. A wrong token: the refusal is shown.
  {
    const page = await openPage();
    await page.fill("#token", "not-a-token");
    const s = await uploadAndWait(page, "Refused");
    console.log("wrong token:", JSON.stringify(s));
    assert.match(s.result, /^Error: Authentication failed/);
    assert.equal(s.bar, 0);
    await page.close();
  }

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  console.log("browser: 3 passed, 0 failed");
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
