//! Typed reader operations and the reader's completion channel.
//!
//! Each operation is a type ([`PowerOn`], [`PowerOff`], [`Status`], [`Transmit`],
//! [`VerifyPin`]) that names the type of its result ([`Operation::Output`]).
//! [`Reader::start`] answers a [`Ticket`] of that type, and the result is taken with
//! [`Reader::poll_completion`]: completions never travel with card events
//! ([`Reader::poll_event`]), and a caller never narrows a result it cannot receive.

use std::marker::PhantomData;

use super::{Millis, PinVerify, Reader, ReaderError, CONTROL_TIMEOUT_MS, POWER_ON_TIMEOUT_MS};
use crate::proto::apdu::{ApduError, CommandApdu};
use crate::proto::ccid::IccStatus;

/// A command APDU parsed once where it enters the library (ISO/IEC 7816-4 §5.1), with the
/// bytes it came as. Every layer below reads the parsed form; the bytes go to the card as
/// given (at the extended APDU level, over T=1 and through PC/SC), never re-encoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    apdu: CommandApdu,
    bytes: Vec<u8>,
}

/// The parsed header and lengths only ([`CommandApdu`]'s `Debug`): the bytes may hold a PIN.
impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.apdu, f)
    }
}

impl Command {
    /// Parses `bytes` by the length rules of 7816-4 §5.1.
    pub fn parse(bytes: Vec<u8>) -> Result<Command, ApduError> {
        let apdu = CommandApdu::parse(&bytes)?;
        Ok(Command { apdu, bytes })
    }

    /// The parsed command.
    pub fn apdu(&self) -> &CommandApdu {
        &self.apdu
    }

    /// The command's bytes, as given.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The command's bytes, as given.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl TryFrom<CommandApdu> for Command {
    type Error = ApduError;

    /// Encodes a built command (short when its lengths allow, 7816-4 §5.1).
    fn try_from(apdu: CommandApdu) -> Result<Command, ApduError> {
        let bytes = apdu.encode()?;
        Ok(Command { apdu, bytes })
    }
}

/// What a power-on produced: the card is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoweredOn {
    /// The answer to reset as the reader returned it.
    pub atr: Vec<u8>,
    /// T=0 or T=1.
    pub protocol: u8,
}

/// Activate the card, read its ATR, set the protocol parameters and (T=1 at TPDU level)
/// negotiate IFSD (CCID §6.1.1, ISO/IEC 7816-3 §6, §9). On an active card it is a warm
/// reset. `protocol` names a preferred protocol, used when the card offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(alias = "PC_to_RDR_IccPowerOn")]
pub struct PowerOn {
    /// Slot number.
    pub slot: u8,
    /// Preferred protocol (0 or 1), if any.
    pub protocol: Option<u8>,
}

/// Deactivate the card (CCID §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(alias = "PC_to_RDR_IccPowerOff")]
pub struct PowerOff {
    /// Slot number.
    pub slot: u8,
}

/// Ask whether a card is present and active (CCID §6.1.3); completes with bmICCStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(alias = "PC_to_RDR_GetSlotStatus")]
pub struct Status {
    /// Slot number.
    pub slot: u8,
}

/// Send one command APDU and complete with the whole response APDU `data || SW1 SW2`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(alias = "PC_to_RDR_XfrBlock")]
pub struct Transmit {
    /// Slot number.
    pub slot: u8,
    /// The command APDU (short or extended).
    pub command: Command,
}

/// Verify the PIN on the reader's PIN pad (PC_to_RDR_Secure, PIN verification, CCID
/// §6.1.11): the reader collects the PIN and sends the VERIFY command to the card itself,
/// so the PIN never reaches the host. Completes with the card's response APDU (`90 00`, or
/// `63 Cx` for a wrong PIN with x tries left, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(alias = "PC_to_RDR_Secure")]
pub struct VerifyPin {
    /// Slot number.
    pub slot: u8,
    /// How the PIN is collected and formatted.
    pub pin: PinVerify,
}

mod sealed {
    pub trait Sealed {}
}

/// The kind of result an operation completes with: where the completion channel keeps it
/// (not nameable outside the reader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`PoweredOn`].
    PoweredOn,
    /// `()`, after a power off.
    PoweredOff,
    /// bmICCStatus.
    Status,
    /// A response APDU.
    Response,
}

/// The completion channel: the result of the last operation, by its type. Cleared when an
/// operation starts; at most one field is set.
#[derive(Debug, Default)]
pub struct Completions {
    powered_on: Option<Result<PoweredOn, ReaderError>>,
    powered_off: Option<Result<(), ReaderError>>,
    status: Option<Result<IccStatus, ReaderError>>,
    response: Option<Result<Vec<u8>, ReaderError>>,
}

impl Completions {
    /// Delivers a failure to the channel of `kind`.
    pub(super) fn fail(&mut self, kind: Kind, error: ReaderError) {
        match kind {
            Kind::PoweredOn => self.powered_on = Some(Err(error)),
            Kind::PoweredOff => self.powered_off = Some(Err(error)),
            Kind::Status => self.status = Some(Err(error)),
            Kind::Response => self.response = Some(Err(error)),
        }
    }
}

/// A result type of an operation.
pub trait Outcome: sealed::Sealed + Sized {
    #[doc(hidden)]
    const KIND: Kind;
    #[doc(hidden)]
    fn channel(completions: &mut Completions) -> &mut Option<Result<Self, ReaderError>>;
}

macro_rules! outcome {
    ($ty:ty, $kind:ident, $field:ident) => {
        impl sealed::Sealed for $ty {}
        impl Outcome for $ty {
            const KIND: Kind = Kind::$kind;
            fn channel(c: &mut Completions) -> &mut Option<Result<Self, ReaderError>> {
                &mut c.$field
            }
        }
    };
}

outcome!(PoweredOn, PoweredOn, powered_on);
outcome!((), PoweredOff, powered_off);
outcome!(IccStatus, Status, status);
outcome!(Vec<u8>, Response, response);

/// Proof that an operation with a result of type `T` was started: the key to its result
/// in [`Reader::poll_completion`].
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket<T> {
    _result: PhantomData<fn() -> T>,
}

impl<T> Ticket<T> {
    pub(crate) fn new() -> Self {
        Ticket {
            _result: PhantomData,
        }
    }
}

/// One operation on a slot, with the type of its result.
pub trait Operation: Start {
    /// What the operation completes with.
    type Output: Outcome;
}

/// How an operation starts, whatever its result: what the async driver needs, as one
/// non-generic instance for every operation (issue 18: the bundle). Not nameable outside
/// the reader.
pub trait Start: sealed::Sealed {
    /// The slot it runs on.
    fn slot(&self) -> u8;

    /// How long it waits for its first answer: the bound for waiting out an answer the
    /// reader still owes before starting it ([`Reader::owed`]).
    fn first_timeout(&self, reader: &Reader) -> Millis;

    /// Queues its first command.
    fn begin(&self, reader: &mut Reader, now: Millis) -> Result<(), ReaderError>;
}

impl sealed::Sealed for PowerOn {}
impl Operation for PowerOn {
    type Output = PoweredOn;
}

impl Start for PowerOn {
    fn slot(&self) -> u8 {
        self.slot
    }

    fn first_timeout(&self, _: &Reader) -> Millis {
        POWER_ON_TIMEOUT_MS
    }

    fn begin(&self, reader: &mut Reader, now: Millis) -> Result<(), ReaderError> {
        reader.begin_power_on(self.slot, self.protocol, now);
        Ok(())
    }
}

impl sealed::Sealed for PowerOff {}
impl Operation for PowerOff {
    type Output = ();
}

impl Start for PowerOff {
    fn slot(&self) -> u8 {
        self.slot
    }

    fn first_timeout(&self, _: &Reader) -> Millis {
        CONTROL_TIMEOUT_MS
    }

    fn begin(&self, reader: &mut Reader, now: Millis) -> Result<(), ReaderError> {
        reader.begin_power_off(self.slot, now);
        Ok(())
    }
}

impl sealed::Sealed for Status {}
impl Operation for Status {
    type Output = IccStatus;
}

impl Start for Status {
    fn slot(&self) -> u8 {
        self.slot
    }

    fn first_timeout(&self, _: &Reader) -> Millis {
        CONTROL_TIMEOUT_MS
    }

    fn begin(&self, reader: &mut Reader, now: Millis) -> Result<(), ReaderError> {
        reader.begin_status(self.slot, now);
        Ok(())
    }
}

impl sealed::Sealed for Transmit {}
impl Operation for Transmit {
    type Output = Vec<u8>;
}

impl Start for Transmit {
    fn slot(&self) -> u8 {
        self.slot
    }

    fn first_timeout(&self, reader: &Reader) -> Millis {
        reader.exchange_timeout(self.slot)
    }

    fn begin(&self, reader: &mut Reader, now: Millis) -> Result<(), ReaderError> {
        let mode = reader.begin_transmit(self.slot, &self.command, now)?;
        reader.set_transmit(self.slot, mode);
        Ok(())
    }
}

impl sealed::Sealed for VerifyPin {}
impl Operation for VerifyPin {
    type Output = Vec<u8>;
}

impl Start for VerifyPin {
    fn slot(&self) -> u8 {
        self.slot
    }

    fn first_timeout(&self, reader: &Reader) -> Millis {
        Millis::from(self.pin.timeout_s) * 1000 + reader.exchange_timeout(self.slot)
    }

    fn begin(&self, reader: &mut Reader, now: Millis) -> Result<(), ReaderError> {
        let mode = reader.begin_verify_pin(self.slot, &self.pin, now)?;
        reader.set_transmit(self.slot, mode);
        Ok(())
    }
}
