// The benchmarks (npm run bench): per-APDU cost of the stack against a bare transfer loop,
// HTTP round trips of card update sessions, the production bundle's size and start-up time,
// and the JS heap over many APDUs. Runs the reference server and headless Chromium through
// the end-to-end harness; the in-page half is bench/page.mjs.
//
//   node bench/run.mjs            full run: writes bench/results.json and the table in README.md,
//                                 then exits 1 if the production bundle is over its target
//   node bench/run.mjs --smoke    a few iterations, checks that every figure is sane, writes nothing
//   node bench/run.mjs --help     this text
//
// Both runs fail when the production wasm carries core's panic formatting of a failed str
// slice again (PANIC_FORMATTING_TEXTS below).
import { execFileSync } from "node:child_process";
import { measureAgent, agentTable } from "./agent.mjs";
import { readFileSync, writeFileSync, mkdtempSync, copyFileSync, rmSync, readdirSync, existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { gzipSync, constants as zlib } from "node:zlib";
import { startServer, launchBrowser, root } from "../tests/e2e/harness.mjs";
import { measureViteApp, viteAppTable } from "./vite-app.mjs";

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  const self = readFileSync(new URL(import.meta.url), "utf8");
  const head = self.slice(0, self.indexOf("\nimport "));
  console.log(head.replace(/^\/\/ ?/gm, ""));
  process.exit(0);
}

const smoke = process.argv.includes("--smoke");

const SETTINGS = smoke
  ? { apdusPerRepeat: 20, repeats: 2, sessions: 2, instantiations: 1, heapApdus: 1_000, heapWarmup: 100, heapIdleMs: 0 }
  : { apdusPerRepeat: 600, repeats: 15, sessions: 20, instantiations: 7, heapApdus: 100_000, heapWarmup: 1_000, heapIdleMs: 15_000 };

/** The transmit cases: reader (bench/page.mjs READERS) and response data length. */
const CASES = [
  ["short-apdu", 5],
  ["short-apdu", 255],
  ["tpdu-t0", 5],
  ["tpdu-t0", 255],
  ["tpdu-t1", 5],
  ["tpdu-t1", 255],
  ["tpdu-t1", 1024],
];

/** The card update sessions: the seed's OpenSCDP example and the two-script GP example. */
const SESSIONS = [
  { name: "openscdp /rt/test", path: "/rt/test", dialect: "openscdp", reader: "tpdu-t1" },
  { name: "gp /rt/gp-test", path: "/rt/gp-test", dialect: "gp", reader: "tpdu-t1" },
];

const TARGETS = {
  overhead_us_median: 15,
  bundle_gzip_bytes: 60_000,
  // "≈ 0 after a forced GC": allowed noise of the collector, not a budget for leaks.
  heap_growth_bytes: 65_536,
};

/**
 * Texts that only core's panic message for a str slice off a char boundary carries. Their
 * presence in the production wasm means a `&str` pattern search (`split_once("://")`,
 * `contains("..")`) or a `str::contains(char)` of a non-ASCII char is back in code the
 * bundle reaches: with it come core's substring searcher, the char and range `Debug`
 * formatting and Unicode's printable tables (issue 18: about 5 000 bytes gzipped). The
 * crate searches bytes instead (`session::uri::origin`).
 */
const PANIC_FORMATTING_TEXTS = ["is not a char boundary"];

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { min: sorted[0], median, max: sorted[sorted.length - 1] };
}

function round(value, digits = 2) {
  if (typeof value === "number") return Number(value.toFixed(digits));
  if (Array.isArray(value)) return value.map((v) => round(v, digits));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, round(v, digits)]));
  }
  return value;
}

function check(condition, message) {
  if (!condition) throw new Error(`bench: ${message}`);
}

/** Opens a page on the server's origin with bench/page.mjs served under /__bench/. */
async function benchPage(browser, url) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
  await page.route(`${url}__bench/**`, (route) => {
    const name = new URL(route.request().url()).pathname.replace("/__bench/", "");
    if (name === "page.mjs") {
      return route.fulfill({
        contentType: "text/javascript",
        body: readFileSync(path.join(root, "bench/page.mjs")),
      });
    }
    return route.fulfill({ contentType: "text/html", body: "<!doctype html><title>bench</title>" });
  });
  await page.goto(`${url}__bench/`);
  await page.evaluate(async () => {
    globalThis.bench = await import("/__bench/page.mjs");
    await globalThis.bench.setup();
  });
  return page;
}

async function measureTransmit(page) {
  const results = [];
  for (const [reader, length] of CASES) {
    const raw = await page.evaluate((args) => globalThis.bench.transmitCase(args), {
      reader,
      length,
      count: SETTINGS.apdusPerRepeat,
      repeats: SETTINGS.repeats,
    });
    const label = await page.evaluate((r) => globalThis.bench.READERS[r].label, reader);
    check(raw.blocksPerApdu.stack === raw.blocksPerApdu.floor, `${reader} ${length}: floor sends other blocks than the stack`);
    const overhead = raw.stack.map((s, i) => s - raw.floor[i]);
    const ratio = raw.stack.map((s, i) => raw.floor[i] / s);
    const stack = stats(raw.stack);
    const row = {
      reader,
      label,
      exchange_level: raw.level,
      response_data_bytes: length,
      ccid_messages_per_apdu: raw.blocksPerApdu.stack,
      ccid_message_bytes: raw.messageBytes,
      stack_us_per_apdu: stats(raw.stack),
      stack_apdus_per_s: stats(raw.stack.map((us) => 1e6 / us)),
      floor_us_per_apdu: stats(raw.floor),
      floor_apdus_per_s: stats(raw.floor.map((us) => 1e6 / us)),
      overhead_us_per_apdu: stats(overhead),
      throughput_ratio: stats(ratio),
    };
    // Issue 18: multi-message cases are judged per extra CCID message, against the same
    // reader's single-message case of this run (the CASES list measures that one first).
    const single = results.find((r) => r.reader === reader && r.ccid_messages_per_apdu === 1);
    if (row.ccid_messages_per_apdu > 1 && single) {
      row.overhead_us_per_extra_message =
        (row.overhead_us_per_apdu.median - single.overhead_us_per_apdu.median) / (row.ccid_messages_per_apdu - 1);
    }
    results.push(row);
    console.log(
      `transmit ${reader} ${length} B: stack ${stack.median.toFixed(1)} µs, floor ${row.floor_us_per_apdu.median.toFixed(1)} µs, ` +
        `overhead ${row.overhead_us_per_apdu.median.toFixed(1)} µs, ${row.ccid_messages_per_apdu} CCID message(s) per APDU`,
    );
  }
  return results;
}

async function measureSessions(page) {
  const results = [];
  for (const s of SESSIONS) {
    const runs = [];
    for (let i = 0; i < SETTINGS.sessions; i++) {
      runs.push(await page.evaluate((args) => globalThis.bench.session(args), s));
    }
    for (const r of runs) {
      check(r.status === "completed" && r.serverState === "completed", `${s.name}: session ${r.status}/${r.serverState}`);
      check(r.roundTrips === r.serverRoundTrips, `${s.name}: client counts ${r.roundTrips} round trips, server ${r.serverRoundTrips}`);
    }
    const row = {
      session: s.name,
      apdus: stats(runs.map((r) => r.apdus)),
      round_trips: stats(runs.map((r) => r.roundTrips)),
      round_trips_minimum: stats(runs.map((r) => 1 + r.templates)),
      at_minimum: runs.every((r) => r.roundTrips === 1 + r.templates),
      ms_per_session: stats(runs.map((r) => r.ms)),
    };
    results.push(row);
    console.log(
      `session ${s.name}: ${row.round_trips.median} round trips (minimum ${row.round_trips_minimum.median}), ` +
        `${row.ms_per_session.median.toFixed(2)} ms`,
    );
  }
  return results;
}

/**
 * The rustc that built `wasm`, from its `producers` custom section (WebAssembly tool
 * conventions, "Producers Section": a vector of fields, each a name and a vector of
 * (name, version) pairs; strings are a LEB128 length and UTF-8). scripts/build.sh builds
 * with the pinned nightly of scripts/browser-toolchain.sh, or with stable when that is not
 * installed: the bench says which, so a bigger bundle from the fallback is never silent.
 */
function rustcOf(wasm) {
  const [section] = WebAssembly.Module.customSections(new WebAssembly.Module(wasm), "producers");
  if (!section) return null;
  const bytes = new Uint8Array(section);
  let at = 0;
  const leb = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++];
      check(b !== undefined && shift < 35, "producers section cut short");
      value += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return value;
    }
  };
  const str = () => {
    const n = leb();
    check(at + n <= bytes.length, "producers section cut short");
    return new TextDecoder().decode(bytes.subarray((at += n) - n, at));
  };
  for (let fields = leb(); fields > 0; fields--) {
    const field = str();
    for (let values = leb(); values > 0; values--) {
      const [name, version] = [str(), str()];
      if (field === "processed-by" && name === "rustc") return version;
    }
  }
  return null;
}

/** Builds the production bundle (pkg/ with npm binaryen's wasm-opt -Oz) and measures it. */
function measureBundle() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "card-relay-bench-"));
  try {
    const input = path.join(dir, "card_relay_bg.wasm");
    const output = path.join(dir, "card_relay_bg.opt.wasm");
    copyFileSync(path.join(root, "pkg/card_relay_bg.wasm"), input);
    const wasmOpt = path.join(root, "node_modules/.bin/wasm-opt");
    const version = execFileSync(wasmOpt, ["--version"], { encoding: "utf8" }).trim();
    execFileSync(wasmOpt, ["-Oz", input, "-o", output], { stdio: ["ignore", "ignore", "inherit"] });
    const gz = (bytes) => gzipSync(bytes, { level: zlib.Z_BEST_COMPRESSION }).length;
    const files = {
      "card_relay_bg.wasm (wasm-opt -Oz)": readFileSync(output),
      // scripts/package.mjs bundles the glue and src/web/platform.js into the API layer.
      "card-relay.js (API layer + wasm-bindgen glue + platform.js)": readFileSync(path.join(root, "pkg/card-relay.js")),
    };
    // wasm-bindgen's inline JS snippets (pkg/snippets/<crate>/inlineN.js) ship too.
    const snippets = path.join(root, "pkg/snippets");
    for (const file of existsSync(snippets) ? readdirSync(snippets, { recursive: true }) : []) {
      if (String(file).endsWith(".js")) {
        files[`snippets/${String(file).split(path.sep).join("/")} (inline JS)`] = readFileSync(path.join(snippets, String(file)));
      }
    }
    const before = readFileSync(input);
    const parts = Object.entries(files).map(([file, bytes]) => ({ file, raw_bytes: bytes.length, gzip_bytes: gz(bytes) }));
    const optimised = files["card_relay_bg.wasm (wasm-opt -Oz)"];
    const panicFormatting = PANIC_FORMATTING_TEXTS.filter((text) => optimised.includes(Buffer.from(text)));
    return {
      wasm_opt: version,
      optimised: files["card_relay_bg.wasm (wasm-opt -Oz)"],
      result: {
        rustc: rustcOf(before),
        wasm_before_wasm_opt: { raw_bytes: before.length, gzip_bytes: gz(before) },
        files: parts,
        raw_bytes: parts.reduce((a, p) => a + p.raw_bytes, 0),
        gzip_bytes: parts.reduce((a, p) => a + p.gzip_bytes, 0),
        panic_formatting_texts: panicFormatting,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Compile + instantiate of the optimised production wasm in fresh pages (bytes in memory). */
async function measureInstantiate(browser, url, wasm) {
  const times = [];
  for (let i = 0; i < SETTINGS.instantiations; i++) {
    const page = await browser.newPage();
    await page.route(`${url}__bench/card_relay_bg.wasm`, (route) =>
      route.fulfill({ contentType: "application/wasm", body: wasm }),
    );
    await page.route(`${url}__bench/`, (route) =>
      route.fulfill({ contentType: "text/html", body: "<!doctype html><title>bench</title>" }),
    );
    await page.goto(`${url}__bench/`);
    times.push(
      await page.evaluate(async () => {
        const bytes = await (await fetch("/__bench/card_relay_bg.wasm")).arrayBuffer();
        const api = await import("/pkg/card-relay.js");
        const t0 = performance.now();
        await api.default({ module_or_path: bytes });
        const ms = performance.now() - t0;
        if (typeof api.version() !== "string") throw new Error("the optimised module does not work");
        return ms;
      }),
    );
    await page.close();
  }
  return stats(times);
}

async function measureHeap(page) {
  const cdp = await page.context().newCDPSession(page);
  const heap = async () => {
    await cdp.send("HeapProfiler.collectGarbage");
    await cdp.send("HeapProfiler.collectGarbage");
    return (await cdp.send("Runtime.getHeapUsage")).usedSize;
  };
  const run = (count) =>
    page.evaluate((args) => globalThis.bench.manyApdus(args), { reader: "tpdu-t1", length: 5, count });
  // A first batch fills the caches a first call fills once (compiled code, lazily built tables).
  await run(SETTINGS.heapWarmup);
  const before = await heap();
  const wasmBefore = await page.evaluate(() => globalThis.bench.wasmMemoryBytes());
  const wasmAfter = await run(SETTINGS.heapApdus);
  const after = await heap();
  // Again once the exchange deadlines of those APDUs (seconds) have passed: what the timers
  // and promises still waiting on them held is then collectable.
  await new Promise((resolve) => setTimeout(resolve, SETTINGS.heapIdleMs));
  const idle = await heap();
  await cdp.detach();
  return {
    apdus: SETTINGS.heapApdus,
    reader: "tpdu-t1",
    response_data_bytes: 5,
    js_heap_before_bytes: before,
    js_heap_after_bytes: after,
    heap_growth_bytes: after - before,
    idle_ms: SETTINGS.heapIdleMs,
    js_heap_after_idle_bytes: idle,
    heap_growth_after_idle_bytes: idle - before,
    wasm_memory_before_bytes: wasmBefore,
    wasm_memory_after_bytes: wasmAfter,
  };
}

function machine(browserVersion, loadBefore) {
  const cpus = os.cpus();
  return {
    // The 1-minute load average before and after the run: other work on the machine.
    load_average: { before: loadBefore, after: os.loadavg()[0] },
    cpu: cpus[0]?.model ?? "unknown",
    cores: cpus.length,
    memory_bytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    chromium: browserVersion,
  };
}

function sanity(results) {
  for (const t of results.transmit) {
    const { stack_us_per_apdu: s, floor_us_per_apdu: f } = t;
    check(Number.isFinite(s.median) && s.median > 0 && Number.isFinite(f.median) && f.median > 0, `${t.reader}: bad timings`);
    check(t.ccid_messages_per_apdu >= 1, `${t.reader}: no CCID message`);
  }
  for (const s of results.sessions) check(s.round_trips.min >= 2, `${s.session}: fewer than 2 round trips`);
  check(results.bundle.gzip_bytes > 10_000 && results.bundle.gzip_bytes < results.bundle.raw_bytes, "bundle sizes");
  check(results.instantiate_ms.median > 0, "instantiation time");
  check(results.heap.js_heap_before_bytes > 0 && results.heap.js_heap_after_bytes > 0, "heap sizes");
}

function table(results) {
  const f = results.figures;
  const us = (x) => x.toFixed(1);
  const lines = [
    `Latest run: ${results.date.slice(0, 10)}, ${results.machine.cpu} (${results.machine.cores} cores), Chromium ${results.machine.chromium}, ` +
      `load average ${results.machine.load_average.before}–${results.machine.load_average.after}; ` +
      `medians over ${results.settings.repeats} repeats of ${results.settings.apdus_per_repeat} APDUs (min–max in \`bench/results.json\`).`,
    "",
    "| reader | response | CCID msgs/APDU | stack µs/APDU | APDUs/s | floor µs/APDU | overhead µs/APDU | per extra msg µs | throughput stack/floor |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const t of results.transmit) {
    lines.push(
      `| ${t.label} | ${t.response_data_bytes} B | ${t.ccid_messages_per_apdu} | ${us(t.stack_us_per_apdu.median)} | ` +
        `${Math.round(t.stack_apdus_per_s.median)} | ${us(t.floor_us_per_apdu.median)} | ${us(t.overhead_us_per_apdu.median)} | ` +
        `${t.overhead_us_per_extra_message === undefined ? "" : us(t.overhead_us_per_extra_message)} | ` +
        `${t.throughput_ratio.median.toFixed(2)} |`,
    );
  }
  lines.push("", "| session | APDUs | round trips | minimum | ms/session |", "|---|---:|---:|---:|---:|");
  for (const s of results.sessions) {
    lines.push(
      `| ${s.session} | ${s.apdus.median} | ${s.round_trips.median} | ${s.round_trips_minimum.median} | ${s.ms_per_session.median.toFixed(2)} |`,
    );
  }
  const b = results.bundle;
  lines.push("", "| production bundle (`pkg/`, no simulator) | raw bytes | gzip -9 bytes |", "|---|---:|---:|");
  for (const p of b.files) lines.push(`| ${p.file} | ${p.raw_bytes} | ${p.gzip_bytes} |`);
  lines.push(`| **total** | ${b.raw_bytes} | **${b.gzip_bytes}** |`);
  lines.push(`| (built by rustc ${b.rustc ?? "unknown"}: scripts/browser-toolchain.sh) | | |`);
  lines.push(
    `| (pkg/card_relay_bg.wasm as shipped: scripts/build.sh already runs wasm-opt -Oz) | ${b.wasm_before_wasm_opt.raw_bytes} | ${b.wasm_before_wasm_opt.gzip_bytes} |`,
  );
  const h = results.heap;
  const met = (ok) => (ok ? "met" : "**missed**");
  lines.push(
    "",
    "| figure | value | target | |",
    "|---|---:|---:|---|",
    `| \`overhead_us_median\` (worst single-message case above) | ${us(f.overhead_us_median)} µs | ≤ ${TARGETS.overhead_us_median} µs | ${met(results.targets.overhead_us_median)} |`,
    `| \`throughput_ratio\` (same case) | ${f.throughput_ratio.toFixed(2)} | reported | |`,
    `| \`overhead_us_per_extra_message\` (worst multi-message case) | ${us(f.overhead_us_per_extra_message)} µs | reported | |`,
    `| \`round_trips\` / \`round_trips_minimum\` (every session) | ${f.round_trips} / ${f.round_trips_minimum} | equal | ${met(results.targets.round_trips)} |`,
    `| \`bundle_gzip_bytes\` | ${f.bundle_gzip_bytes} | ≤ ${TARGETS.bundle_gzip_bytes} | ${met(results.targets.bundle_gzip_bytes)} |`,
    `| core's str-slice panic formatting in the wasm (\`PANIC_FORMATTING_TEXTS\`) | ${b.panic_formatting_texts.length ? b.panic_formatting_texts.join(", ") : "none"} | none | ${met(b.panic_formatting_texts.length === 0)} |`,
    `| \`heap_growth_bytes\` after ${h.apdus} APDUs, forced GC | ${f.heap_growth_bytes} | ≈ 0 (≤ ${TARGETS.heap_growth_bytes}) | ${met(results.targets.heap_growth_bytes)} |`,
    `| heap growth once idle ${h.idle_ms / 1000} s after the last APDU, forced GC | ${h.heap_growth_after_idle_bytes} | reported | |`,
    `| instantiate (compile + instantiate, median) | ${results.instantiate_ms.median.toFixed(1)} ms | reported | |`,
    `| wasm memory before / after | ${h.wasm_memory_before_bytes} / ${h.wasm_memory_after_bytes} | reported | |`,
  );
  lines.push(...viteAppTable(results.vite_app));
  return lines.join("\n");
}

function writeReadmeTable(markdown) {
  const file = path.join(root, "README.md");
  const text = readFileSync(file, "utf8");
  const start = "<!-- bench:table:start -->";
  const end = "<!-- bench:table:end -->";
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  check(i >= 0 && j > i, "README.md lacks the bench table markers");
  writeFileSync(file, `${text.slice(0, i + start.length)}\n${markdown}\n${text.slice(j)}`);
}

async function main() {
  const loadBefore = os.loadavg()[0];
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const page = await benchPage(browser, server.url);
    const transmit = await measureTransmit(page);
    const sessions = await measureSessions(page);
    const heap = await measureHeap(page);
    await page.close();
    const bundle = measureBundle();
    const instantiate = await measureInstantiate(browser, server.url, bundle.optimised);
    const agent = await measureAgent({ smoke });
    // The target is per single-message APDU in every case; multi-message cases are reported
    // per extra message (issue 18).
    const singles = transmit.filter((t) => t.ccid_messages_per_apdu === 1);
    const worst = singles.reduce((a, t) => (t.overhead_us_per_apdu.median > a.overhead_us_per_apdu.median ? t : a));
    const perExtra = transmit.filter((t) => t.overhead_us_per_extra_message !== undefined);
    const worstExtra = perExtra.reduce(
      (a, t) => (a === null || t.overhead_us_per_extra_message > a.overhead_us_per_extra_message ? t : a),
      null,
    );
    const sessionTrips = sessions.reduce((a, s) => a + s.round_trips.median, 0);
    const sessionMinimum = sessions.reduce((a, s) => a + s.round_trips_minimum.median, 0);
    const results = {
      date: new Date().toISOString(),
      machine: machine(browser.version(), loadBefore),
      settings: {
        apdus_per_repeat: SETTINGS.apdusPerRepeat,
        repeats: SETTINGS.repeats,
        sessions_per_kind: SETTINGS.sessions,
        instantiations: SETTINGS.instantiations,
        simulated_reader_latency: "zero",
        wasm_opt: bundle.wasm_opt,
        gzip: "node zlib, level 9",
      },
      figures: {
        overhead_us_median: worst.overhead_us_per_apdu.median,
        overhead_case: `${worst.label}, ${worst.response_data_bytes} B`,
        throughput_ratio: worst.throughput_ratio.median,
        overhead_us_per_extra_message: worstExtra?.overhead_us_per_extra_message ?? 0,
        overhead_per_extra_message_case: worstExtra ? `${worstExtra.label}, ${worstExtra.response_data_bytes} B` : null,
        round_trips: sessionTrips,
        round_trips_minimum: sessionMinimum,
        bundle_gzip_bytes: bundle.result.gzip_bytes,
        heap_growth_bytes: heap.heap_growth_bytes,
      },
      targets: {
        overhead_us_median: worst.overhead_us_per_apdu.median <= TARGETS.overhead_us_median,
        round_trips: sessions.every((s) => s.at_minimum),
        bundle_gzip_bytes: bundle.result.gzip_bytes <= TARGETS.bundle_gzip_bytes,
        heap_growth_bytes: heap.heap_growth_bytes <= TARGETS.heap_growth_bytes,
      },
      transmit,
      sessions,
      bundle: bundle.result,
      instantiate_ms: instantiate,
      heap,
      agent,
      vite_app: measureViteApp(root),
    };
    sanity(results);
    if (!/-nightly/.test(bundle.result.rustc ?? "")) {
      console.warn(
        `bench: WARNING: pkg/ was built by rustc ${bundle.result.rustc ?? "unknown"}, not the pinned nightly of ` +
          "scripts/browser-toolchain.sh (scripts/build.sh fell back to stable): the bundle is bigger than the one that ships",
      );
    }
    const rounded = round(results);
    const markdown = `${table(rounded)}\n\n${agentTable(rounded.agent)}`;
    console.log(`\n${markdown}\n`);
    // Issue 18: a regression of the size lever "no panicking paths that pull in formatting"
    // fails both runs, with its cause, whatever the total.
    const found = bundle.result.panic_formatting_texts;
    const formatting = found.length
      ? `the production wasm carries core's str-slice panic formatting again (${found.map((t) => JSON.stringify(t)).join(", ")}): ` +
        "a &str pattern search or a non-ASCII str::contains(char) is back; search bytes instead (bench/run.mjs PANIC_FORMATTING_TEXTS)"
      : null;
    const over = results.targets.bundle_gzip_bytes
      ? null
      : `the production bundle is ${bundle.result.gzip_bytes} bytes gzipped, over its target of ${TARGETS.bundle_gzip_bytes}`;
    if (smoke) {
      // The smoke run (part of npm test) only reports the bundle target; the full run fails on it.
      if (over) console.warn(`bench smoke: ${over}`);
      check(!formatting, formatting);
      console.log("bench smoke: ok");
    } else {
      writeFileSync(path.join(root, "bench/results.json"), `${JSON.stringify(rounded, null, 2)}\n`);
      writeReadmeTable(markdown);
      console.log("wrote bench/results.json and the table in README.md");
      // Issue 18: the bundle target holds for every dialect and transport that lands later.
      for (const failure of [over, formatting].filter(Boolean)) {
        console.error(`bench: FAILED: ${failure}`);
        process.exitCode = 1;
      }
    }
  } finally {
    await browser.close();
    await server.stop();
  }
}

await main();
