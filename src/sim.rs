//! A simulated CCID reader with a simulated ISO/IEC 7816 card.
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
//!
//! Beside the simulator live the fixtures it shares with the tests: [`profile`] reads
//! libccid's reader dumps (natively from `../shared/ccid-readers` or `$CARD_RELAY_SHARED`),
//! [`t1`] is the card side of T=1. In the browser build all of it is the feature
//! `simulator`; natively it is always built.

pub mod card;
mod ccid;
pub mod contact;
pub mod profile;
pub mod profiles;
pub mod t1;
pub mod transport;
mod usb;
#[cfg(target_arch = "wasm32")]
pub mod web;

use std::collections::VecDeque;

use crate::proto::ccid::{IccStatus, ProtocolParameters, RdrToPcHardwareError, HEADER_LEN};
use crate::proto::descriptor::{
    find_ccid_interfaces, CcidClassDescriptor, CcidInterface, Configuration, ExchangeLevel,
};
use profile::{ProfileError, ReaderProfile};

use card::SimCard;
pub use card::{CardApp, CardConfig, CardError, CardLog};
pub use usb::{InTransfer, UsbFault, ACCESS_DENIED, PROTECTED_CLASS, UNABLE_TO_CLAIM};

// The control-transfer setup is the driver's own type: the simulator answers exactly what
// the driver sends.
pub use crate::driver::usb::{ControlSetup, Recipient, RequestType};

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
    pub fn inject_t1_fault(&mut self, slot: u8, n: usize, fault: t1::Fault) {
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
}

#[cfg(test)]
mod tests;
