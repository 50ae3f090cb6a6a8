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
//! - Every HTTP exchange is bounded by `timeout_ms`, here and only here ([`post`]): when it
//!   passes the exchange's future is dropped (the browser's client aborts its `fetch` then).
//! - A GP POST after the first that fails at the network level is repeated with
//!   `X-Admin-Resume: true` after each of [`RESUME_DELAYS_MS`] before the update fails.
//! - The session's own call order is kept by this loop; a slip is [`UpdateError::OutOfStep`]
//!   (code `internal`), never blamed on the card.

use crate::channel::CardChannel;
use crate::driver::sync::{race, Abort, Either, Never};
use crate::driver::usb::{Clock, LocalBoxFuture};
use crate::driver::{DriverError, ErrorCode};
use crate::proto::apdu::{CommandApdu, ResponseApdu};
use crate::proto::trace::{self, TraceFormatter};
use crate::session::{
    origin, Action, CallError, CardCommand, CardResult, Dialect, EndStatus, HttpRequest,
    HttpResponse, Notification, Session, SessionConfig, SessionError, RESUME, TARGETED_APPLICATION,
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

/// Runs a whole card update session.
pub async fn card_update<C: CardChannel + ?Sized>(
    driver: &C,
    http: &dyn HttpClient,
    clock: &dyn Clock,
    options: &UpdateOptions,
    observer: &dyn UpdateObserver,
    abort: Option<&Abort>,
) -> Result<UpdateResult, UpdateError> {
    if options.dialect == Dialect::Seram {
        return super::seram::card_update(driver, http, clock, options, observer, abort).await;
    }
    let started = clock.now();
    let slot = options.slot;
    let tracer = TraceFormatter {
        slot_id: trace::slot_id(&driver.reader_name(), slot),
        show_secrets: options.show_secrets,
    };
    let atr = match driver.atr(slot) {
        Some(atr) => atr,
        None => power_on(driver, slot, abort).await?,
    };
    let mut session = Session::new(SessionConfig {
        dialect: options.dialect,
        url: options.url.clone(),
        atr,
        max_capdu: Some(65_544),
        max_rapdu: Some(65_538),
        agent_id: options.agent_id.clone(),
    });
    let mut last_notification = None;
    // The first card failure of the session, kept to reject with its own code once the
    // server has been told.
    let mut card_failure: Option<DriverError> = None;
    loop {
        if abort.is_some_and(Abort::is_aborted) {
            return Err(cancel(&mut session, http, clock, options).await);
        }
        let action = session.poll().map_err(UpdateError::OutOfStep)?;
        match action {
            Action::Post(request) => {
                if let (Some(first), Some(next)) = (origin(&options.url), origin(&request.url)) {
                    if first != next {
                        return Err(UpdateError::OriginChanged { to: next });
                    }
                }
                let request = with_cookie(request, options);
                // GP Amd B resume applies inside a session: after the first exchange.
                let resumable =
                    options.dialect == Dialect::GlobalPlatform && session.round_trips() > 0;
                let response =
                    post_resuming(http, clock, request, options, abort, observer, resumable).await;
                match response {
                    Ok(r) if r.body.len() > MAX_SCRIPT_BYTES => {
                        let size = r.body.len();
                        tell_server(&session, http, clock, options, "script too large").await;
                        return Err(UpdateError::ScriptTooLarge { size });
                    }
                    Ok(r) => {
                        trace_targeted_application(observer, &r);
                        session
                            .on_http_response(r)
                            .map_err(UpdateError::OutOfStep)?;
                    }
                    Err(UpdateError::Aborted) => {
                        return Err(cancel(&mut session, http, clock, options).await);
                    }
                    Err(e @ UpdateError::Http(HttpError::Timeout)) => {
                        // The server may still be there: tell it the client gives up.
                        tell_server(&session, http, clock, options, "no answer in time").await;
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            Action::Card(command) => {
                let result = run_card(driver, &tracer, observer, slot, command, abort).await;
                let card_result = match result {
                    Ok(r) => r,
                    Err(DriverError::Aborted) => {
                        return Err(cancel(&mut session, http, clock, options).await);
                    }
                    Err(e) => card_failed(e, &mut card_failure),
                };
                session
                    .on_card_response(card_result)
                    .map_err(UpdateError::OutOfStep)?;
            }
            Action::Notify(n) => {
                observer.notification(&n);
                last_notification = Some(n);
            }
            Action::Done(outcome) => {
                return Ok(UpdateResult {
                    status: outcome.status,
                    apdus: outcome.apdus,
                    round_trips: outcome.round_trips,
                    last_notification,
                    duration_ms: clock.now().saturating_sub(started),
                    targeted_application: outcome.targeted_application,
                });
            }
            Action::Failed(error) => {
                if let Some(e) = card_failure {
                    return Err(UpdateError::Driver(e));
                }
                return Err(match error {
                    SessionError::Server { status } => UpdateError::Server { status },
                    SessionError::Canceled => UpdateError::Aborted,
                    other => {
                        // Tell the server its script could not be read (OpenSCDP: an AB
                        // reply with E1; GP already posted script-format-error itself).
                        tell_server(&session, http, clock, options, &other.to_string()).await;
                        UpdateError::BadScript(other)
                    }
                });
            }
        }
    }
}

/// Posts the OpenSCDP abort reply (`E1` with `reason`) where the dialect has one, bounded
/// in time, ignoring its outcome: the session is over either way.
async fn tell_server(
    session: &Session,
    http: &dyn HttpClient,
    clock: &dyn Clock,
    options: &UpdateOptions,
    reason: &str,
) {
    if let Some(request) = session.abort_request(&format!("card-relay: {reason}")) {
        let request = with_cookie(request, options);
        let timeout = options.timeout_ms.min(5_000);
        let _ = post(http, clock, request, timeout, None).await;
    }
}

/// Shows a GP server's `X-Admin-Targeted-Application` in the trace.
fn trace_targeted_application(observer: &dyn UpdateObserver, response: &HttpResponse) {
    if let Some(target) = response.header(TARGETED_APPLICATION) {
        observer.trace(&format!("{TARGETED_APPLICATION}: {target}"));
    }
}

/// [`post`], and when `resumable` (a GP session under way) and the POST fails at the network
/// level, the same request again with `X-Admin-Resume: true` after each of
/// [`RESUME_DELAYS_MS`]; the last failure is returned. Timeouts and aborts end at once.
async fn post_resuming(
    http: &dyn HttpClient,
    clock: &dyn Clock,
    request: HttpRequest,
    options: &UpdateOptions,
    abort: Option<&Abort>,
    observer: &dyn UpdateObserver,
    resumable: bool,
) -> Result<HttpResponse, UpdateError> {
    let first = post(http, clock, request.clone(), options.timeout_ms, abort).await;
    if !resumable {
        return first;
    }
    let mut result = first;
    let mut resume = request;
    resume.headers.push((RESUME.to_owned(), "true".to_owned()));
    for (attempt, delay) in RESUME_DELAYS_MS.iter().enumerate() {
        if !matches!(
            result,
            Err(UpdateError::Http(
                HttpError::Network(_) | HttpError::Body(_)
            ))
        ) {
            break;
        }
        let mut timer = clock.sleep(*delay);
        let mut aborted: LocalBoxFuture<()> = match abort {
            Some(a) => Box::pin(a.wait()),
            None => Box::pin(Never),
        };
        if let Either::Right(()) = race(&mut timer, &mut aborted).await {
            return Err(UpdateError::Aborted);
        }
        observer.trace(&format!("{RESUME}: true (attempt {} of 3)", attempt + 1));
        result = post(http, clock, resume.clone(), options.timeout_ms, abort).await;
    }
    result
}

/// Adds `Cookie: JSESSIONID=<id>` when the caller gave a session id (the OCF client's way).
fn with_cookie(mut request: HttpRequest, options: &UpdateOptions) -> HttpRequest {
    if let Some(id) = &options.session_id {
        request
            .headers
            .push(("Cookie".to_owned(), format!("JSESSIONID={id}")));
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

pub(super) async fn power_on<C: CardChannel + ?Sized>(
    driver: &C,
    slot: u8,
    abort: Option<&Abort>,
) -> Result<Vec<u8>, UpdateError> {
    match driver.power_on(slot, abort).await {
        Ok(atr) => Ok(atr),
        Err(DriverError::Aborted) => Err(UpdateError::Aborted),
        Err(e) => Err(UpdateError::Driver(e)),
    }
}

pub(super) async fn run_card<C: CardChannel + ?Sized>(
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
            let parsed = CommandApdu::parse(&apdu).ok();
            if let Some(c) = &parsed {
                for line in tracer.command(c).lines() {
                    observer.trace(line);
                }
            }
            let r = driver.transmit(slot, apdu, abort).await?;
            if let Ok(rsp) = ResponseApdu::parse(&r) {
                for line in tracer.response(&rsp).lines() {
                    observer.trace(line);
                }
            }
            Ok(CardResult::Response(r))
        }
    }
}

pub(super) async fn post(
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

/// Tells the server the session is cancelled where the dialect allows (OpenSCDP), bounded
/// by the usual timeout, and returns the abort error.
async fn cancel(
    session: &mut Session,
    http: &dyn HttpClient,
    clock: &dyn Clock,
    options: &UpdateOptions,
) -> UpdateError {
    if let Some(request) = session.cancel() {
        let request = with_cookie(request, options);
        let _ = post(http, clock, request, options.timeout_ms.min(5_000), None).await;
    }
    UpdateError::Aborted
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
