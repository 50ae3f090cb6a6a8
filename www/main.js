// The card-relay demo: run a card update from this page against a server, with a real
// USB reader or the simulated one. Deep links for automation and bug reports:
//   ?reader=simulator&profile=<dump name>&card=<seed|pin>&url=<server URL>&dialect=<openscdp|gp>&autorun=1
//   ?dialect=seram&sessionId=<id>&url=/seram/test   (GP SERAM: the url is the Remote Agent's
//   endpoint base; without a sessionId the page makes a fresh one)
//   ?reader=agent&agent=<origin>&url=…&autorun=1   (the local agent, card-relay --daemon;
//   agent= overrides http://127.0.0.1:27001)
//   &fault=late:400,protectedClass   simulated reader faults (name[:value], comma-separated),
//   e.g. a slow card or a reader Chrome refuses
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
  // One "C:" line per command APDU the card ran (the OCF trace layout).
  if (/^(?:[0-9A-F]{2} )?C: /.test(line)) {
    apduCount += 1;
    $("apdu-count").hidden = false;
    $("apdu-count").textContent = `APDUs so far: ${apduCount}`;
  }
  touch();
}

// ---- Progress: what the run waits for, the server's steps, the APDU count ----

let apduCount = 0;
let runStarted = 0;
let lastActivity = 0;
let waitingFor = null;
// True while the local agent runs the update: the page then waits for the agent as a whole.
let agentRunning = false;
let pendingFetches = 0;
let waitTimer = null;

/** What each wait is about, for a card holder. */
const WAITS = {
  reader: "Waiting for you to choose a reader in the browser's chooser",
  card: "Waiting for the card to answer",
  server: "Waiting for the server",
  approval: "Waiting for your approval of the server",
  pin: "Waiting for your PIN",
  "pin-pad": "Waiting for you to enter the PIN on the reader's keypad",
  agent: "Waiting for the card-relay agent on this computer (it may ask you there to approve this site, or for your PIN)",
};

function touch() {
  lastActivity = performance.now();
  showWait();
}

function setWaiting(kind) {
  waitingFor = kind;
  touch();
}

/** The wait in force: an explicit one (dialog, chooser, PIN pad), else server or card. */
function currentWait() {
  if (waitingFor) return waitingFor;
  if (!controller) return null;
  if (agentRunning) return "agent";
  return pendingFetches > 0 ? "server" : "card";
}

function showWait() {
  const kind = currentWait();
  const el = $("waiting");
  if (!kind) {
    el.hidden = true;
    return;
  }
  const seconds = Math.floor((performance.now() - lastActivity) / 1000);
  el.hidden = false;
  el.dataset.wait = kind;
  // The live region announces what the run waits for; the ticking seconds stay silent.
  if ($("waiting-text").textContent !== WAITS[kind]) $("waiting-text").textContent = WAITS[kind];
  $("waiting-time").textContent = seconds >= 2 ? ` (${seconds} s)…` : "…";
}

// The session's HTTP exchanges go through the page's fetch: while one is open the run waits
// for the server, otherwise for the reader and card.
const pageFetch = window.fetch.bind(window);
window.fetch = async (...args) => {
  pendingFetches += 1;
  touch();
  try {
    return await pageFetch(...args);
  } finally {
    pendingFetches -= 1;
    touch();
  }
};

function addStep(text) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  const elapsed = (performance.now() - runStarted) / 1000;
  time.textContent = `${elapsed.toFixed(1)} s`;
  time.dateTime = `PT${elapsed.toFixed(1)}S`;
  item.append(time, ` ${text}`);
  $("steps").append(item);
}

/** A notification: a step, and the progress bar when the server says how long is left. */
function onNotification({ code, message, timeToCompletion }) {
  $("notification").textContent = message;
  trace(`Notification ${code}: ${message}`);
  addStep(message);
  const progress = $("progress");
  if (typeof timeToCompletion === "number" && timeToCompletion >= 0) {
    // Elapsed / (elapsed + what the server says is left).
    const elapsed = (performance.now() - runStarted) / 1000;
    progress.max = 100;
    progress.value = Math.round((100 * elapsed) / (elapsed + timeToCompletion || 1));
    $("progress-text").hidden = false;
    $("progress-text").textContent = `About ${Math.ceil(timeToCompletion)} s left (the server's estimate)`;
  }
}

// ---- Failures: code, message, what to do ----

/** What a card holder can do about each error code. */
const ADVICE = {
  "protected-interface":
    "Chrome does not let web pages use this reader (its smart card interface is a protected class). These routes work:",
  "unsupported-reader": "This reader does not speak CCID at APDU or TPDU level: use another reader.",
  "device-busy": "Another program holds the reader (a smart card service or another tab): close it and retry.",
  "permission-denied": "The system refused access to the reader: check its USB permissions.",
  "card-absent": "Insert your card into the reader and retry.",
  "card-mute": "The card does not answer: check that it is inserted the right way round and retry.",
  disconnected: "The reader was unplugged: plug it in again and retry.",
  timeout: "Nothing answered in time: check the reader and the connection, then retry.",
  protocol: "The reader or card answered something unexpected: retry; if it persists, try another reader.",
  aborted: "The run was cancelled.",
  "server-error": "The server reported an error: retry later, or contact the service.",
  "bad-script": "The server sent something this page cannot read; the server has been told.",
  "not-approved": "You did not allow the server to use your card.",
  "pin-failed": "The PIN was wrong or not given: check it before retrying (the card counts the tries).",
  "network-error": "The server could not be reached: check your connection.",
  "insecure-url": "Only https servers (or http on this computer) may use your card.",
  "invalid-argument": "The page's settings are wrong: check the server URL and the options.",
  "csp-blocked": "This page's security policy does not allow that server.",
  internal: "card-relay lost track of the session: please report this.",
  "service-unavailable": "No smart card service answers: start the Smart Card Connector app.",
  "ended-by-server": "The server ended the update: the message above says why.",
  "agent-unreachable":
    "Start the card-relay agent on this computer (card-relay --daemon), or install it; if it runs, allow this site to reach it (the browser's local network permission).",
  "agent-refused": "Approve this site at the agent's terminal, or add its origin to the agent's origins file, then retry.",
  "agent-busy": "The agent is running another update: wait for it to end, then retry.",
};

/** The routes that do work when Chrome refuses a reader. */
const WORKING_ROUTES = [
  "The simulated reader on this page (choose it under Reader).",
  "A reader whose CCID interface has vendor class 0xFF (those Chrome lets pages claim).",
  "The Web Smart Card API, in an Isolated Web App on ChromeOS (examples/iwa).",
  "The local agent on this computer (card-relay --daemon), which reaches the reader through the system's smart card service (PC/SC).",
];

/** The failure's advice; `offerAgent`: the button that runs the same update through the agent. */
function showFailure(code, offerAgent = false) {
  const what = ADVICE[code];
  $("failure").hidden = !what;
  $("agent-offer").hidden = !(what && offerAgent);
  $("failure-what").textContent = what ? `What to do: ${what}` : "";
  const routes = $("failure-routes");
  routes.replaceChildren();
  routes.hidden = code !== "protected-interface";
  if (code === "protected-interface") {
    for (const text of WORKING_ROUTES) {
      const item = document.createElement("li");
      item.textContent = text;
      routes.append(item);
    }
  }
}

// ---- The reader panel ----

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(" ");

/**
 * Decodes an ATR (ISO/IEC 7816-3 §8.2): the protocols its TDi bytes offer (T=0 when there is
 * no TD1) and its K historical bytes (T0's low nibble). Null for a malformed ATR.
 */
function decodeAtr(atr) {
  if (atr.length < 2 || (atr[0] !== 0x3b && atr[0] !== 0x3f)) return null;
  const protocols = new Set();
  const historicalCount = atr[1] & 0x0f;
  let y = atr[1] >> 4;
  let i = 2;
  for (;;) {
    for (const bit of [0x1, 0x2, 0x4]) if (y & bit) i += 1; // TAi, TBi, TCi
    if (!(y & 0x8)) break;
    if (i >= atr.length) return null;
    const td = atr[i];
    i += 1;
    protocols.add(td & 0x0f);
    y = td >> 4;
  }
  if (protocols.size === 0) protocols.add(0);
  const historical = atr.slice(i, i + historicalCount);
  if (historical.length !== historicalCount) return null;
  return { protocols: [...protocols].sort((a, b) => a - b).map((t) => `T=${t}`), historical };
}

/** The readable text in historical bytes (runs of 4 or more printable ASCII characters). */
function historicalText(bytes) {
  const runs = String.fromCharCode(...bytes).match(/[\x20-\x7e]{4,}/g);
  return runs ? ` (text: "${runs.join(" ")}")` : "";
}

const ROUTES = {
  webusb: "WebUSB",
  smartcard: "Web Smart Card API",
  agent: "Local agent",
  simulator: "Simulator (WebUSB shape)",
};

function showReader(reader, mode) {
  $("reader-none").hidden = true;
  $("reader-panel").hidden = false;
  if (reader.route === "agent") {
    showAgentReader(reader);
    return;
  }
  $("reader-name").textContent = reader.name;
  $("reader-route").textContent = mode === "simulator" ? ROUTES.simulator : (ROUTES[reader.route] ?? reader.route);
  const levels = { tpdu: "TPDU (card-relay runs T=0/T=1)", "short-apdu": "short APDU", "extended-apdu": "extended APDU" };
  $("reader-level").textContent = reader.exchangeLevel ? levels[reader.exchangeLevel] : "decided by the card service";
  $("reader-pinpad").textContent = reader.pinPad ? "yes: the PIN is typed on the reader" : "no";
  showAtr(null);
}

/** The local agent runs the exchanges over PC/SC: the page knows its version and the reader asked for. */
function showAgentReader(agent) {
  const chosen = $("agent-reader").value;
  $("reader-name").textContent = chosen || "the agent's choice (a reader with a card)";
  $("reader-route").textContent = `${ROUTES.agent}: card-relay ${agent.version} at ${agent.origin}`;
  $("reader-level").textContent = "decided by the agent (PC/SC)";
  $("reader-pinpad").textContent = "the agent asks for the PIN itself (its terminal or the reader's keypad)";
  for (const id of ["reader-atr", "reader-protocols", "reader-historical"]) {
    $(id).textContent = "read by the agent, not shown to pages";
  }
}

function showAtr(atr) {
  if (!atr) {
    for (const id of ["reader-atr", "reader-protocols", "reader-historical"]) $(id).textContent = "no card powered yet";
    return;
  }
  $("reader-atr").textContent = hex(atr);
  const decoded = decodeAtr(atr);
  $("reader-protocols").textContent = decoded ? decoded.protocols.join(", ") : "the ATR is malformed";
  $("reader-historical").textContent = decoded
    ? decoded.historical.length
      ? `${hex(decoded.historical)}${historicalText(decoded.historical)}`
      : "none"
    : "the ATR is malformed";
}

/** Reads the ATR of the card in slot 0 (powering it on if needed); a missing card is not an error here. */
async function readAtr(reader) {
  try {
    const status = await reader.status();
    if (!status.present) return null;
    return status.atr ?? (await reader.powerOn());
  } catch {
    return null;
  }
}

function setResult(status, { text, apdus, code, hint, offerAgent } = {}) {
  const result = $("result");
  result.dataset.status = status;
  if (apdus !== undefined) result.dataset.apdus = String(apdus);
  else delete result.dataset.apdus;
  if (code) result.dataset.code = code;
  else delete result.dataset.code;
  $("result-text").textContent = text ?? "";
  $("progress").hidden = status !== "running";
  $("hint").hidden = !hint;
  $("hint").textContent = hint ? `Hint: ${hint}` : "";
  showFailure(status === "failed" ? code : null, offerAgent);
  if (status !== "running") {
    if (apduCount > 0) $("apdu-count").textContent = `APDUs run: ${apduCount}`;
    waitingFor = null;
    $("progress-text").hidden = true;
  }
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
  setWaiting("approval");
  const answer = await ask($("approve-dialog"));
  setWaiting(null);
  return answer === "once" || answer === "always" ? answer : false;
}

async function askPin({ triesLeft }) {
  setWaiting("pin");
  const answer = await ask($("pin-dialog"), () => {
    $("pin-input").value = "";
    $("pin-info").textContent =
      triesLeft === null
        ? "Enter the PIN of your card. It goes to the card only."
        : `Enter the PIN of your card (${triesLeft} tries left). It goes to the card only.`;
  });
  setWaiting(null);
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

/** Opens the chosen reader; while the browser's chooser or the agent is asked, the wait says so. */
async function openReader(signal) {
  const mode = readerMode();
  if (mode === "agent" || mode === "usb") {
    setWaiting(mode === "agent" ? "agent" : "reader");
    try {
      return mode === "agent" ? await connectAgent({ origin: agentOriginValue(), signal }) : await CardReader.request();
    } finally {
      setWaiting(null);
    }
  }
  const profile = $("profile").value.trim().replace(/\.txt$/, "") || "default";
  const cardChoice = $("card").value;
  const options = { card: cardChoice === "none" ? null : cardChoice };
  if (profile !== "default") {
    const profiles = await loadProfiles();
    if (!(profile in profiles)) throw Object.assign(new Error(`unknown reader profile "${profile}"`), { code: "invalid-argument" });
    options.profile = profile;
    options.profileText = profiles[profile];
  }
  const sim = createSimulatedReader(options);
  for (const [name, value] of simulatorFaults()) sim.setFault(name, value);
  return CardReader.open(sim);
}

/** The `fault` deep-link parameter: [[name, value]], e.g. "late:400,protectedClass". */
function simulatorFaults() {
  const spec = params.get("fault");
  if (!spec) return [];
  return spec.split(",").map((item) => {
    const [name, value] = item.split(":");
    return [name, value === undefined ? 1 : Number(value)];
  });
}

async function run(event) {
  event?.preventDefault();
  if (controller) return;
  controller = new AbortController();
  $("run").disabled = true;
  $("cancel").disabled = false;
  $("trace").textContent = "";
  $("notification").textContent = "";
  $("steps").replaceChildren();
  apduCount = 0;
  runStarted = performance.now();
  $("apdu-count").hidden = true;
  $("progress").removeAttribute("value");
  setResult("running", { text: "Running…" });
  addStep("Opening the reader");
  waitTimer = setInterval(showWait, 1000);
  const url = $("url").value.trim();
  let reader = null;
  try {
    const mode = readerMode();
    reader = await openReader(controller.signal);
    showReader(reader, mode);
    // The agent powers the card itself: its ATR stays on the agent's side.
    if (reader.route === "agent") agentRunning = true;
    else showAtr(await readAtr(reader));
    addStep(`Connecting to ${new URL(url, location.href).host}`);
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
        setWaiting("pin-pad");
        addStep("PIN entry on the reader's keypad");
        $("notification").textContent =
          triesLeft === null
            ? "Enter your PIN on the reader's keypad."
            : `Enter your PIN on the reader's keypad (${triesLeft} tries left).`;
      },
      signal: controller.signal,
      onTrace: (line) => {
        if (waitingFor === "pin-pad") waitingFor = null;
        trace(line);
      },
      onNotification,
    });
    if (result.status === "ended-by-server") {
      // A negative notification: the server gave up on this card.
      const message = result.lastNotification?.message ?? "the server ended the session";
      trace(`Update failed: ${message}`);
      addStep(`Ended by the server: ${message}`);
      setResult("failed", { text: `Failed: ${message}`, apdus: result.apdus, code: "ended-by-server" });
      return;
    }
    trace("Update complete");
    addStep("Update complete");
    setResult("passed", {
      text: `Passed: ${result.apdus} APDUs in ${result.roundTrips} round trips, ${Math.round(result.durationMs)} ms`,
      apdus: result.apdus,
    });
  } catch (e) {
    const code = e?.code ?? "error";
    trace(`Update failed: ${e?.message ?? e}`);
    addStep(`Failed (${code})`);
    setResult("failed", {
      text: `Failed (${code}): ${e?.message ?? e}`,
      code,
      hint: e?.hint,
      offerAgent: readerMode() !== "agent" && agentCanHelp(e),
    });
  } finally {
    clearInterval(waitTimer);
    controller = null;
    waitingFor = null;
    agentRunning = false;
    showWait();
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
        "The local agent (card-relay --daemon) reaches any reader; the simulated reader works everywhere."
      : "WebUSB is not available in this browser: use the local agent (card-relay --daemon) for a real " +
        "reader, or the simulated reader.";
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
