//! Learning the [`Layout`] of the installed rustc's dep graphs from graphs
//! it writes: a tiny library and a binary using it are compiled in a scratch
//! directory three times (as they are, with the library's rlib copied to
//! another directory, with another `--out-dir`), and the graphs are compared.
//!
//! - The record layout: node records are read with each candidate kind
//!   width; the LEB128 numbers left before the totals are one node count per
//!   kind and the session count, which gives the number of kinds. A width is
//!   kept when every graph then parses exactly (every per-kind count matching
//!   the records) and it is the bit length of the largest kind.
//! - `used_crate_source` is the one node kind whose values differ when only
//!   the dependency's rlib moved; `output_filenames` the one that differs when
//!   only `--out-dir` changed.
//!
//! It must never guess: anything but one record layout that reads every
//! graph, and exactly one kind per change, two different kinds, whose nodes
//! look like rustc's path nodes, is [`Inconclusive`], and then no graph is
//! read or written. It never touches anything outside its scratch directory
//! and the cache of learned layouts (`cache`).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::graph::WrongLayout;
use super::layout::Layout;

mod cache;
mod learn;

pub use cache::calibrated;
pub(super) use learn::{learn, Graphs};

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

/// Learns the layout of the graphs `rustc`, run in `cwd` (where rustup's
/// overrides apply as they do for the build), writes, without any cache.
/// Takes about a second: four small compiles.
pub fn calibrate(rustc: &Path, cwd: &Path) -> Result<Layout, Inconclusive> {
    let scratch = tempfile::Builder::new()
        .prefix("cargo-seed-calibrate-")
        .tempdir()
        .map_err(scratch_error)?;
    let dir = scratch.path();
    for sub in ["out", "moved", "out-elsewhere", "inc"] {
        fs::create_dir_all(dir.join(sub)).map_err(scratch_error)?;
    }
    fs::write(dir.join("dep.rs"), DEP).map_err(scratch_error)?;
    fs::write(dir.join("app.rs"), APP).map_err(scratch_error)?;

    let dep = compile(rustc, cwd, dir, Build::Lib)?;
    fs::copy(dir.join("out/libdep.rlib"), dir.join("moved/libdep.rlib")).map_err(scratch_error)?;
    let graphs = Graphs {
        dep,
        app: compile(rustc, cwd, dir, Build::Bin)?,
        moved: compile(rustc, cwd, dir, Build::RlibMoved)?,
        elsewhere: compile(rustc, cwd, dir, Build::OutDir)?,
    };
    learn(&graphs)
}

fn scratch_error(e: io::Error) -> Inconclusive {
    Inconclusive::Scratch(e.to_string())
}

/// Runs one build in `cwd` with every path absolute in `dir`, with cargo's
/// dev debuginfo and no unstable flag; returns the graph it wrote.
fn compile(rustc: &Path, cwd: &Path, dir: &Path, build: Build) -> Result<Vec<u8>, Inconclusive> {
    let inc = dir.join("inc").join(format!("{build:?}"));
    let mut cmd = Command::new(rustc);
    cmd.current_dir(cwd)
        .args(["--edition=2021", "-Cdebuginfo=2"])
        .arg(format!("-Cincremental={}", inc.display()));
    let (src, out_dir, rlib_dir) = match build {
        Build::Lib => ("dep.rs", "out", None),
        Build::Bin => ("app.rs", "out", Some("out")),
        Build::RlibMoved => ("app.rs", "out", Some("moved")),
        Build::OutDir => ("app.rs", "out-elsewhere", Some("out")),
    };
    cmd.arg(dir.join(src))
        .arg(format!("--out-dir={}", dir.join(out_dir).display()));
    match rlib_dir {
        None => cmd.args(["--crate-type=lib", "--crate-name=dep"]),
        Some(rlib) => cmd
            .args(["--crate-type=bin", "--crate-name=app"])
            .arg(format!(
                "--extern=dep={}",
                dir.join(rlib).join("libdep.rlib").display()
            ))
            // The binary itself is not needed, only the graph.
            .arg("-Clinker=/bin/true"),
    };
    let out = cmd.output().map_err(|e| Inconclusive::Run {
        rustc: rustc.to_owned(),
        error: e.to_string(),
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().find(|l| l.contains("error")).unwrap_or("");
        return Err(Inconclusive::Compile {
            build,
            error: first.trim().to_owned(),
        });
    }
    let graph = session_graph(&inc).ok_or(Inconclusive::NoSession { build })?;
    fs::read(graph).map_err(scratch_error)
}

/// The `dep-graph.bin` of the one finished session in an incremental dir
/// that rustc wrote for one crate.
fn session_graph(inc: &Path) -> Option<PathBuf> {
    let only = |dir: &Path, keep: &dyn Fn(&str) -> bool| -> Option<PathBuf> {
        let mut found = fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter(|e| keep(&e.file_name().to_string_lossy()) && e.path().is_dir());
        let one = found.next()?.path();
        found.next().is_none().then_some(one)
    };
    let krate = only(inc, &|_| true)?;
    let session = only(&krate, &|n| n.starts_with("s-") && !n.ends_with("-working"))?;
    Some(session.join("dep-graph.bin")).filter(|g| g.is_file())
}
