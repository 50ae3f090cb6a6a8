// Shortens the names the wasm module and wasm-bindgen's glue share (issue 18, the bundle
// target). wasm-bindgen names every import after its Rust path plus a 16-hex-digit hash
// (`__wbg_transferIn_0123456789abcdef`) and every export after its Rust item; each name is in
// the wasm (import and export sections) and again in the glue, and the hashes do not
// compress. binaryen's `--minify-imports-and-exports-and-modules` renames them all (one
// import module, names of one or two letters) and prints the mapping as JSON; this module
// applies the same mapping to the glue and to its InitOutput type, and checks that no old
// name is left.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

/** Escapes `s` for a RegExp. */
const quote = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Replaces every match of `pattern` (global) in `text` by `replacement`; throws unless it
 * matched `count` times (`undefined`: at least once). A glue layout this module does not
 * know stops the build instead of shipping a module whose imports do not resolve.
 */
function replaceCounted(text, pattern, replacement, what, count) {
  let n = 0;
  const out = text.replace(pattern, (...m) => {
    n++;
    return typeof replacement === "function" ? replacement(...m) : replacement;
  });
  if (count === undefined ? n === 0 : n !== count) {
    throw new Error(`minify-names: ${what}: ${n} matches in the glue`);
  }
  return out;
}

/**
 * Minifies the import and export names of `wasmPath` in place and rewrites the glue
 * (`gluePath`, wasm-bindgen's `--target web` output, not yet minified) and its types
 * (`typesPath`) to match. `wasmOpt` is binaryen's wasm-opt.
 */
export function minifyNames({ wasmOpt, wasmPath, gluePath, typesPath }) {
  const printed = execFileSync(
    wasmOpt,
    [wasmPath, "--minify-imports-and-exports-and-modules", "-o", wasmPath],
    { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
  );
  const map = JSON.parse(printed.slice(printed.indexOf("{")));
  const modules = new Set(WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(wasmPath))).map((i) => i.module));
  if (modules.size !== 1) throw new Error(`minify-names: ${modules.size} import modules after minifying`);
  const [module] = modules;

  let glue = readFileSync(gluePath, "utf8");
  // Imports. wasm-bindgen's own (module "./<name>_bg.js") are the keys of the `import0`
  // object literal; the inline JS snippets' are their exports, taken from their namespace.
  const own = map.imports.filter(([m]) => m.endsWith("_bg.js"));
  const snippets = map.imports.filter(([m]) => !m.endsWith("_bg.js"));
  for (const [, name, short] of own) {
    glue = replaceCounted(glue, new RegExp(`^(\\s+)${quote(name)}(\\s*:)`, "gm"), (m, a, b) => a + short + b, `import ${name}`, 1);
  }
  // One namespace object per snippet module: `import * as importN from "<module>"`.
  const namespaces = new Map();
  for (const m of glue.matchAll(/^import \* as (import\d+) from "([^"]+)"/gm)) {
    if (!namespaces.has(m[2])) namespaces.set(m[2], m[1]);
  }
  const extra = snippets.map(([m, name, short]) => {
    const ns = namespaces.get(m);
    if (!ns) throw new Error(`minify-names: no namespace import of ${m}`);
    return `${JSON.stringify(short)}: ${ns}[${JSON.stringify(name)}]`;
  });
  // The object __wbg_get_imports returns: one module, wasm-bindgen's imports and the snippets'.
  glue = replaceCounted(
    glue,
    /return \{\s*__proto__: null,\s*"\.\/[\w-]+_bg\.js": import0,(?:\s*"[^"]+": import\d+,)*\s*\};/g,
    `return { __proto__: null, ${JSON.stringify(module)}: Object.assign(import0, { ${extra.join(", ")} }) };`,
    "the import object",
    1,
  );
  // Exports: every use is `wasm.<name>`.
  const exports = new Map(map.exports);
  glue = glue.replace(/\bwasm\.([A-Za-z_$][\w$]*)/g, (whole, name) => {
    const short = exports.get(name);
    if (short === undefined) throw new Error(`minify-names: the glue uses wasm.${name}, not an export`);
    return `wasm.${short}`;
  });
  for (const [, name] of own) {
    if (new RegExp(`\\b${quote(name)}\\b\\s*:`).test(glue)) throw new Error(`minify-names: ${name} is left in the glue`);
  }
  writeFileSync(gluePath, glue);

  // The type of init()'s result (the exports), so the published types stay true.
  let types = readFileSync(typesPath, "utf8");
  types = replaceCounted(types, /export interface InitOutput \{[^}]*\}/g, (block) =>
    block.replace(/readonly ([\w$]+):/g, (whole, name) => {
      const short = exports.get(name);
      if (short === undefined) throw new Error(`minify-names: InitOutput.${name} is not an export`);
      return `readonly ${/^[A-Za-z_$][\w$]*$/.test(short) ? short : JSON.stringify(short)}:`;
    }),
    "InitOutput", 1);
  writeFileSync(typesPath, types);
}
