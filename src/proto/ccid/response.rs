//! RDR_to_PC bulk-IN messages (CCID §6.2).

use super::parameters::{ClockAndDataRate, ProtocolParameters};
use super::status::SlotState;
use super::{mt, put, split, split_empty, CcidError, Header};

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
    /// 0x10 "empty, send an XfrBlock with wLevelParameter 0x10 to continue" (read with
    /// [`RdrToPcDataBlock::chain`]); else 0.
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
