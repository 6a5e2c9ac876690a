//! Throwaway certificates for TLS tests, generated in the test itself (no certificate files are
//! committed, no `openssl` command is needed).
//!
//! [`TestCertificates::generate`] makes a private certificate authority, the kind an organisation
//! runs for its internal servers, and a server certificate it signs for `localhost` and
//! `127.0.0.1`. The PEM files live in a temp dir removed on drop. A client that trusts only the
//! public roots refuses such a server; one given the CA file (`ca_file` in the configuration)
//! accepts it.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A private CA and a server certificate it signed, as PEM files.
pub struct TestCertificates {
    /// The CA certificate: what a client must trust.
    pub ca_file: PathBuf,
    /// The server certificate (for `localhost` and `127.0.0.1`).
    pub cert_file: PathBuf,
    /// The server certificate's private key (PKCS#8).
    pub key_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCertificates {
    /// A fresh CA and server certificate; every call makes a different, unrelated CA.
    pub fn generate() -> TestCertificates {
        let dir = tempfile::tempdir().expect("tempdir for certificates");

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "MMS test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-signed CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server certificate parameters");
        server_params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().expect("server key");
        let server_cert = server_params
            .signed_by(&server_key, &issuer)
            .expect("server certificate signed by the CA");

        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM file");
            path
        };
        TestCertificates {
            ca_file: write("ca.pem", ca_cert.pem()),
            cert_file: write("server.pem", server_cert.pem()),
            key_file: write("server.key", server_key.serialize_pem()),
            _dir: dir,
        }
    }
}
