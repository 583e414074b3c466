//! A real `rsyslogd` in the foreground, in its stock configuration, with private inputs:
//! two unix datagram sockets, UDP, TCP and TLS (`gtls`) on loopback. Every record it accepts
//! is written as one JSON object per line with the properties rsyslog parsed, and read back
//! as [`Record`]s, so tests assert on what rsyslog understood, not on the bytes they sent.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::certs::{CertFiles, TestCa};
use crate::ports::{loopback, with_free_ports};
use crate::process::{Daemon, Held, missing};
use crate::wait::{wait_for_matching, wait_until};

/// How long the daemon may take to open all its inputs.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long SIGTERM may take (rsyslog drains its queue first) before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// The input a record arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Input {
    /// [`Rsyslog::socket_path`]: imuxsock as stock, with its special local parser.
    Unix,
    /// [`Rsyslog::socket_path_no_special_parser`]: imuxsock with `UseSpecialParser="off"`.
    UnixNoSpecialParser,
    /// [`Rsyslog::udp_addr`].
    Udp,
    /// [`Rsyslog::tcp_addr`].
    Tcp,
    /// [`Rsyslog::tls_addr`].
    Tls,
}

/// One record as rsyslog parsed it (its message properties). rsyslog writes `-` for an
/// absent RFC 5424 field; that is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where it arrived.
    pub input: Input,
    /// `1` for RFC 5424, `0` for RFC 3164 (rsyslog's `protocol-version`).
    pub protocol_version: String,
    /// Severity, 0 (emerg) to 7 (debug).
    pub severity: u8,
    /// Facility number (16 is local0).
    pub facility: u8,
    /// The timestamp rsyslog read from the message (RFC 3339).
    pub timestamp: String,
    /// The HOSTNAME rsyslog took (from the message, or its own for local messages).
    pub hostname: String,
    /// APP-NAME (for RFC 3164, the tag before `[pid]`).
    pub app_name: String,
    /// PROCID.
    pub procid: String,
    /// MSGID.
    pub msgid: String,
    /// STRUCTURED-DATA.
    pub structured_data: String,
    /// The RFC 3164 tag (`app[pid]:`).
    pub tag: String,
    /// MSG. For RFC 3164 rsyslog keeps the space after the tag: `" text"`.
    pub msg: String,
    /// The message as received, after rsyslog's stock escaping of control characters
    /// (`#012` for LF).
    pub raw: String,
}

/// The properties as the template writes them: all strings.
#[derive(Deserialize)]
struct Written {
    input: Input,
    protocol_version: String,
    severity: String,
    facility: String,
    timestamp: String,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    structured_data: String,
    tag: String,
    msg: String,
    raw: String,
}

impl Record {
    /// Parses one line of the output file.
    pub fn parse(line: &str) -> io::Result<Record> {
        let w: Written = serde_json::from_str(line)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e}: {line}")))?;
        let number = |name: &str, value: &str| {
            value.parse::<u8>().map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{name} {value:?}: {e}: {line}"))
            })
        };
        Ok(Record {
            input: w.input,
            protocol_version: w.protocol_version,
            severity: number("severity", &w.severity)?,
            facility: number("facility", &w.facility)?,
            timestamp: w.timestamp,
            hostname: w.hostname,
            app_name: w.app_name,
            procid: w.procid,
            msgid: w.msgid,
            structured_data: w.structured_data,
            tag: w.tag,
            msg: w.msg,
            raw: w.raw,
        })
    }
}

/// A foreground `rsyslogd` with its own configuration in a temporary directory. It can be
/// killed, terminated and started again on the same socket paths and ports; the output file
/// keeps what every instance wrote. Dropping it kills the daemon.
pub struct Rsyslog {
    dir: tempfile::TempDir,
    udp: u16,
    tcp: u16,
    tls: Option<u16>,
    ca: TestCa,
    daemon: Daemon,
    starts: u32,
    last_start: Duration,
}

impl Rsyslog {
    /// Writes the configuration and a test CA, checks the configuration with `rsyslogd -N1`,
    /// starts the daemon and waits until every input is open (and is its own: a port another
    /// process took meanwhile means a fresh start on other ports).
    ///
    /// The TLS input costs about 0.7 s of CPU per (re)start (rsyslog's `gtls` driver
    /// generates Diffie-Hellman parameters; 1-5 s on a loaded 2-core machine): a test that
    /// does not use TLS starts [`Rsyslog::start_without_tls`] instead.
    pub fn start() -> io::Result<Rsyslog> {
        with_free_ports(3, |ports| Self::start_on(ports[0], ports[1], Some(ports[2])))
    }

    /// [`Rsyslog::start`] without the TLS input (about 0.1 s instead of 1 s); then
    /// [`Rsyslog::tls_addr`] panics.
    pub fn start_without_tls() -> io::Result<Rsyslog> {
        with_free_ports(2, |ports| Self::start_on(ports[0], ports[1], None))
    }

    fn start_on(udp: u16, tcp: u16, tls: Option<u16>) -> io::Result<Rsyslog> {
        let dir = tempfile::Builder::new().prefix("rsyslog-").tempdir()?;
        let ca = TestCa::new(&["localhost", "127.0.0.1"]);
        let files = ca.write_to(dir.path())?;
        std::fs::write(dir.path().join("rsyslog.conf"), config(dir.path(), &files, udp, tcp, tls))?;
        let mut rsyslog = Rsyslog {
            dir,
            udp,
            tcp,
            tls,
            ca,
            daemon: Daemon::default(),
            starts: 0,
            last_start: Duration::ZERO,
        };
        let check = crate::process::run(
            Command::new("rsyslogd").arg("-N1").arg("-f").arg(rsyslog.config_path()),
            START_TIMEOUT,
        )
        .map_err(|e| missing(e, "rsyslog"))?;
        if !check.success() {
            return Err(io::Error::other(format!(
                "rsyslogd -N1 rejected the configuration:\n{}",
                check.transcript()
            )));
        }
        rsyslog.restart()?;
        Ok(rsyslog)
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("rsyslog.conf")
    }

    /// The temporary directory: configuration, sockets, certificates, output.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The unix datagram socket read by a stock imuxsock input (as `/dev/log` is read, with
    /// its special local parser: RFC 3164 parses right, RFC 5424 does not).
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("log.sock")
    }

    /// A second unix socket whose input has `UseSpecialParser="off"`: messages are parsed as
    /// network messages are, RFC 5424 included.
    pub fn socket_path_no_special_parser(&self) -> PathBuf {
        self.dir.path().join("log-no-special-parser.sock")
    }

    /// Its UDP input.
    pub fn udp_addr(&self) -> SocketAddr {
        loopback(self.udp)
    }

    /// Its TCP input (octet-counted or LF-framed, as imtcp detects).
    pub fn tcp_addr(&self) -> SocketAddr {
        loopback(self.tcp)
    }

    /// Its TLS input (`gtls` driver, RFC 5425 framing), presenting a certificate for
    /// `localhost` and `127.0.0.1` signed by [`Rsyslog::ca_pem`]. No client certificate is
    /// asked for.
    pub fn tls_addr(&self) -> SocketAddr {
        loopback(self.tls.expect("this rsyslog was started without TLS: use Rsyslog::start()"))
    }

    /// The PEM of the CA that signed the TLS input's certificate: what a client trusts.
    pub fn ca_pem(&self) -> &str {
        &self.ca.ca_pem
    }

    /// The CA certificate as a file.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The file the records are appended to, one JSON object per line.
    pub fn output_path(&self) -> PathBuf {
        self.dir.path().join("out.json")
    }

    /// The daemon's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// How long the last (re)start took, until every input was open.
    pub fn start_time(&self) -> Duration {
        self.last_start
    }

    /// What the running (or last) daemon wrote to stderr: its own complaints, such as
    /// `received oversize message`.
    pub fn diagnostics(&self) -> String {
        self.daemon.stderr()
    }

    /// Every complete record written so far, in order. Panics on a line that is not a
    /// record: that is a harness bug, not a test result.
    pub fn records(&self) -> Vec<Record> {
        let bytes = std::fs::read(self.output_path()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        // omfile may have flushed part of the last line: only complete lines count.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|line| Record::parse(line).unwrap_or_else(|e| panic!("rsyslog output: {e}")))
            .collect()
    }

    /// Waits (omfile writes in batches) up to `timeout` for a record that satisfies `pred`.
    pub fn wait_for(&self, timeout: Duration, pred: impl FnMut(&Record) -> bool) -> Option<Record> {
        wait_for_matching(timeout, 1, || self.records(), pred).into_iter().next()
    }

    /// Waits up to `timeout` until `n` records satisfy `pred`; returns those there are then.
    pub fn wait_for_count(
        &self,
        timeout: Duration,
        n: usize,
        pred: impl FnMut(&Record) -> bool,
    ) -> Vec<Record> {
        wait_for_matching(timeout, n, || self.records(), pred)
    }

    /// The raw messages received so far, one per line ([`Record::raw`]).
    pub fn output(&self) -> String {
        self.records().into_iter().map(|r| r.raw + "\n").collect()
    }

    /// Waits up to `timeout` for `condition` over [`Rsyslog::output`].
    pub fn wait_for_output(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&str) -> bool,
    ) -> bool {
        wait_until(timeout, || condition(&self.output()))
    }

    /// Kills the daemon with SIGKILL (no chance to drain its queue) and reaps it. Its socket
    /// files stay behind, as after a crash.
    pub fn kill(&mut self) -> io::Result<()> {
        self.daemon.kill()
    }

    /// Stops the daemon with SIGTERM (it closes its inputs and drains its queue), SIGKILL
    /// after 10 s.
    pub fn terminate(&mut self) -> io::Result<()> {
        self.daemon.terminate(TERM_GRACE)
    }

    /// Starts the daemon (again) with the same configuration, socket paths and ports, killing
    /// a running one first, and waits until every input is open.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill()?;
        // Stale socket files from a killed daemon would make "the socket exists" meaningless.
        for socket in [self.socket_path(), self.socket_path_no_special_parser()] {
            let _ = std::fs::remove_file(socket);
        }
        self.starts += 1;
        let started = Instant::now();
        let pid_file = self.dir.path().join(format!("rsyslogd-{}.pid", self.starts));
        let daemon = Held::spawn(
            Command::new("rsyslogd")
                .arg("-n")
                .arg("-f")
                .arg(self.config_path())
                .arg("-i")
                .arg(pid_file),
        )
        .map_err(|e| missing(e, "rsyslog"))?;
        let sockets = [self.socket_path(), self.socket_path_no_special_parser()];
        let (udp, tcp, tls) = (self.udp, self.tcp, self.tls);
        // rsyslog keeps running without an input whose port is taken: stop waiting then.
        let taken = |d: &Held| d.stderr().text().contains("already in use");
        let what = format!(
            "open its inputs (unix sockets in {}, udp {udp}, tcp {tcp}, tls {tls:?})",
            self.dir.path().display()
        );
        let daemon = daemon.wait_ready(START_TIMEOUT, &what, |d| {
            taken(d)
                || (sockets.iter().all(|s| s.symlink_metadata().is_ok())
                    && d.listens_tcp(tcp)
                    && tls.is_none_or(|tls| d.listens_tcp(tls))
                    && d.binds_udp(udp))
        })?;
        if taken(&daemon) {
            return Err(daemon.into_error("found one of its ports taken"));
        }
        self.last_start = started.elapsed();
        self.daemon.set(daemon);
        Ok(())
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// The configuration: private inputs, one output file, and nothing else.
///
/// Stock limits on purpose: no `maxMessageSize` (the default, 8,096 bytes, counts the whole
/// frame), no `discardTruncatedMsg`, no rate limits, parsers or escaping changed. A harness
/// that raised `maxMessageSize` to 64k once hid a log-forgery hole that a stock rsyslog
/// exposes (over TCP, the bytes past the limit are parsed as a second, forged record): the
/// tests must see what a production rsyslog does. Each input only tags its records with its
/// name (a ruleset setting `$.input`) before the one shared output.
fn config(dir: &Path, certs: &CertFiles, udp: u16, tcp: u16, tls: Option<u16>) -> String {
    let d = dir.display();
    let (ca, cert, key) = (certs.ca.display(), certs.cert.display(), certs.key.display());
    let tls = match tls {
        Some(port) => format!(
            r#"input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
      streamDriver.CAFile="{ca}" streamDriver.CertFile="{cert}" streamDriver.KeyFile="{key}")
"#
        ),
        None => String::new(),
    };
    format!(
        r#"global(workDirectory="{d}")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")

template(name="record" type="list" option.jsonf="on") {{
  property(outname="input" name="$.input" format="jsonf")
  property(outname="protocol_version" name="protocol-version" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="tag" name="syslogtag" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="raw" name="rawmsg" format="jsonf")
}}
ruleset(name="write") {{ action(type="omfile" file="{d}/out.json" template="record") }}
ruleset(name="unix") {{ set $.input = "unix"; call write }}
ruleset(name="unix-no-special-parser") {{ set $.input = "unix-no-special-parser"; call write }}
ruleset(name="udp") {{ set $.input = "udp"; call write }}
ruleset(name="tcp") {{ set $.input = "tcp"; call write }}
ruleset(name="tls") {{ set $.input = "tls"; call write }}

input(type="imuxsock" Socket="{d}/log.sock" CreatePath="on" ruleset="unix")
input(type="imuxsock" Socket="{d}/log-no-special-parser.sock" CreatePath="on"
      UseSpecialParser="off" ruleset="unix-no-special-parser")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="tcp")
{tls}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_written_record() {
        let line = r#"{"input":"unix-no-special-parser", "protocol_version":"1", "severity":"6", "facility":"16", "timestamp":"2026-01-01T00:00:00Z", "hostname":"h", "app_name":"app", "procid":"42", "msgid":"-", "structured_data":"-", "tag":"app[42]", "msg":"a \"b\" #012c", "raw":"<134>1 2026-01-01T00:00:00Z h app 42 - - a \"b\" #012c"}"#;
        let r = Record::parse(line).unwrap();
        assert_eq!(r.input, Input::UnixNoSpecialParser);
        assert_eq!((r.severity, r.facility), (6, 16));
        assert_eq!(
            (r.hostname.as_str(), r.app_name.as_str(), r.procid.as_str()),
            ("h", "app", "42")
        );
        assert_eq!(r.msg, "a \"b\" #012c");
        assert!(Record::parse("{}").is_err());
        assert!(Record::parse(&line.replace(r#""6""#, r#""x""#)).is_err());
    }
}
