// The demo's "Local agent" route in headless Chromium when no agent runs, and the recipe that
// offers the agent after WebUSB refuses a reader: nothing listens on the agent's port (a
// loopback port bound and released), so the page must say `agent-unreachable` within 2 s.
// Then the agent itself (target/debug/card-relay --daemon --simulator on a free port): Chrome's
// Local Network Access permission, and one update at a time. The route against the agent over
// pcsc-lite: tests/pcsc/agent-page.test.mjs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { once } from "node:events";
import { chromium } from "playwright-core";
import { startServer, launchBrowser, startSimulatorAgent as simulatorAgent } from "./harness.mjs";

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

test("Chrome's Local Network Access: a public page reaches the agent only with the permission", { timeout: 90_000 }, async () => {
  const agent = await simulatorAgent(new URL(server.url).origin);
  const pagePort = new URL(server.url).port;
  try {
    for (const granted of [true, false]) {
      // The demo's server counts as a public site: its requests to loopback need the permission.
      const publicBrowser = await chromium.launch({
        executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
        headless: true,
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", `--ip-address-space-overrides=127.0.0.1:${pagePort}=public`],
      });
      try {
        const ctx = await publicBrowser.newContext(granted ? { permissions: ["local-network-access"] } : {});
        const page = await ctx.newPage();
        await page.goto(server.url);
        const out = await page.evaluate(async (origin) => {
          const relay = await import("/pkg-sim/card-relay.js");
          const start = performance.now();
          try {
            const handle = await relay.connectAgent({ origin });
            return { version: handle.version, readers: await handle.readers() };
          } catch (e) {
            return { code: e.code, hint: e.hint, ms: performance.now() - start };
          }
        }, agent.origin);
        if (granted) {
          assert.match(out.version ?? "", /^\d+\.\d+\.\d+/, JSON.stringify(out));
          assert.deepEqual(out.readers, [{ name: "Simulated reader (default)", cardPresent: true }]);
        } else {
          // Headless Chromium answers the prompt with "block": the agent looks absent.
          assert.equal(out.code, "agent-unreachable", JSON.stringify(out));
          assert.match(out.hint, /allow this site to reach it/);
          assert.ok(out.ms < 2000, `took ${out.ms} ms`);
        }
      } finally {
        await publicBrowser.close();
      }
    }
  } finally {
    await agent.stop();
  }
});

test("one update at a time: a second caller gets agent-busy at once, the first one goes on", { timeout: 90_000 }, async () => {
  const agent = await simulatorAgent(new URL(server.url).origin);
  try {
    const page = await context.newPage();
    await page.goto(server.url);
    const out = await page.evaluate(async (origin) => {
      const relay = await import("/pkg-sim/card-relay.js");
      const handle = await relay.connectAgent({ origin });
      const controller = new AbortController();
      // The server holds its first answer 5 s: the first update is running meanwhile.
      const first = relay
        .cardUpdate(handle, "/rt/fault/slow-ms/5000", { signal: controller.signal })
        .then((r) => r.status, (e) => e.code);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const t = performance.now();
      const second = await relay.cardUpdate(handle, "/rt/test").then((r) => r.status, (e) => ({ code: e.code, hint: e.hint }));
      const secondMs = performance.now() - t;
      return { second, secondMs, first: await first };
    }, agent.origin);
    assert.equal(out.second.code, "agent-busy", JSON.stringify(out));
    assert.match(out.second.hint, /another update/);
    assert.ok(out.secondMs < 1000, `busy took ${out.secondMs} ms`);
    assert.equal(out.first, "completed");
    await page.close();
  } finally {
    await agent.stop();
  }
});
