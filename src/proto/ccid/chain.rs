//! APDU chaining at extended APDU level: wLevelParameter of PC_to_RDR_XfrBlock and
//! PC_to_RDR_Secure, bChainParameter of RDR_to_PC_DataBlock (CCID §6.1.4, §6.1.11, §6.2.1).
//!
//! The message fields stay raw numbers because their meaning depends on the reader's
//! exchange level (dwFeatures, CCID §5.1): 0 (RFU) at TPDU and short APDU level, the
//! expected answer length in wLevelParameter at character level, and a [`Chain`] code only
//! at extended APDU level. The `chain()` accessors of the messages read that code.

use super::{PcToRdrSecure, PcToRdrXfrBlock, RdrToPcDataBlock};

/// Where a message's abData sits in a chained command or response APDU (CCID §6.1.4
/// wLevelParameter, §6.2.1 bChainParameter; both use the same codes).
///
/// Semantics a caller can trip on: the host sends a long command as `Begins`,
/// `Continues`…, `Ends`, and each part but the last is answered by an empty DataBlock;
/// the reader sends a long response the same way, and the host asks for each next part
/// with an empty XfrBlock whose wLevelParameter is [`Chain::Continue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chain {
    /// 0x00: the APDU begins and ends in this message.
    Whole,
    /// 0x01: the APDU begins in this message and continues in the next.
    Begins,
    /// 0x02: the APDU continues from the previous message and ends in this one.
    Ends,
    /// 0x03: the APDU continues from the previous message and in the next.
    Continues,
    /// 0x10: abData is empty; the next part is expected (in wLevelParameter: of the
    /// response, in the next DataBlock; in bChainParameter: of the command, in the next
    /// XfrBlock).
    Continue,
}

impl Chain {
    /// The code in wLevelParameter or bChainParameter.
    pub const fn code(self) -> u8 {
        match self {
            Self::Whole => 0x00,
            Self::Begins => 0x01,
            Self::Ends => 0x02,
            Self::Continues => 0x03,
            Self::Continue => 0x10,
        }
    }

    /// The chaining code in a wLevelParameter or bChainParameter value; `None` for a value
    /// the specification does not define.
    pub fn from_code(value: u16) -> Option<Self> {
        Some(match value {
            0x00 => Self::Whole,
            0x01 => Self::Begins,
            0x02 => Self::Ends,
            0x03 => Self::Continues,
            0x10 => Self::Continue,
            _ => return None,
        })
    }

    /// Whether a response APDU is complete after a DataBlock with this bChainParameter.
    pub const fn is_last(self) -> bool {
        matches!(self, Self::Whole | Self::Ends)
    }

    /// Cuts an APDU into the parts of a chain of messages carrying at most `max` bytes of
    /// abData each (at least 1): one [`Chain::Whole`] part when it fits (also when empty),
    /// else `Begins`, `Continues`…, `Ends`.
    pub fn split(apdu: &[u8], max: usize) -> Vec<(Self, &[u8])> {
        let max = max.max(1);
        if apdu.len() <= max {
            return vec![(Self::Whole, apdu)];
        }
        // INVARIANT: apdu.len() > max, so there are at least two parts.
        let parts: Vec<&[u8]> = apdu.chunks(max).collect();
        let last = parts.len() - 1;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| match i {
                0 => (Self::Begins, part),
                i if i == last => (Self::Ends, part),
                _ => (Self::Continues, part),
            })
            .collect()
    }
}

impl From<Chain> for u16 {
    fn from(chain: Chain) -> Self {
        chain.code().into()
    }
}

impl From<Chain> for u8 {
    fn from(chain: Chain) -> Self {
        chain.code()
    }
}

impl PcToRdrXfrBlock {
    /// wLevelParameter read as a chaining code (meaningful at extended APDU level only).
    pub fn chain(&self) -> Option<Chain> {
        Chain::from_code(self.level_parameter)
    }
}

impl PcToRdrSecure {
    /// wLevelParameter read as a chaining code (meaningful at extended APDU level only).
    pub fn chain(&self) -> Option<Chain> {
        Chain::from_code(self.level_parameter)
    }
}

impl RdrToPcDataBlock {
    /// bChainParameter read as a chaining code (meaningful at extended APDU level only).
    pub fn chain(&self) -> Option<Chain> {
        Chain::from_code(self.chain_parameter.into())
    }
}
