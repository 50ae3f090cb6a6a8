//! What the driver needs from a USB device, and the errors a USB call can end with.
//!
//! The browser adapter (`web::usb`) implements [`UsbTransport`] over WebUSB's `USBDevice`;
//! the simulated reader implements it natively for tests. Every call returns a `'static`
//! future: a WebUSB `transferIn` cannot be cancelled, so the driver keeps an unfinished
//! bulk-IN read alive across operations instead of dropping it (a dropped read would
//! swallow the next answer).

use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// A boxed future that is not `Send` (WebUSB futures live on the page's thread).
pub type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Which USB call failed: the meaning of a DOMException depends on it. The discriminant
/// is the call's number across the JS boundary: the browser adapter (`web::usb`) names the
/// call by it, and `src/web/platform.js`'s `USB` table lists the methods in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum UsbCall {
    /// `USBDevice.open()`.
    Open = 0,
    /// `USBDevice.selectConfiguration()`.
    SelectConfiguration = 1,
    /// `USBDevice.claimInterface()`.
    ClaimInterface = 2,
    /// `USBDevice.selectAlternateInterface()`.
    SelectAlternateInterface = 3,
    /// `USBDevice.releaseInterface()`.
    ReleaseInterface = 4,
    /// `USBDevice.close()`.
    Close = 5,
    /// `USBDevice.controlTransferIn()`.
    ControlTransferIn = 6,
    /// `USBDevice.controlTransferOut()`.
    ControlTransferOut = 7,
    /// `USBDevice.transferOut()`.
    TransferOut = 8,
    /// `USBDevice.transferIn()`.
    TransferIn = 9,
    /// `USBDevice.clearHalt()`.
    ClearHalt = 10,
}

impl UsbCall {
    /// The WebUSB method name.
    pub fn name(self) -> &'static str {
        match self {
            UsbCall::Open => "open",
            UsbCall::SelectConfiguration => "selectConfiguration",
            UsbCall::ClaimInterface => "claimInterface",
            UsbCall::SelectAlternateInterface => "selectAlternateInterface",
            UsbCall::ReleaseInterface => "releaseInterface",
            UsbCall::Close => "close",
            UsbCall::ControlTransferIn => "controlTransferIn",
            UsbCall::ControlTransferOut => "controlTransferOut",
            UsbCall::TransferOut => "transferOut",
            UsbCall::TransferIn => "transferIn",
            UsbCall::ClearHalt => "clearHalt",
        }
    }
}

/// The kind of a failed USB call: the DOMException `name`, or a transfer status.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsbErrorKind {
    /// DOMException `SecurityError`.
    Security,
    /// DOMException `NetworkError`.
    Network,
    /// DOMException `NotFoundError` (the device is gone).
    NotFound,
    /// DOMException `InvalidStateError` (device not open, interface not claimed).
    InvalidState,
    /// DOMException `AbortError` (the transfer was cancelled, e.g. by `close()`).
    Abort,
    /// Transfer status `"stall"`: the endpoint halted; `clearHalt` is needed.
    Stall,
    /// Transfer status `"babble"`: the device sent more than asked.
    Babble,
    /// Any other exception; its name is kept.
    Other(String),
}

impl UsbErrorKind {
    /// Maps a DOMException name.
    pub fn from_dom_name(name: &str) -> Self {
        match name {
            "SecurityError" => Self::Security,
            "NetworkError" => Self::Network,
            "NotFoundError" => Self::NotFound,
            "InvalidStateError" => Self::InvalidState,
            "AbortError" => Self::Abort,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A failed USB call: its kind and the browser's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbError {
    /// What failed.
    pub kind: UsbErrorKind,
    /// The exception's message, as the browser wrote it.
    pub message: String,
}

impl UsbError {
    /// An error of `kind` with `message`.
    pub fn new(kind: UsbErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for UsbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            UsbErrorKind::Security => "SecurityError",
            UsbErrorKind::Network => "NetworkError",
            UsbErrorKind::NotFound => "NotFoundError",
            UsbErrorKind::InvalidState => "InvalidStateError",
            UsbErrorKind::Abort => "AbortError",
            UsbErrorKind::Stall => "stall",
            UsbErrorKind::Babble => "babble",
            UsbErrorKind::Other(name) => name,
        };
        if self.message.is_empty() {
            f.write_str(kind)
        } else {
            write!(f, "{kind}: {}", self.message)
        }
    }
}

impl std::error::Error for UsbError {}

/// USB 2.0 §9.3 bmRequestType type bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// Standard request.
    Standard,
    /// Class request.
    Class,
    /// Vendor request.
    Vendor,
}

/// USB 2.0 §9.3 bmRequestType recipient bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// The device.
    Device,
    /// An interface (`index` is its number).
    Interface,
    /// An endpoint.
    Endpoint,
    /// Other.
    Other,
}

/// The setup of a control transfer (WebUSB `USBControlTransferParameters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlSetup {
    /// Standard, class or vendor.
    pub request_type: RequestType,
    /// Who receives it.
    pub recipient: Recipient,
    /// bRequest.
    pub request: u8,
    /// wValue.
    pub value: u16,
    /// wIndex.
    pub index: u16,
}

impl ControlSetup {
    /// The CCID class request ABORT (CCID §5.3.1: bmRequestType 0x21, bRequest 0x01,
    /// wValue = bSeq << 8 | bSlot, wIndex = the interface), no data.
    pub fn ccid_abort(interface: u8, slot: u8, seq: u8) -> Self {
        Self {
            request_type: RequestType::Class,
            recipient: Recipient::Interface,
            request: 0x01,
            value: u16::from(seq) << 8 | u16::from(slot),
            index: u16::from(interface),
        }
    }

    /// The 8-byte SETUP packet of this request with `wLength` = `length` (USB 2.0 §9.3,
    /// Table 9-2): bmRequestType (bit 7 the direction, bits 6..5 the type, bits 4..0 the
    /// recipient), bRequest, then wValue, wIndex and wLength little-endian.
    pub fn packet(&self, direction: Direction, length: u16) -> [u8; 8] {
        let kind: u8 = match self.request_type {
            RequestType::Standard => 0,
            RequestType::Class => 1,
            RequestType::Vendor => 2,
        };
        let recipient: u8 = match self.recipient {
            Recipient::Device => 0,
            Recipient::Interface => 1,
            Recipient::Endpoint => 2,
            Recipient::Other => 3,
        };
        let to_host = u8::from(direction == Direction::In);
        let [v0, v1] = self.value.to_le_bytes();
        let [i0, i1] = self.index.to_le_bytes();
        let [l0, l1] = length.to_le_bytes();
        let request_type = to_host << 7 | kind << 5 | recipient;
        [request_type, self.request, v0, v1, i0, i1, l0, l1]
    }

    /// GET_DESCRIPTOR (USB 2.0 §9.4.3) for descriptor `kind` number `index`, to the device.
    pub fn get_descriptor(kind: u8, index: u8) -> Self {
        Self {
            request_type: RequestType::Standard,
            recipient: Recipient::Device,
            request: 0x06,
            value: u16::from(kind) << 8 | u16::from(index),
            index: 0,
        }
    }
}

/// Endpoint direction for `clearHalt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Device to host.
    In,
    /// Host to device.
    Out,
}

/// The identity of a device as WebUSB shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// The product string, if the device has one.
    pub product_name: Option<String>,
    /// The manufacturer string, if the device has one.
    pub manufacturer_name: Option<String>,
    /// The serial number string, if the device has one.
    pub serial_number: Option<String>,
}

/// The USB calls the CCID driver makes. Endpoints are endpoint NUMBERS, as in WebUSB.
pub trait UsbTransport {
    /// Vendor, product and strings.
    fn info(&self) -> DeviceInfo;
    /// The selected configuration value, if any.
    fn configuration_value(&self) -> Option<u8>;
    /// Whether the device is open.
    fn is_open(&self) -> bool;
    /// Opens the device.
    fn open(&self) -> LocalBoxFuture<Result<(), UsbError>>;
    /// Selects a configuration.
    fn select_configuration(&self, value: u8) -> LocalBoxFuture<Result<(), UsbError>>;
    /// Claims an interface.
    fn claim_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>>;
    /// Selects an alternate setting of a claimed interface.
    fn select_alternate_interface(
        &self,
        number: u8,
        alternate: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>>;
    /// Releases an interface.
    fn release_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>>;
    /// Closes the device.
    fn close(&self) -> LocalBoxFuture<Result<(), UsbError>>;
    /// A control transfer from the device.
    fn control_transfer_in(
        &self,
        setup: ControlSetup,
        length: u16,
    ) -> LocalBoxFuture<Result<Vec<u8>, UsbError>>;
    /// A control transfer to the device (the CCID class request ABORT). Transports that
    /// cannot make one keep this default, which fails: the driver then aborts with
    /// PC_to_RDR_Abort alone.
    fn control_transfer_out(
        &self,
        setup: ControlSetup,
        data: &[u8],
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        let _ = (setup, data);
        Box::pin(std::future::ready(Err(UsbError::new(
            UsbErrorKind::Other("NotSupportedError".into()),
            "control transfers out are not supported",
        ))))
    }
    /// A bulk or interrupt transfer to the device.
    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>>;
    /// A bulk or interrupt transfer from the device: at most `length` bytes.
    fn transfer_in(&self, endpoint: u8, length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>>;
    /// Clears a halted endpoint.
    fn clear_halt(
        &self,
        direction: Direction,
        endpoint: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>>;
}

/// Time for the driver: a monotonic clock in milliseconds and a timer.
pub trait Clock {
    /// Milliseconds since an arbitrary origin.
    fn now(&self) -> u64;
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> LocalBoxFuture<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

    /// USB 2.0 §9.4.3: GET_DESCRIPTOR is bmRequestType 10000000B, bRequest 6, wValue the
    /// descriptor type (2, CONFIGURATION) in the high byte and its index in the low byte.
    #[test]
    fn get_descriptor_packet_is_the_standard_request() {
        let setup = ControlSetup::get_descriptor(0x02, 0);
        assert_eq!(
            setup.packet(Direction::In, 9),
            [0x80, 0x06, 0x00, 0x02, 0x00, 0x00, 0x09, 0x00]
        );
        assert_eq!(setup.packet(Direction::In, 0x0123)[6..], [0x23, 0x01]);
    }

    /// CCID 1.1 §5.3.1: ABORT is bmRequestType 00100001B, bRequest 1, wValue bSeq in the
    /// high byte and bSlot in the low byte, wIndex the interface, wLength 0.
    #[test]
    fn ccid_abort_packet_is_the_class_request() {
        let setup = ControlSetup::ccid_abort(3, 1, 0x42);
        assert_eq!(
            setup.packet(Direction::Out, 0),
            [0x21, 0x01, 0x01, 0x42, 0x03, 0x00, 0x00, 0x00]
        );
    }

    /// The call numbers are the order of `src/web/platform.js`'s `USB` table.
    #[test]
    fn call_numbers_follow_the_platform_table() {
        let platform = include_str!("../web/platform.js");
        let start = platform.find("const USB = [").expect("USB table");
        let table = &platform[start..];
        let table = &table[..table.find(']').expect("end of the table")];
        let names: Vec<&str> = table.split('"').skip(1).step_by(2).collect();
        let calls = [
            UsbCall::Open,
            UsbCall::SelectConfiguration,
            UsbCall::ClaimInterface,
            UsbCall::SelectAlternateInterface,
            UsbCall::ReleaseInterface,
            UsbCall::Close,
            UsbCall::ControlTransferIn,
            UsbCall::ControlTransferOut,
            UsbCall::TransferOut,
            UsbCall::TransferIn,
            UsbCall::ClearHalt,
        ];
        assert_eq!(names.len(), calls.len());
        for call in calls {
            assert_eq!(names[call as usize], call.name());
        }
    }
}
