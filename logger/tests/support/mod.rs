//! Shared test helpers: a capturing writer, polling with a deadline, and a foreground
//! `rsyslogd` harness (own config and temp dir, loopback only, killed on drop).

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `Write` whose clones share one buffer: hand one to a logger as its fallback, read the
/// other.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A loopback port that was free a moment ago (TCP and UDP checked).
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The rsyslog template: the parsed header fields rsyslog saw, then the raw message, so tests
/// can check both that lines arrive intact and that rsyslog parsed them.
pub const TEMPLATE_FIELDS: &str = "%protocol-version%|%syslogfacility-text%|%syslogseverity%|%hostname%|%app-name%|%procid%|%msg%|%rawmsg%";

/// A foreground `rsyslogd` with its own configuration in a temp dir: a unix datagram socket,
/// UDP and TCP on loopback, every message written as one line of [`TEMPLATE_FIELDS`] to one
/// file. It can be killed and started again on the same socket path and ports.
pub struct Rsyslog {
    dir: tempfile::TempDir,
    udp_port: u16,
    tcp_port: u16,
    child: Option<Child>,
    starts: u32,
}

impl Rsyslog {
    /// Writes the config, checks it with `rsyslogd -N1`, starts the daemon and waits until its
    /// inputs are open.
    pub fn start() -> Rsyslog {
        let dir = tempfile::Builder::new().prefix("logger-rsyslog-").tempdir().unwrap();
        let (udp_port, tcp_port) = (free_port(), free_port());
        let mut r = Rsyslog { dir, udp_port, tcp_port, child: None, starts: 0 };
        let d = r.dir.path().display();
        // imuxsock: no special local parser (so RFC 5424 is parsed as such), no rate limit.
        let config = format!(
            r#"global(workDirectory="{d}" maxMessageSize="8k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{d}/log.sock" CreatePath="on" UseSpecialParser="off" ParseHostname="on" RateLimit.Interval="0")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp_port}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
template(name="fields" type="string" string="{TEMPLATE_FIELDS}\n")
action(type="omfile" file="{d}/out.log" template="fields" flushOnTXEnd="on" asyncWriting="off")
"#
        );
        std::fs::write(r.config_path(), config).unwrap();
        let check = Command::new("rsyslogd")
            .args(["-N1", "-f"])
            .arg(r.config_path())
            .output()
            .expect("rsyslogd is not installed (apt-get install rsyslog)");
        assert!(
            check.status.success(),
            "rsyslogd -N1 rejected the config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        r.restart();
        r
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("rsyslog.conf")
    }

    /// The unix datagram socket it reads.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("log.sock")
    }

    /// Its UDP address.
    pub fn udp_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.udp_port).into()
    }

    /// Its TCP address.
    pub fn tcp_addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.tcp_port).into()
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read(self.dir.path().join("out.log"))
            .map(|b| String::from_utf8_lossy(&b).lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Waits (omfile writes in batches) until some line contains `needle`; returns it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let mut found = None;
        wait_until(timeout, || {
            found = self.lines().into_iter().find(|l| l.contains(needle));
            found.is_some()
        });
        found
    }

    /// Kills the daemon and waits for it to exit; its socket file stays behind, as after a
    /// crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the daemon on the same socket path and ports and waits until the unix
    /// socket exists and TCP accepts.
    pub fn restart(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(self.socket_path());
        self.starts += 1;
        let pid_file = self.dir.path().join(format!("rsyslogd-{}.pid", self.starts));
        let child = Command::new("rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(self.config_path())
            .arg("-i")
            .arg(pid_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        let (socket, tcp) = (self.socket_path(), self.tcp_addr());
        let ready = wait_until(Duration::from_secs(10), || {
            exists(&socket) && TcpStream::connect(tcp).is_ok()
        });
        assert!(ready, "rsyslogd did not open its inputs within 10 s");
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.kill();
    }
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// The parts of an RFC 5424 message this crate writes: `<PRI>1 TS HOST APP PID - - MSG`.
#[derive(Debug, PartialEq, Eq)]
pub struct Rfc5424 {
    pub pri: u32,
    pub timestamp: String,
    pub hostname: String,
    pub app: String,
    pub pid: u32,
    pub msg: String,
}

/// Parses `<PRI>1 TS HOST APP PID - - MSG` strictly; `None` if anything is off.
pub fn parse_5424(s: &str) -> Option<Rfc5424> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (\S+) (\S+) (\d+) - - (.*)$",
        )
        .unwrap()
    });
    let c = RE.captures(s)?;
    Some(Rfc5424 {
        pri: c[1].parse().ok()?,
        timestamp: c[2].to_owned(),
        hostname: c[3].to_owned(),
        app: c[4].to_owned(),
        pid: c[5].parse().ok()?,
        msg: c[6].to_owned(),
    })
}
