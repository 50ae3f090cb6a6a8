// One card update, as the OCF client ran it: open the reader, wait for a card, optionally
// verify the PIN locally, run the RAMOverHTTP session, reset the card (unless -n), close.
import { cancelled, CliError, openReader } from "./core.mjs";
import { askSecret } from "./terminal.mjs";

/**
 * Runs the update of `job` = { url, sessionId, pinRequired, pin } with the reader options
 * `options` (parsed arguments). `log(level, line)` prints (level 0 always, 1 normally,
 * 2 verbose); `signal` cancels; `waitSignal` (default `signal`) ends the waits for a reader
 * and a card. Resolves to cardUpdate's result; rejects with a CardRelayError or CliError,
 * also when the server ended the session with a failure.
 */
export async function runUpdate(lib, options, job, { log, signal, waitSignal = signal }) {
  const target = lib.checkServerUrl(job.url);
  const say = (line) => log(0, line);
  const reader = await openReader(lib, options, { say, signal: waitSignal });
  try {
    log(2, `Reader: ${reader.name} (${reader.exchangeLevel} level${reader.pinPad ? ", PIN pad" : ""})`);
    const state = await reader.status();
    if (!state.present) {
      log(0, `Insert a card into ${reader.name}…`);
      await waitForCard(reader, waitSignal);
    }
    if (options.verbosity >= 2) {
      const atr = await reader.powerOn({ signal });
      log(2, `ATR: ${Array.from(atr, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(" ")}`);
    }
    log(1, `Connecting to ${target.url}`);
    const result = await lib.cardUpdate(reader, target.url, {
      dialect: options.dialect,
      sessionId: job.sessionId,
      approve: () => "once",
      pinRequired: job.pinRequired,
      pin: job.pinRequired ? pinSource(job.pin) : undefined,
      onPinPad: () => log(0, "Enter your PIN on the reader's keypad."),
      showSecrets: options.showSecrets,
      onTrace: (line) => log(1, line),
      onNotification: ({ code, message }) => log(1, `Notification ${code}: ${message}`),
      signal,
    });
    if (result.status === "ended-by-server") {
      const message = result.lastNotification?.message ?? "the server ended the session";
      throw new CliError("ended-by-server", message);
    }
    if (options.reset) {
      await reader.powerOff().catch(() => {});
    }
    return result;
  } finally {
    await reader.close().catch(() => {});
  }
}

/** Resolves when a card is inserted; rejects when the reader goes away or `signal` aborts. */
function waitForCard(reader, signal) {
  return new Promise((resolve, reject) => {
    const done = (settle, value) => {
      reader.removeEventListener("cardinserted", onInserted);
      reader.removeEventListener("disconnected", onDisconnected);
      signal?.removeEventListener("abort", onAbort);
      settle(value);
    };
    const onInserted = () => done(resolve);
    const onDisconnected = () => done(reject, new CliError("disconnected", `${reader.name} was unplugged`));
    const onAbort = () => done(reject, cancelled(signal));
    if (signal?.aborted) return onAbort();
    reader.addEventListener("cardinserted", onInserted);
    reader.addEventListener("disconnected", onDisconnected);
    signal?.addEventListener("abort", onAbort);
  });
}

// The PIN: the one given (-p 123456) on the first try; asked for on the terminal otherwise.
function pinSource(given) {
  let first = true;
  return async ({ triesLeft }) => {
    if (first && typeof given === "string") {
      first = false;
      return given;
    }
    const tries = triesLeft === null || triesLeft === undefined ? "" : ` (${triesLeft} tries left)`;
    return askSecret(`PIN${tries}: `);
  };
}
