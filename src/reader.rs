//! The CCID reader state machine: power on, parameters, IFS, and transmit at the reader's
//! exchange level (CCID Rev 1.1 §3, §6; ISO/IEC 7816-3).
//!
//! Pure: it never performs I/O and never reads a clock. The caller (the async driver, or a
//! test) moves bytes and time in and out:
//!
//! 1. start an operation with [`Reader::start`] (one of [`PowerOn`], [`PowerOff`], [`Status`], [`Transmit`], [`VerifyPin`]: each
//!    names the type of its result, and `start` answers a [`Ticket`] for it);
//! 2. write every message [`Reader::poll_transmit`] yields to the bulk-OUT endpoint;
//! 3. while [`Reader::awaiting_response`] is true, read the bulk-IN endpoint, reassemble
//!    whole messages ([`crate::proto::ccid::Reassembler`]) and pass each to
//!    [`Reader::handle_message`]; if [`Reader::poll_timeout`] passes first, call
//!    [`Reader::handle_timeout`];
//! 4. pass interrupt-IN data to [`Reader::handle_interrupt`];
//! 5. take the operation's result with [`Reader::poll_completion`] once it is there, and
//!    drain [`Reader::poll_event`]: card insert/remove events and hardware errors. The two
//!    never mix: a card event does not end an operation (a removal that fails it is both an
//!    event and the operation's error), and a completion is never an event.
//!
//! Semantics a caller can trip on:
//! - Every response is matched by bSlot and bSeq. A message with another bSeq is a stale
//!   answer to an operation that was abandoned (a WebUSB `transferIn` cannot be cancelled):
//!   it is dropped and reading goes on.
//! - A time extension (bmCommandStatus 2) means "read again", never "send again"; the
//!   deadline moves by the multiplier the reader gives.
//! - After a timeout or an abort in the middle of a T=1 exchange, host and card may disagree
//!   on sequence numbers; the T=1 engine resynchronises on the next exchange (that APDU may
//!   then fail with a resynchronisation error and can be sent again).
//! - [`VerifyPin`] waits for a person: its deadline is bTimeOut plus the card's
//!   waiting time. At TPDU level with T=1 the reader sends one I-block on the host's
//!   behalf; a cancelled or timed-out entry sent nothing, so the block sequence is kept.

use crate::proto::apdu::ApduError;
use crate::proto::atr::{Atr, AtrError};
use crate::proto::ccid::{
    CcidError, CommandStatus, Header, IccStatus, InterruptMessage, PcToRdr, PcToRdrAbort,
    PcToRdrGetSlotStatus, PcToRdrIccPowerOff, PowerSelect, RdrToPc, SlotError, SlotState,
};
use crate::proto::descriptor::{CcidClassDescriptor, ExchangeLevel};
use crate::proto::pps::{self, PpsError};
use crate::proto::t0::T0Error;
use crate::proto::t1::{T1Error, T1};

mod operation;
mod pin;
mod power_on;
mod transmit;

pub use operation::{
    Command, Operation, Outcome, PowerOff, PowerOn, PoweredOn, Status, Ticket, Transmit, VerifyPin,
};
pub use pin::PinVerify;

use operation::Completions;
pub(crate) use operation::{Kind, Start};

use power_on::{PowerOnRun, PowerOnStage};
use transmit::TransmitMode;

/// Milliseconds on the caller's monotonic clock (in a browser, `performance.now()`).
pub type Millis = u64;

/// Deadline for answers that involve no card exchange (slot status, power off, parameters).
pub const CONTROL_TIMEOUT_MS: Millis = 3_000;
/// Deadline for the ATR after PC_to_RDR_IccPowerOn (activation, ATR, reader auto sequence).
pub const POWER_ON_TIMEOUT_MS: Millis = 5_000;
/// Added to every card waiting time for USB and reader latency.
pub const TRANSPORT_MARGIN_MS: Millis = 1_000;
/// A card exchange is never given less than this.
pub const MIN_EXCHANGE_TIMEOUT_MS: Millis = 3_000;
/// Stale messages tolerated while one answer is awaited (libccid tolerates 10 duplicates).
pub const MAX_STALE_MESSAGES: u32 = 16;
/// Time extensions tolerated for one answer: a reader that asks for more than this is
/// treated as hung ([`ReaderError::Timeout`]) rather than holding the operation forever.
pub const MAX_TIME_EXTENSIONS: u32 = 10_000;
/// Size of the CCID header, which dwMaxCCIDMessageLength includes.
const HEADER_LEN: u32 = 10;
/// Prologue and largest epilogue of a T=1 block.
const T1_OVERHEAD: u32 = 5;

/// Why a reader operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReaderError {
    /// The reader's class descriptor describes something this driver cannot drive.
    #[error("unsupported reader: {0}")]
    Unsupported(&'static str),
    /// Another operation is still running.
    #[error("reader busy")]
    Busy,
    /// The slot number is beyond bMaxSlotIndex.
    #[error("no slot {0}")]
    NoSuchSlot(u8),
    /// No card in the slot.
    #[error("no card in the reader")]
    CardAbsent,
    /// The card did not answer (bError ICC_MUTE), or no ATR.
    #[error("card does not answer")]
    CardMute,
    /// A transmit on a slot whose card is not powered.
    #[error("card not powered")]
    NotPowered,
    /// The reader did not answer before the deadline.
    #[error("reader did not answer in time")]
    Timeout,
    /// The operation was abandoned by the caller.
    #[error("aborted")]
    Aborted,
    /// The reader reported a failure (bmCommandStatus 1) not covered by a variant above.
    #[error("reader reported {0}")]
    Slot(SlotError),
    /// The reader's answer is malformed or is not the answer to the command sent.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A CCID message does not decode.
    #[error("bad ccid message")]
    Ccid(#[source] CcidError),
    /// The ATR does not decode.
    #[error("bad atr")]
    Atr(#[source] AtrError),
    /// No protocol both card and reader can use, or bad PPS.
    #[error("protocol selection failed")]
    Pps(#[source] PpsError),
    /// The command is not a valid APDU.
    #[error("invalid apdu")]
    Apdu(#[source] ApduError),
    /// The APDU does not fit this reader (extended APDU on a short-APDU reader or a T=0
    /// card, or longer than dwMaxCCIDMessageLength allows).
    #[error("apdu too long for this reader: {len} bytes, at most {max}")]
    TooLong {
        /// Encoded length of the command.
        len: usize,
        /// What the reader and card can carry.
        max: usize,
    },
    /// The card's response did not fit one CCID message of this reader (bError
    /// XFR_OVERRUN on a T=0 TPDU or short-APDU exchange, which return a response in one
    /// message): ask for less (a smaller Le) or use a reader with a larger
    /// dwMaxCCIDMessageLength.
    #[error("the response does not fit one ccid message (dwMaxCCIDMessageLength {max_message})")]
    ResponseTooLong {
        /// The reader's dwMaxCCIDMessageLength.
        max_message: u32,
    },
    /// T=0 TPDU mapping failed.
    #[error("t=0 exchange failed")]
    T0(#[source] T0Error),
    /// The T=1 block protocol failed.
    #[error("t=1 exchange failed")]
    T1(#[source] T1Error),
    /// The user pressed Cancel on the PIN pad (bError PIN_CANCELLED 0xEF, CCID §6.2.6).
    #[error("pin entry cancelled on the pin pad")]
    PinCancelled,
    /// Nobody completed the PIN entry in time (bError PIN_TIMEOUT 0xF0, CCID §6.2.6).
    #[error("pin entry timed out on the pin pad")]
    PinTimeout,
    /// The PIN verification parameters are out of range.
    #[error("bad pin verification parameters: {0}")]
    PinParameters(&'static str),
    /// The reader announces PIN verification (bPINSupport) but refused PC_to_RDR_Secure:
    /// a failed answer that says nothing about the card (some firmware answers with a
    /// failed RDR_to_PC_SlotStatus where CCID §6.1.11 prescribes RDR_to_PC_DataBlock, or
    /// with bError 0, command not supported). The PIN can still be entered on the host.
    #[error("this reader's pin pad cannot be used")]
    PinPadUnusable,
}

/// A card or reader event: what happened in a slot, whatever operation runs. The result
/// of an operation is not an event ([`Reader::poll_completion`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A card was inserted in the slot.
    CardInserted(u8),
    /// The card was removed from the slot; it must be powered on again after reinsertion.
    CardRemoved(u8),
    /// RDR_to_PC_HardwareError on the interrupt endpoint (e.g. overcurrent).
    HardwareError {
        /// bSlot.
        slot: u8,
        /// bHardwareErrorCode (1 = overcurrent).
        code: u8,
    },
}

/// Counters for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Bulk-OUT messages produced.
    pub commands: u64,
    /// Messages dropped for a wrong bSlot or bSeq, or with no operation waiting.
    pub stale_dropped: u64,
    /// Time extensions received.
    pub time_extensions: u64,
}

/// A command whose operation ended before its answer came (timeout, abort, card removal):
/// the reader still owes that answer, and CCID allows one command per slot at a time
/// (CCID §5.2.5, bMaxCCIDBusySlots). The caller must not send another command before the
/// answer came or the slot was aborted ([`Reader::start_abort`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owed {
    /// bSlot of the command.
    pub slot: u8,
    /// bSeq of the command.
    pub seq: u8,
}

/// The active card of a slot.
#[derive(Debug, Clone)]
struct Card {
    atr: Atr,
    protocol: u8,
    /// T=1 engine, present when the host runs T=1 itself (TPDU level).
    t1: Option<T1>,
    /// The card's waiting time in ms (WWT for T=0, BWT for T=1).
    waiting_ms: Millis,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    /// Last known presence, `None` before anything was heard about the slot.
    present: Option<bool>,
    card: Option<Card>,
}

/// The operation in flight.
#[derive(Debug)]
enum Pending {
    PowerOn {
        run: PowerOnRun,
        stage: PowerOnStage,
    },
    PowerOff {
        slot: u8,
    },
    Status {
        slot: u8,
    },
    Transmit {
        slot: u8,
        mode: TransmitMode,
    },
    /// PC_to_RDR_Abort sent (CCID §5.3.1, §6.1.13): waiting for its RDR_to_PC_SlotStatus.
    Abort {
        slot: u8,
    },
}

/// What [`Reader::handle_message`] expects next.
#[derive(Debug, Clone, Copy)]
struct Awaiting {
    slot: u8,
    seq: u8,
    response_type: u8,
    deadline: Millis,
    /// Time added per time-extension unit.
    extension_unit: Millis,
    stale: u32,
    /// Time extensions received for this answer.
    extensions: u32,
}

/// A CCID reader (one interface, all its slots), driven by bytes and time.
#[derive(Debug)]
pub struct Reader {
    desc: CcidClassDescriptor,
    level: ExchangeLevel,
    seq: u8,
    slots: Vec<Slot>,
    pending: Option<Pending>,
    awaiting: Option<Awaiting>,
    /// Messages to write and events to report, oldest first: `Vec`s (one or two entries at
    /// a time; no `VecDeque` code in the bundle, issue 18).
    outbox: Vec<Vec<u8>>,
    events: Vec<ReaderEvent>,
    stats: ReaderStats,
    /// The slot whose T=1 engine is in an exchange started by a transmit.
    t1_in_flight: Option<u8>,
    /// The answer still owed by the reader, if any.
    owed: Option<Owed>,
    /// The result kind of the operation in flight: where its failure is delivered.
    running: Option<Kind>,
    /// The completion channel: the result of the last operation.
    completions: Completions,
}

impl Reader {
    /// A reader described by its CCID class descriptor.
    ///
    /// Character-level readers and readers of an undefined exchange level are refused: the
    /// host would have to time every character itself, which USB transfers cannot do.
    pub fn new(desc: CcidClassDescriptor) -> Result<Reader, ReaderError> {
        let level = desc.exchange_level();
        match level {
            ExchangeLevel::Tpdu | ExchangeLevel::ShortApdu | ExchangeLevel::ExtendedApdu => {}
            ExchangeLevel::Character => {
                return Err(ReaderError::Unsupported("character level exchange"))
            }
            ExchangeLevel::Unknown(_) => {
                return Err(ReaderError::Unsupported("undefined exchange level"))
            }
        }
        if desc.max_message_length() < HEADER_LEN + 5 {
            return Err(ReaderError::Unsupported("dwMaxCCIDMessageLength too small"));
        }
        let slots = vec![Slot::default(); desc.slot_count()];
        Ok(Reader {
            desc,
            level,
            seq: 0,
            slots,
            pending: None,
            awaiting: None,
            outbox: Vec::new(),
            events: Vec::new(),
            stats: ReaderStats::default(),
            t1_in_flight: None,
            owed: None,
            running: None,
            completions: Completions::default(),
        })
    }

    /// The class descriptor the reader was built from.
    pub fn descriptor(&self) -> &CcidClassDescriptor {
        &self.desc
    }

    /// The exchange level in use.
    pub fn exchange_level(&self) -> ExchangeLevel {
        self.level
    }

    /// Counters for diagnostics.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// Whether an operation is in flight.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Whether a bulk-IN message is awaited (the caller should be reading).
    pub fn awaiting_response(&self) -> bool {
        self.awaiting.is_some()
    }

    /// The last known presence of a card in `slot` (`None`: not known yet).
    pub fn card_present(&self, slot: u8) -> Option<bool> {
        self.slots.get(usize::from(slot)).and_then(|s| s.present)
    }

    /// The ATR of the active card in `slot`, if powered.
    pub fn atr(&self, slot: u8) -> Option<&[u8]> {
        self.card(slot).map(|c| c.atr.raw())
    }

    /// The protocol of the active card in `slot`, if powered.
    pub fn protocol(&self, slot: u8) -> Option<u8> {
        self.card(slot).map(|c| c.protocol)
    }

    fn card(&self, slot: u8) -> Option<&Card> {
        self.slots
            .get(usize::from(slot))
            .and_then(|s| s.card.as_ref())
    }

    /// The longest command APDU this reader and the card in `slot` can carry in one
    /// exchange.
    pub fn max_command_length(&self, slot: u8) -> usize {
        let payload =
            usize::try_from(self.desc.max_message_length() - HEADER_LEN).unwrap_or(usize::MAX);
        match self.level {
            ExchangeLevel::ExtendedApdu => 65_544,
            ExchangeLevel::Tpdu if self.protocol(slot) == Some(1) => 65_544,
            ExchangeLevel::Tpdu => payload.min(260),
            _ => payload.min(261),
        }
    }

    /// The answer the reader still owes for a command whose operation ended without it.
    /// While there is one, no new command may be sent: read and drop the answer (it is
    /// recognised by bSlot and bSeq in [`Reader::handle_message`]) or abort the slot with
    /// [`Reader::start_abort`].
    pub fn owed(&self) -> Option<Owed> {
        self.owed
    }

    /// Starts the CCID abort of the slot that owes an answer (CCID §5.3.1): queues
    /// PC_to_RDR_Abort with a new bSeq and returns `(bSlot, bSeq)`, which the caller sends
    /// first as the class request ABORT (wValue = bSeq << 8 | bSlot) on the control pipe,
    /// and the ticket of its result.
    /// The abort completes with the slot's status when the reader answers it
    /// (after failing the aborted command with CMD_ABORTED, whose answer is dropped by
    /// bSeq); from then on nothing is owed. `None` when nothing is owed or an operation
    /// runs.
    pub fn start_abort(&mut self, now: Millis) -> Option<(u8, u8, Ticket<IccStatus>)> {
        if self.pending.is_some() {
            return None;
        }
        let slot = self.owed?.slot;
        self.completions = Completions::default();
        let seq = self.send_control(now, |seq| PcToRdr::Abort(PcToRdrAbort { slot, seq }));
        self.pending = Some(Pending::Abort { slot });
        self.running = Some(Kind::Status);
        Some((slot, seq, Ticket::new()))
    }

    /// Starts an operation. Its result arrives on the completion channel: take it with
    /// [`Reader::poll_completion`] and the ticket answered here. A result left there by an
    /// earlier operation is dropped.
    pub fn start<O: Operation>(
        &mut self,
        op: O,
        now: Millis,
    ) -> Result<Ticket<O::Output>, ReaderError> {
        self.start_erased(&op, <O::Output as Outcome>::KIND, now)?;
        Ok(Ticket::new())
    }

    /// [`Reader::start`] without the result's type, for the async driver's one instance
    /// of every operation: `kind` is the kind of the operation's `Output`, whose ticket
    /// takes the result.
    pub(crate) fn start_erased(
        &mut self,
        op: &dyn Start,
        kind: Kind,
        now: Millis,
    ) -> Result<(), ReaderError> {
        if self.pending.is_some() {
            return Err(ReaderError::Busy);
        }
        let slot = op.slot();
        if usize::from(slot) >= self.slots.len() {
            return Err(ReaderError::NoSuchSlot(slot));
        }
        self.completions = Completions::default();
        op.begin(self, now)?;
        self.running = Some(kind);
        Ok(())
    }

    /// The result of the operation started with `ticket`, once it ended (taken: a second
    /// call answers `None`). `None` while it runs.
    pub fn poll_completion<T: Outcome>(
        &mut self,
        _ticket: &Ticket<T>,
    ) -> Option<Result<T, ReaderError>> {
        T::channel(&mut self.completions).take()
    }

    /// Ends the operation started with `ticket` and answers its result: an operation that
    /// still runs is abandoned first (it fails with [`ReaderError::Aborted`], as with
    /// [`Reader::abort`]); a result already taken with [`Reader::poll_completion`] is not
    /// there any more, and reads as [`ReaderError::Aborted`] too.
    pub fn end<T: Outcome>(&mut self, ticket: Ticket<T>) -> Result<T, ReaderError> {
        self.abort();
        self.poll_completion(&ticket)
            .unwrap_or(Err(ReaderError::Aborted))
    }

    fn begin_power_on(&mut self, slot: u8, preferred: Option<u8>, now: Millis) {
        let features = self.desc.features.bits();
        let mut voltages = pps::power_on_sequence(features, self.desc.voltage_support);
        voltages.reverse();
        let first = voltages.pop().unwrap_or(PowerSelect::Auto);
        self.slots[usize::from(slot)].card = None;
        self.send_power_on(slot, first, now);
        let run = PowerOnRun {
            slot,
            preferred,
            voltages,
            skip_pps: false,
        };
        self.pending = Some(Pending::PowerOn {
            run,
            stage: PowerOnStage::Activating,
        });
    }

    fn begin_power_off(&mut self, slot: u8, now: Millis) {
        self.send_control(now, |seq| {
            PcToRdr::IccPowerOff(PcToRdrIccPowerOff { slot, seq })
        });
        self.pending = Some(Pending::PowerOff { slot });
    }

    fn begin_status(&mut self, slot: u8, now: Millis) {
        self.send_control(now, |seq| {
            PcToRdr::GetSlotStatus(PcToRdrGetSlotStatus { slot, seq })
        });
        self.pending = Some(Pending::Status { slot });
    }

    fn set_transmit(&mut self, slot: u8, mode: TransmitMode) {
        self.pending = Some(Pending::Transmit { slot, mode });
    }

    /// Abandons the operation in flight: it completes with [`ReaderError::Aborted`], and its
    /// late answer will be dropped as stale.
    pub fn abort(&mut self) {
        if self.pending.is_some() {
            self.fail(ReaderError::Aborted);
        }
    }

    /// The next bulk-OUT message to write.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        (!self.outbox.is_empty()).then(|| self.outbox.remove(0))
    }

    /// When [`Reader::handle_timeout`] must be called if no answer came.
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.awaiting.map(|a| a.deadline)
    }

    /// The next card or reader event (never an operation's result).
    pub fn poll_event(&mut self) -> Option<ReaderEvent> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    /// The deadline passed without an answer: the operation fails with
    /// [`ReaderError::Timeout`]. Calls before the deadline are ignored.
    pub fn handle_timeout(&mut self, now: Millis) {
        match self.awaiting {
            Some(a) if now >= a.deadline => self.fail(ReaderError::Timeout),
            _ => {}
        }
    }

    /// Data from the interrupt-IN endpoint: slot changes and hardware errors.
    pub fn handle_interrupt(&mut self, data: &[u8]) -> Result<(), ReaderError> {
        match InterruptMessage::decode(data).map_err(ReaderError::Ccid)? {
            InterruptMessage::NotifySlotChange(n) => {
                for slot in 0..self.slots.len() {
                    // INVARIANT: slot_count() is at most 256 (bMaxSlotIndex + 1).
                    let Ok(s) = u8::try_from(slot) else { break };
                    if usize::from(s) >= n.slot_capacity() {
                        break;
                    }
                    let present = n.present(s);
                    let known = self.slots[slot].present;
                    if n.changed(s) || known != Some(present) {
                        self.set_presence(s, present, true);
                    }
                }
            }
            InterruptMessage::HardwareError(e) => {
                self.events.push(ReaderEvent::HardwareError {
                    slot: e.slot,
                    code: e.hard_error_code,
                });
            }
        }
        Ok(())
    }

    /// One whole bulk-IN message.
    pub fn handle_message(&mut self, msg: &[u8], now: Millis) {
        let decoded = Header::decode(msg);
        if let (Ok(h), Some(owed)) = (&decoded, self.owed) {
            if h.slot == owed.slot && h.seq == owed.seq {
                // The late answer to an abandoned command: dropped by bSeq. A time
                // extension (bmCommandStatus 2, bStatus bits 7..6) means it is still owed.
                if msg.get(7).map(|s| s >> 6) != Some(2) {
                    self.owed = None;
                }
                self.stats.stale_dropped += 1;
                return;
            }
        }
        let Some(mut awaiting) = self.awaiting else {
            self.stats.stale_dropped += 1;
            return;
        };
        let header = match decoded {
            Ok(h) => h,
            Err(e) => return self.fail(ReaderError::Ccid(e)),
        };
        if header.slot != awaiting.slot || header.seq != awaiting.seq {
            self.stats.stale_dropped += 1;
            awaiting.stale += 1;
            self.awaiting = Some(awaiting);
            if awaiting.stale > MAX_STALE_MESSAGES {
                self.fail(ReaderError::Protocol("too many unexpected messages"));
            }
            return;
        }
        let message = match RdrToPc::decode(msg) {
            Ok(m) => m,
            Err(e) => return self.fail(ReaderError::Ccid(e)),
        };
        // The status comes before the type: a failed answer of another type (a failed
        // RDR_to_PC_SlotStatus to PC_to_RDR_Secure, seen on real readers) is a failure of
        // the command, reported as such.
        let state = message.state();
        if message.message_type() != awaiting.response_type
            && state.command != CommandStatus::Failed
        {
            self.awaiting = None;
            return self.fail(ReaderError::Protocol("answer of the wrong type"));
        }
        self.note_presence(header.slot, state.icc);
        if state.command == CommandStatus::TimeExtension {
            // Read again, never resend: the deadline moves by the multiplier the reader gives.
            self.stats.time_extensions += 1;
            awaiting.extensions += 1;
            if awaiting.extensions > MAX_TIME_EXTENSIONS {
                return self.fail(ReaderError::Timeout);
            }
            let factor = Millis::from(state.error_raw.max(1));
            awaiting.deadline = now + factor * awaiting.extension_unit + TRANSPORT_MARGIN_MS;
            self.awaiting = Some(awaiting);
            return;
        }
        self.awaiting = None;
        if let Err(e) = self.advance(message, state, now) {
            self.fail(e);
        }
    }

    fn advance(
        &mut self,
        message: RdrToPc,
        state: SlotState,
        now: Millis,
    ) -> Result<(), ReaderError> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        match pending {
            Pending::Status { slot: _ } => {
                // Readers answer GetSlotStatus for an empty slot with bmCommandStatus
                // "failed" and ICC_MUTE (CCID §6.2.6): that is still the slot's status.
                if state.command != CommandStatus::Ok && state.icc != IccStatus::Absent {
                    return Err(slot_failure(state));
                }
                self.complete(state.icc);
                Ok(())
            }
            Pending::PowerOff { slot } => {
                if state.command != CommandStatus::Ok {
                    return Err(slot_failure(state));
                }
                self.slots[usize::from(slot)].card = None;
                self.complete(());
                Ok(())
            }
            Pending::PowerOn { run, stage } => {
                self.advance_power_on(run, stage, message, state, now)
            }
            Pending::Transmit { slot, mode } => {
                self.advance_transmit(slot, mode, message, state, now)
            }
            Pending::Abort { slot: _ } => {
                // CMD_SLOT_BUSY: the slot did not stop (CCID §6.2.6). Any other answer
                // means the reader took a new command: the slot is free again.
                if state.command != CommandStatus::Ok
                    && state.error() == Some(SlotError::CmdSlotBusy)
                {
                    return Err(ReaderError::Busy);
                }
                self.owed = None;
                self.complete(state.icc);
                Ok(())
            }
        }
    }

    fn push_command(&mut self, msg: PcToRdr, deadline: Millis, extension_unit: Millis) {
        self.awaiting = Some(Awaiting {
            slot: msg.slot(),
            seq: msg.seq(),
            response_type: msg.response_type(),
            deadline,
            extension_unit,
            stale: 0,
            extensions: 0,
        });
        self.stats.commands += 1;
        self.outbox.push(msg.encode());
    }

    /// Sends a command the reader answers without the card (slot status, power off,
    /// abort), with the control deadline; returns its bSeq.
    fn send_control(&mut self, now: Millis, command: impl FnOnce(u8) -> PcToRdr) -> u8 {
        let seq = self.next_seq();
        self.push_command(command(seq), now + CONTROL_TIMEOUT_MS, CONTROL_TIMEOUT_MS);
        seq
    }

    fn next_seq(&mut self) -> u8 {
        let s = self.seq;
        self.seq = self.seq.wrapping_add(1);
        s
    }

    /// Ends the operation in flight with its result.
    fn complete<T: Outcome>(&mut self, value: T) {
        self.wind_up(false);
        *T::channel(&mut self.completions) = Some(Ok(value));
    }

    /// Ends the operation in flight with an error, delivered on its result's channel.
    fn fail(&mut self, error: ReaderError) {
        let kind = self.running;
        self.wind_up(true);
        if let Some(kind) = kind {
            self.completions.fail(kind, error);
        }
    }

    fn wind_up(&mut self, failed: bool) {
        if let Some(slot) = self.t1_in_flight.take() {
            if failed {
                // The card may still be in the middle of the exchange: the engine
                // resynchronises before its next APDU.
                if let Some(t1) = self
                    .slots
                    .get_mut(usize::from(slot))
                    .and_then(|s| s.card.as_mut())
                    .and_then(|c| c.t1.as_mut())
                {
                    t1.abandon();
                }
            }
        }
        self.pending = None;
        if let Some(a) = self.awaiting.take() {
            // The operation ends before its answer came: the reader still owes it.
            self.owed = Some(Owed {
                slot: a.slot,
                seq: a.seq,
            });
        }
        self.running = None;
    }

    /// Records what a response's bmICCStatus says about the slot.
    fn note_presence(&mut self, slot: u8, icc: IccStatus) {
        match icc {
            // The answer being handled decides its own operation's outcome.
            IccStatus::Absent => self.set_presence(slot, false, false),
            IccStatus::PresentActive | IccStatus::PresentInactive => {
                if self.card_present(slot) == Some(false) {
                    self.set_presence(slot, true, false);
                } else if let Some(s) = self.slots.get_mut(usize::from(slot)) {
                    s.present = Some(true);
                }
            }
            IccStatus::Reserved => {}
        }
        if icc == IccStatus::PresentInactive {
            if let Some(s) = self.slots.get_mut(usize::from(slot)) {
                s.card = None;
            }
        }
    }

    /// Records a card's arrival or departure and emits the event. With `fail_pending`, an
    /// operation in flight on a slot whose card left fails at once with
    /// [`ReaderError::CardAbsent`] (its late answer is dropped as stale).
    fn set_presence(&mut self, slot: u8, present: bool, fail_pending: bool) {
        let Some(s) = self.slots.get_mut(usize::from(slot)) else {
            return;
        };
        let was = s.present;
        s.present = Some(present);
        if !present {
            s.card = None;
        }
        match (was, present) {
            (Some(true), false) => self.events.push(ReaderEvent::CardRemoved(slot)),
            (Some(false) | None, true) => self.events.push(ReaderEvent::CardInserted(slot)),
            (Some(true), true) => {
                // Removed and reinserted between two notifications: the card was reset.
                self.events.push(ReaderEvent::CardRemoved(slot));
                self.events.push(ReaderEvent::CardInserted(slot));
            }
            // First news of an empty slot, or still empty: nothing changed for the caller.
            (None | Some(false), false) => {}
        }
        // A slot status (or an abort) is still answered: its answer says what the slot
        // holds now, so a card leaving while it runs is no failure.
        let answers_anyway = matches!(
            self.pending,
            Some(Pending::Status { .. } | Pending::Abort { .. })
        );
        if fail_pending && !present && !answers_anyway && self.pending_slot() == Some(slot) {
            self.fail(ReaderError::CardAbsent);
        }
    }

    fn pending_slot(&self) -> Option<u8> {
        match self.pending.as_ref()? {
            Pending::PowerOn { run, .. } => Some(run.slot),
            Pending::PowerOff { slot }
            | Pending::Status { slot }
            | Pending::Abort { slot }
            | Pending::Transmit { slot, .. } => Some(*slot),
        }
    }
}

/// Maps a failed bStatus/bError to an error (CCID §6.2.6; libccid's mapping).
fn slot_failure(state: SlotState) -> ReaderError {
    if state.icc == IccStatus::Absent {
        return ReaderError::CardAbsent;
    }
    match state.error() {
        Some(SlotError::IccMute) => ReaderError::CardMute,
        Some(SlotError::PinCancelled) => ReaderError::PinCancelled,
        Some(SlotError::PinTimeout) => ReaderError::PinTimeout,
        Some(SlotError::CmdSlotBusy) => ReaderError::Busy,
        Some(e) => ReaderError::Slot(e),
        None => ReaderError::Protocol("failure without error code"),
    }
}

#[cfg(test)]
mod tests;
