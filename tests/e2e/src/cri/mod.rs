//! Kubernetes through containerd's CRI plugin, for the tests: the client
//! over gRPC ([`client`]) and the configs it sends ([`config`]), the
//! streaming server's connection ([`websocket`]), exec and attach
//! ([`stream`]) and port forwarding ([`port_forward`]), the
//! test's pod network ([`network`]), a containerd with CRI on ([`node`]),
//! the kubelet's sequence ([`pod`]), the pieces of the tests that mirror
//! cri-tools' validation suite ([`validate`]) and
//! checks on what is left on the host ([`inspect`]).

pub mod client;
pub mod config;
pub mod inspect;
pub mod network;
pub mod node;
pub mod pod;
pub mod port_forward;
pub mod stream;
pub mod validate;
pub mod websocket;

pub use client::{api, CriClient, CriError};
pub use network::{netns_path, PodNetwork};
