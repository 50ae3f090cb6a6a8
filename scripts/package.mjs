// Turns wasm-pack's output folder into the card-relay npm package: adds the JavaScript API
// layer (js/card-relay.js and its types) as the entry point and names the package. The
// package has no command line: that is the native agent (agent/, binary `card-relay`).
// The JavaScript files of the package (the API layer, wasm-bindgen's glue and its inline
// snippets) are minified by esbuild: comments and local names are half of their gzipped size
// (the bundle target in bench/run.mjs). Property and export names are kept, so the public
// API is unchanged. The names the wasm and the glue share (imports, exports) are shortened
// first, in both (scripts/minify-names.mjs).
// Runs once on wasm-pack's fresh output (scripts/build.sh), after wasm-opt -Oz.
// Usage: node scripts/package.mjs <out-dir> [--simulator]
import { readFileSync, writeFileSync, copyFileSync, existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";
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
// Simulator build only (demo and tests): a virtual CCID reader shaped like a USBDevice.
export { createSimulatedReader } from "./card_relay.js";
`;
  // js/simulator.d.ts, a file tsc checks; its import names types card-relay.d.ts declares.
  const simulatorTypes = readFileSync(path.join(root, "js/simulator.d.ts"), "utf8");
  types += "\n" + simulatorTypes.replace(/^import type .*\n/m, "");
}
/** Minified ES module text (esbuild: whitespace, comments, local names; no bundling). */
const minify = (code) => transformSync(code, { minify: true, format: "esm", legalComments: "none" }).code;
writeFileSync(path.join(out, "card-relay.js"), minify(entry));
const glue = path.join(out, "card_relay.js");
minifyNames({
  wasmOpt: path.join(root, "node_modules/.bin/wasm-opt"),
  wasmPath: path.join(out, "card_relay_bg.wasm"),
  gluePath: glue,
  typesPath: path.join(out, "card_relay.d.ts"),
});
// wasm-bindgen's types of the raw wasm exports (not in the package's files, now stale).
rmSync(path.join(out, "card_relay_bg.wasm.d.ts"), { force: true });
writeFileSync(glue, minify(readFileSync(glue, "utf8")));
// wasm-bindgen's inline JS snippets (the platform glue of src/web/) ship as written.
const snippets = path.join(out, "snippets");
for (const file of existsSync(snippets) ? readdirSync(snippets, { recursive: true }) : []) {
  const full = path.join(snippets, String(file));
  if (full.endsWith(".js")) writeFileSync(full, minify(readFileSync(full, "utf8")));
}
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
pkg.files = Array.from(new Set([...(pkg.files ?? []), "card-relay.js", "card-relay.d.ts"]));
delete pkg.bin;
// Only wasm-bindgen's glue runs code at import (prototype patches, a TextEncoder polyfill);
// the API layer does not. A bundler may drop everything else that a page does not use.
pkg.sideEffects = ["./card_relay.js"];
if (existsSync(path.join(out, "snippets"))) pkg.sideEffects.push("./snippets/*");
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
