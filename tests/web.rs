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
