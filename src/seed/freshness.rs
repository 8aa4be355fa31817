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
//!
//! # Every reason a unit is not reused
//!
//! A unit's verdict is decided here, in two passes: [`judge`] settles what
//! this machine's paths and environment rule out before any file is read,
//! then [`evaluate`] compares the recorded inputs of the rest and spreads
//! every rebuild to the units above it. Two reasons are about the snapshot
//! rather than a unit's verdict and are told where the verdicts are told
//! (`seed/plan`). Each [`Reason`] (`seed/reason`), where it is decided, and
//! what publish recorded for it (`snapshot/manifest` field, filled in
//! `publish/check` and `publish/plan`):
//!
//! | `Reason` | decided in | from what publish recorded |
//! |---|---|---|
//! | `OutsidePathPackageMoved` | [`judge`] | `Unit::package_id` (a path package) and `src_path` under a directory that moved here |
//! | `UncheckedMember` | [`judge`] | `Check::None` on a unit whose package is named like a member of this workspace |
//! | `Unrelocatable` | [`judge`], from `relocate::plan` | `Unit::fingerprint` (CI's fingerprint fields), which cannot be recomputed for this machine's paths |
//! | `Env` | [`judge`], from `secrets::local_values` | `Unit::fingerprint`'s `env`: the watched variables, with CI's values (or their digests) |
//! | `BakedPath` | [`judge`] | `Unit::baked`: an `env!` path under the workspace or `CARGO_HOME`, which moved here |
//! | `Unverifiable` | [`evaluate`] | `Check::Unverifiable`: publish could not record every input, in its own words |
//! | `Input` (changed, added, removed, outside the repository, unreadable) | [`evaluate`] (`compare`) | `Check::Inputs`: every file of the unit's dep-info (and `rerun-if-changed` path), with its sha256 or its absence |
//! | `InputsTooLarge` | [`evaluate`] (`compare`), over the seed's [`Budget`] | `Check::Inputs` |
//! | `PackageOutsideRepository` | [`evaluate`] (`compare`) | `Inputs::base`: a root this checkout does not have |
//! | `PackageFile` (added, removed, changed, unreadable, changing while read) | [`judge`], from `seed/packages` | `Check::PackageFiles`: a path package's file list as cargo lists it for a build script without `rerun-if-changed`, each with its sha256 |
//! | `PackageUnlisted` | [`judge`], from `seed/packages` | `Check::PackageFiles`, where this checkout's list cannot be made by cargo's rules (`include`, a submodule…) |
//! | `MissingDependency` | [`evaluate`] | `Unit::deps`: an id the manifest does not hold |
//! | `Dependency` | [`evaluate`] (`spread`) | `Unit::deps`, leading to a rebuilt unit |
//! | `Withheld` | `seed/plan` (`tally`, `emit_verdicts`) | `Manifest::withheld`: left out of the snapshot, and why |
//! | `Incremental` | `seed/plan` (`incremental_use`, `emit_verdicts`) | `Manifest::rustc_wrapper` and the CI paths (`workspace_root`, `build_dir`, `cargo_home`) |
//!
//! Whatever the table does not cover is cargo's own check, unchanged: a
//! fingerprint field that differs (rustc, flags, features, profile) makes
//! cargo rebuild the restored unit, and the snapshot is only chosen when
//! those match (`snapshot/want`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::cargo::unit_id::UnitId;
use crate::cargo::workspace::Workspace;
use crate::git;
use crate::seed::reason::{Change, Reason};
use crate::seed::relocate::{self, Moves};
use crate::snapshot::inputs::{Budget, Digests, Unchecked};
use crate::snapshot::manifest::{BakedRoot, Base, Check, Manifest, UnitKind};
use crate::snapshot::secrets;

/// Whether a unit may be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Reuse,
    Rebuild(Reason),
}

/// The directories recorded inputs are relative to, here.
fn roots(ws: &Workspace) -> crate::snapshot::inputs::Roots {
    let repository = git::toplevel(&ws.root).ok();
    crate::snapshot::inputs::Roots::new(
        &ws.root,
        repository.as_deref(),
        &ws.cargo_home,
        &ws.build_dir,
    )
}

/// Verdicts for every unit (what differs by content, what cargo reruns for
/// a watched variable whose value here is not CI's, what cannot be reused
/// at this checkout's paths), and how fingerprints are rewritten for them.
pub(crate) fn judge(
    ws: &Workspace,
    manifest: &Manifest,
    notes: &mut Vec<String>,
) -> (BTreeMap<UnitId, Verdict>, Moves, relocate::Plan) {
    let home_moved = manifest.cargo_home != ws.cargo_home;
    let root_moved = manifest.workspace_root != ws.root;
    let repository = git::toplevel(&ws.root).ok();
    let moves = Moves::new(
        manifest,
        &ws.cargo_home,
        &ws.root,
        &ws.build_dir,
        repository.as_deref(),
    );
    // Fingerprints only change for units whose absolute source path lies
    // under a moved directory (registry and git crates under CARGO_HOME,
    // path packages outside the workspace), and for what depends on them.
    let needs_rewrite = manifest.units.iter().any(|u| {
        relocate::hashes_absolute_path(u, &manifest.workspace_root)
            && u.src_path.as_deref().and_then(|s| moves.map(s)).is_some()
    });
    let env = |var: &str| std::env::var_os(var);
    let roots = roots(ws);
    let mut digests = Digests::new(&roots, Budget::SEED);
    // Before the rewrite: a reused build-script run takes this checkout's
    // mtimes into its fingerprint, and its dependents its new hash.
    let packages = super::packages::judge(manifest, &mut digests);
    let plan = if needs_rewrite || !packages.matched.is_empty() {
        relocate::plan_with_packages(manifest, &moves, &env, &packages.matched, needs_rewrite)
    } else {
        relocate::Plan::default()
    };
    if home_moved {
        notes.push(format!(
            "CARGO_HOME differs from the snapshot's ({}): {} fingerprints rewritten for it, {} units cannot be",
            manifest.cargo_home.display(),
            plan.rewrites.len(),
            plan.failed.len()
        ));
    }
    let members: HashSet<&str> = ws.members.iter().map(String::as_str).collect();
    let mut decided = BTreeMap::new();
    for unit in &manifest.units {
        let baked = unit.baked.iter().find(|b| match b.under {
            BakedRoot::Workspace => root_moved,
            BakedRoot::CargoHome => home_moved,
        });
        // Whatever the manifest says a unit is, one named like a package of
        // this workspace is only restored after its sources are compared.
        let unchecked_member = matches!(unit.check, Check::None)
            && unit.kind != UnitKind::Incremental
            && unit
                .id
                .package()
                .is_some_and(|package| members.contains(package));
        // Cargo compares the watched values itself, but a unit it would rerun
        // is not worth fetching, and the summary should say why.
        let env_differs = unit
            .fingerprint
            .as_ref()
            .and_then(|f| secrets::local_values(&f.env, &env).err());
        // Cargo hashes the absolute directory of a path package outside the
        // workspace into its unit hash (and so into its file names and
        // `-C metadata`, and its dependents'): elsewhere it is another unit.
        let outside_moved = unit
            .package_id
            .as_deref()
            .is_some_and(crate::cargo::is_path_package)
            && relocate::hashes_absolute_path(unit, &manifest.workspace_root)
            && unit
                .src_path
                .as_deref()
                .and_then(|s| moves.map(s))
                .is_some_and(|here| Some(here.as_path()) != unit.src_path.as_deref());
        let reason = if outside_moved {
            Reason::OutsidePathPackageMoved
        } else if unchecked_member {
            Reason::UncheckedMember
        } else if let Some(why) = plan.failed.get(&unit.id) {
            Reason::Unrelocatable { why: why.clone() }
        } else if let Some(why) = env_differs {
            Reason::Env { why }
        } else if let Some(b) = baked {
            Reason::BakedPath { var: b.var.clone() }
        } else {
            continue;
        };
        decided.insert(unit.id.clone(), reason);
    }
    for (id, reason) in packages.rebuilt {
        decided.entry(id).or_insert(reason);
    }
    let verdicts = evaluate(manifest, &mut digests, decided, &packages.matched);
    (verdicts, moves, plan)
}

/// Compares every unit's recorded inputs with the files here, then spreads
/// "rebuild" to every unit that depends on a rebuilt (or missing) one.
/// `decided` are units already known to be rebuilt (for reasons of this
/// machine's paths and environment), which are not compared.
/// Incremental state is always reused: rustc checks it itself.
///
/// Linear in the manifest: each unit is judged once, each input digested
/// once per path ([`Digests`]), each dependency edge followed once.
///
/// `packages` are the build-script runs whose package files matched CI's
/// (`seed/packages`); any other unit recording its package's files is
/// rebuilt.
pub(crate) fn evaluate(
    manifest: &Manifest,
    digests: &mut Digests,
    mut decided: BTreeMap<UnitId, Reason>,
    packages: &BTreeMap<UnitId, String>,
) -> BTreeMap<UnitId, Verdict> {
    let units = &manifest.units;
    let mut verdicts: Vec<Verdict> = units
        .iter()
        .map(|unit| {
            if let Some(why) = decided.remove(&unit.id) {
                return Verdict::Rebuild(why);
            }
            match &unit.check {
                Check::None => Verdict::Reuse,
                Check::Unverifiable { reason } => Verdict::Rebuild(Reason::Unverifiable {
                    why: reason.clone(),
                }),
                Check::Inputs(inputs) => {
                    compare(inputs, digests).map_or(Verdict::Reuse, Verdict::Rebuild)
                }
                Check::PackageFiles(_) if packages.contains_key(&unit.id) => Verdict::Reuse,
                Check::PackageFiles(_) => Verdict::Rebuild(Reason::PackageUnlisted {
                    why: "its files were not compared".to_owned(),
                }),
            }
        })
        .collect();
    let index: HashMap<&str, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id.as_str(), i))
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
    for (i, unit) in units.iter().enumerate() {
        if unit.kind == UnitKind::Incremental {
            continue;
        }
        for dep in &unit.deps {
            match index.get(dep.as_str()) {
                Some(&d) => dependents[d].push(i),
                None if verdicts[i] == Verdict::Reuse => {
                    verdicts[i] = Verdict::Rebuild(Reason::MissingDependency { id: dep.clone() });
                }
                None => {}
            }
        }
    }
    spread(&mut verdicts, |i| &dependents[i], |i| &units[i].name);
    units
        .iter()
        .zip(verdicts)
        .map(|(u, v)| (u.id.clone(), v))
        .collect()
}

/// Marks rebuilt every unit that depends, directly or through others, on
/// one already rebuilt in `verdicts`, naming the dependency that made it so.
/// A worklist: `dependents` is asked once per rebuilt unit, so the work is
/// linear in units and edges whatever order the units are listed in (a
/// manifest lists them by id, not by dependency) and even if they form a
/// cycle.
fn spread<'g>(
    verdicts: &mut [Verdict],
    dependents: impl Fn(usize) -> &'g [usize],
    name: impl Fn(usize) -> &'g str,
) {
    let mut work: Vec<usize> = (0..verdicts.len())
        .filter(|&i| verdicts[i] != Verdict::Reuse)
        .collect();
    while let Some(i) = work.pop() {
        for &d in dependents(i) {
            if verdicts[d] == Verdict::Reuse {
                verdicts[d] = Verdict::Rebuild(Reason::Dependency {
                    name: name(i).to_owned(),
                });
                work.push(d);
            }
        }
    }
}

/// How the files here differ from `inputs`, or `None` if none does.
fn compare(inputs: &crate::snapshot::manifest::Inputs, digests: &mut Digests) -> Option<Reason> {
    let roots = digests.roots();
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
        match digests.digest(&local) {
            Ok(d) if d == input.sha256 => None,
            Ok(None) => differs(Change::Removed),
            Ok(Some(_)) if input.sha256.is_none() => differs(Change::Added),
            Ok(Some(_)) => differs(Change::Changed),
            Err(Unchecked::Unreadable(error)) => differs(Change::Unreadable { error }),
            // Not compared, so never reused.
            Err(Unchecked::OverBudget) => Some(Reason::InputsTooLarge {
                path: input.path.clone(),
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
    use crate::snapshot::inputs::{digest_path, Budget, Roots};

    /// Every verdict, with digests made afresh (as each seed makes them).
    fn evaluate(
        m: &Manifest,
        roots: &Roots,
        decided: BTreeMap<UnitId, Reason>,
    ) -> BTreeMap<UnitId, Verdict> {
        super::evaluate(
            m,
            &mut Digests::new(roots, Budget::SEED),
            decided,
            &BTreeMap::new(),
        )
    }

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

    /// `n` units in a chain, each depending on the one listed after it
    /// (the order a manifest's ids may well have), the last unverifiable.
    fn backward_chain(n: usize) -> Manifest {
        let ids: Vec<String> = (0..n).map(|i| format!("u{i}")).collect();
        manifest(
            (0..n)
                .map(|i| match ids.get(i + 1) {
                    Some(next) => unit(&ids[i], Check::None, &[next]),
                    None => unit(
                        &ids[i],
                        Check::Unverifiable {
                            reason: "why".into(),
                        },
                        &[],
                    ),
                })
                .collect(),
        )
    }

    #[test]
    fn a_rebuild_spreads_through_a_chain_listed_backwards_asking_each_unit_once() {
        for n in [1000, 2000] {
            // The dependents of unit i are [i - 1]: a rebuild has to climb
            // against the order the units are listed in.
            let dependents: Vec<Vec<usize>> = (0..n)
                .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
                .collect();
            let mut verdicts = vec![Verdict::Reuse; n];
            verdicts[n - 1] = Verdict::Rebuild(Reason::UncheckedMember);
            let asked = std::cell::Cell::new(0);
            spread(
                &mut verdicts,
                |i| {
                    asked.set(asked.get() + 1);
                    &dependents[i]
                },
                |_| "lib u",
            );
            assert!(verdicts.iter().all(|v| *v != Verdict::Reuse));
            assert_eq!(asked.get(), n, "dependents asked for, of {n} units");
        }
        let n = 2000;
        let v = evaluate(
            &backward_chain(n),
            &roots(Path::new("/nonexistent")),
            BTreeMap::new(),
        );
        assert_eq!(rendered(&v["u1999"]), "why");
        for i in 0..n - 1 {
            assert_eq!(
                rendered(&v[format!("u{i}").as_str()]),
                format!("depends on lib u{}, which is rebuilt", i + 1)
            );
        }
    }

    /// A directory `reg` of `files` files of 1 KiB in a new workspace.
    fn workspace_with_directory(files: usize) -> tempfile::TempDir {
        let ws = tempfile::tempdir().unwrap();
        fs::create_dir(ws.path().join("reg")).unwrap();
        for f in 0..files {
            fs::write(ws.path().join(format!("reg/f{f}")), [f as u8; 1024]).unwrap();
        }
        ws
    }

    fn naming(paths: &[&str], sha256: &Option<String>) -> Check {
        Check::Inputs(Inputs {
            base: Base::Workspace,
            package_root: "".into(),
            files: paths
                .iter()
                .map(|p| Input {
                    base: Base::Workspace,
                    path: p.into(),
                    sha256: sha256.clone(),
                })
                .collect(),
        })
    }

    #[test]
    fn a_directory_many_units_name_is_walked_and_read_once() {
        let ws = workspace_with_directory(10);
        let roots = roots(ws.path());
        #[cfg(unix)]
        std::os::unix::fs::symlink("reg", ws.path().join("alias")).unwrap();
        #[cfg(not(unix))]
        fs::write(ws.path().join("alias"), "").unwrap();
        let recorded = digest_path(&ws.path().join("reg"), &roots).unwrap();
        let ids: Vec<String> = (0..50).map(|i| format!("u{i}")).collect();
        let units = ids
            .iter()
            .map(|id| {
                unit(
                    id,
                    naming(&["reg", "alias"][..1 + usize::from(cfg!(unix))], &recorded),
                    &[],
                )
            })
            .collect();
        let mut digests = Digests::new(&roots, Budget::SEED);
        let v = super::evaluate(
            &manifest(units),
            &mut digests,
            BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert!(v.values().all(|v| *v == Verdict::Reuse), "{v:?}");
        assert_eq!(
            digests.work(),
            crate::snapshot::inputs::Work {
                entries: 10,
                bytes: 10 << 10
            },
            "50 units name the directory (and a link to it)"
        );
    }

    #[test]
    fn an_input_past_the_budget_is_not_compared_and_its_unit_not_reused() {
        let ws = workspace_with_directory(10);
        fs::write(ws.path().join("big"), vec![0u8; 64 << 10]).unwrap();
        let roots = roots(ws.path());
        let dir = digest_path(&ws.path().join("reg"), &roots).unwrap();
        let big = digest_path(&ws.path().join("big"), &roots).unwrap();
        let m = manifest(vec![
            unit("dir", naming(&["reg"], &dir), &[]),
            unit("big", naming(&["big"], &big), &[]),
            unit("above", Check::None, &["dir"]),
        ]);
        let too_large = |path: &str| Verdict::Rebuild(Reason::InputsTooLarge { path: path.into() });
        let limits = |directory_entries, entries, bytes| Budget {
            directory_entries,
            entries,
            bytes,
        };
        // The directory holds more entries than one may, than all may, and
        // more bytes than may be read; then `big` alone fits, but not after
        // the directory's 10 KiB.
        let (reused, dir_too_large) = (Verdict::Reuse, too_large("reg"));
        for (budget, expect_dir, expect_big) in [
            (limits(9, 100, 1 << 20), &dir_too_large, &reused),
            (limits(100, 9, 1 << 20), &dir_too_large, &reused),
            (
                limits(100, 100, 9 * 1024),
                &dir_too_large,
                &too_large("big"),
            ),
            (limits(100, 100, 73 << 10), &reused, &too_large("big")),
        ] {
            let v = super::evaluate(
                &m,
                &mut Digests::new(&roots, budget),
                BTreeMap::new(),
                &BTreeMap::new(),
            );
            assert_eq!(v["dir"], *expect_dir, "{budget:?}");
            assert_eq!(v["big"], *expect_big, "{budget:?}");
            if *expect_dir != reused {
                assert!(rendered(&v["above"]).contains("lib dir"), "{budget:?}");
            }
        }
        // Within the budget, both are reused.
        let v = super::evaluate(
            &m,
            &mut Digests::new(&roots, limits(10, 10, (64 << 10) + 10 * 1024)),
            BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert!(v.values().all(|v| *v == Verdict::Reuse), "{v:?}");
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
