//! The agent's PC/SC card channel with its insert/remove watcher, on the system's PC/SC
//! service, for the tests through pcsc-lite (tests/pcsc/events.test.mjs): opens the card in
//! a reader, prints `open <atr>`, then one line per event (`card-inserted`, `card-removed`,
//! `disconnected`). Input lines are commands: `transmit <hex>` prints `answer <hex>` or
//! `error <code>: <message>`, `reset` resets the card (`SCardReconnect(SCARD_RESET_CARD)`,
//! as `C0` in a script does) and prints `reset <atr>`. At the end of its input it closes the
//! channel (`SCardCancel` ends the watcher's wait) and prints `closed`.
//!
//! `pcsc-events [reader]` (default `Virtual PCD 00 00`, vpcd's first reader).

use std::io::Write;
use std::sync::Arc;

use card_relay::channel::CardChannel;
use card_relay::driver::DriverEvent;

#[path = "../src/pcsc_api.rs"]
#[allow(dead_code)]
mod pcsc_api;
#[path = "../src/pcsc_channel.rs"]
#[allow(dead_code)]
mod pcsc_channel;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() -> std::process::ExitCode {
    let reader = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Virtual PCD 00 00".into());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pcsc-events: no runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let pcsc: Arc<dyn pcsc_api::Pcsc> = match pcsc_api::SystemPcsc::establish() {
            Ok(p) => Arc::new(p),
            Err(e) => {
                eprintln!("pcsc-events: no pc/sc service: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let channel = match pcsc_channel::PcscChannel::open(pcsc, &reader).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pcsc-events: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        channel.set_event_sink(Box::new(|event| match event {
            DriverEvent::CardInserted(_) => say("card-inserted"),
            DriverEvent::CardRemoved(_) => say("card-removed"),
            DriverEvent::Disconnected => say("disconnected"),
            other => say(&format!("{other:?}")),
        }));
        let atr = CardChannel::atr(&channel, 0).unwrap_or_default();
        say(&format!("open {}", card_relay::proto::hex::spaced(&atr)));
        // The input, read on a thread of its own.
        let (send, mut commands) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        while let Some(line) = commands.recv().await {
            let hex = card_relay::proto::hex::spaced;
            let result = match line.trim().split_once(' ') {
                Some(("transmit", apdu)) => match command(apdu) {
                    Ok(command) => channel
                        .transmit(0, command, None)
                        .await
                        .map(|r| format!("answer {}", hex(&r))),
                    Err(e) => {
                        say(&format!("error invalid-argument: {e}"));
                        continue;
                    }
                },
                None if line.trim() == "reset" => channel
                    .reset(0, None)
                    .await
                    .map(|atr| format!("reset {}", hex(&atr))),
                _ => {
                    say("error invalid-argument: unknown command");
                    continue;
                }
            };
            match result {
                Ok(line) => say(&line),
                Err(e) => say(&format!("error {}: {e}", e.code().as_str())),
            }
            channel.end_template();
        }
        channel.close(false).await;
        say("closed");
        std::process::ExitCode::SUCCESS
    })
}

/// A command APDU from its hex text, parsed once where it enters.
fn command(text: &str) -> Result<card_relay::reader::Command, String> {
    let bytes = card_relay::proto::hex::parse(text).map_err(|e| e.to_string())?;
    card_relay::reader::Command::parse(bytes).map_err(|e| e.to_string())
}
