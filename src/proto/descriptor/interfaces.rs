//! Finding CCID interfaces in a configuration (libccid's rule).

use super::class::CcidClassDescriptor;
use super::configuration::{parse_configuration, Configuration, Endpoint, TransferType};
use super::{DescriptorError, CLASS_SMART_CARD, CLASS_VENDOR};

/// An interface usable as a CCID (or ICCD) reader.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CcidInterface {
    /// bInterfaceNumber, for `claimInterface`.
    pub number: u8,
    /// bAlternateSetting, for `selectAlternateInterface`.
    pub alternate_setting: u8,
    /// bInterfaceClass: 0x0B, or 0xFF for a pre-standard reader.
    pub class: u8,
    /// bInterfaceSubClass (0).
    pub subclass: u8,
    /// bInterfaceProtocol: 0 CCID, 1 ICCD version A, 2 ICCD version B.
    pub protocol: u8,
    /// The first bulk-IN endpoint.
    pub bulk_in: Option<Endpoint>,
    /// The first bulk-OUT endpoint.
    pub bulk_out: Option<Endpoint>,
    /// The first interrupt-IN endpoint (absent: poll with GetSlotStatus).
    pub interrupt_in: Option<Endpoint>,
    /// The class descriptor.
    pub descriptor: CcidClassDescriptor,
}

impl CcidInterface {
    /// Whether this is an ICCD (bInterfaceProtocol 1 or 2: control transfers, no bulk).
    pub fn is_iccd(&self) -> bool {
        matches!(self.protocol, 1 | 2)
    }

    /// Whether the interface uses the vendor class 0xFF (not protected by WebUSB).
    pub fn is_vendor_class(&self) -> bool {
        self.class == CLASS_VENDOR
    }
}

/// The first 54-byte descriptor of type 0x21 or 0xFF in `extra`.
fn ccid_descriptor_in(extra: &[Vec<u8>]) -> Option<CcidClassDescriptor> {
    extra
        .iter()
        .find_map(|d| CcidClassDescriptor::decode(d).ok())
}

/// The CCID interfaces of a parsed configuration, in order (libccid's rule).
///
/// An alternate setting qualifies when its class is 0x0B or 0xFF and it carries a 54-byte
/// descriptor of type 0x21 or 0xFF: right after the interface descriptor, or else (O2Micro
/// OZ776 and a few others) after one of its endpoints, the last endpoint first. A 0x0B
/// interface without such a descriptor is skipped, as libccid does.
pub fn ccid_interfaces(config: &Configuration) -> Vec<CcidInterface> {
    config
        .interfaces
        .iter()
        .filter(|i| i.class == CLASS_SMART_CARD || i.class == CLASS_VENDOR)
        .filter_map(|i| {
            let descriptor = ccid_descriptor_in(&i.extra).or_else(|| {
                i.endpoints
                    .iter()
                    .rev()
                    .find_map(|e| ccid_descriptor_in(&e.extra))
            })?;
            let find = |ty: TransferType, is_in: bool| {
                i.endpoints
                    .iter()
                    .find(|e| e.transfer_type() == ty && e.is_in() == is_in)
                    .cloned()
            };
            Some(CcidInterface {
                number: i.number,
                alternate_setting: i.alternate_setting,
                class: i.class,
                subclass: i.subclass,
                protocol: i.protocol,
                bulk_in: find(TransferType::Bulk, true),
                bulk_out: find(TransferType::Bulk, false),
                interrupt_in: find(TransferType::Interrupt, true),
                descriptor,
            })
        })
        .collect()
}

/// Parses a configuration descriptor set and returns its CCID interfaces.
pub fn find_ccid_interfaces(config_bytes: &[u8]) -> Result<Vec<CcidInterface>, DescriptorError> {
    Ok(ccid_interfaces(&parse_configuration(config_bytes)?))
}
