//! A small, total JSON reader and writer (RFC 8259) for the SERAM messages.
//!
//! The core crate carries no serde: the production wasm bundle has a size budget, and the
//! SERAM messages (GP SERAM `spec/gpseram.yaml`) need only objects, arrays, strings,
//! integers and booleans. Semantics a caller can trip on:
//! - Numbers are kept as their validated text ([`Value::Number`]); [`Value::as_u64`] reads
//!   a non-negative integer without a float parser (which would cost bundle bytes).
//! - An object keeps its members in document order, duplicates included;
//!   [`Value::get`] returns the first member of a name.
//! - Nesting deeper than [`MAX_DEPTH`] is an error, so hostile input cannot exhaust the
//!   stack. Any byte sequence gives a value or a [`JsonError`], never a panic.

use std::fmt::Write as _;

/// The deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 64;

/// A JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as its text (RFC 8259 §6 grammar, checked).
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object: members in document order.
    Object(Vec<(String, Value)>),
}

/// Why a text is not JSON; `offset` is the byte where reading stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct JsonError {
    /// What is wrong.
    pub kind: JsonErrorKind,
    /// The byte offset in the input.
    pub offset: usize,
}

/// The kinds of [`JsonError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// The input ended inside a value.
    #[error("unexpected end of json")]
    Eof,
    /// A byte that cannot start or continue a value here.
    #[error("unexpected character in json")]
    Unexpected,
    /// A malformed number.
    #[error("bad number in json")]
    Number,
    /// A malformed escape, a control character or invalid UTF-8 in a string.
    #[error("bad string in json")]
    String,
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("json nested too deep")]
    TooDeep,
    /// Something after the value.
    #[error("trailing data after json")]
    Trailing,
}

impl Value {
    /// Parses a whole document: one value with optional white space around it.
    pub fn parse(input: &[u8]) -> Result<Value, JsonError> {
        let mut reader = Reader { input, pos: 0 };
        let value = reader.value(0)?;
        reader.space();
        if reader.pos < input.len() {
            return Err(reader.error(JsonErrorKind::Trailing));
        }
        Ok(value)
    }

    /// The first member named `key` of an object; `None` for other values.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The items of an array value.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The texts of an array of strings; `None` for anything else.
    pub fn as_strings(&self) -> Option<Vec<String>> {
        let items = self.as_array()?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(item.as_str()?.to_owned());
        }
        Some(out)
    }

    /// A number that is a non-negative integer (no fraction, no exponent) fitting in a
    /// `u64`; `None` for anything else.
    pub fn as_u64(&self) -> Option<u64> {
        let Value::Number(text) = self else {
            return None;
        };
        if text.is_empty() {
            return None;
        }
        // Digits only (no sign, fraction or exponent), folded with overflow checks: core's
        // `u64::from_str` is a generic parser the bundle does not need (issue 18).
        text.bytes().try_fold(0u64, |n, b| {
            let digit = b.checked_sub(b'0').filter(|d| *d < 10)?;
            n.checked_mul(10)?.checked_add(u64::from(digit))
        })
    }

    /// The document text: compact, strings escaped as RFC 8259 §7 requires.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(n),
            Value::String(s) => write_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n.to_string())
    }
}

/// Builds an object from `(name, value)` pairs, in order.
pub fn object<const N: usize>(members: [(&str, Value); N]) -> Value {
    Value::Object(
        members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// Appends `s` as a JSON string literal (RFC 8259 §7). Encoders of fixed shapes write
/// their text directly with it, which is smaller in the wasm bundle than building a
/// [`Value`].
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn error(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            kind,
            offset: self.pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<u8, JsonError> {
        let b = self.peek().ok_or(self.error(JsonErrorKind::Eof))?;
        self.pos += 1;
        Ok(b)
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, word: &[u8]) -> Result<(), JsonError> {
        for &want in word {
            if self.next()? != want {
                self.pos -= 1;
                return Err(self.error(JsonErrorKind::Unexpected));
            }
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.space();
        match self.peek().ok_or(self.error(JsonErrorKind::Eof))? {
            b'n' => self.expect(b"null").map(|()| Value::Null),
            b't' => self.expect(b"true").map(|()| Value::Bool(true)),
            b'f' => self.expect(b"false").map(|()| Value::Bool(false)),
            b'"' => self.string().map(Value::String),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' | b'{' if depth >= MAX_DEPTH => Err(self.error(JsonErrorKind::TooDeep)),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.close(b']') {
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.separator(b']')? {
                        return Ok(Value::Array(items));
                    }
                }
            }
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                if self.close(b'}') {
                    return Ok(Value::Object(members));
                }
                loop {
                    self.space();
                    if self.peek() != Some(b'"') {
                        return Err(self.eof_or(JsonErrorKind::Unexpected));
                    }
                    let key = self.string()?;
                    self.space();
                    self.expect(b":")?;
                    members.push((key, self.value(depth + 1)?));
                    if self.separator(b'}')? {
                        return Ok(Value::Object(members));
                    }
                }
            }
            _ => Err(self.error(JsonErrorKind::Unexpected)),
        }
    }

    fn eof_or(&self, kind: JsonErrorKind) -> JsonError {
        if self.pos >= self.input.len() {
            self.error(JsonErrorKind::Eof)
        } else {
            self.error(kind)
        }
    }

    /// Consumes `end` after optional white space; true if it was there.
    fn close(&mut self, end: u8) -> bool {
        self.space();
        if self.peek() == Some(end) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// After an item: `,` (false) or `end` (true).
    fn separator(&mut self, end: u8) -> Result<bool, JsonError> {
        self.space();
        match self.next()? {
            b',' => Ok(false),
            b if b == end => Ok(true),
            _ => {
                self.pos -= 1;
                Err(self.error(JsonErrorKind::Unexpected))
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` (RFC 8259 §6).
    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let int_digits = self.digits();
        let leading_zero = int_digits > 1 && self.input.get(int_start) == Some(&b'0');
        if int_digits == 0 || leading_zero {
            return Err(self.error(JsonErrorKind::Number));
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error(JsonErrorKind::Number));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error(JsonErrorKind::Number));
            }
        }
        let text = self.input.get(start..self.pos).unwrap_or_default();
        // INVARIANT: the grammar above admits ASCII only, so this is valid UTF-8.
        Ok(Value::Number(
            String::from_utf8(text.to_vec()).unwrap_or_default(),
        ))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut n = 0u32;
        for _ in 0..4 {
            let d = char::from(self.next()?)
                .to_digit(16)
                .ok_or(self.error(JsonErrorKind::String))?;
            n = n * 16 + d;
        }
        Ok(n)
    }

    /// A string: the opening quote is at `pos`.
    fn string(&mut self) -> Result<String, JsonError> {
        self.pos += 1;
        let mut bytes = Vec::new();
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => {
                    let c = match self.next()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return Err(self.error(JsonErrorKind::String)),
                    };
                    let mut buf = [0u8; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                b if b < 0x20 => return Err(self.error(JsonErrorKind::String)),
                b => bytes.push(b),
            }
        }
        String::from_utf8(bytes).map_err(|_| self.error(JsonErrorKind::String))
    }

    /// The code point of `\uXXXX`, joining a UTF-16 surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            self.expect(b"\\u")
                .map_err(|_| self.error(JsonErrorKind::String))?;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error(JsonErrorKind::String));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or(self.error(JsonErrorKind::String))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test;

    fn kind(input: &str) -> JsonErrorKind {
        Value::parse(input.as_bytes()).expect_err(input).kind
    }

    // RFC 8259 §13: the examples of the RFC.
    #[test]
    fn rfc_8259_examples() {
        let image = br#"{
          "Image": {
              "Width":  800,
              "Height": 600,
              "Title":  "View from 15th Floor",
              "Thumbnail": {
                  "Url":    "http://www.example.com/image/481989943",
                  "Height": 125,
                  "Width":  100
              },
              "Animated" : false,
              "IDs": [116, 943, 234, 38793]
            }
        }"#;
        let v = Value::parse(image).expect("rfc example");
        let img = v.get("Image").expect("Image");
        assert_eq!(img.get("Width").and_then(Value::as_u64), Some(800));
        assert_eq!(
            img.get("Title").and_then(Value::as_str),
            Some("View from 15th Floor")
        );
        assert_eq!(img.get("Animated"), Some(&Value::Bool(false)));
        assert_eq!(
            img.get("IDs").and_then(Value::as_array).map(<[_]>::len),
            Some(4)
        );
        let coords = br#"[{"precision": "zip", "Latitude": 37.7668, "Longitude": -122.3959,
            "Address": "", "City": "SAN FRANCISCO", "Zip": "94107", "Country": "US"}]"#;
        let v = Value::parse(coords).expect("rfc example");
        let first = &v.as_array().expect("array")[0];
        assert_eq!(
            first.get("Longitude"),
            Some(&Value::Number("-122.3959".into()))
        );
        assert_eq!(first.get("Latitude").and_then(Value::as_u64), None);
        for scalar in ["\"Hello world!\"", "42", "true", "null"] {
            Value::parse(scalar.as_bytes()).expect(scalar);
        }
    }

    #[test]
    fn strings_unescape_and_round_trip() {
        let v = Value::parse(br#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud834\udd1e""#).expect("escapes");
        assert_eq!(v.as_str(), Some("a\"b\\c/d\u{8}\u{c}\n\r\t\u{e9}\u{1d11e}"));
        let encoded = v.encode();
        assert_eq!(Value::parse(encoded.as_bytes()), Ok(v));
        assert_eq!(Value::from("\u{1}").encode(), "\"\\u0001\"");
    }

    #[test]
    fn encodes_compactly_in_order() {
        let v = object([
            ("b", Value::from(1)),
            ("a", Value::Array(vec![Value::Null, Value::Bool(true)])),
        ]);
        assert_eq!(v.encode(), r#"{"b":1,"a":[null,true]}"#);
    }

    #[test]
    fn duplicate_members_first_wins() {
        let v = Value::parse(br#"{"a":1,"a":2}"#).expect("duplicates are json");
        assert_eq!(v.get("a").and_then(Value::as_u64), Some(1));
    }

    #[test]
    fn integers() {
        let n = |s: &str| Value::parse(s.as_bytes()).expect(s).as_u64();
        assert_eq!(n("0"), Some(0));
        assert_eq!(n("18446744073709551615"), Some(u64::MAX));
        assert_eq!(n("18446744073709551616"), None);
        assert_eq!(n("-1"), None);
        assert_eq!(n("1.0"), None);
        assert_eq!(n("1e3"), None);
    }

    #[test]
    fn malformed() {
        assert_eq!(kind(""), JsonErrorKind::Eof);
        assert_eq!(kind("{"), JsonErrorKind::Eof);
        assert_eq!(kind("[1,"), JsonErrorKind::Eof);
        assert_eq!(kind("\"abc"), JsonErrorKind::Eof);
        assert_eq!(kind("[1 2]"), JsonErrorKind::Unexpected);
        assert_eq!(kind("{1:2}"), JsonErrorKind::Unexpected);
        assert_eq!(kind("{\"a\" 1}"), JsonErrorKind::Unexpected);
        assert_eq!(kind("[1,]"), JsonErrorKind::Unexpected);
        assert_eq!(kind("nul"), JsonErrorKind::Eof);
        assert_eq!(kind("nulL"), JsonErrorKind::Unexpected);
        assert_eq!(kind("01"), JsonErrorKind::Number);
        assert_eq!(kind("1."), JsonErrorKind::Number);
        assert_eq!(kind("-"), JsonErrorKind::Number);
        assert_eq!(kind("1e"), JsonErrorKind::Number);
        assert_eq!(kind("\"\\x\""), JsonErrorKind::String);
        assert_eq!(kind("\"\\ud834\""), JsonErrorKind::String);
        assert_eq!(kind("\"\\udd1e\""), JsonErrorKind::String);
        assert_eq!(kind("\"a\nb\""), JsonErrorKind::String);
        assert_eq!(
            Value::parse(b"\"\xff\"").expect_err("bad utf-8").kind,
            JsonErrorKind::String
        );
        assert_eq!(kind("{} x"), JsonErrorKind::Trailing);
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(kind(&deep), JsonErrorKind::TooDeep);
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        Value::parse(ok.as_bytes()).expect("max depth is allowed");
    }

    #[test]
    fn error_messages() {
        let e = Value::parse(b"[1 2]").expect_err("bad");
        assert_eq!(e.to_string(), "unexpected character in json at byte 3");
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..4).prop_map(Value::Object),
            ]
        })
    }

    proptest! {
        #[test]
        fn parse_no_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = Value::parse(&data);
        }

        #[test]
        fn json_like_no_panic(text in "[\\[\\]{}\",:0-9.eE+\\-tfnrulsa\\\\ ]{0,64}") {
            let _ = Value::parse(text.as_bytes());
        }

        #[test]
        fn round_trip(v in value()) {
            prop_assert_eq!(Value::parse(v.encode().as_bytes()), Ok(v));
        }
    }
}
