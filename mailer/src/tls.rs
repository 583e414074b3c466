//! TLS set-up: root certificates and the rustls client configuration, built once per mailer,
//! for implicit TLS and for STARTTLS (both on our own TCP_NODELAY socket, see `wire.rs`).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;

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
    StartTls(Client),
    Implicit(Client),
}

/// A verifying rustls client and the name the server certificate must match.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) connector: TlsConnector,
    pub(crate) name: ServerName<'static>,
}

impl TlsSetup {
    pub(crate) fn new(config: &Config) -> Result<Self, Error> {
        match config.tls {
            crate::Tls::None => Ok(TlsSetup::None),
            crate::Tls::StartTls => Ok(TlsSetup::StartTls(Client::new(config)?)),
            crate::Tls::Implicit => Ok(TlsSetup::Implicit(Client::new(config)?)),
        }
    }
}

impl Client {
    fn new(config: &Config) -> Result<Self, Error> {
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
        let name = config.tls_server_name.clone().unwrap_or_else(|| config.host.clone());
        let name = ServerName::try_from(name.clone())
            .map_err(|e| Error::Config(format!("tls server name {name:?}: {e}")))?;
        Ok(Client { connector: TlsConnector::from(Arc::new(client)), name })
    }
}
