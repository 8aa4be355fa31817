//! Why calibration learned no layout, and the names of its builds and
//! changes in those reasons.

use std::fmt;
use std::path::PathBuf;

use crate::rustc::depgraph::graph::WrongLayout;

/// Why calibration learned no layout. Rendered as the reason the path
/// queries of a dep graph are neither recorded nor rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inconclusive {
    #[error("cannot prepare its scratch dir: {0}")]
    Scratch(String),
    #[error("cannot run {}: {error}", .rustc.display())]
    Run { rustc: PathBuf, error: String },
    #[error("compiling the {build} failed: {error}")]
    Compile { build: Build, error: String },
    #[error("compiling the {build} wrote no finished incremental session")]
    NoSession { build: Build },
    #[error("its graphs name different rustc versions ({0:?} and {1:?})")]
    Versions(String, String),
    #[error("{0}")]
    Damaged(String),
    #[error("no record layout it knows reads its graphs to their trailer")]
    NoRecordLayout,
    #[error("{} record layouts read its graphs to their trailer (kind bits, kinds: {candidates:?})", .candidates.len())]
    AmbiguousRecordLayout { candidates: Vec<(u32, u16)> },
    #[error("{0} changed which nodes the binary's graph holds, not only their values")]
    OtherNodes(Change),
    #[error("{0} changed the value of no node kind")]
    NoKindChanged(Change),
    #[error("{change} changed the values of {} node kinds ({kinds:?}), not one", .kinds.len())]
    KindsChanged { change: Change, kinds: Vec<u16> },
    #[error(
        "moving the dependency's rlib and another --out-dir both changed kind {0}, not two kinds"
    )]
    SameKind(u16),
    #[error("the kinds it found do not hold rustc's path nodes: {0}")]
    PathNodes(WrongLayout),
}

/// One of the compiles calibration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// The library.
    Lib,
    /// The binary, against the library's rlib where it was written.
    Bin,
    /// The binary against a copy of the rlib in another directory.
    RlibMoved,
    /// The binary with another `--out-dir`.
    OutDir,
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Build::Lib => "library",
            Build::Bin => "binary",
            Build::RlibMoved => "binary against the moved rlib",
            Build::OutDir => "binary with another --out-dir",
        })
    }
}

/// What one of the binary's rebuilds changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only the place of the dependency's rlib.
    RlibMoved,
    /// Only `--out-dir`.
    OutDir,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::RlibMoved => "moving the dependency's rlib",
            Change::OutDir => "another --out-dir",
        })
    }
}
