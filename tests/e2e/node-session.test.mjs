// The library in Node.js against small servers written here, the way real servers behave:
// - a GP Amd B admin server that keeps one admin session per TCP connection (as SCP81
//   servers do) must see every POST of a session on one connection;
// - a servlet container that does not know the caller's sessionId creates its own session
//   and sets JSESSIONID: later POSTs must carry the server's cookie, not the caller's id.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { startServer } from "./harness.mjs";

const GP_SCRIPT_TYPE = "application/vnd.globalplatform.card-content-mgt;version=1.0";
// AA { 22 { GET CHALLENGE 8 } }: one C-APDU per script (GP Amd B command script).
const SCRIPT = Buffer.from([0xaa, 0x07, 0x22, 0x05, 0x00, 0x84, 0x00, 0x00, 0x08]);

let lib;

before(async () => {
  // The simulator build of the package (scripts/build.sh), loaded as Node.js users load it.
  const entry = new URL("../../pkg-sim/card-relay.js", import.meta.url);
  lib = await import(entry.href);
  await lib.default({ module_or_path: await readFile(new URL("card_relay_bg.wasm", entry)) });
});

/**
 * Starts a GP admin server answering `scripts` scripts, then 204. `onPost(req)` may return
 * an extra header object for the answer. Resolves to { url, posts, close }, where posts
 * records { port, cookie, resume, names } per POST (names: every header name, lower case).
 */
async function gpServer(scripts, onPost = () => ({})) {
  const posts = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      posts.push({
        port: req.socket.remotePort,
        cookie: req.headers.cookie ?? null,
        resume: req.headers["x-admin-resume"] ?? null,
        names: req.rawHeaders.filter((_, i) => i % 2 == 0).map((n) => n.toLowerCase()),
      });
      const extra = onPost(req, posts.length);
      if (posts.length > scripts) {
        res.writeHead(204, extra);
        res.end();
        return;
      }
      res.writeHead(200, { "content-type": GP_SCRIPT_TYPE, "x-admin-next-uri": "/admin/next", ...extra });
      res.end(SCRIPT);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}/admin`,
    posts,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

async function update(url, options = {}) {
  const reader = await lib.CardReader.open(lib.createSimulatedReader({ profile: "default", card: "seed" }));
  try {
    return await lib.cardUpdate(reader, url, { dialect: "gp", approve: () => "once", ...options });
  } finally {
    await reader.close();
  }
}

test("one session uses one keep-alive connection", async () => {
  const server = await gpServer(12);
  try {
    const result = await update(server.url);
    assert.equal(result.apdus, 12);
    assert.equal(server.posts.length, 13);
    const ports = new Set(server.posts.map((p) => p.port));
    assert.equal(ports.size, 1, `client ports per POST: ${server.posts.map((p) => p.port).join(" ")}`);
    // A second session gets a connection of its own; nothing stays open in between.
    await update(server.url);
    const second = new Set(server.posts.slice(13).map((p) => p.port));
    assert.equal(second.size, 1);
  } finally {
    server.close();
  }
});

test("sessionId seeds the cookie jar and the server's Set-Cookie replaces it", async () => {
  // A servlet container that does not know JSESSIONID=ocf-1 starts its own session.
  const server = await gpServer(3, (req, n) => (n === 1 ? { "set-cookie": "JSESSIONID=srv-7; Path=/; HttpOnly" } : {}));
  try {
    await update(server.url, { sessionId: "ocf-1" });
    const cookies = server.posts.map((p) => p.cookie);
    assert.deepEqual(cookies, ["JSESSIONID=ocf-1", "JSESSIONID=srv-7", "JSESSIONID=srv-7", "JSESSIONID=srv-7"]);
  } finally {
    server.close();
  }
});

test("X-Admin-Targeted-Application is returned as targetedApplication and traced", async () => {
  const target = "//aid/A000000151/000000";
  const server = await gpServer(1, () => ({ "x-admin-targeted-application": target }));
  try {
    const lines = [];
    const result = await update(server.url, { onTrace: (line) => lines.push(line) });
    assert.equal(result.targetedApplication, target);
    assert.ok(lines.includes(`X-Admin-Targeted-Application: ${target}`), lines.join("\n"));
  } finally {
    server.close();
  }
});

test("a T=1 CRC card of either form through the simulated TPDU reader", async () => {
  // The seed's ATR with TC3 = 01 (CRC); GemPC Twin is a TPDU reader: the library runs
  // PPS, SetParameters, S(IFS) and every block itself, so the CRC form matters throughout.
  const { readFile } = await import("node:fs/promises");
  const profiles = JSON.parse(await readFile(new URL("../../www/generated/profiles.json", import.meta.url), "utf8"));
  const atr = "3B FE 18 00 00 81 71 FE 45 01 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 BB";
  for (const crc of ["libccid", "x25"]) {
    const device = lib.createSimulatedReader({
      profile: "GemPCTwin",
      profileText: profiles.GemPCTwin,
      card: { app: "seed", atr, crc },
    });
    const reader = await lib.CardReader.open(device);
    try {
      const got = await reader.powerOn();
      assert.equal(Buffer.from(got).toString("hex"), atr.replaceAll(" ", "").toLowerCase(), crc);
      const select = Uint8Array.from(Buffer.from("00A404040BE82B0601040181C31F020100", "hex"));
      const fcp = await reader.transmit(select);
      assert.equal(Buffer.from(fcp).toString("hex"), "620782017885020102" + "9000", crc);
      // A chained response: 300 bytes in IFSD-sized blocks.
      const long = await reader.transmit(Uint8Array.of(0x00, 0xca, 0x01, 0x01, 0x00, 0x00, 0x00));
      assert.equal(long.length, 302, crc);
    } finally {
      await reader.close();
    }
  }
});

test("an OpenSCDP notification's time to completion reaches onNotification and lastNotification", async () => {
  // ramoverhttp.md §2.2: notify(1, "Abc") with a time to completion of 30 s (C3 01 1E), then
  // 204 ends the session.
  const NOTIFY = Buffer.from([0xaa, 0x0d, 0xe0, 0x0b, 0x02, 0x01, 0x01, 0x0c, 0x03, 0x41, 0x62, 0x63, 0xc3, 0x01, 0x1e]);
  let posts = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      posts += 1;
      res.writeHead(posts === 1 ? 200 : 204);
      res.end(posts === 1 ? NOTIFY : undefined);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  try {
    const seen = [];
    const result = await update(`http://127.0.0.1:${server.address().port}/rt/test`, {
      dialect: "openscdp",
      onNotification: (n) => seen.push(n),
    });
    const expected = { code: 1, message: "Abc", timeToCompletion: 30 };
    assert.deepEqual(seen, [expected]);
    assert.deepEqual(result.lastNotification, expected);
    assert.equal(result.status, "completed");
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test("a line break in sessionId or agentId forges no request header: the update fails first", async () => {
  // Fetch standard, "header value": no CR, LF or NUL (RFC 9110 §5.5); Headers refuses one
  // with a TypeError, so the request is never made. A legacy link URL-decodes its sessionId,
  // so `%0A` arrives as a real line feed; agentId goes out as GP's X-Admin-From.
  const server = await gpServer(0);
  const gp = { dialect: "gp", approve: () => "once" };
  const legacy = (id) => `http://localhost:27001/x.png?url=${encodeURIComponent(server.url)}&sessionId=${id}`;
  const cases = [
    ["sessionId", (reader) => lib.cardUpdateFromLegacyUrl(reader, legacy("abc%0AX-Evil%0Ax"), gp)],
    ["agentId", (reader) => lib.cardUpdate(reader, server.url, { ...gp, agentId: "agent\nX-Evil\nx" })],
    ["agentId with CR", (reader) => lib.cardUpdate(reader, server.url, { ...gp, agentId: "agent\r\nX-Evil: x" })],
  ];
  try {
    for (const [what, run] of cases) {
      const reader = await lib.CardReader.open(lib.createSimulatedReader({ profile: "default", card: "seed" }));
      try {
        await assert.rejects(run(reader), (e) => {
          assert.equal(e.code, "network-error", `${what}: ${e.code} ${e.message}`);
          assert.match(e.message, /header/i, what);
          return true;
        });
      } finally {
        await reader.close();
      }
    }
    const names = server.posts.flatMap((p) => p.names);
    assert.ok(!names.includes("x-evil"), `headers the server saw: ${names.join(" ")}`);
    assert.equal(server.posts.length, 0, "no request reaches the server");
    // A well-formed id still goes through, as the session's cookie.
    await update(server.url, { sessionId: "abc" });
    assert.deepEqual(server.posts.map((p) => p.cookie), ["JSESSIONID=abc"]);
  } finally {
    server.close();
  }
});

test("a Node.js script ends when its update ends, not when the HTTP timeout would have fired", { timeout: 60_000 }, async () => {
  // The update's HTTP timeout (here 20 s) is a sleep on the clock's one timer; once the
  // exchange is answered nobody waits for it, so it must not keep the process running
  // (Node.js runs while a ref'd timer is armed). Measured from a child process: the time
  // from the update's end to the process's exit.
  const { spawn } = await import("node:child_process");
  const server = await gpServer(1);
  const entry = new URL("../../pkg-sim/card-relay.js", import.meta.url).href;
  const script = `
    import { readFile } from "node:fs/promises";
    const lib = await import(${JSON.stringify(entry)});
    await lib.default({ module_or_path: await readFile(new URL("card_relay_bg.wasm", ${JSON.stringify(entry)})) });
    const reader = await lib.CardReader.open(lib.createSimulatedReader({ profile: "default", card: "seed" }));
    const r = await lib.cardUpdate(reader, ${JSON.stringify(server.url)}, { dialect: "gp", approve: () => "once", timeout: 20000 });
    await reader.close();
    process.stdout.write(r.status + " " + r.apdus + "\\n");
    const ended = Date.now();
    process.on("exit", () => process.stdout.write("lingered " + (Date.now() - ended) + "\\n"));
  `;
  try {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const started = Date.now();
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
    assert.match(out, /^completed 1\n/);
    const lingered = Number(/lingered (\d+)/.exec(out)?.[1]);
    assert.ok(lingered < 1_000, `the process ran on ${lingered} ms after the update (${out.trim()})`);
    assert.ok(Date.now() - started < 15_000);
  } finally {
    server.close();
  }
});

test("a timeout beyond the timer range (2^31 - 1 ms) neither overflows a timer nor cuts the update short", async () => {
  // setTimeout's delay is a WebIDL `long` (HTML "timer initialization steps"): a larger one
  // wraps in browsers and becomes 1 ms in Node.js, with a TimeoutOverflowWarning.
  const warnings = [];
  const onWarning = (w) => warnings.push(w.name);
  process.on("warning", onWarning);
  const server = await gpServer(2);
  try {
    const result = await update(server.url, { timeout: 2 ** 32 });
    assert.equal(result.apdus, 2);
    assert.equal(server.posts.length, 3);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(warnings.filter((name) => name === "TimeoutOverflowWarning"), []);
  } finally {
    process.off("warning", onWarning);
    server.close();
  }
});

test("an abort while the server thinks ends the POST at once and tells the server (OpenSCDP cancel)", async () => {
  // The reference server holds its first answer for 3 s; the update is aborted after 300 ms.
  // The request is aborted then (not waited for), and the cancel reply (E1 "Session
  // canceled", RAMOverHTTP) reaches the server, whose session then reads as failed.
  const server = await startServer();
  const id = `node-cancel-${process.pid}-${Date.now()}`;
  const reader = await lib.CardReader.open(lib.createSimulatedReader({ profile: "default", card: "seed" }));
  try {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    await assert.rejects(
      lib.cardUpdate(reader, `${server.url}rt/fault/slow-ms/3000`, {
        approve: () => "once",
        sessionId: id,
        signal: controller.signal,
      }),
      (e) => e.code === "aborted",
    );
    assert.ok(Date.now() - started < 2500, `rejected after ${Date.now() - started} ms`);
    for (const deadline = Date.now() + 10_000; ; ) {
      const r = await fetch(`${server.url}rt/session`, { headers: { cookie: `JSESSIONID=${id}` } });
      const s = await r.json();
      if (s.state === "failed") {
        assert.match(s.error, /Session canceled/);
        break;
      }
      assert.ok(Date.now() < deadline, JSON.stringify(s));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await reader.close();
    await server.stop();
  }
});

test("a USB device method that calls another reader at once neither traps nor stalls either reader", { timeout: 20_000 }, async () => {
  // A page's wrapper of a USBDevice (a logger, a fake) may call the library from inside a
  // device method: readerA's transferOut starts a transmit on readerB before it returns.
  // The promise table must not be borrowed across that call (a nested borrow is a trap,
  // which would stop the module). A module instance of its own (the URL's query), so a
  // failure here does not break the other tests.
  const entry = new URL("../../pkg-sim/card-relay.js", import.meta.url);
  const own = await import(`${entry.href}?reentrant`);
  await own.default({ module_or_path: await readFile(new URL("card_relay_bg.wasm", entry)) });
  const GET_CHALLENGE = new Uint8Array([0x00, 0x84, 0x00, 0x00, 0x08]);
  const readerB = await own.CardReader.open(own.createSimulatedReader({ profile: "default", card: "seed" }));
  const simA = own.createSimulatedReader({ profile: "default", card: "seed" });
  let armed = false;
  let inner;
  const wrapped = new Proxy(simA, {
    get(target, key) {
      const value = Reflect.get(target, key);
      if (key === "transferOut") {
        return (...args) => {
          if (armed) {
            armed = false;
            inner = readerB.transmit(GET_CHALLENGE);
          }
          return value.apply(target, args);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const readerA = await own.CardReader.open(wrapped);
  const within = (p) => Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error("no answer in 3 s")), 3000))]);
  try {
    armed = true;
    const outer = await within(readerA.transmit(GET_CHALLENGE));
    assert.equal(outer.length, 10, "readerA: 8 bytes and 9000");
    assert.equal((await within(inner)).length, 10, "the nested transmit on readerB");
    assert.equal((await within(readerB.transmit(GET_CHALLENGE))).length, 10, "readerB afterwards");
    assert.equal((await within(readerA.transmit(GET_CHALLENGE))).length, 10, "readerA afterwards");
  } finally {
    await readerA.close().catch(() => {});
    await readerB.close().catch(() => {});
  }
});

test("a next URI to another host is refused however it is spelled, before any request reaches that host", async () => {
  // GP Amd B's X-Admin-Next-URI, written in forms a WHATWG URL parser (fetch's) reads as
  // another host: a backslash for the slashes, a scheme without "//", a percent-encoded
  // host (URL §4.4 special-scheme quirks, §3.5 host parsing).
  const other = await gpServer(5);
  const port = new URL(other.url).port;
  try {
    for (const next of [
      `http://127.0.0.2:${port}/a`,
      `http:\\\\127.0.0.1:${port}/b`,
      `http:127.0.0.1:${port}/c`,
      `http://%31%32%37.0.0.1:${port}/d`,
    ]) {
      const server = await gpServer(3, () => ({ "x-admin-next-uri": next }));
      try {
        await assert.rejects(update(server.url), (e) => e.code === "not-approved", next);
        assert.equal(server.posts.length, 1, next);
      } finally {
        server.close();
      }
    }
    assert.equal(other.posts.length, 0, "the other server got no request");
  } finally {
    other.close();
  }
});
