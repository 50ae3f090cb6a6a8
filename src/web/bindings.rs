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
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

use crate::driver::sync::Abort;
use crate::driver::update::{self, UpdateError, UpdateObserver, UpdateOptions};
use crate::driver::{CcidDriver, DriverError, DriverEvent, ErrorCode};
use crate::proto::hex;
use crate::reader::{Completion, Operation, PinVerify};
use crate::session::{Dialect, Notification};
use crate::web::clock::WebClock;
use crate::web::fetch::{Credentials, WebFetch};
use crate::web::smartcard::WebChannel;
use crate::web::usb::WebUsb;

/// The promise of an export's result. The future is polled once within the call, so an
/// operation's first USB transfer starts at once instead of a microtask later, and a call
/// that completes at once (a bad argument) settles without a task; what is left runs as a
/// task. Boxed as one `dyn Future` type: one instance of the task machinery for every
/// export (issue 18: the per-APDU cost at the JS boundary, and the bundle).
pub(crate) fn future_to_promise(
    future: impl Future<Output = Result<JsValue, JsValue>> + 'static,
) -> js_sys::Promise {
    let mut future: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>> = Box::pin(future);
    // A waker that does nothing is enough: the task polls the future again when it starts,
    // and every future of the driver registers the waker of its latest poll.
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(Ok(value)) => js_sys::Promise::resolve(&value),
        Poll::Ready(Err(error)) => js_sys::Promise::reject(&error),
        Poll::Pending => wasm_bindgen_futures::future_to_promise(future),
    }
}

/// Builds the error object JavaScript receives.
pub fn js_error(code: ErrorCode, message: &str, status: Option<u16>) -> JsValue {
    hinted_error(code, message, status, code.hint())
}

/// [`js_error`] with a hint of its own.
fn hinted_error(code: ErrorCode, message: &str, status: Option<u16>, hint: &str) -> JsValue {
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

/// Bridges an `AbortSignal` to an [`Abort`] for the duration of one call.
pub(crate) struct SignalLink {
    pub(crate) abort: Abort,
    signal: Option<AbortSignal>,
    listener: Option<Closure<dyn FnMut()>>,
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
        let _ = signal.add_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        Self {
            abort,
            signal: Some(signal),
            listener: Some(listener),
        }
    }
}

impl Drop for SignalLink {
    fn drop(&mut self) {
        if let (Some(signal), Some(listener)) = (&self.signal, &self.listener) {
            let _ = signal
                .remove_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        }
    }
}

pub(crate) fn signal_from(value: &JsValue) -> Option<AbortSignal> {
    (!value.is_undefined() && !value.is_null()).then(|| value.clone().unchecked_into())
}

pub(crate) fn slot_from(value: &JsValue) -> Result<u8, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(0);
    }
    value
        .as_f64()
        .filter(|v| v.fract() == 0.0 && (0.0..=255.0).contains(v))
        .map(|v| v as u8)
        .ok_or_else(|| invalid("slot must be an integer from 0 to 255"))
}

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
    #[wasm_bindgen(js_name = open)]
    pub fn open(device: JsValue) -> js_sys::Promise {
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
            wasm_bindgen_futures::spawn_local(async move { watcher.watch().await });
            Ok(core.into())
        })
    }

    /// Receives `(type, slot, code)` for `cardinserted`, `cardremoved`, `hardwareerror` and
    /// `disconnected`; `code` is the `hardwareerror`'s bHardwareErrorCode, else undefined.
    #[wasm_bindgen(js_name = setEventHandler)]
    pub fn set_event_handler(&self, handler: Option<Function>) {
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
    #[wasm_bindgen(getter, js_name = exchangeLevel)]
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
    #[wasm_bindgen(js_name = powerOn)]
    pub fn power_on(&self, slot: JsValue, signal: JsValue) -> js_sys::Promise {
        let driver = Rc::clone(&self.driver);
        future_to_promise(async move {
            let slot = slot_from(&slot)?;
            let link = SignalLink::new(signal_from(&signal));
            let op = Operation::PowerOn {
                slot,
                protocol: None,
            };
            match driver.run(op, Some(&link.abort)).await {
                Ok(Completion::PoweredOn { atr, .. }) => {
                    Ok(Uint8Array::from(atr.as_slice()).into())
                }
                Ok(_) => Err(js_error(ErrorCode::Protocol, "power on gave no atr", None)),
                Err(e) => Err(driver_error(&e)),
            }
        })
    }

    /// Powers the card off.
    #[wasm_bindgen(js_name = powerOff)]
    pub fn power_off(&self, slot: JsValue) -> js_sys::Promise {
        let driver = Rc::clone(&self.driver);
        future_to_promise(async move {
            let slot = slot_from(&slot)?;
            driver
                .run(Operation::PowerOff { slot }, None)
                .await
                .map(|_| JsValue::UNDEFINED)
                .map_err(|e| driver_error(&e))
        })
    }

    /// Resolves to `{ present, powered, atr, protocol }` for the slot.
    pub fn status(&self, slot: JsValue) -> js_sys::Promise {
        let driver = Rc::clone(&self.driver);
        future_to_promise(async move {
            let slot = slot_from(&slot)?;
            let state = driver
                .run(Operation::Status { slot }, None)
                .await
                .map_err(|e| driver_error(&e))?;
            let present = match state {
                Completion::Status(icc) => !matches!(icc, crate::proto::ccid::IccStatus::Absent),
                _ => false,
            };
            let out = Object::new();
            let set = |k: &str, v: JsValue| {
                let _ = Reflect::set(&out, &JsValue::from_str(k), &v);
            };
            let atr = driver.atr(slot);
            set("present", JsValue::from(present));
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
            Ok(out.into())
        })
    }

    /// Sends a command APDU (powering the card on first if needed); resolves to the
    /// response data followed by SW1 SW2.
    pub fn transmit(&self, apdu: JsValue, slot: JsValue, signal: JsValue) -> js_sys::Promise {
        let driver = Rc::clone(&self.driver);
        future_to_promise(async move {
            let bytes = bytes_from(&apdu).ok_or_else(|| invalid("apdu must be a Uint8Array"))?;
            let slot = slot_from(&slot)?;
            let link = SignalLink::new(signal_from(&signal));
            let op = Operation::Transmit { slot, apdu: bytes };
            run_for_response(&driver, slot, op, &link.abort).await
        })
    }

    /// Verifies the PIN on the reader's PIN pad (CCID PC_to_RDR_Secure): the user types it
    /// on the reader, which sends VERIFY to the card; the PIN never reaches the page.
    /// `options` (all optional): `reference` (P2, default 0x81), `minDigits` (4),
    /// `maxDigits` (16), `timeout` (seconds the reader waits, 30), `padding` (a byte: the
    /// PIN goes in a fixed block of `maxDigits` bytes filled with it; default none: Lc is
    /// the PIN's length), `signal`. Powers the card on first if needed. Resolves to the
    /// card's response (SW1 SW2); a cancelled entry rejects with code `aborted`, an entry
    /// that timed out with `timeout`.
    #[wasm_bindgen(js_name = verifyPin)]
    pub fn verify_pin(&self, slot: JsValue, options: JsValue) -> js_sys::Promise {
        let driver = Rc::clone(&self.driver);
        future_to_promise(async move {
            let slot = slot_from(&slot)?;
            let pin = pin_verify_from(&options)?;
            let link = SignalLink::new(signal_from(&get(&options, "signal")));
            run_for_response(
                &driver,
                slot,
                Operation::VerifyPin { slot, pin },
                &link.abort,
            )
            .await
        })
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
    pub fn close(&self) -> js_sys::Promise {
        let driver = Rc::clone(&self.driver);
        future_to_promise(async move {
            driver.close().await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

/// An optional integer option in `min..=max`.
fn byte_option(options: &JsValue, key: &str, min: u8, max: u8) -> Result<Option<u8>, JsValue> {
    let value = get(options, key);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_f64()
        .filter(|v| v.fract() == 0.0 && (f64::from(min)..=f64::from(max)).contains(v))
        .map(|v| Some(v as u8))
        .ok_or_else(|| invalid(&format!("{key} must be an integer from {min} to {max}")))
}

/// The PIN pad parameters of [`ReaderCore::verify_pin`].
pub(crate) fn pin_verify_from(options: &JsValue) -> Result<PinVerify, JsValue> {
    let default = PinVerify::default();
    let pin = PinVerify {
        reference: byte_option(options, "reference", 0, 255)?.unwrap_or(default.reference),
        min_digits: byte_option(options, "minDigits", 1, 255)?.unwrap_or(default.min_digits),
        max_digits: byte_option(options, "maxDigits", 1, 255)?.unwrap_or(default.max_digits),
        timeout_s: byte_option(options, "timeout", 1, 255)?.unwrap_or(default.timeout_s),
        padding: byte_option(options, "padding", 0, 255)?,
    };
    if pin.min_digits > pin.max_digits {
        return Err(invalid("minDigits must not exceed maxDigits"));
    }
    if pin.padding.is_some() && pin.max_digits > 15 {
        return Err(invalid("with padding, maxDigits is at most 15"));
    }
    Ok(pin)
}

/// Runs an operation that answers with a response APDU, powering a present card on first.
async fn run_for_response(
    driver: &CcidDriver<WebUsb>,
    slot: u8,
    op: Operation,
    abort: &Abort,
) -> Result<JsValue, JsValue> {
    if driver.atr(slot).is_none() {
        let power_on = Operation::PowerOn {
            slot,
            protocol: None,
        };
        driver
            .run(power_on, Some(abort))
            .await
            .map_err(|e| driver_error(&e))?;
    }
    match driver.run(op, Some(abort)).await {
        Ok(Completion::Response(r)) => Ok(Uint8Array::from(r.as_slice()).into()),
        Ok(_) => Err(js_error(ErrorCode::Protocol, "no response apdu", None)),
        Err(e) => Err(driver_error(&e)),
    }
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

pub(crate) fn bytes_from(value: &JsValue) -> Option<Vec<u8>> {
    if let Some(a) = value.dyn_ref::<Uint8Array>() {
        return Some(a.to_vec());
    }
    if let Some(b) = value.dyn_ref::<js_sys::ArrayBuffer>() {
        return Some(Uint8Array::new(b).to_vec());
    }
    value.as_string().and_then(|s| hex::parse(&s).ok())
}

pub(crate) fn get(options: &JsValue, key: &str) -> JsValue {
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
#[wasm_bindgen(js_name = runCardUpdate)]
pub fn run_card_update(reader: &ReaderCore, url: String, options: JsValue) -> js_sys::Promise {
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
