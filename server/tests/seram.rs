//! The GP SERAM endpoints against card-relay's own SERAM state machine
//! (`card_relay::session::seram`), with the seed's card: the seed's `test` script and the
//! others run as they do at `/rt/<app>`; every served message decodes as the schema's
//! message (the JSON-schema validation itself is in tests/e2e/seram.test.mjs).

mod common;

use std::net::SocketAddr;

use card_relay::proto::hex::h;
use card_relay::proto::seram::Order;
use card_relay::session::seram::{SeramAction, SeramConfig, SeramSession};
use card_relay::session::{CardCommand, HttpResponse, SessionError};
use common::{request, seed_card, start_default, HSM_ATR, PAGE_ORIGIN};

/// What a driven SERAM session did.
struct SeramRun {
    end: SeramAction,
    orders: Vec<String>,
    reports: Vec<String>,
    notifications: Vec<String>,
    apdus: Vec<Vec<u8>>,
}

const HANDSHAKE: &str = r#"{"secureElements":[{"seType":"undefined","seId":"3BFE1800008131FE458031815448534D31738021408107FA"}]}"#;

async fn drive(addr: SocketAddr, app: &str, id: &str) -> SeramRun {
    let url = format!("http://{addr}/seram/{app}");
    let mut session = SeramSession::new(SeramConfig::new(url, id, &h(HSM_ATR)));
    let mut card = seed_card();
    let mut run = SeramRun {
        end: SeramAction::Failed(SessionError::Canceled),
        orders: Vec::new(),
        reports: Vec::new(),
        notifications: Vec::new(),
        apdus: Vec::new(),
    };
    // Virtual time: the server does not care when requests come.
    let mut now = 0;
    for _ in 0..1000 {
        match session.poll(now).expect("call order") {
            SeramAction::Post(x) => {
                let target = x.request.url.split_once(&addr.to_string()).expect("url").1;
                let body = String::from_utf8(x.request.body.clone()).expect("utf-8");
                let raw = request(
                    addr,
                    "POST",
                    target,
                    &[("Content-Type", "application/json")],
                    &x.request.body,
                )
                .await;
                if target.contains("remoteManagement") {
                    run.reports.push(body);
                    run.orders.push(raw.text());
                }
                let response = HttpResponse {
                    status: raw.status,
                    headers: raw.headers.clone(),
                    body: raw.body.clone(),
                };
                session.on_http_response(response, now).expect("response");
            }
            SeramAction::Wait { until_ms } => now = until_ms,
            SeramAction::Card(command) => {
                if let CardCommand::Apdu(a) = &command {
                    run.apdus.push(a.clone());
                }
                session.on_card_response(card(&command)).expect("card");
            }
            SeramAction::Notify(n) => run.notifications.push(n.message),
            end @ (SeramAction::Done(_) | SeramAction::Failed(_)) => {
                run.end = end;
                return run;
            }
        }
    }
    panic!("session did not end");
}

async fn status(addr: SocketAddr, id: &str) -> String {
    let raw = request(
        addr,
        "GET",
        &format!("/seram/session?sessionId={id}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(raw.status, 200);
    raw.text()
}

/// The seed's `test` script over SERAM: reset gives the handshake's ATR, then the same
/// APDUs as over OpenSCDP (seed.md), the notification "Test", and Stop.
#[tokio::test]
async fn seed_test_runs_over_seram() {
    let addr = start_default().await;
    let run = drive(addr, "test", "seed-1").await;
    assert!(matches!(run.end, SeramAction::Done(_)), "{:?}", run.end);
    assert_eq!(
        run.apdus,
        vec![
            h("00 20 00 81"),
            h("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00"),
            h("00 20 00 81 06 36 34 38 32 31 39"),
            h("00 84 00 00 45"),
            h("00 84 00 00 45"),
        ]
    );
    assert_eq!(run.notifications, vec!["Test".to_owned()]);
    let first = Order::decode(run.orders[0].as_bytes()).expect("an order");
    assert_eq!(
        run.orders[0],
        r#"{"delay":0,"ramCommands":[{"ramCommandType":"ramStartCommand"},{"ramCommandType":"notificationCommand","deviceAppNotification":"Test"},{"ramCommandType":"seRamCommand","listOfCAPDU":["00200081"]}]}"#
    );
    assert_eq!(first.delay_ms, Some(0));
    assert!(run.orders.last().unwrap().contains("ramStopCommand"));
    for order in &run.orders {
        Order::decode(order.as_bytes()).expect("served orders decode");
    }
    let json = status(addr, "seed-1").await;
    for part in [
        r#""dialect":"seram""#,
        r#""state":"completed""#,
        r#""app":"test""#,
        r#""notification 0: Test""#,
        r#""78 C: 00 84 00 00 - GET CHALLENGE      Le=69""#,
    ] {
        assert!(json.contains(part), "{part} in {json}");
    }
    assert!(!json.contains("648219"), "{json}");
}

/// `gp-test` sends two C-APDUs in one SE RAM Command; `fail` ends with its negative
/// notification followed by Stop, and the server records the failure.
#[tokio::test]
async fn batches_and_failing_scripts() {
    let addr = start_default().await;
    let run = drive(addr, "gp-test", "gp-1").await;
    assert!(matches!(run.end, SeramAction::Done(_)), "{:?}", run.end);
    assert!(
        run.orders[0]
            .contains(r#""listOfCAPDU":["00A4040C0BE82B0601040181C31F0201","0084000008"]"#),
        "{}",
        run.orders[0]
    );
    let run = drive(addr, "fail", "fail-1").await;
    assert!(matches!(run.end, SeramAction::Done(_)));
    assert_eq!(
        run.notifications,
        vec!["Failure talking to card".to_owned()]
    );
    let json = status(addr, "fail-1").await;
    assert!(json.contains(r#""state":"failed""#), "{json}");
}

/// Handshake refusals: unknown app or bad id (404), no acceptable proposal (406), not a
/// Handshake Command (400); Reports for unknown sessions (404) and bodies that are not
/// Reports (400).
#[tokio::test]
async fn refusals() {
    let addr = start_default().await;
    let ct = [("Content-Type", "application/json")];
    let post = |target: String, body: &'static str| async move {
        request(addr, "POST", &target, &ct, body.as_bytes())
            .await
            .status
    };
    assert_eq!(
        post("/seram/nope/handshake?sessionId=a".into(), HANDSHAKE).await,
        404
    );
    assert_eq!(post("/seram/test/handshake".into(), HANDSHAKE).await, 404);
    assert_eq!(
        post("/seram/test/handshake?sessionId=a%20b".into(), HANDSHAKE).await,
        404
    );
    let old = r#"{"secureElements":[],"supportedVersions":["1.0.0"]}"#;
    assert_eq!(
        post("/seram/test/handshake?sessionId=a".into(), old).await,
        406
    );
    assert_eq!(
        post("/seram/test/handshake?sessionId=a".into(), "{}").await,
        400
    );
    let polling =
        r#"{"localAgentStatus":{"localAgentStatusEnum":"POLLING","executedSeRamCommands":0}}"#;
    assert_eq!(
        post("/seram/test/remoteManagement?sessionId=zz".into(), polling).await,
        404
    );
    assert_eq!(
        post("/seram/test/handshake?sessionId=b".into(), HANDSHAKE).await,
        200
    );
    assert_eq!(
        post("/seram/test/remoteManagement?sessionId=b".into(), "{}").await,
        400
    );
    assert_eq!(
        post(
            "/seram/pin-test/remoteManagement?sessionId=b".into(),
            polling
        )
        .await,
        404,
        "the session belongs to another app"
    );
}

/// A Local Agent error status ends the script; the answer is Stop.
#[tokio::test]
async fn agent_error_ends_the_session() {
    let addr = start_default().await;
    let ct = [("Content-Type", "application/json")];
    let hs = request(
        addr,
        "POST",
        "/seram/test/handshake?sessionId=c",
        &ct,
        HANDSHAKE.as_bytes(),
    )
    .await;
    assert_eq!(hs.status, 200);
    assert!(hs
        .text()
        .contains(r#""chosenDataProtocol":"application/json""#));
    assert!(hs
        .text()
        .contains(r#""chosenDataFormat":"application/json""#));
    let polling =
        r#"{"localAgentStatus":{"localAgentStatusEnum":"POLLING","executedSeRamCommands":0}}"#;
    let first = request(
        addr,
        "POST",
        "/seram/test/remoteManagement?sessionId=c",
        &ct,
        polling.as_bytes(),
    )
    .await;
    assert!(first.text().contains("seRamCommand"));
    let failure = r#"{"localAgentStatus":{"localAgentStatusEnum":"UNAVAILABLE_SE","executedSeRamCommands":0,"errorMsg":"card removed"}}"#;
    let last = request(
        addr,
        "POST",
        "/seram/test/remoteManagement?sessionId=c",
        &ct,
        failure.as_bytes(),
    )
    .await;
    assert!(last.text().contains("ramStopCommand"), "{}", last.text());
    let json = status(addr, "c").await;
    assert!(json.contains("UNAVAILABLE_SE: card removed"), "{json}");
    // CORS: an allowed page origin may call the endpoints.
    let pre = request(
        addr,
        "OPTIONS",
        "/seram/test/handshake?sessionId=d",
        &[
            ("Origin", PAGE_ORIGIN),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        b"",
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some(PAGE_ORIGIN));
}
