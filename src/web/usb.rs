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

use js_sys::{DataView, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    UsbControlTransferParameters, UsbDevice, UsbDirection, UsbInTransferResult,
    UsbOutTransferResult, UsbRecipient, UsbRequestType, UsbTransferStatus,
};

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
    fn control_transfer_in(
        this: &Device,
        setup: &UsbControlTransferParameters,
        length: u16,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch, js_name = controlTransferOut)]
    fn control_transfer_out(
        this: &Device,
        setup: &UsbControlTransferParameters,
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
async fn settle(call: Result<Promise, JsValue>) -> Result<JsValue, UsbError> {
    let promise = call.map_err(|e| usb_error(&e))?;
    JsFuture::from(promise).await.map_err(|e| usb_error(&e))
}

use crate::driver::usb::{
    ControlSetup, DeviceInfo, Direction, LocalBoxFuture, Recipient, RequestType, UsbError,
    UsbErrorKind, UsbTransport,
};

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
    let name = Reflect::get(value, &JsValue::from_str("name"))
        .ok()
        .and_then(|v| v.as_string());
    let message = Reflect::get(value, &JsValue::from_str("message"))
        .ok()
        .and_then(|v| v.as_string());
    match (name, message) {
        (Some(name), message) => UsbError::new(
            UsbErrorKind::from_dom_name(&name),
            message.unwrap_or_default(),
        ),
        (None, _) => UsbError::new(
            UsbErrorKind::Other("Error".into()),
            value.as_string().unwrap_or_else(|| format!("{value:?}")),
        ),
    }
}

fn status_error(status: UsbTransferStatus) -> Option<UsbError> {
    match status {
        UsbTransferStatus::Ok => None,
        UsbTransferStatus::Stall => Some(UsbError::new(UsbErrorKind::Stall, "endpoint stalled")),
        UsbTransferStatus::Babble => Some(UsbError::new(UsbErrorKind::Babble, "babble")),
        _ => Some(UsbError::new(
            UsbErrorKind::Other("status".into()),
            "unknown transfer status",
        )),
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

fn in_result(result: UsbInTransferResult) -> Result<Vec<u8>, UsbError> {
    if let Some(e) = status_error(result.status()) {
        return Err(e);
    }
    // `data` is nullable: a zero-length packet may come with no DataView.
    Ok(result
        .data()
        .map(|v| data_view_bytes(&v))
        .unwrap_or_default())
}

fn unit(call: Result<Promise, JsValue>) -> LocalBoxFuture<Result<(), UsbError>> {
    Box::pin(async move { settle(call).await.map(|_| ()) })
}

fn setup_parameters(setup: ControlSetup) -> UsbControlTransferParameters {
    let request_type = match setup.request_type {
        RequestType::Standard => UsbRequestType::Standard,
        RequestType::Class => UsbRequestType::Class,
        RequestType::Vendor => UsbRequestType::Vendor,
    };
    let recipient = match setup.recipient {
        Recipient::Device => UsbRecipient::Device,
        Recipient::Interface => UsbRecipient::Interface,
        Recipient::Endpoint => UsbRecipient::Endpoint,
        Recipient::Other => UsbRecipient::Other,
    };
    UsbControlTransferParameters::new(
        setup.index,
        recipient,
        setup.request,
        request_type,
        setup.value,
    )
}

/// Checks an out-transfer result: status "ok" and every byte written.
fn out_result(value: JsValue, expected: usize) -> Result<(), UsbError> {
    let result: UsbOutTransferResult = value.unchecked_into();
    if let Some(e) = status_error(result.status()) {
        return Err(e);
    }
    let written = usize::try_from(result.bytes_written()).unwrap_or(0);
    if written != expected {
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
        Box::pin(async move { in_result(settle(call).await?.unchecked_into()) })
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
        Box::pin(async move { out_result(settle(call).await?, expected) })
    }

    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>> {
        // A copy the browser owns: the slice may go as soon as this returns.
        let bytes = Uint8Array::from(data);
        let call = self.calls().transfer_out(endpoint, &bytes);
        let expected = data.len();
        Box::pin(async move { out_result(settle(call).await?, expected) })
    }

    fn transfer_in(&self, endpoint: u8, length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        let call = self.calls().transfer_in(endpoint, length);
        Box::pin(async move { in_result(settle(call).await?.unchecked_into()) })
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
