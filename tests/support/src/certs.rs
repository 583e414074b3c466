//! A throw-away certificate authority for TLS tests: a CA certificate and a server
//! certificate it signed, made with rcgen, in memory and, for peers that read files, on disk.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A test CA (`ca_pem`, what a client trusts) and one server certificate it signed for the
/// given names (`cert_pem`, `key_pem`, what the server presents).
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The server certificate, PEM.
    pub cert_pem: String,
    /// The server certificate's private key, PEM (PKCS #8).
    pub key_pem: String,
}

/// Where [`TestCa::write_to`] put the PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// The server key.
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA and a server certificate for `names` (DNS names or IP addresses, such as
    /// `localhost` and `127.0.0.1`).
    pub fn new(names: &[&str]) -> TestCa {
        // A distinct name per CA, so a certificate from another test CA is "unknown issuer"
        // rather than a same-named issuer with a bad signature.
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("test CA {n} of process {}", std::process::id()));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf = CertificateParams::new(names.clone()).expect("valid names");
        leaf.distinguished_name.push(DnType::CommonName, names.first().map_or("server", |n| n));
        let leaf_key = KeyPair::generate().expect("server key");
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).expect("server certificate");
        TestCa {
            ca_pem: ca_cert.pem(),
            cert_pem: leaf_cert.pem(),
            key_pem: leaf_key.serialize_pem(),
        }
    }

    /// The server's (certificate, key) pair, as `mail_test_srv::TlsOptions` takes it.
    pub fn server_pair(&self) -> Option<(String, String)> {
        Some((self.cert_pem.clone(), self.key_pem.clone()))
    }

    /// A rustls client configuration that trusts this CA (and nothing else).
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config(&self.ca_pem)
    }

    /// Writes `ca.pem`, `cert.pem` and `key.pem` (mode 0600) into `dir`.
    pub fn write_to(&self, dir: &Path) -> io::Result<CertFiles> {
        use std::os::unix::fs::PermissionsExt;
        let files = CertFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.ca, &self.ca_pem)?;
        std::fs::write(&files.cert, &self.cert_pem)?;
        std::fs::write(&files.key, &self.key_pem)?;
        std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o600))?;
        Ok(files)
    }
}

/// A rustls client configuration (ring, default protocol versions, no client certificate)
/// that trusts exactly the certificates in `ca_pem`: for a test's own TLS client of a peer or
/// of `mail-test-srv`. Panics on PEM that holds no certificate.
pub fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.expect("a PEM certificate")).expect("a usable CA certificate");
    }
    assert!(!roots.is_empty(), "no certificate in the CA PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
