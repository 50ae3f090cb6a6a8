//! The agent's PC/SC paths a virtual reader driver cannot show (vpcd's readers always exist
//! and have no PIN pad), through a fake PC/SC layer behind the same traits as the real one:
//! a reader plugged in while the agent waits, a PIN-pad reader (PC/SC part 10), the
//! transaction around each template, a card removed during a command.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use card_relay::channel::CardChannel;
use card_relay::driver::sync::Abort;
use card_relay::driver::{DriverEvent, ErrorCode};
use card_relay::proto::hex::h;
use card_relay::reader::PinVerify;

use crate::pcsc_api::{CardOps, Pcsc, PcscCard, PcscError, Protocol, ReaderInfo};
use crate::pcsc_channel::PcscChannel;
use crate::pin::{self, PinEntry};
use crate::{open_pcsc, pin_pad_code, verify_on_pcsc_pad};

/// What the fake card saw, in order.
type Log = Arc<Mutex<Vec<String>>>;
/// The card's next answers to `SCardTransmit` (then `90 00`).
type Answers = Arc<Mutex<VecDeque<Result<Vec<u8>, PcscError>>>>;

/// libccid's control code for FEATURE_VERIFY_PIN_DIRECT: SCARD_CTL_CODE(0x330000 + 6).
const VERIFY_PIN_DIRECT: u32 = 0x4233_0006;

/// The card behind the fake reader: answers from a script, a PIN pad if asked for.
struct FakeCard {
    log: Log,
    answers: Answers,
    pin_pad: Option<Vec<u8>>,
}

impl CardOps for FakeCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, PcscError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("transmit {}", hex(command)));
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(vec![0x90, 0x00]))
    }

    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, PcscError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("control {code:08X} {}", hex(input)));
        let get_feature = u32::try_from(pcsc::ctl_code(3400)).unwrap();
        match (&self.pin_pad, code) {
            (Some(_), c) if c == get_feature => Ok(h("07 04 42 33 00 07  06 04 42 33 00 06")),
            (Some(answer), VERIFY_PIN_DIRECT) => Ok(answer.clone()),
            _ => Err(PcscError::UnsupportedFeature),
        }
    }

    fn status(&mut self) -> Result<(Vec<u8>, Protocol), PcscError> {
        let removed = self.log.lock().unwrap().iter().any(|l| l == "removed");
        if removed {
            return Err(PcscError::RemovedCard);
        }
        Ok((h("3B 02 14 50"), Protocol::T1))
    }

    fn reconnect_reset(&mut self) -> Result<(), PcscError> {
        self.log.lock().unwrap().push("reset".into());
        Ok(())
    }
}

impl PcscCard for FakeCard {
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn CardOps)) -> Result<(), PcscError> {
        self.log.lock().unwrap().push("begin".into());
        body(self);
        self.log.lock().unwrap().push("end".into());
        Ok(())
    }

    fn disconnect(self: Box<Self>, reset: bool) {
        self.log
            .lock()
            .unwrap()
            .push(format!("disconnect reset={reset}"));
    }
}

/// A PC/SC context whose reader list follows a script: each call takes the next list, the
/// last one stays.
struct FakePcsc {
    lists: Mutex<VecDeque<Vec<ReaderInfo>>>,
    log: Log,
    answers: Answers,
    pin_pad: Option<Vec<u8>>,
}

impl FakePcsc {
    fn new(lists: Vec<Vec<ReaderInfo>>, pin_pad: Option<Vec<u8>>) -> Arc<Self> {
        Arc::new(FakePcsc {
            lists: Mutex::new(lists.into()),
            log: Log::default(),
            answers: Arc::default(),
            pin_pad,
        })
    }

    fn answer(&self, answer: Result<Vec<u8>, PcscError>) {
        self.answers.lock().unwrap().push_back(answer);
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Pcsc for FakePcsc {
    fn readers(&self) -> Result<Vec<ReaderInfo>, PcscError> {
        let mut lists = self.lists.lock().unwrap();
        if lists.len() > 1 {
            Ok(lists.pop_front().unwrap_or_default())
        } else {
            Ok(lists.front().cloned().unwrap_or_default())
        }
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn PcscCard>, PcscError> {
        self.log.lock().unwrap().push(format!("connect {reader}"));
        Ok(Box::new(FakeCard {
            log: Arc::clone(&self.log),
            answers: Arc::clone(&self.answers),
            pin_pad: self.pin_pad.clone(),
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    card_relay::proto::hex::spaced(bytes)
}

fn reader(name: &str, card_present: bool) -> ReaderInfo {
    ReaderInfo {
        name: name.into(),
        card_present,
        exclusive: false,
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, f)
}

async fn open(pcsc: &Arc<FakePcsc>) -> PcscChannel {
    let said = std::cell::RefCell::new(Vec::new());
    let say = |line: &str| said.borrow_mut().push(line.to_owned());
    let source: Arc<dyn Pcsc> = Arc::clone(pcsc) as Arc<dyn Pcsc>;
    open_pcsc(source, None, &say, &Abort::new()).await.unwrap()
}

#[test]
fn the_agent_waits_for_a_reader_to_be_plugged_in_then_for_a_card() {
    run(async {
        let pcsc = FakePcsc::new(
            vec![
                vec![],
                vec![],
                vec![reader("ACME Pinpad 00 00", false)],
                vec![reader("ACME Pinpad 00 00", false)],
                vec![
                    reader("Other 00 00", false),
                    reader("ACME Pinpad 00 00", true),
                ],
            ],
            None,
        );
        let said = std::cell::RefCell::new(Vec::new());
        let say = |line: &str| said.borrow_mut().push(line.to_owned());
        let source: Arc<dyn Pcsc> = Arc::clone(&pcsc) as Arc<dyn Pcsc>;
        let channel = open_pcsc(source, Some("pinpad"), &say, &Abort::new())
            .await
            .unwrap();
        assert_eq!(
            said.borrow().as_slice(),
            [
                "Connect the reader \"pinpad\"…",
                "Insert a card into ACME Pinpad 00 00…"
            ]
        );
        assert_eq!(channel.reader_name(), "ACME Pinpad 00 00");
        assert_eq!(pcsc.log(), ["connect ACME Pinpad 00 00"]);
        assert_eq!(CardChannel::atr(&channel, 0), Some(h("3B 02 14 50")));
        channel.close(false).await;
        assert_eq!(pcsc.log().last().unwrap(), "disconnect reset=false");
    });
}

#[test]
fn waiting_ends_when_cancelled() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![]], None);
        let abort = Abort::new();
        abort.abort();
        let source: Arc<dyn Pcsc> = pcsc as Arc<dyn Pcsc>;
        let e = open_pcsc(source, None, &|_| {}, &abort).await.unwrap_err();
        assert_eq!(e.code, "aborted");
    });
}

#[test]
fn each_template_runs_in_one_transaction() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        let channel = open(&pcsc).await;
        channel
            .transmit(0, h("00 84 00 00 08"), None)
            .await
            .unwrap();
        channel
            .transmit(0, h("00 84 00 00 08"), None)
            .await
            .unwrap();
        channel.end_template();
        channel.reset(0, None).await.unwrap();
        channel.close(true).await;
        assert_eq!(
            pcsc.log(),
            [
                "connect R",
                "begin",
                "transmit 00 84 00 00 08",
                "transmit 00 84 00 00 08",
                "end",
                "begin",
                "reset",
                "end",
                "disconnect reset=true"
            ]
        );
    });
}

#[test]
fn a_card_removed_during_a_command_is_card_absent_with_an_event() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        let channel = open(&pcsc).await;
        let events = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = std::rc::Rc::clone(&events);
        channel.set_event_sink(Box::new(move |e| seen.borrow_mut().push(e)));
        pcsc.log.lock().unwrap().push("removed".into());
        pcsc.answer(Err(PcscError::NotTransacted));
        let e = channel
            .transmit(0, h("00 84 00 00 08"), None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::CardAbsent);
        assert_eq!(e.to_string(), "the card was removed");
        assert_eq!(events.borrow().as_slice(), [DriverEvent::CardRemoved(0)]);
        assert_eq!(CardChannel::atr(&channel, 0), None);
    });
}

/// The PIN pad path: features found, the part 10 structure sent, the reader's answer read.
fn pin_pad_session(answer: &str) -> (Result<(), crate::CliError>, Vec<String>) {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("ACME Pinpad", true)]], Some(h(answer)));
        // VERIFY without data first: 3 tries left.
        pcsc.answer(Ok(h("63 C3")));
        let channel = open(&pcsc).await;
        let code = pin_pad_code(&channel).await;
        assert_eq!(code, Some(VERIFY_PIN_DIRECT));
        let abort = Abort::new();
        let on_pad = async |pin: PinVerify| {
            verify_on_pcsc_pad(&channel, code.unwrap_or_default(), &pin, &abort).await
        };
        let asked = std::cell::Cell::new(false);
        let result = pin::verify(
            &channel,
            pin::REFERENCE,
            PinEntry::Pad(on_pad),
            || asked.set(true),
            None,
        )
        .await;
        assert!(asked.get(), "the user is told to use the keypad");
        channel.close(true).await;
        (result, pcsc.log())
    })
}

#[test]
fn on_a_pin_pad_reader_the_pin_is_entered_on_the_reader() {
    let (result, log) = pin_pad_session("90 00");
    assert_eq!(result, Ok(()));
    let get_feature = u32::try_from(pcsc::ctl_code(3400)).unwrap();
    assert_eq!(
        log,
        [
            "connect ACME Pinpad".to_owned(),
            format!("control {get_feature:08X} "),
            "begin".into(),
            "transmit 00 20 00 81".into(),
            // PIN_VERIFY_STRUCTURE (part 10): 30 s, ASCII, 4..16 digits, VERIFY 00 20 00 81
            // completed by the reader with Lc and the digits; no PIN passes the host.
            "control 42330006 1E 00 82 00 00 10 04 02 01 09 04 00 00 00 00 04 00 00 00 00 20 00 81"
                .into(),
            "end".into(),
            "disconnect reset=true".into(),
        ]
    );
}

#[test]
fn the_pin_pads_own_outcomes_are_typed() {
    let (wrong, _) = pin_pad_session("63 C2");
    assert_eq!(wrong.unwrap_err().message, "wrong PIN, 2 tries left");
    let (cancelled, _) = pin_pad_session("64 01");
    assert_eq!(cancelled.unwrap_err().code, "aborted");
    let (late, _) = pin_pad_session("64 00");
    assert_eq!(late.unwrap_err().code, "timeout");
}

#[test]
fn a_reader_without_pin_pad_has_no_verify_feature() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        let channel = open(&pcsc).await;
        assert_eq!(pin_pad_code(&channel).await, None);
        channel.close(true).await;
    });
}
