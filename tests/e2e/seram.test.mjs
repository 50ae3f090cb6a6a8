// GP SERAM (dialect: "seram") in headless Chromium: the simulated reader against the
// reference server's /seram/<app> endpoints (the seed's test script), and against a
// Remote Agent played by the test (page.route) that serves the example Orders of the
// OpenAPI description (spec/gpseram.yaml), a malformed Order and a slow answer to cancel.
// Every message card-relay sent and every message served is then validated against the
// description's schemas (tests/seram_schema.py, a JSON-schema draft 4 validator).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import path from "node:path";
import { startServer, launchBrowser, root } from "./harness.mjs";

let server;
let browser;
let page;
const pageErrors = [];
// Every SERAM message seen on the wire: { schema, body }.
const messages = [];
// The example Orders etc. of gpseram.yaml, keyed by example name.
let examples;
// The Remote Agent played by the test: the Orders to serve, in turn, and a delay for the
// next Report's answer.
let fakeOrders = [];
let fakeDelayMs = 0;

const SCRIPT = path.join(root, "tests/seram_schema.py");

function python() {
  for (const py of ["python3", "/usr/bin/python3"]) {
    try {
      execFileSync(py, ["-c", "import jsonschema, yaml"], { stdio: "ignore" });
      return py;
    } catch {
      // try the next one
    }
  }
  throw new Error("no python3 with jsonschema and yaml: run scripts/setup.sh");
}

function record(url, requestBody, responseBody, fake = false) {
  const handshake = url.pathname.endsWith("/handshake");
  messages.push({ schema: handshake ? "ramHandshakeCommand" : "remoteManagementReport", body: JSON.parse(requestBody) });
  if (responseBody !== null && responseBody !== "") {
    const schema = handshake ? "ramHandshakeResponse" : "remoteManagementOrder";
    messages.push({ schema, body: JSON.parse(responseBody), fake });
  }
}

before(async () => {
  examples = JSON.parse(execFileSync(python(), [SCRIPT, "--examples"], { encoding: "utf8" }));
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  // The reference server's traffic.
  page.on("response", async (response) => {
    const url = new URL(response.url());
    const request = response.request();
    if (!url.pathname.startsWith("/seram/") || request.method() !== "POST") return;
    record(url, request.postData() ?? "", response.status() === 200 ? await response.text() : null);
  });
  // The Remote Agent played by the test.
  await page.route("**/fake-seram/**", async (route) => {
    const url = new URL(route.request().url());
    const body = route.request().postData() ?? "";
    let answer;
    if (url.pathname.endsWith("/handshake")) {
      answer = JSON.stringify(examples.handshakeResponse);
    } else {
      answer = fakeOrders.shift() ?? JSON.stringify(examples.stopCommandOrder);
    }
    record(url, body, answer, true);
    // A long poll: the first Report after the handshake waits (once).
    if (fakeDelayMs && !url.pathname.endsWith("/handshake")) {
      const ms = fakeDelayMs;
      fakeDelayMs = 0;
      await new Promise((r) => setTimeout(r, ms));
    }
    await route.fulfill({ status: 200, contentType: "application/json", body: answer }).catch(() => {});
  });
  await page.goto(server.url);
  await page.waitForFunction(() => !document.getElementById("run").disabled);
  await page.evaluate(async () => {
    const relay = await import("/pkg-sim/card-relay.js");
    globalThis.seramRun = async ({ url, sessionId, abortAfterMs }) => {
      const reader = await relay.CardReader.open(relay.createSimulatedReader({ card: "seed" }));
      const notifications = [];
      const trace = [];
      const controller = new AbortController();
      if (abortAfterMs) setTimeout(() => controller.abort(), abortAfterMs);
      const started = performance.now();
      try {
        const r = await relay.cardUpdate(reader, url, {
          dialect: "seram",
          sessionId,
          approve: () => "once",
          onNotification: (n) => notifications.push(n),
          onTrace: (line) => trace.push(line),
          signal: controller.signal,
        });
        return { ok: true, status: r.status, apdus: r.apdus, roundTrips: r.roundTrips, notifications, trace };
      } catch (e) {
        return {
          ok: false,
          code: e.code,
          relay: e instanceof relay.CardRelayError,
          message: e.message,
          notifications,
          ms: performance.now() - started,
        };
      } finally {
        await reader.close();
      }
    };
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the seed's test script over SERAM against the reference server", { timeout: 60_000 }, async () => {
  const out = await page.evaluate(() => globalThis.seramRun({ url: "/seram/test", sessionId: "e2e-seed-1" }));
  assert.equal(out.ok, true, JSON.stringify(out));
  assert.equal(out.status, "completed");
  assert.equal(out.apdus, 5);
  assert.deepEqual(
    out.notifications.map((n) => [n.code, n.message]),
    [[0, "Test"]],
  );
  assert.ok(out.trace.some((l) => / C: 00 84 00 00 - GET CHALLENGE/.test(l)), out.trace.join("\n"));
  const status = await (await fetch(new URL("/seram/session?sessionId=e2e-seed-1", server.url))).json();
  assert.equal(status.state, "completed", JSON.stringify(status));
  assert.equal(status.dialect, "seram");
  assert.ok(status.log.includes("notification 0: Test"), status.log.join("\n"));
});

test("a sessionId is required for the seram dialect", async () => {
  const out = await page.evaluate(() => globalThis.seramRun({ url: "/seram/test" }));
  assert.deepEqual([out.ok, out.code, out.relay], [false, "invalid-argument", true]);
});

test("the example Orders of gpseram.yaml are accepted", { timeout: 60_000 }, async () => {
  fakeOrders = [
    examples.withoutCommandOrder,
    examples.startCommandOrder,
    examples.notificationCommandOrder,
    examples.stopCommandOrder,
  ].map((o) => JSON.stringify(o));
  const out = await page.evaluate(() => globalThis.seramRun({ url: "/fake-seram/a", sessionId: "x1" }));
  assert.equal(out.ok, true, JSON.stringify(out));
  assert.deepEqual(out.notifications.map((n) => n.message), ["step1/action2/OK"]);
  assert.equal(out.roundTrips, 5, "handshake and four Orders");
});

test("the SE RAM example names a Secure Element that was not offered: UNAVAILABLE_SE", { timeout: 60_000 }, async () => {
  fakeOrders = [examples.startCommandOrder, examples.seRamCommandOrder].map((o) => JSON.stringify(o));
  const before = messages.length;
  const out = await page.evaluate(() => globalThis.seramRun({ url: "/fake-seram/b", sessionId: "x2" }));
  assert.deepEqual([out.ok, out.code], [false, "bad-script"], JSON.stringify(out));
  const reports = messages.slice(before).filter((m) => m.schema === "remoteManagementReport");
  const last = reports.at(-1).body.localAgentStatus;
  assert.equal(last.localAgentStatusEnum, "UNAVAILABLE_SE");
  assert.equal(last.errorMsg, "unknown secure element");
});

test("a malformed Order is answered with UNKNOWN_FAILURE", { timeout: 60_000 }, async () => {
  fakeOrders = [JSON.stringify({ ramCommands: [{ ramCommandType: "redirectCommand" }] })];
  const before = messages.length;
  const out = await page.evaluate(() => globalThis.seramRun({ url: "/fake-seram/c", sessionId: "x3" }));
  assert.deepEqual([out.ok, out.code], [false, "bad-script"], JSON.stringify(out));
  const reports = messages.slice(before).filter((m) => m.schema === "remoteManagementReport");
  assert.deepEqual(reports.at(-1).body.localAgentStatus, {
    localAgentStatusEnum: "UNKNOWN_FAILURE",
    executedSeRamCommands: 0,
    errorMsg: "bad order: unknown ramCommandType",
  });
});

test("an abort during a long poll ends at once and sends the cancel Report", { timeout: 60_000 }, async () => {
  fakeDelayMs = 10_000;
  const before = messages.length;
  try {
    const out = await page.evaluate(() =>
      globalThis.seramRun({ url: "/fake-seram/d", sessionId: "x4", abortAfterMs: 2_500 }),
    );
    assert.deepEqual([out.ok, out.code], [false, "aborted"], JSON.stringify(out));
    assert.ok(out.ms < 5_000, `took ${out.ms} ms`);
  } finally {
    fakeDelayMs = 0;
  }
  const reports = messages.slice(before).filter((m) => m.schema === "remoteManagementReport");
  assert.equal(reports.at(-1).body.localAgentStatus.errorMsg, "session canceled");
});

test("the demo page: dialect=seram&sessionId=<id> deep link, and a fresh id without one", { timeout: 60_000 }, async () => {
  const demo = await browser.newPage();
  const errors = [];
  demo.on("pageerror", (e) => errors.push(e.message));
  try {
    for (const [query, id] of [
      ["reader=simulator&card=seed&dialect=seram&sessionId=demo-1&url=/seram/test&autorun=1", "demo-1"],
      ["reader=simulator&card=seed&dialect=seram&url=/seram/test&autorun=1", null],
    ]) {
      await demo.goto(`${server.url}?${query}`);
      await demo.waitForFunction(
        () => ["passed", "failed"].includes(document.getElementById("result").dataset.status),
        null,
        { timeout: 30_000 },
      );
      const trace = await demo.textContent("#trace");
      assert.equal(await demo.$eval("#result", (el) => el.dataset.status), "passed", trace);
      assert.equal(await demo.$eval("#seram-options", (el) => el.hidden), false);
      const session = /SERAM session (\S+)/.exec(trace)?.[1];
      if (id) assert.equal(session, id);
      else assert.match(session ?? "", /^[0-9a-f-]{36}$/);
      const status = await (await fetch(new URL(`/seram/session?sessionId=${session}`, server.url))).json();
      assert.equal(status.state, "completed", JSON.stringify(status));
    }
  } finally {
    await demo.close();
  }
  assert.deepEqual(errors, []);
});

test("the command line (the native agent): --dialect seram -s <id>", { timeout: 60_000 }, () => {
  const agent = process.env.CARD_RELAY_AGENT ?? path.join(root, "target/debug/card-relay");
  const cli = (args) =>
    spawnSync(agent, args, {
      cwd: root,
      encoding: "utf8",
      timeout: 30_000,
    });
  const url = new URL("/seram/test", server.url).href;
  const ok = cli(["--simulator", "--dialect", "seram", "-s", "cli-1", url]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /Notification 0: Test/);
  assert.match(ok.stdout, /Update complete/);
  const long = cli(["--simulator", "--dialect", "seram", "--session-id", "cli-2", url]);
  assert.equal(long.status, 0, long.stderr);
  const missing = cli(["--simulator", "--dialect", "seram", url]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /needs a session id/);
});

test("every message sent and served validates against the OpenAPI schemas", () => {
  // Requests that went out while the page was torn down are absent; every test above
  // produced its messages before this one runs.
  const served = messages.filter((m) => m.schema === "remoteManagementOrder" || m.schema === "ramHandshakeResponse");
  const sent = messages.filter((m) => m.schema === "remoteManagementReport" || m.schema === "ramHandshakeCommand");
  assert.ok(sent.length >= 15 && served.length >= 15, `${sent.length} sent, ${served.length} served`);
  // The test's own Remote Agent serves the description's examples, which are not all
  // valid against its own pattern-checked APDUs; only the reference server's and
  // card-relay's messages are judged here.
  const judged = messages.filter((m) => !m.fake);
  const result = execFileSync(python(), [SCRIPT], { input: JSON.stringify(judged), encoding: "utf8" });
  assert.match(result, / 0 errors$/m, result);
  assert.deepEqual(pageErrors, []);
});
