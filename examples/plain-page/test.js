// Test page: the same update code against the simulated reader with the seed card.
import init, { CardReader, version } from "card-relay";
import { createSimulatedReader } from "card-relay-simulator";
import { runUpdate, showStatus } from "./update.js";

await init();
showStatus(`card-relay ${version()} loaded`);
const url = new URLSearchParams(location.search).get("url") ?? "/rt/test";
await runUpdate(await CardReader.open(createSimulatedReader({ card: "seed" })), url);
