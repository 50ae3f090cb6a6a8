use crate::testing::test;

use super::*;
use crate::proto::hex::h;

// LudovicRousseau/CCID#72 (pcscd log, Feitian R502): a T=1 I-block sent in an XfrBlock.
const XFR_T1_SELECT: &str =
    "6F 0F 00 00 00 00 17 00 00 00  00 40 0B 00 A4 04 00 06 11 22 33 44 55 66 9A";
// Same log: the reader's DataBlock answer, an R-block.
const DATA_BLOCK_R: &str = "80 04 00 00 00 00 17 00 00 00  00 82 00 82";
// Same log, next exchange: the host's R-block and the card's I-block with SW 6D 00.
const XFR_R_BLOCK: &str = "6F 04 00 00 00 00 18 00 00 00  00 92 00 92";
const DATA_BLOCK_6D00: &str = "80 06 00 00 00 00 18 00 00 00  00 00 02 6D 00 6F";
// LudovicRousseau/PCSC#66 (pcscd log, Identiv 04E6:5790): GetSlotStatus and the answer
// "card absent, command failed, ICC_MUTE, clock stopped low".
const GET_SLOT_STATUS: &str = "65 00 00 00 00 00 00 00 00 00";
const SLOT_STATUS_ABSENT: &str = "81 00 00 00 00 00 00 42 FE 01";

#[test]
fn xfr_block_from_pcscd_log() {
    let bytes = h(XFR_T1_SELECT);
    let m = PcToRdrXfrBlock::decode(&bytes).unwrap();
    assert_eq!((m.slot, m.seq, m.bwi, m.level_parameter), (0, 0x17, 0, 0));
    assert_eq!(m.data, h("00 40 0B 00 A4 04 00 06 11 22 33 44 55 66 9A"));
    assert_eq!(m.encode(), bytes);
    assert_eq!(bytes.len(), HEADER_LEN + 15);
    let any = PcToRdr::decode(&bytes).unwrap();
    assert_eq!(any, PcToRdr::XfrBlock(m));
    assert_eq!((any.slot(), any.seq()), (0, 0x17));
    assert_eq!(any.response_type(), message_type::DATA_BLOCK);
    assert_eq!(any.encode(), bytes);

    let r = PcToRdrXfrBlock::decode(&h(XFR_R_BLOCK)).unwrap();
    assert_eq!((r.seq, r.data.as_slice()), (0x18, &h("00 92 00 92")[..]));
}

#[test]
fn data_block_from_pcscd_log() {
    let bytes = h(DATA_BLOCK_R);
    let m = RdrToPcDataBlock::decode(&bytes).unwrap();
    assert_eq!((m.slot, m.seq, m.chain_parameter), (0, 0x17, 0));
    assert_eq!(m.state, SlotState::ok(IccStatus::PresentActive));
    assert!(m.state.is_ok());
    assert_eq!(m.state.error(), None);
    assert_eq!(m.data, h("00 82 00 82"));
    assert_eq!(m.encode(), bytes);

    let bytes = h(DATA_BLOCK_6D00);
    let any = RdrToPc::decode(&bytes).unwrap();
    assert_eq!((any.slot(), any.seq()), (0, 0x18));
    assert_eq!(any.message_type(), message_type::DATA_BLOCK);
    assert!(any.state().is_ok());
    assert_eq!(any.encode(), bytes);
}

#[test]
fn slot_status_card_absent() {
    let get = PcToRdr::decode(&h(GET_SLOT_STATUS)).unwrap();
    assert_eq!(
        get,
        PcToRdr::GetSlotStatus(PcToRdrGetSlotStatus { slot: 0, seq: 0 })
    );
    assert_eq!(get.response_type(), message_type::SLOT_STATUS);

    let bytes = h(SLOT_STATUS_ABSENT);
    let m = RdrToPcSlotStatus::decode(&bytes).unwrap();
    assert_eq!(m.state.icc, IccStatus::Absent);
    assert_eq!(m.state.command, CommandStatus::Failed);
    assert_eq!(m.state.error(), Some(SlotError::IccMute));
    assert_eq!(m.state.status_byte(), 0x42);
    assert_eq!(m.clock_status, ClockStatus::StoppedLow);
    assert_eq!(m.encode(), bytes);
    assert_eq!(RdrToPc::decode(&bytes).unwrap().state(), m.state);
}

#[test]
fn time_extension_is_not_an_error() {
    // CCID §6.2.6: bStatus 0x80 = time extension, bError = BWT multiplier (here 2).
    let bytes = h("80 00 00 00 00 00 05 80 02 00");
    let m = RdrToPcDataBlock::decode(&bytes).unwrap();
    assert_eq!(m.state.command, CommandStatus::TimeExtension);
    assert_eq!(m.state.time_extension_multiplier(), Some(2));
    assert_eq!(m.state.error(), None);
    assert!(!m.state.is_ok());
    assert_eq!(
        SlotState::time_extension(IccStatus::PresentActive, 2),
        m.state
    );
    assert_eq!(m.encode(), bytes);
}

#[test]
fn every_status_value() {
    for status in [
        0x00u8, 0x01, 0x02, 0x03, 0x40, 0x41, 0x42, 0x43, 0x80, 0x81, 0xC0, 0xC2,
    ] {
        let s = SlotState::from_bytes(status, 0);
        assert_eq!(s.status_byte(), status);
    }
    // Bits 2-5 are RFU: ignored on decode.
    assert_eq!(SlotState::from_bytes(0x3C, 0).status_byte(), 0x00);
    assert_eq!(SlotState::from_bytes(0xC3, 0).icc, IccStatus::Reserved);
    assert_eq!(
        SlotState::from_bytes(0xC3, 0).command,
        CommandStatus::Reserved
    );
}

#[test]
fn slot_error_codes() {
    // CCID §6.2.6, table 6.2-2, as listed in reference/webusb-ccid.md §3.
    let named = [
        (0xFF, SlotError::CmdAborted),
        (0xFE, SlotError::IccMute),
        (0xFD, SlotError::XfrParityError),
        (0xFC, SlotError::XfrOverrun),
        (0xFB, SlotError::HwError),
        (0xF8, SlotError::BadAtrTs),
        (0xF7, SlotError::BadAtrTck),
        (0xF6, SlotError::IccProtocolNotSupported),
        (0xF5, SlotError::IccClassNotSupported),
        (0xF4, SlotError::ProcedureByteConflict),
        (0xF3, SlotError::DeactivatedProtocol),
        (0xF2, SlotError::BusyWithAutoSequence),
        (0xF0, SlotError::PinTimeout),
        (0xEF, SlotError::PinCancelled),
        (0xE0, SlotError::CmdSlotBusy),
        (0x00, SlotError::CommandNotSupported),
        (0x07, SlotError::BadParameter(7)),
        (0x7F, SlotError::BadParameter(0x7F)),
        (0x80, SlotError::Other(0x80)),
        (0xF1, SlotError::Other(0xF1)),
    ];
    for (code, error) in named {
        assert_eq!(SlotError::from_code(code), error);
        assert_eq!(error.code(), code);
        assert!(!error.description().is_empty());
    }
    for code in 0..=255u8 {
        assert_eq!(SlotError::from_code(code).code(), code);
    }
    assert_eq!(
        SlotError::BadParameter(7).to_string(),
        "bad parameter at offset 7"
    );
    assert_eq!(SlotError::PinCancelled.to_string(), "pin entry cancelled");
}

#[test]
fn power_on_voltages() {
    // CCID §6.1.1: bPowerSelect 0 auto, 1 5 V, 2 3 V, 3 1.8 V.
    for (b, v) in [
        (0, PowerSelect::Auto),
        (1, PowerSelect::V5),
        (2, PowerSelect::V3),
        (3, PowerSelect::V1_8),
    ] {
        let bytes = h(&format!("62 00 00 00 00 00 09 {b:02X} 00 00"));
        let m = PcToRdrIccPowerOn::decode(&bytes).unwrap();
        assert_eq!((m.seq, m.power_select), (9, v));
        assert_eq!(m.encode(), bytes);
    }
    assert_eq!(
        PcToRdrIccPowerOn::decode(&h("62 00 00 00 00 00 09 04 00 00")),
        Err(CcidError::BadField {
            offset: 7,
            value: 4
        })
    );
    // A power-on carries no data.
    assert_eq!(
        PcToRdrIccPowerOn::decode(&h("62 01 00 00 00 00 09 00 00 00 AA")),
        Err(CcidError::BadDataLength {
            message_type: 0x62,
            length: 1
        })
    );
}

#[test]
fn header_only_commands() {
    // CCID §6.1.2, 6.1.3, 6.1.5, 6.1.6, 6.1.13: header alone, RFU bytes zero.
    for (t, expected) in [
        (
            0x63,
            PcToRdr::IccPowerOff(PcToRdrIccPowerOff { slot: 1, seq: 2 }),
        ),
        (
            0x65,
            PcToRdr::GetSlotStatus(PcToRdrGetSlotStatus { slot: 1, seq: 2 }),
        ),
        (
            0x6C,
            PcToRdr::GetParameters(PcToRdrGetParameters { slot: 1, seq: 2 }),
        ),
        (
            0x6D,
            PcToRdr::ResetParameters(PcToRdrResetParameters { slot: 1, seq: 2 }),
        ),
        (0x72, PcToRdr::Abort(PcToRdrAbort { slot: 1, seq: 2 })),
    ] {
        let bytes = h(&format!("{t:02X} 00 00 00 00 01 02 00 00 00"));
        let m = PcToRdr::decode(&bytes).unwrap();
        assert_eq!(m, expected);
        assert_eq!(m.message_type(), t);
        assert_eq!(m.encode(), bytes);
    }
}

#[test]
fn set_parameters_t0_and_t1() {
    // libccid's default T=0 structure (reference/webusb-ccid.md §2.2): 11 00 00 0A 00.
    let t0 = h("61 05 00 00 00 00 03 00 00 00  11 00 00 0A 00");
    let m = PcToRdrSetParameters::decode(&t0).unwrap();
    let ProtocolParameters::T0(p) = m.parameters else {
        panic!("t=0 expected")
    };
    assert_eq!((p.findex_dindex, p.waiting_integer), (0x11, 0x0A));
    assert_eq!(m.encode(), t0);
    assert_eq!(m.encode().len(), HEADER_LEN + 5);

    // CCID §6.1.7 table 6.1-3: Fi/Di 0x13, CRC, BWI 4 CWI 5, IFSC 0xFE, NAD 0.
    let t1 = h("61 07 00 00 00 00 04 01 00 00  13 11 00 45 00 FE 00");
    let m = PcToRdrSetParameters::decode(&t1).unwrap();
    let ProtocolParameters::T1(p) = m.parameters else {
        panic!("t=1 expected")
    };
    assert!(p.uses_crc());
    assert_eq!((p.bwi(), p.cwi(), p.ifsc), (4, 5, 0xFE));
    assert_eq!(m.encode(), t1);

    // A T=0 number with a T=1 length is kept as it is, for the reader to refuse.
    let odd = h("61 07 00 00 00 00 04 00 00 00  13 11 00 45 00 FE 00");
    let m = PcToRdrSetParameters::decode(&odd).unwrap();
    assert!(matches!(
        m.parameters,
        ProtocolParameters::Other {
            protocol_num: 0,
            ..
        }
    ));
    assert_eq!(m.encode(), odd);
}

#[test]
fn parameters_answer() {
    // CCID §6.2.3: the answer echoes the structure; a failed one may have none.
    let bytes = h("82 05 00 00 00 00 03 00 00 00  11 00 00 0A 00");
    let m = RdrToPcParameters::decode(&bytes).unwrap();
    assert_eq!(m.parameters.protocol_num(), 0);
    assert_eq!(m.encode(), bytes);
    let failed = h("82 00 00 00 00 00 03 41 07 00");
    let m = RdrToPcParameters::decode(&failed).unwrap();
    assert_eq!(m.state.error(), Some(SlotError::BadParameter(7)));
    assert_eq!(
        m.parameters,
        ProtocolParameters::Other {
            protocol_num: 0,
            data: Vec::new()
        }
    );
    assert_eq!(m.encode(), failed);
}

#[test]
fn other_commands() {
    // CCID §6.1.8 Escape, §6.1.9 IccClock, §6.1.10 T0APDU, §6.1.11 Secure,
    // §6.1.12 Mechanical, §6.1.14 SetDataRateAndClockFrequency.
    let vectors = [
        "6B 02 00 00 00 00 01 00 00 00  AB CD",
        "6E 00 00 00 00 00 01 01 00 00",
        "6A 00 00 00 00 00 01 03 FF 00",
        "69 03 00 00 00 00 01 04 01 00  00 0F 01",
        "71 00 00 00 00 00 01 02 00 00",
        "73 08 00 00 00 00 01 00 00 00  A0 0F 00 00 00 2A 00 00",
    ];
    for v in vectors {
        let bytes = h(v);
        let m = PcToRdr::decode(&bytes).unwrap();
        assert_eq!(m.encode(), bytes, "{v}");
    }
    let PcToRdr::Secure(s) = PcToRdr::decode(&h(vectors[3])).unwrap() else {
        panic!("secure expected")
    };
    assert_eq!((s.bwi, s.level_parameter, s.data.len()), (4, 1, 3));
    let PcToRdr::SetDataRateAndClockFrequency(r) = PcToRdr::decode(&h(vectors[5])).unwrap() else {
        panic!("set data rate expected")
    };
    assert_eq!(
        r.rates,
        ClockAndDataRate {
            clock_frequency: 4000,
            data_rate: 10752
        }
    );
    assert_eq!(
        PcToRdr::decode(&h("6E 00 00 00 00 00 01 02 00 00")),
        Err(CcidError::BadField {
            offset: 7,
            value: 2
        })
    );
    assert_eq!(
        PcToRdr::decode(&h("71 00 00 00 00 00 01 06 00 00")),
        Err(CcidError::BadField {
            offset: 7,
            value: 6
        })
    );
    assert_eq!(
        PcToRdr::decode(&h("73 04 00 00 00 00 01 00 00 00  A0 0F 00 00")),
        Err(CcidError::BadDataLength {
            message_type: 0x73,
            length: 4
        })
    );
}

#[test]
fn other_answers() {
    // CCID §6.2.4 Escape and §6.2.5 DataRateAndClockFrequency.
    let escape = h("83 01 00 00 00 00 02 00 00 00  90");
    assert!(matches!(RdrToPc::decode(&escape), Ok(RdrToPc::Escape(_))));
    assert_eq!(RdrToPc::decode(&escape).unwrap().encode(), escape);
    let rates = h("84 08 00 00 00 00 02 00 00 00  A0 0F 00 00 00 2A 00 00");
    let RdrToPc::DataRateAndClockFrequency(m) = RdrToPc::decode(&rates).unwrap() else {
        panic!("rates expected")
    };
    assert_eq!(m.rates.map(|r| r.data_rate), Some(10752));
    assert_eq!(m.encode(), rates);
    let failed = h("84 00 00 00 00 00 02 40 00 00");
    let m = RdrToPcDataRateAndClockFrequency::decode(&failed).unwrap();
    assert_eq!(
        (m.rates, m.state.error()),
        (None, Some(SlotError::CommandNotSupported))
    );
    assert_eq!(m.encode(), failed);
}

#[test]
fn framing_errors() {
    assert_eq!(
        RdrToPc::decode(&h("80 00 00 00")),
        Err(CcidError::TruncatedHeader { present: 4 })
    );
    assert_eq!(
        RdrToPc::decode(&[]),
        Err(CcidError::TruncatedHeader { present: 0 })
    );
    // dwLength 4, 3 bytes present.
    assert_eq!(
        RdrToPc::decode(&h("80 04 00 00 00 00 17 00 00 00  00 82 00")),
        Err(CcidError::TruncatedData {
            declared: 4,
            present: 3
        })
    );
    // dwLength 4, 5 bytes present.
    assert_eq!(
        RdrToPc::decode(&h("80 04 00 00 00 00 17 00 00 00  00 82 00 82 00")),
        Err(CcidError::TrailingBytes {
            declared: 4,
            present: 5
        })
    );
    // A huge dwLength is only compared, never allocated.
    assert_eq!(
        RdrToPc::decode(&h("80 FF FF FF FF 00 17 00 00 00")),
        Err(CcidError::TruncatedData {
            declared: u32::MAX,
            present: 0
        })
    );
    assert_eq!(
        RdrToPc::decode(&h(GET_SLOT_STATUS)),
        Err(CcidError::UnknownMessageType(0x65))
    );
    assert_eq!(
        PcToRdr::decode(&h(SLOT_STATUS_ABSENT)),
        Err(CcidError::UnknownMessageType(0x81))
    );
    assert_eq!(
        RdrToPcSlotStatus::decode(&h(DATA_BLOCK_R)),
        Err(CcidError::WrongMessageType {
            expected: 0x81,
            found: 0x80
        })
    );
    assert_eq!(
        RdrToPcSlotStatus::decode(&h("81 01 00 00 00 00 00 00 00 00 00")),
        Err(CcidError::BadDataLength {
            message_type: 0x81,
            length: 1
        })
    );
}

#[test]
fn header_alone() {
    let header = Header::decode(&h(XFR_T1_SELECT)).unwrap();
    assert_eq!(header.message_type, 0x6F);
    assert_eq!(
        (header.length, header.seq, header.message_len()),
        (15, 0x17, 25)
    );
    let mut out = Vec::new();
    header.encode_into(&mut out);
    assert_eq!(out, h("6F 0F 00 00 00 00 17 00 00 00"));
}

#[test]
fn notify_slot_change() {
    // LudovicRousseau/PCSC#66: "NotifySlotChange: 50 02" (slot 0 changed, card gone).
    let m = RdrToPcNotifySlotChange::decode(&h("50 02")).unwrap();
    assert!(m.changed(0) && !m.present(0));
    // LudovicRousseau/PCSC#147: "NotifySlotChange: 50 03" (slot 0 changed, card present).
    let m = RdrToPcNotifySlotChange::decode(&h("50 03")).unwrap();
    assert!(m.changed(0) && m.present(0));
    assert_eq!(m, RdrToPcNotifySlotChange::new(&[(true, true)]));
    assert_eq!(m.encode(), h("50 03"));
    assert_eq!(m.slot_capacity(), 4);
    assert!(!m.present(4) && !m.changed(200));

    // Six slots (libccid: byte slot/4 + 1, change bit 0x02 << 2*(slot%4)):
    // slot 1 present, slot 5 present and changed.
    let m = RdrToPcNotifySlotChange::new(&[
        (false, false),
        (true, false),
        (false, false),
        (false, false),
        (false, false),
        (true, true),
    ]);
    assert_eq!(m.encode(), h("50 04 0C"));
    assert!(m.present(1) && !m.changed(1) && m.present(5) && m.changed(5));
    assert_eq!(
        InterruptMessage::decode(&h("50 04 0C")).unwrap(),
        InterruptMessage::NotifySlotChange(m)
    );
    assert_eq!(RdrToPcNotifySlotChange::new(&[]).encode(), h("50 00"));

    assert_eq!(
        RdrToPcNotifySlotChange::decode(&h("50")),
        Err(CcidError::TruncatedInterrupt)
    );
    assert_eq!(
        InterruptMessage::decode(&[]),
        Err(CcidError::TruncatedInterrupt)
    );
    assert_eq!(
        InterruptMessage::decode(&h("52 00")),
        Err(CcidError::UnknownMessageType(0x52))
    );
    assert_eq!(
        RdrToPcNotifySlotChange::decode(&[0x50; 66]),
        Err(CcidError::InterruptTrailingBytes)
    );
}

#[test]
fn hardware_error() {
    // CCID §6.3.2: overcurrent on slot 0 while command 7 ran.
    let bytes = h("51 00 07 01");
    let m = InterruptMessage::decode(&bytes).unwrap();
    assert_eq!(
        m,
        InterruptMessage::HardwareError(RdrToPcHardwareError {
            slot: 0,
            seq: 7,
            hard_error_code: RdrToPcHardwareError::OVERCURRENT
        })
    );
    assert_eq!(m.encode(), bytes);
    assert_eq!(
        RdrToPcHardwareError::decode(&h("51 00 07")),
        Err(CcidError::TruncatedInterrupt)
    );
    assert_eq!(
        RdrToPcHardwareError::decode(&h("51 00 07 01 00")),
        Err(CcidError::InterruptTrailingBytes)
    );
}

#[test]
fn reassembler_any_split() {
    let first = h(DATA_BLOCK_R);
    let second = h(DATA_BLOCK_6D00);
    let stream: Vec<u8> = first.iter().chain(&second).copied().collect();

    // One byte at a time.
    let mut r = Reassembler::new(271);
    let mut out = Vec::new();
    for b in &stream {
        r.push(std::slice::from_ref(b));
        while let Some(m) = r.pop().unwrap() {
            out.push(m);
        }
    }
    assert_eq!(out, [first.clone(), second.clone()]);
    assert_eq!(r.pending(), 0);

    // The header split in two, then both messages coalesced with the rest.
    let mut r = Reassembler::new(271);
    r.push(&stream[..4]);
    assert_eq!(r.pop(), Ok(None));
    r.push(&stream[4..]);
    assert_eq!(r.pop(), Ok(Some(first)));
    assert_eq!(r.pop(), Ok(Some(second)));
    assert_eq!(r.pop(), Ok(None));
}

#[test]
fn reassembler_refuses_oversized() {
    // dwMaxCCIDMessageLength 271 (GemPCTwin): 10 + 262 bytes is one too many.
    let mut r = Reassembler::new(271);
    r.push(&h("80 06 01 00 00 00 01 00 00 00"));
    assert_eq!(
        r.pop(),
        Err(CcidError::MessageTooLong {
            length: 272,
            max: 271
        })
    );
    assert_eq!(
        r.pop(),
        Err(CcidError::MessageTooLong {
            length: 272,
            max: 271
        })
    );
    r.reset();
    assert_eq!(r.pending(), 0);
    r.push(&h("80 FF FF FF FF 00 01 00 00 00"));
    assert!(matches!(r.pop(), Err(CcidError::MessageTooLong { .. })));
    r.reset();
    // Exactly the maximum is fine.
    r.push(&h("80 05 01 00 00 00 01 00 00 00"));
    r.push(&[0u8; 261]);
    assert_eq!(r.pop().unwrap().map(|m| m.len()), Some(271));
}

// CCID §6.1.4 (wLevelParameter) and §6.2.1 (bChainParameter): the chaining codes at
// extended APDU level.
const CHAIN_CODES: [(u16, Chain); 5] = [
    (0x0000, Chain::Whole),
    (0x0001, Chain::Begins),
    (0x0002, Chain::Ends),
    (0x0003, Chain::Continues),
    (0x0010, Chain::Continue),
];

#[test]
fn chain_codes_from_the_specification() {
    for (value, chain) in CHAIN_CODES {
        assert_eq!(Chain::from_code(value), Some(chain));
        assert_eq!(u16::from(chain), value);
        assert_eq!(u16::from(u8::from(chain)), value);
    }
    for undefined in [0x0004, 0x000F, 0x0011, 0x0100, 0x1000, 0xFFFF] {
        assert_eq!(Chain::from_code(undefined), None, "{undefined:#06x}");
    }
    let last: Vec<Chain> = CHAIN_CODES
        .iter()
        .map(|c| c.1)
        .filter(|c| c.is_last())
        .collect();
    assert_eq!(last, [Chain::Whole, Chain::Ends]);
}

#[test]
fn data_block_chain_parameter() {
    // bChainParameter is byte 9: 01 = the response begins here and continues.
    let begins = RdrToPcDataBlock::decode(&h("80 03 00 00 00 00 05 00 00 01  11 22 33")).unwrap();
    assert_eq!(begins.chain(), Some(Chain::Begins));
    // 10 = empty abData, the reader expects the next part of the command.
    let more = RdrToPcDataBlock::decode(&h("80 00 00 00 00 00 06 00 00 10")).unwrap();
    assert_eq!(more.chain(), Some(Chain::Continue));
    let undefined = RdrToPcDataBlock::decode(&h("80 00 00 00 00 00 07 00 00 05")).unwrap();
    assert_eq!(undefined.chain(), None);
}

#[test]
fn level_parameter_is_little_endian() {
    // wLevelParameter is bytes 8..10, little-endian: 10 00 = 0x0010, 00 10 = 0x1000.
    let next = PcToRdrXfrBlock::decode(&h("6F 00 00 00 00 00 06 00 10 00")).unwrap();
    assert_eq!(next.chain(), Some(Chain::Continue));
    let undefined = PcToRdrXfrBlock::decode(&h("6F 00 00 00 00 00 06 00 00 10")).unwrap();
    assert_eq!(undefined.chain(), None);
    let ends = PcToRdrSecure::decode(&h("69 01 00 00 00 00 07 00 02 00  00")).unwrap();
    assert_eq!(ends.chain(), Some(Chain::Ends));
}

#[test]
fn split_chains_a_long_apdu() {
    let apdu: Vec<u8> = (0..300u16).map(|i| i.to_le_bytes()[0]).collect();
    let parts = Chain::split(&apdu, 128);
    let shape: Vec<(Chain, usize)> = parts.iter().map(|(c, p)| (*c, p.len())).collect();
    assert_eq!(
        shape,
        [
            (Chain::Begins, 128),
            (Chain::Continues, 128),
            (Chain::Ends, 44)
        ]
    );
    let joined: Vec<u8> = parts.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    assert_eq!(joined, apdu);
    assert_eq!(
        Chain::split(&apdu[..128], 128),
        [(Chain::Whole, &apdu[..128])]
    );
    assert_eq!(Chain::split(&apdu[..129], 128).len(), 2);
    assert_eq!(Chain::split(&[], 128), [(Chain::Whole, &[][..])]);
    // A zero limit still makes progress, one byte per part.
    assert_eq!(Chain::split(&apdu[..3], 0).len(), 3);
}
