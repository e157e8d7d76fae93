//! `--web.config.file`: TLS and basic auth in the format of Prometheus'
//! exporter-toolkit (`tls_server_config`, `basic_auth_users` with bcrypt
//! hashes), so one file serves every exporter on the node. Keys lxcri does
//! not implement are refused by name rather than ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: tls_server_config: {what} {file}: {detail}")]
    Tls {
        path: PathBuf,
        what: &'static str,
        file: PathBuf,
        detail: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: PathBuf,
    key_file: PathBuf,
}

/// The checked web configuration.
#[derive(Clone, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// User -> bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// A bcrypt hash checked for unknown users, at the users' cost.
    decoy: String,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebConfig {
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Self, WebConfigError> {
        let invalid = |message: String| WebConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        // An empty file is a valid exporter-toolkit config: no TLS, no auth.
        let file: File = if text.trim().is_empty() {
            File {
                tls_server_config: None,
                basic_auth_users: BTreeMap::new(),
            }
        } else {
            serde_norway::from_str(text).map_err(|e| {
                invalid(format!(
                    "{e} (lxcri exporter implements tls_server_config.cert_file, \
                     tls_server_config.key_file and basic_auth_users)"
                ))
            })?
        };
        for (user, hash) in &file.basic_auth_users {
            let bcrypt = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
            if user.is_empty() || user.contains(':') || !bcrypt {
                return Err(invalid(format!(
                    "basic_auth_users.{user}: a user name without ':' and a bcrypt hash \
                     ($2a$, $2b$ or $2y$) are needed"
                )));
            }
        }
        let tls = match file.tls_server_config {
            Some(t) => Some(Arc::new(tls_config(path, &t)?)),
            None => None,
        };
        // The highest cost among the users', so unknown and known users
        // take as long.
        let cost = file
            .basic_auth_users
            .values()
            .filter_map(|h| h.get(4..6)?.parse::<u32>().ok())
            .max();
        let decoy = match cost {
            Some(cost) => bcrypt::hash(path.display().to_string(), cost)
                .map_err(|e| invalid(format!("basic_auth_users: cost {cost}: {e}")))?,
            None => String::new(),
        };
        Ok(WebConfig {
            tls,
            users: file.basic_auth_users,
            decoy,
        })
    }

    /// Whether `user:password` may scrape.
    pub fn allows(&self, user: &str, password: &str) -> bool {
        // An unknown user costs a bcrypt check too: the answer's timing
        // must not tell which users exist.
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.decoy.as_str(), false),
        };
        bcrypt::verify(password, hash).unwrap_or(false) && known
    }
}

fn tls_config(path: &Path, t: &TlsFile) -> Result<rustls::ServerConfig, WebConfigError> {
    let err = |what, file: &Path, detail: String| WebConfigError::Tls {
        path: path.to_path_buf(),
        what,
        file: file.to_path_buf(),
        detail,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert_file)
        .and_then(|it| it.collect())
        .map_err(|e| err("cert_file", &t.cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(err(
            "cert_file",
            &t.cert_file,
            "no certificate in it".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key_file)
        .map_err(|e| err("key_file", &t.key_file, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| err("cert_file", &t.cert_file, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, String> {
        WebConfig::parse(Path::new("web.yml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn users_need_bcrypt_hashes_and_unknown_keys_are_named() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let c = parse(&format!("basic_auth_users:\n  prom: '{hash}'\n")).unwrap();
        assert!(c.allows("prom", "secret"));
        assert!(!c.allows("prom", "wrong"));
        assert!(!c.allows("other", "secret"));
        let err = parse("basic_auth_users:\n  prom: plain\n").unwrap_err();
        assert!(err.contains("basic_auth_users.prom"), "{err}");
        let err = parse("http_server_config:\n  http2: false\n").unwrap_err();
        assert!(err.contains("http_server_config"), "{err}");
        assert!(parse("").unwrap().users.is_empty());
    }

    #[test]
    fn tls_files_are_checked_when_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(tmp.path().join("c.pem"), cert.cert.pem()).unwrap();
        std::fs::write(tmp.path().join("k.pem"), cert.key_pair.serialize_pem()).unwrap();
        let yaml = |c: &str, k: &str| {
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                tmp.path().join(c).display(),
                tmp.path().join(k).display()
            )
        };
        assert!(parse(&yaml("c.pem", "k.pem")).unwrap().tls.is_some());
        let err = parse(&yaml("missing.pem", "k.pem")).unwrap_err();
        assert!(
            err.contains("cert_file") && err.contains("missing.pem"),
            "{err}"
        );
        let err = parse(&yaml("c.pem", "c.pem")).unwrap_err();
        assert!(err.contains("key_file"), "{err}");
    }
}
