//! Deciding by content which units cargo may reuse, and making cargo agree.
//!
//! Cargo decides a path unit's freshness by mtimes (an input newer than the
//! unit's dep-info makes it dirty), and a
//! fresh clone's mtimes say nothing about what changed. So cargo-seed compares
//! the digest of every file cargo tracks with what CI compiled. A unit whose
//! inputs all match is restored, every file stamped with one time `T` that is
//! not older than any of its inputs; a unit that differs, or depends on one
//! that does, is not restored at all, so cargo rebuilds it by its own rules
//! (a missing unit is never fresh, and its dependents see a stale dependency).
//!
//! This module must never report a unit fresh without having compared every
//! recorded input.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::cargo::unit_id::UnitId;
use crate::snapshot::manifest::{Base, Check, Manifest, UnitKind};

use super::reason::{Change, Reason};
use crate::snapshot::inputs::{digest_path, Roots};

/// Whether a unit may be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Reuse,
    Rebuild(Reason),
}

/// Compares every unit's recorded inputs with the files here, then spreads
/// "rebuild" to every unit that depends on a rebuilt (or missing) one.
/// `decided` are units already known to be rebuilt (for reasons of this
/// machine's paths and environment), which are not compared.
/// Incremental state is always reused: rustc checks it itself.
pub(crate) fn evaluate(
    manifest: &Manifest,
    roots: &Roots,
    mut decided: BTreeMap<UnitId, Reason>,
) -> BTreeMap<UnitId, Verdict> {
    let mut verdicts: BTreeMap<UnitId, Verdict> = BTreeMap::new();
    for unit in &manifest.units {
        let v = if let Some(why) = decided.remove(&unit.id) {
            Verdict::Rebuild(why)
        } else {
            match &unit.check {
                Check::None => Verdict::Reuse,
                Check::Unverifiable { reason } => Verdict::Rebuild(Reason::Unverifiable {
                    why: reason.clone(),
                }),
                Check::Inputs(inputs) => {
                    compare(inputs, roots).map_or(Verdict::Reuse, Verdict::Rebuild)
                }
            }
        };
        verdicts.insert(unit.id.clone(), v);
    }
    // Spread along dependency edges until nothing changes; the graph is a DAG
    // of at most a few thousand units, so this converges quickly.
    let names: HashMap<&str, &str> = manifest
        .units
        .iter()
        .map(|u| (u.id.as_str(), u.name.as_str()))
        .collect();
    loop {
        let mut changed = false;
        for unit in &manifest.units {
            if verdicts[&unit.id] != Verdict::Reuse || unit.kind == UnitKind::Incremental {
                continue;
            }
            let why = unit.deps.iter().find_map(|dep| match verdicts.get(dep) {
                None => Some(Reason::MissingDependency { id: dep.clone() }),
                Some(Verdict::Rebuild(_)) => Some(Reason::Dependency {
                    name: names[dep.as_str()].to_owned(),
                }),
                Some(Verdict::Reuse) => None,
            });
            if let Some(why) = why {
                verdicts.insert(unit.id.clone(), Verdict::Rebuild(why));
                changed = true;
            }
        }
        if !changed {
            return verdicts;
        }
    }
}

/// How the files here differ from `inputs`, or `None` if none does.
fn compare(inputs: &crate::snapshot::manifest::Inputs, roots: &Roots) -> Option<Reason> {
    let Some(base) = roots.dir(inputs.base) else {
        return Some(Reason::PackageOutsideRepository);
    };
    let package = base.join(&inputs.package_root);
    inputs.files.iter().find_map(|input| {
        let differs = |change| {
            Some(Reason::Input {
                path: input.path.clone(),
                change,
            })
        };
        let local = match (input.base, roots.dir(input.base)) {
            (Base::Package, _) => package.join(&input.path),
            (_, Some(dir)) => dir.join(&input.path),
            (_, None) => return differs(Change::OutsideRepository),
        };
        match digest_path(&local, roots) {
            Ok(d) if d == input.sha256 => None,
            Ok(None) => differs(Change::Removed),
            Ok(Some(_)) if input.sha256.is_none() => differs(Change::Added),
            Ok(Some(_)) => differs(Change::Changed),
            Err(e) => differs(Change::Unreadable {
                error: e.to_string(),
            }),
        }
    })
}

/// The earliest of the file systems' own ideas of "now", read off a file
/// written in each of `dirs`, after waiting for each clock to tick past it.
///
/// Restored files are stamped with this time. Every input compared after this
/// call returns, if edited later, gets an mtime strictly greater, so cargo's
/// own check catches edits that race with seeding; and every input already
/// on disk is no newer, so it does not make a matching unit stale. Sources
/// and the build dir may sit on different file systems (a network mount, a
/// VM share, coarse timestamps), hence one probe each.
pub(crate) fn file_system_now(dirs: &[&Path]) -> io::Result<SystemTime> {
    let mut earliest: Option<SystemTime> = None;
    for dir in dirs {
        let probe = dir.join(format!(".cargo-seed-clock-{}", std::process::id()));
        let stamp = |i: u32| -> io::Result<SystemTime> {
            fs::write(&probe, i.to_le_bytes())?;
            fs::metadata(&probe)?.modified()
        };
        let result = (|| -> io::Result<SystemTime> {
            let t = stamp(0)?;
            for i in 1.. {
                if stamp(i)? > t {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(t)
        })();
        let _ = fs::remove_file(&probe);
        let t = result?;
        earliest = Some(earliest.map_or(t, |e: SystemTime| e.min(t)));
    }
    Ok(earliest.unwrap_or_else(SystemTime::now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::inputs::tests::roots;

    /// A verdict as the summary words it: reasons are compared as the user
    /// reads them.
    fn rendered(v: &Verdict) -> String {
        match v {
            Verdict::Reuse => "reuse".to_owned(),
            Verdict::Rebuild(why) => why.to_string(),
        }
    }
    use crate::rustc::toolchain::Toolchain;
    use crate::snapshot::manifest::{Blob, Input, Inputs, Unit, SCHEMA};

    fn unit(id: &str, check: Check, deps: &[&str]) -> Unit {
        Unit {
            id: id.into(),
            name: format!("lib {id}"),
            kind: UnitKind::Compile,
            host: false,
            package_id: None,
            blob: Blob {
                sha256: String::new(),
                size: 0,
                unpacked: 0,
            },
            deps: deps.iter().map(|d| (*d).into()).collect(),
            check,
            baked: vec![],
            fingerprint: None,
            src_path: None,
            rustc: None,
            path_values: Vec::new(),
        }
    }

    fn manifest(units: Vec<Unit>) -> Manifest {
        Manifest {
            schema: SCHEMA,
            commit: String::new(),
            created: 0,
            toolchain: Toolchain {
                verbose_version: String::new(),
                release: String::new(),
                host: String::new(),
            },
            target: String::new(),
            cross: false,
            profile: "dev".into(),
            profile_dir: "debug".into(),
            layout: crate::cargo::layout::Layout::Flat,
            covers: vec![],
            published_with: vec![],
            workspace_root: "/ci".into(),
            cargo_home: "/ci/.cargo".into(),
            build_dir: "/ci/target".into(),
            dirty: false,
            libc: None,
            native_cpu: false,
            rustc_wrapper: None,
            build_flags: None,
            repository_root: None,
            units,
            withheld: vec![],
        }
    }

    #[test]
    fn content_decides_and_rebuilds_spread_to_dependents() {
        let ws = tempfile::tempdir().unwrap();
        let roots = roots(ws.path());
        fs::create_dir_all(ws.path().join("a/src")).unwrap();
        fs::write(ws.path().join("a/src/lib.rs"), "pub fn a() {}").unwrap();
        let recorded = digest_path(&ws.path().join("a/src/lib.rs"), &roots).unwrap();
        let inputs = |sha: Option<String>| {
            Check::Inputs(Inputs {
                base: Base::Workspace,
                package_root: "a".into(),
                files: vec![Input {
                    base: Base::Package,
                    path: "src/lib.rs".into(),
                    sha256: sha,
                }],
            })
        };
        let m = manifest(vec![
            unit("reg", Check::None, &[]),
            unit("a", inputs(recorded.clone()), &["reg"]),
            unit("bin", Check::None, &["a"]),
        ]);
        let v = evaluate(&m, &roots, BTreeMap::new());
        assert!(v.values().all(|v| *v == Verdict::Reuse), "{v:?}");

        // Same content, any mtime: still reused.
        let lib = ws.path().join("a/src/lib.rs");
        for secs in [1, 2_000_000_000] {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            fs::File::options()
                .write(true)
                .open(&lib)
                .unwrap()
                .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
                .unwrap();
            assert_eq!(fs::metadata(&lib).unwrap().modified().unwrap(), t);
            let v = evaluate(&m, &roots, BTreeMap::new());
            assert!(
                v.values().all(|v| *v == Verdict::Reuse),
                "mtime {t:?}: {v:?}"
            );
        }

        // Other content: rebuilt, and so is everything above it, but not
        // what is below.
        fs::write(ws.path().join("a/src/lib.rs"), "pub fn a() { changed() }").unwrap();
        let v = evaluate(&m, &roots, BTreeMap::new());
        assert_eq!(v["reg"], Verdict::Reuse);
        assert_eq!(rendered(&v["a"]), "src/lib.rs changed");
        assert!(rendered(&v["bin"]).contains("lib a"));

        fs::remove_file(ws.path().join("a/src/lib.rs")).unwrap();
        assert_eq!(
            rendered(&evaluate(&m, &roots, BTreeMap::new())["a"]),
            "src/lib.rs was removed"
        );
    }

    #[test]
    fn unknown_dependencies_and_unverifiable_units_rebuild() {
        let m = manifest(vec![
            unit("x", Check::None, &["gone"]),
            unit(
                "y",
                Check::Unverifiable {
                    reason: "why".into(),
                },
                &[],
            ),
        ]);
        let v = evaluate(&m, &roots(Path::new("/nonexistent")), BTreeMap::new());
        assert!(rendered(&v["x"]).contains("not in the snapshot"));
        assert_eq!(rendered(&v["y"]), "why");
    }

    #[test]
    fn clock_probe_is_not_in_the_future() {
        let d = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let t = file_system_now(&[d.path(), other.path()]).unwrap();
        assert!(t <= SystemTime::now());
        fs::write(d.path().join("later"), "x").unwrap();
        assert!(
            fs::metadata(d.path().join("later"))
                .unwrap()
                .modified()
                .unwrap()
                > t
        );
    }
}
