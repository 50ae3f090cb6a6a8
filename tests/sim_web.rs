//! The JavaScript simulated reader driven from Rust through `web_sys::UsbDevice`, i.e. the
//! very WebUSB calls the driver makes (run by `wasm-pack test --headless --chrome . --features
//! simulator`). The object is not a real USBDevice, so it is cast with `unchecked_into`.
#![cfg(all(feature = "simulator", target_arch = "wasm32"))]

use js_sys::{Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{
    DomException, UsbControlTransferParameters, UsbDevice, UsbDirection, UsbInTransferResult,
    UsbOutTransferResult, UsbRecipient, UsbRequestType, UsbTransferStatus,
};

use card_relay::proto::ccid::Reassembler;
use card_relay::proto::descriptor::find_ccid_interfaces;
use card_relay::proto::hex::h;
use card_relay::reader::{Command, Operation, PowerOn, PoweredOn, Reader, Transmit};

/// A command APDU the test knows to be valid.
fn cmd(bytes: Vec<u8>) -> Command {
    Command::parse(bytes).expect("valid apdu")
}
use card_relay::sim::profiles::DEFAULT_DUMP;
use card_relay::sim::web::{create_simulated_reader, SimulatedUsbDevice};

wasm_bindgen_test_configure!(run_in_browser);

fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

fn device(opts: JsValue) -> (SimulatedUsbDevice, UsbDevice) {
    let sim = create_simulated_reader(opts).expect("simulator");
    // Two handles on one device: controls through `sim`, WebUSB calls through `dev`.
    let dev: UsbDevice = JsValue::from(sim.clone()).unchecked_into();
    (sim, dev)
}

/// Awaits a (typed) promise that must resolve.
async fn ok(p: impl JsCast) -> JsValue {
    let p: js_sys::Promise = p.unchecked_into();
    JsFuture::from(p).await.expect("promise resolves")
}

/// Awaits a (typed) promise that must reject with a DOMException.
async fn err(p: impl JsCast) -> DomException {
    let p: js_sys::Promise = p.unchecked_into();
    let e = JsFuture::from(p).await.expect_err("promise rejects");
    e.dyn_into::<DomException>().expect("a DOMException")
}

fn bytes(result: &UsbInTransferResult) -> Vec<u8> {
    match result.data() {
        Some(view) => Uint8Array::new_with_byte_offset_and_length(
            &view.buffer(),
            view.byte_offset() as u32,
            view.byte_length() as u32,
        )
        .to_vec(),
        None => Vec::new(),
    }
}

async fn transfer_in(dev: &UsbDevice, endpoint: u8, length: u32) -> UsbInTransferResult {
    ok(dev.transfer_in(endpoint, length)).await.unchecked_into()
}

async fn transfer_out(dev: &UsbDevice, data: &[u8]) -> UsbOutTransferResult {
    let p = dev
        .transfer_out_with_u8_slice(2, data)
        .expect("transferOut");
    ok(p).await.unchecked_into()
}

async fn set_up(dev: &UsbDevice) {
    ok(dev.open()).await;
    ok(dev.select_configuration(1)).await;
    ok(dev.claim_interface(0)).await;
}

/// Runs one reader operation over WebUSB calls; returns its completion.
async fn run<O: Operation>(dev: &UsbDevice, reader: &mut Reader, op: O) -> O::Output {
    let mut reassembler = Reassembler::new(271);
    let ticket = reader.start(op, 0).expect("start");
    loop {
        while reader.poll_event().is_some() {}
        if let Some(result) = reader.poll_completion(&ticket) {
            return result.expect("operation");
        }
        if let Some(out) = reader.poll_transmit() {
            let r = transfer_out(dev, &out).await;
            assert_eq!(r.bytes_written() as usize, out.len());
            continue;
        }
        let r = transfer_in(dev, 1, 64).await;
        assert_eq!(r.status(), UsbTransferStatus::Ok);
        reassembler.push(&bytes(&r));
        while let Some(msg) = reassembler.pop().expect("framing") {
            reader.handle_message(&msg, 0);
        }
    }
}

#[wasm_bindgen_test]
async fn seed_session_over_webusb_calls() {
    let (_sim, dev) = device(JsValue::UNDEFINED);
    assert_eq!((dev.vendor_id(), dev.product_id()), (0x1209, 0x0001));
    assert_eq!(dev.product_name().as_deref(), Some("Simulated CCID Reader"));
    assert!(dev.configuration().is_none());
    set_up(&dev).await;
    assert!(dev.opened());
    let config = dev.configuration().expect("configuration");
    assert_eq!(config.configuration_value(), 1);
    // The 54-byte class descriptor comes from GET_DESCRIPTOR(CONFIGURATION).
    let setup = UsbControlTransferParameters::new(
        0,
        UsbRecipient::Device,
        0x06,
        UsbRequestType::Standard,
        0x0200,
    );
    let r: UsbInTransferResult = ok(dev.control_transfer_in(&setup, 0xFFFF))
        .await
        .unchecked_into();
    let ccid = find_ccid_interfaces(&bytes(&r)).unwrap().remove(0);
    let mut reader = Reader::new(ccid.descriptor).unwrap();
    let on = run(
        &dev,
        &mut reader,
        PowerOn {
            slot: 0,
            protocol: None,
        },
    )
    .await;
    assert!(matches!(on, PoweredOn { protocol: 1, .. }));
    let transmit = |apdu: &str| Transmit {
        slot: 0,
        command: cmd(h(apdu)),
    };
    let verify = run(&dev, &mut reader, transmit("00 20 00 81")).await;
    assert_eq!(verify, h("6E 00"));
    let select = transmit("00 A4 04 04 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00");
    let fcp = run(&dev, &mut reader, select).await;
    assert_eq!(fcp, h("62 07 82 01 78 85 02 01 02 90 00"));
    let challenge = run(&dev, &mut reader, transmit("00 84 00 00 45")).await;
    assert_eq!((challenge.len(), &challenge[69..]), (71, &[0x90, 0x00][..]));
}

#[wasm_bindgen_test]
async fn interrupt_transfer_waits_for_a_card_event() {
    let (sim, dev) = device(options(&[("card", JsValue::NULL)]));
    set_up(&dev).await;
    let pending = dev.transfer_in(3, 8);
    sim.insert_card(JsValue::from_str("pin"), None).unwrap();
    let r: UsbInTransferResult = ok(pending).await.unchecked_into();
    assert_eq!(bytes(&r), h("50 03"));
    let pending = dev.transfer_in(3, 8);
    sim.remove_card(None).unwrap();
    let r: UsbInTransferResult = ok(pending).await.unchecked_into();
    assert_eq!(bytes(&r), h("50 02"));
}

#[wasm_bindgen_test]
async fn bulk_read_waits_for_the_answer_and_copies_the_command() {
    let (_sim, dev) = device(JsValue::UNDEFINED);
    set_up(&dev).await;
    let pending = dev.transfer_in(1, 64);
    let mut command = h("65 00 00 00 00 00 09 00 00 00");
    let p = dev.transfer_out_with_u8_slice(2, &command).unwrap();
    // The slice may be reused at once: the simulator copied it.
    command.fill(0);
    let written: UsbOutTransferResult = ok(p).await.unchecked_into();
    assert_eq!(written.bytes_written(), 10);
    let r: UsbInTransferResult = ok(pending).await.unchecked_into();
    assert_eq!(bytes(&r), h("81 00 00 00 00 00 09 01 00 00"));
}

#[wasm_bindgen_test]
async fn disconnect_rejects_pending_reads() {
    let (sim, dev) = device(JsValue::UNDEFINED);
    set_up(&dev).await;
    let pending = dev.transfer_in(1, 64);
    sim.disconnect();
    let e = err(pending).await;
    assert_eq!(e.name(), "NotFoundError");
    assert_eq!(e.message(), "The device was disconnected.");
    assert_eq!(err(dev.open()).await.name(), "NotFoundError");
}

#[wasm_bindgen_test]
async fn refusals_are_dom_exceptions() {
    let faults = options(&[("protectedClass", JsValue::TRUE)]);
    let (sim, dev) = device(options(&[("faults", faults)]));
    ok(dev.open()).await;
    ok(dev.select_configuration(1)).await;
    let e = err(dev.claim_interface(0)).await;
    assert_eq!(e.name(), "SecurityError");
    assert_eq!(
        e.message(),
        "The requested interface implements a protected class."
    );
    sim.clear_faults();
    sim.set_fault("busy", JsValue::TRUE).unwrap();
    let e = err(dev.claim_interface(0)).await;
    assert_eq!(
        (e.name(), e.message()),
        ("NetworkError".into(), "Unable to claim interface.".into())
    );
    sim.set_fault("accessDenied", JsValue::TRUE).unwrap();
    let e = err(dev.open()).await;
    assert_eq!(
        (e.name(), e.message()),
        ("SecurityError".into(), "Access denied.".into())
    );
    assert!(sim.set_fault("noSuchFault", JsValue::TRUE).is_err());
}

#[wasm_bindgen_test]
async fn stall_then_clear_halt() {
    let (sim, dev) = device(JsValue::UNDEFINED);
    set_up(&dev).await;
    sim.set_fault("stallIn", JsValue::TRUE).unwrap();
    let r = transfer_in(&dev, 1, 64).await;
    assert_eq!(r.status(), UsbTransferStatus::Stall);
    assert!(r.data().is_none());
    ok(dev.clear_halt(UsbDirection::In, 1)).await;
    let pending = dev.transfer_in(1, 64);
    transfer_out(&dev, &h("65 00 00 00 00 00 01 00 00 00")).await;
    let r: UsbInTransferResult = ok(pending).await.unchecked_into();
    assert_eq!(r.status(), UsbTransferStatus::Ok);
}

#[wasm_bindgen_test]
async fn profile_from_the_data_file_and_bad_options() {
    let entry = options(&[
        ("name", JsValue::from_str("Pad")),
        (
            "text",
            JsValue::from_str(&DEFAULT_DUMP.replace("bPINSupport: 0x00", "bPINSupport: 0x03")),
        ),
    ]);
    let card = options(&[
        ("app", JsValue::from_str("pin")),
        ("atr", JsValue::from_str("3B 80 80 01 01")),
    ]);
    let (sim, dev) = device(options(&[("profile", entry), ("card", card)]));
    assert_eq!(sim.profile_name(), "Pad");
    set_up(&dev).await;
    transfer_out(&dev, &h("62 00 00 00 00 00 01 00 00 00")).await;
    let atr = bytes(&transfer_in(&dev, 1, 64).await);
    assert_eq!(&atr[10..], &h("3B 80 80 01 01")[..]);
    assert!(
        create_simulated_reader(options(&[("profile", JsValue::from_str("GemPCTwin"))])).is_err()
    );
    assert!(create_simulated_reader(options(&[("card", JsValue::from_str("nope"))])).is_err());
}
