// @ts-check
// card-relay — the JavaScript API, designed in this one file (types: card-relay.d.ts).
//
//   import init, { CardReader, cardUpdate, CardRelayError } from "card-relay";
//   await init();
//   const reader = await CardReader.request();        // in a click handler: WebUSB chooser
//   const result = await cardUpdate(reader, "/rt/test", { onTrace: console.log });
//
// The protocol work (CCID, T=0/T=1, RAMOverHTTP) runs in WebAssembly; this layer gives it
// JavaScript shapes: promises, options objects, EventTarget events, AbortSignal, and
// `CardRelayError` with a stable `code`.
import init, { PinOptions, ReaderCore, SmartCardCore, guard, runCardUpdate, version as wasmVersion } from "./card_relay.js";

// The published types (card-relay.d.ts) type this file: tsc checks both against each other
// (tests/ts/tsconfig.layer.json).
/** @typedef {import("card-relay").CardRelayErrorCode} CardRelayErrorCode */
/** @typedef {import("card-relay").CardReaderEventType} CardReaderEventType */
/** @typedef {import("card-relay").UsbDeviceLike} UsbDeviceLike */
/** @typedef {import("card-relay").OpenSmartCardOptions} OpenSmartCardOptions */
/** @typedef {import("card-relay").SmartCardResourceManagerLike} SmartCardResourceManagerLike */
/** @typedef {import("card-relay").SlotOptions} SlotOptions */
/** @typedef {import("card-relay").CancellableSlotOptions} CancellableSlotOptions */
/** @typedef {import("card-relay").SlotStatus} SlotStatus */
/** @typedef {import("card-relay").CardUpdateOptions} CardUpdateOptions */
/** @typedef {import("card-relay").CardUpdateResult} CardUpdateResult */
/** @typedef {import("card-relay").LegacyRequest} LegacyRequest */
/** @typedef {import("card-relay").AgentReader} AgentReader */
/**
 * The WebAssembly side of a CardReader: members a Web Smart Card API reader does not have
 * are undefined there.
 * @typedef {ReaderCore | (SmartCardCore & Partial<ReaderCore>)} Core
 */

/**
 * Calls `f(...args)` in the wasm. After init() it is src/web/platform.js's `enter`: a trap
 * (a Rust panic, `-Cpanic=immediate-abort`) becomes CardRelayError `internal` (hint: Rust's
 * ErrorCode::hint), rejects every pending promise of the module with it, releases the
 * readers, and every later call fails with it at once, without entering the wasm.
 * @type {<T>(f: (...args: any[]) => T, ...args: any[]) => T}
 */
let enter = (f, ...a) => f(...a);

/** @type {typeof init} */
const start = async (...a) => {
  const exports = await init(...a);
  enter = guard();
  return exports;
};
export default start;

/** The library's version. */
export const version = () => enter(wasmVersion);

/**
 * `core` with its getters and methods called through `enter`.
 * @template T
 * @param {T} core
 * @returns {T}
 */
function guarded(core) {
  // One wrapper per method, made once: a transmit allocates no closure here.
  /** @type {Map<PropertyKey, Function>} */
  const methods = new Map();
  return new Proxy(/** @type {any} */ (core), {
    get(target, key) {
      const v = enter(Reflect.get, target, key);
      if (typeof v != "function") return v;
      let m = methods.get(key);
      if (!m) methods.set(key, (m = (/** @type {any[]} */ ...a) => enter(Reflect.apply, v, target, a)));
      return m;
    },
  });
}

/**
 * Every error code a CardRelayError can carry.
 * @type {readonly CardRelayErrorCode[]}
 */
export const ERROR_CODES = Object.freeze([
  "protected-interface",
  "unsupported-reader",
  "device-busy",
  "permission-denied",
  "card-absent",
  "card-mute",
  "disconnected",
  "timeout",
  "protocol",
  "aborted",
  "server-error",
  "bad-script",
  "not-approved",
  "pin-failed",
  "network-error",
  "insecure-url",
  "invalid-argument",
  "csp-blocked",
  "internal",
  "service-unavailable",
  "agent-unreachable",
  "agent-refused",
  "agent-busy",
]);

/**
 * The error every card-relay call rejects with. `code` is stable (see ERROR_CODES), `hint`
 * says what the user can do, `status` is the HTTP status of a `server-error`. Errors made
 * inside the WebAssembly module are plain `Error`s named "CardRelayError" with a `code`;
 * `instanceof CardRelayError` recognises them too.
 */
export class CardRelayError extends Error {
  /**
   * @param {CardRelayErrorCode} code
   * @param {string} message
   * @param {{ hint?: string, status?: number, cause?: unknown }} [options]
   */
  constructor(code, message, { hint, status, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = /** @type {const} */ ("CardRelayError");
    this.code = code;
    if (hint !== undefined) this.hint = hint;
    if (status !== undefined) this.status = status;
  }

  static [Symbol.hasInstance](value) {
    return (
      Error.prototype.isPrototypeOf(value) &&
      value.name === "CardRelayError" &&
      typeof value.code === "string"
    );
  }
}

/**
 * WebUSB chooser filters: every interface of class 0x0B (smart card), plus the readers that
 * expose CCID under vendor class 0xFF (libccid's reader corpus; the only ones an ordinary
 * Chrome page may claim). A native test checks this list against the 691 descriptor dumps.
 */
/** @type {readonly (readonly [number, number])[]} */
export const VENDOR_CLASS_CCID_READERS = Object.freeze([
  // VENDOR-CLASS-READERS-BEGIN
  [0x046a, 0x003e], // CherrySmartTerminalST2XXX
  [0x04e6, 0x5111], // SCR331-DI
  [0x04e6, 0x511a], // SCR3310-NTTCom
  [0x04e6, 0x5120], // SCR331-DI-NTTCom
  [0x04e6, 0x5121], // SDI010
  [0x04e6, 0x512b], // SCM_SDI011
  [0x04e6, 0x512c], // SCM_SDI011_512C
  [0x04e6, 0x5291], // SCL010
  [0x04e6, 0x5292], // SCL01x
  [0x04e6, 0xe003], // SPR532
  [0x076b, 0x532a], // OMNIKEY_5321_CLi_USB
  [0x076b, 0x5340], // HID_5021_CL
  [0x08e6, 0x1359], // Verisign_secure_storage_token
  [0x08e6, 0x2202], // Gem_e-SealPro
  [0x08e6, 0xace0], // Verisign_secure_token
  [0x0973, 0x0003], // e-gate
  [0x09be, 0x0002], // MySmartPad
  [0x0c4b, 0x0300], // ReinerSCT
  [0x0c4b, 0x0500], // ReinerSCT_cyberJack_RFID_standard
  [0x1a74, 0x6354], // Oberthur-CosmoCard
  [0x1a74, 0x6356], // Oberthur-CosmoCard1
  [0x1db2, 0x0600], // DUALi_DE-ABCM6
  [0x1db2, 0x0604], // DUALi_DRAGON_BT
  [0x413c, 0x2100], // DellSK-3106
  // VENDOR-CLASS-READERS-END
]);

/** @type {readonly USBDeviceFilter[]} */
export const CCID_FILTERS = Object.freeze([
  { classCode: 0x0b },
  ...VENDOR_CLASS_CCID_READERS.map(([vendorId, productId]) => ({ vendorId, productId })),
]);

const CORE = Symbol("core");

/** An event about a reader: `cardinserted`, `cardremoved`, `disconnected`, `hardwareerror`. */
export class CardReaderEvent extends Event {
  /**
   * @param {CardReaderEventType} type
   * @param {number} [slot]
   * @param {number} [code] bHardwareErrorCode of a `hardwareerror` (CCID 1.1 §6.3.2)
   */
  constructor(type, slot, code) {
    super(type);
    this.slot = slot;
    this.code = code;
  }
}

function usb() {
  return globalThis.navigator?.usb;
}

function isCardReader(device) {
  if (VENDOR_CLASS_CCID_READERS.some(([v, p]) => v === device.vendorId && p === device.productId)) {
    return true;
  }
  return (device.configurations ?? []).some((configuration) =>
    (configuration.interfaces ?? []).some((iface) =>
      (iface.alternates ?? []).some((alternate) => alternate.interfaceClass === 0x0b),
    ),
  );
}

/**
 * A number the WebAssembly exports take as a byte: undefined stays undefined (the export's
 * default), anything but an integer in `min..=max` is an `invalid-argument` (wasm-bindgen
 * would cut it to eight bits).
 * @param {unknown} value
 * @param {string} name
 * @param {number} [min]
 * @param {number} [max]
 * @returns {number | undefined}
 */
function byte(value, name, min = 0, max = 255) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return value;
  throw new CardRelayError("invalid-argument", `${name} must be an integer from ${min} to ${max}`);
}

/**
 * @param {{ slot?: number } | undefined} options
 * @returns {number}
 */
function slotOf(options) {
  return byte(options?.slot, "slot") ?? 0;
}

/**
 * A command APDU as bytes: a Uint8Array as it is, an ArrayBuffer's bytes, or hex digits.
 * @param {unknown} apdu
 * @returns {Uint8Array}
 */
function apduBytes(apdu) {
  if (apdu instanceof Uint8Array) return apdu;
  if (apdu instanceof ArrayBuffer) return new Uint8Array(apdu);
  if (typeof apdu === "string") return parseHex(apdu, "apdu");
  throw new CardRelayError("invalid-argument", "apdu must be a Uint8Array, an ArrayBuffer or hex digits");
}

/**
 * Calls `f`; its throw becomes a rejection, as every reader method reports bad arguments.
 * @template T
 * @param {() => Promise<T>} f
 * @returns {Promise<T>}
 */
function settle(f) {
  try {
    return f();
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * How long one transfer of the Node.js `usb` package (3.x) may wait before it is issued
 * again. That package gives every transfer a timeout (1000 ms when the call passes none;
 * 0 is not "no timeout": it is a zero duration, the transfer is cancelled at once), while
 * a WebUSB transferIn waits until data comes. The adapter below reads one packet per
 * transfer, so a transfer that times out has taken nothing (a packet is never cut), and
 * issues it again: reads wait as in WebUSB, the driver's deadlines are the only timeouts,
 * and close() ends the reads within one slice.
 */
export const NODE_USB_SLICE_MS = 500;

/** Whether `device` is a `usb` package (3.x) device rather than a WebUSB one. */
function isNodeUsbDevice(device) {
  return typeof device?.nativeTransferIn === "function";
}

function namedError(name, message) {
  const e = new Error(message);
  e.name = name;
  return e;
}

/** The `usb` package's errors are plain Errors; the driver reads DOMException names. */
function nodeUsbError(e) {
  const message = String(e?.message ?? e);
  if (/disconnected|no such device|not found/i.test(message)) return namedError("NotFoundError", message);
  if (/borrow|invalid state/i.test(message)) return namedError("InvalidStateError", message);
  return e instanceof Error ? e : namedError("OperationError", message);
}

const isTimedOut = (e) => /cancel|timed? ?out/i.test(String(e?.message ?? e));
const isStall = (e) => /stall/i.test(String(e?.message ?? e));

/**
 * A `usb` package device made to behave like a WebUSB USBDevice for the driver: every call
 * returns a promise (that package throws synchronously from releaseInterface and close
 * while a transfer is pending: "The same native value cannot be borrowed mutably while
 * another borrow is active"), reads have no timeout (see NODE_USB_SLICE_MS), stalls are
 * transfer statuses, and releaseInterface and close end the pending reads first, so the
 * interface is always released.
 */
class NodeUsbDevice {
  #device;
  #inFlight = new Set();
  #closing = false;
  #packetSizes = new Map();

  constructor(device) {
    this.#device = device;
  }

  get vendorId() { return this.#device.vendorId; }
  get productId() { return this.#device.productId; }
  get productName() { return this.#device.productName; }
  get manufacturerName() { return this.#device.manufacturerName; }
  get serialNumber() { return this.#device.serialNumber; }
  get opened() { return this.#device.opened; }
  get configuration() { return this.#device.configuration; }
  get configurations() { return this.#device.configurations; }

  /** Runs one call of the package: a synchronous throw becomes a rejection. */
  #call(f) {
    let promise;
    try {
      promise = Promise.resolve(f());
    } catch (e) {
      return Promise.reject(nodeUsbError(e));
    }
    const tracked = promise.catch((e) => {
      throw nodeUsbError(e);
    });
    const settled = tracked.then(() => {}, () => {});
    this.#inFlight.add(settled);
    settled.then(() => this.#inFlight.delete(settled));
    return tracked;
  }

  /** Resolves when no call of the package is pending (each ends within one slice). */
  async #drain() {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  /**
   * Learns the IN endpoints' packet sizes while no transfer is pending: the package's
   * `configuration` getter borrows the device mutably too, and throws during a transfer.
   */
  #learnPacketSizes() {
    try {
      for (const iface of this.#device.configuration?.interfaces ?? []) {
        for (const e of iface.alternate?.endpoints ?? []) {
          if (e.direction === "in") this.#packetSizes.set(e.endpointNumber, e.packetSize);
        }
      }
    } catch {
      // Unknown sizes read 64-byte packets (full speed).
    }
  }

  open() { this.#closing = false; return this.#call(() => this.#device.open()); }
  selectConfiguration(value) { return this.#call(() => this.#device.selectConfiguration(value)); }
  claimInterface(n) {
    this.#closing = false;
    this.#learnPacketSizes();
    return this.#call(() => this.#device.claimInterface(n));
  }
  selectAlternateInterface(n, alternate) {
    return this.#call(() => this.#device.selectAlternateInterface(n, alternate));
  }
  controlTransferIn(setup, length) { return this.#call(() => this.#device.controlTransferIn(setup, length)); }
  controlTransferOut(setup, data) { return this.#call(() => this.#device.controlTransferOut(setup, data)); }
  clearHalt(direction, endpoint) { return this.#call(() => this.#device.clearHalt(direction, endpoint)); }

  async transferOut(endpoint, data) {
    try {
      return await this.#call(() => this.#device.transferOut(endpoint, data));
    } catch (e) {
      if (isStall(e)) return { status: "stall", bytesWritten: 0 };
      throw e;
    }
  }

  async transferIn(endpoint, length) {
    const packet = Math.max(1, Math.min(length, this.#packetSizes.get(endpoint) ?? 64));
    for (;;) {
      if (this.#closing) throw namedError("AbortError", "The transfer was cancelled.");
      try {
        return await this.#call(() => this.#device.transferIn(endpoint, packet, NODE_USB_SLICE_MS));
      } catch (e) {
        if (isStall(e)) return { status: "stall", data: undefined };
        if (!isTimedOut(e)) throw e;
        // Nothing within this slice: read again, as a WebUSB read would go on waiting.
      }
    }
  }

  /** Ends the pending reads, then releases the interface. */
  async releaseInterface(n) {
    this.#closing = true;
    await this.#drain();
    return this.#call(() => this.#device.releaseInterface(n));
  }

  /** Ends the pending reads, releases what is claimed, closes the device. */
  async close() {
    this.#closing = true;
    await this.#drain();
    for (const iface of this.#device.configuration?.interfaces ?? []) {
      if (iface.claimed) await this.#call(() => this.#device.releaseInterface(iface.interfaceNumber)).catch(() => {});
    }
    return this.#call(() => this.#device.close());
  }
}

/** Card events whose listeners make the driver watch the slots. */
const CARD_EVENTS = new Set(["cardinserted", "cardremoved"]);

/**
 * A smart card reader on WebUSB (or a simulated one), or through the Web Smart Card API
 * (`route` "smartcard"). Events: see CardReaderEvent.
 */
export class CardReader extends EventTarget {
  #core;
  #device;
  #bus;
  #onDisconnect;
  #listeners = new Set();
  #route;

  /**
   * Not for direct use: see CardReader.request(), CardReader.open(), CardReader.openSmartCard().
   * @param {symbol} token
   * @param {Core} core
   * @param {UsbDeviceLike | null} device
   * @param {USB | null} [bus]
   * @param {"webusb" | "smartcard"} [route]
   */
  constructor(token, core, device, bus = usb(), route = "webusb") {
    super();
    if (token !== CORE) {
      throw new TypeError("use CardReader.request() or CardReader.open(device)");
    }
    core = guarded(core);
    this.#core = core;
    this.#device = device;
    this.#route = route;
    core.setListening(false);
    core.setEventHandler((type, slot, code) => {
      if (type === "disconnected") this.#forgetDisconnectListener();
      this.dispatchEvent(new CardReaderEvent(type, slot, code));
    });
    this.#bus = bus;
    if (bus?.addEventListener) {
      this.#onDisconnect = (event) => {
        try {
          if (event.device === device) core.markDisconnected?.();
        } catch {
          // The module stopped after a trap (`enter`): nothing is left to tell.
        }
      };
      bus.addEventListener("disconnect", this.#onDisconnect);
    }
  }

  /**
   * Opens the browser's reader chooser (must run in a user gesture, e.g. a click handler)
   * and opens the chosen reader. `filters` replaces the default CCID_FILTERS.
   *
   * @param {{ filters?: USBDeviceFilter[] }} [options]
   * @returns {Promise<CardReader>}
   */
  static async request({ filters } = {}) {
    const bus = usb();
    if (!bus) {
      throw new CardRelayError(
        "unsupported-reader",
        "WebUSB is not available here",
        { hint: "Use a Chromium-based browser on a secure (https or localhost) page." },
      );
    }
    let device;
    try {
      device = await bus.requestDevice({ filters: filters ?? /** @type {USBDeviceFilter[]} */ (CCID_FILTERS) });
    } catch (e) {
      if (e?.name === "NotFoundError") {
        throw new CardRelayError("aborted", "no reader was chosen", { cause: e });
      }
      if (e?.name === "SecurityError") {
        throw new CardRelayError("permission-denied", e.message, {
          cause: e,
          hint: "CardReader.request() must be called from a user gesture such as a click.",
        });
      }
      throw e;
    }
    return CardReader.open(device);
  }

  /**
   * The smart card readers among `bus.getDevices()` (default `navigator.usb`; in Node.js
   * the `usb` package's `new WebUSB({ allowAllDevices: true })`): devices with a class
   * 0x0B interface or listed in VENDOR_CLASS_CCID_READERS. Resolves to USBDevices, unopened.
   *
   * @param {USB} [bus]
   * @returns {Promise<USBDevice[]>}
   */
  static async list(bus = usb()) {
    if (!bus) {
      throw new CardRelayError("unsupported-reader", "WebUSB is not available here", {
        hint: "Use a Chromium-based browser, or in Node.js pass the usb package's WebUSB object.",
      });
    }
    const devices = await bus.getDevices();
    return devices.filter(isCardReader);
  }

  /**
   * Opens a device from `getDevices()`, or a simulated reader. `usb` is the WebUSB object
   * the device came from (default `navigator.usb`), watched for its `disconnect` event.
   *
   * @param {UsbDeviceLike} device
   * @param {{ usb?: USB }} [options]
   * @returns {Promise<CardReader>}
   */
  static async open(device, { usb: bus } = {}) {
    // A device of the Node.js `usb` package goes through an adapter (see NodeUsbDevice).
    const core = await enter(() => ReaderCore.open(isNodeUsbDevice(device) ? new NodeUsbDevice(device) : device));
    return new CardReader(CORE, core, device, bus ?? usb());
  }

  /** EventTarget's, also telling the driver whether someone waits for card events. */
  addEventListener(type, listener, options) {
    super.addEventListener(type, listener, options);
    if (CARD_EVENTS.has(type) && listener) {
      this.#listeners.add(`${type}\u0000${listenerKey(listener, options)}`);
      this.#core.setListening(true);
    }
  }

  /** EventTarget's, also telling the driver when nobody waits for card events any more. */
  removeEventListener(type, listener, options) {
    super.removeEventListener(type, listener, options);
    if (CARD_EVENTS.has(type) && listener) {
      this.#listeners.delete(`${type}\u0000${listenerKey(listener, options)}`);
      this.#core.setListening(this.#listeners.size > 0);
    }
  }

  /**
   * Opens a reader through the Web Smart Card API (Isolated Web Apps on ChromeOS): `smartCard`
   * is the resource manager (default navigator.smartCard), `reader` a name from
   * listSmartCardReaders() (default: the first reader with a card, waiting for one if none
   * has; `signal` ends the wait). Connects in shared mode when a card is there, which may
   * show the permission prompt.
   *
   * @param {OpenSmartCardOptions} [options]
   * @returns {Promise<CardReader>}
   */
  static async openSmartCard({ smartCard, reader, signal } = {}) {
    if (reader !== undefined && reader !== null && typeof reader !== "string") {
      throw new CardRelayError("invalid-argument", "reader must be a reader name");
    }
    const core = await enter(() => SmartCardCore.open(smartCard, reader ?? undefined, signal));
    return new CardReader(CORE, core, null, null, "smartcard");
  }

  /**
   * The reader names of a Web Smart Card API resource manager (default navigator.smartCard).
   * @param {{ smartCard?: SmartCardResourceManagerLike }} [options]
   * @returns {Promise<string[]>}
   */
  static listSmartCardReaders({ smartCard } = {}) {
    return settle(() => enter(() => SmartCardCore.list(smartCard)));
  }

  /** "webusb", or "smartcard" for a reader opened with openSmartCard(). */
  get route() { return this.#route; }
  /** The USBDevice (or simulated device) behind this reader; null on the smartcard route. */
  get device() { return this.#device ?? null; }
  /** The product name (the PC/SC reader name on the smartcard route). */
  get name() { return this.#core.name; }
  get vendorId() { return this.#core.vendorId ?? null; }
  get productId() { return this.#core.productId ?? null; }
  /** Number of card slots. */
  get slots() { return this.#core.slots; }
  /** "tpdu", "short-apdu" or "extended-apdu"; null on the smartcard route. */
  get exchangeLevel() { return this.#core.exchangeLevel ?? null; }
  /** Whether the reader has a PIN pad. */
  get pinPad() { return this.#core.pinPad; }
  /** 11 (class 0x0B) or 255 (vendor class); null on the smartcard route. */
  get interfaceClass() { return this.#core.interfaceClass ?? null; }
  /** False once closed or unplugged. */
  get usable() { return this.#core.usable; }

  /**
   * Powers the card on; resolves to its ATR.
   * @param {CancellableSlotOptions} [options]
   * @returns {Promise<Uint8Array>}
   */
  powerOn(options = {}) {
    return settle(() => this.#core.powerOn(slotOf(options), options.signal));
  }

  /**
   * Powers the card off.
   * @param {SlotOptions} [options]
   * @returns {Promise<void>}
   */
  powerOff(options = {}) {
    return settle(() => this.#core.powerOff(slotOf(options)));
  }

  /**
   * Resolves to { present, powered, atr, protocol }.
   * @param {SlotOptions} [options]
   * @returns {Promise<SlotStatus>}
   */
  status(options = {}) {
    return settle(() => this.#core.status(slotOf(options)));
  }

  /**
   * Sends a command APDU; resolves to the response data followed by SW1 SW2.
   * @param {Uint8Array | ArrayBuffer | string} apdu bytes, or hex digits
   * @param {CancellableSlotOptions} [options]
   * @returns {Promise<Uint8Array>}
   */
  transmit(apdu, options = {}) {
    return settle(() => this.#core.transmit(apduBytes(apdu), slotOf(options), options.signal));
  }

  /** Releases the interface and closes the device. */
  async close() {
    this.#forgetDisconnectListener();
    await this.#core.close();
  }

  /** @internal */
  get [CORE]() { return this.#core; }

  #forgetDisconnectListener() {
    if (this.#onDisconnect) {
      this.#bus?.removeEventListener?.("disconnect", this.#onDisconnect);
      this.#onDisconnect = undefined;
    }
  }
}

const listenerIds = new WeakMap();
let nextListenerId = 0;

/** One key per (listener, capture), as EventTarget tells listeners apart. */
function listenerKey(listener, options) {
  if (!listenerIds.has(listener)) listenerIds.set(listener, ++nextListenerId);
  const capture = typeof options === "boolean" ? options : Boolean(options?.capture);
  return `${listenerIds.get(listener)}:${capture}`;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);
const APPROVALS_KEY = "card-relay.approved-servers";

function pageOrigin() {
  return globalThis.location?.origin ?? null;
}

function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

/** The origins the user approved "always" (persisted in localStorage). */
export function approvedServers() {
  try {
    const list = JSON.parse(storage()?.getItem(APPROVALS_KEY) ?? "[]");
    return Array.isArray(list) ? list.filter((s) => typeof s === "string") : [];
  } catch {
    return [];
  }
}

/**
 * The origin as `new URL(origin).origin` serialises it (default port dropped, host
 * lowercased, IDN in Punycode): the one origin rule, also the Rust core's. Unparsable text
 * is kept as it is.
 */
function normalOrigin(origin) {
  try {
    return new URL(String(origin)).origin;
  } catch {
    return String(origin);
  }
}

/**
 * Forgets an "always" approval; `origin` may be spelt any way URL parsing accepts.
 * @param {string} origin
 */
export function revokeServer(origin) {
  const gone = normalOrigin(origin);
  const list = approvedServers().filter((o) => normalOrigin(o) !== gone);
  storage()?.setItem(APPROVALS_KEY, JSON.stringify(list));
}

function remember(origin) {
  const list = approvedServers();
  if (!list.includes(origin)) {
    list.push(origin);
    storage()?.setItem(APPROVALS_KEY, JSON.stringify(list));
  }
}

/**
 * Checks a server URL: https anywhere, plain http only to localhost. Resolves relative
 * URLs against the page. Returns { url, origin, sameOrigin }.
 *
 * @param {string} url
 * @returns {{ url: string, origin: string, sameOrigin: boolean }}
 */
export function checkServerUrl(url) {
  let parsed;
  try {
    parsed = new URL(url, globalThis.location?.href);
  } catch (e) {
    throw new CardRelayError("invalid-argument", `not a url: ${url}`, { cause: e });
  }
  if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && LOOPBACK.has(parsed.hostname))) {
    throw new CardRelayError("insecure-url", `refusing ${parsed.protocol}//${parsed.host}: not https`, {
      hint: "Card update servers must use https (plain http only on localhost).",
    });
  }
  return { url: parsed.href, origin: parsed.origin, sameOrigin: parsed.origin === pageOrigin() };
}

/**
 * @param {{ origin: string, sameOrigin: boolean }} target
 * @param {CardUpdateOptions} options
 */
async function approve(target, options) {
  if (target.sameOrigin || approvedServers().some((o) => normalOrigin(o) === target.origin)) return;
  const answer = options.approve ? await options.approve(target.origin) : false;
  if (answer === "always") {
    remember(target.origin);
  } else if (answer !== "once" && answer !== true) {
    throw new CardRelayError("not-approved", `connection to ${target.origin} was not approved`, {
      hint: "Approve the server to let it use your card.",
    });
  }
}

/**
 * Hex digits (whitespace between them allowed) as bytes. The text may hold a PIN (a VERIFY
 * given to transmit()): the error names the first bad character's position, never the text.
 * @param {string} text
 * @param {string} name what the text is, for the error
 * @returns {Uint8Array}
 */
function parseHex(text, name) {
  const clean = String(text).replace(/\s+/g, "");
  const bad = clean.search(/[^0-9a-fA-F]/);
  if (bad >= 0) {
    throw new CardRelayError("invalid-argument", `${name} is not hex: bad character at position ${bad}`);
  }
  if (clean.length % 2 !== 0) {
    throw new CardRelayError("invalid-argument", `${name} is not hex: odd number of digits`);
  }
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/**
 * Whether cardUpdate's `pinRequired` asks for the PIN check: every value but absent and
 * `false`, so `0` (P2 0x00, a valid reference) does, as on the agent's route.
 * @param {CardUpdateOptions} options
 * @returns {boolean}
 */
function pinRequested(options) {
  return options.pinRequired !== undefined && options.pinRequired !== false;
}

/**
 * Verifies the PIN on the card, locally, before any server sees the session: the PIN goes
 * to the card only, never into a request. `pinRequired` is the reference (P2, default
 * 0x81 as the SmartCard-HSM's user PIN); `pinSelect` an AID (hex) to SELECT first. On a
 * reader with a PIN pad (unless `pinPad: false`) the user types the PIN on the reader, which
 * sends VERIFY itself, so the PIN does not even pass through the page; `pinPad` may give
 * { minDigits, maxDigits, timeout (s), padding } and `onPinPad({ triesLeft })` is called
 * when the reader starts waiting. Otherwise `pin()` supplies the PIN. The check itself
 * (SELECT, VERIFY, 63Cx / 6983, the PIN pad's fallback) runs in WebAssembly
 * (src/pin.rs); this function only checks the options and calls the page's callbacks.
 *
 * @param {CardReader} reader
 * @param {CardUpdateOptions} options
 * @returns {Promise<void>}
 */
async function verifyPin(reader, options) {
  const slot = slotOf(options);
  const reference = typeof options.pinRequired === "number" ? byte(options.pinRequired, "pinRequired") ?? 0x81 : 0x81;
  const select = options.pinSelect ? parseHex(options.pinSelect, "pinSelect") : undefined;
  // Whether the reader has a pad is decided in WebAssembly after the power-on: on the Web
  // Smart Card route it is known only from the first connection (src/pin.rs).
  const pad = options.pinPad !== false
    ? (typeof options.pinPad === "object" && options.pinPad !== null ? options.pinPad : {})
    : null;
  const padBytes = pad && [
    byte(pad.minDigits, "minDigits", 1),
    byte(pad.maxDigits, "maxDigits", 1),
    byte(pad.timeout, "timeout", 1),
    byte(pad.padding, "padding"),
  ];
  const check = guarded(enter(() => new PinOptions(reference, select)));
  if (padBytes) {
    try {
      check.usePad(...padBytes);
    } catch (e) {
      check.free();
      throw e;
    }
  }
  const { onPinPad, pin } = options;
  await reader[CORE].verifyPin(
    slot,
    check,
    onPinPad && ((triesLeft) => onPinPad({ triesLeft })),
    typeof pin === "function"
      ? async (triesLeft) => {
          const answer = await pin({ triesLeft });
          return answer === null || answer === undefined ? null : String(answer);
        }
      : undefined,
    options.signal,
  );
}

/**
 * Runs a card update session: the server at `url` drives the card in `reader` over
 * RAMOverHTTP or GP SERAM. Options: dialect ("openscdp" default, "gp", or "seram": then `url`
 * is the Remote Agent's endpoint base and sessionId the SERAM session id, required), slot,
 * timeout (ms per HTTP exchange, default 60000; 40000 for seram), credentials ("include" for cross-origin servers by default,
 * "same-origin" otherwise), approve(origin) → "once" | "always" | false for servers that are
 * not same-origin, pinRequired / pinSelect / pin() for a local PIN check first,
 * onNotification({ code, message, timeToCompletion }), onTrace(line), showSecrets, signal,
 * sessionId (RAM dialects: a JSESSIONID cookie, Node.js only). Resolves to { status, apdus,
 * roundTrips, durationMs, lastNotification, targetedApplication }.
 *
 * @param {CardReader | CardAgent} reader
 * @param {string} url
 * @param {CardUpdateOptions} [options]
 * @returns {Promise<CardUpdateResult>}
 */
export async function cardUpdate(reader, url, options = {}) {
  if (reader instanceof CardAgent) return agentUpdate(reader, url, options);
  if (!(reader instanceof CardReader)) {
    throw new CardRelayError("invalid-argument", "the first argument must be a CardReader or an agent from connectAgent()");
  }
  const seram = options.dialect === "seram";
  if (seram && (typeof options.sessionId !== "string" || options.sessionId === "")) {
    throw new CardRelayError("invalid-argument", "the seram dialect needs a sessionId");
  }
  if (!seram && options.sessionId !== undefined && globalThis.document !== undefined) {
    throw new CardRelayError(
      "invalid-argument",
      "sessionId works in Node.js only: browsers forbid setting the Cookie header; the page's own cookies carry the session",
    );
  }
  const target = checkServerUrl(url);
  await approve(target, options);
  if (options.signal?.aborted) {
    throw new CardRelayError("aborted", "aborted before start");
  }
  if (pinRequested(options)) {
    await verifyPin(reader, options);
  }
  const fetch = await sessionFetch();
  try {
    const run = reader.route === "smartcard"
      ? (url, opts) => /** @type {SmartCardCore} */ (reader[CORE]).runUpdate(url, opts)
      : (url, opts) => enter(() => runCardUpdate(/** @type {ReaderCore} */ (reader[CORE]), url, opts));
    return await run(target.url, {
      fetch,
      dialect: options.dialect,
      slot: options.slot,
      timeout: options.timeout,
      agentId: options.agentId,
      credentials: options.credentials ?? (target.sameOrigin ? "same-origin" : "include"),
      showSecrets: options.showSecrets,
      onNotification: options.onNotification,
      onTrace: options.onTrace,
      signal: options.signal,
      sessionId: options.sessionId,
    });
  } finally {
    fetch?.close();
  }
}

// Statuses whose Response has no body (Fetch standard "null body status").
const NULL_BODY_STATUS = new Set([204, 205, 304]);

/**
 * Outside the browser (Node.js): a `fetch` for one card update that sends every request of
 * the session over one keep-alive connection, with node:http / node:https and an agent of
 * at most one socket. Node's own fetch spreads quick consecutive POSTs over a pool of
 * connections, and servers that keep one admin session per connection (SCP81, GP Amd B
 * admin servers) then see each POST as a new session. `close()` ends the connection.
 * Undefined in a browser, where the page's fetch and its cookies are used.
 */
async function sessionFetch() {
  if (globalThis.document !== undefined || !globalThis.process?.versions?.node) return undefined;
  // Kept out of bundlers' sight: browsers never load these.
  const load = (name) => import(/* webpackIgnore: true */ /* @vite-ignore */ name);
  const [http, https] = await Promise.all([load("node:http"), load("node:https")]);
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: 1 }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: 1 }),
  };
  const fetch = (url, init = {}) =>
    new Promise((resolve, reject) => {
      const target = new URL(url);
      const agent = agents[target.protocol];
      if (!agent) {
        reject(new TypeError(`fetch failed: unsupported protocol ${target.protocol}`));
        return;
      }
      const headers = {};
      new Headers(init.headers).forEach((value, name) => (headers[name] = value));
      const body = init.body ? Buffer.from(init.body.buffer, init.body.byteOffset, init.body.byteLength) : null;
      headers["content-length"] = String(body?.length ?? 0);
      const request = (target.protocol === "https:" ? https : http).request(
        target,
        { method: init.method ?? "GET", headers, agent, signal: init.signal ?? undefined },
        (response) => {
          const chunks = [];
          response.on("data", (chunk) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () => {
            const status = response.statusCode ?? 0;
            if (init.redirect === "error" && status >= 300 && status < 400 && response.headers.location) {
              reject(new TypeError(`fetch failed: redirect to ${response.headers.location} refused`));
              return;
            }
            const out = new Headers();
            for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) {
              out.append(response.rawHeaders[i], response.rawHeaders[i + 1]);
            }
            try {
              const payload = NULL_BODY_STATUS.has(status) ? null : Buffer.concat(chunks);
              resolve(new Response(payload, { status, statusText: response.statusMessage, headers: out }));
            } catch (e) {
              reject(new TypeError(`fetch failed: ${e.message}`));
            }
          });
        },
      );
      request.on("error", (e) => reject(e.name === "AbortError" ? e : new TypeError(`fetch failed: ${e.message}`)));
      request.end(body ?? undefined);
    });
  fetch.close = () => Object.values(agents).forEach((agent) => agent.destroy());
  return fetch;
}

/**
 * Reads the URL pages used to start the OCF daemon,
 * `http://localhost:27001/<x>.png?url=…&sessionId=…&pinrequired=…`, into cardUpdate options:
 * { url, sessionId, pinRequired }. Values are URL-decoded (the Java daemon truncated URLs
 * containing "=" or "&").
 *
 * @param {string} legacyUrl
 * @returns {LegacyRequest}
 */
export function parseLegacyUrl(legacyUrl) {
  let parsed;
  try {
    parsed = new URL(legacyUrl, "http://localhost:27001/");
  } catch (e) {
    // Not echoed: the URL may carry the session id.
    throw new CardRelayError("invalid-argument", "the legacy URL is not a url", { cause: e });
  }
  const url = parsed.searchParams.get("url");
  if (!url) {
    throw new CardRelayError("invalid-argument", "the legacy URL has no url parameter");
  }
  const out = { url };
  const session = parsed.searchParams.get("sessionId");
  if (session) out.sessionId = session;
  const pin = parsed.searchParams.get("pinrequired");
  if (pin !== null) {
    // As the agent's daemon reads it: a decimal 0..=255 is the reference, any other value
    // (present but not such a number) asks for the default reference.
    const digits = pin.trim();
    const n = /^\+?[0-9]+$/.test(digits) ? Number(digits) : NaN;
    out.pinRequired = n <= 255 ? n : true;
  }
  return out;
}

/**
 * Runs the update an old `<img src="http://localhost:27001/…">` page asked for. In a
 * browser the sessionId is not sent (the page's own cookies carry the session).
 *
 * @param {CardReader} reader
 * @param {string} legacyUrl
 * @param {CardUpdateOptions} [options]
 * @returns {Promise<CardUpdateResult>}
 */
export function cardUpdateFromLegacyUrl(reader, legacyUrl, options = {}) {
  const { url, sessionId, pinRequired } = parseLegacyUrl(legacyUrl);
  const merged = { ...options };
  if (pinRequired !== undefined && merged.pinRequired === undefined) merged.pinRequired = pinRequired;
  if (sessionId !== undefined && globalThis.document === undefined) merged.sessionId = sessionId;
  return cardUpdate(reader, url, merged);
}

// ---------------------------------------------------------------------------------------
// The local agent route: `card-relay --daemon` runs the update over PC/SC and streams its
// progress back (its page API: GET /v1/info, POST /v1/card-update with newline-delimited
// JSON events). Plain fetch, no WebAssembly: the agent runs the protocol.

/** Where `card-relay --daemon` listens unless told otherwise. */
export const DEFAULT_AGENT_ORIGIN = "http://127.0.0.1:27001";

/** How long connectAgent() waits for the agent's /v1/info before `agent-unreachable`. */
export const AGENT_CONNECT_TIMEOUT_MS = 2000;

const AGENT = Symbol("agent");

const AGENT_HINTS = Object.freeze({
  "agent-unreachable":
    "The card-relay agent did not answer: install or start it (card-relay --daemon), " +
    "and allow this site to reach it (the browser's local network permission).",
  "agent-refused":
    "The card-relay agent refused this site: approve it at the agent's terminal, or " +
    "add its origin to the agent's origins file.",
  "agent-busy": "The card-relay agent is running another update: wait for it to end, then try again.",
});

function agentError(code, message, cause) {
  return new CardRelayError(code, message, { hint: AGENT_HINTS[code], cause });
}

/**
 * A signal that aborts when `signal` does or after `ms`; `done()` drops the timer.
 * (AbortSignal.any is not in every browser this library supports.)
 */
function boundedSignal(signal, ms) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("timed out", "TimeoutError")), ms);
  const forward = () => controller.abort(signal.reason);
  if (signal?.aborted) forward();
  else signal?.addEventListener("abort", forward, { once: true });
  return {
    signal: controller.signal,
    done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", forward);
    },
  };
}

function agentOrigin(origin) {
  let parsed;
  try {
    parsed = new URL(String(origin));
  } catch (e) {
    throw new CardRelayError("invalid-argument", `not an agent origin: ${origin}`, { cause: e });
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new CardRelayError("invalid-argument", `not an agent origin: ${origin}`);
  }
  return parsed.origin;
}

/** GET /v1/info within AGENT_CONNECT_TIMEOUT_MS: `{ version, readers? }`. */
async function agentInfo(origin, signal) {
  const bound = boundedSignal(signal, AGENT_CONNECT_TIMEOUT_MS);
  try {
    const response = await fetch(`${origin}/v1/info`, { signal: bound.signal, cache: "no-store", credentials: "omit" });
    if (!response.ok) {
      throw agentError("agent-unreachable", `the agent at ${origin} answered http ${response.status}`);
    }
    const info = await response.json().catch(() => null);
    if (typeof info?.version !== "string") {
      throw agentError("agent-unreachable", `${origin} is not a card-relay agent`);
    }
    return info;
  } catch (e) {
    if (e instanceof CardRelayError) throw e;
    if (signal?.aborted) throw new CardRelayError("aborted", "aborted while connecting to the agent", { cause: e });
    if (bound.signal.aborted) {
      throw agentError("agent-unreachable", `no answer from the agent at ${origin} within ${AGENT_CONNECT_TIMEOUT_MS} ms`, e);
    }
    throw agentError("agent-unreachable", `the agent at ${origin} cannot be reached`, e);
  } finally {
    bound.done();
  }
}

/**
 * The local agent (`card-relay --daemon`), as connectAgent() found it. cardUpdate() takes it
 * in place of a CardReader.
 */
export class CardAgent {
  #origin;
  #version;

  /**
   * Not for direct use: see connectAgent().
   * @param {symbol} token
   * @param {string} origin
   * @param {{ version: string }} info
   */
  constructor(token, origin, info) {
    if (token !== AGENT) throw new TypeError("use connectAgent()");
    this.#origin = origin;
    this.#version = info.version;
  }

  /** The agent's origin, e.g. "http://127.0.0.1:27001". */
  get origin() { return this.#origin; }
  /** The agent's version. */
  get version() { return this.#version; }
  /**
   * "agent": the update runs in the local agent, over PC/SC.
   * @returns {"agent"}
   */
  get route() { return "agent"; }

  /**
   * The agent's PC/SC readers, `[{ name, cardPresent }]`; null while this page's origin is
   * not approved (the agent shows reader names to approved origins only: they identify a
   * machine). Rejects with `agent-unreachable` when the agent is gone.
   *
   * @param {{ signal?: AbortSignal }} [options]
   * @returns {Promise<AgentReader[] | null>}
   */
  async readers({ signal } = {}) {
    const info = await agentInfo(this.#origin, signal);
    if (!Array.isArray(info.readers)) return null;
    return info.readers
      .filter((r) => typeof r?.name === "string")
      .map((r) => ({ name: r.name, cardPresent: Boolean(r.cardPresent) }));
  }
}

/**
 * Finds the local agent at `origin` (default DEFAULT_AGENT_ORIGIN): resolves to a CardAgent,
 * or rejects with `agent-unreachable` within AGENT_CONNECT_TIMEOUT_MS when nothing answers
 * there (not installed, not running, or the browser's local network permission refused).
 *
 * @param {{ origin?: string, signal?: AbortSignal }} [options]
 * @returns {Promise<CardAgent>}
 */
export async function connectAgent({ origin = DEFAULT_AGENT_ORIGIN, signal } = {}) {
  const normal = agentOrigin(origin);
  const info = await agentInfo(normal, signal);
  return new CardAgent(AGENT, normal, info);
}

/** Statuses the agent refuses a page with before any stream starts. */
function agentStatusError(status, body, origin) {
  if (body && typeof body.code === "string" && ERROR_CODES.includes(body.code)) {
    return new CardRelayError(body.code, String(body.message ?? `agent: http ${status}`), {
      hint: typeof body.hint === "string" ? body.hint : AGENT_HINTS[body.code],
      status: typeof body.status === "number" ? body.status : undefined,
    });
  }
  if (status === 401 || status === 403) return agentError("agent-refused", `the agent at ${origin} refused this page`);
  if (status === 409 || status === 423 || status === 429 || status === 503) {
    return agentError("agent-busy", "the agent is running another update");
  }
  return new CardRelayError("protocol", `the agent answered http ${status}`);
}

/** The agent's newline-delimited JSON events, one object at a time. */
async function* ndjson(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffered += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line) yield parseEvent(line);
      }
      if (buffered.length > 1 << 20) throw new CardRelayError("protocol", "agent event longer than 1 MiB");
      if (done) {
        if (buffered.trim()) yield parseEvent(buffered.trim());
        return;
      }
    }
  } finally {
    // Closing the stream closes the request: the agent cancels the update.
    reader.cancel().catch(() => {});
  }
}

function parseEvent(line) {
  let event;
  try {
    event = JSON.parse(line);
  } catch (e) {
    throw new CardRelayError("protocol", "the agent sent an event that is not json", { cause: e });
  }
  if (event === null || typeof event !== "object" || typeof (event.type ?? event.event) !== "string") {
    throw new CardRelayError("protocol", "the agent sent an event without a type");
  }
  return event;
}

/**
 * cardUpdate() through the local agent. The agent asks its user for the page's origin, the
 * server and a PIN (terminal or PIN pad): `approve` and `pin` are not used on this route.
 *
 * @param {CardAgent} agent
 * @param {string} url
 * @param {CardUpdateOptions} options
 * @returns {Promise<CardUpdateResult>}
 */
async function agentUpdate(agent, url, options) {
  const seram = options.dialect === "seram";
  if (seram && (typeof options.sessionId !== "string" || options.sessionId === "")) {
    throw new CardRelayError("invalid-argument", "the seram dialect needs a sessionId");
  }
  const target = checkServerUrl(url);
  if (options.signal?.aborted) throw new CardRelayError("aborted", "aborted before start");
  const request = { url: target.url, dialect: options.dialect ?? "openscdp" };
  if (options.sessionId !== undefined) request.sessionId = options.sessionId;
  if (options.reader !== undefined) request.reader = String(options.reader);
  if (pinRequested(options)) request.pinRequired = options.pinRequired;
  if (options.pinSelect !== undefined) request.pinSelect = String(options.pinSelect);
  const started = performance.now();
  const aborted = (e) => new CardRelayError("aborted", "the card update was cancelled", { cause: e });
  let response;
  try {
    response = await fetch(`${agent.origin}/v1/card-update`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(request),
      signal: options.signal,
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    if (options.signal?.aborted) throw aborted(e);
    // The agent answers /v1/info to every origin but card updates (and their CORS) only to
    // approved ones: reachable there means refused here.
    const reachable = await agentInfo(agent.origin, options.signal).then(() => true, () => false);
    if (reachable) throw agentError("agent-refused", `the agent at ${agent.origin} refused this page`, e);
    throw agentError("agent-unreachable", `the agent at ${agent.origin} cannot be reached`, e);
  }
  if (!response.ok || !response.body) {
    const text = await response.text().catch(() => "");
    let body = null;
    try {
      body = JSON.parse(text.trim().split("\n").at(-1) ?? "");
    } catch {
      // Not JSON: the status decides.
    }
    throw agentStatusError(response.status, body, agent.origin);
  }
  let lastNotification = null;
  try {
    for await (const event of ndjson(response.body)) {
      switch (event.type ?? event.event) {
        case "notification":
          lastNotification = {
            code: Number(event.code),
            message: String(event.message ?? ""),
            timeToCompletion: typeof event.timeToCompletion === "number" ? event.timeToCompletion : null,
          };
          options.onNotification?.({ ...lastNotification });
          break;
        case "trace":
          options.onTrace?.(String(event.line ?? event.text ?? ""));
          break;
        case "result":
          return {
            // The agent's statuses are the library's ("completed", "ended-by-server").
            status: /** @type {CardUpdateResult["status"]} */ (String(event.status)),
            apdus: Number(event.apdus ?? 0),
            roundTrips: Number(event.roundTrips ?? 0),
            durationMs: Number(event.durationMs ?? performance.now() - started),
            lastNotification,
            targetedApplication: event.targetedApplication ?? null,
            route: "agent",
          };
        case "error":
          throw new CardRelayError(
            ERROR_CODES.includes(event.code) ? event.code : "protocol",
            String(event.message ?? event.code ?? "the agent reported an error"),
            {
              hint: typeof event.hint === "string" ? event.hint : AGENT_HINTS[event.code],
              status: typeof event.status === "number" ? event.status : undefined,
            },
          );
        default:
          // Events of later agent versions are skipped.
          break;
      }
    }
  } catch (e) {
    if (e instanceof CardRelayError) throw e;
    if (options.signal?.aborted) throw aborted(e);
    throw agentError("agent-unreachable", "the agent's stream broke off", e);
  }
  if (options.signal?.aborted) throw aborted();
  throw new CardRelayError("protocol", "the agent's stream ended without a result");
}
