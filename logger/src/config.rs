//! [`Config`] for [`crate::new`], and the small syslog vocabulary it uses: [`SyslogTarget`],
//! [`SyslogFormat`] and [`Facility`], each parseable from a command-line flag.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;

use crate::{Level, StdoutFormat};

/// What [`crate::new`] builds: which sinks, at which thresholds.
///
/// `Config::new("svc")` is stdout at Info and nothing else; a service fills the rest from its
/// own flags:
///
/// ```
/// let mut config = logger::Config::new("notify-mailer");
/// config.stdout_level = Some(logger::Level::Warning);
/// config.syslog = Some("udp:127.0.0.1:514".parse().unwrap());
/// config.syslog_level = logger::Level::Info;
/// let log = logger::new(config);
/// log.info("to syslog only");
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    /// The program name: syslog APP-NAME / TAG, journald SYSLOG_IDENTIFIER, stdout column.
    pub program: String,
    /// The stdout threshold; `None` = no stdout sink.
    pub stdout_level: Option<Level>,
    /// The stdout line format: the short text format (default) or JSON lines.
    pub stdout_format: StdoutFormat,
    /// Where syslog goes; `None` = no syslog sink.
    pub syslog: Option<SyslogTarget>,
    /// The syslog threshold.
    pub syslog_level: Level,
    /// The syslog header format; `None` = by transport ([`SyslogFormat::for_target`]: RFC 3164
    /// on a unix socket, RFC 5424 over the network).
    pub syslog_format: Option<SyslogFormat>,
    /// The syslog facility.
    pub facility: Facility,
    /// The longest syslog frame, header included ([`crate::syslog::DEFAULT_MAX_LEN`]: stock
    /// rsyslog's); raise it only together with the daemon's `maxMessageSize`.
    pub syslog_max_len: usize,
    /// For a `tls:` target: a PEM file with the CA certificates to trust instead of the
    /// system's roots.
    pub syslog_tls_ca: Option<PathBuf>,
    /// For a `tls:` target: the name the daemon's certificate must hold, when it is not the
    /// target's host.
    pub syslog_tls_server_name: Option<String>,
    /// `Some(socket path)` = a journald sink (normally `/run/systemd/journal/socket`).
    pub journald: Option<PathBuf>,
    /// The journald threshold.
    pub journald_level: Level,
    /// Boulder's line checksum on the text sinks (stdout, syslog): each line carries
    /// `<checksum> <message>` (see [`crate::checksum()`]), for `log-validator`. Off by default.
    pub checksum: bool,
}

impl Config {
    /// Stdout at Info and nothing else; syslog and journald thresholds default to Info,
    /// syslog to the transport's format on facility local0, frames of at most 8,096 bytes.
    pub fn new(program: &str) -> Self {
        Config {
            program: program.to_owned(),
            stdout_level: Some(Level::Info),
            stdout_format: StdoutFormat::default(),
            syslog: None,
            syslog_level: Level::Info,
            syslog_format: None,
            facility: Facility::default(),
            syslog_max_len: crate::syslog::DEFAULT_MAX_LEN,
            syslog_tls_ca: None,
            syslog_tls_server_name: None,
            journald: None,
            journald_level: Level::Info,
            checksum: false,
        }
    }
}

impl fmt::Display for Config {
    /// The effective configuration as `key=value` pairs, for a service's start-up line:
    /// `stdout=info syslog=unix:/dev/log syslog_level=info syslog_format=rfc3164
    /// facility=local0 journald=none` (sinks that are off show `none`; levels of sinks that are
    /// off are left out; the frame limit, TLS settings and `checksum=on` only when not the
    /// defaults).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = |l: Level| l.as_str().to_ascii_lowercase();
        match self.stdout_level {
            Some(l) if self.stdout_format == StdoutFormat::Short => {
                write!(f, "stdout={}", level(l))?
            }
            Some(l) => write!(f, "stdout={} stdout_format={}", level(l), self.stdout_format)?,
            None => f.write_str("stdout=none")?,
        }
        match &self.syslog {
            Some(target) => {
                let format = self.syslog_format.unwrap_or(SyslogFormat::for_target(target));
                write!(
                    f,
                    " syslog={target} syslog_level={} syslog_format={format} facility={}",
                    level(self.syslog_level),
                    self.facility
                )?;
                if self.syslog_max_len != crate::syslog::DEFAULT_MAX_LEN {
                    write!(f, " syslog_max_len={}", self.syslog_max_len)?;
                }
                if let Some(ca) = &self.syslog_tls_ca {
                    write!(f, " syslog_tls_ca={}", ca.display())?;
                }
                if let Some(name) = &self.syslog_tls_server_name {
                    write!(f, " syslog_tls_server_name={name}")?;
                }
            }
            None => f.write_str(" syslog=none")?,
        }
        match &self.journald {
            Some(path) => {
                write!(
                    f,
                    " journald={} journald_level={}",
                    path.display(),
                    level(self.journald_level)
                )?;
            }
            None => f.write_str(" journald=none")?,
        }
        if self.checksum {
            f.write_str(" checksum=on")?;
        }
        Ok(())
    }
}

/// Where syslog records go. Parses from `unix:PATH`, `udp:HOST:PORT`, `tcp:HOST:PORT` or
/// `tls:HOST:PORT` (`HOST` may be a name, an IPv4 address or a bracketed IPv6 address; names
/// are resolved once, here).
///
/// ```
/// use logger::SyslogTarget;
/// let t: SyslogTarget = "tcp:127.0.0.1:601".parse().unwrap();
/// assert_eq!(t, SyslogTarget::Tcp("127.0.0.1:601".parse().unwrap()));
/// assert_eq!(t.to_string(), "tcp:127.0.0.1:601");
/// assert!("syslog.example".parse::<SyslogTarget>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SyslogTarget {
    /// A unix datagram socket, such as `/dev/log`.
    Unix(PathBuf),
    /// UDP, one datagram per record.
    Udp(SocketAddr),
    /// TCP with octet-counting framing (RFC 6587).
    Tcp(SocketAddr),
    /// TLS over TCP with octet-counting framing (RFC 5425; needs the `tls` feature). `host` is
    /// the name the certificate is checked against unless the sink is given another.
    Tls {
        /// Where to connect.
        addr: SocketAddr,
        /// The host as written in the target (a name or an IP address, without brackets).
        host: String,
    },
}

impl SyslogTarget {
    /// Whether records go over a byte stream (TCP or TLS), as octet-counted frames.
    pub fn is_stream(&self) -> bool {
        matches!(self, SyslogTarget::Tcp(_) | SyslogTarget::Tls { .. })
    }
}

impl Default for SyslogTarget {
    /// `unix:/dev/log`.
    fn default() -> Self {
        SyslogTarget::Unix(PathBuf::from("/dev/log"))
    }
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogTarget::Unix(p) => write!(f, "unix:{}", p.display()),
            SyslogTarget::Udp(a) => write!(f, "udp:{a}"),
            SyslogTarget::Tcp(a) => write!(f, "tcp:{a}"),
            SyslogTarget::Tls { addr, host } if host.contains(':') => {
                write!(f, "tls:[{host}]:{}", addr.port())
            }
            SyslogTarget::Tls { addr, host } => write!(f, "tls:{host}:{}", addr.port()),
        }
    }
}

/// Why a `--syslog` value or another logger setting did not parse; the message names the
/// value and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseConfigError(String);

impl fmt::Display for ParseConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ParseConfigError {
    pub(crate) fn new(message: String) -> Self {
        ParseConfigError(message)
    }
}

impl std::error::Error for ParseConfigError {}

impl FromStr for SyslogTarget {
    type Err = ParseConfigError;

    fn from_str(s: &str) -> Result<Self, ParseConfigError> {
        let expected = "expected unix:PATH, udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT";
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| ParseConfigError(format!("bad syslog target {s:?}: {expected}")))?;
        match scheme {
            "unix" if rest.is_empty() => {
                Err(ParseConfigError(format!("bad syslog target {s:?}: empty socket path")))
            }
            "unix" => Ok(SyslogTarget::Unix(PathBuf::from(rest))),
            "udp" => resolve(s, rest).map(SyslogTarget::Udp),
            "tcp" => resolve(s, rest).map(SyslogTarget::Tcp),
            "tls" if cfg!(not(feature = "tls")) => Err(ParseConfigError(format!(
                "bad syslog target {s:?}: this build of the logger has no TLS (feature `tls`)"
            ))),
            "tls" => {
                let addr = resolve(s, rest)?;
                let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h);
                let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
                Ok(SyslogTarget::Tls { addr, host: host.to_owned() })
            }
            _ => Err(ParseConfigError(format!(
                "bad syslog target {s:?}: unknown scheme {scheme:?}, {expected}"
            ))),
        }
    }
}

/// `HOST:PORT` to an address: literal addresses directly, names through the resolver (once,
/// at start-up, so a resolver outage later cannot stall logging).
fn resolve(whole: &str, host_port: &str) -> Result<SocketAddr, ParseConfigError> {
    if let Ok(addr) = host_port.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bad = |why: String| ParseConfigError(format!("bad syslog target {whole:?}: {why}"));
    let (host, port) =
        host_port.rsplit_once(':').ok_or_else(|| bad("expected HOST:PORT".to_owned()))?;
    if host.is_empty() {
        return Err(bad("empty host".to_owned()));
    }
    port.parse::<u16>()
        .map_err(|_| bad(format!("port {port:?} is not a number from 0 to 65535")))?;
    let mut addrs =
        host_port.to_socket_addrs().map_err(|e| bad(format!("cannot resolve {host:?}: {e}")))?;
    addrs.next().ok_or_else(|| bad(format!("{host:?} resolves to no address")))
}

/// The syslog header format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyslogFormat {
    /// `<PRI>1 TIMESTAMP HOST APP PID - - MSG` (RFC 5424), the default over the network.
    Rfc5424,
    /// `<PRI>Mmm dd HH:MM:SS [HOST ]TAG[PID]: MSG` (RFC 3164, BSD syslog), the default on a
    /// unix socket.
    Rfc3164,
}

impl SyslogFormat {
    /// The format a daemon at `target` parses by default: RFC 3164 on a unix socket, exactly
    /// what glibc's `syslog(3)` sends (stock rsyslog's imuxsock and journald's syslog socket
    /// read RFC 5424 there with APP-NAME `1` and the header inside the message), RFC 5424 over
    /// UDP, TCP and TLS.
    pub fn for_target(target: &SyslogTarget) -> SyslogFormat {
        match target {
            SyslogTarget::Unix(_) => SyslogFormat::Rfc3164,
            _ => SyslogFormat::Rfc5424,
        }
    }
}

impl fmt::Display for SyslogFormat {
    /// `rfc5424` or `rfc3164`, as parsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyslogFormat::Rfc5424 => "rfc5424",
            SyslogFormat::Rfc3164 => "rfc3164",
        })
    }
}

impl FromStr for SyslogFormat {
    type Err = ParseConfigError;

    /// `rfc5424`/`5424` or `rfc3164`/`3164`/`bsd`, any case.
    fn from_str(s: &str) -> Result<Self, ParseConfigError> {
        match s.to_ascii_lowercase().as_str() {
            "rfc5424" | "5424" => Ok(SyslogFormat::Rfc5424),
            "rfc3164" | "3164" | "bsd" => Ok(SyslogFormat::Rfc3164),
            _ => Err(ParseConfigError(format!(
                "unknown syslog format {s:?} (expected rfc5424 or rfc3164)"
            ))),
        }
    }
}

/// A syslog facility; the default is `local0`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // The names are the syslog names.
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    #[default]
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    const NAMES: [(Facility, &'static str, u8); 20] = [
        (Facility::Kern, "kern", 0),
        (Facility::User, "user", 1),
        (Facility::Mail, "mail", 2),
        (Facility::Daemon, "daemon", 3),
        (Facility::Auth, "auth", 4),
        (Facility::Syslog, "syslog", 5),
        (Facility::Lpr, "lpr", 6),
        (Facility::News, "news", 7),
        (Facility::Uucp, "uucp", 8),
        (Facility::Cron, "cron", 9),
        (Facility::Authpriv, "authpriv", 10),
        (Facility::Ftp, "ftp", 11),
        (Facility::Local0, "local0", 16),
        (Facility::Local1, "local1", 17),
        (Facility::Local2, "local2", 18),
        (Facility::Local3, "local3", 19),
        (Facility::Local4, "local4", 20),
        (Facility::Local5, "local5", 21),
        (Facility::Local6, "local6", 22),
        (Facility::Local7, "local7", 23),
    ];

    /// The facility number (local0 = 16); PRI = number * 8 + severity.
    pub fn code(self) -> u8 {
        Self::NAMES.iter().find(|(f, _, _)| *f == self).map_or(16, |&(_, _, c)| c)
    }

    /// The lower-case syslog name, such as `local0`.
    pub fn as_str(self) -> &'static str {
        Self::NAMES.iter().find(|(f, _, _)| *f == self).map_or("local0", |&(_, n, _)| n)
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Facility {
    type Err = ParseConfigError;

    /// A syslog name such as `local0`, `mail` or `daemon`, any case.
    fn from_str(s: &str) -> Result<Self, ParseConfigError> {
        let lower = s.to_ascii_lowercase();
        Self::NAMES.iter().find(|(_, n, _)| *n == lower).map(|&(f, _, _)| f).ok_or_else(|| {
            ParseConfigError(format!(
                "unknown syslog facility {s:?} (expected kern, user, mail, daemon, auth, \
                 syslog, lpr, news, uucp, cron, authpriv, ftp or local0 to local7)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_targets() {
        assert_eq!(
            "unix:/dev/log".parse::<SyslogTarget>(),
            Ok(SyslogTarget::Unix("/dev/log".into()))
        );
        assert_eq!(
            "udp:127.0.0.1:514".parse::<SyslogTarget>(),
            Ok(SyslogTarget::Udp("127.0.0.1:514".parse().unwrap()))
        );
        assert_eq!(
            "tcp:[::1]:601".parse::<SyslogTarget>(),
            Ok(SyslogTarget::Tcp("[::1]:601".parse().unwrap()))
        );
        let local = "tcp:localhost:601".parse::<SyslogTarget>().unwrap();
        assert!(matches!(local, SyslogTarget::Tcp(a) if a.port() == 601 && a.ip().is_loopback()));
        let tls = "tls:localhost:6514".parse::<SyslogTarget>().unwrap();
        assert!(
            matches!(&tls, SyslogTarget::Tls { addr, host } if addr.port() == 6514 && host == "localhost"),
            "{tls:?}"
        );
        let v6 = "tls:[::1]:6514".parse::<SyslogTarget>().unwrap();
        assert!(matches!(&v6, SyslogTarget::Tls { host, .. } if host == "::1"), "{v6:?}");
        assert!(tls.is_stream() && v6.is_stream() && !SyslogTarget::default().is_stream());
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        let err = |s: &str| s.parse::<SyslogTarget>().unwrap_err().to_string();
        assert!(err("/dev/log").contains("udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT"));
        assert!(err("http://x").contains("unknown scheme \"http\""));
        assert!(err("unix:").contains("empty socket path"));
        assert!(err("udp:127.0.0.1").contains("expected HOST:PORT"));
        assert!(err("udp:localhost:99999").contains("port \"99999\""));
        assert!(err("tcp::514").contains("empty host"));
        assert!(err("udp:127.0.0.1:x").contains("\"udp:127.0.0.1:x\""));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "unix:/run/x.sock",
            "udp:127.0.0.1:514",
            "tcp:[::1]:601",
            "tls:localhost:6514",
            "tls:127.0.0.1:6514",
            "tls:[::1]:6514",
        ] {
            assert_eq!(s.parse::<SyslogTarget>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn facilities_and_formats() {
        assert_eq!(Facility::default(), Facility::Local0);
        assert_eq!(Facility::Local0.code(), 16);
        assert_eq!("MAIL".parse::<Facility>(), Ok(Facility::Mail));
        assert_eq!("local7".parse::<Facility>().map(Facility::code), Ok(23));
        assert!("local8".parse::<Facility>().unwrap_err().to_string().contains("local8"));
        for (f, name, _) in Facility::NAMES {
            assert_eq!(f.as_str().parse::<Facility>(), Ok(f), "{name}");
        }
        assert_eq!("3164".parse::<SyslogFormat>(), Ok(SyslogFormat::Rfc3164));
        assert_eq!("RFC5424".parse::<SyslogFormat>(), Ok(SyslogFormat::Rfc5424));
        assert!("json".parse::<SyslogFormat>().is_err());
        for f in [SyslogFormat::Rfc5424, SyslogFormat::Rfc3164] {
            assert_eq!(f.to_string().parse::<SyslogFormat>(), Ok(f));
        }
        let by = |t: &str| SyslogFormat::for_target(&t.parse().unwrap());
        assert_eq!(by("unix:/dev/log"), SyslogFormat::Rfc3164);
        for t in ["udp:127.0.0.1:514", "tcp:127.0.0.1:601", "tls:127.0.0.1:6514"] {
            assert_eq!(by(t), SyslogFormat::Rfc5424, "{t}");
        }
    }

    #[test]
    fn config_displays_as_the_effective_settings() {
        let mut c = Config::new("svc");
        assert_eq!(c.to_string(), "stdout=info syslog=none journald=none");
        c.stdout_format = StdoutFormat::Json;
        assert_eq!(c.to_string(), "stdout=info stdout_format=json syslog=none journald=none");
        c.stdout_level = None;
        c.syslog = Some("unix:/dev/log".parse().unwrap());
        c.syslog_level = Level::Debug;
        c.facility = Facility::Mail;
        c.journald = Some("/run/j.sock".into());
        c.checksum = true;
        assert_eq!(
            c.to_string(),
            "stdout=none syslog=unix:/dev/log syslog_level=debug syslog_format=rfc3164 \
             facility=mail journald=/run/j.sock journald_level=info checksum=on"
        );
        c.syslog = Some("tls:127.0.0.1:6514".parse().unwrap());
        c.syslog_max_len = 65_536;
        c.syslog_tls_ca = Some("/etc/ca.pem".into());
        c.syslog_tls_server_name = Some("logs.example".into());
        c.journald = None;
        assert_eq!(
            c.to_string(),
            "stdout=none syslog=tls:127.0.0.1:6514 syslog_level=debug syslog_format=rfc5424 \
             facility=mail syslog_max_len=65536 syslog_tls_ca=/etc/ca.pem \
             syslog_tls_server_name=logs.example journald=none checksum=on"
        );
    }

    #[test]
    fn config_new_is_stdout_at_info_only() {
        let c = Config::new("svc");
        assert_eq!(c.program, "svc");
        assert_eq!(c.stdout_level, Some(Level::Info));
        assert!(c.syslog.is_none() && c.journald.is_none());
        assert_eq!(c.syslog_format, None);
        assert_eq!(c.syslog_max_len, 8096);
        assert_eq!(c.facility, Facility::Local0);
    }
}
