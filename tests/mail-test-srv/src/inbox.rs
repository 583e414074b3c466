//! The web inbox at `GET /`: one hand-written page (`inbox/index.html`, `.css`, `.js`,
//! embedded in the binary) over the Mailpit API, live updates as server-sent events at
//! `/events`, and each message at its own address, `/view/{ID}`, which serves the same page.
//!
//! A message's HTML is never inserted into the inbox: `/view/{ID}.html` serves it as its own
//! document, under a CSP with `sandbox` (no script, an opaque origin, even when opened on its
//! own) that allows only inline styles and `data:` images, and the inbox shows it in an
//! `<iframe sandbox>`. `cid:` images are inlined as `data:` URLs. The inbox page has a CSP of
//! its own: scripts, styles and connections from this origin only.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use futures_util::Stream;
use serde::Deserialize;

use crate::http::HttpState;
use crate::mailpit::resolve;

const PAGE: &str = include_str!("inbox/index.html");
const SCRIPT: &str = include_str!("inbox/inbox.js");
const STYLE: &str = include_str!("inbox/inbox.css");

/// The inbox page's policy: nothing but this origin's script, style, fetches and frames.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";
/// A message's HTML: sandboxed (no script, opaque origin), inline styles and `data:` images
/// only, no network. No `frame-ancestors 'self'`: under `sandbox` the document's origin is
/// opaque, so Chromium matches 'self' against nothing and refuses to show it in the inbox.
pub(crate) const MESSAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
    img-src data:; sandbox; base-uri 'none'; form-action 'none'";

/// Live updates come at most this often, however fast mail arrives.
const EVENT_INTERVAL: Duration = Duration::from_millis(250);

pub(crate) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/", get(page))
        .route("/view/{file}", get(view))
        .route("/inbox.js", get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/inbox.css", get(|| async { asset(STYLE, "text/css; charset=utf-8") }))
        .route("/events", get(events))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn page(State(st): State<HttpState>) -> Response {
    inbox_page(&st)
}

fn inbox_page(st: &HttpState) -> Response {
    // A socket address has no character that HTML would read as markup.
    let mut response = PAGE.replace("{{SMTP}}", &st.smtp_addr.to_string()).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Debug, Default, Deserialize)]
struct ViewQuery {
    query: Option<String>,
}

/// `/view/{ID}` is the inbox showing that message; `/view/{ID}.html` and `/view/{ID}.txt` are
/// the message's HTML and text parts alone (Mailpit's addresses for them).
async fn view(
    State(st): State<HttpState>,
    Path(file): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "Not found").into_response();
    if let Some(id) = file.strip_suffix(".html") {
        let Some(m) = resolve(&st, id, q.query.as_deref()).and_then(|id| st.store.get(id)) else {
            return not_found();
        };
        let Some(html) = m.html.clone() else { return not_found() };
        let html = inline_cid_images(&m, html);
        let mut response = html.into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(MESSAGE_CSP));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        return response;
    }
    if let Some(id) = file.strip_suffix(".txt") {
        let Some(m) = resolve(&st, id, q.query.as_deref()).and_then(|id| st.store.get(id)) else {
            return not_found();
        };
        let mut response = m.text.unwrap_or_default().into_response();
        let h = response.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        return response;
    }
    // The page itself: the script loads the message (or says it is gone).
    inbox_page(&st)
}

/// Replaces `cid:` references to inline parts by `data:` URLs, so the message's images show
/// under a policy that allows no network.
fn inline_cid_images(m: &crate::StoredMessage, mut html: String) -> String {
    for a in m.attachments.iter().filter(|a| !a.content_id.is_empty()) {
        let reference = format!("cid:{}", a.content_id);
        if !html.contains(&reference) {
            continue;
        }
        let Some((content_type, _, bytes)) = m.part(&a.part_id) else { continue };
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        html = html.replace(&reference, &format!("data:{content_type};base64,{encoded}"));
    }
    html
}

/// `change` events: one at once, then one after each burst of changes to the store (at most
/// every [`EVENT_INTERVAL`]), each with the message count. Ends at shutdown.
async fn events(State(st): State<HttpState>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = st.store.changes();
    let stream =
        futures_util::stream::unfold((changes, st, true), |(mut rx, st, first)| async move {
            if !first {
                tokio::select! {
                    changed = rx.changed() => changed.ok()?,
                    () = st.shutdown.cancelled() => return None,
                }
                tokio::select! {
                    () = tokio::time::sleep(EVENT_INTERVAL) => {}
                    () = st.shutdown.cancelled() => return None,
                }
                rx.borrow_and_update();
            }
            let data = format!("{{\"total\":{},\"unread\":{}}}", st.store.len(), st.store.unread());
            let event = Event::default().event("change").data(data);
            Some((Ok(event), (rx, st, false)))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
