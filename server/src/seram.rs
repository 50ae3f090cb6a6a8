//! The GP SERAM Remote Agent endpoints (HTTP REST binding, `spec/gpseram.yaml`), running
//! the card-update scripts of [`apps`](crate::apps) like `/rt/<app>`:
//! - `POST /seram/<app>/handshake?sessionId=<id>`: a Handshake Command starts the script
//!   under `<id>` (replacing a running session of that id). `200` with the Handshake
//!   Response (`HTTPS`, `application/json`, `2.0.0`; the data format under both
//!   `chosenDataProtocol` and `chosenDataFormat`, the two names the specification uses);
//!   `406` when the Local Agent offers none of these; `404` for an unknown app or an id
//!   that is not 1 to 128 characters of `A-Z a-z 0-9 . _ - ~`; `400` for a body that is not
//!   a Handshake Command.
//! - `POST /seram/<app>/remoteManagement?sessionId=<id>`: a Report in, an Order out. The
//!   first Order carrying Commands starts with Start; the script's C-APDUs of one template
//!   go in one SE RAM Command (a notification between them splits it); notifications are
//!   Notification Commands; the script's end is a Stop Command (after the last template's
//!   Commands). Orders with Commands say `delay` 0; when the script has nothing to send
//!   within [`LONG_POLL`] the answer is the void Order `{}` (the Local Agent then pauses its
//!   default 1 s). A Report with an error status ends the script (`client aborted`) and is
//!   answered with Stop. `404` for an unknown or ended session, `400` for a body that is
//!   not a Report.
//! - `GET /seram/session?sessionId=<id>`: the session's state and log, as `/rt/session`.
//!
//! The card's ATR is the first offered Secure Element's `seId` read as hex (what
//! card-relay sends); `card.reset()` returns it without a round trip, SERAM having no
//! reset. A Report sent again after a lost answer is not recognised: the binding gives no
//! sequence number to tell it from the next one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use card_relay::proto::hex;
use card_relay::proto::seram::{
    AgentStatus, Command, HandshakeCommand, HandshakeResponse, Order, Report, DATA_FORMAT_JSON,
    TRANSPORT_HTTPS, VERSION,
};
use card_relay::session::Dialect;
use tokio::sync::mpsc;

use crate::apps;
use crate::ram::{Limits, MAX_BODY};
use crate::script::{
    self, Card, Link, ReplyItem, ScriptSession, Shared, State as RunState, Step, Unit,
};
use crate::web::{self, json_string, Origin};

/// How long a Report waits for the script's next Commands before the void Order: below
/// the binding's 30 s ("Remote Agent SHOULD NOT use period of time beyond 30 seconds").
pub const LONG_POLL: Duration = Duration::from_secs(25);

/// How long a request waits for another request of its session to finish.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The longest session id accepted.
const MAX_ID_LEN: usize = 128;

/// The HTTP side of a session.
#[derive(Debug)]
struct Side {
    steps: mpsc::Receiver<Step>,
    replies: mpsc::Sender<Vec<ReplyItem>>,
    /// The last Order carried Commands whose Report the script waits for.
    awaiting: bool,
    /// Start has been sent.
    started: bool,
}

#[derive(Debug)]
struct Entry {
    app: String,
    shared: Arc<Shared>,
    side: Arc<tokio::sync::Mutex<Side>>,
    task: tokio::task::AbortHandle,
}

/// The SERAM endpoints' state.
#[derive(Debug)]
struct SeramState {
    allowed_origins: Vec<String>,
    limits: Limits,
    sessions: Mutex<HashMap<String, Entry>>,
}

impl SeramState {
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The SERAM routes, with their own state.
pub(crate) fn routes(allowed_origins: Vec<String>, limits: Limits) -> Router {
    let state = Arc::new(SeramState {
        allowed_origins,
        limits,
        sessions: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/seram/session", get(status).options(preflight))
        .route("/seram/{app}/handshake", post(handshake).options(preflight))
        .route(
            "/seram/{app}/remoteManagement",
            post(remote_management).options(preflight),
        )
        .with_state(state)
}

async fn preflight(State(state): State<Arc<SeramState>>, headers: HeaderMap) -> Response {
    web::preflight(&headers, &state.allowed_origins)
}

/// The `sessionId` query parameter, percent-decoded, if it is a usable id.
fn session_id(query: Option<&str>) -> Option<String> {
    let raw = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("sessionId="))?;
    let mut bytes = Vec::new();
    let mut rest = raw.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let pair = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(pair, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let id = String::from_utf8(bytes).ok()?;
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~'));
    ok.then_some(id)
}

fn json(body: String) -> Response {
    web::json(StatusCode::OK, body)
}

async fn handshake(
    State(state): State<Arc<SeramState>>,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    Origin::serve(&headers, &state.allowed_origins, |_| {
        start(&state, &app, query.as_deref(), &body)
    })
}

fn start(state: &SeramState, app: &str, query: Option<&str>, body: &[u8]) -> Response {
    let Some(script_fn) = apps::lookup(app) else {
        return web::text(StatusCode::NOT_FOUND, "unknown app");
    };
    let Some(id) = session_id(query) else {
        return web::text(StatusCode::NOT_FOUND, "sessionId not found");
    };
    if body.len() > MAX_BODY {
        return web::text(StatusCode::PAYLOAD_TOO_LARGE, "request body over 64 KiB");
    }
    let Ok((command, offers)) = HandshakeCommand::decode(body) else {
        return web::text(StatusCode::BAD_REQUEST, "not a handshake command");
    };
    let offered = |list: &[String], want: &str| list.iter().any(|v| v == want);
    if !offered(&offers.transports, TRANSPORT_HTTPS)
        || !offered(&offers.formats, DATA_FORMAT_JSON)
        || !offered(&offers.versions, VERSION)
    {
        return web::text(StatusCode::NOT_ACCEPTABLE, "no acceptable proposal");
    }
    let atr = command
        .secure_elements
        .first()
        .and_then(|se| hex::parse(&se.se_id).ok())
        .unwrap_or_default();
    let (steps_tx, steps_rx) = mpsc::channel(1);
    let (replies_tx, replies_rx) = mpsc::channel(1);
    let shared = Shared::new();
    shared.lock().log(&format!("seram session at /seram/{app}"));
    shared.lock().log(&format!(" ATR: {}", hex::spaced(&atr)));
    let mut sessions = state.sessions();
    let keep = state.limits.keep_finished;
    sessions.retain(|_, e| e.shared.lock().ended_at.is_none_or(|t| t.elapsed() < keep));
    let running = sessions
        .iter()
        .filter(|(key, e)| **key != id && e.shared.lock().state == RunState::Running)
        .count();
    if running >= state.limits.max_sessions {
        return web::text(StatusCode::SERVICE_UNAVAILABLE, "too many sessions");
    }
    if let Some(old) = sessions.remove(&id) {
        old.task.abort();
        old.shared
            .lock()
            .finish(RunState::Failed("replaced by a new session".to_owned()));
    }
    let link = Link {
        steps: steps_tx,
        replies: replies_rx,
    };
    let card = Card::new(
        link,
        shared.clone(),
        Dialect::Seram,
        state.limits.exchange_timeout,
    )
    .with_reported_atr(atr);
    let session = ScriptSession::new(shared.clone(), Dialect::Seram);
    let task = tokio::spawn(script::run(
        script_fn,
        card,
        session,
        state.limits.session_timeout,
    ));
    let side = Side {
        steps: steps_rx,
        replies: replies_tx,
        awaiting: false,
        started: false,
    };
    sessions.insert(
        id,
        Entry {
            app: app.to_owned(),
            shared,
            side: Arc::new(tokio::sync::Mutex::new(side)),
            task: task.abort_handle(),
        },
    );
    let choice = HandshakeResponse {
        transport: Some(TRANSPORT_HTTPS.to_owned()),
        data_format: Some(DATA_FORMAT_JSON.to_owned()),
        version: Some(VERSION.to_owned()),
    };
    json(choice.encode())
}

async fn remote_management(
    State(state): State<Arc<SeramState>>,
    Path(app): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let origin = Origin::of(&headers, &state.allowed_origins);
    if origin == Origin::Refused {
        return web::text(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let mut response = exchange(&state, &app, query.as_deref(), &body).await;
    origin.decorate(&mut response);
    response
}

async fn exchange(state: &SeramState, app: &str, query: Option<&str>, body: &[u8]) -> Response {
    let found = session_id(query).and_then(|id| {
        state
            .sessions()
            .get(&id)
            .filter(|e| e.app == app)
            .map(|e| (e.shared.clone(), e.side.clone(), e.task.clone()))
    });
    let Some((shared, side, task)) = found else {
        return web::text(StatusCode::NOT_FOUND, "sessionId not found");
    };
    if shared.lock().state != RunState::Running {
        return web::text(StatusCode::NOT_FOUND, "session has ended");
    }
    let Ok(report) = Report::decode(body) else {
        return web::text(StatusCode::BAD_REQUEST, "not a report");
    };
    let Ok(mut side) = tokio::time::timeout(BUSY_WAIT, side.lock()).await else {
        return web::text(
            StatusCode::CONFLICT,
            "a request for this session is in progress",
        );
    };
    shared.lock().round_trips += 1;
    if !matches!(report.status, AgentStatus::Processed | AgentStatus::Polling) {
        let reason = format!(
            "local agent reported {}: {}",
            report.status.as_str(),
            report.error.as_deref().unwrap_or("no message")
        );
        if side.awaiting {
            // The script ends as for any client abort; its last step is the Stop.
            side.awaiting = false;
            let _ = side.replies.send(vec![ReplyItem::Abort(reason)]).await;
        } else {
            task.abort();
            shared.lock().finish(RunState::Failed(reason));
            return json(order(&mut side, vec![], true));
        }
    } else if side.awaiting {
        side.awaiting = false;
        let mut items = Vec::new();
        for rapdu in report.responses.iter().flatten() {
            match hex::parse(rapdu) {
                Ok(bytes) => items.push(ReplyItem::Response(bytes)),
                Err(_) => items.push(ReplyItem::Abort(format!("r-apdu {rapdu:?} is not hex"))),
            }
        }
        if side.replies.send(items).await.is_err() {
            return web::text(StatusCode::NOT_FOUND, "session has ended");
        }
    }
    let step = match tokio::time::timeout(LONG_POLL, side.steps.recv()).await {
        Err(_) => return json("{}".to_owned()),
        Ok(step) => step,
    };
    match step {
        Some(Step::Template(units)) => {
            side.awaiting = true;
            json(order(&mut side, units, false))
        }
        Some(Step::Last(units)) => json(order(&mut side, units, true)),
        Some(Step::End) => json(order(&mut side, Vec::new(), true)),
        None => {
            let reason = "script ended without an answer";
            shared.lock().finish(RunState::Failed(reason.to_owned()));
            web::text(StatusCode::INTERNAL_SERVER_ERROR, reason)
        }
    }
}

/// The Order of a template: Start first in the session, consecutive C-APDUs in one SE RAM
/// Command, notifications as Notification Commands, Stop last when `stop`.
fn order(side: &mut Side, units: Vec<Unit>, stop: bool) -> String {
    let mut commands = Vec::new();
    if !side.started {
        side.started = true;
        commands.push(Command::Start);
    }
    for unit in units {
        match unit {
            Unit::Apdu(apdu) => {
                let text = hex::compact(&apdu);
                match commands.last_mut() {
                    Some(Command::SeRam(list)) => list.push(text),
                    _ => commands.push(Command::SeRam(vec![text])),
                }
            }
            Unit::Notify { message, .. } => commands.push(Command::Notification(message)),
            Unit::Reset => {}
        }
    }
    if stop {
        commands.push(Command::Stop);
    }
    Order {
        delay_ms: Some(0),
        chosen_secure_element: None,
        commands,
    }
    .encode()
}

/// `GET /seram/session?sessionId=<id>`: `{"id", "app", "dialect": "seram", "state",
/// "error", "round_trips", "templates", "log": [...]}`; 404 `{"error": ...}` without one.
async fn status(
    State(state): State<Arc<SeramState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    Origin::serve(&headers, &state.allowed_origins, |_| {
        let id = session_id(query.as_deref());
        let sessions = state.sessions();
        let Some((id, entry)) = id.and_then(|id| sessions.get(&id).map(|e| (id, e))) else {
            return web::json(
                StatusCode::NOT_FOUND,
                r#"{"error":"no seram session"}"#.to_owned(),
            );
        };
        let record = entry.shared.lock();
        let (state, error) = match &record.state {
            RunState::Running => ("running", "null".to_owned()),
            RunState::Completed => ("completed", "null".to_owned()),
            RunState::Failed(reason) => ("failed", json_string(reason)),
        };
        let log: Vec<String> = record.log.iter().map(|l| json_string(l)).collect();
        json(format!(
            r#"{{"id":{},"app":{},"dialect":"seram","state":"{}","error":{},"round_trips":{},"templates":{},"log":[{}]}}"#,
            json_string(&id),
            json_string(&entry.app),
            state,
            error,
            record.round_trips,
            record.templates,
            log.join(",")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        assert_eq!(session_id(Some("sessionId=ab-1")).as_deref(), Some("ab-1"));
        assert_eq!(
            session_id(Some("x=1&sessionId=a%2Db")).as_deref(),
            Some("a-b")
        );
        assert_eq!(session_id(Some("sessionId=")), None);
        assert_eq!(session_id(Some("sessionId=a%20b")), None);
        assert_eq!(session_id(Some("sessionId=%4")), None);
        assert_eq!(session_id(None), None);
    }

    const POLLING: &[u8] =
        br#"{"localAgentStatus":{"localAgentStatusEnum":"POLLING","executedSeRamCommands":0}}"#;

    /// The long poll: with no step from the script within [`LONG_POLL`] the answer is the
    /// void Order `{}`; a step that comes later goes with the next Report. Virtual time
    /// (tokio's paused clock): the 25 s take none.
    #[tokio::test(start_paused = true)]
    async fn long_poll_answers_a_void_order() {
        let (steps_tx, steps) = mpsc::channel(1);
        let (replies, _replies_rx) = mpsc::channel(1);
        let state = SeramState {
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            sessions: Mutex::new(HashMap::new()),
        };
        let side = Side {
            steps,
            replies,
            awaiting: false,
            started: false,
        };
        state.sessions().insert(
            "s1".to_owned(),
            Entry {
                app: "test".to_owned(),
                shared: Shared::new(),
                side: Arc::new(tokio::sync::Mutex::new(side)),
                task: tokio::spawn(async {}).abort_handle(),
            },
        );
        let started = tokio::time::Instant::now();
        let void = exchange(&state, "test", Some("sessionId=s1"), POLLING).await;
        assert_eq!(started.elapsed(), LONG_POLL);
        let body = axum::body::to_bytes(void.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(&body[..], b"{}");
        steps_tx
            .send(Step::Template(vec![Unit::Apdu(vec![
                0x00, 0x84, 0x00, 0x00, 0x08,
            ])]))
            .await
            .expect("step");
        let order = exchange(&state, "test", Some("sessionId=s1"), POLLING).await;
        let body = axum::body::to_bytes(order.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(
            &body[..],
            br#"{"delay":0,"ramCommands":[{"ramCommandType":"ramStartCommand"},{"ramCommandType":"seRamCommand","listOfCAPDU":["0084000008"]}]}"#
        );
    }

    #[test]
    fn orders_group_apdus() {
        let (_, steps) = mpsc::channel(1);
        let (replies, _) = mpsc::channel(1);
        let mut side = Side {
            steps,
            replies,
            awaiting: false,
            started: false,
        };
        let units = vec![
            Unit::Apdu(vec![0x00, 0x20, 0x00, 0x81]),
            Unit::Apdu(vec![0x00, 0x84, 0x00, 0x00, 0x08]),
            Unit::Notify {
                id: 0,
                message: "Test".into(),
            },
            Unit::Apdu(vec![0x00, 0x84, 0x00, 0x00, 0x08]),
        ];
        assert_eq!(
            order(&mut side, units, false),
            r#"{"delay":0,"ramCommands":[{"ramCommandType":"ramStartCommand"},{"ramCommandType":"seRamCommand","listOfCAPDU":["00200081","0084000008"]},{"ramCommandType":"notificationCommand","deviceAppNotification":"Test"},{"ramCommandType":"seRamCommand","listOfCAPDU":["0084000008"]}]}"#
        );
        assert_eq!(
            order(&mut side, Vec::new(), true),
            r#"{"delay":0,"ramCommands":[{"ramCommandType":"ramStopCommand"}]}"#
        );
    }
}
