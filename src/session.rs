//! The RAMOverHTTP session as a pure state machine: it says which HTTP request to POST next
//! and which card actions to run, and is fed the answers. It does no I/O, reads no clock and
//! never awaits; the async driver moves bytes between it, `fetch` and the card.
//!
//! # Driving a session
//! ```text
//! let mut s = Session::new(config);
//! loop {
//!     match s.poll()? {
//!         Action::Post(request)  => s.on_http_response(fetch(request).await)?,
//!         Action::Card(command)  => s.on_card_response(run_on_card(command).await)?,
//!         Action::Notify(n)      => show(n),
//!         Action::Done(outcome)  => break Ok(outcome),
//!         Action::Failed(error)  => break Err(error),
//!     }
//! }
//! ```
//! After [`Action::Post`] the next call must be [`Session::on_http_response`], after
//! [`Action::Card`] it must be [`Session::on_card_response`]; any other order is a
//! [`CallError`] and leaves the state unchanged. [`Action::Done`] or [`Action::Failed`] is
//! returned once; polling after it gives [`CallError::Finished`].
//!
//! # OpenSCDP dialect (ramoverhttp.md §1.2, §2.2)
//! - Every POST goes to [`SessionConfig::url`] with only
//!   `Content-Type: application/org.openscdp-content-mgt-response;version=1.0` (the Java
//!   client sends no `X-Admin-*` header). The session cookie is the transport's business.
//! - The first body is the initiation template `E8 { C0 ATR [C1] [C2] }`.
//! - `200` carries an `AA` command script: every unit runs in order. C-APDUs run whatever
//!   their status word and each adds `23 R-APDU`; the count `80` is the number of C-APDUs
//!   that ran. A reset adds `C0 ATR` and is not counted. A notification becomes
//!   [`Action::Notify`] and adds nothing; a **negative id ends the session at once, without
//!   another POST**, with [`EndStatus::EndedByServer`]. A close (`E1`) is recorded in
//!   [`Outcome::close_message`] and otherwise ignored: the reply is still posted, and the
//!   server may go on or end with `204`. The reference clients do not post after an `E1`
//!   (CardContact's C `ram-client` stops with an error at any unit other than `22`, `C0`
//!   and `E0`), so servers written for them, the reference server in `server/` included,
//!   send none and answer the reply after a `card.close()` with `204`; a server that does
//!   send one (the Java Scripting Server's behaviour is not known) works as well.
//! - A card I/O error stops the template; the reply carries `E1 { 0C <error text> }` (as
//!   the Java and C clients do), and after that POST is answered the session fails with
//!   [`SessionError::Card`], whatever the answer.
//! - `204` ends the session ([`EndStatus::Completed`]), also in answer to the first POST.
//!   Any other status is [`SessionError::Server`]. A `200` whose body is not a command
//!   script is [`SessionError::BadScript`]; [`Session::abort_request`] then builds the
//!   `E1` POST that tells the server.
//! - [`Session::cancel`] gives the 2020 Java client's `AB { E1 { 0C "Session canceled" }
//!   80 01 00 }` POST.
//!
//! # GlobalPlatform Amd B dialect (ramoverhttp.md §1.1, §2.1)
//! - The first POST goes to [`SessionConfig::url`] with no body and no Content-Type, only
//!   `X-Admin-Protocol: globalplatform-remote-admin/1.0` and `X-Admin-From: <agent id>`
//!   ([`DEFAULT_AGENT_ID`] when the configuration has none).
//! - Each later POST goes to the server's last `X-Admin-Next-URI`, resolved against the URL
//!   of the request it answered ([`resolve_uri`]), and carries the response script with
//!   `Content-Type: application/vnd.globalplatform.card-content-mgt-response;version=1.0`,
//!   `X-Admin-Protocol`, `X-Admin-From` and `X-Admin-Script-Status`.
//! - A `200` script runs its C-APDUs in order and stops after the first status word that is
//!   neither `9000` nor `61xx` (or a response too short to hold one); that response is still
//!   reported and counted. Immediate action, error action and script chaining objects are
//!   UICC features a relay cannot perform: they are skipped and not counted. An `AA` script
//!   is answered by `AB { 80 count, 23 ... }`, an `AE` script by `AF 80 23 ... 00 00`
//!   without a count (as the 2019 card trace does).
//! - A `200` script without a Next-URI runs, but its result is not sent (the session ends
//!   there, [`EndStatus::Completed`]). A `204` (or an empty `200`) without a Next-URI ends
//!   the session; with one, an empty POST like the first goes there.
//! - A script that does not decode is answered, when a Next-URI allows, with
//!   `AB { 80 01 00, 90 <error type> }` and `X-Admin-Script-Status: script-format-error`;
//!   a card I/O error is answered with the responses so far and
//!   `X-Admin-Script-Status: unavailable-se` (both values come from GP's SE remote
//!   application management document). After such a report the session fails with
//!   [`SessionError::BadScript`] or [`SessionError::Card`].
//! - The last `X-Admin-Targeted-Application` of the server's responses is kept in
//!   [`Outcome::targeted_application`]. `X-Admin-Resume` is the driver's business: it repeats
//!   a POST that failed at the network level with that header ([`RESUME`]). The server's
//!   `X-Admin-Protocol` and Content-Type are not checked. [`Session::cancel`] sends nothing.

pub mod seram;

use std::mem;

use crate::proto::ram::{
    gp, openscdp, RamError, GP_RESPONSE_CONTENT_TYPE, OPENSCDP_RESPONSE_CONTENT_TYPE,
};

/// The `X-Admin-Protocol` value of GP Amd B.
pub const GP_ADMIN_PROTOCOL: &str = "globalplatform-remote-admin/1.0";

/// The `X-Admin-From` value used when [`SessionConfig::agent_id`] is `None`. Amd B's format
/// for the agent id could not be verified, and servers seen in the wild do not check it.
pub const DEFAULT_AGENT_ID: &str = "card-relay";

/// The message of the OpenSCDP cancel POST (2020 Java `RemoteClient.cancel()`).
pub const CANCEL_MESSAGE: &str = "Session canceled";

const NEXT_URI: &str = "X-Admin-Next-URI";
const CONTENT_TYPE: &str = "Content-Type";
const ADMIN_PROTOCOL: &str = "X-Admin-Protocol";
const ADMIN_FROM: &str = "X-Admin-From";
const SCRIPT_STATUS: &str = "X-Admin-Script-Status";
/// The GP Amd B header naming the application a script addresses.
pub const TARGETED_APPLICATION: &str = "X-Admin-Targeted-Application";
/// The GP Amd B header of a POST repeated after a network failure.
pub const RESUME: &str = "X-Admin-Resume";

/// Which server flavour the session talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenSCDP / CardContact RAMoverHTTP (the seed's Scripting Server).
    OpenScdp,
    /// GlobalPlatform Amd B RAM over HTTP.
    GlobalPlatform,
    /// GlobalPlatform SERAM, HTTP REST binding: a [`seram::SeramSession`], not a
    /// [`Session`] (a `Session` made for it fails at its first `poll`).
    Seram,
}

/// What a session needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The server flavour.
    pub dialect: Dialect,
    /// The URL of the first POST (every POST in the OpenSCDP dialect). It may be relative
    /// ("/rt/testappl"); Next-URIs are resolved against it the same way.
    pub url: String,
    /// The card's ATR, sent in the OpenSCDP initiation template.
    pub atr: Vec<u8>,
    /// The largest C-APDU the reader path carries (OpenSCDP `C1`).
    pub max_capdu: Option<u32>,
    /// The largest R-APDU the reader path carries (OpenSCDP `C2`).
    pub max_rapdu: Option<u32>,
    /// The GP `X-Admin-From` agent id; [`DEFAULT_AGENT_ID`] when `None`.
    pub agent_id: Option<String>,
}

/// An HTTP request for the driver to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Always `"POST"`.
    pub method: &'static str,
    /// The URL, possibly relative to the page.
    pub url: String,
    /// Request headers in order.
    pub headers: Vec<(String, String)>,
    /// The body; empty for the first GP POST.
    pub body: Vec<u8>,
}

impl HttpRequest {
    fn post(url: String, headers: &[(&str, &str)], body: Vec<u8>) -> Self {
        HttpRequest {
            method: "POST",
            url,
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }

    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// An HTTP response as the driver received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Response headers; names are compared case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Something to do with the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardCommand {
    /// Send this command APDU; answer with [`CardResult::Response`].
    Apdu(Vec<u8>),
    /// Reset the card; answer with [`CardResult::Atr`].
    Reset,
}

/// What the card did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardResult {
    /// The response APDU: data ‖ SW1 SW2.
    Response(Vec<u8>),
    /// The ATR after a reset.
    Atr(Vec<u8>),
    /// The card or reader failed; the text goes to the server.
    Error(String),
}

/// A message from the server for the user (OpenSCDP `E0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The id; negative means the server gave up.
    pub id: i32,
    /// The text.
    pub message: String,
    /// Time to completion, when the server gave one.
    pub time_to_completion: Option<u32>,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this request, then call [`Session::on_http_response`].
    Post(HttpRequest),
    /// Run this on the card, then call [`Session::on_card_response`].
    Card(CardCommand),
    /// Show this to the user, then poll again.
    Notify(Notification),
    /// The session ended normally.
    Done(Outcome),
    /// The session failed.
    Failed(SessionError),
}

/// How a session that ended normally ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStatus {
    /// The server ended it (`204`, or GP: no Next-URI).
    Completed,
    /// The server sent a notification with a negative id (OpenSCDP).
    EndedByServer {
        /// The negative id.
        id: i32,
        /// Its text.
        message: String,
    },
}

/// The summary of a session that ended normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// C-APDUs sent to the card.
    pub apdus: u32,
    /// POSTs answered by the server.
    pub round_trips: u32,
    /// The last notification (id, text).
    pub last_notification: Option<(i32, String)>,
    /// The text of the last close (`E1`) the server sent (OpenSCDP).
    pub close_message: Option<String>,
    /// The last `X-Admin-Targeted-Application` a GP server sent (GP Amd B §3.3.3 header:
    /// the application the script addresses), as received.
    pub targeted_application: Option<String>,
    /// How it ended.
    pub status: EndStatus,
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server answered with a status that is neither 200 nor 204.
    #[error("server answered http {status}")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The server sent a script that does not decode.
    #[error("bad script")]
    BadScript(#[source] RamError),
    /// The card or reader failed.
    #[error("card error: {message}")]
    Card {
        /// The error text the driver gave.
        message: String,
    },
    /// The server's `X-Admin-Next-URI` is not a usable URI reference.
    #[error("bad next uri")]
    BadNextUri(#[source] UriError),
    /// The session was canceled by [`Session::cancel`].
    #[error("session canceled")]
    Canceled,
    /// A SERAM failure ([`seram::SeramSession`]).
    #[error(transparent)]
    Seram(seram::SeramError),
}

/// A call that does not fit the session's state. The state is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// `poll` while an HTTP response is due.
    #[error("awaiting an http response")]
    AwaitingHttpResponse,
    /// `poll` while a card result is due.
    #[error("awaiting a card result")]
    AwaitingCardResult,
    /// An HTTP response that no request asked for.
    #[error("no http request outstanding")]
    UnexpectedHttpResponse,
    /// A card result that no card command asked for.
    #[error("no card command outstanding")]
    UnexpectedCardResult,
    /// An ATR for an APDU or a response for a reset.
    #[error("card result does not match the command")]
    WrongCardResult,
    /// The session has ended.
    #[error("session finished")]
    Finished,
}

/// `X-Admin-Script-Status` values (GP Amd B, and GP SE remote application management).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptStatus {
    /// `ok`: the script was processed.
    Ok,
    /// `unknown-application`.
    UnknownApplication,
    /// `not-a-security-domain`.
    NotASecurityDomain,
    /// `security-error`.
    SecurityError,
    /// `script-format-error`: the script did not decode.
    ScriptFormatError,
    /// `unavailable-se`: the card could not be reached.
    UnavailableSe,
}

impl ScriptStatus {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptStatus::Ok => "ok",
            ScriptStatus::UnknownApplication => "unknown-application",
            ScriptStatus::NotASecurityDomain => "not-a-security-domain",
            ScriptStatus::SecurityError => "security-error",
            ScriptStatus::ScriptFormatError => "script-format-error",
            ScriptStatus::UnavailableSe => "unavailable-se",
        }
    }
}

/// Errors from [`resolve_uri`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// White space, a control character or a non-ASCII character.
    #[error("invalid character in uri")]
    InvalidCharacter,
}

/// The parts of a URI reference (RFC 3986 §3), the fragment dropped.
struct UriParts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

fn split_uri(uri: &str) -> UriParts<'_> {
    let uri = uri.split_once('#').map_or(uri, |(u, _)| u);
    let (uri, query) = match uri.split_once('?') {
        Some((u, q)) => (u, Some(q)),
        None => (uri, None),
    };
    // A scheme is letters, digits, "+", "-" and "." before the first ":", starting with a
    // letter (RFC 3986 §3.1); a ":" after a "/" belongs to the path.
    let scheme_end = uri.find(':').filter(|i| {
        let candidate = uri.get(..*i).unwrap_or("");
        candidate.starts_with(|c: char| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    let (scheme, rest) = match scheme_end {
        Some(i) => (uri.get(..i), uri.get(i + 1..).unwrap_or("")),
        None => (None, uri),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            (after.get(..end), after.get(end..).unwrap_or(""))
        }
        None => (None, rest),
    };
    UriParts {
        scheme,
        authority,
        path,
        query,
    }
}

/// Removes "." and ".." segments (RFC 3986 §5.2.4).
fn remove_dot_segments(path: &str) -> String {
    fn pop_segment(out: &mut String) {
        let cut = out.rfind('/').unwrap_or(0);
        out.truncate(cut);
    }
    let mut input = path;
    let mut out = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = input.get(2..).unwrap_or("");
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = input.get(3..).unwrap_or("");
            pop_segment(&mut out);
        } else if input == "/.." {
            input = "/";
            pop_segment(&mut out);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input
                .get(start..)
                .and_then(|s| s.find('/'))
                .map_or(input.len(), |i| i + start);
            out.push_str(input.get(..end).unwrap_or(""));
            input = input.get(end..).unwrap_or("");
        }
    }
    out
}

/// The origin of an absolute http(s) URL, serialised as the WHATWG URL standard does
/// (`new URL(url).origin`, RFC 6454 §6.2): `scheme://host[:port]` with the scheme and host
/// lowercased, user info dropped, the port left out when it is the scheme's default (80 for
/// http, 443 for https; leading zeros ignored), and a non-ASCII host label written in
/// Punycode with the `xn--` prefix (RFC 3492, IDNA). This is the one origin rule of the
/// crate: the JS API compares `URL.origin` values, which this matches. `None` for a
/// relative URL, another scheme, an empty host or a port that is not a number up to 65535.
///
/// IDNA's full mapping (UTS #46: NFC, width folding) is not applied: a host is lowercased
/// character by character, which covers hosts typed in their usual form.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // An IPv6 literal keeps its colons inside brackets.
    let (host, port) = match host_port.rfind(':') {
        Some(i) if !host_port.get(i..)?.contains(']') => {
            (host_port.get(..i)?, Some(host_port.get(i + 1..)?))
        }
        _ => (host_port, None),
    };
    let valid_host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => {
            !ipv6.is_empty()
                && ipv6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        }
        // WHATWG URL "forbidden host code points", and '%' (percent-decoding is not done).
        None => {
            !host.is_empty()
                && !host.contains(|c: char| c.is_control() || " #%/:<>?@[\\]^|".contains(c))
        }
    };
    if !valid_host {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => {
            let digits = p.trim_start_matches('0');
            let n: u32 = if digits.is_empty() {
                0
            } else if digits.len() > 5 {
                return None;
            } else {
                digits.parse().ok()?
            };
            if n > 65_535 {
                return None;
            }
            (n != default_port).then_some(n)
        }
        Some(_) => return None,
    };
    let host = ascii_host(host)?;
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The host lowercased, each non-ASCII label as `xn--` and its Punycode.
fn ascii_host(host: &str) -> Option<String> {
    if host.is_ascii() {
        return Some(host.to_ascii_lowercase());
    }
    let labels: Option<Vec<String>> = host
        .split('.')
        .map(|label| {
            let label = label.to_lowercase();
            if label.is_ascii() {
                Some(label)
            } else {
                punycode(&label).map(|p| format!("xn--{p}"))
            }
        })
        .collect();
    Some(labels?.join("."))
}

/// Punycode encoding of one label (RFC 3492 §6.3, parameters of §5); `None` on overflow.
fn punycode(input: &str) -> Option<String> {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    fn adapt(mut delta: u32, points: u32, first: bool) -> u32 {
        delta /= if first { DAMP } else { 2 };
        delta += delta / points;
        let mut k = 0;
        while delta > ((BASE - T_MIN) * T_MAX) / 2 {
            delta /= BASE - T_MIN;
            k += BASE;
        }
        k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
    }
    fn digit(d: u32) -> char {
        // 0..=25 are a..z, 26..=35 are 0..9.
        let d = u8::try_from(d).unwrap_or(0);
        char::from(if d < 26 { b'a' + d } else { b'0' + (d - 26) })
    }
    let code_points: Vec<u32> = input.chars().map(u32::from).collect();
    let mut out: String = input.chars().filter(char::is_ascii).collect();
    let basic = u32::try_from(out.len()).ok()?;
    let mut handled = basic;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias) = (0x80u32, 0u32, 72u32);
    let total = u32::try_from(code_points.len()).ok()?;
    while handled < total {
        let m = code_points.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in &code_points {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(out)
}

/// Resolves a URI reference against a base URI (RFC 3986 §5.2), as a GP client resolves
/// `X-Admin-Next-URI`: an absolute URL replaces the base, `//host/...` keeps the scheme, an
/// absolute path keeps scheme and host, a relative path replaces the base's last segment, a
/// lone `?query` keeps the base path. The base may itself lack scheme and host
/// ("/server/adminagent?cmd=1"), giving a path the page's fetch resolves. Fragments are
/// dropped. The query is kept verbatim.
pub fn resolve_uri(base: &str, reference: &str) -> Result<String, UriError> {
    let invalid = |c: char| !c.is_ascii() || c.is_ascii_control() || c == ' ';
    if reference.contains(invalid) || base.contains(invalid) {
        return Err(UriError::InvalidCharacter);
    }
    let b = split_uri(base);
    let r = split_uri(reference);
    let (scheme, authority, path, query);
    if r.scheme.is_some() {
        scheme = r.scheme;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else if r.authority.is_some() {
        scheme = b.scheme;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        scheme = b.scheme;
        authority = b.authority;
        if r.path.is_empty() {
            path = b.path.to_owned();
            query = r.query.or(b.query);
        } else {
            query = r.query;
            if r.path.starts_with('/') {
                path = remove_dot_segments(r.path);
            } else {
                let merged = if b.authority.is_some() && b.path.is_empty() {
                    format!("/{}", r.path)
                } else {
                    let dir = b
                        .path
                        .rfind('/')
                        .map_or("", |i| b.path.get(..=i).unwrap_or(""));
                    format!("{dir}{}", r.path)
                };
                path = remove_dot_segments(&merged);
            }
        }
    }
    let mut out = String::new();
    if let Some(s) = scheme {
        out.push_str(s);
        out.push(':');
    }
    if let Some(a) = authority {
        out.push_str("//");
        out.push_str(a);
    }
    out.push_str(&path);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// What the next HTTP answer leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AfterHttp {
    /// Read the answer as usual.
    Continue,
    /// The request reported a failure: end with this error whatever the answer.
    Fail(SessionError),
}

/// An OpenSCDP command script being run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenScdpRun {
    commands: Vec<openscdp::Command>,
    /// The index of the next command to run.
    next: usize,
    /// The response built so far.
    reply: openscdp::ResponseScript,
    /// Set by a card I/O error: the script stops and the reply carries this text.
    card_error: Option<String>,
}

/// A GP command script being run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GpRun {
    items: Vec<gp::CommandItem>,
    /// The index of the next item to look at.
    next: usize,
    /// The response built so far; its count is filled in at the end.
    reply: gp::ResponseScript,
    /// C-APDUs run from this script.
    count: u32,
    /// Set by a status word that ends the script.
    stopped: bool,
    /// Set by a card I/O error.
    card_error: Option<String>,
    /// Where the response goes; `None` when the server gave no Next-URI.
    next_uri: Option<String>,
}

/// A script being run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    OpenScdp(OpenScdpRun),
    Gp(GpRun),
}

/// The card result a card command waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Response,
    Atr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Nothing sent yet.
    Start,
    /// A request is ready to be returned by `poll`.
    Send(HttpRequest, AfterHttp),
    /// A request is out; its answer is due.
    AwaitHttp(AfterHttp),
    /// A script is being run.
    Running(Run),
    /// A card command is out; its result is due.
    AwaitCard(Run, Expect),
    /// The final action is ready to be returned by `poll`.
    Ending(Action),
    /// The final action was returned.
    Finished,
}

/// A RAMOverHTTP session; see the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// The URL of the last request, the base for the next `X-Admin-Next-URI`.
    url: String,
    posts: u32,
    apdus: u32,
    round_trips: u32,
    last_notification: Option<(i32, String)>,
    close_message: Option<String>,
    targeted_application: Option<String>,
}

impl Session {
    /// A session that has sent nothing yet.
    pub fn new(config: SessionConfig) -> Self {
        let url = config.url.clone();
        Session {
            config,
            state: State::Start,
            url,
            posts: 0,
            apdus: 0,
            round_trips: 0,
            last_notification: None,
            close_message: None,
            targeted_application: None,
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.config.dialect
    }

    /// C-APDUs sent to the card so far.
    pub fn apdus(&self) -> u32 {
        self.apdus
    }

    /// POSTs answered so far.
    pub fn round_trips(&self) -> u32 {
        self.round_trips
    }

    /// Whether the final action has been produced (or is ready to be polled).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Ending(_) | State::Finished)
    }

    /// The next thing to do. See the module documentation for the call order.
    pub fn poll(&mut self) -> Result<Action, CallError> {
        match mem::replace(&mut self.state, State::Finished) {
            State::Start if self.config.dialect == Dialect::Seram => Ok(Action::Failed(
                SessionError::Seram(seram::SeramError::WrongSession),
            )),
            State::Start => {
                let request = self.first_request();
                Ok(self.send(request, AfterHttp::Continue))
            }
            State::Send(request, after) => Ok(self.send(request, after)),
            State::Running(run) => Ok(self.step(run)),
            State::Ending(action) => Ok(action),
            State::Finished => Err(CallError::Finished),
            state @ State::AwaitHttp(_) => {
                self.state = state;
                Err(CallError::AwaitingHttpResponse)
            }
            state @ State::AwaitCard(..) => {
                self.state = state;
                Err(CallError::AwaitingCardResult)
            }
        }
    }

    /// Feeds the answer to the last [`Action::Post`].
    pub fn on_http_response(&mut self, response: HttpResponse) -> Result<(), CallError> {
        let after = match mem::replace(&mut self.state, State::Finished) {
            State::AwaitHttp(after) => after,
            state => {
                let error = call_error(&state, CallError::UnexpectedHttpResponse);
                self.state = state;
                return Err(error);
            }
        };
        self.round_trips = self.round_trips.saturating_add(1);
        self.state = match after {
            AfterHttp::Fail(error) => State::Ending(Action::Failed(error)),
            AfterHttp::Continue => match self.config.dialect {
                Dialect::OpenScdp => self.openscdp_answer(response),
                Dialect::GlobalPlatform | Dialect::Seram => {
                    if let Some(target) = response.header(TARGETED_APPLICATION) {
                        self.targeted_application = Some(target.to_owned());
                    }
                    self.gp_answer(response)
                }
            },
        };
        Ok(())
    }

    /// Feeds the result of the last [`Action::Card`].
    pub fn on_card_response(&mut self, result: CardResult) -> Result<(), CallError> {
        let (mut run, expect) = match mem::replace(&mut self.state, State::Finished) {
            State::AwaitCard(run, expect) => (run, expect),
            state => {
                let error = call_error(&state, CallError::UnexpectedCardResult);
                self.state = state;
                return Err(error);
            }
        };
        match (&mut run, expect, result) {
            (Run::OpenScdp(OpenScdpRun { card_error, .. }), _, CardResult::Error(message))
            | (Run::Gp(GpRun { card_error, .. }), _, CardResult::Error(message)) => {
                *card_error = Some(message);
            }
            (Run::OpenScdp(run), Expect::Response, CardResult::Response(rapdu)) => {
                self.apdus = self.apdus.saturating_add(1);
                run.reply.count = run.reply.count.saturating_add(1);
                run.reply.items.push(openscdp::ResponseItem::RApdu(rapdu));
            }
            (Run::OpenScdp(run), Expect::Atr, CardResult::Atr(atr)) => {
                run.reply.items.push(openscdp::ResponseItem::Atr(atr));
            }
            (Run::Gp(run), Expect::Response, CardResult::Response(rapdu)) => {
                self.apdus = self.apdus.saturating_add(1);
                run.count = run.count.saturating_add(1);
                run.stopped = !gp_continues(&rapdu);
                run.reply.items.push(gp::ResponseItem::RApdu(rapdu));
            }
            (_, _, CardResult::Response(_) | CardResult::Atr(_)) => {
                self.state = State::AwaitCard(run, expect);
                return Err(CallError::WrongCardResult);
            }
        }
        self.state = State::Running(run);
        Ok(())
    }

    /// Ends the session at the user's request and returns the request that tells the
    /// server, if the dialect has one: OpenSCDP posts `AB { E1 { 0C "Session canceled" }
    /// 80 01 00 }` once a POST has been sent; GP sends nothing. The driver sends it without
    /// feeding its answer back. The next `poll` gives [`SessionError::Canceled`]. On a
    /// session that has already ended this does nothing and returns `None`.
    pub fn cancel(&mut self) -> Option<HttpRequest> {
        if self.is_finished() {
            return None;
        }
        self.state = State::Ending(Action::Failed(SessionError::Canceled));
        if self.posts == 0 {
            return None;
        }
        self.abort_request(CANCEL_MESSAGE)
    }

    /// The OpenSCDP POST that tells the server the client gives up:
    /// `AB { E1 { 0C reason } 80 01 00 }` to the session URL. `None` for GP, which has no
    /// such message. It does not change the session.
    pub fn abort_request(&self, reason: &str) -> Option<HttpRequest> {
        match self.config.dialect {
            Dialect::OpenScdp => {
                Some(self.openscdp_post(openscdp::ResponseScript::abort(reason).encode()))
            }
            Dialect::GlobalPlatform | Dialect::Seram => None,
        }
    }

    fn agent_id(&self) -> &str {
        self.config.agent_id.as_deref().unwrap_or(DEFAULT_AGENT_ID)
    }

    fn first_request(&self) -> HttpRequest {
        match self.config.dialect {
            Dialect::OpenScdp => {
                let template = openscdp::InitiationTemplate {
                    atr: self.config.atr.clone(),
                    max_capdu: self.config.max_capdu,
                    max_rapdu: self.config.max_rapdu,
                };
                self.openscdp_post(template.encode())
            }
            Dialect::GlobalPlatform | Dialect::Seram => self.gp_empty_post(self.config.url.clone()),
        }
    }

    fn openscdp_post(&self, body: Vec<u8>) -> HttpRequest {
        HttpRequest::post(
            self.config.url.clone(),
            &[(CONTENT_TYPE, OPENSCDP_RESPONSE_CONTENT_TYPE)],
            body,
        )
    }

    fn gp_empty_post(&self, url: String) -> HttpRequest {
        HttpRequest::post(
            url,
            &[
                (ADMIN_PROTOCOL, GP_ADMIN_PROTOCOL),
                (ADMIN_FROM, self.agent_id()),
            ],
            Vec::new(),
        )
    }

    fn gp_report(&self, url: String, status: ScriptStatus, body: Vec<u8>) -> HttpRequest {
        HttpRequest::post(
            url,
            &[
                (ADMIN_PROTOCOL, GP_ADMIN_PROTOCOL),
                (ADMIN_FROM, self.agent_id()),
                (CONTENT_TYPE, GP_RESPONSE_CONTENT_TYPE),
                (SCRIPT_STATUS, status.as_str()),
            ],
            body,
        )
    }

    fn send(&mut self, request: HttpRequest, after: AfterHttp) -> Action {
        self.posts = self.posts.saturating_add(1);
        self.url.clone_from(&request.url);
        self.state = State::AwaitHttp(after);
        Action::Post(request)
    }

    fn outcome(&self, status: EndStatus) -> Outcome {
        Outcome {
            apdus: self.apdus,
            round_trips: self.round_trips,
            last_notification: self.last_notification.clone(),
            close_message: self.close_message.clone(),
            targeted_application: self.targeted_application.clone(),
            status,
        }
    }

    fn done(&self) -> State {
        State::Ending(Action::Done(self.outcome(EndStatus::Completed)))
    }

    fn openscdp_answer(&self, response: HttpResponse) -> State {
        match response.status {
            204 => self.done(),
            200 => match openscdp::CommandScript::decode(&response.body) {
                Ok(script) => State::Running(Run::OpenScdp(OpenScdpRun {
                    commands: script.commands,
                    next: 0,
                    reply: openscdp::ResponseScript::default(),
                    card_error: None,
                })),
                Err(error) => State::Ending(Action::Failed(SessionError::BadScript(error))),
            },
            status => State::Ending(Action::Failed(SessionError::Server { status })),
        }
    }

    fn gp_answer(&self, response: HttpResponse) -> State {
        if !matches!(response.status, 200 | 204) {
            return State::Ending(Action::Failed(SessionError::Server {
                status: response.status,
            }));
        }
        let next_uri = match response.header(NEXT_URI).map(|r| resolve_uri(&self.url, r)) {
            None => None,
            Some(Ok(uri)) => Some(uri),
            Some(Err(error)) => {
                return State::Ending(Action::Failed(SessionError::BadNextUri(error)))
            }
        };
        if response.status == 204 || response.body.is_empty() {
            return match next_uri {
                Some(uri) => State::Send(self.gp_empty_post(uri), AfterHttp::Continue),
                None => self.done(),
            };
        }
        match gp::CommandScript::decode(&response.body) {
            Ok(script) => State::Running(Run::Gp(GpRun {
                items: script.items,
                next: 0,
                reply: gp::ResponseScript {
                    form: script.form,
                    count: None,
                    items: Vec::new(),
                },
                count: 0,
                stopped: false,
                card_error: None,
                next_uri,
            })),
            Err(error) => {
                let failure = SessionError::BadScript(error.clone());
                match next_uri {
                    Some(uri) => {
                        let reply = gp::ResponseScript {
                            form: gp::Form::Definite,
                            count: Some(0),
                            items: vec![gp::ResponseItem::BadFormat(gp::BadFormat::for_error(
                                &error,
                            ))],
                        };
                        let request =
                            self.gp_report(uri, ScriptStatus::ScriptFormatError, reply.encode());
                        State::Send(request, AfterHttp::Fail(failure))
                    }
                    None => State::Ending(Action::Failed(failure)),
                }
            }
        }
    }

    /// Runs a script until it needs the card, the user or the server.
    fn step(&mut self, run: Run) -> Action {
        match run {
            Run::OpenScdp(run) => self.step_openscdp(run),
            Run::Gp(run) => self.step_gp(run),
        }
    }

    fn step_openscdp(&mut self, mut run: OpenScdpRun) -> Action {
        if let Some(message) = run.card_error.take() {
            run.reply.items.push(openscdp::ResponseItem::Close {
                message: message.clone(),
            });
            let request = self.openscdp_post(run.reply.encode());
            return self.send(request, AfterHttp::Fail(SessionError::Card { message }));
        }
        while let Some(command) = run.commands.get(run.next) {
            run.next += 1;
            let (card, expect) = match command {
                openscdp::Command::Apdu(apdu) => {
                    (CardCommand::Apdu(apdu.clone()), Expect::Response)
                }
                openscdp::Command::Reset => (CardCommand::Reset, Expect::Atr),
                openscdp::Command::Close { message } => {
                    self.close_message = Some(message.clone());
                    continue;
                }
                openscdp::Command::Notify {
                    id,
                    message,
                    time_to_completion,
                } => {
                    let notification = Notification {
                        id: *id,
                        message: message.clone(),
                        time_to_completion: *time_to_completion,
                    };
                    self.last_notification = Some((notification.id, notification.message.clone()));
                    self.state = if notification.id < 0 {
                        State::Ending(Action::Done(self.outcome(EndStatus::EndedByServer {
                            id: notification.id,
                            message: notification.message.clone(),
                        })))
                    } else {
                        State::Running(Run::OpenScdp(run))
                    };
                    return Action::Notify(notification);
                }
            };
            self.state = State::AwaitCard(Run::OpenScdp(run), expect);
            return Action::Card(card);
        }
        let request = self.openscdp_post(run.reply.encode());
        self.send(request, AfterHttp::Continue)
    }

    fn step_gp(&mut self, mut run: GpRun) -> Action {
        if run.card_error.is_none() && !run.stopped {
            while let Some(item) = run.items.get(run.next) {
                run.next += 1;
                // Only C-APDUs can run on a relayed card; the UICC actions are skipped.
                if let gp::CommandItem::Apdu(apdu) = item {
                    let command = CardCommand::Apdu(apdu.clone());
                    self.state = State::AwaitCard(Run::Gp(run), Expect::Response);
                    return Action::Card(command);
                }
            }
        }
        if run.reply.form == gp::Form::Definite {
            run.reply.count = Some(run.count);
        }
        let (status, after) = match run.card_error {
            Some(message) => (
                ScriptStatus::UnavailableSe,
                AfterHttp::Fail(SessionError::Card { message }),
            ),
            None => (ScriptStatus::Ok, AfterHttp::Continue),
        };
        match (run.next_uri, after) {
            (Some(uri), after) => {
                let request = self.gp_report(uri, status, run.reply.encode());
                self.send(request, after)
            }
            (None, AfterHttp::Fail(error)) => self.finish(Action::Failed(error)),
            (None, AfterHttp::Continue) => {
                self.finish(Action::Done(self.outcome(EndStatus::Completed)))
            }
        }
    }

    fn finish(&mut self, action: Action) -> Action {
        self.state = State::Finished;
        action
    }
}

/// Whether a GP script goes on after this response: SW `9000` or `61xx` (ramoverhttp.md §2.1).
fn gp_continues(rapdu: &[u8]) -> bool {
    matches!(rapdu, [.., 0x90, 0x00] | [.., 0x61, _])
}

/// The call error for an input that arrived in `state`.
fn call_error(state: &State, otherwise: CallError) -> CallError {
    match state {
        State::Ending(_) | State::Finished => CallError::Finished,
        _ => otherwise,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;
    use crate::proto::ram::GP_SCRIPT_CONTENT_TYPE;
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
                    "application/vnd.globalplatform.card-content-mgt-response;version=1.0"
                        .to_owned(),
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
        let Ok(Action::Failed(SessionError::BadScript(RamError::UnknownTag { .. }))) =
            session.poll()
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
        let status_25 =
            h("E3 15 4F 08 A0 00 00 01 51 00 00 00 9F 70 01 07 C5 03 9E 00 00 00 00 90 00");
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
        // RFC 3492 §7.1 sample (L): Japanese "3B-ftp-kumi", lowercased as IDNA does.
        assert_eq!(
            punycode("3年b組金八先生").as_deref(),
            Some("3b-ww4c5e180e575a65lsy2b")
        );
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
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
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
}
