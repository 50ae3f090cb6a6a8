//! The card side of T=1 (ISO/IEC 7816-3 §11.6), small but complete enough to drive the
//! host engine [`T1`](crate::proto::t1::T1) in tests and to run inside the simulated reader.
//!
//! [`T1Card`] takes the host's blocks one at a time and answers each with one block (or
//! with silence when a [`Fault::Mute`] is injected). A closure computes the response APDU
//! of each complete command APDU. It chains in both directions, answers S(IFS) and
//! S(RESYNCH), can ask for waiting time extensions and a new IFSC before answering, and
//! injects faults (a corrupted epilogue, a lost block, a chain abortion) on chosen blocks.

use crate::proto::t1::{Block, BlockError, Edc, Pcb, RError, SKind, DEFAULT_IFS, MAX_INF};

/// Behaviour of a [`T1Card`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct T1CardConfig {
    /// IFSC: the largest INF the card accepts, as its ATR announces it. Longer host
    /// I-blocks are refused with R(N(R), other error).
    pub ifsc: u8,
    /// IFSD the card assumes before (or without) an S(IFS request) from the host: 32 by
    /// default (§11.4.2), or the reader's dwMaxIFSD when the reader negotiates it itself.
    pub ifsd: u8,
    /// Error detection code from the ATR.
    pub edc: Edc,
    /// NAD of the card's blocks.
    pub nad: u8,
    /// How many S(WTX request) the card sends before each response (rule 3).
    pub wtx_requests: u8,
    /// The BWT multiplier in those requests.
    pub wtx_multiplier: u8,
    /// When set, the card sends S(IFS request) with this new IFSC once, before its first
    /// response (rule 4), and adopts it when the host echoes it.
    pub ifs_request: Option<u8>,
}

impl Default for T1CardConfig {
    fn default() -> Self {
        T1CardConfig {
            ifsc: DEFAULT_IFS,
            ifsd: DEFAULT_IFS,
            edc: Edc::Lrc,
            nad: 0,
            wtx_requests: 0,
            wtx_multiplier: 1,
            ifs_request: None,
        }
    }
}

/// A fault injected on the card's answer to one host block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Process the block normally but flip the bits of the answer's last EDC byte.
    CorruptReply,
    /// Lose the host's block: do not process it and answer nothing (the host times out).
    Mute,
    /// Instead of processing the block, drop the exchange and send S(ABORT request).
    Abort,
}

/// What the card is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CardState {
    /// Waiting for the first I-block of a command.
    Idle,
    /// Receiving a command chain: R(N(R)) sent.
    Receiving,
    /// S(WTX request) sent; `left` more follow before the response.
    Wtx { left: u8 },
    /// S(IFS request, ifsc) sent.
    Ifs { ifsc: u8 },
    /// Sending a response chain: the chained I-block in flight (M set) carries the
    /// response up to `end` and has N(S) = `ns`. The last block of a response returns the
    /// card to `Idle`.
    // INVARIANT: end < response.len().
    Sending { end: usize, ns: bool },
}

/// The card side of T=1; `F` computes a response APDU from a command APDU.
pub struct T1Card<F> {
    config: T1CardConfig,
    handler: F,
    state: CardState,
    /// IFSC in force (changed by the card's own S(IFS request)).
    ifsc: u8,
    /// IFSD in force (changed by the host's S(IFS request)).
    ifsd: u8,
    /// N(S) of the card's next new I-block.
    ns: bool,
    /// N(S) expected in the host's next I-block.
    nr: bool,
    /// The card's S(IFS request) is still to be sent.
    ifs_pending: bool,
    command: Vec<u8>,
    response: Vec<u8>,
    /// The last block sent, uncorrupted, for retransmission.
    last: Vec<u8>,
    /// N(S) and encoding of the last I-block of the previous response, while the host may
    /// still ask for it again.
    last_i: Option<(bool, Vec<u8>)>,
    /// Host blocks received so far, the index faults are scheduled on.
    received: usize,
    faults: Vec<(usize, Fault)>,
    commands: Vec<Vec<u8>>,
}

impl<F> std::fmt::Debug for T1Card<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("T1Card")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("ifsc", &self.ifsc)
            .field("ifsd", &self.ifsd)
            .field("ns", &self.ns)
            .field("nr", &self.nr)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl<F: FnMut(&[u8]) -> Vec<u8>> T1Card<F> {
    /// A card just after its ATR.
    pub fn new(config: T1CardConfig, handler: F) -> Self {
        T1Card {
            config,
            handler,
            state: CardState::Idle,
            ifsc: config.ifsc.clamp(1, 254),
            ifsd: config.ifsd.clamp(1, 254),
            ns: false,
            nr: false,
            ifs_pending: config.ifs_request.is_some(),
            command: Vec::new(),
            response: Vec::new(),
            last: Vec::new(),
            last_i: None,
            received: 0,
            faults: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// Injects `fault` on the answer to the host block `n` blocks from now (0: the next).
    pub fn inject(&mut self, n: usize, fault: Fault) {
        self.faults.push((self.received + n, fault));
    }

    /// Every complete command APDU the card executed, in order.
    pub fn commands(&self) -> &[Vec<u8>] {
        &self.commands
    }

    /// The IFSD the card uses for its I-blocks.
    pub fn ifsd(&self) -> u8 {
        self.ifsd
    }

    /// The IFSC the card enforces on the host's I-blocks.
    pub fn ifsc(&self) -> u8 {
        self.ifsc
    }

    /// Takes one block from the host and returns the card's answer, or `None` when a
    /// [`Fault::Mute`] loses the host's block.
    pub fn on_block(&mut self, rx: &[u8]) -> Option<Vec<u8>> {
        let index = self.received;
        self.received += 1;
        let fault = self
            .faults
            .iter()
            .position(|(at, _)| *at == index)
            .map(|i| self.faults.swap_remove(i).1);
        match fault {
            Some(Fault::Mute) => None,
            Some(Fault::Abort) => {
                self.command.clear();
                self.response.clear();
                self.state = CardState::Idle;
                Some(self.send(Block::s(self.config.nad, SKind::Abort, false, 0)))
            }
            Some(Fault::CorruptReply) => {
                let mut answer = self.answer(rx)?;
                if let Some(last) = answer.last_mut() {
                    *last ^= 0xFF;
                }
                Some(answer)
            }
            None => self.answer(rx),
        }
    }

    fn send(&mut self, block: Block) -> Vec<u8> {
        self.last = block.encode(self.config.edc);
        self.last.clone()
    }

    /// Repeats the last block, or asks for the host's I-block when nothing was sent yet.
    fn resend(&mut self) -> Vec<u8> {
        if self.last.is_empty() {
            return self.send(Block::r(self.config.nad, self.nr, RError::Other));
        }
        self.last.clone()
    }

    fn answer(&mut self, rx: &[u8]) -> Option<Vec<u8>> {
        let nad = self.config.nad;
        let block = match Block::decode_limited(rx, self.config.edc, usize::from(self.ifsc)) {
            Ok(block) => block,
            Err(e) => {
                // Rule 7.3 for a pending S(request); rule 7.1 otherwise.
                if matches!(self.state, CardState::Wtx { .. } | CardState::Ifs { .. }) {
                    return Some(self.resend());
                }
                let error = if e == BlockError::BadEdc {
                    RError::Edc
                } else {
                    RError::Other
                };
                return Some(self.send(Block::r(nad, self.nr, error)));
            }
        };
        let answer = match block.pcb {
            Pcb::S {
                kind,
                response: false,
            } => self.host_request(kind, &block),
            Pcb::S {
                kind,
                response: true,
            } => self.host_response(kind, &block),
            Pcb::R { nr, .. } => self.host_r(nr),
            Pcb::I { ns, more } => self.host_i(ns, more, block.inf),
        };
        Some(answer)
    }

    fn host_request(&mut self, kind: SKind, block: &Block) -> Vec<u8> {
        let nad = self.config.nad;
        let value = block.inf.first().copied().unwrap_or(0);
        match kind {
            SKind::Ifs => {
                self.ifsd = value;
                self.send(Block::s(nad, SKind::Ifs, true, value))
            }
            SKind::Resync => {
                self.ns = false;
                self.nr = false;
                self.ifsc = self.config.ifsc.clamp(1, 254);
                self.ifsd = self.config.ifsd.clamp(1, 254);
                self.command.clear();
                self.response.clear();
                self.last_i = None;
                self.state = CardState::Idle;
                self.send(Block::s(nad, SKind::Resync, true, 0))
            }
            SKind::Abort => {
                self.command.clear();
                self.response.clear();
                self.state = CardState::Idle;
                self.send(Block::s(nad, SKind::Abort, true, 0))
            }
            SKind::Wtx => self.send(Block::r(nad, self.nr, RError::Other)),
        }
    }

    fn host_response(&mut self, kind: SKind, block: &Block) -> Vec<u8> {
        let value = block.inf.first().copied();
        match (&self.state, kind) {
            (CardState::Wtx { left }, SKind::Wtx) if value == Some(self.config.wtx_multiplier) => {
                let left = *left;
                self.reply(left)
            }
            (CardState::Ifs { ifsc }, SKind::Ifs) if value == Some(*ifsc) => {
                self.ifsc = *ifsc;
                self.reply(self.config.wtx_requests)
            }
            (CardState::Wtx { .. } | CardState::Ifs { .. }, _) => self.resend(),
            // After the host answered an abort there is nothing to continue.
            (_, SKind::Abort) => self.send(Block::r(self.config.nad, self.nr, RError::None)),
            _ => self.send(Block::r(self.config.nad, self.nr, RError::Other)),
        }
    }

    fn host_r(&mut self, nr: bool) -> Vec<u8> {
        match self.state {
            // Rule 5: the host acknowledges a chained I-block.
            CardState::Sending { end, ns } if nr != ns => self.send_chunk(end),
            // Rule 7.1 from the host: it asks for the I-block in flight again.
            CardState::Sending { .. } => self.resend(),
            CardState::Idle => match &self.last_i {
                Some((ns, block)) if *ns == nr => {
                    self.last = block.clone();
                    self.last.clone()
                }
                // The host lost track of its own I-block: ask for it (N(R) = its N(S)).
                _ => self.send(Block::r(self.config.nad, self.nr, RError::None)),
            },
            // Rule 7.2/7.3: the host did not get our R-block or S(request).
            _ => self.resend(),
        }
    }

    fn host_i(&mut self, ns: bool, more: bool, inf: Vec<u8>) -> Vec<u8> {
        let nad = self.config.nad;
        if !matches!(self.state, CardState::Idle | CardState::Receiving) {
            return self.send(Block::r(nad, self.nr, RError::Other));
        }
        if ns != self.nr {
            // A repeated I-block already accepted: our acknowledgement was lost.
            return self.resend();
        }
        self.nr = !self.nr;
        self.last_i = None;
        self.command.extend_from_slice(&inf);
        if more {
            self.state = CardState::Receiving;
            return self.send(Block::r(nad, self.nr, RError::None));
        }
        let command = std::mem::take(&mut self.command);
        self.response = (self.handler)(&command);
        self.commands.push(command);
        if self.ifs_pending {
            if let Some(ifsc) = self.config.ifs_request {
                self.ifs_pending = false;
                self.state = CardState::Ifs { ifsc };
                return self.send(Block::s(nad, SKind::Ifs, false, ifsc));
            }
        }
        self.reply(self.config.wtx_requests)
    }

    /// Asks for one more waiting time extension, or starts the response.
    fn reply(&mut self, wtx_left: u8) -> Vec<u8> {
        if wtx_left > 0 {
            self.state = CardState::Wtx { left: wtx_left - 1 };
            let wtx = Block::s(
                self.config.nad,
                SKind::Wtx,
                false,
                self.config.wtx_multiplier,
            );
            return self.send(wtx);
        }
        self.send_chunk(0)
    }

    fn send_chunk(&mut self, start: usize) -> Vec<u8> {
        let limit = usize::from(self.ifsd).min(MAX_INF);
        let end = self.response.len().min(start + limit);
        let chunk = self.response.get(start..end).unwrap_or_default().to_vec();
        let more = end < self.response.len();
        let ns = self.ns;
        self.ns = !self.ns;
        let block = self.send(Block::i(self.config.nad, ns, more, chunk));
        if more {
            self.state = CardState::Sending { end, ns };
        } else {
            self.state = CardState::Idle;
            self.last_i = Some((ns, block.clone()));
        }
        block
    }
}
