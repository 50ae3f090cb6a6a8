//! The 691 real reader dumps of libccid (`readers/*.txt`, commit 5de6a966), end to end:
//! each dump is parsed into a [`ReaderProfile`], turned into the configuration descriptor
//! bytes a simulated reader would serve, and those bytes are read back with
//! [`find_ccid_interfaces`]. What comes back is checked against the dump's own text: every
//! class descriptor value as libccid prints it and every explanation line libccid prints
//! for it, so a parser bug and an encoder bug cannot cancel out.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::path::PathBuf;

use card_relay::proto::descriptor::{
    find_ccid_interfaces, parse_configuration, CcidClassDescriptor, CcidInterface, ExchangeLevel,
    TransferType,
};
use card_relay::proto::hex::h;
use card_relay::sim::profile::{ProfileInterface, ReaderProfile};

/// Number of dumps in libccid's readers/ folder at the pinned commit.
const CORPUS_SIZE: usize = 691;

fn corpus_dir() -> PathBuf {
    card_relay::sim::profile::corpus_dir()
}

/// Every dump as (file name, text); one dump has a non-UTF-8 iInterface string, read lossily.
fn corpus() -> Vec<(String, String)> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus at {}: {e}", dir.display()));
    let mut files: Vec<(String, String)> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .map(|path| {
            let bytes = std::fs::read(&path).expect("readable dump");
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, String::from_utf8_lossy(&bytes).into_owned())
        })
        .collect();
    files.sort();
    files
}

fn dump(name: &str) -> String {
    let path = corpus_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// An explanation line without libccid's bit-position prefix (`....02 `, `..01.. `,
/// `01.... `) and with the wordings of older dumps mapped to the current ones.
fn normalize_note(note: &str) -> String {
    let mut s = note.trim();
    if let Some((prefix, rest)) = s.split_once(' ') {
        if prefix.len() == 6
            && prefix.contains('.')
            && prefix.chars().all(|c| c == '.' || c.is_ascii_hexdigit())
        {
            s = rest;
        }
    }
    match s {
        "Automatic baud rate change according to frequency and Fi, Di parameters" => {
            "Automatic baud rate change according to frequency and Fi, Di params".to_owned()
        }
        "Unknown (ICCD?)" => "ICCD token".to_owned(),
        other => other.to_owned(),
    }
}

/// The dwFeatures explanation lines libccid prints (src/parse.c), without prefixes.
fn expected_feature_notes(d: &CcidClassDescriptor) -> Vec<String> {
    let f = d.features;
    let mut notes = Vec::new();
    if f.bits() == 0 {
        notes.push("No special characteristics");
    }
    let bits: [(bool, &str); 11] = [
        (
            f.auto_parameters_from_atr(),
            "Automatic parameter configuration based on ATR data",
        ),
        (
            f.auto_activation(),
            "Automatic activation of ICC on inserting",
        ),
        (f.auto_voltage(), "Automatic ICC voltage selection"),
        (
            f.auto_clock(),
            "Automatic ICC clock frequency change according to parameters",
        ),
        (
            f.auto_baud(),
            "Automatic baud rate change according to frequency and Fi, Di params",
        ),
        (
            f.auto_parameter_negotiation(),
            "Automatic parameters negotiation made by the CCID",
        ),
        (f.auto_pps(), "Automatic PPS made by the CCID"),
        (f.clock_stop(), "CCID can set ICC in clock stop mode"),
        (f.nad(), "NAD value other than 00 accepted (T=1)"),
        (
            f.auto_ifsd(),
            "Automatic IFSD exchange as first exchange (T=1)",
        ),
        (f.iccd_token(), "ICCD token"),
    ];
    notes.extend(bits.iter().filter(|(set, _)| *set).map(|(_, text)| *text));
    match d.exchange_level() {
        ExchangeLevel::Character => notes.push("Character level exchange"),
        ExchangeLevel::Tpdu => notes.push("TPDU level exchange"),
        ExchangeLevel::ShortApdu => notes.push("Short APDU level exchange"),
        ExchangeLevel::ExtendedApdu => notes.push("Short and Extended APDU level exchange"),
        ExchangeLevel::Unknown(_) => {}
    }
    if f.usb_wake_up() {
        notes.push("USB Wake up signaling supported on card insertion and removal");
    }
    notes.into_iter().map(str::to_owned).collect()
}

fn kilohertz_as_mhz(khz: u32) -> String {
    format!("{}.{:03} MHz", khz / 1000, khz % 1000)
}

/// Each class descriptor field as libccid prints its value (the part that carries the
/// number), and the explanation lines it prints, or `None` where they depend on the
/// reader's answers to class requests.
fn expected_class_lines(
    d: &CcidClassDescriptor,
) -> Vec<(&'static str, String, Option<Vec<String>>)> {
    let none = || Some(Vec::new());
    let lines = |items: &[(bool, &str)]| {
        Some(
            items
                .iter()
                .filter(|(set, _)| *set)
                .map(|(_, t)| (*t).to_owned())
                .collect::<Vec<_>>(),
        )
    };
    let bcd = d.bcd_ccid.to_be_bytes();
    let mechanical = d.mechanical.to_le_bytes()[0];
    let synch = d.synch_protocols.to_le_bytes()[0];
    let [lcd_chars, lcd_lines] = d.lcd_layout.to_le_bytes();
    let mut lcd = Vec::new();
    if lcd_lines != 0 {
        lcd.push(format!("{lcd_lines} lines"));
    }
    if lcd_chars != 0 {
        lcd.push(format!("{lcd_chars} characters per line"));
    }
    vec![
        ("bLength", "0x36".to_owned(), none()),
        (
            "bDescriptorType",
            format!("0x{:02X}", d.descriptor_type),
            lines(&[(d.descriptor_type == 0xFF, "PROPRIETARY bDescriptorType")]),
        ),
        ("bcdCCID", format!("{:X}.{:02X}", bcd[0], bcd[1]), none()),
        (
            "bMaxSlotIndex",
            format!("0x{:02X}", d.slot_count() - 1),
            none(),
        ),
        (
            "bVoltageSupport",
            format!("0x{:02X}", d.voltage_support),
            lines(&[
                (d.supports_5v(), "5.0V"),
                (d.supports_3v(), "3.0V"),
                (d.supports_1_8v(), "1.8V"),
            ]),
        ),
        (
            "dwProtocols",
            format!("0x{:04X} 0x{:04X}", d.protocols >> 16, d.protocols & 0xFFFF),
            lines(&[(d.supports_t0(), "T=0"), (d.supports_t1(), "T=1")]),
        ),
        ("dwDefaultClock", kilohertz_as_mhz(d.default_clock), none()),
        ("dwMaximumClock", kilohertz_as_mhz(d.maximum_clock), none()),
        (
            "bNumClockSupported",
            d.num_clock_supported.to_string(),
            None,
        ),
        ("dwDataRate", format!("{} bps", d.data_rate), none()),
        ("dwMaxDataRate", format!("{} bps", d.max_data_rate), none()),
        (
            "bNumDataRatesSupported",
            d.num_data_rates_supported.to_string(),
            None,
        ),
        ("dwMaxIFSD", d.max_ifsd().to_string(), none()),
        (
            "dwSynchProtocols",
            format!("0x{:08X}", d.synch_protocols),
            lines(&[
                (synch & 0x01 != 0, "2-wire protocol"),
                (synch & 0x02 != 0, "3-wire protocol"),
                (synch & 0x04 != 0, "I2C protocol"),
            ]),
        ),
        (
            "dwMechanical",
            format!("0x{:08X}", d.mechanical),
            lines(&[
                (mechanical == 0, "No special characteristics"),
                (mechanical & 0x01 != 0, "Card accept mechanism"),
                (mechanical & 0x02 != 0, "Card ejection mechanism"),
                (mechanical & 0x04 != 0, "Card capture mechanism"),
                (mechanical & 0x08 != 0, "Card lock/unlock mechanism"),
            ]),
        ),
        (
            "dwFeatures",
            format!("0x{:08X}", d.features.bits()),
            Some(expected_feature_notes(d)),
        ),
        (
            "dwMaxCCIDMessageLength",
            format!("{} bytes", d.max_message_length()),
            none(),
        ),
        (
            "bClassGetResponse",
            format!("0x{:02X}", d.class_get_response),
            lines(&[(d.class_get_response == 0xFF, "echoes the APDU class")]),
        ),
        (
            "bClassEnvelope",
            format!("0x{:02X}", d.class_envelope),
            lines(&[(d.class_envelope == 0xFF, "echoes the APDU class")]),
        ),
        ("wLcdLayout", format!("0x{:04X}", d.lcd_layout), Some(lcd)),
        (
            "bPINSupport",
            format!("0x{:02X}", d.pin_support),
            lines(&[
                (d.pin_verify(), "PIN Verification supported"),
                (d.pin_modify(), "PIN Modification supported"),
            ]),
        ),
        ("bMaxCCIDBusySlots", d.max_busy_slots().to_string(), none()),
    ]
}

/// Whether a dumped value is `expected`, possibly followed by libccid's comment.
fn value_matches(dumped: &str, expected: &str) -> bool {
    dumped == expected
        || dumped
            .strip_prefix(expected)
            .is_some_and(|rest| rest.starts_with(' '))
}

/// Fields whose explanation lines older dumps lack (CardMan3121, SCR331-DI-NTTCom).
const EXPLAINED_LATER: &[&str] = &["dwSynchProtocols", "bClassGetResponse", "bClassEnvelope"];

/// Checks one interface read back from the bytes against the dump's text.
fn check_interface(p: &ProfileInterface, f: &CcidInterface) -> Result<(), String> {
    let field = |name: &str| p.field(name).ok_or_else(|| format!("no {name} line"));
    let expect = |name: &str, expected: String| -> Result<(), String> {
        let dumped = &field(name)?.value;
        if value_matches(dumped, &expected) {
            Ok(())
        } else {
            Err(format!(
                "{name}: dump says {dumped:?}, bytes give {expected:?}"
            ))
        }
    };
    expect("bInterfaceNumber", f.number.to_string())?;
    expect("bAlternateSetting", f.alternate_setting.to_string())?;
    expect("bInterfaceClass", format!("0x{:02X}", f.class))?;
    expect("bInterfaceSubClass", f.subclass.to_string())?;
    expect("bInterfaceProtocol", f.protocol.to_string())?;

    let class = field("bInterfaceClass")?;
    let ccid_class = class
        .value
        .ends_with("[Chip Card Interface Device Class (CCID)]");
    let vendor_class = class
        .notes
        .iter()
        .any(|n| n == "Class is 0xFF (proprietary)")
        && class.notes.iter().any(|n| n == "NOT A CCID DEVICE");
    if f.is_vendor_class() != vendor_class || ccid_class == f.is_vendor_class() {
        return Err(format!(
            "interface class {:#04x} against {class:?}",
            f.class
        ));
    }

    let subclass = field("bInterfaceSubClass")?;
    if (f.subclass != 0) != subclass.notes.iter().any(|n| n == "UNSUPPORTED SubClass") {
        return Err(format!("subclass {} against {subclass:?}", f.subclass));
    }

    let protocol = field("bInterfaceProtocol")?;
    if let Some(note) = protocol.notes.first() {
        let ok = match f.protocol {
            0 => note.starts_with("bulk transfer, optional interrupt-IN"),
            1 => note == "ICCD Version A, Control transfers, (no interrupt-IN)",
            2 => note == "ICCD Version B, Control transfers, (optional interrupt-IN)",
            _ => false,
        };
        // Older libccid releases knew only protocol 0 and print this for ICCD too.
        let old = f.protocol != 0 && note == "UNSUPPORTED InterfaceProtocol";
        if !(ok || old) || (ok && f.is_iccd() != note.starts_with("ICCD")) {
            return Err(format!("protocol {} against {note:?}", f.protocol));
        }
    }

    let endpoints = [&f.bulk_in, &f.bulk_out, &f.interrupt_in]
        .iter()
        .filter(|e| e.is_some())
        .count();
    expect("bNumEndpoints", endpoints.to_string())?;
    if let Some(note) = field("bNumEndpoints")?.notes.first() {
        let libccid = match endpoints {
            0 => "Control only",
            1 => "Interrupt-IN",
            2 => "bulk-IN and bulk-OUT",
            _ => "bulk-IN, bulk-OUT and Interrupt-IN",
        };
        if note != libccid
            || f.bulk_in.is_some() != note.contains("bulk-IN")
            || f.bulk_out.is_some() != note.contains("bulk-OUT")
            || f.interrupt_in.is_some() != note.contains("Interrupt-IN")
        {
            return Err(format!("endpoints {endpoints} against {note:?}"));
        }
    }
    for (e, ty, is_in) in [
        (&f.bulk_in, TransferType::Bulk, true),
        (&f.bulk_out, TransferType::Bulk, false),
        (&f.interrupt_in, TransferType::Interrupt, true),
    ] {
        if let Some(e) = e {
            if e.transfer_type() != ty || e.is_in() != is_in {
                return Err(format!("endpoint {:#04x} of the wrong kind", e.address));
            }
        }
    }

    let d = &f.descriptor;
    for (name, value, notes) in expected_class_lines(d) {
        let dumped = p
            .class_field(name)
            .ok_or_else(|| format!("no class line {name}"))?;
        if !value_matches(&dumped.value, &value) {
            return Err(format!(
                "{name}: dump says {:?}, bytes give {value:?}",
                dumped.value
            ));
        }
        if let Some(mut expected) = notes {
            let mut found: Vec<String> = dumped.notes.iter().map(|n| normalize_note(n)).collect();
            expected.sort();
            found.sort();
            // Older libccid releases printed no explanation for these fields.
            let unexplained = found.is_empty() && EXPLAINED_LATER.contains(&name);
            if expected != found && !unexplained {
                return Err(format!(
                    "{name} notes: dump says {found:?}, bytes give {expected:?}"
                ));
            }
        }
    }

    // The derived values, each against the line that states it.
    let features = &p.class_field("dwFeatures").ok_or("no dwFeatures")?.notes;
    let level_text = match d.exchange_level() {
        ExchangeLevel::Character => "Character level exchange",
        ExchangeLevel::Tpdu => "TPDU level exchange",
        ExchangeLevel::ShortApdu => "Short APDU level exchange",
        ExchangeLevel::ExtendedApdu => "Short and Extended APDU level exchange",
        ExchangeLevel::Unknown(bits) => return Err(format!("unknown exchange level {bits:#x}")),
    };
    if !features.iter().any(|n| normalize_note(n) == level_text) {
        return Err(format!("exchange level {level_text:?} not in {features:?}"));
    }
    let slots = &p
        .class_field("bMaxSlotIndex")
        .ok_or("no bMaxSlotIndex")?
        .value;
    if u32::from_str_radix(slots.trim_start_matches("0x"), 16)
        .ok()
        .map(|m| m + 1)
        != u32::try_from(d.slot_count()).ok()
    {
        return Err(format!("slot count {} against {slots:?}", d.slot_count()));
    }
    let pin = &p.class_field("bPINSupport").ok_or("no bPINSupport")?.notes;
    if d.pin_verify() != pin.iter().any(|n| n == "PIN Verification supported")
        || d.pin_modify() != pin.iter().any(|n| n == "PIN Modification supported")
    {
        return Err(format!("pin support against {pin:?}"));
    }
    let protocols = &p.class_field("dwProtocols").ok_or("no dwProtocols")?.notes;
    if d.supports_t0() != protocols.iter().any(|n| n == "T=0")
        || d.supports_t1() != protocols.iter().any(|n| n == "T=1")
    {
        return Err(format!("protocols against {protocols:?}"));
    }
    let length = &p
        .class_field("dwMaxCCIDMessageLength")
        .ok_or("no length")?
        .value;
    if *length != format!("{} bytes", d.max_message_length()) {
        return Err(format!("max message length against {length:?}"));
    }
    Ok(())
}

/// Parses one device's profile, rebuilds its configuration and checks every CCID interface.
fn check_profile(profile: &ReaderProfile) -> Result<Vec<CcidInterface>, String> {
    let bytes = profile
        .configuration_bytes()
        .map_err(|e| format!("configuration: {e}"))?;
    let found = find_ccid_interfaces(&bytes).map_err(|e| format!("find: {e}"))?;
    let described: Vec<&ProfileInterface> = profile
        .interfaces
        .iter()
        .filter(|i| i.class_descriptor.is_some())
        .collect();
    if found.len() != described.len() || found.is_empty() {
        return Err(format!(
            "{} ccid interfaces found, the dump describes {}",
            found.len(),
            described.len()
        ));
    }
    for (p, f) in described.iter().zip(&found) {
        check_interface(p, f).map_err(|e| format!("interface {}: {e}", p.number))?;
    }
    Ok(found)
}

/// Checks every device of a dump; returns the first device and its interfaces.
fn check_dump(text: &str) -> Result<(ReaderProfile, Vec<CcidInterface>), String> {
    let mut all = check_dump_all(text)?;
    if all.is_empty() {
        return Err("no device".to_owned());
    }
    Ok(all.remove(0))
}

fn check_dump_all(text: &str) -> Result<Vec<(ReaderProfile, Vec<CcidInterface>)>, String> {
    let profiles = ReaderProfile::parse_all(text).map_err(|e| format!("parse: {e}"))?;
    profiles
        .into_iter()
        .map(|p| check_profile(&p).map(|found| (p, found)))
        .collect()
}

#[test]
fn every_real_reader_round_trips() {
    let files = corpus();
    let mut failures = Vec::new();
    let mut checked = 0usize;
    let mut levels: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut vendor_interfaces = 0usize;
    let mut iccd_files = 0usize;
    for (name, text) in &files {
        match check_dump_all(text) {
            Ok(devices) => {
                checked += 1;
                let found: Vec<CcidInterface> =
                    devices.into_iter().flat_map(|(_, found)| found).collect();
                vendor_interfaces += found.iter().filter(|i| i.is_vendor_class()).count();
                iccd_files += usize::from(found.iter().any(CcidInterface::is_iccd));
                if let Some(first) = found.first() {
                    let level = match first.descriptor.exchange_level() {
                        ExchangeLevel::Character => "character",
                        ExchangeLevel::Tpdu => "tpdu",
                        ExchangeLevel::ShortApdu => "short apdu",
                        ExchangeLevel::ExtendedApdu => "extended apdu",
                        ExchangeLevel::Unknown(_) => "unknown",
                    };
                    *levels.entry(level).or_default() += 1;
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    println!("checked {checked} of {} reader dumps", files.len());
    assert!(
        failures.is_empty(),
        "{} dumps failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked >= CORPUS_SIZE,
        "only {checked} dumps checked, expected {CORPUS_SIZE}"
    );
    // Corpus statistics from ccid-readers/README.md (first CCID descriptor per file),
    // computed there independently of this code.
    let expected: BTreeMap<&str, usize> = [
        ("tpdu", 252),
        ("short apdu", 167),
        ("extended apdu", 266),
        ("character", 6),
    ]
    .into_iter()
    .collect();
    assert_eq!(levels, expected);
    // The README counts 26 vendor-class interface blocks; HID_5021_CL prints its one
    // interface three times, and parse_all keeps it once.
    assert_eq!(vendor_interfaces, 24);
    assert_eq!(iccd_files, 12);
}

/// readers/GemPCTwin.txt as quoted in full in reference/webusb-ccid.md §4.
const GEMPCTWIN: &str = " idVendor: 0x08E6
  iManufacturer: Gemplus
 idProduct: 0x3437
  iProduct: USB SmartCard Reader
 bcdDevice: 1.00 (firmware release?)
 bLength: 9
 bDescriptorType: 4
 bInterfaceNumber: 0
 bAlternateSetting: 0
 bNumEndpoints: 3
  bulk-IN, bulk-OUT and Interrupt-IN
 bInterfaceClass: 0x0B [Chip Card Interface Device Class (CCID)]
 bInterfaceSubClass: 0
 bInterfaceProtocol: 0
  bulk transfer, optional interrupt-IN (CCID)
 Can't get iInterface string
 CCID Class Descriptor
  bLength: 0x36
  bDescriptorType: 0x21
  bcdCCID: 1.00
  bMaxSlotIndex: 0x00
  bVoltageSupport: 0x07
   5.0V
   3.0V
   1.8V
  dwProtocols: 0x0000 0x0003
   T=0
   T=1
  dwDefaultClock: 4.000 MHz
  dwMaximumClock: 4.000 MHz
  bNumClockSupported: 0 (will use whatever is returned)
   Support 4000 kHz
  dwDataRate: 10752 bps
  dwMaxDataRate: 344086 bps
  bNumDataRatesSupported: 0 (will use whatever is returned)
   Support 10753 bps
   Support 344086 bps
  dwMaxIFSD: 254
  dwSynchProtocols: 0x00000000
  dwMechanical: 0x00000000
   No special characteristics
  dwFeatures: 0x00010230
   ....10 Automatic ICC clock frequency change according to parameters
   ....20 Automatic baud rate change according to frequency and Fi, Di params
   ..02.. NAD value other than 00 accepted (T=1)
   01.... TPDU level exchange
  dwMaxCCIDMessageLength: 271 bytes
  bClassGetResponse: 0x00
  bClassEnvelope: 0x00
  wLcdLayout: 0x0000
  bPINSupport: 0x00
  bMaxCCIDBusySlots: 1
";

#[test]
fn gempctwin() {
    let profile = ReaderProfile::parse(GEMPCTWIN).expect("parses");
    assert_eq!((profile.vendor_id, profile.product_id), (0x08E6, 0x3437));
    assert_eq!(profile.manufacturer.as_deref(), Some("Gemplus"));
    assert_eq!(profile.product.as_deref(), Some("USB SmartCard Reader"));
    assert_eq!(profile.device_version, 0x0100);
    let [iface] = profile.interfaces.as_slice() else {
        panic!("one interface expected");
    };
    assert_eq!(iface.interface_string, None);
    let d = iface.class_descriptor.expect("class descriptor");
    // The 54 bytes rebuilt by hand from the dump's values (CCID §5.1 offsets).
    assert_eq!(
        d.encode().to_vec(),
        h(
            "36 21 00 01 00 07 03 00 00 00 A0 0F 00 00 A0 0F 00 00 00 00 2A 00 00 16 40 05 00
           00 FE 00 00 00 00 00 00 00 00 00 00 00 30 02 01 00 0F 01 00 00 00 00 00 00 00 01"
        )
    );
    assert_eq!(d.exchange_level(), ExchangeLevel::Tpdu);
    assert!(d.features.auto_clock() && d.features.auto_baud() && d.features.nad());
    assert!(!d.features.auto_pps() && !d.features.auto_ifsd());
    assert!(d.supports_t0() && d.supports_t1());
    assert!(d.supports_5v() && d.supports_3v() && d.supports_1_8v());
    assert_eq!((d.slot_count(), d.max_busy_slots()), (1, 1));
    assert_eq!((d.max_message_length(), d.max_ifsd()), (271, 254));
    assert!(!d.pin_verify() && !d.pin_modify());

    let (_, found) = check_dump(GEMPCTWIN).expect("round trip");
    let [reader] = found.as_slice() else {
        panic!("one ccid interface expected");
    };
    assert_eq!(reader.descriptor, d);
    assert!(!reader.is_vendor_class() && !reader.is_iccd());
    assert_eq!(reader.bulk_out.as_ref().map(|e| e.address), Some(0x02));
    assert_eq!(reader.bulk_in.as_ref().map(|e| e.address), Some(0x81));
    assert_eq!(reader.interrupt_in.as_ref().map(|e| e.address), Some(0x83));
    assert_eq!(reader.bulk_in.as_ref().map(|e| e.max_packet_size), Some(64));
    assert_eq!(
        reader.interrupt_in.as_ref().map(|e| e.max_packet_size),
        Some(8)
    );

    // The corpus file is the same reader with every data rate listed.
    let from_corpus = ReaderProfile::parse(&dump("GemPCTwin.txt")).expect("corpus parses");
    assert_eq!(from_corpus.interfaces[0].class_descriptor, Some(d));
}

#[test]
fn spr532_vendor_class_pin_pad() {
    let profile = ReaderProfile::parse(&dump("SPR532.txt")).expect("parses");
    assert_eq!((profile.vendor_id, profile.product_id), (0x04E6, 0xE003));
    assert_eq!(profile.device_version, 0x0510);
    assert_eq!(profile.interfaces[0].interface_string.as_deref(), Some("4"));
    let (_, found) = check_dump(&dump("SPR532.txt")).expect("round trip");
    let [reader] = found.as_slice() else {
        panic!("one ccid interface expected");
    };
    assert_eq!(reader.class, 0xFF);
    assert!(reader.is_vendor_class());
    let d = reader.descriptor;
    assert_eq!(d.descriptor_type, 0x21);
    assert_eq!(d.features.bits(), 0x0001_00BA);
    assert_eq!(d.exchange_level(), ExchangeLevel::Tpdu);
    assert!(d.features.auto_parameters_from_atr() && d.features.auto_voltage());
    assert!(d.features.auto_pps() && !d.features.auto_parameter_negotiation());
    assert!(d.pin_verify() && d.pin_modify());
    assert_eq!((d.class_get_response, d.class_envelope), (0xFF, 0xFF));
    assert_eq!(d.max_message_length(), 270);
    assert_eq!((d.default_clock, d.maximum_clock), (4000, 8000));
    assert!(d.supports_5v() && !d.supports_3v() && !d.supports_1_8v());
}

#[test]
fn proprietary_descriptor_type_readers() {
    // The five dumps that print "PROPRIETARY bDescriptorType" (class descriptor type 0xFF).
    for name in [
        "DellSK-3106.txt",
        "Gem_e-SealPro.txt",
        "MySmartPad.txt",
        "Verisign_secure_storage_token.txt",
        "Verisign_secure_token.txt",
    ] {
        let (profile, found) = check_dump(&dump(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!found.is_empty(), "{name}");
        for reader in &found {
            assert_eq!(reader.descriptor.descriptor_type, 0xFF, "{name}");
            assert_eq!(reader.class, 0xFF, "{name}");
        }
        assert!(profile.interfaces.iter().all(|i| i
            .class_field("bDescriptorType")
            .is_some_and(|f| f.notes == ["PROPRIETARY bDescriptorType"])));
    }
}

#[test]
fn descriptor_after_the_endpoints() {
    // O2Micro OZ776 and others put the class descriptor after the last endpoint (libccid
    // O2MICRO_OZ776_PATCH): move it there in every dump's configuration and find it again.
    let mut moved = 0;
    for (name, text) in corpus().iter().step_by(7) {
        let profile = ReaderProfile::parse(text).expect("parses");
        let mut config = profile.to_configuration().expect("configuration");
        let before = card_relay::proto::descriptor::ccid_interfaces(&config);
        for interface in &mut config.interfaces {
            if let Some(last) = interface.endpoints.last_mut() {
                last.extra.append(&mut interface.extra);
            }
        }
        let bytes = config.encode().expect("encodes");
        let parsed = parse_configuration(&bytes).expect("parses back");
        assert_eq!(parsed, config, "{name}");
        let after = find_ccid_interfaces(&bytes).expect("found");
        assert_eq!(after.len(), before.len(), "{name}");
        for (a, b) in after.iter().zip(&before) {
            assert_eq!(a.descriptor, b.descriptor, "{name}");
            assert_eq!(
                (a.number, a.class, a.protocol),
                (b.number, b.class, b.protocol),
                "{name}"
            );
            let addresses = |i: &CcidInterface| {
                [&i.bulk_in, &i.bulk_out, &i.interrupt_in].map(|e| e.as_ref().map(|e| e.address))
            };
            assert_eq!(addresses(a), addresses(b), "{name}");
        }
        moved += after.len();
    }
    assert!(moved > 90, "only {moved} interfaces moved");
}

#[test]
fn multi_interface_readers_get_distinct_endpoints() {
    // Access IS ATR220 has five CCID interfaces, the most in the corpus.
    let (profile, found) = check_dump(&dump("Access_IS_ATR220_0x0184.txt")).expect("round trip");
    assert_eq!(profile.interfaces.len(), 5);
    assert_eq!(found.len(), 5);
    let mut addresses: Vec<u8> = found
        .iter()
        .flat_map(|i| [&i.bulk_in, &i.bulk_out, &i.interrupt_in])
        .flatten()
        .map(|e| e.address)
        .collect();
    let total = addresses.len();
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(addresses.len(), total);
    let numbers: Vec<u8> = found.iter().map(|i| i.number).collect();
    assert_eq!(numbers, [0, 1, 2, 3, 4]);
}
