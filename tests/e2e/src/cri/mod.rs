//! Kubernetes through containerd's CRI plugin, for the tests: the client
//! over gRPC ([`client`]), the streaming server's exec ([`stream`]), the
//! test's pod network ([`network`]), a containerd with CRI on ([`node`]),
//! the kubelet's sequence ([`pod`]) and
//! checks on what is left on the host ([`inspect`]).

pub mod client;
pub mod inspect;
pub mod network;
pub mod node;
pub mod pod;
pub mod stream;

pub use client::{api, CriClient, CriError};
pub use network::{netns_path, PodNetwork};
