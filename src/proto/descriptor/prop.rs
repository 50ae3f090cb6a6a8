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
            |([configuration_value, string_index, attributes, max_power], interfaces, extra)| {
                Configuration {
                    configuration_value,
                    string_index,
                    attributes,
                    max_power,
                    interfaces,
                    extra,
                }
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
