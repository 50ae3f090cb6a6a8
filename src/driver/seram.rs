//! The card update loop of the GP SERAM dialect: a [`SeramSession`] run against a reader
//! and an HTTP client, with its pauses taken on the clock. [`super::update::card_update`]
//! hands every `Dialect::Seram` update to [`SeramRun`] here.
//!
//! Guarantees a caller relies on, beyond those of the other dialects:
//! - The pauses the session asks for (the Order's `delay`, the retry back-off) are slept
//!   on the clock and end early on abort.
//! - A request that fails or outlives its bound is not an error at once: it goes back to
//!   the session, which retries it for up to 5 minutes.
//! - `options.session_id` is the SERAM `sessionId` (required; the JS layer and the agent
//!   refuse an update without one), sent as a query parameter, never as a cookie.
//! - An abort after the handshake posts the `UNKNOWN_FAILURE` "session canceled" Report.

use crate::driver::update::{
    atr_from, card_failed, failed, finished, out_of_step, Cx, Done, HttpError, Io, Step,
    UpdateError, UpdateOptions,
};
use crate::driver::DriverError;
use crate::session::seram::{
    SeramAction, SeramConfig, SeramError, SeramSession, TransportFailure, RESPONSE_TIMEOUT_MS,
};
use crate::session::{Dialect, Notification, SessionError};

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

/// What the SERAM loop waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Nothing,
    PowerOn,
    Post,
    Sleep,
    Card,
}

/// The loop of a SERAM update over a [`SeramSession`], driven by
/// [`super::update::card_update`] (which hands it every `Dialect::Seram` update);
/// `options.timeout_ms` bounds each exchange (the JS layer and the agent default it to 40 s
/// for this dialect, the binding's response timeout).
pub(super) struct SeramRun<'a> {
    options: &'a UpdateOptions,
    started: u64,
    session_id: String,
    atr: Option<Vec<u8>>,
    session: Option<SeramSession>,
    wait: Wait,
    // Set once the signal fired: the cancel Report (if any) is the last request.
    canceled: bool,
    last_notification: Option<Notification>,
    card_failure: Option<DriverError>,
}

impl<'a> SeramRun<'a> {
    /// The loop of `options`' session, or why it cannot start (no session id).
    pub(super) fn new(
        options: &'a UpdateOptions,
        started: u64,
        atr: Option<Vec<u8>>,
    ) -> Result<Self, UpdateError> {
        let Some(session_id) = options.session_id.clone() else {
            let error = SessionError::Seram(SeramError::MissingSessionId);
            return Err(UpdateError::BadScript(error));
        };
        Ok(Self {
            options,
            started,
            session_id,
            atr,
            session: None,
            wait: Wait::Nothing,
            canceled: false,
            last_notification: None,
            card_failure: None,
        })
    }

    /// Feeds what the last [`Io`] gave and says what to do next.
    pub(super) fn step(&mut self, done: Option<Done>, cx: &Cx<'_>) -> Step {
        let Some(session) = &mut self.session else {
            let asked = self.wait == Wait::PowerOn;
            match atr_from(&mut self.atr, asked, done) {
                Ok(atr) => {
                    let url = self.options.url.clone();
                    let mut config = SeramConfig::new(url, self.session_id.clone(), &atr);
                    config.response_timeout_ms = self.options.timeout_ms;
                    self.session = Some(SeramSession::new(config));
                    self.wait = Wait::Nothing;
                    return self.step(None, cx);
                }
                Err(step) => {
                    self.wait = Wait::PowerOn;
                    return step;
                }
            }
        };
        let now = cx.now;
        let fed = match (std::mem::replace(&mut self.wait, Wait::Nothing), done) {
            (Wait::Nothing, None) | (Wait::Sleep, Some(Done::Slept)) => Ok(()),
            // The cancel Report's answer is not read.
            (Wait::Post, Some(Done::Http(_))) if self.canceled => {
                return Step::End(Err(UpdateError::Aborted))
            }
            (Wait::Post, Some(Done::Http(result))) => match result {
                Ok(response) => session.on_http_response(response, now),
                Err(UpdateError::Http(HttpError::Timeout)) => {
                    session.on_http_failure(TransportFailure::Timeout, now)
                }
                Err(UpdateError::Http(e)) => {
                    let failure = TransportFailure::Network(e.to_string());
                    session.on_http_failure(failure, now)
                }
                // The signal fired: the cancel Report goes next.
                Err(UpdateError::Aborted) if cx.aborted => Ok(()),
                Err(e) => return Step::End(Err(e)),
            },
            (Wait::Card, Some(Done::Card(result))) => match result {
                Ok(r) => session.on_card_response(r),
                // The signal fired: the cancel Report goes next.
                Err(DriverError::Aborted) if cx.aborted => Ok(()),
                Err(e) => session.on_card_response(card_failed(e, &mut self.card_failure)),
            },
            _ => return out_of_step(),
        };
        if let Err(e) = fed {
            return Step::End(Err(UpdateError::OutOfStep(e)));
        }
        loop {
            let action = if !self.canceled && cx.aborted {
                self.canceled = true;
                match session.cancel() {
                    Some(exchange) => SeramAction::Post(exchange),
                    None => return Step::End(Err(UpdateError::Aborted)),
                }
            } else {
                match session.poll(now) {
                    Ok(action) => action,
                    Err(e) => return Step::End(Err(UpdateError::OutOfStep(e))),
                }
            };
            match action {
                SeramAction::Post(exchange) => {
                    self.wait = Wait::Post;
                    return Step::Io(Io::Post {
                        request: exchange.request,
                        timeout_ms: exchange.timeout_ms,
                        abortable: !self.canceled,
                    });
                }
                SeramAction::Wait { until_ms } => {
                    self.wait = Wait::Sleep;
                    return Step::Io(Io::Sleep { until_ms });
                }
                SeramAction::Card(command) => {
                    self.wait = Wait::Card;
                    return Step::Io(Io::Card(command));
                }
                SeramAction::Notify(n) => {
                    cx.observer.notification(&n);
                    self.last_notification = Some(n);
                }
                SeramAction::Done(outcome) => {
                    let last = self.last_notification.take();
                    return finished(outcome, last, now.saturating_sub(self.started));
                }
                SeramAction::Failed(error) => {
                    return Step::End(Err(match failed(&mut self.card_failure, error) {
                        Ok(error) => error,
                        Err(SessionError::Seram(SeramError::Unreachable {
                            timed_out: true,
                            ..
                        })) => UpdateError::Http(HttpError::Timeout),
                        Err(SessionError::Seram(SeramError::Unreachable { last, .. })) => {
                            UpdateError::Http(HttpError::Network(last))
                        }
                        Err(other) => UpdateError::BadScript(other),
                    }));
                }
            }
        }
    }
}
