//! Waiting for a condition instead of sleeping a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the waits below look at their condition.
const POLL: Duration = Duration::from_millis(5);

/// Polls `condition` until it holds or `timeout` passes; returns whether it held. The
/// condition is checked once more at the deadline, so a zero timeout is one check.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || condition().then_some(())).is_some()
}

/// Polls `probe` until it returns `Some` or `timeout` passes; returns what it found.
pub fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `read` until `n` of the items it returns satisfy `pred` or `timeout` passes;
/// returns the matching items there are then (fewer than `n` on timeout, more if more came).
/// The peers' `wait_for` and `wait_for_count` (records, journal entries, deliveries) are this.
pub fn wait_for_matching<T>(
    timeout: Duration,
    n: usize,
    mut read: impl FnMut() -> Vec<T>,
    mut pred: impl FnMut(&T) -> bool,
) -> Vec<T> {
    let mut found = Vec::new();
    wait_until(timeout, || {
        found = read().into_iter().filter(|item| pred(item)).collect();
        found.len() >= n
    });
    found
}

/// [`wait_until`] for async tests: sleeps on the tokio timer between checks, so the runtime's
/// other tasks (an in-process server, say) run meanwhile.
pub async fn wait_until_async(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs `future` with a deadline and panics when it passes, so a hung test step fails with a
/// message instead of hanging CI.
pub async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("test step did not finish within {limit:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_as_soon_as_the_condition_holds_and_false_at_the_deadline() {
        let mut calls = 0;
        assert!(wait_until(Duration::from_secs(10), || {
            calls += 1;
            calls == 3
        }));
        assert_eq!(calls, 3);
        let started = Instant::now();
        assert!(!wait_until(Duration::from_millis(30), || false));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(wait_for(Duration::ZERO, || Some(7)), Some(7));
        let mut reads = 0;
        let odd = wait_for_matching(
            Duration::from_secs(10),
            2,
            || {
                reads += 1;
                (0..reads).collect()
            },
            |n| n % 2 == 1,
        );
        assert_eq!((odd, reads), (vec![1, 3], 4));
    }

    #[tokio::test]
    async fn the_async_wait_lets_other_tasks_run() {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let setter = flag.clone();
        tokio::spawn(async move { setter.store(true, std::sync::atomic::Ordering::SeqCst) });
        let seen = wait_until_async(Duration::from_secs(10), || {
            flag.load(std::sync::atomic::Ordering::SeqCst)
        });
        assert!(seen.await);
        assert_eq!(within(Duration::from_secs(1), async { 5 }).await, 5);
    }
}
