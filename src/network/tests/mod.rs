mod nic;
mod plug;
