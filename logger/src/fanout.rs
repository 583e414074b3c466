//! [`Fanout`]: one logger in front of several sinks, each with its own threshold.

use std::sync::Arc;

use crate::{Level, Logger, Record};

/// Sends each record to every sink whose threshold admits it: Boulder's "syslog at Info,
/// stdout at Warning".
///
/// The threshold is on top of the sink's own `enabled`; a record reaches a sink only when both
/// agree. [`Logger::enabled`] is true when any sink would take the level, so the macros format
/// nothing that every sink would drop.
///
/// ```
/// use std::sync::Arc;
/// use logger::{Fanout, Level, Logger, Mock};
/// let (syslog, stdout) = (Mock::new(), Mock::new());
/// let log = Fanout::new()
///     .with(Arc::new(syslog.clone()), Level::Info)
///     .with(Arc::new(stdout.clone()), Level::Warning);
/// log.info("routine");
/// log.warning("odd");
/// assert_eq!(syslog.get_all(), ["INFO: routine", "WARNING: odd"]);
/// assert_eq!(stdout.get_all(), ["WARNING: odd"]);
/// assert!(!log.enabled(Level::Debug));
/// ```
#[derive(Clone, Default)]
pub struct Fanout {
    sinks: Vec<(Arc<dyn Logger>, Level)>,
    /// The least severe level any sink admits; `None` when there are no sinks.
    max: Option<Level>,
}

impl Fanout {
    /// A fan-out with no sinks (it drops everything).
    pub fn new() -> Self {
        Fanout::default()
    }

    /// Adds a sink that receives records at `threshold` or more severe.
    pub fn with(mut self, sink: Arc<dyn Logger>, threshold: Level) -> Self {
        self.max = Some(self.max.map_or(threshold, |m| m.max(threshold)));
        self.sinks.push((sink, threshold));
        self
    }

    /// How many sinks there are.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether there are no sinks.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

impl Logger for Fanout {
    fn enabled(&self, level: Level) -> bool {
        // The common "nobody wants Debug" case is answered without a virtual call per sink.
        match self.max {
            Some(max) if level <= max => {
                self.sinks.iter().any(|(sink, t)| level <= *t && sink.enabled(level))
            }
            _ => false,
        }
    }

    fn log(&self, record: &Record<'_>) {
        for (sink, threshold) in &self.sinks {
            if record.level() <= *threshold {
                sink.log(record);
            }
        }
    }

    fn flush(&self) {
        for (sink, _) in &self.sinks {
            sink.flush();
        }
    }
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("thresholds", &self.sinks.iter().map(|(_, t)| *t).collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Mock, Stdout};

    #[test]
    fn each_sink_gets_what_its_threshold_admits() {
        let (a, b, c) = (Mock::new(), Mock::new(), Mock::new());
        let log = Fanout::new()
            .with(Arc::new(a.clone()), Level::Debug)
            .with(Arc::new(b.clone()), Level::Warning)
            .with(Arc::new(c.clone()), Level::Err);
        for level in Level::ALL {
            crate::log!(log, level, false, "at {}", level; n = level.severity());
        }
        log.audit_err("audit");
        assert_eq!(a.get_all().len(), 5);
        assert_eq!(
            b.get_all(),
            ["ERR: at ERR n=3", "WARNING: at WARNING n=4", "ERR: [AUDIT] audit"]
        );
        assert_eq!(c.get_all(), ["ERR: at ERR n=3", "ERR: [AUDIT] audit"]);
    }

    #[test]
    fn enabled_respects_sink_thresholds_and_sink_enabled() {
        // The sink itself only wants Warning, the fan-out threshold says Debug: Info is off.
        let stdout = Stdout::with_writer(Vec::new(), "p", Level::Warning);
        let log = Fanout::new().with(Arc::new(stdout), Level::Debug);
        assert!(log.enabled(Level::Warning));
        assert!(!log.enabled(Level::Info));
        assert!(!Fanout::new().enabled(Level::Err));
    }

    #[test]
    fn macros_format_nothing_when_no_sink_wants_the_level() {
        struct Boom;
        impl std::fmt::Display for Boom {
            fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                panic!("formatted a record nobody wanted")
            }
        }
        let log = Fanout::new().with(Arc::new(Mock::new()), Level::Info);
        crate::debug!(log, "{}", Boom; v = Boom);
    }
}
