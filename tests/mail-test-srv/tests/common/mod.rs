//! Helpers shared by the integration tests: a strict raw SMTP client and a tiny HTTP client.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Every read in these tests gives up after this long, so a bug fails a test instead of
/// hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A raw SMTP client that returns replies as exact wire text.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    /// Connects (no greeting read yet).
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        let (r, w) = stream.into_split();
        Client { reader: BufReader::new(r), writer: w }
    }

    /// Connects and checks the greeting.
    pub async fn greeted(addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr).await;
        assert_eq!(c.reply().await, "220 mail-test-srv.test ESMTP mail-test-srv\r\n");
        c
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    /// Writes raw bytes, ignoring errors (the server may already have closed).
    pub async fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await
    }

    /// Reads one whole reply (all its lines) as exact wire text; `""` on EOF.
    pub async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(IO_TIMEOUT, self.reader.read_line(&mut line))
                .await
                .expect("reply timed out")
                .expect("read failed (the server must close cleanly, not reset)");
            if n == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Sends `line` + CRLF and reads the reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Whether the server closed without sending anything more.
    pub async fn at_eof(&mut self) -> bool {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(IO_TIMEOUT, self.reader.read(&mut buf)).await.expect("timed out")
        {
            Ok(0) => true,
            Ok(n) => panic!("expected EOF, got {:?}", String::from_utf8_lossy(&buf[..n])),
            // A reset also means closed, but the server is meant to close cleanly.
            Err(e) => panic!("expected a clean EOF, got {e}"),
        }
    }

    /// EHLO, MAIL, RCPT, DATA, content, final dot: returns the reply to the final dot.
    pub async fn send_message(&mut self, from: &str, to: &str, content: &str) -> String {
        assert_eq!(self.cmd(&format!("MAIL FROM:<{from}>")).await, "250 2.1.0 Ok\r\n");
        assert_eq!(self.cmd(&format!("RCPT TO:<{to}>")).await, "250 2.1.5 Ok\r\n");
        assert_eq!(self.cmd("DATA").await, "354 End data with <CR><LF>.<CR><LF>\r\n");
        self.send(content.as_bytes()).await;
        self.cmd(".").await
    }

    /// Splits back into the halves (to drop or reuse them).
    pub fn into_parts(self) -> (BufReader<OwnedReadHalf>, OwnedWriteHalf) {
        (self.reader, self.writer)
    }
}

/// The EHLO reply of a default server (no TLS, no AUTH).
pub const EHLO_REPLY: &str = "250-mail-test-srv.test\r\n250-PIPELINING\r\n250-SIZE 10485760\r\n\
250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n";

/// A blocking HTTP request on a blocking thread: `(status, body)`.
pub async fn http(method: &str, url: String, body: Option<String>) -> (u16, String) {
    let method = method.to_owned();
    tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
        let req = agent.request(&method, &url);
        let res = match body {
            Some(b) => req.set("content-type", "application/json").send_string(&b),
            None => req.call(),
        };
        match res {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{method} {url}: {e}"),
        }
    })
    .await
    .unwrap()
}

/// `GET` shorthand.
pub async fn get(url: String) -> (u16, String) {
    http("GET", url, None).await
}

/// Polls a condition until it holds or a timeout passes (the one harness's async wait).
#[allow(unused_imports)]
pub use test_support::wait_until_async as eventually;
