// The JavaScript API (CardReader, CardRelayError) in headless Chromium against the simulated
// reader: every exchange level, T=0 and T=1 cards, extended APDUs, events, faults, and the
// WebUSB error paths. Each test runs its body inside the demo page (same origin as the
// package) with page.evaluate.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser } from "./harness.mjs";

let server;
let browser;
let page;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.goto(server.url);
  await page.waitForFunction(() => !document.getElementById("run").disabled);
  // Shared helpers inside the page.
  await page.evaluate(async () => {
    const relay = await import("/pkg-sim/card-relay.js");
    const profiles = await (await fetch("/generated/profiles.json")).json();
    const hex = (s) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g) ?? [], (h) => parseInt(h, 16));
    const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0").toUpperCase()).join(" ");
    const sim = (profile, card = "seed") =>
      relay.createSimulatedReader(
        profile === "default" ? { card } : { profile, profileText: profiles[profile], card },
      );
    const codeOf = async (promise) => {
      try {
        await promise;
        return "resolved";
      } catch (e) {
        if (!(e instanceof relay.CardRelayError) || !(e instanceof Error)) return `not a CardRelayError: ${e}`;
        return e.code;
      }
    };
    globalThis.t = { relay, profiles, hex, toHex, sim, codeOf };
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const SELECT_SEED = "00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00";
const FCI = "62 07 82 01 78 85 02 01 02 90 00";
const T0_CARD = { app: "seed", atr: "3B 12 96 14 50" };

const SETUPS = [
  ["default", "seed", "tpdu", "T=1"],
  ["GemPCTwin", "seed", "tpdu", "T=1"],
  ["GemPCTwin", T0_CARD, "tpdu", "T=0"],
  ["ACS_ACR3901U_ICC_Reader", "seed", "short-apdu", "T=1"],
  ["ACS_ACR3901U_ICC_Reader", T0_CARD, "short-apdu", "T=0"],
  ["Ask_CPL108", "seed", "extended-apdu", "T=1"],
];

for (const [profile, card, level, protocol] of SETUPS) {
  test(`${profile}, ${protocol} card: select, challenge, extended`, { timeout: 30_000 }, async () => {
    const out = await page.evaluate(
      async ({ profile, card, SELECT_SEED }) => {
        const { relay, hex, toHex, sim, codeOf } = globalThis.t;
        const reader = await relay.CardReader.open(sim(profile, card));
        try {
          const atr = await reader.powerOn();
          const status = await reader.status();
          const fci = toHex(await reader.transmit(hex(SELECT_SEED)));
          const challenge = await reader.transmit(hex("00 84 00 00 45"));
          // GET CHALLENGE with extended Le 0x0200: 512 bytes where extended APDUs can travel.
          const ext = await codeOf(reader.transmit(hex("00 84 00 00 00 02 00")));
          let extLength = null;
          if (ext === "resolved") extLength = (await reader.transmit(hex("00 84 00 00 00 02 00"))).length;
          return {
            level: reader.exchangeLevel,
            atrLength: atr.length,
            status,
            fci,
            challengeLength: challenge.length,
            sw: toHex(challenge.slice(-2)),
            ext,
            extLength,
          };
        } finally {
          await reader.close();
        }
      },
      { profile, card, SELECT_SEED },
    );
    assert.equal(out.level, level);
    assert.equal(out.status.present, true);
    assert.equal(out.status.powered, true);
    assert.equal(out.status.protocol, protocol);
    assert.equal(out.fci, FCI);
    assert.equal(out.challengeLength, 69 + 2);
    assert.equal(out.sw, "90 00");
    const extendedPossible = level === "extended-apdu" || (level === "tpdu" && protocol === "T=1");
    if (extendedPossible) {
      assert.equal(out.ext, "resolved");
      assert.equal(out.extLength, 512 + 2);
    } else {
      assert.equal(out.ext, "invalid-argument", "an extended APDU that cannot travel is refused clearly");
    }
  });
}

test("insert and remove events", { timeout: 30_000 }, async () => {
  const events = await page.evaluate(async () => {
    const { relay, sim } = globalThis.t;
    const device = sim("default");
    const reader = await relay.CardReader.open(device);
    const seen = [];
    for (const type of ["cardinserted", "cardremoved"]) {
      reader.addEventListener(type, (e) => seen.push(`${e.type}:${e.slot}`));
    }
    const settle = () => new Promise((r) => setTimeout(r, 50));
    await reader.powerOn();
    device.removeCard();
    await settle();
    const absent = await reader.status();
    device.insertCard("seed");
    await settle();
    await reader.close();
    return { seen, absent };
  });
  // An initial cardinserted may come first (the reader's first slot notification).
  assert.deepEqual(events.seen.slice(-2), ["cardremoved:0", "cardinserted:0"]);
  assert.ok(events.seen.length <= 3, events.seen.join(", "));
  assert.equal(events.absent.present, false);
});

test("a hardware error event carries the slot and bHardwareErrorCode", { timeout: 30_000 }, async () => {
  const seen = await page.evaluate(async () => {
    const { relay, sim } = globalThis.t;
    const device = sim("default");
    const reader = await relay.CardReader.open(device);
    const events = [];
    reader.addEventListener("hardwareerror", (e) => events.push({ type: e.type, slot: e.slot, code: e.code }));
    await reader.powerOn();
    device.hardwareError(0);
    await new Promise((r) => setTimeout(r, 50));
    await reader.close();
    return events;
  });
  // CCID 1.1 §6.3.2 RDR_to_PC_HardwareError: bHardwareErrorCode 01h is overcurrent.
  assert.deepEqual(seen, [{ type: "hardwareerror", slot: 0, code: 1 }]);
});

test("transmit takes an ArrayBuffer or a string of hex digits as its published type says", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, sim, toHex } = globalThis.t;
    const reader = await relay.CardReader.open(sim("default"));
    await reader.powerOn();
    const fromHex = await reader.transmit("00 84 00 00 08");
    const fromBuffer = await reader.transmit(Uint8Array.of(0x00, 0x84, 0x00, 0x00, 0x08).buffer);
    const notHex = await globalThis.t.codeOf(reader.transmit("00 8"));
    await reader.close();
    return { fromHex: [fromHex.length, toHex(fromHex.slice(-2))], fromBuffer: [fromBuffer.length, toHex(fromBuffer.slice(-2))], notHex };
  });
  // GET CHALLENGE with Le 8: eight random bytes, then 90 00.
  assert.deepEqual(out.fromHex, [10, "90 00"]);
  assert.deepEqual(out.fromBuffer, [10, "90 00"]);
  assert.equal(out.notHex, "invalid-argument");
});

test("disconnect during a transmit", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, hex, sim, codeOf } = globalThis.t;
    const device = sim("default");
    const reader = await relay.CardReader.open(device);
    await reader.powerOn();
    let disconnected = false;
    reader.addEventListener("disconnected", () => (disconnected = true));
    device.setFault("readerStall", 1);
    const pending = codeOf(reader.transmit(hex("00 84 00 00 08")));
    await new Promise((r) => setTimeout(r, 50));
    device.disconnect();
    const code = await pending;
    const after = await codeOf(reader.transmit(hex("00 84 00 00 08")));
    return { code, disconnected, usable: reader.usable, after };
  });
  assert.equal(out.code, "disconnected");
  assert.equal(out.disconnected, true);
  assert.equal(out.usable, false);
  assert.equal(out.after, "disconnected");
});

for (const [fault, code, hintPart] of [
  ["protectedClass", "protected-interface", "Isolated Web App"],
  ["accessDenied", "permission-denied", "udev"],
  ["busy", "device-busy", "pcscd"],
]) {
  test(`open with ${fault} fails as ${code}, and the next open works`, { timeout: 30_000 }, async () => {
    const out = await page.evaluate(
      async ({ fault }) => {
        const { relay, hex, sim } = globalThis.t;
        const device = sim("default");
        device.setFault(fault, 1);
        let error = null;
        try {
          await relay.CardReader.open(device);
        } catch (e) {
          error = { code: e.code, hint: e.hint, isError: e instanceof Error, isRelay: e instanceof relay.CardRelayError, opened: device.opened };
        }
        device.clearFaults();
        const reader = await relay.CardReader.open(device);
        const r = await reader.transmit(hex("00 84 00 00 04"));
        await reader.close();
        return { error, length: r.length, openedAfterClose: device.opened };
      },
      { fault },
    );
    assert.equal(out.error.code, code);
    assert.ok(out.error.isError && out.error.isRelay);
    assert.match(out.error.hint, new RegExp(hintPart));
    assert.equal(out.error.opened, false, "the device is closed after the failed open");
    assert.equal(out.length, 6);
    assert.equal(out.openedAfterClose, false);
  });
}

for (const [fault, value] of [
  ["stale", 1],
  ["duplicate", 1],
  ["split", 1],
  ["coalesce", 1],
  ["timeExtensions", 5],
]) {
  test(`transmit survives the ${fault} fault`, { timeout: 30_000 }, async () => {
    const out = await page.evaluate(
      async ({ fault, value }) => {
        const { relay, hex, toHex, sim } = globalThis.t;
        for (const profile of ["default", "ACS_ACR3901U_ICC_Reader"]) {
          const device = sim(profile);
          const reader = await relay.CardReader.open(device);
          await reader.powerOn();
          device.setFault(fault, value);
          const results = [];
          for (let i = 0; i < 3; i++) results.push(toHex((await reader.transmit(hex("00 84 00 00 10"))).slice(-2)));
          await reader.close();
          if (results.some((sw) => sw !== "90 00")) return { profile, results };
        }
        return { ok: true };
      },
      { fault, value },
    );
    assert.deepEqual(out, { ok: true });
  });
}

test("a mute card fails as card-mute and the reader stays usable", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, hex, sim, codeOf } = globalThis.t;
    const device = sim("ACS_ACR3901U_ICC_Reader");
    const reader = await relay.CardReader.open(device);
    await reader.powerOn();
    device.setFault("mute", 1);
    const code = await codeOf(reader.transmit(hex("00 84 00 00 08")));
    device.clearFaults();
    const r = await reader.transmit(hex("00 84 00 00 08"));
    await reader.close();
    return { code, length: r.length };
  });
  assert.equal(out.code, "card-mute");
  assert.equal(out.length, 10);
});

test("a DataView result with a non-zero byte offset", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, hex, toHex, sim } = globalThis.t;
    const device = sim("default");
    // Every transferIn/controlTransferIn result is moved into a larger buffer at offset 7,
    // with garbage around it: a driver that reads the whole buffer breaks.
    const shift = (result) => {
      if (!result.data) return result;
      const bytes = new Uint8Array(result.data.buffer, result.data.byteOffset, result.data.byteLength);
      const big = new Uint8Array(bytes.length + 16).fill(0xee);
      big.set(bytes, 7);
      return { status: result.status, data: new DataView(big.buffer, 7, bytes.length) };
    };
    const wrapped = new Proxy(device, {
      get(target, prop) {
        if (prop === "transferIn") return async (ep, len) => shift(await target.transferIn(ep, len));
        if (prop === "controlTransferIn") return async (s, len) => shift(await target.controlTransferIn(s, len));
        const v = target[prop];
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const reader = await relay.CardReader.open(wrapped);
    const atr = toHex(await reader.powerOn());
    const fci = toHex(await reader.transmit(hex("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00")));
    await reader.close();
    return { atr, fci };
  });
  assert.equal(out.atr, "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA");
  assert.equal(out.fci, FCI);
});

test("operations queue in call order", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, hex, sim } = globalThis.t;
    const reader = await relay.CardReader.open(sim("default"));
    await reader.powerOn();
    const lengths = await Promise.all([4, 8, 16, 32].map((n) => reader.transmit(hex(`00 84 00 00 ${n.toString(16).padStart(2, "0")}`)).then((r) => r.length)));
    await reader.close();
    return lengths;
  });
  assert.deepEqual(out, [6, 10, 18, 34]);
});

test("abort a transmit with an AbortSignal", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, hex, sim, codeOf } = globalThis.t;
    const device = sim("default");
    const reader = await relay.CardReader.open(device);
    await reader.powerOn();
    device.setFault("readerStall", 1);
    const controller = new AbortController();
    const pending = codeOf(reader.transmit(hex("00 84 00 00 08"), { signal: controller.signal }));
    setTimeout(() => controller.abort(), 30);
    const code = await pending;
    device.clearFaults();
    // The late answer to the aborted command is dropped; the next command gets its own.
    const r = await reader.transmit(hex("00 84 00 00 04"));
    await reader.close();
    return { code, length: r.length };
  });
  assert.equal(out.code, "aborted");
  assert.equal(out.length, 6);
});

test("numbers the exports take as bytes are checked, and the PIN check's outcomes are typed", { timeout: 60_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, sim, profiles, codeOf } = globalThis.t;
    const reader = await relay.CardReader.open(sim("default", "pin"));
    const failure = async (promise) => {
      try {
        await promise;
        return "resolved";
      } catch (e) {
        return { code: e.code, message: e.message, hint: e.hint, own: e instanceof relay.CardRelayError ? null : e.message };
      }
    };
    const pin = (answer) => () => answer;
    const slots = {
      big: await codeOf(reader.transmit("00 84 00 00 08", { slot: 256 })),
      fraction: await codeOf(reader.powerOn({ slot: 1.5 })),
      text: await codeOf(reader.status({ slot: /** @type {any} */ ("0") })),
    };
    // P2 is one byte: 0x181 is refused, not cut to 0x81.
    const reference = await failure(relay.cardUpdate(reader, "/rt/pin-test", { pinRequired: 0x181, pin: pin("123456") }));
    const noApp = await failure(
      relay.cardUpdate(reader, "/rt/pin-test", { pinRequired: true, pinSelect: "A0 00 00 00 FF", pin: pin("123456") }),
    );
    const thrown = await failure(
      relay.cardUpdate(reader, "/rt/pin-test", { pinRequired: true, pin: () => { throw new TypeError("the page's own"); } }),
    );
    const wrong = [];
    for (let i = 0; i < 3; i++) wrong.push(await failure(relay.cardUpdate(reader, "/rt/pin-test", { pinRequired: true, pin: pin("000000") })));
    const blocked = await failure(relay.cardUpdate(reader, "/rt/pin-test", { pinRequired: true, pin: pin("123456") }));
    await reader.close();
    const pad = await relay.CardReader.open(
      relay.createSimulatedReader({ profile: "GemPCPinpad", profileText: profiles.GemPCPinpad, card: "pin" }),
    );
    const padOptions = {
      zero: await codeOf(relay.cardUpdate(pad, "/rt/pin-test", { pinRequired: true, pinPad: { minDigits: 0 } })),
      big: await codeOf(relay.cardUpdate(pad, "/rt/pin-test", { pinRequired: true, pinPad: { maxDigits: 300 } })),
      crossed: await codeOf(relay.cardUpdate(pad, "/rt/pin-test", { pinRequired: true, pinPad: { minDigits: 8, maxDigits: 6 } })),
    };
    await pad.close();
    return { slots, reference, noApp, thrown, wrong, blocked, padOptions };
  });
  assert.deepEqual(out.slots, { big: "invalid-argument", fraction: "invalid-argument", text: "invalid-argument" });
  assert.equal(out.reference.code, "invalid-argument", JSON.stringify(out.reference));
  // SELECT by AID of an application the card lacks: 6A 82 (ISO/IEC 7816-4 §5.6).
  assert.deepEqual([out.noApp.code, out.noApp.message], ["pin-failed", "the PIN application is not on the card (SW 6a82)"]);
  assert.equal(out.thrown.own, "the page's own", "pin()'s own exception comes back as it is");
  // The PIN card: three tries, 63 Cx with the tries left, the third wrong PIN blocks (69 83).
  assert.deepEqual(out.wrong.map((e) => e.message), ["wrong PIN, 2 tries left", "wrong PIN, 1 tries left", "the PIN is blocked"]);
  assert.deepEqual([out.blocked.code, out.blocked.message, out.blocked.hint], ["pin-failed", "the PIN is blocked", "Unblock the PIN with the card's issuer."]);
  assert.deepEqual(out.padOptions, { zero: "invalid-argument", big: "invalid-argument", crossed: "invalid-argument" });
});
