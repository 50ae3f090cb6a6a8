//! The configuration descriptor with its interfaces and endpoints (USB 2.0 §9.6.3, §9.6.5,
//! §9.6.6).

use super::{dt, DescriptorError};
use crate::proto::bytes::Cursor;

/// bmAttributes bits 0–1 of an endpoint (USB 2.0 §9.6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferType {
    /// 0: control.
    Control,
    /// 1: isochronous.
    Isochronous,
    /// 2: bulk.
    Bulk,
    /// 3: interrupt.
    Interrupt,
}

/// An endpoint descriptor (USB 2.0 §9.6.6, table 9-13).
///
/// Layout: [0] bLength 7, [1] bDescriptorType 5, [2] bEndpointAddress (bit 7 = IN),
/// [3] bmAttributes, [4..6] wMaxPacketSize (LE), [6] bInterval.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// bEndpointAddress: number in bits 0–3, direction in bit 7 (1 = IN).
    pub address: u8,
    /// bmAttributes: transfer type in bits 0–1.
    pub attributes: u8,
    /// wMaxPacketSize.
    pub max_packet_size: u16,
    /// bInterval (polling interval of interrupt endpoints).
    pub interval: u8,
    /// Descriptors that follow this endpoint before the next endpoint or interface, whole
    /// (bLength and bDescriptorType included); some readers put the CCID descriptor here.
    pub extra: Vec<Vec<u8>>,
}

impl Endpoint {
    /// An endpoint of the given address and transfer type, without extra descriptors.
    pub fn new(
        address: u8,
        transfer_type: TransferType,
        max_packet_size: u16,
        interval: u8,
    ) -> Self {
        let attributes = match transfer_type {
            TransferType::Control => 0,
            TransferType::Isochronous => 1,
            TransferType::Bulk => 2,
            TransferType::Interrupt => 3,
        };
        Self {
            address,
            attributes,
            max_packet_size,
            interval,
            extra: Vec::new(),
        }
    }

    /// Whether data flows from the device to the host.
    pub fn is_in(&self) -> bool {
        self.address & 0x80 != 0
    }

    /// The endpoint number (bits 0–3 of the address), as WebUSB's `transferIn`/`transferOut`
    /// take it.
    pub fn number(&self) -> u8 {
        self.address & 0x0F
    }

    /// The transfer type.
    pub fn transfer_type(&self) -> TransferType {
        match self.attributes & 0x03 {
            0 => TransferType::Control,
            1 => TransferType::Isochronous,
            2 => TransferType::Bulk,
            _ => TransferType::Interrupt,
        }
    }
}

/// One alternate setting of an interface (USB 2.0 §9.6.5, table 9-12) with its endpoints.
///
/// Layout: [0] bLength 9, [1] bDescriptorType 4, [2] bInterfaceNumber, [3] bAlternateSetting,
/// [4] bNumEndpoints, [5] bInterfaceClass, [6] bInterfaceSubClass, [7] bInterfaceProtocol,
/// [8] iInterface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interface {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alternate_setting: u8,
    /// bInterfaceClass.
    pub class: u8,
    /// bInterfaceSubClass.
    pub subclass: u8,
    /// bInterfaceProtocol.
    pub protocol: u8,
    /// iInterface.
    pub string_index: u8,
    /// Class-specific descriptors between this interface and its first endpoint, whole.
    pub extra: Vec<Vec<u8>>,
    /// The endpoints, in order (bNumEndpoints is their count).
    pub endpoints: Vec<Endpoint>,
}

/// A configuration descriptor with everything it contains (USB 2.0 §9.6.3, table 9-10).
///
/// Layout of its first 9 bytes: [0] bLength 9, [1] bDescriptorType 2, [2..4] wTotalLength
/// (LE, the whole set), [4] bNumInterfaces, [5] bConfigurationValue, [6] iConfiguration,
/// [7] bmAttributes, [8] bMaxPower (2 mA units). Interface, endpoint and class
/// descriptors follow, each starting with its bLength.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Configuration {
    /// bConfigurationValue.
    pub configuration_value: u8,
    /// iConfiguration.
    pub string_index: u8,
    /// bmAttributes (bit 7 must be set; 0x40 self-powered, 0x20 remote wakeup).
    pub attributes: u8,
    /// bMaxPower in 2 mA units.
    pub max_power: u8,
    /// Every interface alternate setting in order.
    pub interfaces: Vec<Interface>,
    /// Descriptors before the first interface (e.g. an interface association), whole.
    pub extra: Vec<Vec<u8>>,
}

/// Parses a whole configuration descriptor set as GET_DESCRIPTOR(CONFIGURATION) returns it.
///
/// Walks every descriptor by its bLength: a bLength below 2 (or below the size of an
/// interface or endpoint descriptor) and a descriptor running past wTotalLength are errors,
/// so the walk always ends. Bytes beyond wTotalLength are ignored; fewer bytes than
/// wTotalLength is [`DescriptorError::Truncated`]. Descriptors other than interfaces and
/// endpoints are kept whole as `extra` of the endpoint or interface they follow.
pub fn parse_configuration(bytes: &[u8]) -> Result<Configuration, DescriptorError> {
    let mut c = Cursor::new(bytes);
    let header = c.array::<9>().ok_or(DescriptorError::Truncated)?;
    let [length, ty, t0, t1, _num_interfaces, configuration_value, string_index, attributes, max_power] =
        header;
    if ty != dt::CONFIGURATION {
        return Err(DescriptorError::WrongType {
            expected: dt::CONFIGURATION,
            found: ty,
        });
    }
    if length < 9 {
        return Err(DescriptorError::BadLength { offset: 0, length });
    }
    let total = u16::from_le_bytes([t0, t1]);
    if total < u16::from(length) {
        return Err(DescriptorError::BadTotalLength(total));
    }
    let all = bytes
        .get(..usize::from(total))
        .ok_or(DescriptorError::Truncated)?;
    let mut config = Configuration {
        configuration_value,
        string_index,
        attributes,
        max_power,
        interfaces: Vec::new(),
        extra: Vec::new(),
    };
    // Declared bNumEndpoints of the interface being filled.
    let mut declared = 0u8;
    let mut offset = usize::from(length);
    while offset < all.len() {
        let rest = all.get(offset..).unwrap_or_default();
        let mut d = Cursor::new(rest);
        let (Some(len), Some(kind)) = (d.u8(), d.u8()) else {
            return Err(DescriptorError::Overrun { offset });
        };
        if len < 2 {
            return Err(DescriptorError::BadLength {
                offset,
                length: len,
            });
        }
        let desc = rest
            .get(..usize::from(len))
            .ok_or(DescriptorError::Overrun { offset })?;
        match kind {
            dt::INTERFACE => {
                let &[_, _, number, alternate_setting, num_endpoints, class, subclass, protocol, string_index, ..] =
                    desc
                else {
                    return Err(DescriptorError::BadLength {
                        offset,
                        length: len,
                    });
                };
                check_endpoint_count(&config, declared)?;
                declared = num_endpoints;
                config.interfaces.push(Interface {
                    number,
                    alternate_setting,
                    class,
                    subclass,
                    protocol,
                    string_index,
                    extra: Vec::new(),
                    endpoints: Vec::new(),
                });
            }
            dt::ENDPOINT => {
                let &[_, _, address, attributes, p0, p1, interval, ..] = desc else {
                    return Err(DescriptorError::BadLength {
                        offset,
                        length: len,
                    });
                };
                let interface = config
                    .interfaces
                    .last_mut()
                    .ok_or(DescriptorError::OrphanEndpoint { offset })?;
                interface.endpoints.push(Endpoint {
                    address,
                    attributes,
                    max_packet_size: u16::from_le_bytes([p0, p1]),
                    interval,
                    extra: Vec::new(),
                });
            }
            _ => {
                let owner = match config.interfaces.last_mut() {
                    Some(i) => match i.endpoints.last_mut() {
                        Some(e) => &mut e.extra,
                        None => &mut i.extra,
                    },
                    None => &mut config.extra,
                };
                owner.push(desc.to_vec());
            }
        }
        offset += usize::from(len);
    }
    check_endpoint_count(&config, declared)?;
    Ok(config)
}

/// Checks that the last interface got as many endpoints as it declared.
fn check_endpoint_count(config: &Configuration, declared: u8) -> Result<(), DescriptorError> {
    match config.interfaces.last() {
        Some(i) if i.endpoints.len() != usize::from(declared) => {
            Err(DescriptorError::EndpointCountMismatch {
                interface: i.number,
                declared,
                found: i.endpoints.len(),
            })
        }
        _ => Ok(()),
    }
}

/// Checks an extra descriptor: its bLength is its length and it is no interface or endpoint.
fn check_extra(d: &[u8]) -> Result<(), DescriptorError> {
    match d {
        [len, kind, ..]
            if usize::from(*len) == d.len() && *kind != dt::INTERFACE && *kind != dt::ENDPOINT =>
        {
            Ok(())
        }
        _ => Err(DescriptorError::Unencodable("malformed extra descriptor")),
    }
}

impl Configuration {
    /// The number of distinct interfaces (bNumInterfaces: alternate settings count once).
    pub fn num_interfaces(&self) -> usize {
        let mut numbers: Vec<u8> = self.interfaces.iter().map(|i| i.number).collect();
        numbers.sort_unstable();
        numbers.dedup();
        numbers.len()
    }

    /// Encodes the whole set, computing wTotalLength, bNumInterfaces and each bNumEndpoints.
    ///
    /// Fails when the set exceeds 65535 bytes, an interface has more than 255 endpoints or
    /// more than 255 interfaces exist, or an extra descriptor is not one whole descriptor
    /// (its first byte its length) of a type other than interface and endpoint: those could
    /// not be parsed back as they were.
    pub fn encode(&self) -> Result<Vec<u8>, DescriptorError> {
        let num_interfaces = u8::try_from(self.num_interfaces())
            .map_err(|_| DescriptorError::Unencodable("too many interfaces"))?;
        let mut out = vec![
            9,
            dt::CONFIGURATION,
            0,
            0,
            num_interfaces,
            self.configuration_value,
            self.string_index,
            self.attributes,
            self.max_power,
        ];
        for d in &self.extra {
            check_extra(d)?;
            out.extend_from_slice(d);
        }
        for i in &self.interfaces {
            let num_endpoints = u8::try_from(i.endpoints.len())
                .map_err(|_| DescriptorError::Unencodable("too many endpoints"))?;
            out.extend_from_slice(&[
                9,
                dt::INTERFACE,
                i.number,
                i.alternate_setting,
                num_endpoints,
                i.class,
                i.subclass,
                i.protocol,
                i.string_index,
            ]);
            for d in &i.extra {
                check_extra(d)?;
                out.extend_from_slice(d);
            }
            for e in &i.endpoints {
                let [p0, p1] = e.max_packet_size.to_le_bytes();
                out.extend_from_slice(&[
                    7,
                    dt::ENDPOINT,
                    e.address,
                    e.attributes,
                    p0,
                    p1,
                    e.interval,
                ]);
                for d in &e.extra {
                    check_extra(d)?;
                    out.extend_from_slice(d);
                }
            }
        }
        let total = u16::try_from(out.len())
            .map_err(|_| DescriptorError::Unencodable("total length above 65535"))?;
        let [t0, t1] = total.to_le_bytes();
        if let Some(slot) = out.get_mut(2..4) {
            slot.copy_from_slice(&[t0, t1]);
        }
        Ok(out)
    }
}
