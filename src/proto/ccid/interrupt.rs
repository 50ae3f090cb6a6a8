//! Interrupt-IN messages (CCID §6.3).

use super::{mt, CcidError};
use crate::proto::bytes::Cursor;

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
