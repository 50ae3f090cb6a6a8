//! PC/SC part 10 ("IFDs with Secure PIN Entry Capabilities", rev. 2.02.09): what a host
//! sends through `SCardControl` to let a PIN-pad reader collect the PIN itself.
//!
//! - `GET_FEATURE_REQUEST` (`SCARD_CTL_CODE(3400)`, §2.2) answers a list of TLVs, one per
//!   feature: tag (1 byte, the feature number), length (1 byte, always 4), value (4 bytes,
//!   **big-endian**: the control code to use for that feature).
//! - `FEATURE_VERIFY_PIN_DIRECT` (tag 06) takes a `PIN_VERIFY_STRUCTURE` (§2.5.2), the CCID
//!   PIN verification data structure (CCID §6.1.11.4) with a second timeout and an explicit
//!   data length; 16- and 32-bit fields are little-endian, as in CCID:
//!
//! ```text
//! offset  field                       size
//!  0      bTimerOut                   1    seconds, 00 = the reader's default
//!  1      bTimerOut2                  1    seconds after the first key stroke
//!  2      bmFormatString              1    as CCID
//!  3      bmPINBlockString            1    as CCID
//!  4      bmPINLengthFormat           1    as CCID
//!  5      wPINMaxExtraDigit           2    XXYY: XX min digits, YY max digits
//!  7      bEntryValidationCondition   1
//!  8      bNumberMessage              1
//!  9      wLangId                     2
//! 11      bMsgIndex                   1
//! 12      bTeoPrologue                3    00 00 00 (the driver fills it for T=1)
//! 15      ulDataLength                4    length of abData
//! 19      abData                           the VERIFY APDU the reader completes
//! ```
//!
//! The answer is the card's response APDU, or a status of the reader's own: `64 00` timeout,
//! `64 01` cancelled by the user, `64 03` PIN too short or too long, `6B 80` bad structure.

/// `GET_FEATURE_REQUEST`'s function number: the control code is `SCARD_CTL_CODE(3400)`
/// (pcsc-lite: `0x42000000 + 3400`; Windows: `FILE_DEVICE_SMARTCARD` based).
pub const GET_FEATURE_REQUEST: u32 = 3400;

/// Feature tag: PIN verification on the reader (part 10 §2.3, `FEATURE_VERIFY_PIN_DIRECT`).
pub const FEATURE_VERIFY_PIN_DIRECT: u8 = 0x06;

/// Feature tag: PIN modification on the reader (`FEATURE_MODIFY_PIN_DIRECT`).
pub const FEATURE_MODIFY_PIN_DIRECT: u8 = 0x07;

/// Reader status after a PIN entry: the user did not finish in time (§2.5.2).
pub const SW_PIN_TIMEOUT: u16 = 0x6400;
/// Reader status after a PIN entry: the user pressed Cancel.
pub const SW_PIN_CANCELLED: u16 = 0x6401;

/// Why part 10 data do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Part10Error {
    /// A feature TLV is cut short or its length is not 4.
    #[error("bad feature tlv at offset {0}")]
    Tlv(usize),
    /// The CCID PIN verification data structure is shorter than its fixed part.
    #[error("pin verification structure of {0} bytes is too short")]
    Structure(usize),
}

/// Decodes the answer to `GET_FEATURE_REQUEST`: `(tag, control code)` for each feature.
pub fn features(tlv: &[u8]) -> Result<Vec<(u8, u32)>, Part10Error> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < tlv.len() {
        match tlv.get(at..at + 6) {
            Some(&[tag, 4, a, b, c, d]) => out.push((tag, u32::from_be_bytes([a, b, c, d]))),
            _ => return Err(Part10Error::Tlv(at)),
        }
        at += 6;
    }
    Ok(out)
}

/// The control code of feature `tag`, if the reader has it (and its TLVs decode).
pub fn feature(tlv: &[u8], tag: u8) -> Option<u32> {
    features(tlv)
        .ok()?
        .into_iter()
        .find_map(|(t, code)| (t == tag).then_some(code))
}

/// The fixed part of the CCID PIN verification data structure (CCID §6.1.11.4, from
/// bTimeOut to bTeoPrologue), before abPINApdu.
const CCID_FIXED: usize = 14;

/// Builds the `PIN_VERIFY_STRUCTURE` of `FEATURE_VERIFY_PIN_DIRECT` from the CCID PIN
/// verification data structure `ccid` (CCID §6.1.11.4 without bPINOperation: bTimeOut …
/// bTeoPrologue, then abPINApdu) — the same parameters as the CCID route's
/// `PC_to_RDR_Secure`. bTimerOut2 is 0, bTeoPrologue is zeroed (PC/SC's driver fills it).
pub fn pin_verify_structure(ccid: &[u8]) -> Result<Vec<u8>, Part10Error> {
    let (Some(fixed), Some(apdu)) = (ccid.get(..CCID_FIXED), ccid.get(CCID_FIXED..)) else {
        return Err(Part10Error::Structure(ccid.len()));
    };
    let (timeout, from_format) = fixed.split_at(1);
    let length = u32::try_from(apdu.len()).map_err(|_| Part10Error::Structure(ccid.len()))?;
    let mut out = Vec::with_capacity(19 + apdu.len());
    out.extend_from_slice(timeout);
    out.push(0x00);
    // bmFormatString … bMsgIndex, unchanged.
    out.extend_from_slice(from_format.get(..from_format.len() - 3).unwrap_or_default());
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(apdu);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    #[test]
    fn feature_tlvs_carry_big_endian_control_codes() {
        // part 10 §2.2: tag, length 4, value big-endian. libccid answers VERIFY_PIN_DIRECT
        // as SCARD_CTL_CODE(0x330000 + 6) = 0x42330006 and MODIFY_PIN_DIRECT as 0x42330007.
        let tlv = h("06 04 42 33 00 06  07 04 42 33 00 07  12 04 42 33 00 12");
        assert_eq!(
            features(&tlv).unwrap(),
            vec![
                (0x06, 0x4233_0006),
                (0x07, 0x4233_0007),
                (0x12, 0x4233_0012)
            ]
        );
        assert_eq!(feature(&tlv, FEATURE_VERIFY_PIN_DIRECT), Some(0x4233_0006));
        assert_eq!(
            feature(&h("07 04 42 33 00 07"), FEATURE_VERIFY_PIN_DIRECT),
            None
        );
        assert_eq!(features(&[]).unwrap(), vec![]);
    }

    #[test]
    fn broken_tlvs_are_errors() {
        assert_eq!(features(&h("06 04 42 33 00")), Err(Part10Error::Tlv(0)));
        assert_eq!(features(&h("06 02 42 33 00 06")), Err(Part10Error::Tlv(0)));
        assert_eq!(
            features(&h("06 04 42 33 00 06 07")),
            Err(Part10Error::Tlv(6))
        );
        assert_eq!(feature(&h("06 04 42"), FEATURE_VERIFY_PIN_DIRECT), None);
    }

    #[test]
    fn pin_verify_structure_has_the_part_10_layout() {
        // The CCID structure of a VERIFY 00 20 00 81 with the PIN as Lc || ASCII digits:
        // 30 s, ASCII left-justified (82), no block, min 4 max 16 (wPINMaxExtraDigit 0410
        // little-endian: 10 04), validation key (02), one message, wLangId 0409 (09 04).
        let ccid = h("1E 82 00 00 10 04 02 01 09 04 00 00 00 00  00 20 00 81");
        let s = pin_verify_structure(&ccid).unwrap();
        assert_eq!(
            s,
            h("1E 00 82 00 00 10 04 02 01 09 04 00 00 00 00  04 00 00 00  00 20 00 81")
        );
        // part 10: the input buffer is 19 bytes plus ulDataLength.
        assert_eq!(s.len(), 19 + 4);
        assert_eq!(s.get(15..19), Some(&[4, 0, 0, 0][..]));
    }

    #[test]
    fn a_padded_pin_block_keeps_its_template() {
        // A fixed 8-byte block of FF padding: bmPINBlockString 08, abData Lc 08 and FF x8.
        let ccid =
            h("0F 82 08 00 08 04 02 01 09 04 00 00 00 00  00 20 00 01 08 FF FF FF FF FF FF FF FF");
        let s = pin_verify_structure(&ccid).unwrap();
        assert_eq!(s.get(..2), Some(&[0x0F, 0x00][..]));
        assert_eq!(s.get(3), Some(&0x08));
        assert_eq!(s.get(15..19), Some(&[13, 0, 0, 0][..]));
        assert_eq!(s.len(), 19 + 13);
        assert_eq!(
            pin_verify_structure(&h("1E 82")),
            Err(Part10Error::Structure(2))
        );
    }
}
