//! Power on: activation at each voltage in turn, the ATR, PPS, SetParameters and for T=1
//! the IFS exchange (CCID Rev 1.1 §6.1.1, §6.1.7; ISO/IEC 7816-3 §6, §9, §11.4.2).

use super::{
    slot_failure, Card, Millis, Pending, PoweredOn, Reader, ReaderError, CONTROL_TIMEOUT_MS,
    HEADER_LEN, MIN_EXCHANGE_TIMEOUT_MS, POWER_ON_TIMEOUT_MS, T1_OVERHEAD,
};

use crate::proto::atr::{self, Atr, FiDi};
use crate::proto::ccid::{
    CommandStatus, PcToRdr, PcToRdrIccPowerOn, PcToRdrSetParameters, PowerSelect, RdrToPc,
    SlotState,
};
use crate::proto::descriptor::ExchangeLevel;
use crate::proto::pps::{self, ParameterPlan, PpsRequest};
use crate::proto::t1::{self, T1Config, T1Event, T1Send, T1};

/// What a power-on carries from one stage to the next.
#[derive(Debug)]
pub(super) struct PowerOnRun {
    pub(super) slot: u8,
    pub(super) preferred: Option<u8>,
    /// Voltages still to try after the one in use, the next one last (a `Vec` popped from
    /// its end: no `VecDeque` code in the bundle, issue 18).
    pub(super) voltages: Vec<PowerSelect>,
    /// Set after a failed PPS: the card was reset and is driven at default parameters.
    pub(super) skip_pps: bool,
}

#[derive(Debug)]
pub(super) enum PowerOnStage {
    Activating,
    Pps {
        atr: Atr,
        plan: ParameterPlan,
        request: PpsRequest,
    },
    SetParameters {
        atr: Atr,
        plan: ParameterPlan,
    },
    Ifs {
        atr: Atr,
        plan: ParameterPlan,
        t1: T1,
    },
}

impl Reader {
    /// Waits for the answer to the message just sent, in `stage`.
    fn wait_power_on(&mut self, run: PowerOnRun, stage: PowerOnStage) -> Result<(), ReaderError> {
        self.pending = Some(Pending::PowerOn { run, stage });
        Ok(())
    }

    pub(super) fn advance_power_on(
        &mut self,
        mut run: PowerOnRun,
        stage: PowerOnStage,
        message: RdrToPc,
        state: SlotState,
        now: Millis,
    ) -> Result<(), ReaderError> {
        let slot = run.slot;
        match stage {
            PowerOnStage::Activating => {
                if state.command != CommandStatus::Ok {
                    let err = slot_failure(state);
                    // A card that does not answer at one voltage may at the next (libccid
                    // tries 5 V, then 3 V, then 1.8 V).
                    if matches!(err, ReaderError::CardMute | ReaderError::Slot(_)) {
                        if let Some(next) = run.voltages.pop() {
                            self.send_power_on(slot, next, now);
                            return self.wait_power_on(run, PowerOnStage::Activating);
                        }
                    }
                    return Err(err);
                }
                let RdrToPc::DataBlock(block) = message else {
                    return Err(ReaderError::Protocol("answer of the wrong type"));
                };
                if block.data.is_empty() {
                    return Err(ReaderError::CardMute);
                }
                let atr = Atr::parse(&block.data).map_err(ReaderError::Atr)?;
                let features = self.desc.features.bits();
                let mut plan = pps::plan(
                    &atr,
                    features,
                    self.desc.voltage_support,
                    if run.skip_pps { None } else { run.preferred },
                )
                .map_err(ReaderError::Pps)?;
                if !self.reader_supports(plan.protocol) {
                    return Err(ReaderError::Unsupported(
                        "card protocol not supported by reader",
                    ));
                }
                if run.skip_pps {
                    plan.pps = None;
                    plan.fi_di = FiDi::DEFAULT;
                    plan.set_parameters = plan
                        .set_parameters
                        .map(|p| p.with_findex_dindex(FiDi::DEFAULT.ta1()));
                }
                if let Some(request) = plan.pps {
                    if self.level == ExchangeLevel::Tpdu {
                        self.send_xfr(slot, 0, 0, request.encode(), now, POWER_ON_TIMEOUT_MS);
                        return self.wait_power_on(run, PowerOnStage::Pps { atr, plan, request });
                    }
                }
                self.after_pps(run, atr, plan, now)
            }
            PowerOnStage::Pps {
                atr,
                mut plan,
                request,
            } => {
                let outcome = match (&message, state.command) {
                    (RdrToPc::DataBlock(b), CommandStatus::Ok) => {
                        pps::check_pps_response(&request, &b.data).ok()
                    }
                    _ => None,
                };
                match outcome {
                    Some(o) => {
                        plan.fi_di = o.fi_di;
                        plan.set_parameters = plan
                            .set_parameters
                            .map(|p| p.with_findex_dindex(o.fi_di.ta1()));
                        self.after_pps(run, atr, plan, now)
                    }
                    None if !run.skip_pps => {
                        // ISO/IEC 7816-3 §9.3: after a failed PPS exchange the card must be
                        // reset; it is then driven at the default parameters.
                        let select = if self.desc.features.auto_voltage() {
                            PowerSelect::Auto
                        } else {
                            PowerSelect::V5
                        };
                        self.send_power_on(slot, select, now);
                        run.skip_pps = true;
                        self.wait_power_on(run, PowerOnStage::Activating)
                    }
                    None => Err(ReaderError::Protocol("pps refused")),
                }
            }
            PowerOnStage::SetParameters { atr, plan } => {
                if state.command != CommandStatus::Ok {
                    return Err(slot_failure(state));
                }
                self.after_set_parameters(run, atr, plan, now)
            }
            PowerOnStage::Ifs { atr, plan, mut t1 } => {
                if state.command != CommandStatus::Ok {
                    let failure = slot_failure(state);
                    if failure != ReaderError::CardMute {
                        return Err(failure);
                    }
                    let send = t1.on_timeout().map_err(ReaderError::T1)?;
                    self.send_t1(slot, &send, &atr, now);
                    return self.wait_power_on(run, PowerOnStage::Ifs { atr, plan, t1 });
                }
                let RdrToPc::DataBlock(block) = message else {
                    return Err(ReaderError::Protocol("answer of the wrong type"));
                };
                match t1.on_block(&block.data).map_err(ReaderError::T1)? {
                    T1Event::IfsdAccepted(_) | T1Event::Done(_) => {
                        self.activate(slot, atr, plan.protocol, Some(t1));
                        Ok(())
                    }
                    T1Event::Send(send) => {
                        self.send_t1(slot, &send, &atr, now);
                        self.wait_power_on(run, PowerOnStage::Ifs { atr, plan, t1 })
                    }
                }
            }
        }
    }

    pub(super) fn after_pps(
        &mut self,
        run: PowerOnRun,
        atr: Atr,
        plan: ParameterPlan,
        now: Millis,
    ) -> Result<(), ReaderError> {
        let slot = run.slot;
        if let Some(params) = plan.set_parameters.clone() {
            let seq = self.next_seq();
            self.push_command(
                PcToRdr::SetParameters(PcToRdrSetParameters {
                    slot,
                    seq,
                    parameters: params,
                }),
                now + CONTROL_TIMEOUT_MS,
                CONTROL_TIMEOUT_MS,
            );
            return self.wait_power_on(run, PowerOnStage::SetParameters { atr, plan });
        }
        self.after_set_parameters(run, atr, plan, now)
    }

    pub(super) fn after_set_parameters(
        &mut self,
        run: PowerOnRun,
        atr: Atr,
        plan: ParameterPlan,
        now: Millis,
    ) -> Result<(), ReaderError> {
        let slot = run.slot;
        if plan.protocol != 1 || self.level != ExchangeLevel::Tpdu {
            self.activate(slot, atr, plan.protocol, None);
            return Ok(());
        }
        let mut t1 = T1::new(self.t1_config(&atr)?);
        if !plan.send_ifs {
            self.activate(slot, atr, plan.protocol, Some(t1));
            return Ok(());
        }
        let block = t1.ifs_request().map_err(ReaderError::T1)?;
        self.send_t1(slot, &T1Send { block, bwi: 0 }, &atr, now);
        self.wait_power_on(run, PowerOnStage::Ifs { atr, plan, t1 })
    }

    /// T=1 engine parameters: IFSC from the ATR and IFSD = min(dwMaxIFSD, 254, what
    /// dwMaxCCIDMessageLength carries), both capped so a block always fits one XfrBlock.
    pub(super) fn t1_config(&self, atr: &Atr) -> Result<T1Config, ReaderError> {
        let fits = self
            .desc
            .max_message_length()
            .saturating_sub(HEADER_LEN + T1_OVERHEAD);
        let cap = u8::try_from(fits.min(254)).unwrap_or(254);
        let ifsd = u8::try_from(self.desc.max_ifsd().min(254))
            .unwrap_or(254)
            .clamp(1, cap.max(1));
        let ifsc = atr.ifsc().map_err(ReaderError::Atr)?.min(cap.max(1));
        let edc = match atr.edc() {
            atr::Edc::Lrc => t1::Edc::Lrc,
            // Start with the form deployed cards are tested against; the engine
            // recognises the other one from the card's blocks.
            atr::Edc::Crc => t1::Edc::Crc(t1::CrcForm::Libccid),
        };
        Ok(T1Config {
            ifsc,
            ifsd,
            edc,
            nad: 0,
            max_retries: 3,
        })
    }

    pub(super) fn activate(&mut self, slot: u8, atr: Atr, protocol: u8, t1: Option<T1>) {
        let clock = self.desc.default_clock.max(1);
        let waiting_us = if protocol == 1 {
            atr.block_waiting_time_us(clock)
        } else {
            atr.work_waiting_time_us(clock)
        };
        let waiting_ms = waiting_us.map_or(MIN_EXCHANGE_TIMEOUT_MS, |us| us.div_ceil(1000));
        let raw = atr.raw().to_vec();
        let s = &mut self.slots[usize::from(slot)];
        s.present = Some(true);
        s.card = Some(Card {
            atr,
            protocol,
            t1,
            waiting_ms,
        });
        self.complete(PoweredOn { atr: raw, protocol });
    }

    pub(super) fn reader_supports(&self, protocol: u8) -> bool {
        match protocol {
            0 => self.desc.supports_t0(),
            1 => self.desc.supports_t1(),
            _ => false,
        }
    }

    pub(super) fn send_power_on(&mut self, slot: u8, power_select: PowerSelect, now: Millis) {
        let seq = self.next_seq();
        self.push_command(
            PcToRdr::IccPowerOn(PcToRdrIccPowerOn {
                slot,
                seq,
                power_select,
            }),
            now + POWER_ON_TIMEOUT_MS,
            POWER_ON_TIMEOUT_MS,
        );
    }
}
