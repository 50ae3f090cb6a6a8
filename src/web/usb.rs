//! The WebUSB adapter: [`UsbTransport`] over a `USBDevice`.
//!
//! The device is used structurally: any object with the USBDevice methods works (a real
//! device, the simulated reader, a test fake). It is never checked with `instanceof` and
//! never read through web-sys's typed `USBDevice` (a fake has only what it needs).
//!
//! Every call goes through one helper of `platform.js`, `usb(device, call, a, b, bytes)`:
//! the call is named by its [`UsbCall`] number, the arguments are numbers and one byte
//! slice (the data of a transfer out, the SETUP packet of a control transfer, USB 2.0 §9.3),
//! and the helper settles the method's promise through [`Settled`] in the same crossing of
//! the boundary: one import and one crossing per transfer instead of one per method plus a
//! `Uint8Array` and a `settle` each (issue 18: the glue, the bundle and the per-APDU cost).
//! A synchronous exception of the method (the `usb` package for Node.js throws from
//! `releaseInterface` and `close` while a transfer is pending) becomes a rejection there:
//! an exception never unwinds through the WebAssembly driver.

use js_sys::Array;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use crate::driver::usb::{
    ControlSetup, DeviceInfo, Direction, LocalBoxFuture, UsbCall, UsbError, UsbErrorKind,
    UsbTransport,
};
use crate::web::promise::Settled;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    /// One USBDevice call, settled through `callback(slot, value, fulfilled)`: a transfer
    /// in gives its status unless "ok", else its data (`Uint8Array`); a transfer out its
    /// status unless "ok", else `bytesWritten`; any other call its value.
    fn usb(device: &JsValue, call: u8, a: u32, b: u32, bytes: &[u8], callback: &JsValue, slot: u32);
    /// `[vendorId, productId, productName, manufacturerName, serialNumber, opened,
    /// configurationValue]` of a device.
    #[wasm_bindgen(js_name = usbInfo)]
    fn usb_info(device: &JsValue) -> Array;
    /// `[name, responseCode, message]` of a rejection (the message, else the value as a
    /// string); `[]` when its members cannot be read.
    #[wasm_bindgen(js_name = scError)]
    fn error_parts(e: &JsValue) -> Array;
}

/// A WebUSB device.
#[derive(Debug, Clone)]
pub struct WebUsb {
    device: JsValue,
}

impl WebUsb {
    /// Wraps a `USBDevice` (or any object shaped like one).
    pub fn new(device: JsValue) -> Self {
        Self { device }
    }

    /// The wrapped object.
    pub fn device(&self) -> &JsValue {
        &self.device
    }

    /// Starts `call`; its future gives the settled value as `map` reads it (with the length
    /// of the data a transfer out must write: `bytes` after `header` bytes of setup), a
    /// rejection the [`UsbError`]. The promise
    /// is handed to its slot at once, not when the future is first polled: the driver
    /// issues a read before it awaits it (and may drop it unpolled when the device goes
    /// away), and a rejection must never be left without a handler.
    fn call<T: 'static>(
        &self,
        call: UsbCall,
        (a, b): (u32, u32),
        (bytes, header): (&[u8], usize),
        map: fn(JsValue, usize) -> Result<T, UsbError>,
    ) -> LocalBoxFuture<Result<T, UsbError>> {
        let settled = Settled::start(&|callback, slot| {
            usb(&self.device, call as u8, a, b, bytes, callback, slot);
        });
        Box::pin(Call {
            settled,
            map,
            expected: bytes.len().saturating_sub(header),
        })
    }

    /// A call whose value does not matter.
    fn unit(&self, call: UsbCall, a: u32, b: u32) -> LocalBoxFuture<Result<(), UsbError>> {
        self.call(call, (a, b), (&[], 0), |_, _| Ok(()))
    }

    /// One member of [`usb_info`]'s answer.
    fn member(&self, index: u32) -> JsValue {
        usb_info(&self.device).get(index)
    }
}

/// The future of one call: [`Settled`] and what the call's value is read as. Written out
/// rather than an `async` block per kind of call (issue 18: one small poll per result type).
struct Call<T> {
    settled: Settled,
    map: fn(JsValue, usize) -> Result<T, UsbError>,
    expected: usize,
}

impl<T> Future for Call<T> {
    type Output = Result<T, UsbError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Poll::Ready(settled) = Pin::new(&mut self.settled).poll(cx) else {
            return Poll::Pending;
        };
        Poll::Ready(match settled {
            Ok(value) => (self.map)(value, self.expected),
            Err(e) => Err(usb_error(&e)),
        })
    }
}

/// Converts a rejected promise's value: a DOMException keeps its name and message; anything
/// else becomes `Other` with its string form (no panic on non-Error rejections).
pub fn usb_error(value: &JsValue) -> UsbError {
    let parts = error_parts(value);
    let message = parts.get(2).as_string().unwrap_or_default();
    match parts.get(0).as_string() {
        Some(name) => UsbError::new(UsbErrorKind::from_dom_name(&name), message),
        None => UsbError::new(UsbErrorKind::Other("Error".into()), message),
    }
}

/// The error for a transfer status other than "ok" (WebUSB §USBTransferStatus).
fn status_error(status: &str) -> UsbError {
    match status {
        "stall" => UsbError::new(UsbErrorKind::Stall, "endpoint stalled"),
        "babble" => UsbError::new(UsbErrorKind::Babble, "babble"),
        _ => UsbError::new(
            UsbErrorKind::Other("status".into()),
            "unknown transfer status",
        ),
    }
}

/// An in-transfer result as the helper gives it: the status when it is not "ok", else the
/// data (empty when `data` is null: a zero-length packet).
fn in_result(value: JsValue, _: usize) -> Result<Vec<u8>, UsbError> {
    match value.as_string() {
        Some(status) => Err(status_error(&status)),
        None => Ok(js_sys::Uint8Array::new(&value).to_vec()),
    }
}

/// Checks an out-transfer result as the helper gives it: status "ok" (then `bytesWritten`,
/// a number) and every byte written.
fn out_result(value: JsValue, expected: usize) -> Result<(), UsbError> {
    let Some(written) = value.as_f64() else {
        return Err(status_error(&value.as_string().unwrap_or_default()));
    };
    if written != expected as f64 {
        // As an integer: formatting an f64 would pull float printing into the bundle.
        let written = written as u64;
        return Err(UsbError::new(
            UsbErrorKind::Other("short write".into()),
            format!("{written} of {expected} bytes written"),
        ));
    }
    Ok(())
}

/// A number member as a `u16`, 0 when it is none.
fn number(value: &JsValue) -> u16 {
    value.as_f64().map_or(0, |v| v as u16)
}

impl UsbTransport for WebUsb {
    fn info(&self) -> DeviceInfo {
        let info = usb_info(&self.device);
        DeviceInfo {
            vendor_id: number(&info.get(0)),
            product_id: number(&info.get(1)),
            product_name: info.get(2).as_string(),
            manufacturer_name: info.get(3).as_string(),
            serial_number: info.get(4).as_string(),
        }
    }

    fn configuration_value(&self) -> Option<u8> {
        self.member(6).as_f64().map(|v| v as u8)
    }

    fn is_open(&self) -> bool {
        self.member(5).is_truthy()
    }

    fn open(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        self.unit(UsbCall::Open, 0, 0)
    }

    fn select_configuration(&self, value: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.unit(UsbCall::SelectConfiguration, value.into(), 0)
    }

    fn claim_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.unit(UsbCall::ClaimInterface, number.into(), 0)
    }

    fn select_alternate_interface(
        &self,
        number: u8,
        alternate: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        let call = UsbCall::SelectAlternateInterface;
        self.unit(call, number.into(), alternate.into())
    }

    fn release_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        self.unit(UsbCall::ReleaseInterface, number.into(), 0)
    }

    fn close(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        self.unit(UsbCall::Close, 0, 0)
    }

    fn control_transfer_in(
        &self,
        setup: ControlSetup,
        length: u16,
    ) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        let packet = setup.packet(Direction::In, length);
        self.call(UsbCall::ControlTransferIn, (0, 0), (&packet, 8), in_result)
    }

    fn control_transfer_out(
        &self,
        setup: ControlSetup,
        data: &[u8],
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        // wLength is the data's length; the data follows the packet.
        let length = u16::try_from(data.len()).unwrap_or(u16::MAX);
        let mut bytes = setup.packet(Direction::Out, length).to_vec();
        bytes.extend_from_slice(data);
        self.call(UsbCall::ControlTransferOut, (0, 0), (&bytes, 8), out_result)
    }

    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>> {
        // The helper copies the bytes: the slice may go as soon as this returns.
        self.call(
            UsbCall::TransferOut,
            (endpoint.into(), 0),
            (data, 0),
            out_result,
        )
    }

    fn transfer_in(&self, endpoint: u8, length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        self.call(
            UsbCall::TransferIn,
            (endpoint.into(), length),
            (&[], 0),
            in_result,
        )
    }

    fn clear_halt(
        &self,
        direction: Direction,
        endpoint: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        let out = u32::from(direction == Direction::Out);
        self.unit(UsbCall::ClearHalt, out, endpoint.into())
    }
}
