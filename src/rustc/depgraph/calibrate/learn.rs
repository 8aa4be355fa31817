//! What calibration learns from the graphs of its builds: the record layout
//! and the kinds of the two path queries. Pure: bytes in, a layout or the
//! reason there is none out.
//!
//! It must never return a layout that is not the only one consistent with
//! every graph.

use std::collections::{BTreeMap, BTreeSet};

use super::why::{Change, Inconclusive};
use crate::rustc::depgraph::graph::Body;
use crate::rustc::depgraph::graph::Fingerprint;
use crate::rustc::depgraph::layout::{bit_length, Layout, WIDTH_BITS};
use crate::rustc::depgraph::read::{numbers_after_records, parse, read, version, Kinds};

/// The `dep-graph.bin` files of calibration's builds.
pub(crate) struct Graphs {
    /// The library's.
    pub dep: Vec<u8>,
    /// The binary's, against the rlib where the library's build wrote it.
    pub app: Vec<u8>,
    /// The binary's against a copy of the rlib in another directory.
    pub moved: Vec<u8>,
    /// The binary's with another `--out-dir`.
    pub elsewhere: Vec<u8>,
}

/// Learns the layout of `graphs`, which one rustc wrote.
pub(crate) fn learn(graphs: &Graphs) -> Result<Layout, Inconclusive> {
    let all = [&graphs.app, &graphs.dep, &graphs.moved, &graphs.elsewhere];
    let damaged = |e: &dyn std::fmt::Display| Inconclusive::Damaged(e.to_string());
    let rustc = version(&graphs.app).map_err(|e| damaged(&e))?;
    for g in &all[1..] {
        let other = version(g).map_err(|e| damaged(&e))?;
        if other != rustc {
            return Err(Inconclusive::Versions(rustc, other));
        }
    }

    // Every kind width that leaves room for an edge count in a u16 head.
    let mut found: Vec<_> = (1..16 - WIDTH_BITS)
        .filter_map(|kind_bits| read_all(&all, &rustc, kind_bits))
        .collect();
    let (kinds, [app, _, moved, elsewhere]) = match found.len() {
        0 => return Err(Inconclusive::NoRecordLayout),
        1 => found.pop().expect("one"),
        _ => {
            let candidates = found.iter().map(|(k, _)| (k.kind_bits, k.node_kinds));
            return Err(Inconclusive::AmbiguousRecordLayout {
                candidates: candidates.collect(),
            });
        }
    };

    let used_crate_source = changed_kind(&app, &moved, Change::RlibMoved)?;
    let output_filenames = changed_kind(&app, &elsewhere, Change::OutDir)?;
    if used_crate_source == output_filenames {
        return Err(Inconclusive::SameKind(used_crate_source));
    }
    let layout = Layout {
        rustc,
        node_kinds: kinds.node_kinds,
        kind_bits: kinds.kind_bits,
        output_filenames,
        used_crate_source,
    };
    // The binary's path nodes must look like the ones rustc writes: one
    // output_filenames node with the empty key, one used_crate_source node
    // per crate.
    let graph = parse(&graphs.app, &layout).map_err(|e| damaged(&e))?;
    graph.path_nodes().map_err(Inconclusive::PathNodes)?;
    Ok(layout)
}

/// Every graph read with `kind_bits`, and the number of kinds the numbers
/// after its records give; `None` unless every graph parses exactly with
/// one number of kinds whose largest kind needs exactly `kind_bits` bits.
fn read_all(all: &[&Vec<u8>; 4], rustc: &str, kind_bits: u32) -> Option<(Kinds, [Body; 4])> {
    // One count per kind, then the session count.
    let kinds = numbers_after_records(all[0], rustc, kind_bits).ok()?;
    let node_kinds = u16::try_from(kinds.checked_sub(1)?).ok()?;
    if node_kinds < 2 || bit_length(node_kinds - 1) != kind_bits {
        return None;
    }
    let kinds = Kinds {
        node_kinds,
        kind_bits,
    };
    let mut bodies = all.iter().map(|g| read(g, rustc, kinds).ok());
    let bodies = [(); 4].map(|()| bodies.next().flatten());
    if bodies.iter().any(Option::is_none) {
        return None;
    }
    Some((kinds, bodies.map(|b| b.expect("checked"))))
}

/// The one node kind whose values differ between `base` and `changed`,
/// which must hold the same nodes.
fn changed_kind(base: &Body, changed: &Body, change: Change) -> Result<u16, Inconclusive> {
    let (a, b) = (values(base), values(changed));
    let same_nodes =
        a.len() == base.nodes.len() && b.len() == changed.nodes.len() && a.keys().eq(b.keys());
    if !same_nodes {
        return Err(Inconclusive::OtherNodes(change));
    }
    let kinds: BTreeSet<u16> = a
        .iter()
        .filter(|(id, value)| b[*id] != **value)
        .map(|((kind, _), _)| *kind)
        .collect();
    match kinds.iter().collect::<Vec<_>>()[..] {
        [] => Err(Inconclusive::NoKindChanged(change)),
        [&kind] => Ok(kind),
        _ => Err(Inconclusive::KindsChanged {
            change,
            kinds: kinds.into_iter().collect(),
        }),
    }
}

/// A graph's values by node kind and key.
fn values(body: &Body) -> BTreeMap<(u16, Fingerprint), Fingerprint> {
    body.nodes
        .iter()
        .map(|n| ((n.kind, n.key), n.value))
        .collect()
}
