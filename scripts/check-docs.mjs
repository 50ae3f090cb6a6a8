// After `typedoc` (npm run docs): every exported name of the API reference (docs/api.json,
// TypeDoc's JSON model of js/card-relay.d.ts) has a summary and an @example block. TypeDoc's
// own validation (typedoc.json: notDocumented, treatWarningsAsErrors) covers the members.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const project = JSON.parse(readFileSync(path.join(root, "docs/api.json"), "utf8"));

/** The comment of a reflection, or of its first signature (functions, constructors). */
const commentOf = (r) => r.comment ?? r.signatures?.[0]?.comment ?? null;

const missing = [];
const children = project.children ?? [];
for (const r of children) {
  const comment = commentOf(r);
  const summary = (comment?.summary ?? []).map((p) => p.text).join("").trim();
  const example = (comment?.blockTags ?? []).some((t) => t.tag === "@example");
  if (!summary) missing.push(`${r.name}: no summary`);
  if (!example) missing.push(`${r.name}: no @example`);
}
if (children.length < 10) missing.push(`only ${children.length} exported names in docs/api.json`);
if (missing.length) {
  console.error(`API reference incomplete:\n  ${missing.join("\n  ")}`);
  process.exit(1);
}
console.error(`API reference: ${children.length} exported names, each with a summary and an example`);
