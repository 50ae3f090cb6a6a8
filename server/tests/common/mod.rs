//! Shared test harness: the server on an ephemeral loopback port, a minimal HTTP/1.1 client
//! over a tokio `TcpStream`, the seed's card, and a driver that runs a
//! `card_relay::session::Session` against the server, and peers written from other
//! clients' documented behaviour ([`ram_client`], [`gp_agent`]). Each test crate uses a
//! part of it.
#![allow(dead_code)]

pub mod gp_agent;
pub mod ram_client;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use card_relay::proto::hex::h;
use card_relay::session::{
    Action, CardCommand, CardResult, Dialect, HttpRequest, HttpResponse, Session, SessionConfig,
};
use card_relay_server::{bind, router, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The SmartCard-HSM ATR (seed.md).
pub const HSM_ATR: &str = "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA";

/// The OpenSCDP request content type (ramoverhttp.md §1.2).
pub const OPENSCDP_CT: &str = "application/org.openscdp-content-mgt-response;version=1.0";

/// An allowed cross origin in the tests.
pub const PAGE_ORIGIN: &str = "http://localhost:3000";

/// Starts the server with `config` and returns its address.
pub async fn start(config: ServerConfig) -> SocketAddr {
    let (listener, addr) = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("bind");
    let app = router(&config);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The server with the test origin allowed.
pub async fn start_default() -> SocketAddr {
    start(ServerConfig {
        allowed_origins: vec![PAGE_ORIGIN.to_owned()],
        ..ServerConfig::default()
    })
    .await
}

/// A parsed HTTP response, plus whether the connection closed before the announced length.
#[derive(Debug, Clone)]
pub struct Raw {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub announced: Option<usize>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `JSESSIONID` value of a `Set-Cookie`.
    pub fn cookie(&self) -> Option<String> {
        let set = self.header("set-cookie")?;
        let first = set.split(';').next()?;
        first.strip_prefix("JSESSIONID=").map(str::to_owned)
    }
}

/// Sends one request (`Connection: close`) and reads the whole answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    let bytes = request_bytes(addr, method, target, headers, body).await;
    parse(&bytes)
}

/// Sends one request and returns the raw answer bytes up to the connection's end.
pub async fn request_bytes(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut stream = send_only(addr, method, target, headers, body).await;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    out
}

/// Sends one request and returns the open stream.
pub async fn send_only(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    stream
}

/// Parses a response; the body is what follows the head, cut at Content-Length.
pub fn parse(bytes: &[u8]) -> Raw {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .expect("status")
        .parse()
        .expect("numeric status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    let announced = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().expect("content-length"));
    if let Some(n) = announced {
        body.truncate(n);
    }
    Raw {
        status,
        headers,
        body,
        announced,
    }
}

/// The seed card (seed.md trace): 6E00 to VERIFY without data, the FCI to SELECT, 6700 to
/// VERIFY with data, 69 bytes + 9000 to GET CHALLENGE.
pub fn seed_card() -> impl FnMut(&CardCommand) -> CardResult {
    let mut challenges = 0u8;
    move |command| match command {
        CardCommand::Reset => CardResult::Atr(h(HSM_ATR)),
        CardCommand::Apdu(apdu) => CardResult::Response(match (apdu[1], apdu.len()) {
            (0x20, 4) => h("6E 00"),
            (0x20, _) => h("67 00"),
            (0xA4, _) => h("62 07 82 01 78 85 02 01 02 90 00"),
            (0x84, _) => {
                challenges += 1;
                let mut r = vec![challenges; 69];
                r.extend_from_slice(&h("90 00"));
                r
            }
            _ => h("6D 00"),
        }),
    }
}

/// One POST of a driven session.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: HttpRequest,
    pub response: Raw,
}

/// What a driven session did.
#[derive(Debug)]
pub struct Run {
    pub end: Action,
    pub exchanges: Vec<Exchange>,
    pub notifications: Vec<(i32, String)>,
    pub card_commands: Vec<CardCommand>,
    /// The session cookie in use at the end.
    pub cookie: Option<String>,
}

pub fn config(dialect: Dialect, url: &str) -> SessionConfig {
    SessionConfig {
        dialect,
        url: url.to_owned(),
        atr: h(HSM_ATR),
        max_capdu: None,
        max_rapdu: None,
        agent_id: None,
    }
}

/// Runs a client session against the server, as a browser page would: the cookie from the
/// first answer goes with every later POST; `extra` headers go with every POST.
pub async fn drive(
    addr: SocketAddr,
    config: SessionConfig,
    cookie: Option<String>,
    extra: &[(&str, &str)],
    card: impl FnMut(&CardCommand) -> CardResult,
) -> Run {
    drive_with(addr, config, cookie, true, extra, card).await
}

/// Runs a client session that never sends a cookie (a GP agent that keeps none); the cookie
/// the server offers is still recorded in [`Run::cookie`].
pub async fn drive_cookieless(
    addr: SocketAddr,
    config: SessionConfig,
    card: impl FnMut(&CardCommand) -> CardResult,
) -> Run {
    drive_with(addr, config, None, false, &[], card).await
}

async fn drive_with(
    addr: SocketAddr,
    config: SessionConfig,
    cookie: Option<String>,
    send_cookies: bool,
    extra: &[(&str, &str)],
    mut card: impl FnMut(&CardCommand) -> CardResult,
) -> Run {
    let mut session = Session::new(config);
    let mut run = Run {
        end: Action::Failed(card_relay::session::SessionError::Canceled),
        exchanges: Vec::new(),
        notifications: Vec::new(),
        card_commands: Vec::new(),
        cookie,
    };
    loop {
        match session.poll().expect("call order") {
            Action::Post(request) => {
                let cookie_header = run
                    .cookie
                    .as_ref()
                    .filter(|_| send_cookies)
                    .map(|c| format!("JSESSIONID={c}"));
                let mut headers: Vec<(&str, &str)> = request
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                if let Some(c) = &cookie_header {
                    headers.push(("Cookie", c));
                }
                headers.extend_from_slice(extra);
                let raw = request_with_timeout(addr, &request.url, &headers, &request.body).await;
                if let Some(c) = raw.cookie() {
                    run.cookie = Some(c);
                }
                session
                    .on_http_response(HttpResponse {
                        status: raw.status,
                        headers: raw.headers.clone(),
                        body: raw.body.clone(),
                    })
                    .expect("http response");
                run.exchanges.push(Exchange {
                    request,
                    response: raw,
                });
            }
            Action::Card(command) => {
                let result = card(&command);
                run.card_commands.push(command);
                session.on_card_response(result).expect("card response");
            }
            Action::Notify(n) => run.notifications.push((n.id, n.message)),
            end @ (Action::Done(_) | Action::Failed(_)) => {
                run.end = end;
                return run;
            }
        }
    }
}

pub async fn request_with_timeout(
    addr: SocketAddr,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Raw {
    tokio::time::timeout(
        Duration::from_secs(10),
        request(addr, "POST", url, headers, body),
    )
    .await
    .expect("server answered in time")
}

/// Hex, then ASCII text, then hex.
pub fn hta(before: &str, text: &str, after: &str) -> Vec<u8> {
    let mut v = h(before);
    v.extend_from_slice(text.as_bytes());
    v.extend_from_slice(&h(after));
    v
}

/// `GET /rt/session` with a cookie, returning the JSON text.
pub async fn status(addr: SocketAddr, cookie: &str) -> Raw {
    let c = format!("JSESSIONID={cookie}");
    request(addr, "GET", "/rt/session", &[("Cookie", &c)], b"").await
}

/// One TLV with a one-byte tag and a 1- to 3-byte length (`81 xx`, `82 xx xx`, as the
/// OpenSCDP clients read them, ramoverhttp.md §2.2): (tag, value, rest).
pub fn split_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0x00..=0x7F => (usize::from(first), rest),
        0x81 => (usize::from(*rest.first()?), rest.get(1..)?),
        0x82 => {
            let n = rest.get(..2)?;
            (usize::from(n[0]) << 8 | usize::from(n[1]), &rest[2..])
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// A TLV with a one-byte tag and the shortest 1- to 3-byte length.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match value.len() {
        n @ 0..=0x7F => out.push(n as u8),
        n @ 0x80..=0xFF => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// Checks a GP Next-URI: `<path>?step=<step>&token=<32 hex digits>` (a 128-bit token).
pub fn assert_next_uri(uri: &str, path: &str, step: usize) {
    let prefix = format!("{path}?step={step}&token=");
    let token = uri
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{uri} starts with {prefix}"));
    assert_eq!(token.len(), 32, "{uri}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{uri}");
}
