//! The device descriptor (USB 2.0 §9.6.1).

use super::{dt, DescriptorError};
use crate::proto::bytes::Cursor;

/// The 18-byte device descriptor (USB 2.0 §9.6.1, table 9-8).
///
/// Layout: [0] bLength 18, [1] bDescriptorType 1, [2..4] bcdUSB, [4] bDeviceClass,
/// [5] bDeviceSubClass, [6] bDeviceProtocol, [7] bMaxPacketSize0, [8..10] idVendor,
/// [10..12] idProduct, [12..14] bcdDevice, [14] iManufacturer, [15] iProduct,
/// [16] iSerialNumber, [17] bNumConfigurations; all multi-byte fields little-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceDescriptor {
    /// bcdUSB, e.g. 0x0200.
    pub usb_version: u16,
    /// bDeviceClass (0: per interface).
    pub device_class: u8,
    /// bDeviceSubClass.
    pub device_subclass: u8,
    /// bDeviceProtocol.
    pub device_protocol: u8,
    /// bMaxPacketSize0: 8, 16, 32 or 64.
    pub max_packet_size0: u8,
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// bcdDevice.
    pub device_version: u16,
    /// iManufacturer (string index, 0 for none).
    pub manufacturer_string: u8,
    /// iProduct.
    pub product_string: u8,
    /// iSerialNumber.
    pub serial_number_string: u8,
    /// bNumConfigurations.
    pub num_configurations: u8,
}

impl DeviceDescriptor {
    /// bLength of a device descriptor.
    pub const LENGTH: u8 = 18;

    /// Decodes the descriptor at the start of `bytes`; bytes beyond bLength are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let mut c = Cursor::new(bytes);
        let length = c.u8().ok_or(DescriptorError::Truncated)?;
        let ty = c.u8().ok_or(DescriptorError::Truncated)?;
        if ty != dt::DEVICE {
            return Err(DescriptorError::WrongType {
                expected: dt::DEVICE,
                found: ty,
            });
        }
        if length != Self::LENGTH {
            return Err(DescriptorError::BadLength { offset: 0, length });
        }
        let mut read = || -> Option<Self> {
            Some(Self {
                usb_version: c.u16_le()?,
                device_class: c.u8()?,
                device_subclass: c.u8()?,
                device_protocol: c.u8()?,
                max_packet_size0: c.u8()?,
                vendor_id: c.u16_le()?,
                product_id: c.u16_le()?,
                device_version: c.u16_le()?,
                manufacturer_string: c.u8()?,
                product_string: c.u8()?,
                serial_number_string: c.u8()?,
                num_configurations: c.u8()?,
            })
        };
        read().ok_or(DescriptorError::Truncated)
    }

    /// The 18 bytes.
    pub fn encode(&self) -> [u8; 18] {
        let mut out = Vec::with_capacity(18);
        out.extend_from_slice(&[Self::LENGTH, dt::DEVICE]);
        out.extend_from_slice(&self.usb_version.to_le_bytes());
        out.extend_from_slice(&[
            self.device_class,
            self.device_subclass,
            self.device_protocol,
            self.max_packet_size0,
        ]);
        out.extend_from_slice(&self.vendor_id.to_le_bytes());
        out.extend_from_slice(&self.product_id.to_le_bytes());
        out.extend_from_slice(&self.device_version.to_le_bytes());
        out.extend_from_slice(&[
            self.manufacturer_string,
            self.product_string,
            self.serial_number_string,
            self.num_configurations,
        ]);
        let mut b = [0u8; 18];
        // INVARIANT: exactly 18 bytes were pushed above, so the lengths match.
        b.copy_from_slice(&out);
        b
    }
}
