//! The accept loop and the per-connection handler: reads lines, drives the [`Session`],
//! stores messages, and injects faults where [`Chaos`] says so.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection::{Budget, Connection, Data, MAX_COMMAND_LINE, ReadLine};
use crate::fault::{Chaos, FaultKind, Stage};
use crate::reply::Reply;
use crate::session::{Action, Session, SessionConfig};
use crate::stats::Counters;
use crate::store::{Store, StoreError, StoredMessage};
use crate::tls::{ServerTls, Stream};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection keeps draining client input (see [`Connection::close`]).
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// How long a session told `421` at shutdown may take to get it out.
const SHUTDOWN_LINGER: Duration = Duration::from_millis(500);

/// How long the accept loop pauses after an accept error that is not about one connection
/// (out of descriptors or memory), so the tasks holding descriptors get the CPU to free them.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);
/// At most one "accept failed" warning per this long; the ones in between are counted.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(1);

/// Everything the sessions share.
pub(crate) struct Shared {
    /// What each session needs.
    pub(crate) session: Arc<SessionConfig>,
    /// The TLS acceptor when TLS is on.
    pub(crate) tls: Option<ServerTls>,
    /// The certificate the server presents, PEM.
    pub(crate) certificate_pem: Option<String>,
    /// TLS from the first byte (else STARTTLS when `tls` is set).
    pub(crate) implicit_tls: bool,
    /// The mailbox.
    pub(crate) store: Store,
    /// The fault controller.
    pub(crate) chaos: Chaos,
    /// The counters.
    pub(crate) counters: Arc<Counters>,
    /// Memory for messages being received, all connections together.
    pub(crate) budget: Arc<Budget>,
    /// Where events go.
    pub(crate) logger: Arc<dyn logger::Logger>,
    /// Concurrent connection cap.
    pub(crate) max_connections: usize,
    /// Per-connection idle limit.
    pub(crate) idle_timeout: Duration,
}

/// Accepts SMTP connections on `listener` until `shutdown` is cancelled, spawning one task per
/// connection on `tracker`.
///
/// The loop never ends on an accept error. One that concerns a single connection (reset or
/// aborted before it was accepted) is skipped. Any other (out of descriptors, EMFILE, or
/// memory) is logged at most once a second, with a count of those in between, and the loop
/// pauses 50 ms before it accepts again: the connection stays in the listen backlog until a
/// descriptor is free, and a tight retry loop would only burn the CPU that the sessions need
/// to finish and free theirs. During a gone-away window each new connection is accepted and
/// closed at once, before any greeting. Over `max_connections` a connection gets `421` and is
/// closed.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut warned: Option<Instant> = None;
    let mut unlogged = 0u64;
    loop {
        let (socket, peer) = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if is_per_connection(&e) => {
                    logger::debug!(shared.logger, "accept failed for one connection"; error = e);
                    continue;
                }
                Err(e) => {
                    shared.counters.accept_errors.fetch_add(1, Relaxed);
                    if warned.is_none_or(|t| t.elapsed() >= ACCEPT_WARNING_EVERY) {
                        logger::warning!(shared.logger, "accept failed, pausing";
                            error = e, pause_ms = ACCEPT_PAUSE.as_millis(), since_last = unlogged);
                        warned = Some(Instant::now());
                        unlogged = 0;
                    } else {
                        unlogged += 1;
                    }
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(ACCEPT_PAUSE) => {}
                    }
                    continue;
                }
            },
        };
        let counters = &shared.counters;
        counters.connections.fetch_add(1, Relaxed);
        if shared.chaos.is_gone_away() {
            counters.refused.fetch_add(1, Relaxed);
            logger::debug!(shared.logger, "connection refused: gone away"; peer = peer);
            drop(socket);
            continue;
        }
        // Small replies must not wait for Nagle; the client waits for each of them.
        let _ = socket.set_nodelay(true);
        let active = counters.active.fetch_add(1, Relaxed) + 1;
        let guard = ActiveGuard(Arc::clone(counters));
        if active as usize > shared.max_connections {
            counters.rejected_connections.fetch_add(1, Relaxed);
            logger::warning!(shared.logger, "too many connections"; peer = peer, limit = shared.max_connections);
            let shared = Arc::clone(&shared);
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let _guard = guard;
                let budget = Arc::clone(&shared.budget);
                let mut conn = Connection::new(Stream::Plain(socket), shared.idle_timeout, budget);
                let text = format!("4.7.0 {} Error: too many connections", shared.session.hostname);
                conn.push_reply(&Reply::new(421, text));
                tokio::select! {
                    _ = conn.close(Duration::from_millis(100)) => {}
                    () = shutdown.cancelled() => {}
                }
            });
            continue;
        }
        let doomed = shared.chaos.take_close_first();
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _guard = guard;
            if let Err(e) = handle(&shared, socket, peer, doomed, shutdown).await {
                logger::debug!(shared.logger, "connection ended with an error"; peer = peer, error = e);
            }
        });
    }
}

/// Whether an accept error concerns only the connection being accepted (the client reset or
/// gave up between its SYN and our accept), not the server's own state.
fn is_per_connection(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted)
}

struct ActiveGuard(Arc<Counters>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

/// Serves one connection. Shutdown is watched here, around the whole session, rather than in
/// every read and write (a waiter on the shared token per read serialised every session on
/// its lock): the session is dropped where it waits, and the connection, whose methods are
/// cancel-safe, says `421` and closes.
async fn handle(
    shared: &Shared,
    socket: TcpStream,
    peer: SocketAddr,
    doomed: bool,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let stream = match (&shared.tls, shared.implicit_tls) {
        // Boxed, here and at STARTTLS: a handshake's state is three times the rest of the
        // session's, and every connection's task would carry (and copy) it otherwise.
        (Some(tls), true) => {
            match Box::pin(handshake(shared, tls, socket, peer, &shutdown)).await {
                Some(stream) => stream,
                None => return Ok(()),
            }
        }
        _ => Stream::Plain(socket),
    };
    let budget = Arc::clone(&shared.budget);
    let mut conn = Connection::new(stream, shared.idle_timeout, budget);
    let served = tokio::select! {
        biased;
        served = serve(shared, &mut conn, peer, doomed, &shutdown) => served,
        () = shutdown.cancelled() => {
            let text = format!("4.3.2 {} Service shutting down", shared.session.hostname);
            conn.push_reply(&Reply::new(421, text));
            // What fits in the socket buffer goes out; a client that reads nothing is not
            // waited for.
            let _ = tokio::time::timeout(SHUTDOWN_LINGER, conn.close(Duration::ZERO)).await;
            return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "server shutting down"));
        }
    };
    match served {
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            let text = format!("4.4.2 {} Error: timeout exceeded", shared.session.hostname);
            conn.push_reply(&Reply::new(421, text));
            let closing = tokio::time::timeout(Duration::from_secs(1), conn.close(Duration::ZERO));
            tokio::select! {
                _ = closing => {}
                () = shutdown.cancelled() => {}
            }
            Err(e)
        }
        other => other,
    }
}

async fn handshake(
    shared: &Shared,
    tls: &ServerTls,
    socket: TcpStream,
    peer: SocketAddr,
    shutdown: &CancellationToken,
) -> Option<Stream> {
    let accept = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(socket));
    let result = tokio::select! {
        r = accept => r,
        () = shutdown.cancelled() => return None,
    };
    match result {
        Ok(Ok(stream)) => Some(Stream::Tls(Box::new(stream))),
        Ok(Err(e)) => {
            shared.counters.tls_handshake_failures.fetch_add(1, Relaxed);
            logger::info!(shared.logger, "TLS handshake failed"; peer = peer, error = e);
            None
        }
        Err(_) => {
            shared.counters.tls_handshake_failures.fetch_add(1, Relaxed);
            logger::info!(shared.logger, "TLS handshake timed out"; peer = peer);
            None
        }
    }
}

/// At `stage`: waits out a configured delay, then draws a fault; when one fires, counts and
/// logs it. The caller applies it ([`close_with`] or a reject reply).
///
/// `doomed` (a close-first connection) is spent by the first fault: in reject mode the
/// session goes on, and its later commands must take their chances like anyone else's.
async fn draw(
    shared: &Shared,
    conn: &mut Connection<Stream>,
    stage: Stage,
    doomed: &mut bool,
    peer: SocketAddr,
) -> io::Result<Option<FaultKind>> {
    if let Some(delay) = shared.chaos.delay(stage) {
        conn.pause(delay).await?;
    }
    let Some(kind) = shared.chaos.draw(stage, *doomed) else {
        return Ok(None);
    };
    *doomed = false;
    shared.counters.fault(stage, kind);
    logger::info!(shared.logger, "fault injected"; stage = stage, kind = kind.as_str(), peer = peer);
    Ok(Some(kind))
}

/// Ends the connection as a close or 421 fault says (replies queued earlier are still sent
/// first). A reject at a stage that cannot continue (the greeting) sends its code, then closes.
async fn close_with(
    shared: &Shared,
    conn: &mut Connection<Stream>,
    kind: FaultKind,
) -> io::Result<()> {
    match kind {
        FaultKind::Close => {}
        FaultKind::Reply421 => conn.push_reply(&Session::fault_421(&shared.session.hostname)),
        FaultKind::Reject(code) => {
            conn.push_reply(&Session::fault_reject(code, &shared.session.hostname))
        }
    }
    conn.close(CLOSE_LINGER).await
}

async fn serve(
    shared: &Shared,
    conn: &mut Connection<Stream>,
    peer: SocketAddr,
    mut doomed: bool,
    shutdown: &CancellationToken,
) -> io::Result<()> {
    let mut session = Session::new(Arc::clone(&shared.session), shared.implicit_tls);
    if let Some(kind) = draw(shared, conn, Stage::Greeting, &mut doomed, peer).await? {
        return close_with(shared, conn, kind).await;
    }
    conn.push_reply(&session.greeting());
    loop {
        let (step, bare_lf) = match conn.read_line(MAX_COMMAND_LINE).await? {
            ReadLine::Eof => return Ok(()),
            ReadLine::TooLong => (session.line_too_long(), false),
            ReadLine::Line { range, bare_lf: false } => {
                (session.handle_line(conn.line(range)), false)
            }
            ReadLine::Line { range, bare_lf: true } => {
                let step = session.handle_bare_lf_line(conn.line(range));
                if step.action == Action::Close {
                    shared.counters.rejected_bare_lf.fetch_add(1, Relaxed);
                    logger::info!(shared.logger, "bare LF in a command, closing"; peer = peer);
                }
                (step, true)
            }
        };
        if let Some(stage) = step.stage {
            match draw(shared, conn, stage, &mut doomed, peer).await? {
                None => {}
                Some(FaultKind::Reject(code)) => {
                    // The command is refused: undo what the session did with it, skip its action.
                    session.undo(stage);
                    conn.push_reply(&Session::fault_reject(code, &shared.session.hostname));
                    continue;
                }
                Some(kind) => return close_with(shared, conn, kind).await,
            }
        }
        conn.push_reply(&step.reply);
        match step.action {
            Action::Continue => conn.flush_if_large().await?,
            Action::Quit => return conn.quit(CLOSE_LINGER).await,
            Action::Close => return conn.close(CLOSE_LINGER).await,
            Action::StartTls => {
                conn.flush().await?;
                let Some(tls) = &shared.tls else { return Ok(()) };
                // replace_stream drops pipelined plaintext, as RFC 3207 requires.
                let Stream::Plain(tcp) = conn.replace_stream(Stream::Closed) else {
                    return Ok(());
                };
                let Some(stream) = Box::pin(handshake(shared, tls, tcp, peer, shutdown)).await
                else {
                    return Ok(());
                };
                conn.replace_stream(stream);
                session.tls_started();
            }
            Action::ReadData => {
                let config = &shared.session;
                let data =
                    conn.read_data(config.max_message_size, config.bare_lf, !bare_lf).await?;
                let envelope = session.finish_data();
                match data {
                    Data::Eof => return Ok(()),
                    Data::Complete => {}
                    Data::TooBig => {
                        shared.counters.rejected_too_big.fetch_add(1, Relaxed);
                        conn.push_reply(&Session::too_big());
                        continue;
                    }
                    Data::NoRoom => {
                        shared.counters.rejected_memory.fetch_add(1, Relaxed);
                        logger::warning!(shared.logger, "no memory left for messages being received, message refused";
                            max_in_flight_bytes = shared.budget.limit(), peer = peer);
                        conn.push_reply(&Session::store_full());
                        continue;
                    }
                    Data::Bare(bare) => {
                        shared.counters.rejected_bare_lf.fetch_add(1, Relaxed);
                        logger::info!(shared.logger, "bare line ending in content, message refused"; peer = peer);
                        conn.push_reply(&session.bare_received(bare));
                        continue;
                    }
                }
                // Drawn before storing: a rejected message is not stored, while after a close
                // or 421 it is (the client cannot know: "delivery unknown").
                let fault = draw(shared, conn, Stage::AfterDot, &mut doomed, peer).await?;
                if let Some(FaultKind::Reject(code)) = fault {
                    conn.push_reply(&Session::fault_reject(code, &shared.session.hostname));
                    continue;
                }
                let size = conn.content().len();
                let recipients = envelope.to.len();
                let mut message =
                    StoredMessage::unparsed(envelope.from, envelope.to, conn.content().to_vec());
                conn.release_content();
                message.tls = conn.stream().is_tls();
                message.helo = envelope.helo;
                message.auth_user = envelope.auth_user;
                message.peer = Some(peer);
                match shared.store.insert(message) {
                    Ok(id) => {
                        shared.counters.stored(recipients, size);
                        logger::debug!(shared.logger, "message stored"; id = id, recipients = recipients, size = size);
                        if let Some(kind) = fault {
                            return close_with(shared, conn, kind).await;
                        }
                        conn.push_reply(&Session::queued(id));
                    }
                    Err(StoreError::Full) => {
                        shared.counters.rejected_full.fetch_add(1, Relaxed);
                        logger::warning!(shared.logger, "store full, message refused"; max_messages = shared.store.max_messages());
                        conn.push_reply(&Session::store_full());
                    }
                }
            }
        }
    }
}
