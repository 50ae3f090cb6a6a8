// Generates www/generated/profiles.json from the libccid reader dumps: { "<file name>":
// "<dump text>", ... }, for the demo's simulated reader (never part of the npm package).
// The dumps are ../shared/ccid-readers, or $CARD_RELAY_SHARED/ccid-readers.
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const shared = process.env.CARD_RELAY_SHARED ?? path.join(root, "../shared");
const dir = path.join(shared, "ccid-readers");
const outDir = path.join(root, "www/generated");
mkdirSync(outDir, { recursive: true });
const profiles = {};
if (existsSync(dir)) {
  for (const name of readdirSync(dir).sort()) {
    if (name.endsWith(".txt")) profiles[name.slice(0, -4)] = readFileSync(path.join(dir, name), "utf8");
  }
} else {
  console.error(`profiles: ${dir} not found; only the built-in default reader will be offered`);
}
writeFileSync(path.join(outDir, "profiles.json"), JSON.stringify(profiles));
console.error(`profiles: ${Object.keys(profiles).length} reader profiles`);
