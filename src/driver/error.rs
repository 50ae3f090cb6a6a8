//! Driver errors and their stable codes.
//!
//! The code is what JavaScript sees as `CardRelayError.code`; the hint says what the user
//! can do. A DOMException means different things depending on the call that threw it, so
//! the USB errors are classified here by (call, exception name), once.

use crate::driver::usb::{UsbCall, UsbError, UsbErrorKind};
use crate::proto::ccid::CcidError;
use crate::proto::descriptor::DescriptorError;
use crate::reader::ReaderError;

/// Stable error codes, shared by the reader API and `cardUpdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Chrome refused `claimInterface` on a protected class (0x0B smart card).
    ProtectedInterface,
    /// No usable CCID interface (none, character level, ICCD).
    UnsupportedReader,
    /// Another driver or program holds the interface.
    DeviceBusy,
    /// The operating system refused to open the device.
    PermissionDenied,
    /// No card in the reader.
    CardAbsent,
    /// The card does not answer.
    CardMute,
    /// The reader was unplugged (or closed).
    Disconnected,
    /// The reader or the server did not answer in time.
    Timeout,
    /// The reader or card broke the protocol.
    Protocol,
    /// Cancelled by the caller.
    Aborted,
    /// The server answered with an HTTP error status.
    ServerError,
    /// The server's script does not decode.
    BadScript,
    /// The user did not approve the server.
    NotApproved,
    /// The local PIN verification failed.
    PinFailed,
    /// `fetch` failed: network, DNS or CORS (the browser does not say which).
    NetworkError,
    /// Plain http to a host other than localhost.
    InsecureUrl,
    /// The call's arguments are wrong.
    InvalidArgument,
    /// The page's Content-Security-Policy (`connect-src`) blocked the request to the server.
    CspBlocked,
    /// card-relay lost track of its own state: a bug, not a fault of the card, the reader
    /// or the server.
    Internal,
    /// No smart card service (PC/SC; on ChromeOS the Smart Card Connector) answers.
    ServiceUnavailable,
    /// The local agent did not answer (not installed, not running, or the browser kept the
    /// page from reaching it).
    AgentUnreachable,
    /// The agent refused this page: the user or the origins file did not approve it.
    AgentRefused,
    /// The agent runs another update.
    AgentBusy,
}

impl ErrorCode {
    /// The code string JavaScript sees.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProtectedInterface => "protected-interface",
            Self::UnsupportedReader => "unsupported-reader",
            Self::DeviceBusy => "device-busy",
            Self::PermissionDenied => "permission-denied",
            Self::CardAbsent => "card-absent",
            Self::CardMute => "card-mute",
            Self::Disconnected => "disconnected",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
            Self::Aborted => "aborted",
            Self::ServerError => "server-error",
            Self::BadScript => "bad-script",
            Self::NotApproved => "not-approved",
            Self::PinFailed => "pin-failed",
            Self::NetworkError => "network-error",
            Self::InsecureUrl => "insecure-url",
            Self::InvalidArgument => "invalid-argument",
            Self::CspBlocked => "csp-blocked",
            Self::Internal => "internal",
            Self::ServiceUnavailable => "service-unavailable",
            Self::AgentUnreachable => "agent-unreachable",
            Self::AgentRefused => "agent-refused",
            Self::AgentBusy => "agent-busy",
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 23] = [
        Self::ProtectedInterface,
        Self::UnsupportedReader,
        Self::DeviceBusy,
        Self::PermissionDenied,
        Self::CardAbsent,
        Self::CardMute,
        Self::Disconnected,
        Self::Timeout,
        Self::Protocol,
        Self::Aborted,
        Self::ServerError,
        Self::BadScript,
        Self::NotApproved,
        Self::PinFailed,
        Self::NetworkError,
        Self::InsecureUrl,
        Self::InvalidArgument,
        Self::CspBlocked,
        Self::Internal,
        Self::ServiceUnavailable,
        Self::AgentUnreachable,
        Self::AgentRefused,
        Self::AgentBusy,
    ];

    /// What the user can do about it, in one or two sentences.
    pub fn hint(self) -> &'static str {
        match self {
            Self::ProtectedInterface => {
                "Chrome does not let ordinary web pages use smart card readers of USB class 0x0B. \
                 Use a reader with a vendor-class (0xFF) CCID interface, or run the page as an \
                 Isolated Web App with the usb-unrestricted permission, in Electron with a \
                 protected-classes handler, or use the card-relay command line in Node.js."
            }
            Self::UnsupportedReader => {
                "This device has no CCID interface card-relay can drive (character-level and \
                 ICCD readers are not supported). Try another reader."
            }
            Self::DeviceBusy => {
                "Another program holds the reader: stop pcscd (Linux), quit com.apple.ifdreader \
                 (macOS), or install the WinUSB driver for it (Windows), then try again."
            }
            Self::PermissionDenied => {
                "The operating system refused access to the reader. On Linux add a udev rule \
                 giving your user write access to the device; on Windows install WinUSB for it."
            }
            Self::CardAbsent => "Insert a card in the reader and try again.",
            Self::CardMute => {
                "The card does not answer. Check that it is inserted the right way round, or try \
                 another card."
            }
            Self::Disconnected => "The reader was unplugged. Plug it in and select it again.",
            Self::Timeout => "No answer in time. Check the reader and the connection, then retry.",
            Self::Protocol => {
                "The reader or card answered something unexpected. Remove and reinsert the card, \
                 then retry."
            }
            Self::Aborted => "The operation was cancelled.",
            Self::ServerError => "The server reported an error. Try again later.",
            Self::BadScript => "The server sent a script card-relay cannot read.",
            Self::NotApproved => "The connection to this server was not approved.",
            Self::PinFailed => "The PIN was not accepted by the card.",
            Self::NetworkError => {
                "The server could not be reached: check the network, and that the server allows \
                 this page's origin (CORS)."
            }
            Self::InsecureUrl => {
                "Card update servers must use https (plain http only on localhost)."
            }
            Self::InvalidArgument => "The call's arguments are not valid.",
            Self::CspBlocked => {
                "This page's Content-Security-Policy does not allow connections to the server: \
                 add the server's origin to the policy's connect-src directive."
            }
            Self::Internal => {
                "card-relay lost track of its own state. This is a bug in card-relay, \
                 not a problem with the card or the server: please report it, then reload \
                 the page and run the update again."
            }
            Self::ServiceUnavailable => {
                "No smart card service is running. On ChromeOS install the Smart Card Connector \
                 app and keep it enabled; elsewhere start the PC/SC service (pcscd)."
            }
            Self::AgentUnreachable => {
                "The card-relay agent did not answer: install or start it (card-relay --daemon), \
                 and allow this site to reach it (the browser's local network permission)."
            }
            Self::AgentRefused => {
                "The card-relay agent refused this site: approve it at the agent's terminal, or \
                 add its origin to the agent's origins file."
            }
            Self::AgentBusy => {
                "The card-relay agent is running another update: wait for it to end, then try \
                 again."
            }
        }
    }
}

/// Why a driver operation failed, with its cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// A USB call failed.
    #[error("{} failed: {source}", call.name())]
    Usb {
        /// Which call.
        call: UsbCall,
        /// The browser's error.
        #[source]
        source: UsbError,
    },
    /// The configuration descriptor does not parse.
    #[error("bad configuration descriptor")]
    Descriptor(#[source] DescriptorError),
    /// No CCID interface, or only ICCD ones.
    #[error("no usable ccid interface: {0}")]
    NoCcidInterface(&'static str),
    /// Bulk-IN data do not frame as CCID messages.
    #[error("bad ccid framing")]
    Framing(#[source] CcidError),
    /// The reader state machine reported an error.
    #[error(transparent)]
    Reader(ReaderError),
    /// The device is gone.
    #[error("reader disconnected")]
    Disconnected,
    /// The reader was closed with `close()`.
    #[error("reader closed")]
    Closed,
    /// Cancelled by an abort signal.
    #[error("aborted")]
    Aborted,
    /// A card channel other than the CCID driver (PC/SC in the agent) failed; it classified
    /// the error itself.
    #[error("{message}")]
    Channel {
        /// The stable code.
        code: ErrorCode,
        /// What happened, a short lowercase fragment.
        message: String,
    },
    /// A Web Smart Card API call failed ([`crate::driver::smartcard`]): its code, and a hint
    /// more precise than the code's own (a sharing violation is not pcscd holding a reader).
    #[error("{message}")]
    SmartCard {
        /// The stable code.
        code: ErrorCode,
        /// What happened, a short lowercase fragment.
        message: String,
        /// What the user can do.
        hint: &'static str,
    },
}

impl DriverError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Usb { call, source } => classify(*call, source),
            Self::Descriptor(_) | Self::NoCcidInterface(_) => ErrorCode::UnsupportedReader,
            Self::Framing(_) => ErrorCode::Protocol,
            Self::Reader(e) => reader_code(e),
            Self::Disconnected | Self::Closed => ErrorCode::Disconnected,
            Self::Aborted => ErrorCode::Aborted,
            Self::Channel { code, .. } | Self::SmartCard { code, .. } => *code,
        }
    }

    /// What the user can do: the error's own hint where it has one, else its code's.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::SmartCard { hint, .. } => hint,
            other => other.code().hint(),
        }
    }
}

/// Classifies a USB error by the call that threw it (STYLE habit 8).
pub fn classify(call: UsbCall, error: &UsbError) -> ErrorCode {
    match (call, &error.kind) {
        (UsbCall::ClaimInterface, UsbErrorKind::Security) => ErrorCode::ProtectedInterface,
        (UsbCall::ClaimInterface, UsbErrorKind::Network) => ErrorCode::DeviceBusy,
        (UsbCall::Open, UsbErrorKind::Security) => ErrorCode::PermissionDenied,
        (UsbCall::Open, UsbErrorKind::Network) => ErrorCode::DeviceBusy,
        (_, UsbErrorKind::NotFound) => ErrorCode::Disconnected,
        (
            UsbCall::TransferIn | UsbCall::TransferOut | UsbCall::ControlTransferIn,
            UsbErrorKind::Network,
        ) => ErrorCode::Disconnected,
        (_, UsbErrorKind::Abort) => ErrorCode::Aborted,
        (_, UsbErrorKind::Security) => ErrorCode::PermissionDenied,
        _ => ErrorCode::Protocol,
    }
}

fn reader_code(e: &ReaderError) -> ErrorCode {
    match e {
        ReaderError::Unsupported(_) | ReaderError::PinPadUnusable => ErrorCode::UnsupportedReader,
        ReaderError::CardAbsent | ReaderError::NotPowered => ErrorCode::CardAbsent,
        ReaderError::CardMute => ErrorCode::CardMute,
        ReaderError::Timeout | ReaderError::PinTimeout => ErrorCode::Timeout,
        ReaderError::Aborted | ReaderError::PinCancelled => ErrorCode::Aborted,
        ReaderError::NoSuchSlot(_)
        | ReaderError::Apdu(_)
        | ReaderError::TooLong { .. }
        | ReaderError::ResponseTooLong { .. }
        | ReaderError::PinParameters(_) => ErrorCode::InvalidArgument,
        _ => ErrorCode::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;

    fn err(kind: UsbErrorKind) -> UsbError {
        UsbError::new(kind, "")
    }

    #[test]
    fn the_call_decides_what_an_exception_means() {
        use ErrorCode::*;
        use UsbErrorKind as K;
        let cases = [
            (UsbCall::ClaimInterface, K::Security, ProtectedInterface),
            (UsbCall::ClaimInterface, K::Network, DeviceBusy),
            (UsbCall::Open, K::Security, PermissionDenied),
            (UsbCall::TransferIn, K::Network, Disconnected),
            (UsbCall::TransferOut, K::NotFound, Disconnected),
            (UsbCall::TransferIn, K::Abort, Aborted),
            (UsbCall::TransferIn, K::Stall, Protocol),
        ];
        for (call, kind, code) in cases {
            assert_eq!(
                classify(call, &err(kind.clone())),
                code,
                "{call:?} {kind:?}"
            );
        }
    }

    #[test]
    fn pin_pad_outcomes() {
        let code = |e| DriverError::Reader(e).code();
        assert_eq!(code(ReaderError::PinCancelled), ErrorCode::Aborted);
        assert_eq!(code(ReaderError::PinTimeout), ErrorCode::Timeout);
        assert_eq!(
            code(ReaderError::PinParameters("x")),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn codes_are_unique_kebab_case_with_hints() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{s}");
            assert!(code.hint().ends_with('.'), "{s}: hints are sentences");
        }
    }

    #[test]
    fn messages_keep_the_cause() {
        let e = DriverError::Usb {
            call: UsbCall::ClaimInterface,
            source: UsbError::new(
                UsbErrorKind::Security,
                "The requested interface implements a protected class.",
            ),
        };
        assert_eq!(
            e.to_string(),
            "claimInterface failed: SecurityError: The requested interface implements a protected class."
        );
        assert_eq!(e.code(), ErrorCode::ProtectedInterface);
    }
}
