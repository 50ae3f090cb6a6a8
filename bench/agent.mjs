// The native agent's figures, same run as bench/run.mjs, on the project's virtual PC/SC card
// (target/*/examples/vpcd-card behind vsmartcard's vpcd, in the private pcscd namespace of
// scripts/pcsc-ns.sh: needs root):
// - per-APDU time through the agent's PC/SC channel against a bare loop of `pcsc` transmits
//   (target/*/examples/pcsc-bench; ratio = channel throughput / bare throughput, target ≥ 0.95);
// - start-up to the first APDU sent, without the server's time: a local GP RAM-over-HTTP
//   server answers the first POST at once with one APDU; start-up = (first POST − spawn) +
//   (second POST − first answer sent) − one APDU's time on the card (target ≤ 100 ms);
// - the stripped size of target/release/card-relay (reported).
//
//   measureAgent({ smoke })  from bench/run.mjs: { skipped } when not root, else the figures
//   node bench/agent.mjs --inside [--smoke]   (what scripts/pcsc-ns.sh runs): prints JSON
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const READER = "Virtual PCD 00 00";
export const AGENT_TARGETS = { ratio: 0.95, startup_ms: 100 };

function binaries(smoke) {
  const release = path.join(root, "target/release");
  const debug = path.join(root, "target/debug");
  const dir = !smoke && existsSync(path.join(release, "examples/pcsc-bench")) ? release : debug;
  return {
    profile: path.basename(dir),
    agent: path.join(dir, "card-relay"),
    bench: path.join(dir, "examples/pcsc-bench"),
    card: path.join(dir, "examples/vpcd-card"),
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Starts the virtual card and waits until pcscd shows it. */
async function insertCard(bin) {
  const port = process.env.CARD_RELAY_VPCD_PORT ?? "40059";
  const card = spawn(bin.card, ["--port", port], { stdio: "ignore" });
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    const { stdout } = spawnSync(bin.agent, ["-l"], { encoding: "utf8" });
    if (stdout.includes(`${READER} (PC/SC, card present)`)) return card;
    await new Promise((r) => setTimeout(r, 100));
  }
  card.kill();
  throw new Error("bench/agent: pcscd never showed the virtual card");
}

/** One start-up: ms from spawn to the first APDU sent, without the server's time. */
async function startup(bin, apduMs) {
  const script = Buffer.from("AA0722050084000008", "hex");
  const times = {};
  let posts = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      posts += 1;
      if (posts === 1) {
        times.firstPost = performance.now();
        res.writeHead(200, {
          "X-Admin-Protocol": "globalplatform-remote-admin/1.0",
          "Content-Type": "application/vnd.globalplatform.card-content-mgt;version=1.0",
          "X-Admin-Next-URI": "/admin",
        });
        res.end(script, () => (times.answered = performance.now()));
      } else {
        times.secondPost ??= performance.now();
        res.writeHead(204);
        res.end();
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${server.address().port}/admin`;
  const t0 = performance.now();
  const child = spawn(bin.agent, ["-q", "--dialect", "gp", "-r", READER, url], { stdio: "ignore" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  await once(child, "exit");
  clearTimeout(timer);
  server.close();
  if (times.secondPost === undefined) throw new Error("bench/agent: the agent never sent the APDU's answer");
  return times.firstPost - t0 + (times.secondPost - times.answered) - apduMs;
}

function strippedSize() {
  const binary = path.join(root, "target/release/card-relay");
  if (!existsSync(binary)) return null;
  const dir = mkdtempSync(path.join(tmpdir(), "card-relay-strip-"));
  try {
    const out = path.join(dir, "card-relay");
    const r = spawnSync("strip", ["-o", out, binary]);
    return r.status === 0 ? statSync(out).size : null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function inside(smoke) {
  const bin = binaries(smoke);
  const card = await insertCard(bin);
  try {
    const apdus = smoke ? 200 : 3000;
    const runs = [];
    for (let i = 0; i < (smoke ? 1 : 5); i += 1) {
      const r = spawnSync(bin.bench, ["--reader", READER, "--apdus", String(apdus)], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`bench/agent: pcsc-bench failed: ${r.stderr}`);
      runs.push(JSON.parse(r.stdout));
    }
    const bareUs = median(runs.map((r) => r.bare_us));
    const channelUs = median(runs.map((r) => r.channel_us));
    const ratio = median(runs.map((r) => r.ratio));
    const starts = [];
    for (let i = 0; i < (smoke ? 1 : 7); i += 1) starts.push(await startup(bin, channelUs / 1000));
    return {
      profile: bin.profile,
      apdus_per_repeat: apdus,
      repeats: runs.length,
      bare_us_per_apdu: bareUs,
      channel_us_per_apdu: channelUs,
      throughput_ratio: ratio,
      startup_ms_median: median(starts),
      startup_ms: starts,
      stripped_binary_bytes: strippedSize(),
    };
  } finally {
    card.kill();
  }
}

/** The agent's figures through scripts/pcsc-ns.sh, or { skipped } when that cannot run. */
export async function measureAgent({ smoke }) {
  if (process.getuid?.() !== 0) return { skipped: "not root (the private pcscd namespace needs root)" };
  if (!existsSync(binaries(smoke).bench)) return { skipped: "pcsc-bench not built (cargo build -p card-relay-agent --examples)" };
  const args = [path.join(root, "scripts/pcsc-ns.sh"), "node", path.join(root, "bench/agent.mjs"), "--inside"];
  if (smoke) args.push("--smoke");
  const child = spawn("bash", args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  let stdout = "";
  child.stdout.on("data", (d) => (stdout += d));
  const [code] = await once(child, "exit");
  if (code !== 0) throw new Error(`bench/agent: exit status ${code}`);
  const figures = JSON.parse(stdout.trim().split("\n").pop());
  const positive = (x) => Number.isFinite(x) && x > 0;
  if (![figures.bare_us_per_apdu, figures.channel_us_per_apdu, figures.startup_ms_median].every(positive)) {
    throw new Error(`bench/agent: bad figures ${stdout}`);
  }
  figures.targets = {
    throughput_ratio: figures.throughput_ratio >= AGENT_TARGETS.ratio,
    startup_ms: figures.startup_ms_median <= AGENT_TARGETS.startup_ms,
  };
  return figures;
}

/** The README's lines for the agent's figures. */
export function agentTable(a) {
  if (a.skipped) return `Native agent: not measured (${a.skipped}).`;
  const met = (ok) => (ok ? "met" : "**missed**");
  const size = a.stripped_binary_bytes === null ? "not built" : `${a.stripped_binary_bytes} B`;
  return [
    `Native agent (\`card-relay\`, ${a.profile} build), the project's virtual card behind vpcd in a private pcscd; ` +
      `medians over ${a.repeats} repeats of ${a.apdus_per_repeat} GET CHALLENGE APDUs:`,
    "",
    "| agent figure | value | target | |",
    "|---|---:|---:|---|",
    `| bare \`pcsc\` transmit loop | ${a.bare_us_per_apdu} µs/APDU | | |`,
    `| through the agent's PC/SC channel | ${a.channel_us_per_apdu} µs/APDU | | |`,
    `| \`throughput_ratio\` (channel / bare loop) | ${a.throughput_ratio} | ≥ ${AGENT_TARGETS.ratio} | ${met(a.targets.throughput_ratio)} |`,
    `| start-up to the first APDU sent, without the server's time | ${a.startup_ms_median} ms | ≤ ${AGENT_TARGETS.startup_ms} ms | ${met(a.targets.startup_ms)} |`,
    `| stripped binary (\`target/release/card-relay\`) | ${size} | reported | |`,
  ].join("\n");
}

if (process.argv.includes("--inside")) {
  console.log(JSON.stringify(await inside(process.argv.includes("--smoke"))));
}
