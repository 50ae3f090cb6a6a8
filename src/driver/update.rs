//! The card update loop: a RAMOverHTTP session ([`crate::session`]) run against a card
//! channel ([`crate::channel::CardChannel`]: the CCID driver, or PC/SC in the agent) and an
//! HTTP client ([`HttpClient`]).
//!
//! Guarantees a caller relies on:
//! - Every C-APDU the server sends runs on the card; notifications go to the observer.
//! - A card or reader failure mid-template ends the session cleanly: the server is told
//!   (OpenSCDP `E1` in the reply, GP script status) and the promise rejects with the card's
//!   own error code.
//! - An abort posts the OpenSCDP cancel reply (`E1 "Session canceled"`) when a session is
//!   running; a GP server simply gets no further POST.
//! - Every HTTP exchange is bounded by `timeout_ms` (the cancel and abort replies by at most
//!   5 s), here and only here ([`post`], the one HTTP timeout): when it passes, the exchange's
//!   future is dropped (the browser's client aborts its `fetch` then), so a client that does
//!   not enforce a bound of its own cannot hold the update.
//! - A GP POST after the first that fails at the network level is repeated with
//!   `X-Admin-Resume: true` after each of [`RESUME_DELAYS_MS`] before the update fails.
//! - The session's own call order is kept by this loop; a slip is [`UpdateError::OutOfStep`]
//!   (code `internal`), never blamed on the card.

use crate::channel::CardChannel;
use crate::driver::sync::{race, Abort, Either, Never};
use crate::driver::usb::{Clock, LocalBoxFuture};
use crate::driver::{DriverError, ErrorCode};
use crate::proto::apdu::ResponseApdu;
use crate::proto::trace::{self, TraceFormatter};
use crate::reader::{Command, ReaderError};
use crate::session::{
    origin, Action, CallError, CardCommand, CardResult, Dialect, EndStatus, HttpRequest,
    HttpResponse, Notification, Outcome, Session, SessionConfig, SessionError, RESUME,
    TARGETED_APPLICATION,
};

/// Default bound on one HTTP exchange (the OpenSCDP server waits 60 s for a response too).
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// Waits before each `X-Admin-Resume` repetition of a GP POST that failed at the network
/// level (GP Amd B: the client resumes the session; the server decides to continue or to
/// restart it). After the last one fails the update fails with `network-error`.
pub const RESUME_DELAYS_MS: [u64; 3] = [1_000, 2_000, 4_000];

/// The largest script body accepted from a server. A template carries at most a handful of
/// APDUs of at most 64 KiB each; anything larger is refused as a bad script before decoding.
pub const MAX_SCRIPT_BYTES: usize = 1 << 20;

/// Why an HTTP exchange failed before a response arrived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The request could not be made: network, DNS, TLS, CORS (the browser does not say).
    #[error("network error: {0}")]
    Network(String),
    /// The page's Content-Security-Policy blocked the request: the browser reported a
    /// `securitypolicyviolation` for `connect-src` (CSP Level 3 §5.3) naming the server.
    #[error("the page's content security policy blocks {0}")]
    CspBlocked(String),
    /// The response body could not be read completely.
    #[error("response body broken: {0}")]
    Body(String),
    /// No response in time.
    #[error("http timeout")]
    Timeout,
    /// Cancelled.
    #[error("http request aborted")]
    Aborted,
}

/// Sends one request and returns the whole response.
pub trait HttpClient {
    /// POSTs `request`. The update loop bounds the exchange by `timeout_ms` and drops the
    /// future when it passes; a client may use the bound for resources of its own.
    fn post(
        &self,
        request: HttpRequest,
        timeout_ms: u64,
    ) -> LocalBoxFuture<Result<HttpResponse, HttpError>>;
}

/// Receives what happens during an update.
pub trait UpdateObserver {
    /// A notification from the server.
    fn notification(&self, _notification: &Notification) {}
    /// One line of the APDU trace, in the OCF layout (`78 C: 00 A4 04 04 - SELECT Lc=11`).
    fn trace(&self, _line: &str) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl UpdateObserver for Silent {}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOptions {
    /// The server's URL.
    pub url: String,
    /// The dialect.
    pub dialect: Dialect,
    /// The reader slot.
    pub slot: u8,
    /// Bound on each HTTP exchange.
    pub timeout_ms: u64,
    /// GP `X-Admin-From`.
    pub agent_id: Option<String>,
    /// Show PIN data in the trace instead of `******`.
    pub show_secrets: bool,
    /// A session id, given to the HTTP client as `Cookie: JSESSIONID=<id>` with every POST,
    /// as the OCF client does. The web client seeds its cookie jar with it once, so a
    /// server's own `Set-Cookie: JSESSIONID=…` replaces it (`crate::web::fetch`). Only where
    /// the platform lets a client set cookies (Node.js, native): browsers forbid the header
    /// and send the page's own cookies instead.
    pub session_id: Option<String>,
}

impl UpdateOptions {
    /// Options with defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            dialect: Dialect::OpenScdp,
            slot: 0,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            agent_id: None,
            show_secrets: false,
            session_id: None,
        }
    }
}

/// How an update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateResult {
    /// `completed`, or `ended-by-server` after a negative notification.
    pub status: EndStatus,
    /// C-APDUs the card ran.
    pub apdus: u32,
    /// HTTP exchanges.
    pub round_trips: u32,
    /// The last notification.
    pub last_notification: Option<Notification>,
    /// Milliseconds from start to end.
    pub duration_ms: u64,
    /// The last `X-Admin-Targeted-Application` of a GP server.
    pub targeted_application: Option<String>,
}

/// Why an update failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The reader or card failed.
    #[error(transparent)]
    Driver(DriverError),
    /// The server answered with an HTTP error.
    #[error("server answered http {status}")]
    Server {
        /// The status.
        status: u16,
    },
    /// The server's script does not decode.
    #[error("bad script from server")]
    BadScript(#[source] SessionError),
    /// The server's script is larger than [`MAX_SCRIPT_BYTES`].
    #[error("script of {size} bytes is too large")]
    ScriptTooLarge {
        /// The body's size.
        size: usize,
    },
    /// The HTTP exchange failed.
    #[error(transparent)]
    Http(HttpError),
    /// The server sent the session to another origin (a GP `X-Admin-Next-URI`): the user
    /// approved the first server only, so nothing is posted there.
    #[error("the server redirected the session to {to}, which was not approved")]
    OriginChanged {
        /// The origin the server named.
        to: String,
    },
    /// Cancelled by the caller.
    #[error("aborted")]
    Aborted,
    /// The update loop fed its session out of order: a bug in card-relay, not a fault of
    /// the card, the reader or the server.
    #[error("internal error: session out of step")]
    OutOfStep(#[source] CallError),
}

impl UpdateError {
    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Driver(e) => e.code(),
            Self::Server { .. } => ErrorCode::ServerError,
            Self::BadScript(_) | Self::ScriptTooLarge { .. } => ErrorCode::BadScript,
            Self::Http(HttpError::Timeout) => ErrorCode::Timeout,
            Self::Http(HttpError::Aborted) | Self::Aborted => ErrorCode::Aborted,
            Self::Http(HttpError::CspBlocked(_)) => ErrorCode::CspBlocked,
            Self::OutOfStep(_) => ErrorCode::Internal,
            Self::OriginChanged { .. } => ErrorCode::NotApproved,
            Self::Http(_) => ErrorCode::NetworkError,
        }
    }

    /// The HTTP status of a server error.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Server { status } => Some(*status),
            _ => None,
        }
    }
}

/// One I/O step a dialect's loop ([`RamRun`], [`super::seram::SeramRun`]) asks for. The
/// dialect loops are synchronous: they say what to do next and are fed what it gave
/// ([`Done`]); [`card_update`] alone awaits, at one point, so the update's future is one
/// small state machine whatever the dialect (issue 18: the bundle).
#[derive(Debug)]
pub(super) enum Io {
    /// Power the card on: there is no ATR yet. Gives [`Done::Atr`].
    PowerOn,
    /// Run a command on the card, traced. Gives [`Done::Card`].
    Card(CardCommand),
    /// POST `request`, bounded by `timeout_ms`; the signal ends it when `abortable`. Gives
    /// [`Done::Http`].
    Post {
        /// The request.
        request: HttpRequest,
        /// Bound on the exchange.
        timeout_ms: u64,
        /// Whether the caller's signal ends the exchange.
        abortable: bool,
    },
    /// Sleep until the clock reads `until_ms`, or until the signal fires. Gives
    /// [`Done::Slept`].
    Sleep {
        /// The end of the pause, in clock milliseconds.
        until_ms: u64,
    },
}

/// What an [`Io`] gave.
#[derive(Debug)]
pub(super) enum Done {
    /// The ATR of [`Io::PowerOn`].
    Atr(Result<Vec<u8>, DriverError>),
    /// The card's answer to [`Io::Card`].
    Card(Result<CardResult, DriverError>),
    /// The server's answer to [`Io::Post`].
    Http(Result<HttpResponse, UpdateError>),
    /// [`Io::Sleep`] ended (in time, or by the signal).
    Slept,
}

/// What a dialect's loop says next.
#[derive(Debug)]
pub(super) enum Step {
    /// Perform this, then feed what it gave.
    Io(Io),
    /// The update is over.
    End(Result<UpdateResult, UpdateError>),
}

/// What a dialect's loop sees at each step besides what its last [`Io`] gave.
pub(super) struct Cx<'a> {
    /// The clock's reading.
    pub(super) now: u64,
    /// Whether the caller's signal fired.
    pub(super) aborted: bool,
    /// Where notifications and trace lines go.
    pub(super) observer: &'a dyn UpdateObserver,
}

/// The loop of a dialect, one per update.
enum Run<'a> {
    Ram(RamRun<'a>),
    Seram(super::seram::SeramRun<'a>),
}

/// Runs a whole card update session.
pub async fn card_update<C: CardChannel + ?Sized>(
    driver: &C,
    http: &dyn HttpClient,
    clock: &dyn Clock,
    options: &UpdateOptions,
    observer: &dyn UpdateObserver,
    abort: Option<&Abort>,
) -> Result<UpdateResult, UpdateError> {
    let started = clock.now();
    let slot = options.slot;
    let tracer = TraceFormatter {
        slot_id: trace::slot_id(&driver.reader_name(), slot),
        show_secrets: options.show_secrets,
    };
    let mut run = match options.dialect {
        Dialect::Seram => Run::Seram(super::seram::SeramRun::new(options, started)?),
        _ => Run::Ram(RamRun::new(options, started)),
    };
    let mut done = None;
    // INVARIANT: the only await of the update: one future type for every kind of wait.
    loop {
        let cx = Cx {
            now: clock.now(),
            aborted: abort.is_some_and(Abort::is_aborted),
            observer,
        };
        let step = match &mut run {
            Run::Ram(r) => r.step(done.take(), &cx),
            Run::Seram(r) => r.step(done.take(), &cx),
        };
        match step {
            Step::End(result) => return result,
            Step::Io(io) => {
                done = Some(perform(driver, http, clock, &tracer, observer, slot, abort, io).await);
            }
        }
    }
}

/// Performs one [`Io`].
#[allow(clippy::too_many_arguments)]
async fn perform<C: CardChannel + ?Sized>(
    driver: &C,
    http: &dyn HttpClient,
    clock: &dyn Clock,
    tracer: &TraceFormatter,
    observer: &dyn UpdateObserver,
    slot: u8,
    abort: Option<&Abort>,
    io: Io,
) -> Done {
    match io {
        Io::PowerOn => Done::Atr(driver.power_on(slot, abort).await),
        Io::Card(command) => {
            Done::Card(run_card(driver, tracer, observer, slot, command, abort).await)
        }
        Io::Post {
            request,
            timeout_ms,
            abortable,
        } => {
            let signal = if abortable { abort } else { None };
            Done::Http(post(http, clock, request, timeout_ms, signal).await)
        }
        Io::Sleep { until_ms } => {
            let mut sleep = clock.sleep(until_ms.saturating_sub(clock.now()));
            let mut aborted: LocalBoxFuture<()> = match abort {
                Some(a) => Box::pin(a.wait()),
                None => Box::pin(Never),
            };
            // An abort is seen by the dialect's next step.
            let _ = race(&mut sleep, &mut aborted).await;
            Done::Slept
        }
    }
}

/// A [`Done`] that is not what the [`Io`] asked for: a slip of the loop, never the peer's.
pub(super) fn out_of_step() -> Step {
    Step::End(Err(UpdateError::OutOfStep(CallError::UnexpectedCardResult)))
}

/// The session's ATR, from an [`Io::PowerOn`] first: `CardChannel::power_on`, the one place
/// that decides whether the card must be activated (an active card keeps its state and
/// answers its ATR). `Err` carries the step to return.
pub(super) fn atr_from(asked: bool, done: Option<Done>) -> Result<Vec<u8>, Step> {
    match (asked, done) {
        (false, None) => Err(Step::Io(Io::PowerOn)),
        (true, Some(Done::Atr(Ok(atr)))) => Ok(atr),
        (true, Some(Done::Atr(Err(DriverError::Aborted)))) => {
            Err(Step::End(Err(UpdateError::Aborted)))
        }
        (true, Some(Done::Atr(Err(e)))) => Err(Step::End(Err(UpdateError::Driver(e)))),
        _ => Err(out_of_step()),
    }
}

/// What the OpenSCDP / GP loop waits for.
#[derive(Debug)]
enum Wait {
    /// Nothing: poll the session (or start it).
    Nothing,
    /// The ATR of the power-on.
    PowerOn,
    /// The card's answer.
    Card,
    /// The server's answer; `resume` is the request to repeat with `X-Admin-Resume` when
    /// the POST fails at the network level (GP, after the first exchange), `attempt` the
    /// repetitions so far.
    Post {
        resume: Option<HttpRequest>,
        attempt: usize,
    },
    /// The pause before repetition `attempt` + 1 of `request`.
    Resume {
        request: HttpRequest,
        attempt: usize,
    },
    /// A last POST telling the server (the cancel reply, the abort reply): the update then
    /// ends with this error, whatever the answer.
    Last(UpdateError),
}

/// The loop of the OpenSCDP and GP Amd B dialects over a [`Session`].
struct RamRun<'a> {
    options: &'a UpdateOptions,
    /// The origin the session is held to: `options.url`'s, read once.
    origin: Option<String>,
    started: u64,
    session: Option<Session>,
    wait: Wait,
    last_notification: Option<Notification>,
    // The first card failure of the session, kept to reject with its own code once the
    // server has been told.
    card_failure: Option<DriverError>,
}

impl<'a> RamRun<'a> {
    fn new(options: &'a UpdateOptions, started: u64) -> Self {
        Self {
            options,
            origin: origin(&options.url),
            started,
            session: None,
            wait: Wait::Nothing,
            last_notification: None,
            card_failure: None,
        }
    }

    fn step(&mut self, done: Option<Done>, cx: &Cx<'_>) -> Step {
        let options = self.options;
        let Some(session) = &mut self.session else {
            let asked = matches!(self.wait, Wait::PowerOn);
            match atr_from(asked, done) {
                Ok(atr) => {
                    self.wait = Wait::Nothing;
                    self.session = Some(Session::new(SessionConfig {
                        dialect: options.dialect,
                        url: options.url.clone(),
                        atr,
                        max_capdu: Some(65_544),
                        max_rapdu: Some(65_538),
                        agent_id: options.agent_id.clone(),
                    }));
                    return self.step(None, cx);
                }
                Err(step) => {
                    self.wait = Wait::PowerOn;
                    return step;
                }
            }
        };
        match (std::mem::replace(&mut self.wait, Wait::Nothing), done) {
            (Wait::Nothing, None) => {}
            (Wait::Last(error), Some(Done::Http(_))) => return Step::End(Err(error)),
            (Wait::Card, Some(Done::Card(result))) => {
                let card_result = match result {
                    Ok(r) => r,
                    Err(DriverError::Aborted) => return cancel(session, &mut self.wait, options),
                    Err(e) => card_failed(e, &mut self.card_failure),
                };
                if let Err(e) = session.on_card_response(card_result) {
                    return Step::End(Err(UpdateError::OutOfStep(e)));
                }
            }
            (Wait::Post { resume, attempt }, Some(Done::Http(result))) => match result {
                Err(UpdateError::Http(HttpError::Network(_) | HttpError::Body(_)))
                    if resume.is_some() && attempt < RESUME_DELAYS_MS.len() =>
                {
                    if let Some(request) = resume {
                        self.wait = Wait::Resume { request, attempt };
                    }
                    let until_ms = cx.now.saturating_add(RESUME_DELAYS_MS[attempt]);
                    return Step::Io(Io::Sleep { until_ms });
                }
                Ok(r) if r.body.len() > MAX_SCRIPT_BYTES => {
                    let error = UpdateError::ScriptTooLarge { size: r.body.len() };
                    return tell_server(
                        session,
                        &mut self.wait,
                        options,
                        "script too large",
                        error,
                    );
                }
                Ok(r) => {
                    if let Some(target) = r.header(TARGETED_APPLICATION) {
                        cx.observer
                            .trace(&concat([TARGETED_APPLICATION, ": ", target]));
                    }
                    if let Err(e) = session.on_http_response(r) {
                        return Step::End(Err(UpdateError::OutOfStep(e)));
                    }
                }
                Err(UpdateError::Aborted) => return cancel(session, &mut self.wait, options),
                Err(e @ UpdateError::Http(HttpError::Timeout)) => {
                    // The server may still be there: tell it the client gives up.
                    return tell_server(session, &mut self.wait, options, "no answer in time", e);
                }
                Err(e) => return Step::End(Err(e)),
            },
            (Wait::Resume { request, attempt }, Some(Done::Slept)) => {
                if cx.aborted {
                    return cancel(session, &mut self.wait, options);
                }
                let n = ["1", "2", "3"].get(attempt).copied().unwrap_or("?");
                cx.observer
                    .trace(&concat([RESUME, ": true (attempt ", n, " of 3)"]));
                self.wait = Wait::Post {
                    resume: Some(request.clone()),
                    attempt: attempt + 1,
                };
                return Step::Io(Io::Post {
                    request,
                    timeout_ms: options.timeout_ms,
                    abortable: true,
                });
            }
            _ => return out_of_step(),
        }
        loop {
            if cx.aborted {
                return cancel(session, &mut self.wait, options);
            }
            let action = match session.poll() {
                Ok(action) => action,
                Err(e) => return Step::End(Err(UpdateError::OutOfStep(e))),
            };
            match action {
                Action::Post(request) => {
                    // Fail closed: a next URI whose origin cannot be read (`https:\\host`,
                    // `https:host`, a percent-encoded host) is one `fetch` may still send
                    // to another host, so it is refused like a visible change of origin.
                    let next = origin(&request.url);
                    if next.is_none() || next != self.origin {
                        let to = next.unwrap_or_else(|| without_query(&request.url).to_owned());
                        return Step::End(Err(UpdateError::OriginChanged { to }));
                    }
                    let request = with_cookie(request, options);
                    // GP Amd B resume applies inside a session: after the first exchange.
                    let resumable =
                        options.dialect == Dialect::GlobalPlatform && session.round_trips() > 0;
                    let resume = resumable.then(|| {
                        let mut resume = request.clone();
                        resume.headers.push((RESUME.to_owned(), "true".to_owned()));
                        resume
                    });
                    self.wait = Wait::Post { resume, attempt: 0 };
                    return Step::Io(Io::Post {
                        request,
                        timeout_ms: options.timeout_ms,
                        abortable: true,
                    });
                }
                Action::Card(command) => {
                    self.wait = Wait::Card;
                    return Step::Io(Io::Card(command));
                }
                Action::Notify(n) => {
                    cx.observer.notification(&n);
                    self.last_notification = Some(n);
                }
                Action::Done(outcome) => {
                    let last = self.last_notification.take();
                    return finished(outcome, last, cx.now.saturating_sub(self.started));
                }
                Action::Failed(error) => {
                    return match failed(&mut self.card_failure, error) {
                        Ok(error) => Step::End(Err(error)),
                        Err(other) => {
                            // Tell the server its script could not be read (OpenSCDP: an AB
                            // reply with E1; GP already posted script-format-error itself).
                            let reason = other.to_string();
                            let error = UpdateError::BadScript(other);
                            tell_server(session, &mut self.wait, options, &reason, error)
                        }
                    };
                }
            }
        }
    }
}

/// The end of a session that ended normally, for either dialect's loop.
pub(super) fn finished(
    outcome: Outcome,
    last_notification: Option<Notification>,
    duration_ms: u64,
) -> Step {
    Step::End(Ok(UpdateResult {
        status: outcome.status,
        apdus: outcome.apdus,
        round_trips: outcome.round_trips,
        last_notification,
        duration_ms,
        targeted_application: outcome.targeted_application,
    }))
}

/// The error a failed session ends the update with where every dialect agrees: the first
/// card failure (the server has been told; the card's own code wins), the server's HTTP
/// error, a cancel. `Err` gives back the dialect's own failures.
pub(super) fn failed(
    card_failure: &mut Option<DriverError>,
    error: SessionError,
) -> Result<UpdateError, SessionError> {
    if let Some(e) = card_failure.take() {
        return Ok(UpdateError::Driver(e));
    }
    match error {
        SessionError::Server { status } => Ok(UpdateError::Server { status }),
        SessionError::Canceled => Ok(UpdateError::Aborted),
        other => Err(other),
    }
}

/// Joins `parts` into one string: no `core::fmt`, and one non-generic body for every
/// caller (`[&str]::concat` is an instance of `join` per element type; issue 18).
pub(crate) fn concat<const N: usize>(parts: [&str; N]) -> String {
    join(&parts)
}

fn join(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// The OpenSCDP abort reply (`E1` with `reason`) where the dialect has one, bounded in time,
/// its outcome ignored: the update then ends with `error`.
fn tell_server(
    session: &Session,
    wait: &mut Wait,
    options: &UpdateOptions,
    reason: &str,
    error: UpdateError,
) -> Step {
    let request = session.abort_request(&concat(["card-relay: ", reason]));
    last_post(wait, request, options, error)
}

/// Tells the server the session is cancelled where the dialect allows (OpenSCDP), bounded
/// by the usual timeout; the update then ends as aborted.
fn cancel(session: &mut Session, wait: &mut Wait, options: &UpdateOptions) -> Step {
    let request = session.cancel();
    last_post(wait, request, options, UpdateError::Aborted)
}

fn last_post(
    wait: &mut Wait,
    request: Option<HttpRequest>,
    options: &UpdateOptions,
    error: UpdateError,
) -> Step {
    let Some(request) = request else {
        return Step::End(Err(error));
    };
    *wait = Wait::Last(error);
    Step::Io(Io::Post {
        request: with_cookie(request, options),
        timeout_ms: options.timeout_ms.min(5_000),
        abortable: false,
    })
}

/// Adds `Cookie: JSESSIONID=<id>` when the caller gave a session id (the OCF client's way).
/// `url` up to its query or fragment (what an error may show of an address it refused).
fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url.get(..end).unwrap_or(url)
}

fn with_cookie(mut request: HttpRequest, options: &UpdateOptions) -> HttpRequest {
    if let Some(id) = &options.session_id {
        request
            .headers
            .push(("Cookie".to_owned(), concat(["JSESSIONID=", id])));
    }
    request
}

/// A card failure during a template: the server hears its text, the first one is kept for
/// the caller (the session's own failure is reported with the card's error code).
pub(super) fn card_failed(error: DriverError, first: &mut Option<DriverError>) -> CardResult {
    let text = error.to_string();
    first.get_or_insert(error);
    CardResult::Error(text)
}

async fn run_card<C: CardChannel + ?Sized>(
    driver: &C,
    tracer: &TraceFormatter,
    observer: &dyn UpdateObserver,
    slot: u8,
    command: CardCommand,
    abort: Option<&Abort>,
) -> Result<CardResult, DriverError> {
    match command {
        // The OCF trace shows no line for a reset (see the seed's trace).
        CardCommand::Reset => Ok(CardResult::Atr(driver.reset(slot, abort).await?)),
        CardCommand::Apdu(apdu) => {
            // Parsed once, here, where the server's command enters: the trace and every
            // channel read this parse. A command that does not parse reaches no card.
            let command =
                Command::parse(apdu).map_err(|e| DriverError::Reader(ReaderError::Apdu(e)))?;
            for line in tracer.command(command.apdu()).lines() {
                observer.trace(line);
            }
            let r = driver.transmit(slot, command, abort).await?;
            if let Ok(rsp) = ResponseApdu::parse(&r) {
                for line in tracer.response(&rsp).lines() {
                    observer.trace(line);
                }
            }
            Ok(CardResult::Response(r))
        }
    }
}

async fn post(
    http: &dyn HttpClient,
    clock: &dyn Clock,
    request: HttpRequest,
    timeout_ms: u64,
    abort: Option<&Abort>,
) -> Result<HttpResponse, UpdateError> {
    let mut exchange = http.post(request, timeout_ms);
    // The one HTTP timeout: the client need not enforce one of its own.
    let mut timer = clock.sleep(timeout_ms);
    let mut aborted: LocalBoxFuture<()> = match abort {
        Some(a) => Box::pin(a.wait()),
        None => Box::pin(Never),
    };
    match race(&mut exchange, race(&mut timer, &mut aborted)).await {
        Either::Left(Ok(r)) => Ok(r),
        Either::Left(Err(HttpError::Aborted)) | Either::Right(Either::Right(())) => {
            Err(UpdateError::Aborted)
        }
        Either::Left(Err(e)) => Err(UpdateError::Http(e)),
        Either::Right(Either::Left(())) => Err(UpdateError::Http(HttpError::Timeout)),
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::test;

    use super::{origin, CallError, ErrorCode, HttpError, UpdateError};

    #[test]
    fn session_out_of_step_is_an_internal_error_not_a_card_problem() {
        // A loop bug must not send the user to reinsert the card (the protocol hint).
        for call in [
            CallError::AwaitingHttpResponse,
            CallError::AwaitingCardResult,
            CallError::Finished,
        ] {
            let e = UpdateError::OutOfStep(call);
            assert_eq!(e.code(), ErrorCode::Internal);
            assert_eq!(e.code().as_str(), "internal");
            assert!(!e.code().hint().contains("reinsert"), "{}", e.code().hint());
            assert!(e.code().hint().contains("bug"));
        }
        assert_eq!(
            UpdateError::Http(HttpError::CspBlocked("https://a.example".into())).code(),
            ErrorCode::CspBlocked
        );
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://a.example/rt/x?y=1").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin("https://a.example?x").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(origin("/rt/test"), None);
        assert_eq!(origin("rt/test"), None);
        assert_eq!(origin("://x"), None);
    }
}
