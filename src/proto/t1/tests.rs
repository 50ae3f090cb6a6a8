use crate::testing::test;

use super::*;
use crate::proto::hex::h;
use crate::sim::t1::{Fault, T1Card, T1CardConfig};

/// CRC of ISO/IEC 13239 computed another way than [`crc16`]: the textbook shift
/// register with the unreflected generator 0x1021 shifting left, fed each byte least
/// significant bit first (the HDLC bit order), then complemented and read out with the
/// x¹⁵ coefficient as bit 0.
fn crc_reference(data: &[u8]) -> u16 {
    let mut reg: u16 = 0xFFFF;
    for &byte in data {
        for bit in 0..8 {
            let input = u16::from(byte >> bit & 1);
            let feedback = (reg >> 15) ^ input;
            reg <<= 1;
            if feedback != 0 {
                reg ^= 0x1021;
            }
        }
    }
    (!reg).reverse_bits()
}

/// The register of [`crc16`] without the final complement: over a frame followed by
/// its FCS it leaves the constant 0xF0B8 (RFC 1662 §C.2 "good final FCS value").
fn crc_register(data: &[u8]) -> u16 {
    !crc16(data)
}

#[test]
fn crc_check_values() {
    // Check value of CRC-16/IBM-SDLC in the reveng CRC catalogue.
    assert_eq!(crc16(b"123456789"), 0x906E);
    // ISO/IEC 14443-3 Annex B, CRC_B (also ISO/IEC 13239): 00 00 00 -> sent CC C6,
    // 0F AA FF -> sent FC D1, low-order byte first.
    assert_eq!(crc16(&h("00 00 00")).to_le_bytes(), [0xCC, 0xC6]);
    assert_eq!(crc16(&h("0F AA FF")).to_le_bytes(), [0xFC, 0xD1]);
    assert_eq!(crc_reference(b"123456789"), 0x906E);
    assert_eq!(crc16(&[]), 0x0000);
}

#[test]
fn crc_residue_proves_byte_order() {
    let body = h("00 C1 01 FE");
    let mut frame = body.clone();
    frame.extend_from_slice(&crc16(&body).to_le_bytes());
    assert_eq!(crc_register(&frame), 0xF0B8);
    let mut swapped = body;
    swapped.extend_from_slice(&crc16(&frame[..4]).to_be_bytes());
    assert_ne!(crc_register(&swapped), 0xF0B8);
}

#[test]
fn lrc_vectors() {
    // S(IFS request, IFSD = 254): the first block libccid sends to a T=1 card at TPDU
    // level (its debug log shows "00 C1 01 FE 3E").
    let bytes = h("00 C1 01 FE 3E");
    let block = Block::decode(&bytes, Edc::Lrc).unwrap();
    assert_eq!(block, Block::s(0, SKind::Ifs, false, 0xFE));
    assert_eq!(block.encode(Edc::Lrc), bytes);
    assert_eq!(block.encoded_len(Edc::Lrc), 5);

    // I-block N(S)=0 with SELECT header 00 A4 04 00 00; LRC worked out by hand per
    // §11.4.4: 00^00^05^00^A4^04^00^00 = A5.
    let bytes = h("00 00 05 00 A4 04 00 00 A5");
    let block = Block::decode(&bytes, Edc::Lrc).unwrap();
    assert_eq!(
        block.pcb,
        Pcb::I {
            ns: false,
            more: false
        }
    );
    assert_eq!(block.inf, h("00 A4 04 00 00"));
    assert_eq!(block.encode(Edc::Lrc), bytes);
    assert_eq!(block.encoded_len(Edc::Lrc), 9);

    // I-block N(S)=1 with M, NAD 0x12 (DAD 1, SAD 2).
    let block = Block::i(0x12, true, true, h("AA"));
    assert_eq!(block.encode(Edc::Lrc), h("12 60 01 AA D9"));

    // R-blocks (Table 13): 0x90 = N(R) 1 error-free, 0x81 = N(R) 0 EDC error,
    // 0x92 = N(R) 1 other error.
    for (bytes, nr, error) in [
        ("00 90 00 90", true, RError::None),
        ("00 81 00 81", false, RError::Edc),
        ("00 92 00 92", true, RError::Other),
        ("00 87 00 87", false, RError::Reserved(7)),
    ] {
        let bytes = h(bytes);
        let block = Block::decode(&bytes, Edc::Lrc).unwrap();
        assert_eq!(block, Block::r(0, nr, error));
        assert_eq!(block.encode(Edc::Lrc), bytes);
    }

    // S-blocks (Table 14): C0 RESYNCH req, E0 resp, C2 ABORT req, E3 WTX resp.
    for (bytes, kind, response, value) in [
        ("00 C0 00 C0", SKind::Resync, false, 0),
        ("00 E0 00 E0", SKind::Resync, true, 0),
        ("00 C2 00 C2", SKind::Abort, false, 0),
        ("00 E3 01 05 E7", SKind::Wtx, true, 5),
        ("00 E1 01 20 C0", SKind::Ifs, true, 0x20),
    ] {
        let bytes = h(bytes);
        let block = Block::decode(&bytes, Edc::Lrc).unwrap();
        assert_eq!(block, Block::s(0, kind, response, value));
        assert_eq!(block.encode(Edc::Lrc), bytes);
    }
}

#[test]
fn crc_vectors() {
    // The same S(IFS request) with a CRC epilogue, computed by the reference register.
    let body = h("00 C1 01 FE");
    let mut bytes = body.clone();
    bytes.extend_from_slice(&crc_reference(&body).to_le_bytes());
    let block = Block::s(0, SKind::Ifs, false, 0xFE);
    assert_eq!(block.encode(Edc::Crc(CrcForm::X25)), bytes);
    assert_eq!(
        Block::decode(&bytes, Edc::Crc(CrcForm::X25)).unwrap(),
        block
    );
    assert_eq!(block.encoded_len(Edc::Crc(CrcForm::X25)), 6);
    // An LRC block is not a CRC block and the other way round.
    assert!(Block::decode(&h("00 C1 01 FE 3E"), Edc::Crc(CrcForm::X25)).is_err());
    assert!(Block::decode(&bytes, Edc::Lrc).is_err());
    // Every single-bit flip is caught.
    for i in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[i / 8] ^= 1 << (i % 8);
        assert!(
            Block::decode(&bad, Edc::Crc(CrcForm::X25)).is_err(),
            "bit {i}"
        );
    }
}

#[test]
fn decode_errors() {
    let e = |s: &str| Block::decode(&h(s), Edc::Lrc).unwrap_err();
    assert_eq!(e(""), BlockError::Truncated { len: 0 });
    assert_eq!(e("00 C1 01"), BlockError::Truncated { len: 3 });
    assert_eq!(e("00 00 FF 00"), BlockError::ReservedLength);
    assert_eq!(
        e("00 00 02 90 92"),
        BlockError::LengthMismatch {
            declared: 2,
            actual: 5
        }
    );
    assert_eq!(
        e("00 00 01 90 00 90"),
        BlockError::LengthMismatch {
            declared: 1,
            actual: 6
        }
    );
    assert_eq!(e("00 C1 01 FE 3F"), BlockError::BadEdc);
    // I-block with a reserved low bit, R-block with b6 set, S-block 0xC4 (the VPP
    // error of the 1997 edition, gone in 2006).
    assert_eq!(e("00 01 00 01"), BlockError::InvalidPcb(0x01));
    assert_eq!(e("00 A0 00 A0"), BlockError::InvalidPcb(0xA0));
    assert_eq!(e("00 E4 00 E4"), BlockError::InvalidPcb(0xE4));
    assert_eq!(
        e("00 80 01 00 81"),
        BlockError::BadInfLength { pcb: 0x80, len: 1 }
    );
    assert_eq!(
        e("00 C1 00 C1"),
        BlockError::BadInfLength { pcb: 0xC1, len: 0 }
    );
    assert_eq!(
        e("00 C0 01 00 C1"),
        BlockError::BadInfLength { pcb: 0xC0, len: 1 }
    );
    assert_eq!(e("00 C1 01 00 C0"), BlockError::ReservedIfs(0x00));
    assert_eq!(e("00 E1 01 FF 1F"), BlockError::ReservedIfs(0xFF));
    let long = Block::i(0, false, false, vec![0x55; 33]).encode(Edc::Lrc);
    assert_eq!(
        Block::decode_limited(&long, Edc::Lrc, 32).unwrap_err(),
        BlockError::InfTooLong { len: 33, max: 32 }
    );
    assert!(Block::decode_limited(&long, Edc::Lrc, 33).is_ok());
    assert_eq!(BlockError::BadEdc.to_string(), "bad edc");
}

#[test]
fn pcb_byte_round_trip() {
    let mut valid = 0;
    for b in 0..=255u8 {
        if let Ok(pcb) = Pcb::from_byte(b) {
            assert_eq!(pcb.to_byte(), b);
            valid += 1;
        }
    }
    // 4 I-block PCBs, 32 R-block PCBs, 8 S-block PCBs.
    assert_eq!(valid, 4 + 32 + 8);
}

#[test]
#[should_panic(expected = "exceeds 254")]
fn encode_refuses_oversized_inf() {
    let _ = Block::i(0, false, false, vec![0; 255]).encode(Edc::Lrc);
}

fn send(event: Result<T1Event, T1Error>) -> Vec<u8> {
    match event {
        Ok(T1Event::Send(s)) => {
            assert_eq!(s.bwi, 0);
            s.block
        }
        other => panic!("expected a block to send, got {other:?}"),
    }
}

#[test]
fn short_apdu_scripted() {
    let mut t1 = T1::new(T1Config::default());
    let first = t1.transmit(&h("00 A4 04 00 00")).unwrap();
    assert_eq!(first.block, h("00 00 05 00 A4 04 00 00 A5"));
    assert_eq!(first.bwi, 0);
    assert_eq!(t1.transmit(&h("00")), Err(T1Error::Busy));
    // I(0) from the card: 90 00.
    assert_eq!(
        t1.on_block(&h("00 00 02 90 00 92")),
        Ok(T1Event::Done(h("90 00")))
    );
    assert!(t1.is_idle());
    assert_eq!(
        t1.on_block(&h("00 00 02 90 00 92")),
        Err(T1Error::NotExpecting)
    );
    assert_eq!(t1.on_timeout(), Err(T1Error::NotExpecting));
    // Rule 2: the next exchange uses N(S) = 1 on both sides.
    let second = t1.transmit(&h("00 B0 00 00 02")).unwrap();
    assert_eq!(second.block, h("00 40 05 00 B0 00 00 02 F7"));
    assert_eq!(
        t1.on_block(&h("00 40 04 01 02 90 00 D7")),
        Ok(T1Event::Done(h("01 02 90 00")))
    );
    assert_eq!(t1.transmit(&[]), Err(T1Error::EmptyApdu));
}

#[test]
fn chaining_scripted() {
    let config = T1Config {
        ifsc: 3,
        ifsd: 2,
        ..T1Config::default()
    };
    let mut t1 = T1::new(config);
    // Host to card: 5 bytes in blocks of IFSC = 3, M on the first.
    let first = t1.transmit(&h("01 02 03 04 05")).unwrap();
    assert_eq!(first.block, h("00 20 03 01 02 03 23"));
    // Rule 5: R(N(R) = 1) acknowledges it.
    assert_eq!(send(t1.on_block(&h("00 90 00 90"))), h("00 40 02 04 05 43"));
    // Card to host: I(0, M) 90, host acknowledges with R(1); then I(1) 00.
    assert_eq!(send(t1.on_block(&h("00 20 01 90 B1"))), h("00 90 00 90"));
    // A repeated I(0, M) is not appended twice: R(N(R) = 1, other error).
    assert_eq!(send(t1.on_block(&h("00 20 01 90 B1"))), h("00 92 00 92"));
    assert_eq!(
        t1.on_block(&h("00 40 01 00 41")),
        Ok(T1Event::Done(h("90 00")))
    );
    // An I-block over IFSD is refused with R(N(R), other error).
    t1.transmit(&h("AA")).unwrap();
    assert_eq!(
        send(t1.on_block(&h("00 00 03 01 02 03 03"))),
        h("00 82 00 82")
    );
}

#[test]
fn wtx_sets_bwi_on_the_answer_only() {
    let mut t1 = T1::new(T1Config::default());
    t1.transmit(&h("80 CA 00 00 00")).unwrap();
    // Rule 3: S(WTX request, 5) is answered with S(WTX response, 5) sent with bBWI = 5.
    let Ok(T1Event::Send(wtx)) = t1.on_block(&h("00 C3 01 05 C7")) else {
        panic!("no wtx response");
    };
    assert_eq!(wtx.block, h("00 E3 01 05 E7"));
    assert_eq!(wtx.bwi, 5);
    assert_eq!(wtx.deadline_multiplier(), 5);
    // The next block (a retransmission request after a bad block) is back to bwi 0.
    let retry = send(t1.on_block(&h("00 00 02 90 00 00")));
    assert_eq!(retry, h("00 81 00 81"));
    assert_eq!(T1Send::plain(retry).deadline_multiplier(), 1);
    assert_eq!(
        t1.on_block(&h("00 00 02 90 00 92")),
        Ok(T1Event::Done(h("90 00")))
    );
}

#[test]
fn ifs_scripted_both_ways() {
    let mut t1 = T1::new(T1Config {
        ifsd: 254,
        ..T1Config::default()
    });
    assert_eq!(t1.ifs_request().unwrap(), h("00 C1 01 FE 3E"));
    assert_eq!(t1.transmit(&h("00")), Err(T1Error::Busy));
    // A wrong echo repeats the request (rule 7.3).
    assert_eq!(send(t1.on_block(&h("00 E1 01 20 C0"))), h("00 C1 01 FE 3E"));
    assert_eq!(
        send(t1.on_timeout().map(T1Event::Send)),
        h("00 C1 01 FE 3E")
    );
    assert_eq!(
        t1.on_block(&h("00 E1 01 FE 1E")),
        Ok(T1Event::IfsdAccepted(254))
    );
    assert!(t1.is_idle());

    // Rule 4: the card announces IFSC = 2 in the middle of a chain.
    t1.transmit(&h("01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 21 22 23 24 25 26 27 28 29 2A 2B 2C 2D 2E 2F 30"))
        .unwrap();
    assert_eq!(send(t1.on_block(&h("00 C1 01 02 C2"))), h("00 E1 01 02 E2"));
    assert_eq!(t1.ifsc(), 2);
    // The acknowledged first block held 32 bytes; the next one is cut to 2.
    assert_eq!(send(t1.on_block(&h("00 90 00 90"))), h("00 60 02 2D 2E 61"));
}

#[test]
fn retransmission_scripted() {
    let mut t1 = T1::new(T1Config::default());
    let first = t1.transmit(&h("00 A4 04 00 00")).unwrap().block;
    // The card saw a bad EDC: R(N(R) = 0, EDC error) asks for I(0) again.
    assert_eq!(send(t1.on_block(&h("00 81 00 81"))), first);
    // Card's block corrupted: rule 7.1, R(N(R) = 0) with EDC error or other error.
    assert_eq!(send(t1.on_block(&h("00 00 02 90 00 93"))), h("00 81 00 81"));
    assert_eq!(send(t1.on_block(&h("00 00 02 90"))), h("00 82 00 82"));
    // A timeout is like an invalid block.
    assert_eq!(
        t1.on_block(&h("00 00 02 90 00 92")),
        Ok(T1Event::Done(h("90 00")))
    );
    // A card I-block with the wrong N(S) is invalid too.
    t1.transmit(&h("00")).unwrap();
    assert_eq!(send(t1.on_block(&h("00 00 02 90 00 92"))), h("00 92 00 92"));
    assert_eq!(send(t1.on_timeout().map(T1Event::Send)), h("00 92 00 92"));
}

#[test]
fn resynchronisation_then_unrecoverable() {
    let mut t1 = T1::new(T1Config::default());
    t1.transmit(&h("00 A4 04 00 00")).unwrap();
    let garbage = h("00 00 02 90 00 00");
    // Three retransmissions requests (max_retries = 3), then S(RESYNCH request).
    for _ in 0..3 {
        assert_eq!(send(t1.on_block(&garbage)), h("00 81 00 81"));
    }
    assert_eq!(send(t1.on_block(&garbage)), h("00 C0 00 C0"));
    assert_eq!(t1.on_block(&h("00 E0 00 E0")), Err(T1Error::Resynchronised));
    assert!(t1.is_idle());
    // Sequence numbers are 0 again.
    assert_eq!(t1.transmit(&h("00")).unwrap().block, h("00 00 01 00 01"));
    for _ in 0..3 {
        assert_eq!(send(t1.on_timeout().map(T1Event::Send)), h("00 82 00 82"));
    }
    assert_eq!(send(t1.on_timeout().map(T1Event::Send)), h("00 C0 00 C0"));
    // The RESYNCH request is repeated three times, then the engine gives up.
    for _ in 0..3 {
        assert_eq!(send(t1.on_block(&garbage)), h("00 C0 00 C0"));
    }
    assert_eq!(
        t1.on_block(&garbage),
        Err(T1Error::Unrecoverable {
            cause: Some(BlockError::BadEdc)
        })
    );
    assert_eq!(
        t1.transmit(&h("00")),
        Err(T1Error::Unrecoverable { cause: None })
    );
    assert_eq!(t1.on_timeout(), Err(T1Error::Unrecoverable { cause: None }));
    t1.reset();
    assert_eq!(t1.transmit(&h("00")).unwrap().block, h("00 00 01 00 01"));
}

#[test]
fn abort_from_card_scripted() {
    let mut t1 = T1::new(T1Config::default());
    t1.transmit(&h("00 A4 04 00 00")).unwrap();
    assert_eq!(
        t1.on_block(&h("00 40 02 90 00 D2")),
        Ok(T1Event::Send(T1Send::plain(h("00 82 00 82"))))
    );
    // Rule 9: S(ABORT request) is answered and the APDU fails.
    assert_eq!(
        t1.on_block(&h("00 C2 00 C2")),
        Err(T1Error::Aborted {
            send: T1Send::plain(h("00 E2 00 E2"))
        })
    );
    assert!(t1.is_idle());
    // The next APDU goes after a resynchronisation.
    assert_eq!(t1.transmit(&h("00")).unwrap().block, h("00 C0 00 C0"));
    assert_eq!(send(t1.on_block(&h("00 E0 00 E0"))), h("00 00 01 00 01"));
    assert_eq!(
        t1.on_block(&h("00 00 02 90 00 92")),
        Ok(T1Event::Done(h("90 00")))
    );
}

#[test]
fn response_chain_is_bounded() {
    let mut t1 = T1::new(T1Config {
        ifsd: 254,
        ..T1Config::default()
    });
    t1.transmit(&h("00 B0 00 00 00")).unwrap();
    let mut ns = false;
    let mut blocks = 0;
    let error = loop {
        let block = Block::i(0, ns, true, vec![0xEE; 254]).encode(Edc::Lrc);
        match t1.on_block(&block) {
            Ok(T1Event::Send(_)) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
        ns = !ns;
        blocks += 1;
    };
    assert_eq!(error, T1Error::ResponseTooLong);
    // 258 blocks of 254 bytes hold 65 532 bytes; the 259th would pass MAX_RESPONSE.
    assert_eq!(blocks, MAX_RESPONSE / 254);
    assert!(t1.is_idle());
    assert_eq!(t1.transmit(&h("00")).unwrap().block, h("00 C0 00 C0"));
}

#[test]
fn card_must_not_request_resynch() {
    let mut t1 = T1::new(T1Config::default());
    t1.transmit(&h("00")).unwrap();
    assert_eq!(send(t1.on_block(&h("00 C0 00 C0"))), h("00 82 00 82"));
}

/// A host block altered on its way to the card, by index in the whole run.
#[derive(Default)]
struct Wire {
    corrupt_host: Option<usize>,
    sent: Vec<T1Send>,
    steps: usize,
}

/// Runs one APDU between the engine and the card; `None` if it does not end within
/// the step budget.
fn run<F: FnMut(&[u8]) -> Vec<u8>>(
    t1: &mut T1,
    card: &mut T1Card<F>,
    wire: &mut Wire,
    apdu: &[u8],
    budget: usize,
) -> Option<Result<Vec<u8>, T1Error>> {
    let mut next = match t1.transmit(apdu) {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    for _ in 0..budget {
        let mut bytes = next.block.clone();
        if wire.corrupt_host == Some(wire.steps) {
            if let Some(b) = bytes.last_mut() {
                *b ^= 0x5A;
            }
        }
        wire.steps += 1;
        wire.sent.push(next.clone());
        let event = match card.on_block(&bytes) {
            Some(answer) => t1.on_block(&answer),
            None => t1.on_timeout().map(T1Event::Send),
        };
        match event {
            Ok(T1Event::Send(s)) => next = s,
            Ok(T1Event::Done(r)) => return Some(Ok(r)),
            Ok(T1Event::IfsdAccepted(_)) => panic!("unexpected ifs event"),
            Err(T1Error::Aborted { send }) => {
                wire.sent.push(send.clone());
                let _ = card.on_block(&send.block);
                return Some(Err(T1Error::Aborted { send }));
            }
            Err(e) => return Some(Err(e)),
        }
    }
    None
}

/// The card's application: answers the command reversed, then 90 00, padded to
/// `extra` more bytes.
fn app(extra: usize) -> impl FnMut(&[u8]) -> Vec<u8> {
    move |cmd: &[u8]| {
        let mut r: Vec<u8> = cmd.iter().rev().copied().collect();
        r.extend((0..extra).map(|i| (i % 251) as u8));
        r.extend_from_slice(&[0x90, 0x00]);
        r
    }
}

fn expected(cmd: &[u8], extra: usize) -> Vec<u8> {
    app(extra)(cmd)
}

fn pair(ifsc: u8, ifsd: u8, edc: Edc, extra: usize) -> (T1, T1Card<impl FnMut(&[u8]) -> Vec<u8>>) {
    let t1 = T1::new(T1Config {
        ifsc,
        ifsd,
        edc,
        ..T1Config::default()
    });
    let card = T1Card::new(
        T1CardConfig {
            ifsc,
            ifsd,
            edc,
            ..T1CardConfig::default()
        },
        app(extra),
    );
    (t1, card)
}

#[test]
fn card_short_apdu_and_sequence_numbers() {
    let (mut t1, mut card) = pair(32, 32, Edc::Lrc, 0);
    let mut wire = Wire::default();
    for (n, apdu) in [
        h("00 A4 04 00 00"),
        h("00 B0 00 00 10"),
        h("00 C0 00 00 00"),
    ]
    .iter()
    .cycle()
    .take(5)
    .enumerate()
    {
        let before = wire.sent.len();
        let r = run(&mut t1, &mut card, &mut wire, apdu, 10).unwrap();
        assert_eq!(r, Ok(expected(apdu, 0)));
        // One block each way; N(S) alternates 0, 1, 0, ... across exchanges.
        assert_eq!(wire.sent.len(), before + 1);
        let pcb = wire.sent[before].block[1];
        assert_eq!(pcb, if n % 2 == 0 { 0x00 } else { 0x40 });
    }
    assert_eq!(card.commands().len(), 5);
}

#[test]
fn card_chaining_both_ways_with_crc() {
    let (mut t1, mut card) = pair(16, 20, Edc::Crc(CrcForm::X25), 300);
    let mut wire = Wire::default();
    let apdu: Vec<u8> = (0..100).collect();
    let r = run(&mut t1, &mut card, &mut wire, &apdu, 100).unwrap();
    assert_eq!(r, Ok(expected(&apdu, 300)));
    assert_eq!(card.commands(), std::slice::from_ref(&apdu));
    // 7 command blocks (6 × 16 + 4), then one R-block per chained response block:
    // 402 response bytes in blocks of 20 are 21 blocks, 20 of them chained.
    assert_eq!(wire.sent.len(), 7 + 20);
    assert!(wire.sent.iter().all(|s| s.block.len() <= 3 + 16 + 2));
}

#[test]
fn card_wtx() {
    let mut t1 = T1::new(T1Config::default());
    let mut card = T1Card::new(
        T1CardConfig {
            wtx_requests: 2,
            wtx_multiplier: 7,
            ..T1CardConfig::default()
        },
        app(40),
    );
    let mut wire = Wire::default();
    let apdu = h("00 A4 04 00 00");
    let r = run(&mut t1, &mut card, &mut wire, &apdu, 20).unwrap();
    assert_eq!(r, Ok(expected(&apdu, 40)));
    let bwis: Vec<u8> = wire.sent.iter().map(|s| s.bwi).collect();
    // I-block, two S(WTX response), then the R-block acknowledging the first of the
    // two response blocks (47 bytes over IFSD 32).
    assert_eq!(bwis, [0, 7, 7, 0]);
    assert_eq!(wire.sent[1].block, h("00 E3 01 07 E5"));
}

#[test]
fn card_ifs_both_ways() {
    let mut t1 = T1::new(T1Config {
        ifsd: 100,
        ..T1Config::default()
    });
    let mut card = T1Card::new(
        T1CardConfig {
            ifsc: 32,
            ifs_request: Some(8),
            ..T1CardConfig::default()
        },
        app(150),
    );
    let request = t1.ifs_request().unwrap();
    let answer = card.on_block(&request).unwrap();
    assert_eq!(t1.on_block(&answer), Ok(T1Event::IfsdAccepted(100)));
    assert_eq!(card.ifsd(), 100);

    let mut wire = Wire::default();
    let apdu: Vec<u8> = (0..40).collect();
    let r = run(&mut t1, &mut card, &mut wire, &apdu, 50).unwrap();
    assert_eq!(r, Ok(expected(&apdu, 150)));
    assert_eq!((t1.ifsc(), card.ifsc()), (8, 8));
    // The card refuses I-blocks over its IFSC, so the second APDU only succeeds if the
    // host splits it at 8 bytes.
    let r = run(&mut t1, &mut card, &mut wire, &apdu, 50).unwrap();
    assert_eq!(r, Ok(expected(&apdu, 150)));
    assert_eq!(card.commands().len(), 2);
}

#[test]
fn card_every_single_fault_is_recovered() {
    let apdu: Vec<u8> = (0..50).collect();
    let (mut t1, mut card) = pair(16, 16, Edc::Lrc, 30);
    let mut clean = Wire::default();
    run(&mut t1, &mut card, &mut clean, &apdu, 100)
        .unwrap()
        .unwrap();
    let blocks = clean.sent.len();
    for at in 0..blocks {
        for fault in 0..3 {
            let (mut t1, mut card) = pair(16, 16, Edc::Lrc, 30);
            let mut wire = Wire::default();
            match fault {
                0 => wire.corrupt_host = Some(at),
                1 => card.inject(at, Fault::CorruptReply),
                _ => card.inject(at, Fault::Mute),
            }
            let r = run(&mut t1, &mut card, &mut wire, &apdu, 100);
            assert_eq!(r, Some(Ok(expected(&apdu, 30))), "fault {fault} at {at}");
            assert_eq!(
                card.commands(),
                std::slice::from_ref(&apdu),
                "fault {fault} at {at}"
            );
            assert!(wire.sent.len() > blocks, "fault {fault} at {at} unnoticed");
            // The following exchange still works: sequence numbers agree.
            let r = run(&mut t1, &mut card, &mut wire, &apdu, 100);
            assert_eq!(
                r,
                Some(Ok(expected(&apdu, 30))),
                "after fault {fault} at {at}"
            );
        }
    }
}

#[test]
fn card_abort_then_resynch() {
    let (mut t1, mut card) = pair(32, 32, Edc::Lrc, 0);
    let mut wire = Wire::default();
    let apdu = h("00 A4 04 00 00");
    card.inject(0, Fault::Abort);
    let r = run(&mut t1, &mut card, &mut wire, &apdu, 10).unwrap();
    assert!(matches!(r, Err(T1Error::Aborted { .. })), "{r:?}");
    assert!(card.commands().is_empty());
    let r = run(&mut t1, &mut card, &mut wire, &apdu, 10).unwrap();
    assert_eq!(r, Ok(expected(&apdu, 0)));
    assert_eq!(card.commands(), [apdu]);
}

#[test]
fn card_mute_is_unrecoverable() {
    let (mut t1, mut card) = pair(32, 32, Edc::Lrc, 0);
    for n in 0..20 {
        card.inject(n, Fault::Mute);
    }
    let mut wire = Wire::default();
    let r = run(&mut t1, &mut card, &mut wire, &h("00 A4 04 00 00"), 20).unwrap();
    assert_eq!(r, Err(T1Error::Unrecoverable { cause: None }));
    // The I-block, 3 R-blocks, the RESYNCH request and its 3 repetitions.
    assert_eq!(wire.sent.len(), 8);
}

#[test]
fn card_mute_then_resynchronised() {
    let (mut t1, mut card) = pair(32, 32, Edc::Lrc, 0);
    for n in 0..4 {
        card.inject(n, Fault::Mute);
    }
    let mut wire = Wire::default();
    let apdu = h("00 A4 04 00 00");
    let r = run(&mut t1, &mut card, &mut wire, &apdu, 20).unwrap();
    assert_eq!(r, Err(T1Error::Resynchronised));
    let r = run(&mut t1, &mut card, &mut wire, &apdu, 20).unwrap();
    assert_eq!(r, Ok(expected(&apdu, 0)));
}

/// What a TPDU-level PIN pad sends: the host's prologue, the APDU with the PIN in it,
/// LEN corrected and the EDC computed by the reader.
fn reader_built(prologue: [u8; 3], apdu: &[u8], edc: Edc) -> Vec<u8> {
    let pcb = Pcb::from_byte(prologue[1]).unwrap();
    Block {
        nad: prologue[0],
        pcb,
        inf: apdu.to_vec(),
    }
    .encode(edc)
}

#[test]
fn reader_block_stays_in_sequence() {
    let (mut t1, mut card) = pair(32, 32, Edc::Crc(CrcForm::X25), 0);
    let mut wire = Wire::default();
    let select = h("00 A4 04 00 00");
    assert_eq!(
        run(&mut t1, &mut card, &mut wire, &select, 10),
        Some(Ok(expected(&select, 0)))
    );
    // CCID §6.1.11.4 bTeoPrologue for the template 00 20 00 81 (the reader appends
    // Lc and the PIN): NAD 0, PCB I-block with N(S) = 1, LEN 4.
    let prologue = t1.reader_block(4).unwrap();
    assert_eq!(prologue, [0x00, 0x40, 0x04]);
    assert_eq!(t1.reader_block(4), Err(T1Error::Busy));
    let verify = h("00 20 00 81 06 31 32 33 34 35 36");
    let answer = card
        .on_block(&reader_built(prologue, &verify, Edc::Crc(CrcForm::X25)))
        .unwrap();
    assert_eq!(
        t1.on_block(&answer),
        Ok(T1Event::Done(expected(&verify, 0)))
    );
    // Both sides moved on: the next APDU goes with N(S) = 0 in one block each way.
    let before = wire.sent.len();
    assert_eq!(
        run(&mut t1, &mut card, &mut wire, &select, 10),
        Some(Ok(expected(&select, 0)))
    );
    assert_eq!(wire.sent.len(), before + 1);
    assert_eq!(wire.sent[before].block[1], 0x00);
}

#[test]
fn reader_block_not_sent_leaves_sequence_unchanged() {
    let (mut t1, mut card) = pair(32, 32, Edc::Lrc, 0);
    let mut wire = Wire::default();
    assert_eq!(t1.reader_block(11).unwrap()[1], 0x00);
    // PIN_CANCELLED: the reader sent nothing to the card.
    t1.reader_block_not_sent();
    assert!(t1.is_idle());
    let apdu = h("00 B0 00 00 10");
    assert_eq!(
        run(&mut t1, &mut card, &mut wire, &apdu, 10),
        Some(Ok(expected(&apdu, 0)))
    );
    assert_eq!(wire.sent.len(), 1);
    assert_eq!(wire.sent[0].block[1], 0x00);
}

#[test]
fn reader_block_lost_resynchronises_next() {
    let (mut t1, mut card) = pair(32, 32, Edc::Lrc, 0);
    let mut wire = Wire::default();
    t1.reader_block(5).unwrap();
    // Rule 7.1: the card did not get the block and asks for N(S) = 0 again.
    let again = Block::r(0, false, RError::Edc).encode(Edc::Lrc);
    assert_eq!(t1.on_block(&again), Err(T1Error::ReaderBlockLost));
    assert_eq!(t1.reader_block(5), Err(T1Error::NotSynchronised));
    let apdu = h("00 B0 00 00 10");
    assert_eq!(
        run(&mut t1, &mut card, &mut wire, &apdu, 10),
        Some(Ok(expected(&apdu, 0)))
    );
    // S(RESYNCH request) first.
    assert_eq!(wire.sent[0].block[1], 0xC0);
}

#[test]
fn reader_block_fits_ifsc() {
    let (mut t1, _) = pair(16, 32, Edc::Lrc, 0);
    assert_eq!(
        t1.reader_block(17),
        Err(T1Error::ReaderBlockTooLong { len: 17, ifsc: 16 })
    );
    assert_eq!(
        t1.reader_block(0),
        Err(T1Error::ReaderBlockTooLong { len: 0, ifsc: 16 })
    );
    assert_eq!(t1.reader_block(16).map(|p| p[2]), Ok(16));
}

// The two CRC forms. Vectors from the issue, taken from libccid's src/openct/checksum.c
// (register reflected 0x8408, preset FFFF, not complemented, high byte first) and the
// CRC catalogue's CRC-16/X-25 (check 0x906E for "123456789", sent low byte first).
#[test]
fn crc_forms_vectors() {
    let libccid = Edc::Crc(CrcForm::Libccid);
    let x25 = Edc::Crc(CrcForm::X25);
    assert_eq!(CrcForm::Libccid.epilogue(b"123456789"), [0x6F, 0x91]);
    assert_eq!(CrcForm::X25.epilogue(b"123456789"), [0x6E, 0x90]);
    let ifs = Block::s(0, SKind::Ifs, false, 0xFE);
    assert_eq!(ifs.encode(libccid), h("00 C1 01 FE 54 4E"));
    assert_eq!(ifs.encode(x25), h("00 C1 01 FE B1 AB"));
    let get_challenge = Block::i(0, false, false, h("00 84 00 00 08"));
    assert_eq!(
        get_challenge.encode(libccid),
        h("00 00 05 00 84 00 00 08 BB C1")
    );
    assert_eq!(
        get_challenge.encode(x25),
        h("00 00 05 00 84 00 00 08 3E 44")
    );
    assert_eq!(
        Block::decode(&h("00 C1 01 FE 54 4E"), libccid),
        Ok(ifs.clone())
    );
    assert_eq!(
        Block::decode(&h("00 C1 01 FE 54 4E"), x25),
        Err(BlockError::BadEdc)
    );
    assert_eq!(
        Block::decode(&h("00 C1 01 FE B1 AB"), libccid),
        Err(BlockError::BadEdc)
    );
    // What a TPDU-level host sends first to a CRC card: S(IFS request) in libccid's form.
    let mut t1 = T1::new(T1Config {
        ifsd: 254,
        edc: libccid,
        ..T1Config::default()
    });
    assert_eq!(t1.ifs_request().unwrap(), h("00 C1 01 FE 54 4E"));
}

/// Power-on's S(IFS) exchange, then chaining both ways and WTX, between a host starting
/// with `start` and a card computing `card_form`.
fn crc_session(start: CrcForm, card_form: CrcForm) -> (T1, Wire, Vec<Vec<u8>>) {
    let mut t1 = T1::new(T1Config {
        ifsc: 16,
        ifsd: 20,
        edc: Edc::Crc(start),
        ..T1Config::default()
    });
    let mut card = T1Card::new(
        T1CardConfig {
            ifsc: 16,
            edc: Edc::Crc(card_form),
            wtx_requests: 1,
            wtx_multiplier: 3,
            ..T1CardConfig::default()
        },
        app(300),
    );
    // Power-on: the first CRC block is the host's S(IFS request).
    let mut next = t1.ifs_request().unwrap();
    let mut ifs_blocks = 0;
    loop {
        ifs_blocks += 1;
        assert!(
            ifs_blocks < 8,
            "{start:?} -> {card_form:?}: ifs exchange loops"
        );
        let answer = card.on_block(&next).expect("card answers");
        match t1.on_block(&answer) {
            Ok(T1Event::IfsdAccepted(20)) => break,
            Ok(T1Event::Send(s)) => next = s.block,
            other => panic!("{start:?} -> {card_form:?}: {other:?}"),
        }
    }
    assert_eq!(card.ifsd(), 20, "{start:?} -> {card_form:?}");
    let mut wire = Wire::default();
    let apdu: Vec<u8> = (0..100).collect();
    for _ in 0..2 {
        let r = run(&mut t1, &mut card, &mut wire, &apdu, 100);
        assert_eq!(
            r,
            Some(Ok(expected(&apdu, 300))),
            "{start:?} -> {card_form:?}"
        );
    }
    (t1, wire, card.commands().to_vec())
}

#[test]
fn crc_form_is_recognised_from_the_cards_blocks() {
    for start in [CrcForm::Libccid, CrcForm::X25] {
        for card_form in [CrcForm::Libccid, CrcForm::X25] {
            let (t1, wire, commands) = crc_session(start, card_form);
            assert_eq!(t1.edc(), Edc::Crc(card_form), "{start:?} -> {card_form:?}");
            assert_eq!(commands.len(), 2);
            // Each APDU: 7 command blocks, one S(WTX response) (sent with bBWI 3),
            // then 20 R-blocks for the 21 response blocks of 20 bytes. Nothing is
            // repeated once the form is known, so the APDUs see no extra block.
            assert_eq!(
                wire.sent.len(),
                2 * (7 + 1 + 20),
                "{start:?} -> {card_form:?}"
            );
            assert_eq!(wire.sent.iter().filter(|s| s.bwi == 3).count(), 2);
            for sent in &wire.sent {
                let decoded = Block::decode(&sent.block, Edc::Crc(card_form));
                assert!(decoded.is_ok(), "{start:?} -> {card_form:?}: {sent:02X?}");
            }
        }
    }
}

/// A card that computes the CRC of its own blocks in `sends` but checks ours in
/// `checks`: it answers R(error) in `sends` to every block it cannot read, the way the
/// issue describes cards that keep refusing.
struct MixedCard<F> {
    inner: T1Card<F>,
    sends: Edc,
    checks: Edc,
    refusals: usize,
}

impl<F: FnMut(&[u8]) -> Vec<u8>> MixedCard<F> {
    fn on_block(&mut self, rx: &[u8]) -> Vec<u8> {
        if Block::decode(rx, self.checks).is_err() {
            self.refusals += 1;
            return Block::r(0, false, RError::Edc).encode(self.sends);
        }
        let answer = self.inner.on_block(rx).expect("answer");
        Block::decode(&answer, self.checks)
            .expect("inner answer")
            .encode(self.sends)
    }
}

#[test]
fn crc_form_switches_after_repeated_refusals() {
    let libccid = Edc::Crc(CrcForm::Libccid);
    let x25 = Edc::Crc(CrcForm::X25);
    let mut t1 = T1::new(T1Config {
        edc: libccid,
        ..T1Config::default()
    });
    let mut card = MixedCard {
        inner: T1Card::new(
            T1CardConfig {
                edc: x25,
                ..T1CardConfig::default()
            },
            app(0),
        ),
        sends: libccid,
        checks: x25,
        refusals: 0,
    };
    let apdu = h("00 A4 04 00 00");
    let mut next = t1.transmit(&apdu).unwrap().block;
    let mut blocks = 0;
    let response = loop {
        blocks += 1;
        assert!(blocks < 10, "no progress");
        match t1.on_block(&card.on_block(&next)) {
            Ok(T1Event::Send(s)) => next = s.block,
            Ok(T1Event::Done(r)) => break r,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(response, expected(&apdu, 0));
    // Two refusals, then the I-block again in the other form.
    assert_eq!(card.refusals, 2);
    assert_eq!(blocks, 3);
    assert_eq!(t1.edc(), x25);
    // Settled: the next APDU goes in one block each way.
    let r = t1.transmit(&apdu).unwrap().block;
    assert_eq!(
        Block::decode(&r, x25).map(|b| b.pcb),
        Ok(Pcb::I {
            ns: true,
            more: false
        })
    );
}

#[test]
fn crc_card_refusing_both_forms_ends() {
    // A card whose refusals never stop: the engine alternates forms within its retry
    // budget, resynchronises, and gives up instead of looping.
    let mut t1 = T1::new(T1Config {
        edc: Edc::Crc(CrcForm::Libccid),
        ..T1Config::default()
    });
    let refuse = Block::r(0, false, RError::Edc).encode(Edc::Crc(CrcForm::Libccid));
    t1.transmit(&h("00 A4 04 00 00")).unwrap();
    let mut result = None;
    for _ in 0..20 {
        match t1.on_block(&refuse) {
            Ok(T1Event::Send(_)) => {}
            other => {
                result = Some(other);
                break;
            }
        }
    }
    assert!(
        matches!(result, Some(Err(T1Error::Unrecoverable { .. }))),
        "{result:?}"
    );
}

#[test]
fn crc_form_settled_survives_every_single_fault() {
    // After detection a corrupted block is an ordinary error (rule 7), not a reason to
    // change forms again: every fault at every block is recovered.
    let apdu: Vec<u8> = (0..50).collect();
    for card_form in [CrcForm::Libccid, CrcForm::X25] {
        let fresh = || {
            let mut t1 = T1::new(T1Config {
                ifsc: 16,
                ifsd: 16,
                edc: Edc::Crc(card_form.other()),
                ..T1Config::default()
            });
            let mut card = T1Card::new(
                T1CardConfig {
                    ifsc: 16,
                    ifsd: 16,
                    edc: Edc::Crc(card_form),
                    ..T1CardConfig::default()
                },
                app(30),
            );
            let mut wire = Wire::default();
            // The first APDU finds the form.
            let r = run(&mut t1, &mut card, &mut wire, &apdu, 100);
            assert_eq!(r, Some(Ok(expected(&apdu, 30))));
            (t1, card, wire.sent.len())
        };
        let (_, _, first) = fresh();
        for at in 0..first {
            for fault in 0..3 {
                let (mut t1, mut card, _) = fresh();
                let mut wire = Wire::default();
                match fault {
                    0 => wire.corrupt_host = Some(at),
                    1 => card.inject(at, Fault::CorruptReply),
                    _ => card.inject(at, Fault::Mute),
                }
                let r = run(&mut t1, &mut card, &mut wire, &apdu, 100);
                assert_eq!(
                    r,
                    Some(Ok(expected(&apdu, 30))),
                    "{card_form:?} {fault} {at}"
                );
                assert_eq!(t1.edc(), Edc::Crc(card_form), "{card_form:?} {fault} {at}");
                t1.reset();
                assert_eq!(t1.edc(), Edc::Crc(card_form), "kept across reset");
            }
        }
    }
}
