//! Test support for the async driver: a single-threaded executor with a virtual clock (time
//! jumps to the next timer when every task waits, so timeouts take no real time), and a
//! scripted USB device.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use card_relay::driver::usb::{
    Clock, ControlSetup, DeviceInfo, Direction, LocalBoxFuture, UsbError, UsbErrorKind,
    UsbTransport,
};

#[derive(Default)]
struct ClockState {
    now: Cell<u64>,
    timers: RefCell<Vec<(u64, Waker)>>,
}

/// Virtual time: advances only when the executor finds nothing else to do.
#[derive(Clone, Default)]
pub struct VirtualClock(Rc<ClockState>);

impl VirtualClock {
    /// Current virtual time.
    pub fn now_ms(&self) -> u64 {
        self.0.now.get()
    }

    /// Fires the earliest timers; false when there are none.
    fn advance(&self) -> bool {
        let next = self.0.timers.borrow().iter().map(|t| t.0).min();
        let Some(next) = next else { return false };
        if next > self.0.now.get() {
            self.0.now.set(next);
        }
        let now = self.0.now.get();
        let due: Vec<Waker> = {
            let mut timers = self.0.timers.borrow_mut();
            let (due, rest): (Vec<_>, Vec<_>) = timers.drain(..).partition(|t| t.0 <= now);
            *timers = rest;
            due.into_iter().map(|t| t.1).collect()
        };
        for w in due {
            w.wake();
        }
        true
    }
}

struct Sleep {
    state: Rc<ClockState>,
    target: u64,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.now.get() >= self.target {
            Poll::Ready(())
        } else {
            self.state
                .timers
                .borrow_mut()
                .push((self.target, cx.waker().clone()));
            Poll::Pending
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> u64 {
        self.0.now.get()
    }

    fn sleep(&self, ms: u64) -> LocalBoxFuture<()> {
        Box::pin(Sleep {
            state: Rc::clone(&self.0),
            target: self.0.now.get().saturating_add(ms),
        })
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `fut` to completion, advancing virtual time whenever it waits. Panics if it can
/// never finish (nothing to wake it) or takes more than `max_steps` polls.
pub fn block_on<F: Future>(clock: &VirtualClock, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let flag = Arc::new(Flag(AtomicBool::new(true)));
    let waker = Waker::from(Arc::clone(&flag));
    let mut cx = Context::from_waker(&waker);
    for _ in 0..1_000_000 {
        if flag.0.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            continue;
        }
        if !clock.advance() {
            panic!("deadlock: the future waits and no timer is set");
        }
    }
    panic!("did not finish in 1,000,000 steps");
}

/// What the scripted device does with each bulk-OUT message: the bulk-IN transfers to
/// return (each `Vec` is one transfer), in order.
pub type Responder = Box<dyn FnMut(&[u8]) -> Vec<Vec<u8>>>;

/// A USB device whose bulk-IN answers come from a responder, with fault switches.
#[derive(Default)]
pub struct FakeState {
    pub config: Vec<u8>,
    pub info: DeviceInfo,
    pub opened: bool,
    pub configuration: Option<u8>,
    pub claimed: Vec<u8>,
    pub released: Vec<u8>,
    pub closed: bool,
    pub open_error: Option<UsbError>,
    pub claim_error: Option<UsbError>,
    pub gone: bool,
    pub stall_next_in: bool,
    pub halts_cleared: u32,
    pub out_log: Vec<Vec<u8>>,
    pub bulk_in: VecDeque<Vec<u8>>,
    pub interrupt_in: VecDeque<Vec<u8>>,
    pub waiters: Vec<Waker>,
    pub responder: Option<Responder>,
    /// Bulk-IN transfers that become readable at a virtual time (a reader answering late).
    pub late: Vec<(u64, Vec<u8>)>,
    /// The clock `late` answers are timed by.
    pub clock: Option<VirtualClock>,
    /// Every control transfer out: the setup and when it was made.
    pub control_out: Vec<(ControlSetup, u64)>,
    /// The error control transfers out end with (a protected class in Chrome).
    pub control_out_error: Option<UsbError>,
    /// Interrupt reads still to fail (a flaky interrupt pipe); `u32::MAX`: all of them.
    pub interrupt_errors: u32,
    /// Every bulk-OUT message with the virtual time it was written.
    pub out_times: Vec<u64>,
    /// Bulk-OUT transfers whose future has completed.
    pub out_completed: usize,
    /// Every bulk-IN read (endpoint 1) as it is issued: `(out_log.len(), out_completed)`,
    /// so a test can tell a read issued while a write was still under way.
    pub reads_issued: Vec<(usize, usize)>,
}

/// Handle to a [`FakeState`]; clones share it.
#[derive(Clone)]
pub struct FakeUsb(pub Rc<RefCell<FakeState>>);

impl FakeUsb {
    pub fn new(config: Vec<u8>, responder: Responder) -> Self {
        FakeUsb(Rc::new(RefCell::new(FakeState {
            config,
            info: DeviceInfo {
                vendor_id: 0x072F,
                product_id: 0x223B,
                product_name: Some("Fake Reader".into()),
                ..DeviceInfo::default()
            },
            responder: Some(responder),
            ..FakeState::default()
        })))
    }

    /// Queues an interrupt-IN message and wakes readers.
    pub fn interrupt(&self, data: Vec<u8>) {
        let mut s = self.0.borrow_mut();
        s.interrupt_in.push_back(data);
        for w in s.waiters.drain(..) {
            w.wake();
        }
    }

    /// Times late answers by `clock`.
    pub fn with_clock(self, clock: &VirtualClock) -> Self {
        self.0.borrow_mut().clock = Some(clock.clone());
        self
    }

    /// Makes `data` readable on bulk-IN at virtual time `at`.
    pub fn answer_at(&self, at: u64, data: Vec<u8>) {
        self.0.borrow_mut().late.push((at, data));
    }

    /// Unplugs the device: every call fails, pending reads too.
    pub fn unplug(&self) {
        let mut s = self.0.borrow_mut();
        s.gone = true;
        for w in s.waiters.drain(..) {
            w.wake();
        }
    }
}

fn gone() -> UsbError {
    UsbError::new(UsbErrorKind::NotFound, "The device was disconnected.")
}

fn ready<T: 'static>(v: T) -> LocalBoxFuture<T> {
    Box::pin(std::future::ready(v))
}

struct ReadIn {
    dev: Rc<RefCell<FakeState>>,
    endpoint: u8,
}

impl Future for ReadIn {
    type Output = Result<Vec<u8>, UsbError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.dev.borrow_mut();
        if s.gone {
            return Poll::Ready(Err(gone()));
        }
        if self.endpoint != 1 && s.interrupt_errors > 0 {
            if s.interrupt_errors != u32::MAX {
                s.interrupt_errors -= 1;
            }
            return Poll::Ready(Err(UsbError::new(
                UsbErrorKind::Other("OperationError".into()),
                "transferIn error: Fault",
            )));
        }
        if let Some(clock) = s.clock.clone() {
            let now = clock.now_ms();
            let (due, later): (Vec<_>, Vec<_>) = s.late.drain(..).partition(|l| l.0 <= now);
            s.late = later;
            let mut due = due;
            due.sort_by_key(|l| l.0);
            s.bulk_in.extend(due.into_iter().map(|l| l.1));
            if self.endpoint == 1 && s.bulk_in.is_empty() {
                if let Some(next) = s.late.iter().map(|l| l.0).min() {
                    clock.0.timers.borrow_mut().push((next, cx.waker().clone()));
                }
            }
        }
        let queue_has = if self.endpoint == 1 {
            !s.bulk_in.is_empty()
        } else {
            !s.interrupt_in.is_empty()
        };
        if self.endpoint == 1 && s.stall_next_in && queue_has {
            s.stall_next_in = false;
            s.bulk_in.pop_front();
            return Poll::Ready(Err(UsbError::new(UsbErrorKind::Stall, "endpoint stalled")));
        }
        let item = if self.endpoint == 1 {
            s.bulk_in.pop_front()
        } else {
            s.interrupt_in.pop_front()
        };
        match item {
            Some(data) => Poll::Ready(Ok(data)),
            None => {
                s.waiters.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl UsbTransport for FakeUsb {
    fn info(&self) -> DeviceInfo {
        self.0.borrow().info.clone()
    }

    fn configuration_value(&self) -> Option<u8> {
        self.0.borrow().configuration
    }

    fn is_open(&self) -> bool {
        self.0.borrow().opened
    }

    fn open(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        let mut s = self.0.borrow_mut();
        if let Some(e) = s.open_error.clone() {
            return ready(Err(e));
        }
        s.opened = true;
        ready(Ok(()))
    }

    fn select_configuration(&self, value: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.0.borrow_mut().configuration = Some(value);
        ready(Ok(()))
    }

    fn claim_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        let mut s = self.0.borrow_mut();
        if let Some(e) = s.claim_error.clone() {
            return ready(Err(e));
        }
        s.claimed.push(number);
        ready(Ok(()))
    }

    fn select_alternate_interface(&self, _: u8, _: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        ready(Ok(()))
    }

    fn release_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.0.borrow_mut().released.push(number);
        ready(Ok(()))
    }

    fn close(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        let mut s = self.0.borrow_mut();
        s.closed = true;
        s.opened = false;
        ready(Ok(()))
    }

    fn control_transfer_in(
        &self,
        setup: ControlSetup,
        length: u16,
    ) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        let s = self.0.borrow();
        if s.gone {
            return ready(Err(gone()));
        }
        assert_eq!(setup.request, 0x06, "only GET_DESCRIPTOR is expected");
        assert_eq!(setup.value, 0x0200, "configuration descriptor");
        let n = usize::from(length).min(s.config.len());
        ready(Ok(s.config[..n].to_vec()))
    }

    fn control_transfer_out(
        &self,
        setup: ControlSetup,
        _data: &[u8],
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        let mut s = self.0.borrow_mut();
        if s.gone {
            return ready(Err(gone()));
        }
        let now = s.clock.as_ref().map_or(0, VirtualClock::now_ms);
        s.control_out.push((setup, now));
        match s.control_out_error.clone() {
            Some(e) => ready(Err(e)),
            None => ready(Ok(())),
        }
    }

    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>> {
        let mut s = self.0.borrow_mut();
        if s.gone {
            return ready(Err(gone()));
        }
        assert_eq!(endpoint, 2, "bulk-OUT is endpoint 2");
        s.out_log.push(data.to_vec());
        let now = s.clock.as_ref().map_or(0, VirtualClock::now_ms);
        s.out_times.push(now);
        let mut responder = s.responder.take();
        drop(s);
        let answers = responder.as_mut().map(|r| r(data)).unwrap_or_default();
        let mut s = self.0.borrow_mut();
        s.responder = responder;
        s.bulk_in.extend(answers);
        for w in s.waiters.drain(..) {
            w.wake();
        }
        let dev = Rc::clone(&self.0);
        Box::pin(async move {
            dev.borrow_mut().out_completed += 1;
            Ok(())
        })
    }

    fn transfer_in(&self, endpoint: u8, _length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        if endpoint == 1 {
            let mut s = self.0.borrow_mut();
            let issued = (s.out_log.len(), s.out_completed);
            s.reads_issued.push(issued);
        }
        Box::pin(ReadIn {
            dev: Rc::clone(&self.0),
            endpoint,
        })
    }

    fn clear_halt(&self, _: Direction, _: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.0.borrow_mut().halts_cleared += 1;
        ready(Ok(()))
    }
}

/// A command APDU the test knows to be valid.
pub fn cmd(bytes: Vec<u8>) -> card_relay::reader::Command {
    card_relay::reader::Command::parse(bytes).expect("valid apdu")
}
