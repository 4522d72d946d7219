// Real-browser test of the dashboard: Debian's chromium driven by
// playwright-core against a real fno_runner and a real fno_dashboard.
//
//   node dashboard.test.mjs --runner BIN --dashboard BIN --artifacts DIR [--docs-screenshot FILE]
//
// 1. fno_runner (fresh session) serves the page: a position it opened shows
//    within 3 s, and the iteration advances without a reload.
// 2. Stopping the runner (SIGINT, it saves) makes the page say its data is stale.
// 3. The runner restarted with --resume: the same page, not reloaded, shows
//    the saved book (symbols and iteration of the saved file) and a chart
//    that goes on from the first run.
// 4. fno_dashboard on the same state dir: "runner offline — last saved ...",
//    the runner's final Total Value and P&L to the paisa, and a chart that
//    holds both runs (also after fno_dashboard restarts).
// 5. fno_dashboard on a hand-written seed file whose names contain markup:
//    shown as text, nothing executed.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (e) {
  console.error(`FAIL: playwright-core is not installed in ${here}/node_modules: run scripts/bootstrap (or scripts/bootstrap-web) first`);
  process.exit(1);
}

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : def;
}
const abs = (p) => (p ? path.resolve(p) : p);
const runnerBin = abs(arg("--runner"));
const dashboardBin = abs(arg("--dashboard"));
const artifacts = abs(arg("--artifacts", fs.mkdtempSync(path.join(os.tmpdir(), "ts-browser-art-"))));
const docsShot = abs(arg("--docs-screenshot"));
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
for (const [n, p] of [["--runner", runnerBin], ["--dashboard", dashboardBin], ["chromium", chromiumPath]]) {
  if (!p || !fs.existsSync(p)) {
    console.error(`FAIL: ${n} not found (${p}); ${n === "chromium" ? "install Debian's chromium (scripts/bootstrap)" : "build it first"}`);
    process.exit(1);
  }
}
fs.mkdirSync(artifacts, { recursive: true });

const work = fs.mkdtempSync(path.join(os.tmpdir(), "ts-browser-"));
const procs = new Set();
const cleanup = [];
let browser;
const t0 = Date.now();
const log = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(2)}s] ${m}`);

function check(cond, msg) {
  if (!cond) throw new Error("check failed: " + msg);
  log("ok: " + msg);
}

async function freePort() {
  return await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function writeConfig(dir, port) {
  const f = path.join(dir, "config.toml");
  fs.writeFileSync(f, `[persistence]
backend = "json-files"
state_dir = "${dir.replaceAll("\\", "/")}/state"
auto_save_every = 2
fsync = false

[trading]
min_confidence = 0.5
check_interval = 300

[dashboard]
bind = "127.0.0.1"
port = ${port}
refresh_ms = 500

[display]
money_grouping = "indian"
`);
  return f;
}

function start(bin, args, name) {
  const out = fs.openSync(path.join(artifacts, `${name}.log`), "w");
  const p = spawn(bin, args, { stdio: ["ignore", out, out], cwd: work });
  p.exitPromise = new Promise((resolve) => {
    p.on("exit", (code, sig) => resolve({ code, sig }));
    p.on("error", (e) => { log(`${name} could not start: ${e.message}`); resolve({ code: -1, sig: null }); });
  });
  procs.add(p);
  p.exitPromise.then(() => procs.delete(p));
  log(`started ${name}: ${path.basename(bin)} ${args.join(" ")} (pid ${p.pid})`);
  return p;
}

async function stop(p, name) {
  p.kill("SIGINT");
  const timer = setTimeout(() => p.kill("SIGKILL"), 15000);
  const r = await p.exitPromise;
  clearTimeout(timer);
  log(`${name} exited: code ${r.code} signal ${r.sig}`);
  return r;
}

async function waitHealthy(port, proc, name, ms = 15000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (proc.exitCode !== null) throw new Error(`${name} exited early (code ${proc.exitCode}); see ${artifacts}/${name}.log`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/health`);
      if (r.ok) return await r.json();
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not answer on port ${port} within ${ms} ms`);
}

const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent));

try {
  const port = await freePort();
  const cfg = writeConfig(work, port);
  const stateDir = path.join(work, "state");

  // A fresh profile directory for every run.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ts-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    viewport: { width: 1280, height: 900 },
    // A browser far from India: the page must still show IST, 24-hour.
    timezoneId: "America/New_York",
    locale: "en-US",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  cleanup.push(() => fs.rmSync(profile, { recursive: true, force: true }));
  const page = browser.pages()[0] || await browser.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // ---- 1. live runner ------------------------------------------------------
  let runner = start(runnerBin, ["--config", cfg, "--fresh", "--interval-ms", "250", "--seed", "7"], "runner-1");
  await waitHealthy(port, runner, "runner-1");
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.evaluate(() => { window.__sameDocument = true; });
  // The moment the runner has opened a position (seen through the API)...
  let openedAt = 0;
  for (const until = Date.now() + 20000; Date.now() < until;) {
    const s = await (await fetch(`http://127.0.0.1:${port}/api/state`)).json();
    if (s.state && s.state.positions.length > 0) { openedAt = Date.now(); break; }
    await new Promise((r) => setTimeout(r, 20));
  }
  check(openedAt > 0, "the runner opened a position");
  // ...the open page shows it within 3 s.
  await page.waitForSelector("#positions tbody tr", { timeout: 3000 });
  log(`position visible on the page ${Date.now() - openedAt} ms after the runner opened it`);
  const firstSymbols = await texts(page, "#positions tbody tr td:first-child");
  check(firstSymbols.length > 0 && /^(NIFTY|BANKNIFTY)[0-9A-Z]+(CE|PE)$/.test(firstSymbols[0]),
    `a position opened by the runner is shown (${firstSymbols[0]})`);
  check(await page.textContent("#source-badge") === "live", "badge says live");
  const it1 = Number(await page.textContent("#iteration"));
  await page.waitForFunction((n) => Number(document.getElementById("iteration").textContent) > n, it1, { timeout: 5000 });
  const it2 = Number(await page.textContent("#iteration"));
  check(it2 > it1 && await page.evaluate(() => window.__sameDocument === true),
    `iteration advanced ${it1} -> ${it2} without a reload`);
  await page.waitForSelector("#chart canvas", { timeout: 3000 });
  check(await page.$eval("#chart-empty", (e) => e.hidden), "the equity chart is drawn");
  check(/₹[\d,]+\.\d\d/.test(await page.textContent("#total-value")), "total value is shown in rupees");
  // Times on the page are IST, 24-hour, with the zone, though this browser
  // is in New York: the "updated" clock is the IST wall clock of now.
  const updated = await page.textContent("#updated");
  const um = updated.match(/^updated (\d\d):(\d\d):(\d\d) IST$/);
  const istNow = new Date(Date.now() + 19800000);
  const minutesApart = um ? Math.abs(((Number(um[1]) * 60 + Number(um[2])) - (istNow.getUTCHours() * 60 + istNow.getUTCMinutes()) + 1440 + 720) % 1440 - 720) : 99;
  check(um !== null && minutesApart <= 1, `"${updated}" is the IST time of now (${istNow.toISOString().slice(11, 19)} IST)`);
  const entryShown = await page.textContent("#positions tbody tr td:nth-child(10)");
  check(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d IST$/.test(entryShown), `entry time "${entryShown}" is shown as IST, 24-hour`);
  // The chart's legend, under the cursor, names the point's time in IST too.
  const box = await page.$eval("#chart .u-over", (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
  await page.mouse.move(box.x + box.w * 0.9, box.y + box.h / 2);
  const pointTime = await page.textContent("#chart .u-legend .u-series:first-child .u-value");
  check(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d IST$/.test(pointTime), `the chart's point time "${pointTime}" is IST, 24-hour`);

  // ---- 2. runner stops: stale warning ----------------------------------------
  const r1 = await stop(runner, "runner-1");
  check(r1.code === 0, "runner saved and exited cleanly on SIGINT");
  await page.waitForSelector("#stale:not([hidden])", { timeout: 5000 });
  check((await page.textContent("#stale")).includes("stale"), "page warns that its data is stale");

  const saved = JSON.parse(fs.readFileSync(path.join(stateDir, "fno_system_state.json"), "utf8"));
  const savedSymbols = Object.keys(saved.portfolio.positions).sort();
  log(`saved: iteration ${saved.iteration}, positions ${savedSymbols.join(", ")}`);

  // ---- 3. restart with --resume: same page shows the resumed book ------------
  runner = start(runnerBin, ["--config", cfg, "--resume", "--interval-ms", "60000"], "runner-2");
  await waitHealthy(port, runner, "runner-2");
  // The resumed runner publishes the loaded state, then runs its next
  // iteration at once: the page must continue from the saved iteration
  // (not from 0) and show the saved positions with their original entry times.
  await page.waitForFunction((n) => {
    const it = Number(document.getElementById("iteration").textContent);
    return it >= n && it <= n + 2 && document.getElementById("stale").hidden;
  }, saved.iteration, { timeout: 5000 });
  const rows = await page.$$eval("#positions tbody tr", (trs) => trs.map((tr) =>
    ({ symbol: tr.children[0].textContent, entry: tr.children[9].textContent })));
  // Saved times are IST (+05:30, or no offset as the seed writes): the page
  // shows their date and time to the second, with the zone.
  const shownEntry = (iso) => {
    const m = String(iso).match(/^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?(\+05:30)?$/);
    return m ? `${m[1]} ${m[2]} IST` : `(not an IST time: ${iso})`;
  };
  const kept = rows.filter((r) => savedSymbols.includes(r.symbol));
  check(kept.length > 0 && kept.every((r) => r.entry === shownEntry(saved.portfolio.positions[r.symbol].entry_time)),
    `resumed page shows the saved book: ${kept.length} of ${savedSymbols.length} saved positions with their saved entry times, ` +
    `iteration ${await page.textContent("#iteration")} continuing from ${saved.iteration}`);
  const hist = await (await fetch(`http://127.0.0.1:${port}/api/history`)).json();
  check(hist.iteration.includes(saved.iteration), "the resumed runner published the loaded state itself");
  // The chart goes on from the first run: its equity curve was saved with
  // the session (runner.equity), every iteration while the session is short.
  const before = Array.from({ length: saved.iteration }, (_, i) => i + 1);
  check(before.every((i) => hist.iteration.includes(i)),
    `the resumed runner's chart holds the first run's points (iterations 1..${saved.iteration}; ` +
    `${hist.iteration.filter((i) => i <= saved.iteration).length} shown)`);
  check(await page.evaluate(() => window.__sameDocument === true), "still the same document (no reload)");
  await page.waitForSelector("#chart canvas", { timeout: 3000 });
  const shot = path.join(artifacts, "dashboard.png");
  await page.screenshot({ path: shot, fullPage: true });
  log(`screenshot: ${shot}`);
  if (docsShot) {
    fs.mkdirSync(path.dirname(docsShot), { recursive: true });
    fs.copyFileSync(shot, docsShot);
    log(`screenshot copied to ${docsShot}`);
  }
  const r2 = await stop(runner, "runner-2");
  check(r2.code === 0, "resumed runner exited cleanly");

  // ---- 4. fno_dashboard over the saved state: runner offline -----------------
  const dash = start(dashboardBin, ["--config", cfg], "fno_dashboard-1");
  await waitHealthy(port, dash, "fno_dashboard-1");
  await page.waitForSelector("#banner:not([hidden])", { timeout: 5000 });
  const banner = await page.textContent("#banner");
  check(banner.startsWith("Runner offline — last saved "), `offline banner: "${banner}"`);
  check(await page.textContent("#source-badge") === "saved state", "badge says saved state");
  const offlineSymbols = (await texts(page, "#positions tbody tr td:first-child")).sort();
  check(JSON.stringify(offlineSymbols) === JSON.stringify(savedSymbols), "fno_dashboard shows the same saved book");
  // The same money as the runner's final summary for this save, to the
  // paisa: the positions are valued at the marks saved with the session,
  // not at their entry prices, grouped as config.toml says (indian) by both.
  const saved2 = JSON.parse(fs.readFileSync(path.join(stateDir, "fno_system_state.json"), "utf8"));
  const marks = saved2.runner.last_prices || {};
  const moved = Object.keys(saved2.portfolio.positions).filter((k) =>
    marks[k] !== undefined && marks[k] !== saved2.portfolio.positions[k].entry_price);
  check(moved.length > 0, `the saved book has positions marked away from their entry price (${moved.length})`);
  const summary = fs.readFileSync(path.join(artifacts, "runner-2.log"), "utf8");
  const said = (label) => { const m = summary.match(new RegExp(`${label}: (-?₹[\\d,]+\\.\\d\\d)`)); return m ? m[1] : null; };
  await page.waitForFunction(() => document.getElementById("source-badge").textContent === "saved state", null, { timeout: 5000 });
  const pageValue = await page.textContent("#total-value");
  const pagePnl = await page.textContent("#total-pnl");
  check(/^-?₹\d{1,2}(,\d\d)*,\d{3}\.\d\d$/.test(said("Total Value") || ""),
    `the runner's console groups as config.toml says (indian): ${said("Total Value")}`);
  check(said("Total Value") !== null && pageValue === said("Total Value"),
    `fno_dashboard's total value ${pageValue} is the runner's ${said("Total Value")}`);
  check(said("Total P&L") !== null && pagePnl.replace(/^\+/, "") === said("Total P&L"),
    `fno_dashboard's P&L ${pagePnl} is the runner's ${said("Total P&L")}`);
  // fno_dashboard never saw the runner: its chart comes from the session.
  const dhist = await (await fetch(`http://127.0.0.1:${port}/api/history`)).json();
  check(before.every((i) => dhist.iteration.includes(i)) && dhist.iteration.includes(saved2.iteration),
    `fno_dashboard's chart holds both runs (iterations 1..${saved2.iteration}; ${dhist.iteration.length} points)`);
  await stop(dash, "fno_dashboard-1");
  // ...and after fno_dashboard itself restarts.
  const dashAgain = start(dashboardBin, ["--config", cfg], "fno_dashboard-1b");
  await waitHealthy(port, dashAgain, "fno_dashboard-1b");
  await page.waitForFunction((n) => Number(document.getElementById("iteration").textContent) === n, saved2.iteration, { timeout: 5000 });
  const dhist2 = await (await fetch(`http://127.0.0.1:${port}/api/history`)).json();
  check(JSON.stringify(dhist2.iteration) === JSON.stringify(dhist.iteration),
    `a restarted fno_dashboard shows the same chart (${dhist2.iteration.length} points)`);
  check(await page.$eval("#chart-empty", (e) => e.hidden), "the chart is drawn after the restart");
  const dashForShot = dashAgain;
  await page.screenshot({ path: path.join(artifacts, "dashboard-offline.png"), fullPage: true });
  await stop(dashForShot, "fno_dashboard-1b");

  // ---- 5. markup in names is shown as text ------------------------------------
  const evilDir = path.join(work, "evil");
  fs.mkdirSync(path.join(evilDir, "state"), { recursive: true });
  const evil = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";
  fs.writeFileSync(path.join(evilDir, "state", "fno_system_state.json"), JSON.stringify({
    timestamp: "2025-09-29T11:49:10.218268",
    trading_mode: "paper",
    iteration: 25,
    portfolio: {
      initial_cash: 1000000.0, cash: 914462.59,
      positions: {
        NIFTY25SEP24650CE: { shares: 75, entry_price: 220.42, stop_loss: 207.19, take_profit: 246.87,
          entry_time: "2025-09-29T11:49:10.204428", strategy: evil, sector: "F&O" },
      },
      trades_count: 5, total_pnl: 0.0,
    },
    configuration: { min_confidence: 0.65, check_interval: 300, max_positions: 5, capital_per_trade: 200000 },
  }, null, 2));
  const evilPort = await freePort();
  const evilCfg = writeConfig(evilDir, evilPort);
  const dash2 = start(dashboardBin, ["--config", evilCfg], "fno_dashboard-2");
  await waitHealthy(evilPort, dash2, "fno_dashboard-2");
  const page2 = await browser.newPage();
  page2.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page2.goto(`http://127.0.0.1:${evilPort}/`);
  await page2.waitForSelector("#positions tbody tr", { timeout: 3000 });
  const strategy = await page2.textContent("#positions tbody tr td:nth-child(2)");
  check(strategy === evil, "a strategy name with <script> and <img onerror> is shown as text");
  check(await page2.evaluate(() => window.__xss === undefined), "no injected script ran");
  check(await page2.$$eval("#positions img, #positions script", (e) => e.length) === 0, "no element was created from data");
  check(await page2.textContent("#cash") === "₹9,14,462.59", "seed file's cash shown exactly (₹9,14,462.59)");
  await stop(dash2, "fno_dashboard-2");

  check(consoleErrors.length === 0, `no script errors in the page (${consoleErrors.join("; ")})`);
  log("PASS");
  process.exitCode = 0;
} catch (e) {
  console.error("FAIL: " + (e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  for (const p of procs) p.kill("SIGKILL");
  fs.rmSync(work, { recursive: true, force: true });
  for (const c of cleanup) c();
}
