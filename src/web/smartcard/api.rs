//! The wasm exports of the Web Smart Card API route: [`SmartCardCore`], which the JavaScript
//! layer wraps as `CardReader.openSmartCard` and `listSmartCardReaders`, and the context,
//! reader list and presence look-ups it starts with.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{AbortController, AbortSignal};

use crate::channel::CardChannel;
use crate::driver::sync::FifoLock;
use crate::driver::{DriverError, ErrorCode};
use crate::web::bindings::{
    command_from, driver_error, future_to_promise, invalid, update_promise, SignalLink,
};
use crate::web::pin::{verify_promise, PinOptions};
use crate::web::promise::Settled;

use super::{
    helper_failure, sc_list, sc_manager, sc_open, sc_status, Protocol, SmartCardChannel, WebChannel,
};

fn manager_from(value: JsValue) -> Result<JsValue, JsValue> {
    let manager = sc_manager(&value);
    if manager.is_object() {
        return Ok(manager);
    }
    Err(driver_error(&DriverError::SmartCard {
        code: ErrorCode::UnsupportedReader,
        message: "the web smart card api is not available here".into(),
        hint: "The Web Smart Card API exists only in Isolated Web Apps on ChromeOS (Chrome 143 \
               and later, with the Smart Card Connector app). Elsewhere use a WebUSB reader or \
               the card-relay command line.",
    }))
}

/// A helper's outcome, its rejection as the error JavaScript receives.
async fn helper(promise: Promise) -> Result<Array, JsValue> {
    match Settled::new(&promise).await {
        Ok(value) => Ok(Array::from(&value)),
        Err(e) => Err(driver_error(&helper_failure(&e))),
    }
}

/// A reader opened through the Web Smart Card API, under `CardReader.openSmartCard()`.
#[wasm_bindgen]
#[derive(Debug)]
pub struct SmartCardCore {
    channel: Rc<SmartCardChannel>,
    handler: Rc<RefCell<Option<Function>>>,
}

#[wasm_bindgen]
impl SmartCardCore {
    /// Lists the reader names of `manager` (a `SmartCardResourceManager`; default
    /// `navigator.smartCard`).
    #[wasm_bindgen(unchecked_return_type = "Promise<string[]>")]
    pub fn list(
        #[wasm_bindgen(unchecked_param_type = "object | undefined")] manager: JsValue,
    ) -> Promise {
        future_to_promise(async move {
            let manager = manager_from(manager)?;
            Ok(helper(sc_list(&manager)).await?.get(1))
        })
    }

    /// Opens `reader` (a name; default: the first reader with a card, waiting for one when
    /// none has) of `manager`; connects when a card is present (the permission prompt).
    #[wasm_bindgen(unchecked_return_type = "Promise<SmartCardCore>")]
    pub fn open(
        #[wasm_bindgen(unchecked_param_type = "object | undefined")] manager: JsValue,
        reader: Option<String>,
        signal: Option<AbortSignal>,
    ) -> Promise {
        future_to_promise(async move {
            let manager = manager_from(manager)?;
            // establishContext, listReaders, the reader (waiting for a card where none was
            // named), the events' context, and whether a card is there.
            let named = reader.map_or(JsValue::UNDEFINED, JsValue::from);
            let until = signal.as_ref().map_or(JsValue::UNDEFINED, JsValue::from);
            let opened = helper(sc_open(&manager, &named, &until)).await?;
            let link = SignalLink::new(signal);
            let channel = Rc::new(SmartCardChannel {
                context: opened.get(0),
                reader: opened.get(1).as_string().unwrap_or_default(),
                lock: FifoLock::default(),
                connection: RefCell::new(None),
                atr: RefCell::new(None),
                present: Cell::new(false),
                closed: Cell::new(false),
                gone: Cell::new(false),
                templates: Cell::new(false),
                pin_pad: Cell::new(None),
                transaction: RefCell::new(None),
                sink: RefCell::new(None),
                watch_stop: AbortController::new()?,
                watcher: RefCell::new(None),
            });
            if opened.get(3).is_truthy() {
                let fail = |e: DriverError| driver_error(&e);
                let mut held = channel.hold().await.map_err(fail)?;
                channel
                    .connect(&mut held, Some(&link.abort))
                    .await
                    .map_err(fail)?;
            }
            let core = SmartCardCore {
                channel: Rc::clone(&channel),
                handler: Rc::new(RefCell::new(None)),
            };
            let handler = Rc::clone(&core.handler);
            channel.set_event_sink(Box::new(move |event| {
                let Some(f) = handler.borrow().clone() else {
                    return;
                };
                let (kind, slot, code) = crate::web::bindings::event_args(&event);
                let _ = f.call3(&JsValue::UNDEFINED, &JsValue::from_str(kind), &slot, &code);
            }));
            channel.watch(&opened.get(2));
            Ok(core.into())
        })
    }

    /// Receives `(type, slot)` for `cardinserted`, `cardremoved` and `disconnected`.
    #[wasm_bindgen(js_name = setEventHandler)]
    pub fn set_event_handler(
        &self,
        #[wasm_bindgen(unchecked_param_type = "EventHandler | undefined")] handler: Option<
            Function,
        >,
    ) {
        *self.handler.borrow_mut() = handler;
    }

    /// The reader is always followed on its own context (`getStatusChange` costs no bus
    /// traffic), so listeners change nothing here.
    #[wasm_bindgen(js_name = setListening)]
    pub fn set_listening(&self, _listening: bool) {}

    /// The reader's name as the smart card service gives it.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.channel.reader.clone()
    }

    /// A PC/SC reader name is one slot.
    #[wasm_bindgen(getter)]
    pub fn slots(&self) -> u32 {
        1
    }

    /// Whether the reader has a PIN pad: FEATURE_VERIFY_PIN_DIRECT in its answer to
    /// GET_FEATURE_REQUEST (PC/SC part 10), asked at the first connection.
    #[wasm_bindgen(getter, js_name = pinPad)]
    pub fn pin_pad(&self) -> bool {
        self.channel.has_pin_pad()
    }

    /// The local PIN check (see `ReaderCore.verifyPin`); the PIN pad is FEATURE_VERIFY_PIN_DIRECT.
    #[wasm_bindgen(js_name = verifyPin, unchecked_return_type = "Promise<void>")]
    pub fn verify_pin(
        &self,
        slot: u8,
        options: PinOptions,
        #[wasm_bindgen(js_name = onPinPad, unchecked_param_type = "PinPadListener | undefined")]
        on_pad: Option<Function>,
        #[wasm_bindgen(unchecked_param_type = "PinSource | undefined")] pin: Option<Function>,
        signal: Option<AbortSignal>,
    ) -> Promise {
        if let Err(e) = one_slot(slot) {
            return Promise::reject(&e);
        }
        let channel = WebChannel::SmartCard(Rc::clone(&self.channel));
        verify_promise(channel, slot, options, on_pad, pin, signal)
    }

    /// Whether the reader can still be used (not closed, not gone).
    #[wasm_bindgen(getter)]
    pub fn usable(&self) -> bool {
        self.channel.usable().is_ok()
    }

    /// Connects to the card (the permission prompt, the first time); resolves to its ATR.
    #[wasm_bindgen(js_name = powerOn, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn power_on(&self, slot: u8, signal: Option<AbortSignal>) -> Promise {
        let channel = Rc::clone(&self.channel);
        future_to_promise(async move {
            one_slot(slot)?;
            let link = SignalLink::new(signal);
            let atr = channel
                .power_on(slot, Some(&link.abort))
                .await
                .map_err(|e| driver_error(&e))?;
            Ok(Uint8Array::from(atr.as_slice()).into())
        })
    }

    /// `disconnect("unpower")`.
    #[wasm_bindgen(js_name = powerOff, unchecked_return_type = "Promise<void>")]
    pub fn power_off(&self, slot: u8) -> Promise {
        let channel = Rc::clone(&self.channel);
        future_to_promise(async move {
            one_slot(slot)?;
            channel
                .power_off(slot)
                .await
                .map_err(|e| driver_error(&e))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Resolves to `{ present, powered, atr, protocol }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<SlotState>")]
    pub fn status(&self, slot: u8) -> Promise {
        let channel = Rc::clone(&self.channel);
        future_to_promise(async move {
            one_slot(slot)?;
            let state = channel.status(slot).await.map_err(|e| driver_error(&e))?;
            let protocol = match channel.handle().map(|(_, p)| p) {
                Some(Protocol::T0) => JsValue::from_str("T=0"),
                Some(Protocol::T1) => JsValue::from_str("T=1"),
                None => JsValue::NULL,
            };
            Ok(sc_status(
                state.present,
                state.atr.is_some(),
                state.atr,
                &protocol,
            ))
        })
    }

    /// Sends a command APDU (connecting first if needed); resolves to the response data
    /// followed by SW1 SW2.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn transmit(&self, apdu: Vec<u8>, slot: u8, signal: Option<AbortSignal>) -> Promise {
        let channel = Rc::clone(&self.channel);
        future_to_promise(async move {
            one_slot(slot)?;
            // Parsed once, here: every layer below takes the typed command.
            let command = command_from(apdu)?;
            let link = SignalLink::new(signal);
            let abort = Some(&link.abort);
            let run = async {
                // The one decision "power on first" (`CardChannel::power_on`).
                channel.power_on(slot, abort).await?;
                channel.transmit(slot, command, abort).await
            };
            let response = run.await.map_err(|e| driver_error(&e))?;
            Ok(Uint8Array::from(response.as_slice()).into())
        })
    }

    /// Ends the events' wait and any transaction, then `disconnect("leave")`.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        let channel = Rc::clone(&self.channel);
        future_to_promise(async move {
            channel.close().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Runs a card update session (see `runCardUpdate`), one transaction per template.
    #[wasm_bindgen(js_name = runUpdate, unchecked_return_type = "Promise<UpdateResult>")]
    pub fn run_update(
        &self,
        url: String,
        #[wasm_bindgen(unchecked_param_type = "UpdateOptions")] options: JsValue,
    ) -> Promise {
        let channel = Rc::clone(&self.channel);
        channel.templates.set(true);
        let update = update_promise(WebChannel::SmartCard(Rc::clone(&channel)), url, options);
        future_to_promise(async move {
            let outcome = Settled::new(&update).await;
            channel.end_template().await;
            channel.templates.set(false);
            outcome
        })
    }
}

fn one_slot(slot: u8) -> Result<(), JsValue> {
    match slot {
        0 => Ok(()),
        _ => Err(invalid("a smart card reader has one slot, 0")),
    }
}
