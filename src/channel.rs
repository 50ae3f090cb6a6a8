//! The card channel: a card at APDU level, whatever carries the bytes.
//!
//! The card update loop ([`crate::driver::update`]) runs over a [`CardChannel`]: power on or
//! reset (both give the ATR), transmit one command APDU (a [`Command`], parsed once where it
//! entered the library) and get the whole response APDU,
//! the slot's state, and card insert/remove events. The CCID driver implements it (WebUSB in
//! the browser, the simulated reader natively); the `card-relay` agent implements it over
//! PC/SC.
//!
//! Semantics every implementation keeps, so that a server cannot tell the routes apart:
//! - `transmit` takes a command APDU and returns the response APDU `data || SW1 SW2`. On
//!   T=0 the transport layer below returns `61xx` and `6Cxx` to its caller (ISO/IEC 7816-3
//!   §10.3.3, 7816-4 §5.3.4): the channel follows them up itself, by the rules of
//!   [`crate::proto::t0`] — the CCID driver through its reader state machine, a PC/SC
//!   channel through [`transmit_t0`] — so the response is the same on every route.
//! - A card removed during an operation fails it with code `card-absent`.
//! - Reset (`C0` in an OpenSCDP script) re-activates the card and answers its new ATR.

use crate::driver::sync::Abort;
use crate::driver::usb::UsbTransport;
use crate::driver::{CcidDriver, DriverError, DriverEvent, ErrorCode};
use crate::proto::t0::{T0Error, T0Exchange, T0Step};
use crate::reader::{Command, PinVerify};

/// What a slot holds, as [`CardChannel::status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    /// A card is in the slot.
    pub present: bool,
    /// The ATR of the active card, `None` when it is not powered.
    pub atr: Option<Vec<u8>>,
}

/// A card at APDU level (see the module documentation for the rules).
///
/// `slot` numbers the reader's slots; a channel with a single slot (PC/SC: one reader, one
/// card) uses 0. The futures are not `Send`: every executor of this crate runs on one thread
/// (the browser's event loop, a current-thread runtime).
#[allow(async_fn_in_trait)]
pub trait CardChannel {
    /// The reader's display name (the OCF trace derives its slot id from it).
    fn reader_name(&self) -> String;

    /// The ATR of the card in `slot` while it is powered.
    fn atr(&self, slot: u8) -> Option<Vec<u8>>;

    /// Activates the card in `slot` if it is not active yet, and answers its ATR: the one
    /// place that decides whether a card must be powered before it is used (the update
    /// loops, `transmit` and `verifyPin` of the JavaScript API and the agent all call it
    /// instead of looking at [`CardChannel::atr`] themselves). A card that is active keeps
    /// its state (no reset); one that is not is activated with [`CardChannel::reset`].
    async fn power_on(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        match self.atr(slot) {
            Some(atr) => Ok(atr),
            None => self.reset(slot, abort).await,
        }
    }

    /// Resets the card in `slot` and answers its new ATR.
    async fn reset(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError>;

    /// Sends one command APDU and answers the whole response APDU `data || SW1 SW2`. The
    /// command was parsed where it entered the library; a channel reads its parsed form and
    /// sends its bytes, never parses it again.
    async fn transmit(
        &self,
        slot: u8,
        command: Command,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError>;

    /// Whether a card is present and its ATR when powered.
    async fn status(&self, slot: u8) -> Result<SlotState, DriverError>;

    /// Deactivates the card in `slot`.
    async fn power_off(&self, slot: u8) -> Result<(), DriverError>;

    /// Whether the reader has a PIN pad [`CardChannel::verify_pin_on_pad`] can use (CCID
    /// Rev 1.1 §5.1 bPINSupport; PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT). Some channels
    /// learn it only at the first connection to a card: ask after
    /// [`CardChannel::power_on`]. A channel without a PIN pad answers `false` (this default).
    fn has_pin_pad(&self) -> bool {
        false
    }

    /// Verifies a PIN typed on the reader's PIN pad: the reader completes `pin`'s VERIFY
    /// with the digits and sends it, so the PIN never reaches the host (CCID Rev 1.1
    /// §6.1.11 PC_to_RDR_Secure; PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT). Answers the
    /// card's response (SW1 SW2); an entry cancelled on the pad fails with `aborted`, one
    /// that timed out with `timeout`. A channel without a PIN pad fails with
    /// `unsupported-reader` (this default).
    async fn verify_pin_on_pad(
        &self,
        slot: u8,
        pin: &PinVerify,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        let _ = (slot, pin, abort);
        Err(DriverError::Channel {
            code: ErrorCode::UnsupportedReader,
            message: "the reader has no pin pad".into(),
        })
    }

    /// Where insert and remove events ([`DriverEvent::CardInserted`],
    /// [`DriverEvent::CardRemoved`], [`DriverEvent::Disconnected`]) go.
    fn set_event_sink(&self, sink: Box<dyn Fn(DriverEvent)>);
}

impl<U: UsbTransport + 'static> CardChannel for CcidDriver<U> {
    fn reader_name(&self) -> String {
        self.description().name()
    }

    fn atr(&self, slot: u8) -> Option<Vec<u8>> {
        CcidDriver::atr(self, slot)
    }

    async fn reset(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        // PC_to_RDR_IccPowerOn on an active card is a warm reset (CCID §6.1.1).
        Ok(CcidDriver::power_on(self, slot, abort).await?.atr)
    }

    async fn transmit(
        &self,
        slot: u8,
        command: Command,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        CcidDriver::transmit(self, slot, command, abort).await
    }

    async fn status(&self, slot: u8) -> Result<SlotState, DriverError> {
        CcidDriver::status(self, slot).await?;
        Ok(SlotState {
            present: self.card_present(slot).unwrap_or(false),
            atr: CcidDriver::atr(self, slot),
        })
    }

    async fn power_off(&self, slot: u8) -> Result<(), DriverError> {
        CcidDriver::power_off(self, slot).await
    }

    fn has_pin_pad(&self) -> bool {
        self.description().descriptor().pin_verify()
    }

    async fn verify_pin_on_pad(
        &self,
        slot: u8,
        pin: &PinVerify,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        CcidDriver::verify_pin(self, slot, *pin, abort).await
    }

    fn set_event_sink(&self, sink: Box<dyn Fn(DriverEvent)>) {
        CcidDriver::set_event_sink(self, sink);
    }
}

/// A shared channel is the same channel (the browser build keeps its driver in an `Rc`).
impl<C: CardChannel + ?Sized> CardChannel for std::rc::Rc<C> {
    fn reader_name(&self) -> String {
        C::reader_name(self)
    }

    fn atr(&self, slot: u8) -> Option<Vec<u8>> {
        C::atr(self, slot)
    }

    async fn power_on(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        C::power_on(self, slot, abort).await
    }

    async fn reset(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        C::reset(self, slot, abort).await
    }

    async fn transmit(
        &self,
        slot: u8,
        command: Command,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        C::transmit(self, slot, command, abort).await
    }

    async fn status(&self, slot: u8) -> Result<SlotState, DriverError> {
        C::status(self, slot).await
    }

    async fn power_off(&self, slot: u8) -> Result<(), DriverError> {
        C::power_off(self, slot).await
    }

    fn has_pin_pad(&self) -> bool {
        C::has_pin_pad(self)
    }

    async fn verify_pin_on_pad(
        &self,
        slot: u8,
        pin: &PinVerify,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        C::verify_pin_on_pad(self, slot, pin, abort).await
    }

    fn set_event_sink(&self, sink: Box<dyn Fn(DriverEvent)>) {
        C::set_event_sink(self, sink);
    }
}

/// Why [`transmit_t0`] failed: the command cannot go over T=0, or the transport failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum T0TransmitError<E> {
    /// The command needs what T=0 cannot carry (extended lengths), or the card's answers
    /// broke the T=0 rules.
    #[error(transparent)]
    T0(T0Error),
    /// The transport's own error.
    #[error(transparent)]
    Transport(E),
}

/// Starts the T=0 exchange of a command APDU for a transport that hands `61xx` / `6Cxx` back
/// (PC/SC on a T=0 card): GET RESPONSE echoes the command's class (bClassGetResponse FFh,
/// CCID §5.1), as a PC/SC stack does. Every such route drives the exchange it returns, so
/// the follow-up rules live in [`crate::proto::t0`] once.
pub fn start_t0(command: &Command) -> Result<T0Exchange, T0Error> {
    T0Exchange::new(command.apdu(), 0xFF)
}

/// Sends a command APDU over a transport that exchanges T=0 TPDUs and hands `61xx` and
/// `6Cxx` back to its caller (PC/SC's `SCardTransmit` on a T=0 card, PC/SC part 3 and
/// ISO/IEC 7816-3 §12.2), following them up exactly as the CCID path does at TPDU level:
/// the command mapped to a TPDU (case 4 without Le), GET RESPONSE for `61xx`, the TPDU
/// re-sent with P3 = xx for `6Cxx` (see [`crate::proto::t0`]). `send` takes one TPDU and
/// answers the card's `data || SW1 SW2`. GET RESPONSE uses the command's class byte.
pub fn transmit_t0<E>(
    command: &Command,
    mut send: impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, T0TransmitError<E>> {
    let mut exchange = start_t0(command).map_err(T0TransmitError::T0)?;
    let mut tpdu = exchange.first_tpdu();
    loop {
        let answer = send(&tpdu).map_err(T0TransmitError::Transport)?;
        match exchange.on_response(&answer).map_err(T0TransmitError::T0)? {
            T0Step::Send(next) => tpdu = next,
            T0Step::Done(response) => return Ok(response),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::{transmit_t0, T0TransmitError};
    use crate::proto::hex::h as hex;
    use crate::proto::t0::T0Error;
    use crate::reader::Command;

    /// A command APDU, parsed as it is where it enters the library.
    fn cmd(text: &str) -> Command {
        Command::parse(hex(text)).expect("valid apdu")
    }

    type Steps = std::rc::Rc<std::cell::Cell<usize>>;

    /// A scripted T=0 card: each expected TPDU with its answer, in order.
    fn card<'a>(
        script: &'a [(&'a str, &'a str)],
    ) -> (impl FnMut(&[u8]) -> Result<Vec<u8>, ()> + 'a, Steps) {
        let step = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = std::rc::Rc::clone(&step);
        let send = move |tpdu: &[u8]| {
            let i = seen.get();
            let (want, answer) = script.get(i).ok_or(())?;
            assert_eq!(tpdu, hex(want).as_slice(), "tpdu {i}");
            seen.set(i + 1);
            Ok(hex(answer))
        };
        (send, step)
    }

    /// A channel that counts its resets; its card is active after a reset until powered
    /// off.
    #[derive(Default)]
    struct Counting {
        atr: std::cell::RefCell<Option<Vec<u8>>>,
        resets: std::cell::Cell<u32>,
    }

    impl super::CardChannel for Counting {
        fn reader_name(&self) -> String {
            "counting".into()
        }

        fn atr(&self, _slot: u8) -> Option<Vec<u8>> {
            self.atr.borrow().clone()
        }

        async fn reset(
            &self,
            _slot: u8,
            _abort: Option<&crate::driver::sync::Abort>,
        ) -> Result<Vec<u8>, crate::driver::DriverError> {
            self.resets.set(self.resets.get() + 1);
            let atr = hex("3B 02 14 50");
            *self.atr.borrow_mut() = Some(atr.clone());
            Ok(atr)
        }

        async fn transmit(
            &self,
            _slot: u8,
            _command: Command,
            _abort: Option<&crate::driver::sync::Abort>,
        ) -> Result<Vec<u8>, crate::driver::DriverError> {
            Ok(hex("90 00"))
        }

        async fn status(&self, slot: u8) -> Result<super::SlotState, crate::driver::DriverError> {
            Ok(super::SlotState {
                present: true,
                atr: self.atr(slot),
            })
        }

        async fn power_off(&self, _slot: u8) -> Result<(), crate::driver::DriverError> {
            *self.atr.borrow_mut() = None;
            Ok(())
        }

        fn set_event_sink(&self, _sink: Box<dyn Fn(crate::driver::DriverEvent)>) {}
    }

    /// Runs a future that completes at once (the counting channel never waits).
    fn now<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("the counting channel never waits"),
        }
    }

    /// Issue 17: one place decides "power on first" — `CardChannel::power_on`: a card that
    /// is not active is reset (activated) once, an active one is left as it is (no warm
    /// reset), and after a power off it is activated again.
    #[test]
    fn power_on_activates_only_a_card_that_is_not_active() {
        use super::CardChannel;
        let channel = Counting::default();
        assert_eq!(now(channel.power_on(0, None)), Ok(hex("3B 02 14 50")));
        assert_eq!(channel.resets.get(), 1);
        assert_eq!(now(channel.power_on(0, None)), Ok(hex("3B 02 14 50")));
        assert_eq!(channel.resets.get(), 1, "an active card is not reset");
        now(channel.power_off(0)).unwrap();
        now(channel.power_on(0, None)).unwrap();
        assert_eq!(channel.resets.get(), 2);
    }

    #[test]
    fn case_4_goes_without_le_and_61xx_is_fetched_with_get_response() {
        // ISO/IEC 7816-3 §12.2.4: case 4S is sent as case 3S; 61 07 announces 7 bytes.
        let (send, steps) = card(&[
            ("00 A4 04 04 02 3F 00", "61 07"),
            ("00 C0 00 00 07", "62 05 82 01 38 83 00 90 00"),
        ]);
        let r = transmit_t0(&cmd("00 A4 04 04 02 3F 00 00"), send).unwrap();
        assert_eq!(r, hex("62 05 82 01 38 83 00 90 00"));
        assert_eq!(steps.get(), 2);
    }

    #[test]
    fn wrong_le_is_resent_with_the_length_of_6cxx() {
        // 7816-3 §10.3.3: 6C xx means re-send the same header with P3 = xx.
        let answer = format!("{} 90 00", ["AB"; 45].join(" "));
        let script = [
            ("80 CA 9F 7F 00", "6C 2D"),
            ("80 CA 9F 7F 2D", answer.as_str()),
        ];
        let (send, steps) = card(&script);
        let r = transmit_t0(&cmd("80 CA 9F 7F 00"), send).unwrap();
        assert_eq!(r.len(), 47);
        assert_eq!(r.get(45..), Some(&[0x90, 0x00][..]));
        assert_eq!(steps.get(), 2);
    }

    #[test]
    fn the_class_of_the_command_is_echoed_in_get_response() {
        let (send, _) = card(&[
            ("84 B0 00 00 00", "61 02"),
            ("84 C0 00 00 02", "01 02 90 00"),
        ]);
        assert_eq!(
            transmit_t0(&cmd("84 B0 00 00 00"), send).unwrap(),
            hex("01 02 90 00")
        );
    }

    #[test]
    fn extended_and_broken_commands_never_reach_the_transport() {
        let mut calls = 0;
        let send = |_: &[u8]| -> Result<Vec<u8>, ()> {
            calls += 1;
            Ok(vec![0x90, 0x00])
        };
        // Ne 257 needs extended length fields (7816-4 §5.1).
        let extended = hex("00 B0 00 00 00 01 01");
        assert_eq!(
            transmit_t0(&Command::parse(extended).unwrap(), send),
            Err(T0TransmitError::T0(T0Error::ExtendedNotSupported))
        );
        assert_eq!(calls, 0);
        // A broken command is not a command: it is refused where it enters the library.
        assert!(Command::parse(hex("00 A4")).is_err());
    }

    #[test]
    fn transport_errors_and_short_answers_end_the_exchange() {
        let failing = |_: &[u8]| -> Result<Vec<u8>, &str> { Err("removed") };
        assert_eq!(
            transmit_t0(&cmd("00 84 00 00 08"), failing),
            Err(T0TransmitError::Transport("removed"))
        );
        let short = |_: &[u8]| -> Result<Vec<u8>, ()> { Ok(vec![0x90]) };
        assert_eq!(
            transmit_t0(&cmd("00 84 00 00 08"), short),
            Err(T0TransmitError::T0(T0Error::ResponseTooShort(1)))
        );
    }
}
