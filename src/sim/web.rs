//! The simulated reader as a JavaScript object with the `USBDevice` methods and properties
//! the driver uses (wasm32 only), so `CardReader.open(sim)` works as with a real device.
//!
//! ```js
//! const sim = createSimulatedReader({ profile: "default", card: "seed" });
//! const sim2 = createSimulatedReader({ profile: entry /* from ccid-profiles.json */,
//!                                      card: { app: "pin", atr: "3B 80 80 01 01" },
//!                                      faults: { timeExtensions: 2 }, seed: 42 });
//! ```
//!
//! Options: `profile` is `"default"` (also when absent), a dump name with its text in
//! `profileText`, or an entry `{ name, text }`; the demo's data file
//! (`www/generated/profiles.json`) maps dump names to their text. `card` is `"seed"` (also when absent), `"pin"`, `null` (empty
//! slot) or `{ app: "seed" | "pin", atr: hex string | byte array, crc: "libccid" | "x25" }`
//! (`crc`: the T=1 CRC form of a card whose ATR selects CRC, libccid's by default); `faults` maps fault
//! names ([`super::Fault::from_name`]) to booleans or counts; `seed` seeds the card's
//! random generator.
//!
//! Every WebUSB method returns a Promise. Transfer results are plain objects shaped like
//! WebUSB's (`{ status, data }` with a fresh DataView, `data` null on a stall;
//! `{ status, bytesWritten }`), failures are real `DOMException`s. A `transferIn` with
//! nothing to read stays pending until data arrives (a command's answer, a card event on
//! the interrupt endpoint); pending reads reject with NotFoundError on `disconnect()` and
//! with AbortError on `close()`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Array, DataView, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{
    CardApp, CardConfig, ControlSetup, Fault, InTransfer, PinEntry, Profile, Recipient,
    RequestType, SimConfig, SimError, SimulatedReader, UsbFault,
};
use crate::proto::descriptor::TransferType;
use crate::proto::hex;
use crate::proto::t1::CrcForm;

/// A transferIn waiting for data.
struct PendingIn {
    endpoint: u8,
    length: usize,
    resolve: Function,
    reject: Function,
}

struct State {
    sim: SimulatedReader,
    pending: VecDeque<PendingIn>,
}

/// A simulated CCID reader with the `USBDevice` interface (see the module documentation).
/// A clone is another handle on the same device (Rust callers keep one for the controls
/// while JavaScript holds the other).
#[wasm_bindgen]
#[derive(Clone)]
pub struct SimulatedUsbDevice {
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for SimulatedUsbDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedUsbDevice").finish_non_exhaustive()
    }
}

fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}

fn sim_error(e: &SimError) -> JsValue {
    type_error(&e.to_string())
}

/// A DOMException with that message and name.
fn dom_exception(name: &str, message: &str) -> JsValue {
    match web_sys::DomException::new_with_message_and_name(message, name) {
        Ok(e) => e.into(),
        Err(e) => e,
    }
}

fn get(object: &JsValue, key: &str) -> JsValue {
    if object.is_object() {
        Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Setting a property on a plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

/// The bytes of an ArrayBuffer, a typed array or DataView (its own window only), or an
/// array of numbers. Always a copy: nothing points into JS or wasm memory afterwards.
fn bytes_of(value: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(buffer) = value.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(buffer).to_vec());
    }
    if js_sys::ArrayBuffer::is_view(value) {
        let buffer = get(value, "buffer");
        let offset = get(value, "byteOffset").as_f64().unwrap_or(0.0);
        let length = get(value, "byteLength").as_f64().unwrap_or(0.0);
        let Some(buffer) = buffer.dyn_ref::<js_sys::ArrayBuffer>() else {
            return Err(type_error("data must be a BufferSource"));
        };
        return Ok(Uint8Array::new_with_byte_offset_and_length(
            buffer,
            offset as u32,
            length as u32,
        )
        .to_vec());
    }
    if let Some(array) = value.dyn_ref::<Array>() {
        return array
            .iter()
            .map(|v| {
                v.as_f64()
                    .filter(|n| (0.0..=255.0).contains(n) && n.fract() == 0.0)
                    .map(|n| n as u8)
                    .ok_or_else(|| type_error("byte values must be integers 0..255"))
            })
            .collect();
    }
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    Err(type_error("data must be a BufferSource"))
}

/// `{ status, data }` as WebUSB's USBInTransferResult.
fn in_result(status: &str, data: Option<&[u8]>) -> JsValue {
    let result = Object::new();
    set(&result, "status", &JsValue::from_str(status));
    let view = match data {
        Some(bytes) => {
            let array = Uint8Array::from(bytes);
            DataView::new(&array.buffer(), 0, bytes.len()).into()
        }
        None => JsValue::NULL,
    };
    set(&result, "data", &view);
    result.into()
}

/// `{ status, bytesWritten }` as WebUSB's USBOutTransferResult.
fn out_result(status: &str, written: usize) -> JsValue {
    let result = Object::new();
    set(&result, "status", &JsValue::from_str(status));
    set(&result, "bytesWritten", &JsValue::from_f64(written as f64));
    result.into()
}

/// How a finished transferIn settles: resolved with a result or rejected.
fn settle_in(outcome: Result<Vec<u8>, UsbFault>) -> Result<JsValue, JsValue> {
    match outcome {
        Ok(data) => Ok(in_result("ok", Some(&data))),
        Err(UsbFault::Stall) => Ok(in_result("stall", None)),
        Err(UsbFault::Babble(data)) => Ok(in_result("babble", Some(&data))),
        Err(e) => Err(exception(&e)),
    }
}

fn exception(e: &UsbFault) -> JsValue {
    match e {
        UsbFault::Exception { name, message } => dom_exception(name, message),
        other => dom_exception("NetworkError", &other.to_string()),
    }
}

fn promise(result: Result<JsValue, JsValue>) -> Promise {
    match result {
        Ok(v) => Promise::resolve(&v),
        Err(e) => Promise::reject(&e),
    }
}

fn unit(result: Result<(), UsbFault>) -> Promise {
    promise(
        result
            .map(|()| JsValue::UNDEFINED)
            .map_err(|e| exception(&e)),
    )
}

fn number(value: &JsValue, what: &str) -> Result<u32, JsValue> {
    value
        .as_f64()
        .filter(|n| *n >= 0.0 && n.fract() == 0.0 && *n <= f64::from(u32::MAX))
        .map(|n| n as u32)
        .ok_or_else(|| type_error(&format!("{what} must be a non-negative integer")))
}

fn small<T: TryFrom<u32>>(value: &JsValue, what: &str) -> Result<T, JsValue> {
    T::try_from(number(value, what)?).map_err(|_| type_error(&format!("{what} out of range")))
}

/// A USBControlTransferParameters object.
fn control_setup(setup: &JsValue) -> Result<ControlSetup, JsValue> {
    let request_type = match get(setup, "requestType").as_string().as_deref() {
        Some("standard") => RequestType::Standard,
        Some("class") => RequestType::Class,
        Some("vendor") => RequestType::Vendor,
        _ => return Err(type_error("bad requestType")),
    };
    let recipient = match get(setup, "recipient").as_string().as_deref() {
        Some("device") => Recipient::Device,
        Some("interface") => Recipient::Interface,
        Some("endpoint") => Recipient::Endpoint,
        Some("other") => Recipient::Other,
        _ => return Err(type_error("bad recipient")),
    };
    Ok(ControlSetup {
        request_type,
        recipient,
        request: small(&get(setup, "request"), "request")?,
        value: small(&get(setup, "value"), "value")?,
        index: small(&get(setup, "index"), "index")?,
    })
}

/// A card option: absent = the seed card, null = none, a name, or `{ app, atr }`.
fn card_option(value: &JsValue) -> Result<Option<CardConfig>, JsValue> {
    if value.is_undefined() {
        return Ok(Some(CardConfig::seed()));
    }
    if value.is_null() {
        return Ok(None);
    }
    let app_of = |v: &JsValue| match v.as_string().as_deref() {
        None | Some("seed") => Ok(CardApp::Seed),
        Some("pin") => Ok(CardApp::Pin),
        Some(other) => Err(type_error(&format!("unknown card {other:?}"))),
    };
    if value.is_string() {
        return Ok(Some(CardConfig {
            app: app_of(value)?,
            ..CardConfig::seed()
        }));
    }
    let app = app_of(&get(value, "app"))?;
    let crc = match get(value, "crc").as_string().as_deref() {
        None | Some("libccid") => CrcForm::Libccid,
        Some("x25") => CrcForm::X25,
        Some(other) => return Err(type_error(&format!("unknown crc form {other:?}"))),
    };
    let atr = get(value, "atr");
    let atr = if atr.is_undefined() || atr.is_null() {
        None
    } else if let Some(text) = atr.as_string() {
        Some(hex::parse(&text).map_err(|e| type_error(&format!("bad atr: {e}")))?)
    } else {
        Some(bytes_of(&atr)?)
    };
    Ok(Some(CardConfig { app, atr, crc }))
}

fn profile_option(options: &JsValue) -> Result<Profile, JsValue> {
    let profile = get(options, "profile");
    if profile.is_undefined() || profile.is_null() {
        return Ok(Profile::Default);
    }
    if let Some(name) = profile.as_string() {
        if super::profiles::normalize_name(&name) == super::profiles::DEFAULT_NAME {
            return Ok(Profile::Default);
        }
        let text = get(options, "profileText")
            .as_string()
            .ok_or_else(|| type_error("profileText is needed for a dump profile"))?;
        return Ok(Profile::dump(&name, text));
    }
    let name = get(&profile, "name").as_string();
    let text = get(&profile, "text").as_string();
    match (name, text) {
        (Some(name), Some(text)) => Ok(Profile::dump(&name, text)),
        _ => Err(type_error("profile must be a name or { name, text }")),
    }
}

fn fault_value(value: &JsValue) -> Result<u32, JsValue> {
    match value.as_bool() {
        Some(b) => Ok(u32::from(b)),
        None => number(value, "fault value"),
    }
}

/// Creates a simulated reader (see the module documentation for the options).
#[wasm_bindgen(js_name = createSimulatedReader)]
pub fn create_simulated_reader(options: JsValue) -> Result<SimulatedUsbDevice, JsValue> {
    let seed = match get(&options, "seed") {
        v if v.is_undefined() => 1,
        v => u64::from(number(&v, "seed")?),
    };
    let config = SimConfig {
        profile: profile_option(&options)?,
        card: card_option(&get(&options, "card"))?,
        seed,
    };
    let mut sim = SimulatedReader::new(config).map_err(|e| sim_error(&e))?;
    let faults = get(&options, "faults");
    if faults.is_object() {
        for key in Object::keys(faults.unchecked_ref::<Object>()).iter() {
            let name = key.as_string().unwrap_or_default();
            let value = fault_value(&get(&faults, &name))?;
            let fault = Fault::from_name(&name, value).map_err(|e| sim_error(&e))?;
            sim.set_fault(fault);
        }
    }
    Ok(SimulatedUsbDevice {
        state: Rc::new(RefCell::new(State {
            sim,
            pending: VecDeque::new(),
        })),
    })
}

impl SimulatedUsbDevice {
    fn with<T>(&self, f: impl FnOnce(&mut SimulatedReader) -> T) -> T {
        let sim = &mut self.state.borrow_mut().sim;
        sim.set_time(js_sys::Date::now() as u64);
        f(sim)
    }

    /// Pumps again when the next late answer is due (the `late` fault).
    fn schedule_late(&self) {
        let Some(at) = self.with(|s| s.next_answer_at()) else {
            return;
        };
        let wait = at.saturating_sub(js_sys::Date::now() as u64).max(1);
        let this = self.clone();
        let callback = Closure::once_into_js(move || this.pump());
        let set_timeout = Reflect::get(&js_sys::global(), &JsValue::from_str("setTimeout"));
        if let Ok(f) = set_timeout.and_then(|f| f.dyn_into::<Function>()) {
            let _ = f.call2(
                &JsValue::UNDEFINED,
                &callback,
                &JsValue::from_f64(wait as f64),
            );
        }
    }

    /// Completes the pending transferIns that can complete, in order per endpoint.
    fn pump(&self) {
        let mut settled = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            let State { sim, pending } = &mut *state;
            sim.set_time(js_sys::Date::now() as u64);
            let mut waiting = VecDeque::new();
            let mut blocked: Vec<u8> = Vec::new();
            while let Some(p) = pending.pop_front() {
                if blocked.contains(&p.endpoint) {
                    waiting.push_back(p);
                    continue;
                }
                match sim.transfer_in(p.endpoint, p.length) {
                    InTransfer::Ready(outcome) => settled.push((p, settle_in(outcome))),
                    InTransfer::Pending => {
                        blocked.push(p.endpoint);
                        waiting.push_back(p);
                    }
                }
            }
            *pending = waiting;
        }
        // Resolving schedules the callbacks as microtasks: no re-entry while borrowed.
        for (p, outcome) in settled {
            let _ = match outcome {
                Ok(v) => p.resolve.call1(&JsValue::UNDEFINED, &v),
                Err(e) => p.reject.call1(&JsValue::UNDEFINED, &e),
            };
        }
    }

    fn reject_pending(&self, name: &str, message: &str) {
        let pending: Vec<PendingIn> = self.state.borrow_mut().pending.drain(..).collect();
        for p in pending {
            let _ = p
                .reject
                .call1(&JsValue::UNDEFINED, &dom_exception(name, message));
        }
    }

    fn configuration_object(&self) -> JsValue {
        let state = self.state.borrow();
        let sim = &state.sim;
        let config = sim.configuration();
        let result = Object::new();
        set(
            &result,
            "configurationValue",
            &JsValue::from(config.configuration_value),
        );
        set(&result, "configurationName", &JsValue::NULL);
        let interfaces = Array::new();
        let mut numbers: Vec<u8> = config.interfaces.iter().map(|i| i.number).collect();
        numbers.dedup();
        for n in numbers {
            let alternates = Array::new();
            for i in config.interfaces.iter().filter(|i| i.number == n) {
                let alt = Object::new();
                set(
                    &alt,
                    "alternateSetting",
                    &JsValue::from(i.alternate_setting),
                );
                set(&alt, "interfaceClass", &JsValue::from(i.class));
                set(&alt, "interfaceSubclass", &JsValue::from(i.subclass));
                set(&alt, "interfaceProtocol", &JsValue::from(i.protocol));
                set(&alt, "interfaceName", &JsValue::NULL);
                let endpoints = Array::new();
                for e in &i.endpoints {
                    let ep = Object::new();
                    set(&ep, "endpointNumber", &JsValue::from(e.number()));
                    let direction = if e.is_in() { "in" } else { "out" };
                    set(&ep, "direction", &JsValue::from_str(direction));
                    let kind = match e.transfer_type() {
                        TransferType::Bulk => "bulk",
                        TransferType::Interrupt => "interrupt",
                        _ => "isochronous",
                    };
                    set(&ep, "type", &JsValue::from_str(kind));
                    set(&ep, "packetSize", &JsValue::from(e.max_packet_size));
                    endpoints.push(&ep);
                }
                set(&alt, "endpoints", &endpoints);
                alternates.push(&alt);
            }
            let interface = Object::new();
            set(&interface, "interfaceNumber", &JsValue::from(n));
            set(&interface, "alternate", &alternates.get(0));
            set(&interface, "alternates", &alternates);
            set(&interface, "claimed", &JsValue::from(sim.is_claimed(n)));
            interfaces.push(&interface);
        }
        set(&result, "interfaces", &interfaces);
        result.into()
    }
}

#[wasm_bindgen]
impl SimulatedUsbDevice {
    // ------------------------------------------------------------ USBDevice methods

    /// USBDevice.open().
    pub fn open(&self) -> Promise {
        unit(self.with(SimulatedReader::open))
    }

    /// USBDevice.close(): pending transferIns reject with AbortError.
    pub fn close(&self) -> Promise {
        let result = self.with(SimulatedReader::close);
        self.reject_pending("AbortError", "The transfer was cancelled.");
        unit(result)
    }

    /// USBDevice.selectConfiguration(value).
    #[wasm_bindgen(js_name = selectConfiguration)]
    pub fn select_configuration(&self, value: u8) -> Promise {
        unit(self.with(|s| s.select_configuration(value)))
    }

    /// USBDevice.claimInterface(n).
    #[wasm_bindgen(js_name = claimInterface)]
    pub fn claim_interface(&self, n: u8) -> Promise {
        unit(self.with(|s| s.claim_interface(n)))
    }

    /// USBDevice.releaseInterface(n).
    #[wasm_bindgen(js_name = releaseInterface)]
    pub fn release_interface(&self, n: u8) -> Promise {
        unit(self.with(|s| s.release_interface(n)))
    }

    /// USBDevice.selectAlternateInterface(n, alternate).
    #[wasm_bindgen(js_name = selectAlternateInterface)]
    pub fn select_alternate_interface(&self, n: u8, alternate: u8) -> Promise {
        unit(self.with(|s| s.select_alternate_interface(n, alternate)))
    }

    /// USBDevice.controlTransferIn(setup, length).
    #[wasm_bindgen(js_name = controlTransferIn)]
    pub fn control_transfer_in(&self, setup: JsValue, length: u16) -> Promise {
        let setup = match control_setup(&setup) {
            Ok(s) => s,
            Err(e) => return Promise::reject(&e),
        };
        promise(settle_in(
            self.with(|s| s.control_transfer_in(setup, length)),
        ))
    }

    /// USBDevice.controlTransferOut(setup, data).
    #[wasm_bindgen(js_name = controlTransferOut)]
    pub fn control_transfer_out(&self, setup: JsValue, data: JsValue) -> Promise {
        let parsed = control_setup(&setup).and_then(|s| Ok((s, bytes_of(&data)?)));
        let (setup, bytes) = match parsed {
            Ok(p) => p,
            Err(e) => return Promise::reject(&e),
        };
        promise(match self.with(|s| s.control_transfer_out(setup, &bytes)) {
            Ok(n) => Ok(out_result("ok", n)),
            Err(UsbFault::Stall) => Ok(out_result("stall", 0)),
            Err(e) => Err(exception(&e)),
        })
    }

    /// USBDevice.transferOut(endpoint, data); the bytes are copied at once.
    #[wasm_bindgen(js_name = transferOut)]
    pub fn transfer_out(&self, endpoint: u8, data: JsValue) -> Promise {
        let bytes = match bytes_of(&data) {
            Ok(b) => b,
            Err(e) => return Promise::reject(&e),
        };
        let result = self.with(|s| s.transfer_out(endpoint, &bytes));
        self.pump();
        self.schedule_late();
        promise(match result {
            Ok(n) => Ok(out_result("ok", n)),
            Err(UsbFault::Stall) => Ok(out_result("stall", 0)),
            Err(e) => Err(exception(&e)),
        })
    }

    /// USBDevice.transferIn(endpoint, length): pending until data arrives.
    #[wasm_bindgen(js_name = transferIn)]
    pub fn transfer_in(&self, endpoint: u8, length: u32) -> Promise {
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        let queued = self
            .state
            .borrow()
            .pending
            .iter()
            .any(|p| p.endpoint == endpoint);
        if !queued {
            if let InTransfer::Ready(outcome) = self.with(|s| s.transfer_in(endpoint, length)) {
                return promise(settle_in(outcome));
            }
        }
        let state = Rc::clone(&self.state);
        Promise::new(&mut |resolve, reject| {
            state.borrow_mut().pending.push_back(PendingIn {
                endpoint,
                length,
                resolve,
                reject,
            });
        })
    }

    /// USBDevice.clearHalt(direction, endpoint).
    #[wasm_bindgen(js_name = clearHalt)]
    pub fn clear_halt(&self, direction: String, endpoint: u8) -> Promise {
        let result = self.with(|s| s.clear_halt(direction == "in", endpoint));
        self.pump();
        unit(result)
    }

    /// USBDevice.reset().
    pub fn reset(&self) -> Promise {
        unit(self.with(SimulatedReader::reset))
    }

    /// USBDevice.forget(): the device is gone for this page.
    pub fn forget(&self) -> Promise {
        self.disconnect();
        Promise::resolve(&JsValue::UNDEFINED)
    }

    // ------------------------------------------------------------ USBDevice properties

    /// idVendor.
    #[wasm_bindgen(getter, js_name = vendorId)]
    pub fn vendor_id(&self) -> u16 {
        self.with(|s| s.vendor_id())
    }

    /// idProduct.
    #[wasm_bindgen(getter, js_name = productId)]
    pub fn product_id(&self) -> u16 {
        self.with(|s| s.product_id())
    }

    /// The iProduct string.
    #[wasm_bindgen(getter, js_name = productName)]
    pub fn product_name(&self) -> Option<String> {
        self.with(|s| s.product_name().map(str::to_owned))
    }

    /// The iManufacturer string.
    #[wasm_bindgen(getter, js_name = manufacturerName)]
    pub fn manufacturer_name(&self) -> Option<String> {
        self.with(|s| s.manufacturer_name().map(str::to_owned))
    }

    /// The serial number: the dumps have none.
    #[wasm_bindgen(getter, js_name = serialNumber)]
    pub fn serial_number(&self) -> Option<String> {
        None
    }

    /// Whether the device is open.
    #[wasm_bindgen(getter)]
    pub fn opened(&self) -> bool {
        self.with(|s| s.opened())
    }

    /// The selected configuration, `null` before selectConfiguration.
    #[wasm_bindgen(getter)]
    pub fn configuration(&self) -> JsValue {
        if self.with(|s| s.configuration_value()).is_none() {
            return JsValue::NULL;
        }
        self.configuration_object()
    }

    /// Every configuration (one).
    #[wasm_bindgen(getter)]
    pub fn configurations(&self) -> Array {
        Array::of1(&self.configuration_object())
    }

    /// bcdUSB major version (2).
    #[wasm_bindgen(getter, js_name = usbVersionMajor)]
    pub fn usb_version_major(&self) -> u8 {
        2
    }

    /// bcdUSB minor version (0).
    #[wasm_bindgen(getter, js_name = usbVersionMinor)]
    pub fn usb_version_minor(&self) -> u8 {
        0
    }

    /// bcdUSB subminor version (0).
    #[wasm_bindgen(getter, js_name = usbVersionSubminor)]
    pub fn usb_version_subminor(&self) -> u8 {
        0
    }

    /// bDeviceClass (0: per interface).
    #[wasm_bindgen(getter, js_name = deviceClass)]
    pub fn device_class(&self) -> u8 {
        0
    }

    /// bDeviceSubClass.
    #[wasm_bindgen(getter, js_name = deviceSubclass)]
    pub fn device_subclass(&self) -> u8 {
        0
    }

    /// bDeviceProtocol.
    #[wasm_bindgen(getter, js_name = deviceProtocol)]
    pub fn device_protocol(&self) -> u8 {
        0
    }

    /// bcdDevice major version.
    #[wasm_bindgen(getter, js_name = deviceVersionMajor)]
    pub fn device_version_major(&self) -> u8 {
        self.with(|s| s.device_version().to_be_bytes()[0])
    }

    /// bcdDevice minor version (high nibble of the low byte).
    #[wasm_bindgen(getter, js_name = deviceVersionMinor)]
    pub fn device_version_minor(&self) -> u8 {
        self.with(|s| s.device_version().to_be_bytes()[1] >> 4)
    }

    /// bcdDevice subminor version (low nibble).
    #[wasm_bindgen(getter, js_name = deviceVersionSubminor)]
    pub fn device_version_subminor(&self) -> u8 {
        self.with(|s| s.device_version().to_be_bytes()[1] & 0x0F)
    }

    // ------------------------------------------------------------ controls

    /// Puts a card in a slot (default slot 0; card as in the `card` option).
    #[wasm_bindgen(js_name = insertCard)]
    pub fn insert_card(&self, card: JsValue, slot: Option<u8>) -> Result<(), JsValue> {
        let card = card_option(&card)?.ok_or_else(|| type_error("no card to insert"))?;
        self.with(|s| s.insert_card(slot.unwrap_or(0), card))
            .map_err(|e| sim_error(&e))?;
        self.pump();
        Ok(())
    }

    /// Takes the card out of a slot (default 0).
    #[wasm_bindgen(js_name = removeCard)]
    pub fn remove_card(&self, slot: Option<u8>) -> Result<(), JsValue> {
        self.with(|s| s.remove_card(slot.unwrap_or(0)))
            .map_err(|e| sim_error(&e))?;
        self.pump();
        Ok(())
    }

    /// Signals an overcurrent on a slot (default 0) on the interrupt endpoint.
    #[wasm_bindgen(js_name = hardwareError)]
    pub fn hardware_error(&self, slot: Option<u8>) -> Result<(), JsValue> {
        self.with(|s| s.hardware_error(slot.unwrap_or(0)))
            .map_err(|e| sim_error(&e))?;
        self.pump();
        Ok(())
    }

    /// Unplugs the device: pending transferIns reject with NotFoundError, as every later
    /// call does.
    pub fn disconnect(&self) {
        self.with(SimulatedReader::disconnect);
        self.pump();
    }

    /// Switches a fault on or off: `setFault("timeExtensions", 2)`, `setFault("mute", true)`.
    #[wasm_bindgen(js_name = setFault)]
    pub fn set_fault(&self, name: &str, value: JsValue) -> Result<(), JsValue> {
        let value = if value.is_undefined() {
            1
        } else {
            fault_value(&value)?
        };
        let fault = Fault::from_name(name, value).map_err(|e| sim_error(&e))?;
        self.with(|s| s.set_fault(fault));
        self.pump();
        Ok(())
    }

    /// Turns every fault off.
    #[wasm_bindgen(js_name = clearFaults)]
    pub fn clear_faults(&self) {
        self.with(SimulatedReader::clear_faults);
        self.pump();
    }

    /// The PIN typed on the PIN pad at the next Secure: digits, `null` (nobody types:
    /// PIN_TIMEOUT) or `{ cancel: true }` (PIN_CANCELLED).
    #[wasm_bindgen(js_name = setPinEntry)]
    pub fn set_pin_entry(&self, entry: JsValue) -> Result<(), JsValue> {
        let entry = if let Some(digits) = entry.as_string() {
            PinEntry::Digits(digits)
        } else if get(&entry, "cancel").as_bool() == Some(true) {
            PinEntry::Cancel
        } else if entry.is_null() || entry.is_undefined() {
            PinEntry::Timeout
        } else {
            return Err(type_error(
                "pin entry must be digits, null or { cancel: true }",
            ));
        };
        self.with(|s| s.set_pin_entry(entry));
        Ok(())
    }

    // ------------------------------------------------------------ statistics

    /// `{ out, in, control, commands, timeExtensions, staleAnswers }` counters.
    #[wasm_bindgen(getter)]
    pub fn transfers(&self) -> JsValue {
        let stats = self.with(|s| s.stats());
        let o = Object::new();
        set(&o, "out", &JsValue::from_f64(stats.transfers_out as f64));
        set(&o, "in", &JsValue::from_f64(stats.transfers_in as f64));
        set(
            &o,
            "control",
            &JsValue::from_f64(stats.control_transfers as f64),
        );
        set(&o, "commands", &JsValue::from_f64(stats.commands as f64));
        let extensions = JsValue::from_f64(stats.time_extensions as f64);
        set(&o, "timeExtensions", &extensions);
        set(
            &o,
            "staleAnswers",
            &JsValue::from_f64(stats.stale_answers as f64),
        );
        o.into()
    }

    /// The APDUs the card in slot 0 executed, as spaced hex (VERIFY data as `2A` bytes).
    #[wasm_bindgen(getter, js_name = lastCommands)]
    pub fn last_commands(&self) -> Array {
        let log = self.with(|s| s.card_log(0));
        log.iter()
            .map(|c| JsValue::from_str(&hex::spaced(c)))
            .collect()
    }

    /// The simulated profile's name.
    #[wasm_bindgen(getter, js_name = profileName)]
    pub fn profile_name(&self) -> String {
        self.with(|s| s.profile_name().to_owned())
    }
}
