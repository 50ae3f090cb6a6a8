// The Web Smart Card API route (CardReader.openSmartCard) in headless Chromium, against a
// fake of the API written from the specification (tests/fixtures/fake-smartcard.js: one
// operation per context, transactions, getStatusChange with eventState / eventCount,
// SmartCardError response codes) with T=0 and T=1 cards that answer like the seed card, and
// the reference server for whole card updates. Debian's Chromium has no navigator.smartCard,
// so the fake is passed as `smartCard`.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { startServer, launchBrowser, root } from "./harness.mjs";

let server;
let browser;
let page;
const pageErrors = [];

const FAKE = readFileSync(path.join(root, "tests/fixtures/fake-smartcard.js"), "utf8");
const READER = "Fake Reader 0";
const SEED_ATR = "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA";

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(server.url);
  await page.waitForFunction(() => !document.getElementById("run").disabled);
  await page.evaluate(FAKE);
  await page.evaluate(async (READER) => {
    const relay = await import("/pkg-sim/card-relay.js");
    await relay.default();
    const hex = (s) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g) ?? [], (h) => parseInt(h, 16));
    const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0").toUpperCase()).join(" ");
    const errorOf = async (promise) => {
      try {
        await promise;
        return { code: "resolved" };
      } catch (e) {
        if (!(e instanceof relay.CardRelayError)) return { code: `not a CardRelayError: ${e}` };
        return { code: e.code, hint: e.hint, message: e.message };
      }
    };
    /** A system with one reader (more with `readers`) holding a card (none with card: null). */
    const system = ({ card = { protocol: "t1" }, ...options } = {}) => {
      const sys = globalThis.FakeSmartCard.createSystem(options);
      if (card) sys.insertCard(options.readers?.at(-1) ?? READER, card);
      return sys;
    };
    const open = (sys, options = {}) =>
      relay.CardReader.openSmartCard({ smartCard: sys.resourceManager, ...options });
    const nextEvent = (reader, type) =>
      new Promise((resolve) => reader.addEventListener(type, (e) => resolve({ type: e.type, slot: e.slot }), { once: true }));
    globalThis.t = { relay, hex, toHex, errorOf, system, open, nextEvent };
  }, READER);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
});

test("open: the first reader with a card, the members of a PC/SC reader, the ATR, status", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, toHex, system, open } = globalThis.t;
    const sys = system({ readers: ["Empty Reader", "Fake Reader 0"] });
    const names = await relay.CardReader.listSmartCardReaders({ smartCard: sys.resourceManager });
    const reader = await open(sys);
    const members = {};
    for (const k of ["route", "name", "vendorId", "productId", "interfaceClass", "exchangeLevel", "device", "pinPad", "slots", "usable"]) {
      members[k] = reader[k];
    }
    const atr = toHex(await reader.powerOn());
    const status = await reader.status();
    await reader.close();
    return { names, members, atr, status: { ...status, atr: toHex(status.atr) }, log: sys.log, usable: reader.usable };
  });
  assert.deepEqual(out.names, ["Empty Reader", "Fake Reader 0"]);
  assert.deepEqual(out.members, {
    route: "smartcard",
    name: "Fake Reader 0",
    vendorId: null,
    productId: null,
    interfaceClass: null,
    exchangeLevel: null,
    device: null,
    pinPad: false,
    slots: 1,
    usable: true,
  });
  assert.equal(out.atr, SEED_ATR);
  assert.deepEqual(out.status, { present: true, powered: true, atr: SEED_ATR, protocol: "T=1" });
  assert.ok(out.log.includes("connect Fake Reader 0 shared t0,t1"), out.log.join("\n"));
  assert.equal(out.log.filter((l) => l === "establishContext").length, 3, "listing, the reader, its events");
  assert.equal(out.usable, false);
});

/** The seed's trace (seed.md), without the reader id and the random challenge bytes. */
const SEED_LINES = [
  "C: 00 20 00 81 - VERIFY",
  "   R: SW1/SW2=6E00 (Checking error: Class not supported) Lr=0",
  "C: 00 A4 04 04 - SELECT Lc=11",
  "      0005  E8 2B 06 01 04 01 81 C3 1F 02 01                 .+.........",
  "   R: SW1/SW2=9000 (Normal processing: No error) Lr=9",
  "      0000  62 07 82 01 78 85 02 01 02                       b...x....",
  "C: 00 20 00 81 - VERIFY Lc=6 ******",
  "   R: SW1/SW2=6700 (Checking error: Wrong length) Lr=0",
  "C: 00 84 00 00 - GET CHALLENGE      Le=69",
  "   R: SW1/SW2=9000 (Normal processing: No error) Lr=69",
];

for (const protocol of ["t1", "t0"]) {
  test(`the seed session through cardUpdate on a ${protocol} card: the seed trace, one transaction per template`, { timeout: 60_000 }, async () => {
    const out = await page.evaluate(async (protocol) => {
      const { relay, system, open } = globalThis.t;
      const sys = system({ card: { protocol } });
      const reader = await open(sys);
      const fetch = globalThis.fetch;
      globalThis.fetch = (...args) => {
        sys.note("POST");
        return fetch(...args);
      };
      const trace = [];
      try {
        const r = await relay.cardUpdate(reader, "/rt/test", { onTrace: (l) => trace.push(l) });
        return { status: r.status, apdus: r.apdus, trace, log: sys.log };
      } finally {
        globalThis.fetch = fetch;
        await reader.close();
      }
    }, protocol);
    assert.equal(out.status, "completed");
    assert.equal(out.apdus, 5);
    const stripped = out.trace.map((l) => l.replace(/^[0-9A-F]{2} C: /, "C: "));
    let at = 0;
    for (const expected of SEED_LINES) {
      const found = stripped.indexOf(expected, at);
      assert.ok(found >= at, `missing, in order: ${expected}\n${out.trace.join("\n")}`);
      at = found + 1;
    }
    const log = out.log;
    // The reset (C0) is a disconnect("reset") and a new connect.
    assert.ok(log.includes("disconnect reset"), log.join("\n"));
    // Every card command of the update runs inside a transaction...
    const transmits = log.filter((l) => l.startsWith("transmit "));
    assert.ok(transmits.length >= 5);
    assert.deepEqual(transmits.filter((l) => !l.endsWith(" [tx]")), [], "transmits outside a transaction");
    // ...which ends with "leave" (not the default "reset") before the next POST.
    const starts = log.filter((l) => l === "startTransaction").length;
    assert.ok(starts >= 2, log.join("\n"));
    assert.equal(log.filter((l) => l === "endTransaction leave").length, starts);
    assert.equal(log.filter((l) => l.startsWith("endTransaction") && l !== "endTransaction leave").length, 0);
    assert.ok(log.filter((l) => l === "POST").length >= 3, log.join("\n"));
    let open = 0;
    for (const l of log) {
      if (l === "startTransaction") open++;
      if (l.startsWith("endTransaction")) open--;
      if (l === "POST") assert.equal(open, 0, `a POST inside a transaction\n${log.join("\n")}`);
    }
    if (protocol === "t0") {
      // SELECT (case 4) goes without Le; 61 09 is fetched with GET RESPONSE.
      assert.ok(log.includes("transmit 00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 [tx]"), log.join("\n"));
      assert.ok(log.includes("transmit 00 C0 00 00 09 [tx]"), log.join("\n"));
    }
    assert.ok(log.at(-1) === "disconnect leave" || log.includes("disconnect leave"), "close leaves the card");
  });
}

test("T=0: 61xx is fetched with GET RESPONSE, 6Cxx re-sent with P3 = xx; an extended APDU is refused", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { hex, toHex, system, open, errorOf } = globalThis.t;
    const sys = system({ card: { protocol: "t0" } });
    const reader = await open(sys);
    const select = toHex(await reader.transmit(hex("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00")));
    const data = toHex(await reader.transmit(hex("00 CA 01 02 00")));
    const extended = await errorOf(reader.transmit(hex("00 84 00 00 00 02 00")));
    const status = await reader.status();
    await reader.close();
    return { select, data, extended, protocol: status.protocol, log: sys.log.filter((l) => l.startsWith("transmit")) };
  });
  assert.equal(out.select, "62 07 82 01 78 85 02 01 02 90 00");
  assert.equal(out.data, "A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 AA AB AC AD AE AF 90 00");
  assert.equal(out.protocol, "T=0");
  assert.deepEqual(out.log, [
    "transmit 00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01",
    "transmit 00 C0 00 00 09",
    "transmit 00 CA 01 02 00",
    "transmit 00 CA 01 02 10",
  ]);
  assert.equal(out.extended.code, "invalid-argument");
});

test("T=1: extended APDUs travel whole", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { hex, system, open } = globalThis.t;
    const sys = system({ card: { protocol: "t1" } });
    const reader = await open(sys);
    // GET CHALLENGE with extended Le 0x0400, and a command with 300 bytes of extended Lc.
    const challenge = await reader.transmit(hex("00 84 00 00 00 04 00"));
    const long = Uint8Array.of(0x00, 0xa4, 0x04, 0x04, 0x00, 0x01, 0x2c, ...new Uint8Array(300));
    const answer = await reader.transmit(long);
    await reader.close();
    return { length: challenge.length, sw: Array.from(challenge.slice(-2)), answer: Array.from(answer), sent: sys.log.filter((l) => l.startsWith("transmit")).map((l) => l.split(" ").length - 1) };
  });
  assert.equal(out.length, 1024 + 2);
  assert.deepEqual(out.sw, [0x90, 0x00]);
  assert.deepEqual(out.answer, [0x6a, 0x82], "the card saw the whole extended command");
  assert.deepEqual(out.sent, [7, 307]);
});

test("removal: a running update fails as card-absent, cardremoved then cardinserted, and the reader works again", { timeout: 60_000 }, async () => {
  const out = await page.evaluate(async (READER) => {
    const { relay, hex, toHex, system, open, errorOf, nextEvent } = globalThis.t;
    const sys = system();
    const reader = await open(sys);
    const events = [];
    for (const type of ["cardinserted", "cardremoved"]) reader.addEventListener(type, (e) => events.push(`${e.type} ${e.slot}`));
    let removed = false;
    const update = await errorOf(
      relay.cardUpdate(reader, "/rt/test", {
        onTrace: (line) => {
          if (!removed && / C: /.test(line)) {
            removed = true;
            sys.removeCard(READER);
          }
        },
      }),
    );
    const absent = await reader.status();
    const inserted = nextEvent(reader, "cardinserted");
    sys.insertCard(READER, { protocol: "t1" });
    await inserted;
    const atr = toHex(await reader.powerOn());
    const response = toHex(await reader.transmit(hex("00 84 00 00 08")));
    // Idle removal and insertion come as events too (getStatusChange and eventCount).
    const gone = nextEvent(reader, "cardremoved");
    sys.removeCard(READER);
    await gone;
    const back = nextEvent(reader, "cardinserted");
    sys.insertCard(READER, { protocol: "t0" });
    await back;
    await reader.close();
    return { update, absent: absent.present, atr, sw: response.slice(-5), events };
  }, READER);
  assert.equal(out.update.code, "card-absent");
  assert.equal(out.absent, false);
  assert.equal(out.atr, SEED_ATR);
  assert.equal(out.sw, "90 00");
  assert.deepEqual(out.events, ["cardremoved 0", "cardinserted 0", "cardremoved 0", "cardinserted 0"]);
});

test("eventCount: a card swapped between two answers is a removal and an insertion", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async (READER) => {
    const { hex, toHex, system, open, nextEvent } = globalThis.t;
    const sys = system({ card: { protocol: "t1" } });
    const reader = await open(sys);
    await reader.powerOn();
    const events = [];
    for (const type of ["cardinserted", "cardremoved"]) reader.addEventListener(type, (e) => events.push(e.type));
    const inserted = nextEvent(reader, "cardinserted");
    sys.swapCard(READER, { protocol: "t0" });
    await inserted;
    // The old connection went with the old card: the new one is not powered until a call
    // powers it on (transmit does, as on the WebUSB route), and it is the T=0 card.
    const before = await reader.status();
    const sw = toHex(await reader.transmit(hex("00 84 00 00 08"))).slice(-5);
    const after = await reader.status();
    await reader.close();
    return { events, powered: before.powered, sw, protocol: after.protocol, atr: toHex(after.atr), connects: sys.log.filter((l) => l.startsWith("connect")).length };
  }, READER);
  assert.deepEqual(out.events, ["cardremoved", "cardinserted"]);
  assert.equal(out.powered, false);
  assert.equal(out.sw, "90 00");
  assert.equal(out.protocol, "T=0");
  assert.equal(out.atr, "3B 12 96 14 50");
  assert.equal(out.connects, 2);
});

test("a PIN pad (part 10 FEATURE_VERIFY_PIN_DIRECT): pinPad, the PIN typed on the reader, never through the page", { timeout: 60_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, system, open, errorOf } = globalThis.t;
    const sys = system({ pinPad: true, card: { protocol: "t1", pin: "123456" } });
    sys.pinEntry = "123456";
    const reader = await open(sys);
    const pinPad = reader.pinPad;
    const asked = [];
    const notes = [];
    const r = await relay.cardUpdate(reader, "/rt/pin-test", {
      pinRequired: 0x81,
      onPinPad: (info) => asked.push(info),
      pin: () => "never asked",
      onNotification: ({ message }) => notes.push(message),
    });
    await reader.close();
    // A pad that times out, and a reader without a pad.
    const slow = system({ pinPad: true, card: { protocol: "t0", pin: "123456" } });
    const slowReader = await open(slow);
    const timeout = await errorOf(relay.cardUpdate(slowReader, "/rt/pin-test", { pinRequired: 0x81 }));
    await slowReader.close();
    const plain = await open(system({ card: { protocol: "t1", pin: "123456" } }));
    const plainPad = plain.pinPad;
    await plain.close();
    return { pinPad, asked, status: r.status, notes, log: sys.log, timeout, plainPad };
  });
  assert.equal(out.pinPad, true);
  assert.equal(out.plainPad, false);
  assert.deepEqual(out.asked, [{ triesLeft: 3 }]);
  assert.equal(out.status, "completed");
  assert.deepEqual(out.notes, ["PIN verified"]);
  assert.ok(out.log.includes("control 42000D48"), out.log.join("\n"));
  // bTimerOut 30, bTimerOut2 0, bmFormatString 82, no block, no length format, 16..4
  // digits, validation key, one message, 0409, message 0, no prologue, 4 bytes of template.
  assert.ok(
    out.log.includes("control 42330006 1E 00 82 00 00 10 04 02 01 09 04 00 00 00 00 04 00 00 00 00 20 00 81"),
    out.log.join("\n"),
  );
  // VERIFY without data (the PIN state) goes through transmit; VERIFY with data never does.
  assert.deepEqual(out.log.filter((l) => /^transmit 00 20 00 81 [0-9A-F]{2}/.test(l)), [], "no PIN through transmit");
  assert.ok(out.log.includes("transmit 00 20 00 81"), "the PIN state is read first");
  assert.equal(out.timeout.code, "timeout");
});

test("a PIN pad known only from the first connection: opened with the slot empty, the card inserted, pinRequired uses the pad", { timeout: 60_000 }, async () => {
  const out = await page.evaluate(async (READER) => {
    const { relay, system, open, errorOf } = globalThis.t;
    const sys = system({ pinPad: true, card: null });
    sys.pinEntry = "123456";
    const reader = await open(sys, { reader: READER });
    // Part 10's GET_FEATURE_REQUEST needs a connection, so before one the pad is unknown.
    const padAtOpen = reader.pinPad;
    sys.insertCard(READER, { protocol: "t1", pin: "123456" });
    const asked = [];
    const pinAsked = [];
    const notes = [];
    const result = await errorOf(
      relay.cardUpdate(reader, "/rt/pin-test", {
        pinRequired: 0x81,
        onPinPad: (info) => asked.push(info),
        pin: (info) => {
          pinAsked.push(info);
          return "654321";
        },
        onNotification: ({ message }) => notes.push(message),
      }),
    );
    const padAfter = reader.pinPad;
    await reader.close();
    return { padAtOpen, padAfter, result, asked, pinAsked, notes, log: sys.log };
  }, READER);
  assert.equal(out.padAtOpen, false);
  assert.equal(out.padAfter, true);
  assert.equal(out.result.code, "resolved", JSON.stringify(out.result));
  assert.deepEqual(out.asked, [{ triesLeft: 3 }], "the reader waited for the PIN on its pad");
  assert.deepEqual(out.pinAsked, [], "pin() is not asked on a pad reader");
  assert.deepEqual(out.notes, ["PIN verified"]);
  assert.ok(out.log.some((l) => l.startsWith("control 42330006 ")), out.log.join("\n"));
  assert.deepEqual(out.log.filter((l) => /^transmit 00 20 00 81 [0-9A-F]{2}/.test(l)), [], "no PIN through transmit");
});

test("the reader unplugged: disconnected event, usable false, calls fail as disconnected", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async (READER) => {
    const { hex, system, open, errorOf, nextEvent } = globalThis.t;
    const sys = system();
    const reader = await open(sys);
    await reader.powerOn();
    const gone = nextEvent(reader, "disconnected");
    sys.unplug(READER);
    const event = await gone;
    const transmit = await errorOf(reader.transmit(hex("00 84 00 00 08")));
    const usable = reader.usable;
    await reader.close();
    return { event, transmit, usable };
  }, READER);
  assert.equal(out.event.type, "disconnected");
  assert.equal(out.transmit.code, "disconnected");
  assert.equal(out.usable, false);
});

test("sharing violation: another application's exclusive connection is device-busy", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async (READER) => {
    const { hex, system, open, errorOf } = globalThis.t;
    const sys = system();
    sys.holdExclusive(READER);
    const opened = await errorOf(open(sys, { reader: READER }));
    sys.holdExclusive(READER, false);
    const reader = await open(sys, { reader: READER });
    const ok = await errorOf(reader.transmit(hex("00 84 00 00 08")));
    await reader.close();
    return { opened, ok };
  }, READER);
  assert.equal(out.opened.code, "device-busy");
  assert.match(out.opened.hint, /Another application has exclusive use of the card/);
  assert.doesNotMatch(out.opened.hint, /pcscd/);
  assert.equal(out.ok.code, "resolved");
});

for (const mute of ["unresponsive-card", "unpowered-card"]) {
  test(`a mute card (${mute}) is card-mute`, { timeout: 30_000 }, async () => {
    const out = await page.evaluate(async ({ mute, READER }) => {
      const { system, open, errorOf } = globalThis.t;
      const sys = system({ card: null });
      const reader = await open(sys, { reader: READER });
      sys.insertCard(READER, { protocol: "t1", mute });
      const power = await errorOf(reader.powerOn());
      await reader.close();
      const direct = system({ card: { protocol: "t0", mute } });
      const opened = await errorOf(open(direct));
      return { power, opened };
    }, { mute, READER });
    assert.equal(out.power.code, "card-mute");
    assert.equal(out.opened.code, "card-mute");
  });
}

test("abort: the wait for a card, a pending transmit, and a card update; the context stays usable", { timeout: 60_000 }, async () => {
  const out = await page.evaluate(async (READER) => {
    const { relay, hex, toHex, system, open, errorOf } = globalThis.t;
    // No card anywhere: openSmartCard waits for one until the signal ends the wait.
    const empty = system({ card: null });
    const waiting = new AbortController();
    const pending = errorOf(open(empty, { signal: waiting.signal }));
    await new Promise((r) => setTimeout(r, 50));
    waiting.abort();
    const wait = await pending;
    // A slow transmit answers aborted at once; the next call waits for it instead of
    // colliding with it (InvalidStateError).
    const sys = system();
    const reader = await open(sys);
    sys.delay = 200;
    const controller = new AbortController();
    const slow = errorOf(reader.transmit(hex("00 84 00 00 08"), { signal: controller.signal }));
    controller.abort();
    const transmit = await slow;
    const next = toHex(await reader.transmit(hex("00 84 00 00 08"))).slice(-5);
    sys.delay = 0;
    // A card update aborted at its first command.
    const stop = new AbortController();
    const update = await errorOf(
      relay.cardUpdate(reader, "/rt/test", {
        signal: stop.signal,
        onTrace: (line) => / C: /.test(line) && stop.abort(),
      }),
    );
    const after = await relay.cardUpdate(reader, "/rt/test", {});
    await reader.close();
    return { wait, transmit, next, update, after: after.status, invalid: sys.log.filter((l) => l.includes("InvalidState")) };
  }, READER);
  assert.equal(out.wait.code, "aborted");
  assert.equal(out.transmit.code, "aborted");
  assert.equal(out.next, "90 00");
  assert.equal(out.update.code, "aborted");
  assert.equal(out.after, "completed");
});

test("close disconnects with leave and ends the events' wait; power off unpowers", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { system, open, errorOf } = globalThis.t;
    const sys = system();
    const reader = await open(sys);
    await reader.powerOn();
    await reader.powerOff();
    const afterOff = [...sys.log];
    await reader.powerOn();
    await reader.close();
    await new Promise((r) => setTimeout(r, 20));
    const closed = await errorOf(reader.powerOn());
    const r = sys.reader("Fake Reader 0");
    return { afterOff, log: sys.log, connections: r.connections, closed, watchers: sys.watchers.size };
  });
  assert.equal(out.afterOff.filter((l) => l.startsWith("disconnect")).at(-1), "disconnect unpower");
  assert.equal(out.log.filter((l) => l === "disconnect leave").length, 1);
  assert.ok(out.log.includes("getStatusChange cancelled"), out.log.join("\n"));
  assert.equal(out.connections, 0);
  assert.equal(out.watchers, 0, "no getStatusChange left waiting");
  assert.equal(out.closed.code, "disconnected");
});

test("permission refused at connect, no service, a policy that forbids it, an unknown reader", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { relay, system, open, errorOf } = globalThis.t;
    return {
      denied: await errorOf(open(system({ permission: "deny" }))),
      service: await errorOf(open(system({ service: false }))),
      policy: await errorOf(open(system({ policy: false }))),
      unknown: await errorOf(open(system(), { reader: "No Such Reader" })),
      none: await errorOf(open(system({ readers: [], card: null }))),
      missing: await errorOf(relay.CardReader.openSmartCard({ smartCard: null }).catch((e) => { throw e; })),
      list: await errorOf(relay.CardReader.listSmartCardReaders({ smartCard: system({ service: false }).resourceManager })),
    };
  });
  assert.equal(out.denied.code, "permission-denied");
  assert.match(out.denied.hint, /refused/);
  assert.equal(out.service.code, "service-unavailable");
  assert.match(out.service.hint, /Smart Card Connector/);
  assert.equal(out.policy.code, "permission-denied");
  assert.match(out.policy.hint, /Isolated Web App/);
  assert.equal(out.unknown.code, "disconnected");
  assert.equal(out.none.code, "disconnected");
  assert.equal(out.missing.code, "unsupported-reader", "Debian's Chromium has no navigator.smartCard");
  assert.equal(out.list.code, "service-unavailable");
});

test("another application resets the card: reconnect, the caller is told, the next command works", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async (READER) => {
    const { hex, toHex, system, open, errorOf } = globalThis.t;
    const sys = system();
    const reader = await open(sys);
    await reader.powerOn();
    sys.resetByOtherApp(READER);
    const reset = await errorOf(reader.transmit(hex("00 84 00 00 08")));
    const next = toHex(await reader.transmit(hex("00 84 00 00 08"))).slice(-5);
    await reader.close();
    return { reset, next, connects: sys.log.filter((l) => l.startsWith("connect")).length };
  }, READER);
  assert.equal(out.reset.code, "protocol");
  assert.match(out.reset.message, /another application reset the card/);
  assert.match(out.reset.hint, /reconnected/);
  assert.equal(out.next, "90 00");
  assert.equal(out.connects, 2);
});

test("calls made together run one at a time on the context (no InvalidStateError)", { timeout: 30_000 }, async () => {
  const out = await page.evaluate(async () => {
    const { hex, toHex, system, open } = globalThis.t;
    const sys = system();
    const reader = await open(sys);
    const results = await Promise.all([
      reader.powerOn().then(toHex),
      reader.transmit(hex("00 84 00 00 04")).then((r) => toHex(r.slice(-2))),
      reader.status().then((s) => s.present),
      reader.transmit(hex("00 A4 04 0C 0B E8 2B 06 01 04 01 81 C3 1F 02 01")).then(toHex),
    ]);
    await reader.close();
    return results;
  });
  assert.deepEqual(out, [SEED_ATR, "90 00", true, "90 00"]);
});
