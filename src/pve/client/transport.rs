//! HTTP transport: one blocking reqwest client with the token header, PVE's
//! `{"data": ...}` envelope, error mapping, retries and statistics.
//!
//! Retries: only GET is retried (on connection errors, timeouts and 502-504),
//! because a POST/PUT/DELETE that timed out may still have been executed by
//! PVE; repeating a create or delete would be worse than reporting it.

use std::sync::Arc;
use std::time::Instant;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::auth::ApiToken;
use super::error::{self, PveError, Result};
use super::stats::{ClientStats, ErrorClass};
use super::tls::{self, TlsTrust};
use super::ClientOptions;

/// A concrete API path together with its template, which keys the stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiPath {
    pub template: &'static str,
    pub path: String,
}

impl ApiPath {
    /// Fills the `{...}` placeholders of `template` with `args` in order,
    /// percent-encoding each one so a node name or UPID cannot add path
    /// segments or a query.
    pub fn new(template: &'static str, args: &[&str]) -> Self {
        let mut path = String::with_capacity(template.len() + 32);
        let mut args = args.iter();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            path.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
            let arg = args.next();
            debug_assert!(arg.is_some(), "missing argument for {template}");
            encode_segment(arg.copied().unwrap_or_default(), &mut path);
            rest = &rest[close..];
        }
        path.push_str(rest);
        debug_assert!(args.next().is_none(), "too many arguments for {template}");
        ApiPath { template, path }
    }
}

/// Keeps RFC 3986 `pchar`s that appear in PVE ids (`:` `@` `!` `=` in UPIDs
/// and token ids) readable, encodes everything else.
fn encode_segment(s: &str, out: &mut String) {
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b':' | b'@' | b'!' | b'=' | b','
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// A successful answer: `data` and, for paged lists like task logs, `total`.
#[derive(Debug)]
pub(crate) struct Answer<T> {
    pub data: T,
    pub total: Option<u64>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default)]
    total: Option<serde_json::Value>,
}

pub(crate) struct Transport {
    http: reqwest::blocking::Client,
    base: String,
    auth: HeaderValue,
    options: ClientOptions,
    stats: Arc<ClientStats>,
}

impl std::fmt::Debug for Transport {
    // Hand-written so the auth header can never be printed, even redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(
        url: &str,
        token: &ApiToken,
        trust: &TlsTrust,
        options: ClientOptions,
    ) -> Result<Self> {
        let base = normalize_base_url(url)?;
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(concat!("lxcri/", env!("CARGO_PKG_VERSION")))
            // The shim inherits containerd's environment, whose HTTPS_PROXY
            // is meant for registries, not for the node-local PVE API.
            .no_proxy()
            // PVE never redirects; following one could send the token away.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true);
        builder = match tls::client_config(trust)? {
            Some(config) => builder.use_preconfigured_tls(config),
            None => builder.use_rustls_tls(),
        };
        let http = builder.build().map_err(PveError::BuildClient)?;
        Ok(Transport {
            http,
            base,
            auth: token.header_value()?,
            options,
            stats: Arc::new(ClientStats::new()),
        })
    }

    pub fn stats(&self) -> &Arc<ClientStats> {
        &self.stats
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Calls the API and decodes `data` as `T`. GET and DELETE send
    /// `params` as the query, POST and PUT as a form body.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &ApiPath,
        params: &[(String, String)],
    ) -> Result<Answer<T>> {
        let mut attempt = 0u32;
        let mut backoff = self.options.retry_backoff;
        loop {
            let started = Instant::now();
            let result = self.attempt(&method, path, params);
            let elapsed = started.elapsed();
            self.stats.record(
                method.as_str(),
                path.template,
                elapsed,
                result.as_ref().err().map(error_class),
                attempt > 0,
            );
            match result {
                Ok(raw) => {
                    tracing::debug!(%method, path = %path.path, ?elapsed, "PVE API call");
                    return decode(&method, path, raw);
                }
                Err(err)
                    if method == Method::GET
                        && err.is_transient()
                        && attempt < self.options.max_retries =>
                {
                    attempt += 1;
                    tracing::warn!(%method, path = %path.path, attempt, error = %err, "retrying PVE API call");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(self.options.retry_backoff_max);
                }
                Err(err) => {
                    tracing::debug!(%method, path = %path.path, ?elapsed, error = %err, "PVE API call failed");
                    return Err(err);
                }
            }
        }
    }

    fn attempt(
        &self,
        method: &Method,
        path: &ApiPath,
        params: &[(String, String)],
    ) -> Result<RawEnvelope> {
        let url = format!("{}{}", self.base, path.path);
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(AUTHORIZATION, self.auth.clone());
        request = if *method == Method::GET || *method == Method::DELETE {
            request.query(params)
        } else {
            request.form(params)
        };
        let response = request.send().map_err(|e| send_error(method, path, e))?;
        let status = response.status();
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
        let body = response.bytes().map_err(|e| send_error(method, path, e))?;
        if !status.is_success() {
            return Err(error::from_response(
                method,
                &path.path,
                status.as_u16(),
                reason.as_deref(),
                &body,
            ));
        }
        serde_json::from_slice(&body).map_err(|e| PveError::Decode {
            method: method.clone(),
            path: path.path.clone(),
            message: format!("not a PVE JSON envelope: {e}"),
        })
    }
}

fn decode<T: DeserializeOwned>(
    method: &Method,
    path: &ApiPath,
    raw: RawEnvelope,
) -> Result<Answer<T>> {
    let data = serde_json::from_value(raw.data).map_err(|e| PveError::Decode {
        method: method.clone(),
        path: path.path.clone(),
        message: e.to_string(),
    })?;
    // PVE's Perl JSON encoder may send numbers as strings.
    let total = raw.total.and_then(|t| match t {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    Ok(Answer { data, total })
}

fn send_error(method: &Method, path: &ApiPath, err: reqwest::Error) -> PveError {
    let (method, path) = (method.clone(), path.path.clone());
    if let Some(tls_err) = tls::find_rustls_error(&err) {
        if let Some(mismatch) = tls::pin_mismatch(tls_err) {
            return PveError::FingerprintMismatch {
                method,
                path,
                expected: mismatch.expected.to_string(),
                actual: mismatch.actual.to_string(),
            };
        }
        return PveError::TlsHandshake {
            method,
            path,
            message: tls_err.to_string(),
        };
    }
    if err.is_timeout() {
        PveError::Timeout {
            method,
            path,
            source: err,
        }
    } else {
        PveError::Connect {
            method,
            path,
            source: err,
        }
    }
}

fn error_class(err: &PveError) -> ErrorClass {
    match (err, err.status()) {
        (_, Some(400..=499)) => ErrorClass::Client,
        (_, Some(_)) => ErrorClass::Server,
        (PveError::Timeout { .. }, None) => ErrorClass::Timeout,
        _ => ErrorClass::Transport,
    }
}

/// `https://host:8006`, `https://host:8006/api2/json` or a bare `host`
/// (port 8006 implied) -> `https://host:8006/api2/json`.
pub(crate) fn normalize_base_url(url: &str) -> Result<String> {
    let invalid = |reason: &str| PveError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let full = if url.contains("://") {
        url.trim().to_string()
    } else {
        format!("https://{}:8006", url.trim())
    };
    let parsed = reqwest::Url::parse(&full).map_err(|e| invalid(&e.to_string()))?;
    if parsed.scheme() != "https" {
        return Err(invalid(
            "must be https: the token would travel in clear text",
        ));
    }
    if parsed.host_str().is_none() {
        return Err(invalid("no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "credentials do not belong in the URL; use token_secret_file",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("no query or fragment allowed"));
    }
    let path = parsed.path().trim_end_matches('/');
    if !path.is_empty() && path != "/api2/json" {
        return Err(invalid("path must be empty or /api2/json"));
    }
    let mut base = parsed.to_string().trim_end_matches('/').to_string();
    if path.is_empty() {
        base.push_str("/api2/json");
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_path_fills_and_encodes() {
        let p = ApiPath::new("/nodes/{node}/lxc/{vmid}/status/start", &["pve1", "105"]);
        assert_eq!(p.path, "/nodes/pve1/lxc/105/status/start");
        assert_eq!(p.template, "/nodes/{node}/lxc/{vmid}/status/start");
        let upid = "UPID:pve1:0000A1B2:0012ABCD:6740F00D:vzcreate:105:root@pam!x:";
        let p = ApiPath::new("/nodes/{node}/tasks/{upid}/status", &["pve1", upid]);
        assert_eq!(p.path, format!("/nodes/pve1/tasks/{upid}/status"));
        let p = ApiPath::new("/nodes/{node}/lxc", &["a/../b?c d#"]);
        assert_eq!(p.path, "/nodes/a%2F..%2Fb%3Fc%20d%23/lxc");
    }

    #[test]
    fn base_url_normalization() {
        for (input, want) in [
            ("https://pve1:8006", "https://pve1:8006/api2/json"),
            ("https://pve1:8006/", "https://pve1:8006/api2/json"),
            (
                "https://10.0.0.5:8006/api2/json",
                "https://10.0.0.5:8006/api2/json",
            ),
            (
                "https://10.0.0.5:8006/api2/json/",
                "https://10.0.0.5:8006/api2/json",
            ),
            ("pve1", "https://pve1:8006/api2/json"),
        ] {
            assert_eq!(normalize_base_url(input).unwrap(), want, "{input}");
        }
        for bad in [
            "http://pve1:8006",
            "https://u:p@pve1:8006",
            "https://pve1:8006/other",
            "https://pve1:8006/?x=1",
        ] {
            assert!(normalize_base_url(bad).is_err(), "{bad} accepted");
        }
    }
}
