//! A JavaScript promise as a Rust future without a closure per promise.
//!
//! `JsFuture` makes two wasm-bindgen closures (a JS function each, registered for
//! finalisation) for every promise it awaits; the driver awaits one per USB transfer, two
//! per CCID message (issue 18: the per-APDU cost at the JS boundary). [`Settled`] hands the
//! promise to a three-line JS helper that calls back one long-lived closure with a slot
//! number, so a transfer costs one call across the boundary and a slot in a table that is
//! reused.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use js_sys::Promise;
use wasm_bindgen::prelude::*;

// The helper is in platform.js (`settle`; the USB calls settle through `usb` there).
#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    /// Calls `callback(slot, value, fulfilled)` once `promise` settles.
    fn settle(promise: &Promise, callback: &JsValue, slot: u32);
}

/// One awaited promise.
enum Slot {
    Free,
    /// Not settled; the waker of the last poll.
    Waiting(Option<Waker>),
    /// Settled; the value waits for the next poll.
    Ready(Result<JsValue, JsValue>),
    /// The future was dropped first; the slot is freed when the promise settles.
    Abandoned,
}

/// The one callback every promise settles through: `(slot, value, fulfilled)`.
type Callback = Closure<dyn FnMut(u32, JsValue, bool)>;

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
    callback: Option<Callback>,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

impl Table {
    fn release(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Slot::Free;
            self.free.push(slot);
        }
    }
}

/// The promise settled: stores the value and wakes the future, or frees an abandoned slot.
fn settled(slot: u32, value: JsValue, fulfilled: bool) {
    let waker = TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let entry = table.slots.get_mut(slot as usize)?;
        match std::mem::replace(entry, Slot::Free) {
            Slot::Waiting(waker) => {
                *entry = Slot::Ready(if fulfilled { Ok(value) } else { Err(value) });
                waker
            }
            Slot::Abandoned => {
                table.free.push(slot);
                None
            }
            other => {
                *entry = other;
                None
            }
        }
    });
    // Outside the borrow: waking may run code that awaits another promise.
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// How many slots the table has (busy or free): a diagnostic for the tests, which check
/// that slots are reused.
#[doc(hidden)]
pub fn slots() -> usize {
    TABLE.with(|table| table.borrow().slots.len())
}

/// A promise's outcome: `Ok` with the fulfilment value, `Err` with the rejection reason.
#[derive(Debug)]
pub struct Settled {
    slot: Option<u32>,
}

impl Settled {
    /// Awaits `promise` for its value.
    pub fn new(promise: &Promise) -> Self {
        Self::start(&|callback, slot| settle(promise, callback, slot))
    }

    /// Awaits what `start(callback, slot)` sets off: a JavaScript helper that calls
    /// `callback(slot, value, fulfilled)` once, when its promise settles (platform.js's
    /// `settle`, `usb`). Not generic: one instance however many helpers use it.
    pub fn start(start: &dyn Fn(&JsValue, u32)) -> Self {
        let slot = TABLE.with(|table| {
            let mut table = table.borrow_mut();
            let slot = match table.free.pop() {
                Some(slot) => slot,
                None => {
                    table.slots.push(Slot::Free);
                    u32::try_from(table.slots.len() - 1).unwrap_or(u32::MAX)
                }
            };
            if let Some(s) = table.slots.get_mut(slot as usize) {
                *s = Slot::Waiting(None);
            }
            // Within the borrow: the helpers call back from a promise reaction, never
            // before they return.
            let callback = table.callback.get_or_insert_with(|| Callback::new(settled));
            start(callback.as_ref(), slot);
            slot
        });
        Settled { slot: Some(slot) }
    }
}

impl Future for Settled {
    type Output = Result<JsValue, JsValue>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(slot) = self.slot else {
            return Poll::Ready(Err(JsValue::from_str("promise already awaited")));
        };
        let ready = TABLE.with(|table| {
            let mut table = table.borrow_mut();
            let entry = table.slots.get_mut(slot as usize)?;
            match std::mem::replace(entry, Slot::Free) {
                Slot::Ready(result) => {
                    table.release(slot);
                    Some(result)
                }
                Slot::Waiting(_) => {
                    *entry = Slot::Waiting(Some(cx.waker().clone()));
                    None
                }
                other => {
                    *entry = other;
                    None
                }
            }
        });
        match ready {
            Some(result) => {
                self.slot = None;
                Poll::Ready(result)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Settled {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let _ = TABLE.try_with(|table| {
            let Ok(mut table) = table.try_borrow_mut() else {
                return;
            };
            let Some(entry) = table.slots.get_mut(slot as usize) else {
                return;
            };
            match entry {
                Slot::Waiting(_) => *entry = Slot::Abandoned,
                Slot::Ready(_) => table.release(slot),
                Slot::Free | Slot::Abandoned => {}
            }
        });
    }
}
