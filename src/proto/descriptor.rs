//! USB descriptors as a GET_DESCRIPTOR control transfer returns them (USB 2.0 §9.6), and the
//! CCID class descriptor (CCID Rev 1.1 §5.1).
//!
//! WebUSB exposes interfaces and endpoints but not class-specific descriptors, so the host
//! reads the whole configuration descriptor with a standard GET_DESCRIPTOR(CONFIGURATION)
//! request and finds the CCID interfaces with [`find_ccid_interfaces`].

use super::bytes::Cursor;

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

// ---------------------------------------------------------------------------------------
// Device descriptor (USB 2.0 §9.6.1)
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Configuration descriptor (USB 2.0 §9.6.3, §9.6.5, §9.6.6)
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// CCID class descriptor (CCID §5.1)
// ---------------------------------------------------------------------------------------

/// The exchange level of a reader: bits 16–18 of dwFeatures (CCID §5.1, table 5.1-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeLevel {
    /// 0x00000: character level; the host runs the whole T=0/T=1 protocol byte by byte.
    Character,
    /// 0x10000: TPDU level; the host does T=0 TPDU mapping or the T=1 block protocol.
    Tpdu,
    /// 0x20000: short APDU level; the reader does the transmission protocol.
    ShortApdu,
    /// 0x40000: short and extended APDU level; long APDUs are chained over XfrBlocks.
    ExtendedApdu,
    /// Any other combination of the three bits (undefined).
    Unknown(u32),
}

/// dwFeatures of the CCID class descriptor (CCID §5.1, table 5.1-1; libccid ccid.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Features(pub u32);

impl Features {
    /// 0x02: automatic parameter configuration based on ATR data.
    pub const AUTO_PARAMETERS_FROM_ATR: u32 = 0x0000_0002;
    /// 0x04: automatic activation of the ICC on insertion.
    pub const AUTO_ACTIVATION: u32 = 0x0000_0004;
    /// 0x08: automatic ICC voltage selection.
    pub const AUTO_VOLTAGE: u32 = 0x0000_0008;
    /// 0x10: automatic ICC clock frequency change according to the parameters.
    pub const AUTO_CLOCK: u32 = 0x0000_0010;
    /// 0x20: automatic baud rate change according to frequency and Fi, Di.
    pub const AUTO_BAUD: u32 = 0x0000_0020;
    /// 0x40: automatic parameter negotiation made by the CCID (host must not do PPS).
    pub const AUTO_PARAMETER_NEGOTIATION: u32 = 0x0000_0040;
    /// 0x80: automatic PPS made by the CCID according to the current parameters.
    pub const AUTO_PPS: u32 = 0x0000_0080;
    /// 0x100: the CCID can set the ICC in clock stop mode.
    pub const CLOCK_STOP: u32 = 0x0000_0100;
    /// 0x200: NAD value other than 00 accepted (T=1).
    pub const NAD: u32 = 0x0000_0200;
    /// 0x400: automatic IFSD exchange as first exchange (T=1).
    pub const AUTO_IFSD: u32 = 0x0000_0400;
    /// 0x800: ICCD token (CCID Rev 1.1 errata / ICCD spec).
    pub const ICCD_TOKEN: u32 = 0x0000_0800;
    /// Mask of the exchange level bits.
    pub const EXCHANGE_LEVEL_MASK: u32 = 0x0007_0000;
    /// 0x100000: USB wake-up signaling on card insertion and removal.
    pub const USB_WAKE_UP: u32 = 0x0010_0000;

    /// The raw dwFeatures.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `mask` is set.
    pub fn contains(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// 0x02, see [`Features::AUTO_PARAMETERS_FROM_ATR`].
    pub fn auto_parameters_from_atr(self) -> bool {
        self.contains(Self::AUTO_PARAMETERS_FROM_ATR)
    }

    /// 0x04, see [`Features::AUTO_ACTIVATION`].
    pub fn auto_activation(self) -> bool {
        self.contains(Self::AUTO_ACTIVATION)
    }

    /// 0x08, see [`Features::AUTO_VOLTAGE`].
    pub fn auto_voltage(self) -> bool {
        self.contains(Self::AUTO_VOLTAGE)
    }

    /// 0x10, see [`Features::AUTO_CLOCK`].
    pub fn auto_clock(self) -> bool {
        self.contains(Self::AUTO_CLOCK)
    }

    /// 0x20, see [`Features::AUTO_BAUD`].
    pub fn auto_baud(self) -> bool {
        self.contains(Self::AUTO_BAUD)
    }

    /// 0x40, see [`Features::AUTO_PARAMETER_NEGOTIATION`].
    pub fn auto_parameter_negotiation(self) -> bool {
        self.contains(Self::AUTO_PARAMETER_NEGOTIATION)
    }

    /// 0x80, see [`Features::AUTO_PPS`].
    pub fn auto_pps(self) -> bool {
        self.contains(Self::AUTO_PPS)
    }

    /// 0x100, see [`Features::CLOCK_STOP`].
    pub fn clock_stop(self) -> bool {
        self.contains(Self::CLOCK_STOP)
    }

    /// 0x200, see [`Features::NAD`].
    pub fn nad(self) -> bool {
        self.contains(Self::NAD)
    }

    /// 0x400, see [`Features::AUTO_IFSD`].
    pub fn auto_ifsd(self) -> bool {
        self.contains(Self::AUTO_IFSD)
    }

    /// 0x800, see [`Features::ICCD_TOKEN`].
    pub fn iccd_token(self) -> bool {
        self.contains(Self::ICCD_TOKEN)
    }

    /// 0x100000, see [`Features::USB_WAKE_UP`].
    pub fn usb_wake_up(self) -> bool {
        self.contains(Self::USB_WAKE_UP)
    }

    /// The exchange level (bits 16–18).
    pub fn exchange_level(self) -> ExchangeLevel {
        match self.0 & Self::EXCHANGE_LEVEL_MASK {
            0x0000_0000 => ExchangeLevel::Character,
            0x0001_0000 => ExchangeLevel::Tpdu,
            0x0002_0000 => ExchangeLevel::ShortApdu,
            0x0004_0000 => ExchangeLevel::ExtendedApdu,
            other => ExchangeLevel::Unknown(other),
        }
    }
}

/// The 54-byte CCID class descriptor (CCID Rev 1.1 §5.1, table 5.1-1).
///
/// Byte offsets are given per field; multi-byte fields are little-endian. bLength (offset 0)
/// is always 54 and is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CcidClassDescriptor {
    /// Offset 1, bDescriptorType: 0x21, or 0xFF on some pre-standard readers.
    pub descriptor_type: u8,
    /// Offset 2, bcdCCID: the CCID release number, 0x0110 for Rev 1.1.
    pub bcd_ccid: u16,
    /// Offset 4, bMaxSlotIndex: highest slot number (0 for a single-slot reader).
    pub max_slot_index: u8,
    /// Offset 5, bVoltageSupport: bit 0 5.0 V, bit 1 3.0 V, bit 2 1.8 V.
    pub voltage_support: u8,
    /// Offset 6, dwProtocols: bit 0 T=0, bit 1 T=1.
    pub protocols: u32,
    /// Offset 10, dwDefaultClock: default card clock in kHz.
    pub default_clock: u32,
    /// Offset 14, dwMaximumClock: maximum card clock in kHz.
    pub maximum_clock: u32,
    /// Offset 18, bNumClockSupported: number of clock frequencies GET_CLOCK_FREQUENCIES
    /// returns (0: only the default and maximum).
    pub num_clock_supported: u8,
    /// Offset 19, dwDataRate: default data rate in bit/s.
    pub data_rate: u32,
    /// Offset 23, dwMaxDataRate: maximum data rate in bit/s.
    pub max_data_rate: u32,
    /// Offset 27, bNumDataRatesSupported: number of rates GET_DATA_RATES returns.
    pub num_data_rates_supported: u8,
    /// Offset 28, dwMaxIFSD: largest IFSD the reader accepts for T=1.
    pub max_ifsd: u32,
    /// Offset 32, dwSynchProtocols: bit 0 2-wire, bit 1 3-wire, bit 2 I2C.
    pub synch_protocols: u32,
    /// Offset 36, dwMechanical: bit 0 accept, 1 eject, 2 capture, 3 lock/unlock.
    pub mechanical: u32,
    /// Offset 40, dwFeatures: automatisms and exchange level.
    pub features: Features,
    /// Offset 44, dwMaxCCIDMessageLength: longest bulk message, 10-byte header included.
    pub max_ccid_message_length: u32,
    /// Offset 48, bClassGetResponse: class byte of automatic GET RESPONSE, 0xFF = echo.
    pub class_get_response: u8,
    /// Offset 49, bClassEnvelope: class byte of automatic ENVELOPE, 0xFF = echo.
    pub class_envelope: u8,
    /// Offset 50, wLcdLayout: 0 none, else lines in the high byte and characters per line
    /// in the low byte.
    pub lcd_layout: u16,
    /// Offset 52, bPINSupport: bit 0 PIN verification, bit 1 PIN modification.
    pub pin_support: u8,
    /// Offset 53, bMaxCCIDBusySlots: how many slots may run a command at the same time.
    pub max_ccid_busy_slots: u8,
}

impl CcidClassDescriptor {
    /// bLength of the descriptor.
    pub const LENGTH: u8 = 54;

    /// Decodes exactly one 54-byte descriptor of type 0x21 or 0xFF.
    pub fn decode(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let mut c = Cursor::new(bytes);
        let length = c.u8().ok_or(DescriptorError::Truncated)?;
        if length != Self::LENGTH {
            return Err(DescriptorError::BadCcidLength(length));
        }
        match bytes.len().cmp(&usize::from(Self::LENGTH)) {
            std::cmp::Ordering::Less => return Err(DescriptorError::Truncated),
            std::cmp::Ordering::Greater => return Err(DescriptorError::TrailingBytes),
            std::cmp::Ordering::Equal => {}
        }
        let descriptor_type = c.u8().ok_or(DescriptorError::Truncated)?;
        if descriptor_type != dt::CCID && descriptor_type != dt::CCID_PROPRIETARY {
            return Err(DescriptorError::BadCcidType(descriptor_type));
        }
        let mut read = || -> Option<Self> {
            Some(Self {
                descriptor_type,
                bcd_ccid: c.u16_le()?,
                max_slot_index: c.u8()?,
                voltage_support: c.u8()?,
                protocols: c.u32_le()?,
                default_clock: c.u32_le()?,
                maximum_clock: c.u32_le()?,
                num_clock_supported: c.u8()?,
                data_rate: c.u32_le()?,
                max_data_rate: c.u32_le()?,
                num_data_rates_supported: c.u8()?,
                max_ifsd: c.u32_le()?,
                synch_protocols: c.u32_le()?,
                mechanical: c.u32_le()?,
                features: Features(c.u32_le()?),
                max_ccid_message_length: c.u32_le()?,
                class_get_response: c.u8()?,
                class_envelope: c.u8()?,
                lcd_layout: c.u16_le()?,
                pin_support: c.u8()?,
                max_ccid_busy_slots: c.u8()?,
            })
        };
        read().ok_or(DescriptorError::Truncated)
    }

    /// The 54 bytes.
    pub fn encode(&self) -> [u8; 54] {
        let mut out = Vec::with_capacity(54);
        out.extend_from_slice(&[Self::LENGTH, self.descriptor_type]);
        out.extend_from_slice(&self.bcd_ccid.to_le_bytes());
        out.extend_from_slice(&[self.max_slot_index, self.voltage_support]);
        out.extend_from_slice(&self.protocols.to_le_bytes());
        out.extend_from_slice(&self.default_clock.to_le_bytes());
        out.extend_from_slice(&self.maximum_clock.to_le_bytes());
        out.push(self.num_clock_supported);
        out.extend_from_slice(&self.data_rate.to_le_bytes());
        out.extend_from_slice(&self.max_data_rate.to_le_bytes());
        out.push(self.num_data_rates_supported);
        out.extend_from_slice(&self.max_ifsd.to_le_bytes());
        out.extend_from_slice(&self.synch_protocols.to_le_bytes());
        out.extend_from_slice(&self.mechanical.to_le_bytes());
        out.extend_from_slice(&self.features.0.to_le_bytes());
        out.extend_from_slice(&self.max_ccid_message_length.to_le_bytes());
        out.extend_from_slice(&[self.class_get_response, self.class_envelope]);
        out.extend_from_slice(&self.lcd_layout.to_le_bytes());
        out.extend_from_slice(&[self.pin_support, self.max_ccid_busy_slots]);
        let mut b = [0u8; 54];
        // INVARIANT: exactly 54 bytes were pushed above, so the lengths match.
        b.copy_from_slice(&out);
        b
    }

    /// The exchange level from dwFeatures.
    pub fn exchange_level(&self) -> ExchangeLevel {
        self.features.exchange_level()
    }

    /// Whether the reader supports T=0 (dwProtocols bit 0).
    pub fn supports_t0(&self) -> bool {
        self.protocols & 0x01 != 0
    }

    /// Whether the reader supports T=1 (dwProtocols bit 1).
    pub fn supports_t1(&self) -> bool {
        self.protocols & 0x02 != 0
    }

    /// The number of slots: bMaxSlotIndex + 1.
    pub fn slot_count(&self) -> usize {
        usize::from(self.max_slot_index) + 1
    }

    /// bMaxCCIDBusySlots: how many slots may have a command in flight at once.
    pub fn max_busy_slots(&self) -> u8 {
        self.max_ccid_busy_slots
    }

    /// Whether the PIN pad can verify a PIN (bPINSupport bit 0).
    pub fn pin_verify(&self) -> bool {
        self.pin_support & 0x01 != 0
    }

    /// Whether the PIN pad can change a PIN (bPINSupport bit 1).
    pub fn pin_modify(&self) -> bool {
        self.pin_support & 0x02 != 0
    }

    /// Whether the reader can power a card at 5.0 V (bVoltageSupport bit 0).
    pub fn supports_5v(&self) -> bool {
        self.voltage_support & 0x01 != 0
    }

    /// Whether the reader can power a card at 3.0 V (bVoltageSupport bit 1).
    pub fn supports_3v(&self) -> bool {
        self.voltage_support & 0x02 != 0
    }

    /// Whether the reader can power a card at 1.8 V (bVoltageSupport bit 2).
    pub fn supports_1_8v(&self) -> bool {
        self.voltage_support & 0x04 != 0
    }

    /// dwMaxCCIDMessageLength: the longest bulk message, header included. A command's
    /// abData may hold at most this minus 10 bytes.
    pub fn max_message_length(&self) -> u32 {
        self.max_ccid_message_length
    }

    /// dwMaxIFSD: the IFSD to announce with S(IFS request) at T=1.
    pub fn max_ifsd(&self) -> u32 {
        self.max_ifsd
    }
}

// ---------------------------------------------------------------------------------------
// Finding CCID interfaces (libccid's rule)
// ---------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    // readers/GemPCTwin.txt (libccid), rebuilt from its printed values (CCID §5.1).
    const GEMPCTWIN_CCID: &str = "36 21 00 01 00 07 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00
        00 2A 00 00 16 40 05 00 00 FE 00 00 00 00 00 00 00 00 00 00 00 30 02 01 00
        0F 01 00 00 00 00 00 00 00 01";

    /// A GemPCTwin-like configuration: interface 0 class 0x0B, the CCID descriptor,
    /// bulk-OUT 0x02, bulk-IN 0x81 (64 bytes), interrupt-IN 0x83 (8 bytes, interval 16).
    fn gempctwin_config() -> Vec<u8> {
        let mut v = h("09 02 5D 00 01 01 00 80 32  09 04 00 00 03 0B 00 00 00");
        v.extend(h(GEMPCTWIN_CCID));
        v.extend(h(
            "07 05 02 02 40 00 00  07 05 81 02 40 00 00  07 05 83 03 08 00 10",
        ));
        v
    }

    #[test]
    fn device_descriptor() {
        // USB 2.0 §9.6.1: a GemPCTwin (08E6:3437, bcdDevice 1.00).
        let bytes = h("12 01 00 02 00 00 00 40 E6 08 37 34 00 01 01 02 00 01");
        let d = DeviceDescriptor::decode(&bytes).unwrap();
        assert_eq!(
            (d.vendor_id, d.product_id, d.device_version),
            (0x08E6, 0x3437, 0x0100)
        );
        assert_eq!(
            (d.usb_version, d.max_packet_size0, d.num_configurations),
            (0x0200, 64, 1)
        );
        assert_eq!(d.encode().to_vec(), bytes);
        assert_eq!(
            DeviceDescriptor::decode(&bytes[..17]),
            Err(DescriptorError::Truncated)
        );
        assert_eq!(
            DeviceDescriptor::decode(&h("12 02")),
            Err(DescriptorError::WrongType {
                expected: 1,
                found: 2
            })
        );
        assert_eq!(
            DeviceDescriptor::decode(&h("11 01 00 02")),
            Err(DescriptorError::BadLength {
                offset: 0,
                length: 0x11
            })
        );
    }

    #[test]
    fn ccid_class_descriptor() {
        let bytes = h(GEMPCTWIN_CCID);
        assert_eq!(bytes.len(), 54);
        let d = CcidClassDescriptor::decode(&bytes).unwrap();
        assert_eq!(d.bcd_ccid, 0x0100);
        assert_eq!((d.default_clock, d.maximum_clock), (4000, 4000));
        assert_eq!(
            (d.data_rate, d.max_data_rate, d.max_ifsd),
            (10752, 344_086, 254)
        );
        assert_eq!(d.features, Features(0x0001_0230));
        assert_eq!(d.exchange_level(), ExchangeLevel::Tpdu);
        assert_eq!(
            (d.max_message_length(), d.slot_count(), d.max_busy_slots()),
            (271, 1, 1)
        );
        assert!(d.supports_t0() && d.supports_t1() && !d.pin_verify() && !d.pin_modify());
        assert_eq!(d.encode().to_vec(), bytes);

        let mut proprietary = bytes.clone();
        proprietary[1] = 0xFF;
        assert_eq!(
            CcidClassDescriptor::decode(&proprietary)
                .unwrap()
                .descriptor_type,
            0xFF
        );
        let mut hid = bytes.clone();
        hid[1] = 0x22;
        assert_eq!(
            CcidClassDescriptor::decode(&hid),
            Err(DescriptorError::BadCcidType(0x22))
        );
        assert_eq!(
            CcidClassDescriptor::decode(&bytes[..53]),
            Err(DescriptorError::Truncated)
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            CcidClassDescriptor::decode(&long),
            Err(DescriptorError::TrailingBytes)
        );
        assert_eq!(
            CcidClassDescriptor::decode(&h("09 21 10 01 00 01 22 00 00")),
            Err(DescriptorError::BadCcidLength(9))
        );
    }

    #[test]
    fn features_and_levels() {
        // readers/Yubico_Yubikey_4_CCID.txt: 0x000400FE, short and extended APDU.
        let f = Features(0x0004_00FE);
        assert_eq!(f.exchange_level(), ExchangeLevel::ExtendedApdu);
        assert!(f.auto_parameters_from_atr() && f.auto_activation() && f.auto_voltage());
        assert!(f.auto_clock() && f.auto_baud() && f.auto_parameter_negotiation() && f.auto_pps());
        assert!(
            !f.clock_stop() && !f.nad() && !f.auto_ifsd() && !f.iccd_token() && !f.usb_wake_up()
        );
        let all = Features(0x0012_0F00);
        assert!(
            all.clock_stop()
                && all.nad()
                && all.auto_ifsd()
                && all.iccd_token()
                && all.usb_wake_up()
        );
        assert_eq!(all.exchange_level(), ExchangeLevel::ShortApdu);
        assert_eq!(Features(0).exchange_level(), ExchangeLevel::Character);
        assert_eq!(
            Features(0x0003_0000).exchange_level(),
            ExchangeLevel::Unknown(0x0003_0000)
        );
    }

    #[test]
    fn configuration_round_trip() {
        let bytes = gempctwin_config();
        let config = parse_configuration(&bytes).unwrap();
        assert_eq!(
            (
                config.configuration_value,
                config.attributes,
                config.max_power
            ),
            (1, 0x80, 0x32)
        );
        let [interface] = config.interfaces.as_slice() else {
            panic!("one interface")
        };
        assert_eq!(
            (
                interface.class,
                interface.extra.len(),
                interface.endpoints.len()
            ),
            (0x0B, 1, 3)
        );
        let [out, bulk_in, int] = interface.endpoints.as_slice() else {
            panic!("three endpoints")
        };
        assert_eq!(
            (out.transfer_type(), out.is_in(), out.number()),
            (TransferType::Bulk, false, 2)
        );
        assert_eq!((bulk_in.address, bulk_in.max_packet_size), (0x81, 64));
        assert_eq!(
            (int.transfer_type(), int.interval, int.max_packet_size),
            (TransferType::Interrupt, 16, 8)
        );
        assert_eq!(config.encode().unwrap(), bytes);
        assert_eq!(config.num_interfaces(), 1);

        let found = find_ccid_interfaces(&bytes).unwrap();
        let [reader] = found.as_slice() else {
            panic!("one reader")
        };
        assert_eq!(
            reader.descriptor,
            CcidClassDescriptor::decode(&h(GEMPCTWIN_CCID)).unwrap()
        );
        assert_eq!(reader.bulk_out.as_ref().map(Endpoint::number), Some(2));
        assert_eq!(reader.bulk_in.as_ref().map(Endpoint::number), Some(1));
        assert_eq!(reader.interrupt_in.as_ref().map(Endpoint::number), Some(3));
        assert!(!reader.is_iccd() && !reader.is_vendor_class());

        // Trailing bytes beyond wTotalLength are ignored.
        let mut longer = bytes.clone();
        longer.extend(h("00 00"));
        assert_eq!(parse_configuration(&longer).unwrap(), config);
    }

    #[test]
    fn descriptor_after_endpoints() {
        // libccid O2MICRO_OZ776_PATCH: the CCID descriptor follows the last endpoint.
        let mut bytes = h("09 02 5D 00 01 01 00 80 32  09 04 00 00 03 FF 00 00 00");
        bytes.extend(h(
            "07 05 02 02 40 00 00  07 05 81 02 40 00 00  07 05 83 03 08 00 10",
        ));
        bytes.extend(h(GEMPCTWIN_CCID));
        let config = parse_configuration(&bytes).unwrap();
        assert!(config.interfaces[0].extra.is_empty());
        assert_eq!(config.interfaces[0].endpoints[2].extra.len(), 1);
        assert_eq!(config.encode().unwrap(), bytes);
        let found = find_ccid_interfaces(&bytes).unwrap();
        assert_eq!(found.len(), 1);
        assert!(found[0].is_vendor_class());
        assert_eq!(found[0].descriptor.max_message_length(), 271);
    }

    #[test]
    fn which_interfaces_are_ccid() {
        // A composite device: HID interface 0 with a 9-byte HID descriptor (type 0x21 too),
        // vendor interface 1 without a CCID descriptor, ICCD-B interface 2 (control only).
        let mut bytes = h("09 02 00 00 03 01 00 80 32");
        bytes.extend(h(
            "09 04 00 00 01 03 00 00 00  09 21 10 01 00 01 22 20 00  07 05 84 03 08 00 0A",
        ));
        bytes.extend(h("09 04 01 00 00 FF 00 00 00"));
        bytes.extend(h("09 04 02 00 00 0B 00 02 00"));
        let mut ccid = h(GEMPCTWIN_CCID);
        ccid[40..44].copy_from_slice(&[0xFE, 0x08, 0x04, 0x00]);
        bytes.extend(&ccid);
        let total = u16::try_from(bytes.len()).unwrap().to_le_bytes();
        bytes[2..4].copy_from_slice(&total);
        let found = find_ccid_interfaces(&bytes).unwrap();
        let [iccd] = found.as_slice() else {
            panic!("only interface 2")
        };
        assert_eq!((iccd.number, iccd.protocol), (2, 2));
        assert!(iccd.is_iccd());
        assert!(iccd.bulk_in.is_none() && iccd.bulk_out.is_none() && iccd.interrupt_in.is_none());
        assert!(iccd.descriptor.features.iccd_token());
        assert_eq!(parse_configuration(&bytes).unwrap().num_interfaces(), 3);
    }

    #[test]
    fn alternate_settings() {
        let mut bytes = h("09 02 00 00 01 01 00 80 32");
        bytes.extend(h("09 04 00 00 00 FF 00 00 00"));
        bytes.extend(h("09 04 00 01 02 FF 00 00 00"));
        bytes.extend(h(GEMPCTWIN_CCID));
        bytes.extend(h("07 05 01 02 40 00 00  07 05 82 02 40 00 00"));
        let total = u16::try_from(bytes.len()).unwrap().to_le_bytes();
        bytes[2..4].copy_from_slice(&total);
        let config = parse_configuration(&bytes).unwrap();
        assert_eq!((config.interfaces.len(), config.num_interfaces()), (2, 1));
        let found = find_ccid_interfaces(&bytes).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].alternate_setting, 1);
        assert!(found[0].interrupt_in.is_none());
        assert_eq!(config.encode().unwrap(), bytes);
    }

    #[test]
    fn malformed_configurations() {
        let good = gempctwin_config();
        assert_eq!(
            parse_configuration(&good[..8]),
            Err(DescriptorError::Truncated)
        );
        assert_eq!(
            parse_configuration(&good[..92]),
            Err(DescriptorError::Truncated)
        );
        let mut zero = good.clone();
        zero[9] = 0;
        assert_eq!(
            parse_configuration(&zero),
            Err(DescriptorError::BadLength {
                offset: 9,
                length: 0
            })
        );
        let mut overrun = good.clone();
        overrun[86] = 0x20;
        assert_eq!(
            parse_configuration(&overrun),
            Err(DescriptorError::Overrun { offset: 86 })
        );
        let mut short_interface = h("09 02 0F 00 01 01 00 80 32  06 04 00 00 00 0B");
        short_interface.truncate(15);
        assert_eq!(
            parse_configuration(&short_interface),
            Err(DescriptorError::BadLength {
                offset: 9,
                length: 6
            })
        );
        assert_eq!(
            parse_configuration(&h("09 02 10 00 01 01 00 80 32  07 05 81 02 40 00 00")),
            Err(DescriptorError::OrphanEndpoint { offset: 9 })
        );
        let mut missing_endpoint = good.clone();
        missing_endpoint[13] = 4;
        assert_eq!(
            parse_configuration(&missing_endpoint),
            Err(DescriptorError::EndpointCountMismatch {
                interface: 0,
                declared: 4,
                found: 3
            })
        );
        assert_eq!(
            parse_configuration(&h("09 02 05 00 00 01 00 80 32")),
            Err(DescriptorError::BadTotalLength(5))
        );
        assert_eq!(
            parse_configuration(&h("09 01 09 00 00 01 00 80 32")),
            Err(DescriptorError::WrongType {
                expected: 2,
                found: 1
            })
        );
        let mut config = parse_configuration(&good).unwrap();
        config.interfaces[0].extra.push(h("05 24 00"));
        assert_eq!(
            config.encode(),
            Err(DescriptorError::Unencodable("malformed extra descriptor"))
        );
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use super::*;
    use proptest::prelude::*;

    fn extra() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(
            (
                prop_oneof![Just(0x21u8), Just(0x24), Just(0xFF), Just(0x0B)],
                proptest::collection::vec(any::<u8>(), 0..60),
            )
                .prop_map(|(kind, body)| {
                    let mut d = vec![u8::try_from(body.len() + 2).unwrap_or(2), kind];
                    d.extend(body);
                    d
                }),
            0..3,
        )
    }

    fn endpoint() -> impl Strategy<Value = Endpoint> {
        (any::<u8>(), any::<u8>(), any::<u16>(), any::<u8>(), extra()).prop_map(
            |(address, attributes, max_packet_size, interval, extra)| Endpoint {
                address,
                attributes,
                max_packet_size,
                interval,
                extra,
            },
        )
    }

    fn configuration() -> impl Strategy<Value = Configuration> {
        let interface = (
            any::<[u8; 6]>(),
            extra(),
            proptest::collection::vec(endpoint(), 0..4),
        )
            .prop_map(
                |(
                    [number, alternate_setting, class, subclass, protocol, string_index],
                    extra,
                    endpoints,
                )| Interface {
                    number,
                    alternate_setting,
                    class,
                    subclass,
                    protocol,
                    string_index,
                    extra,
                    endpoints,
                },
            );
        (
            any::<[u8; 4]>(),
            proptest::collection::vec(interface, 0..4),
            extra(),
        )
            .prop_map(
                |(
                    [configuration_value, string_index, attributes, max_power],
                    interfaces,
                    extra,
                )| Configuration {
                    configuration_value,
                    string_index,
                    attributes,
                    max_power,
                    interfaces,
                    extra,
                },
            )
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_configuration(&bytes);
            let _ = find_ccid_interfaces(&bytes);
            let _ = DeviceDescriptor::decode(&bytes);
            let _ = CcidClassDescriptor::decode(&bytes);
        }

        #[test]
        fn parser_never_panics_on_plausible_sets(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            kinds in proptest::collection::vec(prop_oneof![Just(4u8), Just(5u8), Just(0x21u8)], 0..10),
        ) {
            let mut bytes = vec![9, 2, 0, 0, 1, 1, 0, 0x80, 0x32];
            for (chunk, kind) in body.chunks(9).zip(kinds.iter().cycle()) {
                bytes.push(u8::try_from(chunk.len() + 2).unwrap_or(0));
                bytes.push(*kind);
                bytes.extend_from_slice(chunk);
            }
            let total = u16::try_from(bytes.len()).unwrap_or(0).to_le_bytes();
            bytes[2] = total[0];
            bytes[3] = total[1];
            let _ = find_ccid_interfaces(&bytes);
        }

        #[test]
        fn configuration_round_trips(config in configuration()) {
            let bytes = config.encode().unwrap();
            prop_assert_eq!(parse_configuration(&bytes), Ok(config));
        }

        #[test]
        fn ccid_descriptor_round_trips(mut bytes in proptest::collection::vec(any::<u8>(), 54), proprietary in any::<bool>()) {
            bytes[0] = 54;
            bytes[1] = if proprietary { 0xFF } else { 0x21 };
            let d = CcidClassDescriptor::decode(&bytes).unwrap();
            prop_assert_eq!(d.encode().to_vec(), bytes);
        }

        #[test]
        fn device_descriptor_round_trips(mut bytes in proptest::collection::vec(any::<u8>(), 18)) {
            bytes[0] = 18;
            bytes[1] = 1;
            let d = DeviceDescriptor::decode(&bytes).unwrap();
            prop_assert_eq!(d.encode().to_vec(), bytes);
        }
    }
}
