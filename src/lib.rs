//! cargo-seed: restore a fresh checkout's build state from the nearest
//! CI-published snapshot, soundly.
//!
//! Data flows one way: [`resolve`] picks the snapshot (checking, through
//! [`signing`], that a trusted key signed it, and through [`validate`] every
//! field), [`freshness`] decides by content which units cargo may reuse,
//! [`store`] fetches only those units' blobs, [`archive`] verifies and
//! unpacks them into a staging area, and [`restore`] swaps the result in.
//! [`publish`] is the other direction.
//!
//! The one rule every module serves: cargo must never see a unit as fresh
//! when its inputs differ from what was compiled. When in doubt a unit is left
//! out of the restore, and cargo rebuilds it (and, through its own mtime
//! checks, everything that depends on it).

pub mod archive;
pub mod cli;
pub mod cover;
pub mod depgraph;
pub mod depinfo;
pub mod error;
pub mod fingerprint;
pub mod flags;
pub mod freshness;
pub mod gc;
pub mod git;
pub mod incremental;
pub mod manifest;
pub mod pool;
pub mod publish;
pub mod relocate;
pub mod resolve;
pub mod restore;
pub mod secrets;
pub mod setup;
pub mod signing;
pub mod snapshot;
pub mod store;
pub mod toolchain;
pub mod ui;
pub mod validate;
pub mod workspace;
pub mod wrapper;

pub use error::{Error, ExitCode};
