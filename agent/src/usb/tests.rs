//! The `--usb` adapter without a device: nusb's errors and transfer outcomes, mapped by the
//! adapter's functions, injected into the project's CCID driver running on the simulated
//! reader (a scripted transport), and what the command line then says. No test here touches
//! a real USB device.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use card_relay::driver::usb::{
    Clock, ControlSetup, DeviceInfo, Direction, LocalBoxFuture, UsbError, UsbErrorKind,
    UsbTransport,
};
use card_relay::driver::{CcidDriver, DriverError};
use card_relay::sim::transport::SimTransport;
use card_relay::sim::{CardConfig, SimConfig, SimulatedReader};
use nusb::transfer::TransferError;
use nusb::ErrorKind;

use super::*;
use crate::TokioClock;

/// Which call fails, and how.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    Open(ErrorKind),
    Claim(ErrorKind),
    /// The bulk-IN transfers after the first `n` fail with this status.
    TransferIn(usize, TransferError),
    /// The device answers bulk-IN with `extra` bytes more than asked for.
    Babble(usize),
}

/// The simulated reader behind the adapter's error mapping: a scripted transport.
struct Scripted {
    inner: SimTransport,
    fault: Fault,
    reads: RefCell<usize>,
}

fn fail<T: 'static>(e: UsbError) -> LocalBoxFuture<Result<T, UsbError>> {
    Box::pin(std::future::ready(Err(e)))
}

impl UsbTransport for Scripted {
    fn info(&self) -> DeviceInfo {
        self.inner.info()
    }
    fn configuration_value(&self) -> Option<u8> {
        self.inner.configuration_value()
    }
    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
    fn open(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        match self.fault {
            Fault::Open(kind) => fail(kind_error(kind, "open failed")),
            _ => self.inner.open(),
        }
    }
    fn select_configuration(&self, value: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.select_configuration(value)
    }
    fn claim_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        match self.fault {
            Fault::Claim(kind) => fail(kind_error(kind, "claim failed")),
            _ => self.inner.claim_interface(number),
        }
    }
    fn select_alternate_interface(&self, n: u8, a: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.select_alternate_interface(n, a)
    }
    fn release_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.release_interface(number)
    }
    fn close(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.close()
    }
    fn control_transfer_in(
        &self,
        setup: ControlSetup,
        length: u16,
    ) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        self.inner.control_transfer_in(setup, length)
    }
    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.transfer_out(endpoint, data)
    }
    fn transfer_in(&self, endpoint: u8, length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        let n = {
            let mut reads = self.reads.borrow_mut();
            *reads += 1;
            *reads
        };
        let reading = self.inner.transfer_in(endpoint, length);
        let fault = self.fault;
        Box::pin(async move {
            match fault {
                Fault::TransferIn(after, status) if n > after => {
                    in_result(Err(status), Vec::new(), length)
                }
                Fault::Babble(extra) => {
                    let mut data = reading.await?;
                    data.extend(std::iter::repeat_n(0, extra));
                    in_result(Ok(()), data, length)
                }
                _ => reading.await,
            }
        })
    }
    fn clear_halt(&self, d: Direction, endpoint: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.inner.clear_halt(d, endpoint)
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&runtime, f)
}

async fn open(fault: Fault) -> Result<CcidDriver<Scripted>, DriverError> {
    let config = SimConfig {
        card: Some(CardConfig::seed()),
        ..SimConfig::default()
    };
    let inner = SimTransport::new(SimulatedReader::new(config).unwrap());
    let clock: Rc<dyn Clock> = Rc::new(TokioClock(Instant::now()));
    let usb = Scripted {
        inner,
        fault,
        reads: RefCell::new(0),
    };
    CcidDriver::open(usb, clock).await
}

#[test]
fn a_reader_held_by_another_driver_is_device_busy_with_the_system_services_hint() {
    let e = run(open(Fault::Claim(ErrorKind::Busy))).err().unwrap();
    let cli = cli_error(e);
    assert_eq!(cli.code, "device-busy");
    assert!(
        cli.message
            .starts_with("the reader is in use: claimInterface failed"),
        "{}",
        cli.message
    );
    let hint = cli.hint.unwrap();
    assert!(
        hint.contains("pcscd") && hint.contains("without --usb"),
        "{hint}"
    );
}

#[test]
fn a_device_the_user_may_not_open_is_permission_denied_with_the_udev_advice() {
    let e = run(open(Fault::Open(ErrorKind::PermissionDenied)))
        .err()
        .unwrap();
    let cli = cli_error(e);
    assert_eq!(cli.code, "permission-denied");
    assert!(cli.hint.unwrap().contains("udev rule"));
    // A refused claim is the operating system's refusal too, never Chrome's "protected
    // interface": a native program has no protected classes.
    let e = run(open(Fault::Claim(ErrorKind::PermissionDenied)))
        .err()
        .unwrap();
    assert_eq!(
        e.code(),
        ErrorCode::ProtectedInterface,
        "the browser's reading"
    );
    assert_eq!(cli_error(e).code, "permission-denied");
}

#[test]
fn a_busy_open_is_device_busy_too() {
    let e = run(open(Fault::Open(ErrorKind::Busy))).err().unwrap();
    assert_eq!(cli_error(e).code, "device-busy");
}

#[test]
fn a_reader_unplugged_mid_command_is_disconnected() {
    let code = run(async {
        let driver = open(Fault::TransferIn(0, TransferError::Disconnected))
            .await
            .unwrap();
        driver.power_on(0, None).await.unwrap_err().code()
    });
    assert_eq!(code, ErrorCode::Disconnected);
}

#[test]
fn the_driver_works_through_the_adapters_transfer_logic() {
    // Every bulk-IN result goes through in_result with no extra bytes: the card answers.
    let atr = run(async {
        let driver = open(Fault::Babble(0)).await.unwrap();
        driver.power_on(0, None).await.unwrap()
    });
    assert!(!atr.atr.is_empty());
}

#[test]
fn more_data_than_asked_for_is_babble_and_a_protocol_error() {
    let code = run(async {
        let driver = open(Fault::Babble(1)).await.unwrap();
        driver.power_on(0, None).await.unwrap_err().code()
    });
    assert_eq!(code, ErrorCode::Protocol);
}

#[test]
fn nusb_errors_become_the_dom_exceptions_the_driver_classifies() {
    assert_eq!(kind_error(ErrorKind::Busy, "").kind, UsbErrorKind::Network);
    assert_eq!(
        kind_error(ErrorKind::PermissionDenied, "").kind,
        UsbErrorKind::Security
    );
    assert_eq!(
        kind_error(ErrorKind::Disconnected, "").kind,
        UsbErrorKind::NotFound
    );
    assert_eq!(
        transfer_error(TransferError::Stall).kind,
        UsbErrorKind::Stall
    );
    assert_eq!(
        transfer_error(TransferError::Cancelled).kind,
        UsbErrorKind::Abort
    );
    assert_eq!(
        transfer_error(TransferError::Disconnected).kind,
        UsbErrorKind::NotFound
    );
    assert_eq!(
        transfer_error(TransferError::Fault).kind,
        UsbErrorKind::Network
    );
}

#[test]
fn in_transfers_are_whole_packets() {
    // nusb refuses IN transfers that are not a nonzero multiple of wMaxPacketSize.
    assert_eq!(in_request_len(271, 64), 320);
    assert_eq!(in_request_len(64, 64), 64);
    assert_eq!(in_request_len(0, 64), 64);
    assert_eq!(in_request_len(10, 0), 10);
    assert_eq!(in_result(Ok(()), vec![0; 10], 10), Ok(vec![0; 10]));
    assert_eq!(
        in_result(Ok(()), vec![0; 11], 10).unwrap_err().kind,
        UsbErrorKind::Babble
    );
}

#[test]
fn control_setups_and_descriptor_requests_keep_their_fields() {
    let abort = control_in(ControlSetup::ccid_abort(1, 0, 7), 0);
    assert_eq!(
        (
            abort.control_type,
            abort.recipient,
            abort.request,
            abort.value,
            abort.index
        ),
        (ControlType::Class, Recipient::Interface, 0x01, 0x0700, 1)
    );
    assert_eq!(
        device_descriptor_request(&ControlSetup::get_descriptor(2, 0)),
        Some((2, 0))
    );
    assert_eq!(
        device_descriptor_request(&ControlSetup::ccid_abort(0, 0, 0)),
        None
    );
}

#[test]
fn readers_are_named_by_their_strings_else_their_ids() {
    assert_eq!(
        reader_name(
            Some("SCM Microsystems Inc."),
            Some("SCR3310"),
            0x04e6,
            0x5116
        ),
        "SCM Microsystems Inc. SCR3310 (04e6:5116)"
    );
    assert_eq!(
        reader_name(None, Some(" "), 0x072f, 0x90cc),
        "USB reader 072f:90cc"
    );
}
