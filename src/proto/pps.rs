//! Choosing the transmission parameters after the ATR: protocol, PPS (ISO/IEC 7816-3 §9),
//! the CCID SetParameters values (CCID Rev 1.1 §6.1.7) and the power-on voltages (§6.1.1),
//! following what libccid does for the same reader features (webusb-ccid.md §2.2).
//!
//! The plan only decides; the reader layer sends the PPS exchange as a TPDU, feeds the card's
//! answer to [`check_pps_response`], then sends SetParameters with the Fi/Di that came out.

use crate::proto::atr::{Atr, AtrError, Convention, Edc, FiDi, DEFAULT_TA1};
use crate::proto::bytes::Cursor;
use crate::proto::ccid::{PowerSelect, ProtocolParameters, T0Parameters, T1Parameters};
use crate::proto::descriptor::{ExchangeLevel, Features};

// The dwFeatures bits are the class descriptor's own ([`Features`]); the exchange level
// comes from [`Features::exchange_level`].
const FEATURE_AUTO_VOLTAGE: u32 = Features::AUTO_VOLTAGE;
const FEATURE_AUTO_NEGOTIATION: u32 = Features::AUTO_PARAMETER_NEGOTIATION;
const FEATURE_AUTO_PPS: u32 = Features::AUTO_PPS;
const FEATURE_AUTO_IFSD: u32 = Features::AUTO_IFSD;

/// bVoltageSupport bit for 5 V.
pub const VOLTAGE_SUPPORT_5V: u8 = 0x01;
/// bVoltageSupport bit for 3 V.
pub const VOLTAGE_SUPPORT_3V: u8 = 0x02;
/// bVoltageSupport bit for 1.8 V.
pub const VOLTAGE_SUPPORT_1V8: u8 = 0x04;

/// The initial byte PPSS of every PPS message (7816-3 §9.2).
pub const PPSS: u8 = 0xFF;

/// Why no parameter plan could be made, or a PPS exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PpsError {
    /// The protocol to use is neither T=0 nor T=1.
    #[error("unsupported protocol t={0}")]
    UnsupportedProtocol(u8),
    /// An ATR value needed for the plan is invalid.
    #[error("invalid atr parameter")]
    Atr(#[from] AtrError),
    /// A PPS message ends early.
    #[error("truncated pps")]
    Truncated,
    /// PPSS is not FF.
    #[error("bad ppss {0:#04x}")]
    BadPpss(u8),
    /// The XOR of PPSS .. PCK is not zero.
    #[error("bad pck")]
    BadPck,
    /// Bytes after PCK.
    #[error("{0} trailing bytes after pps")]
    TrailingBytes(usize),
    /// The card's PPS answer is not a valid answer to the request (7816-3 §9.3).
    #[error("pps rejected: {0}")]
    Rejected(&'static str),
}

/// The voltages to try at power on, in order (libccid `IFDHPowerICC`): `[Auto]` when the
/// reader selects the voltage itself (dwFeatures 0x08), else 5 V, 3 V, 1.8 V as far as
/// bVoltageSupport lists them; a descriptor listing none gives `[Auto]`. The next voltage is
/// tried when the card stays mute at the previous one.
pub fn power_on_sequence(features: u32, voltage_support: u8) -> Vec<PowerSelect> {
    if features & FEATURE_AUTO_VOLTAGE != 0 {
        return vec![PowerSelect::Auto];
    }
    let all = [
        (VOLTAGE_SUPPORT_5V, PowerSelect::V5),
        (VOLTAGE_SUPPORT_3V, PowerSelect::V3),
        (VOLTAGE_SUPPORT_1V8, PowerSelect::V1_8),
    ];
    let list: Vec<PowerSelect> = all
        .iter()
        .filter(|(bit, _)| voltage_support & bit != 0)
        .map(|&(_, v)| v)
        .collect();
    if list.is_empty() {
        vec![PowerSelect::Auto]
    } else {
        list
    }
}

/// A PPS request or answer (7816-3 §9.2). Both directions share the layout:
///
/// ```text
/// PPSS  FF
/// PPS0  bit 5: PPS1 present, bit 6: PPS2 present, bit 7: PPS3 present, bits 1-4: T
/// PPS1  Fi/Di indices as TA1 (optional)
/// PPS2  SPU (optional)
/// PPS3  RFU (optional)
/// PCK   XOR of PPSS .. PCK is zero
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PpsRequest {
    /// The protocol T (0 .. 15).
    pub protocol: u8,
    /// PPS1, the Fi/Di byte, if present.
    pub pps1: Option<u8>,
    /// PPS2, if present.
    pub pps2: Option<u8>,
    /// PPS3, if present.
    pub pps3: Option<u8>,
}

impl PpsRequest {
    /// The PPS0 byte.
    fn pps0(&self) -> u8 {
        let mut pps0 = self.protocol & 0x0F;
        if self.pps1.is_some() {
            pps0 |= 0x10;
        }
        if self.pps2.is_some() {
            pps0 |= 0x20;
        }
        if self.pps3.is_some() {
            pps0 |= 0x40;
        }
        pps0
    }

    /// The encoded length: 3 to 6 bytes.
    pub fn encoded_len(&self) -> usize {
        3 + [self.pps1, self.pps2, self.pps3]
            .iter()
            .filter(|b| b.is_some())
            .count()
    }

    /// Encodes `PPSS PPS0 [PPS1] [PPS2] [PPS3] PCK`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.push(PPSS);
        out.push(self.pps0());
        out.extend([self.pps1, self.pps2, self.pps3].into_iter().flatten());
        let pck = out.iter().fold(0u8, |a, b| a ^ b);
        out.push(pck);
        out
    }

    /// Decodes a PPS message, checking PPSS and PCK.
    pub fn decode(bytes: &[u8]) -> Result<PpsRequest, PpsError> {
        let mut cur = Cursor::new(bytes);
        let ppss = cur.u8().ok_or(PpsError::Truncated)?;
        if ppss != PPSS {
            return Err(PpsError::BadPpss(ppss));
        }
        let pps0 = cur.u8().ok_or(PpsError::Truncated)?;
        let mut optional = |bit: u8| -> Result<Option<u8>, PpsError> {
            if pps0 & bit != 0 {
                cur.u8().map(Some).ok_or(PpsError::Truncated)
            } else {
                Ok(None)
            }
        };
        let pps1 = optional(0x10)?;
        let pps2 = optional(0x20)?;
        let pps3 = optional(0x40)?;
        cur.u8().ok_or(PpsError::Truncated)?;
        if !cur.is_empty() {
            return Err(PpsError::TrailingBytes(cur.remaining()));
        }
        if bytes.iter().fold(0u8, |a, b| a ^ b) != 0 {
            return Err(PpsError::BadPck);
        }
        Ok(PpsRequest {
            protocol: pps0 & 0x0F,
            pps1,
            pps2,
            pps3,
        })
    }
}

/// What a successful PPS exchange settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PpsOutcome {
    /// The protocol T.
    pub protocol: u8,
    /// The Fi/Di to use: the requested ones when PPS1 was echoed, the defaults when the card
    /// left PPS1 out.
    pub fi_di: FiDi,
}

/// Checks the card's answer to a PPS request (7816-3 §9.3).
///
/// The answer must echo PPS0's T; PPS1, PPS2 and PPS3 are each either echoed (accepted) or
/// absent (PPS1 absent: Fd = 372 and Dd = 1 stay). Anything else means the card did not
/// accept the request: the reader must then deactivate the card or fall back (7816-3 §9.3).
pub fn check_pps_response(request: &PpsRequest, response: &[u8]) -> Result<PpsOutcome, PpsError> {
    let answer = PpsRequest::decode(response)?;
    if answer.protocol != request.protocol {
        return Err(PpsError::Rejected("protocol not echoed"));
    }
    let echoed_or_absent = |req: Option<u8>, ans: Option<u8>| ans.is_none() || ans == req;
    if !echoed_or_absent(request.pps1, answer.pps1) {
        return Err(PpsError::Rejected("pps1 not echoed"));
    }
    if !echoed_or_absent(request.pps2, answer.pps2) || !echoed_or_absent(request.pps3, answer.pps3)
    {
        return Err(PpsError::Rejected("pps2 or pps3 not echoed"));
    }
    let fi_di = answer
        .pps1
        .and_then(FiDi::from_ta1)
        .unwrap_or(FiDi::DEFAULT);
    Ok(PpsOutcome {
        protocol: answer.protocol,
        fi_di,
    })
}

/// What to do between the ATR and the first APDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterPlan {
    /// The protocol to use: 0 or 1.
    pub protocol: u8,
    /// The Fi/Di aimed for (TA1, or the defaults).
    pub fi_di: FiDi,
    /// The PPS request the host must send, `None` when none is needed or the reader does it.
    pub pps: Option<PpsRequest>,
    /// The PC_to_RDR_SetParameters values, `None` when the reader negotiates itself
    /// (dwFeatures 0x40). When a PPS is sent, replace Fi/Di by the outcome with
    /// [`ProtocolParameters::with_findex_dindex`].
    pub set_parameters: Option<ProtocolParameters>,
    /// Whether the host must send S(IFS request) before the first T=1 block: T=1 at TPDU
    /// level without automatic IFSD exchange (dwFeatures 0x400).
    pub send_ifs: bool,
}

/// Plans protocol, PPS and SetParameters for a card in a reader (7816-3 §6.3 and §9; libccid
/// `IFDHSetProtocolParameters`).
///
/// - Protocol: the one of the specific mode (TA2) if any; else `preferred` if the card offers
///   it; else the card's first offered protocol. It must be T=0 or T=1.
/// - Fi/Di: from TA1 unless TA2 says the parameters are implicit or TA1 is reserved; then the
///   defaults.
/// - PPS: none when the reader negotiates (0x40) or does PPS itself (0x80), in specific mode,
///   or when the default protocol is used at default Fi/Di (nothing to change). Otherwise
///   PPS0 names the protocol and PPS1 carries TA1 when TA1 is not the default.
/// - SetParameters: none with 0x40; else built from the ATR (convention, TC1, WI or
///   BWI/CWI/EDC/IFSC, clock stop from the first TA for T=15, NAD 0).
///
/// `voltage_support` (bVoltageSupport) does not change the plan: it is taken for symmetry with
/// [`power_on_sequence`], which runs before the ATR exists. The plan does not check the
/// reader's data rates or clock; the caller may drop PPS1 when
/// the resulting rate is above dwMaxDataRate (see [`data_rate_bps`]).
pub fn plan(
    atr: &Atr,
    features: u32,
    _voltage_support: u8,
    preferred: Option<u8>,
) -> Result<ParameterPlan, PpsError> {
    let specific = atr.specific_mode();
    let protocol = match (specific, preferred) {
        (Some(mode), _) => mode.protocol,
        (None, Some(p)) if atr.offers(p) => p,
        (None, _) => atr.default_protocol(),
    };
    if protocol > 1 {
        return Err(PpsError::UnsupportedProtocol(protocol));
    }
    let implicit = specific.is_some_and(|m| m.implicit_parameters);
    let fi_di = if implicit { FiDi::DEFAULT } else { atr.fi_di() };
    let default_rate = fi_di.ta1() == DEFAULT_TA1;
    let reader_negotiates = features & (FEATURE_AUTO_NEGOTIATION | FEATURE_AUTO_PPS) != 0;
    let nothing_to_change = default_rate && protocol == atr.default_protocol();
    let pps = if reader_negotiates || specific.is_some() || nothing_to_change {
        None
    } else {
        Some(PpsRequest {
            protocol,
            pps1: (!default_rate).then_some(fi_di.ta1()),
            pps2: None,
            pps3: None,
        })
    };
    let convention_bit = match atr.convention() {
        Convention::Direct => 0x00,
        Convention::Inverse => 0x02,
    };
    let clock_stop = atr.clock_stop().map_or(0, |c| c.ccid_value());
    let set_parameters = if features & FEATURE_AUTO_NEGOTIATION != 0 {
        None
    } else if protocol == 0 {
        Some(ProtocolParameters::T0(T0Parameters {
            findex_dindex: fi_di.ta1(),
            tcckst0: convention_bit,
            guard_time: atr.extra_guard_time(),
            waiting_integer: atr.waiting_integer(),
            clock_stop,
        }))
    } else {
        let edc_bit = match atr.edc() {
            Edc::Lrc => 0x00,
            Edc::Crc => 0x01,
        };
        Some(ProtocolParameters::T1(T1Parameters {
            findex_dindex: fi_di.ta1(),
            tcckst1: 0x10 | convention_bit | edc_bit,
            guard_time: atr.extra_guard_time(),
            waiting_integers: atr.bwi() << 4 | (atr.cwi() & 0x0F),
            clock_stop,
            ifsc: atr.ifsc()?,
            nad: 0,
        }))
    };
    let send_ifs = protocol == 1
        && features & FEATURE_AUTO_IFSD == 0
        && Features(features).exchange_level() == ExchangeLevel::Tpdu;
    Ok(ParameterPlan {
        protocol,
        fi_di,
        pps,
        set_parameters,
        send_ifs,
    })
}

/// The bit rate D/F × f in bits per second for a clock of `clock_khz` (7816-3 §7.1).
pub fn data_rate_bps(fi_di: &FiDi, clock_khz: u32) -> u64 {
    u64::from(clock_khz) * 1000 * u64::from(fi_di.di) / u64::from(fi_di.fi.max(1))
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    /// SmartCard-HSM, seed.md.
    fn sc_hsm() -> Atr {
        Atr::parse(&h(
            "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA",
        ))
        .unwrap()
    }

    /// YubiKey NEO: T=0 and T=1, no TA1.
    fn neo() -> Atr {
        Atr::parse(&h("3B 8C 80 01 59 75 62 69 6B 65 79 4E 45 4F 72 33 58")).unwrap()
    }

    /// Gemalto-style T=0 card with TA1 = 96, TC1 = 00.
    fn gemalto() -> Atr {
        Atr::parse(&h("3B 7D 96 00 00 80 31 80 65 B0 83 11 17 D6 83 00 90 00")).unwrap()
    }

    const TPDU: u32 = 0x0001_0000;

    #[test]
    fn sc_hsm_on_a_tpdu_reader() {
        // GemPC Twin style: TPDU level, auto voltage, no auto PPS (webusb-ccid.md §4).
        let p = plan(&sc_hsm(), TPDU | FEATURE_AUTO_VOLTAGE, 0x07, None).unwrap();
        assert_eq!(p.protocol, 1);
        // TA1 = 18 is not the default: PPS FF 11 18 PCK.
        let pps = p.pps.unwrap();
        assert_eq!(pps.encode(), h("FF 11 18 F6"));
        assert_eq!(pps.encoded_len(), 4);
        // libccid's T=1 layout: 18, TCCKS 10 (LRC, direct), N 00, BWI/CWI 45, clock stop 00,
        // IFSC FE, NAD 00.
        let sp = p.set_parameters.unwrap();
        assert_eq!(sp.protocol_num(), 1);
        assert_eq!(sp.data(), h("18 10 00 45 00 FE 00"));
        assert!(p.send_ifs);
        // The card accepts: SetParameters keeps 18.
        let outcome = check_pps_response(&pps, &h("FF 11 18 F6")).unwrap();
        assert_eq!(outcome.fi_di.ta1(), 0x18);
        assert_eq!(sp.clone().with_findex_dindex(outcome.fi_di.ta1()), sp);
        // The card leaves PPS1 out: back to the defaults.
        let outcome = check_pps_response(&pps, &h("FF 01 FE")).unwrap();
        assert_eq!(outcome.fi_di, FiDi::DEFAULT);
        assert_eq!(
            sp.with_findex_dindex(outcome.fi_di.ta1()).data(),
            h("11 10 00 45 00 FE 00")
        );
    }

    #[test]
    fn reader_negotiates() {
        // Short/extended APDU reader with auto negotiation (0x40) and auto IFSD.
        let features = 0x0004_0000 | FEATURE_AUTO_NEGOTIATION | FEATURE_AUTO_IFSD | 0xBA;
        let p = plan(&sc_hsm(), features, 0x07, None).unwrap();
        assert_eq!(p.pps, None);
        assert_eq!(p.set_parameters, None);
        assert!(!p.send_ifs);
        // Auto PPS (0x80) only: no PPS from the host, but SetParameters still.
        let p = plan(&sc_hsm(), TPDU | FEATURE_AUTO_PPS, 0x07, None).unwrap();
        assert_eq!(p.pps, None);
        assert!(p.set_parameters.is_some());
        // TPDU with auto IFSD: no S(IFS).
        let p = plan(&sc_hsm(), TPDU | FEATURE_AUTO_IFSD, 0x07, None).unwrap();
        assert!(!p.send_ifs);
    }

    #[test]
    fn t0_defaults_need_no_pps() {
        // YubiKey NEO, default protocol T=0, no TA1: nothing to negotiate. libccid's T=0
        // default block is 11 00 00 0A 00.
        let p = plan(&neo(), TPDU, 0x07, None).unwrap();
        assert_eq!(p.protocol, 0);
        assert_eq!(p.pps, None);
        assert_eq!(p.set_parameters.unwrap().data(), h("11 00 00 0A 00"));
        assert!(!p.send_ifs);
        // Preferring T=1 needs a PPS naming T=1, without PPS1: FF 01 FE.
        let p = plan(&neo(), TPDU, 0x07, Some(1)).unwrap();
        assert_eq!(p.protocol, 1);
        assert_eq!(p.pps.unwrap().encode(), h("FF 01 FE"));
        assert_eq!(p.set_parameters.unwrap().data(), h("11 10 00 4D 00 20 00"));
        assert!(p.send_ifs);
        // A preference the card does not offer falls back to the default.
        let p = plan(&gemalto(), TPDU, 0x07, Some(1)).unwrap();
        assert_eq!(p.protocol, 0);
    }

    #[test]
    fn t0_with_ta1() {
        let p = plan(&gemalto(), TPDU, 0x07, None).unwrap();
        assert_eq!(p.pps.unwrap().encode(), h("FF 10 96 79"));
        assert_eq!(p.set_parameters.unwrap().data(), h("96 00 00 0A 00"));
    }

    #[test]
    fn specific_mode() {
        // TA2 = 81: specific T=1, explicit parameters (TA1 = 96): no PPS, TA1 used, CRC.
        let mut v = h("3B 92 96 91 81 71 20 45 01 43 4D");
        v.push(v.iter().skip(1).fold(0, |a, b| a ^ b));
        let atr = Atr::parse(&v).unwrap();
        let p = plan(&atr, TPDU, 0x07, Some(0)).unwrap();
        assert_eq!(p.protocol, 1);
        assert_eq!(p.pps, None);
        assert_eq!(p.set_parameters.unwrap().data(), h("96 11 00 45 00 20 00"));
        // TA2 = 91: implicit parameters, so the defaults.
        let mut v = h("3B 92 96 91 91 71 20 45 01 43 4D");
        v.push(v.iter().skip(1).fold(0, |a, b| a ^ b));
        let p = plan(&Atr::parse(&v).unwrap(), TPDU, 0x07, None).unwrap();
        assert_eq!(p.fi_di, FiDi::DEFAULT);
    }

    #[test]
    fn inverse_convention_and_clock_stop() {
        // 3F, TC1 = 00, T=0: TCCKS bit 1.
        let p = plan(
            &Atr::parse(&h("3F 65 25 00 2C 09 69 90 00")).unwrap(),
            TPDU,
            1,
            None,
        )
        .unwrap();
        assert_eq!(p.set_parameters.unwrap().data(), h("11 02 00 0A 00"));
        // T=15 TA3 = C3: clock stop either state.
        let mut v = h("3B 92 13 81 1F C3 80 00");
        v.push(v.iter().skip(1).fold(0, |a, b| a ^ b));
        let p = plan(&Atr::parse(&v).unwrap(), TPDU, 7, None).unwrap();
        assert_eq!(p.set_parameters.unwrap().data(), h("13 10 00 4D 03 20 00"));
    }

    #[test]
    fn plan_errors() {
        // Only T=14 offered: T0 = 80, TD1 = 0E, TCK 8E.
        let atr = Atr::parse(&h("3B 80 0E 8E")).unwrap();
        assert_eq!(
            plan(&atr, TPDU, 7, None),
            Err(PpsError::UnsupportedProtocol(14))
        );
        // IFSC FF is reserved.
        let atr = Atr::parse(&h("3B 80 81 11 FF EF")).unwrap();
        assert_eq!(
            plan(&atr, TPDU, 7, None),
            Err(PpsError::Atr(AtrError::InvalidIfsc(0xFF)))
        );
    }

    #[test]
    fn voltages() {
        use PowerSelect::*;
        assert_eq!(power_on_sequence(FEATURE_AUTO_VOLTAGE, 0x07), vec![Auto]);
        assert_eq!(power_on_sequence(0, 0x07), vec![V5, V3, V1_8]);
        assert_eq!(power_on_sequence(0, 0x06), vec![V3, V1_8]);
        assert_eq!(power_on_sequence(0, 0x00), vec![Auto]);
        let selects: Vec<u8> = [Auto, V5, V3, V1_8].iter().map(|v| v.byte()).collect();
        assert_eq!(selects, vec![0, 1, 2, 3]);
    }

    #[test]
    fn pps_codec_and_checks() {
        // 7816-3 §9.2: all optional bytes.
        let full = PpsRequest {
            protocol: 1,
            pps1: Some(0x96),
            pps2: Some(0x00),
            pps3: Some(0x00),
        };
        let bytes = full.encode();
        assert_eq!(bytes, h("FF 71 96 00 00 18"));
        assert_eq!(full.encoded_len(), 6);
        assert_eq!(PpsRequest::decode(&bytes), Ok(full));
        assert_eq!(PpsRequest::decode(&h("FF 11 18")), Err(PpsError::Truncated));
        assert_eq!(
            PpsRequest::decode(&h("FE 01 FE")),
            Err(PpsError::BadPpss(0xFE))
        );
        assert_eq!(PpsRequest::decode(&h("FF 01 FF")), Err(PpsError::BadPck));
        assert_eq!(
            PpsRequest::decode(&h("FF 01 FE 00")),
            Err(PpsError::TrailingBytes(1))
        );
        let req = PpsRequest {
            protocol: 1,
            pps1: Some(0x18),
            pps2: None,
            pps3: None,
        };
        // Another protocol or another PPS1 in the answer: rejected.
        assert!(matches!(
            check_pps_response(&req, &h("FF 10 18 F7")),
            Err(PpsError::Rejected(_))
        ));
        assert!(matches!(
            check_pps_response(&req, &h("FF 11 11 FF")),
            Err(PpsError::Rejected(_))
        ));
        assert!(matches!(
            check_pps_response(&req, &h("FF 21 00 DE")),
            Err(PpsError::Rejected(_))
        ));
    }

    #[test]
    fn data_rates() {
        // 4 MHz at Fd/Dd: 10752 bps; TA1 = 18 at 4 MHz: 129032 bps.
        assert_eq!(data_rate_bps(&FiDi::DEFAULT, 4000), 10752);
        assert_eq!(data_rate_bps(&FiDi::from_ta1(0x18).unwrap(), 4000), 129_032);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let _ = PpsRequest::decode(&bytes);
            let req = PpsRequest { protocol: 1, pps1: Some(0x18), pps2: None, pps3: None };
            let _ = check_pps_response(&req, &bytes);
            if let Ok(atr) = Atr::parse(&bytes) {
                let _ = plan(&atr, 0, 7, Some(1));
            }
        }

        #[test]
        fn pps_round_trips(
            protocol in 0u8..16,
            pps1 in proptest::option::of(any::<u8>()),
            pps2 in proptest::option::of(any::<u8>()),
            pps3 in proptest::option::of(any::<u8>()),
        ) {
            let req = PpsRequest { protocol, pps1, pps2, pps3 };
            let enc = req.encode();
            prop_assert_eq!(enc.len(), req.encoded_len());
            prop_assert_eq!(PpsRequest::decode(&enc), Ok(req));
            // An echo is always accepted.
            prop_assert!(check_pps_response(&req, &enc).is_ok());
        }
    }
}
