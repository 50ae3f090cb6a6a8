//! The wasm exports of the Web Smart Card API route: [`SmartCardCore`], which the JavaScript
//! layer wraps as `CardReader.openSmartCard` and `listSmartCardReaders`, and the context,
//! reader list and presence look-ups it starts with.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{AbortController, AbortSignal};

use crate::channel::CardChannel;
use crate::driver::smartcard::classify;
use crate::driver::sync::{race, Abort, Either, FifoLock};
use crate::driver::{DriverError, ErrorCode};
use crate::web::bindings::{driver_error, future_to_promise, invalid, update_promise, SignalLink};
use crate::web::pin::{verify_promise, PinOptions};
use crate::web::promise::Settled;

use super::{
    failure, flags_in, has_card, invoke, key, spawn, state_in, status_change, strings, unaware,
    Protocol, SmartCardChannel, WebChannel,
};

async fn establish(manager: &JsValue) -> Result<JsValue, DriverError> {
    Settled::new(&invoke(manager, "establishContext", &Array::new()))
        .await
        .map_err(|e| failure("establishContext", &e))
}

async fn list_readers(context: &JsValue) -> Result<Vec<String>, DriverError> {
    let names = Settled::new(&invoke(context, "listReaders", &Array::new()))
        .await
        .map_err(|e| failure("listReaders", &e))?;
    Ok(strings(&names))
}

fn manager_from(value: JsValue) -> Result<JsValue, JsValue> {
    let manager = if value.is_undefined() || value.is_null() {
        let navigator = key(&js_sys::global(), "navigator");
        key(&navigator, "smartCard")
    } else {
        value
    };
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

/// The first reader with a card; without one, waits until a card is inserted in any of
/// them (the `signal` ends the wait).
async fn reader_with_card(
    context: &JsValue,
    names: &[String],
    abort: &Abort,
) -> Result<String, DriverError> {
    let mut states: Vec<(String, Object, Option<f64>)> = names
        .iter()
        .map(|name| (name.clone(), unaware(), None))
        .collect();
    let controller = AbortController::new().ok();
    let stop = abort.clone();
    let signal = controller.as_ref().map(AbortController::signal);
    loop {
        let list: Array = states
            .iter()
            .map(|(name, flags, count)| JsValue::from(state_in(name, flags, *count)))
            .collect();
        let mut call = status_change(context, &list, signal.as_ref());
        let mut aborted = stop.wait();
        let winner = race(&mut call, &mut aborted).await;
        let answer = match winner {
            Either::Left(outcome) => outcome.map_err(|e| failure("getStatusChange", &e))?,
            Either::Right(()) => {
                if let Some(c) = &controller {
                    c.abort();
                }
                return Err(DriverError::Aborted);
            }
        };
        for (i, (name, flags, count)) in states.iter_mut().enumerate() {
            let out = Reflect::get_u32(&answer, i as u32).unwrap_or(JsValue::UNDEFINED);
            let event = key(&out, "eventState");
            if has_card(&event) {
                return Ok(name.clone());
            }
            *flags = flags_in(&event);
            *count = key(&out, "eventCount").as_f64();
        }
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
            let context = establish(&manager).await.map_err(|e| driver_error(&e))?;
            let names = list_readers(&context).await.map_err(|e| driver_error(&e))?;
            Ok(names
                .into_iter()
                .map(JsValue::from)
                .collect::<Array>()
                .into())
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
            let link = SignalLink::new(signal);
            let fail = |e: DriverError| driver_error(&e);
            let context = establish(&manager).await.map_err(fail)?;
            let names = list_readers(&context).await.map_err(fail)?;
            let name = match reader {
                Some(name) if names.contains(&name) => name,
                Some(_) => {
                    return Err(fail(classify(
                        "open",
                        "SmartCardError",
                        Some("unknown-reader"),
                        "",
                    )))
                }
                None if names.is_empty() => {
                    return Err(fail(DriverError::SmartCard {
                        code: ErrorCode::Disconnected,
                        message: "open: no smart card reader".into(),
                        hint: "The smart card service lists no reader. Plug one in and try again.",
                    }))
                }
                None => reader_with_card(&context, &names, &link.abort)
                    .await
                    .map_err(fail)?,
            };
            let watch_context = establish(&manager).await.map_err(fail)?;
            let controller = AbortController::new().ok();
            let channel = Rc::new(SmartCardChannel {
                context,
                reader: name,
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
                watch_stop: controller.clone(),
            });
            // Is a card there? The answer to an "unaware" state comes at once.
            let present = is_present(&channel.context, &channel.reader, &link.abort)
                .await
                .map_err(fail)?;
            if present {
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
            if let Some(controller) = controller {
                let weak = Rc::downgrade(&channel);
                spawn(Box::pin(SmartCardChannel::watch(
                    weak,
                    watch_context,
                    controller.signal(),
                )));
            }
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
        matches!(self.channel.pin_pad.get(), Some(Some(_)))
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
            let out = Object::new();
            let set = |k: &str, v: JsValue| {
                let _ = Reflect::set(&out, &JsValue::from_str(k), &v);
            };
            let protocol = channel.handle().map(|(_, p)| p);
            set("present", JsValue::from(state.present));
            set("powered", JsValue::from(state.atr.is_some()));
            set(
                "atr",
                state
                    .atr
                    .map_or(JsValue::NULL, |a| Uint8Array::from(a.as_slice()).into()),
            );
            set(
                "protocol",
                match protocol {
                    Some(Protocol::T0) => JsValue::from_str("T=0"),
                    Some(Protocol::T1) => JsValue::from_str("T=1"),
                    None => JsValue::NULL,
                },
            );
            Ok(out.into())
        })
    }

    /// Sends a command APDU (connecting first if needed); resolves to the response data
    /// followed by SW1 SW2.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn transmit(&self, apdu: Vec<u8>, slot: u8, signal: Option<AbortSignal>) -> Promise {
        let channel = Rc::clone(&self.channel);
        future_to_promise(async move {
            one_slot(slot)?;
            let link = SignalLink::new(signal);
            let abort = Some(&link.abort);
            let run = async {
                if channel.atr(slot).is_none() {
                    channel.power_on(slot, abort).await?;
                }
                channel.transmit(slot, apdu, abort).await
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

/// Whether `reader` holds a card (an "unaware" state is answered at once; the `signal` of
/// `open()` still ends the wait).
async fn is_present(context: &JsValue, reader: &str, abort: &Abort) -> Result<bool, DriverError> {
    let states = Array::of1(&state_in(reader, &unaware(), None));
    let mut call = status_change(context, &states, None);
    let mut aborted = abort.wait();
    let winner = race(&mut call, &mut aborted).await;
    let Either::Left(outcome) = winner else {
        return Err(DriverError::Aborted);
    };
    let answer = outcome.map_err(|e| failure("getStatusChange", &e))?;
    let out = Reflect::get_u32(&answer, 0).unwrap_or(JsValue::UNDEFINED);
    Ok(has_card(&key(&out, "eventState")))
}
