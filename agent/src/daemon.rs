//! `card-relay --daemon`: the local HTTP server on 127.0.0.1 (README "The daemon").
//!
//! - Old pages' `<img src="http://localhost:27001/<x>.png?url=…&sessionId=…&pinrequired=…">`:
//!   the parameters URL-decoded (WHATWG URL, application/x-www-form-urlencoded parsing), the
//!   update run, a passed or failed PNG answered with `Cache-Control: no-store` and no CORS
//!   headers. These wait their turn.
//! - The page API: `GET /v1/info`, `POST /v1/card-update` streaming newline-delimited JSON
//!   events; CORS (Fetch standard §3.2) only for the origins in the origins file or approved
//!   at the terminal; a Private Network Access preflight (`Access-Control-Request-Private-
//!   Network: true`) answered with `Access-Control-Allow-Private-Network: true` for them.
//!   A second update while one runs gets `agent-busy` at once. Closing the response cancels
//!   the update.
//! - Every request's `Host` must be a loopback name (DNS rebinding: a page's own name pointed
//!   at 127.0.0.1 is answered 421).

use std::convert::Infallible;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use card_relay::driver::sync::{Abort, FifoLock};
use card_relay::driver::update::{UpdateObserver, UpdateResult};
use card_relay::driver::ErrorCode;
use card_relay::proto::hex;
use card_relay::proto::json::{self, Value};
use card_relay::session::{EndStatus, Notification};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::approval;
use crate::args::Options;
use crate::http::{check_server_url, Target};
use crate::{CliError, Out};

/// The host names the daemon answers to.
const LOCAL_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// How long an old page's request waits for a reader and a card (then it fails, and the
/// next request gets its turn).
const LEGACY_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The largest JSON body of a card-update request.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// The daemon's state, shared by its connections.
struct Daemon {
    options: Options,
    out: Out,
    servers_file: PathBuf,
    origins_file: PathBuf,
    /// One update at a time.
    lock: FifoLock,
    /// Whether a user at the terminal can be asked (stdin and stderr are terminals).
    terminal: bool,
}

/// Runs the daemon until `abort` (Ctrl-C).
pub async fn run(options: &Options, out: &Out, abort: &Abort) -> Result<(), CliError> {
    let servers_file = options
        .servers_file
        .as_ref()
        .map_or_else(approval::default_servers_file, PathBuf::from);
    let origins_file = options.origins_file.as_ref().map_or_else(
        || approval::default_origins_file(&servers_file),
        PathBuf::from,
    );
    let listener = TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|e| {
            CliError::new(
                ErrorCode::InvalidArgument.as_str(),
                format!("cannot listen on 127.0.0.1:{}: {e}", options.port),
            )
        })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    out.line(0, &format!("Daemon waiting on 127.0.0.1:{port}..."));
    let daemon = Rc::new(Daemon {
        options: options.clone(),
        out: out.clone(),
        servers_file,
        origins_file,
        lock: FifoLock::default(),
        terminal: approval::interactive(),
    });
    serve(listener, &daemon, abort).await;
    Ok(())
}

/// Accepts connections on `listener` until `abort`. (The accept loop runs as a task and the
/// abort is awaited alone: an abort future raced at every accept would keep a waker each time.)
async fn serve(listener: TcpListener, daemon: &Rc<Daemon>, abort: &Abort) {
    let daemon = Rc::clone(daemon);
    let accepting = tokio::task::spawn_local(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let daemon = Rc::clone(&daemon);
            tokio::task::spawn_local(async move {
                let service = hyper::service::service_fn(move |request| {
                    let daemon = Rc::clone(&daemon);
                    async move { Ok::<_, Infallible>(daemon.handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    abort.wait().await;
    accepting.abort();
}

fn full(body: impl Into<Bytes>) -> ResponseBody {
    Full::new(body.into()).boxed_unsync()
}

fn respond(status: StatusCode, content_type: &str, body: ResponseBody) -> Response<ResponseBody> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(hyper::header::CONTENT_TYPE, v);
    }
    headers.insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn text(status: StatusCode, message: &str) -> Response<ResponseBody> {
    respond(
        status,
        "text/plain; charset=utf-8",
        full(format!("{message}\n")),
    )
}

fn image(passed: bool) -> Response<ResponseBody> {
    let png = if passed {
        crate::png::passed()
    } else {
        crate::png::failed()
    };
    respond(StatusCode::OK, "image/png", full(png))
}

/// One NDJSON line.
fn line(value: &Value) -> Bytes {
    let mut text = value.encode();
    text.push('\n');
    Bytes::from(text)
}

fn error_event(e: &CliError) -> Value {
    let mut members = vec![
        ("type".to_owned(), Value::String("error".into())),
        ("code".to_owned(), Value::String(e.code.clone())),
        ("message".to_owned(), Value::String(e.message.clone())),
        (
            "hint".to_owned(),
            e.hint.clone().map_or(Value::Null, Value::String),
        ),
    ];
    if let Some(status) = e.status {
        members.push(("status".to_owned(), Value::Number(status.to_string())));
    }
    Value::Object(members)
}

fn result_event(r: &UpdateResult) -> Value {
    let status = match r.status {
        EndStatus::Completed => "completed",
        EndStatus::EndedByServer { .. } => "ended-by-server",
    };
    json::object([
        ("type", Value::String("result".into())),
        ("status", Value::String(status.into())),
        ("apdus", Value::Number(r.apdus.to_string())),
        ("roundTrips", Value::Number(r.round_trips.to_string())),
        ("durationMs", Value::Number(r.duration_ms.to_string())),
    ])
}

/// A response of NDJSON events sent as they come.
struct EventBody(mpsc::UnboundedReceiver<Bytes>);

impl Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// Notes that the session has begun (its first notification or trace line).
#[derive(Default)]
struct Started(std::cell::Cell<bool>);

impl UpdateObserver for Started {
    fn notification(&self, _: &Notification) {
        self.0.set(true);
    }
    fn trace(&self, _: &str) {
        self.0.set(true);
    }
}

/// Hands the session's notifications and trace to the event stream.
struct EventSink(mpsc::UnboundedSender<Bytes>);

impl UpdateObserver for EventSink {
    fn notification(&self, n: &Notification) {
        let _ = self.0.send(line(&json::object([
            ("type", Value::String("notification".into())),
            ("code", Value::Number(n.id.to_string())),
            ("message", Value::String(n.message.clone())),
            (
                "timeToCompletion",
                n.time_to_completion
                    .map_or(Value::Null, |t| Value::Number(t.to_string())),
            ),
        ])));
    }
    fn trace(&self, line_text: &str) {
        let _ = self.0.send(line(&json::object([
            ("type", Value::String("trace".into())),
            ("line", Value::String(line_text.into())),
        ])));
    }
}

/// The update a page or an old `<img>` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Job {
    url: String,
    dialect: Option<String>,
    session_id: Option<String>,
    reader: Option<String>,
    /// `None` no PIN check; `Some(reference)`.
    pin: Option<u8>,
    pin_select: Option<Vec<u8>>,
}

fn invalid(message: impl Into<String>) -> CliError {
    CliError::coded(ErrorCode::InvalidArgument, message)
}

/// `pinRequired`: a reference 0..=255, or any other value the default reference.
fn pin_reference(value: Option<&str>) -> u8 {
    value
        .and_then(|v| v.trim().parse::<u8>().ok())
        .unwrap_or(crate::pin::REFERENCE)
}

/// Decodes one `application/x-www-form-urlencoded` component (WHATWG URL §5.1): `+` is a
/// space, `%XX` a byte, other bytes as they are; the result read as UTF-8 (lossy).
fn form_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex_byte = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex_byte) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads an old page's query: `url` (required), `sessionId`, `pinrequired` (the library's
/// `parseLegacyUrl`; the first of each name counts).
fn legacy_job(query: &str) -> Result<Job, CliError> {
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.push((form_decode(name), form_decode(value)));
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let url = get("url")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| invalid("the legacy url has no url parameter"))?;
    Ok(Job {
        url: url.to_owned(),
        session_id: get("sessionId")
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        pin: get("pinrequired").map(|p| pin_reference(Some(p))),
        ..Job::default()
    })
}

/// Reads a page's `POST /v1/card-update` body.
fn api_job(body: &[u8]) -> Result<Job, CliError> {
    let value = Value::parse(body).map_err(|e| invalid(format!("bad request body: {e}")))?;
    if !matches!(value, Value::Object(_)) {
        return Err(invalid("the request body must be a json object"));
    }
    let string = |name: &str| -> Result<Option<String>, CliError> {
        match value.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("{name} must be a string"))),
        }
    };
    let url = string("url")?.ok_or_else(|| invalid("url is required"))?;
    let dialect = string("dialect")?;
    if let Some(d) = &dialect {
        if !["openscdp", "gp", "seram"].contains(&d.as_str()) {
            return Err(invalid(format!(
                "dialect must be openscdp, gp or seram, not {d}"
            )));
        }
    }
    let session_id = string("sessionId")?;
    if dialect.as_deref() == Some("seram") && session_id.is_none() {
        return Err(invalid("the seram dialect needs a sessionId"));
    }
    let pin = match value.get("pinRequired") {
        None | Some(Value::Null | Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(crate::pin::REFERENCE),
        Some(Value::Number(n)) => Some(
            n.parse::<u8>()
                .map_err(|_| invalid(format!("pinRequired must be 0 to 255, not {n}")))?,
        ),
        Some(_) => return Err(invalid("pinRequired must be a boolean or a number")),
    };
    let pin_select = match string("pinSelect")? {
        None => None,
        Some(h) => Some(hex::parse(&h).map_err(|e| invalid(format!("pinSelect: {e}")))?),
    };
    Ok(Job {
        url,
        dialect,
        session_id,
        reader: string("reader")?,
        pin,
        pin_select,
    })
}

/// The request's `Origin`, when it is a real (not opaque) origin.
fn origin_of(request: &Request<Incoming>) -> Option<Target> {
    let origin = request
        .headers()
        .get(hyper::header::ORIGIN)?
        .to_str()
        .ok()?;
    let target = Target::parse(origin).ok()?;
    (target.path == "/").then_some(target)
}

impl Daemon {
    async fn handle(self: Rc<Self>, request: Request<Incoming>) -> Response<ResponseBody> {
        // A page elsewhere could reach us through a name it controls (DNS rebinding): only
        // the loopback names are served.
        let host = request
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let name = match host.rsplit_once(':') {
            Some((n, port)) if !port.contains(']') => n,
            _ => host.as_str(),
        };
        if !LOCAL_HOSTS.contains(&name) {
            return text(StatusCode::MISDIRECTED_REQUEST, "misdirected request");
        }
        let path = request.uri().path().to_owned();
        match (path.as_str(), request.method()) {
            ("/v1/info", &Method::GET) => self.info(&request).await,
            ("/v1/info" | "/v1/card-update", &Method::OPTIONS) => self.preflight(&request),
            ("/v1/card-update", &Method::POST) => self.card_update(request).await,
            ("/v1/info" | "/v1/card-update", _) => {
                let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
                let allow = if path == "/v1/info" { "GET" } else { "POST" };
                r.headers_mut()
                    .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
                r
            }
            (p, m) if is_image_path(p) => {
                if m != Method::GET {
                    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
                    r.headers_mut()
                        .insert(hyper::header::ALLOW, HeaderValue::from_static("GET"));
                    return r;
                }
                self.legacy(request.uri().query().unwrap_or("")).await
            }
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// Whether the origins file lists `origin`.
    fn approved(&self, origin: &Target) -> bool {
        approval::listed(&self.origins_file, origin)
    }

    /// Adds the CORS headers for `origin`.
    fn cors(response: &mut Response<ResponseBody>, origin: &Target) {
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&origin.origin()) {
            headers.insert(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        headers.insert(hyper::header::VARY, HeaderValue::from_static("Origin"));
    }

    /// The answer to a CORS preflight: for `/v1/info` any origin (it tells every page the
    /// version); for `/v1/card-update` an origin the origins file lists, or any while there
    /// is a terminal to ask at the POST.
    fn preflight(&self, request: &Request<Incoming>) -> Response<ResponseBody> {
        let Some(origin) = origin_of(request) else {
            return text(StatusCode::FORBIDDEN, "no origin");
        };
        let info = request.uri().path() == "/v1/info";
        if !info && !self.approved(&origin) && !self.terminal {
            return text(StatusCode::FORBIDDEN, "origin not approved");
        }
        let mut response = respond(StatusCode::NO_CONTENT, "text/plain", full(""));
        Self::cors(&mut response, &origin);
        let headers = response.headers_mut();
        let (methods, allowed_headers) = if info {
            ("GET", "")
        } else {
            ("POST", "Content-Type")
        };
        headers.insert(
            hyper::header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        if !allowed_headers.is_empty() {
            headers.insert(
                hyper::header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(allowed_headers),
            );
        }
        headers.insert(
            hyper::header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        let private_network = request
            .headers()
            .get("access-control-request-private-network")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        if private_network {
            headers.insert(
                "access-control-allow-private-network",
                HeaderValue::from_static("true"),
            );
        }
        response
    }

    /// `GET /v1/info`: `{version}`, with the readers for approved origins.
    async fn info(&self, request: &Request<Incoming>) -> Response<ResponseBody> {
        let origin = origin_of(request);
        let mut members = vec![(
            "version".to_owned(),
            Value::String(env!("CARGO_PKG_VERSION").into()),
        )];
        if origin.as_ref().is_some_and(|o| self.approved(o)) {
            let readers = self.readers().await.unwrap_or_default();
            let list = readers
                .into_iter()
                .map(|(name, present)| {
                    json::object([
                        ("name", Value::String(name)),
                        ("cardPresent", Value::Bool(present)),
                    ])
                })
                .collect();
            members.push(("readers".to_owned(), Value::Array(list)));
        }
        let mut response = respond(
            StatusCode::OK,
            "application/json",
            full(Value::Object(members).encode()),
        );
        if let Some(origin) = &origin {
            Self::cors(&mut response, origin);
        }
        response
    }

    /// The readers and whether each holds a card.
    async fn readers(&self) -> Result<Vec<(String, bool)>, CliError> {
        if let Some(profile) = &self.options.simulator {
            return Ok(vec![(format!("Simulated reader ({profile})"), true)]);
        }
        let pcsc = crate::system_pcsc()?;
        let readers = crate::blocking(move || pcsc.readers()).await?;
        Ok(readers
            .into_iter()
            .map(|r| (r.name, r.card_present))
            .collect())
    }

    /// An old page's `<img>`: waits its turn, runs the update, answers the image.
    async fn legacy(&self, query: &str) -> Response<ResponseBody> {
        let job = match legacy_job(query) {
            Ok(job) => job,
            Err(e) => {
                self.out.line(0, &format!("Refused: {}", e.message));
                return image(false);
            }
        };
        let _turn = self.lock.lock().await;
        let abort = Rc::new(Abort::new());
        // No page can cancel an <img>: the wait for a reader and a card is bounded instead,
        // the session itself by its HTTP timeouts.
        let started = Rc::new(Started::default());
        let limit = Rc::clone(&abort);
        let seen = Rc::clone(&started);
        let timer = tokio::task::spawn_local(async move {
            tokio::time::sleep(LEGACY_WAIT).await;
            if !seen.0.get() {
                limit.abort();
            }
        });
        let outcome = self.run_job(&job, Some(started), &abort).await;
        timer.abort();
        let passed = match &outcome {
            Ok(r) => matches!(r.status, EndStatus::Completed),
            Err(_) => false,
        };
        if let Ok(r) = &outcome {
            if let EndStatus::EndedByServer { message, .. } = &r.status {
                self.out
                    .line(0, &format!("Update failed (ended-by-server): {message}"));
            }
        }
        image(passed)
    }

    /// Approves the server, checks the PIN can be asked for, runs the update; logs the outcome.
    async fn run_job(
        &self,
        job: &Job,
        events: Option<Rc<dyn UpdateObserver>>,
        abort: &Abort,
    ) -> Result<UpdateResult, CliError> {
        let result = self.approve_and_run(job, events, abort).await;
        match &result {
            Ok(r) => self.out.line(
                0,
                &format!(
                    "Update complete: {} APDUs, {} round trips",
                    r.apdus, r.round_trips
                ),
            ),
            Err(e) => {
                self.out
                    .line(0, &format!("Update failed ({}): {}", e.code, e.message));
                if let Some(hint) = &e.hint {
                    self.out.line(0, &format!("  {hint}"));
                }
            }
        }
        result
    }

    async fn approve_and_run(
        &self,
        job: &Job,
        events: Option<Rc<dyn UpdateObserver>>,
        abort: &Abort,
    ) -> Result<UpdateResult, CliError> {
        let target = check_server_url(&job.url).map_err(|(code, m)| CliError::coded(code, m))?;
        approval::approve(
            &self.servers_file,
            &target,
            format!(
                "Allow {} to use your card? [o]nce, [a]lways, [N]o: ",
                job.url
            ),
            ErrorCode::NotApproved,
        )
        .await?;
        let mut options = self.options.clone();
        options.daemon = false;
        options.url = Some(job.url.clone());
        options.session_id.clone_from(&job.session_id);
        if let Some(d) = &job.dialect {
            options.dialect.clone_from(d);
        }
        if job.reader.is_some() {
            options.reader.clone_from(&job.reader);
        }
        options.pin_select.clone_from(&job.pin_select);
        match job.pin {
            None => options.pin = None,
            Some(reference) => {
                options.pin_reference = reference;
                let given = self.options.pin.clone().flatten();
                if given.is_none() && !self.terminal {
                    return Err(CliError::coded(
                        ErrorCode::PinFailed,
                        "the page asks for a PIN and there is no terminal to ask",
                    ));
                }
                options.pin = Some(given);
            }
        }
        let out = Out {
            verbosity: self.out.verbosity,
            events,
        };
        crate::update(&options, &out, abort).await
    }

    /// `POST /v1/card-update`: the update's events as NDJSON.
    async fn card_update(self: Rc<Self>, request: Request<Incoming>) -> Response<ResponseBody> {
        let origin = origin_of(&request);
        let refuse = |status: StatusCode, e: CliError, cors: Option<&Target>| {
            let mut response =
                respond(status, "application/x-ndjson", full(line(&error_event(&e))));
            if let Some(origin) = cors {
                Self::cors(&mut response, origin);
            }
            response
        };
        let Some(origin) = origin else {
            let e = CliError::coded(ErrorCode::AgentRefused, "the request has no origin");
            return refuse(StatusCode::FORBIDDEN, e, None);
        };
        let listed = self.approved(&origin);
        if !listed && !self.terminal {
            let e = CliError::coded(
                ErrorCode::AgentRefused,
                format!(
                    "{} is not in {} and there is no terminal to ask",
                    origin.origin(),
                    self.origins_file.display()
                ),
            );
            self.out.line(0, &format!("Refused: {}", e.message));
            return refuse(StatusCode::FORBIDDEN, e, None);
        }
        let json_body = request
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json_body {
            let e = invalid("the request body must be application/json");
            return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, e, Some(&origin));
        }
        let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let e = invalid(format!("cannot read the request body: {e}"));
                return refuse(StatusCode::BAD_REQUEST, e, Some(&origin));
            }
        };
        let job = match api_job(&body) {
            Ok(job) => job,
            Err(e) => return refuse(StatusCode::BAD_REQUEST, e, Some(&origin)),
        };
        if self.lock.is_locked() {
            let e = CliError::coded(ErrorCode::AgentBusy, "the agent is running another update");
            return refuse(StatusCode::CONFLICT, e, Some(&origin));
        }
        let turn = self.lock.lock().await;
        let (sender, receiver) = mpsc::unbounded_channel();
        let daemon = Rc::clone(&self);
        let page = origin.clone();
        tokio::task::spawn_local(async move {
            let _turn = turn;
            let abort = Rc::new(Abort::new());
            // The page closed the response: cancel the update (the session tells the server).
            let watched = sender.clone();
            let on_close = Rc::clone(&abort);
            let watcher = tokio::task::spawn_local(async move {
                watched.closed().await;
                on_close.abort();
            });
            let events: Rc<dyn UpdateObserver> = Rc::new(EventSink(sender.clone()));
            let outcome = async {
                if !listed {
                    approval::approve(
                        &daemon.origins_file,
                        &page,
                        format!(
                            "Allow the page {} to update your card? [o]nce, [a]lways, [N]o: ",
                            page.origin()
                        ),
                        ErrorCode::AgentRefused,
                    )
                    .await?;
                }
                daemon.run_job(&job, Some(events), &abort).await
            }
            .await;
            let last = match &outcome {
                Ok(r) => result_event(r),
                Err(e) => error_event(e),
            };
            let _ = sender.send(line(&last));
            watcher.abort();
        });
        let mut response = respond(
            StatusCode::OK,
            "application/x-ndjson",
            EventBody(receiver).boxed_unsync(),
        );
        Self::cors(&mut response, &origin);
        response
    }
}

/// `/<anything>.png`, one path segment.
fn is_image_path(path: &str) -> bool {
    path.strip_prefix('/')
        .is_some_and(|rest| !rest.contains('/') && rest.ends_with(".png"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_parameters_are_form_decoded() {
        let job = legacy_job(
            "url=http%3A%2F%2F127.0.0.1%3A1%2Frt%2Ftest%3Fa%3D1%26b%3D2&sessionId=a+b&pinrequired=129",
        )
        .unwrap();
        assert_eq!(job.url, "http://127.0.0.1:1/rt/test?a=1&b=2");
        assert_eq!(job.session_id.as_deref(), Some("a b"));
        assert_eq!(job.pin, Some(0x81));
        let job = legacy_job("url=https://h/x&pinrequired=yes").unwrap();
        assert_eq!(job.pin, Some(crate::pin::REFERENCE));
        assert_eq!(
            legacy_job("sessionId=1").unwrap_err().code,
            "invalid-argument"
        );
        assert_eq!(form_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn card_update_bodies_are_checked() {
        let job = api_job(
            br#"{"url":"https://h/x","dialect":"gp","pinRequired":true,"pinSelect":"E82B0601"}"#,
        )
        .unwrap();
        assert_eq!(job.dialect.as_deref(), Some("gp"));
        assert_eq!(job.pin, Some(0x81));
        assert_eq!(job.pin_select, Some(vec![0xE8, 0x2B, 0x06, 0x01]));
        let e = |b: &[u8]| api_job(b).unwrap_err().message;
        assert_eq!(e(b"[]"), "the request body must be a json object");
        assert_eq!(e(b"{}"), "url is required");
        assert_eq!(e(br#"{"url":1}"#), "url must be a string");
        assert_eq!(
            e(br#"{"url":"u","dialect":"x"}"#),
            "dialect must be openscdp, gp or seram, not x"
        );
        assert_eq!(
            e(br#"{"url":"u","pinRequired":300}"#),
            "pinRequired must be 0 to 255, not 300"
        );
    }

    /// Tells the tests' directories apart (tests run on parallel threads).
    static NEXT_DIR: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

    /// Runs `f(port, daemon)` against a daemon with the simulator and these origins, on a
    /// current-thread runtime with a `LocalSet`, as the agent runs.
    fn with_daemon<F: AsyncFnOnce(u16, Rc<Daemon>)>(origins: &str, f: F) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, async {
            let dir = std::env::temp_dir().join(format!(
                "card-relay-daemon-{}-{}",
                std::process::id(),
                NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("origins"), origins).unwrap();
            let mut options = crate::args::parse(&["--daemon".to_owned()]).unwrap();
            options.simulator = Some("default".into());
            let daemon = Rc::new(Daemon {
                options,
                out: Out {
                    verbosity: 0,
                    events: None,
                },
                servers_file: dir.join("servers"),
                origins_file: dir.join("origins"),
                lock: FifoLock::default(),
                terminal: false,
            });
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let abort = Rc::new(Abort::new());
            let stop = Rc::clone(&abort);
            let serving = Rc::clone(&daemon);
            let server =
                tokio::task::spawn_local(async move { serve(listener, &serving, &stop).await });
            f(port, daemon).await;
            abort.abort();
            server.await.unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
        });
    }

    /// Sends `request` (a whole HTTP/1.1 request with `Connection: close`) and reads the
    /// answer to its end.
    async fn exchange(port: u16, request: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).to_lowercase()
    }

    const PAGE: &str = "http://page.example:8080";

    fn preflight(origin: &str) -> String {
        format!(
            "OPTIONS /v1/card-update HTTP/1.1\r\nHost: 127.0.0.1:27001\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\
             Access-Control-Request-Private-Network: true\r\nConnection: close\r\n\r\n"
        )
    }

    #[test]
    fn private_network_preflights_are_answered_for_approved_origins_only() {
        with_daemon(&format!("{PAGE}\n"), async |port, _| {
            let ok = exchange(port, &preflight(PAGE)).await;
            assert!(ok.starts_with("http/1.1 204"), "{ok}");
            assert!(
                ok.contains(&format!("access-control-allow-origin: {PAGE}\r\n")),
                "{ok}"
            );
            assert!(
                ok.contains("access-control-allow-private-network: true\r\n"),
                "{ok}"
            );
            assert!(
                ok.contains("access-control-allow-headers: content-type\r\n"),
                "{ok}"
            );
            // Without a terminal an unlisted origin gets nothing.
            let refused = exchange(port, &preflight("https://evil.example")).await;
            assert!(refused.starts_with("http/1.1 403"), "{refused}");
            assert!(!refused.contains("access-control-allow"), "{refused}");
        });
    }

    #[test]
    fn a_host_that_is_no_loopback_name_is_misdirected() {
        with_daemon("", async |port, _| {
            for host in [
                "attacker.example",
                "attacker.example:27001",
                "127.0.0.1.nip.example",
            ] {
                let answer = exchange(
                    port,
                    &format!("GET /v1/info HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
                )
                .await;
                assert!(answer.starts_with("http/1.1 421"), "{host}: {answer}");
            }
            let ok = exchange(
                port,
                "GET /v1/info HTTP/1.1\r\nHost: [::1]:27001\r\nConnection: close\r\n\r\n",
            )
            .await;
            assert!(ok.starts_with("http/1.1 200"), "{ok}");
        });
    }

    #[test]
    fn a_second_update_while_one_runs_is_agent_busy_at_once() {
        with_daemon(&format!("{PAGE}\n"), async |port, daemon| {
            let _running = daemon.lock.lock().await;
            let body = r#"{"url":"http://127.0.0.1:9/rt/test","dialect":"openscdp"}"#;
            let request = format!(
                "POST /v1/card-update HTTP/1.1\r\nHost: localhost:27001\r\nOrigin: {PAGE}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let answer =
                tokio::time::timeout(std::time::Duration::from_secs(2), exchange(port, &request))
                    .await
                    .expect("at once");
            assert!(answer.starts_with("http/1.1 409"), "{answer}");
            assert!(
                answer.contains("content-type: application/x-ndjson"),
                "{answer}"
            );
            assert!(
                answer.ends_with("\r\n\r\n{\"type\":\"error\",\"code\":\"agent-busy\",\"message\":\"the agent is running another update\",\"hint\":\"the card-relay agent is running another update: wait for it to end, then try again.\"}\n"),
                "{answer}"
            );
        });
    }

    #[test]
    fn closing_the_response_cancels_the_update_and_the_server_gets_the_cancel_post() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        with_daemon(&format!("{PAGE}\n"), async |port, daemon| {
            // A RAM server that holds the first POST unanswered and records the next
            // request: the cancel.
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let server = format!("http://{}", listener.local_addr().unwrap());
            std::fs::write(&daemon.servers_file, format!("{server}\n")).unwrap();
            let (tx, rx) = tokio::sync::oneshot::channel::<String>();
            tokio::task::spawn_local(async move {
                let mut tx = Some(tx);
                let mut held = Vec::new();
                while let Ok((mut socket, _)) = listener.accept().await {
                    let mut request = Vec::new();
                    let mut buffer = vec![0; 4096];
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        request.extend_from_slice(buffer.get(..n).unwrap_or_default());
                        let text = String::from_utf8_lossy(&request).into_owned();
                        let done = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                            let length = head
                                .to_lowercase()
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:").map(str::to_owned))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            body.len() >= length
                        });
                        if done {
                            break;
                        }
                    }
                    if held.is_empty() {
                        held.push(socket);
                        continue;
                    }
                    let _ = socket.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
                    }
                }
            });
            let body = format!(r#"{{"url":"{server}/rt/test","dialect":"openscdp"}}"#);
            let request = format!(
                "POST /v1/card-update HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {PAGE}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let mut page = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            page.write_all(request.as_bytes()).await.unwrap();
            let mut head = vec![0; 1024];
            let n = page.read(&mut head).await.unwrap();
            let head = String::from_utf8_lossy(head.get(..n).unwrap_or_default()).to_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            drop(page);
            let cancel = tokio::time::timeout(std::time::Duration::from_secs(10), rx)
                .await
                .expect("the cancel post within 10 s")
                .unwrap();
            assert!(cancel.starts_with("POST /rt/test HTTP/1.1"), "{cancel}");
            assert!(cancel.contains("Session canceled"), "{cancel}");
            // The update ended: the next one may run.
            for _ in 0..100 {
                if !daemon.lock.is_locked() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(!daemon.lock.is_locked());
        });
    }

    #[test]
    fn images_are_one_segment_png_paths() {
        assert!(is_image_path("/1296065.png"));
        assert!(!is_image_path("/a/b.png"));
        assert!(!is_image_path("/status.json"));
    }
}
