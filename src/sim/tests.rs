//! The simulated reader at the USB level: descriptors, packets, faults, CCID answers.

use crate::testing::test;

use super::ccid::format_pin;
use super::usb::{
    DISCONNECTED, NOT_OPEN, NO_ALTERNATE, NO_CONFIGURATION, NO_CONFIGURATION_VALUE, NO_ENDPOINT,
    NO_INTERFACE,
};
use super::*;
use crate::proto::ccid::{PcToRdr, PcToRdrGetSlotStatus, PcToRdrIccPowerOn, PowerSelect};
use crate::proto::hex::h;

fn opened(config: SimConfig) -> SimulatedReader {
    let mut sim = SimulatedReader::new(config).unwrap();
    sim.open().unwrap();
    sim.select_configuration(1).unwrap();
    sim.claim_interface(0).unwrap();
    sim
}

fn read(sim: &mut SimulatedReader, length: usize) -> Vec<u8> {
    match sim.transfer_in(1, length) {
        InTransfer::Ready(Ok(data)) => data,
        other => panic!("expected data, got {other:?}"),
    }
}

const GET_DESCRIPTOR: ControlSetup = ControlSetup {
    request_type: RequestType::Standard,
    recipient: Recipient::Device,
    request: 0x06,
    value: 0x0100,
    index: 0,
};

#[test]
fn descriptors() {
    let mut sim = SimulatedReader::new(SimConfig::default()).unwrap();
    assert_eq!(sim.control_transfer_in(GET_DESCRIPTOR, 18), Err(NOT_OPEN));
    sim.open().unwrap();
    // USB 2.0 §9.6.1: the default profile's device descriptor, 1209:0001.
    assert_eq!(
        sim.control_transfer_in(GET_DESCRIPTOR, 64).unwrap(),
        h("12 01 00 02 00 00 00 40 09 12 01 00 00 01 01 02 00 01")
    );
    let config = ControlSetup {
        value: 0x0200,
        ..GET_DESCRIPTOR
    };
    // wLength 9 first (as hosts do), then the whole set: 9 + 9 + 54 + 3 x 7 bytes.
    assert_eq!(
        sim.control_transfer_in(config, 9).unwrap(),
        h("09 02 5D 00 01 01 00 80 32")
    );
    let all = sim.control_transfer_in(config, 0xFFFF).unwrap();
    assert_eq!(all.len(), 93);
    assert_eq!(&all[18..20], &[0x36, 0x21]);
    let strings = |index: u16| ControlSetup {
        value: 0x0300 | index,
        ..GET_DESCRIPTOR
    };
    assert_eq!(
        sim.control_transfer_in(strings(0), 255).unwrap(),
        h("04 03 09 04")
    );
    let manufacturer = sim.control_transfer_in(strings(1), 255).unwrap();
    assert_eq!(&manufacturer[..6], &h("16 03 63 00 61 00")[..]);
    assert_eq!(manufacturer.len(), 2 + 2 * "card-relay".len());
    assert_eq!(
        sim.control_transfer_in(strings(3), 255),
        Err(UsbFault::Stall)
    );
    assert_eq!(
        sim.control_transfer_in(
            ControlSetup {
                value: 0x0600,
                ..GET_DESCRIPTOR
            },
            10
        ),
        Err(UsbFault::Stall)
    );
}

#[test]
fn claim_rules_and_refusals() {
    let mut sim = SimulatedReader::new(SimConfig::default()).unwrap();
    assert_eq!(sim.select_configuration(1), Err(NOT_OPEN));
    sim.set_fault(Fault::AccessDenied(true));
    assert_eq!(sim.open(), Err(ACCESS_DENIED));
    sim.set_fault(Fault::AccessDenied(false));
    sim.open().unwrap();
    assert_eq!(sim.claim_interface(0), Err(NO_CONFIGURATION));
    assert_eq!(sim.select_configuration(2), Err(NO_CONFIGURATION_VALUE));
    sim.select_configuration(1).unwrap();
    assert_eq!(sim.claim_interface(1), Err(NO_INTERFACE));
    sim.set_fault(Fault::ProtectedClass(true));
    let refused = sim.claim_interface(0).unwrap_err();
    assert_eq!(refused.name(), Some("SecurityError"));
    assert_eq!(
        refused.to_string(),
        "SecurityError: The requested interface implements a protected class."
    );
    sim.clear_faults();
    sim.set_fault(Fault::Busy(true));
    assert_eq!(sim.claim_interface(0), Err(UNABLE_TO_CLAIM));
    sim.clear_faults();
    assert_eq!(sim.transfer_out(2, &[0]), Err(NO_ENDPOINT));
    sim.claim_interface(0).unwrap();
    assert!(sim.is_claimed(0));
    sim.select_alternate_interface(0, 0).unwrap();
    assert_eq!(sim.select_alternate_interface(0, 1), Err(NO_ALTERNATE));
    assert_eq!(sim.transfer_out(1, &[0]), Err(NO_ENDPOINT));
    sim.release_interface(0).unwrap();
    assert_eq!(sim.transfer_in(1, 64), InTransfer::Ready(Err(NO_ENDPOINT)));
}

#[test]
fn protected_class_spares_vendor_class_readers() {
    // reference/webusb-ccid.md §1.5: a 0xFF CCID interface is not protected.
    let text = profiles::DEFAULT_DUMP.replace("bInterfaceClass: 0x0B", "bInterfaceClass: 0xFF");
    let mut sim = SimulatedReader::new(SimConfig {
        profile: Profile::dump("vendor", text),
        ..SimConfig::default()
    })
    .unwrap();
    sim.set_fault(Fault::ProtectedClass(true));
    sim.open().unwrap();
    sim.select_configuration(1).unwrap();
    sim.claim_interface(0).unwrap();
}

#[test]
fn slot_status_and_seq_echo() {
    let mut sim = opened(SimConfig::default());
    assert_eq!(sim.transfer_in(1, 64), InTransfer::Pending);
    // CCID §6.1.3 GetSlotStatus, bSeq 7 echoed; card present, inactive.
    sim.transfer_out(2, &h("65 00 00 00 00 00 07 00 00 00"))
        .unwrap();
    assert_eq!(read(&mut sim, 64), h("81 00 00 00 00 00 07 01 00 00"));
    sim.remove_card(0).unwrap();
    sim.transfer_out(2, &h("65 00 00 00 00 00 08 00 00 00"))
        .unwrap();
    assert_eq!(read(&mut sim, 64), h("81 00 00 00 00 00 08 02 00 00"));
    // Slot 1 does not exist: bError 5, the offset of bSlot.
    sim.transfer_out(2, &h("65 00 00 00 00 01 09 00 00 00"))
        .unwrap();
    assert_eq!(read(&mut sim, 64), h("81 00 00 00 00 01 09 42 05 00"));
    // An unknown message type: command not supported.
    sim.transfer_out(2, &h("60 00 00 00 00 00 0A 00 00 00"))
        .unwrap();
    assert_eq!(read(&mut sim, 64), h("81 00 00 00 00 00 0A 42 00 00"));
}

#[test]
fn interrupt_notifications_merge() {
    let mut sim = opened(SimConfig::default());
    // CCID §6.3.1: the card present at start, changed.
    assert_eq!(sim.transfer_in(3, 8), InTransfer::Ready(Ok(h("50 03"))));
    assert_eq!(sim.transfer_in(3, 8), InTransfer::Pending);
    sim.remove_card(0).unwrap();
    sim.insert_card(0, CardConfig::pin()).unwrap();
    assert!(sim.interrupt_ready());
    assert_eq!(sim.transfer_in(3, 8), InTransfer::Ready(Ok(h("50 03"))));
    sim.remove_card(0).unwrap();
    assert_eq!(sim.take_interrupt(), Some(h("50 02")));
    sim.hardware_error(0).unwrap();
    assert_eq!(sim.take_interrupt(), Some(h("51 00 00 01")));
}

#[test]
fn packets_split_and_babble() {
    let mut sim = opened(SimConfig::default());
    let power_on = PcToRdr::IccPowerOn(PcToRdrIccPowerOn {
        slot: 0,
        seq: 1,
        power_select: PowerSelect::Auto,
    });
    sim.transfer_out(2, &power_on.encode()).unwrap();
    // 10 + 24 bytes: one short packet, whatever the length asked.
    assert_eq!(read(&mut sim, 4096).len(), 34);
    // Read with 10 bytes: the packet does not fit, babble.
    sim.transfer_out(2, &power_on.encode()).unwrap();
    assert_eq!(
        sim.transfer_in(1, 10),
        InTransfer::Ready(Err(UsbFault::Babble(h("80 18 00 00 00 00 01 00 00 00"))))
    );
    assert!(!sim.bulk_in_ready());
    sim.set_fault(Fault::SplitTransfers(true));
    sim.transfer_out(2, &power_on.encode()).unwrap();
    let mut got = Vec::new();
    while sim.bulk_in_ready() {
        let chunk = read(&mut sim, 64);
        assert_eq!(chunk.len(), 1);
        got.extend(chunk);
    }
    assert_eq!(got.len(), 34);
}

#[test]
fn a_long_message_in_packets() {
    // The default reader at short APDU level: GET CHALLENGE with Le 00 is answered by
    // 10 + 256 + 2 = 268 bytes, four 64-byte packets and a short one of 12.
    let text = profiles::DEFAULT_DUMP.replace("0x000100BA", "0x000200BA");
    let mut sim = opened(SimConfig {
        profile: Profile::dump("short", text),
        ..SimConfig::default()
    });
    sim.transfer_out(2, &h("62 00 00 00 00 00 01 00 00 00"))
        .unwrap();
    read(&mut sim, 64);
    let challenge = h("6F 05 00 00 00 00 02 00 00 00 00 84 00 00 00");
    sim.transfer_out(2, &challenge).unwrap();
    let sizes: Vec<usize> = (0..5).map(|_| read(&mut sim, 64).len()).collect();
    assert_eq!(sizes, [64, 64, 64, 64, 12]);
    assert_eq!(sim.transfer_in(1, 64), InTransfer::Pending);
    // Read with a large length, the same answer comes whole.
    sim.transfer_out(2, &challenge).unwrap();
    assert_eq!(read(&mut sim, 4096).len(), 268);
    // Read with 100 bytes: the second packet does not fit, babble with 100 bytes.
    sim.transfer_out(2, &challenge).unwrap();
    let InTransfer::Ready(Err(UsbFault::Babble(part))) = sim.transfer_in(1, 100) else {
        panic!("babble expected");
    };
    assert_eq!(part.len(), 100);
    // The lost packet is gone; the rest of the message follows.
    assert_eq!(read(&mut sim, 4096).len(), 268 - 128);
}

#[test]
fn stall_until_clear_halt() {
    let mut sim = opened(SimConfig::default());
    sim.set_fault(Fault::StallOut(true));
    let status = PcToRdr::GetSlotStatus(PcToRdrGetSlotStatus { slot: 0, seq: 3 }).encode();
    assert_eq!(sim.transfer_out(2, &status), Err(UsbFault::Stall));
    sim.clear_halt(false, 2).unwrap();
    sim.transfer_out(2, &status).unwrap();
    sim.set_fault(Fault::StallIn(true));
    assert_eq!(
        sim.transfer_in(1, 64),
        InTransfer::Ready(Err(UsbFault::Stall))
    );
    sim.clear_halt(true, 1).unwrap();
    assert_eq!(read(&mut sim, 64)[6], 3);
}

#[test]
fn disconnect_fails_everything() {
    let mut sim = opened(SimConfig::default());
    sim.disconnect();
    assert_eq!(sim.transfer_in(1, 64), InTransfer::Ready(Err(DISCONNECTED)));
    assert_eq!(sim.open(), Err(DISCONNECTED));
    assert_eq!(
        DISCONNECTED.to_string(),
        "NotFoundError: The device was disconnected."
    );
}

#[test]
fn message_longer_than_the_reader_takes() {
    let mut sim = opened(SimConfig::default());
    // dwLength 262: 272 bytes, one more than dwMaxCCIDMessageLength 271.
    let mut msg = h("6F 06 01 00 00 00 05 00 00 00");
    msg.extend(vec![0; 262]);
    sim.transfer_out(2, &msg).unwrap();
    assert_eq!(read(&mut sim, 64), h("80 00 00 00 00 00 05 41 01 00"));
}

#[test]
fn a_command_over_several_transfers() {
    let mut sim = opened(SimConfig::default());
    sim.transfer_out(2, &h("65 00 00 00")).unwrap();
    assert_eq!(sim.transfer_in(1, 64), InTransfer::Pending);
    sim.transfer_out(2, &h("00 00 04 00 00 00")).unwrap();
    assert_eq!(read(&mut sim, 64)[6], 4);
}

#[test]
fn pin_formatting() {
    // CCID §6.1.11.4 example shape: ASCII PIN at byte 0 of an 8-byte block, no length field.
    let apdu = format_pin(
        &h("00 20 00 81 08 FF FF FF FF FF FF FF FF"),
        "123456",
        0x82,
        0x08,
        0x00,
    );
    assert_eq!(apdu.unwrap(), h("00 20 00 81 08 31 32 33 34 35 36 FF FF"));
    // BCD with a 4-bit length field at bit 4 (format 2 PIN block: 2N PP PP ...).
    let apdu = format_pin(
        &h("00 20 00 81 08 20 FF FF FF FF FF FF FF"),
        "1234",
        0x89,
        0x47,
        0x04,
    );
    assert_eq!(apdu.unwrap(), h("00 20 00 81 08 24 12 34 FF FF FF FF FF"));
    // No block: the PIN alone, ASCII.
    assert_eq!(
        format_pin(&h("00 20 00 81"), "12", 0x82, 0, 0).unwrap(),
        h("00 20 00 81 02 31 32")
    );
    assert_eq!(format_pin(&h("00 20 00 81"), "1a", 0x82, 0, 0), None);
    assert_eq!(
        format_pin(&h("00 20 00 81 02 FF FF"), "123", 0x82, 0x02, 0),
        None
    );
}

#[test]
fn fault_names() {
    assert_eq!(
        Fault::from_name("timeExtensions", 3).unwrap(),
        Fault::TimeExtensions(3)
    );
    assert_eq!(Fault::from_name("mute", 1).unwrap(), Fault::MuteCard(true));
    assert_eq!(
        Fault::from_name("stale", 0).unwrap(),
        Fault::StaleResponse(false)
    );
    assert!(matches!(
        Fault::from_name("nope", 1),
        Err(SimError::UnknownFault(_))
    ));
}

/// Whatever a host writes, the simulator answers without panicking.
#[cfg(not(target_arch = "wasm32"))]
mod prop {
    use super::*;
    use proptest::prelude::*;

    fn any_level() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("0x000100BA"),
            Just("0x000200BA"),
            Just("0x000400FE"),
            Just("0x000004BA"),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bulk_out_never_panics(
            level in any_level(),
            atr in prop_oneof![Just(card::SEED_ATR.to_vec()), Just(card::T0_ATR.to_vec())],
            messages in proptest::collection::vec(
                (any::<u8>(), 0u8..2, any::<u8>(), any::<[u8; 3]>(),
                 proptest::collection::vec(any::<u8>(), 0..40)),
                1..12),
        ) {
            let text = profiles::DEFAULT_DUMP.replace("0x000100BA", level);
            let mut sim = opened(SimConfig {
                profile: Profile::dump("p", text),
                card: Some(CardConfig::pin().with_atr(atr)),
                seed: 5,
            });
            // Power on first, so XfrBlocks reach the card.
            sim.transfer_out(2, &h("62 00 00 00 00 00 00 00 00 00")).unwrap();
            read(&mut sim, 271);
            for (kind, slot, seq, specific, data) in messages {
                // Mostly valid message types, with a few others.
                let kind = [0x62, 0x63, 0x65, 0x6F, 0x6C, 0x6D, 0x61, 0x6B, 0x6E, 0x6A,
                    0x69, 0x71, 0x72, 0x73, kind][usize::from(kind % 15)];
                let mut msg = vec![kind];
                msg.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
                msg.extend_from_slice(&[slot, seq]);
                msg.extend_from_slice(&specific);
                msg.extend_from_slice(&data);
                prop_assert!(sim.transfer_out(2, &msg).is_ok());
                while sim.bulk_in_ready() {
                    if let InTransfer::Ready(Ok(answer)) = sim.transfer_in(1, 4096) {
                        prop_assert!(answer.len() >= 10);
                        prop_assert_eq!(answer[6], seq);
                    }
                }
            }
            let _ = sim.transfer_out(2, &[0x6F, 0xFF, 0xFF]);
        }

        #[test]
        fn arbitrary_apdus_and_blocks_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut applet = card::Applet::new(CardApp::Pin, 1);
            let _ = applet.apdu(&bytes);
            let _ = applet.tpdu(&bytes);
            let mut card = card::SimCard::new(CardConfig::seed(), 1).unwrap();
            card.reset(32);
            let _ = card.t1(&bytes);
        }
    }
}
