//! `RUSTC_WRAPPER=cargo-seed`: how rustc is run so that its incremental
//! state can be reused at another checkout path.
//!
//! rustc's incremental state depends on where the checkout is: a source
//! file's name carries the working directory, so every span hash differs at
//! another path, and the output directory is read by every codegen unit.
//! For every unit compiled with `-C incremental` (cargo's path packages),
//! the wrapper therefore
//! - remaps the repository root (the nearest directory above the working
//!   directory that holds `.git`, else the working directory) to `.`, and
//! - makes `--out-dir`, `-C incremental`, `-L` and `--extern` paths under that
//!   root relative to the working directory,
//!
//! on CI and on every developer machine alike: then the query graphs of the
//! same source are equal at both paths. Every other invocation (registry
//! crates, `rustc -vV`, `--print`) runs unchanged. Cargo does not hash
//! `RUSTC_WRAPPER` (or `build.rustc-wrapper`) into its fingerprints or into
//! `-C metadata`, and it reads relative dep-info paths correctly.
//!
//! The wrapper also records each incremental unit's command line as cargo
//! made it (before the rewrite), so that `cargo seed publish` can ship it and
//! a seed elsewhere can replay it. Recording never fails the build.
//!
//! Another wrapper (sccache, say) is chained by naming it in
//! `CARGO_SEED_RUSTC_WRAPPER`: it then runs rustc with the rewritten
//! arguments.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode};

use serde::{Deserialize, Serialize};

use crate::cargo::layout::Layout;

/// Where records go, relative to the profile dir.
pub(crate) const RECORDS: &str = ".cargo-seed-rustc";

/// The version of the rewrite. CI and the developer must run the same one:
/// the remap is part of rustc's options and of every span, so a snapshot
/// built with another (or none) cannot be reused. Bump it whenever
/// [`rewrite`] changes what rustc sees.
pub(crate) const SCHEME: u32 = 1;

/// Names the wrapper to chain to (the program run in rustc's place).
pub(crate) const CHAIN_VAR: &str = "CARGO_SEED_RUSTC_WRAPPER";

/// What `--remap-path-prefix` maps the repository root to. Relative, so that
/// panic messages and debuggers name files relative to the repository root.
pub(crate) const VIRTUAL_ROOT: &str = ".";

/// Set by `cargo seed --from` for the cargo it runs over a sibling
/// checkout: the wrapper then compiles nothing. It answers cargo's own
/// questions to rustc (`-vV`, `--print`) and fails every compilation, so
/// that cargo says which units are fresh without rebuilding a stale one.
pub(crate) const LOOK_ONLY_VAR: &str = "CARGO_SEED_LOOK_ONLY";

/// One rustc invocation, as cargo made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    pub cwd: PathBuf,
    /// The arguments after the rustc path, before the wrapper's rewrite.
    pub args: Vec<String>,
    /// The [`SCHEME`] of the rewrite rustc ran with; `None` when it ran
    /// the command line unchanged (a cargo-seed before the remap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<u32>,
}

/// Whether cargo-seed was started as a rustc wrapper: cargo passes the path
/// of rustc (or of clippy-driver) first.
pub(crate) fn is_wrapper_call(first: &OsString) -> bool {
    let stem = Path::new(first)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem == "rustc" || stem.starts_with("rustc-") || stem == "clippy-driver"
}

pub fn run(rustc: OsString, args: Vec<OsString>) -> ExitCode {
    if std::env::var_os(LOOK_ONLY_VAR).is_some() && !is_question(&args) {
        eprintln!("cargo-seed: not compiling: this cargo only looks at which units are fresh");
        return ExitCode::FAILURE;
    }
    let cwd = std::env::current_dir().ok();
    let utf8: Option<Vec<String>> = args.iter().map(|a| a.to_str().map(str::to_owned)).collect();
    // Only rustc itself is rewritten: behind clippy-driver (cargo passes
    // rustc's path as its first argument) the command is left as it is.
    let plain_rustc = Path::new(&rustc)
        .file_stem()
        .is_none_or(|s| s != "clippy-driver");
    let rewritten = match (&cwd, &utf8) {
        (Some(cwd), Some(args)) if plain_rustc && codegen_opt(args, "incremental").is_some() => {
            record(cwd, args);
            Some(rewrite(args, cwd, &repository_root(cwd)))
        }
        _ => None,
    };
    let mut cmd = match chained() {
        Some(next) => {
            let mut c = Command::new(next);
            c.arg(&rustc);
            c
        }
        None => Command::new(&rustc),
    };
    match rewritten {
        Some(args) => cmd.args(args),
        None => cmd.args(&args),
    };
    exec(cmd, &rustc)
}

/// Whether rustc is asked about itself rather than to compile: cargo's
/// questions before a build, `rustc -vV` and the target's file names and
/// cfg (`rustc - --crate-name ___ --print=…`, reading an empty crate from
/// stdin). A `--print` alone is not enough: `RUSTFLAGS` may add one to
/// every compilation.
fn is_question(args: &[OsString]) -> bool {
    let has = |s: &str| args.iter().any(|a| a == s);
    let version = has("-vV") || has("-V") || has("--version");
    let target_info = has("-")
        && args
            .windows(2)
            .any(|w| w[0] == "--crate-name" && w[1] == "___");
    version || target_info
}

/// The wrapper named in [`CHAIN_VAR`], unless it is empty or cargo-seed.
fn chained() -> Option<OsString> {
    let next = std::env::var_os(CHAIN_VAR).filter(|v| !v.is_empty())?;
    let is_self = Path::new(&next)
        .file_stem()
        .is_some_and(|s| s == "cargo-seed");
    (!is_self).then_some(next)
}

/// Replaces this process with `cmd` where the platform allows it (signals
/// and the exit status are then rustc's own, and no process waits in
/// between); elsewhere runs it and passes its status on.
fn exec(mut cmd: Command, rustc: &OsStr) -> ExitCode {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = cmd.exec();
        eprintln!("error: cargo-seed (as RUSTC_WRAPPER) failed to run {rustc:?}: {e}");
        ExitCode::FAILURE
    }
    #[cfg(not(unix))]
    {
        match cmd.status() {
            Ok(status) => match status.code() {
                Some(0) => ExitCode::SUCCESS,
                Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                None => ExitCode::FAILURE,
            },
            Err(e) => {
                eprintln!("error: cargo-seed (as RUSTC_WRAPPER) failed to run {rustc:?}: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

/// The directory the remap names `.`: the nearest one at or above `cwd`
/// that holds `.git` (a directory, or the file of a worktree), else `cwd`.
/// The same on CI and here as long as the checkout's layout is.
pub(crate) fn repository_root(cwd: &Path) -> PathBuf {
    cwd.ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or(cwd)
        .to_owned()
}

/// `args` as the wrapper passes them to rustc for an incremental unit run
/// in `cwd` inside the repository at `root`: the remap first (a later,
/// user-given one still wins, as rustc applies the last match), and the
/// paths that cargo makes absolute relative to `cwd`.
pub fn rewrite(args: &[String], cwd: &Path, root: &Path) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 1);
    out.push(format!(
        "--remap-path-prefix={}={VIRTUAL_ROOT}",
        root.display()
    ));
    let rel = |p: &str| relative_under(Path::new(p), cwd, root);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        // The value of an option, as it was glued or as the next argument.
        let (opt, glued) = match a.as_str() {
            "--out-dir" | "-L" | "--extern" | "-C" => (a.as_str(), None),
            _ if a.starts_with("--out-dir=") => ("--out-dir", Some(&a["--out-dir=".len()..])),
            _ if a.starts_with("--extern=") => ("--extern", Some(&a["--extern=".len()..])),
            _ if a.starts_with("-L") => ("-L", Some(&a[2..])),
            _ if a.starts_with("-C") => ("-C", Some(&a[2..])),
            _ => {
                out.push(a.clone());
                continue;
            }
        };
        let value = match glued {
            Some(v) => v.to_owned(),
            None => match it.next() {
                Some(v) => v.clone(),
                None => {
                    out.push(a.clone());
                    continue;
                }
            },
        };
        let new = match opt {
            "--out-dir" => rel(&value).unwrap_or(value),
            // `-L [kind=]path`
            "-L" => match value.split_once('=') {
                Some((kind, p)) if !kind.contains('/') => {
                    rel(p).map_or(value.clone(), |r| format!("{kind}={r}"))
                }
                _ => rel(&value).unwrap_or(value),
            },
            // `--extern [opts:]name=path`
            "--extern" => match value.split_once('=') {
                Some((name, p)) => rel(p).map_or(value.clone(), |r| format!("{name}={r}")),
                None => value,
            },
            _ => match value.strip_prefix("incremental=") {
                Some(p) => rel(p).map_or(value.clone(), |r| format!("incremental={r}")),
                None => value,
            },
        };
        match glued {
            Some(_) if opt == "-L" || opt == "-C" => out.push(format!("{opt}{new}")),
            Some(_) => out.push(format!("{opt}={new}")),
            None => out.extend([opt.to_owned(), new]),
        }
    }
    out
}

/// `path` relative to `cwd` when it is an absolute, plain path under `root`
/// (and `cwd` is too); `None` leaves it as it is.
fn relative_under(path: &Path, cwd: &Path, root: &Path) -> Option<String> {
    let plain = |p: &Path| {
        p.is_absolute()
            && p.components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    };
    if !plain(path) || !plain(cwd) || !path.starts_with(root) || !cwd.starts_with(root) {
        return None;
    }
    let common = path
        .components()
        .zip(cwd.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = PathBuf::new();
    for _ in cwd.components().skip(common) {
        rel.push("..");
    }
    for c in path.components().skip(common) {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel.to_str().map(str::to_owned)
}

/// `-C name=value` or `-Cname=value`.
pub(crate) fn codegen_opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let opt = if a == "-C" {
            it.next().map(String::as_str)
        } else {
            a.strip_prefix("-C")
        };
        if let Some(v) = opt.and_then(|o| o.strip_prefix(&prefix)) {
            return Some(v);
        }
    }
    None
}

/// Writes `<profile dir>/.cargo-seed-rustc/<hash>.json` for the unit
/// `<package>-<hash>`; any failure is ignored.
fn record(cwd: &Path, args: &[String]) {
    let Some(incremental) = codegen_opt(args, "incremental") else {
        return;
    };
    let Some(profile_dir) = cwd.join(incremental).parent().map(Path::to_owned) else {
        return;
    };
    let Some(hash) = unit_hash(args, cwd, &profile_dir) else {
        return;
    };
    let dir = profile_dir.join(RECORDS);
    let text = serde_json::to_vec(&Invocation {
        cwd: cwd.to_owned(),
        args: args.to_vec(),
        scheme: Some(SCHEME),
    })
    .expect("serialises");
    // Renamed into place whole, so a reader never sees half a record; a
    // failure only loses the record (the build goes on).
    let _ = fs::create_dir_all(&dir)
        .and_then(|()| tempfile::NamedTempFile::new_in(&dir))
        .and_then(|mut tmp| tmp.write_all(&text).map(|()| tmp))
        .and_then(|tmp| {
            tmp.persist(dir.join(format!("{hash}.json")))
                .map(drop)
                .map_err(|e| e.error)
        });
}

/// The hash of the unit rustc compiles: the suffix cargo gives its file
/// names (`-C extra-filename=-<hash>`), or where there is none (a binary in
/// the per-unit layout), the unit directory its `--out-dir` is in.
fn unit_hash(args: &[String], cwd: &Path, profile_dir: &Path) -> Option<String> {
    if let Some(extra) = codegen_opt(args, "extra-filename") {
        return Some(extra.trim_start_matches('-').to_owned());
    }
    let mut it = args.iter();
    let out_dir = loop {
        let a = it.next()?;
        if a == "--out-dir" {
            break it.next()?.as_str();
        }
        if let Some(v) = a.strip_prefix("--out-dir=") {
            break v;
        }
    };
    let rel = cwd.join(out_dir);
    Layout::PerUnit.hash_of_file(rel.strip_prefix(profile_dir).ok()?)
}

/// Records `inv` as the invocation of the unit `<package>-<hash>` in
/// `profile_dir`, as the wrapper records what it runs: a seed gives the units
/// it restores the records of the build they come from, with this
/// checkout's paths, so that this build dir can be published or be a
/// donor in its turn.
pub(crate) fn write_record(
    profile_dir: &Path,
    hash: &str,
    inv: &Invocation,
) -> std::io::Result<()> {
    let dir = profile_dir.join(RECORDS);
    fs::create_dir_all(&dir)?;
    let text = serde_json::to_vec(inv).expect("serialises");
    fs::write(dir.join(format!("{hash}.json")), text)
}

/// The recorded invocation of the unit `<package>-<hash>`.
pub fn recorded(profile_dir: &Path, hash: &str) -> Option<Invocation> {
    let text = fs::read(profile_dir.join(RECORDS).join(format!("{hash}.json"))).ok()?;
    serde_json::from_slice(&text).ok()
}

#[cfg(test)]
mod tests;
