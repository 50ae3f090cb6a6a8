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

/// Applies the same expression to whichever message a `PcToRdr` or `RdrToPc` holds.
macro_rules! each {
    ($value:expr, $enum:ident, $m:ident => $e:expr, [$($v:ident),*]) => {
        match $value { $($enum::$v($m) => $e,)* }
    };
}

mod chain;
mod command;
mod interrupt;
mod parameters;
mod reassembly;
mod response;
mod status;

pub use chain::Chain;
pub use command::{
    ClockCommand, MechanicalFunction, PcToRdr, PcToRdrAbort, PcToRdrEscape, PcToRdrGetParameters,
    PcToRdrGetSlotStatus, PcToRdrIccClock, PcToRdrIccPowerOff, PcToRdrIccPowerOn,
    PcToRdrMechanical, PcToRdrResetParameters, PcToRdrSecure, PcToRdrSetDataRateAndClockFrequency,
    PcToRdrSetParameters, PcToRdrT0Apdu, PcToRdrXfrBlock, PowerSelect,
};
pub use interrupt::{InterruptMessage, RdrToPcHardwareError, RdrToPcNotifySlotChange};
pub use parameters::{ClockAndDataRate, ProtocolParameters, T0Parameters, T1Parameters};
pub use reassembly::Reassembler;
pub use response::{
    ClockStatus, RdrToPc, RdrToPcDataBlock, RdrToPcDataRateAndClockFrequency, RdrToPcEscape,
    RdrToPcParameters, RdrToPcSlotStatus,
};
pub use status::{CommandStatus, IccStatus, SlotError, SlotState};

#[cfg(test)]
mod tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop;
