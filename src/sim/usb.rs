//! The simulated reader as a USB device: the WebUSB calls, the control requests it answers
//! (USB 2.0 §9.4, CCID Rev 1.1 §5.3) and its bulk and interrupt endpoints.

use super::{ControlSetup, Recipient, RequestType, SimulatedReader, PROTECTED_CLASSES};
use crate::proto::ccid::RdrToPcNotifySlotChange;

/// A failed USB call: a DOMException as Chrome raises it, or a transfer status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsbFault {
    /// The promise rejects with `new DOMException(message, name)`.
    #[error("{name}: {message}")]
    Exception {
        /// The DOMException name: NetworkError, NotFoundError, SecurityError,
        /// InvalidStateError, AbortError.
        name: &'static str,
        /// Chrome's message.
        message: &'static str,
    },
    /// The transfer resolves with status "stall" (the endpoint is halted).
    #[error("stall")]
    Stall,
    /// The transfer resolves with status "babble" and the bytes that fitted.
    #[error("babble")]
    Babble(Vec<u8>),
}

impl UsbFault {
    const fn exception(name: &'static str, message: &'static str) -> Self {
        UsbFault::Exception { name, message }
    }

    /// The DOMException name, for an exception.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            UsbFault::Exception { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The WebUSB transfer status, for a stall or a babble.
    pub fn status(&self) -> Option<&'static str> {
        match self {
            UsbFault::Stall => Some("stall"),
            UsbFault::Babble(_) => Some("babble"),
            UsbFault::Exception { .. } => None,
        }
    }
}

pub(super) const DISCONNECTED: UsbFault =
    UsbFault::exception("NotFoundError", "The device was disconnected.");
pub(super) const NOT_OPEN: UsbFault =
    UsbFault::exception("InvalidStateError", "The device must be opened first.");
pub(super) const NO_CONFIGURATION: UsbFault = UsbFault::exception(
    "InvalidStateError",
    "The device must have a configuration selected.",
);
pub(super) const NO_INTERFACE: UsbFault = UsbFault::exception(
    "NotFoundError",
    "The interface number provided is not supported by the device in its current configuration.",
);
pub(super) const NOT_CLAIMED: UsbFault = UsbFault::exception(
    "InvalidStateError",
    "The specified interface has not been claimed.",
);
pub(super) const NO_ENDPOINT: UsbFault = UsbFault::exception(
    "NotFoundError",
    "The specified endpoint is not part of a claimed and selected alternate interface.",
);
pub(super) const NO_CONFIGURATION_VALUE: UsbFault = UsbFault::exception(
    "NotFoundError",
    "The configuration value provided is not supported by the device.",
);
pub(super) const NO_ALTERNATE: UsbFault = UsbFault::exception(
    "NotFoundError",
    "The alternate setting provided is not supported by the device in its current configuration.",
);
/// claimInterface on a protected class (Chrome, reference/webusb-ccid.md §1.1).
pub const PROTECTED_CLASS: UsbFault = UsbFault::exception(
    "SecurityError",
    "The requested interface implements a protected class.",
);
/// open() refused by the operating system (permissions, another driver).
pub const ACCESS_DENIED: UsbFault = UsbFault::exception("SecurityError", "Access denied.");
/// claimInterface on an interface another program holds.
pub const UNABLE_TO_CLAIM: UsbFault =
    UsbFault::exception("NetworkError", "Unable to claim interface.");

/// The outcome of [`SimulatedReader::transfer_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InTransfer {
    /// The transfer completed (or failed).
    Ready(Result<Vec<u8>, UsbFault>),
    /// Nothing to read yet: a WebUSB `transferIn` would stay pending.
    Pending,
}

impl SimulatedReader {
    pub(super) fn alive(&self) -> Result<(), UsbFault> {
        if self.disconnected {
            Err(DISCONNECTED)
        } else {
            Ok(())
        }
    }

    pub(super) fn alive_and_open(&self) -> Result<(), UsbFault> {
        self.alive()?;
        if self.opened {
            Ok(())
        } else {
            Err(NOT_OPEN)
        }
    }

    /// USBDevice.open().
    pub fn open(&mut self) -> Result<(), UsbFault> {
        self.alive()?;
        if self.faults.access_denied {
            return Err(ACCESS_DENIED);
        }
        self.opened = true;
        Ok(())
    }

    /// USBDevice.close(): releases every interface.
    pub fn close(&mut self) -> Result<(), UsbFault> {
        self.alive()?;
        self.opened = false;
        self.claimed.clear();
        Ok(())
    }

    /// USBDevice.selectConfiguration(value): only configuration 1 exists.
    pub fn select_configuration(&mut self, value: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        if value != self.configuration.configuration_value {
            return Err(NO_CONFIGURATION_VALUE);
        }
        self.configuration_value = Some(value);
        Ok(())
    }

    /// USBDevice.claimInterface(n).
    pub fn claim_interface(&mut self, n: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        if self.configuration_value.is_none() {
            return Err(NO_CONFIGURATION);
        }
        let alternates: Vec<u8> = self
            .configuration
            .interfaces
            .iter()
            .filter(|i| i.number == n)
            .map(|i| i.class)
            .collect();
        if alternates.is_empty() {
            return Err(NO_INTERFACE);
        }
        // Chrome refuses an interface when any of its alternate settings has a protected
        // class (WICG/webusb "has a protected interface class").
        if self.faults.protected_class && alternates.iter().any(|c| PROTECTED_CLASSES.contains(c)) {
            return Err(PROTECTED_CLASS);
        }
        if self.faults.busy {
            return Err(UNABLE_TO_CLAIM);
        }
        if !self.claimed.contains(&n) {
            self.claimed.push(n);
        }
        Ok(())
    }

    /// USBDevice.releaseInterface(n).
    pub fn release_interface(&mut self, n: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        if !self.configuration.interfaces.iter().any(|i| i.number == n) {
            return Err(NO_INTERFACE);
        }
        self.claimed.retain(|c| *c != n);
        Ok(())
    }

    /// USBDevice.selectAlternateInterface(n, alternate).
    pub fn select_alternate_interface(&mut self, n: u8, alternate: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        if !self.claimed.contains(&n) {
            return Err(NOT_CLAIMED);
        }
        let exists = self
            .configuration
            .interfaces
            .iter()
            .any(|i| i.number == n && i.alternate_setting == alternate);
        if exists {
            Ok(())
        } else {
            Err(NO_ALTERNATE)
        }
    }

    /// USBDevice.reset(): the reader restarts; queued data, halts and card power are gone.
    pub fn reset(&mut self) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        self.halted_in = false;
        self.halted_out = false;
        self.out_buffer.clear();
        self.bulk_in.clear();
        self.bulk_in_offset = 0;
        self.stalled.clear();
        self.late.clear();
        for s in &mut self.slots {
            s.powered = false;
            s.chain_in.clear();
            s.chain_out.clear();
        }
        Ok(())
    }

    /// USBDevice.clearHalt(direction, endpoint); `direction_in` is `"in"`.
    pub fn clear_halt(&mut self, direction_in: bool, endpoint: u8) -> Result<(), UsbFault> {
        self.alive_and_open()?;
        self.endpoint_claimed(endpoint, direction_in)?;
        if direction_in && Some(endpoint) == self.bulk_in_number() {
            self.halted_in = false;
        }
        if !direction_in && Some(endpoint) == self.bulk_out_number() {
            self.halted_out = false;
        }
        Ok(())
    }

    /// Whether an endpoint of that number and direction is in a claimed interface.
    pub(super) fn endpoint_claimed(
        &self,
        endpoint: u8,
        direction_in: bool,
    ) -> Result<(), UsbFault> {
        let found = self
            .configuration
            .interfaces
            .iter()
            .filter(|i| self.claimed.contains(&i.number))
            .flat_map(|i| i.endpoints.iter())
            .any(|e| e.number() == endpoint && e.is_in() == direction_in);
        if found {
            Ok(())
        } else {
            Err(NO_ENDPOINT)
        }
    }

    /// USBDevice.controlTransferIn(setup, length): standard GET_DESCRIPTOR (device,
    /// configuration, strings), GET_STATUS and GET_CONFIGURATION to the device, and the CCID
    /// class requests GET_CLOCK_FREQUENCIES / GET_DATA_RATES (CCID §5.3.2, §5.3.3) to a
    /// claimed CCID interface. Anything else stalls. The answer is cut to `length`, as a
    /// device does with wLength.
    pub fn control_transfer_in(
        &mut self,
        setup: ControlSetup,
        length: u16,
    ) -> Result<Vec<u8>, UsbFault> {
        self.alive_and_open()?;
        let mut data = self.control_in_data(setup)?;
        data.truncate(usize::from(length));
        self.stats.control_transfers += 1;
        Ok(data)
    }

    pub(super) fn control_in_data(&self, setup: ControlSetup) -> Result<Vec<u8>, UsbFault> {
        let [kind, index] = setup.value.to_be_bytes();
        match (setup.request_type, setup.recipient, setup.request) {
            // USB 2.0 §9.4.3 GET_DESCRIPTOR.
            (RequestType::Standard, Recipient::Device, 0x06) => match (kind, index) {
                (0x01, 0) => Ok(self.device_descriptor.to_vec()),
                (0x02, 0) => Ok(self.configuration_bytes.clone()),
                // String 0: the supported language ids, here US English 0x0409 (§9.6.7).
                (0x03, 0) => Ok(vec![4, 3, 0x09, 0x04]),
                (0x03, 1) => string_descriptor(self.profile.manufacturer.as_deref()),
                (0x03, 2) => string_descriptor(self.profile.product.as_deref()),
                _ => Err(UsbFault::Stall),
            },
            // §9.4.5 GET_STATUS: bus powered, no remote wake-up.
            (RequestType::Standard, Recipient::Device, 0x00) => Ok(vec![0, 0]),
            // §9.4.2 GET_CONFIGURATION.
            (RequestType::Standard, Recipient::Device, 0x08) => {
                Ok(vec![self.configuration_value.unwrap_or(0)])
            }
            (RequestType::Class, Recipient::Interface, request @ (0x02 | 0x03)) => {
                let ccid = self.ccid.as_ref().ok_or(UsbFault::Stall)?;
                let interface = u8::try_from(setup.index & 0xFF).unwrap_or(0);
                if interface != ccid.number {
                    return Err(UsbFault::Stall);
                }
                if !self.claimed.contains(&interface) {
                    return Err(NOT_CLAIMED);
                }
                Ok(self.clock_or_rates(request == 0x02))
            }
            _ => Err(UsbFault::Stall),
        }
    }

    /// The dump's "Support N kHz" / "Support N bps" lines as u32 LE, or the default value
    /// when it lists none.
    pub(super) fn clock_or_rates(&self, clocks: bool) -> Vec<u8> {
        let (field, unit) = if clocks {
            ("bNumClockSupported", "kHz")
        } else {
            ("bNumDataRatesSupported", "bps")
        };
        let values: Vec<u32> = self
            .profile
            .interfaces
            .iter()
            .find(|i| i.class_descriptor.is_some())
            .and_then(|i| i.class_field(field))
            .map(|f| {
                f.notes
                    .iter()
                    .filter_map(|n| n.strip_prefix("Support ")?.strip_suffix(unit))
                    .filter_map(|n| n.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let values = if values.is_empty() {
            let d = self.descriptor;
            vec![d.map_or(0, |d| if clocks { d.default_clock } else { d.data_rate })]
        } else {
            values
        };
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// USBDevice.controlTransferOut(setup, data): the CCID ABORT class request (CCID
    /// §5.3.1, wValue = bSeq << 8 | bSlot) is recorded; anything else stalls.
    pub fn control_transfer_out(
        &mut self,
        setup: ControlSetup,
        data: &[u8],
    ) -> Result<usize, UsbFault> {
        self.alive_and_open()?;
        let interface = self.ccid.as_ref().map(|c| c.number);
        match (setup.request_type, setup.recipient, setup.request) {
            (RequestType::Class, Recipient::Interface, 0x01)
                if interface == u8::try_from(setup.index & 0xFF).ok() =>
            {
                if !interface.is_some_and(|n| self.claimed.contains(&n)) {
                    return Err(NOT_CLAIMED);
                }
                let [seq, slot] = setup.value.to_be_bytes();
                self.abort_requests.push((slot, seq));
                self.stats.control_transfers += 1;
                Ok(data.len())
            }
            _ => Err(UsbFault::Stall),
        }
    }

    /// USBDevice.transferOut(endpoint, data): bulk-OUT takes CCID messages (one may span
    /// several transfers); the answers are queued on bulk-IN at once.
    pub fn transfer_out(&mut self, endpoint: u8, data: &[u8]) -> Result<usize, UsbFault> {
        self.alive_and_open()?;
        self.endpoint_claimed(endpoint, false)?;
        if Some(endpoint) != self.bulk_out_number() {
            return Ok(data.len());
        }
        if self.halted_out {
            return Err(UsbFault::Stall);
        }
        self.stats.transfers_out += 1;
        self.out_buffer.extend_from_slice(data);
        self.take_commands();
        Ok(data.len())
    }

    /// USBDevice.transferIn(endpoint, length).
    pub fn transfer_in(&mut self, endpoint: u8, length: usize) -> InTransfer {
        if let Err(e) = self
            .alive_and_open()
            .and_then(|()| self.endpoint_claimed(endpoint, true))
        {
            return InTransfer::Ready(Err(e));
        }
        if Some(endpoint) == self.interrupt_number() {
            if self.faults.interrupt_errors > 0 {
                self.faults.interrupt_errors -= 1;
                return InTransfer::Ready(Err(UsbFault::exception(
                    "NetworkError",
                    "A transfer error has occurred.",
                )));
            }
            return match self.take_interrupt() {
                Some(mut msg) if msg.len() > length => {
                    msg.truncate(length);
                    InTransfer::Ready(Err(UsbFault::Babble(msg)))
                }
                Some(msg) => InTransfer::Ready(Ok(msg)),
                None => InTransfer::Pending,
            };
        }
        if Some(endpoint) != self.bulk_in_number() {
            return InTransfer::Pending;
        }
        if self.halted_in {
            return InTransfer::Ready(Err(UsbFault::Stall));
        }
        if self.bulk_in.is_empty() {
            return InTransfer::Pending;
        }
        self.stats.transfers_in += 1;
        InTransfer::Ready(self.read_bulk(length))
    }

    /// Whether a bulk-IN transfer would complete now (data queued or the endpoint halted).
    pub fn bulk_in_ready(&self) -> bool {
        self.halted_in || !self.bulk_in.is_empty()
    }

    /// Whether an interrupt-IN transfer would complete now.
    pub fn interrupt_ready(&self) -> bool {
        self.interrupt_number().is_some()
            && (!self.hardware_errors.is_empty() || self.notify_pending)
    }

    /// The next interrupt-IN message, if any: hardware errors first, then one
    /// NotifySlotChange with every change since the last one (CCID §6.3.1). Nothing when
    /// the profile has no interrupt endpoint: the host then polls with GetSlotStatus.
    pub fn take_interrupt(&mut self) -> Option<Vec<u8>> {
        self.interrupt_number()?;
        if let Some(e) = self.hardware_errors.pop_front() {
            return Some(e);
        }
        if !self.notify_pending {
            return None;
        }
        self.notify_pending = false;
        let states: Vec<(bool, bool)> = self
            .slots
            .iter_mut()
            .map(|s| (s.card.is_some(), std::mem::take(&mut s.changed)))
            .collect();
        Some(RdrToPcNotifySlotChange::new(&states).encode())
    }

    pub(super) fn read_bulk(&mut self, length: usize) -> Result<Vec<u8>, UsbFault> {
        let packet = self.bulk_packet_size();
        let Some(unit) = self.bulk_in.front() else {
            return Ok(Vec::new());
        };
        let start = self.bulk_in_offset.min(unit.len());
        let remaining = unit.len() - start;
        let mut take = 0;
        let mut babble = false;
        if self.faults.split {
            take = remaining.min(length).min(1);
        } else {
            while take < remaining && take < length {
                let size = (remaining - take).min(packet);
                if take + size > length {
                    babble = true;
                    break;
                }
                take += size;
                if size < packet {
                    break;
                }
            }
        }
        let data = if babble {
            let end = (start + length).min(unit.len());
            let fitted = unit.get(start..end).unwrap_or_default().to_vec();
            // The packet that did not fit is lost whole.
            let lost = (remaining - take).min(packet);
            self.advance_bulk(take + lost);
            return Err(UsbFault::Babble(fitted));
        } else {
            unit.get(start..start + take).unwrap_or_default().to_vec()
        };
        self.advance_bulk(take);
        Ok(data)
    }

    pub(super) fn advance_bulk(&mut self, n: usize) {
        self.bulk_in_offset += n;
        let done = self
            .bulk_in
            .front()
            .is_some_and(|u| self.bulk_in_offset >= u.len());
        if done {
            self.bulk_in.pop_front();
            self.bulk_in_offset = 0;
        }
    }
}

pub(super) fn string_descriptor(text: Option<&str>) -> Result<Vec<u8>, UsbFault> {
    let text = text.ok_or(UsbFault::Stall)?;
    // USB 2.0 §9.6.7: bLength, bDescriptorType 3, UTF-16LE; at most 126 code units.
    let units: Vec<u16> = text.encode_utf16().take(126).collect();
    let mut out = vec![0, 0x03];
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
    let length = u8::try_from(out.len()).unwrap_or(u8::MAX);
    if let Some(first) = out.first_mut() {
        *first = length;
    }
    Ok(out)
}
