//! Checks `cargo_seed::rustc::depgraph`'s calibration against graphs the
//! installed rustc writes in builds of its own: calibration concludes; every
//! session parses to its trailer with the calibrated layout; its record
//! layout gives the same per-kind node counts that rustc says it wrote, and
//! its kinds of `output_filenames` and `used_crate_source` hold as many
//! nodes as rustc says it wrote of those; they are the only nodes whose
//! values change when only the output directory, or only the place of a
//! dependency's rlib, changes; and patching them is what lets rustc reuse a
//! binary's codegen units after its dependency moved.
//!
//! rustc is run directly (no cargo) on two tiny crates, with cargo's dev
//! debuginfo level, and with `-Z incremental-info` (through
//! `RUSTC_BOOTSTRAP=1`, which calibration itself never uses) so that it
//! prints how many nodes of each kind the session wrote. Every build has the
//! same options and working directory, so all sessions share one options
//! hash.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use cargo_seed::rustc::depgraph::{self, Graph, Layout, Patched, PathQuery};

#[path = "depgraph/world.rs"]
mod world;

#[cfg(unix)]
use world::objects;
use world::{app_args, compile, copy_dir, newest_graph, rustc_program, world, World};

/// The layout calibrated against the installed rustc (uncached).
fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let started = Instant::now();
        let rustc = PathBuf::from(rustc_program());
        let here = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let layout = depgraph::calibrate(&rustc, &here).unwrap_or_else(|why| {
            panic!("calibrating {} was inconclusive: {why}", rustc.display())
        });
        eprintln!("calibrated in {:.2?}: {layout:?}", started.elapsed());
        layout
    })
}

/// Parses a graph with the calibrated layout.
fn graph(file: &Path) -> Graph {
    let bytes = fs::read(file).unwrap();
    depgraph::parse(&bytes, layout()).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Nodes whose key both graphs hold but whose values differ.
fn differing(a: &Graph, b: &Graph) -> Vec<(u16, [u8; 16])> {
    let values = |g: &Graph| -> BTreeMap<(u16, [u8; 16]), [u8; 16]> {
        g.nodes()
            .iter()
            .map(|n| ((n.kind, n.key), n.value))
            .collect()
    };
    let (a, b) = (values(a), values(b));
    assert_eq!(
        a.keys().collect::<BTreeSet<_>>(),
        b.keys().collect::<BTreeSet<_>>(),
        "the two builds have different nodes"
    );
    a.iter()
        .filter(|(k, v)| b[*k] != **v)
        .map(|(k, _)| *k)
        .collect()
}

#[test]
fn every_session_parses_to_its_trailer() {
    let w = world();
    for (name, s) in w.sessions() {
        let g = graph(&s.graph);
        assert_eq!(g.rustc(), layout().rustc, "{name}");
        assert_eq!(g.nodes().len() as u64, s.total, "{name}: node count");
        assert_eq!(g.session_count(), 1, "{name}");
        g.path_nodes().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The record layout, checked without rustc's kind numbers: read with it,
/// each session holds nodes of as many kinds as rustc names, with the same
/// counts.
#[test]
fn the_calibrated_record_layout_counts_what_rustc_says_it_wrote() {
    let w = world();
    for (name, s) in w.sessions() {
        let g = graph(&s.graph);
        let mut ours: Vec<u64> = (0..layout().node_kinds)
            .map(|kind| u64::from(g.count_of(kind)))
            .filter(|&n| n > 0)
            .collect();
        let mut said: Vec<u64> = s.counts.values().copied().filter(|&n| n > 0).collect();
        ours.sort_unstable();
        said.sort_unstable();
        assert_eq!(ours, said, "{name}: node counts per kind");
    }
}

#[test]
fn the_calibrated_kinds_count_what_rustc_says_it_wrote() {
    let w = world();
    let layout = layout();
    for (name, s) in w.sessions() {
        let g = graph(&s.graph);
        for query in [PathQuery::OutputFilenames, PathQuery::UsedCrateSource] {
            let said = s.counts.get(query.rustc_name()).copied().unwrap_or(0);
            assert_eq!(
                u64::from(g.count_of(layout.kind(query))),
                said,
                "{name}: rustc says it wrote {said} {query} nodes; kind {} holds {}",
                layout.kind(query),
                g.count_of(layout.kind(query)),
            );
        }
    }
    // Not vacuous: the binary has both, for std's crates and for `dep`.
    assert_eq!(w.app.counts.get("output_filenames"), Some(&1));
    assert!(w.app.counts.get("used_crate_source") > Some(&1));
}

/// The cache of calibrated layouts trusts a file only for the version
/// `rustc -vV` prints: it must be the one graph headers spell.
#[test]
fn graph_headers_spell_the_version_rustc_prints() {
    let out = Command::new(rustc_program()).arg("-V").output().unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed.trim().strip_prefix("rustc "),
        Some(layout().rustc.as_str())
    );
    // Through the caches (the user's, and this process's): the same layout.
    let here = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let rustc = PathBuf::from(rustc_program());
    assert_eq!(depgraph::calibrated(&rustc, &here).as_ref(), Ok(layout()));
    assert_eq!(depgraph::calibrated(&rustc, &here).as_ref(), Ok(layout()));
}

/// A cross-check for rustc 1.95.0 only: what was verified for it by hand,
/// from `-Z incremental-info` counts and rustc's query list, before
/// calibration existed. Other releases number their kinds otherwise.
#[test]
fn on_rustc_1_95_0_calibration_finds_the_hand_verified_layout() {
    let l = layout();
    if l.rustc == "1.95.0 (59807616e 2026-04-14)" {
        let found = (
            l.node_kinds,
            l.kind_bits,
            l.output_filenames,
            l.used_crate_source,
        );
        assert_eq!(found, (327, 9, 282, 262));
    }
}

#[test]
fn moving_the_dependency_changes_only_its_used_crate_source_node() {
    let w = world();
    let diff = differing(&graph(&w.app.graph), &graph(&w.moved.graph));
    // `dep`'s node; std's crates did not move.
    assert_eq!(diff.len(), 1, "differing nodes: {diff:?}");
    assert_eq!(diff[0].0, layout().used_crate_source, "{diff:?}");
}

#[test]
fn another_out_dir_changes_only_the_output_filenames_node() {
    let w = world();
    let diff = differing(&graph(&w.app.graph), &graph(&w.elsewhere.graph));
    assert_eq!(diff, [(layout().output_filenames, [0; 16])]);
}

/// A stub replay of the binary's command line: the same options, crate name
/// and out dir, a source that loads the dependency (`--extern` alone does
/// not), and a linker that writes nothing, so that the real outputs in the
/// out dir are left alone.
#[cfg(unix)]
fn stub_replay(w: &World, inc: &str, rlib_dir: &str) -> depgraph::PathValues {
    let mut args = app_args("stub.rs", "out", rlib_dir);
    args.push("-Clinker=/bin/true".into());
    let stub = compile(&w.root, inc, &args);
    graph(&stub.graph).path_values().unwrap()
}

/// CI built `app` against `out/libdep.rlib`; locally the rlib is in `moved/`.
/// CI's graph is patched with the values of a stub replay at each place.
/// rustc reuses a codegen unit by hard-linking its object file from the
/// previous session, so reuse shows as shared inodes.
#[cfg(unix)]
#[test]
fn patching_the_path_nodes_lets_rustc_reuse_the_binarys_codegen_units() {
    let w = world();
    fs::write(w.root.join("stub.rs"), "extern crate dep;\nfn main() {}\n").unwrap();
    let ci = stub_replay(w, "stub-ci", "out");
    let local = stub_replay(w, "stub-local", "moved");
    assert_eq!(
        ci,
        graph(&w.app.graph).path_values().unwrap(),
        "the stub stands for the build"
    );
    assert_eq!(local, graph(&w.moved.graph).path_values().unwrap());

    let mut reused = BTreeMap::new();
    for patch in [true, false] {
        let inc = format!("restored-{patch}");
        let dir = w.root.join("inc").join(&inc);
        copy_dir(&w.root.join("inc/app"), &dir);
        if patch {
            let done = depgraph::patch_paths(&newest_graph(&dir), layout(), &ci, &local).unwrap();
            // `dep`'s node; std's crates and the out dir did not move.
            let paths = graph(&w.app.graph).path_nodes().unwrap().len();
            assert_eq!(
                done,
                Patched {
                    patched: 1,
                    already_local: paths - 1,
                    not_ci: 0,
                    not_replayed: 0
                }
            );
        }
        let before = objects(&dir);
        compile(&w.root, &inc, &app_args("app.rs", "out", "moved"));
        let run = Command::new(w.root.join("out/app")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&run.stdout), "hi <1> 6\n");
        let after = objects(&dir);
        // The rebuild's own graph, with nodes carried over, parses too.
        assert_eq!(graph(&newest_graph(&dir)).session_count(), 2);
        assert_eq!(before.len(), after.len());
        reused.insert(patch, (after.intersection(&before).count(), after.len()));
    }
    let (patched, units) = reused[&true];
    eprintln!(
        "codegen units reused: {patched}/{units} patched, {}/{units} unpatched",
        reused[&false].0
    );
    assert_eq!(
        patched, units,
        "patched: {patched} of {units} codegen units reused"
    );
    // Without the patch the dependency's new path makes them all red: the
    // patch is what the reuse comes from.
    assert!(reused[&false].0 < units, "unpatched: {:?}", reused[&false]);
}
