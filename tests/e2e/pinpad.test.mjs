// PIN verification on a reader's PIN pad (CCID PC_to_RDR_Secure) through the public API:
// cardUpdate with pinRequired on a simulated GemPC Pinpad (libccid readers/GemPCPinpad.txt,
// TPDU level, so the T=1 block sequence runs through bTeoPrologue) in headless Chromium
// against the reference server. The PIN is typed on the simulated pad and must appear in
// no request the page makes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser } from "./harness.mjs";

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

/** A page on the demo origin recording every POST body. */
async function openPage() {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  const bodies = [];
  page.on("request", (r) => {
    if (r.method() === "POST") bodies.push(r.postDataBuffer() ?? Buffer.alloc(0));
  });
  await page.goto(server.url);
  await page.waitForFunction(() => !document.getElementById("run").disabled);
  return { page, bodies };
}

test("the PIN typed on the pad reaches the card only", { timeout: 60_000 }, async () => {
  const { page, bodies } = await openPage();
  const steps = await page.evaluate(async () => {
    const relay = await import("/pkg-sim/card-relay.js");
    const profiles = await (await fetch("/generated/profiles.json")).json();
    const device = relay.createSimulatedReader({
      profile: "GemPCPinpad",
      profileText: profiles.GemPCPinpad,
      card: "pin",
    });
    const reader = await relay.CardReader.open(device);
    const prompts = [];
    const options = {
      pinRequired: 0x81,
      onPinPad: ({ triesLeft }) => prompts.push(triesLeft),
      pin: () => {
        throw new Error("pin() must not be asked on a PIN pad reader");
      },
    };
    const attempt = async (entry) => {
      device.setPinEntry(entry);
      try {
        const r = await relay.cardUpdate(reader, "/rt/pin-test", options);
        return { status: r.status, apdus: r.apdus };
      } catch (e) {
        return { code: e.code, message: e.message, isError: e instanceof relay.CardRelayError };
      }
    };
    try {
      return {
        pinPad: reader.pinPad,
        level: reader.exchangeLevel,
        wrong: await attempt("123455"),
        cancelled: await attempt({ cancel: true }),
        timedOut: await attempt(null),
        right: await attempt("123456"),
        prompts,
      };
    } finally {
      await reader.close();
    }
  });
  assert.equal(steps.pinPad, true);
  assert.equal(steps.level, "tpdu");
  assert.deepEqual(steps.wrong, { code: "pin-failed", message: "wrong PIN, 2 tries left", isError: true });
  assert.equal(steps.cancelled.code, "aborted", steps.cancelled.message);
  assert.equal(steps.timedOut.code, "timeout", steps.timedOut.message);
  assert.equal(steps.right.status, "completed", JSON.stringify(steps.right));
  // The pad was asked four times; the card counted one wrong PIN.
  assert.deepEqual(steps.prompts, [3, 2, 2, 2]);
  assert.ok(bodies.length >= 2, "the session ran");
  for (const pin of ["123456", "123455"]) {
    for (const body of bodies) assert.equal(body.indexOf(Buffer.from(pin)), -1, `no request body contains ${pin}`);
  }
  await page.close();
});

test("pinPad: false asks pin() even on a PIN pad reader", { timeout: 60_000 }, async () => {
  const { page } = await openPage();
  const result = await page.evaluate(async () => {
    const relay = await import("/pkg-sim/card-relay.js");
    const profiles = await (await fetch("/generated/profiles.json")).json();
    const device = relay.createSimulatedReader({
      profile: "GemPCPinpad",
      profileText: profiles.GemPCPinpad,
      card: "pin",
    });
    device.setPinEntry({ cancel: true });
    const reader = await relay.CardReader.open(device);
    const asked = [];
    try {
      const r = await relay.cardUpdate(reader, "/rt/pin-test", {
        pinRequired: 0x81,
        pinPad: false,
        pin: ({ triesLeft }) => {
          asked.push(triesLeft);
          return "123456";
        },
      });
      return { status: r.status, asked };
    } finally {
      await reader.close();
    }
  });
  assert.deepEqual(result, { status: "completed", asked: [3] });
  await page.close();
});
