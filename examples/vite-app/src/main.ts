// Production page: a real reader through the WebUSB chooser.
import init, { CardReader, version } from "card-relay";
import { runUpdate, showStatus } from "./update";

await init();
showStatus(`card-relay ${version()} loaded`);
const run = document.getElementById("run") as HTMLButtonElement;
const url = document.getElementById("url") as HTMLInputElement;
run.disabled = false;
run.addEventListener("click", async () => {
  run.disabled = true;
  try {
    // The chooser needs this click (a user gesture).
    const reader = await CardReader.request();
    await runUpdate(reader, url.value);
  } catch (e) {
    showStatus(`no reader: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    run.disabled = false;
  }
});
