//! The Ctrl-C flag of a seed: set by the handler `cli` installs, read by
//! every read from a store or the cache and by the unpacking of each entry.
//! It imports nothing, so that every stage of the seed may read it.

use std::sync::atomic::AtomicBool;

/// Set by the Ctrl-C handler; every read from a store or the cache fails
/// once it is set, and workers stop at the next entry.
pub static CANCEL: AtomicBool = AtomicBool::new(false);
