//! HTTPS plumbing: TLS accept, HTTP/1.1 via hyper, and the hand-off of each request to the
//! synchronous API code on tokio's blocking pool.

use crate::api::{Outcome, Request, State};
use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Returned instead of a response to make hyper close the connection unanswered.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                // A client that refuses our certificate (wrong pin) ends here: expected.
                return;
            };
            let svc = service_fn(move |req| answer(state.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A reason phrase must be visible ASCII on one line; PVE messages can be longer.
fn reason_phrase(msg: &str) -> Option<hyper::ext::ReasonPhrase> {
    let clean: String = msg
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .take(200)
        .collect();
    hyper::ext::ReasonPhrase::try_from(clean.trim().as_bytes().to_vec()).ok()
}

async fn answer(
    state: Arc<State>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let header = |name: hyper::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request = Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        authorization: header(hyper::header::AUTHORIZATION),
        content_type: header(hyper::header::CONTENT_TYPE),
        body: body.to_vec(),
    };
    let outcome = tokio::task::spawn_blocking(move || state.handle(request))
        .await
        .map_err(|_| Dropped)?;
    let reply = match outcome {
        Outcome::Drop => return Err(Dropped),
        Outcome::Reply(r) => r,
    };
    let mut resp = hyper::Response::new(Full::new(Bytes::from(reply.body.to_string())));
    *resp.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    if let Some(r) = reply.reason.as_deref().and_then(reason_phrase) {
        resp.extensions_mut().insert(r);
    }
    Ok(resp)
}
