//! `notify-mailer` run as an operator would: a real child process with flags, files on disk,
//! a `mail-test-srv` on loopback observed over its HTTP API.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::bins::{self, Output, Running};
use e2e::srv::{Http, stat};
use mail_test_srv::{Options, TestServer};
use test_support::{signal, wait_until};

/// Generous: a debug build on a busy 2-core CI machine. The runs take a second or two.
const LIMIT: Duration = Duration::from_secs(60);

/// A temporary directory with the run's input files.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Files { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn put(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write input file");
        path.to_str().expect("utf-8 temp path").to_owned()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `n` addresses `user1@example.test` ... one per line, under a comment.
    fn list(&self, n: usize) -> String {
        let mut text = String::from("# e2e recipients\n");
        for i in 1..=n {
            text.push_str(&format!("user{i}@example.test\n"));
        }
        self.put("list.txt", &text)
    }
}

/// Runs notify-mailer with `args` on a blocking thread (the test server lives on this runtime).
async fn notify_mailer(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let program = bins::notify_mailer().expect("notify-mailer binary");
        bins::run(&program, &args, LIMIT).expect("notify-mailer ran")
    })
    .await
    .expect("runner thread")
}

/// The flags every sending run uses, pointing at `server`, with fast retries (faults here are
/// injected: a long backoff would only make the test slow).
fn base_args(server: SocketAddr, files: &Files, list: &str) -> Vec<String> {
    let body = files.put("body.txt", "Hello {{email}},\nthe service restarts tonight.\n");
    let failures = files.path("failed.csv");
    let resume = files.path("resume.txt");
    [
        "--server",
        &server.to_string(),
        "--tls",
        "none",
        "--from",
        "ops@example.test",
        "--subject",
        "Maintenance notice",
        "--body",
        &body,
        "--recipients",
        list,
        "--failures-file",
        failures.to_str().unwrap(),
        "--resume-file",
        resume.to_str().unwrap(),
    ]
    .iter()
    .chain(&bins::FAST_RETRIES)
    .map(|s| s.to_string())
    .collect()
}

async fn http_count(http: SocketAddr) -> u64 {
    tokio::task::spawn_blocking(move || Http::new(http).count().expect("GET /count")).await.unwrap()
}

async fn http_stats(http: SocketAddr) -> serde_json::Value {
    tokio::task::spawn_blocking(move || Http::new(http).stats().expect("GET /stats")).await.unwrap()
}

async fn faulty_server(chance: f64, seed: u64) -> TestServer {
    TestServer::start(Options::default().with_close_chance(chance).with_seed(seed))
        .await
        .expect("start mail-test-srv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_500_messages_through_a_server_that_faults_35_percent() {
    let server = faulty_server(35.0, 4).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.list(500);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    // Faults inside transactions, however many, never look like a server that is down.
    args.extend(["--circuit-after", "100ms"].map(String::from));
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(http_count(http).await, 500, "{}", out.transcript());
    for event in ["event=smtp_421", "event=eof", "event=backoff", "event=reconnected"] {
        assert!(!out.lines_with(event).is_empty(), "no {event} in the log\n{}", out.transcript());
    }
    assert!(out.stdout.contains("  sent         500\n"), "{}", out.transcript());
    assert!(out.stdout.contains("  failed       0\n"), "{}", out.transcript());
    assert!(!files.path("failed.csv").exists(), "a failures file although nothing failed");

    // The body was personalised per recipient.
    let messages =
        tokio::task::spawn_blocking(move || Http::new(http).messages().unwrap()).await.unwrap();
    let to_7: Vec<_> =
        messages.iter().filter(|m| m["to"].to_string().contains("user7@example.test")).collect();
    assert_eq!(to_7.len(), 1);
    assert!(
        to_7[0]["body"].as_str().unwrap_or("").contains("Hello user7@example.test,"),
        "{:?}",
        to_7[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_connections_share_the_list() {
    let server = faulty_server(20.0, 9).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.list(200);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.extend(["--parallel".into(), "4".into()]);
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(http_count(http).await, 200);
    assert!(stat(&http_stats(http).await, "connections") >= 4, "{}", out.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_recipients_stop_the_run_before_any_connection() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.put(
        "list.txt",
        "# line 1 is a comment\nok1@example.test\nnot-an-address\n\nok2@example.test\nbroken@\nAlice <a@example.test>\n",
    );
    let out = notify_mailer(base_args(server.smtp_addr(), &files, &list)).await;

    assert_eq!(out.code(), Some(2), "{}", out.transcript());
    for line in [":3: ", ":6: ", ":7: "] {
        assert!(
            out.stderr.contains(&format!("list.txt{line}")),
            "no line {line}\n{}",
            out.transcript()
        );
    }
    assert!(out.stderr.contains("nothing was sent"), "{}", out.transcript());
    assert_eq!(stat(&http_stats(http).await, "connections"), 0, "it connected");
    assert_eq!(http_count(http).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_invalid_sends_to_the_valid_addresses() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.put("list.txt", "ok1@example.test\nnot-an-address\nok2@example.test\n");
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.push("--skip-invalid".into());
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert!(out.stderr.contains("list.txt:2: "), "{}", out.transcript());
    assert_eq!(http_count(http).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_logs_one_line_per_message_and_connects_nowhere() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.list(25);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.push("--dry-run".into());
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(out.lines_with("event=dry_run").len(), 25, "{}", out.transcript());
    assert_eq!(stat(&http_stats(http).await, "connections"), 0, "a dry run connected");
    assert!(out.stdout.contains("  would send   25\n"), "{}", out.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_opens_the_circuit_and_the_resume_file_holds_everyone() {
    // A port that was just free: nothing listens there, so every connect is refused at once.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let files = Files::new();
    let list = files.list(50);
    let mut args = base_args(SocketAddr::from(([127, 0, 0, 1], port)), &files, &list);
    set(&mut args, "--max-attempts", "3");
    set(&mut args, "--retry-base", "20ms");
    args.extend(["--parallel", "2"].map(String::from));
    let out = notify_mailer(args).await;

    stopped_as_unreachable(&out, &files);
    // One message's tries (4 refused connects, 20 + 40 + 80 ms of backoff), not 50 messages'.
    assert!(out.elapsed < Duration::from_secs(15), "took {:?}", out.elapsed);
    assert!(
        out.lines_with("event=connect ").len() <= 2 * 4,
        "every message spent its attempts:\n{}",
        out.transcript()
    );
}

/// A run of the 50 of `files.list` stopped by the circuit breaker: exit 1, one
/// `circuit_open`, everyone in the resume file as not attempted, nobody failed.
fn stopped_as_unreachable(out: &Output, files: &Files) {
    assert_eq!(out.code(), Some(1), "{}", out.transcript());
    assert_eq!(out.lines_with("event=circuit_open").len(), 1, "{}", out.transcript());
    let resume = std::fs::read_to_string(files.path("resume.txt")).expect("resume file");
    assert!(resume.contains("(not attempted: server unreachable)"), "{resume}");
    let expected: Vec<String> = (1..=50).map(|i| format!("user{i}@example.test")).collect();
    assert_eq!(rows(&resume), expected, "{resume}");
    assert!(!files.path("failed.csv").exists(), "an unreachable server is nobody's failure");
    assert!(out.stdout.contains("(stopped: the server is unreachable)"), "{}", out.transcript());
    assert!(out.stdout.contains("  not sent     50\n"), "{}", out.transcript());
}

/// A run of 50 against `server` that only the breaker's window can stop (every message would
/// retry for a minute).
async fn the_circuit_opens_after_its_window(server: SocketAddr, extra: &[&str]) {
    let files = Files::new();
    let list = files.list(50);
    let mut args = base_args(server, &files, &list);
    set(&mut args, "--max-attempts", "1000");
    set(&mut args, "--retry-base", "20ms");
    set(&mut args, "--retry-max", "200ms");
    args.extend(["--parallel", "2", "--circuit-after", "1s"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = notify_mailer(args).await;

    stopped_as_unreachable(&out, &files);
    let open = out.lines_with("event=circuit_open");
    let number = |key| test_support::field(open[0], key).and_then(|v| v.parse::<u64>().ok());
    assert!(number("quiet_ms").is_some_and(|ms| ms >= 1000), "{}", open[0]);
    assert!(number("failed_attempts").is_some_and(|n| n >= 3), "{}", open[0]);
    // The window (1 s) and a tick, plus start-up and the stop: far from the minute that
    // every message's retries would take.
    assert!(out.elapsed < Duration::from_secs(15), "took {:?}", out.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_opens_the_circuit_after_its_window_not_after_every_retry() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    the_circuit_opens_after_its_window(SocketAddr::from(([127, 0, 0, 1], port)), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_opens_the_circuit_after_its_window() {
    // Listening with a backlog of one and never accepting: the first connections complete
    // and wait for a greeting that never comes; once the backlog is full, connects hang.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let timeouts = ["--connect-timeout", "300ms", "--command-timeout", "300ms"];
    the_circuit_opens_after_its_window(addr, &timeouts).await;
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_after_the_message_in_flight_and_writes_a_resume_file() {
    stops_after_the_message_in_flight("INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_like_ctrl_c() {
    stops_after_the_message_in_flight("TERM").await;
}

/// Sends `sig` once 5 of 200 paced messages arrived: the run must stop, and every address
/// must be either delivered or in the resume file.
/// Runs notify-mailer with `args`, sends `sig` once the server has five deliveries (a `GET
/// /wait` long poll, inside the client's 30 s timeout), and returns what it printed.
async fn stopped_after_five(http: SocketAddr, args: Vec<String>, sig: &'static str) -> Output {
    tokio::task::spawn_blocking(move || {
        let program = bins::notify_mailer().expect("notify-mailer binary");
        let running = Running::start(&program, &args).expect("start notify-mailer");
        let fifth = Http::new(http).wait(5, Duration::from_secs(25)).expect("GET /wait");
        assert!(fifth.is_ok(), "deliveries after 25 s: {fifth:?}");
        signal(running.pid(), sig).expect("kill");
        running.wait(LIMIT).expect("notify-mailer exits after the signal")
    })
    .await
    .unwrap()
}

async fn stops_after_the_message_in_flight(sig: &'static str) {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.list(200);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.extend(["--sleep".into(), "20ms".into()]);

    let resume = files.path("resume.txt");
    let out = stopped_after_five(http, args, sig).await;

    assert_eq!(out.code(), Some(130), "{}", out.transcript());
    let received = http_count(http).await;
    assert!(received < 200, "SIG{sig} did not stop it");
    assert_eq!(out.lines_with("event=interrupted").len(), 1, "{}", out.transcript());
    let text = std::fs::read_to_string(&resume).expect("resume file");
    let unsent = rows(&text);
    assert_eq!(
        unsent.len() as u64 + received,
        200,
        "every address is either sent or in the resume file"
    );
    assert_eq!(unsent.last(), Some(&"user200@example.test"));
    assert!(out.stdout.contains("resume with  --recipients"), "{}", out.transcript());
    assert!(read_list_is_valid(&resume));
}

/// The resume file is itself a recipients file: a dry run over it succeeds.
fn read_list_is_valid(path: &Path) -> bool {
    let program = bins::notify_mailer().unwrap();
    let files = Files::new();
    let body = files.put("body.txt", "x\n");
    let out = bins::run(
        &program,
        &[
            "--dry-run",
            "--from",
            "a@example.test",
            "--subject",
            "s",
            "--body",
            &body,
            "--recipients",
            path.to_str().unwrap(),
        ],
        LIMIT,
    )
    .unwrap();
    out.code() == Some(0)
}

#[test]
fn help_mentions_every_flag() {
    let program = bins::notify_mailer().expect("notify-mailer binary");
    let out = bins::run(&program, &["--help"], LIMIT).unwrap();
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let flags = [
        "--server",
        "--from",
        "--subject",
        "--body",
        "--recipients",
        "--skip-invalid",
        "--tls",
        "--ca-file",
        "--username",
        "--password-file",
        "--helo-name",
        "--dry-run",
        "--sleep",
        "--parallel",
        "--retry-base",
        "--retry-max",
        "--max-attempts",
        "--connect-timeout",
        "--command-timeout",
        "--circuit-after",
        "--failures-file",
        "--resume-file",
        "--progress-interval",
        "--log-level",
        "--syslog",
        "--syslog-ca",
        "--log-format",
        "--log-checksum",
        "--html-body",
        "--header",
        "--rate",
        "--journal",
        "--fresh",
        "--no-journal",
        "--check",
        "--help",
        "--version",
    ];
    for flag in flags {
        assert!(out.stdout.contains(flag), "--help does not mention {flag}\n{}", out.stdout);
    }
    // It explains the inputs, the durations and the exit status, not just the flag names.
    for phrase in [
        "{{email}}",
        "500ms",
        "Exit status",
        "Ctrl-C",
        "email` column",
        "Circuit breaker",
        "resent",
        "14/s",
    ] {
        assert!(out.stdout.contains(phrase), "--help does not explain {phrase:?}\n{}", out.stdout);
    }
}

#[test]
fn readme_mentions_only_flags_that_exist() {
    let readme = bins::readme().expect("README.md");
    let checks = [
        ("### `notify-mailer`", bins::notify_mailer().expect("notify-mailer binary")),
        ("### `mail-test-srv`", e2e::srv::binary().expect("mail-test-srv binary")),
    ];
    for (heading, program) in checks {
        let section = bins::readme_section(&readme, heading);
        let flags = bins::flags_in(section);
        assert!(flags.len() >= 8, "README section {heading:?} lost its flags: {flags:?}");
        let help = bins::run(&program, &["--help"], LIMIT).unwrap().stdout;
        for flag in &flags {
            assert!(
                help.contains(flag.as_str()),
                "README {heading:?} mentions {flag}, which {} lacks",
                program.display()
            );
        }
    }
}

/// Sends 20 messages over TLS (`starttls` or `implicit`) with AUTH, trusting the server's
/// self-signed certificate through `--ca-file`; the password must never reach the log.
async fn sends_over_tls_with_auth(mode: &str) {
    use mail_test_srv::TlsOptions;
    let tls = match mode {
        "starttls" => TlsOptions::StartTls(None),
        _ => TlsOptions::Implicit(None),
    };
    let options = Options::default().with_tls(tls).with_auth("ops", "s3cret-pw");
    let server = TestServer::start(options).await.expect("start mail-test-srv");
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let ca = files.put("ca.pem", &server.certificate_pem().expect("a certificate"));
    let password = files.put("password", "s3cret-pw\n");
    let list = files.list(20);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    let at = args.iter().position(|a| a == "--tls").unwrap();
    args[at + 1] = mode.into();
    args.extend(
        ["--ca-file", &ca, "--username", "ops", "--password-file", &password].map(String::from),
    );
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(http_count(http).await, 20);
    let messages =
        tokio::task::spawn_blocking(move || Http::new(http).messages().unwrap()).await.unwrap();
    assert!(messages.iter().all(|m| m["tls"] == true && m["auth_user"] == "ops"), "{messages:?}");
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"), "password logged");
    assert!(out.stdout.contains(&format!("tls={mode}")), "{}", out.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_with_starttls_auth_and_a_private_ca() {
    sends_over_tls_with_auth("starttls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_with_implicit_tls_auth_and_a_private_ca() {
    sends_over_tls_with_auth("implicit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_run_after_one_login() {
    let options = Options::default().with_auth("ops", "right-pw");
    let server = TestServer::start(options).await.expect("start mail-test-srv");
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.list(20);
    let password = files.put("password", "wr0ng-pw\n");
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.extend(["--username", "ops", "--password-file", &password].map(String::from));
    let out = notify_mailer(args).await;

    // One failed login, not twenty: the first 535 stops the run, the rest is left to resume.
    assert_eq!(out.code(), Some(1), "{}", out.transcript());
    assert_eq!(stat(&http_stats(http).await, "connections"), 1, "{}", out.transcript());
    assert_eq!(out.lines_with("event=credentials_refused").len(), 1, "{}", out.transcript());
    let failed = std::fs::read_to_string(files.path("failed.csv")).expect("failures file");
    assert_eq!(rows(&failed).len(), 2, "header and the one address tried: {failed}");
    assert!(rows(&failed)[0] == "email,failure_reason", "{failed}");
    let resume = std::fs::read_to_string(files.path("resume.txt")).expect("resume file");
    assert_eq!(rows(&resume).len(), 19, "{resume}");
    assert!(out.stdout.contains("refused the credentials"), "{}", out.transcript());
    for text in [&out.stdout, &out.stderr, &failed, &resume] {
        assert!(!text.contains("wr0ng"), "the password leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_fails_without_sending() {
    use mail_test_srv::TlsOptions;
    let options = Options::default().with_tls(TlsOptions::StartTls(None));
    let server = TestServer::start(options).await.expect("start mail-test-srv");
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.list(2);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    let at = args.iter().position(|a| a == "--tls").unwrap();
    args[at + 1] = "starttls".into();
    let at = args.iter().position(|a| a == "--max-attempts").unwrap();
    args[at + 1] = "1".into();
    let out = notify_mailer(args).await;

    // The system store does not trust a fresh self-signed certificate: nothing may be sent.
    assert_eq!(out.code(), Some(1), "{}", out.transcript());
    assert_eq!(http_count(http).await, 0);
    let failed = std::fs::read_to_string(files.path("failed.csv")).expect("failures file");
    assert!(failed.to_lowercase().contains("certificate"), "{failed}");
}

/// A dry run of three messages with `extra` flags.
async fn dry_run_with(files: &Files, extra: &[&str]) -> Output {
    let list = files.list(3);
    let body = files.put("body.txt", "x\n");
    let mut args = ["--dry-run", "--from", "ops@example.test", "--subject", "s", "--body", &body]
        .map(String::from)
        .to_vec();
    args.extend(["--recipients".to_owned(), list]);
    args.extend(extra.iter().map(|s| s.to_string()));
    notify_mailer(args).await
}

/// The stdout lines in the short log format (`HH:MM:SS.ffffff 6 notify-mailer ...`).
fn log_lines(stdout: &str) -> Vec<&str> {
    let header = regex::Regex::new(r"^\d\d:\d\d:\d\d\.\d{6} \d notify-mailer ").unwrap();
    stdout.lines().filter(|l| header.is_match(l)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_checksum_puts_a_valid_checksum_on_every_stdout_line() {
    let files = Files::new();
    let out = dry_run_with(&files, &["--log-checksum"]).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let lines = log_lines(&out.stdout);
    assert!(lines.iter().filter(|l| l.contains("event=dry_run")).count() == 3, "{lines:#?}");
    for line in &lines {
        assert_eq!(logger::check_line(line.as_bytes()), logger::LineCheck::Ok, "{line}");
    }
    // The check is not vacuous: a line altered after it was written fails it.
    let altered = format!("{} (altered)", lines[0]);
    assert!(matches!(logger::check_line(altered.as_bytes()), logger::LineCheck::Bad { .. }));
    // And without the flag, lines carry none.
    let plain = dry_run_with(&Files::new(), &[]).await;
    let first = log_lines(&plain.stdout)[0].to_owned();
    assert!(matches!(logger::check_line(first.as_bytes()), logger::LineCheck::Malformed(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_writes_only_json_lines_on_stdout() {
    let files = Files::new();
    let out = dry_run_with(&files, &["--log-format", "json", "--log-level", "debug"]).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let records: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{}", out.stdout)))
        .collect();
    let event = |r: &serde_json::Value| r["event"].as_str().unwrap_or("").to_owned();
    assert_eq!(records.iter().filter(|r| event(r) == "dry_run").count(), 3, "{records:#?}");
    assert!(records.iter().all(|r| r["program"] == "notify-mailer"), "{records:#?}");
    let summary = records.iter().find(|r| event(r) == "summary").expect("event=summary");
    assert_eq!(summary["sent"], 3, "{summary}");
    // The summary text for a person goes to stderr instead.
    assert!(out.stderr.contains("  would send   3\n"), "{}", out.transcript());
    let bad = dry_run_with(&Files::new(), &["--log-format", "xml"]).await;
    assert_eq!(bad.code(), Some(2), "{}", bad.transcript());
}

/// A UDP socket standing in for a syslog daemon, and its `--syslog` target.
fn udp_syslog() -> (std::net::UdpSocket, String) {
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let target = format!("udp:{}", syslog.local_addr().unwrap());
    (syslog, target)
}

/// The frames `syslog` receives up to the run's `event=summary`.
fn frames_until_the_summary(syslog: &std::net::UdpSocket) -> Vec<String> {
    let mut frames = Vec::new();
    let mut buf = [0u8; 8192];
    while !frames.iter().any(|f: &String| f.contains("event=summary")) {
        let n = syslog.recv(&mut buf).unwrap_or_else(|e| panic!("{e}; got {frames:#?}"));
        frames.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_target_receives_the_run() {
    let (syslog, target) = udp_syslog();
    let out = dry_run_with(&Files::new(), &["--syslog", &target]).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let lines = frames_until_the_summary(&syslog);
    assert!(lines[0].contains("notify-mailer") && lines[0].contains("event=start"), "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l.contains("event=dry_run")).count(), 3, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_checksum_goes_to_syslog_too() {
    let (syslog, target) = udp_syslog();
    let out = dry_run_with(&Files::new(), &["--syslog", &target, "--log-checksum"]).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    for frame in frames_until_the_summary(&syslog) {
        let msg = test_support::syslog_frame::parse_5424(&frame).expect("an RFC 5424 frame").msg;
        let (sum, text) = msg.split_once(' ').unwrap_or_else(|| panic!("{msg:?}"));
        assert_eq!(sum.as_bytes(), logger::checksum(text.as_bytes()), "{msg:?}");
    }
}

#[test]
#[ignore = "needs rsyslogd and rsyslog-gnutls: run by .ci/run"]
fn syslog_over_tls_reaches_a_real_rsyslog_with_a_private_ca() {
    let rsyslog = test_support::Rsyslog::start().expect("rsyslogd with rsyslog-gnutls");
    let target = format!("tls:127.0.0.1:{}", rsyslog.tls_addr().port());
    let ca = rsyslog.ca_path();
    let files = Files::new();
    let args = ["--syslog", &target, "--syslog-ca", ca.to_str().unwrap(), "--log-checksum"];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let out = runtime.block_on(dry_run_with(&files, &args));
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let summary = rsyslog
        .wait_for(Duration::from_secs(20), |r| r.msg.contains("event=summary"))
        .unwrap_or_else(|| panic!("no summary over TLS\n{}", rsyslog.diagnostics()));
    assert_eq!(summary.input, test_support::rsyslog::Input::Tls, "{summary:?}");
    assert_eq!(summary.app_name, "notify-mailer", "{summary:?}");
    let records = rsyslog.records();
    let ours: Vec<_> = records.iter().filter(|r| r.app_name == "notify-mailer").collect();
    assert_eq!(ours.iter().filter(|r| r.msg.contains("event=dry_run")).count(), 3, "{ours:#?}");
    for r in ours {
        let (sum, text) = r.msg.split_once(' ').unwrap_or_else(|| panic!("{r:?}"));
        assert_eq!(sum.as_bytes(), logger::checksum(text.as_bytes()), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ca_is_checked_before_anything_is_sent() {
    let files = Files::new();
    let junk = files.put("junk.pem", "not a certificate\n");
    let out = dry_run_with(&files, &["--syslog", "tls:127.0.0.1:6514", "--syslog-ca", &junk]).await;
    assert_eq!(out.code(), Some(2), "{}", out.transcript());
    assert!(out.stderr.contains("no PEM certificate in the CA file"), "{}", out.transcript());
    let ca = files.put("ca.pem", &test_support::TestCa::new(&["localhost"]).ca_pem);
    let out = dry_run_with(&files, &["--syslog", "udp:127.0.0.1:9", "--syslog-ca", &ca]).await;
    assert_eq!(out.code(), Some(2), "{}", out.transcript());
    assert!(out.stderr.contains("--syslog-ca needs a TLS syslog target"), "{}", out.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_columns_fill_the_template() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.put(
        "customers.csv",
        "name,email,plan\n# paused accounts are skipped with a comment\nAnn,ann@example.test,pro\nBo Li,bo@example.test,free\n",
    );
    let mut args = base_args(server.smtp_addr(), &files, &list);
    let body =
        files.put("body.txt", "Dear {{name}},\nyour {{plan}} plan ({{email}}) moves tonight.\n");
    let at = args.iter().position(|a| a == "--body").unwrap();
    args[at + 1] = body;
    let at = args.iter().position(|a| a == "--subject").unwrap();
    args[at + 1] = "News for {{name}}".into();
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let messages =
        tokio::task::spawn_blocking(move || Http::new(http).messages().unwrap()).await.unwrap();
    assert_eq!(messages.len(), 2);
    let bo = messages.iter().find(|m| m["to"][0] == "bo@example.test").expect("Bo's message");
    assert_eq!(bo["subject"], "News for Bo Li");
    let body = bo["body"].as_str().unwrap().replace("\r\n", "\n");
    assert!(
        body.contains("Dear Bo Li,\nyour free plan (bo@example.test) moves tonight."),
        "{body:?}"
    );
}

/// The README's HTTP API table: every `GET` endpoint it lists answers on a real server (with
/// `N` as 0 and optional parameters left out), so a renamed route cannot leave it stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_http_endpoints_answer() {
    let readme = bins::readme().expect("README.md");
    let section = bins::readme_section(&readme, "### `mail-test-srv`").to_owned();
    let mut paths: Vec<String> = section
        .split("`GET ")
        .skip(1)
        .map(|rest| {
            let path: String = rest.chars().take_while(|&c| c != '`' && c != '[').collect();
            path.replace("count=N", "count=0").replace("/N", "/0")
        })
        .collect();
    paths.sort();
    paths.dedup();
    assert!(paths.len() >= 6, "README lost its endpoint table: {paths:?}");

    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
        for path in paths {
            let status = match agent.get(&format!("http://{http}{path}")).call() {
                Ok(response) => response.status(),
                Err(ureq::Error::Status(code, response)) => {
                    // "No message 0" is a real answer from a real route; an unknown route
                    // gets axum's empty 404.
                    let body = response.into_string().unwrap_or_default();
                    assert!(
                        !body.is_empty(),
                        "README lists GET {path}, which does not exist ({code})"
                    );
                    code
                }
                Err(e) => panic!("GET {path}: {e}"),
            };
            assert!([200, 404].contains(&status), "GET {path}: {status}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_when_not_on_a_terminal() {
    let server = faulty_server(0.0, 1).await;
    let files = Files::new();
    let list = files.list(30);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.extend(["--sleep", "10ms", "--progress-interval", "50ms"].map(String::from));
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let lines = out.lines_with("event=progress");
    assert!(lines.len() >= 2, "{}", out.transcript());
    assert!(lines.iter().all(|l| l.contains("total=30")), "{lines:#?}");
    // No progress bar drawing codes in a pipe.
    assert!(!out.stderr.contains('\r') && !out.stderr.contains("\u{1b}["), "{}", out.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_after_a_second_abandons_the_message_on_the_wire() {
    // The server holds its reply to the final dot for a minute: the first message is on the
    // wire, delivery unknown, when the signals come.
    let options = Options::default()
        .with_fault_stage(mail_test_srv::Stage::AfterDot)
        .with_fault_delay(Duration::from_secs(60));
    let server = TestServer::start(options).await.expect("start mail-test-srv");
    let files = Files::new();
    let list = files.list(5);
    let args = base_args(server.smtp_addr(), &files, &list);
    let resume = files.path("resume.txt");

    let out = tokio::task::spawn_blocking(move || {
        let program = bins::notify_mailer().expect("notify-mailer binary");
        let running = Running::start(&program, &args).expect("start notify-mailer");
        let seen = |needle: &str| {
            wait_until(Duration::from_secs(20), || running.stdout_so_far().contains(needle))
        };
        assert!(seen("event=connected"), "{}", running.stdout_so_far());
        signal(running.pid(), "INT").expect("kill -INT");
        assert!(seen("event=interrupted"), "{}", running.stdout_so_far());
        // Within a second it would be the same request; after it, an abort.
        std::thread::sleep(Duration::from_millis(1200));
        signal(running.pid(), "INT").expect("kill -INT");
        running.wait(Duration::from_secs(10)).expect("notify-mailer exits at the second Ctrl-C")
    })
    .await
    .unwrap();

    assert_eq!(out.code(), Some(130), "{}", out.transcript());
    assert_eq!(out.lines_with("event=aborted").len(), 1, "{}", out.transcript());
    let text = std::fs::read_to_string(&resume).expect("resume file");
    assert_eq!(rows(&text).len(), 5, "the abandoned message and the 4 never started: {text}");
    // The abandoned one is marked as one the server may have.
    assert!(
        text.contains(
            "# may have been delivered already: in flight when the run was stopped\n\
             user1@example.test\nuser2@example.test\n"
        ),
        "{text}"
    );
    assert!(out.stdout.contains("(1 abandoned in flight"), "{}", out.transcript());
    // The journal leaves it "attempted", so a rerun counts it as a possible duplicate.
    let journal = std::fs::read_to_string(files.path("list.txt.journal")).unwrap();
    assert!(journal.contains("A\t0\tuser1@example.test\n"), "{journal}");
    let outcome = |l: &&str| l.starts_with(['S', 'F', 'N']) && l.contains("\t0\t");
    assert!(!journal.lines().any(|l| outcome(&l)), "{journal}");
}

/// The rows of a resume or failures file: its lines that are not `#` comments.
fn rows(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

/// Sets `flag` to `value` in `args`, adding it if absent.
fn set(args: &mut Vec<String>, flag: &str, value: &str) {
    match args.iter().position(|a| a == flag) {
        Some(i) => args[i + 1] = value.into(),
        None => args.extend([flag.into(), value.into()]),
    }
}

/// The stored messages, as the server's HTTP API lists them.
async fn stored(http: SocketAddr) -> Vec<serde_json::Value> {
    tokio::task::spawn_blocking(move || Http::new(http).messages().expect("GET /api/messages"))
        .await
        .unwrap()
}

/// The one stored message to `to` (panics unless there is exactly one).
fn to<'a>(messages: &'a [serde_json::Value], to: &str) -> &'a serde_json::Value {
    let found: Vec<_> = messages.iter().filter(|m| m["to"][0] == to).collect();
    assert_eq!(found.len(), 1, "messages to {to}: {messages:#?}");
    found[0]
}

/// The stored text body with LF line ends, without the line end the wire adds after it.
fn body_of(message: &serde_json::Value) -> String {
    let body = message["body"].as_str().unwrap_or("").replace("\r\n", "\n");
    body.strip_suffix('\n').map(str::to_owned).unwrap_or(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quoted_field_spanning_a_comment_and_a_blank_line_swallows_no_row() {
    // The defect of the old reader: `#` and blank lines were removed before parsing, so this
    // quote ran on into b's and c's rows: one message to a@ holding their rows, b and c never
    // sent nor reported, exit 0.
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.put(
        "customers.csv",
        "email,name,note\n\
         a@example.test,Al,\"first line\n\n# second line\"\n\
         # a real comment: skipped\n\
         b@example.test,Bo,plain\n\
         c@example.test,Cy,\"quoted, with a comma\"\n",
    );
    let mut args = base_args(server.smtp_addr(), &files, &list);
    set(&mut args, "--body", &files.put("body.txt", "Dear {{name}},\n{{note}}\n-- end\n"));
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let messages = stored(http).await;
    assert_eq!(messages.len(), 3, "every row sent once: {messages:#?}");
    assert_eq!(
        body_of(to(&messages, "a@example.test")),
        "Dear Al,\nfirst line\n\n# second line\n-- end\n"
    );
    assert_eq!(body_of(to(&messages, "b@example.test")), "Dear Bo,\nplain\n-- end\n");
    assert_eq!(
        body_of(to(&messages, "c@example.test")),
        "Dear Cy,\nquoted, with a comma\n-- end\n"
    );
    assert!(out.stdout.contains("  sent         3\n"), "{}", out.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_saved_with_a_bom_sends_to_its_first_address() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.put("list.txt", "\u{feff}first@example.test\nsecond@example.test\n");
    let mut args = base_args(server.smtp_addr(), &files, &list);
    set(&mut args, "--body", &files.put("body.txt", "\u{feff}Hello {{email}}\n"));
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let messages = stored(http).await;
    assert_eq!(body_of(to(&messages, "first@example.test")), "Hello first@example.test\n");
    assert_eq!(messages.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_body_and_list_unsubscribe_headers_are_templated() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.put("list.csv", "email,name,id\nann@example.test,Ann <&> Co,a1\n");
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.extend(
        [
            "--html-body",
            &files.put("body.html", "<p>Dear {{name}}</p>"),
            "--header",
            "List-Unsubscribe: <https://example.test/u/{{id}}>",
            "--header",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        ]
        .map(String::from),
    );
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(stored(http).await.len(), 1);
    let raw = tokio::task::spawn_blocking(move || {
        ureq::get(&format!("http://{http}/mail/0")).call().unwrap().into_string().unwrap()
    })
    .await
    .unwrap();
    assert!(raw.contains("List-Unsubscribe: <https://example.test/u/a1>\r\n"), "{raw}");
    assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"), "{raw}");
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(raw.contains("<p>Dear Ann &lt;&amp;&gt; Co</p>"), "a value escaped in HTML: {raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_and_failures_files_work_as_recipients_with_the_same_templates() {
    // The server refuses one address for good (550 at RCPT); the run is stopped after a few.
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let mut csv = String::from("email,name,plan\n");
    for i in 1..=40 {
        csv.push_str(&format!("user{i}@example.test,\"Name {i}, Jr.\",plan{i}\n"));
    }
    let list = files.put("customers.csv", &csv);
    let body = files.put("custom-body.txt", "Dear {{name}}: your {{plan}}.\n");
    let mut args = base_args(server.smtp_addr(), &files, &list);
    set(&mut args, "--body", &body);
    set(&mut args, "--subject", "For {{name}}");
    args.extend(["--sleep", "30ms"].map(String::from));

    let first = stopped_after_five(http, args.clone(), "TERM").await;
    assert_eq!(first.code(), Some(130), "{}", first.transcript());
    let sent_first = http_count(http).await;
    let resume = files.path("resume.txt");
    let text = std::fs::read_to_string(&resume).expect("resume file");
    assert_eq!(rows(&text)[0], "email,name,plan", "{text}");
    assert_eq!(rows(&text).len() as u64 - 1 + sent_first, 40, "{text}");

    // The resume file as --recipients, same templates: the rest go out with their names.
    let mut again = args.clone();
    set(&mut again, "--recipients", resume.to_str().unwrap());
    set(&mut again, "--resume-file", files.path("resume2.txt").to_str().unwrap());
    set(&mut again, "--sleep", "0s");
    let out = notify_mailer(again).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let messages = stored(http).await;
    assert_eq!(messages.len(), 40, "{}", out.transcript());
    let m = to(&messages, "user40@example.test");
    assert_eq!(m["subject"], "For Name 40, Jr.");
    assert_eq!(body_of(m), "Dear Name 40, Jr.: your plan40.\n");

    // A failures file: every column, then failure_reason; as --recipients, the same templates.
    let failures = files.put(
        "earlier.failed.csv",
        "# notify-mailer failures file\nemail,name,plan,failure_reason\n\
         user7@example.test,\"Name 7, Jr.\",plan7,\"server replied 451\"\n",
    );
    let mut retry = args.clone();
    set(&mut retry, "--recipients", &failures);
    set(&mut retry, "--sleep", "0s");
    let out = notify_mailer(retry).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    let messages = stored(http).await;
    let sevens: Vec<_> = messages.iter().filter(|m| m["to"][0] == "user7@example.test").collect();
    assert!(sevens.iter().all(|m| m["subject"] == "For Name 7, Jr."), "{sevens:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_rows_keep_every_column_and_add_the_reason_last() {
    // 550 to every RCPT: each row fails for good.
    let options = Options::default()
        .with_close_chance(100.0)
        .with_fault_stage(mail_test_srv::Stage::Rcpt)
        .with_fault_mode(mail_test_srv::FaultMode::Reject)
        .with_reject_code(550);
    let server = TestServer::start(options).await.expect("start mail-test-srv");
    let files = Files::new();
    let list =
        files.put("list.csv", "name,email\n\"Bo, Jr.\",bo@example.test\nCy,cy@example.test\n");
    let mut args = base_args(server.smtp_addr(), &files, &list);
    set(&mut args, "--body", &files.put("body.txt", "Dear {{name}}\n"));
    let out = notify_mailer(args.clone()).await;

    assert_eq!(out.code(), Some(1), "{}", out.transcript());
    let failed = std::fs::read_to_string(files.path("failed.csv")).expect("failures file");
    let rows = rows(&failed);
    assert_eq!(rows[0], "name,email,failure_reason", "{failed}");
    assert!(
        rows[1].starts_with("\"Bo, Jr.\",bo@example.test,") && rows[1].contains("550"),
        "{failed}"
    );
    assert_eq!(rows.len(), 3, "{failed}");

    // Used again as --recipients, it is the same campaign's templates over the same columns;
    // its failure_reason column is replaced, not repeated.
    let mut retry = args;
    set(&mut retry, "--recipients", files.path("failed.csv").to_str().unwrap());
    set(&mut retry, "--failures-file", files.path("failed2.csv").to_str().unwrap());
    let out = notify_mailer(retry).await;
    assert_eq!(out.code(), Some(1), "{}", out.transcript());
    let again = std::fs::read_to_string(files.path("failed2.csv")).expect("second failures file");
    assert!(again.contains("\nname,email,failure_reason\n"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_header_or_a_line_break_in_a_subject_column_stops_before_sending() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list =
        files.put("list.csv", "email,name\nok@example.test,Ok\nbad@example.test,\"Two\nLines\"\n");
    let mut args = base_args(server.smtp_addr(), &files, &list);
    set(&mut args, "--subject", "Hello {{name}}");
    let out = notify_mailer(args.clone()).await;
    assert_eq!(out.code(), Some(2), "{}", out.transcript());
    assert!(
        out.stderr.contains("list.csv:3: the `name` column holds a line break"),
        "{}",
        out.transcript()
    );
    assert!(out.stderr.contains("nothing was sent"), "{}", out.transcript());

    set(&mut args, "--subject", "Hello");
    args.extend(["--header", "Reply-To: someone@example.test"].map(String::from));
    let out = notify_mailer(args).await;
    assert_eq!(out.code(), Some(2), "{}", out.transcript());
    assert!(
        out.stderr.contains("list.csv:2: the message for this row cannot be sent"),
        "{}",
        out.transcript()
    );
    assert_eq!(http_count(http).await, 0);
    assert_eq!(stat(&http_stats(http).await, "connections"), 0, "it connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_resumes_and_another_campaign_on_the_journal_is_refused() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.list(30);
    let args = base_args(server.smtp_addr(), &files, &list);
    let out = notify_mailer(args.clone()).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());

    // The same command again: the journal says everything was sent.
    let out = notify_mailer(args.clone()).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(http_count(http).await, 30, "a finished campaign sends nothing again");
    let resumed = out.lines_with("event=resumed");
    assert!(resumed.len() == 1 && resumed[0].contains("skipped=30"), "{}", out.transcript());
    assert!(out.stdout.contains("  skipped      30 "), "{}", out.transcript());

    // Another subject is another campaign: refused, nothing sent.
    let mut other = args.clone();
    set(&mut other, "--subject", "Another notice");
    let out = notify_mailer(other.clone()).await;
    assert_eq!(out.code(), Some(2), "{}", out.transcript());
    assert!(
        out.stderr.contains("this journal belongs to another campaign"),
        "{}",
        out.transcript()
    );
    assert!(out.stderr.contains("--fresh"), "{}", out.transcript());
    assert_eq!(http_count(http).await, 30);

    // --fresh starts it over and keeps the old journal beside the new one.
    other.push("--fresh".into());
    let out = notify_mailer(other).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(http_count(http).await, 60);
    let kept: Vec<_> = std::fs::read_dir(files.dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("list.txt.journal."))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(out.lines_with("event=journal_replaced").len(), 1, "{}", out.transcript());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_paces_the_whole_pool() {
    let server = faulty_server(0.0, 1).await;
    let files = Files::new();
    let list = files.list(30);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.extend(["--parallel", "4", "--rate", "20/s"].map(String::from));
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    // 30 messages at 20 per second, over 4 connections: at least the 10 beyond the first
    // second's 20 wait half a second. (A lower bound only: a loaded machine is slower.)
    let sending = summary_elapsed(&out.stdout);
    assert!(sending >= Duration::from_millis(450), "30 messages at 20/s took {sending:?}");
}

/// The elapsed time the summary gives.
fn summary_elapsed(stdout: &str) -> Duration {
    let secs = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("notify-mailer summary ")?
                .rsplit_once("elapsed ")?
                .1
                .strip_suffix('s')?
                .parse::<f64>()
                .ok()
        })
        .expect("a summary line");
    Duration::from_secs_f64(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_and_connects_nowhere() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.put("list.txt", "a@example.test\nb@example.test\nA@example.test\n");
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.push("--check".into());
    let out = notify_mailer(args).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert!(
        out.stdout.contains("2 recipients (0 invalid rows skipped, 1 repeated addresses skipped)"),
        "{}",
        out.transcript()
    );
    assert!(!files.path("list.txt.journal").exists(), "--check wrote a journal");
    assert_eq!(stat(&http_stats(http).await, "connections"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerunning_after_a_stop_sends_the_rest_once_and_removes_the_stale_resume_file() {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.list(40);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.extend(["--sleep", "30ms"].map(String::from));
    let first = stopped_after_five(http, args.clone(), "TERM").await;
    assert_eq!(first.code(), Some(130), "{}", first.transcript());
    let resume = files.path("resume.txt");
    assert!(resume.exists());

    // A dry run of the same command writes nothing, and removes nothing.
    let mut dry = args.clone();
    dry.push("--dry-run".into());
    let out = notify_mailer(dry).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert!(resume.exists(), "a dry run removed the resume file");

    set(&mut args, "--sleep", "0s");
    let out = notify_mailer(args).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());
    assert_eq!(http_count(http).await, 40, "every address once: {}", out.transcript());
    assert!(!resume.exists(), "the stale resume file is left behind");
    assert_eq!(out.lines_with("event=removed_stale_file").len(), 1, "{}", out.transcript());
}
