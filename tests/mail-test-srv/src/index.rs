//! The search index: an inverted index from lowercased tokens to the messages that contain
//! them, one per field, built by a background thread so that SMTP sessions never wait for it.
//!
//! The store sends every insert, delete and clear down a channel, in store order, while it
//! holds its lock. The indexer thread parses each message (`mime.rs`), normalises its fields
//! as Mailpit does, and appends the message to the posting list of each distinct token. A
//! search first waits until the indexer has applied every operation the store had sent when
//! the search began ([`Index::sync`]), so a message that `/wait` has seen is always found.
//!
//! Matching keeps Mailpit's substring semantics exactly. A term's tokens are looked up by
//! substring in the field's vocabulary (one `memmem` over all keys), their posting lists are
//! intersected, and unless the term is a single whole token the candidates are checked against
//! the stored normalised fields, or for free text against the parsed body. Posting lists are
//! delta-encoded varints of document numbers; deleted messages stay in them and are masked
//! out by the live set until the next `clear`.

use std::collections::HashMap;
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::mime::{self, Address};
use crate::search::{Clause, Field, Term, normalize, tokens};

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

/// What the index keeps of one message, and its tokens per field.
struct Document {
    id: u64,
    received_secs: u64,
    size: u32,
    attachments: u16,
    inline: u16,
    /// The normalised stored fields (`Field::STORED` order, the message id last), NUL-separated.
    stored: String,
    /// Per indexed field (`INDEXED` order): its normalised text and the byte ranges of its
    /// tokens.
    fields: Vec<(String, Vec<(u32, u32)>)>,
}

/// The fields with a vocabulary of their own (the message id is only checked, not indexed).
const INDEXED: [Field; 7] =
    [Field::Subject, Field::From, Field::To, Field::Cc, Field::Bcc, Field::ReplyTo, Field::Text];

fn indexed(field: Field) -> Option<usize> {
    INDEXED.iter().position(|f| *f == field)
}

fn stored(field: Field) -> Option<usize> {
    Field::STORED.iter().position(|f| *f == field)
}

fn addresses(list: &[Address], envelope: &[String]) -> String {
    let mut out = String::new();
    for a in list {
        out.push_str(&a.name);
        out.push(' ');
        out.push_str(&a.address);
        out.push(' ');
    }
    for e in envelope {
        out.push_str(e);
        out.push(' ');
    }
    out
}

/// `text` and the byte ranges of its tokens (repeats included: a posting list ignores a
/// second entry for the same message, which is cheaper than sorting them out here).
fn with_tokens(text: String) -> (String, Vec<(u32, u32)>) {
    let base = text.as_ptr() as usize;
    let ranges = tokens(&text)
        .map(|t| {
            let start = t.as_ptr() as usize - base;
            (start as u32, (start + t.len()) as u32)
        })
        .collect();
    (text, ranges)
}

impl Prepared {
    fn new(op: Op) -> Prepared {
        match op {
            Op::Insert { id, from, to, data, received_at } => {
                // A parser panic must not take the index down: index the envelope only.
                let m =
                    catch_unwind(AssertUnwindSafe(|| mime::searchable(&data))).unwrap_or_default();
                let stored = [
                    normalize(&m.subject),
                    normalize(&addresses(&m.addresses.from, std::slice::from_ref(&from))),
                    normalize(&addresses(&m.addresses.to, &to)),
                    normalize(&addresses(&m.addresses.cc, &[])),
                    normalize(&addresses(&m.addresses.bcc, &[])),
                    normalize(&addresses(&m.addresses.reply_to, &[])),
                    normalize(&m.message_id),
                ];
                let mut all = stored[..6].join(" ");
                all.push(' ');
                all.push_str(&normalize(&m.text));
                let mut fields: Vec<(String, Vec<(u32, u32)>)> =
                    stored[..6].iter().cloned().map(with_tokens).collect();
                fields.push(with_tokens(all));
                let received_secs =
                    received_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
                Prepared::Insert(Box::new(Document {
                    id,
                    received_secs,
                    size: u32::try_from(data.len()).unwrap_or(u32::MAX),
                    attachments: u16::try_from(m.attachments).unwrap_or(u16::MAX),
                    inline: u16::try_from(m.inline).unwrap_or(u16::MAX),
                    stored: stored.join("\0"),
                    fields,
                }))
            }
            Op::Delete(ids) => Prepared::Delete(ids),
            Op::Clear => Prepared::Clear,
        }
    }
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

/// One field's tokens: a map for inserts, and every key in one NUL-separated string so that
/// a substring lookup is one `memmem` over the vocabulary instead of a loop over keys.
#[derive(Debug, Default)]
struct Vocabulary {
    ids: HashMap<Box<str>, u32>,
    keys: String,
    starts: Vec<u32>,
    postings: Vec<Postings>,
}

impl Vocabulary {
    fn add(&mut self, token: &str, doc: u32) {
        let id = match self.ids.get(token) {
            Some(&id) => id,
            None => {
                let id = self.postings.len() as u32;
                self.starts.push(self.keys.len() as u32);
                self.keys.push_str(token);
                self.keys.push('\0');
                self.postings.push(Postings::default());
                self.ids.insert(token.into(), id);
                id
            }
        };
        self.postings[id as usize].push(doc);
    }

    /// Documents with a token that contains `needle`.
    fn containing(&self, needle: &str, docs: usize) -> BitSet {
        let mut set = BitSet::with_len(docs);
        let mut last = None;
        for at in memchr::memmem::find_iter(self.keys.as_bytes(), needle.as_bytes()) {
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
}

#[derive(Debug)]
struct Doc {
    id: u64,
    received_secs: u64,
    size: u32,
    attachments: u16,
    inline: u16,
    stored: Box<str>,
}

impl Doc {
    fn field(&self, field: Field) -> &str {
        stored(field).and_then(|i| self.stored.split('\0').nth(i)).unwrap_or_default()
    }

    /// The stored fields that free text covers: all but the message id (stored last).
    fn text_fields(&self) -> &str {
        self.stored.rsplit_once('\0').map_or(&self.stored, |(fields, _)| fields)
    }
}

impl State {
    fn apply(&mut self, op: Prepared) {
        match op {
            Prepared::Insert(d) => {
                let number = self.docs.len() as u32;
                for (vocabulary, (text, tokens)) in self.vocabularies.iter_mut().zip(&d.fields) {
                    for &(start, end) in tokens {
                        vocabulary.add(&text[start as usize..end as usize], number);
                    }
                }
                self.live.insert(number as usize);
                self.docs.push(Doc {
                    id: d.id,
                    received_secs: d.received_secs,
                    size: d.size,
                    attachments: d.attachments,
                    inline: d.inline,
                    stored: d.stored.into_boxed_str(),
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
                    finder.find(doc.text_fields().as_bytes()).is_some()
                        || source.data(doc.id).is_some_and(|data| {
                            let m = catch_unwind(AssertUnwindSafe(|| mime::searchable(&data)))
                                .unwrap_or_default();
                            finder.find(normalize(&m.text).as_bytes()).is_some()
                        })
                }
                other => finder.find(doc.field(other).as_bytes()).is_some(),
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
