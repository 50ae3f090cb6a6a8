//! The reference server against peers nobody here wrote against (issue #11): a client that
//! behaves as CardContact's C `ram-client` was seen to (`common::ram_client`), and a GP
//! agent that keeps no cookies (`common::gp_agent`).

mod common;

use card_relay::proto::hex::h;
use card_relay::session::{Action, CardCommand, CardResult, Dialect, EndStatus};
use common::gp_agent::{self, GpAgent};
use common::ram_client::{ram_client, RamClientError};
use common::*;

/// The units of an `AA` command template, by tag.
fn unit_tags(template: &[u8]) -> Vec<u8> {
    let (tag, mut rest, _) = split_tlv(template).expect("a template");
    assert_eq!(tag, 0xAA);
    let mut tags = Vec::new();
    while let Some((tag, _, next)) = split_tlv(rest) {
        tags.push(tag);
        rest = next;
    }
    tags
}

async fn status_json(addr: std::net::SocketAddr, id: Option<&str>) -> String {
    status(addr, id.expect("the server set a cookie"))
        .await
        .text()
}

#[tokio::test]
async fn ram_client_completes_the_seed_test() {
    let addr = start_default().await;
    let run = ram_client(addr, "/rt/test", &h(HSM_ATR), seed_card()).await;
    assert_eq!(run.result, Ok(()), "{:#?}", run.posts);
    assert_eq!(run.notifications, vec![(0, "Test".to_owned())]);
    // The first POST, one per template (reset, VERIFY, SELECT, VERIFY, 2 GET CHALLENGE),
    // and the last reply answered 204.
    assert_eq!(run.posts.len(), 7);
    let last = run.posts.last().expect("posts");
    assert_eq!((last.status, last.answer.len()), (204, 0));
    for post in &run.posts[..6] {
        assert_eq!(post.status, 200);
        assert!(!unit_tags(&post.answer).contains(&0xE1), "{post:?}");
    }
    let json = status_json(addr, run.session_id()).await;
    assert!(json.contains(r#""state":"completed""#), "{json}");
    assert!(json.contains(r#""close""#), "the close is logged: {json}");
}

#[tokio::test]
async fn ram_client_completes_the_pin_test() {
    let addr = start_default().await;
    let card = |_: &CardCommand| CardResult::Response(h("63 C3"));
    let run = ram_client(addr, "/rt/pin-test", &h(HSM_ATR), card).await;
    assert_eq!(run.result, Ok(()), "{:#?}", run.posts);
    assert_eq!(
        run.notifications,
        vec![(0, "PIN not verified, 3 tries left".to_owned())]
    );
    let answers: Vec<(u16, Vec<u8>)> = run
        .posts
        .iter()
        .map(|p| (p.status, p.answer.clone()))
        .collect();
    assert_eq!(
        answers,
        vec![
            (200, h("AA 06 22 04 00 20 00 81")),
            // The notification queued with the close goes without it.
            (
                200,
                hta(
                    "AA 25 E0 23 02 01 00 0C 1E",
                    "PIN not verified, 3 tries left",
                    ""
                )
            ),
            (204, Vec::new()),
        ]
    );
    assert_eq!(run.posts[2].body, h("AB 03 80 01 00"));
    let json = status_json(addr, run.session_id()).await;
    assert!(json.contains(r#""state":"completed""#), "{json}");
}

#[tokio::test]
async fn ram_client_receives_the_failure_text() {
    let addr = start_default().await;
    let run = ram_client(addr, "/rt/fail", &h(HSM_ATR), seed_card()).await;
    let text = "Failure talking to card";
    assert_eq!(
        run.result,
        Err(RamClientError::Negative {
            id: -1,
            message: text.into()
        })
    );
    assert_eq!(run.posts.len(), 2);
    let json = status_json(addr, run.session_id()).await;
    assert!(json.contains(r#""state":"failed""#), "{json}");

    // A script that fails (6A82 to its SELECT) after queueing a close: the client sees the
    // failure text, not an E1 it would stop at.
    let mut seed = seed_card();
    let card = move |command: &CardCommand| match command {
        CardCommand::Apdu(apdu) if apdu[1] == 0xA4 => CardResult::Response(h("6A 82")),
        other => seed(other),
    };
    let run = ram_client(addr, "/rt/test", &h(HSM_ATR), card).await;
    let text = "Script failed: unexpected status word 6A82 to SELECT";
    assert_eq!(
        run.result,
        Err(RamClientError::Negative {
            id: -1,
            message: text.into()
        })
    );
    assert_eq!(
        unit_tags(&run.posts.last().expect("posts").answer),
        vec![0xE0]
    );
    let json = status_json(addr, run.session_id()).await;
    assert!(json.contains(r#""state":"failed""#), "{json}");
    assert!(
        json.contains(r#""error":"unexpected status word 6A82 to SELECT""#),
        "{json}"
    );
}

#[tokio::test]
async fn ram_client_stops_at_a_close_template() {
    // The test client is faithful to what was observed: a server that sends a close as a
    // template of its own loses it.
    let addr = start_default().await;
    let run = ram_client(addr, "/rt/fault/close-template", &h(HSM_ATR), seed_card()).await;
    assert_eq!(run.result, Err(RamClientError::UnexpectedUnit(0xE1)));
    assert_eq!(run.posts.len(), 2);
}

/// The seed card's answers to a C-APDU, for the GP agent; GET CHALLENGE bytes are `fill`,
/// VERIFY without data answers `verify`.
fn gp_card(fill: u8, verify: &'static str) -> impl FnMut(&[u8]) -> Vec<u8> {
    move |apdu: &[u8]| match apdu[1] {
        0xA4 => h("90 00"),
        0x84 => {
            let mut r = vec![fill; usize::from(apdu[4])];
            r.extend(h("90 00"));
            r
        }
        0x20 => h(verify),
        _ => h("6D 00"),
    }
}

/// The token of a Next-URI.
fn token(uri: &str) -> &str {
    uri.split_once("token=").expect("a token").1
}

#[tokio::test]
async fn cookieless_gp_agent_completes_gp_test() {
    let addr = start_default().await;
    let mut agent = GpAgent::new(addr, "/rt/gp-test");
    assert_eq!(agent.run(gp_card(0x11, "90 00")).await, 204);
    assert_eq!(agent.posts.len(), 3);
    for (step, post) in agent.posts.iter().enumerate().skip(1) {
        assert_next_uri(&post.url, "/rt/gp-test", step);
    }
    let json = status_json(addr, agent.offered_cookie.as_deref()).await;
    assert!(json.contains(r#""state":"completed""#), "{json}");
    assert!(json.contains("notification 1: PIN verified"), "{json}");

    // card-relay's own client, with its cookies dropped, too.
    let run = drive_cookieless(
        addr,
        config(Dialect::GlobalPlatform, "/rt/gp-test"),
        seed_card(),
    )
    .await;
    let Action::Done(outcome) = &run.end else {
        panic!("{:?}", run.end)
    };
    assert_eq!(outcome.status, EndStatus::Completed);
    assert_eq!((outcome.apdus, outcome.round_trips), (3, 3));
    let json = status_json(addr, run.cookie.as_deref()).await;
    assert!(json.contains(r#""state":"completed""#), "{json}");
}

#[tokio::test]
async fn forged_token_is_refused() {
    let addr = start_default().await;
    let mut card = gp_card(0x22, "90 00");
    let mut agent = GpAgent::new(addr, "/rt/gp-test");
    assert_eq!(agent.step(&mut card).await, 200);
    let body = h("AB 07 80 01 01 23 02 90 00");
    let forged = format!("/rt/gp-test?step=1&token={}", "0123456789abcdef".repeat(2));
    for url in [
        forged.as_str(),
        "/rt/gp-test?step=1&token=",
        "/rt/gp-test?token=x",
    ] {
        let r = gp_agent::post(addr, url, &body).await;
        assert_eq!(r.status, 403, "{url}");
    }
    // Not even with the session's own cookie: a token is the whole credential.
    let cookie = format!(
        "JSESSIONID={}",
        agent.offered_cookie.as_deref().expect("cookie")
    );
    let with_cookie = request(
        addr,
        "POST",
        &forged,
        &[
            ("X-Admin-Protocol", "globalplatform-remote-admin/1.0"),
            ("Content-Type", gp_agent::GP_RESPONSE_CT),
            ("Cookie", &cookie),
        ],
        &body,
    )
    .await;
    assert_eq!(with_cookie.status, 403);
    // The session was not touched: the agent completes it with its real token.
    assert_eq!(agent.run(&mut card).await, 204);
    let json = status_json(addr, agent.offered_cookie.as_deref()).await;
    assert!(json.contains(r#""state":"completed""#), "{json}");
}

#[tokio::test]
async fn reused_and_stale_tokens_are_refused() {
    let addr = start_default().await;
    let mut card = gp_card(0x33, "63 C1");

    // Reused: each token opens one POST.
    let mut agent = GpAgent::new(addr, "/rt/gp-test");
    agent.step(&mut card).await;
    let first = agent.next.clone().expect("next-uri");
    assert_eq!(agent.step(&mut card).await, 200);
    let first_body = agent.posts[1].body.clone();
    let again = gp_agent::post(addr, &first, &first_body).await;
    assert_eq!(again.status, 403, "reused");
    let second = agent.next.clone().expect("next-uri");
    assert_eq!(agent.run(&mut card).await, 204);
    let last_body = agent.posts[2].body.clone();
    let after_end = gp_agent::post(addr, &second, &last_body).await;
    assert_eq!(after_end.status, 403, "reused after the end");

    // Stale: a token the server superseded (here the client used the cookie fallback)
    // opens nothing.
    let mut agent = GpAgent::new(addr, "/rt/gp-test");
    agent.step(&mut card).await;
    let unspent = agent.next.clone().expect("next-uri");
    let reply = h("AB 13 80 01 02 23 02 90 00 23 0A 33 33 33 33 33 33 33 33 90 00");
    let cookie = format!(
        "JSESSIONID={}",
        agent.offered_cookie.as_deref().expect("cookie")
    );
    let fallback = request(
        addr,
        "POST",
        "/rt/gp-test?step=1",
        &[
            ("X-Admin-Protocol", "globalplatform-remote-admin/1.0"),
            ("Content-Type", gp_agent::GP_RESPONSE_CT),
            ("Cookie", &cookie),
        ],
        &reply,
    )
    .await;
    assert_eq!(fallback.status, 200, "{}", fallback.text());
    let stale = gp_agent::post(addr, &unspent, &reply).await;
    assert_eq!(stale.status, 403, "stale");
    let next = fallback.header("x-admin-next-uri").expect("next-uri");
    assert_next_uri(next, "/rt/gp-test", 2);
    let done = gp_agent::post(addr, next, &h("AB 07 80 01 01 23 02 63 C1")).await;
    assert_eq!(done.status, 204);

    // A token only opens its own step.
    let mut agent = GpAgent::new(addr, "/rt/gp-test");
    agent.step(&mut card).await;
    let uri = agent.next.clone().expect("next-uri");
    let wrong_step = uri.replace("step=1", "step=2");
    let r = gp_agent::post(addr, &wrong_step, &h("AB 03 80 01 00")).await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn two_cookieless_sessions_stay_apart() {
    let addr = start_default().await;
    let mut card_a = gp_card(0xA1, "90 00");
    let mut card_b = gp_card(0xB2, "63 C2");
    let mut a = GpAgent::new(addr, "/rt/gp-test");
    let mut b = GpAgent::new(addr, "/rt/gp-test");
    // Interleaved: both run at once, each on its own tokens.
    assert_eq!(a.step(&mut card_a).await, 200);
    assert_eq!(b.step(&mut card_b).await, 200);
    assert_eq!(b.step(&mut card_b).await, 200);
    assert_eq!(a.step(&mut card_a).await, 200);
    let (next_a, next_b) = (a.next.clone().expect("a"), b.next.clone().expect("b"));
    assert_ne!(token(&next_a), token(&next_b));
    assert_eq!(a.step(&mut card_a).await, 204);
    assert_eq!(b.step(&mut card_b).await, 204);
    let json_a = status_json(addr, a.offered_cookie.as_deref()).await;
    let json_b = status_json(addr, b.offered_cookie.as_deref()).await;
    assert_ne!(a.offered_cookie, b.offered_cookie);
    for (json, own, other, pin) in [
        (&json_a, "A1", "B2", "PIN verified"),
        (&json_b, "B2", "A1", "PIN not verified, 2 tries left"),
    ] {
        assert!(json.contains(r#""state":"completed""#), "{json}");
        assert!(json.contains(&format!("Challenge {own} {own}")), "{json}");
        assert!(!json.contains(other), "{json}");
        assert!(json.contains(pin), "{json}");
    }
}
