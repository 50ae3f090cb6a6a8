// The demo's "Local agent" route in headless Chromium when no agent runs, and the recipe that
// offers the agent after WebUSB refuses a reader: nothing listens on the agent's port (a
// loopback port bound and released), so the page must say `agent-unreachable` within 2 s.
// The route against a real agent over pcsc-lite: tests/pcsc/agent-page.test.mjs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { once } from "node:events";
import { startServer, launchBrowser } from "./harness.mjs";

let server;
let browser;
let context;
let closedOrigin;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  // Chrome's Local Network Access permission, as a user or an admin policy grants it.
  context = await browser.newContext({ permissions: ["local-network-access"] });
  const probe = createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  closedOrigin = `http://127.0.0.1:${probe.address().port}`;
  probe.close();
  await once(probe, "close");
});

after(async () => {
  await context?.close();
  await browser?.close();
  await server?.stop();
});

async function finished(page) {
  await page.waitForFunction(
    () => ["passed", "failed"].includes(document.getElementById("result").dataset.status),
    null,
    { timeout: 30_000 },
  );
  return page.$eval("#result", (el) => ({ ...el.dataset, text: el.textContent }));
}

test("reader=agent with no agent running: agent-unreachable within 2 s, with the hint", { timeout: 60_000 }, async () => {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${server.url}?reader=agent&agent=${encodeURIComponent(closedOrigin)}&url=/rt/test`);
  await page.waitForFunction(() => !document.getElementById("run").disabled);
  assert.equal(await page.isVisible("#agent-options"), true, "the agent's panel is shown");
  assert.equal(await page.inputValue("#agent-origin"), closedOrigin, "agent= sets the origin");
  const start = Date.now();
  await page.click("#run");
  const result = await finished(page);
  const took = Date.now() - start;
  assert.equal(result.status, "failed");
  assert.equal(result.code, "agent-unreachable");
  assert.ok(took < 2000, `took ${took} ms`);
  assert.match(await page.textContent("#hint"), /install or start it/);
  assert.deepEqual(errors, []);
  await page.close();
});

test("the default agent origin is http://127.0.0.1:27001", { timeout: 30_000 }, async () => {
  const page = await context.newPage();
  await page.goto(`${server.url}?reader=agent`);
  assert.equal(await page.inputValue("#agent-origin"), "http://127.0.0.1:27001");
  const origin = await page.evaluate(async () => (await import("/pkg-sim/card-relay.js")).DEFAULT_AGENT_ORIGIN);
  assert.equal(origin, "http://127.0.0.1:27001");
  await page.close();
});

test("after a protected-interface refusal the demo offers the agent, and the offer runs the agent route", { timeout: 60_000 }, async () => {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // WebUSB as Chrome behaves for a class-0x0B reader: the chooser returns it, claimInterface
  // is refused (the simulated reader's protectedClass fault gives Chrome's SecurityError).
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, "usb", {
      configurable: true,
      get() {
        return {
          async requestDevice() {
            const relay = await import("/pkg-sim/card-relay.js");
            const device = relay.createSimulatedReader({ card: "seed" });
            device.setFault("protectedClass", 1);
            return device;
          },
          async getDevices() { return []; },
          addEventListener() {},
          removeEventListener() {},
        };
      },
    });
  });
  await page.goto(`${server.url}?reader=usb&agent=${encodeURIComponent(closedOrigin)}&url=/rt/test`);
  await page.waitForFunction(() => !document.getElementById("run").disabled);
  assert.equal(await page.isVisible("#agent-offer"), false);
  await page.click("#run");
  const refused = await finished(page);
  assert.equal(refused.code, "protected-interface");
  assert.equal(await page.isVisible("#agent-offer"), true, "the agent is offered");
  await page.evaluate(() => (document.getElementById("result").dataset.status = "idle"));
  await page.click("#use-agent");
  const viaAgent = await finished(page);
  assert.equal(await page.isChecked("input[name=reader][value=agent]"), true);
  assert.equal(viaAgent.code, "agent-unreachable", "the same update went to the agent route");
  assert.deepEqual(errors, []);
  await page.close();
});

test("a simulated-reader failure that the agent cannot help with offers nothing", { timeout: 60_000 }, async () => {
  const page = await context.newPage();
  await page.goto(`${server.url}?reader=simulator&url=/rt/fault/500&autorun=1`);
  const result = await finished(page);
  assert.equal(result.code, "server-error");
  assert.equal(await page.isVisible("#agent-offer"), false);
  await page.close();
});
