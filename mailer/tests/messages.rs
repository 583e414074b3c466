//! `send_message` end to end: a rich message as mail-test-srv stores it, and bad input (a
//! header breaking the line, a non-ASCII address to a server without SMTPUTF8, an unreadable
//! attachment) refused with a clear permanent error, nothing sent, nothing panicking.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Action, Scripted, config, mock, within};
use mail_test_srv::{Options, TestServer};
use mailer::{Attachment, DryRunMailer, Email, Error, Mailer, SmtpMailer};

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_rich_message_arrives_with_its_parts_and_headers() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let m = SmtpMailer::new(config(srv.smtp_addr().port()), mock().1);
    let email = Email::new("Alice <alice@example.net>", "Report")
        .with_text("text body\n")
        .with_html("<p>html body</p>\n")
        .with_cc("carol@example.net")
        .with_reply_to("help@example.com")
        .with_header("List-Unsubscribe", "<mailto:unsub@example.com?subject=alice>")
        .with_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
        .with_attachment(Attachment::from_bytes("r.csv", "a,b\n1,2\n"));
    let sent = within(T, m.send_message(&email)).await.unwrap();
    let stored = srv.store().messages();
    assert_eq!(stored.len(), 1);
    let msg = &stored[0];
    assert_eq!(msg.to, ["alice@example.net", "carol@example.net"]);
    assert_eq!(msg.message_id.as_deref(), Some(sent.message_id.as_str()));
    let header = |name: &str| {
        msg.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    };
    assert_eq!(header("MIME-Version"), Some("1.0"));
    assert_eq!(header("List-Unsubscribe"), Some("<mailto:unsub@example.com?subject=alice>"));
    assert_eq!(header("List-Unsubscribe-Post"), Some("List-Unsubscribe=One-Click"));
    assert_eq!(header("Reply-To"), Some("help@example.com"));
    assert!(header("Content-Type").unwrap().starts_with("multipart/mixed"));
    let raw = String::from_utf8_lossy(&msg.data);
    for part in ["multipart/alternative", "text/plain", "text/html", "filename=\"r.csv\""] {
        assert!(raw.contains(part), "{part} missing:\n{raw}");
    }
    assert!(raw.contains("a,b\r\n1,2\r\n"), "{raw}");
}

#[tokio::test]
async fn bad_input_is_refused_before_any_io_and_nothing_is_sent() {
    let srv = Scripted::start(|_| Action::Ok).await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()), shared);
    let dry = DryRunMailer::new("sender@example.com", mock().1);
    let dir = tempfile::tempdir().unwrap();
    let base = || Email::new("a@example.net", "s").with_text("b");
    let cases: Vec<(&str, Email)> = vec![
        ("CR/LF in a header value", base().with_header("X-Tag", "a\r\nBcc: victim@example.org")),
        ("LF in a header name", base().with_header("X-Tag\nBcc", "victim@example.org")),
        ("a header the builder owns", base().with_header("Message-ID", "<forged@example.com>")),
        ("CR/LF in a Cc", base().with_cc("x@y.test\r\nRCPT TO:<z@y.test>")),
        (
            "an attachment that cannot be read",
            base().with_attachment(Attachment::from_path(dir.path().join("gone.pdf"))),
        ),
    ];
    for (what, email) in &cases {
        let err = within(T, m.send_message(email)).await.unwrap_err();
        assert!(err.is_permanent() && !err.is_retryable(), "{what}: {err:#}");
        assert!(!format!("{err:#}").contains('\n'), "{what}: one line: {err:?}");
        let dry_err = within(T, dry.send_message(email)).await.unwrap_err();
        assert_eq!(dry_err.to_string(), err.to_string(), "{what}: the dry run finds it too");
    }
    assert!(matches!(
        within(T, m.send_message(&cases[4].1)).await.unwrap_err(),
        Error::Attachment { .. }
    ));
    assert_eq!(srv.connections(), 0, "nothing connected");
    assert!(log.get_all_matching("event=backoff").is_empty());
    assert!(log.get_all_matching("victim").is_empty(), "{:?}", log.get_all());
}

#[tokio::test]
async fn a_non_ascii_address_to_a_server_without_smtputf8_is_refused_unsent() {
    // The scripted server offers PIPELINING, 8BITMIME and SIZE, but not SMTPUTF8.
    let mails = Arc::new(AtomicUsize::new(0));
    let seen = mails.clone();
    let srv = Scripted::start(move |s| {
        if s.stage == "mail" {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        Action::Ok
    })
    .await;
    let (log, shared) = mock();
    let m = SmtpMailer::new(config(srv.port()), shared);
    let err = within(T, m.send_mail(&["jörg@example.net"], "s", "b")).await.unwrap_err();
    assert!(err.is_permanent(), "{err:#}");
    assert!(err.to_string().contains("SMTPUTF8"), "{err:#}");
    assert_eq!(mails.load(Ordering::SeqCst), 0, "no MAIL was sent");
    assert!(log.get_all_matching("event=backoff").is_empty());
    // The connection is untouched and carries the next message.
    within(T, m.send_mail(&["jorg@example.net"], "s", "b")).await.unwrap();
    assert_eq!((srv.connections(), srv.delivered()), (1, 1));
}
