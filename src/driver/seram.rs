//! The card update loop of the GP SERAM dialect: a [`SeramSession`] run against a reader
//! and an HTTP client, with its pauses taken on the [`Clock`]. [`super::update::card_update`]
//! hands every `Dialect::Seram` update to [`card_update`] here.
//!
//! Guarantees a caller relies on, beyond those of the other dialects:
//! - The pauses the session asks for (the Order's `delay`, the retry back-off) are slept
//!   on the clock and end early on abort.
//! - A request that fails or outlives its bound is not an error at once: it goes back to
//!   the session, which retries it for up to 5 minutes.
//! - `options.session_id` is the SERAM `sessionId` (required; the JS layer and the agent
//!   refuse an update without one), sent as a query parameter, never as a cookie.
//! - An abort after the handshake posts the `UNKNOWN_FAILURE` "session canceled" Report.

use crate::channel::CardChannel;
use crate::driver::sync::{race, Abort, Never};
use crate::driver::update::{
    card_failed, post, power_on, run_card, HttpClient, HttpError, UpdateError, UpdateObserver,
    UpdateOptions, UpdateResult,
};
use crate::driver::usb::{Clock, LocalBoxFuture};
use crate::driver::DriverError;
use crate::proto::trace::{self, TraceFormatter};
use crate::session::seram::{
    SeramAction, SeramConfig, SeramError, SeramSession, TransportFailure, RESPONSE_TIMEOUT_MS,
};
use crate::session::{Dialect, SessionError};

/// Options for a SERAM update of the Remote Agent at `url` (the endpoint base) under
/// `session_id`, with the binding's 40 s response timeout; the agent's `--dialect seram
/// -s <id>` maps to this.
pub fn options(url: impl Into<String>, session_id: impl Into<String>) -> UpdateOptions {
    let mut options = UpdateOptions::new(url);
    options.dialect = Dialect::Seram;
    options.session_id = Some(session_id.into());
    options.timeout_ms = RESPONSE_TIMEOUT_MS;
    options
}

/// Runs a whole SERAM session; `options.timeout_ms` bounds each exchange (the JS layer
/// and the agent default it to 40 s for this dialect, the binding's response timeout).
pub async fn card_update<C: CardChannel + ?Sized>(
    driver: &C,
    http: &dyn HttpClient,
    clock: &dyn Clock,
    options: &UpdateOptions,
    observer: &dyn UpdateObserver,
    abort: Option<&Abort>,
) -> Result<UpdateResult, UpdateError> {
    let started = clock.now();
    let Some(session_id) = options.session_id.clone() else {
        let error = SessionError::Seram(SeramError::MissingSessionId);
        return Err(UpdateError::BadScript(error));
    };
    let slot = options.slot;
    let tracer = TraceFormatter {
        slot_id: trace::slot_id(&driver.reader_name(), slot),
        show_secrets: options.show_secrets,
    };
    let atr = power_on(driver, slot, abort).await?;
    let mut config = SeramConfig::new(options.url.clone(), session_id, &atr);
    config.response_timeout_ms = options.timeout_ms;
    let mut session = SeramSession::new(config);
    let mut last_notification = None;
    let mut card_failure: Option<DriverError> = None;
    // Set once the signal fired: the cancel Report (if any) is the last request.
    let mut canceled = false;
    // INVARIANT: one await point per kind of wait (a request, a pause, the card), so the
    // future stays small in the wasm bundle.
    loop {
        let action = if !canceled && abort.is_some_and(Abort::is_aborted) {
            canceled = true;
            match session.cancel() {
                Some(exchange) => SeramAction::Post(exchange),
                None => return Err(UpdateError::Aborted),
            }
        } else {
            session.poll(clock.now()).map_err(UpdateError::OutOfStep)?
        };
        match action {
            SeramAction::Post(exchange) => {
                let signal = if canceled { None } else { abort };
                let result = post(http, clock, exchange.request, exchange.timeout_ms, signal).await;
                let now = clock.now();
                match result {
                    // The cancel Report's answer is not read.
                    _ if canceled => return Err(UpdateError::Aborted),
                    Ok(response) => session.on_http_response(response, now),
                    Err(UpdateError::Http(HttpError::Timeout)) => {
                        session.on_http_failure(TransportFailure::Timeout, now)
                    }
                    Err(UpdateError::Http(e)) => {
                        let failure = TransportFailure::Network(e.to_string());
                        session.on_http_failure(failure, now)
                    }
                    // The signal fired: the cancel Report goes next.
                    Err(UpdateError::Aborted) if abort.is_some_and(Abort::is_aborted) => continue,
                    Err(e) => return Err(e),
                }
                .map_err(UpdateError::OutOfStep)?;
            }
            SeramAction::Wait { until_ms } => {
                let mut sleep = clock.sleep(until_ms.saturating_sub(clock.now()));
                let mut aborted: LocalBoxFuture<()> = match abort {
                    Some(a) => Box::pin(a.wait()),
                    None => Box::pin(Never),
                };
                // An abort is seen at the top of the loop.
                let _ = race(&mut sleep, &mut aborted).await;
            }
            SeramAction::Card(command) => {
                let card_result = match run_card(driver, &tracer, observer, slot, command, abort)
                    .await
                {
                    Ok(r) => r,
                    // The signal fired: the cancel Report goes next.
                    Err(DriverError::Aborted) if abort.is_some_and(Abort::is_aborted) => continue,
                    Err(e) => card_failed(e, &mut card_failure),
                };
                session
                    .on_card_response(card_result)
                    .map_err(UpdateError::OutOfStep)?;
            }
            SeramAction::Notify(n) => {
                observer.notification(&n);
                last_notification = Some(n);
            }
            SeramAction::Done(outcome) => {
                return Ok(UpdateResult {
                    status: outcome.status,
                    apdus: outcome.apdus,
                    round_trips: outcome.round_trips,
                    last_notification,
                    duration_ms: clock.now().saturating_sub(started),
                    targeted_application: None,
                });
            }
            SeramAction::Failed(error) => {
                if let Some(e) = card_failure {
                    return Err(UpdateError::Driver(e));
                }
                return Err(match error {
                    SessionError::Server { status } => UpdateError::Server { status },
                    SessionError::Canceled => UpdateError::Aborted,
                    SessionError::Seram(SeramError::Unreachable {
                        timed_out: true, ..
                    }) => UpdateError::Http(HttpError::Timeout),
                    SessionError::Seram(SeramError::Unreachable { last, .. }) => {
                        UpdateError::Http(HttpError::Network(last))
                    }
                    other => UpdateError::BadScript(other),
                });
            }
        }
    }
}
