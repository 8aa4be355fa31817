//! What a seed did (or, with `--dry-run`, would do): the numbers and the
//! reasons its summary reports.

use super::reason;

/// What a restore did (or, with `--dry-run`, would do).
#[derive(Debug)]
pub struct Outcome {
    pub commit: crate::git::CommitId,
    pub distance: usize,
    pub reused: usize,
    /// Units left for cargo to rebuild, with the reason.
    pub rebuilt: Vec<(String, reason::Reason)>,
    pub incremental: usize,
    pub fetched_bytes: u64,
    /// The part of `fetched_bytes` read from the local blob cache.
    pub cached_bytes: u64,
    /// Units kept from the existing build dir instead of fetched.
    pub kept: usize,
    pub notes: Vec<String>,
    /// The other snapshots published with this one.
    pub published_with: Vec<crate::snapshot::manifest::Sibling>,
}
