//! The HTTP API: Boulder's `/count`, `/mail/N`, `/clear`, plus JSON messages, a long-poll
//! `/wait`, `/stats` and runtime fault control at `/chaos`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::fault::{Chaos, ChaosConfig, FaultMode, Stage};
use crate::stats::Counters;
use crate::store::{Filter, Store, StoredMessage};

/// The longest `/wait` may block (`timeout_ms` is capped to it).
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// `/wait` without `timeout_ms`.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// What the HTTP handlers work on: handles shared with the SMTP side.
#[derive(Clone)]
pub(crate) struct HttpState {
    /// The mailbox.
    pub store: Store,
    /// The fault controller.
    pub chaos: Chaos,
    /// The counters.
    pub counters: Arc<Counters>,
    /// Cancelled at shutdown, so long polls end.
    pub shutdown: CancellationToken,
}

/// The API routes (a plain `axum::Router`, testable without a socket).
pub(crate) fn router(state: HttpState) -> Router {
    Router::new()
        .route("/count", get(count))
        .route("/mail/{n}", get(mail))
        .route("/clear", post(clear))
        .route("/api/messages", get(list_messages))
        .route("/api/messages/{n}", get(one_message))
        .route("/wait", get(wait))
        .route("/stats", get(stats))
        .route("/chaos", get(get_chaos).put(put_chaos))
        .route("/chaos/gone-away", post(gone_away))
        .with_state(state)
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

async fn one_message(
    State(st): State<HttpState>,
    Path(n): Path<String>,
    Query(q): Query<FilterQuery>,
) -> Response {
    let index = match parse_index(&n) {
        Ok(i) => i,
        Err(bad) => return bad.into_response(),
    };
    match st.store.nth_matching(&q.into(), index) {
        Some(m) => Json(view(&m, true)).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no message {index}\n")).into_response(),
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

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC (no date crate needed for one format).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_912_321_617);
        assert_eq!(rfc3339(t), "2026-11-29T00:32:01.617Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
