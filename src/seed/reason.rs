//! Why a unit of the snapshot is not reused here, kept as a value so it can
//! be counted, tested and emitted as JSON; the words are chosen only where
//! it is rendered (`Display`).
//!
//! A reason never makes a unit fresh: every variant means "left for cargo to
//! rebuild". Adding a variant can only make the seed more conservative.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::cargo::unit_id::UnitId;
use crate::snapshot::manifest::WithheldWhy;
use crate::snapshot::secrets::EnvMismatch;

use super::relocate::Unrelocatable;

/// Why a unit is left for cargo to rebuild.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// An input file differs from the one CI compiled.
    Input {
        path: PathBuf,
        #[serde(flatten)]
        change: Change,
    },
    /// An input larger than a seed reads to compare: more entries (for a
    /// directory) or bytes than are left of the seed's
    /// [`Budget`](crate::snapshot::inputs::Budget). It was not compared.
    InputsTooLarge { path: PathBuf },
    /// The package's files are recorded relative to a directory this
    /// checkout does not have (a repository other than this one).
    PackageOutsideRepository,
    /// A file of the package of a build script that prints no
    /// `rerun-if-changed` (cargo reruns it when any file of its package
    /// changes) differs from CI's.
    PackageFile {
        path: PathBuf,
        #[serde(flatten)]
        change: Change,
    },
    /// The file list of such a package cannot be made here as cargo makes
    /// it.
    PackageUnlisted { why: String },
    /// It depends on a unit that is rebuilt here.
    Dependency { name: String },
    /// It depends on a unit the snapshot does not hold.
    MissingDependency { id: UnitId },
    /// The snapshot says its freshness cannot be checked by content (the
    /// words are the publisher's, validated as plain text).
    Unverifiable { why: String },
    /// A path package outside the workspace: cargo hashes its absolute
    /// directory, which differs here, into the unit's hash.
    OutsidePathPackageMoved,
    /// Named like a package of this workspace, without a content check.
    UncheckedMember,
    /// Its fingerprint cannot be rewritten for this machine's paths.
    Unrelocatable { why: Unrelocatable },
    /// A watched variable has another value here than in CI.
    Env { why: EnvMismatch },
    /// It embeds `env!(var)`, a path that differs here.
    BakedPath { var: String },
    /// The publish left it out of the snapshot.
    Withheld { why: WithheldWhy },
    /// Incremental state rustc would not reuse here, so it is not fetched.
    Incremental { why: NoIncremental },
}

/// How an input file differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Changed,
    Added,
    Removed,
    /// Recorded relative to a directory this checkout does not have.
    OutsideRepository,
    Unreadable {
        error: String,
    },
    /// Its mtime moved while it was compared.
    Changing,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Input { path, change } => {
                let path = path.display();
                match change {
                    Change::Changed => write!(f, "{path} changed"),
                    Change::Added => write!(f, "{path} was added"),
                    Change::Removed => write!(f, "{path} was removed"),
                    Change::OutsideRepository => {
                        write!(f, "{path} lies outside this workspace's repository")
                    }
                    Change::Unreadable { error } => write!(f, "{path} could not be read ({error})"),
                    Change::Changing => write!(f, "{path} changed while it was compared"),
                }
            }
            Reason::PackageFile { path, change } => {
                let input = Reason::Input {
                    path: path.clone(),
                    change: change.clone(),
                };
                write!(
                    f,
                    "{input}: cargo reruns the package's build script, which prints no \
                     rerun-if-changed, when any file of the package changes"
                )
            }
            Reason::PackageUnlisted { why } => write!(
                f,
                "cargo reruns its build script when any file of the package changes \
                 (it prints no rerun-if-changed), and {why}"
            ),
            Reason::InputsTooLarge { path } => {
                let most = crate::snapshot::inputs::Budget::SEED;
                write!(
                    f,
                    "{} is too large to compare by content (a seed reads at most {} entries of \
                     one directory, {} in all, and {} of files)",
                    path.display(),
                    most.directory_entries,
                    most.entries,
                    bytesize::ByteSize(most.bytes).display().iec()
                )
            }
            Reason::PackageOutsideRepository => {
                f.write_str("its package lies outside this workspace's repository")
            }
            Reason::Dependency { name } => write!(f, "depends on {name}, which is rebuilt"),
            Reason::MissingDependency { id } => {
                write!(f, "depends on {id}, which is not in the snapshot")
            }
            Reason::Unverifiable { why } => f.write_str(why),
            Reason::OutsidePathPackageMoved => f.write_str(
                "it is a path package outside the workspace, and cargo hashes its absolute \
                 directory, which differs here, into the unit's hash",
            ),
            Reason::UncheckedMember => f.write_str(
                "it is named like a package of this workspace, and the snapshot has no content \
                 check for it",
            ),
            Reason::Unrelocatable { why } => why.fmt(f),
            Reason::Env { why } => why.fmt(f),
            Reason::BakedPath { var } => {
                write!(f, "it embeds env!(\"{var}\"), a path that differs here")
            }
            Reason::Withheld { why } => write!(f, "not in the snapshot: {why}"),
            Reason::Incremental { why } => why.fmt(f),
        }
    }
}

/// Why the snapshot's incremental state is not fetched: rustc would not
/// reuse it here, so it would be bytes for nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoIncremental {
    /// CI compiled through the wrapper; cargo here does not (or runs
    /// another wrapper, named with where it is set).
    WrapperNotHere { other: Option<(String, String)> },
    /// This machine compiles through the wrapper and CI did not.
    WrapperNotInCi,
    /// CI's state was made at another path without the wrapper.
    MovedWithoutWrapper,
    /// Both used the wrapper, with different rewrite schemes.
    OtherScheme { theirs: u32, ours: u32 },
}

const SETUP: &str = "run `cargo seed setup` once to compile through cargo-seed's rustc wrapper";

impl fmt::Display for NoIncremental {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoIncremental::WrapperNotHere { other } => {
                let here = match other {
                    Some((program, from)) => format!("runs `{program}` instead (set in {from})"),
                    None => "does not use it".to_owned(),
                };
                write!(
                    f,
                    "the snapshot was compiled through cargo-seed's rustc wrapper and cargo here \
                     {here}, so rustc would not reuse its incremental state, which is not \
                     fetched: {SETUP} as CI did"
                )
            }
            NoIncremental::WrapperNotInCi => f.write_str(
                "this machine compiles through cargo-seed's rustc wrapper and CI did not, so rustc \
                 would not reuse the snapshot's incremental state, which is not fetched \
                 (hint: RUSTC_WRAPPER=cargo-seed for CI's build)",
            ),
            NoIncremental::MovedWithoutWrapper => write!(
                f,
                "the snapshot's incremental state was made at another path without cargo-seed's \
                 rustc wrapper, so rustc would recompile those crates from scratch here; it is \
                 not fetched (hint: RUSTC_WRAPPER=cargo-seed for CI's build, and {SETUP})"
            ),
            NoIncremental::OtherScheme { theirs, ours } => write!(
                f,
                "the snapshot was compiled through rewrite scheme {theirs} of cargo-seed's rustc \
                 wrapper and this cargo-seed has scheme {ours}: its incremental state is not \
                 fetched"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_render_as_words_and_serialise_with_a_kind() {
        let r = Reason::Input {
            path: "src/lib.rs".into(),
            change: Change::Changed,
        };
        assert_eq!(r.to_string(), "src/lib.rs changed");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["kind"], "input");
        assert_eq!(json["change"], "changed");
        assert_eq!(json["path"], "src/lib.rs");
        let dep = Reason::Dependency {
            name: "lib greet".into(),
        };
        assert_eq!(dep.to_string(), "depends on lib greet, which is rebuilt");
        assert_eq!(serde_json::to_value(&dep).unwrap()["name"], "lib greet");
        let added = Reason::PackageFile {
            path: "data/new.txt".into(),
            change: Change::Added,
        };
        assert!(added.to_string().starts_with("data/new.txt was added: "));
        let json = serde_json::to_value(&added).unwrap();
        assert_eq!(json["kind"], "package_file");
        assert_eq!(json["change"], "added");
        assert_eq!(json["path"], "data/new.txt");
    }
}
