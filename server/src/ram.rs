//! The RAMOverHTTP endpoints (ramoverhttp.md §1): `/rt/<app>`, `/rt/fault/...`, the status
//! endpoint `/rt/session` and `/api/new-session`.
//!
//! # Dialects
//! Each session's dialect is fixed by its first POST:
//! - OpenSCDP: the body is an initiation template `E8 { C0 ATR [C1] [C2] }` (any headers).
//!   Every later POST goes to the same URL with an `AB` response template. Templates are
//!   answered `200` with `Content-Type: application/org.openscdp-content-mgt;version=1.0`
//!   ([`OPENSCDP_SCRIPT_CONTENT_TYPE`]; the clients do not check it) and an `AA` script; the
//!   end is a `204`.
//! - GP Amd B: an empty body with `X-Admin-Protocol: globalplatform-remote-admin/...` and no
//!   `step` query. Templates are answered `200` with the GP script type,
//!   `X-Admin-Protocol` and `X-Admin-Next-URI: /rt/<app>?step=N` (N counts the templates);
//!   the client posts its `AB`/`AF` response there. The end is a `204` with
//!   `X-Admin-Protocol` and no Next-URI.
//!
//! These endpoints never run a GP SERAM session (`crate::seram` does): where a match
//! names `Dialect::Seram` beside `Dialect::OpenScdp`, it is for totality only.
//!
//! # Sessions
//! The session is the `JSESSIONID` cookie. A first POST that carries one runs the RAM
//! session under that id (the OCF client's `sessionId`, or the page's own web session); one
//! without gets a fresh 128-bit id by `Set-Cookie`. A first POST under the id of a running
//! session replaces it. Any other POST needs the cookie of a running session of the same
//! endpoint: without one it is refused with 400, with an unknown or ended one with 403.
//!
//! Limits ([`Limits`]): request bodies of at most [`MAX_BODY`] bytes (413 beyond), a client
//! answer within the exchange limit (the session is dropped otherwise), a whole session
//! within the session limit, at most `max_sessions` running at once (503 beyond); ended
//! sessions stay for the status endpoint during `keep_finished`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use card_relay::proto::ram::{gp, openscdp, RamError, GP_SCRIPT_CONTENT_TYPE};
use card_relay::session::{Dialect, GP_ADMIN_PROTOCOL};
use tokio::sync::mpsc;

use crate::apps;
use crate::fault::Fault;
use crate::script::{
    self, Card, Link, ReplyItem, ScriptFn, ScriptSession, Shared, State as RunState, Step, Unit,
};
use crate::web::{self, json_string, Origin};

/// The Content-Type of the OpenSCDP command scripts this server sends. The OpenSCDP server's
/// own value could not be found (ramoverhttp.md §1.2); this one mirrors the response type.
pub const OPENSCDP_SCRIPT_CONTENT_TYPE: &str = "application/org.openscdp-content-mgt;version=1.0";

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// The longest `slow-ms` delay accepted, in milliseconds.
const MAX_SLOW_MS: u64 = 120_000;

/// GP Amd B protocol header, sent with every GP answer.
const ADMIN_PROTOCOL: HeaderName = HeaderName::from_static("x-admin-protocol");
/// GP Amd B: where the client posts next; absent on the last answer.
const NEXT_URI: HeaderName = HeaderName::from_static("x-admin-next-uri");
/// GP Amd B: the client's verdict on the script it ran (`ok` or an error value).
const SCRIPT_STATUS: &str = "x-admin-script-status";

/// The text of a POST that is neither a first POST nor part of a session.
const NOT_A_FIRST_POST: &str = "no session cookie: a first post carries an initiation \
     template E8 (openscdp) or is empty with x-admin-protocol (gp)";

/// Time and size limits of RAM sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long a script waits for the client's next POST (60 s, as the OCF
    /// `RemoteTerminal`, ramoverhttp.md §1.2); the session is dropped after it.
    pub exchange_timeout: Duration,
    /// How long a whole session may run.
    pub session_timeout: Duration,
    /// How many sessions may run at once.
    pub max_sessions: usize,
    /// How long an ended session stays for the status endpoint.
    pub keep_finished: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            exchange_timeout: Duration::from_secs(60),
            session_timeout: Duration::from_secs(600),
            max_sessions: 64,
            keep_finished: Duration::from_secs(300),
        }
    }
}

/// The HTTP handler's end of a session's channels.
#[derive(Debug)]
struct HttpSide {
    steps: mpsc::Receiver<Step>,
    replies: mpsc::Sender<Vec<ReplyItem>>,
    /// Templates sent so far; the GP Next-URI step number.
    step: u32,
}

/// A session in the registry.
#[derive(Debug)]
struct Entry {
    /// The endpoint path, `/rt/<app>`.
    path: String,
    dialect: Dialect,
    shared: Arc<Shared>,
    http: Arc<tokio::sync::Mutex<HttpSide>>,
    task: tokio::task::AbortHandle,
}

impl Entry {
    /// Stops the script and records why.
    fn kill(&self, reason: &str) {
        self.task.abort();
        self.shared
            .lock()
            .finish(RunState::Failed(reason.to_owned()));
    }
}

/// The server's state.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) allowed_origins: Vec<String>,
    limits: Limits,
    sessions: Mutex<HashMap<String, Entry>>,
}

impl AppState {
    pub(crate) fn new(allowed_origins: Vec<String>, limits: Limits) -> Self {
        AppState {
            allowed_origins,
            limits,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Locks the registry; a poisoned lock still holds consistent entries.
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What an endpoint runs.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Script(ScriptFn),
    /// The seed script (OpenSCDP) or `gp-test` (GP), first answer delayed.
    Slow(Duration),
    Fault(Fault),
}

/// `POST /rt/<app>`.
pub(crate) async fn post_app(
    State(state): State<Arc<AppState>>,
    Path(app): Path<String>,
    request: Request,
) -> Response {
    let endpoint = apps::lookup(&app).map(Endpoint::Script);
    handle(&state, format!("/rt/{app}"), endpoint, request).await
}

/// `POST /rt/fault/<kind>`.
pub(crate) async fn post_fault(
    State(state): State<Arc<AppState>>,
    Path(kind): Path<String>,
    request: Request,
) -> Response {
    let endpoint = Fault::parse(&kind).map(Endpoint::Fault);
    handle(&state, format!("/rt/fault/{kind}"), endpoint, request).await
}

/// `POST /rt/fault/slow-ms/<n>`.
pub(crate) async fn post_slow(
    State(state): State<Arc<AppState>>,
    Path(ms): Path<String>,
    request: Request,
) -> Response {
    let endpoint = ms
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms <= MAX_SLOW_MS)
        .map(|ms| Endpoint::Slow(Duration::from_millis(ms)));
    handle(&state, format!("/rt/fault/slow-ms/{ms}"), endpoint, request).await
}

/// `OPTIONS` on any API path: the CORS preflight.
pub(crate) async fn preflight(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    web::preflight(&headers, &state.allowed_origins)
}

async fn handle(
    state: &AppState,
    path: String,
    endpoint: Option<Endpoint>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let origin = Origin::of(&parts.headers, &state.allowed_origins);
    if origin == Origin::Refused {
        return web::text(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let mut response = match endpoint {
        None => web::text(StatusCode::NOT_FOUND, "unknown app"),
        Some(endpoint) => match read_body(&parts.headers, body).await {
            Err(response) => response,
            Ok(body) => serve(state, path, endpoint, &parts, &body, &origin).await,
        },
    };
    origin.decorate(&mut response);
    response
}

/// Reads the body, refusing more than [`MAX_BODY`] bytes with 413.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let too_large = || web::text(StatusCode::PAYLOAD_TOO_LARGE, "request body over 64 KiB");
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| usize::try_from(n).map_or(true, |n| n > MAX_BODY)) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| too_large())
}

/// The dialect a request's headers speak: GP when `X-Admin-Protocol` names GP remote admin.
fn header_dialect(headers: &HeaderMap) -> Dialect {
    let gp = headers
        .get(&ADMIN_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("globalplatform-remote-admin/"));
    if gp {
        Dialect::GlobalPlatform
    } else {
        Dialect::OpenScdp
    }
}

/// The `step` query parameter: `None` without one, `Some(None)` when it is not a number.
fn query_step(query: Option<&str>) -> Option<Option<u32>> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("step="))
        .map(|n| n.parse().ok())
}

async fn serve(
    state: &AppState,
    path: String,
    endpoint: Endpoint,
    parts: &Parts,
    body: &[u8],
    origin: &Origin,
) -> Response {
    let dialect = header_dialect(&parts.headers);
    let step = query_step(parts.uri.query());
    let (script, delay) = match endpoint {
        Endpoint::Fault(fault) => return fault_answer(fault, dialect).await,
        Endpoint::Script(script) => (Some(script), None),
        Endpoint::Slow(delay) => (None, Some(delay)),
    };
    let first = match dialect {
        Dialect::GlobalPlatform if body.is_empty() && step.is_none() => {
            Some((Dialect::GlobalPlatform, "gp first post".to_owned()))
        }
        _ => openscdp::InitiationTemplate::decode(body).ok().map(|t| {
            (
                Dialect::OpenScdp,
                format!(" ATR: {}", card_relay::proto::hex::spaced(&t.atr)),
            )
        }),
    };
    match first {
        Some((dialect, first_line)) => {
            // The slow fault runs the example of the client's dialect.
            let script = script.unwrap_or(match dialect {
                Dialect::OpenScdp | Dialect::Seram => apps::seed_test as ScriptFn,
                Dialect::GlobalPlatform => apps::gp_test as ScriptFn,
            });
            let start = Start {
                path,
                dialect,
                script,
                delay,
                first_line,
            };
            start_session(state, start, &parts.headers, origin).await
        }
        None => continue_session(state, &path, &parts.headers, step, body).await,
    }
}

/// A fault endpoint's answer, in the dialect the request's headers speak.
async fn fault_answer(fault: Fault, dialect: Dialect) -> Response {
    let content_type = match dialect {
        Dialect::OpenScdp | Dialect::Seram => OPENSCDP_SCRIPT_CONTENT_TYPE,
        Dialect::GlobalPlatform => GP_SCRIPT_CONTENT_TYPE,
    };
    let mut response = fault.respond(content_type).await;
    if dialect == Dialect::GlobalPlatform {
        web::insert(response.headers_mut(), ADMIN_PROTOCOL, GP_ADMIN_PROTOCOL);
    }
    response
}

/// What a first POST starts.
struct Start {
    /// The endpoint path, `/rt/<app>`.
    path: String,
    dialect: Dialect,
    script: ScriptFn,
    delay: Option<Duration>,
    first_line: String,
}

async fn start_session(
    state: &AppState,
    start: Start,
    headers: &HeaderMap,
    origin: &Origin,
) -> Response {
    let (id, set_cookie) = match web::session_id(headers) {
        Some(id) => (id, false),
        None => match web::new_session_id() {
            Ok(id) => (id, true),
            Err(_) => return web::text(StatusCode::INTERNAL_SERVER_ERROR, "no random source"),
        },
    };
    let (steps_tx, steps_rx) = mpsc::channel(1);
    let (replies_tx, replies_rx) = mpsc::channel(1);
    let shared = Shared::new();
    shared.lock().log(&format!(
        "{} session at {}",
        dialect_name(start.dialect),
        start.path
    ));
    shared.lock().log(&start.first_line);
    let http = Arc::new(tokio::sync::Mutex::new(HttpSide {
        steps: steps_rx,
        replies: replies_tx,
        step: 0,
    }));
    {
        let mut sessions = state.sessions();
        prune(&mut sessions, state.limits.keep_finished);
        // The session this one replaces does not count.
        let running = sessions
            .iter()
            .filter(|(key, e)| **key != id && e.shared.lock().state == RunState::Running)
            .count();
        if running >= state.limits.max_sessions {
            return web::text(StatusCode::SERVICE_UNAVAILABLE, "too many sessions");
        }
        if let Some(old) = sessions.remove(&id) {
            old.kill("replaced by a new session");
        }
        let link = Link {
            steps: steps_tx,
            replies: replies_rx,
        };
        let card = Card::new(
            link,
            shared.clone(),
            start.dialect,
            state.limits.exchange_timeout,
        );
        let session = ScriptSession::new(shared.clone(), start.dialect);
        let task = tokio::spawn(script::run(
            start.script,
            card,
            session,
            state.limits.session_timeout,
        ));
        sessions.insert(
            id.clone(),
            Entry {
                path: start.path.clone(),
                dialect: start.dialect,
                shared: shared.clone(),
                http: http.clone(),
                task: task.abort_handle(),
            },
        );
    }
    if let Some(delay) = start.delay {
        tokio::time::sleep(delay).await;
    }
    let mut side = http.lock().await;
    let step = side.steps.recv().await;
    let mut response = answer(step, &mut side, start.dialect, &start.path, &shared);
    if set_cookie {
        web::insert(
            response.headers_mut(),
            header::SET_COOKIE,
            &origin.session_cookie(&id),
        );
    }
    response
}

async fn continue_session(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
    step: Option<Option<u32>>,
    body: &[u8],
) -> Response {
    let Some(id) = web::session_id(headers) else {
        return web::text(StatusCode::BAD_REQUEST, NOT_A_FIRST_POST);
    };
    let found = state.sessions().get(&id).map(|e| {
        (
            e.path.clone(),
            e.dialect,
            e.shared.clone(),
            e.http.clone(),
            e.task.clone(),
        )
    });
    let Some((session_path, dialect, shared, http, task)) = found else {
        return web::text(StatusCode::FORBIDDEN, "unknown session");
    };
    if shared.lock().state != RunState::Running {
        return web::text(StatusCode::FORBIDDEN, "session has ended");
    }
    if session_path != path {
        return web::text(
            StatusCode::BAD_REQUEST,
            "session belongs to another endpoint",
        );
    }
    let Ok(mut side) = http.try_lock() else {
        return web::text(
            StatusCode::CONFLICT,
            "a request for this session is in progress",
        );
    };
    if dialect == Dialect::GlobalPlatform && step != Some(Some(side.step)) {
        return web::text(StatusCode::BAD_REQUEST, "unexpected step in the uri");
    }
    let items = match decode_reply(dialect, headers, body) {
        Ok(items) => items,
        Err(error) => {
            task.abort();
            shared
                .lock()
                .finish(RunState::Failed(format!("bad response script: {error}")));
            return web::text(StatusCode::BAD_REQUEST, "bad response script");
        }
    };
    if side.replies.send(items).await.is_err() {
        return web::text(StatusCode::FORBIDDEN, "session has ended");
    }
    let step = side.steps.recv().await;
    answer(step, &mut side, dialect, path, &shared)
}

/// Decodes a response template into dialect-neutral items.
fn decode_reply(
    dialect: Dialect,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<ReplyItem>, RamError> {
    Ok(match dialect {
        Dialect::OpenScdp | Dialect::Seram => openscdp::ResponseScript::decode(body)?
            .items
            .into_iter()
            .map(|item| match item {
                openscdp::ResponseItem::RApdu(r) => ReplyItem::Response(r),
                openscdp::ResponseItem::Atr(a) => ReplyItem::Atr(a),
                openscdp::ResponseItem::Close { message } => ReplyItem::Abort(message),
            })
            .collect(),
        Dialect::GlobalPlatform => {
            let mut items: Vec<ReplyItem> = gp::ResponseScript::decode(body)?
                .items
                .into_iter()
                .filter_map(|item| match item {
                    gp::ResponseItem::RApdu(r) => Some(ReplyItem::Response(r)),
                    gp::ResponseItem::BadFormat(b) => {
                        Some(ReplyItem::Abort(format!("bad format {:02x}", b.to_u8())))
                    }
                    _ => None,
                })
                .collect();
            let status = headers.get(SCRIPT_STATUS).and_then(|v| v.to_str().ok());
            if let Some(status) = status.filter(|s| *s != "ok") {
                items.push(ReplyItem::Abort(format!("script status {status}")));
            }
            items
        }
    })
}

/// Turns the script's next step into the HTTP answer.
fn answer(
    step: Option<Step>,
    side: &mut HttpSide,
    dialect: Dialect,
    path: &str,
    shared: &Shared,
) -> Response {
    shared.lock().round_trips += 1;
    let units = match step {
        Some(Step::Template(units) | Step::Last(units)) => units,
        Some(Step::End) => {
            let mut response = web::status(StatusCode::NO_CONTENT);
            if dialect == Dialect::GlobalPlatform {
                web::insert(response.headers_mut(), ADMIN_PROTOCOL, GP_ADMIN_PROTOCOL);
            }
            return response;
        }
        None => {
            // The script task was stopped (replaced) or panicked.
            let reason = "script ended without an answer";
            shared.lock().finish(RunState::Failed(reason.to_owned()));
            return web::text(StatusCode::INTERNAL_SERVER_ERROR, reason);
        }
    };
    let (body, content_type) = match dialect {
        Dialect::OpenScdp | Dialect::Seram => (
            openscdp_script(units).encode(),
            OPENSCDP_SCRIPT_CONTENT_TYPE,
        ),
        Dialect::GlobalPlatform => (gp_script(units).encode(), GP_SCRIPT_CONTENT_TYPE),
    };
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    web::insert(headers, header::CONTENT_TYPE, content_type);
    web::insert(headers, header::CACHE_CONTROL, "no-store");
    if dialect == Dialect::GlobalPlatform {
        side.step += 1;
        web::insert(headers, ADMIN_PROTOCOL, GP_ADMIN_PROTOCOL);
        web::insert(headers, NEXT_URI, &format!("{path}?step={}", side.step));
    }
    response
}

fn openscdp_script(units: Vec<Unit>) -> openscdp::CommandScript {
    let commands = units
        .into_iter()
        .map(|unit| match unit {
            Unit::Apdu(apdu) => openscdp::Command::Apdu(apdu),
            Unit::Reset => openscdp::Command::Reset,
            Unit::Notify { id, message } => openscdp::Command::Notify {
                id,
                message,
                time_to_completion: None,
            },
            Unit::Close => openscdp::Command::Close {
                message: script::CLOSE_MESSAGE.to_owned(),
            },
        })
        .collect();
    openscdp::CommandScript { commands }
}

/// A GP script: only the C-APDUs (the script API never queues other units in this dialect).
fn gp_script(units: Vec<Unit>) -> gp::CommandScript {
    let items = units
        .into_iter()
        .filter_map(|unit| match unit {
            Unit::Apdu(apdu) => Some(gp::CommandItem::Apdu(apdu)),
            Unit::Reset | Unit::Notify { .. } | Unit::Close => None,
        })
        .collect();
    gp::CommandScript {
        form: gp::Form::Definite,
        items,
    }
}

/// Drops sessions that ended more than `keep` ago.
fn prune(sessions: &mut HashMap<String, Entry>, keep: Duration) {
    let now = Instant::now();
    sessions.retain(|_, e| {
        e.shared
            .lock()
            .ended_at
            .is_none_or(|t| now.duration_since(t) < keep)
    });
}

fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::OpenScdp => "openscdp",
        Dialect::GlobalPlatform => "gp",
        Dialect::Seram => "seram",
    }
}

/// `GET /rt/session`: the caller's latest RAM session as JSON:
/// `{"id", "app", "dialect", "state", "error", "round_trips", "templates", "log": [...]}`,
/// `state` being `running`, `completed` or `failed`. 404 `{"error": ...}` without one.
pub(crate) async fn session_status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let origin = Origin::of(&headers, &state.allowed_origins);
    if origin == Origin::Refused {
        return web::text(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let mut response = match web::session_id(&headers) {
        None => web::json(
            StatusCode::NOT_FOUND,
            r#"{"error":"no session cookie"}"#.to_owned(),
        ),
        Some(id) => {
            let sessions = state.sessions();
            match sessions.get(&id) {
                None => web::json(
                    StatusCode::NOT_FOUND,
                    r#"{"error":"no ram session for this session"}"#.to_owned(),
                ),
                Some(entry) => web::json(StatusCode::OK, status_json(&id, entry)),
            }
        }
    };
    origin.decorate(&mut response);
    response
}

fn status_json(id: &str, entry: &Entry) -> String {
    let record = entry.shared.lock();
    let (state, error) = match &record.state {
        RunState::Running => ("running", "null".to_owned()),
        RunState::Completed => ("completed", "null".to_owned()),
        RunState::Failed(reason) => ("failed", json_string(reason)),
    };
    let log: Vec<String> = record.log.iter().map(|l| json_string(l)).collect();
    format!(
        r#"{{"id":{},"app":{},"dialect":"{}","state":"{}","error":{},"round_trips":{},"templates":{},"log":[{}]}}"#,
        json_string(id),
        json_string(entry.path.strip_prefix("/rt/").unwrap_or(&entry.path)),
        dialect_name(entry.dialect),
        state,
        error,
        record.round_trips,
        record.templates,
        log.join(",")
    )
}

/// `GET /api/new-session`: a fresh web session id, set as the `JSESSIONID` cookie and
/// returned as `{"id": "..."}`; a RAM session started with this cookie runs under it.
pub(crate) async fn new_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Response {
    let origin = Origin::of(&headers, &state.allowed_origins);
    if origin == Origin::Refused {
        return web::text(StatusCode::FORBIDDEN, "origin not allowed");
    }
    let mut response = match web::new_session_id() {
        Err(_) => web::text(StatusCode::INTERNAL_SERVER_ERROR, "no random source"),
        Ok(id) => {
            let mut response =
                web::json(StatusCode::OK, format!(r#"{{"id":{}}}"#, json_string(&id)));
            web::insert(
                response.headers_mut(),
                header::SET_COOKIE,
                &origin.session_cookie(&id),
            );
            response
        }
    };
    origin.decorate(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_query() {
        assert_eq!(query_step(None), None);
        assert_eq!(query_step(Some("a=b")), None);
        assert_eq!(query_step(Some("step=3")), Some(Some(3)));
        assert_eq!(query_step(Some("x=1&step=x")), Some(None));
    }

    #[test]
    fn scripts_per_dialect() {
        let units = vec![
            Unit::Notify {
                id: 0,
                message: "Test".into(),
            },
            Unit::Apdu(vec![0x00, 0x20, 0x00, 0x81]),
            Unit::Close,
        ];
        // seed.md: notification then VERIFY, and the close template.
        let mut expected = vec![0xAA, 0x20, 0xE0, 0x09, 0x02, 0x01, 0x00, 0x0C, 0x04];
        expected.extend_from_slice(b"Test");
        expected.extend_from_slice(&[0x22, 0x04, 0x00, 0x20, 0x00, 0x81, 0xE1, 0x0D, 0x0C, 0x0B]);
        expected.extend_from_slice(b"Card closed");
        assert_eq!(openscdp_script(units.clone()).encode(), expected);
        assert_eq!(
            gp_script(units).encode(),
            vec![0xAA, 0x06, 0x22, 0x04, 0x00, 0x20, 0x00, 0x81]
        );
    }
}
