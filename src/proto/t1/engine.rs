//! The host engine [`T1`] (ISO/IEC 7816-3 §11.6): APDUs in, blocks out, no I/O and no clock.

use super::block::{Block, BlockError, Edc, Pcb, RError, SKind};
use super::{DEFAULT_IFS, MAX_RESPONSE};

/// Parameters of the host engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct T1Config {
    /// IFSC, the largest INF the card accepts: TA(i) of the first T=1 TA after TD(2) in the
    /// ATR, 32 when absent (§11.4.2).
    pub ifsc: u8,
    /// IFSD, the largest INF the host accepts: CCID `dwMaxIFSD`, capped at 254. It is what
    /// [`T1::ifs_request`] announces and the limit applied to the card's I-blocks.
    pub ifsd: u8,
    /// Error detection code from the ATR. With a CRC, the form the host starts with; the
    /// engine switches to the other form when the card's blocks show it uses that one (see
    /// [`T1::edc`]).
    pub edc: Edc,
    /// NAD of every block the host sends; 0 unless addressing is used.
    pub nad: u8,
    /// Retransmissions allowed for one block before escalating (to S(RESYNCH), then to
    /// [`T1Error::Unrecoverable`]); see the retry policy in the module documentation.
    /// ISO/IEC 7816-3 rule 7.4 and libccid use 3.
    pub max_retries: u8,
}

impl Default for T1Config {
    fn default() -> Self {
        T1Config {
            ifsc: DEFAULT_IFS,
            ifsd: DEFAULT_IFS,
            edc: Edc::Lrc,
            nad: 0,
            max_retries: 3,
        }
    }
}

/// A block for the caller to send in one `PC_to_RDR_XfrBlock` (CCID Rev 1.1 §6.1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T1Send {
    /// The encoded block: the XfrBlock's abData.
    pub block: Vec<u8>,
    /// The XfrBlock's bBWI: 0 except on the block that answers an S(WTX request, n), where
    /// it is n, so the reader waits n × BWT for the card's next block (libccid `t1_xcv`
    /// sends S(WTX response) with `bBWI = wtx`). It applies to this one block only.
    pub bwi: u8,
}

impl T1Send {
    pub(super) fn plain(block: Vec<u8>) -> Self {
        T1Send { block, bwi: 0 }
    }

    /// Factor by which the caller multiplies its usual read deadline (BWT plus transport
    /// margin) while waiting for the answer to this block: `bwi`, or 1 when `bwi` is 0.
    pub fn deadline_multiplier(&self) -> u32 {
        u32::from(self.bwi.max(1))
    }
}

/// What the caller does after a block came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum T1Event {
    /// Send this block and read the card's next block.
    Send(T1Send),
    /// The exchange is complete: the whole response APDU (data and SW1-SW2).
    Done(Vec<u8>),
    /// The card echoed S(IFS response) for [`T1::ifs_request`]: it now sends INF fields of
    /// up to this size.
    IfsdAccepted(u8),
}

/// Why the engine cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum T1Error {
    /// [`T1::transmit`] with an empty APDU.
    #[error("empty apdu")]
    EmptyApdu,
    /// A new exchange was started before the current one ended.
    #[error("exchange in progress")]
    Busy,
    /// A block or timeout arrived while no exchange is running.
    #[error("no exchange in progress")]
    NotExpecting,
    /// After repeated errors the host resynchronised the protocol (S(RESYNCH), rule 6 and
    /// rule 7.4): sequence numbers are back to 0 and IFSC to the ATR value. The APDU did
    /// not complete and may or may not have run on the card; the engine does not resend
    /// it (a non-idempotent command could run twice). The engine is idle again.
    #[error("resynchronised, apdu not completed")]
    Resynchronised,
    /// The card sent S(ABORT request) (rule 9). The caller sends `send` (the S(ABORT
    /// response)) and ignores what comes back or a timeout; the APDU failed. The next
    /// [`T1::transmit`] resynchronises first (S(RESYNCH request)) and then sends its APDU,
    /// because the two sides may disagree on sequence numbers after an abort.
    #[error("card aborted the exchange")]
    Aborted {
        /// The S(ABORT response) to send.
        send: T1Send,
    },
    /// The card's response chain exceeded [`MAX_RESPONSE`]. The next [`T1::transmit`]
    /// resynchronises first, as after an abort.
    #[error("response chain too long")]
    ResponseTooLong,
    /// Resynchronisation failed too (rules 6 and 7.4): the caller must reset the card
    /// (warm reset or power cycle) and call [`T1::reset`]. Until then every call returns
    /// this error again (without a cause).
    #[error("unrecoverable t1 error")]
    Unrecoverable {
        /// The last invalid block, when the final failure was one (not a timeout).
        #[source]
        cause: Option<BlockError>,
    },
    /// [`T1::reader_block`] while a resynchronisation is pending (after
    /// [`T1Error::Aborted`] or an abandoned exchange): the reader cannot send S(RESYNCH), so
    /// an APDU must go first.
    #[error("sequence numbers not synchronised")]
    NotSynchronised,
    /// [`T1::reader_block`] for an INF the card cannot take in one block.
    #[error("reader-built block of {len} bytes exceeds ifsc {ifsc}")]
    ReaderBlockTooLong {
        /// Bytes of the INF.
        len: usize,
        /// The IFSC in force.
        ifsc: u8,
    },
    /// The card asked again for the I-block the reader built (rule 7.1); the host cannot
    /// resend it (it never had its content, e.g. the PIN). The next [`T1::transmit`]
    /// resynchronises first.
    #[error("card did not receive the reader-built block")]
    ReaderBlockLost,
}

/// State of the host engine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum State {
    /// No exchange running.
    #[default]
    Idle,
    /// Idle, but the next exchange must start with S(RESYNCH request) (after an abort or
    /// an over-long chain).
    Desynchronised,
    /// S(IFS request, ifsd) sent, waiting for S(IFS response).
    IfsRequest { ifsd: u8 },
    /// Sending the command: the I-block in flight carries `apdu[start..end]`, with
    /// N(S) = `T1::ns` and M = `end < apdu.len()`.
    // INVARIANT: start < end <= apdu.len() and end - start <= MAX_INF (at most IFSC when
    // it was built).
    Sending {
        apdu: Vec<u8>,
        start: usize,
        end: usize,
    },
    /// Receiving a response chain: R(N(R)) sent, waiting for the next chained I-block.
    // INVARIANT: response.len() <= MAX_RESPONSE.
    Receiving { response: Vec<u8> },
    /// S(RESYNCH request) sent, waiting for S(RESYNCH response). `then` is an APDU to send
    /// once resynchronised (after an abort); `None` reports [`T1Error::Resynchronised`].
    Resynch { then: Option<Vec<u8>> },
    /// The reader built and sent one unchained I-block with N(S) = `T1::ns` on the host's
    /// behalf (PC_to_RDR_Secure at TPDU level, CCID Rev 1.1 §6.1.11): the card's answer is
    /// awaited as after the last I-block of a command, but that block cannot be resent.
    ReaderBlock,
    /// Resynchronisation failed: only [`T1::reset`] leaves this state.
    Dead,
}

/// What to send again after a failure.
#[derive(Debug, Clone, Copy)]
enum Resend {
    /// An R-block with N(R) = the card's expected N(S) and this error code.
    R(RError),
    /// The I-block in flight (the card asked for it).
    I,
    /// The S(request) in flight: S(IFS request) or S(RESYNCH request).
    SRequest,
}

/// Host side of T=1 (§11.6): splits APDUs into I-blocks, reassembles responses, answers
/// the card's S-requests and recovers from transmission errors.
///
/// Each call returns the next block to send (or the response); the caller sends it in a
/// `PC_to_RDR_XfrBlock` with bBWI = [`T1Send::bwi`], feeds the card's block from the
/// `RDR_to_PC_DataBlock` into [`T1::on_block`], and calls [`T1::on_timeout`] when its
/// deadline passes (or the reader reports ICC_MUTE) instead.
#[derive(Debug, Clone)]
pub struct T1 {
    config: T1Config,
    /// IFSC in force: from the ATR, changed by the card's S(IFS request) (rule 4).
    // INVARIANT: 1 <= ifsc <= MAX_INF.
    ifsc: u8,
    /// N(S) of the host's I-block in flight, or of the next one when none is in flight.
    ns: bool,
    /// N(S) the host expects in the card's next I-block; the N(R) of the host's R-blocks.
    nr: bool,
    state: State,
    /// Failures on the current step; escalation happens when it reaches `max_retries`.
    // INVARIANT: retries <= config.max_retries.
    retries: u8,
    /// The EDC of the blocks the host sends: the configured one, or the other CRC form.
    edc: Edc,
    /// The EDC the card's blocks are checked with.
    card_edc: Edc,
    /// The card has answered a block in `edc` with something other than an error R-block:
    /// `edc` no longer changes.
    edc_settled: bool,
    /// A card block was valid in `card_edc` only: `card_edc` no longer changes.
    card_edc_settled: bool,
    /// R-blocks with an error code received in a row while `edc` is not settled.
    edc_refusals: u8,
}

/// R-blocks with an error code in a row, each answering one of our blocks, after which the
/// engine tries the other CRC form (while the form is not settled).
const CRC_REFUSALS_BEFORE_SWITCH: u8 = 2;

impl T1 {
    /// A fresh engine after the ATR: sequence numbers 0, IFSC from the config.
    ///
    /// IFSC and IFSD are clamped to 1..=254 (0 and 255 are reserved, §11.4.2).
    pub fn new(config: T1Config) -> Self {
        let config = T1Config {
            ifsc: clamp_ifs(config.ifsc),
            ifsd: clamp_ifs(config.ifsd),
            ..config
        };
        T1 {
            config,
            ifsc: config.ifsc,
            ns: false,
            nr: false,
            state: State::Idle,
            retries: 0,
            edc: config.edc,
            card_edc: config.edc,
            edc_settled: config.edc == Edc::Lrc,
            card_edc_settled: config.edc == Edc::Lrc,
            edc_refusals: 0,
        }
    }

    /// Back to the initial state, for use after the caller reset the card.
    ///
    /// The CRC form found for this card is kept: it is the same card.
    pub fn reset(&mut self) {
        let before = self.clone();
        *self = T1::new(self.config);
        self.edc = before.edc;
        self.card_edc = before.card_edc;
        self.edc_settled = before.edc_settled;
        self.card_edc_settled = before.card_edc_settled;
    }

    /// The EDC of the blocks the host sends. With a CRC it is the configured form until the
    /// card shows it uses the other one ([`CrcForm`](super::CrcForm)): a card block whose CRC is right only
    /// in the other form switches both directions at once; [`CRC_REFUSALS_BEFORE_SWITCH`]
    /// R-blocks with an error code in a row switch the sending side. Once the card has
    /// answered a block with anything but an error R-block, the sending form is settled,
    /// and once one of its blocks was valid in one form only, so is the receiving form:
    /// for the rest of the card session (also across [`T1::reset`]).
    pub fn edc(&self) -> Edc {
        self.edc
    }

    /// The IFSC in force.
    pub fn ifsc(&self) -> u8 {
        self.ifsc
    }

    /// The configuration (with IFSC and IFSD clamped).
    pub fn config(&self) -> &T1Config {
        &self.config
    }

    /// Whether no exchange is running (a new one may start).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle | State::Desynchronised)
    }

    /// Gives up the exchange in progress (the caller timed out or was aborted): the card
    /// and the host may now disagree on sequence numbers, so the next [`T1::transmit`]
    /// resynchronises first (S(RESYNCH request), §11.6.3 rule 6) and then sends its APDU.
    /// Nothing happens when no exchange is running.
    pub fn abandon(&mut self) {
        if !self.is_idle() && self.state != State::Dead {
            self.state = State::Desynchronised;
            self.retries = 0;
        }
    }

    /// Starts the IFSD negotiation (rule 4): the S(IFS request) announcing
    /// [`T1Config::ifsd`]. A TPDU-level CCID host sends it as the first block unless the
    /// reader does it itself (`dwFeatures` 0x400). Feed the answer to [`T1::on_block`];
    /// success is [`T1Event::IfsdAccepted`]. Refused with [`T1Error::Busy`] during an
    /// exchange and while a resynchronisation is pending (after [`T1Error::Aborted`] or
    /// [`T1Error::ResponseTooLong`]: send an APDU first).
    pub fn ifs_request(&mut self) -> Result<Vec<u8>, T1Error> {
        self.check_can_start()?;
        if self.state == State::Desynchronised {
            return Err(T1Error::Busy);
        }
        self.state = State::IfsRequest {
            ifsd: self.config.ifsd,
        };
        self.retries = 0;
        Ok(self.s_request())
    }

    /// Starts an exchange: the first block to send. The APDU is split into I-blocks of at
    /// most IFSC bytes, all but the last with the M bit (chaining, §11.6.2); the card
    /// acknowledges each chained block with an R-block (rule 5).
    pub fn transmit(&mut self, apdu: &[u8]) -> Result<T1Send, T1Error> {
        self.check_can_start()?;
        if apdu.is_empty() {
            return Err(T1Error::EmptyApdu);
        }
        self.retries = 0;
        if self.state == State::Desynchronised {
            self.state = State::Resynch {
                then: Some(apdu.to_vec()),
            };
            return Ok(T1Send::plain(self.s_request()));
        }
        Ok(self.start_sending(apdu.to_vec()))
    }

    /// Starts an exchange whose only I-block the reader builds and sends itself: PIN
    /// verification on a TPDU-level reader's PIN pad, where the reader inserts the PIN into
    /// the APDU (CCID Rev 1.1 §6.1.11.4 bTeoPrologue; libccid `SecurePINVerify` builds it
    /// the same way). Returns the prologue NAD, PCB (I-block, N(S) in force, no chaining)
    /// and LEN = `len`, the length of the APDU template; the reader corrects LEN when the
    /// PIN changes the APDU's length. Feed the card's answer to [`T1::on_block`] as usual;
    /// if the reader reports that it sent nothing (PIN entry cancelled or timed out), call
    /// [`T1::reader_block_not_sent`].
    pub fn reader_block(&mut self, len: usize) -> Result<[u8; 3], T1Error> {
        self.check_can_start()?;
        if self.state == State::Desynchronised {
            return Err(T1Error::NotSynchronised);
        }
        let len_byte = u8::try_from(len)
            .ok()
            .filter(|&l| l > 0 && l <= self.ifsc)
            .ok_or(T1Error::ReaderBlockTooLong {
                len,
                ifsc: self.ifsc,
            })?;
        self.retries = 0;
        self.state = State::ReaderBlock;
        let pcb = Pcb::I {
            ns: self.ns,
            more: false,
        };
        Ok([self.config.nad, pcb.to_byte(), len_byte])
    }

    /// The reader did not send the block of [`T1::reader_block`] (it reported PIN_CANCELLED
    /// or PIN_TIMEOUT, CCID §6.2.6): the exchange ends and the sequence numbers stay as
    /// they were. Nothing happens in any other state.
    pub fn reader_block_not_sent(&mut self) {
        if self.state == State::ReaderBlock {
            self.state = State::Idle;
            self.retries = 0;
        }
    }

    /// A block came from the card: what to do next.
    pub fn on_block(&mut self, rx: &[u8]) -> Result<T1Event, T1Error> {
        self.check_active()?;
        let block = match self.decode(rx) {
            Ok(block) => block,
            Err(e) => return self.invalid(Some(e)).map(T1Event::Send),
        };
        if let State::Resynch { .. } = self.state {
            return self.in_resynch(&block);
        }
        if let Pcb::S {
            kind,
            response: false,
        } = block.pcb
        {
            return self.card_request(kind, &block);
        }
        match self.state {
            State::IfsRequest { ifsd } => {
                if block.pcb
                    == (Pcb::S {
                        kind: SKind::Ifs,
                        response: true,
                    })
                    && block.value() == Some(ifsd)
                {
                    self.state = State::Idle;
                    self.retries = 0;
                    Ok(T1Event::IfsdAccepted(ifsd))
                } else {
                    // Rule 7.3: anything but the matching response repeats the request.
                    self.invalid(None).map(T1Event::Send)
                }
            }
            State::Sending { .. } => self.while_sending(block),
            State::Receiving { .. } => self.while_receiving(block),
            State::ReaderBlock => self.after_reader_block(block),
            _ => Err(T1Error::NotExpecting),
        }
    }

    /// The caller's deadline for the card's block passed (BWT, extended by
    /// [`T1Send::deadline_multiplier`]), or the reader reported the card mute. Handled like
    /// an invalid block (rule 7.1 to 7.3): the R-block or S(request) to send, counting
    /// towards the retry limit.
    pub fn on_timeout(&mut self) -> Result<T1Send, T1Error> {
        self.check_active()?;
        self.invalid(None)
    }

    fn check_can_start(&self) -> Result<(), T1Error> {
        match self.state {
            State::Idle | State::Desynchronised => Ok(()),
            State::Dead => Err(T1Error::Unrecoverable { cause: None }),
            _ => Err(T1Error::Busy),
        }
    }

    fn check_active(&self) -> Result<(), T1Error> {
        match self.state {
            State::Idle | State::Desynchronised => Err(T1Error::NotExpecting),
            State::Dead => Err(T1Error::Unrecoverable { cause: None }),
            _ => Ok(()),
        }
    }

    fn encode(&self, block: &Block) -> Vec<u8> {
        block.encode(self.edc)
    }

    /// Decodes a card block, detecting the card's CRC form while it is not settled (see
    /// [`T1::edc`]).
    fn decode(&mut self, rx: &[u8]) -> Result<Block, BlockError> {
        let limit = usize::from(self.config.ifsd);
        let result = Block::decode_limited(rx, self.card_edc, limit);
        if let (false, Edc::Crc(form)) = (self.card_edc_settled, self.card_edc) {
            let other = Edc::Crc(form.other());
            match (&result, Block::decode_limited(rx, other, limit)) {
                // Valid in the other form only: the card computes that one, and probably
                // could not read our block either.
                (Err(BlockError::BadEdc), Ok(block)) => {
                    self.card_edc = other;
                    self.card_edc_settled = true;
                    if !self.edc_settled {
                        self.edc = other;
                        self.edc_refusals = 0;
                    }
                    return self.note_answer(block);
                }
                (Ok(_), Err(BlockError::BadEdc)) => self.card_edc_settled = true,
                // Valid in both forms (one block in 256) or in neither: nothing learnt.
                _ => {}
            }
        }
        self.note_answer(result?)
    }

    /// Counts the card's refusals of our blocks while the sending form is not settled,
    /// switching forms after [`CRC_REFUSALS_BEFORE_SWITCH`] of them.
    fn note_answer(&mut self, block: Block) -> Result<Block, BlockError> {
        if let (false, Edc::Crc(form)) = (self.edc_settled, self.edc) {
            match block.pcb {
                Pcb::R {
                    error: RError::Edc | RError::Other,
                    ..
                } => {
                    self.edc_refusals += 1;
                    if self.edc_refusals >= CRC_REFUSALS_BEFORE_SWITCH {
                        // The retry count goes on, so a card refusing both forms still
                        // ends in resynchronisation and then in an unrecoverable error.
                        self.edc = Edc::Crc(form.other());
                        self.edc_refusals = 0;
                    }
                }
                _ => self.edc_settled = true,
            }
        }
        Ok(block)
    }

    /// The state's pending S(request) block.
    fn s_request(&self) -> Vec<u8> {
        let nad = self.config.nad;
        match self.state {
            State::IfsRequest { ifsd } => self.encode(&Block::s(nad, SKind::Ifs, false, ifsd)),
            _ => self.encode(&Block::s(nad, SKind::Resync, false, 0)),
        }
    }

    /// The I-block carrying `apdu[start..]` as far as IFSC allows; returns it and its end.
    fn i_block(&self, apdu: &[u8], start: usize) -> (Vec<u8>, usize) {
        let end = apdu.len().min(start + usize::from(self.ifsc));
        let chunk = apdu.get(start..end).unwrap_or_default().to_vec();
        let more = end < apdu.len();
        let block = Block::i(self.config.nad, self.ns, more, chunk);
        (self.encode(&block), end)
    }

    fn start_sending(&mut self, apdu: Vec<u8>) -> T1Send {
        // Rule 1: the exchange opens with an I-block (the first one with N(S) = 0).
        let (block, end) = self.i_block(&apdu, 0);
        self.state = State::Sending {
            apdu,
            start: 0,
            end,
        };
        T1Send::plain(block)
    }

    /// Answers an S(request) from the card, in any state but RESYNCH.
    fn card_request(&mut self, kind: SKind, block: &Block) -> Result<T1Event, T1Error> {
        let nad = self.config.nad;
        let value = block.value().unwrap_or(0);
        match kind {
            SKind::Wtx => {
                // Rule 3: echo the multiplier; the reader waits bwi × BWT for the next block.
                let answer = self.encode(&Block::s(nad, SKind::Wtx, true, value));
                Ok(T1Event::Send(T1Send {
                    block: answer,
                    bwi: value,
                }))
            }
            SKind::Ifs => {
                // Rule 4: the card announces a new IFSC, which applies from the next I-block.
                // INVARIANT kept: decode refused the reserved sizes 0x00 and 0xFF.
                self.ifsc = value;
                let answer = self.encode(&Block::s(nad, SKind::Ifs, true, value));
                Ok(T1Event::Send(T1Send::plain(answer)))
            }
            SKind::Abort => {
                // Rule 9: chain abortion by the card. Answer it and fail the APDU.
                let answer = self.encode(&Block::s(nad, SKind::Abort, true, 0));
                self.state = State::Desynchronised;
                self.retries = 0;
                Err(T1Error::Aborted {
                    send: T1Send::plain(answer),
                })
            }
            // Rule 6: only the interface device sends S(RESYNCH request).
            SKind::Resync => self.invalid(None).map(T1Event::Send),
        }
    }

    fn while_sending(&mut self, block: Block) -> Result<T1Event, T1Error> {
        let (chained, next) = match &self.state {
            State::Sending { apdu, end, .. } => (*end < apdu.len(), *end),
            _ => return Err(T1Error::NotExpecting),
        };
        match block.pcb {
            Pcb::R {
                error: RError::Reserved(_),
                ..
            } => self.invalid(None).map(T1Event::Send),
            // The card applied rule 7.1: it did not get the I-block and asks for it again
            // with N(R) = its N(S). Resending counts as a failure of this step.
            Pcb::R { nr, .. } if nr == self.ns => self.retry(None, Resend::I).map(T1Event::Send),
            // Rule 5: the card acknowledges a chained I-block; send the next one.
            Pcb::R { .. } if chained => {
                let State::Sending { apdu, .. } = std::mem::take(&mut self.state) else {
                    return Err(T1Error::NotExpecting);
                };
                self.ns = !self.ns;
                self.retries = 0;
                let (block, end) = self.i_block(&apdu, next);
                self.state = State::Sending {
                    apdu,
                    start: next,
                    end,
                };
                Ok(T1Event::Send(T1Send::plain(block)))
            }
            // Rule 2: the card's I-block with the expected N(S) acknowledges the last
            // I-block of the command and starts the response.
            Pcb::I { ns, more } if !chained && ns == self.nr => {
                self.ns = !self.ns;
                self.accept_i(block.inf, more, Vec::new())
            }
            _ => self.invalid(None).map(T1Event::Send),
        }
    }

    fn after_reader_block(&mut self, block: Block) -> Result<T1Event, T1Error> {
        match block.pcb {
            // Rule 2: the card's I-block acknowledges the reader's block.
            Pcb::I { ns, more } if ns == self.nr => {
                self.ns = !self.ns;
                self.accept_i(block.inf, more, Vec::new())
            }
            // Rule 7.1: the card did not get the block and asks for it again.
            Pcb::R { nr, error } if nr == self.ns && !matches!(error, RError::Reserved(_)) => {
                self.state = State::Desynchronised;
                self.retries = 0;
                Err(T1Error::ReaderBlockLost)
            }
            _ => self.invalid(None).map(T1Event::Send),
        }
    }

    fn while_receiving(&mut self, block: Block) -> Result<T1Event, T1Error> {
        match block.pcb {
            Pcb::I { ns, more } if ns == self.nr => {
                let State::Receiving { response } = std::mem::take(&mut self.state) else {
                    return Err(T1Error::NotExpecting);
                };
                self.accept_i(block.inf, more, response)
            }
            // The card did not get the R-block acknowledging its chained I-block (rule 7.2):
            // send it again.
            Pcb::R {
                error: RError::None | RError::Edc | RError::Other,
                ..
            } => self.retry(None, Resend::R(RError::None)).map(T1Event::Send),
            _ => self.invalid(None).map(T1Event::Send),
        }
    }

    /// A valid card I-block with the expected N(S): append, then acknowledge (rule 5) or
    /// finish.
    fn accept_i(
        &mut self,
        inf: Vec<u8>,
        more: bool,
        mut response: Vec<u8>,
    ) -> Result<T1Event, T1Error> {
        self.nr = !self.nr;
        self.retries = 0;
        if response.len() + inf.len() > MAX_RESPONSE {
            self.state = State::Desynchronised;
            return Err(T1Error::ResponseTooLong);
        }
        response.extend_from_slice(&inf);
        if more {
            self.state = State::Receiving { response };
            let ack = self.encode(&Block::r(self.config.nad, self.nr, RError::None));
            Ok(T1Event::Send(T1Send::plain(ack)))
        } else {
            self.state = State::Idle;
            Ok(T1Event::Done(response))
        }
    }

    fn in_resynch(&mut self, block: &Block) -> Result<T1Event, T1Error> {
        let resynched = block.pcb
            == Pcb::S {
                kind: SKind::Resync,
                response: true,
            };
        if !resynched {
            // Rule 7.3: repeat the S(RESYNCH request).
            return self.invalid(None).map(T1Event::Send);
        }
        // Rule 6: both sides restart with N(S) = 0; the card is back to its ATR IFSC.
        self.ns = false;
        self.nr = false;
        self.ifsc = self.config.ifsc;
        self.retries = 0;
        match std::mem::take(&mut self.state) {
            State::Resynch { then: Some(apdu) } => Ok(T1Event::Send(self.start_sending(apdu))),
            _ => {
                self.state = State::Idle;
                Err(T1Error::Resynchronised)
            }
        }
    }

    /// An invalid block, an unexpected valid one, or a timeout (rule 7): repeat what the
    /// state calls for, counting the failure.
    fn invalid(&mut self, cause: Option<BlockError>) -> Result<T1Send, T1Error> {
        let resend = match self.state {
            State::IfsRequest { .. } | State::Resynch { .. } => Resend::SRequest,
            _ => match cause {
                // Rule 7.1: an R-block with N(R) = the expected N(S), saying why.
                Some(BlockError::BadEdc) => Resend::R(RError::Edc),
                _ => Resend::R(RError::Other),
            },
        };
        self.retry(cause, resend)
    }

    /// Sends `resend` again, or escalates once `max_retries` failures were counted on this
    /// step: to S(RESYNCH request) (rule 7.4), and from a failing resynchronisation to
    /// [`T1Error::Unrecoverable`].
    fn retry(&mut self, cause: Option<BlockError>, resend: Resend) -> Result<T1Send, T1Error> {
        if self.retries >= self.config.max_retries {
            self.retries = 0;
            if let State::Resynch { .. } = self.state {
                self.state = State::Dead;
                return Err(T1Error::Unrecoverable { cause });
            }
            // The APDU in flight is dropped: after resynchronisation it is reported as
            // failed, never resent.
            self.state = State::Resynch { then: None };
            return Ok(T1Send::plain(self.s_request()));
        }
        self.retries += 1;
        let block = match resend {
            Resend::R(error) => self.encode(&Block::r(self.config.nad, self.nr, error)),
            Resend::SRequest => self.s_request(),
            Resend::I => match &self.state {
                // The block is rebuilt with the IFSC now in force, which the card may have
                // lowered since it was first sent.
                State::Sending { apdu, start, .. } => {
                    let (block, end) = self.i_block(apdu, *start);
                    if let State::Sending { end: e, .. } = &mut self.state {
                        *e = end;
                    }
                    block
                }
                _ => self.encode(&Block::r(self.config.nad, self.nr, RError::Other)),
            },
        };
        Ok(T1Send::plain(block))
    }
}

fn clamp_ifs(v: u8) -> u8 {
    v.clamp(1, 254)
}
