//! The one async loop: moves bytes between the reader state machine ([`crate::reader`]) and
//! a USB device ([`usb::UsbTransport`]), with time from a [`usb::Clock`].
//!
//! It is platform-free: in the browser the transport is WebUSB (`web::usb`); in native
//! tests it is the simulated reader. Semantics a caller can trip on:
//! - Operations on one reader run one at a time, in call order ([`sync::FifoLock`]).
//! - A bulk-IN read that outlived its operation (timeout, abort) is kept and awaited by the
//!   next operation: WebUSB cannot cancel a `transferIn`, and a new read queued behind the
//!   old one would never see the answer it waits for.
//! - One command per slot (CCID §5.2.5): after an operation that ended before its answer
//!   came (timeout, abort, a USB error, the card leaving), the next operation first waits
//!   for that answer, at most as long as it would wait for its own first answer, and drops
//!   it by bSeq. When that wait ends without it, the slot is aborted (CCID §5.3.1): the
//!   class request ABORT on the control pipe, then PC_to_RDR_Abort with the same bSeq, and
//!   the operation goes on once the reader answered the abort. Where the control transfer
//!   is refused (Chrome blocks control transfers to protected-class interfaces, a
//!   transport may not offer them, a reader may stall the request), PC_to_RDR_Abort is
//!   sent alone; a reader that still keeps the slot busy fails the operation with
//!   `timeout`, and the next operation tries again. Nothing new is sent before that.
//! - Card events: the interrupt endpoint is read again after a transient error, with
//!   backoff ([`INTERRUPT_RETRY_MS`]); only a disconnect ends the watch. While the pipe
//!   keeps failing ([`INTERRUPT_FAILURES_BEFORE_POLLING`] in a row), or when the reader has
//!   none, the slots are polled with GetSlotStatus every [`STATUS_POLL_MS`] while someone
//!   listens for events ([`CcidDriver::set_listening`]).
//! - The interface is released and the device closed on [`CcidDriver::close`]; after a
//!   disconnect every call fails with [`DriverError::Disconnected`].

pub mod error;
pub mod seram;
pub mod smartcard;
pub mod sync;
pub mod update;
pub mod usb;

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use crate::proto::ccid::IccStatus;
use crate::proto::ccid::Reassembler;
use crate::proto::descriptor::{self, CcidClassDescriptor, CcidInterface, ExchangeLevel};
use crate::reader::{
    Command, Kind, Operation, Outcome, PinVerify, PowerOff, PowerOn, PoweredOn, Reader,
    ReaderError, ReaderEvent, Start, Status, Ticket, Transmit, VerifyPin,
};

pub use error::{DriverError, ErrorCode};
use sync::{race, Abort, Either, FifoLock};
use usb::{
    Clock, ControlSetup, DeviceInfo, Direction, LocalBoxFuture, UsbCall, UsbError, UsbErrorKind,
    UsbTransport,
};

/// How often the slots are polled with GetSlotStatus when the interrupt endpoint cannot
/// tell about card changes (none, or failing).
pub const STATUS_POLL_MS: u64 = 500;
/// The first wait before reading a failed interrupt endpoint again; it doubles with each
/// failure in a row, up to [`INTERRUPT_RETRY_MAX_MS`].
pub const INTERRUPT_RETRY_MS: u64 = 50;
/// The longest wait between two attempts on a failing interrupt endpoint.
pub const INTERRUPT_RETRY_MAX_MS: u64 = 5_000;
/// Failed interrupt reads in a row after which the slots are polled as well.
pub const INTERRUPT_FAILURES_BEFORE_POLLING: u32 = 3;

/// Card and device events, delivered to the driver's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverEvent {
    /// A card was inserted in the slot.
    CardInserted(u8),
    /// The card left the slot.
    CardRemoved(u8),
    /// The reader reported a hardware error (e.g. overcurrent).
    HardwareError {
        /// bSlot.
        slot: u8,
        /// bHardwareErrorCode.
        code: u8,
    },
    /// The device is gone; open it again after it comes back.
    Disconnected,
}

/// What the driver found when it opened the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderDescription {
    /// Vendor, product and strings.
    pub device: DeviceInfo,
    /// The CCID interface in use.
    pub interface: CcidInterface,
}

impl ReaderDescription {
    /// A display name: the product string, or "Reader VVVV:PPPP".
    pub fn name(&self) -> String {
        match &self.device.product_name {
            Some(p) if !p.trim().is_empty() => p.trim().to_owned(),
            _ => format!(
                "Reader {:04X}:{:04X}",
                self.device.vendor_id, self.device.product_id
            ),
        }
    }

    /// The class descriptor.
    pub fn descriptor(&self) -> &CcidClassDescriptor {
        &self.interface.descriptor
    }
}

/// The future of one operation ([`CcidDriver::run`] and the typed methods): the exchange,
/// boxed as one instance for every operation, then the result of the operation's own type
/// from the reader's completion channel.
#[must_use = "an operation runs only when awaited"]
pub struct Run<'a, T> {
    exec: Pin<Box<dyn Future<Output = Result<(), DriverError>> + 'a>>,
    state: &'a RefCell<State>,
    result: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Run<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run").finish_non_exhaustive()
    }
}

impl<T: Outcome> Future for Run<'_, T> {
    type Output = Result<T, DriverError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Poll::Ready(ran) = this.exec.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        // `exec` started the operation, whose kind names `T`: its result is on that channel.
        // After a failure of the exchange itself that failure is the answer; the result
        // left on the channel goes with the next start.
        Poll::Ready(match ran {
            Ok(()) => {
                let ended = this.state.borrow_mut().reader.end(Ticket::<T>::new());
                ended.map_err(DriverError::Reader)
            }
            Err(e) => Err(e),
        })
    }
}

struct State {
    reader: Reader,
    reassembler: Reassembler,
    /// A bulk-IN read still in flight from an earlier operation.
    pending_in: Option<LocalBoxFuture<Result<Vec<u8>, UsbError>>>,
    disconnected: bool,
    closed: bool,
}

type EventSink = Rc<dyn Fn(DriverEvent)>;

/// A CCID reader on a USB device.
pub struct CcidDriver<U: UsbTransport> {
    usb: Rc<U>,
    clock: Rc<dyn Clock>,
    description: ReaderDescription,
    state: Rc<RefCell<State>>,
    lock: FifoLock,
    sink: RefCell<Option<EventSink>>,
    /// Whether someone listens for card events (or waits for a card): polling runs only then.
    listening: std::cell::Cell<bool>,
    bulk_in: u8,
    bulk_out: u8,
    interrupt: Option<u8>,
    read_length: u32,
}

impl<U: UsbTransport> std::fmt::Debug for CcidDriver<U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CcidDriver")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl<U: UsbTransport + 'static> CcidDriver<U> {
    /// Opens the device, reads its configuration descriptor (WebUSB hides class descriptors,
    /// so it is fetched with a standard GET_DESCRIPTOR), finds the CCID interface (class
    /// 0x0B, or 0xFF with a 54-byte CCID descriptor), and claims it. On any failure after
    /// `open()`, the device is closed again.
    pub async fn open(usb: U, clock: Rc<dyn Clock>) -> Result<Self, DriverError> {
        let usb = Rc::new(usb);
        if !usb.is_open() {
            usb.open().await.map_err(|e| usb_err(UsbCall::Open, e))?;
        }
        match Self::claim(&usb, clock).await {
            Ok(driver) => Ok(driver),
            Err(e) => {
                let _ = usb.close().await;
                Err(e)
            }
        }
    }

    async fn claim(usb: &Rc<U>, clock: Rc<dyn Clock>) -> Result<Self, DriverError> {
        if usb.configuration_value().is_none() {
            usb.select_configuration(1)
                .await
                .map_err(|e| usb_err(UsbCall::SelectConfiguration, e))?;
        }
        let config = read_configuration(usb.as_ref()).await?;
        let interfaces =
            descriptor::find_ccid_interfaces(&config).map_err(DriverError::Descriptor)?;
        let interface = pick_interface(interfaces)?;
        let reader = Reader::new(interface.descriptor).map_err(DriverError::Reader)?;
        let (Some(bulk_in), Some(bulk_out)) =
            (interface.bulk_in.clone(), interface.bulk_out.clone())
        else {
            return Err(DriverError::NoCcidInterface("no bulk endpoints"));
        };
        usb.claim_interface(interface.number)
            .await
            .map_err(|e| usb_err(UsbCall::ClaimInterface, e))?;
        if interface.alternate_setting != 0 {
            usb.select_alternate_interface(interface.number, interface.alternate_setting)
                .await
                .map_err(|e| usb_err(UsbCall::SelectAlternateInterface, e))?;
        }
        let max_message = interface.descriptor.max_message_length();
        let packet = u32::from(bulk_in.max_packet_size.max(8));
        // Read whole messages in one transfer where the device allows: the largest message
        // rounded up to whole packets.
        let read_length = max_message.max(64).div_ceil(packet) * packet;
        // Some firmware reports a dwMaxCCIDMessageLength slightly below what it sends
        // (libccid tolerates SCM's 263): accept a little more than announced.
        let reassembler = Reassembler::new(max_message.max(271) + 64);
        Ok(CcidDriver {
            usb: Rc::clone(usb),
            clock,
            description: ReaderDescription {
                device: usb.info(),
                interface: interface.clone(),
            },
            state: Rc::new(RefCell::new(State {
                reader,
                reassembler,
                pending_in: None,
                disconnected: false,
                closed: false,
            })),
            lock: FifoLock::default(),
            sink: RefCell::new(None),
            listening: std::cell::Cell::new(true),
            bulk_in: bulk_in.number(),
            bulk_out: bulk_out.number(),
            interrupt: interface.interrupt_in.map(|e| e.number()),
            read_length,
        })
    }

    /// What was found at open.
    pub fn description(&self) -> &ReaderDescription {
        &self.description
    }

    /// The exchange level in use.
    pub fn exchange_level(&self) -> ExchangeLevel {
        self.state.borrow().reader.exchange_level()
    }

    /// The ATR of the powered card in `slot`.
    pub fn atr(&self, slot: u8) -> Option<Vec<u8>> {
        self.state.borrow().reader.atr(slot).map(<[u8]>::to_vec)
    }

    /// The protocol (0 or 1) of the powered card in `slot`.
    pub fn protocol(&self, slot: u8) -> Option<u8> {
        self.state.borrow().reader.protocol(slot)
    }

    /// The last known presence of a card in `slot`.
    pub fn card_present(&self, slot: u8) -> Option<bool> {
        self.state.borrow().reader.card_present(slot)
    }

    /// Where card and device events go.
    pub fn set_event_sink(&self, sink: impl Fn(DriverEvent) + 'static) {
        *self.sink.borrow_mut() = Some(Rc::new(sink));
    }

    /// Whether someone listens for card events or waits for a card (default: yes). Slot
    /// polling (a reader without a working interrupt endpoint) runs only while someone does.
    pub fn set_listening(&self, listening: bool) {
        self.listening.set(listening);
    }

    /// The answer the reader still owes for an abandoned command, if any.
    pub fn owed(&self) -> Option<crate::reader::Owed> {
        self.state.borrow().reader.owed()
    }

    /// Whether the device is gone or closed.
    pub fn is_usable(&self) -> bool {
        let s = self.state.borrow();
        !s.disconnected && !s.closed
    }

    /// Marks the device as gone (the browser's `disconnect` event): pending and later
    /// operations fail with [`DriverError::Disconnected`].
    pub fn mark_disconnected(&self) {
        let first = {
            let mut s = self.state.borrow_mut();
            let first = !s.disconnected;
            s.disconnected = true;
            s.reader.abort();
            first
        };
        if first {
            self.emit(DriverEvent::Disconnected);
        }
    }

    /// Activates the card in `slot` (a warm reset when it is active, CCID §6.1.1): its ATR
    /// and protocol.
    pub fn power_on<'a>(&'a self, slot: u8, abort: Option<&'a Abort>) -> Run<'a, PoweredOn> {
        let op = PowerOn {
            slot,
            protocol: None,
        };
        self.run(op, abort)
    }

    /// Sends one command APDU to the powered card in `slot`: the response APDU
    /// `data || SW1 SW2`.
    pub fn transmit<'a>(
        &'a self,
        slot: u8,
        command: Command,
        abort: Option<&'a Abort>,
    ) -> Run<'a, Vec<u8>> {
        self.run(Transmit { slot, command }, abort)
    }

    /// Verifies the PIN on the reader's PIN pad (PC_to_RDR_Secure, CCID §6.1.11): the card's
    /// response APDU.
    pub fn verify_pin<'a>(
        &'a self,
        slot: u8,
        pin: PinVerify,
        abort: Option<&'a Abort>,
    ) -> Run<'a, Vec<u8>> {
        self.run(VerifyPin { slot, pin }, abort)
    }

    /// The slot's bmICCStatus (PC_to_RDR_GetSlotStatus, CCID §6.1.3).
    pub fn status(&self, slot: u8) -> Run<'_, IccStatus> {
        self.run(Status { slot }, None)
    }

    /// Deactivates the card in `slot` (PC_to_RDR_IccPowerOff, CCID §6.1.2).
    pub fn power_off(&self, slot: u8) -> Run<'_, ()> {
        self.run(PowerOff { slot }, None)
    }

    /// Runs one operation to its end and answers its own result. `abort` cancels it: the
    /// operation fails with [`DriverError::Aborted`] and its late answer is dropped when it
    /// comes.
    pub fn run<'a, O: Operation + 'a>(
        &'a self,
        op: O,
        abort: Option<&'a Abort>,
    ) -> Run<'a, O::Output> {
        Run {
            exec: Box::pin(self.exec(Box::new(op), <O::Output as Outcome>::KIND, abort)),
            state: &self.state,
            result: PhantomData,
        }
    }

    /// Runs an operation whatever its result type: only the typed start and end are
    /// generic, the waits (the lock, an owed answer, the exchange) are one instance for
    /// every operation (issue 18: the bundle). Leaves the result on the reader's completion
    /// channel.
    async fn exec(
        &self,
        op: Box<dyn Start + '_>,
        kind: Kind,
        abort: Option<&Abort>,
    ) -> Result<(), DriverError> {
        let guard = match abort {
            Some(a) => {
                let mut waiting = a.wait();
                let mut lock = Box::pin(self.lock.lock());
                match race(&mut lock, &mut waiting).await {
                    Either::Left(g) => g,
                    Either::Right(()) => return Err(DriverError::Aborted),
                }
            }
            None => self.lock.lock().await,
        };
        self.check_usable()?;
        if abort.is_some_and(Abort::is_aborted) {
            return Err(DriverError::Aborted);
        }
        let bound = op.first_timeout(&self.state.borrow().reader);
        let result = match self.settle(bound, abort).await {
            Ok(()) => {
                let now = self.clock.now();
                let started = self
                    .state
                    .borrow_mut()
                    .reader
                    .start_erased(op.as_ref(), kind, now);
                match started {
                    Ok(()) => self.drive(abort).await,
                    Err(e) => Err(DriverError::Reader(e)),
                }
            }
            Err(e) => Err(e),
        };
        // Whatever happened, leave the state machine idle for the next operation.
        self.state.borrow_mut().reader.abort();
        self.drain_card_events();
        drop(guard);
        result
    }

    /// Brings the slot back to a known state before an operation sends anything: waits
    /// for an answer the reader still owes, at most `bound` (as long as the operation
    /// would wait for its first answer), then aborts the slot (CCID §5.3.1). See the
    /// module documentation.
    async fn settle(&self, bound: u64, abort: Option<&Abort>) -> Result<(), DriverError> {
        if self.state.borrow().reader.owed().is_none() {
            return Ok(());
        }
        let deadline = self.clock.now().saturating_add(bound);
        let mut timer = None;
        while self.state.borrow().reader.owed().is_some() && self.clock.now() < deadline {
            self.read_once(deadline, &mut timer, abort).await?;
        }
        if self.state.borrow().reader.owed().is_none() {
            return Ok(());
        }
        let now = self.clock.now();
        let started = self.state.borrow_mut().reader.start_abort(now);
        let Some((slot, seq, ticket)) = started else {
            return Ok(());
        };
        let setup = ControlSetup::ccid_abort(self.description.interface.number, slot, seq);
        let request = self.usb.control_transfer_out(setup, &[]);
        if let Err(e) = request.await {
            // Refused (a protected class in Chrome, a stall, no control transfers out):
            // PC_to_RDR_Abort goes alone. Only a vanished device ends here.
            if e.kind == UsbErrorKind::NotFound {
                self.mark_disconnected();
                return Err(DriverError::Disconnected);
            }
        }
        let driven = self.drive(abort).await;
        let ended = self.state.borrow_mut().reader.end(ticket);
        driven?;
        ended.map(drop).map_err(DriverError::Reader)
    }

    /// Moves bytes and time until the operation in flight ended; its result waits on the
    /// reader's completion channel.
    async fn drive(&self, abort: Option<&Abort>) -> Result<(), DriverError> {
        // One timer per deadline, not per read: time extensions and multi-message exchanges
        // keep it while the deadline stays the same.
        let mut timer: Option<(u64, LocalBoxFuture<()>)> = None;
        loop {
            self.drain_card_events();
            // Send what the state machine wants sent.
            let out = self.state.borrow_mut().reader.poll_transmit();
            if let Some(message) = out {
                let sent = self.usb.transfer_out(self.bulk_out, &message);
                // Every PC_to_RDR message is answered on bulk-IN (CCID 1.1 §5.1: "the
                // CCID answers with an RDR_to_PC message"), so the read of the answer is
                // issued with the write, not after it completes: the two transfers are
                // under way together and the answer is usually there when the write's
                // completion is seen (issue 18: one wake-up less per message). The read
                // waits in `pending_in`, where `read_once` takes it.
                self.ensure_read();
                self.await_usb(UsbCall::TransferOut, sent, abort).await?;
                continue;
            }
            if !self.state.borrow().reader.is_busy() {
                return Ok(());
            }
            let deadline = self.state.borrow().reader.poll_timeout();
            let Some(deadline) = deadline else {
                return Err(DriverError::Reader(ReaderError::Protocol(
                    "reader state machine stalled",
                )));
            };
            self.read_once(deadline, &mut timer, abort).await?;
        }
    }

    /// Issues a bulk-IN read unless one is already under way.
    fn ensure_read(&self) {
        let mut s = self.state.borrow_mut();
        if s.pending_in.is_none() {
            s.pending_in = Some(self.usb.transfer_in(self.bulk_in, self.read_length));
        }
    }

    /// One bulk-IN read raced against the deadline and the abort signal.
    async fn read_once(
        &self,
        deadline: u64,
        timer: &mut Option<(u64, LocalBoxFuture<()>)>,
        abort: Option<&Abort>,
    ) -> Result<(), DriverError> {
        let mut read = {
            let pending = self.state.borrow_mut().pending_in.take();
            match pending {
                Some(r) => r,
                None => self.usb.transfer_in(self.bulk_in, self.read_length),
            }
        };
        if timer.as_ref().map(|t| t.0) != Some(deadline) {
            let wait = deadline.saturating_sub(self.clock.now());
            *timer = Some((deadline, self.clock.sleep(wait)));
        }
        let Some((_, sleep)) = timer.as_mut() else {
            return Err(DriverError::Reader(ReaderError::Protocol(
                "no read deadline",
            )));
        };
        let mut aborted: LocalBoxFuture<()> = match abort {
            Some(a) => Box::pin(a.wait()),
            None => Box::pin(sync::Never),
        };
        let outcome = race(&mut read, race(sleep, &mut aborted)).await;
        match outcome {
            Either::Left(Ok(bytes)) => {
                let now = self.clock.now();
                let mut s = self.state.borrow_mut();
                s.reassembler.push(&bytes);
                loop {
                    match s.reassembler.pop() {
                        Ok(Some(message)) => s.reader.handle_message(&message, now),
                        Ok(None) => break,
                        Err(e) => {
                            s.reassembler.reset();
                            return Err(DriverError::Framing(e));
                        }
                    }
                }
                Ok(())
            }
            Either::Left(Err(e)) => {
                self.state.borrow_mut().reassembler.reset();
                Err(self.usb_failure(UsbCall::TransferIn, e).await)
            }
            Either::Right(Either::Left(())) => {
                // The timer fired: a new deadline needs a new one.
                *timer = None;
                // Keep the read: its answer may still come, and must not be lost to a
                // later read queued behind it.
                self.state.borrow_mut().pending_in = Some(read);
                let now = self.clock.now();
                self.state
                    .borrow_mut()
                    .reader
                    .handle_timeout(now.max(deadline));
                Ok(())
            }
            Either::Right(Either::Right(())) => {
                self.state.borrow_mut().pending_in = Some(read);
                Err(DriverError::Aborted)
            }
        }
    }

    async fn await_usb(
        &self,
        call: UsbCall,
        fut: LocalBoxFuture<Result<(), UsbError>>,
        abort: Option<&Abort>,
    ) -> Result<(), DriverError> {
        let mut fut = fut;
        let result = match abort {
            Some(a) => {
                let mut waiting = a.wait();
                match race(&mut fut, &mut waiting).await {
                    Either::Left(r) => r,
                    Either::Right(()) => return Err(DriverError::Aborted),
                }
            }
            None => fut.await,
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.usb_failure(call, e).await),
        }
    }

    /// Turns a failed transfer into an error, recovering what can be recovered: a stalled
    /// endpoint is cleared (CCID §5.2: the host clears the halt, the command is lost); a
    /// vanished device marks the driver disconnected.
    async fn usb_failure(&self, call: UsbCall, error: UsbError) -> DriverError {
        match error.kind {
            UsbErrorKind::NotFound => {
                self.mark_disconnected();
                DriverError::Disconnected
            }
            UsbErrorKind::Network if matches!(call, UsbCall::TransferIn | UsbCall::TransferOut) => {
                self.mark_disconnected();
                DriverError::Disconnected
            }
            UsbErrorKind::Stall => {
                let (direction, endpoint) = match call {
                    UsbCall::TransferOut => (Direction::Out, self.bulk_out),
                    _ => (Direction::In, self.bulk_in),
                };
                let _ = self.usb.clear_halt(direction, endpoint).await;
                usb_err(call, error)
            }
            _ => usb_err(call, error),
        }
    }

    /// Forwards the reader's card events to the sink (the interrupt watcher drains them
    /// too). An operation's result is not among them: it waits on the reader's completion
    /// channel for the operation that started it.
    fn drain_card_events(&self) {
        loop {
            let event = self.state.borrow_mut().reader.poll_event();
            let Some(event) = event else { break };
            self.emit(match event {
                ReaderEvent::CardInserted(slot) => DriverEvent::CardInserted(slot),
                ReaderEvent::CardRemoved(slot) => DriverEvent::CardRemoved(slot),
                ReaderEvent::HardwareError { slot, code } => {
                    DriverEvent::HardwareError { slot, code }
                }
            });
        }
    }

    fn emit(&self, ev: DriverEvent) {
        let sink = self.sink.borrow().clone();
        if let Some(sink) = sink {
            sink(ev);
        }
    }

    fn check_usable(&self) -> Result<(), DriverError> {
        let s = self.state.borrow();
        if s.closed {
            Err(DriverError::Closed)
        } else if s.disconnected {
            Err(DriverError::Disconnected)
        } else {
            Ok(())
        }
    }

    /// Watches for card changes until the driver is closed or the device disappears. With an
    /// interrupt endpoint it reads NotifySlotChange messages, reading again after a
    /// transient error (with backoff; a stall is cleared first); when the endpoint keeps
    /// failing, or the reader has none, it also polls the slots with GetSlotStatus every
    /// [`STATUS_POLL_MS`] while someone listens and no other operation runs. Only a
    /// disconnect (or close) ends it.
    pub async fn watch(&self) {
        let mut read: Option<LocalBoxFuture<Result<Vec<u8>, UsbError>>> = None;
        let mut failures: u32 = 0;
        let mut retry_at: u64 = 0;
        while self.is_usable() {
            let now = self.clock.now();
            if let Some(endpoint) = self.interrupt {
                if read.is_none() && now >= retry_at {
                    read = Some(self.usb.transfer_in(endpoint, 64));
                }
            }
            let polling = self.interrupt.is_none() || failures >= INTERRUPT_FAILURES_BEFORE_POLLING;
            let outcome = match read.as_mut() {
                Some(r) if !polling => Some(r.await),
                Some(r) => match race(r, self.clock.sleep(STATUS_POLL_MS)).await {
                    Either::Left(result) => Some(result),
                    Either::Right(()) => None,
                },
                None => {
                    let wait = if polling {
                        STATUS_POLL_MS.min(retry_at.saturating_sub(now).max(1))
                    } else {
                        retry_at.saturating_sub(now)
                    };
                    self.clock.sleep(wait).await;
                    None
                }
            };
            match outcome {
                Some(result) => {
                    read = None;
                    if !self.is_usable() {
                        return;
                    }
                    match result {
                        Ok(data) => {
                            failures = 0;
                            let handled = self.state.borrow_mut().reader.handle_interrupt(&data);
                            if handled.is_ok() {
                                self.drain_card_events();
                            }
                        }
                        Err(e) if e.kind == UsbErrorKind::NotFound => {
                            self.mark_disconnected();
                            return;
                        }
                        Err(e) => {
                            if e.kind == UsbErrorKind::Stall {
                                if let Some(endpoint) = self.interrupt {
                                    let _ = self.usb.clear_halt(Direction::In, endpoint).await;
                                }
                            }
                            failures = failures.saturating_add(1);
                            let shift = failures.saturating_sub(1).min(16);
                            let backoff = (INTERRUPT_RETRY_MS << shift).min(INTERRUPT_RETRY_MAX_MS);
                            retry_at = self.clock.now().saturating_add(backoff);
                        }
                    }
                }
                None if polling && self.listening.get() && !self.lock.is_locked() => {
                    let alive = self.poll_slots().await;
                    if !alive {
                        return;
                    }
                }
                None => {}
            }
        }
    }

    /// One GetSlotStatus per slot: the answers feed the presence tracking and its events.
    /// False when the device is gone or closed.
    async fn poll_slots(&self) -> bool {
        let slots = self.description.descriptor().slot_count();
        for slot in 0..slots {
            let Ok(slot) = u8::try_from(slot) else { break };
            let polled = self.status(slot).await;
            if matches!(polled, Err(DriverError::Disconnected | DriverError::Closed)) {
                return false;
            }
        }
        self.is_usable()
    }

    /// Releases the interface and closes the device. Idempotent; a running operation is
    /// abandoned.
    pub async fn close(&self) {
        let already = {
            let mut s = self.state.borrow_mut();
            let already = s.closed;
            s.closed = true;
            s.reader.abort();
            s.pending_in = None;
            already
        };
        if already {
            return;
        }
        let number = self.description.interface.number;
        let _ = self.usb.release_interface(number).await;
        let _ = self.usb.close().await;
    }
}

fn usb_err(call: UsbCall, source: UsbError) -> DriverError {
    DriverError::Usb { call, source }
}

/// Reads the whole configuration descriptor: 9 bytes for wTotalLength, then all of it.
async fn read_configuration<U: UsbTransport>(usb: &U) -> Result<Vec<u8>, DriverError> {
    const CONFIGURATION: u8 = 0x02;
    let head = usb
        .control_transfer_in(ControlSetup::get_descriptor(CONFIGURATION, 0), 9)
        .await
        .map_err(|e| usb_err(UsbCall::ControlTransferIn, e))?;
    let total = match head.get(2..4) {
        Some(&[lo, hi]) => u16::from_le_bytes([lo, hi]),
        _ => {
            return Err(DriverError::NoCcidInterface(
                "short configuration descriptor",
            ))
        }
    };
    if total <= 9 {
        return Ok(head);
    }
    usb.control_transfer_in(ControlSetup::get_descriptor(CONFIGURATION, 0), total)
        .await
        .map_err(|e| usb_err(UsbCall::ControlTransferIn, e))
}

/// The first CCID interface the driver can use: bulk endpoints, not ICCD.
fn pick_interface(interfaces: Vec<CcidInterface>) -> Result<CcidInterface, DriverError> {
    if interfaces.is_empty() {
        return Err(DriverError::NoCcidInterface("no ccid interface"));
    }
    let any_iccd = interfaces.iter().any(CcidInterface::is_iccd);
    interfaces
        .into_iter()
        .find(|i| !i.is_iccd() && i.bulk_in.is_some() && i.bulk_out.is_some())
        .ok_or(DriverError::NoCcidInterface(if any_iccd {
            "iccd devices are not supported"
        } else {
            "no bulk endpoints"
        }))
}
