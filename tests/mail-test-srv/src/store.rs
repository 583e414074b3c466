//! The mailbox: every accepted message in memory under one id, deliveries counted by
//! recipient in O(1), a cap on the number of messages, waiting for a count without sleeps,
//! and the search index kept up to date (`index.rs`).
//!
//! Only the bytes and the envelope are kept; headers, text, HTML and attachments are parsed
//! again (`mime.rs`) when a message is read. Parsing a 1 KB message takes microseconds, so a
//! page of 50 costs well under a millisecond, while a cache of parsed messages would double the
//! memory of the store.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::index::{Feed, Hits, Index, Op, Source};
use crate::mime::{self, Address, Attachment};
use crate::search;

/// One accepted message (with all its recipients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// The message's id: from 1, unique for the server's lifetime (survives `clear`). The
    /// SMTP reply says `queued as <id>`, and every HTTP path and JSON `id`/`ID` uses it.
    pub id: u64,
    /// The envelope sender (`MAIL FROM`), empty for `<>`.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// The content exactly as received, dot-unstuffed, CRLF line endings, without the final dot.
    pub data: Vec<u8>,
    /// The `Subject` header, unfolded (RFC 5322) and RFC 2047-decoded, any charset.
    pub subject: Option<String>,
    /// The `Message-ID` header as sent (unfolded, with its angle brackets).
    pub message_id: Option<String>,
    /// Every header in order, names as sent, values unfolded and trimmed (not decoded).
    pub headers: Vec<(String, String)>,
    /// The body as text: the first text/plain part decoded to UTF-8 (transfer encoding and
    /// charset), else the HTML source, else the raw body after the blank line.
    pub body: String,
    /// The first text/plain part, decoded; for an HTML-only message, its HTML as text.
    pub text: Option<String>,
    /// The first text/html part, decoded.
    pub html: Option<String>,
    /// Attachments and inline parts, in MIME order.
    pub attachments: Vec<Attachment>,
    /// The addresses of the `From` header (the envelope sender is `from`).
    pub header_from: Vec<Address>,
    /// The `To` header's addresses (the envelope recipients are `to`).
    pub header_to: Vec<Address>,
    /// The `Cc` header's addresses.
    pub cc: Vec<Address>,
    /// The `Bcc` header's addresses.
    pub bcc: Vec<Address>,
    /// The `Reply-To` header's addresses.
    pub reply_to: Vec<Address>,
    /// The `Date` header, when it parses.
    pub date: Option<SystemTime>,
    /// Whether a reader opened it (`GET /api/v1/message/{ID}`) or marked it read.
    pub read: bool,
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
    /// Builds a message from an envelope and raw content, parsing it.
    pub fn new(from: String, to: Vec<String>, data: Vec<u8>) -> StoredMessage {
        let mut m = StoredMessage::unparsed(from, to, data);
        m.parse();
        m
    }

    /// The envelope and content only; the derived fields are left empty.
    pub(crate) fn unparsed(from: String, to: Vec<String>, data: Vec<u8>) -> StoredMessage {
        StoredMessage {
            id: 0,
            from,
            to,
            data,
            subject: None,
            message_id: None,
            headers: Vec::new(),
            body: String::new(),
            text: None,
            html: None,
            attachments: Vec::new(),
            header_from: Vec::new(),
            header_to: Vec::new(),
            cc: Vec::new(),
            bcc: Vec::new(),
            reply_to: Vec::new(),
            date: None,
            read: false,
            tls: false,
            received_at: SystemTime::now(),
            helo: String::new(),
            auth_user: None,
            peer: None,
        }
    }

    /// Fills the derived fields from `data`.
    fn parse(&mut self) {
        let m = mime::parse(&self.data);
        self.subject = m.subject;
        self.message_id = m.message_id;
        self.headers = m.headers;
        self.body = m.body;
        self.text = m.text;
        self.html = m.html;
        self.attachments = m.attachments;
        self.header_from = m.addresses.from;
        self.header_to = m.addresses.to;
        self.cc = m.addresses.cc;
        self.bcc = m.addresses.bcc;
        self.reply_to = m.addresses.reply_to;
        self.date = m.date;
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The decoded content of MIME part `part_id` (`2`, `1.2`, as in
    /// [`Attachment::part_id`]): its content type, file name and bytes.
    pub fn part(&self, part_id: &str) -> Option<(String, String, Vec<u8>)> {
        mime::part(&self.data, part_id).map(|p| (p.content_type, p.filename, p.bytes))
    }
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
        self.envelope_matches(&m.from, m.to.iter().map(String::as_str))
            && self.subject_matches(|| m.subject.clone())
    }

    fn envelope_matches<'a>(&self, from: &str, mut to: impl Iterator<Item = &'a str>) -> bool {
        self.from.as_ref().is_none_or(|want| from == want)
            && self.to.as_ref().is_none_or(|want| to.any(|t| t == want))
    }

    fn subject_matches(&self, subject: impl FnOnce() -> Option<String>) -> bool {
        self.subject.as_ref().is_none_or(|want| {
            subject().is_some_and(|subj| subj.to_lowercase().contains(&want.to_lowercase()))
        })
    }

    /// The envelope filters on a stored entry (cheap: no header parsing).
    fn entry_envelope_matches(&self, arena: &Arena, e: &Entry) -> bool {
        self.envelope_matches(arena.str(e.from), e.recipients(arena))
    }

    fn entry_matches(&self, arena: &Arena, e: &Entry) -> bool {
        self.entry_envelope_matches(arena, e)
            && self.subject_matches(|| subject_of(arena.get(e.data)))
    }

    /// How many deliveries of `e` pass (recipients matching `to`, all of them otherwise).
    fn deliveries(&self, arena: &Arena, e: &Entry) -> usize {
        if !self.entry_matches(arena, e) {
            return 0;
        }
        match &self.to {
            Some(to) => e.recipients(arena).filter(|t| t == to).count(),
            None => e.rcpt_count as usize,
        }
    }
}

/// The decoded subject, as [`StoredMessage::subject`] holds it, so every filter (counts,
/// `/mail/N`, `/wait` and the listings) matches the same text.
fn subject_of(data: &[u8]) -> Option<String> {
    mime::subject(data)
}

/// Bytes of stored messages live in blocks of this size (a message larger than a block gets
/// a block of its own).
const BLOCK: usize = 1 << 20;

/// Where a stored string or content lives in the [`Arena`].
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    block: u32,
    start: u32,
    len: u32,
}

/// Append-only storage for message bytes and envelope strings, in large blocks.
///
/// Why not one allocation per message: a server that opens a connection per message frees
/// many short-lived buffers between the long-lived ones, and with glibc's allocator the
/// long-lived allocations pin the freed holes, so resident memory grew to three times the
/// stored bytes in the smtp-source benchmark. Blocks keep stored mail contiguous, and a
/// `clear` gives it all back.
#[derive(Debug, Default)]
struct Arena {
    blocks: Vec<Vec<u8>>,
}

impl Arena {
    fn push(&mut self, bytes: &[u8]) -> Span {
        let fits = self.blocks.last().is_some_and(|b| b.capacity() - b.len() >= bytes.len());
        if !fits {
            self.blocks.push(Vec::with_capacity(bytes.len().max(BLOCK)));
        }
        let block = self.blocks.len() - 1;
        let b = &mut self.blocks[block];
        let start = b.len();
        b.extend_from_slice(bytes);
        // Spans are u32: messages are capped well below 4 GiB (Options::max_message_size is
        // clamped), and a block never grows past max(BLOCK, one message).
        Span { block: block as u32, start: start as u32, len: bytes.len() as u32 }
    }

    fn get(&self, span: Span) -> &[u8] {
        &self.blocks[span.block as usize][span.start as usize..][..span.len as usize]
    }

    fn str(&self, span: Span) -> &str {
        // Only valid UTF-8 (from `&str`) is ever pushed through `push_str`.
        std::str::from_utf8(self.get(span)).unwrap_or_default()
    }

    fn push_str(&mut self, s: &str) -> Span {
        self.push(s.as_bytes())
    }
}

/// What the store keeps per message: spans into the arena, and the small fixed fields.
/// Headers, subject and body are parsed when a message is read.
#[derive(Debug)]
struct Entry {
    id: u64,
    received_at: SystemTime,
    peer: Option<SocketAddr>,
    from: Span,
    /// The recipients, NUL-separated (addresses never contain NUL: the parser refuses
    /// control characters).
    to: Span,
    rcpt_count: u32,
    data: Span,
    helo: Span,
    auth_user: Option<Span>,
    tls: bool,
    read: bool,
}

impl Entry {
    fn recipients<'a>(&self, arena: &'a Arena) -> impl Iterator<Item = &'a str> + use<'a> {
        let count = self.rcpt_count as usize;
        arena.str(self.to).split('\0').take(count)
    }

    /// An owned copy, not yet parsed (cheap enough to make under the lock).
    fn unparsed(&self, arena: &Arena) -> StoredMessage {
        let to = self.recipients(arena).map(str::to_owned).collect();
        let mut m = StoredMessage::unparsed(
            arena.str(self.from).to_owned(),
            to,
            arena.get(self.data).to_vec(),
        );
        m.id = self.id;
        m.tls = self.tls;
        m.read = self.read;
        m.received_at = self.received_at;
        m.helo = arena.str(self.helo).to_owned();
        m.auth_user = self.auth_user.map(|s| arena.str(s).to_owned());
        m.peer = self.peer;
        m
    }
}

/// The mailbox handle. Clones share one store.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    /// Wakes `wait_for` (and `/wait`) on every change.
    changed: Arc<watch::Sender<()>>,
    /// Wakes the web inbox's live updates; separate so that [`Store::waiters`] counts waits.
    events: Arc<watch::Sender<()>>,
    index: Index,
    max_messages: usize,
}

#[derive(Debug)]
struct Inner {
    arena: Arena,
    /// Ascending by id (ids only grow, and deletes keep the order).
    entries: Vec<Entry>,
    deliveries: usize,
    bytes: usize,
    by_rcpt: HashMap<String, usize>,
    next_id: u64,
    full_since: Option<SystemTime>,
    /// Arena bytes of deleted messages (given back when they outweigh the live ones).
    garbage: usize,
    feed: Feed,
    /// Operations sent to the index so far (see [`Index::search`]).
    ops: u64,
    /// Messages deleted or cleared since start-up.
    deleted: u64,
}

impl Inner {
    fn position(&self, id: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&id, |e| e.id).ok()
    }

    fn send(&mut self, op: Op) {
        self.feed.send(op);
        self.ops += 1;
    }

    /// Copies the live messages into a fresh arena once deleted ones take more than half of
    /// it, so deleting does give memory back.
    fn compact(&mut self) {
        let live: usize = self.arena.blocks.iter().map(Vec::len).sum::<usize>() - self.garbage;
        if self.garbage < BLOCK || self.garbage < live {
            return;
        }
        let old = std::mem::take(&mut self.arena);
        for e in &mut self.entries {
            e.from = self.arena.push(old.get(e.from));
            e.to = self.arena.push(old.get(e.to));
            e.data = self.arena.push(old.get(e.data));
            e.helo = self.arena.push(old.get(e.helo));
            e.auth_user = e.auth_user.map(|s| self.arena.push(old.get(s)));
        }
        self.garbage = 0;
    }
}

impl Store {
    /// An empty store holding at most `max_messages` messages. Starts the indexer thread,
    /// which ends when the last clone of the store is dropped.
    pub fn new(max_messages: usize) -> Store {
        let (index, feed) = Index::new();
        let inner = Inner {
            arena: Arena::default(),
            entries: Vec::new(),
            deliveries: 0,
            bytes: 0,
            by_rcpt: HashMap::new(),
            next_id: 1,
            full_since: None,
            garbage: 0,
            feed,
            ops: 0,
            deleted: 0,
        };
        Store {
            inner: Arc::new(Mutex::new(inner)),
            changed: Arc::new(watch::channel(()).0),
            events: Arc::new(watch::channel(()).0),
            index,
            max_messages,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation under this lock completes without panicking paths in between, so a
        // poisoned lock still guards consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn notify(&self) {
        self.changed.send_replace(());
        self.events.send_replace(());
    }

    /// Stores a message and returns its id; `Err(Full)` at the cap. Only the envelope, the
    /// content and the session fields are kept: the derived fields are parsed from `data`
    /// again when the message is read. The index learns of it in the background.
    pub fn insert(&self, message: StoredMessage) -> Result<u64, StoreError> {
        let id;
        {
            let mut guard = self.lock();
            let inner = &mut *guard;
            if inner.entries.len() >= self.max_messages {
                inner.full_since.get_or_insert_with(SystemTime::now);
                return Err(StoreError::Full);
            }
            id = inner.next_id;
            inner.next_id += 1;
            let arena = &mut inner.arena;
            let to = arena.push_str(&message.to.join("\0"));
            let entry = Entry {
                id,
                received_at: message.received_at,
                peer: message.peer,
                from: arena.push_str(&message.from),
                to,
                rcpt_count: message.to.len() as u32,
                data: arena.push(&message.data),
                helo: arena.push_str(&message.helo),
                auth_user: message.auth_user.as_deref().map(|u| arena.push_str(u)),
                tls: message.tls,
                read: false,
            };
            inner.entries.push(entry);
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
            // Sent under the lock, so the index sees operations in store order; the bytes
            // move to the indexer, which frees them once indexed.
            let StoredMessage { from, to, data, received_at, .. } = message;
            inner.send(Op::Insert { id, from, to, data, received_at });
        }
        self.notify();
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
            _ => {
                let inner = self.lock();
                inner.entries.iter().map(|e| filter.deliveries(&inner.arena, e)).sum()
            }
        }
    }

    /// Messages stored.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages stored that nobody has read.
    pub fn unread(&self) -> usize {
        self.lock().entries.iter().filter(|e| !e.read).count()
    }

    /// Messages deleted (one by one or by `clear`) since start-up.
    pub fn deleted(&self) -> u64 {
        self.lock().deleted
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
        self.matching(&Filter::default())
    }

    /// The messages matching `filter`, oldest first.
    pub fn matching(&self, filter: &Filter) -> Vec<StoredMessage> {
        let mut list: Vec<StoredMessage> = {
            let inner = self.lock();
            let arena = &inner.arena;
            let envelope = |e: &&Entry| filter.entry_envelope_matches(arena, e);
            inner.entries.iter().filter(envelope).map(|e| e.unparsed(arena)).collect()
        };
        // Parse outside the lock: sessions storing mail must not wait for a big listing.
        list.iter_mut().for_each(StoredMessage::parse);
        list.retain(|m| filter.subject_matches(|| m.subject.clone()));
        list
    }

    /// The `n`th message (0-based) matching `filter`, parsing only that one when the filter
    /// has no subject.
    pub fn nth_matching(&self, filter: &Filter, n: usize) -> Option<StoredMessage> {
        if filter.subject.is_some() {
            return self.matching(filter).into_iter().nth(n);
        }
        let mut message = {
            let inner = self.lock();
            let arena = &inner.arena;
            let envelope = |e: &&Entry| filter.entry_envelope_matches(arena, e);
            inner.entries.iter().filter(envelope).nth(n)?.unparsed(arena)
        };
        message.parse();
        Some(message)
    }

    /// The `n`th delivery (0-based) matching `filter`, as `(message, recipient)`; Boulder's
    /// `/mail/N` counts one entry per recipient.
    pub fn delivery(&self, filter: &Filter, n: usize) -> Option<(StoredMessage, String)> {
        let (mut message, rcpt) = {
            let inner = self.lock();
            let mut left = n;
            let mut found = None;
            for e in &inner.entries {
                let k = filter.deliveries(&inner.arena, e);
                if left < k {
                    let rcpt = match &filter.to {
                        Some(to) => to.clone(),
                        None => e.recipients(&inner.arena).nth(left).unwrap_or_default().to_owned(),
                    };
                    found = Some((e.unparsed(&inner.arena), rcpt));
                    break;
                }
                left -= k;
            }
            found?
        };
        message.parse();
        Some((message, rcpt))
    }

    /// The message with this id, parsed.
    pub fn get(&self, id: u64) -> Option<StoredMessage> {
        let mut message = {
            let inner = self.lock();
            inner.entries.get(inner.position(id)?)?.unparsed(&inner.arena)
        };
        message.parse();
        Some(message)
    }

    /// The raw content of the message with this id.
    pub fn data(&self, id: u64) -> Option<Vec<u8>> {
        let inner = self.lock();
        let e = inner.entries.get(inner.position(id)?)?;
        Some(inner.arena.get(e.data).to_vec())
    }

    /// The id of the newest message.
    pub fn latest_id(&self) -> Option<u64> {
        self.lock().entries.last().map(|e| e.id)
    }

    /// A page of messages, newest first: `limit` of them after skipping `start`.
    pub fn newest(&self, start: usize, limit: usize) -> Vec<StoredMessage> {
        let mut page: Vec<StoredMessage> = {
            let inner = self.lock();
            let arena = &inner.arena;
            inner.entries.iter().rev().skip(start).take(limit).map(|e| e.unparsed(arena)).collect()
        };
        page.iter_mut().for_each(StoredMessage::parse);
        page
    }

    /// The messages with these ids that are still stored, parsed, in the order given.
    pub fn get_many(&self, ids: &[u64]) -> Vec<StoredMessage> {
        let mut list: Vec<StoredMessage> = {
            let inner = self.lock();
            ids.iter()
                .filter_map(|&id| inner.position(id))
                .map(|i| inner.entries[i].unparsed(&inner.arena))
                .collect()
        };
        list.iter_mut().for_each(StoredMessage::parse);
        list
    }

    /// Searches with Mailpit's syntax (see `search.rs`): the number of matches and a page of
    /// them, newest first. Sees every message stored before the call.
    pub fn search(&self, query: &str, start: usize, limit: usize) -> (usize, Vec<StoredMessage>) {
        let hits = self.search_ids(query, start, limit);
        (hits.total, self.get_many(&hits.ids))
    }

    /// [`Store::search`] without fetching the messages.
    pub(crate) fn search_ids(&self, query: &str, start: usize, limit: usize) -> Hits {
        let clauses = search::parse(query);
        let ops = self.lock().ops;
        self.index.search(&clauses, ops, start, limit, self)
    }

    /// Deletes the messages with these ids (unknown ids are ignored); returns how many went.
    pub fn delete(&self, ids: &[u64]) -> usize {
        let removed = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let wanted: HashSet<u64> = ids.iter().copied().collect();
            let mut gone = Vec::new();
            let (arena, by_rcpt) = (&inner.arena, &mut inner.by_rcpt);
            let (mut deliveries, mut bytes, mut garbage) = (0, 0, 0);
            inner.entries.retain(|e| {
                if !wanted.contains(&e.id) {
                    return true;
                }
                for rcpt in e.recipients(arena) {
                    if let Some(n) = by_rcpt.get_mut(rcpt) {
                        *n -= 1;
                        if *n == 0 {
                            by_rcpt.remove(rcpt);
                        }
                    }
                }
                deliveries += e.rcpt_count as usize;
                bytes += e.data.len as usize;
                garbage +=
                    [e.from, e.to, e.data, e.helo].iter().map(|s| s.len as usize).sum::<usize>()
                        + e.auth_user.map_or(0, |s| s.len as usize);
                gone.push(e.id);
                false
            });
            inner.deliveries -= deliveries;
            inner.bytes -= bytes;
            inner.garbage += garbage;
            if inner.entries.len() < self.max_messages {
                inner.full_since = None;
            }
            let n = gone.len();
            inner.deleted += n as u64;
            if n > 0 {
                inner.send(Op::Delete(gone));
                inner.compact();
            }
            n
        };
        if removed > 0 {
            self.notify();
        }
        removed
    }

    /// Marks messages read or unread: these ids, or all of them for `None`.
    pub fn mark_read(&self, ids: Option<&[u64]>, read: bool) {
        {
            let mut inner = self.lock();
            match ids {
                None => inner.entries.iter_mut().for_each(|e| e.read = read),
                Some(ids) => {
                    for &id in ids {
                        if let Some(i) = inner.position(id) {
                            inner.entries[i].read = read;
                        }
                    }
                }
            }
        }
        self.events.send_replace(());
    }

    /// Forgets every message (ids keep counting up) and frees their memory.
    pub fn clear(&self) {
        {
            let mut inner = self.lock();
            inner.deleted += inner.entries.len() as u64;
            inner.arena = Arena::default();
            inner.entries = Vec::new();
            inner.deliveries = 0;
            inner.bytes = 0;
            inner.by_rcpt = HashMap::new();
            inner.full_since = None;
            inner.garbage = 0;
            inner.send(Op::Clear);
        }
        self.notify();
    }

    /// A receiver that sees a change each time a message is stored, deleted, marked or the
    /// store is cleared (changes in a burst coalesce). For live views.
    pub fn changes(&self) -> watch::Receiver<()> {
        self.events.subscribe()
    }

    /// How many `wait_for`/`wait_matching` calls (and `/wait` requests) are pending now.
    pub fn waiters(&self) -> usize {
        self.changed.receiver_count()
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

impl Source for Store {
    fn data(&self, id: u64) -> Option<Vec<u8>> {
        Store::data(self, id)
    }

    fn read_ids(&self) -> HashSet<u64> {
        self.lock().entries.iter().filter(|e| e.read).map(|e| e.id).collect()
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
        // RFC 5322 unfolding removes the CRLF and keeps the white space.
        assert_eq!(m.subject.as_deref(), Some("hello  world"));
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
    fn an_encoded_subject_is_matched_decoded_by_counts_and_listings_alike() {
        let s = Store::new(10);
        s.insert(msg("a@x", &["b@x"], "Subject: =?utf-8?B?R3LDvMOfZQ==?=\r\n\r\nx")).unwrap();
        let f = Filter { subject: Some("grüße".into()), ..Filter::default() };
        assert_eq!(s.matching(&f).len(), 1);
        assert_eq!(s.count_matching(&f), 1);
        assert!(s.delivery(&f, 0).is_some());
        let raw = Filter { subject: Some("utf-8?B".into()), ..Filter::default() };
        assert_eq!((s.matching(&raw).len(), s.count_matching(&raw)), (0, 0));
    }

    #[test]
    fn refuses_past_the_cap() {
        let s = Store::new(1);
        s.insert(msg("a@x", &["b@x"], "x")).unwrap();
        assert_eq!(s.insert(msg("a@x", &["b@x"], "x")), Err(StoreError::Full));
        assert!(s.full_since().is_some());
        assert_eq!(s.count(), 1);
    }

    #[test]
    fn round_trips_every_field_across_blocks() {
        let s = Store::new(100);
        let big = "B".repeat(BLOCK + 10);
        let mut sizes = Vec::new();
        for i in 0..40usize {
            let body = if i == 7 { big.clone() } else { "x".repeat(i * 50_000 % 300_000) };
            let mut m =
                msg(&format!("s{i}@x"), &["r1@x", "r2@x"], &format!("Subject: n{i}\r\n\r\n{body}"));
            m.tls = i % 2 == 0;
            m.helo = format!("h{i}");
            m.auth_user = (i % 3 == 0).then(|| format!("u{i}"));
            m.peer = Some(([127, 0, 0, 1], i as u16).into());
            sizes.push(m.data.len());
            s.insert(m).unwrap();
        }
        assert!(s.lock().arena.blocks.len() > 2, "spans more than one block");
        let all = s.messages();
        for (i, m) in all.iter().enumerate() {
            assert_eq!(
                (m.id, m.from.clone(), m.to.clone()),
                (i as u64 + 1, format!("s{i}@x"), vec!["r1@x".into(), "r2@x".into()])
            );
            assert_eq!((m.data.len(), m.subject.clone()), (sizes[i], Some(format!("n{i}"))));
            assert_eq!(
                (m.tls, m.helo.as_str(), m.auth_user.clone()),
                (i % 2 == 0, format!("h{i}").as_str(), (i % 3 == 0).then(|| format!("u{i}")))
            );
            assert_eq!(m.peer.map(|p| p.port()), Some(i as u16));
        }
        assert_eq!(s.bytes(), sizes.iter().sum::<usize>());
        let f = Filter { subject: Some("N7".into()), ..Filter::default() };
        assert_eq!(s.matching(&f)[0].body, big);
        s.clear();
        assert!(s.lock().arena.blocks.is_empty());
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
