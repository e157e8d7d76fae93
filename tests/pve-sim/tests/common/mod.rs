//! Starts the `pve-sim` binary on 127.0.0.1:0 in a temp dir and talks HTTPS to it with the
//! certificate pinned by the fingerprint it printed.

#![allow(dead_code)]

pub mod ct;
pub mod net;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "root@pam!lxcri=8d7f-secret-0b1c";

pub struct Sim {
    child: Child,
    /// `USER@REALM!ID=SECRET`, the `--token` this stand-in accepts.
    pub token: String,
    pub fingerprint: String,
    pub port: u16,
    pub node: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Only the process this test started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Answer {
    pub status: u16,
    pub reason: String,
    pub body: Value,
}

impl Sim {
    pub fn start(extra: &[&str]) -> Sim {
        Sim::start_as(TOKEN, extra)
    }

    /// Starts the stand-in accepting `token` (`USER@REALM!ID=SECRET`).
    pub fn start_as(token: &str, extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let node = "simnode".to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pve-sim"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--node",
                &node,
                "--token",
                token,
                "--data-dir",
            ])
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pve-sim");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut fingerprint = String::new();
        let mut listening = String::new();
        out.read_line(&mut fingerprint).unwrap();
        out.read_line(&mut listening).unwrap();
        let port = listening
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad second line {listening:?}"));
        Sim {
            child,
            token: token.to_string(),
            fingerprint: fingerprint.trim().to_string(),
            port,
            node,
            dir,
        }
    }

    /// Puts an empty gzip'd tarball where `STORAGE:vztmpl/NAME` lives on a PVE dir storage
    /// (`DIR/storage/STORAGE/template/cache/NAME`), so a create with that `ostemplate`
    /// finds it. Returns the volume id.
    /// The stand-in's process id (PVE-style temporary files are named after it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn put_template(&self, storage: &str, name: &str) -> String {
        let cache = self
            .dir
            .path()
            .join("storage")
            .join(storage)
            .join("template/cache");
        std::fs::create_dir_all(&cache).unwrap();
        let ok = Command::new("tar")
            .arg("-czf")
            .arg(cache.join(name))
            .args(["-T", "/dev/null"])
            .status()
            .expect("tar")
            .success();
        assert!(ok, "tar -czf {name} failed");
        format!("{storage}:vztmpl/{name}")
    }

    /// The files and directories under the data dir, relative to it (to show that a failed
    /// call left nothing).
    pub fn tree(&self) -> Vec<String> {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                out.push(p.strip_prefix(root).unwrap().display().to_string());
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(root, &p, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.retain(|p| p != "requests.jsonl");
        out.sort();
        out
    }

    pub fn call(&self, method: &str, path: &str, form: &str) -> Answer {
        self.call_as(Some(&self.token), &self.fingerprint, method, path, form)
            .expect("request")
    }

    /// Replaces `DIR/etc/pve/NAME` (user.cfg, datacenter.cfg) as pmxcfs does: a new
    /// file renamed over the old one, so the stand-in never reads half of it.
    pub fn write_etc(&self, name: &str, text: &str) {
        let etc = self.dir.path().join("etc/pve");
        std::fs::create_dir_all(&etc).unwrap();
        let tmp = etc.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, etc.join(name)).unwrap();
    }

    pub fn read_etc(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("etc/pve").join(name)).unwrap_or_default()
    }

    /// One request on a fresh connection; `Err` when TLS or the connection fails.
    pub fn call_as(
        &self,
        token: Option<&str>,
        pin: &str,
        method: &str,
        path: &str,
        form: &str,
    ) -> std::io::Result<Answer> {
        let (path, body) = if method == "GET" || method == "DELETE" {
            let sep = if path.contains('?') { '&' } else { '?' };
            (
                if form.is_empty() {
                    path.to_string()
                } else {
                    format!("{path}{sep}{form}")
                },
                "",
            )
        } else {
            (path.to_string(), form)
        };
        let auth = token
            .map(|t| format!("Authorization: PVEAPIToken={t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} /api2/json{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n{auth}\r\n{body}",
            body.len()
        );
        self.exchange(pin, &req)
    }

    /// Arms, lists or clears faults (`/_sim/faults` is outside `/api2/json`).
    pub fn admin(&self, method: &str, json: &str) -> u16 {
        self.admin_answer(method, json).status
    }

    pub fn admin_answer(&self, method: &str, json: &str) -> Answer {
        let req = format!(
            "{method} /_sim/faults HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        );
        self.exchange(&self.fingerprint, &req).unwrap_or(Answer {
            status: 0,
            reason: String::new(),
            body: Value::Null,
        })
    }

    fn exchange(&self, pin: &str, req: &str) -> std::io::Result<Answer> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pin {
                fingerprint: pin.to_string(),
                provider,
            }))
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
        let conn =
            rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
        let sock = TcpStream::connect(("127.0.0.1", self.port))?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        tls.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no response"))?;
        let mut parts = head.lines().next().unwrap_or("").splitn(3, ' ');
        let _ = parts.next();
        let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let reason = parts.next().unwrap_or("").to_string();
        Ok(Answer {
            status,
            reason,
            body: serde_json::from_str(body).unwrap_or(Value::Null),
        })
    }

    /// Polls a task until it stops and returns its exitstatus.
    pub fn wait_task(&self, upid: &str) -> String {
        let enc: String = form_urlencoded::byte_serialize(upid.as_bytes()).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let a = self.call(
                "GET",
                &format!("/nodes/{}/tasks/{enc}/status", self.node),
                "",
            );
            assert_eq!(a.status, 200, "{:?}", a.body);
            if a.body["data"]["status"] == "stopped" {
                return a.body["data"]["exitstatus"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
            }
            assert!(Instant::now() < deadline, "task {upid} did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }
}

#[derive(Debug)]
struct Pin {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pin {
    fn verify_server_cert(
        &self,
        end: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: Vec<String> = Sha256::digest(end.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        if got.join(":") == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("fingerprint mismatch".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
