//! [`Stats`]: counters an [`crate::SmtpMailer`] keeps, read as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Fault;

/// A snapshot of an [`crate::SmtpMailer`]'s counters since it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Tries made: each send's first try plus every retry (a wait for a pool slot is none).
    pub attempts: u64,
    /// Messages the server accepted (its 250 to the final dot).
    pub sent: u64,
    /// Connections opened for a send that had already failed at least once.
    pub reconnects: u64,
    /// Connections opened successfully (greeted, and encrypted and authenticated as set up).
    pub connects: u64,
    /// Connection attempts that failed (refused, timed out, or dropped or 421 before ready).
    pub connect_failures: u64,
    /// 421 replies, at any stage.
    pub smtp_421: u64,
    /// Connections the server closed without a reply (EOF), at any stage.
    pub eof: u64,
    /// Connections reset by the server, and writes that hit a broken pipe.
    pub reset: u64,
    /// Connects and commands that got no answer within their timeout.
    pub timeout: u64,
    /// Connects refused (nothing listening).
    pub refused: u64,
    /// 4xx replies other than 421 (retried).
    pub transient_4xx: u64,
    /// 5xx replies (not retried).
    pub permanent_5xx: u64,
    /// Sends that gave up after the maximum number of attempts.
    pub gave_up: u64,
    /// Messages sent again after delivery became unknown (they may have arrived twice).
    pub possibly_duplicated: u64,
}

impl Stats {
    /// The failures counted by kind, added up (`smtp_421` through `permanent_5xx`).
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
    pub(crate) connects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
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
            connects: get(&self.connects),
            connect_failures: get(&self.connect_failures),
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
