//! The CT config's enumerations (`arch`, `ostype`), spelled as the schema
//! lists them.

/// `arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    I386,
    Arm64,
    Armhf,
    Riscv32,
    Riscv64,
}

impl Arch {
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::I386 => "i386",
            Arch::Arm64 => "arm64",
            Arch::Armhf => "armhf",
            Arch::Riscv32 => "riscv32",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// The arch of the node lxcri runs on (containers run natively).
    pub fn host() -> Option<Self> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::Amd64),
            "x86" => Some(Arch::I386),
            "aarch64" => Some(Arch::Arm64),
            "arm" => Some(Arch::Armhf),
            "riscv64" => Some(Arch::Riscv64),
            _ => None,
        }
    }
}

/// `ostype`. lxcri's CTs are application containers: `Unmanaged` makes PVE
/// skip its distribution setup (network files, hostname, ...) inside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsType {
    Debian,
    Devuan,
    Ubuntu,
    Centos,
    Fedora,
    Opensuse,
    Archlinux,
    Alpine,
    Gentoo,
    Nixos,
    Unmanaged,
}

impl OsType {
    pub fn as_str(self) -> &'static str {
        match self {
            OsType::Debian => "debian",
            OsType::Devuan => "devuan",
            OsType::Ubuntu => "ubuntu",
            OsType::Centos => "centos",
            OsType::Fedora => "fedora",
            OsType::Opensuse => "opensuse",
            OsType::Archlinux => "archlinux",
            OsType::Alpine => "alpine",
            OsType::Gentoo => "gentoo",
            OsType::Nixos => "nixos",
            OsType::Unmanaged => "unmanaged",
        }
    }
}
