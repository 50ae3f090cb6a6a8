// The command line with the simulated reader against the reference server: the native agent
// (`card-relay`, agent/, built by scripts/test.sh) for one update — the seed's trace, typed
// errors and exit statuses, the OCF session id, the session's cookies and its one connection,
// refused redirects — and the Node.js daemon (bin/card-relay.mjs --daemon), kept until the
// agent takes it over, for old pages' <img> requests (decoding, approval list, images, what
// it refuses).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer, request } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { once } from "node:events";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { root, startServer, launchBrowser } from "./harness.mjs";
import { FAILED_PNG, PASSED_PNG } from "../../bin/lib/png.mjs";

const AGENT = process.env.CARD_RELAY_AGENT ?? path.join(root, "target/debug/card-relay");
const DAEMON = path.join(root, "bin/card-relay.mjs");
let server;
let dir;

before(async () => {
  server = await startServer();
  dir = await mkdtemp(path.join(tmpdir(), "card-relay-cli-"));
});

after(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs the agent to its end (at most 30 s); resolves to { code, stdout, stderr }. */
async function cli(args, { input, program = [AGENT] } = {}) {
  const [command, ...first] = program;
  const child = spawn(command, [...first, ...args], { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [code] = await once(child, "exit");
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** An HTTP request with a method and Host of our choosing; resolves to { status, headers, body }. */
function get(url, { method = "GET", host } = {}) {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method,
        headers: host ? { host } : {},
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
    req.end();
  });
}

/** The reference server's record of the RAM session run under JSESSIONID=id. */
async function session(id) {
  const r = await fetch(`${server.url}rt/session`, { headers: { cookie: `JSESSIONID=${id}` } });
  return r.json();
}

test("the CLI runs the seed's session: its trace, PIN data masked, then Update complete", async () => {
  const { code, stdout, stderr } = await cli(["--simulator", `${server.url}rt/test`]);
  assert.equal(code, 0, stderr);
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines[0], `Connecting to ${server.url}rt/test`);
  assert.match(stdout, /^[0-9A-F]{2} C: 00 20 00 81 - VERIFY$/m);
  assert.match(stdout, /^ {3}R: SW1\/SW2=6E00 \(Checking error: Class not supported\) Lr=0$/m);
  assert.match(stdout, /^[0-9A-F]{2} C: 00 20 00 81 - VERIFY Lc=6 \*{6}$/m);
  assert.doesNotMatch(stdout, /36 34 38 32 31 39/);
  assert.match(stdout, /^ {3}R: SW1\/SW2=6700 \(Checking error: Wrong length\) Lr=0$/m);
  assert.equal(stdout.match(/ C: 00 84 00 00 - GET CHALLENGE {6}Le=69$/gm)?.length, 2);
  assert.equal(lines.at(-1), "Update complete");
});

test("without -s the cookie the server sets is kept for the session's later POSTs", async () => {
  // The reference server refuses a later POST without the cookie it set on the first one.
  for (const [dialect, app] of [["openscdp", "test"], ["gp", "gp-test"]]) {
    const { code, stdout, stderr } = await cli(["--simulator", "-q", "--dialect", dialect, `${server.url}rt/${app}`]);
    assert.equal(code, 0, `${dialect}: ${stderr}`);
    assert.equal(stdout, "Update complete\n");
  }
});

test("-s <id> runs the session under JSESSIONID=<id>", async () => {
  const id = `cli-${process.pid}-${Date.now()}`;
  const { code, stderr } = await cli(["--simulator", "-q", "-s", id, `${server.url}rt/test`]);
  assert.equal(code, 0, stderr);
  const s = await session(id);
  assert.equal(s.id, id);
  assert.equal(s.app, "test");
  assert.equal(s.state, "completed");
});

test("a server error ends with the typed error and a non-zero status", async () => {
  const { code, stdout, stderr } = await cli(["--simulator", `${server.url}rt/fault/500`]);
  assert.equal(code, 1);
  assert.doesNotMatch(stdout, /Update complete/);
  assert.match(stderr, /^Update failed \(server-error\): .*500/m);
});

test("-p verifies the PIN on the card first; a wrong PIN stops before the server", async () => {
  const ok = await cli(["--simulator", "--card", "pin", "-p", "123456", `${server.url}rt/pin-test`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Update complete\n$/);
  const piped = await cli(["--simulator", "--card", "pin", "-q", "-p", `${server.url}rt/pin-test`], { input: "123456\n" });
  assert.equal(piped.code, 0, piped.stderr);
  const id = `pin-${process.pid}-${Date.now()}`;
  const wrong = await cli(["--simulator", "--card", "pin", "-s", id, "-p", "000000", `${server.url}rt/pin-test`]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /^Update failed \(pin-failed\): wrong PIN, 2 tries left$/m);
  assert.deepEqual(await session(id), { error: "no ram session for this session" });
});

test("usage errors exit with status 2", async () => {
  const { code, stderr } = await cli(["--simulator", "--dialect", "x", `${server.url}rt/test`]);
  assert.equal(code, 2);
  assert.match(stderr, /--dialect must be openscdp, gp or seram/);
});

test("plain http only to loopback: insecure-url before any card or network work", async () => {
  const { code, stdout, stderr } = await cli(["--simulator", "http://card.example/rt/test"]);
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.match(stderr, /^Update failed \(insecure-url\): refusing http:\/\/card\.example: not https$/m);
});

test("the Node script no longer runs one-shot updates: it points to the agent", async () => {
  const { code, stderr } = await cli([`${server.url}rt/test`], { program: [process.execPath, DAEMON] });
  assert.equal(code, 2);
  assert.match(stderr, /native agent/);
});

test("https: the server's certificate is checked against the system's roots", async () => {
  const tls = path.join(root, "tests/fixtures/tls");
  const key = createPrivateKey({ key: readFileSync(path.join(tls, "leaf.key.der")), format: "der", type: "pkcs8" })
    .export({ format: "pem", type: "pkcs8" });
  const cert = new X509Certificate(readFileSync(path.join(tls, "leaf.der"))).toString();
  let posts = 0;
  const srv = createHttpsServer({ key, cert }, (req, res) => {
    posts++;
    req.resume();
    req.on("end", () => {
      res.writeHead(204);
      res.end();
    });
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const url = `https://localhost:${srv.address().port}/rt/x`;
  const run = (env) =>
    new Promise((resolve) => {
      const child = spawn(AGENT, ["--simulator", "-q", url], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      child.on("exit", (code) => resolve({ code, out }));
    });
  try {
    const { SSL_CERT_FILE, SSL_CERT_DIR, ...system } = process.env;
    // A CA the system does not know: refused before any request.
    const untrusted = await run(system);
    assert.equal(untrusted.code, 1, untrusted.out);
    assert.match(untrusted.out, /^Update failed \(network-error\): .*certificate/m);
    assert.equal(posts, 0);
    // The same server once its CA is the trust store (rustls-native-certs reads SSL_CERT_FILE).
    const trusted = await run({ ...system, SSL_CERT_FILE: path.join(tls, "ca.pem") });
    assert.equal(trusted.code, 0, trusted.out);
    assert.equal(trusted.out, "Update complete\n");
    assert.equal(posts, 1);
  } finally {
    srv.close();
  }
});

test("Ctrl-C while the server keeps silent ends the update at once: aborted, status 1", async () => {
  const child = spawn(AGENT, ["--simulator", `${server.url}rt/fault/never`], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    for (const deadline = Date.now() + 10_000; !stdout.includes("Connecting to"); ) {
      assert.ok(Date.now() < deadline, `no connection: ${stdout}${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const sent = Date.now();
    child.kill("SIGINT");
    const [code] = await once(child, "exit");
    assert.equal(code, 1, stderr);
    assert.ok(Date.now() - sent < 10_000, "the agent ended within 10 s of Ctrl-C");
    assert.match(stderr, /^Update failed \(aborted\): /m);
  } finally {
    clearTimeout(timer);
  }
});

/**
 * A RAM server of its own (OpenSCDP dialect) that records, per POST, the client's port and
 * its Cookie header. It does not know the session id the client starts with, so it sets
 * its own JSESSIONID (as a servlet container does), sends a GET CHALLENGE in each of two
 * templates, then ends with 204. `first` may answer the first POST instead (a redirect).
 */
async function recordingServer({ first } = {}) {
  const seen = [];
  const srv = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      seen.push({ port: req.socket.remotePort, cookie: req.headers.cookie, path: req.url });
      if (seen.length === 1 && first) return first(res);
      if (seen.length <= 2) {
        res.writeHead(200, {
          "Content-Type": "application/org.openscdp-content-mgt;version=1.0",
          ...(seen.length === 1 ? { "Set-Cookie": "JSESSIONID=server-made; Path=/; HttpOnly" } : {}),
        });
        // AA { 22 <00 84 00 00 08> }: one GET CHALLENGE of 8 bytes.
        return res.end(Buffer.from([0xaa, 0x07, 0x22, 0x05, 0x00, 0x84, 0x00, 0x00, 0x08]));
      }
      res.writeHead(204);
      res.end();
    });
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  return { url: `http://127.0.0.1:${srv.address().port}/rt/x`, seen, close: () => srv.close() };
}

test("-s seeds the cookie jar, the server's Set-Cookie replaces it, one connection throughout", async () => {
  const ram = await recordingServer();
  try {
    const { code, stderr } = await cli(["--simulator", "-q", "-s", "given", ram.url]);
    assert.equal(code, 0, stderr);
    assert.equal(ram.seen.length, 3, JSON.stringify(ram.seen));
    assert.deepEqual(
      ram.seen.map((r) => r.cookie),
      ["JSESSIONID=given", "JSESSIONID=server-made", "JSESSIONID=server-made"],
    );
    assert.equal(new Set(ram.seen.map((r) => r.port)).size, 1, JSON.stringify(ram.seen));
  } finally {
    ram.close();
  }
});

test("a redirect is refused: network-error, the other server never contacted", async () => {
  let contacted = 0;
  const other = createServer((_, res) => {
    contacted++;
    res.end();
  });
  other.listen(0, "127.0.0.1");
  await once(other, "listening");
  const elsewhere = `http://127.0.0.1:${other.address().port}/rt/test`;
  const ram = await recordingServer({
    first: (res) => {
      res.writeHead(307, { Location: elsewhere });
      res.end();
    },
  });
  try {
    const { code, stderr } = await cli(["--simulator", "-q", ram.url]);
    assert.equal(code, 1);
    assert.match(stderr, /^Update failed \(network-error\): .*redirect/m);
    assert.equal(contacted, 0);
  } finally {
    ram.close();
    other.close();
  }
});

/** Starts the daemon; resolves to { base, port, output(), logged(expected), stop }. */
async function daemon(serversFile) {
  const child = spawn(
    process.execPath,
    [DAEMON, "--daemon", "--simulator", "--port", "0", "--servers-file", serversFile],
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
    output: () => output,
    /**
     * Resolves once the output has the line `expected` (a string) or matches it (a RegExp):
     * the log may trail the HTTP answer.
     */
    async logged(expected) {
      const seen = () =>
        typeof expected === "string" ? output.split("\n").includes(expected) : expected.test(output);
      for (const deadline = Date.now() + 5_000; !seen(); ) {
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

test("the daemon serves old pages' <img> requests", async (t) => {
  const serversFile = path.join(dir, "servers");
  await writeFile(serversFile, `# approved card update servers\n${new URL(server.url).origin}\n`);
  // A server that must never be contacted: it is not approved and there is no terminal.
  let contacted = 0;
  const stranger = createServer((_, res) => {
    contacted++;
    res.end();
  });
  stranger.listen(0, "127.0.0.1");
  await once(stranger, "listening");
  const d = await daemon(serversFile);
  t.after(async () => {
    await d.stop();
    stranger.close();
  });

  await t.test("an approved server: passed image, no caching, URL and session decoded", async () => {
    const id = `daemon-${process.pid}-${Date.now()}`;
    const url = `${server.url}rt/test?x=a%26b&y=1`;
    const r = await get(`${d.base}/1296065.png?url=${encodeURIComponent(url)}&sessionId=${id}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "image/png");
    assert.equal(r.headers["cache-control"], "no-store");
    assert.equal(r.headers["access-control-allow-origin"], undefined);
    assert.deepEqual(r.body, PASSED_PNG);
    await d.logged(`Connecting to ${url}`);
    const s = await session(id);
    assert.equal(s.state, "completed");
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
      assert.ok(size[0] > 0 && size[1] > 0, `image size ${size}`);
      const s = await session(id);
      assert.equal(s.state, "completed");
    } finally {
      await browser.close();
    }
  });

  await t.test("a server error: failed image", async () => {
    const r = await get(`${d.base}/x.png?url=${encodeURIComponent(`${server.url}rt/fault/500`)}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "image/png");
    assert.deepEqual(r.body, FAILED_PNG);
  });

  await t.test("an unapproved server, no terminal: failed image, the server never contacted", async () => {
    const url = `http://127.0.0.1:${stranger.address().port}/rt/test`;
    const r = await get(`${d.base}/x.png?url=${encodeURIComponent(url)}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, FAILED_PNG);
    assert.equal(contacted, 0);
    await d.logged(/Update failed \(not-approved\)/);
  });

  await t.test("a PIN asked for with no terminal: failed image, no session started", async () => {
    const id = `daemon-pin-${process.pid}-${Date.now()}`;
    const url = encodeURIComponent(`${server.url}rt/test`);
    const r = await get(`${d.base}/x.png?url=${url}&sessionId=${id}&pinrequired=129`);
    assert.deepEqual(r.body, FAILED_PNG);
    await d.logged(/Update failed \(pin-failed\)/);
    assert.deepEqual(await session(id), { error: "no ram session for this session" });
  });

  await t.test("nothing but images, only by GET, only under a loopback name", async () => {
    const query = `?url=${encodeURIComponent(`${server.url}rt/test`)}`;
    assert.equal((await get(`${d.base}/`)).status, 404);
    assert.equal((await get(`${d.base}/status.json${query}`)).status, 404);
    assert.equal((await get(`${d.base}/a/b.png${query}`)).status, 404);
    assert.equal((await get(`${d.base}/x.png${query}`, { method: "POST" })).status, 405);
    assert.equal((await get(`${d.base}/x.png${query}`, { method: "HEAD" })).status, 405);
    assert.equal((await get(`${d.base}/x.png${query}`, { host: "attacker.example" })).status, 421);
    const noUrl = await get(`${d.base}/x.png?sessionId=1`);
    assert.deepEqual(noUrl.body, FAILED_PNG);
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
