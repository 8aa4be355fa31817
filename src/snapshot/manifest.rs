//! What a snapshot is: the manifest (a versioned JSON document) that names
//! every blob and records what is needed to decide freshness by content.
//!
//! The manifest is the only place that says which build a blob belongs to;
//! it is written to the store last, after every blob it names.

use crate::cargo::unit_id::UnitId;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::rustc::toolchain::Toolchain;

/// Bumped on any change a reader of the previous version would misread.
///
/// 4: `check` may be `package-files`, which a reader of schema 3 cannot
/// parse; such a reader skips the snapshot instead of failing on it.
///
/// 3: `layout`: a snapshot of cargo's per-unit build-dir layout, whose
/// units a reader of schema 2 would look for in the wrong places.
///
/// 2: inputs relative to mapped roots only; fingerprint records hold no values of watched environment variables
/// (`val` is `null` in `fields`, the digest is in `env`), and units that read
/// a secret are listed in `withheld` instead of `units`.
pub(crate) const SCHEMA: u32 = 4;

/// The schemas this cargo-seed reads: 2 is 3 without `layout` (flat), 3
/// is 4 without `package-files`.
pub(crate) const READS: std::ops::RangeInclusive<u32> = 2..=SCHEMA;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub schema: u32,
    pub commit: String,
    /// Seconds since the Unix epoch when the snapshot was published.
    pub created: u64,
    pub toolchain: Toolchain,
    pub target: String,
    /// Built with `--target` (even the host's triple, which cargo then
    /// builds as a cross target): the units live in
    /// `<build dir>/<target>/<profile dir>`, except those marked `host`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cross: bool,
    pub profile: String,
    /// The directory under the build dir that the units live in (`debug`).
    pub profile_dir: String,
    /// How cargo laid the units out in it; absent (schema 2): the flat
    /// layout, the only one cargo wrote then.
    #[serde(default)]
    pub layout: crate::cargo::layout::Layout,
    /// The cargo commands whose units the snapshot holds (`build --profile
    /// dev`, `test --no-run`…), for people: what a seed makes fresh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<String>,
    /// The other snapshots published with this one (other profiles, cross
    /// targets), so that `cargo seed --all` finds them where a store
    /// cannot list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published_with: Vec<Sibling>,
    /// Where the build ran: workspace root, `CARGO_HOME`, build dir.
    pub workspace_root: PathBuf,
    pub cargo_home: PathBuf,
    pub build_dir: PathBuf,
    /// The repository's top level (`git rev-parse --show-toplevel`), when it
    /// is not the workspace root: path packages outside the workspace live
    /// below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_root: Option<PathBuf>,
    /// Whether the publishing checkout had uncommitted changes (freshness is
    /// decided by content either way; this is for `list`).
    pub dirty: bool,
    /// The C library of the build machine (`glibc 2.36`), when known: reused
    /// binaries and build-script probes depend on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libc: Option<String>,
    /// Some unit was compiled with `-C target-cpu=native`: its code may use
    /// instructions this CPU lacks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub native_cpu: bool,
    /// The rewrite scheme of cargo-seed's rustc wrapper the workspace's
    /// crates were compiled through (see [`crate::rustc::wrapper`]); `None`: without
    /// it. Incremental state is only worth restoring where this machine
    /// builds the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rustc_wrapper: Option<u32>,
    /// The rustflags and linker every unit was compiled with, when
    /// cargo-seed could read them as cargo did (see [`crate::cargo::flags`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_flags: Option<crate::cargo::flags::BuildFlags>,
    pub units: Vec<Unit>,
    /// Units of the build that were not published because they read (or
    /// depend on a unit that read) a secret-looking variable set in CI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<Withheld>,
}

/// A snapshot published together with another: its profile, and its
/// target when it is a cross build's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Sibling {
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// One build unit (or one incremental directory) and its blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Unit {
    /// `<package>-<hash>` as in `.fingerprint/`, or `incremental/<dir>`.
    pub id: UnitId,
    /// For people: `lib greet`, `run-build-script gen`, `incremental greet`.
    pub name: String,
    pub kind: UnitKind,
    /// In a cross build's snapshot, a unit built for the host (a build
    /// script, a proc-macro, their dependencies): it lives in
    /// `<build dir>/<profile dir>`, beside the host build's units.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host: bool,
    /// Cargo's package id, for compile and build-script units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
    pub blob: Blob,
    /// Ids of the units this one's fingerprint depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<UnitId>,
    /// How cargo decides whether the unit's sources changed.
    pub check: Check,
    /// Environment variables the crate read with `env!` whose value was an
    /// absolute path of the build machine. Cargo does not track the ones it
    /// sets itself (`CARGO_MANIFEST_DIR`…), so a moved checkout would reuse
    /// code that embeds the old path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baked: Vec<BakedPath>,
    /// Cargo's fingerprint of the unit, for rewriting it at other paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<FingerprintRecord>,
    /// The target's source file on the build machine (compile units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_path: Option<PathBuf>,
    /// rustc's exact command line, when CI built through
    /// `RUSTC_WRAPPER=cargo-seed`: what relocating incremental state needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rustc: Option<crate::rustc::wrapper::Invocation>,
    /// The values of the path-only queries in CI's replay of `rustc`: a
    /// restored session's node is rewritten for this machine only where it
    /// holds exactly this value (see [`crate::rustc::depgraph`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_values: Vec<PathValue>,
}

/// One path-only query's value fingerprint, as CI's replay computed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathValue {
    pub query: crate::rustc::depgraph::PathQuery,
    /// The node's key fingerprint, 32 lowercase hex digits.
    pub key: String,
    /// Its value fingerprint, 32 lowercase hex digits.
    pub value: String,
}

/// A unit's fingerprint files as cargo wrote them, except that in a
/// manifest the value of every watched environment variable is replaced by
/// `null` in `fields` and recorded in `env` as a digest (see [`crate::snapshot::secrets`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FingerprintRecord {
    /// `lib-greet`: the hash file's name (the JSON is `<file>.json`).
    pub file: String,
    /// The hash file's text.
    pub hash: String,
    /// The JSON file's text.
    pub fields: String,
    /// The `rerun-if-env-changed` variables in `fields`, in order, each
    /// without its value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<WatchedEnv>,
}

/// A variable a build script watches, as a manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WatchedEnv {
    pub var: String,
    pub value: EnvValue,
}

/// What a manifest says about CI's value of a watched variable: never the
/// value itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EnvValue {
    /// Not set in CI.
    Unset,
    /// The sha256 of the value, in hex.
    Sha256(String),
    /// Set in CI under a secret-looking name: not even a digest is kept.
    Withheld,
}

/// A unit of the build that the snapshot does not hold, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withheld {
    pub id: UnitId,
    pub name: String,
    pub kind: UnitKind,
    pub why: WithheldWhy,
}

/// Why a unit was withheld.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum WithheldWhy {
    /// It read or watched this secret-looking variable, which was set in CI:
    /// its files record or embed the value.
    Secret { var: String },
    /// It depends on a withheld unit (named), which may have passed the
    /// value on (a build script's `cargo:rustc-env`, a generated file).
    Dependency { on: String, var: Option<String> },
    /// rustc's incremental state of a withheld unit's crate.
    Incremental { of: String, var: Option<String> },
    /// Its fingerprint or dep-info has a format cargo-seed does not know, so
    /// which values it records cannot be told.
    Unreadable,
}

impl WithheldWhy {
    /// The secret the withholding goes back to, when there is one.
    pub fn var(&self) -> Option<&str> {
        match self {
            WithheldWhy::Secret { var } => Some(var),
            WithheldWhy::Dependency { var, .. } | WithheldWhy::Incremental { var, .. } => {
                var.as_deref()
            }
            WithheldWhy::Unreadable => None,
        }
    }
}

impl std::fmt::Display for WithheldWhy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let because = |var: &Option<String>| match var {
            Some(var) => format!(" (because of {var})"),
            None => String::new(),
        };
        match self {
            WithheldWhy::Secret { var } => {
                write!(f, "it reads {var}, a secret-looking variable set in CI")
            }
            WithheldWhy::Dependency { on, var } => {
                write!(f, "it depends on {on}, which was withheld{}", because(var))
            }
            WithheldWhy::Incremental { of, var } => {
                write!(f, "state of {of}, which was withheld{}", because(var))
            }
            WithheldWhy::Unreadable => {
                f.write_str("cargo-seed cannot read which environment values its files record")
            }
        }
    }
}

/// An `env!` value that embeds one of the build machine's directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BakedPath {
    pub var: String,
    pub under: BakedRoot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum BakedRoot {
    Workspace,
    CargoHome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnitKind {
    /// rustc compiling a target (lib, bin, proc-macro, build script…).
    Compile,
    /// Running a build script.
    RunBuildScript,
    /// rustc's incremental state for one crate; rustc validates it itself.
    Incremental,
}

/// What makes a unit fresh besides its fingerprint hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Check {
    /// Nothing on the file system: registry and git units (cargo compares
    /// their version inside the hash) and incremental state.
    None,
    /// Cargo compares mtimes of these files; cargo-seed compares contents.
    Inputs(Inputs),
    /// The run of a path package's build script that prints no
    /// `rerun-if-changed`: cargo reruns it when the newest mtime among the
    /// package's files changes, cargo-seed when any of them differs by
    /// content (see [`crate::snapshot::package`]).
    PackageFiles(PackageFiles),
    /// A path unit whose freshness cannot be decided by content here, and
    /// why: it is never restored.
    Unverifiable { reason: String },
}

/// Every file of a package's list as cargo makes it, with its digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PackageFiles {
    /// What `package_root` is relative to, as in [`Inputs`].
    #[serde(
        default = "Base::workspace",
        skip_serializing_if = "Base::is_workspace"
    )]
    pub base: Base,
    /// The package root, relative to `base` (empty for `base` itself).
    pub package_root: PathBuf,
    /// Sorted by path, each once.
    pub files: Vec<PackageFile>,
}

/// One file of a package, relative to its root, and the sha256 of its
/// contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PackageFile {
    pub path: PathBuf,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Inputs {
    /// What `package_root` is relative to: the workspace, the repository
    /// (a path dependency outside the workspace) or `CARGO_HOME`.
    #[serde(
        default = "Base::workspace",
        skip_serializing_if = "Base::is_workspace"
    )]
    pub base: Base,
    /// The package root, relative to `base` (empty for `base` itself).
    pub package_root: PathBuf,
    pub files: Vec<Input>,
}

/// One file cargo tracks for a unit, as a path relative to one of the
/// directories the seed maps to this machine. Never absolute: a manifest
/// must not make the seed read a file outside them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Input {
    /// What `path` is relative to.
    #[serde(default, skip_serializing_if = "Base::is_package")]
    pub base: Base,
    pub path: PathBuf,
    /// sha256 of the contents (of every file below it, for a directory);
    /// `None` when the path did not exist.
    pub sha256: Option<String>,
}

/// A directory of the build machine that has a counterpart here.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Base {
    /// The unit's package root.
    #[default]
    Package,
    /// The build dir (the directory holding `debug/`): a file cargo found
    /// there that no dependency of the unit produced.
    BuildDir,
    /// The workspace root.
    Workspace,
    /// The top of the git work tree that holds the workspace.
    Repository,
    /// `CARGO_HOME` (registry and git sources).
    CargoHome,
}

impl Base {
    fn is_package(&self) -> bool {
        *self == Base::Package
    }
    fn workspace() -> Base {
        Base::Workspace
    }
    fn is_workspace(&self) -> bool {
        *self == Base::Workspace
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// sha256 of the compressed bytes: the store key and the check on fetch.
    pub sha256: String,
    /// Compressed size.
    pub size: u64,
    /// Length of the tar stream inside: unpacking more is an error.
    pub unpacked: u64,
}

impl Manifest {
    /// The name of this manifest under `snapshots/<commit>/`.
    pub fn variant(&self) -> String {
        variant(&self.profile, &self.target, self.cross, &self.toolchain)
    }

    pub(crate) fn total_size(&self) -> u64 {
        self.units.iter().map(|u| u.blob.size).sum()
    }
}

/// The name of a manifest under `snapshots/<commit>/`: what a seed asks
/// a store for when it cannot list.
pub fn variant(profile: &str, target: &str, cross: bool, toolchain: &Toolchain) -> String {
    let cross = if cross { "-cross" } else { "" };
    format!("{profile}-{target}{cross}-{}", toolchain.key())
}

#[cfg(test)]
mod tests;
