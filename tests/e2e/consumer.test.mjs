// The npm packages as a consumer gets them: the apps under examples/ (installed from the
// `npm pack` tarballs and built by scripts/consumer.sh) run in Chromium against the reference
// server. The test builds use card-relay-simulator and run the seed session (seed.md: five
// card APDUs); the production builds must load the production package's wasm module the way
// the bundler (or the browser, without one) finds it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { startServer, launchBrowser, root } from "./harness.mjs";

const VITE_DIST = path.join(root, "examples/vite-app/dist");
const VITE_TEST = path.join(root, "examples/vite-app/dist-test");
const PLAIN = path.join(root, "examples/plain-page");

let browser;

before(async () => {
  for (const dir of [VITE_DIST, VITE_TEST, path.join(PLAIN, "node_modules/card-relay")]) {
    assert.ok(existsSync(dir), `${dir} is missing: run scripts/consumer.sh first`);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** Serves `www` with the reference server, opens `page` and returns what it showed. */
async function open(www, page, { waitFor }) {
  const server = await startServer({ args: ["--www", www] });
  const tab = await browser.newPage();
  const errors = [];
  tab.on("pageerror", (e) => errors.push(e.message));
  // A missing favicon is the browser's own request, not the app's.
  tab.on("console", (m) => m.type() === "error" && !/404/.test(m.text()) && errors.push(m.text()));
  const wasm = [];
  tab.on("response", (r) => {
    if (r.url().endsWith(".wasm")) wasm.push(r);
    if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) errors.push(`${r.status()} ${r.url()}`);
  });
  try {
    await tab.goto(new URL(page, server.url).href);
    await tab.waitForFunction(waitFor, null, { timeout: 30_000 });
    return {
      status: await tab.textContent("#status"),
      result: await tab.$eval("#result", (el) => ({ ...el.dataset, text: el.textContent })),
      trace: await tab.textContent("#trace"),
      errors,
      wasm: wasm.map((r) => ({ url: new URL(r.url()).pathname, type: r.headers()["content-type"] })),
    };
  } finally {
    await tab.close();
    await server.stop();
  }
}

const ended = () => ["passed", "failed"].includes(document.getElementById("result").dataset.status);
const loaded = () => /loaded$/.test(document.getElementById("status").textContent);

function assertSeedSession(run) {
  assert.deepEqual(run.errors, []);
  assert.match(run.status, /^card-relay \d+\.\d+\.\d+ loaded$/);
  assert.equal(run.result.status, "passed", `${run.result.text}\n${run.trace}`);
  assert.equal(run.result.apdus, "5", run.trace);
  // The seed's first and last card commands (seed.md), in order.
  const first = run.trace.indexOf("C: 00 20 00 81 - VERIFY");
  const select = run.trace.indexOf("C: 00 A4 04 04 - SELECT Lc=11");
  assert.ok(first >= 0 && select > first, run.trace);
  assert.equal(run.wasm.length, 1, "one wasm module is fetched");
}

test("Vite app (test build, card-relay-simulator): the seed session passes", { timeout: 60_000 }, async () => {
  const run = await open(VITE_TEST, "test.html", { waitFor: ended });
  assertSeedSession(run);
  // Vite emitted the module as a hashed asset of its own (no copy step).
  assert.match(run.wasm[0].url, /^\/assets\/card_relay_bg-[\w-]+\.wasm$/);
  assert.equal(run.wasm[0].type, "application/wasm");
});

test("Vite app (production build): loads the production package's wasm", { timeout: 60_000 }, async () => {
  const run = await open(VITE_DIST, "index.html", { waitFor: loaded });
  assert.deepEqual(run.errors, []);
  assert.match(run.status, /^card-relay \d+\.\d+\.\d+ loaded$/);
  assert.match(run.wasm[0].url, /^\/assets\/card_relay_bg-[\w-]+\.wasm$/);
  // The production bundle has the real package: no simulated reader in it.
  const assets = readdirSync(path.join(VITE_DIST, "assets"));
  const js = assets.filter((f) => f.endsWith(".js"));
  assert.ok(js.length >= 1);
  for (const f of js) {
    const code = readFileSync(path.join(VITE_DIST, "assets", f), "utf8");
    assert.ok(!code.includes("createSimulatedReader"), `${f} carries the simulator`);
  }
  const wasmFiles = assets.filter((f) => f.endsWith(".wasm"));
  const prodWasm = readFileSync(path.join(root, "pkg/card_relay_bg.wasm"));
  assert.deepEqual(wasmFiles.map((f) => readFileSync(path.join(VITE_DIST, "assets", f)).length), [prodWasm.length]);
});

test("plain page (no bundler, test.html): the seed session passes", { timeout: 60_000 }, async () => {
  const run = await open(PLAIN, "test.html", { waitFor: ended });
  assertSeedSession(run);
  assert.equal(run.wasm[0].url, "/node_modules/card-relay-simulator/card_relay_bg.wasm");
});

test("plain page (no bundler, production package): loads its wasm", { timeout: 60_000 }, async () => {
  const run = await open(PLAIN, "index.html", { waitFor: loaded });
  assert.deepEqual(run.errors, []);
  assert.match(run.status, /^card-relay \d+\.\d+\.\d+ loaded$/);
  assert.deepEqual(run.wasm.map((w) => w.url), ["/node_modules/card-relay/card_relay_bg.wasm"]);
});
