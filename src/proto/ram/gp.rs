//! The GlobalPlatform Amd B dialect: TS 102 226 expanded-format scripts (ramoverhttp.md §2.1).

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
            Form::Indefinite => tlv::encode_indefinite(COMMAND_SCRIPT_INDEFINITE, &mut out, write),
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
            RamError::UnknownTag { .. } | RamError::UnexpectedTemplate(_) => BadFormat::UnknownTag,
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
                    ResponseItem::BadFormat(b) => tlv::encode_tlv(BAD_FORMAT, &[b.to_u8()], out),
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
            Form::Indefinite => tlv::encode_indefinite(RESPONSE_SCRIPT_INDEFINITE, &mut out, write),
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
                t if t == IMMEDIATE_ACTION => items.push(ResponseItem::ImmediateActionResponse(
                    leaf(&child, "immediate action response")?.to_vec(),
                )),
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
