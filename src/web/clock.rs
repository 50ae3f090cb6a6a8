//! Time in the browser (and in Node): `performance.now()` and `setTimeout` of the global
//! object, imported once (not looked up by name on every call), and one shared timer for
//! every sleep.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use wasm_bindgen::prelude::*;

use crate::driver::usb::{Clock, LocalBoxFuture};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    /// `setTimeout` of `handler` through platform.js's trap guard; returns the timer's id.
    #[wasm_bindgen(js_name = later)]
    fn set_timeout(handler: &JsValue, ms: f64) -> JsValue;
    /// Whether `timer` keeps Node.js running (`ref()` / `unref()`; nothing in a browser).
    fn hold(timer: &JsValue, on: bool);
}

/// The global clock and timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebClock;

/// The one JavaScript timer behind every [`Sleep`]: armed for the earliest deadline that
/// a pending sleep waits for, re-armed only when a sleep wants to wake earlier than it
/// fires, and re-armed for the next deadline when it fires. The driver races a sleep
/// against every bulk-IN read with a deadline seconds away, so a `setTimeout`, a promise
/// and its closures per read became one timer every few seconds (issue 18: the per-APDU
/// cost at the JS boundary). Its callback is one closure made once and reused.
#[derive(Default)]
struct Alarm {
    /// Pending sleeps: id, deadline (`performance.now()` milliseconds), waker.
    sleepers: Vec<(u64, f64, Option<Waker>)>,
    next_id: u64,
    /// When the armed timer fires, and its id for `clearTimeout`.
    armed: Option<(f64, JsValue)>,
    callback: Option<Closure<dyn FnMut()>>,
    /// How many times `setTimeout` was called (see [`timers_armed`]).
    timers: u64,
    /// Whether the armed timer keeps Node.js running: only while a sleep waits (a new
    /// timer does; it is let go when the last sleep is dropped, see [`hold`]).
    held: bool,
}

thread_local! {
    static ALARM: RefCell<Alarm> = RefCell::new(Alarm::default());
}

impl Alarm {
    /// Makes sure the timer fires no later than `deadline`.
    fn arm(&mut self, deadline: f64) {
        if self.armed.as_ref().is_some_and(|(at, _)| *at <= deadline) {
            return;
        }
        if let Some((_, id)) = self.armed.take() {
            clear_timeout(&id);
        }
        let callback = self
            .callback
            .get_or_insert_with(|| Closure::<dyn FnMut()>::new(fire));
        // setTimeout delays are 32-bit signed milliseconds; a longer wait re-arms on firing.
        let delay = (deadline - performance_now()).clamp(0.0, f64::from(i32::MAX));
        let id = set_timeout(callback.as_ref(), delay.ceil());
        self.timers += 1;
        self.armed = Some((deadline, id));
        self.held = true;
    }

    /// Lets the armed timer hold Node.js (`on`) or not, when that changes.
    fn hold(&mut self, on: bool) {
        if let Some((_, id)) = &self.armed {
            if self.held != on {
                hold(id, on);
                self.held = on;
            }
        }
    }
}

/// The timer fired: wakes the sleeps that are due and re-arms for the next deadline.
fn fire() {
    let due: Vec<Waker> = ALARM.with(|alarm| {
        let mut alarm = alarm.borrow_mut();
        alarm.armed = None;
        let now = performance_now();
        let mut due = Vec::new();
        let mut next: Option<f64> = None;
        for (_, deadline, waker) in &mut alarm.sleepers {
            if *deadline <= now {
                due.extend(waker.take());
            } else {
                next = Some(next.map_or(*deadline, |n| n.min(*deadline)));
            }
        }
        if let Some(next) = next {
            alarm.arm(next);
        }
        due
    });
    // Outside the borrow: a waker may poll (and so touch ALARM) before it returns.
    for waker in due {
        waker.wake();
    }
}

/// How many JavaScript timers the clock has set since the module started: a diagnostic
/// for the tests, which check that sleeps share one timer.
#[doc(hidden)]
pub fn timers_armed() -> u64 {
    ALARM.with(|alarm| alarm.borrow().timers)
}

/// A sleep until a deadline on [`Alarm`]'s shared timer. Dropping it before it is due
/// removes it, so an abandoned sleep (the driver races one against every read) holds
/// nothing.
struct Sleep {
    id: u64,
    deadline: f64,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if performance_now() >= self.deadline {
            return Poll::Ready(());
        }
        ALARM.with(|alarm| {
            let mut alarm = alarm.borrow_mut();
            if let Some(entry) = alarm.sleepers.iter_mut().find(|e| e.0 == self.id) {
                entry.2 = Some(cx.waker().clone());
            } else {
                alarm
                    .sleepers
                    .push((self.id, self.deadline, Some(cx.waker().clone())));
            }
            alarm.arm(self.deadline);
            alarm.hold(true);
        });
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let id = self.id;
        // `try_with`: a sleep dropped while the thread's storage is torn down holds nothing.
        let _ = ALARM.try_with(|alarm| {
            if let Ok(mut alarm) = alarm.try_borrow_mut() {
                alarm.sleepers.retain(|e| e.0 != id);
                if alarm.sleepers.is_empty() {
                    // Nobody waits: the timer stays armed (the next read's sleep reuses it)
                    // but no longer keeps a Node.js process alive.
                    alarm.hold(false);
                }
            }
        });
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
        let id = ALARM.with(|alarm| {
            let mut alarm = alarm.borrow_mut();
            alarm.next_id += 1;
            alarm.next_id
        });
        // f64 holds every millisecond count up to 2^53 exactly; the deadline is measured
        // from the fractional `performance.now()`, so a sleep never ends early.
        Box::pin(Sleep {
            id,
            deadline: performance_now() + ms as f64,
        })
    }
}
