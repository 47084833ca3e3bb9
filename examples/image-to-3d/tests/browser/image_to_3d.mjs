// Drives the image-to-3D page in headless Chromium (playwright-core, the system's chromium).
//
//   node image_to_3d.mjs <base-url> <screenshot-dir> <expected-json> <file>...
//
// Run by examples/image-to-3d/tests/browser.rs, which starts the server and writes the files.
// <expected-json> maps each file's name to {status, vertices?, triangles?}.
// Scenarios: a plain upload (every file reaches its end state, per-file progress to 100 %, the
// non-image fails alone, the page parses each .glb and shows its counts); an upload whose stream
// the page drops after a few events (it fetches a new stream token, resumes with lastEventId
// and still ends right); a wrong API key (the refusal is shown).
// Exits non-zero on the first failed check.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join } from "node:path";

// playwright-core from the examples' shared setup (examples/browser/), named by PLAYWRIGHT_DIR.
const { chromium } = createRequire(join(process.env.PLAYWRIGHT_DIR || ".", "package.json"))("playwright-core");

const [base, shotDir, expectedArg, ...filePaths] = process.argv.slice(2);
if (!base || !shotDir || !expectedArg || filePaths.length === 0) {
  console.error("usage: node image_to_3d.mjs <base-url> <screenshot-dir> <expected-json> <file>...");
  process.exit(2);
}
const expected = JSON.parse(expectedArg);
const executablePath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const STEP_TIMEOUT = 30_000;
mkdirSync(shotDir, { recursive: true });

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

const pageErrors = [];

async function openPage(query = "") {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error" && !/401|Unauthorized/.test(m.text())) console.log(`[page console] ${m.text()}`);
  });
  const res = await page.goto(`${base}/${query}`);
  assert.equal(res.status(), 200, "the page loads");
  return page;
}

/** Uploads every file and waits for the task's end and every model's preview. */
async function uploadAndWait(page) {
  await page.setInputFiles("#file", filePaths);
  await page.click("#upload");
  await page.waitForFunction(() => /^(Completed|Failed)/.test(document.getElementById("result").textContent));
  const models = Object.values(expected).filter((e) => e.status === "completed").length;
  await page.waitForFunction((n) => document.querySelectorAll(".card[data-vertices]").length === n, models);
  return {
    result: await page.textContent("#result"),
    bar: await page.$eval("#bar", (b) => b.dataset.value),
    reconnects: Number(await page.textContent("#reconnects")),
    lastSeq: Number(await page.textContent("#lastseq")),
    cards: await page.$$eval(".card", (cards) => cards.map((c) => ({
      name: c.querySelector(".name").textContent,
      status: c.dataset.status,
      progress: Number(c.dataset.progress),
      vertices: c.dataset.vertices ? Number(c.dataset.vertices) : undefined,
      triangles: c.dataset.triangles ? Number(c.dataset.triangles) : undefined,
      download: Boolean(c.querySelector("button[data-url]")),
      message: c.querySelector(".msg").textContent,
    }))),
  };
}

function checkCards(s) {
  assert.equal(s.cards.length, filePaths.length, "one card per file");
  for (const c of s.cards) {
    const e = expected[c.name];
    assert.ok(e, `unexpected card ${c.name}`);
    assert.equal(c.status, e.status, `${c.name}: ${c.message}`);
    assert.equal(c.progress, 100, `${c.name} progress reaches 100`);
    if (e.status === "completed") {
      assert.equal(c.vertices, e.vertices, `${c.name}: vertices in the parsed .glb`);
      assert.equal(c.triangles, e.triangles, `${c.name}: triangles in the parsed .glb`);
      assert.ok(c.download, `${c.name} has a download button`);
    } else {
      assert.match(c.message, /failed: /, `${c.name} says why it failed`);
    }
  }
  assert.equal(s.bar, "100", "overall progress at 100 %");
}

const okCount = Object.values(expected).filter((e) => e.status === "completed").length;

try {
  // 1. A plain upload.
  {
    const page = await openPage();
    const s = await uploadAndWait(page);
    console.log("plain upload:", JSON.stringify(s));
    assert.match(s.result, new RegExp(`^Completed: ${okCount} of ${filePaths.length} models ready`));
    checkCards(s);
    // The download button fetches the model with the API key header.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(".card.completed button")]);
    assert.match(download.suggestedFilename(), /\.glb$/);
    const shot = join(shotDir, "image_to_3d.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    await page.close();
  }

  // 2. The stream drops after 6 events: a new token, a resume after the last sequence.
  {
    const page = await openPage("?drop_after=6");
    const s = await uploadAndWait(page);
    console.log("dropped stream:", JSON.stringify(s));
    assert.ok(s.reconnects >= 1, "reconnected at least once");
    assert.match(s.result, /^Completed: /);
    checkCards(s);
    const shot = join(shotDir, "image_to_3d_resumed.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    await page.close();
  }

  // 3. A wrong API key: the refusal is shown, no task starts.
  {
    const page = await openPage();
    await page.fill("#apikey", "wrong-key");
    await page.setInputFiles("#file", filePaths.slice(0, 1));
    await page.click("#upload");
    await page.waitForFunction(() => document.getElementById("err").textContent.length > 0);
    const err = await page.textContent("#err");
    console.log("wrong key:", err);
    assert.match(err, /^Upload refused \(401\): unknown API key/);
    assert.equal(await page.$eval("#task", (t) => t.hidden), true);
    await page.close();
  }

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  console.log(`browser: 3 passed, 0 failed (${filePaths.map((p) => basename(p)).join(", ")})`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
