// The in-page half of the benchmarks (bench/run.mjs serves this module on the reference
// server's origin and calls its exports with page.evaluate). Everything here runs in
// headless Chromium against the simulated reader of pkg-sim/, which answers at once: the
// figures are the cost of the software, not of a reader or a card.
import init, * as relay from "/pkg-sim/card-relay.js";

let memory;
let profiles;

/** Loads the package and the reader profiles; call once per page. */
export async function setup() {
  // The module's one memory (its export name is minified: scripts/minify-names.mjs).
  memory = Object.values(await init()).find((value) => value instanceof WebAssembly.Memory);
  profiles = await (await fetch("/generated/profiles.json")).json();
  return { version: relay.version() };
}

/** The readers the transmit benchmarks use, one per exchange level / card protocol. */
export const READERS = {
  "short-apdu": { profile: "ACS_ACR3901U_ICC_Reader", card: "seed", label: "short-APDU reader (ACS ACR3901U), T=1 card" },
  "tpdu-t0": {
    profile: "GemPCTwin",
    card: { app: "seed", atr: "3B 12 96 14 50" },
    label: "TPDU reader (Gemalto GemPC Twin), T=0 card",
  },
  "tpdu-t1": { profile: "GemPCTwin", card: "seed", label: "TPDU reader (Gemalto GemPC Twin), T=1 card" },
};

/** GET CHALLENGE (ISO 7816-4 §11.6.3) for `length` bytes: short Le up to 256, else extended. */
function getChallenge(length) {
  if (length <= 256) return Uint8Array.of(0x00, 0x84, 0x00, 0x00, length & 0xff);
  return Uint8Array.of(0x00, 0x84, 0x00, 0x00, 0x00, length >> 8, length & 0xff);
}

function simulator(name) {
  const { profile, card } = READERS[name];
  return relay.createSimulatedReader({ profile, profileText: profiles[profile], card });
}

/** The bulk endpoints of the simulator's CCID interface. */
function bulkEndpoints(sim) {
  for (const iface of sim.configurations[0].interfaces) {
    const eps = iface.alternates[0].endpoints.filter((e) => e.type === "bulk");
    if (eps.length === 2) {
      return {
        out: eps.find((e) => e.direction === "out").endpointNumber,
        in: eps.find((e) => e.direction === "in").endpointNumber,
      };
    }
  }
  throw new Error("no bulk endpoint pair");
}

/**
 * Records the bulk transfers the stack makes, by shadowing the simulator's transferOut and
 * transferIn with own properties that log and delegate. Only the recording pass uses this:
 * the timed stack runs talk to an unwrapped simulator.
 */
function record(sim, bulk) {
  const log = { on: false, prelude: [], cycle: [], control: 0 };
  const push = (op) => (log.on ? log.cycle : log.prelude).push(op);
  const proto = Object.getPrototypeOf(sim);
  sim.transferOut = (endpoint, data) => {
    if (endpoint === bulk.out) {
      const view = ArrayBuffer.isView(data) ? data : new Uint8Array(data);
      push({ out: new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength)) });
    }
    return proto.transferOut.call(sim, endpoint, data);
  };
  sim.transferIn = (endpoint, length) => {
    if (endpoint === bulk.in) push({ in: length });
    return proto.transferIn.call(sim, endpoint, length);
  };
  for (const name of ["controlTransferIn", "controlTransferOut"]) {
    sim[name] = (...args) => {
      if (log.on) log.control += 1;
      return proto[name].apply(sim, args);
    };
  }
  return log;
}

/**
 * Turns a recorded op list into CCID exchanges: each bulk-OUT message with the number of
 * bulk-IN reads and their length. The driver always writes before it reads.
 */
function exchanges(ops) {
  const list = [];
  for (const op of ops) {
    if (op.out) list.push({ message: op.out, reads: 0, length: 0 });
    else if (list.length === 0) throw new Error("a read before any write");
    else {
      list[list.length - 1].reads += 1;
      list[list.length - 1].length = op.in;
    }
  }
  return list;
}

/**
 * Sends recorded exchanges on a bare simulator: transferOut then transferIn, nothing else.
 * This is the floor loop; `check` verifies the answers once, outside the timed runs.
 */
async function replay(sim, bulk, list, times, check) {
  for (let t = 0; t < times; t++) {
    for (let i = 0; i < list.length; i++) {
      const x = list[i];
      await sim.transferOut(bulk.out, x.message);
      for (let r = 0; r < x.reads; r++) {
        const result = await sim.transferIn(bulk.in, x.length);
        if (check) check(x.message, result);
      }
    }
  }
}

/** An answer must be a RDR_to_PC_DataBlock (0x80) with the command's bSeq and status OK. */
function checkAnswer(message, result) {
  const d = result.data;
  if (result.status !== "ok" || d.getUint8(0) !== 0x80 || d.getUint8(6) !== message[6] || (d.getUint8(7) & 0xc3) !== 0) {
    throw new Error(`floor: unexpected answer to bSeq ${message[6]}`);
  }
}

const CYCLE = 2; // APDUs per recorded cycle: T=1 send sequence numbers repeat every 2 I-blocks.

/**
 * One transmit case: `repeats` pairs of timed runs of `count` APDUs (count even), the stack
 * (CardReader.transmit) and the floor (the same CCID messages by a bare loop), interleaved.
 * Times are µs per APDU per repeat.
 */
export async function transmitCase({ reader: name, length, count, repeats }) {
  const apdu = getChallenge(length);

  // Recording pass: the exact CCID traffic of the stack for this exchange.
  const recSim = simulator(name);
  const bulk = bulkEndpoints(recSim);
  const log = record(recSim, bulk);
  const recReader = await relay.CardReader.open(recSim);
  let level;
  let responseLength;
  try {
    await recReader.powerOn();
    level = recReader.exchangeLevel;
    for (let i = 0; i < CYCLE; i++) await recReader.transmit(apdu);
    log.on = true;
    for (let i = 0; i < CYCLE; i++) responseLength = (await recReader.transmit(apdu)).length;
    log.on = false;
  } finally {
    await recReader.close();
  }
  if (responseLength !== length + 2) throw new Error(`response of ${responseLength} bytes, wanted ${length} + SW`);
  if (log.control !== 0) throw new Error("control transfers during transmit");
  const prelude = exchanges(log.prelude);
  const cycle = exchanges(log.cycle);

  // The floor's simulator: brought to the recorded state by replaying the set-up (power on,
  // parameters, IFSD, the first exchanges), then checked once.
  const floorSim = simulator(name);
  await floorSim.open();
  await floorSim.selectConfiguration(floorSim.configurations[0].configurationValue);
  for (const iface of floorSim.configuration.interfaces) await floorSim.claimInterface(iface.interfaceNumber);
  await replay(floorSim, bulk, prelude, 1, null);
  await replay(floorSim, bulk, cycle, 1, checkAnswer);

  // The stack's simulator, unwrapped.
  const sim = simulator(name);
  const reader = await relay.CardReader.open(sim);
  await reader.powerOn();
  for (let i = 0; i < 2 * CYCLE; i++) await reader.transmit(apdu);
  // One untimed repeat of each loop first, so the JIT has compiled both before the clock
  // runs: without it the first case measured was the slowest of all, floor included.
  for (let i = 0; i < count; i++) await reader.transmit(apdu);
  await replay(floorSim, bulk, cycle, count / CYCLE, null);

  const stack = [];
  const floor = [];
  let stackOut = 0;
  let floorOut = 0;
  try {
    for (let r = 0; r < repeats; r++) {
      let before = sim.transfers.out;
      let t0 = performance.now();
      for (let i = 0; i < count; i++) await reader.transmit(apdu);
      stack.push(((performance.now() - t0) * 1000) / count);
      stackOut += sim.transfers.out - before;

      before = floorSim.transfers.out;
      t0 = performance.now();
      await replay(floorSim, bulk, cycle, count / CYCLE, null);
      floor.push(((performance.now() - t0) * 1000) / count);
      floorOut += floorSim.transfers.out - before;
    }
  } finally {
    await reader.close();
    await floorSim.close();
  }
  return {
    level,
    responseBytes: responseLength,
    blocksPerApdu: { stack: stackOut / (count * repeats), floor: floorOut / (count * repeats) },
    messageBytes: cycle.map((x) => x.message.length),
    stack,
    floor,
  };
}

/**
 * `count` APDUs through one reader, for the heap measurement (the caller forces GC and reads
 * the heap around it). Returns the wasm memory size after, in bytes.
 */
export async function manyApdus({ reader: name, length, count }) {
  const reader = await relay.CardReader.open(simulator(name));
  try {
    await reader.powerOn();
    const apdu = getChallenge(length);
    for (let i = 0; i < count; i++) await reader.transmit(apdu);
  } finally {
    await reader.close();
  }
  return memory.buffer.byteLength;
}

/** The wasm linear memory size, in bytes. */
export function wasmMemoryBytes() {
  return memory.buffer.byteLength;
}

/**
 * One full cardUpdate session against the reference server, with a fresh web session (the
 * JSESSIONID cookie) so that `/rt/session` reports this session's round trips and templates.
 */
export async function session({ reader: name, path, dialect }) {
  await (await fetch("/api/new-session")).json();
  const reader = await relay.CardReader.open(simulator(name));
  try {
    await reader.powerOn();
    const t0 = performance.now();
    const result = await relay.cardUpdate(reader, path, { dialect });
    const ms = performance.now() - t0;
    const server = await (await fetch("/rt/session")).json();
    return {
      ms,
      status: result.status,
      apdus: result.apdus,
      roundTrips: result.roundTrips,
      serverRoundTrips: server.round_trips,
      templates: server.templates,
      serverState: server.state,
    };
  } finally {
    await reader.close();
  }
}
