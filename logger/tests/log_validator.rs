//! The `log-validator` binary on files written by the logger itself: lines validate, a copy
//! with one byte flipped fails, and `--follow` reports a bad line appended later.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use logger::{Level, Logger, Stdout};

const BIN: &str = env!("CARGO_BIN_EXE_log-validator");

/// A log file as our Stdout writes it with the checksum on, plus rsyslog-format lines.
fn write_log(path: &Path) -> usize {
    let out = Stdout::with_writer(Vec::new(), "svc", Level::Debug).with_checksum(true);
    out.info("started");
    logger::warning!(out, "retrying {}", "now"; attempt = 2, reply = "421 try \"later\"\n");
    logger::audit_err!(out, "denied"; user = "mallory\r\n22:00:00.000000 6 svc forged");
    logger::info!(out, "{:?}", b"\xff\x00 bytes"; big = "é".repeat(5000));
    let mut text = String::from_utf8(out.into_writer()).unwrap();
    let mut line = String::from("2026-12-01T10:00:00.000001+00:00 host datacenter 6 svc[7]: ");
    logger::write_checksummed(&mut line, "Caught SIGTERM");
    text.push_str(&line);
    text.push_str("\n\n"); // a blank line is skipped
    std::fs::write(path, text).unwrap();
    5
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap(), text(out.stdout), text(out.stderr))
}

#[test]
fn lines_the_logger_wrote_validate_and_a_flipped_byte_fails() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.log");
    let lines = write_log(&good);
    let good_s = good.to_str().unwrap();
    let (code, stdout, stderr) = run(&[good_s]);
    assert_eq!(
        (code, stdout.trim()),
        (0, format!("{good_s}: ok={lines} bad=0 malformed=0").as_str()),
        "{stderr}"
    );

    // Flip one byte of the second line's message: that line, and only it, is bad.
    let mut bytes = std::fs::read(&good).unwrap();
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let at = second + bytes[second..].windows(5).position(|w| w == b"retry").unwrap();
    bytes[at] ^= 0x20;
    let flipped = dir.path().join("flipped.log");
    std::fs::write(&flipped, &bytes).unwrap();
    let flipped_s = flipped.to_str().unwrap();
    let (code, stdout, stderr) = run(&[good_s, flipped_s]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{flipped_s}: ok={} bad=1 malformed=0", lines - 1)),
        "{stdout}"
    );
    assert!(stderr.starts_with(&format!("{flipped_s}:2: bad checksum (found ")), "{stderr}");
    assert!(stderr.contains("Retrying now"), "{stderr}");
}

#[test]
fn malformed_lines_are_counted_and_fail_only_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.log");
    std::fs::write(&path, "Dec  1 10:00:00 host cron[7]: (root) CMD (run-parts)\n").unwrap();
    let p = path.to_str().unwrap();
    let (code, stdout, _) = run(&[p]);
    assert_eq!((code, stdout.trim()), (0, format!("{p}: ok=0 bad=0 malformed=1").as_str()));
    let (code, _, stderr) = run(&["--strict", p]);
    assert_eq!(code, 1);
    assert!(stderr.contains(":1: malformed: no 6-character base64url checksum"), "{stderr}");
}

#[test]
fn a_file_without_line_breaks_is_read_in_bounded_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-huge-line.log");
    std::fs::write(&path, "x".repeat((1 << 20) * 2 + 5)).unwrap();
    let p = path.to_str().unwrap();
    let (code, stdout, _) = run(&[p]);
    assert_eq!((code, stdout.trim()), (0, format!("{p}: ok=0 bad=0 malformed=3").as_str()));
}

#[test]
fn usage_errors_and_unreadable_files_exit_2() {
    let (code, _, stderr) = run(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no FILE given") && stderr.contains("usage: log-validator"));
    let (code, _, stderr) = run(&["/nonexistent/x.log"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/x.log"), "{stderr}");
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("--follow"));
}

#[test]
fn follow_reports_a_bad_line_appended_later_through_the_logger() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    write_log(&path);
    let mut child = Command::new(BIN)
        .args(["--follow", "--log-checksum", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait_for = |needle: &str| -> Result<String, String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        Err(format!("no line with {needle:?} in {seen:#?}"))
    };
    let started = wait_for("following 1 file(s)");
    let mut f = std::fs::File::options().append(true).open(&path).unwrap();
    f.write_all(b"2026-12-01T10:00:01+00:00 host svc[7]: 0MNK7A Hello, World?\n").unwrap();
    let report = wait_for("bad checksum");
    let _ = child.kill();
    let _ = child.wait();
    let report = report.unwrap();
    started.unwrap();
    assert!(report.contains(" 3 log-validator ") && report.contains("expected "), "{report}");
    // The validator's own line carries a checksum (--log-checksum) over what follows it.
    // (The validator never checks its own lines, so this is checked here by hand.)
    let (_, own) = report.split_once(" 3 log-validator ").unwrap();
    let (sum, rest) = own.split_once(' ').unwrap();
    assert_eq!(sum.as_bytes(), logger::checksum(rest.as_bytes()), "{report}");
}
