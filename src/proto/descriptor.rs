//! USB descriptors as a GET_DESCRIPTOR control transfer returns them (USB 2.0 §9.6), and the
//! CCID class descriptor (CCID Rev 1.1 §5.1).
//!
//! WebUSB exposes interfaces and endpoints but not class-specific descriptors, so the host
//! reads the whole configuration descriptor with a standard GET_DESCRIPTOR(CONFIGURATION)
//! request and finds the CCID interfaces with [`find_ccid_interfaces`].

/// bDescriptorType values (USB 2.0 §9.4, table 9-5; CCID §5.1).
pub mod descriptor_type {
    /// DEVICE.
    pub const DEVICE: u8 = 0x01;
    /// CONFIGURATION.
    pub const CONFIGURATION: u8 = 0x02;
    /// STRING.
    pub const STRING: u8 = 0x03;
    /// INTERFACE.
    pub const INTERFACE: u8 = 0x04;
    /// ENDPOINT.
    pub const ENDPOINT: u8 = 0x05;
    /// INTERFACE_ASSOCIATION (USB ECN, IAD).
    pub const INTERFACE_ASSOCIATION: u8 = 0x0B;
    /// The CCID functional descriptor (CCID §5.1), same value as HID's class descriptor.
    pub const CCID: u8 = 0x21;
    /// The vendor type some pre-standard readers use for the CCID descriptor.
    pub const CCID_PROPRIETARY: u8 = 0xFF;
}

use descriptor_type as dt;

/// bInterfaceClass of a smart card interface (USB class codes).
pub const CLASS_SMART_CARD: u8 = 0x0B;
/// bInterfaceClass of a vendor-specific interface.
pub const CLASS_VENDOR: u8 = 0xFF;

/// A descriptor that could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// Fewer bytes than the descriptor needs.
    #[error("truncated descriptor")]
    Truncated,
    /// Bytes follow a descriptor that must stand alone.
    #[error("trailing bytes after descriptor")]
    TrailingBytes,
    /// bDescriptorType is not the one expected.
    #[error("descriptor type {found:#04x}, expected {expected:#04x}")]
    WrongType {
        /// The type expected here.
        expected: u8,
        /// The type found.
        found: u8,
    },
    /// bLength is too small for the descriptor type (a bLength of 0 or 1 included).
    #[error("bad descriptor length {length} at offset {offset}")]
    BadLength {
        /// Offset of the descriptor in the configuration.
        offset: usize,
        /// bLength found.
        length: u8,
    },
    /// A descriptor runs past wTotalLength.
    #[error("descriptor at offset {offset} overruns the configuration")]
    Overrun {
        /// Offset of the descriptor in the configuration.
        offset: usize,
    },
    /// wTotalLength is below the configuration descriptor's own length.
    #[error("bad total length {0}")]
    BadTotalLength(u16),
    /// An endpoint descriptor precedes every interface descriptor.
    #[error("endpoint outside an interface at offset {offset}")]
    OrphanEndpoint {
        /// Offset of the endpoint descriptor.
        offset: usize,
    },
    /// An interface has a different number of endpoint descriptors than bNumEndpoints.
    #[error("interface {interface} declares {declared} endpoints, has {found}")]
    EndpointCountMismatch {
        /// bInterfaceNumber.
        interface: u8,
        /// bNumEndpoints.
        declared: u8,
        /// Endpoint descriptors found.
        found: usize,
    },
    /// A value does not fit its field when encoding (wTotalLength, bNumEndpoints, an extra
    /// descriptor that is not a well-formed descriptor).
    #[error("value does not fit the descriptor: {0}")]
    Unencodable(&'static str),
    /// A CCID class descriptor whose bLength is not 54.
    #[error("bad ccid descriptor length {0}")]
    BadCcidLength(u8),
    /// A CCID class descriptor of a type other than 0x21 or 0xFF.
    #[error("bad ccid descriptor type {0:#04x}")]
    BadCcidType(u8),
}

mod class;
mod configuration;
mod device;
mod interfaces;

pub use class::{CcidClassDescriptor, ExchangeLevel, Features};
pub use configuration::{parse_configuration, Configuration, Endpoint, Interface, TransferType};
pub use device::DeviceDescriptor;
pub use interfaces::{ccid_interfaces, find_ccid_interfaces, CcidInterface};

#[cfg(test)]
mod tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop;
