//! A checked cursor over untrusted bytes. Every read returns `None` past the end
//! instead of panicking, so decoders built on it are total.

/// Reads little- and big-endian integers and slices from a byte slice without panicking.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Starts reading at the beginning of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// How many bytes have been consumed.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// How many bytes remain.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not yet consumed, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        // INVARIANT: pos <= data.len(); `get` keeps core's slice panic out of the wasm.
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// The next byte without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    /// Consumes one byte.
    pub fn u8(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// Consumes `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Consumes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        // `try_into` rather than `copy_from_slice`, whose length check formats a panic.
        self.take(N)?.try_into().ok()
    }

    /// Consumes a little-endian `u16`.
    pub fn u16_le(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// Consumes a big-endian `u16`.
    pub fn u16_be(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// Consumes a little-endian `u32`.
    pub fn u32_le(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// Consumes the rest of the input.
    pub fn take_rest(&mut self) -> &'a [u8] {
        let s = self.rest();
        self.pos = self.data.len();
        s
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::Cursor;

    #[test]
    fn reads_are_checked() {
        let mut c = Cursor::new(&[1, 2, 3, 4, 5]);
        assert_eq!(c.u8(), Some(1));
        assert_eq!(c.u16_le(), Some(0x0302));
        assert_eq!(c.u32_le(), None);
        assert_eq!(c.position(), 3);
        assert_eq!(c.take(2), Some(&[4, 5][..]));
        assert!(c.is_empty());
        assert_eq!(c.u8(), None);
        assert_eq!(c.take(usize::MAX), None);
    }

    #[test]
    fn big_endian() {
        let mut c = Cursor::new(&[0x90, 0x00]);
        assert_eq!(c.u16_be(), Some(0x9000));
    }
}
