//! The GP SERAM session (HTTP REST binding) as a pure state machine: like
//! [`Session`](super::Session) it says what to POST and what to run on the card, and is
//! fed the answers; unlike it, it also says when, because the binding's rules are timing
//! rules. Time is an input (`now`, in milliseconds of any monotonic clock): the machine
//! reads no clock, does no I/O and never awaits.
//!
//! # Driving a session
//! ```text
//! let mut s = SeramSession::new(config);
//! loop {
//!     match s.poll(now())? {
//!         SeramAction::Post(x)       => match fetch(x.request, x.timeout_ms).await {
//!             Ok(r)  => s.on_http_response(r, now())?,
//!             Err(e) => s.on_http_failure(e, now())?,      // network error or timeout
//!         },
//!         SeramAction::Wait { until_ms } => sleep_until(until_ms).await,
//!         SeramAction::Card(command) => s.on_card_response(run_on_card(command).await)?,
//!         SeramAction::Notify(n)     => show(n),
//!         SeramAction::Done(outcome) => break Ok(outcome),
//!         SeramAction::Failed(error) => break Err(error),
//!     }
//! }
//! ```
//!
//! # Flow (`doc/GPSERAM__Overview.md`, "Local Agent Behaviour"; `spec/gpseram.yaml`)
//! - Handshake: `POST <url>/handshake?sessionId=<id>` with the [`HandshakeCommand`]
//!   (the one Secure Element of [`SeramConfig::secure_element`], HTTPS, `application/json`,
//!   2.0.0). A `200` [`HandshakeResponse`] whose choices are among those offered (an absent
//!   choice means the schema's default) starts the Command Exchange; a choice not offered
//!   is [`SeramError::Unaccepted`]; any other status (`404` unknown session, `406` no
//!   acceptable proposal) is [`SessionError::Server`].
//! - Command Exchange: every request is `POST <url>/remoteManagement?sessionId=<id>` with
//!   a [`Report`]; the first is the void `POLLING` Report. A `200` carries an [`Order`]
//!   (a `204` is read as a void Order). Its Commands run one by one: Start marks the
//!   session started; a Notification becomes [`SeramAction::Notify`] (code 0); an SE RAM
//!   Command runs its C-APDUs in order, whatever their status word, and adds one
//!   `seRamResponse` with the R-APDUs in the same order (the correlation is positional:
//!   the n-th `seRamResponse` answers the n-th SE RAM Command, its m-th R-APDU the m-th
//!   C-APDU); Stop ends the session at once ([`SeramAction::Done`]) without another
//!   Report, discarding the responses. The Report then says `PROCESSED` with
//!   `executedSeRamCommands`, or `POLLING` after a void Order.
//! - Errors, as `localAgentStatus` prescribes: a malformed Order (or one larger than
//!   [`MAX_ORDER_BYTES`], not parsed) is answered with `UNKNOWN_FAILURE` and an `errorMsg`; a C-APDU that is not hex, or an SE RAM Command
//!   before Start, likewise; a card failure with `UNAVAILABLE_SE` (an Order choosing a
//!   Secure Element that was not offered too). On a failure the remaining C-APDUs of the
//!   Order are discarded (no R-APDU for the faulty one; the R-APDUs before it are kept),
//!   Notifications and Stop still run. Once that Report is answered, whatever the answer,
//!   the session fails with the error ([`SessionError::Seram`] or [`SessionError::Card`]).
//!
//! # Timing (`doc/GPSERAM__HTTP_REST_Binding.md`, "HTTP Polling", "Transmission Errors")
//! - The next request goes out `delay` ms after the previous response arrived (the
//!   Order's `delay`, [`DEFAULT_DELAY_MS`] when absent or after the handshake, `0`
//!   allowed); a delay longer than [`MAX_DELAY_MS`] is cut to it, as a Remote Agent
//!   considers a Local Agent lost after 5 minutes.
//! - While an Order's commands run no request is made: the Report goes out once the last
//!   C-APDU has answered (an Order that needs no Response is done at once).
//! - Each request may take up to [`SeramConfig::response_timeout_ms`]
//!   ([`RESPONSE_TIMEOUT_MS`], 40 s, by default), so long-poll answers of up to 30 s are
//!   awaited.
//! - A request that fails (network error, or no answer in time) is sent again: at once
//!   the first time, then after 1, 2, 4 … up to 30 s, for at most [`RETRY_WINDOW_MS`]
//!   (5 minutes) from the first failure; an attempt's timeout is cut so that it ends
//!   within the window. After that, [`SeramError::Unreachable`]. Any response ends the
//!   retrying.
//! - [`SeramSession::cancel`] ends the session; once the handshake is answered it gives a
//!   last `UNKNOWN_FAILURE` Report with `errorMsg` "session canceled" for the driver to
//!   send without waiting for its answer.

use std::collections::VecDeque;
use std::mem;

use super::{
    CallError, CardCommand, CardResult, EndStatus, HttpRequest, HttpResponse, Notification,
    Outcome, SessionError,
};
use crate::proto::hex;
use crate::proto::seram::{
    AgentStatus, Command, HandshakeCommand, HandshakeResponse, Order, Report, SecureElement,
    SeramMessageError, DATA_FORMAT_JSON, DEFAULT_DELAY_MS, TRANSPORT_HTTPS, VERSION,
};

/// The default bound on one HTTP exchange: "If the Local Agent doesn't receive an HTTP
/// response within a 40 seconds delay […] it SHOULD close the current HTTPS connection
/// and try to re-establish a new one."
pub const RESPONSE_TIMEOUT_MS: u64 = 40_000;
/// How long a failed request is retried: "it SHOULD retry during 5 minutes at the most".
pub const RETRY_WINDOW_MS: u64 = 300_000;
/// The longest pause between two attempts of a failed request.
pub const MAX_RETRY_PAUSE_MS: u64 = 30_000;
/// The longest Order `delay` honoured.
pub const MAX_DELAY_MS: u64 = RETRY_WINDOW_MS;
/// The `errorMsg` of the Report sent on [`SeramSession::cancel`].
pub const CANCEL_MESSAGE: &str = "session canceled";
/// How long the driver waits for the answer to the cancel Report.
pub const CANCEL_TIMEOUT_MS: u64 = 5_000;
/// The largest Order read; a larger body is answered as a malformed Order, unparsed.
pub const MAX_ORDER_BYTES: usize = 1 << 20;

const JSON_HEADERS: [(&str, &str); 1] = [("Content-Type", DATA_FORMAT_JSON)];

/// Why a SERAM session failed, beyond the errors every dialect has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeramError {
    /// The handshake response does not decode.
    #[error("bad handshake response")]
    BadHandshake(#[source] SeramMessageError),
    /// The Remote Agent chose something the Local Agent did not offer.
    #[error("remote agent chose an unsupported {0}")]
    Unaccepted(&'static str),
    /// An Order does not decode.
    #[error("bad order")]
    BadOrder(#[source] SeramMessageError),
    /// A C-APDU is not hex.
    #[error("c-apdu {index} is not hex")]
    BadApdu {
        /// Its index in its SE RAM Command.
        index: usize,
    },
    /// An Order larger than [`MAX_ORDER_BYTES`].
    #[error("order of {size} bytes is too large")]
    OrderTooLarge {
        /// The body's size.
        size: usize,
    },
    /// An SE RAM Command came before the Start Command.
    #[error("se ram command before start")]
    CommandBeforeStart,
    /// The Order chose a Secure Element that was not offered.
    #[error("unknown secure element")]
    UnknownSecureElement,
    /// No `sessionId` was given.
    #[error("the seram dialect needs a session id")]
    MissingSessionId,
    /// A [`Session`](super::Session) was made for the SERAM dialect.
    #[error("the seram dialect needs a seram session")]
    WrongSession,
    /// Requests failed for the whole retry window.
    #[error("remote agent unreachable for 5 minutes: {last}")]
    Unreachable {
        /// Whether the last attempt timed out (otherwise it failed on the network).
        timed_out: bool,
        /// The last failure's text.
        last: String,
    },
}

/// What a SERAM session needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeramConfig {
    /// The Remote Agent's endpoint base; `/handshake` and `/remoteManagement` are appended.
    pub url: String,
    /// The `sessionId` shared with the Management Platform.
    pub session_id: String,
    /// The Secure Element offered in the handshake.
    pub secure_element: SecureElement,
    /// Bound on each HTTP exchange.
    pub response_timeout_ms: u64,
}

impl SeramConfig {
    /// A configuration offering the card of `atr`: `seType` `undefined` (a card in a reader
    /// is none of the schema's embedded types) and, as `seId`, the ATR in hex, the one
    /// identifier a relay can read without sending the card a command.
    pub fn new(url: impl Into<String>, session_id: impl Into<String>, atr: &[u8]) -> Self {
        SeramConfig {
            url: url.into(),
            session_id: session_id.into(),
            secure_element: SecureElement {
                se_type: "undefined".to_owned(),
                se_id: hex::compact(atr),
                se_extra_info: None,
            },
            response_timeout_ms: RESPONSE_TIMEOUT_MS,
        }
    }
}

/// A request and its time bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The request.
    pub request: HttpRequest,
    /// Give up waiting for the response after this many milliseconds and report
    /// [`TransportFailure::Timeout`].
    pub timeout_ms: u64,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeramAction {
    /// Send this request, then call [`SeramSession::on_http_response`] or
    /// [`SeramSession::on_http_failure`].
    Post(Exchange),
    /// Nothing to do before this time; then poll again.
    Wait {
        /// The time to poll again at.
        until_ms: u64,
    },
    /// Run this on the card (always an APDU), then call [`SeramSession::on_card_response`].
    Card(CardCommand),
    /// Show this to the user (code 0), then poll again.
    Notify(Notification),
    /// The Remote Agent sent Stop.
    Done(Outcome),
    /// The session failed.
    Failed(SessionError),
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    /// The connection could not be made or broke.
    Network(String),
    /// No response within the exchange's timeout.
    Timeout,
}

/// Which endpoint a request went to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Handshake,
    /// A Report; `Some` when it reported a failure the session then ends with.
    Report(Option<SessionError>),
}

/// An Order being run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    commands: VecDeque<Command>,
    /// The C-APDUs left of the SE RAM Command being run, and its R-APDUs so far.
    current: Option<(VecDeque<String>, Vec<String>)>,
    /// The index of the next C-APDU in the current SE RAM Command.
    index: usize,
    report: Report,
    /// The first failure: it sets the Report's status and ends the session.
    failure: Option<SessionError>,
    /// When the next request may go.
    send_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start,
    SendAt(HttpRequest, u64, Phase),
    AwaitHttp(HttpRequest, Phase),
    Running(Run),
    AwaitCard(Run),
    Ending(SeramAction),
    Finished,
}

/// Consecutive failures of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Retry {
    first_at: u64,
    attempts: u32,
}

/// A GP SERAM session; see the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct SeramSession {
    config: SeramConfig,
    state: State,
    started: bool,
    handshaken: bool,
    retry: Option<Retry>,
    apdus: u32,
    round_trips: u32,
    last_notification: Option<(i32, String)>,
}

impl SeramSession {
    /// A session that has sent nothing yet.
    pub fn new(config: SeramConfig) -> Self {
        SeramSession {
            config,
            state: State::Start,
            started: false,
            handshaken: false,
            retry: None,
            apdus: 0,
            round_trips: 0,
            last_notification: None,
        }
    }

    /// Whether the final action has been produced (or is ready to be polled).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Ending(_) | State::Finished)
    }

    /// The next thing to do at time `now`.
    pub fn poll(&mut self, now: u64) -> Result<SeramAction, CallError> {
        match mem::replace(&mut self.state, State::Finished) {
            State::Start => {
                let body = HandshakeCommand {
                    secure_elements: vec![self.config.secure_element.clone()],
                }
                .encode();
                let request = self.request("handshake", body);
                Ok(self.send(request, Phase::Handshake, now))
            }
            State::SendAt(request, at, phase) if now >= at => Ok(self.send(request, phase, now)),
            State::SendAt(request, at, phase) => {
                self.state = State::SendAt(request, at, phase);
                Ok(SeramAction::Wait { until_ms: at })
            }
            State::Running(run) => Ok(self.step(run, now)),
            State::Ending(action) => Ok(action),
            State::Finished => Err(CallError::Finished),
            state @ State::AwaitHttp(..) => {
                self.state = state;
                Err(CallError::AwaitingHttpResponse)
            }
            state @ State::AwaitCard(_) => {
                self.state = state;
                Err(CallError::AwaitingCardResult)
            }
        }
    }

    /// Feeds the response to the last [`SeramAction::Post`], received at `now`.
    pub fn on_http_response(&mut self, response: HttpResponse, now: u64) -> Result<(), CallError> {
        let phase = match mem::replace(&mut self.state, State::Finished) {
            State::AwaitHttp(_, phase) => phase,
            state => return Err(self.restore(state, CallError::UnexpectedHttpResponse)),
        };
        self.retry = None;
        self.round_trips = self.round_trips.saturating_add(1);
        self.state = match phase {
            Phase::Report(Some(error)) => State::Ending(SeramAction::Failed(error)),
            Phase::Handshake => self.handshake_answer(&response, now),
            Phase::Report(None) => self.order_answer(&response, now),
        };
        Ok(())
    }

    /// Feeds the failure of the last [`SeramAction::Post`], seen at `now`: the request is
    /// sent again as the module documentation says.
    pub fn on_http_failure(
        &mut self,
        failure: TransportFailure,
        now: u64,
    ) -> Result<(), CallError> {
        let (request, phase) = match mem::replace(&mut self.state, State::Finished) {
            State::AwaitHttp(request, phase) => (request, phase),
            state => return Err(self.restore(state, CallError::UnexpectedHttpResponse)),
        };
        let retry = self.retry.get_or_insert(Retry {
            first_at: now,
            attempts: 0,
        });
        retry.attempts = retry.attempts.saturating_add(1);
        let pause = match retry.attempts {
            1 => 0,
            // 1, 2, 4 … s: the shift stops at 32 s, above the cap.
            n => (1_000u64 << (n - 2).min(5)).min(MAX_RETRY_PAUSE_MS),
        };
        let at = now.saturating_add(pause);
        self.state = if at >= retry.first_at.saturating_add(RETRY_WINDOW_MS) {
            let (timed_out, last) = match failure {
                TransportFailure::Timeout => (true, "no answer in time".to_owned()),
                TransportFailure::Network(text) => (false, text),
            };
            let error = SeramError::Unreachable { timed_out, last };
            State::Ending(SeramAction::Failed(SessionError::Seram(error)))
        } else {
            State::SendAt(request, at, phase)
        };
        Ok(())
    }

    /// Feeds the result of the last [`SeramAction::Card`].
    pub fn on_card_response(&mut self, result: CardResult) -> Result<(), CallError> {
        let mut run = match mem::replace(&mut self.state, State::Finished) {
            State::AwaitCard(run) => run,
            state => return Err(self.restore(state, CallError::UnexpectedCardResult)),
        };
        match result {
            CardResult::Response(rapdu) => {
                self.apdus = self.apdus.saturating_add(1);
                if let Some((_, rapdus)) = &mut run.current {
                    rapdus.push(hex::compact(&rapdu));
                }
            }
            CardResult::Error(message) => {
                fail(
                    &mut run,
                    AgentStatus::UnavailableSe,
                    SessionError::Card { message },
                );
            }
            CardResult::Atr(_) => {
                self.state = State::AwaitCard(run);
                return Err(CallError::WrongCardResult);
            }
        }
        self.state = State::Running(run);
        Ok(())
    }

    /// Ends the session at the user's request. Once the handshake has been answered, and
    /// unless the session has ended, it returns the `UNKNOWN_FAILURE` Report ("session
    /// canceled") that tells the Remote Agent; the driver sends it without feeding its
    /// answer back. The next `poll` gives [`SessionError::Canceled`].
    pub fn cancel(&mut self) -> Option<Exchange> {
        if self.is_finished() {
            return None;
        }
        self.state = State::Ending(SeramAction::Failed(SessionError::Canceled));
        self.handshaken.then(|| {
            let report = Report {
                status: AgentStatus::UnknownFailure,
                executed: 0,
                error: Some(CANCEL_MESSAGE.to_owned()),
                responses: Vec::new(),
            };
            Exchange {
                request: self.request("remoteManagement", report.encode()),
                timeout_ms: CANCEL_TIMEOUT_MS.min(self.config.response_timeout_ms),
            }
        })
    }

    fn restore(&mut self, state: State, error: CallError) -> CallError {
        let error = match (&state, error) {
            (State::Ending(_) | State::Finished, _) => CallError::Finished,
            (_, e) => e,
        };
        self.state = state;
        error
    }

    fn request(&self, endpoint: &str, body: String) -> HttpRequest {
        let mut url = self.config.url.trim_end_matches('/').to_owned();
        url.push('/');
        url.push_str(endpoint);
        url.push_str("?sessionId=");
        percent_encode(&mut url, &self.config.session_id);
        HttpRequest::post(url, &JSON_HEADERS, body.into_bytes())
    }

    fn send(&mut self, request: HttpRequest, phase: Phase, now: u64) -> SeramAction {
        let mut timeout_ms = self.config.response_timeout_ms;
        if let Some(retry) = &self.retry {
            let window_end = retry.first_at.saturating_add(RETRY_WINDOW_MS);
            timeout_ms = timeout_ms.min(window_end.saturating_sub(now)).max(1);
        }
        self.state = State::AwaitHttp(request.clone(), phase);
        SeramAction::Post(Exchange {
            request,
            timeout_ms,
        })
    }

    fn ending_failure(error: SessionError) -> State {
        State::Ending(SeramAction::Failed(error))
    }

    fn handshake_answer(&mut self, response: &HttpResponse, now: u64) -> State {
        if response.status != 200 {
            return Self::ending_failure(SessionError::Server {
                status: response.status,
            });
        }
        let choice = match HandshakeResponse::decode(&response.body) {
            Ok(c) => c,
            Err(e) => {
                return Self::ending_failure(SessionError::Seram(SeramError::BadHandshake(e)))
            }
        };
        let checks = [
            (choice.transport, TRANSPORT_HTTPS, "transport protocol"),
            (choice.data_format, DATA_FORMAT_JSON, "data format"),
            (choice.version, VERSION, "version"),
        ];
        for (chosen, offered, what) in checks {
            if chosen.is_some_and(|c| c != offered) {
                return Self::ending_failure(SessionError::Seram(SeramError::Unaccepted(what)));
            }
        }
        self.handshaken = true;
        let request = self.request("remoteManagement", Report::polling().encode());
        State::SendAt(
            request,
            now.saturating_add(DEFAULT_DELAY_MS),
            Phase::Report(None),
        )
    }

    fn order_answer(&mut self, response: &HttpResponse, now: u64) -> State {
        let size = response.body.len();
        let order = match response.status {
            204 => Ok(Order::default()),
            200 if size > MAX_ORDER_BYTES => Err(SeramError::OrderTooLarge { size }),
            200 => Order::decode(&response.body).map_err(SeramError::BadOrder),
            status => return Self::ending_failure(SessionError::Server { status }),
        };
        let order = match order {
            Ok(order) => order,
            Err(e) => {
                let error = SessionError::Seram(e);
                let report = Report {
                    status: AgentStatus::UnknownFailure,
                    executed: 0,
                    error: Some(error_text(&error)),
                    responses: Vec::new(),
                };
                let request = self.request("remoteManagement", report.encode());
                let phase = Phase::Report(Some(error));
                return State::SendAt(request, now.saturating_add(DEFAULT_DELAY_MS), phase);
            }
        };
        let delay = order.delay_ms.unwrap_or(DEFAULT_DELAY_MS).min(MAX_DELAY_MS);
        let mut run = Run {
            report: Report {
                status: if order.commands.is_empty() {
                    AgentStatus::Polling
                } else {
                    AgentStatus::Processed
                },
                ..Report::polling()
            },
            commands: order.commands.into(),
            current: None,
            index: 0,
            failure: None,
            send_at: now.saturating_add(delay),
        };
        let offered = &self.config.secure_element.se_id;
        if order
            .chosen_secure_element
            .is_some_and(|se| &se.se_id != offered)
        {
            let error = SessionError::Seram(SeramError::UnknownSecureElement);
            fail(&mut run, AgentStatus::UnavailableSe, error);
        }
        State::Running(run)
    }

    /// Runs an Order until it needs the card, a notification is shown, or it is done.
    fn step(&mut self, mut run: Run, now: u64) -> SeramAction {
        loop {
            if let Some((apdus, rapdus)) = &mut run.current {
                if run.failure.is_none() {
                    if let Some(text) = apdus.pop_front() {
                        let index = run.index;
                        run.index += 1;
                        match hex::parse(&text) {
                            Ok(apdu) => {
                                self.state = State::AwaitCard(run);
                                return SeramAction::Card(CardCommand::Apdu(apdu));
                            }
                            Err(_) => {
                                let error = SessionError::Seram(SeramError::BadApdu { index });
                                fail(&mut run, AgentStatus::UnknownFailure, error);
                            }
                        }
                        continue;
                    }
                    run.report.executed = run.report.executed.saturating_add(1);
                }
                run.report.responses.push(mem::take(rapdus));
                run.current = None;
            }
            let Some(command) = run.commands.pop_front() else {
                return self.report(run, now);
            };
            match command {
                Command::Start => self.started = true,
                Command::Notification(message) => {
                    self.last_notification = Some((0, message.clone()));
                    self.state = State::Running(run);
                    return SeramAction::Notify(Notification {
                        id: 0,
                        message,
                        time_to_completion: None,
                    });
                }
                Command::SeRam(_) if run.failure.is_some() => {}
                Command::SeRam(_) if !self.started => {
                    let error = SessionError::Seram(SeramError::CommandBeforeStart);
                    fail(&mut run, AgentStatus::UnknownFailure, error);
                }
                Command::SeRam(apdus) => {
                    run.current = Some((apdus.into(), Vec::new()));
                    run.index = 0;
                }
                Command::Stop => {
                    let action = match run.failure {
                        Some(error) => SeramAction::Failed(error),
                        None => SeramAction::Done(Outcome {
                            apdus: self.apdus,
                            round_trips: self.round_trips,
                            last_notification: self.last_notification.clone(),
                            close_message: None,
                            status: EndStatus::Completed,
                            targeted_application: None,
                        }),
                    };
                    self.state = State::Finished;
                    return action;
                }
            }
        }
    }

    /// The Report of a finished Order: sent at the Order's time, or now if that has passed.
    fn report(&mut self, run: Run, now: u64) -> SeramAction {
        let request = self.request("remoteManagement", run.report.encode());
        let phase = Phase::Report(run.failure);
        if now >= run.send_at {
            return self.send(request, phase, now);
        }
        self.state = State::SendAt(request, run.send_at, phase);
        SeramAction::Wait {
            until_ms: run.send_at,
        }
    }
}

/// Records the first failure of an Order: the Report's status and `errorMsg`.
fn fail(run: &mut Run, status: AgentStatus, error: SessionError) {
    if run.failure.is_none() {
        run.report.status = status;
        run.report.error = Some(error_text(&error));
        run.failure = Some(error);
    }
}

/// The `errorMsg` of a failure: the error and the message error under it. Written out
/// rather than walking `dyn Error` sources, whose vtables would pull every error type's
/// `Debug` into the wasm bundle.
fn error_text(error: &SessionError) -> String {
    match error {
        SessionError::Seram(SeramError::BadOrder(cause) | SeramError::BadHandshake(cause)) => {
            match cause {
                SeramMessageError::Json(json) => format!("{error}: {cause}: {json}"),
                _ => format!("{error}: {cause}"),
            }
        }
        _ => error.to_string(),
    }
}

/// Appends `text` percent-encoded: everything but RFC 3986 unreserved characters.
fn percent_encode(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&hex::compact(&[b]));
        }
    }
}
