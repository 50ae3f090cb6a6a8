//! The CCID class descriptor (CCID §5.1).

use super::{dt, DescriptorError};
use crate::proto::bytes::Cursor;

/// The exchange level of a reader: bits 16–18 of dwFeatures (CCID §5.1, table 5.1-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeLevel {
    /// 0x00000: character level; the host runs the whole T=0/T=1 protocol byte by byte.
    Character,
    /// 0x10000: TPDU level; the host does T=0 TPDU mapping or the T=1 block protocol.
    Tpdu,
    /// 0x20000: short APDU level; the reader does the transmission protocol.
    ShortApdu,
    /// 0x40000: short and extended APDU level; long APDUs are chained over XfrBlocks.
    ExtendedApdu,
    /// Any other combination of the three bits (undefined).
    Unknown(u32),
}

impl ExchangeLevel {
    /// The name the JavaScript API and the agent show: `tpdu`, `short-apdu`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::Character => "character",
            Self::Tpdu => "tpdu",
            Self::ShortApdu => "short-apdu",
            Self::ExtendedApdu => "extended-apdu",
            Self::Unknown(_) => "unknown",
        }
    }
}

/// dwFeatures of the CCID class descriptor (CCID §5.1, table 5.1-1; libccid ccid.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Features(pub u32);

impl Features {
    /// 0x02: automatic parameter configuration based on ATR data.
    pub const AUTO_PARAMETERS_FROM_ATR: u32 = 0x0000_0002;
    /// 0x04: automatic activation of the ICC on insertion.
    pub const AUTO_ACTIVATION: u32 = 0x0000_0004;
    /// 0x08: automatic ICC voltage selection.
    pub const AUTO_VOLTAGE: u32 = 0x0000_0008;
    /// 0x10: automatic ICC clock frequency change according to the parameters.
    pub const AUTO_CLOCK: u32 = 0x0000_0010;
    /// 0x20: automatic baud rate change according to frequency and Fi, Di.
    pub const AUTO_BAUD: u32 = 0x0000_0020;
    /// 0x40: automatic parameter negotiation made by the CCID (host must not do PPS).
    pub const AUTO_PARAMETER_NEGOTIATION: u32 = 0x0000_0040;
    /// 0x80: automatic PPS made by the CCID according to the current parameters.
    pub const AUTO_PPS: u32 = 0x0000_0080;
    /// 0x100: the CCID can set the ICC in clock stop mode.
    pub const CLOCK_STOP: u32 = 0x0000_0100;
    /// 0x200: NAD value other than 00 accepted (T=1).
    pub const NAD: u32 = 0x0000_0200;
    /// 0x400: automatic IFSD exchange as first exchange (T=1).
    pub const AUTO_IFSD: u32 = 0x0000_0400;
    /// 0x800: ICCD token (CCID Rev 1.1 errata / ICCD spec).
    pub const ICCD_TOKEN: u32 = 0x0000_0800;
    /// Mask of the exchange level bits.
    pub const EXCHANGE_LEVEL_MASK: u32 = 0x0007_0000;
    /// 0x100000: USB wake-up signaling on card insertion and removal.
    pub const USB_WAKE_UP: u32 = 0x0010_0000;

    /// The raw dwFeatures.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `mask` is set.
    pub fn contains(self, mask: u32) -> bool {
        self.0 & mask == mask
    }

    /// 0x02, see [`Features::AUTO_PARAMETERS_FROM_ATR`].
    pub fn auto_parameters_from_atr(self) -> bool {
        self.contains(Self::AUTO_PARAMETERS_FROM_ATR)
    }

    /// 0x04, see [`Features::AUTO_ACTIVATION`].
    pub fn auto_activation(self) -> bool {
        self.contains(Self::AUTO_ACTIVATION)
    }

    /// 0x08, see [`Features::AUTO_VOLTAGE`].
    pub fn auto_voltage(self) -> bool {
        self.contains(Self::AUTO_VOLTAGE)
    }

    /// 0x10, see [`Features::AUTO_CLOCK`].
    pub fn auto_clock(self) -> bool {
        self.contains(Self::AUTO_CLOCK)
    }

    /// 0x20, see [`Features::AUTO_BAUD`].
    pub fn auto_baud(self) -> bool {
        self.contains(Self::AUTO_BAUD)
    }

    /// 0x40, see [`Features::AUTO_PARAMETER_NEGOTIATION`].
    pub fn auto_parameter_negotiation(self) -> bool {
        self.contains(Self::AUTO_PARAMETER_NEGOTIATION)
    }

    /// 0x80, see [`Features::AUTO_PPS`].
    pub fn auto_pps(self) -> bool {
        self.contains(Self::AUTO_PPS)
    }

    /// 0x100, see [`Features::CLOCK_STOP`].
    pub fn clock_stop(self) -> bool {
        self.contains(Self::CLOCK_STOP)
    }

    /// 0x200, see [`Features::NAD`].
    pub fn nad(self) -> bool {
        self.contains(Self::NAD)
    }

    /// 0x400, see [`Features::AUTO_IFSD`].
    pub fn auto_ifsd(self) -> bool {
        self.contains(Self::AUTO_IFSD)
    }

    /// 0x800, see [`Features::ICCD_TOKEN`].
    pub fn iccd_token(self) -> bool {
        self.contains(Self::ICCD_TOKEN)
    }

    /// 0x100000, see [`Features::USB_WAKE_UP`].
    pub fn usb_wake_up(self) -> bool {
        self.contains(Self::USB_WAKE_UP)
    }

    /// The exchange level (bits 16–18).
    pub fn exchange_level(self) -> ExchangeLevel {
        match self.0 & Self::EXCHANGE_LEVEL_MASK {
            0x0000_0000 => ExchangeLevel::Character,
            0x0001_0000 => ExchangeLevel::Tpdu,
            0x0002_0000 => ExchangeLevel::ShortApdu,
            0x0004_0000 => ExchangeLevel::ExtendedApdu,
            other => ExchangeLevel::Unknown(other),
        }
    }
}

/// The 54-byte CCID class descriptor (CCID Rev 1.1 §5.1, table 5.1-1).
///
/// Byte offsets are given per field; multi-byte fields are little-endian. bLength (offset 0)
/// is always 54 and is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CcidClassDescriptor {
    /// Offset 1, bDescriptorType: 0x21, or 0xFF on some pre-standard readers.
    pub descriptor_type: u8,
    /// Offset 2, bcdCCID: the CCID release number, 0x0110 for Rev 1.1.
    pub bcd_ccid: u16,
    /// Offset 4, bMaxSlotIndex: highest slot number (0 for a single-slot reader).
    pub max_slot_index: u8,
    /// Offset 5, bVoltageSupport: bit 0 5.0 V, bit 1 3.0 V, bit 2 1.8 V.
    pub voltage_support: u8,
    /// Offset 6, dwProtocols: bit 0 T=0, bit 1 T=1.
    pub protocols: u32,
    /// Offset 10, dwDefaultClock: default card clock in kHz.
    pub default_clock: u32,
    /// Offset 14, dwMaximumClock: maximum card clock in kHz.
    pub maximum_clock: u32,
    /// Offset 18, bNumClockSupported: number of clock frequencies GET_CLOCK_FREQUENCIES
    /// returns (0: only the default and maximum).
    pub num_clock_supported: u8,
    /// Offset 19, dwDataRate: default data rate in bit/s.
    pub data_rate: u32,
    /// Offset 23, dwMaxDataRate: maximum data rate in bit/s.
    pub max_data_rate: u32,
    /// Offset 27, bNumDataRatesSupported: number of rates GET_DATA_RATES returns.
    pub num_data_rates_supported: u8,
    /// Offset 28, dwMaxIFSD: largest IFSD the reader accepts for T=1.
    pub max_ifsd: u32,
    /// Offset 32, dwSynchProtocols: bit 0 2-wire, bit 1 3-wire, bit 2 I2C.
    pub synch_protocols: u32,
    /// Offset 36, dwMechanical: bit 0 accept, 1 eject, 2 capture, 3 lock/unlock.
    pub mechanical: u32,
    /// Offset 40, dwFeatures: automatisms and exchange level.
    pub features: Features,
    /// Offset 44, dwMaxCCIDMessageLength: longest bulk message, 10-byte header included.
    pub max_ccid_message_length: u32,
    /// Offset 48, bClassGetResponse: class byte of automatic GET RESPONSE, 0xFF = echo.
    pub class_get_response: u8,
    /// Offset 49, bClassEnvelope: class byte of automatic ENVELOPE, 0xFF = echo.
    pub class_envelope: u8,
    /// Offset 50, wLcdLayout: 0 none, else lines in the high byte and characters per line
    /// in the low byte.
    pub lcd_layout: u16,
    /// Offset 52, bPINSupport: bit 0 PIN verification, bit 1 PIN modification.
    pub pin_support: u8,
    /// Offset 53, bMaxCCIDBusySlots: how many slots may run a command at the same time.
    pub max_ccid_busy_slots: u8,
}

impl CcidClassDescriptor {
    /// bLength of the descriptor.
    pub const LENGTH: u8 = 54;

    /// Decodes exactly one 54-byte descriptor of type 0x21 or 0xFF.
    pub fn decode(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let mut c = Cursor::new(bytes);
        let length = c.u8().ok_or(DescriptorError::Truncated)?;
        if length != Self::LENGTH {
            return Err(DescriptorError::BadCcidLength(length));
        }
        match bytes.len().cmp(&usize::from(Self::LENGTH)) {
            std::cmp::Ordering::Less => return Err(DescriptorError::Truncated),
            std::cmp::Ordering::Greater => return Err(DescriptorError::TrailingBytes),
            std::cmp::Ordering::Equal => {}
        }
        let descriptor_type = c.u8().ok_or(DescriptorError::Truncated)?;
        if descriptor_type != dt::CCID && descriptor_type != dt::CCID_PROPRIETARY {
            return Err(DescriptorError::BadCcidType(descriptor_type));
        }
        let mut read = || -> Option<Self> {
            Some(Self {
                descriptor_type,
                bcd_ccid: c.u16_le()?,
                max_slot_index: c.u8()?,
                voltage_support: c.u8()?,
                protocols: c.u32_le()?,
                default_clock: c.u32_le()?,
                maximum_clock: c.u32_le()?,
                num_clock_supported: c.u8()?,
                data_rate: c.u32_le()?,
                max_data_rate: c.u32_le()?,
                num_data_rates_supported: c.u8()?,
                max_ifsd: c.u32_le()?,
                synch_protocols: c.u32_le()?,
                mechanical: c.u32_le()?,
                features: Features(c.u32_le()?),
                max_ccid_message_length: c.u32_le()?,
                class_get_response: c.u8()?,
                class_envelope: c.u8()?,
                lcd_layout: c.u16_le()?,
                pin_support: c.u8()?,
                max_ccid_busy_slots: c.u8()?,
            })
        };
        read().ok_or(DescriptorError::Truncated)
    }

    /// The 54 bytes.
    pub fn encode(&self) -> [u8; 54] {
        let mut out = Vec::with_capacity(54);
        out.extend_from_slice(&[Self::LENGTH, self.descriptor_type]);
        out.extend_from_slice(&self.bcd_ccid.to_le_bytes());
        out.extend_from_slice(&[self.max_slot_index, self.voltage_support]);
        out.extend_from_slice(&self.protocols.to_le_bytes());
        out.extend_from_slice(&self.default_clock.to_le_bytes());
        out.extend_from_slice(&self.maximum_clock.to_le_bytes());
        out.push(self.num_clock_supported);
        out.extend_from_slice(&self.data_rate.to_le_bytes());
        out.extend_from_slice(&self.max_data_rate.to_le_bytes());
        out.push(self.num_data_rates_supported);
        out.extend_from_slice(&self.max_ifsd.to_le_bytes());
        out.extend_from_slice(&self.synch_protocols.to_le_bytes());
        out.extend_from_slice(&self.mechanical.to_le_bytes());
        out.extend_from_slice(&self.features.0.to_le_bytes());
        out.extend_from_slice(&self.max_ccid_message_length.to_le_bytes());
        out.extend_from_slice(&[self.class_get_response, self.class_envelope]);
        out.extend_from_slice(&self.lcd_layout.to_le_bytes());
        out.extend_from_slice(&[self.pin_support, self.max_ccid_busy_slots]);
        let mut b = [0u8; 54];
        // INVARIANT: exactly 54 bytes were pushed above, so the lengths match.
        b.copy_from_slice(&out);
        b
    }

    /// The exchange level from dwFeatures.
    pub fn exchange_level(&self) -> ExchangeLevel {
        self.features.exchange_level()
    }

    /// Whether the reader supports T=0 (dwProtocols bit 0).
    pub fn supports_t0(&self) -> bool {
        self.protocols & 0x01 != 0
    }

    /// Whether the reader supports T=1 (dwProtocols bit 1).
    pub fn supports_t1(&self) -> bool {
        self.protocols & 0x02 != 0
    }

    /// The number of slots: bMaxSlotIndex + 1.
    pub fn slot_count(&self) -> usize {
        usize::from(self.max_slot_index) + 1
    }

    /// bMaxCCIDBusySlots: how many slots may have a command in flight at once.
    pub fn max_busy_slots(&self) -> u8 {
        self.max_ccid_busy_slots
    }

    /// Whether the PIN pad can verify a PIN (bPINSupport bit 0).
    pub fn pin_verify(&self) -> bool {
        self.pin_support & 0x01 != 0
    }

    /// Whether the PIN pad can change a PIN (bPINSupport bit 1).
    pub fn pin_modify(&self) -> bool {
        self.pin_support & 0x02 != 0
    }

    /// Whether the reader can power a card at 5.0 V (bVoltageSupport bit 0).
    pub fn supports_5v(&self) -> bool {
        self.voltage_support & 0x01 != 0
    }

    /// Whether the reader can power a card at 3.0 V (bVoltageSupport bit 1).
    pub fn supports_3v(&self) -> bool {
        self.voltage_support & 0x02 != 0
    }

    /// Whether the reader can power a card at 1.8 V (bVoltageSupport bit 2).
    pub fn supports_1_8v(&self) -> bool {
        self.voltage_support & 0x04 != 0
    }

    /// dwMaxCCIDMessageLength: the longest bulk message, header included. A command's
    /// abData may hold at most this minus 10 bytes.
    pub fn max_message_length(&self) -> u32 {
        self.max_ccid_message_length
    }

    /// dwMaxIFSD: the IFSD to announce with S(IFS request) at T=1.
    pub fn max_ifsd(&self) -> u32 {
        self.max_ifsd
    }
}
