//! The simulated card: an ATR, a small ISO/IEC 7816-4 command set and the card side of both
//! transmission protocols at TPDU level (T=0 procedure semantics, T=1 blocks through
//! [`T1Card`]).
//!
//! A T=1 card with a CRC epilogue (an ATR such as [`SEED_CRC_ATR`]) computes it in the form
//! [`CardConfig::crc`] names: libccid's or CRC-16/X-25 ([`CrcForm`]).
//!
//! Commands (ISO/IEC 7816-4 §11 unless noted):
//! - SELECT by AID (P1 04) of [`APPLICATION_AID`]: P2 04 answers the FCP template
//!   `62 07 82 01 78 85 02 01 02`, P2 00 the same content as an FCI template (tag 6F),
//!   P2 0C nothing; SELECT by file id (P1 00 or 02) of the MF 3F00 and the two EFs below.
//! - READ BINARY / UPDATE BINARY (§11.2.3, §11.2.5) on EF 2F02 (32 bytes, read only, SFI 2)
//!   and EF E101 (64 bytes, writable, SFI 1).
//! - GET CHALLENGE (§11.6.3) with any Ne, extended ones too: Ne bytes of the seeded
//!   generator.
//! - GET DATA (§11.4.3) tag 0101: a 300-byte answer (more than a short Le and than any
//!   T=1 IFSD, so it forces `61xx` under T=0 and chaining under T=1); tag 0102: a slow
//!   16-byte answer for which the card asks for waiting time extensions.
//! - GET RESPONSE (§11.4.2 via §5.3.4) for data announced by `61xx`.
//! - VERIFY (§11.5.6): see [`CardApp`].
//!
//! Response shaping: when more data is ready than Ne allows, the card returns Ne bytes and
//! `61xx` (xx = what is left, 00 for 256 or more) and keeps the rest for GET RESPONSE; a
//! command without Le that produced data answers `61xx` alone. Under T=0 a case 2 TPDU
//! asking for more than the card has answers `6Cxx` (7816-3 §10.3.3: re-send with P3 = xx).

use std::cell::RefCell;
use std::rc::Rc;

use crate::proto::apdu::CommandApdu;
use crate::proto::atr::{self, Atr};
use crate::proto::t1::{Block, CrcForm, Edc, Pcb, SKind};
use crate::sim::t1::{Fault as T1Fault, T1Card, T1CardConfig};

/// The SmartCard-HSM ATR of the seed (T=1 only, TA1 18), reference/seed.md.
pub const SEED_ATR: [u8; 24] = [
    0x3B, 0xFE, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D,
    0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0xFA,
];
/// The seed's ATR asking for a CRC epilogue: TD2 31 becomes 71 so that TC3 01 (bit 1: CRC,
/// ISO/IEC 7816-3 §11.4.4) follows TB3, and TCK changes accordingly.
pub const SEED_CRC_ATR: [u8; 25] = [
    0x3B, 0xFE, 0x18, 0x00, 0x00, 0x81, 0x71, 0xFE, 0x45, 0x01, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53,
    0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0xBB,
];
/// A T=0-only ATR: TA1 96 (Fi 512, Di 32), two historical bytes (ISO/IEC 7816-3 §8.2).
pub const T0_ATR: [u8; 5] = [0x3B, 0x12, 0x96, 0x14, 0x50];
/// An ATR offering T=0 (first, the default) and T=1, with TCK (ISO/IEC 7816-3 §8.2.5).
pub const T0_T1_ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];
/// The AID both applications answer SELECT for (the SmartCard-HSM AID of the seed).
pub const APPLICATION_AID: [u8; 11] = [
    0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01,
];
/// The PIN of the PIN card, six ASCII digits.
pub const PIN: &[u8] = b"123456";
/// VERIFY attempts of the PIN card before it blocks.
pub const PIN_TRIES: u8 = 3;
/// Length of the answer to GET DATA 0101.
pub const LONG_RESPONSE_LEN: usize = 300;
/// Waiting time extensions the card asks for before answering GET DATA 0102.
pub const SLOW_WTX_COUNT: u8 = 2;
/// The BWT multiplier of those requests.
pub const SLOW_WTX_MULTIPLIER: u8 = 2;
/// How many executed commands [`CardLog`] keeps.
const LOG_CAPACITY: usize = 64;

/// The application on the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardApp {
    /// The seed card (reference/seed.md): VERIFY answers `6E00` before SELECT and `6700`
    /// after it whatever the data, exactly as the seed's trace shows.
    Seed,
    /// A card for PIN flows: PIN "123456"; a wrong PIN answers `63Cx` with the tries left
    /// and the third wrong one blocks it (`6983`); VERIFY without data reports the state
    /// (`9000` verified, `63Cx` not, `6983` blocked). Needs no SELECT.
    Pin,
}

/// What card sits in a slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CardConfig {
    /// The application.
    pub app: CardApp,
    /// The ATR; `None` is [`SEED_ATR`]. T=0, T=1 or both follow from it.
    pub atr: Option<Vec<u8>>,
    /// The CRC form the card computes when its ATR selects a CRC epilogue for T=1.
    pub crc: CrcForm,
}

impl CardConfig {
    /// The seed card with its ATR.
    pub fn seed() -> Self {
        CardConfig {
            app: CardApp::Seed,
            atr: None,
            crc: CrcForm::default(),
        }
    }

    /// The PIN card with the seed's ATR.
    pub fn pin() -> Self {
        CardConfig {
            app: CardApp::Pin,
            atr: None,
            crc: CrcForm::default(),
        }
    }

    /// The same card with another ATR.
    pub fn with_atr(mut self, atr: impl Into<Vec<u8>>) -> Self {
        self.atr = Some(atr.into());
        self
    }

    /// The same card computing T=1 CRCs in `form` (it needs an ATR that selects CRC, such
    /// as [`SEED_CRC_ATR`]).
    pub fn with_crc(mut self, form: CrcForm) -> Self {
        self.crc = form;
        self
    }

    /// The ATR the card sends.
    pub fn atr_bytes(&self) -> Vec<u8> {
        self.atr.clone().unwrap_or_else(|| SEED_ATR.to_vec())
    }
}

/// A deterministic xorshift64 generator (Marsaglia 2003, shifts 13, 7, 17): the card's
/// challenges are the same for the same seed, so tests can compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator; seed 0 (a fixed point of xorshift) is replaced by a constant.
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// One elementary file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ef {
    fid: u16,
    sfi: u8,
    writable: bool,
    content: Vec<u8>,
}

/// The commands a card executed, for tests (VERIFY data is replaced by `*` bytes).
pub type CardLog = Vec<Vec<u8>>;

/// The application state, shared by the T=0 path, the APDU path and the T=1 card engine.
#[derive(Debug)]
pub(crate) struct Applet {
    app: CardApp,
    selected: bool,
    current_ef: Option<usize>,
    files: Vec<Ef>,
    pin_tries: u8,
    pin_verified: bool,
    pending: Vec<u8>,
    rng: XorShift,
    log: CardLog,
    /// Set by the slow command, taken by the transport that must ask for time.
    slow: bool,
}

fn sw(sw: u16) -> Vec<u8> {
    sw.to_be_bytes().to_vec()
}

impl Applet {
    pub(crate) fn new(app: CardApp, seed: u64) -> Self {
        let notice = b"card-relay simulated card 2F02!!";
        Applet {
            app,
            selected: false,
            current_ef: None,
            files: vec![
                Ef {
                    fid: 0x2F02,
                    sfi: 2,
                    writable: false,
                    content: notice.to_vec(),
                },
                Ef {
                    fid: 0xE101,
                    sfi: 1,
                    writable: true,
                    content: vec![0; 64],
                },
            ],
            pin_tries: PIN_TRIES,
            pin_verified: false,
            pending: Vec::new(),
            rng: XorShift::new(seed),
            log: Vec::new(),
            slow: false,
        }
    }

    /// Cold reset: volatile state goes, files and the PIN try counter stay.
    pub(crate) fn reset(&mut self) {
        self.selected = false;
        self.current_ef = None;
        self.pin_verified = false;
        self.pending.clear();
        self.slow = false;
    }

    pub(crate) fn log(&self) -> &CardLog {
        &self.log
    }

    /// Whether the last command was the slow one (cleared by the call).
    pub(crate) fn take_slow(&mut self) -> bool {
        std::mem::take(&mut self.slow)
    }

    /// Runs a command APDU given as bytes (APDU level and T=1): `data || SW1 SW2`.
    pub(crate) fn apdu(&mut self, bytes: &[u8]) -> Vec<u8> {
        match CommandApdu::parse(bytes) {
            Ok(cmd) => self.run(&cmd, false),
            Err(_) => sw(0x6700),
        }
    }

    /// Runs a T=0 command TPDU `CLA INS P1 P2 P3 [data]` (ISO/IEC 7816-3 §10.3.2): five
    /// bytes are case 1 or 2 with Ne = P3 (00 = 256); more are case 3 with Lc = P3.
    pub(crate) fn tpdu(&mut self, tpdu: &[u8]) -> Vec<u8> {
        let [cla, ins, p1, p2, p3, data @ ..] = tpdu else {
            return sw(0x6700);
        };
        let mut cmd = CommandApdu::new(*cla, *ins, *p1, *p2);
        if data.is_empty() {
            cmd.ne = Some(if *p3 == 0 { 256 } else { u32::from(*p3) });
        } else if data.len() == usize::from(*p3) {
            cmd.data = data.to_vec();
        } else {
            return sw(0x6700);
        }
        self.run(&cmd, true)
    }

    fn record(&mut self, cmd: &CommandApdu) {
        let mut redacted = cmd.clone();
        if matches!(cmd.ins, 0x20 | 0x24) {
            redacted.data = vec![b'*'; cmd.data.len()];
        }
        if self.log.len() == LOG_CAPACITY {
            self.log.remove(0);
        }
        self.log.push(redacted.encode().unwrap_or_default());
    }

    fn run(&mut self, cmd: &CommandApdu, t0: bool) -> Vec<u8> {
        self.record(cmd);
        if cmd.ins == 0xC0 {
            let data = std::mem::take(&mut self.pending);
            if data.is_empty() {
                return sw(0x6985);
            }
            return self.shape(cmd.ne, data, 0x9000, t0);
        }
        self.pending.clear();
        let (data, status) = self.execute(cmd);
        self.shape(cmd.ne, data, status, t0)
    }

    /// Fits `data` to Ne (see the module documentation).
    fn shape(&mut self, ne: Option<u32>, mut data: Vec<u8>, status: u16, t0: bool) -> Vec<u8> {
        if data.is_empty() {
            return sw(status);
        }
        let Some(ne) = ne.and_then(|n| usize::try_from(n).ok()) else {
            self.pending = data;
            return self.more_data();
        };
        if t0 && status == 0x9000 && data.len() < ne {
            // 7816-3 §10.3.3: wrong Le, the card tells how many bytes it has.
            let available = u8::try_from(data.len()).unwrap_or(0);
            self.pending.clear();
            return vec![0x6C, available];
        }
        if data.len() > ne {
            self.pending = data.split_off(ne);
            let mut out = data;
            out.extend(self.more_data());
            return out;
        }
        data.extend(sw(status));
        data
    }

    /// `61xx` for the pending data: xx bytes left, 00 for 256 or more.
    fn more_data(&self) -> Vec<u8> {
        vec![0x61, u8::try_from(self.pending.len()).unwrap_or(0)]
    }

    fn execute(&mut self, cmd: &CommandApdu) -> (Vec<u8>, u16) {
        if cmd.cla & 0x70 != 0 {
            return (Vec::new(), 0x6E00);
        }
        match cmd.ins {
            0xA4 => self.select(cmd),
            0xB0 => self.read_binary(cmd),
            0xD6 => (Vec::new(), self.update_binary(cmd)),
            0x84 => match (cmd.p1, cmd.p2, cmd.ne) {
                (0, 0, Some(ne)) => {
                    let n = usize::try_from(ne).unwrap_or(0);
                    (self.rng.bytes(n), 0x9000)
                }
                (0, 0, None) => (Vec::new(), 0x6700),
                _ => (Vec::new(), 0x6A86),
            },
            0xCA => match (cmd.p1, cmd.p2) {
                (0x01, 0x01) => {
                    let data = (0..LONG_RESPONSE_LEN)
                        .map(|i| u8::try_from(i % 251).unwrap_or(0))
                        .collect();
                    (data, 0x9000)
                }
                (0x01, 0x02) => {
                    self.slow = true;
                    ((0x10..0x20).collect(), 0x9000)
                }
                _ => (Vec::new(), 0x6A88),
            },
            0x20 => (Vec::new(), self.verify(cmd)),
            _ => (Vec::new(), 0x6D00),
        }
    }

    fn select(&mut self, cmd: &CommandApdu) -> (Vec<u8>, u16) {
        const CONTENT: [u8; 7] = [0x82, 0x01, 0x78, 0x85, 0x02, 0x01, 0x02];
        match cmd.p1 {
            0x04 if cmd.data == APPLICATION_AID => {
                self.selected = true;
                self.current_ef = None;
                let tag = match cmd.p2 {
                    0x0C => return (Vec::new(), 0x9000),
                    0x04 => 0x62,
                    0x00 => 0x6F,
                    _ => return (Vec::new(), 0x6A86),
                };
                let mut fci = vec![tag, 0x07];
                fci.extend_from_slice(&CONTENT);
                (fci, 0x9000)
            }
            0x04 => (Vec::new(), 0x6A82),
            0x00 | 0x02 => {
                let [hi, lo] = cmd.data.as_slice() else {
                    return (Vec::new(), 0x6700);
                };
                let fid = u16::from_be_bytes([*hi, *lo]);
                let (size, index) = if fid == 0x3F00 {
                    (0, None)
                } else {
                    match self.files.iter().position(|f| f.fid == fid) {
                        Some(i) => (self.files.get(i).map_or(0, |f| f.content.len()), Some(i)),
                        None => return (Vec::new(), 0x6A82),
                    }
                };
                self.current_ef = index;
                if cmd.p2 == 0x0C {
                    return (Vec::new(), 0x9000);
                }
                let [s0, s1] = u16::try_from(size).unwrap_or(0).to_be_bytes();
                let kind = if index.is_some() { 0x01 } else { 0x38 };
                let fcp = vec![
                    0x62, 0x0B, 0x80, 0x02, s0, s1, 0x82, 0x01, kind, 0x83, 0x02, *hi, *lo,
                ];
                (fcp, 0x9000)
            }
            _ => (Vec::new(), 0x6A86),
        }
    }

    /// The EF a READ/UPDATE BINARY addresses and the offset: P1 bit 8 set means an SFI in
    /// P1 bits 5..1 and the offset in P2, else a 15-bit offset in the current EF.
    fn binary_target(&mut self, cmd: &CommandApdu) -> Result<(usize, usize), u16> {
        if cmd.p1 & 0x80 != 0 {
            let sfi = cmd.p1 & 0x1F;
            let index = self
                .files
                .iter()
                .position(|f| f.sfi == sfi)
                .ok_or(0x6A82_u16)?;
            self.current_ef = Some(index);
            return Ok((index, usize::from(cmd.p2)));
        }
        let index = self.current_ef.ok_or(0x6986_u16)?;
        Ok((index, usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]))))
    }

    fn read_binary(&mut self, cmd: &CommandApdu) -> (Vec<u8>, u16) {
        let (index, offset) = match self.binary_target(cmd) {
            Ok(t) => t,
            Err(status) => return (Vec::new(), status),
        };
        let Some(ne) = cmd.ne else {
            return (Vec::new(), 0x6700);
        };
        let content = self.files.get(index).map(|f| f.content.as_slice());
        let content = content.unwrap_or_default();
        if offset > content.len() {
            return (Vec::new(), 0x6B00);
        }
        let want = usize::try_from(ne).unwrap_or(usize::MAX);
        let end = content.len().min(offset.saturating_add(want));
        let data = content.get(offset..end).unwrap_or_default().to_vec();
        // 6282: end of file reached before Ne bytes (a "maximum" Le of 256 or 65536 reads
        // what there is).
        let status = if data.len() < want && ne != 256 && ne != 65536 {
            0x6282
        } else {
            0x9000
        };
        (data, status)
    }

    fn update_binary(&mut self, cmd: &CommandApdu) -> u16 {
        let (index, offset) = match self.binary_target(cmd) {
            Ok(t) => t,
            Err(status) => return status,
        };
        let Some(file) = self.files.get_mut(index) else {
            return 0x6A82;
        };
        if !file.writable {
            return 0x6982;
        }
        if offset > file.content.len() {
            return 0x6B00;
        }
        let end = offset.saturating_add(cmd.data.len());
        match file.content.get_mut(offset..end) {
            Some(target) => {
                target.copy_from_slice(&cmd.data);
                0x9000
            }
            None => 0x6700,
        }
    }

    fn verify(&mut self, cmd: &CommandApdu) -> u16 {
        match self.app {
            CardApp::Seed if !self.selected => 0x6E00,
            CardApp::Seed if cmd.data.is_empty() => 0x63C0 | u16::from(self.pin_tries),
            CardApp::Seed => 0x6700,
            CardApp::Pin => {
                if cmd.p1 != 0 {
                    return 0x6A86;
                }
                if self.pin_tries == 0 {
                    return 0x6983;
                }
                if cmd.data.is_empty() {
                    return if self.pin_verified {
                        0x9000
                    } else {
                        0x63C0 | u16::from(self.pin_tries)
                    };
                }
                if cmd.data == PIN {
                    self.pin_tries = PIN_TRIES;
                    self.pin_verified = true;
                    return 0x9000;
                }
                self.pin_verified = false;
                self.pin_tries -= 1;
                if self.pin_tries == 0 {
                    0x6983
                } else {
                    0x63C0 | u16::from(self.pin_tries)
                }
            }
        }
    }
}

type Handler = Box<dyn FnMut(&[u8]) -> Vec<u8>>;

/// The card's S(WTX request) in flight and the answer it holds back.
#[derive(Debug)]
struct WtxHold {
    left: u8,
    request: Vec<u8>,
    held: Vec<u8>,
}

/// A card in a slot: ATR, application, and the protocol state of the current activation.
#[derive(Debug)]
pub(crate) struct SimCard {
    pub(crate) config: CardConfig,
    pub(crate) atr: Atr,
    pub(crate) applet: Rc<RefCell<Applet>>,
    /// The protocol in use: the ATR's first offered one, changed by PPS or SetParameters.
    pub(crate) protocol: u8,
    t1: Option<T1Card<Handler>>,
    /// T=1 faults injected before the T=1 card side exists, applied when it is created.
    t1_faults: Vec<(usize, T1Fault)>,
    wtx: Option<WtxHold>,
    /// IFSD the card assumes before an S(IFS request) (the reader's when it negotiates).
    pub(crate) t1_ifsd: u8,
    /// Whether the first block after the ATR may still be a PPS request.
    pub(crate) pps_allowed: bool,
}

/// Why a card cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The configured ATR does not decode.
    #[error("bad atr")]
    Atr(#[source] atr::AtrError),
    /// The ATR offers neither T=0 nor T=1.
    #[error("atr offers neither t=0 nor t=1")]
    NoProtocol,
}

impl SimCard {
    pub(crate) fn new(config: CardConfig, seed: u64) -> Result<Self, CardError> {
        let atr = Atr::parse(&config.atr_bytes()).map_err(CardError::Atr)?;
        let protocol = atr.default_protocol();
        if protocol > 1 {
            return Err(CardError::NoProtocol);
        }
        atr.ifsc().map_err(CardError::Atr)?;
        let applet = Rc::new(RefCell::new(Applet::new(config.app, seed)));
        Ok(SimCard {
            config,
            atr,
            applet,
            protocol,
            t1: None,
            t1_faults: Vec::new(),
            wtx: None,
            t1_ifsd: 32,
            pps_allowed: false,
        })
    }

    /// Cold reset at power on: protocol back to the ATR's default, T=1 state dropped.
    pub(crate) fn reset(&mut self, t1_ifsd: u8) {
        self.protocol = self.atr.default_protocol();
        self.t1 = None;
        self.wtx = None;
        self.t1_ifsd = t1_ifsd;
        self.pps_allowed = true;
        if let Ok(mut applet) = self.applet.try_borrow_mut() {
            applet.reset();
        }
    }

    /// Injects `fault` on the card's T=1 answer to the host block `n` blocks from now.
    pub(crate) fn inject_t1(&mut self, n: usize, fault: T1Fault) {
        match self.t1.as_mut() {
            Some(t1) => t1.inject(n, fault),
            None => self.t1_faults.push((n, fault)),
        }
    }

    /// Whether the ATR offers protocol `t`.
    pub(crate) fn offers(&self, t: u8) -> bool {
        self.atr.offers(t)
    }

    /// Switches protocol (PPS or SetParameters).
    pub(crate) fn select_protocol(&mut self, t: u8) {
        if t != self.protocol {
            self.t1 = None;
            self.wtx = None;
        }
        self.protocol = t;
    }

    /// Runs a whole APDU the way an APDU-level reader does (the reader runs the protocol).
    /// Returns the response and whether the card was slow.
    pub(crate) fn apdu(&mut self, bytes: &[u8]) -> (Vec<u8>, bool) {
        match self.applet.try_borrow_mut() {
            Ok(mut applet) => {
                let rsp = applet.apdu(bytes);
                (rsp, applet.take_slow())
            }
            Err(_) => (sw(0x6F00), false),
        }
    }

    /// Runs a T=0 TPDU; returns `data || SW1 SW2` and whether the card was slow (it sent
    /// NULL procedure bytes, which the reader turns into time extensions).
    pub(crate) fn t0(&mut self, tpdu: &[u8]) -> (Vec<u8>, bool) {
        match self.applet.try_borrow_mut() {
            Ok(mut applet) => {
                let rsp = applet.tpdu(tpdu);
                (rsp, applet.take_slow())
            }
            Err(_) => (sw(0x6F00), false),
        }
    }

    fn edc(&self) -> Edc {
        match self.atr.edc() {
            atr::Edc::Lrc => Edc::Lrc,
            atr::Edc::Crc => Edc::Crc(self.config.crc),
        }
    }

    /// Takes one T=1 block from the host and answers one block, or `None` when the card
    /// stays silent (a block it cannot make sense of at all).
    ///
    /// The slow command makes the card send [`SLOW_WTX_COUNT`] S(WTX request)s
    /// (ISO/IEC 7816-3 §11.6.2.2 rule 3) before the I-block of its answer: that answer is
    /// held back here until each request is echoed by an S(WTX response).
    pub(crate) fn t1(&mut self, rx: &[u8]) -> Option<Vec<u8>> {
        let edc = self.edc();
        if let Some(hold) = self.wtx.as_mut() {
            let echoed = matches!(
                Block::decode(rx, edc),
                Ok(Block { pcb: Pcb::S { kind: SKind::Wtx, response: true }, inf, .. })
                    if inf == [SLOW_WTX_MULTIPLIER]
            );
            if !echoed {
                return Some(hold.request.clone());
            }
            hold.left = hold.left.saturating_sub(1);
            if hold.left > 0 {
                return Some(hold.request.clone());
            }
            return self.wtx.take().map(|h| h.held);
        }
        if self.t1.is_none() {
            let config = T1CardConfig {
                ifsc: self.atr.ifsc().unwrap_or(32),
                ifsd: self.t1_ifsd,
                edc,
                ..T1CardConfig::default()
            };
            let shared = Rc::clone(&self.applet);
            let handler: Handler = Box::new(move |apdu: &[u8]| match shared.try_borrow_mut() {
                Ok(mut applet) => applet.apdu(apdu),
                Err(_) => sw(0x6F00),
            });
            let mut card = T1Card::new(config, handler);
            for (n, fault) in self.t1_faults.drain(..) {
                card.inject(n, fault);
            }
            self.t1 = Some(card);
        }
        let answer = self.t1.as_mut()?.on_block(rx)?;
        let slow = self
            .applet
            .try_borrow_mut()
            .map(|mut a| a.take_slow())
            .unwrap_or(false);
        if slow {
            let request = Block::s(0, SKind::Wtx, false, SLOW_WTX_MULTIPLIER).encode(edc);
            self.wtx = Some(WtxHold {
                left: SLOW_WTX_COUNT,
                request: request.clone(),
                held: answer,
            });
            return Some(request);
        }
        Some(answer)
    }

    /// A PIN pad at TPDU level with T=1 sends the completed VERIFY in one I-block built
    /// from the host's bTeoPrologue (CCID Rev 1.1 §6.1.11.4): its NAD and PCB, with LEN and
    /// the EDC computed for the APDU the pad completed. `None` when the prologue is not an
    /// unchained I-block, the APDU does not fit one block, or the card stays silent.
    pub(crate) fn reader_block(&mut self, prologue: [u8; 3], apdu: &[u8]) -> Option<Vec<u8>> {
        let pcb = Pcb::from_byte(prologue[1]).ok()?;
        if !matches!(pcb, Pcb::I { more: false, .. }) || apdu.len() > usize::from(u8::MAX - 1) {
            return None;
        }
        let block = Block {
            nad: prologue[0],
            pcb,
            inf: apdu.to_vec(),
        }
        .encode(self.edc());
        self.t1(&block)
    }

    /// The executed commands.
    pub(crate) fn log(&self) -> CardLog {
        self.applet
            .try_borrow()
            .map(|a| a.log().clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    #[test]
    fn seed_trace() {
        // reference/seed.md: the OCF trace of the seed session.
        let mut a = Applet::new(CardApp::Seed, 1);
        assert_eq!(a.apdu(&h("00 20 00 81")), h("6E 00"));
        assert_eq!(
            a.apdu(&h("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00")),
            h("62 07 82 01 78 85 02 01 02 90 00")
        );
        assert_eq!(a.apdu(&h("00 20 00 81 06 36 34 38 32 31 39")), h("67 00"));
        let r = a.apdu(&h("00 84 00 00 45"));
        assert_eq!((r.len(), &r[69..]), (71, &[0x90, 0x00][..]));
        assert_ne!(a.apdu(&h("00 84 00 00 45")), r);
        assert_eq!(a.log().len(), 5);
        assert_eq!(a.log()[2], h("00 20 00 81 06 2A 2A 2A 2A 2A 2A"));
    }

    #[test]
    fn select_variants() {
        let mut a = Applet::new(CardApp::Seed, 1);
        let aid = "0B E8 2B 06 01 04 01 81 C3 1F 02 01";
        assert_eq!(a.apdu(&h(&format!("00 A4 04 0C {aid}"))), h("90 00"));
        assert_eq!(
            a.apdu(&h(&format!("00 A4 04 00 {aid} 00"))),
            h("6F 07 82 01 78 85 02 01 02 90 00")
        );
        assert_eq!(a.apdu(&h("00 A4 04 00 02 A0 00 00")), h("6A 82"));
        // Case 3 SELECT with FCI: 61 09, then GET RESPONSE.
        assert_eq!(a.apdu(&h(&format!("00 A4 04 04 {aid}"))), h("61 09"));
        assert_eq!(
            a.apdu(&h("00 C0 00 00 09")),
            h("62 07 82 01 78 85 02 01 02 90 00")
        );
        assert_eq!(a.apdu(&h("00 C0 00 00 09")), h("69 85"));
    }

    #[test]
    fn files() {
        let mut a = Applet::new(CardApp::Pin, 1);
        assert_eq!(a.apdu(&h("00 B0 00 00 04")), h("69 86"));
        assert_eq!(
            a.apdu(&h("00 A4 00 00 02 2F 02 00")),
            h("62 0B 80 02 00 20 82 01 01 83 02 2F 02 90 00")
        );
        assert_eq!(a.apdu(&h("00 B0 00 00 04")), h("63 61 72 64 90 00"));
        assert_eq!(a.apdu(&h("00 B0 00 1E 04")), h("21 21 62 82"));
        assert_eq!(a.apdu(&h("00 B0 00 21 01")), h("6B 00"));
        assert_eq!(a.apdu(&h("00 D6 00 00 01 00")), h("69 82"));
        assert_eq!(a.apdu(&h("00 D6 81 3E 02 AA BB")), h("90 00"));
        assert_eq!(a.apdu(&h("00 D6 81 3F 02 AA BB")), h("67 00"));
        assert_eq!(a.apdu(&h("00 B0 81 3D 00")), h("00 AA BB 90 00"));
        assert_eq!(a.apdu(&h("00 A4 00 0C 02 3F 00")), h("90 00"));
        assert_eq!(a.apdu(&h("00 A4 00 0C 02 12 34")), h("6A 82"));
    }

    #[test]
    fn pin_card() {
        let mut a = Applet::new(CardApp::Pin, 1);
        assert_eq!(a.apdu(&h("00 20 00 81")), h("63 C3"));
        assert_eq!(a.apdu(&h("00 20 00 81 06 31 32 33 34 35 36")), h("90 00"));
        assert_eq!(a.apdu(&h("00 20 00 81")), h("90 00"));
        assert_eq!(a.apdu(&h("00 20 00 81 06 31 31 31 31 31 31")), h("63 C2"));
        assert_eq!(a.apdu(&h("00 20 00 81")), h("63 C2"));
        assert_eq!(a.apdu(&h("00 20 00 81 06 31 32 33 34 35 36")), h("90 00"));
        assert_eq!(a.apdu(&h("00 20 00 81 01 31")), h("63 C2"));
        assert_eq!(a.apdu(&h("00 20 00 81 01 31")), h("63 C1"));
        assert_eq!(a.apdu(&h("00 20 00 81 01 31")), h("69 83"));
        assert_eq!(a.apdu(&h("00 20 00 81 06 31 32 33 34 35 36")), h("69 83"));
        assert_eq!(a.apdu(&h("00 20 00 81")), h("69 83"));
        a.reset();
        assert_eq!(a.apdu(&h("00 20 00 81")), h("69 83"));
    }

    #[test]
    fn long_and_challenge() {
        let mut a = Applet::new(CardApp::Seed, 7);
        // Short Le 00: 256 bytes, then 61 2C (44 left) for GET RESPONSE.
        let r = a.apdu(&h("00 CA 01 01 00"));
        assert_eq!((r.len(), &r[256..]), (258, &[0x61, 0x2C][..]));
        let rest = a.apdu(&h("00 C0 00 00 2C"));
        assert_eq!(
            (rest.len(), rest[0], &rest[44..]),
            (46, 5, &[0x90, 0x00][..])
        );
        // Extended Le: the whole answer.
        let r = a.apdu(&h("00 CA 01 01 00 00 00"));
        assert_eq!(r.len(), LONG_RESPONSE_LEN + 2);
        // GET CHALLENGE with extended Le 0x1000 and 0000 (65536).
        assert_eq!(a.apdu(&h("00 84 00 00 00 10 00")).len(), 0x1002);
        assert_eq!(a.apdu(&h("00 84 00 00 00 00 00")).len(), 65538);
        assert_eq!(a.apdu(&h("00 84 00 00")), h("67 00"));
        assert_eq!(a.apdu(&h("00 84 01 00 08")), h("6A 86"));
        assert_eq!(a.apdu(&h("00 CA 01 03 00")), h("6A 88"));
        assert_eq!(a.apdu(&h("00 12 00 00")), h("6D 00"));
        assert_eq!(a.apdu(&h("F0 84 00 00 08")), h("6E 00"));
        assert_eq!(a.apdu(&h("00 84")), h("67 00"));
    }

    #[test]
    fn t0_procedure_semantics() {
        let mut a = Applet::new(CardApp::Seed, 1);
        // Case 4 as a case 3 TPDU: 61 09, then GET RESPONSE with P3 09.
        let select = "00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01";
        assert_eq!(a.tpdu(&h(select)), h("61 09"));
        assert_eq!(
            a.tpdu(&h("00 C0 00 00 09")),
            h("62 07 82 01 78 85 02 01 02 90 00")
        );
        // GET RESPONSE with a wrong P3: 6C 09 after a new 61 09.
        assert_eq!(a.tpdu(&h(select)), h("61 09"));
        assert_eq!(a.tpdu(&h("00 C0 00 00 00")), h("6C 09"));
        // A long answer under T=0: 256 bytes and 61 2C.
        let r = a.tpdu(&h("00 CA 01 01 00"));
        assert_eq!(&r[256..], &[0x61, 0x2C]);
        assert_eq!(a.tpdu(&h("00 A4 04")), h("67 00"));
        assert_eq!(a.tpdu(&h("00 A4 04 04 05 01")), h("67 00"));
    }

    #[test]
    fn xorshift_is_deterministic() {
        let mut a = XorShift::new(42);
        let mut b = XorShift::new(42);
        assert_eq!(a.bytes(13), b.bytes(13));
        assert_ne!(XorShift::new(0).next_u64(), 0);
        assert_ne!(a.bytes(8), XorShift::new(43).bytes(8));
    }
}
