//! Time in the browser (and in Node): `performance.now()` and `setTimeout` of the global
//! object, whatever it is (window, worker, Node's globalThis).

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::driver::usb::{Clock, LocalBoxFuture};

/// The global clock and timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebClock;

fn global_function(object: &JsValue, name: &str) -> Option<(JsValue, Function)> {
    let f = Reflect::get(object, &JsValue::from_str(name)).ok()?;
    f.dyn_into::<Function>().ok().map(|f| (object.clone(), f))
}

impl Clock for WebClock {
    fn now(&self) -> u64 {
        let global: JsValue = js_sys::global().into();
        let performance = Reflect::get(&global, &JsValue::from_str("performance")).ok();
        let ms = performance
            .and_then(|p| global_function(&p, "now"))
            .and_then(|(p, now)| now.call0(&p).ok())
            .and_then(|v| v.as_f64())
            .unwrap_or_else(js_sys::Date::now);
        // A non-negative finite number of milliseconds fits u64 after truncation.
        if ms.is_finite() && ms > 0.0 {
            ms as u64
        } else {
            0
        }
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<()> {
        let delay = JsValue::from_f64(ms.min(i32::MAX as u64) as f64);
        let promise = Promise::new(&mut |resolve, _reject| {
            let global: JsValue = js_sys::global().into();
            match global_function(&global, "setTimeout") {
                Some((this, set_timeout)) => {
                    let _ = set_timeout.call2(&this, &resolve, &delay);
                }
                None => {
                    let _ = resolve.call0(&JsValue::UNDEFINED);
                }
            }
        });
        Box::pin(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        })
    }
}
