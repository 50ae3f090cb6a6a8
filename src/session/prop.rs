use proptest::collection::vec;
use proptest::prelude::*;

use super::*;
use crate::proto::ram::{gp, openscdp};

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..40),
        vec(any::<u8>(), 0..30).prop_map(|mut v| {
            v.insert(0, 0xAA);
            v.insert(1, u8::try_from(v.len() - 1).unwrap_or(0));
            v
        }),
        vec(
            prop_oneof![
                vec(any::<u8>(), 0..8).prop_map(openscdp::Command::Apdu),
                Just(openscdp::Command::Reset),
                (any::<i32>(), "[a-z]{0,4}").prop_map(|(id, message)| {
                    openscdp::Command::Notify {
                        id,
                        message,
                        time_to_completion: None,
                    }
                }),
                "[a-z]{0,4}".prop_map(|message| openscdp::Command::Close { message }),
            ],
            0..5
        )
        .prop_map(|commands| openscdp::CommandScript { commands }.encode()),
        (any::<bool>(), vec(vec(any::<u8>(), 0..8), 0..5)).prop_map(|(definite, apdus)| {
            gp::CommandScript {
                form: if definite {
                    gp::Form::Definite
                } else {
                    gp::Form::Indefinite
                },
                items: apdus.into_iter().map(gp::CommandItem::Apdu).collect(),
            }
            .encode()
        }),
    ]
}

fn http_response() -> impl Strategy<Value = HttpResponse> {
    (
        prop_oneof![Just(200u16), Just(204), Just(500), any::<u16>()],
        proptest::option::of(prop_oneof![
            Just("/next".to_owned()),
            Just("http://h/n?x=1".to_owned()),
            "[ -~]{0,8}",
        ]),
        body(),
    )
        .prop_map(|(status, next, body)| HttpResponse {
            status,
            headers: next
                .map(|n| vec![("x-admin-next-uri".to_owned(), n)])
                .unwrap_or_default(),
            body,
        })
}

fn card_result() -> impl Strategy<Value = CardResult> {
    prop_oneof![
        vec(any::<u8>(), 0..6).prop_map(CardResult::Response),
        Just(CardResult::Response(vec![0x90, 0x00])),
        vec(any::<u8>(), 0..6).prop_map(CardResult::Atr),
        "[a-z]{0,6}".prop_map(CardResult::Error),
    ]
}

proptest! {
    #[test]
    fn random_servers_and_cards_always_end(
        gp_dialect in any::<bool>(),
        responses in vec(http_response(), 0..8),
        cards in vec(card_result(), 0..40),
        cancel_at in proptest::option::of(0usize..60),
    ) {
        let mut session = Session::new(SessionConfig {
            dialect: if gp_dialect { Dialect::GlobalPlatform } else { Dialect::OpenScdp },
            url: "/rt".into(),
            atr: vec![0x3B, 0x00],
            max_capdu: None,
            max_rapdu: None,
            agent_id: None,
        });
        let mut responses = responses.into_iter();
        let mut cards = cards.into_iter();
        let mut ended = false;
        for step in 0..400 {
            if cancel_at == Some(step) {
                let _ = session.cancel();
            }
            match session.poll() {
                Ok(Action::Post(_)) => {
                    let answer = responses.next().unwrap_or(HttpResponse { status: 204, ..HttpResponse::default() });
                    prop_assert_eq!(session.on_http_response(answer), Ok(()));
                }
                Ok(Action::Card(command)) => {
                    let result = cards.next().unwrap_or(CardResult::Error("gone".into()));
                    if session.on_card_response(result).is_err() {
                        let fitting = match command {
                            CardCommand::Apdu(_) => CardResult::Response(vec![0x90, 0x00]),
                            CardCommand::Reset => CardResult::Atr(vec![0x3B, 0x00]),
                        };
                        prop_assert_eq!(session.on_card_response(fitting), Ok(()));
                    }
                }
                Ok(Action::Notify(_)) => {}
                Ok(Action::Done(_) | Action::Failed(_)) => {
                    ended = true;
                    break;
                }
                Err(e) => prop_assert!(false, "unexpected call error {e:?}"),
            }
        }
        prop_assert!(ended, "session did not end");
        prop_assert_eq!(session.poll(), Err(CallError::Finished));
    }

    #[test]
    fn resolve_no_panic(base in "[ -~]{0,20}", reference in "[ -~]{0,20}") {
        let _ = resolve_uri(&base, &reference);
    }

    #[test]
    fn resolve_no_panic_any_text(base in ".{0,12}", reference in ".{0,12}") {
        let _ = resolve_uri(&base, &reference);
    }

    #[test]
    fn origin_no_panic_and_idempotent(url in "(https?|HTTP)://.{0,24}") {
        // An origin is its own origin: normalising twice changes nothing.
        if let Some(o) = origin(&url) {
            prop_assert_eq!(origin(&o), Some(o.clone()));
        }
    }
}
