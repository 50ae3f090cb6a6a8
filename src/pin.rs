//! The local PIN check before a card update: the PIN goes to the card only, never into a
//! request, a trace line or a log.
//!
//! One implementation for every route, generic over [`CardChannel`]: SELECT of the PIN's
//! application (optional), VERIFY without data to learn the PIN's state, the PIN typed on
//! the reader's PIN pad ([`CardChannel::verify_pin_on_pad`]) or asked of the user through a
//! [`PinEntry`], then VERIFY with it (ISO/IEC 7816-4 §11.5.6), and the status word decoded
//! (7816-4 §5.6, table 6):
//!
//! | SW | meaning | to VERIFY without data | to VERIFY with the PIN |
//! |---|---|---|---|
//! | `90 00` | verified (already, or by this PIN) | `Ok(())`, nobody is asked | `Ok(())` |
//! | `63 Cx` | not verified, `x` tries left | the PIN is asked (`x` shown) | [`PinError::Wrong`] |
//! | `69 83` | authentication method blocked | [`PinError::Blocked`] | [`PinError::Blocked`] |
//! | other | | the PIN is asked (tries unknown) | [`PinError::Refused`] |
//!
//! A reader that announces a PIN pad but refuses to use it (`unsupported-reader`) falls back
//! to the user's entry when there is one. [`PinFlow`] is the check as a state machine (no
//! I/O); [`verify`] drives it over a channel.

use crate::channel::CardChannel;
use crate::driver::sync::Abort;
use crate::driver::{DriverError, ErrorCode};
use crate::proto::apdu::StatusWord;
use crate::reader::{Command, PinVerify, ReaderError};

/// The SmartCard-HSM's user PIN, the reference VERIFY uses unless told otherwise (P2).
pub const DEFAULT_REFERENCE: u8 = 0x81;

/// What to verify and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinCheck {
    /// P2 of VERIFY: the PIN reference.
    pub reference: u8,
    /// The AID of the PIN's application, SELECTed first (by DF name, no response data:
    /// `00 A4 04 0C`, 7816-4 §11.2.2).
    pub select: Option<Vec<u8>>,
    /// Typed on the reader's PIN pad with these parameters (their `reference` is replaced
    /// by [`PinCheck::reference`]) when the reader has one; `None`: the PIN is asked of the
    /// user.
    pub pad: Option<PinVerify>,
}

impl PinCheck {
    /// The PIN `reference`, asked of the user, no SELECT.
    pub fn new(reference: u8) -> Self {
        PinCheck {
            reference,
            select: None,
            pad: None,
        }
    }
}

/// The PIN as the user gave it (UTF-8 digits), wiped when dropped.
#[derive(Default)]
pub struct Pin(Vec<u8>);

impl Pin {
    /// The bytes VERIFY carries.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<String> for Pin {
    fn from(pin: String) -> Self {
        Pin(pin.into_bytes())
    }
}

impl From<Vec<u8>> for Pin {
    fn from(pin: Vec<u8>) -> Self {
        Pin(pin)
    }
}

/// Never shows the PIN (STYLE habit 11).
impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(******)")
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites `bytes` with zeros; `black_box` keeps the writes from being dropped as dead.
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// The user's side of a PIN check: the page's `pin()` and `onPinPad()`, the agent's
/// terminal.
#[allow(async_fn_in_trait)]
pub trait PinEntry {
    /// Why asking failed (a JavaScript exception of the page's callback).
    type Error;

    /// The reader now waits for the PIN on its pad.
    fn on_pad(&mut self, tries_left: Option<u8>) -> Result<(), Self::Error>;

    /// Whether [`PinEntry::ask`] can ask anyone (the page gave a `pin()` callback).
    fn can_ask(&self) -> bool;

    /// Asks the user for the PIN; `None` (or an empty PIN) means the user cancelled.
    async fn ask(&mut self, tries_left: Option<u8>) -> Result<Option<Pin>, Self::Error>;
}

/// Why a PIN check failed. `E` is the [`PinEntry`]'s own error.
#[derive(Debug, thiserror::Error)]
pub enum PinError<E> {
    /// SELECT of [`PinCheck::select`] did not answer `90 00`.
    #[error("the PIN application is not on the card (SW {:04x})", .0.0)]
    NotSelected(StatusWord),
    /// `69 83`: no tries left.
    #[error("the PIN is blocked")]
    Blocked,
    /// `63 Cx`: the PIN was wrong.
    #[error("wrong PIN, {tries_left} tries left")]
    Wrong {
        /// `x` of `63 Cx`.
        tries_left: u8,
    },
    /// Any other status word after VERIFY with the PIN.
    #[error("the card refused the PIN (SW {:04x})", .0.0)]
    Refused(StatusWord),
    /// A response shorter than SW1 SW2.
    #[error("the card gave no status word")]
    NoStatus,
    /// No PIN pad to use and nobody to ask.
    #[error("a PIN is required but no pin() callback was given")]
    NoEntry,
    /// The user cancelled the entry.
    #[error("PIN entry was cancelled")]
    Cancelled,
    /// The PIN does not fit a short VERIFY (at most 255 bytes).
    #[error("the PIN is too long")]
    PinTooLong,
    /// The AID does not fit a short SELECT (at most 255 bytes; 7816-4 allows 16).
    #[error("the application id is too long")]
    AidTooLong,
    /// The reader announces a PIN pad but refused to use it, and nobody can be asked.
    #[error("{0}")]
    PadUnusable(DriverError),
    /// The card channel failed.
    #[error(transparent)]
    Driver(DriverError),
    /// The [`PinEntry`] failed.
    #[error("pin entry failed")]
    Entry(E),
}

impl<E> PinError<E> {
    /// The stable code (the [`PinError::Entry`] error has its own: `internal` here).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotSelected(_)
            | Self::Blocked
            | Self::Wrong { .. }
            | Self::Refused(_)
            | Self::NoStatus
            | Self::NoEntry => ErrorCode::PinFailed,
            Self::Cancelled => ErrorCode::Aborted,
            Self::PinTooLong | Self::AidTooLong => ErrorCode::InvalidArgument,
            Self::PadUnusable(_) => ErrorCode::UnsupportedReader,
            Self::Driver(e) => e.code(),
            Self::Entry(_) => ErrorCode::Internal,
        }
    }

    /// What the user can do.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Blocked => "Unblock the PIN with the card's issuer.",
            Self::PadUnusable(_) => {
                "Enter the PIN on the computer instead: pass a pin() callback, or use another \
                 reader."
            }
            Self::Driver(e) => e.hint(),
            other => other.code().hint(),
        }
    }
}

/// The status word closing `response`.
fn status(response: &[u8]) -> Option<StatusWord> {
    match response {
        [.., sw1, sw2] => Some(StatusWord(u16::from_be_bytes([*sw1, *sw2]))),
        _ => None,
    }
}

/// `x` of `63 Cx` (7816-4 §5.6, table 6: counter, usually the tries left).
fn tries_left(sw: StatusWord) -> Option<u8> {
    (sw.sw1() == 0x63 && sw.sw2() & 0xF0 == 0xC0).then_some(sw.sw2() & 0x0F)
}

/// What the check needs next, from [`PinFlow`].
#[derive(PartialEq, Eq)]
pub enum PinStep {
    /// Send this command APDU and hand its response to [`PinFlow::on_response`].
    Send(Vec<u8>),
    /// Verify on the reader's PIN pad and hand the card's response to
    /// [`PinFlow::on_response`]; a pad the reader refuses goes on with
    /// [`PinStep::Ask`].
    Pad {
        /// The pad's parameters, with the check's reference.
        pin: PinVerify,
        /// `x` of the `63 Cx` the card reported, if it did.
        tries_left: Option<u8>,
    },
    /// Ask the user and hand the PIN to [`PinFlow::with_pin`].
    Ask {
        /// `x` of the `63 Cx` the card reported, if it did.
        tries_left: Option<u8>,
    },
    /// The card accepted the PIN (or had it verified already).
    Done,
}

/// A command to send shows its header only: the last VERIFY carries the PIN.
impl std::fmt::Debug for PinStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinStep::Send(apdu) => {
                let header = apdu.get(..4).unwrap_or(apdu);
                write!(
                    f,
                    "Send({header:02X?} + {} bytes)",
                    apdu.len() - header.len()
                )
            }
            PinStep::Pad { pin, tries_left } => f
                .debug_struct("Pad")
                .field("pin", pin)
                .field("tries_left", tries_left)
                .finish(),
            PinStep::Ask { tries_left } => f
                .debug_struct("Ask")
                .field("tries_left", tries_left)
                .finish(),
            PinStep::Done => f.write_str("Done"),
        }
    }
}

/// Where a [`PinFlow`] stands: which answer it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Select,
    State,
    Verify,
}

/// The PIN check as a state machine: no I/O, no clock (STYLE habit 1). Commands go out as
/// [`PinStep`]s, the card's responses and the user's PIN come in; [`verify`] drives it over
/// a [`CardChannel`].
#[derive(Debug)]
pub struct PinFlow {
    reference: u8,
    pad: Option<PinVerify>,
    waiting: Waiting,
}

impl PinFlow {
    /// Starts `check`: SELECT of its application, or VERIFY without data for the PIN's state.
    pub fn start<E>(check: &PinCheck) -> Result<(PinFlow, PinStep), PinError<E>> {
        let mut flow = PinFlow {
            reference: check.reference,
            pad: check.pad.map(|pad| PinVerify {
                reference: check.reference,
                ..pad
            }),
            waiting: Waiting::State,
        };
        let step = match &check.select {
            Some(aid) => {
                let lc = u8::try_from(aid.len()).map_err(|_| PinError::AidTooLong)?;
                let mut select = vec![0x00, 0xA4, 0x04, 0x0C, lc];
                select.extend_from_slice(aid);
                flow.waiting = Waiting::Select;
                PinStep::Send(select)
            }
            None => flow.state_query(),
        };
        Ok((flow, step))
    }

    /// VERIFY without data: the PIN's state (7816-4 §11.5.6).
    fn state_query(&mut self) -> PinStep {
        self.waiting = Waiting::State;
        PinStep::Send(vec![0x00, 0x20, 0x00, self.reference])
    }

    /// The card's response to the last [`PinStep::Send`] or [`PinStep::Pad`].
    pub fn on_response<E>(&mut self, response: &[u8]) -> Result<PinStep, PinError<E>> {
        let sw = status(response).ok_or(PinError::NoStatus)?;
        match (self.waiting, sw) {
            (_, StatusWord::SUCCESS) if self.waiting != Waiting::Select => Ok(PinStep::Done),
            (Waiting::Select, StatusWord::SUCCESS) => Ok(self.state_query()),
            (Waiting::Select, sw) => Err(PinError::NotSelected(sw)),
            (_, StatusWord(0x6983)) => Err(PinError::Blocked),
            (Waiting::State, sw) => {
                self.waiting = Waiting::Verify;
                let tries_left = tries_left(sw);
                Ok(match self.pad {
                    Some(pin) => PinStep::Pad { pin, tries_left },
                    None => PinStep::Ask { tries_left },
                })
            }
            (Waiting::Verify, sw) => Err(tries_left(sw)
                .map_or(PinError::Refused(sw), |tries_left| PinError::Wrong {
                    tries_left,
                })),
        }
    }

    /// The user's PIN (`None` or empty: cancelled): VERIFY with it. The PIN is wiped when
    /// the command is built; the command goes to the channel by value.
    pub fn with_pin<E>(&self, pin: Option<Pin>) -> Result<PinStep, PinError<E>> {
        let pin = pin
            .filter(|p| !p.bytes().is_empty())
            .ok_or(PinError::Cancelled)?;
        let lc = u8::try_from(pin.bytes().len()).map_err(|_| PinError::PinTooLong)?;
        let mut apdu = vec![0x00, 0x20, 0x00, self.reference, lc];
        apdu.extend_from_slice(pin.bytes());
        Ok(PinStep::Send(apdu))
    }
}

/// Runs `check` on the card in `slot` of `channel` (see the module documentation), powering
/// the card on first when it is not. [`PinCheck::pad`] is used only when the channel reports
/// a PIN pad after the power-on ([`CardChannel::has_pin_pad`]); otherwise the PIN is asked.
/// `Ok(())` once the card answered `90 00`.
pub async fn verify<C, E>(
    channel: &C,
    slot: u8,
    check: &PinCheck,
    entry: &mut E,
    abort: Option<&Abort>,
) -> Result<(), PinError<E::Error>>
where
    C: CardChannel + ?Sized,
    E: PinEntry,
{
    // The one decision "power on first" (`CardChannel::power_on`).
    channel
        .power_on(slot, abort)
        .await
        .map_err(PinError::Driver)?;
    let (mut flow, mut step) = PinFlow::start(check)?;
    // Whether the reader has a PIN pad is known only now on some channels (the Web Smart
    // Card API asks at the first connection): the pad's parameters are a wish, used only
    // where there is a pad.
    if !channel.has_pin_pad() {
        flow.pad = None;
    }
    loop {
        let response = match step {
            PinStep::Done => return Ok(()),
            // The command enters the channel layer here: parsed once.
            PinStep::Send(apdu) => match Command::parse(apdu) {
                Ok(command) => channel.transmit(slot, command, abort).await,
                Err(e) => Err(DriverError::Reader(ReaderError::Apdu(e))),
            },
            PinStep::Pad { pin, tries_left } => {
                entry.on_pad(tries_left).map_err(PinError::Entry)?;
                match channel.verify_pin_on_pad(slot, &pin, abort).await {
                    // The reader announces a PIN pad but refused to use it: the user types
                    // the PIN on the computer when someone can ask for it.
                    Err(e) if e.code() == ErrorCode::UnsupportedReader => {
                        if !entry.can_ask() {
                            return Err(PinError::PadUnusable(e));
                        }
                        step = PinStep::Ask { tries_left };
                        continue;
                    }
                    other => other,
                }
            }
            PinStep::Ask { tries_left } => {
                if !entry.can_ask() {
                    return Err(PinError::NoEntry);
                }
                let pin = entry.ask(tries_left).await.map_err(PinError::Entry)?;
                step = flow.with_pin(pin)?;
                continue;
            }
        };
        step = flow.on_response(&response.map_err(PinError::Driver)?)?;
    }
}
