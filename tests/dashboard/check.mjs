// Drives the exporter's /dashboard in Debian's Chromium (playwright-core, no browser
// download) for tests/it/dashboard.rs, which starts the demo and compares the figures.
//
//   node check.mjs check URL TOKEN SCREENSHOT.png
//     Opens URL/dashboard?token=TOKEN, waits for the charts to draw from live data and
//     prints `{"event":"rendered"}`; then reads a report time (ms) on stdin, waits for the
//     page to show a newer report, prints `{"event":"values","values":{key: [value, text]},"report":{...}}`
//     (every `data-key` figure on the page: the report's figure and the text shown; and
//     the /api/report answer the page drew them from, as the browser received it), saves SCREENSHOT.png and SCREENSHOT-phone.png, checks
//     the token handling (address bar, reload, sign-in form) and prints
//     `{"event":"done",...}`. Any failed check exits 1 with the reason on stderr.
//   node check.mjs load URL TOKEN PAGES SECONDS
//     Opens PAGES dashboards polling every second for SECONDS and prints
//     `{"event":"load","polls":[...],"failures":N}`.
//
// The browser is $PLIMSOLL_CHROMIUM or /usr/bin/chromium.

import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [mode, base, token, ...rest] = process.argv.slice(2);
const executablePath = process.env.PLIMSOLL_CHROMIUM || "/usr/bin/chromium";
const say = (event) => console.log(JSON.stringify(event));
const fail = (why) => {
  throw new Error(why);
};
const check = (ok, why) => ok || fail(why);
// Every wait is bounded, so a broken page fails the test instead of hanging it.
const WAIT = { timeout: 20_000 };

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function readLine() {
  const { value, done } = await lines.next();
  check(!done, "stdin closed before the report time arrived");
  return value;
}

// The page's figures: `data-key` -> [`data-value` (the report's figure), the text shown].
const figures = (page) =>
  page.evaluate(() =>
    Object.fromEntries([...document.querySelectorAll("[data-key]")].map((e) => [e.dataset.key, [e.dataset.value, e.textContent.trim()]])),
  );

// Waits until the page has drawn its charts from at least `samples` polls.
async function rendered(page, samples) {
  await page.waitForFunction(
    (n) => Number(document.body.dataset.samples) >= n && Number(document.querySelector("#traffic .chart")?.dataset.points) >= 2,
    samples,
    WAIT,
  );
}

async function checkMode(screenshot) {
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const origin = new URL(base).origin;
    const foreign = [];
    const errors = [];
    context.on("request", (r) => new URL(r.url()).origin !== origin && foreign.push(r.url()));
    page.on("pageerror", (e) => errors.push(String(e)));

    // The reports the page received, by time, to hand the one it drew to the test.
    const reports = new Map();
    page.on("response", async (r) => {
      if (r.url().endsWith("/api/report") && r.ok()) {
        const report = await r.json();
        reports.set(report.time_ms, report);
      }
    });

    const first = await page.goto(`${base}/dashboard?token=${encodeURIComponent(token)}`, WAIT);
    check(first.status() === 200, `/dashboard?token= answered ${first.status()}`);
    await rendered(page, 3);
    check(!page.url().includes("token"), `the token stayed in the address bar: ${page.url()}`);
    const kept = await page.evaluate(() => sessionStorage.getItem("plimsoll-token"));
    check(kept === token, "the tab did not keep the token");
    say({ event: "rendered" });

    const after = Number(await readLine());
    await page.waitForFunction(
      (t) => Number(document.querySelector('[data-key="time_ms"]')?.dataset.value) > t,
      after,
      WAIT,
    );
    const values = await figures(page);
    const report = reports.get(Number(values.time_ms[0]));
    check(report, `the page shows a report from ${values.time_ms[0]} that it did not receive`);
    say({ event: "values", values, report });
    await page.screenshot({ path: screenshot, fullPage: true });

    // A phone: the page fits its width (tables scroll inside their cards).
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(400);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `on a 390 px screen the page is ${overflow} px too wide`);
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    // A reload carries no token; the sign-in page fetches the page with the kept one.
    const reload = await page.reload(WAIT);
    check(reload.status() === 401, `a reload without the token answered ${reload.status()}`);
    await rendered(page, 2);
    check(!page.url().includes("token"), "the reload put the token in the address bar");

    // A new tab has no token: the sign-in form, which refuses a wrong one and takes the right one.
    const fresh = await (await browser.newContext()).newPage();
    const signIn = await fresh.goto(`${base}/dashboard`, WAIT);
    check(signIn.status() === 401, `/dashboard without the token answered ${signIn.status()}`);
    await fresh.fill("#token", `${token}-wrong`);
    await Promise.all([fresh.waitForNavigation(WAIT), fresh.click("button")]);
    await fresh.waitForFunction(() => document.getElementById("note")?.textContent.includes("refused"), null, WAIT);
    check(!fresh.url().includes("token"), "a refused token stayed in the address bar");
    await fresh.fill("#token", token);
    await Promise.all([fresh.waitForNavigation(WAIT), fresh.click("button")]);
    await rendered(fresh, 2);
    check(!fresh.url().includes("token"), "the signed-in page kept the token in the address bar");

    check(foreign.length === 0, `the page reached beyond its origin: ${foreign.join(", ")}`);
    check(errors.length === 0, `the page threw: ${errors.join("; ")}`);
    say({ event: "done", screenshot });
  } finally {
    await browser.close();
  }
}

async function loadMode(pages, seconds) {
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const polls = [];
    let failures = 0;
    const tabs = [];
    for (let i = 0; i < pages; i++) {
      const page = await context.newPage();
      polls.push(0);
      page.on("response", (r) => {
        if (!r.url().endsWith("/api/report")) return;
        if (r.status() === 200) polls[i]++;
        else failures++;
      });
      tabs.push(page);
    }
    await Promise.all(tabs.map((page) => page.goto(`${base}/dashboard?interval=1&token=${encodeURIComponent(token)}`, WAIT)));
    await new Promise((done) => setTimeout(done, seconds * 1000));
    say({ event: "load", polls, failures });
  } finally {
    await browser.close();
  }
}

try {
  if (mode === "check") await checkMode(rest[0]);
  else if (mode === "load") await loadMode(Number(rest[0]), Number(rest[1]));
  else fail(`unknown mode ${mode}; see the comment at the top of check.mjs`);
  process.exit(0);
} catch (error) {
  console.error(error.stack || String(error));
  process.exit(1);
}
