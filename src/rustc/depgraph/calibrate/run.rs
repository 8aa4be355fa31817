//! The compiles calibration runs, in a scratch directory of its own, and
//! the graphs they write.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::learn::{learn, Graphs};
use super::why::{Build, Inconclusive};
use crate::rustc::depgraph::layout::Layout;

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
