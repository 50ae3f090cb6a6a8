//! The server-side Scripting Server API: card-update scripts are async functions that drive
//! a remote card through a [`Card`] and talk to the user through a [`ScriptSession`], like
//! the OpenSCDP `performCardUpdate(session, pathInfo)` functions of the seed (seed.md).
//!
//! # Batching
//! A script runs in its own tokio task. Nothing goes to the client until the script needs an
//! answer: [`Card::reset`], [`Card::send_apdu`] and [`Card::send_batch`] send one command
//! template holding every queued notification followed by the command, then wait for the
//! client's response template. Notifications therefore cost no round trip, and a session
//! takes `1 + templates` round trips: the first POST, then one POST per template (plus one
//! after a failure notification, for the clients that answer it).
//!
//! # Ending
//! The existing OpenSCDP clients do not act on a close unit `E1` in a command template:
//! CardContact's C `ram-client` stops with an error, without posting, at any unit other than
//! `22`, `C0` and `E0`, and no reference client posts after one (ramoverhttp.md §2.2). So no
//! `E1` is ever sent: [`Card::close`] is logged and the client learns the end from the `204`.
//! - The script returns `Ok`: queued notifications are sent in a last template whose answer
//!   is a `204`; with nothing queued the next answer is a `204` at once.
//! - The script returns an error: in the OpenSCDP dialect a notification
//!   `E0 { 02 -1, 0C "Script failed: <error>" }` goes out in a template of its own, before
//!   anything still queued (which is dropped: a negative id ends an OpenSCDP client,
//!   ramoverhttp.md §2.2); a client that answers it anyway gets a `204`. In the GP dialect,
//!   which has no notifications, the next answer is a `204`. The session is then "failed".
//! - The script sends a notification with a negative code: the queued notifications up to
//!   and including it go in a last template, answered like the one above.
//! - The client aborts (`E1` in its response, a GP script status other than `ok`), does not
//!   answer within the exchange limit, or goes away: the card calls fail with a client-side
//!   [`ScriptError`] and the session is failed.
//!
//! In the GP dialect notifications are only logged: GP Amd B has no such unit. In the GP
//! SERAM dialect (`crate::seram`) notifications become Notification Commands, the end is a
//! Stop Command (after the last template's Commands) and `reset` returns the ATR of the
//! handshake.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use card_relay::proto::apdu::{command_name, ApduError, CommandApdu, ResponseApdu};
use card_relay::proto::trace::TraceFormatter;
use card_relay::session::Dialect;
use tokio::sync::mpsc;

/// The text of an OpenSCDP close unit `E1 { 0C text }`, as sent by servers that send one
/// (this server's scripts do not, see the module documentation).
pub const CLOSE_MESSAGE: &str = "Card closed";

/// The most log lines a session keeps; later lines are dropped.
const MAX_LOG_LINES: usize = 2000;

/// The slot id printed at the start of the log's command lines (any stable value will do,
/// seed.md).
const LOG_SLOT_ID: u8 = 0x78;

/// The future of a running script.
pub type ScriptFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ScriptError>> + Send + 'a>>;

/// A card-update script: `performCardUpdate` in Rust.
pub type ScriptFn = for<'a> fn(&'a mut Card, &'a ScriptSession) -> ScriptFuture<'a>;

/// Why a script call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptError {
    /// The card answered a status word the script did not list as expected.
    UnexpectedSw {
        /// The command's name (7816-4 §5.4).
        command: &'static str,
        /// The status word.
        sw: u16,
    },
    /// The script built a command APDU that cannot be encoded.
    BadCommand(ApduError),
    /// The client's response is too short to hold a status word.
    BadResponse(ApduError),
    /// The client's response template lacks the answer to a command.
    MissingResponse(&'static str),
    /// The dialect has no such unit (GP Amd B cannot reset a card).
    Unsupported(&'static str),
    /// The client stopped the session (`E1` in OpenSCDP, a script status in GP).
    ClientAborted(String),
    /// The client did not post its response in time.
    ClientTimeout(Duration),
    /// The HTTP side of the session is gone (the session was replaced or dropped).
    Disconnected,
    /// The session has already ended (after a negative notification).
    Ended,
    /// The script called the card after [`Card::close`].
    Closed,
    /// The whole session took longer than its limit.
    SessionTimeout(Duration),
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::UnexpectedSw { command, sw } => {
                write!(f, "unexpected status word {sw:04X} to {command}")
            }
            ScriptError::BadCommand(_) => f.write_str("bad command apdu"),
            ScriptError::BadResponse(_) => f.write_str("bad response apdu"),
            ScriptError::MissingResponse(command) => write!(f, "missing response to {command}"),
            ScriptError::Unsupported(unit) => {
                write!(f, "{unit} is not available in the gp dialect")
            }
            ScriptError::ClientAborted(reason) => write!(f, "client aborted: {reason}"),
            ScriptError::ClientTimeout(limit) => {
                write!(f, "client did not answer within {limit:?}")
            }
            ScriptError::Disconnected => f.write_str("client went away"),
            ScriptError::Ended => f.write_str("session already ended"),
            ScriptError::Closed => f.write_str("card already closed"),
            ScriptError::SessionTimeout(limit) => {
                write!(f, "session time limit of {limit:?} reached")
            }
        }
    }
}

impl std::error::Error for ScriptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ScriptError::BadCommand(e) | ScriptError::BadResponse(e) => Some(e),
            _ => None,
        }
    }
}

impl ScriptError {
    /// Whether the client is no longer listening, so there is nobody to notify.
    fn client_gone(&self) -> bool {
        matches!(
            self,
            ScriptError::ClientAborted(_)
                | ScriptError::ClientTimeout(_)
                | ScriptError::Disconnected
                | ScriptError::Ended
        )
    }
}

/// One unit of a command template, independent of the dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unit {
    /// An encoded command APDU.
    Apdu(Vec<u8>),
    /// Reset the card (OpenSCDP `C0 00`).
    Reset,
    /// A message for the user (OpenSCDP `E0`).
    Notify {
        /// The code; negative ends the session.
        id: i32,
        /// The text.
        message: String,
    },
}

/// One object of a client response template, independent of the dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyItem {
    /// A response APDU: data ‖ SW1 SW2.
    Response(Vec<u8>),
    /// The ATR after a reset.
    Atr(Vec<u8>),
    /// The client gave up, with its reason.
    Abort(String),
}

/// What the script side hands to the HTTP side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// A command template; the client's response is awaited.
    Template(Vec<Unit>),
    /// A last command template, ending with a negative notification (OpenSCDP): the
    /// reference clients stop at it without posting; a client that answers it gets `204`.
    Last(Vec<Unit>),
    /// The session is over: answer `204`.
    End,
}

/// Where a session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// The script runs.
    Running,
    /// The script ended normally.
    Completed,
    /// The script failed or the session was dropped, with the reason.
    Failed(String),
}

/// What both sides of a session write and the status endpoint reads.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) state: State,
    pub(crate) log: Vec<String>,
    pub(crate) round_trips: u32,
    pub(crate) templates: u32,
    pub(crate) ended_at: Option<Instant>,
    /// Units waiting for the next template.
    pending: Vec<Unit>,
    /// Set by a negative notification: the next template is the last.
    ending: Option<String>,
}

impl Record {
    /// Appends log lines (a multi-line entry is split), up to [`MAX_LOG_LINES`].
    pub(crate) fn log(&mut self, entry: &str) {
        for line in entry.lines() {
            if self.log.len() < MAX_LOG_LINES {
                self.log.push(line.to_owned());
            }
        }
    }

    /// Sets the final state once; later calls keep the first.
    pub(crate) fn finish(&mut self, state: State) {
        if self.state != State::Running {
            return;
        }
        match &state {
            State::Completed => self.log("session completed"),
            State::Failed(reason) => self.log(&format!("session failed: {reason}")),
            State::Running => {}
        }
        self.state = state;
        self.ended_at = Some(Instant::now());
    }
}

/// The record shared by the script task, the HTTP handlers and the status endpoint.
#[derive(Debug)]
pub(crate) struct Shared(Mutex<Record>);

impl Shared {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Shared(Mutex::new(Record {
            state: State::Running,
            log: Vec::new(),
            round_trips: 0,
            templates: 0,
            ended_at: None,
            pending: Vec::new(),
            ending: None,
        })))
    }

    /// Locks the record. A panic while it was held leaves plain data behind, so a poisoned
    /// lock is still used.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Record> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The script's end of the channels to the HTTP handler.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) steps: mpsc::Sender<Step>,
    pub(crate) replies: mpsc::Receiver<Vec<ReplyItem>>,
}

/// The remote card, as `new Card(session.cardTerminal)` in the seed.
#[derive(Debug)]
pub struct Card {
    link: Link,
    shared: Arc<Shared>,
    dialect: Dialect,
    exchange_timeout: Duration,
    trace: TraceFormatter,
    sw: u16,
    /// Set once the last step went to the HTTP side.
    done: bool,
    /// Set by [`Card::close`].
    closed: bool,
    /// The ATR the SERAM Local Agent reported in its handshake (its `seId`).
    reported_atr: Vec<u8>,
}

impl Card {
    pub(crate) fn new(
        link: Link,
        shared: Arc<Shared>,
        dialect: Dialect,
        exchange_timeout: Duration,
    ) -> Self {
        Card {
            link,
            shared,
            dialect,
            exchange_timeout,
            trace: TraceFormatter::new(LOG_SLOT_ID),
            sw: 0,
            done: false,
            closed: false,
            reported_atr: Vec::new(),
        }
    }

    /// Sets the ATR [`Card::reset`] returns in the SERAM dialect.
    pub(crate) fn with_reported_atr(mut self, atr: Vec<u8>) -> Self {
        self.reported_atr = atr;
        self
    }

    /// Resets the card and returns its ATR (`card.reset(Card.RESET_COLD)`). GP Amd B has
    /// no reset, so it fails with [`ScriptError::Unsupported`] there; GP SERAM has none
    /// either, but its Local Agent powered the card on before the handshake, so the ATR it
    /// reported is returned without a round trip (the card is not reset).
    pub async fn reset(&mut self) -> Result<Vec<u8>, ScriptError> {
        match self.dialect {
            Dialect::GlobalPlatform => return Err(ScriptError::Unsupported("reset")),
            Dialect::Seram if self.done => return Err(ScriptError::Ended),
            Dialect::Seram if self.closed => return Err(ScriptError::Closed),
            Dialect::Seram => {
                let atr = self.reported_atr.clone();
                self.shared.lock().log(&self.trace.atr(&atr));
                return Ok(atr);
            }
            Dialect::OpenScdp => {}
        }
        let items = self.exchange(Unit::Reset).await?;
        let atr = items
            .into_iter()
            .find_map(|item| match item {
                ReplyItem::Atr(atr) => Some(atr),
                _ => None,
            })
            .ok_or(ScriptError::MissingResponse("reset"))?;
        self.shared.lock().log(&self.trace.atr(&atr));
        Ok(atr)
    }

    /// Sends one command APDU and returns its response data (`card.sendApdu`); the status
    /// word is then [`Card::sw`].
    ///
    /// `le` is Ne, the number of bytes expected (1 to 65536; 256 is written `Le = 00` in a
    /// short APDU), or `None` for no Le field. An empty `expected_sws` accepts any status
    /// word; otherwise a status word not in it fails with [`ScriptError::UnexpectedSw`],
    /// which ends the session.
    // The argument list mirrors the seed's `sendApdu(cla, ins, p1, p2, data, le, [sw])`.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_apdu(
        &mut self,
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        data: Option<&[u8]>,
        le: Option<u32>,
        expected_sws: &[u16],
    ) -> Result<Vec<u8>, ScriptError> {
        let mut command = CommandApdu::new(cla, ins, p1, p2);
        command.data = data.map(<[u8]>::to_vec).unwrap_or_default();
        command.ne = le;
        let response = self
            .send_batch(std::slice::from_ref(&command))
            .await?
            .into_iter()
            .next()
            .ok_or(ScriptError::MissingResponse(command_name(cla, ins)))?;
        if !expected_sws.is_empty() && !expected_sws.contains(&response.sw.0) {
            return Err(ScriptError::UnexpectedSw {
                command: command_name(cla, ins),
                sw: response.sw.0,
            });
        }
        Ok(response.data)
    }

    /// Sends several command APDUs in one template and returns their responses in order;
    /// [`Card::sw`] is then the last one's status word. In the OpenSCDP dialect every
    /// command runs; in the GP dialect the client stops after the first status word other
    /// than `9000` or `61xx`, so fewer responses may come back (at least one).
    pub async fn send_batch(
        &mut self,
        commands: &[CommandApdu],
    ) -> Result<Vec<ResponseApdu>, ScriptError> {
        let mut units = Vec::with_capacity(commands.len());
        for command in commands {
            units.push(Unit::Apdu(
                command.encode().map_err(ScriptError::BadCommand)?,
            ));
        }
        let first = commands
            .first()
            .map_or("empty batch", |c| command_name(c.cla, c.ins));
        let items = self.exchange_all(units).await?;
        let mut responses = Vec::new();
        let mut shared = self.shared.lock();
        for (command, item) in commands.iter().zip(items) {
            let ReplyItem::Response(bytes) = item else {
                return Err(ScriptError::MissingResponse(command_name(
                    command.cla,
                    command.ins,
                )));
            };
            let response = ResponseApdu::parse(&bytes).map_err(ScriptError::BadResponse)?;
            shared.log(&self.trace.command(command));
            shared.log(&self.trace.response(&response));
            responses.push(response);
        }
        drop(shared);
        let complete = match self.dialect {
            Dialect::OpenScdp | Dialect::Seram => responses.len() == commands.len(),
            Dialect::GlobalPlatform => !responses.is_empty() || commands.is_empty(),
        };
        if !complete {
            return Err(ScriptError::MissingResponse(first));
        }
        if let Some(last) = responses.last() {
            self.sw = last.sw.0;
        }
        Ok(responses)
    }

    /// The status word of the last response (`card.SW`); 0 before the first one.
    pub fn sw(&self) -> u16 {
        self.sw
    }

    /// Closes the card (`card.close()`). Nothing is sent: the close is logged, and once the
    /// script returns the client gets the rest of the queued notifications, then `204`
    /// (see the module documentation). Later card calls fail with [`ScriptError::Closed`];
    /// notifications can still be queued.
    pub fn close(&mut self) {
        self.shared.lock().log("close");
        self.closed = true;
    }

    async fn exchange(&mut self, unit: Unit) -> Result<Vec<ReplyItem>, ScriptError> {
        self.exchange_all(vec![unit]).await
    }

    /// Sends the queued units and `units` as one template and waits for the response.
    async fn exchange_all(&mut self, units: Vec<Unit>) -> Result<Vec<ReplyItem>, ScriptError> {
        if self.done {
            return Err(ScriptError::Ended);
        }
        if self.closed {
            return Err(ScriptError::Closed);
        }
        let (pending, ending) = {
            let mut shared = self.shared.lock();
            (std::mem::take(&mut shared.pending), shared.ending.clone())
        };
        if let Some(reason) = ending {
            self.end(up_to_negative(pending), State::Failed(reason));
            return Err(ScriptError::Ended);
        }
        let mut template = pending;
        template.extend(units);
        let items = self.round_trip(template).await?;
        let abort = items.iter().find_map(|item| match item {
            ReplyItem::Abort(message) => Some(message.clone()),
            _ => None,
        });
        match abort {
            Some(message) => Err(ScriptError::ClientAborted(message)),
            None => Ok(items),
        }
    }

    /// Hands a template to the HTTP side and waits for the client's response.
    async fn round_trip(&mut self, template: Vec<Unit>) -> Result<Vec<ReplyItem>, ScriptError> {
        self.shared.lock().templates += 1;
        self.link
            .steps
            .send(Step::Template(template))
            .await
            .map_err(|_| ScriptError::Disconnected)?;
        match tokio::time::timeout(self.exchange_timeout, self.link.replies.recv()).await {
            Err(_) => Err(ScriptError::ClientTimeout(self.exchange_timeout)),
            Ok(None) => Err(ScriptError::Disconnected),
            Ok(Some(items)) => Ok(items),
        }
    }

    /// Sends the last step: the final units when the dialect can carry them (OpenSCDP),
    /// else the end; records the final state.
    fn end(&mut self, units: Vec<Unit>, state: State) {
        self.done = true;
        let step = if self.dialect != Dialect::GlobalPlatform && !units.is_empty() {
            self.shared.lock().templates += 1;
            Step::Last(units)
        } else {
            Step::End
        };
        // The HTTP side may be gone (client timeout); then nobody needs the step.
        let _ = self.link.steps.try_send(step);
        self.shared.lock().finish(state);
    }

    /// Ends the session after the script returned `result` (see the module documentation).
    pub(crate) async fn finish(mut self, result: Result<(), ScriptError>) {
        if self.done {
            // The last step went out during the script (a negative notification); the
            // record holds the final state already.
            return;
        }
        let (pending, ending) = {
            let mut shared = self.shared.lock();
            (std::mem::take(&mut shared.pending), shared.ending.clone())
        };
        match (result, ending) {
            (Ok(()), Some(reason)) => self.end(up_to_negative(pending), State::Failed(reason)),
            (Ok(()), None) if pending.is_empty() => self.end(Vec::new(), State::Completed),
            (Ok(()), None) => match self.round_trip(pending).await {
                Ok(_) => self.end(Vec::new(), State::Completed),
                Err(error) => self.end(Vec::new(), State::Failed(error.to_string())),
            },
            (Err(error), _) if error.client_gone() => {
                self.end(Vec::new(), State::Failed(error.to_string()))
            }
            (Err(error), _) => {
                // The failure goes alone: whatever was queued is logged already, and the
                // client stops at the negative id.
                let message = format!("Script failed: {error}");
                self.shared
                    .lock()
                    .log(&format!("notification -1: {message}"));
                self.end(
                    vec![Unit::Notify { id: -1, message }],
                    State::Failed(error.to_string()),
                );
            }
        }
    }
}

/// The queued units up to and including the first negative notification: a client stops
/// there, so nothing after it would be seen.
fn up_to_negative(mut units: Vec<Unit>) -> Vec<Unit> {
    if let Some(at) = units
        .iter()
        .position(|u| matches!(u, Unit::Notify { id, .. } if *id < 0))
    {
        units.truncate(at + 1);
    }
    units
}

/// The session side of the API (`session` and `session.cardTerminal` in the seed).
#[derive(Debug)]
pub struct ScriptSession {
    shared: Arc<Shared>,
    dialect: Dialect,
}

impl ScriptSession {
    pub(crate) fn new(shared: Arc<Shared>, dialect: Dialect) -> Self {
        ScriptSession { shared, dialect }
    }

    /// The dialect the client speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Queues a notification for the user (`sendNotification(code, message)`); it goes out
    /// with the next template and costs no round trip. A negative code ends the session:
    /// the next template is the last (see the module documentation). In the GP dialect the
    /// notification is only logged.
    pub async fn send_notification(&self, code: i32, message: impl Into<String>) {
        let message = message.into();
        let mut shared = self.shared.lock();
        shared.log(&format!("notification {code}: {message}"));
        if code < 0 && shared.ending.is_none() {
            shared.ending = Some(format!("notification {code}: {message}"));
        }
        if self.dialect != Dialect::GlobalPlatform {
            shared.pending.push(Unit::Notify { id: code, message });
        }
    }
}

/// Runs `script` to its end within `limit`, then ends the session.
pub(crate) async fn run(script: ScriptFn, mut card: Card, session: ScriptSession, limit: Duration) {
    let result = match tokio::time::timeout(limit, script(&mut card, &session)).await {
        Ok(result) => result,
        Err(_) => Err(ScriptError::SessionTimeout(limit)),
    };
    card.finish(result).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` in the OpenSCDP dialect, answering every template with `reply`, and
    /// returns the steps the HTTP side received and the final state.
    async fn steps_of(script: ScriptFn, reply: Vec<ReplyItem>) -> (Vec<Step>, State) {
        let (steps_tx, mut steps) = mpsc::channel(1);
        let (replies, replies_rx) = mpsc::channel(1);
        let shared = Shared::new();
        let link = Link {
            steps: steps_tx,
            replies: replies_rx,
        };
        let card = Card::new(
            link,
            shared.clone(),
            Dialect::OpenScdp,
            Duration::from_secs(5),
        );
        let session = ScriptSession::new(shared.clone(), Dialect::OpenScdp);
        let task = tokio::spawn(run(script, card, session, Duration::from_secs(5)));
        let mut seen = Vec::new();
        while let Some(step) = steps.recv().await {
            let template = matches!(step, Step::Template(_));
            seen.push(step);
            if template {
                replies.send(reply.clone()).await.expect("script waits");
            }
        }
        task.await.expect("script task");
        let state = shared.lock().state.clone();
        (seen, state)
    }

    fn notify(id: i32, message: &str) -> Unit {
        Unit::Notify {
            id,
            message: message.into(),
        }
    }

    fn close_then_notify<'a>(card: &'a mut Card, session: &'a ScriptSession) -> ScriptFuture<'a> {
        Box::pin(async move {
            card.close();
            session.send_notification(0, "Done").await;
            Ok(())
        })
    }

    fn apdu_after_close<'a>(card: &'a mut Card, session: &'a ScriptSession) -> ScriptFuture<'a> {
        Box::pin(async move {
            session.send_notification(0, "Working").await;
            card.close();
            card.send_apdu(0x00, 0x84, 0x00, 0x00, None, Some(8), &[])
                .await?;
            Ok(())
        })
    }

    fn two_notifications_then_more<'a>(
        _card: &'a mut Card,
        session: &'a ScriptSession,
    ) -> ScriptFuture<'a> {
        Box::pin(async move {
            session.send_notification(0, "Checking").await;
            session.send_notification(-2, "Wrong card").await;
            session.send_notification(0, "Never seen").await;
            Ok(())
        })
    }

    #[tokio::test]
    async fn a_close_sends_no_unit() {
        // The notification queued with the close goes alone, then the end.
        let (steps, state) = steps_of(close_then_notify, Vec::new()).await;
        assert_eq!(
            steps,
            vec![Step::Template(vec![notify(0, "Done")]), Step::End]
        );
        assert_eq!(state, State::Completed);
    }

    #[tokio::test]
    async fn card_calls_after_close_fail_alone() {
        // The failure notification goes in a template of its own, the queued one dropped.
        let (steps, state) = steps_of(apdu_after_close, Vec::new()).await;
        assert_eq!(
            steps,
            vec![Step::Last(vec![notify(
                -1,
                "Script failed: card already closed"
            )])]
        );
        assert_eq!(state, State::Failed("card already closed".into()));
    }

    #[tokio::test]
    async fn a_negative_notification_ends_the_last_template() {
        let (steps, state) = steps_of(two_notifications_then_more, Vec::new()).await;
        assert_eq!(
            steps,
            vec![Step::Last(vec![
                notify(0, "Checking"),
                notify(-2, "Wrong card")
            ])]
        );
        assert_eq!(state, State::Failed("notification -2: Wrong card".into()));
    }
}
