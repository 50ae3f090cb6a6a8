//! The fetch adapter: [`HttpClient`] over the global `fetch` (window, worker or Node), with
//! an `AbortController` bounding each exchange.
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

use js_sys::{Array, Function, Reflect, Uint8Array};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use web_sys::{
    AbortController, EventTarget, Headers, RequestCredentials, RequestInit, RequestMode,
    RequestRedirect, Response,
};

use crate::driver::update::{HttpClient, HttpError};
use crate::driver::usb::{Clock, LocalBoxFuture};
use crate::session::{origin, HttpRequest, HttpResponse};
use crate::web::clock::WebClock;

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

/// Whether this global lacks a DOM (Node.js, Deno, a worker): Node's `fetch` keeps no
/// cookies. In a browser worker the jar stays empty and harmless: `getSetCookie()` returns
/// nothing there and a `Cookie` request header is dropped as a forbidden one.
fn keeps_own_cookies() -> bool {
    let global: JsValue = js_sys::global().into();
    !Reflect::has(&global, &JsValue::from_str("document")).unwrap_or(false)
}

fn network(e: JsValue) -> HttpError {
    let name = Reflect::get(&e, &JsValue::from_str("name"))
        .ok()
        .and_then(|v| v.as_string());
    if name.as_deref() == Some("AbortError") {
        return HttpError::Aborted;
    }
    let message = Reflect::get(&e, &JsValue::from_str("message"))
        .ok()
        .and_then(|v| v.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "fetch failed".to_owned());
    HttpError::Network(message)
}

fn global_fetch() -> Result<Function, HttpError> {
    let global: JsValue = js_sys::global().into();
    Reflect::get(&global, &JsValue::from_str("fetch"))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
        .ok_or_else(|| HttpError::Network("no fetch in this environment".into()))
}

fn response_headers(headers: &Headers) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(Some(iter)) = js_sys::try_iter(headers) else {
        return out;
    };
    for entry in iter.flatten() {
        let pair = Array::from(&entry);
        if let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
            out.push((name, value));
        }
    }
    out
}

impl HttpClient for WebFetch {
    fn post(
        &self,
        request: HttpRequest,
        timeout_ms: u64,
    ) -> LocalBoxFuture<Result<HttpResponse, HttpError>> {
        let credentials = self.credentials;
        let custom_fetch = self.fetch.clone();
        let jar = keeps_own_cookies()
            .then(|| origin(&request.url).map(|origin| (origin, Rc::clone(&self.cookies))))
            .flatten();
        Box::pin(async move {
            let fetch = match custom_fetch {
                Some(f) => f,
                None => global_fetch()?,
            };
            let headers = Headers::new().map_err(network)?;
            let mut explicit = None;
            for (name, value) in &request.headers {
                if jar.is_some() && name.eq_ignore_ascii_case("cookie") {
                    explicit = Some(value.as_str());
                } else {
                    headers.append(name, value).map_err(network)?;
                }
            }
            if let Some((origin, cookies)) = &jar {
                if let Some(cookie) = cookies.borrow_mut().header(origin, explicit) {
                    headers.append("Cookie", &cookie).map_err(network)?;
                }
            }
            let init = RequestInit::new();
            init.set_method(request.method);
            init.set_headers(&headers);
            init.set_mode(RequestMode::Cors);
            // An HTTP redirect would carry the session to a server nobody approved: a
            // protocol-level move goes through X-Admin-Next-URI, which the update loop checks.
            init.set_redirect(RequestRedirect::Error);
            init.set_credentials(match credentials {
                Credentials::SameOrigin => RequestCredentials::SameOrigin,
                Credentials::Include => RequestCredentials::Include,
                Credentials::Omit => RequestCredentials::Omit,
            });
            if !request.body.is_empty() {
                let body = Uint8Array::from(request.body.as_slice());
                init.set_body(&body);
            }
            let controller = AbortController::new().map_err(network)?;
            init.set_signal(Some(&controller.signal()));
            let abort = {
                let controller = controller.clone();
                Closure::once(move || controller.abort())
            };
            let global: JsValue = js_sys::global().into();
            let timer = Reflect::get(&global, &JsValue::from_str("setTimeout"))
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
                .and_then(|set_timeout| {
                    let delay = JsValue::from_f64(timeout_ms.min(i32::MAX as u64) as f64);
                    set_timeout.call2(&global, abort.as_ref(), &delay).ok()
                });
            let watch = CspWatch::start(&request.url);
            let mut result = exchange(&fetch, &request.url, &init).await;
            if let (Err(HttpError::Network(_)), Some(watch)) = (&result, &watch) {
                if let Some(policy) = watch.blocked().await {
                    result = Err(HttpError::CspBlocked(format!(
                        "{} (connect-src of the page: {policy})",
                        request.url
                    )));
                }
            }
            drop(watch);
            if let (Ok((_, set_cookies)), Some((origin, cookies))) = (&result, &jar) {
                let mut cookies = cookies.borrow_mut();
                for value in set_cookies {
                    cookies.store(origin, value);
                }
            }
            let result = result.map(|(response, _)| response);
            if let Some(id) = timer {
                if let Some(clear) = Reflect::get(&global, &JsValue::from_str("clearTimeout"))
                    .ok()
                    .and_then(|f| f.dyn_into::<Function>().ok())
                {
                    let _ = clear.call1(&global, &id);
                }
            }
            drop(abort);
            match result {
                // The controller fired: that is our timeout, not the caller's abort.
                Err(HttpError::Aborted) => Err(HttpError::Timeout),
                other => other,
            }
        })
    }
}

/// Records `securitypolicyviolation` events for `connect-src` that name one request's
/// origin, while the request runs (CSP Level 3 §5.3: the event goes to the global object's
/// document and bubbles to the window). Browsers only: `None` where there is no `document`.
struct CspWatch {
    target: EventTarget,
    listener: Closure<dyn FnMut(JsValue)>,
    /// The page policy's `connect-src` (or `default-src`) directive, once a violation came.
    seen: Rc<RefCell<Option<String>>>,
}

impl CspWatch {
    fn start(url: &str) -> Option<Self> {
        let global: JsValue = js_sys::global().into();
        if !Reflect::has(&global, &JsValue::from_str("document")).unwrap_or(false) {
            return None;
        }
        let target: EventTarget = global.dyn_into().ok()?;
        let wanted = origin(url);
        let seen = Rc::new(RefCell::new(None));
        let record = Rc::clone(&seen);
        let listener = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let text = |name: &str| {
                Reflect::get(&event, &JsValue::from_str(name))
                    .ok()
                    .and_then(|v| v.as_string())
                    .unwrap_or_default()
            };
            if text("effectiveDirective") != "connect-src" {
                return;
            }
            if let (Some(wanted), Some(blocked)) = (&wanted, origin(&text("blockedURI"))) {
                if *wanted != blocked {
                    return;
                }
            }
            *record.borrow_mut() = Some(connect_src(&text("originalPolicy")));
        });
        target
            .add_event_listener_with_callback(
                "securitypolicyviolation",
                listener.as_ref().unchecked_ref(),
            )
            .ok()?;
        Some(CspWatch {
            target,
            listener,
            seen,
        })
    }

    /// After `fetch` failed: the directive that blocked it, if a violation came. The event
    /// is queued as a task and may follow the rejection, so this waits a few timer turns.
    async fn blocked(&self) -> Option<String> {
        for _ in 0..5 {
            if let Some(policy) = self.seen.borrow().clone() {
                return Some(policy);
            }
            WebClock.sleep(10).await;
        }
        self.seen.borrow().clone()
    }
}

impl Drop for CspWatch {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(
            "securitypolicyviolation",
            self.listener.as_ref().unchecked_ref(),
        );
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

/// The `Set-Cookie` values of a response: `getSetCookie()` where the platform has it (each
/// value on its own), else the combined `set-cookie` header, which only a DOM-less platform
/// exposes and which cannot be split reliably, taken as one value.
fn set_cookies(headers: &Headers) -> Vec<String> {
    let get = Reflect::get(headers, &JsValue::from_str("getSetCookie"))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok());
    match get {
        Some(get) => get
            .call0(headers)
            .map(|list| {
                Array::from(&list)
                    .iter()
                    .filter_map(|v| v.as_string())
                    .collect()
            })
            .unwrap_or_default(),
        None => headers
            .get("set-cookie")
            .ok()
            .flatten()
            .into_iter()
            .collect(),
    }
}

/// One fetch: the response and its `Set-Cookie` values.
async fn exchange(
    fetch: &Function,
    url: &str,
    init: &RequestInit,
) -> Result<(HttpResponse, Vec<String>), HttpError> {
    let global: JsValue = js_sys::global().into();
    let promise = fetch
        .call2(&global, &JsValue::from_str(url), init)
        .map_err(network)?;
    let promise: js_sys::Promise = promise.unchecked_into();
    let response: Response = wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .map_err(network)?
        .unchecked_into();
    let status = response.status();
    let cookies = set_cookies(&response.headers());
    let headers = response_headers(&response.headers());
    let body_promise = response.array_buffer().map_err(network)?;
    let body = wasm_bindgen_futures::JsFuture::from(body_promise)
        .await
        .map_err(|e| match network(e) {
            HttpError::Network(m) => HttpError::Body(m),
            other => other,
        })?;
    Ok((
        HttpResponse {
            status,
            headers,
            body: Uint8Array::new(&body).to_vec(),
        },
        cookies,
    ))
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
