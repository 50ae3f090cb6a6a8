//! Time in the browser (and in Node): `performance.now()` and `setTimeout` of the global
//! object, imported once (not looked up by name on every call).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::driver::usb::{Clock, LocalBoxFuture};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// The global clock and timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebClock;

/// A `setTimeout` as a future. Dropping it before it fires clears the timer and settles its
/// promise, so an abandoned sleep (the driver races one against every read) holds no timer
/// and no closure: without this, each read left a live timer behind until it fired.
struct Sleep {
    future: JsFuture,
    timer: Option<JsValue>,
    resolve: Option<Function>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match Pin::new(&mut self.future).poll(cx) {
            Poll::Ready(_) => {
                self.timer = None;
                self.resolve = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(id) = self.timer.take() {
            clear_timeout(&id);
        }
        if let Some(resolve) = self.resolve.take() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}

impl Clock for WebClock {
    fn now(&self) -> u64 {
        let ms = performance_now();
        // A non-negative finite number of milliseconds fits u64 after truncation.
        if ms.is_finite() && ms > 0.0 {
            ms as u64
        } else {
            0
        }
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<()> {
        let mut resolver: Option<Function> = None;
        let promise = Promise::new(&mut |resolve, _reject| resolver = Some(resolve));
        // setTimeout delays are 32-bit signed milliseconds.
        let delay = ms.min(i32::MAX as u64) as f64;
        let timer = resolver.as_ref().map(|resolve| set_timeout(resolve, delay));
        Box::pin(Sleep {
            future: JsFuture::from(promise),
            timer,
            resolve: resolver,
        })
    }
}
