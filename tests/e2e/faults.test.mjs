// The fault matrix: card updates against the reference server with the simulator's faults
// and the server's fault endpoints. For each: the promised error code, the server told with
// E1 where the protocol allows, the reader usable for the next session, no unhandled
// rejection, and every test bounded in time.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser } from "./harness.mjs";

let server;
let browser;
let page;
const pageErrors = [];
let bodies = [];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("request", (r) => {
    if (r.method() === "POST") bodies.push(r.postDataBuffer() ?? Buffer.alloc(0));
  });
  await page.goto(server.url);
  await page.waitForFunction(() => !document.getElementById("run").disabled);
  await page.evaluate(async () => {
    const relay = await import("/pkg-sim/card-relay.js");
    // Runs one update; `fault` is applied before the session, `when` ("first-apdu") decides
    // when `action` (removeCard | disconnect) happens. Then checks the reader still works
    // (a second, clean session) unless it was disconnected.
    globalThis.faultRun = async ({ url, fault, value, action, timeout, dialect }) => {
      const device = relay.createSimulatedReader({ card: "seed" });
      const reader = await relay.CardReader.open(device);
      if (fault) device.setFault(fault, value ?? 1);
      let acted = false;
      const onTrace = (line) => {
        if (action && !acted && / C: /.test(line)) {
          acted = true;
          if (action === "removeCard") device.removeCard();
          if (action === "disconnect") device.disconnect();
        }
      };
      let outcome;
      try {
        const r = await relay.cardUpdate(reader, url, { onTrace, timeout, dialect, approve: () => "once" });
        outcome = { ok: true, apdus: r.apdus, status: r.status };
      } catch (e) {
        outcome = { ok: false, code: e.code, status: e.status, relay: e instanceof relay.CardRelayError };
      }
      device.clearFaults();
      let next = null;
      if (action !== "disconnect") {
        if (action === "removeCard") device.insertCard("seed");
        try {
          const r = await relay.cardUpdate(reader, "/rt/test", {});
          next = { ok: true, apdus: r.apdus };
        } catch (e) {
          next = { ok: false, code: e.code };
        }
      }
      await reader.close();
      return { outcome, next };
    };
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function faultRun(args) {
  bodies = [];
  pageErrors.length = 0;
  const out = await page.evaluate((a) => globalThis.faultRun(a), args);
  assert.deepEqual(pageErrors, [], "no unhandled errors or rejections");
  return out;
}

/** Whether any POST of the run was an OpenSCDP reply carrying E1. */
function toldWithE1() {
  return bodies.some((b) => b[0] === 0xab && b.includes(0xe1));
}

const reusable = (out) => assert.deepEqual(out.next, { ok: true, apdus: 5 }, "the reader works for the next session");

test("card removed mid-session: card-absent, server told", { timeout: 30_000 }, async () => {
  const out = await faultRun({ url: "/rt/test", action: "removeCard" });
  assert.equal(out.outcome.code, "card-absent");
  assert.ok(out.outcome.relay);
  assert.ok(toldWithE1(), "the server got E1");
  reusable(out);
});

test("reader disconnected mid-session: disconnected", { timeout: 30_000 }, async () => {
  const out = await faultRun({ url: "/rt/test", action: "disconnect" });
  assert.equal(out.outcome.code, "disconnected");
});

for (const fault of ["stallIn", "stallOut"]) {
  test(`a ${fault} endpoint: protocol error, then the reader recovers`, { timeout: 30_000 }, async () => {
    const out = await faultRun({ url: "/rt/test", fault });
    assert.equal(out.outcome.ok, false);
    assert.equal(out.outcome.code, "protocol");
    reusable(out);
  });
}

for (const [fault, value] of [
  ["timeExtensions", 1000],
  ["stale", 1],
  ["duplicate", 1],
  ["split", 1],
  ["coalesce", 1],
]) {
  test(`the ${fault} fault does not disturb a session`, { timeout: 60_000 }, async () => {
    const out = await faultRun({ url: "/rt/test", fault, value });
    assert.deepEqual(out.outcome, { ok: true, apdus: 5, status: "completed" });
    reusable(out);
  });
}

test("a mute card: card-mute, server told", { timeout: 30_000 }, async () => {
  const out = await faultRun({ url: "/rt/test", fault: "mute" });
  assert.equal(out.outcome.code, "card-mute");
  reusable(out);
});

for (const status of [404, 500, 504]) {
  test(`HTTP ${status}: server-error with the status`, { timeout: 30_000 }, async () => {
    const out = await faultRun({ url: `/rt/fault/${status}` });
    assert.deepEqual(out.outcome, { ok: false, code: "server-error", status, relay: true });
    reusable(out);
  });
}

test("network error: network-error", { timeout: 30_000 }, async () => {
  const out = await faultRun({ url: "http://127.0.0.1:9/rt/test" });
  assert.equal(out.outcome.code, "network-error");
  reusable(out);
});

test("server closes mid-body: network-error", { timeout: 30_000 }, async () => {
  const out = await faultRun({ url: "/rt/fault/close-mid-body" });
  assert.equal(out.outcome.code, "network-error");
  reusable(out);
});

for (const kind of ["bad-length", "truncated", "unknown-tag", "deep", "huge"]) {
  test(`malformed script (${kind}): bad-script, server told`, { timeout: 30_000 }, async () => {
    const out = await faultRun({ url: `/rt/fault/${kind}` });
    assert.equal(out.outcome.code, "bad-script");
    assert.ok(toldWithE1(), "the server got E1");
    reusable(out);
  });
}

test("a server that never answers: timeout", { timeout: 30_000 }, async () => {
  const started = Date.now();
  const out = await faultRun({ url: "/rt/fault/never", timeout: 1500 });
  assert.equal(out.outcome.code, "timeout");
  assert.ok(Date.now() - started < 20_000);
  reusable(out);
});

test("GP dialect: a malformed script ends in bad-script with script-format-error", { timeout: 30_000 }, async () => {
  const out = await faultRun({ url: "/rt/fault/unknown-tag", dialect: "gp" });
  assert.equal(out.outcome.code, "bad-script");
  reusable(out);
});
