//! containerd's stdio URIs (`file://`, `binary://`) read as the runc
//! shim's Go `url.Parse` reads them: the path percent-decoded.

use crate::error::{Result, ShimError};

/// `uri` parsed, with its decoded path; errors name the URI.
pub fn parse(uri: &str) -> Result<(url::Url, String)> {
    let parsed = url::Url::parse(uri).map_err(|e| invalid(uri, &e.to_string()))?;
    let path = percent_encoding::percent_decode_str(parsed.path())
        .decode_utf8()
        .map_err(|e| invalid(uri, &format!("the path is not UTF-8: {e}")))?
        .into_owned();
    Ok((parsed, path))
}

/// The error for stdio URI `uri`: `why` it cannot be used.
pub fn invalid(uri: &str, why: &str) -> ShimError {
    ShimError::InvalidArgument(format!("stdio {uri}: {why}"))
}
