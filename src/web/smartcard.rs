//! The Web Smart Card API adapter: a [`CardChannel`] over `navigator.smartCard` (WICG Web
//! Smart Card API, `index.bs`), and [`SmartCardCore`] under `CardReader.openSmartCard()`.
//!
//! The resource manager is used structurally: methods are looked up by name and called with
//! `Function.prototype.apply`, a synchronous throw becomes a rejection, nothing is checked
//! with `instanceof`, so any object with the IDL's shape works (Chrome's, a test fake, another
//! provider).
//!
//! How the specification's rules are kept:
//! - One operation per context at a time (`[[operationInProgress]]`, else
//!   `InvalidStateError`): every call on the main context runs under one [`FifoLock`]; an
//!   aborted call answers at once but keeps the lock until the browser settles it.
//! - Insert and remove events come from `getStatusChange()` on a second context of their own,
//!   so the pending wait never blocks a transmit; `eventState` and `eventCount` are fed back
//!   as `currentState` / `currentCount`, and `close()` ends the wait through its `signal`.
//! - `connect(reader, "shared", { preferredProtocols: ["t0", "t1"] })`; the ATR and the
//!   protocol come from `status()`. T=0 answers `61xx` / `6Cxx` to its caller as in any PC/SC
//!   stack: the channel follows them up by the rules of [`crate::proto::t0`], as
//!   [`crate::channel::transmit_t0`] does.
//! - During a card update each server template runs inside one `startTransaction()`: it
//!   starts at the template's first card command and ends (disposition `"leave"`) before
//!   the next POST.
//! - `disconnect("leave")` on close, `"unpower"` on power off; a reset (`C0`) is
//!   `disconnect("reset")` and a new `connect()` (the API has no `Reconnect`).
//! - `reset-card` (another application reset the card): the channel reconnects and fails
//!   the command, whose hint says so; `removed-card` fails it as `card-absent` and emits
//!   [`DriverEvent::CardRemoved`].
//! - PIN pads: `control()` with PC/SC part 10 GET_FEATURE_REQUEST at the first connection;
//!   FEATURE_VERIFY_PIN_DIRECT in the answer makes `pinPad` true and `verifyPin` send the
//!   PIN_VERIFY_STRUCTURE ([`crate::driver::smartcard`]).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{AbortController, AbortSignal};

use crate::channel::{start_t0, CardChannel, SlotState};
use crate::driver::smartcard::{
    classify, pin_verify_structure, verify_pin_code, GET_FEATURE_REQUEST,
};
use crate::driver::sync::{race, Abort, Either, FifoLock, LockGuard};
use crate::driver::update::{HttpClient, HttpError};
use crate::driver::usb::{Clock, LocalBoxFuture};
use crate::driver::{CcidDriver, DriverError, DriverEvent, ErrorCode};
use crate::proto::t0::{T0Error, T0Step};
use crate::reader::PinVerify;
use crate::session::{HttpRequest, HttpResponse};
use crate::web::clock::WebClock;
use crate::web::fetch::WebFetch;
use crate::web::promise::Settled;
use crate::web::usb::WebUsb;

mod api;

pub use api::SmartCardCore;

/// The card's transmission protocol, as `connect()` or `status()` reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    T0,
    T1,
}

/// A `SmartCardConnection` and its protocol.
#[derive(Debug)]
struct Connection {
    handle: JsValue,
    protocol: Protocol,
}

/// A running `startTransaction()`: `finish` settles the callback's promise, `done` is the
/// promise `startTransaction()` returned (settled once `EndTransaction` ran).
#[derive(Debug)]
struct Transaction {
    finish: Function,
    done: Promise,
}

fn key(object: &JsValue, name: &str) -> JsValue {
    if object.is_object() || object.is_function() {
        Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// `target[name](...args)` as a promise: a missing method or a synchronous throw rejects.
fn invoke(target: &JsValue, name: &str, args: &Array) -> Promise {
    let method = key(target, name);
    if !method.is_function() {
        let e = js_sys::TypeError::new(&format!("{name} is not a function"));
        return Promise::reject(&e.into());
    }
    match method.unchecked_ref::<Function>().apply(target, args) {
        Ok(value) => Promise::resolve(&value),
        Err(e) => Promise::reject(&e),
    }
}

/// Classifies a rejection of `call` ([`crate::driver::smartcard`]).
fn failure(call: &str, e: &JsValue) -> DriverError {
    let name = key(e, "name").as_string().unwrap_or_default();
    let response_code = key(e, "responseCode").as_string();
    let message = key(e, "message")
        .as_string()
        .or_else(|| e.as_string())
        .unwrap_or_default();
    classify(call, &name, response_code.as_deref(), &message)
}

fn channel_error(code: ErrorCode, message: impl Into<String>) -> DriverError {
    DriverError::Channel {
        code,
        message: message.into(),
    }
}

fn t0_error(e: T0Error) -> DriverError {
    let code = match e {
        T0Error::ExtendedNotSupported | T0Error::Apdu(_) => ErrorCode::InvalidArgument,
        _ => ErrorCode::Protocol,
    };
    channel_error(code, e.to_string())
}

/// The bytes of an `ArrayBuffer` or of a view on one (its own offset and length).
fn buffer_bytes(value: &JsValue) -> Option<Vec<u8>> {
    if js_sys::ArrayBuffer::is_view(value) {
        let offset = key(value, "byteOffset").as_f64()? as u32;
        let length = key(value, "byteLength").as_f64()? as u32;
        let buffer = key(value, "buffer");
        return Some(Uint8Array::new_with_byte_offset_and_length(&buffer, offset, length).to_vec());
    }
    key(value, "byteLength").as_f64()?;
    Some(Uint8Array::new(value).to_vec())
}

fn strings(value: &JsValue) -> Vec<String> {
    if !Array::is_array(value) {
        return Vec::new();
    }
    value
        .unchecked_ref::<Array>()
        .iter()
        .filter_map(|v| v.as_string())
        .collect()
}

/// The `SmartCardReaderStateFlagsIn` members that `SmartCardReaderStateFlagsOut` shares.
const STATE_FLAGS: [&str; 8] = [
    "ignore",
    "unavailable",
    "empty",
    "present",
    "exclusive",
    "inuse",
    "mute",
    "unpowered",
];

/// `{ unaware: true }`: the state of a reader not seen yet (answered at once).
fn unaware() -> Object {
    let flags = Object::new();
    let _ = Reflect::set(&flags, &"unaware".into(), &JsValue::TRUE);
    flags
}

/// A `SmartCardReaderStateIn`: the state last seen and its event count.
fn state_in(reader: &str, flags: &Object, count: Option<f64>) -> Object {
    let state = Object::new();
    let _ = Reflect::set(&state, &"readerName".into(), &reader.into());
    let _ = Reflect::set(&state, &"currentState".into(), flags);
    if let Some(n) = count {
        let _ = Reflect::set(&state, &"currentCount".into(), &n.into());
    }
    state
}

/// The flags of an `eventState` as the next `currentState`.
fn flags_in(event: &JsValue) -> Object {
    let flags = Object::new();
    for name in STATE_FLAGS {
        if key(event, name).is_truthy() {
            let _ = Reflect::set(&flags, &name.into(), &JsValue::TRUE);
        }
    }
    flags
}

/// Whether an `eventState` shows a card.
fn has_card(event: &JsValue) -> bool {
    key(event, "present").is_truthy() && !key(event, "empty").is_truthy()
}

/// `getStatusChange(states, { signal })` on `context`.
fn status_change(context: &JsValue, states: &Array, signal: Option<&AbortSignal>) -> Settled {
    let options = Object::new();
    if let Some(signal) = signal {
        let _ = Reflect::set(&options, &"signal".into(), signal);
    }
    Settled::new(&invoke(
        context,
        "getStatusChange",
        &Array::of2(states, &options),
    ))
}

/// A new promise and the function that resolves it.
fn deferred() -> (Promise, Option<Function>) {
    let mut resolver = None;
    let promise = Promise::new(&mut |resolve, _reject| resolver = Some(resolve));
    (promise, resolver)
}

/// The lock of the main context, held for one channel operation.
struct Held(Option<LockGuard>);

/// What to do with the outcome of a call nobody waits for any more.
type Cleanup = Box<dyn FnOnce(Result<JsValue, JsValue>) -> LocalBoxFuture<()>>;

/// Runs a task on the page's event loop (one boxed type: one copy of the executor's code).
fn spawn(task: LocalBoxFuture<()>) {
    spawn_local(task);
}

impl Held {
    /// Awaits one API call. On abort it answers [`DriverError::Aborted`] at once; the call
    /// keeps the lock until it settles, then `cleanup` gets its outcome (to disconnect a
    /// connection nobody waits for any more, or to end a transaction that began late).
    async fn wait(
        &mut self,
        promise: Promise,
        abort: Option<&Abort>,
        cleanup: Option<Cleanup>,
    ) -> Result<Result<JsValue, JsValue>, DriverError> {
        let mut call = Settled::new(&promise);
        let Some(abort) = abort else {
            return Ok(call.await);
        };
        let mut aborted = abort.wait();
        let winner = race(&mut call, &mut aborted).await;
        match winner {
            Either::Left(outcome) => Ok(outcome),
            Either::Right(()) => {
                let guard = self.0.take();
                spawn(Box::pin(async move {
                    let outcome = call.await;
                    if let Some(cleanup) = cleanup {
                        cleanup(outcome).await;
                    }
                    drop(guard);
                }));
                Err(DriverError::Aborted)
            }
        }
    }
}

async fn disconnect(handle: &JsValue, disposition: &str) -> Result<(), JsValue> {
    let args = Array::of1(&JsValue::from_str(disposition));
    Settled::new(&invoke(handle, "disconnect", &args))
        .await
        .map(|_| ())
}

/// A connection `connect()` gave after its caller stopped waiting: left as it is.
fn leave_late_connection(outcome: Result<JsValue, JsValue>) -> LocalBoxFuture<()> {
    Box::pin(async move {
        if let Ok(result) = outcome {
            let _ = disconnect(&key(&result, "connection"), "leave").await;
        }
    })
}

/// Where the channel's events go.
type EventSink = Box<dyn Fn(DriverEvent)>;

/// One reader through the Web Smart Card API (see the module documentation).
pub struct SmartCardChannel {
    context: JsValue,
    reader: String,
    lock: FifoLock,
    connection: RefCell<Option<Connection>>,
    atr: RefCell<Option<Vec<u8>>>,
    present: Cell<bool>,
    closed: Cell<bool>,
    gone: Cell<bool>,
    /// Whether a card update runs: transmits then start a transaction per template.
    templates: Cell<bool>,
    /// The reader's PIN-pad control code, once asked (GET_FEATURE_REQUEST after the first
    /// connection).
    pin_pad: Cell<Option<Option<u32>>>,
    transaction: RefCell<Option<Transaction>>,
    sink: RefCell<Option<EventSink>>,
    watch_stop: Option<AbortController>,
}

impl std::fmt::Debug for SmartCardChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartCardChannel")
            .field("reader", &self.reader)
            .field("present", &self.present.get())
            .field("closed", &self.closed.get())
            .finish_non_exhaustive()
    }
}

impl SmartCardChannel {
    fn emit(&self, event: DriverEvent) {
        if let Some(sink) = self.sink.borrow().as_ref() {
            sink(event);
        }
    }

    /// Records whether a card is in the reader; a change is an event.
    fn set_present(&self, present: bool) {
        if self.present.replace(present) != present {
            self.emit(if present {
                DriverEvent::CardInserted(0)
            } else {
                DriverEvent::CardRemoved(0)
            });
        }
    }

    fn usable(&self) -> Result<(), DriverError> {
        if self.closed.get() {
            return Err(DriverError::Closed);
        }
        if self.gone.get() {
            return Err(DriverError::Disconnected);
        }
        Ok(())
    }

    async fn hold(&self) -> Result<Held, DriverError> {
        self.usable()?;
        let guard = self.lock.lock().await;
        self.usable()?;
        Ok(Held(Some(guard)))
    }

    fn handle(&self) -> Option<(JsValue, Protocol)> {
        self.connection
            .borrow()
            .as_ref()
            .map(|c| (c.handle.clone(), c.protocol))
    }

    /// Ends the running transaction, if any (the lock is held).
    async fn end_transaction(&self) {
        let Some(t) = self.transaction.borrow_mut().take() else {
            return;
        };
        let _ = t
            .finish
            .call1(&JsValue::UNDEFINED, &JsValue::from_str("leave"));
        // Settles once EndTransaction ran: until then the context is busy.
        let _ = Settled::new(&t.done).await;
    }

    /// Ends the transaction and disconnects with `disposition` (the lock is held).
    async fn drop_connection(&self, disposition: &str) -> Result<(), JsValue> {
        self.end_transaction().await;
        self.atr.borrow_mut().take();
        let Some(c) = self.connection.borrow_mut().take() else {
            return Ok(());
        };
        disconnect(&c.handle, disposition).await
    }

    /// `connect()` then `status()` for the ATR and protocol (the lock is held).
    async fn connect(
        &self,
        held: &mut Held,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        let options = Object::new();
        let protocols = Array::of2(&JsValue::from_str("t0"), &JsValue::from_str("t1"));
        let _ = Reflect::set(&options, &"preferredProtocols".into(), &protocols);
        let args = Array::of3(
            &JsValue::from_str(&self.reader),
            &JsValue::from_str("shared"),
            &options,
        );
        let connect = invoke(&self.context, "connect", &args);
        let result = held
            .wait(connect, abort, Some(Box::new(leave_late_connection)))
            .await?
            .map_err(|e| failure("connect", &e))?;
        let handle = key(&result, "connection");
        let status = invoke(&handle, "status", &Array::new());
        let status = match held.wait(status, abort, None).await {
            Ok(Ok(status)) => status,
            outcome => {
                let _ = disconnect(&handle, "leave").await;
                return Err(match outcome {
                    Ok(Err(e)) => failure("status", &e),
                    Err(e) => e,
                    Ok(Ok(_)) => channel_error(ErrorCode::Protocol, "status failed"),
                });
            }
        };
        let active = key(&result, "activeProtocol")
            .as_string()
            .or_else(|| key(&status, "state").as_string());
        let protocol = match active.as_deref() {
            Some("t0") => Some(Protocol::T0),
            Some("t1") => Some(Protocol::T1),
            _ => None,
        };
        let atr = buffer_bytes(&key(&status, "answerToReset")).filter(|a| !a.is_empty());
        let (Some(protocol), Some(atr)) = (protocol, atr) else {
            let _ = disconnect(&handle, "leave").await;
            return Err(channel_error(
                ErrorCode::Protocol,
                "the card gave no atr or uses neither t=0 nor t=1",
            ));
        };
        if self.pin_pad.get().is_none() {
            // A reader without the feature (or a stack without control()) has no PIN pad.
            let args = Array::of2(&GET_FEATURE_REQUEST.into(), &Uint8Array::new_with_length(0));
            let features = held
                .wait(invoke(&handle, "control", &args), abort, None)
                .await?;
            let features = features
                .ok()
                .and_then(|f| buffer_bytes(&f))
                .unwrap_or_default();
            self.pin_pad.set(Some(verify_pin_code(&features)));
        }
        *self.connection.borrow_mut() = Some(Connection { handle, protocol });
        *self.atr.borrow_mut() = Some(atr.clone());
        self.set_present(true);
        Ok(atr)
    }

    /// What a failed call on the connection means; cleans up after a removed or reset card.
    async fn on_failure(&self, call: &str, e: &JsValue, held: &mut Held) -> DriverError {
        let error = failure(call, e);
        match key(e, "responseCode").as_string().as_deref() {
            Some("removed-card" | "no-smartcard") => {
                let _ = self.drop_connection("leave").await;
                self.set_present(false);
            }
            Some("reset-card") => {
                // The connection stays invalid until it is re-established (PC/SC part 5
                // SCardReconnect; the Web API has Disconnect + Connect instead).
                let _ = self.drop_connection("leave").await;
                let _ = self.connect(held, None).await;
            }
            Some("reader-unavailable" | "unknown-reader") => {
                let _ = self.drop_connection("leave").await;
            }
            _ => {}
        }
        error
    }

    /// Starts a transaction: resolves once the callback runs (BeginTransaction succeeded).
    async fn begin_transaction(
        &self,
        held: &mut Held,
        handle: &JsValue,
        abort: Option<&Abort>,
    ) -> Result<(), DriverError> {
        let (started, start) = deferred();
        let (body, finish) = deferred();
        let (Some(start), Some(finish)) = (start, finish) else {
            return Err(channel_error(ErrorCode::Protocol, "no promise resolver"));
        };
        let begun = Rc::new(Cell::new(false));
        let seen = Rc::clone(&begun);
        let callback = Closure::once_into_js(move || -> JsValue {
            seen.set(true);
            let _ = start.call0(&JsValue::UNDEFINED);
            body.into()
        });
        let done = invoke(handle, "startTransaction", &Array::of1(&callback));
        let first = Promise::race(&Array::of2(&started, &done));
        let late_finish = finish.clone();
        let late_done = done.clone();
        let cleanup: Cleanup = Box::new(move |_| {
            Box::pin(async move {
                let _ = late_finish.call1(&JsValue::UNDEFINED, &JsValue::from_str("leave"));
                let _ = Settled::new(&late_done).await;
            })
        });
        let outcome = held.wait(first, abort, Some(cleanup)).await?;
        match outcome {
            Ok(_) if begun.get() => {
                *self.transaction.borrow_mut() = Some(Transaction { finish, done });
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(self.on_failure("startTransaction", &e, held).await),
        }
    }

    /// One `transmit()` of the bytes as they are.
    async fn send(
        &self,
        held: &mut Held,
        handle: &JsValue,
        bytes: &[u8],
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        let args = Array::of1(&Uint8Array::from(bytes).into());
        match held
            .wait(invoke(handle, "transmit", &args), abort, None)
            .await?
        {
            Ok(answer) => buffer_bytes(&answer)
                .ok_or_else(|| channel_error(ErrorCode::Protocol, "transmit gave no bytes")),
            Err(e) => Err(self.on_failure("transmit", &e, held).await),
        }
    }

    /// VERIFY typed on the reader's PIN pad (`control()` with FEATURE_VERIFY_PIN_DIRECT):
    /// the PIN never reaches the page. Answers the card's SW1 SW2; the pad's own "timeout"
    /// (`64 00`) and "cancelled" (`64 01`) answers are errors.
    async fn verify_on_pad(
        &self,
        pin: &PinVerify,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        let mut held = self.hold().await?;
        if self.atr.borrow().is_none() {
            self.connect(&mut held, abort).await?;
        }
        let (Some((handle, _)), Some(Some(code))) = (self.handle(), self.pin_pad.get()) else {
            return Err(channel_error(
                ErrorCode::UnsupportedReader,
                "the reader has no pin pad",
            ));
        };
        let data = Uint8Array::from(pin_verify_structure(pin).as_slice());
        let args = Array::of2(&code.into(), &data);
        match held
            .wait(invoke(&handle, "control", &args), abort, None)
            .await?
        {
            Ok(answer) => match buffer_bytes(&answer).unwrap_or_default().as_slice() {
                [0x64, 0x00] => Err(channel_error(ErrorCode::Timeout, "no pin entered in time")),
                [0x64, 0x01] => Err(channel_error(ErrorCode::Aborted, "pin entry cancelled")),
                sw @ [_, _] => Ok(sw.to_vec()),
                _ => Err(channel_error(
                    ErrorCode::Protocol,
                    "the pin pad gave no status word",
                )),
            },
            Err(e) => Err(self.on_failure("control", &e, &mut held).await),
        }
    }

    /// Ends the transaction of the running template (before the next POST, and when the
    /// update ends).
    pub async fn end_template(&self) {
        if self.transaction.borrow().is_none() {
            return;
        }
        let _guard = self.lock.lock().await;
        self.end_transaction().await;
    }

    /// Follows the reader's state on a context of its own until the channel closes or the
    /// reader goes.
    async fn watch(channel: Weak<Self>, context: JsValue, signal: AbortSignal) {
        let mut flags = unaware();
        let mut count: Option<f64> = None;
        loop {
            let Some(reader) = channel.upgrade().map(|c| c.reader.clone()) else {
                return;
            };
            let states = Array::of1(&state_in(&reader, &flags, count));
            let outcome = status_change(&context, &states, Some(&signal)).await;
            let Some(ch) = channel.upgrade() else {
                return;
            };
            if ch.closed.get() || signal.aborted() {
                return;
            }
            let out = match outcome {
                Ok(list) => Reflect::get_u32(&list, 0).unwrap_or(JsValue::UNDEFINED),
                Err(e) => {
                    let code = failure("getStatusChange", &e).code();
                    if matches!(
                        code,
                        ErrorCode::Disconnected | ErrorCode::ServiceUnavailable
                    ) {
                        ch.on_gone();
                    }
                    return;
                }
            };
            let event = key(&out, "eventState");
            let has = |name: &str| key(&event, name).is_truthy();
            if has("unknown") || has("unavailable") {
                ch.on_gone();
                return;
            }
            let present = has_card(&event);
            let new_count = key(&out, "eventCount").as_f64();
            let next = flags_in(&event);
            let same = count == new_count
                && STATE_FLAGS
                    .iter()
                    .all(|name| key(&flags, name).is_truthy() == has(name));
            // Removed and inserted again between two answers: eventCount moved by two.
            let replaced = count.is_some() && count != new_count && present && ch.present.get();
            if replaced || (!present && ch.present.get()) {
                ch.on_removed();
            }
            if present {
                ch.set_present(true);
            }
            drop(ch);
            if same {
                // An answer without a change: do not spin on a stack that returns at once.
                WebClock.sleep(250).await;
            }
            flags = next;
            count = new_count;
        }
    }

    /// The card left the reader: the connection is stale; the next command fails as
    /// `card-absent` until the card is powered on again.
    fn on_removed(self: &Rc<Self>) {
        self.atr.borrow_mut().take();
        self.set_present(false);
        let channel = Rc::clone(self);
        spawn(Box::pin(async move {
            let _guard = channel.lock.lock().await;
            let _ = channel.drop_connection("leave").await;
        }));
    }

    /// The reader is gone (unplugged, or the service stopped).
    fn on_gone(self: &Rc<Self>) {
        if !self.gone.replace(true) {
            self.atr.borrow_mut().take();
            self.transaction.borrow_mut().take();
            self.connection.borrow_mut().take();
            self.emit(DriverEvent::Disconnected);
        }
    }

    /// Closes: ends the events' wait, ends the transaction, `disconnect("leave")`.
    pub async fn close(&self) {
        if self.closed.get() {
            return;
        }
        if let Some(stop) = &self.watch_stop {
            stop.abort();
        }
        let _guard = self.lock.lock().await;
        self.closed.set(true);
        let _ = self.drop_connection("leave").await;
    }
}

impl CardChannel for SmartCardChannel {
    fn reader_name(&self) -> String {
        self.reader.clone()
    }

    fn atr(&self, _slot: u8) -> Option<Vec<u8>> {
        self.atr.borrow().clone()
    }

    async fn power_on(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        let mut held = self.hold().await?;
        if let Some(atr) = self.atr(slot) {
            return Ok(atr);
        }
        self.connect(&mut held, abort).await
    }

    async fn reset(&self, _slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        let mut held = self.hold().await?;
        let _ = self.drop_connection("reset").await;
        self.connect(&mut held, abort).await
    }

    async fn transmit(
        &self,
        _slot: u8,
        apdu: Vec<u8>,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        if abort.is_some_and(Abort::is_aborted) {
            return Err(DriverError::Aborted);
        }
        let mut held = self.hold().await?;
        let Some((handle, protocol)) = self.handle() else {
            return Err(channel_error(
                ErrorCode::CardAbsent,
                "the card is not powered",
            ));
        };
        if self.templates.get() && self.transaction.borrow().is_none() {
            self.begin_transaction(&mut held, &handle, abort).await?;
        }
        if protocol == Protocol::T1 {
            return self.send(&mut held, &handle, &apdu, abort).await;
        }
        let mut exchange = start_t0(&apdu).map_err(t0_error)?;
        let mut tpdu = exchange.first_tpdu();
        loop {
            let answer = self.send(&mut held, &handle, &tpdu, abort).await?;
            match exchange.on_response(&answer).map_err(t0_error)? {
                T0Step::Send(next) => tpdu = next,
                T0Step::Done(response) => return Ok(response),
            }
        }
    }

    async fn status(&self, _slot: u8) -> Result<SlotState, DriverError> {
        let mut held = self.hold().await?;
        let Some((handle, _)) = self.handle() else {
            return Ok(SlotState {
                present: self.present.get(),
                atr: None,
            });
        };
        match held
            .wait(invoke(&handle, "status", &Array::new()), None, None)
            .await?
        {
            Ok(status) => Ok(SlotState {
                present: key(&status, "state").as_string().as_deref() != Some("absent"),
                atr: self.atr.borrow().clone(),
            }),
            Err(e) => {
                let error = self.on_failure("status", &e, &mut held).await;
                if error.code() == ErrorCode::CardAbsent {
                    return Ok(SlotState {
                        present: false,
                        atr: None,
                    });
                }
                Err(error)
            }
        }
    }

    async fn power_off(&self, _slot: u8) -> Result<(), DriverError> {
        let _held = self.hold().await?;
        self.drop_connection("unpower")
            .await
            .map_err(|e| failure("disconnect", &e))
    }

    async fn verify_pin_on_pad(
        &self,
        _slot: u8,
        pin: &PinVerify,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        self.verify_on_pad(pin, abort).await
    }

    fn set_event_sink(&self, sink: Box<dyn Fn(DriverEvent)>) {
        *self.sink.borrow_mut() = Some(sink);
    }
}

/// The card channels of the browser build as one type: the update loop (a large async state
/// machine) is compiled once for both routes instead of once per channel type.
#[derive(Debug)]
pub enum WebChannel {
    /// A CCID reader over WebUSB.
    Usb(Rc<CcidDriver<WebUsb>>),
    /// A reader through the Web Smart Card API.
    SmartCard(Rc<SmartCardChannel>),
}

impl WebChannel {
    /// The HTTP client of an update on this channel: on the smart card route each template's
    /// transaction ends before the next POST.
    pub(crate) fn http(&self, fetch: WebFetch) -> Box<dyn HttpClient> {
        match self {
            Self::Usb(_) => Box::new(fetch),
            Self::SmartCard(channel) => Box::new(TemplateHttp {
                inner: Rc::new(fetch),
                channel: Rc::clone(channel),
            }),
        }
    }
}

impl CardChannel for WebChannel {
    fn reader_name(&self) -> String {
        match self {
            Self::Usb(c) => c.reader_name(),
            Self::SmartCard(c) => c.reader_name(),
        }
    }

    fn atr(&self, slot: u8) -> Option<Vec<u8>> {
        match self {
            Self::Usb(c) => CardChannel::atr(c.as_ref(), slot),
            Self::SmartCard(c) => c.atr(slot),
        }
    }

    async fn power_on(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        match self {
            Self::Usb(c) => c.power_on(slot, abort).await,
            Self::SmartCard(c) => c.power_on(slot, abort).await,
        }
    }

    async fn reset(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        match self {
            Self::Usb(c) => c.reset(slot, abort).await,
            Self::SmartCard(c) => c.reset(slot, abort).await,
        }
    }

    async fn transmit(
        &self,
        slot: u8,
        apdu: Vec<u8>,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        match self {
            Self::Usb(c) => c.transmit(slot, apdu, abort).await,
            Self::SmartCard(c) => c.transmit(slot, apdu, abort).await,
        }
    }

    async fn status(&self, slot: u8) -> Result<SlotState, DriverError> {
        match self {
            Self::Usb(c) => CardChannel::status(c.as_ref(), slot).await,
            Self::SmartCard(c) => c.status(slot).await,
        }
    }

    async fn power_off(&self, slot: u8) -> Result<(), DriverError> {
        match self {
            Self::Usb(c) => c.power_off(slot).await,
            Self::SmartCard(c) => c.power_off(slot).await,
        }
    }

    async fn verify_pin_on_pad(
        &self,
        slot: u8,
        pin: &PinVerify,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        match self {
            Self::Usb(c) => c.verify_pin_on_pad(slot, pin, abort).await,
            Self::SmartCard(c) => c.verify_pin_on_pad(slot, pin, abort).await,
        }
    }

    fn set_event_sink(&self, sink: Box<dyn Fn(DriverEvent)>) {
        match self {
            Self::Usb(c) => CardChannel::set_event_sink(c.as_ref(), sink),
            Self::SmartCard(c) => c.set_event_sink(sink),
        }
    }
}

/// The `fetch` client of a smart card update: the template's transaction ends before each
/// POST (the server may take its time; other applications may use the card meanwhile).
struct TemplateHttp {
    inner: Rc<WebFetch>,
    channel: Rc<SmartCardChannel>,
}

impl HttpClient for TemplateHttp {
    fn post(
        &self,
        request: HttpRequest,
        timeout_ms: u64,
    ) -> LocalBoxFuture<Result<HttpResponse, HttpError>> {
        let inner = Rc::clone(&self.inner);
        let channel = Rc::clone(&self.channel);
        Box::pin(async move {
            channel.end_template().await;
            inner.post(request, timeout_ms).await
        })
    }
}
