//! Browser tests of the JavaScript-facing module (run by `wasm-pack test --headless --chrome`).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn version_matches_the_crate() {
    assert_eq!(card_relay::web::version(), env!("CARGO_PKG_VERSION"));
}

mod clock {
    use std::task::{Context, Poll, Waker};

    use card_relay::driver::usb::Clock;
    use card_relay::web::clock::{timers_armed, WebClock};
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Polls a sleep once (registering it with the timer), as a race against a read does.
    fn poll_once(sleep: &mut card_relay::driver::usb::LocalBoxFuture<()>) -> Poll<()> {
        sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Issue 18: the driver races a sleep against every bulk-IN read; a `setTimeout` per
    /// sleep was part of the per-APDU cost at the JS boundary. A hundred sleeps whose
    /// deadlines come after the armed timer's set no new timer (one at most, for the first).
    #[wasm_bindgen_test]
    fn sleeps_share_one_timer() {
        let before = timers_armed();
        for _ in 0..100 {
            let mut sleep = WebClock.sleep(60_000);
            assert_eq!(poll_once(&mut sleep), Poll::Pending);
        }
        assert!(
            timers_armed() - before <= 1,
            "{} timers",
            timers_armed() - before
        );
    }

    #[wasm_bindgen_test]
    async fn a_sleep_lasts_its_delay() {
        let start = WebClock.now();
        WebClock.sleep(30).await;
        assert!(WebClock.now() - start >= 30);
        assert_eq!(poll_once(&mut WebClock.sleep(0)), Poll::Ready(()));
    }

    /// A long sleep arms the timer far away; a shorter one started later must re-arm it.
    #[wasm_bindgen_test]
    async fn a_shorter_sleep_started_later_ends_first() {
        let mut long = WebClock.sleep(60_000);
        assert_eq!(poll_once(&mut long), Poll::Pending);
        let start = WebClock.now();
        WebClock.sleep(20).await;
        let took = WebClock.now() - start;
        assert!((20..5_000).contains(&took), "{took} ms");
        assert_eq!(poll_once(&mut long), Poll::Pending);
    }

    /// A sleep dropped before its deadline wakes nobody and keeps the next one on time.
    #[wasm_bindgen_test]
    async fn a_dropped_sleep_does_not_disturb_the_next() {
        let mut early = WebClock.sleep(5);
        assert_eq!(poll_once(&mut early), Poll::Pending);
        drop(early);
        let start = WebClock.now();
        WebClock.sleep(40).await;
        let took = WebClock.now() - start;
        assert!((40..5_000).contains(&took), "{took} ms");
    }
}

mod promise {
    use std::future::Future;
    use std::task::{Context, Waker};

    use card_relay::web::promise::{slots, Settled};
    use js_sys::Promise;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    async fn a_settled_promise_gives_its_value_or_its_reason() {
        let ok = Settled::new(&Promise::resolve(&JsValue::from(7))).await;
        assert_eq!(ok.map(|v| v.as_f64()), Ok(Some(7.0)));
        let err = Settled::new(&Promise::reject(&JsValue::from_str("no"))).await;
        assert_eq!(err.map_err(|e| e.as_string()), Err(Some("no".into())));
    }

    /// Issue 18: one table slot per promise under way, reused, instead of two closures per
    /// promise; a future dropped before its promise settles frees its slot when it does.
    #[wasm_bindgen_test]
    async fn slots_are_reused_even_when_a_future_is_dropped_early() {
        for _ in 0..3 {
            Settled::new(&Promise::resolve(&JsValue::NULL))
                .await
                .unwrap();
        }
        let before = slots();
        for i in 0..200 {
            let mut abandoned = Settled::new(&Promise::resolve(&JsValue::from(i)));
            let poll =
                std::pin::Pin::new(&mut abandoned).poll(&mut Context::from_waker(Waker::noop()));
            assert!(poll.is_pending(), "a promise settles in a later microtask");
            drop(abandoned);
            Settled::new(&Promise::resolve(&JsValue::from(i)))
                .await
                .unwrap();
        }
        assert!(
            slots() <= before + 2,
            "{} slots for 2 promises at a time",
            slots()
        );
    }

    /// A promise that is none (a fake's method may return anything) is its value.
    #[wasm_bindgen_test]
    async fn a_promise_that_is_none_is_its_value() {
        let none: Promise = JsValue::UNDEFINED.unchecked_into();
        let r = Settled::new(&none).await;
        assert!(r.is_ok_and(|v| v.is_undefined()));
    }
}

/// The WebUSB adapter against fake `USBDevice`s shaped as the WebUSB spec's IDL says
/// (`USBInTransferResult { status, data: DataView }`, `USBOutTransferResult { status,
/// bytesWritten }`, `USBControlTransferParameters`), each recording its calls.
mod usb {
    use card_relay::driver::usb::{ControlSetup, Direction, UsbError, UsbErrorKind, UsbTransport};
    use card_relay::web::usb::WebUsb;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen(inline_js = r#"
export function fake(results) {
  const calls = [];
  const device = { calls, vendorId: 0x08e6, productId: 0x3437, productName: "GemPC Twin",
    manufacturerName: null, opened: false, configuration: { configurationValue: 1 } };
  for (const name of ["open", "selectConfiguration", "claimInterface", "selectAlternateInterface",
    "releaseInterface", "close", "controlTransferIn", "controlTransferOut", "transferOut",
    "transferIn", "clearHalt"]) {
    device[name] = (...args) => {
      calls.push([name, ...args]);
      const r = results[name];
      if (r instanceof Error) throw r;
      return typeof r == "function" ? r(...args) : r;
    };
  }
  return device;
}
export const inResult = (status, bytes, from, length) =>
  Promise.resolve({ status, data: bytes ? new DataView(new Uint8Array(bytes).buffer, from, length) : null });
export const outResult = (status, bytesWritten) => Promise.resolve({ status, bytesWritten });
export const lastCall = (d) => JSON.stringify(d.calls.at(-1), (k, v) => v instanceof Uint8Array ? [...v] : v);
export const lastData = (d) => d.calls.at(-1).at(-1);
"#)]
    extern "C" {
        fn fake(results: &js_sys::Object) -> JsValue;
        #[wasm_bindgen(js_name = inResult)]
        fn in_result(status: &str, bytes: Option<Vec<u8>>, from: u32, length: u32) -> JsValue;
        #[wasm_bindgen(js_name = outResult)]
        fn out_result(status: &str, bytes_written: u32) -> JsValue;
        #[wasm_bindgen(js_name = lastCall)]
        fn last_call(device: &JsValue) -> String;
        #[wasm_bindgen(js_name = lastData)]
        fn last_data(device: &JsValue) -> JsValue;
    }

    fn device(method: &str, result: JsValue) -> JsValue {
        let results = js_sys::Object::new();
        js_sys::Reflect::set(&results, &method.into(), &result).unwrap();
        fake(&results)
    }

    fn kind(r: Result<impl std::fmt::Debug, UsbError>) -> UsbErrorKind {
        r.expect_err("a failed call").kind
    }

    /// WebUSB's USBInTransferResult.data is a DataView that may start inside its buffer: the
    /// bytes it shows, nothing around them; a null `data` (a zero-length packet) is empty; a
    /// status other than "ok" is the error.
    #[wasm_bindgen_test]
    async fn a_transfer_in_gives_the_bytes_its_data_view_shows() {
        let d = device(
            "transferIn",
            in_result("ok", Some(vec![9, 1, 2, 3, 9]), 1, 3),
        );
        let usb = WebUsb::new(d.clone());
        assert_eq!(usb.transfer_in(2, 271).await, Ok(vec![1, 2, 3]));
        assert_eq!(last_call(&d), r#"["transferIn",2,271]"#);
        let usb = WebUsb::new(device("transferIn", in_result("ok", None, 0, 0)));
        assert_eq!(usb.transfer_in(2, 64).await, Ok(vec![]));
        let usb = WebUsb::new(device("transferIn", in_result("stall", None, 0, 0)));
        assert_eq!(kind(usb.transfer_in(2, 64).await), UsbErrorKind::Stall);
    }

    /// transferOut gets its own copy of the bytes (the driver's buffer may go once the call
    /// returned); every byte written or the error: the status, or a short write.
    #[wasm_bindgen_test]
    async fn a_transfer_out_gives_bytes_written_or_its_status() {
        let d = device("transferOut", out_result("ok", 3));
        let usb = WebUsb::new(d.clone());
        assert_eq!(usb.transfer_out(1, &[0x65, 0, 7]).await, Ok(()));
        assert_eq!(last_call(&d), r#"["transferOut",1,[101,0,7]]"#);
        let data: js_sys::Uint8Array = last_data(&d).into();
        let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
        assert!(
            JsValue::from(data.buffer()) != memory.buffer(),
            "a copy, not a view"
        );
        let usb = WebUsb::new(device("transferOut", out_result("babble", 0)));
        assert_eq!(kind(usb.transfer_out(1, &[1]).await), UsbErrorKind::Babble);
        let usb = WebUsb::new(device("transferOut", out_result("ok", 2)));
        assert_eq!(
            kind(usb.transfer_out(1, &[1, 2, 3]).await),
            UsbErrorKind::Other("short write".into())
        );
    }

    /// A polyfill that fulfils a transfer with nothing, or returns no promise, must not
    /// leave the transfer waiting forever: it fails with the TypeError.
    #[wasm_bindgen_test]
    async fn an_unreadable_transfer_result_fails() {
        let usb = WebUsb::new(device("transferIn", JsValue::UNDEFINED));
        assert_eq!(
            kind(usb.transfer_in(2, 64).await),
            UsbErrorKind::Other("TypeError".into())
        );
        let usb = WebUsb::new(device("transferOut", JsValue::NULL));
        assert_eq!(
            kind(usb.transfer_out(1, &[1]).await),
            UsbErrorKind::Other("TypeError".into())
        );
    }

    /// A method that throws (the `usb` package for Node.js throws from `close` while a
    /// transfer is pending) fails the call with its exception; one that is missing fails too.
    #[wasm_bindgen_test]
    async fn a_throwing_or_missing_method_fails_the_call() {
        let thrown = js_sys::Error::new("busy");
        thrown.set_name("InvalidStateError");
        let usb = WebUsb::new(device("close", thrown.into()));
        assert_eq!(
            usb.close().await,
            Err(UsbError::new(UsbErrorKind::InvalidState, "busy"))
        );
        let usb = WebUsb::new(js_sys::Object::new().into());
        assert_eq!(
            kind(usb.open().await),
            UsbErrorKind::Other("TypeError".into())
        );
    }

    /// The control transfers get the USBControlTransferParameters of their request: GET_DESCRIPTOR
    /// (USB 2.0 §9.4.3) and the CCID class request ABORT (CCID 1.1 §5.3.1).
    #[wasm_bindgen_test]
    async fn control_transfers_carry_their_setup() {
        let d = device(
            "controlTransferIn",
            in_result("ok", Some(vec![9, 2, 0x5d, 0]), 0, 4),
        );
        let usb = WebUsb::new(d.clone());
        let head = usb
            .control_transfer_in(ControlSetup::get_descriptor(2, 0), 9)
            .await;
        assert_eq!(head, Ok(vec![9, 2, 0x5d, 0]));
        assert_eq!(
            last_call(&d),
            r#"["controlTransferIn",{"requestType":"standard","recipient":"device","request":6,"value":512,"index":0},9]"#
        );
        let d = device("controlTransferOut", out_result("ok", 0));
        let usb = WebUsb::new(d.clone());
        let abort = usb
            .control_transfer_out(ControlSetup::ccid_abort(1, 0, 0x17), &[])
            .await;
        assert_eq!(abort, Ok(()));
        assert_eq!(
            last_call(&d),
            r#"["controlTransferOut",{"requestType":"class","recipient":"interface","request":1,"value":5888,"index":1},[]]"#
        );
    }

    /// The other calls get their arguments as WebUSB names them.
    #[wasm_bindgen_test]
    async fn calls_get_their_arguments() {
        let d = device("open", JsValue::UNDEFINED);
        let usb = WebUsb::new(d.clone());
        usb.open().await.unwrap();
        assert_eq!(last_call(&d), r#"["open"]"#);
        usb.select_configuration(1).await.unwrap();
        assert_eq!(last_call(&d), r#"["selectConfiguration",1]"#);
        usb.claim_interface(2).await.unwrap();
        assert_eq!(last_call(&d), r#"["claimInterface",2]"#);
        usb.select_alternate_interface(2, 1).await.unwrap();
        assert_eq!(last_call(&d), r#"["selectAlternateInterface",2,1]"#);
        usb.clear_halt(Direction::In, 3).await.unwrap();
        assert_eq!(last_call(&d), r#"["clearHalt","in",3]"#);
        usb.clear_halt(Direction::Out, 1).await.unwrap();
        assert_eq!(last_call(&d), r#"["clearHalt","out",1]"#);
        usb.release_interface(2).await.unwrap();
        assert_eq!(last_call(&d), r#"["releaseInterface",2]"#);
        usb.close().await.unwrap();
        assert_eq!(last_call(&d), r#"["close"]"#);
    }

    /// What the driver reads of the device at open.
    #[wasm_bindgen_test]
    fn info_reads_the_device_members() {
        let usb = WebUsb::new(device("open", JsValue::UNDEFINED));
        let info = usb.info();
        assert_eq!((info.vendor_id, info.product_id), (0x08e6, 0x3437));
        assert_eq!(info.product_name.as_deref(), Some("GemPC Twin"));
        assert_eq!(info.manufacturer_name, None);
        assert!(!usb.is_open());
        assert_eq!(usb.configuration_value(), Some(1));
        let bare = WebUsb::new(js_sys::Object::new().into());
        assert_eq!(bare.configuration_value(), None);
        assert_eq!(bare.info().vendor_id, 0);
    }
}

/// The executor of the exports' promises and the reader's event watch.
mod executor {
    use std::cell::Cell;
    use std::future::Future;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::task::{Context, Poll};

    use card_relay::driver::usb::Clock;
    use card_relay::web::clock::WebClock;
    use card_relay::web::promise::{promise, spawn, tasks, Settled};
    use wasm_bindgen::JsValue;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// Pending on its first poll, after waking its own waker there; ready on the second.
    struct WakesItself(bool);

    impl Future for WakesItself {
        type Output = Result<JsValue, JsValue>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            if self.0 {
                return Poll::Ready(Ok(JsValue::from(2)));
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// A result ready at the first poll is the promise's at once, rejection included; one
    /// that comes later settles it then.
    #[wasm_bindgen_test]
    async fn a_promise_settles_with_its_future() {
        let ok = promise(Box::pin(async { Ok(JsValue::from(1)) }));
        assert_eq!(Settled::new(&ok).await.map(|v| v.as_f64()), Ok(Some(1.0)));
        let no = promise(Box::pin(async { Err(JsValue::from_str("no")) }));
        assert_eq!(
            Settled::new(&no).await.map_err(|e| e.as_string()),
            Err(Some("no".into()))
        );
        let later = promise(Box::pin(async {
            WebClock.sleep(5).await;
            Err(JsValue::from(3))
        }));
        assert_eq!(
            Settled::new(&later).await.map_err(|e| e.as_f64()),
            Err(Some(3.0))
        );
    }

    /// A wake during the first poll (within the export's call) is not lost.
    #[wasm_bindgen_test]
    async fn a_wake_in_the_first_poll_polls_again() {
        let p = promise(Box::pin(WakesItself(false)));
        assert_eq!(Settled::new(&p).await.map(|v| v.as_f64()), Ok(Some(2.0)));
    }

    /// A spawned future runs from a microtask, not within the call, and to its end.
    #[wasm_bindgen_test]
    async fn a_spawned_future_runs_later_to_its_end() {
        let steps = Rc::new(Cell::new(0));
        let seen = Rc::clone(&steps);
        spawn(Box::pin(async move {
            seen.set(1);
            WebClock.sleep(5).await;
            seen.set(2);
        }));
        assert_eq!(steps.get(), 0, "not polled within the call");
        WebClock.sleep(30).await;
        assert_eq!(steps.get(), 2);
    }

    /// Issue 18: a task is a reused slot, not a closure per export call.
    #[wasm_bindgen_test]
    async fn task_slots_are_reused() {
        let settle = || {
            promise(Box::pin(async {
                WebClock.sleep(0).await;
                Ok(JsValue::NULL)
            }))
        };
        Settled::new(&settle()).await.unwrap();
        let before = tasks();
        for _ in 0..200 {
            Settled::new(&settle()).await.unwrap();
        }
        assert!(
            tasks() <= before + 1,
            "{} slots for 1 task at a time",
            tasks()
        );
    }
}
