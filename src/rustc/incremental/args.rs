//! The command line of a replay: a unit's recorded rustc command, read as
//! hostile (it comes from the store), with only what stays out of rustc's
//! options hash changed.
//!
//! It must never let through an argument that names a program, a plugin, a
//! codegen backend, an output path or a file to read (rustc expands an
//! argument `@path` from a file, wherever it stands); it runs nothing. Of
//! the libraries in the build dir, only crate metadata reaches rustc unless
//! the snapshot is signed: a proc-macro or dylib rustc would load is code.

use std::path::{Component, Path, PathBuf};

use super::libs::Libraries;
use crate::rustc::wrapper::Invocation;

/// Where a replay may find the dependencies a command line names.
pub struct Place<'a> {
    /// The working directory here.
    pub cwd: &'a Path,
    /// The build dir here: `--extern` and `-L dependency=` are kept only
    /// below it, after `map`.
    pub build_dir: &'a Path,
    /// A recorded path on this machine (CI's build dir to this one's).
    pub map: &'a dyn Fn(&Path) -> Option<PathBuf>,
    /// Which of the build dir's libraries rustc may load.
    pub libraries: &'a Libraries,
}

/// A replay's command line, and the dependencies left out of it because
/// rustc would have run their code.
#[derive(Debug)]
pub(super) struct ReplayArgs {
    pub args: Vec<String>,
    /// Crate names of `--extern`s that name a proc-macro or dylib.
    pub withheld: Vec<String>,
}

/// Why a recorded command line is not replayed. Rendered as the reason a
/// unit's incremental state is not relocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreplayable {
    #[error("`{0}` has no value")]
    NoValue(String),
    #[error("its recorded command line has `-C {0}`, which cargo-seed does not replay")]
    Codegen(String),
    #[error("its recorded command line names a target spec file `{0}`")]
    TargetSpec(String),
    #[error("its recorded command line has `--emit {0}`, which names an output path")]
    EmitPath(String),
    #[error("its recorded crate name `{0}` is not an identifier")]
    CrateName(String),
    #[error("its recorded command line links `{0}`, a path")]
    LinkPath(String),
    #[error("its recorded command line has `{0}`, which cargo-seed does not replay")]
    Option(String),
    #[error("its recorded command line has a second input `{0}`")]
    SecondInput(String),
    #[error("its source file is not on its recorded command line")]
    NoSource,
    #[error("its recorded command line has `{0}`, which rustc would expand from a file")]
    ArgFile(String),
}

/// The crates a replay's `--extern name=path` arguments name.
pub(super) fn extern_crates(args: &[String]) -> Vec<&str> {
    args.iter()
        .zip(args.iter().skip(1))
        .filter(|(opt, _)| *opt == "--extern")
        .map(|(_, v)| v.split_once('=').map_or(v.as_str(), |(name, _)| name))
        .collect()
}

/// The program rustc is told to link with during a replay: the stub's
/// output is thrown away, and the linker is not in the options hash.
const NO_OP_LINKER: &str = "/bin/true";

/// `-C` options kept in a replay: they shape the options hash and name no
/// program, plugin or file.
const CODEGEN_KEPT: &[&str] = &[
    "opt-level",
    "debuginfo",
    "debug-assertions",
    "overflow-checks",
    "panic",
    "lto",
    "codegen-units",
    "embed-bitcode",
    "split-debuginfo",
    "metadata",
    "extra-filename",
    "target-cpu",
    "target-feature",
    "relocation-model",
    "code-model",
    "force-frame-pointers",
    "force-unwind-tables",
    "prefer-dynamic",
    "link-dead-code",
    "no-redzone",
    "no-vectorize-loops",
    "no-vectorize-slp",
    "soft-float",
    "symbol-mangling-version",
    "relro-level",
    "dwarf-version",
    "jump-tables",
    "collapse-macro-debuginfo",
    "instrument-coverage",
];

/// `-C` options dropped from a replay: they only matter when linking, which
/// the replay never does, and rustc leaves them out of the options hash.
const CODEGEN_DROPPED: &[&str] = &[
    "linker",
    "link-arg",
    "link-args",
    "linker-flavor",
    "strip",
    "rpath",
];

/// Options with a value that are kept as they are: no file, no program.
const KEPT_WITH_VALUE: &[&str] = &[
    "--crate-name",
    "--edition",
    "--crate-type",
    "--error-format",
    "--json",
    "--diagnostic-width",
    "--color",
    "--cap-lints",
    "--cfg",
    "--check-cfg",
    "--remap-path-prefix",
    "--target",
    "--emit",
    "-A",
    "-W",
    "-D",
    "-F",
    "--allow",
    "--warn",
    "--deny",
    "--forbid",
    "--force-warn",
];

/// Flags without a value that are kept.
const KEPT_FLAGS: &[&str] = &["--test", "-g", "-O"];

/// The command line of a replay: the recorded one, with the input, the
/// output and incremental directories pointed into `scratch`, `-L` and
/// `--extern` dropped (none of these enter the options hash), and linking
/// sent to a program that does nothing.
///
/// The recorded command comes from the store, so it is read as hostile:
/// every argument must be one that names no program, plugin, codegen backend
/// or output path, or it is refused with the reason and nothing is run.
pub(super) fn replay_args(
    inv: &Invocation,
    src_path: &Path,
    stub: &Path,
    out: &Path,
    inc: &Path,
    place: &Place,
) -> Result<ReplayArgs, Unreplayable> {
    // rustc reads `@path` as more arguments from that file, as an option's
    // value too (`--cfg @path`): none is ever passed on.
    if let Some(a) = inv.args.iter().find(|a| a.starts_with('@')) {
        return Err(Unreplayable::ArgFile(a.clone()));
    }
    let show = |p: &Path| p.to_string_lossy().into_owned();
    let mut withheld = Vec::new();
    let mut args = Vec::with_capacity(inv.args.len() + 2);
    let mut it = inv.args.iter();
    let mut replaced_src = false;
    while let Some(a) = it.next() {
        // `--opt value`, `--opt=value` and `-Xvalue` all come apart here.
        let (opt, inline) = split_option(a);
        let mut value = || -> Result<String, Unreplayable> {
            match inline {
                Some(v) => Ok(v.to_owned()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| Unreplayable::NoValue(a.clone())),
            }
        };
        match opt {
            "--out-dir" => {
                value()?;
                args.extend(["--out-dir".to_owned(), show(out)]);
            }
            "-L" => {
                // Only where the crates were: below the build dir.
                let v = value()?;
                let dir = v.strip_prefix("dependency=").and_then(|d| local(d, place));
                if let Some(dir) = dir.and_then(|d| place.libraries.search_dir(&d)) {
                    args.push(format!("-Ldependency={}", show(&dir)));
                }
            }
            "--extern" => {
                // `name=path` below the build dir, or a sysroot crate by
                // name; anything else is left out (the replay then only
                // loses that crate's `used_crate_source`).
                let v = value()?;
                let (name, path) = match v.split_once('=') {
                    Some((name, path)) => (name, local(path, place)),
                    None => (v.as_str(), None),
                };
                if !is_identifier(name) {
                    continue;
                }
                match path {
                    Some(path) if !place.libraries.may_load(&path) => {
                        withheld.push(name.to_owned());
                    }
                    Some(path) => {
                        args.extend(["--extern".to_owned(), format!("{name}={}", show(&path))])
                    }
                    None if !v.contains('=') => {
                        args.extend(["--extern".to_owned(), name.to_owned()])
                    }
                    None => {}
                }
            }
            "-C" | "--codegen" => {
                let v = value()?;
                let key = v.split_once('=').map_or(v.as_str(), |(k, _)| k);
                if key == "incremental" {
                    args.push(format!("-Cincremental={}", show(inc)));
                } else if CODEGEN_DROPPED.contains(&key) {
                } else if CODEGEN_KEPT.contains(&key) {
                    args.push(format!("-C{v}"));
                } else {
                    return Err(Unreplayable::Codegen(v));
                }
            }
            "--target" => {
                let v = value()?;
                // A target triple; a path to a target spec would be read.
                if v.contains('/') || v.contains('\\') || v.ends_with(".json") {
                    return Err(Unreplayable::TargetSpec(v));
                }
                args.push(format!("--target={v}"));
            }
            "--emit" => {
                let v = value()?;
                if v.contains('=') {
                    return Err(Unreplayable::EmitPath(v));
                }
                args.push(format!("--emit={v}"));
            }
            "--crate-name" => {
                let v = value()?;
                if !is_identifier(&v) {
                    return Err(Unreplayable::CrateName(v));
                }
                args.extend([opt.to_owned(), v]);
            }
            "-l" => {
                let v = value()?;
                // A library name; a path would be read (and bundled).
                if v.contains('/') || v.contains('\\') {
                    return Err(Unreplayable::LinkPath(v));
                }
                args.extend([opt.to_owned(), v]);
            }
            _ if KEPT_WITH_VALUE.contains(&opt) => {
                let v = value()?;
                args.extend([opt.to_owned(), v]);
            }
            _ if KEPT_FLAGS.contains(&opt) && inline.is_none() => args.push(opt.to_owned()),
            _ if a.starts_with('-') => {
                return Err(Unreplayable::Option(a.clone()));
            }
            _ if !replaced_src && (Path::new(a) == src_path || inv.cwd.join(a) == src_path) => {
                replaced_src = true;
                args.push(show(stub));
            }
            _ => return Err(Unreplayable::SecondInput(a.clone())),
        }
    }
    if !replaced_src {
        return Err(Unreplayable::NoSource);
    }
    args.push(format!("-Clinker={NO_OP_LINKER}"));
    Ok(ReplayArgs { args, withheld })
}

/// `args` without any dependency: no `-L`, no `--extern`. rustc leaves
/// both out of the options hash, so the header it writes is the same.
pub(super) fn without_dependencies(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--extern" | "-L" => {
                it.next();
            }
            _ if a.starts_with("-L") || a.starts_with("--extern=") => {}
            _ => out.push(a.clone()),
        }
    }
    out
}

/// `args` without native libraries (`-l`) and without `-C incremental`: a
/// stand-in bundles no library and keeps no session.
pub(super) fn without_native_and_incremental(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-l" => {
                it.next();
            }
            _ if a.starts_with("-l") || a.starts_with("-Cincremental=") => {}
            _ => out.push(a.clone()),
        }
    }
    out
}

/// A crate name as rustc takes it.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A recorded dependency path on this machine: absolute and plain, below
/// the build dir once mapped, and there; `None` otherwise.
fn local(recorded: &str, place: &Place) -> Option<PathBuf> {
    let path = Path::new(recorded);
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !plain {
        return None;
    }
    let here = (place.map)(path).unwrap_or_else(|| path.to_owned());
    // A dependency that is not here (one cargo will rebuild) is left out.
    (here.starts_with(place.build_dir) && here.exists()).then_some(here)
}

/// `--name=value` → (`--name`, value); `-Cvalue` → (`-C`, value); the short
/// options with a value (`-C`, `-L`, `-l`, `-A`…) may be glued to it.
pub(super) fn split_option(a: &str) -> (&str, Option<&str>) {
    if let Some(long) = a.strip_prefix("--") {
        return match long.split_once('=') {
            Some((name, v)) => (&a[..name.len() + 2], Some(v)),
            None => (a, None),
        };
    }
    if a.len() > 2 && a.starts_with('-') && a.is_char_boundary(2) {
        let (opt, v) = a.split_at(2);
        if matches!(opt, "-C" | "-L" | "-l" | "-A" | "-W" | "-D" | "-F") {
            return (opt, Some(v));
        }
    }
    (a, None)
}
