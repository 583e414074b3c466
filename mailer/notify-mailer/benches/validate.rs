//! A million-line recipients list through `notify-mailer --check` (read, validate, dedup,
//! fingerprint; nothing sent): the time it takes and its peak memory, against the file's size.
//! The bar: under 10 s, and a peak RSS under 4× the file.
//!
//! `cargo bench -p notify-mailer --bench validate` (release). Peak RSS is the process's
//! `VmHWM` from `/proc`, read every few milliseconds until it exits.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES: usize = 1_000_000;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let body = dir.path().join("body.txt");
    std::fs::write(&body, "Hello {{email}}\n").unwrap();
    let plain = dir.path().join("list.txt");
    write_list(&plain, |out, i| writeln!(out, "customer{i:07}@example.com"));
    let csv = dir.path().join("list.csv");
    write_list(&csv, |out, i| {
        if i == 0 {
            writeln!(out, "email,name,plan")?;
        }
        // Every thousandth row has a quoted field over two lines, one of them a `#` line.
        if i % 1000 == 7 {
            writeln!(out, "customer{i:07}@example.com,\"Name {i}\n# still the name\",pro")
        } else {
            writeln!(out, "customer{i:07}@example.com,Name {i},free")
        }
    });
    println!(
        "notify-mailer --check, {LINES} recipients (release build; a loaded machine: preliminary)"
    );
    // The CSV run's subject uses a column, so every row's `plan` is checked for line breaks.
    for (what, path, subject) in [("plain list", &plain, "Hi"), ("CSV", &csv, "Hi {{plan}}")] {
        let size = std::fs::metadata(path).unwrap().len();
        let (elapsed, peak_kib, stdout) = check(path, &body, subject);
        assert!(stdout.contains(&format!("{LINES} recipients")), "{stdout}");
        let ratio = (peak_kib * 1024) as f64 / size as f64;
        println!(
            "  {what:<10} {:>6.1} MB: {:>5.2} s, peak RSS {:>6.1} MB = {ratio:.2}x the file \
             (bar: < 10 s, < 4x)",
            size as f64 / 1e6,
            elapsed.as_secs_f64(),
            peak_kib as f64 * 1024.0 / 1e6
        );
    }
}

fn write_list(path: &Path, mut line: impl FnMut(&mut dyn Write, usize) -> std::io::Result<()>) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..LINES {
        line(&mut out, i).unwrap();
    }
    out.flush().unwrap();
}

/// Runs `--check` and returns its wall time, peak RSS (KiB) and stdout.
fn check(list: &Path, body: &Path, subject: &str) -> (Duration, u64, String) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_notify-mailer"))
        .args(["--check", "--from", "ops@example.com", "--subject", subject, "--body"])
        .arg(body)
        .arg("--recipients")
        .arg(list)
        .stdout(Stdio::piped())
        .spawn()
        .expect("notify-mailer");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_path).ok().and_then(|s| vm_hwm(&s)) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let elapsed = started.elapsed();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(status.success(), "{status}: {stdout}");
    (elapsed, peak, stdout)
}

fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
