//! Shim errors and their one mapping to ttrpc status codes.

use containerd_shim_protos::ttrpc::{self, Code};

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Unimplemented(String),
    /// A create or exec failed: the message names the cause (bad spec
    /// field, missing binary, LXC's error...).
    #[error("{0}")]
    Failed(String),
}

pub type Result<T> = std::result::Result<T, ShimError>;

impl ShimError {
    /// Wraps any library error with the operation it broke, keeping the
    /// whole source chain in the message containerd shows.
    pub fn failed(op: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        ShimError::Failed(format!("{op}: {}", chain(err)))
    }
}

impl ShimError {
    /// A create the runtime could not make, worded as runc's shim words it
    /// ("OCI runtime create failed: ..."; the process's own start failure
    /// as runc 1.2+ words what its init reports, "unable to start container
    /// process: error during container init: ..."; 1.1 left the middle out
    /// for a program it could not find), which users search for and tools
    /// match on.
    pub fn create_failed(e: &lxcri::runtime::RuntimeError) -> Self {
        let why = match e.process_start_failure() {
            Some(message) => {
                format!("unable to start container process: error during container init: {message}")
            }
            None => chain(e),
        };
        ShimError::Failed(format!("OCI runtime create failed: {why}"))
    }
}

pub use lxcri::error_chain as chain;

impl From<ShimError> for ttrpc::Error {
    fn from(e: ShimError) -> Self {
        let code = match &e {
            ShimError::NotFound(_) => Code::NOT_FOUND,
            ShimError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            ShimError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            ShimError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            ShimError::Unimplemented(_) => Code::UNIMPLEMENTED,
            ShimError::Failed(_) => Code::UNKNOWN,
        };
        ttrpc::Error::RpcStatus(ttrpc::get_status(code, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_once() {
        let e: ttrpc::Error = ShimError::Unimplemented("checkpoint is not supported".into()).into();
        match e {
            ttrpc::Error::RpcStatus(s) => {
                assert_eq!(s.code(), Code::UNIMPLEMENTED);
                assert_eq!(s.message(), "checkpoint is not supported");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_create_reads_as_runcs() {
        use lxcri::runtime::init_channel::InitChannelError;
        use lxcri::runtime::RuntimeError;
        let missing = RuntimeError::Init(InitChannelError::InitFailed(
            "exec: \"nosuchcmd\": executable file not found in $PATH".into(),
        ));
        assert_eq!(
            ShimError::create_failed(&missing).to_string(),
            "OCI runtime create failed: unable to start container process: \
             error during container init: exec: \"nosuchcmd\": executable file not found in $PATH"
        );
        let taken = RuntimeError::Exists("c1".into());
        let text = ShimError::create_failed(&taken).to_string();
        assert!(
            text.starts_with("OCI runtime create failed: ") && text.contains("c1"),
            "{text}"
        );
        assert!(
            !text.contains("unable to start container process"),
            "{text}"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("config file /x: {}", .0.to_string().trim_end())]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn chain_skips_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(chain(&io), "gone");
        // A source whose text the outer message already holds (modulo a
        // trailing newline) is not repeated.
        let inner = std::io::Error::other("line 1\n  |\nunknown field\n");
        assert_eq!(
            chain(&Wrapped(inner)),
            "config file /x: line 1\n  |\nunknown field"
        );
    }
}
