//! Syslog over TLS (RFC 5425): rustls with the ring provider, certificates verified against the
//! system's roots or a CA the service names, octet-counted frames as over TCP.
//!
//! A certificate that does not verify (wrong host name, unknown CA, expired) fails the
//! connection attempt like a refused connect: lines go to the fallback, one notice names the
//! reason, and later attempts follow the same backoff. There is never a plain-text retry.

use std::path::PathBuf;
use std::sync::Arc;

/// How the daemon's certificate is checked.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSettings {
    /// The name the certificate must hold (default: the target's host).
    pub(crate) server_name: Option<String>,
    pub(crate) ca: CaSource,
}

/// Which certificate authorities are trusted.
#[derive(Clone, Debug, Default)]
// Without the `tls` feature the settings are kept but never read: a `tls:` target fails.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub(crate) enum CaSource {
    /// The system's roots (`/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    #[default]
    System,
    /// PEM certificates read from this file at the first connection attempt.
    File(PathBuf),
    /// PEM certificates given in memory.
    Pem(Arc<[u8]>),
}

#[cfg(feature = "tls")]
pub(crate) use enabled::{TlsConn, client_config};

#[cfg(feature = "tls")]
mod enabled {
    use std::io::{self, Write};
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    use super::{CaSource, TlsSettings};
    use crate::queue::Batch;
    use crate::transport::{Sent, TcpConn, closed_by_daemon};

    /// Plaintext handed to rustls at a time: one TLS record's worth, so a failure costs at most
    /// this much of a batch being sent again.
    const CHUNK: usize = 16 * 1024;

    /// The client configuration for `settings`, built once per sink (reading the roots is the
    /// expensive part). Errors say what was wrong with the CA.
    pub(crate) fn client_config(settings: &TlsSettings) -> io::Result<Arc<ClientConfig>> {
        let mut roots = RootCertStore::empty();
        match &settings.ca {
            CaSource::System => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _ignored) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    let why = found.errors.first().map(|e| format!(": {e}")).unwrap_or_default();
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("no system CA certificates found{why}"),
                    ));
                }
            }
            CaSource::File(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot read CA file {}: {e}", path.display()))
                })?;
                add_pem(&mut roots, &pem, &format!("CA file {}", path.display()))?;
            }
            CaSource::Pem(pem) => add_pem(&mut roots, pem, "the CA certificates given")?,
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    fn add_pem(roots: &mut RootCertStore, pem: &[u8], what: &str) -> io::Result<()> {
        let bad = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| bad(format!("bad PEM in {what}: {e}")))?;
            roots.add(cert).map_err(|e| bad(format!("bad certificate in {what}: {e}")))?;
            n += 1;
        }
        if n == 0 { Err(bad(format!("no certificate in {what}"))) } else { Ok(()) }
    }

    /// A TLS session over a watched TCP connection. rustls only ever writes here: the watcher
    /// thread reads the socket (a syslog server sends nothing the client needs), so a hang-up
    /// is seen at once, as over plain TCP.
    pub(crate) struct TlsConn {
        tls: ClientConnection,
        pub(crate) tcp: TcpConn,
    }

    impl TlsConn {
        /// Connects, completes the handshake (verifying the certificate for `server_name`)
        /// within `timeout` per step, then starts the watcher.
        pub(crate) fn open(
            addr: SocketAddr,
            server_name: &str,
            timeout: Duration,
            config: &Arc<ClientConfig>,
            closed: Arc<AtomicBool>,
            on_hang_up: impl FnOnce() + Send + 'static,
        ) -> io::Result<TlsConn> {
            let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{server_name:?} is not a valid TLS server name"),
                )
            })?;
            let mut tls =
                ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
            let mut stream = TcpConn::connect(addr, timeout)?;
            stream.set_read_timeout(Some(timeout))?;
            while tls.is_handshaking() {
                tls.complete_io(&mut stream).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("TLS handshake with {server_name} failed: {e}"),
                    )
                })?;
            }
            // From now on only the watcher reads, and it waits for as long as the connection
            // lives.
            stream.set_read_timeout(None)?;
            let tcp = TcpConn::watch(stream, closed, on_hang_up)?;
            Ok(TlsConn { tls, tcp })
        }

        /// Sends records `from..` of `batch` as octet-counted frames, a chunk at a time.
        pub(crate) fn send(&mut self, batch: &Batch, from: usize) -> Sent {
            let bytes = batch.bytes();
            let mut off = batch.span(from).0;
            let mut next = from;
            while next < batch.len() {
                if self.tcp.is_closed() {
                    return Sent { sent: next - from, error: Some(closed_by_daemon()) };
                }
                let end = bytes.len().min(off + CHUNK);
                let taken = self.tls.writer().write(&bytes[off..end]);
                // Records count as sent only once their encrypted bytes are on the socket.
                let written = taken.and_then(|n| self.write_out().map(|()| n));
                match written {
                    Ok(0) => {
                        let e = io::Error::new(io::ErrorKind::WriteZero, "TLS took no bytes");
                        return Sent { sent: next - from, error: Some(e) };
                    }
                    Ok(n) => off += n,
                    Err(e) => return Sent { sent: next - from, error: Some(e) },
                }
                while next < batch.len() && batch.span(next).1 <= off {
                    next += 1;
                }
            }
            Sent { sent: batch.len() - from, error: None }
        }

        fn write_out(&mut self) -> io::Result<()> {
            while self.tls.wants_write() {
                match self.tls.write_tls(&mut self.tcp.stream) {
                    Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }

    impl Drop for TlsConn {
        fn drop(&mut self) {
            if !self.tcp.is_closed() {
                // A clean end of the session, best effort (bounded by the write timeout).
                self.tls.send_close_notify();
                let _ = self.write_out();
            }
        }
    }
}
