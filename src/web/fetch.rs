//! The fetch adapter: [`HttpClient`] over the global `fetch` (window, worker or Node). The
//! update loop bounds each exchange (the one HTTP timeout, [`crate::driver::update`]); when
//! it drops an unfinished exchange, the request's `AbortController` aborts it.
//!
//! Node's `fetch` keeps no cookies, so where the global has no `document` the client keeps
//! the session's cookies itself ([`CookieJar`]): the `name=value` pairs of every `Set-Cookie`
//! (read with `Headers.getSetCookie()`, Fetch standard §5.2) go back as `Cookie` on later
//! requests to the same origin (RFC 6265 §5.4, without paths, domains or expiry dates: one
//! jar lives for one card update). The caller's own `Cookie` header (the OCF session id,
//! `JSESSIONID=<id>`) seeds the jar once; a `Set-Cookie` of the same name then replaces it,
//! as the OCF client's cookie manager does.
//!
//! [`WebFetch::fetch`] replaces the global `fetch`: the JS layer passes one that keeps a
//! whole session on one keep-alive connection in Node.js (js/card-relay.js).
//!
//! When the page's Content-Security-Policy blocks a request, the browser rejects `fetch`
//! like any network failure and reports a `securitypolicyviolation` event (CSP Level 3
//! §5.3); the client listens for it during each exchange and answers
//! [`HttpError::CspBlocked`] instead of a network error.
//!
//! Deliberately not `cache: "no-store"`: with it Chromium preflights every cross-origin POST
//! instead of once per session (DESIGN.md).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::AbortController;

use crate::driver::update::{HttpClient, HttpError};
use crate::driver::usb::LocalBoxFuture;
use crate::session::{origin, HttpRequest, HttpResponse};
use crate::web::promise::Settled;

// The exchange is one JavaScript helper, `post` in platform.js: one promise from the request
// to the whole body (issue 18: the async state machine of a fetch, its headers and its body
// read were 8.7 KB of wasm).
#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn post(
        fetch: &JsValue,
        url: &str,
        method: &str,
        headers: &Array,
        body: Option<Uint8Array>,
        credentials: &str,
        signal: &JsValue,
        cookies: bool,
    ) -> Promise;
    /// Whether this global lacks a DOM (Node.js, Deno, a worker): Node's `fetch` keeps no
    /// cookies. In a browser worker the jar stays empty and harmless: `getSetCookie()`
    /// returns nothing there and a `Cookie` request header is dropped as a forbidden one.
    #[wasm_bindgen(js_name = ownCookies)]
    fn keeps_own_cookies() -> bool;
    /// `[name, responseCode, message]` of a rejection.
    #[wasm_bindgen(js_name = scError)]
    fn error_parts(e: &JsValue) -> Array;
}

/// Which cookies `fetch` sends (RequestInit `credentials`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Credentials {
    /// Only to the page's own origin (the default).
    #[default]
    SameOrigin,
    /// Also to a cross-origin server (it must allow credentials for the page's origin).
    Include,
    /// Never.
    Omit,
}

/// HTTP through the global `fetch`.
#[derive(Debug, Clone, Default)]
pub struct WebFetch {
    /// The credentials mode of every request.
    pub credentials: Credentials,
    /// The cookies of this client's session, used only where there is no `document`.
    pub cookies: Rc<RefCell<CookieJar>>,
    /// The `fetch` to call instead of the global one (same signature).
    pub fetch: Option<Function>,
}

pub use crate::cookie::CookieJar;

fn network(e: &JsValue) -> HttpError {
    let parts = error_parts(e);
    if parts.get(0).as_string().as_deref() == Some("AbortError") {
        return HttpError::Aborted;
    }
    let message = parts
        .get(2)
        .as_string()
        .unwrap_or_else(|| "fetch failed".to_owned());
    HttpError::Network(message)
}

/// Aborts the request when the exchange is dropped unfinished: the update loop owns the
/// one HTTP timeout (`crate::driver::update`) and drops the exchange when it passes.
struct Cancel(Option<AbortController>);

impl Drop for Cancel {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}

/// The `connect-src` violation among `violations` (see `post`) that names the request's
/// origin (CSP Level 3 §5.3), as the page policy's `connect-src` (or `default-src`)
/// directive.
fn csp_blocked(url: &str, violations: &JsValue) -> Option<String> {
    let wanted = origin(url);
    Array::from(violations).iter().find_map(|v| {
        let v = Array::from(&v);
        let field = |i| v.get(i).as_string().unwrap_or_default();
        if field(0) != "connect-src" {
            return None;
        }
        if let (Some(wanted), Some(blocked)) = (&wanted, origin(&field(1))) {
            if *wanted != blocked {
                return None;
            }
        }
        Some(connect_src(&field(2)))
    })
}

impl HttpClient for WebFetch {
    /// POSTs `request`. `_timeout_ms` is not enforced here: the update loop bounds every
    /// exchange and drops this future when the bound passes, which aborts the request.
    fn post(
        &self,
        request: HttpRequest,
        _timeout_ms: u64,
    ) -> LocalBoxFuture<Result<HttpResponse, HttpError>> {
        let jar = keeps_own_cookies()
            .then(|| origin(&request.url).map(|origin| (origin, Rc::clone(&self.cookies))))
            .flatten();
        // Name, value, name, value… as array items, never one joined string: a line feed in a
        // value (a URL-decoded sessionId) must not forge another field. `Headers` refuses a
        // value with CR, LF or NUL and a name that is not a token (Fetch standard "header
        // value", RFC 9110 §5.5), which fails the exchange before anything is sent.
        let headers = Array::new();
        let add = |name: &str, value: &str| {
            headers.push(&name.into());
            headers.push(&value.into());
        };
        let mut explicit = None;
        for (name, value) in &request.headers {
            if jar.is_some() && name.eq_ignore_ascii_case("cookie") {
                explicit = Some(value.as_str());
            } else {
                add(name, value);
            }
        }
        if let Some((origin, cookies)) = &jar {
            if let Some(cookie) = cookies.borrow_mut().header(origin, explicit) {
                add("Cookie", &cookie);
            }
        }
        let credentials = match self.credentials {
            Credentials::SameOrigin => "same-origin",
            Credentials::Include => "include",
            Credentials::Omit => "omit",
        };
        let body = (!request.body.is_empty()).then(|| Uint8Array::from(request.body.as_slice()));
        let mut cancel = Cancel(AbortController::new().ok());
        let signal = cancel
            .0
            .as_ref()
            .map_or(JsValue::UNDEFINED, |c| c.signal().into());
        let fetch = self.fetch.clone().map_or(JsValue::UNDEFINED, JsValue::from);
        let exchange = Settled::new(&post(
            &fetch,
            &request.url,
            request.method,
            &headers,
            body,
            credentials,
            &signal,
            jar.is_some(),
        ));
        let url = request.url;
        Box::pin(async move {
            let outcome = exchange.await;
            // Finished: nothing left to abort.
            drop(cancel.0.take());
            let answer = match outcome {
                Ok(answer) => Array::from(&answer),
                Err(e) => {
                    let e = Array::from(&e);
                    let error = network(&e.get(1));
                    return Err(match (e.get(0).as_f64(), error) {
                        (Some(0.0), HttpError::Network(m)) => match csp_blocked(&url, &e.get(2)) {
                            Some(policy) => HttpError::CspBlocked(format!(
                                "{url} (connect-src of the page: {policy})"
                            )),
                            None => HttpError::Network(m),
                        },
                        (_, HttpError::Network(m)) => HttpError::Body(m),
                        (_, other) => other,
                    });
                }
            };
            let text = |v: JsValue| v.as_string().unwrap_or_default();
            if let Some((origin, cookies)) = &jar {
                let mut cookies = cookies.borrow_mut();
                for value in Array::from(&answer.get(2)).iter() {
                    cookies.store(origin, &text(value));
                }
            }
            // Name, value, … one array item each: whatever a value holds, it stays one value.
            let mut fields = Array::from(&answer.get(1)).into_iter().map(text);
            let mut headers = Vec::new();
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                headers.push((name, value));
            }
            Ok(HttpResponse {
                status: answer.get(0).as_f64().unwrap_or(0.0) as u16,
                headers,
                body: Uint8Array::from(answer.get(3)).to_vec(),
            })
        })
    }
}

/// The directive of a serialized policy that governs `fetch`: `connect-src`, else
/// `default-src` (CSP Level 3 §6.1.3), else the whole policy.
fn connect_src(policy: &str) -> String {
    let directive = |name: &str| {
        policy
            .split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(str::to_owned)
    };
    directive("connect-src")
        .or_else(|| directive("default-src"))
        .unwrap_or_else(|| policy.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::CookieJar;
    use crate::session::origin as origin_of;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn jar_sends_cookies_back_to_their_origin_only() {
        let mut jar = CookieJar::default();
        jar.store("http://a:1", "JSESSIONID=x1; Path=/; HttpOnly");
        jar.store("http://a:1", "lb=7");
        jar.store("http://b", "other=1");
        assert_eq!(
            jar.header("http://a:1", None).as_deref(),
            Some("JSESSIONID=x1; lb=7")
        );
        assert_eq!(jar.header("http://c", None), None);
        jar.store("http://a:1", "JSESSIONID=x2");
        jar.store("http://a:1", "lb=; Max-Age=0");
        assert_eq!(
            jar.header("http://a:1", None).as_deref(),
            Some("JSESSIONID=x2")
        );
    }

    #[wasm_bindgen_test]
    fn session_id_seeds_the_jar_and_set_cookie_replaces_it() {
        // The OCF client's cookie manager: the session id is the first JSESSIONID; a
        // servlet container that does not know it sets its own, which then goes back.
        let mut jar = CookieJar::default();
        assert_eq!(
            jar.header("http://a", Some("JSESSIONID=mine")).as_deref(),
            Some("JSESSIONID=mine")
        );
        jar.store("http://a", "JSESSIONID=server; Path=/; HttpOnly");
        jar.store("http://a", "lb=7");
        assert_eq!(
            jar.header("http://a", Some("JSESSIONID=mine")).as_deref(),
            Some("JSESSIONID=server; lb=7")
        );
        // Another origin is seeded on its own; the seed never duplicates a name.
        jar.store("http://b", "JSESSIONID=b1");
        assert_eq!(
            jar.header("http://b", Some("JSESSIONID=mine")).as_deref(),
            Some("JSESSIONID=b1")
        );
    }

    #[wasm_bindgen_test]
    fn malformed_set_cookie_is_ignored() {
        let mut jar = CookieJar::default();
        jar.store("http://a", "no-equals-sign");
        jar.store("http://a", "=value");
        jar.store("http://a", "");
        assert_eq!(jar.header("http://a", None), None);
    }

    #[wasm_bindgen_test]
    fn origins() {
        assert_eq!(
            origin_of("HTTP://User@Host:8080/rt/test?x=1").as_deref(),
            Some("http://host:8080")
        );
        assert_eq!(origin_of("https://h?q").as_deref(), Some("https://h"));
        assert_eq!(origin_of("/rt/test"), None);
        assert_eq!(origin_of("ftp://h/x"), None);
    }
}
