//! The card channel over PC/SC ([`card_relay::channel::CardChannel`]).
//!
//! - One thread per connected card makes every PC/SC call, so none blocks the async
//!   executor; requests go to it over a queue, answers come back on one-shot channels.
//! - Shared access: other programs keep using the reader. Each server template runs inside
//!   one PC/SC transaction (`SCardBeginTransaction` at its first command, ended by
//!   [`PcscChannel::end_template`] before the next POST), so no other program's commands
//!   come between the commands of one template.
//! - T=0: `SCardTransmit` answers `61xx` / `6Cxx` to its caller (PC/SC part 3); the
//!   channel follows them up with [`card_relay::channel::transmit_t0`], the rules the CCID
//!   path uses at TPDU level, so a server sees the same answers on both routes.
//! - Reset (`C0`) is `SCardReconnect(SCARD_RESET_CARD)`; the new ATR comes from
//!   `SCardStatus`.
//! - A card removed mid-session fails the command with `card-absent` and emits
//!   [`DriverEvent::CardRemoved`].
//! - Insert and remove events come from a watcher on a PC/SC context of its own and a
//!   thread of its own, so its pending `SCardGetStatusChange` never holds up a command:
//!   each wait gives the reader's last `dwEventState` as `dwCurrentState` (PC/SC part 5
//!   §3.1.4), the insertion/removal counter pcsc-lite and WinSCard keep in its high word
//!   included, so a card swapped between two waits shows as a removal and an insertion.
//!   `SCARD_STATE_UNKNOWN` or an unknown reader is [`DriverEvent::Disconnected`]. Closing
//!   the channel ends the wait with `SCardCancel`.
//! - `SCARD_W_RESET_CARD` (another program reset the card, shared access) on a transmit or
//!   a status: the handle is re-established with `SCardReconnect(SCARD_LEAVE_CARD)` and the
//!   new ATR read, and the command fails with the hint the Web Smart Card API route gives
//!   for `reset-card` ([`card_relay::driver::smartcard`]): what was selected or verified
//!   on the card is lost, so carrying on would be wrong.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use card_relay::channel::{transmit_t0, CardChannel, SlotState, T0TransmitError};
use card_relay::driver::smartcard::classify;
use card_relay::driver::sync::{race, Abort, Either};
use card_relay::driver::{DriverError, DriverEvent, ErrorCode};
use card_relay::proto::t0::T0Error;
use card_relay::reader::Command;
use tokio::sync::oneshot;

use crate::pcsc_api::{
    CardOps, Pcsc, PcscCard, PcscError, Protocol, StatusWatch, STATE_CHANGED, STATE_PRESENT,
    STATE_UNKNOWN,
};

/// Why a request to the card thread failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardFailure {
    /// PC/SC's own error.
    Pcsc(PcscError),
    /// The command cannot go over T=0, or the card broke the T=0 rules.
    T0(T0Error),
    /// The card thread is gone (the channel was closed).
    Closed,
    /// An answer without SW1 SW2.
    ShortResponse,
    /// Another program reset the card (`SCARD_W_RESET_CARD` on `call`); the connection
    /// was re-established and the card answered `atr`.
    ResetByOther {
        /// The failed call (`transmit`, `status`).
        call: &'static str,
        /// The ATR after the reset.
        atr: Vec<u8>,
    },
}

type Reply<T> = oneshot::Sender<Result<T, CardFailure>>;

enum Request {
    Transmit(Command, Reply<Vec<u8>>),
    Control(u32, Vec<u8>, Reply<Vec<u8>>),
    Reset(Reply<Vec<u8>>),
    Status(Reply<Vec<u8>>),
    Begin,
    End,
    /// Disconnect (resetting the card or not), then tell the channel.
    Disconnect(bool, Option<oneshot::Sender<()>>),
}

/// The card thread: owns the connection and serves requests until it is told to disconnect
/// or the channel is dropped.
struct Worker {
    card: Box<dyn PcscCard>,
    requests: mpsc::Receiver<Request>,
    protocol: Protocol,
}

impl Worker {
    fn run(mut self) {
        let mut protocol = self.protocol;
        let requests = &self.requests;
        while let Ok(request) = requests.recv() {
            match request {
                Request::Begin => {
                    let mut disconnect = None;
                    let mut body = |ops: &mut dyn CardOps| {
                        while let Ok(request) = requests.recv() {
                            match request {
                                Request::End => return,
                                Request::Begin => {}
                                Request::Disconnect(reset, done) => {
                                    disconnect = Some((reset, done));
                                    return;
                                }
                                other => serve(ops, &mut protocol, other),
                            }
                        }
                    };
                    // A transaction that cannot start (card gone, reset by another program)
                    // leaves the requests to be served outside one: they fail the same way.
                    let _ = self.card.transaction(&mut body);
                    if let Some((reset, done)) = disconnect {
                        self.card.disconnect(reset);
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                        return;
                    }
                }
                Request::End => {}
                Request::Disconnect(reset, done) => {
                    self.card.disconnect(reset);
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
                other => serve(self.card.as_mut(), &mut protocol, other),
            }
        }
        self.card.disconnect(false);
    }
}

fn serve(ops: &mut dyn CardOps, protocol: &mut Protocol, request: Request) {
    match request {
        Request::Transmit(command, reply) => {
            let _ = reply.send(transmit(ops, protocol, &command));
        }
        Request::Control(code, input, reply) => {
            let _ = reply.send(ops.control(code, &input).map_err(CardFailure::Pcsc));
        }
        Request::Reset(reply) => {
            let result = ops.reconnect(true).and_then(|()| ops.status());
            let result = result.map(|(atr, p)| {
                *protocol = p;
                atr
            });
            let _ = reply.send(result.map_err(CardFailure::Pcsc));
        }
        Request::Status(reply) => {
            let result = match ops.status() {
                Ok((atr, _)) => Ok(atr),
                Err(PcscError::ResetCard) => Err(after_reset(ops, protocol, "status")),
                Err(e) => Err(CardFailure::Pcsc(e)),
            };
            let _ = reply.send(result);
        }
        Request::Begin | Request::End | Request::Disconnect(..) => {}
    }
}

/// Another program reset the card in shared mode: the handle stays invalid until
/// `SCardReconnect` (PC/SC part 5 §3.1.8, `SCARD_W_RESET_CARD`), which leaves the card as it
/// is; then the new ATR and protocol.
fn after_reset(ops: &mut dyn CardOps, protocol: &mut Protocol, call: &'static str) -> CardFailure {
    match ops.reconnect(false).and_then(|()| ops.status()) {
        Ok((atr, p)) => {
            *protocol = p;
            CardFailure::ResetByOther { call, atr }
        }
        Err(e) => CardFailure::Pcsc(e),
    }
}

fn transmit(
    ops: &mut dyn CardOps,
    protocol: &mut Protocol,
    command: &Command,
) -> Result<Vec<u8>, CardFailure> {
    let result = match *protocol {
        Protocol::T1 => ops.transmit(command.bytes()).map_err(CardFailure::Pcsc),
        Protocol::T0 => transmit_t0(command, |tpdu| ops.transmit(tpdu)).map_err(|e| match e {
            T0TransmitError::T0(e) => CardFailure::T0(e),
            T0TransmitError::Transport(e) => CardFailure::Pcsc(e),
        }),
    };
    if matches!(result, Err(CardFailure::Pcsc(PcscError::ResetCard))) {
        return Err(after_reset(ops, protocol, "transmit"));
    }
    let card_failed = match &result {
        Ok(response) => response.len() < 2,
        Err(CardFailure::Pcsc(e)) => !is_removal(e),
        Err(CardFailure::T0(e)) => !matches!(e, T0Error::ExtendedNotSupported | T0Error::Apdu(_)),
        Err(_) => false,
    };
    if !card_failed {
        return result;
    }
    // A card that vanished mid-command shows as a failed transmission or an empty answer
    // (vpcd answers nothing), and the service reports the removal at its next poll of the
    // reader (pcscd: every 400 ms): the card's status decides, asked for a while.
    let deadline = Instant::now() + REMOVAL_GRACE;
    loop {
        if let Err(status) = ops.status() {
            if is_removal(&status) {
                return Err(CardFailure::Pcsc(status));
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    match result {
        Ok(_) => Err(CardFailure::ShortResponse),
        other => other,
    }
}

/// How long a failed command waits for the service to report a removal.
const REMOVAL_GRACE: Duration = Duration::from_millis(1200);

fn is_removal(e: &PcscError) -> bool {
    matches!(e, PcscError::RemovedCard | PcscError::NoSmartcard)
}

/// The stable code and message of a PC/SC failure.
pub fn driver_error(failure: CardFailure) -> DriverError {
    let (code, message) = match failure {
        CardFailure::T0(T0Error::ExtendedNotSupported) => (
            ErrorCode::InvalidArgument,
            "extended apdu not supported over t=0".into(),
        ),
        CardFailure::T0(T0Error::Apdu(e)) => {
            (ErrorCode::InvalidArgument, format!("invalid apdu: {e}"))
        }
        CardFailure::T0(e) => (ErrorCode::Protocol, e.to_string()),
        CardFailure::Closed => (ErrorCode::Disconnected, "card connection closed".into()),
        CardFailure::ShortResponse => (
            ErrorCode::Protocol,
            "card answer shorter than sw1 sw2".into(),
        ),
        CardFailure::Pcsc(e) => pcsc_code(&e),
        // The Web Smart Card API route's row for `reset-card`: the same code and hint.
        CardFailure::ResetByOther { call, .. } => {
            return classify(call, "SmartCardError", Some("reset-card"), "");
        }
    };
    DriverError::Channel { code, message }
}

/// Classifies a PC/SC error (PC/SC part 5 §3.1, pcsc-lite's `pcsclite.h`).
pub fn pcsc_code(e: &PcscError) -> (ErrorCode, String) {
    use PcscError as E;
    let (code, text) = match e {
        E::NoSmartcard => (ErrorCode::CardAbsent, "no card in the reader"),
        E::RemovedCard => (ErrorCode::CardAbsent, "the card was removed"),
        E::UnresponsiveCard | E::UnpoweredCard | E::UnsupportedCard => {
            (ErrorCode::CardMute, "the card does not answer")
        }
        E::ReaderUnavailable | E::UnknownReader | E::NoReadersAvailable => {
            (ErrorCode::Disconnected, "the reader is gone")
        }
        E::SharingViolation => (
            ErrorCode::DeviceBusy,
            "another program holds the card exclusively",
        ),
        E::NoService | E::ServiceStopped => {
            (ErrorCode::Disconnected, "the pc/sc service is not running")
        }
        E::Timeout => (ErrorCode::Timeout, "the card did not answer in time"),
        E::Cancelled | E::CancelledByUser => (ErrorCode::Aborted, "cancelled"),
        E::ResetCard => (ErrorCode::Protocol, "another program reset the card"),
        _ => return (ErrorCode::Protocol, format!("pc/sc: {}", lowercase(e))),
    };
    (code, text.to_owned())
}

fn lowercase(e: &PcscError) -> String {
    let text = e.to_string();
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

type EventSink = Box<dyn Fn(DriverEvent)>;

/// What the watcher saw happen in the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A card came in.
    Inserted,
    /// The card went out.
    Removed,
    /// The reader went away (unplugged, or the service stopped).
    Gone,
}

/// The watcher's knowledge of the reader between two waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// A card is in the reader.
    pub present: bool,
    /// The `dwCurrentState` of the next wait: the last `dwEventState` without
    /// `SCARD_STATE_CHANGED`, `SCARD_STATE_UNAWARE` (0) before the first.
    pub current: u32,
    /// The insertion/removal counter (high word of `dwEventState`) once known.
    pub counter: Option<u32>,
}

impl Seen {
    /// Before the first wait: the channel connected to a card, so one is present.
    pub fn connected() -> Self {
        Seen {
            present: true,
            current: 0,
            counter: None,
        }
    }

    /// The changes a new `dwEventState` shows. The counter counts insertions and removals:
    /// if it moved while presence looks the same, a card went out and in (or in and out)
    /// between two waits.
    pub fn update(&mut self, state: u32) -> Vec<Change> {
        if state & STATE_UNKNOWN != 0 {
            return vec![Change::Gone];
        }
        let present = state & STATE_PRESENT != 0;
        let counter = state >> 16;
        let moved = self
            .counter
            .is_some_and(|before| counter.wrapping_sub(before) & 0xFFFF != 0);
        let changes = match (self.present, present) {
            (true, false) => vec![Change::Removed],
            (false, true) => vec![Change::Inserted],
            (true, true) if moved => vec![Change::Removed, Change::Inserted],
            (false, false) if moved => vec![Change::Inserted, Change::Removed],
            _ => Vec::new(),
        };
        *self = Seen {
            present,
            current: state & !STATE_CHANGED,
            counter: Some(counter),
        };
        changes
    }
}

/// The longest single wait of the watcher: `SCardCancel` ends a pending wait at once, this
/// bounds the case where the cancel came just before the wait began.
const WATCH_SLICE: Duration = Duration::from_millis(500);

/// The watcher thread: waits for changes of `reader` until stopped, sends what it sees.
fn watch(
    watch: &dyn StatusWatch,
    reader: &str,
    stop: &AtomicBool,
    changes: &tokio::sync::mpsc::UnboundedSender<Change>,
) {
    let mut seen = Seen::connected();
    while !stop.load(Ordering::SeqCst) {
        let seen_now = match watch.wait(reader, seen.current, WATCH_SLICE) {
            Ok(state) => seen.update(state),
            Err(PcscError::Timeout) => continue,
            Err(PcscError::Cancelled) => return,
            Err(
                PcscError::UnknownReader
                | PcscError::ReaderUnavailable
                | PcscError::NoReadersAvailable
                | PcscError::NoService
                | PcscError::ServiceStopped,
            ) => vec![Change::Gone],
            Err(_) => {
                std::thread::sleep(WATCH_SLICE);
                continue;
            }
        };
        for change in seen_now {
            if changes.send(change).is_err() || change == Change::Gone {
                return;
            }
        }
    }
}

/// The watcher of a channel: stopped and its wait cancelled when the channel closes.
struct Watcher {
    watch: Arc<dyn StatusWatch>,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    fn start(watch: Box<dyn StatusWatch>, reader: &str, shared: &Rc<Shared>) -> Option<Self> {
        let watch: Arc<dyn StatusWatch> = Arc::from(watch);
        let stop = Arc::new(AtomicBool::new(false));
        let (send, mut changes) = tokio::sync::mpsc::unbounded_channel();
        let (thread_watch, thread_stop, name) =
            (Arc::clone(&watch), Arc::clone(&stop), reader.to_owned());
        std::thread::Builder::new()
            .name("pc/sc watch".into())
            .spawn(move || self::watch(thread_watch.as_ref(), &name, &thread_stop, &send))
            .ok()?;
        let shared: Weak<Shared> = Rc::downgrade(shared);
        tokio::task::spawn_local(async move {
            while let Some(change) = changes.recv().await {
                match shared.upgrade() {
                    Some(shared) => shared.apply(change),
                    None => return,
                }
            }
        });
        Some(Watcher { watch, stop })
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.watch.cancel();
    }
}

/// What the channel and its watcher share: the card's state and the event sink.
struct Shared {
    atr: RefCell<Option<Vec<u8>>>,
    present: Cell<bool>,
    sink: RefCell<Option<EventSink>>,
}

impl Shared {
    /// Emits an event for a change that is news (a removal seen by a failed command and
    /// by the watcher is one removal).
    fn apply(&self, change: Change) {
        match change {
            Change::Removed => {
                self.atr.borrow_mut().take();
                if self.present.replace(false) {
                    self.emit(DriverEvent::CardRemoved(0));
                }
            }
            Change::Inserted => {
                if !self.present.replace(true) {
                    self.emit(DriverEvent::CardInserted(0));
                }
            }
            Change::Gone => {
                self.atr.borrow_mut().take();
                self.present.set(false);
                self.emit(DriverEvent::Disconnected);
            }
        }
    }

    fn emit(&self, event: DriverEvent) {
        if let Some(sink) = self.sink.borrow().as_ref() {
            sink(event);
        }
    }
}

/// A card connected through PC/SC.
pub struct PcscChannel {
    name: String,
    requests: mpsc::Sender<Request>,
    shared: Rc<Shared>,
    watcher: Option<Watcher>,
    in_transaction: Cell<bool>,
    closed: Cell<bool>,
}

impl std::fmt::Debug for PcscChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscChannel")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PcscChannel {
    /// Connects to the card in `reader` (shared, T=0 or T=1) on a thread of its own.
    ///
    /// Its insert/remove watcher needs a `LocalSet` (as the agent runs); without a context of
    /// its own (`SCardEstablishContext` failing) the channel has no watcher and reports a
    /// removal only when a command finds the card gone.
    pub async fn open(pcsc: Arc<dyn Pcsc>, reader: &str) -> Result<Self, DriverError> {
        let watch = pcsc.watcher().ok();
        let (ready, connected) = oneshot::channel();
        let (requests, queue) = mpsc::channel();
        let name = reader.to_owned();
        std::thread::Builder::new()
            .name("pc/sc card".into())
            .spawn(move || {
                let mut card = match pcsc.connect(&name) {
                    Ok(card) => card,
                    Err(e) => {
                        let _ = ready.send(Err(CardFailure::Pcsc(e)));
                        return;
                    }
                };
                match card.status() {
                    Ok((atr, protocol)) => {
                        let _ = ready.send(Ok(atr));
                        Worker {
                            card,
                            requests: queue,
                            protocol,
                        }
                        .run();
                    }
                    Err(e) => {
                        let _ = ready.send(Err(CardFailure::Pcsc(e)));
                        card.disconnect(false);
                    }
                }
            })
            .map_err(|e| DriverError::Channel {
                code: ErrorCode::Protocol,
                message: format!("cannot start the card thread: {e}"),
            })?;
        let atr = connected
            .await
            .unwrap_or(Err(CardFailure::Closed))
            .map_err(driver_error)?;
        let shared = Rc::new(Shared {
            atr: RefCell::new(Some(atr)),
            present: Cell::new(true),
            sink: RefCell::new(None),
        });
        let watcher = watch.and_then(|w| Watcher::start(w, reader, &shared));
        Ok(PcscChannel {
            name: reader.to_owned(),
            requests,
            shared,
            watcher,
            in_transaction: Cell::new(false),
            closed: Cell::new(false),
        })
    }

    /// Ends the transaction of the running template (before the next POST: the server may
    /// take its time, and other programs may use the card meanwhile).
    pub fn end_template(&self) {
        if self.in_transaction.replace(false) {
            let _ = self.requests.send(Request::End);
        }
    }

    /// Disconnects: the card is reset (`SCARD_RESET_CARD`) unless `reset` is false
    /// (`SCARD_LEAVE_CARD`, `-n`). Resolves once `SCardDisconnect` returned (at most 5 s):
    /// a program exiting earlier would leave the reset to happen under the next program's
    /// connection.
    pub async fn close(&self, reset: bool) {
        if self.closed.replace(true) {
            return;
        }
        self.stop_watching();
        self.end_template();
        let (done, disconnected) = oneshot::channel();
        if self
            .requests
            .send(Request::Disconnect(reset, Some(done)))
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(5), disconnected).await;
        }
    }

    /// `SCardControl` on the card's connection (PC/SC part 10 features).
    pub async fn control(
        &self,
        code: u32,
        input: Vec<u8>,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        self.call(|reply| Request::Control(code, input, reply), abort)
            .await
    }

    async fn call<T>(
        &self,
        request: impl FnOnce(Reply<T>) -> Request,
        abort: Option<&Abort>,
    ) -> Result<T, DriverError> {
        if self.closed.get() {
            return Err(driver_error(CardFailure::Closed));
        }
        let (reply, answer) = oneshot::channel();
        if self.requests.send(request(reply)).is_err() {
            return Err(driver_error(CardFailure::Closed));
        }
        let result = match abort {
            Some(abort) => {
                let mut answer = answer;
                let mut waiting = abort.wait();
                match race(&mut answer, &mut waiting).await {
                    Either::Left(r) => r,
                    // The card thread finishes the command; its answer is dropped.
                    Either::Right(()) => return Err(DriverError::Aborted),
                }
            }
            None => answer.await,
        };
        match result.unwrap_or(Err(CardFailure::Closed)) {
            Ok(v) => Ok(v),
            Err(failure) => {
                if let CardFailure::ResetByOther { atr, .. } = &failure {
                    *self.shared.atr.borrow_mut() = Some(atr.clone());
                }
                let error = driver_error(failure);
                if error.code() == ErrorCode::CardAbsent {
                    self.shared.apply(Change::Removed);
                }
                Err(error)
            }
        }
    }

    fn begin_template(&self) {
        if !self.in_transaction.replace(true) {
            let _ = self.requests.send(Request::Begin);
        }
    }

    fn stop_watching(&self) {
        if let Some(watcher) = &self.watcher {
            watcher.stop();
        }
    }
}

impl Drop for PcscChannel {
    fn drop(&mut self) {
        if !self.closed.replace(true) {
            self.stop_watching();
            self.end_template();
            let _ = self.requests.send(Request::Disconnect(true, None));
        }
    }
}

impl CardChannel for PcscChannel {
    fn reader_name(&self) -> String {
        self.name.clone()
    }

    fn atr(&self, _slot: u8) -> Option<Vec<u8>> {
        self.shared.atr.borrow().clone()
    }

    async fn reset(&self, _slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        self.begin_template();
        let atr = self.call(Request::Reset, abort).await?;
        *self.shared.atr.borrow_mut() = Some(atr.clone());
        Ok(atr)
    }

    async fn transmit(
        &self,
        _slot: u8,
        command: Command,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        self.begin_template();
        self.call(|reply| Request::Transmit(command, reply), abort)
            .await
    }

    async fn status(&self, _slot: u8) -> Result<SlotState, DriverError> {
        match self.call(Request::Status, None).await {
            Ok(atr) => Ok(SlotState {
                present: true,
                atr: Some(atr),
            }),
            Err(e) if e.code() == ErrorCode::CardAbsent => Ok(SlotState {
                present: false,
                atr: None,
            }),
            Err(e) => Err(e),
        }
    }

    async fn power_off(&self, _slot: u8) -> Result<(), DriverError> {
        self.close(true).await;
        Ok(())
    }

    fn set_event_sink(&self, sink: Box<dyn Fn(DriverEvent)>) {
        *self.shared.sink.borrow_mut() = Some(sink);
    }
}
