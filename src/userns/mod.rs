//! Node-chosen user namespaces (`userns.unprivileged`): every container
//! whose spec asks for no user namespace gets one, with a range of host ids
//! of its own from a configured pool ([`IdPool`]), never shared with
//! another running container and freed when it is deleted ([`IdSlots`]).

mod pool;
mod slots;

pub use pool::{IdPool, IdPoolError, IdRange, MIN_POOL_START, PVE_CT_IDS};
pub use slots::{IdSlots, SlotError};
