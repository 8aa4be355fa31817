//! The verdict on the build-script runs that cargo judges by their
//! package's newest mtime (scripts that print no `rerun-if-changed`):
//! reused only when the package's file list here is the one CI recorded
//! and every file has CI's digest, and then with the string cargo will
//! compute from this checkout's mtimes, which the fingerprint rewrite
//! (`seed/relocate`) gives the unit and, through its hash, its dependents.
//!
//! It must never let such a unit be reused without both comparisons.

use std::collections::BTreeMap;
use std::fs;

use super::reason::{Change, Reason};
use crate::cargo::unit_id::UnitId;
use crate::snapshot::inputs::Digests;
use crate::snapshot::manifest::{Base, Check, Manifest};
use crate::snapshot::package::{self, Differs};

/// The judged units: those whose files match, with the string cargo will
/// compute here, and those left to cargo, with why.
#[derive(Debug, Default)]
pub(crate) struct Packages {
    pub matched: BTreeMap<UnitId, String>,
    pub rebuilt: BTreeMap<UnitId, Reason>,
}

/// Compares every unit of `manifest` that records its package's files.
///
/// Every package's mtimes are read before any digest is taken: `digests`
/// remembers each file's digest for the whole seed, and two units can
/// share a package (a host and a target run), so a digest taken for one
/// before the other read its mtimes could be of contents those mtimes no
/// longer describe. `digests` must be fresh: nothing read before this.
pub(crate) fn judge(manifest: &Manifest, digests: &mut Digests) -> Packages {
    let mut out = Packages::default();
    let mut listed = Vec::new();
    for unit in &manifest.units {
        let Check::PackageFiles(recorded) = &unit.check else {
            continue;
        };
        let Some(base) = digests.roots().dir(recorded.base) else {
            out.rebuilt
                .insert(unit.id.clone(), Reason::PackageOutsideRepository);
            continue;
        };
        let root = base.join(&recorded.package_root);
        // The listing runs git in the package's directory, which reads the
        // repository it finds there: never one a blob could have put in
        // the build dir.
        if let Some(build_dir) = digests.roots().dir(Base::BuildDir) {
            let inside = fs::canonicalize(&root)
                .ok()
                .zip(fs::canonicalize(build_dir).ok())
                .is_none_or(|(r, b)| r.starts_with(b));
            if inside {
                let why = "its package directory is not a directory of this checkout outside the build dir";
                out.rebuilt.insert(
                    unit.id.clone(),
                    Reason::PackageUnlisted {
                        why: why.to_owned(),
                    },
                );
                continue;
            }
        }
        match package::list_here(&root, recorded) {
            Ok(here) => listed.push((unit, recorded, root, here)),
            Err(differs) => {
                out.rebuilt.insert(unit.id.clone(), reason(differs));
            }
        }
    }
    for (unit, recorded, root, here) in listed {
        match package::compare_listed(&root, recorded, here, digests) {
            Ok(string) => {
                out.matched.insert(unit.id.clone(), string);
            }
            Err(differs) => {
                out.rebuilt.insert(unit.id.clone(), reason(differs));
            }
        }
    }
    out
}

fn reason(differs: Differs) -> Reason {
    let file = |path, change| Reason::PackageFile { path, change };
    match differs {
        Differs::Unlisted(why) => Reason::PackageUnlisted {
            why: why.to_string(),
        },
        Differs::Added(path) => file(path, Change::Added),
        Differs::Removed(path) => file(path, Change::Removed),
        Differs::Changed(path) => file(path, Change::Changed),
        Differs::Moving(path) => file(path, Change::Changing),
        Differs::Unreadable(path, error) => file(path, Change::Unreadable { error }),
        Differs::OverBudget(path) => Reason::InputsTooLarge { path },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::inputs::{Budget, Roots};
    use crate::snapshot::manifest::{PackageFile, PackageFiles};

    #[test]
    fn a_package_directory_in_the_build_dir_is_never_listed() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path();
        // What a blob could have left in the build dir: a repository.
        let planted = ws.join("target/debug/build/x-1/out");
        std::fs::create_dir_all(planted.join(".git")).unwrap();
        std::fs::write(planted.join("f"), "").unwrap();
        let roots = Roots::new(ws, None, &ws.join("home"), &ws.join("target"));
        let mut m: Manifest = serde_json::from_value(serde_json::json!({
            "schema": crate::snapshot::manifest::SCHEMA, "commit": "c", "created": 0,
            "toolchain": {"verbose_version": "", "release": "", "host": ""},
            "target": "", "profile": "dev", "profile_dir": "debug",
            "workspace_root": "/ci/ws", "cargo_home": "/root/.cargo",
            "build_dir": "/ci/ws/target", "dirty": false, "units": [{
                "id": "x-2", "name": "run-build-script x", "kind": "run-build-script",
                "blob": {"sha256": "0".repeat(64), "size": 1, "unpacked": 1, "files": 1},
                "check": "none",
            }],
        }))
        .unwrap();
        m.units[0].check = Check::PackageFiles(PackageFiles {
            base: Base::Workspace,
            package_root: "target/debug/build/x-1/out".into(),
            files: vec![PackageFile {
                path: "f".into(),
                sha256: "0".repeat(64),
            }],
        });
        let judged = judge(&m, &mut Digests::new(&roots, Budget::SEED));
        assert!(
            matches!(
                judged.rebuilt.values().next(),
                Some(Reason::PackageUnlisted { why }) if why.contains("build dir")
            ),
            "{judged:?}"
        );
    }
}
