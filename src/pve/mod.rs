//! Proxmox VE: the API client, the typed CT config and its renderer, VMID
//! allocation. The `pve` backend (`runtime::pve`) is built from these.

pub mod client;
pub mod config;
pub mod storage_cfg;
pub mod storage_check;
pub mod vmid;
