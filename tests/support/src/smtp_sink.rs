//! Postfix's test tools: `smtp-sink`, a fast SMTP server that stores nothing and injects
//! deterministic faults, and `smtp-source`, a load generator.

use std::io;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::ports::{loopback, with_free_ports};
use crate::process::{Finished, Held, is_root, missing, run};
use crate::wait::wait_until;

/// Where Debian's `postfix` package installs the tools.
pub const SMTP_SINK: &str = "/usr/sbin/smtp-sink";
/// See [`SMTP_SINK`].
pub const SMTP_SOURCE: &str = "/usr/sbin/smtp-source";

/// Counters that `smtp-sink -c` prints after every session, QUIT and final dot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// Sessions that ended.
    pub sessions: u64,
    /// QUIT commands received.
    pub quits: u64,
    /// Messages received (final dots).
    pub messages: u64,
}

/// `smtp-sink` on a free loopback port, killed on drop.
///
/// Its fault flags act on every occurrence: `-Q MAIL` replies 421 and disconnects, `-q MAIL`
/// disconnects without a reply, `-r RCPT` replies 4xx, `-f DATA` 5xx; `-W cmd:delay` delays.
pub struct SmtpSink {
    daemon: Held,
    addr: SocketAddr,
    counting: bool,
}

impl SmtpSink {
    /// Starts `smtp-sink [-u nobody] -c [args...] 127.0.0.1:PORT 1024` and waits until it
    /// listens (checked in `/proc`, so no probe session shows in its counters).
    pub fn start(args: &[&str]) -> io::Result<SmtpSink> {
        Self::start_with(args, true)
    }

    /// [`SmtpSink::start`] without `-c`: for benchmarks, where printing the counters after
    /// every message would slow the sink down. [`SmtpSink::counters`] then panics.
    pub fn start_uncounted(args: &[&str]) -> io::Result<SmtpSink> {
        Self::start_with(args, false)
    }

    fn start_with(args: &[&str], counting: bool) -> io::Result<SmtpSink> {
        with_free_ports(1, |ports| {
            let addr = loopback(ports[0]);
            let mut command = Command::new(SMTP_SINK);
            // Required when running as root, refused otherwise.
            if is_root() {
                command.args(["-u", "nobody"]);
            }
            if counting {
                command.arg("-c");
            }
            command.args(args).arg(addr.to_string()).arg("1024");
            let daemon = Held::spawn(&mut command).map_err(|e| missing(e, "postfix"))?;
            let daemon =
                daemon.wait_ready(Duration::from_secs(10), &format!("listen on {addr}"), |d| {
                    d.listens_tcp(addr.port())
                })?;
            Ok(SmtpSink { daemon, addr, counting })
        })
    }

    /// The loopback address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The latest counters it printed (a session is counted when it ends).
    pub fn counters(&self) -> SinkCounters {
        assert!(self.counting, "this smtp-sink was started uncounted (without -c)");
        last_counters(&self.daemon.stdout().text())
    }

    /// Waits up to `timeout` until the counters are `expected`; the counters then.
    pub fn wait_for_counters(&self, timeout: Duration, expected: SinkCounters) -> SinkCounters {
        wait_until(timeout, || self.counters() == expected);
        self.counters()
    }
}

/// The last complete `sess=N quit=N mesg=N` record; `smtp-sink -c` ends each with CR.
fn last_counters(output: &str) -> SinkCounters {
    output
        .rsplit('\r')
        .skip(1) // the part after the last CR is still being written
        .find_map(|record| {
            let mut counters = SinkCounters::default();
            let mut seen = 0;
            for part in record.split_whitespace() {
                let Some((key, value)) = part.split_once('=') else { continue };
                let Ok(value) = value.parse() else { continue };
                match key {
                    "sess" => counters.sessions = value,
                    "quit" => counters.quits = value,
                    "mesg" => counters.messages = value,
                    _ => continue,
                }
                seen += 1;
            }
            (seen == 3).then_some(counters)
        })
        .unwrap_or_default()
}

/// Runs `smtp-source [args...] ADDR` to completion (killed after `limit`). It exits non-zero
/// when the server drops it: benchmark with faults off.
pub fn smtp_source(args: &[&str], addr: SocketAddr, limit: Duration) -> io::Result<Finished> {
    run(Command::new(SMTP_SOURCE).args(args).arg(addr.to_string()), limit)
        .map_err(|e| missing(e, "postfix"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_complete_counter_record() {
        let out = "sess=0 quit=0 mesg=1\rsess=3 quit=2 mesg=7\rgarbage\rsess=9 qu";
        assert_eq!(last_counters(out), SinkCounters { sessions: 3, quits: 2, messages: 7 });
        assert_eq!(last_counters(""), SinkCounters::default());
    }
}
