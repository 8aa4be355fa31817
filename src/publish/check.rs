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
use crate::snapshot::manifest::{BakedPath, BakedRoot, Base, Check, Input, Inputs};

/// Every environment variable a unit's fingerprint records, with CI's value:
/// those its build script watches (`rerun-if-env-changed`) and those rustc
/// saw it read (cargo's encoded dep-info). `None` when an entry or the
/// dep-info has a format cargo-seed does not know, so that what it records
/// cannot be told.
pub fn recorded_env(fp: &Fingerprint, build_root: &Path) -> Option<Vec<(String, Option<String>)>> {
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
pub fn baked_paths(
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
pub fn unit_check(
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
                return Ok(unverifiable(
                    "cargo decides it by the newest mtime in the package \
                     (a build script without rerun-if-changed)",
                ))
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
mod tests {
    use super::*;
    use crate::cargo::depinfo::rustc_env_deps;
    use crate::snapshot::manifest::{FingerprintRecord, UnitKind};

    /// When the tests' compiles happened.
    const COMPILED: u64 = 1_700_000_000;

    fn test_roots(dir: &Path, build: &Path) -> Roots {
        Roots::new(&dir.join("ws"), None, &dir.join("home"), build)
    }

    /// Sets a file's mtime to `secs` after the epoch: tests order files in
    /// time explicitly, as no sleep can on a file system with 1-second
    /// timestamps.
    fn set_mtime(path: &Path, secs: u64) {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    }

    #[test]
    fn env_deps_that_embed_machine_paths() {
        let d = "/ci/ws/target/debug/deps/app-1: src/main.rs\n\n\
                 # env-dep:CARGO_MANIFEST_DIR=/ci/ws/app\n\
                 # env-dep:OUT_DIR=/ci/ws/target/debug/build/app-2/out\n\
                 # env-dep:REG=/ci/home/registry/src/x\n\
                 # env-dep:GREETING=hi\n\
                 # env-dep:UNSET\n";
        let env = rustc_env_deps(d);
        assert_eq!(env.len(), 5);
        assert_eq!(env[4], ("UNSET".to_owned(), None));
        let baked = baked_paths(
            &env,
            Path::new("/ci/ws"),
            Path::new("/ci/home"),
            Path::new("/ci/ws/target"),
        );
        assert_eq!(
            baked,
            vec![
                BakedPath {
                    var: "CARGO_MANIFEST_DIR".into(),
                    under: BakedRoot::Workspace
                },
                BakedPath {
                    var: "REG".into(),
                    under: BakedRoot::CargoHome
                },
            ]
        );
    }

    #[test]
    fn a_longer_name_is_not_under_a_root() {
        let env = [
            (
                "HOME_DIR".to_owned(),
                Some("/x/ci-home/git/embed".to_owned()),
            ),
            ("DATA".to_owned(), Some("/x/ci/target-data/f".to_owned())),
        ];
        let baked = baked_paths(
            &env,
            Path::new("/x/ci"),
            Path::new("/x/ci-home"),
            Path::new("/x/ci/target"),
        );
        // `target-data` is in the workspace, not the build dir.
        assert_eq!(
            baked,
            vec![
                BakedPath {
                    var: "DATA".into(),
                    under: BakedRoot::Workspace
                },
                BakedPath {
                    var: "HOME_DIR".into(),
                    under: BakedRoot::CargoHome
                },
            ]
        );
    }

    #[test]
    fn an_input_newer_than_its_compile_is_not_vouched_for() {
        let d = tempfile::tempdir().unwrap();
        let (build, pkg) = (d.path().join("target"), d.path().join("ws/app"));
        fs::create_dir_all(build.join("debug/.fingerprint/app-0")).unwrap();
        fs::create_dir_all(pkg.join("src")).unwrap();
        // cargo's encoded dep-info listing src/main.rs (package-relative).
        let mut dep = vec![1, 0, 0, 0, 0xff, 1, 1, 0, 0, 0, 0, 11, 0, 0, 0];
        dep.extend(b"src/main.rs");
        dep.extend([0, 0, 0, 0, 0]);
        let dep_path = build.join("debug/.fingerprint/app-0/dep-bin-app");
        fs::write(pkg.join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(&dep_path, &dep).unwrap();
        // Written, then compiled: cargo's reference is the dep-info's mtime.
        set_mtime(&pkg.join("src/main.rs"), COMPILED - 10);
        set_mtime(&dep_path, COMPILED);
        let unit = LiveUnit {
            id: "app-0".into(),
            kind: UnitKind::Compile,
            package_id: "path+file:///ws/app#0.1.0".into(),
            name: "bin app".into(),
            crate_name: "app".into(),
            package_root: pkg.clone(),
            src_path: None,
            host: false,
        };
        let fp = Fingerprint {
            hash: 0,
            record: FingerprintRecord::default(),
            json: serde_json::from_str(
                r#"{"deps":[],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/app-0/dep-bin-app","checksum":false}}]}"#,
            )
            .unwrap(),
        };
        let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &[]).unwrap();
        let Check::Inputs(inputs) = check else {
            panic!("{check:?}")
        };
        assert_eq!(inputs.package_root, PathBuf::from("app"));
        assert_eq!(inputs.files[0].path, PathBuf::from("src/main.rs"));
        assert!(inputs.files[0].sha256.is_some());

        // Written in the same second as the compile, as a file system with
        // 1-second timestamps shows it: not newer, so cargo calls it fresh
        // and its digest is recorded.
        set_mtime(&pkg.join("src/main.rs"), COMPILED);
        let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &[]).unwrap();
        assert!(matches!(&check, Check::Inputs(_)), "{check:?}");

        // Edited after the compile: the digest would not be of what was built.
        fs::write(pkg.join("src/main.rs"), "fn main() { edited() }").unwrap();
        set_mtime(&pkg.join("src/main.rs"), COMPILED + 1);
        let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &[]).unwrap();
        assert!(
            matches!(&check, Check::Unverifiable { reason } if reason.contains("after")),
            "{check:?}"
        );
    }

    #[test]
    fn build_dir_inputs_are_compared_unless_a_dependency_produced_them() {
        let d = tempfile::tempdir().unwrap();
        let (build, pkg) = (d.path().join("target"), d.path().join("ws/app"));
        fs::create_dir_all(build.join("debug/.fingerprint/app-0")).unwrap();
        fs::create_dir_all(build.join("debug/build/app-1/out")).unwrap();
        fs::create_dir_all(build.join("gen")).unwrap();
        fs::create_dir_all(&pkg).unwrap();
        fs::write(build.join("gen/data.txt"), "made by another tool").unwrap();
        fs::write(build.join("debug/build/app-1/out/x.rs"), "// by build.rs").unwrap();
        let mut dep = vec![1, 0, 0, 0, 0xff, 1, 2, 0, 0, 0];
        for path in ["gen/data.txt", "debug/build/app-1/out/x.rs"] {
            dep.push(1);
            dep.extend((path.len() as u32).to_le_bytes());
            dep.extend(path.as_bytes());
            dep.push(0);
        }
        dep.extend([0, 0, 0, 0]);
        let dep_path = build.join("debug/.fingerprint/app-0/dep-lib-app");
        fs::write(&dep_path, &dep).unwrap();
        // Both inputs were there before the compile.
        set_mtime(&build.join("gen/data.txt"), COMPILED - 10);
        set_mtime(&build.join("debug/build/app-1/out/x.rs"), COMPILED - 10);
        set_mtime(&dep_path, COMPILED);
        let unit = LiveUnit {
            id: "app-0".into(),
            kind: UnitKind::Compile,
            package_id: "path+file:///ws/app#0.1.0".into(),
            name: "lib app".into(),
            crate_name: "app".into(),
            package_root: pkg,
            src_path: None,
            host: false,
        };
        let fp = Fingerprint {
            hash: 0,
            record: FingerprintRecord::default(),
            json: serde_json::from_str(
                r#"{"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/app-0/dep-lib-app","checksum":false}}]}"#,
            )
            .unwrap(),
        };
        let produced = [PathBuf::from("debug/build/app-1")];
        let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &produced).unwrap();
        let Check::Inputs(inputs) = check else {
            panic!("{check:?}")
        };
        let files: Vec<_> = inputs
            .files
            .iter()
            .map(|i| (i.base, i.path.clone()))
            .collect();
        assert_eq!(files, vec![(Base::BuildDir, PathBuf::from("gen/data.txt"))]);
    }
}
