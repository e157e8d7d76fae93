mod host;
mod nic;
mod plug;
