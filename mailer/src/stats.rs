//! [`Stats`]: counters an [`crate::SmtpMailer`] keeps, read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Fault;

/// A snapshot of an [`crate::SmtpMailer`]'s counters since it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tries made (the first try of each send plus every retry).
    pub attempts: u64,
    /// Messages accepted by the server.
    pub sent: u64,
    /// Successful reconnects after a failure within a send.
    pub reconnects: u64,
    /// 421 replies.
    pub smtp_421: u64,
    /// Connections closed by the server (EOF).
    pub eof: u64,
    /// Connections reset, or broken pipes.
    pub reset: u64,
    /// Connects or commands that timed out.
    pub timeout: u64,
    /// Connects refused.
    pub refused: u64,
    /// 4xx replies other than 421.
    pub transient_4xx: u64,
    /// 5xx replies.
    pub permanent_5xx: u64,
    /// Sends that gave up after the maximum number of attempts.
    pub gave_up: u64,
    /// Messages sent again after delivery became unknown (may have arrived twice).
    pub possibly_duplicated: u64,
}

impl Stats {
    /// Every failure counted by kind, added up.
    pub fn faults(&self) -> u64 {
        self.smtp_421
            + self.eof
            + self.reset
            + self.timeout
            + self.refused
            + self.transient_4xx
            + self.permanent_5xx
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) attempts: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    smtp_421: AtomicU64,
    eof: AtomicU64,
    reset: AtomicU64,
    timeout: AtomicU64,
    refused: AtomicU64,
    transient_4xx: AtomicU64,
    permanent_5xx: AtomicU64,
    pub(crate) gave_up: AtomicU64,
    pub(crate) possibly_duplicated: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    // Counters are independent statistics: no ordering with other memory is needed.
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn fault(&self, fault: Fault) {
        let counter = match fault {
            Fault::ServiceClosing => &self.smtp_421,
            Fault::Eof => &self.eof,
            Fault::Reset | Fault::BrokenPipe => &self.reset,
            Fault::Timeout => &self.timeout,
            Fault::Refused => &self.refused,
            Fault::Transient => &self.transient_4xx,
            Fault::Permanent => &self.permanent_5xx,
            Fault::Network | Fault::Tls | Fault::Protocol => return,
        };
        bump(counter);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            attempts: get(&self.attempts),
            sent: get(&self.sent),
            reconnects: get(&self.reconnects),
            smtp_421: get(&self.smtp_421),
            eof: get(&self.eof),
            reset: get(&self.reset),
            timeout: get(&self.timeout),
            refused: get(&self.refused),
            transient_4xx: get(&self.transient_4xx),
            permanent_5xx: get(&self.permanent_5xx),
            gave_up: get(&self.gave_up),
            possibly_duplicated: get(&self.possibly_duplicated),
        }
    }
}
