//! TLS trust for the PVE API: a CA file, a pinned leaf-certificate
//! fingerprint, or the built-in webpki roots.
//!
//! PVE nodes serve a certificate signed by the cluster's own CA
//! (`/etc/pve/pve-root-ca.pem`), or a self-signed one, so public roots rarely
//! fit. Pinning compares the SHA-256 of the leaf certificate and skips
//! hostname and chain checks (the certificate names the node, not the address
//! lxcri dials), but still verifies the handshake signatures, so the server
//! must hold the pinned certificate's private key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("invalid TLS fingerprint {0:?}: expected 32 hex bytes (SHA-256), colons optional")]
    InvalidFingerprint(String),
    #[error("reading PVE CA file {}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("PVE CA file {}: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("TLS setup")]
    Rustls(#[from] rustls::Error),
}

/// A local `Result` for this module.
pub type Result<T> = std::result::Result<T, TlsError>;

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl FromStr for Fingerprint {
    type Err = TlsError;

    /// Accepts `AA:BB:...` as PVE's UI shows it, or plain hex, any case.
    fn from_str(s: &str) -> Result<Self> {
        let hex_only: String = s.trim().chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&hex_only, &mut out)
            .map_err(|_| TlsError::InvalidFingerprint(s.to_string()))?;
        Ok(Fingerprint(out))
    }
}

impl fmt::Display for Fingerprint {
    /// Upper-case colon-separated, the way PVE displays fingerprints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// How the client decides to trust the PVE server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrust {
    /// PEM file with one or more CA certificates; hostname is verified.
    CaFile(PathBuf),
    /// Pin of the leaf certificate.
    Fingerprint(Fingerprint),
    /// Neither configured: the built-in webpki roots.
    WebPkiRoots,
}

/// The error the pin verifier returns on mismatch, carried inside
/// `rustls::Error` so the client can name both fingerprints.
#[derive(Debug, Clone, thiserror::Error)]
#[error("certificate fingerprint mismatch: expected {expected}, got {actual}")]
pub struct PinMismatch {
    pub expected: Fingerprint,
    pub actual: Fingerprint,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// A rustls client config for `trust`, or `None` for the webpki roots, which
/// reqwest's own rustls setup already provides.
pub(crate) fn client_config(trust: &TlsTrust) -> Result<Option<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let config = match trust {
        TlsTrust::WebPkiRoots => return Ok(None),
        TlsTrust::CaFile(path) => builder
            .with_root_certificates(load_ca_file(path)?)
            .with_no_client_auth(),
        TlsTrust::Fingerprint(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinVerifier::new(*fp)))
            .with_no_client_auth(),
    };
    Ok(Some(config))
}

fn load_ca_file(path: &Path) -> Result<rustls::RootCertStore> {
    let data = std::fs::read(path).map_err(|source| TlsError::ReadCa {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| TlsError::BadCa {
        path: path.to_path_buf(),
        reason,
    };
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&data) {
        let cert = cert.map_err(|e| bad(format!("invalid PEM: {e}")))?;
        store
            .add(cert)
            .map_err(|e| bad(format!("unusable certificate: {e}")))?;
    }
    if store.is_empty() {
        return Err(bad("no certificates found".to_string()));
    }
    Ok(store)
}

/// Accepts exactly the certificate whose SHA-256 is pinned.
#[derive(Debug)]
struct PinVerifier {
    expected: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl PinVerifier {
    fn new(expected: Fingerprint) -> Self {
        PinVerifier {
            expected,
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let actual = Fingerprint::of_der(end_entity);
        if actual == self.expected {
            return Ok(ServerCertVerified::assertion());
        }
        let mismatch = PinMismatch {
            expected: self.expected,
            actual,
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(mismatch)),
        )))
    }

    // The signature checks are what bind the handshake to the pinned
    // certificate's key; without them a pin would only compare public data.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Finds a rustls error in an error's source chain. `std::io::Error` hides
/// its payload from `source()` (and hyper nests io errors), so io errors are
/// opened with `get_ref` instead.
pub(crate) fn find_rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

/// The pin mismatch behind a connection error, if that was the cause.
pub(crate) fn pin_mismatch(tls: &rustls::Error) -> Option<PinMismatch> {
    match tls {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<PinMismatch>().cloned()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parse_and_display() {
        let colon = "AA:bb:0c:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd";
        let fp: Fingerprint = colon.parse().unwrap();
        let plain: Fingerprint = colon.replace(':', "").to_lowercase().parse().unwrap();
        assert_eq!(fp, plain);
        assert_eq!(fp.to_string(), colon.to_uppercase());
        assert!("AA:BB".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn ca_file_without_certificates_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a pem\n").unwrap();
        let err = client_config(&TlsTrust::CaFile(path)).unwrap_err();
        assert!(err.to_string().contains("no certificates"), "{err}");
        let err = client_config(&TlsTrust::CaFile(dir.path().join("missing.pem"))).unwrap_err();
        assert!(matches!(err, TlsError::ReadCa { .. }));
    }
}
