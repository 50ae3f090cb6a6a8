//! `card-relay-server [--www DIR] [--pkg DIR] [--host ADDR] [--port N]`
//!
//! Prints `card-relay: http://<host>:<port>/` once it listens, then serves until killed.
#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use card_relay_server::{bind, router, ServerConfig};

struct Args {
    config: ServerConfig,
    host: IpAddr,
    port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: ServerConfig {
            www: PathBuf::from("www"),
            pkg: PathBuf::from("pkg"),
        },
        host: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 8080,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--www" => args.config.www = PathBuf::from(value()?),
            "--pkg" => args.config.pkg = PathBuf::from(value()?),
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
                    "usage: card-relay-server [--www DIR] [--pkg DIR] [--host ADDR] [--port N]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
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
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("card-relay-server: {e}");
            ExitCode::FAILURE
        }
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
