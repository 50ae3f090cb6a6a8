//! The reference server of card-relay: it serves the demo page and the wasm package.
//!
//! The RAMOverHTTP endpoints (`/rt/<app>`, both dialects) are added by a later issue; the
//! router is built here so tests can start the server in-process on an ephemeral port.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use tower_http::services::ServeDir;

/// Where the server finds what it serves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The demo page folder (`www/`), served at `/`.
    pub www: PathBuf,
    /// The wasm-pack output folder (`pkg/`), served at `/pkg/`.
    pub pkg: PathBuf,
}

/// Builds the HTTP routes.
pub fn router(config: &ServerConfig) -> Router {
    Router::new()
        .nest_service("/pkg", ServeDir::new(&config.pkg))
        .fallback_service(ServeDir::new(&config.www))
}

/// Binds `addr`, returning the listener and the address actually bound (port 0 picks one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
