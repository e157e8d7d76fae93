//! Proxmox VE: the API client, the typed CT config and its renderer, VMID
//! allocation. The `pve` backend (issue 3) is built from these.

pub mod client;
pub mod config;
pub mod vmid;
