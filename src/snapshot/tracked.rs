//! Whether a workspace unit's recorded inputs can be the list cargo wrote.
//!
//! Cargo decides a restored unit's freshness by the mtimes of the files its
//! dep-info names, and the seed makes those mtimes old after comparing each
//! recorded input by content. A file the dep-info names that the manifest
//! does not record is compared by nobody: an edit to it would leave the unit
//! fresh. So a compile unit of a workspace package must record at least its
//! crate root (checked with the manifest, before any download) and every
//! file of its dep-info (checked once its blob is unpacked), except those
//! below the build-script output directories of its dependencies, which are
//! restored with those units and are fresh exactly when they are.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::cargo::depinfo::{self, PathBase};
use crate::cargo::layout::Layout;
use crate::snapshot::inputs::normalize;
use crate::snapshot::manifest::{Base, Check, Inputs, Manifest, Unit, UnitKind};

/// Why a unit's recorded inputs cannot be what cargo tracks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untracked {
    #[error("unit `{id}` of a workspace package records no source file")]
    NoSource { id: String },
    #[error("the inputs of unit `{id}` leave out its crate root {}", .root.display())]
    NoCrateRoot { id: String, root: PathBuf },
    #[error("the inputs of unit `{id}` leave out {}, which its dep-info tracks", .file.display())]
    NotRecorded { id: String, file: PathBuf },
    #[error("the dep-info of unit `{id}` is in a format cargo-seed does not know")]
    Unreadable { id: String },
}

/// The units this applies to: compile units of workspace (path) packages
/// whose freshness the seed checks by content.
fn checked(unit: &Unit) -> Option<&Inputs> {
    let is_path = unit
        .package_id
        .as_deref()
        .is_none_or(crate::cargo::is_path_package);
    match &unit.check {
        Check::Inputs(inputs) if unit.kind == UnitKind::Compile && is_path => Some(inputs),
        _ => None,
    }
}

/// Where `base` was on the build machine.
fn ci_dir(m: &Manifest, base: Base) -> Option<&Path> {
    match base {
        Base::Package => None,
        Base::BuildDir => Some(&m.build_dir),
        Base::Workspace => Some(&m.workspace_root),
        Base::Repository => m.repository_root.as_deref(),
        Base::CargoHome => Some(&m.cargo_home),
    }
}

/// The build machine's paths of the inputs `unit` records; `None` when a
/// base is not known.
fn recorded(m: &Manifest, inputs: &Inputs) -> Option<(PathBuf, HashSet<PathBuf>)> {
    let package = ci_dir(m, inputs.base)?.join(&inputs.package_root);
    let files = inputs
        .files
        .iter()
        .map(|input| {
            let dir = match input.base {
                Base::Package => package.as_path(),
                other => ci_dir(m, other)?,
            };
            normalize(&dir.join(&input.path))
        })
        .collect::<Option<_>>()?;
    Some((package, files))
}

/// Before any download: a workspace compile unit records its crate root.
pub fn crate_root(m: &Manifest, unit: &Unit) -> Result<(), Untracked> {
    let Some(inputs) = checked(unit) else {
        return Ok(());
    };
    let id = || unit.id.to_string();
    let src = unit
        .src_path
        .as_deref()
        .ok_or_else(|| Untracked::NoSource { id: id() })?;
    let root = normalize(src).unwrap_or_else(|| src.to_owned());
    // A crate root generated into the build dir is another unit's output.
    if root.starts_with(&m.build_dir) {
        return Ok(());
    }
    match recorded(m, inputs) {
        Some((_, files)) if files.contains(&root) => Ok(()),
        _ => Err(Untracked::NoCrateRoot { id: id(), root }),
    }
}

/// Once unpacked into `profile_dir`: every file the unit's dep-info names is
/// among its recorded inputs. A unit without a dep-info is rebuilt by cargo.
///
/// `scripts` are the ids of the manifest's build-script runs
/// ([`script_runs`]).
pub fn dep_info(
    m: &Manifest,
    scripts: &HashSet<&str>,
    unit: &Unit,
    profile_dir: &Path,
    layout: Layout,
) -> Result<(), Untracked> {
    let (Some(inputs), Some(fp)) = (checked(unit), &unit.fingerprint) else {
        return Ok(());
    };
    let id = || unit.id.to_string();
    let path = profile_dir
        .join(layout.fingerprint_dir(&unit.id))
        .join(format!("dep-{}", fp.file));
    let bytes = match read_regular(&path, DEP_INFO_CAP) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(()),
        // A link or a FIFO cargo would follow, or a file too large.
        Err(()) => return Err(Untracked::Unreadable { id: id() }),
    };
    let info = depinfo::parse(&bytes).ok_or_else(|| Untracked::Unreadable { id: id() })?;
    let (package, files) = recorded(m, inputs).ok_or_else(|| Untracked::NotRecorded {
        id: id(),
        file: PathBuf::new(),
    })?;
    // The build-script output directories of its dependencies, on the
    // build machine: in the profile dir, or a cross build's target one.
    let produced: Vec<PathBuf> = unit
        .deps
        .iter()
        .filter(|d| scripts.contains(d.as_str()))
        .flat_map(|d| {
            let dir = layout.build_script_dir(d);
            [
                m.build_dir.join(&m.profile_dir).join(&dir),
                m.build_dir.join(&m.target).join(&m.profile_dir).join(&dir),
            ]
        })
        .collect();
    for (base, file) in info.files {
        let raw = match base {
            PathBase::Package => package.join(&file),
            PathBase::Build => m.build_dir.join(&file),
        };
        let Some(abs) = normalize(&raw) else {
            return Err(Untracked::NotRecorded {
                id: id(),
                file: raw,
            });
        };
        if files.contains(&abs) || produced.iter().any(|d| abs.starts_with(d)) {
            continue;
        }
        return Err(Untracked::NotRecorded {
            id: id(),
            file: abs,
        });
    }
    Ok(())
}

/// The ids of the build-script runs of `m`.
pub fn script_runs(m: &Manifest) -> HashSet<&str> {
    m.units
        .iter()
        .filter(|u| u.kind == UnitKind::RunBuildScript)
        .map(|u| u.id.as_str())
        .collect()
}

/// Cargo's encoded dep-info lists a unit's files: a few hundred KiB for the
/// largest crates.
const DEP_INFO_CAP: u64 = 64 << 20;

/// The bytes of `path` if it is a regular file (not a link, a FIFO or a
/// device) of at most `cap` bytes, `None` if nothing is there; an error for
/// anything else. Opening never blocks.
fn read_regular(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, ()> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = match std::fs::File::options()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(()),
    };
    let meta = file.metadata().map_err(|_| ())?;
    if !meta.file_type().is_file() || meta.len() > cap {
        return Err(());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap).read_to_end(&mut bytes).map_err(|_| ())?;
    Ok(Some(bytes))
}
