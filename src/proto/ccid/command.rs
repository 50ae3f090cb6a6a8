//! PC_to_RDR bulk-OUT messages (CCID §6.1).

use super::parameters::{ClockAndDataRate, ProtocolParameters};
use super::{mt, put, split, split_empty, CcidError, Header};

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
    /// level (0 whole, 1 begins, 2 ends, 3 continues, 0x10 empty "continue response"),
    /// read with [`PcToRdrXfrBlock::chain`]; the expected answer length at character level.
    pub level_parameter: u16,
    /// abData.
    pub data: Vec<u8>,
}

impl PcToRdrXfrBlock {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let b = (self.slot, self.seq, self.bwi, self.level_parameter);
        put_block(out, mt::XFR_BLOCK, b, &self.data);
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let ((slot, seq, bwi, level_parameter), data) = split_block(bytes, mt::XFR_BLOCK)?;
        Ok(Self {
            slot,
            seq,
            bwi,
            level_parameter,
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
    /// wLevelParameter (chaining at extended APDU level, as in XfrBlock; see
    /// [`PcToRdrSecure::chain`]).
    pub level_parameter: u16,
    /// abData: bPINOperation and its structure.
    pub data: Vec<u8>,
}

impl PcToRdrSecure {
    /// Appends the message.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let b = (self.slot, self.seq, self.bwi, self.level_parameter);
        put_block(out, mt::SECURE, b, &self.data);
    }

    /// Decodes a whole message.
    pub fn decode(bytes: &[u8]) -> Result<Self, CcidError> {
        let ((slot, seq, bwi, level_parameter), data) = split_block(bytes, mt::SECURE)?;
        Ok(Self {
            slot,
            seq,
            bwi,
            level_parameter,
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

/// bSlot, bSeq, bBWI and wLevelParameter of the two messages that carry them with abData,
/// PC_to_RDR_XfrBlock and PC_to_RDR_Secure (CCID §6.1.4, §6.1.11).
type BlockFields = (u8, u8, u8, u16);

fn put_block(out: &mut Vec<u8>, message_type: u8, fields: BlockFields, data: &[u8]) {
    let (slot, seq, bwi, level_parameter) = fields;
    let [l0, l1] = level_parameter.to_le_bytes();
    put(out, message_type, slot, seq, [bwi, l0, l1], data);
}

fn split_block(bytes: &[u8], message_type: u8) -> Result<(BlockFields, &[u8]), CcidError> {
    let (h, data) = split(bytes, message_type)?;
    let [bwi, l0, l1] = h.specific;
    Ok(((h.slot, h.seq, bwi, u16::from_le_bytes([l0, l1])), data))
}
