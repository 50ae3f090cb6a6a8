//! Transmit: one command APDU at the reader's exchange level, as T=0 TPDUs, T=1 blocks
//! or (chained) APDUs (CCID Rev 1.1 §6.1.4; ISO/IEC 7816-3 §10, §11).

use super::{
    slot_failure, Command, Millis, Owed, Pending, Reader, ReaderError, HEADER_LEN,
    MIN_EXCHANGE_TIMEOUT_MS, TRANSPORT_MARGIN_MS,
};

use crate::proto::atr::Atr;
use crate::proto::ccid::Chain;
use crate::proto::ccid::{
    CommandStatus, IccStatus, PcToRdr, PcToRdrXfrBlock, RdrToPc, SlotError, SlotState,
};
use crate::proto::descriptor::ExchangeLevel;
use crate::proto::t0::{T0Error, T0Exchange, T0Step};
use crate::proto::t1::{T1Error, T1Event, T1Send};

#[derive(Debug)]
pub(super) enum TransmitMode {
    /// T=0 TPDUs built by the host.
    T0(T0Exchange),
    /// T=1 blocks built by the slot's engine.
    T1,
    /// PC_to_RDR_Secure sent: the reader is collecting the PIN. Its answer is the card's
    /// response APDU, or at TPDU level with T=1 the card's first block (`t1`), after which
    /// the exchange goes on as [`TransmitMode::T1`].
    PinEntry { t1: bool },
    /// Short or extended APDU level: the command's remaining chunks and the response so far.
    Apdu {
        /// Chunks still to send, each with its wLevelParameter.
        chunks: Vec<(u16, Vec<u8>)>,
        response: Vec<u8>,
    },
}
impl Reader {
    pub(super) fn begin_transmit(
        &mut self,
        slot: u8,
        command: &Command,
        now: Millis,
    ) -> Result<TransmitMode, ReaderError> {
        let apdu = command.bytes();
        let command = command.apdu();
        let Some(card) = self.card(slot) else {
            return Err(if self.card_present(slot) == Some(false) {
                ReaderError::CardAbsent
            } else {
                ReaderError::NotPowered
            });
        };
        let protocol = card.protocol;
        let payload =
            usize::try_from(self.desc.max_message_length() - HEADER_LEN).unwrap_or(usize::MAX);
        match (self.level, protocol) {
            (ExchangeLevel::Tpdu, 0) => {
                let exchange = T0Exchange::new(command, self.desc.class_get_response).map_err(
                    |e| match e {
                        T0Error::ExtendedNotSupported => ReaderError::TooLong {
                            len: apdu.len(),
                            max: 261,
                        },
                        other => ReaderError::T0(other),
                    },
                )?;
                let tpdu = exchange.first_tpdu();
                if tpdu.len() > payload {
                    return Err(ReaderError::TooLong {
                        len: tpdu.len(),
                        max: payload,
                    });
                }
                let timeout = self.exchange_timeout(slot);
                self.send_xfr(slot, 0, 0, tpdu, now, timeout);
                Ok(TransmitMode::T0(exchange))
            }
            (ExchangeLevel::Tpdu, _) => {
                let timeout = self.exchange_timeout(slot);
                let card = self.slots[usize::from(slot)]
                    .card
                    .as_mut()
                    .ok_or(ReaderError::NotPowered)?;
                let t1 = card.t1.as_mut().ok_or(ReaderError::NotPowered)?;
                let send = t1.transmit(apdu).map_err(ReaderError::T1)?;
                self.t1_in_flight = Some(slot);
                self.send_xfr(slot, send.bwi, 0, send.block, now, timeout);
                Ok(TransmitMode::T1)
            }
            (ExchangeLevel::ShortApdu, _) => {
                // The short encoding of the command (an extended-form APDU whose lengths fit
                // short fields is sent short); one that needs extended fields cannot go.
                let short = command
                    .encode()
                    .ok()
                    .filter(|b| !command.is_extended() && b.len() <= payload.min(261));
                let Some(short) = short else {
                    return Err(ReaderError::TooLong {
                        len: apdu.len(),
                        max: payload.min(261),
                    });
                };
                let timeout = self.exchange_timeout(slot);
                self.send_xfr(slot, 0, Chain::Whole.into(), short, now, timeout);
                Ok(TransmitMode::Apdu {
                    chunks: Vec::new(),
                    response: Vec::new(),
                })
            }
            _ => {
                // Extended APDU level: one XfrBlock when it fits, else a chain of them
                // (CCID §6.1.4: wLevelParameter 1 begins, 3 continues, 2 ends).
                // The next chunk last: a `Vec` popped from its end (no `VecDeque` code).
                let mut chunks: Vec<(u16, Vec<u8>)> = Chain::split(apdu, payload)
                    .into_iter()
                    .rev()
                    .map(|(chain, part)| (chain.into(), part.to_vec()))
                    .collect();
                let (level, first) = chunks.pop().unwrap_or((Chain::Whole.into(), Vec::new()));
                let timeout = self.exchange_timeout(slot);
                self.send_xfr(slot, 0, level, first, now, timeout);
                Ok(TransmitMode::Apdu {
                    chunks,
                    response: Vec::new(),
                })
            }
        }
    }

    pub(super) fn advance_transmit(
        &mut self,
        slot: u8,
        mode: TransmitMode,
        message: RdrToPc,
        state: SlotState,
        now: Millis,
    ) -> Result<(), ReaderError> {
        let timeout = self.exchange_timeout(slot);
        match mode {
            TransmitMode::PinEntry { t1 } => {
                let failure = (state.command != CommandStatus::Ok).then(|| {
                    // A failed answer of the wrong type, or "command not supported": the
                    // reader refused the PIN pad command itself and sent nothing to the card.
                    let refused = !matches!(message, RdrToPc::DataBlock(_))
                        || state.error() == Some(SlotError::CommandNotSupported);
                    if refused && state.icc != IccStatus::Absent {
                        ReaderError::PinPadUnusable
                    } else {
                        slot_failure(state)
                    }
                });
                if let Some(
                    e @ (ReaderError::PinCancelled
                    | ReaderError::PinTimeout
                    | ReaderError::PinPadUnusable),
                ) = failure
                {
                    // The reader sent nothing to the card: T=1 stays in sequence.
                    if t1 {
                        self.t1_in_flight = None;
                        if let Some(engine) = self.slots[usize::from(slot)]
                            .card
                            .as_mut()
                            .and_then(|c| c.t1.as_mut())
                        {
                            engine.reader_block_not_sent();
                        }
                    }
                    return Err(e);
                }
                let next = if t1 {
                    TransmitMode::T1
                } else {
                    TransmitMode::Apdu {
                        chunks: Vec::new(),
                        response: Vec::new(),
                    }
                };
                self.advance_transmit(slot, next, message, state, now)
            }
            TransmitMode::T0(mut exchange) => {
                if state.command != CommandStatus::Ok {
                    return Err(self.transmit_failure(state));
                }
                let RdrToPc::DataBlock(block) = message else {
                    return Err(ReaderError::Protocol("answer of the wrong type"));
                };
                match exchange.on_response(&block.data).map_err(ReaderError::T0)? {
                    T0Step::Send(tpdu) => {
                        self.send_xfr(slot, 0, 0, tpdu, now, timeout);
                        self.pending = Some(Pending::Transmit {
                            slot,
                            mode: TransmitMode::T0(exchange),
                        });
                    }
                    T0Step::Done(response) => self.complete(response),
                }
                Ok(())
            }
            TransmitMode::T1 => {
                let card = self.slots[usize::from(slot)]
                    .card
                    .as_mut()
                    .ok_or(ReaderError::NotPowered)?;
                let t1 = card.t1.as_mut().ok_or(ReaderError::NotPowered)?;
                let event = if state.command == CommandStatus::Ok {
                    let RdrToPc::DataBlock(block) = message else {
                        return Err(ReaderError::Protocol("answer of the wrong type"));
                    };
                    t1.on_block(&block.data)
                } else {
                    match slot_failure(state) {
                        // The reader saw no valid block within BWT (or a parity error):
                        // for T=1 that is a missing block, answered with an R-block
                        // (ISO/IEC 7816-3 §11.6.3).
                        ReaderError::CardMute | ReaderError::Slot(SlotError::XfrParityError) => {
                            t1.on_timeout().map(T1Event::Send)
                        }
                        other => return Err(other),
                    }
                };
                match event {
                    Ok(T1Event::Send(send)) => {
                        let multiplier = Millis::from(send.deadline_multiplier());
                        let waiting = self.card(slot).map_or(0, |c| c.waiting_ms);
                        let deadline = (waiting * multiplier + TRANSPORT_MARGIN_MS)
                            .max(MIN_EXCHANGE_TIMEOUT_MS);
                        self.send_xfr(slot, send.bwi, 0, send.block, now, deadline);
                        self.pending = Some(Pending::Transmit {
                            slot,
                            mode: TransmitMode::T1,
                        });
                        Ok(())
                    }
                    Ok(T1Event::Done(response)) => {
                        self.complete(response);
                        Ok(())
                    }
                    Ok(T1Event::IfsdAccepted(_)) => {
                        Err(ReaderError::Protocol("unexpected ifs response"))
                    }
                    Err(T1Error::Aborted { send }) => {
                        // Tell the card its abort was accepted, then fail the APDU.
                        self.send_unawaited_t1(slot, &send);
                        Err(ReaderError::T1(T1Error::Aborted { send }))
                    }
                    Err(e) => Err(ReaderError::T1(e)),
                }
            }
            TransmitMode::Apdu {
                mut chunks,
                mut response,
            } => {
                if state.command != CommandStatus::Ok {
                    return Err(self.transmit_failure(state));
                }
                let RdrToPc::DataBlock(block) = message else {
                    return Err(ReaderError::Protocol("answer of the wrong type"));
                };
                if let Some((level, chunk)) = chunks.pop() {
                    // An intermediate answer to a command chain carries no response data.
                    if !block.data.is_empty() {
                        return Err(ReaderError::Protocol(
                            "data in the middle of a command chain",
                        ));
                    }
                    self.send_xfr(slot, 0, level, chunk, now, timeout);
                    self.pending = Some(Pending::Transmit {
                        slot,
                        mode: TransmitMode::Apdu { chunks, response },
                    });
                    return Ok(());
                }
                if response.len().saturating_add(block.data.len()) > 65_538 {
                    return Err(ReaderError::Protocol("response chain too long"));
                }
                response.extend_from_slice(&block.data);
                match block.chain() {
                    Some(chain) if chain.is_last() => {
                        self.complete(response);
                        Ok(())
                    }
                    Some(_) => {
                        self.send_xfr(slot, 0, Chain::Continue.into(), Vec::new(), now, timeout);
                        self.pending = Some(Pending::Transmit {
                            slot,
                            mode: TransmitMode::Apdu { chunks, response },
                        });
                        Ok(())
                    }
                    None => Err(ReaderError::Protocol("bad bChainParameter")),
                }
            }
        }
    }

    /// A failed XfrBlock answer: an overrun means the response did not fit one message.
    pub(super) fn transmit_failure(&self, state: SlotState) -> ReaderError {
        match slot_failure(state) {
            ReaderError::Slot(SlotError::XfrOverrun) => ReaderError::ResponseTooLong {
                max_message: self.desc.max_message_length(),
            },
            other => other,
        }
    }

    /// The read deadline for one card exchange: the card's waiting time plus a margin.
    pub(super) fn exchange_timeout(&self, slot: u8) -> Millis {
        let waiting = self.card(slot).map_or(0, |c| c.waiting_ms);
        (waiting + TRANSPORT_MARGIN_MS).max(MIN_EXCHANGE_TIMEOUT_MS)
    }

    pub(super) fn send_t1(&mut self, slot: u8, send: &T1Send, atr: &Atr, now: Millis) {
        let clock = self.desc.default_clock.max(1);
        let bwt = atr
            .block_waiting_time_us(clock)
            .map_or(MIN_EXCHANGE_TIMEOUT_MS, |us| us.div_ceil(1000));
        let timeout = (bwt * Millis::from(send.deadline_multiplier()) + TRANSPORT_MARGIN_MS)
            .max(MIN_EXCHANGE_TIMEOUT_MS);
        self.send_xfr(slot, send.bwi, 0, send.block.clone(), now, timeout);
    }

    /// Sends a block whose answer nobody waits for (S(ABORT response)); a late answer is
    /// dropped as stale.
    pub(super) fn send_unawaited_t1(&mut self, slot: u8, send: &T1Send) {
        let seq = self.next_seq();
        let msg = PcToRdr::XfrBlock(PcToRdrXfrBlock {
            slot,
            seq,
            bwi: send.bwi,
            level_parameter: 0,
            data: send.block.clone(),
        });
        self.stats.commands += 1;
        self.outbox.push(msg.encode());
        // Nobody reads its answer now: the next operation waits for it first.
        self.owed = Some(Owed { slot, seq });
    }

    pub(super) fn send_xfr(
        &mut self,
        slot: u8,
        bwi: u8,
        level: u16,
        data: Vec<u8>,
        now: Millis,
        timeout: Millis,
    ) {
        let seq = self.next_seq();
        self.push_command(
            PcToRdr::XfrBlock(PcToRdrXfrBlock {
                slot,
                seq,
                bwi,
                level_parameter: level,
                data,
            }),
            now + timeout,
            timeout,
        );
    }
}
