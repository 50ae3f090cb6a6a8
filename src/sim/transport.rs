//! The simulated reader as the driver's [`UsbTransport`], for native tests of the async
//! driver (and any host without WebUSB).
//!
//! Every call completes at once, except a `transfer_in` with nothing to read: its future
//! stays pending until a call or a control ([`SimTransport::with`]) changes the device,
//! which wakes it, or until a late answer ([`super::Fault::LateAnswers`]) is due on the
//! clock given with [`SimTransport::with_clock`]. Handles are cheap clones of one device.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::driver::usb::{
    self as usb, Clock, DeviceInfo, Direction, LocalBoxFuture, UsbError, UsbErrorKind, UsbTransport,
};

use super::{ControlSetup, InTransfer, Recipient, RequestType, SimulatedReader, UsbFault};

struct Shared {
    sim: SimulatedReader,
    wakers: Vec<Waker>,
    clock: Option<Rc<dyn Clock>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("sim", &self.sim)
            .field("clock", &self.clock.is_some())
            .finish_non_exhaustive()
    }
}

/// A [`SimulatedReader`] behind the driver's USB interface.
#[derive(Debug, Clone)]
pub struct SimTransport(Rc<RefCell<Shared>>);

impl SimTransport {
    /// Wraps a simulator (opened or not).
    pub fn new(sim: SimulatedReader) -> Self {
        SimTransport(Rc::new(RefCell::new(Shared {
            sim,
            wakers: Vec::new(),
            clock: None,
        })))
    }

    /// The simulator's time comes from `clock` (the late fault needs one).
    pub fn with_clock(self, clock: Rc<dyn Clock>) -> Self {
        self.0.borrow_mut().clock = Some(clock);
        self
    }

    /// Runs `f` on the simulator (insert or remove a card, switch a fault, read stats) and
    /// wakes the reads waiting for data.
    pub fn with<T>(&self, f: impl FnOnce(&mut SimulatedReader) -> T) -> T {
        let result = {
            let mut shared = self.0.borrow_mut();
            shared.tick();
            f(&mut shared.sim)
        };
        self.wake();
        result
    }

    fn wake(&self) {
        let wakers = std::mem::take(&mut self.0.borrow_mut().wakers);
        for w in wakers {
            w.wake();
        }
    }

    fn call<T: 'static>(
        &self,
        f: impl FnOnce(&mut SimulatedReader) -> Result<T, UsbFault>,
    ) -> LocalBoxFuture<Result<T, UsbError>> {
        let result = self.with(f).map_err(usb_error);
        Box::pin(std::future::ready(result))
    }
}

impl Shared {
    /// Tells the simulator the time.
    fn tick(&mut self) {
        if let Some(now) = self.clock.as_ref().map(|c| c.now()) {
            self.sim.set_time(now);
        }
    }
}

/// The driver's view of a simulator failure.
fn usb_error(fault: UsbFault) -> UsbError {
    match fault {
        UsbFault::Exception { name, message } => {
            UsbError::new(UsbErrorKind::from_dom_name(name), message)
        }
        UsbFault::Stall => UsbError::new(UsbErrorKind::Stall, ""),
        UsbFault::Babble(_) => UsbError::new(UsbErrorKind::Babble, ""),
    }
}

fn setup(s: usb::ControlSetup) -> ControlSetup {
    ControlSetup {
        request_type: match s.request_type {
            usb::RequestType::Standard => RequestType::Standard,
            usb::RequestType::Class => RequestType::Class,
            usb::RequestType::Vendor => RequestType::Vendor,
        },
        recipient: match s.recipient {
            usb::Recipient::Device => Recipient::Device,
            usb::Recipient::Interface => Recipient::Interface,
            usb::Recipient::Endpoint => Recipient::Endpoint,
            usb::Recipient::Other => Recipient::Other,
        },
        request: s.request,
        value: s.value,
        index: s.index,
    }
}

/// A transferIn: ready when the simulator has data (or an error) for it.
struct ReadIn {
    shared: Rc<RefCell<Shared>>,
    endpoint: u8,
    length: usize,
    /// A timer for the next late answer.
    timer: Option<(u64, LocalBoxFuture<()>)>,
}

impl Future for ReadIn {
    type Output = Result<Vec<u8>, UsbError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let (due, clock) = {
                let mut shared = self.shared.borrow_mut();
                shared.tick();
                match shared.sim.transfer_in(self.endpoint, self.length) {
                    InTransfer::Ready(result) => return Poll::Ready(result.map_err(usb_error)),
                    InTransfer::Pending => {
                        if !shared.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                            shared.wakers.push(cx.waker().clone());
                        }
                    }
                }
                (shared.sim.next_answer_at(), shared.clock.clone())
            };
            let (Some(due), Some(clock)) = (due, clock) else {
                return Poll::Pending;
            };
            if self.timer.as_ref().map(|t| t.0) != Some(due) {
                let wait = due.saturating_sub(clock.now());
                self.timer = Some((due, clock.sleep(wait)));
            }
            let Some((_, timer)) = self.timer.as_mut() else {
                return Poll::Pending;
            };
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.timer = None;
        }
    }
}

impl UsbTransport for SimTransport {
    fn info(&self) -> DeviceInfo {
        let shared = self.0.borrow();
        let sim = &shared.sim;
        DeviceInfo {
            vendor_id: sim.vendor_id(),
            product_id: sim.product_id(),
            product_name: sim.product_name().map(str::to_owned),
            manufacturer_name: sim.manufacturer_name().map(str::to_owned),
            serial_number: None,
        }
    }

    fn configuration_value(&self) -> Option<u8> {
        self.0.borrow().sim.configuration_value()
    }

    fn is_open(&self) -> bool {
        self.0.borrow().sim.opened()
    }

    fn open(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(SimulatedReader::open)
    }

    fn select_configuration(&self, value: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(|s| s.select_configuration(value))
    }

    fn claim_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(|s| s.claim_interface(number))
    }

    fn select_alternate_interface(
        &self,
        number: u8,
        alternate: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(|s| s.select_alternate_interface(number, alternate))
    }

    fn release_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(|s| s.release_interface(number))
    }

    fn close(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(SimulatedReader::close)
    }

    fn control_transfer_in(
        &self,
        s: usb::ControlSetup,
        length: u16,
    ) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        self.call(|sim| sim.control_transfer_in(setup(s), length))
    }

    fn control_transfer_out(
        &self,
        s: usb::ControlSetup,
        data: &[u8],
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(|sim| sim.control_transfer_out(setup(s), data).map(|_| ()))
    }

    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(|s| s.transfer_out(endpoint, data).map(|_| ()))
    }

    fn transfer_in(&self, endpoint: u8, length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        Box::pin(ReadIn {
            shared: Rc::clone(&self.0),
            endpoint,
            length: usize::try_from(length).unwrap_or(usize::MAX),
            timer: None,
        })
    }

    fn clear_halt(
        &self,
        direction: Direction,
        endpoint: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(|s| s.clear_halt(direction == Direction::In, endpoint))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;
    use crate::proto::hex::h;
    use crate::sim::{CardConfig, Fault, SimConfig};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn now<T>(mut f: LocalBoxFuture<T>) -> T {
        let mut cx = Context::from_waker(Waker::noop());
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("pending"),
        }
    }

    #[test]
    fn calls_and_wake_ups() {
        let t = SimTransport::new(SimulatedReader::new(SimConfig::default()).unwrap());
        assert_eq!(t.info().vendor_id, 0x1209);
        now(t.open()).unwrap();
        now(t.select_configuration(1)).unwrap();
        now(t.claim_interface(0)).unwrap();
        assert_eq!(now(t.transfer_in(3, 8)).unwrap(), h("50 03"));
        // Nothing on the interrupt endpoint: pending until the card leaves.
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut read = t.transfer_in(3, 8);
        let mut cx = Context::from_waker(&waker);
        assert!(read.as_mut().poll(&mut cx).is_pending());
        t.with(|s| s.remove_card(0)).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(read.as_mut().poll(&mut cx), Poll::Ready(Ok(h("50 02"))));
        // A stall and an exception keep their kind and message.
        t.with(|s| s.set_fault(Fault::StallOut(true)));
        let stall = now(t.transfer_out(2, &h("65 00 00 00 00 00 01 00 00 00")));
        assert_eq!(stall.unwrap_err().kind, UsbErrorKind::Stall);
        now(t.clear_halt(Direction::Out, 2)).unwrap();
        t.with(|s| s.insert_card(0, CardConfig::pin())).unwrap();
        t.with(|s| s.disconnect());
        let gone = now(t.transfer_in(1, 64)).unwrap_err();
        assert_eq!(gone.kind, UsbErrorKind::NotFound);
        assert_eq!(
            gone.to_string(),
            "NotFoundError: The device was disconnected."
        );
    }
}
