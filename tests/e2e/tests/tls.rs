//! Issue 5, item 8: TLS between the mailer and `mail-test-srv`, implicit and STARTTLS, with a
//! test CA made here (a CA certificate and a leaf for `localhost`/127.0.0.1 signed by it).
//! A wrong host name, an untrusted certificate, or a server that does not offer STARTTLS fail
//! at once with a clear error, and nothing is ever sent in plain text instead: the server
//! stores nothing and sees no second, plaintext connection.

use std::sync::Arc;
use std::time::Duration;

use e2e::bins;
use mail_test_srv::{Options, TestServer, TlsOptions};
use mailer::{Config, Mailer, SmtpMailer, Tls};
use test_support::TestCa;

/// A test CA and a server certificate it signed: (CA PEM, leaf PEM, leaf key PEM).
fn test_ca(leaf_names: &[&str]) -> (String, String, String) {
    let ca = TestCa::new(leaf_names);
    (ca.ca_pem, ca.cert_pem, ca.key_pem)
}

async fn server(tls: TlsOptions) -> TestServer {
    TestServer::start(Options::default().with_tls(tls)).await.expect("start mail-test-srv")
}

fn mailer(srv: &TestServer, tls: Tls, root_ca: &str, log: &logger::Mock) -> SmtpMailer {
    let config = Config::new("127.0.0.1", srv.smtp_addr().port(), "tls@sender.test")
        .with_tls(tls)
        .with_root_ca_pem(root_ca.as_bytes().to_vec())
        .with_tls_server_name("localhost")
        .with_retry_base(Duration::from_millis(5))
        .with_max_attempts(3);
    SmtpMailer::new(config, Arc::new(log.clone()))
}

async fn delivers_over_tls(mode: Tls) {
    let (ca, cert, key) = test_ca(&["localhost", "127.0.0.1"]);
    let pair = Some((cert, key));
    let options = match mode {
        Tls::StartTls => TlsOptions::StartTls(pair),
        _ => TlsOptions::Implicit(pair),
    };
    let srv = server(options).await;
    let log = logger::Mock::new();
    let mailer = mailer(&srv, mode, &ca, &log);
    for i in 0..3 {
        let sent = mailer.send_mail(&["rcpt@tls.test"], &format!("over tls {i}"), "b").await;
        sent.unwrap_or_else(|e| panic!("{mode}: {e}\n{:#?}", log.get_all()));
    }
    mailer.close().await;
    let stored = srv.store().messages();
    let stats = srv.stats();
    println!(
        "{mode}: 3 messages over TLS with a test CA, stored {} (all tls: {}), connections {}, \
         handshake failures {}",
        stored.len(),
        stored.iter().all(|m| m.tls),
        stats.connections,
        stats.tls_handshake_failures
    );
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|m| m.tls), "a message arrived in plain text");
    assert_eq!(stats.connections, 1, "one connection, reused");
    assert_eq!(log.get_all_matching(&format!("event=connected .*tls={mode}")).len(), 1);
}

#[tokio::test]
async fn starttls_with_a_test_ca_delivers_encrypted() {
    delivers_over_tls(Tls::StartTls).await;
}

#[tokio::test]
async fn implicit_tls_with_a_test_ca_delivers_encrypted() {
    delivers_over_tls(Tls::Implicit).await;
}

/// Sends once and expects a TLS failure: returned at once (no backoff, no retry), a clear
/// message, nothing stored, and no plaintext connection made instead.
async fn fails_without_fallback(
    srv: TestServer,
    mailer: SmtpMailer,
    log: &logger::Mock,
    what: &str,
) {
    let started = std::time::Instant::now();
    let error = mailer
        .send_mail(&["rcpt@tls.test"], "must not be sent", "secret body")
        .await
        .expect_err("the send must fail");
    let elapsed = started.elapsed();
    let stats = srv.stats();
    println!(
        "{what}: failed in {elapsed:?} with: {error}; server: connections {}, handshake \
         failures {}, messages {}",
        stats.connections, stats.tls_handshake_failures, stats.messages
    );
    assert!(error.is_permanent(), "{what}: a TLS failure is not worth retrying: {error}");
    assert!(
        log.get_all_matching("event=backoff").is_empty(),
        "{what}: retried\n{:#?}",
        log.get_all()
    );
    assert_eq!(stats.messages, 0, "{what}: something was stored");
    assert!(srv.store().messages().is_empty());
    assert_eq!(stats.connections, 1, "{what}: a second (plaintext?) connection was made");
    assert!(
        log.get_all().iter().all(|l| !l.contains("secret body")),
        "{what}: the body reached the log"
    );
    let text = error.to_string().to_lowercase();
    if what.contains("untrusted") {
        assert!(text.contains("unknownissuer"), "{what}: {error}");
    }
    if what.contains("wrong-name") {
        assert!(text.contains("not valid for name"), "{what}: {error}");
    }
    assert!(
        text.contains("tls") || text.contains("certificate") || text.contains("starttls"),
        "{what}: unclear error: {error}"
    );
}

#[tokio::test]
async fn a_wrong_host_name_fails_clearly_starttls_and_implicit() {
    for (mode, options) in [
        (Tls::StartTls, TlsOptions::StartTls as fn(_) -> _),
        (Tls::Implicit, TlsOptions::Implicit as fn(_) -> _),
    ] {
        let (ca, cert, key) = test_ca(&["localhost", "127.0.0.1"]);
        let srv = server(options(Some((cert, key)))).await;
        let log = logger::Mock::new();
        let config = Config::new("127.0.0.1", srv.smtp_addr().port(), "tls@sender.test")
            .with_tls(mode)
            .with_root_ca_pem(ca.into_bytes())
            .with_tls_server_name("mail.wrong-name.test")
            .with_max_attempts(3);
        let mailer = SmtpMailer::new(config, Arc::new(log.clone()));
        let what = format!("{mode}, certificate for localhost, asked for mail.wrong-name.test");
        fails_without_fallback(srv, mailer, &log, &what).await;
    }
}

#[tokio::test]
async fn an_untrusted_certificate_fails_clearly_starttls_and_implicit() {
    for (mode, options) in [
        (Tls::StartTls, TlsOptions::StartTls as fn(_) -> _),
        (Tls::Implicit, TlsOptions::Implicit as fn(_) -> _),
    ] {
        // The server's certificate comes from one CA; the mailer trusts another.
        let (_, cert, key) = test_ca(&["localhost", "127.0.0.1"]);
        let (other_ca, _, _) = test_ca(&["localhost"]);
        let srv = server(options(Some((cert, key)))).await;
        let log = logger::Mock::new();
        let mailer = mailer(&srv, mode, &other_ca, &log);
        let what = format!("{mode}, certificate from an untrusted CA");
        fails_without_fallback(srv, mailer, &log, &what).await;
    }
}

#[tokio::test]
async fn starttls_required_but_not_offered_sends_nothing_in_plain_text() {
    let (ca, _, _) = test_ca(&["localhost"]);
    let srv = server(TlsOptions::None).await;
    let log = logger::Mock::new();
    let mailer = mailer(&srv, Tls::StartTls, &ca, &log);
    fails_without_fallback(srv, mailer, &log, "starttls, server without STARTTLS").await;
}

/// The same through the real binary: `--tls implicit --ca-file` delivers; without the CA file
/// (system roots only) the run fails with a clear message and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_mailer_implicit_tls_with_and_without_the_ca_file() {
    let (ca, cert, key) = test_ca(&["localhost", "127.0.0.1"]);
    let srv = server(TlsOptions::Implicit(Some((cert, key)))).await;
    let dir = tempfile::tempdir().unwrap();
    let put = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (ca_file, body, list) =
        (put("ca.pem", &ca), put("body.txt", "hi\n"), put("list.txt", "a@tls.test\nb@tls.test\n"));
    let server_arg = srv.smtp_addr().to_string();
    let run = move |with_ca: bool| {
        let mut args = vec![
            "--server",
            &server_arg,
            "--tls",
            "implicit",
            "--from",
            "tls@sender.test",
            "--subject",
            "tls",
            "--body",
            &body,
            "--recipients",
            &list,
            "--retry-base",
            "5ms",
            "--max-attempts",
            "2",
        ];
        if with_ca {
            args.extend(["--ca-file", &ca_file]);
        }
        let program = bins::notify_mailer().expect("notify-mailer binary");
        bins::run(&program, &args, Duration::from_secs(60)).expect("notify-mailer ran")
    };
    let run = Arc::new(run);
    let without = tokio::task::spawn_blocking({
        let run = Arc::clone(&run);
        move || run(false)
    })
    .await
    .unwrap();
    println!(
        "notify-mailer without --ca-file: exit {:?}, stored {}",
        without.code(),
        srv.store().count()
    );
    assert_ne!(without.code(), Some(0), "{}", without.transcript());
    assert_eq!(srv.store().count(), 0, "sent although the certificate is not trusted");
    let text = without.transcript().to_lowercase();
    assert!(text.contains("certificate"), "no clear reason:\n{}", without.transcript());

    let with = tokio::task::spawn_blocking(move || run(true)).await.unwrap();
    println!(
        "notify-mailer with --ca-file: exit {:?}, stored {}",
        with.code(),
        srv.store().count()
    );
    assert_eq!(with.code(), Some(0), "{}", with.transcript());
    assert_eq!(srv.store().count(), 2);
    assert!(srv.store().messages().iter().all(|m| m.tls));
}
