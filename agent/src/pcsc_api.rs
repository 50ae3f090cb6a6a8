//! The part of PC/SC the agent uses, as traits: the real one over the `pcsc` crate
//! (pcsc-lite, WinSCard, PCSC.framework), and fakes in the tests (reader plug-in, a PIN pad:
//! things a virtual reader driver cannot show).
//!
//! Calls block (that is PC/SC's nature); the agent makes them on a thread of their own, never
//! on its async executor.

use std::ffi::CString;
use std::time::Duration;

pub use pcsc::Error as PcscError;

/// The transmission protocol the card was connected with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// T=0: `SCardTransmit` carries TPDUs and hands `61xx` / `6Cxx` back.
    T0,
    /// T=1 (or anything else): `SCardTransmit` carries whole APDUs.
    T1,
}

/// A reader and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderInfo {
    /// The name PC/SC gives it.
    pub name: String,
    /// A card is in it.
    pub card_present: bool,
    /// Another program holds the card exclusively.
    pub exclusive: bool,
}

/// Operations on a connected card (inside a transaction or not).
pub trait CardOps {
    /// `SCardTransmit`: one TPDU (T=0) or APDU (T=1), the card's answer.
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, PcscError>;
    /// `SCardControl` with `code` (already `SCARD_CTL_CODE`-mapped).
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, PcscError>;
    /// `SCardStatus`: the ATR and the protocol.
    fn status(&mut self) -> Result<(Vec<u8>, Protocol), PcscError>;
    /// `SCardReconnect` (shared, T=0 or T=1) with `SCARD_RESET_CARD` when `reset`, else
    /// `SCARD_LEAVE_CARD` (re-establishing a handle another program's reset invalidated).
    fn reconnect(&mut self, reset: bool) -> Result<(), PcscError>;
}

/// A connected card (`SCARDHANDLE`).
pub trait PcscCard: CardOps + Send {
    /// Runs `body` inside `SCardBeginTransaction` … `SCardEndTransaction(SCARD_LEAVE_CARD)`.
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn CardOps)) -> Result<(), PcscError>;
    /// `SCardDisconnect`, resetting the card or leaving it powered.
    fn disconnect(self: Box<Self>, reset: bool);
}

/// A PC/SC context (`SCARDCONTEXT`).
pub trait Pcsc: Send + Sync {
    /// The readers and their state, now.
    fn readers(&self) -> Result<Vec<ReaderInfo>, PcscError>;
    /// `SCardConnect` in shared mode, T=0 or T=1.
    fn connect(&self, reader: &str) -> Result<Box<dyn PcscCard>, PcscError>;
    /// A context of its own (`SCardEstablishContext`) for waiting on a reader's state, so
    /// that the pending wait never holds up a call on the card's connection.
    fn watcher(&self) -> Result<Box<dyn StatusWatch>, PcscError>;
}

/// `SCARD_STATE_CHANGED`: the event state differs from the current state given (PC/SC
/// part 5 §3.1.4, pcsc-lite `pcsclite.h`).
pub const STATE_CHANGED: u32 = 0x0002;
/// `SCARD_STATE_UNKNOWN`: the reader is not (or no longer) known to the service.
pub const STATE_UNKNOWN: u32 = 0x0004;
/// `SCARD_STATE_PRESENT`: a card is in the reader.
pub const STATE_PRESENT: u32 = 0x0020;

/// `SCardGetStatusChange` on one reader, on a context of its own.
pub trait StatusWatch: Send + Sync {
    /// Waits until the state of `reader` differs from `current` (a `dwCurrentState`: state
    /// bits, the insertion/removal counter in the high word) or `timeout` passes
    /// (`SCARD_E_TIMEOUT`); answers the `dwEventState`, counter included.
    fn wait(&self, reader: &str, current: u32, timeout: Duration) -> Result<u32, PcscError>;
    /// `SCardCancel`: ends a pending [`StatusWatch::wait`] with `SCARD_E_CANCELLED`.
    fn cancel(&self);
}

/// The system's PC/SC service.
pub struct SystemPcsc {
    context: pcsc::Context,
}

impl SystemPcsc {
    /// `SCardEstablishContext(SCARD_SCOPE_USER)`.
    pub fn establish() -> Result<Self, PcscError> {
        Ok(SystemPcsc {
            context: pcsc::Context::establish(pcsc::Scope::User)?,
        })
    }
}

impl Pcsc for SystemPcsc {
    fn readers(&self) -> Result<Vec<ReaderInfo>, PcscError> {
        let names = match self.context.list_readers_owned() {
            Ok(names) => names,
            Err(PcscError::NoReadersAvailable) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut states: Vec<pcsc::ReaderState> = names
            .iter()
            .map(|n| pcsc::ReaderState::new(n.clone(), pcsc::State::UNAWARE))
            .collect();
        // With every current state UNAWARE the call answers at once (PC/SC part 5 §3.1.4).
        match self
            .context
            .get_status_change(Duration::from_millis(0), &mut states)
        {
            Ok(()) | Err(PcscError::Timeout) => {}
            Err(e) => return Err(e),
        }
        Ok(states
            .iter()
            .map(|s| {
                let state = s.event_state();
                ReaderInfo {
                    name: s.name().to_string_lossy().into_owned(),
                    card_present: state.contains(pcsc::State::PRESENT),
                    exclusive: state.contains(pcsc::State::EXCLUSIVE),
                }
            })
            .collect())
    }

    fn connect(&self, reader: &str) -> Result<Box<dyn PcscCard>, PcscError> {
        let name = CString::new(reader).map_err(|_| PcscError::UnknownReader)?;
        let card = self
            .context
            .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)?;
        Ok(Box::new(SystemCard(card)))
    }

    fn watcher(&self) -> Result<Box<dyn StatusWatch>, PcscError> {
        Ok(Box::new(SystemWatch(pcsc::Context::establish(
            pcsc::Scope::User,
        )?)))
    }
}

/// The watcher's own `SCARDCONTEXT` (`SCardCancel` may come from another thread).
struct SystemWatch(pcsc::Context);

impl StatusWatch for SystemWatch {
    fn wait(&self, reader: &str, current: u32, timeout: Duration) -> Result<u32, PcscError> {
        let name = CString::new(reader).map_err(|_| PcscError::UnknownReader)?;
        // `from_bits_retain` keeps the counter in the high word: pcsc-lite reports a change
        // when it differs from the reader's, so a card swapped between two waits is seen.
        let mut states = [pcsc::ReaderState::new(
            name,
            pcsc::State::from_bits_retain(current.into()),
        )];
        self.0.get_status_change(timeout, &mut states)?;
        let [state] = &states;
        // DWORD is 64 bits wide on LP64 pcsc-lite; the state bits are the low word.
        let bits = u32::try_from(state.event_state().bits() & 0xFFFF).unwrap_or_default();
        Ok(bits | (state.event_count() << 16))
    }

    fn cancel(&self) {
        let _ = self.0.cancel();
    }
}

struct SystemCard(pcsc::Card);

/// The largest answer of `SCardTransmit`: an extended R-APDU (65536 data bytes + SW).
const MAX_RESPONSE: usize = 65_538;
/// The largest answer of `SCardControl` the agent asks for (feature TLVs, a VERIFY answer).
const MAX_CONTROL: usize = 1024;

fn transmit(card: &pcsc::Card, command: &[u8]) -> Result<Vec<u8>, PcscError> {
    let mut buffer = vec![0; MAX_RESPONSE];
    Ok(card.transmit(command, &mut buffer)?.to_vec())
}

fn control(card: &pcsc::Card, code: u32, input: &[u8]) -> Result<Vec<u8>, PcscError> {
    let mut buffer = vec![0; MAX_CONTROL];
    Ok(card.control(code.into(), input, &mut buffer)?.to_vec())
}

fn status(card: &pcsc::Card) -> Result<(Vec<u8>, Protocol), PcscError> {
    let status = card.status2_owned()?;
    let protocol = match status.protocol2() {
        Some(pcsc::Protocol::T0) => Protocol::T0,
        _ => Protocol::T1,
    };
    Ok((status.atr().to_vec(), protocol))
}

/// `SCARD_RESET_CARD` or `SCARD_LEAVE_CARD`.
fn disposition(reset: bool) -> pcsc::Disposition {
    if reset {
        pcsc::Disposition::ResetCard
    } else {
        pcsc::Disposition::LeaveCard
    }
}

const SHARED: (pcsc::ShareMode, pcsc::Protocols) = (pcsc::ShareMode::Shared, pcsc::Protocols::ANY);

impl CardOps for SystemCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, PcscError> {
        transmit(&self.0, command)
    }
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, PcscError> {
        control(&self.0, code, input)
    }
    fn status(&mut self) -> Result<(Vec<u8>, Protocol), PcscError> {
        status(&self.0)
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), PcscError> {
        self.0.reconnect(SHARED.0, SHARED.1, disposition(reset))
    }
}

struct InTransaction<'a, 'tx>(&'a mut pcsc::Transaction<'tx>);

impl CardOps for InTransaction<'_, '_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, PcscError> {
        transmit(self.0, command)
    }
    fn control(&mut self, code: u32, input: &[u8]) -> Result<Vec<u8>, PcscError> {
        control(self.0, code, input)
    }
    fn status(&mut self) -> Result<(Vec<u8>, Protocol), PcscError> {
        status(self.0)
    }
    fn reconnect(&mut self, reset: bool) -> Result<(), PcscError> {
        self.0.reconnect(SHARED.0, SHARED.1, disposition(reset))
    }
}

impl PcscCard for SystemCard {
    fn transaction(&mut self, body: &mut dyn FnMut(&mut dyn CardOps)) -> Result<(), PcscError> {
        let mut tx = self.0.transaction()?;
        body(&mut InTransaction(&mut tx));
        tx.end(pcsc::Disposition::LeaveCard).map_err(|(_, e)| e)
    }

    fn disconnect(self: Box<Self>, reset: bool) {
        let _ = self.0.disconnect(disposition(reset));
    }
}
