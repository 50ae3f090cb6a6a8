// Loads the card-relay package (the WebAssembly core and its JavaScript API) and opens
// readers: real ones through the `usb` package's WebUSB object, or a simulated one.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** A failure the command line explains itself: printed with its hint, exit status 1. */
export class CliError extends Error {
  constructor(code, message, hint) {
    super(message);
    this.code = code;
    if (hint !== undefined) this.hint = hint;
  }
}

// The daemon runs from the repository: the packages are built into pkg/ (production) and
// pkg-sim/ (with the simulator).
const REPO = new URL("../../pkg/card-relay.js", import.meta.url);
const REPO_SIM = new URL("../../pkg-sim/card-relay.js", import.meta.url);

/** Imports and initialises the package; resolves to its module namespace. */
export async function loadCore({ simulator }) {
  const candidates = simulator ? [REPO_SIM] : [REPO, REPO_SIM];
  const entry = candidates.find((url) => existsSync(fileURLToPath(url)));
  if (!entry) {
    throw new CliError("invalid-argument", "the card-relay package is not built", "Run scripts/build.sh first.");
  }
  const lib = await import(entry.href);
  await lib.default({ module_or_path: await readFile(new URL("card_relay_bg.wasm", entry)) });
  if (simulator && typeof lib.createSimulatedReader !== "function") {
    throw new CliError(
      "invalid-argument",
      "this build has no simulator",
      "--simulator needs the card-relay-simulator package (or pkg-sim/ in the repository).",
    );
  }
  return lib;
}

/** The `usb` package's WebUSB object, which sees every USB device the OS lets us open. */
export async function loadWebUsb() {
  let usb;
  try {
    usb = await import("usb");
  } catch {
    throw new CliError(
      "unsupported-reader",
      "the usb package is not installed",
      "Install it next to card-relay (npm install usb) to use real readers, or run with --simulator.",
    );
  }
  return new usb.WebUSB({ allowAllDevices: true });
}

const DRIVER_HINT = {
  linux:
    "pcscd (or another program) holds the reader: stop it while card-relay runs " +
    "(sudo systemctl stop pcscd.socket pcscd) or close the program using the reader.",
  win32:
    "Windows' own CCID driver holds the reader: card-relay needs the WinUSB driver on it " +
    "(install it for this device, e.g. with Zadig; the reader then no longer works with PC/SC).",
  darwin:
    "macOS's smart card service (ifdreader) holds the reader; it cannot be used by card-relay " +
    "while that service has it.",
};

const PERMISSION_HINT = {
  linux:
    "Your user may not open the USB device: add a udev rule giving it access, e.g. " +
    'SUBSYSTEM=="usb", ATTR{idVendor}=="<vid>", MODE="0660", GROUP="plugdev" in ' +
    "/etc/udev/rules.d/, then replug the reader.",
  win32: "Windows refused to open the device: it needs the WinUSB driver (e.g. with Zadig).",
  darwin: "macOS refused to open the device: the system's smart card service holds it.",
};

/** Adds the operating-system specific advice to a reader error. */
export function explainReaderError(error) {
  const text = `${error?.code ?? ""} ${error?.message ?? error}`;
  const os = process.platform;
  if (error?.code === "device-busy" || /busy|claim|in use/i.test(text)) {
    return new CliError("device-busy", `the reader is in use: ${error?.message ?? error}`, DRIVER_HINT[os] ?? DRIVER_HINT.linux);
  }
  if (error?.code === "permission-denied" || /access|permission|denied|EACCES/i.test(text)) {
    return new CliError("permission-denied", `cannot open the reader: ${error?.message ?? error}`, PERMISSION_HINT[os] ?? PERMISSION_HINT.linux);
  }
  return error;
}

/** The readers: [{ name, device, description }]. */
export async function listReaders(lib, options) {
  if (options.simulator !== undefined) {
    return [{ name: `Simulated reader (${options.simulator})`, device: null, description: "simulator" }];
  }
  const bus = await loadWebUsb();
  let devices;
  try {
    devices = await lib.CardReader.list(bus);
  } catch (e) {
    const explained = explainReaderError(e);
    if (explained !== e) throw explained;
    throw new CliError(
      "unsupported-reader",
      `cannot list the USB devices: ${e?.message ?? e}`,
      "card-relay needs access to the USB bus (in a container: /dev/bus/usb and /sys/bus/usb).",
    );
  }
  return devices.map((device) => ({
    name: device.productName || `USB ${hex4(device.vendorId)}:${hex4(device.productId)}`,
    device,
    bus,
    description: `${hex4(device.vendorId)}:${hex4(device.productId)}`,
  }));
}

function hex4(n) {
  return n.toString(16).padStart(4, "0");
}

/** Picks the reader named (exactly, else by a case-insensitive part) or the first. */
function choose(readers, name) {
  if (name === undefined) return readers[0];
  const lower = name.toLowerCase();
  return readers.find((r) => r.name === name) ?? readers.find((r) => r.name.toLowerCase().includes(lower));
}

/**
 * Opens the reader the options ask for. Without one plugged in, waits for a `connect` until
 * `signal` aborts (hot-plug), telling `say` so once.
 */
export async function openReader(lib, options, { say, signal }) {
  if (options.simulator !== undefined) {
    const device = lib.createSimulatedReader({ profile: options.simulator, card: options.card });
    return lib.CardReader.open(device);
  }
  for (;;) {
    const readers = await listReaders(lib, options);
    const chosen = choose(readers, options.reader);
    if (chosen) {
      try {
        return await lib.CardReader.open(chosen.device, { usb: chosen.bus });
      } catch (e) {
        throw explainReaderError(e);
      }
    }
    const bus = readers[0]?.bus ?? (await loadWebUsb());
    say(options.reader === undefined ? "Connect a smart card reader…" : `Connect the reader "${options.reader}"…`);
    await waitFor(bus, "connect", signal);
  }
}

/** Resolves at the next `type` event of `target`; rejects when `signal` aborts. */
export function waitFor(target, type, signal) {
  return new Promise((resolve, reject) => {
    const done = (f, v) => {
      target.removeEventListener(type, onEvent);
      signal?.removeEventListener("abort", onAbort);
      f(v);
    };
    const onEvent = (event) => done(resolve, event);
    const onAbort = () => done(reject, cancelled(signal));
    if (signal?.aborted) return onAbort();
    target.addEventListener(type, onEvent);
    signal?.addEventListener("abort", onAbort);
  });
}

/** The error for a wait that `signal` ended: a timeout (AbortSignal.timeout) or a cancel. */
export function cancelled(signal) {
  return signal?.reason?.name === "TimeoutError"
    ? new CliError("timeout", "no reader or card came in time")
    : new CliError("aborted", "cancelled");
}
