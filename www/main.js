// The card-relay demo: run a card update from this page against a server, with a real
// USB reader or the simulated one. Deep links for automation and bug reports:
//   ?reader=simulator&profile=<dump name>&card=<seed|pin>&url=<server URL>&dialect=<openscdp|gp>&autorun=1
//   ?dialect=seram&sessionId=<id>&url=/seram/test   (GP SERAM: the url is the Remote Agent's
//   endpoint base; without a sessionId the page makes a fresh one)
//   ?reader=agent&agent=<origin>&url=…&autorun=1   (the local agent, card-relay --daemon;
//   agent= overrides http://127.0.0.1:27001)
import init, {
  CardReader,
  cardUpdate,
  connectAgent,
  DEFAULT_AGENT_ORIGIN,
  createSimulatedReader,
  version,
} from "./pkg-sim/card-relay.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let controller = null;
let profilesPromise = null;

function loadProfiles() {
  profilesPromise ??= fetch("generated/profiles.json").then((r) => {
    if (!r.ok) throw new Error(`reader profiles: HTTP ${r.status}`);
    return r.json();
  });
  return profilesPromise;
}

function trace(line) {
  const el = $("trace");
  el.textContent += (el.textContent ? "\n" : "") + line;
}

function setResult(status, { text, apdus, code, hint } = {}) {
  const result = $("result");
  result.dataset.status = status;
  if (apdus !== undefined) result.dataset.apdus = String(apdus);
  else delete result.dataset.apdus;
  if (code) result.dataset.code = code;
  else delete result.dataset.code;
  $("result-text").textContent = text ?? "";
  $("progress").hidden = status !== "running";
  $("hint").hidden = !hint;
  $("hint").textContent = hint ?? "";
}

function ask(dialog, setup) {
  return new Promise((resolve) => {
    setup?.();
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.showModal();
  });
}

async function approve(origin) {
  $("approve-origin").textContent = origin;
  const answer = await ask($("approve-dialog"));
  return answer === "once" || answer === "always" ? answer : false;
}

async function askPin({ triesLeft }) {
  const answer = await ask($("pin-dialog"), () => {
    $("pin-input").value = "";
    $("pin-info").textContent =
      triesLeft === null
        ? "Enter the PIN of your card. It goes to the card only."
        : `Enter the PIN of your card (${triesLeft} tries left). It goes to the card only.`;
  });
  const pin = $("pin-input").value;
  $("pin-input").value = "";
  return answer === "ok" ? pin : null;
}

/** The reader choice: "simulator", "usb" or "agent". */
function readerMode() {
  return document.querySelector("input[name=reader]:checked").value;
}

/**
 * The recipe of the README: WebUSB first; when the browser has no WebUSB or refuses the
 * reader (Chrome's protected class 0x0B, a reader the OS holds), the local agent.
 */
function agentCanHelp(e) {
  return (
    e?.code === "protected-interface" ||
    e?.code === "device-busy" ||
    (e?.code === "unsupported-reader" && !("usb" in navigator))
  );
}

function agentOriginValue() {
  return $("agent-origin").value.trim() || DEFAULT_AGENT_ORIGIN;
}

/** Shows the agent's version and its readers (reader names only once it approved this site). */
async function showAgent(signal) {
  const info = $("agent-info");
  info.textContent = "Looking for the agent…";
  try {
    const agent = await connectAgent({ origin: agentOriginValue(), signal });
    const readers = await agent.readers({ signal });
    fillAgentReaders(readers);
    info.textContent =
      readers === null
        ? `card-relay agent ${agent.version}; it shows its readers once it has approved this site (at the first update).`
        : `card-relay agent ${agent.version}: ${readers.length} reader(s).`;
    return agent;
  } catch (e) {
    info.textContent = `${e?.message ?? e}${e?.hint ? ` — ${e.hint}` : ""}`;
    return null;
  }
}

function fillAgentReaders(readers) {
  const select = $("agent-reader");
  const chosen = select.value;
  select.replaceChildren(new Option("The agent's choice", ""));
  for (const { name, cardPresent } of readers ?? []) {
    select.append(new Option(`${name}${cardPresent ? "" : " (no card)"}`, name));
  }
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
}

async function openReader(signal) {
  const mode = readerMode();
  if (mode === "agent") return connectAgent({ origin: agentOriginValue(), signal });
  if (mode === "usb") return CardReader.request();
  const profile = $("profile").value.trim().replace(/\.txt$/, "") || "default";
  const cardChoice = $("card").value;
  const options = { card: cardChoice === "none" ? null : cardChoice };
  if (profile !== "default") {
    const profiles = await loadProfiles();
    if (!(profile in profiles)) throw Object.assign(new Error(`unknown reader profile "${profile}"`), { code: "invalid-argument" });
    options.profile = profile;
    options.profileText = profiles[profile];
  }
  return CardReader.open(createSimulatedReader(options));
}

async function run(event) {
  event?.preventDefault();
  if (controller) return;
  controller = new AbortController();
  $("run").disabled = true;
  $("cancel").disabled = false;
  $("trace").textContent = "";
  $("notification").textContent = "";
  setResult("running", { text: "Running…" });
  $("agent-offer").hidden = true;
  const url = $("url").value.trim();
  let reader = null;
  try {
    reader = await openReader(controller.signal);
    $("status").textContent =
      reader.route === "agent"
        ? `card-relay agent ${reader.version} at ${reader.origin}`
        : `${reader.name} (${reader.exchangeLevel.toUpperCase()} level)`;
    trace(`Connecting to ${new URL(url, location.href).href}`);
    const dialect = $("dialect").value;
    let sessionId;
    if (dialect === "seram") {
      sessionId = $("sessionId").value.trim() || crypto.randomUUID();
      trace(`SERAM session ${sessionId}`);
    }
    const result = await cardUpdate(reader, url, {
      dialect,
      sessionId,
      reader: reader.route === "agent" ? $("agent-reader").value || undefined : undefined,
      approve,
      pin: askPin,
      onPinPad: ({ triesLeft }) => {
        $("notification").textContent =
          triesLeft === null
            ? "Enter your PIN on the reader's keypad."
            : `Enter your PIN on the reader's keypad (${triesLeft} tries left).`;
      },
      signal: controller.signal,
      onTrace: trace,
      onNotification: ({ code, message }) => {
        $("notification").textContent = message;
        trace(`Notification ${code}: ${message}`);
      },
    });
    if (result.status === "ended-by-server") {
      // A negative notification: the server gave up on this card.
      const message = result.lastNotification?.message ?? "the server ended the session";
      trace(`Update failed: ${message}`);
      setResult("failed", { text: `Failed: ${message}`, apdus: result.apdus, code: "ended-by-server" });
      return;
    }
    trace("Update complete");
    setResult("passed", {
      text: `Passed: ${result.apdus} APDUs in ${result.roundTrips} round trips, ${Math.round(result.durationMs)} ms`,
      apdus: result.apdus,
    });
  } catch (e) {
    const code = e?.code ?? "error";
    trace(`Update failed: ${e?.message ?? e}`);
    setResult("failed", { text: `Failed (${code}): ${e?.message ?? e}`, code, hint: e?.hint });
    $("agent-offer").hidden = !(readerMode() === "usb" && agentCanHelp(e));
  } finally {
    controller = null;
    $("run").disabled = false;
    $("cancel").disabled = true;
    await reader?.close?.().catch(() => {});
    if (reader?.route === "agent") showAgent();
  }
}

function applyDeepLink() {
  const reader = params.get("reader");
  if (reader === "simulator" || reader === "usb" || reader === "agent") {
    document.querySelector(`input[name=reader][value=${reader}]`).checked = true;
  }
  if (params.get("agent")) $("agent-origin").value = params.get("agent");
  for (const key of ["profile", "card", "url", "dialect", "sessionId"]) {
    const value = params.get(key);
    if (value !== null) $(key).value = value;
  }
  syncSimOptions();
  syncDialect();
}

/** Shows the SERAM session id field, and moves the example URL between /rt/ and /seram/. */
function syncDialect(event) {
  const seram = $("dialect").value === "seram";
  $("seram-options").hidden = !seram;
  if (event) {
    const url = $("url");
    if (seram && url.value.startsWith("/rt/")) url.value = url.value.replace("/rt/", "/seram/");
    if (!seram && url.value.startsWith("/seram/")) url.value = url.value.replace("/seram/", "/rt/");
  }
}

function syncSimOptions() {
  $("sim-options").hidden = readerMode() !== "simulator";
  $("agent-options").hidden = readerMode() !== "agent";
}

/** The reader choice changed: the agent's panel looks for the agent when it opens. */
function onReaderChange() {
  syncSimOptions();
  if (readerMode() === "agent") showAgent();
}

/** After a refusal the recipe offers: the same update through the local agent. */
function useAgent() {
  document.querySelector("input[name=reader][value=agent]").checked = true;
  onReaderChange();
  $("agent-offer").hidden = true;
  run();
}

async function fillProfileList() {
  try {
    const names = Object.keys(await loadProfiles());
    const list = $("profile-list");
    for (const name of ["default", ...names]) {
      const option = document.createElement("option");
      option.value = name;
      list.append(option);
    }
  } catch {
    // Without the generated profiles only the built-in default reader is offered.
  }
}

function showUsbSupport() {
  $("usb-support").textContent =
    "usb" in navigator
      ? "WebUSB is available. Chrome lets ordinary pages claim only readers whose CCID interface has " +
        "vendor class 0xFF; readers of class 0x0B (nearly all) are refused as a protected class. " +
        "The simulated reader works everywhere."
      : "WebUSB is not available in this browser: only the simulated reader can be used here.";
}

async function main() {
  showUsbSupport();
  applyDeepLink();
  try {
    await init();
  } catch (e) {
    $("status").textContent = `Could not load the WebAssembly module: ${e.message ?? e}`;
    $("status").classList.add("error");
    return;
  }
  $("status").textContent = `card-relay ${version()} loaded`;
  $("run-form").addEventListener("submit", run);
  $("cancel").addEventListener("click", () => controller?.abort());
  $("dialect").addEventListener("change", syncDialect);
  for (const radio of document.querySelectorAll("input[name=reader]")) {
    radio.addEventListener("change", onReaderChange);
  }
  $("use-agent").addEventListener("click", useAgent);
  $("agent-origin").addEventListener("change", () => showAgent());
  $("run").disabled = false;
  fillProfileList();
  if (params.get("autorun") === "1") run();
  else if (readerMode() === "agent") showAgent();
}

main();
