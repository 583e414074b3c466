//! Child processes held by a guard that kills them (their whole process group) on drop,
//! signals, and what `/proc` says about a process: its memory, its group, its sockets.

use std::collections::HashSet;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::capture::Captured;
use crate::wait::{wait_for, wait_until};

/// A running child process in a process group of its own, stdin closed, stdout and stderr
/// captured. Dropping it kills the whole group (SIGKILL) and reaps the child, so neither the
/// program nor anything it forked outlives the test, even one that panicked.
pub struct Held {
    child: Child,
    program: String,
    stdout: Captured,
    stderr: Captured,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Held {
    /// Starts `command` (stdin closed, stdout and stderr captured, in a new process group).
    /// A program that cannot be started is an error naming it.
    pub fn spawn(command: &mut Command) -> io::Result<Held> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {program}: {e}")))?;
        let (stdout, stderr) = (Captured::new(), Captured::new());
        let readers = vec![
            drain(child.stdout.take().expect("piped stdout"), stdout.clone()),
            drain(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Ok(Held { child, program, stdout, stderr, readers, status: None })
    }

    /// The program as it was started.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Its pid (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote to stdout so far.
    pub fn stdout(&self) -> &Captured {
        &self.stdout
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> &Captured {
        &self.stderr
    }

    /// Its exit status once it has exited (reaped here), `None` while it runs.
    pub fn status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.status().is_none()
    }

    /// Waits up to `timeout` for it to exit by itself; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_for(timeout, || self.status())
    }

    /// Sends `signal` (a name: `TERM`, `INT`, `HUP`, `KILL`, `STOP`, `CONT`, `USR1`, `USR2`)
    /// to the process itself (not its group).
    pub fn signal(&self, signal: &str) -> io::Result<()> {
        crate::process::signal(self.pid(), signal)
    }

    /// SIGKILL to the whole group (no chance to clean up or drain), then reaps the child and
    /// waits (up to 5 s) until the rest of the group is gone too.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        kill_group(self.pid(), Signal::KILL);
        self.reap_group()
    }

    /// Reaps the child, then waits up to 5 s until no live member of its group is left: a
    /// grandchild killed with the group dies a moment after the child is reaped.
    fn reap_group(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait()?;
        self.status = Some(status);
        wait_until(Duration::from_secs(5), || group_members(self.pid()).is_empty());
        Ok(status)
    }

    /// SIGTERM to the process, up to `grace` for it to exit, then SIGKILL to the whole group
    /// (which also ends any child it left behind), waiting until the group is gone. Returns
    /// how the process exited.
    pub fn terminate(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        if self.status().is_none() {
            self.signal("TERM")?;
            self.wait_exit(grace);
        }
        kill_group(self.pid(), Signal::KILL);
        self.reap_group()
    }

    /// Waits up to `timeout` until its stdout and stderr are closed (it and every process that
    /// inherited them have exited) and all of it is captured. Whether they were.
    pub fn wait_output(&self, timeout: Duration) -> bool {
        wait_until(timeout, || self.readers.iter().all(JoinHandle::is_finished))
    }

    /// The live (not zombie) processes of its process group.
    pub fn group(&self) -> Vec<u32> {
        group_members(self.pid())
    }

    /// Whether a process of its group listens on TCP `port` (loopback or any address), as
    /// `/proc/net/tcp{,6}` shows: readiness that cannot be fooled by another process that
    /// took the port, and that opens no connection (which some peers would count).
    pub fn listens_tcp(&self, port: u16) -> bool {
        owns_socket(self.pid(), port, &["/proc/net/tcp", "/proc/net/tcp6"], "0A")
    }

    /// Whether a process of its group has UDP `port` bound.
    pub fn binds_udp(&self, port: u16) -> bool {
        owns_socket(self.pid(), port, &["/proc/net/udp", "/proc/net/udp6"], "07")
    }

    /// Waits up to `timeout` until `ready` holds while the process runs (a peer's start-up).
    /// If it exits first or the time passes, it is killed and the error says that it did not
    /// `what` (`"listen on 127.0.0.1:25"`), with everything it printed.
    pub fn wait_ready(
        mut self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut(&Held) -> bool,
    ) -> io::Result<Held> {
        let mut is_ready = false;
        wait_until(timeout, || {
            is_ready = self.is_running() && ready(&self);
            is_ready || !self.is_running()
        });
        if is_ready {
            Ok(self)
        } else {
            Err(self.into_error(&format!("did not {what} within {timeout:?}")))
        }
    }

    /// Kills it and turns it into an error: `{program} {what}`, its exit status and output.
    pub fn into_error(mut self, what: &str) -> io::Error {
        let status = match self.status() {
            Some(status) => format!("it exited: {status}"),
            None => "killed".to_owned(),
        };
        let _ = self.kill();
        self.wait_output(Duration::from_secs(1));
        io::Error::other(format!("{} {what} ({status})\n{}", self.program, self.transcript()))
    }

    /// Its output so far, for error messages.
    pub fn transcript(&self) -> String {
        format!(
            "--- {} stdout ---\n{}\n--- stderr ---\n{}",
            self.program,
            self.stdout.text().trim_end(),
            self.stderr.text().trim_end()
        )
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        kill_group(self.pid(), Signal::KILL);
        let _ = self.reap_group();
        // The readers end when the last holder of the pipes is gone; a process that escaped
        // the group would keep them open, so they are detached rather than joined.
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").field("program", &self.program).field("pid", &self.pid()).finish()
    }
}

/// The running instance of a daemon that tests kill, terminate and start again (rsyslog,
/// journald); `None` while it is down.
#[derive(Debug, Default)]
pub(crate) struct Daemon(Option<Held>);

impl Daemon {
    pub(crate) fn set(&mut self, held: Held) {
        self.0 = Some(held);
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Held::pid)
    }

    /// What the running (or last) instance wrote to stderr.
    pub(crate) fn stderr(&self) -> String {
        self.0.as_ref().map(|d| d.stderr().text()).unwrap_or_default()
    }

    pub(crate) fn kill(&mut self) -> io::Result<()> {
        match self.0.take() {
            Some(mut held) => held.kill().map(drop),
            None => Ok(()),
        }
    }

    pub(crate) fn terminate(&mut self, grace: Duration) -> io::Result<()> {
        match self.0.take() {
            Some(mut held) => held.terminate(grace).map(drop),
            None => Ok(()),
        }
    }
}

/// Names the package to install when the program is missing.
pub(crate) fn missing(e: io::Error, package: &str) -> io::Error {
    if e.kind() == io::ErrorKind::NotFound {
        io::Error::new(e.kind(), format!("{e} (apt-get install {package}; .ci/run installs it)"))
    } else {
        e
    }
}

/// Copies `stream` into `into` on a thread of its own, so a chatty child never blocks on a
/// full pipe.
fn drain(mut stream: impl Read + Send + 'static, mut into: Captured) -> JoinHandle<()> {
    thread::spawn(move || {
        let _ = io::copy(&mut stream, &mut into);
    })
}

/// Signals every process of group `pgid`; a group that is already gone is fine.
fn kill_group(pgid: u32, signal: Signal) {
    if let Some(pid) = pid(pgid) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

fn pid(raw: u32) -> Option<Pid> {
    i32::try_from(raw).ok().and_then(Pid::from_raw)
}

/// Sends `signal` (by name, with or without `SIG`) to process `pid`.
pub fn signal(pid: u32, signal: &str) -> io::Result<()> {
    let name = signal.strip_prefix("SIG").unwrap_or(signal);
    let signal = match name {
        "TERM" => Signal::TERM,
        "INT" => Signal::INT,
        "HUP" => Signal::HUP,
        "KILL" => Signal::KILL,
        "STOP" => Signal::STOP,
        "CONT" => Signal::CONT,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "QUIT" => Signal::QUIT,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown signal {signal:?}"),
            ));
        }
    };
    let target = crate::process::pid(pid)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad pid {pid}")))?;
    rustix::process::kill_process(target, signal)
        .map_err(|e| io::Error::new(e.kind(), format!("kill -{name} {pid}: {e}")))
}

/// Resident-set figures of process `pid` from `/proc/PID/status`, in KiB: (VmRSS, VmHWM).
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

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// One process as `/proc` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: u32,
    /// Its process group.
    pub pgid: u32,
    /// Its state letter (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Its command line, arguments joined by spaces.
    pub cmdline: String,
}

/// Every process on the machine that `/proc` lists right now (processes that vanish while
/// being read are skipped).
pub fn processes() -> Vec<ProcessInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(process_info)
        .collect()
}

fn process_info(pid: u32) -> Option<ProcessInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let pgid = rest.nth(1)?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline).split('\0').collect::<Vec<_>>().join(" ");
    Some(ProcessInfo { pid, pgid, state, cmdline: cmdline.trim_end().to_owned() })
}

/// The live (not zombie) processes of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    processes().into_iter().filter(|p| p.pgid == pgid && p.state != 'Z').map(|p| p.pid).collect()
}

/// Live processes (other than this one) whose command line contains `needle`, such as a
/// peer's temporary directory or port: what a smoke test checks is empty after a drop.
pub fn processes_with_arg(needle: &str) -> Vec<ProcessInfo> {
    let me = std::process::id();
    processes()
        .into_iter()
        .filter(|p| p.pid != me && p.state != 'Z' && p.cmdline.contains(needle))
        .collect()
}

/// Whether a process of group `pgid` holds a socket on local `port` in `state` in one of
/// the `/proc/net` tables.
fn owns_socket(pgid: u32, port: u16, tables: &[&str], state: &str) -> bool {
    let inodes: Vec<String> = tables
        .iter()
        .filter_map(|t| std::fs::read_to_string(t).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    let local_port = cols.get(1)?.rsplit(':').next()?;
                    let matches =
                        u16::from_str_radix(local_port, 16).ok()? == port && *cols.get(3)? == state;
                    matches.then(|| cols.get(9).map(|inode| inode.to_string())).flatten()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let held = group_socket_inodes(pgid);
    inodes.iter().any(|inode| held.contains(inode))
}

/// The socket inodes open in the processes of group `pgid`.
fn group_socket_inodes(pgid: u32) -> HashSet<String> {
    let mut inodes = HashSet::new();
    for pid in group_members(pgid) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) =
                    target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']'))
                {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    inodes
}

/// What a finished program run produced.
#[derive(Debug)]
pub struct Finished {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to stderr (lossy UTF-8).
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Finished {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Both streams and the exit status, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}, {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `command` to completion (stdin closed, output captured), killing it and its group if
/// it outlives `limit`: then the error says so, with what it printed.
pub fn run(command: &mut Command, limit: Duration) -> io::Result<Finished> {
    let started = Instant::now();
    let mut held = Held::spawn(command)?;
    let Some(status) = held.wait_exit(limit) else {
        held.kill()?;
        held.wait_output(Duration::from_secs(1));
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{} still running after {limit:?}: killed\n{}",
                held.program,
                held.transcript()
            ),
        ));
    };
    let elapsed = started.elapsed();
    // Its own pipes close when it exits, unless it left a child holding them.
    held.wait_output(Duration::from_secs(5));
    Ok(Finished { status, stdout: held.stdout.text(), stderr: held.stderr.text(), elapsed })
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, UdpSocket};

    use super::*;

    #[test]
    fn a_held_group_dies_on_drop_children_included() {
        let held = Held::spawn(Command::new("sh").args(["-c", "sleep 300 & sleep 300"])).unwrap();
        let pgid = held.pid();
        // `sh` and the background `sleep`; the last `sleep` may replace `sh` (exec).
        assert!(wait_until(Duration::from_secs(10), || group_members(pgid).len() >= 2));
        drop(held);
        assert!(wait_until(Duration::from_secs(10), || group_members(pgid).is_empty()));
    }

    #[test]
    fn terminate_kills_what_ignores_sigterm() {
        let mut held =
            Held::spawn(Command::new("sh").args(["-c", "trap '' TERM; sleep 300"])).unwrap();
        assert!(wait_until(Duration::from_secs(10), || !held.group().is_empty()));
        let status = held.terminate(Duration::from_millis(100)).unwrap();
        assert!(!status.success());
        assert!(held.group().is_empty());
    }

    #[test]
    fn run_captures_output_and_times_out() {
        let done = run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]), {
            Duration::from_secs(10)
        })
        .unwrap();
        assert_eq!((done.code(), done.stdout.as_str(), done.stderr.as_str()), {
            (Some(3), "out\n", "err\n")
        });
        let err = run(Command::new("sleep").arg("300"), Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let err = run(&mut Command::new("/nonexistent/program"), Duration::from_secs(1));
        let err = err.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("/nonexistent/program"), "{err}");
    }

    #[test]
    fn wait_ready_reports_an_early_exit_with_what_it_printed() {
        let held = Held::spawn(Command::new("sh").args(["-c", "echo broken >&2; exit 4"])).unwrap();
        let err = held.wait_ready(Duration::from_secs(10), "listen", |_| false).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("sh did not listen within 10s (it exited: exit status: 4)"),
            "{text}"
        );
        assert!(text.contains("broken"), "{text}");
        let held = Held::spawn(Command::new("sleep").arg("300")).unwrap();
        let pid = held.pid();
        let err = held.wait_ready(Duration::from_millis(20), "listen", |_| false).unwrap_err();
        assert!(err.to_string().contains("(killed)"), "{err}");
        assert!(group_members(pid).is_empty());
    }

    #[test]
    fn a_missing_program_names_its_package() {
        let e =
            missing(io::Error::new(io::ErrorKind::NotFound, "cannot start rsyslogd"), "rsyslog");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("apt-get install rsyslog"), "{e}");
        let other = missing(io::Error::other("port taken"), "rsyslog");
        assert_eq!(other.to_string(), "port taken");
    }

    #[test]
    fn signals_by_name_and_reads_memory() {
        let mut held = Held::spawn(Command::new("sleep").arg("300")).unwrap();
        let (rss, peak) = memory_kib(held.pid()).unwrap();
        assert!(rss > 0 && peak >= rss);
        assert!(signal(held.pid(), "BOGUS").is_err());
        held.signal("SIGTERM").unwrap();
        assert!(held.wait_exit(Duration::from_secs(10)).is_some());
        assert!(!held.is_running());
    }

    #[test]
    fn socket_ownership_is_read_from_proc() {
        let me = Held::spawn(Command::new("sleep").arg("300")).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Sockets of this test process are not the child's.
        assert!(!me.listens_tcp(tcp.local_addr().unwrap().port()));
        assert!(!me.binds_udp(udp.local_addr().unwrap().port()));
        assert!(owns_socket(
            process_info(std::process::id()).unwrap().pgid,
            tcp.local_addr().unwrap().port(),
            &["/proc/net/tcp"],
            "0A"
        ));
    }
}
