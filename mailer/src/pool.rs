//! [`Pool`]: up to n connections, each lent to one send at a time.
//!
//! A send takes a *slot* (a semaphore permit, first come first served) and with it the most
//! recently used idle connection, or none: then it opens one itself, holding the slot but no
//! lock. It gives the slot back with the connection, which goes to the idle list (or is
//! dropped when it broke). So at most `limit` connections are ever open, a connection is
//! opened only when no idle one is free, and nothing waits while holding a lock.
//!
//! - **Idle limit**: a background reaper QUITs each connection unused for `idle_limit`, so
//!   the server's slot is freed even when no send ever comes again. It runs only while idle
//!   connections exist and holds the pool weakly, so a dropped mailer stops it.
//! - **Shrinking**: a `421` at the greeting while other connections of the pool are alive
//!   means the server allows fewer connections than the pool: the refused send gives its slot
//!   up for good (the limit drops by one) and waits for a connection instead of spending an
//!   attempt.
//! - **Growing back**: after a cool-down of `retry_base`, doubling with every shrink of the
//!   episode up to `retry_max`, the limit rises by one at the next checkout or return, up to
//!   the configured size. A server that still refuses shrinks it again, with a longer cool-down.
//! - **Close**: cancels the token that every waiting send selects on, QUITs idle connections
//!   at once and waits (bounded by the command timeout) for lent ones to come back, which
//!   are then QUIT too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use logger::Logger;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::connection::Conn;
use crate::events;

pub(crate) struct Pool {
    max: usize,
    idle_limit: Duration,
    command_timeout: Duration,
    cool_down: Backoff,
    slots: Semaphore,
    state: Mutex<State>,
    /// Established connections, idle or lent (each [`Alive`] counts one).
    alive: Arc<AtomicUsize>,
    /// Signalled whenever a lease ends, for `close`'s drain.
    returned: Notify,
    log: Arc<dyn Logger>,
    server: String,
}

struct State {
    /// Idle connections, least recently used first.
    idle: Vec<Pooled>,
    /// Slots that exist now: `max` minus the shrinks not yet grown back.
    limit: usize,
    /// Leases outstanding (sends holding a slot).
    leased: usize,
    /// Shrinks since the pool was last at full size (the cool-down doubles with each).
    shrinks: u32,
    /// When the limit may next grow by one.
    grow_at: Option<Instant>,
    /// Cancelled by `close`; every send waits on the token current when it started.
    cancel: CancellationToken,
    /// `close` calls in progress: sends that start meanwhile fail at once.
    closing: usize,
    reaper: bool,
}

/// One established connection, counted while it exists.
pub(crate) struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection with its place in the count of live ones. Boxed: it moves in and out of the
/// idle list and a lease with every send, and a pointer is cheaper to move than the whole
/// connection (lettre's and ours, some hundreds of bytes).
pub(crate) struct Pooled {
    pub(crate) conn: Box<Conn>,
    _alive: Alive,
}

/// A send's slot, and the idle connection that came with it, if any.
pub(crate) struct Lease<'a> {
    pool: &'a Pool,
    permit: Option<SemaphorePermit<'a>>,
    pub(crate) conn: Option<Pooled>,
}

/// What a `421` at the greeting meant for the pool.
pub(crate) enum Crowded {
    /// The pool gave up a slot; it now allows this many connections.
    Shrunk(usize),
    /// Nothing to do with the pool (no other connection alive, or the pool is at one).
    No,
}

impl Pool {
    pub(crate) fn new(
        max: usize,
        idle_limit: Duration,
        command_timeout: Duration,
        cool_down: Backoff,
        log: Arc<dyn Logger>,
        server: String,
    ) -> Self {
        let max = max.max(1);
        Pool {
            max,
            idle_limit,
            command_timeout,
            cool_down,
            slots: Semaphore::new(max),
            state: Mutex::new(State {
                idle: Vec::new(),
                limit: max,
                leased: 0,
                shrinks: 0,
                grow_at: None,
                cancel: CancellationToken::new(),
                closing: 0,
                reaper: false,
            }),
            alive: Arc::new(AtomicUsize::new(0)),
            returned: Notify::new(),
            log,
            server,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The lock guards plain bookkeeping that no panic can leave half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token a send started now must watch, or `None` while `close` is running.
    pub(crate) fn cancel_token(&self) -> Option<CancellationToken> {
        let st = self.state();
        (st.closing == 0).then(|| st.cancel.clone())
    }

    /// Counts a freshly opened connection as alive.
    pub(crate) fn adopt(&self, conn: Conn) -> Pooled {
        self.alive.fetch_add(1, Ordering::Relaxed);
        Pooled { conn: Box::new(conn), _alive: Alive(Arc::clone(&self.alive)) }
    }

    /// Waits for a slot (first come, first served) and takes the most recently used idle
    /// connection with it, if one is free. `None` when `cancel` fires first.
    pub(crate) async fn checkout(&self, cancel: &CancellationToken) -> Option<Lease<'_>> {
        self.maybe_grow();
        let permit = tokio::select! {
            permit = self.slots.acquire() => permit.ok()?,
            () = cancel.cancelled() => return None,
        };
        let mut st = self.state();
        if cancel.is_cancelled() {
            return None;
        }
        st.leased += 1;
        // The reaper normally takes expired connections first; one it has not reached yet is
        // dropped here rather than reused past the limit the server may enforce.
        while let Some(conn) = st.idle.pop() {
            if conn.conn.last_used.elapsed() < self.idle_limit {
                return Some(Lease { pool: self, permit: Some(permit), conn: Some(conn) });
            }
        }
        Some(Lease { pool: self, permit: Some(permit), conn: None })
    }

    /// A new connection of `lease` got a `421` at the greeting. With other connections
    /// alive, the server is counting ours: give this slot up (down to one) and let the send
    /// wait for a connection.
    pub(crate) fn crowded(&self, mut lease: Lease<'_>) -> Crowded {
        let mut st = self.state();
        if self.alive.load(Ordering::Relaxed) == 0 || st.limit <= 1 {
            return Crowded::No;
        }
        st.limit -= 1;
        st.shrinks += 1;
        st.grow_at = Some(Instant::now() + self.cool_down.ceiling(st.shrinks));
        if let Some(permit) = lease.permit.take() {
            permit.forget();
        }
        Crowded::Shrunk(st.limit)
    }

    /// After a cool-down, lets the pool grow by one slot towards its configured size.
    fn maybe_grow(&self) {
        let grown = {
            let mut st = self.state();
            match st.grow_at {
                Some(at) if st.limit < self.max && Instant::now() >= at => {
                    st.limit += 1;
                    if st.limit == self.max {
                        st.shrinks = 0;
                        st.grow_at = None;
                    } else {
                        st.grow_at = Some(Instant::now() + self.cool_down.ceiling(st.shrinks));
                    }
                    self.slots.add_permits(1);
                    Some(st.limit)
                }
                _ => None,
            }
        };
        if let Some(limit) = grown {
            logger::info!(self.log, "pool grows by one connection";
                event = events::POOL_GROWN, server = self.server, connections = limit);
        }
    }

    /// Ends a lease: the connection (if it is healthy) becomes idle, or is QUIT when the pool
    /// is closing.
    pub(crate) async fn give_back(self: &Arc<Self>, mut lease: Lease<'_>, conn: Option<Pooled>) {
        if let Some(conn) = conn {
            self.keep_or_quit(conn).await;
        }
        self.maybe_grow();
        drop(lease.permit.take());
    }

    async fn keep_or_quit(self: &Arc<Self>, conn: Pooled) {
        let closing = {
            let mut st = self.state();
            let closing = st.closing > 0 || st.cancel.is_cancelled();
            if !closing {
                st.idle.push(conn);
                if !st.reaper {
                    st.reaper = true;
                    tokio::spawn(reap(Arc::downgrade(self)));
                }
                None
            } else {
                Some(conn)
            }
        };
        if let Some(conn) = closing {
            conn.conn.quit().await;
        }
    }

    /// Cancels waiting sends, QUITs idle connections and waits for lent ones to come back
    /// (and be QUIT), all within one command timeout.
    pub(crate) async fn close(&self) {
        let (idle, cancel) = {
            let mut st = self.state();
            st.closing += 1;
            let cancel = std::mem::take(&mut st.cancel);
            (std::mem::take(&mut st.idle), cancel)
        };
        cancel.cancel();
        let mut quits = tokio::task::JoinSet::new();
        for conn in idle {
            quits.spawn(conn.conn.quit());
        }
        let drained = async {
            while quits.join_next().await.is_some() {}
            loop {
                let returned = self.returned.notified();
                tokio::pin!(returned);
                returned.as_mut().enable();
                if self.state().leased == 0 {
                    break;
                }
                returned.await;
            }
        };
        let _ = tokio::time::timeout(self.command_timeout, drained).await;
        self.state().closing -= 1;
    }

    /// Takes the idle connections unused for the idle limit (each with a slot, so that
    /// QUITting them never overlaps new connections beyond the limit), and says when to look
    /// again.
    fn expired(&self) -> (Vec<(Pooled, SemaphorePermit<'_>)>, Option<Instant>) {
        let mut st = self.state();
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut kept = Vec::new();
        for conn in std::mem::take(&mut st.idle) {
            if now.duration_since(conn.conn.last_used) >= self.idle_limit {
                match self.slots.try_acquire() {
                    Ok(permit) => expired.push((conn, permit)),
                    Err(_) => kept.push(conn),
                }
            } else {
                kept.push(conn);
            }
        }
        st.idle = kept;
        let next = st.idle.iter().map(|c| c.conn.last_used + self.idle_limit).min();
        let next = match next {
            // Expired but no slot free: every slot is busy, so look again shortly.
            Some(at) if at <= now => Some(now + self.idle_limit.min(Duration::from_secs(1))),
            other => other,
        };
        if next.is_none() {
            st.reaper = false;
        }
        (expired, next)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut st = self.pool.state();
        st.leased -= 1;
        drop(st);
        self.pool.returned.notify_waiters();
    }
}

/// QUITs idle connections as they pass the idle limit; ends when none is idle (the next
/// connection given back starts it again) or when the mailer is gone.
async fn reap(pool: Weak<Pool>) {
    loop {
        let next = {
            let Some(pool) = pool.upgrade() else { return };
            let (expired, next) = pool.expired();
            if !expired.is_empty() {
                let n = expired.len();
                let idle_ms = pool.idle_limit.as_millis();
                for (conn, _slot) in expired {
                    conn.conn.quit().await;
                }
                logger::info!(pool.log, "closed idle connections";
                    event = events::IDLE_CLOSED, server = pool.server, connections = n,
                    idle_ms = idle_ms);
            }
            next
        };
        match next {
            Some(at) => tokio::time::sleep_until(at).await,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn pool(max: usize, log: &logger::Mock) -> Pool {
        let cool_down = Backoff::new(100 * MS, 1_000 * MS);
        let log: Arc<dyn Logger> = Arc::new(log.clone());
        Pool::new(max, 30_000 * MS, 5_000 * MS, cool_down, log, "mx.test:25".into())
    }

    /// Pretends `n` connections are established (the count `crowded` looks at).
    fn alive(pool: &Pool, n: usize) {
        pool.alive.fetch_add(n, Ordering::Relaxed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_crowded_greeting_shrinks_then_the_pool_grows_back_after_cool_downs() {
        let log = logger::Mock::new();
        let p = pool(4, &log);
        let cancel = CancellationToken::new();
        // Nobody else alive: a 421 at the greeting is an ordinary fault.
        let lease = p.checkout(&cancel).await.unwrap();
        assert!(matches!(p.crowded(lease), Crowded::No));
        alive(&p, 1);
        for want in [3, 2, 1] {
            let lease = p.checkout(&cancel).await.unwrap();
            assert!(matches!(p.crowded(lease), Crowded::Shrunk(n) if n == want));
        }
        // Never below one slot.
        let lease = p.checkout(&cancel).await.unwrap();
        assert!(matches!(p.crowded(lease), Crowded::No));
        assert_eq!(p.slots.available_permits(), 1);
        // Three shrinks: the next growth waits 100 ms * 2^2; then 400 ms again per step.
        tokio::time::advance(399 * MS).await;
        drop(p.checkout(&cancel).await.unwrap());
        assert_eq!(p.slots.available_permits(), 1);
        tokio::time::advance(MS).await;
        drop(p.checkout(&cancel).await.unwrap());
        assert_eq!(p.slots.available_permits(), 2);
        for want in [3, 4, 4] {
            tokio::time::advance(400 * MS).await;
            drop(p.checkout(&cancel).await.unwrap());
            assert_eq!(p.slots.available_permits(), want, "one slot per cool-down, up to 4");
        }
        let grown = log.get_all_matching("event=pool_grown ");
        assert_eq!(grown.len(), 3, "{grown:?}");
        assert!(grown[2].contains("connections=4"), "{grown:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn close_ends_a_wait_for_a_slot_at_once() {
        let p = Arc::new(pool(1, &logger::Mock::new()));
        let cancel = p.cancel_token().unwrap();
        let held = p.checkout(&cancel).await.unwrap();
        let waiter = {
            let (p, cancel) = (Arc::clone(&p), cancel.clone());
            tokio::spawn(async move { p.checkout(&cancel).await.is_none() })
        };
        tokio::task::yield_now().await;
        let closing = {
            let p = Arc::clone(&p);
            tokio::spawn(async move { p.close().await })
        };
        assert!(waiter.await.unwrap(), "the waiting checkout ended with None");
        // While close waits for the lent slot, new sends are refused.
        tokio::task::yield_now().await;
        assert!(p.cancel_token().is_none());
        drop(held);
        closing.await.unwrap();
        let after = p.cancel_token().expect("a send after close may start");
        assert!(!after.is_cancelled());
        assert!(p.checkout(&after).await.is_some());
    }
}
