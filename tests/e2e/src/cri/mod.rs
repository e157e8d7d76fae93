//! CRI test client: containerd's CRI plugin over gRPC ([`client`]) and its
//! streaming server's exec ([`stream`]).

pub mod client;
pub mod stream;

pub use client::{api, CriClient, CriError};
pub mod network;
pub mod pod;

pub use network::{netns_path, PodNetwork};
