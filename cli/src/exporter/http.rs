//! A small HTTP/1.1 server for Prometheus scrapes: `GET` (or `HEAD`) of the
//! telemetry path and a landing page linking to it, over TLS and behind
//! basic auth when the web config asks. One thread per connection, at most
//! [`MAX_CONNECTIONS`] at once; each answer closes its connection.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use super::web_config::WebConfig;

/// Scrapes are few; more at once is a misbehaving client.
pub const MAX_CONNECTIONS: usize = 16;
/// A request (line and headers) must arrive within this, in all.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_REQUEST: usize = 16 * 1024;
/// The classic text format, which every Prometheus accepts.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the server answers the telemetry path with.
pub type Scrape = dyn Fn() -> Result<String, String> + Send + Sync;

pub struct Server {
    pub listener: TcpListener,
    pub web: WebConfig,
    pub telemetry_path: String,
    pub scrape: Arc<Scrape>,
}

struct Response {
    status: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Response {
    fn text(status: &'static str, body: impl Into<String>) -> Self {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: body.into(),
        }
    }
}

/// One of [`MAX_CONNECTIONS`], given back however its thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Server {
    /// Serves until the listener fails.
    pub fn run(self) -> io::Result<()> {
        let this = Arc::new(self);
        let open = Arc::new(AtomicUsize::new(0));
        let mut failures = 0;
        loop {
            let (stream, peer) = match this.listener.accept() {
                Ok(accepted) => {
                    failures = 0;
                    accepted
                }
                // A peer that gave up, or fds running out for a moment, is
                // not the listener's end; a listener that keeps failing is.
                Err(e) if failures < 100 => {
                    failures += 1;
                    tracing::warn!(error = %e, "accept");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(%peer, "too many connections: closed");
                continue;
            }
            let slot = Slot(Arc::clone(&open));
            let this = Arc::clone(&this);
            std::thread::spawn(move || {
                let _slot = slot;
                if let Err(e) = this.connection(stream) {
                    tracing::debug!(%peer, error = %e, "connection");
                }
            });
        }
    }

    fn connection(&self, stream: TcpStream) -> io::Result<()> {
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        match &self.web.tls {
            Some(tls) => {
                let conn =
                    rustls::ServerConnection::new(Arc::clone(tls)).map_err(io::Error::other)?;
                self.exchange(rustls::StreamOwned::new(conn, stream))
            }
            None => self.exchange(stream),
        }
    }

    fn exchange(&self, mut s: impl Read + Write) -> io::Result<()> {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        // Per request, not per read: a byte every few seconds must not hold
        // a connection slot for ever.
        let deadline = std::time::Instant::now() + READ_TIMEOUT;
        let (method, path, auth) = loop {
            if std::time::Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "request too slow"));
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(_)) => {
                    let auth = req
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned());
                    break (
                        req.method.unwrap_or("").to_string(),
                        req.path.unwrap_or("").to_string(),
                        auth,
                    );
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
                _ => {
                    return write(
                        &mut s,
                        "",
                        Response::text("400 Bad Request", "bad request\n"),
                    )
                }
            }
        };
        let response = self.answer(&method, &path, auth.as_deref());
        write(&mut s, &method, response)
    }

    fn answer(&self, method: &str, path: &str, auth: Option<&str>) -> Response {
        if !self.web.users.is_empty() && !self.authorized(auth) {
            let mut r = Response::text("401 Unauthorized", "Unauthorized\n");
            r.headers
                .push(("WWW-Authenticate", "Basic realm=\"lxcri\"".into()));
            return r;
        }
        if method != "GET" && method != "HEAD" {
            let mut r = Response::text("405 Method Not Allowed", "only GET and HEAD\n");
            r.headers.push(("Allow", "GET, HEAD".into()));
            return r;
        }
        let path = path.split('?').next().unwrap_or("");
        if path == self.telemetry_path {
            return match (self.scrape)() {
                Ok(body) => Response {
                    status: "200 OK",
                    headers: vec![("Content-Type", CONTENT_TYPE.into())],
                    body,
                },
                Err(e) => {
                    tracing::warn!(error = %e, "scrape failed");
                    Response::text("500 Internal Server Error", format!("{e}\n"))
                }
            };
        }
        if path == "/" {
            let link = &self.telemetry_path;
            return Response {
                status: "200 OK",
                headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
                body: format!(
                    "<html><head><title>lxcri exporter</title></head><body>\
                     <h1>lxcri exporter</h1><p><a href=\"{link}\">Metrics</a></p></body></html>\n"
                ),
            };
        }
        Response::text("404 Not Found", "not found\n")
    }

    fn authorized(&self, header: Option<&str>) -> bool {
        let Some(encoded) = header.and_then(|h| h.strip_prefix("Basic ")) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let text = String::from_utf8_lossy(&decoded);
        text.split_once(':')
            .is_some_and(|(user, password)| self.web.allows(user, password))
    }
}

fn write(s: &mut impl Write, method: &str, r: Response) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {}\r\n", r.status);
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        r.body.len()
    ));
    s.write_all(head.as_bytes())?;
    if method != "HEAD" {
        s.write_all(r.body.as_bytes())?;
    }
    s.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on a free loopback port answering `m 1`; returns its port.
    fn serve(web: WebConfig) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = Server {
            listener,
            web,
            telemetry_path: "/metrics".into(),
            scrape: Arc::new(|| Ok("m 1\n".to_string())),
        };
        std::thread::spawn(move || server.run());
        port
    }

    #[test]
    fn scrapes_need_the_user_and_get_the_text_format() {
        let mut web = WebConfig::default();
        web.users
            .insert("prom".into(), bcrypt::hash("secret", 4).unwrap());
        let port = serve(web);
        let client = reqwest::blocking::Client::new();
        let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
        let r = client.get(url("/metrics")).send().unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        let r = client
            .get(url("/metrics"))
            .basic_auth("prom", Some("wrong"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = client
            .get(url("/metrics"))
            .basic_auth("prom", Some("secret"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], CONTENT_TYPE);
        assert_eq!(r.text().unwrap(), "m 1\n");
        let authed = |method: reqwest::Method, p: &str| {
            client
                .request(method, url(p))
                .basic_auth("prom", Some("secret"))
                .send()
                .unwrap()
        };
        assert_eq!(authed(reqwest::Method::GET, "/other").status(), 404);
        assert_eq!(authed(reqwest::Method::POST, "/metrics").status(), 405);
        let landing = authed(reqwest::Method::GET, "/").text().unwrap();
        assert!(landing.contains("href=\"/metrics\""), "{landing}");
    }

    #[test]
    fn tls_from_the_web_config() {
        let tmp = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(tmp.path().join("c.pem"), cert.cert.pem()).unwrap();
        std::fs::write(tmp.path().join("k.pem"), cert.key_pair.serialize_pem()).unwrap();
        let yaml = tmp.path().join("web.yml");
        std::fs::write(
            &yaml,
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                tmp.path().join("c.pem").display(),
                tmp.path().join("k.pem").display()
            ),
        )
        .unwrap();
        let port = serve(WebConfig::load(&yaml).unwrap());
        let client = reqwest::blocking::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap(),
            )
            .resolve("localhost", ([127, 0, 0, 1], port).into())
            .build()
            .unwrap();
        let r = client
            .get(format!("https://localhost:{port}/metrics"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().unwrap(), "m 1\n");
        // Plain HTTP on the TLS port gets no answer.
        let plain = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"));
        assert!(plain.is_err() || !plain.unwrap().status().is_success());
    }
}
