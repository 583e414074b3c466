//! Reading a syslog frame as our logger writes it, for tests that receive frames on a raw
//! socket (or read them from a fallback) rather than through rsyslog.

/// The parts of an RFC 5424 message the logger writes: `<PRI>1 TS HOST APP PID - - MSG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rfc5424 {
    /// PRI: facility * 8 + severity.
    pub pri: u32,
    /// The timestamp, `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub timestamp: String,
    /// HOSTNAME.
    pub hostname: String,
    /// APP-NAME.
    pub app: String,
    /// PROCID.
    pub pid: u32,
    /// MSG, everything after `- - `.
    pub msg: String,
}

/// Parses `<PRI>1 TS HOST APP PID - - MSG` strictly (microsecond UTC timestamp, numeric
/// PROCID, no MSGID, no structured data); `None` if anything is off.
pub fn parse_5424(frame: &str) -> Option<Rfc5424> {
    let rest = frame.strip_prefix('<')?;
    let (pri, rest) = rest.split_once('>')?;
    if pri.is_empty() || pri.len() > 3 || !pri.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix("1 ")?;
    let mut parts = rest.splitn(7, ' ');
    let (timestamp, hostname, app, pid) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if (parts.next()?, parts.next()?) != ("-", "-") || !is_timestamp(timestamp) {
        return None;
    }
    let msg = parts.next()?;
    if hostname.is_empty() || app.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Rfc5424 {
        pri: pri.parse().ok()?,
        timestamp: timestamp.to_owned(),
        hostname: hostname.to_owned(),
        app: app.to_owned(),
        pid: pid.parse().ok()?,
        msg: msg.to_owned(),
    })
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn is_timestamp(s: &str) -> bool {
    let pattern = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
    s.len() == pattern.len()
        && s.bytes().zip(pattern).all(|(b, &p)| if p == b'd' { b.is_ascii_digit() } else { b == p })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_loggers_frames_strictly() {
        let m = parse_5424("<134>1 2026-11-28T22:12:01.617363Z host app 4242 - - a b  c").unwrap();
        assert_eq!((m.pri, m.hostname.as_str(), m.app.as_str(), m.pid), (134, "host", "app", 4242));
        assert_eq!(
            (m.timestamp.as_str(), m.msg.as_str()),
            ("2026-11-28T22:12:01.617363Z", "a b  c")
        );
        assert_eq!(parse_5424("<134>1 2026-11-28T22:12:01.617363Z h a 1 - - ").unwrap().msg, "");
        for bad in [
            "<134>1 2026-11-28T22:12:01Z host app 4242 - - msg",
            "<134>1 2026-11-28T22:12:01.617363Z host app x - - msg",
            "<1345>1 2026-11-28T22:12:01.617363Z host app 1 - - msg",
            "<134>1 2026-11-28T22:12:01.617363Z host app 1 ID - msg",
            "<134>Nov 28 22:12:01 app[1]: msg",
            "<134>1 2026-11-28T22:12:01.617363Z host app 1 - -",
        ] {
            assert_eq!(parse_5424(bad), None, "{bad}");
        }
    }
}
