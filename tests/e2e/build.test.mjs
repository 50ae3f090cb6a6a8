// The browser packages as scripts/build.sh leaves them (issue 18's size levers of the build):
// pkg/ (what ships) and pkg-sim/ (what the tests and the demo run) come from the same
// compiler, the pinned nightly of scripts/browser-toolchain.sh; panics abort at once (no
// message text in the wasm); the import and export names are minified in the wasm and in
// the glue alike; and a trap still reaches the JavaScript caller as an exception.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { root } from "./harness.mjs";

const wasmOf = (dir) => readFileSync(path.join(root, dir, "card_relay_bg.wasm"));

/**
 * The rustc version in a module's `producers` custom section (WebAssembly tool conventions,
 * "Producers Section"; rustc and wasm-bindgen fill it in): e.g. "1.97.0-nightly (e50aa6fba
 * 2026-05-19)". Read here with a plain search of the section's UTF-8 text, independently of
 * bench/run.mjs's parser.
 */
function rustcOf(bytes) {
  const [section] = WebAssembly.Module.customSections(new WebAssembly.Module(bytes), "producers");
  assert.ok(section, "the wasm has a producers section");
  const text = Buffer.from(section).toString("latin1");
  const at = text.indexOf("rustc");
  assert.ok(at >= 0, "the producers section names rustc");
  const length = text.charCodeAt(at + 5);
  return text.slice(at + 6, at + 6 + length);
}

/** The pinned toolchain's own `rustc -V`, or null when it is not installed (the fallback). */
function pinnedRustc() {
  const script = readFileSync(path.join(root, "scripts/browser-toolchain.sh"), "utf8");
  const name = /BROWSER_TOOLCHAIN="\$\{CARD_RELAY_BROWSER_TOOLCHAIN:-([^}]+)\}"/.exec(script)?.[1];
  assert.ok(name, "scripts/browser-toolchain.sh names its toolchain");
  try {
    const out = execFileSync("rustup", ["run", name, "rustc", "-V"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return { name, version: out.trim().replace(/^rustc /, "") };
  } catch {
    return { name, version: null };
  }
}

/**
 * Skips `t` (loudly) on a machine where rustup could not install the pinned nightly:
 * scripts/build.sh then builds with stable and warns, and the bench reports the bigger size.
 */
function skipOnFallback(t) {
  const pinned = pinnedRustc();
  if (pinned.version !== null) return false;
  t.skip(`${pinned.name} is not installed: scripts/build.sh fell back to stable (rustc ${rustcOf(wasmOf("pkg"))})`);
  return true;
}

test("pkg/ and pkg-sim/ are built by the same compiler, the pinned nightly", (t) => {
  const shipped = rustcOf(wasmOf("pkg"));
  assert.equal(rustcOf(wasmOf("pkg-sim")), shipped, "the tests run what ships");
  if (skipOnFallback(t)) return;
  assert.equal(shipped, pinnedRustc().version);
  assert.match(shipped, /-nightly /);
});

test("the shipped wasm carries no panic message text (panics abort at once, no panic hook)", (t) => {
  if (skipOnFallback(t)) return;
  // "panicked at" starts every message std's and console_error_panic_hook's formatting
  // writes; "called `Option::unwrap()`" and "index out of bounds" are core's panic texts.
  for (const dir of ["pkg", "pkg-sim"]) {
    const wasm = wasmOf(dir);
    for (const text of ["panicked at", "called `Option::unwrap()` on a `None` value", "index out of bounds: the len is"]) {
      assert.equal(wasm.includes(Buffer.from(text)), false, `${dir}: ${JSON.stringify(text)}`);
    }
  }
});

test("import and export names are minified in the wasm, and the glue supplies every import", async () => {
  for (const dir of ["pkg", "pkg-sim"]) {
    const module = new WebAssembly.Module(wasmOf(dir));
    const imports = WebAssembly.Module.imports(module);
    const exports = WebAssembly.Module.exports(module);
    assert.ok(imports.length > 20 && exports.length > 10, `${dir}: imports and exports`);
    assert.deepEqual([...new Set(imports.map((i) => i.module))], ["a"], `${dir}: one import module`);
    for (const { name } of [...imports, ...exports]) assert.ok(name.length <= 3, `${dir}: ${name}`);
    const js = readFileSync(path.join(root, dir, "card-relay.js"), "utf8");
    assert.doesNotMatch(js, /__wbg_\w+_[0-9a-f]{16}/, `${dir}: no hashed wasm-bindgen name left in the glue`);
  }
});

let lib;

before(async () => {
  // The simulator build, loaded as Node.js users load the package (the glue instantiates
  // the module with its minified imports: a missing one fails here).
  const entry = new URL("../../pkg-sim/card-relay.js", import.meta.url);
  lib = await import(entry.href);
  await lib.default({ module_or_path: readFileSync(new URL("card_relay_bg.wasm", entry)) });
  assert.equal(typeof lib.version(), "string");
});

test("the package's JavaScript is one module beside the wasm", () => {
  for (const dir of ["pkg", "pkg-sim"]) {
    const pkg = JSON.parse(readFileSync(path.join(root, dir, "package.json"), "utf8"));
    assert.deepEqual(pkg.files, ["card_relay_bg.wasm", "card-relay.js", "card-relay.d.ts"], dir);
    const js = readFileSync(path.join(root, dir, "card-relay.js"), "utf8");
    assert.doesNotMatch(js, /(^|[;}])import\s*[\w{*][^;]*?from\s*["']/, `${dir}: no static import`);
  }
});

test("a trap in the wasm reaches the JavaScript caller as a WebAssembly.RuntimeError", () => {
  // A simulated reader (a wasm-bindgen object) whose pointer lies outside the wasm memory:
  // the export's first read of its borrow flag traps, as a panic's `unreachable` does under
  // -Cpanic=immediate-abort. The trap is an exception thrown from the call: nothing is
  // swallowed, nothing hangs. The forged copy shares the real object's methods.
  const real = lib.createSimulatedReader({});
  const forged = Object.create(Object.getPrototypeOf(real));
  forged.__wbg_ptr = 0xfffffff0;
  assert.throws(() => forged.open(), WebAssembly.RuntimeError);
});
