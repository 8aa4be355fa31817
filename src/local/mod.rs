//! This repository's other checkouts on this machine: which they are and
//! where they build (`checkouts`, with `registry`, the per-user record of
//! the clones cargo-seed has seen), the git hook that seeds a new one
//! (`hook`), and the upkeep of their build dirs (`clean`).
//!
//! Nothing here judges a unit: a checkout found here is only a candidate,
//! whose units the seed checks by content like any snapshot's. And nothing
//! here writes to another checkout's build dir except `clean`, under
//! cargo's lock on each profile dir it removes from.

pub(crate) mod checkouts;
pub(crate) mod clean;
pub(crate) mod hook;
mod registry;
