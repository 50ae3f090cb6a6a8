//! The reference server of card-relay: it serves the demo page and the wasm packages, and
//! runs card-update scripts over RAMOverHTTP in both dialects (OpenSCDP and GP Amd B) and
//! over GP SERAM.
//!
//! Routes:
//! - `POST /rt/<app>`: RAM sessions of the scripts in [`apps`](crate::apps) (`test`,
//!   `gp-test`, `pin-test`, `fail`); unknown apps are 404, other methods 405 with `Allow`.
//! - `POST /rt/fault/<kind>`, `POST /rt/fault/slow-ms/<n>`: broken servers for client tests.
//! - `GET /rt/session`: the caller's latest RAM session as JSON.
//! - `GET /api/new-session`: a fresh `JSESSIONID` web session.
//! - `POST /seram/<app>/handshake`, `POST /seram/<app>/remoteManagement`,
//!   `GET /seram/session`: GP SERAM sessions of the same scripts (`seram`).
//! - `OPTIONS` on all of these: the CORS preflight for the allowed origins.
//! - `/pkg/` and `/pkg-sim/`: the wasm-pack outputs; everything else: the `www/` folder.
//!
//! The router is built here so tests can start the server in-process on an ephemeral port.
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

mod apps;
mod fault;
mod ram;
pub mod script;
mod seram;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tower_http::services::ServeDir;

pub use ram::{Limits, MAX_BODY, OPENSCDP_SCRIPT_CONTENT_TYPE};

/// What the server serves and whom it lets in.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The demo page folder (`www/`), served at `/`.
    pub www: PathBuf,
    /// The wasm-pack output folder (`pkg/`), served at `/pkg/`.
    pub pkg: PathBuf,
    /// The wasm-pack output built with the simulator (`pkg-sim/`), served at `/pkg-sim/`.
    pub pkg_sim: PathBuf,
    /// Origins (`scheme://host[:port]`) whose pages may call the RAM endpoints cross-origin.
    pub allowed_origins: Vec<String>,
    /// Time and size limits of RAM sessions.
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            www: PathBuf::from("www"),
            pkg: PathBuf::from("pkg"),
            pkg_sim: PathBuf::from("pkg-sim"),
            allowed_origins: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// Builds the HTTP routes.
pub fn router(config: &ServerConfig) -> Router {
    let state = Arc::new(ram::AppState::new(
        config.allowed_origins.clone(),
        config.limits.clone(),
    ));
    Router::new()
        .route(
            "/rt/session",
            get(ram::session_status).options(ram::preflight),
        )
        .route("/rt/{app}", post(ram::post_app).options(ram::preflight))
        .route(
            "/rt/fault/{kind}",
            post(ram::post_fault).options(ram::preflight),
        )
        .route(
            "/rt/fault/slow-ms/{ms}",
            post(ram::post_slow).options(ram::preflight),
        )
        .route(
            "/api/new-session",
            get(ram::new_session).options(ram::preflight),
        )
        .with_state(state)
        .merge(seram::routes(
            config.allowed_origins.clone(),
            config.limits.clone(),
        ))
        .nest_service("/pkg", ServeDir::new(&config.pkg))
        .nest_service("/pkg-sim", ServeDir::new(&config.pkg_sim))
        .fallback_service(ServeDir::new(&config.www))
}

/// Binds `addr`, returning the listener and the address actually bound (port 0 picks one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
