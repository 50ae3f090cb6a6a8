//! BER-TLV as ISO/IEC 7816-4 §5.2 uses it (the basic encoding rules of ITU-T X.690 §8.1).
//!
//! A data object is `tag ‖ length ‖ value`:
//! - **Tag** (7816-4 §5.2.1, X.690 §8.1.2): one to three bytes here. In the first byte, b8-b7
//!   give the class, b6 says constructed, b5-b1 give the number; b5-b1 all ones (`1F`, `5F`,
//!   `7F`, `9F`, `BF`, `DF`, `FF`) say more tag bytes follow, each with b8 set when yet another
//!   byte follows.
//! - **Length** (7816-4 §5.2.2, X.690 §8.1.3): `00`-`7F` is the length itself; `81 xx`,
//!   `82 xx xx`, `83 xx xx xx` and `84 xx xx xx xx` carry it in 1 to 4 big-endian bytes; `80`
//!   is the indefinite form (X.690 §8.1.3.6), allowed only on constructed tags, whose value
//!   runs up to the matching end-of-contents `00 00`.
//!
//! The parser is zero-copy ([`Tlv`] borrows the input) and bounds nesting at [`MAX_DEPTH`], so
//! a thousand nested templates are an error rather than a stack overflow. The encoder always
//! writes the minimal definite length.

use std::fmt;

use super::bytes::Cursor;
use super::hex;

/// The deepest nesting the parser accepts: a top-level object has depth 0 and the children
/// of an object at depth `d` have depth `d + 1`.
pub const MAX_DEPTH: usize = 32;

/// The longest tag, in bytes, that this implementation accepts (7816-4 §5.2.1).
pub const MAX_TAG_SIZE: usize = 3;

/// Errors from decoding BER-TLV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ended inside a tag.
    #[error("truncated tag")]
    TruncatedTag,
    /// A tag longer than three bytes, or with a non-minimal first subsequent byte `80`
    /// (X.690 §8.1.2.4.2 c).
    #[error("bad tag")]
    BadTag,
    /// The input ended inside a length field.
    #[error("truncated length")]
    TruncatedLength,
    /// A length form this implementation does not read (`85` and above, or reserved `FF`).
    #[error("unsupported length form {first:#04x}")]
    BadLength {
        /// The first length byte.
        first: u8,
    },
    /// A definite length larger than the bytes that follow.
    #[error("length {length} beyond input ({available} bytes left)")]
    LengthBeyondInput {
        /// The length the object announced.
        length: usize,
        /// The bytes actually left.
        available: usize,
    },
    /// An indefinite length whose end-of-contents `00 00` never came.
    #[error("unterminated indefinite length")]
    UnterminatedIndefinite,
    /// An indefinite length on a primitive tag (X.690 §8.1.3.2 a).
    #[error("indefinite length on a primitive tag")]
    IndefinitePrimitive,
    /// An end-of-contents marker where no indefinite value was open, or with a non-zero length.
    #[error("unexpected end-of-contents")]
    UnexpectedEndOfContents,
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting too deep")]
    TooDeep,
    /// Bytes after the one object that was expected.
    #[error("trailing bytes after the object")]
    TrailingBytes,
}

/// The class of a tag: b8-b7 of its first byte (X.690 §8.1.2.2, Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// `00xxxxxx`.
    Universal,
    /// `01xxxxxx`.
    Application,
    /// `10xxxxxx`.
    ContextSpecific,
    /// `11xxxxxx`.
    Private,
}

/// A BER tag of one to three bytes (7816-4 §5.2.1), kept as its encoded bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    bytes: [u8; MAX_TAG_SIZE],
    // INVARIANT: 1 <= size <= 3, and bytes[..size] is one complete, valid tag.
    size: u8,
}

impl Tag {
    /// The end-of-contents tag `00` that closes an indefinite value (X.690 §8.1.5).
    pub const END_OF_CONTENTS: Tag = Tag {
        bytes: [0, 0, 0],
        size: 1,
    };

    /// A one-byte tag, or `None` when `byte` announces a multi-byte tag (b5-b1 all ones).
    pub const fn from_u8(byte: u8) -> Option<Tag> {
        if byte & 0x1F == 0x1F {
            None
        } else {
            Some(Tag {
                bytes: [byte, 0, 0],
                size: 1,
            })
        }
    }

    /// Reads one tag from `cursor`.
    pub fn decode(cursor: &mut Cursor<'_>) -> Result<Tag, TlvError> {
        let first = cursor.u8().ok_or(TlvError::TruncatedTag)?;
        if first & 0x1F != 0x1F {
            return Ok(Tag {
                bytes: [first, 0, 0],
                size: 1,
            });
        }
        let second = cursor.u8().ok_or(TlvError::TruncatedTag)?;
        // X.690 §8.1.2.4.2 c: the first subsequent byte may not be 80 (a leading zero group).
        if second == 0x80 {
            return Err(TlvError::BadTag);
        }
        if second & 0x80 == 0 {
            return Ok(Tag {
                bytes: [first, second, 0],
                size: 2,
            });
        }
        let third = cursor.u8().ok_or(TlvError::TruncatedTag)?;
        if third & 0x80 != 0 {
            return Err(TlvError::BadTag);
        }
        Ok(Tag {
            bytes: [first, second, third],
            size: 3,
        })
    }

    /// Parses `bytes` as exactly one tag.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tag, TlvError> {
        let mut cursor = Cursor::new(bytes);
        let tag = Tag::decode(&mut cursor)?;
        if cursor.is_empty() {
            Ok(tag)
        } else {
            Err(TlvError::BadTag)
        }
    }

    /// The encoded tag bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.size)).unwrap_or(&[])
    }

    /// The number of tag bytes (1 to 3).
    pub fn size(&self) -> usize {
        usize::from(self.size)
    }

    /// The class, from b8-b7 of the first byte.
    pub fn class(&self) -> Class {
        match self.bytes[0] >> 6 {
            0 => Class::Universal,
            1 => Class::Application,
            2 => Class::ContextSpecific,
            _ => Class::Private,
        }
    }

    /// Whether b6 of the first byte marks a constructed object (one whose value is TLVs).
    pub fn is_constructed(&self) -> bool {
        self.bytes[0] & 0x20 != 0
    }

    /// The tag number: b5-b1 of a one-byte tag, or the 7-bit groups of the subsequent bytes.
    pub fn number(&self) -> u32 {
        if self.size == 1 {
            return u32::from(self.bytes[0] & 0x1F);
        }
        self.as_bytes()
            .iter()
            .skip(1)
            .fold(0u32, |n, b| (n << 7) | u32::from(b & 0x7F))
    }

    /// Appends the tag bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", hex::compact(self.as_bytes()))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::compact(self.as_bytes()))
    }
}

/// A decoded length field (7816-4 §5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// A definite length in bytes.
    Definite(usize),
    /// `80`: the value runs up to the matching end-of-contents `00 00`.
    Indefinite,
}

impl Length {
    /// Reads one length field from `cursor`: `00`-`7F`, `80`, or `81`-`84` with 1 to 4 bytes.
    /// Non-minimal long forms (`81 05`) are accepted, as BER allows.
    pub fn decode(cursor: &mut Cursor<'_>) -> Result<Length, TlvError> {
        let first = cursor.u8().ok_or(TlvError::TruncatedLength)?;
        match first {
            0x00..=0x7F => Ok(Length::Definite(usize::from(first))),
            0x80 => Ok(Length::Indefinite),
            0x81..=0x84 => {
                let count = usize::from(first & 0x7F);
                let bytes = cursor.take(count).ok_or(TlvError::TruncatedLength)?;
                let value = bytes.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b));
                // A length that does not fit usize cannot be satisfied by any input either.
                let length = usize::try_from(value).map_err(|_| TlvError::LengthBeyondInput {
                    length: usize::MAX,
                    available: cursor.remaining(),
                })?;
                Ok(Length::Definite(length))
            }
            _ => Err(TlvError::BadLength { first }),
        }
    }
}

/// One decoded data object, borrowing the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    tag: Tag,
    value: &'a [u8],
    raw: &'a [u8],
    indefinite: bool,
    depth: usize,
}

impl<'a> Tlv<'a> {
    /// Parses the first object of `input` (at depth 0) and returns it with the bytes after it.
    pub fn parse(input: &'a [u8]) -> Result<(Tlv<'a>, &'a [u8]), TlvError> {
        let mut cursor = Cursor::new(input);
        let tlv = read_tlv(&mut cursor, 0)?;
        Ok((tlv, cursor.rest()))
    }

    /// Parses `input` as exactly one object; bytes after it are [`TlvError::TrailingBytes`].
    pub fn parse_exact(input: &'a [u8]) -> Result<Tlv<'a>, TlvError> {
        let (tlv, rest) = Tlv::parse(input)?;
        if rest.is_empty() {
            Ok(tlv)
        } else {
            Err(TlvError::TrailingBytes)
        }
    }

    /// The tag.
    pub fn tag(&self) -> Tag {
        self.tag
    }

    /// The value field. For an indefinite length this is the content between `80` and the
    /// closing `00 00`, without the end-of-contents marker.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The whole encoding: tag, length, value and, for an indefinite length, the `00 00`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Whether the length was the indefinite form `80`.
    pub fn is_indefinite(&self) -> bool {
        self.indefinite
    }

    /// The nesting depth: 0 for a top-level object.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The value parsed as a sequence of objects one level deeper. This does not look at
    /// the constructed bit: the caller decides whether the value is made of TLVs.
    pub fn children(&self) -> Tlvs<'a> {
        Tlvs::at_depth(self.value, self.depth.saturating_add(1))
    }
}

/// An iterator over a sequence of objects. It yields an error at most once and then stops.
#[derive(Debug, Clone)]
pub struct Tlvs<'a> {
    cursor: Cursor<'a>,
    depth: usize,
    done: bool,
}

impl<'a> Tlvs<'a> {
    /// Iterates the top-level objects of `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Tlvs::at_depth(input, 0)
    }

    fn at_depth(input: &'a [u8], depth: usize) -> Self {
        Tlvs {
            cursor: Cursor::new(input),
            depth,
            done: false,
        }
    }
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.cursor.is_empty() {
            return None;
        }
        let item = if self.depth > MAX_DEPTH {
            Err(TlvError::TooDeep)
        } else {
            read_tlv(&mut self.cursor, self.depth)
        };
        if item.is_err() {
            self.done = true;
        }
        Some(item)
    }
}

impl std::iter::FusedIterator for Tlvs<'_> {}

/// Reads one object at `depth` from `cursor`.
fn read_tlv<'a>(cursor: &mut Cursor<'a>, depth: usize) -> Result<Tlv<'a>, TlvError> {
    let start = cursor.rest();
    let tag = Tag::decode(cursor)?;
    if tag == Tag::END_OF_CONTENTS {
        return Err(TlvError::UnexpectedEndOfContents);
    }
    let (value, indefinite) = match Length::decode(cursor)? {
        Length::Definite(length) => {
            let available = cursor.remaining();
            let value = cursor
                .take(length)
                .ok_or(TlvError::LengthBeyondInput { length, available })?;
            (value, false)
        }
        Length::Indefinite => {
            if !tag.is_constructed() {
                return Err(TlvError::IndefinitePrimitive);
            }
            let content = indefinite_content_len(cursor.rest(), depth)?;
            let value = cursor
                .take(content)
                .ok_or(TlvError::UnterminatedIndefinite)?;
            cursor.take(2).ok_or(TlvError::UnterminatedIndefinite)?;
            (value, true)
        }
    };
    let consumed = start.len() - cursor.remaining();
    let raw = start.get(..consumed).unwrap_or(start);
    Ok(Tlv {
        tag,
        value,
        raw,
        indefinite,
        depth,
    })
}

/// Finds where the content of an indefinite value opened by an object at `depth` ends, that
/// is the offset of its closing `00 00` in `input`. The scan is iterative: nested indefinite
/// values only raise a counter, bounded by [`MAX_DEPTH`].
fn indefinite_content_len(input: &[u8], depth: usize) -> Result<usize, TlvError> {
    let mut cursor = Cursor::new(input);
    // INVARIANT: `open` counts the indefinite values not yet closed, the outer one included.
    let mut open: usize = 1;
    loop {
        if cursor.is_empty() {
            return Err(TlvError::UnterminatedIndefinite);
        }
        let before = cursor.position();
        let tag = Tag::decode(&mut cursor)?;
        let length = Length::decode(&mut cursor)?;
        if tag == Tag::END_OF_CONTENTS {
            if length != Length::Definite(0) {
                return Err(TlvError::UnexpectedEndOfContents);
            }
            open -= 1;
            if open == 0 {
                return Ok(before);
            }
            continue;
        }
        match length {
            Length::Definite(length) => {
                let available = cursor.remaining();
                cursor
                    .take(length)
                    .ok_or(TlvError::LengthBeyondInput { length, available })?;
            }
            Length::Indefinite => {
                if !tag.is_constructed() {
                    return Err(TlvError::IndefinitePrimitive);
                }
                // The object just opened sits at depth + open.
                if depth.saturating_add(open) > MAX_DEPTH {
                    return Err(TlvError::TooDeep);
                }
                open += 1;
            }
        }
    }
}

/// The size of the minimal definite length field for `length` (X.690 §8.1.3.5).
pub fn length_size(length: usize) -> usize {
    if length < 0x80 {
        1
    } else {
        1 + significant_bytes(length)
    }
}

fn significant_bytes(value: usize) -> usize {
    let bits = usize::BITS - value.leading_zeros();
    // INVARIANT: bits <= usize::BITS, so the byte count is at most 16 and fits usize.
    usize::try_from(bits.div_ceil(8)).unwrap_or(usize::MAX)
}

/// Appends the minimal definite length field for `length`: one byte below 128, otherwise
/// `81`, `82`, ... followed by the big-endian length.
pub fn encode_length(length: usize, out: &mut Vec<u8>) {
    if let Ok(short) = u8::try_from(length) {
        if short < 0x80 {
            out.push(short);
            return;
        }
    }
    let count = significant_bytes(length);
    let bytes = length.to_be_bytes();
    let skip = bytes.len() - count;
    // INVARIANT: count <= size_of::<usize>() <= 16, so 0x80 | count stays a length-of-length.
    out.push(0x80 | u8::try_from(count).unwrap_or(0x7F));
    out.extend(bytes.iter().skip(skip));
}

/// The size of `tag ‖ length ‖ value` with a minimal definite length.
pub fn tlv_size(tag: Tag, value_len: usize) -> usize {
    tag.size() + length_size(value_len) + value_len
}

/// Appends `tag ‖ length ‖ value` with a minimal definite length.
pub fn encode_tlv(tag: Tag, value: &[u8], out: &mut Vec<u8>) {
    tag.encode(out);
    encode_length(value.len(), out);
    out.extend_from_slice(value);
}

/// Appends a definite-length constructed object whose value `children` writes into the
/// buffer they are given (X.690 §8.1.2.5); nested calls build nested templates. The value is
/// written apart and then appended: no `Vec::splice`, whose range checks bring core's slice
/// panic texts into the wasm (issue 18).
pub fn encode_constructed(tag: Tag, out: &mut Vec<u8>, children: impl FnOnce(&mut Vec<u8>)) {
    let mut value = Vec::new();
    children(&mut value);
    encode_tlv(tag, &value, out);
}

/// Appends `tag 80 ‖ children ‖ 00 00`, an indefinite-length object (X.690 §8.1.3.6).
/// `tag` must be constructed; the children should use definite lengths.
pub fn encode_indefinite(tag: Tag, out: &mut Vec<u8>, children: impl FnOnce(&mut Vec<u8>)) {
    tag.encode(out);
    out.push(0x80);
    children(out);
    out.extend_from_slice(&[0x00, 0x00]);
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::*;
    use crate::proto::hex::h;

    fn tag(bytes: &str) -> Tag {
        Tag::from_bytes(&h(bytes)).unwrap()
    }

    #[test]
    fn one_byte_tags() {
        // 7816-4 §5.2.1: 'AA' is context-specific and constructed, 'C0' private and primitive.
        let aa = tag("AA");
        assert_eq!(aa.class(), Class::ContextSpecific);
        assert!(aa.is_constructed());
        assert_eq!(aa.number(), 10);
        assert_eq!(aa.size(), 1);
        let c0 = tag("C0");
        assert_eq!(c0.class(), Class::Private);
        assert!(!c0.is_constructed());
        assert_eq!(tag("02").class(), Class::Universal);
        assert_eq!(tag("61").class(), Class::Application);
        assert_eq!(Tag::from_u8(0x9F), None);
        assert_eq!(Tag::from_u8(0x22), Some(tag("22")));
    }

    #[test]
    fn multi_byte_tags() {
        // EMV-style two-byte tags and a three-byte tag (7816-4 §5.2.1).
        let t = tag("9F 10");
        assert_eq!(t.size(), 2);
        assert_eq!(t.number(), 0x10);
        assert_eq!(t.class(), Class::ContextSpecific);
        let t = tag("5F 20");
        assert_eq!(t.class(), Class::Application);
        assert_eq!(t.to_string(), "5F20");
        let t = tag("7F 21");
        assert!(t.is_constructed());
        let t = tag("DF 81 01");
        assert_eq!(t.size(), 3);
        assert_eq!(t.number(), 0x81);
        assert_eq!(t.as_bytes(), &h("DF 81 01")[..]);
        let mut out = Vec::new();
        t.encode(&mut out);
        assert_eq!(out, h("DF 81 01"));
    }

    #[test]
    fn bad_tags() {
        assert_eq!(Tag::from_bytes(&[]), Err(TlvError::TruncatedTag));
        assert_eq!(Tag::from_bytes(&h("9F")), Err(TlvError::TruncatedTag));
        assert_eq!(Tag::from_bytes(&h("9F 81")), Err(TlvError::TruncatedTag));
        assert_eq!(Tag::from_bytes(&h("9F 80 01")), Err(TlvError::BadTag));
        assert_eq!(Tag::from_bytes(&h("9F 81 81 01")), Err(TlvError::BadTag));
        assert_eq!(Tag::from_bytes(&h("9F 10 00")), Err(TlvError::BadTag));
    }

    #[test]
    fn lengths_decode() {
        let cases: &[(&str, Length)] = &[
            ("00", Length::Definite(0)),
            ("7F", Length::Definite(127)),
            ("80", Length::Indefinite),
            ("81 80", Length::Definite(128)),
            ("81 05", Length::Definite(5)),
            ("82 01 00", Length::Definite(256)),
            ("83 01 00 00", Length::Definite(65536)),
            ("84 01 00 00 00", Length::Definite(0x0100_0000)),
        ];
        for (bytes, want) in cases {
            let b = h(bytes);
            let mut c = Cursor::new(&b);
            assert_eq!(Length::decode(&mut c), Ok(*want), "{bytes}");
            assert!(c.is_empty());
        }
        let b = h("82 01");
        assert_eq!(
            Length::decode(&mut Cursor::new(&b)),
            Err(TlvError::TruncatedLength)
        );
        let b = h("85 00 00 00 00 01");
        assert_eq!(
            Length::decode(&mut Cursor::new(&b)),
            Err(TlvError::BadLength { first: 0x85 })
        );
        assert_eq!(
            Length::decode(&mut Cursor::new(&[])),
            Err(TlvError::TruncatedLength)
        );
    }

    #[test]
    fn lengths_encode_minimal() {
        // ramoverhttp.md §2.1: a raw byte >= 80 as a length is a real-world bug; 81 xx is right.
        let cases: &[(usize, &str)] = &[
            (0, "00"),
            (127, "7F"),
            (128, "81 80"),
            (0xF5, "81 F5"),
            (255, "81 FF"),
            (256, "82 01 00"),
            (65535, "82 FF FF"),
            (65536, "83 01 00 00"),
            (0x0100_0000, "84 01 00 00 00"),
        ];
        for (length, want) in cases {
            let mut out = Vec::new();
            encode_length(*length, &mut out);
            assert_eq!(out, h(want), "{length}");
            assert_eq!(length_size(*length), out.len());
            let mut c = Cursor::new(&out);
            assert_eq!(Length::decode(&mut c), Ok(Length::Definite(*length)));
        }
    }

    #[test]
    fn definite_object() {
        // ramoverhttp.md §2.1: AA 07 22 05 80 CA FF 21 00.
        let bytes = h("AA 07 22 05 80 CA FF 21 00");
        let tlv = Tlv::parse_exact(&bytes).unwrap();
        assert_eq!(tlv.tag(), tag("AA"));
        assert!(!tlv.is_indefinite());
        assert_eq!(tlv.value(), &h("22 05 80 CA FF 21 00")[..]);
        assert_eq!(tlv.raw(), &bytes[..]);
        let children: Vec<_> = tlv.children().collect::<Result<_, _>>().unwrap();
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].tag(), tag("22"));
        assert_eq!(children[0].value(), &h("80 CA FF 21 00")[..]);
        assert_eq!(children[0].depth(), 1);
    }

    #[test]
    fn indefinite_object() {
        // ramoverhttp.md §1.1, the 2019 trace: AE 80 22 05 80 CA 00 85 00 00 00.
        let bytes = h("AE 80 22 05 80 CA 00 85 00 00 00");
        let tlv = Tlv::parse_exact(&bytes).unwrap();
        assert!(tlv.is_indefinite());
        assert_eq!(tlv.value(), &h("22 05 80 CA 00 85 00")[..]);
        assert_eq!(tlv.raw().len(), bytes.len());
        let children: Vec<_> = tlv.children().collect::<Result<_, _>>().unwrap();
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].value(), &h("80 CA 00 85 00")[..]);
    }

    #[test]
    fn nested_indefinite_objects() {
        let bytes = h("AF 80 A1 80 80 01 01 00 00 23 02 90 00 00 00 01 02");
        let (tlv, rest) = Tlv::parse(&bytes).unwrap();
        assert_eq!(rest, &h("01 02")[..]);
        let children: Vec<_> = tlv.children().collect::<Result<_, _>>().unwrap();
        assert_eq!(children.len(), 2);
        assert!(children[0].is_indefinite());
        assert_eq!(children[0].value(), &h("80 01 01")[..]);
        assert_eq!(children[1].value(), &h("90 00")[..]);
        assert_eq!(Tlv::parse_exact(&bytes), Err(TlvError::TrailingBytes));
    }

    #[test]
    fn object_errors() {
        let cases: &[(&str, TlvError)] = &[
            ("", TlvError::TruncatedTag),
            ("AA", TlvError::TruncatedLength),
            (
                "AA 05 22 01",
                TlvError::LengthBeyondInput {
                    length: 5,
                    available: 2,
                },
            ),
            ("AE 80 22 01 00", TlvError::UnterminatedIndefinite),
            ("AE 80 22 01 00 00", TlvError::TruncatedLength),
            ("80 80 00 00", TlvError::IndefinitePrimitive),
            (
                "AE 80 A1 80 80 80 00 00 00 00",
                TlvError::IndefinitePrimitive,
            ),
            ("00 00", TlvError::UnexpectedEndOfContents),
            ("AE 80 00 01 00", TlvError::UnexpectedEndOfContents),
            ("AA 86 00", TlvError::BadLength { first: 0x86 }),
        ];
        for (bytes, want) in cases {
            assert_eq!(Tlv::parse(&h(bytes)).err(), Some(want.clone()), "{bytes}");
        }
    }

    #[test]
    fn deep_indefinite_nesting_is_an_error() {
        let mut bytes = Vec::new();
        for _ in 0..1000 {
            bytes.extend_from_slice(&[0xA1, 0x80]);
        }
        for _ in 0..1000 {
            bytes.extend_from_slice(&[0x00, 0x00]);
        }
        assert_eq!(Tlv::parse(&bytes).err(), Some(TlvError::TooDeep));
    }

    #[test]
    fn depth_limit_is_exact() {
        // MAX_DEPTH + 1 nested indefinite objects: depths 0 to MAX_DEPTH are all allowed.
        let n = MAX_DEPTH + 1;
        let mut ok = Vec::new();
        ok.extend(std::iter::repeat_n([0xA1u8, 0x80], n).flatten());
        ok.extend(std::iter::repeat_n([0u8, 0], n).flatten());
        assert!(Tlv::parse_exact(&ok).is_ok());
        let mut deep = vec![0xA1, 0x80];
        deep.extend_from_slice(&ok);
        deep.extend_from_slice(&[0, 0]);
        assert_eq!(Tlv::parse(&deep).err(), Some(TlvError::TooDeep));
    }

    /// Walks every object recursively, as a caller would.
    fn walk(tlv: Tlv<'_>) -> Result<usize, TlvError> {
        let mut count = 1;
        if tlv.tag().is_constructed() {
            for child in tlv.children() {
                count += walk(child?)?;
            }
        }
        Ok(count)
    }

    #[test]
    fn deep_definite_nesting_is_an_error_when_walked() {
        let mut bytes = vec![0x80, 0x00];
        for _ in 0..1000 {
            let mut outer = Vec::new();
            encode_tlv(tag("A1"), &bytes, &mut outer);
            bytes = outer;
        }
        let tlv = Tlv::parse_exact(&bytes).unwrap();
        assert_eq!(walk(tlv), Err(TlvError::TooDeep));
    }

    #[test]
    fn sequence_iterator_stops_after_error() {
        let bytes = h("80 01 01 81 05 00");
        let mut it = Tlvs::new(&bytes);
        assert_eq!(it.next().unwrap().unwrap().value(), &[1][..]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn builders() {
        // ramoverhttp.md §2.2, the cancel body: AB 17 E1 12 0C 10 "Session canceled" 80 01 00.
        let mut out = Vec::new();
        encode_constructed(tag("AB"), &mut out, |out| {
            encode_constructed(tag("E1"), out, |out| {
                encode_tlv(tag("0C"), b"Session canceled", out);
            });
            encode_tlv(tag("80"), &[0], out);
        });
        let mut want = h("AB 17 E1 12 0C 10");
        want.extend_from_slice(b"Session canceled");
        want.extend_from_slice(&h("80 01 00"));
        assert_eq!(out, want);

        // ramoverhttp.md §2.1: AE 80 22 05 80 CA FF 21 00 00 00.
        let mut out = Vec::new();
        encode_indefinite(tag("AE"), &mut out, |out| {
            encode_tlv(tag("22"), &h("80 CA FF 21 00"), out);
        });
        assert_eq!(out, h("AE 80 22 05 80 CA FF 21 00 00 00"));

        // A long value gets a long length field, also when the length is inserted afterwards.
        let mut out = Vec::new();
        encode_constructed(tag("AA"), &mut out, |out| {
            encode_tlv(tag("22"), &[0x55; 0xF5], out);
        });
        assert_eq!(&out[..6], &h("AA 81 F8 22 81 F5")[..]);
        assert_eq!(out.len(), tlv_size(tag("AA"), tlv_size(tag("22"), 0xF5)));
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop {
    use proptest::prelude::*;

    use super::*;

    fn walk(tlv: Tlv<'_>) -> Result<(), TlvError> {
        if tlv.tag().is_constructed() {
            for child in tlv.children() {
                walk(child?)?;
            }
        }
        Ok(())
    }

    fn any_tag() -> impl Strategy<Value = Tag> {
        prop_oneof![
            any::<u8>().prop_filter_map("one-byte tag", |b| Tag::from_u8(b)
                .filter(|t| *t != Tag::END_OF_CONTENTS)),
            (0u8..8, 0x01u8..0x80).prop_map(
                |(c, n)| Tag::from_bytes(&[(c << 5) | 0x1F, n]).unwrap_or(Tag::END_OF_CONTENTS)
            ),
            (0u8..8, 0x81u8..=0xFF, 0u8..0x80).prop_map(|(c, a, b)| Tag::from_bytes(&[
                (c << 5) | 0x1F,
                a,
                b
            ])
            .unwrap_or(Tag::END_OF_CONTENTS)),
        ]
    }

    proptest! {
        #[test]
        fn parse_no_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for tlv in Tlvs::new(&bytes) {
                match tlv {
                    Ok(tlv) => { let _ = walk(tlv); }
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn parse_no_panic_on_structural_bytes(bytes in proptest::collection::vec(
            proptest::sample::select(vec![0x00u8, 0x01, 0x02, 0x22, 0x80, 0x81, 0x82, 0x84, 0x9F, 0xA1, 0xFF]),
            0..96,
        )) {
            // Bytes that are mostly tags, length forms and end-of-contents markers reach
            // the indefinite-length scanner and the depth limit far more often.
            for tlv in Tlvs::new(&bytes) {
                match tlv {
                    Ok(tlv) => { let _ = walk(tlv); }
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn encode_parse_round_trip(tag in any_tag(), value in proptest::collection::vec(any::<u8>(), 0..400)) {
            prop_assume!(tag != Tag::END_OF_CONTENTS);
            let mut out = Vec::new();
            encode_tlv(tag, &value, &mut out);
            prop_assert_eq!(out.len(), tlv_size(tag, value.len()));
            let tlv = Tlv::parse_exact(&out).unwrap();
            prop_assert_eq!(tlv.tag(), tag);
            prop_assert_eq!(tlv.value(), &value[..]);
            prop_assert_eq!(Tag::from_bytes(tag.as_bytes()), Ok(tag));
        }
    }
}
