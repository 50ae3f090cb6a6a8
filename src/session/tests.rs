use crate::testing::test;

#[cfg(not(target_arch = "wasm32"))]
use super::uri::native::punycode;
use super::*;
use crate::proto::hex::h;
use crate::proto::ram::{GP_SCRIPT_CONTENT_TYPE, OPENSCDP_RESPONSE_CONTENT_TYPE};
use crate::proto::tlv::TlvError;

/// The SmartCard-HSM ATR (seed.md).
const HSM_ATR: &str = "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA";

/// Hex, then ASCII text, then hex.
fn hta(before: &str, text: &str, after: &str) -> Vec<u8> {
    let mut v = h(before);
    v.extend_from_slice(text.as_bytes());
    v.extend_from_slice(&h(after));
    v
}

fn response(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body,
    }
}

fn ok(body: Vec<u8>) -> HttpResponse {
    response(200, &[], body)
}

fn status(code: u16) -> HttpResponse {
    response(code, &[], Vec::new())
}

fn openscdp(url: &str) -> Session {
    Session::new(SessionConfig {
        dialect: Dialect::OpenScdp,
        url: url.to_owned(),
        atr: h(HSM_ATR),
        max_capdu: None,
        max_rapdu: None,
        agent_id: None,
    })
}

fn globalplatform(url: &str, agent_id: Option<&str>) -> Session {
    Session::new(SessionConfig {
        dialect: Dialect::GlobalPlatform,
        url: url.to_owned(),
        atr: h(HSM_ATR),
        max_capdu: None,
        max_rapdu: None,
        agent_id: agent_id.map(str::to_owned),
    })
}

/// One expected exchange between the session and its driver.
enum Step {
    /// Expect exactly this POST, then answer it.
    Post(HttpRequest, HttpResponse),
    /// Expect this card command, then answer it.
    Card(CardCommand, CardResult),
    /// Expect this notification.
    Notify(i32, &'static str),
}

fn openscdp_post(url: &str, body: Vec<u8>) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: url.to_owned(),
        headers: vec![(
            "Content-Type".to_owned(),
            "application/org.openscdp-content-mgt-response;version=1.0".to_owned(),
        )],
        body,
    }
}

fn gp_first_post(url: &str, from: &str) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: url.to_owned(),
        headers: vec![
            (
                "X-Admin-Protocol".to_owned(),
                "globalplatform-remote-admin/1.0".to_owned(),
            ),
            ("X-Admin-From".to_owned(), from.to_owned()),
        ],
        body: Vec::new(),
    }
}

fn gp_post(url: &str, from: &str, script_status: &str, body: Vec<u8>) -> HttpRequest {
    HttpRequest {
        method: "POST",
        url: url.to_owned(),
        headers: vec![
            (
                "X-Admin-Protocol".to_owned(),
                "globalplatform-remote-admin/1.0".to_owned(),
            ),
            ("X-Admin-From".to_owned(), from.to_owned()),
            (
                "Content-Type".to_owned(),
                "application/vnd.globalplatform.card-content-mgt-response;version=1.0".to_owned(),
            ),
            ("X-Admin-Script-Status".to_owned(), script_status.to_owned()),
        ],
        body,
    }
}

/// Runs the steps, checking every action, and returns the next action after them.
fn drive(session: &mut Session, steps: Vec<Step>) -> Action {
    for (i, step) in steps.into_iter().enumerate() {
        let action = session.poll().unwrap();
        match step {
            Step::Post(want, answer) => {
                assert_eq!(action, Action::Post(want), "step {i}");
                session.on_http_response(answer).unwrap();
            }
            Step::Card(want, answer) => {
                assert_eq!(action, Action::Card(want), "step {i}");
                session.on_card_response(answer).unwrap();
            }
            Step::Notify(id, message) => {
                let Action::Notify(n) = action else {
                    panic!("step {i}: expected a notification, got {action:?}");
                };
                assert_eq!((n.id, n.message.as_str()), (id, message), "step {i}");
            }
        }
    }
    session.poll().unwrap()
}

fn apdu(hex: &str) -> CardCommand {
    CardCommand::Apdu(h(hex))
}

fn rsp(hex: &str) -> CardResult {
    CardResult::Response(h(hex))
}

#[test]
fn seed_session() {
    // seed.md: the example performCardUpdate and its trace. Each server call is its own
    // command script (the RemoteTerminal queues hold one unit).
    const URL: &str = "http://localhost:8080/rt/test";
    let challenge1 = h("6A 52 35 70 52 FA 0D 2F C0 59 64 CC 69 7A 73 0D
                        11 56 F3 E3 3C E1 1A 0C B7 61 60 1E E8 89 B2 52
                        75 68 18 67 84 4A 37 41 4E 54 E8 8E CF CB E3 3E
                        86 1B B9 C6 A1 88 8F 3B FC C8 30 22 5D 77 A8 0E
                        D4 AD 2E 79 44 90 00");
    // The trace shows only the first 16 bytes of the second challenge; the rest is filler.
    let mut challenge2 = h("78 E2 A7 4E 65 0F BD 70 20 16 86 60 B0 F2 5F 33");
    challenge2.extend_from_slice(&[0x5A; 53]);
    challenge2.extend_from_slice(&h("90 00"));
    assert_eq!((challenge1.len(), challenge2.len()), (71, 71));
    let reply = |rapdu: &[u8]| {
        let mut v = h("AB 4C 23 47");
        v.extend_from_slice(rapdu);
        v.extend_from_slice(&h("80 01 01"));
        v
    };
    let get_challenge = h("AA 07 22 05 00 84 00 00 45");

    let mut session = openscdp(URL);
    let steps = vec![
        Step::Post(
            openscdp_post(URL, hta("E8 1A C0 18", "", HSM_ATR)),
            ok(h("AA 02 C0 00")),
        ),
        Step::Card(CardCommand::Reset, CardResult::Atr(h(HSM_ATR))),
        Step::Post(
            openscdp_post(URL, hta("AB 1D C0 18", "", &format!("{HSM_ATR} 80 01 00"))),
            ok(hta("AA 0B E0 09 02 01 00 0C 04", "Test", "")),
        ),
        Step::Notify(0, "Test"),
        Step::Post(
            openscdp_post(URL, h("AB 03 80 01 00")),
            ok(h("AA 06 22 04 00 20 00 81")),
        ),
        Step::Card(apdu("00 20 00 81"), rsp("6E 00")),
        Step::Post(
            openscdp_post(URL, h("AB 07 23 02 6E 00 80 01 01")),
            ok(h(
                "AA 13 22 11 00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00",
            )),
        ),
        Step::Card(
            apdu("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00"),
            rsp("62 07 82 01 78 85 02 01 02 90 00"),
        ),
        Step::Post(
            openscdp_post(
                URL,
                h("AB 10 23 0B 62 07 82 01 78 85 02 01 02 90 00 80 01 01"),
            ),
            ok(h("AA 0D 22 0B 00 20 00 81 06 36 34 38 32 31 39")),
        ),
        Step::Card(apdu("00 20 00 81 06 36 34 38 32 31 39"), rsp("67 00")),
        Step::Post(
            openscdp_post(URL, h("AB 07 23 02 67 00 80 01 01")),
            ok(get_challenge.clone()),
        ),
        Step::Card(
            apdu("00 84 00 00 45"),
            CardResult::Response(challenge1.clone()),
        ),
        Step::Post(openscdp_post(URL, reply(&challenge1)), ok(get_challenge)),
        Step::Card(
            apdu("00 84 00 00 45"),
            CardResult::Response(challenge2.clone()),
        ),
        // card.close() in the server's finally block; its text is not in the seed.
        Step::Post(
            openscdp_post(URL, reply(&challenge2)),
            ok(hta("AA 09 E1 07 0C 05", "close", "")),
        ),
        Step::Post(openscdp_post(URL, h("AB 03 80 01 00")), status(204)),
    ];
    let end = drive(&mut session, steps);
    assert_eq!(
        end,
        Action::Done(Outcome {
            apdus: 5,
            round_trips: 9,
            last_notification: Some((0, "Test".into())),
            close_message: Some("close".into()),
            targeted_application: None,
            status: EndStatus::Completed,
        })
    );
    assert_eq!(session.poll(), Err(CallError::Finished));
    assert!(session.is_finished());
    assert_eq!(session.cancel(), None);
}

#[test]
fn openscdp_template_with_many_units() {
    // Several units in one template: all APDUs run whatever their SW; the reset's ATR
    // stays in its place; notifications add nothing. C1/C2 go into the first POST.
    const URL: &str = "/rt/testappl";
    let mut session = Session::new(SessionConfig {
        dialect: Dialect::OpenScdp,
        url: URL.into(),
        atr: h("3B 80 00 00"),
        max_capdu: Some(261),
        max_rapdu: Some(258),
        agent_id: None,
    });
    let script = hta(
        "AA 1D 22 04 00 20 00 81 C0 00 E0 0C 02 01 07 0C 04",
        "Busy",
        "C3 01 0A 22 05 00 84 00 00 08",
    );
    let steps = vec![
        Step::Post(
            openscdp_post(URL, h("E8 0E C0 04 3B 80 00 00 C1 02 01 05 C2 02 01 02")),
            ok(script),
        ),
        Step::Card(apdu("00 20 00 81"), rsp("69 82")),
        Step::Card(CardCommand::Reset, CardResult::Atr(h("3B 80 00 00"))),
        Step::Notify(7, "Busy"),
        Step::Card(apdu("00 84 00 00 08"), rsp("01 02 03 04 05 06 07 08 90 00")),
        Step::Post(
            openscdp_post(
                URL,
                h("AB 19 23 02 69 82 C0 04 3B 80 00 00 23 0A 01 02 03 04 05 06 07 08 90 00 80 01 02"),
            ),
            status(204),
        ),
    ];
    let end = drive(&mut session, steps);
    let Action::Done(outcome) = end else {
        panic!("{end:?}");
    };
    assert_eq!((outcome.apdus, outcome.round_trips), (2, 2));
    assert_eq!(outcome.last_notification, Some((7, "Busy".into())));
}

#[test]
fn openscdp_notification_time_to_completion_reaches_the_driver() {
    let mut session = openscdp("/rt");
    let _ = session.poll().unwrap();
    session
        .on_http_response(ok(hta("AA 0D E0 0B 02 01 01 0C 03", "Abc", "C3 01 1E")))
        .unwrap();
    assert_eq!(
        session.poll(),
        Ok(Action::Notify(Notification {
            id: 1,
            message: "Abc".into(),
            time_to_completion: Some(30),
        }))
    );
}

#[test]
fn openscdp_negative_notify_ends_without_post() {
    // ramoverhttp.md §2.2: notify(-1, "Failure"); the C client stops at once.
    let mut session = openscdp("/rt/hsm");
    let script = hta(
        "AA 15 E0 0C 02 01 FF 0C 07",
        "Failure",
        "22 05 00 84 00 00 08",
    );
    let steps = vec![Step::Post(
        openscdp_post("/rt/hsm", hta("E8 1A C0 18", "", HSM_ATR)),
        ok(script),
    )];
    let action = drive(&mut session, steps);
    assert_eq!(
        action,
        Action::Notify(Notification {
            id: -1,
            message: "Failure".into(),
            time_to_completion: None,
        })
    );
    assert_eq!(
        session.poll(),
        Ok(Action::Done(Outcome {
            apdus: 0,
            round_trips: 1,
            last_notification: Some((-1, "Failure".into())),
            close_message: None,
            targeted_application: None,
            status: EndStatus::EndedByServer {
                id: -1,
                message: "Failure".into(),
            },
        }))
    );
    assert_eq!(session.poll(), Err(CallError::Finished));
}

#[test]
fn immediate_no_content() {
    let mut session = openscdp("/rt");
    assert!(matches!(session.poll(), Ok(Action::Post(_))));
    session.on_http_response(status(204)).unwrap();
    let Ok(Action::Done(outcome)) = session.poll() else {
        panic!("expected done");
    };
    assert_eq!((outcome.apdus, outcome.round_trips), (0, 1));
    assert_eq!(outcome.status, EndStatus::Completed);

    // GP: 204 with only X-Admin-Protocol (ramoverhttp.md §1.1).
    let mut session = globalplatform("/admin", None);
    let steps = vec![Step::Post(
        gp_first_post("/admin", "card-relay"),
        response(204, &[("X-Admin-Protocol", GP_ADMIN_PROTOCOL)], Vec::new()),
    )];
    assert!(matches!(drive(&mut session, steps), Action::Done(_)));
}

#[test]
fn server_error() {
    for mut session in [openscdp("/rt"), globalplatform("/admin", None)] {
        let _ = session.poll().unwrap();
        session.on_http_response(status(500)).unwrap();
        assert_eq!(
            session.poll(),
            Ok(Action::Failed(SessionError::Server { status: 500 }))
        );
        assert_eq!(session.poll(), Err(CallError::Finished));
    }
    let mut session = openscdp("/rt");
    let _ = session.poll().unwrap();
    session.on_http_response(ok(h("AA 00"))).unwrap();
    let _ = session.poll().unwrap();
    session.on_http_response(status(504)).unwrap();
    assert_eq!(
        session.poll(),
        Ok(Action::Failed(SessionError::Server { status: 504 }))
    );
}

#[test]
fn openscdp_bad_script() {
    let mut session = openscdp("/rt");
    let _ = session.poll().unwrap();
    session.on_http_response(ok(h("AA 03 99 01 00"))).unwrap();
    let Ok(Action::Failed(SessionError::BadScript(RamError::UnknownTag { .. }))) = session.poll()
    else {
        panic!("expected a bad script");
    };
    let abort = session.abort_request("bad script").unwrap();
    assert_eq!(
        abort,
        openscdp_post("/rt", hta("AB 11 E1 0C 0C 0A", "bad script", "80 01 00"))
    );

    // An empty 200 is a bad script too.
    let mut session = openscdp("/rt");
    let _ = session.poll().unwrap();
    session.on_http_response(ok(Vec::new())).unwrap();
    assert_eq!(
        session.poll(),
        Ok(Action::Failed(SessionError::BadScript(RamError::Tlv(
            TlvError::TruncatedTag
        ))))
    );
}

#[test]
fn cancel_openscdp() {
    let mut session = openscdp("/rt");
    // Nothing sent yet: nothing to tell the server.
    let mut fresh = openscdp("/rt");
    assert_eq!(fresh.cancel(), None);
    assert_eq!(fresh.poll(), Ok(Action::Failed(SessionError::Canceled)));

    let _ = session.poll().unwrap();
    session
        .on_http_response(ok(h("AA 06 22 04 00 20 00 81")))
        .unwrap();
    assert_eq!(session.poll(), Ok(Action::Card(apdu("00 20 00 81"))));
    // ramoverhttp.md §2.2, cancel.
    let cancel = session.cancel().unwrap();
    assert_eq!(
        cancel,
        openscdp_post(
            "/rt",
            hta("AB 17 E1 12 0C 10", "Session canceled", "80 01 00")
        )
    );
    assert_eq!(
        session.on_card_response(rsp("90 00")),
        Err(CallError::Finished)
    );
    assert_eq!(session.poll(), Ok(Action::Failed(SessionError::Canceled)));
    assert_eq!(session.poll(), Err(CallError::Finished));
    assert_eq!(session.cancel(), None);
}

#[test]
fn cancel_gp() {
    let mut session = globalplatform("/admin", None);
    let _ = session.poll().unwrap();
    assert_eq!(session.cancel(), None);
    assert_eq!(session.abort_request("x"), None);
    assert_eq!(session.poll(), Ok(Action::Failed(SessionError::Canceled)));
    assert_eq!(
        session.on_http_response(status(204)),
        Err(CallError::Finished)
    );
}

#[test]
fn openscdp_card_error_mid_template() {
    const URL: &str = "/rt";
    let mut session = openscdp(URL);
    let steps = vec![
        Step::Post(
            openscdp_post(URL, hta("E8 1A C0 18", "", HSM_ATR)),
            ok(h(
                "AA 12 22 04 00 20 00 81 22 04 00 20 00 82 22 04 00 20 00 83",
            )),
        ),
        Step::Card(apdu("00 20 00 81"), rsp("90 00")),
        Step::Card(
            apdu("00 20 00 82"),
            CardResult::Error("Card removed".into()),
        ),
        // The third APDU does not run; the reply carries E1 and the count of one.
        Step::Post(
            openscdp_post(
                URL,
                hta("AB 17 23 02 90 00 E1 0E 0C 0C", "Card removed", "80 01 01"),
            ),
            ok(h("AA 06 22 04 00 20 00 84")),
        ),
    ];
    assert_eq!(
        drive(&mut session, steps),
        Action::Failed(SessionError::Card {
            message: "Card removed".into()
        })
    );
    assert_eq!(session.round_trips(), 2);
    assert_eq!(session.apdus(), 1);
}

#[test]
fn gp_trace_2019() {
    // ramoverhttp.md §1.1: the 2019 plain-HTTP trace of card "3311". The third script is
    // not in the trace; a GET DATA stands in for it.
    const FROM: &str = "//se-id/3311";
    let next = |uri: &'static str| {
        vec![
            ("X-Admin-Protocol", GP_ADMIN_PROTOCOL),
            ("X-Admin-Next-URI", uri),
            ("Content-Type", GP_SCRIPT_CONTENT_TYPE),
        ]
    };
    let status_25 = h("E3 15 4F 08 A0 00 00 01 51 00 00 00 9F 70 01 07 C5 03 9E 00 00 00 00 90 00");
    let mut reply_2 = h("AF 80 23 19");
    reply_2.extend_from_slice(&status_25);
    reply_2.extend_from_slice(&h("00 00"));

    let mut session = globalplatform("http://ram.example/server/adminagent?cmd=1", Some(FROM));
    let steps = vec![
        Step::Post(
            gp_first_post("http://ram.example/server/adminagent?cmd=1", FROM),
            response(
                200,
                &next("/Download?req=1"),
                h("AE 80 22 05 80 CA 00 85 00 00 00"),
            ),
        ),
        Step::Card(apdu("80 CA 00 85 00"), rsp("6A 88")),
        Step::Post(
            gp_post(
                "http://ram.example/Download?req=1",
                FROM,
                "ok",
                h("AF 80 23 02 6A 88 00 00"),
            ),
            response(
                200,
                &next("/Download?req=2"),
                h("AE 80 22 08 80 F2 80 02 02 4F 00 00 00 00"),
            ),
        ),
        Step::Card(
            apdu("80 F2 80 02 02 4F 00 00"),
            CardResult::Response(status_25),
        ),
        Step::Post(
            gp_post("http://ram.example/Download?req=2", FROM, "ok", reply_2),
            response(
                200,
                &next("/Download?req=3"),
                h("AE 80 22 05 80 CA 9F 7F 00 00 00"),
            ),
        ),
        Step::Card(apdu("80 CA 9F 7F 00"), rsp("6D 00")),
        Step::Post(
            gp_post(
                "http://ram.example/Download?req=3",
                FROM,
                "ok",
                h("AF 80 23 02 6D 00 00 00"),
            ),
            response(204, &[("x-admin-protocol", GP_ADMIN_PROTOCOL)], Vec::new()),
        ),
    ];
    let end = drive(&mut session, steps);
    assert_eq!(
        end,
        Action::Done(Outcome {
            apdus: 3,
            round_trips: 4,
            last_notification: None,
            close_message: None,
            targeted_application: None,
            status: EndStatus::Completed,
        })
    );
}

#[test]
fn gp_stops_at_first_failing_status_word() {
    // AA answered by AB with the count first; 61xx goes on, 6982 stops.
    let mut session = globalplatform("https://ram.example/a/b", None);
    let steps = vec![
        Step::Post(
            gp_first_post("https://ram.example/a/b", "card-relay"),
            response(
                200,
                &[("x-admin-next-uri", "c?step=2")],
                h("AA 15 22 04 00 B0 00 00 81 01 01 22 04 00 B0 00 01 22 04 00 B0 00 02"),
            ),
        ),
        Step::Card(apdu("00 B0 00 00"), rsp("61 10")),
        Step::Card(apdu("00 B0 00 01"), rsp("69 82")),
        Step::Post(
            gp_post(
                "https://ram.example/a/c?step=2",
                "card-relay",
                "ok",
                h("AB 0B 80 01 02 23 02 61 10 23 02 69 82"),
            ),
            // A 200 script without a Next-URI runs, but its result is not sent.
            ok(h("AA 06 22 04 00 B0 00 03")),
        ),
        Step::Card(apdu("00 B0 00 03"), rsp("90 00")),
    ];
    let Action::Done(outcome) = drive(&mut session, steps) else {
        panic!("expected done");
    };
    assert_eq!((outcome.apdus, outcome.round_trips), (3, 2));
    assert_eq!(session.poll(), Err(CallError::Finished));
}

#[test]
fn gp_no_content_with_next_uri_posts_again() {
    let mut session = globalplatform("/x/admin", None);
    let steps = vec![
        Step::Post(
            gp_first_post("/x/admin", "card-relay"),
            response(204, &[("X-Admin-Next-URI", "/y?s=1")], Vec::new()),
        ),
        Step::Post(gp_first_post("/y?s=1", "card-relay"), status(204)),
    ];
    assert!(matches!(drive(&mut session, steps), Action::Done(_)));
}

#[test]
fn gp_targeted_application_is_kept() {
    // GP Amd B: the server names the application its script addresses in
    // X-Admin-Targeted-Application ("//aid/<RID>/<PIX>"); the session keeps the last one.
    let mut session = globalplatform("/x/admin", None);
    let target = "//aid/A000000151/000000";
    let steps = vec![
        Step::Post(
            gp_first_post("/x/admin", "card-relay"),
            response(
                204,
                &[
                    ("X-Admin-Next-URI", "/y"),
                    ("x-admin-targeted-application", target),
                ],
                Vec::new(),
            ),
        ),
        Step::Post(gp_first_post("/y", "card-relay"), status(204)),
    ];
    let Action::Done(outcome) = drive(&mut session, steps) else {
        panic!("not done");
    };
    assert_eq!(outcome.targeted_application.as_deref(), Some(target));
}

#[test]
fn gp_bad_script_is_reported() {
    // ramoverhttp.md §2.1: a live ISD answered a length-mismatched template with
    // AB 06 80 01 00 90 01 02; an unknown tag gives 90 01 01.
    let mut session = globalplatform("/admin", None);
    let steps = vec![
        Step::Post(
            gp_first_post("/admin", "card-relay"),
            response(
                200,
                &[("X-Admin-Next-URI", "/admin?2")],
                h("AA 03 C5 01 00"),
            ),
        ),
        Step::Post(
            gp_post(
                "/admin?2",
                "card-relay",
                "script-format-error",
                h("AB 06 80 01 00 90 01 01"),
            ),
            status(204),
        ),
    ];
    assert!(matches!(
        drive(&mut session, steps),
        Action::Failed(SessionError::BadScript(RamError::UnknownTag { .. }))
    ));

    // Without a Next-URI there is nobody to tell.
    let mut session = globalplatform("/admin", None);
    let _ = session.poll().unwrap();
    session.on_http_response(ok(h("AA 05 22 09 00"))).unwrap();
    assert!(matches!(
        session.poll(),
        Ok(Action::Failed(SessionError::BadScript(_)))
    ));
}

#[test]
fn gp_card_error() {
    let mut session = globalplatform("/admin", None);
    let steps = vec![
        Step::Post(
            gp_first_post("/admin", "card-relay"),
            response(
                200,
                &[("X-Admin-Next-URI", "/admin?2")],
                h("AE 80 22 04 00 B0 00 00 22 04 00 B0 00 01 00 00"),
            ),
        ),
        Step::Card(apdu("00 B0 00 00"), rsp("90 00")),
        Step::Card(apdu("00 B0 00 01"), CardResult::Error("reader gone".into())),
        Step::Post(
            gp_post(
                "/admin?2",
                "card-relay",
                "unavailable-se",
                h("AF 80 23 02 90 00 00 00"),
            ),
            status(204),
        ),
    ];
    assert_eq!(
        drive(&mut session, steps),
        Action::Failed(SessionError::Card {
            message: "reader gone".into()
        })
    );
}

#[test]
fn gp_bad_next_uri() {
    let mut session = globalplatform("/admin", None);
    let _ = session.poll().unwrap();
    session
        .on_http_response(response(204, &[("X-Admin-Next-URI", "/a b")], Vec::new()))
        .unwrap();
    assert_eq!(
        session.poll(),
        Ok(Action::Failed(SessionError::BadNextUri(
            UriError::InvalidCharacter
        )))
    );
}

#[test]
fn call_order_errors() {
    let mut session = openscdp("/rt");
    assert_eq!(
        session.on_http_response(status(204)),
        Err(CallError::UnexpectedHttpResponse)
    );
    assert_eq!(
        session.on_card_response(rsp("90 00")),
        Err(CallError::UnexpectedCardResult)
    );
    let _ = session.poll().unwrap();
    assert_eq!(session.poll(), Err(CallError::AwaitingHttpResponse));
    assert_eq!(
        session.on_card_response(rsp("90 00")),
        Err(CallError::UnexpectedCardResult)
    );
    session.on_http_response(ok(h("AA 02 C0 00"))).unwrap();
    assert_eq!(session.poll(), Ok(Action::Card(CardCommand::Reset)));
    assert_eq!(session.poll(), Err(CallError::AwaitingCardResult));
    assert_eq!(
        session.on_http_response(status(204)),
        Err(CallError::UnexpectedHttpResponse)
    );
    // A response where an ATR is due is refused and the session still waits for the ATR.
    assert_eq!(
        session.on_card_response(rsp("90 00")),
        Err(CallError::WrongCardResult)
    );
    session
        .on_card_response(CardResult::Atr(h("3B 00")))
        .unwrap();
    let Ok(Action::Post(request)) = session.poll() else {
        panic!("expected a post");
    };
    assert_eq!(request.body, h("AB 07 C0 02 3B 00 80 01 00"));
    assert_eq!(
        request.header("content-type"),
        Some(OPENSCDP_RESPONSE_CONTENT_TYPE)
    );
}

#[test]
fn origin_is_the_whatwg_serialisation() {
    // Expected values are what `new URL(url).origin` gives in Node.js 22 (WHATWG URL).
    for (url, expected) in [
        ("https://a.example:443/x", Some("https://a.example")),
        ("http://A.Example:80/", Some("http://a.example")),
        ("HTTPS://A.EXAMPLE/rt", Some("https://a.example")),
        ("https://a.example:0443/", Some("https://a.example")),
        ("http://a.example:443/", Some("http://a.example:443")),
        ("https://a.example:80/", Some("https://a.example:80")),
        ("http://h:/", Some("http://h")),
        ("http://[::1]:80/", Some("http://[::1]")),
        ("http://[::1]:8080/", Some("http://[::1]:8080")),
        (
            "https://user:pw@EXAMPLE.com:444/",
            Some("https://example.com:444"),
        ),
        (
            "https://Bücher.example:443/x",
            Some("https://xn--bcher-kva.example"),
        ),
        (
            "http://MÜNCHEN.de:8080",
            Some("http://xn--mnchen-3ya.de:8080"),
        ),
        ("https://例え.jp/", Some("https://xn--r8jz45g.jp")),
        (
            "https://xn--bcher-kva.example/",
            Some("https://xn--bcher-kva.example"),
        ),
        ("https://a.example:65536/", None),
        ("https://a.example:4x/", None),
        ("https:///x", None),
        ("http://::/", None),
        ("http://[]/", None),
        ("http://a b/", None),
        ("/rt/test", None),
        ("ftp://h/x", None),
    ] {
        assert_eq!(origin(url).as_deref(), expected, "{url}");
    }
}

// The browser build reads a host with the engine's URL parser, the one `fetch` uses: what
// `fetch` reaches is what the origin names (WHATWG URL §3.3 IPv4 parser, UTS #46 width
// mapping), where the Rust reader kept the text ("0x7f.1", the full-width letters).
#[cfg(target_arch = "wasm32")]
#[test]
fn origin_in_the_browser_is_what_fetch_reaches() {
    for (url, expected) in [
        ("http://0x7f.1:8080/rt", "http://127.0.0.1:8080"),
        ("https://\u{FF21}\u{FF22}.example/", "https://ab.example"),
    ] {
        assert_eq!(origin(url).as_deref(), Some(expected), "{url}");
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn punycode_of_registered_idn_labels() {
    // RFC 3492 §7.1 sample (L): Japanese "3B-ftp-kumi", lowercased as IDNA does.
    assert_eq!(
        punycode("3年b組金八先生").as_deref(),
        Some("3b-ww4c5e180e575a65lsy2b")
    );
    // Labels whose A-labels are published (IANA's IDN test TLDs, common examples): they
    // take the threshold `t` through T_MIN, k - bias and T_MAX (RFC 3492 §6.3).
    for (label, want) in [
        ("ü", "tda"),
        ("mañana", "maana-pta"),
        ("日本語", "wgv71a119e"),
        ("пример", "e1afmkfd"),
        ("испытание", "80akhbyknj4f"),
        ("例え", "r8jz45g"),
    ] {
        assert_eq!(punycode(label).as_deref(), Some(want), "{label}");
    }
}

#[test]
fn uri_resolution() {
    let base = "http://a.example/b/c/d;p?q";
    // RFC 3986 §5.4.1 normal examples (the subset without fragments).
    let cases = [
        ("g:h", "g:h"),
        ("g", "http://a.example/b/c/g"),
        ("./g", "http://a.example/b/c/g"),
        ("g/", "http://a.example/b/c/g/"),
        ("/g", "http://a.example/g"),
        ("//g", "http://g"),
        ("?y", "http://a.example/b/c/d;p?y"),
        ("g?y", "http://a.example/b/c/g?y"),
        ("#s", "http://a.example/b/c/d;p?q"),
        (";x", "http://a.example/b/c/;x"),
        ("", "http://a.example/b/c/d;p?q"),
        (".", "http://a.example/b/c/"),
        ("./", "http://a.example/b/c/"),
        ("..", "http://a.example/b/"),
        ("../g", "http://a.example/b/g"),
        ("../..", "http://a.example/"),
        ("../../g", "http://a.example/g"),
        ("../../../g", "http://a.example/g"),
        ("/./g", "http://a.example/g"),
        ("g/../h", "http://a.example/b/c/h"),
        (
            "https://other.example/ras?id=7",
            "https://other.example/ras?id=7",
        ),
    ];
    for (reference, want) in cases {
        assert_eq!(
            resolve_uri(base, reference).as_deref(),
            Ok(want),
            "{reference}"
        );
    }
    // Bases without scheme and host, as a page passes them (ramoverhttp.md §1.1).
    assert_eq!(
        resolve_uri("/server/adminagent?cmd=1", "/Download?req=1").as_deref(),
        Ok("/Download?req=1")
    );
    assert_eq!(resolve_uri("/rt/a", "b?x=1").as_deref(), Ok("/rt/b?x=1"));
    assert_eq!(resolve_uri("admin", "next").as_deref(), Ok("next"));
    assert_eq!(resolve_uri("http://h", "x").as_deref(), Ok("http://h/x"));
    // A query with a PHP session id is echoed verbatim.
    assert_eq!(
        resolve_uri(
            "http://h/adminserver",
            "/adminserver?PHPSESSID=ab12&apdu_id=3"
        )
        .as_deref(),
        Ok("http://h/adminserver?PHPSESSID=ab12&apdu_id=3")
    );
    assert_eq!(resolve_uri(base, "a\nb"), Err(UriError::InvalidCharacter));
    assert_eq!(resolve_uri(base, "é"), Err(UriError::InvalidCharacter));
}
