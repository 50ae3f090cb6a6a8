//! HTTP for the agent: the rules the browser build enforces, on hyper and rustls.
//!
//! - https only, plain http only to a loopback host ([`check_server_url`]).
//! - One keep-alive connection per session: every POST of a session goes over the same
//!   TCP (and TLS) connection while the server keeps it open; a new one is opened only when
//!   the server closed it or an exchange failed. (SCP81-style admin servers keep one admin
//!   session per connection.)
//! - A cookie jar per session ([`card_relay::cookie::CookieJar`], the one the library uses
//!   in Node.js): the `Cookie: JSESSIONID=<id>` the update loop adds for `-s <id>` seeds it,
//!   a `Set-Cookie` replaces it.
//! - Each exchange (connect, TLS, request, whole response) is bounded by the update loop's one
//!   HTTP timeout, which drops it when the bound passes; a dropped exchange's connection is
//!   not reused.
//! - Redirects are refused, as `fetch` with `redirect: "error"` does: a 3xx answer would
//!   carry the session to a server the user did not choose.
//! - TLS: rustls with the *ring* provider and the operating system's root certificates
//!   (README, "The agent").

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use card_relay::cookie::CookieJar;
use card_relay::driver::update::{HttpClient, HttpError, MAX_SCRIPT_BYTES};
use card_relay::driver::usb::LocalBoxFuture;
use card_relay::driver::ErrorCode;
use card_relay::session::{HttpRequest, HttpResponse};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The host names plain http may go to (the browser build's list).
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https` or `http`, lowercase.
    pub scheme: String,
    /// The host, lowercase; an IPv6 address keeps its brackets.
    pub host: String,
    /// The port, the scheme's default when the URL has none.
    pub port: u16,
    /// Path and query (`/` when empty).
    pub path: String,
}

impl Target {
    /// Parses an absolute http(s) URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("not an absolute url: {url}"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(format!("not an http(s) url: {url}")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(after) = host_port.strip_prefix('[') {
            let (inner, tail) = after
                .split_once(']')
                .ok_or_else(|| format!("bad host in {url}"))?;
            (format!("[{inner}]"), tail.strip_prefix(':'))
        } else {
            match host_port.split_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (host_port.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in {url}"));
        }
        let port = match port {
            None | Some("") => default_port,
            Some(p) => p.parse().map_err(|_| format!("bad port in {url}"))?,
        };
        let path = tail.split('#').next().unwrap_or("");
        let path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        Ok(Target {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    /// `scheme://host[:port]`, the default port left out (RFC 6454 §6.2).
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority())
    }

    /// `host[:port]` for the Host header, the default port left out.
    pub fn authority(&self) -> String {
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    fn is_loopback(&self) -> bool {
        LOOPBACK.contains(&self.host.as_str())
    }
}

/// Checks a server URL as the browser build does: https anywhere, plain http only to
/// localhost, 127.0.0.1 or [::1]. The error is `(code, message)`.
pub fn check_server_url(url: &str) -> Result<Target, (ErrorCode, String)> {
    let target = Target::parse(url).map_err(|m| (ErrorCode::InvalidArgument, m))?;
    if target.scheme != "https" && !target.is_loopback() {
        return Err((
            ErrorCode::InsecureUrl,
            format!(
                "refusing {}://{}: not https",
                target.scheme,
                target.authority()
            ),
        ));
    }
    Ok(target)
}

struct Connection {
    origin: String,
    sender: SendRequest<Full<Bytes>>,
}

#[derive(Default)]
struct State {
    jar: CookieJar,
    connection: Option<Connection>,
    connections_opened: u32,
}

/// The agent's HTTP client: one per card update session.
#[derive(Clone)]
pub struct AgentHttp {
    state: Rc<RefCell<State>>,
    tls: Rc<RefCell<Option<Arc<rustls::ClientConfig>>>>,
}

impl std::fmt::Debug for AgentHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHttp").finish_non_exhaustive()
    }
}

impl AgentHttp {
    /// A client for one session.
    pub fn new() -> Self {
        AgentHttp {
            state: Rc::new(RefCell::new(State::default())),
            tls: Rc::new(RefCell::new(None)),
        }
    }

    /// How many connections the session opened (one, while the server keeps it open).
    #[cfg(test)]
    pub fn connections_opened(&self) -> u32 {
        self.state.borrow().connections_opened
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, HttpError> {
        if let Some(config) = self.tls.borrow().as_ref() {
            return Ok(Arc::clone(config));
        }
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(HttpError::Network(
                "no trusted root certificates found on this system".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| HttpError::Network(format!("tls: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        *self.tls.borrow_mut() = Some(Arc::clone(&config));
        Ok(config)
    }

    async fn connect(&self, target: &Target) -> Result<SendRequest<Full<Bytes>>, HttpError> {
        let host = target.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((host, target.port)).await.map_err(|e| {
            HttpError::Network(format!("cannot connect to {}: {e}", target.authority()))
        })?;
        let _ = tcp.set_nodelay(true);
        let sender = if target.scheme == "https" {
            let config = self.tls_config()?;
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|_| HttpError::Network(format!("bad server name {host}")))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| HttpError::Network(format!("tls: {e}")))?;
            handshake(TokioIo::new(stream)).await?
        } else {
            handshake(TokioIo::new(tcp)).await?
        };
        self.state.borrow_mut().connections_opened += 1;
        Ok(sender)
    }

    async fn exchange(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let target = Target::parse(&request.url).map_err(HttpError::Network)?;
        let origin = target.origin();
        let kept = self.state.borrow_mut().connection.take();
        let mut sender = match kept {
            Some(c) if c.origin == origin && !c.sender.is_closed() => c.sender,
            _ => self.connect(&target).await?,
        };
        if sender.ready().await.is_err() {
            sender = self.connect(&target).await?;
            sender.ready().await.map_err(network)?;
        }
        let mut builder = hyper::Request::builder()
            .method(request.method)
            .uri(target.path.as_str())
            .header(hyper::header::HOST, target.authority())
            .header(
                hyper::header::USER_AGENT,
                concat!("card-relay/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &request.headers {
            if !name.eq_ignore_ascii_case("cookie") && !name.eq_ignore_ascii_case("host") {
                builder = builder.header(name.as_str(), value.as_str());
            }
        }
        let explicit = request.header("cookie");
        let cookie = self.state.borrow_mut().jar.header(&origin, explicit);
        if let Some(cookie) = cookie {
            builder = builder.header(hyper::header::COOKIE, cookie);
        }
        let body = Full::new(Bytes::from(request.body));
        let http_request = builder
            .body(body)
            .map_err(|e| HttpError::Network(format!("bad request: {e}")))?;
        let response = sender.send_request(http_request).await.map_err(network)?;
        let status = response.status().as_u16();
        let mut headers = Vec::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            if name == hyper::header::SET_COOKIE {
                self.state.borrow_mut().jar.store(&origin, &value);
            }
            headers.push((name.as_str().to_owned(), value));
        }
        if (300..400).contains(&status) {
            return Err(HttpError::Network(format!(
                "the server redirected (http {status}): redirects are refused"
            )));
        }
        let mut body = response.into_body();
        let mut data = Vec::new();
        let mut complete = true;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| HttpError::Body(lower(&e.to_string())))?;
            if let Ok(chunk) = frame.into_data() {
                data.extend_from_slice(&chunk);
                if data.len() > MAX_SCRIPT_BYTES {
                    // The loop refuses it as too large; the rest is not read.
                    complete = false;
                    break;
                }
            }
        }
        if complete {
            self.state.borrow_mut().connection = Some(Connection { origin, sender });
        }
        Ok(HttpResponse {
            status,
            headers,
            body: data,
        })
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<Full<Bytes>>, HttpError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(network)?;
    tokio::task::spawn_local(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

fn network(e: hyper::Error) -> HttpError {
    HttpError::Network(lower(&e.to_string()))
}

fn lower(text: &str) -> String {
    text.trim_end_matches('.').to_lowercase()
}

impl HttpClient for AgentHttp {
    /// POSTs `request`. The bound is not enforced here: the update loop owns the one HTTP
    /// timeout (`driver::update`) and drops this future when it passes. A dropped exchange
    /// leaves nothing behind: the connection was taken out of the pool for it and only goes
    /// back after a whole response, so the next request opens a fresh one.
    fn post(
        &self,
        request: HttpRequest,
        _timeout_ms: u64,
    ) -> LocalBoxFuture<Result<HttpResponse, HttpError>> {
        let client = self.clone();
        Box::pin(async move { client.exchange(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Runs `f` on a current-thread runtime with a `LocalSet`, as the agent does.
    fn run<F: std::future::Future>(f: F) -> F::Output {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, f)
    }

    /// A server answering each request on a connection with `answer`, until it has answered
    /// `per_connection` requests on it; counts connections.
    async fn serve(answer: &'static str, per_connection: usize) -> (String, Rc<RefCell<u32>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/rt/x", listener.local_addr().unwrap());
        let accepted = Rc::new(RefCell::new(0));
        let count = Rc::clone(&accepted);
        tokio::task::spawn_local(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                *count.borrow_mut() += 1;
                tokio::task::spawn_local(async move {
                    let mut buffer = vec![0; 4096];
                    for _ in 0..per_connection {
                        // Requests here are small: one read holds a whole one.
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if answer.is_empty() {
                            std::future::pending::<()>().await;
                        }
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                });
            }
        });
        (url, accepted)
    }

    fn request(url: &str) -> HttpRequest {
        HttpRequest {
            method: "POST",
            url: url.to_owned(),
            headers: vec![("Content-Type".into(), "application/x".into())],
            body: vec![1, 2, 3],
        }
    }

    const NO_CONTENT: &str = "HTTP/1.1 204 No Content\r\n\r\n";

    #[test]
    fn a_session_keeps_one_connection() {
        run(async {
            let (url, accepted) = serve(NO_CONTENT, 10).await;
            let http = AgentHttp::new();
            for _ in 0..3 {
                let r = http.post(request(&url), 5_000).await.unwrap();
                assert_eq!(r.status, 204);
            }
            assert_eq!(http.connections_opened(), 1);
            assert_eq!(*accepted.borrow(), 1);
        });
    }

    #[test]
    fn a_connection_the_server_closed_is_replaced() {
        run(async {
            let closing = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
            let (url, accepted) = serve(closing, 1).await;
            let http = AgentHttp::new();
            for _ in 0..2 {
                assert_eq!(http.post(request(&url), 5_000).await.unwrap().status, 204);
            }
            assert_eq!(http.connections_opened(), 2);
            assert_eq!(*accepted.borrow(), 2);
        });
    }

    #[test]
    fn an_exchange_dropped_at_the_loops_bound_leaves_no_connection() {
        run(async {
            // The update loop drops a POST when its timeout passes (the one HTTP timeout):
            // the silent server's connection must not be reused for the next request.
            let (url, accepted) = serve("", 1).await;
            let http = AgentHttp::new();
            let limit = Duration::from_millis(200);
            let dropped = tokio::time::timeout(limit, http.post(request(&url), 200)).await;
            assert!(dropped.is_err(), "a silent server never answers");
            let again = tokio::time::timeout(limit, http.post(request(&url), 200)).await;
            assert!(again.is_err());
            assert_eq!(http.connections_opened(), 2);
            assert_eq!(*accepted.borrow(), 2);
        });
    }

    #[test]
    fn redirects_are_refused() {
        run(async {
            let redirect =
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n\r\n";
            let (url, _) = serve(redirect, 1).await;
            let http = AgentHttp::new();
            let e = http.post(request(&url), 5_000).await.unwrap_err();
            assert!(
                matches!(&e, HttpError::Network(m) if m.contains("redirect")),
                "{e:?}"
            );
        });
    }

    #[test]
    fn urls_parse_into_origin_and_path() {
        let t = Target::parse("HTTPS://User@Card.Example:443/rt/x?y=1#frag").unwrap();
        assert_eq!(t.origin(), "https://card.example");
        assert_eq!(t.path, "/rt/x?y=1");
        let t = Target::parse("http://[::1]:8080?q").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("[::1]", 8080));
        assert_eq!(t.path, "/?q");
        assert_eq!(t.authority(), "[::1]:8080");
        assert!(Target::parse("/rt/test").is_err());
        assert!(Target::parse("ftp://h/x").is_err());
        assert!(Target::parse("http://h:99999/").is_err());
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_server_url("https://a.example/rt/test").is_ok());
        assert!(check_server_url("http://127.0.0.1:1234/rt/test").is_ok());
        assert!(check_server_url("http://localhost/rt/test").is_ok());
        assert!(check_server_url("http://[::1]:9/").is_ok());
        let (code, message) = check_server_url("http://a.example/rt/test").unwrap_err();
        assert_eq!(code, ErrorCode::InsecureUrl);
        assert_eq!(message, "refusing http://a.example: not https");
        assert_eq!(
            check_server_url("http://127.0.0.2/").unwrap_err().0,
            ErrorCode::InsecureUrl
        );
        assert_eq!(
            check_server_url("card.example").unwrap_err().0,
            ErrorCode::InvalidArgument
        );
    }
}
