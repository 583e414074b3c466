//! `Syslog` over TLS against a rustls server in the test: octet-counted frames inside a
//! verified session; a certificate for another name or from an unknown CA fails the
//! connection clearly (one notice, lines on the fallback) and never sends a byte in plain text.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logger::{Logger, Syslog, SyslogTarget};
use test_support::syslog_frame::parse_5424;
use test_support::{Captured, TestCa, wait_until};

const SECOND: Duration = Duration::from_secs(1);

/// A syslog-over-TLS server: serves each connection on a thread of its own, records the first
/// byte each client sent (a TLS handshake starts with 0x16) and the frames it received.
struct Server {
    addr: SocketAddr,
    first_bytes: Arc<Mutex<Vec<u8>>>,
    frames: Arc<Mutex<Vec<String>>>,
    /// Set to make the server hang up its current connection.
    hang_up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(pki: &TestCa) -> Server {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = vec![CertificateDer::from_pem_slice(pki.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let first_bytes = Arc::new(Mutex::new(Vec::new()));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (hang_up, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let thread = {
            let (first_bytes, frames) = (Arc::clone(&first_bytes), Arc::clone(&frames));
            let (hang_up, stop) = (Arc::clone(&hang_up), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((tcp, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    };
                    tcp.set_nonblocking(false).unwrap();
                    tcp.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                    let (config, first_bytes, frames) =
                        (Arc::clone(&config), Arc::clone(&first_bytes), Arc::clone(&frames));
                    let (hang_up, stop) = (Arc::clone(&hang_up), Arc::clone(&stop));
                    std::thread::spawn(move || {
                        serve(tcp, &config, &first_bytes, &frames, &hang_up, &stop)
                    });
                }
            })
        };
        Server { addr, first_bytes, frames, hang_up, stop, thread: Some(thread) }
    }

    fn frames(&self) -> Vec<String> {
        self.frames.lock().unwrap().clone()
    }

    fn first_bytes(&self) -> Vec<u8> {
        self.first_bytes.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One connection: peek at the first byte, then read octet-counted frames over TLS until
/// the client goes, the handshake fails, or the test says hang up.
fn serve(
    tcp: TcpStream,
    config: &Arc<rustls::ServerConfig>,
    first_bytes: &Mutex<Vec<u8>>,
    frames: &Mutex<Vec<String>>,
    hang_up: &AtomicBool,
    stop: &AtomicBool,
) {
    let mut first = [0u8; 1];
    let peeked = loop {
        match tcp.peek(&mut first) {
            Ok(n) => break n,
            Err(_) if !stop.load(Ordering::Relaxed) => continue,
            Err(_) => return,
        }
    };
    if peeked == 0 {
        return;
    }
    first_bytes.lock().unwrap().push(first[0]);
    let conn = rustls::ServerConnection::new(Arc::clone(config)).unwrap();
    let mut r = rustls::StreamOwned::new(conn, tcp);
    let mut pending = Vec::new();
    loop {
        if hang_up.swap(false, Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
            return;
        }
        let mut buf = [0u8; 4096];
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            // A failed handshake, a reset: this connection is over.
            Err(_) => return,
        }
        // `LEN SP MSG`, as many as are complete.
        while let Some(sp) = pending.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&pending[..sp]).unwrap().parse().unwrap();
            if pending.len() < sp + 1 + len {
                break;
            }
            let frame = String::from_utf8(pending[sp + 1..sp + 1 + len].to_vec()).unwrap();
            frames.lock().unwrap().push(frame);
            pending.drain(..sp + 1 + len);
        }
    }
}

fn target(server: &Server) -> SyslogTarget {
    format!("tls:127.0.0.1:{}", server.addr.port()).parse().unwrap()
}

#[test]
fn delivers_octet_counted_frames_inside_a_verified_session() {
    let pki = TestCa::new(&["localhost", "127.0.0.1"]);
    let server = Server::start(&pki);
    let fallback = Captured::default();
    let log = Syslog::new(target(&server), "probe")
        .with_tls_ca_pem(&pki.ca_pem)
        .with_fallback(fallback.clone())
        .connect()
        .unwrap();
    logger::info!(log, "over tls é"; k = "v w");
    log.warning(&"x".repeat(20_000));
    assert!(wait_until(10 * SECOND, || server.frames().len() == 2), "{}", fallback.text());
    let frames = server.frames();
    let first = parse_5424(&frames[0]).unwrap();
    assert_eq!((first.pri, first.app.as_str()), (134, "probe"));
    assert_eq!(first.msg, r#"over tls é k="v w""#);
    assert!(frames[1].len() <= logger::syslog::DEFAULT_MAX_LEN);
    assert!(frames[1].ends_with(logger::syslog::TRUNCATION_MARKER));
    assert_eq!(fallback.text(), "");

    // The server name can be given apart from the address.
    let by_name = Syslog::new(target(&server), "probe")
        .with_tls_ca_pem(&pki.ca_pem)
        .with_tls_server_name("localhost");
    by_name.info("by name");
    assert!(wait_until(10 * SECOND, || server.frames().len() == 3));
    assert!(server.first_bytes().iter().all(|&b| b == 0x16), "plain text was sent");
}

/// Logs a few lines to a server whose certificate the sink must refuse; returns the fallback.
fn refused(server: &Server, log: Syslog) -> String {
    let fallback = Captured::default();
    let log = log.with_retry_interval(Duration::from_millis(20)).with_fallback(fallback.clone());
    for i in 0..5 {
        logger::info!(log, "secret"; i = i);
        log.flush();
    }
    assert!(server.frames().is_empty(), "a refused server got frames");
    assert!(server.first_bytes().iter().all(|&b| b == 0x16), "plain text was sent");
    assert!(!server.first_bytes().is_empty(), "no TLS attempt at all");
    assert_eq!(log.stats().fell_back, 5);
    fallback.text()
}

#[test]
fn a_certificate_for_another_name_fails_clearly_and_lines_fall_back() {
    let pki = TestCa::new(&["localhost", "127.0.0.1"]);
    let server = Server::start(&pki);
    let log = Syslog::new(target(&server), "probe")
        .with_tls_ca_pem(&pki.ca_pem)
        .with_tls_server_name("wrong.example");
    let text = refused(&server, log);
    let notices: Vec<&str> = text.lines().filter(|l| l.contains("unavailable")).collect();
    assert_eq!(notices.len(), 1, "{text}");
    assert!(notices[0].contains("wrong.example") && notices[0].contains("certificate"), "{text}");
    assert_eq!(text.lines().filter(|l| l.contains(" secret i=")).count(), 5, "{text}");
}

#[test]
fn an_untrusted_ca_fails_clearly_and_lines_fall_back() {
    let server = Server::start(&TestCa::new(&["localhost", "127.0.0.1"]));
    let other = TestCa::new(&["localhost"]);
    let log = Syslog::new(target(&server), "probe").with_tls_ca_pem(&other.ca_pem);
    let text = refused(&server, log);
    let notices: Vec<&str> = text.lines().filter(|l| l.contains("unavailable")).collect();
    assert_eq!(notices.len(), 1, "{text}");
    assert!(notices[0].contains("UnknownIssuer"), "{text}");
    // The system's roots do not know a test CA either.
    let log = Syslog::new(target(&server), "probe");
    assert!(refused(&server, log).contains("UnknownIssuer"));
}

#[test]
fn a_missing_ca_file_is_named_in_the_notice() {
    let server = Server::start(&TestCa::new(&["127.0.0.1"]));
    let log = Syslog::new(target(&server), "probe").with_tls_ca_file("/nonexistent/ca.pem");
    let err = log.try_connect().unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn reconnects_after_the_server_hangs_up_and_replays() {
    let pki = TestCa::new(&["127.0.0.1"]);
    let server = Server::start(&pki);
    let fallback = Captured::default();
    let log = Syslog::new(target(&server), "probe")
        .with_tls_ca_pem(&pki.ca_pem)
        .with_retry_interval(Duration::from_millis(10))
        .with_fallback(fallback.clone());
    log.info("first session");
    assert!(wait_until(10 * SECOND, || server.frames().len() == 1));
    server.hang_up.store(true, Ordering::Relaxed);
    // The watcher sees the hang-up and replays the last line; the next one opens a new
    // session.
    let replay = format!("logger: probe {}", logger::syslog::REPLAY_MARKER);
    assert!(wait_until(10 * SECOND, || fallback.text().contains(&replay)), "{}", fallback.text());
    log.info("second session");
    assert!(
        wait_until(10 * SECOND, || server.frames().iter().any(|f| f.ends_with(" second session"))),
        "{}",
        fallback.text()
    );
    assert_eq!(server.first_bytes(), [0x16, 0x16]);
}
