//! The card channel: a card at APDU level, whatever carries the bytes.
//!
//! The card update loop ([`crate::driver::update`]) runs over a [`CardChannel`]: power on or
//! reset (both give the ATR), transmit one command APDU and get the whole response APDU,
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
use crate::proto::apdu::CommandApdu;
use crate::proto::t0::{T0Error, T0Exchange, T0Step};
use crate::reader::{Completion, Operation, PinVerify, ReaderError};

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

    /// Activates the card in `slot` (if it is not active yet) and answers its ATR.
    async fn power_on(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError>;

    /// Resets the card in `slot` and answers its new ATR.
    async fn reset(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError>;

    /// Sends one command APDU and answers the whole response APDU `data || SW1 SW2`.
    async fn transmit(
        &self,
        slot: u8,
        apdu: Vec<u8>,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError>;

    /// Whether a card is present and its ATR when powered.
    async fn status(&self, slot: u8) -> Result<SlotState, DriverError>;

    /// Deactivates the card in `slot`.
    async fn power_off(&self, slot: u8) -> Result<(), DriverError>;

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

    async fn power_on(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        if let Some(atr) = CcidDriver::atr(self, slot) {
            return Ok(atr);
        }
        self.reset(slot, abort).await
    }

    async fn reset(&self, slot: u8, abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        // PC_to_RDR_IccPowerOn on an active card is a warm reset (CCID §6.1.1).
        let op = Operation::PowerOn {
            slot,
            protocol: None,
        };
        match self.run(op, abort).await? {
            Completion::PoweredOn { atr, .. } => Ok(atr),
            _ => Err(unexpected("power on gave no atr")),
        }
    }

    async fn transmit(
        &self,
        slot: u8,
        apdu: Vec<u8>,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        match self.run(Operation::Transmit { slot, apdu }, abort).await? {
            Completion::Response(r) => Ok(r),
            _ => Err(unexpected("transmit gave no response")),
        }
    }

    async fn status(&self, slot: u8) -> Result<SlotState, DriverError> {
        self.run(Operation::Status { slot }, None).await?;
        Ok(SlotState {
            present: self.card_present(slot).unwrap_or(false),
            atr: CcidDriver::atr(self, slot),
        })
    }

    async fn power_off(&self, slot: u8) -> Result<(), DriverError> {
        self.run(Operation::PowerOff { slot }, None)
            .await
            .map(|_| ())
    }

    async fn verify_pin_on_pad(
        &self,
        slot: u8,
        pin: &PinVerify,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        match self
            .run(Operation::VerifyPin { slot, pin: *pin }, abort)
            .await?
        {
            Completion::Response(r) => Ok(r),
            _ => Err(unexpected("pin verification gave no response")),
        }
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
        apdu: Vec<u8>,
        abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        C::transmit(self, slot, apdu, abort).await
    }

    async fn status(&self, slot: u8) -> Result<SlotState, DriverError> {
        C::status(self, slot).await
    }

    async fn power_off(&self, slot: u8) -> Result<(), DriverError> {
        C::power_off(self, slot).await
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

fn unexpected(what: &'static str) -> DriverError {
    DriverError::Reader(ReaderError::Protocol(what))
}

/// Why [`transmit_t0`] failed: the command cannot go over T=0, or the transport failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum T0TransmitError<E> {
    /// The command does not parse, or needs what T=0 cannot carry (extended lengths), or the
    /// card's answers broke the T=0 rules.
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
pub fn start_t0(apdu: &[u8]) -> Result<T0Exchange, T0Error> {
    let command = CommandApdu::parse(apdu).map_err(T0Error::Apdu)?;
    T0Exchange::new(&command, 0xFF)
}

/// Sends a command APDU over a transport that exchanges T=0 TPDUs and hands `61xx` and
/// `6Cxx` back to its caller (PC/SC's `SCardTransmit` on a T=0 card, PC/SC part 3 and
/// ISO/IEC 7816-3 §12.2), following them up exactly as the CCID path does at TPDU level:
/// the command mapped to a TPDU (case 4 without Le), GET RESPONSE for `61xx`, the TPDU
/// re-sent with P3 = xx for `6Cxx` (see [`crate::proto::t0`]). `send` takes one TPDU and
/// answers the card's `data || SW1 SW2`. GET RESPONSE uses the command's class byte.
pub fn transmit_t0<E>(
    apdu: &[u8],
    mut send: impl FnMut(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, T0TransmitError<E>> {
    let mut exchange = start_t0(apdu).map_err(T0TransmitError::T0)?;
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

    #[test]
    fn case_4_goes_without_le_and_61xx_is_fetched_with_get_response() {
        // ISO/IEC 7816-3 §12.2.4: case 4S is sent as case 3S; 61 07 announces 7 bytes.
        let (send, steps) = card(&[
            ("00 A4 04 04 02 3F 00", "61 07"),
            ("00 C0 00 00 07", "62 05 82 01 38 83 00 90 00"),
        ]);
        let r = transmit_t0(&hex("00 A4 04 04 02 3F 00 00"), send).unwrap();
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
        let r = transmit_t0(&hex("80 CA 9F 7F 00"), send).unwrap();
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
            transmit_t0(&hex("84 B0 00 00 00"), send).unwrap(),
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
            transmit_t0(&extended, send),
            Err(T0TransmitError::T0(T0Error::ExtendedNotSupported))
        );
        let mut send = |_: &[u8]| -> Result<Vec<u8>, ()> {
            calls += 1;
            Ok(vec![0x90, 0x00])
        };
        assert!(matches!(
            transmit_t0(&hex("00 A4"), &mut send),
            Err(T0TransmitError::T0(T0Error::Apdu(_)))
        ));
        assert_eq!(calls, 0);
    }

    #[test]
    fn transport_errors_and_short_answers_end_the_exchange() {
        let failing = |_: &[u8]| -> Result<Vec<u8>, &str> { Err("removed") };
        assert_eq!(
            transmit_t0(&hex("00 84 00 00 08"), failing),
            Err(T0TransmitError::Transport("removed"))
        );
        let short = |_: &[u8]| -> Result<Vec<u8>, ()> { Ok(vec![0x90]) };
        assert_eq!(
            transmit_t0(&hex("00 84 00 00 08"), short),
            Err(T0TransmitError::T0(T0Error::ResponseTooShort(1)))
        );
    }
}
