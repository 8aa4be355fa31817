//! Where the node kinds that matter sit in one rustc release's graph, as
//! calibration learned them from graphs that rustc wrote.
//!
//! It must never hold a layout that was not learned from graphs the very
//! rustc it names wrote (`calibrate`), nor guess one for another release.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Head bits after the kind that hold an edge index's byte width minus one.
pub(super) const WIDTH_BITS: u32 = 2;

/// Where the node kinds that matter sit in one rustc release's graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// The rustc version exactly as its graph header spells it
    /// (`rustc -V` without the leading `rustc `).
    pub rustc: String,
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

    /// Whether the numbers fit together as rustc's do: the kind bits are the
    /// bit length of the largest kind, leave room for an edge count, and the
    /// two path kinds are two different real kinds (kind 0 is `Null`).
    /// A layout read back from a cache file is used only if it is.
    pub fn is_consistent(&self) -> bool {
        self.node_kinds >= 2
            && self.kind_bits == bit_length(self.node_kinds - 1)
            && self.kind_bits + WIDTH_BITS < 16
            && [self.output_filenames, self.used_crate_source]
                .iter()
                .all(|&k| k > 0 && k < self.node_kinds)
            && self.output_filenames != self.used_crate_source
    }
}

/// The number of bits `n` needs: rustc's kind bits for a largest kind `n`.
pub(super) fn bit_length(n: u16) -> u32 {
    16 - n.leading_zeros()
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
