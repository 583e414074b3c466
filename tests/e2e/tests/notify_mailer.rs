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
    let out = notify_mailer(base_args(server.smtp_addr(), &files, &list)).await;

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
async fn unreachable_server_fails_every_address_quickly() {
    // A port that was just free: nothing listens there, so every connect is refused at once.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let files = Files::new();
    let list = files.list(10);
    let mut args = base_args(SocketAddr::from(([127, 0, 0, 1], port)), &files, &list);
    for (flag, value) in [("--max-attempts", "2"), ("--connect-timeout", "2s")] {
        let at = args.iter().position(|a| a == flag);
        match at {
            Some(i) => args[i + 1] = value.into(),
            None => args.extend([flag.into(), value.into()]),
        }
    }
    let out = notify_mailer(args).await;

    assert_eq!(out.code(), Some(1), "{}", out.transcript());
    // 10 messages x 2 refused connects x a 5 ms backoff: well under a second when working.
    assert!(out.elapsed < Duration::from_secs(15), "took {:?}", out.elapsed);
    let failed = std::fs::read_to_string(files.path("failed.csv")).expect("failures file");
    let mut rows = failed.lines();
    assert_eq!(rows.next(), Some("email,reason"));
    let addresses: Vec<&str> = rows.map(|r| r.split(',').next().unwrap()).collect();
    let expected: Vec<String> = (1..=10).map(|i| format!("user{i}@example.test")).collect();
    assert_eq!(addresses, expected, "{failed}");
    assert!(out.stdout.contains("  failed       10\n"), "{}", out.transcript());
    assert!(out.stdout.contains("failed.csv"), "the summary does not name the file");
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
async fn stops_after_the_message_in_flight(sig: &'static str) {
    let server = faulty_server(0.0, 1).await;
    let http = server.http_addr().expect("http api");
    let files = Files::new();
    let list = files.list(200);
    let mut args = base_args(server.smtp_addr(), &files, &list);
    args.extend(["--sleep".into(), "20ms".into()]);

    let resume = files.path("resume.txt");
    let out = tokio::task::spawn_blocking(move || {
        let program = bins::notify_mailer().expect("notify-mailer binary");
        let running = Running::start(&program, &args).expect("start notify-mailer");
        // GET /wait long-polls until the fifth delivery (inside the client's 30 s timeout).
        let fifth = Http::new(http).wait(5, Duration::from_secs(25)).expect("GET /wait");
        assert!(fifth.is_ok(), "deliveries after 25 s: {fifth:?}");
        signal(running.pid(), sig).expect("kill");
        running.wait(LIMIT).expect("notify-mailer exits after the signal")
    })
    .await
    .unwrap();

    assert_eq!(out.code(), Some(130), "{}", out.transcript());
    let received = http_count(http).await;
    assert!(received < 200, "SIG{sig} did not stop it");
    assert_eq!(out.lines_with("event=interrupted").len(), 1, "{}", out.transcript());
    let text = std::fs::read_to_string(&resume).expect("resume file");
    let unsent: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
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
        "--failures-file",
        "--resume-file",
        "--progress-interval",
        "--log-level",
        "--syslog",
        "--help",
        "--version",
    ];
    for flag in flags {
        assert!(out.stdout.contains(flag), "--help does not mention {flag}\n{}", out.stdout);
    }
    // It explains the inputs, the durations and the exit status, not just the flag names.
    for phrase in ["{{email}}", "500ms", "Exit status", "Ctrl-C", "email` column"] {
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
    assert_eq!(failed.lines().count(), 2, "header and the one address tried: {failed}");
    let resume = std::fs::read_to_string(files.path("resume.txt")).expect("resume file");
    assert_eq!(resume.lines().filter(|l| !l.starts_with('#')).count(), 19, "{resume}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_target_receives_the_run() {
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let target = format!("udp:{}", syslog.local_addr().unwrap());
    let files = Files::new();
    let list = files.list(3);
    let body = files.put("body.txt", "x\n");
    let args = [
        "--dry-run",
        "--from",
        "ops@example.test",
        "--subject",
        "s",
        "--body",
        &body,
        "--recipients",
        &list,
        "--syslog",
        &target,
    ];
    let out = notify_mailer(args.map(String::from).to_vec()).await;
    assert_eq!(out.code(), Some(0), "{}", out.transcript());

    let mut lines = Vec::new();
    let mut buf = [0u8; 8192];
    while !lines.iter().any(|l: &String| l.contains("event=summary")) {
        let n = syslog.recv(&mut buf).unwrap_or_else(|e| panic!("{e}; got {lines:#?}"));
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(lines[0].contains("notify-mailer") && lines[0].contains("event=start"), "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| l.contains("event=dry_run")).count(), 3, "{lines:#?}");
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
async fn second_ctrl_c_abandons_a_message_stuck_in_backoff() {
    // Nothing listens: the first message backs off for 30 s after its second refused connect.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let files = Files::new();
    let list = files.list(5);
    let mut args = base_args(SocketAddr::from(([127, 0, 0, 1], port)), &files, &list);
    let at = args.iter().position(|a| a == "--retry-base").unwrap();
    args[at + 1] = "30s".into();
    let at = args.iter().position(|a| a == "--retry-max").unwrap();
    args[at + 1] = "30s".into();
    let resume = files.path("resume.txt");

    let out = tokio::task::spawn_blocking(move || {
        let program = bins::notify_mailer().expect("notify-mailer binary");
        let running = Running::start(&program, &args).expect("start notify-mailer");
        let seen = |needle: &str| {
            wait_until(Duration::from_secs(20), || running.stdout_so_far().contains(needle))
        };
        assert!(seen("event=backoff attempt=1"), "{}", running.stdout_so_far());
        signal(running.pid(), "INT").expect("kill -INT");
        assert!(seen("event=interrupted"), "{}", running.stdout_so_far());
        signal(running.pid(), "INT").expect("kill -INT");
        running.wait(Duration::from_secs(10)).expect("notify-mailer exits at the second Ctrl-C")
    })
    .await
    .unwrap();

    assert_eq!(out.code(), Some(130), "{}", out.transcript());
    assert_eq!(out.lines_with("event=aborted").len(), 1, "{}", out.transcript());
    let text = std::fs::read_to_string(&resume).expect("resume file");
    let unsent: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(unsent.len(), 5, "the abandoned message and the 4 never started: {text}");
    // The abandoned one is marked as one the server may have (here it cannot: nothing listens).
    assert!(
        text.starts_with(
            "# notify-mailer: addresses not yet sent when the run stopped early\n\
             # abandoned in flight: the server may have taken these already\n\
             user1@example.test\n# never started\n"
        ),
        "{text}"
    );
    assert!(out.stdout.contains("(1 abandoned in flight"), "{}", out.transcript());
}
