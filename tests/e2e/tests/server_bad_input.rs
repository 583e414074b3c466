//! Bad input to the real `mail-test-srv` binary: random byte streams, 1,000 concurrent
//! connections, 1 MiB lines, fifty unterminated 10 MB lines, half-closed sockets and running
//! out of file descriptors. Afterwards it has not crashed, a normal client is still served, and
//! its memory stayed bounded (read from `/proc/PID/status`). The parser and the session state
//! machine are fuzzed inside the crate (`command.rs`, `session.rs`, `data.rs`).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::smtp::send_one;
use e2e::srv::{SrvProcess, stat};
use test_support::memory_kib;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

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

/// What one hostile client of [`fifty_unterminated_lines`] does before it sends its line.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Right after EHLO: the line is a command.
    Command,
    /// After `354`: the line is message content.
    Data,
}

/// Connects, gets to `phase`, then sends `len` bytes without any line end, and holds the
/// connection open until `release` fires.
async fn unterminated_line(
    addr: SocketAddr,
    phase: Phase,
    len: usize,
    sent: Arc<tokio::sync::Barrier>,
    release: Arc<tokio::sync::Notify>,
) -> Result<(), String> {
    let mut stream = connect(addr).await?;
    read_reply(&mut stream).await?;
    stream.write_all(b"EHLO long.test\r\n").await.map_err(|e| e.to_string())?;
    read_reply(&mut stream).await?;
    if let Phase::Data = phase {
        let envelope = b"MAIL FROM:<a@x.test>\r\nRCPT TO:<long@x.test>\r\nDATA\r\n";
        stream.write_all(envelope).await.map_err(|e| e.to_string())?;
        for expected in ["250", "250", "354"] {
            let reply = read_reply(&mut stream).await?;
            if !reply.starts_with(expected) {
                return Err(format!("expected {expected}, got {reply:?}"));
            }
        }
    }
    let chunk = vec![b'L'; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).await.map_err(|e| format!("{phase:?}: {e}"))?;
        left -= n;
    }
    stream.flush().await.map_err(|e| e.to_string())?;
    sent.wait().await;
    release.notified().await;
    Ok(())
}

/// Fifty clients each send a 10 MB line with no end inside DATA (under the 10 MiB message
/// cap, so content a server must hold) and fifty more as a command, all at once, and keep
/// their connections open. The server's peak RSS stays under 100 MB: command lines are
/// discarded past 4 KiB, and content beyond each connection's 64 KiB allowance comes from a
/// 64 MiB budget shared by all (the clients past it will get `452` at their final dot).
/// Meanwhile a normal client is served, and once the hostile clients leave, their memory is
/// given back: a 5 MB message is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_unterminated_ten_mb_lines_stay_under_100_mb() {
    const CLIENTS: usize = 50;
    const LINE: usize = 10_000_000;
    let mut srv = start_binary(&[]);
    let addr = srv.smtp_addr();
    let pid = srv.pid().unwrap();
    let (rss_before, _) = memory_kib(pid).unwrap();
    let started = Instant::now();
    let sent = Arc::new(tokio::sync::Barrier::new(2 * CLIENTS + 1));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut tasks = tokio::task::JoinSet::new();
    for phase in [Phase::Data, Phase::Command] {
        for _ in 0..CLIENTS {
            let (sent, release) = (Arc::clone(&sent), Arc::clone(&release));
            tasks.spawn(async move {
                let result = unterminated_line(addr, phase, LINE, Arc::clone(&sent), release).await;
                if result.is_err() {
                    // Still count down, so the main task is not left waiting forever.
                    sent.wait().await;
                }
                result
            });
        }
    }
    let all_sent = tokio::time::timeout(Duration::from_secs(120), sent.wait()).await;
    assert!(all_sent.is_ok(), "the server did not read the {} lines within 120 s", 2 * CLIENTS);
    let sent_in = started.elapsed();
    let (rss_held, hwm_held) = memory_kib(pid).unwrap();
    // A normal client, while all of them hold their connections.
    let srv_ref = &mut srv;
    tokio::task::block_in_place(|| assert_still_serves(srv_ref, "while 100 lines are open"));
    release.notify_waiters();
    let mut failures = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Err(e) = result.unwrap() {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} clients failed, first: {}", failures.len(), failures[0]);
    println!(
        "{} unterminated 10 MB lines ({CLIENTS} in DATA, {CLIENTS} as commands) sent in \
         {sent_in:?}; server RSS {rss_before} KiB before, {rss_held} KiB while held, VmHWM \
         {hwm_held} KiB",
        2 * CLIENTS
    );
    assert!(hwm_held < 100 * 1000, "VmHWM {hwm_held} KiB: over 100 MB");

    // The budget is back: a 5 MB message needs most of it.
    let big = format!("Subject: big\n\n{}\n", "b".repeat(5_000_000));
    tokio::task::block_in_place(|| {
        let mut session = e2e::smtp::Session::connect(addr, Duration::from_secs(30))?;
        session.command_expect("EHLO client.test", 250)?;
        session.send("a@x.test", "big@x.test", &big)
    })
    .expect("a 5 MB message once the hostile clients left");
    let stats = tokio::task::block_in_place(|| srv.http().stats()).unwrap();
    assert_eq!(stat(&stats, "rejected_memory"), 0, "nobody reached a final dot: {stats}");
}

/// The server runs out of file descriptors (its limit lowered to 64 with `prlimit`): accept
/// fails with EMFILE, the server logs it, counts it, and pauses instead of spinning; clients
/// past the limit wait in the listen backlog and are greeted as soon as others leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_the_server_pauses_then_recovers() {
    const CLIENTS: usize = 100;
    let srv = start_binary(&[]);
    let addr = srv.smtp_addr();
    let pid = srv.pid().unwrap();
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=64:64"])
        .status()
        .expect("prlimit (util-linux)");
    assert!(limited.success());
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(connect(addr).await.expect("the backlog takes the connection"));
    }
    // Those with a descriptor are greeted; the rest wait.
    let mut greeted = Vec::new();
    let mut waiting = Vec::new();
    for mut client in clients {
        let greeting = tokio::time::timeout(Duration::from_millis(300), read_reply(&mut client));
        match greeting.await {
            Ok(Ok(reply)) if reply.starts_with("220 ") => greeted.push(client),
            Ok(other) => panic!("unexpected greeting {other:?}"),
            Err(_) => waiting.push(client),
        }
    }
    assert!(!waiting.is_empty(), "all {CLIENTS} greeted: the limit did not bite");
    assert!(greeted.len() >= 30, "only {} greeted", greeted.len());
    // While out of descriptors, the accept loop pauses: it does not burn a core.
    let cpu = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
        // utime and stime, fields 14 and 15 of stat(5), in clock ticks (100 a second here).
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let (cpu_before, wall) = (cpu(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticks = cpu(pid) - cpu_before;
    let wall = wall.elapsed();
    println!(
        "out of descriptors: {} greeted, {} waiting; server CPU {ticks} ticks in {wall:?}",
        greeted.len(),
        waiting.len()
    );
    assert!(ticks < 25, "{ticks} ticks of CPU in {wall:?} while out of descriptors");
    // Those greeted leave; every waiting client is then greeted.
    for mut client in greeted {
        client.get_mut().write_all(b"QUIT\r\n").await.unwrap();
        let _ = read_reply(&mut client).await;
    }
    for client in &mut waiting {
        let greeting = read_reply(client).await.expect("greeted once descriptors were free");
        assert!(greeting.starts_with("220 "), "{greeting:?}");
    }
    drop(waiting);
    let http = srv.http().clone();
    let stats = tokio::task::spawn_blocking(move || http.stats().unwrap()).await.unwrap();
    assert!(stat(&stats, "accept_errors") > 0, "{stats}");
    let mut srv = srv;
    tokio::task::block_in_place(|| assert_still_serves(&mut srv, "after running out of fds"));
}
