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

    use card_relay::web::promise::{slots, Settled, Shape};
    use js_sys::{DataView, Object, Promise, Reflect, Uint8Array};
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

    /// A transfer result as WebUSB defines it: `{ status, data }` or `{ status, bytesWritten }`.
    fn result(status: &str, field: &str, value: &JsValue) -> Promise {
        let o = Object::new();
        Reflect::set(&o, &"status".into(), &status.into()).unwrap();
        Reflect::set(&o, &field.into(), value).unwrap();
        Promise::resolve(&JsValue::from(o))
    }

    /// WebUSB's USBInTransferResult.data is a DataView that may start inside its buffer.
    #[wasm_bindgen_test]
    async fn an_in_transfer_gives_the_bytes_its_data_view_shows() {
        let buffer = Uint8Array::from(&[9u8, 1, 2, 3, 9][..]).buffer();
        let view = DataView::new(&buffer, 1, 3);
        let ok = Settled::with_shape(&result("ok", "data", &view), Shape::InTransfer).await;
        assert_eq!(ok.map(|v| Uint8Array::from(v).to_vec()), Ok(vec![1, 2, 3]));
        let empty = Settled::with_shape(&result("ok", "data", &JsValue::NULL), Shape::InTransfer);
        assert_eq!(empty.await.map(|v| Uint8Array::from(v).length()), Ok(0));
        let stall =
            Settled::with_shape(&result("stall", "data", &JsValue::NULL), Shape::InTransfer);
        assert_eq!(stall.await.map(|v| v.as_string()), Ok(Some("stall".into())));
    }

    #[wasm_bindgen_test]
    async fn an_out_transfer_gives_bytes_written_or_its_status() {
        let ok = result("ok", "bytesWritten", &JsValue::from(10));
        let ok = Settled::with_shape(&ok, Shape::OutTransfer).await;
        assert_eq!(ok.map(|v| v.as_f64()), Ok(Some(10.0)));
        let babble = result("babble", "bytesWritten", &JsValue::from(0));
        let babble = Settled::with_shape(&babble, Shape::OutTransfer).await;
        assert_eq!(babble.map(|v| v.as_string()), Ok(Some("babble".into())));
    }

    /// A polyfill that fulfils with nothing must not leave the transfer waiting forever.
    #[wasm_bindgen_test]
    async fn an_unreadable_transfer_result_rejects() {
        let nothing = Promise::resolve(&JsValue::UNDEFINED);
        let r = Settled::with_shape(&nothing, Shape::InTransfer).await;
        assert!(r.is_err_and(|e| e.is_instance_of::<js_sys::TypeError>()));
    }

    /// A fake device's method may return anything instead of a promise (the adapters cast
    /// its result unchecked): that is its value, or a rejection for a transfer, never an
    /// exception thrown into the wasm.
    #[wasm_bindgen_test]
    async fn a_promise_that_is_none_is_its_value() {
        let none: Promise = JsValue::UNDEFINED.unchecked_into();
        let r = Settled::new(&none).await;
        assert!(r.is_ok_and(|v| v.is_undefined()));
        let null: Promise = JsValue::NULL.unchecked_into();
        let r = Settled::with_shape(&null, Shape::OutTransfer).await;
        assert!(r.is_err_and(|e| e.is_instance_of::<js_sys::TypeError>()));
    }
}
