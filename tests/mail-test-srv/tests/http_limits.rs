//! Hostile HTTP clients: idle and half-sent connections are closed by the header timeout,
//! at most `max_connections` are held at once, and the SMTP side keeps answering meanwhile.
//!
//! Needs about 1,300 + 256 + a few file descriptors in this process (the clients and the
//! in-process server share it): the test raises its soft `RLIMIT_NOFILE` to the hard limit
//! and fails with a clear message if that is under 4,096 (`ulimit -Hn`).

mod common;

use std::time::{Duration, Instant};

use common::Client;
use mail_test_srv::{HttpLimits, Options, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDLE: usize = 1_300;

fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(hard >= 4_096, "this test needs `ulimit -Hn` >= 4096 (it is {hard})");
    limit.current = Some(hard.min(65_536));
    setrlimit(Resource::Nofile, limit).expect("raise the soft descriptor limit");
}

/// Whether the server has closed `socket`: EOF, or a reset (hyper may close with unread
/// input). Waits at most `limit`.
async fn closed_by_server(socket: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or similar before the close is fine; keep reading to the end.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_http_connections_are_closed_and_smtp_keeps_answering() {
    raise_fd_limit();
    let timeout = Duration::from_secs(1);
    let limits = HttpLimits { header_timeout: timeout, max_connections: 256 };
    let srv = TestServer::start(Options::default().with_http_limits(limits)).await.unwrap();
    let http = srv.http_addr().unwrap();

    // Connections past the cap and the listen backlog wait in the kernel (their SYNs are
    // retried), so connecting takes a few rounds already.
    let first_connect = Instant::now();
    let mut sockets = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut s = TcpStream::connect(http).await.expect("connect (is `ulimit -n` high enough?)");
        if i % 2 == 0 {
            // Half a request head, never finished.
            s.write_all(b"GET /count HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        }
        sockets.push(s);
    }

    // While every HTTP slot is taken, SMTP answers at once.
    let started = Instant::now();
    let mut c = Client::greeted(srv.smtp_addr()).await;
    assert!(c.cmd("EHLO client.test").await.starts_with("250-"));
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
    assert!(started.elapsed() < Duration::from_secs(2), "SMTP took {:?}", started.elapsed());

    // Every idle connection is closed by the server: in rounds of 256, one timeout each.
    let started = Instant::now();
    let rounds = IDLE.div_ceil(limits.max_connections) as u32;
    let bound = timeout * (rounds + 1) * 4 + Duration::from_secs(10);
    let mut open = 0;
    for s in &mut sockets {
        let left = bound.saturating_sub(started.elapsed());
        if !closed_by_server(s, left).await {
            open += 1;
        }
    }
    assert_eq!(open, 0, "{open} of {IDLE} idle connections still open after {bound:?}");
    // Not all at once: at most 256 were held, so the last ones were served rounds later.
    let took = first_connect.elapsed();
    let least = timeout * (rounds - 1);
    assert!(took >= least, "all {IDLE} closed within {took:?} (< {least:?}): no cap?");
    drop(sockets);

    // And the API answers again.
    assert_eq!(common::get(format!("http://{http}/count")).await, (200, "0\n".into()));
}

#[tokio::test]
async fn a_trickling_or_huge_body_is_refused() {
    let limits = HttpLimits { header_timeout: Duration::from_millis(500), max_connections: 8 };
    let srv = TestServer::start(Options::default().with_http_limits(limits)).await.unwrap();
    let http = srv.http_addr().unwrap();

    let mut s = TcpStream::connect(http).await.unwrap();
    s.write_all(b"PUT /chaos HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"chance\"")
        .await
        .unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut reply))
        .await
        .expect("the server never gave up on the body")
        .ok();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");

    let big = format!("{{\"chance\": 1, \"pad\": \"{}\"}}", "x".repeat(2 << 20));
    let (status, _) = common::http("PUT", format!("http://{http}/chaos"), Some(big)).await;
    assert_eq!(status, 413, "a body over the limit is read and refused, the reply readable");

    // A declared length far over the limit is refused before any of the body is read.
    let mut s = TcpStream::connect(http).await.unwrap();
    s.write_all(b"PUT /chaos HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut reply))
        .await
        .expect("the server waited for a body it will refuse")
        .ok();
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert_eq!(srv.chaos().get().chance, 0.0);
}
