//! The wasm exports under the JavaScript API.
//!
//! The public API is `js/card-relay.js` (with `js/card-relay.d.ts`): `CardReader extends
//! EventTarget`, `CardRelayError extends Error` and `cardUpdate()` need real JS classes,
//! which wasm-bindgen cannot declare. That file is a thin layer over the exports here:
//! [`ReaderCore`] (one open reader) and [`run_card_update`]. Every error leaving this module
//! is a real `Error` with `name = "CardRelayError"`, a stable `code`, a `hint` saying what
//! the user can do, and `status` for server errors; nothing here panics on JS input.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

use crate::driver::sync::Abort;
use crate::driver::update::{self, UpdateError, UpdateObserver, UpdateOptions};
use crate::driver::{CcidDriver, DriverError, DriverEvent, ErrorCode};
use crate::reader::{Command, ReaderError};
use crate::session::{Dialect, Notification};
use crate::web::clock::WebClock;
use crate::web::fetch::{Credentials, WebFetch};
use crate::web::pin::{verify_promise, PinOptions};
use crate::web::smartcard::WebChannel;
use crate::web::usb::WebUsb;

/// The promise of an export's result ([`crate::web::promise::promise`]: polled once within
/// the call, the rest as a task). Boxed as one `dyn Future` type: one instance of the task
/// machinery for every export (issue 18: the per-APDU cost at the JS boundary, and the
/// bundle).
pub(crate) fn future_to_promise(
    future: impl Future<Output = Result<JsValue, JsValue>> + 'static,
) -> js_sys::Promise {
    crate::web::promise::promise(Box::pin(future))
}

/// Builds the error object JavaScript receives.
pub fn js_error(code: ErrorCode, message: &str, status: Option<u16>) -> JsValue {
    hinted_error(code, message, status, code.hint())
}

/// [`js_error`] with a hint of its own.
pub(crate) fn hinted_error(
    code: ErrorCode,
    message: &str,
    status: Option<u16>,
    hint: &str,
) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("CardRelayError");
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&error, &JsValue::from_str(k), &v);
    };
    set("code", JsValue::from_str(code.as_str()));
    set("hint", JsValue::from_str(hint));
    if let Some(s) = status {
        set("status", JsValue::from(s));
    }
    error.into()
}

pub(crate) fn driver_error(e: &DriverError) -> JsValue {
    hinted_error(e.code(), &e.to_string(), None, e.hint())
}

fn update_error(e: &UpdateError) -> JsValue {
    let hint = match e {
        UpdateError::Driver(d) => d.hint(),
        other => other.code().hint(),
    };
    hinted_error(e.code(), &e.to_string(), e.http_status(), hint)
}

pub(crate) fn invalid(message: &str) -> JsValue {
    js_error(ErrorCode::InvalidArgument, message, None)
}

#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    /// Adds an "abort" listener to `signal` that calls `f` through platform.js's trap
    /// guard; returns the listener, for `removeEventListener`.
    #[wasm_bindgen(js_name = onAbort)]
    fn on_abort(signal: &AbortSignal, f: &JsValue) -> JsValue;
}

/// Bridges an `AbortSignal` to an [`Abort`] for the duration of one call.
pub(crate) struct SignalLink {
    pub(crate) abort: Abort,
    signal: Option<AbortSignal>,
    /// The Rust closure and the JavaScript listener that calls it.
    listener: Option<(Closure<dyn FnMut()>, JsValue)>,
}

impl SignalLink {
    pub(crate) fn new(signal: Option<AbortSignal>) -> Self {
        let abort = Abort::new();
        let Some(signal) = signal else {
            return Self {
                abort,
                signal: None,
                listener: None,
            };
        };
        if signal.aborted() {
            abort.abort();
        }
        let fire = abort.clone();
        let listener = Closure::<dyn FnMut()>::new(move || fire.abort());
        let handler = on_abort(&signal, listener.as_ref());
        Self {
            abort,
            signal: Some(signal),
            listener: Some((listener, handler)),
        }
    }
}

impl Drop for SignalLink {
    fn drop(&mut self) {
        if let (Some(signal), Some((_, handler))) = (&self.signal, &self.listener) {
            let _ = signal.remove_event_listener_with_callback("abort", handler.unchecked_ref());
        }
    }
}

fn signal_from(value: &JsValue) -> Option<AbortSignal> {
    (!value.is_undefined() && !value.is_null()).then(|| value.clone().unchecked_into())
}

fn slot_from(value: &JsValue) -> Result<u8, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(0);
    }
    value
        .as_f64()
        .filter(|v| v.fract() == 0.0 && (0.0..=255.0).contains(v))
        .map(|v| v as u8)
        .ok_or_else(|| invalid("slot must be an integer from 0 to 255"))
}

// The shapes the exports below take and give, for the `.d.ts` wasm-bindgen writes
// (`unchecked_param_type` / `unchecked_return_type` name them): the JavaScript layer is
// type-checked against these (tests/ts/tsconfig.layer.json), so they are exact.
#[wasm_bindgen(typescript_custom_section)]
const GLUE_TYPES: &str = r#"
/** `(type, slot, code)` of a reader event; `code` is a hardwareerror's bHardwareErrorCode. */
export type EventHandler = (
  type: "cardinserted" | "cardremoved" | "hardwareerror" | "disconnected",
  slot: number | undefined,
  code: number | undefined,
) => void;
/** Called when the reader starts waiting for the PIN on its pad. */
export type PinPadListener = (triesLeft: number | null) => void;
/** Asks the user for the PIN; null cancels. */
export type PinSource = (triesLeft: number | null) => Promise<string | null>;
/** A slot's state. */
export interface SlotState {
  present: boolean;
  powered: boolean;
  atr: Uint8Array | null;
  protocol: "T=0" | "T=1" | null;
}
/** A notification of the server (RAMOverHTTP `NotificationID`, `TimeToCompletion`). */
export interface UpdateNotification {
  code: number;
  message: string;
  timeToCompletion: number | null;
}
/** The options `runCardUpdate` reads. */
export interface UpdateOptions {
  fetch?: typeof fetch;
  dialect?: "openscdp" | "gp" | "seram";
  slot?: number;
  timeout?: number;
  agentId?: string;
  credentials?: RequestCredentials;
  showSecrets?: boolean;
  onNotification?: (notification: UpdateNotification) => void;
  onTrace?: (line: string) => void;
  signal?: AbortSignal;
  sessionId?: string;
}
/** What `runCardUpdate` resolves to. */
export interface UpdateResult {
  status: "completed" | "ended-by-server";
  apdus: number;
  roundTrips: number;
  durationMs: number;
  lastNotification: UpdateNotification | null;
  targetedApplication: string | null;
}
"#;

/// One open reader: the driver and its event handler.
#[wasm_bindgen]
#[derive(Debug)]
pub struct ReaderCore {
    driver: Rc<CcidDriver<WebUsb>>,
    handler: Rc<RefCell<Option<Function>>>,
}

#[wasm_bindgen]
impl ReaderCore {
    /// Opens `device` (a `USBDevice` or an object shaped like one) and claims its CCID
    /// interface. Resolves to a `ReaderCore`.
    #[wasm_bindgen(js_name = open, unchecked_return_type = "Promise<ReaderCore>")]
    pub fn open(
        #[wasm_bindgen(unchecked_param_type = "object")] device: JsValue,
    ) -> js_sys::Promise {
        future_to_promise(async move {
            if device.is_undefined() || device.is_null() {
                return Err(invalid("no device given"));
            }
            let usb = WebUsb::new(device);
            let driver = CcidDriver::open(usb, Rc::new(WebClock))
                .await
                .map_err(|e| driver_error(&e))?;
            let core = ReaderCore {
                driver: Rc::new(driver),
                handler: Rc::new(RefCell::new(None)),
            };
            let handler = Rc::clone(&core.handler);
            core.driver.set_event_sink(move |ev| {
                let Some(f) = handler.borrow().clone() else {
                    return;
                };
                let (kind, slot, code) = event_args(&ev);
                let _ = f.call3(&JsValue::UNDEFINED, &JsValue::from_str(kind), &slot, &code);
            });
            let watcher = Rc::clone(&core.driver);
            crate::web::promise::spawn(Box::pin(async move { watcher.watch().await }));
            Ok(core.into())
        })
    }

    /// Receives `(type, slot, code)` for `cardinserted`, `cardremoved`, `hardwareerror` and
    /// `disconnected`; `code` is the `hardwareerror`'s bHardwareErrorCode, else undefined.
    #[wasm_bindgen(js_name = setEventHandler)]
    pub fn set_event_handler(
        &self,
        #[wasm_bindgen(unchecked_param_type = "EventHandler | undefined")] handler: Option<
            Function,
        >,
    ) {
        *self.handler.borrow_mut() = handler;
    }

    /// The product name, or "Reader VVVV:PPPP".
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.driver.description().name()
    }

    /// idVendor.
    #[wasm_bindgen(getter, js_name = vendorId)]
    pub fn vendor_id(&self) -> u16 {
        self.driver.description().device.vendor_id
    }

    /// idProduct.
    #[wasm_bindgen(getter, js_name = productId)]
    pub fn product_id(&self) -> u16 {
        self.driver.description().device.product_id
    }

    /// Number of slots (bMaxSlotIndex + 1).
    #[wasm_bindgen(getter)]
    pub fn slots(&self) -> u32 {
        u32::try_from(self.driver.description().descriptor().slot_count()).unwrap_or(u32::MAX)
    }

    /// `"tpdu"`, `"short-apdu"` or `"extended-apdu"`.
    #[wasm_bindgen(
        getter,
        js_name = exchangeLevel,
        unchecked_return_type = "\"tpdu\" | \"short-apdu\" | \"extended-apdu\""
    )]
    pub fn exchange_level(&self) -> String {
        self.driver.exchange_level().name().to_owned()
    }

    /// Whether the reader has a PIN pad (bPINSupport verify).
    #[wasm_bindgen(getter, js_name = pinPad)]
    pub fn pin_pad(&self) -> bool {
        self.driver.description().descriptor().pin_verify()
    }

    /// The CCID interface's class: 11 (0x0B) or 255 (vendor class).
    #[wasm_bindgen(getter, js_name = interfaceClass)]
    pub fn interface_class(&self) -> u8 {
        self.driver.description().interface.class
    }

    /// dwMaxCCIDMessageLength.
    #[wasm_bindgen(getter, js_name = maxMessageLength)]
    pub fn max_message_length(&self) -> u32 {
        self.driver.description().descriptor().max_message_length()
    }

    /// Whether the reader can still be used (not closed, not unplugged).
    #[wasm_bindgen(getter)]
    pub fn usable(&self) -> bool {
        self.driver.is_usable()
    }

    /// Powers the card on; resolves to its ATR (`Uint8Array`).
    #[wasm_bindgen(js_name = powerOn, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn power_on(&self, slot: u8, signal: Option<AbortSignal>) -> js_sys::Promise {
        self.request(Request::PowerOn(slot), signal)
    }

    /// Powers the card off.
    #[wasm_bindgen(js_name = powerOff, unchecked_return_type = "Promise<void>")]
    pub fn power_off(&self, slot: u8) -> js_sys::Promise {
        self.request(Request::PowerOff(slot), None)
    }

    /// Resolves to `{ present, powered, atr, protocol }` for the slot.
    #[wasm_bindgen(unchecked_return_type = "Promise<SlotState>")]
    pub fn status(&self, slot: u8) -> js_sys::Promise {
        self.request(Request::Status(slot), None)
    }

    /// Sends a command APDU (powering the card on first if needed); resolves to the
    /// response data followed by SW1 SW2.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn transmit(
        &self,
        apdu: Vec<u8>,
        slot: u8,
        signal: Option<AbortSignal>,
    ) -> js_sys::Promise {
        self.request(Request::Transmit(slot, apdu), signal)
    }

    /// The local PIN check of `cardUpdate` ([`crate::pin`]): SELECT of the PIN's
    /// application when asked, VERIFY without data for the PIN's state, the PIN typed on
    /// the PIN pad (CCID PC_to_RDR_Secure) when `options` says so, else asked with
    /// `pin(triesLeft)`, VERIFY with it. Powers the card on first if needed. Resolves once
    /// the card accepted the PIN; rejects with `pin-failed` (wrong, blocked, refused),
    /// `aborted` (cancelled), or the error of `pin()` itself.
    #[wasm_bindgen(js_name = verifyPin, unchecked_return_type = "Promise<void>")]
    pub fn verify_pin(
        &self,
        slot: u8,
        options: PinOptions,
        #[wasm_bindgen(js_name = onPinPad, unchecked_param_type = "PinPadListener | undefined")]
        on_pad: Option<Function>,
        #[wasm_bindgen(unchecked_param_type = "PinSource | undefined")] pin: Option<Function>,
        signal: Option<AbortSignal>,
    ) -> js_sys::Promise {
        let channel = WebChannel::Usb(Rc::clone(&self.driver));
        verify_promise(channel, slot, options, on_pad, pin, signal)
    }

    /// Whether someone listens for card events or waits for a card: slot polling (a reader
    /// whose interrupt endpoint is missing or failing) runs only while someone does.
    #[wasm_bindgen(js_name = setListening)]
    pub fn set_listening(&self, listening: bool) {
        self.driver.set_listening(listening);
    }

    /// Marks the device as unplugged (the page saw `navigator.usb`'s `disconnect`).
    #[wasm_bindgen(js_name = markDisconnected)]
    pub fn mark_disconnected(&self) {
        self.driver.mark_disconnected();
    }

    /// Releases the interface and closes the device.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> js_sys::Promise {
        self.request(Request::Close, None)
    }
}

/// What an export of [`ReaderCore`] asks of the driver (the slot first).
#[derive(Debug)]
enum Request {
    PowerOn(u8),
    PowerOff(u8),
    Status(u8),
    Transmit(u8, Vec<u8>),
    Close,
}

impl ReaderCore {
    /// The promise of every export that waits for the driver. One future type for all of
    /// them, so the wasm holds one state machine, one drop and one instance of the task
    /// machinery instead of one per export (issue 18: each distinct async state machine
    /// across the JS boundary costs bundle bytes). Power on and transmit heed `signal`.
    fn request(&self, request: Request, signal: Option<AbortSignal>) -> js_sys::Promise {
        let driver = Rc::clone(&self.driver);
        future_to_promise(async move {
            let link = SignalLink::new(signal);
            let abort = Some(&link.abort);
            // Each operation answers its own type (no result to narrow); one async block
            // for all of them.
            let done = match request {
                Request::PowerOn(slot) => {
                    let on = driver.power_on(slot, abort).await;
                    on.map(|on| Uint8Array::from(on.atr.as_slice()).into())
                }
                Request::PowerOff(slot) => {
                    driver.power_off(slot).await.map(|()| JsValue::UNDEFINED)
                }
                Request::Status(slot) => {
                    let icc = driver.status(slot).await;
                    icc.map(|icc| slot_state(&driver, slot, icc))
                }
                Request::Transmit(slot, apdu) => {
                    // Parsed once, here: every layer below takes the typed command.
                    let command = command_from(apdu)?;
                    // The one decision "power on first" (`CardChannel::power_on`).
                    match crate::channel::CardChannel::power_on(driver.as_ref(), slot, abort).await
                    {
                        Ok(_) => {
                            let response = driver.transmit(slot, command, abort).await;
                            response.map(|r| Uint8Array::from(r.as_slice()).into())
                        }
                        Err(e) => Err(e),
                    }
                }
                Request::Close => {
                    driver.close().await;
                    Ok(JsValue::UNDEFINED)
                }
            };
            done.map_err(|e| driver_error(&e))
        })
    }
}

/// `{ present, powered, atr, protocol }` of `slot` after its GetSlotStatus answered `icc`.
fn slot_state(
    driver: &CcidDriver<WebUsb>,
    slot: u8,
    icc: crate::proto::ccid::IccStatus,
) -> JsValue {
    let out = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&out, &JsValue::from_str(k), &v);
    };
    let atr = driver.atr(slot);
    set(
        "present",
        JsValue::from(!matches!(icc, crate::proto::ccid::IccStatus::Absent)),
    );
    set("powered", JsValue::from(atr.is_some()));
    set(
        "atr",
        atr.map_or(JsValue::NULL, |a| Uint8Array::from(a.as_slice()).into()),
    );
    set(
        "protocol",
        driver.protocol(slot).map_or(JsValue::NULL, |p| {
            JsValue::from_str(if p == 1 { "T=1" } else { "T=0" })
        }),
    );
    out.into()
}

/// The `(type, slot, code)` a driver event reaches the JavaScript layer as: `slot` is
/// undefined for `disconnected`, `code` is set for `hardwareerror` only (its
/// bHardwareErrorCode, CCID 1.1 §6.3.2: 0x01 overcurrent).
pub(crate) fn event_args(event: &DriverEvent) -> (&'static str, JsValue, JsValue) {
    match *event {
        DriverEvent::CardInserted(s) => ("cardinserted", s.into(), JsValue::UNDEFINED),
        DriverEvent::CardRemoved(s) => ("cardremoved", s.into(), JsValue::UNDEFINED),
        DriverEvent::HardwareError { slot, code } => ("hardwareerror", slot.into(), code.into()),
        DriverEvent::Disconnected => ("disconnected", JsValue::UNDEFINED, JsValue::UNDEFINED),
    }
}

/// The command APDU of a `transmit` call, parsed once, here where it enters (ISO/IEC 7816-4
/// §5.1): every layer below takes the typed command.
pub(crate) fn command_from(bytes: Vec<u8>) -> Result<Command, JsValue> {
    Command::parse(bytes).map_err(|e| driver_error(&DriverError::Reader(ReaderError::Apdu(e))))
}

fn get(options: &JsValue, key: &str) -> JsValue {
    if options.is_object() {
        Reflect::get(options, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

struct JsObserver {
    on_notification: Option<Function>,
    on_trace: Option<Function>,
}

impl UpdateObserver for JsObserver {
    fn notification(&self, n: &Notification) {
        if let Some(f) = &self.on_notification {
            let o = Object::new();
            let _ = Reflect::set(&o, &"code".into(), &JsValue::from(n.id));
            let _ = Reflect::set(&o, &"message".into(), &JsValue::from_str(&n.message));
            let ttc = n.time_to_completion.map_or(JsValue::NULL, JsValue::from);
            let _ = Reflect::set(&o, &"timeToCompletion".into(), &ttc);
            let _ = f.call1(&JsValue::UNDEFINED, &o);
        }
    }

    fn trace(&self, line: &str) {
        if let Some(f) = &self.on_trace {
            let _ = f.call1(&JsValue::UNDEFINED, &JsValue::from_str(line));
        }
    }
}

/// Runs a card update session on `reader` against `url`. `options` (all optional):
/// `dialect` ("openscdp" | "gp" | "seram"), `slot`, `timeout` (ms per HTTP exchange; 40 s by
/// default for "seram"), `sessionId` (required for "seram"), `agentId`,
/// `credentials` ("same-origin" | "include" | "omit"), `showSecrets`, `onNotification`,
/// `onTrace`, `signal`, `sessionId`. Resolves to `{ status, apdus, roundTrips, durationMs,
/// lastNotification, targetedApplication }`.
#[wasm_bindgen(js_name = runCardUpdate, unchecked_return_type = "Promise<UpdateResult>")]
pub fn run_card_update(
    reader: &ReaderCore,
    url: String,
    #[wasm_bindgen(unchecked_param_type = "UpdateOptions")] options: JsValue,
) -> js_sys::Promise {
    update_promise(WebChannel::Usb(Rc::clone(&reader.driver)), url, options)
}

/// [`run_card_update`] over either card channel of the browser build (one type, so the
/// update loop is compiled once).
pub(crate) fn update_promise(driver: WebChannel, url: String, options: JsValue) -> js_sys::Promise {
    future_to_promise(async move {
        let mut opts = UpdateOptions::new(url);
        opts.dialect = match get(&options, "dialect").as_string().as_deref() {
            None | Some("openscdp") => Dialect::OpenScdp,
            Some("gp") => Dialect::GlobalPlatform,
            Some("seram") => Dialect::Seram,
            Some(other) => {
                return Err(invalid(&update::concat([
                    "unknown dialect \"",
                    other,
                    "\"",
                ])))
            }
        };
        if opts.dialect == Dialect::Seram {
            opts.timeout_ms = crate::session::seram::RESPONSE_TIMEOUT_MS;
        }
        opts.slot = slot_from(&get(&options, "slot"))?;
        if let Some(t) = get(&options, "timeout").as_f64() {
            if !(t.is_finite() && t > 0.0) {
                return Err(invalid("timeout must be a positive number of milliseconds"));
            }
            opts.timeout_ms = t as u64;
        }
        opts.agent_id = get(&options, "agentId").as_string();
        opts.show_secrets = get(&options, "showSecrets").is_truthy();
        opts.session_id = get(&options, "sessionId").as_string();
        if opts.dialect == Dialect::Seram && opts.session_id.as_deref().is_none_or(str::is_empty) {
            return Err(invalid("the seram dialect needs a sessionId"));
        }
        let credentials = match get(&options, "credentials").as_string().as_deref() {
            None | Some("same-origin") => Credentials::SameOrigin,
            Some("include") => Credentials::Include,
            Some("omit") => Credentials::Omit,
            Some(other) => {
                let text = update::concat(["unknown credentials mode \"", other, "\""]);
                return Err(invalid(&text));
            }
        };
        let observer = JsObserver {
            on_notification: get(&options, "onNotification").dyn_into().ok(),
            on_trace: get(&options, "onTrace").dyn_into().ok(),
        };
        let link = SignalLink::new(signal_from(&get(&options, "signal")));
        let http = driver.http(WebFetch {
            credentials,
            fetch: get(&options, "fetch").dyn_into().ok(),
            ..WebFetch::default()
        });
        let result = update::card_update(
            &driver,
            http.as_ref(),
            &WebClock,
            &opts,
            &observer,
            Some(&link.abort),
        )
        .await
        .map_err(|e| update_error(&e))?;
        let out = Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = Reflect::set(&out, &JsValue::from_str(k), &v);
        };
        let status = match result.status {
            crate::session::EndStatus::Completed => "completed",
            crate::session::EndStatus::EndedByServer { .. } => "ended-by-server",
        };
        set("status", JsValue::from_str(status));
        set("apdus", JsValue::from(result.apdus));
        set("roundTrips", JsValue::from(result.round_trips));
        set("durationMs", JsValue::from_f64(result.duration_ms as f64));
        let last = match result.last_notification {
            Some(n) => {
                let o = Object::new();
                let _ = Reflect::set(&o, &"code".into(), &JsValue::from(n.id));
                let _ = Reflect::set(&o, &"message".into(), &JsValue::from_str(&n.message));
                let ttc = n.time_to_completion.map_or(JsValue::NULL, JsValue::from);
                let _ = Reflect::set(&o, &"timeToCompletion".into(), &ttc);
                o.into()
            }
            None => JsValue::NULL,
        };
        set("lastNotification", last);
        set(
            "targetedApplication",
            result
                .targeted_application
                .as_deref()
                .map_or(JsValue::NULL, JsValue::from_str),
        );
        Ok(out.into())
    })
}
