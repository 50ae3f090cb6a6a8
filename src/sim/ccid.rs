//! The simulated reader's CCID side (CCID Rev 1.1 §6): bulk-OUT messages cut and answered,
//! late answers held back, and each command run against the slot's card.

use super::{card, PinEntry, SimulatedReader, Slot, COMMAND_LOG_CAPACITY};
use crate::proto::ccid::Chain;
use crate::proto::ccid::{
    message_type as mt, ClockStatus, Header, IccStatus, PcToRdr, PcToRdrSecure,
    PcToRdrSetParameters, PcToRdrXfrBlock, ProtocolParameters, RdrToPc, RdrToPcDataBlock,
    RdrToPcDataRateAndClockFrequency, RdrToPcEscape, RdrToPcParameters, RdrToPcSlotStatus,
    SlotError, SlotState, HEADER_LEN,
};
use crate::proto::descriptor::ExchangeLevel;
use crate::proto::pps::{self, PpsRequest};

impl SimulatedReader {
    /// Cuts whole messages out of the bulk-OUT bytes and answers each.
    pub(super) fn take_commands(&mut self) {
        let max = self.max_message_length();
        while let Ok(header) = Header::decode(&self.out_buffer) {
            let total = usize::try_from(header.message_len()).unwrap_or(usize::MAX);
            if total > max {
                // dwLength beyond dwMaxCCIDMessageLength: the reader refuses the command
                // with bError 1, the offset of dwLength (CCID §6.2.6), and drops its bytes.
                self.out_buffer.clear();
                self.stats.commands += 1;
                let answer = self.failure(&header, SlotError::BadParameter(1));
                self.queue(vec![answer]);
                return;
            }
            if self.out_buffer.len() < total {
                return;
            }
            let message: Vec<u8> = self.out_buffer.drain(..total).collect();
            self.stats.commands += 1;
            let mut head = [0u8; HEADER_LEN];
            head.copy_from_slice(message.get(..HEADER_LEN).unwrap_or(&[0; HEADER_LEN]));
            if self.command_log.len() == COMMAND_LOG_CAPACITY {
                self.command_log.pop_front();
            }
            self.command_log.push_back(head);
            if self.faults.reader_stall {
                self.stalled.push(message);
                continue;
            }
            if self.faults.late_ms > 0 || !self.late.is_empty() {
                self.take_while_late(&header, head, &message);
                continue;
            }
            let answers = self.answer(&message);
            self.queue(answers);
        }
    }

    /// A command while answers are late ([`Fault::LateAnswers`]).
    pub(super) fn take_while_late(
        &mut self,
        header: &Header,
        head: [u8; HEADER_LEN],
        message: &[u8],
    ) {
        let busy = self
            .late
            .iter()
            .position(|l| l.1.get(5) == Some(&header.slot));
        if header.message_type == mt::ABORT {
            if let Some(i) = busy {
                let aborted = self.late.remove(i).and_then(|l| Header::decode(&l.1).ok());
                if let Some(h) = aborted {
                    let answer = self.failure(&h, SlotError::CmdAborted);
                    self.queue(vec![answer]);
                }
            }
            let answers = self.answer(message);
            self.queue(answers);
        } else if busy.is_some() {
            let answer = self.failure(header, SlotError::CmdSlotBusy);
            self.queue(vec![answer]);
        } else {
            let answers = self.answer(message);
            let at = self.now_ms.saturating_add(u64::from(self.faults.late_ms));
            self.late.push_back((at, head, answers));
        }
    }

    /// Tells the reader the time (ms on any monotonic clock): late answers that are due
    /// become readable.
    pub fn set_time(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        while self.late.front().is_some_and(|l| l.0 <= self.now_ms) {
            if let Some((_, _, answers)) = self.late.pop_front() {
                self.queue(answers);
            }
        }
    }

    /// When the next late answer becomes readable, if one is held back.
    pub fn next_answer_at(&self) -> Option<u64> {
        self.late.front().map(|l| l.0)
    }

    /// The reader recovers from a stall: it answers what it took, in order.
    pub(super) fn wake(&mut self) {
        let max_busy = usize::from(self.descriptor.map_or(1, |d| d.max_busy_slots().max(1)));
        let mut running: Vec<Vec<u8>> = Vec::new();
        for message in std::mem::take(&mut self.stalled) {
            let Ok(header) = Header::decode(&message) else {
                continue;
            };
            let same_slot = running
                .iter()
                .position(|m| m.get(5).copied() == Some(header.slot));
            if header.message_type == mt::ABORT {
                if let Some(i) = same_slot {
                    let aborted = running.remove(i);
                    if let Ok(h) = Header::decode(&aborted) {
                        let answer = self.failure(&h, SlotError::CmdAborted);
                        self.queue(vec![answer]);
                    }
                }
                let answers = self.answer(&message);
                self.queue(answers);
            } else if same_slot.is_some() || running.len() >= max_busy {
                // CCID §5.2.5: a command for a busy slot, or beyond bMaxCCIDBusySlots.
                let answer = self.failure(&header, SlotError::CmdSlotBusy);
                self.queue(vec![answer]);
            } else {
                running.push(message);
            }
        }
        for message in running {
            let answers = self.answer(&message);
            self.queue(answers);
        }
    }

    /// Queues the answers to one command, applying the transfer faults.
    pub(super) fn queue(&mut self, mut answers: Vec<Vec<u8>>) {
        let Some(last) = answers.last().cloned() else {
            return;
        };
        if self.faults.stale {
            // The previous answer again, or a slot status with the previous bSeq.
            let stale = match self.last_answer.clone() {
                Some(previous) => previous,
                None => {
                    let mut m = last.clone();
                    if let Some(seq) = m.get_mut(6) {
                        *seq = seq.wrapping_sub(1);
                    }
                    m
                }
            };
            answers.insert(0, stale);
            self.stats.stale_answers += 1;
        }
        if self.faults.duplicate {
            answers.push(last.clone());
            self.stats.stale_answers += 1;
        }
        self.last_answer = Some(last);
        if self.faults.coalesce {
            let mut unit: Vec<u8> = answers.concat();
            // Merge with a unit nobody started reading.
            if self.bulk_in.len() > 1 || (self.bulk_in.len() == 1 && self.bulk_in_offset == 0) {
                if let Some(previous) = self.bulk_in.pop_back() {
                    unit = [previous, unit].concat();
                }
            }
            self.bulk_in.push_back(unit);
        } else {
            self.bulk_in.extend(answers);
        }
    }

    /// A failed answer of the type `header`'s command expects.
    pub(super) fn failure(&self, header: &Header, error: SlotError) -> Vec<u8> {
        let icc = self.slot(header.slot).map_or(IccStatus::Absent, Slot::icc);
        let state = SlotState::failed(icc, error);
        let (slot, seq) = (header.slot, header.seq);
        match header.message_type {
            mt::ICC_POWER_ON | mt::XFR_BLOCK | mt::SECURE => {
                data_block(slot, seq, state, 0, Vec::new())
            }
            mt::GET_PARAMETERS | mt::RESET_PARAMETERS | mt::SET_PARAMETERS => {
                RdrToPc::Parameters(RdrToPcParameters {
                    slot,
                    seq,
                    state,
                    parameters: ProtocolParameters::Other {
                        protocol_num: 0,
                        data: Vec::new(),
                    },
                })
                .encode()
            }
            mt::ESCAPE => RdrToPc::Escape(RdrToPcEscape {
                slot,
                seq,
                state,
                data: Vec::new(),
            })
            .encode(),
            mt::SET_DATA_RATE_AND_CLOCK_FREQUENCY => {
                RdrToPc::DataRateAndClockFrequency(RdrToPcDataRateAndClockFrequency {
                    slot,
                    seq,
                    state,
                    rates: None,
                })
                .encode()
            }
            _ => slot_status(slot, seq, state),
        }
    }

    /// The answers to one whole command: time extensions first, then the answer.
    pub(super) fn answer(&mut self, message: &[u8]) -> Vec<Vec<u8>> {
        let Ok(header) = Header::decode(message) else {
            return Vec::new();
        };
        if usize::from(header.slot) >= self.slots.len() {
            // bError 5: the offset of bSlot (CCID §6.2.6).
            return vec![self.failure(&header, SlotError::BadParameter(5))];
        }
        let command = match PcToRdr::decode(message) {
            Ok(c) => c,
            Err(crate::proto::ccid::CcidError::UnknownMessageType(_)) => {
                return vec![self.failure(&header, SlotError::CommandNotSupported)]
            }
            Err(crate::proto::ccid::CcidError::BadField { offset, .. }) => {
                return vec![self.failure(&header, SlotError::BadParameter(offset))]
            }
            Err(_) => return vec![self.failure(&header, SlotError::BadParameter(1))],
        };
        let (answer, slow) = self.execute(&header, command);
        let mut out = Vec::new();
        let data_block_answer = answer.first() == Some(&mt::DATA_BLOCK);
        if data_block_answer {
            let icc = self.slot(header.slot).map_or(IccStatus::Absent, Slot::icc);
            let mut extensions = Vec::new();
            if slow {
                extensions.extend(std::iter::repeat_n(
                    card::SLOW_WTX_MULTIPLIER,
                    usize::from(card::SLOW_WTX_COUNT),
                ));
            }
            extensions.extend(std::iter::repeat_n(
                1,
                usize::from(self.faults.time_extensions),
            ));
            for multiplier in extensions {
                let state = SlotState::time_extension(icc, multiplier);
                out.push(data_block(header.slot, header.seq, state, 0, Vec::new()));
                self.stats.time_extensions += 1;
            }
        }
        out.push(answer);
        out
    }

    /// Runs one decoded command; returns the answer and whether the card was slow.
    pub(super) fn execute(&mut self, header: &Header, command: PcToRdr) -> (Vec<u8>, bool) {
        let (slot, seq) = (header.slot, header.seq);
        let level = self.level();
        let mute = self.faults.mute;
        let ifsd = self.card_ifsd();
        let payload = self.max_message_length().saturating_sub(HEADER_LEN);
        let descriptor = self.descriptor;
        let Some(s) = self.slots.get_mut(usize::from(slot)) else {
            return (self.failure(header, SlotError::BadParameter(5)), false);
        };
        let ok = |icc| SlotState::ok(icc);
        match command {
            PcToRdr::IccPowerOn(m) => {
                let Some(card) = s.card.as_mut() else {
                    let state = SlotState::failed(IccStatus::Absent, SlotError::IccMute);
                    return (data_block(slot, seq, state, 0, Vec::new()), false);
                };
                let voltage_ok = match m.power_select.byte() {
                    0 => true,
                    n => descriptor.is_none_or(|d| {
                        d.features.auto_voltage() || d.voltage_support & (1 << (n - 1)) != 0
                    }),
                };
                if !voltage_ok {
                    let state = SlotState::failed(s.icc(), SlotError::BadParameter(7));
                    return (data_block(slot, seq, state, 0, Vec::new()), false);
                }
                if mute {
                    s.powered = false;
                    let state = SlotState::failed(IccStatus::PresentInactive, SlotError::IccMute);
                    return (data_block(slot, seq, state, 0, Vec::new()), false);
                }
                card.reset(ifsd);
                s.powered = true;
                s.parameters = None;
                s.chain_in.clear();
                s.chain_out.clear();
                let atr = card.atr.raw().to_vec();
                (
                    data_block(slot, seq, ok(IccStatus::PresentActive), 0, atr),
                    false,
                )
            }
            PcToRdr::IccPowerOff(_) => {
                s.powered = false;
                (slot_status(slot, seq, ok(s.icc())), false)
            }
            PcToRdr::GetSlotStatus(_) => (slot_status(slot, seq, ok(s.icc())), false),
            PcToRdr::XfrBlock(m) => xfr_block(s, level, mute, payload, m),
            PcToRdr::GetParameters(_) => parameters_answer(s, slot, seq),
            PcToRdr::ResetParameters(_) => {
                s.parameters = None;
                if let Some(card) = s.card.as_mut() {
                    let default = card.atr.default_protocol();
                    card.select_protocol(default);
                }
                parameters_answer(s, slot, seq)
            }
            PcToRdr::SetParameters(m) => set_parameters(s, m),
            PcToRdr::Escape(_) => {
                let state = SlotState::failed(s.icc(), SlotError::CommandNotSupported);
                let answer = RdrToPc::Escape(RdrToPcEscape {
                    slot,
                    seq,
                    state,
                    data: Vec::new(),
                });
                (answer.encode(), false)
            }
            PcToRdr::IccClock(_) | PcToRdr::T0Apdu(_) | PcToRdr::Abort(_) => {
                (slot_status(slot, seq, ok(s.icc())), false)
            }
            PcToRdr::Mechanical(_) => {
                let state = if descriptor.is_some_and(|d| d.mechanical != 0) {
                    ok(s.icc())
                } else {
                    SlotState::failed(s.icc(), SlotError::CommandNotSupported)
                };
                (slot_status(slot, seq, state), false)
            }
            PcToRdr::SetDataRateAndClockFrequency(m) => {
                let answer = RdrToPcDataRateAndClockFrequency {
                    slot,
                    seq,
                    state: ok(s.icc()),
                    rates: Some(m.rates),
                };
                (RdrToPc::DataRateAndClockFrequency(answer).encode(), false)
            }
            PcToRdr::Secure(_) if self.faults.secure_slot_status => {
                let state = SlotState::failed(s.icc(), SlotError::CommandNotSupported);
                (slot_status(slot, seq, state), false)
            }
            PcToRdr::Secure(m) => {
                let pin_verify = descriptor.is_some_and(|d| d.pin_verify());
                let entry = self.pin_entry.clone();
                match self.slots.get_mut(usize::from(slot)) {
                    Some(s) => secure(s, level, pin_verify, &entry, mute, m),
                    None => (self.failure(header, SlotError::BadParameter(5)), false),
                }
            }
        }
    }

    /// The IFSD a T=1 card assumes: 32, or the reader's dwMaxIFSD (capped so a block fits
    /// one message) when the reader negotiates IFSD itself (dwFeatures 0x400).
    pub(super) fn card_ifsd(&self) -> u8 {
        match self.descriptor {
            Some(d) if d.features.auto_ifsd() => {
                let fits = d.max_message_length().saturating_sub(15);
                u8::try_from(d.max_ifsd().min(fits).clamp(1, 254)).unwrap_or(254)
            }
            _ => 32,
        }
    }
}

pub(super) fn data_block(slot: u8, seq: u8, state: SlotState, chain: u8, data: Vec<u8>) -> Vec<u8> {
    RdrToPc::DataBlock(RdrToPcDataBlock {
        slot,
        seq,
        state,
        chain_parameter: chain,
        data,
    })
    .encode()
}

pub(super) fn slot_status(slot: u8, seq: u8, state: SlotState) -> Vec<u8> {
    RdrToPc::SlotStatus(RdrToPcSlotStatus {
        slot,
        seq,
        state,
        clock_status: ClockStatus::Running,
    })
    .encode()
}

/// The parameters in force on a slot: those set, else the ATR's (from [`pps::plan`]).
pub(super) fn current_parameters(s: &Slot) -> Option<ProtocolParameters> {
    if let Some(p) = &s.parameters {
        return Some(p.clone());
    }
    let card = s.card.as_ref()?;
    pps::plan(&card.atr, 0, 0, Some(card.protocol))
        .ok()?
        .set_parameters
}

pub(super) fn parameters_answer(s: &Slot, slot: u8, seq: u8) -> (Vec<u8>, bool) {
    let answer = match current_parameters(s) {
        Some(parameters) => RdrToPcParameters {
            slot,
            seq,
            state: SlotState::ok(s.icc()),
            parameters,
        },
        None => RdrToPcParameters {
            slot,
            seq,
            state: SlotState::failed(s.icc(), SlotError::IccMute),
            parameters: ProtocolParameters::Other {
                protocol_num: 0,
                data: Vec::new(),
            },
        },
    };
    (RdrToPc::Parameters(answer).encode(), false)
}

/// PC_to_RDR_SetParameters (CCID §6.1.7): bProtocolNum must be one the card offers.
pub(super) fn set_parameters(s: &mut Slot, m: PcToRdrSetParameters) -> (Vec<u8>, bool) {
    let (slot, seq) = (m.slot, m.seq);
    let fail = |s: &Slot, e| {
        let answer = RdrToPcParameters {
            slot,
            seq,
            state: SlotState::failed(s.icc(), e),
            parameters: ProtocolParameters::Other {
                protocol_num: m.parameters.protocol_num(),
                data: Vec::new(),
            },
        };
        (RdrToPc::Parameters(answer).encode(), false)
    };
    let t = match &m.parameters {
        ProtocolParameters::T0(_) => 0,
        ProtocolParameters::T1(_) => 1,
        // bError 7: the offset of bProtocolNum; 1: dwLength does not fit it.
        ProtocolParameters::Other { protocol_num, .. } if *protocol_num > 1 => {
            return fail(s, SlotError::BadParameter(7))
        }
        ProtocolParameters::Other { .. } => return fail(s, SlotError::BadParameter(1)),
    };
    let Some(card) = s.card.as_mut() else {
        return fail(s, SlotError::IccMute);
    };
    if !card.offers(t) {
        return fail(s, SlotError::IccProtocolNotSupported);
    }
    card.select_protocol(t);
    s.parameters = Some(m.parameters.clone());
    parameters_answer(s, slot, seq)
}

/// PC_to_RDR_XfrBlock (CCID §6.1.4) at the reader's exchange level.
pub(super) fn xfr_block(
    s: &mut Slot,
    level: ExchangeLevel,
    mute: bool,
    payload: usize,
    m: PcToRdrXfrBlock,
) -> (Vec<u8>, bool) {
    let (slot, seq) = (m.slot, m.seq);
    let icc = s.icc();
    let failed = |e| {
        (
            data_block(slot, seq, SlotState::failed(icc, e), 0, Vec::new()),
            false,
        )
    };
    let answer = |data: Vec<u8>, chain: u8, slow: bool| {
        (data_block(slot, seq, SlotState::ok(icc), chain, data), slow)
    };
    let Some(card) = s.card.as_mut() else {
        return failed(SlotError::IccMute);
    };
    if !s.powered || mute {
        return failed(SlotError::IccMute);
    }
    match level {
        ExchangeLevel::ShortApdu => {
            if m.level_parameter != 0 {
                return failed(SlotError::BadParameter(8));
            }
            let (rsp, slow) = card.apdu(&m.data);
            if rsp.len() > payload {
                return failed(SlotError::XfrOverrun);
            }
            answer(rsp, 0, slow)
        }
        ExchangeLevel::ExtendedApdu => {
            let command = match m.chain() {
                Some(Chain::Whole) => m.data,
                Some(Chain::Begins) => {
                    s.chain_in = m.data;
                    return answer(Vec::new(), Chain::Continue.into(), false);
                }
                Some(Chain::Continues) if !s.chain_in.is_empty() => {
                    s.chain_in.extend_from_slice(&m.data);
                    return answer(Vec::new(), Chain::Continue.into(), false);
                }
                Some(Chain::Ends) if !s.chain_in.is_empty() => {
                    let mut all = std::mem::take(&mut s.chain_in);
                    all.extend_from_slice(&m.data);
                    all
                }
                Some(Chain::Continue) => match s.chain_out.pop_front() {
                    Some((chain, part)) => return answer(part, chain, false),
                    None => return failed(SlotError::BadParameter(8)),
                },
                _ => return failed(SlotError::BadParameter(8)),
            };
            s.chain_out.clear();
            let (rsp, slow) = card.apdu(&command);
            if rsp.len() <= payload {
                return answer(rsp, 0, slow);
            }
            // CCID §6.2.1: bChainParameter 1 begins, 3 continues, 2 ends.
            s.chain_out = Chain::split(&rsp, payload)
                .into_iter()
                .map(|(chain, part)| (chain.into(), part.to_vec()))
                .collect();
            let (chain, first) = s.chain_out.pop_front().unwrap_or_default();
            answer(first, chain, slow)
        }
        // TPDU level; a character-level profile is served the same way.
        _ => {
            let pps_allowed = std::mem::take(&mut card.pps_allowed);
            if pps_allowed && m.data.first() == Some(&pps::PPSS) {
                // ISO/IEC 7816-3 §9: the card accepts a PPS for a protocol it offers by
                // echoing it, and ignores any other (the reader then reports it mute).
                return match PpsRequest::decode(&m.data) {
                    Ok(request) if card.offers(request.protocol) => {
                        card.select_protocol(request.protocol);
                        answer(m.data, 0, false)
                    }
                    _ => failed(SlotError::IccMute),
                };
            }
            if card.protocol == 1 {
                match card.t1(&m.data) {
                    Some(block) => answer(block, 0, false),
                    None => failed(SlotError::IccMute),
                }
            } else {
                let (rsp, slow) = card.t0(&m.data);
                if rsp.len() > payload {
                    return failed(SlotError::XfrOverrun);
                }
                answer(rsp, 0, slow)
            }
        }
    }
}

/// PC_to_RDR_Secure, PIN verification (CCID §6.1.11.4): the scripted PIN is formatted into
/// abPINApdu per bmFormatString, bmPINBlockString and bmPINLengthFormat, and the APDU goes
/// to the card as the reader's exchange level sends it: whole at the APDU levels, as a T=0
/// TPDU, or at TPDU level with T=1 as one I-block built from bTeoPrologue (NAD and PCB
/// from the host, LEN and EDC for the completed APDU), whose answer is the card's block.
///
/// abData layout: [0] bPINOperation (0 verify), [1] bTimeOut, [2] bmFormatString
/// (b7 units: 1 bytes, 0 bits; b6..b3 PIN position; b2 right-justify; b1..b0 type:
/// 0 binary, 1 BCD, 2 ASCII), [3] bmPINBlockString (b7..b4 length field size in bits,
/// b3..b0 PIN block size in bytes), [4] bmPINLengthFormat (b4 units; b3..b0 position of the
/// length field), [5..7] wPINMaxExtraDigit, [7] bEntryValidationCondition,
/// [8] bNumberMessage, [9..11] wLangId, [11] bMsgIndex, [12..15] bTeoPrologue,
/// [15..] abPINApdu.
pub(super) fn secure(
    s: &mut Slot,
    level: ExchangeLevel,
    pin_verify: bool,
    entry: &PinEntry,
    mute: bool,
    m: PcToRdrSecure,
) -> (Vec<u8>, bool) {
    let (slot, seq) = (m.slot, m.seq);
    let icc = s.icc();
    let failed = |e| {
        (
            data_block(slot, seq, SlotState::failed(icc, e), 0, Vec::new()),
            false,
        )
    };
    if !pin_verify {
        return failed(SlotError::CommandNotSupported);
    }
    let Some(card) = s.card.as_mut() else {
        return failed(SlotError::IccMute);
    };
    if !s.powered || mute {
        return failed(SlotError::IccMute);
    }
    // bError 10: the offset of abData (the bPINOperation or its structure is bad).
    let (
        Some(0),
        Some(&format),
        Some(&block),
        Some(&length_format),
        Some(&[nad, pcb, len]),
        Some(template),
    ) = (
        m.data.first().copied(),
        m.data.get(2),
        m.data.get(3),
        m.data.get(4),
        m.data.get(12..15),
        m.data.get(15..),
    )
    else {
        return failed(SlotError::BadParameter(10));
    };
    let digits = match entry {
        PinEntry::Timeout => return failed(SlotError::PinTimeout),
        PinEntry::Cancel => return failed(SlotError::PinCancelled),
        PinEntry::Digits(d) => d.clone(),
    };
    let Some(apdu) = format_pin(template, &digits, format, block, length_format) else {
        return failed(SlotError::BadParameter(10));
    };
    let (rsp, slow) = match (level, card.protocol) {
        (ExchangeLevel::Tpdu, 1) => match card.reader_block([nad, pcb, len], &apdu) {
            Some(rsp) => (rsp, false),
            None => return failed(SlotError::IccMute),
        },
        (ExchangeLevel::Tpdu, _) => card.t0(&apdu),
        _ => card.apdu(&apdu),
    };
    (data_block(slot, seq, SlotState::ok(icc), 0, rsp), slow)
}

/// Writes `digits` into the APDU template (see [`secure`]); `None` when it does not fit.
pub(super) fn format_pin(
    template: &[u8],
    digits: &str,
    format: u8,
    block: u8,
    length_format: u8,
) -> Option<Vec<u8>> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) || template.len() < 4 {
        return None;
    }
    let values: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    let encoded: Vec<u8> = match format & 0x03 {
        0 => values.clone(),
        1 => values
            .chunks(2)
            .map(|p| p.first().copied().unwrap_or(0xF) << 4 | p.get(1).copied().unwrap_or(0xF))
            .collect(),
        2 => digits.as_bytes().to_vec(),
        _ => return None,
    };
    let mut apdu = template.to_vec();
    if apdu.len() == 4 {
        // No PIN block in the template: a case 3 APDU carrying the PIN alone.
        apdu.push(u8::try_from(encoded.len()).ok()?);
        apdu.extend_from_slice(&encoded);
        return Some(apdu);
    }
    let data_start = 5;
    let units = (format >> 3) & 0x0F;
    let position = if format & 0x80 != 0 { units } else { units / 8 };
    let start = data_start + usize::from(position);
    let block_size = usize::from(block & 0x0F);
    let offset = if format & 0x04 != 0 {
        block_size.checked_sub(encoded.len())?
    } else {
        0
    };
    let target = apdu.get_mut(start + offset..start + offset + encoded.len())?;
    target.copy_from_slice(&encoded);
    let length_bits = u32::from(block >> 4);
    if length_bits > 0 {
        let at = u32::from(length_format & 0x0F) * if length_format & 0x10 != 0 { 8 } else { 1 };
        let byte = data_start + usize::try_from(at / 8).ok()?;
        let shift = 8u32.checked_sub(at % 8 + length_bits)?;
        let count = u8::try_from(values.len()).ok()?;
        let slot = apdu.get_mut(byte)?;
        let mask = u8::try_from(((1u32 << length_bits) - 1) << shift).ok()?;
        *slot = (*slot & !mask) | ((count << shift) & mask);
    }
    Some(apdu)
}
