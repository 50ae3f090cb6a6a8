//! The RAMOverHTTP session as a pure state machine: it says which HTTP request to POST next
//! and which card actions to run, and is fed the answers. It does no I/O, reads no clock and
//! never awaits; the async driver moves bytes between it, `fetch` and the card.
//!
//! # Driving a session
//! ```text
//! let mut s = Session::new(config);
//! loop {
//!     match s.poll()? {
//!         Action::Post(request)  => s.on_http_response(fetch(request).await)?,
//!         Action::Card(command)  => s.on_card_response(run_on_card(command).await)?,
//!         Action::Notify(n)      => show(n),
//!         Action::Done(outcome)  => break Ok(outcome),
//!         Action::Failed(error)  => break Err(error),
//!     }
//! }
//! ```
//! After [`Action::Post`] the next call must be [`Session::on_http_response`], after
//! [`Action::Card`] it must be [`Session::on_card_response`]; any other order is a
//! [`CallError`] and leaves the state unchanged. [`Action::Done`] or [`Action::Failed`] is
//! returned once; polling after it gives [`CallError::Finished`].
//!
//! # OpenSCDP dialect (ramoverhttp.md §1.2, §2.2)
//! - Every POST goes to [`SessionConfig::url`] with only
//!   `Content-Type: application/org.openscdp-content-mgt-response;version=1.0` (the Java
//!   client sends no `X-Admin-*` header). The session cookie is the transport's business.
//! - The first body is the initiation template `E8 { C0 ATR [C1] [C2] }`.
//! - `200` carries an `AA` command script: every unit runs in order. C-APDUs run whatever
//!   their status word and each adds `23 R-APDU`; the count `80` is the number of C-APDUs
//!   that ran. A reset adds `C0 ATR` and is not counted. A notification becomes
//!   [`Action::Notify`] and adds nothing; a **negative id ends the session at once, without
//!   another POST**, with [`EndStatus::EndedByServer`]. A close (`E1`) is recorded in
//!   [`Outcome::close_message`] and otherwise ignored: the reply is still posted, and the
//!   server may go on or end with `204`. The reference clients do not post after an `E1`
//!   (CardContact's C `ram-client` stops with an error at any unit other than `22`, `C0`
//!   and `E0`), so servers written for them, the reference server in `server/` included,
//!   send none and answer the reply after a `card.close()` with `204`; a server that does
//!   send one (the Java Scripting Server's behaviour is not known) works as well.
//! - A card I/O error stops the template; the reply carries `E1 { 0C <error text> }` (as
//!   the Java and C clients do), and after that POST is answered the session fails with
//!   [`SessionError::Card`], whatever the answer.
//! - `204` ends the session ([`EndStatus::Completed`]), also in answer to the first POST.
//!   Any other status is [`SessionError::Server`]. A `200` whose body is not a command
//!   script is [`SessionError::BadScript`]; [`Session::abort_request`] then builds the
//!   `E1` POST that tells the server.
//! - [`Session::cancel`] gives the 2020 Java client's `AB { E1 { 0C "Session canceled" }
//!   80 01 00 }` POST.
//!
//! # GlobalPlatform Amd B dialect (ramoverhttp.md §1.1, §2.1)
//! - The first POST goes to [`SessionConfig::url`] with no body and no Content-Type, only
//!   `X-Admin-Protocol: globalplatform-remote-admin/1.0` and `X-Admin-From: <agent id>`
//!   ([`DEFAULT_AGENT_ID`] when the configuration has none).
//! - Each later POST goes to the server's last `X-Admin-Next-URI`, resolved against the URL
//!   of the request it answered ([`resolve_uri`]), and carries the response script with
//!   `Content-Type: application/vnd.globalplatform.card-content-mgt-response;version=1.0`,
//!   `X-Admin-Protocol`, `X-Admin-From` and `X-Admin-Script-Status`.
//! - A `200` script runs its C-APDUs in order and stops after the first status word that is
//!   neither `9000` nor `61xx` (or a response too short to hold one); that response is still
//!   reported and counted. Immediate action, error action and script chaining objects are
//!   UICC features a relay cannot perform: they are skipped and not counted. An `AA` script
//!   is answered by `AB { 80 count, 23 ... }`, an `AE` script by `AF 80 23 ... 00 00`
//!   without a count (as the 2019 card trace does).
//! - A `200` script without a Next-URI runs, but its result is not sent (the session ends
//!   there, [`EndStatus::Completed`]). A `204` (or an empty `200`) without a Next-URI ends
//!   the session; with one, an empty POST like the first goes there.
//! - A script that does not decode is answered, when a Next-URI allows, with
//!   `AB { 80 01 00, 90 <error type> }` and `X-Admin-Script-Status: script-format-error`;
//!   a card I/O error is answered with the responses so far and
//!   `X-Admin-Script-Status: unavailable-se` (both values come from GP's SE remote
//!   application management document). After such a report the session fails with
//!   [`SessionError::BadScript`] or [`SessionError::Card`].
//! - The last `X-Admin-Targeted-Application` of the server's responses is kept in
//!   [`Outcome::targeted_application`]. `X-Admin-Resume` is the driver's business: it repeats
//!   a POST that failed at the network level with that header ([`RESUME`]). The server's
//!   `X-Admin-Protocol` and Content-Type are not checked. [`Session::cancel`] sends nothing.

pub mod seram;

mod gp;
mod http;
mod openscdp;
mod uri;

pub use http::{HttpRequest, HttpResponse, ScriptStatus, RESUME, TARGETED_APPLICATION};
pub use uri::{origin, resolve_uri, UriError};

use gp::{gp_continues, GpRun};
use openscdp::OpenScdpRun;
use std::mem;

use crate::proto::ram::{self, RamError};

/// The `X-Admin-Protocol` value of GP Amd B.
pub const GP_ADMIN_PROTOCOL: &str = "globalplatform-remote-admin/1.0";

/// The `X-Admin-From` value used when [`SessionConfig::agent_id`] is `None`. Amd B's format
/// for the agent id could not be verified, and servers seen in the wild do not check it.
pub const DEFAULT_AGENT_ID: &str = "card-relay";

/// The message of the OpenSCDP cancel POST (2020 Java `RemoteClient.cancel()`).
pub const CANCEL_MESSAGE: &str = "Session canceled";

/// Which server flavour the session talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenSCDP / CardContact RAMoverHTTP (the seed's Scripting Server).
    OpenScdp,
    /// GlobalPlatform Amd B RAM over HTTP.
    GlobalPlatform,
    /// GlobalPlatform SERAM, HTTP REST binding: a [`seram::SeramSession`], not a
    /// [`Session`] (a `Session` made for it fails at its first `poll`).
    Seram,
}

/// What a session needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The server flavour.
    pub dialect: Dialect,
    /// The URL of the first POST (every POST in the OpenSCDP dialect). It may be relative
    /// ("/rt/testappl"); Next-URIs are resolved against it the same way.
    pub url: String,
    /// The card's ATR, sent in the OpenSCDP initiation template.
    pub atr: Vec<u8>,
    /// The largest C-APDU the reader path carries (OpenSCDP `C1`).
    pub max_capdu: Option<u32>,
    /// The largest R-APDU the reader path carries (OpenSCDP `C2`).
    pub max_rapdu: Option<u32>,
    /// The GP `X-Admin-From` agent id; [`DEFAULT_AGENT_ID`] when `None`.
    pub agent_id: Option<String>,
}

/// Something to do with the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardCommand {
    /// Send this command APDU; answer with [`CardResult::Response`].
    Apdu(Vec<u8>),
    /// Reset the card; answer with [`CardResult::Atr`].
    Reset,
}

/// What the card did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardResult {
    /// The response APDU: data ‖ SW1 SW2.
    Response(Vec<u8>),
    /// The ATR after a reset.
    Atr(Vec<u8>),
    /// The card or reader failed; the text goes to the server.
    Error(String),
}

/// A message from the server for the user (OpenSCDP `E0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The id; negative means the server gave up.
    pub id: i32,
    /// The text.
    pub message: String,
    /// Time to completion, when the server gave one.
    pub time_to_completion: Option<u32>,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this request, then call [`Session::on_http_response`].
    Post(HttpRequest),
    /// Run this on the card, then call [`Session::on_card_response`].
    Card(CardCommand),
    /// Show this to the user, then poll again.
    Notify(Notification),
    /// The session ended normally.
    Done(Outcome),
    /// The session failed.
    Failed(SessionError),
}

/// How a session that ended normally ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStatus {
    /// The server ended it (`204`, or GP: no Next-URI).
    Completed,
    /// The server sent a notification with a negative id (OpenSCDP).
    EndedByServer {
        /// The negative id.
        id: i32,
        /// Its text.
        message: String,
    },
}

/// The summary of a session that ended normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// C-APDUs sent to the card.
    pub apdus: u32,
    /// POSTs answered by the server.
    pub round_trips: u32,
    /// The last notification (id, text).
    pub last_notification: Option<(i32, String)>,
    /// The text of the last close (`E1`) the server sent (OpenSCDP).
    pub close_message: Option<String>,
    /// The last `X-Admin-Targeted-Application` a GP server sent (GP Amd B §3.3.3 header:
    /// the application the script addresses), as received.
    pub targeted_application: Option<String>,
    /// How it ended.
    pub status: EndStatus,
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The server answered with a status that is neither 200 nor 204.
    #[error("server answered http {status}")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The server sent a script that does not decode.
    #[error("bad script")]
    BadScript(#[source] RamError),
    /// The card or reader failed.
    #[error("card error: {message}")]
    Card {
        /// The error text the driver gave.
        message: String,
    },
    /// The server's `X-Admin-Next-URI` is not a usable URI reference.
    #[error("bad next uri")]
    BadNextUri(#[source] UriError),
    /// The session was canceled by [`Session::cancel`].
    #[error("session canceled")]
    Canceled,
    /// A SERAM failure ([`seram::SeramSession`]).
    #[error(transparent)]
    Seram(seram::SeramError),
}

/// A call that does not fit the session's state. The state is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// `poll` while an HTTP response is due.
    #[error("awaiting an http response")]
    AwaitingHttpResponse,
    /// `poll` while a card result is due.
    #[error("awaiting a card result")]
    AwaitingCardResult,
    /// An HTTP response that no request asked for.
    #[error("no http request outstanding")]
    UnexpectedHttpResponse,
    /// A card result that no card command asked for.
    #[error("no card command outstanding")]
    UnexpectedCardResult,
    /// An ATR for an APDU or a response for a reset.
    #[error("card result does not match the command")]
    WrongCardResult,
    /// The session has ended.
    #[error("session finished")]
    Finished,
}

/// What the next HTTP answer leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AfterHttp {
    /// Read the answer as usual.
    Continue,
    /// The request reported a failure: end with this error whatever the answer.
    Fail(SessionError),
}

/// A script being run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    OpenScdp(OpenScdpRun),
    Gp(GpRun),
}

/// The card result a card command waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Response,
    Atr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Nothing sent yet.
    Start,
    /// A request is ready to be returned by `poll`.
    Send(HttpRequest, AfterHttp),
    /// A request is out; its answer is due.
    AwaitHttp(AfterHttp),
    /// A script is being run.
    Running(Run),
    /// A card command is out; its result is due.
    AwaitCard(Run, Expect),
    /// The final action is ready to be returned by `poll`.
    Ending(Action),
    /// The final action was returned.
    Finished,
}

/// A RAMOverHTTP session; see the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// The URL of the last request, the base for the next `X-Admin-Next-URI`.
    url: String,
    posts: u32,
    apdus: u32,
    round_trips: u32,
    last_notification: Option<(i32, String)>,
    close_message: Option<String>,
    targeted_application: Option<String>,
}

impl Session {
    /// A session that has sent nothing yet.
    pub fn new(config: SessionConfig) -> Self {
        let url = config.url.clone();
        Session {
            config,
            state: State::Start,
            url,
            posts: 0,
            apdus: 0,
            round_trips: 0,
            last_notification: None,
            close_message: None,
            targeted_application: None,
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.config.dialect
    }

    /// C-APDUs sent to the card so far.
    pub fn apdus(&self) -> u32 {
        self.apdus
    }

    /// POSTs answered so far.
    pub fn round_trips(&self) -> u32 {
        self.round_trips
    }

    /// Whether the final action has been produced (or is ready to be polled).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Ending(_) | State::Finished)
    }

    /// The next thing to do. See the module documentation for the call order.
    pub fn poll(&mut self) -> Result<Action, CallError> {
        match mem::replace(&mut self.state, State::Finished) {
            State::Start if self.config.dialect == Dialect::Seram => Ok(Action::Failed(
                SessionError::Seram(seram::SeramError::WrongSession),
            )),
            State::Start => {
                let request = self.first_request();
                Ok(self.send(request, AfterHttp::Continue))
            }
            State::Send(request, after) => Ok(self.send(request, after)),
            State::Running(run) => Ok(self.step(run)),
            State::Ending(action) => Ok(action),
            State::Finished => Err(CallError::Finished),
            state @ State::AwaitHttp(_) => {
                self.state = state;
                Err(CallError::AwaitingHttpResponse)
            }
            state @ State::AwaitCard(..) => {
                self.state = state;
                Err(CallError::AwaitingCardResult)
            }
        }
    }

    /// Feeds the answer to the last [`Action::Post`].
    pub fn on_http_response(&mut self, response: HttpResponse) -> Result<(), CallError> {
        let after = match mem::replace(&mut self.state, State::Finished) {
            State::AwaitHttp(after) => after,
            state => {
                let error = call_error(&state, CallError::UnexpectedHttpResponse);
                self.state = state;
                return Err(error);
            }
        };
        self.round_trips = self.round_trips.saturating_add(1);
        self.state = match after {
            AfterHttp::Fail(error) => State::Ending(Action::Failed(error)),
            AfterHttp::Continue => match self.config.dialect {
                Dialect::OpenScdp => self.openscdp_answer(response),
                Dialect::GlobalPlatform | Dialect::Seram => {
                    if let Some(target) = response.header(TARGETED_APPLICATION) {
                        self.targeted_application = Some(target.to_owned());
                    }
                    self.gp_answer(response)
                }
            },
        };
        Ok(())
    }

    /// Feeds the result of the last [`Action::Card`].
    pub fn on_card_response(&mut self, result: CardResult) -> Result<(), CallError> {
        let (mut run, expect) = match mem::replace(&mut self.state, State::Finished) {
            State::AwaitCard(run, expect) => (run, expect),
            state => {
                let error = call_error(&state, CallError::UnexpectedCardResult);
                self.state = state;
                return Err(error);
            }
        };
        match (&mut run, expect, result) {
            (Run::OpenScdp(OpenScdpRun { card_error, .. }), _, CardResult::Error(message))
            | (Run::Gp(GpRun { card_error, .. }), _, CardResult::Error(message)) => {
                *card_error = Some(message);
            }
            (Run::OpenScdp(run), Expect::Response, CardResult::Response(rapdu)) => {
                self.apdus = self.apdus.saturating_add(1);
                run.reply.count = run.reply.count.saturating_add(1);
                run.reply
                    .items
                    .push(ram::openscdp::ResponseItem::RApdu(rapdu));
            }
            (Run::OpenScdp(run), Expect::Atr, CardResult::Atr(atr)) => {
                run.reply.items.push(ram::openscdp::ResponseItem::Atr(atr));
            }
            (Run::Gp(run), Expect::Response, CardResult::Response(rapdu)) => {
                self.apdus = self.apdus.saturating_add(1);
                run.count = run.count.saturating_add(1);
                run.stopped = !gp_continues(&rapdu);
                run.reply.items.push(ram::gp::ResponseItem::RApdu(rapdu));
            }
            (_, _, CardResult::Response(_) | CardResult::Atr(_)) => {
                self.state = State::AwaitCard(run, expect);
                return Err(CallError::WrongCardResult);
            }
        }
        self.state = State::Running(run);
        Ok(())
    }

    /// Ends the session at the user's request and returns the request that tells the
    /// server, if the dialect has one: OpenSCDP posts `AB { E1 { 0C "Session canceled" }
    /// 80 01 00 }` once a POST has been sent; GP sends nothing. The driver sends it without
    /// feeding its answer back. The next `poll` gives [`SessionError::Canceled`]. On a
    /// session that has already ended this does nothing and returns `None`.
    pub fn cancel(&mut self) -> Option<HttpRequest> {
        if self.is_finished() {
            return None;
        }
        self.state = State::Ending(Action::Failed(SessionError::Canceled));
        if self.posts == 0 {
            return None;
        }
        self.abort_request(CANCEL_MESSAGE)
    }

    /// The OpenSCDP POST that tells the server the client gives up:
    /// `AB { E1 { 0C reason } 80 01 00 }` to the session URL. `None` for GP, which has no
    /// such message. It does not change the session.
    pub fn abort_request(&self, reason: &str) -> Option<HttpRequest> {
        match self.config.dialect {
            Dialect::OpenScdp => {
                Some(self.openscdp_post(ram::openscdp::ResponseScript::abort(reason).encode()))
            }
            Dialect::GlobalPlatform | Dialect::Seram => None,
        }
    }

    fn first_request(&self) -> HttpRequest {
        match self.config.dialect {
            Dialect::OpenScdp => {
                let template = ram::openscdp::InitiationTemplate {
                    atr: self.config.atr.clone(),
                    max_capdu: self.config.max_capdu,
                    max_rapdu: self.config.max_rapdu,
                };
                self.openscdp_post(template.encode())
            }
            Dialect::GlobalPlatform | Dialect::Seram => self.gp_empty_post(self.config.url.clone()),
        }
    }

    fn send(&mut self, request: HttpRequest, after: AfterHttp) -> Action {
        self.posts = self.posts.saturating_add(1);
        self.url.clone_from(&request.url);
        self.state = State::AwaitHttp(after);
        Action::Post(request)
    }

    fn outcome(&self, status: EndStatus) -> Outcome {
        Outcome {
            apdus: self.apdus,
            round_trips: self.round_trips,
            last_notification: self.last_notification.clone(),
            close_message: self.close_message.clone(),
            targeted_application: self.targeted_application.clone(),
            status,
        }
    }

    fn done(&self) -> State {
        State::Ending(Action::Done(self.outcome(EndStatus::Completed)))
    }

    /// Runs a script until it needs the card, the user or the server.
    fn step(&mut self, run: Run) -> Action {
        match run {
            Run::OpenScdp(run) => self.step_openscdp(run),
            Run::Gp(run) => self.step_gp(run),
        }
    }

    fn finish(&mut self, action: Action) -> Action {
        self.state = State::Finished;
        action
    }
}

/// The call error for an input that arrived in `state`.
fn call_error(state: &State, otherwise: CallError) -> CallError {
    match state {
        State::Ending(_) | State::Finished => CallError::Finished,
        _ => otherwise,
    }
}

#[cfg(test)]
mod tests;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod prop;
