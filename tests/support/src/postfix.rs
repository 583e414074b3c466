//! A private Postfix MTA (master, smtpd, cleanup, qmgr, ...) on a loopback port, with its own
//! configuration, queue and log in a temporary directory, delivering to one maildir or to
//! `discard:`, and readers for what it logged and delivered.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::ports::{loopback, with_free_ports};
use crate::process::{Held, is_root, missing};
use crate::wait::{wait_for_matching, wait_until};

/// Recipients in this domain are delivered to the one maildir ([`Postfix::maildir`]).
pub const MAILDIR_DOMAIN: &str = "maildir.test";
/// Every other recipient (this domain, say) goes to `discard:`: accepted, logged as sent,
/// stored nowhere, and nothing ever leaves the machine.
pub const DISCARD_DOMAIN: &str = "discard.test";

/// How long master may take to listen and log that it started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Knobs for a [`Postfix`] instance; everything not set here is Postfix's stock default.
#[derive(Debug, Clone, Default)]
pub struct PostfixBuilder {
    overrides: Vec<(String, String)>,
    anvil: bool,
}

impl PostfixBuilder {
    /// `smtpd_timeout`: how long smtpd waits for a client command before it answers
    /// `421 4.4.2 <host> Error: timeout exceeded` and closes (stock: 300 s).
    pub fn smtpd_timeout(self, timeout: Duration) -> Self {
        self.main_cf("smtpd_timeout", &format!("{}s", timeout.as_secs().max(1)))
    }

    /// `smtpd_client_connection_count_limit`: simultaneous connections per client; over it,
    /// the greeting is `421 4.7.0 <host> Error: too many connections from ...`.
    pub fn connection_count_limit(self, n: u32) -> Self {
        self.anvil_limit("smtpd_client_connection_count_limit", n)
    }

    /// `smtpd_client_connection_rate_limit`: connections per client per
    /// `anvil_rate_time_unit` (stock: 60 s).
    pub fn connection_rate_limit(self, n: u32) -> Self {
        self.anvil_limit("smtpd_client_connection_rate_limit", n)
    }

    /// `smtpd_client_message_rate_limit`: messages per client per time unit; over it, MAIL
    /// gets `450 4.7.1 ... too much mail`.
    pub fn message_rate_limit(self, n: u32) -> Self {
        self.anvil_limit("smtpd_client_message_rate_limit", n)
    }

    /// Any other `main.cf` parameter. Never use it to raise a limit so that a test passes.
    pub fn main_cf(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_owned(), value.to_owned()));
        self
    }

    fn anvil_limit(mut self, key: &str, n: u32) -> Self {
        // Anvil exempts $mynetworks (127.0.0.1 among them) by default: with an empty
        // exception list the limit applies to the tests' own connections.
        self.anvil = true;
        self.main_cf(key, &n.to_string())
    }

    /// Starts the instance on a free loopback port (see [`Postfix::start`]).
    pub fn start(self) -> io::Result<Postfix> {
        with_free_ports(1, |ports| Postfix::start_on(&self, ports[0]))
    }
}

/// One delivery (one recipient of one message) from the log: a `status=` line of the
/// discard or virtual agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The queue id (`3F2A1B2C3D`).
    pub queue_id: String,
    /// The recipient, without angle brackets.
    pub to: String,
    /// `virtual` for the maildir, `none` for discard.
    pub relay: String,
    /// `sent`, `deferred`, `bounced`, ...
    pub status: String,
    /// The message's Message-ID (from cleanup's log line for the same queue id), if any.
    pub message_id: Option<String>,
}

/// One count of smtpd's `disconnect from ...` line: `rcpt=2/3` is 2 accepted of 3 sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Commands that succeeded.
    pub ok: u32,
    /// Commands received.
    pub total: u32,
}

/// One smtpd session as its `disconnect` line sums it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `localhost[127.0.0.1]`.
    pub client: String,
    /// Per command (`ehlo`, `mail`, `rcpt`, `data`, `quit`, `commands`, ...).
    pub counts: BTreeMap<String, Count>,
}

impl Session {
    /// How many `command`s succeeded in this session (0 when none was sent).
    pub fn ok(&self, command: &str) -> u32 {
        self.counts.get(command).map_or(0, |c| c.ok)
    }
}

/// A private Postfix instance, stopped (its whole process group killed) on drop.
///
/// Configuration: Debian's shipped `compatibility_level = 3.6`, the instance's own
/// directories, `myhostname = postfix.test`, smtpd on `127.0.0.1:PORT`, no local delivery,
/// [`MAILDIR_DOMAIN`] to one maildir (virtual(8)), everything else to `discard:`. Every
/// limit (`message_size_limit`, `smtpd_timeout`, anvil, ...) is Postfix's default unless a
/// [`PostfixBuilder`] knob sets it.
pub struct Postfix {
    dir: tempfile::TempDir,
    port: u16,
    master: Held,
    started_in: Duration,
}

impl Postfix {
    /// Knobs first: `Postfix::builder().smtpd_timeout(Duration::from_secs(2)).start()`.
    pub fn builder() -> PostfixBuilder {
        PostfixBuilder::default()
    }

    /// Starts a stock instance on a free loopback port: writes main.cf and master.cf,
    /// creates the queue, runs `master -c DIR -d` as a held child (in the foreground and in
    /// our process group, so it dies with its guard) and waits until smtpd's port is master's
    /// and master has logged that it started. Needs root, as Postfix does.
    pub fn start() -> io::Result<Postfix> {
        Postfix::builder().start()
    }

    fn start_on(builder: &PostfixBuilder, port: u16) -> io::Result<Postfix> {
        if !is_root() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "a private Postfix instance needs root (its master runs services as postfix)",
            ));
        }
        let started = Instant::now();
        let daemon_directory = daemon_directory()?;
        let dir = tempfile::Builder::new().prefix("postfix-").tempdir()?;
        let root = dir.path();
        // The postfix and nobody users must reach the queue and the maildir.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
        let ids = Ids::read()?;
        for sub in ["etc", "log"] {
            std::fs::create_dir(root.join(sub))?;
        }
        make_dir(&root.join("mail"), 0o755, Some(ids.nobody), Some(ids.nogroup))?;
        make_dir(&root.join("data"), 0o700, Some(ids.postfix), None)?;
        make_queue(&root.join("queue"), &ids)?;
        write_config(&root.join("etc/main.cf"), &main_cf(root, &ids, builder))?;
        write_config(&root.join("etc/master.cf"), &master_cf(port))?;
        let master = Held::spawn(
            Command::new(Path::new(&daemon_directory).join("master"))
                .arg("-c")
                .arg(root.join("etc"))
                .arg("-d"),
        )
        .map_err(|e| missing(e, "postfix"))?;
        let log = root.join("log/maillog");
        let master = master
            .wait_ready(START_TIMEOUT, &format!("listen on 127.0.0.1:{port}"), |m| {
                m.listens_tcp(port)
                    && std::fs::read_to_string(&log).is_ok_and(|l| l.contains("daemon started"))
            })
            .map_err(|e| {
                let logged = std::fs::read_to_string(&log).unwrap_or_default();
                io::Error::other(format!("{e}\n--- maillog ---\n{logged}"))
            })?;
        Ok(Postfix { dir, port, master, started_in: started.elapsed() })
    }

    /// smtpd's address.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// smtpd's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The instance's directory (`etc/`, `queue/`, `data/`, `log/maillog`, `mail/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// master's pid (also the process group of every Postfix process of this instance).
    pub fn pid(&self) -> u32 {
        self.master.pid()
    }

    /// How long [`Postfix::start`] took, from writing the configuration to ready.
    pub fn start_time(&self) -> Duration {
        self.started_in
    }

    /// The log file (`maillog_file`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log/maillog")
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Every delivery logged so far (discard and maildir, any status), in log order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        parse_deliveries(&self.log())
    }

    /// Waits up to `timeout` until `n` deliveries have `status=sent`; returns the sent ones
    /// there are then.
    pub fn wait_for_sent(&self, timeout: Duration, n: usize) -> Vec<Delivery> {
        wait_for_matching(timeout, n, || self.deliveries(), |d| d.status == "sent")
    }

    /// The Message-ID of every message cleanup accepted, in log order (one per message, not
    /// per recipient).
    pub fn message_ids(&self) -> Vec<String> {
        parse_message_ids(&self.log()).into_iter().map(|(_, id)| id).collect()
    }

    /// Every ended smtpd session, from its `disconnect from` line, in log order.
    pub fn sessions(&self) -> Vec<Session> {
        parse_sessions(&self.log())
    }

    /// The maildir of [`MAILDIR_DOMAIN`] recipients.
    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("mail/all")
    }

    /// The files in the maildir (`new/` and `cur/`), oldest first (maildir names start with
    /// the delivery time).
    pub fn maildir_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.maildir().join(sub)).ok())
            .flat_map(|entries| entries.flatten().map(|e| e.path()))
            .collect();
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        files
    }

    /// The messages in the maildir, as delivered (with Postfix's `Return-Path`,
    /// `Delivered-To` and `Received` on top), oldest first.
    pub fn maildir_messages(&self) -> Vec<Vec<u8>> {
        self.maildir_files().iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// The Message-ID header of each message in the maildir (oldest first; `None` for a
    /// message without one): what arrived, counted by id.
    pub fn maildir_message_ids(&self) -> Vec<Option<String>> {
        self.maildir_messages().iter().map(|m| header(m, "Message-ID")).collect()
    }

    /// Waits up to `timeout` until the maildir holds `n` messages; returns them.
    pub fn wait_for_maildir(&self, timeout: Duration, n: usize) -> Vec<Vec<u8>> {
        wait_until(timeout, || self.maildir_files().len() >= n);
        self.maildir_messages()
    }

    /// Stops it as `postfix stop` does (SIGTERM to master, which stops its services), SIGKILL
    /// to the group after 10 s.
    pub fn stop(&mut self) -> io::Result<()> {
        self.master.terminate(Duration::from_secs(10)).map(drop)
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = self.master.kill();
    }
}

/// The value of header `name` (case-insensitive, folded lines joined) in a message's header
/// section.
pub fn header(message: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next().unwrap_or("").split("\n\n").next().unwrap_or("");
    let mut value: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        match &mut value {
            Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
            Some(_) => break,
            None => {
                let (key, rest) = line.split_once(':').unwrap_or(("", ""));
                if key.eq_ignore_ascii_case(name) {
                    value = Some(rest.trim_start().to_owned());
                }
            }
        }
    }
    value.map(|v| v.trim().to_owned())
}

/// `daemon_directory` of the installed Postfix (where `master` lives), asked once.
fn daemon_directory() -> io::Result<String> {
    static DIR: OnceLock<Result<String, String>> = OnceLock::new();
    let found = DIR.get_or_init(|| {
        let out = crate::process::run(
            Command::new("postconf").args(["-dh", "daemon_directory"]),
            START_TIMEOUT,
        )
        .map_err(|e| missing(e, "postfix").to_string())?;
        if !out.success() {
            return Err(format!("postconf -dh daemon_directory: {}", out.transcript()));
        }
        Ok(out.stdout.trim().to_owned())
    });
    found.clone().map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))
}

/// The uids and gids the instance runs with, from `/etc/passwd` and `/etc/group`.
struct Ids {
    postfix: u32,
    postdrop: u32,
    nobody: u32,
    nogroup: u32,
}

impl Ids {
    fn read() -> io::Result<Ids> {
        let passwd = std::fs::read_to_string("/etc/passwd")?;
        let group = std::fs::read_to_string("/etc/group")?;
        let id = |table: &str, name: &str, what: &str| {
            table
                .lines()
                .find_map(|l| {
                    let mut cols = l.split(':');
                    (cols.next() == Some(name)).then(|| cols.nth(1)?.parse::<u32>().ok())?
                })
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("no {what} {name:?} (apt-get install postfix creates it)"),
                    )
                })
        };
        Ok(Ids {
            postfix: id(&passwd, "postfix", "user")?,
            postdrop: id(&group, "postdrop", "group")?,
            nobody: id(&passwd, "nobody", "user")?,
            nogroup: id(&group, "nogroup", "group")?,
        })
    }
}

/// Writes a configuration file dated a minute ago: master, having read a main.cf modified
/// within the last two seconds, sleeps in 300 ms steps until it is older (seen with strace),
/// which made every start cost two seconds.
fn write_config(path: &Path, text: &str) -> io::Result<()> {
    std::fs::write(path, text)?;
    let a_minute_ago = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options().write(true).open(path)?.set_modified(a_minute_ago)
}

fn make_dir(path: &Path, mode: u32, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    std::fs::create_dir(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    chown(path, uid, gid)
}

/// The queue as `postfix post-install create-missing` lays it out (done here directly: the
/// script takes half a second).
fn make_queue(queue: &Path, ids: &Ids) -> io::Result<()> {
    make_dir(queue, 0o755, None, None)?;
    let private = [
        "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private",
        "saved", "trace",
    ];
    for sub in private {
        make_dir(&queue.join(sub), 0o700, Some(ids.postfix), None)?;
    }
    make_dir(&queue.join("maildrop"), 0o730, Some(ids.postfix), Some(ids.postdrop))?;
    make_dir(&queue.join("public"), 0o710, Some(ids.postfix), Some(ids.postdrop))?;
    make_dir(&queue.join("pid"), 0o755, None, None)
}

fn main_cf(root: &Path, ids: &Ids, builder: &PostfixBuilder) -> String {
    let r = root.display();
    let mut cf = format!(
        "# A private instance: its own directories, loopback only, nothing delivered off the\n\
         # machine. Limits are Postfix's defaults unless set at the end.\n\
         compatibility_level = 3.6\n\
         queue_directory = {r}/queue\n\
         data_directory = {r}/data\n\
         maillog_file = {r}/log/maillog\n\
         maillog_file_prefixes = {r}\n\
         mail_owner = postfix\n\
         setgid_group = postdrop\n\
         inet_interfaces = 127.0.0.1\n\
         inet_protocols = ipv4\n\
         myhostname = postfix.test\n\
         mydestination =\n\
         relay_domains =\n\
         alias_maps =\n\
         alias_database =\n\
         default_transport = discard\n\
         relay_transport = discard\n\
         local_transport = discard\n\
         virtual_mailbox_domains = {MAILDIR_DOMAIN}\n\
         virtual_mailbox_base = {r}/mail\n\
         virtual_mailbox_maps = static:all/\n\
         virtual_uid_maps = static:{}\n\
         virtual_gid_maps = static:{}\n",
        ids.nobody, ids.nogroup
    );
    if builder.anvil {
        cf.push_str("smtpd_client_event_limit_exceptions =\n");
    }
    for (key, value) in &builder.overrides {
        cf.push_str(&format!("{key} = {value}\n"));
    }
    cf
}

/// Debian's master.cf services this instance uses, unchanged but for chroot (off: the
/// chroot would need a copy of the system in the queue directory) and smtpd's address.
fn master_cf(port: u16) -> String {
    format!(
        "127.0.0.1:{port} inet n - n - - smtpd\n\
         pickup    unix  n - n 60    1 pickup\n\
         cleanup   unix  n - n -     0 cleanup\n\
         qmgr      unix  n - n 300   1 qmgr\n\
         rewrite   unix  - - n -     - trivial-rewrite\n\
         bounce    unix  - - n -     0 bounce\n\
         defer     unix  - - n -     0 bounce\n\
         trace     unix  - - n -     0 bounce\n\
         verify    unix  - - n -     1 verify\n\
         flush     unix  n - n 1000? 0 flush\n\
         proxymap  unix  - - n -     - proxymap\n\
         proxywrite unix - - n -     1 proxymap\n\
         showq     unix  n - n -     - showq\n\
         error     unix  - - n -     - error\n\
         retry     unix  - - n -     - error\n\
         discard   unix  - - n -     - discard\n\
         virtual   unix  - n n -     - virtual\n\
         anvil     unix  - - n -     1 anvil\n\
         scache    unix  - - n -     1 scache\n\
         postlog   unix-dgram n - n - 1 postlogd\n"
    )
}

/// `(queue id, Message-ID)` from cleanup's `QUEUEID: message-id=<...>` lines, in log order.
fn parse_message_ids(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter(|l| l.contains("/cleanup["))
        .filter_map(|line| {
            let (queue_id, rest) = queue_entry(line)?;
            Some((queue_id.to_owned(), rest.strip_prefix("message-id=")?.trim().to_owned()))
        })
        .collect()
}

fn parse_deliveries(log: &str) -> Vec<Delivery> {
    let ids: std::collections::HashMap<String, String> =
        parse_message_ids(log).into_iter().collect();
    log.lines()
        .filter(|l| l.contains(" status=") && l.contains(" to=<"))
        .filter_map(|line| {
            let (queue_id, rest) = queue_entry(line)?;
            let value = |key: &str| {
                let start = rest.find(&format!("{key}="))? + key.len() + 1;
                let end = rest[start..].find([',', ' ']).map_or(rest.len(), |e| start + e);
                Some(rest[start..end].to_owned())
            };
            let to = value("to")?;
            Some(Delivery {
                queue_id: queue_id.to_owned(),
                to: to.trim_start_matches('<').trim_end_matches('>').to_owned(),
                relay: value("relay")?,
                status: value("status")?,
                message_id: ids.get(queue_id).cloned(),
            })
        })
        .collect()
}

fn parse_sessions(log: &str) -> Vec<Session> {
    log.lines()
        .filter(|l| l.contains("/smtpd[") && l.contains(": disconnect from "))
        .filter_map(|line| {
            let rest = &line[line.find(": disconnect from ")? + ": disconnect from ".len()..];
            let mut words = rest.split_whitespace();
            let client = words.next()?.to_owned();
            let counts = words
                .filter_map(|w| {
                    let (command, count) = w.split_once('=')?;
                    let (ok, total) = count.split_once('/').unwrap_or((count, count));
                    Some((
                        command.to_owned(),
                        Count { ok: ok.parse().ok()?, total: total.parse().ok()? },
                    ))
                })
                .collect();
            Some(Session { client, counts })
        })
        .collect()
}

/// Splits `... postfix/agent[pid]: QUEUEID: rest` into the queue id and the rest.
fn queue_entry(line: &str) -> Option<(&str, &str)> {
    let after = &line[line.find("]: ")? + 3..];
    let (queue_id, rest) = after.split_once(": ")?;
    queue_id.chars().all(|c| c.is_ascii_alphanumeric()).then_some((queue_id, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
Dec 01 19:53:25 postfix postfix/smtpd[8291]: connect from localhost[127.0.0.1]
Dec 01 19:53:25 postfix postfix/smtpd[8291]: B2A8598E18B: client=localhost[127.0.0.1]
Dec 01 19:53:25 postfix postfix/cleanup[8295]: B2A8598E18B: message-id=<1@x.test>
Dec 01 19:53:25 postfix postfix/qmgr[7564]: B2A8598E18B: from=<a@x.test>, size=376, nrcpt=2 (queue active)
Dec 01 19:53:25 postfix postfix/smtpd[8291]: disconnect from localhost[127.0.0.1] ehlo=2 mail=1 rcpt=2/3 data=1 quit=1 commands=7/8
Dec 01 19:53:25 postfix postfix/discard[8297]: B2A8598E18B: to=<b@discard.test>, relay=none, delay=0.02, delays=0.01/0.01/0/0, dsn=2.0.0, status=sent (discard.test)
Dec 01 19:53:25 postfix postfix/virtual[8302]: B2A8598E18B: to=<c@maildir.test>, relay=virtual, delay=0.01, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to maildir)
Dec 01 19:53:26 postfix postfix/cleanup[8295]: C37E798E18B: message-id=<2@x.test>
";

    #[test]
    fn reads_deliveries_message_ids_and_sessions_from_the_log() {
        let d = parse_deliveries(LOG);
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[1],
            Delivery {
                queue_id: "B2A8598E18B".into(),
                to: "c@maildir.test".into(),
                relay: "virtual".into(),
                status: "sent".into(),
                message_id: Some("<1@x.test>".into()),
            }
        );
        assert_eq!(d[0].relay, "none");
        let ids: Vec<String> = parse_message_ids(LOG).into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids, ["<1@x.test>", "<2@x.test>"]);
        let s = parse_sessions(LOG);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].client, "localhost[127.0.0.1]");
        assert_eq!((s[0].ok("ehlo"), s[0].ok("rcpt"), s[0].ok("auth")), (2, 2, 0));
        assert_eq!(s[0].counts["commands"], Count { ok: 7, total: 8 });
    }

    #[test]
    fn reads_a_header_case_insensitively_and_unfolded() {
        let m = b"Return-Path: <a@x.test>\nmessage-id:\n <1@x.test>\nSubject: s\n\nMessage-ID: <body>\n";
        assert_eq!(header(m, "Message-ID").as_deref(), Some("<1@x.test>"));
        assert_eq!(header(m, "subject").as_deref(), Some("s"));
        assert_eq!(header(m, "X-Missing"), None);
        assert_eq!(
            header(b"Message-ID: <crlf@x>\r\n\r\nx", "message-id").as_deref(),
            Some("<crlf@x>")
        );
    }

    #[test]
    fn knobs_land_in_main_cf_with_the_anvil_exception_only_when_a_limit_is_set() {
        let ids = Ids { postfix: 1, postdrop: 2, nobody: 3, nogroup: 4 };
        let stock = main_cf(Path::new("/t"), &ids, &PostfixBuilder::default());
        assert!(!stock.contains("smtpd_client_event_limit_exceptions"));
        assert!(!stock.contains("message_size_limit") && !stock.contains("smtpd_timeout"));
        let b = Postfix::builder()
            .smtpd_timeout(Duration::from_secs(2))
            .connection_count_limit(3)
            .main_cf("smtpd_banner", "$myhostname ESMTP");
        let cf = main_cf(Path::new("/t"), &ids, &b);
        for line in [
            "smtpd_timeout = 2s",
            "smtpd_client_connection_count_limit = 3",
            "smtpd_client_event_limit_exceptions =",
            "smtpd_banner = $myhostname ESMTP",
            "virtual_uid_maps = static:3",
        ] {
            assert!(cf.lines().any(|l| l == line), "{line} missing from\n{cf}");
        }
    }
}
