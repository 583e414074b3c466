//! The Mailpit-compatible API (`/api/v1/...`), with Mailpit's field names and shapes, so that
//! Mailpit's published clients (npm `mailpit-api`, `cypress-mailpit`) work unchanged.
//!
//! Differences from Mailpit, all in what a fake server cannot or need not do: there are no
//! tags (always empty), no attachment checksums, no relay, no HTML/link/spam checks. `From`
//! falls back to the envelope sender when the message has no `From` header; `Bcc` lists the
//! `Bcc` header and the envelope recipients that `To`/`Cc` do not name (as Mailpit does).
//! A malformed JSON body is a `400` (Mailpit deletes everything on `DELETE` with one).
//! Chaos maps Mailpit's triggers onto [`Chaos`](crate::Chaos): `Sender` is a reject fault at
//! MAIL, `Recipient` at RCPT, one stage at a time; `Authentication` is not faulted.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::fault::{ChaosConfig, FaultMode, Stage};
use crate::http::{HttpState, rfc3339};
use crate::mime::Address;
use crate::store::StoredMessage;

/// The `/api/v1` routes.
pub(crate) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/api/v1/info", get(info))
        .route("/api/v1/webui", get(webui))
        .route("/api/v1/messages", get(list).put(set_read).delete(delete))
        .route("/api/v1/search", get(search).delete(delete_search))
        .route("/api/v1/message/{id}", get(message))
        .route("/api/v1/message/{id}/headers", get(headers))
        .route("/api/v1/message/{id}/raw", get(raw))
        .route("/api/v1/message/{id}/part/{part}", get(part))
        .route("/api/v1/chaos", get(get_chaos).put(put_chaos))
}

/// Mailpit's error answers: `400` with the reason as text, `404 Not found`.
#[derive(Debug)]
enum Refusal {
    BadRequest(String),
    NotFound,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::BadRequest(reason) => (StatusCode::BAD_REQUEST, reason).into_response(),
            Refusal::NotFound => (StatusCode::NOT_FOUND, "Not found").into_response(),
        }
    }
}

fn bad_request(reason: impl Into<String>) -> Response {
    Refusal::BadRequest(reason.into()).into_response()
}

fn not_found() -> Response {
    Refusal::NotFound.into_response()
}

fn ok() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], "ok").into_response()
}

/// A message id in a path: a number, or `latest` (the newest message; with `?query=`, the
/// newest one matching it).
pub(crate) fn resolve(st: &HttpState, id: &str, query: Option<&str>) -> Option<u64> {
    if id != "latest" {
        return id.parse().ok();
    }
    match query.map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => st.store.search_ids(q, 0, 1).ids.first().copied(),
        None => st.store.latest_id(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct Page {
    start: Option<String>,
    limit: Option<String>,
    query: Option<String>,
}

impl Page {
    /// Mailpit's `getStartLimit`: start 0 and limit 50 unless valid numbers are given.
    fn bounds(&self) -> (usize, usize) {
        let start = self.start.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0);
        let limit = self.limit.as_deref().and_then(|s| s.parse().ok()).unwrap_or(50);
        (start, limit)
    }
}

fn address(a: &Address) -> Value {
    json!({ "Name": a.name, "Address": a.address })
}

fn addresses(list: &[Address]) -> Value {
    Value::Array(list.iter().map(address).collect())
}

fn from(m: &StoredMessage) -> Value {
    match m.header_from.first() {
        Some(a) => address(a),
        None if m.from.is_empty() => Value::Null,
        None => json!({ "Name": "", "Address": m.from }),
    }
}

/// The `Bcc` header, plus envelope recipients not named in `To` or `Cc`.
fn bcc(m: &StoredMessage) -> Value {
    let named = |rcpt: &str| {
        m.header_to.iter().chain(&m.cc).chain(&m.bcc).any(|a| a.address.eq_ignore_ascii_case(rcpt))
    };
    let mut list: Vec<Value> = m.bcc.iter().map(address).collect();
    list.extend(m.to.iter().filter(|r| !named(r)).map(|r| json!({ "Name": "", "Address": r })));
    Value::Array(list)
}

fn message_id(m: &StoredMessage) -> String {
    let id = m.message_id.as_deref().unwrap_or_default();
    id.trim().trim_start_matches('<').trim_end_matches('>').to_owned()
}

/// Up to 200 characters of the text, white space collapsed, `...` when cut (Mailpit's).
pub(crate) fn snippet(m: &StoredMessage) -> String {
    let text = m.text.as_deref().unwrap_or_default();
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &collapsed[..cut]),
        None => collapsed,
    }
}

/// Mailpit's `MessageSummary`.
pub(crate) fn summary(m: &StoredMessage) -> Value {
    json!({
        "ID": m.id.to_string(),
        "MessageID": message_id(m),
        "Read": m.read,
        "From": from(m),
        "To": addresses(&m.header_to),
        "Cc": addresses(&m.cc),
        "Bcc": bcc(m),
        "ReplyTo": addresses(&m.reply_to),
        "Subject": m.subject.as_deref().unwrap_or_default(),
        "Created": rfc3339(m.received_at),
        "Username": m.auth_user.as_deref().unwrap_or_default(),
        "Tags": [],
        "Size": m.data.len(),
        "Attachments": m.attachments.iter().filter(|a| !a.inline).count(),
        "Snippet": snippet(m),
    })
}

fn attachment(a: &crate::mime::Attachment) -> Value {
    json!({
        "PartID": a.part_id,
        "FileName": a.filename,
        "ContentType": a.content_type,
        "ContentID": a.content_id,
        "Size": a.size,
    })
}

/// Mailpit's `Message`.
fn full(m: &StoredMessage) -> Value {
    let (inline, attached): (Vec<_>, Vec<_>) = m.attachments.iter().partition(|a| a.inline);
    json!({
        "ID": m.id.to_string(),
        "MessageID": message_id(m),
        "From": from(m),
        "To": addresses(&m.header_to),
        "Cc": addresses(&m.cc),
        "Bcc": bcc(m),
        "ReplyTo": addresses(&m.reply_to),
        "ReturnPath": m.from,
        "Subject": m.subject.as_deref().unwrap_or_default(),
        "ListUnsubscribe": {
            "Header": m.header("List-Unsubscribe").unwrap_or_default(),
            "Links": [],
            "Errors": "",
            "HeaderPost": m.header("List-Unsubscribe-Post").unwrap_or_default(),
        },
        "Date": rfc3339(m.date.unwrap_or(m.received_at)),
        "Tags": [],
        "Username": m.auth_user.as_deref().unwrap_or_default(),
        "Text": m.text.as_deref().unwrap_or_default(),
        "HTML": m.html.as_deref().unwrap_or_default(),
        "Size": m.data.len(),
        "Inline": inline.into_iter().map(attachment).collect::<Vec<_>>(),
        "Attachments": attached.into_iter().map(attachment).collect::<Vec<_>>(),
    })
}

/// Mailpit's `MessagesSummary`.
fn messages_summary(
    st: &HttpState,
    start: usize,
    matched: usize,
    matched_unread: usize,
    messages: &[StoredMessage],
) -> Value {
    json!({
        "total": st.store.len(),
        "unread": st.store.unread(),
        "count": messages.len(),
        "messages_count": matched,
        "messages_unread": matched_unread,
        "start": start,
        "tags": [],
        "messages": messages.iter().map(summary).collect::<Vec<_>>(),
    })
}

fn json_response(value: &Value) -> Response {
    axum::Json(value).into_response()
}

async fn list(State(st): State<HttpState>, Query(page): Query<Page>) -> Response {
    let (start, limit) = page.bounds();
    let messages = st.store.newest(start, limit);
    let (total, unread) = (st.store.len(), st.store.unread());
    json_response(&messages_summary(&st, start, total, unread, &messages))
}

async fn search(State(st): State<HttpState>, Query(page): Query<Page>) -> Response {
    let query = page.query.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if query.is_empty() {
        return bad_request("Error: no search query");
    }
    let (start, limit) = page.bounds();
    let store = st.store.clone();
    // The index may take milliseconds at 100,000 messages: off the async workers.
    let searched = tokio::task::spawn_blocking(move || {
        let hits = store.search_ids(&query, start, limit);
        let messages = store.get_many(&hits.ids);
        (hits, messages)
    })
    .await;
    let Ok((hits, messages)) = searched else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "search failed").into_response();
    };
    json_response(&messages_summary(&st, start, hits.total, hits.unread, &messages))
}

async fn delete_search(State(st): State<HttpState>, Query(page): Query<Page>) -> Response {
    let query = page.query.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if query.is_empty() {
        return bad_request("Error: no search query");
    }
    let store = st.store.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let ids = store.search_ids(&query, 0, usize::MAX).ids;
        store.delete(&ids);
    })
    .await;
    ok()
}

/// Mailpit's ids are strings; numbers are taken too. Ids that are not numbers match nothing.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(u64),
}

impl Id {
    fn value(&self) -> Option<u64> {
        match self {
            Id::Text(s) => s.trim().parse().ok(),
            Id::Number(n) => Some(*n),
        }
    }
}

fn ids(list: &[Id]) -> Vec<u64> {
    list.iter().filter_map(Id::value).collect()
}

#[derive(Debug, Default, Deserialize)]
struct DeleteRequest {
    #[serde(rename = "IDs", default)]
    ids: Vec<Id>,
}

/// A JSON body, where an empty body means the default.
fn body<T: Default + serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| Refusal::BadRequest(e.to_string()))
}

async fn delete(State(st): State<HttpState>, bytes: Bytes) -> Response {
    let request: DeleteRequest = match body(&bytes) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    if request.ids.is_empty() {
        st.store.clear();
    } else {
        st.store.delete(&ids(&request.ids));
    }
    ok()
}

#[derive(Debug, Default, Deserialize)]
struct ReadRequest {
    #[serde(rename = "Read", default)]
    read: bool,
    #[serde(rename = "IDs", default)]
    ids: Vec<Id>,
    #[serde(rename = "Search", default)]
    search: String,
}

async fn set_read(State(st): State<HttpState>, bytes: Bytes) -> Response {
    let request: ReadRequest = match body(&bytes) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    if !request.ids.is_empty() && !request.search.is_empty() {
        return bad_request("You may specify either IDs or a search query, not both");
    }
    if !request.search.is_empty() {
        let matched = st.store.search_ids(&request.search, 0, usize::MAX).ids;
        st.store.mark_read(Some(&matched), request.read);
    } else if request.ids.is_empty() {
        st.store.mark_read(None, request.read);
    } else {
        st.store.mark_read(Some(&ids(&request.ids)), request.read);
    }
    ok()
}

#[derive(Debug, Default, Deserialize)]
struct LatestQuery {
    query: Option<String>,
    dl: Option<String>,
}

/// The message an `{ID}` path names, or Mailpit's `404`.
fn stored(st: &HttpState, id: &str, q: &LatestQuery) -> Result<StoredMessage, Refusal> {
    let id = resolve(st, id, q.query.as_deref()).ok_or(Refusal::NotFound)?;
    st.store.get(id).ok_or(Refusal::NotFound)
}

async fn message(
    State(st): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<LatestQuery>,
) -> Response {
    match stored(&st, &id, &q) {
        Ok(mut m) => {
            // Mailpit marks a message read when its summary is fetched.
            st.store.mark_read(Some(&[m.id]), true);
            m.read = true;
            json_response(&full(&m))
        }
        Err(e) => e.into_response(),
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`, as Mailpit's header map keys are written:
/// `message-id` becomes `Message-Id`.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.extend(if upper {
            c.to_uppercase().collect::<Vec<_>>()
        } else {
            c.to_lowercase().collect()
        });
        upper = c == '-';
    }
    out
}

async fn headers(
    State(st): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<LatestQuery>,
) -> Response {
    let m = match stored(&st, &id, &q) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &m.headers {
        map.entry(canonical(name)).or_default().push(value.clone());
    }
    axum::Json(map).into_response()
}

async fn raw(
    State(st): State<HttpState>,
    Path(id): Path<String>,
    Query(q): Query<LatestQuery>,
) -> Response {
    let Some(id) = resolve(&st, &id, q.query.as_deref()) else { return not_found() };
    let Some(data) = st.store.data(id) else { return not_found() };
    let mut response = data.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if q.dl.as_deref() == Some("1") {
        let value = format!("attachment; filename=\"{id}.eml\"");
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

/// Go's `url.PathEscape` for a file name in `Content-Disposition` (Mailpit's choice): it
/// also keeps quotes and line breaks out of the header.
fn path_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn part(
    State(st): State<HttpState>,
    Path((id, part_id)): Path<(String, String)>,
    Query(q): Query<LatestQuery>,
) -> Response {
    let m = match stored(&st, &id, &q) {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let Some((content_type, filename, bytes)) = m.part(&part_id) else { return not_found() };
    let content_id =
        m.attachments.iter().find(|a| a.part_id == part_id).map(|a| a.content_id.clone());
    let name = if filename.is_empty() { content_id.unwrap_or_default() } else { filename };
    let disposition = if q.dl.as_deref() == Some("1") { "attachment" } else { "inline" };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Ok(v) =
        HeaderValue::from_str(&format!("{disposition}; filename=\"{}\"", path_escape(&name)))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    // An HTML or SVG attachment opened from here must not run script in this origin.
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The resident set size of this process, from `/proc/self/status` (0 elsewhere).
fn memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

async fn info(State(st): State<HttpState>) -> Response {
    let stats = st.counters.snapshot(&st.store);
    json_response(&json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "LatestVersion": "disabled",
        "Database": "memory",
        "DatabaseSize": stats.stored_bytes,
        "Messages": stats.stored_messages,
        "Unread": st.store.unread(),
        "Tags": {},
        "RuntimeStats": {
            "Uptime": st.started.elapsed().as_secs(),
            "Memory": memory(),
            "MessagesDeleted": st.store.deleted(),
            "SMTPAccepted": stats.messages,
            "SMTPAcceptedSize": stats.bytes,
            "SMTPRejected": stats.rejected_full + stats.rejected_too_big + stats.faults_reject,
            "SMTPIgnored": 0,
        },
    }))
}

async fn webui() -> Response {
    json_response(&json!({
        "Label": "mail-test-srv",
        "MessageRelay": { "Enabled": false },
        "SpamAssassin": false,
        "ChaosEnabled": true,
        "DuplicatesIgnored": false,
        "HideDeleteAllButton": false,
    }))
}

/// One of Mailpit's chaos triggers.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct Trigger {
    #[serde(rename = "ErrorCode", default)]
    error_code: u16,
    #[serde(rename = "Probability", default)]
    probability: f64,
}

#[derive(Debug, Default, Deserialize)]
struct Triggers {
    #[serde(rename = "Sender", default)]
    sender: Trigger,
    #[serde(rename = "Recipient", default)]
    recipient: Trigger,
    #[serde(rename = "Authentication", default)]
    authentication: Trigger,
}

/// Our configuration in Mailpit's shape: the faulting stage's trigger carries the chance
/// (rounded to a whole percent) and the reply code (421 for close/421/mixed faults).
fn triggers(config: &ChaosConfig) -> Value {
    let code = if config.mode == FaultMode::Reject { config.reject_code } else { 421 };
    let trigger = |stage: Stage, default: u16| {
        if config.stage == stage && config.chance > 0.0 {
            json!({ "ErrorCode": code, "Probability": config.chance.round() as u64 })
        } else {
            json!({ "ErrorCode": default, "Probability": 0 })
        }
    };
    json!({
        "Sender": trigger(Stage::Mail, 451),
        "Recipient": trigger(Stage::Rcpt, 451),
        "Authentication": { "ErrorCode": 535, "Probability": 0 },
    })
}

async fn get_chaos(State(st): State<HttpState>) -> Response {
    json_response(&triggers(&st.chaos.get()))
}

/// Mailpit's `SetFromStruct`: omitted triggers reset to 0 %, error code 0 means the default.
async fn put_chaos(State(st): State<HttpState>, bytes: Bytes) -> Response {
    let t: Triggers = match body(&bytes) {
        Ok(t) => t,
        Err(bad) => return bad.into_response(),
    };
    for trigger in [t.sender, t.recipient, t.authentication] {
        if trigger.error_code != 0 && !(400..=599).contains(&trigger.error_code) {
            return bad_request("error code must be between 400 and 599");
        }
        if !(0.0..=100.0).contains(&trigger.probability) {
            return bad_request("probability must be between 0 and 100");
        }
    }
    if t.authentication.probability > 0.0 {
        return bad_request(
            "mail-test-srv does not fault authentication (use Sender or Recipient)",
        );
    }
    let mut config = st.chaos.get();
    let set = match (t.sender.probability > 0.0, t.recipient.probability > 0.0) {
        (true, true) => {
            return bad_request(
                "mail-test-srv faults one stage at a time: set Sender or Recipient, not both",
            );
        }
        (true, false) => Some((Stage::Mail, t.sender)),
        (false, true) => Some((Stage::Rcpt, t.recipient)),
        (false, false) => None,
    };
    match set {
        Some((stage, trigger)) => {
            config.stage = stage;
            config.mode = FaultMode::Reject;
            config.reject_code = if trigger.error_code == 0 { 451 } else { trigger.error_code };
            config.chance = trigger.probability;
        }
        None => config.chance = 0.0,
    }
    st.chaos.set(config);
    json_response(&triggers(&st.chaos.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical_as_go_writes_them() {
        assert_eq!(canonical("message-ID"), "Message-Id");
        assert_eq!(canonical("X-MAILER"), "X-Mailer");
        assert_eq!(canonical("subject"), "Subject");
    }

    #[test]
    fn file_names_are_path_escaped() {
        assert_eq!(path_escape("a b\"\r\n.pdf"), "a%20b%22%0D%0A.pdf");
        assert_eq!(path_escape("été.txt"), "%C3%A9t%C3%A9.txt");
    }

    #[test]
    fn snippets_collapse_and_cut() {
        let mut m =
            StoredMessage::new("a@x".into(), vec![], b"\r\nhello\r\n\r\n  world\r\n".to_vec());
        assert_eq!(snippet(&m), "hello world");
        m.text = Some("é".repeat(300));
        assert_eq!(snippet(&m), format!("{}...", "é".repeat(200)));
    }

    #[test]
    fn chaos_triggers_show_the_faulting_stage() {
        let config = ChaosConfig {
            chance: 35.4,
            stage: Stage::Rcpt,
            mode: FaultMode::Reject,
            reject_code: 550,
            ..ChaosConfig::default()
        };
        let t = triggers(&config);
        assert_eq!(t["Recipient"], json!({"ErrorCode": 550, "Probability": 35}));
        assert_eq!(t["Sender"], json!({"ErrorCode": 451, "Probability": 0}));
        let t = triggers(&ChaosConfig { chance: 10.0, ..ChaosConfig::default() });
        assert_eq!(t["Sender"], json!({"ErrorCode": 421, "Probability": 10}));
    }
}
