//! Transport of short command APDUs over T=0 at TPDU level (ISO/IEC 7816-3 §12.2,
//! 7816-4 §5.3; the rules a TPDU-level CCID host follows are in webusb-ccid.md "T=0 rules").
//!
//! A T=0 command TPDU is always `CLA INS P1 P2 P3` plus, for incoming data, P3 data bytes:
//!
//! ```text
//! case 1:  CLA INS P1 P2 00
//! case 2S: CLA INS P1 P2 Le          (Ne 256 is written 00)
//! case 3S: CLA INS P1 P2 Lc data
//! case 4S: CLA INS P1 P2 Lc data     (no Le: the response comes by GET RESPONSE)
//! ```
//!
//! The reader answers each TPDU with `data || SW1 SW2`. [`T0Exchange`] decides the next TPDU:
//! - `61xx`: the card has xx (00 = 256) bytes ready: send GET RESPONSE `CLA C0 00 00 P3` with
//!   P3 = min(xx, what is still wanted of Ne) and append the data of every answer.
//! - `6Cxx` to a TPDU without command data (case 1 or 2, or a GET RESPONSE): the Le was wrong,
//!   re-send the same TPDU with P3 = xx.
//! - anything else ends the exchange with the accumulated data and that status word.
//!
//! A case 1 or 3 command (no Ne) answered `61xx` is followed up the same way, for at most 256
//! bytes, so that the data the card insists on returning is not lost.
//!
//! Once Ne bytes are gathered while the card still says `61xx`, the exchange ends with the data
//! and that `61xx`, as 7816-4 §5.3.4 lets the caller fetch the rest. A case 4 command answered
//! `90 00` without data ends there, as OpenSC and PC/SC applications treat it: no GET
//! RESPONSE is sent. Warnings (`62xx`, `63xx`) end the exchange the same way.
//!
//! Extended APDUs are refused: T=0 carries them only inside ENVELOPE, which is optional and
//! not implemented.

use crate::proto::apdu::{ApduError, CommandApdu, MAX_SHORT_NE};

/// How many TPDUs one exchange may take before it is abandoned (a card answering `61xx` or
/// `6Cxx` forever).
pub const MAX_ROUNDS: u32 = 1024;

/// The instruction byte of GET RESPONSE (7816-4 §7.6.1).
pub const GET_RESPONSE_INS: u8 = 0xC0;

/// Why a T=0 exchange cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum T0Error {
    /// The command needs extended length fields, which T=0 cannot carry without ENVELOPE.
    #[error("extended apdu not supported over t=0")]
    ExtendedNotSupported,
    /// The command itself is invalid (Ne 0 or above 65536, data too long).
    #[error("invalid command apdu")]
    Apdu(#[from] ApduError),
    /// An answer shorter than SW1 SW2.
    #[error("t=0 response shorter than 2 bytes ({0})")]
    ResponseTooShort(usize),
    /// More than [`MAX_ROUNDS`] TPDUs for one APDU.
    #[error("too many t=0 rounds")]
    TooManyRounds,
    /// An answer arrived after the exchange ended.
    #[error("t=0 exchange already done")]
    AlreadyDone,
}

/// What to do after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum T0Step {
    /// Send this TPDU to the card and feed its answer to [`T0Exchange::on_response`].
    Send(Vec<u8>),
    /// The exchange is over: the response APDU `data || SW1 SW2`.
    Done(Vec<u8>),
}

/// One command APDU carried over T=0 (see the module docs for the rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T0Exchange {
    /// The first TPDU (the command mapped to T=0).
    first: Vec<u8>,
    /// The TPDU whose answer is awaited.
    last: Vec<u8>,
    /// Whether `last` carries command data (then 6Cxx cannot be a wrong Le).
    last_has_data: bool,
    /// Ne of the command; `None` means the caller expects no data, yet a `61xx` is still
    /// followed up to 256 bytes.
    ne: Option<u32>,
    /// The class byte used for GET RESPONSE.
    get_response_cla: u8,
    /// The response data gathered so far.
    data: Vec<u8>,
    /// TPDUs sent so far, counting the first.
    rounds: u32,
    /// Whether [`T0Step::Done`] was returned.
    done: bool,
}

impl T0Exchange {
    /// Maps `apdu` to T=0. `get_response_cla` is the class byte of GET RESPONSE commands;
    /// `0xFF` means "the command's own class", as CCID's bClassGetResponse.
    pub fn new(apdu: &CommandApdu, get_response_cla: u8) -> Result<T0Exchange, T0Error> {
        // Validate Nc and Ne the way the APDU encoder does.
        apdu.encoded_len()?;
        if apdu.is_extended() {
            return Err(T0Error::ExtendedNotSupported);
        }
        let mut first = apdu.header().to_vec();
        let has_data = !apdu.data.is_empty();
        if has_data {
            first.push(p3(apdu.data.len()));
            first.extend_from_slice(&apdu.data);
        } else {
            // Case 1: P3 = 00; case 2: P3 = Le (256 written 00).
            first.push(apdu.ne.map_or(0, |ne| p3(usize::try_from(ne).unwrap_or(0))));
        }
        let get_response_cla = if get_response_cla == 0xFF {
            apdu.cla
        } else {
            get_response_cla
        };
        Ok(T0Exchange {
            last: first.clone(),
            first,
            last_has_data: has_data,
            ne: apdu.ne,
            get_response_cla,
            data: Vec::new(),
            rounds: 1,
            done: false,
        })
    }

    /// The first TPDU to send.
    pub fn first_tpdu(&self) -> Vec<u8> {
        self.first.clone()
    }

    /// The response data gathered so far.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the reader's answer `data || SW1 SW2` to the last TPDU and says what comes next.
    pub fn on_response(&mut self, rsp: &[u8]) -> Result<T0Step, T0Error> {
        if self.done {
            return Err(T0Error::AlreadyDone);
        }
        let split = rsp
            .len()
            .checked_sub(2)
            .ok_or(T0Error::ResponseTooShort(rsp.len()))?;
        let (body, sw) = rsp.split_at(split);
        let (sw1, sw2) = match sw {
            [a, b] => (*a, *b),
            _ => return Err(T0Error::ResponseTooShort(rsp.len())),
        };
        self.data.extend_from_slice(body);
        let limit = usize::try_from(self.ne.unwrap_or(MAX_SHORT_NE)).unwrap_or(usize::MAX);
        let wanted = limit.saturating_sub(self.data.len());
        let next = match sw1 {
            0x61 if wanted > 0 => {
                let available = if sw2 == 0 { 256 } else { usize::from(sw2) };
                let mut tpdu = vec![self.get_response_cla, GET_RESPONSE_INS, 0x00, 0x00];
                tpdu.push(p3(available.min(wanted)));
                Some((tpdu, false))
            }
            0x6C if !self.last_has_data => {
                let mut tpdu = self.last.clone();
                if let Some(p3) = tpdu.last_mut() {
                    *p3 = sw2;
                }
                // Data a card sent before its 6Cxx is not part of the answer.
                self.data
                    .truncate(self.data.len().saturating_sub(body.len()));
                Some((tpdu, false))
            }
            _ => None,
        };
        match next {
            Some((tpdu, has_data)) => {
                if self.rounds >= MAX_ROUNDS {
                    self.done = true;
                    return Err(T0Error::TooManyRounds);
                }
                self.rounds += 1;
                self.last = tpdu.clone();
                self.last_has_data = has_data;
                Ok(T0Step::Send(tpdu))
            }
            None => {
                self.done = true;
                let mut out = std::mem::take(&mut self.data);
                out.extend_from_slice(&[sw1, sw2]);
                Ok(T0Step::Done(out))
            }
        }
    }
}

/// A P3 byte for a length of 1..=256 (256 is written 00); callers pass checked lengths.
fn p3(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    /// Runs an exchange against a scripted card: each step is (expected TPDU, card answer).
    fn run(apdu: &CommandApdu, cla: u8, script: &[(&str, &str)]) -> Result<Vec<u8>, T0Error> {
        let mut ex = T0Exchange::new(apdu, cla)?;
        let mut tpdu = ex.first_tpdu();
        for (i, (expected, answer)) in script.iter().enumerate() {
            assert_eq!(tpdu, h(expected), "step {i}");
            match ex.on_response(&h(answer))? {
                T0Step::Send(next) => tpdu = next,
                T0Step::Done(rsp) => {
                    assert_eq!(i + 1, script.len(), "ended early at step {i}");
                    return Ok(rsp);
                }
            }
        }
        panic!("script ended before the exchange, next tpdu {tpdu:02X?}");
    }

    /// One scripted exchange: name, command, GET RESPONSE class, (TPDU, answer) steps and the
    /// expected response APDU.
    type Row = (
        &'static str,
        CommandApdu,
        u8,
        Vec<(&'static str, &'static str)>,
        &'static str,
    );

    #[test]
    fn scripted_cards() {
        // (name, command apdu, GET RESPONSE class, [(tpdu, answer)], response apdu).
        // Sources: 7816-3 §12.2 cases, OpenSC sc_get_response / sc_set_le_and_transmit.
        let select = h("E8 2B 06 01 04 01 81 C3 1F 02 01");
        let table: Vec<Row> = vec![
            (
                "case 1",
                CommandApdu::new(0x00, 0x20, 0x00, 0x81),
                0x00,
                vec![("00 20 00 81 00", "63 C3")],
                "63 C3",
            ),
            (
                "case 2, all at once",
                CommandApdu::case2(0x00, 0x84, 0x00, 0x00, 8),
                0x00,
                vec![("00 84 00 00 08", "01 02 03 04 05 06 07 08 90 00")],
                "01 02 03 04 05 06 07 08 90 00",
            ),
            (
                "case 2, Ne 256 is P3 00",
                CommandApdu::case2(0x00, 0xB0, 0x00, 0x00, 256),
                0x00,
                vec![("00 B0 00 00 00", "6A 82")],
                "6A 82",
            ),
            (
                "case 2, 6Cxx then re-send",
                CommandApdu::case2(0x00, 0xB0, 0x00, 0x00, 256),
                0x00,
                vec![
                    ("00 B0 00 00 00", "6C 03"),
                    ("00 B0 00 00 03", "AA BB CC 90 00"),
                ],
                "AA BB CC 90 00",
            ),
            (
                "case 3",
                CommandApdu::case3(0x00, 0x20, 0x00, 0x81, b"648219".to_vec()),
                0x00,
                vec![("00 20 00 81 06 36 34 38 32 31 39", "67 00")],
                "67 00",
            ),
            (
                "case 3, 6Cxx is final when data was sent",
                CommandApdu::case3(0x00, 0xD6, 0x00, 0x00, h("01")),
                0x00,
                vec![("00 D6 00 00 01 01", "6C 05")],
                "6C 05",
            ),
            (
                "case 4, seed SELECT: 61xx then GET RESPONSE",
                CommandApdu::case4(0x00, 0xA4, 0x04, 0x04, select.clone(), 256),
                0x00,
                vec![
                    ("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01", "61 09"),
                    ("00 C0 00 00 09", "62 07 82 01 78 85 02 01 02 90 00"),
                ],
                "62 07 82 01 78 85 02 01 02 90 00",
            ),
            (
                "case 4, 9000 without data ends",
                CommandApdu::case4(0x00, 0xA4, 0x04, 0x0C, select, 256),
                0x00,
                vec![("00 A4 04 0C 0B E8 2B 06 01 04 01 81 C3 1F 02 01", "90 00")],
                "90 00",
            ),
            (
                "case 4, GET RESPONSE chained and capped at Ne",
                CommandApdu::case4(0x80, 0xCA, 0x00, 0x66, h("01"), 5),
                0xFF,
                vec![
                    ("80 CA 00 66 01 01", "61 10"),
                    ("80 C0 00 00 05", "01 02 03 04 05 61 0B"),
                ],
                "01 02 03 04 05 61 0B",
            ),
            (
                "case 2, 61xx twice and a fixed GET RESPONSE class",
                CommandApdu::case2(0x84, 0xB0, 0x00, 0x00, 256),
                0x00,
                vec![
                    ("84 B0 00 00 00", "61 02"),
                    ("00 C0 00 00 02", "11 22 61 01"),
                    ("00 C0 00 00 01", "33 90 00"),
                ],
                "11 22 33 90 00",
            ),
            (
                "GET RESPONSE answered 6Cxx is re-sent",
                CommandApdu::case2(0x00, 0xB2, 0x01, 0x04, 256),
                0x00,
                vec![
                    ("00 B2 01 04 00", "61 00"),
                    ("00 C0 00 00 00", "6C 04"),
                    ("00 C0 00 00 04", "DE AD BE EF 90 00"),
                ],
                "DE AD BE EF 90 00",
            ),
            (
                "case 3 answered 61xx still fetches (up to 256)",
                CommandApdu::case3(0x00, 0x22, 0x41, 0xB6, h("83 01 01")),
                0x00,
                vec![
                    ("00 22 41 B6 03 83 01 01", "61 01"),
                    ("00 C0 00 00 01", "AA 90 00"),
                ],
                "AA 90 00",
            ),
        ];
        for (name, apdu, cla, script, expected) in table {
            assert_eq!(run(&apdu, cla, &script), Ok(h(expected)), "{name}");
        }
    }

    #[test]
    fn endless_61xx_is_bounded() {
        let apdu = CommandApdu::case2(0x00, 0xB0, 0x00, 0x00, 256);
        let mut ex = T0Exchange::new(&apdu, 0x00).unwrap();
        let mut result = Ok(T0Step::Send(ex.first_tpdu()));
        let mut rounds = 0;
        while let Ok(T0Step::Send(_)) = result {
            rounds += 1;
            result = ex.on_response(&h("61 10"));
        }
        assert_eq!(result, Err(T0Error::TooManyRounds));
        assert_eq!(rounds, MAX_ROUNDS);
        assert_eq!(ex.on_response(&h("90 00")), Err(T0Error::AlreadyDone));
    }

    #[test]
    fn errors() {
        let ext = CommandApdu::case2(0x00, 0xB0, 0x00, 0x00, 1000);
        assert_eq!(
            T0Exchange::new(&ext, 0).err(),
            Some(T0Error::ExtendedNotSupported)
        );
        let bad = CommandApdu::case2(0x00, 0xB0, 0x00, 0x00, 0);
        assert_eq!(
            T0Exchange::new(&bad, 0).err(),
            Some(T0Error::Apdu(ApduError::BadNe(0)))
        );
        let mut ex = T0Exchange::new(&CommandApdu::new(0, 0xA4, 0, 0), 0).unwrap();
        assert_eq!(ex.on_response(&h("90")), Err(T0Error::ResponseTooShort(1)));
        assert_eq!(ex.on_response(&h("90 00")), Ok(T0Step::Done(h("90 00"))));
        assert_eq!(ex.on_response(&h("90 00")), Err(T0Error::AlreadyDone));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_answers_end_within_bounds(
            data in proptest::collection::vec(any::<u8>(), 0..10),
            ne in proptest::option::of(1u32..=256),
            answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..40),
        ) {
            let apdu = CommandApdu { cla: 0, ins: 0xB0, p1: 0, p2: 0, data, ne };
            let mut ex = T0Exchange::new(&apdu, 0).unwrap();
            prop_assert!(ex.first_tpdu().len() >= 5);
            for answer in answers {
                match ex.on_response(&answer) {
                    Ok(T0Step::Send(tpdu)) => prop_assert_eq!(tpdu.len(), 5),
                    Ok(T0Step::Done(rsp)) => {
                        prop_assert!(rsp.len() >= 2);
                        break;
                    }
                    Err(_) => {}
                }
            }
        }
    }
}
