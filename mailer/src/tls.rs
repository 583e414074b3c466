//! TLS set-up: root certificates, the implicit-TLS handshake on our own TCP_NODELAY socket,
//! and lettre's parameters for STARTTLS (which upgrades that same socket).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::{
    AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::{Config, Error};

/// Parses PEM root certificates; an input without any is a configuration error.
pub(crate) fn parse_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("root CA PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config("root CA PEM holds no certificate".into()));
    }
    Ok(certs)
}

/// What a connection needs for TLS, built once per mailer (loading the system store reads
/// hundreds of files; doing that per reconnect would slow every reconnect down).
#[derive(Clone)]
pub(crate) enum TlsSetup {
    None,
    StartTls(TlsParameters),
    Implicit { connector: TlsConnector, name: ServerName<'static> },
}

impl TlsSetup {
    pub(crate) fn new(config: &Config) -> Result<Self, Error> {
        let name = config.tls_server_name.clone().unwrap_or_else(|| config.host.clone());
        match config.tls {
            crate::Tls::None => Ok(TlsSetup::None),
            crate::Tls::StartTls => {
                let mut builder = TlsParameters::builder(name);
                if let Some(pem) = &config.root_ca_pem {
                    parse_roots(pem)?;
                    let cert = Certificate::from_pem(pem)
                        .map_err(|e| Error::Config(format!("root CA PEM: {e}")))?;
                    builder = builder
                        .certificate_store(CertificateStore::None)
                        .add_root_certificate(cert);
                }
                let params =
                    builder.build_rustls().map_err(|e| Error::Config(format!("tls: {e}")))?;
                Ok(TlsSetup::StartTls(params))
            }
            crate::Tls::Implicit => {
                let mut roots = rustls::RootCertStore::empty();
                match &config.root_ca_pem {
                    Some(pem) => {
                        for cert in parse_roots(pem)? {
                            roots.add(cert).map_err(|e| Error::Config(format!("root CA: {e}")))?;
                        }
                    }
                    None => {
                        let native = rustls_native_certs::load_native_certs();
                        roots.add_parsable_certificates(native.certs);
                        if roots.is_empty() {
                            return Err(Error::Config("no system root certificates found".into()));
                        }
                    }
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let client = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| Error::Config(format!("tls: {e}")))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let name = ServerName::try_from(name.clone())
                    .map_err(|e| Error::Config(format!("tls server name {name:?}: {e}")))?;
                Ok(TlsSetup::Implicit { connector: TlsConnector::from(Arc::new(client)), name })
            }
        }
    }
}

/// A TLS stream over our own TCP socket, in the shape lettre's `connect_with_transport` takes.
#[derive(Debug)]
pub(crate) struct TlsTcp(pub(crate) TlsStream<TcpStream>);

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
