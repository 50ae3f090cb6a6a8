//! Reader profiles from the text dumps of libccid's `parse` tool.
//!
//! libccid (LudovicRousseau/CCID, folder `readers/`) keeps one dump per real reader: the
//! device's identifiers, then for each CCID interface its interface descriptor and every
//! field of its CCID class descriptor (CCID Rev 1.1 §5.1), each with the lines `parse`
//! prints to explain it. A [`ReaderProfile`] holds all of it and can rebuild the reader's
//! descriptors byte for byte where the dump gives them (the class descriptor) and
//! plausibly where it does not (endpoint addresses and packet sizes), so a simulated
//! reader can present itself as any of the real ones.
//!
//! The format, as printed by libccid's `src/parse.c` (one space of indentation for device
//! and interface fields, two for class descriptor fields, three or more for the lines that
//! explain a field):
//!
//! ```text
//!  idVendor: 0x08E6
//!   iManufacturer: Gemplus
//!  bcdDevice: 1.00 (firmware release?)
//!  bNumEndpoints: 3
//!   bulk-IN, bulk-OUT and Interrupt-IN
//!  bInterfaceClass: 0x0B [Chip Card Interface Device Class (CCID)]
//!  CCID Class Descriptor
//!   dwDefaultClock: 4.000 MHz
//!   dwFeatures: 0x00010230
//!    ....10 Automatic ICC clock frequency change according to parameters
//! ```
//!
//! A file with several CCID interfaces repeats the whole dump, device lines included, once
//! per interface. Older dumps lack some explanation lines or word them differently; the
//! parser keeps every explanation line as written and reads only the values.

use crate::proto::descriptor::{
    CcidClassDescriptor, Configuration, DescriptorError, DeviceDescriptor, Endpoint, Features,
    Interface, TransferType,
};

/// A dump that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A line before the first `idVendor` line.
    #[error("line {line}: text before the first idVendor")]
    UnexpectedLine {
        /// 1-based line number.
        line: usize,
    },
    /// A field every dump has is missing.
    #[error("interface {interface}: missing field {field}")]
    MissingField {
        /// Index of the interface block (0 for the device fields of the first block).
        interface: usize,
        /// The field name.
        field: &'static str,
    },
    /// A field value that does not read as its type.
    #[error("bad value {value:?} for {field}")]
    BadValue {
        /// The field name.
        field: &'static str,
        /// The value as written.
        value: String,
    },
    /// The dump names no interface.
    #[error("no interface")]
    NoInterface,
    /// More interfaces than distinct endpoint numbers can serve (five).
    #[error("too many interfaces for distinct endpoints")]
    TooManyInterfaces,
    /// The rebuilt configuration does not encode.
    #[error("cannot build the configuration")]
    Descriptor(#[from] DescriptorError),
}

/// One `name: value` line of a dump with the explanation lines printed under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpField {
    /// The field name, e.g. `dwFeatures`; for a `Can't get iInterface string` line, the
    /// field it concerns (`iInterface`) with an empty value.
    pub name: String,
    /// The text after `name: `, trailing blanks removed.
    pub value: String,
    /// The explanation lines, without indentation (a line wrapped in the dump is joined).
    pub notes: Vec<String>,
}

/// Which endpoints the dump names for an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DumpEndpoints {
    /// A bulk-IN endpoint.
    pub bulk_in: bool,
    /// A bulk-OUT endpoint.
    pub bulk_out: bool,
    /// An interrupt-IN endpoint.
    pub interrupt_in: bool,
}

/// One CCID interface of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInterface {
    /// bInterfaceNumber.
    pub number: u8,
    /// bAlternateSetting.
    pub alternate_setting: u8,
    /// bNumEndpoints.
    pub num_endpoints: u8,
    /// The endpoints named by the line under bNumEndpoints (from the count when the dump
    /// has no such line: 3 all, 2 bulk pair, 1 interrupt, 0 none).
    pub endpoints: DumpEndpoints,
    /// bInterfaceClass.
    pub class: u8,
    /// bInterfaceSubClass.
    pub subclass: u8,
    /// bInterfaceProtocol.
    pub protocol: u8,
    /// The iInterface string, when the dump has one.
    pub interface_string: Option<String>,
    /// The class descriptor, when the dump has one.
    pub class_descriptor: Option<CcidClassDescriptor>,
    /// The interface lines as written (bLength … iInterface).
    pub fields: Vec<DumpField>,
    /// The class descriptor lines as written (bLength … bMaxCCIDBusySlots).
    pub class_fields: Vec<DumpField>,
}

impl ProfileInterface {
    /// The interface line of that name.
    pub fn field(&self, name: &str) -> Option<&DumpField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The class descriptor line of that name.
    pub fn class_field(&self, name: &str) -> Option<&DumpField> {
        self.class_fields.iter().find(|f| f.name == name)
    }
}

/// A real reader as its libccid dump describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderProfile {
    /// idVendor.
    pub vendor_id: u16,
    /// idProduct.
    pub product_id: u16,
    /// The iManufacturer string, when the dump has one.
    pub manufacturer: Option<String>,
    /// The iProduct string, when the dump has one.
    pub product: Option<String>,
    /// bcdDevice.
    pub device_version: u16,
    /// The CCID interfaces, in the dump's order.
    pub interfaces: Vec<ProfileInterface>,
}

const DEVICE_KEYS: &[&str] = &[
    "idVendor",
    "iManufacturer",
    "idProduct",
    "iProduct",
    "bcdDevice",
];
const INTERFACE_KEYS: &[&str] = &[
    "bLength",
    "bDescriptorType",
    "bInterfaceNumber",
    "bAlternateSetting",
    "bNumEndpoints",
    "bInterfaceClass",
    "bInterfaceSubClass",
    "bInterfaceProtocol",
    "iInterface",
];
const CLASS_KEYS: &[&str] = &[
    "bLength",
    "bDescriptorType",
    "bcdCCID",
    "bMaxSlotIndex",
    "bVoltageSupport",
    "dwProtocols",
    "dwDefaultClock",
    "dwMaximumClock",
    "bNumClockSupported",
    "dwDataRate",
    "dwMaxDataRate",
    "bNumDataRatesSupported",
    "dwMaxIFSD",
    "dwSynchProtocols",
    "dwMechanical",
    "dwFeatures",
    "dwMaxCCIDMessageLength",
    "bClassGetResponse",
    "bClassEnvelope",
    "wLcdLayout",
    "bPINSupport",
    "bMaxCCIDBusySlots",
];

/// Where lines go while reading one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Device,
    Interface,
    Class,
}

/// The lines of one repetition of the dump (one interface).
#[derive(Debug, Default, PartialEq, Eq)]
struct Block {
    device: Vec<DumpField>,
    interface: Vec<DumpField>,
    class: Option<Vec<DumpField>>,
}

/// Splits `name: value` when `name` is one word of letters.
fn split_field(content: &str) -> Option<(&str, &str)> {
    let (name, value) = content.split_once(':')?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((name, value.strip_prefix(' ').unwrap_or(value).trim_end()))
}

/// Reads `Can't get iInterface string[: reason]` as the field it concerns.
fn cant_get(content: &str) -> Option<&str> {
    let rest = content.strip_prefix("Can't get ")?;
    let (name, _) = rest.split_once(" string")?;
    Some(name)
}

fn find<'a>(fields: &'a [DumpField], name: &str) -> Option<&'a DumpField> {
    fields.iter().find(|f| f.name == name)
}

fn bad(field: &'static str, value: &str) -> ProfileError {
    ProfileError::BadValue {
        field,
        value: value.to_owned(),
    }
}

/// The first blank-separated word of a value.
fn first_word(value: &str) -> &str {
    value.split_whitespace().next().unwrap_or("")
}

/// `0x0B` (and whatever follows) as a number.
fn hex_value(field: &'static str, value: &str) -> Result<u32, ProfileError> {
    let word = first_word(value);
    let digits = word
        .strip_prefix("0x")
        .or_else(|| word.strip_prefix("0X"))
        .ok_or_else(|| bad(field, value))?;
    u32::from_str_radix(digits, 16).map_err(|_| bad(field, value))
}

/// A decimal number as C's `%d` prints it: negative values are the u32 read as i32.
fn dec_value(field: &'static str, value: &str) -> Result<u32, ProfileError> {
    let word = first_word(value);
    let n: i64 = word.parse().map_err(|_| bad(field, value))?;
    if let Ok(v) = u32::try_from(n) {
        return Ok(v);
    }
    let v = i32::try_from(n).map_err(|_| bad(field, value))?;
    Ok(u32::from_le_bytes(v.to_le_bytes()))
}

/// `%X.%02X` of a BCD version: `1.10` is 0x0110, `F0.F0` is 0xF0F0.
fn bcd_value(field: &'static str, value: &str) -> Result<u16, ProfileError> {
    let (major, minor) = first_word(value)
        .split_once('.')
        .ok_or_else(|| bad(field, value))?;
    let major = u8::from_str_radix(major, 16).map_err(|_| bad(field, value))?;
    let minor = u8::from_str_radix(minor, 16).map_err(|_| bad(field, value))?;
    Ok(u16::from_be_bytes([major, minor]))
}

/// `%.3f MHz` of a clock in kHz: `4.000` is 4000 kHz.
fn mhz_value(field: &'static str, value: &str) -> Result<u32, ProfileError> {
    let (int, frac) = first_word(value)
        .split_once('.')
        .ok_or_else(|| bad(field, value))?;
    if frac.len() != 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(field, value));
    }
    let int: u32 = int.parse().map_err(|_| bad(field, value))?;
    let frac: u32 = frac.parse().map_err(|_| bad(field, value))?;
    int.checked_mul(1000)
        .and_then(|k| k.checked_add(frac))
        .ok_or_else(|| bad(field, value))
}

/// `0x%02X%02X 0x%02X%02X` of dwProtocols: high half first.
fn protocols_value(field: &'static str, value: &str) -> Result<u32, ProfileError> {
    let mut words = value.split_whitespace();
    let (Some(high), Some(low)) = (words.next(), words.next()) else {
        return Err(bad(field, value));
    };
    let high = u16::try_from(hex_value(field, high)?).map_err(|_| bad(field, value))?;
    let low = u16::try_from(hex_value(field, low)?).map_err(|_| bad(field, value))?;
    Ok(u32::from(high) << 16 | u32::from(low))
}

fn narrow<T: TryFrom<u32>>(field: &'static str, value: &str, n: u32) -> Result<T, ProfileError> {
    T::try_from(n).map_err(|_| bad(field, value))
}

/// Reads one field of `fields` with `read`.
struct Reader<'a> {
    fields: &'a [DumpField],
    interface: usize,
}

impl Reader<'_> {
    fn raw(&self, name: &'static str) -> Result<&str, ProfileError> {
        find(self.fields, name)
            .map(|f| f.value.as_str())
            .ok_or(ProfileError::MissingField {
                interface: self.interface,
                field: name,
            })
    }

    fn hex<T: TryFrom<u32>>(&self, name: &'static str) -> Result<T, ProfileError> {
        let v = self.raw(name)?;
        narrow(name, v, hex_value(name, v)?)
    }

    fn dec<T: TryFrom<u32>>(&self, name: &'static str) -> Result<T, ProfileError> {
        let v = self.raw(name)?;
        narrow(name, v, dec_value(name, v)?)
    }

    fn bcd(&self, name: &'static str) -> Result<u16, ProfileError> {
        bcd_value(name, self.raw(name)?)
    }

    fn mhz(&self, name: &'static str) -> Result<u32, ProfileError> {
        mhz_value(name, self.raw(name)?)
    }
}

/// The folder holding libccid's reader dumps, natively: `$CARD_RELAY_SHARED/ccid-readers`,
/// else `<crate>/../shared/ccid-readers` (the project's `shared/` beside the repository).
#[cfg(not(target_arch = "wasm32"))]
pub fn corpus_dir() -> std::path::PathBuf {
    match std::env::var_os("CARD_RELAY_SHARED") {
        Some(shared) => std::path::PathBuf::from(shared).join("ccid-readers"),
        None => std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/ccid-readers"),
    }
}

impl ReaderProfile {
    /// Parses a dump holding one device (the usual case); for a dump of several devices,
    /// the first. Carriage returns are ignored; lines the parser does not know are kept as
    /// explanation lines of the field above them.
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        Self::parse_all(text)?
            .into_iter()
            .next()
            .ok_or(ProfileError::NoInterface)
    }

    /// Parses a dump into one profile per device, in the order the devices first appear.
    ///
    /// `parse` prints the device lines again before each interface; the blocks of one device
    /// (same idVendor and idProduct) become the interfaces of one profile. A block repeating
    /// an earlier block of the same device line for line is dropped: libccid's `parse` prints
    /// some single-interface vendor-class readers several times (HID_5021_CL,
    /// ELYCTIS_CL_reader).
    pub fn parse_all(text: &str) -> Result<Vec<Self>, ProfileError> {
        let blocks = read_blocks(text)?;
        if blocks.is_empty() {
            return Err(ProfileError::NoInterface);
        }
        let mut profiles: Vec<(Self, Vec<&Block>)> = Vec::new();
        for (index, block) in blocks.iter().enumerate() {
            let device = Reader {
                fields: &block.device,
                interface: index,
            };
            let vendor_id: u16 = device.hex("idVendor")?;
            let product_id: u16 = device.hex("idProduct")?;
            let position = profiles
                .iter()
                .position(|(p, _)| p.vendor_id == vendor_id && p.product_id == product_id);
            let (profile, seen) = match position.and_then(|i| profiles.get_mut(i)) {
                Some(entry) => entry,
                None => {
                    let string = |name: &str| {
                        find(&block.device, name)
                            .filter(|f| f.notes.is_empty())
                            .map(|f| f.value.clone())
                    };
                    let profile = Self {
                        vendor_id,
                        product_id,
                        manufacturer: string("iManufacturer"),
                        product: string("iProduct"),
                        device_version: device.bcd("bcdDevice")?,
                        interfaces: Vec::new(),
                    };
                    profiles.push((profile, Vec::new()));
                    profiles.last_mut().ok_or(ProfileError::NoInterface)?
                }
            };
            if seen.contains(&block) {
                continue;
            }
            profile.interfaces.push(read_interface(index, block)?);
            seen.push(block);
        }
        Ok(profiles.into_iter().map(|(p, _)| p).collect())
    }

    /// A device descriptor for this reader: USB 2.0, class per interface, 64-byte control
    /// endpoint, string 1 the manufacturer and 2 the product when the dump names them.
    pub fn device_descriptor(&self) -> DeviceDescriptor {
        DeviceDescriptor {
            usb_version: 0x0200,
            device_class: 0,
            device_subclass: 0,
            device_protocol: 0,
            max_packet_size0: 64,
            vendor_id: self.vendor_id,
            product_id: self.product_id,
            device_version: self.device_version,
            manufacturer_string: if self.manufacturer.is_some() { 1 } else { 0 },
            product_string: if self.product.is_some() { 2 } else { 0 },
            serial_number_string: 0,
            num_configurations: 1,
        }
    }

    /// A configuration for this reader: each interface of the dump, its 54-byte class
    /// descriptor right after it, then the endpoints the dump names.
    ///
    /// The dumps give no endpoint addresses or sizes; interface `k` (0-based, in dump
    /// order) gets bulk-OUT `0x02 + 3k` and bulk-IN `0x81 + 3k` of 64 bytes and interrupt-IN
    /// `0x83 + 3k` of 8 bytes (interval 16), so the first is 0x02 / 0x81 / 0x83. Five
    /// interfaces at most fit in the 15 endpoint numbers.
    pub fn to_configuration(&self) -> Result<Configuration, ProfileError> {
        let mut interfaces = Vec::with_capacity(self.interfaces.len());
        for (k, i) in self.interfaces.iter().enumerate() {
            let base = k
                .checked_mul(3)
                .and_then(|b| u8::try_from(b).ok())
                .filter(|b| *b <= 12)
                .ok_or(ProfileError::TooManyInterfaces)?;
            let mut endpoints = Vec::new();
            if i.endpoints.bulk_out {
                endpoints.push(Endpoint::new(base + 0x02, TransferType::Bulk, 64, 0));
            }
            if i.endpoints.bulk_in {
                endpoints.push(Endpoint::new(0x80 | (base + 1), TransferType::Bulk, 64, 0));
            }
            if i.endpoints.interrupt_in {
                endpoints.push(Endpoint::new(
                    0x80 | (base + 3),
                    TransferType::Interrupt,
                    8,
                    16,
                ));
            }
            interfaces.push(Interface {
                number: i.number,
                alternate_setting: i.alternate_setting,
                class: i.class,
                subclass: i.subclass,
                protocol: i.protocol,
                string_index: 0,
                extra: i
                    .class_descriptor
                    .iter()
                    .map(|d| d.encode().to_vec())
                    .collect(),
                endpoints,
            });
        }
        Ok(Configuration {
            configuration_value: 1,
            string_index: 0,
            attributes: 0x80,
            max_power: 50,
            interfaces,
            extra: Vec::new(),
        })
    }

    /// The bytes of [`ReaderProfile::to_configuration`], as GET_DESCRIPTOR returns them.
    pub fn configuration_bytes(&self) -> Result<Vec<u8>, ProfileError> {
        Ok(self.to_configuration()?.encode()?)
    }
}

/// Cuts the text into blocks, one per `idVendor` line, and the blocks into fields.
fn read_blocks(text: &str) -> Result<Vec<Block>, ProfileError> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut section = Section::Device;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let content = line.trim_start_matches(' ');
        if content.is_empty() {
            continue;
        }
        let indent = line.len() - content.len();
        let unexpected = ProfileError::UnexpectedLine { line: n + 1 };
        if let Some(("idVendor", value)) = split_field(content) {
            blocks.push(Block::default());
            section = Section::Device;
            if let Some(b) = blocks.last_mut() {
                b.device.push(field("idVendor", value));
            }
            continue;
        }
        let block = blocks.last_mut().ok_or(unexpected.clone())?;
        if content == "CCID Class Descriptor" {
            block.class = Some(Vec::new());
            section = Section::Class;
            continue;
        }
        if let Some((name, value)) = split_field(content) {
            let list = if DEVICE_KEYS.contains(&name) {
                Some(&mut block.device)
            } else if section == Section::Class && indent >= 2 && CLASS_KEYS.contains(&name) {
                block.class.as_mut()
            } else if INTERFACE_KEYS.contains(&name) && indent <= 1 {
                section = Section::Interface;
                Some(&mut block.interface)
            } else {
                None
            };
            if let Some(list) = list {
                list.push(field(name, value));
                continue;
            }
        }
        if let Some(name) = cant_get(content) {
            let mut f = field(name, "");
            f.notes.push(content.to_owned());
            if name == "iInterface" {
                block.interface.push(f);
            } else {
                block.device.push(f);
            }
            continue;
        }
        // An explanation line: it belongs to the last field of the current section.
        let last = match section {
            Section::Device => block.device.last_mut(),
            Section::Interface => block.interface.last_mut(),
            Section::Class => block.class.as_mut().and_then(|c| c.last_mut()),
        }
        .ok_or(unexpected)?;
        match last.notes.last_mut() {
            // A line at column 0 continues the note above (the dump wrapped it).
            Some(note) if indent == 0 => {
                note.push(' ');
                note.push_str(content);
            }
            _ => last.notes.push(content.to_owned()),
        }
    }
    Ok(blocks)
}

fn field(name: &str, value: &str) -> DumpField {
    DumpField {
        name: name.to_owned(),
        value: value.to_owned(),
        notes: Vec::new(),
    }
}

/// Builds one interface from its block.
fn read_interface(index: usize, block: &Block) -> Result<ProfileInterface, ProfileError> {
    let r = Reader {
        fields: &block.interface,
        interface: index,
    };
    let num_endpoints: u8 = r.dec("bNumEndpoints")?;
    let endpoints = find(&block.interface, "bNumEndpoints")
        .and_then(|f| f.notes.first())
        .map(|note| DumpEndpoints {
            bulk_in: note.contains("bulk-IN"),
            bulk_out: note.contains("bulk-OUT"),
            interrupt_in: note.contains("Interrupt-IN"),
        })
        .unwrap_or(DumpEndpoints {
            bulk_in: num_endpoints >= 2,
            bulk_out: num_endpoints >= 2,
            interrupt_in: num_endpoints == 1 || num_endpoints >= 3,
        });
    let interface_string = find(&block.interface, "iInterface")
        .filter(|f| f.notes.is_empty())
        .map(|f| f.value.clone());
    let class_descriptor = match &block.class {
        Some(fields) => Some(read_class(index, fields)?),
        None => None,
    };
    Ok(ProfileInterface {
        number: r.dec("bInterfaceNumber")?,
        alternate_setting: r.dec("bAlternateSetting")?,
        num_endpoints,
        endpoints,
        class: r.hex("bInterfaceClass")?,
        subclass: r.dec("bInterfaceSubClass")?,
        protocol: r.dec("bInterfaceProtocol")?,
        interface_string,
        class_descriptor,
        fields: block.interface.clone(),
        class_fields: block.class.clone().unwrap_or_default(),
    })
}

/// Builds the class descriptor from its lines.
fn read_class(index: usize, fields: &[DumpField]) -> Result<CcidClassDescriptor, ProfileError> {
    let r = Reader {
        fields,
        interface: index,
    };
    let length: u8 = r.hex("bLength")?;
    if length != CcidClassDescriptor::LENGTH {
        return Err(bad("bLength", r.raw("bLength")?));
    }
    Ok(CcidClassDescriptor {
        descriptor_type: r.hex("bDescriptorType")?,
        bcd_ccid: r.bcd("bcdCCID")?,
        max_slot_index: r.hex("bMaxSlotIndex")?,
        voltage_support: r.hex("bVoltageSupport")?,
        protocols: protocols_value("dwProtocols", r.raw("dwProtocols")?)?,
        default_clock: r.mhz("dwDefaultClock")?,
        maximum_clock: r.mhz("dwMaximumClock")?,
        num_clock_supported: r.dec("bNumClockSupported")?,
        data_rate: r.dec("dwDataRate")?,
        max_data_rate: r.dec("dwMaxDataRate")?,
        num_data_rates_supported: r.dec("bNumDataRatesSupported")?,
        max_ifsd: r.dec("dwMaxIFSD")?,
        synch_protocols: r.hex("dwSynchProtocols")?,
        mechanical: r.hex("dwMechanical")?,
        features: Features(r.hex("dwFeatures")?),
        max_ccid_message_length: r.dec("dwMaxCCIDMessageLength")?,
        class_get_response: r.hex("bClassGetResponse")?,
        class_envelope: r.hex("bClassEnvelope")?,
        lcd_layout: r.hex("wLcdLayout")?,
        pin_support: r.hex("bPINSupport")?,
        max_ccid_busy_slots: r.dec("bMaxCCIDBusySlots")?,
    })
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::descriptor::{find_ccid_interfaces, parse_configuration, ExchangeLevel};
    use crate::proto::hex::h;

    /// readers/SPR532.txt as quoted in reference/webusb-ccid.md §4 (vendor class 0xFF).
    const SPR532: &str = " idVendor: 0x04E6
  iManufacturer: SCM Microsystems Inc.
 idProduct: 0xE003
  iProduct: SPRx32 USB Smart Card Reader
 bcdDevice: 5.10 (firmware release?)
 bLength: 9
 bDescriptorType: 4
 bInterfaceNumber: 0
 bAlternateSetting: 0
 bNumEndpoints: 3
 bInterfaceClass: 0xFF
  NOT A CCID DEVICE
  Class is 0xFF (proprietary)
 bInterfaceSubClass: 0
 bInterfaceProtocol: 0
 iInterface: 4
 CCID Class Descriptor
  bLength: 0x36
  bDescriptorType: 0x21
  bcdCCID: 1.00
  bMaxSlotIndex: 0x00
  bVoltageSupport: 0x01
   5.0V
  dwProtocols: 0x0000 0x0003
   T=0
   T=1
  dwDefaultClock: 4.000 MHz
  dwMaximumClock: 8.000 MHz
  bNumClockSupported: 0 (will use whatever is returned)
   IFD does not support GET CLOCK FREQUENCIES request
  dwDataRate: 10753 bps
  dwMaxDataRate: 344105 bps
  bNumDataRatesSupported: 0 (will use whatever is returned)
   IFD does not support GET_DATA_RATES request
  dwMaxIFSD: 254
  dwSynchProtocols: 0x00000000
  dwMechanical: 0x00000000
   No special characteristics
  dwFeatures: 0x000100BA
   ....02 Automatic parameter configuration based on ATR data
   ....08 Automatic ICC voltage selection
   ....10 Automatic ICC clock frequency change according to parameters
   ....20 Automatic baud rate change according to frequency and Fi, Di params
   ....80 Automatic PPS made by the CCID
   01.... TPDU level exchange
  dwMaxCCIDMessageLength: 270 bytes
  bClassGetResponse: 0xFF
   echoes the APDU class
  bClassEnvelope: 0xFF
   echoes the APDU class
  wLcdLayout: 0x0000
  bPINSupport: 0x03
   PIN Verification supported
   PIN Modification supported
  bMaxCCIDBusySlots: 1
";

    #[test]
    fn spr532() {
        let p = ReaderProfile::parse(SPR532).unwrap();
        assert_eq!(
            (p.vendor_id, p.product_id, p.device_version),
            (0x04E6, 0xE003, 0x0510)
        );
        assert_eq!(p.manufacturer.as_deref(), Some("SCM Microsystems Inc."));
        let [i] = p.interfaces.as_slice() else {
            panic!("one interface")
        };
        assert_eq!(
            (i.number, i.num_endpoints, i.class, i.subclass, i.protocol),
            (0, 3, 0xFF, 0, 0)
        );
        // No line names the endpoints: three endpoints means all three.
        assert_eq!(
            i.endpoints,
            DumpEndpoints {
                bulk_in: true,
                bulk_out: true,
                interrupt_in: true
            }
        );
        assert_eq!(i.interface_string.as_deref(), Some("4"));
        let class = i.field("bInterfaceClass").unwrap();
        assert_eq!(
            class.notes,
            ["NOT A CCID DEVICE", "Class is 0xFF (proprietary)"]
        );
        let d = i.class_descriptor.unwrap();
        assert_eq!(
            d.encode().to_vec(),
            h(
                "36 21 00 01 00 01 03 00 00 00 A0 0F 00 00 40 1F 00 00 00 01 2A 00 00 29 40 05 00
               00 FE 00 00 00 00 00 00 00 00 00 00 00 BA 00 01 00 0E 01 00 00 FF FF 00 00 03 01"
            )
        );
        let features = i.class_field("dwFeatures").unwrap();
        assert_eq!(features.value, "0x000100BA");
        assert_eq!(
            features.notes.last().map(String::as_str),
            Some("01.... TPDU level exchange")
        );
        assert_eq!(
            i.class_field("bPINSupport").unwrap().notes,
            ["PIN Verification supported", "PIN Modification supported"]
        );

        let bytes = p.configuration_bytes().unwrap();
        let found = find_ccid_interfaces(&bytes).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].descriptor, d);
        assert_eq!(found[0].descriptor.exchange_level(), ExchangeLevel::Tpdu);
        assert_eq!(
            p.device_descriptor().encode().to_vec(),
            h("12 01 00 02 00 00 00 40 E6 04 03 E0 10 05 01 02 00 01")
        );
    }

    #[test]
    fn configuration_layout() {
        let p = ReaderProfile::parse(SPR532).unwrap();
        let bytes = p.configuration_bytes().unwrap();
        // Configuration, interface, 54-byte class descriptor, then bulk-OUT 0x02, bulk-IN 0x81
        // (64 bytes) and interrupt-IN 0x83 (8 bytes).
        assert_eq!(bytes.len(), 9 + 9 + 54 + 3 * 7);
        assert_eq!(
            bytes[..18],
            h("09 02 5D 00 01 01 00 80 32  09 04 00 00 03 FF 00 00 00")[..]
        );
        assert_eq!(
            bytes[72..],
            h("07 05 02 02 40 00 00  07 05 81 02 40 00 00  07 05 83 03 08 00 10")[..]
        );
        assert_eq!(
            parse_configuration(&bytes).unwrap(),
            p.to_configuration().unwrap()
        );
    }

    #[test]
    fn odd_lines() {
        // CRLF line ends (Bit4id_Digital_DNA_Key_v2), a hex bcdDevice (Akasa_AK-CR-03), a
        // missing iManufacturer, an empty iProduct, a wrapped explanation (Yubikey neo), a
        // "Can't get" line with a reason, a trailing blank, no class descriptor.
        let text = " idVendor: 0x058F\r\n  Can't get iManufacturer string\r\n idProduct: 0x9520\r\n  iProduct: \r\n bcdDevice: F0.F0 (firmware release?)\r\n bLength: 9\r\n bDescriptorType: 4\r\n bInterfaceNumber: 2\r\n bAlternateSetting: 0\r\n bNumEndpoints: 2 \r\n  bulk-IN and bulk-OUT\r\n bInterfaceClass: 0x0B [Chip Card Interface Device Class (CCID)]\r\n bInterfaceSubClass: 0\r\n bInterfaceProtocol: 0\r\n   wrapped\r\nline\r\n Can't get iInterface string: LIBUSB_ERROR_PIPE\r\n";
        let p = ReaderProfile::parse(text).unwrap();
        assert_eq!(p.device_version, 0xF0F0);
        assert_eq!(
            (p.manufacturer.as_deref(), p.product.as_deref()),
            (None, Some(""))
        );
        let i = &p.interfaces[0];
        assert_eq!((i.number, i.num_endpoints), (2, 2));
        assert_eq!(
            i.endpoints,
            DumpEndpoints {
                bulk_in: true,
                bulk_out: true,
                interrupt_in: false
            }
        );
        assert_eq!(
            i.field("bInterfaceProtocol").unwrap().notes,
            ["wrapped line"]
        );
        assert_eq!(i.interface_string, None);
        assert_eq!(i.class_descriptor, None);
        let config = p.to_configuration().unwrap();
        assert_eq!(config.interfaces[0].endpoints.len(), 2);
        assert!(find_ccid_interfaces(&config.encode().unwrap())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn several_devices_and_repeats() {
        let one = SPR532;
        let other = SPR532.replace("0xE003", "0xE004");
        let text = format!("{one}{other}{other}");
        let all = ReaderProfile::parse_all(&text).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].product_id, all[0].interfaces.len()), (0xE003, 1));
        assert_eq!((all[1].product_id, all[1].interfaces.len()), (0xE004, 1));
        let second = SPR532.replace("bInterfaceNumber: 0", "bInterfaceNumber: 1");
        let two = ReaderProfile::parse(&format!("{one}{second}")).unwrap();
        assert_eq!(
            two.interfaces.iter().map(|i| i.number).collect::<Vec<_>>(),
            [0, 1]
        );
        let bytes = two.configuration_bytes().unwrap();
        let found = find_ccid_interfaces(&bytes).unwrap();
        assert_eq!(found[1].bulk_out.as_ref().map(|e| e.address), Some(0x05));
        assert_eq!(found[1].bulk_in.as_ref().map(|e| e.address), Some(0x84));
        assert_eq!(
            found[1].interrupt_in.as_ref().map(|e| e.address),
            Some(0x86)
        );
    }

    #[test]
    fn values() {
        assert_eq!(mhz_value("f", "4.000 MHz"), Ok(4000));
        assert_eq!(mhz_value("f", "12.288 MHz"), Ok(12288));
        assert!(mhz_value("f", "4.0 MHz").is_err());
        assert_eq!(bcd_value("f", "1.10"), Ok(0x0110));
        assert_eq!(bcd_value("f", "2E.3D (firmware release?)"), Ok(0x2E3D));
        assert!(bcd_value("f", "1").is_err());
        assert_eq!(dec_value("f", "271 bytes"), Ok(271));
        assert_eq!(dec_value("f", "-1"), Ok(u32::MAX));
        assert!(dec_value("f", "x").is_err());
        assert_eq!(protocols_value("f", "0x0000 0x0003"), Ok(3));
        assert_eq!(protocols_value("f", "0x0001 0x0002"), Ok(0x0001_0002));
        assert!(protocols_value("f", "0x0003").is_err());
        assert_eq!(
            hex_value("f", "0x0B [Chip Card Interface Device Class (CCID)]"),
            Ok(0x0B)
        );
        assert!(hex_value("f", "11").is_err());
    }

    #[test]
    fn errors() {
        assert_eq!(ReaderProfile::parse(""), Err(ProfileError::NoInterface));
        assert_eq!(
            ReaderProfile::parse("hello\n idVendor: 0x0001\n"),
            Err(ProfileError::UnexpectedLine { line: 1 })
        );
        assert_eq!(
            ReaderProfile::parse(&SPR532.replace(" idProduct: 0xE003\n", "")),
            Err(ProfileError::MissingField {
                interface: 0,
                field: "idProduct"
            })
        );
        assert_eq!(
            ReaderProfile::parse(&SPR532.replace("  dwMaxIFSD: 254\n", "")),
            Err(ProfileError::MissingField {
                interface: 0,
                field: "dwMaxIFSD"
            })
        );
        assert_eq!(
            ReaderProfile::parse(&SPR532.replace("bMaxSlotIndex: 0x00", "bMaxSlotIndex: 0x100")),
            Err(ProfileError::BadValue {
                field: "bMaxSlotIndex",
                value: "0x100".to_owned()
            })
        );
        assert!(matches!(
            ReaderProfile::parse(&SPR532.replace("  bLength: 0x36", "  bLength: 0x35")),
            Err(ProfileError::BadValue {
                field: "bLength",
                ..
            })
        ));
        let six: String = (0..6)
            .map(|n| SPR532.replace("bInterfaceNumber: 0", &format!("bInterfaceNumber: {n}")))
            .collect();
        let p = ReaderProfile::parse(&six).unwrap();
        assert_eq!(p.interfaces.len(), 6);
        assert_eq!(p.to_configuration(), Err(ProfileError::TooManyInterfaces));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parser_never_panics(text in "[ a-zA-Z0-9:.\\n\\r()x-]{0,400}") {
            let _ = ReaderProfile::parse_all(&text);
        }

        #[test]
        fn parser_never_panics_on_mutated_dumps(cut in 0usize..1500, insert in "[ 0-9a-zA-Z:.\\n-]{0,12}") {
            let base = SAMPLE;
            let at = (0..=cut.min(base.len())).rev().find(|i| base.is_char_boundary(*i)).unwrap_or(0);
            let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
            let _ = ReaderProfile::parse_all(&text);
            let _ = ReaderProfile::parse_all(&base[..at]);
        }
    }

    /// A GemPCTwin dump without its explanation lines.
    const SAMPLE: &str = " idVendor: 0x08E6\n  iManufacturer: Gemplus\n idProduct: 0x3437\n  iProduct: USB SmartCard Reader\n bcdDevice: 1.00 (firmware release?)\n bLength: 9\n bDescriptorType: 4\n bInterfaceNumber: 0\n bAlternateSetting: 0\n bNumEndpoints: 3\n  bulk-IN, bulk-OUT and Interrupt-IN\n bInterfaceClass: 0x0B [Chip Card Interface Device Class (CCID)]\n bInterfaceSubClass: 0\n bInterfaceProtocol: 0\n Can't get iInterface string\n CCID Class Descriptor\n  bLength: 0x36\n  bDescriptorType: 0x21\n  bcdCCID: 1.00\n  bMaxSlotIndex: 0x00\n  bVoltageSupport: 0x07\n  dwProtocols: 0x0000 0x0003\n  dwDefaultClock: 4.000 MHz\n  dwMaximumClock: 4.000 MHz\n  bNumClockSupported: 0\n  dwDataRate: 10752 bps\n  dwMaxDataRate: 344086 bps\n  bNumDataRatesSupported: 0\n  dwMaxIFSD: 254\n  dwSynchProtocols: 0x00000000\n  dwMechanical: 0x00000000\n  dwFeatures: 0x00010230\n  dwMaxCCIDMessageLength: 271 bytes\n  bClassGetResponse: 0x00\n  bClassEnvelope: 0x00\n  wLcdLayout: 0x0000\n  bPINSupport: 0x00\n  bMaxCCIDBusySlots: 1\n";
}
