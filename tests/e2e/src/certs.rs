//! A throw-away certificate authority for TLS tests: a CA certificate and server
//! certificates it signs, made with rcgen in memory.

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
    /// The server certificate's private key, PEM.
    pub key_pem: String,
}

impl TestCa {
    /// A new CA and a server certificate for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> TestCa {
        // A distinct name per CA, so a certificate from another test CA is "unknown issuer"
        // rather than a same-named issuer with a bad signature.
        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, format!("e2e test CA {n}"));
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
}
