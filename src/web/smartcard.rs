//! The Web Smart Card API adapter: a [`CardChannel`] over `navigator.smartCard` (WICG Web
//! Smart Card API, `index.bs`), and [`SmartCardCore`] under `CardReader.openSmartCard()`.
//!
//! The resource manager is used structurally: methods are called by name (`platform.js`), a
//! synchronous throw becomes a rejection, nothing is checked with `instanceof`, so any object
//! with the IDL's shape works (Chrome's, a test fake, another provider). The platform glue
//! (the calls that involve no protocol decision) is JavaScript; the decisions (the FIFO lock,
//! aborts, the T=0 follow-up, transactions per template, what a failure means, the events)
//! are here.
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

use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortController;

use crate::channel::{start_t0, CardChannel, SlotState};
use crate::driver::smartcard::{classify, pin_verify_structure, GET_FEATURE_REQUEST};
use crate::driver::sync::{race, Abort, Either, FifoLock, LockGuard};
use crate::driver::update::{HttpClient, HttpError};
use crate::driver::usb::LocalBoxFuture;
use crate::driver::{CcidDriver, DriverError, DriverEvent, ErrorCode};
use crate::proto::t0::{T0Error, T0Step};
use crate::reader::{Command, PinVerify};
use crate::session::{HttpRequest, HttpResponse};
use crate::web::fetch::WebFetch;
use crate::web::promise::Settled;
use crate::web::usb::WebUsb;

mod api;

pub use api::SmartCardCore;

// The platform glue of the route is in platform.js (`scOpen`, `scWatch`, `scConnect`,
// `scBegin`, ...): each helper turns a sequence of API calls that involves no protocol
// decision into one promise, so the wasm holds one awaited promise where it held an async
// state machine per call (issue 18: the route was 39 KB of wasm). A helper rejects with
// `[call, error]`, which [`helper_failure`] classifies.
#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    /// `target[name](arg)` as a promise.
    fn call(target: &JsValue, name: &str, arg: &JsValue) -> Promise;
    /// `manager`, else `navigator.smartCard`.
    #[wasm_bindgen(js_name = scManager)]
    fn sc_manager(manager: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = scList)]
    fn sc_list(manager: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = scOpen)]
    fn sc_open(manager: &JsValue, reader: &JsValue, signal: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = scWatch)]
    fn sc_watch(context: &JsValue, reader: &str, signal: &JsValue, callback: &JsValue);
    #[wasm_bindgen(js_name = scConnect)]
    fn sc_connect(context: &JsValue, reader: &str, features: Option<u32>) -> Promise;
    /// `handle[name]([code,] data)`, resolving to the bytes of the answer (null without).
    #[wasm_bindgen(js_name = scBytes)]
    fn sc_bytes(handle: &JsValue, name: &str, data: &[u8], code: Option<u32>) -> Promise;
    #[wasm_bindgen(js_name = scState)]
    fn sc_state(handle: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = scBegin)]
    fn sc_begin(handle: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = scEnd)]
    fn sc_end(transaction: &JsValue) -> Promise;
    #[wasm_bindgen(js_name = scError)]
    fn sc_error(e: &JsValue) -> Array;
    #[wasm_bindgen(js_name = scStatus)]
    fn sc_status(present: bool, powered: bool, atr: Option<Vec<u8>>, protocol: &JsValue)
        -> JsValue;
}

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

/// Classifies a rejection of `call` ([`crate::driver::smartcard`]).
fn failure(call: &str, e: &JsValue) -> DriverError {
    let parts = sc_error(e);
    let text = |i| parts.get(i).as_string();
    classify(
        call,
        &text(0).unwrap_or_default(),
        text(1).as_deref(),
        &text(2).unwrap_or_default(),
    )
}

/// Classifies a helper's `[call, error]` rejection (see the helpers above).
fn helper_failure(e: &JsValue) -> DriverError {
    if !Array::is_array(e) {
        return failure("open", e);
    }
    let parts: &Array = e.unchecked_ref();
    match parts.get(0).as_string().as_deref() {
        Some("aborted") => DriverError::Aborted,
        Some("no-reader") => DriverError::SmartCard {
            code: ErrorCode::Disconnected,
            message: "open: no smart card reader".into(),
            hint: "The smart card service lists no reader. Plug one in and try again.",
        },
        Some("unknown-reader") => classify("open", "SmartCardError", Some("unknown-reader"), ""),
        Some(call) => failure(call, &parts.get(1)),
        None => failure("open", &parts.get(1)),
    }
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

/// The bytes a helper resolved to (a `Uint8Array`, or `null` when the answer had none).
fn answer_bytes(value: &JsValue) -> Option<Vec<u8>> {
    (!value.is_null() && !value.is_undefined())
        .then(|| value.unchecked_ref::<Uint8Array>().to_vec())
}

/// The lock of the main context, held for one channel operation.
struct Held(Option<LockGuard>);

/// What to do with the outcome of a call nobody waits for any more.
type Cleanup = fn(Result<JsValue, JsValue>) -> LocalBoxFuture<()>;

/// Runs a task on the page's event loop (one boxed type: one copy of the executor's code).
fn spawn(task: LocalBoxFuture<()>) {
    crate::web::promise::spawn(task);
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
    Settled::new(&call(handle, "disconnect", &JsValue::from_str(disposition)))
        .await
        .map(|_| ())
}

/// A connection `scConnect` gave after its caller stopped waiting: left as it is.
fn leave_late_connection(outcome: Result<JsValue, JsValue>) -> LocalBoxFuture<()> {
    Box::pin(async move {
        if let Ok(result) = outcome {
            let _ = disconnect(&Array::from(&result).get(0), "leave").await;
        }
    })
}

/// A transaction `scBegin` started after its caller stopped waiting: ended at once.
fn end_late_transaction(outcome: Result<JsValue, JsValue>) -> LocalBoxFuture<()> {
    Box::pin(async move {
        match outcome {
            Ok(transaction) if !transaction.is_null() => {
                let _ = Settled::new(&sc_end(&transaction)).await;
            }
            _ => {}
        }
    })
}

/// The callback of `scWatch`: `(state, error)`.
type Watcher = Closure<dyn FnMut(u32, JsValue)>;

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
    /// The running `startTransaction()` as `scBegin` gave it: `[finish, done]`.
    transaction: RefCell<Option<JsValue>>,
    sink: RefCell<Option<EventSink>>,
    watch_stop: AbortController,
    /// The callback of `scWatch`, alive as long as the channel.
    watcher: RefCell<Option<Watcher>>,
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

impl Drop for SmartCardChannel {
    /// Ends the events' wait: its callback goes with the channel.
    fn drop(&mut self) {
        self.watch_stop.abort();
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

    /// Ends the running transaction, if any (the lock is held): the callback's promise
    /// resolves with "leave", then startTransaction's settles once EndTransaction ran
    /// (until then the context is busy).
    async fn end_transaction(&self) {
        let Some(t) = self.transaction.borrow_mut().take() else {
            return;
        };
        let _ = Settled::new(&sc_end(&t)).await;
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

    /// `connect()` then `status()` for the ATR and protocol, and the PIN-pad features at the
    /// first connection (`scConnect`; the lock is held).
    async fn connect(
        &self,
        held: &mut Held,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        let features = self.pin_pad.get().is_none().then_some(GET_FEATURE_REQUEST);
        let connect = sc_connect(&self.context, &self.reader, features);
        let result = held
            .wait(connect, abort, Some(leave_late_connection))
            .await?
            .map_err(|e| helper_failure(&e))?;
        let result = Array::from(&result);
        let handle = result.get(0);
        let protocol = match result.get(1).as_string().as_deref() {
            Some("t0") => Some(Protocol::T0),
            Some("t1") => Some(Protocol::T1),
            _ => None,
        };
        let atr = answer_bytes(&result.get(2)).filter(|a| !a.is_empty());
        let (Some(protocol), Some(atr)) = (protocol, atr) else {
            let _ = disconnect(&handle, "leave").await;
            return Err(channel_error(
                ErrorCode::Protocol,
                "the card gave no atr or uses neither t=0 nor t=1",
            ));
        };
        if features.is_some() {
            // A reader without the feature (or a stack without control()) has no PIN pad.
            let features = answer_bytes(&result.get(3)).unwrap_or_default();
            self.pin_pad
                .set(Some(crate::driver::smartcard::verify_pin_code(&features)));
        }
        *self.connection.borrow_mut() = Some(Connection { handle, protocol });
        *self.atr.borrow_mut() = Some(atr.clone());
        self.set_present(true);
        Ok(atr)
    }

    /// What a failed call on the connection means; cleans up after a removed or reset card.
    async fn on_failure(&self, call: &str, e: &JsValue, held: &mut Held) -> DriverError {
        let error = failure(call, e);
        let code = sc_error(e).get(1).as_string();
        match code.as_deref() {
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
        let outcome = held
            .wait(sc_begin(handle), abort, Some(end_late_transaction))
            .await?;
        match outcome {
            Ok(t) if !t.is_null() => {
                *self.transaction.borrow_mut() = Some(t);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(self.on_failure("startTransaction", &e, held).await),
        }
    }

    /// `handle[name]([code,] data)` (transmit, control) for the bytes of the answer.
    async fn exchange(
        &self,
        held: &mut Held,
        handle: &JsValue,
        name: &str,
        data: &[u8],
        code: Option<u32>,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        match held
            .wait(sc_bytes(handle, name, data, code), abort, None)
            .await?
        {
            Ok(answer) => answer_bytes(&answer)
                .ok_or_else(|| channel_error(ErrorCode::Protocol, "the reader gave no bytes")),
            Err(e) => Err(self.on_failure(name, &e, held).await),
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
        let data = pin_verify_structure(pin);
        let answer = self
            .exchange(&mut held, &handle, "control", &data, Some(code), abort)
            .await?;
        match answer.as_slice() {
            [0x64, 0x00] => Err(channel_error(ErrorCode::Timeout, "no pin entered in time")),
            [0x64, 0x01] => Err(channel_error(ErrorCode::Aborted, "pin entry cancelled")),
            sw @ [_, _] => Ok(sw.to_vec()),
            _ => Err(channel_error(
                ErrorCode::Protocol,
                "the pin pad gave no status word",
            )),
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

    /// Follows the reader's state on a context of its own (`scWatch`) until the channel
    /// closes or the reader goes: insertions, removals (also a card swapped between two
    /// answers: `eventCount` moved), the reader unplugged or the service gone.
    fn watch(self: &Rc<Self>, context: &JsValue) {
        let channel = Rc::downgrade(self);
        let callback = Watcher::new(move |state: u32, e: JsValue| {
            Self::on_state(&channel, state, &e);
        });
        sc_watch(
            context,
            &self.reader,
            &self.watch_stop.signal(),
            callback.as_ref(),
        );
        *self.watcher.borrow_mut() = Some(callback);
    }

    /// One answer of `scWatch` (see the helpers).
    fn on_state(channel: &Weak<Self>, state: u32, e: &JsValue) {
        let Some(ch) = channel.upgrade() else {
            return;
        };
        if ch.closed.get() {
            return;
        }
        match state {
            3 => ch.on_gone(),
            4 => {
                let code = failure("getStatusChange", e).code();
                if matches!(
                    code,
                    ErrorCode::Disconnected | ErrorCode::ServiceUnavailable
                ) {
                    ch.on_gone();
                }
            }
            _ => {
                let present = state != 0;
                // Removed and inserted again between two answers: eventCount moved.
                let replaced = state == 2 && ch.present.get();
                if replaced || (!present && ch.present.get()) {
                    ch.on_removed();
                }
                if present {
                    ch.set_present(true);
                }
            }
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
        self.watch_stop.abort();
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
        command: Command,
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
            return self
                .exchange(&mut held, &handle, "transmit", command.bytes(), None, abort)
                .await;
        }
        let mut exchange = start_t0(&command).map_err(t0_error)?;
        let mut tpdu = exchange.first_tpdu();
        loop {
            let answer = self
                .exchange(&mut held, &handle, "transmit", &tpdu, None, abort)
                .await?;
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
        match held.wait(sc_state(&handle), None, None).await? {
            Ok(status) => Ok(SlotState {
                present: status.as_string().as_deref() != Some("absent"),
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

    /// Known from the first connection on (GET_FEATURE_REQUEST in `scConnect`).
    fn has_pin_pad(&self) -> bool {
        matches!(self.pin_pad.get(), Some(Some(_)))
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
        command: Command,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        match self {
            Self::Usb(c) => c.transmit(slot, command, abort).await,
            Self::SmartCard(c) => c.transmit(slot, command, abort).await,
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

    fn has_pin_pad(&self) -> bool {
        match self {
            Self::Usb(c) => c.has_pin_pad(),
            Self::SmartCard(c) => c.has_pin_pad(),
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
