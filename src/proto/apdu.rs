//! Command and response APDUs, ISO/IEC 7816-4 §5.1, and the meaning of status words (§5.6).
//!
//! A command APDU is, byte by byte (§5.1):
//!
//! ```text
//! CLA INS P1 P2                      header, always
//! [Lc] [data] [Le]                   body, one of:
//!   case 1:  (nothing)
//!   case 2S: Le                      1 byte, 00 means Ne = 256
//!   case 3S: Lc data                 Lc 1 byte, 01..FF
//!   case 4S: Lc data Le
//!   case 2E: 00 Le1 Le2              0000 means Ne = 65536
//!   case 3E: 00 Lc1 Lc2 data         Lc 0001..FFFF
//!   case 4E: 00 Lc1 Lc2 data Le1 Le2 (no extra 00 before Le)
//! ```

use std::fmt;

use crate::proto::bytes::Cursor;

/// Largest Ne of a short APDU (Le = 00).
pub const MAX_SHORT_NE: u32 = 256;
/// Largest Ne of an extended APDU (Le = 0000).
pub const MAX_EXTENDED_NE: u32 = 65536;
/// Largest Nc of a short APDU.
pub const MAX_SHORT_NC: usize = 255;
/// Largest Nc of an extended APDU.
pub const MAX_EXTENDED_NC: usize = 65535;

/// Why an APDU could not be parsed or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApduError {
    /// Fewer than the 4 header bytes.
    #[error("command apdu shorter than 4 bytes ({0})")]
    TooShort(usize),
    /// The body length does not match any case of §5.1 for the length bytes it starts with.
    #[error("bad apdu body length {len} for lc/le {first:#04x}")]
    BadLength {
        /// The total length of the APDU.
        len: usize,
        /// The first body byte (Lc, Le or the 00 of an extended length).
        first: u8,
    },
    /// An extended Lc of 0000.
    #[error("extended lc is zero")]
    ZeroExtendedLc,
    /// The command data is longer than 65535 bytes.
    #[error("command data too long ({0} bytes)")]
    DataTooLong(usize),
    /// Ne is 0 (write `None`) or above 65536.
    #[error("bad ne {0}")]
    BadNe(u32),
    /// A response APDU needs at least SW1 SW2.
    #[error("response apdu shorter than 2 bytes ({0})")]
    ResponseTooShort(usize),
}

/// The cases of ISO/IEC 7816-4 §5.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// No data, no response data.
    Case1,
    /// No data, response data expected, short Le.
    Case2Short,
    /// Data, no response data, short Lc.
    Case3Short,
    /// Data and response data, short Lc and Le.
    Case4Short,
    /// No data, response data expected, extended Le.
    Case2Extended,
    /// Data, no response data, extended Lc.
    Case3Extended,
    /// Data and response data, extended Lc and Le.
    Case4Extended,
}

impl Case {
    /// Whether this case uses extended length fields.
    pub fn is_extended(self) -> bool {
        matches!(
            self,
            Case::Case2Extended | Case::Case3Extended | Case::Case4Extended
        )
    }
}

/// A command APDU (7816-4 §5.1).
///
/// `ne` is the maximum number of response data bytes expected: `None` for cases 1 and 3,
/// 1..=256 for a short Le (256 is written 00), up to 65536 for an extended Le (65536 is
/// written 0000). [`CommandApdu::encode`] picks the short form whenever data and Ne allow it,
/// so an extended APDU with small lengths is re-encoded short.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandApdu {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (Nc = its length).
    pub data: Vec<u8>,
    /// Expected response length Ne, if any.
    pub ne: Option<u32>,
}

/// Shows the header and the lengths, never the data: a command may carry a PIN (VERIFY,
/// CHANGE REFERENCE DATA) or key material, and `Debug` output ends up in logs and panics.
impl std::fmt::Debug for CommandApdu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandApdu")
            .field("cla", &self.cla)
            .field("ins", &self.ins)
            .field("p1", &self.p1)
            .field("p2", &self.p2)
            .field("nc", &self.data.len())
            .field("ne", &self.ne)
            .finish()
    }
}

impl CommandApdu {
    /// A case 1 command: header only.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        CommandApdu {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            ne: None,
        }
    }

    /// A case 2 command expecting up to `ne` bytes.
    pub fn case2(cla: u8, ins: u8, p1: u8, p2: u8, ne: u32) -> Self {
        CommandApdu::new(cla, ins, p1, p2).with_ne(ne)
    }

    /// A case 3 command carrying `data`.
    pub fn case3(cla: u8, ins: u8, p1: u8, p2: u8, data: impl Into<Vec<u8>>) -> Self {
        CommandApdu::new(cla, ins, p1, p2).with_data(data)
    }

    /// A case 4 command carrying `data` and expecting up to `ne` bytes.
    pub fn case4(cla: u8, ins: u8, p1: u8, p2: u8, data: impl Into<Vec<u8>>, ne: u32) -> Self {
        CommandApdu::new(cla, ins, p1, p2)
            .with_data(data)
            .with_ne(ne)
    }

    /// Replaces the command data.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// Sets Ne (checked by [`CommandApdu::encode`], not here).
    pub fn with_ne(mut self, ne: u32) -> Self {
        self.ne = Some(ne);
        self
    }

    /// Parses a command APDU by the length rules of 7816-4 §5.1 (see the module docs).
    pub fn parse(bytes: &[u8]) -> Result<CommandApdu, ApduError> {
        let mut cur = Cursor::new(bytes);
        let [cla, ins, p1, p2] = cur.array::<4>().ok_or(ApduError::TooShort(bytes.len()))?;
        let mut apdu = CommandApdu::new(cla, ins, p1, p2);
        let body = cur.take_rest();
        let bad = |first: u8| ApduError::BadLength {
            len: bytes.len(),
            first,
        };
        let mut body = Cursor::new(body);
        let Some(first) = body.u8() else {
            return Ok(apdu);
        };
        if body.is_empty() {
            // Case 2S: one Le byte.
            apdu.ne = Some(short_ne(first));
            return Ok(apdu);
        }
        if first != 0 {
            // Cases 3S and 4S: Lc 01..FF, data, optional Le.
            let data = body.take(usize::from(first)).ok_or(bad(first))?;
            apdu.data = data.to_vec();
            match (body.u8(), body.remaining()) {
                (None, _) => {}
                (Some(le), 0) => apdu.ne = Some(short_ne(le)),
                (Some(_), _) => return Err(bad(first)),
            }
            return Ok(apdu);
        }
        // Extended forms: 00 then two length bytes.
        let len = body.u16_be().ok_or(bad(first))?;
        if body.is_empty() {
            // Case 2E.
            apdu.ne = Some(extended_ne(len));
            return Ok(apdu);
        }
        if len == 0 {
            return Err(ApduError::ZeroExtendedLc);
        }
        let data = body.take(usize::from(len)).ok_or(bad(first))?;
        apdu.data = data.to_vec();
        match body.remaining() {
            0 => {}
            2 => apdu.ne = body.u16_be().map(extended_ne),
            _ => return Err(bad(first)),
        }
        Ok(apdu)
    }

    /// Checks Nc and Ne against the limits of 7816-4 §5.1.
    fn check(&self) -> Result<(), ApduError> {
        if self.data.len() > MAX_EXTENDED_NC {
            return Err(ApduError::DataTooLong(self.data.len()));
        }
        match self.ne {
            Some(ne) if ne == 0 || ne > MAX_EXTENDED_NE => Err(ApduError::BadNe(ne)),
            _ => Ok(()),
        }
    }

    /// Whether the APDU needs extended length fields: Nc above 255 or Ne above 256.
    pub fn is_extended(&self) -> bool {
        self.data.len() > MAX_SHORT_NC || self.ne.is_some_and(|ne| ne > MAX_SHORT_NE)
    }

    /// The case this APDU is encoded as.
    pub fn case(&self) -> Case {
        let ext = self.is_extended();
        match (self.data.is_empty(), self.ne.is_some(), ext) {
            (true, false, _) => Case::Case1,
            (true, true, false) => Case::Case2Short,
            (true, true, true) => Case::Case2Extended,
            (false, false, false) => Case::Case3Short,
            (false, false, true) => Case::Case3Extended,
            (false, true, false) => Case::Case4Short,
            (false, true, true) => Case::Case4Extended,
        }
    }

    /// The header CLA INS P1 P2.
    pub fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }

    /// The offset of the command data in the encoded APDU: 5 short, 7 extended.
    pub fn data_offset(&self) -> usize {
        if self.is_extended() {
            7
        } else {
            5
        }
    }

    /// The encoded length, or an error for bad Nc/Ne.
    pub fn encoded_len(&self) -> Result<usize, ApduError> {
        self.check()?;
        let nc = self.data.len();
        Ok(4 + match self.case() {
            Case::Case1 => 0,
            Case::Case2Short => 1,
            Case::Case3Short => 1 + nc,
            Case::Case4Short => 2 + nc,
            Case::Case2Extended => 3,
            Case::Case3Extended => 3 + nc,
            Case::Case4Extended => 5 + nc,
        })
    }

    /// Encodes the APDU, short when possible, else extended (7816-4 §5.1).
    pub fn encode(&self) -> Result<Vec<u8>, ApduError> {
        let mut out = Vec::with_capacity(self.encoded_len()?);
        out.extend_from_slice(&self.header());
        let nc = self.data.len();
        let ext = self.is_extended();
        if nc > 0 {
            if ext {
                out.push(0);
                out.extend_from_slice(&to_u16(nc).to_be_bytes());
            } else {
                out.push(to_u8(nc));
            }
            out.extend_from_slice(&self.data);
        }
        if let Some(ne) = self.ne {
            if ext {
                if nc == 0 {
                    out.push(0);
                }
                // 65536 wraps to 0000 as the standard wants.
                out.extend_from_slice(&to_u16_wrapping(ne).to_be_bytes());
            } else {
                // 256 wraps to 00 as the standard wants.
                out.push(to_u16_wrapping(ne).to_be_bytes()[1]);
            }
        }
        Ok(out)
    }
}

/// Ne of a short Le byte: 00 means 256.
fn short_ne(le: u8) -> u32 {
    if le == 0 {
        MAX_SHORT_NE
    } else {
        u32::from(le)
    }
}

/// Ne of an extended Le: 0000 means 65536.
fn extended_ne(le: u16) -> u32 {
    if le == 0 {
        MAX_EXTENDED_NE
    } else {
        u32::from(le)
    }
}

/// The low 16 bits of `n`.
fn to_u16_wrapping(n: u32) -> u16 {
    let [lo, hi, ..] = n.to_le_bytes();
    u16::from_le_bytes([lo, hi])
}

/// `n` as u16; callers have checked `n <= 65535`.
fn to_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// `n` as u8; callers have checked `n <= 255`.
fn to_u8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// A response APDU: data then SW1 SW2 (7816-4 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseApdu {
    /// Response data (Nr = its length).
    pub data: Vec<u8>,
    /// The trailer SW1 SW2.
    pub sw: StatusWord,
}

impl ResponseApdu {
    /// A response with data and status word.
    pub fn new(data: impl Into<Vec<u8>>, sw: u16) -> Self {
        ResponseApdu {
            data: data.into(),
            sw: StatusWord(sw),
        }
    }

    /// Splits `data || SW1 SW2`; needs at least the two status bytes.
    pub fn parse(bytes: &[u8]) -> Result<ResponseApdu, ApduError> {
        let split = bytes
            .len()
            .checked_sub(2)
            .ok_or(ApduError::ResponseTooShort(bytes.len()))?;
        let (data, trailer) = bytes.split_at(split);
        let mut cur = Cursor::new(trailer);
        let sw = cur
            .u16_be()
            .ok_or(ApduError::ResponseTooShort(bytes.len()))?;
        Ok(ResponseApdu {
            data: data.to_vec(),
            sw: StatusWord(sw),
        })
    }

    /// The encoded length: data plus two.
    pub fn encoded_len(&self) -> usize {
        self.data.len() + 2
    }

    /// Encodes `data || SW1 SW2`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.0.to_be_bytes());
        out
    }
}

/// The status word SW1 SW2 of a response (7816-4 §5.6).
#[doc(alias = "SW1SW2")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    /// 9000, normal processing.
    pub const SUCCESS: StatusWord = StatusWord(0x9000);

    /// SW1.
    pub fn sw1(self) -> u8 {
        self.0.to_be_bytes()[0]
    }

    /// SW2.
    pub fn sw2(self) -> u8 {
        self.0.to_be_bytes()[1]
    }

    /// Whether this is 9000.
    pub fn is_success(self) -> bool {
        self.0 == 0x9000
    }

    /// Whether this is 61xx: more response data is available by GET RESPONSE.
    pub fn is_more_data(self) -> bool {
        self.sw1() == 0x61
    }

    /// A text for this status word, "Category: detail" (7816-4 §5.6, tables 5 and 6).
    ///
    /// 9000, 6E00 and 6700 read exactly as the OCF trace prints them.
    pub fn description(self) -> String {
        let sw1 = self.sw1();
        let sw2 = self.sw2();
        let category = match sw1 {
            0x90 | 0x61 => "Normal processing",
            0x62 | 0x63 => "Warning processing",
            0x64..=0x66 => "Execution error",
            0x67..=0x6F => "Checking error",
            _ => "Unknown status",
        };
        // The exact status words of tables 5 and 6 as data: CODES[i] reads the i-th line of
        // TEXTS. One text and one search are smaller in the wasm than a match arm, an
        // allocation or a pointer per text (issue 18).
        const CODES: [u16; 46] = [
            0x9000, 0x6100, 0x6200, 0x6281, 0x6282, 0x6283, 0x6284, 0x6285, 0x6286, 0x6300, 0x6381,
            0x6400, 0x6401, 0x6500, 0x6581, 0x6700, 0x6800, 0x6881, 0x6882, 0x6883, 0x6884, 0x6900,
            0x6981, 0x6982, 0x6983, 0x6984, 0x6985, 0x6986, 0x6987, 0x6988, 0x6A00, 0x6A80, 0x6A81,
            0x6A82, 0x6A83, 0x6A84, 0x6A85, 0x6A86, 0x6A87, 0x6A88, 0x6A89, 0x6A8A, 0x6B00, 0x6D00,
            0x6E00, 0x6F00,
        ];
        const TEXTS: &str = "\
No error\n\
256 or more response bytes still available\n\
No information given, memory unchanged\n\
Part of the returned data may be corrupted\n\
End of file or record reached before Ne bytes\n\
Selected file is deactivated\n\
File control information not in the standard format\n\
Selected file is in termination state\n\
No input data available from a sensor\n\
No information given, memory changed\n\
File filled up by the last write\n\
No information given, memory unchanged\n\
Card requires an immediate response\n\
No information given, memory changed\n\
Memory failure\n\
Wrong length\n\
Functions in class not supported\n\
Logical channel not supported\n\
Secure messaging not supported\n\
Last command of the chain expected\n\
Command chaining not supported\n\
Command not allowed\n\
Command incompatible with the file structure\n\
Security status not satisfied\n\
Authentication method blocked\n\
Reference data not usable\n\
Conditions of use not satisfied\n\
Command not allowed, no current elementary file\n\
Expected secure messaging data objects missing\n\
Secure messaging data objects incorrect\n\
Wrong parameters P1-P2\n\
Incorrect parameters in the data field\n\
Function not supported\n\
File or application not found\n\
Record not found\n\
Not enough memory space in the file\n\
Nc inconsistent with the TLV structure\n\
Incorrect parameters P1-P2\n\
Nc inconsistent with parameters P1-P2\n\
Referenced data not found\n\
File already exists\n\
DF name already exists\n\
Wrong parameters P1-P2\n\
Instruction code not supported or invalid\n\
Class not supported\n\
No precise diagnosis";
        let detail: String = match CODES
            .iter()
            .position(|&sw| sw == self.0)
            .and_then(|i| TEXTS.split('\n').nth(i))
        {
            Some(text) => text.into(),
            None => match (sw1, sw2) {
                (0x61, n) => format!("{n} response bytes still available"),
                (0x62 | 0x64, 0x02..=0x80) => format!("Card triggered a query ({sw2:02X})"),
                (0x63, 0xC0..=0xCF) => format!("Counter at {}", sw2 & 0x0F),
                (0x66, _) => "Security-related issue".into(),
                (0x6C, n) => format!("Wrong Le field, {} data bytes available", short_ne(n)),
                (0x62..=0x6F, _) => format!("Unspecified condition ({:04X})", self.0),
                _ => format!("No ISO 7816-4 meaning ({:04X})", self.0),
            },
        };
        format!("{category}: {detail}")
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// The name of an instruction byte (7816-4 §5.4 table 4, GlobalPlatform Card Spec §11),
/// "UNKNOWN" otherwise.
///
/// Interindustry names win where GlobalPlatform reuses a code (E2 is APPEND RECORD here);
/// [`command_name`] looks at the class byte to tell them apart.
pub fn ins_name(ins: u8) -> &'static str {
    // CODES[i] is named by the i-th line of NAMES. One table, one text and one search:
    // smaller in the wasm than a 256-way match or a table of pointers (issue 18).
    const CODES: [u8; 43] = [
        0x0E, 0x0F, 0x20, 0x21, 0x22, 0x24, 0x2A, 0x2C, 0x46, 0x47, 0x50, 0x70, 0x82, 0x84, 0x86,
        0x87, 0x88, 0xA2, 0xA4, 0xB0, 0xB1, 0xB2, 0xB3, 0xC0, 0xC2, 0xC3, 0xCA, 0xCB, 0xD0, 0xD1,
        0xD6, 0xD7, 0xD8, 0xDA, 0xDB, 0xDC, 0xDD, 0xE2, 0xE4, 0xE6, 0xE8, 0xF0, 0xF2,
    ];
    const NAMES: &str = "\
ERASE BINARY\n\
ERASE BINARY\n\
VERIFY\n\
VERIFY\n\
MANAGE SECURITY ENVIRONMENT\n\
CHANGE REFERENCE DATA\n\
PERFORM SECURITY OPERATION\n\
RESET RETRY COUNTER\n\
GENERATE ASYMMETRIC KEY PAIR\n\
GENERATE ASYMMETRIC KEY PAIR\n\
INITIALIZE UPDATE\n\
MANAGE CHANNEL\n\
EXTERNAL AUTHENTICATE\n\
GET CHALLENGE\n\
GENERAL AUTHENTICATE\n\
GENERAL AUTHENTICATE\n\
INTERNAL AUTHENTICATE\n\
SEARCH RECORD\n\
SELECT\n\
READ BINARY\n\
READ BINARY\n\
READ RECORD\n\
READ RECORD\n\
GET RESPONSE\n\
ENVELOPE\n\
ENVELOPE\n\
GET DATA\n\
GET DATA\n\
WRITE BINARY\n\
WRITE BINARY\n\
UPDATE BINARY\n\
UPDATE BINARY\n\
PUT KEY\n\
PUT DATA\n\
PUT DATA\n\
UPDATE RECORD\n\
UPDATE RECORD\n\
APPEND RECORD\n\
DELETE\n\
INSTALL\n\
LOAD\n\
SET STATUS\n\
GET STATUS";
    CODES
        .iter()
        .position(|&code| code == ins)
        .and_then(|i| NAMES.split('\n').nth(i))
        .unwrap_or("UNKNOWN")
}

/// The name of a command from its class and instruction: with a proprietary class (bit 8
/// set, as GlobalPlatform's 80/84) E2 is STORE DATA; otherwise as [`ins_name`].
pub fn command_name(cla: u8, ins: u8) -> &'static str {
    match (cla & 0x80 != 0 && cla != 0xFF, ins) {
        (true, 0xE2) => "STORE DATA",
        _ => ins_name(ins),
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    /// Table-driven: (hex, expected APDU, case). Vectors from the seed trace and 7816-4 §5.1.
    fn vectors() -> Vec<(&'static str, CommandApdu, Case)> {
        let mut big = vec![0u8; 300];
        big[0] = 0xAB;
        vec![
            // Seed: VERIFY without data.
            (
                "00 20 00 81",
                CommandApdu::new(0x00, 0x20, 0x00, 0x81),
                Case::Case1,
            ),
            // Seed: GET CHALLENGE, Le 45.
            (
                "00 84 00 00 45",
                CommandApdu::case2(0x00, 0x84, 0x00, 0x00, 69),
                Case::Case2Short,
            ),
            // Le 00 is Ne 256.
            (
                "00 B0 00 00 00",
                CommandApdu::case2(0x00, 0xB0, 0x00, 0x00, 256),
                Case::Case2Short,
            ),
            // Seed: VERIFY "648219".
            (
                "00 20 00 81 06 36 34 38 32 31 39",
                CommandApdu::case3(0x00, 0x20, 0x00, 0x81, b"648219".to_vec()),
                Case::Case3Short,
            ),
            // Seed: SELECT by AID with Le 00.
            (
                "00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00",
                CommandApdu::case4(
                    0x00,
                    0xA4,
                    0x04,
                    0x04,
                    h("E8 2B 06 01 04 01 81 C3 1F 02 01"),
                    256,
                ),
                Case::Case4Short,
            ),
            // 7816-4 §5.1: extended Le 0000 is Ne 65536.
            (
                "00 B0 00 00 00 00 00",
                CommandApdu::case2(0x00, 0xB0, 0x00, 0x00, 65536),
                Case::Case2Extended,
            ),
            (
                "00 B0 00 00 00 01 01",
                CommandApdu::case2(0x00, 0xB0, 0x00, 0x00, 257),
                Case::Case2Extended,
            ),
        ]
        .into_iter()
        .chain([
            (
                "",
                CommandApdu::case3(0x00, 0xD6, 0x00, 0x00, big.clone()),
                Case::Case3Extended,
            ),
            (
                "",
                CommandApdu::case4(0x00, 0x2A, 0x9E, 0x9A, big, 512),
                Case::Case4Extended,
            ),
        ])
        .collect()
    }

    #[test]
    fn parse_encode_vectors() {
        for (hex, apdu, case) in vectors() {
            let bytes = if hex.is_empty() {
                // Extended vectors built from their parts: 00 Lc1 Lc2 data [Le1 Le2].
                let mut b = apdu.header().to_vec();
                b.extend_from_slice(&[0x00, 0x01, 0x2C]);
                b.extend_from_slice(&apdu.data);
                if let Some(ne) = apdu.ne {
                    b.extend_from_slice(&to_u16_wrapping(ne).to_be_bytes());
                }
                b
            } else {
                h(hex)
            };
            assert_eq!(CommandApdu::parse(&bytes), Ok(apdu.clone()), "{hex}");
            assert_eq!(apdu.encode(), Ok(bytes.clone()), "{hex}");
            assert_eq!(apdu.encoded_len(), Ok(bytes.len()), "{hex}");
            assert_eq!(apdu.case(), case, "{hex}");
            assert_eq!(apdu.is_extended(), case.is_extended(), "{hex}");
        }
    }

    #[test]
    fn extended_small_lengths_parse_and_encode_short() {
        // 7816-4 §5.1 case 4E with Nc 2 and Ne 16: legal, encoded back in short form.
        let apdu = CommandApdu::parse(&h("00 A4 04 00 00 00 02 3F 00 00 10")).unwrap();
        assert_eq!(apdu, CommandApdu::case4(0, 0xA4, 4, 0, h("3F 00"), 16));
        assert_eq!(apdu.encode(), Ok(h("00 A4 04 00 02 3F 00 10")));
        assert_eq!(apdu.data_offset(), 5);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            CommandApdu::parse(&h("00 A4 04")),
            Err(ApduError::TooShort(3))
        );
        // Lc 02 but only one data byte.
        assert!(matches!(
            CommandApdu::parse(&h("00 A4 04 00 02 3F")),
            Err(ApduError::BadLength { len: 6, first: 2 })
        ));
        // Two bytes after the data.
        assert!(matches!(
            CommandApdu::parse(&h("00 A4 04 00 01 3F 00 00")),
            Err(ApduError::BadLength { .. })
        ));
        // 00 then one byte: neither short nor extended.
        assert!(matches!(
            CommandApdu::parse(&h("00 A4 04 00 00 01")),
            Err(ApduError::BadLength { .. })
        ));
        assert_eq!(
            CommandApdu::parse(&h("00 A4 04 00 00 00 00 3F")),
            Err(ApduError::ZeroExtendedLc)
        );
        // Extended Lc 0002 with one byte Le after the data.
        assert!(matches!(
            CommandApdu::parse(&h("00 A4 04 00 00 00 02 3F 00 00")),
            Err(ApduError::BadLength { .. })
        ));
    }

    #[test]
    fn encode_errors() {
        assert_eq!(
            CommandApdu::case2(0, 0xB0, 0, 0, 0).encode(),
            Err(ApduError::BadNe(0))
        );
        assert_eq!(
            CommandApdu::case2(0, 0xB0, 0, 0, 65537).encode(),
            Err(ApduError::BadNe(65537))
        );
        assert_eq!(
            CommandApdu::case3(0, 0xD6, 0, 0, vec![0; 65536]).encode(),
            Err(ApduError::DataTooLong(65536))
        );
    }

    #[test]
    fn response() {
        // Seed: the SELECT answer.
        let bytes = h("62 07 82 01 78 85 02 01 02 90 00");
        let rsp = ResponseApdu::parse(&bytes).unwrap();
        assert_eq!(rsp.data, h("62 07 82 01 78 85 02 01 02"));
        assert_eq!(rsp.sw, StatusWord::SUCCESS);
        assert_eq!(rsp.encode(), bytes);
        assert_eq!(rsp.encoded_len(), 11);
        assert_eq!(
            ResponseApdu::parse(&h("6E 00")),
            Ok(ResponseApdu::new(vec![], 0x6E00))
        );
        assert_eq!(
            ResponseApdu::parse(&h("90")),
            Err(ApduError::ResponseTooShort(1))
        );
    }

    #[test]
    fn status_words() {
        let sw = StatusWord(0x61_10);
        assert_eq!((sw.sw1(), sw.sw2()), (0x61, 0x10));
        assert!(sw.is_more_data());
        assert!(!sw.is_success());
        assert!(StatusWord(0x9000).is_success());
        assert_eq!(StatusWord(0x6982).to_string(), "6982");
        // The three texts of the seed trace, exactly.
        let cases = [
            (0x9000, "Normal processing: No error"),
            (0x6E00, "Checking error: Class not supported"),
            (0x6700, "Checking error: Wrong length"),
            // Our own wording for the rest.
            (
                0x6110,
                "Normal processing: 16 response bytes still available",
            ),
            (0x63C2, "Warning processing: Counter at 2"),
            (
                0x6282,
                "Warning processing: End of file or record reached before Ne bytes",
            ),
            (0x6581, "Execution error: Memory failure"),
            (0x6982, "Checking error: Security status not satisfied"),
            (0x6A82, "Checking error: File or application not found"),
            (
                0x6C00,
                "Checking error: Wrong Le field, 256 data bytes available",
            ),
            (
                0x6D00,
                "Checking error: Instruction code not supported or invalid",
            ),
            (0x6F00, "Checking error: No precise diagnosis"),
            (0x6A99, "Checking error: Unspecified condition (6A99)"),
            (0x9110, "Unknown status: No ISO 7816-4 meaning (9110)"),
        ];
        for (sw, text) in cases {
            assert_eq!(StatusWord(sw).description(), text);
        }
    }

    #[test]
    fn descriptions_follow_the_layout() {
        for sw in 0..=u16::MAX {
            let text = StatusWord(sw).description();
            let (category, detail) = text.split_once(": ").unwrap();
            assert!(!category.is_empty() && !detail.is_empty(), "{sw:04X}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(ins_name(0x20), "VERIFY");
        assert_eq!(ins_name(0xA4), "SELECT");
        assert_eq!(ins_name(0x84), "GET CHALLENGE");
        assert_eq!(ins_name(0xC0), "GET RESPONSE");
        assert_eq!(ins_name(0xE6), "INSTALL");
        assert_eq!(ins_name(0x50), "INITIALIZE UPDATE");
        assert_eq!(ins_name(0x00), "UNKNOWN");
        assert_eq!(command_name(0x00, 0xE2), "APPEND RECORD");
        assert_eq!(command_name(0x80, 0xE2), "STORE DATA");
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(apdu) = CommandApdu::parse(&bytes) {
                // Everything that parses encodes again, at most as long as the input.
                let enc = apdu.encode().unwrap();
                prop_assert!(enc.len() <= bytes.len());
                prop_assert_eq!(CommandApdu::parse(&enc), Ok(apdu));
            }
            let _ = ResponseApdu::parse(&bytes);
        }

        #[test]
        fn command_round_trips(
            header in any::<[u8; 4]>(),
            data in proptest::collection::vec(any::<u8>(), 0..600),
            ne in proptest::option::of(1u32..=65536),
        ) {
            let [cla, ins, p1, p2] = header;
            let apdu = CommandApdu { cla, ins, p1, p2, data, ne };
            let enc = apdu.encode().unwrap();
            prop_assert_eq!(enc.len(), apdu.encoded_len().unwrap());
            prop_assert_eq!(CommandApdu::parse(&enc), Ok(apdu));
        }

        #[test]
        fn response_round_trips(data in proptest::collection::vec(any::<u8>(), 0..300), sw in any::<u16>()) {
            let rsp = ResponseApdu::new(data, sw);
            prop_assert_eq!(ResponseApdu::parse(&rsp.encode()), Ok(rsp));
        }
    }
}
