// The card-relay demo as an Isolated Web App. Two routes to the reader:
// - "smartcard": the Web Smart Card API (navigator.smartCard, ChromeOS, the Smart Card
//   Connector app as PC/SC service): every reader the platform supports, shared with other
//   applications, no WebUSB protected-class wall.
// - "webusb": WebUSB; the manifest's usb-unrestricted permission lets an IWA claim class
//   0x0B (smart card) interfaces, which Chrome refuses to ordinary pages.
// Only textContent is written: IWAs enforce Trusted Types.
import init, { CardReader, cardUpdate, CardRelayError } from "/pkg/card-relay.js";

const $ = (id) => document.getElementById(id);
const trace = $("trace");
const log = (line) => {
  trace.textContent += `${line}\n`;
};
const show = (status, text) => {
  $("status").dataset.status = status;
  $("status").textContent = text;
};

await init();
show("idle", `Web Smart Card API: ${"smartCard" in navigator ? "available" : "not available here"}; cross-origin isolated: ${globalThis.crossOriginIsolated}`);

async function open(route) {
  if (route === "webusb") return CardReader.request();
  const names = await CardReader.listSmartCardReaders();
  log(`Readers: ${names.join(", ") || "none"}`);
  return CardReader.openSmartCard();
}

$("run").addEventListener("click", async () => {
  trace.textContent = "";
  show("running", "Running");
  let reader;
  try {
    reader = await open($("route").value);
    log(`Reader: ${reader.name} (${reader.route})`);
    const result = await cardUpdate(reader, $("url").value, {
      // An IWA's origin is isolated-app://…: every server is cross-origin and asked for.
      approve: async (origin) => (confirm(`Let ${origin} use your card?`) ? "once" : false),
      onTrace: log,
      onNotification: ({ message }) => log(`Notification: ${message}`),
    });
    log("Update complete");
    show("passed", `${result.apdus} APDUs in ${result.roundTrips} round trips`);
  } catch (e) {
    if (!(e instanceof CardRelayError)) throw e;
    log(`Update failed (${e.code}): ${e.message}`);
    show("failed", e.hint ?? e.message);
  } finally {
    await reader?.close();
  }
});
