//! The fetch adapter: [`HttpClient`] over the global `fetch` (window, worker or Node), with
//! an `AbortController` bounding each exchange.
//!
//! Deliberately not `cache: "no-store"`: with it Chromium preflights every cross-origin POST
//! instead of once per session (DESIGN.md).

use js_sys::{Array, Function, Reflect, Uint8Array};
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use web_sys::{AbortController, Headers, RequestCredentials, RequestInit, RequestMode, Response};

use crate::driver::update::{HttpClient, HttpError};
use crate::driver::usb::LocalBoxFuture;
use crate::session::{HttpRequest, HttpResponse};

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
        Box::pin(async move {
            let fetch = global_fetch()?;
            let headers = Headers::new().map_err(network)?;
            for (name, value) in &request.headers {
                headers.append(name, value).map_err(network)?;
            }
            let init = RequestInit::new();
            init.set_method(request.method);
            init.set_headers(&headers);
            init.set_mode(RequestMode::Cors);
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
            let result = exchange(&fetch, &request.url, &init).await;
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

async fn exchange(
    fetch: &Function,
    url: &str,
    init: &RequestInit,
) -> Result<HttpResponse, HttpError> {
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
    let headers = response_headers(&response.headers());
    let body_promise = response.array_buffer().map_err(network)?;
    let body = wasm_bindgen_futures::JsFuture::from(body_promise)
        .await
        .map_err(|e| match network(e) {
            HttpError::Network(m) => HttpError::Body(m),
            other => other,
        })?;
    Ok(HttpResponse {
        status,
        headers,
        body: Uint8Array::new(&body).to_vec(),
    })
}
