//! The GP SERAM dialect natively: the pure state machine (`session::seram`) and the whole
//! update (`driver::seram`) over the simulated reader and card, against a scripted Remote
//! Agent, in virtual time (tests/support): flow, correlation, every timing rule of the
//! HTTP REST binding, the example Orders of `spec/gpseram.yaml`, malformed Orders.
//!
//! Expected values come from the specification (`../shared/reference/seram/`): the Report
//! and Order texts of its examples, the 1 s default delay, the 30 s long poll, the 40 s
//! response timeout and the 5-minute retry window of `GPSERAM__HTTP_REST_Binding.md`.

#![cfg(all(feature = "simulator", not(target_arch = "wasm32")))]

mod support;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use card_relay::driver::sync::{race, Abort, Either};
use card_relay::driver::update::{
    card_update, HttpClient, HttpError, UpdateError, UpdateObserver, UpdateOptions, UpdateResult,
};
use card_relay::driver::usb::{
    Clock, ControlSetup, DeviceInfo, Direction, LocalBoxFuture, UsbError, UsbTransport,
};
use card_relay::driver::{CcidDriver, ErrorCode};
use card_relay::proto::hex::h;
use card_relay::proto::seram::{Report, SecureElement};
use card_relay::reader::PowerOn;
use card_relay::session::seram::{
    SeramAction, SeramConfig, SeramError, SeramSession, TransportFailure,
};
use card_relay::session::{
    Action, CallError, CardCommand, CardResult, Dialect, HttpResponse, Session, SessionConfig,
    SessionError,
};
use card_relay::sim::card::SEED_ATR;
use card_relay::sim::transport::SimTransport;
use card_relay::sim::{CardConfig, Fault, SimConfig, SimulatedReader};
use support::{block_on, VirtualClock};

const BASE: &str = "https://ra.example/gp/seram";
const SESSION: &str = "0f96af97-f879-45a2-a011-ee7439df3804";

// gpseram.yaml examples.
const HANDSHAKE_RESPONSE: &str = r#"{"chosenTransportProtocol":"HTTPS","chosenDataFormat":"application/json","chosenVersion":"2.0.0"}"#;
const POLLING: &str =
    r#"{"localAgentStatus":{"localAgentStatusEnum":"POLLING","executedSeRamCommands":0}}"#;
const STOP: &str = r#"{"ramCommands":[{"ramCommandType":"stopCommand"}]}"#;
const EXAMPLE_SE: &str =
    r#"{"seType":"eSE","seId":"89001012012341234012345678901224","seExtraInfo":"SAM"}"#;

/// SELECT of the SmartCard-HSM applet and its FCP (reference/seed.md).
const SELECT: &str = "00A4040C0BE82B0601040181C31F0201";
const GET_CHALLENGE_8: &str = "0084000008";

/// One answer of the scripted Remote Agent.
#[derive(Clone)]
enum Reply {
    /// After `ms`, this status and body (a timeout if `ms` reaches the request's bound).
    After(u64, u16, String),
    /// After `ms`, a network failure.
    Fail(u64),
    /// Never (the request times out).
    Hang,
}

fn ok(body: &str) -> Reply {
    Reply::After(0, 200, body.to_owned())
}

/// A request as the Remote Agent saw it.
#[derive(Debug, Clone)]
struct Seen {
    at: u64,
    url: String,
    body: String,
    timeout_ms: u64,
}

/// A Remote Agent answering from a script; with the script exhausted it hangs.
struct Agent {
    clock: VirtualClock,
    replies: RefCell<VecDeque<Reply>>,
    seen: RefCell<Vec<Seen>>,
    events: Rc<RefCell<Vec<String>>>,
}

impl Agent {
    fn new(clock: &VirtualClock, replies: Vec<Reply>) -> Self {
        Agent {
            clock: clock.clone(),
            replies: RefCell::new(replies.into()),
            seen: RefCell::default(),
            events: Rc::default(),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.borrow().clone()
    }

    fn bodies(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.body).collect()
    }

    fn times(&self) -> Vec<u64> {
        self.seen().into_iter().map(|s| s.at).collect()
    }
}

impl HttpClient for Agent {
    fn post(
        &self,
        request: card_relay::session::HttpRequest,
        timeout_ms: u64,
    ) -> LocalBoxFuture<Result<HttpResponse, HttpError>> {
        assert_eq!(request.header("Content-Type"), Some("application/json"));
        assert_eq!(
            request.header("Cookie"),
            None,
            "the session id is no cookie"
        );
        let body = String::from_utf8(request.body).expect("utf-8 json");
        self.events.borrow_mut().push(format!("post {body}"));
        self.seen.borrow_mut().push(Seen {
            at: self.clock.now_ms(),
            url: request.url,
            body,
            timeout_ms,
        });
        let reply = self.replies.borrow_mut().pop_front().unwrap_or(Reply::Hang);
        let clock = self.clock.clone();
        Box::pin(async move {
            match reply {
                Reply::After(ms, status, body) if ms < timeout_ms => {
                    clock.sleep(ms).await;
                    Ok(HttpResponse {
                        status,
                        headers: vec![("Content-Type".into(), "application/json".into())],
                        body: body.into_bytes(),
                    })
                }
                Reply::Fail(ms) if ms < timeout_ms => {
                    clock.sleep(ms).await;
                    Err(HttpError::Network("connection reset".into()))
                }
                _ => {
                    clock.sleep(timeout_ms).await;
                    Err(HttpError::Timeout)
                }
            }
        })
    }
}

/// The simulated reader, its bulk-OUT transfers taking `card_ms` of virtual time each
/// (a slow card).
#[derive(Clone)]
struct SlowUsb {
    inner: SimTransport,
    clock: VirtualClock,
    card_ms: Rc<RefCell<u64>>,
}

impl UsbTransport for SlowUsb {
    fn info(&self) -> DeviceInfo {
        self.inner.info()
    }
    fn configuration_value(&self) -> Option<u8> {
        self.inner.configuration_value()
    }
    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
    fn open(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.open()
    }
    fn select_configuration(&self, value: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.select_configuration(value)
    }
    fn claim_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.claim_interface(number)
    }
    fn select_alternate_interface(&self, n: u8, a: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.select_alternate_interface(n, a)
    }
    fn release_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.release_interface(number)
    }
    fn close(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.close()
    }
    fn control_transfer_in(
        &self,
        setup: ControlSetup,
        length: u16,
    ) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        self.inner.control_transfer_in(setup, length)
    }
    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>> {
        let sleep = self.clock.sleep(*self.card_ms.borrow());
        let out = self.inner.transfer_out(endpoint, data);
        Box::pin(async move {
            sleep.await;
            out.await
        })
    }
    fn transfer_in(&self, endpoint: u8, length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        self.inner.transfer_in(endpoint, length)
    }
    fn clear_halt(&self, d: Direction, e: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.clear_halt(d, e)
    }
}

/// Records notifications and APDU trace lines in one event list with the POSTs.
struct Events(Rc<RefCell<Vec<String>>>);

impl UpdateObserver for Events {
    fn notification(&self, n: &card_relay::session::Notification) {
        self.0
            .borrow_mut()
            .push(format!("notify {} {}", n.id, n.message));
    }
    fn trace(&self, line: &str) {
        self.0.borrow_mut().push(format!("trace {line}"));
    }
}

struct Bench {
    clock: VirtualClock,
    driver: CcidDriver<SlowUsb>,
    sim: SimTransport,
    card_ms: Rc<RefCell<u64>>,
}

fn bench() -> Bench {
    let clock = VirtualClock::default();
    let sim = SimTransport::new(
        SimulatedReader::new(SimConfig {
            card: Some(CardConfig::seed()),
            ..SimConfig::default()
        })
        .expect("simulator"),
    );
    let card_ms = Rc::new(RefCell::new(0));
    let usb = SlowUsb {
        inner: sim.clone(),
        clock: clock.clone(),
        card_ms: Rc::clone(&card_ms),
    };
    let driver = block_on(&clock, CcidDriver::open(usb, Rc::new(clock.clone()))).expect("open");
    Bench {
        clock,
        driver,
        sim,
        card_ms,
    }
}

fn options() -> UpdateOptions {
    let o = card_relay::driver::seram::options(BASE, SESSION);
    assert_eq!((o.dialect, o.timeout_ms), (Dialect::Seram, 40_000));
    o
}

impl Bench {
    fn run(&self, agent: &Agent) -> Result<UpdateResult, UpdateError> {
        self.run_with(agent, &options(), None)
    }

    fn run_with(
        &self,
        agent: &Agent,
        options: &UpdateOptions,
        abort: Option<&Abort>,
    ) -> Result<UpdateResult, UpdateError> {
        let events = Events(Rc::clone(&agent.events));
        block_on(
            &self.clock,
            card_update(&self.driver, agent, &self.clock, options, &events, abort),
        )
    }
}

fn order(delay: Option<u64>, commands: &[&str]) -> String {
    let delay = delay.map_or(String::new(), |d| format!(r#""delay":{d},"#));
    format!(r#"{{{delay}"ramCommands":[{}]}}"#, commands.join(","))
}

fn se_ram(apdus: &[&str]) -> String {
    let list: Vec<String> = apdus.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"{{"ramCommandType":"seRamCommand","listOfCAPDU":[{}]}}"#,
        list.join(",")
    )
}

fn notification(text: &str) -> String {
    format!(r#"{{"ramCommandType":"notificationCommand","deviceAppNotification":"{text}"}}"#)
}

const START: &str = r#"{"ramCommandType":"startCommand"}"#;
const STOP_COMMAND: &str = r#"{"ramCommandType":"stopCommand"}"#;
const RAM_START: &str = r#"{"ramCommandType":"ramStartCommand"}"#;
const RAM_STOP: &str = r#"{"ramCommandType":"ramStopCommand"}"#;

fn report(body: &str) -> Report {
    Report::decode(body.as_bytes()).expect("a report")
}

/// Handshake, polling, an Order with two SE RAM Commands and a notification, a second
/// Order with Stop: URLs, the handshake, the Reports and their correlation.
#[test]
fn flow_and_correlation() {
    let b = bench();
    let agent = Agent::new(
        &b.clock,
        vec![
            ok(HANDSHAKE_RESPONSE),
            ok(&order(
                Some(0),
                &[
                    START,
                    &se_ram(&["00200081", SELECT]),
                    &notification("step1/action2/OK"),
                    &se_ram(&[GET_CHALLENGE_8]),
                ],
            )),
            ok(&order(None, &[&notification("done"), STOP_COMMAND])),
        ],
    );
    let result = b.run(&agent).expect("completed");
    assert_eq!(result.apdus, 3);
    assert_eq!(result.round_trips, 3);
    assert_eq!(
        result.last_notification.map(|n| n.message).as_deref(),
        Some("done")
    );
    let seen = agent.seen();
    assert_eq!(seen.len(), 3, "stop: no report after it");
    assert_eq!(seen[0].url, format!("{BASE}/handshake?sessionId={SESSION}"));
    let atr = card_relay::proto::hex::compact(&SEED_ATR);
    assert_eq!(
        seen[0].body,
        format!(
            r#"{{"secureElements":[{{"seType":"undefined","seId":"{atr}"}}],"supportedTransportProtocols":["HTTPS"],"supportedDataFormats":["application/json"],"supportedVersions":["2.0.0"]}}"#
        )
    );
    for s in &seen[1..] {
        assert_eq!(
            s.url,
            format!("{BASE}/remoteManagement?sessionId={SESSION}")
        );
        assert_eq!(s.timeout_ms, 40_000);
    }
    assert_eq!(seen[1].body, POLLING, "the first report is void");
    let r = report(&seen[2].body);
    assert_eq!(r.status.as_str(), "PROCESSED");
    assert_eq!(r.executed, 2);
    // seed.md: VERIFY before SELECT answers 6E00, SELECT P2=0C answers 9000.
    assert_eq!(r.responses.len(), 2);
    assert_eq!(r.responses[0], vec!["6E00".to_owned(), "9000".to_owned()]);
    assert_eq!(r.responses[1].len(), 1);
    assert_eq!(r.responses[1][0].len(), 20, "8 bytes and 9000");
    assert!(r.responses[1][0].ends_with("9000"));
    let events = agent.events.borrow();
    let notifications: Vec<&String> = events.iter().filter(|e| e.starts_with("notify")).collect();
    assert_eq!(
        notifications,
        ["notify 0 step1/action2/OK", "notify 0 done"]
    );
}

/// "If the Remote Agent doesn't specify any delay, the Local Agent SHALL make a pause of
/// 1 second before sending the next HTTP request. The Remote Agent MAY used a value of 0."
#[test]
fn polling_delay_default_one_second_zero_allowed() {
    let b = bench();
    let agent = Agent::new(
        &b.clock,
        vec![
            ok(HANDSHAKE_RESPONSE),
            ok("{}"),
            ok(r#"{"delay":0}"#),
            ok(r#"{"delay":250}"#),
            Reply::After(0, 204, String::new()),
            ok(&order(Some(100), &[RAM_START])),
            ok(&order(None, &[RAM_STOP])),
        ],
    );
    let start = b.clock.now_ms();
    b.run(&agent).expect("completed");
    let t: Vec<u64> = agent.times().iter().map(|t| t - start).collect();
    // Handshake; +1 s (no delay after the handshake); +1 s ({}); +0; +250; +1 s (204);
    // +100 (the start order's delay).
    assert_eq!(t, [0, 1_000, 2_000, 2_000, 2_250, 3_250, 3_350]);
    let bodies = agent.bodies();
    assert!(bodies[1..6].iter().all(|b| b == POLLING), "{bodies:?}");
    assert_eq!(
        report(&bodies[6]).status.as_str(),
        "PROCESSED",
        "start is a command"
    );
}

/// A `delay` beyond 5 minutes (after which a Remote Agent considers the Local Agent lost)
/// is cut to 5 minutes.
#[test]
fn delay_is_capped_at_five_minutes() {
    let b = bench();
    let agent = Agent::new(
        &b.clock,
        vec![
            ok(HANDSHAKE_RESPONSE),
            ok(r#"{"delay":86400000}"#),
            ok(&order(Some(0), &[STOP_COMMAND])),
        ],
    );
    let start = b.clock.now_ms();
    b.run(&agent).expect("completed");
    let t: Vec<u64> = agent.times().iter().map(|t| t - start).collect();
    assert_eq!(t, [0, 1_000, 301_000]);
}

/// Cancel during a long poll: the request is abandoned at once and the cancel Report goes.
#[test]
fn cancel_during_a_long_poll() {
    let b = bench();
    let agent = Agent::new(
        &b.clock,
        vec![
            ok(HANDSHAKE_RESPONSE),
            Reply::After(25_000, 200, "{}".into()),
            ok("{}"),
        ],
    );
    let abort = Abort::new();
    let start = b.clock.now_ms();
    let events = Events(Rc::clone(&agent.events));
    let opts = options();
    let update = card_update(&b.driver, &agent, &b.clock, &opts, &events, Some(&abort));
    let clock = b.clock.clone();
    let fire = async {
        clock.sleep(6_000).await;
        abort.abort();
        std::future::pending::<()>().await
    };
    let result = match block_on(&b.clock, race(Box::pin(update), Box::pin(fire))) {
        Either::Left(r) => r,
        Either::Right(()) => unreachable!("the trigger never ends"),
    };
    assert_eq!(result.expect_err("aborted").code(), ErrorCode::Aborted);
    let seen = agent.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].at - start, 6_000);
    assert_eq!(seen[2].timeout_ms, 5_000, "the cancel report is bounded");
    assert_eq!(
        report(&seen[2].body).error.as_deref(),
        Some("session canceled")
    );
}

/// "Local Agent SHOULD at least support latency of 30 seconds between HTTP request and
/// HTTP response": a long-poll answer after 30 s is taken, not retried.
#[test]
fn long_poll_answers_of_30_seconds_are_awaited() {
    let b = bench();
    let agent = Agent::new(
        &b.clock,
        vec![
            ok(HANDSHAKE_RESPONSE),
            Reply::After(30_000, 200, r#"{"delay":0}"#.into()),
            Reply::After(39_999, 200, order(Some(0), &[STOP_COMMAND])),
        ],
    );
    let start = b.clock.now_ms();
    b.run(&agent).expect("completed");
    let t: Vec<u64> = agent.times().iter().map(|t| t - start).collect();
    assert_eq!(t, [0, 1_000, 31_000]);
}

/// "It SHALL NOT use HTTP polling whenever it's processing the previous Order unless it
/// doesn't require any Response": with a card taking 2 s per APDU and `delay` 0 the
/// Report goes out after the last APDU; a notification-only Order needs no Response and
/// its Report goes out after the delay alone.
#[test]
fn no_polling_while_an_order_is_processed() {
    let b = bench();
    *b.card_ms.borrow_mut() = 2_000;
    let agent = Agent::new(
        &b.clock,
        vec![
            ok(HANDSHAKE_RESPONSE),
            ok(&order(
                Some(0),
                &[START, &se_ram(&[GET_CHALLENGE_8, GET_CHALLENGE_8])],
            )),
            ok(&order(Some(500), &[&notification("no response needed")])),
            ok(STOP),
        ],
    );
    let start = b.clock.now_ms();
    b.run(&agent).expect("completed");
    let t: Vec<u64> = agent.times().iter().map(|t| t - start).collect();
    assert!(
        t[2] >= 1_000 + 4_000,
        "report before the card finished: {t:?}"
    );
    assert_eq!(t[3], t[2] + 500, "{t:?}");
    let events = agent.events.borrow();
    let last_apdu = events
        .iter()
        .rposition(|e| e.starts_with("trace"))
        .expect("apdus");
    let report_post = events
        .iter()
        .position(|e| e.contains("PROCESSED"))
        .expect("report");
    assert!(last_apdu < report_post, "{events:?}");
}

/// "If the Local Agent doesn't receive an HTTP response within a 40 seconds delay […] it
/// SHOULD close the current HTTPS connection and try to re-establish a new one": the
/// same Report goes again at once.
#[test]
fn response_timeout_40_seconds_then_the_report_is_sent_again() {
    let b = bench();
    let agent = Agent::new(
        &b.clock,
        vec![
            ok(HANDSHAKE_RESPONSE),
            Reply::Hang,
            ok(&order(Some(0), &[STOP_COMMAND])),
        ],
    );
    let start = b.clock.now_ms();
    b.run(&agent).expect("completed after one retry");
    let seen = agent.seen();
    let t: Vec<u64> = seen.iter().map(|s| s.at - start).collect();
    assert_eq!(t, [0, 1_000, 41_000]);
    assert_eq!(seen[1].body, seen[2].body);
    assert_eq!(seen[1].timeout_ms, 40_000);
}

/// "It SHOULD retry during 5 minutes at the most": a Remote Agent that cannot be reached
/// gets attempts at once, then after 1, 2, 4 … 30 s, none 5 minutes after the first
/// failure, and the update fails with network-error.
#[test]
fn lost_connection_retried_for_five_minutes() {
    let b = bench();
    let agent = Agent::new(&b.clock, vec![ok(HANDSHAKE_RESPONSE)]);
    agent
        .replies
        .borrow_mut()
        .extend(std::iter::repeat_n(Reply::Fail(10), 100));
    let start = b.clock.now_ms();
    let err = b.run(&agent).expect_err("unreachable");
    assert_eq!(err.code(), ErrorCode::NetworkError, "{err}");
    let t: Vec<u64> = agent.times().iter().map(|t| t - start).collect();
    let first_failure = t[1] + 10;
    let gaps: Vec<u64> = t.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        &gaps[..7],
        &[10, 1_010, 2_010, 4_010, 8_010, 16_010, 30_010],
        "{t:?}"
    );
    assert!(gaps[7..].iter().all(|g| *g == 30_010), "{gaps:?}");
    let last = *t.last().expect("attempts");
    assert!(last < first_failure + 300_000, "{t:?}");
    assert!(last + 30_010 >= first_failure + 300_000, "{t:?}");
    assert!(b.clock.now_ms() - start <= first_failure + 300_000);
}

/// Requests that all time out: each attempt is bounded by 40 s, the last one cut at the
/// end of the 5-minute window; the update fails with timeout.
#[test]
fn timeouts_stop_at_the_end_of_the_window() {
    let b = bench();
    let agent = Agent::new(&b.clock, vec![ok(HANDSHAKE_RESPONSE)]);
    let start = b.clock.now_ms();
    let err = b.run(&agent).expect_err("unreachable");
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    let t: Vec<u64> = agent.times().iter().map(|t| t - start).collect();
    // The first report fails at 41 s; retries at once, then after 1, 2, 4, 8, 16 s, each
    // waiting 40 s; the next pause (30 s) would start an attempt after 41 s + 5 min.
    assert_eq!(
        t,
        [0, 1_000, 41_000, 82_000, 124_000, 168_000, 216_000, 272_000]
    );
    assert_eq!(b.clock.now_ms() - start, 312_000);
    assert!(agent.seen().iter().skip(1).all(|s| s.timeout_ms == 40_000));
}

/// Cancel during the polling pause: the update ends at once with aborted and the Remote
/// Agent gets the UNKNOWN_FAILURE "session canceled" Report.
#[test]
fn cancel_during_the_pause() {
    let b = bench();
    let agent = Agent::new(&b.clock, vec![ok(HANDSHAKE_RESPONSE), ok("{}")]);
    let abort = Abort::new();
    let start = b.clock.now_ms();
    let events = Events(Rc::clone(&agent.events));
    let opts = options();
    let update = card_update(&b.driver, &agent, &b.clock, &opts, &events, Some(&abort));
    let clock = b.clock.clone();
    let fire = async {
        clock.sleep(1_500).await;
        abort.abort();
        std::future::pending::<()>().await
    };
    let result = match block_on(&b.clock, race(Box::pin(update), Box::pin(fire))) {
        Either::Left(r) => r,
        Either::Right(()) => unreachable!("the trigger never ends"),
    };
    assert_eq!(result.expect_err("aborted").code(), ErrorCode::Aborted);
    let seen = agent.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[2].at - start,
        1_500,
        "cancel does not wait for the delay"
    );
    let r = report(&seen[2].body);
    assert_eq!(r.status.as_str(), "UNKNOWN_FAILURE");
    assert_eq!(r.error.as_deref(), Some("session canceled"));
}

/// A malformed Order is answered with UNKNOWN_FAILURE and an errorMsg (the
/// localAgentStatusEnum rule: "On any error processing one of UNAVAILABLE_SE,
/// UNKNOWN_FAILURE, or UNGRANTED_ACCESS SHALL be used"); then the update fails.
#[test]
fn malformed_order_gets_unknown_failure() {
    for (bad, message) in [
        ("[1]", "bad order: order is not an object"),
        (
            "{\"delay\":",
            "bad order: not json: unexpected end of json at byte 9",
        ),
        (
            r#"{"ramCommands":[{"ramCommandType":"redirectCommand"}]}"#,
            "bad order: unknown ramCommandType",
        ),
    ] {
        let b = bench();
        let agent = Agent::new(&b.clock, vec![ok(HANDSHAKE_RESPONSE), ok(bad), ok(STOP)]);
        let err = b.run(&agent).expect_err("bad order");
        assert_eq!(err.code(), ErrorCode::BadScript, "{err}");
        let seen = agent.seen();
        assert_eq!(seen.len(), 3, "{bad}");
        let r = report(&seen[2].body);
        assert_eq!(r.status.as_str(), "UNKNOWN_FAILURE", "{bad}");
        assert_eq!(r.executed, 0);
        assert_eq!(r.error.as_deref(), Some(message));
    }
}

/// An Order over 1 MiB is not parsed: UNKNOWN_FAILURE, then the update fails.
#[test]
fn oversized_order_is_refused_unparsed() {
    let b = bench();
    let huge = format!(r#"{{"delay":0,"x":"{}"}}"#, "a".repeat(1 << 20));
    let agent = Agent::new(&b.clock, vec![ok(HANDSHAKE_RESPONSE), ok(&huge), ok(STOP)]);
    let err = b.run(&agent).expect_err("too large");
    assert_eq!(err.code(), ErrorCode::BadScript, "{err}");
    let r = report(&agent.seen()[2].body);
    assert_eq!(r.status.as_str(), "UNKNOWN_FAILURE");
    assert_eq!(
        r.error.as_deref(),
        Some(format!("order of {} bytes is too large", huge.len()).as_str())
    );
}

/// A card failure mid-Order: UNAVAILABLE_SE, the R-APDUs before it, none for the failed
/// C-APDU, the rest discarded; the update fails with the card's own error.
#[test]
fn card_failure_reports_unavailable_se() {
    let b = bench();
    let on = PowerOn {
        slot: 0,
        protocol: None,
    };
    block_on(&b.clock, b.driver.run(on, None)).expect("power on");
    b.sim.with(|s| s.set_fault(Fault::MuteCard(true)));
    let agent = Agent::new(
        &b.clock,
        vec![
            ok(HANDSHAKE_RESPONSE),
            ok(&order(
                Some(0),
                &[START, &se_ram(&[SELECT, GET_CHALLENGE_8])],
            )),
            ok(STOP),
        ],
    );
    let err = b.run(&agent).expect_err("mute card");
    // The card's own error (on this T=1 reader: the exchange fails after its retries).
    assert!(matches!(err, UpdateError::Driver(_)), "{err:?}");
    let seen = agent.seen();
    assert_eq!(seen.len(), 3);
    let r = report(&seen[2].body);
    assert_eq!(r.status.as_str(), "UNAVAILABLE_SE");
    assert_eq!(r.executed, 0);
    assert_eq!(r.responses, vec![Vec::<String>::new()]);
    assert!(r.error.is_some());
}

/// A session id is required: it is what the Remote Agent tracks the session by.
#[test]
fn session_id_is_required() {
    let b = bench();
    let agent = Agent::new(&b.clock, vec![]);
    let mut o = options();
    o.session_id = None;
    let err = b.run_with(&agent, &o, None).expect_err("no id");
    assert!(err.to_string().contains("bad script"), "{err}");
    assert!(agent.seen().is_empty());
    assert!(matches!(
        err,
        UpdateError::BadScript(SessionError::Seram(SeramError::MissingSessionId))
    ));
}

/// Handshake answers: 404 (unknown session) and 406 (no acceptable proposal) are server
/// errors; a choice that was not offered ends the session.
#[test]
fn handshake_refusals() {
    for (reply, code) in [
        (Reply::After(0, 404, String::new()), ErrorCode::ServerError),
        (Reply::After(0, 406, String::new()), ErrorCode::ServerError),
        (ok(r#"{"chosenVersion":"1.0.0"}"#), ErrorCode::BadScript),
        (
            ok(r#"{"chosenDataProtocol":"application/cbor"}"#),
            ErrorCode::BadScript,
        ),
        (ok("not json"), ErrorCode::BadScript),
    ] {
        let b = bench();
        let agent = Agent::new(&b.clock, vec![reply]);
        let err = b.run(&agent).expect_err("refused");
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(agent.seen().len(), 1);
    }
    // The schema's reading of the data format field, and no fields at all (defaults).
    for accepted in [
        r#"{"chosenTransportProtocol":"HTTPS","chosenDataProtocol":"application/json","chosenVersion":"2.0.0"}"#,
        "{}",
    ] {
        let b = bench();
        let agent = Agent::new(&b.clock, vec![ok(accepted), ok(STOP)]);
        b.run(&agent).expect(accepted);
    }
}

// The pure state machine, without a driver.

fn example_se() -> SecureElement {
    SecureElement {
        se_type: "eSE".into(),
        se_id: "89001012012341234012345678901224".into(),
        se_extra_info: Some("SAM".into()),
    }
}

fn handshaken(se: SecureElement) -> SeramSession {
    let mut config = SeramConfig::new(BASE, SESSION, &SEED_ATR);
    config.secure_element = se;
    let mut s = SeramSession::new(config);
    assert!(matches!(s.poll(0), Ok(SeramAction::Post(_))));
    s.on_http_response(response(200, HANDSHAKE_RESPONSE), 0)
        .expect("handshake");
    assert_eq!(s.poll(0), Ok(SeramAction::Wait { until_ms: 1_000 }));
    let SeramAction::Post(x) = s.poll(1_000).expect("poll") else {
        panic!("first report")
    };
    assert_eq!(String::from_utf8(x.request.body).unwrap(), POLLING);
    s
}

fn response(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

/// The example Orders of gpseram.yaml are accepted (none is a malformed Order). The SE RAM
/// example's C-APDU `00A40400OA0001020304050607080900A` is not hex (a letter O, 33
/// digits): it fails as a transmission would, with UNKNOWN_FAILURE.
#[test]
fn example_orders_are_accepted() {
    let mut s = handshaken(example_se());
    let mut now = 1_000;
    let examples = [
        r#"{"delay": 500}"#.to_owned(),
        r#"{"ramCommands":[{"ramCommandType":"startCommand"}]}"#.to_owned(),
        r#"{"ramCommands":[{"ramCommandType":"notificationCommand","deviceAppNotification":"step1/action2/OK"}]}"#.to_owned(),
    ];
    for example in &examples {
        s.on_http_response(response(200, example), now)
            .expect(example);
        let (action, report_body) = drive_to_post(&mut s, &mut now);
        let r = report(&report_body);
        assert!(r.error.is_none(), "{example}: {r:?}");
        assert!(action.iter().all(|a| !matches!(a, SeramAction::Failed(_))));
    }
    let se_ram_example = format!(
        r#"{{"delay":100,"chosenSecureElement":{EXAMPLE_SE},"ramCommands":[{{"ramCommandType":"seRamCommand","listOfCAPDU":["00A40400OA0001020304050607080900A"]}}]}}"#
    );
    s.on_http_response(response(200, &se_ram_example), now)
        .expect("example");
    let (actions, body) = drive_to_post(&mut s, &mut now);
    assert!(actions.iter().all(|a| !matches!(a, SeramAction::Card(_))));
    let r = report(&body);
    assert_eq!(r.status.as_str(), "UNKNOWN_FAILURE");
    assert_eq!(r.error.as_deref(), Some("c-apdu 0 is not hex"));
    assert_eq!(r.responses, vec![Vec::<String>::new()]);
    // That failure ends the session once the Report is answered.
    s.on_http_response(response(200, STOP), now)
        .expect("answer");
    assert!(matches!(
        s.poll(now),
        Ok(SeramAction::Failed(SessionError::Seram(
            SeramError::BadApdu { index: 0 }
        )))
    ));

    // allCommandsOrder and stopCommandOrder on fresh sessions.
    let all = format!(
        r#"{{"delay":0,"chosenSecureElement":{EXAMPLE_SE},"ramCommands":[{{"ramCommandType":"startCommand"}},{{"ramCommandType":"seRamCommand","listOfCAPDU":["00A40400OA0001020304050607080900A"]}},{{"ramCommandType":"notificationCommand","deviceAppNotification":"step1/action2/OK"}},{{"ramCommandType":"stopCommand"}}]}}"#
    );
    let mut s = handshaken(example_se());
    s.on_http_response(response(200, &all), 1_000).expect("all");
    assert!(matches!(s.poll(1_000), Ok(SeramAction::Notify(n)) if n.message == "step1/action2/OK"));
    assert!(
        matches!(s.poll(1_000), Ok(SeramAction::Failed(_))),
        "stop, after the failure"
    );
    let mut s = handshaken(example_se());
    s.on_http_response(response(200, STOP), 1_000)
        .expect("stop");
    assert!(matches!(s.poll(1_000), Ok(SeramAction::Done(_))));
    assert_eq!(s.poll(1_000), Err(CallError::Finished));
}

/// Polls until the next Post, feeding APDU answers `9000`; returns the actions seen and
/// the Post's body.
fn drive_to_post(s: &mut SeramSession, now: &mut u64) -> (Vec<SeramAction>, String) {
    let mut actions = Vec::new();
    for _ in 0..100 {
        let action = s.poll(*now).expect("poll");
        match &action {
            SeramAction::Post(x) => {
                return (actions, String::from_utf8(x.request.body.clone()).unwrap());
            }
            SeramAction::Wait { until_ms } => *now = *until_ms,
            SeramAction::Card(_) => s
                .on_card_response(CardResult::Response(h("90 00")))
                .expect("card"),
            _ => {}
        }
        actions.push(action);
    }
    panic!("no post");
}

/// The state machine refuses calls out of order and leaves its state: a card result
/// while a request is out, a poll while the card works (no polling during an Order that
/// needs a response, however late), an ATR for an APDU.
#[test]
fn calls_out_of_order_are_refused() {
    let mut s = handshaken(SeramConfig::new(BASE, SESSION, &SEED_ATR).secure_element);
    assert_eq!(
        s.on_card_response(CardResult::Response(h("90 00"))),
        Err(CallError::UnexpectedCardResult)
    );
    assert_eq!(s.poll(5_000), Err(CallError::AwaitingHttpResponse));
    let o = order(Some(0), &[START, &se_ram(&[GET_CHALLENGE_8])]);
    s.on_http_response(response(200, &o), 1_000).expect("order");
    assert_eq!(
        s.poll(1_000),
        Ok(SeramAction::Card(CardCommand::Apdu(h(GET_CHALLENGE_8))))
    );
    assert_eq!(s.poll(1_000_000), Err(CallError::AwaitingCardResult));
    assert_eq!(
        s.on_card_response(CardResult::Atr(SEED_ATR.to_vec())),
        Err(CallError::WrongCardResult)
    );
    s.on_card_response(CardResult::Response(h("01 02 90 00")))
        .expect("answer");
    let SeramAction::Post(x) = s.poll(1_000_001).expect("report") else {
        panic!("report")
    };
    let r = report(std::str::from_utf8(&x.request.body).unwrap());
    assert_eq!(r.responses, vec![vec!["01029000".to_owned()]]);
    assert_eq!(
        s.on_http_failure(TransportFailure::Timeout, 1_041_001),
        Ok(())
    );
    assert!(matches!(s.poll(1_041_001), Ok(SeramAction::Post(_))));
}

/// SE RAM before Start is refused with UNKNOWN_FAILURE; an Order choosing another Secure
/// Element gets UNAVAILABLE_SE.
#[test]
fn order_rules() {
    let mut s = handshaken(SeramConfig::new(BASE, SESSION, &SEED_ATR).secure_element);
    let o = order(Some(0), &[&se_ram(&[GET_CHALLENGE_8])]);
    s.on_http_response(response(200, &o), 1_000).expect("order");
    let mut now = 1_000;
    let (_, body) = drive_to_post(&mut s, &mut now);
    let r = report(&body);
    assert_eq!(r.status.as_str(), "UNKNOWN_FAILURE");
    assert_eq!(r.error.as_deref(), Some("se ram command before start"));

    let mut s = handshaken(SeramConfig::new(BASE, SESSION, &SEED_ATR).secure_element);
    let o = format!(
        r#"{{"chosenSecureElement":{EXAMPLE_SE},"ramCommands":[{START},{}]}}"#,
        se_ram(&[GET_CHALLENGE_8])
    );
    s.on_http_response(response(200, &o), 1_000).expect("order");
    let (actions, body) = drive_to_post(&mut s, &mut now);
    assert!(actions.iter().all(|a| !matches!(a, SeramAction::Card(_))));
    let r = report(&body);
    assert_eq!(r.status.as_str(), "UNAVAILABLE_SE");
    assert_eq!(r.error.as_deref(), Some("unknown secure element"));
}

/// A `Session` (the RAM dialects' machine) made for SERAM fails at once.
#[test]
fn ram_session_refuses_seram() {
    let mut s = Session::new(SessionConfig {
        dialect: Dialect::Seram,
        url: BASE.into(),
        atr: SEED_ATR.to_vec(),
        max_capdu: None,
        max_rapdu: None,
        agent_id: None,
    });
    assert!(matches!(
        s.poll(),
        Ok(Action::Failed(SessionError::Seram(
            SeramError::WrongSession
        )))
    ));
}
