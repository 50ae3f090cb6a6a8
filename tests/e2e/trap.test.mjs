// A WebAssembly trap (a Rust panic: the browser build aborts, `-Cpanic=immediate-abort`,
// so the panic is a WebAssembly.RuntimeError "unreachable" with no unwinding) must never
// hang a promise or escape untyped (the brief: "no exception escapes", "nothing hangs", "a
// clear, typed error"). pkg-sim's test-only export `testPanic(later)` panics in the export
// call itself (`later` false) or in a task after an await. In Node.js (pkg-sim as Node users
// load it) and in Chromium: the call rejects with CardRelayError `internal` and its hint, a
// pending transmit on a simulated reader rejects the same at once, later calls reject or
// throw `internal` without entering the wasm, no rejection goes unhandled, and the
// simulated reader is released (closed).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer as createNetServer } from "node:net";
import { startServer, launchBrowser } from "./harness.mjs";

// Well below node:test's default (none) and the driver's own timeouts (seconds).
const BOUND = { timeout: 8000 };

/**
 * The scenario, self-contained (it also runs in the page): `relay` is an initialised
 * card-relay-simulator module of its own (the trap breaks it for good).
 */
async function scenario(relay, later) {
  const describe = (e) => ({
    code: e?.code,
    typed: e instanceof relay.CardRelayError,
    message: e?.message,
    hint: e?.hint,
  });
  const outcome = (p) => p.then((v) => ({ ok: true, v: String(v) }), describe);
  const sync = (f) => {
    try {
      return { ok: true, v: String(f()) };
    } catch (e) {
      return describe(e);
    }
  };
  const device = relay.createSimulatedReader({ card: "seed" });
  // The WebUSB object the reader watches for its `disconnect` event.
  const bus = new EventTarget();
  const reader = await relay.CardReader.open(device, { usb: bus });
  await reader.powerOn();
  // A slow card: the GET CHALLENGE stays pending in a task of the executor.
  device.setFault("late", 20000);
  const pending = outcome(reader.transmit("00 84 00 00 08"));
  await new Promise((r) => setTimeout(r, 50));
  const start = performance.now();
  const panic = await outcome(relay.testPanic(later));
  const transmit = await pending;
  const ms = performance.now() - start;
  const status = await outcome(reader.status());
  const name = sync(() => reader.name);
  const version = sync(() => relay.version());
  const update = await outcome(relay.cardUpdate(reader, "http://127.0.0.1:9/rt/test", { approve: () => "once" }));
  const another = sync(() => relay.createSimulatedReader({ card: "seed" }));
  // Unplugged after the trap: the layer's listener must not throw into the event loop.
  const unplugged = Object.assign(new Event("disconnect"), { device });
  bus.dispatchEvent(unplugged);
  const close = await outcome(reader.close());
  // The release runs in promise reactions: a few turns.
  await new Promise((r) => setTimeout(r, 100));
  return { panic, transmit, ms, status, name, version, update, another, close, opened: device.opened };
}

function check(r) {
  const internal = (o, what) => {
    assert.equal(o.code, "internal", `${what}: ${JSON.stringify(o)}`);
    assert.equal(o.typed, true, `${what} is a CardRelayError`);
    assert.equal(o.message, "card-relay stopped after an internal error", what);
    assert.match(o.hint, /report it/, what);
    assert.match(o.hint, /reload/, what);
  };
  internal(r.panic, "testPanic");
  internal(r.transmit, "the pending transmit");
  assert.ok(r.ms < 1000, `the pending transmit settled after ${r.ms} ms`);
  internal(r.status, "a later status()");
  internal(r.name, "a later getter");
  internal(r.version, "version()");
  internal(r.update, "a later cardUpdate()");
  internal(r.another, "a later createSimulatedReader()");
  internal(r.close, "a later close()");
  assert.equal(r.opened, false, "the simulated reader was closed");
}

// ---- Node.js ----------------------------------------------------------------------------

const unhandled = [];
const onUnhandled = (e) => unhandled.push(e);
let instance = 0;

/** A fresh module instance of pkg-sim (its own wasm), initialised from the file. */
async function freshModule() {
  const entry = new URL("../../pkg-sim/card-relay.js", import.meta.url);
  const relay = await import(`${entry.href}?instance=${++instance}`);
  await relay.default({ module_or_path: await readFile(new URL("card_relay_bg.wasm", entry)) });
  return relay;
}

for (const later of [false, true]) {
  test(`node: a panic ${later ? "in a task" : "in the export call"} rejects internal, breaks the instance, releases the reader`, BOUND, async () => {
    process.on("unhandledRejection", onUnhandled);
    try {
      const r = await scenario(await freshModule(), later);
      check(r);
      await new Promise((ok) => setTimeout(ok, 50));
      assert.deepEqual(unhandled.map(String), []);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
}

test("node: a panic disconnects the Web Smart Card connection a reader holds", BOUND, async () => {
  // The fake of the Web Smart Card API the smartcard tests use (written from the WICG
  // specification), a classic script that defines globalThis.FakeSmartCard.
  (0, eval)(await readFile(new URL("../fixtures/fake-smartcard.js", import.meta.url), "utf8"));
  const sys = globalThis.FakeSmartCard.createSystem();
  sys.insertCard("Fake Reader 0", { protocol: "t1" });
  const relay = await freshModule();
  const reader = await relay.CardReader.openSmartCard({ smartCard: sys.resourceManager });
  await reader.powerOn();
  assert.equal(sys.reader("Fake Reader 0").connections, 1);
  const e = await relay.testPanic(true).catch((e) => e);
  assert.equal(e.code, "internal");
  await new Promise((ok) => setTimeout(ok, 100));
  assert.ok(sys.log.includes("disconnect leave"), sys.log.join("; "));
  assert.equal(sys.reader("Fake Reader 0").connections, 0);
  await assert.rejects(reader.transmit("00 84 00 00 08"), { code: "internal" });
});

test("node: a script whose top-level await meets a panic in a task exits with the internal error", BOUND, async () => {
  // The Node.js route: no hang, and not Node's exit 13 for a top-level await that never
  // settles, but the uncaught CardRelayError `internal` (exit status 1).
  const entry = new URL("../../pkg-sim/card-relay.js", import.meta.url);
  const script = `
    import { readFile } from "node:fs/promises";
    const relay = await import(${JSON.stringify(entry.href)});
    await relay.default({ module_or_path: await readFile(new URL("card_relay_bg.wasm", ${JSON.stringify(entry.href)})) });
    await relay.testPanic(true);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const [code] = await once(child, "exit");
  assert.equal(code, 1, stderr);
  assert.match(stderr, /CardRelayError\]?: card-relay stopped after an internal error/);
  assert.match(stderr, /code: 'internal'/);
});

test("node: a script that catches the internal error of a panic during a card update ends at once", BOUND, async () => {
  // A server that takes the request and never answers: the update waits for its HTTP
  // timeout (30 s here) when the panic comes. The script catches the error and returns:
  // nothing of the stopped module (its timer, the request) may keep Node.js running.
  const silent = createNetServer((socket) => socket.on("data", () => {}));
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  const { port } = silent.address();
  const entry = new URL("../../pkg-sim/card-relay.js", import.meta.url);
  const script = `
    import { readFile } from "node:fs/promises";
    const relay = await import(${JSON.stringify(entry.href)});
    await relay.default({ module_or_path: await readFile(new URL("card_relay_bg.wasm", ${JSON.stringify(entry.href)})) });
    const reader = await relay.CardReader.open(relay.createSimulatedReader({ card: "seed" }));
    const update = relay.cardUpdate(reader, "http://127.0.0.1:${port}/rt/test", { approve: () => "once", timeout: 30000 });
    await new Promise((ok) => setTimeout(ok, 300));
    const codes = await Promise.all([relay.testPanic(true), update].map((p) => p.catch((e) => e.code)));
    console.log(codes.join(" "));
    globalThis.ended = performance.now();
    process.on("exit", () => console.log(Math.round(performance.now() - globalThis.ended)));
  `;
  try {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
    const [codes, lingered] = stdout.trim().split("\n");
    assert.equal(codes, "internal internal");
    assert.ok(Number(lingered) < 1000, `the script ran on ${lingered} ms after its end`);
  } finally {
    silent.close();
  }
});

// ---- Chromium ---------------------------------------------------------------------------

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

for (const later of [false, true]) {
  test(`chromium: a panic ${later ? "in a task" : "in the export call"} rejects internal, breaks the instance, releases the reader`, BOUND, async () => {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    try {
      await page.goto(server.url);
      await page.waitForFunction(() => !document.getElementById("run").disabled);
      await page.evaluate(() => {
        globalThis.unhandled = [];
        addEventListener("unhandledrejection", (e) => globalThis.unhandled.push(String(e.reason)));
      });
      const r = await page.evaluate(
        `(async () => {
          const relay = await import("/pkg-sim/card-relay.js");
          await relay.default();
          return (${scenario})(relay, ${later});
        })()`,
      );
      check(r);
      await page.waitForTimeout(50);
      assert.deepEqual(await page.evaluate(() => globalThis.unhandled), []);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });
}
