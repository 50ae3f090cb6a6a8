// Types of the card-relay JavaScript API (js/card-relay.js).
/// <reference types="w3c-web-usb" />

/** Initialises the WebAssembly module. Call (and await) once before anything else. */
export default function init(
  module_or_path?: { module_or_path: RequestInfo | URL | Response | BufferSource | WebAssembly.Module } | RequestInfo | URL | Response | BufferSource | WebAssembly.Module,
): Promise<unknown>;

/** The library version, e.g. "0.1.0". */
export function version(): string;

/** Every error code, in a stable order. */
export const ERROR_CODES: readonly CardRelayErrorCode[];

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

/** The error every card-relay call rejects with. */
export class CardRelayError extends Error {
  constructor(
    code: CardRelayErrorCode,
    message: string,
    options?: { hint?: string; status?: number; cause?: unknown },
  );
  readonly name: "CardRelayError";
  /** A stable code. */
  readonly code: CardRelayErrorCode;
  /** What the user can do about it. */
  readonly hint?: string;
  /** The HTTP status of a `server-error`. */
  readonly status?: number;
}

/** [vendorId, productId] of the readers with a vendor-class (0xFF) CCID interface. */
export const VENDOR_CLASS_CCID_READERS: readonly (readonly [number, number])[];
/** The default WebUSB chooser filters: class 0x0B plus VENDOR_CLASS_CCID_READERS. */
export const CCID_FILTERS: readonly USBDeviceFilter[];

/**
 * Node.js `usb` package (3.x) devices: how long one transfer may wait before it is issued
 * again (that package times every transfer out; card-relay's reads wait as WebUSB's do).
 */
export const NODE_USB_SLICE_MS: number;

export type ExchangeLevel = "tpdu" | "short-apdu" | "extended-apdu";

export interface SlotOptions {
  /** The slot number (default 0). */
  slot?: number;
}

export interface CancellableSlotOptions extends SlotOptions {
  signal?: AbortSignal;
}

export interface SlotStatus {
  present: boolean;
  powered: boolean;
  atr: Uint8Array | null;
  protocol: "T=0" | "T=1" | null;
}

export type CardReaderEventType = "cardinserted" | "cardremoved" | "disconnected" | "hardwareerror";

/** An event about a reader; `slot` is undefined for `disconnected`. */
export class CardReaderEvent extends Event {
  constructor(type: CardReaderEventType, slot?: number);
  readonly type: CardReaderEventType;
  readonly slot: number | undefined;
}

export interface CardReaderEventMap {
  cardinserted: CardReaderEvent;
  cardremoved: CardReaderEvent;
  disconnected: CardReaderEvent;
  hardwareerror: CardReaderEvent;
}

/** Something that behaves like a USBDevice: a real one, or a simulated reader. */
export type UsbDeviceLike = USBDevice | SimulatedReader;

/**
 * A Web Smart Card API resource manager (`navigator.smartCard` in an Isolated Web App on
 * ChromeOS, or any object of that shape): only the members card-relay calls.
 */
export interface SmartCardResourceManagerLike {
  establishContext(): Promise<unknown>;
}

export interface OpenSmartCardOptions {
  /** The resource manager; default navigator.smartCard. */
  smartCard?: SmartCardResourceManagerLike;
  /** A reader name; default the first reader with a card (waiting for one if none has). */
  reader?: string;
  /** Ends the wait for a card, or the connection. */
  signal?: AbortSignal;
}

/** A smart card reader on WebUSB, or through the Web Smart Card API (route "smartcard"). */
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
  readonly name: string;
  /** null on the smartcard route. */
  readonly vendorId: number | null;
  /** null on the smartcard route. */
  readonly productId: number | null;
  readonly slots: number;
  /** null on the smartcard route. */
  readonly exchangeLevel: ExchangeLevel | null;
  /** Whether the reader has a PIN pad (on the smartcard route: PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT). */
  readonly pinPad: boolean;
  /** 11 (class 0x0B) or 255 (vendor class); null on the smartcard route. */
  readonly interfaceClass: number | null;
  /** False once closed or unplugged. */
  readonly usable: boolean;
  /** Powers the card on; resolves to its ATR. */
  powerOn(options?: CancellableSlotOptions): Promise<Uint8Array>;
  powerOff(options?: SlotOptions): Promise<void>;
  status(options?: SlotOptions): Promise<SlotStatus>;
  /** Sends a command APDU; resolves to the response data followed by SW1 SW2. */
  transmit(apdu: Uint8Array, options?: CancellableSlotOptions): Promise<Uint8Array>;
  /** Releases the interface and closes the device. */
  close(): Promise<void>;
  addEventListener<K extends keyof CardReaderEventMap>(
    type: K,
    listener: (this: CardReader, ev: CardReaderEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof CardReaderEventMap>(
    type: K,
    listener: (this: CardReader, ev: CardReaderEventMap[K]) => unknown,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

export interface Notification {
  /** The server's id; a negative one ends the session. */
  code: number;
  message: string;
  /** Seconds to completion, when the server says. */
  timeToCompletion: number | null;
}

export type Approval = "once" | "always" | false;

export interface CardUpdateOptions {
  /**
   * "openscdp" (default; the Scripting Server), "gp" (GlobalPlatform Amd B) or "seram"
   * (GlobalPlatform SERAM, HTTP REST binding: the URL is the Remote Agent's endpoint base,
   * `/handshake` and `/remoteManagement` are appended; `sessionId` is required).
   */
  dialect?: "openscdp" | "gp" | "seram";
  slot?: number;
  /** Milliseconds per HTTP exchange (default 60000; 40000 for "seram"). */
  timeout?: number;
  /** GP X-Admin-From. */
  agentId?: string;
  /** fetch credentials; default "include" for cross-origin servers, else "same-origin". */
  credentials?: RequestCredentials;
  /** Asked for servers that are neither same-origin nor already approved. */
  approve?: (origin: string) => Approval | Promise<Approval>;
  /** Verify the PIN locally first: true, or the PIN reference (P2; default 0x81). */
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
  onNotification?: (notification: Notification) => void;
  /** One trace line in the OCF layout ("78 C: 00 20 00 81 - VERIFY"). */
  onTrace?: (line: string) => void;
  /** Show PIN data in the trace instead of "******". */
  showSecrets?: boolean;
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
   */
  reader?: string;
}

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

export interface CardUpdateResult {
  status: "completed" | "ended-by-server";
  /** Server C-APDUs the card ran. */
  apdus: number;
  /** HTTP exchanges. */
  roundTrips: number;
  durationMs: number;
  lastNotification: { code: number; message: string } | null;
  /** The last `X-Admin-Targeted-Application` a GP server sent, else null. */
  targetedApplication: string | null;
  /** "agent" when the local agent ran the update. */
  route?: "agent";
}

/**
 * Runs a card update session: the server at `url` drives the card in `reader`, a CardReader
 * or the local agent (from connectAgent()).
 */
export function cardUpdate(reader: CardReader | CardAgent, url: string, options?: CardUpdateOptions): Promise<CardUpdateResult>;

/** Where `card-relay --daemon` listens by default: "http://127.0.0.1:27001". */
export const DEFAULT_AGENT_ORIGIN: string;
/** How long connectAgent() waits before `agent-unreachable` (2000 ms). */
export const AGENT_CONNECT_TIMEOUT_MS: number;

/** A PC/SC reader as the local agent shows it to approved origins. */
export interface AgentReader {
  name: string;
  cardPresent: boolean;
}

/** The local agent (`card-relay --daemon`), from connectAgent(). */
export class CardAgent {
  private constructor();
  /** The agent's origin, e.g. "http://127.0.0.1:27001". */
  readonly origin: string;
  readonly version: string;
  readonly route: "agent";
  /** The agent's readers; null while this page's origin is not approved by the agent. */
  readers(options?: { signal?: AbortSignal }): Promise<AgentReader[] | null>;
}

/**
 * Finds the local agent; rejects with `agent-unreachable` within 2 s when nothing answers at
 * `origin` (default DEFAULT_AGENT_ORIGIN).
 */
export function connectAgent(options?: { origin?: string; signal?: AbortSignal }): Promise<CardAgent>;

/** Checks a server URL: https, or http to localhost only. */
export function checkServerUrl(url: string): { url: string; origin: string; sameOrigin: boolean };
/** Origins approved "always". */
export function approvedServers(): string[];
/** Forgets an "always" approval. */
export function revokeServer(origin: string): void;

export interface LegacyRequest {
  url: string;
  sessionId?: string;
  pinRequired?: boolean | number;
}
/** Reads an OCF daemon URL (http://localhost:27001/x.png?url=…&sessionId=…&pinrequired=…). */
export function parseLegacyUrl(legacyUrl: string): LegacyRequest;
/** Runs the update an old `<img>` page asked the OCF daemon for. */
export function cardUpdateFromLegacyUrl(reader: CardReader, legacyUrl: string, options?: CardUpdateOptions): Promise<CardUpdateResult>;

/** A simulated reader (exported by builds with the simulator). */
export interface SimulatedReader {
  readonly vendorId: number;
  readonly productId: number;
  readonly productName: string | undefined;
  readonly opened: boolean;
  insertCard(card?: SimulatedCard): void;
  removeCard(): void;
  disconnect(): void;
  setFault(name: string, value?: unknown): void;
  clearFaults(): void;
}

export type SimulatedCard =
  | "seed"
  | "pin"
  | {
      app: "seed" | "pin";
      atr?: string;
      /** T=1 CRC form of a card whose ATR selects CRC: libccid's (default) or CRC-16/X-25. */
      crc?: "libccid" | "x25";
    };
