//! The card-update scripts served at `/rt/<app>`.
//!
//! | app | dialect | what it does |
//! |---|---|---|
//! | `test` | OpenSCDP | the seed's example `performCardUpdate` (seed.md), step by step |
//! | `gp-test` | both | SELECT the SmartCard-HSM applet (P2 = 0C) and GET CHALLENGE 8 in one script, then VERIFY without data in a second |
//! | `pin-test` | both | VERIFY without data, reporting the PIN state by notification |
//! | `fail` | both | one GET CHALLENGE, then the negative notification "Failure talking to card" |

use card_relay::proto::apdu::{CommandApdu, StatusWord};
use card_relay::proto::hex;

use crate::script::{Card, ScriptError, ScriptFn, ScriptFuture, ScriptSession};

/// The SmartCard-HSM applet AID (seed.md).
const SC_HSM_AID: [u8; 11] = [
    0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01,
];

/// The PIN of the seed's example (seed.md), sent as ASCII.
const SEED_PIN: &[u8] = b"648219";

/// The PIN reference the examples verify (local PIN 1 of the SmartCard-HSM).
const PIN_REFERENCE: u8 = 0x81;

/// The script of an app name, if there is one.
pub(crate) fn lookup(app: &str) -> Option<ScriptFn> {
    match app {
        "test" => Some(seed_test as ScriptFn),
        "gp-test" => Some(gp_test as ScriptFn),
        "pin-test" => Some(pin_test as ScriptFn),
        "fail" => Some(fail as ScriptFn),
        _ => None,
    }
}

/// `/rt/test`: the seed's example, with `card.close()` in a `finally`.
pub(crate) fn seed_test<'a>(card: &'a mut Card, session: &'a ScriptSession) -> ScriptFuture<'a> {
    Box::pin(async move {
        let result = seed_steps(card, session).await;
        card.close();
        result
    })
}

async fn seed_steps(card: &mut Card, session: &ScriptSession) -> Result<(), ScriptError> {
    card.reset().await?;
    session.send_notification(0, "Test").await;
    card.send_apdu(0x00, 0x20, 0x00, PIN_REFERENCE, None, None, &[])
        .await?;
    if card.sw() != 0x9000 {
        card.send_apdu(
            0x00,
            0xA4,
            0x04,
            0x04,
            Some(&SC_HSM_AID),
            Some(256),
            &[0x9000],
        )
        .await?;
        card.send_apdu(0x00, 0x20, 0x00, PIN_REFERENCE, Some(SEED_PIN), None, &[])
            .await?;
    }
    for _ in 0..2 {
        card.send_apdu(0x00, 0x84, 0x00, 0x00, None, Some(0x45), &[0x9000])
            .await?;
    }
    Ok(())
}

/// `/rt/gp-test`: two command scripts, so a GP client follows one Next-URI between them.
pub(crate) fn gp_test<'a>(card: &'a mut Card, session: &'a ScriptSession) -> ScriptFuture<'a> {
    Box::pin(async move {
        let responses = card
            .send_batch(&[
                CommandApdu::case3(0x00, 0xA4, 0x04, 0x0C, SC_HSM_AID),
                CommandApdu::case2(0x00, 0x84, 0x00, 0x00, 8),
            ])
            .await?;
        for response in &responses {
            if !response.sw.is_success() {
                return Err(ScriptError::UnexpectedSw {
                    command: "SELECT",
                    sw: response.sw.0,
                });
            }
        }
        let challenge = responses
            .get(1)
            .ok_or(ScriptError::MissingResponse("GET CHALLENGE"))?;
        session
            .send_notification(0, format!("Challenge {}", hex::spaced(&challenge.data)))
            .await;
        card.send_apdu(0x00, 0x20, 0x00, PIN_REFERENCE, None, None, &[])
            .await?;
        session.send_notification(1, pin_state(card.sw())).await;
        card.close();
        Ok(())
    })
}

/// `/rt/pin-test`: reads the PIN state with a VERIFY without data (7816-4 §11.5.6).
pub(crate) fn pin_test<'a>(card: &'a mut Card, session: &'a ScriptSession) -> ScriptFuture<'a> {
    Box::pin(async move {
        card.send_apdu(0x00, 0x20, 0x00, PIN_REFERENCE, None, None, &[])
            .await?;
        session.send_notification(0, pin_state(card.sw())).await;
        card.close();
        Ok(())
    })
}

/// `/rt/fail`: gives up after one command, as the seed's services do when a card is not the
/// expected one.
pub(crate) fn fail<'a>(card: &'a mut Card, session: &'a ScriptSession) -> ScriptFuture<'a> {
    Box::pin(async move {
        card.send_apdu(0x00, 0x84, 0x00, 0x00, None, Some(8), &[])
            .await?;
        session
            .send_notification(-1, "Failure talking to card")
            .await;
        Ok(())
    })
}

/// A user-facing text for the status word of a VERIFY without data (7816-4 §11.5.6: 9000
/// verified, 63Cx x tries left, 6983 blocked).
fn pin_state(sw: u16) -> String {
    match sw {
        0x9000 => "PIN verified".to_owned(),
        0x63C0..=0x63CF => format!("PIN not verified, {} tries left", sw & 0x000F),
        0x6983 => "PIN blocked".to_owned(),
        other => format!(
            "PIN state unknown: {} ({})",
            StatusWord(other),
            StatusWord(other).description()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_state_texts() {
        // 7816-4 §11.5.6 status words of a VERIFY without data.
        assert_eq!(pin_state(0x9000), "PIN verified");
        assert_eq!(pin_state(0x63C3), "PIN not verified, 3 tries left");
        assert_eq!(pin_state(0x6983), "PIN blocked");
        assert_eq!(
            pin_state(0x6E00),
            "PIN state unknown: 6E00 (Checking error: Class not supported)"
        );
    }

    #[test]
    fn apps_are_known() {
        for app in ["test", "gp-test", "pin-test", "fail"] {
            assert!(lookup(app).is_some(), "{app}");
        }
        assert!(lookup("nope").is_none());
    }
}
