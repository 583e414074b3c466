//! Counters since start-up (not reset by `clear`): connections, messages, faults by kind and
//! stage, refusals. Lock-free, bumped by every session; [`Stats`] is a snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::fault::{FaultKind, Stage};

/// The live counters (shared by every session).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) messages: AtomicU64,
    pub(crate) deliveries: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) faults_close: AtomicU64,
    pub(crate) faults_421: AtomicU64,
    pub(crate) faults_reject: AtomicU64,
    pub(crate) faults_by_stage: [AtomicU64; 5],
    pub(crate) refused: AtomicU64,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) rejected_too_big: AtomicU64,
    pub(crate) rejected_connections: AtomicU64,
    pub(crate) tls_handshake_failures: AtomicU64,
    pub(crate) rejected_memory: AtomicU64,
    pub(crate) rejected_bare_lf: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) in_flight_bytes: AtomicU64,
}

impl Counters {
    pub(crate) fn fault(&self, stage: Stage, kind: FaultKind) {
        match kind {
            FaultKind::Close => &self.faults_close,
            FaultKind::Reply421 => &self.faults_421,
            FaultKind::Reject(_) => &self.faults_reject,
        }
        .fetch_add(1, Relaxed);
        self.faults_by_stage[stage.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn stored(&self, recipients: usize, bytes: usize) {
        self.messages.fetch_add(1, Relaxed);
        self.deliveries.fetch_add(recipients as u64, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// A snapshot, completed with the store's current figures.
    pub(crate) fn snapshot(&self, store: &crate::Store) -> Stats {
        let by_stage = |s: Stage| self.faults_by_stage[s.index()].load(Relaxed);
        let full_since = store.full_since();
        Stats {
            connections: self.connections.load(Relaxed),
            active_connections: self.active.load(Relaxed),
            messages: self.messages.load(Relaxed),
            deliveries: self.deliveries.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            faults_close: self.faults_close.load(Relaxed),
            faults_421: self.faults_421.load(Relaxed),
            faults_reject: self.faults_reject.load(Relaxed),
            faults_by_stage: FaultsByStage {
                greeting: by_stage(Stage::Greeting),
                mail: by_stage(Stage::Mail),
                rcpt: by_stage(Stage::Rcpt),
                data: by_stage(Stage::Data),
                after_dot: by_stage(Stage::AfterDot),
            },
            refused: self.refused.load(Relaxed),
            rejected_full: self.rejected_full.load(Relaxed),
            rejected_too_big: self.rejected_too_big.load(Relaxed),
            rejected_connections: self.rejected_connections.load(Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
            rejected_memory: self.rejected_memory.load(Relaxed),
            rejected_bare_lf: self.rejected_bare_lf.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
            in_flight_bytes: self.in_flight_bytes.load(Relaxed),
            stored_messages: store.len() as u64,
            stored_deliveries: store.count() as u64,
            stored_bytes: store.bytes() as u64,
            max_messages: store.max_messages() as u64,
            store_full: full_since.is_some(),
        }
    }
}

/// Faults injected at each stage (all kinds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultsByStage {
    /// Instead of the greeting.
    pub greeting: u64,
    /// At MAIL.
    pub mail: u64,
    /// At RCPT.
    pub rcpt: u64,
    /// At DATA.
    pub data: u64,
    /// After the final dot (the message was stored).
    pub after_dot: u64,
}

/// A snapshot of the server's counters (`GET /stats`). The counters run since start-up;
/// the `stored_*` figures are what the store holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// SMTP connections accepted (including refused ones).
    pub connections: u64,
    /// SMTP connections open now.
    pub active_connections: u64,
    /// Messages accepted and stored.
    pub messages: u64,
    /// Deliveries stored (message x recipient).
    pub deliveries: u64,
    /// Content bytes stored.
    pub bytes: u64,
    /// Faults that closed without a reply.
    pub faults_close: u64,
    /// Faults that replied 421 and closed.
    pub faults_421: u64,
    /// Faults that replied the reject code and kept the session.
    pub faults_reject: u64,
    /// Faults by stage.
    pub faults_by_stage: FaultsByStage,
    /// Connections refused during a gone-away window.
    pub refused: u64,
    /// Messages rejected with 452 because the store was at `max_messages`.
    pub rejected_full: u64,
    /// Messages rejected with 552 (over `max_message_size`).
    pub rejected_too_big: u64,
    /// Connections turned away with 421 over `max_connections`.
    pub rejected_connections: u64,
    /// TLS handshakes that failed (implicit TLS or STARTTLS).
    pub tls_handshake_failures: u64,
    /// Messages refused with 452 because messages being received at once had used up
    /// `max_in_flight_bytes`.
    pub rejected_memory: u64,
    /// Messages (550 after the final dot) and commands (550, then close) refused for a bare LF
    /// or bare CR under `--bare-lf reject`.
    pub rejected_bare_lf: u64,
    /// Accept errors other than a client giving up (out of descriptors, EMFILE, or memory):
    /// each paused the accept loop briefly.
    pub accept_errors: u64,
    /// Memory held now by messages being received, beyond each connection's first 64 KiB:
    /// what counts against `max_in_flight_bytes`.
    pub in_flight_bytes: u64,
    /// Messages in the store now.
    pub stored_messages: u64,
    /// Deliveries in the store now.
    pub stored_deliveries: u64,
    /// Content bytes in the store now.
    pub stored_bytes: u64,
    /// The cap on stored messages.
    pub max_messages: u64,
    /// Whether the cap was reached since the last clear.
    pub store_full: bool,
}
