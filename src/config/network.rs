//! The `[network]` section: the Open vSwitch database lxcri plugs OVS
//! ports through, and the NICs a container with its own network namespace
//! gets when its spec names none (`net0` ... `net9`, PVE's `netN` syntax;
//! see [`crate::network::nic`]).

use serde::Deserialize;

use super::error::{ConfigError, Origin};
use super::Field;
use crate::network::nic::{nic_set_conflict, NicIndex, NicSpec, MAX_NICS};

use crate::network::ovsdb::OvsdbTarget;

/// Where Debian's `openvswitch-switch` serves its database.
pub const DEFAULT_OVSDB: &str = "unix:/var/run/openvswitch/db.sock";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NetworkField {
    Ovsdb,
    Nic(u8),
}

/// The `[network]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    pub ovsdb: OvsdbTarget,
    /// Default NICs, by index.
    nics: [Option<NicSpec>; MAX_NICS as usize],
    /// Which key each default NIC came from, and from where, by index.
    nic_origins: [Option<(&'static str, Origin)>; MAX_NICS as usize],
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            ovsdb: DEFAULT_OVSDB
                .parse()
                .expect("the default OVSDB target parses"),
            nics: Default::default(),
            nic_origins: Default::default(),
        }
    }
}

impl NetworkSettings {
    /// The default NICs, in index order.
    pub fn nics(&self) -> impl Iterator<Item = &NicSpec> {
        self.nics.iter().flatten()
    }

    pub(super) fn apply(
        &mut self,
        field: NetworkField,
        key: &'static str,
        value: &str,
        origin: Origin,
    ) -> Result<(), String> {
        match field {
            NetworkField::Ovsdb => self.ovsdb = value.parse().map_err(|e| format!("{e}"))?,
            NetworkField::Nic(n) => {
                let index = NicIndex::new(n).expect("net0-net9 only");
                let nic = NicSpec::parse(index, value, key).map_err(|e| e.to_string())?;
                self.nics[usize::from(n)] = Some(nic);
                self.nic_origins[usize::from(n)] = Some((key, origin));
            }
        }
        Ok(())
    }

    /// The default NICs must fit in one container together (the rule every
    /// create applies, see [`nic_set_conflict`]): a set that cannot is
    /// refused here, naming both keys and where each came from, rather
    /// than by every create.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let nics: Vec<&NicSpec> = self.nics().collect();
        for (k, nic) in nics.iter().enumerate() {
            if let Some(conflict) = nic_set_conflict(nic, nics[..k].iter().copied()) {
                let (first, first_origin) = self.origin_of(conflict.with);
                let (second, second_origin) = self.origin_of(nic);
                return Err(ConfigError::NicSet {
                    first,
                    first_origin,
                    second,
                    second_origin,
                    reason: conflict.reason,
                });
            }
        }
        Ok(())
    }

    fn origin_of(&self, nic: &NicSpec) -> (&'static str, Origin) {
        self.nic_origins[usize::from(nic.index.get())]
            .clone()
            .expect("every default NIC was applied from a key")
    }
}

/// The section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    ovsdb: Option<String>,
    net0: Option<String>,
    net1: Option<String>,
    net2: Option<String>,
    net3: Option<String>,
    net4: Option<String>,
    net5: Option<String>,
    net6: Option<String>,
    net7: Option<String>,
    net8: Option<String>,
    net9: Option<String>,
}

impl RawNetwork {
    pub(super) fn values(self) -> Vec<(Field, Option<String>)> {
        let nics = [
            self.net0, self.net1, self.net2, self.net3, self.net4, self.net5, self.net6, self.net7,
            self.net8, self.net9,
        ];
        std::iter::once((Field::Network(NetworkField::Ovsdb), self.ovsdb))
            .chain(
                (0u8..)
                    .zip(nics)
                    .map(|(n, v)| (Field::Network(NetworkField::Nic(n)), v)),
            )
            .collect()
    }
}
