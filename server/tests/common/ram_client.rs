//! A RAMOverHTTP client that behaves as CardContact's C `ram-client` was seen to behave on
//! the wire (issue #11, ramoverhttp.md §1.2 and §2.2), written from that description only:
//!
//! - every POST goes to the same URL with
//!   `Content-Type: application/org.openscdp-content-mgt-response;version=1.0`,
//!   `Accept: */*` and `X-Admin-Protocol: openscdp-remote-admin/1.0`; cookies set by the
//!   server are kept and sent back (libcurl's cookie engine);
//! - the first body is `E8 { C0 <ATR> }`;
//! - while the answer is `200`, its `AA` template is run unit by unit: `22` C-APDU (the reply
//!   gets `23` R-APDU and the count grows), `C0` reset (the reply gets `C0` ATR), `E0`
//!   notification (shown to the user, nothing in the reply). A negative notification id, or
//!   any other unit (such as a close `E1`), ends the client with an error **without
//!   posting**. The reply is `AB { ... 80 <count> }`, the count written last as a minimal
//!   two's-complement integer;
//! - `204` ends the session as completed; any other status is an error.

use std::net::SocketAddr;

use card_relay::session::{CardCommand, CardResult};

use super::{request_with_timeout, split_tlv, tlv, OPENSCDP_CT};

/// Why the client stopped before a `204`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RamClientError {
    /// A template unit the client does not process (the `Error 1` of the issue).
    UnexpectedUnit(u8),
    /// A notification with a negative id ended the session.
    Negative { id: i32, message: String },
    /// The body is not a well-formed `AA` template.
    BadTemplate,
    /// The server answered neither `200` nor `204`.
    Http(u16),
}

/// One POST and its answer.
#[derive(Debug, Clone)]
pub struct ClientPost {
    pub body: Vec<u8>,
    pub status: u16,
    pub answer: Vec<u8>,
}

/// What the client did.
#[derive(Debug)]
pub struct RamClientRun {
    /// `Ok` after a `204`.
    pub result: Result<(), RamClientError>,
    pub notifications: Vec<(i32, String)>,
    pub posts: Vec<ClientPost>,
    /// The cookies the server set, as `name=value`.
    pub cookies: Vec<String>,
}

impl RamClientRun {
    /// The value of the `JSESSIONID` cookie.
    pub fn session_id(&self) -> Option<&str> {
        self.cookies
            .iter()
            .find_map(|c| c.strip_prefix("JSESSIONID="))
    }
}

/// Runs a session against `url` with `atr` and `card`.
pub async fn ram_client(
    addr: SocketAddr,
    url: &str,
    atr: &[u8],
    mut card: impl FnMut(&CardCommand) -> CardResult,
) -> RamClientRun {
    let mut run = RamClientRun {
        result: Ok(()),
        notifications: Vec::new(),
        posts: Vec::new(),
        cookies: Vec::new(),
    };
    let mut body = tlv(0xE8, &tlv(0xC0, atr));
    loop {
        let cookie = run.cookies.join("; ");
        let mut headers = vec![
            ("Content-Type", OPENSCDP_CT),
            ("Accept", "*/*"),
            ("X-Admin-Protocol", "openscdp-remote-admin/1.0"),
        ];
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        let raw = request_with_timeout(addr, url, &headers, &body).await;
        for (name, value) in &raw.headers {
            if name.eq_ignore_ascii_case("set-cookie") {
                let pair = value.split(';').next().unwrap_or("").trim().to_owned();
                let name = pair.split('=').next().unwrap_or("").to_owned();
                run.cookies.retain(|c| c.split('=').next() != Some(&name));
                run.cookies.push(pair);
            }
        }
        run.posts.push(ClientPost {
            body: body.clone(),
            status: raw.status,
            answer: raw.body.clone(),
        });
        match raw.status {
            200 => {}
            204 => return run,
            other => {
                run.result = Err(RamClientError::Http(other));
                return run;
            }
        }
        match process(&raw.body, &mut card, &mut run.notifications) {
            Ok(reply) => body = reply,
            Err(error) => {
                run.result = Err(error);
                return run;
            }
        }
    }
}

/// Runs one command template and builds the reply.
fn process(
    template: &[u8],
    card: &mut impl FnMut(&CardCommand) -> CardResult,
    notifications: &mut Vec<(i32, String)>,
) -> Result<Vec<u8>, RamClientError> {
    let (tag, mut rest, after) = split_tlv(template).ok_or(RamClientError::BadTemplate)?;
    if tag != 0xAA || !after.is_empty() {
        return Err(RamClientError::BadTemplate);
    }
    let mut reply = Vec::new();
    let mut count: i32 = 0;
    while !rest.is_empty() {
        let (tag, value, next) = split_tlv(rest).ok_or(RamClientError::BadTemplate)?;
        rest = next;
        match tag {
            0x22 => match card(&CardCommand::Apdu(value.to_vec())) {
                CardResult::Response(r) => {
                    reply.extend(tlv(0x23, &r));
                    count += 1;
                }
                other => panic!("the test card failed: {other:?}"),
            },
            0xC0 => match card(&CardCommand::Reset) {
                CardResult::Atr(atr) => reply.extend(tlv(0xC0, &atr)),
                other => panic!("the test card failed: {other:?}"),
            },
            0xE0 => {
                let (id, message) = notification(value).ok_or(RamClientError::BadTemplate)?;
                notifications.push((id, message.clone()));
                if id < 0 {
                    return Err(RamClientError::Negative { id, message });
                }
            }
            other => return Err(RamClientError::UnexpectedUnit(other)),
        }
    }
    reply.extend(tlv(0x80, &minimal_integer(count)));
    Ok(tlv(0xAB, &reply))
}

/// `E0 { 02 id, 0C text }`: the id is signed (the high bit of its first byte is the sign).
fn notification(mut value: &[u8]) -> Option<(i32, String)> {
    let mut id = 0i32;
    let mut message = String::new();
    while !value.is_empty() {
        let (tag, v, next) = split_tlv(value)?;
        value = next;
        match tag {
            0x02 if !v.is_empty() && v.len() <= 4 => {
                id = if v[0] & 0x80 != 0 { -1 } else { 0 };
                for b in v {
                    id = (id << 8) | i32::from(*b);
                }
            }
            0x0C => message = String::from_utf8_lossy(v).into_owned(),
            _ => {}
        }
    }
    Some((id, message))
}

/// The shortest two's-complement big-endian encoding of `v`.
fn minimal_integer(v: i32) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 3 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

#[test]
fn client_encodings() {
    assert_eq!(minimal_integer(0), [0x00]);
    assert_eq!(minimal_integer(5), [0x05]);
    assert_eq!(minimal_integer(128), [0x00, 0x80]);
    assert_eq!(minimal_integer(-1), [0xFF]);
    assert_eq!(
        notification(&[0x02, 0x01, 0xFF, 0x0C, 0x01, b'x']),
        Some((-1, "x".into()))
    );
}
