//! A small synchronous client of the OVSDB management protocol (RFC 7047)
//! for the Open_vSwitch database: what lxcri needs to plug a container's
//! veth host end into an Open vSwitch bridge and take it out again.
//!
//! PVE does this by running `ovs-vsctl del-port` and then `ovs-vsctl
//! add-port BRIDGE IFACE tag=.. trunks=.. [vlan_mode=native-untagged] --
//! set Interface IFACE mtu_request=..` (proxmox/pve-common,
//! src/PVE/Network.pm, `tap_plug` and `$ovs_bridge_add_port`). lxcri talks
//! to the database itself instead, as ovs-cni does: no process to spawn,
//! errors with the server's own words, and both steps in one transaction.
//!
//! - [`OvsdbTarget`]: `unix:PATH` or `tcp:IP[:PORT]`, validated.
//! - [`Ovsdb`]: a connection; every request is answered within its
//!   deadline (default [`Ovsdb::DEFAULT_DEADLINE`]) or fails.
//!
//! The JSON of each transaction is built by pure functions (`ops`), the
//! framing of JSON-RPC is in `rpc`, the OVSDB value encodings in `value`.

mod error;
mod ops;
mod rpc;
mod target;
mod value;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use error::{OvsdbError, Result};
pub use target::OvsdbTarget;

use ops::{NewPort, Outcome, Txn};

/// How often a write is tried again when another client changed the rows
/// it depends on between its read and its write.
const ATTEMPTS: u32 = 3;

/// A Bridge row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsBridge {
    pub name: String,
    /// `""` (the default, `system`: the kernel datapath) or `netdev` (the
    /// userspace datapath).
    pub datapath_type: String,
}

/// The VLAN settings of a port, as PVE's `tag` and `trunks` give them
/// (each 1..=4094, checked by the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortVlan {
    pub tag: Option<u16>,
    pub trunks: Vec<u16>,
}

/// A Port row, with the name of the bridge that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsPort {
    pub name: String,
    /// `None` for a port no bridge refers to (ovsdb-server removes such a
    /// row at the end of the transaction that orphaned it, so this is rare).
    pub bridge: Option<String>,
    pub tag: Option<u16>,
    pub trunks: Vec<u16>,
    pub vlan_mode: Option<String>,
    pub external_ids: BTreeMap<String, String>,
}

/// A connection to ovsdb-server's Open_vSwitch database.
pub struct Ovsdb {
    rpc: rpc::Rpc,
    /// How long `add_port` waits for ovs-vswitchd to apply it.
    apply_wait: Option<Duration>,
}

/// How often ovs-vswitchd's progress is read while waiting for it.
const APPLY_POLL: Duration = Duration::from_millis(10);

impl Ovsdb {
    /// How long connecting, and each request, may take.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);
    /// How long ovs-vswitchd may take to apply an added port (it
    /// reconfigures every bridge; ovs-vsctl waits without limit).
    pub const DEFAULT_APPLY_WAIT: Duration = Duration::from_secs(10);

    pub fn connect(target: &OvsdbTarget) -> Result<Self> {
        Self::connect_with_deadline(target, Self::DEFAULT_DEADLINE)
    }

    /// Connects within `deadline`, which then bounds each request: a
    /// request not answered in time fails with [`OvsdbError::TimedOut`]
    /// and the connection is not used again.
    pub fn connect_with_deadline(target: &OvsdbTarget, deadline: Duration) -> Result<Self> {
        Ok(Self {
            rpc: rpc::Rpc::connect(target, deadline)?,
            apply_wait: Some(Self::DEFAULT_APPLY_WAIT),
        })
    }

    /// How long `add_port` waits for ovs-vswitchd; `None` does not wait,
    /// as `ovs-vsctl --no-wait` (for a database no ovs-vswitchd serves).
    pub fn with_apply_wait(mut self, wait: Option<Duration>) -> Self {
        self.apply_wait = wait;
        self
    }

    /// Whether a request timed out or the stream broke: every later one
    /// fails with [`OvsdbError::Broken`], so connect again.
    pub fn is_broken(&self) -> bool {
        self.rpc.is_broken()
    }

    /// The bridge's row if it exists: name and datapath_type.
    pub fn bridge(&mut self, name: &str) -> Result<Option<OvsBridge>> {
        let operation = format!("find bridge {name}");
        let results = self.read(&operation, &ops::select_bridge(name))?;
        ops::parse_bridge(&results).map_err(|e| self.protocol(&operation, e))
    }

    /// Adds `port`, an existing kernel link such as a veth host end, to
    /// `bridge` as a Port with one Interface of the same name, with
    /// `vlan`, `external_ids` (on the Port) and the Interface's
    /// `mtu_request`. A port of that name on any bridge is replaced, in
    /// the same transaction, as PVE deletes it before plugging. Returns
    /// once ovs-vswitchd applied it, as `ovs-vsctl add-port` does; a port
    /// it could not add (or did not apply within its wait) fails naming
    /// why and is taken out again.
    pub fn add_port(
        &mut self,
        bridge: &str,
        port: &str,
        vlan: &PortVlan,
        external_ids: &[(&str, &str)],
        mtu_request: Option<u32>,
    ) -> Result<()> {
        let operation = format!("add-port {bridge} {port}");
        let new = NewPort {
            bridge,
            name: port,
            vlan,
            external_ids,
            mtu_request,
        };
        for _ in 0..ATTEMPTS {
            let found = self.read(&operation, &ops::find_uuids(Some(bridge), port))?;
            let old = self.uuid(&operation, &found, 0)?;
            let Some(bridge_uuid) = self.uuid(&operation, &found, 1)? else {
                return Err(OvsdbError::NoSuchBridge {
                    operation,
                    bridge: bridge.to_string(),
                });
            };
            let txn = ops::add_port(&new, &bridge_uuid, old.as_deref());
            let Some(results) = self.write_returning(&operation, &txn)? else {
                continue;
            };
            let next_cfg = txn
                .next_cfg(&results)
                .map_err(|e| self.protocol(&operation, e))?;
            if let (Some(target), Some(wait)) = (next_cfg, self.apply_wait) {
                if let Err(e) = self.wait_applied(&operation, port, target, wait) {
                    // A row ovs-vswitchd did not take would carry nothing.
                    if let Err(undo) = self.del_port(port, None) {
                        tracing::warn!(%port, error = %undo, "taking out a port ovs-vswitchd did not apply");
                    }
                    return Err(e);
                }
            }
            return Ok(());
        }
        Err(OvsdbError::Conflict {
            operation,
            attempts: ATTEMPTS,
        })
    }

    /// Removes `port` and its interfaces from whichever bridge holds it;
    /// with `mark` (an external_ids key and value), only a port that has
    /// it: a port of that name made meanwhile for someone else stays.
    /// `Ok(false)` when there is no such port.
    pub fn del_port(&mut self, port: &str, mark: Option<(&str, &str)>) -> Result<bool> {
        let operation = format!("del-port {port}");
        let find = match mark {
            Some(mark) => ops::find_marked_port(port, mark),
            None => ops::find_uuids(None, port),
        };
        for _ in 0..ATTEMPTS {
            let found = self.read(&operation, &find)?;
            let Some(uuid) = self.uuid(&operation, &found, 0)? else {
                return Ok(false);
            };
            if self.write(&operation, &ops::del_port(port, &uuid, mark))? {
                return Ok(true);
            }
        }
        Err(OvsdbError::Conflict {
            operation,
            attempts: ATTEMPTS,
        })
    }

    /// The ports whose external_ids has `key` (with `value`, when given):
    /// how lxcri finds the ports it made.
    pub fn ports_with_external_id(
        &mut self,
        key: &str,
        value: Option<&str>,
    ) -> Result<Vec<OvsPort>> {
        let operation = format!("find ports with external_ids:{key}");
        let results = self.read(&operation, &ops::select_ports())?;
        let ports = ops::parse_ports(&results).map_err(|e| self.protocol(&operation, e))?;
        Ok(ports
            .into_iter()
            .filter(|p| match (p.external_ids.get(key), value) {
                (Some(have), Some(want)) => have == want,
                (have, None) => have.is_some(),
                (None, Some(_)) => false,
            })
            .collect())
    }

    /// Runs a transaction without preconditions and returns its results.
    fn read(&mut self, operation: &str, txn: &Txn) -> Result<Vec<Value>> {
        match self.transact(operation, txn)? {
            Outcome::Done(results) => Ok(results),
            // Only writes have preconditions.
            Outcome::Changed => {
                Err(self.protocol(operation, "a read failed a precondition".into()))
            }
            Outcome::Failed { error, details } => Err(OvsdbError::Transact {
                operation: operation.to_string(),
                error,
                details,
            }),
        }
    }

    /// Runs a write: `Ok(false)` when its preconditions no longer held
    /// (nothing changed; read again).
    fn write(&mut self, operation: &str, txn: &Txn) -> Result<bool> {
        Ok(self.write_returning(operation, txn)?.is_some())
    }

    /// [`Self::write`], with the results of a committed transaction.
    fn write_returning(&mut self, operation: &str, txn: &Txn) -> Result<Option<Vec<Value>>> {
        match self.transact(operation, txn)? {
            Outcome::Done(results) => Ok(Some(results)),
            Outcome::Changed => {
                tracing::debug!(
                    ovsdb = %self.rpc.target(),
                    %operation,
                    "the database changed since the read: reading again"
                );
                Ok(None)
            }
            Outcome::Failed { error, details } => Err(OvsdbError::Transact {
                operation: operation.to_string(),
                error,
                details,
            }),
        }
    }

    /// Waits until ovs-vswitchd reached `target` (`cur_cfg`, as ovs-vsctl
    /// waits), then fails if it could not add `port`'s interface.
    fn wait_applied(
        &mut self,
        operation: &str,
        port: &str,
        target: i64,
        wait: Duration,
    ) -> Result<()> {
        let not_applied = |reason: String| OvsdbError::NotApplied {
            operation: operation.to_string(),
            reason,
        };
        let until = Instant::now() + wait;
        loop {
            let results = self.read(operation, &ops::select_applied(port))?;
            let (cur_cfg, interface) =
                ops::parse_applied(&results).map_err(|e| self.protocol(operation, e))?;
            if cur_cfg >= target {
                return match interface {
                    Some(ops::InterfaceState {
                        error: Some(error), ..
                    }) => Err(not_applied(format!("ovs-vswitchd: {error}"))),
                    Some(ops::InterfaceState {
                        ofport: Some(-1), ..
                    }) => Err(not_applied(
                        "ovs-vswitchd could not add the interface (ofport -1)".into(),
                    )),
                    _ => Ok(()),
                };
            }
            if Instant::now() >= until {
                return Err(not_applied(format!(
                    "ovs-vswitchd did not apply it within {wait:?} (cur_cfg {cur_cfg}, waiting for {target}); is ovs-vswitchd running?"
                )));
            }
            std::thread::sleep(APPLY_POLL);
        }
    }

    fn transact(&mut self, operation: &str, txn: &Txn) -> Result<Outcome> {
        let result = self.rpc.call("transact", txn.params())?;
        txn.outcome(result).map_err(|e| self.protocol(operation, e))
    }

    fn uuid(&self, operation: &str, results: &[Value], index: usize) -> Result<Option<String>> {
        ops::found_uuid(results, index).map_err(|e| self.protocol(operation, e))
    }

    fn protocol(&self, operation: &str, detail: String) -> OvsdbError {
        OvsdbError::Protocol {
            context: format!("{}: {operation}", self.rpc.target()),
            detail,
        }
    }
}
