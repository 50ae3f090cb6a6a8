// The production bundle of the Vite consumer app (examples/vite-app/dist, built from the
// `npm pack` tarball by scripts/consumer.sh): what a page that uses card-relay through a
// bundler ships, every emitted asset counted (HTML, JS chunks, the wasm module).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync, constants as zlib } from "node:zlib";

/** Sizes of examples/vite-app/dist, or null when scripts/consumer.sh has not built it. */
export function measureViteApp(root) {
  const dist = path.join(root, "examples/vite-app/dist");
  if (!existsSync(dist)) return null;
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else files.push(full);
    }
  };
  walk(dist);
  const parts = files.map((full) => {
    const bytes = readFileSync(full);
    return {
      file: path.relative(dist, full),
      raw_bytes: bytes.length,
      gzip_bytes: gzipSync(bytes, { level: zlib.Z_BEST_COMPRESSION }).length,
    };
  });
  return {
    files: parts,
    raw_bytes: parts.reduce((a, p) => a + p.raw_bytes, 0),
    gzip_bytes: parts.reduce((a, p) => a + p.gzip_bytes, 0),
  };
}

/** The README table of it (markdown lines). */
export function viteAppTable(app) {
  if (!app) return ["", "Vite consumer app: not built (run scripts/consumer.sh)."];
  const lines = ["", "| Vite consumer app (`examples/vite-app/dist`, production) | raw bytes | gzip -9 bytes |", "|---|---:|---:|"];
  for (const p of app.files) lines.push(`| ${p.file.replace(/-[\w-]{8}\./, "-[hash].")} | ${p.raw_bytes} | ${p.gzip_bytes} |`);
  lines.push(`| **total** | ${app.raw_bytes} | **${app.gzip_bytes}** |`);
  return lines;
}
