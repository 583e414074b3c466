//! Loopback ports for peers that must be told a port (a third-party daemon cannot be handed
//! an already-bound socket), and a port where nothing listens.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// A loopback port that was free for both TCP and UDP a moment ago.
///
/// Another process can take it before the peer binds it: each peer's `start` checks that the
/// socket it waits for belongs to its own process ([`crate::process::Held::listens_tcp`]) and
/// starts again on fresh ports when it does not (see [`with_free_ports`]).
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local address of a bound socket").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

/// A port where nothing listens, below the kernel's ephemeral range: no client's own source
/// port can be it (no TCP self-connect) and no `bind(0)` of a parallel test takes it. Each call
/// in this process returns a different port; processes start at different bases.
pub fn unused_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768);
    let base = 10_000 + (std::process::id() % 2_000) as u16 * 10;
    let _ = NEXT.compare_exchange(0, base, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < low, "no unused port left below the ephemeral range ({low})");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether something accepts TCP connections at `addr` right now (200 ms connect timeout).
pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Runs `start` with `n` fresh free ports, up to five times: a port picked here can be taken
/// by another process before the peer binds it. An error of kind `NotFound` (the program is
/// not installed) is returned at once; otherwise the last error.
pub fn with_free_ports<T>(
    n: usize,
    mut start: impl FnMut(&[u16]) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for _ in 0..5 {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        match start(&ports) {
            Ok(peer) => return Ok(peer),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_bindable_and_unused_ports_refuse() {
        let port = free_port();
        TcpListener::bind(loopback(port)).expect("free for TCP");
        let unused = unused_port();
        assert_ne!(unused, unused_port());
        assert!(!accepts(loopback(unused)));
    }

    #[test]
    fn retries_other_errors_but_not_a_missing_program() {
        let mut tries = 0;
        let err = with_free_ports(2, |ports| -> io::Result<()> {
            tries += 1;
            assert_eq!(ports.len(), 2);
            Err(io::Error::other("port taken"))
        })
        .unwrap_err();
        assert_eq!((tries, err.to_string().as_str()), (5, "port taken"));
        tries = 0;
        let err = with_free_ports(1, |_| -> io::Result<()> {
            tries += 1;
            Err(io::Error::new(io::ErrorKind::NotFound, "no such program"))
        })
        .unwrap_err();
        assert_eq!((tries, err.kind()), (1, io::ErrorKind::NotFound));
    }
}
