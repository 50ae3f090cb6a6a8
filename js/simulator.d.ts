// Types of the simulator build's extra exports (pkg-sim/, the demo and the tests; never
// the production package). scripts/package.mjs appends this file, without its import line,
// to the simulator package's card-relay.d.ts; tests/ts/tsconfig.layer.json checks it
// against the WebAssembly module's own createSimulatedReader.
import type { SimulatedCard, SimulatedReader } from "./card-relay";

/**
 * Simulator build only: a virtual CCID reader shaped like a USBDevice.
 *
 * @example
 * ```ts
 * import init, { CardReader, cardUpdate, createSimulatedReader } from "card-relay-simulator";
 * await init();
 * const reader = await CardReader.open(createSimulatedReader({ card: "seed" }));
 * await cardUpdate(reader, "/rt/test");
 * ```
 */
export function createSimulatedReader(options?: {
  /**
   * "default" (also when absent), the name of a descriptor dump whose text is
   * `profileText`, or a `{ name, text }` entry of the demo's profiles file.
   */
  profile?: string | { name: string; text: string };
  /** The dump of a `profile` given by name. */
  profileText?: string;
  card?: SimulatedCard | null;
  /** Fault names mapped to booleans or counts, e.g. `{ timeExtensions: 2 }`. */
  faults?: Record<string, boolean | number>;
  /** Seeds the card's random generator. */
  seed?: number;
}): SimulatedReader;

/**
 * Simulator build only, for tests: a Rust panic (a WebAssembly trap in this build), at once
 * (`later` false) or in a task after an await. The promise rejects with CardRelayError
 * `internal`, and so does every later call: the module stays stopped until the page reloads.
 *
 * @example
 * ```ts
 * import { testPanic } from "card-relay-simulator";
 * await testPanic(true).catch((e) => console.log(e.code)); // "internal"
 * ```
 */
export function testPanic(later: boolean): Promise<never>;
