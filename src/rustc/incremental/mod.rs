//! Making rustc load a snapshot's incremental state at another workspace
//! path.
//!
//! rustc keys a crate's incremental session on a hash of its tracked
//! options, and the working directory is one of them, so a session made in
//! CI's checkout is ignored in any other. The hash is not computed here: the
//! unit's exact command line (recorded in CI by the `RUSTC_WRAPPER` mode) is
//! replayed with the local rustc, in the local working directory, on a stub
//! source file, and rustc writes a session whose header carries the hash it
//! will expect. Those 8 bytes are copied into the snapshot's sessions.
//!
//! A header whose layout or rustc version is not exactly the local one is
//! left untouched: a wrong hash only makes rustc ignore the state, but a
//! damaged file must never reach it.
//!
//! The parts: `session` (the sessions and their header), `args` (the
//! replay's command line, read as hostile), `records` (path values as a
//! manifest holds them) and `obsolete` (the sessions rustc will not load
//! again, for `cargo seed clean-local`); this module runs the replay.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::rustc::depgraph;
use crate::rustc::wrapper::{self, Invocation};

mod args;
mod libs;
mod obsolete;
mod records;
mod session;
#[cfg(test)]
mod tests;

pub use args::{Place, Unreplayable};
pub use libs::Libraries;
pub use obsolete::{obsolete_sessions, Obsolete, Sessions, Stale};
pub use records::{from_records, to_records};
pub use session::{patch, read_header, sessions, Header};

use args::{extern_crates, replay_args, without_dependencies};

/// Why a replay wrote no usable session. The text is the reason a unit's
/// incremental state is not relocated.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Args(#[from] Unreplayable),
    /// The error is part of the message, not a cause: the reason is shown
    /// on one line.
    #[error("cannot prepare {}: {error}", .dir.display())]
    Prepare { dir: PathBuf, error: io::Error },
    #[error(
        "CI ran it through rewrite scheme {0} of cargo-seed's wrapper, which this cargo-seed does not know"
    )]
    UnknownScheme(u32),
    #[error("cannot run {}: {error}", .rustc.display())]
    Run { rustc: PathBuf, error: io::Error },
    #[error("replaying its rustc command failed: {0}")]
    Failed(String),
    #[error("{0}")]
    Scratch(io::Error),
    #[error("the replay left no single incremental directory")]
    NoIncrementalDir,
    #[error("the replay wrote no session")]
    NoSession,
    #[error("the replay wrote no session header")]
    NoHeader,
    #[error("its recorded working directory {} is inside the build dir", .0.display())]
    CwdInBuildDir(PathBuf),
}

/// What a replay of a unit's command line found out.
#[derive(Debug)]
pub struct Replayed {
    /// The name of the incremental directory rustc uses for the crate.
    pub dir: String,
    /// The header rustc wrote: it expects it in a session it loads.
    pub header: Header,
    /// The values of the path-only queries in the replay's graph, or why
    /// they could not be read.
    pub paths: Result<Paths, depgraph::Refused>,
    /// The dependencies rustc was not given, because loading them runs
    /// their code (proc-macros): their path values are not known here.
    pub withheld: Withheld,
}

/// What a replay of an unsigned snapshot left out, so as to run none of
/// its code.
#[derive(Debug, Default, PartialEq, Eq)]
pub enum Withheld {
    #[default]
    Nothing,
    /// These crates, named by `--extern`: their own path values.
    Crates(Vec<String>),
    /// Every dependency: one of them uses a proc-macro, which rustc loads
    /// with it.
    All,
}

/// The path-query values of a replay's graph, with the layout they were read
/// with: calibrated against the rustc that ran the replay, the one to patch
/// the restored graphs of the same rustc with.
#[derive(Debug)]
pub struct Paths {
    pub layout: depgraph::Layout,
    pub values: depgraph::PathValues,
}

/// The rustc that cargo runs here: `$RUSTC`, else `rustc` on `PATH`.
pub fn rustc() -> PathBuf {
    std::env::var_os("RUSTC").map_or_else(|| PathBuf::from("rustc"), PathBuf::from)
}

/// Replays `inv` with rustc on a stub source file, in `place`'s working
/// directory, writing into `scratch`, and returns what rustc wrote.
///
/// Only what does not enter the options hash is changed: the input file,
/// `--out-dir`, `-C incremental` (into `scratch`), and `-L` and `--extern`
/// (mapped to this machine). When CI ran the unit through the wrapper, the
/// replay is rewritten as the wrapper rewrites it here, so the header is the
/// one the developer's build expects. The stub names every dependency with
/// `extern crate`, so that rustc loads them as the real build did and the
/// graph holds their `used_crate_source`. The graph is read with the layout
/// calibrated against `rustc` run in the same directory (once per process).
pub fn replay(
    rustc: &Path,
    inv: &Invocation,
    src_path: &Path,
    place: &Place,
    scratch: &Path,
) -> Result<Replayed, ReplayError> {
    // rustup picks a toolchain by the files in the working directory; `rustc`
    // is the toolchain's own binary, but nothing is run in the build dir.
    if place.cwd.starts_with(place.build_dir) {
        return Err(ReplayError::CwdInBuildDir(place.cwd.to_owned()));
    }
    let (out, inc) = (scratch.join("out"), scratch.join("inc"));
    let stub = scratch.join("stub.rs");
    let replay = replay_args(inv, src_path, &stub, &out, &inc, place)?;
    let mut withheld = match replay.withheld {
        names if names.is_empty() => Withheld::Nothing,
        names => Withheld::Crates(names),
    };
    fs::create_dir_all(&out)
        .and_then(|()| fs::create_dir_all(&inc))
        .map_err(|error| ReplayError::Prepare {
            dir: scratch.to_owned(),
            error,
        })?;
    let mut args = replay.args;
    if let Some(scheme) = inv.scheme {
        if scheme != wrapper::SCHEME {
            return Err(ReplayError::UnknownScheme(scheme));
        }
        args = wrapper::rewrite(&args, place.cwd, &wrapper::repository_root(place.cwd));
    }
    let run = |args: &[String]| run_stub(rustc, args, &stub, place.cwd, scratch);
    match run(&args) {
        // A dependency of a dependency is a proc-macro the mirror holds no
        // library of: the header does not depend on any dependency.
        Err(ReplayError::Failed(e))
            if place.libraries.is_metadata_only() && e.contains("E0463") =>
        {
            withheld = Withheld::All;
            fs::remove_dir_all(&inc)
                .and_then(|()| fs::create_dir_all(&inc))
                .map_err(ReplayError::Scratch)?;
            run(&without_dependencies(&args))?;
        }
        other => other?,
    }
    let dirs: Vec<PathBuf> = fs::read_dir(&inc)
        .map_err(ReplayError::Scratch)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let [dir] = dirs.as_slice() else {
        return Err(ReplayError::NoIncrementalDir);
    };
    let session = sessions(dir)
        .into_iter()
        .next()
        .ok_or(ReplayError::NoSession)?;
    let header = read_header(&session)
        .ok()
        .flatten()
        .ok_or(ReplayError::NoHeader)?;
    let name = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let paths = depgraph::calibrated(rustc, place.cwd)
        .map_err(depgraph::Refused::from)
        .and_then(|layout| {
            let values = depgraph::values(&session, &layout)?;
            Ok(Paths { layout, values })
        });
    Ok(Replayed {
        dir: name,
        header,
        paths,
        withheld,
    })
}

/// What a library's command line says of it, for standing in for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// The recorded `--out-dir`.
    pub out_dir: PathBuf,
    /// The file names cargo's build writes there: `lib<crate><extra>.rlib`
    /// and `.rmeta`.
    pub files: [String; 2],
}

/// `inv`'s library, when it compiles one crate of type `lib` or `rlib` (what
/// a dependent's `--extern` or `-L dependency=` can name as an `.rlib` or
/// `.rmeta`); `None` for anything else.
pub fn library(inv: &Invocation) -> Option<Library> {
    let mut name = None;
    let mut extra = String::new();
    let mut out_dir = None;
    let mut types = Vec::new();
    let mut it = inv.args.iter();
    while let Some(a) = it.next() {
        let (opt, inline) = args::split_option(a);
        let mut value = || inline.map(str::to_owned).or_else(|| it.next().cloned());
        match opt {
            "--crate-name" => name = value(),
            "--crate-type" => types.extend(value()),
            "--out-dir" => out_dir = value().map(PathBuf::from),
            "-C" | "--codegen" => {
                if let Some(e) = value()
                    .as_deref()
                    .and_then(|v| v.strip_prefix("extra-filename="))
                {
                    extra = e.to_owned();
                }
            }
            "--test" => return None,
            _ => {}
        }
    }
    let lib = matches!(types.as_slice(), [t] if t == "lib" || t == "rlib");
    let stem = format!("lib{}{extra}", name?);
    let plain = !stem.contains(['/', '\\']) && stem != "..";
    let out_dir = out_dir?;
    (lib && plain).then(|| Library {
        out_dir,
        files: [format!("{stem}.rlib"), format!("{stem}.rmeta")],
    })
}

/// Whether `inv` compiles a binary or a test harness: every codegen unit of
/// one reads its dependencies' paths (`used_crate_source`).
pub fn reads_dependency_paths(inv: &Invocation) -> bool {
    let mut it = inv.args.iter();
    while let Some(a) = it.next() {
        let (opt, inline) = args::split_option(a);
        match opt {
            "--test" => return true,
            "--crate-type" => {
                let v = inline.map(str::to_owned).or_else(|| it.next().cloned());
                if v.as_deref() == Some("bin") {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Compiles a stand-in for a library cargo will rebuild, so that the
/// replays of its dependents find a crate of the same name and
/// `-C metadata` (so the same crate id) where the build will write it.
///
/// `inv` is the library's own recorded command line, read as hostile like
/// a replay's, on a stub that names its dependencies (stand-ins of those
/// cargo rebuilds too, so that a crate found through another's metadata is
/// found where the build finds it). It writes into `scratch` only; returns
/// the `.rlib` and `.rmeta` written, for the caller to put in place. Native
/// libraries (`-l`) are left out: an empty crate bundles none.
pub fn stand_in(
    rustc: &Path,
    inv: &Invocation,
    src_path: &Path,
    place: &Place,
    scratch: &Path,
) -> Result<Vec<PathBuf>, ReplayError> {
    if place.cwd.starts_with(place.build_dir) {
        return Err(ReplayError::CwdInBuildDir(place.cwd.to_owned()));
    }
    let (out, inc) = (scratch.join("out"), scratch.join("inc"));
    let stub = scratch.join("stub.rs");
    let replay = replay_args(inv, src_path, &stub, &out, &inc, place)?;
    fs::create_dir_all(&out).map_err(|error| ReplayError::Prepare {
        dir: scratch.to_owned(),
        error,
    })?;
    let args = args::without_native_and_incremental(&replay.args);
    let run = |args: &[String]| run_stub(rustc, args, &stub, place.cwd, scratch);
    match run(&args) {
        Err(ReplayError::Failed(e))
            if place.libraries.is_metadata_only() && e.contains("E0463") =>
        {
            run(&without_dependencies(&args))?
        }
        other => other?,
    }
    let written = fs::read_dir(&out)
        .map_err(ReplayError::Scratch)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rlib" || e == "rmeta"))
        .collect();
    Ok(written)
}

/// Compiles `stub`, which names every `--extern` of `args` with `extern
/// crate` (so that rustc loads them as the real build did and the graph
/// holds their `used_crate_source`), with `rustc` in `cwd` and no
/// environment but `PATH` and `TMPDIR`: nothing of the developer's
/// (a token, a rustup override) reaches it.
fn run_stub(
    rustc: &Path,
    args: &[String],
    stub: &Path,
    cwd: &Path,
    scratch: &Path,
) -> Result<(), ReplayError> {
    let mut source = String::from("#![allow(dead_code, unused_extern_crates)]\n");
    for name in extern_crates(args) {
        source.push_str(&format!("extern crate {name};\n"));
    }
    source.push_str("fn main() {}\n");
    fs::write(stub, source).map_err(|error| ReplayError::Prepare {
        dir: scratch.to_owned(),
        error,
    })?;
    let mut cmd = Command::new(rustc);
    cmd.args(args).current_dir(cwd).env_clear();
    for var in ["PATH", "TMPDIR"] {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    let result = cmd.output().map_err(|error| ReplayError::Run {
        rustc: rustc.to_owned(),
        error,
    })?;
    if !result.status.success() {
        let err = String::from_utf8_lossy(&result.stderr);
        let first = err
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or("")
            .trim();
        return Err(ReplayError::Failed(first.to_owned()));
    }
    Ok(())
}
