//! The mailbox: every accepted message in memory, deliveries counted by recipient in O(1),
//! a cap on the number of messages, and waiting for a count without sleeps.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// One accepted message (with all its recipients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Sequence number, from 1, unique for the server's lifetime (survives `clear`).
    pub id: u64,
    /// The envelope sender (`MAIL FROM`), empty for `<>`.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// The content exactly as received, dot-unstuffed, CRLF line endings, without the final dot.
    pub data: Vec<u8>,
    /// The `Subject` header, unfolded (encoded words are left as sent).
    pub subject: Option<String>,
    /// The `Message-ID` header, unfolded.
    pub message_id: Option<String>,
    /// Every header in order, names as sent, values unfolded and trimmed.
    pub headers: Vec<(String, String)>,
    /// The body after the blank line (lossy UTF-8).
    pub body: String,
    /// Whether the session was encrypted (STARTTLS or implicit TLS).
    pub tls: bool,
    /// When the final dot arrived.
    pub received_at: SystemTime,
    /// The EHLO/HELO name.
    pub helo: String,
    /// The authenticated user, if the session used AUTH.
    pub auth_user: Option<String>,
    /// The client's address.
    pub peer: Option<SocketAddr>,
}

impl StoredMessage {
    /// Builds a message from an envelope and raw content, parsing the headers.
    pub fn new(from: String, to: Vec<String>, data: Vec<u8>) -> StoredMessage {
        let (headers, body_start) = parse_headers(&data);
        let find = |name: &str| {
            headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        };
        StoredMessage {
            id: 0,
            subject: find("Subject"),
            message_id: find("Message-ID"),
            body: String::from_utf8_lossy(&data[body_start..]).into_owned(),
            headers,
            from,
            to,
            data,
            tls: false,
            received_at: SystemTime::now(),
            helo: String::new(),
            auth_user: None,
            peer: None,
        }
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Splits RFC 5322 headers from the body. Returns the unfolded headers and the body offset.
/// Content without a blank line is all headers if every line looks like one, else all body.
fn parse_headers(data: &[u8]) -> (Vec<(String, String)>, usize) {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let end = data[pos..].iter().position(|&b| b == b'\n').map_or(data.len(), |i| pos + i + 1);
        let line = &data[pos..end];
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            return (headers, end);
        }
        if matches!(text[0], b' ' | b'\t') {
            match headers.last_mut() {
                Some((_, value)) => {
                    value.push(' ');
                    value.push_str(String::from_utf8_lossy(text).trim());
                }
                None => return (Vec::new(), 0),
            }
        } else {
            let Some(colon) = text.iter().position(|&b| b == b':') else {
                // Not a header: there is no header block, the whole content is body.
                return (Vec::new(), 0);
            };
            let name = &text[..colon];
            if name.is_empty() || !name.iter().all(|&b| b.is_ascii_graphic()) {
                return (Vec::new(), 0);
            }
            let value = String::from_utf8_lossy(&text[colon + 1..]).trim().to_owned();
            headers.push((String::from_utf8_lossy(name).into_owned(), value));
        }
        pos = end;
    }
    (headers, data.len())
}

/// Why a message was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The store holds `max_messages` already.
    Full,
}

/// Filters shared by the HTTP API: exact matches on an envelope address, substring on subject.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A recipient that must be among the message's `to`.
    pub to: Option<String>,
    /// The envelope sender.
    pub from: Option<String>,
    /// A substring of the subject (case-insensitive).
    pub subject: Option<String>,
}

impl Filter {
    /// Whether `m` passes every filter that is set.
    pub fn matches(&self, m: &StoredMessage) -> bool {
        self.to.as_ref().is_none_or(|to| m.to.iter().any(|t| t == to))
            && self.from.as_ref().is_none_or(|from| &m.from == from)
            && self.subject.as_ref().is_none_or(|s| {
                m.subject
                    .as_ref()
                    .is_some_and(|subj| subj.to_lowercase().contains(&s.to_lowercase()))
            })
    }

    /// How many deliveries of `m` pass (recipients matching `to`, all of them otherwise).
    fn deliveries(&self, m: &StoredMessage) -> usize {
        if !(self.from.as_ref().is_none_or(|from| &m.from == from)
            && self.subject.as_ref().is_none_or(|_| self.matches(m)))
        {
            return 0;
        }
        match &self.to {
            Some(to) => m.to.iter().filter(|t| *t == to).count(),
            None => m.to.len(),
        }
    }
}

/// The mailbox handle. Clones share one store.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<watch::Sender<()>>,
    max_messages: usize,
}

#[derive(Debug, Default)]
struct Inner {
    messages: Vec<Arc<StoredMessage>>,
    deliveries: usize,
    bytes: usize,
    by_rcpt: HashMap<String, usize>,
    next_id: u64,
    full_since: Option<SystemTime>,
}

impl Store {
    /// An empty store holding at most `max_messages` messages.
    pub fn new(max_messages: usize) -> Store {
        let inner = Inner { next_id: 1, ..Inner::default() };
        Store {
            inner: Arc::new(Mutex::new(inner)),
            changed: Arc::new(watch::channel(()).0),
            max_messages,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation under this lock completes without panicking paths in between, so a
        // poisoned lock still guards consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores a message, assigning its id; `Err(Full)` at the cap.
    pub fn insert(&self, mut message: StoredMessage) -> Result<u64, StoreError> {
        let id;
        {
            let mut inner = self.lock();
            if inner.messages.len() >= self.max_messages {
                inner.full_since.get_or_insert_with(SystemTime::now);
                return Err(StoreError::Full);
            }
            id = inner.next_id;
            inner.next_id += 1;
            message.id = id;
            inner.deliveries += message.to.len();
            inner.bytes += message.data.len();
            for rcpt in &message.to {
                // Look up by &str first so the common repeat recipient costs no allocation.
                match inner.by_rcpt.get_mut(rcpt.as_str()) {
                    Some(n) => *n += 1,
                    None => {
                        inner.by_rcpt.insert(rcpt.clone(), 1);
                    }
                }
            }
            inner.messages.push(Arc::new(message));
        }
        self.changed.send_replace(());
        Ok(id)
    }

    /// Deliveries stored (message x recipient).
    pub fn count(&self) -> usize {
        self.lock().deliveries
    }

    /// Deliveries to exactly this recipient, in O(1).
    pub fn count_to(&self, rcpt: &str) -> usize {
        self.lock().by_rcpt.get(rcpt).copied().unwrap_or(0)
    }

    /// Deliveries matching a filter (O(1) for no filter or only `to`).
    pub fn count_matching(&self, filter: &Filter) -> usize {
        match filter {
            Filter { to: None, from: None, subject: None } => self.count(),
            Filter { to: Some(to), from: None, subject: None } => self.count_to(to),
            _ => self.lock().messages.iter().map(|m| filter.deliveries(m)).sum(),
        }
    }

    /// Messages stored.
    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Content bytes stored.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The cap on stored messages.
    pub fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// When the cap was first hit since the last `clear`, if it was.
    pub fn full_since(&self) -> Option<SystemTime> {
        self.lock().full_since
    }

    /// Every stored message, oldest first (one per accepted message).
    pub fn messages(&self) -> Vec<StoredMessage> {
        self.lock().messages.iter().map(|m| StoredMessage::clone(m)).collect()
    }

    /// Shared references to the messages matching `filter`, oldest first.
    pub fn matching(&self, filter: &Filter) -> Vec<Arc<StoredMessage>> {
        self.lock().messages.iter().filter(|m| filter.matches(m)).cloned().collect()
    }

    /// The `n`th delivery (0-based) matching `filter`, as `(message, recipient)`; Boulder's
    /// `/mail/N` counts one entry per recipient.
    pub fn delivery(&self, filter: &Filter, n: usize) -> Option<(Arc<StoredMessage>, String)> {
        let inner = self.lock();
        let mut left = n;
        for m in &inner.messages {
            let k = filter.deliveries(m);
            if left < k {
                let rcpt = match &filter.to {
                    Some(to) => to.clone(),
                    None => m.to[left].clone(),
                };
                return Some((Arc::clone(m), rcpt));
            }
            left -= k;
        }
        None
    }

    /// Forgets every message (ids keep counting up).
    pub fn clear(&self) {
        {
            let mut inner = self.lock();
            let next_id = inner.next_id;
            *inner = Inner { next_id, ..Inner::default() };
        }
        self.changed.send_replace(());
    }

    /// Waits until at least `count` deliveries are stored: `Ok(n)` then, `Err(n)` with the
    /// count at the deadline.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Result<usize, usize> {
        self.wait_matching(&Filter::default(), count, timeout).await
    }

    /// Waits until at least `count` deliveries match `filter`.
    pub async fn wait_matching(
        &self,
        filter: &Filter,
        count: usize,
        timeout: Duration,
    ) -> Result<usize, usize> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribe before the first check, so an insert between the check and the wait
        // still wakes us.
        let mut rx = self.changed.subscribe();
        loop {
            let n = self.count_matching(filter);
            if n >= count {
                return Ok(n);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                // The sender lives in `self`, so it cannot be dropped while we hold `self`.
                Ok(Err(_)) | Err(_) => return Err(self.count_matching(filter)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(from: &str, to: &[&str], data: &str) -> StoredMessage {
        StoredMessage::new(
            from.into(),
            to.iter().map(|s| s.to_string()).collect(),
            data.as_bytes().to_vec(),
        )
    }

    #[test]
    fn parses_headers_and_body() {
        let m = msg(
            "a@x",
            &["b@x"],
            "Subject: hello\r\n  world\r\nMessage-ID: <1@x>\r\nX-Empty:\r\n\r\nbody\r\n.line\r\n",
        );
        assert_eq!(m.subject.as_deref(), Some("hello world"));
        assert_eq!(m.message_id.as_deref(), Some("<1@x>"));
        assert_eq!(m.header("x-empty"), Some(""));
        assert_eq!(m.body, "body\r\n.line\r\n");
        let m = msg("a@x", &["b@x"], "just a body line\r\n");
        assert!(m.headers.is_empty());
        assert_eq!(m.body, "just a body line\r\n");
    }

    #[test]
    fn counts_deliveries_by_recipient() {
        let s = Store::new(10);
        s.insert(msg("a@x", &["b@x", "c@x"], "x")).unwrap();
        s.insert(msg("z@x", &["b@x"], "Subject: Hi\r\n\r\nx")).unwrap();
        assert_eq!(
            (s.count(), s.len(), s.count_to("b@x"), s.count_to("c@x"), s.count_to("d@x")),
            (3, 2, 2, 1, 0)
        );
        let f = Filter { from: Some("a@x".into()), ..Filter::default() };
        assert_eq!(s.count_matching(&f), 2);
        let f = Filter { to: Some("b@x".into()), subject: Some("hi".into()), ..Filter::default() };
        assert_eq!(s.count_matching(&f), 1);
        let (m, rcpt) = s.delivery(&Filter::default(), 1).unwrap();
        assert_eq!((m.from.as_str(), rcpt.as_str()), ("a@x", "c@x"));
        let (m, rcpt) = s.delivery(&Filter::default(), 2).unwrap();
        assert_eq!((m.from.as_str(), rcpt.as_str()), ("z@x", "b@x"));
        assert!(s.delivery(&Filter::default(), 3).is_none());
        s.clear();
        assert_eq!((s.count(), s.count_to("b@x")), (0, 0));
        assert_eq!(s.insert(msg("a@x", &["b@x"], "x")), Ok(3));
    }

    #[test]
    fn refuses_past_the_cap() {
        let s = Store::new(1);
        s.insert(msg("a@x", &["b@x"], "x")).unwrap();
        assert_eq!(s.insert(msg("a@x", &["b@x"], "x")), Err(StoreError::Full));
        assert!(s.full_since().is_some());
        assert_eq!(s.count(), 1);
    }

    #[tokio::test]
    async fn wait_for_wakes_on_insert_and_times_out() {
        let s = Store::new(10);
        assert_eq!(s.wait_for(1, Duration::from_millis(20)).await, Err(0));
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.wait_for(2, Duration::from_secs(10)).await });
        s.insert(msg("a@x", &["b@x", "c@x"], "x")).unwrap();
        assert_eq!(waiter.await.unwrap(), Ok(2));
    }
}
