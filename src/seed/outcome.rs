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
    /// Bytes copied from a donor checkout (`--from`) instead of fetched.
    pub copied_bytes: u64,
    /// Units kept from the existing build dir instead of fetched.
    pub kept: usize,
    pub notes: Vec<String>,
    /// The other snapshots published with this one.
    pub published_with: Vec<crate::snapshot::manifest::Sibling>,
    /// Where the time went (zero under `--dry-run`).
    pub stages: StageTimes,
}

impl Outcome {
    /// Nothing done yet, for the snapshot `found`.
    pub(super) fn of(found: &crate::seed::resolve::Found) -> Outcome {
        Outcome {
            commit: found.commit.clone(),
            distance: found.distance,
            reused: 0,
            rebuilt: Vec::new(),
            incremental: 0,
            fetched_bytes: 0,
            cached_bytes: 0,
            copied_bytes: 0,
            kept: 0,
            notes: Vec::new(),
            published_with: found.manifest.published_with.clone(),
            stages: StageTimes::default(),
        }
    }
}

/// Where a seed's time went, in seconds. `resolve`, `judge`, `stage`,
/// `swap` and `replay` are wall time, one after the other. `fetch`,
/// `verify`, `decompress`, `write` and `relocate` happen inside `stage`,
/// interleaved per unit on every worker thread: each is the time spent in
/// it summed over the units, so thread-seconds (on two workers they may add
/// up to twice `stage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct StageTimes {
    /// Finding the snapshot: the ancestors, the manifests read and
    /// validated.
    pub resolve: f64,
    /// The verdict on every unit: its recorded inputs digested and compared.
    pub judge: f64,
    /// Fetching, verifying, unpacking and relocating the units into the
    /// staging directory, wall time.
    pub stage: f64,
    /// Thread-seconds reading blobs from the store or the local cache (and
    /// copying a store's blob into the cache).
    pub fetch: f64,
    /// Thread-seconds hashing blobs, and checking unpacked dep-info against
    /// the recorded inputs.
    pub verify: f64,
    /// Thread-seconds in zstd and tar parsing.
    pub decompress: f64,
    /// Thread-seconds creating files, directories and links and writing
    /// their bytes (units kept from the build dir are copied here).
    pub write: f64,
    /// Thread-seconds rewriting the build machine's paths in fingerprints,
    /// dep-info and build-script output.
    pub relocate: f64,
    /// Putting the staged directory in place (and a cross build's host
    /// units), wall time.
    pub swap: f64,
    /// Pointing incremental sessions at this checkout, wall time.
    pub replay: f64,
}
