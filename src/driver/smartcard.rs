//! What a failed Web Smart Card API call means, as a stable code with a hint.
//!
//! The Web Smart Card API (WICG, `index.bs` §SmartCardError) rejects with a
//! `SmartCardError` whose `responseCode` names the PC/SC response code (PC/SC part 5 §3.1,
//! `SCARD_E_*` / `SCARD_W_*`), or with a plain `DOMException` / `TypeError` for the codes it
//! maps otherwise: `SCARD_E_INVALID_HANDLE` and `SCARD_E_SERVICE_STOPPED` are
//! `InvalidStateError`, `SCARD_P_SHUTDOWN` is `AbortError`, `SCARD_E_INVALID_PARAMETER` is
//! `TypeError`, anything else `UnknownError`. `establishContext()` throws `SecurityError`
//! where the `smart-card` permissions policy does not allow the document, and Chrome rejects
//! `connect()` with `NotAllowedError` when the user refuses the permission prompt.
//!
//! Every response code of the IDL's `SmartCardResponseCode` enum has its row in
//! [`RESPONSE_CODES`]; the hints are written for the PC/SC route (a sharing violation is
//! another application holding the card, not pcscd holding the reader). It also holds the PC/SC
//! part 10 pieces the route uses for PIN pads: the GET_FEATURE_REQUEST answer and the
//! PIN_VERIFY_STRUCTURE.

use super::{DriverError, ErrorCode};
use crate::reader::PinVerify;

/// `(responseCode, code, what happened, hint)`; the hint is `None` where the code's own
/// ([`ErrorCode::hint`]) says it.
pub const RESPONSE_CODES: [(&str, ErrorCode, &str, Option<&str>); 16] = [
    (
        "no-service",
        ErrorCode::ServiceUnavailable,
        "no smart card service",
        None,
    ),
    (
        "no-smartcard",
        ErrorCode::CardAbsent,
        "no card in the reader",
        None,
    ),
    (
        "not-ready",
        ErrorCode::DeviceBusy,
        "the reader or card is not ready",
        Some(
            "The reader is not ready for commands yet. Wait a moment (or reinsert the card) \
             and try again.",
        ),
    ),
    (
        "not-transacted",
        ErrorCode::Protocol,
        "no transaction to end",
        None,
    ),
    (
        "proto-mismatch",
        ErrorCode::Protocol,
        "the card is in use with another protocol",
        Some(
            "Another application uses the card with a protocol other than T=0 or T=1. Close \
             it, or remove and reinsert the card, then try again.",
        ),
    ),
    (
        "reader-unavailable",
        ErrorCode::Disconnected,
        "the reader is not available",
        None,
    ),
    (
        "removed-card",
        ErrorCode::CardAbsent,
        "the card was removed",
        None,
    ),
    (
        "reset-card",
        ErrorCode::Protocol,
        "another application reset the card",
        Some(
            "Another application reset the card, so what was selected or verified on it is \
             lost; card-relay has reconnected to the card. Run the update again.",
        ),
    ),
    (
        "server-too-busy",
        ErrorCode::DeviceBusy,
        "the smart card service is too busy",
        Some("The smart card service is too busy. Try again in a moment."),
    ),
    (
        "sharing-violation",
        ErrorCode::DeviceBusy,
        "another application holds the card exclusively",
        Some(
            "Another application has exclusive use of the card. Close it (or wait until it is \
             done) and try again.",
        ),
    ),
    (
        "system-cancelled",
        ErrorCode::Aborted,
        "cancelled by the system",
        Some("The system cancelled the operation (logging off or shutting down)."),
    ),
    (
        "unknown-reader",
        ErrorCode::Disconnected,
        "unknown reader",
        Some(
            "The smart card service does not know this reader: it was unplugged or renamed. \
             Plug it in and open it again.",
        ),
    ),
    (
        "unpowered-card",
        ErrorCode::CardMute,
        "the card is not powered",
        None,
    ),
    (
        "unresponsive-card",
        ErrorCode::CardMute,
        "the card does not answer",
        None,
    ),
    (
        "unsupported-card",
        ErrorCode::CardMute,
        "the reader cannot talk to this card",
        Some(
            "The reader cannot communicate with this card (its ATR conflicts with the reader's \
             settings). Try another card or reader.",
        ),
    ),
    (
        "unsupported-feature",
        ErrorCode::UnsupportedReader,
        "not supported by the card or reader",
        None,
    ),
];

const PERMISSION_HINT: &str = "Access to the smart card reader was refused. Allow this app to \
     use the reader when Chrome asks (or in the app's settings) and try again.";
const POLICY_HINT: &str = "The Web Smart Card API works only in an Isolated Web App whose \
     manifest allows the smart-card permission (see examples/iwa in card-relay).";
const GONE_HINT: &str = "The smart card service stopped or the connection was lost. Open the \
     reader again.";

fn error(code: ErrorCode, message: String, hint: Option<&'static str>) -> DriverError {
    DriverError::SmartCard {
        code,
        message,
        hint: hint.unwrap_or_else(|| code.hint()),
    }
}

/// Classifies a rejection of the Web Smart Card API method `call` (e.g. `"transmit"`):
/// `name` is the exception's name, `response_code` a `SmartCardError`'s `responseCode`,
/// `message` the exception's own message (kept only for codes this module does not know).
pub fn classify(call: &str, name: &str, response_code: Option<&str>, message: &str) -> DriverError {
    if let Some(rc) = response_code {
        if let Some((_, code, text, hint)) = RESPONSE_CODES.iter().find(|row| row.0 == rc) {
            return error(*code, format!("{call}: {text}"), *hint);
        }
        return error(ErrorCode::Protocol, format!("{call}: {rc}"), None);
    }
    let (code, text, hint) = match name {
        "NotAllowedError" => (
            ErrorCode::PermissionDenied,
            "permission refused",
            Some(PERMISSION_HINT),
        ),
        "SecurityError" => (
            ErrorCode::PermissionDenied,
            "the smart-card permissions policy does not allow this document",
            Some(POLICY_HINT),
        ),
        "InvalidStateError" => (
            ErrorCode::Disconnected,
            "the smart card service or connection is gone",
            Some(GONE_HINT),
        ),
        "AbortError" => (ErrorCode::Aborted, "aborted", None),
        "TypeError" => (ErrorCode::InvalidArgument, "invalid parameter", None),
        _ => {
            let detail = message.trim_end_matches('.').to_ascii_lowercase();
            return error(
                ErrorCode::Protocol,
                format!("{call}: {name}: {detail}"),
                None,
            );
        }
    };
    error(code, format!("{call}: {text}"), hint)
}

/// `CM_IOCTL_GET_FEATURE_REQUEST`, `SCARD_CTL_CODE(3400)` as pcsc-lite (the Smart Card
/// Connector's PC/SC) defines it: `0x42000000 + 3400` (PC/SC part 10 §2.2).
pub const GET_FEATURE_REQUEST: u32 = 0x4200_0D48;
/// `FEATURE_VERIFY_PIN_DIRECT` (PC/SC part 10 §2.3).
pub const FEATURE_VERIFY_PIN_DIRECT: u8 = 0x06;

/// The control code of `FEATURE_VERIFY_PIN_DIRECT` in a GET_FEATURE_REQUEST answer: TLVs of
/// a tag, a length 4 and a big-endian control code (PC/SC part 10 §2.2).
pub fn verify_pin_code(features: &[u8]) -> Option<u32> {
    features.chunks_exact(6).find_map(|tlv| match tlv {
        [FEATURE_VERIFY_PIN_DIRECT, 4, a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    })
}

/// The PIN_VERIFY_STRUCTURE of PC/SC part 10 §2.5.2: CCID's PIN verification data
/// structure (CCID §6.1.11.4, [`PinVerify::encode`]) with bTimerOut2 after bTimerOut and
/// ulDataLength (little endian) before the APDU.
pub fn pin_verify_structure(pin: &PinVerify) -> Vec<u8> {
    let ccid = pin.encode([0; 3]);
    let apdu = pin.apdu_template();
    let mut out = vec![pin.timeout_s, 0];
    out.extend_from_slice(ccid.get(2..15).unwrap_or_default());
    out.extend_from_slice(&u32::try_from(apdu.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&apdu);
    out
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;

    /// `SmartCardResponseCode` in the specification's IDL (index.bs), in its order.
    const IDL_RESPONSE_CODES: [&str; 16] = [
        "no-service",
        "no-smartcard",
        "not-ready",
        "not-transacted",
        "proto-mismatch",
        "reader-unavailable",
        "removed-card",
        "reset-card",
        "server-too-busy",
        "sharing-violation",
        "system-cancelled",
        "unknown-reader",
        "unpowered-card",
        "unresponsive-card",
        "unsupported-card",
        "unsupported-feature",
    ];

    fn code(rc: &str) -> ErrorCode {
        classify("transmit", "SmartCardError", Some(rc), "").code()
    }

    #[test]
    fn every_response_code_of_the_idl_has_a_row_with_a_hint() {
        let rows: Vec<&str> = RESPONSE_CODES.iter().map(|r| r.0).collect();
        assert_eq!(rows, IDL_RESPONSE_CODES);
        for rc in IDL_RESPONSE_CODES {
            let e = classify("connect", "SmartCardError", Some(rc), "");
            assert!(e.hint().ends_with('.'), "{rc}");
            let message = e.to_string();
            assert!(message.starts_with("connect: "), "{message}");
            assert!(!message.ends_with('.'), "{message}");
            assert_eq!(message, message.to_lowercase(), "{message}");
        }
    }

    #[test]
    fn the_issue_s_mapping() {
        assert_eq!(code("no-service"), ErrorCode::ServiceUnavailable);
        assert!(classify("x", "SmartCardError", Some("no-service"), "")
            .hint()
            .contains("Smart Card Connector"));
        assert_eq!(code("removed-card"), ErrorCode::CardAbsent);
        assert_eq!(code("no-smartcard"), ErrorCode::CardAbsent);
        // pcsc-lite reports a mute card as unpowered as well as unresponsive.
        assert_eq!(code("unresponsive-card"), ErrorCode::CardMute);
        assert_eq!(code("unpowered-card"), ErrorCode::CardMute);
        assert_eq!(code("sharing-violation"), ErrorCode::DeviceBusy);
        let busy = classify("connect", "SmartCardError", Some("sharing-violation"), "");
        assert!(
            !busy.hint().contains("pcscd"),
            "not the WebUSB route's advice"
        );
        assert_eq!(code("reader-unavailable"), ErrorCode::Disconnected);
        assert_eq!(code("unknown-reader"), ErrorCode::Disconnected);
    }

    #[test]
    fn plain_exceptions() {
        let c = |name| classify("connect", name, None, "The user has denied permission.");
        assert_eq!(c("NotAllowedError").code(), ErrorCode::PermissionDenied);
        assert!(c("NotAllowedError").hint().contains("refused"));
        assert_eq!(c("SecurityError").code(), ErrorCode::PermissionDenied);
        assert!(c("SecurityError").hint().contains("Isolated Web App"));
        assert_eq!(c("InvalidStateError").code(), ErrorCode::Disconnected);
        assert_eq!(c("AbortError").code(), ErrorCode::Aborted);
        assert_eq!(c("TypeError").code(), ErrorCode::InvalidArgument);
        let unknown = c("UnknownError");
        assert_eq!(unknown.code(), ErrorCode::Protocol);
        assert_eq!(
            unknown.to_string(),
            "connect: UnknownError: the user has denied permission"
        );
        // A response code newer than this table is still a typed error.
        assert_eq!(code("brand-new"), ErrorCode::Protocol);
    }

    #[test]
    fn part_10_pin_pad() {
        // GET_FEATURE_REQUEST answer of libccid: MODIFY 07 then VERIFY 06 (PC/SC part 10 §2.2).
        let features = [
            0x07, 4, 0x42, 0x33, 0x00, 0x07, 0x06, 4, 0x42, 0x33, 0x00, 0x06,
        ];
        assert_eq!(verify_pin_code(&features), Some(0x4233_0006));
        assert_eq!(verify_pin_code(&features[..6]), None);
        assert_eq!(
            verify_pin_code(&[0x06, 4, 1]),
            None,
            "a cut TLV is no feature"
        );
        // PIN_VERIFY_STRUCTURE (part 10 §2.5.2): bTimerOut 30, bTimerOut2 0, bmFormatString
        // 82, bmPINBlockString 00, bmPINLengthFormat 00, wPINMaxExtraDigit 0x0410 (LE),
        // bEntryValidationCondition 02, bNumberMessage 01, wLangId 0x0409 (LE), bMsgIndex 00,
        // bTeoPrologue 000000, ulDataLength 4 (LE), VERIFY 00 20 00 81.
        assert_eq!(
            pin_verify_structure(&PinVerify::default()),
            [
                0x1E, 0x00, 0x82, 0x00, 0x00, 0x10, 0x04, 0x02, 0x01, 0x09, 0x04, 0x00, 0x00, 0x00,
                0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x81
            ]
        );
    }
}
