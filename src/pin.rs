//! The local PIN check before a card update: the PIN goes to the card only, never into a
//! request, a trace line or a log.
//!
//! One implementation for every route, generic over [`CardChannel`]: SELECT of the PIN's
//! application (optional), VERIFY without data to learn the PIN's state, the PIN typed on
//! the reader's PIN pad ([`CardChannel::verify_pin_on_pad`]) or asked of the user through a
//! [`PinEntry`], then VERIFY with it (ISO/IEC 7816-4 §11.5.6), and the status word decoded
//! (7816-4 §5.6, table 6):
//!
//! | SW | meaning | outcome |
//! |---|---|---|
//! | `90 00` | verified (already, or by this PIN) | `Ok(())` |
//! | `63 Cx` | not verified, `x` tries left | asks the PIN / [`PinError::Wrong`] |
//! | `69 83` | authentication method blocked | [`PinError::Blocked`] |
//! | other | | [`PinError::Refused`] |
//!
//! A reader that announces a PIN pad but refuses to use it (`unsupported-reader`) falls back
//! to the user's entry when there is one.

use crate::channel::CardChannel;
use crate::driver::sync::Abort;
use crate::driver::{DriverError, ErrorCode};
use crate::proto::apdu::StatusWord;
use crate::reader::PinVerify;

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
    /// by [`PinCheck::reference`]); `None`: the PIN is asked of the user.
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

/// VERIFY `00 20 00 <reference>` with `data` (none: ask the PIN's state, 7816-4 §11.5.6).
fn verify_apdu(reference: u8, data: &[u8]) -> Option<Vec<u8>> {
    let mut apdu = vec![0x00, 0x20, 0x00, reference];
    if !data.is_empty() {
        apdu.push(u8::try_from(data.len()).ok()?);
        apdu.extend_from_slice(data);
    }
    Some(apdu)
}

/// Runs `check` on the card in `slot` of `channel` (see the module documentation), powering
/// the card on first when it is not. `Ok(())` once the card answered `90 00`.
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
    if channel.atr(slot).is_none() {
        channel
            .power_on(slot, abort)
            .await
            .map_err(PinError::Driver)?;
    }
    let transmit = async |apdu: Vec<u8>| {
        channel
            .transmit(slot, apdu, abort)
            .await
            .map_err(PinError::Driver)
    };
    if let Some(aid) = &check.select {
        let lc = u8::try_from(aid.len()).map_err(|_| PinError::AidTooLong)?;
        let mut select = vec![0x00, 0xA4, 0x04, 0x0C, lc];
        select.extend_from_slice(aid);
        match status(&transmit(select).await?) {
            Some(StatusWord::SUCCESS) => {}
            Some(sw) => return Err(PinError::NotSelected(sw)),
            None => return Err(PinError::NoStatus),
        }
    }
    let state = transmit(vec![0x00, 0x20, 0x00, check.reference]).await?;
    let tries = match status(&state) {
        Some(StatusWord::SUCCESS) => return Ok(()),
        Some(StatusWord(0x6983)) => return Err(PinError::Blocked),
        Some(sw) => tries_left(sw),
        None => None,
    };
    let mut response = None;
    if let Some(pad) = &check.pad {
        let pad = PinVerify {
            reference: check.reference,
            ..*pad
        };
        entry.on_pad(tries).map_err(PinError::Entry)?;
        match channel.verify_pin_on_pad(slot, &pad, abort).await {
            Ok(r) => response = Some(r),
            // The reader announces a PIN pad but refused to use it: the user types the PIN
            // on the computer when someone can ask for it.
            Err(e) if e.code() == ErrorCode::UnsupportedReader => {
                if !entry.can_ask() {
                    return Err(PinError::PadUnusable(e));
                }
            }
            Err(e) => return Err(PinError::Driver(e)),
        }
    }
    let response = match response {
        Some(r) => r,
        None => {
            if !entry.can_ask() {
                return Err(PinError::NoEntry);
            }
            let pin = entry.ask(tries).await.map_err(PinError::Entry)?;
            let Some(pin) = pin.filter(|p| !p.bytes().is_empty()) else {
                return Err(PinError::Cancelled);
            };
            let apdu = verify_apdu(check.reference, pin.bytes()).ok_or(PinError::PinTooLong)?;
            drop(pin);
            // The channel takes the command by value; what it copies on the way (CCID
            // messages, T=1 blocks) is its own.
            transmit(apdu).await?
        }
    };
    match status(&response) {
        Some(StatusWord::SUCCESS) => Ok(()),
        Some(StatusWord(0x6983)) => Err(PinError::Blocked),
        Some(sw) => {
            Err(
                tries_left(sw).map_or(PinError::Refused(sw), |tries_left| PinError::Wrong {
                    tries_left,
                }),
            )
        }
        None => Err(PinError::NoStatus),
    }
}
