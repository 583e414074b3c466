//! The search index: an inverted index from lowercased tokens to the messages that contain
//! them, one per field, built by a background thread so that SMTP sessions never wait for it.
//!
//! The store sends every insert, delete and clear down a channel, in store order, while it
//! holds its lock. The indexer thread reads each message (a plain text message straight from
//! its bytes, `mime::plain`; any other through the full MIME parse), normalises its fields as
//! Mailpit does, and appends the message to the posting list of each distinct token. A
//! search first waits until the indexer has applied every operation the store had sent when
//! the search began ([`Index::sync`]), so a message that `/wait` has seen is always found.
//!
//! Matching keeps Mailpit's substring semantics exactly. A term's tokens are looked up by
//! substring in the field's vocabulary (one `memmem` over all keys), their posting lists are
//! intersected, and unless the term is a single whole token the candidates are checked against
//! the stored normalised fields, or for free text against the parsed body. Posting lists are
//! delta-encoded varints of document numbers; deleted messages stay in them and are masked
//! out by the live set until the next `clear`.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::mime;
use crate::search::{Clause, Field, Term, normalize, normalize_into, push_tokens, tokens};

/// What the store tells the indexer, in the order it happened.
pub(crate) enum Op {
    Insert { id: u64, from: String, to: Vec<String>, data: Vec<u8>, received_at: SystemTime },
    Delete(Vec<u64>),
    Clear,
}

/// A handle on the index; clones share it. The indexer thread ends when every [`Feed`] is
/// dropped.
#[derive(Clone, Debug)]
pub(crate) struct Index {
    shared: Arc<Shared>,
}

/// The sending side, kept by the store under its lock.
#[derive(Debug)]
pub(crate) struct Feed {
    tx: Sender<Op>,
}

impl Feed {
    pub(crate) fn send(&self, op: Op) {
        // The receiver lives as long as the indexer thread, which only ends when the
        // senders are gone (or it panicked, and then there is nothing to tell).
        let _ = self.tx.send(op);
    }
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    applied: Condvar,
}

/// One page of a search: the total and the ids on the page, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hits {
    pub total: usize,
    /// How many of the `total` are unread.
    pub unread: usize,
    pub ids: Vec<u64>,
}

/// What the index answers questions with that it cannot know itself.
pub(crate) trait Source {
    /// The raw bytes of message `id`, if it is still stored.
    fn data(&self, id: u64) -> Option<Vec<u8>>;
    /// The ids of the messages marked read.
    fn read_ids(&self) -> HashSet<u64>;
}

impl Index {
    /// A new empty index and its feed; spawns the indexer thread.
    pub(crate) fn new() -> (Index, Feed) {
        let (tx, rx) = channel();
        let index = Index { shared: Arc::new(Shared::default()) };
        let worker = index.clone();
        let spawned = std::thread::Builder::new()
            .name("mail-test-srv-index".into())
            .spawn(move || worker.run(rx));
        if spawned.is_err() {
            // Without a thread nothing is ever applied: `sync` gives up after its bound and
            // searches answer from an empty index rather than hang.
            index.lock().broken = true;
        }
        (index, Feed { tx })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each operation is applied whole under the lock and a panic inside one is caught
        // before it can poison it; a poisoned lock would still hold a usable index.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self, rx: Receiver<Op>) {
        while let Ok(first) = rx.recv() {
            // Apply what has queued up in one go: one lock and one wake-up per batch.
            let mut batch = vec![first];
            while batch.len() < 512 {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            // Parse outside the lock: searches must not wait for MIME parsing.
            let prepared: Vec<Prepared> = batch.into_iter().map(Prepared::new).collect();
            let mut state = self.lock();
            for op in prepared {
                state.apply(op);
                state.applied += 1;
            }
            drop(state);
            self.shared.applied.notify_all();
        }
    }

    /// Waits until `ops` operations (the store's count when the caller began) are applied.
    /// Bounded: if the indexer is stuck, searches answer from what it has after 10 s.
    fn sync(&self, ops: u64) -> MutexGuard<'_, State> {
        let guard = self.lock();
        if guard.broken {
            return guard;
        }
        let (guard, _) = self
            .shared
            .applied
            .wait_timeout_while(guard, Duration::from_secs(10), |s| s.applied < ops)
            .unwrap_or_else(|e| e.into_inner());
        guard
    }

    /// The messages matching every clause, newest first: the total and the page of `limit`
    /// ids from `start`. `ops` is the store's operation count when the search began.
    pub(crate) fn search(
        &self,
        clauses: &[Clause],
        ops: u64,
        start: usize,
        limit: usize,
        source: &dyn Source,
    ) -> Hits {
        let read = source.read_ids();
        let state = self.sync(ops);
        let mut set = state.live.clone();
        for clause in clauses {
            let matched = state.evaluate(&clause.term, source, &read);
            if clause.negated {
                set.and_not(&matched);
            } else {
                set.and(&matched);
            }
        }
        let total = set.count();
        // Few messages are ever marked read: count those among the matches.
        let read_matches = read
            .iter()
            .filter_map(|id| state.docs.binary_search_by_key(id, |d| d.id).ok())
            .filter(|&n| set.contains(n))
            .count();
        let ids = set.iter_rev().skip(start).take(limit).map(|d| state.docs[d].id).collect();
        Hits { total, unread: total - read_matches, ids }
    }
}

/// A message made ready for the index outside the lock.
enum Prepared {
    Insert(Box<Document>),
    Delete(Vec<u64>),
    Clear,
}

/// What the index keeps of one message, and its tokens.
#[derive(Debug, PartialEq, Eq)]
struct Document {
    id: u64,
    received_secs: u64,
    size: u32,
    attachments: u16,
    inline: u16,
    /// The normalised stored fields (`Field::STORED` order, the message id last), NUL-separated.
    stored: String,
    /// Every token of the message, lowercased, back to back.
    words: Vec<u8>,
    /// Each token's byte range in `words`, grouped by field in `INDEXED` order.
    ranges: Vec<(u32, u32)>,
    /// Where each field's tokens end in `ranges`. Text's are the body's: every other field's
    /// tokens go into Text's vocabulary too.
    ends: [usize; INDEXED.len()],
}

/// The fields with a vocabulary of their own (the message id is only checked, not indexed).
const INDEXED: [Field; 7] =
    [Field::Subject, Field::From, Field::To, Field::Cc, Field::Bcc, Field::ReplyTo, Field::Text];

/// Text's place in `INDEXED`.
const TEXT: usize = INDEXED.len() - 1;

fn indexed(field: Field) -> Option<usize> {
    INDEXED.iter().position(|f| *f == field)
}

fn stored(field: Field) -> Option<usize> {
    Field::STORED.iter().position(|f| *f == field)
}

/// Builds a [`Document`] from the texts that make up each field: the six indexed fields
/// before the message id in `Field::STORED` order ([`Builder::add`], [`Builder::next`]), then
/// the message id and the body ([`Builder::finish`]).
struct Builder {
    document: Document,
    /// The field being built (its place in `Field::STORED` and `INDEXED`, which agree up to
    /// the message id), and where it starts in `stored`.
    field: usize,
    start: usize,
}

impl Builder {
    fn new(id: u64, size: usize, received_at: SystemTime) -> Builder {
        Builder {
            document: Document {
                id,
                received_secs: received_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
                size: u32::try_from(size).unwrap_or(u32::MAX),
                attachments: 0,
                inline: 0,
                stored: String::with_capacity(256),
                words: Vec::with_capacity(size),
                ranges: Vec::with_capacity(64),
                ends: [0; INDEXED.len()],
            },
            field: 0,
            start: 0,
        }
    }

    /// Adds `text` to the current field, as if joined to it with a space.
    fn add(&mut self, text: &str) {
        let d = &mut self.document;
        normalize_into(text, &mut d.stored, self.start);
        push_tokens(text, &mut d.words, &mut d.ranges);
    }

    /// Adds the envelope's part of address field `i` (`From`, `To`, `Cc`, `Bcc`, `Reply-To`):
    /// the sender to `From`, the recipients to `To`.
    fn envelope(&mut self, i: usize, from: &str, to: &[String]) {
        match i {
            0 => self.add(from),
            1 => to.iter().for_each(|t| self.add(t)),
            _ => {}
        }
    }

    /// Ends the current field.
    fn next(&mut self) {
        let d = &mut self.document;
        d.ends[self.field] = d.ranges.len();
        self.field += 1;
        d.stored.push('\0');
        self.start = d.stored.len();
    }

    /// Adds the message id (the last stored field) and the body text, which is tokenised but
    /// not stored (a search checks it against the message itself).
    fn finish(mut self, message_id: &str, text: &str) -> Document {
        debug_assert_eq!(self.field, Field::STORED.len() - 1);
        let d = &mut self.document;
        normalize_into(message_id, &mut d.stored, self.start);
        push_tokens(text, &mut d.words, &mut d.ranges);
        d.ends[TEXT] = d.ranges.len();
        self.document
    }
}

impl Prepared {
    fn new(op: Op) -> Prepared {
        match op {
            Op::Insert { id, from, to, data, received_at } => {
                let b = Builder::new(id, data.len(), received_at);
                let d = match mime::plain(&data) {
                    Some(p) => plain_document(&p, &from, &to, b),
                    None => full_document(&data, &from, &to, b),
                };
                Prepared::Insert(Box::new(d))
            }
            Op::Delete(ids) => Prepared::Delete(ids),
            Op::Clear => Prepared::Clear,
        }
    }
}

/// The document of a message [`mime::plain`] reads without a parser.
fn plain_document(p: &mime::Plain<'_>, from: &str, to: &[String], mut b: Builder) -> Document {
    b.add(p.subject);
    b.next();
    for (i, header) in p.addresses.into_iter().enumerate() {
        b.add(header);
        b.envelope(i, from, to);
        b.next();
    }
    b.finish(p.message_id, &p.text)
}

/// The document of any message, from its full parse.
fn full_document(data: &[u8], from: &str, to: &[String], mut b: Builder) -> Document {
    // A parser panic must not take the index down: index the envelope only.
    let m = catch_unwind(AssertUnwindSafe(|| mime::searchable(data))).unwrap_or_default();
    b.add(&m.subject);
    b.next();
    let a = &m.addresses;
    for (i, list) in [&a.from, &a.to, &a.cc, &a.bcc, &a.reply_to].into_iter().enumerate() {
        for address in list {
            b.add(&address.name);
            b.add(&address.address);
        }
        b.envelope(i, from, to);
        b.next();
    }
    let mut d = b.finish(&m.message_id, &m.text);
    d.attachments = u16::try_from(m.attachments).unwrap_or(u16::MAX);
    d.inline = u16::try_from(m.inline).unwrap_or(u16::MAX);
    d
}

/// The normalised text a free-text search checks in a message's body: what [`mime::plain`]
/// reads, or for other messages what [`mime::searchable`] does.
fn body_text(data: &[u8]) -> String {
    if let Some(p) = mime::plain(data) {
        return normalize(&p.text);
    }
    let m = catch_unwind(AssertUnwindSafe(|| mime::searchable(data))).unwrap_or_default();
    normalize(&m.text)
}

/// A set of document numbers.
#[derive(Debug, Clone, Default)]
struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    fn with_len(len: usize) -> BitSet {
        BitSet { words: vec![0; len.div_ceil(64)] }
    }

    /// `live`, sized for `len` documents.
    fn full(len: usize, live: &BitSet) -> BitSet {
        let mut all = live.clone();
        all.words.resize(len.div_ceil(64), 0);
        all
    }

    fn insert(&mut self, n: usize) {
        let word = n / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (n % 64);
    }

    fn remove(&mut self, n: usize) {
        if let Some(w) = self.words.get_mut(n / 64) {
            *w &= !(1 << (n % 64));
        }
    }

    fn contains(&self, n: usize) -> bool {
        self.words.get(n / 64).is_some_and(|w| w & (1 << (n % 64)) != 0)
    }

    fn and(&mut self, other: &BitSet) {
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= other.words.get(i).copied().unwrap_or(0);
        }
    }

    fn and_not(&mut self, other: &BitSet) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= !o;
        }
    }

    fn or(&mut self, other: &BitSet) {
        if other.words.len() > self.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
    }

    fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(i * 64 + bit)
            })
        })
    }

    fn iter_rev(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().rev().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = 63 - w.leading_zeros() as usize;
                w &= !(1 << bit);
                Some(i * 64 + bit)
            })
        })
    }
}

/// Document numbers containing one token: delta-encoded LEB128 varints, ascending.
#[derive(Debug, Default)]
struct Postings {
    last: u32,
    bytes: Vec<u8>,
}

impl Postings {
    fn push(&mut self, doc: u32) {
        // Documents arrive in ascending order; a token repeated in one message is kept once.
        if !self.bytes.is_empty() && doc == self.last {
            return;
        }
        let mut delta = if self.bytes.is_empty() { doc } else { doc - self.last };
        self.last = doc;
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                self.bytes.push(byte);
                return;
            }
            self.bytes.push(byte | 0x80);
        }
    }

    fn add_to(&self, set: &mut BitSet) {
        let mut doc = 0u32;
        let mut first = true;
        let mut value = 0u32;
        let mut shift = 0;
        for &b in &self.bytes {
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 != 0 {
                shift += 7;
                continue;
            }
            doc = if first { value } else { doc + value };
            first = false;
            set.insert(doc as usize);
            value = 0;
            shift = 0;
        }
    }
}

/// FxHash, the multiply-and-rotate hasher of rustc (as in the `rustc-hash` crate): the
/// vocabulary hashes every token of every message, and SipHash cost more than the lookup.
/// (Flooding one bucket on purpose would only slow a test server's own indexer.)
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        self.hash = self.hash.wrapping_add(word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut last = [0; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(last) ^ bytes.len() as u64);
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        // hashbrown takes its control bits from the top: bring the well-mixed bits there.
        self.hash.rotate_left(26)
    }
}

/// One field's tokens: a map for inserts, and every key in one NUL-separated string so that
/// a substring lookup is one `memmem` over the vocabulary instead of a loop over keys.
#[derive(Debug, Default)]
struct Vocabulary {
    /// Token ids: a token of up to 16 bytes packed into a `u128` (most are: one multiply to
    /// hash, one comparison to find, no allocation), a longer one by its bytes.
    short: HashMap<u128, u32, BuildHasherDefault<FxHasher>>,
    long: HashMap<Box<[u8]>, u32, BuildHasherDefault<FxHasher>>,
    keys: Vec<u8>,
    starts: Vec<u32>,
    postings: Vec<Postings>,
}

/// A token of up to 16 bytes as a number. A token holds no NUL byte (its characters are
/// alphanumeric), so padding with zeros keeps different tokens different.
fn packed(token: &[u8]) -> Option<u128> {
    (token.len() <= 16).then(|| token.iter().rev().fold(0, |k, &b| k << 8 | u128::from(b)))
}

impl Vocabulary {
    fn add(&mut self, token: &[u8], doc: u32) {
        let next = self.postings.len() as u32;
        let (id, new) = match packed(token) {
            Some(key) => {
                let id = *self.short.entry(key).or_insert(next);
                (id, id == next)
            }
            None => match self.long.get(token) {
                Some(&id) => (id, false),
                None => {
                    self.long.insert(token.into(), next);
                    (next, true)
                }
            },
        };
        if new {
            self.starts.push(self.keys.len() as u32);
            self.keys.extend_from_slice(token);
            self.keys.push(0);
            self.postings.push(Postings::default());
        }
        self.postings[id as usize].push(doc);
    }

    /// Documents with a token that contains `needle`.
    fn containing(&self, needle: &str, docs: usize) -> BitSet {
        let mut set = BitSet::with_len(docs);
        let mut last = None;
        for at in memchr::memmem::find_iter(&self.keys, needle.as_bytes()) {
            let key = self.starts.partition_point(|&s| s as usize <= at) - 1;
            if last != Some(key) {
                self.postings[key].add_to(&mut set);
                last = Some(key);
            }
        }
        set
    }
}

#[derive(Debug, Default)]
struct State {
    applied: u64,
    broken: bool,
    docs: Vec<Doc>,
    live: BitSet,
    vocabularies: [Vocabulary; INDEXED.len()],
    /// The documents' stored fields, back to back (one allocation, not one per message).
    stored: String,
}

#[derive(Debug)]
struct Doc {
    id: u64,
    received_secs: u64,
    size: u32,
    attachments: u16,
    inline: u16,
    /// Its [`Document::stored`] in [`State::stored`].
    stored: std::ops::Range<usize>,
}

impl State {
    fn field(&self, doc: &Doc, field: Field) -> &str {
        let stored = &self.stored[doc.stored.clone()];
        self::stored(field).and_then(|i| stored.split('\0').nth(i)).unwrap_or_default()
    }

    /// The stored fields that free text covers: all but the message id (stored last).
    fn text_fields(&self, doc: &Doc) -> &str {
        let stored = &self.stored[doc.stored.clone()];
        stored.rsplit_once('\0').map_or(stored, |(fields, _)| fields)
    }
}

impl State {
    fn apply(&mut self, op: Prepared) {
        match op {
            Prepared::Insert(d) => {
                let number = self.docs.len() as u32;
                let mut from = 0;
                for (field, &end) in d.ends.iter().enumerate() {
                    for &(a, b) in &d.ranges[from..end] {
                        let word = &d.words[a as usize..b as usize];
                        if field != TEXT {
                            self.vocabularies[field].add(word, number);
                        }
                        self.vocabularies[TEXT].add(word, number);
                    }
                    from = end;
                }
                self.live.insert(number as usize);
                let at = self.stored.len();
                self.stored.push_str(&d.stored);
                self.docs.push(Doc {
                    id: d.id,
                    received_secs: d.received_secs,
                    size: d.size,
                    attachments: d.attachments,
                    inline: d.inline,
                    stored: at..self.stored.len(),
                });
            }
            Prepared::Delete(ids) => {
                for id in ids {
                    if let Ok(n) = self.docs.binary_search_by_key(&id, |d| d.id) {
                        self.live.remove(n);
                    }
                }
            }
            Prepared::Clear => {
                let (applied, broken) = (self.applied, self.broken);
                *self = State { applied, broken, ..State::default() };
            }
        }
    }

    /// The live documents for which `predicate` holds.
    fn filter(&self, predicate: impl Fn(&Doc) -> bool) -> BitSet {
        let mut set = BitSet::with_len(self.docs.len());
        for n in self.live.iter() {
            if predicate(&self.docs[n]) {
                set.insert(n);
            }
        }
        set
    }

    fn evaluate(&self, term: &Term, source: &dyn Source, read: &HashSet<u64>) -> BitSet {
        match term {
            Term::Contains { fields, text } => {
                let mut set = BitSet::with_len(self.docs.len());
                for &field in *fields {
                    set.or(&self.contains(field, text, source));
                }
                set
            }
            Term::Read(want) => self.filter(|d| read.contains(&d.id) == *want),
            Term::HasAttachment => self.filter(|d| d.attachments > 0),
            Term::HasInline => self.filter(|d| d.inline > 0),
            Term::Larger(n) => self.filter(|d| u64::from(d.size) > *n),
            Term::Smaller(n) => self.filter(|d| u64::from(d.size) < *n),
            Term::After(t) => {
                let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
                self.filter(|d| d.received_secs >= secs)
            }
            Term::Before(t) => {
                let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
                self.filter(|d| d.received_secs <= secs)
            }
            Term::Nothing => BitSet::with_len(self.docs.len()),
        }
    }

    /// Live documents whose `field` contains the normalised `text`.
    fn contains(&self, field: Field, text: &str, source: &dyn Source) -> BitSet {
        let docs = self.docs.len();
        let words: Vec<&str> = tokens(text).collect();
        let mut candidates = match indexed(field) {
            Some(v) if !words.is_empty() => {
                let vocabulary = &self.vocabularies[v];
                let mut set = BitSet::full(docs, &self.live);
                for word in &words {
                    set.and(&vocabulary.containing(word, docs));
                }
                set
            }
            // Not indexed (message id), or no token to look up (`@`): check every message.
            _ => BitSet::full(docs, &self.live),
        };
        // A single whole token is exact: a token is a maximal run of alphanumerics, so the
        // text contains it exactly when one of its tokens does.
        let exact = indexed(field).is_some() && words.len() == 1 && words[0] == text;
        if exact {
            return candidates;
        }
        let finder = memchr::memmem::Finder::new(text.as_bytes());
        let check: Vec<usize> = candidates.iter().collect();
        for n in check {
            let doc = &self.docs[n];
            let found = match field {
                Field::Text => {
                    finder.find(self.text_fields(doc).as_bytes()).is_some()
                        || source
                            .data(doc.id)
                            .is_some_and(|data| finder.find(body_text(&data).as_bytes()).is_some())
                }
                other => finder.find(self.field(doc, other).as_bytes()).is_some(),
            };
            if !found {
                candidates.remove(n);
            }
        }
        candidates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::parse;
    use proptest::prelude::*;

    struct Bodies(HashMap<u64, Vec<u8>>, HashSet<u64>);

    impl Source for Bodies {
        fn data(&self, id: u64) -> Option<Vec<u8>> {
            self.0.get(&id).cloned()
        }
        fn read_ids(&self) -> HashSet<u64> {
            self.1.clone()
        }
    }

    fn corpus() -> (Index, Feed, Bodies) {
        let (index, feed) = Index::new();
        let messages: [(&str, &str, &str); 4] = [
            (
                "a@x.test",
                "bob@y.test",
                "Subject: Hello world\r\nFrom: Jo Q <jo@x.test>\r\n\r\nThe quick brown fox\r\n",
            ),
            (
                "c@x.test",
                "carol@y.test",
                "Subject: Invoice 42\r\nCc: dan@z.test\r\n\r\nPlease pay.\r\nhello  there\r\n",
            ),
            ("a@x.test", "bobby@y.test", "Subject: re: hello\r\n\r\nworld peace\r\n"),
            (
                "e@x.test",
                "bob@y.test",
                "Subject: =?utf-8?B?R3LDvMOfZQ==?=\r\nMessage-ID: <abc-123@x>\r\n\r\nt\r\n",
            ),
        ];
        let mut bodies = HashMap::new();
        for (i, (from, to, data)) in messages.iter().enumerate() {
            let id = i as u64 + 1;
            bodies.insert(id, data.as_bytes().to_vec());
            feed.send(Op::Insert {
                id,
                from: from.to_string(),
                to: vec![to.to_string()],
                data: data.as_bytes().to_vec(),
                received_at: UNIX_EPOCH + Duration::from_secs(1_000 * id),
            });
        }
        (index, feed, Bodies(bodies, HashSet::from([2])))
    }

    fn ids(index: &Index, source: &Bodies, ops: u64, query: &str) -> Vec<u64> {
        index.search(&parse(query), ops, 0, 100, source).ids
    }

    #[test]
    fn finds_by_field_token_substring_and_phrase() {
        let (index, _feed, src) = corpus();
        let q = |query: &str| ids(&index, &src, 4, query);
        assert_eq!(q("to:bob@y.test"), [4, 1], "substring: not bobby");
        assert_eq!(q("to:bob"), [4, 3, 1], "substring of a token");
        assert_eq!(q("from:jo"), [1]);
        assert_eq!(q("from:a@x.test"), [3, 1], "the envelope sender counts");
        assert_eq!(q("subject:hello"), [3, 1]);
        assert_eq!(q("hello"), [3, 2, 1], "free text covers subject and body");
        assert_eq!(q("\"hello world\""), [1]);
        assert_eq!(q("\"hello there\""), [2], "white space is normalised");
        assert_eq!(q("\"quick fox\""), Vec::<u64>::new());
        assert_eq!(q("hello -subject:re"), [2, 1]);
        assert_eq!(q("cc:dan"), [2]);
        assert_eq!(q("addressed:dan@z.test"), [2]);
        assert_eq!(q("grüße"), [4], "decoded subjects");
        assert_eq!(q("message-id:abc-123"), [4]);
        assert_eq!(q("is:read"), [2]);
        assert_eq!(q("is:unread subject:hello"), [3, 1]);
        assert_eq!(q("tag:x"), Vec::<u64>::new());
        assert_eq!(q("-tag:x").len(), 4);
        assert_eq!(q("@"), [4, 3, 2, 1], "no token: every message is checked");
        assert_eq!(q("after:1970-01-01T00:50:00Z"), [4, 3]);
        let page = index.search(&parse("y.test"), 4, 1, 2, &src);
        assert_eq!(page, Hits { total: 4, unread: 3, ids: vec![3, 2] });
    }

    #[test]
    fn delete_and_clear_update_the_index() {
        let (index, feed, src) = corpus();
        feed.send(Op::Delete(vec![1, 99]));
        assert_eq!(ids(&index, &src, 5, "hello"), [3, 2]);
        feed.send(Op::Clear);
        assert_eq!(ids(&index, &src, 6, "hello"), Vec::<u64>::new());
        feed.send(Op::Insert {
            id: 7,
            from: "a@x".into(),
            to: vec!["b@x".into()],
            data: b"Subject: hello again\r\n\r\nx".to_vec(),
            received_at: SystemTime::now(),
        });
        assert_eq!(ids(&index, &src, 7, "hello"), [7]);
    }

    fn documents(data: &[u8]) -> (Option<Document>, Document) {
        let (from, to) = ("env@x.test", ["rcpt@y.test".to_owned(), "Two@Y.test".to_owned()]);
        let b = || Builder::new(9, data.len(), UNIX_EPOCH + Duration::from_secs(5));
        let plain = mime::plain(data).map(|p| plain_document(&p, from, &to, b()));
        (plain, full_document(data, from, &to, b()))
    }

    #[test]
    fn plain_messages_skip_the_parser() {
        let smtp_source = b"From: <a@x.test>\r\nTo: <b@x.test>\r\n\
            Date: Tue,  1 Dec 2026 22:12:22 +0000 (UTC)\r\nMessage-Id: <41a7.0003.0001@vm>\r\n\r\n\
            1XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n";
        let lettre = b"From: Jo Q <jo@x.test>\r\nReply-To: \"Q, Jo\" <r@x.test>\r\n\
            To: a@y.test, B <b@y.test>\r\nSubject: Hello there\r\nMIME-Version: 1.0\r\n\
            Date: Tue, 01 Dec 2026 22:12:22 -0000\r\nMessage-ID: <1@x.test>\r\n\
            Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\
            X-Long: folded\r\n\tline\r\n\r\nGr\xc3\xbc\xc3\x9fe, K\xe2\x84\xaa\r\n";
        for data in [&smtp_source[..], &lettre[..]] {
            let (plain, full) = documents(data);
            assert_eq!(plain.as_ref(), Some(&full), "{}", String::from_utf8_lossy(data));
        }
        let (_, full) = documents(lettre);
        assert_eq!(
            full.stored,
            "hello there\0jo q jo@x.test env@x.test\0a@y.test b b@y.test rcpt@y.test two@y.test\
             \0\0\0q jo r@x.test\x001@x.test"
        );
        let encoded = b"Subject: =?utf-8?B?R3LDvMOfZQ==?=\r\n\r\nx\r\n";
        let multipart =
            b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nx\r\n--B--\r\n";
        for data in [&encoded[..], &multipart[..], b"no headers\r\n", b"\r\nbody"] {
            assert_eq!(documents(data).0, None, "{}", String::from_utf8_lossy(data));
        }
    }

    /// Values a plain message is made of (mostly), and values that make it not plain.
    const SUBJECTS: (&[&str], &[&str]) = (
        &["hello world", "  Spaced\tOut  ", "", "Re: [x] (y) <z>, \"q\"; w", "a=b ?"],
        &["=?utf-8?B?R3LDvMOfZQ==?=", "caf\u{e9}", "a=?b"],
    );
    const ADDRESSES: (&[&str], &[&str]) = (
        &[
            "a@x.test",
            "<a@x.test>",
            "Jo Q <jo@x.test>",
            "\"Q, Jo\" <jo@x.test>",
            "a@x, B <b@y.test>",
            "",
            "  ",
            "Jo.Q <a.b@c.d>",
            "O'Brien <ob@x>",
            "\"\" <a@x>",
            "\"jo@x\" <a@y>",
            "Jo<a@x>",
            "<a@x>,\t<b@y> , c@z",
        ],
        &[
            "jo@x <a@y>",
            "Jo (note) <a@x>",
            "(note) a@x",
            "group: a@x, b@y;",
            "undisclosed-recipients:;",
            "\"Jo \\\"Q\\\"\" <a@x>",
            "=?utf-8?Q?J=C3=B6?= <a@x>",
            "Jo Q",
            "a@x,",
            "<a@x> Jo",
            "a@@x",
            "@x",
            "a@",
            "\"Jo\"Q <a@x>",
            "Jo \"Q\" <a@x>",
            "a@x b@y",
            "<>",
            "Jo <a@x",
            "J\u{f6} <a@x>",
        ],
    );
    const CONTENT_TYPES: (&[&str], &[&str]) = (
        &[
            "text/plain",
            "text/plain; charset=utf-8",
            "TEXT/Plain; Charset=\"UTF-8\"",
            "text/plain; charset=us-ascii",
            "text/plain; charset=iso-8859-1",
            "text/plain; format=flowed; charset=utf-8",
            "text/plain; name=a.txt",
        ],
        &[
            "text/plain; charset=utf-7",
            "text/plain; charset=shift_jis",
            "text/plain;",
            "text/html",
            "multipart/mixed; boundary=B",
            "text/plain; charset=utf-8; charset=us-ascii",
            "text/plain (c)",
            "text",
            "message/rfc822",
        ],
    );
    const ENCODINGS: (&[&str], &[&str]) =
        (&["7bit", "8BIT", " binary "], &["base64", "quoted-printable", "x-uuencode", ""]);
    const DATES: (&[&str], &[&str]) = (
        &["Tue, 1 Dec 2026 22:12:22 +0000 (UTC)", "1 Dec 2026 10:00:00 -0500 X1"],
        &[
            "1 Dec 2026 10:00:00 Z",
            "1 Dec 2026 10:00:00 EST",
            "1 Dec 2026 10:00:00 -0500 X",
            "1 Dec 2026 10:00:00 +0000\r\n (UTC) Z",
        ],
    );
    const OTHERS: (&[&str], &[&str]) = (
        &[
            "X-Foo: bar",
            "Received: from x by y; Tue, 1 Dec 2026 22:12:22 +0000",
            "X-Long: a\r\n b",
            "Comments: =?utf-8?Q?x?=",
            "Sender: a@x",
            "MIME-Version: 1.0",
            "X-Utf8: caf\u{e9}",
            "X-Cr: a\rb",
        ],
        &[
            "No colon line",
            " Leading: space",
            "X-Blank: a\r\n \r\n",
            "Subject: folded\r\n line",
            "To: folded@x,\r\n b@y",
            "X-Lf: a\nSubject: lf",
            "X-\u{e9}: y",
            ": empty name",
            "Content-Disposition: attachment; filename=a.txt",
            "Content-Disposition: inline",
        ],
    );

    const BODIES: (&[&[u8]], &[&[u8]]) = (
        &[
            b"Hello ",
            b"WORLD",
            b"\r\n",
            b"caf\xc3\xa9 ",
            b"=41=\r\n",
            b"SGVsbG8=",
            b"--B\r\n",
            b"--B--\r\n",
            b"<p>x</p>",
            b"K\xe2\x84\xaa",
            b"\r\n.\r\n",
        ],
        &[b"\xff", b"\n", b"\r", b"\0"],
    );

    /// Mostly `good`, sometimes `bad`.
    fn pick<T: Clone + std::fmt::Debug>(
        (good, bad): (&'static [T], &'static [T]),
    ) -> impl Strategy<Value = T> {
        prop_oneof![8 => proptest::sample::select(good), 1 => proptest::sample::select(bad)]
    }

    /// Messages that `mime::plain` takes or just does not: each that it takes must index
    /// exactly as its full parse does.
    fn message() -> impl Strategy<Value = Vec<u8>> {
        let named = |names: &'static [&'static str], values| {
            (proptest::sample::select(names), pick(values)).prop_map(|(n, v)| format!("{n}: {v}"))
        };
        let header = prop_oneof![
            named(&["Subject", "subject"], SUBJECTS),
            named(&["From", "To", "Cc", "BCC", "Reply-To"], ADDRESSES),
            named(&["Message-ID", "Message-Id"], ADDRESSES),
            named(&["Content-Type"], CONTENT_TYPES),
            named(&["Content-Transfer-Encoding"], ENCODINGS),
            named(&["Date", "Resent-Date"], DATES),
            pick(OTHERS).prop_map(str::to_owned),
        ];
        let body = proptest::collection::vec(pick(BODIES), 0..12).prop_map(|v| v.concat());
        let blank = pick((&["\r\n"], &["", "\n", " \r\n"]));
        (proptest::collection::vec(header, 0..6), blank, body).prop_map(|(headers, blank, body)| {
            let mut data = Vec::new();
            for h in headers {
                data.extend_from_slice(h.as_bytes());
                data.extend_from_slice(b"\r\n");
            }
            data.extend_from_slice(blank.as_bytes());
            data.extend_from_slice(&body);
            data
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2_000))]
        #[test]
        fn a_plain_message_indexes_as_its_full_parse_does(data in message()) {
            let (plain, full) = documents(&data);
            if let Some(plain) = plain {
                proptest::prop_assert_eq!(plain, full, "{}", String::from_utf8_lossy(&data));
            }
        }
    }

    #[test]
    fn the_vocabulary_keeps_short_and_long_tokens_apart() {
        let mut v = Vocabulary::default();
        let long = "x".repeat(17);
        for (doc, token) in ["ab", "abc", "ab", "0123456789abcdef", &long, &long].iter().enumerate()
        {
            v.add(token.as_bytes(), doc as u32);
        }
        assert_eq!(v.postings.len(), 4, "ab, abc, the 16-byte token and the long one");
        assert_eq!(v.containing("ab", 6).iter().collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(v.containing(&long, 6).iter().collect::<Vec<_>>(), [4, 5]);
        assert_ne!(packed(b"a"), packed(b"a\x01"));
    }

    #[test]
    fn postings_round_trip_large_gaps_and_keep_a_repeat_once() {
        let mut p = Postings::default();
        for doc in [0, 0, 1, 200, 200, 70_000, 4_000_000] {
            p.push(doc);
        }
        let mut set = BitSet::default();
        p.add_to(&mut set);
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 1, 200, 70_000, 4_000_000]);
        assert_eq!(set.iter_rev().next(), Some(4_000_000));
    }
}
