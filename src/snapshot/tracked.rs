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
    #[error("the dep-info of unit `{id}` is not a file in a format cargo-seed knows")]
    Unreadable { id: String },
    #[error("unit `{id}` records inputs relative to a directory the manifest does not name")]
    NoBase { id: String },
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

/// Once unpacked into `profile_dir`: every file each dep-info in the unit's
/// fingerprint directory names is among its recorded inputs. Every
/// `dep-*` file there is read, not only the one the manifest's fingerprint
/// record names: cargo reads the one it names itself, and the record is the
/// store's word. A unit without a dep-info is rebuilt by cargo.
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
    let Some(inputs) = checked(unit) else {
        return Ok(());
    };
    let id = || unit.id.to_string();
    let dir = profile_dir.join(layout.fingerprint_dir(&unit.id));
    let mut dep_infos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dep-"))
        .map(|e| e.path())
        .collect();
    if dep_infos.is_empty() {
        return Ok(());
    }
    dep_infos.sort();
    let (package, files) = recorded(m, inputs).ok_or_else(|| Untracked::NoBase { id: id() })?;
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
    for path in dep_infos {
        let bytes = match read_regular(&path, DEP_INFO_CAP) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => continue,
            // A link or a FIFO cargo would follow, or a file too large.
            Err(()) => return Err(Untracked::Unreadable { id: id() }),
        };
        let info = depinfo::parse(&bytes).ok_or_else(|| Untracked::Unreadable { id: id() })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Cargo's encoded dep-info naming `files` relative to the package.
    fn encoded(files: &[&str]) -> Vec<u8> {
        let mut b = vec![1, 0, 0, 0, 0xff, 1];
        b.extend((files.len() as u32).to_le_bytes());
        for f in files {
            b.push(0);
            b.extend((f.len() as u32).to_le_bytes());
            b.extend(f.as_bytes());
            b.push(0);
        }
        b.extend(0u32.to_le_bytes());
        b
    }

    /// A manifest whose one unit, the workspace library `greet`, records
    /// `inputs` (relative to its package) and a fingerprint record `file`.
    fn manifest(inputs: &[&str], file: &str) -> Manifest {
        let files: Vec<serde_json::Value> = inputs
            .iter()
            .map(|p| serde_json::json!({"path": p, "sha256": null}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema": crate::snapshot::manifest::SCHEMA, "commit": "c", "created": 0,
            "toolchain": {"verbose_version": "", "release": "", "host": ""},
            "target": "", "profile": "dev", "profile_dir": "debug",
            "workspace_root": "/ci/ws", "cargo_home": "/ci/home",
            "build_dir": "/ci/ws/target", "dirty": false,
            "units": [{
                "id": "greet-0123456789abcdef", "name": "lib greet", "kind": "compile",
                "package_id": "path+file:///ci/ws/greet#0.1.0",
                "blob": {"sha256": "", "size": 0, "unpacked": 0},
                "check": {"inputs": {"package_root": "greet", "files": files}},
                "fingerprint": {"file": file, "hash": "0000000000000000", "fields": "{}"},
                "src_path": "/ci/ws/greet/src/lib.rs",
            }],
        }))
        .unwrap()
    }

    fn judge(m: &Manifest, dep_info: &[&str]) -> Result<(), Untracked> {
        let profile = tempfile::tempdir().unwrap();
        let unit = &m.units[0];
        let dir = profile.path().join(Layout::Flat.fingerprint_dir(&unit.id));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dep-lib-greet"), encoded(dep_info)).unwrap();
        dep_info_of(m, unit, profile.path())
    }

    fn dep_info_of(m: &Manifest, unit: &Unit, profile: &Path) -> Result<(), Untracked> {
        dep_info(m, &script_runs(m), unit, profile, Layout::Flat)
    }

    #[test]
    fn a_workspace_unit_records_its_crate_root() {
        let m = manifest(&["src/lib.rs", "src/suffix.rs"], "lib-greet");
        assert_eq!(crate_root(&m, &m.units[0]), Ok(()));
        let m = manifest(&["src/suffix.rs"], "lib-greet");
        assert!(matches!(
            crate_root(&m, &m.units[0]),
            Err(Untracked::NoCrateRoot { .. })
        ));
        let m = manifest(&[], "lib-greet");
        assert!(crate_root(&m, &m.units[0]).is_err());
    }

    #[test]
    fn every_file_of_every_dep_info_is_recorded() {
        let both = ["src/lib.rs", "src/suffix.rs"];
        assert_eq!(judge(&manifest(&both, "lib-greet"), &both), Ok(()));
        let missing = judge(&manifest(&["src/lib.rs"], "lib-greet"), &both);
        assert_eq!(
            missing,
            Err(Untracked::NotRecorded {
                id: "greet-0123456789abcdef".into(),
                file: "/ci/ws/greet/src/suffix.rs".into(),
            })
        );
        // The record may name another file: cargo still reads the dep-info
        // it names itself, and so is it checked.
        assert!(judge(&manifest(&["src/lib.rs"], "lib-other"), &both).is_err());
    }

    #[test]
    fn a_dep_info_that_is_not_a_file_is_refused() {
        let m = manifest(&["src/lib.rs"], "lib-greet");
        let profile = tempfile::tempdir().unwrap();
        let dir = profile
            .path()
            .join(Layout::Flat.fingerprint_dir(&m.units[0].id));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("listed"), encoded(&["src/lib.rs"])).unwrap();
        std::os::unix::fs::symlink("listed", dir.join("dep-lib-greet")).unwrap();
        assert_eq!(
            dep_info_of(&m, &m.units[0], profile.path()),
            Err(Untracked::Unreadable {
                id: "greet-0123456789abcdef".into()
            })
        );
    }
}
