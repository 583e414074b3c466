//! SMTP smuggling (CVE-2023-51764 and friends), on the wire: every sequence that some server
//! took for the end of DATA, followed by a smuggled transaction, under both `--bare-lf`
//! policies. Only `CRLF.CRLF` ends DATA, so no smuggled message is ever stored: under
//! `normalize` the smuggled text is content of the one message, under `reject` the whole
//! message is refused with `550 5.5.2`. The replies are exact.

mod common;

use common::{Client, EHLO_REPLY};
use mail_test_srv::{BareLf, Options, TestServer};
use tokio::io::AsyncReadExt;

/// The end-of-data look-alikes: (bytes sent after `body`, what `normalize` stores for them,
/// the bare character `reject` names).
const VARIANTS: &[(&str, &str, &str)] = &[
    ("\n.\n", "\r\n.\r\n", "<LF>"),
    ("\r\n.\n", "\r\n.\r\n", "<LF>"),
    ("\n.\r\n", "\r\n.\r\n", "<LF>"),
    ("\r.\r", "\r.\r", "<CR>"),
    ("\r.\r\n", "\r.\r\n", "<CR>"),
    ("\r\n.\r", "\r\n\r", "<CR>"),
    ("\n.\r", "\r\n\r", "<LF>"),
    ("\r\n.\r\r\n", "\r\n\r\r\n", "<CR>"),
    ("\n\n.\n\n", "\r\n\r\n.\r\n\r\n", "<LF>"),
];

/// What the attacker hopes runs as commands after the fake end.
const SMUGGLED: &str = "MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@x.test>\r\nDATA\r\n\
                        Subject: smuggled\r\n\r\nevil\r\n";

/// One session: a message of `body` + `variant` + the smuggled transaction, then the real
/// `CRLF.CRLF` and `QUIT` in the same write. Returns every reply after the `354`.
async fn smuggle(srv: &TestServer, variant: &str) -> String {
    let mut c = Client::greeted(srv.smtp_addr()).await;
    assert_eq!(c.cmd("EHLO client.test").await, EHLO_REPLY);
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd("RCPT TO:<b@x.test>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.cmd("DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    c.send(format!("Subject: one\r\n\r\nbody{variant}{SMUGGLED}\r\n.\r\nQUIT\r\n").as_bytes())
        .await;
    let (mut reader, _writer) = c.into_parts();
    let mut replies = String::new();
    tokio::time::timeout(common::IO_TIMEOUT, reader.read_to_string(&mut replies))
        .await
        .expect("the server closes after QUIT")
        .expect("read");
    replies
}

#[tokio::test]
async fn under_normalize_the_smuggled_text_is_content_of_the_one_message() {
    for (i, &(variant, stored, _)) in VARIANTS.iter().enumerate() {
        let srv = TestServer::start(Options::default()).await.unwrap();
        let replies = smuggle(&srv, variant).await;
        assert_eq!(replies, "250 2.0.0 Ok: queued as 1\r\n221 2.0.0 Bye\r\n", "{variant:?}");
        let messages = srv.store().messages();
        assert_eq!(messages.len(), 1, "{variant:?}: a second message was stored");
        let m = &messages[0];
        assert_eq!((m.from.as_str(), m.to.as_slice()), ("a@x.test", &["b@x.test".to_owned()][..]));
        let expected = format!("Subject: one\r\n\r\nbody{stored}{SMUGGLED}\r\n");
        assert_eq!(String::from_utf8_lossy(&m.data), expected, "variant {i}: {variant:?}");
        assert_eq!(srv.store().count_to("victim@x.test"), 0);
    }
}

#[tokio::test]
async fn under_reject_the_message_is_refused_and_nothing_is_stored() {
    for &(variant, _, bare) in VARIANTS {
        let srv = TestServer::start(Options::default().with_bare_lf(BareLf::Reject)).await.unwrap();
        let replies = smuggle(&srv, variant).await;
        let refused = format!("550 5.5.2 mail-test-srv.test Error: bare {bare} received\r\n");
        assert_eq!(replies, format!("{refused}221 2.0.0 Bye\r\n"), "{variant:?}");
        assert_eq!(srv.store().len(), 0, "{variant:?}: something was stored");
        assert_eq!(srv.stats().rejected_bare_lf, 1);
    }
}

/// Without a real `CRLF.CRLF` the content never ends: the client that hoped `<LF>.<LF>` did it
/// gets no reply at all, and when it hangs up nothing is stored.
#[tokio::test]
async fn a_fake_end_alone_gets_no_reply_and_stores_nothing() {
    for policy in [BareLf::Normalize, BareLf::Reject] {
        let srv = TestServer::start(Options::default().with_bare_lf(policy)).await.unwrap();
        let mut c = Client::greeted(srv.smtp_addr()).await;
        c.cmd("EHLO client.test").await;
        c.cmd("MAIL FROM:<a@x.test>").await;
        c.cmd("RCPT TO:<b@x.test>").await;
        assert_eq!(c.cmd("DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
        c.send(format!("Subject: one\r\n\r\nbody\n.\n{SMUGGLED}.\n").as_bytes()).await;
        let (reader, writer) = c.into_parts();
        let mut writer = writer.reunite(reader.into_inner()).unwrap();
        tokio::io::AsyncWriteExt::shutdown(&mut writer).await.unwrap();
        let mut rest = String::new();
        tokio::time::timeout(common::IO_TIMEOUT, writer.read_to_string(&mut rest))
            .await
            .expect("the server closes at EOF")
            .expect("read");
        assert_eq!(rest, "", "{policy}: a reply to content that never ended");
        assert_eq!(srv.store().len(), 0, "{policy}");
    }
}

/// Postfix's `reject` also refuses a command line that ends in a bare LF, and hangs up: what
/// follows would be misread.
#[tokio::test]
async fn under_reject_a_bare_lf_command_gets_550_and_the_connection_closes() {
    let srv = TestServer::start(Options::default().with_bare_lf(BareLf::Reject)).await.unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    assert_eq!(c.cmd("EHLO client.test").await, EHLO_REPLY);
    c.send(b"MAIL FROM:<a@x.test>\nRCPT TO:<b@x.test>\r\n").await;
    assert_eq!(c.reply().await, "550 5.5.2 mail-test-srv.test Error: bare <LF> received\r\n");
    assert!(c.at_eof().await);
    assert_eq!(srv.stats().rejected_bare_lf, 1);

    // Under normalize, LF-terminated commands work, as in Postfix.
    let srv = TestServer::start(Options::default()).await.unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.send(b"EHLO client.test\nMAIL FROM:<a@x.test>\nRCPT TO:<b@x.test>\nDATA\n").await;
    assert_eq!(c.reply().await, EHLO_REPLY);
    assert_eq!(c.reply().await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.reply().await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.reply().await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    // A DATA line that ended in a bare LF is no CRLF before the dot: the content goes on.
    c.send(b".\r\nlf\n..dot\r\n.\r\n").await;
    assert_eq!(c.reply().await, "250 2.0.0 Ok: queued as 1\r\n");
    assert_eq!(srv.store().messages()[0].data, b".\r\nlf\r\n.dot\r\n");
}
