//! Building a [`PveClient`] from the `[pve]` section: the token secret is
//! read from its file here and goes nowhere but the client.

use std::time::Duration;

use super::client::{ApiToken, AuthError, ClientOptions, PveClient, PveError, TlsTrust};
use crate::config::PveSettings;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("[pve] {0} is not set")]
    NotConfigured(&'static str),
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error(transparent)]
    Client(#[from] PveError),
}

/// How the API's certificate is checked: the pin, else the CA file, else
/// the public web PKI.
pub fn trust(settings: &PveSettings) -> TlsTrust {
    match (&settings.fingerprint, &settings.ca_file) {
        (Some(fp), _) => TlsTrust::Fingerprint(*fp),
        (None, Some(ca)) => TlsTrust::CaFile(ca.clone()),
        (None, None) => TlsTrust::WebPkiRoots,
    }
}

/// The options a shim uses: retries for idempotent calls, and a request
/// timeout that covers PVE's deliberate delay on a 401.
pub fn shim_options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    }
}

pub fn connect(settings: &PveSettings, options: ClientOptions) -> Result<PveClient, ConnectError> {
    let url = settings
        .url
        .as_deref()
        .ok_or(ConnectError::NotConfigured("url"))?;
    let token_id = settings
        .token_id
        .as_ref()
        .ok_or(ConnectError::NotConfigured("token_id"))?;
    let secret_file = settings
        .token_secret_file
        .as_deref()
        .ok_or(ConnectError::NotConfigured("token_secret_file"))?;
    let token = ApiToken::from_file(token_id.as_str(), secret_file)?;
    Ok(PveClient::new(url, token, trust(settings), options)?)
}
