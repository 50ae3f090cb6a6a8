//! The reader state machine against a scripted CCID reader: every command it sends is
//! decoded and checked, and answered with hand-built RDR_to_PC messages or by a card model
//! (T=1 via the engine's card side, T=0 by a small TPDU card).

use crate::testing::test;

use super::*;
use crate::proto::ccid::{
    ClockStatus, ProtocolParameters, RdrToPcDataBlock, RdrToPcNotifySlotChange, RdrToPcParameters,
    RdrToPcSlotStatus,
};
use crate::proto::descriptor::Features;
use crate::proto::hex::h;
use crate::sim::t1::{Fault, T1Card, T1CardConfig};

/// A command APDU the test knows to be valid.
fn cmd(bytes: Vec<u8>) -> Command {
    Command::parse(bytes).expect("valid apdu")
}

/// The SmartCard-HSM ATR of the seed (T=1, TA1 = 18).
const HSM_ATR: &str = "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA";
/// A T=0-only ATR with default parameters (ISO/IEC 7816-3 minimal form).
const T0_ATR: &str = "3B 02 14 50";

/// A reader descriptor: GemPCTwin (libccid readers/GemPCTwin.txt) with the given
/// dwFeatures and dwMaxCCIDMessageLength.
fn descriptor(features: u32, max_message: u32) -> CcidClassDescriptor {
    CcidClassDescriptor {
        descriptor_type: 0x21,
        bcd_ccid: 0x0100,
        max_slot_index: 0,
        voltage_support: 0x07,
        protocols: 0x03,
        default_clock: 4000,
        maximum_clock: 4000,
        num_clock_supported: 0,
        data_rate: 10752,
        max_data_rate: 344086,
        num_data_rates_supported: 0,
        max_ifsd: 254,
        synch_protocols: 0,
        mechanical: 0,
        features: Features(features),
        max_ccid_message_length: max_message,
        class_get_response: 0x00,
        class_envelope: 0x00,
        lcd_layout: 0,
        pin_support: 0,
        max_ccid_busy_slots: 1,
    }
}

/// GemPCTwin: TPDU, no automatic PPS, parameters or IFSD (the host does everything).
const GEMPC_TWIN: u32 = 0x0001_0230;
/// A short-APDU reader doing everything itself.
const SHORT_APDU_AUTO: u32 = 0x0002_04FE;
/// An extended-APDU reader doing everything itself.
const EXTENDED_APDU_AUTO: u32 = 0x0004_04FE;

fn data_block(slot: u8, seq: u8, state: SlotState, chain: u8, data: Vec<u8>) -> Vec<u8> {
    RdrToPc::DataBlock(RdrToPcDataBlock {
        slot,
        seq,
        state,
        chain_parameter: chain,
        data,
    })
    .encode()
}

fn ok_data(cmd: &PcToRdr, data: Vec<u8>) -> Vec<u8> {
    data_block(
        cmd.slot(),
        cmd.seq(),
        SlotState::ok(IccStatus::PresentActive),
        0,
        data,
    )
}

fn ok_status(cmd: &PcToRdr, icc: IccStatus) -> Vec<u8> {
    RdrToPc::SlotStatus(RdrToPcSlotStatus {
        slot: cmd.slot(),
        seq: cmd.seq(),
        state: SlotState::ok(icc),
        clock_status: ClockStatus::from_byte(0),
    })
    .encode()
}

fn ok_parameters(cmd: &PcToRdr, parameters: ProtocolParameters) -> Vec<u8> {
    RdrToPc::Parameters(RdrToPcParameters {
        slot: cmd.slot(),
        seq: cmd.seq(),
        state: SlotState::ok(IccStatus::PresentActive),
        parameters,
    })
    .encode()
}

/// Drives the reader through one operation: every bulk-OUT message goes to `answer`, whose
/// messages are fed back. Returns the operation's result and every command the reader sent.
/// Card events are drained and dropped.
fn run<O: Operation>(
    reader: &mut Reader,
    op: O,
    mut answer: impl FnMut(&PcToRdr) -> Vec<Vec<u8>>,
) -> (Result<O::Output, ReaderError>, Vec<PcToRdr>) {
    let mut now = 1_000;
    let mut sent = Vec::new();
    let ticket = reader.start(op, now).expect("start");
    for _ in 0..1_000 {
        while reader.poll_event().is_some() {}
        if let Some(result) = reader.poll_completion(&ticket) {
            return (result, sent);
        }
        if let Some(out) = reader.poll_transmit() {
            let cmd = PcToRdr::decode(&out).expect("the reader sends valid CCID");
            for msg in answer(&cmd) {
                reader.handle_message(&msg, now);
            }
            sent.push(cmd);
            continue;
        }
        match reader.poll_timeout() {
            Some(deadline) => {
                now = deadline;
                reader.handle_timeout(now);
            }
            None => panic!("reader stalled: nothing to send, nothing awaited, no completion"),
        }
    }
    panic!("operation did not finish in 1000 steps");
}

/// A T=0 card behind a TPDU-level reader (the reader consumes the procedure bytes and returns
/// data and SW1 SW2): SELECT answers 61xx and the FCI comes by GET RESPONSE; GET CHALLENGE
/// answers 6C08 to any Le but 8.
fn t0_card(tpdu: &[u8], pending: &mut Vec<u8>) -> Vec<u8> {
    match tpdu {
        // GET CHALLENGE with P3 = 8: procedure byte (INS) + 8 bytes + 9000.
        [0x00, 0x84, 0x00, 0x00, 0x08] => {
            let mut r: Vec<u8> = (1..=8u8).collect();
            r.extend([0x90, 0x00]);
            r
        }
        // GET CHALLENGE with another Le: "wrong length, 8 available".
        [0x00, 0x84, 0x00, 0x00, _] => vec![0x6C, 0x08],
        // SELECT (case 4 sent as case 3, without Le): 61 05.
        [0x00, 0xA4, 0x04, 0x00, lc, rest @ ..] if usize::from(*lc) == rest.len() => {
            *pending = h("6F 03 84 01 AA");
            vec![0x61, 0x05]
        }
        // GET RESPONSE.
        [0x00, 0xC0, 0x00, 0x00, le] if usize::from(*le) == pending.len() => {
            let mut r = std::mem::take(pending);
            r.extend([0x90, 0x00]);
            r
        }
        _ => vec![0x6D, 0x00],
    }
}

/// GET CHALLENGE of 8 bytes (ISO/IEC 7816-4, INS 84) on slot 0.
fn get_challenge() -> Transmit {
    Transmit {
        slot: 0,
        command: cmd(h("00 84 00 00 08")),
    }
}

/// A short-APDU reader (wMaxIFSD 271) with the HSM card powered on in slot 0.
fn hsm_reader() -> Reader {
    let mut reader = Reader::new(descriptor(SHORT_APDU_AUTO, 271)).unwrap();
    power_on(&mut reader, &h(HSM_ATR));
    reader
}

fn power_on(reader: &mut Reader, atr: &[u8]) -> Vec<PcToRdr> {
    let atr = atr.to_vec();
    let (result, sent) = run(
        reader,
        PowerOn {
            slot: 0,
            protocol: None,
        },
        |cmd| {
            match cmd {
                PcToRdr::IccPowerOn(_) => vec![ok_data(cmd, atr.clone())],
                PcToRdr::SetParameters(p) => vec![ok_parameters(cmd, p.parameters.clone())],
                // PPS: echo.
                PcToRdr::XfrBlock(x) if x.data.first() == Some(&0xFF) => {
                    vec![ok_data(cmd, x.data.clone())]
                }
                // S(IFS request) -> S(IFS response) with the same value (LRC).
                PcToRdr::XfrBlock(x) if x.data.get(1) == Some(&0xC1) => {
                    let mut b = x.data.clone();
                    b[1] = 0xE1;
                    let n = b.len();
                    b[n - 1] = crate::proto::t1::lrc(&b[..n - 1]);
                    vec![ok_data(cmd, b)]
                }
                other => panic!("unexpected {other:?}"),
            }
        },
    );
    match result {
        Ok(PoweredOn { atr: got, .. }) => assert_eq!(got, atr),
        other => panic!("power on failed: {other:?}"),
    }
    sent
}

#[test]
fn tpdu_t1_power_on_does_pps_set_parameters_and_ifs() {
    let mut reader = Reader::new(descriptor(GEMPC_TWIN, 271)).unwrap();
    let sent = power_on(&mut reader, &h(HSM_ATR));
    // IccPowerOn at 5 V first (bVoltageSupport 7, no automatic voltage).
    assert!(matches!(sent[0], PcToRdr::IccPowerOn(p) if p.power_select == PowerSelect::V5));
    // PPS: PPSS FF, PPS0 = 0x10 | T=1, PPS1 = TA1 18, PCK.
    match &sent[1] {
        PcToRdr::XfrBlock(x) => assert_eq!(x.data, h("FF 11 18 F6")),
        other => panic!("expected PPS, got {other:?}"),
    }
    // SetParameters T=1 with Fi/Di 18, LRC, BWI/CWI 4/5 from TB3 = 45, IFSC FE.
    match &sent[2] {
        PcToRdr::SetParameters(p) => match &p.parameters {
            ProtocolParameters::T1(t1) => {
                assert_eq!(t1.findex_dindex, 0x18);
                assert_eq!(t1.waiting_integers, 0x45);
                assert_eq!(t1.ifsc, 0xFE);
            }
            other => panic!("expected T=1 parameters, got {other:?}"),
        },
        other => panic!("expected SetParameters, got {other:?}"),
    }
    // S(IFS request) announcing IFSD 254 (dwMaxIFSD 254 fits 271 - 10 - 5).
    match &sent[3] {
        PcToRdr::XfrBlock(x) => assert_eq!(x.data, h("00 C1 01 FE 3E")),
        other => panic!("expected S(IFS), got {other:?}"),
    }
    assert_eq!(sent.len(), 4);
    assert_eq!(reader.protocol(0), Some(1));
    // Every command had its own bSeq.
    let seqs: Vec<u8> = sent.iter().map(|c| c.seq()).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3]);
}

#[test]
fn tpdu_t1_transmit_with_chaining_and_wtx() {
    let mut reader = Reader::new(descriptor(GEMPC_TWIN, 271)).unwrap();
    power_on(&mut reader, &h(HSM_ATR));
    let config = T1CardConfig {
        ifsc: 0xFE,
        ifsd: 0xFE,
        wtx_requests: 1,
        wtx_multiplier: 3,
        ..T1CardConfig::default()
    };
    // The card answers 300 bytes + 9000 to anything: two chained I-blocks.
    let mut card = T1Card::new(config, |apdu: &[u8]| {
        let mut r: Vec<u8> = (0..300u16).map(|i| (i as u8) ^ apdu[1]).collect();
        r.extend([0x90, 0x00]);
        r
    });
    let apdu = h("00 84 00 00 00 01 2C");
    let (result, sent) = run(
        &mut reader,
        Transmit {
            slot: 0,
            command: cmd(apdu.clone()),
        },
        |cmd| {
            let PcToRdr::XfrBlock(x) = cmd else {
                panic!("expected XfrBlock")
            };
            let reply = card.on_block(&x.data).expect("card answers");
            vec![ok_data(cmd, reply)]
        },
    );
    let Ok(r) = result else { panic!("{result:?}") };
    assert_eq!(r.len(), 302);
    assert_eq!(&r[300..], &[0x90, 0x00]);
    assert_eq!(card.commands(), &[apdu]);
    // The block answering S(WTX request, 3) carried bBWI 3, and only that one.
    let bwis: Vec<u8> = sent
        .iter()
        .map(|c| match c {
            PcToRdr::XfrBlock(x) => x.bwi,
            _ => 0,
        })
        .collect();
    assert_eq!(bwis.iter().filter(|&&b| b == 3).count(), 1, "{bwis:?}");
}

#[test]
fn tpdu_t1_recovers_from_a_corrupted_block_and_a_mute_answer() {
    let mut reader = Reader::new(descriptor(GEMPC_TWIN, 271)).unwrap();
    power_on(&mut reader, &h(HSM_ATR));
    let config = T1CardConfig {
        ifsc: 0xFE,
        ifsd: 0xFE,
        ..T1CardConfig::default()
    };
    let mut card = T1Card::new(config, |_: &[u8]| h("01 02 90 00"));
    card.inject(0, Fault::CorruptReply);
    let mut mute_once = true;
    let (result, _) = run(
        &mut reader,
        Transmit {
            slot: 0,
            command: cmd(h("00 B0 00 00 02")),
        },
        |cmd| {
            let PcToRdr::XfrBlock(x) = cmd else {
                panic!("expected XfrBlock")
            };
            if mute_once {
                // The reader reports that the card did not answer within BWT.
                mute_once = false;
                let failed = SlotState::failed(IccStatus::PresentActive, SlotError::IccMute);
                return vec![data_block(cmd.slot(), cmd.seq(), failed, 0, Vec::new())];
            }
            match card.on_block(&x.data) {
                Some(reply) => vec![ok_data(cmd, reply)],
                None => Vec::new(),
            }
        },
    );
    assert_eq!(result, Ok(h("01 02 90 00")));
}

#[test]
fn tpdu_t0_handles_61xx_and_6cxx() {
    let mut reader = Reader::new(descriptor(GEMPC_TWIN, 271)).unwrap();
    let sent = power_on(&mut reader, &h(T0_ATR));
    // Default Fi/Di and T=0: no PPS; SetParameters T=0 still sent (no 0x40 feature).
    assert_eq!(sent.len(), 2);
    assert!(matches!(&sent[1], PcToRdr::SetParameters(p)
        if matches!(p.parameters, ProtocolParameters::T0(_))));
    assert_eq!(reader.protocol(0), Some(0));

    let mut pending = Vec::new();
    let (result, sent) = run(
        &mut reader,
        Transmit {
            slot: 0,
            command: cmd(h("00 A4 04 00 02 3F 00 00")),
        },
        |cmd| {
            let PcToRdr::XfrBlock(x) = cmd else {
                panic!("expected XfrBlock")
            };
            vec![ok_data(cmd, t0_card(&x.data, &mut pending))]
        },
    );
    // SELECT went as a case 3 TPDU, then GET RESPONSE for the 5 bytes the card announced.
    let tpdus: Vec<Vec<u8>> = sent
        .iter()
        .map(|c| match c {
            PcToRdr::XfrBlock(x) => x.data.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(tpdus, vec![h("00 A4 04 00 02 3F 00"), h("00 C0 00 00 05")]);
    assert_eq!(result, Ok(h("6F 03 84 01 AA 90 00")));

    let (result, sent) = run(
        &mut reader,
        Transmit {
            slot: 0,
            command: cmd(h("00 84 00 00 10")),
        },
        |cmd| {
            let PcToRdr::XfrBlock(x) = cmd else {
                panic!("expected XfrBlock")
            };
            vec![ok_data(cmd, t0_card(&x.data, &mut pending))]
        },
    );
    assert_eq!(sent.len(), 2, "6C08 makes the reader re-send with P3 = 08");
    assert_eq!(result, Ok(h("01 02 03 04 05 06 07 08 90 00")));
}

#[test]
fn short_apdu_reader_sends_the_apdu_as_is() {
    let mut reader = Reader::new(descriptor(SHORT_APDU_AUTO, 271)).unwrap();
    let sent = power_on(&mut reader, &h(HSM_ATR));
    // The reader negotiates parameters, PPS and IFSD itself: only IccPowerOn.
    assert_eq!(sent.len(), 1);
    // Automatic voltage selection: bPowerSelect 0.
    assert!(matches!(sent[0], PcToRdr::IccPowerOn(p) if p.power_select == PowerSelect::Auto));
    let apdu = h("00 A4 04 0C 0B E8 2B 06 01 04 01 81 C3 1F 02 01");
    let (result, sent) = run(
        &mut reader,
        Transmit {
            slot: 0,
            command: cmd(apdu.clone()),
        },
        |cmd| vec![ok_data(cmd, h("90 00"))],
    );
    assert_eq!(result, Ok(h("90 00")));
    assert!(matches!(&sent[0], PcToRdr::XfrBlock(x) if x.data == apdu && x.level_parameter == 0));

    // An extended APDU does not fit a short-APDU reader.
    let mut long = h("00 DA 01 02 00 01 2C");
    long.extend(vec![0xAB; 300]);
    let err = reader.start(
        Transmit {
            slot: 0,
            command: cmd(long),
        },
        0,
    );
    assert!(matches!(err, Err(ReaderError::TooLong { .. })), "{err:?}");
}

#[test]
fn extended_apdu_reader_chains_command_and_response() {
    let mut reader = Reader::new(descriptor(EXTENDED_APDU_AUTO, 271)).unwrap();
    power_on(&mut reader, &h(HSM_ATR));
    let mut apdu = h("00 DA 01 02 00 02 58");
    apdu.extend((0..600u16).map(|i| i as u8));
    apdu.extend([0x00, 0x00]);
    let mut received = Vec::new();
    let mut response_parts = vec![
        (0x01u8, vec![0x11; 261]),
        (0x03, vec![0x22; 261]),
        (0x02, vec![0x33, 0x90, 0x00]),
    ]
    .into_iter();
    let (result, sent) = run(
        &mut reader,
        Transmit {
            slot: 0,
            command: cmd(apdu.clone()),
        },
        |cmd| {
            let PcToRdr::XfrBlock(x) = cmd else {
                panic!("expected XfrBlock")
            };
            received.push((x.level_parameter, x.data.len()));
            match x.level_parameter {
                // Intermediate command parts: an empty answer asking for more.
                0x01 | 0x03 => vec![data_block(
                    0,
                    cmd.seq(),
                    SlotState::ok(IccStatus::PresentActive),
                    0x10,
                    Vec::new(),
                )],
                // Last command part and "continue" requests: the next response part.
                0x02 | 0x10 => {
                    let (chain, data) = response_parts.next().expect("no more response parts");
                    vec![data_block(
                        0,
                        cmd.seq(),
                        SlotState::ok(IccStatus::PresentActive),
                        chain,
                        data,
                    )]
                }
                other => panic!("unexpected wLevelParameter {other:#x}"),
            }
        },
    );
    assert_eq!(
        received,
        vec![(0x01, 261), (0x03, 261), (0x02, 87), (0x10, 0), (0x10, 0)]
    );
    let Ok(r) = result else { panic!("{result:?}") };
    assert_eq!(r.len(), 261 + 261 + 3);
    assert_eq!(&r[r.len() - 2..], &[0x90, 0x00]);
    assert_eq!(sent.len(), 5);
}

#[test]
fn stale_answers_are_dropped_and_time_extension_moves_the_deadline() {
    let mut reader = hsm_reader();
    let ticket = reader.start(get_challenge(), 10_000).unwrap();
    let out = reader.poll_transmit().unwrap();
    let cmd = PcToRdr::decode(&out).unwrap();
    let first_deadline = reader.poll_timeout().unwrap();
    // A stale answer (old bSeq) and one for another slot are dropped.
    reader.handle_message(
        &data_block(
            0,
            cmd.seq().wrapping_sub(1),
            SlotState::ok(IccStatus::PresentActive),
            0,
            h("90 00"),
        ),
        10_001,
    );
    reader.handle_message(
        &data_block(
            1,
            cmd.seq(),
            SlotState::ok(IccStatus::PresentActive),
            0,
            h("90 00"),
        ),
        10_001,
    );
    assert_eq!(reader.stats().stale_dropped, 2);
    assert!(reader.awaiting_response());
    // Time extension: read again (nothing sent), deadline moved.
    let ext = SlotState::time_extension(IccStatus::PresentActive, 2);
    reader.handle_message(&data_block(0, cmd.seq(), ext, 0, Vec::new()), 12_000);
    assert!(
        reader.poll_transmit().is_none(),
        "time extension must not resend"
    );
    assert!(reader.poll_timeout().unwrap() > first_deadline);
    assert_eq!(reader.stats().time_extensions, 1);
    assert_eq!(reader.poll_completion(&ticket), None);
    // The real answer completes it.
    reader.handle_message(&ok_data(&cmd, h("01 02 03 04 05 06 07 08 90 00")), 12_500);
    assert_eq!(
        reader.poll_completion(&ticket),
        Some(Ok(h("01 02 03 04 05 06 07 08 90 00")))
    );
    assert_eq!(reader.poll_event(), None, "a completion is not an event");
}

#[test]
fn silent_reader_times_out_and_the_late_answer_is_dropped() {
    let mut reader = hsm_reader();
    let (result, sent) = run(&mut reader, get_challenge(), |_| Vec::new());
    assert_eq!(result, Err(ReaderError::Timeout));
    // The late answer arrives during the next operation and is ignored.
    let late = ok_data(&sent[0], h("90 00"));
    let ticket = reader.start(Status { slot: 0 }, 50_000).unwrap();
    let out = reader.poll_transmit().unwrap();
    let status = PcToRdr::decode(&out).unwrap();
    reader.handle_message(&late, 50_001);
    assert!(reader.poll_event().is_none());
    assert!(reader.poll_completion(&ticket).is_none());
    reader.handle_message(&ok_status(&status, IccStatus::PresentActive), 50_002);
    assert_eq!(
        reader.poll_completion(&ticket),
        Some(Ok(IccStatus::PresentActive))
    );
}

#[test]
fn card_removal_fails_the_operation_and_forgets_the_card() {
    let mut reader = hsm_reader();
    let ticket = reader.start(get_challenge(), 0).unwrap();
    let _ = reader.poll_transmit();
    let notify = InterruptMessage::NotifySlotChange(RdrToPcNotifySlotChange::new(&[(false, true)]));
    reader.handle_interrupt(&notify.encode()).unwrap();
    // The removal is an event, and the operation's error on its own channel.
    assert_eq!(reader.poll_event(), Some(ReaderEvent::CardRemoved(0)));
    assert_eq!(reader.poll_event(), None);
    assert_eq!(
        reader.poll_completion(&ticket),
        Some(Err(ReaderError::CardAbsent))
    );
    assert_eq!(reader.atr(0), None);
    let err = reader.start(get_challenge(), 0);
    assert_eq!(err, Err(ReaderError::CardAbsent));
    let notify = InterruptMessage::NotifySlotChange(RdrToPcNotifySlotChange::new(&[(true, true)]));
    reader.handle_interrupt(&notify.encode()).unwrap();
    assert_eq!(reader.poll_event(), Some(ReaderEvent::CardInserted(0)));
    assert_eq!(
        reader.start(get_challenge(), 0),
        Err(ReaderError::NotPowered)
    );
}

#[test]
fn absent_card_and_mute_card_are_typed() {
    let mut reader = Reader::new(descriptor(GEMPC_TWIN, 271)).unwrap();
    let (result, _) = run(
        &mut reader,
        PowerOn {
            slot: 0,
            protocol: None,
        },
        |cmd| {
            let failed = SlotState::failed(IccStatus::Absent, SlotError::IccMute);
            vec![data_block(cmd.slot(), cmd.seq(), failed, 0, Vec::new())]
        },
    );
    assert_eq!(result, Err(ReaderError::CardAbsent));
    // A mute card is tried at 5 V, 3 V and 1.8 V, then reported.
    let (result, sent) = run(
        &mut reader,
        PowerOn {
            slot: 0,
            protocol: None,
        },
        |cmd| {
            let failed = SlotState::failed(IccStatus::PresentInactive, SlotError::IccMute);
            vec![data_block(cmd.slot(), cmd.seq(), failed, 0, Vec::new())]
        },
    );
    assert_eq!(result, Err(ReaderError::CardMute));
    let selects: Vec<PowerSelect> = sent
        .iter()
        .map(|c| match c {
            PcToRdr::IccPowerOn(p) => p.power_select,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        selects,
        vec![PowerSelect::V5, PowerSelect::V3, PowerSelect::V1_8]
    );
}

#[test]
fn refused_pps_resets_the_card_and_goes_on_at_default_rate() {
    let mut reader = Reader::new(descriptor(GEMPC_TWIN, 271)).unwrap();
    let atr = h(HSM_ATR);
    let (result, sent) = run(
        &mut reader,
        PowerOn {
            slot: 0,
            protocol: None,
        },
        |cmd| match cmd {
            PcToRdr::IccPowerOn(_) => vec![ok_data(cmd, atr.clone())],
            // The card does not answer the PPS.
            PcToRdr::XfrBlock(x) if x.data.first() == Some(&0xFF) => {
                let failed = SlotState::failed(IccStatus::PresentActive, SlotError::IccMute);
                vec![data_block(cmd.slot(), cmd.seq(), failed, 0, Vec::new())]
            }
            PcToRdr::SetParameters(p) => vec![ok_parameters(cmd, p.parameters.clone())],
            PcToRdr::XfrBlock(x) => {
                let mut b = x.data.clone();
                b[1] = 0xE1;
                let n = b.len();
                b[n - 1] = crate::proto::t1::lrc(&b[..n - 1]);
                vec![ok_data(cmd, b)]
            }
            other => panic!("unexpected {other:?}"),
        },
    );
    assert!(result.is_ok(), "{result:?}");
    let kinds: Vec<u8> = sent.iter().map(|c| c.message_type()).collect();
    // PowerOn, PPS, PowerOn again, SetParameters, S(IFS).
    assert_eq!(kinds, vec![0x62, 0x6F, 0x62, 0x61, 0x6F]);
    match &sent[3] {
        PcToRdr::SetParameters(p) => match &p.parameters {
            ProtocolParameters::T1(t1) => assert_eq!(t1.findex_dindex, 0x11, "default Fi/Di"),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn character_level_readers_are_refused() {
    let err = Reader::new(descriptor(0x0000_0000, 271)).unwrap_err();
    assert_eq!(err, ReaderError::Unsupported("character level exchange"));
}

#[test]
fn busy_and_bad_slot() {
    let mut reader = Reader::new(descriptor(SHORT_APDU_AUTO, 271)).unwrap();
    assert_eq!(
        reader.start(Status { slot: 1 }, 0),
        Err(ReaderError::NoSuchSlot(1))
    );
    let ticket = reader.start(Status { slot: 0 }, 0).unwrap();
    assert_eq!(reader.start(Status { slot: 0 }, 0), Err(ReaderError::Busy));
    reader.abort();
    assert_eq!(
        reader.poll_completion(&ticket),
        Some(Err(ReaderError::Aborted))
    );
    assert_eq!(reader.poll_event(), None);
    assert!(!reader.is_busy());
}

/// Issue 17: card events and an operation's result travel apart. A card swapped between
/// two notifications (NotifySlotChange "present, changed", CCID §6.3.1) and a hardware
/// error (RDR_to_PC_HardwareError, §6.3.2) while a transmit waits for its answer are events
/// only: the transmit goes on and ends with its own answer.
#[test]
fn a_card_event_during_an_operation_does_not_complete_it() {
    let mut reader = hsm_reader();
    let ticket = reader.start(get_challenge(), 0).unwrap();
    let sent = PcToRdr::decode(&reader.poll_transmit().unwrap()).unwrap();
    let swapped = InterruptMessage::NotifySlotChange(RdrToPcNotifySlotChange::new(&[(true, true)]));
    reader.handle_interrupt(&swapped.encode()).unwrap();
    let overcurrent = InterruptMessage::HardwareError(crate::proto::ccid::RdrToPcHardwareError {
        slot: 0,
        seq: sent.seq(),
        hard_error_code: crate::proto::ccid::RdrToPcHardwareError::OVERCURRENT,
    });
    reader.handle_interrupt(&overcurrent.encode()).unwrap();
    let mut events = Vec::new();
    while let Some(ev) = reader.poll_event() {
        events.push(ev);
    }
    assert_eq!(
        events,
        [
            ReaderEvent::CardRemoved(0),
            ReaderEvent::CardInserted(0),
            ReaderEvent::HardwareError { slot: 0, code: 1 },
        ]
    );
    assert_eq!(reader.poll_completion(&ticket), None);
    assert!(reader.is_busy());
    assert!(reader.awaiting_response());
    reader.handle_message(&ok_data(&sent, h("01 02 03 04 05 06 07 08 90 00")), 10);
    assert_eq!(
        reader.poll_completion(&ticket),
        Some(Ok(h("01 02 03 04 05 06 07 08 90 00")))
    );
    assert_eq!(reader.poll_event(), None);
}

/// Issue 17: each operation completes with a value of its own type on the completion
/// channel, never as an event: the ATR and protocol, the slot's bmICCStatus (CCID §6.2.6),
/// the response APDU, nothing for a power off.
#[test]
fn each_operation_completes_with_its_own_type_and_no_event() {
    let mut reader = Reader::new(descriptor(SHORT_APDU_AUTO, 271)).unwrap();
    let (on, mut events) = run_keeping_events(
        &mut reader,
        PowerOn {
            slot: 0,
            protocol: None,
        },
    );
    let on: PoweredOn = on.unwrap();
    assert_eq!((on.atr, on.protocol), (h(HSM_ATR), 1));
    let (status, more) = run_keeping_events(&mut reader, Status { slot: 0 });
    events.extend(more);
    let status: IccStatus = status.unwrap();
    assert_eq!(status, IccStatus::PresentActive);
    let (response, more) = run_keeping_events(
        &mut reader,
        Transmit {
            slot: 0,
            command: cmd(h("00 84 00 00 02")),
        },
    );
    events.extend(more);
    let response: Vec<u8> = response.unwrap();
    assert_eq!(response, h("AB CD 90 00"));
    let (off, more) = run_keeping_events(&mut reader, PowerOff { slot: 0 });
    events.extend(more);
    let (): () = off.unwrap();
    assert_eq!(reader.atr(0), None);
    // No event at all: a card found present by an answer is news to nobody.
    assert_eq!(events, []);
}

/// Runs `op` against a short-APDU reader doing everything itself, with the seed card:
/// its result and the card events that came meanwhile.
fn run_keeping_events<O: Operation>(
    reader: &mut Reader,
    op: O,
) -> (Result<O::Output, ReaderError>, Vec<ReaderEvent>) {
    let ticket = reader.start(op, 0).expect("start");
    let mut events = Vec::new();
    for _ in 0..100 {
        while let Some(ev) = reader.poll_event() {
            events.push(ev);
        }
        if let Some(result) = reader.poll_completion(&ticket) {
            while let Some(ev) = reader.poll_event() {
                events.push(ev);
            }
            return (result, events);
        }
        let out = reader.poll_transmit().expect("a command");
        let cmd = PcToRdr::decode(&out).unwrap();
        let answer = match &cmd {
            PcToRdr::IccPowerOn(_) => ok_data(&cmd, h(HSM_ATR)),
            PcToRdr::XfrBlock(_) => ok_data(&cmd, h("AB CD 90 00")),
            PcToRdr::IccPowerOff(_) => ok_status(&cmd, IccStatus::PresentInactive),
            _ => ok_status(&cmd, IccStatus::PresentActive),
        };
        reader.handle_message(&answer, 0);
    }
    panic!("operation did not finish");
}

/// A result waits for the ticket of its own operation and is taken once; starting the next
/// operation drops one nobody took; `end` abandons an operation that still runs.
#[test]
fn results_are_taken_once_by_their_ticket_and_end_abandons() {
    let mut reader = hsm_reader();
    let status = reader.start(Status { slot: 0 }, 0).unwrap();
    let sent = PcToRdr::decode(&reader.poll_transmit().unwrap()).unwrap();
    reader.handle_message(&ok_status(&sent, IccStatus::PresentActive), 1);
    assert!(!reader.is_busy());
    // Not taken: the next operation drops it.
    let transmit = reader.start(get_challenge(), 2).unwrap();
    assert_eq!(reader.poll_completion(&status), None);
    assert_eq!(reader.poll_completion(&transmit), None);
    assert!(reader.poll_transmit().is_some());
    // Ended while it waits for its answer: abandoned, the answer is owed.
    assert_eq!(reader.end(transmit), Err(ReaderError::Aborted));
    assert!(!reader.is_busy());
    assert!(reader.owed().is_some());
    let again = reader.start(Status { slot: 0 }, 3).unwrap();
    let sent = PcToRdr::decode(&reader.poll_transmit().unwrap()).unwrap();
    reader.handle_message(&ok_status(&sent, IccStatus::PresentActive), 4);
    assert_eq!(
        reader.poll_completion(&again),
        Some(Ok(IccStatus::PresentActive))
    );
    assert_eq!(reader.poll_completion(&again), None, "taken once");
}

/// Issue 17: the command is parsed once, where it enters; the reader sends the bytes it came
/// as at the extended APDU level (CCID §6.1.4), not a re-encoding of the parse: an
/// extended-form READ BINARY with Le 00 00 10 (7816-4 §5.1) goes unchanged.
#[test]
fn the_command_goes_as_given_at_the_extended_apdu_level() {
    let mut reader = Reader::new(descriptor(EXTENDED_APDU_AUTO, 271)).unwrap();
    power_on(&mut reader, &h(HSM_ATR));
    let given = h("00 B0 00 00 00 00 10");
    let command = cmd(given.clone());
    assert_eq!(command.apdu().ne, Some(16));
    assert_eq!(command.apdu().encode().unwrap(), h("00 B0 00 00 10"));
    let (result, sent) = run(&mut reader, Transmit { slot: 0, command }, |cmd| {
        vec![ok_data(cmd, h("90 00"))]
    });
    assert_eq!(result, Ok(h("90 00")));
    let PcToRdr::XfrBlock(x) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(x.data, given);
}

/// A reader descriptor with a PIN pad (bPINSupport 0x03, as libccid readers/SPR532.txt).
fn pin_pad(features: u32) -> CcidClassDescriptor {
    CcidClassDescriptor {
        pin_support: 0x03,
        ..descriptor(features, 271)
    }
}

/// What a PIN pad does with PC_to_RDR_Secure: checks the structure, appends Lc and the
/// typed PIN to the four-byte template, and returns the resulting APDU and bTeoPrologue.
fn pad_builds_verify(cmd: &PcToRdr, pin: &str) -> (Vec<u8>, [u8; 3]) {
    let PcToRdr::Secure(secure) = cmd else {
        panic!("expected Secure, got {cmd:?}")
    };
    assert_eq!(secure.bwi, 0);
    assert_eq!(secure.level_parameter, 0);
    let d = &secure.data;
    // bPINOperation 0, bTimeOut 30, ASCII bytes left-justified, no block, 4 to 16 digits,
    // validation key, one message, wLangId 0409, bMsgIndex 0.
    assert_eq!(&d[..12], &h("00 1E 82 00 00 10 04 02 01 09 04 00")[..]);
    assert_eq!(&d[15..], &h("00 20 00 81")[..]);
    let mut apdu = d[15..].to_vec();
    apdu.push(u8::try_from(pin.len()).unwrap());
    apdu.extend_from_slice(pin.as_bytes());
    (apdu, [d[12], d[13], d[14]])
}

fn verify_pin() -> VerifyPin {
    VerifyPin {
        slot: 0,
        pin: PinVerify::default(),
    }
}

/// A T=1 card whose VERIFY accepts "123456" and answers 63 C2 to anything else; other
/// commands get 90 00.
fn pin_card(wtx_requests: u8) -> T1Card<impl FnMut(&[u8]) -> Vec<u8>> {
    let config = T1CardConfig {
        ifsc: 0xFE,
        ifsd: 0xFE,
        wtx_requests,
        wtx_multiplier: 2,
        ..T1CardConfig::default()
    };
    T1Card::new(config, |apdu: &[u8]| match apdu {
        [0x00, 0x20, 0x00, 0x81, 0x06, pin @ ..] if pin == b"123456" => h("90 00"),
        [0x00, 0x20, ..] => h("63 C2"),
        _ => h("90 00"),
    })
}

#[test]
fn pin_verify_structure() {
    // CCID Rev 1.1 §6.1.11.4, laid out as libccid readers/SPR532 users send it: a fixed
    // block of 6 ASCII digits padded with FF, 6 to 6 digits.
    let padded = PinVerify {
        reference: 0x81,
        min_digits: 6,
        max_digits: 6,
        timeout_s: 0x3C,
        padding: Some(0xFF),
    };
    assert_eq!(
        padded.encode([0x00, 0x40, 0x0B]),
        h("00 3C 82 06 00 06 06 02 01 09 04 00 00 40 0B 00 20 00 81 06 FF FF FF FF FF FF")
    );
    assert_eq!(
        PinVerify::default().encode([0; 3]),
        h("00 1E 82 00 00 10 04 02 01 09 04 00 00 00 00 00 20 00 81")
    );
    for (bad, why) in [
        (
            PinVerify {
                min_digits: 0,
                ..PinVerify::default()
            },
            "digits must satisfy 1 <= min <= max",
        ),
        (
            PinVerify {
                padding: Some(0xFF),
                ..PinVerify::default()
            },
            "a padded pin block holds at most 15 digits",
        ),
        (
            PinVerify {
                timeout_s: 0,
                ..PinVerify::default()
            },
            "timeout must be 1 to 255 s",
        ),
    ] {
        let mut reader = Reader::new(pin_pad(SHORT_APDU_AUTO)).unwrap();
        power_on(&mut reader, &h(HSM_ATR));
        let op = VerifyPin { slot: 0, pin: bad };
        assert_eq!(reader.start(op, 0), Err(ReaderError::PinParameters(why)));
    }
}

#[test]
fn verify_pin_needs_a_pin_pad_and_a_powered_card() {
    let mut plain = Reader::new(descriptor(SHORT_APDU_AUTO, 271)).unwrap();
    power_on(&mut plain, &h(HSM_ATR));
    assert_eq!(
        plain.start(verify_pin(), 0),
        Err(ReaderError::Unsupported("reader has no pin pad"))
    );
    let mut pad = Reader::new(pin_pad(SHORT_APDU_AUTO)).unwrap();
    assert_eq!(pad.start(verify_pin(), 0), Err(ReaderError::NotPowered));
    assert!(!pad.is_busy());
}

#[test]
fn apdu_level_verify_pin_returns_the_card_answer() {
    let mut reader = Reader::new(pin_pad(SHORT_APDU_AUTO)).unwrap();
    power_on(&mut reader, &h(HSM_ATR));
    let mut typed = Vec::new();
    let (result, sent) = run(&mut reader, verify_pin(), |cmd| {
        let (apdu, prologue) = pad_builds_verify(cmd, "123455");
        // Not T=1 at TPDU level: bTeoPrologue is zeros.
        assert_eq!(prologue, [0; 3]);
        typed = apdu;
        vec![ok_data(cmd, h("63 C2"))]
    });
    assert_eq!(result, Ok(h("63 C2")));
    assert_eq!(sent.len(), 1);
    assert_eq!(typed, h("00 20 00 81 06 31 32 33 34 35 35"));

    // CCID §6.2.6 bError 0xEF / 0xF0.
    for (error, expected) in [
        (SlotError::PinCancelled, ReaderError::PinCancelled),
        (SlotError::PinTimeout, ReaderError::PinTimeout),
    ] {
        let (result, _) = run(&mut reader, verify_pin(), |cmd| {
            let failed = SlotState::failed(IccStatus::PresentActive, error);
            vec![data_block(cmd.slot(), cmd.seq(), failed, 0, Vec::new())]
        });
        assert_eq!(result, Err(expected));
    }
}

#[test]
fn verify_pin_waits_for_the_pin_entry() {
    let mut reader = Reader::new(pin_pad(SHORT_APDU_AUTO)).unwrap();
    power_on(&mut reader, &h(HSM_ATR));
    let ticket = reader.start(verify_pin(), 10_000).unwrap();
    assert!(reader.poll_transmit().is_some());
    // bTimeOut 30 s, then the card exchange.
    let deadline = reader.poll_timeout().unwrap();
    assert!(
        deadline >= 10_000 + 30_000 + MIN_EXCHANGE_TIMEOUT_MS,
        "{deadline}"
    );
    reader.handle_timeout(deadline - 1);
    assert!(reader.is_busy());
    reader.handle_timeout(deadline);
    assert_eq!(
        reader.poll_completion(&ticket),
        Some(Err(ReaderError::Timeout))
    );
}

#[test]
fn tpdu_t1_verify_pin_keeps_the_block_sequence() {
    let mut reader = Reader::new(pin_pad(GEMPC_TWIN)).unwrap();
    power_on(&mut reader, &h(HSM_ATR));
    // The card asks for a time extension before each answer.
    let mut card = pin_card(1);
    fn exchange<O: Operation>(
        reader: &mut Reader,
        card: &mut T1Card<impl FnMut(&[u8]) -> Vec<u8>>,
        op: O,
        pin: &str,
    ) -> (Result<O::Output, ReaderError>, Vec<PcToRdr>) {
        run(reader, op, |cmd| match cmd {
            PcToRdr::Secure(_) => {
                let (apdu, prologue) = pad_builds_verify(cmd, pin);
                // The reader builds the I-block from bTeoPrologue, with LEN and EDC of
                // the completed APDU.
                let block = crate::proto::t1::Block {
                    nad: prologue[0],
                    pcb: crate::proto::t1::Pcb::from_byte(prologue[1]).unwrap(),
                    inf: apdu,
                }
                .encode(crate::proto::t1::Edc::Lrc);
                vec![ok_data(cmd, card.on_block(&block).expect("card answers"))]
            }
            PcToRdr::XfrBlock(x) => vec![ok_data(cmd, card.on_block(&x.data).expect("answer"))],
            other => panic!("unexpected {other:?}"),
        })
    }
    let select = || Transmit {
        slot: 0,
        command: cmd(h("00 A4 04 0C 02 E8 2B")),
    };
    let (result, _) = exchange(&mut reader, &mut card, select(), "");
    assert_eq!(result, Ok(h("90 00")));
    // N(S) is now 1: the prologue says so; LEN is the template's.
    let (result, sent) = exchange(&mut reader, &mut card, verify_pin(), "123456");
    assert_eq!(result, Ok(h("90 00")));
    let PcToRdr::Secure(secure) = &sent[0] else {
        panic!("{sent:?}")
    };
    assert_eq!(&secure.data[12..15], &h("00 40 04")[..]);
    // S(WTX response) went in an XfrBlock with bBWI 2.
    assert!(
        matches!(&sent[1], PcToRdr::XfrBlock(x) if x.bwi == 2),
        "{sent:?}"
    );
    assert_eq!(sent.len(), 2);

    // A cancelled entry sent nothing to the card: the sequence is unchanged.
    let (result, _) = run(&mut reader, verify_pin(), |cmd| {
        let (_, prologue) = pad_builds_verify(cmd, "");
        assert_eq!(prologue, h("00 00 04")[..]);
        let failed = SlotState::failed(IccStatus::PresentActive, SlotError::PinCancelled);
        vec![data_block(cmd.slot(), cmd.seq(), failed, 0, Vec::new())]
    });
    assert_eq!(result, Err(ReaderError::PinCancelled));
    let (result, sent) = exchange(&mut reader, &mut card, verify_pin(), "123455");
    assert_eq!(result, Ok(h("63 C2")));
    assert!(matches!(&sent[0], PcToRdr::Secure(s) if s.data[13] == 0x00));
    let (result, sent) = exchange(&mut reader, &mut card, select(), "");
    assert_eq!(result, Ok(h("90 00")));
    // One I-block with N(S) = 1 and the WTX answer: no resynchronisation was needed.
    assert!(
        matches!(&sent[0], PcToRdr::XfrBlock(x) if x.data[1] == 0x40),
        "{sent:?}"
    );
    assert_eq!(sent.len(), 2);
    assert_eq!(
        card.commands().last().map(Vec::as_slice),
        Some(&h("00 A4 04 0C 02 E8 2B")[..])
    );
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes from the reader, in any order, never panic the state machine, and an
        /// operation always ends (by answer, error or timeout).
        #[test]
        fn arbitrary_answers_never_panic(
            features in proptest::sample::select(vec![GEMPC_TWIN, SHORT_APDU_AUTO, EXTENDED_APDU_AUTO]),
            answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20),
            interrupts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4), 0..4),
        ) {
            let mut reader = Reader::new(descriptor(features, 271)).unwrap();
            let mut now = 0;
            let ticket = reader.start(PowerOn { slot: 0, protocol: None }, now).unwrap();
            let mut answers = answers.into_iter();
            let mut done = false;
            for i in 0..200 {
                if let Some(bytes) = interrupts.get(i) {
                    let _ = reader.handle_interrupt(bytes);
                }
                while reader.poll_event().is_some() {}
                if reader.poll_completion(&ticket).is_some() { done = true; }
                if done { break; }
                if let Some(out) = reader.poll_transmit() {
                    let cmd = PcToRdr::decode(&out).expect("valid command");
                    if let Some(mut a) = answers.next() {
                        // Half the time make the header match so the body is parsed.
                        if a.len() >= 10 && a[0] % 2 == 0 {
                            a[0] = 0x80; a[5] = cmd.slot(); a[6] = cmd.seq();
                            let len = u32::try_from(a.len() - 10).unwrap().to_le_bytes();
                            a[1..5].copy_from_slice(&len);
                        }
                        reader.handle_message(&a, now);
                    }
                    continue;
                }
                match reader.poll_timeout() {
                    Some(d) => { now = d; reader.handle_timeout(now); }
                    None => break,
                }
            }
            prop_assert!(done || !reader.is_busy());
        }
    }
}
