// The agent's insert/remove watcher through a real pcsc-lite (run by scripts/pcsc-test.sh in
// its private pcscd + vpcd namespace): with vpcd, a virtual card connecting to the reader's
// port is an insertion and its connection closing a removal. target/debug/examples/pcsc-events
// opens the card through the agent's PC/SC channel and prints the channel's events.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { root } from "../e2e/harness.mjs";

const EVENTS = path.join(root, "target/debug/examples/pcsc-events");
const VPCD_CARD = path.join(root, "target/debug/examples/vpcd-card");
const PORT = Number(process.env.CARD_RELAY_VPCD_PORT ?? 40059);

/** A virtual card in vpcd's first reader; kill() takes it out. */
function card() {
  return spawn(VPCD_CARD, ["--port", String(PORT)], { stdio: ["ignore", "ignore", "inherit"] });
}

async function pull(child) {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGTERM");
    await once(child, "exit");
  }
}

/**
 * The lines a child prints; next(want) resolves when `want` shows up (at most 10 s), and
 * rejects if the child's output ends first.
 */
function lines(child) {
  let seen = [];
  let waiting = null;
  let buffer = "";
  let ended = false;
  child.stdout.on("end", () => {
    ended = true;
    waiting?.();
  });
  child.stdout.on("data", (d) => {
    buffer += d;
    const parts = buffer.split("\n");
    buffer = parts.pop();
    seen.push(...parts);
    waiting?.();
  });
  return {
    all: () => seen,
    async next(want) {
      for (const deadline = Date.now() + 10_000; ; ) {
        const i = seen.findIndex((l) => l.startsWith(want));
        if (i >= 0) {
          const line = seen[i];
          seen = seen.slice(i + 1);
          return line;
        }
        assert.ok(!ended, `pcsc-events ended without "${want}" (got ${JSON.stringify(seen)})`);
        const left = deadline - Date.now();
        assert.ok(left > 0, `no "${want}" from pcsc-events (got ${JSON.stringify(seen)})`);
        await new Promise((resolve) => {
          waiting = resolve;
          setTimeout(resolve, Math.min(left, 200));
        });
      }
    },
  };
}

/** Opens the card in the reader, retrying until pcscd sees the card (at most 10 s). */
async function openEvents() {
  for (const deadline = Date.now() + 10_000; ; ) {
    const child = spawn(EVENTS, [], { stdio: ["pipe", "pipe", "pipe"] });
    const out = lines(child);
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const [code] = await Promise.race([
      once(child, "exit"),
      out.next("open ").then(() => [null], () => [undefined]),
    ]);
    if (code === null) return { child, out };
    assert.ok(Date.now() < deadline, `pcsc-events never opened the card: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test("the virtual card leaving and coming back is a removal and an insertion; close ends the watch", async () => {
  let vicc = card();
  const { child, out } = await openEvents();
  try {
    await pull(vicc);
    await out.next("card-removed");
    vicc = card();
    await out.next("card-inserted");
    await pull(vicc);
    await out.next("card-removed");
    // Nothing else was reported in between (one event per change).
    assert.deepEqual(out.all(), []);
    const started = Date.now();
    child.stdin.end();
    await out.next("closed");
    const [code] = child.exitCode === null ? await once(child, "exit") : [child.exitCode];
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 5_000, "closing waits for no pending SCardGetStatusChange");
  } finally {
    child.kill("SIGKILL");
    await pull(vicc);
  }
});

test("another program resetting the card: the command fails with reset-card's message, the next one runs", async () => {
  const vicc = card();
  const a = await openEvents();
  const b = await openEvents();
  try {
    const select = "transmit 00 A4 04 00 00";
    a.child.stdin.write(`${select}\n`);
    const first = await a.out.next("answer ");
    b.child.stdin.write("reset\n");
    assert.match(await b.out.next("reset "), /^reset 3B/);
    // SCARD_W_RESET_CARD on A's handle: reconnected (SCARD_LEAVE_CARD), the command failed.
    a.child.stdin.write(`${select}\n`);
    assert.equal(await a.out.next(""), "error protocol: transmit: another application reset the card");
    a.child.stdin.write(`${select}\n`);
    assert.equal(await a.out.next("answer "), first);
  } finally {
    a.child.kill("SIGKILL");
    b.child.kill("SIGKILL");
    await pull(vicc);
  }
});
