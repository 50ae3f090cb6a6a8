// The page shell: loads the wasm package and wires the inspector. The full demo (reader
// chooser, simulated reader, card update) replaces this as the later issues land.
import init, * as relay from "./pkg/card_relay.js";

const $ = (id) => document.getElementById(id);

function showUsbSupport() {
  const usb = "usb" in navigator;
  $("usb-support").textContent = usb
    ? "WebUSB is available. Chrome lets ordinary pages claim only readers whose CCID interface " +
      "has vendor class 0xFF; class 0x0B (smart card) is a protected class."
    : "WebUSB is not available in this browser (it needs a Chromium-based browser and a secure context).";
}

function decodeAtr(event) {
  event?.preventDefault();
  const text = $("atr-input").value;
  try {
    $("atr-output").textContent = relay.describeAtr(text);
  } catch (e) {
    $("atr-output").textContent = `error: ${e.message ?? e}`;
  }
}

async function main() {
  showUsbSupport();
  try {
    await init();
  } catch (e) {
    $("status").textContent = `Could not load the WebAssembly module: ${e.message ?? e}`;
    $("status").classList.add("error");
    return;
  }
  $("status").textContent = `card-relay ${relay.version()} loaded`;
  $("atr-form").addEventListener("submit", decodeAtr);
  if (typeof relay.describeAtr === "function") decodeAtr();
}

main();
