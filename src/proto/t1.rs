//! The T=1 block transmission protocol, ISO/IEC 7816-3 §11, as the interface device (the
//! host behind a TPDU-level CCID reader) runs it.
//!
//! Two layers live here:
//! - the block codec: [`Block`] with [`Block::encode`] and [`Block::decode`], its [`Pcb`]
//!   and the two error detection codes of [`Edc`];
//! - the host engine [`T1`]: an APDU goes in through [`T1::transmit`], the blocks the card
//!   sends come in through [`T1::on_block`] (or a missed deadline through
//!   [`T1::on_timeout`]), and each call answers with the next block to send or the complete
//!   response APDU. The engine does no I/O and reads no clock: the caller moves the bytes
//!   (one `PC_to_RDR_XfrBlock` per block) and owns the deadlines.
//!
//! A card-side counterpart for tests and the simulated reader is in [`card`].
//!
//! Rule numbers in comments are those of ISO/IEC 7816-3:2006 §11.6.2 (rules 1 to 6,
//! error-free operation and resynchronisation) and §11.6.3 (rules 7 to 9, error handling
//! and chain abortion).
//!
//! CRC forms: the ATR only says "CRC", and two incompatible forms are in use (see
//! [`CrcForm`]). The engine starts with [`T1Config::edc`], switches when a card block is
//! valid in the other form only, or when the card refuses two blocks in a row with an error
//! R-block, and keeps the form once the card has shown it understands it ([`T1::edc`]). The
//! first CRC block of a TPDU-level session is the host's S(IFS request), so this happens
//! during power-on.
//!
//! Retry policy: a block is sent at most `1 + max_retries` times. After that many failures
//! on one step (invalid blocks, timeouts, or retransmission requests from the card) the host
//! sends S(RESYNCH request), itself at most `1 + max_retries` times, and then gives up with
//! [`T1Error::Unrecoverable`]. S(WTX request) and S(IFS request) from the card are valid
//! blocks and never count as failures, so a card asking for waiting time forever keeps an
//! exchange alive: the caller bounds the total time of an APDU.

use crate::proto::bytes::Cursor;

#[cfg(any(test, feature = "simulator"))]
pub mod card;

/// Largest INF field a block can carry: LEN is one byte and 0xFF is reserved (§11.3.2.3).
pub const MAX_INF: usize = 254;

/// Default information field sizes IFSC and IFSD before any negotiation (§11.4.2).
pub const DEFAULT_IFS: u8 = 32;

/// Largest response APDU the engine assembles from a chain: 65 536 data bytes and SW1-SW2
/// (ISO/IEC 7816-4 §5.1, extended Le). A longer chain is a protocol failure.
pub const MAX_RESPONSE: usize = 65_538;

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
/// cards are tested against those stacks. The host engine [`T1`] starts with the form its
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
            _ => panic!("t1 inf of {} bytes exceeds {MAX_INF}", self.inf.len()),
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
    fn value(&self) -> Option<u8> {
        match self.inf.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }
}

/// Parameters of the host engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct T1Config {
    /// IFSC, the largest INF the card accepts: TA(i) of the first T=1 TA after TD(2) in the
    /// ATR, 32 when absent (§11.4.2).
    pub ifsc: u8,
    /// IFSD, the largest INF the host accepts: CCID `dwMaxIFSD`, capped at 254. It is what
    /// [`T1::ifs_request`] announces and the limit applied to the card's I-blocks.
    pub ifsd: u8,
    /// Error detection code from the ATR. With a CRC, the form the host starts with; the
    /// engine switches to the other form when the card's blocks show it uses that one (see
    /// [`T1::edc`]).
    pub edc: Edc,
    /// NAD of every block the host sends; 0 unless addressing is used.
    pub nad: u8,
    /// Retransmissions allowed for one block before escalating (to S(RESYNCH), then to
    /// [`T1Error::Unrecoverable`]); see the retry policy in the module documentation.
    /// ISO/IEC 7816-3 rule 7.4 and libccid use 3.
    pub max_retries: u8,
}

impl Default for T1Config {
    fn default() -> Self {
        T1Config {
            ifsc: DEFAULT_IFS,
            ifsd: DEFAULT_IFS,
            edc: Edc::Lrc,
            nad: 0,
            max_retries: 3,
        }
    }
}

/// A block for the caller to send in one `PC_to_RDR_XfrBlock` (CCID Rev 1.1 §6.1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T1Send {
    /// The encoded block: the XfrBlock's abData.
    pub block: Vec<u8>,
    /// The XfrBlock's bBWI: 0 except on the block that answers an S(WTX request, n), where
    /// it is n, so the reader waits n × BWT for the card's next block (libccid `t1_xcv`
    /// sends S(WTX response) with `bBWI = wtx`). It applies to this one block only.
    pub bwi: u8,
}

impl T1Send {
    fn plain(block: Vec<u8>) -> Self {
        T1Send { block, bwi: 0 }
    }

    /// Factor by which the caller multiplies its usual read deadline (BWT plus transport
    /// margin) while waiting for the answer to this block: `bwi`, or 1 when `bwi` is 0.
    pub fn deadline_multiplier(&self) -> u32 {
        u32::from(self.bwi.max(1))
    }
}

/// What the caller does after a block came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum T1Event {
    /// Send this block and read the card's next block.
    Send(T1Send),
    /// The exchange is complete: the whole response APDU (data and SW1-SW2).
    Done(Vec<u8>),
    /// The card echoed S(IFS response) for [`T1::ifs_request`]: it now sends INF fields of
    /// up to this size.
    IfsdAccepted(u8),
}

/// Why the engine cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum T1Error {
    /// [`T1::transmit`] with an empty APDU.
    #[error("empty apdu")]
    EmptyApdu,
    /// A new exchange was started before the current one ended.
    #[error("exchange in progress")]
    Busy,
    /// A block or timeout arrived while no exchange is running.
    #[error("no exchange in progress")]
    NotExpecting,
    /// After repeated errors the host resynchronised the protocol (S(RESYNCH), rule 6 and
    /// rule 7.4): sequence numbers are back to 0 and IFSC to the ATR value. The APDU did
    /// not complete and may or may not have run on the card; the engine does not resend
    /// it (a non-idempotent command could run twice). The engine is idle again.
    #[error("resynchronised, apdu not completed")]
    Resynchronised,
    /// The card sent S(ABORT request) (rule 9). The caller sends `send` (the S(ABORT
    /// response)) and ignores what comes back or a timeout; the APDU failed. The next
    /// [`T1::transmit`] resynchronises first (S(RESYNCH request)) and then sends its APDU,
    /// because the two sides may disagree on sequence numbers after an abort.
    #[error("card aborted the exchange")]
    Aborted {
        /// The S(ABORT response) to send.
        send: T1Send,
    },
    /// The card's response chain exceeded [`MAX_RESPONSE`]. The next [`T1::transmit`]
    /// resynchronises first, as after an abort.
    #[error("response chain too long")]
    ResponseTooLong,
    /// Resynchronisation failed too (rules 6 and 7.4): the caller must reset the card
    /// (warm reset or power cycle) and call [`T1::reset`]. Until then every call returns
    /// this error again (without a cause).
    #[error("unrecoverable t1 error")]
    Unrecoverable {
        /// The last invalid block, when the final failure was one (not a timeout).
        #[source]
        cause: Option<BlockError>,
    },
    /// [`T1::reader_block`] while a resynchronisation is pending (after
    /// [`T1Error::Aborted`] or an abandoned exchange): the reader cannot send S(RESYNCH), so
    /// an APDU must go first.
    #[error("sequence numbers not synchronised")]
    NotSynchronised,
    /// [`T1::reader_block`] for an INF the card cannot take in one block.
    #[error("reader-built block of {len} bytes exceeds ifsc {ifsc}")]
    ReaderBlockTooLong {
        /// Bytes of the INF.
        len: usize,
        /// The IFSC in force.
        ifsc: u8,
    },
    /// The card asked again for the I-block the reader built (rule 7.1); the host cannot
    /// resend it (it never had its content, e.g. the PIN). The next [`T1::transmit`]
    /// resynchronises first.
    #[error("card did not receive the reader-built block")]
    ReaderBlockLost,
}

/// State of the host engine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum State {
    /// No exchange running.
    #[default]
    Idle,
    /// Idle, but the next exchange must start with S(RESYNCH request) (after an abort or
    /// an over-long chain).
    Desynchronised,
    /// S(IFS request, ifsd) sent, waiting for S(IFS response).
    IfsRequest { ifsd: u8 },
    /// Sending the command: the I-block in flight carries `apdu[start..end]`, with
    /// N(S) = `T1::ns` and M = `end < apdu.len()`.
    // INVARIANT: start < end <= apdu.len() and end - start <= MAX_INF (at most IFSC when
    // it was built).
    Sending {
        apdu: Vec<u8>,
        start: usize,
        end: usize,
    },
    /// Receiving a response chain: R(N(R)) sent, waiting for the next chained I-block.
    // INVARIANT: response.len() <= MAX_RESPONSE.
    Receiving { response: Vec<u8> },
    /// S(RESYNCH request) sent, waiting for S(RESYNCH response). `then` is an APDU to send
    /// once resynchronised (after an abort); `None` reports [`T1Error::Resynchronised`].
    Resynch { then: Option<Vec<u8>> },
    /// The reader built and sent one unchained I-block with N(S) = `T1::ns` on the host's
    /// behalf (PC_to_RDR_Secure at TPDU level, CCID Rev 1.1 §6.1.11): the card's answer is
    /// awaited as after the last I-block of a command, but that block cannot be resent.
    ReaderBlock,
    /// Resynchronisation failed: only [`T1::reset`] leaves this state.
    Dead,
}

/// What to send again after a failure.
#[derive(Debug, Clone, Copy)]
enum Resend {
    /// An R-block with N(R) = the card's expected N(S) and this error code.
    R(RError),
    /// The I-block in flight (the card asked for it).
    I,
    /// The S(request) in flight: S(IFS request) or S(RESYNCH request).
    SRequest,
}

/// Host side of T=1 (§11.6): splits APDUs into I-blocks, reassembles responses, answers
/// the card's S-requests and recovers from transmission errors.
///
/// Each call returns the next block to send (or the response); the caller sends it in a
/// `PC_to_RDR_XfrBlock` with bBWI = [`T1Send::bwi`], feeds the card's block from the
/// `RDR_to_PC_DataBlock` into [`T1::on_block`], and calls [`T1::on_timeout`] when its
/// deadline passes (or the reader reports ICC_MUTE) instead.
#[derive(Debug, Clone)]
pub struct T1 {
    config: T1Config,
    /// IFSC in force: from the ATR, changed by the card's S(IFS request) (rule 4).
    // INVARIANT: 1 <= ifsc <= MAX_INF.
    ifsc: u8,
    /// N(S) of the host's I-block in flight, or of the next one when none is in flight.
    ns: bool,
    /// N(S) the host expects in the card's next I-block; the N(R) of the host's R-blocks.
    nr: bool,
    state: State,
    /// Failures on the current step; escalation happens when it reaches `max_retries`.
    // INVARIANT: retries <= config.max_retries.
    retries: u8,
    /// The EDC of the blocks the host sends: the configured one, or the other CRC form.
    edc: Edc,
    /// The EDC the card's blocks are checked with.
    card_edc: Edc,
    /// The card has answered a block in `edc` with something other than an error R-block:
    /// `edc` no longer changes.
    edc_settled: bool,
    /// A card block was valid in `card_edc` only: `card_edc` no longer changes.
    card_edc_settled: bool,
    /// R-blocks with an error code received in a row while `edc` is not settled.
    edc_refusals: u8,
}

/// R-blocks with an error code in a row, each answering one of our blocks, after which the
/// engine tries the other CRC form (while the form is not settled).
const CRC_REFUSALS_BEFORE_SWITCH: u8 = 2;

impl T1 {
    /// A fresh engine after the ATR: sequence numbers 0, IFSC from the config.
    ///
    /// IFSC and IFSD are clamped to 1..=254 (0 and 255 are reserved, §11.4.2).
    pub fn new(config: T1Config) -> Self {
        let config = T1Config {
            ifsc: clamp_ifs(config.ifsc),
            ifsd: clamp_ifs(config.ifsd),
            ..config
        };
        T1 {
            config,
            ifsc: config.ifsc,
            ns: false,
            nr: false,
            state: State::Idle,
            retries: 0,
            edc: config.edc,
            card_edc: config.edc,
            edc_settled: config.edc == Edc::Lrc,
            card_edc_settled: config.edc == Edc::Lrc,
            edc_refusals: 0,
        }
    }

    /// Back to the initial state, for use after the caller reset the card.
    ///
    /// The CRC form found for this card is kept: it is the same card.
    pub fn reset(&mut self) {
        let before = self.clone();
        *self = T1::new(self.config);
        self.edc = before.edc;
        self.card_edc = before.card_edc;
        self.edc_settled = before.edc_settled;
        self.card_edc_settled = before.card_edc_settled;
    }

    /// The EDC of the blocks the host sends. With a CRC it is the configured form until the
    /// card shows it uses the other one ([`CrcForm`]): a card block whose CRC is right only
    /// in the other form switches both directions at once; [`CRC_REFUSALS_BEFORE_SWITCH`]
    /// R-blocks with an error code in a row switch the sending side. Once the card has
    /// answered a block with anything but an error R-block, the sending form is settled,
    /// and once one of its blocks was valid in one form only, so is the receiving form:
    /// for the rest of the card session (also across [`T1::reset`]).
    pub fn edc(&self) -> Edc {
        self.edc
    }

    /// The IFSC in force.
    pub fn ifsc(&self) -> u8 {
        self.ifsc
    }

    /// The configuration (with IFSC and IFSD clamped).
    pub fn config(&self) -> &T1Config {
        &self.config
    }

    /// Whether no exchange is running (a new one may start).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle | State::Desynchronised)
    }

    /// Gives up the exchange in progress (the caller timed out or was aborted): the card
    /// and the host may now disagree on sequence numbers, so the next [`T1::transmit`]
    /// resynchronises first (S(RESYNCH request), §11.6.3 rule 6) and then sends its APDU.
    /// Nothing happens when no exchange is running.
    pub fn abandon(&mut self) {
        if !self.is_idle() && self.state != State::Dead {
            self.state = State::Desynchronised;
            self.retries = 0;
        }
    }

    /// Starts the IFSD negotiation (rule 4): the S(IFS request) announcing
    /// [`T1Config::ifsd`]. A TPDU-level CCID host sends it as the first block unless the
    /// reader does it itself (`dwFeatures` 0x400). Feed the answer to [`T1::on_block`];
    /// success is [`T1Event::IfsdAccepted`]. Refused with [`T1Error::Busy`] during an
    /// exchange and while a resynchronisation is pending (after [`T1Error::Aborted`] or
    /// [`T1Error::ResponseTooLong`]: send an APDU first).
    pub fn ifs_request(&mut self) -> Result<Vec<u8>, T1Error> {
        self.check_can_start()?;
        if self.state == State::Desynchronised {
            return Err(T1Error::Busy);
        }
        self.state = State::IfsRequest {
            ifsd: self.config.ifsd,
        };
        self.retries = 0;
        Ok(self.s_request())
    }

    /// Starts an exchange: the first block to send. The APDU is split into I-blocks of at
    /// most IFSC bytes, all but the last with the M bit (chaining, §11.6.2); the card
    /// acknowledges each chained block with an R-block (rule 5).
    pub fn transmit(&mut self, apdu: &[u8]) -> Result<T1Send, T1Error> {
        self.check_can_start()?;
        if apdu.is_empty() {
            return Err(T1Error::EmptyApdu);
        }
        self.retries = 0;
        if self.state == State::Desynchronised {
            self.state = State::Resynch {
                then: Some(apdu.to_vec()),
            };
            return Ok(T1Send::plain(self.s_request()));
        }
        Ok(self.start_sending(apdu.to_vec()))
    }

    /// Starts an exchange whose only I-block the reader builds and sends itself: PIN
    /// verification on a TPDU-level reader's PIN pad, where the reader inserts the PIN into
    /// the APDU (CCID Rev 1.1 §6.1.11.4 bTeoPrologue; libccid `SecurePINVerify` builds it
    /// the same way). Returns the prologue NAD, PCB (I-block, N(S) in force, no chaining)
    /// and LEN = `len`, the length of the APDU template; the reader corrects LEN when the
    /// PIN changes the APDU's length. Feed the card's answer to [`T1::on_block`] as usual;
    /// if the reader reports that it sent nothing (PIN entry cancelled or timed out), call
    /// [`T1::reader_block_not_sent`].
    pub fn reader_block(&mut self, len: usize) -> Result<[u8; 3], T1Error> {
        self.check_can_start()?;
        if self.state == State::Desynchronised {
            return Err(T1Error::NotSynchronised);
        }
        let len_byte = u8::try_from(len)
            .ok()
            .filter(|&l| l > 0 && l <= self.ifsc)
            .ok_or(T1Error::ReaderBlockTooLong {
                len,
                ifsc: self.ifsc,
            })?;
        self.retries = 0;
        self.state = State::ReaderBlock;
        let pcb = Pcb::I {
            ns: self.ns,
            more: false,
        };
        Ok([self.config.nad, pcb.to_byte(), len_byte])
    }

    /// The reader did not send the block of [`T1::reader_block`] (it reported PIN_CANCELLED
    /// or PIN_TIMEOUT, CCID §6.2.6): the exchange ends and the sequence numbers stay as
    /// they were. Nothing happens in any other state.
    pub fn reader_block_not_sent(&mut self) {
        if self.state == State::ReaderBlock {
            self.state = State::Idle;
            self.retries = 0;
        }
    }

    /// A block came from the card: what to do next.
    pub fn on_block(&mut self, rx: &[u8]) -> Result<T1Event, T1Error> {
        self.check_active()?;
        let block = match self.decode(rx) {
            Ok(block) => block,
            Err(e) => return self.invalid(Some(e)).map(T1Event::Send),
        };
        if let State::Resynch { .. } = self.state {
            return self.in_resynch(&block);
        }
        if let Pcb::S {
            kind,
            response: false,
        } = block.pcb
        {
            return self.card_request(kind, &block);
        }
        match self.state {
            State::IfsRequest { ifsd } => {
                if block.pcb
                    == (Pcb::S {
                        kind: SKind::Ifs,
                        response: true,
                    })
                    && block.value() == Some(ifsd)
                {
                    self.state = State::Idle;
                    self.retries = 0;
                    Ok(T1Event::IfsdAccepted(ifsd))
                } else {
                    // Rule 7.3: anything but the matching response repeats the request.
                    self.invalid(None).map(T1Event::Send)
                }
            }
            State::Sending { .. } => self.while_sending(block),
            State::Receiving { .. } => self.while_receiving(block),
            State::ReaderBlock => self.after_reader_block(block),
            _ => Err(T1Error::NotExpecting),
        }
    }

    /// The caller's deadline for the card's block passed (BWT, extended by
    /// [`T1Send::deadline_multiplier`]), or the reader reported the card mute. Handled like
    /// an invalid block (rule 7.1 to 7.3): the R-block or S(request) to send, counting
    /// towards the retry limit.
    pub fn on_timeout(&mut self) -> Result<T1Send, T1Error> {
        self.check_active()?;
        self.invalid(None)
    }

    fn check_can_start(&self) -> Result<(), T1Error> {
        match self.state {
            State::Idle | State::Desynchronised => Ok(()),
            State::Dead => Err(T1Error::Unrecoverable { cause: None }),
            _ => Err(T1Error::Busy),
        }
    }

    fn check_active(&self) -> Result<(), T1Error> {
        match self.state {
            State::Idle | State::Desynchronised => Err(T1Error::NotExpecting),
            State::Dead => Err(T1Error::Unrecoverable { cause: None }),
            _ => Ok(()),
        }
    }

    fn encode(&self, block: &Block) -> Vec<u8> {
        block.encode(self.edc)
    }

    /// Decodes a card block, detecting the card's CRC form while it is not settled (see
    /// [`T1::edc`]).
    fn decode(&mut self, rx: &[u8]) -> Result<Block, BlockError> {
        let limit = usize::from(self.config.ifsd);
        let result = Block::decode_limited(rx, self.card_edc, limit);
        if let (false, Edc::Crc(form)) = (self.card_edc_settled, self.card_edc) {
            let other = Edc::Crc(form.other());
            match (&result, Block::decode_limited(rx, other, limit)) {
                // Valid in the other form only: the card computes that one, and probably
                // could not read our block either.
                (Err(BlockError::BadEdc), Ok(block)) => {
                    self.card_edc = other;
                    self.card_edc_settled = true;
                    if !self.edc_settled {
                        self.edc = other;
                        self.edc_refusals = 0;
                    }
                    return self.note_answer(block);
                }
                (Ok(_), Err(BlockError::BadEdc)) => self.card_edc_settled = true,
                // Valid in both forms (one block in 256) or in neither: nothing learnt.
                _ => {}
            }
        }
        self.note_answer(result?)
    }

    /// Counts the card's refusals of our blocks while the sending form is not settled,
    /// switching forms after [`CRC_REFUSALS_BEFORE_SWITCH`] of them.
    fn note_answer(&mut self, block: Block) -> Result<Block, BlockError> {
        if let (false, Edc::Crc(form)) = (self.edc_settled, self.edc) {
            match block.pcb {
                Pcb::R {
                    error: RError::Edc | RError::Other,
                    ..
                } => {
                    self.edc_refusals += 1;
                    if self.edc_refusals >= CRC_REFUSALS_BEFORE_SWITCH {
                        // The retry count goes on, so a card refusing both forms still
                        // ends in resynchronisation and then in an unrecoverable error.
                        self.edc = Edc::Crc(form.other());
                        self.edc_refusals = 0;
                    }
                }
                _ => self.edc_settled = true,
            }
        }
        Ok(block)
    }

    /// The state's pending S(request) block.
    fn s_request(&self) -> Vec<u8> {
        let nad = self.config.nad;
        match self.state {
            State::IfsRequest { ifsd } => self.encode(&Block::s(nad, SKind::Ifs, false, ifsd)),
            _ => self.encode(&Block::s(nad, SKind::Resync, false, 0)),
        }
    }

    /// The I-block carrying `apdu[start..]` as far as IFSC allows; returns it and its end.
    fn i_block(&self, apdu: &[u8], start: usize) -> (Vec<u8>, usize) {
        let end = apdu.len().min(start + usize::from(self.ifsc));
        let chunk = apdu.get(start..end).unwrap_or_default().to_vec();
        let more = end < apdu.len();
        let block = Block::i(self.config.nad, self.ns, more, chunk);
        (self.encode(&block), end)
    }

    fn start_sending(&mut self, apdu: Vec<u8>) -> T1Send {
        // Rule 1: the exchange opens with an I-block (the first one with N(S) = 0).
        let (block, end) = self.i_block(&apdu, 0);
        self.state = State::Sending {
            apdu,
            start: 0,
            end,
        };
        T1Send::plain(block)
    }

    /// Answers an S(request) from the card, in any state but RESYNCH.
    fn card_request(&mut self, kind: SKind, block: &Block) -> Result<T1Event, T1Error> {
        let nad = self.config.nad;
        let value = block.value().unwrap_or(0);
        match kind {
            SKind::Wtx => {
                // Rule 3: echo the multiplier; the reader waits bwi × BWT for the next block.
                let answer = self.encode(&Block::s(nad, SKind::Wtx, true, value));
                Ok(T1Event::Send(T1Send {
                    block: answer,
                    bwi: value,
                }))
            }
            SKind::Ifs => {
                // Rule 4: the card announces a new IFSC, which applies from the next I-block.
                // INVARIANT kept: decode refused the reserved sizes 0x00 and 0xFF.
                self.ifsc = value;
                let answer = self.encode(&Block::s(nad, SKind::Ifs, true, value));
                Ok(T1Event::Send(T1Send::plain(answer)))
            }
            SKind::Abort => {
                // Rule 9: chain abortion by the card. Answer it and fail the APDU.
                let answer = self.encode(&Block::s(nad, SKind::Abort, true, 0));
                self.state = State::Desynchronised;
                self.retries = 0;
                Err(T1Error::Aborted {
                    send: T1Send::plain(answer),
                })
            }
            // Rule 6: only the interface device sends S(RESYNCH request).
            SKind::Resync => self.invalid(None).map(T1Event::Send),
        }
    }

    fn while_sending(&mut self, block: Block) -> Result<T1Event, T1Error> {
        let (chained, next) = match &self.state {
            State::Sending { apdu, end, .. } => (*end < apdu.len(), *end),
            _ => return Err(T1Error::NotExpecting),
        };
        match block.pcb {
            Pcb::R {
                error: RError::Reserved(_),
                ..
            } => self.invalid(None).map(T1Event::Send),
            // The card applied rule 7.1: it did not get the I-block and asks for it again
            // with N(R) = its N(S). Resending counts as a failure of this step.
            Pcb::R { nr, .. } if nr == self.ns => self.retry(None, Resend::I).map(T1Event::Send),
            // Rule 5: the card acknowledges a chained I-block; send the next one.
            Pcb::R { .. } if chained => {
                let State::Sending { apdu, .. } = std::mem::take(&mut self.state) else {
                    return Err(T1Error::NotExpecting);
                };
                self.ns = !self.ns;
                self.retries = 0;
                let (block, end) = self.i_block(&apdu, next);
                self.state = State::Sending {
                    apdu,
                    start: next,
                    end,
                };
                Ok(T1Event::Send(T1Send::plain(block)))
            }
            // Rule 2: the card's I-block with the expected N(S) acknowledges the last
            // I-block of the command and starts the response.
            Pcb::I { ns, more } if !chained && ns == self.nr => {
                self.ns = !self.ns;
                self.accept_i(block.inf, more, Vec::new())
            }
            _ => self.invalid(None).map(T1Event::Send),
        }
    }

    fn after_reader_block(&mut self, block: Block) -> Result<T1Event, T1Error> {
        match block.pcb {
            // Rule 2: the card's I-block acknowledges the reader's block.
            Pcb::I { ns, more } if ns == self.nr => {
                self.ns = !self.ns;
                self.accept_i(block.inf, more, Vec::new())
            }
            // Rule 7.1: the card did not get the block and asks for it again.
            Pcb::R { nr, error } if nr == self.ns && !matches!(error, RError::Reserved(_)) => {
                self.state = State::Desynchronised;
                self.retries = 0;
                Err(T1Error::ReaderBlockLost)
            }
            _ => self.invalid(None).map(T1Event::Send),
        }
    }

    fn while_receiving(&mut self, block: Block) -> Result<T1Event, T1Error> {
        match block.pcb {
            Pcb::I { ns, more } if ns == self.nr => {
                let State::Receiving { response } = std::mem::take(&mut self.state) else {
                    return Err(T1Error::NotExpecting);
                };
                self.accept_i(block.inf, more, response)
            }
            // The card did not get the R-block acknowledging its chained I-block (rule 7.2):
            // send it again.
            Pcb::R {
                error: RError::None | RError::Edc | RError::Other,
                ..
            } => self.retry(None, Resend::R(RError::None)).map(T1Event::Send),
            _ => self.invalid(None).map(T1Event::Send),
        }
    }

    /// A valid card I-block with the expected N(S): append, then acknowledge (rule 5) or
    /// finish.
    fn accept_i(
        &mut self,
        inf: Vec<u8>,
        more: bool,
        mut response: Vec<u8>,
    ) -> Result<T1Event, T1Error> {
        self.nr = !self.nr;
        self.retries = 0;
        if response.len() + inf.len() > MAX_RESPONSE {
            self.state = State::Desynchronised;
            return Err(T1Error::ResponseTooLong);
        }
        response.extend_from_slice(&inf);
        if more {
            self.state = State::Receiving { response };
            let ack = self.encode(&Block::r(self.config.nad, self.nr, RError::None));
            Ok(T1Event::Send(T1Send::plain(ack)))
        } else {
            self.state = State::Idle;
            Ok(T1Event::Done(response))
        }
    }

    fn in_resynch(&mut self, block: &Block) -> Result<T1Event, T1Error> {
        let resynched = block.pcb
            == Pcb::S {
                kind: SKind::Resync,
                response: true,
            };
        if !resynched {
            // Rule 7.3: repeat the S(RESYNCH request).
            return self.invalid(None).map(T1Event::Send);
        }
        // Rule 6: both sides restart with N(S) = 0; the card is back to its ATR IFSC.
        self.ns = false;
        self.nr = false;
        self.ifsc = self.config.ifsc;
        self.retries = 0;
        match std::mem::take(&mut self.state) {
            State::Resynch { then: Some(apdu) } => Ok(T1Event::Send(self.start_sending(apdu))),
            _ => {
                self.state = State::Idle;
                Err(T1Error::Resynchronised)
            }
        }
    }

    /// An invalid block, an unexpected valid one, or a timeout (rule 7): repeat what the
    /// state calls for, counting the failure.
    fn invalid(&mut self, cause: Option<BlockError>) -> Result<T1Send, T1Error> {
        let resend = match self.state {
            State::IfsRequest { .. } | State::Resynch { .. } => Resend::SRequest,
            _ => match cause {
                // Rule 7.1: an R-block with N(R) = the expected N(S), saying why.
                Some(BlockError::BadEdc) => Resend::R(RError::Edc),
                _ => Resend::R(RError::Other),
            },
        };
        self.retry(cause, resend)
    }

    /// Sends `resend` again, or escalates once `max_retries` failures were counted on this
    /// step: to S(RESYNCH request) (rule 7.4), and from a failing resynchronisation to
    /// [`T1Error::Unrecoverable`].
    fn retry(&mut self, cause: Option<BlockError>, resend: Resend) -> Result<T1Send, T1Error> {
        if self.retries >= self.config.max_retries {
            self.retries = 0;
            if let State::Resynch { .. } = self.state {
                self.state = State::Dead;
                return Err(T1Error::Unrecoverable { cause });
            }
            // The APDU in flight is dropped: after resynchronisation it is reported as
            // failed, never resent.
            self.state = State::Resynch { then: None };
            return Ok(T1Send::plain(self.s_request()));
        }
        self.retries += 1;
        let block = match resend {
            Resend::R(error) => self.encode(&Block::r(self.config.nad, self.nr, error)),
            Resend::SRequest => self.s_request(),
            Resend::I => match &self.state {
                // The block is rebuilt with the IFSC now in force, which the card may have
                // lowered since it was first sent.
                State::Sending { apdu, start, .. } => {
                    let (block, end) = self.i_block(apdu, *start);
                    if let State::Sending { end: e, .. } = &mut self.state {
                        *e = end;
                    }
                    block
                }
                _ => self.encode(&Block::r(self.config.nad, self.nr, RError::Other)),
            },
        };
        Ok(T1Send::plain(block))
    }
}

fn clamp_ifs(v: u8) -> u8 {
    v.clamp(1, 254)
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::card::{Fault, T1Card, T1CardConfig};
    use super::*;
    use crate::proto::hex::h;

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
        // Check value of CRC-16/IBM-SDLC (X-25) in the reveng CRC catalogue.
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

    fn pair(
        ifsc: u8,
        ifsd: u8,
        edc: Edc,
        extra: usize,
    ) -> (T1, T1Card<impl FnMut(&[u8]) -> Vec<u8>>) {
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
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use super::card::{Fault, T1Card, T1CardConfig};
    use super::*;
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
}
