//! `-p`: the PIN verified on the card, locally, before any server sees the session (the
//! library's `pinRequired`, with the same messages). The PIN goes to the card only, never
//! into a request or the trace; on a reader with a PIN pad it is typed on the reader and
//! never reaches this program.

use card_relay::channel::CardChannel;
use card_relay::driver::sync::Abort;
use card_relay::driver::{DriverError, ErrorCode};
use card_relay::proto::apdu::CommandApdu;
use card_relay::reader::{Command, PinVerify};

use crate::CliError;

/// The PIN reference `-p` verifies (the SmartCard-HSM's user PIN, as the OCF client's).
pub const REFERENCE: u8 = 0x81;

fn sw(response: &[u8]) -> Option<u16> {
    match response {
        [.., a, b] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

fn failed(message: impl Into<String>) -> CliError {
    CliError::new(ErrorCode::PinFailed.as_str(), message)
}

/// Where the PIN comes from.
pub enum PinEntry<F> {
    /// Typed on the reader's PIN pad: `F` runs the pad's verification and answers the card's
    /// response.
    Pad(F),
    /// Given on the command line, or asked for with `ask(tries_left)`.
    Host {
        /// The PIN given with `-p <pin>`.
        given: Option<String>,
        /// Asks the user; `None` cancels.
        ask: Box<dyn FnOnce(Option<u8>) -> Option<String>>,
    },
}

/// SELECTs the PIN's application `aid` (ISO/IEC 7816-4 §11.2.2: by DF name, no response
/// data) before its PIN is verified: the library's `pinSelect`, with its message.
pub async fn select<C>(channel: &C, aid: &[u8], abort: Option<&Abort>) -> Result<(), CliError>
where
    C: CardChannel + ?Sized,
{
    // Short Lc (7816-4 §5.1): an AID has at most 16 bytes (§8.2.1.2), this only keeps
    // the command short.
    if u8::try_from(aid.len()).is_err() {
        return Err(CliError::new(
            ErrorCode::InvalidArgument.as_str(),
            "the application id is too long",
        ));
    }
    let select = command(CommandApdu::case3(0x00, 0xA4, 0x04, 0x0C, aid))?;
    let response = channel
        .transmit(0, select, abort)
        .await
        .map_err(CliError::from)?;
    match sw(&response) {
        Some(0x9000) => Ok(()),
        _ => Err(failed(format!(
            "the PIN application is not on the card (SW {})",
            card_relay::proto::hex::compact(
                response
                    .get(response.len().saturating_sub(2)..)
                    .unwrap_or_default()
            )
        ))),
    }
}

/// Verifies the PIN `reference` on the card of `channel` (ISO/IEC 7816-4 §11.5.6): VERIFY
/// without data first (`90 00` already verified, `63 Cx` x tries left, `69 83` blocked),
/// then with the PIN. `on_pad` is called when the reader starts waiting for the PIN.
pub async fn verify<C, F>(
    channel: &C,
    reference: u8,
    entry: PinEntry<F>,
    on_pad: impl FnOnce(),
    abort: Option<&Abort>,
) -> Result<(), CliError>
where
    C: CardChannel + ?Sized,
    F: AsyncFnOnce(PinVerify) -> Result<Vec<u8>, DriverError>,
{
    let state = channel
        .transmit(
            0,
            command(CommandApdu::new(0x00, 0x20, 0x00, reference))?,
            abort,
        )
        .await
        .map_err(CliError::from)?;
    let tries = match sw(&state) {
        Some(0x9000) => return Ok(()),
        Some(0x6983) => {
            return Err(
                failed("the PIN is blocked").with_hint("Unblock the PIN with the card's issuer.")
            )
        }
        Some(s) if s & 0xFFF0 == 0x63C0 => u8::try_from(s & 0x0F).ok(),
        _ => None,
    };
    let response = match entry {
        PinEntry::Pad(verify_on_pad) => {
            on_pad();
            let pin = PinVerify {
                reference,
                ..PinVerify::default()
            };
            verify_on_pad(pin).await.map_err(CliError::from)?
        }
        PinEntry::Host { given, ask } => {
            let pin = match given {
                Some(pin) => Some(pin),
                None => ask(tries),
            };
            let Some(pin) = pin.filter(|p| !p.is_empty()) else {
                return Err(CliError::new(
                    ErrorCode::Aborted.as_str(),
                    "PIN entry was cancelled",
                ));
            };
            let digits = pin.into_bytes();
            if u8::try_from(digits.len()).is_err() {
                return Err(failed("the PIN is too long"));
            }
            let verify = command(CommandApdu::case3(0x00, 0x20, 0x00, reference, digits))?;
            channel
                .transmit(0, verify, abort)
                .await
                .map_err(CliError::from)?
        }
    };
    match sw(&response) {
        Some(0x9000) => Ok(()),
        Some(s) if s & 0xFFF0 == 0x63C0 => {
            Err(failed(format!("wrong PIN, {} tries left", s & 0x0F)))
        }
        Some(0x6983) => Err(failed("the PIN is blocked")),
        Some(s) => Err(failed(format!("the card refused the PIN (SW {s:04x})"))),
        None => Err(failed("the card gave no status word")),
    }
}

/// A command the agent builds itself, as the channel takes it.
fn command(apdu: CommandApdu) -> Result<Command, CliError> {
    Command::try_from(apdu)
        .map_err(|e| CliError::new(ErrorCode::InvalidArgument.as_str(), e.to_string()))
}
