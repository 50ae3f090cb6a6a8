//! RAMOverHTTP sessions over real HTTP on loopback, driven by card-relay's own client state
//! machine (`card_relay::session::Session`) and the seed's card.

mod common;

use std::time::{Duration, Instant};

use card_relay::proto::hex::h;
use card_relay::session::{
    Action, CardCommand, CardResult, Dialect, EndStatus, Outcome, SessionError,
};
use card_relay_server::{Limits, ServerConfig};
use common::*;

const GP_SCRIPT_CT: &str = "application/vnd.globalplatform.card-content-mgt;version=1.0";

/// The OpenSCDP command-script content type this server documents.
const SCRIPT_CT: &str = "application/org.openscdp-content-mgt;version=1.0";

fn challenge_reply(fill: u8) -> Vec<u8> {
    let mut v = h("AB 4C 23 47");
    v.extend_from_slice(&[fill; 69]);
    v.extend_from_slice(&h("90 00 80 01 01"));
    v
}

/// The seed session (seed.md) in the OpenSCDP dialect, every body checked.
fn seed_exchanges() -> Vec<(Vec<u8>, u16, Vec<u8>)> {
    vec![
        (hta("E8 1A C0 18", "", HSM_ATR), 200, h("AA 02 C0 00")),
        (
            hta("AB 1D C0 18", "", &format!("{HSM_ATR} 80 01 00")),
            200,
            hta("AA 11 E0 09 02 01 00 0C 04", "Test", "22 04 00 20 00 81"),
        ),
        (
            h("AB 07 23 02 6E 00 80 01 01"),
            200,
            h("AA 13 22 11 00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00"),
        ),
        (
            h("AB 10 23 0B 62 07 82 01 78 85 02 01 02 90 00 80 01 01"),
            200,
            hta("AA 0D 22 0B 00 20 00 81 06", "648219", ""),
        ),
        (
            h("AB 07 23 02 67 00 80 01 01"),
            200,
            h("AA 07 22 05 00 84 00 00 45"),
        ),
        (challenge_reply(1), 200, h("AA 07 22 05 00 84 00 00 45")),
        // card.close() sends nothing: the answer to the last reply is the end.
        (challenge_reply(2), 204, Vec::new()),
    ]
}

fn check_exchanges(run: &Run, expected: &[(Vec<u8>, u16, Vec<u8>)]) {
    assert_eq!(run.exchanges.len(), expected.len(), "{:#?}", run.exchanges);
    for (i, (exchange, (request, status, response))) in
        run.exchanges.iter().zip(expected).enumerate()
    {
        assert_eq!(&exchange.request.body, request, "request {i}");
        assert_eq!(exchange.response.status, *status, "status {i}");
        assert_eq!(&exchange.response.body, response, "response {i}");
    }
}

#[tokio::test]
async fn seed_session_openscdp() {
    let addr = start_default().await;
    let run = drive(
        addr,
        config(Dialect::OpenScdp, "/rt/test"),
        None,
        &[],
        seed_card(),
    )
    .await;
    check_exchanges(&run, &seed_exchanges());
    assert_eq!(
        run.end,
        Action::Done(Outcome {
            apdus: 5,
            round_trips: 7,
            last_notification: Some((0, "Test".into())),
            close_message: None,
            targeted_application: None,
            status: EndStatus::Completed,
        })
    );
    assert_eq!(run.notifications, vec![(0, "Test".to_owned())]);
    let first = &run.exchanges[0].response;
    assert_eq!(first.header("content-type"), Some(SCRIPT_CT));
    let set_cookie = first.header("set-cookie").expect("cookie set");
    assert!(
        set_cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax"),
        "{set_cookie}"
    );
    let id = run.cookie.clone().expect("cookie");
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    // Only the first answer sets the cookie; every later POST carried it.
    assert!(run.exchanges[1..]
        .iter()
        .all(|e| e.response.header("set-cookie").is_none()));

    let status = status(addr, &id).await;
    assert_eq!(status.status, 200);
    assert_eq!(status.header("content-type"), Some("application/json"));
    let json = status.text();
    for part in [
        format!(r#""id":"{id}""#),
        r#""app":"test""#.to_owned(),
        r#""dialect":"openscdp""#.to_owned(),
        r#""state":"completed""#.to_owned(),
        r#""error":null"#.to_owned(),
        r#""round_trips":7"#.to_owned(),
        r#""templates":6"#.to_owned(),
        r#""close""#.to_owned(),
        r#""notification 0: Test""#.to_owned(),
        r#""78 C: 00 20 00 81 - VERIFY Lc=6 ******""#.to_owned(),
        r#""   R: SW1/SW2=6700 (Checking error: Wrong length) Lr=0""#.to_owned(),
        r#""78 C: 00 84 00 00 - GET CHALLENGE      Le=69""#.to_owned(),
    ] {
        assert!(json.contains(&part), "{part} in {json}");
    }
    // The PIN never reaches the log.
    assert!(
        !json.contains("648219") && !json.contains("36 34 38"),
        "{json}"
    );
}

#[tokio::test]
async fn gp_session_follows_next_uri() {
    let addr = start_default().await;
    let run = drive(
        addr,
        config(Dialect::GlobalPlatform, "/rt/gp-test"),
        None,
        &[],
        seed_card(),
    )
    .await;
    let mut step1 = h("AB 59 80 01 02 23 0B 62 07 82 01 78 85 02 01 02 90 00 23 47");
    step1.extend_from_slice(&[1; 69]);
    step1.extend_from_slice(&h("90 00"));
    check_exchanges(
        &run,
        &[
            (
                Vec::new(),
                200,
                h("AA 19 22 10 00 A4 04 0C 0B E8 2B 06 01 04 01 81 C3 1F 02 01
                   22 05 00 84 00 00 08"),
            ),
            (step1, 200, h("AA 06 22 04 00 20 00 81")),
            (h("AB 07 80 01 01 23 02 6E 00"), 204, Vec::new()),
        ],
    );
    let urls: Vec<&str> = run
        .exchanges
        .iter()
        .map(|e| e.request.url.as_str())
        .collect();
    assert_eq!(urls[0], "/rt/gp-test");
    let next: Vec<Option<&str>> = run
        .exchanges
        .iter()
        .map(|e| e.response.header("x-admin-next-uri"))
        .collect();
    assert_eq!(next[2], None);
    // Each Next-URI names its step and a fresh token, and the client posted there.
    for step in 1..=2 {
        let uri = next[step - 1].expect("next-uri");
        assert_next_uri(uri, "/rt/gp-test", step);
        assert_eq!(urls[step], uri);
    }
    assert_ne!(next[0], next[1]);
    for e in &run.exchanges {
        assert_eq!(
            e.response.header("x-admin-protocol"),
            Some("globalplatform-remote-admin/1.0")
        );
    }
    assert_eq!(
        run.exchanges[0].response.header("content-type"),
        Some(GP_SCRIPT_CT)
    );
    let Action::Done(outcome) = &run.end else {
        panic!("{:?}", run.end)
    };
    assert_eq!((outcome.apdus, outcome.round_trips), (3, 3));
    let json = status(addr, run.cookie.as_deref().expect("cookie"))
        .await
        .text();
    assert!(json.contains(r#""dialect":"gp""#), "{json}");
    assert!(json.contains(r#""state":"completed""#), "{json}");
    assert!(json.contains(r#""templates":2"#), "{json}");
    assert!(
        json.contains(
            "notification 1: PIN state unknown: 6E00 (Checking error: Class not supported)"
        ),
        "{json}"
    );
}

#[tokio::test]
async fn session_id_from_an_existing_cookie() {
    let addr = start_default().await;
    // The OCF daemon's sessionId (seed.md) becomes the RAM session's id.
    let run = drive(
        addr,
        config(Dialect::OpenScdp, "/rt/test"),
        Some("1n6bij7b4v0di".to_owned()),
        &[],
        seed_card(),
    )
    .await;
    assert!(matches!(run.end, Action::Done(_)), "{:?}", run.end);
    assert!(run
        .exchanges
        .iter()
        .all(|e| e.response.header("set-cookie").is_none()));
    let json = status(addr, "1n6bij7b4v0di").await.text();
    assert!(json.contains(r#""id":"1n6bij7b4v0di""#), "{json}");
    assert!(json.contains(r#""state":"completed""#), "{json}");

    // A web session from /api/new-session links the same way.
    let web = request(addr, "GET", "/api/new-session", &[], b"").await;
    assert_eq!(web.status, 200);
    let id = web.cookie().expect("web session cookie");
    assert_eq!(web.text(), format!(r#"{{"id":"{id}"}}"#));
    let none = status(addr, &id).await;
    assert_eq!(none.status, 404);
    assert_eq!(
        none.text(),
        r#"{"error":"no ram session for this session"}"#
    );
    let anonymous = request(addr, "GET", "/rt/session", &[], b"").await;
    assert_eq!(anonymous.status, 404);
    assert_eq!(anonymous.text(), r#"{"error":"no session cookie"}"#);
    let run = drive(
        addr,
        config(Dialect::OpenScdp, "/rt/pin-test"),
        Some(id.clone()),
        &[],
        |_: &CardCommand| CardResult::Response(h("63 C3")),
    )
    .await;
    assert_eq!(
        run.notifications,
        vec![(0, "PIN not verified, 3 tries left".to_owned())]
    );
    let json = status(addr, &id).await.text();
    assert!(json.contains(r#""app":"pin-test""#), "{json}");
}

#[tokio::test]
async fn later_posts_need_the_session() {
    let addr = start_default().await;
    let reply = h("AB 03 80 01 00");
    let ct = [("Content-Type", OPENSCDP_CT)];
    let no_cookie = request(addr, "POST", "/rt/test", &ct, &reply).await;
    assert_eq!(no_cookie.status, 400);
    assert!(
        no_cookie.text().contains("no session cookie"),
        "{}",
        no_cookie.text()
    );
    let unknown = request(
        addr,
        "POST",
        "/rt/test",
        &[("Content-Type", OPENSCDP_CT), ("Cookie", "JSESSIONID=nope")],
        &reply,
    )
    .await;
    assert_eq!(unknown.status, 403);
    assert_eq!(unknown.text(), "unknown session\n");

    // After the end, the session refuses more POSTs.
    let run = drive(
        addr,
        config(Dialect::OpenScdp, "/rt/test"),
        None,
        &[],
        seed_card(),
    )
    .await;
    let cookie = format!("JSESSIONID={}", run.cookie.expect("cookie"));
    let late = request(
        addr,
        "POST",
        "/rt/test",
        &[("Content-Type", OPENSCDP_CT), ("Cookie", &cookie)],
        &reply,
    )
    .await;
    assert_eq!(late.status, 403);
    assert_eq!(late.text(), "session has ended\n");
}

#[tokio::test]
async fn unknown_app_and_methods() {
    let addr = start_default().await;
    let first = hta("E8 1A C0 18", "", HSM_ATR);
    let missing = request(
        addr,
        "POST",
        "/rt/nope",
        &[("Content-Type", OPENSCDP_CT)],
        &first,
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "unknown app\n");
    let get = request(addr, "GET", "/rt/test", &[], b"").await;
    assert_eq!(get.status, 405);
    let allow = get.header("allow").expect("allow header");
    assert!(allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn body_limit() {
    let addr = start_default().await;
    let big = vec![0u8; 64 * 1024 + 1];
    let r = request(
        addr,
        "POST",
        "/rt/test",
        &[("Content-Type", OPENSCDP_CT)],
        &big,
    )
    .await;
    assert_eq!(r.status, 413);
    // Exactly 64 KiB is read (and refused as not a first POST).
    let ok = vec![0u8; 64 * 1024];
    let r = request(
        addr,
        "POST",
        "/rt/test",
        &[("Content-Type", OPENSCDP_CT)],
        &ok,
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn fail_app_ends_with_a_negative_notification() {
    let addr = start_default().await;
    let run = drive(
        addr,
        config(Dialect::OpenScdp, "/rt/fail"),
        None,
        &[],
        seed_card(),
    )
    .await;
    assert_eq!(
        run.end,
        Action::Done(Outcome {
            apdus: 1,
            round_trips: 2,
            last_notification: Some((-1, "Failure talking to card".into())),
            close_message: None,
            targeted_application: None,
            status: EndStatus::EndedByServer {
                id: -1,
                message: "Failure talking to card".into()
            },
        })
    );
    assert_eq!(
        run.exchanges[1].response.body,
        hta("AA 1E E0 1C 02 01 FF 0C 17", "Failure talking to card", "")
    );
    let json = status(addr, run.cookie.as_deref().expect("cookie"))
        .await
        .text();
    assert!(json.contains(r#""state":"failed""#), "{json}");
    assert!(
        json.contains(r#""error":"notification -1: Failure talking to card""#),
        "{json}"
    );

    // GP has no notifications: the session just ends, and is recorded as failed.
    let run = drive(
        addr,
        config(Dialect::GlobalPlatform, "/rt/fail"),
        None,
        &[],
        seed_card(),
    )
    .await;
    assert_eq!(run.exchanges.last().map(|e| e.response.status), Some(204));
    let json = status(addr, run.cookie.as_deref().expect("cookie"))
        .await
        .text();
    assert!(json.contains(r#""state":"failed""#), "{json}");
}

#[tokio::test]
async fn unexpected_status_word_fails_the_script() {
    let addr = start_default().await;
    let mut seed = seed_card();
    let card = move |command: &CardCommand| match command {
        CardCommand::Apdu(apdu) if apdu[1] == 0xA4 => CardResult::Response(h("6A 82")),
        other => seed(other),
    };
    let run = drive(addr, config(Dialect::OpenScdp, "/rt/test"), None, &[], card).await;
    let text = "Script failed: unexpected status word 6A82 to SELECT";
    let Action::Done(outcome) = &run.end else {
        panic!("{:?}", run.end)
    };
    assert_eq!(
        outcome.status,
        EndStatus::EndedByServer {
            id: -1,
            message: text.into()
        }
    );
    // The failure notification goes alone: the close of the script's `finally` is not sent.
    let last = hta("AA 3B E0 39 02 01 FF 0C 34", text, "");
    assert_eq!(run.exchanges.last().expect("posts").response.body, last);
    assert_eq!(run.exchanges.len(), 4);
    let cookie = format!("JSESSIONID={}", run.cookie.as_deref().expect("cookie"));
    let json = status(addr, run.cookie.as_deref().expect("cookie"))
        .await
        .text();
    assert!(json.contains(r#""close""#), "the close is logged: {json}");
    // A client that answers the failure notification gets the end, once.
    let ct = ("Content-Type", OPENSCDP_CT);
    let reply = h("AB 03 80 01 00");
    let end = request(addr, "POST", "/rt/test", &[ct, ("Cookie", &cookie)], &reply).await;
    assert_eq!((end.status, end.body.len()), (204, 0));
    let again = request(addr, "POST", "/rt/test", &[ct, ("Cookie", &cookie)], &reply).await;
    assert_eq!(again.status, 403);

    // The seed script needs a reset, which GP lacks: the session ends at once.
    let run = drive(
        addr,
        config(Dialect::GlobalPlatform, "/rt/test"),
        None,
        &[],
        seed_card(),
    )
    .await;
    assert_eq!(run.exchanges.len(), 1);
    assert_eq!(run.exchanges[0].response.status, 204);
    let json = status(addr, run.cookie.as_deref().expect("cookie"))
        .await
        .text();
    assert!(
        json.contains("reset is not available in the gp dialect"),
        "{json}"
    );
}

#[tokio::test]
async fn silent_client_is_dropped() {
    let addr = start(ServerConfig {
        limits: Limits {
            exchange_timeout: Duration::from_millis(200),
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let first = request(
        addr,
        "POST",
        "/rt/test",
        &[("Content-Type", OPENSCDP_CT)],
        &hta("E8 1A C0 18", "", HSM_ATR),
    )
    .await;
    assert_eq!(first.body, h("AA 02 C0 00"));
    let id = first.cookie().expect("cookie");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let json = status(addr, &id).await.text();
    assert!(json.contains(r#""state":"failed""#), "{json}");
    assert!(
        json.contains("client did not answer within 200ms"),
        "{json}"
    );
    let cookie = format!("JSESSIONID={id}");
    let late = request(
        addr,
        "POST",
        "/rt/test",
        &[("Content-Type", OPENSCDP_CT), ("Cookie", &cookie)],
        &hta("AB 1D C0 18", "", &format!("{HSM_ATR} 80 01 00")),
    )
    .await;
    assert_eq!(late.status, 403);
}

#[tokio::test]
async fn concurrent_session_limit() {
    let addr = start(ServerConfig {
        limits: Limits {
            max_sessions: 1,
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let first = hta("E8 1A C0 18", "", HSM_ATR);
    let ct = ("Content-Type", OPENSCDP_CT);
    let a = request(addr, "POST", "/rt/test", &[ct], &first).await;
    assert_eq!(a.status, 200);
    let b = request(addr, "POST", "/rt/test", &[ct], &first).await;
    assert_eq!(b.status, 503);
    // A new first POST under the running session's own id replaces it.
    let cookie = format!("JSESSIONID={}", a.cookie().expect("cookie"));
    let again = request(addr, "POST", "/rt/test", &[ct, ("Cookie", &cookie)], &first).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, h("AA 02 C0 00"));
}

#[tokio::test]
async fn cors_for_allowed_and_refused_origins() {
    let addr = start_default().await;
    let preflight = |origin: &'static str| async move {
        request(
            addr,
            "OPTIONS",
            "/rt/test",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            b"",
        )
        .await
    };
    let ok = preflight(PAGE_ORIGIN).await;
    assert_eq!(ok.status, 204);
    for (name, value) in [
        ("access-control-allow-origin", PAGE_ORIGIN),
        ("access-control-allow-credentials", "true"),
        ("access-control-allow-methods", "POST"),
        (
            "access-control-allow-headers",
            "Content-Type, X-Admin-Protocol, X-Admin-From, X-Admin-Script-Status, X-Admin-Resume",
        ),
        ("access-control-max-age", "600"),
        ("vary", "Origin"),
    ] {
        assert_eq!(ok.header(name), Some(value), "{name}");
    }
    let refused = preflight("http://evil.example").await;
    assert_eq!(refused.status, 403);
    assert!(refused.header("access-control-allow-origin").is_none());

    // A whole GP session from the allowed page: CORS headers on every answer, a
    // cross-site cookie.
    let run = drive(
        addr,
        config(Dialect::GlobalPlatform, "/rt/gp-test"),
        None,
        &[("Origin", PAGE_ORIGIN)],
        seed_card(),
    )
    .await;
    assert!(matches!(run.end, Action::Done(_)), "{:?}", run.end);
    for e in &run.exchanges {
        let r = &e.response;
        assert_eq!(r.header("access-control-allow-origin"), Some(PAGE_ORIGIN));
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
        assert_eq!(
            r.header("access-control-expose-headers"),
            Some("X-Admin-Next-URI, X-Admin-Protocol")
        );
    }
    let set_cookie = run.exchanges[0]
        .response
        .header("set-cookie")
        .expect("cookie");
    assert!(
        set_cookie.ends_with("HttpOnly; SameSite=None; Secure"),
        "{set_cookie}"
    );

    // A refused origin gets neither a session nor CORS headers.
    let evil = request(
        addr,
        "POST",
        "/rt/test",
        &[
            ("Content-Type", OPENSCDP_CT),
            ("Origin", "http://evil.example"),
        ],
        &hta("E8 1A C0 18", "", HSM_ATR),
    )
    .await;
    assert_eq!(evil.status, 403);
    assert!(evil.header("access-control-allow-origin").is_none());
    assert!(evil.header("set-cookie").is_none());

    // A web session for the allowed page: a cross-site cookie it can read the answer of.
    let web = request(
        addr,
        "GET",
        "/api/new-session",
        &[("Origin", PAGE_ORIGIN)],
        b"",
    )
    .await;
    assert_eq!(web.status, 200);
    assert_eq!(web.header("access-control-allow-origin"), Some(PAGE_ORIGIN));
    assert!(web
        .header("set-cookie")
        .expect("cookie")
        .ends_with("SameSite=None; Secure"));

    // Same origin: no CORS headers, a Lax cookie.
    let own = format!("http://{addr}");
    let same = request(
        addr,
        "POST",
        "/rt/test",
        &[("Content-Type", OPENSCDP_CT), ("Origin", &own)],
        &hta("E8 1A C0 18", "", HSM_ATR),
    )
    .await;
    assert_eq!(same.status, 200);
    assert!(same.header("access-control-allow-origin").is_none());
    assert!(same
        .header("set-cookie")
        .expect("cookie")
        .ends_with("SameSite=Lax"));
}

/// The first POST of each dialect to `path`.
async fn first_post(addr: std::net::SocketAddr, dialect: Dialect, path: &str) -> Raw {
    match dialect {
        Dialect::OpenScdp | Dialect::Seram => {
            request(
                addr,
                "POST",
                path,
                &[("Content-Type", OPENSCDP_CT)],
                &hta("E8 1A C0 18", "", HSM_ATR),
            )
            .await
        }
        Dialect::GlobalPlatform => {
            request(
                addr,
                "POST",
                path,
                &[
                    ("X-Admin-Protocol", "globalplatform-remote-admin/1.0"),
                    ("X-Admin-From", "card-relay"),
                ],
                b"",
            )
            .await
        }
    }
}

#[tokio::test]
async fn fault_status_codes() {
    let addr = start_default().await;
    for dialect in [Dialect::OpenScdp, Dialect::GlobalPlatform] {
        for code in [404u16, 500, 504] {
            let r = first_post(addr, dialect, &format!("/rt/fault/{code}")).await;
            assert_eq!(r.status, code);
            assert!(r.body.is_empty());
            let run = drive(
                addr,
                config(dialect, &format!("/rt/fault/{code}")),
                None,
                &[],
                seed_card(),
            )
            .await;
            assert_eq!(
                run.end,
                Action::Failed(SessionError::Server { status: code })
            );
        }
    }
}

#[tokio::test]
async fn fault_bad_scripts() {
    let addr = start_default().await;
    for dialect in [Dialect::OpenScdp, Dialect::GlobalPlatform] {
        for (kind, body) in [
            ("bad-length", h("AA 0A 22 04 00 20 00 81")),
            ("truncated", h("AA 81")),
            ("unknown-tag", h("AA 03 99 01 00")),
        ] {
            let path = format!("/rt/fault/{kind}");
            let r = first_post(addr, dialect, &path).await;
            assert_eq!((r.status, &r.body), (200, &body), "{kind}");
            let (ct, protocol) = match dialect {
                Dialect::OpenScdp | Dialect::Seram => (SCRIPT_CT, None),
                Dialect::GlobalPlatform => (GP_SCRIPT_CT, Some("globalplatform-remote-admin/1.0")),
            };
            assert_eq!(r.header("content-type"), Some(ct));
            assert_eq!(r.header("x-admin-protocol"), protocol);
            let run = drive(addr, config(dialect, &path), None, &[], seed_card()).await;
            assert!(
                matches!(run.end, Action::Failed(SessionError::BadScript(_))),
                "{kind}: {:?}",
                run.end
            );
            assert!(run.card_commands.is_empty());
        }
        let deep = first_post(addr, dialect, "/rt/fault/deep").await;
        assert_eq!(deep.status, 200);
        assert!(deep.body.len() > 2000 && deep.body[0] == 0xAA);
        let run = drive(
            addr,
            config(dialect, "/rt/fault/deep"),
            None,
            &[],
            seed_card(),
        )
        .await;
        assert!(
            matches!(run.end, Action::Failed(SessionError::BadScript(_))),
            "{:?}",
            run.end
        );
    }
}

#[tokio::test]
async fn fault_huge_and_close_mid_body() {
    let addr = start_default().await;
    for dialect in [Dialect::OpenScdp, Dialect::GlobalPlatform] {
        let huge = first_post(addr, dialect, "/rt/fault/huge").await;
        assert_eq!(huge.status, 200);
        assert_eq!(huge.announced, Some(5 * 1024 * 1024));
        assert_eq!(huge.body.len(), 5 * 1024 * 1024);
        assert_eq!(&huge.body[..5], &h("AA 83 4F FF FB"));

        let cut = first_post(addr, dialect, "/rt/fault/close-mid-body").await;
        assert_eq!(cut.status, 200);
        assert_eq!(cut.announced, Some(1024 * 1024));
        assert_eq!(
            cut.body.len(),
            512 * 1024,
            "the connection closed after 512 KiB"
        );
        assert_eq!(&cut.body[..10], &h("AA 83 0F FF FB 22 83 0F FF F6"));
    }
}

#[tokio::test]
async fn fault_never_answers() {
    let addr = start_default().await;
    let mut stream = send_only(
        addr,
        "POST",
        "/rt/fault/never",
        &[("Content-Type", OPENSCDP_CT)],
        &hta("E8 1A C0 18", "", HSM_ATR),
    )
    .await;
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::io::AsyncReadExt::read(&mut stream, &mut buf),
    )
    .await;
    assert!(
        read.is_err(),
        "no byte and no close within 500 ms: {read:?}"
    );
}

#[tokio::test]
async fn fault_slow_answers_late_then_runs_the_seed() {
    let addr = start_default().await;
    let started = Instant::now();
    let run = drive(
        addr,
        config(Dialect::OpenScdp, "/rt/fault/slow-ms/300"),
        None,
        &[],
        seed_card(),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Identical to /rt/test, posted to the slow URL.
    check_exchanges(&run, &seed_exchanges());
    assert!(matches!(run.end, Action::Done(_)));
    assert!(run
        .exchanges
        .iter()
        .all(|e| e.request.url == "/rt/fault/slow-ms/300"));

    let started = Instant::now();
    let run = drive(
        addr,
        config(Dialect::GlobalPlatform, "/rt/fault/slow-ms/300"),
        None,
        &[],
        seed_card(),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(matches!(run.end, Action::Done(_)), "{:?}", run.end);
    assert_next_uri(
        run.exchanges[0]
            .response
            .header("x-admin-next-uri")
            .expect("next-uri"),
        "/rt/fault/slow-ms/300",
        1,
    );

    let bad = first_post(addr, Dialect::OpenScdp, "/rt/fault/slow-ms/abc").await;
    assert_eq!(bad.status, 404);
}

#[tokio::test]
async fn own_client_accepts_a_close_template() {
    // A server that sends its close as a template of its own (what this server did before,
    // and what the Java Scripting Server may do): card-relay posts the reply and ends at 204.
    let addr = start_default().await;
    let run = drive(
        addr,
        config(Dialect::OpenScdp, "/rt/fault/close-template"),
        None,
        &[],
        seed_card(),
    )
    .await;
    check_exchanges(
        &run,
        &[
            (
                hta("E8 1A C0 18", "", HSM_ATR),
                200,
                h("AA 06 22 04 00 20 00 81"),
            ),
            (
                h("AB 07 23 02 6E 00 80 01 01"),
                200,
                hta("AA 0F E1 0D 0C 0B", "Card closed", ""),
            ),
            (h("AB 03 80 01 00"), 204, Vec::new()),
        ],
    );
    assert_eq!(
        run.end,
        Action::Done(Outcome {
            apdus: 1,
            round_trips: 3,
            last_notification: None,
            close_message: Some("Card closed".into()),
            targeted_application: None,
            status: EndStatus::Completed,
        })
    );
    // And against this server, which never sends one, there is no close message.
    let run = drive(
        addr,
        config(Dialect::OpenScdp, "/rt/pin-test"),
        None,
        &[],
        seed_card(),
    )
    .await;
    let Action::Done(outcome) = &run.end else {
        panic!("{:?}", run.end)
    };
    assert_eq!(outcome.close_message, None);
    assert_eq!(outcome.status, EndStatus::Completed);
}
