//! The layouts of `dep-graph.bin` this cargo-seed has verified: where the
//! node kinds of the path queries sit in each rustc release's graph.
//!
//! It must never hold a layout that was not checked against graphs that very
//! rustc wrote (`tests/depgraph.rs`), nor guess one for another release.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where the node kinds that matter sit in one rustc release's graph.
#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    /// The rustc version exactly as its graph header spells it
    /// (`rustc -V` without the leading `rustc `).
    pub rustc: &'static str,
    /// How many node kinds rustc has (`DepKind::MAX + 1`): the trailer holds
    /// one count per kind.
    pub node_kinds: u16,
    /// Low bits of a node record's head that hold its kind: the bit length
    /// of the largest kind number.
    pub kind_bits: u32,
    /// Kind number of the `output_filenames` query.
    pub output_filenames: u16,
    /// Kind number of the `used_crate_source` query.
    pub used_crate_source: u16,
}

impl Layout {
    /// The kind number of `query` in this layout.
    pub fn kind(&self, query: PathQuery) -> u16 {
        match query {
            PathQuery::OutputFilenames => self.output_filenames,
            PathQuery::UsedCrateSource => self.used_crate_source,
        }
    }
}

/// The layouts this cargo-seed has verified, one per rustc release.
///
/// rustc 1.95.0: 327 node kinds (kind 0 is `Null`), so 9 kind bits. Kind
/// 282 is `output_filenames`, the only kind whose value changes when only
/// `--out-dir` changes; kind 262 is `used_crate_source`, the only kind whose
/// value changes when only a dependency's rlib moves; the per-kind counts
/// rustc prints under `-Z incremental-info` agree for both.
pub static LAYOUTS: &[Layout] = &[Layout {
    rustc: "1.95.0 (59807616e 2026-04-14)",
    node_kinds: 327,
    kind_bits: 9,
    output_filenames: 282,
    used_crate_source: 262,
}];

/// The verified layout of the rustc whose header says `version`.
pub fn layout(version: &str) -> Option<&'static Layout> {
    LAYOUTS.iter().find(|l| l.rustc == version)
}

/// The queries whose values are made of paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathQuery {
    /// `output_filenames(())`: the output directory and file stem.
    OutputFilenames,
    /// `used_crate_source(dep)`: where a dependency's rlib/rmeta/dylib is.
    UsedCrateSource,
}

impl PathQuery {
    /// The query's name in rustc.
    pub fn rustc_name(self) -> &'static str {
        match self {
            PathQuery::OutputFilenames => "output_filenames",
            PathQuery::UsedCrateSource => "used_crate_source",
        }
    }
}

impl fmt::Display for PathQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rustc_name())
    }
}
