//! Spaced upper-case hex, the notation of traces, test vectors and the docs.

use std::fmt::Write as _;

/// Error from [`parse`]: the text is not an even number of hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hex at character {position}")]
pub struct HexError {
    /// Index of the offending character (or of the dangling digit).
    pub position: usize,
}

/// Parses hex digits, ignoring ASCII white space anywhere: `"00 A4 04 00"`.
pub fn parse(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<(usize, u8)> = None;
    for (i, c) in text.char_indices() {
        if c.is_ascii_whitespace() {
            continue;
        }
        let v = c.to_digit(16).ok_or(HexError { position: i })?;
        // INVARIANT: to_digit(16) is below 16, so it fits in a u8.
        let v = v as u8;
        match high.take() {
            None => high = Some((i, v)),
            Some((_, h)) => out.push(h << 4 | v),
        }
    }
    match high {
        Some((i, _)) => Err(HexError { position: i }),
        None => Ok(out),
    }
}

/// Parses a hex literal known to be valid (test vectors, constants).
///
/// # Panics
/// On invalid hex: only for text written in the source, never for peer data.
#[track_caller]
pub fn h(text: &str) -> Vec<u8> {
    match parse(text) {
        Ok(v) => v,
        Err(e) => panic!("bad hex literal {text:?}: {e}"),
    }
}

/// Formats bytes as spaced upper-case hex: `[0x90, 0x00]` → `"90 00"`.
pub fn spaced(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// Formats bytes as unspaced upper-case hex: `[0x90, 0x00]` → `"9000"`.
pub fn compact(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(parse("00 a4\n04 0C").unwrap(), vec![0x00, 0xA4, 0x04, 0x0C]);
        assert_eq!(spaced(&[0x00, 0xA4, 0x04, 0x0C]), "00 A4 04 0C");
        assert_eq!(compact(&[0x90, 0x00]), "9000");
        assert_eq!(spaced(&[]), "");
    }

    #[test]
    fn errors() {
        assert_eq!(parse("0"), Err(HexError { position: 0 }));
        assert_eq!(parse("0g"), Err(HexError { position: 1 }));
        assert_eq!(parse("00 1"), Err(HexError { position: 3 }));
    }
}
