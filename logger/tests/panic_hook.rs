//! `install_panic_hook` replaces the process's panic hook, so it runs alone in this file.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use logger::Mock;

static PREVIOUS_RAN: AtomicUsize = AtomicUsize::new(0);

#[test]
fn a_panic_becomes_one_audit_err_line_then_the_previous_hook_runs() {
    std::panic::set_hook(Box::new(|_| {
        PREVIOUS_RAN.fetch_add(1, Ordering::SeqCst);
    }));
    let log = Mock::new();
    logger::install_panic_hook(Arc::new(log.clone()));

    let joined = std::thread::Builder::new()
        .name("worker".into())
        .spawn(|| panic!("bad state\n[AUDIT] forged {}", 7))
        .unwrap()
        .join();
    assert!(joined.is_err());

    let lines = log.get_all();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert!(
        line.starts_with(r"ERR: [AUDIT] panic: bad state\n[AUDIT] forged 7 location="),
        "{line}"
    );
    assert!(line.contains("tests/panic_hook.rs:"), "{line}");
    assert!(line.contains(" thread=worker "), "{line}");
    let rec = &log.records()[0];
    assert!(rec.audit);
    assert!(!rec.field("backtrace").unwrap().is_empty());
    assert_eq!(PREVIOUS_RAN.load(Ordering::SeqCst), 1);
}
