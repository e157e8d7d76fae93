//! A task: the container's init process plus its exec processes, and the
//! runtime that made the container.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;

use lxcri::runtime::{Container, Runtime};

use crate::error::{Result, ShimError};
use crate::process::Process;

pub struct Task {
    pub container: Arc<Container>,
    pub init: Process,
    pub execs: HashMap<String, Process>,
    /// The runtime (and configuration) this container was created with.
    pub runtime: Arc<Runtime>,
    /// Held open until start; see `CreatedContainer::start_gate`.
    pub start_gate: Option<File>,
}

impl Task {
    pub fn id(&self) -> &str {
        self.container.id()
    }

    pub fn process(&self, exec_id: &str) -> Result<&Process> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs.get(exec_id).ok_or_else(|| {
            ShimError::NotFound(format!("exec {exec_id} not found in {}", self.id()))
        })
    }

    pub fn process_mut(&mut self, exec_id: &str) -> Result<&mut Process> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        let id = self.id().to_string();
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| ShimError::NotFound(format!("exec {exec_id} not found in {id}")))
    }

    /// Releases the init: one byte into the start FIFO.
    pub fn release_init(&mut self) -> Result<()> {
        let id = self.id().to_string();
        let mut gate = self.start_gate.take().ok_or_else(|| {
            ShimError::FailedPrecondition(format!("container {id} was already started"))
        })?;
        gate.write_all(&[1])
            .map_err(|e| ShimError::Failed(format!("releasing the init of {id}: {e}")))
    }
}
