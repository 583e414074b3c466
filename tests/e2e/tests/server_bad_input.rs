//! Issue 5, item 6: bad input to `mail-test-srv`. The command parser and the session state
//! machine are fuzzed with proptest (many cases, checked against a model); a live server takes
//! random byte streams, 1,000 concurrent connections, 1 MiB lines and half-closed sockets.
//! Afterwards it has not crashed, a normal client is still served, and its memory stayed
//! bounded (read from `/proc/PID/status` of the real binary).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::smtp::send_one;
use e2e::srv::{SrvProcess, stat};
use mail_test_srv::{Action, Command, Session, SessionConfig, parse};
use proptest::prelude::*;
use test_support::memory_kib;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// `cases` cases from a fixed seed, so a new fuzz finding cannot fail an unrelated change at
/// random in CI; set `PROPTEST_RNG_SEED` to explore other inputs (a failure prints its
/// minimal input either way).
fn config(cases: u32) -> ProptestConfig {
    let mut config =
        ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() };
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x5eed_0e2e);
    }
    config
}

/// Commands shaped like SMTP, with hostile arguments: control bytes, NUL, CR/LF, non-ASCII.
fn command_line() -> impl Strategy<Value = Vec<u8>> {
    let verb = prop::sample::select(vec![
        "EHLO",
        "HELO",
        "MAIL FROM:",
        "RCPT TO:",
        "DATA",
        "RSET",
        "NOOP",
        "QUIT",
        "VRFY",
        "HELP",
        "STARTTLS",
        "AUTH",
        "ehlo",
        "MaIl FrOm:",
        "rcpt to:",
        "BDAT",
        "XCLIENT",
        "",
    ]);
    let arg = prop::collection::vec(
        prop_oneof![
            any::<u8>(),
            prop::sample::select(b"<>@:. =\r\n\0".to_vec()),
            prop::sample::select(b"abcxyz".to_vec()),
        ],
        0..80,
    );
    (verb, arg).prop_map(|(verb, arg)| {
        let mut line = verb.as_bytes().to_vec();
        line.extend(arg);
        line
    })
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(line in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(&line);
    }

    #[test]
    fn parser_never_panics_on_command_shaped_lines(line in command_line()) {
        // The connection splits input at LF before parsing, so a line holds no LF.
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default().to_vec();
        if let Ok(command) = parse(&line) {
            // What is stored (the EHLO name, the envelope addresses) and so shown by
            // `/mail/N` and logged carries no bare CR and no NUL. (VRFY and AUTH arguments are
            // not stored; the parser keeps a bare CR in them, reported to the mail-test-srv
            // owner. Their replies are covered by the check below.)
            let texts: Vec<&str> = match &command {
                Command::Ehlo(s) | Command::Helo(s) => vec![s],
                Command::Mail { from, .. } => vec![from],
                Command::Rcpt { to } => vec![to],
                _ => vec![],
            };
            for text in texts {
                prop_assert!(!text.contains(['\r', '\0']), "{:?} from {:?}", command, line);
            }
        }
        // Whatever the line, the reply on the wire is well-formed: CRLF-terminated lines of
        // `NNN-` or `NNN ` and text without CR or LF, so client input can never forge a reply.
        let config = SessionConfig {
            hostname: "mx.test".into(),
            max_message_size: 10_000,
            starttls: true,
            auth: Some(("user".into(), "pass".into())),
        };
        let mut session = Session::new(Arc::new(config), false);
        session.handle_line(b"EHLO client.test");
        let wire = session.handle_line(&line).reply.to_wire();
        let body = wire.strip_suffix("\r\n");
        prop_assert!(body.is_some(), "reply not CRLF-terminated: {:?}", wire);
        for reply_line in body.unwrap_or_default().split("\r\n") {
            prop_assert!(!reply_line.contains(['\r', '\n']), "forged reply line in {:?}", wire);
            let b = reply_line.as_bytes();
            prop_assert!(
                b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && (b[3] == b' ' || b[3] == b'-'),
                "malformed reply line {:?}", reply_line
            );
        }
    }
}

#[test]
fn parser_accepts_the_ordinary_commands() {
    assert_eq!(parse(b"EHLO client.test"), Ok(Command::Ehlo("client.test".into())));
    assert_eq!(parse(b"rcpt to:<b@x.test>"), Ok(Command::Rcpt { to: "b@x.test".into() }));
    assert_eq!(parse(b"DATA\r"), Ok(Command::Data));
    assert!(parse(b"MAIL FROM:<a@x.test\r\nRCPT TO:<evil@x.test>").is_err());
    assert!(parse(b"\xff\xfe\x00garbage").is_err());
}

/// The server's limit of rejected commands per session (`session::MAX_ERRORS`, not exported):
/// after it, a session says 421 and hangs up.
const MAX_ERRORS: u32 = 50;

/// One input to the session model: what kind of line it is, and the bytes sent.
#[derive(Debug, Clone)]
enum Input {
    Helo,
    Mail,
    Rcpt,
    Data,
    Rset,
    Noop,
    Quit,
    /// Anything the parser rejects: the session must answer 5xx and keep its state.
    Garbage(Vec<u8>),
}

impl Input {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Input::Helo => b"EHLO client.test".to_vec(),
            Input::Mail => b"MAIL FROM:<a@x.test>".to_vec(),
            Input::Rcpt => b"RCPT TO:<b@x.test>".to_vec(),
            Input::Data => b"DATA".to_vec(),
            Input::Rset => b"RSET".to_vec(),
            Input::Noop => b"NOOP".to_vec(),
            Input::Quit => b"QUIT".to_vec(),
            Input::Garbage(bytes) => bytes.clone(),
        }
    }
}

fn input() -> impl Strategy<Value = Input> {
    let garbage = prop::collection::vec(any::<u8>(), 0..40).prop_map(|mut b| {
        // A leading NUL makes sure no verb matches, whatever follows.
        b.insert(0, 0);
        Input::Garbage(b)
    });
    prop_oneof![
        3 => Just(Input::Helo),
        4 => Just(Input::Mail),
        5 => Just(Input::Rcpt),
        3 => Just(Input::Data),
        1 => Just(Input::Rset),
        1 => Just(Input::Noop),
        1 => Just(Input::Quit),
        3 => garbage,
    ]
}

proptest! {
    #![proptest_config(config(2_000))]

    /// The state machine agrees with a model of RFC 5321's command order over random
    /// sequences: MAIL only after a greeting and not nested, RCPT only inside a transaction,
    /// DATA only with a recipient, garbage answered with 5xx without changing state, and the
    /// envelope handed over at DATA holds exactly the accepted recipients.
    #[test]
    fn session_follows_the_command_order_model(inputs in prop::collection::vec(input(), 1..120)) {
        let config = SessionConfig {
            hostname: "mx.test".into(),
            max_message_size: 10_000,
            starttls: false,
            auth: None,
        };
        let mut session = Session::new(Arc::new(config), false);
        let (mut greeted, mut in_mail, mut recipients, mut errors) = (false, false, 0usize, 0u32);
        for input in inputs {
            let step = session.handle_line(&input.bytes());
            let code = step.reply.code;
            if code >= 500 {
                errors += 1;
            }
            if code == 421 {
                // The only 421 a fault-free session gives: too many errors, then hang up.
                prop_assert_eq!(step.action, Action::Close);
                prop_assert_eq!(errors, MAX_ERRORS, "421 after {} rejected commands", errors);
                break;
            }
            match input {
                Input::Helo => {
                    prop_assert_eq!(code, 250);
                    (greeted, in_mail, recipients) = (true, false, 0);
                }
                Input::Mail if greeted && !in_mail => {
                    prop_assert_eq!(code, 250);
                    in_mail = true;
                }
                Input::Mail => prop_assert_eq!(code, 503),
                Input::Rcpt if in_mail => {
                    prop_assert_eq!(code, 250);
                    recipients += 1;
                }
                Input::Rcpt => prop_assert_eq!(code, 503),
                Input::Data if recipients > 0 => {
                    prop_assert_eq!(code, 354);
                    prop_assert_eq!(step.action, Action::ReadData);
                    let envelope = session.finish_data();
                    prop_assert_eq!(envelope.to.len(), recipients);
                    prop_assert_eq!(envelope.from, "a@x.test");
                    (in_mail, recipients) = (false, 0);
                }
                Input::Data => prop_assert_eq!(code, 503),
                Input::Rset => {
                    prop_assert_eq!(code, 250);
                    (in_mail, recipients) = (false, 0);
                }
                Input::Noop => prop_assert_eq!(code, 250),
                Input::Quit => {
                    prop_assert_eq!(code, 221);
                    prop_assert_eq!(step.action, Action::Close);
                    break;
                }
                Input::Garbage(_) => prop_assert!(code >= 500, "garbage got {}", code),
            }
            if !matches!(input, Input::Quit | Input::Data) {
                prop_assert_eq!(step.action, Action::Continue);
            }
        }
    }
}

/// The release or debug `mail-test-srv` binary, started on free loopback ports.
fn start_binary(extra: &[&str]) -> SrvProcess {
    let binary = e2e::srv::binary().expect("mail-test-srv binary");
    SrvProcess::start(&binary, 0, 0, extra).expect("start mail-test-srv")
}

/// After abuse: the process is alive and a strict client still gets a message through.
fn assert_still_serves(srv: &mut SrvProcess, subject: &str) {
    assert!(srv.is_running(), "mail-test-srv exited");
    let before = srv.http().count().unwrap();
    send_one(srv.smtp_addr(), "a@x.test", "after@x.test", subject).expect("normal client served");
    assert_eq!(srv.http().count().unwrap(), before + 1);
}

/// Random byte streams, each on its own connection: random bytes mixed with SMTP fragments
/// (so some streams get deep into a transaction and DATA), some ending with a half-close (the
/// client must still get every reply, then an EOF), some just vanishing. Run against the real
/// binary so a panic anywhere would kill the process. Seeded (the seed is printed), so a failure
/// is reproducible with `E2E_SEED`.
#[test]
fn random_byte_streams_do_not_break_the_server() {
    use rand::{Rng, SeedableRng};
    const STREAMS: usize = 400;
    const FRAGMENTS: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b".",
        b"\r\n.\r\n",
        b"EHLO x\r\n",
        b"HELO x\r\n",
        b"MAIL FROM:<a@x.test>\r\n",
        b"RCPT TO:<r@x.test>\r\n",
        b"DATA\r\n",
        b"RSET\r\n",
        b"AUTH PLAIN\r\n",
        b"STARTTLS\r\n",
        b"BDAT 10\r\n",
        b"\0",
        b"\xff\xfe",
    ];
    let seed = std::env::var("E2E_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_u64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut srv = start_binary(&[]);
    let addr = srv.smtp_addr();
    let started = Instant::now();
    let (mut bytes_sent, mut half_closed, mut greeted) = (0usize, 0usize, 0usize);
    for stream_no in 0..STREAMS {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut data = Vec::new();
        for _ in 0..rng.random_range(1..40) {
            if rng.random_bool(0.5) {
                data.extend_from_slice(FRAGMENTS[rng.random_range(0..FRAGMENTS.len())]);
            } else {
                let n = rng.random_range(0..200);
                data.extend((0..n).map(|_| rng.random::<u8>()));
            }
        }
        bytes_sent += data.len();
        // The server may hang up first (too many errors): that is an answer too.
        let _ = stream.write_all(&data);
        if rng.random_bool(0.5) {
            half_closed += 1;
            let _ = stream.shutdown(Shutdown::Write);
            let mut received = Vec::new();
            let result = stream.read_to_end(&mut received);
            // A reset is possible when the server hung up with our bytes unread; a timeout
            // (no EOF within 20 s) is not.
            if let Err(e) = &result {
                assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "stream {stream_no}: no EOF");
                assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "stream {stream_no}: no EOF");
            }
            if received.starts_with(b"220 ") {
                greeted += 1;
            }
        }
    }
    println!(
        "random byte streams (seed {seed:#x}): {STREAMS} connections, {bytes_sent} bytes, \
         {half_closed} half-closed ({greeted} of them read the greeting) in {:?}",
        started.elapsed()
    );
    assert!(greeted > half_closed / 2, "few half-closed clients got a greeting");
    assert_still_serves(&mut srv, "after random bytes");
}

/// Raises this process's soft open-files limit to its hard limit with `prlimit(1)` (the
/// workspace forbids `unsafe`, so no `setrlimit(2)`), and returns the soft limit now in force.
fn raise_fd_limit() -> u64 {
    let hard = open_files_limit(Column::Hard);
    let pid = std::process::id().to_string();
    // Best effort: if prlimit is missing or refuses, the soft limit read below says so.
    let _ = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
        .status();
    open_files_limit(Column::Soft)
}

#[derive(Clone, Copy)]
enum Column {
    Soft = 0,
    Hard = 1,
}

/// This process's "Max open files" limit from `/proc/self/limits` (1,024 if unreadable).
fn open_files_limit(column: Column) -> u64 {
    const NAME: &str = "Max open files";
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find_map(|l| l.strip_prefix(NAME))
        .and_then(|rest| rest.split_whitespace().nth(column as usize))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// 1,000 clients connect at once, each greeted and each sending EHLO, all held open together;
/// then they all leave and a normal client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_connections() {
    let limit = raise_fd_limit();
    // This process holds one fd per client (the server is another process); keep headroom
    // for the other tests of this binary running in parallel.
    let clients = 1_000.min(limit.saturating_sub(200) as usize);
    println!("open-files soft limit {limit}: {clients} concurrent clients");
    assert!(clients >= 500, "open-files limit {limit} too low for this test");
    let mut srv = start_binary(&["--max-connections", "5000"]);
    let addr = srv.smtp_addr();
    let pid = srv.pid().unwrap();
    let (rss_before, _) = memory_kib(pid).unwrap();
    let started = Instant::now();
    let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let connecting = Arc::new(tokio::sync::Semaphore::new(100));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let barrier = Arc::clone(&barrier);
        let connecting = Arc::clone(&connecting);
        tasks.spawn(async move {
            let result = hold_one_connection(addr, &barrier, &connecting).await;
            if result.is_err() {
                // Still count down, so the main task is not left waiting forever.
                barrier.wait().await;
            }
            result
        });
    }
    let all_open = tokio::time::timeout(Duration::from_secs(60), barrier.wait()).await;
    assert!(all_open.is_ok(), "clients did not all get their EHLO answered within 60 s");
    let (rss_peak_connected, _) = memory_kib(pid).unwrap();
    let connected_in = started.elapsed();
    let mut failures = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Err(e) = result.unwrap() {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} clients failed, first: {}", failures.len(), failures[0]);
    let stats = tokio::task::spawn_blocking({
        let http = srv.http().clone();
        move || http.stats().unwrap()
    })
    .await
    .unwrap();
    let (_, hwm) = memory_kib(pid).unwrap();
    println!(
        "{clients} concurrent connections: all greeted in {connected_in:?}; server RSS {rss_before} KiB \
         before, {rss_peak_connected} KiB with all open, VmHWM {hwm} KiB; /stats connections {}",
        stat(&stats, "connections")
    );
    assert!(stat(&stats, "connections") >= clients as u64, "{stats}");
    // Per-connection state must be small: 1,000 idle sessions in well under 64 MiB.
    assert!(hwm < rss_before + 64 * 1024, "VmHWM {hwm} KiB for {clients} idle connections");
    let srv_ref = &mut srv;
    tokio::task::block_in_place(|| assert_still_serves(srv_ref, "after 1000 connections"));
}

async fn hold_one_connection(
    addr: SocketAddr,
    barrier: &tokio::sync::Barrier,
    connecting: &tokio::sync::Semaphore,
) -> Result<(), String> {
    // At most 100 clients in their handshake at once: a burst of 1,000 SYNs overflows the
    // listen backlog (tokio's is 1,024, minus what is not yet accepted), and the kernel then
    // silently drops handshakes that a real client would only see after SYN-ACK retries
    // (1 s, 3 s, 7 s, ...). The connections are still all held open at the same time.
    let permit = connecting.acquire().await.map_err(|e| e.to_string())?;
    let mut stream = connect(addr).await?;
    let greeting = read_reply(&mut stream).await?;
    if !greeting.starts_with("220 ") {
        return Err(format!("greeting {greeting:?}"));
    }
    stream.write_all(b"EHLO many.test\r\n").await.map_err(|e| e.to_string())?;
    let ehlo = read_reply(&mut stream).await?;
    if !ehlo.lines().last().is_some_and(|l| l.starts_with("250 ")) {
        return Err(format!("EHLO reply {ehlo:?}"));
    }
    drop(permit);
    barrier.wait().await;
    stream.write_all(b"QUIT\r\n").await.map_err(|e| e.to_string())?;
    let quit = read_reply(&mut stream).await?;
    if quit.starts_with("221") { Ok(()) } else { Err(format!("QUIT reply {quit:?}")) }
}

/// A client connection: reads replies line by line, so pipelined replies are never lost.
type Client = tokio::io::BufReader<tokio::net::TcpStream>;

async fn connect(addr: SocketAddr) -> Result<Client, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    Ok(tokio::io::BufReader::new(stream))
}

/// Reads one complete reply (all its `NNN-` lines and the final `NNN ` line).
async fn read_reply(client: &mut Client) -> Result<String, String> {
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(30), client.read_line(&mut line))
            .await
            .map_err(|_| format!("reply timed out after {reply:?}"))?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("EOF after {reply:?}"));
        }
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(reply);
        }
    }
}

/// Sends a 1 MiB line on each of `clients` connections at once (inside DATA when `in_data`)
/// and returns the replies by code.
async fn one_mib_lines(
    addr: SocketAddr,
    clients: usize,
    in_data: bool,
) -> std::collections::BTreeMap<String, usize> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        tasks.spawn(async move {
            let mut stream = connect(addr).await?;
            read_reply(&mut stream).await?;
            stream.write_all(b"EHLO big.test\r\n").await.map_err(|e| e.to_string())?;
            read_reply(&mut stream).await?;
            if in_data {
                stream
                    .write_all(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<big@x.test>\r\nDATA\r\n")
                    .await
                    .map_err(|e| e.to_string())?;
                for expected in ["250", "250", "354"] {
                    let reply = read_reply(&mut stream).await?;
                    if !reply.starts_with(expected) {
                        return Err(format!("expected {expected}, got {reply:?}"));
                    }
                }
            }
            let mut line = vec![b'A'; MIB];
            line.extend_from_slice(if in_data { b"\r\n.\r\n" } else { b"\r\n" });
            // The server may answer (and hang up) before the whole line is in: a failed write
            // is fine as long as the reply came.
            let _ = stream.write_all(&line).await;
            read_reply(&mut stream).await
        });
    }
    let mut replies = std::collections::BTreeMap::<String, usize>::new();
    while let Some(result) = tasks.join_next().await {
        let reply = result.unwrap().expect("a reply to a 1 MiB line");
        *replies.entry(reply.get(..3).unwrap_or("???").to_owned()).or_default() += 1;
    }
    replies
}

const MIB: usize = 1 << 20;

/// 1 MiB command lines on 100 connections at once get `500 line too long` and are not
/// buffered (the server's peak memory grows by far less than the 100 MiB sent); 1 MiB lines
/// inside DATA are message content: stored, and memory stays within twice what is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mib_lines_get_a_reply_and_memory_stays_bounded() {
    let mut srv = start_binary(&[]);
    let addr = srv.smtp_addr();
    let pid = srv.pid().unwrap();
    let (rss_before, _) = memory_kib(pid).unwrap();
    let started = Instant::now();
    let replies = one_mib_lines(addr, 100, false).await;
    let (_, hwm_commands) = memory_kib(pid).unwrap();
    println!(
        "100 x 1 MiB command lines in {:?}: replies by code {replies:?}; server RSS {rss_before} \
         KiB before, VmHWM {hwm_commands} KiB after",
        started.elapsed()
    );
    assert_eq!(replies.get("500").copied(), Some(100), "{replies:?}");
    assert!(hwm_commands < rss_before + 16 * 1024, "1 MiB command lines were buffered");

    let started = Instant::now();
    let replies = one_mib_lines(addr, 20, true).await;
    let (rss_after, hwm) = memory_kib(pid).unwrap();
    let stored_kib =
        tokio::task::block_in_place(|| stat(&srv.http().stats().unwrap(), "stored_bytes")) / 1024;
    println!(
        "20 x 1 MiB DATA lines in {:?}: replies by code {replies:?}; stored {stored_kib} KiB; \
         server RSS {rss_after} KiB, VmHWM {hwm} KiB",
        started.elapsed()
    );
    assert_eq!(replies.get("250").copied(), Some(20), "{replies:?}");
    assert!(stored_kib >= 20 * 1024, "{stored_kib} KiB stored");
    let bound = rss_before + 2 * stored_kib + 20 * 1024;
    assert!(hwm < bound, "VmHWM {hwm} KiB over the bound {bound} KiB");
    tokio::task::block_in_place(|| assert_still_serves(&mut srv, "after 1 MiB lines"));
}

/// Clients that half-close (shut down their sending side) at every point of a session: before
/// the greeting is read, mid-command, inside DATA. Each gets its replies and then an EOF from
/// the server (no connection left hanging), and nothing half-sent is stored.
#[test]
fn half_closed_sockets_are_answered_and_closed() {
    let mut srv = start_binary(&[]);
    let addr = srv.smtp_addr();
    let scripts: &[(&str, &[u8])] = &[
        ("nothing sent", b""),
        ("half a command", b"EHLO half"),
        ("after EHLO", b"EHLO half.test\r\n"),
        ("mid MAIL", b"EHLO half.test\r\nMAIL FROM:<a@x.te"),
        ("inside DATA", b"EHLO half.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<half@x.test>\r\nDATA\r\nSubject: cut\r\n\r\nno final dot\r\n"),
        ("pipelined then gone", b"EHLO half.test\r\nNOOP\r\nNOOP\r\nRSET\r\nVRFY x\r\n"),
    ];
    let started = Instant::now();
    for round in 0..20 {
        for (name, bytes) in scripts {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            stream.write_all(bytes).unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            let mut received = Vec::new();
            let result = stream.read_to_end(&mut received);
            assert!(result.is_ok(), "round {round}, {name}: no EOF from the server: {result:?}");
            let text = String::from_utf8_lossy(&received);
            assert!(text.starts_with("220 "), "{name}: {text:?}");
            if name.contains("after EHLO") || name.contains("pipelined") {
                assert!(text.contains("\r\n250 "), "{name}: EHLO not answered: {text:?}");
            }
        }
    }
    println!("half-closed sockets: {} connections in {:?}", 20 * scripts.len(), started.elapsed());
    let stored_half = srv
        .http()
        .messages()
        .unwrap()
        .iter()
        .filter(|m| m.to_string().contains("half@x.test"))
        .count();
    assert_eq!(stored_half, 0, "a message without its final dot was stored");
    assert_still_serves(&mut srv, "after half-closed sockets");
}
