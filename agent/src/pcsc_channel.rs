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

use std::cell::{Cell, RefCell};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use card_relay::channel::{transmit_t0, CardChannel, SlotState, T0TransmitError};
use card_relay::driver::sync::{race, Abort, Either};
use card_relay::driver::{DriverError, DriverEvent, ErrorCode};
use card_relay::proto::t0::T0Error;
use tokio::sync::oneshot;

use crate::pcsc_api::{CardOps, Pcsc, PcscCard, PcscError, Protocol};

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
}

type Reply<T> = oneshot::Sender<Result<T, CardFailure>>;

enum Request {
    Transmit(Vec<u8>, Reply<Vec<u8>>),
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
        Request::Transmit(apdu, reply) => {
            let _ = reply.send(transmit(ops, *protocol, &apdu));
        }
        Request::Control(code, input, reply) => {
            let _ = reply.send(ops.control(code, &input).map_err(CardFailure::Pcsc));
        }
        Request::Reset(reply) => {
            let result = ops.reconnect_reset().and_then(|()| ops.status());
            let result = result.map(|(atr, p)| {
                *protocol = p;
                atr
            });
            let _ = reply.send(result.map_err(CardFailure::Pcsc));
        }
        Request::Status(reply) => {
            let _ = reply.send(ops.status().map(|(atr, _)| atr).map_err(CardFailure::Pcsc));
        }
        Request::Begin | Request::End | Request::Disconnect(..) => {}
    }
}

fn transmit(
    ops: &mut dyn CardOps,
    protocol: Protocol,
    apdu: &[u8],
) -> Result<Vec<u8>, CardFailure> {
    let result = match protocol {
        Protocol::T1 => ops.transmit(apdu).map_err(CardFailure::Pcsc),
        Protocol::T0 => transmit_t0(apdu, |tpdu| ops.transmit(tpdu)).map_err(|e| match e {
            T0TransmitError::T0(e) => CardFailure::T0(e),
            T0TransmitError::Transport(e) => CardFailure::Pcsc(e),
        }),
    };
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

/// A card connected through PC/SC.
pub struct PcscChannel {
    name: String,
    requests: mpsc::Sender<Request>,
    atr: RefCell<Option<Vec<u8>>>,
    in_transaction: Cell<bool>,
    closed: Cell<bool>,
    sink: RefCell<Option<EventSink>>,
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
    pub async fn open(pcsc: Arc<dyn Pcsc>, reader: &str) -> Result<Self, DriverError> {
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
        Ok(PcscChannel {
            name: reader.to_owned(),
            requests,
            atr: RefCell::new(Some(atr)),
            in_transaction: Cell::new(false),
            closed: Cell::new(false),
            sink: RefCell::new(None),
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
                let error = driver_error(failure);
                if error.code() == ErrorCode::CardAbsent && self.atr.borrow_mut().take().is_some() {
                    self.emit(DriverEvent::CardRemoved(0));
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

    fn emit(&self, event: DriverEvent) {
        if let Some(sink) = self.sink.borrow().as_ref() {
            sink(event);
        }
    }
}

impl Drop for PcscChannel {
    fn drop(&mut self) {
        if !self.closed.replace(true) {
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
        self.atr.borrow().clone()
    }

    async fn power_on(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        match CardChannel::atr(self, slot) {
            Some(atr) => Ok(atr),
            None => self.reset(slot, abort).await,
        }
    }

    async fn reset(&self, _slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        self.begin_template();
        let atr = self.call(Request::Reset, abort).await?;
        *self.atr.borrow_mut() = Some(atr.clone());
        Ok(atr)
    }

    async fn transmit(
        &self,
        _slot: u8,
        apdu: Vec<u8>,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        self.begin_template();
        self.call(|reply| Request::Transmit(apdu, reply), abort)
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
        *self.sink.borrow_mut() = Some(sink);
    }
}
