// The command line with the simulated reader against the reference server: the native agent
// (`card-relay`, agent/, built by scripts/test.sh) for one update — the seed's trace, typed
// errors and exit statuses, the OCF session id, the session's cookies and its one connection,
// refused redirects. The agent's daemon (`--daemon`) is tested in daemon.test.mjs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { root, startServer } from "./harness.mjs";

const AGENT = process.env.CARD_RELAY_AGENT ?? path.join(root, "target/debug/card-relay");
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
