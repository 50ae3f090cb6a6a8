//! The host reader state machine (`card_relay::reader`) against the simulated reader, the
//! way the WebUSB driver runs it: every bulk-OUT message goes through `transfer_out`, every
//! answer is read back with `transfer_in` and reassembled, interrupts are polled, and time
//! only moves when nothing can be read (a timeout).
//!
//! Four set-ups carry the seed session (reference/seed.md) and every fault: a T=0 card and
//! a T=1 card on a TPDU reader (libccid GemPCTwin: the host does PPS, SetParameters and
//! S(IFS)), a short-APDU reader (ACS ACR3901U) and an extended-APDU reader (Ask CPL108,
//! dwMaxCCIDMessageLength 271, so long APDUs are chained). Then every one of libccid's 691
//! dumps runs power on, SELECT and GET CHALLENGE.
#![cfg(all(feature = "simulator", not(target_arch = "wasm32")))]

use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use card_relay::driver::usb::{Clock, LocalBoxFuture};
use card_relay::driver::CcidDriver;
use card_relay::sim::transport::SimTransport;

use card_relay::proto::ccid::{
    PcToRdr, PcToRdrSecure, RdrToPc, RdrToPcDataBlock, Reassembler, SlotError,
};
use card_relay::proto::descriptor::ExchangeLevel;
use card_relay::proto::hex::h;
use card_relay::reader::{
    Command, Millis, Operation, PinVerify, PowerOn, PoweredOn, Reader, ReaderError, ReaderEvent,
    Status, Transmit, VerifyPin,
};
use card_relay::sim::card::{SEED_ATR, T0_ATR, T0_T1_ATR};
use card_relay::sim::{
    profiles, CardConfig, Fault, InTransfer, PinEntry, Profile, SimConfig, SimulatedReader,
    UsbFault,
};

/// A command APDU the test knows to be valid.
fn cmd(bytes: Vec<u8>) -> Command {
    Command::parse(bytes).expect("valid apdu")
}

const SELECT: &str = "00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00";
const FCP: &str = "62 07 82 01 78 85 02 01 02 90 00";
const VERIFY_648219: &str = "00 20 00 81 06 36 34 38 32 31 39";

/// One simulated device driven by a `Reader`.
struct Bench {
    sim: SimulatedReader,
    reader: Reader,
    reassembler: Reassembler,
    now: Millis,
    /// Length of each bulk-IN transferIn.
    read_len: usize,
    events: Vec<ReaderEvent>,
    stalls: u32,
}

#[derive(Debug, PartialEq)]
enum Outcome<T> {
    Done(Result<T, ReaderError>),
    Usb(UsbFault),
}

impl Bench {
    fn new(profile: &str, card: Option<CardConfig>) -> Bench {
        let config = SimConfig {
            profile: profiles::load(profile).expect("profile"),
            card,
            seed: 7,
        };
        Bench::with(SimulatedReader::new(config).expect("simulator"))
    }

    fn with(mut sim: SimulatedReader) -> Bench {
        sim.open().expect("open");
        sim.select_configuration(1).expect("configuration");
        let ccid = sim.ccid_interface().expect("a ccid interface").clone();
        sim.claim_interface(ccid.number).expect("claim");
        let max = ccid.descriptor.max_message_length();
        Bench {
            reader: Reader::new(ccid.descriptor).expect("reader"),
            sim,
            reassembler: Reassembler::new(max),
            now: 1_000,
            read_len: usize::try_from(max).unwrap(),
            events: Vec::new(),
            stalls: 0,
        }
    }

    fn poll_interrupt(&mut self) {
        while let InTransfer::Ready(Ok(data)) = self.sim.transfer_in(3, 8) {
            self.reader
                .handle_interrupt(&data)
                .expect("interrupt decodes");
        }
        while let Some(ev) = self.reader.poll_event() {
            self.events.push(ev);
        }
    }

    fn run<O: Operation>(&mut self, op: O) -> Outcome<O::Output> {
        self.poll_interrupt();
        let ticket = match self.reader.start(op, self.now) {
            Ok(ticket) => ticket,
            Err(e) => return Outcome::Done(Err(e)),
        };
        for _ in 0..100_000 {
            while let Some(ev) = self.reader.poll_event() {
                self.events.push(ev);
            }
            if let Some(result) = self.reader.poll_completion(&ticket) {
                return Outcome::Done(result);
            }
            if let Some(out) = self.reader.poll_transmit() {
                match self.sim.transfer_out(2, &out) {
                    Ok(n) => assert_eq!(n, out.len()),
                    Err(UsbFault::Stall) => {
                        // What a driver does: clear the halt and write again.
                        self.stalls += 1;
                        self.sim.clear_halt(false, 2).expect("clear halt");
                        self.sim
                            .transfer_out(2, &out)
                            .expect("write after clear halt");
                    }
                    Err(e) => return Outcome::Usb(e),
                }
                continue;
            }
            if !self.reader.awaiting_response() {
                panic!("reader idle without completion");
            }
            match self.sim.transfer_in(1, self.read_len) {
                InTransfer::Ready(Ok(data)) => {
                    self.reassembler.push(&data);
                    while let Some(msg) = self.reassembler.pop().expect("framing") {
                        self.reader.handle_message(&msg, self.now);
                    }
                }
                InTransfer::Ready(Err(UsbFault::Stall)) => {
                    self.stalls += 1;
                    self.sim.clear_halt(true, 1).expect("clear halt");
                }
                InTransfer::Ready(Err(e)) => return Outcome::Usb(e),
                InTransfer::Pending => {
                    let deadline = self.reader.poll_timeout().expect("a deadline");
                    self.now = deadline;
                    self.reader.handle_timeout(self.now);
                }
            }
        }
        panic!("operation did not finish");
    }

    fn power_on(&mut self) -> Result<PoweredOn, ReaderError> {
        self.power_on_slot(0)
    }

    fn power_on_slot(&mut self, slot: u8) -> Result<PoweredOn, ReaderError> {
        match self.run(PowerOn {
            slot,
            protocol: None,
        }) {
            Outcome::Done(r) => r,
            Outcome::Usb(e) => panic!("usb failure {e}"),
        }
    }

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        self.transmit_slot(0, apdu)
    }

    fn transmit_slot(&mut self, slot: u8, apdu: &[u8]) -> Result<Vec<u8>, ReaderError> {
        let command = Command::parse(apdu.to_vec()).map_err(ReaderError::Apdu)?;
        match self.run(Transmit { slot, command }) {
            Outcome::Done(r) => r,
            Outcome::Usb(e) => panic!("usb failure {e}"),
        }
    }

    fn ok(&mut self, apdu: &str) -> Vec<u8> {
        self.transmit(&h(apdu)).expect("apdu")
    }
}

/// The four set-ups of the acceptance: (name, profile, ATR).
fn setups() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    vec![
        ("tpdu t=0", "GemPCTwin", T0_ATR.to_vec()),
        ("tpdu t=1", "GemPCTwin.txt", SEED_ATR.to_vec()),
        ("short apdu", "ACS_ACR3901U_ICC_Reader", SEED_ATR.to_vec()),
        ("extended apdu", "Ask_CPL108", SEED_ATR.to_vec()),
    ]
}

fn bench(profile: &str, atr: &[u8]) -> Bench {
    Bench::new(profile, Some(CardConfig::seed().with_atr(atr.to_vec())))
}

/// The seed session: VERIFY before SELECT, SELECT, VERIFY "648219", 2 × GET CHALLENGE 45.
fn seed_session(b: &mut Bench) {
    assert_eq!(b.ok("00 20 00 81"), h("6E 00"));
    assert_eq!(b.ok(SELECT), h(FCP));
    assert_eq!(b.ok(VERIFY_648219), h("67 00"));
    let one = b.ok("00 84 00 00 45");
    let two = b.ok("00 84 00 00 45");
    assert_eq!((one.len(), &one[69..]), (71, &[0x90, 0x00][..]));
    assert_eq!(two.len(), 71);
    assert_ne!(one, two);
}

#[test]
fn seed_session_in_every_setup() {
    for (name, profile, atr) in setups() {
        let mut b = bench(profile, &atr);
        let Ok(PoweredOn { atr: got, protocol }) = b.power_on() else {
            panic!("{name}: power on");
        };
        assert_eq!(got, atr, "{name}");
        let expected_protocol = u8::from(atr == SEED_ATR.to_vec());
        assert_eq!(protocol, expected_protocol, "{name}");
        seed_session(&mut b);
        // The card executed exactly the seed's APDUs (plus GET RESPONSEs under T=0).
        let log = b.sim.card_log(0);
        let sent: Vec<&Vec<u8>> = log.iter().filter(|c| c.get(1) != Some(&0xC0)).collect();
        assert_eq!(sent.len(), 5, "{name}: {log:02X?}");
        assert_eq!(sent[2], &h("00 20 00 81 06 2A 2A 2A 2A 2A 2A"), "{name}");
        // A small file.
        assert_eq!(b.ok("00 A4 00 0C 02 2F 02"), h("90 00"), "{name}");
        assert_eq!(b.ok("00 B0 00 00 04"), h("63 61 72 64 90 00"), "{name}");
        assert_eq!(b.ok("00 D6 81 00 02 AB CD"), h("90 00"), "{name}");
        assert_eq!(b.ok("00 B0 81 00 02"), h("AB CD 90 00"), "{name}");
        // The long answer: 256 bytes and 61 2C whatever carries it (T=0: GET RESPONSE
        // gathering stops at Ne; T=1: chained I-blocks; APDU levels: one message).
        let long = b.ok("00 CA 01 01 00");
        assert_eq!(
            (long.len(), &long[256..]),
            (258, &[0x61, 0x2C][..]),
            "{name}"
        );
        let rest = b.ok("00 C0 00 00 2C");
        assert_eq!(rest.len(), 46, "{name}");
        // The slow command: T=1 on TPDU answers S(WTX), others CCID time extensions.
        let before = b.reader.stats().time_extensions;
        let slow = b.ok("00 CA 01 02 10");
        assert_eq!(slow.len(), 18, "{name}");
        let extensions = b.reader.stats().time_extensions - before;
        if name == "tpdu t=1" {
            assert_eq!(extensions, 0, "{name}");
        } else {
            assert_eq!(extensions, 2, "{name}");
        }
        // Extended APDUs: T=1 on TPDU and the extended level carry them.
        let big = b.transmit(&h("00 84 00 00 00 01 2C"));
        match name {
            "tpdu t=1" | "extended apdu" => {
                let big = big.expect("extended get challenge");
                assert_eq!((big.len(), &big[300..]), (302, &[0x90, 0x00][..]), "{name}");
            }
            _ => assert!(matches!(big, Err(ReaderError::TooLong { .. })), "{name}"),
        }
    }
}

#[test]
fn t1_details_ifs_and_chaining() {
    let mut b = bench("GemPCTwin", &SEED_ATR);
    b.power_on().unwrap();
    // PPS (TA1 18), SetParameters T=1 and S(IFS) went out before the ATR was reported.
    let types: Vec<u8> = b.sim.command_log().iter().map(|h| h[0]).collect();
    assert_eq!(types, [0x62, 0x6F, 0x61, 0x6F]);
    // An extended command chained in I-blocks, answered by a chained response.
    let mut cmd = h("00 D6 81 00 00 01 00");
    cmd.extend(vec![0x5A; 256]);
    assert_eq!(b.transmit(&cmd).unwrap(), h("67 00"));
    let whole = b.ok("00 CA 01 01 00 00 00");
    assert_eq!(whole.len(), 302);
}

#[test]
fn extended_level_chains_commands_and_responses() {
    let mut b = bench("Ask_CPL108", &SEED_ATR);
    b.power_on().unwrap();
    let before = b.sim.stats().commands;
    let big = b.ok("00 84 00 00 00 04 00");
    assert_eq!(big.len(), 1026);
    // 1026 bytes in parts of 261: 4 XfrBlocks (the first and 3 "continue").
    assert_eq!(b.sim.stats().commands - before, 4);
    let mut cmd = h("00 D6 81 00 00 01 2C");
    cmd.extend(vec![0x5A; 300]);
    let before = b.sim.stats().commands;
    assert_eq!(b.transmit(&cmd).unwrap(), h("67 00"));
    assert_eq!(b.sim.stats().commands - before, 2);
}

#[test]
fn dual_protocol_card_prefers_what_is_asked() {
    let mut b = bench("GemPCTwin", &T0_T1_ATR);
    let r = b.run(PowerOn {
        slot: 0,
        protocol: Some(1),
    });
    assert!(matches!(
        r,
        Outcome::Done(Ok(PoweredOn { protocol: 1, .. }))
    ));
    seed_session(&mut b);
    let Ok(PoweredOn { protocol: 0, .. }) = b.power_on() else {
        panic!("t=0 by default");
    };
    seed_session(&mut b);
}

#[test]
fn pin_card_flow() {
    for (name, profile, atr) in setups() {
        let mut b = Bench::new(profile, Some(CardConfig::pin().with_atr(atr)));
        b.power_on().unwrap();
        assert_eq!(b.ok("00 20 00 81"), h("63 C3"), "{name}");
        assert_eq!(b.ok("00 20 00 81 06 31 32 33 34 35 36"), h("90 00"));
        assert_eq!(b.ok("00 20 00 81"), h("90 00"));
        assert_eq!(b.ok("00 20 00 81 06 30 30 30 30 30 30"), h("63 C2"));
        assert_eq!(b.ok("00 20 00 81 06 30 30 30 30 30 30"), h("63 C1"));
        assert_eq!(b.ok("00 20 00 81 06 30 30 30 30 30 30"), h("69 83"));
        assert_eq!(b.ok("00 20 00 81 06 31 32 33 34 35 36"), h("69 83"));
    }
}

/// Every fault, in every set-up.
#[test]
fn faults_in_every_setup() {
    for (name, profile, atr) in setups() {
        let fresh = || {
            let mut b = bench(profile, &atr);
            b.power_on().expect("power on");
            b
        };

        // Remove and insert the card: interrupt notifications, then a new power on.
        let mut b = fresh();
        b.sim.remove_card(0).unwrap();
        assert_eq!(
            b.transmit(&h(SELECT)),
            Err(ReaderError::CardAbsent),
            "{name}"
        );
        assert!(b.events.contains(&ReaderEvent::CardRemoved(0)), "{name}");
        b.sim
            .insert_card(0, CardConfig::seed().with_atr(atr.clone()))
            .unwrap();
        b.poll_interrupt();
        assert!(b.events.contains(&ReaderEvent::CardInserted(0)), "{name}");
        assert_eq!(
            b.transmit(&h(SELECT)),
            Err(ReaderError::NotPowered),
            "{name}"
        );
        b.power_on().unwrap();
        assert_eq!(b.ok(SELECT), h(FCP), "{name}");

        // Disconnect: the next transfer fails with NotFoundError.
        let mut b = fresh();
        b.sim.disconnect();
        let r = b.run(Transmit {
            slot: 0,
            command: cmd(h(SELECT)),
        });
        let Outcome::Usb(e) = r else {
            panic!("{name}: {r:?}")
        };
        assert_eq!(e.name(), Some("NotFoundError"), "{name}");

        // Stalls on either bulk endpoint: cleared by the driver, the exchange goes on.
        for fault in [Fault::StallIn(true), Fault::StallOut(true)] {
            let mut b = fresh();
            b.sim.set_fault(fault);
            seed_session(&mut b);
            assert_eq!(b.stalls, 1, "{name} {fault:?}");
        }

        // N time extensions before every answer.
        let mut b = fresh();
        b.sim.set_fault(Fault::TimeExtensions(3));
        let before = b.reader.stats().time_extensions;
        assert_eq!(b.ok(SELECT), h(FCP), "{name}");
        let per_exchange = b.reader.stats().time_extensions - before;
        assert!(per_exchange >= 3 && per_exchange % 3 == 0, "{name}");

        // Stale and duplicate answers: dropped by bSeq.
        for fault in [Fault::StaleResponse(true), Fault::DuplicateResponse(true)] {
            let mut b = fresh();
            b.sim.set_fault(fault);
            seed_session(&mut b);
            assert!(b.reader.stats().stale_dropped >= 4, "{name} {fault:?}");
        }

        // Split transfers: one byte per transferIn.
        let mut b = fresh();
        b.sim.set_fault(Fault::SplitTransfers(true));
        let before = b.sim.stats().transfers_in;
        assert_eq!(b.ok(SELECT), h(FCP), "{name}");
        assert!(b.sim.stats().transfers_in - before >= 21, "{name}");

        // Coalesced transfers: time extension, stale answer and answer in one transferIn.
        let mut b = fresh();
        b.sim.set_fault(Fault::CoalescedTransfers(true));
        b.sim.set_fault(Fault::TimeExtensions(1));
        b.sim.set_fault(Fault::StaleResponse(true));
        let before = b.sim.stats().transfers_in;
        assert_eq!(b.ok("00 84 00 00 08").len(), 10, "{name}");
        assert_eq!(b.sim.stats().transfers_in - before, 1, "{name}");

        // A mute card.
        let mut b = fresh();
        b.sim.set_fault(Fault::MuteCard(true));
        let r = b.transmit(&h(SELECT));
        match name {
            "tpdu t=1" => assert!(matches!(r, Err(ReaderError::T1(_))), "{name}: {r:?}"),
            _ => assert_eq!(r, Err(ReaderError::CardMute), "{name}"),
        }
        assert_eq!(b.power_on(), Err(ReaderError::CardMute), "{name}");
        b.sim.clear_faults();
        b.power_on().unwrap();
        seed_session(&mut b);

        // The reader hangs: timeout; when it recovers its late answer is dropped as stale.
        let mut b = fresh();
        b.sim.set_fault(Fault::ReaderStall(true));
        assert_eq!(b.transmit(&h(SELECT)), Err(ReaderError::Timeout), "{name}");
        b.sim.set_fault(Fault::ReaderStall(false));
        assert!(b.sim.bulk_in_ready(), "{name}");
        let r = b.run(Status { slot: 0 });
        assert!(matches!(r, Outcome::Done(Ok(_))), "{name}");
        assert!(b.reader.stats().stale_dropped >= 1, "{name}");

        // Refusals while setting up.
        for (fault, expected) in [
            (Fault::ProtectedClass(true), "SecurityError"),
            (Fault::Busy(true), "NetworkError"),
        ] {
            let mut sim = SimulatedReader::new(SimConfig {
                profile: profiles::load(profile).unwrap(),
                ..SimConfig::default()
            })
            .unwrap();
            sim.set_fault(fault);
            sim.open().unwrap();
            sim.select_configuration(1).unwrap();
            let e = sim.claim_interface(0).unwrap_err();
            assert_eq!(e.name(), Some(expected), "{name} {fault:?}");
        }
        let mut sim = SimulatedReader::new(SimConfig::default()).unwrap();
        sim.set_fault(Fault::AccessDenied(true));
        assert_eq!(
            sim.open().unwrap_err().to_string(),
            "SecurityError: Access denied."
        );
    }
}

#[test]
fn empty_slot_and_late_insertion() {
    let mut b = Bench::new("default", None);
    assert_eq!(b.power_on(), Err(ReaderError::CardAbsent));
    b.sim.insert_card(0, CardConfig::seed()).unwrap();
    b.poll_interrupt();
    assert!(b.events.contains(&ReaderEvent::CardInserted(0)));
    b.power_on().unwrap();
    seed_session(&mut b);
}

#[test]
fn reader_without_interrupt_endpoint_is_polled() {
    // The default dump without its interrupt endpoint (72 interfaces of libccid's corpus
    // have none, reference/webusb-ccid.md §4).
    let text = profiles::DEFAULT_DUMP
        .replace("bNumEndpoints: 3", "bNumEndpoints: 2")
        .replace("bulk-IN, bulk-OUT and Interrupt-IN", "bulk-IN and bulk-OUT");
    let sim = SimulatedReader::new(SimConfig {
        profile: Profile::dump("no-interrupt", text),
        ..SimConfig::default()
    })
    .unwrap();
    let mut b = Bench::with(sim);
    let r = b.run(Status { slot: 0 });
    assert_eq!(
        r,
        Outcome::Done(Ok(card_relay::proto::ccid::IccStatus::PresentInactive))
    );
    b.sim.remove_card(0).unwrap();
    assert_eq!(b.sim.take_interrupt(), None);
    // The reader learns of the removal from the slot status alone; an empty slot is a
    // status like any other, not an error.
    let r = b.run(Status { slot: 0 });
    assert_eq!(
        r,
        Outcome::Done(Ok(card_relay::proto::ccid::IccStatus::Absent))
    );
    assert!(b.events.contains(&ReaderEvent::CardRemoved(0)));
}

#[test]
fn multi_slot_reader() {
    let mut b = bench("AF_Care_Two_AFC2", &SEED_ATR);
    assert_eq!(b.sim.slot_count(), 2);
    b.sim.insert_card(1, CardConfig::pin()).unwrap();
    b.poll_interrupt();
    assert!(b.events.contains(&ReaderEvent::CardInserted(1)));
    b.power_on_slot(1).unwrap();
    assert_eq!(
        b.transmit_slot(1, &h("00 20 00 81 06 31 32 33 34 35 36"))
            .unwrap(),
        h("90 00")
    );
    b.power_on().unwrap();
    seed_session(&mut b);
    assert_eq!(b.sim.card_log(1).len(), 1);
}

#[test]
fn busy_slot_and_abort_after_a_stall() {
    let mut sim = SimulatedReader::new(SimConfig::default()).unwrap();
    sim.open().unwrap();
    sim.select_configuration(1).unwrap();
    sim.claim_interface(0).unwrap();
    sim.set_fault(Fault::ReaderStall(true));
    // Two commands for slot 0 while the reader hangs, then an abort of the first.
    sim.transfer_out(2, &h("62 00 00 00 00 00 01 00 00 00"))
        .unwrap();
    sim.transfer_out(2, &h("65 00 00 00 00 00 02 00 00 00"))
        .unwrap();
    assert_eq!(sim.transfer_in(1, 64), InTransfer::Pending);
    sim.transfer_out(2, &h("72 00 00 00 00 00 01 00 00 00"))
        .unwrap();
    sim.clear_faults();
    let mut answers = Vec::new();
    while let InTransfer::Ready(Ok(data)) = sim.transfer_in(1, 64) {
        answers.push(data);
    }
    // CCID §6.2.6: CMD_SLOT_BUSY (E0) for the second, CMD_ABORTED (FF) for the first,
    // then the abort's slot status.
    assert_eq!(
        answers,
        [
            h("81 00 00 00 00 00 02 41 E0 00"),
            h("80 00 00 00 00 00 01 41 FF 00"),
            h("81 00 00 00 00 00 01 01 00 00"),
        ]
    );
}

#[test]
fn pin_pad_secure() {
    // libccid readers/SPR532.txt: bPINSupport 0x03.
    let mut b = Bench::new("SPR532", Some(CardConfig::pin().with_atr(T0_ATR.to_vec())));
    b.power_on().unwrap();
    // CCID §6.1.11.4: bPINOperation 0, bTimeOut 0, bmFormatString 82 (bytes, ASCII),
    // bmPINBlockString 06, bmPINLengthFormat 00, wPINMaxExtraDigit 0606,
    // bEntryValidationCondition 02, bNumberMessage 01, wLangId 0409, bMsgIndex 0,
    // bTeoPrologue 00 00 00, abPINApdu VERIFY with a 6-byte block.
    let structure =
        h("00 00 82 06 00 06 06 02 01 09 04 00 00 00 00 00 20 00 81 06 FF FF FF FF FF FF");
    let secure = |b: &mut Bench, seq: u8| {
        let msg = PcToRdr::Secure(PcToRdrSecure {
            slot: 0,
            seq,
            bwi: 0,
            level_parameter: 0,
            data: structure.clone(),
        });
        b.sim.transfer_out(2, &msg.encode()).unwrap();
        let InTransfer::Ready(Ok(data)) = b.sim.transfer_in(1, 64) else {
            panic!("answer");
        };
        let RdrToPc::DataBlock(block) = RdrToPc::decode(&data).unwrap() else {
            panic!("data block");
        };
        assert_eq!(block.seq, seq);
        block
    };
    let answer = |b: &RdrToPcDataBlock| (b.state.error(), b.data.clone());
    assert_eq!(
        answer(&secure(&mut b, 0x80)),
        (Some(SlotError::PinTimeout), vec![])
    );
    b.sim.set_pin_entry(PinEntry::Cancel);
    assert_eq!(
        answer(&secure(&mut b, 0x81)),
        (Some(SlotError::PinCancelled), vec![])
    );
    b.sim.set_pin_entry(PinEntry::Digits("123455".into()));
    assert_eq!(answer(&secure(&mut b, 0x82)), (None, h("63 C2")));
    b.sim.set_pin_entry(PinEntry::Digits("123456".into()));
    assert_eq!(answer(&secure(&mut b, 0x83)), (None, h("90 00")));
    assert_eq!(
        b.sim.card_log(0).last().unwrap(),
        &h("00 20 00 81 06 2A 2A 2A 2A 2A 2A")
    );
    // A reader without PIN pad refuses Secure.
    let mut plain = Bench::new("GemPCTwin", Some(CardConfig::pin()));
    plain.power_on().unwrap();
    assert_eq!(
        answer(&secure(&mut plain, 1)).0,
        Some(SlotError::CommandNotSupported)
    );
}

/// Power on, SELECT and GET CHALLENGE through every dump libccid has.
/// PIN verification on the PIN pad (CCID §6.1.11 PC_to_RDR_Secure) at every exchange
/// level: the reader collects the PIN, the host sees only the card's answer, and the card
/// protocol stays in step (at TPDU level with T=1 the host's engine gave bTeoPrologue and
/// consumed the card's block).
#[test]
fn pin_pad_verify_at_every_level() {
    let setups: [(&str, &[u8], ExchangeLevel, u8); 4] = [
        // libccid readers/GemPCPinpad.txt: TPDU, bPINSupport 0x03.
        ("GemPCPinpad", &SEED_ATR, ExchangeLevel::Tpdu, 1),
        ("SPR532", &T0_ATR, ExchangeLevel::Tpdu, 0),
        ("ACS_APG8201_v2", &SEED_ATR, ExchangeLevel::ShortApdu, 1),
        (
            "Aladdin_R.D._JCR-770",
            &SEED_ATR,
            ExchangeLevel::ExtendedApdu,
            1,
        ),
    ];
    let fixed = PinVerify {
        min_digits: 6,
        max_digits: 6,
        padding: Some(0xFF),
        ..PinVerify::default()
    };
    for (profile, atr, level, protocol) in setups {
        let mut b = Bench::new(profile, Some(CardConfig::pin().with_atr(atr.to_vec())));
        assert_eq!(b.reader.exchange_level(), level, "{profile}");
        b.power_on().unwrap();
        assert_eq!(b.reader.protocol(0), Some(protocol), "{profile}");
        let verify = |b: &mut Bench, entry: PinEntry, pin: PinVerify| {
            b.sim.set_pin_entry(entry);
            match b.run(VerifyPin { slot: 0, pin }) {
                Outcome::Done(r) => r,
                Outcome::Usb(e) => panic!("usb failure {e}"),
            }
        };
        let default = PinVerify::default();
        assert_eq!(
            verify(&mut b, PinEntry::Timeout, default),
            Err(ReaderError::PinTimeout),
            "{profile}"
        );
        assert_eq!(
            verify(&mut b, PinEntry::Cancel, default),
            Err(ReaderError::PinCancelled)
        );
        assert_eq!(b.ok("00 20 00 81"), h("63 C3"), "{profile}");
        let wrong = PinEntry::Digits("123455".into());
        assert_eq!(verify(&mut b, wrong, default), Ok(h("63 C2")), "{profile}");
        let right = PinEntry::Digits("123456".into());
        assert_eq!(
            verify(&mut b, right.clone(), fixed),
            Ok(h("90 00")),
            "{profile}"
        );
        assert_eq!(verify(&mut b, right, default), Ok(h("90 00")), "{profile}");
        // The next APDU goes in one command: no resynchronisation was needed.
        let before = b.reader.stats().commands;
        assert_eq!(b.ok("00 20 00 81"), h("90 00"), "{profile}");
        assert_eq!(b.reader.stats().commands, before + 1, "{profile}");
        // The card saw the PINs (its log masks them), the host never did.
        let log = b.sim.card_log(0);
        let verifies: Vec<&Vec<u8>> = log.iter().filter(|c| c.len() > 5).collect();
        assert_eq!(
            verifies,
            [
                &h("00 20 00 81 06 2A 2A 2A 2A 2A 2A"),
                &h("00 20 00 81 06 2A 2A 2A 2A 2A 2A"),
                &h("00 20 00 81 06 2A 2A 2A 2A 2A 2A"),
            ],
            "{profile}"
        );
    }
    // A reader without a PIN pad is refused before anything is sent.
    let mut plain = Bench::new("GemPCTwin", Some(CardConfig::pin()));
    plain.power_on().unwrap();
    let before = plain.reader.stats().commands;
    assert_eq!(
        plain.run(VerifyPin {
            slot: 0,
            pin: PinVerify::default()
        }),
        Outcome::Done(Err(ReaderError::Unsupported("reader has no pin pad")))
    );
    assert_eq!(plain.reader.stats().commands, before);
}

#[test]
fn every_real_reader() {
    let started = Instant::now();
    let dumps = profiles::load_all().expect("dumps");
    assert_eq!(dumps.len(), 691);
    let mut ran = 0;
    let mut skipped: Vec<(String, &str)> = Vec::new();
    for (name, text) in &dumps {
        let mut sim = SimulatedReader::new(SimConfig {
            profile: Profile::dump(name, text.clone()),
            card: None,
            seed: 3,
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let Some(ccid) = sim.ccid_interface().cloned() else {
            skipped.push((name.clone(), "no ccid class descriptor"));
            continue;
        };
        // A card whose ATR offers what the reader supports.
        let d = ccid.descriptor;
        let atr = match (d.supports_t0(), d.supports_t1()) {
            (true, true) => T0_T1_ATR.to_vec(),
            (true, false) => T0_ATR.to_vec(),
            (false, true) => SEED_ATR.to_vec(),
            (false, false) => {
                skipped.push((name.clone(), "neither t=0 nor t=1"));
                continue;
            }
        };
        sim.insert_card(0, CardConfig::seed().with_atr(atr))
            .unwrap();
        if ccid.bulk_in.is_none() || ccid.bulk_out.is_none() {
            skipped.push((name.clone(), "no bulk endpoints (iccd)"));
            continue;
        }
        if ccid.descriptor.exchange_level() == ExchangeLevel::Character {
            skipped.push((name.clone(), "character level"));
            continue;
        }
        if Reader::new(ccid.descriptor).is_err() {
            skipped.push((name.clone(), "refused by the reader state machine"));
            continue;
        }
        let mut b = Bench::with(sim);
        let powered = b.power_on();
        assert!(
            matches!(powered, Ok(PoweredOn { .. })),
            "{name}: {powered:?}"
        );
        assert_eq!(b.transmit(&h(SELECT)), Ok(h(FCP)), "{name}");
        let challenge = b.transmit(&h("00 84 00 00 08")).unwrap();
        assert_eq!(
            (challenge.len(), &challenge[8..]),
            (10, &[0x90, 0x00][..]),
            "{name}"
        );
        ran += 1;
    }
    // What cannot run through the bulk-transfer reader state machine: 11 ICCD tokens
    // (control transfers only), 3 character-level readers and MySmartPad (dwProtocols 0).
    let count = |reason: &str| skipped.iter().filter(|(_, r)| *r == reason).count();
    assert_eq!(count("no bulk endpoints (iccd)"), 11, "{skipped:?}");
    assert_eq!(count("character level"), 3, "{skipped:?}");
    assert_eq!(count("neither t=0 nor t=1"), 1, "{skipped:?}");
    assert_eq!(ran, 691 - 15, "{skipped:?}");
    eprintln!(
        "{ran} readers ran, {} skipped, in {:?}: {skipped:?}",
        skipped.len(),
        started.elapsed()
    );
}

/// A clock that never moves: the simulator answers at once, so no timer has to fire.
struct StillClock;

impl Clock for StillClock {
    fn now(&self) -> u64 {
        0
    }

    fn sleep(&self, _ms: u64) -> LocalBoxFuture<()> {
        Box::pin(std::future::pending())
    }
}

/// Polls a future to its end; the simulator never leaves it waiting for long.
fn block_on<T>(f: impl Future<Output = T>) -> T {
    let mut f = Box::pin(f);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
    panic!("future did not finish");
}

/// The async driver over the simulator through `UsbTransport`: the seed session.
#[test]
fn async_driver_over_the_transport() {
    for (name, profile, atr) in setups() {
        let sim = SimulatedReader::new(SimConfig {
            profile: profiles::load(profile).unwrap(),
            card: Some(CardConfig::seed().with_atr(atr)),
            seed: 9,
        })
        .unwrap();
        let usb = SimTransport::new(sim);
        let driver = block_on(CcidDriver::open(usb.clone(), Rc::new(StillClock)))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let on = block_on(driver.run(
            PowerOn {
                slot: 0,
                protocol: None,
            },
            None,
        ));
        assert!(matches!(on, Ok(PoweredOn { .. })), "{name}: {on:?}");
        let transmit = |apdu: &str| {
            block_on(driver.run(
                Transmit {
                    slot: 0,
                    command: cmd(h(apdu)),
                },
                None,
            ))
        };
        assert_eq!(transmit("00 20 00 81"), Ok(h("6E 00")));
        assert_eq!(transmit(SELECT), Ok(h(FCP)), "{name}");
        usb.with(|s| s.set_fault(Fault::TimeExtensions(2)));
        let Ok(r) = transmit("00 84 00 00 45") else {
            panic!("{name}: get challenge");
        };
        assert_eq!(r.len(), 71, "{name}");
        let log = usb.with(|s| s.card_log(0));
        let apdus = log.iter().filter(|c| c.get(1) != Some(&0xC0)).count();
        assert_eq!(apdus, 3, "{name}: {log:02X?}");
    }
}

/// Every one of the 691 dumps through the async driver, as a page would use it: open (find
/// and claim the CCID interface), power on, SELECT, and a 255-byte response. Each profile
/// ends in exactly one of: success; a clear error naming dwMaxCCIDMessageLength when one
/// message cannot carry the response; `unsupported-reader` for what cannot work (no CCID
/// interface, ICCD, character level, no protocol). Prints the counts.
#[test]
fn every_real_reader_through_the_driver() {
    use card_relay::driver::ErrorCode;
    let dumps = profiles::load_all().expect("dumps");
    assert_eq!(dumps.len(), 691);
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    for (name, text) in &dumps {
        let mut sim = SimulatedReader::new(SimConfig {
            profile: Profile::dump(name, text.clone()),
            card: None,
            seed: 5,
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        // A card whose ATR offers what the reader supports.
        let atr = match sim.ccid_interface().map(|c| c.descriptor) {
            Some(d) if d.supports_t0() && d.supports_t1() => T0_T1_ATR.to_vec(),
            Some(d) if d.supports_t0() => T0_ATR.to_vec(),
            _ => SEED_ATR.to_vec(),
        };
        sim.insert_card(0, CardConfig::seed().with_atr(atr))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let outcome = match block_on(CcidDriver::open(
            SimTransport::new(sim),
            Rc::new(StillClock),
        )) {
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::UnsupportedReader, "{name}: {e}");
                format!("unsupported at open: {e}")
            }
            Ok(driver) => {
                let run = |apdu: &str| block_on(driver.transmit(0, cmd(h(apdu)), None));
                match block_on(driver.power_on(0, None)) {
                    Err(e) => {
                        assert_eq!(e.code(), ErrorCode::UnsupportedReader, "{name}: {e}");
                        format!("unsupported at power on: {e}")
                    }
                    Ok(_) => {
                        let select = run(SELECT);
                        assert_eq!(select, Ok(h(FCP)), "{name}");
                        let long = run("00 84 00 00 FF");
                        match long {
                            Ok(r) => {
                                assert_eq!(
                                    (r.len(), &r[255..]),
                                    (257, &[0x90, 0x00][..]),
                                    "{name}"
                                );
                                "255-byte response".to_owned()
                            }
                            Err(e) => {
                                assert_eq!(e.code(), ErrorCode::InvalidArgument, "{name}: {e}");
                                assert!(
                                    e.to_string().contains("dwMaxCCIDMessageLength"),
                                    "{name}: {e}"
                                );
                                "limit: response too long for dwMaxCCIDMessageLength".to_owned()
                            }
                        }
                    }
                }
            }
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    eprintln!("outcomes over {} dumps:", dumps.len());
    for (outcome, count) in &outcomes {
        eprintln!("  {count:4}  {outcome}");
    }
    assert_eq!(outcomes.values().sum::<usize>(), 691);
    assert!(
        outcomes.get("255-byte response").copied().unwrap_or(0) >= 600,
        "{outcomes:?}"
    );
}

/// T=1 with a CRC epilogue in both forms found in the field (libccid's and CRC-16/X-25),
/// through the whole stack on a TPDU reader: power-on with PPS, SetParameters and the
/// S(IFS) exchange, the seed session, chaining both ways, WTX and retransmission after a
/// corrupted or lost card block. The host starts with libccid's form and must recognise
/// an X-25 card from its first answer, during power-on.
#[test]
fn t1_crc_in_both_forms_through_the_whole_stack() {
    use card_relay::proto::t1::CrcForm;
    use card_relay::sim::card::SEED_CRC_ATR;
    use card_relay::sim::t1::Fault as T1Fault;

    let xfr_blocks = |b: &Bench| b.sim.command_log().iter().filter(|c| c[0] == 0x6F).count();
    for form in [CrcForm::Libccid, CrcForm::X25] {
        let card = CardConfig::seed().with_atr(SEED_CRC_ATR).with_crc(form);
        let mut b = Bench::new("GemPCTwin", Some(card));
        let Ok(PoweredOn { atr, protocol }) = b.power_on() else {
            panic!("{form:?}: power on");
        };
        assert_eq!((atr, protocol), (SEED_CRC_ATR.to_vec(), 1), "{form:?}");
        // The PPS request (an XfrBlock), then S(IFS request) once for a card of the
        // starting form; for the other form the card's R(EDC error) shows its form and the
        // request goes again in that form.
        let expected = if form == CrcForm::Libccid { 2 } else { 3 };
        assert_eq!(xfr_blocks(&b), expected, "{form:?}");
        seed_session(&mut b);
        // Chaining: an extended command in I-blocks and a 302-byte chained response.
        let mut cmd = h("00 D6 81 00 00 01 00");
        cmd.extend(vec![0x5A; 256]);
        assert_eq!(b.transmit(&cmd).unwrap(), h("67 00"), "{form:?}");
        assert_eq!(b.ok("00 CA 01 01 00 00 00").len(), 302, "{form:?}");
        // WTX: the slow command's S(WTX request)s are answered in the card's form.
        assert_eq!(b.ok("00 CA 01 02 10").len(), 18, "{form:?}");
        // Retransmission (rule 7.1): a corrupted card block costs one R-block; a lost host
        // block a timeout, an R-block, the card's R-block asking for it, and the I-block.
        for (fault, blocks) in [(T1Fault::CorruptReply, 2), (T1Fault::Mute, 3)] {
            let before = xfr_blocks(&b);
            b.sim.inject_t1_fault(0, 0, fault);
            assert_eq!(b.ok(SELECT), h(FCP), "{form:?} {fault:?}");
            assert_eq!(xfr_blocks(&b) - before, blocks, "{form:?} {fault:?}");
        }
        let log = b.sim.card_log(0);
        assert_eq!(
            log.iter().filter(|c| **c == h(SELECT)).count(),
            3,
            "{form:?}"
        );
    }
}
