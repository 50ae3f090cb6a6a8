//! The T=1 block transmission protocol, ISO/IEC 7816-3 §11, as the interface device (the
//! host behind a TPDU-level CCID reader) runs it.
//!
//! Two layers live here:
//! - the block codec: [`Block`] with [`Block::encode`] and [`Block::decode`], its [`Pcb`]
//!   and the two error detection codes of [`Edc`];
//! - the host engine [`T1`]: an APDU goes in through [`T1::transmit`], the blocks the card
//!   sends come in through [`T1::on_block`] (or a missed deadline through
//!   [`T1::on_timeout`]), and each call answers with the next block to send or the complete
//!   response APDU. The engine does no I/O and reads no clock: the caller moves the bytes
//!   (one `PC_to_RDR_XfrBlock` per block) and owns the deadlines.
//!
//! A card-side counterpart for tests and the simulated reader is `crate::sim::t1`.
//!
//! Rule numbers in comments are those of ISO/IEC 7816-3:2006 §11.6.2 (rules 1 to 6,
//! error-free operation and resynchronisation) and §11.6.3 (rules 7 to 9, error handling
//! and chain abortion).
//!
//! CRC forms: the ATR only says "CRC", and two incompatible forms are in use (see
//! [`CrcForm`]). The engine starts with [`T1Config::edc`], switches when a card block is
//! valid in the other form only, or when the card refuses two blocks in a row with an error
//! R-block, and keeps the form once the card has shown it understands it ([`T1::edc`]). The
//! first CRC block of a TPDU-level session is the host's S(IFS request), so this happens
//! during power-on.
//!
//! Retry policy: a block is sent at most `1 + max_retries` times. After that many failures
//! on one step (invalid blocks, timeouts, or retransmission requests from the card) the host
//! sends S(RESYNCH request), itself at most `1 + max_retries` times, and then gives up with
//! [`T1Error::Unrecoverable`]. S(WTX request) and S(IFS request) from the card are valid
//! blocks and never count as failures, so a card asking for waiting time forever keeps an
//! exchange alive: the caller bounds the total time of an APDU.

/// Largest INF field a block can carry: LEN is one byte and 0xFF is reserved (§11.3.2.3).
pub const MAX_INF: usize = 254;

/// Default information field sizes IFSC and IFSD before any negotiation (§11.4.2).
pub const DEFAULT_IFS: u8 = 32;

/// Largest response APDU the engine assembles from a chain: 65 536 data bytes and SW1-SW2
/// (ISO/IEC 7816-4 §5.1, extended Le). A longer chain is a protocol failure.
pub const MAX_RESPONSE: usize = 65_538;

mod block;
mod engine;

pub use block::{crc16, lrc, Block, BlockError, CrcForm, Edc, Pcb, RError, SKind};
pub use engine::{T1Config, T1Error, T1Event, T1Send, T1};

#[cfg(test)]
mod tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop;
