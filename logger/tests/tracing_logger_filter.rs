//! `TracingLogger::enabled` follows the subscriber's filter. Alone in its own process: tracing
//! caches each callsite's interest across all the scoped subscribers of a process, so a
//! subscriber that filters would race with the unfiltered ones of other tests.

use logger::{Level, Logger, TracingLogger};
use tracing_subscriber::layer::{Layer, SubscriberExt};

/// A layer that takes every event it is offered and does nothing with it.
struct Null;

impl<S: tracing::Subscriber> Layer<S> for Null {}

#[test]
fn tracing_logger_is_enabled_only_where_the_subscriber_wants_the_level() {
    let subscriber = tracing_subscriber::registry()
        .with(Null.with_filter(tracing_subscriber::filter::LevelFilter::WARN));
    tracing::subscriber::with_default(subscriber, || {
        let log = TracingLogger::new(Level::Debug);
        assert!(log.enabled(Level::Err));
        assert!(log.enabled(Level::Warning));
        assert!(!log.enabled(Level::Info));
        assert!(!log.enabled(Level::Debug));
    });
    // No subscriber at all: nothing is wanted.
    assert!(!TracingLogger::new(Level::Debug).enabled(Level::Err));
}
