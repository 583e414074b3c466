//! The real `systemd-journald`, run without systemd in a private mount namespace (as root),
//! its native socket reachable from outside at a path in a temporary directory, its journal
//! read back with `journalctl -o json`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{Daemon, Held, is_root, missing, run};
use crate::wait::wait_for_matching;

/// Where Debian's `systemd` package installs the daemon.
pub const JOURNALD: &str = "/lib/systemd/systemd-journald";

const START_TIMEOUT: Duration = Duration::from_secs(20);

/// journald's configuration: stock, but for two settings that make it a private test daemon
/// and change no limit. `Storage=volatile` keeps the journal in the runtime directory (bound
/// to this instance's directory); `ReadKMsg=no` keeps the host's kernel log out.
///
/// Every limit is stock on purpose: field and entry sizes, `LineMax`, the journal's
/// `RuntimeMaxUse` and file sizes, and the rate limit (`RateLimitIntervalSec=30s`,
/// `RateLimitBurst=10000` per sender cgroup; each test has a daemon of its own, so tests do
/// not share it). What a production journald truncates, refuses or suppresses, this one does
/// too, so the tests see it.
const JOURNALD_CONF: &str = "[Journal]\nStorage=volatile\nReadKMsg=no\n";

/// One journal entry: every field with its values (a field can repeat; values are bytes,
/// journalctl writes non-UTF-8 ones as arrays of numbers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Field name to its values, in the order journalctl gave them.
    pub fields: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// Parses one line of `journalctl -o json --all`.
    pub fn parse(line: &str) -> io::Result<Entry> {
        let invalid = |what: &str| {
            io::Error::new(io::ErrorKind::InvalidData, format!("journalctl json: {what}: {line}"))
        };
        let Value::Object(map) = serde_json::from_str(line).map_err(|e| invalid(&e.to_string()))?
        else {
            return Err(invalid("not an object"));
        };
        let mut fields = BTreeMap::new();
        for (name, value) in map {
            let values = match value {
                Value::Array(items) if items.iter().all(|v| v.is_number()) => {
                    vec![bytes_of(&items).ok_or_else(|| invalid("bad byte array"))?]
                }
                Value::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Some(s.clone().into_bytes()),
                        Value::Array(b) => bytes_of(b),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid("bad multi-value field"))?,
                Value::String(s) => vec![s.into_bytes()],
                // --all shows every field, so a null (field too large to show) is a bug.
                other => return Err(invalid(&format!("field {name} is {other}"))),
            };
            fields.insert(name, values);
        }
        Ok(Entry { fields })
    }

    /// The first value of `name` (lossy UTF-8).
    pub fn get(&self, name: &str) -> Option<String> {
        self.bytes(name).map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// The first value of `name`, as bytes.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.fields.get(name).and_then(|v| v.first()).map(Vec::as_slice)
    }

    /// Every value of `name` (lossy UTF-8).
    pub fn values(&self, name: &str) -> Vec<String> {
        self.fields
            .get(name)
            .map(|v| v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect())
            .unwrap_or_default()
    }

    /// `MESSAGE`.
    pub fn message(&self) -> Option<String> {
        self.get("MESSAGE")
    }

    /// `PRIORITY` as a number.
    pub fn priority(&self) -> Option<u8> {
        self.get("PRIORITY")?.parse().ok()
    }

    /// `SYSLOG_IDENTIFIER`.
    pub fn identifier(&self) -> Option<String> {
        self.get("SYSLOG_IDENTIFIER")
    }
}

fn bytes_of(items: &[Value]) -> Option<Vec<u8>> {
    items.iter().map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok())).collect()
}

/// A private `systemd-journald`. It can be killed and restarted on the same socket path; the
/// journal keeps what every instance stored. Dropping it kills the daemon, which ends its
/// mount namespace.
pub struct Journald {
    dir: tempfile::TempDir,
    daemon: Daemon,
    last_start: Duration,
}

impl Journald {
    /// Starts journald (see the module docs) and waits until its native socket exists.
    /// Needs root (a mount namespace), `unshare` (util-linux) and systemd's journald.
    pub fn start() -> io::Result<Journald> {
        if !is_root() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "a private journald needs root (unshare -m and bind mounts)",
            ));
        }
        if !Path::new(JOURNALD).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{JOURNALD} not found (apt-get install systemd; .ci/run installs it)"),
            ));
        }
        let dir = tempfile::Builder::new().prefix("journald-").tempdir()?;
        for sub in ["run", "log", "var"] {
            std::fs::create_dir(dir.path().join(sub))?;
        }
        std::fs::write(dir.path().join("journald.conf"), JOURNALD_CONF)?;
        let mut journald = Journald { dir, daemon: Daemon::default(), last_start: Duration::ZERO };
        journald.restart()?;
        Ok(journald)
    }

    /// The temporary directory (`run/` holds the sockets, `log/journal/<machine-id>/` the
    /// journal).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The native protocol socket (what `/run/systemd/journal/socket` is on a real system).
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("run/socket")
    }

    /// The syslog socket (`/run/systemd/journal/dev-log`, what `/dev/log` links to).
    pub fn syslog_socket_path(&self) -> PathBuf {
        self.dir.path().join("run/dev-log")
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// How long the last (re)start took.
    pub fn start_time(&self) -> Duration {
        self.last_start
    }

    /// The directory of journal files (`log/journal/<machine-id>`), once journald made it.
    pub fn journal_dir(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.path().join("log/journal"))
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.is_dir())
    }

    /// Every entry stored so far, journald's own included, oldest first (`journalctl
    /// --directory=... -o json --all`). Panics when journalctl fails: a harness bug.
    pub fn entries(&self) -> Vec<Entry> {
        let Some(journal) = self.journal_dir() else { return Vec::new() };
        let out = run(
            Command::new("journalctl").arg("--directory").arg(&journal).args([
                "-o",
                "json",
                "--all",
                "--no-pager",
            ]),
            START_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("journalctl: {e}"));
        assert!(out.success(), "journalctl failed: {}", out.transcript());
        out.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Entry::parse(l).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    /// Waits up to `timeout` for an entry that satisfies `pred`.
    pub fn wait_for(&self, timeout: Duration, pred: impl FnMut(&Entry) -> bool) -> Option<Entry> {
        wait_for_matching(timeout, 1, || self.entries(), pred).into_iter().next()
    }

    /// Waits up to `timeout` until `n` entries satisfy `pred`; returns those there are then.
    pub fn wait_for_count(
        &self,
        timeout: Duration,
        n: usize,
        pred: impl FnMut(&Entry) -> bool,
    ) -> Vec<Entry> {
        wait_for_matching(timeout, n, || self.entries(), pred)
    }

    /// What the running (or last) daemon wrote to stderr.
    pub fn diagnostics(&self) -> String {
        self.daemon.stderr()
    }

    /// Kills the daemon with SIGKILL; its socket files stay behind, as after a crash.
    pub fn kill(&mut self) -> io::Result<()> {
        self.daemon.kill()
    }

    /// Stops the daemon with SIGTERM (it syncs the journal), SIGKILL after 10 s.
    pub fn terminate(&mut self) -> io::Result<()> {
        self.daemon.terminate(Duration::from_secs(10))
    }

    /// Starts the daemon (again) with the same directories, killing a running one first, and
    /// waits until its native socket exists.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill()?;
        for socket in ["socket", "dev-log", "stdout", "io.systemd.journal"] {
            let _ = std::fs::remove_file(self.dir.path().join("run").join(socket));
        }
        let started = Instant::now();
        let d = self.dir.path().display();
        // A tmpfs on /etc/systemd too: journald reads our journald.conf and no drop-in of the
        // host's (/run/systemd is a fresh tmpfs already). The mount points exist wherever
        // systemd is installed; `mkdir -p` for a machine where one does not.
        let script = format!(
            "set -e
             mkdir -p /run/systemd /run/log /var/log/journal /etc/systemd
             mount -t tmpfs tmpfs /run/systemd
             mkdir /run/systemd/journal
             mount --bind '{d}/run' /run/systemd/journal
             mount --bind '{d}/log' /run/log
             mount --bind '{d}/var' /var/log/journal
             mount -t tmpfs tmpfs /etc/systemd
             cp '{d}/journald.conf' /etc/systemd/journald.conf
             exec {JOURNALD}"
        );
        // unshare execs sh, which execs journald: the held pid is journald's.
        let socket = self.socket_path();
        let unshare = ["-m", "--propagation", "private", "sh", "-c", &script];
        let daemon = Held::spawn(Command::new("unshare").args(unshare))
            .map_err(|e| missing(e, "util-linux"))?
            .wait_ready(START_TIMEOUT, &format!("create {}", socket.display()), |_| {
                socket.symlink_metadata().is_ok()
            })?;
        self.last_start = started.elapsed();
        self.daemon.set(daemon);
        Ok(())
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_binary_and_repeated_fields() {
        let line = r#"{"MESSAGE":"hello","BIN":[97,10,255],"TAG":["a",[98,0]],"PRIORITY":"6"}"#;
        let e = Entry::parse(line).unwrap();
        assert_eq!(e.message().as_deref(), Some("hello"));
        assert_eq!(e.bytes("BIN"), Some(&b"a\n\xff"[..]));
        assert_eq!(e.values("TAG"), ["a", "b\0"]);
        assert_eq!(e.priority(), Some(6));
        assert!(Entry::parse(r#"{"BIG":null}"#).is_err());
        assert!(Entry::parse("[1]").is_err());
    }
}
