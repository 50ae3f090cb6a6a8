//! Fuzz harnesses for card-relay: one function per fuzz target, each feeding arbitrary
//! bytes to a decoder or a state machine and checking that it never panics (and, where the
//! codec promises it, that what decodes also re-encodes to the same value).
//!
//! The same functions run twice: under libFuzzer (`fuzz/fuzz_targets/*.rs`, `cargo fuzz`)
//! and in the native `cargo test` (`tests/fuzz_regressions.rs` includes this file), which
//! replays every input kept under `tests/fuzz-regressions/<target>/`.
#![forbid(unsafe_code)]

use card_relay::pin::{Pin, PinCheck, PinError, PinFlow, PinStep};
use card_relay::proto::atr::Atr;
use card_relay::proto::ccid::{InterruptMessage, PcToRdr, RdrToPc, Reassembler};
use card_relay::proto::descriptor::{
    find_ccid_interfaces, parse_configuration, CcidClassDescriptor, DeviceDescriptor,
};
use card_relay::proto::json::Value;
use card_relay::proto::ram::{gp, openscdp};
use card_relay::proto::seram::{HandshakeCommand, HandshakeResponse, Order, Report};
use card_relay::proto::t1::{Block, CrcForm, Edc, T1Config, T1Event, T1};
use card_relay::proto::tlv::{Tlv, Tlvs};
use card_relay::reader::{Operation, PinVerify, Reader};
use card_relay::session::seram::{SeramAction, SeramConfig, SeramSession, TransportFailure};
use card_relay::session::{
    Action, CardCommand, CardResult, Dialect, HttpResponse, Session, SessionConfig,
};

/// A harness: runs one input, panicking on a failure.
pub type Harness = fn(&[u8]);

/// Every target: its name (the file under `fuzz/fuzz_targets/` and the directory under
/// `tests/fuzz-regressions/`) and its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("ccid", ccid),
    ("descriptor", descriptor),
    ("atr", atr),
    ("t1_block", t1_block),
    ("t1_engine", t1_engine),
    ("tlv", tlv),
    ("ram_openscdp", ram_openscdp),
    ("ram_gp", ram_gp),
    ("session", session),
    ("reader", reader),
    ("json", json),
    ("seram_session", seram_session),
    ("pin", pin),
];

/// Steps after which a state machine fed a finite input must have stopped asking for more.
const MAX_STEPS: usize = 100_000;

/// Reads structure out of the fuzzer's bytes; once they run out every read gives zeros or
/// an empty slice, so every input is a complete scenario.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A slice whose length is the next byte.
    fn short(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte());
        self.take(n)
    }

    /// A slice whose length is the next two bytes (little-endian).
    fn long(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }
}

/// CCID messages (CCID Rev 1.1 §6): both directions, the interrupt pipe, and the
/// reassembly of bulk-IN transfers split at arbitrary points.
pub fn ccid(data: &[u8]) {
    if let Ok(message) = PcToRdr::decode(data) {
        assert_eq!(PcToRdr::decode(&message.encode()).as_ref(), Ok(&message));
    }
    if let Ok(message) = RdrToPc::decode(data) {
        assert_eq!(RdrToPc::decode(&message.encode()).as_ref(), Ok(&message));
    }
    if let Ok(message) = InterruptMessage::decode(data) {
        assert_eq!(
            InterruptMessage::decode(&message.encode()).as_ref(),
            Ok(&message)
        );
    }
    let mut input = Input::new(data);
    let mut reassembler = Reassembler::new(u32::from(input.u16()) + 10);
    while !input.is_empty() {
        reassembler.push(input.short());
        match reassembler.pop() {
            Ok(Some(message)) => {
                let _ = RdrToPc::decode(&message);
            }
            Ok(None) => {}
            Err(_) => reassembler.reset(),
        }
    }
}

/// USB descriptors (USB 2.0 §9.6) and the CCID class descriptor (CCID Rev 1.1 §5.1), as
/// read by the standard GET_DESCRIPTOR requests.
pub fn descriptor(data: &[u8]) {
    let _ = DeviceDescriptor::decode(data);
    if let Ok(class) = CcidClassDescriptor::decode(data) {
        assert_eq!(CcidClassDescriptor::decode(&class.encode()), Ok(class));
        let _ = (class.exchange_level(), class.slot_count());
    }
    if let Ok(configuration) = parse_configuration(data) {
        let _ = configuration.num_interfaces();
        let _ = configuration.encode();
    }
    let _ = find_ccid_interfaces(data);
}

/// The ATR (ISO/IEC 7816-3 §8) and every value derived from it.
pub fn atr(data: &[u8]) {
    let Ok(atr) = Atr::parse(data) else {
        return;
    };
    let _ = (atr.protocols(), atr.default_protocol(), atr.fi_di());
    let _ = (atr.specific_mode(), atr.ifsc(), atr.edc(), atr.clock_stop());
    let _ = (atr.bwi(), atr.cwi(), atr.extra_guard_time());
    for f_khz in [1, 4000, u32::MAX] {
        let _ = atr.work_waiting_time_us(f_khz);
        let _ = atr.block_waiting_time_us(f_khz);
        let _ = atr.character_waiting_time_us(f_khz);
    }
}

/// One T=1 block (ISO/IEC 7816-3 §11.3) with either EDC; the first byte picks the EDC and
/// the INF limit.
pub fn t1_block(data: &[u8]) {
    let mut input = Input::new(data);
    let select = input.byte();
    // Bit 0 picks LRC or CRC, bit 1 the CRC form.
    let edc = match select & 3 {
        0 | 2 => Edc::Lrc,
        1 => Edc::Crc(CrcForm::X25),
        _ => Edc::Crc(CrcForm::Libccid),
    };
    let rest = input.take(usize::MAX);
    if let Ok(block) = Block::decode(rest, edc) {
        assert_eq!(Block::decode(&block.encode(edc), edc).as_ref(), Ok(&block));
        assert_eq!(block.encode(edc).len(), block.encoded_len(edc));
    }
    let _ = Block::decode_limited(rest, edc, usize::from(select >> 1));
}

/// The host T=1 engine (ISO/IEC 7816-3 §11.6) driven by a hostile card: blocks, timeouts,
/// new exchanges and abandons in any order.
pub fn t1_engine(data: &[u8]) {
    let mut input = Input::new(data);
    let mut t1 = T1::new(T1Config {
        ifsc: input.byte(),
        ifsd: input.byte(),
        edc: if input.byte() & 1 == 0 {
            Edc::Lrc
        } else {
            Edc::Crc(CrcForm::Libccid)
        },
        nad: 0,
        max_retries: input.byte() % 5,
    });
    let _ = t1.transmit(input.short());
    while !input.is_empty() {
        let op = input.byte();
        match op % 8 {
            0 => {
                let _ = t1.on_timeout();
            }
            1 => {
                let _ = t1.transmit(input.long());
            }
            2 => t1.abandon(),
            3 => {
                let _ = t1.ifs_request();
            }
            4 => t1.reset(),
            _ => {
                if let Ok(T1Event::Done(_) | T1Event::IfsdAccepted(_)) = t1.on_block(input.short())
                {
                    assert!(t1.is_idle(), "engine busy after completing");
                }
            }
        }
        assert!(
            (1..=254).contains(&t1.ifsc()),
            "ifsc {} out of range",
            t1.ifsc()
        );
    }
}

/// BER-TLV (ISO/IEC 8825-1 §8.1): definite and indefinite lengths, walked to every leaf.
pub fn tlv(data: &[u8]) {
    if let Ok((tlv, _rest)) = Tlv::parse(data) {
        walk(tlv);
    }
    let _ = Tlv::parse_exact(data);
    for item in Tlvs::new(data) {
        match item {
            Ok(tlv) => walk(tlv),
            Err(_) => break,
        }
    }
}

fn walk(tlv: Tlv<'_>) {
    let _ = (tlv.tag(), tlv.value(), tlv.raw(), tlv.depth());
    if tlv.tag().is_constructed() {
        for child in tlv.children() {
            match child {
                Ok(child) => walk(child),
                Err(_) => break,
            }
        }
    }
}

/// The OpenSCDP RAMoverHTTP scripts: the server's command script, the client's response
/// script and the initiation template.
pub fn ram_openscdp(data: &[u8]) {
    if let Ok(script) = openscdp::CommandScript::decode(data) {
        assert_eq!(
            openscdp::CommandScript::decode(&script.encode()).as_ref(),
            Ok(&script)
        );
    }
    if let Ok(script) = openscdp::ResponseScript::decode(data) {
        assert_eq!(
            openscdp::ResponseScript::decode(&script.encode()).as_ref(),
            Ok(&script)
        );
    }
    if let Ok(template) = openscdp::InitiationTemplate::decode(data) {
        assert_eq!(
            openscdp::InitiationTemplate::decode(&template.encode()).as_ref(),
            Ok(&template)
        );
    }
}

/// The GlobalPlatform Amd B RAM over HTTP scripts, definite and indefinite forms.
pub fn ram_gp(data: &[u8]) {
    if let Ok(script) = gp::CommandScript::decode(data) {
        assert_eq!(
            gp::CommandScript::decode(&script.encode()).as_ref(),
            Ok(&script)
        );
    }
    if let Ok(script) = gp::ResponseScript::decode(data) {
        assert_eq!(
            gp::ResponseScript::decode(&script.encode()).as_ref(),
            Ok(&script)
        );
    }
}

/// The RAMOverHTTP session state machine against a hostile server and a hostile card: every
/// HTTP answer (status, headers, body) and every card result comes from the input. When the
/// input runs out the server answers 204 and the card fails, so the session must end.
pub fn session(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let mut session = Session::new(SessionConfig {
        dialect: if flags & 1 == 0 {
            Dialect::OpenScdp
        } else {
            Dialect::GlobalPlatform
        },
        url: "https://server.example/rt/app".into(),
        atr: vec![0x3B, 0x00],
        max_capdu: None,
        max_rapdu: None,
        agent_id: None,
    });
    let cancel_at = usize::from(input.byte());
    for step in 0..MAX_STEPS {
        if flags & 2 != 0 && step == cancel_at {
            let _ = session.cancel();
        }
        match session.poll().expect("poll in a state that allows it") {
            Action::Post(_) => {
                let response = http_response(&mut input);
                session
                    .on_http_response(response)
                    .expect("answer to a post");
            }
            Action::Card(command) => {
                let result = card_result(&mut input, &command);
                session.on_card_response(result).expect("fitting result");
            }
            Action::Notify(_) => {}
            Action::Done(_) | Action::Failed(_) => {
                assert!(session.is_finished());
                assert!(session.poll().is_err(), "poll after the end");
                return;
            }
        }
    }
    panic!("session still running after {MAX_STEPS} steps");
}

fn http_response(input: &mut Input<'_>) -> HttpResponse {
    if input.is_empty() {
        return HttpResponse {
            status: 204,
            ..HttpResponse::default()
        };
    }
    let kind = input.byte();
    let status = match kind % 8 {
        0..=4 => 200,
        5 => 204,
        6 => 500,
        _ => input.u16(),
    };
    let mut headers = Vec::new();
    if kind & 0x10 != 0 {
        let uri = String::from_utf8_lossy(input.short()).into_owned();
        headers.push(("X-Admin-Next-URI".to_owned(), uri));
    }
    if kind & 0x20 != 0 {
        let value = String::from_utf8_lossy(input.short()).into_owned();
        headers.push(("X-Admin-Protocol".to_owned(), value));
    }
    HttpResponse {
        status,
        headers,
        body: input.long().to_vec(),
    }
}

fn card_result(input: &mut Input<'_>, command: &CardCommand) -> CardResult {
    if input.is_empty() {
        return CardResult::Error("card gone".into());
    }
    let kind = input.byte();
    if kind % 8 == 7 {
        return CardResult::Error(String::from_utf8_lossy(input.short()).into_owned());
    }
    let bytes = input.short().to_vec();
    match command {
        CardCommand::Apdu(_) => CardResult::Response(bytes),
        CardCommand::Reset => CardResult::Atr(bytes),
    }
}

/// The CCID reader state machine against a hostile reader: the class descriptor is the
/// first 54 input bytes, then every bulk-IN message, interrupt and timeout comes from the
/// input (time extensions, stale sequence numbers, wrong slots, truncated answers).
pub fn reader(data: &[u8]) {
    let mut input = Input::new(data);
    let Ok(descriptor) = CcidClassDescriptor::decode(input.take(54)) else {
        return;
    };
    let Ok(mut reader) = Reader::new(descriptor) else {
        return;
    };
    let mut now = 0;
    let mut operations = 0u32;
    for _ in 0..MAX_STEPS {
        while reader.poll_event().is_some() {}
        if !reader.is_busy() {
            if input.is_empty() {
                return;
            }
            let op = match operations % 4 {
                0 => Operation::PowerOn {
                    slot: input.byte() % 2,
                    protocol: None,
                },
                1 => Operation::Transmit {
                    slot: 0,
                    apdu: input.short().to_vec(),
                },
                2 => Operation::Status { slot: 0 },
                _ => Operation::PowerOff { slot: 0 },
            };
            operations += 1;
            let _ = reader.start(op, now);
            continue;
        }
        while let Some(out) = reader.poll_transmit() {
            PcToRdr::decode(&out).expect("the reader sends valid commands");
        }
        if input.is_empty() {
            match reader.poll_timeout() {
                Some(deadline) => {
                    now = now.max(deadline);
                    reader.handle_timeout(now);
                }
                None => reader.abort(),
            }
            continue;
        }
        match input.byte() % 4 {
            0 => {
                let _ = reader.handle_interrupt(input.short());
            }
            1 => {
                now = now.saturating_add(u64::from(input.u16()));
                reader.handle_timeout(now);
            }
            _ => reader.handle_message(input.long(), now),
        }
    }
    panic!("reader still busy after {MAX_STEPS} steps");
}

/// The JSON reader and the SERAM message decoders: no panic, and what parses re-encodes
/// to text that parses to the same value.
pub fn json(data: &[u8]) {
    if let Ok(value) = Value::parse(data) {
        let text = value.encode();
        assert_eq!(Value::parse(text.as_bytes()).as_ref(), Ok(&value));
    }
    if let Ok(order) = Order::decode(data) {
        assert_eq!(
            Order::decode(order.encode().as_bytes()).as_ref(),
            Ok(&order)
        );
    }
    if let Ok(report) = Report::decode(data) {
        assert_eq!(
            Report::decode(report.encode().as_bytes()).as_ref(),
            Ok(&report)
        );
    }
    let _ = HandshakeResponse::decode(data);
    let _ = HandshakeCommand::decode(data);
}

/// The SERAM session state machine against a hostile Remote Agent and card: every HTTP
/// answer (or transport failure, with the time it took) and card result comes from the
/// input. When the input runs out the agent answers Stop, so the session must end.
pub fn seram_session(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let mut session = SeramSession::new(SeramConfig::new(
        "https://ra.example/seram",
        "id",
        &[0x3B, 0x00],
    ));
    let cancel_at = usize::from(input.byte());
    let mut now = 0u64;
    for step in 0..MAX_STEPS {
        if flags & 2 != 0 && step == cancel_at {
            let _ = session.cancel();
        }
        match session.poll(now).expect("poll in a state that allows it") {
            SeramAction::Post(exchange) => {
                assert!(exchange.timeout_ms > 0);
                if input.is_empty() {
                    let stop = br#"{"ramCommands":[{"ramCommandType":"stopCommand"}]}"#;
                    let response = HttpResponse {
                        status: 200,
                        headers: Vec::new(),
                        body: stop.to_vec(),
                    };
                    session.on_http_response(response, now).expect("answer");
                    continue;
                }
                let kind = input.byte();
                now += u64::from(input.u16()) * 16;
                let fed = match kind % 8 {
                    6 => session.on_http_failure(TransportFailure::Timeout, now),
                    7 => session.on_http_failure(TransportFailure::Network("x".into()), now),
                    _ => session.on_http_response(http_response(&mut input), now),
                };
                fed.expect("answer to a post");
            }
            SeramAction::Wait { until_ms } => {
                assert!(until_ms > now, "a wait moves time forward");
                now = until_ms;
            }
            SeramAction::Card(command) => {
                let result = card_result(&mut input, &command);
                session.on_card_response(result).expect("fitting result");
            }
            SeramAction::Notify(_) => {}
            SeramAction::Done(_) | SeramAction::Failed(_) => {
                assert!(session.is_finished());
                assert!(session.poll(now).is_err(), "poll after the end");
                return;
            }
        }
    }
    panic!("seram session still running after {MAX_STEPS} steps");
}

/// The local PIN check ([`card_relay::pin::PinFlow`]): an arbitrary check (SELECT of any
/// AID, PIN pad or not), then arbitrary card answers and PINs. It never panics, never sends
/// a command longer than a short APDU, and ends after at most five steps (SELECT, state,
/// PIN, VERIFY, done).
pub fn pin(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.byte();
    let check = PinCheck {
        reference: input.byte(),
        select: (flags & 1 != 0).then(|| input.long().to_vec()),
        pad: (flags & 2 != 0).then(PinVerify::default),
    };
    let (mut flow, mut step) = match PinFlow::start::<()>(&check) {
        Ok(started) => started,
        Err(e) => {
            assert!(matches!(e, PinError::AidTooLong), "{e}");
            return;
        }
    };
    for _ in 0..5 {
        let next = match &step {
            PinStep::Done => return,
            PinStep::Ask { .. } => {
                let given = input.long();
                let pin = (flags & 4 == 0).then(|| Pin::from(given.to_vec()));
                flow.with_pin::<()>(pin)
            }
            PinStep::Send(apdu) => {
                assert!(apdu.len() <= 5 + 255, "a short apdu");
                flow.on_response::<()>(input.short())
            }
            PinStep::Pad { pin, .. } => {
                assert_eq!(pin.reference, check.reference);
                flow.on_response::<()>(input.short())
            }
        };
        match next {
            Ok(s) => step = s,
            Err(PinError::Entry(())) => panic!("the flow made an entry error"),
            Err(_) => return,
        }
    }
    assert_eq!(step, PinStep::Done, "the pin check did not end");
}
