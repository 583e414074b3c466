//! `logger::set` / `logger::get`: the only test that touches the process-wide logger, alone in
//! its own file (its own process).

use std::sync::Arc;

use logger::{Logger, Mock};

#[test]
fn set_works_once_and_the_second_call_is_reported() {
    // Before set: a usable default (stdout at Info) that does not block a later set.
    let default = logger::get();
    assert!(default.enabled(logger::Level::Info));
    assert!(!default.enabled(logger::Level::Debug));

    let first = Mock::new();
    logger::set(Arc::new(first.clone())).unwrap();
    logger::get().info("through get");

    let second = Mock::new();
    let err = logger::set(Arc::new(second.clone())).unwrap_err();
    assert!(err.to_string().contains("already set"), "{err}");
    logger::get().info("still the first");

    assert_eq!(
        first.get_all(),
        [
            "INFO: through get",
            "WARNING: logger::set called again; keeping the logger set first",
            "INFO: still the first",
        ]
    );
    assert!(second.get_all().is_empty());

    // The log crate adapter installs once too, into the same kind of sink.
    let captured = Mock::new();
    logger::LogAdapter::install(Arc::new(captured.clone())).unwrap();
    log::info!(target: "dep", "from the log crate");
    log::trace!("below Mock's threshold? Mock takes everything");
    assert!(logger::LogAdapter::install(Arc::new(Mock::new())).is_err());
    assert_eq!(captured.get_all()[0], "INFO: from the log crate target=dep");
    assert_eq!(captured.get_all().len(), 2);
}
