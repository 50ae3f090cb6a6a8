// Turns wasm-pack's output folder into the card-relay npm package: adds the JavaScript API
// layer (js/card-relay.js and its types) as the entry point and names the package. The
// package has no command line: that is the native agent (agent/, binary `card-relay`).
// The JavaScript of the package (the API layer, wasm-bindgen's glue and its inline snippets,
// i.e. src/web/platform.js) becomes ONE minified ES module, card-relay.js, bundled by
// esbuild: comments and local names are half of their gzipped size, and one module in one
// gzip stream with names mangled across the three is another 1 100 bytes (the bundle target
// in bench/run.mjs). Property and export names are kept, so the public API is unchanged.
// The names the wasm and the glue share (imports, exports) are shortened first, in both
// (scripts/minify-names.mjs).
// Runs once on wasm-pack's fresh output (scripts/build.sh), after wasm-opt -Oz.
// Usage: node scripts/package.mjs <out-dir> [--simulator]
import { readFileSync, writeFileSync, copyFileSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";
import { minifyNames } from "./minify-names.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const [outArg, ...flags] = process.argv.slice(2);
if (!outArg) {
  console.error("usage: node scripts/package.mjs <out-dir> [--simulator]");
  process.exit(2);
}
const out = path.resolve(root, outArg);
const simulator = flags.includes("--simulator");

let entry = readFileSync(path.join(root, "js/card-relay.js"), "utf8");
let types = readFileSync(path.join(root, "js/card-relay.d.ts"), "utf8");
if (simulator) {
  entry += `
// Simulator build only (demo and tests): a virtual CCID reader shaped like a USBDevice,
// and testPanic(later), a Rust panic at once or in a task (tests/e2e/trap.test.mjs). Both
// enter the wasm through the trap guard, as every export of the layer.
import { createSimulatedReader as simulated, testPanic as panic } from "./card_relay.js";
export const createSimulatedReader = (options) => enter(simulated, options);
export const testPanic = (later) => settle(() => enter(panic, later));
`;
  // js/simulator.d.ts, a file tsc checks; its import names types card-relay.d.ts declares.
  const simulatorTypes = readFileSync(path.join(root, "js/simulator.d.ts"), "utf8");
  types += "\n" + simulatorTypes.replace(/^import type .*\n/m, "");
}
const glue = path.join(out, "card_relay.js");
minifyNames({
  wasmOpt: path.join(root, "node_modules/.bin/wasm-opt"),
  wasmPath: path.join(out, "card_relay_bg.wasm"),
  gluePath: glue,
  typesPath: path.join(out, "card_relay.d.ts"),
});
// wasm-bindgen's types of the raw wasm exports (not in the package's files, now stale).
rmSync(path.join(out, "card_relay_bg.wasm.d.ts"), { force: true });
// One module: the API layer with the glue and the snippets it imports, minified. The glue
// finds the wasm next to itself (`new URL("card_relay_bg.wasm", import.meta.url)`), which
// stays true in the same folder. Dynamic imports of a computed name (Node's `usb` package)
// are left as they are.
const bundle = buildSync({
  stdin: { contents: entry, resolveDir: out, sourcefile: "card-relay.js", loader: "js" },
  bundle: true,
  format: "esm",
  platform: "neutral",
  minify: true,
  legalComments: "none",
  write: false,
  logLevel: "error",
});
writeFileSync(path.join(out, "card-relay.js"), bundle.outputFiles[0].contents);
// What the bundle holds is no file of the package. card_relay.d.ts stays beside it (not in
// the package's files): tests/ts/layer.ts checks the API layer against wasm-bindgen's types.
rmSync(glue);
rmSync(path.join(out, "snippets"), { recursive: true, force: true });
writeFileSync(path.join(out, "card-relay.d.ts"), types);
copyFileSync(path.join(root, "README.md"), path.join(out, "README.md"));

const pkgPath = path.join(out, "package.json");
const pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
pkg.name = simulator ? "card-relay-simulator" : "card-relay";
pkg.module = "card-relay.js";
pkg.main = "card-relay.js";
pkg.types = "card-relay.d.ts";
pkg.exports = {
  ".": { types: "./card-relay.d.ts", default: "./card-relay.js" },
  "./package.json": "./package.json",
};
pkg.files = ["card_relay_bg.wasm", "card-relay.js", "card-relay.d.ts"];
delete pkg.bin;
// The glue in the bundle runs code at import (prototype patches, a TextDecoder).
pkg.sideEffects = ["./card-relay.js"];
pkg.peerDependencies = undefined;
// The published types reference the WebUSB types (`/// <reference types="w3c-web-usb" />`):
// a TypeScript consumer needs them, so they are a dependency, not an optional one.
pkg.dependencies = { "@types/w3c-web-usb": "^1.0.14" };
// `usb` (the library's readers in Node.js: its WebUSB object; the native part comes prebuilt
// in per-platform packages, nothing is compiled or downloaded at install time) is optional:
// the browser API does without it.
pkg.optionalDependencies = { usb: "^3.1.0" };
// Cargo's `repository` is copied by wasm-pack; npm wants a URL there, so a bare name is dropped.
if (!/^(git\+)?(https?|git|ssh):/.test(pkg.repository?.url ?? "")) delete pkg.repository;
writeFileSync(pkgPath, JSON.stringify(pkg, null, 2) + "\n");
console.error(`packaged ${path.relative(root, out)} as ${pkg.name}`);
