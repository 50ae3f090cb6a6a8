// Pages reach the agent (issue 16), end to end: headless Chromium runs the demo with
// reader=agent; the library calls the agent's page API (`card-relay --daemon` on
// 127.0.0.1:27001, the default origin), and the agent runs the update over pcsc-lite on the
// project's virtual card behind vpcd. Run by scripts/pcsc-test.sh, inside its private mount
// and network namespace: pcscd, the agent, the reference servers and Chromium share that
// namespace's own loopback. Chromium's Local Network Access permission is granted to the
// browser context ("local-network-access"): a real user answers Chrome's prompt, or an admin
// policy (LocalNetworkAccessAllowedForUrls, LoopbackNetworkAllowedForUrls) pre-approves it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import path from "node:path";
import { root, startServer, launchBrowser } from "../e2e/harness.mjs";
import { assertSeedTrace } from "../e2e/seed-trace.mjs";

const AGENT = process.env.CARD_RELAY_AGENT ?? path.join(root, "target/debug/card-relay");
const VPCD_CARD = path.join(root, "target/debug/examples/vpcd-card");
const PORT = Number(process.env.CARD_RELAY_VPCD_PORT ?? 40059);

let pageServer; // the demo's origin, listed in the origins file; also a RAM server
let otherServer; // another origin: a RAM server, and a page origin the agent does not know
let recorder; // a recording proxy in front of pageServer (what the agent sent)
let daemon;
let card;
let browser;
let context;
let dir;

/** A proxy to `target` recording every request: { url, requests, close }. */
async function recordingProxy(target, { holdSecond = false } = {}) {
  const requests = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method, url: req.url, body });
      const posts = requests.filter((r) => r.method === "POST").length;
      // Mid-session: the answer to the second POST waits long enough for a cancel.
      if (holdSecond && posts === 2) await new Promise((r) => setTimeout(r, 15_000));
      const headers = { ...req.headers, host: upstream.host };
      const forward = await fetch(new URL(req.url, upstream), {
        method: req.method,
        headers,
        body: req.method === "POST" ? body : undefined,
      }).catch(() => null);
      if (!forward) return res.writeHead(502).end();
      const out = {};
      forward.headers.forEach((v, k) => (out[k] = v));
      delete out["content-length"];
      delete out["content-encoding"];
      res.writeHead(forward.status, out).end(Buffer.from(await forward.arrayBuffer()));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    requests,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** Starts `card-relay --daemon` without a terminal; resolves once it listens. */
async function startDaemon(originsFile, serversFile) {
  const child = spawn(AGENT, ["--daemon", "--origins-file", originsFile, "--servers-file", serversFile], {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d) => (log += d));
  const lines = createInterface({ input: child.stdout });
  lines.on("line", (l) => (log += `${l}\n`));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the daemon did not start: ${log}`)), 10_000);
    child.once("exit", (code) => reject(new Error(`the daemon exited with ${code}: ${log}`)));
    lines.on("line", (l) => {
      if (/waiting on 127\.0\.0\.1:27001/.test(l)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
    },
  };
}

async function insertCard() {
  const child = spawn(VPCD_CARD, ["--port", String(PORT)], { stdio: ["ignore", "ignore", "pipe"] });
  // pcscd sees the card within a second; the agent's readers say when.
  for (const deadline = Date.now() + 10_000; ; ) {
    const info = await fetch("http://127.0.0.1:27001/v1/info", { headers: { origin: pageServer.url.slice(0, -1) } })
      .then((r) => r.json())
      .catch(() => ({}));
    if (info.readers?.some((r) => r.cardPresent)) break;
    assert.ok(Date.now() < deadline, `no card in the agent's readers: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    async remove() {
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

before(async () => {
  pageServer = await startServer();
  otherServer = await startServer();
  recorder = await recordingProxy(pageServer.url, { holdSecond: true });
  dir = await mkdtemp(path.join(tmpdir(), "card-relay-page-"));
  const origins = path.join(dir, "origins");
  const servers = path.join(dir, "servers");
  await writeFile(origins, `# the demo's origin only\n${new URL(pageServer.url).origin}\n`);
  await writeFile(
    servers,
    [pageServer.url, otherServer.url, recorder.url].map((u) => new URL(u).origin).join("\n") + "\n",
  );
  daemon = await startDaemon(origins, servers);
  card = await insertCard();
  browser = await launchBrowser();
  context = await browser.newContext({ permissions: ["local-network-access"] });
});

after(async () => {
  await context?.close();
  await browser?.close();
  await card?.remove();
  await daemon?.stop();
  recorder?.close();
  await otherServer?.stop();
  await pageServer?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Opens a demo deep link on `origin` and waits for the run's end: { page, status, code, trace, … }. */
async function runDemo(origin, query, { whileRunning } = {}) {
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${origin}?${query}`);
  if (whileRunning) await whileRunning(page);
  await page.waitForFunction(
    () => ["passed", "failed"].includes(document.getElementById("result").dataset.status),
    null,
    { timeout: 60_000 },
  );
  const result = await page.$eval("#result", (el) => ({ ...el.dataset }));
  const trace = await page.textContent("#trace");
  const hint = await page.textContent("#hint");
  assert.deepEqual(errors, [], "no uncaught errors in the page");
  return { page, ...result, trace, hint };
}

test("the demo with reader=agent runs the seed session through pcsc-lite against the reference server", { timeout: 90_000 }, async () => {
  const run = await runDemo(pageServer.url, "reader=agent&url=/rt/test&autorun=1");
  assert.equal(run.status, "passed", `${run.trace}\n${daemon.log()}`);
  assert.equal(run.apdus, "5");
  const lines = run.trace.split("\n");
  assert.match(lines[0], /^Connecting to http:\/\/127\.0\.0\.1:\d+\/rt\/test$/);
  assert.ok(lines.includes("Notification 0: Test"), "notifications reach the page");
  assert.equal(lines.at(-1), "Update complete");
  assertSeedTrace(run.trace);
  // The agent's readers are shown once it approved the page (the origins file lists it).
  await run.page.waitForFunction(() => document.getElementById("agent-reader").options.length > 1);
  const options = await run.page.$$eval("#agent-reader option", (os) => os.map((o) => o.textContent));
  assert.ok(options.some((o) => o.startsWith("Virtual PCD 00 00")), options.join(", "));
  await run.page.close();
});

test("the demo with reader=agent against a RAM server on another origin", { timeout: 90_000 }, async () => {
  const run = await runDemo(pageServer.url, `reader=agent&url=${encodeURIComponent(`${otherServer.url}rt/test`)}&autorun=1`);
  assert.equal(run.status, "passed", `${run.trace}\n${daemon.log()}`);
  assertSeedTrace(run.trace);
  await run.page.close();
});

test("a page origin not in the origins file is refused, and the server is never contacted", { timeout: 90_000 }, async () => {
  const before = recorder.requests.length;
  const start = Date.now();
  const run = await runDemo(otherServer.url, `reader=agent&url=${encodeURIComponent(`${recorder.url}rt/test`)}&autorun=1`);
  assert.equal(run.status, "failed");
  assert.equal(run.code, "agent-refused", run.trace);
  assert.match(run.hint, /origins file/);
  assert.ok(Date.now() - start < 10_000, "refused at once");
  assert.equal(recorder.requests.length, before, "the server saw no request");
  // The agent does not show its readers to that page.
  const readers = await run.page.evaluate(async () => {
    const relay = await import("/pkg-sim/card-relay.js");
    return (await relay.connectAgent()).readers();
  });
  assert.equal(readers, null);
  await run.page.close();
});

test("cancel mid-session reaches the server as the OpenSCDP cancel POST", { timeout: 90_000 }, async () => {
  const before = recorder.requests.length;
  const run = await runDemo(pageServer.url, `reader=agent&url=${encodeURIComponent(`${recorder.url}rt/test`)}&autorun=1`, {
    whileRunning: async (page) => {
      // The proxy holds its answer to the second POST: the session is mid-way.
      for (const deadline = Date.now() + 20_000; recorder.requests.slice(before).filter((r) => r.method === "POST").length < 2; ) {
        assert.ok(Date.now() < deadline, "the session never reached its second POST");
        await new Promise((r) => setTimeout(r, 50));
      }
      await page.click("#cancel");
    },
  });
  assert.equal(run.status, "failed");
  assert.equal(run.code, "aborted", run.trace);
  // The agent tells the server: a third POST whose template holds the close unit E1.
  for (const deadline = Date.now() + 10_000; ; ) {
    const posts = recorder.requests.slice(before).filter((r) => r.method === "POST");
    if (posts.length >= 3) {
      assert.ok(posts.at(-1).body.includes(0xe1), `the last POST carries E1: ${posts.at(-1).body.toString("hex")}`);
      break;
    }
    assert.ok(Date.now() < deadline, `no cancel POST: ${posts.length} POSTs\n${daemon.log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await run.page.close();
});
