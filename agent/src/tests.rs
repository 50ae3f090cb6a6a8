//! The agent's PC/SC paths a virtual reader driver cannot show (vpcd's readers always exist
//! and have no PIN pad), through a fake PC/SC layer behind the same traits as the real one:
//! a reader plugged in while the agent waits, a PIN-pad reader (PC/SC part 10), the
//! transaction around each template, a card removed during a command, insert/remove events
//! with pcsc-lite's event counter, a reader unplugged, a card reset by another program.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use card_relay::channel::CardChannel;
use card_relay::driver::sync::Abort;
use card_relay::driver::{DriverEvent, ErrorCode};
use card_relay::proto::hex::h;
use card_relay::reader::PinVerify;

use crate::pcsc_api::{CardOps, Pcsc, PcscCard, PcscError, Protocol, ReaderInfo, StatusWatch};
use crate::pcsc_channel::{Change, PcscChannel, Seen};
use crate::pin;
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
    reset: Arc<ResetByOther>,
}

/// A reset by another program: until `SCardReconnect`, the handle's calls fail with
/// `SCARD_W_RESET_CARD` (PC/SC part 5); the card then answers `atr`.
#[derive(Default)]
struct ResetByOther {
    pending: Mutex<bool>,
    atr: Mutex<Option<Vec<u8>>>,
}

impl ResetByOther {
    fn pending(&self) -> bool {
        *self.pending.lock().unwrap()
    }
}

impl CardOps for FakeCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, PcscError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("transmit {}", hex(command)));
        if self.reset.pending() {
            return Err(PcscError::ResetCard);
        }
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
        if self.reset.pending() {
            return Err(PcscError::ResetCard);
        }
        let atr = self.reset.atr.lock().unwrap().clone();
        Ok((atr.unwrap_or_else(|| h("3B 02 14 50")), Protocol::T1))
    }

    fn reconnect(&mut self, reset: bool) -> Result<(), PcscError> {
        let line = if reset { "reset" } else { "reconnect leave" };
        self.log.lock().unwrap().push(line.into());
        *self.reset.pending.lock().unwrap() = false;
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
    reset: Arc<ResetByOther>,
    watch: Arc<FakeWatch>,
}

/// `SCardGetStatusChange` from a script: each wait takes the next `dwEventState` (or error);
/// with none left it blocks, like a wait without timeout, until more comes or `SCardCancel`.
#[derive(Default)]
struct FakeWatch {
    /// The answers to come, and whether the context was cancelled.
    script: Mutex<(VecDeque<Result<u32, PcscError>>, bool)>,
    wake: Condvar,
    log: Mutex<Vec<String>>,
}

impl FakeWatch {
    fn push(&self, state: Result<u32, PcscError>) {
        self.script.lock().unwrap().0.push_back(state);
        self.wake.notify_all();
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl StatusWatch for Arc<FakeWatch> {
    fn wait(&self, reader: &str, current: u32, _timeout: Duration) -> Result<u32, PcscError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("wait {reader} {current:08X}"));
        let mut script = self.script.lock().unwrap();
        loop {
            if script.1 {
                self.log.lock().unwrap().push("cancelled".into());
                return Err(PcscError::Cancelled);
            }
            if let Some(next) = script.0.pop_front() {
                return next;
            }
            script = self.wake.wait(script).unwrap();
        }
    }

    fn cancel(&self) {
        self.log.lock().unwrap().push("cancel".into());
        self.script.lock().unwrap().1 = true;
        self.wake.notify_all();
    }
}

impl FakePcsc {
    fn new(lists: Vec<Vec<ReaderInfo>>, pin_pad: Option<Vec<u8>>) -> Arc<Self> {
        Arc::new(FakePcsc {
            lists: Mutex::new(lists.into()),
            log: Log::default(),
            answers: Arc::default(),
            pin_pad,
            reset: Arc::default(),
            watch: Arc::default(),
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
            reset: Arc::clone(&self.reset),
        }))
    }

    fn watcher(&self) -> Result<Box<dyn StatusWatch>, PcscError> {
        Ok(Box::new(Arc::clone(&self.watch)))
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
        let check = card_relay::pin::PinCheck {
            pad: Some(PinVerify::default()),
            ..card_relay::pin::PinCheck::new(pin::REFERENCE)
        };
        let mut terminal = pin::Terminal {
            given: None,
            ask: Box::new(|_| panic!("the PIN is typed on the pad")),
            on_pad: Box::new(|| asked.set(true)),
        };
        let with_pad = pin::WithPad {
            channel: &channel,
            pad: on_pad,
        };
        let result = pin::verify(&with_pad, &check, &mut terminal, None).await;
        drop(terminal);
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

/// `SCARD_STATE_*` (pcsc-lite `pcsclite.h`, PC/SC part 5 §3.1.4).
const CHANGED: u32 = 0x0002;
const UNKNOWN: u32 = 0x0004;
const EMPTY: u32 = 0x0010;
const PRESENT: u32 = 0x0020;

/// A `dwEventState` as pcsc-lite reports it: the event counter in the high word.
fn state(counter: u32, bits: u32) -> Result<u32, PcscError> {
    Ok(counter << 16 | bits | CHANGED)
}

type Events = std::rc::Rc<std::cell::RefCell<Vec<DriverEvent>>>;

fn record(channel: &PcscChannel) -> Events {
    let events = Events::default();
    let seen = std::rc::Rc::clone(&events);
    channel.set_event_sink(Box::new(move |e| seen.borrow_mut().push(e)));
    events
}

/// Lets the watcher's thread and the channel's task run until `done` holds (at most 2 s).
async fn until(done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn events(events: &Events, n: usize) -> Vec<DriverEvent> {
    until(|| events.borrow().len() >= n).await;
    // Nothing more than expected comes.
    tokio::time::sleep(Duration::from_millis(50)).await;
    events.borrow().clone()
}

#[test]
fn the_watcher_reports_a_card_removed_then_inserted() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        // The answer to SCARD_STATE_UNAWARE: a card, 1 event so far.
        pcsc.watch.push(state(1, PRESENT));
        let channel = open(&pcsc).await;
        let seen = record(&channel);
        pcsc.watch.push(state(2, EMPTY));
        assert_eq!(events(&seen, 1).await, [DriverEvent::CardRemoved(0)]);
        assert_eq!(CardChannel::atr(&channel, 0), None);
        pcsc.watch.push(state(3, PRESENT));
        assert_eq!(
            events(&seen, 2).await,
            [DriverEvent::CardRemoved(0), DriverEvent::CardInserted(0)]
        );
        // Each wait gives the last event state (counter included, CHANGED cleared).
        assert_eq!(
            pcsc.watch.log(),
            [
                "wait R 00000000",
                "wait R 00010020",
                "wait R 00020010",
                "wait R 00030020"
            ]
        );
        channel.close(false).await;
    });
}

#[test]
fn a_card_swapped_between_two_waits_is_seen_by_the_event_counter() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        pcsc.watch.push(state(4, PRESENT));
        let channel = open(&pcsc).await;
        let seen = record(&channel);
        // Present before and after, but two events (a removal, an insertion) in between.
        pcsc.watch.push(state(6, PRESENT));
        assert_eq!(
            events(&seen, 2).await,
            [DriverEvent::CardRemoved(0), DriverEvent::CardInserted(0)]
        );
        assert_eq!(
            CardChannel::atr(&channel, 0),
            None,
            "another card: no atr yet"
        );
        channel.close(false).await;
    });
}

#[test]
fn the_event_counter_also_shows_a_card_in_and_out_between_two_waits() {
    let mut seen = Seen::connected();
    assert_eq!(
        seen.update(0x0001_0000 | EMPTY | CHANGED),
        [Change::Removed]
    );
    assert_eq!(seen.update(0x0001_0000 | EMPTY), []);
    assert_eq!(
        seen.update(0x0003_0000 | EMPTY | CHANGED),
        [Change::Inserted, Change::Removed]
    );
    // The counter is 16 bits wide and wraps.
    let mut wrap = Seen::connected();
    assert_eq!(wrap.update(0xFFFF_0000 | PRESENT), []);
    assert_eq!(
        wrap.update(0x0001_0000 | PRESENT | CHANGED),
        [Change::Removed, Change::Inserted]
    );
    assert_eq!(Seen::connected().update(UNKNOWN | CHANGED), [Change::Gone]);
}

#[test]
fn an_unplugged_reader_is_disconnected() {
    for gone in [state(2, UNKNOWN), Err(PcscError::UnknownReader)] {
        run(async {
            let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
            pcsc.watch.push(state(1, PRESENT));
            let channel = open(&pcsc).await;
            let seen = record(&channel);
            pcsc.watch.push(gone);
            assert_eq!(events(&seen, 1).await, [DriverEvent::Disconnected]);
            assert_eq!(CardChannel::atr(&channel, 0), None);
            // The watcher is done: no wait after the reader went.
            assert_eq!(pcsc.watch.log().len(), 2);
            channel.close(false).await;
        });
    }
}

#[test]
fn a_removal_seen_by_a_command_and_by_the_watcher_is_one_event() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        pcsc.watch.push(state(1, PRESENT));
        let channel = open(&pcsc).await;
        let seen = record(&channel);
        pcsc.log.lock().unwrap().push("removed".into());
        pcsc.answer(Err(PcscError::RemovedCard));
        let e = channel
            .transmit(0, h("00 84 00 00 08"), None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::CardAbsent);
        pcsc.watch.push(state(2, EMPTY));
        until(|| pcsc.watch.log().len() >= 3).await;
        assert_eq!(events(&seen, 2).await, [DriverEvent::CardRemoved(0)]);
        channel.close(false).await;
    });
}

#[test]
fn the_watch_never_holds_up_a_command_and_closing_cancels_it() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        pcsc.watch.push(state(1, PRESENT));
        let channel = open(&pcsc).await;
        until(|| pcsc.watch.log().len() >= 2).await;
        assert_eq!(pcsc.watch.log(), ["wait R 00000000", "wait R 00010020"]);
        // The second wait is pending (no timeout in the fake): the card answers anyway.
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            channel.transmit(0, h("00 84 00 00 08"), None),
        )
        .await;
        assert_eq!(answer.unwrap().unwrap(), h("90 00"));
        channel.close(true).await;
        until(|| pcsc.watch.log().len() >= 4).await;
        assert_eq!(
            pcsc.watch.log(),
            ["wait R 00000000", "wait R 00010020", "cancel", "cancelled"]
        );
    });
}

#[test]
fn dropping_the_channel_cancels_the_watch_too() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        let channel = open(&pcsc).await;
        // No answer scripted: the first wait is pending.
        until(|| !pcsc.watch.log().is_empty()).await;
        drop(channel);
        until(|| pcsc.watch.log().contains(&"cancelled".to_owned())).await;
        assert_eq!(pcsc.watch.log(), ["wait R 00000000", "cancel", "cancelled"]);
    });
}

#[test]
fn a_card_reset_by_another_program_is_reconnected_and_the_command_fails_with_a_hint() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        let channel = open(&pcsc).await;
        *pcsc.reset.pending.lock().unwrap() = true;
        *pcsc.reset.atr.lock().unwrap() = Some(h("3B 02 14 51"));
        let e = channel
            .transmit(0, h("00 84 00 00 08"), None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Protocol);
        assert_eq!(
            e.to_string(),
            "transmit: another application reset the card"
        );
        assert!(e.hint().starts_with("Another application reset the card"));
        // The command line prints that hint, not the generic one of `protocol`.
        let cli = crate::CliError::from(e.clone());
        assert_eq!(cli.hint.as_deref(), Some(e.hint()));
        // SCardReconnect(SCARD_LEAVE_CARD): not a second reset; the new ATR is read.
        assert_eq!(
            pcsc.log(),
            [
                "connect R",
                "begin",
                "transmit 00 84 00 00 08",
                "reconnect leave"
            ]
        );
        assert_eq!(CardChannel::atr(&channel, 0), Some(h("3B 02 14 51")));
        // The connection works again.
        let answer = channel.transmit(0, h("00 84 00 00 08"), None).await;
        assert_eq!(answer.unwrap(), h("90 00"));
        channel.close(true).await;
    });
}

#[test]
fn a_reset_by_another_program_seen_by_status_is_reconnected_too() {
    run(async {
        let pcsc = FakePcsc::new(vec![vec![reader("R", true)]], None);
        let channel = open(&pcsc).await;
        *pcsc.reset.pending.lock().unwrap() = true;
        *pcsc.reset.atr.lock().unwrap() = Some(h("3B 02 14 52"));
        let e = channel.status(0).await.unwrap_err();
        assert_eq!(e.to_string(), "status: another application reset the card");
        assert_eq!(pcsc.log().last().unwrap(), "reconnect leave");
        let now = channel.status(0).await.unwrap();
        assert_eq!(now.atr, Some(h("3B 02 14 52")));
        channel.close(true).await;
    });
}
