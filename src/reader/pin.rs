//! PIN verification on the reader's PIN pad (CCID Rev 1.1 §6.1.11, PC_to_RDR_Secure).

use super::{Millis, Reader, ReaderError, TransmitMode, HEADER_LEN};

use crate::proto::ccid::{PcToRdr, PcToRdrSecure};
use crate::proto::descriptor::ExchangeLevel;

/// PIN verification on the PIN pad: the parts of the PIN verification data structure
/// (CCID Rev 1.1 §6.1.11.4) a caller chooses. The PIN is ASCII digits, left-justified,
/// in the data field of `VERIFY` (ISO/IEC 7816-4 §11.5.6, `00 20 00 <reference>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinVerify {
    /// P2 of VERIFY: the PIN reference (0x81 is the SmartCard-HSM's user PIN).
    pub reference: u8,
    /// Fewest digits the pad accepts (wPINMaxExtraDigit high byte).
    pub min_digits: u8,
    /// Most digits the pad accepts (wPINMaxExtraDigit low byte).
    pub max_digits: u8,
    /// bTimeOut: seconds the reader waits for the PIN entry, 1 to 255.
    pub timeout_s: u8,
    /// `None`: the data field is the PIN alone, Lc its length (the template is the four
    /// header bytes and the reader appends Lc and the PIN). `Some(p)`: the data field is a
    /// fixed block of `max_digits` bytes, the PIN followed by `p` (bmPINBlockString).
    pub padding: Option<u8>,
}

impl Default for PinVerify {
    fn default() -> Self {
        PinVerify {
            reference: 0x81,
            min_digits: 4,
            max_digits: 16,
            timeout_s: 30,
            padding: None,
        }
    }
}

impl PinVerify {
    /// abPINApdu: the VERIFY command the reader completes with the PIN.
    pub fn apdu_template(&self) -> Vec<u8> {
        let mut apdu = vec![0x00, 0x20, 0x00, self.reference];
        if let Some(padding) = self.padding {
            apdu.push(self.max_digits);
            apdu.extend(std::iter::repeat_n(padding, usize::from(self.max_digits)));
        }
        apdu
    }

    /// The longest VERIFY the reader can build.
    fn max_apdu_len(&self) -> usize {
        5 + usize::from(self.max_digits)
    }

    fn check(&self) -> Result<(), ReaderError> {
        if self.min_digits == 0 || self.min_digits > self.max_digits {
            return Err(ReaderError::PinParameters(
                "digits must satisfy 1 <= min <= max",
            ));
        }
        // A PIN block size is four bits (bmPINBlockString b3..b0).
        if self.padding.is_some() && self.max_digits > 15 {
            return Err(ReaderError::PinParameters(
                "a padded pin block holds at most 15 digits",
            ));
        }
        if self.timeout_s == 0 {
            return Err(ReaderError::PinParameters("timeout must be 1 to 255 s"));
        }
        Ok(())
    }

    /// bPINOperation 0 (verification) and the PIN verification data structure, with
    /// `teo_prologue` as bTeoPrologue (zeros unless T=1 at TPDU level):
    ///
    /// ```text
    /// [0] bPINOperation 00   [1] bTimeOut   [2] bmFormatString 82: units bytes, PIN at
    /// offset 0, left-justified, ASCII   [3] bmPINBlockString: 0 length bits, block size
    /// (0 without padding)   [4] bmPINLengthFormat 00   [5..7] wPINMaxExtraDigit (LE:
    /// max, min)   [7] bEntryValidationCondition 02 (validation key)   [8] bNumberMessage
    /// 01   [9..11] wLangId 0409 (LE)   [11] bMsgIndex 00   [12..15] bTeoPrologue
    /// [15..] abPINApdu
    /// ```
    pub fn encode(&self, teo_prologue: [u8; 3]) -> Vec<u8> {
        let block_size = if self.padding.is_some() {
            self.max_digits & 0x0F
        } else {
            0
        };
        let mut data = vec![
            0x00,
            self.timeout_s,
            0x82,
            block_size,
            0x00,
            self.max_digits,
            self.min_digits,
            0x02,
            0x01,
            0x09,
            0x04,
            0x00,
        ];
        data.extend_from_slice(&teo_prologue);
        data.extend_from_slice(&self.apdu_template());
        data
    }
}
impl Reader {
    /// Sends PC_to_RDR_Secure for a PIN verification (CCID §6.1.11). At TPDU level with
    /// T=1 the slot's engine provides bTeoPrologue and takes the card's answer, so the
    /// block sequence stays intact; at the APDU levels and with T=0 the reader returns
    /// the response APDU.
    pub(super) fn begin_verify_pin(
        &mut self,
        slot: u8,
        pin: &PinVerify,
        now: Millis,
    ) -> Result<TransmitMode, ReaderError> {
        pin.check()?;
        if !self.desc.pin_verify() {
            return Err(ReaderError::Unsupported("reader has no pin pad"));
        }
        let Some(card) = self.card(slot) else {
            return Err(if self.card_present(slot) == Some(false) {
                ReaderError::CardAbsent
            } else {
                ReaderError::NotPowered
            });
        };
        let payload =
            usize::try_from(self.desc.max_message_length() - HEADER_LEN).unwrap_or(usize::MAX);
        let structure_len = pin.encode([0; 3]).len();
        if structure_len > payload {
            return Err(ReaderError::TooLong {
                len: structure_len,
                max: payload,
            });
        }
        let t1 = self.level == ExchangeLevel::Tpdu && card.protocol == 1;
        let prologue = if t1 {
            let engine = self.slots[usize::from(slot)]
                .card
                .as_mut()
                .and_then(|c| c.t1.as_mut())
                .ok_or(ReaderError::NotPowered)?;
            if pin.max_apdu_len() > usize::from(engine.ifsc()) {
                return Err(ReaderError::TooLong {
                    len: pin.max_apdu_len(),
                    max: usize::from(engine.ifsc()),
                });
            }
            let prologue = engine
                .reader_block(pin.apdu_template().len())
                .map_err(ReaderError::T1)?;
            self.t1_in_flight = Some(slot);
            prologue
        } else {
            [0; 3]
        };
        // The reader waits up to bTimeOut for the PIN, then for the card.
        let timeout = Millis::from(pin.timeout_s) * 1000 + self.exchange_timeout(slot);
        let seq = self.next_seq();
        self.push_command(
            PcToRdr::Secure(PcToRdrSecure {
                slot,
                seq,
                bwi: 0,
                level_parameter: 0,
                data: pin.encode(prologue),
            }),
            now + timeout,
            self.exchange_timeout(slot),
        );
        Ok(TransmitMode::PinEntry { t1 })
    }
}
