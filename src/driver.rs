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
use std::rc::Rc;

use crate::proto::ccid::Reassembler;
use crate::proto::descriptor::{self, CcidClassDescriptor, CcidInterface, ExchangeLevel};
use crate::reader::{Completion, Operation, Reader, ReaderEvent};

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

struct State {
    reader: Reader,
    reassembler: Reassembler,
    /// A bulk-IN read still in flight from an earlier operation.
    pending_in: Option<LocalBoxFuture<Result<Vec<u8>, UsbError>>>,
    /// The completion of the operation in flight, once the reader reported it.
    completion: Option<Result<Completion, crate::reader::ReaderError>>,
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
                completion: None,
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

    /// Runs one operation to its end. `abort` cancels it: the operation fails with
    /// [`DriverError::Aborted`] and its late answer is dropped when it comes.
    pub async fn run(
        &self,
        op: Operation,
        abort: Option<&Abort>,
    ) -> Result<Completion, DriverError> {
        let _guard = match abort {
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
        let settled = self.settle(&op, abort).await;
        let result = match settled {
            Ok(()) => {
                let now = self.clock.now();
                let started = {
                    let mut s = self.state.borrow_mut();
                    s.completion = None;
                    s.reader.start(op, now).map_err(DriverError::Reader)
                };
                match started {
                    Ok(()) => self.drive(abort).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        // Whatever happened, leave the state machine idle for the next operation.
        self.state.borrow_mut().reader.abort();
        self.drain_card_events();
        self.state.borrow_mut().completion = None;
        result
    }

    /// Brings the slot back to a known state before `op` sends anything: waits for an
    /// answer the reader still owes, at most as long as `op` would wait for its first
    /// answer, then aborts the slot (CCID §5.3.1). See the module documentation.
    async fn settle(&self, op: &Operation, abort: Option<&Abort>) -> Result<(), DriverError> {
        if self.state.borrow().reader.owed().is_none() {
            return Ok(());
        }
        let bound = self.state.borrow().reader.first_timeout(op);
        let deadline = self.clock.now().saturating_add(bound);
        let mut timer = None;
        while self.state.borrow().reader.owed().is_some() && self.clock.now() < deadline {
            self.read_once(deadline, &mut timer, abort).await?;
        }
        if self.state.borrow().reader.owed().is_none() {
            return Ok(());
        }
        let now = self.clock.now();
        let started = {
            let mut s = self.state.borrow_mut();
            s.completion = None;
            s.reader.start_abort(now)
        };
        let Some((slot, seq)) = started else {
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
        let aborted = self.drive(abort).await;
        self.state.borrow_mut().reader.abort();
        aborted.map(|_| ())
    }

    async fn drive(&self, abort: Option<&Abort>) -> Result<Completion, DriverError> {
        // One timer per deadline, not per read: time extensions and multi-message exchanges
        // keep it while the deadline stays the same.
        let mut timer: Option<(u64, LocalBoxFuture<()>)> = None;
        loop {
            // Send what the state machine wants sent.
            let out = self.state.borrow_mut().reader.poll_transmit();
            if let Some(message) = out {
                let sent = self.usb.transfer_out(self.bulk_out, &message);
                self.await_usb(UsbCall::TransferOut, sent, abort).await?;
                continue;
            }
            if let Some(result) = self.take_completion() {
                return result.map_err(DriverError::Reader);
            }
            let deadline = self.state.borrow().reader.poll_timeout();
            let Some(deadline) = deadline else {
                return Err(DriverError::Reader(crate::reader::ReaderError::Protocol(
                    "reader state machine stalled",
                )));
            };
            self.read_once(deadline, &mut timer, abort).await?;
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
            return Err(DriverError::Reader(crate::reader::ReaderError::Protocol(
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

    fn take_completion(&self) -> Option<Result<Completion, crate::reader::ReaderError>> {
        self.drain_card_events();
        self.state.borrow_mut().completion.take()
    }

    /// Forwards card events to the sink and keeps the operation's completion for
    /// [`Self::take_completion`]: the interrupt watcher drains events too, and may be the one
    /// that sees a completion (an operation failed by a card removal).
    fn drain_card_events(&self) {
        let events: Vec<ReaderEvent> = {
            let mut s = self.state.borrow_mut();
            let mut out = Vec::new();
            while let Some(ev) = s.reader.poll_event() {
                match ev {
                    ReaderEvent::Completed(r) => {
                        if s.completion.is_none() {
                            s.completion = Some(r);
                        }
                    }
                    other => out.push(other),
                }
            }
            out
        };
        for ev in events {
            self.forward(ev);
        }
    }

    fn forward(&self, ev: ReaderEvent) {
        match ev {
            ReaderEvent::CardInserted(slot) => self.emit(DriverEvent::CardInserted(slot)),
            ReaderEvent::CardRemoved(slot) => self.emit(DriverEvent::CardRemoved(slot)),
            ReaderEvent::HardwareError { slot, code } => {
                self.emit(DriverEvent::HardwareError { slot, code })
            }
            ReaderEvent::Completed(_) => {}
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
            let polled = self.run(Operation::Status { slot }, None).await;
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
