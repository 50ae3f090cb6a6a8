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

/** A plain reader (ACS ACR3901U, no PIN pad) with the PIN card, opened in `page`. */
const PLAIN_READER = async () => {
  const relay = await import("/pkg-sim/card-relay.js");
  const profiles = await (await fetch("/generated/profiles.json")).json();
  const openPlain = async () =>
    relay.CardReader.open(
      relay.createSimulatedReader({
        profile: "ACS_ACR3901U_ICC_Reader",
        profileText: profiles.ACS_ACR3901U_ICC_Reader,
        card: "pin",
      }),
    );
  globalThis.t = { relay, openPlain };
};

test("pinRequired 0 is the PIN reference P2 00: verified on the WebUSB route and from a legacy URL's pinrequired=0", { timeout: 60_000 }, async () => {
  const { page } = await openPage();
  await page.evaluate(PLAIN_READER);
  const out = await page.evaluate(async () => {
    const { relay, openPlain } = globalThis.t;
    const run = async (start) => {
      const reader = await openPlain();
      const asked = [];
      const notes = [];
      const options = {
        pin: ({ triesLeft }) => {
          asked.push(triesLeft);
          return "123456";
        },
        onNotification: ({ message }) => notes.push(message),
      };
      try {
        const r = await start(reader, options);
        return { status: r.status, asked, notes };
      } catch (e) {
        return { code: e.code, message: e.message };
      } finally {
        await reader.close();
      }
    };
    const legacy = "http://localhost:27001/x.png?url=%2Frt%2Fpin-test&pinrequired=0";
    return {
      zero: await run((reader, o) => relay.cardUpdate(reader, "/rt/pin-test", { ...o, pinRequired: 0 })),
      off: await run((reader, o) => relay.cardUpdate(reader, "/rt/pin-test", { ...o, pinRequired: false })),
      parsed: relay.parseLegacyUrl(legacy),
      legacy: await run((reader, o) => relay.cardUpdateFromLegacyUrl(reader, legacy, o)),
    };
  });
  // The PIN card verifies any reference (P2); pin-test reports the PIN state afterwards.
  assert.deepEqual(out.zero, { status: "completed", asked: [3], notes: ["PIN verified"] });
  assert.deepEqual(out.parsed, { url: "/rt/pin-test", pinRequired: 0 });
  assert.deepEqual(out.legacy, out.zero);
  assert.deepEqual(out.off.asked, [], "pinRequired: false checks nothing");
  assert.equal(out.off.status, "completed");
  assert.notDeepEqual(out.off.notes, ["PIN verified"]);
  await page.close();
});

test("hex with a typo is invalid-argument and the message never echoes it (a VERIFY carries the PIN)", { timeout: 60_000 }, async () => {
  const { page } = await openPage();
  await page.evaluate(PLAIN_READER);
  const out = await page.evaluate(async () => {
    const { relay, openPlain } = globalThis.t;
    const reader = await openPlain();
    const errorOf = async (promise) => {
      try {
        await promise;
        return { code: "resolved" };
      } catch (e) {
        return { code: e.code, message: e.message, isError: e instanceof relay.CardRelayError };
      }
    };
    try {
      return {
        typo: await errorOf(reader.transmit("00 20 00 81 06 31 32 33 34 35 3G")),
        odd: await errorOf(reader.transmit("00 20 00 81 06 31 32 33 34 35 3")),
        select: await errorOf(relay.cardUpdate(reader, "/rt/pin-test", { pinRequired: 0x81, pinSelect: "E82B0601 31323334Z", pin: () => "123456" })),
        right: await errorOf(reader.transmit("00 20 00 81 06 31 32 33 34 35 36")),
      };
    } finally {
      await reader.close();
    }
  });
  assert.equal(out.right.code, "resolved", "the right PIN in hex goes through");
  for (const [name, e] of Object.entries({ typo: out.typo, odd: out.odd, select: out.select })) {
    assert.equal(e.code, "invalid-argument", `${name}: ${e.message}`);
    assert.ok(e.isError, name);
    assert.doesNotMatch(e.message, /3[0-9]\s?3[0-9]|313233|3G|3132/i, `${name}: ${e.message}`);
  }
  assert.equal(out.typo.message, "apdu is not hex: bad character at position 21");
  await page.close();
});
