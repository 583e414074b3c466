//! Interop with real SMTP clients: swaks, curl, Python's smtplib and Postfix's smtp-source.
//! Each test starts an in-process server on loopback port 0, runs the peer against it through
//! `test_support::run`, and checks the result through the HTTP API, as a user's CI would. Run
//! by `.ci/run` with `--include-ignored`, where the peers are installed; a missing peer fails
//! the test.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::get;
use mail_test_srv::{BareLf, FaultMode, Options, TestServer, TlsOptions};
use test_support::Finished;

/// Runs a peer to completion (killed if it outlives `timeout`), off the async runtime.
async fn run(program: &str, args: &[&str], timeout: Duration) -> Finished {
    let mut command = Command::new(program);
    command.args(args);
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || test_support::run(&mut command, timeout))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{program}: {e} (is it installed? .ci/run installs it)"))
}

fn explain(out: &Finished) -> String {
    out.transcript()
}

/// `/count` over HTTP.
async fn http_count(srv: &TestServer) -> u64 {
    let (status, body) = get(format!("{}/count", srv.http_url().unwrap())).await;
    assert_eq!(status, 200);
    body.trim().parse().unwrap()
}

/// `/wait` over HTTP until `n` deliveries (the server may store the last message a moment
/// after the client has seen its 250 and quit).
async fn http_wait(srv: &TestServer, n: u64) -> u64 {
    let (status, body) =
        get(format!("{}/wait?count={n}&timeout_ms=10000", srv.http_url().unwrap())).await;
    assert_eq!(status, 200, "waiting for {n}: {body}");
    body.trim().parse().unwrap()
}

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs swaks: run by .ci/run"]
async fn swaks_plain_starttls_implicit_and_auth() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let server = srv.smtp_addr().to_string();
    let base = [
        "--server",
        &server,
        "--from",
        "a@x.test",
        "--to",
        "b@x.test",
        "--h-Subject",
        "from swaks",
    ];
    let out = run("swaks", &[&base[..], &["--body", "hello from swaks"]].concat(), T).await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&srv, 1).await, 1);
    let m = &srv.store().messages()[0];
    assert_eq!(m.subject.as_deref(), Some("from swaks"));
    assert!(m.body.contains("hello from swaks"));

    let tls =
        TestServer::start(Options::default().with_tls(TlsOptions::StartTls(None))).await.unwrap();
    let server = tls.smtp_addr().to_string();
    let out =
        run("swaks", &["--server", &server, "--from", "a@x.test", "--to", "b@x.test", "--tls"], T)
            .await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&tls, 1).await, 1);
    assert!(tls.store().messages()[0].tls);

    let implicit =
        TestServer::start(Options::default().with_tls(TlsOptions::Implicit(None))).await.unwrap();
    let server = implicit.smtp_addr().to_string();
    let out =
        run("swaks", &["--server", &server, "--from", "a@x.test", "--to", "b@x.test", "-tlsc"], T)
            .await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&implicit, 1).await, 1);
    assert!(implicit.store().messages()[0].tls);

    let auth = TestServer::start(Options::default().with_auth("user", "pw")).await.unwrap();
    let server = auth.smtp_addr().to_string();
    for mech in ["PLAIN", "LOGIN"] {
        let args = ["--server", &server, "--from", "a@x.test", "--to", "b@x.test", "--auth", mech];
        let out = run(
            "swaks",
            &[&args[..], &["--auth-user", "user", "--auth-password", "pw"]].concat(),
            T,
        )
        .await;
        assert!(out.success(), "{mech}: {}", explain(&out));
    }
    let args = ["--server", &server, "--from", "a@x.test", "--to", "b@x.test", "--auth", "PLAIN"];
    let out = run(
        "swaks",
        &[&args[..], &["--auth-user", "user", "--auth-password", "wrong"]].concat(),
        T,
    )
    .await;
    assert!(!out.success(), "a wrong password must fail: {}", explain(&out));
    assert_eq!(http_wait(&auth, 2).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs swaks: run by .ci/run"]
async fn swaks_sees_each_fault_kind() {
    // swaks exit codes: 6 = connection dropped, 23 = error after MAIL, 24 = after RCPT,
    // 25 = after DATA, 26 = after the final dot.
    for (mode, stage, code) in [
        (FaultMode::Close, mail_test_srv::Stage::Mail, 6),
        (FaultMode::Reply421, mail_test_srv::Stage::Mail, 23),
        (FaultMode::Reply421, mail_test_srv::Stage::Rcpt, 24),
        (FaultMode::Reject, mail_test_srv::Stage::Rcpt, 24),
        (FaultMode::Reject, mail_test_srv::Stage::AfterDot, 26),
    ] {
        let opts = Options::default()
            .with_close_chance(100.0)
            .with_fault_mode(mode)
            .with_fault_stage(stage);
        let srv = TestServer::start(opts).await.unwrap();
        let server = srv.smtp_addr().to_string();
        let out =
            run("swaks", &["--server", &server, "--from", "a@x.test", "--to", "b@x.test"], T).await;
        assert_eq!(out.code(), Some(code), "{mode:?} at {stage:?}: {}", explain(&out));
        let stats = srv.stats();
        assert_eq!(stats.faults_close + stats.faults_421 + stats.faults_reject, 1);
        assert_eq!(http_count(&srv).await, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs curl: run by .ci/run"]
async fn curl_smtp_plain_starttls_and_smtps() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("msg.eml");
    std::fs::write(
        &eml,
        "Subject: from curl\r\nMessage-ID: <curl@x.test>\r\n\r\n.leading dot\r\nbody\r\n",
    )
    .unwrap();
    let eml = eml.to_str().unwrap();
    let curl = |url: String, extra: Vec<String>| async move {
        let mut args = vec!["-sS".to_owned(), "--url".to_owned(), url];
        args.extend(
            ["--mail-from", "a@x.test", "--mail-rcpt", "b@x.test", "--mail-rcpt", "c@x.test"]
                .map(String::from),
        );
        args.extend(["--upload-file".to_owned(), eml.to_owned()]);
        args.extend(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("curl", &args, T).await
    };

    let srv = TestServer::start(Options::default()).await.unwrap();
    let out = curl(format!("smtp://{}", srv.smtp_addr()), vec![]).await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&srv, 2).await, 2);
    let m = &srv.store().messages()[0];
    assert_eq!(m.message_id.as_deref(), Some("<curl@x.test>"));
    assert_eq!(m.body, ".leading dot\r\nbody\r\n", "curl dot-stuffs, the server unstuffs");

    let ca = |srv: &TestServer, dir: &Path| {
        let path = dir.join(format!("ca-{}.pem", srv.smtp_addr().port()));
        std::fs::write(&path, srv.certificate_pem().unwrap()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let tls =
        TestServer::start(Options::default().with_tls(TlsOptions::StartTls(None))).await.unwrap();
    let cacert = ca(&tls, dir.path());
    let url = format!("smtp://localhost:{}", tls.smtp_addr().port());
    let out = curl(url, vec!["--ssl-reqd".into(), "--cacert".into(), cacert]).await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&tls, 2).await, 2);
    assert!(tls.store().messages()[0].tls);

    let smtps =
        TestServer::start(Options::default().with_tls(TlsOptions::Implicit(None))).await.unwrap();
    let cacert = ca(&smtps, dir.path());
    let url = format!("smtps://localhost:{}", smtps.smtp_addr().port());
    let out = curl(url, vec!["--cacert".into(), cacert]).await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&smtps, 2).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs python3: run by .ci/run"]
async fn python_smtplib_plain_starttls_and_auth() {
    let dir = tempfile::tempdir().unwrap();
    let srv = TestServer::start(
        Options::default().with_tls(TlsOptions::StartTls(None)).with_auth("user", "pw"),
    )
    .await
    .unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, srv.certificate_pem().unwrap()).unwrap();
    let script = r#"
import smtplib, ssl, sys
from email.message import EmailMessage
port, ca = int(sys.argv[1]), sys.argv[2]
def msg(subject):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@x.test", "b@x.test", subject
    m.set_content("line\n.starts with a dot\n")
    return m
# Plain: AUTH is required, so MAIL without it must be refused with 530.
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    try:
        s.send_message(msg("no auth"))
        sys.exit("sent without AUTH")
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 530, e
# Plain AUTH (no TLS), then STARTTLS + AUTH.
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.login("user", "pw")
    m = msg("plain auth \u00e9t\u00e9")
    m.set_content("caf\u00e9 " * 30 + "\n", cte="quoted-printable")
    s.send_message(m)
ctx = ssl.create_default_context(cafile=ca)
with smtplib.SMTP("localhost", port, timeout=10) as s:
    s.starttls(context=ctx)
    s.login("user", "pw")
    s.send_message(msg("starttls auth"))
    s.noop()
print("ok")
"#;
    let port = srv.smtp_addr().port().to_string();
    let out = run("python3", &["-c", script, &port, ca.to_str().unwrap()], T).await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&srv, 2).await, 2);
    let messages = srv.store().messages();
    // An RFC 2047 subject and a quoted-printable body, decoded.
    assert_eq!(messages[0].subject.as_deref(), Some("plain auth été"));
    assert_eq!(messages[0].body.trim_end(), "café ".repeat(30).trim_end());
    assert!(!messages[0].tls);
    assert_eq!(messages[1].subject.as_deref(), Some("starttls auth"));
    assert!(messages[1].tls);
    assert!(messages[1].body.contains("\n.starts with a dot"), "{:?}", messages[1].body);
    assert_eq!(messages[1].auth_user.as_deref(), Some("user"));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs smtp-source (postfix): run by .ci/run"]
async fn smtp_source_20_sessions_5000_messages_all_counted() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let addr = srv.smtp_addr();
    let source = |args: &'static [&'static str]| async move {
        let limit = Duration::from_secs(120);
        tokio::task::spawn_blocking(move || test_support::smtp_source(args, addr, limit))
            .await
            .unwrap()
            .expect("smtp-source (postfix)")
    };
    let out =
        source(&["-s", "20", "-m", "5000", "-l", "1000", "-f", "a@x.test", "-t", "b@x.test"]).await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&srv, 5000).await, 5000);
    assert_eq!(http_count(&srv).await, 5000);
    let stats = srv.stats();
    assert_eq!((stats.messages, stats.connections), (5000, 5000));

    // -d: reuse connections (20 sessions for everything).
    srv.store().clear();
    let args = &["-d", "-s", "20", "-m", "5000", "-l", "1000", "-f", "a@x.test", "-t", "b@x.test"];
    let out = source(args).await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&srv, 5000).await, 5000);
    assert_eq!(srv.stats().connections, 5020);
}

/// curl sends an upload file as it is, so an LF-only file arrives with bare LF line ends and
/// without dot-stuffing on those lines. Only `CRLF.CRLF` ends DATA: the lone `.` line is
/// content, and everything after it is stored (a server that took `<LF>.<LF>` for the end
/// cut the body there and still said 250). Under `--bare-lf reject` curl's upload is refused.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs curl: run by .ci/run"]
async fn curl_with_an_lf_only_body_stores_the_whole_body() {
    let dir = tempfile::tempdir().unwrap();
    let eml = dir.path().join("lf.eml");
    let body =
        "Subject: lf only\nFrom: <a@x.test>\n\nfirst line\n.\nafter the lone dot\n\nlast line\n";
    std::fs::write(&eml, body).unwrap();
    let eml = eml.to_str().unwrap().to_owned();
    let curl = |srv: &TestServer| {
        let url = format!("smtp://{}", srv.smtp_addr());
        let eml = eml.clone();
        async move {
            let args = ["-sS", "--url", &url, "--mail-from", "a@x.test", "--mail-rcpt", "b@x.test"];
            run("curl", &[&args[..], &["--upload-file", &eml]].concat(), T).await
        }
    };

    let srv = TestServer::start(Options::default()).await.unwrap();
    let out = curl(&srv).await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&srv, 1).await, 1);
    let m = &srv.store().messages()[0];
    // Each bare LF is stored as CRLF; curl ends the upload with its own CRLF.CRLF, whose
    // CRLF makes the last line an empty one.
    assert_eq!(
        String::from_utf8_lossy(&m.data),
        "Subject: lf only\r\nFrom: <a@x.test>\r\n\r\nfirst line\r\n.\r\nafter the lone dot\r\n\
         \r\nlast line\r\n\r\n"
    );

    let strict = TestServer::start(Options::default().with_bare_lf(BareLf::Reject)).await.unwrap();
    let out = curl(&strict).await;
    // curl 7.88 reports the 550 after the final dot as "(8) Weird server reply".
    assert!(!out.success(), "a bare-LF upload must be refused: {}", explain(&out));
    assert_eq!((strict.store().len(), strict.stats().rejected_bare_lf), (0, 1));
}

/// Python's smtplib with `mail_options=['SMTPUTF8']` (it refuses to send them unless the
/// server advertises SMTPUTF8): non-ASCII envelope addresses and UTF-8 headers arrive as
/// UTF-8. (Without the option smtplib will not even encode the command; the `553 5.6.7` a
/// client gets then is pinned on the wire in `protocol.rs`.)
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs python3: run by .ci/run"]
async fn python_smtplib_sends_smtputf8() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let script = r#"
import smtplib, sys
port = int(sys.argv[1])
frm, to = "jürgen@bücher.test", "δοκιμή@παράδειγμα.test"
msg = f"From: {frm}\r\nTo: {to}\r\nSubject: grüße\r\n\r\nkörper\r\n".encode()
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.ehlo()
    assert s.has_extn("smtputf8"), s.esmtp_features
    refused = s.sendmail(frm, [to], msg, mail_options=["SMTPUTF8"])
    assert refused == {}, refused
print("ok")
"#;
    let port = srv.smtp_addr().port().to_string();
    let out = run("python3", &["-c", script, &port], T).await;
    assert!(out.success(), "{}", explain(&out));
    assert_eq!(http_wait(&srv, 1).await, 1);
    let m = &srv.store().messages()[0];
    assert_eq!(
        (m.from.as_str(), m.to.as_slice()),
        ("jürgen@bücher.test", &["δοκιμή@παράδειγμα.test".to_owned()][..])
    );
    assert_eq!(m.data, "From: jürgen@bücher.test\r\nTo: δοκιμή@παράδειγμα.test\r\nSubject: grüße\r\n\r\nkörper\r\n".as_bytes());
}
