//! cargo-seed: restore a fresh checkout's build state from the nearest
//! CI-published snapshot, soundly.
//!
//! Two pipelines through shared parts (see ARCHITECTURE.md). A seed:
//! `seed::resolve` picks the snapshot (checking, through
//! [`signing`](snapshot::signing), that a trusted key signed it, and through
//! `snapshot::validate` every field), `seed::freshness` decides by content
//! which units cargo may reuse, before anything is fetched, [`store`] fetches
//! only those units' blobs, `snapshot::archive` verifies and unpacks them
//! into a staging area, `seed::relocate` rewrites paths for this machine, and
//! the staging area is swapped in. [`publish`] is the other direction.
//!
//! The one rule every module serves: cargo must never see a unit as fresh
//! when its inputs differ from what was compiled. When in doubt a unit is left
//! out of the restore, and cargo rebuilds it (and, through its own mtime
//! checks, everything that depends on it).

pub mod cargo;
pub mod cli;
pub mod digest;
mod error;
pub(crate) mod gc;
pub(crate) mod git;
pub(crate) mod local;
pub(crate) mod pool;
pub mod publish;
pub mod report;
pub mod rustc;
pub(crate) mod seed;
pub(crate) mod setup;
pub mod snapshot;
pub mod store;

pub use error::{Error, ExitCode};
#[doc(hidden)]
pub use seed::verdicts_of;
