//! API token authentication: `Authorization: PVEAPIToken=USER@REALM!NAME=SECRET`.
//!
//! The secret is read from a file and kept in [`Secret`], whose `Debug`
//! prints `***` and which has no `Display`, so it cannot reach a log line or
//! an error message by accident. Tokens need no CSRF header, unlike tickets.

use std::fmt;
use std::path::{Path, PathBuf};

use reqwest::header::HeaderValue;

/// Errors while loading or validating the token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid PVE token id {0:?}: expected USER@REALM!TOKENNAME")]
    InvalidTokenId(String),
    #[error("reading PVE token secret file {}", path.display())]
    ReadSecret {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("PVE token secret file {} is empty", .0.display())]
    EmptySecret(PathBuf),
    #[error("PVE token secret contains characters not allowed in an HTTP header")]
    InvalidSecret,
}

/// A local `Result` for this module.
pub type Result<T> = std::result::Result<T, AuthError>;

/// A secret string that never prints itself.
///
/// Deliberately without `Display` and `Serialize`: the only way out is
/// [`Secret::expose`], which is used in exactly one place (the header).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Reads the secret from `path`, trimming surrounding whitespace (files
    /// written by `echo` end in a newline, which PVE would reject).
    pub fn from_file(path: &Path) -> Result<Self> {
        let raw = std::fs::read_to_string(path).map_err(|source| AuthError::ReadSecret {
            path: path.to_path_buf(),
            source,
        })?;
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(AuthError::EmptySecret(path.to_path_buf()));
        }
        Ok(Secret(trimmed.to_string()))
    }

    /// The secret itself. Keep callers to the header builder.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A validated token id `USER@REALM!TOKENNAME`, e.g. `lxcri@pve!shim`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenId {
    full: String,
}

impl TokenId {
    /// Validates the shape PVE accepts: a user id `NAME@REALM` (no
    /// whitespace, `:` or `/`; realm starts with a letter) and a token name
    /// starting with a letter followed by `[A-Za-z0-9._-]`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || AuthError::InvalidTokenId(s.to_string());
        let (userid, name) = s.rsplit_once('!').ok_or_else(bad)?;
        let (user, realm) = userid.rsplit_once('@').ok_or_else(bad)?;
        let user_ok = !user.is_empty()
            && !user
                .chars()
                .any(|c| c.is_whitespace() || c == ':' || c == '/' || c == '!' || c == '=');
        if !user_ok || !ident_ok(realm) || !ident_ok(name) {
            return Err(bad());
        }
        Ok(TokenId {
            full: s.to_string(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The user part, `USER@REALM`.
    pub fn userid(&self) -> &str {
        self.full.rsplit_once('!').map_or("", |(u, _)| u)
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// A realm or token name: a letter, then at least one of
/// `[A-Za-z0-9._-]` (pve-access-control src/PVE/Auth/Plugin.pm
/// `$realm_regex`, src/PVE/AccessControl.pm `$token_name_regex`).
fn ident_ok(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() >= 2
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A token id with its secret.
#[derive(Debug, Clone)]
pub struct ApiToken {
    id: TokenId,
    secret: Secret,
}

impl ApiToken {
    pub fn new(id: TokenId, secret: Secret) -> Self {
        ApiToken { id, secret }
    }

    /// `token_id` + `token_secret_file` from the `[pve]` config section.
    pub fn from_file(token_id: &str, secret_file: &Path) -> Result<Self> {
        Ok(ApiToken {
            id: TokenId::parse(token_id)?,
            secret: Secret::from_file(secret_file)?,
        })
    }

    pub fn id(&self) -> &TokenId {
        &self.id
    }

    /// The `Authorization` header value, marked sensitive so that hyper and
    /// reqwest redact it from their own debug output.
    pub(crate) fn header_value(&self) -> Result<HeaderValue> {
        let value = format!("PVEAPIToken={}={}", self.id.as_str(), self.secret.expose());
        let mut header = HeaderValue::from_str(&value).map_err(|_| AuthError::InvalidSecret)?;
        header.set_sensitive(true);
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_id_validation() {
        for ok in [
            "root@pam!lxcri",
            "lxcri@pve!shim-1",
            "a.b@ldap-x!t_2",
            "u@pve!t1",
        ] {
            TokenId::parse(ok).unwrap();
        }
        for bad in [
            "root@pam",
            "root!x",
            "@pam!x",
            "root@pam!",
            "root@pam!1abc",
            "root@1pam!x",
            "ro ot@pam!x",
            "root@pam!x y",
            "root@pam!x",
            "root@p!xy",
        ] {
            assert!(TokenId::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(TokenId::parse("u@pve!t1").unwrap().userid(), "u@pve");
    }

    #[test]
    fn secret_is_trimmed_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "  5e3c0d6a-hidden-value\n").unwrap();
        let token = ApiToken::from_file("root@pam!lxcri", &path).unwrap();
        assert_eq!(token.secret.expose(), "5e3c0d6a-hidden-value");
        let debug = format!("{token:?} {:?}", token.secret);
        assert!(!debug.contains("hidden"), "{debug}");
        assert!(debug.contains("***"));
        let header = token.header_value().unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("hidden"));
        assert_eq!(
            header.to_str().unwrap(),
            "PVEAPIToken=root@pam!lxcri=5e3c0d6a-hidden-value"
        );
    }

    #[test]
    fn empty_or_missing_secret_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, " \n").unwrap();
        assert!(matches!(
            Secret::from_file(&path),
            Err(AuthError::EmptySecret(_))
        ));
        let missing = dir.path().join("nope");
        let err = Secret::from_file(&missing).unwrap_err();
        assert!(err.to_string().contains("nope"));
    }
}
