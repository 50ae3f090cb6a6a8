//! Protocol parameters and clock rates (CCID §6.1.7, tables 6.1-2 and 6.1-3; §6.1.14).

use crate::proto::bytes::Cursor;

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
    pub(super) fn decode(data: &[u8]) -> Option<Self> {
        let mut c = Cursor::new(data);
        let clock_frequency = c.u32_le()?;
        let data_rate = c.u32_le()?;
        c.is_empty().then_some(Self {
            clock_frequency,
            data_rate,
        })
    }

    pub(super) fn to_bytes(self) -> [u8; 8] {
        let [c0, c1, c2, c3] = self.clock_frequency.to_le_bytes();
        let [r0, r1, r2, r3] = self.data_rate.to_le_bytes();
        [c0, c1, c2, c3, r0, r1, r2, r3]
    }
}
