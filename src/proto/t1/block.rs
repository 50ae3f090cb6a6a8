//! The T=1 block codec: [`Block`], its [`Pcb`] and the error detection codes of [`Edc`]
//! (ISO/IEC 7816-3 §11.3, §11.4).

use super::MAX_INF;
use crate::proto::bytes::Cursor;

/// Error detection code of the block epilogue (§11.4.4), chosen by bit 1 of the first TC
/// for T=1 in the ATR (LRC when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Edc {
    /// Longitudinal redundancy check: one byte, the XOR of every prologue and INF byte.
    #[default]
    Lrc,
    /// Cyclic redundancy check: two bytes, in one of the two forms of [`CrcForm`].
    Crc(CrcForm),
}

/// The two CRC epilogues found in the field. Both run the same register (see [`crc16`]);
/// they differ in the final complement and in the byte order on the wire.
///
/// The ATR only says "CRC". ISO/IEC 7816-3 §11.4.4 refers to ISO 3309, whose frame check
/// sequence is [`CrcForm::X25`]; libccid (`src/openct/checksum.c`), and with it pcsc-lite on
/// Linux and macOS and ChromeOS's Smart Card Connector, sends [`CrcForm::Libccid`], and
/// cards are tested against those stacks. The host engine [`T1`](super::T1) starts with the form its
/// configuration names and recognises the card's form from the card's own blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CrcForm {
    /// libccid's form: the register without the final complement, high-order byte first.
    /// Vectors (libccid): `00 C1 01 FE` → `54 4E`; "123456789" → `6F 91`.
    #[default]
    Libccid,
    /// CRC-16/X-25 (the HDLC frame check sequence of ISO/IEC 13239): the register
    /// complemented, low-order byte first. Vectors: `00 C1 01 FE` → `B1 AB`; "123456789"
    /// → `6E 90` (check value 0x906E of the CRC catalogue).
    X25,
}

impl CrcForm {
    /// The other form.
    pub fn other(self) -> Self {
        match self {
            CrcForm::Libccid => CrcForm::X25,
            CrcForm::X25 => CrcForm::Libccid,
        }
    }

    /// The two epilogue bytes for `data` (prologue and INF), in wire order.
    pub fn epilogue(self, data: &[u8]) -> [u8; 2] {
        match self {
            CrcForm::Libccid => (!crc16(data)).to_be_bytes(),
            CrcForm::X25 => crc16(data).to_le_bytes(),
        }
    }
}

impl Edc {
    /// Size of the epilogue field in bytes.
    pub fn size(self) -> usize {
        match self {
            Edc::Lrc => 1,
            Edc::Crc(_) => 2,
        }
    }

    /// Appends the epilogue computed over the bytes already in `block` (prologue and INF).
    fn append(self, block: &mut Vec<u8>) {
        match self {
            Edc::Lrc => {
                let l = lrc(block);
                block.push(l);
            }
            Edc::Crc(form) => {
                let c = form.epilogue(block);
                block.extend_from_slice(&c);
            }
        }
    }

    /// Whether `epilogue` is the right one for `body`.
    fn checks(self, body: &[u8], epilogue: &[u8]) -> bool {
        match self {
            Edc::Lrc => epilogue == [lrc(body)],
            Edc::Crc(form) => epilogue == form.epilogue(body),
        }
    }
}

/// The LRC of §11.4.4: exclusive-or of all bytes.
pub fn lrc(data: &[u8]) -> u8 {
    data.iter().fold(0, |acc, b| acc ^ b)
}

/// The CRC of §11.4.4, which refers to ISO 3309 (now ISO/IEC 13239): the HDLC frame check
/// sequence. Generator x¹⁶ + x¹² + x⁵ + 1, register preset to all ones, bits taken least
/// significant first (so the register shifts right with the reflected constant 0x8408),
/// the result complemented. Catalogued as CRC-16/IBM-SDLC (alias X-25): check value 0x906E
/// for the ASCII digits "123456789". [`CrcForm`] says how each form puts it on the wire.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x8408
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The error code of an R-block, PCB bits b4..b1 (§11.3.2.2, Table 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RError {
    /// `0000`: error-free acknowledgement.
    None,
    /// `0001`: EDC or parity error.
    Edc,
    /// `0010`: other errors.
    Other,
    /// Any other value of b4..b1 (3 to 15), reserved for future use. Encoding keeps only
    /// the low four bits.
    Reserved(u8),
}

impl RError {
    fn bits(self) -> u8 {
        match self {
            RError::None => 0,
            RError::Edc => 1,
            RError::Other => 2,
            RError::Reserved(v) => v & 0x0F,
        }
    }

    fn from_bits(v: u8) -> Self {
        match v {
            0 => RError::None,
            1 => RError::Edc,
            2 => RError::Other,
            v => RError::Reserved(v),
        }
    }
}

/// The kind of an S-block, PCB bits b5..b1 (§11.3.2.2, Table 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SKind {
    /// `00000` RESYNCH: reset of the protocol state; no INF.
    #[doc(alias = "RESYNCH")]
    Resync,
    /// `00001` IFS: announces a new information field size; INF is the size (1..=254).
    Ifs,
    /// `00010` ABORT: abortion of a chain; no INF.
    Abort,
    /// `00011` WTX: waiting time extension; INF is the BWT multiplier.
    Wtx,
}

impl SKind {
    fn bits(self) -> u8 {
        match self {
            SKind::Resync => 0,
            SKind::Ifs => 1,
            SKind::Abort => 2,
            SKind::Wtx => 3,
        }
    }

    /// Length of the INF field this kind carries.
    fn inf_len(self) -> usize {
        match self {
            SKind::Resync | SKind::Abort => 0,
            SKind::Ifs | SKind::Wtx => 1,
        }
    }
}

/// The protocol control byte (§11.3.2.2).
///
/// ```text
/// I-block  0 N(S) M 0 0 0 0 0      N(S) send sequence number, M more data (chaining)
/// R-block  1 0 0 N(R) e e e e      N(R) sequence number of the expected I-block, e error code
/// S-block  1 1 r t t t t t         r response (1) or request (0), t kind
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pcb {
    /// Information block: carries application data.
    #[doc(alias = "I-block")]
    I {
        /// Send sequence number N(S), bit 7.
        ns: bool,
        /// More-data bit M, bit 6: another I-block of the same chain follows.
        more: bool,
    },
    /// Receive-ready block: acknowledgement or request for retransmission.
    #[doc(alias = "R-block")]
    R {
        /// N(R), bit 5: the N(S) of the I-block expected next.
        nr: bool,
        /// Error code, bits 4..1.
        error: RError,
    },
    /// Supervisory block: protocol control.
    #[doc(alias = "S-block")]
    S {
        /// Which control function.
        kind: SKind,
        /// Bit 6: response (true) or request (false).
        response: bool,
    },
}

impl Pcb {
    /// The PCB byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Pcb::I { ns, more } => u8::from(ns) << 6 | u8::from(more) << 5,
            Pcb::R { nr, error } => 0x80 | u8::from(nr) << 4 | error.bits(),
            Pcb::S { kind, response } => 0xC0 | u8::from(response) << 5 | kind.bits(),
        }
    }

    /// Parses a PCB byte, refusing reserved bit patterns.
    pub fn from_byte(b: u8) -> Result<Self, BlockError> {
        match b & 0xC0 {
            0x00 | 0x40 if b & 0x1F == 0 => Ok(Pcb::I {
                ns: b & 0x40 != 0,
                more: b & 0x20 != 0,
            }),
            0x80 if b & 0x20 == 0 => Ok(Pcb::R {
                nr: b & 0x10 != 0,
                error: RError::from_bits(b & 0x0F),
            }),
            0xC0 => {
                let kind = match b & 0x1F {
                    0 => SKind::Resync,
                    1 => SKind::Ifs,
                    2 => SKind::Abort,
                    3 => SKind::Wtx,
                    _ => return Err(BlockError::InvalidPcb(b)),
                };
                Ok(Pcb::S {
                    kind,
                    response: b & 0x20 != 0,
                })
            }
            _ => Err(BlockError::InvalidPcb(b)),
        }
    }
}

/// Why bytes are not a valid T=1 block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Fewer bytes than a prologue and an epilogue.
    #[error("truncated block of {len} bytes")]
    Truncated {
        /// How many bytes there were.
        len: usize,
    },
    /// LEN 0xFF, reserved (§11.3.2.3).
    #[error("reserved length 0xff")]
    ReservedLength,
    /// The byte count differs from prologue + LEN + epilogue.
    #[error("length mismatch: len {declared} but {actual} bytes")]
    LengthMismatch {
        /// LEN from the prologue.
        declared: u8,
        /// Total bytes received.
        actual: usize,
    },
    /// The epilogue does not match the prologue and INF.
    #[error("bad edc")]
    BadEdc,
    /// A reserved PCB pattern.
    #[error("invalid pcb {0:#04x}")]
    InvalidPcb(u8),
    /// An R-block with INF, or an S-block whose INF size does not fit its kind.
    #[error("bad inf length {len} for pcb {pcb:#04x}")]
    BadInfLength {
        /// The PCB byte.
        pcb: u8,
        /// LEN from the prologue.
        len: u8,
    },
    /// An S(IFS) with the reserved sizes 0x00 or 0xFF (§11.4.2).
    #[error("reserved ifs {0:#04x}")]
    ReservedIfs(u8),
    /// An I-block longer than the information field size in force.
    #[error("inf of {len} bytes over ifs {max}")]
    InfTooLong {
        /// INF length received.
        len: usize,
        /// The IFS in force.
        max: usize,
    },
}

/// One T=1 block (§11.3): prologue (NAD, PCB, LEN), INF, epilogue (EDC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Node address byte: b7..b5 destination, b3..b1 source (§11.3.2.1); 0 when unused.
    pub nad: u8,
    /// Protocol control byte.
    pub pcb: Pcb,
    /// Information field, at most [`MAX_INF`] bytes.
    pub inf: Vec<u8>,
}

impl Block {
    /// Size of the encoded block.
    pub fn encoded_len(&self, edc: Edc) -> usize {
        3 + self.inf.len() + edc.size()
    }

    /// Encodes the block:
    ///
    /// ```text
    /// [0] NAD  [1] PCB  [2] LEN = INF length  [3..3+LEN] INF  then EDC (1 byte LRC, 2 bytes CRC)
    /// ```
    ///
    /// # Panics
    /// If `inf` is longer than [`MAX_INF`]: a caller bug, never caused by peer data (the
    /// engines split data to the information field size in force).
    pub fn encode(&self, edc: Edc) -> Vec<u8> {
        let len = match u8::try_from(self.inf.len()) {
            Ok(len) if usize::from(len) <= MAX_INF => len,
            // A constant text: formatting the length would be code on every build for a
            // panic no peer can cause (issue 18).
            _ => panic!("t1 inf exceeds 254 bytes"),
        };
        let mut out = Vec::with_capacity(self.encoded_len(edc));
        out.push(self.nad);
        out.push(self.pcb.to_byte());
        out.push(len);
        out.extend_from_slice(&self.inf);
        edc.append(&mut out);
        out
    }

    /// Decodes one whole block and checks it: length, EDC, PCB, and the INF size each
    /// block type allows (R-blocks none, S(RESYNCH) and S(ABORT) none, S(IFS) and S(WTX)
    /// one byte, IFS in 1..=254). I-blocks may carry up to [`MAX_INF`] bytes; use
    /// [`Block::decode_limited`] to enforce the IFS in force.
    pub fn decode(bytes: &[u8], edc: Edc) -> Result<Block, BlockError> {
        let truncated = BlockError::Truncated { len: bytes.len() };
        if bytes.len() < 3 + edc.size() {
            return Err(truncated);
        }
        let mut c = Cursor::new(bytes);
        let (Some(nad), Some(pcb_byte), Some(len)) = (c.u8(), c.u8(), c.u8()) else {
            return Err(truncated);
        };
        if len == 0xFF {
            return Err(BlockError::ReservedLength);
        }
        let mismatch = BlockError::LengthMismatch {
            declared: len,
            actual: bytes.len(),
        };
        if bytes.len() != 3 + usize::from(len) + edc.size() {
            return Err(mismatch);
        }
        let inf = c.take(usize::from(len)).ok_or(mismatch.clone())?;
        let body = bytes.get(..3 + usize::from(len)).ok_or(mismatch.clone())?;
        let epilogue = c.take_rest();
        if !edc.checks(body, epilogue) {
            return Err(BlockError::BadEdc);
        }
        let pcb = Pcb::from_byte(pcb_byte)?;
        let bad_len = BlockError::BadInfLength { pcb: pcb_byte, len };
        match pcb {
            Pcb::I { .. } => {}
            Pcb::R { .. } if !inf.is_empty() => return Err(bad_len),
            Pcb::R { .. } => {}
            Pcb::S { kind, .. } => {
                if inf.len() != kind.inf_len() {
                    return Err(bad_len);
                }
                if let (SKind::Ifs, [size @ (0x00 | 0xFF)]) = (kind, inf) {
                    return Err(BlockError::ReservedIfs(*size));
                }
            }
        }
        Ok(Block {
            nad,
            pcb,
            inf: inf.to_vec(),
        })
    }

    /// [`Block::decode`], then refuses an I-block whose INF exceeds `max_inf` (the IFS the
    /// receiver announced, §11.4.2).
    pub fn decode_limited(bytes: &[u8], edc: Edc, max_inf: usize) -> Result<Block, BlockError> {
        let block = Block::decode(bytes, edc)?;
        if matches!(block.pcb, Pcb::I { .. }) && block.inf.len() > max_inf {
            return Err(BlockError::InfTooLong {
                len: block.inf.len(),
                max: max_inf,
            });
        }
        Ok(block)
    }

    /// An I-block.
    pub fn i(nad: u8, ns: bool, more: bool, inf: Vec<u8>) -> Self {
        Block {
            nad,
            pcb: Pcb::I { ns, more },
            inf,
        }
    }

    /// An R-block.
    pub fn r(nad: u8, nr: bool, error: RError) -> Self {
        Block {
            nad,
            pcb: Pcb::R { nr, error },
            inf: Vec::new(),
        }
    }

    /// An S-block; `value` is the INF byte of S(IFS) and S(WTX), ignored for the others.
    pub fn s(nad: u8, kind: SKind, response: bool, value: u8) -> Self {
        let inf = if kind.inf_len() == 1 {
            vec![value]
        } else {
            Vec::new()
        };
        Block {
            nad,
            pcb: Pcb::S { kind, response },
            inf,
        }
    }

    /// The one INF byte of an S(IFS) or S(WTX) block.
    pub(super) fn value(&self) -> Option<u8> {
        match self.inf.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }
}
