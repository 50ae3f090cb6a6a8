//! Reader profiles for the simulator: the built-in `default` and the libccid dumps by name.
//!
//! A dump is found by its file name in libccid's `readers/` folder, with or without `.txt`
//! (`GemPCTwin` and `GemPCTwin.txt` are the same profile). Natively the folder is
//! `$CARD_RELAY_SHARED/ccid-readers`, else `<crate>/../shared/ccid-readers`; in a browser
//! the text comes from the demo's profiles data file (`www/generated/profiles.json`,
//! built by `scripts/profiles.mjs`).

use super::profile::ReaderProfile;

use super::{Profile, SimError};

/// The name of the built-in profile.
pub const DEFAULT_NAME: &str = "default";

/// The built-in reader, written as libccid's `parse` prints a dump: a single-slot
/// class-0x0B TPDU reader with automatic parameter configuration, voltage, clock, baud
/// rate and PPS (dwFeatures 0x000100BA: the host still sends SetParameters and S(IFS)),
/// dwMaxCCIDMessageLength 271, T=0 and T=1, no PIN pad. 1209:0001 is the pid.codes test
/// identifier.
pub const DEFAULT_DUMP: &str = " idVendor: 0x1209
  iManufacturer: card-relay
 idProduct: 0x0001
  iProduct: Simulated CCID Reader
 bcdDevice: 1.00 (firmware release?)
 bLength: 9
 bDescriptorType: 4
 bInterfaceNumber: 0
 bAlternateSetting: 0
 bNumEndpoints: 3
  bulk-IN, bulk-OUT and Interrupt-IN
 bInterfaceClass: 0x0B [Chip Card Interface Device Class (CCID)]
 bInterfaceSubClass: 0
 bInterfaceProtocol: 0
  bulk transfer, optional interrupt-IN (CCID)
 Can't get iInterface string
 CCID Class Descriptor
  bLength: 0x36
  bDescriptorType: 0x21
  bcdCCID: 1.10
  bMaxSlotIndex: 0x00
  bVoltageSupport: 0x07
  dwProtocols: 0x0000 0x0003
  dwDefaultClock: 4.000 MHz
  dwMaximumClock: 4.000 MHz
  bNumClockSupported: 0
  dwDataRate: 10752 bps
  dwMaxDataRate: 344086 bps
  bNumDataRatesSupported: 0
  dwMaxIFSD: 254
  dwSynchProtocols: 0x00000000
  dwMechanical: 0x00000000
  dwFeatures: 0x000100BA
  dwMaxCCIDMessageLength: 271 bytes
  bClassGetResponse: 0xFF
  bClassEnvelope: 0xFF
  wLcdLayout: 0x0000
  bPINSupport: 0x00
  bMaxCCIDBusySlots: 1
";

/// A profile name without a trailing `.txt`.
pub fn normalize_name(name: &str) -> &str {
    name.strip_suffix(".txt").unwrap_or(name)
}

/// The built-in profile, parsed.
pub fn default_profile() -> ReaderProfile {
    // INVARIANT: DEFAULT_DUMP is a constant the unit tests parse; a parse failure here is a
    // bug in this file, never caused by input.
    match ReaderProfile::parse(DEFAULT_DUMP) {
        Ok(p) => p,
        Err(e) => panic!("built-in profile does not parse: {e}"),
    }
}

impl Profile {
    /// A dump given by name and text (the name loses a trailing `.txt`).
    pub fn dump(name: &str, text: impl Into<String>) -> Self {
        Profile::Dump {
            name: normalize_name(name).to_owned(),
            text: text.into(),
        }
    }

    /// The profile's name: `default` or the dump's file name without `.txt`.
    pub fn name(&self) -> &str {
        match self {
            Profile::Default => DEFAULT_NAME,
            Profile::Dump { name, .. } => name,
        }
    }

    /// The parsed profile (the first device of a dump).
    pub fn parse(&self) -> Result<ReaderProfile, SimError> {
        match self {
            Profile::Default => Ok(default_profile()),
            Profile::Dump { text, .. } => Ok(ReaderProfile::parse(text)?),
        }
    }
}

/// Native access to the dump folder.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::path::PathBuf;

    use super::{normalize_name, Profile, SimError, DEFAULT_NAME};

    /// The folder holding libccid's dumps ([`crate::sim::profile::corpus_dir`]).
    pub fn dump_dir() -> PathBuf {
        crate::sim::profile::corpus_dir()
    }

    /// Loads a profile by name: `default`, or `<dump_dir>/<name>[.txt]`. Names with a path
    /// separator or a leading dot are refused. A dump that is not UTF-8 is read lossily.
    pub fn load(name: &str) -> Result<Profile, SimError> {
        let name = normalize_name(name);
        if name == DEFAULT_NAME {
            return Ok(Profile::Default);
        }
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
            return Err(SimError::UnknownProfile(name.to_owned()));
        }
        let path = dump_dir().join(format!("{name}.txt"));
        let bytes = std::fs::read(&path).map_err(|_| SimError::UnknownProfile(name.to_owned()))?;
        Ok(Profile::dump(name, String::from_utf8_lossy(&bytes)))
    }

    /// Every dump of the folder as (name without `.txt`, text), sorted by name.
    pub fn load_all() -> std::io::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dump_dir())? {
            let path = entry?.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            let Some(name) = file.strip_suffix(".txt") else {
                continue;
            };
            let bytes = std::fs::read(&path)?;
            out.push((
                name.to_owned(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::{dump_dir, load, load_all};

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::descriptor::{find_ccid_interfaces, ExchangeLevel};

    #[test]
    fn default_profile_is_a_tpdu_reader() {
        let p = default_profile();
        assert_eq!((p.vendor_id, p.product_id), (0x1209, 0x0001));
        let found = find_ccid_interfaces(&p.configuration_bytes().unwrap()).unwrap();
        let d = &found[0].descriptor;
        assert_eq!(found[0].class, 0x0B);
        assert_eq!(d.exchange_level(), ExchangeLevel::Tpdu);
        assert_eq!(d.max_message_length(), 271);
        assert_eq!(d.features.bits(), 0x0001_00BA);
    }

    #[test]
    fn names() {
        assert_eq!(normalize_name("GemPCTwin.txt"), "GemPCTwin");
        assert_eq!(normalize_name("GemPCTwin"), "GemPCTwin");
        assert_eq!(Profile::dump("X.txt", "").name(), "X");
        assert_eq!(Profile::Default.name(), "default");
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn load_by_name() {
        assert_eq!(load("default").unwrap(), Profile::Default);
        let a = load("GemPCTwin").unwrap();
        let b = load("GemPCTwin.txt").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.parse().unwrap().product_id, 0x3437);
        assert!(matches!(load("../x"), Err(SimError::UnknownProfile(_))));
        assert!(matches!(
            load("NoSuchReader"),
            Err(SimError::UnknownProfile(_))
        ));
    }
}
