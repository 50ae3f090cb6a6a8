//! The agent's PC/SC channel against a bare loop of `pcsc` transmits, on the same card
//! (bench/agent.mjs runs it inside scripts/pcsc-ns.sh with the project's virtual card):
//! `pcsc-bench [--reader <name>] [--apdus N]` prints one JSON line
//! `{"apdus":N,"bare_us":…,"channel_us":…,"ratio":…}` (per-APDU microseconds, and the
//! channel's throughput as a fraction of the bare loop's).
//!
//! The channel is the agent's own code (`src/pcsc_channel.rs`, `src/pcsc_api.rs`), compiled
//! in here unchanged. The APDU is GET CHALLENGE for 8 bytes (ISO/IEC 7816-4 §11.6.3), which
//! the virtual card answers on both routes alike.

#[allow(dead_code)]
#[path = "../src/pcsc_api.rs"]
mod pcsc_api;
#[allow(dead_code)]
#[path = "../src/pcsc_channel.rs"]
mod pcsc_channel;

use std::ffi::CString;
use std::sync::Arc;
use std::time::Instant;

use card_relay::channel::CardChannel;

/// Untimed APDUs first on each route (connections, caches, the channel's transaction).
const WARM_UP: u32 = 100;

const APDU: [u8; 5] = [0x00, 0x84, 0x00, 0x00, 0x08];

fn main() {
    let mut reader = "Virtual PCD 00 00".to_owned();
    let mut apdus: u32 = 2000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--reader" => reader = value,
            "--apdus" => apdus = value.parse().unwrap_or(apdus),
            other => fail(&format!("unknown option {other}")),
        }
    }
    let bare = bare_loop(&reader, apdus);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("cannot start: {e}")));
    // The channel spawns local tasks (its card-event watch), as in the agent.
    let channel = tokio::task::LocalSet::new().block_on(&runtime, channel_loop(&reader, apdus));
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / f64::from(apdus.max(1));
    println!(
        "{{\"apdus\":{apdus},\"bare_us\":{:.1},\"channel_us\":{:.1},\"ratio\":{:.3}}}",
        per(bare),
        per(channel),
        bare.as_secs_f64() / channel.as_secs_f64()
    );
}

fn fail(message: &str) -> ! {
    eprintln!("pcsc-bench: {message}");
    std::process::exit(1)
}

/// `SCardTransmit` in a loop, nothing else.
fn bare_loop(reader: &str, apdus: u32) -> std::time::Duration {
    let context = pcsc::Context::establish(pcsc::Scope::User)
        .unwrap_or_else(|e| fail(&format!("no pc/sc: {e}")));
    let name = CString::new(reader).unwrap_or_else(|_| fail("bad reader name"));
    let card = context
        .connect(&name, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .unwrap_or_else(|e| fail(&format!("cannot connect: {e}")));
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    let mut start = Instant::now();
    for i in 0..WARM_UP + apdus {
        if i == WARM_UP {
            start = Instant::now();
        }
        let answer = card
            .transmit(&APDU, &mut buffer)
            .unwrap_or_else(|e| fail(&format!("transmit failed: {e}")));
        if answer.len() != 10 {
            fail("unexpected answer on the bare loop");
        }
    }
    start.elapsed()
}

/// The agent's channel: its card thread, its queue, its transaction.
async fn channel_loop(reader: &str, apdus: u32) -> std::time::Duration {
    let pcsc =
        pcsc_api::SystemPcsc::establish().unwrap_or_else(|e| fail(&format!("no pc/sc: {e}")));
    let channel = pcsc_channel::PcscChannel::open(Arc::new(pcsc), reader)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot connect: {e}")));
    let command = card_relay::reader::Command::parse(APDU.to_vec())
        .unwrap_or_else(|e| fail(&format!("bad apdu: {e}")));
    let mut start = Instant::now();
    for i in 0..WARM_UP + apdus {
        if i == WARM_UP {
            start = Instant::now();
        }
        let answer = channel
            .transmit(0, command.clone(), None)
            .await
            .unwrap_or_else(|e| fail(&format!("transmit failed: {e}")));
        if answer.len() != 10 {
            fail("unexpected answer on the channel");
        }
    }
    let elapsed = start.elapsed();
    channel.close(false).await;
    elapsed
}
