// The native agent (`card-relay`) through a real pcsc-lite: Debian's pcscd with vsmartcard's
// virtual reader driver (vpcd), run privately by scripts/pcsc-test.sh, which also runs these
// tests (in its namespace: they talk to that pcscd only). The cards: the project's own
// virtual card (target/debug/examples/vpcd-card: the simulator's card model behind vpcd's
// socket protocol) and vsmartcard's vicc.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, mkdir, symlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { root, startServer } from "../e2e/harness.mjs";
import { assertSeedTrace } from "../e2e/seed-trace.mjs";

const AGENT = process.env.CARD_RELAY_AGENT ?? path.join(root, "target/debug/card-relay");
const VPCD_CARD = path.join(root, "target/debug/examples/vpcd-card");
const PORT = Number(process.env.CARD_RELAY_VPCD_PORT ?? 40059);
const READER = "Virtual PCD 00 00";
const SECOND_READER = "Virtual PCD 00 01";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** Runs the agent to its end (at most 30 s): { code, stdout, stderr }. */
async function agent(args, { input } = {}) {
  const child = spawn(AGENT, args, { cwd: root, stdio: ["pipe", "pipe", "pipe"] });
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

/** Resolves once `card-relay -l` shows `reader` with (or without) a card. */
async function waitForReaderState(reader, present) {
  const want = `${reader} (PC/SC, ${present ? "card present" : "no card"})`;
  for (const deadline = Date.now() + 10_000; ; ) {
    const { stdout } = await agent(["-l"]);
    if (stdout.includes(want)) return;
    assert.ok(Date.now() < deadline, `pcscd never showed "${want}": ${stdout}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Inserts a virtual card (vpcd-card with `args`) into the first reader; resolves to
 * { log(), remove() } once pcscd sees it. remove() ends it by its PID.
 */
async function insertCard(args = [], { wait = true } = {}) {
  const child = spawn(VPCD_CARD, ["--port", String(PORT), ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (d) => (log += d));
  const card = {
    log: () => log,
    async remove() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
      await waitForReaderState(READER, false);
    },
  };
  if (wait) {
    await waitForReaderState(READER, true).catch((e) => {
      throw new Error(`${e.message}\nvpcd-card: ${log}`);
    });
  }
  return card;
}

/** The reference server's record of the RAM session run under JSESSIONID=id. */
async function session(id) {
  const r = await fetch(`${server.url}rt/session`, { headers: { cookie: `JSESSIONID=${id}` } });
  return r.json();
}

const unique = (name) => `${name}-${process.pid}-${Date.now()}`;

test("-l lists vpcd's readers, with and without a card", async () => {
  const empty = await agent(["-l"]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.equal(empty.stdout, `0: ${READER} (PC/SC, no card)\n1: ${SECOND_READER} (PC/SC, no card)\n`);
  const card = await insertCard();
  try {
    const listed = await agent(["-l"]);
    assert.match(listed.stdout, /^0: Virtual PCD 00 00 \(PC\/SC, card present\)$/m);
  } finally {
    await card.remove();
  }
});

test("/rt/test through pcsc-lite reproduces the seed's trace and completes", async () => {
  const card = await insertCard();
  try {
    const id = unique("pcsc-seed");
    const url = `${server.url}rt/test`;
    const { code, stdout, stderr } = await agent(["-r", "PCD 00 00", "-s", id, url]);
    assert.equal(code, 0, stderr);
    const lines = stdout.trimEnd().split("\n");
    assert.equal(lines[0], `Connecting to ${url}`);
    assert.ok(lines.includes("Notification 0: Test"));
    assert.equal(lines.at(-1), "Update complete");
    assertSeedTrace(stdout);
    const s = await session(id);
    assert.equal(s.state, "completed", JSON.stringify(s));
  } finally {
    await card.remove();
  }
});

test("a GP SERAM session through pcsc-lite runs the seed's script", async () => {
  const card = await insertCard();
  try {
    const run = await agent(["--dialect", "seram", "-s", unique("pcsc-seram"), `${server.url}seram/test`]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /Update complete\n$/);
    assertSeedTrace(run.stdout);
  } finally {
    await card.remove();
  }
});

test("a T=0 card: the agent follows 61xx/6Cxx itself, the server sees the same answers", async () => {
  const runs = [];
  for (const args of [[], ["--t0"]]) {
    const card = await insertCard(args);
    try {
      const id = unique(`pcsc-t0-${args.length}`);
      const run = await agent(["-v", "-s", id, `${server.url}rt/test`]);
      assert.equal(run.code, 0, run.stderr);
      runs.push({ run, log: (await session(id)).log });
    } finally {
      await card.remove();
    }
  }
  const [t1, t0] = runs;
  assert.match(t1.run.stdout, /^ATR: 3B FE 18 /m);
  assert.match(t0.run.stdout, /^ATR: 3B 12 96 14 50$/m);
  // Same card model, same seed: the whole trace matches, challenges included.
  const trace = (out) => out.split("\n").filter((l) => !/^(ATR|Reader|\d+ APDUs)/.test(l)).join("\n");
  assert.equal(trace(t0.run.stdout), trace(t1.run.stdout));
  assertSeedTrace(t0.run.stdout);
  // What the server received (its own trace of the R-APDUs), ATR lines aside.
  const answers = (log) => log.filter((l) => !/ATR:/.test(l));
  assert.deepEqual(answers(t0.log), answers(t1.log));
});

test("-p verifies the PIN on the card first, given, piped or wrong", async () => {
  const card = await insertCard(["--card", "pin"]);
  try {
    const url = `${server.url}rt/pin-test`;
    const given = await agent(["-p", "123456", url]);
    assert.equal(given.code, 0, given.stderr);
    assert.match(given.stdout, /Notification \d+: PIN verified/);
    assert.match(given.stdout, /Update complete\n$/);
    const piped = await agent(["-q", "-p", url], { input: "123456\n" });
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, "Update complete\n");
    const id = unique("pcsc-pin");
    const wrong = await agent(["-s", id, "-p", "000000", url]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^Update failed \(pin-failed\): wrong PIN, 2 tries left$/m);
    assert.deepEqual(await session(id), { error: "no ram session for this session" });
  } finally {
    await card.remove();
  }
});

test("the card pulled out mid-session: card-absent, and the server is told", async () => {
  // The card answers the first VERIFY and SELECT, then leaves without answering.
  const card = await insertCard(["--remove-after", "2"]);
  try {
    const id = unique("pcsc-removed");
    const { code, stdout, stderr } = await agent(["-s", id, `${server.url}rt/test`]);
    assert.equal(code, 1, stdout);
    assert.match(stderr, /^Update failed \(card-absent\): /m);
    assert.match(stderr, /^Insert a card in the reader and try again\.$/m);
    assert.doesNotMatch(stdout, /Update complete/);
    const s = await session(id);
    assert.equal(s.state, "failed", JSON.stringify(s));
    assert.match(s.error ?? "", /card/i);
  } finally {
    await card.remove();
  }
});

test("the agent waits for a card, then runs the update", async () => {
  const child = spawn(AGENT, ["-r", READER, `${server.url}rt/test`], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  let card;
  try {
    for (const deadline = Date.now() + 10_000; !stdout.includes(`Insert a card into ${READER}…`); ) {
      assert.ok(Date.now() < deadline, `no request for a card: ${stdout}${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    card = await insertCard([], { wait: false });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const [code] = child.exitCode === null ? await once(child, "exit") : [child.exitCode];
    clearTimeout(timer);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Update complete\n$/);
    assertSeedTrace(stdout);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    await card?.remove();
  }
});

/**
 * vsmartcard's own virtual card (vicc, ISO 7816 profile) on the second reader. Debian's vicc
 * imports `Crypto` while Debian ships PyCryptodome as `Cryptodome`: a symlink on PYTHONPATH
 * for this process only.
 */
async function startVicc() {
  const dir = await mkdtemp(path.join(tmpdir(), "vicc-"));
  await mkdir(path.join(dir, "py"));
  await symlink("/usr/lib/python3/dist-packages/Cryptodome", path.join(dir, "py", "Crypto"));
  const pythonPath = [path.join(dir, "py"), "/usr/lib/python3/site-packages/virtualsmartcard"].join(":");
  const child = spawn("vicc", ["-t", "iso7816", "-H", "127.0.0.1", "-P", String(PORT + 1)], {
    cwd: dir,
    env: { ...process.env, PYTHONPATH: pythonPath },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr.on("data", (d) => (log += d));
  return {
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test("vsmartcard's vicc: listed, and a session runs its commands on it", async () => {
  const vicc = await startVicc();
  try {
    await waitForReaderState(SECOND_READER, true).catch((e) => {
      throw new Error(`${e.message}\nvicc: ${vicc.log()}`);
    });
    const listed = await agent(["-l"]);
    assert.match(listed.stdout, /^1: Virtual PCD 00 01 \(PC\/SC, card present\)$/m);
    // /rt/pin-test asks for the PIN state (VERIFY without data): whatever vicc answers, the
    // session completes and the trace shows the command and vicc's answer.
    const run = await agent(["-r", SECOND_READER, "-v", `${server.url}rt/pin-test`]);
    assert.equal(run.code, 0, `${run.stdout}${run.stderr}`);
    assert.match(run.stdout, /^Reader: Virtual PCD 00 01 \(PC\/SC\)$/m);
    assert.match(run.stdout, /^[0-9A-F]{2} C: 00 20 00 81 - VERIFY$/m);
    assert.match(run.stdout, /^ {3}R: SW1\/SW2=[0-9A-F]{4} /m);
    assert.match(run.stdout, /Update complete\n$/);
  } finally {
    await vicc.stop();
  }
});
