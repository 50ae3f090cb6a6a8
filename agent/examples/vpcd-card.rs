//! A virtual card for vsmartcard's virtual PC/SC reader driver (`vpcd`): the simulator's
//! card model ([`card_relay::sim::contact::ContactCard`]) behind vpcd's socket protocol, so
//! that the agent's tests run through a real pcsc-lite.
//!
//! vpcd's protocol (vsmartcard, `virtualsmartcard/src/vpcd`): the card connects to vpcd's
//! TCP port; every message is a 2-byte big-endian length and a payload. A 1-byte payload
//! from vpcd is a control: `00` power off, `01` power on, `02` reset, `04` "send the ATR"
//! (answered with the ATR as a message). A longer payload is a command, answered with one
//! message holding the response. Closing the connection removes the card.
//!
//! `vpcd-card [--host 127.0.0.1] [--port 40059] [--card seed|pin] [--t0] [--remove-after N]`
//! (`--remove-after N`: answer N commands, then leave without answering the next one: the
//! card pulled out mid-session.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use card_relay::sim::card::{CardConfig, T0_ATR};
use card_relay::sim::contact::ContactCard;

struct Options {
    host: String,
    port: u16,
    config: CardConfig,
    remove_after: Option<usize>,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        host: "127.0.0.1".into(),
        port: 40059,
        config: CardConfig::seed(),
        remove_after: None,
    };
    let mut t0 = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => options.host = value()?,
            "--port" => options.port = value()?.parse().map_err(|_| "bad port")?,
            "--card" => {
                options.config = match value()?.as_str() {
                    "seed" => CardConfig::seed(),
                    "pin" => CardConfig::pin(),
                    other => return Err(format!("unknown card {other}")),
                }
            }
            "--t0" => t0 = true,
            "--remove-after" => {
                options.remove_after = Some(value()?.parse().map_err(|_| "bad count")?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if t0 {
        options.config = options.config.with_atr(T0_ATR);
    }
    Ok(options)
}

/// vpcd listens once pcscd has loaded it: try for a while.
fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match TcpStream::connect((host, port)) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn read_message(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut length = [0; 2];
    stream.read_exact(&mut length)?;
    quick_ack(stream);
    let mut payload = vec![0; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut payload)?;
    quick_ack(stream);
    Ok(payload)
}

/// vpcd writes a message's length and its payload as two segments (Nagle's algorithm on its
/// side): with the card's delayed ACK (Linux, up to 40 ms) the payload waits for the ACK of
/// the length. TCP_QUICKACK (tcp(7); it does not stay set, so after each read) acknowledges
/// at once, and a command takes a fraction of a millisecond instead of ~50 ms.
#[cfg(target_os = "linux")]
fn quick_ack(stream: &TcpStream) {
    // Only a latency hint: a failure changes nothing but the speed.
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_stream: &TcpStream) {}

fn write_message(stream: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let length = u16::try_from(payload.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut message = length.to_be_bytes().to_vec();
    message.extend_from_slice(payload);
    stream.write_all(&message)
}

fn main() -> std::process::ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vpcd-card: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match serve(&options) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vpcd-card: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(options: &Options) -> std::io::Result<()> {
    let mut card = ContactCard::new(&options.config, 1).map_err(std::io::Error::other)?;
    let mut stream = connect(&options.host, options.port)?;
    stream.set_nodelay(true)?;
    eprintln!("vpcd-card: inserted into {}:{}", options.host, options.port);
    let mut answered = 0;
    loop {
        let message = match read_message(&mut stream) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        match message.as_slice() {
            [0x00] => {}
            [0x01] | [0x02] => card.reset(),
            [0x04] => write_message(&mut stream, card.atr())?,
            [_] => {}
            command => {
                if options.remove_after == Some(answered) {
                    eprintln!("vpcd-card: removed after {answered} commands");
                    return Ok(());
                }
                let response = card.transmit(command);
                write_message(&mut stream, &response)?;
                answered += 1;
            }
        }
    }
}
