//! The WebUSB adapter: [`UsbTransport`] over a `USBDevice`.
//!
//! The device is used structurally: any object with the USBDevice methods works (a real
//! device, the simulated reader, a test fake). It is never checked with `instanceof`
//! (`dyn_into` would refuse a fake): it is cast with `unchecked_into`.

use std::future::{Future, IntoFuture};

use js_sys::{DataView, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    UsbControlTransferParameters, UsbDevice, UsbDirection, UsbInTransferResult, UsbRecipient,
    UsbRequestType, UsbTransferStatus,
};

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
pub fn usb_error(value: JsValue) -> UsbError {
    let name = Reflect::get(&value, &JsValue::from_str("name"))
        .ok()
        .and_then(|v| v.as_string());
    let message = Reflect::get(&value, &JsValue::from_str("message"))
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

fn unit<F>(promise: F) -> LocalBoxFuture<Result<(), UsbError>>
where
    F: Future<Output = Result<js_sys::Undefined, JsValue>> + 'static,
{
    Box::pin(async move { promise.await.map(|_| ()).map_err(usb_error) })
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
        unit(self.device.open().into_future())
    }

    fn select_configuration(&self, value: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.device.select_configuration(value).into_future())
    }

    fn claim_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.device.claim_interface(number).into_future())
    }

    fn select_alternate_interface(
        &self,
        number: u8,
        alternate: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(
            self.device
                .select_alternate_interface(number, alternate)
                .into_future(),
        )
    }

    fn release_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.device.release_interface(number).into_future())
    }

    fn close(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        unit(self.device.close().into_future())
    }

    fn control_transfer_in(
        &self,
        setup: ControlSetup,
        length: u16,
    ) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
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
        let params = UsbControlTransferParameters::new(
            setup.index,
            recipient,
            setup.request,
            request_type,
            setup.value,
        );
        let promise = self.device.control_transfer_in(&params, length);
        Box::pin(async move { in_result(promise.await.map_err(usb_error)?) })
    }

    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>> {
        // The browser copies the bytes before this returns, so the slice may go.
        let promise = self.device.transfer_out_with_u8_slice(endpoint, data);
        let expected = data.len();
        Box::pin(async move {
            let result = promise.map_err(usb_error)?.await.map_err(usb_error)?;
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
        })
    }

    fn transfer_in(&self, endpoint: u8, length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        let promise = self.device.transfer_in(endpoint, length);
        Box::pin(async move { in_result(promise.await.map_err(usb_error)?) })
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
        unit(self.device.clear_halt(direction, endpoint).into_future())
    }
}
