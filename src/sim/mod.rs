//! A simulated CCID reader with a simulated ISO/IEC 7816 card (feature `simulator`).
//!
//! [`SimulatedReader`] is a virtual USB device built from a reader profile (the built-in
//! `default` or any of libccid's dumps): it answers GET_DESCRIPTOR on the control endpoint
//! with that reader's descriptors, speaks CCID Rev 1.1 on its bulk endpoints at the reader's
//! exchange level and dwMaxCCIDMessageLength, reports slot changes on its interrupt
//! endpoint, and hosts a [`card`] per slot. Its calls mirror WebUSB (`open`,
//! `claim_interface`, `transfer_out`, `transfer_in`, ...) with endpoint numbers as WebUSB
//! uses them: bulk-OUT 2, bulk-IN 1 and interrupt-IN 3 for the first CCID interface.
//!
//! It is pure and synchronous: no clock, no I/O. A command is answered as soon as it is
//! written; [`SimulatedReader::transfer_in`] returns [`InTransfer::Pending`] when nothing
//! is there to read. Randomness (challenges) comes from a seeded generator. The JavaScript
//! wrapper is in `web` (wasm32 only).
//!
//! USB semantics a caller can trip on:
//! - Bulk-IN data goes out in packets of wMaxPacketSize (64). A transfer of `length` bytes
//!   ends with the message (as if a short or zero-length packet ended it) or when `length`
//!   bytes came; a packet that does not fit the rest of `length` is a babble (what fits is
//!   returned, the rest of that packet is lost), as on a real bus. Read with a multiple of
//!   64, or with at least dwMaxCCIDMessageLength.
//! - A halted endpoint answers "stall" until [`SimulatedReader::clear_halt`].
//! - After [`SimulatedReader::disconnect`] every call fails with NotFoundError.

pub mod card;
pub mod contact;
pub mod profiles;
pub mod transport;
#[cfg(target_arch = "wasm32")]
pub mod web;

use std::collections::VecDeque;

use crate::profile::{ProfileError, ReaderProfile};
use crate::proto::ccid::Chain;
use crate::proto::ccid::{
    message_type as mt, ClockStatus, Header, IccStatus, PcToRdr, PcToRdrSecure,
    PcToRdrSetParameters, PcToRdrXfrBlock, ProtocolParameters, RdrToPc, RdrToPcDataBlock,
    RdrToPcDataRateAndClockFrequency, RdrToPcEscape, RdrToPcHardwareError, RdrToPcNotifySlotChange,
    RdrToPcParameters, RdrToPcSlotStatus, SlotError, SlotState, HEADER_LEN,
};
use crate::proto::descriptor::{
    find_ccid_interfaces, CcidClassDescriptor, CcidInterface, Configuration, ExchangeLevel,
};
use crate::proto::pps::{self, PpsRequest};

use card::SimCard;
pub use card::{CardApp, CardConfig, CardError, CardLog};

/// Interface classes WebUSB protects (WICG/webusb "protected interface class").
const PROTECTED_CLASSES: [u8; 7] = [0x01, 0x03, 0x08, 0x0B, 0x0E, 0x10, 0xE0];
/// Bulk-OUT headers the simulator remembers for [`SimulatedReader::command_log`].
const COMMAND_LOG_CAPACITY: usize = 64;

/// Which reader to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// The built-in reader ([`profiles::DEFAULT_DUMP`]).
    Default,
    /// A libccid dump: its file name (without `.txt`) and its text.
    Dump {
        /// The file name without `.txt`.
        name: String,
        /// The dump as written.
        text: String,
    },
}

/// How to build a [`SimulatedReader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The reader.
    pub profile: Profile,
    /// The card in slot 0 (`None`: the slot is empty).
    pub card: Option<CardConfig>,
    /// Seed of the card's random generator.
    pub seed: u64,
}

impl Default for SimConfig {
    /// The default reader with the seed card, seed 1.
    fn default() -> Self {
        SimConfig {
            profile: Profile::Default,
            card: Some(CardConfig::seed()),
            seed: 1,
        }
    }
}

/// Why the simulator cannot do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The dump does not parse or its configuration cannot be built.
    #[error("bad reader profile")]
    Profile(#[from] ProfileError),
    /// No dump of that name.
    #[error("unknown reader profile {0:?}")]
    UnknownProfile(String),
    /// The card configuration is unusable.
    #[error("bad card")]
    Card(#[from] CardError),
    /// The slot number is beyond bMaxSlotIndex.
    #[error("no slot {0}")]
    NoSuchSlot(u8),
    /// A fault name the simulator does not know.
    #[error("unknown fault {0:?}")]
    UnknownFault(String),
}

// The control-transfer setup is the driver's own type: the simulator answers exactly what
// the driver sends.
pub use crate::driver::usb::{ControlSetup, Recipient, RequestType};

/// A failed USB call: a DOMException as Chrome raises it, or a transfer status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsbFault {
    /// The promise rejects with `new DOMException(message, name)`.
    #[error("{name}: {message}")]
    Exception {
        /// The DOMException name: NetworkError, NotFoundError, SecurityError,
        /// InvalidStateError, AbortError.
        name: &'static str,
        /// Chrome's message.
        message: &'static str,
    },
    /// The transfer resolves with status "stall" (the endpoint is halted).
    #[error("stall")]
    Stall,
    /// The transfer resolves with status "babble" and the bytes that fitted.
    #[error("babble")]
    Babble(Vec<u8>),
}

impl UsbFault {
    const fn exception(name: &'static str, message: &'static str) -> Self {
        UsbFault::Exception { name, message }
    }

    /// The DOMException name, for an exception.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            UsbFault::Exception { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The WebUSB transfer status, for a stall or a babble.
    pub fn status(&self) -> Option<&'static str> {
        match self {
            UsbFault::Stall => Some("stall"),
            UsbFault::Babble(_) => Some("babble"),
            UsbFault::Exception { .. } => None,
        }
    }
}

const DISCONNECTED: UsbFault = UsbFault::exception("NotFoundError", "The device was disconnected.");
const NOT_OPEN: UsbFault =
    UsbFault::exception("InvalidStateError", "The device must be opened first.");
const NO_CONFIGURATION: UsbFault = UsbFault::exception(
    "InvalidStateError",
    "The device must have a configuration selected.",
);
const NO_INTERFACE: UsbFault = UsbFault::exception(
    "NotFoundError",
    "The interface number provided is not supported by the device in its current configuration.",
);
const NOT_CLAIMED: UsbFault = UsbFault::exception(
    "InvalidStateError",
    "The specified interface has not been claimed.",
);
const NO_ENDPOINT: UsbFault = UsbFault::exception(
    "NotFoundError",
    "The specified endpoint is not part of a claimed and selected alternate interface.",
);
const NO_CONFIGURATION_VALUE: UsbFault = UsbFault::exception(
    "NotFoundError",
    "The configuration value provided is not supported by the device.",
);
const NO_ALTERNATE: UsbFault = UsbFault::exception(
    "NotFoundError",
    "The alternate setting provided is not supported by the device in its current configuration.",
);
/// claimInterface on a protected class (Chrome, reference/webusb-ccid.md §1.1).
pub const PROTECTED_CLASS: UsbFault = UsbFault::exception(
    "SecurityError",
    "The requested interface implements a protected class.",
);
/// open() refused by the operating system (permissions, another driver).
pub const ACCESS_DENIED: UsbFault = UsbFault::exception("SecurityError", "Access denied.");
/// claimInterface on an interface another program holds.
pub const UNABLE_TO_CLAIM: UsbFault =
    UsbFault::exception("NetworkError", "Unable to claim interface.");

/// The outcome of [`SimulatedReader::transfer_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InTransfer {
    /// The transfer completed (or failed).
    Ready(Result<Vec<u8>, UsbFault>),
    /// Nothing to read yet: a WebUSB `transferIn` would stay pending.
    Pending,
}

/// A fault switch. Setting one replaces its previous value; [`SimulatedReader::clear_faults`]
/// turns all off. Names are those of [`Fault::from_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// `stallIn`: halt the bulk-IN endpoint (status "stall" until clear_halt); `false`
    /// lifts the halt as clear_halt does.
    StallIn(bool),
    /// `stallOut`: the same for the bulk-OUT endpoint.
    StallOut(bool),
    /// `timeExtensions`: send N time extensions (bmCommandStatus 2) before each answer to
    /// IccPowerOn, XfrBlock and Secure.
    TimeExtensions(u16),
    /// `stale`: send an extra answer with the previous bSeq before each answer.
    StaleResponse(bool),
    /// `duplicate`: send each answer twice.
    DuplicateResponse(bool),
    /// `split`: deliver bulk-IN data one byte per transfer.
    SplitTransfers(bool),
    /// `coalesce`: deliver the messages queued for one command (and any unread ones) in
    /// one transfer.
    CoalescedTransfers(bool),
    /// `mute`: the card does not answer (bError ICC_MUTE 0xFE).
    MuteCard(bool),
    /// `protectedClass`: claimInterface of a protected class (0x0B) fails as in Chrome.
    ProtectedClass(bool),
    /// `accessDenied`: open() fails with SecurityError "Access denied.".
    AccessDenied(bool),
    /// `busy`: claimInterface fails with NetworkError "Unable to claim interface.".
    Busy(bool),
    /// `readerStall`: the reader hangs: commands are taken but not answered. When the
    /// fault is cleared it answers them in order, late (CMD_SLOT_BUSY for a command that
    /// came while another ran on its slot, CMD_ABORTED for one a PC_to_RDR_Abort ended).
    ReaderStall(bool),
    /// `secureSlotStatus`: the reader announces PIN verification but answers
    /// PC_to_RDR_Secure with a failed RDR_to_PC_SlotStatus (bError 0, command not
    /// supported) instead of the RDR_to_PC_DataBlock CCID §6.1.11 prescribes (seen on a
    /// real implementation).
    SecureSlotStatus(bool),
    /// `interruptErrors`: the next N interrupt-IN transfers fail with NetworkError ("A
    /// transfer error has occurred."), as a flaky interrupt pipe does; the events stay
    /// queued for the next read.
    InterruptErrors(u32),
    /// `late`: the reader answers each command N ms after it came (a slow card: key
    /// generation, a PIN typed slowly); the card runs it at once. Meanwhile its slot is
    /// busy: another command for it gets CMD_SLOT_BUSY at once (CCID §5.2.5), a
    /// PC_to_RDR_Abort ends it with CMD_ABORTED. Time comes from
    /// [`SimulatedReader::set_time`] (the transports set it).
    LateAnswers(u32),
}

impl Fault {
    /// A fault from its JavaScript name and a value (0 is off, anything else on; a count
    /// for `timeExtensions`).
    pub fn from_name(name: &str, value: u32) -> Result<Fault, SimError> {
        let on = value != 0;
        Ok(match name {
            "stallIn" => Fault::StallIn(on),
            "stallOut" => Fault::StallOut(on),
            "timeExtensions" => Fault::TimeExtensions(u16::try_from(value).unwrap_or(u16::MAX)),
            "stale" => Fault::StaleResponse(on),
            "duplicate" => Fault::DuplicateResponse(on),
            "split" => Fault::SplitTransfers(on),
            "coalesce" => Fault::CoalescedTransfers(on),
            "mute" => Fault::MuteCard(on),
            "protectedClass" => Fault::ProtectedClass(on),
            "accessDenied" => Fault::AccessDenied(on),
            "busy" => Fault::Busy(on),
            "readerStall" => Fault::ReaderStall(on),
            "secureSlotStatus" => Fault::SecureSlotStatus(on),
            "interruptErrors" => Fault::InterruptErrors(value),
            "late" => Fault::LateAnswers(value),
            other => return Err(SimError::UnknownFault(other.to_owned())),
        })
    }
}

/// The fault switches in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// See [`Fault::TimeExtensions`].
    pub time_extensions: u16,
    /// See [`Fault::StaleResponse`].
    pub stale: bool,
    /// See [`Fault::DuplicateResponse`].
    pub duplicate: bool,
    /// See [`Fault::SplitTransfers`].
    pub split: bool,
    /// See [`Fault::CoalescedTransfers`].
    pub coalesce: bool,
    /// See [`Fault::MuteCard`].
    pub mute: bool,
    /// See [`Fault::ProtectedClass`].
    pub protected_class: bool,
    /// See [`Fault::AccessDenied`].
    pub access_denied: bool,
    /// See [`Fault::Busy`].
    pub busy: bool,
    /// See [`Fault::ReaderStall`].
    pub reader_stall: bool,
    /// See [`Fault::SecureSlotStatus`].
    pub secure_slot_status: bool,
    /// See [`Fault::InterruptErrors`].
    pub interrupt_errors: u32,
    /// See [`Fault::LateAnswers`].
    pub late_ms: u32,
}

/// What the user does on the PIN pad when a PC_to_RDR_Secure asks for a PIN.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum PinEntry {
    /// The user types these digits and presses OK.
    Digits(String),
    /// The user presses Cancel (bError PIN_CANCELLED 0xEF).
    Cancel,
    /// Nobody types anything (bError PIN_TIMEOUT 0xF0).
    #[default]
    Timeout,
}

/// Counters for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// transferOut calls that wrote data.
    pub transfers_out: u64,
    /// transferIn calls that returned data.
    pub transfers_in: u64,
    /// Control transfers answered.
    pub control_transfers: u64,
    /// Whole PC_to_RDR messages received.
    pub commands: u64,
    /// Time-extension answers sent.
    pub time_extensions: u64,
    /// Extra answers sent by the stale and duplicate faults.
    pub stale_answers: u64,
}

/// One slot of the reader.
#[derive(Debug, Default)]
struct Slot {
    card: Option<SimCard>,
    powered: bool,
    /// Protocol parameters set by SetParameters (`None`: the ATR's defaults).
    parameters: Option<ProtocolParameters>,
    /// The changed bit for the next NotifySlotChange.
    changed: bool,
    /// An extended APDU being received (CCID §6.1.4 chaining).
    chain_in: Vec<u8>,
    /// The parts of a long response still to send, with their bChainParameter.
    chain_out: VecDeque<(u8, Vec<u8>)>,
}

impl Slot {
    fn icc(&self) -> IccStatus {
        match (&self.card, self.powered) {
            (None, _) => IccStatus::Absent,
            (Some(_), true) => IccStatus::PresentActive,
            (Some(_), false) => IccStatus::PresentInactive,
        }
    }
}

/// A simulated CCID reader as a WebUSB-shaped device. See the module documentation.
#[derive(Debug)]
pub struct SimulatedReader {
    name: String,
    profile: ReaderProfile,
    device_descriptor: [u8; 18],
    configuration: Configuration,
    configuration_bytes: Vec<u8>,
    /// The first CCID interface: the one the simulator serves.
    ccid: Option<CcidInterface>,
    descriptor: Option<CcidClassDescriptor>,
    seed: u64,
    opened: bool,
    configuration_value: Option<u8>,
    claimed: Vec<u8>,
    disconnected: bool,
    halted_in: bool,
    halted_out: bool,
    faults: Faults,
    pin_entry: PinEntry,
    slots: Vec<Slot>,
    out_buffer: Vec<u8>,
    /// Bulk-IN transfer units (a message, or several when coalesced) and the read offset
    /// in the first one.
    bulk_in: VecDeque<Vec<u8>>,
    bulk_in_offset: usize,
    notify_pending: bool,
    hardware_errors: VecDeque<Vec<u8>>,
    /// Commands taken while the reader stalled.
    stalled: Vec<Vec<u8>>,
    /// The time the transport last told ([`SimulatedReader::set_time`]), in ms.
    now_ms: u64,
    /// Answers held back by the late fault: when, the command's header, the answers.
    late: VecDeque<(u64, [u8; HEADER_LEN], Vec<Vec<u8>>)>,
    /// The last answer queued, replayed by the stale fault.
    last_answer: Option<Vec<u8>>,
    command_log: VecDeque<[u8; HEADER_LEN]>,
    abort_requests: Vec<(u8, u8)>,
    stats: SimStats,
}

impl SimulatedReader {
    /// A reader built from `config`, not opened, with the card of `config` in slot 0.
    pub fn new(config: SimConfig) -> Result<Self, SimError> {
        let name = config.profile.name().to_owned();
        let profile = config.profile.parse()?;
        let configuration = profile.to_configuration()?;
        let configuration_bytes = configuration
            .encode()
            .map_err(|e| SimError::Profile(e.into()))?;
        let ccid = find_ccid_interfaces(&configuration_bytes)
            .map_err(|e| SimError::Profile(e.into()))?
            .into_iter()
            .next();
        let descriptor = ccid.as_ref().map(|c| c.descriptor);
        let slot_count = descriptor.map_or(1, |d| d.slot_count());
        let mut slots: Vec<Slot> = (0..slot_count).map(|_| Slot::default()).collect();
        if let (Some(card), Some(slot)) = (config.card, slots.first_mut()) {
            slot.card = Some(SimCard::new(card, config.seed)?);
            slot.changed = true;
        }
        let notify_pending = slots.iter().any(|s| s.changed);
        Ok(SimulatedReader {
            name,
            device_descriptor: profile.device_descriptor().encode(),
            profile,
            configuration,
            configuration_bytes,
            ccid,
            descriptor,
            seed: config.seed,
            opened: false,
            configuration_value: None,
            claimed: Vec::new(),
            disconnected: false,
            halted_in: false,
            halted_out: false,
            faults: Faults::default(),
            pin_entry: PinEntry::default(),
            slots,
            out_buffer: Vec::new(),
            bulk_in: VecDeque::new(),
            bulk_in_offset: 0,
            notify_pending,
            hardware_errors: VecDeque::new(),
            stalled: Vec::new(),
            now_ms: 0,
            late: VecDeque::new(),
            last_answer: None,
            command_log: VecDeque::new(),
            abort_requests: Vec::new(),
            stats: SimStats::default(),
        })
    }

    // ------------------------------------------------------------------ properties

    /// The profile's name (`default` or the dump's file name without `.txt`).
    pub fn profile_name(&self) -> &str {
        &self.name
    }

    /// The parsed profile.
    pub fn profile(&self) -> &ReaderProfile {
        &self.profile
    }

    /// The configuration served by GET_DESCRIPTOR.
    pub fn configuration(&self) -> &Configuration {
        &self.configuration
    }

    /// The CCID interface the simulator serves (`None`: the profile has no CCID class
    /// descriptor, so only the control endpoint answers).
    pub fn ccid_interface(&self) -> Option<&CcidInterface> {
        self.ccid.as_ref()
    }

    /// idVendor.
    pub fn vendor_id(&self) -> u16 {
        self.profile.vendor_id
    }

    /// idProduct.
    pub fn product_id(&self) -> u16 {
        self.profile.product_id
    }

    /// The iManufacturer string.
    pub fn manufacturer_name(&self) -> Option<&str> {
        self.profile.manufacturer.as_deref()
    }

    /// The iProduct string.
    pub fn product_name(&self) -> Option<&str> {
        self.profile.product.as_deref()
    }

    /// bcdDevice.
    pub fn device_version(&self) -> u16 {
        self.profile.device_version
    }

    /// Whether open() succeeded and close() was not called since.
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// The selected configuration value.
    pub fn configuration_value(&self) -> Option<u8> {
        self.configuration_value
    }

    /// Whether interface `n` is claimed.
    pub fn is_claimed(&self, n: u8) -> bool {
        self.claimed.contains(&n)
    }

    /// Whether the device was disconnected.
    pub fn is_disconnected(&self) -> bool {
        self.disconnected
    }

    /// The number of slots.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Counters.
    pub fn stats(&self) -> SimStats {
        self.stats
    }

    /// The fault switches in force.
    pub fn faults(&self) -> Faults {
        self.faults
    }

    /// The headers of the last 64 bulk-OUT messages, oldest first.
    pub fn command_log(&self) -> Vec<[u8; HEADER_LEN]> {
        self.command_log.iter().copied().collect()
    }

    /// The APDUs the card in `slot` executed (VERIFY data as `*`), oldest first.
    pub fn card_log(&self, slot: u8) -> CardLog {
        self.slot(slot)
            .and_then(|s| s.card.as_ref())
            .map(SimCard::log)
            .unwrap_or_default()
    }

    /// ABORT class requests received (bSlot, bSeq).
    pub fn abort_requests(&self) -> &[(u8, u8)] {
        &self.abort_requests
    }

    /// The configuration of the card in `slot`, if any.
    pub fn card_config(&self, slot: u8) -> Option<&CardConfig> {
        self.slot(slot)
            .and_then(|s| s.card.as_ref())
            .map(|c| &c.config)
    }

    /// Injects a T=1 fault on the answer of the card in `slot` to the host block `n` blocks
    /// from now (card side of ISO/IEC 7816-3 §11.6.3; nothing without a card).
    pub fn inject_t1_fault(&mut self, slot: u8, n: usize, fault: crate::proto::t1::card::Fault) {
        if let Some(card) = self
            .slots
            .get_mut(usize::from(slot))
            .and_then(|s| s.card.as_mut())
        {
            card.inject_t1(n, fault);
        }
    }

    /// Whether a card is in `slot`.
    pub fn card_present(&self, slot: u8) -> bool {
        self.slot(slot).is_some_and(|s| s.card.is_some())
    }

    fn slot(&self, slot: u8) -> Option<&Slot> {
        self.slots.get(usize::from(slot))
    }

    fn bulk_out_number(&self) -> Option<u8> {
        self.ccid.as_ref()?.bulk_out.as_ref().map(|e| e.number())
    }

    fn bulk_in_number(&self) -> Option<u8> {
        self.ccid.as_ref()?.bulk_in.as_ref().map(|e| e.number())
    }

    fn interrupt_number(&self) -> Option<u8> {
        self.ccid
            .as_ref()?
            .interrupt_in
            .as_ref()
            .map(|e| e.number())
    }

    fn bulk_packet_size(&self) -> usize {
        self.ccid
            .as_ref()
            .and_then(|c| c.bulk_in.as_ref())
            .map_or(64, |e| usize::from(e.max_packet_size.max(1)))
    }

    fn max_message_length(&self) -> usize {
        self.descriptor.map_or(271, |d| {
            usize::try_from(d.max_message_length()).unwrap_or(usize::MAX)
        })
    }

    fn level(&self) -> ExchangeLevel {
        self.descriptor
            .map_or(ExchangeLevel::Tpdu, |d| d.exchange_level())
    }

    // ------------------------------------------------------------------ controls

    /// Puts a card in `slot` (replacing any) and notifies the change.
    pub fn insert_card(&mut self, slot: u8, card: CardConfig) -> Result<(), SimError> {
        let seed = self.seed.wrapping_add(u64::from(slot));
        let card = SimCard::new(card, seed)?;
        let s = self
            .slots
            .get_mut(usize::from(slot))
            .ok_or(SimError::NoSuchSlot(slot))?;
        *s = Slot {
            card: Some(card),
            changed: true,
            ..Slot::default()
        };
        self.notify_pending = true;
        Ok(())
    }

    /// Takes the card out of `slot` and notifies the change.
    pub fn remove_card(&mut self, slot: u8) -> Result<(), SimError> {
        let s = self
            .slots
            .get_mut(usize::from(slot))
            .ok_or(SimError::NoSuchSlot(slot))?;
        *s = Slot {
            changed: true,
            ..Slot::default()
        };
        self.notify_pending = true;
        Ok(())
    }

    /// An overcurrent on `slot`: the card is deactivated and RDR_to_PC_HardwareError is
    /// queued on the interrupt endpoint (CCID §6.3.2).
    pub fn hardware_error(&mut self, slot: u8) -> Result<(), SimError> {
        let s = self
            .slots
            .get_mut(usize::from(slot))
            .ok_or(SimError::NoSuchSlot(slot))?;
        s.powered = false;
        let seq = self.last_answer.as_deref().and_then(|m| m.get(6).copied());
        self.hardware_errors.push_back(
            RdrToPcHardwareError {
                slot,
                seq: seq.unwrap_or(0),
                hard_error_code: RdrToPcHardwareError::OVERCURRENT,
            }
            .encode(),
        );
        Ok(())
    }

    /// Unplugs the device: every later call fails with NotFoundError.
    pub fn disconnect(&mut self) {
        self.disconnected = true;
        self.opened = false;
        self.claimed.clear();
    }

    /// Switches a fault on or off.
    pub fn set_fault(&mut self, fault: Fault) {
        let f = &mut self.faults;
        match fault {
            Fault::StallIn(on) => self.halted_in = on,
            Fault::StallOut(on) => self.halted_out = on,
            Fault::TimeExtensions(n) => f.time_extensions = n,
            Fault::StaleResponse(on) => f.stale = on,
            Fault::DuplicateResponse(on) => f.duplicate = on,
            Fault::SplitTransfers(on) => f.split = on,
            Fault::CoalescedTransfers(on) => f.coalesce = on,
            Fault::MuteCard(on) => f.mute = on,
            Fault::ProtectedClass(on) => f.protected_class = on,
            Fault::AccessDenied(on) => f.access_denied = on,
            Fault::Busy(on) => f.busy = on,
            Fault::SecureSlotStatus(on) => f.secure_slot_status = on,
            Fault::InterruptErrors(n) => f.interrupt_errors = n,
            Fault::LateAnswers(ms) => f.late_ms = ms,
            Fault::ReaderStall(on) => {
                f.reader_stall = on;
                if !on {
                    self.wake();
                }
            }
        }
    }

    /// Turns every fault off (halted endpoints stay halted until clear_halt).
    pub fn clear_faults(&mut self) {
        let was_stalled = self.faults.reader_stall;
        self.faults = Faults::default();
        if was_stalled {
            self.wake();
        }
    }

    /// What the user does on the PIN pad at the next PC_to_RDR_Secure.
    pub fn set_pin_entry(&mut self, entry: PinEntry) {
        self.pin_entry = entry;
    }

    // ------------------------------------------------------------------ USB device

    fn alive(&self) -> Result<(), UsbFault> {
        if self.disconnected {
            Err(DISCONNECTED)
        } else {
            Ok(())
        }
    }

    fn alive_and_open(&self) -> Result<(), UsbFault> {
        self.alive()?;
        if self.opened {
            Ok(())
        } else {
            Err(NOT_OPEN)
        }
    }

    /// USBDevice.open().
    pub fn open(&mut self) -> Result<(), UsbFault> {
        self.alive()?;
        if self.faults.access_denied {
            return Err(ACCESS_DENIED);
        }
        self.opened = true;
        Ok(())
    }

    /// USBDevice.close(): releases every interface.
    pub fn close(&mut self) -> Result<(), UsbFault> {
        self.alive()?;
        self.opened = false;
        self.claimed.clear();
        Ok(())
    }

    /// USBDevice.selectConfiguration(value): only configuration 1 exists.
    pub fn select_configuration(&mut self, value: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        if value != self.configuration.configuration_value {
            return Err(NO_CONFIGURATION_VALUE);
        }
        self.configuration_value = Some(value);
        Ok(())
    }

    /// USBDevice.claimInterface(n).
    pub fn claim_interface(&mut self, n: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        if self.configuration_value.is_none() {
            return Err(NO_CONFIGURATION);
        }
        let alternates: Vec<u8> = self
            .configuration
            .interfaces
            .iter()
            .filter(|i| i.number == n)
            .map(|i| i.class)
            .collect();
        if alternates.is_empty() {
            return Err(NO_INTERFACE);
        }
        // Chrome refuses an interface when any of its alternate settings has a protected
        // class (WICG/webusb "has a protected interface class").
        if self.faults.protected_class && alternates.iter().any(|c| PROTECTED_CLASSES.contains(c)) {
            return Err(PROTECTED_CLASS);
        }
        if self.faults.busy {
            return Err(UNABLE_TO_CLAIM);
        }
        if !self.claimed.contains(&n) {
            self.claimed.push(n);
        }
        Ok(())
    }

    /// USBDevice.releaseInterface(n).
    pub fn release_interface(&mut self, n: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        if !self.configuration.interfaces.iter().any(|i| i.number == n) {
            return Err(NO_INTERFACE);
        }
        self.claimed.retain(|c| *c != n);
        Ok(())
    }

    /// USBDevice.selectAlternateInterface(n, alternate).
    pub fn select_alternate_interface(&mut self, n: u8, alternate: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        if !self.claimed.contains(&n) {
            return Err(NOT_CLAIMED);
        }
        let exists = self
            .configuration
            .interfaces
            .iter()
            .any(|i| i.number == n && i.alternate_setting == alternate);
        if exists {
            Ok(())
        } else {
            Err(NO_ALTERNATE)
        }
    }

    /// USBDevice.reset(): the reader restarts; queued data, halts and card power are gone.
    pub fn reset(&mut self) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        self.halted_in = false;
        self.halted_out = false;
        self.out_buffer.clear();
        self.bulk_in.clear();
        self.bulk_in_offset = 0;
        self.stalled.clear();
        self.late.clear();
        for s in &mut self.slots {
            s.powered = false;
            s.chain_in.clear();
            s.chain_out.clear();
        }
        Ok(())
    }

    /// USBDevice.clearHalt(direction, endpoint); `direction_in` is `"in"`.
    pub fn clear_halt(&mut self, direction_in: bool, endpoint: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        self.endpoint_claimed(endpoint, direction_in)?;
        if direction_in && Some(endpoint) == self.bulk_in_number() {
            self.halted_in = false;
        }
        if !direction_in && Some(endpoint) == self.bulk_out_number() {
            self.halted_out = false;
        }
        Ok(())
    }

    /// Whether an endpoint of that number and direction is in a claimed interface.
    fn endpoint_claimed(&self, endpoint: u8, direction_in: bool) -> Result<(), UsbFault> {
        let found = self
            .configuration
            .interfaces
            .iter()
            .filter(|i| self.claimed.contains(&i.number))
            .flat_map(|i| i.endpoints.iter())
            .any(|e| e.number() == endpoint && e.is_in() == direction_in);
        if found {
            Ok(())
        } else {
            Err(NO_ENDPOINT)
        }
    }

    /// USBDevice.controlTransferIn(setup, length): standard GET_DESCRIPTOR (device,
    /// configuration, strings), GET_STATUS and GET_CONFIGURATION to the device, and the CCID
    /// class requests GET_CLOCK_FREQUENCIES / GET_DATA_RATES (CCID §5.3.2, §5.3.3) to a
    /// claimed CCID interface. Anything else stalls. The answer is cut to `length`, as a
    /// device does with wLength.
    pub fn control_transfer_in(
        &mut self,
        setup: ControlSetup,
        length: u16,
    ) -> Result<Vec<u8>, UsbFault> {
        self.alive_and_open()?;
        let mut data = self.control_in_data(setup)?;
        data.truncate(usize::from(length));
        self.stats.control_transfers += 1;
        Ok(data)
    }

    fn control_in_data(&self, setup: ControlSetup) -> Result<Vec<u8>, UsbFault> {
        let [kind, index] = setup.value.to_be_bytes();
        match (setup.request_type, setup.recipient, setup.request) {
            // USB 2.0 §9.4.3 GET_DESCRIPTOR.
            (RequestType::Standard, Recipient::Device, 0x06) => match (kind, index) {
                (0x01, 0) => Ok(self.device_descriptor.to_vec()),
                (0x02, 0) => Ok(self.configuration_bytes.clone()),
                // String 0: the supported language ids, here US English 0x0409 (§9.6.7).
                (0x03, 0) => Ok(vec![4, 3, 0x09, 0x04]),
                (0x03, 1) => string_descriptor(self.profile.manufacturer.as_deref()),
                (0x03, 2) => string_descriptor(self.profile.product.as_deref()),
                _ => Err(UsbFault::Stall),
            },
            // §9.4.5 GET_STATUS: bus powered, no remote wake-up.
            (RequestType::Standard, Recipient::Device, 0x00) => Ok(vec![0, 0]),
            // §9.4.2 GET_CONFIGURATION.
            (RequestType::Standard, Recipient::Device, 0x08) => {
                Ok(vec![self.configuration_value.unwrap_or(0)])
            }
            (RequestType::Class, Recipient::Interface, request @ (0x02 | 0x03)) => {
                let ccid = self.ccid.as_ref().ok_or(UsbFault::Stall)?;
                let interface = u8::try_from(setup.index & 0xFF).unwrap_or(0);
                if interface != ccid.number {
                    return Err(UsbFault::Stall);
                }
                if !self.claimed.contains(&interface) {
                    return Err(NOT_CLAIMED);
                }
                Ok(self.clock_or_rates(request == 0x02))
            }
            _ => Err(UsbFault::Stall),
        }
    }

    /// The dump's "Support N kHz" / "Support N bps" lines as u32 LE, or the default value
    /// when it lists none.
    fn clock_or_rates(&self, clocks: bool) -> Vec<u8> {
        let (field, unit) = if clocks {
            ("bNumClockSupported", "kHz")
        } else {
            ("bNumDataRatesSupported", "bps")
        };
        let values: Vec<u32> = self
            .profile
            .interfaces
            .iter()
            .find(|i| i.class_descriptor.is_some())
            .and_then(|i| i.class_field(field))
            .map(|f| {
                f.notes
                    .iter()
                    .filter_map(|n| n.strip_prefix("Support ")?.strip_suffix(unit))
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let values = if values.is_empty() {
            let d = self.descriptor;
            vec![d.map_or(0, |d| if clocks { d.default_clock } else { d.data_rate })]
        } else {
            values
        };
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// USBDevice.controlTransferOut(setup, data): the CCID ABORT class request (CCID
    /// §5.3.1, wValue = bSeq << 8 | bSlot) is recorded; anything else stalls.
    pub fn control_transfer_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
    ) -> Result<usize, UsbFault> {
        self.alive_and_open()?;
        let interface = self.ccid.as_ref().map(|c| c.number);
        match (setup.request_type, setup.recipient, setup.request) {
            (RequestType::Class, Recipient::Interface, 0x01)
                if interface == u8::try_from(setup.index & 0xFF).ok() =>
            {
                if !interface.is_some_and(|n| self.claimed.contains(&n)) {
                    return Err(NOT_CLAIMED);
                }
                let [seq, slot] = setup.value.to_be_bytes();
                self.abort_requests.push((slot, seq));
                self.stats.control_transfers += 1;
                Ok(data.len())
            }
            _ => Err(UsbFault::Stall),
        }
    }

    /// USBDevice.transferOut(endpoint, data): bulk-OUT takes CCID messages (one may span
    /// several transfers); the answers are queued on bulk-IN at once.
    pub fn transfer_out(&mut self, endpoint: u8, data: &[u8]) -> Result<usize, UsbFault> {
        self.alive_and_open()?;
        self.endpoint_claimed(endpoint, false)?;
        if Some(endpoint) != self.bulk_out_number() {
            return Ok(data.len());
        }
        if self.halted_out {
            return Err(UsbFault::Stall);
        }
        self.stats.transfers_out += 1;
        self.out_buffer.extend_from_slice(data);
        self.take_commands();
        Ok(data.len())
    }

    /// USBDevice.transferIn(endpoint, length).
    pub fn transfer_in(&mut self, endpoint: u8, length: usize) -> InTransfer {
        if let Err(e) = self
            .alive_and_open()
            .and_then(|()| self.endpoint_claimed(endpoint, true))
        {
            return InTransfer::Ready(Err(e));
        }
        if Some(endpoint) == self.interrupt_number() {
            if self.faults.interrupt_errors > 0 {
                self.faults.interrupt_errors -= 1;
                return InTransfer::Ready(Err(UsbFault::exception(
                    "NetworkError",
                    "A transfer error has occurred.",
                )));
            }
            return match self.take_interrupt() {
                Some(mut msg) if msg.len() > length => {
                    msg.truncate(length);
                    InTransfer::Ready(Err(UsbFault::Babble(msg)))
                }
                Some(msg) => InTransfer::Ready(Ok(msg)),
                None => InTransfer::Pending,
            };
        }
        if Some(endpoint) != self.bulk_in_number() {
            return InTransfer::Pending;
        }
        if self.halted_in {
            return InTransfer::Ready(Err(UsbFault::Stall));
        }
        if self.bulk_in.is_empty() {
            return InTransfer::Pending;
        }
        self.stats.transfers_in += 1;
        InTransfer::Ready(self.read_bulk(length))
    }

    /// Whether a bulk-IN transfer would complete now (data queued or the endpoint halted).
    pub fn bulk_in_ready(&self) -> bool {
        self.halted_in || !self.bulk_in.is_empty()
    }

    /// Whether an interrupt-IN transfer would complete now.
    pub fn interrupt_ready(&self) -> bool {
        self.interrupt_number().is_some()
            && (!self.hardware_errors.is_empty() || self.notify_pending)
    }

    /// The next interrupt-IN message, if any: hardware errors first, then one
    /// NotifySlotChange with every change since the last one (CCID §6.3.1). Nothing when
    /// the profile has no interrupt endpoint: the host then polls with GetSlotStatus.
    pub fn take_interrupt(&mut self) -> Option<Vec<u8>> {
        self.interrupt_number()?;
        if let Some(e) = self.hardware_errors.pop_front() {
            return Some(e);
        }
        if !self.notify_pending {
            return None;
        }
        self.notify_pending = false;
        let states: Vec<(bool, bool)> = self
            .slots
            .iter_mut()
            .map(|s| (s.card.is_some(), std::mem::take(&mut s.changed)))
            .collect();
        Some(RdrToPcNotifySlotChange::new(&states).encode())
    }

    fn read_bulk(&mut self, length: usize) -> Result<Vec<u8>, UsbFault> {
        let packet = self.bulk_packet_size();
        let Some(unit) = self.bulk_in.front() else {
            return Ok(Vec::new());
        };
        let start = self.bulk_in_offset.min(unit.len());
        let remaining = unit.len() - start;
        let mut take = 0;
        let mut babble = false;
        if self.faults.split {
            take = remaining.min(length).min(1);
        } else {
            while take < remaining && take < length {
                let size = (remaining - take).min(packet);
                if take + size > length {
                    babble = true;
                    break;
                }
                take += size;
                if size < packet {
                    break;
                }
            }
        }
        let data = if babble {
            let end = (start + length).min(unit.len());
            let fitted = unit.get(start..end).unwrap_or_default().to_vec();
            // The packet that did not fit is lost whole.
            let lost = (remaining - take).min(packet);
            self.advance_bulk(take + lost);
            return Err(UsbFault::Babble(fitted));
        } else {
            unit.get(start..start + take).unwrap_or_default().to_vec()
        };
        self.advance_bulk(take);
        Ok(data)
    }

    fn advance_bulk(&mut self, n: usize) {
        self.bulk_in_offset += n;
        let done = self
            .bulk_in
            .front()
            .is_some_and(|u| self.bulk_in_offset >= u.len());
        if done {
            self.bulk_in.pop_front();
            self.bulk_in_offset = 0;
        }
    }

    // ------------------------------------------------------------------ CCID

    /// Cuts whole messages out of the bulk-OUT bytes and answers each.
    fn take_commands(&mut self) {
        let max = self.max_message_length();
        while let Ok(header) = Header::decode(&self.out_buffer) {
            let total = usize::try_from(header.message_len()).unwrap_or(usize::MAX);
            if total > max {
                // dwLength beyond dwMaxCCIDMessageLength: the reader refuses the command
                // with bError 1, the offset of dwLength (CCID §6.2.6), and drops its bytes.
                self.out_buffer.clear();
                self.stats.commands += 1;
                let answer = self.failure(&header, SlotError::BadParameter(1));
                self.queue(vec![answer]);
                return;
            }
            if self.out_buffer.len() < total {
                return;
            }
            let message: Vec<u8> = self.out_buffer.drain(..total).collect();
            self.stats.commands += 1;
            let mut head = [0u8; HEADER_LEN];
            head.copy_from_slice(message.get(..HEADER_LEN).unwrap_or(&[0; HEADER_LEN]));
            if self.command_log.len() == COMMAND_LOG_CAPACITY {
                self.command_log.pop_front();
            }
            self.command_log.push_back(head);
            if self.faults.reader_stall {
                self.stalled.push(message);
                continue;
            }
            if self.faults.late_ms > 0 || !self.late.is_empty() {
                self.take_while_late(&header, head, &message);
                continue;
            }
            let answers = self.answer(&message);
            self.queue(answers);
        }
    }

    /// A command while answers are late ([`Fault::LateAnswers`]).
    fn take_while_late(&mut self, header: &Header, head: [u8; HEADER_LEN], message: &[u8]) {
        let busy = self
            .late
            .iter()
            .position(|l| l.1.get(5) == Some(&header.slot));
        if header.message_type == mt::ABORT {
            if let Some(i) = busy {
                let aborted = self.late.remove(i).and_then(|l| Header::decode(&l.1).ok());
                if let Some(h) = aborted {
                    let answer = self.failure(&h, SlotError::CmdAborted);
                    self.queue(vec![answer]);
                }
            }
            let answers = self.answer(message);
            self.queue(answers);
        } else if busy.is_some() {
            let answer = self.failure(header, SlotError::CmdSlotBusy);
            self.queue(vec![answer]);
        } else {
            let answers = self.answer(message);
            let at = self.now_ms.saturating_add(u64::from(self.faults.late_ms));
            self.late.push_back((at, head, answers));
        }
    }

    /// Tells the reader the time (ms on any monotonic clock): late answers that are due
    /// become readable.
    pub fn set_time(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        while self.late.front().is_some_and(|l| l.0 <= self.now_ms) {
            if let Some((_, _, answers)) = self.late.pop_front() {
                self.queue(answers);
            }
        }
    }

    /// When the next late answer becomes readable, if one is held back.
    pub fn next_answer_at(&self) -> Option<u64> {
        self.late.front().map(|l| l.0)
    }

    /// The reader recovers from a stall: it answers what it took, in order.
    fn wake(&mut self) {
        let max_busy = usize::from(self.descriptor.map_or(1, |d| d.max_busy_slots().max(1)));
        let mut running: Vec<Vec<u8>> = Vec::new();
        for message in std::mem::take(&mut self.stalled) {
            let Ok(header) = Header::decode(&message) else {
                continue;
            };
            let same_slot = running
                .iter()
                .position(|m| m.get(5).copied() == Some(header.slot));
            if header.message_type == mt::ABORT {
                if let Some(i) = same_slot {
                    let aborted = running.remove(i);
                    if let Ok(h) = Header::decode(&aborted) {
                        let answer = self.failure(&h, SlotError::CmdAborted);
                        self.queue(vec![answer]);
                    }
                }
                let answers = self.answer(&message);
                self.queue(answers);
            } else if same_slot.is_some() || running.len() >= max_busy {
                // CCID §5.2.5: a command for a busy slot, or beyond bMaxCCIDBusySlots.
                let answer = self.failure(&header, SlotError::CmdSlotBusy);
                self.queue(vec![answer]);
            } else {
                running.push(message);
            }
        }
        for message in running {
            let answers = self.answer(&message);
            self.queue(answers);
        }
    }

    /// Queues the answers to one command, applying the transfer faults.
    fn queue(&mut self, mut answers: Vec<Vec<u8>>) {
        let Some(last) = answers.last().cloned() else {
            return;
        };
        if self.faults.stale {
            // The previous answer again, or a slot status with the previous bSeq.
            let stale = match self.last_answer.clone() {
                Some(previous) => previous,
                None => {
                    let mut m = last.clone();
                    if let Some(seq) = m.get_mut(6) {
                        *seq = seq.wrapping_sub(1);
                    }
                    m
                }
            };
            answers.insert(0, stale);
            self.stats.stale_answers += 1;
        }
        if self.faults.duplicate {
            answers.push(last.clone());
            self.stats.stale_answers += 1;
        }
        self.last_answer = Some(last);
        if self.faults.coalesce {
            let mut unit: Vec<u8> = answers.concat();
            // Merge with a unit nobody started reading.
            if self.bulk_in.len() > 1 || (self.bulk_in.len() == 1 && self.bulk_in_offset == 0) {
                if let Some(previous) = self.bulk_in.pop_back() {
                    unit = [previous, unit].concat();
                }
            }
            self.bulk_in.push_back(unit);
        } else {
            self.bulk_in.extend(answers);
        }
    }

    /// A failed answer of the type `header`'s command expects.
    fn failure(&self, header: &Header, error: SlotError) -> Vec<u8> {
        let icc = self.slot(header.slot).map_or(IccStatus::Absent, Slot::icc);
        let state = SlotState::failed(icc, error);
        let (slot, seq) = (header.slot, header.seq);
        match header.message_type {
            mt::ICC_POWER_ON | mt::XFR_BLOCK | mt::SECURE => {
                data_block(slot, seq, state, 0, Vec::new())
            }
            mt::GET_PARAMETERS | mt::RESET_PARAMETERS | mt::SET_PARAMETERS => {
                RdrToPc::Parameters(RdrToPcParameters {
                    slot,
                    seq,
                    state,
                    parameters: ProtocolParameters::Other {
                        protocol_num: 0,
                        data: Vec::new(),
                    },
                })
                .encode()
            }
            mt::ESCAPE => RdrToPc::Escape(RdrToPcEscape {
                slot,
                seq,
                state,
                data: Vec::new(),
            })
            .encode(),
            mt::SET_DATA_RATE_AND_CLOCK_FREQUENCY => {
                RdrToPc::DataRateAndClockFrequency(RdrToPcDataRateAndClockFrequency {
                    slot,
                    seq,
                    state,
                    rates: None,
                })
                .encode()
            }
            _ => slot_status(slot, seq, state),
        }
    }

    /// The answers to one whole command: time extensions first, then the answer.
    fn answer(&mut self, message: &[u8]) -> Vec<Vec<u8>> {
        let Ok(header) = Header::decode(message) else {
            return Vec::new();
        };
        if usize::from(header.slot) >= self.slots.len() {
            // bError 5: the offset of bSlot (CCID §6.2.6).
            return vec![self.failure(&header, SlotError::BadParameter(5))];
        }
        let command = match PcToRdr::decode(message) {
            Ok(c) => c,
            Err(crate::proto::ccid::CcidError::UnknownMessageType(_)) => {
                return vec![self.failure(&header, SlotError::CommandNotSupported)]
            }
            Err(crate::proto::ccid::CcidError::BadField { offset, .. }) => {
                return vec![self.failure(&header, SlotError::BadParameter(offset))]
            }
            Err(_) => return vec![self.failure(&header, SlotError::BadParameter(1))],
        };
        let (answer, slow) = self.execute(&header, command);
        let mut out = Vec::new();
        let data_block_answer = answer.first() == Some(&mt::DATA_BLOCK);
        if data_block_answer {
            let icc = self.slot(header.slot).map_or(IccStatus::Absent, Slot::icc);
            let mut extensions = Vec::new();
            if slow {
                extensions.extend(std::iter::repeat_n(
                    card::SLOW_WTX_MULTIPLIER,
                    usize::from(card::SLOW_WTX_COUNT),
                ));
            }
            extensions.extend(std::iter::repeat_n(
                1,
                usize::from(self.faults.time_extensions),
            ));
            for multiplier in extensions {
                let state = SlotState::time_extension(icc, multiplier);
                out.push(data_block(header.slot, header.seq, state, 0, Vec::new()));
                self.stats.time_extensions += 1;
            }
        }
        out.push(answer);
        out
    }

    /// Runs one decoded command; returns the answer and whether the card was slow.
    fn execute(&mut self, header: &Header, command: PcToRdr) -> (Vec<u8>, bool) {
        let (slot, seq) = (header.slot, header.seq);
        let level = self.level();
        let mute = self.faults.mute;
        let ifsd = self.card_ifsd();
        let payload = self.max_message_length().saturating_sub(HEADER_LEN);
        let descriptor = self.descriptor;
        let Some(s) = self.slots.get_mut(usize::from(slot)) else {
            return (self.failure(header, SlotError::BadParameter(5)), false);
        };
        let ok = |icc| SlotState::ok(icc);
        match command {
            PcToRdr::IccPowerOn(m) => {
                let Some(card) = s.card.as_mut() else {
                    let state = SlotState::failed(IccStatus::Absent, SlotError::IccMute);
                    return (data_block(slot, seq, state, 0, Vec::new()), false);
                };
                let voltage_ok = match m.power_select.byte() {
                    0 => true,
                    n => descriptor.is_none_or(|d| {
                        d.features.auto_voltage() || d.voltage_support & (1 << (n - 1)) != 0
                    }),
                };
                if !voltage_ok {
                    let state = SlotState::failed(s.icc(), SlotError::BadParameter(7));
                    return (data_block(slot, seq, state, 0, Vec::new()), false);
                }
                if mute {
                    s.powered = false;
                    let state = SlotState::failed(IccStatus::PresentInactive, SlotError::IccMute);
                    return (data_block(slot, seq, state, 0, Vec::new()), false);
                }
                card.reset(ifsd);
                s.powered = true;
                s.parameters = None;
                s.chain_in.clear();
                s.chain_out.clear();
                let atr = card.atr.raw().to_vec();
                (
                    data_block(slot, seq, ok(IccStatus::PresentActive), 0, atr),
                    false,
                )
            }
            PcToRdr::IccPowerOff(_) => {
                s.powered = false;
                (slot_status(slot, seq, ok(s.icc())), false)
            }
            PcToRdr::GetSlotStatus(_) => (slot_status(slot, seq, ok(s.icc())), false),
            PcToRdr::XfrBlock(m) => xfr_block(s, level, mute, payload, m),
            PcToRdr::GetParameters(_) => parameters_answer(s, slot, seq),
            PcToRdr::ResetParameters(_) => {
                s.parameters = None;
                if let Some(card) = s.card.as_mut() {
                    let default = card.atr.default_protocol();
                    card.select_protocol(default);
                }
                parameters_answer(s, slot, seq)
            }
            PcToRdr::SetParameters(m) => set_parameters(s, m),
            PcToRdr::Escape(_) => {
                let state = SlotState::failed(s.icc(), SlotError::CommandNotSupported);
                let answer = RdrToPc::Escape(RdrToPcEscape {
                    slot,
                    seq,
                    state,
                    data: Vec::new(),
                });
                (answer.encode(), false)
            }
            PcToRdr::IccClock(_) | PcToRdr::T0Apdu(_) | PcToRdr::Abort(_) => {
                (slot_status(slot, seq, ok(s.icc())), false)
            }
            PcToRdr::Mechanical(_) => {
                let state = if descriptor.is_some_and(|d| d.mechanical != 0) {
                    ok(s.icc())
                } else {
                    SlotState::failed(s.icc(), SlotError::CommandNotSupported)
                };
                (slot_status(slot, seq, state), false)
            }
            PcToRdr::SetDataRateAndClockFrequency(m) => {
                let answer = RdrToPcDataRateAndClockFrequency {
                    slot,
                    seq,
                    state: ok(s.icc()),
                    rates: Some(m.rates),
                };
                (RdrToPc::DataRateAndClockFrequency(answer).encode(), false)
            }
            PcToRdr::Secure(_) if self.faults.secure_slot_status => {
                let state = SlotState::failed(s.icc(), SlotError::CommandNotSupported);
                (slot_status(slot, seq, state), false)
            }
            PcToRdr::Secure(m) => {
                let pin_verify = descriptor.is_some_and(|d| d.pin_verify());
                let entry = self.pin_entry.clone();
                match self.slots.get_mut(usize::from(slot)) {
                    Some(s) => secure(s, level, pin_verify, &entry, mute, m),
                    None => (self.failure(header, SlotError::BadParameter(5)), false),
                }
            }
        }
    }

    /// The IFSD a T=1 card assumes: 32, or the reader's dwMaxIFSD (capped so a block fits
    /// one message) when the reader negotiates IFSD itself (dwFeatures 0x400).
    fn card_ifsd(&self) -> u8 {
        match self.descriptor {
            Some(d) if d.features.auto_ifsd() => {
                let fits = d.max_message_length().saturating_sub(15);
                u8::try_from(d.max_ifsd().min(fits).clamp(1, 254)).unwrap_or(254)
            }
            _ => 32,
        }
    }
}

fn string_descriptor(text: Option<&str>) -> Result<Vec<u8>, UsbFault> {
    let text = text.ok_or(UsbFault::Stall)?;
    // USB 2.0 §9.6.7: bLength, bDescriptorType 3, UTF-16LE; at most 126 code units.
    let units: Vec<u16> = text.encode_utf16().take(126).collect();
    let mut out = vec![0, 0x03];
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
    let length = u8::try_from(out.len()).unwrap_or(u8::MAX);
    if let Some(first) = out.first_mut() {
        *first = length;
    }
    Ok(out)
}

fn data_block(slot: u8, seq: u8, state: SlotState, chain: u8, data: Vec<u8>) -> Vec<u8> {
    RdrToPc::DataBlock(RdrToPcDataBlock {
        slot,
        seq,
        state,
        chain_parameter: chain,
        data,
    })
    .encode()
}

fn slot_status(slot: u8, seq: u8, state: SlotState) -> Vec<u8> {
    RdrToPc::SlotStatus(RdrToPcSlotStatus {
        slot,
        seq,
        state,
        clock_status: ClockStatus::Running,
    })
    .encode()
}

/// The parameters in force on a slot: those set, else the ATR's (from [`pps::plan`]).
fn current_parameters(s: &Slot) -> Option<ProtocolParameters> {
    if let Some(p) = &s.parameters {
        return Some(p.clone());
    }
    let card = s.card.as_ref()?;
    pps::plan(&card.atr, 0, 0, Some(card.protocol))
        .ok()?
        .set_parameters
}

fn parameters_answer(s: &Slot, slot: u8, seq: u8) -> (Vec<u8>, bool) {
    let answer = match current_parameters(s) {
        Some(parameters) => RdrToPcParameters {
            slot,
            seq,
            state: SlotState::ok(s.icc()),
            parameters,
        },
        None => RdrToPcParameters {
            slot,
            seq,
            state: SlotState::failed(s.icc(), SlotError::IccMute),
            parameters: ProtocolParameters::Other {
                protocol_num: 0,
                data: Vec::new(),
            },
        },
    };
    (RdrToPc::Parameters(answer).encode(), false)
}

/// PC_to_RDR_SetParameters (CCID §6.1.7): bProtocolNum must be one the card offers.
fn set_parameters(s: &mut Slot, m: PcToRdrSetParameters) -> (Vec<u8>, bool) {
    let (slot, seq) = (m.slot, m.seq);
    let fail = |s: &Slot, e| {
        let answer = RdrToPcParameters {
            slot,
            seq,
            state: SlotState::failed(s.icc(), e),
            parameters: ProtocolParameters::Other {
                protocol_num: m.parameters.protocol_num(),
                data: Vec::new(),
            },
        };
        (RdrToPc::Parameters(answer).encode(), false)
    };
    let t = match &m.parameters {
        ProtocolParameters::T0(_) => 0,
        ProtocolParameters::T1(_) => 1,
        // bError 7: the offset of bProtocolNum; 1: dwLength does not fit it.
        ProtocolParameters::Other { protocol_num, .. } if *protocol_num > 1 => {
            return fail(s, SlotError::BadParameter(7))
        }
        ProtocolParameters::Other { .. } => return fail(s, SlotError::BadParameter(1)),
    };
    let Some(card) = s.card.as_mut() else {
        return fail(s, SlotError::IccMute);
    };
    if !card.offers(t) {
        return fail(s, SlotError::IccProtocolNotSupported);
    }
    card.select_protocol(t);
    s.parameters = Some(m.parameters.clone());
    parameters_answer(s, slot, seq)
}

/// PC_to_RDR_XfrBlock (CCID §6.1.4) at the reader's exchange level.
fn xfr_block(
    s: &mut Slot,
    level: ExchangeLevel,
    mute: bool,
    payload: usize,
    m: PcToRdrXfrBlock,
) -> (Vec<u8>, bool) {
    let (slot, seq) = (m.slot, m.seq);
    let icc = s.icc();
    let failed = |e| {
        (
            data_block(slot, seq, SlotState::failed(icc, e), 0, Vec::new()),
            false,
        )
    };
    let answer = |data: Vec<u8>, chain: u8, slow: bool| {
        (data_block(slot, seq, SlotState::ok(icc), chain, data), slow)
    };
    let Some(card) = s.card.as_mut() else {
        return failed(SlotError::IccMute);
    };
    if !s.powered || mute {
        return failed(SlotError::IccMute);
    }
    match level {
        ExchangeLevel::ShortApdu => {
            if m.level_parameter != 0 {
                return failed(SlotError::BadParameter(8));
            }
            let (rsp, slow) = card.apdu(&m.data);
            if rsp.len() > payload {
                return failed(SlotError::XfrOverrun);
            }
            answer(rsp, 0, slow)
        }
        ExchangeLevel::ExtendedApdu => {
            let command = match m.chain() {
                Some(Chain::Whole) => m.data,
                Some(Chain::Begins) => {
                    s.chain_in = m.data;
                    return answer(Vec::new(), Chain::Continue.into(), false);
                }
                Some(Chain::Continues) if !s.chain_in.is_empty() => {
                    s.chain_in.extend_from_slice(&m.data);
                    return answer(Vec::new(), Chain::Continue.into(), false);
                }
                Some(Chain::Ends) if !s.chain_in.is_empty() => {
                    let mut all = std::mem::take(&mut s.chain_in);
                    all.extend_from_slice(&m.data);
                    all
                }
                Some(Chain::Continue) => match s.chain_out.pop_front() {
                    Some((chain, part)) => return answer(part, chain, false),
                    None => return failed(SlotError::BadParameter(8)),
                },
                _ => return failed(SlotError::BadParameter(8)),
            };
            s.chain_out.clear();
            let (rsp, slow) = card.apdu(&command);
            if rsp.len() <= payload {
                return answer(rsp, 0, slow);
            }
            // CCID §6.2.1: bChainParameter 1 begins, 3 continues, 2 ends.
            s.chain_out = Chain::split(&rsp, payload)
                .into_iter()
                .map(|(chain, part)| (chain.into(), part.to_vec()))
                .collect();
            let (chain, first) = s.chain_out.pop_front().unwrap_or_default();
            answer(first, chain, slow)
        }
        // TPDU level; a character-level profile is served the same way.
        _ => {
            let pps_allowed = std::mem::take(&mut card.pps_allowed);
            if pps_allowed && m.data.first() == Some(&pps::PPSS) {
                // ISO/IEC 7816-3 §9: the card accepts a PPS for a protocol it offers by
                // echoing it, and ignores any other (the reader then reports it mute).
                return match PpsRequest::decode(&m.data) {
                    Ok(request) if card.offers(request.protocol) => {
                        card.select_protocol(request.protocol);
                        answer(m.data, 0, false)
                    }
                    _ => failed(SlotError::IccMute),
                };
            }
            if card.protocol == 1 {
                match card.t1(&m.data) {
                    Some(block) => answer(block, 0, false),
                    None => failed(SlotError::IccMute),
                }
            } else {
                let (rsp, slow) = card.t0(&m.data);
                if rsp.len() > payload {
                    return failed(SlotError::XfrOverrun);
                }
                answer(rsp, 0, slow)
            }
        }
    }
}

/// PC_to_RDR_Secure, PIN verification (CCID §6.1.11.4): the scripted PIN is formatted into
/// abPINApdu per bmFormatString, bmPINBlockString and bmPINLengthFormat, and the APDU goes
/// to the card as the reader's exchange level sends it: whole at the APDU levels, as a T=0
/// TPDU, or at TPDU level with T=1 as one I-block built from bTeoPrologue (NAD and PCB
/// from the host, LEN and EDC for the completed APDU), whose answer is the card's block.
///
/// abData layout: [0] bPINOperation (0 verify), [1] bTimeOut, [2] bmFormatString
/// (b7 units: 1 bytes, 0 bits; b6..b3 PIN position; b2 right-justify; b1..b0 type:
/// 0 binary, 1 BCD, 2 ASCII), [3] bmPINBlockString (b7..b4 length field size in bits,
/// b3..b0 PIN block size in bytes), [4] bmPINLengthFormat (b4 units; b3..b0 position of the
/// length field), [5..7] wPINMaxExtraDigit, [7] bEntryValidationCondition,
/// [8] bNumberMessage, [9..11] wLangId, [11] bMsgIndex, [12..15] bTeoPrologue,
/// [15..] abPINApdu.
fn secure(
    s: &mut Slot,
    level: ExchangeLevel,
    pin_verify: bool,
    entry: &PinEntry,
    mute: bool,
    m: PcToRdrSecure,
) -> (Vec<u8>, bool) {
    let (slot, seq) = (m.slot, m.seq);
    let icc = s.icc();
    let failed = |e| {
        (
            data_block(slot, seq, SlotState::failed(icc, e), 0, Vec::new()),
            false,
        )
    };
    if !pin_verify {
        return failed(SlotError::CommandNotSupported);
    }
    let Some(card) = s.card.as_mut() else {
        return failed(SlotError::IccMute);
    };
    if !s.powered || mute {
        return failed(SlotError::IccMute);
    }
    // bError 10: the offset of abData (the bPINOperation or its structure is bad).
    let (
        Some(0),
        Some(&format),
        Some(&block),
        Some(&length_format),
        Some(&[nad, pcb, len]),
        Some(template),
    ) = (
        m.data.first().copied(),
        m.data.get(2),
        m.data.get(3),
        m.data.get(4),
        m.data.get(12..15),
        m.data.get(15..),
    )
    else {
        return failed(SlotError::BadParameter(10));
    };
    let digits = match entry {
        PinEntry::Timeout => return failed(SlotError::PinTimeout),
        PinEntry::Cancel => return failed(SlotError::PinCancelled),
        PinEntry::Digits(d) => d.clone(),
    };
    let Some(apdu) = format_pin(template, &digits, format, block, length_format) else {
        return failed(SlotError::BadParameter(10));
    };
    let (rsp, slow) = match (level, card.protocol) {
        (ExchangeLevel::Tpdu, 1) => match card.reader_block([nad, pcb, len], &apdu) {
            Some(rsp) => (rsp, false),
            None => return failed(SlotError::IccMute),
        },
        (ExchangeLevel::Tpdu, _) => card.t0(&apdu),
        _ => card.apdu(&apdu),
    };
    (data_block(slot, seq, SlotState::ok(icc), 0, rsp), slow)
}

/// Writes `digits` into the APDU template (see [`secure`]); `None` when it does not fit.
fn format_pin(
    template: &[u8],
    digits: &str,
    format: u8,
    block: u8,
    length_format: u8,
) -> Option<Vec<u8>> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) || template.len() < 4 {
        return None;
    }
    let values: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    let encoded: Vec<u8> = match format & 0x03 {
        0 => values.clone(),
        1 => values
            .chunks(2)
            .map(|p| p.first().copied().unwrap_or(0xF) << 4 | p.get(1).copied().unwrap_or(0xF))
            .collect(),
        2 => digits.as_bytes().to_vec(),
        _ => return None,
    };
    let mut apdu = template.to_vec();
    if apdu.len() == 4 {
        // No PIN block in the template: a case 3 APDU carrying the PIN alone.
        apdu.push(u8::try_from(encoded.len()).ok()?);
        apdu.extend_from_slice(&encoded);
        return Some(apdu);
    }
    let data_start = 5;
    let units = (format >> 3) & 0x0F;
    let position = if format & 0x80 != 0 { units } else { units / 8 };
    let start = data_start + usize::from(position);
    let block_size = usize::from(block & 0x0F);
    let offset = if format & 0x04 != 0 {
        block_size.checked_sub(encoded.len())?
    } else {
        0
    };
    let target = apdu.get_mut(start + offset..start + offset + encoded.len())?;
    target.copy_from_slice(&encoded);
    let length_bits = u32::from(block >> 4);
    if length_bits > 0 {
        let at = u32::from(length_format & 0x0F) * if length_format & 0x10 != 0 { 8 } else { 1 };
        let byte = data_start + usize::try_from(at / 8).ok()?;
        let shift = 8u32.checked_sub(at % 8 + length_bits)?;
        let count = u8::try_from(values.len()).ok()?;
        let slot = apdu.get_mut(byte)?;
        let mask = u8::try_from(((1u32 << length_bits) - 1) << shift).ok()?;
        *slot = (*slot & !mask) | ((count << shift) & mask);
    }
    Some(apdu)
}

#[cfg(test)]
mod tests;
