//! The PVE API client the `[pve]` section describes: the token secret is
//! read from its file here and goes nowhere but the client.

use super::PveSettings;
use crate::pve::client::{ApiToken, AuthError, ClientOptions, PveClient, PveError, TlsTrust};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("[pve] {0} is not set")]
    NotConfigured(&'static str),
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error(transparent)]
    Client(#[from] PveError),
}

impl PveSettings {
    /// How the API's certificate is checked: the pin, else the CA file,
    /// else the public web PKI.
    pub fn trust(&self) -> TlsTrust {
        match (&self.fingerprint, &self.ca_file) {
            (Some(fp), _) => TlsTrust::Fingerprint(*fp),
            (None, Some(ca)) => TlsTrust::CaFile(ca.clone()),
            (None, None) => TlsTrust::WebPkiRoots,
        }
    }

    /// A client for the configured node, with the token from its file.
    pub fn connect(&self, options: ClientOptions) -> Result<PveClient, ConnectError> {
        let url = self
            .url
            .as_deref()
            .ok_or(ConnectError::NotConfigured("url"))?;
        let token_id = self
            .token_id
            .as_ref()
            .ok_or(ConnectError::NotConfigured("token_id"))?;
        let secret_file = self
            .token_secret_file
            .as_deref()
            .ok_or(ConnectError::NotConfigured("token_secret_file"))?;
        let token = ApiToken::from_file(token_id.as_str(), secret_file)?;
        Ok(PveClient::new(url, token, self.trust(), options)?)
    }
}
