//! `card-relay-server [--www DIR] [--pkg DIR] [--pkg-sim DIR] [--host ADDR] [--port N]
//! [--allow-origin ORIGIN]...`
//!
//! `--allow-origin` may be repeated; the environment variable `CARD_RELAY_ALLOW_ORIGINS`
//! adds a comma-separated list. Prints `card-relay: http://<host>:<port>/` once it listens,
//! then serves until killed.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use card_relay_server::{bind, router, ServerConfig};

/// How long a shutdown waits for open requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

struct Args {
    config: ServerConfig,
    host: IpAddr,
    port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: ServerConfig::default(),
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 8080,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--www" => args.config.www = PathBuf::from(value()?),
            "--pkg" => args.config.pkg = PathBuf::from(value()?),
            "--pkg-sim" => args.config.pkg_sim = PathBuf::from(value()?),
            "--allow-origin" => args.config.allowed_origins.push(value()?),
            "--host" => {
                let v = value()?;
                args.host = v.parse().map_err(|_| format!("bad --host {v:?}"))?;
            }
            "--port" => {
                let v = value()?;
                args.port = v.parse().map_err(|_| format!("bad --port {v:?}"))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: card-relay-server [--www DIR] [--pkg DIR] [--pkg-sim DIR] \
                     [--host ADDR] [--port N] [--allow-origin ORIGIN]..."
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Ok(list) = std::env::var("CARD_RELAY_ALLOW_ORIGINS") {
        args.config.allowed_origins.extend(
            list.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned),
        );
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("card-relay-server: {e}");
            return ExitCode::from(2);
        }
    };
    let (listener, local) = match bind(SocketAddr::new(args.host, args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "card-relay-server: cannot listen on {}:{}: {e}",
                args.host, args.port
            );
            return ExitCode::FAILURE;
        }
    };
    println!("card-relay: http://{local}/");
    let app = router(&args.config);
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let served = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stopping_tx.send(true);
    });
    // Graceful shutdown waits for open requests, and `/rt/fault/never` never ends one:
    // give them a grace period, then exit anyway.
    let grace = async move {
        let _ = stopping_rx.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = served => match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("card-relay-server: {e}");
                ExitCode::FAILURE
            }
        },
        () = grace => ExitCode::SUCCESS,
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
