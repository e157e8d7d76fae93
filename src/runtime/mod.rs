//! Running containers: the liblxc backend, the Proxmox VE backend ([`pve`]) (`lxc-*` commands behind
//! [`command::CommandRunner`]), the rendezvous with `lxcri-init`
//! ([`init_channel`]) and process handles ([`pidfd`]).

pub mod backend;
pub mod command;
pub mod container;
pub mod init_channel;
pub mod lxc;
pub mod pidfd;
pub mod pve;

pub use backend::{backend_for, Backend};
pub use command::{CommandRunner, SystemCommands};
pub use container::{ContainerError, CreateRequest, CreatedContainer, LxcRuntime};
pub use init_channel::{InitChannelError, InitConnection, InitListener};
pub use lxc::{LxcBackend, LxcError};
pub use pve::{PveBackendError, PveRuntime};
