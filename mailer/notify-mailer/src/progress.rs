//! Progress: an indicatif bar when stderr is a terminal, otherwise a plain `event=progress` log
//! line every few seconds (a bar in a log file or a CI transcript is only noise).

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use logger::Logger;

/// Counts shared by the senders and the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages sent.
    pub sent: AtomicU64,
    /// Messages failed.
    pub failed: AtomicU64,
}

impl Counters {
    /// Messages finished either way.
    pub fn done(&self) -> u64 {
        self.sent.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// The progress display for one run.
pub struct Progress {
    total: u64,
    interval: Duration,
    counters: Arc<Counters>,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    /// A bar when `terminal`, otherwise a line every `interval` (written by whoever calls
    /// [`Progress::line`] on that schedule).
    pub fn new(total: u64, counters: Arc<Counters>, terminal: bool, interval: Duration) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            // The template is a constant: a parse error here would be a bug caught by the tests.
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {pos}/{len}, {eta} left {msg}",
            )
            .expect("valid progress template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress { total, interval, counters, bar, started: Instant::now() }
    }

    /// Whether a bar is drawn (log lines must then go through [`Progress::writer`]).
    pub fn has_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// Updates the bar after a message finished.
    pub fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.counters.done());
            let failed = self.counters.failed.load(Ordering::Relaxed);
            if failed > 0 {
                bar.set_message(format!("{failed} failed"));
            }
        }
    }

    /// How often to call [`Progress::line`] when there is no bar.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Writes one plain progress line.
    pub fn line(&self, log: &dyn Logger) {
        let sent = self.counters.sent.load(Ordering::Relaxed);
        let failed = self.counters.failed.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        let per_sec = if secs > 0.0 { (sent + failed) as f64 / secs } else { 0.0 };
        logger::info!(log, "progress: {}/{} done", sent + failed, self.total;
            event = "progress", sent = sent, failed = failed, total = self.total,
            per_sec = format_args!("{per_sec:.1}"));
    }

    /// Removes the bar so the summary prints on a clean screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// A stdout writer that lifts the bar while a log line is written, so lines and bar do
    /// not garble each other on a shared terminal.
    pub fn writer(&self) -> BarWriter {
        BarWriter { bar: self.bar.clone() }
    }
}

/// Writes to stdout with the progress bar (if any) hidden for the duration of each write.
#[derive(Clone)]
pub struct BarWriter {
    bar: Option<ProgressBar>,
}

impl Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.bar {
            Some(bar) => bar.suspend(|| io::stdout().write_all(buf)).map(|()| buf.len()),
            None => io::stdout().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stdout().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_reports_counts() {
        let counters = Arc::new(Counters::default());
        counters.sent.store(40, Ordering::Relaxed);
        counters.failed.store(2, Ordering::Relaxed);
        let progress = Progress::new(100, counters.clone(), false, Duration::from_secs(5));
        assert!(!progress.has_bar());
        let log = logger::Mock::new();
        progress.line(&log);
        let lines = log.get_all();
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with(
                "INFO: progress: 42/100 done event=progress sent=40 failed=2 total=100 per_sec="
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn bar_follows_the_counters() {
        let counters = Arc::new(Counters::default());
        let progress = Progress::new(10, counters.clone(), true, Duration::from_secs(5));
        counters.sent.store(3, Ordering::Relaxed);
        counters.failed.store(1, Ordering::Relaxed);
        progress.tick();
        let bar = progress.bar.as_ref().unwrap();
        assert_eq!(bar.position(), 4);
        assert_eq!(bar.message(), "1 failed");
        progress.finish();
    }
}
