//! CCID bulk and interrupt messages (USB CCID Rev 1.1 §6).
//!
//! Every bulk message starts with the same 10-byte header (CCID §6.1, §6.2):
//!
//! ```text
//! offset 0     bMessageType   which message (0x62 PC_to_RDR_IccPowerOn, 0x80 RDR_to_PC_DataBlock, ...)
//! offset 1..5  dwLength       length of abData, little-endian (NOT the whole message)
//! offset 5     bSlot          slot number, 0 for a single-slot reader
//! offset 6     bSeq           sequence number, echoed by the reader in its answer
//! offset 7..10 three message-specific bytes
//! offset 10..  abData         dwLength bytes
//! ```
//!
//! In every RDR_to_PC message the message-specific bytes start with bStatus (offset 7) and
//! bError (offset 8), decoded here to [`SlotState`].
//!
//! Decoding is strict about framing: a slice shorter than `10 + dwLength` is
//! [`CcidError::TruncatedData`], a longer one [`CcidError::TrailingBytes`]. Use
//! [`Reassembler`] to cut a stream of bulk-IN transfers into whole messages first.
//! Bytes the specification marks RFU are ignored on decode and written as zero on encode.
//!
//! The interrupt-IN messages (CCID §6.3) have no such header: see [`InterruptMessage`].

use super::bytes::Cursor;

/// Length of the bulk message header (CCID §6.1).
pub const HEADER_LEN: usize = 10;

/// bMessageType values (CCID §6.1, §6.2, §6.3).
pub mod message_type {
    /// PC_to_RDR_IccPowerOn (CCID §6.1.1).
    pub const ICC_POWER_ON: u8 = 0x62;
    /// PC_to_RDR_IccPowerOff (CCID §6.1.2).
    pub const ICC_POWER_OFF: u8 = 0x63;
    /// PC_to_RDR_GetSlotStatus (CCID §6.1.3).
    pub const GET_SLOT_STATUS: u8 = 0x65;
    /// PC_to_RDR_XfrBlock (CCID §6.1.4).
    pub const XFR_BLOCK: u8 = 0x6F;
    /// PC_to_RDR_GetParameters (CCID §6.1.5).
    pub const GET_PARAMETERS: u8 = 0x6C;
    /// PC_to_RDR_ResetParameters (CCID §6.1.6).
    pub const RESET_PARAMETERS: u8 = 0x6D;
    /// PC_to_RDR_SetParameters (CCID §6.1.7).
    pub const SET_PARAMETERS: u8 = 0x61;
    /// PC_to_RDR_Escape (CCID §6.1.8).
    pub const ESCAPE: u8 = 0x6B;
    /// PC_to_RDR_IccClock (CCID §6.1.9).
    pub const ICC_CLOCK: u8 = 0x6E;
    /// PC_to_RDR_T0APDU (CCID §6.1.10).
    pub const T0_APDU: u8 = 0x6A;
    /// PC_to_RDR_Secure (CCID §6.1.11).
    pub const SECURE: u8 = 0x69;
    /// PC_to_RDR_Mechanical (CCID §6.1.12).
    pub const MECHANICAL: u8 = 0x71;
    /// PC_to_RDR_Abort (CCID §6.1.13).
    pub const ABORT: u8 = 0x72;
    /// PC_to_RDR_SetDataRateAndClockFrequency (CCID §6.1.14).
    pub const SET_DATA_RATE_AND_CLOCK_FREQUENCY: u8 = 0x73;
    /// RDR_to_PC_DataBlock (CCID §6.2.1).
    pub const DATA_BLOCK: u8 = 0x80;
    /// RDR_to_PC_SlotStatus (CCID §6.2.2).
    pub const SLOT_STATUS: u8 = 0x81;
    /// RDR_to_PC_Parameters (CCID §6.2.3).
    pub const PARAMETERS: u8 = 0x82;
    /// RDR_to_PC_Escape (CCID §6.2.4).
    pub const RDR_ESCAPE: u8 = 0x83;
    /// RDR_to_PC_DataRateAndClockFrequency (CCID §6.2.5).
    pub const DATA_RATE_AND_CLOCK_FREQUENCY: u8 = 0x84;
    /// RDR_to_PC_NotifySlotChange, interrupt-IN (CCID §6.3.1).
    pub const NOTIFY_SLOT_CHANGE: u8 = 0x50;
    /// RDR_to_PC_HardwareError, interrupt-IN (CCID §6.3.2).
    pub const HARDWARE_ERROR: u8 = 0x51;
}

use message_type as mt;

/// A CCID message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CcidError {
    /// Fewer than the 10 header bytes.
    #[error("truncated header")]
    TruncatedHeader {
        /// Bytes present.
        present: usize,
    },
    /// dwLength announces more abData than the message holds.
    #[error("truncated data: dwLength {declared}, {present} bytes present")]
    TruncatedData {
        /// dwLength from the header.
        declared: u32,
        /// abData bytes present.
        present: usize,
    },
    /// Bytes follow the abData announced by dwLength.
    #[error("trailing bytes: dwLength {declared}, {present} bytes present")]
    TrailingBytes {
        /// dwLength from the header.
        declared: u32,
        /// abData bytes present.
        present: usize,
    },
    /// bMessageType is not a message of this direction.
    #[error("unknown message type {0:#04x}")]
    UnknownMessageType(u8),
    /// A decoder for one message was given another.
    #[error("message type {found:#04x}, expected {expected:#04x}")]
    WrongMessageType {
        /// The type the decoder handles.
        expected: u8,
        /// The type found in the bytes.
        found: u8,
    },
    /// abData has a length the message does not allow (e.g. data in PC_to_RDR_IccPowerOn).
    #[error("bad data length {length} for message type {message_type:#04x}")]
    BadDataLength {
        /// bMessageType.
        message_type: u8,
        /// dwLength found.
        length: u32,
    },
    /// A message-specific header byte holds a value the specification does not define.
    ///
    /// `offset` is the byte offset in the message, the value a reader reports in bError
    /// (CCID §6.2.6).
    #[error("bad value {value:#04x} at offset {offset}")]
    BadField {
        /// Offset of the byte in the message.
        offset: u8,
        /// The byte found.
        value: u8,
    },
    /// A message longer than dwMaxCCIDMessageLength (CCID §5.1) was announced.
    #[error("message too long: {length} bytes, maximum {max}")]
    MessageTooLong {
        /// Header plus announced abData.
        length: u64,
        /// The configured maximum.
        max: u32,
    },
    /// An interrupt-IN message is shorter than its fixed part.
    #[error("truncated interrupt message")]
    TruncatedInterrupt,
    /// An interrupt-IN message longer than it may be.
    #[error("trailing bytes in interrupt message")]
    InterruptTrailingBytes,
}

/// The 10-byte header of every bulk message (CCID §6.1, §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// bMessageType.
    pub message_type: u8,
    /// dwLength: length of abData, not of the whole message.
    pub length: u32,
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// The three message-specific bytes (offsets 7, 8 and 9).
    pub specific: [u8; 3],
}

impl Header {
    /// Decodes the header at the start of `bytes`; what follows is not looked at.
    ///
    /// Useful to answer a command that does not decode (a simulated reader still needs its
    /// bSlot and bSeq).
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let mut c = Cursor::new(bytes);
        let truncated = CcidError::TruncatedHeader {
            present: bytes.len(),
        };
        let message_type = c.u8().ok_or(truncated.clone())?;
        let length = c.u32_le().ok_or(truncated.clone())?;
        let slot = c.u8().ok_or(truncated.clone())?;
        let seq = c.u8().ok_or(truncated.clone())?;
        let specific = c.array::<3>().ok_or(truncated)?;
        Ok(Self {
            message_type,
            length,
            slot,
            seq,
            specific,
        })
    }

    /// Appends the 10 header bytes.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.message_type);
        out.extend_from_slice(&self.length.to_le_bytes());
        out.push(self.slot);
        out.push(self.seq);
        out.extend_from_slice(&self.specific);
    }

    /// The whole message length this header announces: 10 + dwLength.
    pub fn message_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.length)
    }
}

/// Splits a whole message into header and abData, checking the type and dwLength.
fn split(bytes: &[u8], expected: u8) -> Result<(Header, &[u8]), CcidError> {
    let header = Header::decode(bytes)?;
    if header.message_type != expected {
        return Err(CcidError::WrongMessageType {
            expected,
            found: header.message_type,
        });
    }
    let data = bytes.get(HEADER_LEN..).unwrap_or_default();
    let declared = header.length;
    match usize::try_from(declared) {
        Ok(n) if n == data.len() => Ok((header, data)),
        Ok(n) if n < data.len() => Err(CcidError::TrailingBytes {
            declared,
            present: data.len(),
        }),
        _ => Err(CcidError::TruncatedData {
            declared,
            present: data.len(),
        }),
    }
}

/// Like [`split`], for messages whose abData must be empty.
fn split_empty(bytes: &[u8], expected: u8) -> Result<Header, CcidError> {
    let (header, data) = split(bytes, expected)?;
    if data.is_empty() {
        Ok(header)
    } else {
        Err(CcidError::BadDataLength {
            message_type: expected,
            length: header.length,
        })
    }
}

/// Appends a whole message: header then abData.
fn put(out: &mut Vec<u8>, message_type: u8, slot: u8, seq: u8, specific: [u8; 3], data: &[u8]) {
    // INVARIANT: abData of 4 GiB or more cannot be built in memory by any caller of this
    // crate (and never fits a reader's dwMaxCCIDMessageLength); saturating keeps encode total.
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    Header {
        message_type,
        length,
        slot,
        seq,
        specific,
    }
    .encode_into(out);
    out.extend_from_slice(data);
}

/// Adds `encode` on top of an `encode_into`.
macro_rules! encode_helpers {
    ($($t:ty),* $(,)?) => {$(
        impl $t {
            /// Encodes the whole message.
            pub fn encode(&self) -> Vec<u8> {
                let mut out = Vec::new();
                self.encode_into(&mut out);
                out
            }
        }
    )*};
}

// ---------------------------------------------------------------------------------------
// Status and errors (CCID §6.2.6)
// ---------------------------------------------------------------------------------------

/// bmICCStatus, bits 0–1 of bStatus (CCID §6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IccStatus {
    /// 0: an ICC is present and active (powered).
    PresentActive,
    /// 1: an ICC is present and inactive (not activated or shut down by hardware error).
    PresentInactive,
    /// 2: no ICC is present.
    Absent,
    /// 3: reserved for future use.
    Reserved,
}

/// bmCommandStatus, bits 6–7 of bStatus (CCID §6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandStatus {
    /// 0: processed without error.
    Ok,
    /// 1: failed; bError says why.
    Failed,
    /// 2: time extension requested; bError is the BWT multiplier.
    ///
    /// The command is still running: read the bulk-IN pipe again (waiting that many more
    /// BWTs) for the final answer with the same bSeq. Never resend the command.
    TimeExtension,
    /// 3: reserved for future use.
    Reserved,
}

/// bStatus and bError of an RDR_to_PC message (CCID §6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotState {
    /// bmICCStatus.
    pub icc: IccStatus,
    /// bmCommandStatus.
    pub command: CommandStatus,
    /// bError as received: an error code when `command` is [`CommandStatus::Failed`], the
    /// BWT multiplier when it is [`CommandStatus::TimeExtension`], otherwise meaningless.
    pub error_raw: u8,
}

impl SlotState {
    /// A successful answer with the given card state.
    pub fn ok(icc: IccStatus) -> Self {
        Self {
            icc,
            command: CommandStatus::Ok,
            error_raw: 0,
        }
    }

    /// A failed answer.
    pub fn failed(icc: IccStatus, error: SlotError) -> Self {
        Self {
            icc,
            command: CommandStatus::Failed,
            error_raw: error.code(),
        }
    }

    /// A time-extension answer asking for `multiplier` more BWTs.
    pub fn time_extension(icc: IccStatus, multiplier: u8) -> Self {
        Self {
            icc,
            command: CommandStatus::TimeExtension,
            error_raw: multiplier,
        }
    }

    /// Decodes bStatus and bError; bits 2–5 of bStatus (RFU) are ignored.
    pub fn from_bytes(status: u8, error: u8) -> Self {
        let icc = match status & 0x03 {
            0 => IccStatus::PresentActive,
            1 => IccStatus::PresentInactive,
            2 => IccStatus::Absent,
            _ => IccStatus::Reserved,
        };
        let command = match status >> 6 {
            0 => CommandStatus::Ok,
            1 => CommandStatus::Failed,
            2 => CommandStatus::TimeExtension,
            _ => CommandStatus::Reserved,
        };
        Self {
            icc,
            command,
            error_raw: error,
        }
    }

    /// bStatus as sent on the wire.
    pub fn status_byte(&self) -> u8 {
        let icc = match self.icc {
            IccStatus::PresentActive => 0,
            IccStatus::PresentInactive => 1,
            IccStatus::Absent => 2,
            IccStatus::Reserved => 3,
        };
        let command = match self.command {
            CommandStatus::Ok => 0,
            CommandStatus::Failed => 1,
            CommandStatus::TimeExtension => 2,
            CommandStatus::Reserved => 3,
        };
        command << 6 | icc
    }

    /// The error when the command failed.
    pub fn error(&self) -> Option<SlotError> {
        (self.command == CommandStatus::Failed).then(|| SlotError::from_code(self.error_raw))
    }

    /// The BWT multiplier when the reader asks for more time (read again, never resend).
    pub fn time_extension_multiplier(&self) -> Option<u8> {
        (self.command == CommandStatus::TimeExtension).then_some(self.error_raw)
    }

    /// Whether the command was processed without error.
    pub fn is_ok(&self) -> bool {
        self.command == CommandStatus::Ok
    }
}

/// bError of a failed command (CCID §6.2.6, table 6.2-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotError {
    /// 0xFF CMD_ABORTED: the host aborted the command.
    CmdAborted,
    /// 0xFE ICC_MUTE: the card did not answer (timeout), or no card.
    IccMute,
    /// 0xFD XFR_PARITY_ERROR: parity error while talking to the card.
    XfrParityError,
    /// 0xFC XFR_OVERRUN: the card sent more than the reader could buffer.
    XfrOverrun,
    /// 0xFB HW_ERROR: hardware error during activation.
    HwError,
    /// 0xF8 BAD_ATR_TS: bad TS byte in the ATR.
    BadAtrTs,
    /// 0xF7 BAD_ATR_TCK: bad TCK in the ATR.
    BadAtrTck,
    /// 0xF6 ICC_PROTOCOL_NOT_SUPPORTED.
    IccProtocolNotSupported,
    /// 0xF5 ICC_CLASS_NOT_SUPPORTED: the card does not support the voltage class.
    IccClassNotSupported,
    /// 0xF4 PROCEDURE_BYTE_CONFLICT.
    ProcedureByteConflict,
    /// 0xF3 DEACTIVATED_PROTOCOL.
    DeactivatedProtocol,
    /// 0xF2 BUSY_WITH_AUTO_SEQUENCE: the reader is activating the card by itself.
    BusyWithAutoSequence,
    /// 0xF0 PIN_TIMEOUT: nobody entered the PIN in time.
    PinTimeout,
    /// 0xEF PIN_CANCELLED: the user cancelled PIN entry.
    PinCancelled,
    /// 0xE0 CMD_SLOT_BUSY: another command is running on the slot.
    CmdSlotBusy,
    /// 0x00: the command is not supported.
    CommandNotSupported,
    /// 1..=127: offset of the bad field in the command message.
    BadParameter(u8),
    /// Any other value (user-defined 0x80..=0xC0 or not defined).
    Other(u8),
}

impl SlotError {
    /// Decodes a bError byte.
    pub fn from_code(code: u8) -> Self {
        match code {
            0xFF => Self::CmdAborted,
            0xFE => Self::IccMute,
            0xFD => Self::XfrParityError,
            0xFC => Self::XfrOverrun,
            0xFB => Self::HwError,
            0xF8 => Self::BadAtrTs,
            0xF7 => Self::BadAtrTck,
            0xF6 => Self::IccProtocolNotSupported,
            0xF5 => Self::IccClassNotSupported,
            0xF4 => Self::ProcedureByteConflict,
            0xF3 => Self::DeactivatedProtocol,
            0xF2 => Self::BusyWithAutoSequence,
            0xF0 => Self::PinTimeout,
            0xEF => Self::PinCancelled,
            0xE0 => Self::CmdSlotBusy,
            0x00 => Self::CommandNotSupported,
            1..=127 => Self::BadParameter(code),
            other => Self::Other(other),
        }
    }

    /// The bError byte.
    pub fn code(&self) -> u8 {
        match *self {
            Self::CmdAborted => 0xFF,
            Self::IccMute => 0xFE,
            Self::XfrParityError => 0xFD,
            Self::XfrOverrun => 0xFC,
            Self::HwError => 0xFB,
            Self::BadAtrTs => 0xF8,
            Self::BadAtrTck => 0xF7,
            Self::IccProtocolNotSupported => 0xF6,
            Self::IccClassNotSupported => 0xF5,
            Self::ProcedureByteConflict => 0xF4,
            Self::DeactivatedProtocol => 0xF3,
            Self::BusyWithAutoSequence => 0xF2,
            Self::PinTimeout => 0xF0,
            Self::PinCancelled => 0xEF,
            Self::CmdSlotBusy => 0xE0,
            Self::CommandNotSupported => 0x00,
            Self::BadParameter(offset) => offset,
            Self::Other(code) => code,
        }
    }

    /// A short human description, for logs and error messages.
    pub fn description(&self) -> &'static str {
        match self {
            Self::CmdAborted => "command aborted",
            Self::IccMute => "card mute or absent",
            Self::XfrParityError => "parity error talking to the card",
            Self::XfrOverrun => "card sent too much data",
            Self::HwError => "reader hardware error during activation",
            Self::BadAtrTs => "bad ts byte in the atr",
            Self::BadAtrTck => "bad tck byte in the atr",
            Self::IccProtocolNotSupported => "card protocol not supported",
            Self::IccClassNotSupported => "card voltage class not supported",
            Self::ProcedureByteConflict => "t=0 procedure byte conflict",
            Self::DeactivatedProtocol => "protocol deactivated",
            Self::BusyWithAutoSequence => "reader busy with automatic sequence",
            Self::PinTimeout => "pin entry timed out",
            Self::PinCancelled => "pin entry cancelled",
            Self::CmdSlotBusy => "slot busy with another command",
            Self::CommandNotSupported => "command not supported",
            Self::BadParameter(_) => "bad parameter in command",
            Self::Other(_) => "unknown reader error",
        }
    }
}

impl std::fmt::Display for SlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadParameter(offset) => write!(f, "bad parameter at offset {offset}"),
            Self::Other(code) => write!(f, "unknown reader error {code:#04x}"),
            other => f.write_str(other.description()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Protocol parameters (CCID §6.1.7, table 6.1-2 and 6.1-3)
// ---------------------------------------------------------------------------------------

/// abProtocolDataStructure for T=0: 5 bytes (CCID §6.1.7, table 6.1-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct T0Parameters {
    /// bmFindexDindex: Fi in the high nibble, Di in the low nibble (as TA1 of the ATR).
    pub findex_dindex: u8,
    /// bmTCCKST0: bit 1 is the convention (0 direct, 1 inverse); valid values 0x00, 0x02.
    pub tcckst0: u8,
    /// bGuardTimeT0: extra guard time (as TC1 of the ATR).
    pub guard_time: u8,
    /// bWaitingIntegerT0: WI (as TC2 of the ATR).
    pub waiting_integer: u8,
    /// bClockStop: 0 not allowed, 1 stop low, 2 stop high, 3 either.
    pub clock_stop: u8,
}

/// abProtocolDataStructure for T=1: 7 bytes (CCID §6.1.7, table 6.1-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct T1Parameters {
    /// bmFindexDindex: Fi in the high nibble, Di in the low nibble (as TA1 of the ATR).
    pub findex_dindex: u8,
    /// bmTCCKST1: bit 0 checksum (0 LRC, 1 CRC), bit 1 convention (0 direct, 1 inverse);
    /// bits 4 set: valid values 0x10..=0x13.
    pub tcckst1: u8,
    /// bGuardTimeT1: extra guard time (as TC1 of the ATR).
    pub guard_time: u8,
    /// bmWaitingIntegersT1: BWI in the high nibble, CWI in the low nibble.
    pub waiting_integers: u8,
    /// bClockStop: 0 not allowed, 1 stop low, 2 stop high, 3 either.
    pub clock_stop: u8,
    /// bIFSC: the card's information field size.
    pub ifsc: u8,
    /// bNadValue: the NAD the reader uses.
    pub nad: u8,
}

impl T1Parameters {
    /// Whether the EDC is a CRC (else an LRC).
    pub fn uses_crc(&self) -> bool {
        self.tcckst1 & 0x01 != 0
    }

    /// BWI, the high nibble of bmWaitingIntegersT1.
    pub fn bwi(&self) -> u8 {
        self.waiting_integers >> 4
    }

    /// CWI, the low nibble of bmWaitingIntegersT1.
    pub fn cwi(&self) -> u8 {
        self.waiting_integers & 0x0F
    }
}

/// bProtocolNum with its abProtocolDataStructure (CCID §6.1.7, §6.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProtocolParameters {
    /// bProtocolNum 0 with 5 bytes.
    T0(T0Parameters),
    /// bProtocolNum 1 with 7 bytes.
    T1(T1Parameters),
    /// Anything else: another protocol number, or a length that does not fit it (a failed
    /// RDR_to_PC_Parameters may carry no data). Build it with [`ProtocolParameters::raw`],
    /// which never yields `Other` for a well-formed T=0 or T=1 structure.
    Other {
        /// bProtocolNum.
        protocol_num: u8,
        /// abProtocolDataStructure.
        data: Vec<u8>,
    },
}

impl ProtocolParameters {
    /// The same parameters with another bmFindexDindex (after a PPS exchange changed the
    /// Fi/Di the card uses). `Other` is returned unchanged.
    pub fn with_findex_dindex(self, findex_dindex: u8) -> Self {
        match self {
            Self::T0(p) => Self::T0(T0Parameters { findex_dindex, ..p }),
            Self::T1(p) => Self::T1(T1Parameters { findex_dindex, ..p }),
            other => other,
        }
    }

    /// Interprets a protocol number and its data structure.
    pub fn raw(protocol_num: u8, data: &[u8]) -> Self {
        match (protocol_num, data) {
            (0, &[findex_dindex, tcckst0, guard_time, waiting_integer, clock_stop]) => {
                Self::T0(T0Parameters {
                    findex_dindex,
                    tcckst0,
                    guard_time,
                    waiting_integer,
                    clock_stop,
                })
            }
            (1, &[findex_dindex, tcckst1, guard_time, waiting_integers, clock_stop, ifsc, nad]) => {
                Self::T1(T1Parameters {
                    findex_dindex,
                    tcckst1,
                    guard_time,
                    waiting_integers,
                    clock_stop,
                    ifsc,
                    nad,
                })
            }
            _ => Self::Other {
                protocol_num,
                data: data.to_vec(),
            },
        }
    }

    /// bProtocolNum.
    pub fn protocol_num(&self) -> u8 {
        match self {
            Self::T0(_) => 0,
            Self::T1(_) => 1,
            Self::Other { protocol_num, .. } => *protocol_num,
        }
    }

    /// abProtocolDataStructure.
    pub fn data(&self) -> Vec<u8> {
        match self {
            Self::T0(p) => vec![
                p.findex_dindex,
                p.tcckst0,
                p.guard_time,
                p.waiting_integer,
                p.clock_stop,
            ],
            Self::T1(p) => vec![
                p.findex_dindex,
                p.tcckst1,
                p.guard_time,
                p.waiting_integers,
                p.clock_stop,
                p.ifsc,
                p.nad,
            ],
            Self::Other { data, .. } => data.clone(),
        }
    }
}

/// dwClockFrequency and dwDataRate (CCID §6.1.14, §6.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClockAndDataRate {
    /// dwClockFrequency in kHz.
    pub clock_frequency: u32,
    /// dwDataRate in bit/s.
    pub data_rate: u32,
}

impl ClockAndDataRate {
    fn decode(data: &[u8]) -> Option<Self> {
        let mut c = Cursor::new(data);
        let clock_frequency = c.u32_le()?;
        let data_rate = c.u32_le()?;
        c.is_empty().then_some(Self {
            clock_frequency,
            data_rate,
        })
    }

    fn to_bytes(self) -> [u8; 8] {
        let [c0, c1, c2, c3] = self.clock_frequency.to_le_bytes();
        let [r0, r1, r2, r3] = self.data_rate.to_le_bytes();
        [c0, c1, c2, c3, r0, r1, r2, r3]
    }
}

// ---------------------------------------------------------------------------------------
// PC_to_RDR messages (CCID §6.1)
// ---------------------------------------------------------------------------------------

/// bPowerSelect of PC_to_RDR_IccPowerOn (CCID §6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerSelect {
    /// 0: automatic voltage selection.
    Auto,
    /// 1: 5.0 V.
    V5,
    /// 2: 3.0 V.
    V3,
    /// 3: 1.8 V.
    V1_8,
}

impl PowerSelect {
    /// The bPowerSelect byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::Auto => 0,
            Self::V5 => 1,
            Self::V3 => 2,
            Self::V1_8 => 3,
        }
    }

    /// Decodes bPowerSelect.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Auto),
            1 => Some(Self::V5),
            2 => Some(Self::V3),
            3 => Some(Self::V1_8),
            _ => None,
        }
    }
}

/// Powers the card and returns its ATR in an RDR_to_PC_DataBlock (CCID §6.1.1).
///
/// Layout: header with [7] bPowerSelect, [8..10] RFU; no abData.
#[doc(alias = "PC_to_RDR_IccPowerOn")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcToRdrIccPowerOn {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bPowerSelect.
    pub power_select: PowerSelect,
}

impl PcToRdrIccPowerOn {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let specific = [self.power_select.byte(), 0, 0];
        put(out, mt::ICC_POWER_ON, self.slot, self.seq, specific, &[]);
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let h = split_empty(bytes, mt::ICC_POWER_ON)?;
        let [b7, _, _] = h.specific;
        let power_select = PowerSelect::from_byte(b7).ok_or(CcidError::BadField {
            offset: 7,
            value: b7,
        })?;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            power_select,
        })
    }
}

/// Declares a PC_to_RDR message made of the header alone (all specific bytes RFU).
macro_rules! header_only_command {
    ($(#[$doc:meta])* $name:ident, $alias:literal, $ty:expr) => {
        $(#[$doc])*
        ///
        /// Layout: header with [7..10] RFU; no abData.
        #[doc(alias = $alias)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name {
            /// bSlot.
            pub slot: u8,
            /// bSeq.
            pub seq: u8,
        }

        impl $name {
            /// Appends the message.
            pub fn encode_into(&self, out: &mut Vec<u8>) {
                put(out, $ty, self.slot, self.seq, [0; 3], &[]);
            }

            /// Decodes a whole message.
            pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
                let h = split_empty(bytes, $ty)?;
                Ok(Self { slot: h.slot, seq: h.seq })
            }
        }
    };
}

header_only_command!(
    /// Powers the card off; answered by RDR_to_PC_SlotStatus (CCID §6.1.2).
    PcToRdrIccPowerOff,
    "PC_to_RDR_IccPowerOff",
    mt::ICC_POWER_OFF
);
header_only_command!(
    /// Asks for the slot status; answered by RDR_to_PC_SlotStatus (CCID §6.1.3).
    PcToRdrGetSlotStatus,
    "PC_to_RDR_GetSlotStatus",
    mt::GET_SLOT_STATUS
);
header_only_command!(
    /// Asks for the current protocol parameters; answered by RDR_to_PC_Parameters
    /// (CCID §6.1.5).
    PcToRdrGetParameters,
    "PC_to_RDR_GetParameters",
    mt::GET_PARAMETERS
);
header_only_command!(
    /// Restores the default protocol parameters; answered by RDR_to_PC_Parameters
    /// (CCID §6.1.6).
    PcToRdrResetParameters,
    "PC_to_RDR_ResetParameters",
    mt::RESET_PARAMETERS
);
header_only_command!(
    /// Second half of an abort, after the ABORT class request with the same bSlot and bSeq;
    /// answered by RDR_to_PC_SlotStatus (CCID §6.1.13, §5.3.1).
    PcToRdrAbort,
    "PC_to_RDR_Abort",
    mt::ABORT
);

/// Sends a block (TPDU, APDU or characters, per the exchange level) to the card; answered by
/// RDR_to_PC_DataBlock (CCID §6.1.4).
///
/// Layout: header with [7] bBWI, [8..10] wLevelParameter (LE); abData = the block.
#[doc(alias = "PC_to_RDR_XfrBlock")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PcToRdrXfrBlock {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bBWI: extends the block waiting time of this block by this factor (T=1 WTX), 0 = none.
    pub bwi: u8,
    /// wLevelParameter: 0 at TPDU and short APDU level; the chaining code at extended APDU
    /// level (0 whole, 1 begins, 2 ends, 3 continues, 0x10 empty "continue response");
    /// the expected answer length at character level.
    pub level_parameter: u16,
    /// abData.
    pub data: Vec<u8>,
}

impl PcToRdrXfrBlock {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let [l0, l1] = self.level_parameter.to_le_bytes();
        put(
            out,
            mt::XFR_BLOCK,
            self.slot,
            self.seq,
            [self.bwi, l0, l1],
            &self.data,
        );
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let (h, data) = split(bytes, mt::XFR_BLOCK)?;
        let [bwi, l0, l1] = h.specific;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            bwi,
            level_parameter: u16::from_le_bytes([l0, l1]),
            data: data.to_vec(),
        })
    }
}

/// Sets the protocol and its parameters; answered by RDR_to_PC_Parameters (CCID §6.1.7).
///
/// Layout: header with [7] bProtocolNum, [8..10] RFU; abData = abProtocolDataStructure.
#[doc(alias = "PC_to_RDR_SetParameters")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PcToRdrSetParameters {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bProtocolNum and abProtocolDataStructure.
    pub parameters: ProtocolParameters,
}

impl PcToRdrSetParameters {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let specific = [self.parameters.protocol_num(), 0, 0];
        put(
            out,
            mt::SET_PARAMETERS,
            self.slot,
            self.seq,
            specific,
            &self.parameters.data(),
        );
    }

    /// Decodes a whole message. A protocol number other than 0 or 1, or a structure of the
    /// wrong length, decodes to [`ProtocolParameters::Other`] (a reader answers it with
    /// bError 7 or 1).
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let (h, data) = split(bytes, mt::SET_PARAMETERS)?;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            parameters: ProtocolParameters::raw(h.specific[0], data),
        })
    }
}

/// A vendor-specific command; answered by RDR_to_PC_Escape (CCID §6.1.8).
///
/// Layout: header with [7..10] RFU; abData = the vendor command.
#[doc(alias = "PC_to_RDR_Escape")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PcToRdrEscape {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// abData.
    pub data: Vec<u8>,
}

impl PcToRdrEscape {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        put(out, mt::ESCAPE, self.slot, self.seq, [0; 3], &self.data);
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let (h, data) = split(bytes, mt::ESCAPE)?;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            data: data.to_vec(),
        })
    }
}

/// bClockCommand of PC_to_RDR_IccClock (CCID §6.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockCommand {
    /// 0: restart the clock.
    Restart,
    /// 1: stop the clock in the state the card allows.
    Stop,
}

/// Stops or restarts the card's clock; answered by RDR_to_PC_SlotStatus (CCID §6.1.9).
///
/// Layout: header with [7] bClockCommand, [8..10] RFU; no abData.
#[doc(alias = "PC_to_RDR_IccClock")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcToRdrIccClock {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bClockCommand.
    pub command: ClockCommand,
}

impl PcToRdrIccClock {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let b = match self.command {
            ClockCommand::Restart => 0,
            ClockCommand::Stop => 1,
        };
        put(out, mt::ICC_CLOCK, self.slot, self.seq, [b, 0, 0], &[]);
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let h = split_empty(bytes, mt::ICC_CLOCK)?;
        let command = match h.specific[0] {
            0 => ClockCommand::Restart,
            1 => ClockCommand::Stop,
            value => return Err(CcidError::BadField { offset: 7, value }),
        };
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            command,
        })
    }
}

/// Changes the class bytes the reader uses for automatic T=0 GET RESPONSE and ENVELOPE at
/// APDU level; answered by RDR_to_PC_SlotStatus (CCID §6.1.10).
///
/// Layout: header with [7] bmChanges, [8] bClassGetResponse, [9] bClassEnvelope; no abData.
#[doc(alias = "PC_to_RDR_T0APDU")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcToRdrT0Apdu {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bmChanges: bit 0 apply bClassGetResponse, bit 1 apply bClassEnvelope.
    pub changes: u8,
    /// bClassGetResponse (0xFF: echo the class of the APDU).
    pub class_get_response: u8,
    /// bClassEnvelope (0xFF: echo the class of the APDU).
    pub class_envelope: u8,
}

impl PcToRdrT0Apdu {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let specific = [self.changes, self.class_get_response, self.class_envelope];
        put(out, mt::T0_APDU, self.slot, self.seq, specific, &[]);
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let h = split_empty(bytes, mt::T0_APDU)?;
        let [changes, class_get_response, class_envelope] = h.specific;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            changes,
            class_get_response,
            class_envelope,
        })
    }
}

/// PIN verification or modification on the reader's PIN pad; answered by
/// RDR_to_PC_DataBlock (CCID §6.1.11).
///
/// Layout: header with [7] bBWI, [8..10] wLevelParameter (LE); abData = bPINOperation
/// followed by the PIN verification or modification structure. The PIN itself never
/// travels in these bytes: it is typed on the pad.
#[doc(alias = "PC_to_RDR_Secure")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PcToRdrSecure {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bBWI.
    pub bwi: u8,
    /// wLevelParameter (chaining at extended APDU level, as in XfrBlock).
    pub level_parameter: u16,
    /// abData: bPINOperation and its structure.
    pub data: Vec<u8>,
}

impl PcToRdrSecure {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let [l0, l1] = self.level_parameter.to_le_bytes();
        put(
            out,
            mt::SECURE,
            self.slot,
            self.seq,
            [self.bwi, l0, l1],
            &self.data,
        );
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let (h, data) = split(bytes, mt::SECURE)?;
        let [bwi, l0, l1] = h.specific;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            bwi,
            level_parameter: u16::from_le_bytes([l0, l1]),
            data: data.to_vec(),
        })
    }
}

/// bFunction of PC_to_RDR_Mechanical (CCID §6.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MechanicalFunction {
    /// 1: accept card.
    Accept,
    /// 2: eject card.
    Eject,
    /// 3: capture card.
    Capture,
    /// 4: lock card.
    Lock,
    /// 5: unlock card.
    Unlock,
}

impl MechanicalFunction {
    fn byte(self) -> u8 {
        match self {
            Self::Accept => 1,
            Self::Eject => 2,
            Self::Capture => 3,
            Self::Lock => 4,
            Self::Unlock => 5,
        }
    }
}

/// Drives the reader's card mechanism; answered by RDR_to_PC_SlotStatus (CCID §6.1.12).
///
/// Layout: header with [7] bFunction, [8..10] RFU; no abData.
#[doc(alias = "PC_to_RDR_Mechanical")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcToRdrMechanical {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bFunction.
    pub function: MechanicalFunction,
}

impl PcToRdrMechanical {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let specific = [self.function.byte(), 0, 0];
        put(out, mt::MECHANICAL, self.slot, self.seq, specific, &[]);
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let h = split_empty(bytes, mt::MECHANICAL)?;
        let function = match h.specific[0] {
            1 => MechanicalFunction::Accept,
            2 => MechanicalFunction::Eject,
            3 => MechanicalFunction::Capture,
            4 => MechanicalFunction::Lock,
            5 => MechanicalFunction::Unlock,
            value => return Err(CcidError::BadField { offset: 7, value }),
        };
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            function,
        })
    }
}

/// Sets the card clock and data rate; answered by RDR_to_PC_DataRateAndClockFrequency
/// (CCID §6.1.14).
///
/// Layout: header with [7..10] RFU; abData = dwClockFrequency (kHz, LE), dwDataRate
/// (bit/s, LE): dwLength is always 8.
#[doc(alias = "PC_to_RDR_SetDataRateAndClockFrequency")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcToRdrSetDataRateAndClockFrequency {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// The requested clock and data rate.
    pub rates: ClockAndDataRate,
}

impl PcToRdrSetDataRateAndClockFrequency {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        put(
            out,
            mt::SET_DATA_RATE_AND_CLOCK_FREQUENCY,
            self.slot,
            self.seq,
            [0; 3],
            &self.rates.to_bytes(),
        );
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let (h, data) = split(bytes, mt::SET_DATA_RATE_AND_CLOCK_FREQUENCY)?;
        let rates = ClockAndDataRate::decode(data).ok_or(CcidError::BadDataLength {
            message_type: h.message_type,
            length: h.length,
        })?;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            rates,
        })
    }
}

encode_helpers!(
    PcToRdrIccPowerOn,
    PcToRdrIccPowerOff,
    PcToRdrGetSlotStatus,
    PcToRdrXfrBlock,
    PcToRdrGetParameters,
    PcToRdrResetParameters,
    PcToRdrSetParameters,
    PcToRdrEscape,
    PcToRdrIccClock,
    PcToRdrT0Apdu,
    PcToRdrSecure,
    PcToRdrMechanical,
    PcToRdrAbort,
    PcToRdrSetDataRateAndClockFrequency,
);

/// Any PC_to_RDR bulk-OUT message (CCID §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PcToRdr {
    /// [`PcToRdrIccPowerOn`].
    IccPowerOn(PcToRdrIccPowerOn),
    /// [`PcToRdrIccPowerOff`].
    IccPowerOff(PcToRdrIccPowerOff),
    /// [`PcToRdrGetSlotStatus`].
    GetSlotStatus(PcToRdrGetSlotStatus),
    /// [`PcToRdrXfrBlock`].
    XfrBlock(PcToRdrXfrBlock),
    /// [`PcToRdrGetParameters`].
    GetParameters(PcToRdrGetParameters),
    /// [`PcToRdrResetParameters`].
    ResetParameters(PcToRdrResetParameters),
    /// [`PcToRdrSetParameters`].
    SetParameters(PcToRdrSetParameters),
    /// [`PcToRdrEscape`].
    Escape(PcToRdrEscape),
    /// [`PcToRdrIccClock`].
    IccClock(PcToRdrIccClock),
    /// [`PcToRdrT0Apdu`].
    T0Apdu(PcToRdrT0Apdu),
    /// [`PcToRdrSecure`].
    Secure(PcToRdrSecure),
    /// [`PcToRdrMechanical`].
    Mechanical(PcToRdrMechanical),
    /// [`PcToRdrAbort`].
    Abort(PcToRdrAbort),
    /// [`PcToRdrSetDataRateAndClockFrequency`].
    SetDataRateAndClockFrequency(PcToRdrSetDataRateAndClockFrequency),
}

/// Applies the same expression to whichever message a `PcToRdr` or `RdrToPc` holds.
macro_rules! each {
    ($value:expr, $enum:ident, $m:ident => $e:expr, [$($v:ident),*]) => {
        match $value { $($enum::$v($m) => $e,)* }
    };
}

macro_rules! each_pc_to_rdr {
    ($value:expr, $m:ident => $e:expr) => {
        each!($value, PcToRdr, $m => $e, [IccPowerOn, IccPowerOff, GetSlotStatus, XfrBlock,
            GetParameters, ResetParameters, SetParameters, Escape, IccClock, T0Apdu, Secure,
            Mechanical, Abort, SetDataRateAndClockFrequency])
    };
}

impl PcToRdr {
    /// Decodes a whole bulk-OUT message of any type.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let h = Header::decode(bytes)?;
        Ok(match h.message_type {
            mt::ICC_POWER_ON => Self::IccPowerOn(PcToRdrIccPowerOn::decode(bytes)?),
            mt::ICC_POWER_OFF => Self::IccPowerOff(PcToRdrIccPowerOff::decode(bytes)?),
            mt::GET_SLOT_STATUS => Self::GetSlotStatus(PcToRdrGetSlotStatus::decode(bytes)?),
            mt::XFR_BLOCK => Self::XfrBlock(PcToRdrXfrBlock::decode(bytes)?),
            mt::GET_PARAMETERS => Self::GetParameters(PcToRdrGetParameters::decode(bytes)?),
            mt::RESET_PARAMETERS => Self::ResetParameters(PcToRdrResetParameters::decode(bytes)?),
            mt::SET_PARAMETERS => Self::SetParameters(PcToRdrSetParameters::decode(bytes)?),
            mt::ESCAPE => Self::Escape(PcToRdrEscape::decode(bytes)?),
            mt::ICC_CLOCK => Self::IccClock(PcToRdrIccClock::decode(bytes)?),
            mt::T0_APDU => Self::T0Apdu(PcToRdrT0Apdu::decode(bytes)?),
            mt::SECURE => Self::Secure(PcToRdrSecure::decode(bytes)?),
            mt::MECHANICAL => Self::Mechanical(PcToRdrMechanical::decode(bytes)?),
            mt::ABORT => Self::Abort(PcToRdrAbort::decode(bytes)?),
            mt::SET_DATA_RATE_AND_CLOCK_FREQUENCY => Self::SetDataRateAndClockFrequency(
                PcToRdrSetDataRateAndClockFrequency::decode(bytes)?,
            ),
            other => return Err(CcidError::UnknownMessageType(other)),
        })
    }

    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        each_pc_to_rdr!(self, m => m.encode_into(out))
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// bSlot.
    pub fn slot(&self) -> u8 {
        each_pc_to_rdr!(self, m => m.slot)
    }

    /// bSeq.
    pub fn seq(&self) -> u8 {
        each_pc_to_rdr!(self, m => m.seq)
    }

    /// bMessageType.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::IccPowerOn(_) => mt::ICC_POWER_ON,
            Self::IccPowerOff(_) => mt::ICC_POWER_OFF,
            Self::GetSlotStatus(_) => mt::GET_SLOT_STATUS,
            Self::XfrBlock(_) => mt::XFR_BLOCK,
            Self::GetParameters(_) => mt::GET_PARAMETERS,
            Self::ResetParameters(_) => mt::RESET_PARAMETERS,
            Self::SetParameters(_) => mt::SET_PARAMETERS,
            Self::Escape(_) => mt::ESCAPE,
            Self::IccClock(_) => mt::ICC_CLOCK,
            Self::T0Apdu(_) => mt::T0_APDU,
            Self::Secure(_) => mt::SECURE,
            Self::Mechanical(_) => mt::MECHANICAL,
            Self::Abort(_) => mt::ABORT,
            Self::SetDataRateAndClockFrequency(_) => mt::SET_DATA_RATE_AND_CLOCK_FREQUENCY,
        }
    }

    /// bMessageType of the RDR_to_PC message that answers this command (CCID §6.1, each
    /// command's "response" line).
    pub fn response_type(&self) -> u8 {
        match self {
            Self::IccPowerOn(_) | Self::XfrBlock(_) | Self::Secure(_) => mt::DATA_BLOCK,
            Self::IccPowerOff(_)
            | Self::GetSlotStatus(_)
            | Self::IccClock(_)
            | Self::T0Apdu(_)
            | Self::Mechanical(_)
            | Self::Abort(_) => mt::SLOT_STATUS,
            Self::GetParameters(_) | Self::ResetParameters(_) | Self::SetParameters(_) => {
                mt::PARAMETERS
            }
            Self::Escape(_) => mt::RDR_ESCAPE,
            Self::SetDataRateAndClockFrequency(_) => mt::DATA_RATE_AND_CLOCK_FREQUENCY,
        }
    }
}

// ---------------------------------------------------------------------------------------
// RDR_to_PC messages (CCID §6.2)
// ---------------------------------------------------------------------------------------

/// Answer to IccPowerOn (abData = ATR), XfrBlock and Secure (CCID §6.2.1).
///
/// Layout: header with [7] bStatus, [8] bError, [9] bChainParameter; abData = the data.
#[doc(alias = "RDR_to_PC_DataBlock")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RdrToPcDataBlock {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bStatus and bError.
    pub state: SlotState,
    /// bChainParameter: at extended APDU level 0 whole, 1 begins, 2 ends, 3 continues,
    /// 0x10 "empty, send an XfrBlock with wLevelParameter 0x10 to continue"; else 0.
    pub chain_parameter: u8,
    /// abData.
    pub data: Vec<u8>,
}

impl RdrToPcDataBlock {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let specific = [
            self.state.status_byte(),
            self.state.error_raw,
            self.chain_parameter,
        ];
        put(
            out,
            mt::DATA_BLOCK,
            self.slot,
            self.seq,
            specific,
            &self.data,
        );
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let (h, data) = split(bytes, mt::DATA_BLOCK)?;
        let [status, error, chain_parameter] = h.specific;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            state: SlotState::from_bytes(status, error),
            chain_parameter,
            data: data.to_vec(),
        })
    }
}

/// bClockStatus of RDR_to_PC_SlotStatus (CCID §6.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockStatus {
    /// 0: clock running.
    Running,
    /// 1: clock stopped in state L.
    StoppedLow,
    /// 2: clock stopped in state H.
    StoppedHigh,
    /// 3: clock stopped in an unknown state.
    StoppedUnknown,
    /// Any other value (undefined; kept so decoding stays total).
    Other(u8),
}

impl ClockStatus {
    /// Decodes bClockStatus.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Running,
            1 => Self::StoppedLow,
            2 => Self::StoppedHigh,
            3 => Self::StoppedUnknown,
            other => Self::Other(other),
        }
    }

    /// bClockStatus.
    pub fn byte(self) -> u8 {
        match self {
            Self::Running => 0,
            Self::StoppedLow => 1,
            Self::StoppedHigh => 2,
            Self::StoppedUnknown => 3,
            Self::Other(b) => b,
        }
    }
}

/// Answer to PowerOff, GetSlotStatus, IccClock, T0APDU, Mechanical and Abort, and to any
/// command the reader rejects (CCID §6.2.2).
///
/// Layout: header with [7] bStatus, [8] bError, [9] bClockStatus; no abData.
#[doc(alias = "RDR_to_PC_SlotStatus")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RdrToPcSlotStatus {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bStatus and bError.
    pub state: SlotState,
    /// bClockStatus.
    pub clock_status: ClockStatus,
}

impl RdrToPcSlotStatus {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let specific = [
            self.state.status_byte(),
            self.state.error_raw,
            self.clock_status.byte(),
        ];
        put(out, mt::SLOT_STATUS, self.slot, self.seq, specific, &[]);
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let h = split_empty(bytes, mt::SLOT_STATUS)?;
        let [status, error, clock] = h.specific;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            state: SlotState::from_bytes(status, error),
            clock_status: ClockStatus::from_byte(clock),
        })
    }
}

/// Answer to Get/Reset/SetParameters (CCID §6.2.3).
///
/// Layout: header with [7] bStatus, [8] bError, [9] bProtocolNum; abData =
/// abProtocolDataStructure (may be empty when the command failed).
#[doc(alias = "RDR_to_PC_Parameters")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RdrToPcParameters {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bStatus and bError.
    pub state: SlotState,
    /// bProtocolNum and abProtocolDataStructure.
    pub parameters: ProtocolParameters,
}

impl RdrToPcParameters {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let specific = [
            self.state.status_byte(),
            self.state.error_raw,
            self.parameters.protocol_num(),
        ];
        put(
            out,
            mt::PARAMETERS,
            self.slot,
            self.seq,
            specific,
            &self.parameters.data(),
        );
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let (h, data) = split(bytes, mt::PARAMETERS)?;
        let [status, error, protocol_num] = h.specific;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            state: SlotState::from_bytes(status, error),
            parameters: ProtocolParameters::raw(protocol_num, data),
        })
    }
}

/// Answer to PC_to_RDR_Escape (CCID §6.2.4).
///
/// Layout: header with [7] bStatus, [8] bError, [9] RFU; abData = the vendor answer.
#[doc(alias = "RDR_to_PC_Escape")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RdrToPcEscape {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bStatus and bError.
    pub state: SlotState,
    /// abData.
    pub data: Vec<u8>,
}

impl RdrToPcEscape {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let specific = [self.state.status_byte(), self.state.error_raw, 0];
        put(
            out,
            mt::RDR_ESCAPE,
            self.slot,
            self.seq,
            specific,
            &self.data,
        );
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let (h, data) = split(bytes, mt::RDR_ESCAPE)?;
        let [status, error, _] = h.specific;
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            state: SlotState::from_bytes(status, error),
            data: data.to_vec(),
        })
    }
}

/// Answer to SetDataRateAndClockFrequency (CCID §6.2.5).
///
/// Layout: header with [7] bStatus, [8] bError, [9] RFU; abData = dwClockFrequency,
/// dwDataRate (8 bytes). A failed answer may carry no data: `rates` is then `None`.
#[doc(alias = "RDR_to_PC_DataRateAndClockFrequency")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RdrToPcDataRateAndClockFrequency {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bStatus and bError.
    pub state: SlotState,
    /// The clock and data rate in use, when reported.
    pub rates: Option<ClockAndDataRate>,
}

impl RdrToPcDataRateAndClockFrequency {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let specific = [self.state.status_byte(), self.state.error_raw, 0];
        let data = self.rates.map(ClockAndDataRate::to_bytes);
        let data: &[u8] = match &data {
            Some(b) => b,
            None => &[],
        };
        put(
            out,
            mt::DATA_RATE_AND_CLOCK_FREQUENCY,
            self.slot,
            self.seq,
            specific,
            data,
        );
    }

    /// Decodes a whole message (abData of 8 bytes, or none).
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let (h, data) = split(bytes, mt::DATA_RATE_AND_CLOCK_FREQUENCY)?;
        let [status, error, _] = h.specific;
        let rates = if data.is_empty() {
            None
        } else {
            Some(
                ClockAndDataRate::decode(data).ok_or(CcidError::BadDataLength {
                    message_type: h.message_type,
                    length: h.length,
                })?,
            )
        };
        Ok(Self {
            slot: h.slot,
            seq: h.seq,
            state: SlotState::from_bytes(status, error),
            rates,
        })
    }
}

encode_helpers!(
    RdrToPcDataBlock,
    RdrToPcSlotStatus,
    RdrToPcParameters,
    RdrToPcEscape,
    RdrToPcDataRateAndClockFrequency,
);

/// Any RDR_to_PC bulk-IN message (CCID §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RdrToPc {
    /// [`RdrToPcDataBlock`].
    DataBlock(RdrToPcDataBlock),
    /// [`RdrToPcSlotStatus`].
    SlotStatus(RdrToPcSlotStatus),
    /// [`RdrToPcParameters`].
    Parameters(RdrToPcParameters),
    /// [`RdrToPcEscape`].
    Escape(RdrToPcEscape),
    /// [`RdrToPcDataRateAndClockFrequency`].
    DataRateAndClockFrequency(RdrToPcDataRateAndClockFrequency),
}

macro_rules! each_rdr_to_pc {
    ($value:expr, $m:ident => $e:expr) => {
        each!($value, RdrToPc, $m => $e,
            [DataBlock, SlotStatus, Parameters, Escape, DataRateAndClockFrequency])
    };
}

impl RdrToPc {
    /// Decodes a whole bulk-IN message of any type.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let h = Header::decode(bytes)?;
        Ok(match h.message_type {
            mt::DATA_BLOCK => Self::DataBlock(RdrToPcDataBlock::decode(bytes)?),
            mt::SLOT_STATUS => Self::SlotStatus(RdrToPcSlotStatus::decode(bytes)?),
            mt::PARAMETERS => Self::Parameters(RdrToPcParameters::decode(bytes)?),
            mt::RDR_ESCAPE => Self::Escape(RdrToPcEscape::decode(bytes)?),
            mt::DATA_RATE_AND_CLOCK_FREQUENCY => {
                Self::DataRateAndClockFrequency(RdrToPcDataRateAndClockFrequency::decode(bytes)?)
            }
            other => return Err(CcidError::UnknownMessageType(other)),
        })
    }

    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        each_rdr_to_pc!(self, m => m.encode_into(out))
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// bSlot.
    pub fn slot(&self) -> u8 {
        each_rdr_to_pc!(self, m => m.slot)
    }

    /// bSeq.
    pub fn seq(&self) -> u8 {
        each_rdr_to_pc!(self, m => m.seq)
    }

    /// bStatus and bError, common to every RDR_to_PC message.
    pub fn state(&self) -> SlotState {
        each_rdr_to_pc!(self, m => m.state)
    }

    /// bMessageType.
    pub fn message_type(&self) -> u8 {
        match self {
            Self::DataBlock(_) => mt::DATA_BLOCK,
            Self::SlotStatus(_) => mt::SLOT_STATUS,
            Self::Parameters(_) => mt::PARAMETERS,
            Self::Escape(_) => mt::RDR_ESCAPE,
            Self::DataRateAndClockFrequency(_) => mt::DATA_RATE_AND_CLOCK_FREQUENCY,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Interrupt-IN messages (CCID §6.3)
// ---------------------------------------------------------------------------------------

/// Card inserted or removed (CCID §6.3.1).
///
/// Layout: [0] bMessageType 0x50, then bmSlotICCState: two bits per slot, four slots per
/// byte, slot 0 in the low bits of byte 1. Of each pair, bit 0 = a card is present, bit 1 =
/// the state changed since the last notification. The message has
/// `1 + ceil((bMaxSlotIndex + 1) / 4)` bytes.
#[doc(alias = "RDR_to_PC_NotifySlotChange")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RdrToPcNotifySlotChange {
    /// bmSlotICCState.
    pub slot_icc_state: Vec<u8>,
}

impl RdrToPcNotifySlotChange {
    /// A notification for `states.len()` slots, each `(present, changed)`.
    pub fn new(states: &[(bool, bool)]) -> Self {
        let mut slot_icc_state = vec![0u8; states.len().div_ceil(4).max(1)];
        for (byte, chunk) in slot_icc_state.iter_mut().zip(states.chunks(4)) {
            for (j, &(present, changed)) in chunk.iter().enumerate() {
                *byte |= (u8::from(present) | u8::from(changed) << 1) << (2 * j);
            }
        }
        Self { slot_icc_state }
    }

    fn bits(&self, slot: u8) -> u8 {
        let byte = self
            .slot_icc_state
            .get(usize::from(slot / 4))
            .copied()
            .unwrap_or(0);
        byte >> (2 * (slot % 4)) & 0x03
    }

    /// Whether a card is present in `slot` (false for a slot beyond the message).
    pub fn present(&self, slot: u8) -> bool {
        self.bits(slot) & 0x01 != 0
    }

    /// Whether the state of `slot` changed (false for a slot beyond the message).
    pub fn changed(&self, slot: u8) -> bool {
        self.bits(slot) & 0x02 != 0
    }

    /// How many slots the message has room for (four per byte).
    pub fn slot_capacity(&self) -> usize {
        self.slot_icc_state.len() * 4
    }

    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(mt::NOTIFY_SLOT_CHANGE);
        out.extend_from_slice(&self.slot_icc_state);
    }

    /// Decodes a whole message: at least one bmSlotICCState byte, at most 64 (256 slots).
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let mut c = Cursor::new(bytes);
        let t = c.u8().ok_or(CcidError::TruncatedInterrupt)?;
        if t != mt::NOTIFY_SLOT_CHANGE {
            return Err(CcidError::WrongMessageType {
                expected: mt::NOTIFY_SLOT_CHANGE,
                found: t,
            });
        }
        let rest = c.take_rest();
        match rest.len() {
            0 => Err(CcidError::TruncatedInterrupt),
            1..=64 => Ok(Self {
                slot_icc_state: rest.to_vec(),
            }),
            _ => Err(CcidError::InterruptTrailingBytes),
        }
    }
}

/// A hardware error on a slot, e.g. overcurrent (CCID §6.3.2).
///
/// Layout: [0] bMessageType 0x51, [1] bSlot, [2] bSeq (of the command that was running),
/// [3] bHardErrorCode (0x01 overcurrent).
#[doc(alias = "RDR_to_PC_HardwareError")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RdrToPcHardwareError {
    /// bSlot.
    pub slot: u8,
    /// bSeq.
    pub seq: u8,
    /// bHardErrorCode.
    pub hard_error_code: u8,
}

impl RdrToPcHardwareError {
    /// bHardErrorCode for an overcurrent.
    pub const OVERCURRENT: u8 = 0x01;

    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            mt::HARDWARE_ERROR,
            self.slot,
            self.seq,
            self.hard_error_code,
        ]);
    }

    /// Decodes a whole message (exactly 4 bytes).
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let mut c = Cursor::new(bytes);
        let [t, slot, seq, hard_error_code] =
            c.array::<4>().ok_or(CcidError::TruncatedInterrupt)?;
        if t != mt::HARDWARE_ERROR {
            return Err(CcidError::WrongMessageType {
                expected: mt::HARDWARE_ERROR,
                found: t,
            });
        }
        if !c.is_empty() {
            return Err(CcidError::InterruptTrailingBytes);
        }
        Ok(Self {
            slot,
            seq,
            hard_error_code,
        })
    }
}

encode_helpers!(RdrToPcNotifySlotChange, RdrToPcHardwareError);

/// Any interrupt-IN message (CCID §6.3); one per interrupt transfer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InterruptMessage {
    /// [`RdrToPcNotifySlotChange`].
    NotifySlotChange(RdrToPcNotifySlotChange),
    /// [`RdrToPcHardwareError`].
    HardwareError(RdrToPcHardwareError),
}

impl InterruptMessage {
    /// Decodes one interrupt transfer.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        match bytes.first() {
            None => Err(CcidError::TruncatedInterrupt),
            Some(&mt::NOTIFY_SLOT_CHANGE) => Ok(Self::NotifySlotChange(
                RdrToPcNotifySlotChange::decode(bytes)?,
            )),
            Some(&mt::HARDWARE_ERROR) => {
                Ok(Self::HardwareError(RdrToPcHardwareError::decode(bytes)?))
            }
            Some(&other) => Err(CcidError::UnknownMessageType(other)),
        }
    }

    /// Encodes the message.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::NotifySlotChange(m) => m.encode(),
            Self::HardwareError(m) => m.encode(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reassembly of bulk-IN transfers
// ---------------------------------------------------------------------------------------

/// Cuts a stream of bulk-IN chunks into whole messages by their dwLength.
///
/// A reader may split one message over several transfers (wMaxPacketSize, a short
/// `transferIn` length) and a fake may coalesce several messages into one: push every chunk
/// as it comes and pop whole messages. A header announcing more than the configured
/// maximum (the reader's dwMaxCCIDMessageLength, CCID §5.1) is an error and nothing is
/// allocated for it; the stream is then out of step, so the error repeats until
/// [`Reassembler::reset`].
#[derive(Debug, Clone)]
pub struct Reassembler {
    buffer: Vec<u8>,
    max_message_length: u32,
}

impl Reassembler {
    /// A reassembler refusing messages (header included) longer than `max_message_length`.
    pub fn new(max_message_length: u32) -> Self {
        Self {
            buffer: Vec::new(),
            max_message_length,
        }
    }

    /// Appends a chunk as received.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next whole message, `None` while it is incomplete.
    pub fn pop(&mut self) -> Result<Option<Vec<u8>>, CcidError> {
        let header = match Header::decode(&self.buffer) {
            Ok(h) => h,
            Err(_) => return Ok(None),
        };
        let length = header.message_len();
        if length > u64::from(self.max_message_length) {
            return Err(CcidError::MessageTooLong {
                length,
                max: self.max_message_length,
            });
        }
        // INVARIANT: `length` is at most a u32 here, which fits usize on every target we
        // build for; a failed conversion would only mean "not complete yet".
        let Ok(length) = usize::try_from(length) else {
            return Ok(None);
        };
        if self.buffer.len() < length {
            return Ok(None);
        }
        let rest = self.buffer.split_off(length);
        Ok(Some(std::mem::replace(&mut self.buffer, rest)))
    }

    /// Bytes received but not yet popped.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Drops everything buffered (after an error, or when a command is abandoned).
    pub fn reset(&mut self) {
        self.buffer.clear();
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    // LudovicRousseau/CCID#72 (pcscd log, Feitian R502): a T=1 I-block sent in an XfrBlock.
    const XFR_T1_SELECT: &str =
        "6F 0F 00 00 00 00 17 00 00 00  00 40 0B 00 A4 04 00 06 11 22 33 44 55 66 9A";
    // Same log: the reader's DataBlock answer, an R-block.
    const DATA_BLOCK_R: &str = "80 04 00 00 00 00 17 00 00 00  00 82 00 82";
    // Same log, next exchange: the host's R-block and the card's I-block with SW 6D 00.
    const XFR_R_BLOCK: &str = "6F 04 00 00 00 00 18 00 00 00  00 92 00 92";
    const DATA_BLOCK_6D00: &str = "80 06 00 00 00 00 18 00 00 00  00 00 02 6D 00 6F";
    // LudovicRousseau/PCSC#66 (pcscd log, Identiv 04E6:5790): GetSlotStatus and the answer
    // "card absent, command failed, ICC_MUTE, clock stopped low".
    const GET_SLOT_STATUS: &str = "65 00 00 00 00 00 00 00 00 00";
    const SLOT_STATUS_ABSENT: &str = "81 00 00 00 00 00 00 42 FE 01";

    #[test]
    fn xfr_block_from_pcscd_log() {
        let bytes = h(XFR_T1_SELECT);
        let m = PcToRdrXfrBlock::decode(&bytes).unwrap();
        assert_eq!((m.slot, m.seq, m.bwi, m.level_parameter), (0, 0x17, 0, 0));
        assert_eq!(m.data, h("00 40 0B 00 A4 04 00 06 11 22 33 44 55 66 9A"));
        assert_eq!(m.encode(), bytes);
        assert_eq!(bytes.len(), HEADER_LEN + 15);
        let any = PcToRdr::decode(&bytes).unwrap();
        assert_eq!(any, PcToRdr::XfrBlock(m));
        assert_eq!((any.slot(), any.seq()), (0, 0x17));
        assert_eq!(any.response_type(), message_type::DATA_BLOCK);
        assert_eq!(any.encode(), bytes);

        let r = PcToRdrXfrBlock::decode(&h(XFR_R_BLOCK)).unwrap();
        assert_eq!((r.seq, r.data.as_slice()), (0x18, &h("00 92 00 92")[..]));
    }

    #[test]
    fn data_block_from_pcscd_log() {
        let bytes = h(DATA_BLOCK_R);
        let m = RdrToPcDataBlock::decode(&bytes).unwrap();
        assert_eq!((m.slot, m.seq, m.chain_parameter), (0, 0x17, 0));
        assert_eq!(m.state, SlotState::ok(IccStatus::PresentActive));
        assert!(m.state.is_ok());
        assert_eq!(m.state.error(), None);
        assert_eq!(m.data, h("00 82 00 82"));
        assert_eq!(m.encode(), bytes);

        let bytes = h(DATA_BLOCK_6D00);
        let any = RdrToPc::decode(&bytes).unwrap();
        assert_eq!((any.slot(), any.seq()), (0, 0x18));
        assert_eq!(any.message_type(), message_type::DATA_BLOCK);
        assert!(any.state().is_ok());
        assert_eq!(any.encode(), bytes);
    }

    #[test]
    fn slot_status_card_absent() {
        let get = PcToRdr::decode(&h(GET_SLOT_STATUS)).unwrap();
        assert_eq!(
            get,
            PcToRdr::GetSlotStatus(PcToRdrGetSlotStatus { slot: 0, seq: 0 })
        );
        assert_eq!(get.response_type(), message_type::SLOT_STATUS);

        let bytes = h(SLOT_STATUS_ABSENT);
        let m = RdrToPcSlotStatus::decode(&bytes).unwrap();
        assert_eq!(m.state.icc, IccStatus::Absent);
        assert_eq!(m.state.command, CommandStatus::Failed);
        assert_eq!(m.state.error(), Some(SlotError::IccMute));
        assert_eq!(m.state.status_byte(), 0x42);
        assert_eq!(m.clock_status, ClockStatus::StoppedLow);
        assert_eq!(m.encode(), bytes);
        assert_eq!(RdrToPc::decode(&bytes).unwrap().state(), m.state);
    }

    #[test]
    fn time_extension_is_not_an_error() {
        // CCID §6.2.6: bStatus 0x80 = time extension, bError = BWT multiplier (here 2).
        let bytes = h("80 00 00 00 00 00 05 80 02 00");
        let m = RdrToPcDataBlock::decode(&bytes).unwrap();
        assert_eq!(m.state.command, CommandStatus::TimeExtension);
        assert_eq!(m.state.time_extension_multiplier(), Some(2));
        assert_eq!(m.state.error(), None);
        assert!(!m.state.is_ok());
        assert_eq!(
            SlotState::time_extension(IccStatus::PresentActive, 2),
            m.state
        );
        assert_eq!(m.encode(), bytes);
    }

    #[test]
    fn every_status_value() {
        for status in [
            0x00u8, 0x01, 0x02, 0x03, 0x40, 0x41, 0x42, 0x43, 0x80, 0x81, 0xC0, 0xC2,
        ] {
            let s = SlotState::from_bytes(status, 0);
            assert_eq!(s.status_byte(), status);
        }
        // Bits 2-5 are RFU: ignored on decode.
        assert_eq!(SlotState::from_bytes(0x3C, 0).status_byte(), 0x00);
        assert_eq!(SlotState::from_bytes(0xC3, 0).icc, IccStatus::Reserved);
        assert_eq!(
            SlotState::from_bytes(0xC3, 0).command,
            CommandStatus::Reserved
        );
    }

    #[test]
    fn slot_error_codes() {
        // CCID §6.2.6, table 6.2-2, as listed in reference/webusb-ccid.md §3.
        let named = [
            (0xFF, SlotError::CmdAborted),
            (0xFE, SlotError::IccMute),
            (0xFD, SlotError::XfrParityError),
            (0xFC, SlotError::XfrOverrun),
            (0xFB, SlotError::HwError),
            (0xF8, SlotError::BadAtrTs),
            (0xF7, SlotError::BadAtrTck),
            (0xF6, SlotError::IccProtocolNotSupported),
            (0xF5, SlotError::IccClassNotSupported),
            (0xF4, SlotError::ProcedureByteConflict),
            (0xF3, SlotError::DeactivatedProtocol),
            (0xF2, SlotError::BusyWithAutoSequence),
            (0xF0, SlotError::PinTimeout),
            (0xEF, SlotError::PinCancelled),
            (0xE0, SlotError::CmdSlotBusy),
            (0x00, SlotError::CommandNotSupported),
            (0x07, SlotError::BadParameter(7)),
            (0x7F, SlotError::BadParameter(0x7F)),
            (0x80, SlotError::Other(0x80)),
            (0xF1, SlotError::Other(0xF1)),
        ];
        for (code, error) in named {
            assert_eq!(SlotError::from_code(code), error);
            assert_eq!(error.code(), code);
            assert!(!error.description().is_empty());
        }
        for code in 0..=255u8 {
            assert_eq!(SlotError::from_code(code).code(), code);
        }
        assert_eq!(
            SlotError::BadParameter(7).to_string(),
            "bad parameter at offset 7"
        );
        assert_eq!(SlotError::PinCancelled.to_string(), "pin entry cancelled");
    }

    #[test]
    fn power_on_voltages() {
        // CCID §6.1.1: bPowerSelect 0 auto, 1 5 V, 2 3 V, 3 1.8 V.
        for (b, v) in [
            (0, PowerSelect::Auto),
            (1, PowerSelect::V5),
            (2, PowerSelect::V3),
            (3, PowerSelect::V1_8),
        ] {
            let bytes = h(&format!("62 00 00 00 00 00 09 {b:02X} 00 00"));
            let m = PcToRdrIccPowerOn::decode(&bytes).unwrap();
            assert_eq!((m.seq, m.power_select), (9, v));
            assert_eq!(m.encode(), bytes);
        }
        assert_eq!(
            PcToRdrIccPowerOn::decode(&h("62 00 00 00 00 00 09 04 00 00")),
            Err(CcidError::BadField {
                offset: 7,
                value: 4
            })
        );
        // A power-on carries no data.
        assert_eq!(
            PcToRdrIccPowerOn::decode(&h("62 01 00 00 00 00 09 00 00 00 AA")),
            Err(CcidError::BadDataLength {
                message_type: 0x62,
                length: 1
            })
        );
    }

    #[test]
    fn header_only_commands() {
        // CCID §6.1.2, 6.1.3, 6.1.5, 6.1.6, 6.1.13: header alone, RFU bytes zero.
        for (t, expected) in [
            (
                0x63,
                PcToRdr::IccPowerOff(PcToRdrIccPowerOff { slot: 1, seq: 2 }),
            ),
            (
                0x65,
                PcToRdr::GetSlotStatus(PcToRdrGetSlotStatus { slot: 1, seq: 2 }),
            ),
            (
                0x6C,
                PcToRdr::GetParameters(PcToRdrGetParameters { slot: 1, seq: 2 }),
            ),
            (
                0x6D,
                PcToRdr::ResetParameters(PcToRdrResetParameters { slot: 1, seq: 2 }),
            ),
            (0x72, PcToRdr::Abort(PcToRdrAbort { slot: 1, seq: 2 })),
        ] {
            let bytes = h(&format!("{t:02X} 00 00 00 00 01 02 00 00 00"));
            let m = PcToRdr::decode(&bytes).unwrap();
            assert_eq!(m, expected);
            assert_eq!(m.message_type(), t);
            assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn set_parameters_t0_and_t1() {
        // libccid's default T=0 structure (reference/webusb-ccid.md §2.2): 11 00 00 0A 00.
        let t0 = h("61 05 00 00 00 00 03 00 00 00  11 00 00 0A 00");
        let m = PcToRdrSetParameters::decode(&t0).unwrap();
        let ProtocolParameters::T0(p) = m.parameters else {
            panic!("t=0 expected")
        };
        assert_eq!((p.findex_dindex, p.waiting_integer), (0x11, 0x0A));
        assert_eq!(m.encode(), t0);
        assert_eq!(m.encode().len(), HEADER_LEN + 5);

        // CCID §6.1.7 table 6.1-3: Fi/Di 0x13, CRC, BWI 4 CWI 5, IFSC 0xFE, NAD 0.
        let t1 = h("61 07 00 00 00 00 04 01 00 00  13 11 00 45 00 FE 00");
        let m = PcToRdrSetParameters::decode(&t1).unwrap();
        let ProtocolParameters::T1(p) = m.parameters else {
            panic!("t=1 expected")
        };
        assert!(p.uses_crc());
        assert_eq!((p.bwi(), p.cwi(), p.ifsc), (4, 5, 0xFE));
        assert_eq!(m.encode(), t1);

        // A T=0 number with a T=1 length is kept as it is, for the reader to refuse.
        let odd = h("61 07 00 00 00 00 04 00 00 00  13 11 00 45 00 FE 00");
        let m = PcToRdrSetParameters::decode(&odd).unwrap();
        assert!(matches!(
            m.parameters,
            ProtocolParameters::Other {
                protocol_num: 0,
                ..
            }
        ));
        assert_eq!(m.encode(), odd);
    }

    #[test]
    fn parameters_answer() {
        // CCID §6.2.3: the answer echoes the structure; a failed one may have none.
        let bytes = h("82 05 00 00 00 00 03 00 00 00  11 00 00 0A 00");
        let m = RdrToPcParameters::decode(&bytes).unwrap();
        assert_eq!(m.parameters.protocol_num(), 0);
        assert_eq!(m.encode(), bytes);
        let failed = h("82 00 00 00 00 00 03 41 07 00");
        let m = RdrToPcParameters::decode(&failed).unwrap();
        assert_eq!(m.state.error(), Some(SlotError::BadParameter(7)));
        assert_eq!(
            m.parameters,
            ProtocolParameters::Other {
                protocol_num: 0,
                data: Vec::new()
            }
        );
        assert_eq!(m.encode(), failed);
    }

    #[test]
    fn other_commands() {
        // CCID §6.1.8 Escape, §6.1.9 IccClock, §6.1.10 T0APDU, §6.1.11 Secure,
        // §6.1.12 Mechanical, §6.1.14 SetDataRateAndClockFrequency.
        let vectors = [
            "6B 02 00 00 00 00 01 00 00 00  AB CD",
            "6E 00 00 00 00 00 01 01 00 00",
            "6A 00 00 00 00 00 01 03 FF 00",
            "69 03 00 00 00 00 01 04 01 00  00 0F 01",
            "71 00 00 00 00 00 01 02 00 00",
            "73 08 00 00 00 00 01 00 00 00  A0 0F 00 00 00 2A 00 00",
        ];
        for v in vectors {
            let bytes = h(v);
            let m = PcToRdr::decode(&bytes).unwrap();
            assert_eq!(m.encode(), bytes, "{v}");
        }
        let PcToRdr::Secure(s) = PcToRdr::decode(&h(vectors[3])).unwrap() else {
            panic!("secure expected")
        };
        assert_eq!((s.bwi, s.level_parameter, s.data.len()), (4, 1, 3));
        let PcToRdr::SetDataRateAndClockFrequency(r) = PcToRdr::decode(&h(vectors[5])).unwrap()
        else {
            panic!("set data rate expected")
        };
        assert_eq!(
            r.rates,
            ClockAndDataRate {
                clock_frequency: 4000,
                data_rate: 10752
            }
        );
        assert_eq!(
            PcToRdr::decode(&h("6E 00 00 00 00 00 01 02 00 00")),
            Err(CcidError::BadField {
                offset: 7,
                value: 2
            })
        );
        assert_eq!(
            PcToRdr::decode(&h("71 00 00 00 00 00 01 06 00 00")),
            Err(CcidError::BadField {
                offset: 7,
                value: 6
            })
        );
        assert_eq!(
            PcToRdr::decode(&h("73 04 00 00 00 00 01 00 00 00  A0 0F 00 00")),
            Err(CcidError::BadDataLength {
                message_type: 0x73,
                length: 4
            })
        );
    }

    #[test]
    fn other_answers() {
        // CCID §6.2.4 Escape and §6.2.5 DataRateAndClockFrequency.
        let escape = h("83 01 00 00 00 00 02 00 00 00  90");
        assert!(matches!(RdrToPc::decode(&escape), Ok(RdrToPc::Escape(_))));
        assert_eq!(RdrToPc::decode(&escape).unwrap().encode(), escape);
        let rates = h("84 08 00 00 00 00 02 00 00 00  A0 0F 00 00 00 2A 00 00");
        let RdrToPc::DataRateAndClockFrequency(m) = RdrToPc::decode(&rates).unwrap() else {
            panic!("rates expected")
        };
        assert_eq!(m.rates.map(|r| r.data_rate), Some(10752));
        assert_eq!(m.encode(), rates);
        let failed = h("84 00 00 00 00 00 02 40 00 00");
        let m = RdrToPcDataRateAndClockFrequency::decode(&failed).unwrap();
        assert_eq!(
            (m.rates, m.state.error()),
            (None, Some(SlotError::CommandNotSupported))
        );
        assert_eq!(m.encode(), failed);
    }

    #[test]
    fn framing_errors() {
        assert_eq!(
            RdrToPc::decode(&h("80 00 00 00")),
            Err(CcidError::TruncatedHeader { present: 4 })
        );
        assert_eq!(
            RdrToPc::decode(&[]),
            Err(CcidError::TruncatedHeader { present: 0 })
        );
        // dwLength 4, 3 bytes present.
        assert_eq!(
            RdrToPc::decode(&h("80 04 00 00 00 00 17 00 00 00  00 82 00")),
            Err(CcidError::TruncatedData {
                declared: 4,
                present: 3
            })
        );
        // dwLength 4, 5 bytes present.
        assert_eq!(
            RdrToPc::decode(&h("80 04 00 00 00 00 17 00 00 00  00 82 00 82 00")),
            Err(CcidError::TrailingBytes {
                declared: 4,
                present: 5
            })
        );
        // A huge dwLength is only compared, never allocated.
        assert_eq!(
            RdrToPc::decode(&h("80 FF FF FF FF 00 17 00 00 00")),
            Err(CcidError::TruncatedData {
                declared: u32::MAX,
                present: 0
            })
        );
        assert_eq!(
            RdrToPc::decode(&h(GET_SLOT_STATUS)),
            Err(CcidError::UnknownMessageType(0x65))
        );
        assert_eq!(
            PcToRdr::decode(&h(SLOT_STATUS_ABSENT)),
            Err(CcidError::UnknownMessageType(0x81))
        );
        assert_eq!(
            RdrToPcSlotStatus::decode(&h(DATA_BLOCK_R)),
            Err(CcidError::WrongMessageType {
                expected: 0x81,
                found: 0x80
            })
        );
        assert_eq!(
            RdrToPcSlotStatus::decode(&h("81 01 00 00 00 00 00 00 00 00 00")),
            Err(CcidError::BadDataLength {
                message_type: 0x81,
                length: 1
            })
        );
    }

    #[test]
    fn header_alone() {
        let header = Header::decode(&h(XFR_T1_SELECT)).unwrap();
        assert_eq!(header.message_type, 0x6F);
        assert_eq!(
            (header.length, header.seq, header.message_len()),
            (15, 0x17, 25)
        );
        let mut out = Vec::new();
        header.encode_into(&mut out);
        assert_eq!(out, h("6F 0F 00 00 00 00 17 00 00 00"));
    }

    #[test]
    fn notify_slot_change() {
        // LudovicRousseau/PCSC#66: "NotifySlotChange: 50 02" (slot 0 changed, card gone).
        let m = RdrToPcNotifySlotChange::decode(&h("50 02")).unwrap();
        assert!(m.changed(0) && !m.present(0));
        // LudovicRousseau/PCSC#147: "NotifySlotChange: 50 03" (slot 0 changed, card present).
        let m = RdrToPcNotifySlotChange::decode(&h("50 03")).unwrap();
        assert!(m.changed(0) && m.present(0));
        assert_eq!(m, RdrToPcNotifySlotChange::new(&[(true, true)]));
        assert_eq!(m.encode(), h("50 03"));
        assert_eq!(m.slot_capacity(), 4);
        assert!(!m.present(4) && !m.changed(200));

        // Six slots (libccid: byte slot/4 + 1, change bit 0x02 << 2*(slot%4)):
        // slot 1 present, slot 5 present and changed.
        let m = RdrToPcNotifySlotChange::new(&[
            (false, false),
            (true, false),
            (false, false),
            (false, false),
            (false, false),
            (true, true),
        ]);
        assert_eq!(m.encode(), h("50 04 0C"));
        assert!(m.present(1) && !m.changed(1) && m.present(5) && m.changed(5));
        assert_eq!(
            InterruptMessage::decode(&h("50 04 0C")).unwrap(),
            InterruptMessage::NotifySlotChange(m)
        );
        assert_eq!(RdrToPcNotifySlotChange::new(&[]).encode(), h("50 00"));

        assert_eq!(
            RdrToPcNotifySlotChange::decode(&h("50")),
            Err(CcidError::TruncatedInterrupt)
        );
        assert_eq!(
            InterruptMessage::decode(&[]),
            Err(CcidError::TruncatedInterrupt)
        );
        assert_eq!(
            InterruptMessage::decode(&h("52 00")),
            Err(CcidError::UnknownMessageType(0x52))
        );
        assert_eq!(
            RdrToPcNotifySlotChange::decode(&[0x50; 66]),
            Err(CcidError::InterruptTrailingBytes)
        );
    }

    #[test]
    fn hardware_error() {
        // CCID §6.3.2: overcurrent on slot 0 while command 7 ran.
        let bytes = h("51 00 07 01");
        let m = InterruptMessage::decode(&bytes).unwrap();
        assert_eq!(
            m,
            InterruptMessage::HardwareError(RdrToPcHardwareError {
                slot: 0,
                seq: 7,
                hard_error_code: RdrToPcHardwareError::OVERCURRENT
            })
        );
        assert_eq!(m.encode(), bytes);
        assert_eq!(
            RdrToPcHardwareError::decode(&h("51 00 07")),
            Err(CcidError::TruncatedInterrupt)
        );
        assert_eq!(
            RdrToPcHardwareError::decode(&h("51 00 07 01 00")),
            Err(CcidError::InterruptTrailingBytes)
        );
    }

    #[test]
    fn reassembler_any_split() {
        let first = h(DATA_BLOCK_R);
        let second = h(DATA_BLOCK_6D00);
        let stream: Vec<u8> = first.iter().chain(&second).copied().collect();

        // One byte at a time.
        let mut r = Reassembler::new(271);
        let mut out = Vec::new();
        for b in &stream {
            r.push(std::slice::from_ref(b));
            while let Some(m) = r.pop().unwrap() {
                out.push(m);
            }
        }
        assert_eq!(out, [first.clone(), second.clone()]);
        assert_eq!(r.pending(), 0);

        // The header split in two, then both messages coalesced with the rest.
        let mut r = Reassembler::new(271);
        r.push(&stream[..4]);
        assert_eq!(r.pop(), Ok(None));
        r.push(&stream[4..]);
        assert_eq!(r.pop(), Ok(Some(first)));
        assert_eq!(r.pop(), Ok(Some(second)));
        assert_eq!(r.pop(), Ok(None));
    }

    #[test]
    fn reassembler_refuses_oversized() {
        // dwMaxCCIDMessageLength 271 (GemPCTwin): 10 + 262 bytes is one too many.
        let mut r = Reassembler::new(271);
        r.push(&h("80 06 01 00 00 00 01 00 00 00"));
        assert_eq!(
            r.pop(),
            Err(CcidError::MessageTooLong {
                length: 272,
                max: 271
            })
        );
        assert_eq!(
            r.pop(),
            Err(CcidError::MessageTooLong {
                length: 272,
                max: 271
            })
        );
        r.reset();
        assert_eq!(r.pending(), 0);
        r.push(&h("80 FF FF FF FF 00 01 00 00 00"));
        assert!(matches!(r.pop(), Err(CcidError::MessageTooLong { .. })));
        r.reset();
        // Exactly the maximum is fine.
        r.push(&h("80 05 01 00 00 00 01 00 00 00"));
        r.push(&[0u8; 261]);
        assert_eq!(r.pop().unwrap().map(|m| m.len()), Some(271));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use super::*;
    use proptest::prelude::*;

    fn state() -> impl Strategy<Value = SlotState> {
        (any::<u8>(), any::<u8>()).prop_map(|(s, e)| SlotState::from_bytes(s & 0xC3, e))
    }

    fn parameters() -> impl Strategy<Value = ProtocolParameters> {
        prop_oneof![
            (proptest::collection::vec(any::<u8>(), 5))
                .prop_map(|d| ProtocolParameters::raw(0, &d)),
            (proptest::collection::vec(any::<u8>(), 7))
                .prop_map(|d| ProtocolParameters::raw(1, &d)),
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
                |(slot, seq, (b, w, c, d), data, power_select, function, parameters, kind)| {
                    match kind {
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
                        _ => PcToRdr::SetDataRateAndClockFrequency(
                            PcToRdrSetDataRateAndClockFrequency {
                                slot,
                                seq,
                                rates: ClockAndDataRate {
                                    clock_frequency: u32::from(w) << 8 | u32::from(c),
                                    data_rate: u32::from(b) << 16 | u32::from(d),
                                },
                            },
                        ),
                    }
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
}
