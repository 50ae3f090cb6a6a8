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
    assert!(!f.clock_stop() && !f.nad() && !f.auto_ifsd() && !f.iccd_token() && !f.usb_wake_up());
    let all = Features(0x0012_0F00);
    assert!(
        all.clock_stop() && all.nad() && all.auto_ifsd() && all.iccd_token() && all.usb_wake_up()
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
