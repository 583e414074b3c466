//! TLS: the server certificate (given as PEM, or self-signed for `localhost`/`127.0.0.1`), the
//! rustls acceptor, and a stream type that is plaintext or TLS so STARTTLS can upgrade it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How the SMTP listener uses TLS. The optional pair is `(certificate chain PEM, private key
/// PEM)`; without it a self-signed certificate for `localhost` and `127.0.0.1` is generated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TlsOptions {
    /// Plaintext only; STARTTLS is not offered.
    #[default]
    None,
    /// Plaintext with STARTTLS offered.
    StartTls(Option<(String, String)>),
    /// TLS from the first byte (SMTPS, port 465 style).
    Implicit(Option<(String, String)>),
}

impl TlsOptions {
    /// The certificate pair, if one was given.
    pub fn pem(&self) -> Option<&(String, String)> {
        match self {
            TlsOptions::None => None,
            TlsOptions::StartTls(pem) | TlsOptions::Implicit(pem) => pem.as_ref(),
        }
    }
}

/// A built server TLS configuration and the certificate it presents.
#[derive(Clone)]
pub(crate) struct ServerTls {
    /// The acceptor for handshakes.
    pub acceptor: TlsAcceptor,
    /// The leaf certificate, PEM (give it to clients as their root).
    pub certificate_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Builds from PEM, or from a fresh self-signed certificate when `pem` is `None`.
    pub fn new(pem: Option<&(String, String)>) -> io::Result<ServerTls> {
        let (cert_pem, key_pem) = match pem {
            Some((c, k)) => (c.clone(), k.clone()),
            None => self_signed()?,
        };
        let certs =
            rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(invalid("no certificate found in the certificate PEM"));
        }
        let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())?
            .ok_or_else(|| invalid("no private key found in the key PEM"))?;
        // An explicit provider: no process-wide default has to be installed, so this works
        // whatever other crates in the process did.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(&e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid(&format!("bad certificate or key: {e}")))?;
        Ok(ServerTls { acceptor: TlsAcceptor::from(Arc::new(config)), certificate_pem: cert_pem })
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned())
}

/// A self-signed end-entity certificate for `localhost` and `127.0.0.1` (cert PEM, key PEM).
pub fn self_signed() -> io::Result<(String, String)> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified =
        rcgen::generate_simple_self_signed(names).map_err(|e| io::Error::other(e.to_string()))?;
    Ok((certified.cert.pem(), certified.key_pair.serialize_pem()))
}

/// A server-side stream that is plaintext or TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plaintext TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
    /// No stream (while STARTTLS swaps one for the other); every operation fails.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream closed")
}

impl Stream {
    /// Whether this stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
            Stream::Closed => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_from_a_generated_certificate_and_rejects_garbage() {
        let tls = ServerTls::new(None).unwrap();
        assert!(tls.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let err = ServerTls::new(Some(&("nope".into(), "nope".into()))).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
        let (cert, _) = self_signed().unwrap();
        let (_, other_key) = self_signed().unwrap();
        let err = ServerTls::new(Some(&(cert, other_key))).unwrap_err();
        assert!(err.to_string().contains("bad certificate or key"), "{err}");
    }
}
