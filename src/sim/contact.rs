//! The simulated card at APDU level, for card channels that carry APDUs themselves: a
//! virtual card behind a PC/SC virtual reader driver (vsmartcard's vpcd) answers exactly
//! like the card in the simulated CCID reader, because it is the same card model.
//!
//! A card whose ATR offers T=1 (the seed's) takes whole command APDUs; a T=0-only card takes
//! T=0 TPDUs (ISO/IEC 7816-3 §10.3.2) and answers `61xx` / `6Cxx` as a T=0 card does, so the
//! host must follow them up (the PC/SC channel of the agent does).

use super::card::{Applet, CardConfig, CardError, CardLog};
use crate::proto::atr::Atr;

/// A simulated card reached at APDU (T=1) or TPDU (T=0) level.
#[derive(Debug)]
pub struct ContactCard {
    atr: Vec<u8>,
    t0: bool,
    applet: Applet,
}

impl ContactCard {
    /// The card of `config`; `seed` seeds its challenges.
    pub fn new(config: &CardConfig, seed: u64) -> Result<Self, CardError> {
        let atr = config.atr_bytes();
        let parsed = Atr::parse(&atr).map_err(CardError::Atr)?;
        let protocol = parsed.default_protocol();
        if protocol > 1 {
            return Err(CardError::NoProtocol);
        }
        Ok(ContactCard {
            t0: !parsed.offers(1),
            atr,
            applet: Applet::new(config.app, seed),
        })
    }

    /// The ATR.
    pub fn atr(&self) -> &[u8] {
        &self.atr
    }

    /// Whether the card speaks T=0 only (then [`Self::transmit`] takes TPDUs).
    pub fn is_t0(&self) -> bool {
        self.t0
    }

    /// A reset (power on, warm or cold reset): volatile state goes, files and PIN tries stay.
    pub fn reset(&mut self) {
        self.applet.reset();
    }

    /// Runs one command (an APDU, or a TPDU on a T=0 card) and answers `data || SW1 SW2`.
    pub fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        if self.t0 {
            self.applet.tpdu(command)
        } else {
            self.applet.apdu(command)
        }
    }

    /// The commands the card ran (VERIFY data masked).
    pub fn log(&self) -> &CardLog {
        self.applet.log()
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::ContactCard;
    use crate::proto::hex::h;
    use crate::sim::card::{CardConfig, T0_ATR};

    #[test]
    fn the_seed_card_answers_apdus_like_the_seed() {
        let mut card = ContactCard::new(&CardConfig::seed(), 1).unwrap();
        assert!(!card.is_t0());
        assert_eq!(card.transmit(&h("00 20 00 81")), h("6E 00"));
        let fci = card.transmit(&h("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00"));
        assert_eq!(fci, h("62 07 82 01 78 85 02 01 02 90 00"));
        assert_eq!(card.transmit(&h("00 84 00 00 45")).len(), 69 + 2);
        card.reset();
        assert_eq!(card.transmit(&h("00 20 00 81")), h("6E 00"));
    }

    #[test]
    fn a_t0_card_wants_get_response() {
        let mut card = ContactCard::new(&CardConfig::seed().with_atr(T0_ATR), 1).unwrap();
        assert!(card.is_t0());
        // Case 4 sent as case 3 (no Le): the FCI waits behind 61 09.
        let select = card.transmit(&h("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01"));
        assert_eq!(select, h("61 09"));
        assert_eq!(
            card.transmit(&h("00 C0 00 00 09")),
            h("62 07 82 01 78 85 02 01 02 90 00")
        );
    }
}
