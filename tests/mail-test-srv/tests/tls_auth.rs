//! STARTTLS, implicit TLS and AUTH over the wire, with a rustls client that trusts the
//! server's generated certificate.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Client, EHLO_REPLY, eventually};
use mail_test_srv::{Options, TestServer, TlsOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

fn connector(cert_pem: &str) -> TlsConnector {
    TlsConnector::from(test_support::certs::client_config(cert_pem))
}

async fn handshake(srv: &TestServer, tcp: TcpStream) -> BufReader<TlsStream<TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls =
        connector(&srv.certificate_pem().unwrap()).connect(name, tcp).await.expect("TLS handshake");
    BufReader::new(tls)
}

async fn reply(s: &mut BufReader<TlsStream<TcpStream>>) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        let read = tokio::time::timeout(common::IO_TIMEOUT, s.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        all.push_str(&line);
        if read == 0 || line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

async fn cmd(s: &mut BufReader<TlsStream<TcpStream>>, line: &str) -> String {
    s.get_mut().write_all(format!("{line}\r\n").as_bytes()).await.unwrap();
    reply(s).await
}

async fn read_raw_reply(tcp: &mut TcpStream) -> String {
    // Byte by byte, so nothing after the reply is consumed from the socket before TLS starts.
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    loop {
        let mut b = [0u8; 1];
        assert_eq!(tcp.read(&mut b).await.unwrap(), 1, "EOF before a full reply");
        out.push(b[0]);
        if out.ends_with(b"\r\n") && last_line_is_final(&out) {
            return String::from_utf8(out).unwrap();
        }
    }
}

/// Whether the last line of `out` is `NNN text` (not `NNN-text`).
fn last_line_is_final(out: &[u8]) -> bool {
    let body = &out[..out.len() - 2];
    let start = body.windows(2).rposition(|w| w == b"\r\n").map_or(0, |i| i + 2);
    body.get(start + 3) == Some(&b' ')
}

#[tokio::test]
async fn starttls_upgrades_and_the_message_is_marked_tls() {
    let srv =
        TestServer::start(Options::default().with_tls(TlsOptions::StartTls(None))).await.unwrap();
    let mut tcp = TcpStream::connect(srv.smtp_addr()).await.unwrap();
    assert_eq!(read_raw_reply(&mut tcp).await, "220 mail-test-srv.test ESMTP mail-test-srv\r\n");
    tcp.write_all(b"EHLO client.test\r\n").await.unwrap();
    let ehlo = read_raw_reply(&mut tcp).await;
    assert!(ehlo.ends_with("250 STARTTLS\r\n"), "{ehlo}");
    // Plaintext pipelined behind STARTTLS must be thrown away, never run inside TLS.
    tcp.write_all(b"STARTTLS\r\nMAIL FROM:<injected@x.test>\r\n").await.unwrap();
    assert_eq!(read_raw_reply(&mut tcp).await, "220 2.0.0 Ready to start TLS\r\n");
    let mut s = handshake(&srv, tcp).await;
    assert_eq!(cmd(&mut s, "EHLO client.test").await, EHLO_REPLY);
    assert_eq!(cmd(&mut s, "STARTTLS").await, "503 5.5.1 Error: TLS already active\r\n");
    assert_eq!(cmd(&mut s, "MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(cmd(&mut s, "RCPT TO:<b@x.test>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(cmd(&mut s, "DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_eq!(
        cmd(&mut s, "Subject: tls\r\n\r\nover tls\r\n.").await,
        "250 2.0.0 Ok: queued as 1\r\n"
    );
    assert_eq!(cmd(&mut s, "QUIT").await, "221 2.0.0 Bye\r\n");
    let m = &srv.store().messages()[0];
    assert!(m.tls);
    assert_eq!(m.from, "a@x.test");
}

#[tokio::test]
async fn implicit_tls_greets_after_the_handshake() {
    let srv =
        TestServer::start(Options::default().with_tls(TlsOptions::Implicit(None))).await.unwrap();
    let tcp = TcpStream::connect(srv.smtp_addr()).await.unwrap();
    let mut s = handshake(&srv, tcp).await;
    assert_eq!(reply(&mut s).await, "220 mail-test-srv.test ESMTP mail-test-srv\r\n");
    assert_eq!(cmd(&mut s, "EHLO client.test").await, EHLO_REPLY);
    assert_eq!(cmd(&mut s, "MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(cmd(&mut s, "RCPT TO:<b@x.test>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(cmd(&mut s, "DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_eq!(cmd(&mut s, "x\r\n.").await, "250 2.0.0 Ok: queued as 1\r\n");
    assert!(srv.store().messages()[0].tls);

    // A plaintext client on the TLS port fails the handshake; the server counts it and goes on.
    let mut plain = Client::connect(srv.smtp_addr()).await;
    plain.send(b"EHLO client.test\r\n").await;
    assert!(eventually(Duration::from_secs(5), || srv.stats().tls_handshake_failures == 1).await);
    let tcp = TcpStream::connect(srv.smtp_addr()).await.unwrap();
    let mut s = handshake(&srv, tcp).await;
    assert_eq!(reply(&mut s).await, "220 mail-test-srv.test ESMTP mail-test-srv\r\n");
}

#[tokio::test]
async fn a_given_certificate_is_used() {
    let (cert, key) = mail_test_srv::self_signed().unwrap();
    let opts = Options::default().with_tls(TlsOptions::Implicit(Some((cert.clone(), key))));
    let srv = TestServer::start(opts).await.unwrap();
    assert_eq!(srv.certificate_pem().as_deref(), Some(cert.as_str()));
    let bad =
        Options::default().with_tls(TlsOptions::StartTls(Some(("junk".into(), "junk".into()))));
    let err = TestServer::start(bad).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn auth_is_required_and_checked() {
    let srv = TestServer::start(Options::default().with_auth("user", "s3cret")).await.unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(ehlo.ends_with("250-ENHANCEDSTATUSCODES\r\n250 AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "530 5.7.0 Authentication required\r\n");
    let wrong = B64.encode(b"\0user\0nope");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {wrong}")).await,
        "535 5.7.8 Error: authentication failed\r\n"
    );
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(c.cmd(&B64.encode("user")).await, "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(c.cmd(&B64.encode("s3cret")).await, "235 2.7.0 Authentication successful\r\n");
    assert_eq!(
        c.send_message("a@x.test", "b@x.test", "authed\r\n").await,
        "250 2.0.0 Ok: queued as 1\r\n"
    );
    assert_eq!(srv.store().messages()[0].auth_user.as_deref(), Some("user"));
}
