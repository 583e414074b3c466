//! The Mock from many threads and tokio tasks at once, and Mocks in parallel tests staying
//! apart (no global state).

use std::sync::Arc;

use logger::{Level, Logger, Mock};

#[test]
fn many_threads_at_once_lose_nothing_and_never_mix_lines() {
    let log = Mock::new();
    let shared: Arc<dyn Logger> = Arc::new(log.clone());
    std::thread::scope(|s| {
        for t in 0..8 {
            let shared = Arc::clone(&shared);
            s.spawn(move || {
                for i in 0..500 {
                    logger::info!(shared, "tick"; thread = t, i = i);
                }
            });
        }
    });
    let lines = log.get_all();
    assert_eq!(lines.len(), 4000);
    for t in 0..8 {
        let mine = log.get_all_matching(&format!(r"^INFO: tick thread={t} i=\d+$"));
        // Per thread, order is kept.
        let order: Vec<usize> =
            mine.iter().map(|l| l.rsplit_once("i=").unwrap().1.parse().unwrap()).collect();
        assert_eq!(order, (0..500).collect::<Vec<_>>());
    }
}

#[test]
fn many_tokio_tasks_on_a_multi_thread_runtime() {
    let log = Mock::new();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).build().unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..64)
            .map(|n| {
                let log: Arc<dyn Logger> = Arc::new(log.clone());
                tokio::spawn(async move {
                    for i in 0..20 {
                        logger::warning!(log, "task"; n = n, i = i);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(log.get_all_matching(r"^WARNING: task n=\d+ i=\d+$").len(), 64 * 20);
    assert!(log.records().iter().all(|r| r.level == Level::Warning && r.fields.len() == 2));
}

#[test]
fn readers_and_clear_while_writers_run() {
    let log = Mock::new();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let log = log.clone();
            s.spawn(move || {
                for i in 0..300 {
                    log.info(&format!("line {i}"));
                }
            });
        }
        let reader = log.clone();
        s.spawn(move || {
            for _ in 0..50 {
                // Every line a reader sees is whole.
                for line in reader.get_all() {
                    assert!(line.starts_with("INFO: line "), "{line}");
                }
                let _ = reader.expect_match("^INFO: line");
            }
        });
    });
    assert_eq!(log.get_all().len(), 1200);
    log.clear();
    assert!(log.get_all().is_empty() && log.records().is_empty());
}

#[test]
fn separate_mocks_do_not_share_a_recording_but_clones_do() {
    let (a, b) = (Mock::new(), logger::new_mock());
    let a2 = a.clone();
    a2.err("to a");
    b.debug("to b");
    assert_eq!(a.get_all(), ["ERR: to a"]);
    assert_eq!(b.get_all(), ["DEBUG: to b"]);
    assert!(a.expect_match("to b").unwrap_err().contains("ERR: to a"));
}
