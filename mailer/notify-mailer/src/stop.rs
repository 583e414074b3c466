//! Stopping a run early: why, and how hard.
//!
//! A stop *request* (the first Ctrl-C or SIGTERM, the circuit breaker, refused credentials, a
//! journal that cannot be written) starts nothing new, ends backoff waits at once and lets
//! the messages already on the wire finish. An *abort* (another signal, at least
//! [`SAME_REQUEST`] after the first) abandons those too. Signals closer together than that are
//! one request: `timeout(1)` sends SIGTERM twice within a millisecond, and an impatient
//! operator presses Ctrl-C twice in a row.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use logger::Logger;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Signals within this time of the first are the same request.
pub const SAME_REQUEST: Duration = Duration::from_secs(1);

/// Why a run stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Ctrl-C (`SIGINT`) or `SIGTERM`.
    Signal(&'static str),
    /// The server looks down: every connection attempt failed for a while, or a message
    /// gave up on connecting while nothing else got through.
    CircuitOpen,
    /// The server refused the credentials (5xx to AUTH).
    CredentialsRefused,
    /// The journal could not be written, or the recipients file not read again.
    Failure(String),
}

/// The stop state of one run, shared by everything that takes part in it.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    request: CancellationToken,
    abort: CancellationToken,
    reason: Arc<OnceLock<Reason>>,
}

impl Stop {
    /// Asks the run to stop (the first reason given is kept); whether this was the first.
    pub fn request(&self, reason: Reason) -> bool {
        let first = self.reason.set(reason).is_ok();
        self.request.cancel();
        first
    }

    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        self.request.is_cancelled()
    }

    /// Resolves once a stop is requested.
    pub async fn requested(&self) {
        self.request.cancelled().await;
    }

    /// Whether the messages in flight are to be abandoned.
    #[cfg(test)]
    pub fn is_aborted(&self) -> bool {
        self.abort.is_cancelled()
    }

    /// Resolves once the messages in flight are to be abandoned.
    pub async fn aborted(&self) {
        self.abort.cancelled().await;
    }

    /// Why the run stopped, if it did.
    pub fn reason(&self) -> Option<&Reason> {
        self.reason.get()
    }

    /// Turns SIGINT and SIGTERM into a request, then an abort, logging each. The handlers
    /// are registered before this returns and stay registered, so no signal is lost between
    /// the two stages (and none kills the process by default).
    pub fn on_signals(&self, log: Arc<dyn Logger>) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let stop = self.clone();
        tokio::spawn(async move {
            let name = next(&mut interrupt, &mut terminate).await;
            let first = Instant::now();
            logger::warning!(log,
                "{name}: finishing the messages on the wire, then stopping (again after 1 s to abandon them)";
                event = "interrupted", signal = name);
            let _ = stop.request(Reason::Signal(name));
            loop {
                let name = next(&mut interrupt, &mut terminate).await;
                if first.elapsed() >= SAME_REQUEST {
                    logger::warning!(log, "{name} again: abandoning the messages in flight";
                        event = "aborted", signal = name);
                    stop.abort.cancel();
                    return;
                }
                logger::info!(log, "{name} within 1 s of the first: the same stop request";
                    event = "interrupted_again", signal = name);
            }
        });
        Ok(())
    }
}

/// The name of the next SIGINT or SIGTERM.
async fn next(
    interrupt: &mut tokio::signal::unix::Signal,
    terminate: &mut tokio::signal::unix::Signal,
) -> &'static str {
    tokio::select! {
        _ = interrupt.recv() => "Ctrl-C",
        _ = terminate.recv() => "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_reason_is_kept() {
        let stop = Stop::default();
        assert!(!stop.is_requested() && stop.reason().is_none());
        assert!(stop.request(Reason::CircuitOpen));
        assert!(!stop.request(Reason::Signal("SIGTERM")));
        assert!(stop.is_requested() && !stop.is_aborted());
        assert_eq!(stop.reason(), Some(&Reason::CircuitOpen));
    }
}
