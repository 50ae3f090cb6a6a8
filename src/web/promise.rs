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
        let (slot, callback) = TABLE.with(|table| {
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
            let callback = table.callback.get_or_insert_with(|| Callback::new(settled));
            (slot, callback.as_ref().clone())
        });
        // Outside the borrow: `start` runs page code (a USBDevice method, a fake or a logging
        // wrapper of one), which may call another export that awaits a promise here.
        start(&callback, slot);
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

// ---- The executor ------------------------------------------------------------------------
//
// The exports' promises and the reader's event watch run as tasks of this small executor
// instead of `wasm-bindgen-futures`' (issue 18: its queue, its task and its `new Promise`
// closure were code in the bundle and a closure allocation per pending export). A task is a
// slot in a table; its waker names the slot; a wake queues one poll in a microtask through
// one long-lived callback (`soon`); a task with a promise settles it through `done`.

#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    /// Calls `callback(id, undefined, true)` in a microtask.
    fn soon(callback: &JsValue, id: u32);
    /// A new promise, settled by `done(id, …)`.
    #[wasm_bindgen(js_name = task)]
    fn task_promise(id: u32) -> Promise;
    /// Fulfils (`fulfilled`) or rejects the promise of `task(id)` with `value`.
    fn done(id: u32, fulfilled: bool, value: JsValue);
}

/// What a task runs: an export's answer, or `Ok(undefined)` for a spawned future.
type TaskFuture = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

struct Task {
    /// `None` while it is being polled (or once it ended).
    future: Option<TaskFuture>,
    /// A poll is queued.
    queued: bool,
    /// Whether `task(id)` made a promise that its end settles.
    promise: bool,
    waker: Waker,
}

#[derive(Default)]
struct Tasks {
    tasks: Vec<Option<Task>>,
    free: Vec<u32>,
    /// `run`, of the same type as [`Settled`]'s callback (one closure type less in the glue
    /// and the wasm); `soon` calls it with the slot.
    run: Option<Callback>,
}

thread_local! {
    static TASKS: RefCell<Tasks> = RefCell::new(Tasks::default());
}

/// A task's waker: its slot number. `Wake` asks for `Send + Sync`, which a number is; a
/// wake after the task ended, or after its slot went to another task, costs a poll that
/// finds nothing to do (a future may always be polled again).
struct TaskWaker(u32);

impl std::task::Wake for TaskWaker {
    fn wake(self: std::sync::Arc<Self>) {
        schedule(self.0);
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        schedule(self.0);
    }
}

/// A new task in a free slot, not queued.
fn insert(future: Option<TaskFuture>, promise: bool) -> (u32, Waker) {
    TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        let id = match tasks.free.pop() {
            Some(id) => id,
            None => {
                tasks.tasks.push(None);
                u32::try_from(tasks.tasks.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let waker = Waker::from(std::sync::Arc::new(TaskWaker(id)));
        if let Some(slot) = tasks.tasks.get_mut(id as usize) {
            *slot = Some(Task {
                future,
                queued: false,
                promise,
                waker: waker.clone(),
            });
        }
        (id, waker)
    })
}

/// Queues a poll of task `id` unless one is queued.
fn schedule(id: u32) {
    TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        match tasks.tasks.get_mut(id as usize) {
            Some(Some(task)) if !task.queued => task.queued = true,
            _ => return,
        }
        // Within the borrow: `soon` only queues the microtask.
        let run = tasks
            .run
            .get_or_insert_with(|| Callback::new(|id, _: JsValue, _: bool| run(id)));
        soon(run.as_ref(), id);
    });
}

/// Polls task `id` (the microtask a wake queued); at its end, frees its slot and settles
/// its promise.
fn run(id: u32) {
    let taken = TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        let task = tasks.tasks.get_mut(id as usize)?.as_mut()?;
        task.queued = false;
        Some((task.future.take()?, task.waker.clone()))
    });
    // Outside the borrow: the future may start or wake tasks.
    let Some((mut future, waker)) = taken else {
        return;
    };
    let polled = future.as_mut().poll(&mut Context::from_waker(&waker));
    finish(id, future, polled);
}

/// After a poll of task `id`: puts its future back, or ends it.
fn finish(id: u32, future: TaskFuture, polled: Poll<Result<JsValue, JsValue>>) {
    let ended = TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        let slot = tasks.tasks.get_mut(id as usize)?;
        match polled {
            Poll::Pending => {
                if let Some(task) = slot.as_mut() {
                    task.future = Some(future);
                }
                None
            }
            Poll::Ready(result) => {
                let promise = slot.take().is_some_and(|t| t.promise);
                tasks.free.push(id);
                Some((promise, result))
            }
        }
    });
    if let Some((true, result)) = ended {
        match result {
            Ok(value) => done(id, true, value),
            Err(error) => done(id, false, error),
        }
    }
}

/// The promise of `future`'s result. It is polled once within the call, so an operation's
/// first USB transfer starts at once, and a call that completes at once (a bad argument, a
/// state read) settles without a task; what is left runs as a task woken by its futures.
pub fn promise(mut future: TaskFuture) -> Promise {
    let (id, waker) = insert(None, true);
    match future.as_mut().poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(result) => {
            finish_at_once(id);
            match result {
                Ok(value) => Promise::resolve(&value),
                Err(error) => Promise::reject(&error),
            }
        }
        Poll::Pending => {
            // The promise first, then the future in its slot: `done` comes in a later
            // microtask, after both.
            let promise = task_promise(id);
            finish(id, future, Poll::Pending);
            promise
        }
    }
}

/// Frees the slot of a task that ended in its first poll (it made no promise).
fn finish_at_once(id: u32) {
    TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        if let Some(slot) = tasks.tasks.get_mut(id as usize) {
            *slot = None;
            tasks.free.push(id);
        }
    });
}

/// Runs `future` as a task, first polled in a microtask (the reader's event watch).
pub fn spawn(future: Pin<Box<dyn Future<Output = ()>>>) {
    let future: TaskFuture = Box::pin(async move {
        future.await;
        Ok(JsValue::UNDEFINED)
    });
    let (id, _) = insert(Some(future), false);
    schedule(id);
}

/// How many task slots the executor has (busy or free): a diagnostic for the tests, which
/// check that slots are reused.
#[doc(hidden)]
pub fn tasks() -> usize {
    TASKS.with(|tasks| tasks.borrow().tasks.len())
}

// ---- Traps -------------------------------------------------------------------------------

#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    /// Keeps `hint` for the `internal` error of a trap; returns platform.js's `enter`.
    #[wasm_bindgen(js_name = guard)]
    fn platform_guard(hint: &str) -> JsValue;
}

/// platform.js's `enter(f, ...args)`, through which the API layer makes every call into the
/// wasm: a trap (a panic, `-Cpanic=immediate-abort`) breaks the instance, and it and every
/// later call fail with `internal`, whose hint is [`ErrorCode::hint`]'s.
///
/// [`ErrorCode::hint`]: crate::driver::ErrorCode::hint
#[wasm_bindgen]
pub fn guard() -> JsValue {
    platform_guard(crate::driver::ErrorCode::Internal.hint())
}

/// Test only (the `simulator` build): panics, at once or (`later`) in a task after an
/// await, to show that a trap neither hangs a promise nor escapes untyped.
#[cfg(feature = "simulator")]
#[wasm_bindgen(js_name = testPanic)]
pub fn test_panic(later: bool) -> Promise {
    promise(Box::pin(async move {
        if later {
            let _ = Settled::new(&Promise::resolve(&JsValue::NULL)).await;
        }
        panic!("test panic")
    }))
}
