use super::*;
use crate::sim::t1::{Fault, T1Card, T1CardConfig};
use proptest::prelude::*;

fn edc() -> impl Strategy<Value = Edc> {
    prop_oneof![
        Just(Edc::Lrc),
        Just(Edc::Crc(CrcForm::X25)),
        Just(Edc::Crc(CrcForm::Libccid))
    ]
}

fn block() -> impl Strategy<Value = Block> {
    let i = (
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..=MAX_INF),
    )
        .prop_map(|(nad, ns, more, inf)| Block::i(nad, ns, more, inf));
    let error = prop_oneof![
        Just(RError::None),
        Just(RError::Edc),
        Just(RError::Other),
        (3u8..16).prop_map(RError::Reserved)
    ];
    let r = (any::<u8>(), any::<bool>(), error).prop_map(|(nad, nr, e)| Block::r(nad, nr, e));
    let kind = prop_oneof![
        Just(SKind::Resync),
        Just(SKind::Ifs),
        Just(SKind::Abort),
        Just(SKind::Wtx)
    ];
    let s = (any::<u8>(), kind, any::<bool>(), 1u8..=254)
        .prop_map(|(nad, kind, response, v)| Block::s(nad, kind, response, v));
    prop_oneof![i, r, s]
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), edc in edc(), max in 0usize..300) {
        let _ = Block::decode(&bytes, edc);
        let _ = Block::decode_limited(&bytes, edc, max);
    }

    #[test]
    fn encode_decode_round_trip(block in block(), edc in edc()) {
        let bytes = block.encode(edc);
        prop_assert_eq!(bytes.len(), block.encoded_len(edc));
        prop_assert_eq!(Block::decode(&bytes, edc), Ok(block));
    }

    #[test]
    fn crc_residue(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut frame = data.clone();
        frame.extend_from_slice(&crc16(&data).to_le_bytes());
        prop_assert_eq!(!crc16(&frame), 0xF0B8);
    }

    #[test]
    fn host_never_panics_on_arbitrary_blocks(
        apdu in proptest::collection::vec(any::<u8>(), 1..100),
        rx in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..30),
    ) {
        let mut t1 = T1::new(T1Config { ifsc: 8, ..T1Config::default() });
        let _ = t1.transmit(&apdu);
        for r in rx {
            let _ = t1.on_block(&r);
        }
    }
}

fn app(extra: usize) -> impl FnMut(&[u8]) -> Vec<u8> {
    move |cmd: &[u8]| {
        let mut r: Vec<u8> = cmd.to_vec();
        r.extend((0..extra).map(|i| (i % 253) as u8));
        r.extend_from_slice(&[0x61, 0x00]);
        r
    }
}

/// Runs APDUs through engine and card with at most one fault; returns each result.
fn drive(
    apdus: &[Vec<u8>],
    extra: usize,
    ifsc: u8,
    ifsd: u8,
    edc: Edc,
    fault: Option<(u8, usize)>,
) -> Vec<Result<Vec<u8>, T1Error>> {
    let mut t1 = T1::new(T1Config {
        ifsc,
        ifsd,
        edc,
        ..T1Config::default()
    });
    let mut card = T1Card::new(
        T1CardConfig {
            ifsc,
            ifsd,
            edc,
            ..T1CardConfig::default()
        },
        app(extra),
    );
    let mut corrupt_host = None;
    match fault {
        Some((0, at)) => corrupt_host = Some(at),
        Some((1, at)) => card.inject(at, Fault::CorruptReply),
        Some((_, at)) => card.inject(at, Fault::Mute),
        None => {}
    }
    let mut step = 0usize;
    let mut results = Vec::new();
    for apdu in apdus {
        let mut next = t1.transmit(apdu);
        let result = loop {
            let send = match next {
                Ok(s) => s,
                Err(e) => break Err(e),
            };
            // Bound: the longest run sends about 700 blocks; a loop is a failure.
            assert!(step < 5_000, "no progress");
            let mut bytes = send.block;
            if corrupt_host == Some(step) {
                if let Some(b) = bytes.first_mut() {
                    *b ^= 0x01;
                }
            }
            step += 1;
            next = match card.on_block(&bytes) {
                Some(answer) => match t1.on_block(&answer) {
                    Ok(T1Event::Send(s)) => Ok(s),
                    Ok(T1Event::Done(r)) => break Ok(r),
                    Ok(T1Event::IfsdAccepted(_)) => panic!("unexpected ifs event"),
                    Err(e) => Err(e),
                },
                None => t1.on_timeout(),
            };
        };
        results.push(result);
    }
    results
}

proptest! {
    #[test]
    fn host_and_card_deliver_exact_responses(
        apdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..400), 1..3),
        extra in 0usize..400,
        ifsc in 1u8..=254,
        ifsd in 1u8..=254,
        edc in edc(),
    ) {
        let results = drive(&apdus, extra, ifsc, ifsd, edc, None);
        for (apdu, result) in apdus.iter().zip(results) {
            prop_assert_eq!(result, Ok(app(extra)(apdu)));
        }
    }

    #[test]
    fn host_and_card_survive_one_fault(
        apdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 1..3),
        extra in 0usize..200,
        ifsc in 1u8..=254,
        ifsd in 1u8..=254,
        edc in edc(),
        kind in 0u8..3,
        at in 0usize..16,
    ) {
        let results = drive(&apdus, extra, ifsc, ifsd, edc, Some((kind, at)));
        for (apdu, result) in apdus.iter().zip(results) {
            // One fault is always within the retry budget.
            prop_assert_eq!(result, Ok(app(extra)(apdu)));
        }
    }
}
