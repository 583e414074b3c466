//! The `mail-test-srv` binary: flags, the one start-up line, and graceful shutdown on SIGTERM
//! and SIGINT.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Client;
use test_support::{Held, accepts, free_port, loopback, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_mail-test-srv");

fn free_addr() -> SocketAddr {
    loopback(free_port())
}

/// Starts the binary on free ports and waits until its HTTP API accepts connections; the
/// guard kills it if a test fails before it exits by itself.
fn start(extra: &[&str]) -> (Held, SocketAddr, SocketAddr) {
    let (smtp, http) = (free_addr(), free_addr());
    let mut child = Held::spawn(
        Command::new(BIN)
            .args(["--smtp", &smtp.to_string(), "--http", &http.to_string()])
            .args(extra),
    )
    .unwrap();
    let up = wait_until(Duration::from_secs(10), || !child.is_running() || accepts(http));
    assert!(up && child.is_running(), "HTTP never came up\n{}", child.transcript());
    (child, smtp, http)
}

/// Waits (bounded) for the child to exit; returns its exit code, stdout and stderr.
fn finish(mut child: Held) -> (Option<i32>, String, String) {
    let status = child.wait_exit(Duration::from_secs(10)).expect("did not exit");
    child.wait_output(Duration::from_secs(5));
    (status.code(), child.stdout().text(), child.stderr().text())
}

#[tokio::test]
async fn sigterm_says_421_to_sessions_and_exits_zero_after_one_startup_line() {
    let (guard, smtp, _http) =
        start(&["--auth", "user:hunter2", "--close-chance", "5", "--seed", "3", "--starttls"]);
    let mut c = Client::greeted(smtp).await;
    assert!(c.cmd("EHLO client.test").await.contains("250-STARTTLS\r\n"));
    guard.signal("TERM").unwrap();
    assert_eq!(c.reply().await, "421 4.3.2 mail-test-srv.test Service shutting down\r\n");
    let (code, out, err) = tokio::task::spawn_blocking(move || finish(guard)).await.unwrap();
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        lines[0]
            .contains(&format!(" 6 mail-test-srv mail-test-srv {version} started smtp={smtp} ")),
        "{out}"
    );
    for field in ["tls=starttls", "auth_user=user", "close_chance=5", "seed=3", "fault_stage=mail"]
    {
        assert!(lines[0].contains(field), "{field} missing: {out}");
    }
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "the password leaked: {out}{err}"
    );
    assert!(lines[1].contains("mail-test-srv stopped connections=1 messages=0"), "{out}");
}

#[tokio::test]
async fn sigint_stops_it_too() {
    let (guard, smtp, http) = start(&[]);
    let mut c = Client::greeted(smtp).await;
    c.cmd("EHLO client.test").await;
    c.send_message("a@x.test", "b@x.test", "one\r\n").await;
    let (status, body) = common::get(format!("http://{http}/count")).await;
    assert_eq!((status, body.as_str()), (200, "1\n"));
    guard.signal("INT").unwrap();
    let (code, out, _) = tokio::task::spawn_blocking(move || finish(guard)).await.unwrap();
    assert_eq!(code, Some(0));
    assert!(out.contains("stopped connections=1 messages=1 deliveries=1"), "{out}");
}

#[test]
fn bad_flags_are_refused_with_a_clear_error() {
    for (args, expect) in [
        (vec!["--close-chance", "150"], "not a percentage from 0 to 100"),
        (vec!["--fault-stage", "lunch"], "unknown stage"),
        (vec!["--fault-mode", "explode"], "unknown fault mode"),
        (vec!["--auth", "nocolon"], "expected USER:PASS"),
        (vec!["--cert", "/nonexistent.pem"], "--key"),
        (vec!["--smtp", "not-an-address"], "invalid socket address"),
        (vec!["--idle-timeout", "999999999999999999999h"], "is not a duration"),
        (vec!["--idle-timeout", "5"], "\"5\" has no unit: add one, e.g. 5s or 5ms"),
        (vec!["--idle-timeout", "0s"], "the timeout must be longer than zero"),
        (vec!["--fault-delay", "fast"], "is not a duration"),
        (vec!["--bare-lf", "sometimes"], "unknown bare-LF policy"),
    ] {
        let out = Command::new(BIN).args(&args).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    let (smtp, http) = (free_addr().to_string(), free_addr().to_string());
    let out = Command::new(BIN)
        .args([
            "--smtp",
            &smtp,
            "--http",
            &http,
            "--cert",
            "/nonexistent.pem",
            "--key",
            "/nonexistent.key",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot read /nonexistent.pem"));
}

#[test]
fn a_taken_port_is_a_clear_failure() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let http = free_addr().to_string();
    let out = Command::new(BIN)
        .args(["--smtp", &addr, "--http", &http])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cannot start") && stdout.contains("Address already in use"),
        "{stdout}"
    );
}

#[tokio::test]
async fn cert_and_key_files_give_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = mail_test_srv::self_signed().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let (guard, smtp, _http) =
        start(&["--cert", cert_path.to_str().unwrap(), "--key", key_path.to_str().unwrap()]);

    let config = test_support::certs::client_config(&cert);
    let tcp = tokio::net::TcpStream::connect(smtp).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.unwrap();
    let mut tls = tokio::io::BufReader::new(tls);
    let mut greeting = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut tls, &mut greeting).await.unwrap();
    assert_eq!(greeting, "220 mail-test-srv.test ESMTP mail-test-srv\r\n");

    guard.signal("TERM").unwrap();
    let (code, out, _) = tokio::task::spawn_blocking(move || finish(guard)).await.unwrap();
    assert_eq!(code, Some(0));
    assert!(out.contains("tls=implicit"), "{out}");
    assert!(!out.contains("PRIVATE KEY"), "{out}");
}
