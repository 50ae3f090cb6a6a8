//! The async driver natively, against a scripted USB device and virtual time: open and
//! claim, the errors of each USB call, a read that outlives its operation, split and
//! coalesced transfers, stalls, unplugging, interrupt events, close.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use card_relay::channel::CardChannel;
use card_relay::driver::sync::{race, Either};
use card_relay::driver::usb::{UsbError, UsbErrorKind};
use card_relay::driver::{CcidDriver, DriverError, DriverEvent, ErrorCode};
use card_relay::proto::ccid::{
    ClockStatus, IccStatus, InterruptMessage, PcToRdr, RdrToPc, RdrToPcDataBlock,
    RdrToPcNotifySlotChange, RdrToPcParameters, RdrToPcSlotStatus, SlotState,
};
use card_relay::proto::descriptor::ExchangeLevel;
use card_relay::proto::hex::h;
use card_relay::reader::{PowerOn, PoweredOn, Status, Transmit};
use card_relay::sim::profile::ReaderProfile;
use support::{block_on, cmd, FakeUsb, VirtualClock};

const ATR: &str = "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA";

fn dump(name: &str) -> String {
    std::fs::read_to_string(card_relay::sim::profile::corpus_dir().join(name)).expect("reader dump")
}

/// ACS ACR1252: extended APDU level, automatic parameters, interrupt endpoint.
fn acr1252_config() -> Vec<u8> {
    ReaderProfile::parse(&dump("ACS_ACR1252_Reader.txt"))
        .expect("profile")
        .configuration_bytes()
        .expect("configuration")
}

fn ok_block(cmd: &PcToRdr, data: Vec<u8>) -> Vec<u8> {
    RdrToPc::DataBlock(RdrToPcDataBlock {
        slot: cmd.slot(),
        seq: cmd.seq(),
        state: SlotState::ok(IccStatus::PresentActive),
        chain_parameter: 0,
        data,
    })
    .encode()
}

/// A card behind an APDU-level reader: ATR on power on, GET CHALLENGE gives Le bytes.
fn card(out: &[u8]) -> Vec<Vec<u8>> {
    let cmd = PcToRdr::decode(out).expect("valid command");
    let answer = match &cmd {
        PcToRdr::IccPowerOn(_) => ok_block(&cmd, h(ATR)),
        PcToRdr::XfrBlock(x) => match x.data.as_slice() {
            [0x00, 0x84, 0x00, 0x00, le] => {
                let mut r: Vec<u8> = (0..*le).collect();
                r.extend([0x90, 0x00]);
                ok_block(&cmd, r)
            }
            _ => ok_block(&cmd, h("6D 00")),
        },
        PcToRdr::SetParameters(p) => RdrToPc::Parameters(RdrToPcParameters {
            slot: cmd.slot(),
            seq: cmd.seq(),
            state: SlotState::ok(IccStatus::PresentActive),
            parameters: p.parameters.clone(),
        })
        .encode(),
        PcToRdr::GetSlotStatus(_) | PcToRdr::Abort(_) => RdrToPc::SlotStatus(RdrToPcSlotStatus {
            slot: cmd.slot(),
            seq: cmd.seq(),
            state: SlotState::ok(IccStatus::PresentActive),
            clock_status: ClockStatus::from_byte(0),
        })
        .encode(),
        other => panic!("unexpected command {other:?}"),
    };
    vec![answer]
}

fn open(usb: FakeUsb, clock: &VirtualClock) -> Result<CcidDriver<FakeUsb>, DriverError> {
    block_on(clock, CcidDriver::open(usb, Rc::new(clock.clone())))
}

fn transmit(
    driver: &CcidDriver<FakeUsb>,
    clock: &VirtualClock,
    apdu: &str,
) -> Result<Vec<u8>, DriverError> {
    block_on(
        clock,
        driver.run(
            Transmit {
                slot: 0,
                command: cmd(h(apdu)),
            },
            None,
        ),
    )
}

/// Powers the card in slot 0 on.
fn power_on<U: card_relay::driver::usb::UsbTransport + 'static>(
    driver: &CcidDriver<U>,
    clock: &VirtualClock,
) {
    let on = block_on(
        clock,
        driver.run(
            PowerOn {
                slot: 0,
                protocol: None,
            },
            None,
        ),
    );
    assert!(matches!(on, Ok(PoweredOn { .. })), "{on:?}");
}

fn powered(usb: &FakeUsb, clock: &VirtualClock) -> CcidDriver<FakeUsb> {
    let driver = open(usb.clone(), clock).expect("open");
    power_on(&driver, clock);
    driver
}

/// Issue 17: one place decides "power on first", `CardChannel::power_on` (the JavaScript
/// API's transmit and verifyPin, the update loops and the agent go through it): a card that
/// is not active gets PC_to_RDR_IccPowerOn, an active one gets nothing. The typed
/// `CcidDriver::power_on` is the command itself: on an active card a warm reset (CCID
/// §6.1.1).
#[test]
fn power_on_first_sends_nothing_to_an_active_card() {
    let clock = VirtualClock::default();
    let usb = FakeUsb::new(acr1252_config(), Box::new(card));
    let driver = open(usb.clone(), &clock).expect("open");
    let power_ons = || {
        let log = &usb.0.borrow().out_log;
        log.iter().filter(|m| m[0] == 0x62).count()
    };
    let atr = block_on(&clock, CardChannel::power_on(&driver, 0, None)).expect("power on");
    assert_eq!((atr.clone(), power_ons()), (h(ATR), 1));
    let again = block_on(&clock, CardChannel::power_on(&driver, 0, None));
    assert_eq!((again, power_ons()), (Ok(atr.clone()), 1));
    let warm = block_on(&clock, driver.power_on(0, None)).expect("warm reset");
    assert_eq!((warm.atr, power_ons()), (atr, 2));
}

/// Issue 18: the read of a message's answer is issued together with the write (every
/// PC_to_RDR message is answered on bulk-IN, CCID 1.1 §5.1), not after the write completes:
/// each APDU's read starts while its bulk-OUT transfer is still under way.
#[test]
fn the_answer_is_read_while_the_command_is_written() {
    let clock = VirtualClock::default();
    let usb = FakeUsb::new(acr1252_config(), Box::new(card));
    let driver = powered(&usb, &clock);
    let written = usb.0.borrow().out_log.len();
    let r = transmit(&driver, &clock, "00 84 00 00 08");
    assert!(r.is_ok(), "{r:?}");
    let s = usb.0.borrow();
    assert_eq!(s.out_log.len(), written + 1, "one message for the APDU");
    assert_eq!(s.out_completed, written + 1);
    assert!(
        s.reads_issued.contains(&(written + 1, written)),
        "no read issued before the write completed: {:?}",
        s.reads_issued
    );
}

#[test]
fn open_reads_the_descriptor_and_claims_the_ccid_interface() {
    let clock = VirtualClock::default();
    let usb = FakeUsb::new(acr1252_config(), Box::new(card));
    let driver = open(usb.clone(), &clock).expect("open");
    let s = usb.0.borrow();
    assert!(s.opened);
    assert_eq!(s.configuration, Some(1));
    assert_eq!(s.claimed, vec![0]);
    assert_eq!(driver.exchange_level(), ExchangeLevel::ExtendedApdu);
    assert_eq!(driver.description().name(), "Fake Reader");
    assert_eq!(driver.description().descriptor().max_message_length(), 522);
}

#[test]
fn power_on_and_transmit() {
    let clock = VirtualClock::default();
    let usb = FakeUsb::new(acr1252_config(), Box::new(card));
    let driver = powered(&usb, &clock);
    assert_eq!(driver.atr(0), Some(h(ATR)));
    let r = transmit(&driver, &clock, "00 84 00 00 08");
    assert_eq!(r, Ok(h("00 01 02 03 04 05 06 07 90 00")));
}

#[test]
fn claim_and_open_errors_are_classified_and_the_device_closed() {
    let cases = [
        (
            "claim",
            UsbError::new(
                UsbErrorKind::Security,
                "The requested interface implements a protected class.",
            ),
            ErrorCode::ProtectedInterface,
        ),
        (
            "claim",
            UsbError::new(UsbErrorKind::Network, "Unable to claim interface."),
            ErrorCode::DeviceBusy,
        ),
        (
            "open",
            UsbError::new(UsbErrorKind::Security, "Access denied."),
            ErrorCode::PermissionDenied,
        ),
    ];
    for (call, error, code) in cases {
        let clock = VirtualClock::default();
        let usb = FakeUsb::new(acr1252_config(), Box::new(card));
        if call == "claim" {
            usb.0.borrow_mut().claim_error = Some(error);
        } else {
            usb.0.borrow_mut().open_error = Some(error);
        }
        let err = open(usb.clone(), &clock).expect_err("must fail");
        assert_eq!(err.code(), code, "{err}");
        if call == "claim" {
            assert!(
                usb.0.borrow().closed,
                "the device is closed again after a failed claim"
            );
        }
    }
}

#[test]
fn a_read_that_outlived_its_operation_serves_the_next_one() {
    let clock = VirtualClock::default();
    let silent = Rc::new(RefCell::new(false));
    let late: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let (s2, l2) = (Rc::clone(&silent), Rc::clone(&late));
    let usb = FakeUsb::new(
        acr1252_config(),
        Box::new(move |out| {
            let answers = card(out);
            if *s2.borrow() {
                // Hold the answer back: it arrives after the timeout.
                l2.borrow_mut().extend(answers);
                return Vec::new();
            }
            answers
        }),
    );
    let driver = powered(&usb, &clock);
    *silent.borrow_mut() = true;
    let started = clock.now_ms();
    let r = transmit(&driver, &clock, "00 84 00 00 04");
    assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::Timeout));
    assert!(
        clock.now_ms() - started >= 3_000,
        "the reader waits at least the exchange timeout"
    );
    // The late answer lands; the next operation's read must not be queued behind a lost one.
    *silent.borrow_mut() = false;
    usb.0
        .borrow_mut()
        .bulk_in
        .extend(late.borrow_mut().drain(..));
    let r = transmit(&driver, &clock, "00 84 00 00 02");
    assert_eq!(r, Ok(h("00 01 90 00")));
}

#[test]
fn split_and_coalesced_transfers() {
    let clock = VirtualClock::default();
    let previous: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
    let prev2 = Rc::clone(&previous);
    let usb = FakeUsb::new(
        acr1252_config(),
        Box::new(move |out| {
            let answer = card(out).remove(0);
            // A duplicate of the previous answer and this one in one transfer, then the
            // whole thing cut into 7-byte transfers.
            let mut stream = prev2
                .borrow_mut()
                .replace(answer.clone())
                .unwrap_or_default();
            stream.extend(answer);
            stream.chunks(7).map(<[u8]>::to_vec).collect()
        }),
    );
    let driver = powered(&usb, &clock);
    for le in [1u8, 16, 200] {
        let r = transmit(&driver, &clock, &format!("00 84 00 00 {le:02X}"));
        let Ok(data) = r else { panic!("{r:?}") };
        assert_eq!(data.len(), usize::from(le) + 2);
    }
}

#[test]
fn a_stalled_endpoint_is_cleared_and_the_reader_stays_usable() {
    let clock = VirtualClock::default();
    let usb = FakeUsb::new(acr1252_config(), Box::new(card));
    let driver = powered(&usb, &clock);
    usb.0.borrow_mut().stall_next_in = true;
    let r = transmit(&driver, &clock, "00 84 00 00 04");
    assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::Protocol));
    assert_eq!(usb.0.borrow().halts_cleared, 1);
    let r = transmit(&driver, &clock, "00 84 00 00 01");
    assert_eq!(r, Ok(h("00 90 00")));
}

#[test]
fn unplugging_fails_the_operation_and_every_later_one() {
    let clock = VirtualClock::default();
    let usb = FakeUsb::new(acr1252_config(), Box::new(card));
    let driver = powered(&usb, &clock);
    let events: Rc<RefCell<Vec<DriverEvent>>> = Rc::default();
    let e2 = Rc::clone(&events);
    driver.set_event_sink(move |ev| e2.borrow_mut().push(ev));
    // The answer never comes; the device goes away while the driver waits.
    usb.0.borrow_mut().responder = Some(Box::new(|_: &[u8]| Vec::new()));
    let op = driver.run(
        Transmit {
            slot: 0,
            command: cmd(h("00 84 00 00 04")),
        },
        None,
    );
    let script = Box::pin(async {
        usb.unplug();
    });
    let mut op = Box::pin(op);
    let outcome = block_on(&clock, async {
        // Start the operation, then unplug once it waits for the answer.
        match race(&mut op, script).await {
            Either::Left(r) => r,
            Either::Right(()) => op.await,
        }
    });
    assert_eq!(outcome.map_err(|e| e.code()), Err(ErrorCode::Disconnected));
    assert_eq!(events.borrow().as_slice(), &[DriverEvent::Disconnected]);
    assert!(!driver.is_usable());
    let r = transmit(&driver, &clock, "00 84 00 00 01");
    assert_eq!(r, Err(DriverError::Disconnected));
}

#[test]
fn interrupt_events_reach_the_sink_and_close_releases() {
    let clock = VirtualClock::default();
    let usb = FakeUsb::new(acr1252_config(), Box::new(card));
    let driver = powered(&usb, &clock);
    let events: Rc<RefCell<Vec<DriverEvent>>> = Rc::default();
    let e2 = Rc::clone(&events);
    driver.set_event_sink(move |ev| e2.borrow_mut().push(ev));
    let removed =
        InterruptMessage::NotifySlotChange(RdrToPcNotifySlotChange::new(&[(false, true)]));
    let inserted =
        InterruptMessage::NotifySlotChange(RdrToPcNotifySlotChange::new(&[(true, true)]));
    usb.interrupt(removed.encode());
    usb.interrupt(inserted.encode());
    let watch = Box::pin(driver.watch());
    let stop = Box::pin(async {
        // Let the watcher drain both messages, then close the driver.
        card_relay::driver::usb::Clock::sleep(&clock, 10).await;
        driver.close().await;
        usb.unplug();
    });
    block_on(&clock, async {
        let _ = race(watch, stop).await;
    });
    assert_eq!(
        events.borrow().as_slice(),
        &[DriverEvent::CardRemoved(0), DriverEvent::CardInserted(0)]
    );
    let s = usb.0.borrow();
    assert_eq!(s.released, vec![0]);
    assert!(s.closed);
    drop(s);
    assert_eq!(
        transmit(&driver, &clock, "00 84 00 00 01"),
        Err(DriverError::Closed)
    );
}

/// ACS ACR3901U: short APDU level.
fn acr3901_config() -> Vec<u8> {
    ReaderProfile::parse(&dump("ACS_ACR3901U_ICC_Reader.txt"))
        .expect("profile")
        .configuration_bytes()
        .expect("configuration")
}

#[test]
fn a_short_apdu_reader_gets_the_short_encoding() {
    let clock = VirtualClock::default();
    let usb = FakeUsb::new(acr3901_config(), Box::new(card));
    let driver = powered(&usb, &clock);
    // Extended form, but Ne = 16 fits a short Le: it travels as 00 84 00 00 10.
    let r = transmit(&driver, &clock, "00 84 00 00 00 00 10");
    let Ok(data) = r else { panic!("{r:?}") };
    assert_eq!(data.len(), 18);
    let last = usb.0.borrow().out_log.last().cloned().expect("a command");
    assert_eq!(&last[10..], h("00 84 00 00 10").as_slice());
    // Ne = 512 needs extended fields: refused before anything is sent.
    let sent = usb.0.borrow().out_log.len();
    let r = transmit(&driver, &clock, "00 84 00 00 00 02 00");
    assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::InvalidArgument));
    assert_eq!(usb.0.borrow().out_log.len(), sent);
}

#[test]
fn the_status_of_an_empty_slot_is_an_answer_not_an_error() {
    let clock = VirtualClock::default();
    // Readers answer GetSlotStatus for an empty slot with "failed, ICC_MUTE, absent".
    let usb = FakeUsb::new(
        acr1252_config(),
        Box::new(|out: &[u8]| {
            let cmd = PcToRdr::decode(out).expect("command");
            vec![RdrToPc::SlotStatus(RdrToPcSlotStatus {
                slot: cmd.slot(),
                seq: cmd.seq(),
                state: SlotState::failed(
                    IccStatus::Absent,
                    card_relay::proto::ccid::SlotError::IccMute,
                ),
                clock_status: ClockStatus::from_byte(0),
            })
            .encode()]
        }),
    );
    let driver = open(usb, &clock).expect("open");
    let r = block_on(&clock, driver.run(Status { slot: 0 }, None));
    assert_eq!(r, Ok(IccStatus::Absent));
    assert_eq!(driver.card_present(0), Some(false));
}

#[test]
fn an_abandoned_t1_exchange_resynchronises_before_the_next_apdu() {
    use card_relay::proto::t1::{T1Config, T1Event, T1};
    let mut t1 = T1::new(T1Config::default());
    let first = t1.transmit(&h("00 84 00 00 08")).expect("transmit");
    assert_eq!(first.block[..2], [0x00, 0x00], "I(0) block");
    // The caller timed out: the card may have seen the block or not.
    t1.abandon();
    let next = t1
        .transmit(&h("00 84 00 00 04"))
        .expect("transmit after abandon");
    assert_eq!(next.block, h("00 C0 00 C0"), "S(RESYNCH request) first");
    match t1.on_block(&h("00 E0 00 E0")).expect("resynch response") {
        T1Event::Send(send) => {
            assert_eq!(send.block[..3], [0x00, 0x00, 0x05], "then the APDU as I(0)")
        }
        other => panic!("{other:?}"),
    }
}

mod update {
    use super::*;
    use card_relay::driver::sync::Abort;
    use card_relay::driver::update::{card_update, HttpClient, HttpError, Silent, UpdateOptions};
    use card_relay::driver::usb::Clock;
    use card_relay::driver::usb::LocalBoxFuture;
    use card_relay::session::{Dialect, HttpRequest, HttpResponse};
    use std::collections::VecDeque;

    /// A scripted server: answers POSTs in order and records their URLs.
    struct Scripted {
        answers: RefCell<VecDeque<HttpResponse>>,
        urls: RefCell<Vec<String>>,
    }

    impl HttpClient for Scripted {
        fn post(
            &self,
            request: HttpRequest,
            _timeout_ms: u64,
        ) -> LocalBoxFuture<Result<HttpResponse, HttpError>> {
            self.urls.borrow_mut().push(request.url);
            let answer = self.answers.borrow_mut().pop_front();
            Box::pin(std::future::ready(
                answer.ok_or(HttpError::Network("no more answers".into())),
            ))
        }
    }

    #[test]
    fn a_next_uri_to_another_origin_is_not_followed() {
        // The plain case, and next URIs whose origin a strict reader cannot read but that a
        // WHATWG URL parser (the one `fetch` uses) sends to evil.example: a backslash for the
        // slashes, a scheme without "//", a percent-encoded host (URL §4.4, §3.5).
        for next in [
            "https://evil.example/steal",
            "https:\\\\evil.example/steal",
            "https:evil.example/steal",
            "https://%65vil.example/steal",
            "http:evil.example",
        ] {
            next_uri_is_refused(next);
        }
    }

    fn next_uri_is_refused(next: &str) {
        let clock = VirtualClock::default();
        let usb = FakeUsb::new(acr1252_config(), Box::new(card));
        let driver = powered(&usb, &clock);
        let server = Scripted {
            answers: RefCell::new(VecDeque::from([HttpResponse {
                status: 200,
                headers: vec![
                    (
                        "X-Admin-Protocol".into(),
                        "globalplatform-remote-admin/1.0".into(),
                    ),
                    ("X-Admin-Next-URI".into(), next.into()),
                ],
                body: h("AA 07 22 05 00 84 00 00 08"),
            }])),
            urls: RefCell::default(),
        };
        let mut options = UpdateOptions::new("https://ram.example/admin");
        options.dialect = Dialect::GlobalPlatform;
        let result = block_on(
            &clock,
            card_update(&driver, &server, &clock, &options, &Silent, None),
        );
        let err = result.expect_err(next);
        assert_eq!(err.code(), ErrorCode::NotApproved, "{next}: {err}");
        assert_eq!(
            server.urls.borrow().as_slice(),
            ["https://ram.example/admin".to_owned()],
            "{next}"
        );
    }

    /// A server that answers the first POST and never any later one, as an HTTP client that
    /// does not enforce its own timeout would; it records when each POST came, with its
    /// bound.
    struct AnswersOnce {
        clock: VirtualClock,
        first: RefCell<Option<HttpResponse>>,
        seen: RefCell<Vec<(u64, HttpRequest, u64)>>,
    }

    impl HttpClient for AnswersOnce {
        fn post(
            &self,
            request: HttpRequest,
            timeout_ms: u64,
        ) -> LocalBoxFuture<Result<HttpResponse, HttpError>> {
            let now = self.clock.now_ms();
            self.seen.borrow_mut().push((now, request, timeout_ms));
            match self.first.borrow_mut().take() {
                Some(answer) => Box::pin(std::future::ready(Ok(answer))),
                None => Box::pin(std::future::pending()),
            }
        }
    }

    #[test]
    fn an_abort_ends_the_update_when_the_cancel_reply_is_never_answered() {
        // The loop's guarantee "every HTTP exchange is bounded by timeout_ms" holds for the
        // OpenSCDP cancel reply too (5 s at most, plus the loop's own second): an abort ends
        // the update even when the server, and a client that does not bound its requests,
        // never answer it.
        let clock = VirtualClock::default();
        let usb = FakeUsb::new(acr1252_config(), Box::new(card));
        let driver = powered(&usb, &clock);
        let server = AnswersOnce {
            clock: clock.clone(),
            first: RefCell::new(Some(HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: h("AA 07 22 05 00 84 00 00 08"),
            })),
            seen: RefCell::default(),
        };
        let options = UpdateOptions::new("https://ram.example/rt/test");
        let abort = Abort::new();
        let start = clock.now_ms();
        let update = card_update(&driver, &server, &clock, &options, &Silent, Some(&abort));
        let timer = clock.clone();
        let fire = async {
            timer.sleep(10_000).await;
            abort.abort();
            std::future::pending::<()>().await
        };
        let result = match block_on(&clock, race(Box::pin(update), Box::pin(fire))) {
            Either::Left(r) => r,
            Either::Right(()) => unreachable!("the trigger never ends"),
        };
        assert_eq!(result.expect_err("aborted").code(), ErrorCode::Aborted);
        let seen = server.seen.take();
        // The initiation, the reply the abort cut short, the cancel reply.
        assert_eq!(seen.len(), 3, "{seen:?}");
        let (at, cancel, bound) = &seen[2];
        assert_eq!(at - start, 10_000);
        assert_eq!(*bound, 5_000);
        let text = String::from_utf8_lossy(&cancel.body);
        assert!(text.contains("Session canceled"), "{text}");
        assert!(clock.now_ms() - start <= 10_000 + 5_000 + 1_000);
    }

    /// A server that answers (or fails) POSTs in order and records when each came, with
    /// what: the virtual time, the URL, the headers and the body.
    struct Recording {
        clock: VirtualClock,
        answers: RefCell<VecDeque<Result<HttpResponse, HttpError>>>,
        seen: RefCell<Vec<(u64, HttpRequest)>>,
    }

    impl HttpClient for Recording {
        fn post(
            &self,
            request: HttpRequest,
            _timeout_ms: u64,
        ) -> LocalBoxFuture<Result<HttpResponse, HttpError>> {
            self.seen.borrow_mut().push((self.clock.now_ms(), request));
            let answer = self.answers.borrow_mut().pop_front();
            Box::pin(std::future::ready(
                answer.unwrap_or(Err(HttpError::Network("no more answers".into()))),
            ))
        }
    }

    #[derive(Default)]
    struct Lines(RefCell<Vec<String>>);

    impl card_relay::driver::update::UpdateObserver for Lines {
        fn trace(&self, line: &str) {
            self.0.borrow_mut().push(line.to_owned());
        }
    }

    fn gp_script(next: &str, extra: &[(&str, &str)]) -> HttpResponse {
        let mut headers = vec![
            (
                "X-Admin-Protocol".to_owned(),
                "globalplatform-remote-admin/1.0".to_owned(),
            ),
            ("X-Admin-Next-URI".to_owned(), next.to_owned()),
        ];
        headers.extend(
            extra
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        HttpResponse {
            status: 200,
            headers,
            body: h("AA 07 22 05 00 84 00 00 08"),
        }
    }

    fn no_content() -> HttpResponse {
        HttpResponse {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn network() -> Result<HttpResponse, HttpError> {
        Err(HttpError::Network("connection reset".into()))
    }

    /// How a GP run ended, the POSTs the server saw (with their virtual time), the trace.
    type GpRun = (
        Result<card_relay::driver::update::UpdateResult, card_relay::driver::update::UpdateError>,
        Vec<(u64, HttpRequest)>,
        Vec<String>,
    );

    fn run_gp(answers: Vec<Result<HttpResponse, HttpError>>, url: &str) -> GpRun {
        let clock = VirtualClock::default();
        let usb = FakeUsb::new(acr1252_config(), Box::new(card));
        let driver = powered(&usb, &clock);
        let server = Recording {
            clock: clock.clone(),
            answers: RefCell::new(answers.into()),
            seen: RefCell::default(),
        };
        let mut options = UpdateOptions::new(url);
        options.dialect = Dialect::GlobalPlatform;
        let lines = Lines::default();
        let result = block_on(
            &clock,
            card_update(&driver, &server, &clock, &options, &lines, None),
        );
        let seen = server.seen.take();
        (result, seen, lines.0.take())
    }

    fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn gp_resume_repeats_the_post_after_1_then_2_seconds() {
        // GP Amd B: a POST that fails at the network level inside a session goes again,
        // same body, same URI, with X-Admin-Resume: true, after 1, 2 and 4 s.
        let (result, seen, lines) = run_gp(
            vec![
                Ok(gp_script("/admin/next", &[])),
                network(),
                network(),
                Ok(no_content()),
            ],
            "https://ram.example/admin",
        );
        let result = result.expect("resumed");
        assert_eq!((result.apdus, result.round_trips), (1, 2));
        assert_eq!(seen.len(), 4);
        let t0 = seen[1].0;
        let times: Vec<u64> = seen[1..].iter().map(|(t, _)| t - t0).collect();
        assert_eq!(times, [0, 1_000, 3_000]);
        assert_eq!(header(&seen[1].1, "X-Admin-Resume"), None);
        for (_, request) in &seen[2..] {
            assert_eq!(request.url, "https://ram.example/admin/next");
            assert_eq!(request.body, seen[1].1.body);
            assert_eq!(header(request, "X-Admin-Resume"), Some("true"));
            assert_eq!(
                header(request, "X-Admin-Script-Status"),
                header(&seen[1].1, "X-Admin-Script-Status")
            );
        }
        assert!(!seen[1].1.body.is_empty());
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("X-Admin-Resume"))
                .count(),
            2
        );
    }

    #[test]
    fn gp_resume_gives_up_after_three_with_network_error() {
        let (result, seen, _) = run_gp(
            vec![
                Ok(gp_script("/admin/next", &[])),
                network(),
                network(),
                network(),
                network(),
                Ok(no_content()),
            ],
            "https://ram.example/admin",
        );
        let err = result.expect_err("gives up");
        assert_eq!(err.code(), ErrorCode::NetworkError, "{err}");
        let t0 = seen[1].0;
        let times: Vec<u64> = seen[1..].iter().map(|(t, _)| t - t0).collect();
        assert_eq!(times, [0, 1_000, 3_000, 7_000]);
    }

    #[test]
    fn gp_first_post_failing_is_not_resumed() {
        // No session exists before the server answered once: nothing to resume.
        let (result, seen, _) = run_gp(vec![network()], "https://ram.example/admin");
        assert_eq!(result.expect_err("fails").code(), ErrorCode::NetworkError);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn a_next_uri_with_the_default_port_stays_on_the_origin() {
        // https://ram.example:443 is https://ram.example (RFC 6454, WHATWG URL origin).
        let (result, seen, _) = run_gp(
            vec![
                Ok(gp_script("https://RAM.example:443/admin/next", &[])),
                Ok(no_content()),
            ],
            "https://ram.example/admin",
        );
        result.expect("followed");
        assert_eq!(seen[1].1.url, "https://RAM.example:443/admin/next");
    }

    #[test]
    fn targeted_application_is_traced_and_returned() {
        let target = "//aid/A000000151/000000";
        let (result, _, lines) = run_gp(
            vec![
                Ok(gp_script(
                    "/admin/next",
                    &[("X-Admin-Targeted-Application", target)],
                )),
                Ok(no_content()),
            ],
            "https://ram.example/admin",
        );
        let result = result.expect("done");
        assert_eq!(result.targeted_application.as_deref(), Some(target));
        assert!(
            lines.contains(&format!("X-Admin-Targeted-Application: {target}")),
            "{lines:?}"
        );
    }

    /// Issue 17, one HTTP timeout: the update loop bounds every exchange by `timeout_ms`,
    /// exactly, whatever the client does (the browser's fetch client keeps no timer of its
    /// own); the OpenSCDP "no answer in time" report is bounded the same way.
    #[test]
    fn the_loop_owns_the_one_http_timeout() {
        let clock = VirtualClock::default();
        let usb = FakeUsb::new(acr1252_config(), Box::new(card));
        let driver = powered(&usb, &clock);
        let server = AnswersOnce {
            clock: clock.clone(),
            first: RefCell::new(None),
            seen: RefCell::default(),
        };
        let mut options = UpdateOptions::new("https://ram.example/rt/test");
        options.timeout_ms = 3_000;
        let start = clock.now_ms();
        let result = block_on(
            &clock,
            card_update(&driver, &server, &clock, &options, &Silent, None),
        );
        let err = result.expect_err("no answer");
        assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
        let seen: Vec<(u64, u64)> = server
            .seen
            .take()
            .iter()
            .map(|(at, _, bound)| (*at, *bound))
            .collect();
        assert_eq!(seen, [(start, 3_000), (start + 3_000, 3_000)]);
        assert_eq!(clock.now_ms(), start + 6_000);
    }
}

/// One command per slot (issue 13, CCID §5.2.5): the answers a scripted reader gives, with
/// the GET CHALLENGE of `held` held back until `release` (or forever).
mod one_command_per_slot {
    use super::*;
    use card_relay::driver::usb::{ControlSetup, Recipient, RequestType};
    use card_relay::proto::ccid::SlotError;

    /// GET CHALLENGE for 4 bytes, the command the slow card is slow on.
    const SLOW: &str = "00 84 00 00 04";

    fn is_slow(cmd: &PcToRdr) -> bool {
        matches!(cmd, PcToRdr::XfrBlock(x) if x.data == h(SLOW))
    }

    fn command_types(usb: &FakeUsb) -> Vec<u8> {
        usb.0.borrow().out_log.iter().map(|m| m[0]).collect()
    }

    #[test]
    fn after_a_timeout_the_next_command_waits_for_the_late_answer() {
        let clock = VirtualClock::default();
        let usb_handle: Rc<RefCell<Option<FakeUsb>>> = Rc::default();
        let late = Rc::clone(&usb_handle);
        let at = clock.clone();
        let usb = FakeUsb::new(
            acr1252_config(),
            Box::new(move |out| {
                let cmd = PcToRdr::decode(out).expect("command");
                if is_slow(&cmd) {
                    // The card takes 5 s: longer than the exchange timeout.
                    let answer = card(out).remove(0);
                    if let Some(usb) = late.borrow().as_ref() {
                        usb.answer_at(at.now_ms() + 5_000, answer);
                    }
                    return Vec::new();
                }
                card(out)
            }),
        )
        .with_clock(&clock);
        *usb_handle.borrow_mut() = Some(usb.clone());
        let driver = powered(&usb, &clock);
        let started = clock.now_ms();
        let r = transmit(&driver, &clock, SLOW);
        assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::Timeout));
        let failed_at = clock.now_ms();
        assert!(
            failed_at < started + 5_000,
            "the timeout comes before the answer"
        );
        assert!(driver.owed().is_some(), "the reader still owes the answer");
        let r = transmit(&driver, &clock, "00 84 00 00 02");
        assert_eq!(r, Ok(h("00 01 90 00")));
        let s = usb.0.borrow();
        let sent_at = *s.out_times.last().expect("a command");
        assert!(
            sent_at >= started + 5_000,
            "the next command waited for the late answer: sent at {sent_at}, answer at {}",
            started + 5_000
        );
        assert!(s.control_out.is_empty(), "no abort was needed");
        assert_eq!(*s.out_log.last().unwrap(), {
            let mut m = h("6F 05 00 00 00 00 00 00 00 00 00 84 00 00 02");
            m[6] = s.out_log.last().unwrap()[6];
            m
        });
    }

    /// A reader that keeps the slot busy until it is aborted: the CCID abort sequence.
    fn busy_until_aborted(refuse_class_request: bool) {
        let clock = VirtualClock::default();
        let held: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
        let h2 = Rc::clone(&held);
        let usb = FakeUsb::new(
            acr1252_config(),
            Box::new(move |out| {
                let cmd = PcToRdr::decode(out).expect("command");
                if is_slow(&cmd) {
                    *h2.borrow_mut() = Some(out.to_vec());
                    return Vec::new();
                }
                if let PcToRdr::Abort(_) = cmd {
                    // CCID §5.3.1: the aborted command fails with CMD_ABORTED, then the
                    // abort is answered.
                    let mut answers = Vec::new();
                    if let Some(old) = h2.borrow_mut().take() {
                        let old = PcToRdr::decode(&old).expect("held command");
                        answers.push(
                            RdrToPc::DataBlock(RdrToPcDataBlock {
                                slot: old.slot(),
                                seq: old.seq(),
                                state: SlotState::failed(
                                    IccStatus::PresentActive,
                                    SlotError::CmdAborted,
                                ),
                                chain_parameter: 0,
                                data: Vec::new(),
                            })
                            .encode(),
                        );
                    }
                    answers.extend(card(out));
                    return answers;
                }
                card(out)
            }),
        )
        .with_clock(&clock);
        if refuse_class_request {
            usb.0.borrow_mut().control_out_error = Some(UsbError::new(
                UsbErrorKind::Security,
                "The requested interface implements a protected class.",
            ));
        }
        let driver = powered(&usb, &clock);
        let r = transmit(&driver, &clock, SLOW);
        assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::Timeout));
        let failed_at = clock.now_ms();
        let r = transmit(&driver, &clock, "00 84 00 00 01");
        assert_eq!(r, Ok(h("00 90 00")));
        let s = usb.0.borrow();
        let types: Vec<u8> = s.out_log.iter().map(|m| m[0]).collect();
        assert_eq!(
            &types[types.len() - 3..],
            &[0x6F, 0x72, 0x6F],
            "the slow command, PC_to_RDR_Abort, then the next command: {types:02X?}"
        );
        let abort = &s.out_log[s.out_log.len() - 2];
        let (slot, seq) = (abort[5], abort[6]);
        assert_eq!(s.control_out.len(), 1, "one class request ABORT");
        let (setup, at) = s.control_out[0];
        assert_eq!(
            setup,
            ControlSetup {
                request_type: RequestType::Class,
                recipient: Recipient::Interface,
                request: 0x01,
                value: u16::from(seq) << 8 | u16::from(slot),
                index: 0,
            },
            "ABORT carries the bSeq and bSlot of PC_to_RDR_Abort"
        );
        let abort_sent = s.out_times[s.out_times.len() - 2];
        assert!(at <= abort_sent, "the class request goes first");
        assert!(
            abort_sent >= failed_at + 3_000,
            "the answer was awaited first, for the next operation's own timeout"
        );
        drop(s);
        assert_eq!(driver.owed(), None);
    }

    #[test]
    fn a_reader_that_keeps_the_slot_busy_is_aborted_before_the_next_command() {
        busy_until_aborted(false);
    }

    #[test]
    fn a_refused_abort_request_still_sends_pc_to_rdr_abort() {
        busy_until_aborted(true);
    }

    #[test]
    fn a_reader_that_never_frees_the_slot_gets_no_new_command() {
        let clock = VirtualClock::default();
        let hung = Rc::new(RefCell::new(false));
        let h2 = Rc::clone(&hung);
        let usb = FakeUsb::new(
            acr1252_config(),
            Box::new(move |out| if *h2.borrow() { Vec::new() } else { card(out) }),
        )
        .with_clock(&clock);
        let driver = powered(&usb, &clock);
        *hung.borrow_mut() = true;
        let r = transmit(&driver, &clock, SLOW);
        assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::Timeout));
        let r = transmit(&driver, &clock, "00 84 00 00 01");
        assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::Timeout));
        let types = command_types(&usb);
        assert_eq!(
            &types[types.len() - 2..],
            &[0x6F, 0x72],
            "only the abort went out after the slow command: {types:02X?}"
        );
        // The reader recovers: it answers the abort late; the next operation goes on.
        *hung.borrow_mut() = false;
        let abort = usb.0.borrow().out_log.last().cloned().expect("abort");
        usb.0.borrow_mut().bulk_in.extend(card(&abort));
        let r = transmit(&driver, &clock, "00 84 00 00 01");
        assert_eq!(r, Ok(h("00 90 00")));
    }

    /// The simulator's `readerStall` fault: commands are taken but not answered; when the
    /// stall ends, a command that came while another ran on its slot gets CMD_SLOT_BUSY and
    /// an aborted one CMD_ABORTED.
    #[cfg(feature = "simulator")]
    #[test]
    fn the_simulated_reader_that_keeps_the_slot_busy() {
        use crate::simulated::{open_sim, seed_reader};
        use card_relay::sim::Fault;
        let clock = VirtualClock::default();
        let (usb, driver) = open_sim(&clock, seed_reader(), |_| {});
        power_on(&driver, &clock);
        let run = |op| block_on(&clock, driver.run(op, None));
        usb.with(|s| s.set_fault(Fault::ReaderStall(true)));
        let apdu = |a: &str| Transmit {
            slot: 0,
            command: cmd(h(a)),
        };
        let r = run(apdu("00 84 00 00 08"));
        assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::Timeout));
        let r = run(apdu("00 84 00 00 08"));
        assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::Timeout));
        assert_eq!(
            usb.with(|s| s.abort_requests().len()),
            1,
            "class request ABORT"
        );
        usb.with(|s| s.set_fault(Fault::ReaderStall(false)));
        let Ok(r) = run(apdu("00 84 00 00 08")) else {
            panic!("the slot is free again");
        };
        assert_eq!(r.len(), 10);
        // The card ran the first GET CHALLENGE (then aborted) and the last one: no
        // command reached a busy slot.
        let log = usb.with(|s| s.card_log(0));
        assert!(log.len() <= 3, "{log:02X?}");
    }
}

/// Card events and status while the card moves (issue 13 bullets 2 and 3).
mod events {
    use super::*;
    use card_relay::driver::usb::Clock;
    use card_relay::driver::STATUS_POLL_MS;

    fn removed() -> Vec<u8> {
        InterruptMessage::NotifySlotChange(RdrToPcNotifySlotChange::new(&[(false, true)])).encode()
    }

    fn slot_status(cmd: &PcToRdr, icc: IccStatus) -> Vec<u8> {
        RdrToPc::SlotStatus(RdrToPcSlotStatus {
            slot: cmd.slot(),
            seq: cmd.seq(),
            state: if icc == IccStatus::Absent {
                SlotState::failed(icc, card_relay::proto::ccid::SlotError::IccMute)
            } else {
                SlotState::ok(icc)
            },
            clock_status: ClockStatus::from_byte(0),
        })
        .encode()
    }

    fn recorder(driver: &CcidDriver<FakeUsb>) -> Rc<RefCell<Vec<DriverEvent>>> {
        let events: Rc<RefCell<Vec<DriverEvent>>> = Rc::default();
        let e2 = Rc::clone(&events);
        driver.set_event_sink(move |ev| e2.borrow_mut().push(ev));
        events
    }

    /// A reader on `clock` (the ACR1252's configuration) whose answers come from
    /// `respond(usb, command)`: besides answering, it may act on its own reader (an
    /// interrupt message, an answer that comes later). Until the reader exists, the card.
    fn reader_that_acts(
        clock: &VirtualClock,
        respond: impl Fn(&FakeUsb, &[u8]) -> Vec<Vec<u8>> + 'static,
    ) -> FakeUsb {
        let handle: Rc<RefCell<Option<FakeUsb>>> = Rc::default();
        let h2 = Rc::clone(&handle);
        let usb = FakeUsb::new(
            acr1252_config(),
            Box::new(move |out| match h2.borrow().as_ref() {
                Some(usb) => respond(usb, out),
                None => card(out),
            }),
        )
        .with_clock(clock);
        *handle.borrow_mut() = Some(usb.clone());
        usb
    }

    /// Runs `operation` while the driver's watcher runs (the watcher must not end first).
    fn while_watching<T>(
        driver: &CcidDriver<FakeUsb>,
        clock: &VirtualClock,
        operation: impl std::future::Future<Output = T>,
    ) -> T {
        let operation = Box::pin(operation);
        let watch = Box::pin(driver.watch());
        block_on(clock, async {
            match race(operation, watch).await {
                Either::Left(r) => r,
                Either::Right(()) => panic!("the watcher ended"),
            }
        })
    }

    #[test]
    fn status_answers_absent_when_the_removal_notification_overtakes_it() {
        let clock = VirtualClock::default();
        let at = clock.clone();
        let usb = reader_that_acts(&clock, move |usb, out| {
            let cmd = PcToRdr::decode(out).expect("command");
            if let PcToRdr::GetSlotStatus(_) = cmd {
                // The card leaves while GetSlotStatus is on its way: the interrupt pipe
                // tells first, the answer (slot empty) follows 5 ms later.
                usb.interrupt(removed());
                usb.answer_at(at.now_ms() + 5, slot_status(&cmd, IccStatus::Absent));
                return Vec::new();
            }
            card(out)
        });
        let driver = powered(&usb, &clock);
        let events = recorder(&driver);
        let r = while_watching(&driver, &clock, driver.run(Status { slot: 0 }, None));
        assert_eq!(r, Ok(IccStatus::Absent));
        assert_eq!(events.borrow().as_slice(), &[DriverEvent::CardRemoved(0)]);
        assert_eq!(driver.card_present(0), Some(false));
    }

    /// Issue 17: an event that comes while an operation waits (an overcurrent on the
    /// interrupt pipe, CCID §6.3.2) goes to the event sink and does not end the operation:
    /// the transmit ends with its own answer, 5 ms later.
    #[test]
    fn an_event_during_a_transmit_does_not_end_it() {
        let clock = VirtualClock::default();
        let at = clock.clone();
        let usb = reader_that_acts(&clock, move |usb, out| {
            let cmd = PcToRdr::decode(out).expect("command");
            if let PcToRdr::XfrBlock(_) = cmd {
                let overcurrent = card_relay::proto::ccid::RdrToPcHardwareError {
                    slot: 0,
                    seq: cmd.seq(),
                    hard_error_code: 1,
                };
                usb.interrupt(InterruptMessage::HardwareError(overcurrent).encode());
                let answer = card(out).remove(0);
                usb.answer_at(at.now_ms() + 5, answer);
                return Vec::new();
            }
            card(out)
        });
        let driver = powered(&usb, &clock);
        let events = recorder(&driver);
        let r = while_watching(
            &driver,
            &clock,
            driver.transmit(0, cmd(h("00 84 00 00 04")), None),
        );
        assert_eq!(r, Ok(h("00 01 02 03 90 00")));
        assert_eq!(
            events.borrow().as_slice(),
            &[DriverEvent::HardwareError { slot: 0, code: 1 }]
        );
    }

    /// Runs the watcher for `ms` of virtual time with `script` acting at the start.
    fn watch_for(
        driver: &CcidDriver<FakeUsb>,
        clock: &VirtualClock,
        ms: u64,
        script: impl FnOnce(),
    ) {
        let watch = Box::pin(driver.watch());
        let stop = Box::pin(async {
            script();
            clock.sleep(ms).await;
        });
        block_on(clock, async {
            if let Either::Left(()) = race(watch, stop).await {
                panic!("the watcher ended");
            }
        });
    }

    #[test]
    fn the_interrupt_watcher_survives_a_failed_read() {
        let clock = VirtualClock::default();
        let usb = FakeUsb::new(acr1252_config(), Box::new(card)).with_clock(&clock);
        let driver = powered(&usb, &clock);
        let events = recorder(&driver);
        usb.0.borrow_mut().interrupt_errors = 1;
        watch_for(&driver, &clock, 2_000, || usb.interrupt(removed()));
        assert_eq!(events.borrow().as_slice(), &[DriverEvent::CardRemoved(0)]);
        assert_eq!(
            command_count(&usb, 0x65),
            0,
            "one failure is no reason to poll"
        );
    }

    fn command_count(usb: &FakeUsb, message_type: u8) -> usize {
        usb.0
            .borrow()
            .out_log
            .iter()
            .filter(|m| m[0] == message_type)
            .count()
    }

    /// A reader whose slot empties at `removed_at` (virtual ms): GetSlotStatus tells.
    fn reader_emptied_at(clock: &VirtualClock, removed_at: u64) -> FakeUsb {
        let at = clock.clone();
        FakeUsb::new(
            acr1252_config(),
            Box::new(move |out| {
                let cmd = PcToRdr::decode(out).expect("command");
                match cmd {
                    PcToRdr::GetSlotStatus(_) if at.now_ms() >= removed_at => {
                        vec![slot_status(&cmd, IccStatus::Absent)]
                    }
                    _ => card(out),
                }
            }),
        )
        .with_clock(clock)
    }

    #[test]
    fn a_failing_interrupt_pipe_falls_back_to_polling_while_someone_listens() {
        let clock = VirtualClock::default();
        let usb = reader_emptied_at(&clock, 3_000);
        let driver = powered(&usb, &clock);
        let events = recorder(&driver);
        let start = clock.now_ms();
        usb.0.borrow_mut().interrupt_errors = u32::MAX;
        watch_for(&driver, &clock, 5_000, || {});
        assert_eq!(events.borrow().as_slice(), &[DriverEvent::CardRemoved(0)]);
        let s = usb.0.borrow();
        let polls: Vec<u64> = s
            .out_log
            .iter()
            .zip(&s.out_times)
            .filter(|(m, _)| m[0] == 0x65)
            .map(|(_, t)| *t - start)
            .collect();
        // About every 500 ms once the pipe failed a few times in a row.
        assert!(polls.len() >= 8, "{polls:?}");
        assert!(
            polls.windows(2).all(|w| w[1] - w[0] <= STATUS_POLL_MS),
            "{polls:?}"
        );
    }

    #[test]
    fn nobody_listening_means_no_polling() {
        let clock = VirtualClock::default();
        let usb = reader_emptied_at(&clock, 0);
        let driver = powered(&usb, &clock);
        driver.set_listening(false);
        usb.0.borrow_mut().interrupt_errors = u32::MAX;
        watch_for(&driver, &clock, 5_000, || {});
        assert_eq!(command_count(&usb, 0x65), 0);
        // Someone starts listening: polling starts.
        driver.set_listening(true);
        let events = recorder(&driver);
        watch_for(&driver, &clock, 2_000, || {});
        assert_eq!(events.borrow().as_slice(), &[DriverEvent::CardRemoved(0)]);
    }

    #[test]
    fn only_a_disconnect_ends_the_watch() {
        let clock = VirtualClock::default();
        let usb = FakeUsb::new(acr1252_config(), Box::new(card)).with_clock(&clock);
        let driver = powered(&usb, &clock);
        let events = recorder(&driver);
        usb.0.borrow_mut().interrupt_errors = 50;
        let unplug = Box::pin(async {
            clock.sleep(60_000).await;
            usb.unplug();
            clock.sleep(60_000).await;
        });
        let ended = block_on(&clock, async {
            matches!(
                race(Box::pin(driver.watch()), unplug).await,
                Either::Left(())
            )
        });
        assert!(ended, "the watch ends at the disconnect");
        assert!(clock.now_ms() >= 60_000);
        assert_eq!(events.borrow().last(), Some(&DriverEvent::Disconnected));
    }
}

/// A reader that announces PIN verification but answers PC_to_RDR_Secure with a failed
/// RDR_to_PC_SlotStatus (issue 13 bullet 5): the status is read before the type.
#[cfg(feature = "simulator")]
#[test]
fn a_pin_pad_answered_by_a_failed_slot_status_is_reported_unusable() {
    use crate::simulated::open_sim;
    use card_relay::reader::{PinVerify, ReaderError};
    use card_relay::sim::card::SEED_ATR;
    use card_relay::sim::{profiles, CardConfig, Fault, PinEntry, SimConfig};
    // libccid readers/GemPCPinpad.txt: TPDU level, bPINSupport 0x03; a T=1 card, so the
    // host's T=1 engine must stay in step when nothing reached the card.
    let config = SimConfig {
        profile: profiles::load("GemPCPinpad").expect("profile"),
        card: Some(CardConfig::pin().with_atr(SEED_ATR.to_vec())),
        seed: 3,
    };
    let clock = VirtualClock::default();
    let (_usb, driver) = open_sim(&clock, config, |s| {
        s.set_fault(Fault::SecureSlotStatus(true));
        s.set_pin_entry(PinEntry::Digits("123456".into()));
    });
    assert!(driver.description().descriptor().pin_verify());
    power_on(&driver, &clock);
    let r = block_on(&clock, driver.verify_pin(0, PinVerify::default(), None));
    let err = r.expect_err("the pin pad refused");
    assert_eq!(err, DriverError::Reader(ReaderError::PinPadUnusable));
    assert_eq!(err.code(), ErrorCode::UnsupportedReader);
    assert_eq!(err.to_string(), "this reader's pin pad cannot be used");
    // The fallback: the PIN typed on the computer, over the same T=1 channel.
    let verify = cmd(h("00 20 00 81 06 31 32 33 34 35 36"));
    let r = block_on(&clock, driver.transmit(0, verify, None));
    assert_eq!(r, Ok(h("90 00")));
    assert_eq!(driver.owed(), None);
}

/// The simulator's `interruptErrors` fault: the watcher reads again and the event comes.
#[cfg(feature = "simulator")]
#[test]
fn the_simulated_flaky_interrupt_pipe_still_delivers_events() {
    use crate::simulated::{open_sim, seed_reader};
    use card_relay::driver::usb::Clock;
    use card_relay::sim::Fault;
    let clock = VirtualClock::default();
    let (usb, driver) = open_sim(&clock, seed_reader(), |_| {});
    let events: Rc<RefCell<Vec<DriverEvent>>> = Rc::default();
    let e2 = Rc::clone(&events);
    driver.set_event_sink(move |ev| e2.borrow_mut().push(ev));
    usb.with(|s| s.set_fault(Fault::InterruptErrors(5)));
    let script = Box::pin(async {
        clock.sleep(1_000).await;
        usb.with(|s| s.remove_card(0)).expect("remove");
        clock.sleep(2_000).await;
    });
    block_on(&clock, async {
        if let Either::Left(()) = race(Box::pin(driver.watch()), script).await {
            panic!("the watcher ended");
        }
    });
    assert_eq!(events.borrow().last(), Some(&DriverEvent::CardRemoved(0)));
}

/// The simulator's `late` fault (issue 13 bullet 1): a reader answering 5 s after each
/// command, slower than the exchange timeout; its slot is busy meanwhile, so a command sent
/// too early would get CMD_SLOT_BUSY.
#[cfg(feature = "simulator")]
#[test]
fn the_simulated_late_reader_gets_one_command_at_a_time() {
    use crate::simulated::{open_sim, seed_reader};
    use card_relay::sim::Fault;
    let clock = VirtualClock::default();
    let (usb, driver) = open_sim(&clock, seed_reader(), |_| {});
    power_on(&driver, &clock);
    let run = |op| block_on(&clock, driver.run(op, None));
    let apdu = |a: &str| Transmit {
        slot: 0,
        command: cmd(h(a)),
    };
    usb.with(|s| s.set_fault(Fault::LateAnswers(5_000)));
    let started = clock.now_ms();
    let r = run(apdu("00 84 00 00 08"));
    assert_eq!(r.map_err(|e| e.code()), Err(ErrorCode::Timeout));
    assert!(clock.now_ms() < started + 5_000);
    // The card is quick again; the answer still owed arrives at 5 s and is dropped.
    usb.with(|s| s.set_fault(Fault::LateAnswers(0)));
    let Ok(r) = run(apdu("00 84 00 00 04")) else {
        panic!("the next command gets its own answer");
    };
    assert_eq!(r.len(), 6);
    assert!(
        clock.now_ms() >= started + 5_000,
        "it waited for the late answer"
    );
    assert_eq!(driver.owed(), None);
    assert!(
        usb.with(|s| s.abort_requests().is_empty()),
        "no abort was needed"
    );
}

/// The simulated reader behind the async driver, on virtual time.
#[cfg(feature = "simulator")]
mod simulated {
    use super::*;
    use card_relay::sim::transport::SimTransport;
    use card_relay::sim::{CardConfig, SimConfig, SimulatedReader};

    /// The built-in default reader with the seed card.
    pub fn seed_reader() -> SimConfig {
        SimConfig {
            card: Some(CardConfig::seed()),
            ..SimConfig::default()
        }
    }

    /// Opens `config`'s reader through the driver; the simulator's time is `clock`'s.
    /// `before_open` switches faults first.
    pub fn open_sim(
        clock: &VirtualClock,
        config: SimConfig,
        before_open: impl FnOnce(&mut SimulatedReader),
    ) -> (SimTransport, CcidDriver<SimTransport>) {
        let mut sim = SimulatedReader::new(config).expect("simulator");
        before_open(&mut sim);
        let usb = SimTransport::new(sim).with_clock(Rc::new(clock.clone()));
        let driver =
            block_on(clock, CcidDriver::open(usb.clone(), Rc::new(clock.clone()))).expect("open");
        (usb, driver)
    }
}
