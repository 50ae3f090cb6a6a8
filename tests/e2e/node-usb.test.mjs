// The JavaScript API in Node.js on a device of the `usb` package (issue 13): a test double
// with that package's shape and habits (tests/e2e/usb-double.mjs: synchronous throws while
// a transfer is pending, a 1000 ms default transfer timeout) in front of a simulated reader.
// Also the PIN pad fallback when a reader answers PC_to_RDR_Secure with a failed
// RDR_to_PC_SlotStatus. Needs pkg-sim/ (scripts/build.sh).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { root } from "./harness.mjs";
import { UsbPackageDouble } from "./usb-double.mjs";

let lib;
const escaped = [];
const onEscape = (e) => escaped.push(e);

before(async () => {
  process.on("uncaughtException", onEscape);
  process.on("unhandledRejection", onEscape);
  lib = await import(path.join(root, "pkg-sim/card-relay.js"));
  await lib.default({ module_or_path: await readFile(path.join(root, "pkg-sim/card_relay_bg.wasm")) });
});

after(() => {
  process.off("uncaughtException", onEscape);
  process.off("unhandledRejection", onEscape);
});

const SELECT = Uint8Array.from([0x00, 0xa4, 0x04, 0x04, 0x0b, 0xe8, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x81, 0xc3, 0x1f, 0x02, 0x01, 0x00]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sw = (r) => ((r[r.length - 2] << 8) | r[r.length - 1]).toString(16);

function double(options = {}, simOptions = {}) {
  const sim = lib.createSimulatedReader({ profile: "default", card: "seed", ...simOptions });
  return { sim, device: new UsbPackageDouble(sim, options) };
}

test("close() right after an exchange ends the reads, releases the interface, throws nothing", { timeout: 20_000 }, async () => {
  const { device } = double();
  const reader = await lib.CardReader.open(device);
  const r = await reader.transmit(SELECT);
  assert.equal(sw(r), "9000");
  assert.ok(device.pending > 0, "the interrupt read is pending, as in the real package");
  await reader.close();
  await sleep(50);
  assert.deepEqual(device.released, [0], "the interface was released");
  assert.equal(device.closed, true, "the device was closed");
  assert.equal(device.syncThrows, 0, "no call was made while a transfer was pending");
  assert.deepEqual(escaped, [], "no exception escaped");
  assert.equal(reader.usable, false);
});

test("a card slower than the package's 1000 ms default answers", { timeout: 20_000 }, async () => {
  const { device } = double({ answerDelayMs: 1_600 });
  const reader = await lib.CardReader.open(device);
  try {
    const started = Date.now();
    const r = await reader.transmit(SELECT);
    assert.equal(sw(r), "9000");
    assert.ok(Date.now() - started >= 1_500, "the answer came late");
  } finally {
    await reader.close();
  }
  assert.deepEqual(escaped, []);
});

test("card events keep coming after an idle second and more", { timeout: 20_000 }, async () => {
  const { sim, device } = double();
  const reader = await lib.CardReader.open(device);
  try {
    const events = [];
    reader.addEventListener("cardremoved", () => events.push("removed"));
    reader.addEventListener("cardinserted", () => events.push("inserted"));
    await reader.status();
    await sleep(2_200);
    const removed = once(reader, "cardremoved");
    sim.removeCard();
    await Promise.race([removed, sleep(3_000).then(() => assert.fail("no cardremoved event"))]);
    assert.deepEqual(events.slice(-1), ["removed"]);
  } finally {
    await reader.close();
  }
  assert.deepEqual(escaped, []);
});

test("the simulator's late fault: the answer comes after the delay", { timeout: 20_000 }, async () => {
  const sim = lib.createSimulatedReader({ profile: "default", card: "seed" });
  const reader = await lib.CardReader.open(sim);
  try {
    await reader.powerOn();
    sim.setFault("late", 1_200);
    const started = Date.now();
    assert.equal(sw(await reader.transmit(SELECT)), "9000");
    assert.ok(Date.now() - started >= 1_100, `answered after ${Date.now() - started} ms`);
  } finally {
    await reader.close();
  }
});

/** A RAMOverHTTP server whose session ends at once (204 to the first POST). */
async function emptySession() {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(204);
      res.end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${server.address().port}/rt/empty`, close: () => server.close() };
}

test("a PIN pad answered by a failed SlotStatus: told truthfully, pin() takes over", { timeout: 20_000 }, async () => {
  const profiles = JSON.parse(await readFile(path.join(root, "www/generated/profiles.json"), "utf8"));
  const open = async () => {
    const device = lib.createSimulatedReader({
      profile: "GemPCPinpad",
      profileText: profiles.GemPCPinpad,
      card: "pin",
      faults: { secureSlotStatus: true },
    });
    device.setPinEntry("123456");
    return lib.CardReader.open(device);
  };
  const server = await emptySession();
  try {
    const reader = await open();
    assert.equal(reader.pinPad, true, "the reader announces a PIN pad");
    const asked = [];
    const result = await lib.cardUpdate(reader, server.url, {
      approve: () => "once",
      pinRequired: 0x81,
      pin: ({ triesLeft }) => {
        asked.push(triesLeft);
        return "123456";
      },
    });
    assert.equal(result.status, "completed");
    assert.equal(asked.length, 1, "pin() was asked once");
    await reader.close();

    const second = await open();
    await assert.rejects(
      lib.cardUpdate(second, server.url, { approve: () => "once", pinRequired: 0x81 }),
      (e) => {
        assert.equal(e.code, "unsupported-reader");
        assert.equal(e.message, "this reader's pin pad cannot be used");
        assert.match(e.hint, /pin\(\)/);
        return true;
      },
    );
    await second.close();
  } finally {
    server.close();
  }
});
