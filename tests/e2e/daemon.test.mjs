// The agent's daemon (`card-relay --daemon --simulator`, agent/, built by scripts/test.sh)
// against the reference server: old pages' <img> requests (decoding, the servers file,
// images, what it refuses, www/legacy.html in Chromium) and the page API (/v1/info,
// /v1/card-update's NDJSON events, the origins file, CORS and Private Network Access
// preflights, agent-busy, cancel when the page closes the response).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, request } from "node:http";
import { connect } from "node:net";
import { once } from "node:events";
import { mkdtemp, readFile, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { inflateSync } from "node:zlib";
import { root, startServer, launchBrowser } from "./harness.mjs";

const AGENT = process.env.CARD_RELAY_AGENT ?? path.join(root, "target/debug/card-relay");
const PAGE = "http://page.example:8080";
let server;
let dir;

before(async () => {
  server = await startServer();
  dir = await mkdtemp(path.join(tmpdir(), "card-relay-daemon-"));
});

after(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** An HTTP request with the method, headers and Host of our choosing; resolves to { status, headers, body }. */
function http(url, { method = "GET", host, headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method,
        headers: host ? { ...headers, host } : headers,
        timeout: 30_000,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", reject);
    req.end(body);
  });
}

/** The colour of a PNG made of one colour (PNG spec: IHDR, zlib IDAT, filter byte per row). */
function pngColour(png) {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG");
  let offset = 8;
  let width = 0;
  let height = 0;
  const idat = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString("ascii", offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[9], 2, "truecolour");
    }
    if (type === "IDAT") idat.push(data);
    offset += 12 + length;
  }
  const pixels = inflateSync(Buffer.concat(idat));
  assert.equal(pixels.length, (width * 3 + 1) * height);
  const [r, g, b] = pixels.subarray(1, 4);
  return g > r && g > b ? "green" : r > g && r > b ? "red" : "other";
}

/** The reference server's record of the RAM session run under JSESSIONID=id. */
async function session(id) {
  const r = await fetch(`${server.url}rt/session`, { headers: { cookie: `JSESSIONID=${id}` } });
  return r.json();
}

/** Starts the daemon; resolves to { base, port, output(), logged(expected), stop }. */
async function daemon({ servers = "", origins = "" } = {}) {
  const sub = await mkdtemp(path.join(dir, "d-"));
  const serversFile = path.join(sub, "servers");
  const originsFile = path.join(sub, "origins");
  await writeFile(serversFile, servers);
  await writeFile(originsFile, origins);
  const child = spawn(
    AGENT,
    ["--daemon", "--simulator", "--port", "0", "--servers-file", serversFile, "--origins-file", originsFile],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stderr.on("data", (d) => (output += d));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("daemon did not start within 10 s")), 10_000);
    child.once("exit", (c) => reject(new Error(`daemon exited with ${c}: ${output}`)));
    child.stdout.on("data", (d) => {
      output += d;
      const m = /Daemon waiting on 127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    serversFile,
    originsFile,
    output: () => output,
    /** Resolves once the output has the line `expected` (a string) or matches it (a RegExp). */
    async logged(expected) {
      const seen = () =>
        typeof expected === "string" ? output.split("\n").includes(expected) : expected.test(output);
      for (const deadline = Date.now() + 10_000; !seen(); ) {
        assert.ok(Date.now() < deadline, `the daemon did not log ${expected}: ${output}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
    },
  };
}

/** A server that counts its requests and must never be contacted. */
async function stranger(t) {
  const s = { contacted: 0 };
  const srv = createServer((_, res) => {
    s.contacted++;
    res.end();
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  s.url = `http://127.0.0.1:${srv.address().port}/rt/test`;
  t.after(() => srv.close());
  return s;
}

test("the daemon serves old pages' <img> requests", async (t) => {
  const other = await stranger(t);
  const d = await daemon({ servers: `# approved card update servers\n${new URL(server.url).origin}\n` });
  t.after(() => d.stop());

  await t.test("an approved server: passed image, no caching, no CORS, URL and session decoded", async () => {
    const id = `daemon-${process.pid}-${Date.now()}`;
    const url = `${server.url}rt/test?x=a%26b&y=1`;
    const r = await http(`${d.base}/1296065.png?url=${encodeURIComponent(url)}&sessionId=${id}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "image/png");
    assert.equal(r.headers["cache-control"], "no-store");
    assert.equal(r.headers["access-control-allow-origin"], undefined);
    assert.equal(pngColour(r.body), "green");
    await d.logged(`Connecting to ${url}`);
    assert.equal((await session(id)).state, "completed");
  });

  await t.test("a url holding & and =: the server sees sessionId first, then its own cookie", async () => {
    const id = `legacy-cookie-${process.pid}-${Date.now()}`;
    const cookies = [];
    const paths = [];
    // A RAM server of our own in front of the reference one: it records each POST's Cookie
    // and path, and answers with the reference server's answer under a cookie of its own.
    const proxy = createServer(async (req, res) => {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      cookies.push(req.headers.cookie);
      paths.push(req.url);
      const upstream = await fetch(`${server.url}rt/test`, {
        method: "POST",
        headers: { "content-type": req.headers["content-type"], cookie: `JSESSIONID=${id}` },
        body: Buffer.concat(chunks),
      });
      const body = Buffer.from(await upstream.arrayBuffer());
      const headers = { "set-cookie": "JSESSIONID=server-own; Path=/" };
      const type = upstream.headers.get("content-type");
      if (type) headers["content-type"] = type;
      res.writeHead(upstream.status, headers);
      res.end(body);
    });
    proxy.listen(0, "127.0.0.1");
    await once(proxy, "listening");
    t.after(() => proxy.close());
    const base = `http://127.0.0.1:${proxy.address().port}`;
    await writeFile(d.serversFile, `${new URL(server.url).origin}\n${base}\n`);
    const url = `${base}/rt/test?a=1&b=x=y`;
    const r = await http(`${d.base}/x.png?url=${encodeURIComponent(url)}&sessionId=${encodeURIComponent(id)}`);
    assert.equal(pngColour(r.body), "green");
    assert.ok(cookies.length >= 2, `${cookies.length} POSTs`);
    assert.equal(cookies[0], `JSESSIONID=${id}`);
    for (const c of cookies.slice(1)) assert.equal(c, "JSESSIONID=server-own");
    assert.ok(paths.every((p) => p === "/rt/test?a=1&b=x=y"), paths.join(" "));
  });

  await t.test("a legacy page's <img> in Chromium gets the passed image, the session linked", async () => {
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const id = `legacy-${process.pid}-${Date.now()}`;
      // www/legacy.html builds the old page's <img> from its query.
      const query = new URLSearchParams({ daemon: d.base, url: "/rt/test", sessionId: id });
      await page.goto(`${server.url}legacy.html?${query}`);
      await page.waitForFunction(() => document.getElementById("legacy-status").dataset.state, null, {
        timeout: 30_000,
      });
      assert.equal(await page.$eval("#legacy-status", (e) => e.dataset.state), "loaded");
      const size = await page.$eval("#legacy-img", (img) => [img.naturalWidth, img.naturalHeight]);
      assert.deepEqual(size, [16, 16]);
      assert.equal((await session(id)).state, "completed");
    } finally {
      await browser.close();
    }
  });

  await t.test("a server error: failed image", async () => {
    const r = await http(`${d.base}/x.png?url=${encodeURIComponent(`${server.url}rt/fault/500`)}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "image/png");
    assert.equal(pngColour(r.body), "red");
  });

  await t.test("an unapproved server, no terminal: failed image, the server never contacted", async () => {
    const r = await http(`${d.base}/x.png?url=${encodeURIComponent(other.url)}`);
    assert.equal(pngColour(r.body), "red");
    assert.equal(other.contacted, 0);
    await d.logged(/Update failed \(not-approved\)/);
  });

  await t.test("a PIN asked for with no terminal: failed image, no session started", async () => {
    const id = `daemon-pin-${process.pid}-${Date.now()}`;
    const url = encodeURIComponent(`${server.url}rt/test`);
    const r = await http(`${d.base}/x.png?url=${url}&sessionId=${id}&pinrequired=129`);
    assert.equal(pngColour(r.body), "red");
    await d.logged(/Update failed \(pin-failed\)/);
    assert.deepEqual(await session(id), { error: "no ram session for this session" });
  });

  await t.test("nothing but images, only by GET, only under a loopback name", async () => {
    const query = `?url=${encodeURIComponent(`${server.url}rt/test`)}`;
    assert.equal((await http(`${d.base}/`)).status, 404);
    assert.equal((await http(`${d.base}/status.json${query}`)).status, 404);
    assert.equal((await http(`${d.base}/a/b.png${query}`)).status, 404);
    assert.equal((await http(`${d.base}/x.png${query}`, { method: "POST" })).status, 405);
    assert.equal((await http(`${d.base}/x.png${query}`, { method: "HEAD" })).status, 405);
    assert.equal((await http(`${d.base}/x.png${query}`, { host: "attacker.example" })).status, 421);
    assert.equal((await http(`${d.base}/x.png${query}`, { host: "attacker.example:27001" })).status, 421);
    assert.equal(pngColour((await http(`${d.base}/x.png?sessionId=1`)).body), "red");
  });

  await t.test("it listens on 127.0.0.1 only", async () => {
    // Other loopback addresses only: tests never send traffic off the loopback range.
    for (const address of ["::1", "127.0.0.2"]) {
      const reached = await new Promise((resolve) => {
        const socket = connect({ host: address, port: d.port, timeout: 5_000 });
        socket.once("connect", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
        socket.once("timeout", () => {
          socket.destroy();
          resolve(false);
        });
      });
      assert.equal(reached, false, `the daemon answered on ${address}`);
    }
  });
});

/** POSTs a card update as `origin`; resolves to { status, headers, events }. */
async function cardUpdate(d, body, { origin = PAGE, contentType = "application/json" } = {}) {
  const headers = { "content-type": contentType };
  if (origin) headers.origin = origin;
  const r = await http(`${d.base}/v1/card-update`, { method: "POST", headers, body: JSON.stringify(body) });
  const text = r.body.toString();
  assert.ok(text.endsWith("\n"), `NDJSON ends with a newline: ${text}`);
  const events = text.trimEnd().split("\n").map((l) => JSON.parse(l));
  return { status: r.status, headers: r.headers, events };
}

test("the page API", async (t) => {
  const other = await stranger(t);
  const d = await daemon({
    servers: `${new URL(server.url).origin}\n`,
    origins: `# pages\n${PAGE} # the demo\n`,
  });
  t.after(() => d.stop());

  await t.test("/v1/info: the version for any origin, the readers for approved ones", async () => {
    const any = await http(`${d.base}/v1/info`, { headers: { origin: "https://elsewhere.example" } });
    assert.equal(any.status, 200);
    assert.deepEqual(Object.keys(JSON.parse(any.body)), ["version"]);
    assert.equal(any.headers["access-control-allow-origin"], "https://elsewhere.example");
    const approved = await http(`${d.base}/v1/info`, { headers: { origin: PAGE } });
    const info = JSON.parse(approved.body);
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(info.readers, [{ name: "Simulated reader (default)", cardPresent: true }]);
    assert.equal(approved.headers["access-control-allow-origin"], PAGE);
  });

  await t.test("a card update streams notification and trace events, then one result", async () => {
    const id = `api-${process.pid}-${Date.now()}`;
    const r = await cardUpdate(d, { url: `${server.url}rt/test`, dialect: "openscdp", sessionId: id });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/x-ndjson");
    assert.equal(r.headers["access-control-allow-origin"], PAGE);
    const types = r.events.map((e) => e.type);
    assert.deepEqual(types.filter((x) => x === "result" || x === "error"), ["result"]);
    assert.equal(types.at(-1), "result");
    const notification = r.events.find((e) => e.type === "notification");
    assert.deepEqual(Object.keys(notification).sort(), ["code", "message", "timeToCompletion", "type"]);
    assert.equal(notification.message, "Test");
    assert.ok(r.events.some((e) => e.type === "trace" && /^\S* ?C: 00 20 00 81 - VERIFY/.test(e.line.trim())));
    const result = r.events.at(-1);
    assert.deepEqual(Object.keys(result).sort(), ["apdus", "durationMs", "roundTrips", "status", "type"]);
    assert.equal(result.status, "completed");
    assert.equal(result.apdus, 5);
    assert.equal((await session(id)).state, "completed");
  });

  await t.test("a server error ends with one error event with the library's code and the status", async () => {
    const r = await cardUpdate(d, { url: `${server.url}rt/fault/500`, dialect: "openscdp" });
    const last = r.events.at(-1);
    assert.equal(last.type, "error");
    assert.equal(last.code, "server-error");
    assert.equal(last.status, 500);
    assert.equal(typeof last.hint, "string");
    assert.equal(r.events.filter((e) => e.type === "error" || e.type === "result").length, 1);
  });

  await t.test("an origin not in the origins file is refused, the server never contacted", async () => {
    const r = await cardUpdate(d, { url: other.url, dialect: "openscdp" }, { origin: "https://evil.example" });
    assert.equal(r.status, 403);
    assert.equal(r.headers["access-control-allow-origin"], undefined);
    assert.deepEqual(r.events.map((e) => [e.type, e.code]), [["error", "agent-refused"]]);
    const none = await cardUpdate(d, { url: other.url, dialect: "openscdp" }, { origin: null });
    assert.equal(none.events[0].code, "agent-refused");
    assert.equal(other.contacted, 0);
  });

  await t.test("an approved page, an unapproved server: not-approved, the server never contacted", async () => {
    const r = await cardUpdate(d, { url: other.url, dialect: "openscdp" });
    assert.deepEqual(r.events.map((e) => [e.type, e.code]), [["error", "not-approved"]]);
    assert.equal(other.contacted, 0);
  });

  await t.test("bad requests: invalid-argument; no JSON content type, no update", async () => {
    const bad = await cardUpdate(d, { url: `${server.url}rt/test`, dialect: "x" });
    assert.equal(bad.status, 400);
    assert.equal(bad.events[0].code, "invalid-argument");
    const plain = await cardUpdate(d, { url: `${server.url}rt/test` }, { contentType: "text/plain" });
    assert.equal(plain.status, 415);
    assert.equal(plain.events[0].code, "invalid-argument");
  });

  await t.test("CORS and Private Network Access preflights: only for approved origins", async () => {
    const preflight = (origin, path = "/v1/card-update") =>
      http(`${d.base}${path}`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": path === "/v1/info" ? "GET" : "POST",
          "access-control-request-headers": "content-type",
          "access-control-request-private-network": "true",
        },
      });
    const ok = await preflight(PAGE);
    assert.ok(ok.status >= 200 && ok.status < 300, `${ok.status}`);
    assert.equal(ok.headers["access-control-allow-origin"], PAGE);
    assert.equal(ok.headers["access-control-allow-private-network"], "true");
    assert.match(ok.headers["access-control-allow-methods"], /POST/);
    assert.match(ok.headers["access-control-allow-headers"], /content-type/i);
    const refused = await preflight("https://evil.example");
    assert.ok(refused.status >= 400, `${refused.status}`);
    assert.equal(refused.headers["access-control-allow-origin"], undefined);
    assert.equal(refused.headers["access-control-allow-private-network"], undefined);
    const info = await preflight("https://evil.example", "/v1/info");
    assert.equal(info.headers["access-control-allow-origin"], "https://evil.example");
  });

  await t.test("the Host header is checked on the API too", async () => {
    const r = await http(`${d.base}/v1/info`, { host: "rebound.example:27001", headers: { origin: PAGE } });
    assert.equal(r.status, 421);
  });

  await t.test("one update at a time: a second caller gets agent-busy at once", async () => {
    const slow = fetch(`${d.base}/v1/card-update`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: PAGE },
      body: JSON.stringify({ url: `${server.url}rt/fault/slow-ms/1500`, dialect: "openscdp" }),
    });
    const first = await slow;
    const started = Date.now();
    const second = await cardUpdate(d, { url: `${server.url}rt/test`, dialect: "openscdp" });
    assert.ok(Date.now() - started < 1000, "at once");
    assert.equal(second.status, 409);
    assert.deepEqual(second.events.map((e) => [e.type, e.code]), [["error", "agent-busy"]]);
    const rest = (await first.text()).trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.equal(rest.at(-1).type, "result");
  });

  await t.test("closing the response cancels the update: the server gets the cancel POST", async () => {
    const id = `api-cancel-${process.pid}-${Date.now()}`;
    const controller = new AbortController();
    const response = await fetch(`${d.base}/v1/card-update`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: PAGE },
      body: JSON.stringify({ url: `${server.url}rt/fault/slow-ms/3000`, dialect: "openscdp", sessionId: id }),
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.abort();
    await d.logged(/Update failed \(aborted\)/);
    for (const deadline = Date.now() + 10_000; ; ) {
      const s = await session(id);
      if (s.state === "failed") {
        assert.match(s.error, /Session canceled/);
        break;
      }
      assert.ok(Date.now() < deadline, JSON.stringify(s));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  await t.test("the origins file is read at each request", async () => {
    const page = "http://127.0.0.1:9";
    assert.deepEqual(Object.keys(JSON.parse((await http(`${d.base}/v1/info`, { headers: { origin: page } })).body)), [
      "version",
    ]);
    await writeFile(d.originsFile, `${(await readFile(d.originsFile, "utf8"))}${page}\n`);
    const info = JSON.parse((await http(`${d.base}/v1/info`, { headers: { origin: page } })).body);
    assert.ok(Array.isArray(info.readers));
  });
});

/** The daemon under util-linux `script`, which gives it a pseudo-terminal for stdin and
 * stderr: what it asks shows on `output()`, `answer(line)` types a line. */
async function daemonAtTerminal(t, extra = [], { servers } = {}) {
  const sub = await mkdtemp(path.join(dir, "tty-"));
  const serversFile = path.join(sub, "servers");
  const originsFile = path.join(sub, "origins");
  if (servers !== undefined) await writeFile(serversFile, servers);
  const argv = [AGENT, "--daemon", "--simulator", "--port", "0", "--servers-file", serversFile];
  const command = [...argv, "--origins-file", originsFile, ...extra].map((a) => `'${a}'`).join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill("SIGTERM");
      await once(child, "exit");
    }
  });
  const d = { serversFile, originsFile, text: "" };
  child.stdout.on("data", (c) => (d.text += c));
  d.waitFor = async (pattern) => {
    for (const deadline = Date.now() + 10_000; !pattern.test(d.text); ) {
      assert.ok(Date.now() < deadline, `never saw ${pattern}: ${d.text}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return pattern.exec(d.text);
  };
  d.answer = (line) => child.stdin.write(`${line}\n`);
  d.base = `http://127.0.0.1:${(await d.waitFor(/Daemon waiting on 127\.0\.0\.1:(\d+)/))[1]}`;
  return d;
}

test("at the terminal: an unknown page origin and server are asked about, 'always' is kept", async (t) => {
  const d = await daemonAtTerminal(t);
  const page = "https://shop.example";
  const post = (url) =>
    fetch(`${d.base}/v1/card-update`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: page },
      body: JSON.stringify({ url, dialect: "openscdp" }),
    });

  // Refused at the terminal: one error event, the server never contacted.
  const other = await stranger(t);
  let pending = post(other.url);
  await d.waitFor(/Allow the page https:\/\/shop\.example to update your card\?/);
  d.answer("n");
  let events = (await (await pending).text()).trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => [e.type, e.code]), [["error", "agent-refused"]]);
  assert.equal(other.contacted, 0);

  // Approved always, the server once: the update runs, the origin is kept, the server not.
  d.text = "";
  pending = post(`${server.url}rt/test`);
  await d.waitFor(/Allow the page https:\/\/shop\.example/);
  d.answer("a");
  await d.waitFor(/Allow http:\/\/127\.0\.0\.1:\d+\/rt\/test to use your card\?/);
  d.answer("o");
  events = (await (await pending).text()).trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.equal(events.at(-1).type, "result", JSON.stringify(events.at(-1)));
  assert.equal(events.at(-1).status, "completed");
  assert.equal(await readFile(d.originsFile, "utf8"), `${page}\n`);
  await assert.rejects(readFile(d.serversFile, "utf8"), { code: "ENOENT" });
  const info = JSON.parse(await (await fetch(`${d.base}/v1/info`, { headers: { origin: page } })).text());
  assert.ok(Array.isArray(info.readers));
});

test("pinRequired: the PIN is asked on the agent's terminal, never sent by the page", async (t) => {
  const d = await daemonAtTerminal(t, ["--card", "pin"], { servers: `${new URL(server.url).origin}\n` });
  await writeFile(d.originsFile, `${PAGE}\n`);
  const request = { url: `${server.url}rt/pin-test`, dialect: "openscdp", pinRequired: 0x81 };
  const pending = fetch(`${d.base}/v1/card-update`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: PAGE },
    body: JSON.stringify(request),
  });
  await d.waitFor(/PIN( \(\d+ tries left\))?: /);
  d.answer("123456");
  const events = (await (await pending).text()).trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.equal(events.at(-1).type, "result", JSON.stringify(events.at(-1)));
  assert.equal(events.at(-1).status, "completed");
  assert.ok(!JSON.stringify(events).includes("123456"), "the PIN is in no event");
  assert.ok(!d.text.includes("123456"), "the PIN is not echoed");
});
