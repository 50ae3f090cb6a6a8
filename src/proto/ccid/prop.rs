use super::*;
use proptest::prelude::*;

fn state() -> impl Strategy<Value = SlotState> {
    (any::<u8>(), any::<u8>()).prop_map(|(s, e)| SlotState::from_bytes(s & 0xC3, e))
}

fn parameters() -> impl Strategy<Value = ProtocolParameters> {
    prop_oneof![
        (proptest::collection::vec(any::<u8>(), 5)).prop_map(|d| ProtocolParameters::raw(0, &d)),
        (proptest::collection::vec(any::<u8>(), 7)).prop_map(|d| ProtocolParameters::raw(1, &d)),
        (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..9))
            .prop_map(|(p, d)| ProtocolParameters::raw(p, &d)),
    ]
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

fn pc_to_rdr() -> impl Strategy<Value = PcToRdr> {
    let power = prop_oneof![
        Just(PowerSelect::Auto),
        Just(PowerSelect::V5),
        Just(PowerSelect::V3),
        Just(PowerSelect::V1_8)
    ];
    let mechanical = prop_oneof![
        Just(MechanicalFunction::Accept),
        Just(MechanicalFunction::Eject),
        Just(MechanicalFunction::Capture),
        Just(MechanicalFunction::Lock),
        Just(MechanicalFunction::Unlock)
    ];
    (
        any::<u8>(),
        any::<u8>(),
        any::<(u8, u16, u8, u8)>(),
        data(),
        power,
        mechanical,
        parameters(),
        0..14u8,
    )
        .prop_map(
            |(slot, seq, (b, w, c, d), data, power_select, function, parameters, kind)| match kind {
                0 => PcToRdr::IccPowerOn(PcToRdrIccPowerOn {
                    slot,
                    seq,
                    power_select,
                }),
                1 => PcToRdr::IccPowerOff(PcToRdrIccPowerOff { slot, seq }),
                2 => PcToRdr::GetSlotStatus(PcToRdrGetSlotStatus { slot, seq }),
                3 => PcToRdr::XfrBlock(PcToRdrXfrBlock {
                    slot,
                    seq,
                    bwi: b,
                    level_parameter: w,
                    data,
                }),
                4 => PcToRdr::GetParameters(PcToRdrGetParameters { slot, seq }),
                5 => PcToRdr::ResetParameters(PcToRdrResetParameters { slot, seq }),
                6 => PcToRdr::SetParameters(PcToRdrSetParameters {
                    slot,
                    seq,
                    parameters,
                }),
                7 => PcToRdr::Escape(PcToRdrEscape { slot, seq, data }),
                8 => PcToRdr::IccClock(PcToRdrIccClock {
                    slot,
                    seq,
                    command: if b & 1 == 0 {
                        ClockCommand::Restart
                    } else {
                        ClockCommand::Stop
                    },
                }),
                9 => PcToRdr::T0Apdu(PcToRdrT0Apdu {
                    slot,
                    seq,
                    changes: b,
                    class_get_response: c,
                    class_envelope: d,
                }),
                10 => PcToRdr::Secure(PcToRdrSecure {
                    slot,
                    seq,
                    bwi: b,
                    level_parameter: w,
                    data,
                }),
                11 => PcToRdr::Mechanical(PcToRdrMechanical {
                    slot,
                    seq,
                    function,
                }),
                12 => PcToRdr::Abort(PcToRdrAbort { slot, seq }),
                _ => PcToRdr::SetDataRateAndClockFrequency(PcToRdrSetDataRateAndClockFrequency {
                    slot,
                    seq,
                    rates: ClockAndDataRate {
                        clock_frequency: u32::from(w) << 8 | u32::from(c),
                        data_rate: u32::from(b) << 16 | u32::from(d),
                    },
                }),
            },
        )
}

fn rdr_to_pc() -> impl Strategy<Value = RdrToPc> {
    (
        any::<u8>(),
        any::<u8>(),
        state(),
        any::<u8>(),
        data(),
        parameters(),
        any::<Option<(u32, u32)>>(),
        0..5u8,
    )
        .prop_map(
            |(slot, seq, state, b, data, parameters, rates, kind)| match kind {
                0 => RdrToPc::DataBlock(RdrToPcDataBlock {
                    slot,
                    seq,
                    state,
                    chain_parameter: b,
                    data,
                }),
                1 => RdrToPc::SlotStatus(RdrToPcSlotStatus {
                    slot,
                    seq,
                    state,
                    clock_status: ClockStatus::from_byte(b),
                }),
                2 => RdrToPc::Parameters(RdrToPcParameters {
                    slot,
                    seq,
                    state,
                    parameters,
                }),
                3 => RdrToPc::Escape(RdrToPcEscape {
                    slot,
                    seq,
                    state,
                    data,
                }),
                _ => RdrToPc::DataRateAndClockFrequency(RdrToPcDataRateAndClockFrequency {
                    slot,
                    seq,
                    state,
                    rates: rates.map(|(clock_frequency, data_rate)| ClockAndDataRate {
                        clock_frequency,
                        data_rate,
                    }),
                }),
            },
        )
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = PcToRdr::decode(&bytes);
        let _ = RdrToPc::decode(&bytes);
        let _ = InterruptMessage::decode(&bytes);
        let _ = Header::decode(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_plausible_headers(
        t in prop_oneof![0x61u8..=0x73, 0x80u8..=0x84],
        len in 0u32..20,
        rest in proptest::collection::vec(any::<u8>(), 5..30),
    ) {
        let mut bytes = vec![t];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&rest);
        let _ = PcToRdr::decode(&bytes);
        let _ = RdrToPc::decode(&bytes);
    }

    #[test]
    fn pc_to_rdr_round_trips(m in pc_to_rdr()) {
        let bytes = m.encode();
        prop_assert_eq!(PcToRdr::decode(&bytes), Ok(m));
    }

    #[test]
    fn rdr_to_pc_round_trips(m in rdr_to_pc()) {
        let bytes = m.encode();
        prop_assert_eq!(RdrToPc::decode(&bytes), Ok(m));
    }

    #[test]
    fn notify_round_trips(states in proptest::collection::vec(any::<(bool, bool)>(), 1..256)) {
        let m = RdrToPcNotifySlotChange::new(&states);
        let decoded = RdrToPcNotifySlotChange::decode(&m.encode()).unwrap();
        for (slot, (present, changed)) in states.iter().enumerate() {
            let slot = u8::try_from(slot).unwrap();
            prop_assert_eq!(decoded.present(slot), *present);
            prop_assert_eq!(decoded.changed(slot), *changed);
        }
    }

    #[test]
    fn reassembler_any_chunking(
        messages in proptest::collection::vec(rdr_to_pc(), 1..5),
        cuts in proptest::collection::vec(1usize..40, 0..40),
    ) {
        let encoded: Vec<Vec<u8>> = messages.iter().map(RdrToPc::encode).collect();
        let stream = encoded.concat();
        let mut r = Reassembler::new(65_546);
        let mut out = Vec::new();
        let mut at = 0;
        let mut cut = cuts.iter().cycle();
        while at < stream.len() {
            let n = (*cut.next().unwrap_or(&7)).min(stream.len() - at);
            r.push(&stream[at..at + n]);
            at += n;
            while let Some(m) = r.pop().unwrap() {
                out.push(m);
            }
        }
        prop_assert_eq!(out, encoded);
    }
}
