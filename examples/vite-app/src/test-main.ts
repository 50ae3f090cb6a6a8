// Test page: the same update code against the simulated reader with the seed card.
// "card-relay" resolves to card-relay-simulator in this build (vite.config.ts).
import init, { CardReader, version } from "card-relay";
import { createSimulatedReader } from "card-relay-simulator";
import { runUpdate, showStatus } from "./update";

await init();
showStatus(`card-relay ${version()} loaded`);
const url = new URLSearchParams(location.search).get("url") ?? "/rt/test";
await runUpdate(await CardReader.open(createSimulatedReader({ card: "seed" })), url);
