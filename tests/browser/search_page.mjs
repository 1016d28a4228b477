// The search page as a person uses it, in headless Chromium: pick an image, type what to change, search,
// and see the results grid. Checks what the page shows against what the API answers for the same query:
// the same items in the same order, their scores printed, every image loaded.
//
//   node tests/browser/search_page.mjs build/mmlearn [SCREENSHOT.png]
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [cli, screenshot] = process.argv.slice(2);
if (!cli) throw new Error("usage: search_page.mjs MMLEARN_CLI [SCREENSHOT.png]");
const work = mkdtempSync(join(tmpdir(), "mmlearn-browser-"));
const path = (p) => join(work, p);
const mmlearn = (...args) => execFileSync(cli, ["--quiet", ...args], { stdio: ["ignore", "pipe", "inherit"] });

let server = null;
let browser = null;
function check(condition, message) {
  if (!condition) throw new Error(message);
}

try {
  // A shapes index, a CLIP trained for a few steps and a combiner over it: what the page searches.
  mmlearn("data", "shapes", "--out", path("shapes"), "--train", "64", "--test", "24", "--seed", "7");
  mmlearn("data", "shapes", "--task", "edit", "--out", path("edit"), "--train", "64", "--test", "8", "--seed", "7");
  mmlearn("train", "--preset", "clip-tiny", "--data", path("shapes"), "--out", path("clip"), "--steps", "2",
          "--batch-size", "16");
  mmlearn("train", "--task", "composed", "--init-from", path("clip"), "--data", path("edit"), "--out", path("comp"),
          "--steps", "4", "--batch-size", "16");
  mmlearn("index", "build", "--model", path("clip"), "--data", path("shapes/test.jsonl"), "--out", path("idx"));

  server = spawn(cli, ["--quiet", "serve", "--model", path("comp"), "--index", path("idx"), "--port", "0", "--json"],
                 { stdio: ["ignore", "pipe", "inherit"] });
  const ready = await new Promise((resolve, reject) => {
    server.on("exit", (code) => reject(new Error("the server exited with " + code)));
    createInterface({ input: server.stdout }).once("line", (line) => resolve(JSON.parse(line)));
  });

  const image = path("shapes/images/test/000003.png");
  const change = "make the star blue";
  const k = 6;
  const api = await fetch(ready.url + "/v1/search", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ image: readFileSync(image).toString("base64"), text: change, k }),
  }).then((r) => r.json());
  check(api.results && api.results.length === k, "the API answered " + JSON.stringify(api));

  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("requestfailed", (r) => problems.push("request failed: " + r.url()));
  await page.goto(ready.url + "/");
  await page.waitForFunction(() => document.getElementById("status").textContent === "ready");
  check((await page.locator("#index option").count()) === 1, "the page lists no index");

  await page.setInputFiles("#image", image);
  await page.locator("#image-preview").waitFor({ state: "visible" });
  await page.fill("#text", change);
  await page.fill("#k", String(k));
  await page.click("#search");
  await page.waitForFunction((n) => document.querySelectorAll("#results .hit").length === n, k);
  await page.waitForFunction(() => [...document.querySelectorAll("#results img")].every((i) => i.complete));

  const shown = await page.$$eval("#results .hit", (cards) => cards.map((card) => ({
    key: card.dataset.key,
    score: card.querySelector(".score").textContent,
    text: card.querySelector(".text").textContent,
    loaded: card.querySelector("img") !== null && card.querySelector("img").naturalWidth > 0,
  })));
  api.results.forEach((hit, i) => {
    const card = shown[i];
    check(card.key === hit.key, `result ${i + 1} shows ${card.key}, the API ranks ${hit.key} there`);
    check(card.score === `#${i + 1}  ${hit.score.toFixed(3)}`, `result ${i + 1} shows the score "${card.score}"`);
    check(card.text === hit.record.text, `result ${i + 1} shows the text "${card.text}"`);
    check(card.loaded, `result ${i + 1}'s image did not load`);
  });
  const status = await page.textContent("#status");
  check(/^6 results in \d+ ms$/.test(status), `the status line reads "${status}"`);

  // A bad query is said on the page, and the page keeps working.
  await page.click("#image-clear");
  await page.fill("#text", "");
  await page.click("#search");
  await page.waitForFunction(() => document.getElementById("status").className === "error");
  check((await page.textContent("#status")).includes("needs a query"), "the page does not say what was wrong");
  check(problems.length === 0, "the page reported: " + problems.join("; "));
  if (screenshot) {
    await page.fill("#text", change);
    await page.setInputFiles("#image", image);
    await page.click("#search");
    await page.waitForFunction((n) => document.querySelectorAll("#results .hit").length === n, k);
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  console.log(`1 passed, 0 failed: the page shows the API's ${k} results for a composed query`);
} finally {
  if (browser) await browser.close();
  if (server) server.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}
