//! What a unit's freshness depends on, recorded at publish so a seed can
//! decide by content: the digest of every input cargo would mtime-check, the
//! watched environment, and the machine paths a unit embeds. A unit whose
//! inputs cannot all be recorded is marked unverifiable, never vouched for.

use std::fs;
use std::io::{self};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::observe::{io_err, LiveUnit, SnapshotError};
use crate::cargo::depinfo::{self, PathBase};
use crate::cargo::fingerprint::Fingerprint;
use crate::snapshot::inputs::{self, digest_path, Roots};
use crate::snapshot::manifest::{
    BakedPath, BakedRoot, Base, Check, Input, Inputs, PackageFile, PackageFiles,
};
use crate::snapshot::package;

/// Every environment variable a unit's fingerprint records, with CI's value:
/// those its build script watches (`rerun-if-env-changed`) and those rustc
/// saw it read (cargo's encoded dep-info). `None` when an entry or the
/// dep-info has a format cargo-seed does not know, so that what it records
/// cannot be told.
pub(crate) fn recorded_env(
    fp: &Fingerprint,
    build_root: &Path,
) -> Option<Vec<(String, Option<String>)>> {
    let mut env = Vec::new();
    for local in &fp.json.local {
        let (variant, body) = local.as_object()?.iter().next()?;
        match variant.as_str() {
            "RerunIfEnvChanged" => {
                let var = body.get("var")?.as_str()?.to_owned();
                let val = match body.get("val")? {
                    serde_json::Value::Null => None,
                    v => Some(v.as_str()?.to_owned()),
                };
                env.push((var, val));
            }
            "CheckDepInfo" => {
                let rel = body.get("dep_info")?.as_str()?;
                let bytes = fs::read(build_root.join(rel)).ok()?;
                env.extend(depinfo::parse(&bytes)?.env);
            }
            "RerunIfChanged" | "Precalculated" => {}
            _ => return None,
        }
    }
    Some(env)
}

/// Which `env!` values of a unit embed the build machine's workspace root or
/// `CARGO_HOME`. Values under the build dir (`OUT_DIR` and paths below it)
/// are left out on purpose, as cargo itself leaves them when a target dir
/// moves: the files there are compared by content, and a crate that embeds
/// the directory's name as a string keeps the old one (cargo's
/// `dep_info.rs` documents the same gap).
pub(crate) fn baked_paths(
    env: &[(String, Option<String>)],
    workspace_root: &Path,
    cargo_home: &Path,
    build_dir: &Path,
) -> Vec<BakedPath> {
    // `p` itself or a path below it, not a longer name (`/ws/ci` is not in
    // `/ws/ci-home/x`).
    let has = |v: &str, p: &Path| {
        let p = p.to_string_lossy();
        !p.is_empty()
            && v.match_indices(&*p)
                .any(|(i, _)| matches!(v[i + p.len()..].chars().next(), None | Some('/')))
    };
    let mut out: Vec<BakedPath> = env
        .iter()
        .filter_map(|(var, value)| {
            let v = value.as_deref()?;
            let under = if has(v, build_dir) {
                return None;
            } else if has(v, workspace_root) {
                BakedRoot::Workspace
            } else if has(v, cargo_home) {
                BakedRoot::CargoHome
            } else {
                return None;
            };
            Some(BakedPath {
                var: var.clone(),
                under,
            })
        })
        .collect();
    out.sort_by(|a, b| a.var.cmp(&b.var));
    out.dedup();
    out
}

/// Decides how the unit's freshness can be checked, and records the digests
/// of everything cargo would mtime-check.
///
/// `produced` are the directories (relative to `build_root`) of the build
/// script runs this unit depends on: files there are restored with those
/// units and are fresh exactly when they are. Any other file under the build
/// dir is an input like a source file (a generated file, an artifact of
/// another build) and is compared by content.
///
/// Every input is recorded relative to a directory the seed maps to its own
/// machine (see [`Roots`]); a unit that reads a file outside all of them is
/// unverifiable, and so is one whose input is not a regular file.
pub(crate) fn unit_check(
    unit: &LiveUnit,
    fp: &Fingerprint,
    roots: &Roots,
    produced: &[PathBuf],
) -> Result<Check, SnapshotError> {
    let build_root = roots.build_dir.as_path();
    let is_path = crate::cargo::is_path_package(&unit.package_id);
    // Where cargo will look for each input on this machine.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut tracked = false;
    // Cargo's reference time for the unit: no input may be newer, or what is
    // on disk now is not what was compiled.
    let mut reference: Option<SystemTime> = None;
    let mut note_reference = |path: &Path| -> Result<(), SnapshotError> {
        let t = fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(io_err(path))?;
        reference = Some(reference.map_or(t, |r| r.min(t)));
        Ok(())
    };
    for local in &fp.json.local {
        let Some((variant, body)) = local.as_object().and_then(|o| o.iter().next()) else {
            return Ok(unverifiable("an unreadable fingerprint entry"));
        };
        match variant.as_str() {
            "CheckDepInfo" => {
                tracked = true;
                let Some(rel) = body.get("dep_info").and_then(|d| d.as_str()) else {
                    return Ok(unverifiable("a dep-info entry without a path"));
                };
                let path = build_root.join(rel);
                note_reference(&path)?;
                let bytes = fs::read(&path).map_err(io_err(&path))?;
                let Some(info) = depinfo::parse(&bytes) else {
                    return Ok(unverifiable("a dep-info file in an unknown format"));
                };
                for (base, p) in info.files {
                    files.push(match base {
                        PathBase::Package => unit.package_root.join(p),
                        PathBase::Build => build_root.join(p),
                    });
                }
            }
            "RerunIfChanged" => {
                tracked = true;
                if let Some(output) = body.get("output").and_then(|o| o.as_str()) {
                    note_reference(&build_root.join(output))?;
                }
                let paths = body.get("paths").and_then(|p| p.as_array());
                for p in paths.into_iter().flatten().filter_map(|p| p.as_str()) {
                    files.push(unit.package_root.join(p));
                }
            }
            "RerunIfEnvChanged" => {}
            "Precalculated" if !is_path => {}
            "Precalculated" => {
                let (Some(recorded), [_]) = (body.as_str(), fp.json.local.as_slice()) else {
                    return Ok(unverifiable(
                        "a package fingerprint in a form cargo-seed does not know",
                    ));
                };
                return Ok(package_check(unit, roots, recorded));
            }
            other => {
                return Ok(unverifiable(&format!(
                    "an unknown fingerprint kind `{other}`"
                )))
            }
        }
    }
    // A workspace unit always carries a content check, even an empty one
    // (a build script that watches only environment variables), so that a
    // manifest without one can be told apart and refused.
    if !tracked && !is_path {
        return Ok(Check::None);
    }
    const PACKAGE_BASES: [Base; 3] = [Base::Workspace, Base::Repository, Base::CargoHome];
    let Some((base, package_root)) = roots.relativize(&unit.package_root, &PACKAGE_BASES) else {
        return Ok(unverifiable(
            "its package lies outside the workspace, the repository and CARGO_HOME",
        ));
    };
    let mut located = Vec::with_capacity(files.len());
    for raw in files {
        let Some(abs) = inputs::normalize(&raw) else {
            return Ok(unverifiable(&format!(
                "it reads {}, a path that climbs above the root",
                raw.display()
            )));
        };
        // `a/../b` means what the file system says, which is what `..`
        // means lexically unless a symlink sits in between.
        if abs != raw && fs::canonicalize(&abs).ok() != fs::canonicalize(&raw).ok() {
            return Ok(unverifiable(&format!(
                "it reads {} through a symlink and `..`",
                raw.display()
            )));
        }
        let entry = if let Ok(rel) = abs.strip_prefix(build_root) {
            if produced.iter().any(|d| rel.starts_with(d)) {
                continue;
            }
            (Base::BuildDir, rel.to_owned())
        } else if let Ok(rel) = abs.strip_prefix(&unit.package_root) {
            (Base::Package, rel.to_owned())
        } else if let Some(found) = roots.relativize(&abs, &PACKAGE_BASES) {
            found
        } else {
            return Ok(unverifiable(&format!(
                "it reads {}, outside the workspace, the repository, CARGO_HOME and the build dir",
                abs.display()
            )));
        };
        located.push((entry, abs));
    }
    located.sort();
    located.dedup();
    let mut inputs = Vec::with_capacity(located.len());
    for ((base, path), abs) in located {
        let sha256 = match digest_path(&abs, roots) {
            Ok(d) => d,
            Err(e) => {
                return Ok(unverifiable(&format!(
                    "{} cannot be read ({e})",
                    path.display()
                )))
            }
        };
        // Checked after reading: an edit during the read shows up here too.
        if let (Some(reference), Ok(modified)) = (reference, newest_mtime(&abs)) {
            if modified > reference {
                return Ok(unverifiable(&format!(
                    "{} changed after the unit was compiled",
                    path.display()
                )));
            }
        }
        inputs.push(Input { base, path, sha256 });
    }
    Ok(Check::Inputs(Inputs {
        base,
        package_root,
        files: inputs,
    }))
}

/// A build script that prints no `rerun-if-changed` reruns when the newest
/// mtime among its package's files changes (`recorded`: what cargo wrote
/// when it ran): records the digest of every file of that list, provided
/// the files are still those the script saw.
fn package_check(unit: &LiveUnit, roots: &Roots, recorded: &str) -> Check {
    // Not CARGO_HOME: a seed runs git in the package's directory, which
    // must be one of this checkout's.
    const PACKAGE_BASES: [Base; 2] = [Base::Workspace, Base::Repository];
    let root = unit.package_root.as_path();
    let Some((base, package_root)) = roots.relativize(root, &PACKAGE_BASES) else {
        return unverifiable(
            "its build script prints no rerun-if-changed, and its package lies outside \
             the workspace and the repository",
        );
    };
    let files = match package::list(root) {
        Ok(files) => files,
        Err(why) => {
            return unverifiable(&format!(
                "cargo reruns its build script when any file of the package is newer \
                 (it prints no rerun-if-changed), and {why}"
            ))
        }
    };
    // Cargo's string again, from the files as they are now: another one
    // means a file changed (or appeared) since the script ran, and what it
    // produced may not be what these files give.
    let changed = || {
        unverifiable(
            "a file of its package changed after its build script ran \
             (it prints no rerun-if-changed)",
        )
    };
    if package::precalculated(&files, &package::mtimes(root, &files)) != recorded {
        return changed();
    }
    let mut recorded_files = Vec::with_capacity(files.len());
    for path in &files {
        match digest_path(&root.join(path), roots) {
            Ok(Some(sha256)) => recorded_files.push(PackageFile {
                path: path.clone(),
                sha256,
            }),
            Ok(None) => return changed(),
            Err(e) => {
                return unverifiable(&format!("{} cannot be read ({e})", path.display()));
            }
        }
    }
    // Checked after reading: an edit during the read shows up here too.
    if package::precalculated(&files, &package::mtimes(root, &files)) != recorded {
        return changed();
    }
    recorded_files.sort_by(|a, b| a.path.cmp(&b.path));
    Check::PackageFiles(PackageFiles {
        base,
        package_root,
        files: recorded_files,
    })
}

/// The mtime cargo compares: the file's own, or for a directory the newest
/// below it.
fn newest_mtime(path: &Path) -> io::Result<SystemTime> {
    let meta = fs::metadata(path)?;
    let mut t = meta.modified()?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            t = t.max(newest_mtime(&entry?.path())?);
        }
    }
    Ok(t)
}

fn unverifiable(reason: &str) -> Check {
    Check::Unverifiable {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests;
