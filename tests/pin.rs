//! The local PIN check (`card_relay::pin`) natively: against the simulator's PIN card
//! (`CardApp::Pin`: PIN "123456", three tries, `63Cx` / `6983` / `9000` as ISO/IEC 7816-4
//! §11.5.6 and §5.6 table 6 give them) through the CCID driver, with and without the
//! reader's PIN pad (libccid readers/GemPCPinpad.txt), and every status word against a
//! scripted channel.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use card_relay::channel::{CardChannel, SlotState};
use card_relay::driver::sync::Abort;
use card_relay::driver::{CcidDriver, DriverError, DriverEvent, ErrorCode};
use card_relay::pin::{self, Pin, PinCheck, PinEntry, PinError, DEFAULT_REFERENCE};
use card_relay::proto::apdu::StatusWord;
use card_relay::proto::hex::h;
use card_relay::reader::PinVerify;
use card_relay::sim::card::{APPLICATION_AID, PIN, PIN_TRIES, SEED_ATR};
use card_relay::sim::transport::SimTransport;
use card_relay::sim::{profiles, CardConfig, Fault, PinEntry as PadEntry, SimConfig};
use support::{block_on, VirtualClock};

/// What the user does when asked, and what the check told the user.
#[derive(Default)]
struct User {
    /// The answers to `ask`, in order; `None` cancels. Empty: `can_ask` is false.
    answers: Vec<Option<&'static str>>,
    /// A failure of the page's callback instead of an answer.
    fail: Option<&'static str>,
    asked: Vec<Option<u8>>,
    pads: Vec<Option<u8>>,
}

impl User {
    fn typing(answers: &[Option<&'static str>]) -> Self {
        User {
            answers: answers.to_vec(),
            ..User::default()
        }
    }
}

impl PinEntry for User {
    type Error = &'static str;

    fn on_pad(&mut self, tries_left: Option<u8>) -> Result<(), &'static str> {
        self.pads.push(tries_left);
        Ok(())
    }

    fn can_ask(&self) -> bool {
        self.fail.is_some() || !self.answers.is_empty()
    }

    async fn ask(&mut self, tries_left: Option<u8>) -> Result<Option<Pin>, &'static str> {
        self.asked.push(tries_left);
        if let Some(e) = self.fail {
            return Err(e);
        }
        let answer = self.answers.remove(0);
        Ok(answer.map(|p| Pin::from(p.to_owned())))
    }
}

struct Card {
    clock: VirtualClock,
    usb: SimTransport,
    driver: CcidDriver<SimTransport>,
}

impl Card {
    /// `profile` with `card`, opened through the driver.
    fn open(
        profile: &str,
        card: CardConfig,
        set_up: impl FnOnce(&mut card_relay::sim::SimulatedReader),
    ) -> Card {
        let config = SimConfig {
            profile: profiles::load(profile).expect("profile"),
            card: Some(card),
            seed: 11,
        };
        let mut sim = card_relay::sim::SimulatedReader::new(config).expect("simulator");
        set_up(&mut sim);
        let clock = VirtualClock::default();
        let usb = SimTransport::new(sim).with_clock(Rc::new(clock.clone()));
        let driver = block_on(
            &clock,
            CcidDriver::open(usb.clone(), Rc::new(clock.clone())),
        )
        .expect("open");
        Card { clock, usb, driver }
    }

    /// The PIN card in a reader without PIN pad (ACS ACR3901U, short APDU level).
    fn plain() -> Card {
        Card::open("ACS_ACR3901U_ICC_Reader", CardConfig::pin(), |_| {})
    }

    /// The PIN card (T=1) in a GemPC Pinpad (TPDU level, bPINSupport 03) where the user
    /// does `entry` on the pad.
    fn pad(entry: PadEntry) -> Card {
        Card::open(
            "GemPCPinpad",
            CardConfig::pin().with_atr(SEED_ATR.to_vec()),
            |s| s.set_pin_entry(entry),
        )
    }

    fn check(&self, check: &PinCheck, user: &mut User) -> Result<(), PinError<&'static str>> {
        block_on(&self.clock, pin::verify(&self.driver, 0, check, user, None))
    }

    /// The commands the card executed.
    fn log(&self) -> Vec<Vec<u8>> {
        self.usb.with(|s| s.card_log(0))
    }
}

fn host() -> PinCheck {
    PinCheck::new(DEFAULT_REFERENCE)
}

fn on_pad() -> PinCheck {
    PinCheck {
        pad: Some(PinVerify::default()),
        ..host()
    }
}

const RIGHT: &str = "123456";

#[test]
fn the_pin_is_verified_on_the_card_after_its_state() {
    assert_eq!(PIN, RIGHT.as_bytes());
    let card = Card::plain();
    let mut user = User::typing(&[Some(RIGHT)]);
    assert_eq!(
        card.check(&host(), &mut user).map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(
        user.asked,
        [Some(PIN_TRIES)],
        "asked once, with the tries the card reported"
    );
    // 7816-4 §11.5.6: VERIFY without data reads the state, then VERIFY with the six
    // digits (the simulator's log masks VERIFY data with '*').
    assert_eq!(
        card.log(),
        [h("00 20 00 81"), h("00 20 00 81 06 2A 2A 2A 2A 2A 2A")]
    );
    // Verified already: 90 00 to the state query, nobody is asked again.
    let mut again = User::typing(&[Some("never")]);
    assert_eq!(
        card.check(&host(), &mut again).map_err(|e| e.to_string()),
        Ok(())
    );
    assert!(again.asked.is_empty());
}

#[test]
fn a_wrong_pin_counts_down_and_the_third_blocks() {
    let card = Card::plain();
    let mut user = User::typing(&[Some("000000"), Some("111111"), Some("222222")]);
    let first = card.check(&host(), &mut user).unwrap_err();
    assert_eq!(first.to_string(), "wrong PIN, 2 tries left");
    assert_eq!(first.code(), ErrorCode::PinFailed);
    assert!(matches!(first, PinError::Wrong { tries_left: 2 }));
    let second = card.check(&host(), &mut user).unwrap_err();
    assert_eq!(second.to_string(), "wrong PIN, 1 tries left");
    let third = card.check(&host(), &mut user).unwrap_err();
    assert!(matches!(third, PinError::Blocked), "{third}");
    assert_eq!(third.to_string(), "the PIN is blocked");
    assert_eq!(user.asked, [Some(3), Some(2), Some(1)]);
    // Blocked: 69 83 to the state query; nobody is asked for a PIN that cannot work.
    let mut late = User::typing(&[Some(RIGHT)]);
    let blocked = card.check(&host(), &mut late).unwrap_err();
    assert!(matches!(blocked, PinError::Blocked));
    assert_eq!(blocked.code(), ErrorCode::PinFailed);
    assert_eq!(blocked.hint(), "Unblock the PIN with the card's issuer.");
    assert!(late.asked.is_empty());
}

#[test]
fn cancelling_the_entry_is_aborted_and_costs_no_try() {
    let card = Card::plain();
    for cancel in [None, Some("")] {
        let mut user = User::typing(&[cancel]);
        let e = card.check(&host(), &mut user).unwrap_err();
        assert_eq!(
            (e.code(), e.to_string().as_str()),
            (ErrorCode::Aborted, "PIN entry was cancelled")
        );
    }
    let mut user = User::typing(&[Some(RIGHT)]);
    card.check(&host(), &mut user).unwrap();
    assert_eq!(user.asked, [Some(PIN_TRIES)], "no try was used");
    // Only the state queries reached the card before the PIN.
    assert_eq!(card.log().iter().filter(|c| c.len() > 4).count(), 1);
}

#[test]
fn without_pad_or_pin_callback_nothing_is_sent_but_the_state_query() {
    let card = Card::plain();
    let e = card.check(&host(), &mut User::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::PinFailed);
    assert_eq!(
        e.to_string(),
        "a PIN is required but no pin() callback was given"
    );
    assert_eq!(card.log(), [h("00 20 00 81")]);
}

#[test]
fn the_callbacks_own_failure_comes_back_as_it_is() {
    let card = Card::plain();
    let mut user = User {
        fail: Some("the page's error"),
        ..User::default()
    };
    let e = card.check(&host(), &mut user).unwrap_err();
    assert!(matches!(e, PinError::Entry("the page's error")), "{e}");
}

#[test]
fn the_application_is_selected_first_and_a_missing_one_fails_clearly() {
    let card = Card::plain();
    let mut missing = PinCheck {
        select: Some(h("A0 00 00 00 01")),
        ..host()
    };
    let mut user = User::typing(&[Some(RIGHT)]);
    let e = card.check(&missing, &mut user).unwrap_err();
    // 6A 82: file or application not found (7816-4 §5.6 table 6).
    assert!(
        matches!(e, PinError::NotSelected(StatusWord(0x6A82))),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "the PIN application is not on the card (SW 6a82)"
    );
    assert_eq!(e.code(), ErrorCode::PinFailed);
    assert!(user.asked.is_empty());
    missing.select = Some(APPLICATION_AID.to_vec());
    card.check(&missing, &mut user).unwrap();
    let log = card.log();
    // SELECT by DF name, first or only occurrence, no response data: 00 A4 04 0C.
    let mut select = h("00 A4 04 0C 0B");
    select.extend_from_slice(&APPLICATION_AID);
    assert_eq!(log.get(1), Some(&select), "{log:02X?}");
    let too_long = PinCheck {
        select: Some(vec![0xA0; 256]),
        ..host()
    };
    let e = card
        .check(&too_long, &mut User::typing(&[Some(RIGHT)]))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
}

#[test]
fn a_card_without_the_pin_refuses_with_its_status_word() {
    // The seed card answers VERIFY with 6E 00 before its SELECT (reference/seed.md).
    let card = Card::open("ACS_ACR3901U_ICC_Reader", CardConfig::seed(), |_| {});
    let mut user = User::typing(&[Some(RIGHT)]);
    let e = card.check(&host(), &mut user).unwrap_err();
    assert_eq!(e.to_string(), "the card refused the PIN (SW 6e00)");
    assert_eq!(e.code(), ErrorCode::PinFailed);
    assert_eq!(user.asked, [None], "no counter in 6E 00");
}

#[test]
fn on_a_pin_pad_the_reader_verifies_and_nobody_is_asked() {
    let card = Card::pad(PadEntry::Digits(RIGHT.into()));
    assert!(card.driver.description().descriptor().pin_verify());
    let mut user = User::typing(&[Some("never")]);
    card.check(&on_pad(), &mut user).unwrap();
    assert_eq!(user.pads, [Some(PIN_TRIES)]);
    assert!(user.asked.is_empty());
}

/// The pad's parameters are a wish: on a reader without a PIN pad (bPINSupport 00, CCID
/// Rev 1.1 §5.1) nobody is told to type on a pad and the PIN is asked, as without them.
#[test]
fn pad_parameters_on_a_reader_without_a_pad_ask_for_the_pin() {
    let card = Card::plain();
    assert!(!card.driver.description().descriptor().pin_verify());
    let mut user = User::typing(&[Some(RIGHT)]);
    card.check(&on_pad(), &mut user).unwrap();
    assert!(user.pads.is_empty(), "{:?}", user.pads);
    assert_eq!(user.asked, [Some(PIN_TRIES)]);
    assert_eq!(
        card.log(),
        [h("00 20 00 81"), h("00 20 00 81 06 2A 2A 2A 2A 2A 2A")]
    );
}

#[test]
fn the_pads_own_outcomes_keep_their_codes() {
    let wrong = Card::pad(PadEntry::Digits("654321".into()));
    let e = wrong.check(&on_pad(), &mut User::default()).unwrap_err();
    assert_eq!(e.to_string(), "wrong PIN, 2 tries left");
    // CCID §6.1.11: bError PIN_CANCELLED (EF) and PIN_TIMEOUT (F0).
    let cancelled = Card::pad(PadEntry::Cancel);
    let e = cancelled
        .check(&on_pad(), &mut User::default())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Aborted, "{e}");
    let late = Card::pad(PadEntry::Timeout);
    let e = late
        .check(&on_pad(), &mut User::typing(&[Some(RIGHT)]))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Timeout, "{e}");
}

#[test]
fn a_pad_the_reader_refuses_falls_back_to_the_pin_callback() {
    // A failed RDR_to_PC_SlotStatus to PC_to_RDR_Secure (issue 13): unsupported-reader.
    let refusing = || {
        Card::open(
            "GemPCPinpad",
            CardConfig::pin().with_atr(SEED_ATR.to_vec()),
            |s| {
                s.set_fault(Fault::SecureSlotStatus(true));
                s.set_pin_entry(PadEntry::Digits(RIGHT.into()));
            },
        )
    };
    let card = refusing();
    let mut user = User::typing(&[Some(RIGHT)]);
    card.check(&on_pad(), &mut user).unwrap();
    assert_eq!(
        (user.pads.as_slice(), user.asked.as_slice()),
        (&[Some(3)][..], &[Some(3)][..])
    );
    let card = refusing();
    let e = card.check(&on_pad(), &mut User::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnsupportedReader);
    assert_eq!(e.to_string(), "this reader's pin pad cannot be used");
    assert!(e.hint().contains("pin()"), "{}", e.hint());
}

/// The card's documented counter (CardApp::Pin): random attempts, right, wrong or
/// cancelled, against a fresh card each round; every outcome and every `tries_left` the
/// user sees follow from the model.
#[test]
fn thousands_of_attempts_follow_the_cards_counter() {
    let mut seed = 0x2545_F491_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut attempts = 0;
    for _ in 0..150 {
        let card = Card::plain();
        let mut tries = PIN_TRIES;
        let mut verified = false;
        for _ in 0..8 {
            let answer = match next() % 3 {
                0 => Some(RIGHT),
                1 => Some("999999"),
                _ => None,
            };
            let mut user = User::typing(&[answer]);
            let outcome = card.check(&host(), &mut user);
            attempts += 1;
            match (tries, verified, answer) {
                (0, _, _) => assert!(matches!(outcome, Err(PinError::Blocked))),
                (_, true, _) => assert!(outcome.is_ok() && user.asked.is_empty()),
                (_, false, None) => {
                    assert!(matches!(outcome, Err(PinError::Cancelled)));
                    assert_eq!(user.asked, [Some(tries)]);
                }
                (_, false, Some(RIGHT)) => {
                    assert!(outcome.is_ok());
                    assert_eq!(user.asked, [Some(tries)]);
                    (tries, verified) = (PIN_TRIES, true);
                }
                (_, false, Some(_)) => {
                    assert_eq!(user.asked, [Some(tries)]);
                    tries -= 1;
                    match outcome {
                        Err(PinError::Blocked) => assert_eq!(tries, 0),
                        Err(PinError::Wrong { tries_left }) => assert_eq!(tries_left, tries),
                        other => panic!("{other:?}"),
                    }
                }
            }
        }
    }
    assert_eq!(attempts, 1200);
}

/// A channel that answers every command from a script, for status words no simulated
/// card gives.
struct Scripted {
    answers: RefCell<Vec<Vec<u8>>>,
    sent: RefCell<Vec<Vec<u8>>>,
    /// A PIN pad that shows only once connected (the Web Smart Card API's
    /// GET_FEATURE_REQUEST needs a connection): false until `power_on`.
    pad_once_connected: bool,
    connected: Cell<bool>,
}

impl Scripted {
    fn new(answers: &[Vec<u8>]) -> Self {
        Scripted {
            answers: RefCell::new(answers.iter().rev().cloned().collect()),
            sent: RefCell::default(),
            pad_once_connected: false,
            connected: Cell::new(false),
        }
    }
}

impl CardChannel for Scripted {
    fn reader_name(&self) -> String {
        "scripted".into()
    }

    fn atr(&self, _slot: u8) -> Option<Vec<u8>> {
        Some(SEED_ATR.to_vec())
    }

    async fn power_on(&self, _slot: u8, _abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        self.connected.set(true);
        Ok(SEED_ATR.to_vec())
    }

    async fn reset(&self, _slot: u8, _abort: Option<&Abort>) -> Result<Vec<u8>, DriverError> {
        Ok(SEED_ATR.to_vec())
    }

    fn has_pin_pad(&self) -> bool {
        self.pad_once_connected && self.connected.get()
    }

    async fn verify_pin_on_pad(
        &self,
        _slot: u8,
        pin: &PinVerify,
        _abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        self.sent
            .borrow_mut()
            .push([&b"pad "[..], &[pin.reference]].concat());
        Ok(self.answers.borrow_mut().pop().expect("an answer"))
    }

    async fn transmit(
        &self,
        _slot: u8,
        command: card_relay::reader::Command,
        _abort: Option<&Abort>,
    ) -> Result<Vec<u8>, DriverError> {
        self.sent.borrow_mut().push(command.into_bytes());
        Ok(self.answers.borrow_mut().pop().expect("an answer"))
    }

    async fn status(&self, _slot: u8) -> Result<SlotState, DriverError> {
        Ok(SlotState {
            present: true,
            atr: Some(SEED_ATR.to_vec()),
        })
    }

    async fn power_off(&self, _slot: u8) -> Result<(), DriverError> {
        Ok(())
    }

    fn set_event_sink(&self, _sink: Box<dyn Fn(DriverEvent)>) {}
}

fn scripted(state: &[u8], answer: &[u8]) -> (Result<(), PinError<&'static str>>, Vec<Vec<u8>>) {
    let channel = Scripted::new(&[state.to_vec(), answer.to_vec()]);
    let clock = VirtualClock::default();
    let mut user = User::typing(&[Some(RIGHT)]);
    let r = block_on(&clock, pin::verify(&channel, 0, &host(), &mut user, None));
    (r, channel.sent.take())
}

/// Every status word after VERIFY with the PIN (7816-4 §5.6 table 6): 90 00 verified,
/// 69 83 blocked, 63 Cx wrong with x tries left, anything else refused with the word.
#[test]
fn every_status_word_after_verify_is_decoded() {
    for sw in 0..=u16::MAX {
        let (r, sent) = scripted(&h("63 C3"), &sw.to_be_bytes());
        assert_eq!(sent.len(), 2);
        match (sw, r) {
            (0x9000, Ok(())) | (0x6983, Err(PinError::Blocked)) => {}
            (0x63C0..=0x63CF, Err(PinError::Wrong { tries_left })) => {
                assert_eq!(u16::from(tries_left), sw & 0x0F);
            }
            (_, Err(PinError::Refused(StatusWord(got)))) => {
                assert_eq!(got, sw);
                assert!(![0x9000, 0x6983].contains(&sw) && sw & 0xFFF0 != 0x63C0);
            }
            (_, other) => panic!("{sw:04X}: {other:?}"),
        }
    }
    // Data before the status word does not change it; no status word at all is an error.
    let (r, _) = scripted(&h("63 C3"), &h("01 02 63 C1"));
    assert!(matches!(r, Err(PinError::Wrong { tries_left: 1 })));
    for short in [&[][..], &[0x90][..]] {
        let (r, _) = scripted(&h("63 C3"), short);
        assert!(matches!(r, Err(PinError::NoStatus)), "{short:02X?}");
    }
}

/// A channel that learns of its PIN pad only at the first connection (the Web Smart Card
/// route: PC/SC part 10 GET_FEATURE_REQUEST): the check asks after powering on, so the pad
/// is used, and nobody is asked for the PIN.
#[test]
fn a_pad_known_only_once_connected_is_used() {
    let channel = Scripted {
        pad_once_connected: true,
        ..Scripted::new(&[h("63 C3"), h("90 00")])
    };
    assert!(
        !channel.has_pin_pad(),
        "unknown before the first connection"
    );
    let mut user = User::typing(&[Some("never")]);
    let r = block_on(
        &VirtualClock::default(),
        pin::verify(&channel, 0, &on_pad(), &mut user, None),
    );
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(user.pads, [Some(3)]);
    assert!(user.asked.is_empty());
    assert_eq!(
        channel.sent.take(),
        [h("00 20 00 81"), b"pad \x81".to_vec()]
    );
}

/// A PIN longer than a short VERIFY can carry is refused before it reaches the card.
#[test]
fn a_pin_longer_than_255_bytes_never_reaches_the_card() {
    let channel = Scripted::new(&[h("63 C3")]);
    let long: &'static str = Box::leak("1".repeat(256).into_boxed_str());
    let mut user = User::typing(&[Some(long)]);
    let clock = VirtualClock::default();
    let r = block_on(&clock, pin::verify(&channel, 0, &host(), &mut user, None));
    assert!(matches!(r, Err(PinError::PinTooLong)));
    assert_eq!(channel.sent.take(), [h("00 20 00 81")]);
}

mod properties {
    use card_relay::pin::{Pin, PinCheck, PinError, PinFlow, PinStep};
    use card_relay::reader::PinVerify;
    use proptest::prelude::*;

    proptest! {
        /// Any answers from the card, with or without SELECT and PIN pad, never panic the
        /// PIN check, and it ends after at most three of them (SELECT, state, VERIFY) and
        /// one PIN: five steps.
        #[test]
        fn arbitrary_answers_end_the_check(
            answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 0..6),
            select in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            pad in any::<bool>(),
            reference in any::<u8>(),
            pin in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        ) {
            let check = PinCheck { reference, select, pad: pad.then(PinVerify::default) };
            let Ok((mut flow, mut step)) = PinFlow::start::<()>(&check) else {
                prop_assert!(check.select.as_ref().is_some_and(|aid| aid.len() > 255));
                return Ok(());
            };
            let mut answers = answers.into_iter();
            for _ in 0..5 {
                let outcome = match step {
                    PinStep::Done => return Ok(()),
                    PinStep::Ask { .. } => flow.with_pin::<()>(pin.clone().map(Pin::from)),
                    PinStep::Send(ref apdu) => {
                        prop_assert!(apdu.len() <= 260);
                        let Some(a) = answers.next() else { return Ok(()) };
                        flow.on_response::<()>(&a)
                    }
                    PinStep::Pad { pin, .. } => {
                        prop_assert_eq!(pin.reference, reference);
                        let Some(a) = answers.next() else { return Ok(()) };
                        flow.on_response::<()>(&a)
                    }
                };
                match outcome {
                    Ok(next) => step = next,
                    Err(PinError::Entry(())) => prop_assert!(false, "no entry error here"),
                    Err(_) => return Ok(()),
                }
            }
            prop_assert_eq!(step, PinStep::Done, "the check did not end");
        }
    }
}

/// The longest check, every answer a success: SELECT, state, the PIN, VERIFY, done.
#[test]
fn the_longest_check_takes_five_steps() {
    let check = PinCheck {
        select: Some(APPLICATION_AID.to_vec()),
        ..host()
    };
    let (mut flow, step) = pin::PinFlow::start::<()>(&check).unwrap();
    assert!(matches!(step, pin::PinStep::Send(ref a) if a.get(..4) == Some(&h("00 A4 04 0C")[..])));
    let step = flow.on_response::<()>(&h("90 00")).unwrap();
    assert_eq!(step, pin::PinStep::Send(h("00 20 00 81")));
    let step = flow.on_response::<()>(&h("63 C3")).unwrap();
    assert_eq!(
        step,
        pin::PinStep::Ask {
            tries_left: Some(3)
        }
    );
    let step = flow
        .with_pin::<()>(Some(Pin::from(RIGHT.to_owned())))
        .unwrap();
    assert_eq!(
        step,
        pin::PinStep::Send(h("00 20 00 81 06 31 32 33 34 35 36"))
    );
    assert_eq!(
        flow.on_response::<()>(&h("90 00")).unwrap(),
        pin::PinStep::Done
    );
}

/// `Debug` output goes to logs and panic messages: the VERIFY that carries the PIN shows its
/// header and length only, as the step, the parsed command and the command APDU.
#[test]
fn debug_output_never_shows_the_pin() {
    let flow = pin::PinFlow::start::<()>(&host()).unwrap().0;
    let step = flow
        .with_pin::<()>(Some(Pin::from(RIGHT.to_owned())))
        .unwrap();
    let pin::PinStep::Send(ref bytes) = step else {
        panic!("a VERIFY to send")
    };
    let command = card_relay::reader::Command::parse(bytes.clone()).unwrap();
    let bytes = RIGHT.as_bytes();
    let decimal = format!("{:?}", &bytes[..3])
        .trim_matches(['[', ']'])
        .to_owned();
    let hex = format!("{:02X?}", &bytes[..3])
        .trim_matches(['[', ']'])
        .to_owned();
    for text in [
        format!("{step:?}"),
        format!("{command:?}"),
        format!("{:?}", command.apdu()),
        format!("{:#?}", command.apdu()),
    ] {
        for shown in [RIGHT, &decimal, &hex] {
            assert!(!text.contains(shown), "{text} shows {shown}");
        }
    }
    assert_eq!(format!("{step:?}"), "Send([00, 20, 00, 81] + 7 bytes)");
}
