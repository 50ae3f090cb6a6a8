// Types of the card-relay JavaScript API (js/card-relay.js).
/// <reference types="w3c-web-usb" />

/**
 * Initialises the WebAssembly module. Call (and await) once before anything else. Without an
 * argument the module is fetched next to the package's glue code (`new URL(..., import.meta.url)`,
 * which bundlers such as Vite follow); pass a URL, a Response or the bytes to load it elsewhere.
 *
 * @example
 * ```ts
 * import init, { version } from "card-relay";
 * await init();
 * console.log(`card-relay ${version()}`);
 * ```
 */
export default function init(
  module_or_path?: { module_or_path: RequestInfo | URL | Response | BufferSource | WebAssembly.Module } | RequestInfo | URL | Response | BufferSource | WebAssembly.Module,
): Promise<unknown>;

/**
 * The library version, e.g. "0.1.0".
 *
 * @example
 * ```ts
 * document.title = `card-relay ${version()}`;
 * ```
 */
export function version(): string;

/**
 * Every error code, in a stable order.
 *
 * @example
 * ```ts
 * const known = (code: string): code is CardRelayErrorCode =>
 *   (ERROR_CODES as readonly string[]).includes(code);
 * ```
 */
export const ERROR_CODES: readonly CardRelayErrorCode[];

/**
 * The stable code of a {@link CardRelayError}: what failed, for code that reacts to it. The
 * local agent route adds `agent-unreachable` (install or start the agent; allow this site to
 * reach it), `agent-refused` (the agent's user or origins file refused this site) and
 * `agent-busy` (the agent runs another update).
 *
 * @example
 * ```ts
 * function advice(code: CardRelayErrorCode): string {
 *   if (code === "agent-unreachable") return "Start card-relay --daemon";
 *   return code === "card-absent" ? "Insert your card" : "Try again";
 * }
 * ```
 */
export type CardRelayErrorCode =
  | "protected-interface"
  | "unsupported-reader"
  | "device-busy"
  | "permission-denied"
  | "card-absent"
  | "card-mute"
  | "disconnected"
  | "timeout"
  | "protocol"
  | "aborted"
  | "server-error"
  | "bad-script"
  | "not-approved"
  | "pin-failed"
  | "network-error"
  | "insecure-url"
  | "invalid-argument"
  | "csp-blocked"
  | "internal"
  | "service-unavailable"
  | "agent-unreachable"
  | "agent-refused"
  | "agent-busy";

/**
 * The error every card-relay call rejects with.
 *
 * @example
 * ```ts
 * try {
 *   await cardUpdate(reader, "/rt/test");
 * } catch (e) {
 *   if (e instanceof CardRelayError) console.log(e.code, e.message, e.hint);
 * }
 * ```
 */
export class CardRelayError extends Error {
  constructor(
    code: CardRelayErrorCode,
    message: string,
    options?: { hint?: string; status?: number; cause?: unknown },
  );
  /** Always "CardRelayError". */
  readonly name: "CardRelayError";
  /** A stable code. */
  readonly code: CardRelayErrorCode;
  /** What the user can do about it. */
  readonly hint?: string;
  /** The HTTP status of a `server-error`. */
  readonly status?: number;
}

/**
 * [vendorId, productId] of the readers with a vendor-class (0xFF) CCID interface.
 *
 * @example
 * ```ts
 * const vendorClass = VENDOR_CLASS_CCID_READERS.some(([v, p]) => v === dev.vendorId && p === dev.productId);
 * ```
 */
export const VENDOR_CLASS_CCID_READERS: readonly (readonly [number, number])[];
/**
 * The default WebUSB chooser filters: class 0x0B plus VENDOR_CLASS_CCID_READERS.
 *
 * @example
 * ```ts
 * const device = await navigator.usb.requestDevice({ filters: [...CCID_FILTERS] });
 * ```
 */
export const CCID_FILTERS: readonly USBDeviceFilter[];

/**
 * Node.js `usb` package (3.x) devices: how long one transfer may wait before it is issued
 * again (that package times every transfer out; card-relay's reads wait as WebUSB's do).
 *
 * @example
 * ```ts
 * console.log(`transfers are re-issued every ${NODE_USB_SLICE_MS} ms`);
 * ```
 */
export const NODE_USB_SLICE_MS: number;

/**
 * How the reader exchanges with the card (CCID 1.1 §5.1 dwFeatures): TPDUs (card-relay runs
 * T=0/T=1), short APDUs or extended APDUs.
 *
 * @example
 * ```ts
 * const level: ExchangeLevel | null = reader.exchangeLevel;
 * ```
 */
export type ExchangeLevel = "tpdu" | "short-apdu" | "extended-apdu";

/**
 * Selects a slot of a multi-slot reader.
 *
 * @example
 * ```ts
 * await reader.powerOff({ slot: 1 });
 * ```
 */
export interface SlotOptions {
  /** The slot number (default 0). */
  slot?: number;
}

/**
 * A slot, and a signal that ends the wait.
 *
 * @example
 * ```ts
 * const atr = await reader.powerOn({ slot: 0, signal: AbortSignal.timeout(5000) });
 * ```
 */
export interface CancellableSlotOptions extends SlotOptions {
  /** Aborting it rejects the call with code `aborted`. */
  signal?: AbortSignal;
}

/**
 * What a slot holds (CCID RDR_to_PC_SlotStatus).
 *
 * @example
 * ```ts
 * const { present, powered } = await reader.status();
 * ```
 */
export interface SlotStatus {
  /** A card is in the slot. */
  present: boolean;
  /** The card is powered. */
  powered: boolean;
  /** The ATR of a powered card. */
  atr: Uint8Array | null;
  /** The protocol in use, when the card is powered. */
  protocol: "T=0" | "T=1" | null;
}

/**
 * The events a {@link CardReader} dispatches.
 *
 * @example
 * ```ts
 * const type: CardReaderEventType = "cardremoved";
 * reader.addEventListener(type, () => console.log("card removed"));
 * ```
 */
export type CardReaderEventType = "cardinserted" | "cardremoved" | "disconnected" | "hardwareerror";

/**
 * An event about a reader; `slot` is undefined for `disconnected`.
 *
 * @example
 * ```ts
 * reader.addEventListener("cardinserted", (e) => console.log(`card in slot ${e.slot}`));
 * ```
 */
export class CardReaderEvent extends Event {
  constructor(type: CardReaderEventType, slot?: number, code?: number);
  readonly type: CardReaderEventType;
  /** The slot; undefined for `disconnected`. */
  readonly slot: number | undefined;
  /** A `hardwareerror`'s bHardwareErrorCode (CCID 1.1 §6.3.2: 0x01 overcurrent); else undefined. */
  readonly code: number | undefined;
}

/**
 * The event types of a {@link CardReader} and their event objects.
 *
 * @example
 * ```ts
 * const onEvent = (e: CardReaderEventMap["cardremoved"]) => console.log(e.slot);
 * ```
 */
export interface CardReaderEventMap {
  /** A card was inserted (CCID RDR_to_PC_NotifySlotChange). */
  cardinserted: CardReaderEvent;
  /** A card was removed. */
  cardremoved: CardReaderEvent;
  /** The reader was unplugged or closed. */
  disconnected: CardReaderEvent;
  /** The reader reported a hardware error (CCID RDR_to_PC_HardwareError). */
  hardwareerror: CardReaderEvent;
}

/**
 * Something that behaves like a USBDevice: a real one, or a simulated reader.
 *
 * @example
 * ```ts
 * const [device]: UsbDeviceLike[] = await CardReader.list();
 * ```
 */
export type UsbDeviceLike = USBDevice | SimulatedReader;

/**
 * A Web Smart Card API resource manager (`navigator.smartCard` in an Isolated Web App on
 * ChromeOS, or any object of that shape): only the members card-relay calls.
 *
 * @example
 * ```ts
 * const smartCard = (navigator as unknown as { smartCard: SmartCardResourceManagerLike }).smartCard;
 * ```
 */
export interface SmartCardResourceManagerLike {
  /** Web Smart Card API `SmartCardResourceManager.establishContext()`. */
  establishContext(): Promise<unknown>;
}

/**
 * Options of {@link CardReader.openSmartCard}.
 *
 * @example
 * ```ts
 * const reader = await CardReader.openSmartCard({ reader: "Virtual PCD 00 00" });
 * ```
 */
export interface OpenSmartCardOptions {
  /** The resource manager; default navigator.smartCard. */
  smartCard?: SmartCardResourceManagerLike;
  /** A reader name; default the first reader with a card (waiting for one if none has). */
  reader?: string;
  /** Ends the wait for a card, or the connection. */
  signal?: AbortSignal;
}

/**
 * A smart card reader on WebUSB, or through the Web Smart Card API (route "smartcard").
 *
 * @example
 * ```ts
 * button.addEventListener("click", async () => {
 *   const reader = await CardReader.request();
 *   const atr = await reader.powerOn();
 *   const response = await reader.transmit(Uint8Array.of(0x00, 0xa4, 0x04, 0x00, 0x00));
 *   await reader.close();
 * });
 * ```
 */
export class CardReader extends EventTarget {
  private constructor();
  /** Opens the chooser (in a user gesture) and opens the chosen reader. */
  static request(options?: { filters?: USBDeviceFilter[] }): Promise<CardReader>;
  /**
   * The smart card readers among `bus.getDevices()` (default navigator.usb; in Node.js the
   * `usb` package's `new WebUSB({ allowAllDevices: true })`), unopened.
   */
  static list(bus?: USB): Promise<USBDevice[]>;
  /**
   * Opens a device from getDevices(), or a simulated reader; `usb` is the WebUSB object it
   * came from (default navigator.usb), watched for `disconnect`.
   */
  static open(device: UsbDeviceLike, options?: { usb?: USB }): Promise<CardReader>;
  /** Opens a reader through the Web Smart Card API (Isolated Web Apps on ChromeOS). */
  static openSmartCard(options?: OpenSmartCardOptions): Promise<CardReader>;
  /** The reader names of a Web Smart Card API resource manager. */
  static listSmartCardReaders(options?: { smartCard?: SmartCardResourceManagerLike }): Promise<string[]>;
  /** How the reader is reached. */
  readonly route: "webusb" | "smartcard";
  /** The USB device; null on the smartcard route. */
  readonly device: UsbDeviceLike | null;
  /** The reader's name (USB product string, or the PC/SC reader name). */
  readonly name: string;
  /** null on the smartcard route. */
  readonly vendorId: number | null;
  /** null on the smartcard route. */
  readonly productId: number | null;
  /** How many slots the reader has (CCID bMaxSlotIndex + 1). */
  readonly slots: number;
  /** null on the smartcard route. */
  readonly exchangeLevel: ExchangeLevel | null;
  /**
   * Whether the reader has a PIN pad (on the smartcard route: PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT,
   * known only from the first connection to a card, false before).
   */
  readonly pinPad: boolean;
  /** 11 (class 0x0B) or 255 (vendor class); null on the smartcard route. */
  readonly interfaceClass: number | null;
  /** False once closed or unplugged. */
  readonly usable: boolean;
  /** Powers the card on; resolves to its ATR. */
  powerOn(options?: CancellableSlotOptions): Promise<Uint8Array>;
  /** Powers the card off. */
  powerOff(options?: SlotOptions): Promise<void>;
  /** What the slot holds. */
  status(options?: SlotOptions): Promise<SlotStatus>;
  /**
   * Sends a command APDU (bytes, or a string of hex digits, spaces allowed); resolves to the
   * response data followed by SW1 SW2.
   */
  transmit(apdu: Uint8Array | ArrayBuffer | string, options?: CancellableSlotOptions): Promise<Uint8Array>;
  /** Releases the interface and closes the device. */
  close(): Promise<void>;
  /** Listens to `cardinserted`, `cardremoved`, `disconnected` and `hardwareerror`. */
  addEventListener<K extends keyof CardReaderEventMap>(
    type: K,
    listener: (this: CardReader, ev: CardReaderEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Listens to any event type. */
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  /** Stops listening. */
  removeEventListener<K extends keyof CardReaderEventMap>(
    type: K,
    listener: (this: CardReader, ev: CardReaderEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  /** Stops listening to any event type. */
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

/**
 * A progress notification of the server (OpenSCDP RAMOverHTTP `<Notification>`, GP Amd B
 * `X-Admin-Script-Status`).
 *
 * @example
 * ```ts
 * await cardUpdate(reader, url, {
 *   onNotification: ({ message, timeToCompletion }) => console.log(message, timeToCompletion),
 * });
 * ```
 */
export interface Notification {
  /** The server's id; a negative one ends the session. */
  code: number;
  /** The server's text. */
  message: string;
  /** Seconds to completion, when the server says. */
  timeToCompletion: number | null;
}

/**
 * The answer of an `approve` callback: allow this session (`"once"`, or `true`), allow the
 * origin from now on, or refuse.
 *
 * @example
 * ```ts
 * const approve = (origin: string): Approval => (confirm(`Allow ${origin}?`) ? "once" : false);
 * ```
 */
export type Approval = "once" | "always" | true | false;

/**
 * Options of {@link cardUpdate}.
 *
 * @example
 * ```ts
 * const options: CardUpdateOptions = { dialect: "gp", timeout: 30_000, onTrace: console.log };
 * ```
 */
export interface CardUpdateOptions {
  /**
   * "openscdp" (default; the Scripting Server), "gp" (GlobalPlatform Amd B) or "seram"
   * (GlobalPlatform SERAM, HTTP REST binding: the URL is the Remote Agent's endpoint base,
   * `/handshake` and `/remoteManagement` are appended; `sessionId` is required).
   */
  dialect?: "openscdp" | "gp" | "seram";
  /** The reader slot of the card (default 0). */
  slot?: number;
  /** Milliseconds per HTTP exchange (default 60000; 40000 for "seram"). */
  timeout?: number;
  /** GP X-Admin-From. */
  agentId?: string;
  /** fetch credentials; default "include" for cross-origin servers, else "same-origin". */
  credentials?: RequestCredentials;
  /** Asked for servers that are neither same-origin nor already approved. */
  approve?: (origin: string) => Approval | Promise<Approval>;
  /** Verify the PIN locally first: true (reference 0x81), or the PIN reference (P2, an integer 0 to 255; 0 verifies reference 0). */
  pinRequired?: boolean | number;
  /** AID (hex) of the application holding the PIN, selected before VERIFY. */
  pinSelect?: string;
  /** Supplies the PIN when the card needs one and the reader has no PIN pad. */
  pin?: (info: { triesLeft: number | null }) => string | null | Promise<string | null>;
  /**
   * On a reader with a PIN pad the PIN is typed on the reader (default). `false` uses pin()
   * instead; an object sets the pad's digit limits, its wait in seconds (default 30) and a
   * padding byte (the PIN then fills a block of maxDigits bytes).
   */
  pinPad?: boolean | PinPadOptions;
  /** Called when the reader starts waiting for the PIN on its pad. */
  onPinPad?: (info: { triesLeft: number | null }) => void;
  /** Called for each notification of the server. */
  onNotification?: (notification: Notification) => void;
  /** One trace line in the OCF layout ("78 C: 00 20 00 81 - VERIFY"). */
  onTrace?: (line: string) => void;
  /** Show PIN data in the trace instead of "******". */
  showSecrets?: boolean;
  /** Ends the session; the call rejects with code `aborted`. */
  signal?: AbortSignal;
  /**
   * "seram": the SERAM session id (required), sent as the `sessionId` query parameter.
   * Other dialects, Node.js only: sent as Cookie: JSESSIONID=<id> (browsers forbid it).
   */
  sessionId?: string;
  /**
   * The local agent route only: the PC/SC reader name to use (from `agent.readers()`); the
   * agent picks one when absent. `approve`, `pin`, `pinPad`, `slot`, `timeout` and
   * `credentials` do not apply there: the agent asks its own user and runs the exchanges.
   *
   * @example
   * ```ts
   * const agent = await connectAgent();
   * await cardUpdate(agent, "https://ram.example/rt/test", { reader: "Virtual PCD 00 00" });
   * ```
   */
  reader?: string;
}

/**
 * A PIN pad's settings (PC/SC part 10 PIN_VERIFY_STRUCTURE).
 *
 * @example
 * ```ts
 * await cardUpdate(reader, url, { pinRequired: true, pinPad: { minDigits: 6, maxDigits: 8 } });
 * ```
 */
export interface PinPadOptions {
  /** Fewest digits the pad accepts (default 4). */
  minDigits?: number;
  /** Most digits the pad accepts (default 16; at most 15 with padding). */
  maxDigits?: number;
  /** Seconds the reader waits for the PIN (1 to 255, default 30). */
  timeout?: number;
  /** Padding byte of a fixed PIN block; default none (Lc is the PIN's length). */
  padding?: number;
}

/**
 * How a card update session ended.
 *
 * @example
 * ```ts
 * const { status, apdus, roundTrips } = await cardUpdate(reader, "/rt/test");
 * ```
 */
export interface CardUpdateResult {
  /** `completed`, or `ended-by-server` after a negative notification. */
  status: "completed" | "ended-by-server";
  /** Server C-APDUs the card ran. */
  apdus: number;
  /** HTTP exchanges. */
  roundTrips: number;
  /** Wall time of the session. */
  durationMs: number;
  /** The server's last notification. */
  lastNotification: Notification | null;
  /** The last `X-Admin-Targeted-Application` a GP server sent, else null. */
  targetedApplication: string | null;
  /**
   * "agent" when the local agent ran the update; absent when the page ran it.
   *
   * @example
   * ```ts
   * const result = await cardUpdate(reader, "/rt/test");
   * console.log(result.route === "agent" ? "via the local agent" : "from this page");
   * ```
   */
  route?: "agent";
}

/**
 * Runs a card update session: the server at `url` drives the card in `reader`, a
 * {@link CardReader} or the local agent from {@link connectAgent} (which then runs the
 * exchanges over PC/SC and streams the same callbacks back; the result has `route: "agent"`).
 *
 * @example
 * ```ts
 * const result = await cardUpdate(reader, "https://ram.example/rt/test", {
 *   approve: async (origin) => (confirm(`Allow ${origin}?`) ? "once" : false),
 *   onNotification: (n) => console.log(n.message),
 * });
 * console.log(`${result.apdus} APDUs`);
 * ```
 */
export function cardUpdate(reader: CardReader | CardAgent, url: string, options?: CardUpdateOptions): Promise<CardUpdateResult>;

/**
 * Where `card-relay --daemon` listens by default: "http://127.0.0.1:27001".
 *
 * @example
 * ```ts
 * const agent = await connectAgent({ origin: localStorage.agentOrigin ?? DEFAULT_AGENT_ORIGIN });
 * ```
 */
export const DEFAULT_AGENT_ORIGIN: string;

/**
 * How long {@link connectAgent} waits for the agent's answer before `agent-unreachable` (2000 ms).
 *
 * @example
 * ```ts
 * status.textContent = `Looking for the agent (at most ${AGENT_CONNECT_TIMEOUT_MS / 1000} s)…`;
 * ```
 */
export const AGENT_CONNECT_TIMEOUT_MS: number;

/**
 * A PC/SC reader as the local agent shows it to approved origins (`GET /v1/info`).
 *
 * @example
 * ```ts
 * const withCard = (await agent.readers())?.filter((r: AgentReader) => r.cardPresent) ?? [];
 * ```
 */
export interface AgentReader {
  /** The PC/SC reader name, e.g. "Virtual PCD 00 00"; pass it as `options.reader`. */
  name: string;
  /** Whether a card is in the reader. */
  cardPresent: boolean;
}

/**
 * The local agent (`card-relay --daemon`), from {@link connectAgent}; {@link cardUpdate} takes
 * it in place of a {@link CardReader}.
 *
 * @example
 * ```ts
 * const agent: CardAgent = await connectAgent();
 * const [first] = (await agent.readers()) ?? [];
 * await cardUpdate(agent, "https://ram.example/rt/test", { reader: first?.name });
 * ```
 */
export class CardAgent {
  private constructor();
  /** The agent's origin, e.g. "http://127.0.0.1:27001". */
  readonly origin: string;
  /** The agent's version, e.g. "0.1.0". */
  readonly version: string;
  /** "agent": the update runs in the local agent, over PC/SC. */
  readonly route: "agent";
  /**
   * The agent's readers; null while this page's origin is not approved by the agent (reader
   * names identify a machine). Rejects with `agent-unreachable` when the agent is gone.
   */
  readers(options?: {
    /** Ends the request; the call rejects with code `aborted`. */
    signal?: AbortSignal;
  }): Promise<AgentReader[] | null>;
}

/**
 * Finds the local agent; rejects with `agent-unreachable` within {@link AGENT_CONNECT_TIMEOUT_MS}
 * when nothing answers at `origin` (default {@link DEFAULT_AGENT_ORIGIN}). The recipe: try
 * {@link CardReader.request} first; on `protected-interface`, `device-busy` or no WebUSB, offer
 * the agent.
 *
 * @example
 * ```ts
 * let reader: CardReader | CardAgent;
 * try {
 *   reader = await CardReader.request();
 * } catch (e) {
 *   const code = (e as CardRelayError).code;
 *   if (code !== "protected-interface" && code !== "device-busy") throw e;
 *   reader = await connectAgent();
 * }
 * await cardUpdate(reader, "https://ram.example/rt/test");
 * ```
 */
export function connectAgent(options?: {
  /** The agent's origin (default {@link DEFAULT_AGENT_ORIGIN}). */
  origin?: string;
  /** Ends the search; the call rejects with code `aborted`. */
  signal?: AbortSignal;
}): Promise<CardAgent>;

/**
 * Checks a server URL: https, or http to localhost only.
 *
 * @example
 * ```ts
 * const { origin, sameOrigin } = checkServerUrl("https://ram.example/rt/test");
 * ```
 */
export function checkServerUrl(url: string): {
  /** The absolute URL. */
  url: string;
  /** Its origin. */
  origin: string;
  /** Whether it is the page's own origin. */
  sameOrigin: boolean;
};
/**
 * Origins approved "always".
 *
 * @example
 * ```ts
 * for (const origin of approvedServers()) console.log(origin);
 * ```
 */
export function approvedServers(): string[];
/**
 * Forgets an "always" approval.
 *
 * @example
 * ```ts
 * revokeServer("https://ram.example");
 * ```
 */
export function revokeServer(origin: string): void;

/**
 * What an OCF daemon URL asked for.
 *
 * @example
 * ```ts
 * const { url, sessionId }: LegacyRequest = parseLegacyUrl(img.src);
 * ```
 */
export interface LegacyRequest {
  /** The server URL (`url` parameter). */
  url: string;
  /** The session id (`sessionId` parameter). */
  sessionId?: string;
  /** The `pinrequired` parameter: true, or a PIN reference. */
  pinRequired?: boolean | number;
}
/**
 * Reads an OCF daemon URL (http://localhost:27001/x.png?url=…&sessionId=…&pinrequired=…).
 *
 * @example
 * ```ts
 * const request = parseLegacyUrl("http://localhost:27001/x.png?url=https%3A%2F%2Fram.example%2Frt");
 * ```
 */
export function parseLegacyUrl(legacyUrl: string): LegacyRequest;
/**
 * Runs the update an old `<img>` page asked the OCF daemon for.
 *
 * @example
 * ```ts
 * await cardUpdateFromLegacyUrl(reader, img.src, { onTrace: console.log });
 * ```
 */
export function cardUpdateFromLegacyUrl(reader: CardReader, legacyUrl: string, options?: CardUpdateOptions): Promise<CardUpdateResult>;

/**
 * A simulated reader (exported by builds with the simulator: the card-relay-simulator package).
 *
 * @example
 * ```ts
 * import { CardReader, createSimulatedReader } from "card-relay-simulator";
 * const sim = createSimulatedReader({ card: "seed" });
 * const reader = await CardReader.open(sim);
 * sim.removeCard();
 * ```
 */
export interface SimulatedReader {
  /** The simulated USB vendor id. */
  readonly vendorId: number;
  /** The simulated USB product id. */
  readonly productId: number;
  /** The simulated USB product string. */
  readonly productName: string | undefined;
  /** Whether the device is open. */
  readonly opened: boolean;
  /** Inserts a card (default the seed card) into a slot (default 0). */
  insertCard(card?: SimulatedCard, slot?: number): void;
  /** Removes the card from a slot (default 0). */
  removeCard(slot?: number): void;
  /** Signals an overcurrent (a `hardwareerror` event, code 1) on a slot (default 0). */
  hardwareError(slot?: number): void;
  /** Unplugs the reader. */
  disconnect(): void;
  /** Turns a fault on, e.g. `late` (a slow card). */
  setFault(name: string, value?: unknown): void;
  /** Turns every fault off. */
  clearFaults(): void;
}

/**
 * A simulated card: the seed's SmartCard-HSM, a PIN card, or one of them with another ATR.
 *
 * @example
 * ```ts
 * sim.insertCard({ app: "pin", atr: "3B 80 80 01 01" });
 * ```
 */
export type SimulatedCard =
  | "seed"
  | "pin"
  | {
      /** The card's application. */
      app: "seed" | "pin";
      /** The ATR (hex). */
      atr?: string;
      /** T=1 CRC form of a card whose ATR selects CRC: libccid's (default) or CRC-16/X-25. */
      crc?: "libccid" | "x25";
    };
