//! `-p`: the PIN verified on the card, locally, before any server sees the session: the
//! library's check ([`card_relay::pin`], the page's `pinRequired`, with the same messages)
//! with the terminal as the user's side. The PIN goes to the card only, never into a
//! request or the trace; on a reader with a PIN pad it is typed on the reader and never
//! reaches this program.

use std::convert::Infallible;

use card_relay::channel::{CardChannel, SlotState};
use card_relay::driver::sync::Abort;
use card_relay::driver::{DriverError, DriverEvent};
use card_relay::pin::{Pin, PinCheck, PinError};
use card_relay::reader::{Command, PinVerify};

use crate::CliError;

/// The PIN reference `-p` verifies (the SmartCard-HSM's user PIN, as the OCF client's).
pub const REFERENCE: u8 = card_relay::pin::DEFAULT_REFERENCE;

/// The terminal's side of the check: the PIN given with `-p <pin>`, else asked with
/// `ask(tries_left)` (`None` cancels); `on_pad` tells the user to use the keypad.
pub struct Terminal<'a> {
    /// The PIN given with `-p <pin>`.
    pub given: Option<String>,
    /// Asks the user.
    pub ask: Box<dyn FnMut(Option<u8>) -> Option<String> + 'a>,
    /// Says that the reader waits for the PIN.
    pub on_pad: Box<dyn FnMut() + 'a>,
}

impl card_relay::pin::PinEntry for Terminal<'_> {
    type Error = Infallible;

    fn on_pad(&mut self, _tries_left: Option<u8>) -> Result<(), Infallible> {
        (self.on_pad)();
        Ok(())
    }

    fn can_ask(&self) -> bool {
        true
    }

    async fn ask(&mut self, tries_left: Option<u8>) -> Result<Option<Pin>, Infallible> {
        let pin = self.given.take().or_else(|| (self.ask)(tries_left));
        Ok(pin.map(Pin::from))
    }
}

/// A channel whose PIN pad is `pad` (PC/SC: FEATURE_VERIFY_PIN_DIRECT through
/// `SCardControl`, which the PC/SC channel leaves to its caller); everything else is the
/// channel's own.
pub struct WithPad<'a, C: ?Sized, F> {
    /// The card.
    pub channel: &'a C,
    /// Runs the pad's verification and answers the card's response.
    pub pad: F,
}

impl<C, F> CardChannel for WithPad<'_, C, F>
where
    C: CardChannel + ?Sized,
    F: AsyncFn(PinVerify) -> Result<Vec<u8>, DriverError>,
{
    fn reader_name(&self) -> String {
        self.channel.reader_name()
    }

    fn atr(&self, slot: u8) -> Option<Vec<u8>> {
        self.channel.atr(slot)
    }

    async fn power_on(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        self.channel.power_on(slot, abort).await
    }

    async fn reset(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        self.channel.reset(slot, abort).await
    }

    async fn transmit(
        &self,
        slot: u8,
        command: Command,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        self.channel.transmit(slot, command, abort).await
    }

    async fn status(&self, slot: u8) -> Result<SlotState, DriverError> {
        self.channel.status(slot).await
    }

    async fn power_off(&self, slot: u8) -> Result<(), DriverError> {
        self.channel.power_off(slot).await
    }

    /// The pad the caller found (FEATURE_VERIFY_PIN_DIRECT).
    fn has_pin_pad(&self) -> bool {
        true
    }

    async fn verify_pin_on_pad(
        &self,
        _slot: u8,
        pin: &PinVerify,
        _abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        (self.pad)(*pin).await
    }

    fn set_event_sink(&self, sink: Box<dyn Fn(DriverEvent)>) {
        self.channel.set_event_sink(sink);
    }
}

/// Runs `check` on slot 0 of `channel` with the terminal as the user's side.
pub async fn verify<C>(
    channel: &C,
    check: &PinCheck,
    terminal: &mut Terminal<'_>,
    abort: Option<&Abort>,
) -> Result<(), CliError>
where
    C: CardChannel + ?Sized,
{
    card_relay::pin::verify(channel, 0, check, terminal, abort)
        .await
        .map_err(|e| match e {
            PinError::Driver(d) => CliError::from(d),
            other => {
                CliError::new(other.code().as_str(), other.to_string()).with_hint(other.hint())
            }
        })
}
