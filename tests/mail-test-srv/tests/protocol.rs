//! The SMTP protocol against an in-process server, with exact wire bytes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, EHLO_REPLY, IO_TIMEOUT, eventually};
use mail_test_srv::{Options, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn server() -> TestServer {
    TestServer::start(Options::default()).await.unwrap()
}

#[tokio::test]
async fn every_command_gets_its_exact_reply() {
    let srv = server().await;
    let mut c = Client::greeted(srv.smtp_addr()).await;
    assert_eq!(c.cmd("EHLO client.test").await, EHLO_REPLY);
    assert_eq!(c.cmd("HELO client.test").await, "250 mail-test-srv.test\r\n");
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 Ok\r\n");
    assert_eq!(c.cmd("VRFY bob").await, "252 2.0.0 Cannot VRFY user, but will accept message\r\n");
    assert_eq!(c.cmd("HELP").await, "214 2.0.0 See RFC 5321\r\n");
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 Ok\r\n");
    assert_eq!(c.cmd("MAIL FROM:<a@x.test> SIZE=100").await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd("RCPT TO:<b@x.test>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.cmd("RCPT TO:<c@x.test>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.cmd("DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    c.send(b"Subject: hello\r\nMessage-ID: <m1@x.test>\r\n\r\nline one\r\n").await;
    assert_eq!(c.cmd(".").await, "250 2.0.0 Ok: queued as 1\r\n");
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
    assert!(c.at_eof().await);

    let store = srv.store();
    assert_eq!((store.count(), store.count_to("b@x.test"), store.count_to("c@x.test")), (2, 1, 1));
    let m = &store.messages()[0];
    assert_eq!(
        (m.from.as_str(), m.to.clone()),
        ("a@x.test", vec!["b@x.test".to_owned(), "c@x.test".to_owned()])
    );
    assert_eq!(m.data, b"Subject: hello\r\nMessage-ID: <m1@x.test>\r\n\r\nline one\r\n");
    assert_eq!(m.subject.as_deref(), Some("hello"));
    assert_eq!(m.message_id.as_deref(), Some("<m1@x.test>"));
    assert_eq!(m.body, "line one\r\n");
    assert_eq!(m.helo, "client.test");
    assert!(!m.tls);
    let stats = srv.stats();
    assert_eq!(
        (stats.connections, stats.messages, stats.deliveries, stats.bytes),
        (1, 1, 2, m.data.len() as u64)
    );
}

#[tokio::test]
async fn every_error_gets_its_exact_reply() {
    let srv = server().await;
    let mut c = Client::greeted(srv.smtp_addr()).await;
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "503 5.5.1 Error: send HELO/EHLO first\r\n");
    assert_eq!(c.cmd("FROB").await, "500 5.5.2 Error: command not recognized\r\n");
    assert_eq!(c.cmd("").await, "500 5.5.2 Error: command not recognized\r\n");
    assert_eq!(c.cmd("EHLO").await, "501 5.5.4 Syntax error: a domain name is required\r\n");
    assert_eq!(c.cmd("EHLO client.test").await, EHLO_REPLY);
    assert_eq!(c.cmd("RCPT TO:<b@x.test>").await, "503 5.5.1 Error: need MAIL command\r\n");
    assert_eq!(c.cmd("DATA").await, "503 5.5.1 Error: need MAIL command\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:a@x.test>").await,
        "501 5.5.4 Syntax error: bad character in address\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@x.test").await,
        "501 5.5.4 Syntax error: missing '>' in address\r\n"
    );
    assert_eq!(
        c.cmd("MAIL TO:<a@x.test>").await,
        "501 5.5.4 Syntax error: expected MAIL FROM:<address>\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@x.test> SIZE=x").await,
        "501 5.5.4 Syntax error: bad SIZE parameter\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@x.test> FOO=1").await,
        "555 5.5.4 Unsupported option: FOO=1\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<a@x.test> SIZE=99999999").await,
        "552 5.3.4 Message size exceeds fixed limit\r\n"
    );
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd("MAIL FROM:<a@x.test>").await, "503 5.5.1 Error: nested MAIL command\r\n");
    assert_eq!(c.cmd("DATA").await, "503 5.5.1 Error: need RCPT command\r\n");
    assert_eq!(c.cmd("RCPT TO:<>").await, "501 5.5.4 Syntax error: empty recipient\r\n");
    assert_eq!(
        c.cmd("RCPT TO:<b@x.test> NOTIFY=NEVER").await,
        "555 5.5.4 Unsupported option: NOTIFY=NEVER\r\n"
    );
    assert_eq!(c.cmd("DATA now").await, "501 5.5.4 Syntax error: no arguments allowed\r\n");
    assert_eq!(c.cmd("VRFY").await, "501 5.5.4 Syntax error: VRFY needs an argument\r\n");
    assert_eq!(c.cmd("STARTTLS").await, "502 5.5.1 Error: command not implemented\r\n");
    assert_eq!(c.cmd("AUTH PLAIN").await, "503 5.5.1 Error: authentication not enabled\r\n");
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
}

#[tokio::test]
async fn dot_unstuffing_and_bare_lf_lines() {
    let srv = server().await;
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    let reply = c.send_message("a@x.test", "b@x.test", "..one\r\n...two\r\n.\x20\r\nx.y\r\n").await;
    assert_eq!(reply, "250 2.0.0 Ok: queued as 1\r\n");
    // Bare LF ends a line inside the content, stored as CRLF; only CRLF.CRLF ends it.
    let reply = c.send_message("a@x.test", "b@x.test", "lf\n..dot\n.\nstill content\r\n").await;
    assert_eq!(reply, "250 2.0.0 Ok: queued as 2\r\n");
    let messages = srv.store().messages();
    assert_eq!(messages[0].data, b".one\r\n..two\r\n \r\nx.y\r\n");
    assert_eq!(messages[1].data, b"lf\r\n.dot\r\n.\r\nstill content\r\n");
}

#[tokio::test]
async fn smtputf8_addresses_are_stored_as_utf8_when_declared() {
    let srv = server().await;
    let mut c = Client::greeted(srv.smtp_addr()).await;
    assert!(c.cmd("EHLO client.test").await.contains("\r\n250-SMTPUTF8\r\n"));
    let undeclared = "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n";
    assert_eq!(c.cmd("MAIL FROM:<jürgen@bücher.test>").await, undeclared);
    assert_eq!(c.cmd("MAIL FROM:<a@x.test> BODY=8BITMIME").await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd("RCPT TO:<δοκιμή@παράδειγμα.test>").await, undeclared);
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 Ok\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:<jürgen@bücher.test> SMTPUTF8 BODY=8BITMIME").await,
        "250 2.1.0 Ok\r\n"
    );
    assert_eq!(c.cmd("RCPT TO:<δοκιμή@παράδειγμα.test>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.cmd("DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    c.send("Subject: grüße\r\n\r\nkörper\r\n".as_bytes()).await;
    assert_eq!(c.cmd(".").await, "250 2.0.0 Ok: queued as 1\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:<a@x.test> BODY=BINARYMIME").await,
        "555 5.5.4 Unsupported option: BODY=BINARYMIME\r\n"
    );
    let m = &srv.store().messages()[0];
    assert_eq!(
        (m.from.as_str(), m.to.as_slice()),
        ("jürgen@bücher.test", &["δοκιμή@παράδειγμα.test".to_owned()][..])
    );
    assert_eq!(m.data, "Subject: grüße\r\n\r\nkörper\r\n".as_bytes());
    assert_eq!(srv.store().count_to("δοκιμή@παράδειγμα.test"), 1);
}

/// Messages being received share a memory budget beyond 64 KiB each: a message that needs
/// more than is left is read to its final dot and refused with `452`, the session goes on,
/// and the memory is back once the other message is done.
#[tokio::test]
async fn messages_past_the_in_flight_budget_get_452() {
    let opts = Options::default().with_max_message_size(1 << 20).with_max_in_flight_bytes(1 << 20);
    let srv = TestServer::start(opts).await.unwrap();
    let line = format!("{}\r\n", "x".repeat(998));
    let (mut a, mut b) =
        (Client::greeted(srv.smtp_addr()).await, Client::greeted(srv.smtp_addr()).await);
    for c in [&mut a, &mut b] {
        c.cmd("EHLO client.test").await;
        c.cmd("MAIL FROM:<a@x.test>").await;
        c.cmd("RCPT TO:<b@x.test>").await;
        assert_eq!(c.cmd("DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    }
    // `a` holds 700 KB of the 1 MiB: `b` gets 64 KiB free, and not 700 KB more.
    a.send(line.repeat(700).as_bytes()).await;
    assert!(eventually(IO_TIMEOUT, || srv.stats().in_flight_bytes >= 600_000).await);
    b.send(line.repeat(700).as_bytes()).await;
    assert_eq!(b.cmd(".").await, "452 4.3.1 Error: insufficient system storage\r\n");
    assert_eq!(a.cmd(".").await, "250 2.0.0 Ok: queued as 1\r\n");
    let stats = srv.stats();
    assert_eq!((stats.rejected_memory, stats.in_flight_bytes), (1, 0));
    assert_eq!(
        b.send_message("a@x.test", "b@x.test", &line.repeat(700)).await,
        "250 2.0.0 Ok: queued as 2\r\n"
    );
}

#[tokio::test]
async fn a_one_mib_command_line_gets_500_and_the_session_goes_on() {
    let srv = server().await;
    let mut c = Client::greeted(srv.smtp_addr()).await;
    let mut line = b"MAIL FROM:<".to_vec();
    line.resize(1 << 20, b'a');
    line.extend_from_slice(b">\r\n");
    c.send(&line).await;
    assert_eq!(c.reply().await, "500 5.5.2 Error: line too long\r\n");
    assert_eq!(c.cmd("EHLO client.test").await, EHLO_REPLY);
    // 4096 bytes is the cap; 4097 is over.
    assert_eq!(c.cmd(&format!("NOOP {}", "x".repeat(4091))).await, "250 2.0.0 Ok\r\n");
    assert_eq!(
        c.cmd(&format!("NOOP {}", "x".repeat(4092))).await,
        "500 5.5.2 Error: line too long\r\n"
    );
    assert_eq!(
        c.send_message("a@x.test", "b@x.test", "ok\r\n").await,
        "250 2.0.0 Ok: queued as 1\r\n"
    );
}

#[tokio::test]
async fn a_one_mib_data_line_is_stored_and_a_message_over_the_limit_gets_552() {
    let srv = TestServer::start(Options::default().with_max_message_size(2 << 20)).await.unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    let big_line = "y".repeat(1 << 20);
    let reply = c
        .send_message("a@x.test", "b@x.test", &format!("Subject: big\r\n\r\n{big_line}\r\n"))
        .await;
    assert_eq!(reply, "250 2.0.0 Ok: queued as 1\r\n");
    assert_eq!(srv.store().messages()[0].body.len(), (1 << 20) + 2);

    // 3 MiB in 1 KiB lines: read to the final dot, not stored, 552, session still usable.
    let line = format!("{}\r\n", "z".repeat(1022));
    let reply = c.send_message("a@x.test", "b@x.test", &line.repeat(3 * 1024)).await;
    assert_eq!(reply, "552 5.3.4 Error: message file too big\r\n");
    // And one 3 MiB line.
    let reply =
        c.send_message("a@x.test", "b@x.test", &format!("{}\r\n", "w".repeat(3 << 20))).await;
    assert_eq!(reply, "552 5.3.4 Error: message file too big\r\n");
    assert_eq!(
        c.send_message("a@x.test", "b@x.test", "small\r\n").await,
        "250 2.0.0 Ok: queued as 2\r\n"
    );
    assert_eq!(srv.store().count(), 2);
    assert_eq!(srv.stats().rejected_too_big, 2);
}

#[tokio::test]
async fn pipelined_commands_get_every_reply_in_order() {
    let srv = server().await;
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.send(
        b"EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\n\
          DATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<d@x.test>\r\n\
          DATA\r\nsecond\r\n.\r\nNOOP\r\nQUIT\r\n",
    )
    .await;
    let (mut reader, _writer) = c.into_parts();
    let mut all = String::new();
    tokio::time::timeout(common::IO_TIMEOUT, reader.read_to_string(&mut all))
        .await
        .unwrap()
        .unwrap();
    let expected = [
        EHLO_REPLY,
        "250 2.1.0 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "354 End data with <CR><LF>.<CR><LF>\r\n",
        "250 2.0.0 Ok: queued as 1\r\n",
        "250 2.1.0 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "354 End data with <CR><LF>.<CR><LF>\r\n",
        "250 2.0.0 Ok: queued as 2\r\n",
        "250 2.0.0 Ok\r\n",
        "221 2.0.0 Bye\r\n",
    ]
    .concat();
    assert_eq!(all, expected);
    assert_eq!(srv.store().count(), 3);
}

#[tokio::test]
async fn garbage_bytes_get_500s_then_421_and_others_are_served_throughout() {
    let srv = server().await;
    let mut good = Client::greeted(srv.smtp_addr()).await;
    good.cmd("EHLO client.test").await;
    let mut bad = Client::greeted(srv.smtp_addr()).await;
    bad.send(b"\x00\xff\xfe\x16\x03\x01garbage\r\n\x1b[31m\r\n").await;
    assert_eq!(bad.reply().await, "500 5.5.2 Error: command not recognized\r\n");
    assert_eq!(bad.reply().await, "500 5.5.2 Error: command not recognized\r\n");
    assert_eq!(
        good.send_message("a@x.test", "b@x.test", "one\r\n").await,
        "250 2.0.0 Ok: queued as 1\r\n"
    );
    // A flood of garbage lines: 50 errors are answered, then 421 and close.
    let flood: Vec<u8> =
        (0..200u32).flat_map(|i| format!("\x01{i}\x7f\r\n").into_bytes()).collect();
    let _ = bad.try_send(&flood).await;
    let mut errors = 0;
    loop {
        let r = bad.reply().await;
        if r.starts_with("500 ") {
            errors += 1;
        } else {
            assert_eq!(r, "421 4.7.0 mail-test-srv.test Error: too many errors\r\n");
            break;
        }
    }
    assert_eq!(errors, 48, "2 errors before the flood + 48 = the limit of 50");
    assert!(bad.at_eof().await);
    assert_eq!(
        good.send_message("a@x.test", "b@x.test", "two\r\n").await,
        "250 2.0.0 Ok: queued as 2\r\n"
    );
}

#[tokio::test]
async fn a_client_that_vanishes_mid_data_stores_nothing_and_others_go_on() {
    let srv = server().await;
    let mut good = Client::greeted(srv.smtp_addr()).await;
    good.cmd("EHLO client.test").await;
    assert_eq!(good.cmd("MAIL FROM:<a@x.test>").await, "250 2.1.0 Ok\r\n");
    for _ in 0..5 {
        let mut gone = Client::greeted(srv.smtp_addr()).await;
        gone.cmd("EHLO client.test").await;
        gone.cmd("MAIL FROM:<a@x.test>").await;
        gone.cmd("RCPT TO:<b@x.test>").await;
        assert_eq!(gone.cmd("DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
        gone.send(b"Subject: half\r\n\r\nhalf a mess").await;
        drop(gone);
    }
    let stats = srv.stats();
    assert!(
        eventually(Duration::from_secs(5), || srv.stats().active_connections == 1).await,
        "{stats:?}"
    );
    assert_eq!(good.cmd("RCPT TO:<b@x.test>").await, "250 2.1.5 Ok\r\n");
    assert_eq!(good.cmd("DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_eq!(good.cmd("whole\r\n.").await, "250 2.0.0 Ok: queued as 1\r\n");
    assert_eq!(srv.store().count(), 1);
    assert_eq!(srv.stats().connections, 6);
}

#[tokio::test]
async fn the_store_cap_gives_452_and_stats_report_it() {
    let srv = TestServer::start(Options::default().with_max_messages(2)).await.unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    assert_eq!(
        c.send_message("a@x.test", "b@x.test", "1\r\n").await,
        "250 2.0.0 Ok: queued as 1\r\n"
    );
    assert_eq!(
        c.send_message("a@x.test", "b@x.test", "2\r\n").await,
        "250 2.0.0 Ok: queued as 2\r\n"
    );
    assert!(!srv.stats().store_full);
    assert_eq!(
        c.send_message("a@x.test", "b@x.test", "3\r\n").await,
        "452 4.3.1 Error: insufficient system storage\r\n"
    );
    let stats = srv.stats();
    assert!(stats.store_full);
    assert_eq!(
        (stats.rejected_full, stats.messages, stats.stored_messages, stats.max_messages),
        (1, 2, 2, 2)
    );
    srv.store().clear();
    assert_eq!(
        c.send_message("a@x.test", "b@x.test", "4\r\n").await,
        "250 2.0.0 Ok: queued as 3\r\n"
    );
}

#[tokio::test]
async fn connections_over_the_cap_get_421() {
    let srv = TestServer::start(Options::default().with_max_connections(2)).await.unwrap();
    let _a = Client::greeted(srv.smtp_addr()).await;
    let _b = Client::greeted(srv.smtp_addr()).await;
    let mut c = Client::connect(srv.smtp_addr()).await;
    assert_eq!(c.reply().await, "421 4.7.0 mail-test-srv.test Error: too many connections\r\n");
    assert!(c.at_eof().await);
    assert_eq!(srv.stats().rejected_connections, 1);
    drop(_a);
    assert!(eventually(Duration::from_secs(5), || srv.stats().active_connections == 1).await);
    let _d = Client::greeted(srv.smtp_addr()).await;
}

#[tokio::test]
async fn an_idle_client_gets_421_timeout() {
    let srv = TestServer::start(Options::default().with_idle_timeout(Duration::from_millis(100)))
        .await
        .unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    assert_eq!(c.reply().await, "421 4.4.2 mail-test-srv.test Error: timeout exceeded\r\n");
    assert!(c.at_eof().await);
}

#[tokio::test]
async fn shutdown_says_421_to_open_sessions_and_frees_the_port() {
    let srv = server().await;
    let addr = srv.smtp_addr();
    let mut c = Client::greeted(addr).await;
    c.cmd("EHLO client.test").await;
    srv.shutdown().await;
    assert_eq!(c.reply().await, "421 4.3.2 mail-test-srv.test Service shutting down\r\n");
    assert!(c.at_eof().await);
    // Restart on the same port, as the mailer's gone-away tests do.
    let again = TestServer::start(Options::default().with_smtp_addr(addr)).await.unwrap();
    let mut c = Client::greeted(again.smtp_addr()).await;
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_client_that_never_reads() {
    let srv = server().await;
    // A tiny receive buffer and no reads: the server's replies back up at once.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(srv.smtp_addr()).await.unwrap();
    let (_reader, mut writer) = stream.into_split();
    let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = Arc::clone(&written);
    let flood = tokio::spawn(async move {
        let chunk = b"NOOP\r\n".repeat(10_000);
        while writer.write_all(&chunk).await.is_ok() {
            progress.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
        }
    });
    // Stalled: the server stopped reading because it cannot write its replies (no progress
    // for 40 polls in a row, 200 ms at least).
    let (mut last, mut still) = (usize::MAX, 0);
    let stalled = eventually(Duration::from_secs(20), || {
        let now = written.load(std::sync::atomic::Ordering::Relaxed);
        still = if now == last { still + 1 } else { 0 };
        last = now;
        still >= 40
    });
    assert!(stalled.await, "the server kept reading a client that reads nothing");
    // The session waits for room to write; shutdown must end it, not wait out the 5-minute
    // idle limit.
    tokio::time::timeout(Duration::from_secs(10), srv.shutdown())
        .await
        .expect("shutdown waited for a client that never reads");
    flood.abort();
}

#[tokio::test]
async fn dropping_the_server_closes_the_listener() {
    let srv = server().await;
    let addr = srv.smtp_addr();
    drop(srv);
    let closed = async {
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), closed).await.expect("listener still open");
}

#[tokio::test]
async fn events_are_logged_without_bodies() {
    let log = logger::Mock::new();
    let opts = Options::default()
        .with_close_chance(100.0)
        .with_fault_stage(mail_test_srv::Stage::AfterDot);
    let srv = TestServer::start(opts.with_logger(Arc::new(log.clone()))).await.unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    let reply = c.send_message("a@x.test", "b@x.test", "secret body text\r\n").await;
    assert!(reply.is_empty() || reply.starts_with("421 "), "{reply:?}");
    assert!(
        eventually(Duration::from_secs(5), || !log.get_all_matching("fault injected").is_empty())
            .await
    );
    let lines = log.get_all();
    assert!(
        lines.iter().any(|l| l.starts_with("DEBUG: message stored id=1 recipients=1 size=18")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("fault injected stage=after_dot")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("secret body")), "{lines:?}");
}

#[tokio::test]
async fn raw_stream_survives_a_reset_mid_command() {
    let srv = server().await;
    let mut s = tokio::net::TcpStream::connect(srv.smtp_addr()).await.unwrap();
    let mut greeting = [0u8; 64];
    let _ = s.read(&mut greeting).await.unwrap();
    s.write_all(b"EHLO half-a-line-without-end").await.unwrap();
    // SO_LINGER 0: close with RST instead of FIN. (Deprecated because a non-zero linger
    // blocks the thread on drop; zero never blocks.)
    #[allow(deprecated)]
    s.set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
    let mut c = Client::greeted(srv.smtp_addr()).await;
    assert_eq!(c.cmd("EHLO client.test").await, EHLO_REPLY);
}

/// The id in `250 ... queued as <id>` is the message's id over HTTP: `GET /api/messages/<id>`
/// (and Mailpit's `/api/v1/message/<id>`) return that message, whose JSON `id`/`ID` is the
/// same decimal number, past 9 (where hex would differ) and after a `clear` (ids go on).
#[tokio::test]
async fn the_id_in_the_250_reply_fetches_the_message_over_http() {
    let srv = server().await;
    let base = srv.http_url().unwrap();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    c.cmd("EHLO client.test").await;
    let mut sent = Vec::new();
    for n in 0..20 {
        if n == 12 {
            srv.store().clear();
        }
        let reply = c
            .send_message("a@x.test", "b@x.test", &format!("Subject: number {n}\r\n\r\nx\r\n"))
            .await;
        let id = reply
            .strip_prefix("250 2.0.0 Ok: queued as ")
            .and_then(|r| r.strip_suffix("\r\n"))
            .unwrap_or_else(|| panic!("{reply:?}"));
        sent.push((n, id.parse::<u64>().expect("a decimal id")));
    }
    assert_eq!(sent.last().unwrap().1, 20);
    for &(n, id) in &sent[12..] {
        let (status, body) = common::get(format!("{base}/api/messages/{id}")).await;
        assert_eq!(status, 200, "{id}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (json["id"].as_u64(), json["subject"].as_str()),
            (Some(id), Some(&*format!("number {n}")))
        );
        let (status, body) = common::get(format!("{base}/api/v1/message/{id}")).await;
        assert_eq!(status, 200, "{id}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["ID"].as_str(), Some(&*id.to_string()));
    }
    // Cleared ones are gone, not renumbered.
    assert_eq!(common::get(format!("{base}/api/messages/{}", sent[0].1)).await.0, 404);
}

/// After QUIT the server closes at once; input a client still pipelined behind it is read and
/// dropped first, so the client gets its 221 and a clean EOF, never a reset.
#[tokio::test]
async fn quit_closes_cleanly_even_with_input_behind_it() {
    let srv = server().await;
    for tail in ["", "NOOP\r\nRSET\r\n"] {
        let mut c = Client::greeted(srv.smtp_addr()).await;
        c.send(format!("QUIT\r\n{tail}").as_bytes()).await;
        assert_eq!(c.reply().await, "221 2.0.0 Bye\r\n", "{tail:?}");
        assert!(c.at_eof().await, "{tail:?}");
    }
}
