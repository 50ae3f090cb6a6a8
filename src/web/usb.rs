//! The WebUSB adapter: [`UsbTransport`] over a `USBDevice`.
//!
//! The device is used structurally: any object with the USBDevice methods works (a real
//! device, the simulated reader, a test fake). It is never checked with `instanceof`
//! (`dyn_into` would refuse a fake): it is cast with `unchecked_into`.
//!
//! Every method that starts a USB operation is called through a binding that catches a
//! synchronous exception (`catch`): the `usb` package for Node.js throws from
//! `releaseInterface` and `close` while a transfer is pending, and an exception must never
//! unwind through the WebAssembly driver; it becomes a failed call like a rejection.

use js_sys::{DataView, Promise, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{UsbDevice, UsbDirection};

#[wasm_bindgen(module = "/src/web/platform.js")]
extern "C" {
    /// A `USBControlTransferParameters` dictionary, built in one call.
    #[wasm_bindgen(js_name = setup)]
    fn setup_dictionary(
        request_type: &str,
        recipient: &str,
        request: u8,
        value: u16,
        index: u16,
    ) -> JsValue;
    /// `[name, responseCode, message]` of a rejection (the message, else the value as a
    /// string); `[]` when its members cannot be read.
    #[wasm_bindgen(js_name = scError)]
    fn error_parts(e: &JsValue) -> js_sys::Array;
}

#[wasm_bindgen]
extern "C" {
    /// The USBDevice methods, each catching a synchronous throw.
    type Device;

    #[wasm_bindgen(method, catch)]
    fn open(this: &Device) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn close(this: &Device) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = selectConfiguration)]
    fn select_configuration(this: &Device, value: u8) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = claimInterface)]
    fn claim_interface(this: &Device, number: u8) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = releaseInterface)]
    fn release_interface(this: &Device, number: u8) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = selectAlternateInterface)]
    fn select_alternate_interface(
        this: &Device,
        number: u8,
        alternate: u8,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = controlTransferIn)]
    fn control_transfer_in(this: &Device, setup: &JsValue, length: u16)
        -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = controlTransferOut)]
    fn control_transfer_out(
        this: &Device,
        setup: &JsValue,
        data: &Uint8Array,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = transferOut)]
    fn transfer_out(this: &Device, endpoint: u8, data: &Uint8Array) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = transferIn)]
    fn transfer_in(this: &Device, endpoint: u8, length: u32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = clearHalt)]
    fn clear_halt(this: &Device, direction: UsbDirection, endpoint: u8)
        -> Result<Promise, JsValue>;
}

/// Awaits a call's promise; a synchronous throw and a rejection both become the error.
/// The promise is handed to [`Settled`] at once, not when the future is first polled: the
/// driver issues a read before it awaits it (and may drop it unpolled when the device goes
/// away), and a rejection must never be left without a handler.
fn settle(
    call: Result<Promise, JsValue>,
    shape: Shape,
) -> impl Future<Output = Result<JsValue, UsbError>> {
    let settled = call.map(|promise| Settled::with_shape(&promise, shape));
    async move {
        match settled {
            Ok(settled) => settled.await.map_err(|e| usb_error(&e)),
            Err(e) => Err(usb_error(&e)),
        }
    }
}

use crate::driver::usb::{
    ControlSetup, DeviceInfo, Direction, LocalBoxFuture, Recipient, RequestType, UsbError,
    UsbErrorKind, UsbTransport,
};
use crate::web::promise::{Settled, Shape};
use std::future::Future;

/// A WebUSB device.
#[derive(Debug, Clone)]
pub struct WebUsb {
    device: UsbDevice,
}

impl WebUsb {
    fn calls(&self) -> &Device {
        self.device.unchecked_ref()
    }
}

impl WebUsb {
    /// Wraps a `USBDevice` (or any object shaped like one).
    pub fn new(device: JsValue) -> Self {
        Self {
            device: device.unchecked_into(),
        }
    }

    /// The wrapped object.
    pub fn device(&self) -> &UsbDevice {
        &self.device
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

/// Copies the bytes a DataView shows: its own offset and length, not the whole buffer.
pub fn data_view_bytes(view: &DataView) -> Vec<u8> {
    Uint8Array::new_with_byte_offset_and_length(
        &view.buffer(),
        view.byte_offset() as u32,
        view.byte_length() as u32,
    )
    .to_vec()
}

/// An in-transfer result as [`Shape::InTransfer`] gives it: the status when it is not
/// "ok", else the data (empty when `data` is null: a zero-length packet).
fn in_result(value: JsValue) -> Result<Vec<u8>, UsbError> {
    match value.as_string() {
        Some(status) => Err(status_error(&status)),
        None => Ok(value.unchecked_into::<Uint8Array>().to_vec()),
    }
}

fn unit(call: Result<Promise, JsValue>) -> LocalBoxFuture<Result<(), UsbError>> {
    let settled = settle(call, Shape::Value);
    Box::pin(async move { settled.await.map(|_| ()) })
}

fn setup_parameters(setup: ControlSetup) -> JsValue {
    let request_type = match setup.request_type {
        RequestType::Standard => "standard",
        RequestType::Class => "class",
        RequestType::Vendor => "vendor",
    };
    let recipient = match setup.recipient {
        Recipient::Device => "device",
        Recipient::Interface => "interface",
        Recipient::Endpoint => "endpoint",
        Recipient::Other => "other",
    };
    setup_dictionary(
        request_type,
        recipient,
        setup.request,
        setup.value,
        setup.index,
    )
}

/// Checks an out-transfer result as [`Shape::OutTransfer`] gives it: status "ok" (then
/// `bytesWritten`, a number) and every byte written.
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

impl UsbTransport for WebUsb {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            vendor_id: self.device.vendor_id(),
            product_id: self.device.product_id(),
            product_name: self.device.product_name(),
            manufacturer_name: self.device.manufacturer_name(),
            serial_number: self.device.serial_number(),
        }
    }

    fn configuration_value(&self) -> Option<u8> {
        self.device.configuration().map(|c| c.configuration_value())
    }

    fn is_open(&self) -> bool {
        self.device.opened()
    }

    fn open(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.calls().open())
    }

    fn select_configuration(&self, value: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.calls().select_configuration(value))
    }

    fn claim_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.calls().claim_interface(number))
    }

    fn select_alternate_interface(
        &self,
        number: u8,
        alternate: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.calls().select_alternate_interface(number, alternate))
    }

    fn release_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.calls().release_interface(number))
    }

    fn close(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.calls().close())
    }

    fn control_transfer_in(
        &self,
        setup: ControlSetup,
        length: u16,
    ) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        let call = self
            .calls()
            .control_transfer_in(&setup_parameters(setup), length);
        let settled = settle(call, Shape::InTransfer);
        Box::pin(async move { in_result(settled.await?) })
    }

    fn control_transfer_out(
        &self,
        setup: ControlSetup,
        data: &[u8],
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        let bytes = Uint8Array::from(data);
        let call = self
            .calls()
            .control_transfer_out(&setup_parameters(setup), &bytes);
        let expected = data.len();
        let settled = settle(call, Shape::OutTransfer);
        Box::pin(async move { out_result(settled.await?, expected) })
    }

    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>> {
        // A copy the browser owns: the slice may go as soon as this returns.
        let bytes = Uint8Array::from(data);
        let call = self.calls().transfer_out(endpoint, &bytes);
        let expected = data.len();
        let settled = settle(call, Shape::OutTransfer);
        Box::pin(async move { out_result(settled.await?, expected) })
    }

    fn transfer_in(&self, endpoint: u8, length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        let call = self.calls().transfer_in(endpoint, length);
        let settled = settle(call, Shape::InTransfer);
        Box::pin(async move { in_result(settled.await?) })
    }

    fn clear_halt(
        &self,
        direction: Direction,
        endpoint: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        let direction = match direction {
            Direction::In => UsbDirection::In,
            Direction::Out => UsbDirection::Out,
        };
        unit(self.calls().clear_halt(direction, endpoint))
    }
}
