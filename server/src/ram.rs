//! The RAMOverHTTP endpoints (ramoverhttp.md §1): `/rt/<app>`, `/rt/fault/...`, the status
//! endpoint `/rt/session` and `/api/new-session`.
//!
//! # Dialects
//! Each session's dialect is fixed by its first POST:
//! - OpenSCDP: the body is an initiation template `E8 { C0 ATR [C1] [C2] }` (any headers).
//!   Every later POST goes to the same URL with an `AB` response template. Templates are
//!   answered `200` with `Content-Type: application/org.openscdp-content-mgt;version=1.0`
//!   ([`OPENSCDP_SCRIPT_CONTENT_TYPE`]; the clients do not check it) and an `AA` script;
//!   the end is a `204`. No template carries a close `E1` (see [`crate::script`]): after
//!   the script closes the card and returns, the client's next POST is answered `204`.
//! - GP Amd B: an empty body with `X-Admin-Protocol: globalplatform-remote-admin/...` and no
//!   `step` or `token` query. Templates are answered `200` with the GP script type,
//!   `X-Admin-Protocol` and `X-Admin-Next-URI: /rt/<app>?step=N&token=T` (N counts the
//!   templates); the client posts its `AB`/`AF` response there. The end is a `204` with
//!   `X-Admin-Protocol` and no Next-URI.
//!
//! These endpoints never run a GP SERAM session (`crate::seram` does): where a match
//! names `Dialect::Seram` beside `Dialect::OpenScdp`, it is for totality only.
//!
//! # Sessions
//! The session is the `JSESSIONID` cookie, or in the GP dialect the Next-URI's token. A
//! first POST that carries a cookie runs the RAM session under that id (the OCF client's
//! `sessionId`, or the page's own web session); one without gets a fresh 128-bit id by
//! `Set-Cookie`. A first POST under the id of a running session replaces it.
//!
//! GP agents usually keep no cookies, so each GP template's Next-URI carries a fresh token
//! T: 128 bits from the OS's random source (`/dev/urandom`), in hex, bound to that session
//! and its step N, and spent by the first POST that carries it. A POST with a token is
//! served by the token alone (a cookie beside it is ignored): an unknown (forged), spent
//! (reused) or superseded (stale) token is refused with 403 and reaches no session; a step
//! other than the token's is refused with 400. The cookie with `?step=N` stays a fallback.
//!
//! Any other POST needs the cookie of a running session of the same endpoint: without one
//! it is refused with 400, with an unknown or ended one with 403. A client that answers the
//! failure notification that ended its session (the reference clients do not) gets `204`.
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
    /// The token of the GP Next-URI handed out last, while unspent.
    token: Option<String>,
    /// A last template went out (OpenSCDP failure notification): a reply to it gets `204`.
    last_sent: bool,
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

/// What a GP Next-URI token opens: one session, at one step.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TokenTarget {
    /// The session id.
    id: String,
    /// The step of the Next-URI that carried the token.
    step: u32,
}

/// The sessions by id, and the unspent GP Next-URI tokens.
#[derive(Debug, Default)]
struct Registry {
    sessions: HashMap<String, Entry>,
    tokens: HashMap<String, TokenTarget>,
}

/// The server's state.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) allowed_origins: Vec<String>,
    limits: Limits,
    registry: Mutex<Registry>,
}

impl AppState {
    pub(crate) fn new(allowed_origins: Vec<String>, limits: Limits) -> Self {
        AppState {
            allowed_origins,
            limits,
            registry: Mutex::new(Registry::default()),
        }
    }

    /// Locks the registry; a poisoned lock still holds consistent entries.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry
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

/// The value of query parameter `name`, if present.
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The `step` query parameter: `None` without one, `Some(None)` when it is not a number.
fn query_step(query: Option<&str>) -> Option<Option<u32>> {
    query_param(query, "step").map(|n| n.parse().ok())
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
    let token = query_param(parts.uri.query(), "token");
    let (script, delay) = match endpoint {
        Endpoint::Fault(fault) => return fault_answer(fault, dialect, body).await,
        Endpoint::Script(script) => (Some(script), None),
        Endpoint::Slow(delay) => (None, Some(delay)),
    };
    let first = match dialect {
        Dialect::GlobalPlatform if body.is_empty() && step.is_none() && token.is_none() => {
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
        None => {
            let post = Post {
                path: &path,
                headers: &parts.headers,
                step,
                token,
                body,
            };
            continue_session(state, post).await
        }
    }
}

/// A fault endpoint's answer, in the dialect the request's headers speak.
async fn fault_answer(fault: Fault, dialect: Dialect, body: &[u8]) -> Response {
    let (content_type, gp) = match dialect {
        Dialect::OpenScdp | Dialect::Seram => (OPENSCDP_SCRIPT_CONTENT_TYPE, false),
        Dialect::GlobalPlatform => (GP_SCRIPT_CONTENT_TYPE, true),
    };
    let mut response = fault.respond(content_type, gp, body).await;
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
        token: None,
        last_sent: false,
    }));
    {
        let mut registry = state.registry();
        prune(&mut registry, state.limits.keep_finished);
        // The session this one replaces does not count.
        let running = registry
            .sessions
            .iter()
            .filter(|(key, e)| **key != id && e.shared.lock().state == RunState::Running)
            .count();
        if running >= state.limits.max_sessions {
            return web::text(StatusCode::SERVICE_UNAVAILABLE, "too many sessions");
        }
        if let Some(old) = registry.sessions.remove(&id) {
            old.kill("replaced by a new session");
            // Its Next-URI must not reach the new session under the same id.
            registry.tokens.retain(|_, target| target.id != id);
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
        registry.sessions.insert(
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
    let live = Live {
        state,
        id: &id,
        dialect: start.dialect,
        path: &start.path,
        shared: &shared,
    };
    let mut response = answer(step, &mut side, &live);
    if set_cookie {
        web::insert(
            response.headers_mut(),
            header::SET_COOKIE,
            &origin.session_cookie(&id),
        );
    }
    response
}

/// A POST that is not a first POST.
struct Post<'a> {
    /// The endpoint path, `/rt/<app>`.
    path: &'a str,
    headers: &'a HeaderMap,
    /// The `step` query parameter.
    step: Option<Option<u32>>,
    /// The `token` query parameter (GP Next-URI).
    token: Option<&'a str>,
    body: &'a [u8],
}

/// The session a later POST names: by its Next-URI token if it has one (the token is spent
/// whatever follows), else by its cookie. The second value is the token's step; the error
/// is the refusal's status and text.
fn find_session(
    state: &AppState,
    post: &Post<'_>,
) -> Result<(String, Option<u32>), (StatusCode, &'static str)> {
    let Some(token) = post.token else {
        return match web::session_id(post.headers) {
            Some(id) => Ok((id, None)),
            None => Err((StatusCode::BAD_REQUEST, NOT_A_FIRST_POST)),
        };
    };
    match state.registry().tokens.remove(token) {
        Some(target) => Ok((target.id, Some(target.step))),
        None => Err((StatusCode::FORBIDDEN, "unknown or spent token")),
    }
}

async fn continue_session(state: &AppState, post: Post<'_>) -> Response {
    let (id, token_step) = match find_session(state, &post) {
        Ok(found) => found,
        Err((code, text)) => return web::text(code, text),
    };
    let found = state.registry().sessions.get(&id).map(|e| {
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
    if session_path != post.path {
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
    let live = Live {
        state,
        id: &id,
        dialect,
        path: post.path,
        shared: &shared,
    };
    if side.last_sent {
        // The reply to a failure notification: the session is over.
        side.last_sent = false;
        return answer(Some(Step::End), &mut side, &live);
    }
    if shared.lock().state != RunState::Running {
        return web::text(StatusCode::FORBIDDEN, "session has ended");
    }
    if let Some(token_step) = token_step {
        // Spent above; only the one handed out last is current.
        if side.token.as_deref() != post.token {
            return web::text(StatusCode::FORBIDDEN, "stale token");
        }
        side.token = None;
        if post.step.is_some_and(|step| step != Some(token_step)) {
            return web::text(StatusCode::BAD_REQUEST, "step does not match the token");
        }
    } else if dialect == Dialect::GlobalPlatform && post.step != Some(Some(side.step)) {
        return web::text(StatusCode::BAD_REQUEST, "unexpected step in the uri");
    }
    let items = match decode_reply(dialect, post.headers, post.body) {
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
    answer(step, &mut side, &live)
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

/// The session an answer belongs to.
struct Live<'a> {
    state: &'a AppState,
    /// The session id.
    id: &'a str,
    dialect: Dialect,
    /// The endpoint path, `/rt/<app>`.
    path: &'a str,
    shared: &'a Shared,
}

impl Live<'_> {
    /// Spends the session's current Next-URI token, if any, and hands out a fresh one for
    /// `step` (when given).
    fn renew_token(&self, side: &mut HttpSide, step: Option<u32>) -> std::io::Result<()> {
        let fresh = step.map(|_| web::new_session_id()).transpose()?;
        let mut registry = self.state.registry();
        if let Some(old) = side.token.take() {
            registry.tokens.remove(&old);
        }
        if let (Some(token), Some(step)) = (&fresh, step) {
            let target = TokenTarget {
                id: self.id.to_owned(),
                step,
            };
            registry.tokens.insert(token.clone(), target);
        }
        side.token = fresh;
        Ok(())
    }
}

/// Turns the script's next step into the HTTP answer.
fn answer(step: Option<Step>, side: &mut HttpSide, live: &Live<'_>) -> Response {
    let dialect = live.dialect;
    live.shared.lock().round_trips += 1;
    let units = match step {
        Some(Step::Template(units)) => units,
        Some(Step::Last(units)) => {
            side.last_sent = true;
            units
        }
        Some(Step::End) => {
            // An unspent token has nothing left to open.
            let _ = live.renew_token(side, None);
            let mut response = web::status(StatusCode::NO_CONTENT);
            if dialect == Dialect::GlobalPlatform {
                web::insert(response.headers_mut(), ADMIN_PROTOCOL, GP_ADMIN_PROTOCOL);
            }
            return response;
        }
        None => {
            // The script task was stopped (replaced) or panicked.
            let reason = "script ended without an answer";
            let _ = live.renew_token(side, None);
            live.shared
                .lock()
                .finish(RunState::Failed(reason.to_owned()));
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
        if live.renew_token(side, Some(side.step)).is_err() {
            let reason = "no random source for the next-uri token";
            live.shared
                .lock()
                .finish(RunState::Failed(reason.to_owned()));
            return web::text(StatusCode::INTERNAL_SERVER_ERROR, reason);
        }
        let token = side.token.as_deref().unwrap_or_default();
        let next = format!("{}?step={}&token={token}", live.path, side.step);
        web::insert(headers, ADMIN_PROTOCOL, GP_ADMIN_PROTOCOL);
        web::insert(headers, NEXT_URI, &next);
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
            Unit::Reset | Unit::Notify { .. } => None,
        })
        .collect();
    gp::CommandScript {
        form: gp::Form::Definite,
        items,
    }
}

/// Drops sessions that ended more than `keep` ago, and the tokens of sessions gone.
fn prune(registry: &mut Registry, keep: Duration) {
    let now = Instant::now();
    registry.sessions.retain(|_, e| {
        e.shared
            .lock()
            .ended_at
            .is_none_or(|t| now.duration_since(t) < keep)
    });
    let Registry { sessions, tokens } = registry;
    tokens.retain(|_, target| sessions.contains_key(&target.id));
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
    Origin::serve(
        &headers,
        &state.allowed_origins,
        |_| match web::session_id(&headers) {
            None => web::json(
                StatusCode::NOT_FOUND,
                r#"{"error":"no session cookie"}"#.to_owned(),
            ),
            Some(id) => {
                let registry = state.registry();
                match registry.sessions.get(&id) {
                    None => web::json(
                        StatusCode::NOT_FOUND,
                        r#"{"error":"no ram session for this session"}"#.to_owned(),
                    ),
                    Some(entry) => web::json(StatusCode::OK, status_json(&id, entry)),
                }
            }
        },
    )
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
    Origin::serve(
        &headers,
        &state.allowed_origins,
        |origin| match web::new_session_id() {
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
        },
    )
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
    fn query_params() {
        assert_eq!(query_param(Some("step=1&token=ab"), "token"), Some("ab"));
        assert_eq!(query_param(Some("xtoken=ab"), "token"), None);
        assert_eq!(query_param(None, "token"), None);
    }

    #[test]
    fn scripts_per_dialect() {
        let units = vec![
            Unit::Notify {
                id: 0,
                message: "Test".into(),
            },
            Unit::Apdu(vec![0x00, 0x20, 0x00, 0x81]),
        ];
        // seed.md: notification then VERIFY; no close unit E1 is ever encoded (the C
        // ram-client stops at one, ramoverhttp.md §2.2).
        let mut expected = vec![0xAA, 0x11, 0xE0, 0x09, 0x02, 0x01, 0x00, 0x0C, 0x04];
        expected.extend_from_slice(b"Test");
        expected.extend_from_slice(&[0x22, 0x04, 0x00, 0x20, 0x00, 0x81]);
        assert_eq!(openscdp_script(units.clone()).encode(), expected);
        assert_eq!(
            gp_script(units).encode(),
            vec![0xAA, 0x06, 0x22, 0x04, 0x00, 0x20, 0x00, 0x81]
        );
    }
}
