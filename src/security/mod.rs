//! Process security settings, validated and compiled by the shim so the
//! in-container init only has to apply them: capability names, seccomp
//! filters (compiled to BPF with libseccomp), rlimit names.

pub mod capabilities;
pub mod lsm;
pub mod rlimits;
pub mod seccomp;

pub use capabilities::CapabilityError;
pub use rlimits::RlimitError;
pub use seccomp::{compile_seccomp, SeccompError};
