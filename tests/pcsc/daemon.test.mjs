// The agent's daemon (`card-relay --daemon`, no simulator) through a real pcsc-lite: an old
// page's <img> request runs the seed session on the project's virtual card behind vpcd
// (run by scripts/pcsc-test.sh in its private namespace, as tests/pcsc/agent.test.mjs).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, writeFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { root, startServer } from "../e2e/harness.mjs";

const AGENT = process.env.CARD_RELAY_AGENT ?? path.join(root, "target/debug/card-relay");
const VPCD_CARD = path.join(root, "target/debug/examples/vpcd-card");
const PORT = Number(process.env.CARD_RELAY_VPCD_PORT ?? 40059);

let server;
let dir;
before(async () => {
  server = await startServer();
  dir = await mkdtemp(path.join(tmpdir(), "card-relay-pcsc-daemon-"));
});
after(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Starts a child and resolves once its stdout matches `pattern`; resolves to { child, match, output() }. */
async function started(command, args, pattern) {
  const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stderr.on("data", (d) => (output += d));
  const match = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} did not start: ${output}`)), 10_000);
    child.once("exit", (c) => reject(new Error(`${command} exited with ${c}: ${output}`)));
    child.stdout.on("data", (d) => {
      output += d;
      const m = pattern.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
  });
  return { child, match, output: () => output };
}

async function stop(child) {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    await once(child, "exit");
  }
}

test("an old page's <img> runs the seed session over PC/SC", { timeout: 60_000 }, async (t) => {
  const serversFile = path.join(dir, "servers");
  await writeFile(serversFile, `${new URL(server.url).origin}\n`);
  const card = spawn(VPCD_CARD, ["--port", String(PORT)], { stdio: ["ignore", "ignore", "ignore"] });
  t.after(() => stop(card));
  const daemon = await started(
    AGENT,
    ["--daemon", "--port", "0", "--servers-file", serversFile, "--origins-file", path.join(dir, "origins")],
    /Daemon waiting on 127\.0\.0\.1:(\d+)/,
  );
  t.after(() => stop(daemon.child));
  const base = `http://127.0.0.1:${daemon.match[1]}`;
  const id = `pcsc-daemon-${process.pid}-${Date.now()}`;
  const url = encodeURIComponent(`${server.url}rt/test`);
  // The daemon waits for the card's insertion (pcscd may not have seen it yet).
  const r = await fetch(`${base}/x.png?url=${url}&sessionId=${id}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "image/png");
  await r.arrayBuffer();
  const s = await (await fetch(`${server.url}rt/session`, { headers: { cookie: `JSESSIONID=${id}` } })).json();
  assert.equal(s.state, "completed", `${JSON.stringify(s)}\n${daemon.output()}`);
  assert.match(daemon.output(), /Update complete: 5 APDUs/);
});
