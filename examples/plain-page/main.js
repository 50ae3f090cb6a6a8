// Production page: a real reader through the WebUSB chooser.
import init, { CardReader, version } from "card-relay";
import { runUpdate, showStatus } from "./update.js";

await init();
showStatus(`card-relay ${version()} loaded`);
const run = document.getElementById("run");
run.disabled = false;
run.addEventListener("click", async () => {
  run.disabled = true;
  try {
    const reader = await CardReader.request(); // needs this click (a user gesture)
    await runUpdate(reader, document.getElementById("url").value);
  } catch (e) {
    showStatus(`no reader: ${e?.message ?? e}`);
  } finally {
    run.disabled = false;
  }
});
