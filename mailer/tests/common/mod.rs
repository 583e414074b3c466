//! A tiny scriptable SMTP server for behaviour the full test server cannot show (a server that
//! never answers, one that drops every MAIL forever, one that resets), and shared helpers.
#![allow(dead_code)] // each test file uses a different part

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

// The harness pieces these tests share with every other suite (each file uses some).
#[allow(unused_imports)]
pub use test_support::{field, unused_port, wait_until_async as wait_until, within};

/// What the server does at one step of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The normal reply.
    Ok,
    /// This reply line(s) instead (without the final CRLF).
    Reply(String),
    /// This reply, then close.
    ReplyClose(String),
    /// Close without a reply (EOF for the client).
    Close,
    /// Close with SO_LINGER 0: the client sees a reset.
    Reset,
    /// Never answer (the connection stays open until the client gives up).
    Silent,
    /// The normal reply, after this long.
    Slow(Duration),
}

/// Where the conversation is: `greeting`, `ehlo`, `mail`, `rcpt`, `data`, `dot` (the reply to
/// the final dot), `noop`, `rset`, `quit`, `other`.
#[derive(Debug, Clone)]
pub struct Step {
    /// 0-based connection number.
    pub conn: usize,
    pub stage: &'static str,
    pub line: String,
}

pub type Script = Arc<dyn Fn(&Step) -> Action + Send + Sync>;

/// A running scripted server.
pub struct Scripted {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    /// Messages acknowledged with 250 after the final dot.
    pub delivered: Arc<AtomicUsize>,
    /// Raw DATA payloads received (including ones not acknowledged).
    pub bodies: Arc<std::sync::Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    pub async fn start(script: impl Fn(&Step) -> Action + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, Arc::new(script))
    }

    /// Like `start`, but offering `AUTH LOGIN` (only): the `auth` steps see the client's
    /// base64 lines; `Action::Ok` accepts.
    pub async fn start_with_auth_login(
        script: impl Fn(&Step) -> Action + Send + Sync + 'static,
    ) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve_with(listener, Arc::new(script), true)
    }

    pub fn serve(listener: TcpListener, script: Script) -> Scripted {
        Self::serve_with(listener, script, false)
    }

    fn serve_with(listener: TcpListener, script: Script, auth_login: bool) -> Scripted {
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let delivered = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, d, b) = (connections.clone(), delivered.clone(), bodies.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let conn = c.fetch_add(1, Ordering::SeqCst);
                let (script, d, b) = (script.clone(), d.clone(), b.clone());
                tokio::spawn(async move {
                    let _ = session(stream, conn, script, d, b, auth_login).await;
                });
            }
        });
        Scripted { addr, connections, delivered, bodies, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn delivered(&self) -> usize {
        self.delivered.load(Ordering::SeqCst)
    }
}

/// Returns `Ok(true)` when the session must end.
async fn act(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    action: Action,
    normal: &str,
) -> std::io::Result<bool> {
    match action {
        Action::Ok => {
            w.write_all(format!("{normal}\r\n").as_bytes()).await?;
            Ok(false)
        }
        Action::Reply(r) => {
            w.write_all(format!("{r}\r\n").as_bytes()).await?;
            Ok(false)
        }
        Action::ReplyClose(r) => {
            w.write_all(format!("{r}\r\n").as_bytes()).await?;
            Ok(true)
        }
        Action::Close | Action::Reset => Ok(true),
        Action::Silent => {
            // Hold the connection open without answering until the client goes away.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(true)
        }
        Action::Slow(after) => {
            tokio::time::sleep(after).await;
            w.write_all(format!("{normal}\r\n").as_bytes()).await?;
            Ok(false)
        }
    }
}

async fn session(
    stream: TcpStream,
    conn: usize,
    script: Script,
    delivered: Arc<AtomicUsize>,
    bodies: Arc<std::sync::Mutex<Vec<String>>>,
    auth_login: bool,
) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    // Like a real server, DATA needs an accepted recipient in this transaction.
    let mut have_rcpt = false;
    let mut r = BufReader::new(r);
    let step = |stage, line: &str| Step { conn, stage, line: line.to_owned() };
    let reset = |r: BufReader<tokio::net::tcp::OwnedReadHalf>,
                 w: tokio::net::tcp::OwnedWriteHalf| {
        let s = r.into_inner().reunite(w).expect("halves of one stream");
        let _ = s.set_zero_linger();
        drop(s);
    };
    let a = script(&step("greeting", ""));
    if a == Action::Reset {
        reset(r, w);
        return Ok(());
    }
    if act(&mut w, a, "220 scripted.test ESMTP").await? {
        return Ok(());
    }
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let (stage, normal) = if upper.starts_with("EHLO") && auth_login {
            ("ehlo", "250-scripted.test\r\n250-PIPELINING\r\n250-AUTH LOGIN\r\n250 8BITMIME")
        } else if upper.starts_with("EHLO") {
            ("ehlo", "250-scripted.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000000")
        } else if auth_login && upper.starts_with("AUTH LOGIN") {
            // Username and password prompts, each answered with one base64 line.
            w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            let mut user = String::new();
            r.read_line(&mut user).await?;
            w.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let mut pass = String::new();
            r.read_line(&mut pass).await?;
            let a = script(&step("auth", &format!("{} {}", user.trim_end(), pass.trim_end())));
            let ok = "235 2.7.0 Authentication successful";
            if act(&mut w, a, ok).await? {
                return Ok(());
            }
            continue;
        } else if upper.starts_with("MAIL") {
            ("mail", "250 2.1.0 Ok")
        } else if upper.starts_with("RCPT") {
            ("rcpt", "250 2.1.5 Ok")
        } else if upper.starts_with("DATA") {
            ("data", "354 End data with <CR><LF>.<CR><LF>")
        } else if upper.starts_with("NOOP") {
            ("noop", "250 2.0.0 Ok")
        } else if upper.starts_with("RSET") {
            ("rset", "250 2.0.0 Ok")
        } else if upper.starts_with("QUIT") {
            ("quit", "221 2.0.0 Bye")
        } else {
            ("other", "500 5.5.2 Error: command not recognized")
        };
        let mut a = script(&step(stage, line.trim_end()));
        match stage {
            "mail" | "rset" => have_rcpt = false,
            "rcpt" if a == Action::Ok => have_rcpt = true,
            "data" if a == Action::Ok && !have_rcpt => {
                a = Action::Reply("554 5.5.1 Error: no valid recipients".into());
            }
            _ => {}
        }
        if a == Action::Reset {
            reset(r, w);
            return Ok(());
        }
        let data_accepted = stage == "data" && a == Action::Ok;
        if act(&mut w, a, normal).await? || stage == "quit" {
            return Ok(());
        }
        if data_accepted {
            let mut body = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                body.push_str(&line);
            }
            bodies.lock().unwrap().push(body);
            let a = script(&step("dot", ""));
            if a == Action::Reset {
                reset(r, w);
                return Ok(());
            }
            let ok = matches!(a, Action::Ok | Action::Slow(_));
            if act(&mut w, a, "250 2.0.0 Ok: queued").await? {
                return Ok(());
            }
            if ok {
                delivered.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// A shared Mock and the `Arc<dyn Logger>` to hand to the mailer.
pub fn mock() -> (logger::Mock, Arc<dyn logger::Logger>) {
    let log = logger::Mock::new();
    let shared: Arc<dyn logger::Logger> = Arc::new(log.clone());
    (log, shared)
}

/// A plain-text config for a loopback test server with small real durations.
pub fn config(port: u16) -> mailer::Config {
    mailer::Config::new("127.0.0.1", port, "sender@example.com")
        .with_tls(mailer::Tls::None)
        .with_helo_name("client.test")
        .with_retry_base(Duration::from_millis(5))
        .with_retry_max(Duration::from_millis(100))
        .with_max_attempts(5)
        .with_connect_timeout(Duration::from_secs(2))
        .with_command_timeout(Duration::from_millis(500))
}

/// The `event=` names of the log lines, in order.
pub fn events(log: &logger::Mock) -> Vec<String> {
    test_support::events(&log.get_all())
}

/// The index of the first event named `name` at or after index `from` of `events(log)`.
pub fn position(ev: &[String], name: &str, from: usize) -> Option<usize> {
    ev.iter().skip(from).position(|e| e == name).map(|p| p + from)
}

/// The `delay_ms` of every `backoff` line, in order.
pub fn delays(log: &logger::Mock) -> Vec<u64> {
    log.get_all_matching("event=backoff ")
        .iter()
        .map(|l| field(l, "delay_ms").unwrap().parse().unwrap())
        .collect()
}

/// Sends one message to `srv` with a second backoff of about ten minutes, calls `close`
/// during it, and returns the send's error, the log and how long `close` and the send's end
/// took.
pub async fn closed_in_a_long_backoff(srv: &Scripted) -> (mailer::Error, logger::Mock, Duration) {
    use mailer::Mailer;
    const T: Duration = Duration::from_secs(30);
    let (log, shared) = mock();
    let cfg = config(srv.port()).with_retry_base(Duration::from_secs(600)).with_max_attempts(5);
    let m = Arc::new(mailer::SmtpMailer::new(cfg, shared));
    let sender = {
        let m = m.clone();
        tokio::spawn(async move { m.send_mail(&["a@example.net"], "s", "b").await })
    };
    // Attempt 0 retries at once; attempt 1 sleeps about ten minutes.
    assert!(wait_until(T, || log.expect_match("event=backoff attempt=1 ").is_ok()).await);
    let started = Instant::now();
    within(Duration::from_secs(5), m.close()).await;
    let err = within(Duration::from_secs(5), sender).await.unwrap().unwrap_err();
    (err, log, started.elapsed())
}

/// "Server gone away": starts a send to a loopback port where nothing listens, calls
/// `start_server(port)` two seconds later, and returns the send's outcome, its log and the
/// server. The mailer backs off from 50 ms up to 800 ms, with attempts to spare.
pub async fn send_to_a_late_server<S, F>(
    start_server: impl FnOnce(u16) -> F,
) -> (mailer::Sent, logger::Mock, S)
where
    F: Future<Output = S>,
{
    use mailer::Mailer;
    let port = unused_port();
    let (log, shared) = mock();
    let cfg = config(port)
        .with_retry_base(Duration::from_millis(50))
        .with_retry_max(Duration::from_millis(800))
        .with_max_attempts(30);
    let m = Arc::new(mailer::SmtpMailer::new(cfg, shared));
    let started = Instant::now();
    let sender = {
        let m = m.clone();
        tokio::spawn(async move { m.send_mail(&["late@example.net"], "s", "b").await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = start_server(port).await;
    let sent = within(Duration::from_secs(30), sender).await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(sent.attempts >= 3, "{sent:?}");
    let d = delays(&log);
    assert_eq!(d[0], 0, "{d:?}");
    assert!(d.windows(2).take(4).all(|w| w[1] > w[0]), "not growing: {d:?}");
    assert!(d.iter().all(|d| *d <= 800), "{d:?}");
    assert!(log.expect_match("event=reconnected ").is_ok(), "{:?}", log.get_all());
    assert_eq!(m.stats().refused, log.get_all_matching("event=reconnect_failed ").len() as u64);
    (sent, log, server)
}

/// Samples, every millisecond until dropped, how many client sockets of this machine are
/// connected (or connecting) to `127.0.0.1:port`, from the kernel's table (`/proc/net/tcp`):
/// states ESTABLISHED, SYN_SENT and CLOSE_WAIT (the server hung up, the client has not closed
/// yet). A socket the client closed no longer counts, whatever the server has noticed yet.
pub struct OpenSockets {
    max: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OpenSockets {
    pub fn watch(port: u16) -> OpenSockets {
        let max = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (m, s) = (max.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let want = format!("0100007F:{port:04X}");
            while !s.load(Ordering::Relaxed) {
                let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
                let open = table
                    .lines()
                    .skip(1)
                    .filter(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        f.len() > 3 && f[2] == want && matches!(f[3], "01" | "02" | "08")
                    })
                    .count();
                m.fetch_max(open, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        OpenSockets { max, stop, thread: Some(thread) }
    }

    /// The most seen at once so far.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }
}

impl Drop for OpenSockets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
