//! What a parsed dep graph holds: its nodes, its counts, and the nodes of
//! the path queries, checked against what rustc writes for them.
//!
//! It must never be built but by the parser (`read`), so that a [`Graph`]
//! always stands for a file that parsed exactly; it never touches a file.

use std::collections::{BTreeMap, BTreeSet};

use super::layout::{Layout, PathQuery};

/// A 16-byte fingerprint as rustc stores it (two little-endian u64s).
pub type Fingerprint = [u8; 16];

/// The value fingerprints of one graph's path nodes, by query and key.
pub type PathValues = BTreeMap<(PathQuery, Fingerprint), Fingerprint>;

/// One node of a graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: u16,
    /// The node's index, which edges refer to.
    pub index: u32,
    /// Fingerprint of the query's key: the same for the same key at any path.
    pub key: Fingerprint,
    /// Fingerprint of the query's value in the session that wrote the graph.
    pub value: Fingerprint,
    /// Where `value` is in the file.
    pub value_offset: usize,
}

/// A node of one of the [`PathQuery`] kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathNode {
    pub query: PathQuery,
    pub key: Fingerprint,
    pub value: Fingerprint,
    /// Where `value` is in the file.
    pub offset: u64,
}

/// A `dep-graph.bin` that parsed exactly to its trailer, with the layout
/// it was read with.
#[derive(Debug)]
pub struct Graph {
    pub(super) body: Body,
    pub(super) layout: Layout,
}

/// Why a parsed graph's path nodes do not look like the ones rustc writes:
/// a sign that its layout's kind numbers are wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrongLayout {
    #[error(
        "its dep graph has {count} nodes of kind {kind}, calibrated as output_filenames, \
         where rustc writes at most one"
    )]
    ManyOutputFilenames { kind: u16, count: usize },
    #[error(
        "its dep graph has an output_filenames node (kind {kind}) with a key, \
         where rustc's key for it is empty"
    )]
    OutputFilenamesKey { kind: u16 },
    #[error(
        "its dep graph repeats a key among the nodes of kind {kind}, calibrated as \
         used_crate_source, where rustc writes one per crate"
    )]
    RepeatedCrateSource { kind: u16 },
}

impl Graph {
    /// The rustc version in the header.
    pub fn rustc(&self) -> &str {
        &self.body.rustc
    }

    /// The calibrated layout the graph was read with.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The hash of the tracked options of the session that wrote the graph.
    pub fn options_hash(&self) -> [u8; 8] {
        self.body.options_hash
    }

    /// The nodes, in file order.
    pub fn nodes(&self) -> &[Node] {
        &self.body.nodes
    }

    /// How many nodes of `kind` the graph holds (0 for a kind past the last).
    pub fn count_of(&self, kind: u16) -> u32 {
        self.body
            .kind_counts
            .get(kind as usize)
            .copied()
            .unwrap_or(0)
    }

    /// One more than the largest node index rustc allocated.
    #[cfg(test)]
    pub(crate) fn node_max(&self) -> u64 {
        self.body.node_max
    }

    #[cfg(test)]
    pub(crate) fn edge_count(&self) -> u64 {
        self.body.edge_count
    }

    /// How many sessions have written this graph in turn.
    pub fn session_count(&self) -> u64 {
        self.body.session_count
    }

    /// The nodes of the path queries, checked against what rustc writes for
    /// them: at most one `output_filenames` node, with the empty key, and
    /// one `used_crate_source` node per crate. Anything else means the
    /// layout's kind numbers are wrong, and nothing may be written.
    pub fn path_nodes(&self) -> Result<Vec<PathNode>, WrongLayout> {
        let layout = &self.layout;
        let mut out = Vec::new();
        let mut crates = BTreeSet::new();
        for node in &self.body.nodes {
            let query = if node.kind == layout.output_filenames {
                if node.key != [0; 16] {
                    return Err(WrongLayout::OutputFilenamesKey { kind: node.kind });
                }
                PathQuery::OutputFilenames
            } else if node.kind == layout.used_crate_source {
                if !crates.insert(node.key) {
                    return Err(WrongLayout::RepeatedCrateSource { kind: node.kind });
                }
                PathQuery::UsedCrateSource
            } else {
                continue;
            };
            out.push(PathNode {
                query,
                key: node.key,
                value: node.value,
                offset: node.value_offset as u64,
            });
        }
        let count = self.count_of(layout.output_filenames) as usize;
        if count > 1 {
            return Err(WrongLayout::ManyOutputFilenames {
                kind: layout.output_filenames,
                count,
            });
        }
        Ok(out)
    }

    /// The value of every path node, by query and key.
    pub fn path_values(&self) -> Result<PathValues, WrongLayout> {
        Ok(self
            .path_nodes()?
            .into_iter()
            .map(|n| ((n.query, n.key), n.value))
            .collect())
    }
}

/// What a graph that parsed exactly holds.
#[derive(Debug)]
pub(super) struct Body {
    pub(super) rustc: String,
    pub(super) options_hash: [u8; 8],
    pub(super) nodes: Vec<Node>,
    pub(super) kind_counts: Vec<u32>,
    /// Kept for the tests, which check the reader against rustc's totals.
    #[cfg(test)]
    pub(super) node_max: u64,
    #[cfg(test)]
    pub(super) edge_count: u64,
    pub(super) session_count: u64,
}
