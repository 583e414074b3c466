//! [`LogAdapter`]: records of the `log` crate facade (what many dependencies log through)
//! into a [`Logger`].

use std::fmt;
use std::sync::Arc;

use crate::{Field, Level, Logger, Record};

/// Maps a `log` level: Error to Err, Warn to Warning, Info to Info, Debug and Trace to Debug.
pub fn level_from_log(level: log::Level) -> Level {
    match level {
        log::Level::Error => Level::Err,
        log::Level::Warn => Level::Warning,
        log::Level::Info => Level::Info,
        log::Level::Debug | log::Level::Trace => Level::Debug,
    }
}

/// A `log::Log` that feeds records from crates using the `log` facade into a [`Logger`], with
/// a `target=` field. Install it once in `main` with [`LogAdapter::install`].
#[derive(Clone)]
pub struct LogAdapter {
    logger: Arc<dyn Logger>,
}

impl LogAdapter {
    /// An adapter into `logger`.
    pub fn new(logger: Arc<dyn Logger>) -> Self {
        LogAdapter { logger }
    }

    /// Makes this the `log` crate's global logger, with `log`'s maximum level set to the most
    /// verbose level `logger` is enabled for. Fails if a `log` logger was already installed.
    pub fn install(logger: Arc<dyn Logger>) -> Result<(), log::SetLoggerError> {
        let max = [
            (Level::Debug, log::LevelFilter::Trace),
            (Level::Info, log::LevelFilter::Info),
            (Level::Warning, log::LevelFilter::Warn),
            (Level::Err, log::LevelFilter::Error),
        ]
        .into_iter()
        .find(|(level, _)| logger.enabled(*level))
        .map_or(log::LevelFilter::Off, |(_, filter)| filter);
        log::set_boxed_logger(Box::new(LogAdapter::new(logger)))?;
        log::set_max_level(max);
        Ok(())
    }
}

impl fmt::Debug for LogAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogAdapter").finish_non_exhaustive()
    }
}

impl log::Log for LogAdapter {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.logger.enabled(level_from_log(metadata.level()))
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = level_from_log(record.level());
        if !self.logger.enabled(level) {
            return;
        }
        let target = record.target();
        self.logger
            .log(&Record::new(level, *record.args()).with_fields(&[Field::new("target", &target)]));
    }

    fn flush(&self) {
        self.logger.flush();
    }
}
