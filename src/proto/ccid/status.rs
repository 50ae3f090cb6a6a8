//! bStatus and bError of the RDR_to_PC messages (CCID §6.2.6).

/// bmICCStatus, bits 0–1 of bStatus (CCID §6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IccStatus {
    /// 0: an ICC is present and active (powered).
    PresentActive,
    /// 1: an ICC is present and inactive (not activated or shut down by hardware error).
    PresentInactive,
    /// 2: no ICC is present.
    Absent,
    /// 3: reserved for future use.
    Reserved,
}

/// bmCommandStatus, bits 6–7 of bStatus (CCID §6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandStatus {
    /// 0: processed without error.
    Ok,
    /// 1: failed; bError says why.
    Failed,
    /// 2: time extension requested; bError is the BWT multiplier.
    ///
    /// The command is still running: read the bulk-IN pipe again (waiting that many more
    /// BWTs) for the final answer with the same bSeq. Never resend the command.
    TimeExtension,
    /// 3: reserved for future use.
    Reserved,
}

/// bStatus and bError of an RDR_to_PC message (CCID §6.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotState {
    /// bmICCStatus.
    pub icc: IccStatus,
    /// bmCommandStatus.
    pub command: CommandStatus,
    /// bError as received: an error code when `command` is [`CommandStatus::Failed`], the
    /// BWT multiplier when it is [`CommandStatus::TimeExtension`], otherwise meaningless.
    pub error_raw: u8,
}

impl SlotState {
    /// A successful answer with the given card state.
    pub fn ok(icc: IccStatus) -> Self {
        Self {
            icc,
            command: CommandStatus::Ok,
            error_raw: 0,
        }
    }

    /// A failed answer.
    pub fn failed(icc: IccStatus, error: SlotError) -> Self {
        Self {
            icc,
            command: CommandStatus::Failed,
            error_raw: error.code(),
        }
    }

    /// A time-extension answer asking for `multiplier` more BWTs.
    pub fn time_extension(icc: IccStatus, multiplier: u8) -> Self {
        Self {
            icc,
            command: CommandStatus::TimeExtension,
            error_raw: multiplier,
        }
    }

    /// Decodes bStatus and bError; bits 2–5 of bStatus (RFU) are ignored.
    pub fn from_bytes(status: u8, error: u8) -> Self {
        let icc = match status & 0x03 {
            0 => IccStatus::PresentActive,
            1 => IccStatus::PresentInactive,
            2 => IccStatus::Absent,
            _ => IccStatus::Reserved,
        };
        let command = match status >> 6 {
            0 => CommandStatus::Ok,
            1 => CommandStatus::Failed,
            2 => CommandStatus::TimeExtension,
            _ => CommandStatus::Reserved,
        };
        Self {
            icc,
            command,
            error_raw: error,
        }
    }

    /// bStatus as sent on the wire.
    pub fn status_byte(&self) -> u8 {
        let icc = match self.icc {
            IccStatus::PresentActive => 0,
            IccStatus::PresentInactive => 1,
            IccStatus::Absent => 2,
            IccStatus::Reserved => 3,
        };
        let command = match self.command {
            CommandStatus::Ok => 0,
            CommandStatus::Failed => 1,
            CommandStatus::TimeExtension => 2,
            CommandStatus::Reserved => 3,
        };
        command << 6 | icc
    }

    /// The error when the command failed.
    pub fn error(&self) -> Option<SlotError> {
        (self.command == CommandStatus::Failed).then(|| SlotError::from_code(self.error_raw))
    }

    /// The BWT multiplier when the reader asks for more time (read again, never resend).
    pub fn time_extension_multiplier(&self) -> Option<u8> {
        (self.command == CommandStatus::TimeExtension).then_some(self.error_raw)
    }

    /// Whether the command was processed without error.
    pub fn is_ok(&self) -> bool {
        self.command == CommandStatus::Ok
    }
}

/// bError of a failed command (CCID §6.2.6, table 6.2-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotError {
    /// 0xFF CMD_ABORTED: the host aborted the command.
    CmdAborted,
    /// 0xFE ICC_MUTE: the card did not answer (timeout), or no card.
    IccMute,
    /// 0xFD XFR_PARITY_ERROR: parity error while talking to the card.
    XfrParityError,
    /// 0xFC XFR_OVERRUN: the card sent more than the reader could buffer.
    XfrOverrun,
    /// 0xFB HW_ERROR: hardware error during activation.
    HwError,
    /// 0xF8 BAD_ATR_TS: bad TS byte in the ATR.
    BadAtrTs,
    /// 0xF7 BAD_ATR_TCK: bad TCK in the ATR.
    BadAtrTck,
    /// 0xF6 ICC_PROTOCOL_NOT_SUPPORTED.
    IccProtocolNotSupported,
    /// 0xF5 ICC_CLASS_NOT_SUPPORTED: the card does not support the voltage class.
    IccClassNotSupported,
    /// 0xF4 PROCEDURE_BYTE_CONFLICT.
    ProcedureByteConflict,
    /// 0xF3 DEACTIVATED_PROTOCOL.
    DeactivatedProtocol,
    /// 0xF2 BUSY_WITH_AUTO_SEQUENCE: the reader is activating the card by itself.
    BusyWithAutoSequence,
    /// 0xF0 PIN_TIMEOUT: nobody entered the PIN in time.
    PinTimeout,
    /// 0xEF PIN_CANCELLED: the user cancelled PIN entry.
    PinCancelled,
    /// 0xE0 CMD_SLOT_BUSY: another command is running on the slot.
    CmdSlotBusy,
    /// 0x00: the command is not supported.
    CommandNotSupported,
    /// 1..=127: offset of the bad field in the command message.
    BadParameter(u8),
    /// Any other value (user-defined 0x80..=0xC0 or not defined).
    Other(u8),
}

impl SlotError {
    /// Decodes a bError byte.
    pub fn from_code(code: u8) -> Self {
        match code {
            0xFF => Self::CmdAborted,
            0xFE => Self::IccMute,
            0xFD => Self::XfrParityError,
            0xFC => Self::XfrOverrun,
            0xFB => Self::HwError,
            0xF8 => Self::BadAtrTs,
            0xF7 => Self::BadAtrTck,
            0xF6 => Self::IccProtocolNotSupported,
            0xF5 => Self::IccClassNotSupported,
            0xF4 => Self::ProcedureByteConflict,
            0xF3 => Self::DeactivatedProtocol,
            0xF2 => Self::BusyWithAutoSequence,
            0xF0 => Self::PinTimeout,
            0xEF => Self::PinCancelled,
            0xE0 => Self::CmdSlotBusy,
            0x00 => Self::CommandNotSupported,
            1..=127 => Self::BadParameter(code),
            other => Self::Other(other),
        }
    }

    /// The bError byte.
    pub fn code(&self) -> u8 {
        match *self {
            Self::CmdAborted => 0xFF,
            Self::IccMute => 0xFE,
            Self::XfrParityError => 0xFD,
            Self::XfrOverrun => 0xFC,
            Self::HwError => 0xFB,
            Self::BadAtrTs => 0xF8,
            Self::BadAtrTck => 0xF7,
            Self::IccProtocolNotSupported => 0xF6,
            Self::IccClassNotSupported => 0xF5,
            Self::ProcedureByteConflict => 0xF4,
            Self::DeactivatedProtocol => 0xF3,
            Self::BusyWithAutoSequence => 0xF2,
            Self::PinTimeout => 0xF0,
            Self::PinCancelled => 0xEF,
            Self::CmdSlotBusy => 0xE0,
            Self::CommandNotSupported => 0x00,
            Self::BadParameter(offset) => offset,
            Self::Other(code) => code,
        }
    }

    /// A short human description, for logs and error messages.
    pub fn description(&self) -> &'static str {
        match self {
            Self::CmdAborted => "command aborted",
            Self::IccMute => "card mute or absent",
            Self::XfrParityError => "parity error talking to the card",
            Self::XfrOverrun => "card sent too much data",
            Self::HwError => "reader hardware error during activation",
            Self::BadAtrTs => "bad ts byte in the atr",
            Self::BadAtrTck => "bad tck byte in the atr",
            Self::IccProtocolNotSupported => "card protocol not supported",
            Self::IccClassNotSupported => "card voltage class not supported",
            Self::ProcedureByteConflict => "t=0 procedure byte conflict",
            Self::DeactivatedProtocol => "protocol deactivated",
            Self::BusyWithAutoSequence => "reader busy with automatic sequence",
            Self::PinTimeout => "pin entry timed out",
            Self::PinCancelled => "pin entry cancelled",
            Self::CmdSlotBusy => "slot busy with another command",
            Self::CommandNotSupported => "command not supported",
            Self::BadParameter(_) => "bad parameter in command",
            Self::Other(_) => "unknown reader error",
        }
    }
}

impl std::fmt::Display for SlotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadParameter(offset) => write!(f, "bad parameter at offset {offset}"),
            Self::Other(code) => write!(f, "unknown reader error {code:#04x}"),
            other => f.write_str(other.description()),
        }
    }
}
