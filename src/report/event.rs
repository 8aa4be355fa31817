//! What the commands have to say, as values: the one vocabulary shared by
//! the human renderer and the JSON lines of `--message-format json`.
//!
//! Variant and field names are a published interface (scripts parse them):
//! add fields and variants freely, never rename or remove one. Events carry
//! facts, not sentences, wherever the fact has a shape; the wording for
//! people lives in [`super::human`] only.

use serde::Serialize;

use crate::cargo::unit_id::UnitId;
use crate::git::CommitId;
use crate::rustc::incremental::Stale;
use crate::seed::outcome::StageTimes;
use crate::seed::reason::Reason;
use crate::seed::resolve::Unusable;
use crate::snapshot::manifest::UnitKind;

/// One thing a command reports. Serialised internally tagged: the variant
/// name in snake_case is the `event` field of the JSON object.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `cargo seed`: the snapshot chosen, before anything is fetched.
    Resolved {
        commit: CommitId,
        distance: usize,
        store: String,
        /// The manifest's variant key (profile, target, toolchain).
        variant: String,
        profile: String,
        target: String,
        /// What the whole snapshot weighs, packed.
        bytes: u64,
        signed_by: Option<String>,
    },
    /// Something worth knowing that changes nothing the user must do.
    Note { message: String },
    /// A seed found and undid (or finished) a swap an earlier one left.
    Recovered { message: String },
    /// Waiting for cargo's lock on a profile dir another process holds.
    Blocking { dir: String },
    /// The seed starts fetching (or keeping) the units it restores.
    FetchStarted { units: usize, bytes: u64 },
    /// One unit of a seed: put in place (`fetched`, `kept`), or left for
    /// cargo (`rebuilt`; `skipped` for incremental state not restored).
    Unit {
        id: UnitId,
        name: String,
        kind: UnitKind,
        action: UnitAction,
        /// Why it is not reused; set for `rebuilt` and `skipped`.
        reason: Option<Why>,
        /// Packed size of its blob (0 for units not in the snapshot).
        bytes: u64,
        /// Read from the local blob cache rather than the store.
        from_cache: bool,
    },
    /// Every unit to restore is in place (or the seed stopped fetching).
    FetchFinished,
    /// The local blob cache could not be used for some blobs.
    CacheUnused { reason: String },
    /// The summary of `cargo seed`.
    Seeded {
        commit: CommitId,
        distance: usize,
        dir: String,
        reused: usize,
        rebuilt: Vec<Rebuilt>,
        incremental: usize,
        fetched_bytes: u64,
        cached_bytes: u64,
        /// Copied from a donor checkout (`--from`), not fetched.
        copied_bytes: u64,
        kept: usize,
        seconds: f64,
        /// Where the time went: see [`StageTimes`] for which are wall
        /// seconds and which thread-seconds summed over the workers.
        stages: StageTimes,
    },
    /// `--dry-run`: one unit's verdict, decided before anything is fetched.
    Verdict {
        id: UnitId,
        name: String,
        kind: UnitKind,
        reuse: bool,
        reason: Option<Why>,
        bytes: u64,
    },
    /// The summary of `cargo seed --dry-run`.
    Plan {
        commit: CommitId,
        distance: usize,
        reused: usize,
        rebuilt: Vec<Rebuilt>,
        incremental: usize,
        fetch_bytes: u64,
        notes: Vec<String>,
    },
    /// Something asked for that is not done (a sibling snapshot with
    /// `--all`, a profile directory publish does not know).
    Skipped { what: String, reason: String },
    /// A seed from a remote store without signature checks.
    Unauthenticated { store: String },
    /// Something the user should look at; the command goes on.
    Warning { message: String },
    /// `cargo seed publish`: units left out because of secrets.
    Withheld {
        units: usize,
        incremental_dirs: usize,
        /// The secret-looking variables they read.
        secrets: Vec<String>,
        /// Whether some record environment values cargo-seed cannot read.
        unreadable: bool,
    },
    /// One unit left out of a publish, and why.
    WithheldUnit {
        id: UnitId,
        name: String,
        kind: UnitKind,
        reason: String,
    },
    /// How many path units went through cargo-seed's rustc wrapper.
    Wrapper {
        wrapped: usize,
        path_units: usize,
        recorded: usize,
    },
    /// A publish starts packing one snapshot's units.
    Packing {
        commit: CommitId,
        profile: String,
        units: usize,
    },
    /// A blob the store lacked was uploaded.
    Stored {
        id: UnitId,
        name: String,
        bytes: u64,
    },
    /// The summary of one snapshot published.
    Published {
        commit: CommitId,
        key: String,
        store: String,
        profile: String,
        rustc: String,
        units: usize,
        new_blobs: usize,
        new_bytes: u64,
        total_bytes: u64,
        withheld: usize,
        signed_by: Option<String>,
        seconds: f64,
    },
    /// `cargo seed list`: one snapshot reachable from HEAD.
    Snapshot {
        commit: CommitId,
        distance: usize,
        /// `None` (and the other manifest fields empty) when the manifest
        /// cannot be read; `unusable` says why.
        rustc: Option<String>,
        profile: Option<String>,
        target: Option<String>,
        bytes: Option<u64>,
        /// Unix time of the publish.
        created: Option<u64>,
        /// The rewrite scheme of cargo-seed's rustc wrapper CI compiled
        /// through, if it did.
        wrapper: Option<u32>,
        covers: Vec<String>,
        usable: bool,
        unusable: Option<Explained<Unusable>>,
        signed_by: Option<String>,
    },
    /// `cargo seed list --local`: another checkout of this repository
    /// with a build of the profile, and what `--from` it would give.
    Checkout {
        root: String,
        commit: Option<CommitId>,
        /// Commits between it and this checkout's `HEAD`, either side;
        /// `None` when this repository lacks its commit.
        distance: Option<usize>,
        /// A `git worktree` of this repository, rather than a clone.
        worktree: bool,
        /// Units a seed from it would reuse and rebuild, and the bytes it
        /// would copy; `None` when it offers nothing (`unusable` says why).
        reused: Option<usize>,
        rebuilt: Option<usize>,
        bytes: Option<u64>,
        unusable: Option<String>,
    },
    /// The summary of `cargo seed list --local`.
    ListedLocal { profile: String, checkouts: usize },
    /// The summary of `cargo seed list`.
    Listed {
        store: String,
        commits_searched: usize,
        snapshots: usize,
    },
    /// `cargo seed gc`: a snapshot removed (or, with `--dry-run`, that
    /// would be).
    SnapshotRemoved {
        key: String,
        created: u64,
        dry_run: bool,
    },
    /// The summary of `cargo seed gc`.
    Gc {
        store: String,
        dry_run: bool,
        snapshots_removed: usize,
        snapshots_kept: usize,
        blobs_removed: usize,
        bytes_removed: u64,
        blobs_in_grace: usize,
    },
    /// `cargo seed setup`: where this machine stands.
    Setup {
        status: SetupStatus,
        /// The config file (or environment variable) that sets the wrapper.
        config: Option<String>,
        /// The other wrapper chained behind cargo-seed, or put back.
        other_wrapper: Option<String>,
    },
    /// `cargo seed setup --worktrees`: the post-checkout hook.
    Hook {
        status: HookStatus,
        /// The hook's path.
        hook: String,
        /// The hook that was there before, kept and run first (or put
        /// back, with `--undo`).
        chained: Option<String>,
    },
    /// `cargo seed clean-local`: one checkout of this repository and its
    /// build dir.
    LocalCheckout {
        /// The workspace root in that checkout.
        root: String,
        head: Option<CommitId>,
        /// A worktree git lists (else a clone cargo-seed has seen).
        worktree: bool,
        exists: bool,
        /// The checkout the command runs in.
        current: bool,
        build_dir: Option<String>,
        /// What its files take on disk, each counted once; `None` when
        /// the build dir is not there.
        bytes: Option<u64>,
        /// Unix time a build last wrote in it.
        last_used: Option<u64>,
    },
    /// `cargo seed clean-local`: something removed (or, without
    /// `--apply`, that would be).
    LocalRemoval {
        path: String,
        #[serde(flatten)]
        garbage: Garbage,
        /// What removing it frees: its files no other link keeps.
        bytes: u64,
        dry_run: bool,
    },
    /// The summary of `cargo seed clean-local`.
    CleanedLocal {
        dry_run: bool,
        checkouts: usize,
        /// What every build dir listed takes, each file counted once.
        total_bytes: u64,
        build_dirs_removed: usize,
        sessions_removed: usize,
        /// Sessions rustc will not load again but that a rustc holds now.
        sessions_held: usize,
        bytes_freed: u64,
    },
    /// `cargo seed keygen`: a new key pair.
    Keygen {
        secret_key: String,
        public_key: String,
        key_id: String,
    },
    /// The command failed (JSON only: people read the error on stderr).
    Error {
        message: String,
        causes: Vec<String>,
        hint: Option<String>,
        exit_code: u8,
    },
}

/// What a seed did with one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitAction {
    /// Downloaded (or read from the local cache) and unpacked.
    Fetched,
    /// Taken from the build dir, where an earlier seed left it unchanged.
    Kept,
    /// Not restored: cargo compiles it.
    Rebuilt,
    /// Incremental state not restored: rustc would not reuse it here.
    Skipped,
}

/// A unit left for cargo to rebuild, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rebuilt {
    pub name: String,
    pub reason: Why,
}

/// A reason for people and for scripts: its words (`message`, what the
/// human output prints), and beside them its `kind` and the fields of that
/// kind (a changed input's `path` and `change`, the `name` of a rebuilt
/// dependency, …), so scripts can count and filter without parsing words.
#[derive(Debug, Clone, Serialize)]
pub struct Explained<T> {
    pub message: String,
    #[serde(flatten)]
    pub detail: T,
}

impl<T: std::fmt::Display> From<T> for Explained<T> {
    fn from(detail: T) -> Explained<T> {
        Explained {
            message: detail.to_string(),
            detail,
        }
    }
}

/// Why a unit is not reused.
pub type Why = Explained<Reason>;

/// What `cargo seed clean-local` removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Garbage {
    /// The build dir of a checkout that is gone.
    BuildDir { checkout: String },
    /// An incremental session rustc will not load again.
    Session { why: Stale },
}

/// `cargo seed setup --worktrees`'s outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookStatus {
    /// Written where there was none, or beside the hook it chains.
    Installed,
    /// Ours was there, and now seeds this workspace too.
    Updated,
    /// Ours was there, as it would be written.
    Already,
    /// `--undo` removed it.
    Removed,
    /// `--undo` found no hook of ours.
    Unchanged,
}

/// `cargo seed setup`'s outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupStatus {
    /// `--check`: cargo compiles through cargo-seed.
    Ready,
    /// The setting was there already.
    Already,
    /// The setting was written.
    Written,
    /// `--undo` removed it.
    Removed,
    /// `--undo` found nothing to remove.
    Unchanged,
}
