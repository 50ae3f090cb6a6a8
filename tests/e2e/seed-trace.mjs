// The seed's trace (../shared/reference/seed.md) as every route must reproduce it: the
// browser demo (demo.test.mjs) and the native agent through pcsc-lite (tests/pcsc/).
import assert from "node:assert/strict";

/** The seed's trace lines in order, without the reader id and the random challenge bytes. */
export const SEED_LINES = [
  "C: 00 20 00 81 - VERIFY",
  "   R: SW1/SW2=6E00 (Checking error: Class not supported) Lr=0",
  "C: 00 A4 04 04 - SELECT Lc=11",
  "      0005  E8 2B 06 01 04 01 81 C3 1F 02 01                 .+.........",
  "   R: SW1/SW2=9000 (Normal processing: No error) Lr=9",
  "      0000  62 07 82 01 78 85 02 01 02                       b...x....",
  "C: 00 20 00 81 - VERIFY Lc=6 ******",
  "   R: SW1/SW2=6700 (Checking error: Wrong length) Lr=0",
  "C: 00 84 00 00 - GET CHALLENGE      Le=69",
  "   R: SW1/SW2=9000 (Normal processing: No error) Lr=69",
];

/**
 * Checks that `trace` (the lines a client printed for /rt/test) holds the seed's trace: one
 * two-hex-digit reader id on every command line, SEED_LINES in order, two challenges of 69
 * bytes each dumped as 5 lines.
 */
export function assertSeedTrace(trace) {
  const lines = trace.split("\n");
  const ids = new Set(lines.filter((l) => / C: /.test(l)).map((l) => l.slice(0, 2)));
  assert.equal(ids.size, 1, trace);
  assert.match([...ids][0], /^[0-9A-F]{2}$/);
  const stripped = lines.map((l) => l.replace(/^[0-9A-F]{2} C: /, "C: "));
  let at = 0;
  for (const expected of SEED_LINES) {
    const found = stripped.indexOf(expected, at);
    assert.ok(found >= at, `missing, in order: ${expected}\n${trace}`);
    at = found + 1;
  }
  const challenges = stripped.filter((l) => l === "C: 00 84 00 00 - GET CHALLENGE      Le=69");
  assert.equal(challenges.length, 2);
  assert.equal(stripped.filter((l) => l.endsWith("Lr=69")).length, 2);
  // 69 bytes dump as 5 lines each (4 full, one of 5 bytes).
  assert.equal(stripped.filter((l) => /^ {6}0040 {2}([0-9A-F]{2} ){5}/.test(l)).length, 2);
}
