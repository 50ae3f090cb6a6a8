// The demo as a card holder sees it: progress (steps with times, the APDU count, what a wait
// is for), the reader panel (route, exchange level, PIN pad, the ATR decoded), failures that
// explain themselves, and accessibility: axe-core finds no serious or critical violation in
// any state in either color scheme, nothing scrolls sideways at 360 px, the keyboard alone
// runs an update with a visible focus. Screenshots of every state and scheme go to
// test-results/screenshots/ (look at them when the page changes).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import AxeBuilder from "@axe-core/playwright";
import { startServer, launchBrowser, startSimulatorAgent, root } from "./harness.mjs";

const SHOTS = path.join(root, "test-results/screenshots");
let server;
let other;
let browser;
let agent;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  // The local agent over its simulated card, the demo's origin approved in its origins file.
  agent = await startSimulatorAgent(new URL(server.url).origin);
  // Another origin, so that the demo asks for approval.
  other = await startServer({ args: ["--allow-origin", new URL(server.url).origin] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await agent?.stop();
  await other?.stop();
  await server?.stop();
});

const status = () => document.getElementById("result").dataset.status;
const ended = () => ["passed", "failed"].includes(document.getElementById("result").dataset.status);

/** The demo states: a deep link, and how to reach the state once the page is open. */
const STATES = {
  idle: { query: "", reach: (page) => page.waitForFunction(() => !document.getElementById("run").disabled) },
  // A slow simulated card: every answer 700 ms late.
  running: {
    query: "reader=simulator&card=seed&url=/rt/test&fault=late:700&autorun=1",
    reach: (page) => page.waitForFunction(() => /APDUs so far: [1-9]/.test(document.getElementById("apdu-count").textContent), null, { timeout: 30_000 }),
  },
  passed: {
    query: "reader=simulator&card=seed&url=/rt/test&autorun=1",
    reach: (page) => page.waitForFunction(ended, null, { timeout: 30_000 }),
  },
  // Chrome refusing a class-0x0B reader: the failure lists the routes that work.
  failed: {
    query: "reader=simulator&card=seed&url=/rt/test&fault=protectedClass&autorun=1",
    reach: (page) => page.waitForFunction(ended, null, { timeout: 30_000 }),
  },
  approval: {
    query: () => `reader=simulator&card=seed&url=${encodeURIComponent(new URL("rt/test", other.url).href)}&autorun=1`,
    reach: (page) => page.waitForSelector("#approve-dialog[open]"),
  },
  // The seed session through the local agent (card-relay --daemon --simulator).
  agent: {
    query: () => `reader=agent&agent=${encodeURIComponent(agent.origin)}&url=/rt/test&autorun=1`,
    reach: (page) => page.waitForFunction(ended, null, { timeout: 30_000 }),
  },
};

async function openState(name, { colorScheme = "light", width = 1000 } = {}) {
  // Chrome's Local Network Access permission, as the user grants it for the agent.
  const context = await browser.newContext({
    colorScheme,
    viewport: { width, height: 900 },
    permissions: ["local-network-access"],
  });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const state = STATES[name];
  const query = typeof state.query === "function" ? state.query() : state.query;
  await page.goto(`${server.url}${query ? `?${query}` : ""}`);
  await page.waitForFunction(() => /loaded$/.test(document.getElementById("status").textContent));
  await state.reach(page);
  return { page, context, errors };
}

async function seriousViolations(page) {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

for (const colorScheme of ["light", "dark"]) {
  for (const name of Object.keys(STATES)) {
    test(`${name} (${colorScheme}): axe finds no serious or critical violation; screenshot`, { timeout: 90_000 }, async () => {
      const { page, context, errors } = await openState(name, { colorScheme });
      try {
        assert.equal(
          await page.evaluate(() => matchMedia("(prefers-color-scheme: dark)").matches),
          colorScheme === "dark",
        );
        assert.deepEqual(await seriousViolations(page), []);
        await page.screenshot({ path: path.join(SHOTS, `demo-${name}-${colorScheme}.png`), fullPage: true });
        assert.deepEqual(errors, []);
      } finally {
        await context.close();
      }
    });
  }
}

for (const name of Object.keys(STATES)) {
  test(`${name} at 360 px: no horizontal scroll`, { timeout: 90_000 }, async () => {
    const { page, context } = await openState(name, { width: 360 });
    try {
      const { scrollWidth, clientWidth } = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
      }));
      assert.ok(scrollWidth <= clientWidth, `page is ${scrollWidth} px wide in a ${clientWidth} px viewport`);
      if (name === "passed" || name === "failed") {
        await page.screenshot({ path: path.join(SHOTS, `demo-${name}-360px.png`), fullPage: true });
      }
    } finally {
      await context.close();
    }
  });
}

test("running: the steps have times, the APDU count grows, the wait names the card or server", { timeout: 90_000 }, async () => {
  const { page, context } = await openState("running");
  try {
    const first = await page.textContent("#apdu-count");
    await page.waitForFunction(
      (before) => document.getElementById("apdu-count").textContent !== before,
      first,
      { timeout: 30_000 },
    );
    assert.equal(await page.evaluate(status), "running");
    // While the slow card works, the page says it waits for the card (or the server between).
    const wait = await page.$eval("#waiting", (el) => ({ hidden: el.hidden, kind: el.dataset.wait, text: el.textContent }));
    assert.equal(wait.hidden, false);
    assert.ok(["card", "server"].includes(wait.kind), JSON.stringify(wait));
    assert.match(wait.text, /^Waiting for the (card to answer|server)/);
    await page.waitForFunction(ended, null, { timeout: 60_000 });
    const steps = await page.$$eval("#steps li", (items) => items.map((li) => li.textContent));
    // The seed's server notification "Test" (seed.md) is one step; every step has a time.
    assert.ok(steps.some((s) => /^\d+\.\d s Test$/.test(s)), steps.join("\n"));
    for (const s of steps) assert.match(s, /^\d+\.\d s \S/);
    assert.equal(steps.at(-1).replace(/^\S+ s /, ""), "Update complete");
    assert.equal(await page.textContent("#apdu-count"), "APDUs run: 5");
    assert.equal(await page.isHidden("#waiting"), true, "no wait shown once the run ended");
  } finally {
    await context.close();
  }
});

test("the reader panel: name, route, exchange level, PIN pad, the ATR decoded", { timeout: 90_000 }, async () => {
  const { page, context } = await openState("passed");
  try {
    const panel = await page.$$eval("#reader-panel dd", (dds) => Object.fromEntries(dds.map((dd) => [dd.id, dd.textContent])));
    assert.ok(panel["reader-name"].length > 0);
    assert.match(panel["reader-route"], /^Simulator/);
    assert.match(panel["reader-level"], /APDU|TPDU/);
    assert.equal(panel["reader-pinpad"], "no");
    assert.match(panel["reader-atr"], /^3B( [0-9A-F]{2})+$/);
    // ISO/IEC 7816-3 §8.2: the protocols come from the TDi bytes of the ATR shown, the
    // historical bytes are its K bytes (T0's low nibble) after the interface bytes.
    const atr = panel["reader-atr"].split(" ").map((h) => parseInt(h, 16));
    const k = atr[1] & 0x0f;
    let y = atr[1] >> 4;
    let i = 2;
    const protocols = [];
    for (;;) {
      i += [1, 2, 4].filter((bit) => y & bit).length;
      if (!(y & 8)) break;
      protocols.push(`T=${atr[i] & 0x0f}`);
      y = atr[i] >> 4;
      i += 1;
    }
    assert.equal(panel["reader-protocols"], [...new Set(protocols.length ? protocols : ["T=0"])].join(", "));
    const historical = atr.slice(i, i + k).map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(" ");
    assert.ok(panel["reader-historical"].startsWith(historical || "none"), panel["reader-historical"]);
  } finally {
    await context.close();
  }
});

test("a failure explains itself: code, message, what to do; protected-interface lists the routes that work", { timeout: 90_000 }, async () => {
  const { page, context } = await openState("failed");
  try {
    const result = await page.$eval("#result", (el) => ({ ...el.dataset }));
    assert.equal(result.code, "protected-interface");
    assert.match(await page.textContent("#result-text"), /^Failed \(protected-interface\): \S/);
    assert.match(await page.textContent("#failure-what"), /^What to do: /);
    const routes = await page.$$eval("#failure-routes li", (items) => items.map((li) => li.textContent));
    assert.ok(routes.some((r) => /simulated reader/i.test(r)), routes.join("\n"));
    assert.ok(routes.some((r) => /Web Smart Card API/.test(r)), routes.join("\n"));
    assert.ok(routes.some((r) => /local agent/.test(r)), routes.join("\n"));
    // The page-agent recipe: the same update offered through the local agent.
    assert.equal(await page.isVisible("#use-agent"), true, "the agent is offered");
    assert.equal(await page.isVisible("#hint"), true, "the library's hint is shown");
  } finally {
    await context.close();
  }
});

test("the keyboard alone runs an update, with a visible focus ring", { timeout: 90_000 }, async () => {
  const { page, context } = await openState("idle");
  try {
    let outline = null;
    for (let i = 0; i < 20; i += 1) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        return { id: el.id, outline: `${style.outlineStyle} ${style.outlineWidth}` };
      });
      if (focused.id === "run") {
        outline = focused.outline;
        break;
      }
    }
    assert.ok(outline, "Tab reaches the Run button");
    assert.match(outline, /^solid [1-9]/, "the focused button shows an outline");
    await page.keyboard.press("Enter");
    await page.waitForFunction(ended, null, { timeout: 30_000 });
    assert.equal(await page.evaluate(status), "passed");
  } finally {
    await context.close();
  }
});

// ---- OpenSCDP RAMOverHTTP notifications with a time to completion ----
// A command script is `AA { units }`; a notification `E0 { 02 id, 0C text [, C3 ttc] }`
// (the 2016+ Java server's time to completion, seconds). BER lengths: short, 81 xx or 82 xx xx.

function readTlv(bytes, at) {
  const tag = bytes[at];
  let length = bytes[at + 1];
  let header = 2;
  if (length === 0x81) [length, header] = [bytes[at + 2], 3];
  else if (length === 0x82) [length, header] = [(bytes[at + 2] << 8) | bytes[at + 3], 4];
  return { tag, value: bytes.subarray(at + header, at + header + length), end: at + header + length };
}

function encodeTlv(tag, value) {
  const n = value.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), value]);
}

/** The script with `C3 ttc` added to every notification that has none. */
function withTimeToCompletion(script, seconds) {
  const outer = readTlv(script, 0);
  assert.equal(outer.tag, 0xaa, "an OpenSCDP command script");
  const units = [];
  for (let at = 0; at < outer.value.length; ) {
    const unit = readTlv(outer.value, at);
    const raw = outer.value.subarray(at, unit.end);
    if (unit.tag === 0xe0 && !unit.value.includes(0xc3)) {
      units.push(encodeTlv(0xe0, Buffer.concat([unit.value, Buffer.from([0xc3, 0x01, seconds])])));
    } else {
      units.push(Buffer.from(raw));
    }
    at = unit.end;
  }
  return encodeTlv(0xaa, Buffer.concat(units));
}

test("a time to completion from the server fills the progress bar", { timeout: 90_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.route("**/rt/test", async (route) => {
      const response = await route.fetch();
      const body = await response.body();
      const changed = body.length > 0 && body[0] === 0xaa ? withTimeToCompletion(body, 20) : body;
      await route.fulfill({ response, body: changed });
    });
    await page.goto(`${server.url}?reader=simulator&card=seed&url=/rt/test&fault=late:700&autorun=1`);
    await page.waitForFunction(() => !document.getElementById("progress-text").hidden, null, { timeout: 30_000 });
    const progress = await page.$eval("#progress", (el) => ({ value: el.getAttribute("value"), max: el.max, hidden: el.hidden }));
    assert.equal(progress.hidden, false);
    assert.equal(progress.max, 100);
    // Elapsed / (elapsed + 20 s left): a determinate bar, well short of full.
    assert.ok(Number(progress.value) >= 0 && Number(progress.value) < 50, JSON.stringify(progress));
    assert.equal(await page.textContent("#progress-text"), "About 20 s left (the server's estimate)");
    await page.waitForFunction(ended, null, { timeout: 60_000 });
    assert.equal(await page.evaluate(status), "passed");
  } finally {
    await context.close();
  }
});

test("the approval dialog answers to the keyboard: focus on Allow once, Enter runs", { timeout: 90_000 }, async () => {
  const { page, context } = await openState("approval");
  try {
    assert.equal(await page.evaluate(() => document.activeElement.id), "approve-once");
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.equal(outline, "solid", "the focused button shows an outline");
    await page.keyboard.press("Enter");
    await page.waitForFunction(ended, null, { timeout: 30_000 });
    assert.equal(await page.evaluate(status), "passed");
  } finally {
    await context.close();
  }
});

/** The trace of a finished deep-link run, without the lines that name the server's URL. */
async function traceOf(query) {
  const context = await browser.newContext({ permissions: ["local-network-access"] });
  try {
    const page = await context.newPage();
    await page.goto(`${server.url}?${query}`);
    await page.waitForFunction(ended, null, { timeout: 30_000 });
    return {
      status: await page.evaluate(status),
      trace: (await page.textContent("#trace")).split("\n").filter((l) => !l.startsWith("Connecting to ")),
      steps: await page.$$eval("#steps li", (items) => items.map((li) => li.textContent.replace(/^\S+ s /, ""))),
      apduCount: await page.textContent("#apdu-count"),
    };
  } finally {
    await context.close();
  }
}

test("the agent route: the reader panel names the agent, the wait says the agent works, trace and steps as on the page's route", { timeout: 90_000 }, async () => {
  const context = await browser.newContext({ permissions: ["local-network-access"] });
  try {
    const page = await context.newPage();
    // The server holds its first answer 3 s: the agent is mid-update meanwhile.
    await page.goto(`${server.url}?reader=agent&agent=${encodeURIComponent(agent.origin)}&url=/rt/fault/slow-ms/3000&autorun=1`);
    await page.waitForFunction(() => document.getElementById("waiting").dataset.wait === "agent" && !document.getElementById("waiting").hidden, null, { timeout: 30_000 });
    assert.equal(await page.evaluate(status), "running");
    assert.match(await page.textContent("#waiting-text"), /^Waiting for the card-relay agent on this computer/);
    const panel = await page.$$eval("#reader-panel dd", (dds) => Object.fromEntries(dds.map((dd) => [dd.id, dd.textContent])));
    const escaped = agent.origin.replace(/[.]/g, "\\.");
    assert.match(panel["reader-route"], new RegExp(`^Local agent: card-relay \\d+\\.\\d+\\.\\d+\\S* at ${escaped}$`));
    assert.match(panel["reader-name"], /agent's choice/);
    await page.waitForFunction(ended, null, { timeout: 60_000 });
    assert.equal(await page.evaluate(status), "passed", await page.textContent("#trace"));
    assert.equal(await page.isHidden("#waiting"), true);
  } finally {
    await context.close();
  }
  // The same seed session through the page's simulated reader and through the agent: the
  // card holder sees the same trace lines, steps and APDU count.
  const viaPage = await traceOf("reader=simulator&card=seed&url=/rt/test&autorun=1");
  const viaAgent = await traceOf(`reader=agent&agent=${encodeURIComponent(agent.origin)}&url=/rt/test&autorun=1`);
  assert.equal(viaPage.status, "passed");
  assert.equal(viaAgent.status, "passed");
  assert.deepEqual(viaAgent.trace, viaPage.trace);
  assert.deepEqual(viaAgent.steps, viaPage.steps);
  assert.equal(viaAgent.apduCount, "APDUs run: 5");
  assert.equal(viaAgent.apduCount, viaPage.apduCount);
});
