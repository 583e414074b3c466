//! The HTTP side: Boulder's `/count`, `/mail/N`, `/clear`, plus JSON messages, a long-poll
//! `/wait`, `/stats` and runtime fault control at `/chaos`; the Mailpit-compatible API
//! (`mailpit.rs`) and the web inbox (`inbox.rs`) on the same listener; and [`serve`], which
//! runs it with header and idle timeouts, a connection cap and bounded request bodies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::fault::{Chaos, ChaosConfig, FaultMode, Stage};
use crate::stats::Counters;
use crate::store::{Filter, Store, StoredMessage};

/// The longest `/wait` may block (`timeout_ms` is capped to it).
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// `/wait` without `timeout_ms`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// The largest request body (every body here is a small JSON document).
pub const MAX_BODY: usize = 1 << 20;
/// How much of a too-large body is read and thrown away so the client can read the `413`.
const MAX_DRAIN: usize = 16 << 20;
/// The largest request head (request line and headers) hyper buffers.
const MAX_HEAD: usize = 64 * 1024;

/// Limits on HTTP connections, so idle or half-sent requests cannot hold the process's file
/// descriptors (which the SMTP side needs too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request head must arrive in full within this time, counted from when the server
    /// starts waiting for it: so it is also the idle limit of a kept-alive connection, and
    /// the limit for reading a request body. Default 10 s.
    pub header_timeout: Duration,
    /// Connections served at once (default 256). Further connections wait in the kernel's
    /// accept queue, holding no descriptor of ours, until one ends.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits { header_timeout: Duration::from_secs(10), max_connections: 256 }
    }
}

/// What the HTTP handlers work on: handles shared with the SMTP side.
#[derive(Clone)]
pub(crate) struct HttpState {
    /// The mailbox.
    pub store: Store,
    /// The fault controller.
    pub chaos: Chaos,
    /// The counters.
    pub counters: Arc<Counters>,
    /// Cancelled at shutdown, so long polls and live updates end.
    pub shutdown: CancellationToken,
    /// When the server started (for uptime).
    pub started: Instant,
    /// The SMTP address, shown by the inbox.
    pub smtp_addr: SocketAddr,
    /// The connection limits (the body timeout is the header timeout).
    pub limits: HttpLimits,
}

/// Every route: Boulder's API, Mailpit's `/api/v1`, and the inbox (a plain `axum::Router`,
/// testable without a socket).
pub(crate) fn router(state: HttpState) -> Router {
    let limits = state.limits;
    Router::new()
        .route("/count", get(count))
        .route("/mail/{n}", get(mail))
        .route("/clear", post(clear))
        .route("/api/messages", get(list_messages))
        .route("/api/messages/{id}", get(one_message))
        .route("/wait", get(wait))
        .route("/stats", get(stats))
        .route("/chaos", get(get_chaos).put(put_chaos))
        .route("/chaos/gone-away", post(gone_away))
        .merge(crate::mailpit::routes())
        .merge(crate::inbox::routes())
        .layer(middleware::from_fn_with_state(limits, bounded_body))
        .with_state(state)
}

/// Reads the request body up front, within the header timeout and [`MAX_BODY`]: a body that
/// trickles in gets `408`, a big one `413`, and no handler ever waits on a client.
///
/// A body over [`MAX_BODY`] is still read, and thrown away, up to [`MAX_DRAIN`] before the
/// `413` goes out: a client writes its whole body before it reads the reply, and closing a
/// socket with unread input sends a reset that destroys the reply on the client's side (the
/// client sees "broken pipe" instead of 413). Beyond that, or past the timeout, the server
/// answers and closes at once.
async fn bounded_body(State(limits): State<HttpLimits>, request: Request, next: Next) -> Response {
    use futures_util::StreamExt;

    let too_large = || (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DRAIN as u64) {
        return too_large();
    }
    let deadline = tokio::time::Instant::now() + limits.header_timeout;
    let mut chunks = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    loop {
        match tokio::time::timeout_at(deadline, chunks.next()).await {
            Err(_) => {
                return (StatusCode::REQUEST_TIMEOUT, "request body timed out\n").into_response();
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return (StatusCode::BAD_REQUEST, "request body broken\n").into_response();
            }
            Ok(Some(Ok(chunk))) => {
                seen = seen.saturating_add(chunk.len());
                if seen > MAX_DRAIN {
                    return too_large();
                }
                if seen <= MAX_BODY {
                    kept.extend_from_slice(&chunk);
                }
            }
        }
    }
    if seen > MAX_BODY {
        return too_large();
    }
    next.run(Request::from_parts(parts, Body::from(kept))).await
}

/// Serves `app` on `listener` until `shutdown`: HTTP/1.1 with keep-alive, each connection on
/// `tracker`. A connection that has not sent a whole request head within
/// [`HttpLimits::header_timeout`] (whether new, half-sent or idle between requests) is
/// closed; at most [`HttpLimits::max_connections`] are served at once. Accept errors (EMFILE)
/// are logged and retried after 50 ms. At shutdown, connections finish the response in
/// flight (at most 1 s; live-update streams end at once).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    log: Arc<dyn logger::Logger>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => return,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return, // the semaphore is never closed
            },
        };
        let (socket, _) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    logger::warning!(log, "HTTP accept failed"; error = e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let token = shutdown.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_HEAD)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(socket), service);
            tokio::pin!(connection);
            tokio::select! {
                // Errors here are the client's (timeouts, resets, garbage): nothing to log.
                _ = connection.as_mut() => {}
                () = token.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(1), connection).await;
                }
            }
        });
    }
}

#[derive(Debug, Default, Deserialize)]
struct FilterQuery {
    to: Option<String>,
    from: Option<String>,
    subject: Option<String>,
}

impl From<FilterQuery> for Filter {
    fn from(q: FilterQuery) -> Filter {
        Filter { to: q.to, from: q.from, subject: q.subject }
    }
}

async fn count(State(st): State<HttpState>, Query(q): Query<FilterQuery>) -> String {
    format!("{}\n", st.store.count_matching(&q.into()))
}

/// The `N` of `/mail/N` and `/api/messages/N`, or the `400` for anything but a number.
fn parse_index(n: &str) -> Result<usize, (StatusCode, String)> {
    n.parse().map_err(|_| (StatusCode::BAD_REQUEST, format!("bad message number {n:?}\n")))
}

async fn mail(
    State(st): State<HttpState>,
    Path(n): Path<String>,
    Query(q): Query<FilterQuery>,
) -> Response {
    let index = match parse_index(&n) {
        Ok(i) => i,
        Err(bad) => return bad.into_response(),
    };
    match st.store.delivery(&q.into(), index) {
        Some((m, rcpt)) => {
            let mut body = format!("FROM {}\nTO {}\n\n", m.from, rcpt).into_bytes();
            body.extend_from_slice(&m.data);
            body.push(b'\n');
            ([("content-type", "text/plain; charset=utf-8")], body).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no message {index}\n")).into_response(),
    }
}

async fn clear(State(st): State<HttpState>) -> &'static str {
    st.store.clear();
    "ok\n"
}

/// The JSON form of a stored message.
#[derive(Debug, Serialize)]
struct MessageView<'a> {
    id: u64,
    from: &'a str,
    to: &'a [String],
    subject: Option<&'a str>,
    message_id: Option<&'a str>,
    headers: &'a [(String, String)],
    body: &'a str,
    size: usize,
    received_at: String,
    received_at_unix_ms: u128,
    tls: bool,
    helo: &'a str,
    auth_user: Option<&'a str>,
    peer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<String>,
}

fn view(m: &StoredMessage, raw: bool) -> MessageView<'_> {
    let since_epoch = m.received_at.duration_since(UNIX_EPOCH).unwrap_or_default();
    MessageView {
        id: m.id,
        from: &m.from,
        to: &m.to,
        subject: m.subject.as_deref(),
        message_id: m.message_id.as_deref(),
        headers: &m.headers,
        body: &m.body,
        size: m.data.len(),
        received_at: rfc3339(m.received_at),
        received_at_unix_ms: since_epoch.as_millis(),
        tls: m.tls,
        helo: &m.helo,
        auth_user: m.auth_user.as_deref(),
        peer: m.peer.map(|p| p.to_string()),
        raw: raw.then(|| String::from_utf8_lossy(&m.data).into_owned()),
    }
}

async fn list_messages(State(st): State<HttpState>, Query(q): Query<FilterQuery>) -> Response {
    let messages = st.store.matching(&q.into());
    let views: Vec<_> = messages.iter().map(|m| view(m, false)).collect();
    Json(views).into_response()
}

async fn one_message(State(st): State<HttpState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return (StatusCode::BAD_REQUEST, format!("bad message id {id:?}\n")).into_response();
    };
    match st.store.get(id) {
        Some(m) => Json(view(&m, true)).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no message {id}\n")).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct WaitQuery {
    count: usize,
    to: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    timeout_ms: Option<u64>,
}

/// `200 N\n` once `count` deliveries match, `408 N\n` (the count then) on timeout.
async fn wait(State(st): State<HttpState>, Query(q): Query<WaitQuery>) -> Response {
    let timeout = q.timeout_ms.map_or(DEFAULT_WAIT, Duration::from_millis).min(MAX_WAIT);
    let filter = Filter { to: q.to, from: q.from, subject: q.subject };
    let waited = tokio::select! {
        r = st.store.wait_matching(&filter, q.count, timeout) => r,
        () = st.shutdown.cancelled() => Err(st.store.count_matching(&filter)),
    };
    match waited {
        Ok(n) => format!("{n}\n").into_response(),
        Err(n) => (StatusCode::REQUEST_TIMEOUT, format!("{n}\n")).into_response(),
    }
}

async fn stats(State(st): State<HttpState>) -> Response {
    Json(st.counters.snapshot(&st.store)).into_response()
}

async fn get_chaos(State(st): State<HttpState>) -> Json<ChaosConfig> {
    Json(st.chaos.get())
}

/// A partial update: fields left out keep their value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChaosPatch {
    chance: Option<f64>,
    stage: Option<Stage>,
    mode: Option<FaultMode>,
    close_first: Option<u64>,
    reject_code: Option<u16>,
    delay_ms: Option<u64>,
    gone_away_ms: Option<u64>,
    seed: Option<u64>,
}

async fn put_chaos(State(st): State<HttpState>, Json(patch): Json<ChaosPatch>) -> Response {
    if patch.reject_code.is_some_and(|c| !(400..=599).contains(&c)) {
        return (StatusCode::BAD_REQUEST, "reject_code must be from 400 to 599\n").into_response();
    }
    if patch.chance.is_some_and(|c| !(0.0..=100.0).contains(&c)) {
        return (StatusCode::BAD_REQUEST, "chance must be a percentage from 0 to 100\n")
            .into_response();
    }
    let mut config = st.chaos.get();
    config.chance = patch.chance.unwrap_or(config.chance);
    config.stage = patch.stage.unwrap_or(config.stage);
    config.mode = patch.mode.unwrap_or(config.mode);
    config.close_first = patch.close_first.unwrap_or(config.close_first);
    config.reject_code = patch.reject_code.unwrap_or(config.reject_code);
    config.delay_ms = patch.delay_ms.unwrap_or(config.delay_ms);
    st.chaos.set(config);
    if let Some(seed) = patch.seed {
        st.chaos.reseed(seed);
    }
    if let Some(ms) = patch.gone_away_ms {
        st.chaos.gone_away(Duration::from_millis(ms));
    }
    Json(st.chaos.get()).into_response()
}

#[derive(Debug, Deserialize)]
struct GoneAwayQuery {
    ms: u64,
}

async fn gone_away(
    State(st): State<HttpState>,
    Query(q): Query<GoneAwayQuery>,
) -> Json<ChaosConfig> {
    st.chaos.gone_away(Duration::from_millis(q.ms));
    Json(st.chaos.get())
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_912_321_617);
        assert_eq!(rfc3339(t), "2026-11-29T00:32:01.617Z");
    }
}
