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

pub mod gp;
pub mod openscdp;

#[cfg(test)]
mod tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop;
