//! Verifies `cargo_seed::rustc::depgraph`'s table of layouts against graphs the
//! installed rustc writes: every session parses to its trailer; the table's
//! kind numbers hold as many nodes as rustc says it wrote of
//! `output_filenames` and `used_crate_source`; they are the nodes whose
//! values change when only the output directory, or only the place of a
//! dependency's rlib, changes; and patching them is what lets rustc reuse a
//! binary's codegen units after its dependency moved.
//!
//! rustc is run directly (no cargo) on two tiny crates, with cargo's dev
//! debuginfo level, and with `-Z incremental-info` (through
//! `RUSTC_BOOTSTRAP=1`) so that it prints how many nodes of each kind the
//! session wrote. Every build has the same options and working directory, so
//! all sessions share one options hash.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cargo_seed::rustc::depgraph::{self, Graph, Layout, Patched, PathQuery, Unreadable};

const DEP: &str = r#"
pub fn hello() -> &'static str { "hi" }
pub fn show<T: std::fmt::Display>(t: T) -> String { format!("<{t}>") }
#[inline]
pub fn twice(x: u32) -> u32 { x * 2 }
"#;

const APP: &str = r#"
mod a { pub fn f() -> String { dep::show(1u8) } }
mod b { pub fn g() -> u32 { dep::twice(3) } }
fn main() { println!("{} {} {}", dep::hello(), a::f(), b::g()); }
"#;

/// One session rustc wrote, and what it printed about it.
struct Session {
    graph: PathBuf,
    /// Node count per kind name, from `-Z incremental-info`.
    counts: BTreeMap<String, u64>,
    total: u64,
}

struct World {
    root: PathBuf,
    /// The library.
    dep: Session,
    /// The binary, against `out/libdep.rlib`.
    app: Session,
    /// The same, against a copy of the rlib in `moved/`.
    moved: Session,
    /// The same as `app`, with `--out-dir out-elsewhere`.
    elsewhere: Session,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::create)
}

impl World {
    fn create() -> World {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("depgraph-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("moved")).unwrap();
        fs::write(root.join("dep.rs"), DEP).unwrap();
        fs::write(root.join("app.rs"), APP).unwrap();

        let dep = compile(
            &root,
            "dep",
            &["--crate-type=lib", "dep.rs", "--out-dir=out"],
        );
        fs::copy(root.join("out/libdep.rlib"), root.join("moved/libdep.rlib")).unwrap();
        let app = compile(&root, "app", &app_args("app.rs", "out", "out"));
        let moved = compile(&root, "moved", &app_args("app.rs", "out", "moved"));
        let elsewhere = compile(
            &root,
            "elsewhere",
            &app_args("app.rs", "out-elsewhere", "out"),
        );
        World {
            root,
            dep,
            app,
            moved,
            elsewhere,
        }
    }

    fn sessions(&self) -> [(&str, &Session); 4] {
        [
            ("dep", &self.dep),
            ("app", &self.app),
            ("moved", &self.moved),
            ("elsewhere", &self.elsewhere),
        ]
    }
}

/// The binary's command line: `src` compiled as crate `app`.
fn app_args(src: &str, out_dir: &str, rlib_dir: &str) -> Vec<String> {
    vec![
        "--crate-type=bin".into(),
        "--crate-name=app".into(),
        src.into(),
        format!("--out-dir={out_dir}"),
        format!("--extern=dep={rlib_dir}/libdep.rlib"),
    ]
}

fn rustc_program() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

/// Runs rustc in `root` with the options every build shares and
/// `-C incremental=inc/<inc>`; returns the session it wrote.
fn compile(root: &Path, inc: &str, args: &[impl AsRef<str>]) -> Session {
    let mut cmd = Command::new(rustc_program());
    cmd.current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["--edition=2021", "-Cdebuginfo=2", "-Zincremental-info"])
        .arg(format!("-Cincremental=inc/{inc}"))
        .args(args.iter().map(AsRef::as_ref));
    let out = cmd.output().expect("run rustc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{stderr}");
    let (counts, total) = incremental_info(&stderr);
    Session {
        graph: newest_graph(&root.join("inc").join(inc)),
        counts,
        total,
    }
}

/// The `dep-graph.bin` of the newest session in an incremental directory
/// that holds one crate.
fn newest_graph(inc: &Path) -> PathBuf {
    let crates: Vec<PathBuf> = fs::read_dir(inc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    let [crate_dir] = crates.as_slice() else {
        panic!("{} holds {crates:?}, not one crate", inc.display());
    };
    let sessions = cargo_seed::rustc::incremental::sessions(crate_dir);
    sessions.last().expect("a finished session").clone()
}

/// The per-kind node counts and the total that `-Z incremental-info` prints:
/// `[incremental]  used_crate_source   |   0.9% |   20 |   0.0 |`.
fn incremental_info(stderr: &str) -> (BTreeMap<String, u64>, u64) {
    let mut counts = BTreeMap::new();
    let mut total = None;
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("[incremental]") else {
            continue;
        };
        if let Some(n) = rest.trim().strip_prefix("Total Node Count:") {
            total = n.trim().parse().ok();
        }
        let fields: Vec<&str> = rest.split('|').map(str::trim).collect();
        if let [name, _, count, ..] = fields.as_slice() {
            if let Ok(count) = count.parse() {
                counts.insert(name.to_string(), count);
            }
        }
    }
    assert!(
        !counts.is_empty(),
        "rustc printed no node counts:\n{stderr}"
    );
    (counts, total.expect("rustc printed no total node count"))
}

/// Parses a graph; a rustc missing from the table fails the test with what
/// to do about it.
fn graph(file: &Path) -> Graph {
    let bytes = fs::read(file).unwrap();
    match depgraph::parse(&bytes) {
        Ok(g) => g,
        Err(Unreadable::Unverified { rustc }) => panic!(
            "rustc {rustc:?} is not in cargo_seed::rustc::depgraph::LAYOUTS: verify the layout for it \
             (its number of node kinds and kind bits, and the kind numbers of output_filenames \
             and used_crate_source, e.g. from -Z incremental-info counts and rustc's query list), \
             add it to the table and run this test again"
        ),
        Err(e) => panic!("{}: {e}", file.display()),
    }
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

fn layout_of(g: &Graph) -> &'static Layout {
    let layout = g.layout();
    assert_eq!(depgraph::layout(g.rustc()), Some(layout));
    layout
}

#[test]
fn every_session_parses_to_its_trailer() {
    let w = world();
    for (name, s) in w.sessions() {
        let g = graph(&s.graph);
        assert_eq!(g.nodes().len() as u64, s.total, "{name}: node count");
        assert_eq!(g.session_count(), 1, "{name}");
        g.path_nodes().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_tables_kinds_count_what_rustc_says_it_wrote() {
    let w = world();
    for (name, s) in w.sessions() {
        let g = graph(&s.graph);
        let layout = layout_of(&g);
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

#[test]
fn moving_the_dependency_changes_its_used_crate_source_node() {
    let w = world();
    let (app, moved) = (graph(&w.app.graph), graph(&w.moved.graph));
    let layout = layout_of(&app);
    let diff = differing(&app, &moved);
    let sources: Vec<_> = diff
        .iter()
        .filter(|(kind, _)| *kind == layout.used_crate_source)
        .collect();
    assert_eq!(sources.len(), 1, "differing nodes: {diff:?}");
    assert!(
        diff.len() <= 3,
        "more differs than the crate's path: {diff:?}"
    );
}

#[test]
fn another_out_dir_changes_the_output_filenames_node() {
    let w = world();
    let (app, elsewhere) = (graph(&w.app.graph), graph(&w.elsewhere.graph));
    let layout = layout_of(&app);
    let diff = differing(&app, &elsewhere);
    assert!(
        diff.contains(&(layout.output_filenames, [0; 16])),
        "differing nodes: {diff:?}"
    );
    assert!(diff.len() <= 3, "more differs than the out dir: {diff:?}");
}

/// Inodes of the object files of the newest session in `inc`.
#[cfg(unix)]
fn objects(inc: &Path) -> BTreeSet<u64> {
    use std::os::unix::fs::MetadataExt;
    let session = newest_graph(inc);
    fs::read_dir(session.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .map(|p| fs::metadata(p).unwrap().ino())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
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
            let done = depgraph::patch_paths(&newest_graph(&dir), &ci, &local).unwrap();
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
