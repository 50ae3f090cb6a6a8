//! Reassembly of bulk-IN transfers into whole messages.

use super::{CcidError, Header};

/// Cuts a stream of bulk-IN chunks into whole messages by their dwLength.
///
/// A reader may split one message over several transfers (wMaxPacketSize, a short
/// `transferIn` length) and a fake may coalesce several messages into one: push every chunk
/// as it comes and pop whole messages. A header announcing more than the configured
/// maximum (the reader's dwMaxCCIDMessageLength, CCID §5.1) is an error and nothing is
/// allocated for it; the stream is then out of step, so the error repeats until
/// [`Reassembler::reset`].
#[derive(Debug, Clone)]
pub struct Reassembler {
    buffer: Vec<u8>,
    max_message_length: u32,
}

impl Reassembler {
    /// A reassembler refusing messages (header included) longer than `max_message_length`.
    pub fn new(max_message_length: u32) -> Self {
        Self {
            buffer: Vec::new(),
            max_message_length,
        }
    }

    /// Appends a chunk as received.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// The next whole message, `None` while it is incomplete.
    pub fn pop(&mut self) -> Result<Option<Vec<u8>>, CcidError> {
        let header = match Header::decode(&self.buffer) {
            Ok(h) => h,
            Err(_) => return Ok(None),
        };
        let length = header.message_len();
        if length > u64::from(self.max_message_length) {
            return Err(CcidError::MessageTooLong {
                length,
                max: self.max_message_length,
            });
        }
        // INVARIANT: `length` is at most a u32 here, which fits usize on every target we
        // build for; a failed conversion would only mean "not complete yet".
        let Ok(length) = usize::try_from(length) else {
            return Ok(None);
        };
        if self.buffer.len() < length {
            return Ok(None);
        }
        let rest = self.buffer.split_off(length);
        Ok(Some(std::mem::replace(&mut self.buffer, rest)))
    }

    /// Bytes received but not yet popped.
    pub fn pending(&self) -> usize {
        self.buffer.len()
    }

    /// Drops everything buffered (after an error, or when a command is abandoned).
    pub fn reset(&mut self) {
        self.buffer.clear();
    }
}
