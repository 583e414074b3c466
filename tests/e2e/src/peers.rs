//! Third-party peers for the peer suite: Postfix's `smtp-sink` and a foreground `rsyslogd`,
//! each started on loopback in its own temporary directory and killed when its guard drops.
//!
//! A peer that is not installed is an error from `start`, never a silent skip: the tests that
//! use these are `#[ignore = "needs ..."]` and CI runs them where the peers are installed.

use std::io::{self, BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a peer may take to start accepting connections before `start` gives up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A loopback port that was free a moment ago (bound to port 0, then released).
///
/// Third-party peers cannot be handed an already-bound socket, so there is a small race with
/// other processes; `start` functions retry on a port that turned out to be taken.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes; returns
/// whether it held. Tests wait with this instead of sleeping a fixed time.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether something accepts TCP connections at `addr` right now.
pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Sends `signal` (a name such as `TERM`) to process `pid` with `kill(1)`: the workspace
/// forbids `unsafe`, so there is no direct `kill(2)`.
pub fn signal(pid: u32, signal: &str) -> io::Result<()> {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -{signal} {pid}: {status}")))
    }
}

/// Resident-set figures of a process from `/proc/PID/status`, in KiB: (VmRSS, VmHWM).
pub fn memory_kib(pid: u32) -> io::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| io::Error::other(format!("no {name} in /proc/{pid}/status")))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

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

/// Postfix's `smtp-sink` on a free loopback port, killed on drop.
///
/// Its fault flags are deterministic (every occurrence): `-Q MAIL` replies 421 and
/// disconnects, `-q MAIL` disconnects without a reply, `-r RCPT` replies 4xx, `-f DATA` 5xx.
pub struct SmtpSink {
    child: Child,
    addr: SocketAddr,
    counters: Arc<Mutex<SinkCounters>>,
    /// What the readiness probe added; smtp-sink's counters are cumulative.
    baseline: SinkCounters,
}

impl SmtpSink {
    /// Path of the tool; Debian's `postfix` package installs it here.
    pub const PROGRAM: &'static str = "/usr/sbin/smtp-sink";

    /// Starts `smtp-sink -u nobody -c [fault_args...] 127.0.0.1:PORT 1024` and waits until it
    /// accepts connections.
    pub fn start(fault_args: &[&str]) -> io::Result<Self> {
        let mut last_error = None;
        for _ in 0..5 {
            let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            // `-u` is required when running as root, and fails when not.
            let user: &[&str] = if is_root() { &["-u", "nobody"] } else { &[] };
            let mut child = Command::new(Self::PROGRAM)
                .args(user)
                .arg("-c")
                .args(fault_args)
                .arg(addr.to_string())
                .arg("1024")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", Self::PROGRAM)))?;
            let counters = Arc::new(Mutex::new(SinkCounters::default()));
            let stdout = child.stdout.take().expect("piped stdout");
            let shared = Arc::clone(&counters);
            thread::spawn(move || read_sink_counters(stdout, &shared));
            let started = wait_until(START_TIMEOUT, || {
                accepts(addr) || matches!(child.try_wait(), Ok(Some(_)))
            });
            if started && child.try_wait()?.is_none() {
                // The readiness probe was one session; report figures from after it.
                wait_until(Duration::from_secs(1), || counters.lock().unwrap().sessions >= 1);
                let baseline = *counters.lock().unwrap();
                return Ok(SmtpSink { child, addr, counters, baseline });
            }
            let _ = child.kill();
            let output = child.wait_with_output()?;
            last_error = Some(io::Error::other(format!(
                "smtp-sink did not start on {addr}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// The loopback address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The latest counters it printed (sessions are counted when they end).
    pub fn counters(&self) -> SinkCounters {
        let now = *self.counters.lock().unwrap();
        SinkCounters {
            sessions: now.sessions - self.baseline.sessions,
            quits: now.quits - self.baseline.quits,
            messages: now.messages - self.baseline.messages,
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `sess=N quit=N mesg=N` records, which `smtp-sink -c` separates with CR.
fn read_sink_counters(stdout: impl Read, counters: &Mutex<SinkCounters>) {
    let mut reader = BufReader::new(stdout);
    let mut record = Vec::new();
    while let Ok(n) = reader.read_until(b'\r', &mut record) {
        if n == 0 {
            return;
        }
        let text = String::from_utf8_lossy(&record);
        let mut parsed = SinkCounters::default();
        let mut fields = 0;
        for part in text.split_whitespace() {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let Ok(value) = value.parse::<u64>() else { continue };
            fields += 1;
            match key {
                "sess" => parsed.sessions = value,
                "quit" => parsed.quits = value,
                "mesg" => parsed.messages = value,
                _ => fields -= 1,
            }
        }
        if fields == 3 {
            *counters.lock().unwrap() = parsed;
        }
        record.clear();
    }
}

/// A foreground `rsyslogd` with its own configuration, listening only on loopback: a unix
/// datagram socket, UDP and TCP, all written raw (`%rawmsg%`, one message per line) to one
/// file. It can be killed and restarted on the same socket path and ports.
pub struct Rsyslog {
    dir: tempfile::TempDir,
    udp_port: u16,
    tcp_port: u16,
    child: Option<Child>,
    starts: u32,
}

impl Rsyslog {
    /// Writes the configuration, checks it with `rsyslogd -N1` and starts the daemon.
    pub fn start() -> io::Result<Self> {
        // Ports picked here can be taken by another process before rsyslogd binds them.
        let mut last_error = None;
        for _ in 0..3 {
            match Self::start_once() {
                Ok(rsyslog) => return Ok(rsyslog),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one try"))
    }

    fn start_once() -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("e2e-rsyslog-").tempdir()?;
        let mut rsyslog =
            Rsyslog { dir, udp_port: free_port(), tcp_port: free_port(), child: None, starts: 0 };
        rsyslog.write_config()?;
        let check = Command::new("rsyslogd")
            .args(["-N1", "-f"])
            .arg(rsyslog.config_path())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("rsyslogd: {e}")))?;
        if !check.status.success() {
            return Err(io::Error::other(format!(
                "rsyslogd -N1 rejected the config: {}",
                String::from_utf8_lossy(&check.stderr)
            )));
        }
        rsyslog.restart()?;
        Ok(rsyslog)
    }

    fn write_config(&self) -> io::Result<()> {
        let dir = self.dir.path().display();
        let config = format!(
            r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{dir}/log.sock" CreatePath="on")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
template(name="raw" type="string" string="%rawmsg%\n")
action(type="omfile" file="{dir}/out.log" template="raw")
"#,
            udp = self.udp_port,
            tcp = self.tcp_port,
        );
        std::fs::write(self.config_path(), config)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("rsyslog.conf")
    }

    /// The unix datagram socket it reads (`unix:` target).
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("log.sock")
    }

    /// The UDP address it reads.
    pub fn udp_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.udp_port).into()
    }

    /// The TCP address it reads (octet-counted or LF-framed).
    pub fn tcp_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.tcp_port).into()
    }

    /// The file every received message is appended to.
    pub fn output_path(&self) -> PathBuf {
        self.dir.path().join("out.log")
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything written to the output file so far (lossy UTF-8).
    pub fn output(&self) -> String {
        std::fs::read(self.output_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for `condition` over the output file; omfile writes in batches.
    pub fn wait_for_output(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&str) -> bool,
    ) -> bool {
        wait_until(timeout, || condition(&self.output()))
    }

    /// Kills the daemon with SIGKILL (no chance to drain) and waits for it to exit.
    pub fn kill(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops the daemon with SIGTERM (it closes its inputs and flushes its queue) and waits.
    pub fn terminate(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM")?;
            if !wait_until(Duration::from_secs(10), || matches!(child.try_wait(), Ok(Some(_)))) {
                child.kill()?;
            }
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the daemon (again) with the same configuration, socket path and ports, and waits
    /// until all three inputs are open. Kills a running instance first.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill()?;
        // A stale socket file from a killed daemon would make "the socket exists" meaningless.
        let _ = std::fs::remove_file(self.socket_path());
        self.starts += 1;
        let pid_file = self.dir.path().join(format!("rsyslogd-{}.pid", self.starts));
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(self.config_path())
            .arg("-i")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("rsyslogd: {e}")))?;
        self.child = Some(child);
        let socket = self.socket_path();
        let tcp = self.tcp_addr();
        let ready = wait_until(START_TIMEOUT, || socket_exists(&socket) && accepts(tcp));
        if !ready {
            self.kill()?;
            return Err(io::Error::other(format!(
                "rsyslogd did not open {} and {tcp} within {START_TIMEOUT:?}",
                socket.display()
            )));
        }
        Ok(())
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Whether this process runs as root (effective uid 0), from `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .is_some_and(|euid| euid == "0")
    })
}

fn socket_exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_smtp_sink_counter_records() {
        let counters = Mutex::new(SinkCounters::default());
        read_sink_counters(
            &b"sess=0 quit=0 mesg=1\rsess=3 quit=2 mesg=7\rgarbage\r"[..],
            &counters,
        );
        assert_eq!(*counters.lock().unwrap(), SinkCounters { sessions: 3, quits: 2, messages: 7 });
    }
}
