//! Boulder's checksum through a real, stock rsyslog: lines logged through the logger's syslog
//! sink into rsyslog, written out in rsyslog's default file format, validate with
//! `log-validator`; a copy with one byte flipped, and a line stock rsyslog had to cut, fail it.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use logger::{Config, Level, Logger, SyslogFormat};
use test_support::Rsyslog;

const BIN: &str = env!("CARGO_BIN_EXE_log-validator");

/// A record as `RSYSLOG_FileFormat` (rsyslog's built-in default for files) writes it:
/// `%TIMESTAMP:::date-rfc3339% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%`.
/// The harness writes every property as JSON instead, so the line is put together here from
/// exactly those properties.
fn file_format(r: &test_support::rsyslog::Record) -> String {
    let msg = r.msg.strip_suffix('\n').unwrap_or(&r.msg);
    let space = if msg.starts_with(' ') { "" } else { " " };
    format!("{} {} {}{space}{msg}", r.timestamp, r.hostname, r.tag)
}

fn validate(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(BIN).arg(path).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap(), text(out.stdout), text(out.stderr))
}

#[test]
#[ignore = "needs rsyslog: run by .ci/run"]
fn lines_through_stock_rsyslog_validate_and_altered_ones_do_not() {
    let rsyslog = Rsyslog::start_without_tls().expect("rsyslogd");
    let mut config = Config::new("svc");
    config.stdout_level = None;
    config.syslog = Some(logger::SyslogTarget::Unix(rsyslog.socket_path()));
    config.syslog_format = Some(SyslogFormat::Rfc3164);
    config.syslog_level = Level::Debug;
    let log: Arc<dyn Logger> = logger::new(config);
    // Each message carries its own checksum (written here, as Boulder's bothWriter does), so
    // the test does not depend on which sink puts it there.
    let messages = [
        "started".to_owned(),
        r#"sent recipients=2 server=127.0.0.1:25 reply="250 ok""#.to_owned(),
        "[AUDIT] granted user=alice scopes=read,write".to_owned(),
        "non-ASCII héllo ✓ and  two spaces".to_owned(),
        format!("long {}", "x".repeat(9_000)),
    ];
    for m in &messages {
        let mut line = String::new();
        logger::write_checksummed(&mut line, m);
        log.info(&line);
    }
    log.flush();
    let records = rsyslog
        .wait_for_count(Duration::from_secs(20), messages.len(), |r| r.tag.starts_with("svc["));
    assert_eq!(records.len(), messages.len(), "{}", rsyslog.diagnostics());

    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = records.iter().map(file_format).collect();
    let (long, whole): (Vec<&String>, Vec<&String>) =
        lines.iter().partition(|l| l.contains("long xxx"));
    assert!(long[0].len() < 9_000, "stock rsyslog keeps at most 8,096 bytes of a frame");

    let good = dir.path().join("good.log");
    std::fs::write(&good, whole.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let (code, stdout, stderr) = validate(&good);
    assert_eq!(code, 0, "{stdout}{stderr}\n{whole:#?}");
    assert!(stdout.ends_with(&format!("ok={} bad=0 malformed=0\n", whole.len())), "{stdout}");

    let mut flipped = std::fs::read(&good).unwrap();
    let at = flipped.windows(7).position(|w| w == b"granted").unwrap();
    flipped[at] ^= 0x01;
    let flipped_path = dir.path().join("flipped.log");
    std::fs::write(&flipped_path, flipped).unwrap();
    let (code, stdout, stderr) = validate(&flipped_path);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("bad=1 malformed=0"), "{stdout}");
    assert!(stderr.contains("bad checksum") && stderr.contains("franted"), "{stderr}");

    let cut = dir.path().join("cut.log");
    std::fs::write(&cut, format!("{}\n", long[0])).unwrap();
    let (code, stdout, _) = validate(&cut);
    assert_eq!((code, stdout.contains("ok=0 bad=1")), (1, true), "{stdout}");
}
