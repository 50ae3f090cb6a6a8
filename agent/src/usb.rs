//! `--usb`: raw CCID through the `nusb` crate, for readers no operating-system driver serves.
//!
//! [`NusbTransport`] implements the core's [`UsbTransport`] (the calls WebUSB offers a page)
//! over nusb, so the project's one CCID driver and reader state machine
//! ([`card_relay::driver::CcidDriver`]) run on it unchanged: the driver reads the
//! configuration descriptor itself (USB 2.0 §9.4.3 GET_DESCRIPTOR), claims the CCID
//! interface and talks CCID (CCID rev 1.1 §6) on its bulk endpoints.
//!
//! - Endpoints are numbers, as in WebUSB; `transfer_in` is endpoint `0x80 | n`, and whether
//!   it is a bulk or an interrupt endpoint is read from the claimed interface's descriptor.
//! - A transfer is submitted when the call is made (as WebUSB's `transferIn`), and its
//!   future waits for the endpoint's next completion: a future the driver keeps across
//!   operations loses nothing.
//! - nusb wants IN transfers in whole packets: the length asked for is rounded up to the
//!   endpoint's wMaxPacketSize, and more data than asked for is `babble`, as in WebUSB.
//! - nusb's errors become the DOMException names the driver classifies
//!   ([`card_relay::driver::error::classify`]): busy → `NetworkError` (`device-busy`),
//!   permission → `SecurityError` (`permission-denied` here, with the operating system's
//!   advice: [`cli_error`]).
//!
//! No test here touches a real USB device: the mapping and the transfer arithmetic are
//! functions tested on their own and through the driver with a scripted transport
//! (`tests.rs`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{poll_fn, IntoFuture};
use std::rc::Rc;
use std::time::Duration;

use card_relay::driver::usb::{
    ControlSetup, DeviceInfo, Direction, LocalBoxFuture, RequestType, UsbError, UsbErrorKind,
    UsbTransport,
};
use card_relay::driver::{DriverError, ErrorCode};
use card_relay::proto::descriptor::find_ccid_interfaces;
use nusb::descriptors::TransferType;
use nusb::transfer::{
    Buffer, Bulk, ControlIn, ControlOut, ControlType, In, Interrupt, Out, Recipient, TransferError,
};
use nusb::{Endpoint, ErrorKind, MaybeFuture};

use crate::CliError;

/// The time a control transfer may take (descriptors, the CCID ABORT request).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// The error of a nusb call that is not a transfer, as the driver knows USB errors.
pub fn kind_error(kind: ErrorKind, message: impl Into<String>) -> UsbError {
    let kind = match kind {
        ErrorKind::Busy => UsbErrorKind::Network,
        ErrorKind::PermissionDenied => UsbErrorKind::Security,
        ErrorKind::Disconnected | ErrorKind::NotFound => UsbErrorKind::NotFound,
        ErrorKind::Unsupported => UsbErrorKind::Other("NotSupportedError".into()),
        _ => UsbErrorKind::Other("OperationError".into()),
    };
    UsbError::new(kind, message)
}

fn nusb_error(e: &nusb::Error) -> UsbError {
    kind_error(e.kind(), e.to_string())
}

/// A transfer's failure: WebUSB's transfer statuses and exceptions.
pub fn transfer_error(e: TransferError) -> UsbError {
    let kind = match e {
        TransferError::Cancelled => UsbErrorKind::Abort,
        TransferError::Stall => UsbErrorKind::Stall,
        TransferError::Disconnected => UsbErrorKind::NotFound,
        TransferError::InvalidArgument => UsbErrorKind::Other("InvalidAccessError".into()),
        _ => UsbErrorKind::Network,
    };
    UsbError::new(kind, e.to_string())
}

/// The length of an IN transfer nusb accepts: `length` rounded up to whole packets
/// (at least one).
pub fn in_request_len(length: u32, max_packet: usize) -> usize {
    let packet = max_packet.max(1);
    let length = usize::try_from(length).unwrap_or(usize::MAX - packet);
    length.max(1).div_ceil(packet) * packet
}

/// An IN transfer's outcome: its data, or `babble` when the device sent more than asked.
pub fn in_result(
    status: Result<(), TransferError>,
    data: Vec<u8>,
    asked: u32,
) -> Result<Vec<u8>, UsbError> {
    status.map_err(transfer_error)?;
    if u32::try_from(data.len()).map_or(true, |n| n > asked) {
        return Err(UsbError::new(
            UsbErrorKind::Babble,
            format!("{} bytes where {asked} were asked for", data.len()),
        ));
    }
    Ok(data)
}

/// nusb's form of a control transfer's setup.
pub fn control_in(setup: ControlSetup, length: u16) -> ControlIn {
    ControlIn {
        control_type: control_type(setup.request_type),
        recipient: recipient(setup.recipient),
        request: setup.request,
        value: setup.value,
        index: setup.index,
        length,
    }
}

fn control_type(t: RequestType) -> ControlType {
    match t {
        RequestType::Standard => ControlType::Standard,
        RequestType::Class => ControlType::Class,
        RequestType::Vendor => ControlType::Vendor,
    }
}

fn recipient(r: card_relay::driver::usb::Recipient) -> Recipient {
    use card_relay::driver::usb::Recipient as R;
    match r {
        R::Device => Recipient::Device,
        R::Interface => Recipient::Interface,
        R::Endpoint => Recipient::Endpoint,
        R::Other => Recipient::Other,
    }
}

/// A GET_DESCRIPTOR to the device (USB 2.0 §9.4.3): its type and index.
fn device_descriptor_request(setup: &ControlSetup) -> Option<(u8, u8)> {
    use card_relay::driver::usb::Recipient as R;
    let [kind, index] = setup.value.to_be_bytes();
    (setup.request_type == RequestType::Standard
        && setup.recipient == R::Device
        && setup.request == 0x06)
        .then_some((kind, index))
}

/// A failed driver call on the `--usb` route, with the operating system's advice where the
/// browser's would mislead: a native program is never refused a "protected class", and a busy
/// reader is held by the system's smart card service or its driver.
pub fn cli_error(e: DriverError) -> CliError {
    let code = match &e {
        DriverError::Usb { source, .. } if source.kind == UsbErrorKind::Security => {
            ErrorCode::PermissionDenied
        }
        other => other.code(),
    };
    let message = e.to_string();
    match code {
        ErrorCode::DeviceBusy => {
            CliError::new(code.as_str(), format!("the reader is in use: {message}"))
                .with_hint(busy_hint())
        }
        ErrorCode::PermissionDenied => {
            CliError::new(code.as_str(), format!("cannot open the reader: {message}"))
                .with_hint(permission_hint())
        }
        _ => CliError::from(e),
    }
}

/// Who holds a busy reader, by operating system.
pub fn busy_hint() -> &'static str {
    if cfg!(windows) {
        "Windows' own CCID driver holds the reader: --usb needs the WinUSB driver on it \
         (install it for this device, e.g. with Zadig; the reader then no longer works with \
         PC/SC), or run without --usb."
    } else if cfg!(target_os = "macos") {
        "macOS's smart card service (ifdreader) holds the reader: run without --usb to use it \
         through PC/SC."
    } else {
        "pcscd (or another program) holds the reader: run without --usb to use it through \
         PC/SC, or stop pcscd while card-relay runs (sudo systemctl stop pcscd.socket pcscd)."
    }
}

/// Why the operating system refuses to open a device, by operating system.
pub fn permission_hint() -> &'static str {
    if cfg!(windows) {
        "Windows refused to open the device: --usb needs the WinUSB driver on it (e.g. with Zadig)."
    } else if cfg!(target_os = "macos") {
        "macOS refused to open the device: the system's smart card service holds it."
    } else {
        "Your user may not open the USB device: add a udev rule giving it access, e.g. \
         SUBSYSTEM==\"usb\", ATTR{idVendor}==\"<vid>\", MODE=\"0660\", GROUP=\"plugdev\" in \
         /etc/udev/rules.d/, then replug the reader."
    }
}

/// An IN endpoint of either type the driver reads.
enum InEndpoint {
    Bulk(Endpoint<Bulk, In>),
    Interrupt(Endpoint<Interrupt, In>),
}

impl InEndpoint {
    fn max_packet_size(&self) -> usize {
        match self {
            Self::Bulk(e) => e.max_packet_size(),
            Self::Interrupt(e) => e.max_packet_size(),
        }
    }
    fn submit(&mut self, buffer: Buffer) {
        match self {
            Self::Bulk(e) => e.submit(buffer),
            Self::Interrupt(e) => e.submit(buffer),
        }
    }
    fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<nusb::transfer::Completion> {
        match self {
            Self::Bulk(e) => e.poll_next_complete(cx),
            Self::Interrupt(e) => e.poll_next_complete(cx),
        }
    }
    fn cancel_all(&mut self) {
        match self {
            Self::Bulk(e) => e.cancel_all(),
            Self::Interrupt(e) => e.cancel_all(),
        }
    }
}

/// An OUT endpoint (CCID's bulk-OUT).
enum OutEndpoint {
    Bulk(Endpoint<Bulk, Out>),
    Interrupt(Endpoint<Interrupt, Out>),
}

impl OutEndpoint {
    fn submit(&mut self, buffer: Buffer) {
        match self {
            Self::Bulk(e) => e.submit(buffer),
            Self::Interrupt(e) => e.submit(buffer),
        }
    }
    fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<nusb::transfer::Completion> {
        match self {
            Self::Bulk(e) => e.poll_next_complete(cx),
            Self::Interrupt(e) => e.poll_next_complete(cx),
        }
    }
    fn cancel_all(&mut self) {
        match self {
            Self::Bulk(e) => e.cancel_all(),
            Self::Interrupt(e) => e.cancel_all(),
        }
    }
}

#[derive(Default)]
struct State {
    device: Option<nusb::Device>,
    interfaces: HashMap<u8, nusb::Interface>,
    ins: HashMap<u8, Rc<RefCell<InEndpoint>>>,
    outs: HashMap<u8, Rc<RefCell<OutEndpoint>>>,
}

impl State {
    fn device(&self) -> Result<nusb::Device, UsbError> {
        self.device
            .clone()
            .ok_or_else(|| UsbError::new(UsbErrorKind::InvalidState, "the device is not open"))
    }

    /// The claimed interface that has endpoint `address`, and the endpoint's type.
    fn owner(&self, address: u8) -> Result<(nusb::Interface, TransferType), UsbError> {
        for interface in self.interfaces.values() {
            let found = interface
                .descriptor()
                .and_then(|d| d.endpoints().find(|e| e.address() == address))
                .map(|e| e.transfer_type());
            if let Some(kind) = found {
                return Ok((interface.clone(), kind));
            }
        }
        Err(UsbError::new(
            UsbErrorKind::InvalidState,
            format!("endpoint {address:#04x} is not on a claimed interface"),
        ))
    }

    fn in_endpoint(&mut self, number: u8) -> Result<Rc<RefCell<InEndpoint>>, UsbError> {
        if let Some(e) = self.ins.get(&number) {
            return Ok(Rc::clone(e));
        }
        let address = 0x80 | number;
        let (interface, kind) = self.owner(address)?;
        let endpoint = match kind {
            TransferType::Interrupt => interface
                .endpoint::<Interrupt, In>(address)
                .map(InEndpoint::Interrupt),
            _ => interface
                .endpoint::<Bulk, In>(address)
                .map(InEndpoint::Bulk),
        }
        .map_err(|e| nusb_error(&e))?;
        let endpoint = Rc::new(RefCell::new(endpoint));
        self.ins.insert(number, Rc::clone(&endpoint));
        Ok(endpoint)
    }

    fn out_endpoint(&mut self, number: u8) -> Result<Rc<RefCell<OutEndpoint>>, UsbError> {
        if let Some(e) = self.outs.get(&number) {
            return Ok(Rc::clone(e));
        }
        let (interface, kind) = self.owner(number)?;
        let endpoint = match kind {
            TransferType::Interrupt => interface
                .endpoint::<Interrupt, Out>(number)
                .map(OutEndpoint::Interrupt),
            _ => interface
                .endpoint::<Bulk, Out>(number)
                .map(OutEndpoint::Bulk),
        }
        .map_err(|e| nusb_error(&e))?;
        let endpoint = Rc::new(RefCell::new(endpoint));
        self.outs.insert(number, Rc::clone(&endpoint));
        Ok(endpoint)
    }

    /// Ends every pending transfer and forgets the endpoints (they hold their interface).
    fn drop_endpoints(&mut self) {
        for e in self.ins.drain().map(|(_, e)| e) {
            e.borrow_mut().cancel_all();
        }
        for e in self.outs.drain().map(|(_, e)| e) {
            e.borrow_mut().cancel_all();
        }
    }
}

fn ready<T: 'static>(value: T) -> LocalBoxFuture<T> {
    Box::pin(std::future::ready(value))
}

/// A USB device through nusb, as the driver's [`UsbTransport`].
pub struct NusbTransport {
    info: nusb::DeviceInfo,
    state: Rc<RefCell<State>>,
}

impl NusbTransport {
    /// The device `info` describes, not opened yet.
    pub fn new(info: nusb::DeviceInfo) -> Self {
        NusbTransport {
            info,
            state: Rc::default(),
        }
    }
}

impl UsbTransport for NusbTransport {
    fn info(&self) -> DeviceInfo {
        DeviceInfo {
            vendor_id: self.info.vendor_id(),
            product_id: self.info.product_id(),
            product_name: self.info.product_string().map(str::to_owned),
            manufacturer_name: self.info.manufacturer_string().map(str::to_owned),
            serial_number: self.info.serial_number().map(str::to_owned),
        }
    }

    fn configuration_value(&self) -> Option<u8> {
        let state = self.state.borrow();
        let device = state.device.as_ref()?;
        device
            .active_configuration()
            .ok()
            .map(|c| c.configuration_value())
    }

    fn is_open(&self) -> bool {
        self.state.borrow().device.is_some()
    }

    fn open(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        let opening = self.info.open().into_future();
        let state = Rc::clone(&self.state);
        Box::pin(async move {
            let device = opening.await.map_err(|e| nusb_error(&e))?;
            state.borrow_mut().device = Some(device);
            Ok(())
        })
    }

    fn select_configuration(&self, value: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        let device = match self.state.borrow().device() {
            Ok(d) => d,
            Err(e) => return ready(Err(e)),
        };
        let setting = device.set_configuration(value).into_future();
        Box::pin(async move { setting.await.map_err(|e| nusb_error(&e)) })
    }

    fn claim_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        let device = match self.state.borrow().device() {
            Ok(d) => d,
            Err(e) => return ready(Err(e)),
        };
        let claiming = device.claim_interface(number).into_future();
        let state = Rc::clone(&self.state);
        Box::pin(async move {
            let interface = claiming.await.map_err(|e| nusb_error(&e))?;
            state.borrow_mut().interfaces.insert(number, interface);
            Ok(())
        })
    }

    fn select_alternate_interface(
        &self,
        number: u8,
        alternate: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        let Some(interface) = self.state.borrow().interfaces.get(&number).cloned() else {
            return ready(Err(UsbError::new(
                UsbErrorKind::InvalidState,
                "the interface is not claimed",
            )));
        };
        let setting = interface.set_alt_setting(alternate).into_future();
        Box::pin(async move { setting.await.map_err(|e| nusb_error(&e)) })
    }

    fn release_interface(&self, number: u8) -> LocalBoxFuture<Result<(), UsbError>> {
        let mut state = self.state.borrow_mut();
        // The driver claims one interface: its endpoints go with it. nusb releases the
        // interface when its last reference (the endpoints hold one) is dropped.
        state.drop_endpoints();
        state.interfaces.remove(&number);
        ready(Ok(()))
    }

    fn close(&self) -> LocalBoxFuture<Result<(), UsbError>> {
        let mut state = self.state.borrow_mut();
        state.drop_endpoints();
        state.interfaces.clear();
        state.device = None;
        ready(Ok(()))
    }

    fn control_transfer_in(
        &self,
        setup: ControlSetup,
        length: u16,
    ) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        let state = self.state.borrow();
        let device = match state.device() {
            Ok(d) => d,
            Err(e) => return ready(Err(e)),
        };
        // Descriptors through nusb's own request, which every platform has (WinUSB has no
        // device-level control transfers before an interface is claimed).
        if let Some((kind, index)) = device_descriptor_request(&setup) {
            let getting = device
                .get_descriptor(kind, index, 0, CONTROL_TIMEOUT)
                .into_future();
            return Box::pin(async move {
                let mut data = getting.await.map_err(|e| match e {
                    nusb::GetDescriptorError::Transfer(t) => transfer_error(t),
                    other => UsbError::new(UsbErrorKind::Network, other.to_string()),
                })?;
                data.truncate(usize::from(length));
                Ok(data)
            });
        }
        let Some(interface) = state.interfaces.values().next().cloned() else {
            return ready(Err(UsbError::new(
                UsbErrorKind::InvalidState,
                "no interface is claimed",
            )));
        };
        let transfer = interface
            .control_in(control_in(setup, length), CONTROL_TIMEOUT)
            .into_future();
        Box::pin(async move { transfer.await.map_err(transfer_error) })
    }

    fn control_transfer_out(
        &self,
        setup: ControlSetup,
        data: &[u8],
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        let Some(interface) = self.state.borrow().interfaces.values().next().cloned() else {
            return ready(Err(UsbError::new(
                UsbErrorKind::InvalidState,
                "no interface is claimed",
            )));
        };
        let request = ControlOut {
            control_type: control_type(setup.request_type),
            recipient: recipient(setup.recipient),
            request: setup.request,
            value: setup.value,
            index: setup.index,
            data,
        };
        let transfer = interface
            .control_out(request, CONTROL_TIMEOUT)
            .into_future();
        Box::pin(async move { transfer.await.map_err(transfer_error) })
    }

    fn transfer_out(&self, endpoint: u8, data: &[u8]) -> LocalBoxFuture<Result<(), UsbError>> {
        let endpoint = match self.state.borrow_mut().out_endpoint(endpoint) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        endpoint.borrow_mut().submit(Buffer::from(data.to_vec()));
        Box::pin(async move {
            let done = poll_fn(|cx| endpoint.borrow_mut().poll_next(cx)).await;
            done.status.map_err(transfer_error)
        })
    }

    fn transfer_in(&self, endpoint: u8, length: u32) -> LocalBoxFuture<Result<Vec<u8>, UsbError>> {
        let endpoint = match self.state.borrow_mut().in_endpoint(endpoint) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let requested = in_request_len(length, endpoint.borrow().max_packet_size());
        endpoint.borrow_mut().submit(Buffer::new(requested));
        Box::pin(async move {
            let done = poll_fn(|cx| endpoint.borrow_mut().poll_next(cx)).await;
            in_result(done.status, done.buffer.into_vec(), length)
        })
    }

    fn clear_halt(
        &self,
        direction: Direction,
        endpoint: u8,
    ) -> LocalBoxFuture<Result<(), UsbError>> {
        let mut state = self.state.borrow_mut();
        let clearing = match direction {
            Direction::In => state
                .in_endpoint(endpoint)
                .map(|e| match &mut *e.borrow_mut() {
                    InEndpoint::Bulk(e) => cleared(e.clear_halt()),
                    InEndpoint::Interrupt(e) => cleared(e.clear_halt()),
                }),
            Direction::Out => state
                .out_endpoint(endpoint)
                .map(|e| match &mut *e.borrow_mut() {
                    OutEndpoint::Bulk(e) => cleared(e.clear_halt()),
                    OutEndpoint::Interrupt(e) => cleared(e.clear_halt()),
                }),
        };
        clearing.unwrap_or_else(|e| ready(Err(e)))
    }
}

fn cleared(
    clearing: impl MaybeFuture<Output = Result<(), nusb::Error>> + 'static,
) -> LocalBoxFuture<Result<(), UsbError>> {
    let clearing = clearing.into_future();
    Box::pin(async move { clearing.await.map_err(|e| nusb_error(&e)) })
}

/// A USB device that looks like a smart card reader.
pub struct UsbReader {
    /// What `-l --usb` shows and `-r` matches: the product's strings, else its ids.
    pub name: String,
    /// The device.
    pub info: nusb::DeviceInfo,
}

/// The smart card readers on the USB: devices with an interface of class 0x0B, and devices
/// with a vendor-class (0xFF) interface whose configuration descriptor holds a CCID class
/// descriptor (found by the core's parser; such a device must be opened to know).
pub async fn readers() -> Result<Vec<UsbReader>, CliError> {
    let devices = nusb::list_devices().await.map_err(|e| {
        CliError::new(
            ErrorCode::ServiceUnavailable.as_str(),
            format!("cannot list usb devices: {e}"),
        )
    })?;
    let mut out = Vec::new();
    for info in devices {
        let smart_card = info.interfaces().any(|i| i.class() == 0x0b);
        let vendor = info.interfaces().any(|i| i.class() == 0xff);
        let reader = smart_card || (vendor && vendor_ccid(&info).await);
        if !reader {
            continue;
        }
        out.push(UsbReader {
            name: reader_name(
                info.manufacturer_string(),
                info.product_string(),
                info.vendor_id(),
                info.product_id(),
            ),
            info,
        });
    }
    Ok(out)
}

async fn vendor_ccid(info: &nusb::DeviceInfo) -> bool {
    let Ok(device) = info.open().await else {
        return false;
    };
    let found = device.configurations().any(|c| {
        find_ccid_interfaces(c.as_bytes())
            .is_ok_and(|found| found.iter().any(|i| i.is_vendor_class()))
    });
    found
}

/// "Manufacturer Product", or the ids when the device has no strings.
pub fn reader_name(
    manufacturer: Option<&str>,
    product: Option<&str>,
    vendor_id: u16,
    product_id: u16,
) -> String {
    let parts: Vec<&str> = [manufacturer, product]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let ids = format!("{vendor_id:04x}:{product_id:04x}");
    if parts.is_empty() {
        format!("USB reader {ids}")
    } else {
        format!("{} ({ids})", parts.join(" "))
    }
}

#[cfg(all(test, feature = "simulator"))]
mod tests;
