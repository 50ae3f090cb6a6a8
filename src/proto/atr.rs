//! Answer-to-Reset parsing, ISO/IEC 7816-3 §8.
//!
//! An ATR is, byte by byte (§8.2.1):
//!
//! ```text
//! TS            initial character: 3B direct, 3F inverse convention
//! T0            Y1 (high nibble: which of TA1 TB1 TC1 TD1 follow) | K (number of historical bytes)
//! TAi TBi TCi   interface bytes of group i, each present when its Yi bit is set
//! TDi           Y(i+1) (high nibble) | T (low nibble: the protocol the next group is about)
//! T1..TK        historical bytes
//! TCK           check byte: XOR of T0 .. TCK is zero; absent when only T=0 is offered
//! ```
//!
//! Group 1 holds global bytes (TA1 Fi/Di, TB1 deprecated, TC1 extra guard time); TA2 is the
//! specific-mode byte, TC2 the T=0 waiting integer; from group 3 on, the bytes belong to the
//! protocol named by the TD byte before them (T=1 parameters, T=15 global parameters).
//!
//! The reader hands over the ATR already decoded in its own convention: an inverse-convention
//! card shows TS as `3F` and all later bytes with their logical values.

use crate::proto::bytes::Cursor;

/// The longest ATR allowed by ISO/IEC 7816-3 §8.2.1: TS plus 32 bytes.
pub const MAX_ATR_LEN: usize = 33;

/// Default waiting integer WI for T=0 when TC2 is absent (7816-3 §10.2).
pub const DEFAULT_WI: u8 = 10;
/// Default IFSC for T=1 when no TA for T=1 is present (7816-3 §11.4.2).
pub const DEFAULT_IFSC: u8 = 32;
/// Default block waiting integer BWI for T=1 (7816-3 §11.4.3).
pub const DEFAULT_BWI: u8 = 4;
/// Default character waiting integer CWI for T=1 (7816-3 §11.4.3).
pub const DEFAULT_CWI: u8 = 13;
/// Default clock rate conversion factor Fd (7816-3 §7.1).
pub const DEFAULT_FI: u16 = 372;
/// Default baud rate adjustment factor Dd (7816-3 §7.1).
pub const DEFAULT_DI: u16 = 1;
/// The TA1 value meaning "default Fi/Di" (Fi index 1, Di index 1).
pub const DEFAULT_TA1: u8 = 0x11;

/// Why an ATR could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AtrError {
    /// No byte at all.
    #[error("empty atr")]
    Empty,
    /// More than [`MAX_ATR_LEN`] bytes.
    #[error("atr longer than 33 bytes ({0})")]
    TooLong(usize),
    /// TS is neither `3B` nor `3F`.
    #[error("bad initial character ts {0:#04x}")]
    BadTs(u8),
    /// The bytes end before T0, an announced interface byte or a historical byte.
    #[error("truncated atr")]
    Truncated,
    /// TCK is required (a protocol other than T=0 is indicated) but missing.
    #[error("missing tck")]
    MissingTck,
    /// The XOR of T0 .. TCK is not zero.
    #[error("bad tck (xor {0:#04x})")]
    BadTck(u8),
    /// Bytes follow the ATR (after TCK, or after the historical bytes plus one optional TCK).
    #[error("{0} trailing bytes after the atr")]
    TrailingBytes(usize),
    /// The IFSC byte for T=1 is 00 or FF, both reserved (7816-3 §11.4.2).
    #[error("invalid ifsc {0:#04x}")]
    InvalidIfsc(u8),
}

/// Bit convention announced by TS (7816-3 §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// TS = `3B`: high level is logical 1, least significant bit first.
    Direct,
    /// TS = `3F`: low level is logical 1, most significant bit first.
    Inverse,
}

/// One group of interface bytes TAi TBi TCi TDi (7816-3 §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceGroup {
    /// Group number i, starting at 1.
    pub index: u8,
    /// The protocol T these bytes are about: `None` for group 1 (global bytes), else the low
    /// nibble of TD(i-1). Group 2 is partly global (TA2, TB2) whatever its T.
    pub protocol: Option<u8>,
    /// TAi, if present.
    pub ta: Option<u8>,
    /// TBi, if present.
    pub tb: Option<u8>,
    /// TCi, if present.
    pub tc: Option<u8>,
    /// TDi, if present.
    pub td: Option<u8>,
}

/// Clock rate conversion and baud rate adjustment from TA1 (7816-3 §8.3, tables 7 and 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiDi {
    /// The index Fi (high nibble of TA1).
    pub fi_index: u8,
    /// The index Di (low nibble of TA1).
    pub di_index: u8,
    /// The clock rate conversion integer Fi (372 .. 2048).
    pub fi: u16,
    /// The maximum clock frequency f(max) in kHz that goes with Fi.
    pub f_max_khz: u32,
    /// The baud rate adjustment integer Di (1 .. 64).
    pub di: u16,
}

impl FiDi {
    /// The default values Fd = 372, f(max) = 5 MHz, Dd = 1 (TA1 = `11`).
    pub const DEFAULT: FiDi = FiDi {
        fi_index: 1,
        di_index: 1,
        fi: DEFAULT_FI,
        f_max_khz: 5000,
        di: DEFAULT_DI,
    };

    /// Decodes a TA1 byte; `None` when its Fi or Di index is reserved for future use.
    pub fn from_ta1(ta1: u8) -> Option<FiDi> {
        let fi_index = ta1 >> 4;
        let di_index = ta1 & 0x0F;
        let (fi, f_max_khz) = fi_table(fi_index)?;
        let di = di_table(di_index)?;
        Some(FiDi {
            fi_index,
            di_index,
            fi,
            f_max_khz,
            di,
        })
    }

    /// The TA1 / PPS1 byte for these values.
    pub fn ta1(&self) -> u8 {
        self.fi_index << 4 | (self.di_index & 0x0F)
    }
}

/// Fi and f(max) in kHz for an Fi index (7816-3 §8.3 table 7); `None` for RFU indices.
pub fn fi_table(index: u8) -> Option<(u16, u32)> {
    Some(match index {
        0 => (372, 4000),
        1 => (372, 5000),
        2 => (558, 6000),
        3 => (744, 8000),
        4 => (1116, 12000),
        5 => (1488, 16000),
        6 => (1860, 20000),
        9 => (512, 5000),
        10 => (768, 7500),
        11 => (1024, 10000),
        12 => (1536, 15000),
        13 => (2048, 20000),
        _ => return None,
    })
}

/// Di for a Di index (7816-3 §8.3 table 8); `None` for RFU indices.
pub fn di_table(index: u8) -> Option<u16> {
    Some(match index {
        1 => 1,
        2 => 2,
        3 => 4,
        4 => 8,
        5 => 16,
        6 => 32,
        7 => 64,
        8 => 12,
        9 => 20,
        _ => return None,
    })
}

/// The specific-mode byte TA2 (7816-3 §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecificMode {
    /// The protocol T the card runs in (low nibble).
    pub protocol: u8,
    /// Bit 8 clear: the card can switch to negotiable mode (by a warm reset).
    pub can_change: bool,
    /// Bit 5 set: the transmission parameters are implicit, not those of TA1.
    pub implicit_parameters: bool,
}

/// Clock stop indicator X of the first TA for T=15 (7816-3 §8.3, table 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockStop {
    /// X = 00: clock stop not supported.
    NotSupported,
    /// X = 01: the clock may stop in state L.
    Low,
    /// X = 10: the clock may stop in state H.
    High,
    /// X = 11: the clock may stop in either state.
    NoPreference,
}

impl ClockStop {
    /// The CCID bClockStop encoding of this indicator (CCID Rev 1.1 §6.1.7): 0 .. 3.
    pub fn ccid_value(self) -> u8 {
        match self {
            ClockStop::NotSupported => 0,
            ClockStop::Low => 1,
            ClockStop::High => 2,
            ClockStop::NoPreference => 3,
        }
    }
}

/// Error detection code of T=1 blocks, bit 1 of the first TC for T=1 (7816-3 §11.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edc {
    /// One byte: XOR of the block (the default).
    Lrc,
    /// Two bytes: CRC.
    Crc,
}

/// A parsed Answer-to-Reset (7816-3 §8.2).
///
/// Parsing checks the structure only; the meaning of individual bytes is read through the
/// accessors, which apply the defaults of the standard when a byte is absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atr {
    raw: Vec<u8>,
    convention: Convention,
    groups: Vec<InterfaceGroup>,
    historical_range: (usize, usize),
    tck: Option<u8>,
}

impl Atr {
    /// Parses an ATR as delivered by a reader (7816-3 §8.2).
    ///
    /// TCK must be present and correct when any TD byte indicates a protocol other than T=0
    /// (including T=15). When only T=0 is indicated, one byte after the historical bytes is
    /// still accepted as a TCK if the XOR check holds (some cards send it anyway); anything
    /// else after the ATR is an error.
    pub fn parse(bytes: &[u8]) -> Result<Atr, AtrError> {
        if bytes.is_empty() {
            return Err(AtrError::Empty);
        }
        if bytes.len() > MAX_ATR_LEN {
            return Err(AtrError::TooLong(bytes.len()));
        }
        let mut cur = Cursor::new(bytes);
        let ts = cur.u8().ok_or(AtrError::Empty)?;
        let convention = match ts {
            0x3B => Convention::Direct,
            0x3F => Convention::Inverse,
            other => return Err(AtrError::BadTs(other)),
        };
        let t0 = cur.u8().ok_or(AtrError::Truncated)?;
        let k = usize::from(t0 & 0x0F);
        let mut y = t0 >> 4;
        let mut groups = Vec::new();
        let mut protocol: Option<u8> = None;
        let mut index: u8 = 1;
        let mut needs_tck = false;
        loop {
            let mut read = |bit: u8| -> Result<Option<u8>, AtrError> {
                if y & bit != 0 {
                    cur.u8().map(Some).ok_or(AtrError::Truncated)
                } else {
                    Ok(None)
                }
            };
            let ta = read(0x1)?;
            let tb = read(0x2)?;
            let tc = read(0x4)?;
            let td = read(0x8)?;
            groups.push(InterfaceGroup {
                index,
                protocol,
                ta,
                tb,
                tc,
                td,
            });
            match td {
                Some(td) => {
                    if td & 0x0F != 0 {
                        needs_tck = true;
                    }
                    y = td >> 4;
                    protocol = Some(td & 0x0F);
                    // INVARIANT: every group takes at least its TD byte and the ATR is at most
                    // 33 bytes, so fewer than 33 groups exist and the index cannot overflow.
                    index = index.saturating_add(1);
                }
                None => break,
            }
        }
        let hist_start = cur.position();
        cur.take(k).ok_or(AtrError::Truncated)?;
        let hist_end = cur.position();
        let tck = match (needs_tck, cur.remaining()) {
            (true, 0) => return Err(AtrError::MissingTck),
            (_, 0) => None,
            (_, 1) => cur.u8(),
            (_, n) => return Err(AtrError::TrailingBytes(n - 1)),
        };
        if tck.is_some() {
            let xor = bytes.iter().skip(1).fold(0u8, |acc, b| acc ^ b);
            if xor != 0 {
                return Err(AtrError::BadTck(xor));
            }
        }
        Ok(Atr {
            raw: bytes.to_vec(),
            convention,
            groups,
            historical_range: (hist_start, hist_end),
            tck,
        })
    }

    /// The ATR bytes exactly as parsed.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The convention announced by TS.
    pub fn convention(&self) -> Convention {
        self.convention
    }

    /// The format byte T0.
    pub fn t0(&self) -> u8 {
        // INVARIANT: parse() succeeded, so the ATR has at least TS and T0.
        self.raw.get(1).copied().unwrap_or(0)
    }

    /// Every group of interface bytes, group 1 first (there is always at least one, possibly
    /// empty).
    pub fn groups(&self) -> &[InterfaceGroup] {
        &self.groups
    }

    /// Group i (1-based), if present.
    pub fn group(&self, index: u8) -> Option<&InterfaceGroup> {
        self.groups.iter().find(|g| g.index == index)
    }

    /// The historical bytes T1 .. TK.
    pub fn historical(&self) -> &[u8] {
        self.raw
            .get(self.historical_range.0..self.historical_range.1)
            .unwrap_or(&[])
    }

    /// TCK, when present.
    pub fn tck(&self) -> Option<u8> {
        self.tck
    }

    /// The protocols offered, in the order the TD bytes name them (T=15 excluded, as it is not
    /// a transmission protocol). Without TD1 only T=0 is offered (7816-3 §8.2.3).
    pub fn protocols(&self) -> Vec<u8> {
        // T is a nibble: one bit per protocol seen (no set type, issue 18: the bundle).
        let mut seen = 0u16;
        let mut out = Vec::new();
        for t in self.groups.iter().filter_map(|g| g.td).map(|td| td & 0x0F) {
            let bit = 1u16 << t;
            if t != 15 && seen & bit == 0 {
                seen |= bit;
                out.push(t);
            }
        }
        if out.is_empty() {
            out.push(0);
        }
        out
    }

    /// Whether protocol `t` is offered.
    pub fn offers(&self, t: u8) -> bool {
        self.protocols().contains(&t)
    }

    /// The default protocol: the first one offered (7816-3 §8.2.3).
    pub fn default_protocol(&self) -> u8 {
        self.protocols().first().copied().unwrap_or(0)
    }

    /// The raw TA1 byte, when present.
    pub fn ta1(&self) -> Option<u8> {
        self.group(1).and_then(|g| g.ta)
    }

    /// Whether TA1 is present with a Fi or Di index reserved for future use.
    pub fn ta1_is_reserved(&self) -> bool {
        self.ta1().is_some_and(|ta1| FiDi::from_ta1(ta1).is_none())
    }

    /// Fi, f(max) and Di offered by TA1 (7816-3 §8.3).
    ///
    /// Absent TA1 gives the defaults. A TA1 with a reserved index is treated as absent too:
    /// the card then stays at the default values it must support (see
    /// [`Atr::ta1_is_reserved`] to tell the cases apart).
    pub fn fi_di(&self) -> FiDi {
        self.ta1().and_then(FiDi::from_ta1).unwrap_or(FiDi::DEFAULT)
    }

    /// The extra guard time N from TC1 (default 0). N = 255 means the minimal guard time
    /// (12 etu for T=0, 11 etu for T=1), 7816-3 §8.3.
    pub fn extra_guard_time(&self) -> u8 {
        self.group(1).and_then(|g| g.tc).unwrap_or(0)
    }

    /// The T=0 waiting integer WI from TC2 (7816-3 §10.2). Absent or the reserved value 0
    /// gives the default 10.
    pub fn waiting_integer(&self) -> u8 {
        match self.group(2).and_then(|g| g.tc) {
            Some(0) | None => DEFAULT_WI,
            Some(wi) => wi,
        }
    }

    /// The specific-mode byte TA2, when present (7816-3 §8.3): the card is in specific mode.
    pub fn specific_mode(&self) -> Option<SpecificMode> {
        self.group(2).and_then(|g| g.ta).map(|ta2| SpecificMode {
            protocol: ta2 & 0x0F,
            can_change: ta2 & 0x80 == 0,
            implicit_parameters: ta2 & 0x10 != 0,
        })
    }

    /// The first group (i >= 3) whose bytes are about protocol `t`.
    fn first_specific(&self, t: u8, pick: impl Fn(&InterfaceGroup) -> Option<u8>) -> Option<u8> {
        self.groups
            .iter()
            .filter(|g| g.index >= 3 && g.protocol == Some(t))
            .find_map(pick)
    }

    /// The T=1 information field size of the card, from the first TA for T=1 (7816-3
    /// §11.4.2); 32 when absent. The values 00 and FF are reserved and give an error.
    pub fn ifsc(&self) -> Result<u8, AtrError> {
        match self.first_specific(1, |g| g.ta) {
            None => Ok(DEFAULT_IFSC),
            Some(v @ (0x00 | 0xFF)) => Err(AtrError::InvalidIfsc(v)),
            Some(v) => Ok(v),
        }
    }

    /// The raw first TB for T=1 (BWI high nibble, CWI low nibble), when present.
    pub fn t1_tb(&self) -> Option<u8> {
        self.first_specific(1, |g| g.tb)
    }

    /// The T=1 block waiting integer BWI (7816-3 §11.4.3), default 4.
    pub fn bwi(&self) -> u8 {
        self.t1_tb().map_or(DEFAULT_BWI, |tb| tb >> 4)
    }

    /// The T=1 character waiting integer CWI (7816-3 §11.4.3), default 13.
    pub fn cwi(&self) -> u8 {
        self.t1_tb().map_or(DEFAULT_CWI, |tb| tb & 0x0F)
    }

    /// The T=1 error detection code, from bit 1 of the first TC for T=1 (7816-3 §11.4.4).
    pub fn edc(&self) -> Edc {
        match self.first_specific(1, |g| g.tc) {
            Some(tc) if tc & 0x01 != 0 => Edc::Crc,
            _ => Edc::Lrc,
        }
    }

    /// The raw first TA for T=15, when present (7816-3 §8.3).
    fn t15_ta(&self) -> Option<u8> {
        self.first_specific(15, |g| g.ta)
    }

    /// The clock stop indicator X from the first TA for T=15; `None` when absent.
    pub fn clock_stop(&self) -> Option<ClockStop> {
        self.t15_ta().map(|ta| match ta >> 6 {
            0 => ClockStop::NotSupported,
            1 => ClockStop::Low,
            2 => ClockStop::High,
            _ => ClockStop::NoPreference,
        })
    }

    /// The class indicator Y (low 6 bits of the first TA for T=15): bit 1 class A (5 V),
    /// bit 2 class B (3 V), bit 3 class C (1.8 V). `None` when absent.
    pub fn class_indicator(&self) -> Option<u8> {
        self.t15_ta().map(|ta| ta & 0x3F)
    }

    /// The T=0 work waiting time in microseconds at clock `f_khz`, with the ATR's WI and Fi.
    /// `None` when `f_khz` is 0.
    pub fn work_waiting_time_us(&self, f_khz: u32) -> Option<u64> {
        work_waiting_time_us(self.waiting_integer(), self.fi_di().fi, f_khz)
    }

    /// The T=1 block waiting time in microseconds at clock `f_khz`, with the ATR's BWI and
    /// Fi/Di. `None` when `f_khz` is 0.
    pub fn block_waiting_time_us(&self, f_khz: u32) -> Option<u64> {
        let fd = self.fi_di();
        block_waiting_time_us(self.bwi(), fd.fi, fd.di, f_khz)
    }

    /// The T=1 character waiting time in microseconds at clock `f_khz`, with the ATR's CWI and
    /// Fi/Di. `None` when `f_khz` is 0.
    pub fn character_waiting_time_us(&self, f_khz: u32) -> Option<u64> {
        let fd = self.fi_di();
        character_waiting_time_us(self.cwi(), fd.fi, fd.di, f_khz)
    }
}

/// Rounds `num / den` up; `None` when `den` is 0.
fn div_ceil(num: u64, den: u64) -> Option<u64> {
    if den == 0 {
        None
    } else {
        Some(num.div_ceil(den))
    }
}

/// T=0 work waiting time WT = WI × 960 × Fi / f (7816-3 §10.2), in microseconds, rounded up.
/// `None` when `f_khz` is 0.
pub fn work_waiting_time_us(wi: u8, fi: u16, f_khz: u32) -> Option<u64> {
    div_ceil(u64::from(wi) * 960 * u64::from(fi) * 1000, u64::from(f_khz))
}

/// T=1 block waiting time BWT = 11 etu + 2^BWI × 960 × 372 / f (7816-3 §11.4.3), in
/// microseconds, rounded up, with etu = Fi / (Di × f). BWI above 15 is clamped to 15 (values
/// above 9 are reserved). `None` when `f_khz` or `di` is 0.
pub fn block_waiting_time_us(bwi: u8, fi: u16, di: u16, f_khz: u32) -> Option<u64> {
    let f = u64::from(f_khz);
    let d = u64::from(di);
    // The sum over a common denominator Di × f, in nanoseconds × 1000 to stay integral.
    let etu11 = 11 * u64::from(fi) * 1000;
    let wait = (1u64 << bwi.min(15)) * 960 * 372 * 1000 * d;
    div_ceil(etu11 + wait, d.checked_mul(f)?)
}

/// T=1 character waiting time CWT = (11 + 2^CWI) etu (7816-3 §11.4.3), in microseconds,
/// rounded up. `None` when `f_khz` or `di` is 0.
pub fn character_waiting_time_us(cwi: u8, fi: u16, di: u16, f_khz: u32) -> Option<u64> {
    let etus = 11 + (1u64 << cwi.min(15));
    div_ceil(
        etus * u64::from(fi) * 1000,
        u64::from(di).checked_mul(u64::from(f_khz))?,
    )
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    /// SmartCard-HSM, seed.md.
    const SC_HSM: &str = "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA";

    #[test]
    fn protocols_are_listed_once_in_td_order_without_t15() {
        // TD1 = 81 (T=1), TD2 = 81 (T=1 again), TD3 = 80 (T=0), TD4 = 0F (T=15), then TCK.
        let mut v = h("3B 80 81 81 80 0F");
        let tck = v.iter().skip(1).fold(0, |a, b| a ^ b);
        v.push(tck);
        let atr = Atr::parse(&v).unwrap();
        assert_eq!(atr.protocols(), vec![1, 0]);
        assert_eq!(atr.default_protocol(), 1);
        assert!(atr.offers(0) && atr.offers(1) && !atr.offers(15));
    }

    #[test]
    fn smartcard_hsm() {
        let atr = Atr::parse(&h(SC_HSM)).unwrap();
        assert_eq!(atr.raw(), &h(SC_HSM)[..]);
        assert_eq!(atr.convention(), Convention::Direct);
        assert_eq!(atr.t0(), 0xFE);
        // T0 = FE: TA1 TB1 TC1 TD1, K = 14.
        assert_eq!(atr.groups().len(), 3);
        assert_eq!(
            atr.groups()[0],
            InterfaceGroup {
                index: 1,
                protocol: None,
                ta: Some(0x18),
                tb: Some(0x00),
                tc: Some(0x00),
                td: Some(0x81),
            }
        );
        // TD1 = 81: TD2 follows, T=1. TD2 = 31: TA3 TB3 follow, T=1.
        assert_eq!(
            atr.groups()[1],
            InterfaceGroup {
                index: 2,
                protocol: Some(1),
                ta: None,
                tb: None,
                tc: None,
                td: Some(0x31),
            }
        );
        assert_eq!(
            atr.groups()[2],
            InterfaceGroup {
                index: 3,
                protocol: Some(1),
                ta: Some(0xFE),
                tb: Some(0x45),
                tc: None,
                td: None,
            }
        );
        assert_eq!(
            atr.historical(),
            &h("80 31 81 54 48 53 4D 31 73 80 21 40 81 07")[..]
        );
        assert_eq!(atr.tck(), Some(0xFA));
        assert_eq!(atr.protocols(), vec![1]);
        assert_eq!(atr.default_protocol(), 1);
        assert!(!atr.offers(0));
        // TA1 = 18: Fi index 1 (372, 5 MHz), Di index 8 (12).
        assert_eq!(atr.ta1(), Some(0x18));
        let fd = atr.fi_di();
        assert_eq!((fd.fi, fd.f_max_khz, fd.di), (372, 5000, 12));
        assert_eq!(fd.ta1(), 0x18);
        assert_eq!(atr.extra_guard_time(), 0);
        assert_eq!(atr.waiting_integer(), 10);
        assert_eq!(atr.specific_mode(), None);
        assert_eq!(atr.ifsc(), Ok(0xFE));
        assert_eq!((atr.bwi(), atr.cwi()), (4, 5));
        assert_eq!(atr.edc(), Edc::Lrc);
        assert_eq!(atr.clock_stop(), None);
        assert_eq!(atr.class_indicator(), None);
    }

    #[test]
    fn minimal_t0() {
        // Constructed per 7816-3 §8.2: T0 = 02 (no interface bytes, K = 2), no TCK.
        let atr = Atr::parse(&h("3B 02 14 50")).unwrap();
        assert_eq!(atr.groups().len(), 1);
        assert_eq!(atr.groups()[0].ta, None);
        assert_eq!(atr.historical(), &[0x14, 0x50]);
        assert_eq!(atr.tck(), None);
        assert_eq!(atr.protocols(), vec![0]);
        assert_eq!(atr.fi_di(), FiDi::DEFAULT);
        assert_eq!(atr.ifsc(), Ok(32));
        assert_eq!((atr.bwi(), atr.cwi()), (4, 13));
        // WT = 10 × 960 × 372 / 4 MHz = 892.8 ms.
        assert_eq!(atr.work_waiting_time_us(4000), Some(892_800));
        assert_eq!(atr.work_waiting_time_us(0), None);
    }

    #[test]
    fn t0_with_ta1_tb1_tc1() {
        // Gemalto JavaCard style: T0 = 7D (TA1 TB1 TC1, K = 13), TA1 = 96 (Fi 512, Di 32).
        let atr = Atr::parse(&h("3B 7D 96 00 00 80 31 80 65 B0 83 11 17 D6 83 00 90 00")).unwrap();
        let fd = atr.fi_di();
        assert_eq!((fd.fi, fd.f_max_khz, fd.di), (512, 5000, 32));
        assert_eq!(atr.historical().len(), 13);
        assert_eq!(atr.tck(), None);
        assert_eq!(atr.protocols(), vec![0]);
    }

    #[test]
    fn t0_and_t1() {
        // YubiKey NEO: T0 = 8C (TD1, K = 12), TD1 = 80 (TD2, T=0), TD2 = 01 (T=1), TCK 58.
        let atr = Atr::parse(&h("3B 8C 80 01 59 75 62 69 6B 65 79 4E 45 4F 72 33 58")).unwrap();
        assert_eq!(atr.protocols(), vec![0, 1]);
        assert_eq!(atr.default_protocol(), 0);
        assert_eq!(atr.historical(), b"YubikeyNEOr3");
        assert_eq!(atr.tck(), Some(0x58));
        assert_eq!(atr.ifsc(), Ok(32));
        assert_eq!(atr.groups().len(), 3);
        assert_eq!(atr.groups()[2].protocol, Some(1));
    }

    #[test]
    fn specific_mode_and_t1_parameters() {
        // Constructed per 7816-3 §8.3: T0 = 92 (TA1 TD1, K = 2), TA1 = 96, TD1 = 91 (TA2 TD2,
        // T=1), TA2 = 81 (specific T=1, cannot change, explicit), TD2 = 71 (TA3 TB3 TC3, T=1),
        // TA3 = 20 IFSC, TB3 = 45, TC3 = 01 CRC, historical 43 4D, TCK.
        let mut v = h("3B 92 96 91 81 71 20 45 01 43 4D");
        let tck = v.iter().skip(1).fold(0, |a, b| a ^ b);
        v.push(tck);
        let atr = Atr::parse(&v).unwrap();
        assert_eq!(
            atr.specific_mode(),
            Some(SpecificMode {
                protocol: 1,
                can_change: false,
                implicit_parameters: false
            })
        );
        assert_eq!(atr.ifsc(), Ok(0x20));
        assert_eq!(atr.edc(), Edc::Crc);
        assert_eq!((atr.bwi(), atr.cwi()), (4, 5));
        // etu = 512 / (32 × 4 MHz) = 4 µs; BWT = 44 µs + 16 × 960 × 372 / 4 MHz = 1428.48 ms.
        assert_eq!(atr.block_waiting_time_us(4000), Some(1_428_524));
        // CWT = (11 + 32) etu = 172 µs.
        assert_eq!(atr.character_waiting_time_us(4000), Some(172));
    }

    #[test]
    fn t15_global_bytes() {
        // Constructed per 7816-3 §8.3: T0 = 92 (TA1 TD1, K = 2), TA1 = 13 (Fi 372, Di 4),
        // TD1 = 81 (TD2, T=1), TD2 = 1F (TA3, T=15), TA3 = C3 (clock stop in either state,
        // classes A and B), historical 80 00, TCK.
        let mut v = h("3B 92 13 81 1F C3 80 00");
        let tck = v.iter().skip(1).fold(0, |a, b| a ^ b);
        v.push(tck);
        let atr = Atr::parse(&v).unwrap();
        assert_eq!(atr.protocols(), vec![1]);
        assert_eq!(atr.clock_stop(), Some(ClockStop::NoPreference));
        assert_eq!(atr.class_indicator(), Some(0x03));
        let fd = atr.fi_di();
        assert_eq!((fd.fi, fd.di), (372, 4));
    }

    #[test]
    fn inverse_convention() {
        // Inverse convention card (French telephone-card era layout): T0 = 65 (TB1 TC1, K = 5).
        let atr = Atr::parse(&h("3F 65 25 00 2C 09 69 90 00")).unwrap();
        assert_eq!(atr.convention(), Convention::Inverse);
        assert_eq!(atr.groups()[0].tb, Some(0x25));
        assert_eq!(atr.extra_guard_time(), 0);
        assert_eq!(atr.historical(), &h("2C 09 69 90 00")[..]);
        assert_eq!(atr.protocols(), vec![0]);
    }

    #[test]
    fn t0_waiting_integer_and_guard_time() {
        // Constructed: T0 = D0 (TA1 TC1 TD1, K = 0), TA1 = 11, TC1 = 02, TD1 = 40 (TC2, T=0),
        // TC2 = 14 (WI 20). T=0 only: no TCK.
        let atr = Atr::parse(&h("3B D0 11 02 40 14")).unwrap();
        assert_eq!(atr.extra_guard_time(), 2);
        assert_eq!(atr.waiting_integer(), 20);
        assert_eq!(atr.protocols(), vec![0]);
        assert_eq!(atr.work_waiting_time_us(4000), Some(1_785_600));
    }

    #[test]
    fn errors() {
        assert_eq!(Atr::parse(&[]), Err(AtrError::Empty));
        assert_eq!(Atr::parse(&h("3C 00")), Err(AtrError::BadTs(0x3C)));
        assert_eq!(Atr::parse(&h("3B")), Err(AtrError::Truncated));
        // TA1 announced but missing.
        assert_eq!(Atr::parse(&h("3B 10")), Err(AtrError::Truncated));
        // Historical bytes short by one.
        assert_eq!(Atr::parse(&h("3B 02 14")), Err(AtrError::Truncated));
        // T=1 offered, TCK missing.
        let mut hsm = h(SC_HSM);
        hsm.pop();
        assert_eq!(Atr::parse(&hsm), Err(AtrError::MissingTck));
        // Wrong TCK.
        let mut bad = h(SC_HSM);
        if let Some(last) = bad.last_mut() {
            *last ^= 0x01;
        }
        assert_eq!(Atr::parse(&bad), Err(AtrError::BadTck(0x01)));
        // T=0 only with a wrong optional TCK, and with two extra bytes.
        assert_eq!(
            Atr::parse(&h("3B 02 14 50 00")),
            Err(AtrError::BadTck(0x46))
        );
        assert_eq!(
            Atr::parse(&h("3B 02 14 50 00 00")),
            Err(AtrError::TrailingBytes(1))
        );
        assert_eq!(Atr::parse(&[0x3B; 34]), Err(AtrError::TooLong(34)));
        // IFSC FF is reserved.
        // T0 = 80 (TD1), TD1 = 81 (TD2, T=1), TD2 = 11 (TA3, T=1), TA3 = FF, TCK EF.
        let atr = Atr::parse(&h("3B 80 81 11 FF EF")).unwrap();
        assert_eq!(atr.ifsc(), Err(AtrError::InvalidIfsc(0xFF)));
    }

    #[test]
    fn t0_only_with_valid_tck() {
        // XOR of 02 14 50 is 46: a trailing 46 is accepted as an optional TCK.
        let atr = Atr::parse(&h("3B 02 14 50 46")).unwrap();
        assert_eq!(atr.tck(), Some(0x46));
    }

    #[test]
    fn reserved_ta1_falls_back_to_default() {
        // TA1 = 70: Fi index 7 is RFU.
        let atr = Atr::parse(&h("3B 10 70")).unwrap();
        assert!(atr.ta1_is_reserved());
        assert_eq!(atr.fi_di(), FiDi::DEFAULT);
        assert_eq!(FiDi::from_ta1(0x1A), None);
        assert_eq!(FiDi::from_ta1(0xD9).map(|f| (f.fi, f.di)), Some((2048, 20)));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(atr) = Atr::parse(&bytes) {
                prop_assert_eq!(atr.raw(), &bytes[..]);
                let _ = (atr.protocols(), atr.fi_di(), atr.ifsc(), atr.historical());
                let _ = atr.block_waiting_time_us(1);
            }
        }

        #[test]
        fn parse_never_panics_with_valid_ts(
            t0 in any::<u8>(),
            rest in proptest::collection::vec(any::<u8>(), 0..31),
        ) {
            let mut bytes = vec![0x3B, t0];
            bytes.extend(rest);
            if let Ok(atr) = Atr::parse(&bytes) {
                prop_assert_eq!(atr.historical().len(), usize::from(t0 & 0x0F));
            }
        }

        #[test]
        fn built_atr_round_trips(
            ta1 in any::<u8>(),
            tc1 in any::<u8>(),
            ifsc in 1u8..=254,
            tb3 in any::<u8>(),
            hist in proptest::collection::vec(any::<u8>(), 0..15),
        ) {
            // T0: TA1 TC1 TD1 | K; TD1 = 81 (TD2, T=1); TD2 = 31 (TA3 TB3, T=1).
            let k = u8::try_from(hist.len()).unwrap_or(0);
            let mut bytes = vec![0x3B, 0xD0 | k, ta1, tc1, 0x81, 0x31, ifsc, tb3];
            bytes.extend(&hist);
            let tck = bytes.iter().skip(1).fold(0, |a, b| a ^ b);
            bytes.push(tck);
            let atr = Atr::parse(&bytes).unwrap();
            prop_assert_eq!(atr.ta1(), Some(ta1));
            prop_assert_eq!(atr.extra_guard_time(), tc1);
            prop_assert_eq!(atr.ifsc(), Ok(ifsc));
            prop_assert_eq!(atr.bwi(), tb3 >> 4);
            prop_assert_eq!(atr.historical(), &hist[..]);
            prop_assert_eq!(atr.tck(), Some(tck));
        }
    }
}
