//! HTTP details shared by the endpoints: origins and CORS, the session cookie, session ids,
//! plain-text and JSON answers.
//!
//! CORS (DESIGN.md, "Neither dialect's Content-Type is CORS-safelisted"): a cross-origin page
//! from an allowed origin gets its preflight answered and its responses readable with
//! credentials; any other cross-origin request is refused with 403 and gets no CORS header.
//! A request without `Origin`, or whose `Origin` is this server (`http(s)://<Host>`), is
//! same-origin and needs nothing.

use std::io::Read;

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::Response;

/// The session cookie: the OCF client sends `Cookie: JSESSIONID=<id>` (ramoverhttp.md §1.2).
pub(crate) const SESSION_COOKIE: &str = "JSESSIONID";

/// The request headers a cross-origin RAM client sends (both dialects).
const ALLOW_HEADERS: &str =
    "Content-Type, X-Admin-Protocol, X-Admin-From, X-Admin-Script-Status, X-Admin-Resume";

/// The response headers a cross-origin GP client must read.
const EXPOSE_HEADERS: &str = "X-Admin-Next-URI, X-Admin-Protocol";

/// How long a browser may cache a preflight, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The longest session id accepted from a cookie.
const MAX_ID_LEN: usize = 128;

/// Where a request comes from, as far as CORS is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// No `Origin`, or this server's own.
    Same,
    /// An allowed cross origin.
    Allowed(String),
    /// A cross origin that is not allowed.
    Refused,
}

impl Origin {
    /// Classifies a request by its `Origin` and `Host` headers.
    pub(crate) fn of(headers: &HeaderMap, allowed: &[String]) -> Origin {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return Origin::Same;
        };
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let own = ["http://", "https://"]
            .iter()
            .any(|scheme| origin.strip_prefix(scheme) == Some(host) && !host.is_empty());
        if own {
            Origin::Same
        } else if allowed.iter().any(|a| a == origin) {
            Origin::Allowed(origin.to_owned())
        } else {
            Origin::Refused
        }
    }

    /// Serves a request from an allowed origin and adds the CORS headers to its response;
    /// a refused origin gets 403 and `serve` is not called.
    pub(crate) fn serve(
        headers: &HeaderMap,
        allowed: &[String],
        serve: impl FnOnce(&Origin) -> Response,
    ) -> Response {
        let origin = Origin::of(headers, allowed);
        if origin == Origin::Refused {
            return text(StatusCode::FORBIDDEN, "origin not allowed");
        }
        let mut response = serve(&origin);
        origin.decorate(&mut response);
        response
    }

    /// Adds the CORS headers of an actual (non-preflight) response.
    pub(crate) fn decorate(&self, response: &mut Response) {
        if let Origin::Allowed(origin) = self {
            let headers = response.headers_mut();
            insert(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            insert(headers, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
            insert(
                headers,
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                EXPOSE_HEADERS,
            );
            insert(headers, header::VARY, "Origin");
        }
    }

    /// The `SameSite` attributes of a cookie set in answer to this request: a cross-site
    /// page's cookie must be `SameSite=None; Secure` (Chrome treats `http://localhost` as
    /// secure), a same-origin one is `SameSite=Lax`.
    fn same_site(&self) -> &'static str {
        match self {
            Origin::Allowed(_) => "SameSite=None; Secure",
            Origin::Same | Origin::Refused => "SameSite=Lax",
        }
    }

    /// The `Set-Cookie` value for session `id`.
    pub(crate) fn session_cookie(&self, id: &str) -> String {
        format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; {}",
            self.same_site()
        )
    }
}

/// Answers a CORS preflight: 204 with the allowances for an allowed origin, 403 otherwise.
pub(crate) fn preflight(headers: &HeaderMap, allowed: &[String]) -> Response {
    match Origin::of(headers, allowed) {
        Origin::Allowed(origin) => {
            let mut response = status(StatusCode::NO_CONTENT);
            let h = response.headers_mut();
            insert(h, header::ACCESS_CONTROL_ALLOW_ORIGIN, &origin);
            insert(h, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
            insert(h, header::ACCESS_CONTROL_ALLOW_METHODS, "POST");
            insert(h, header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
            insert(h, header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE);
            insert(h, header::VARY, "Origin");
            response
        }
        Origin::Same | Origin::Refused => text(StatusCode::FORBIDDEN, "origin not allowed"),
    }
}

/// Sets a header whose value was built from checked text; a value that is not a valid
/// header value (it cannot happen for the constants and ids used here) is left out.
pub(crate) fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// An empty answer.
pub(crate) fn status(code: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = code;
    response
}

/// A plain-text answer.
pub(crate) fn text(code: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(format!("{message}\n")));
    *response.status_mut() = code;
    insert(
        response.headers_mut(),
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8",
    );
    response
}

/// A JSON answer that must not be cached.
pub(crate) fn json(code: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    insert(headers, header::CONTENT_TYPE, "application/json");
    insert(headers, header::CACHE_CONTROL, "no-store");
    response
}

/// A JSON string literal (RFC 8259 §7).
pub(crate) fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The session id of the request's `JSESSIONID` cookie, if it has a usable one: 1 to 128
/// characters of `A-Z a-z 0-9 . _ - ~`. Other values are ignored.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_ID_LEN
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~'))
        })
}

/// A fresh session id or GP Next-URI token: 128 bits from `/dev/urandom` (the OS's random
/// source), in hex.
pub(crate) fn new_session_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("test header"));
        }
        map
    }

    #[test]
    fn origins() {
        let allowed = vec!["http://localhost:3000".to_owned()];
        assert_eq!(Origin::of(&headers(&[]), &allowed), Origin::Same);
        let own = headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080"),
        ]);
        assert_eq!(Origin::of(&own, &allowed), Origin::Same);
        let cross = headers(&[("origin", "http://localhost:3000"), ("host", "h:1")]);
        assert_eq!(
            Origin::of(&cross, &allowed),
            Origin::Allowed("http://localhost:3000".into())
        );
        let evil = headers(&[("origin", "http://evil.example"), ("host", "h:1")]);
        assert_eq!(Origin::of(&evil, &allowed), Origin::Refused);
    }

    #[test]
    fn cookies() {
        let h = headers(&[("cookie", "a=b; JSESSIONID=1n6bij7b4v0di; c=d")]);
        assert_eq!(session_id(&h).as_deref(), Some("1n6bij7b4v0di"));
        assert_eq!(session_id(&headers(&[("cookie", "JSESSIONID=a b")])), None);
        assert_eq!(session_id(&headers(&[("cookie", "JSESSIONID=")])), None);
        assert_eq!(session_id(&headers(&[])), None);
        assert_eq!(
            Origin::Same.session_cookie("ab"),
            "JSESSIONID=ab; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            Origin::Allowed("x".into()).session_cookie("ab"),
            "JSESSIONID=ab; Path=/; HttpOnly; SameSite=None; Secure"
        );
    }

    #[test]
    fn ids_are_128_bit_hex() {
        let a = new_session_id().expect("urandom");
        let b = new_session_id().expect("urandom");
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
