//! RAMOverHTTP scripts: the BER-TLV bodies of the HTTP POSTs and their answers, in the two
//! dialects a server may speak.
//!
//! - [`openscdp`]: the OpenSCDP / CardContact flavour (the seed's Scripting Server). It borrows
//!   the ETSI TS 102 226 "expanded format" tags and adds private ones: the initiation
//!   template `E8`, reset `C0`, notify `E0`, close `E1`. Its response template writes the
//!   executed-command count `80` last.
//! - [`gp`]: GlobalPlatform Card Specification Amendment B (RAM over HTTP), whose scripts are
//!   the TS 102 226 expanded format: `AA`/`AE` command scripts, `AB`/`AF` response scripts
//!   with the count `80` first.
//!
//! Sources: /work/shared/reference/ramoverhttp.md §1.1, §1.2, §2.1, §2.2.

use std::str::Utf8Error;

use super::tlv::{self, Tag, Tlv, TlvError};

/// Content-Type of every client POST in the OpenSCDP dialect (ramoverhttp.md §1.2).
pub const OPENSCDP_RESPONSE_CONTENT_TYPE: &str =
    "application/org.openscdp-content-mgt-response;version=1.0";

/// Content-Type of a GP Amd B script sent by the server (ramoverhttp.md §1.1).
pub const GP_SCRIPT_CONTENT_TYPE: &str =
    "application/vnd.globalplatform.card-content-mgt;version=1.0";

/// Content-Type of a GP Amd B script response sent by the client (IANA registration).
pub const GP_RESPONSE_CONTENT_TYPE: &str =
    "application/vnd.globalplatform.card-content-mgt-response;version=1.0";

/// Builds a one-byte tag constant; evaluated at compile time only.
const fn tag(byte: u8) -> Tag {
    match Tag::from_u8(byte) {
        Some(t) => t,
        None => panic!("multi-byte tag marker"),
    }
}

/// ASN.1 INTEGER, used for the notification id.
const INTEGER: Tag = tag(0x02);
/// ASN.1 UTF8String, used for notification and close texts.
const UTF8_STRING: Tag = tag(0x0C);
/// Command Scripting template, definite length (TS 102 226).
const COMMAND_SCRIPT: Tag = tag(0xAA);
/// Command Scripting template, indefinite length (TS 102 226).
const COMMAND_SCRIPT_INDEFINITE: Tag = tag(0xAE);
/// Response Scripting template, definite length (TS 102 226).
const RESPONSE_SCRIPT: Tag = tag(0xAB);
/// Response Scripting template, indefinite length (TS 102 226).
const RESPONSE_SCRIPT_INDEFINITE: Tag = tag(0xAF);
/// C-APDU TLV (TS 102 223 §8.35).
const C_APDU: Tag = tag(0x22);
/// C-APDU TLV with the comprehension-required bit set, written by some cards.
const C_APDU_CR: Tag = tag(0xA2);
/// R-APDU TLV: response data ‖ SW1 SW2 (TS 102 223 §8.36).
const R_APDU: Tag = tag(0x23);
/// Number of executed command TLV objects.
const EXECUTED_COUNT: Tag = tag(0x80);
/// Immediate Action TLV (command) and Immediate Action Response TLV (response).
const IMMEDIATE_ACTION: Tag = tag(0x81);
/// Error Action TLV.
const ERROR_ACTION: Tag = tag(0x82);
/// Script Chaining TLV (command) and Script Chaining Response TLV (response).
const SCRIPT_CHAINING: Tag = tag(0x83);
/// Bad Format TLV.
const BAD_FORMAT: Tag = tag(0x90);
/// OpenSCDP: reset command (empty) and the ATR in the response; ATR in the initiation template.
const RESET_ATR: Tag = tag(0xC0);
/// OpenSCDP: maximum C-APDU size in the initiation template.
const MAX_CAPDU: Tag = tag(0xC1);
/// OpenSCDP: maximum R-APDU size in the initiation template.
const MAX_RAPDU: Tag = tag(0xC2);
/// OpenSCDP: time to completion inside a notification.
const TIME_TO_COMPLETION: Tag = tag(0xC3);
/// OpenSCDP: notification template.
const NOTIFY: Tag = tag(0xE0);
/// OpenSCDP: close template.
const CLOSE: Tag = tag(0xE1);
/// OpenSCDP: initiation template.
const INITIATION: Tag = tag(0xE8);

/// Errors from decoding a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RamError {
    /// The BER-TLV structure is broken.
    #[error("bad tlv")]
    Tlv(#[from] TlvError),
    /// The outer template has another tag than the one expected.
    #[error("unexpected template {0}")]
    UnexpectedTemplate(Tag),
    /// An object this template does not define (the client refuses it rather than skip it).
    #[error("unknown tag {tag} in {template}")]
    UnknownTag {
        /// The unknown tag.
        tag: Tag,
        /// The template holding it.
        template: &'static str,
    },
    /// A mandatory object is missing.
    #[error("missing {0}")]
    Missing(&'static str),
    /// An object that may occur once occurs twice.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// An integer with no bytes, or too large for its field.
    #[error("bad integer in {0}")]
    BadInteger(&'static str),
    /// A text that is not UTF-8.
    #[error("text is not utf-8")]
    Utf8(#[source] Utf8Error),
    /// An indefinite length where this dialect or object allows only a definite one.
    #[error("indefinite length not allowed in {0}")]
    Indefinite(&'static str),
    /// A value of the wrong size.
    #[error("bad length of {0}")]
    BadLength(&'static str),
}

/// Parses `bytes` as exactly one object with one of the `allowed` tags.
fn outer<'a>(bytes: &'a [u8], allowed: &[Tag]) -> Result<Tlv<'a>, RamError> {
    let tlv = Tlv::parse_exact(bytes)?;
    if allowed.contains(&tlv.tag()) {
        Ok(tlv)
    } else {
        Err(RamError::UnexpectedTemplate(tlv.tag()))
    }
}

/// The value of a leaf object, which must use a definite length.
fn leaf<'a>(tlv: &Tlv<'a>, what: &'static str) -> Result<&'a [u8], RamError> {
    if tlv.is_indefinite() {
        Err(RamError::Indefinite(what))
    } else {
        Ok(tlv.value())
    }
}

/// Decodes an unsigned big-endian integer of 1 to 4 significant bytes; leading zero bytes
/// (a two's-complement style `00 80`) are accepted.
fn decode_u32(value: &[u8], what: &'static str) -> Result<u32, RamError> {
    if value.is_empty() {
        return Err(RamError::BadInteger(what));
    }
    let significant = value
        .iter()
        .position(|b| *b != 0)
        .and_then(|i| value.get(i..))
        .unwrap_or(&[]);
    if significant.len() > 4 {
        return Err(RamError::BadInteger(what));
    }
    Ok(significant
        .iter()
        .fold(0u32, |n, b| (n << 8) | u32::from(*b)))
}

/// Encodes an unsigned integer in the fewest big-endian bytes, at least one.
fn encode_u32(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    bytes.iter().skip(skip).copied().collect()
}

/// Decodes a two's-complement INTEGER of 1 to 4 bytes (X.690 §8.3).
fn decode_i32(value: &[u8], what: &'static str) -> Result<i32, RamError> {
    let first = value.first().ok_or(RamError::BadInteger(what))?;
    if value.len() > 4 {
        return Err(RamError::BadInteger(what));
    }
    let sign = if first & 0x80 != 0 { -1i32 } else { 0 };
    Ok(value.iter().fold(sign, |n, b| (n << 8) | i32::from(*b)))
}

/// Encodes a two's-complement INTEGER in the fewest bytes (X.690 §8.3.2).
fn encode_i32(value: i32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let mut skip = 0;
    // A leading byte can go when it only repeats the sign of the next byte.
    while skip < 3 {
        let (Some(b), Some(next)) = (bytes.get(skip), bytes.get(skip + 1)) else {
            break;
        };
        let redundant = (*b == 0x00 && next & 0x80 == 0) || (*b == 0xFF && next & 0x80 != 0);
        if !redundant {
            break;
        }
        skip += 1;
    }
    bytes.iter().skip(skip).copied().collect()
}

fn decode_text(value: &[u8]) -> Result<String, RamError> {
    std::str::from_utf8(value)
        .map(str::to_owned)
        .map_err(RamError::Utf8)
}

/// Decodes `E1 { 0C text }`, the close template shared by commands and responses.
fn decode_close(tlv: &Tlv<'_>) -> Result<String, RamError> {
    let mut message = None;
    for child in tlv.children() {
        let child = child?;
        if child.tag() != UTF8_STRING {
            return Err(RamError::UnknownTag {
                tag: child.tag(),
                template: "close",
            });
        }
        if message.is_some() {
            return Err(RamError::Duplicate("close text"));
        }
        message = Some(decode_text(leaf(&child, "close text")?)?);
    }
    message.ok_or(RamError::Missing("close text"))
}

fn encode_close(message: &str, out: &mut Vec<u8>) {
    tlv::encode_constructed(CLOSE, out, |out| {
        tlv::encode_tlv(UTF8_STRING, message.as_bytes(), out);
    });
}

/// The OpenSCDP / CardContact dialect (ramoverhttp.md §1.2, §2.2). All templates use
/// definite lengths.
pub mod openscdp {
    use super::*;

    /// The body of the first POST: `E8 { C0 ATR [C1 maxCAPDU] [C2 maxRAPDU] }`.
    ///
    /// C1 and C2 are unsigned big-endian integers in the fewest bytes; decoding also accepts
    /// leading zero bytes.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[doc(alias = "E8")]
    pub struct InitiationTemplate {
        /// The card's answer to reset.
        pub atr: Vec<u8>,
        /// The largest C-APDU the reader path can carry.
        pub max_capdu: Option<u32>,
        /// The largest R-APDU the reader path can carry.
        pub max_rapdu: Option<u32>,
    }

    impl InitiationTemplate {
        /// Encodes the template.
        pub fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            tlv::encode_constructed(INITIATION, &mut out, |out| {
                tlv::encode_tlv(RESET_ATR, &self.atr, out);
                if let Some(max) = self.max_capdu {
                    tlv::encode_tlv(MAX_CAPDU, &encode_u32(max), out);
                }
                if let Some(max) = self.max_rapdu {
                    tlv::encode_tlv(MAX_RAPDU, &encode_u32(max), out);
                }
            });
            out
        }

        /// Decodes a template; the objects may come in any order, each at most once.
        pub fn decode(bytes: &[u8]) -> Result<Self, RamError> {
            let outer = outer(bytes, &[INITIATION])?;
            if outer.is_indefinite() {
                return Err(RamError::Indefinite("initiation template"));
            }
            let mut atr = None;
            let mut max_capdu = None;
            let mut max_rapdu = None;
            for child in outer.children() {
                let child = child?;
                let (slot, what) = match child.tag() {
                    t if t == RESET_ATR => {
                        if atr.is_some() {
                            return Err(RamError::Duplicate("atr"));
                        }
                        atr = Some(leaf(&child, "atr")?.to_vec());
                        continue;
                    }
                    t if t == MAX_CAPDU => (&mut max_capdu, "max c-apdu"),
                    t if t == MAX_RAPDU => (&mut max_rapdu, "max r-apdu"),
                    tag => {
                        return Err(RamError::UnknownTag {
                            tag,
                            template: "initiation template",
                        })
                    }
                };
                if slot.is_some() {
                    return Err(RamError::Duplicate(what));
                }
                *slot = Some(decode_u32(leaf(&child, what)?, what)?);
            }
            Ok(Self {
                atr: atr.ok_or(RamError::Missing("atr"))?,
                max_capdu,
                max_rapdu,
            })
        }
    }

    /// One unit of an OpenSCDP command script.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Command {
        /// `22 C-APDU`: send this APDU to the card.
        #[doc(alias = "C-APDU")]
        Apdu(Vec<u8>),
        /// `C0 00`: reset the card; the response carries `C0 ATR`. A non-empty value is
        /// accepted and ignored on decoding.
        Reset,
        /// `E0 { 02 id, 0C text [, C3 ttc] }`: a message for the user. Nothing goes into the
        /// response; a negative id ends the session (the C client's rule).
        Notify {
            /// The notification id, a signed INTEGER (`02 01 FF` is -1).
            id: i32,
            /// The text.
            message: String,
            /// Time to completion (2016+ Java server), an unsigned integer.
            time_to_completion: Option<u32>,
        },
        /// `E1 { 0C text }`: the server closed the card (`card.close()`).
        Close {
            /// The text.
            message: String,
        },
    }

    /// A command script: `AA { command... }`, definite length only (the clients reject
    /// anything else).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    #[doc(alias = "Command Scripting template")]
    pub struct CommandScript {
        /// The units in order.
        pub commands: Vec<Command>,
    }

    impl CommandScript {
        /// Encodes the script.
        pub fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            tlv::encode_constructed(COMMAND_SCRIPT, &mut out, |out| {
                for command in &self.commands {
                    match command {
                        Command::Apdu(apdu) => tlv::encode_tlv(C_APDU, apdu, out),
                        Command::Reset => tlv::encode_tlv(RESET_ATR, &[], out),
                        Command::Notify {
                            id,
                            message,
                            time_to_completion,
                        } => tlv::encode_constructed(NOTIFY, out, |out| {
                            tlv::encode_tlv(INTEGER, &encode_i32(*id), out);
                            tlv::encode_tlv(UTF8_STRING, message.as_bytes(), out);
                            if let Some(ttc) = time_to_completion {
                                tlv::encode_tlv(TIME_TO_COMPLETION, &encode_u32(*ttc), out);
                            }
                        }),
                        Command::Close { message } => encode_close(message, out),
                    }
                }
            });
            out
        }

        /// Decodes a script. An unknown tag is an error, not skipped.
        pub fn decode(bytes: &[u8]) -> Result<Self, RamError> {
            let outer = outer(bytes, &[COMMAND_SCRIPT])?;
            if outer.is_indefinite() {
                return Err(RamError::Indefinite("command script"));
            }
            let mut commands = Vec::new();
            for child in outer.children() {
                let child = child?;
                let command = match child.tag() {
                    t if t == C_APDU => Command::Apdu(leaf(&child, "c-apdu")?.to_vec()),
                    t if t == RESET_ATR => Command::Reset,
                    t if t == NOTIFY => decode_notify(&child)?,
                    t if t == CLOSE => Command::Close {
                        message: decode_close(&child)?,
                    },
                    tag => {
                        return Err(RamError::UnknownTag {
                            tag,
                            template: "command script",
                        })
                    }
                };
                commands.push(command);
            }
            Ok(Self { commands })
        }
    }

    fn decode_notify(tlv: &Tlv<'_>) -> Result<Command, RamError> {
        let mut id = None;
        let mut message = None;
        let mut time_to_completion = None;
        for child in tlv.children() {
            let child = child?;
            match child.tag() {
                t if t == INTEGER => {
                    if id.is_some() {
                        return Err(RamError::Duplicate("notify id"));
                    }
                    id = Some(decode_i32(leaf(&child, "notify id")?, "notify id")?);
                }
                t if t == UTF8_STRING => {
                    if message.is_some() {
                        return Err(RamError::Duplicate("notify text"));
                    }
                    message = Some(decode_text(leaf(&child, "notify text")?)?);
                }
                t if t == TIME_TO_COMPLETION => {
                    if time_to_completion.is_some() {
                        return Err(RamError::Duplicate("time to completion"));
                    }
                    let value = leaf(&child, "time to completion")?;
                    time_to_completion = Some(decode_u32(value, "time to completion")?);
                }
                tag => {
                    return Err(RamError::UnknownTag {
                        tag,
                        template: "notify",
                    })
                }
            }
        }
        Ok(Command::Notify {
            id: id.ok_or(RamError::Missing("notify id"))?,
            message: message.ok_or(RamError::Missing("notify text"))?,
            time_to_completion,
        })
    }

    /// One object of an OpenSCDP response script, in the order the units ran.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ResponseItem {
        /// `23 R-APDU`: response data ‖ SW1 SW2.
        #[doc(alias = "R-APDU")]
        RApdu(Vec<u8>),
        /// `C0 ATR`: the answer to a reset.
        Atr(Vec<u8>),
        /// `E1 { 0C text }`: the client aborted (card error, "Session canceled").
        Close {
            /// The reason.
            message: String,
        },
    }

    /// A response script: `AB { item... 80 count }` with the count written last.
    ///
    /// The count is the number of C-APDUs that ran; resets and notifications do not count.
    /// It is written in one byte when it fits, in the fewest big-endian bytes otherwise;
    /// decoding accepts 1 to 4 significant bytes and the `80` object anywhere, once.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    #[doc(alias = "Response Scripting template")]
    pub struct ResponseScript {
        /// The responses in order.
        pub items: Vec<ResponseItem>,
        /// The number of executed C-APDUs.
        pub count: u32,
    }

    impl ResponseScript {
        /// The cancel body of the 2020 Java client: `AB { E1 { 0C reason } 80 01 00 }`.
        pub fn abort(reason: &str) -> Self {
            Self {
                items: vec![ResponseItem::Close {
                    message: reason.to_owned(),
                }],
                count: 0,
            }
        }

        /// Encodes the script.
        pub fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            tlv::encode_constructed(RESPONSE_SCRIPT, &mut out, |out| {
                for item in &self.items {
                    match item {
                        ResponseItem::RApdu(rapdu) => tlv::encode_tlv(R_APDU, rapdu, out),
                        ResponseItem::Atr(atr) => tlv::encode_tlv(RESET_ATR, atr, out),
                        ResponseItem::Close { message } => encode_close(message, out),
                    }
                }
                tlv::encode_tlv(EXECUTED_COUNT, &encode_u32(self.count), out);
            });
            out
        }

        /// Decodes a script.
        pub fn decode(bytes: &[u8]) -> Result<Self, RamError> {
            let outer = outer(bytes, &[RESPONSE_SCRIPT])?;
            if outer.is_indefinite() {
                return Err(RamError::Indefinite("response script"));
            }
            let mut items = Vec::new();
            let mut count = None;
            for child in outer.children() {
                let child = child?;
                match child.tag() {
                    t if t == R_APDU => {
                        items.push(ResponseItem::RApdu(leaf(&child, "r-apdu")?.to_vec()))
                    }
                    t if t == RESET_ATR => {
                        items.push(ResponseItem::Atr(leaf(&child, "atr")?.to_vec()))
                    }
                    t if t == CLOSE => items.push(ResponseItem::Close {
                        message: decode_close(&child)?,
                    }),
                    t if t == EXECUTED_COUNT => {
                        if count.is_some() {
                            return Err(RamError::Duplicate("count"));
                        }
                        count = Some(decode_u32(leaf(&child, "count")?, "count")?);
                    }
                    tag => {
                        return Err(RamError::UnknownTag {
                            tag,
                            template: "response script",
                        })
                    }
                }
            }
            Ok(Self {
                items,
                count: count.ok_or(RamError::Missing("count"))?,
            })
        }
    }
}

/// The GlobalPlatform Amd B dialect: TS 102 226 expanded-format scripts (ramoverhttp.md §2.1).
pub mod gp {
    use super::*;

    /// How a template is framed.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Form {
        /// `AA` / `AB` with a definite length.
        Definite,
        /// `AE 80 ... 00 00` / `AF 80 ... 00 00`.
        Indefinite,
    }

    /// One object of a command script.
    ///
    /// Only C-APDUs are meaningful to a card relay; the other objects are UICC actions
    /// (proactive commands, error actions, chaining) kept opaque.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum CommandItem {
        /// `22 C-APDU`. Decoding also accepts `A2`, the tag with the comprehension-required
        /// bit that some cards write; encoding always writes `22`.
        #[doc(alias = "C-APDU")]
        Apdu(Vec<u8>),
        /// `81`: Immediate Action TLV.
        ImmediateAction(Vec<u8>),
        /// `82`: Error Action TLV.
        ErrorAction(Vec<u8>),
        /// `83`: Script Chaining TLV.
        ScriptChaining(Vec<u8>),
    }

    /// A command script: `AA { item... }` or `AE 80 item... 00 00`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[doc(alias = "Command Scripting template")]
    pub struct CommandScript {
        /// The framing; a response uses the same one (`AE` is answered by `AF`).
        pub form: Form,
        /// The objects in order.
        pub items: Vec<CommandItem>,
    }

    impl CommandScript {
        /// Encodes the script: `AA` with a minimal definite length, or `AE 80 ... 00 00`.
        pub fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            let write = |out: &mut Vec<u8>| {
                for item in &self.items {
                    let (tag, value) = match item {
                        CommandItem::Apdu(v) => (C_APDU, v),
                        CommandItem::ImmediateAction(v) => (IMMEDIATE_ACTION, v),
                        CommandItem::ErrorAction(v) => (ERROR_ACTION, v),
                        CommandItem::ScriptChaining(v) => (SCRIPT_CHAINING, v),
                    };
                    tlv::encode_tlv(tag, value, out);
                }
            };
            match self.form {
                Form::Definite => tlv::encode_constructed(COMMAND_SCRIPT, &mut out, write),
                Form::Indefinite => {
                    tlv::encode_indefinite(COMMAND_SCRIPT_INDEFINITE, &mut out, write)
                }
            }
            out
        }

        /// Decodes a script. The form follows the tag (`AA` definite, `AE` indefinite);
        /// either tag is accepted with either length form. Unknown tags are errors.
        pub fn decode(bytes: &[u8]) -> Result<Self, RamError> {
            let outer = outer(bytes, &[COMMAND_SCRIPT, COMMAND_SCRIPT_INDEFINITE])?;
            let form = if outer.tag() == COMMAND_SCRIPT {
                Form::Definite
            } else {
                Form::Indefinite
            };
            let mut items = Vec::new();
            for child in outer.children() {
                let child = child?;
                let item = match child.tag() {
                    t if t == C_APDU || t == C_APDU_CR => {
                        CommandItem::Apdu(leaf(&child, "c-apdu")?.to_vec())
                    }
                    t if t == IMMEDIATE_ACTION => {
                        CommandItem::ImmediateAction(leaf(&child, "immediate action")?.to_vec())
                    }
                    t if t == ERROR_ACTION => {
                        CommandItem::ErrorAction(leaf(&child, "error action")?.to_vec())
                    }
                    t if t == SCRIPT_CHAINING => {
                        CommandItem::ScriptChaining(leaf(&child, "script chaining")?.to_vec())
                    }
                    tag => {
                        return Err(RamError::UnknownTag {
                            tag,
                            template: "command script",
                        })
                    }
                };
                items.push(item);
            }
            Ok(Self { form, items })
        }
    }

    /// The error type of a Bad Format TLV (`90`, TS 102 226).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum BadFormat {
        /// `01`: unknown tag.
        UnknownTag,
        /// `02`: wrong length.
        WrongLength,
        /// `03`: length not found.
        LengthNotFound,
        /// Any other value.
        Other(u8),
    }

    impl BadFormat {
        /// The value byte.
        pub fn to_u8(self) -> u8 {
            match self {
                BadFormat::UnknownTag => 0x01,
                BadFormat::WrongLength => 0x02,
                BadFormat::LengthNotFound => 0x03,
                BadFormat::Other(b) => b,
            }
        }

        /// The error type named by a value byte.
        pub fn from_u8(byte: u8) -> Self {
            match byte {
                0x01 => BadFormat::UnknownTag,
                0x02 => BadFormat::WrongLength,
                0x03 => BadFormat::LengthNotFound,
                b => BadFormat::Other(b),
            }
        }

        /// The error type that describes why a command script did not decode.
        pub fn for_error(error: &RamError) -> Self {
            match error {
                RamError::UnknownTag { .. } | RamError::UnexpectedTemplate(_) => {
                    BadFormat::UnknownTag
                }
                RamError::Tlv(
                    TlvError::TruncatedLength
                    | TlvError::BadLength { .. }
                    | TlvError::UnterminatedIndefinite,
                ) => BadFormat::LengthNotFound,
                _ => BadFormat::WrongLength,
            }
        }
    }

    /// One object of a response script.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum ResponseItem {
        /// `23 R-APDU`: response data ‖ SW1 SW2.
        #[doc(alias = "R-APDU")]
        RApdu(Vec<u8>),
        /// `90 xx`: the command script was malformed.
        BadFormat(BadFormat),
        /// `81`: Immediate Action Response TLV, kept opaque.
        ImmediateActionResponse(Vec<u8>),
        /// `83`: Script Chaining Response TLV, kept opaque.
        ScriptChainingResponse(Vec<u8>),
    }

    /// A response script: `AB { 80 count, item... }` or `AF 80 [80 count] item... 00 00`.
    ///
    /// The count comes first. The indefinite form usually has no count (the 2019 card trace
    /// `AF 80 23 02 6A 88 00 00`), but some implementations write one, so decoding accepts
    /// the `80` object anywhere, at most once, in both forms.
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[doc(alias = "Response Scripting template")]
    pub struct ResponseScript {
        /// The framing: `AB` or `AF`.
        pub form: Form,
        /// The number of executed command objects, written first when present.
        pub count: Option<u32>,
        /// The responses in order.
        pub items: Vec<ResponseItem>,
    }

    impl ResponseScript {
        /// Encodes the script; a count is written in one byte when it fits.
        pub fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            let write = |out: &mut Vec<u8>| {
                if let Some(count) = self.count {
                    tlv::encode_tlv(EXECUTED_COUNT, &encode_u32(count), out);
                }
                for item in &self.items {
                    match item {
                        ResponseItem::RApdu(v) => tlv::encode_tlv(R_APDU, v, out),
                        ResponseItem::BadFormat(b) => {
                            tlv::encode_tlv(BAD_FORMAT, &[b.to_u8()], out)
                        }
                        ResponseItem::ImmediateActionResponse(v) => {
                            tlv::encode_tlv(IMMEDIATE_ACTION, v, out)
                        }
                        ResponseItem::ScriptChainingResponse(v) => {
                            tlv::encode_tlv(SCRIPT_CHAINING, v, out)
                        }
                    }
                }
            };
            match self.form {
                Form::Definite => tlv::encode_constructed(RESPONSE_SCRIPT, &mut out, write),
                Form::Indefinite => {
                    tlv::encode_indefinite(RESPONSE_SCRIPT_INDEFINITE, &mut out, write)
                }
            }
            out
        }

        /// Decodes a script in either form.
        pub fn decode(bytes: &[u8]) -> Result<Self, RamError> {
            let outer = outer(bytes, &[RESPONSE_SCRIPT, RESPONSE_SCRIPT_INDEFINITE])?;
            let form = if outer.tag() == RESPONSE_SCRIPT {
                Form::Definite
            } else {
                Form::Indefinite
            };
            let mut count = None;
            let mut items = Vec::new();
            for child in outer.children() {
                let child = child?;
                match child.tag() {
                    t if t == EXECUTED_COUNT => {
                        if count.is_some() {
                            return Err(RamError::Duplicate("count"));
                        }
                        count = Some(decode_u32(leaf(&child, "count")?, "count")?);
                    }
                    t if t == R_APDU => {
                        items.push(ResponseItem::RApdu(leaf(&child, "r-apdu")?.to_vec()))
                    }
                    t if t == BAD_FORMAT => {
                        let [byte] = leaf(&child, "bad format")? else {
                            return Err(RamError::BadLength("bad format"));
                        };
                        items.push(ResponseItem::BadFormat(BadFormat::from_u8(*byte)));
                    }
                    t if t == IMMEDIATE_ACTION => {
                        items.push(ResponseItem::ImmediateActionResponse(
                            leaf(&child, "immediate action response")?.to_vec(),
                        ))
                    }
                    t if t == SCRIPT_CHAINING => items.push(ResponseItem::ScriptChainingResponse(
                        leaf(&child, "script chaining response")?.to_vec(),
                    )),
                    tag => {
                        return Err(RamError::UnknownTag {
                            tag,
                            template: "response script",
                        })
                    }
                }
            }
            Ok(Self { form, count, items })
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::gp;
    use super::openscdp::{
        Command, CommandScript, InitiationTemplate, ResponseItem, ResponseScript,
    };
    use super::*;
    use crate::proto::hex::h;

    /// The SmartCard-HSM ATR (seed.md; ramoverhttp.md [S25]).
    const HSM_ATR: &str = "3B FE 18 00 00 81 31 FE 45 80 31 81 54 48 53 4D 31 73 80 21 40 81 07 FA";

    /// Hex followed by ASCII text followed by hex, for vectors with strings in them.
    fn hta(before: &str, text: &str, after: &str) -> Vec<u8> {
        let mut v = h(before);
        v.extend_from_slice(text.as_bytes());
        v.extend_from_slice(&h(after));
        v
    }

    #[test]
    fn integers() {
        assert_eq!(encode_u32(0), h("00"));
        assert_eq!(encode_u32(0x80), h("80"));
        assert_eq!(encode_u32(0x0100), h("01 00"));
        assert_eq!(encode_u32(u32::MAX), h("FF FF FF FF"));
        assert_eq!(decode_u32(&h("00 80"), "x"), Ok(0x80));
        assert_eq!(decode_u32(&h("00 FF FF FF FF"), "x"), Ok(u32::MAX));
        assert_eq!(
            decode_u32(&h("01 00 00 00 00"), "x"),
            Err(RamError::BadInteger("x"))
        );
        assert_eq!(decode_u32(&[], "x"), Err(RamError::BadInteger("x")));
        let signed: &[(i32, &str)] = &[
            (0, "00"),
            (1, "01"),
            (127, "7F"),
            (128, "00 80"),
            (-1, "FF"),
            (-128, "80"),
            (-129, "FF 7F"),
            (i32::MIN, "80 00 00 00"),
            (i32::MAX, "7F FF FF FF"),
        ];
        for (value, bytes) in signed {
            assert_eq!(encode_i32(*value), h(bytes), "{value}");
            assert_eq!(decode_i32(&h(bytes), "x"), Ok(*value), "{bytes}");
        }
        assert_eq!(
            decode_i32(&h("00 00 00 00 01"), "x"),
            Err(RamError::BadInteger("x"))
        );
        assert_eq!(decode_i32(&[], "x"), Err(RamError::BadInteger("x")));
    }

    #[test]
    fn initiation_template() {
        // ramoverhttp.md §2.2, first POST body.
        let bytes = hta("E8 1A C0 18", "", HSM_ATR);
        let t = InitiationTemplate {
            atr: h(HSM_ATR),
            max_capdu: None,
            max_rapdu: None,
        };
        assert_eq!(t.encode(), bytes);
        assert_eq!(bytes.len(), 2 + 2 + 24);
        assert_eq!(InitiationTemplate::decode(&bytes), Ok(t));

        let t = InitiationTemplate {
            atr: h("3B 80 00 00"),
            max_capdu: Some(65544),
            max_rapdu: Some(255),
        };
        let bytes = h("E8 0E C0 04 3B 80 00 00 C1 03 01 00 08 C2 01 FF");
        assert_eq!(t.encode(), bytes);
        assert_eq!(InitiationTemplate::decode(&bytes), Ok(t));

        assert_eq!(
            InitiationTemplate::decode(&h("E8 03 C1 01 10")),
            Err(RamError::Missing("atr"))
        );
        assert_eq!(
            InitiationTemplate::decode(&h("E8 06 C0 01 3B C0 01 3B")),
            Err(RamError::Duplicate("atr"))
        );
        assert!(matches!(
            InitiationTemplate::decode(&h("E8 03 C5 01 00")),
            Err(RamError::UnknownTag { .. })
        ));
        assert!(matches!(
            InitiationTemplate::decode(&h("AA 00")),
            Err(RamError::UnexpectedTemplate(_))
        ));
    }

    #[test]
    fn openscdp_command_select() {
        // ramoverhttp.md §2.2, server 200 body: SELECT SC-HSM.
        let bytes = h("AA 12 22 10 00 A4 04 0C 0B E8 2B 06 01 04 01 81 C3 1F 02 01");
        let script = CommandScript {
            commands: vec![Command::Apdu(h(
                "00 A4 04 0C 0B E8 2B 06 01 04 01 81 C3 1F 02 01",
            ))],
        };
        assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);
        assert_eq!(bytes.len(), 0x14);
    }

    #[test]
    fn openscdp_notify() {
        // ramoverhttp.md §2.2: notify and notify(-1, ...).
        let bytes = hta("AA 16 E0 14 02 01 01 0C 0F", "Update complete", "");
        let script = CommandScript {
            commands: vec![Command::Notify {
                id: 1,
                message: "Update complete".into(),
                time_to_completion: None,
            }],
        };
        assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);

        let bytes = hta("AA 0E E0 0C 02 01 FF 0C 07", "Failure", "");
        let script = CommandScript {
            commands: vec![Command::Notify {
                id: -1,
                message: "Failure".into(),
                time_to_completion: None,
            }],
        };
        assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);

        // With a time to completion (2016+ Java server, C3).
        let bytes = hta("AA 0D E0 0B 02 01 00 0C 03", "Abc", "C3 01 1E");
        let script = CommandScript::decode(&bytes).unwrap();
        assert_eq!(
            script.commands,
            vec![Command::Notify {
                id: 0,
                message: "Abc".into(),
                time_to_completion: Some(30)
            }]
        );
        assert_eq!(script.encode(), bytes);
    }

    #[test]
    fn openscdp_reset_and_close() {
        // ramoverhttp.md §2.2: reset.
        let bytes = h("AA 02 C0 00");
        let script = CommandScript {
            commands: vec![Command::Reset],
        };
        assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);
        // A reset with a value (a reset kind) is still a reset.
        assert_eq!(CommandScript::decode(&h("AA 03 C0 01 01")), Ok(script));

        let bytes = hta("AA 07 E1 05 0C 03", "Bye", "");
        let script = CommandScript {
            commands: vec![Command::Close {
                message: "Bye".into(),
            }],
        };
        assert_eq!(CommandScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);
        assert_eq!(
            CommandScript::decode(&h("AA 00")),
            Ok(CommandScript::default())
        );
    }

    #[test]
    fn openscdp_command_errors() {
        assert!(matches!(
            CommandScript::decode(&h("AA 03 99 01 00")),
            Err(RamError::UnknownTag {
                template: "command script",
                ..
            })
        ));
        assert_eq!(
            CommandScript::decode(&h("AE 80 22 01 00 00 00")),
            Err(RamError::UnexpectedTemplate(Tag::from_u8(0xAE).unwrap()))
        );
        assert_eq!(
            CommandScript::decode(&h("AA 80 22 01 00 00 00")),
            Err(RamError::Indefinite("command script"))
        );
        assert!(matches!(
            CommandScript::decode(&h("AA 07 E0 05 02 01 01 0C 00 00")),
            Err(RamError::Tlv(TlvError::TrailingBytes))
        ));
        assert!(matches!(
            CommandScript::decode(&h("AA 06 E0 04 02 00 0C 00")),
            Err(RamError::BadInteger("notify id"))
        ));
        assert!(matches!(
            CommandScript::decode(&h("AA 05 E0 03 0C 01 41")),
            Err(RamError::Missing("notify id"))
        ));
        // An empty text is allowed.
        assert_eq!(
            CommandScript::decode(&h("AA 07 E0 05 02 01 01 0C 00")),
            Ok(CommandScript {
                commands: vec![Command::Notify {
                    id: 1,
                    message: String::new(),
                    time_to_completion: None,
                }],
            })
        );
        assert!(matches!(
            CommandScript::decode(&h("AA 08 E0 06 02 01 01 0C 01 FF")),
            Err(RamError::Utf8(_))
        ));
        assert!(matches!(
            CommandScript::decode(&h("AA 05 22 05 00")),
            Err(RamError::Tlv(TlvError::LengthBeyondInput { .. }))
        ));
        assert!(matches!(
            CommandScript::decode(&[]),
            Err(RamError::Tlv(TlvError::TruncatedTag))
        ));
    }

    #[test]
    fn openscdp_responses() {
        // ramoverhttp.md §2.2, client reply.
        let bytes = h("AB 07 23 02 90 00 80 01 01");
        let script = ResponseScript {
            items: vec![ResponseItem::RApdu(h("90 00"))],
            count: 1,
        };
        assert_eq!(ResponseScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);

        // ramoverhttp.md §2.2, the reply to a notification.
        let bytes = h("AB 03 80 01 00");
        assert_eq!(ResponseScript::default().encode(), bytes);
        assert_eq!(
            ResponseScript::decode(&bytes),
            Ok(ResponseScript::default())
        );

        // ramoverhttp.md §2.2, the reply to a reset.
        let bytes = hta("AB 1D C0 18", "", &format!("{HSM_ATR} 80 01 00"));
        let script = ResponseScript {
            items: vec![ResponseItem::Atr(h(HSM_ATR))],
            count: 0,
        };
        assert_eq!(ResponseScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);
        assert_eq!(bytes.len(), 0x1F);

        // ramoverhttp.md §2.2, cancel.
        let bytes = hta("AB 17 E1 12 0C 10", "Session canceled", "80 01 00");
        assert_eq!(ResponseScript::abort("Session canceled").encode(), bytes);
        assert_eq!(
            ResponseScript::decode(&bytes),
            Ok(ResponseScript::abort("Session canceled"))
        );

        // A 258-byte R-APDU (256 data bytes and the SW) takes the 82 length form, and the
        // template around it too.
        let mut rapdu = vec![0xA5; 256];
        rapdu.extend_from_slice(&h("90 00"));
        let script = ResponseScript {
            items: vec![ResponseItem::RApdu(rapdu)],
            count: 1,
        };
        let bytes = script.encode();
        assert_eq!(&bytes[..8], &h("AB 82 01 09 23 82 01 02")[..]);
        assert_eq!(&bytes[bytes.len() - 5..], &h("90 00 80 01 01")[..]);
        assert_eq!(bytes.len(), 4 + 4 + 258 + 3);
        assert_eq!(ResponseScript::decode(&bytes), Ok(script));

        // The C client's two's-complement count (00 80 for 128) decodes; ours writes 80.
        let script = ResponseScript::decode(&h("AB 04 80 02 00 80")).unwrap();
        assert_eq!(script.count, 128);
        assert_eq!(script.encode(), h("AB 03 80 01 80"));

        assert_eq!(
            ResponseScript::decode(&h("AB 04 23 02 90 00")),
            Err(RamError::Missing("count"))
        );
        assert_eq!(
            ResponseScript::decode(&h("AB 06 80 01 00 80 01 00")),
            Err(RamError::Duplicate("count"))
        );
    }

    #[test]
    fn gp_command_scripts() {
        // ramoverhttp.md §2.1 examples.
        let definite = h("AA 07 22 05 80 CA FF 21 00");
        let script = gp::CommandScript {
            form: gp::Form::Definite,
            items: vec![gp::CommandItem::Apdu(h("80 CA FF 21 00"))],
        };
        assert_eq!(gp::CommandScript::decode(&definite), Ok(script.clone()));
        assert_eq!(script.encode(), definite);

        let indefinite = h("AE 80 22 05 80 CA FF 21 00 00 00");
        let script = gp::CommandScript {
            form: gp::Form::Indefinite,
            items: vec![gp::CommandItem::Apdu(h("80 CA FF 21 00"))],
        };
        assert_eq!(gp::CommandScript::decode(&indefinite), Ok(script.clone()));
        assert_eq!(script.encode(), indefinite);

        // ramoverhttp.md §1.1, the 2019 trace: GET DATA 0085 and GET STATUS.
        for (bytes, apdu) in [
            ("AE 80 22 05 80 CA 00 85 00 00 00", "80 CA 00 85 00"),
            (
                "AE 80 22 08 80 F2 80 02 02 4F 00 00 00 00",
                "80 F2 80 02 02 4F 00 00",
            ),
        ] {
            let script = gp::CommandScript::decode(&h(bytes)).unwrap();
            assert_eq!(script.form, gp::Form::Indefinite);
            assert_eq!(script.items, vec![gp::CommandItem::Apdu(h(apdu))]);
            assert_eq!(script.encode(), h(bytes));
        }

        // Opaque UICC actions, and the A2 (comprehension-required) C-APDU tag.
        let bytes = h("AA 0C 81 01 01 82 01 02 83 01 03 A2 01 00");
        let script = gp::CommandScript::decode(&bytes).unwrap();
        assert_eq!(
            script.items,
            vec![
                gp::CommandItem::ImmediateAction(h("01")),
                gp::CommandItem::ErrorAction(h("02")),
                gp::CommandItem::ScriptChaining(h("03")),
                gp::CommandItem::Apdu(h("00")),
            ]
        );
        assert_eq!(
            script.encode(),
            h("AA 0C 81 01 01 82 01 02 83 01 03 22 01 00")
        );

        // A 128-byte C-APDU needs the 81 length form (the LOAD bug in §2.1).
        let script = gp::CommandScript {
            form: gp::Form::Definite,
            items: vec![gp::CommandItem::Apdu(vec![0x80; 0xF5])],
        };
        assert_eq!(&script.encode()[..5], &h("AA 81 F8 22 81")[..]);
    }

    #[test]
    fn gp_command_errors() {
        assert!(matches!(
            gp::CommandScript::decode(&h("AA 03 C0 01 00")),
            Err(RamError::UnknownTag { .. })
        ));
        assert!(matches!(
            gp::CommandScript::decode(&h("AB 03 80 01 00")),
            Err(RamError::UnexpectedTemplate(_))
        ));
        assert_eq!(
            gp::CommandScript::decode(&h("AE 80 22 80 00 00 00 00")),
            Err(RamError::Indefinite("c-apdu"))
        );
        assert_eq!(
            gp::CommandScript::decode(&h("AE 80 22 01 00")),
            Err(RamError::Tlv(TlvError::UnterminatedIndefinite))
        );
    }

    #[test]
    fn gp_response_scripts() {
        // ramoverhttp.md §1.1, the 2019 trace: AF without a count.
        let bytes = h("AF 80 23 02 6A 88 00 00");
        let script = gp::ResponseScript {
            form: gp::Form::Indefinite,
            count: None,
            items: vec![gp::ResponseItem::RApdu(h("6A 88"))],
        };
        assert_eq!(gp::ResponseScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);

        // ramoverhttp.md §2.1: AF with a count, as synthetic tests write it.
        let bytes = h("AF 80 80 01 01 23 04 93 05 90 00 00 00");
        let script = gp::ResponseScript::decode(&bytes).unwrap();
        assert_eq!(script.count, Some(1));
        assert_eq!(
            script.items,
            vec![gp::ResponseItem::RApdu(h("93 05 90 00"))]
        );
        assert_eq!(script.encode(), bytes);

        // ramoverhttp.md §2.1: the definite response.
        let bytes = h("AB 08 80 01 01 23 03 01 90 00");
        let script = gp::ResponseScript {
            form: gp::Form::Definite,
            count: Some(1),
            items: vec![gp::ResponseItem::RApdu(h("01 90 00"))],
        };
        assert_eq!(gp::ResponseScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);
        assert_eq!(bytes.len(), 10);

        // ramoverhttp.md §2.1: zero executed, bad format "wrong length".
        let bytes = h("AB 06 80 01 00 90 01 02");
        let script = gp::ResponseScript {
            form: gp::Form::Definite,
            count: Some(0),
            items: vec![gp::ResponseItem::BadFormat(gp::BadFormat::WrongLength)],
        };
        assert_eq!(gp::ResponseScript::decode(&bytes), Ok(script.clone()));
        assert_eq!(script.encode(), bytes);

        // The count after the R-APDUs (the OpenSCDP order) still decodes.
        let script = gp::ResponseScript::decode(&h("AB 07 23 02 90 00 80 01 01")).unwrap();
        assert_eq!(script.count, Some(1));

        assert_eq!(
            gp::ResponseScript::decode(&h("AB 04 90 02 01 02")),
            Err(RamError::BadLength("bad format"))
        );
        for b in 0..=255u8 {
            assert_eq!(gp::BadFormat::from_u8(b).to_u8(), b);
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::gp;
    use super::openscdp::{
        Command, CommandScript, InitiationTemplate, ResponseItem, ResponseScript,
    };

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        vec(any::<u8>(), 0..300)
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            bytes().prop_map(Command::Apdu),
            Just(Command::Reset),
            (any::<i32>(), ".{0,20}", proptest::option::of(any::<u32>())).prop_map(
                |(id, message, time_to_completion)| Command::Notify {
                    id,
                    message,
                    time_to_completion
                }
            ),
            ".{0,20}".prop_map(|message| Command::Close { message }),
        ]
    }

    fn response_item() -> impl Strategy<Value = ResponseItem> {
        prop_oneof![
            bytes().prop_map(ResponseItem::RApdu),
            bytes().prop_map(ResponseItem::Atr),
            ".{0,20}".prop_map(|message| ResponseItem::Close { message }),
        ]
    }

    fn form() -> impl Strategy<Value = gp::Form> {
        prop_oneof![Just(gp::Form::Definite), Just(gp::Form::Indefinite)]
    }

    fn gp_command_item() -> impl Strategy<Value = gp::CommandItem> {
        prop_oneof![
            bytes().prop_map(gp::CommandItem::Apdu),
            bytes().prop_map(gp::CommandItem::ImmediateAction),
            bytes().prop_map(gp::CommandItem::ErrorAction),
            bytes().prop_map(gp::CommandItem::ScriptChaining),
        ]
    }

    fn gp_response_item() -> impl Strategy<Value = gp::ResponseItem> {
        prop_oneof![
            bytes().prop_map(gp::ResponseItem::RApdu),
            any::<u8>().prop_map(|b| gp::ResponseItem::BadFormat(gp::BadFormat::from_u8(b))),
            bytes().prop_map(gp::ResponseItem::ImmediateActionResponse),
            bytes().prop_map(gp::ResponseItem::ScriptChainingResponse),
        ]
    }

    proptest! {
        #[test]
        fn decode_no_panic(data in vec(any::<u8>(), 0..64)) {
            let _ = InitiationTemplate::decode(&data);
            let _ = CommandScript::decode(&data);
            let _ = ResponseScript::decode(&data);
            let _ = gp::CommandScript::decode(&data);
            let _ = gp::ResponseScript::decode(&data);
        }

        #[test]
        fn decode_no_panic_with_template_tags(tag in prop::sample::select(vec![0xAAu8, 0xAB, 0xAE, 0xAF, 0xE8]), len in any::<u8>(), data in vec(any::<u8>(), 0..64)) {
            let mut input = vec![tag, len];
            input.extend_from_slice(&data);
            let _ = InitiationTemplate::decode(&input);
            let _ = CommandScript::decode(&input);
            let _ = ResponseScript::decode(&input);
            let _ = gp::CommandScript::decode(&input);
            let _ = gp::ResponseScript::decode(&input);
        }

        #[test]
        fn initiation_round_trip(atr in bytes(), max_capdu in proptest::option::of(any::<u32>()), max_rapdu in proptest::option::of(any::<u32>())) {
            let t = InitiationTemplate { atr, max_capdu, max_rapdu };
            prop_assert_eq!(InitiationTemplate::decode(&t.encode()), Ok(t));
        }

        #[test]
        fn openscdp_round_trip(commands in vec(command(), 0..6), items in vec(response_item(), 0..6), count in any::<u32>()) {
            let script = CommandScript { commands };
            prop_assert_eq!(CommandScript::decode(&script.encode()), Ok(script));
            let script = ResponseScript { items, count };
            prop_assert_eq!(ResponseScript::decode(&script.encode()), Ok(script));
        }

        #[test]
        fn gp_round_trip(form in form(), items in vec(gp_command_item(), 0..6), rform in form(), count in proptest::option::of(any::<u32>()), ritems in vec(gp_response_item(), 0..6)) {
            let script = gp::CommandScript { form, items };
            prop_assert_eq!(gp::CommandScript::decode(&script.encode()), Ok(script));
            let script = gp::ResponseScript { form: rform, count, items: ritems };
            prop_assert_eq!(gp::ResponseScript::decode(&script.encode()), Ok(script));
        }
    }
}
