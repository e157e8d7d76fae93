//! A task: the container's init process plus its exec processes.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use std::sync::Arc;

use lxcri::cgroup::ContainerCgroup;
use lxcri::runtime::Backend;
use oci_spec::runtime::Spec;

use crate::error::{Result, ShimError};
use crate::process::Process;

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub spec: Spec,
    pub run_dir: PathBuf,
    pub init: Process,
    pub execs: HashMap<String, Process>,
    /// The configuration this container was created with.
    pub runtime: Arc<dyn Backend>,
    pub cgroup: Option<ContainerCgroup>,
    /// Held open until start; see `CreatedContainer::start_gate`.
    pub start_gate: Option<File>,
}

impl Container {
    pub fn process(&self, exec_id: &str) -> Result<&Process> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .ok_or_else(|| ShimError::NotFound(format!("exec {exec_id} not found in {}", self.id)))
    }

    pub fn process_mut(&mut self, exec_id: &str) -> Result<&mut Process> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        let id = self.id.clone();
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| ShimError::NotFound(format!("exec {exec_id} not found in {id}")))
    }

    pub fn cgroup(&self) -> Result<&ContainerCgroup> {
        self.cgroup.as_ref().ok_or_else(|| {
            ShimError::FailedPrecondition(format!("container {} has no cgroup", self.id))
        })
    }

    /// Releases the init: one byte into the start FIFO.
    pub fn release_init(&mut self) -> Result<()> {
        let mut gate = self.start_gate.take().ok_or_else(|| {
            ShimError::FailedPrecondition(format!("container {} was already started", self.id))
        })?;
        gate.write_all(&[1])
            .map_err(|e| ShimError::Failed(format!("releasing the init of {}: {e}", self.id)))
    }
}
