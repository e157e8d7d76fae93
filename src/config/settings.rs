//! Every configuration key: its dotted name in the file, its `LXCRI_*`
//! environment variable, and the field it sets.

use super::{network, pve, userns, zfs, Field};

/// One configuration key: its dotted name in the file and its environment variable.
#[derive(Debug)]
pub struct Setting {
    pub key: &'static str,
    pub env: &'static str,
    pub(super) field: Field,
}

/// Every key, in the order the environment is applied and the docs list them.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "backend",
        env: "LXCRI_BACKEND",
        field: Field::Backend,
    },
    Setting {
        key: "runtime_root",
        env: "LXCRI_RUNTIME_ROOT",
        field: Field::RuntimeRoot,
    },
    Setting {
        key: "log_level",
        env: "LXCRI_LOG_LEVEL",
        field: Field::LogLevel,
    },
    Setting {
        key: "lxc.lxcpath",
        env: "LXCRI_LXC_LXCPATH",
        field: Field::LxcPath,
    },
    Setting {
        key: "lxc.init_binary",
        env: "LXCRI_LXC_INIT_BINARY",
        field: Field::InitBinary,
    },
    Setting {
        key: "lxc.log_level",
        env: "LXCRI_LXC_LOG_LEVEL",
        field: Field::LxcLogLevel,
    },
    Setting {
        key: "lxc.start_timeout_secs",
        env: "LXCRI_LXC_START_TIMEOUT_SECS",
        field: Field::StartTimeoutSecs,
    },
    Setting {
        key: "rootfs.mode",
        env: "LXCRI_ROOTFS_MODE",
        field: Field::RootfsMode,
    },
    Setting {
        key: "pve.url",
        env: "LXCRI_PVE_URL",
        field: Field::Pve(pve::PveField::Url),
    },
    Setting {
        key: "pve.node",
        env: "LXCRI_PVE_NODE",
        field: Field::Pve(pve::PveField::Node),
    },
    Setting {
        key: "pve.token_id",
        env: "LXCRI_PVE_TOKEN_ID",
        field: Field::Pve(pve::PveField::TokenId),
    },
    Setting {
        key: "pve.token_secret_file",
        env: "LXCRI_PVE_TOKEN_SECRET_FILE",
        field: Field::Pve(pve::PveField::TokenSecretFile),
    },
    Setting {
        key: "pve.fingerprint",
        env: "LXCRI_PVE_FINGERPRINT",
        field: Field::Pve(pve::PveField::Fingerprint),
    },
    Setting {
        key: "pve.ca_file",
        env: "LXCRI_PVE_CA_FILE",
        field: Field::Pve(pve::PveField::CaFile),
    },
    Setting {
        key: "pve.vmid_range",
        env: "LXCRI_PVE_VMID_RANGE",
        field: Field::Pve(pve::PveField::VmidRange),
    },
    Setting {
        key: "pve.storage",
        env: "LXCRI_PVE_STORAGE",
        field: Field::Pve(pve::PveField::Storage),
    },
    Setting {
        key: "pve.bridge",
        env: "LXCRI_PVE_BRIDGE",
        field: Field::Pve(pve::PveField::Bridge),
    },
    Setting {
        key: "pve.config_dir",
        env: "LXCRI_PVE_CONFIG_DIR",
        field: Field::Pve(pve::PveField::ConfigDir),
    },
    Setting {
        key: "pve.template",
        env: "LXCRI_PVE_TEMPLATE",
        field: Field::Pve(pve::PveField::Template),
    },
    Setting {
        key: "pve.lxcpath",
        env: "LXCRI_PVE_LXCPATH",
        field: Field::Pve(pve::PveField::LxcPath),
    },
    Setting {
        key: "pve.lock_dir",
        env: "LXCRI_PVE_LOCK_DIR",
        field: Field::Pve(pve::PveField::LockDir),
    },
    Setting {
        key: "pve.run_dir",
        env: "LXCRI_PVE_RUN_DIR",
        field: Field::Pve(pve::PveField::RunDir),
    },
    Setting {
        key: "pve.pool",
        env: "LXCRI_PVE_POOL",
        field: Field::Pve(pve::PveField::Pool),
    },
    Setting {
        key: "pve.lock_wait_secs",
        env: "LXCRI_PVE_LOCK_WAIT_SECS",
        field: Field::Pve(pve::PveField::LockWaitSecs),
    },
    Setting {
        key: "pve.warm_pool_size",
        env: "LXCRI_PVE_WARM_POOL_SIZE",
        field: Field::Pve(pve::PveField::WarmPoolSize),
    },
    Setting {
        key: "pve.apparmor",
        env: "LXCRI_PVE_APPARMOR",
        field: Field::Pve(pve::PveField::AppArmor),
    },
    Setting {
        key: "zfs.pool",
        env: "LXCRI_ZFS_POOL",
        field: Field::Zfs(zfs::ZfsField::Pool),
    },
    Setting {
        key: "zfs.images",
        env: "LXCRI_ZFS_IMAGES",
        field: Field::Zfs(zfs::ZfsField::Images),
    },
    Setting {
        key: "zfs.size",
        env: "LXCRI_ZFS_SIZE",
        field: Field::Zfs(zfs::ZfsField::Size),
    },
    Setting {
        key: "zfs.image_ttl_secs",
        env: "LXCRI_ZFS_IMAGE_TTL_SECS",
        field: Field::Zfs(zfs::ZfsField::ImageTtlSecs),
    },
    Setting {
        key: "zfs.command",
        env: "LXCRI_ZFS_COMMAND",
        field: Field::Zfs(zfs::ZfsField::Command),
    },
    Setting {
        key: "userns.unprivileged",
        env: "LXCRI_USERNS_UNPRIVILEGED",
        field: Field::Userns(userns::UsernsField::Unprivileged),
    },
    Setting {
        key: "userns.size",
        env: "LXCRI_USERNS_SIZE",
        field: Field::Userns(userns::UsernsField::Size),
    },
    Setting {
        key: "userns.pool",
        env: "LXCRI_USERNS_POOL",
        field: Field::Userns(userns::UsernsField::Pool),
    },
    Setting {
        key: "network.ovsdb",
        env: "LXCRI_NETWORK_OVSDB",
        field: Field::Network(network::NetworkField::Ovsdb),
    },
    Setting {
        key: "network.net0",
        env: "LXCRI_NETWORK_NET0",
        field: Field::Network(network::NetworkField::Nic(0)),
    },
    Setting {
        key: "network.net1",
        env: "LXCRI_NETWORK_NET1",
        field: Field::Network(network::NetworkField::Nic(1)),
    },
    Setting {
        key: "network.net2",
        env: "LXCRI_NETWORK_NET2",
        field: Field::Network(network::NetworkField::Nic(2)),
    },
    Setting {
        key: "network.net3",
        env: "LXCRI_NETWORK_NET3",
        field: Field::Network(network::NetworkField::Nic(3)),
    },
    Setting {
        key: "network.net4",
        env: "LXCRI_NETWORK_NET4",
        field: Field::Network(network::NetworkField::Nic(4)),
    },
    Setting {
        key: "network.net5",
        env: "LXCRI_NETWORK_NET5",
        field: Field::Network(network::NetworkField::Nic(5)),
    },
    Setting {
        key: "network.net6",
        env: "LXCRI_NETWORK_NET6",
        field: Field::Network(network::NetworkField::Nic(6)),
    },
    Setting {
        key: "network.net7",
        env: "LXCRI_NETWORK_NET7",
        field: Field::Network(network::NetworkField::Nic(7)),
    },
    Setting {
        key: "network.net8",
        env: "LXCRI_NETWORK_NET8",
        field: Field::Network(network::NetworkField::Nic(8)),
    },
    Setting {
        key: "network.net9",
        env: "LXCRI_NETWORK_NET9",
        field: Field::Network(network::NetworkField::Nic(9)),
    },
];
