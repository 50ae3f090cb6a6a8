//! Fault endpoints, `/rt/fault/<kind>`, for testing how clients survive broken servers. Each
//! answers every POST (the first one included) in the dialect the request speaks.
//! `/rt/fault/slow-ms/<n>` is not here: it is a normal session whose first answer is
//! delayed (see the `ram` module).
//!
//! | kind | answer |
//! |---|---|
//! | `404`, `500`, `504` | that status, empty body |
//! | `bad-length` | `AA 0A 22 04 00 20 00 81`: the template announces 10 bytes and holds 6 |
//! | `truncated` | `AA 81`: the body ends inside the length field |
//! | `unknown-tag` | `AA 03 99 01 00`: tag 99 is no unit of either dialect |
//! | `deep` | `AA` holding 999 nested `E0` templates (1000 constructed TLVs) |
//! | `huge` | a 5 MiB well-formed `AA { 22 <5 MiB - 10 bytes> }` |
//! | `close-mid-body` | `Content-Length` of 1 MiB, 512 KiB sent, then the connection closes |
//! | `never` | no answer; the connection stays open until the client gives up |
//! | `close-template` | a server that sends its close as a template of its own (OpenSCDP): `AA { 22 00 20 00 81 }` to the initiation template, `AA { E1 { 0C "Card closed" } }` to a response holding an R-APDU, `204` to any other response; GP requests get `204` (GP has no close unit) |

use axum::body::Body;
use axum::http::header;
use axum::http::StatusCode;
use axum::response::Response;
use card_relay::proto::ram::openscdp;
use card_relay::proto::tlv::{self, Tag};

/// A fault endpoint's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer this status with an empty body.
    Status(StatusCode),
    BadLength,
    Truncated,
    UnknownTag,
    Deep,
    Huge,
    CloseMidBody,
    Never,
    CloseTemplate,
}

/// Constructed templates in the `deep` body.
const DEEP_LEVELS: usize = 1000;

/// Bytes in the `huge` body.
const HUGE_SIZE: usize = 5 * 1024 * 1024;

/// What `close-mid-body` announces.
const ANNOUNCED: usize = 1024 * 1024;
/// What `close-mid-body` sends.
const SENT: usize = 512 * 1024;

impl Fault {
    /// The fault named by the last path segment.
    pub(crate) fn parse(kind: &str) -> Option<Fault> {
        Some(match kind {
            "404" => Fault::Status(StatusCode::NOT_FOUND),
            "500" => Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
            "504" => Fault::Status(StatusCode::GATEWAY_TIMEOUT),
            "bad-length" => Fault::BadLength,
            "truncated" => Fault::Truncated,
            "unknown-tag" => Fault::UnknownTag,
            "deep" => Fault::Deep,
            "huge" => Fault::Huge,
            "close-mid-body" => Fault::CloseMidBody,
            "never" => Fault::Never,
            "close-template" => Fault::CloseTemplate,
            _ => return None,
        })
    }

    /// The answer to a POST of `request`; `content_type` is the script type of the
    /// request's dialect, `gp` whether it is GP. `Never` never resolves.
    pub(crate) async fn respond(self, content_type: &str, gp: bool, request: &[u8]) -> Response {
        let body = match self {
            Fault::Status(code) => return crate::web::status(code),
            Fault::CloseTemplate => match close_template(gp, request) {
                Some(body) => body,
                None => return crate::web::status(StatusCode::NO_CONTENT),
            },
            Fault::Never => return std::future::pending().await,
            Fault::BadLength => vec![0xAA, 0x0A, 0x22, 0x04, 0x00, 0x20, 0x00, 0x81],
            Fault::Truncated => vec![0xAA, 0x81],
            Fault::UnknownTag => vec![0xAA, 0x03, 0x99, 0x01, 0x00],
            Fault::Deep => deep(),
            Fault::Huge => huge(),
            Fault::CloseMidBody => {
                let mut response = close_mid_body();
                crate::web::insert(response.headers_mut(), header::CONTENT_TYPE, content_type);
                return response;
            }
        };
        let mut response = Response::new(Body::from(body));
        crate::web::insert(response.headers_mut(), header::CONTENT_TYPE, content_type);
        response
    }
}

/// Builds a one-byte tag constant; evaluated at compile time only.
const fn tag(byte: u8) -> Tag {
    match Tag::from_u8(byte) {
        Some(t) => t,
        None => panic!("multi-byte tag marker"),
    }
}

/// OpenSCDP and TS 102 226 command template.
const COMMAND_TEMPLATE: Tag = tag(0xAA);
/// OpenSCDP notification template, used as any constructed object.
const NOTIFY: Tag = tag(0xE0);
/// C-APDU TLV.
const C_APDU: Tag = tag(0x22);

/// The `close-template` answer to `request`, `None` for `204`.
fn close_template(gp: bool, request: &[u8]) -> Option<Vec<u8>> {
    if gp {
        return None;
    }
    if request.first() == Some(&0xE8) {
        return Some(vec![0xAA, 0x06, 0x22, 0x04, 0x00, 0x20, 0x00, 0x81]);
    }
    let reply = openscdp::ResponseScript::decode(request).ok()?;
    let answered = reply
        .items
        .iter()
        .any(|item| matches!(item, openscdp::ResponseItem::RApdu(_)));
    answered.then(|| {
        openscdp::CommandScript {
            commands: vec![openscdp::Command::Close {
                message: crate::script::CLOSE_MESSAGE.to_owned(),
            }],
        }
        .encode()
    })
}

/// `AA { E0 { E0 { ... E0 {} } } }`, [`DEEP_LEVELS`] constructed objects in all.
fn deep() -> Vec<u8> {
    let mut inner = Vec::new();
    for _ in 1..DEEP_LEVELS {
        let mut wrapped = Vec::with_capacity(inner.len() + 4);
        tlv::encode_tlv(NOTIFY, &inner, &mut wrapped);
        inner = wrapped;
    }
    let mut out = Vec::with_capacity(inner.len() + 4);
    tlv::encode_tlv(COMMAND_TEMPLATE, &inner, &mut out);
    out
}

/// A well-formed template of exactly [`HUGE_SIZE`] bytes: two 4-byte BER lengths
/// (`83 xx xx xx`) and two tags take 10 bytes, the C-APDU value the rest.
fn huge() -> Vec<u8> {
    let mut apdu = Vec::with_capacity(HUGE_SIZE);
    tlv::encode_tlv(C_APDU, &vec![0u8; HUGE_SIZE - 10], &mut apdu);
    let mut out = Vec::with_capacity(HUGE_SIZE);
    tlv::encode_tlv(COMMAND_TEMPLATE, &apdu, &mut out);
    out
}

/// Announces [`ANNOUNCED`] bytes of a well-formed `AA { 22 ... }` and sends the first
/// [`SENT`]. The body is a stream of unknown length, so hyper writes the given
/// `Content-Length`; when the stream ends early hyper closes the connection instead of
/// finishing the message. The part sent is larger than hyper's write buffer (about 400 KiB),
/// so hyper flushes all of it before it sees the early end.
fn close_mid_body() -> Response {
    let mut partial = Vec::with_capacity(SENT);
    COMMAND_TEMPLATE.encode(&mut partial);
    tlv::encode_length(ANNOUNCED - 5, &mut partial);
    C_APDU.encode(&mut partial);
    tlv::encode_length(ANNOUNCED - 10, &mut partial);
    partial.resize(SENT, 0);
    let stream = Body::from(partial).into_data_stream();
    let mut response = Response::new(Body::from_stream(stream));
    crate::web::insert(
        response.headers_mut(),
        header::CONTENT_LENGTH,
        &ANNOUNCED.to_string(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use card_relay::proto::tlv::Tlv;

    #[test]
    fn bodies_have_the_advertised_shape() {
        let big = huge();
        assert_eq!(big.len(), HUGE_SIZE);
        // The huge body is well-formed BER: one AA holding one 22.
        let outer = Tlv::parse_exact(&big).expect("huge parses");
        assert_eq!(outer.value().len(), HUGE_SIZE - 5);
        // deep: 1000 constructed objects, past every decoder's depth limit.
        let body = deep();
        let mut levels = 0;
        let mut rest: &[u8] = &body;
        while let Ok(tlv) = Tlv::parse_exact(rest) {
            levels += 1;
            rest = tlv.value();
        }
        assert!(rest.is_empty());
        assert_eq!(levels, DEEP_LEVELS);
        assert!(openscdp::CommandScript::decode(&body).is_err());
        for kind in ["bad-length", "truncated", "unknown-tag"] {
            assert!(Fault::parse(kind).is_some(), "{kind}");
        }
        assert!(openscdp::CommandScript::decode(&[0xAA, 0x03, 0x99, 0x01, 0x00]).is_err());
        assert_eq!(Fault::parse("nope"), None);
    }
}
