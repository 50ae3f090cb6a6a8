// The page side: plain card-relay over WebUSB. The main process (main.js) removed
// "smart-card" from the protected classes, so class 0x0B readers can be claimed.
import init, { CardReader, cardUpdate, CardRelayError } from "./node_modules/card-relay/card-relay.js";

const trace = document.getElementById("trace");
const log = (line) => {
  trace.textContent += `${line}\n`;
};

await init();

document.getElementById("run").addEventListener("click", async () => {
  trace.textContent = "";
  let reader;
  try {
    reader = await CardReader.request();
    log(`Reader: ${reader.name} (class 0x${reader.interfaceClass.toString(16)})`);
    const result = await cardUpdate(reader, document.getElementById("url").value, {
      approve: async (origin) => (confirm(`Let ${origin} use your card?`) ? "once" : false),
      onTrace: log,
      onNotification: ({ message }) => log(`Notification: ${message}`),
    });
    log(`Update complete: ${result.apdus} APDUs in ${result.roundTrips} round trips`);
  } catch (e) {
    if (e instanceof CardRelayError) log(`Update failed (${e.code}): ${e.message}\n${e.hint ?? ""}`);
    else throw e;
  } finally {
    await reader?.close();
  }
});
