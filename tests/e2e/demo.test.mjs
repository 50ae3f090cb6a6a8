// The demo page end to end: headless Chromium, the reference server, the simulated reader.
// Each run goes through a deep link; the outcome is read from #result and #trace.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { startServer, launchBrowser, root } from "./harness.mjs";
import { assertSeedTrace } from "./seed-trace.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens a deep link and waits for the run to end; returns { page, status, apdus, code, trace, bodies }. */
async function runDemo(query, { whileRunning } = {}) {
  const page = await browser.newPage();
  const errors = [];
  const bodies = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => {
    if (r.method() === "POST") bodies.push(r.postDataBuffer() ?? Buffer.alloc(0));
  });
  await page.goto(`${server.url}?${query}`);
  if (whileRunning) await whileRunning(page);
  await page.waitForFunction(
    () => ["passed", "failed"].includes(document.getElementById("result").dataset.status),
    null,
    { timeout: 30_000 },
  );
  const result = await page.$eval("#result", (el) => ({ ...el.dataset }));
  const trace = await page.textContent("#trace");
  assert.deepEqual(errors, [], "no uncaught errors in the page");
  return { page, ...result, trace, bodies };
}

test("the seed session reproduces the seed's trace", { timeout: 60_000 }, async () => {
  const run = await runDemo("reader=simulator&card=seed&url=/rt/test&autorun=1");
  assert.equal(run.status, "passed", run.trace);
  assert.equal(run.apdus, "5");
  const lines = run.trace.split("\n");
  assert.match(lines[0], /^Connecting to http:\/\/127\.0\.0\.1:\d+\/rt\/test$/);
  assert.ok(lines.includes("Notification 0: Test"), "notifications reach the page");
  assert.equal(lines.at(-1), "Update complete");
  assertSeedTrace(run.trace);
  mkdirSync(path.join(root, "test-results"), { recursive: true });
  await run.page.screenshot({ path: path.join(root, "test-results/demo-seed.png"), fullPage: true });
  await run.page.close();
});

test("a GlobalPlatform Amd B session", { timeout: 60_000 }, async () => {
  const run = await runDemo("reader=simulator&card=seed&url=/rt/gp-test&dialect=gp&autorun=1");
  assert.equal(run.status, "passed", run.trace);
  assert.ok(Number(run.apdus) >= 2, run.trace);
  assert.match(run.trace, /Update complete$/);
  await run.page.close();
});

for (const [status, code] of [["500", "server-error"], ["504", "server-error"], ["404", "server-error"]]) {
  test(`server ${status} fails with ${code}`, { timeout: 60_000 }, async () => {
    const run = await runDemo(`reader=simulator&url=/rt/fault/${status}&autorun=1`);
    assert.equal(run.status, "failed");
    assert.equal(run.code, code);
    assert.match(run.trace, new RegExp(`http ${status}`));
    await run.page.close();
  });
}

for (const kind of ["bad-length", "truncated", "unknown-tag", "deep"]) {
  test(`a malformed script (${kind}) ends in bad-script and the server is told`, { timeout: 60_000 }, async () => {
    const run = await runDemo(`reader=simulator&url=/rt/fault/${kind}&autorun=1`);
    assert.equal(run.status, "failed", run.trace);
    assert.equal(run.code, "bad-script");
    // The last POST is the OpenSCDP abort reply: AB { E1 { 0C text } 80 01 00 }.
    const last = run.bodies.at(-1);
    assert.equal(last[0], 0xab, "an AB response template");
    assert.ok(last.includes(0xe1), "with an E1 close");
    await run.page.close();
  });
}

test("cancel mid-session posts the OpenSCDP cancel", { timeout: 60_000 }, async () => {
  const run = await runDemo("reader=simulator&url=/rt/fault/slow-ms/20000&autorun=1", {
    whileRunning: async (page) => {
      await page.waitForFunction(() => document.getElementById("result").dataset.status === "running");
      await page.waitForTimeout(300);
      await page.click("#cancel");
    },
  });
  assert.equal(run.status, "failed");
  assert.equal(run.code, "aborted");
  await run.page.close();
});

test("the PIN goes to the card only", { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  const bodies = [];
  page.on("request", (r) => {
    if (r.method() === "POST") bodies.push(r.postDataBuffer() ?? Buffer.alloc(0));
  });
  await page.goto(`${server.url}?reader=simulator&card=pin&url=/rt/pin-test`);
  await page.waitForFunction(() => !document.getElementById("run").disabled);
  const result = await page.evaluate(async () => {
    const relay = await import("/pkg-sim/card-relay.js");
    const reader = await relay.CardReader.open(relay.createSimulatedReader({ card: "pin" }));
    try {
      const r = await relay.cardUpdate(reader, "/rt/pin-test", { pinRequired: 0x81, pin: () => "123456" });
      return { status: r.status, apdus: r.apdus };
    } finally {
      await reader.close();
    }
  });
  assert.equal(result.status, "completed");
  assert.ok(bodies.length >= 2);
  const pin = Buffer.from("123456");
  for (const body of bodies) assert.equal(body.indexOf(pin), -1, "no request body contains the PIN");
  await page.close();
});

for (const profile of ["GemPCTwin.txt", "SPR532", "ACS_ACR1252_Reader"]) {
  test(`the seed session through the ${profile} profile`, { timeout: 60_000 }, async () => {
    const run = await runDemo(`reader=simulator&profile=${profile}&card=seed&url=/rt/test&autorun=1`);
    assert.equal(run.status, "passed", run.trace);
    assert.equal(run.apdus, "5");
    await run.page.close();
  });
}

test("an unknown profile fails clearly", { timeout: 60_000 }, async () => {
  const run = await runDemo("reader=simulator&profile=NoSuchReader&url=/rt/test&autorun=1");
  assert.equal(run.status, "failed");
  assert.equal(run.code, "invalid-argument");
  assert.match(run.trace, /unknown reader profile "NoSuchReader"/);
  await run.page.close();
});

test("a server ending with a negative notification", { timeout: 60_000 }, async () => {
  const run = await runDemo("reader=simulator&url=/rt/fail&autorun=1");
  assert.equal(run.status, "failed", run.trace);
  assert.equal(run.code, "ended-by-server");
  assert.match(run.trace, /Notification -1: Failure talking to card\nUpdate failed: Failure talking to card$/);
  await run.page.close();
});
