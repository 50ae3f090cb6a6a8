//! The OpenSCDP / CardContact dialect (ramoverhttp.md §1.2, §2.2). All templates use
//! definite lengths.

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
                t if t == RESET_ATR => items.push(ResponseItem::Atr(leaf(&child, "atr")?.to_vec())),
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
