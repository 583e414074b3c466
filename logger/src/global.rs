//! The process-wide logger: [`set`] once in `main`, [`get`] anywhere.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::{Level, Logger, Stdout};

static GLOBAL: OnceLock<Arc<dyn Logger>> = OnceLock::new();
static DEFAULT: OnceLock<Arc<dyn Logger>> = OnceLock::new();

/// The error from a second [`set`]: the first logger stays in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetError(());

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the global logger was already set; keeping the first one")
    }
}

impl std::error::Error for SetError {}

/// Installs the process-wide logger. Works once: a second call returns [`SetError`], and the
/// logger already installed records a warning saying so.
///
/// Only `main` should call this; libraries take an `Arc<dyn Logger>` in their constructors.
pub fn set(logger: Arc<dyn Logger>) -> Result<(), SetError> {
    match GLOBAL.set(logger) {
        Ok(()) => Ok(()),
        Err(_rejected) => {
            if let Some(installed) = GLOBAL.get() {
                installed.warning("logger::set called again; keeping the logger set first");
            }
            Err(SetError(()))
        }
    }
}

/// The logger installed by [`set`], or, until then, a shared default: [`Stdout`] at Info
/// under the program name taken from the executable's file name. Calling `get` first does not
/// stop a later `set`.
pub fn get() -> Arc<dyn Logger> {
    match GLOBAL.get() {
        Some(logger) => Arc::clone(logger),
        None => default_logger(),
    }
}

fn default_logger() -> Arc<dyn Logger> {
    Arc::clone(DEFAULT.get_or_init(|| {
        let program = std::env::args_os()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a).file_name().map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "-".to_owned());
        Arc::new(Stdout::new(&program, Level::Info))
    }))
}
