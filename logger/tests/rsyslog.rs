//! `Syslog` against a real, stock `rsyslogd` (test-support's `Rsyslog`: its shipped limits,
//! private inputs on loopback): what rsyslog parses, not just what was sent. Frames fit its
//! 8,096-byte limit whatever a value holds, so no value can forge a record; the default
//! format parses on its stock unix socket; TLS goes through its `gtls` driver; restarts lose
//! nothing. Run by `.ci/run` with `--ignored`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use logger::syslog::{DEFAULT_MAX_LEN, REPLAY_MARKER, TRUNCATION_MARKER};
use logger::{Facility, Logger, Syslog, SyslogFormat, SyslogTarget};
use test_support::rsyslog::{Input, Record};
use test_support::{Captured, Rsyslog, wait_until};

const WAIT: Duration = Duration::from_secs(20);

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// One way into rsyslog: a transport and a header format.
#[derive(Clone, Copy, Debug)]
struct Route {
    name: &'static str,
    input: Input,
    format: SyslogFormat,
}

const ROUTES: [Route; 8] = [
    // RFC 3164 on the stock socket, as on /dev/log; RFC 5424 where a unix socket parses it.
    Route { name: "unix-3164", input: Input::Unix, format: SyslogFormat::Rfc3164 },
    Route { name: "unix-5424", input: Input::UnixNoSpecialParser, format: SyslogFormat::Rfc5424 },
    Route { name: "udp-3164", input: Input::Udp, format: SyslogFormat::Rfc3164 },
    Route { name: "udp-5424", input: Input::Udp, format: SyslogFormat::Rfc5424 },
    Route { name: "tcp-3164", input: Input::Tcp, format: SyslogFormat::Rfc3164 },
    Route { name: "tcp-5424", input: Input::Tcp, format: SyslogFormat::Rfc5424 },
    Route { name: "tls-3164", input: Input::Tls, format: SyslogFormat::Rfc3164 },
    Route { name: "tls-5424", input: Input::Tls, format: SyslogFormat::Rfc5424 },
];

fn target(rsyslog: &Rsyslog, input: Input) -> SyslogTarget {
    match input {
        Input::Unix => SyslogTarget::Unix(rsyslog.socket_path()),
        Input::UnixNoSpecialParser => SyslogTarget::Unix(rsyslog.socket_path_no_special_parser()),
        Input::Udp => SyslogTarget::Udp(rsyslog.udp_addr()),
        Input::Tcp => SyslogTarget::Tcp(rsyslog.tcp_addr()),
        Input::Tls => format!("tls:127.0.0.1:{}", rsyslog.tls_addr().port()).parse().unwrap(),
        other => panic!("no route for {other:?}"),
    }
}

fn sink(rsyslog: &Rsyslog, route: Route, fallback: &Captured) -> Syslog {
    Syslog::new(target(rsyslog, route.input), "probe")
        .with_format(route.format)
        .with_tls_ca_pem(rsyslog.ca_pem())
        .with_fallback(fallback.clone())
}

/// Frames that would be parsed as records of their own if the bytes past the limit reached
/// rsyslog: one per header format.
const FORGED: [&str; 2] = [
    "<33>1 2026-11-28T22:12:01Z evilhost sshd 1 - - forged ",
    "<33>Nov 28 22:12:01 evilhost sshd[1]: forged ",
];

/// One call of a route's run: the message, maybe a field `v`, and the text the sink must
/// render for them (escaped, the value quoted) before any cut.
struct Call {
    message: String,
    value: Option<String>,
    rendered: String,
}

impl Call {
    fn tag(&self) -> &str {
        self.message.split(' ').next().unwrap_or_default()
    }
}

/// The calls of one route's run: each starts with a unique tag and holds forged frames, long
/// multi-byte characters or escapes exactly where the limit cuts, in the message or in a
/// field value. `overhead` is the frame's length without the rendered text.
fn calls(route: &str, overhead: usize) -> Vec<Call> {
    let limit = DEFAULT_MAX_LEN;
    // Where the text must end for the frame to be exactly the limit, and where the cut falls
    // when it is longer (the marker takes the rest).
    let fits = limit - overhead;
    let cut = limit - TRUNCATION_MARKER.len() - overhead;
    let mut out: Vec<Call> = Vec::new();
    // Forged frames, aligned so one starts exactly at the limit, or a byte after it (where a
    // stock imtcp starts the record it makes of the rest of an oversized frame): every length
    // from 8 bytes under to 8 bytes over the limit, then 7,900 to 70,000 bytes; every third
    // in a field value (quoted: `v="..."`) rather than the message.
    let lengths =
        (fits - 8..=fits + 8).chain([7_900, 9_001, 12_345, 16_384, 32_768, 50_000, 70_000]);
    for len in lengths {
        let i = out.len();
        let tag = format!("{route}-{i:03}");
        let in_value = i % 3 == 2;
        // The rendered text before the forged bytes, and after them.
        let (before, after) = if in_value { (tag.len() + 4, 1) } else { (tag.len() + 1, 0) };
        let forged = FORGED[i % 2];
        let start = fits + i / 2 % 2;
        let phase = (before + forged.len() - start % forged.len()) % forged.len();
        let body: String = forged.chars().cycle().skip(phase).take(len - before - after).collect();
        out.push(if in_value {
            let rendered = format!("{tag} v=\"{body}\"");
            Call { message: tag, value: Some(body), rendered }
        } else {
            let message = format!("{tag} {body}");
            Call { rendered: message.clone(), message, value: None }
        });
    }
    // A two-, three- and four-byte character, and an escape of two and of six bytes, at
    // every offset against the cut.
    for unit in ["é", "€", "😀", "\n", "\u{1b}"] {
        let rendered_unit = unit.replace('\n', "\\n").replace('\u{1b}', "\\u{1b}");
        for k in 0..rendered_unit.len() {
            let tag = format!("{route}-{:03} ", out.len());
            let lead = "a".repeat(cut - k - tag.len());
            let message = format!("{tag}{lead}{}", unit.repeat(200));
            let rendered = format!("{tag}{lead}{}", rendered_unit.repeat(200));
            out.push(Call { message, value: None, rendered });
        }
    }
    out
}

/// What the limit allows: the frame is whole when it fits, else cut with the marker at its
/// end, never inside a character or an escape, and never longer than the limit.
fn check_record(route: &str, call: &Call, record: &Record, overhead: usize) {
    let rendered = &call.rendered;
    let whole = overhead + rendered.len() <= DEFAULT_MAX_LEN;
    assert!(record.raw.len() <= DEFAULT_MAX_LEN, "{route}: {} bytes", record.raw.len());
    assert_eq!(record.app_name, "probe", "{route}: {record:?}");
    assert_eq!(record.procid, std::process::id().to_string(), "{route}");
    let msg = record.msg.trim_start();
    if whole {
        assert_eq!(msg, rendered, "{route}: cut though it fits");
        return;
    }
    let kept = msg
        .strip_suffix(TRUNCATION_MARKER)
        .unwrap_or_else(|| panic!("{route}: no marker at the end: ...{}", tail(msg)));
    assert!(rendered.starts_with(kept), "{route}: the kept part is not the message's start");
    let backslashes = kept.bytes().rev().take_while(|&b| b == b'\\').count();
    let open = kept.rfind("\\u").is_some_and(|i| !kept[i..].contains('}'));
    assert!(backslashes % 2 == 0 && !open, "{route}: cut inside an escape: ...{}", tail(kept));
    assert!(record.raw.len() + 10 >= DEFAULT_MAX_LEN, "{route}: cut far too much");
}

fn tail(s: &str) -> &str {
    let mut at = s.len().saturating_sub(16);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    &s[at..]
}

#[test]
#[ignore = "needs rsyslogd and rsyslog-gnutls: run by .ci/run"]
fn no_value_of_any_length_makes_rsyslog_hold_a_second_record() {
    let rsyslog = Rsyslog::start().expect("start rsyslogd");
    for route in ROUTES {
        let fallback = Captured::default();
        let log = sink(&rsyslog, route, &fallback);
        // The header's length, from a short message rsyslog stores as sent.
        let probe = format!("{}-probe", route.name);
        log.info(&probe);
        let found = rsyslog.wait_for(WAIT, |r| r.msg.trim_start() == probe);
        let record = found.unwrap_or_else(|| panic!("{}: nothing arrived", route.name));
        assert_eq!(record.input, route.input);
        let overhead = record.raw.len() - probe.len();
        let sent = calls(route.name, overhead);
        let prefix = format!("{}-", route.name);
        let ours = |r: &Record| r.msg.trim_start().starts_with(&prefix) && r.msg != record.msg;
        // In small groups, so a datagram never meets a full socket buffer.
        let mut so_far = 0;
        for group in sent.chunks(8) {
            for call in group {
                match &call.value {
                    Some(v) => logger::info!(log, "{}", call.message; v = v),
                    None => log.info(&call.message),
                }
            }
            log.flush();
            so_far += group.len();
            let got = rsyslog.wait_for_count(WAIT, so_far, ours);
            assert!(got.len() >= so_far, "{}: {} of {so_far} arrived", route.name, got.len());
        }
        let records: Vec<Record> = rsyslog.records().into_iter().filter(ours).collect();
        assert_eq!(records.len(), sent.len(), "{}: one record per call", route.name);
        for (call, r) in sent.iter().zip(&records) {
            let tag = call.tag();
            assert!(r.msg.trim_start().starts_with(tag), "{}: out of order", route.name);
            check_record(route.name, call, r, overhead);
        }
        assert_eq!(fallback.text(), "", "{}", route.name);
    }
    let all = rsyslog.records();
    let forged: Vec<&Record> = all
        .iter()
        .filter(|r| r.hostname.contains("evilhost") || r.app_name == "sshd" || r.severity == 1)
        .collect();
    assert!(forged.is_empty(), "forged records: {forged:#?}");
    let ours = all.iter().filter(|r| r.app_name == "probe").count();
    assert_eq!(ours, all.len(), "records that are not ours: {:#?}", &all[..all.len().min(3)]);
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn the_default_format_parses_on_the_stock_unix_socket() {
    // `/dev/log` as shipped: imuxsock with its special local parser. The default (RFC 3164,
    // glibc's format) comes out with the right APP-NAME, PROCID and HOSTNAME, and the
    // message intact.
    let rsyslog = Rsyslog::start_without_tls().expect("start rsyslogd");
    let log = Syslog::new(SyslogTarget::Unix(rsyslog.socket_path()), "probe")
        .with_facility(Facility::Mail);
    logger::warning!(log, "default-format é \u{1b}[31m\n[AUDIT] x"; user = "al ice", n = 3);
    let r = rsyslog.wait_for(WAIT, |r| r.msg.contains("default-format")).expect("arrived");
    assert_eq!(r.input, Input::Unix);
    assert_eq!(
        (r.app_name.as_str(), r.procid.as_str()),
        ("probe", &*std::process::id().to_string())
    );
    assert_eq!(r.hostname, hostname());
    assert_eq!((r.facility, r.severity), (2, 4));
    assert_eq!(r.tag, format!("probe[{}]:", std::process::id()));
    assert_eq!(r.msg, r#" default-format é \u{1b}[31m\n[AUDIT] x user="al ice" n=3"#);
    // What RFC 5424 would have looked like there: the reason for the default.
    let old = Syslog::new(SyslogTarget::Unix(rsyslog.socket_path()), "probe")
        .with_format(SyslogFormat::Rfc5424);
    old.info("as-5424");
    let r = rsyslog.wait_for(WAIT, |r| r.msg.contains("as-5424")).expect("arrived");
    assert_eq!(r.app_name, "1", "stock imuxsock misreads RFC 5424 (if this changed, revisit)");
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn rfc5424_arrives_intact_over_unix_udp_and_tcp() {
    let rsyslog = Rsyslog::start_without_tls().expect("start rsyslogd");
    for input in [Input::UnixNoSpecialParser, Input::Udp, Input::Tcp] {
        let log = Syslog::new(target(&rsyslog, input), "probe")
            .with_format(SyslogFormat::Rfc5424)
            .with_hostname("testhost");
        let needle = format!("intact-{input:?}");
        logger::audit_info!(log, "{} é\n[AUDIT] forged", needle; user = "al ice", n = 3);
        let r = rsyslog.wait_for(WAIT, |r| r.msg.contains(&needle)).expect("arrived");
        assert_eq!(r.protocol_version, "1");
        assert_eq!((r.facility, r.severity), (16, 6));
        assert_eq!((r.hostname.as_str(), r.app_name.as_str()), ("testhost", "probe"));
        assert_eq!(r.procid, std::process::id().to_string());
        assert_eq!(r.msg, format!(r#"[AUDIT] {needle} é\n[AUDIT] forged user="al ice" n=3"#));
        let n = rsyslog.records().iter().filter(|r| r.msg.contains(&needle)).count();
        assert_eq!(n, 1, "one call, one record");
    }
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn tcp_framing_keeps_many_messages_apart_in_order() {
    let rsyslog = Rsyslog::start_without_tls().expect("start rsyslogd");
    let log = Syslog::new(SyslogTarget::Tcp(rsyslog.tcp_addr()), "probe");
    for i in 0..2000 {
        logger::info!(log, "burst"; i = i);
    }
    log.flush();
    let got = rsyslog.wait_for_count(WAIT, 2000, |r| r.msg.starts_with("burst"));
    assert_eq!(got.len(), 2000);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.msg, format!("burst i={i}"));
    }
    assert_eq!(log.stats().fell_back, 0);
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn checksummed_lines_validate_as_rsyslog_writes_them() {
    // Lines as rsyslog writes its files (RSYSLOG_FileFormat: `timestamp host tag msg`, a
    // space after the tag), one of them cut to the limit: Boulder's validator, which takes
    // the checksum positionally after the tag and checks it against the rest of the line,
    // accepts them, and so does ours for the RFC 3164 ones (rsyslog writes an RFC 5424
    // record's tag as `probe[pid]`, without the colon our validator looks for); a changed
    // byte fails both.
    let rsyslog = Rsyslog::start_without_tls().expect("start rsyslogd");
    let boulder = |line: &str| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.len() > 4
            && logger::checksum(fields[4..].join(" ").as_bytes()) == fields[3].as_bytes()
    };
    for (input, format) in [
        (Input::Unix, SyslogFormat::Rfc3164),
        (Input::Tcp, SyslogFormat::Rfc3164),
        (Input::Tcp, SyslogFormat::Rfc5424),
    ] {
        let log =
            Syslog::new(target(&rsyslog, input), "probe").with_format(format).with_checksum(true);
        let needle = format!("sum-{input:?}-{format}");
        logger::info!(log, "{} é \u{7}", needle; pad = "x".repeat(9_000));
        logger::info!(log, "{} short", needle);
        let got = rsyslog.wait_for_count(WAIT, 2, |r| r.msg.contains(&needle));
        assert_eq!(got.len(), 2);
        assert!(got[0].msg.ends_with(TRUNCATION_MARKER));
        for r in &got {
            let line = format!("{} {} {} {}", r.timestamp, r.hostname, r.tag, r.msg.trim_start());
            let flipped = line.replacen(&needle, &needle.to_uppercase(), 1);
            assert!(boulder(&line) && !boulder(&flipped), "{line}");
            if format == SyslogFormat::Rfc3164 {
                assert_eq!(logger::check_line(line.as_bytes()), logger::LineCheck::Ok, "{line}");
                let bad = logger::check_line(flipped.as_bytes());
                assert!(matches!(bad, logger::LineCheck::Bad { .. }), "{flipped}");
            }
        }
    }
}

/// The daemon restarts in the middle of a run: lines sent while it was down appear on the
/// fallback, delivery resumes, and every line is in rsyslog or on the fallback.
fn restart_in_the_middle(rsyslog: &mut Rsyslog, input: Input) {
    let fallback = Captured::default();
    let tag = format!("{input:?}").to_lowercase();
    let log = Syslog::new(target(rsyslog, input), "probe")
        .with_tls_ca_pem(rsyslog.ca_pem())
        .with_retry_interval(Duration::from_millis(20))
        .with_fallback(fallback.clone());
    let mut n = 0;
    let mut send = |count: usize| {
        for _ in 0..count {
            logger::info!(log, "restart"; run = tag, n = n);
            n += 1;
        }
        log.flush();
    };
    // Logs a line at a time until the fallback shows `what`.
    let until = |send: &mut dyn FnMut(usize), what: &str| {
        wait_until(WAIT, || {
            send(1);
            fallback.text().contains(what)
        })
    };
    send(20);
    let first = rsyslog.wait_for_count(WAIT, 20, |r| r.msg.contains(&format!("run={tag}")));
    assert!(first.len() >= 20);
    rsyslog.kill().unwrap();
    // Logging on while it is down: the outage shows on the fallback.
    assert!(until(&mut send, "unavailable"), "no outage notice: {}", fallback.text());
    send(10);
    rsyslog.restart().unwrap();
    assert!(until(&mut send, "is back"), "delivery did not resume: {}", fallback.text());
    send(20);
    let total = n;
    let pattern = format!("run={tag} n=");
    let number =
        |s: &str| -> Option<u64> { s.split(&pattern).nth(1)?.split(' ').next()?.parse().ok() };
    let in_rsyslog =
        |rs: &Rsyslog| -> Vec<u64> { rs.records().iter().filter_map(|r| number(&r.msg)).collect() };
    // The last lines are delivered once the daemon has read them.
    wait_until(WAIT, || in_rsyslog(rsyslog).contains(&(total - 1)));
    let text = fallback.text();
    let on_stderr: Vec<u64> = text.lines().filter_map(number).collect();
    let all: std::collections::BTreeSet<u64> =
        in_rsyslog(rsyslog).into_iter().chain(on_stderr.iter().copied()).collect();
    let lost: Vec<u64> = (0..total).filter(|n| !all.contains(n)).collect();
    let replayed = text.lines().filter(|l| l.contains(REPLAY_MARKER)).count();
    println!(
        "{tag}: {total} lines, {} on stderr ({replayed} replayed), lost {lost:?}",
        on_stderr.len()
    );
    assert!(lost.is_empty(), "{tag}: lost {lost:?}");
    for l in text.lines() {
        assert!(
            l.starts_with("logger: probe ") || l.starts_with('<'),
            "{tag}: not one record: {l}"
        );
    }
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn restarts_lose_nothing_over_unix_and_tcp() {
    let mut rsyslog = Rsyslog::start_without_tls().expect("start rsyslogd");
    restart_in_the_middle(&mut rsyslog, Input::Unix);
    restart_in_the_middle(&mut rsyslog, Input::Tcp);
}

#[test]
#[ignore = "needs rsyslogd and rsyslog-gnutls: run by .ci/run"]
fn tls_delivers_to_gtls_and_a_restart_loses_nothing() {
    let mut rsyslog = Rsyslog::start().expect("start rsyslogd");
    let log = Syslog::new(target(&rsyslog, Input::Tls), "probe").with_tls_ca_pem(rsyslog.ca_pem());
    logger::info!(log, "over gtls é"; k = "v w");
    let r = rsyslog.wait_for(WAIT, |r| r.msg.contains("over gtls")).expect("arrived");
    assert_eq!(r.input, Input::Tls);
    assert_eq!((r.app_name.as_str(), r.hostname), ("probe", hostname()));
    assert_eq!(r.msg, r#"over gtls é k="v w""#);
    // By name too (the certificate is for localhost and 127.0.0.1).
    let by_name = Syslog::new(
        format!("tls:localhost:{}", rsyslog.tls_addr().port()).parse().unwrap(),
        "probe",
    )
    .with_tls_ca_file(rsyslog.ca_path());
    by_name.info("gtls by name");
    assert!(rsyslog.wait_for(WAIT, |r| r.msg.contains("gtls by name")).is_some());
    restart_in_the_middle(&mut rsyslog, Input::Tls);
}

#[test]
#[ignore = "needs rsyslogd and rsyslog-gnutls: run by .ci/run"]
fn tls_refuses_a_wrong_name_and_an_unknown_ca_and_never_sends_plain_text() {
    let rsyslog = Rsyslog::start().expect("start rsyslogd");
    let other = test_support::TestCa::new(&["127.0.0.1"]);
    let cases = [
        (
            "wrong name",
            Syslog::new(target(&rsyslog, Input::Tls), "probe")
                .with_tls_ca_pem(rsyslog.ca_pem())
                .with_tls_server_name("wrong.example"),
            "not valid for name",
        ),
        (
            "unknown CA",
            Syslog::new(target(&rsyslog, Input::Tls), "probe").with_tls_ca_pem(&other.ca_pem),
            "UnknownIssuer",
        ),
    ];
    for (case, log, why) in cases {
        let fallback = Captured::default();
        let log = log.with_fallback(fallback.clone());
        logger::info!(log, "refused"; case = case);
        log.flush();
        let text = fallback.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{case}: a notice and the line: {text}");
        assert!(lines[0].contains("unavailable") && lines[0].contains(why), "{case}: {text}");
        assert!(lines[1].contains("refused"), "{case}: {text}");
        assert_eq!(log.stats().fell_back, 1);
    }
    // Nothing reached rsyslog, on the TLS input or any other.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!rsyslog.records().iter().any(|r| r.msg.contains("refused")));
}

/// The environment variable that turns [`child_logs_what_stdin_says`] into a probe.
const CHILD_SOCKET: &str = "LOGGER_TEST_CHILD_SYSLOG_SOCKET";

/// Helper for [`undeliverable_lines_reach_the_real_stderr`], run in a child process: logs each
/// stdin line through a `Syslog` with the default fallback (the real stderr) and answers
/// `CHILD-OK` on stdout once the line is sent or fell back. Without the environment variable
/// it has nothing to do.
#[test]
#[ignore = "helper: runs in a child process of undeliverable_lines_reach_the_real_stderr"]
fn child_logs_what_stdin_says() {
    let Some(socket) = std::env::var_os(CHILD_SOCKET) else { return };
    let log = Syslog::new(SyslogTarget::Unix(socket.into()), "probe")
        .with_retry_interval(Duration::from_millis(10));
    for line in std::io::stdin().lock().lines() {
        log.info(&line.unwrap());
        log.flush();
        println!("CHILD-OK");
    }
}

#[test]
#[ignore = "needs rsyslogd: run by .ci/run"]
fn undeliverable_lines_reach_the_real_stderr() {
    let mut rsyslog = Rsyslog::start_without_tls().expect("start rsyslogd");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_logs_what_stdin_says", "--include-ignored", "--nocapture"])
        .env(CHILD_SOCKET, rsyslog.socket_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut say = |text: &str| {
        writeln!(stdin, "{text}").unwrap();
        let acked = stdout.by_ref().map(Result::unwrap).any(|l| l == "CHILD-OK");
        assert!(acked, "the child exited before logging {text:?}");
    };
    say("child-before");
    assert!(rsyslog.wait_for(WAIT, |r| r.msg.contains("child-before")).is_some());
    rsyslog.kill().unwrap();
    say("child-while-down");
    rsyslog.restart().unwrap();
    let mut n = 0;
    let resumed = wait_until(WAIT, || {
        n += 1;
        say(&format!("child-after-{n}"));
        rsyslog.records().iter().any(|r| r.msg.contains("child-after-"))
    });
    assert!(resumed);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unavailable"), "{stderr}");
    let line = stderr.lines().find(|l| l.ends_with("]: child-while-down"));
    assert!(line.is_some_and(|l| l.starts_with('<')), "not on stderr as a record: {stderr}");
    assert!(stderr.contains("is back; delivering again"), "{stderr}");
    assert!(!rsyslog.records().iter().any(|r| r.msg.contains("child-while-down")));
}
