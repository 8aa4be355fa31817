//! The verdict on the build-script runs that cargo judges by their
//! package's newest mtime (scripts that print no `rerun-if-changed`):
//! reused only when the package's file list here is the one CI recorded
//! and every file has CI's digest, and then with the string cargo will
//! compute from this checkout's mtimes, which the fingerprint rewrite
//! (`seed/relocate`) gives the unit and, through its hash, its dependents.
//!
//! It must never let such a unit be reused without both comparisons.

use std::collections::BTreeMap;

use super::reason::{Change, Reason};
use crate::cargo::unit_id::UnitId;
use crate::snapshot::inputs::Digests;
use crate::snapshot::manifest::{Check, Manifest};
use crate::snapshot::package::{self, Differs};

/// The judged units: those whose files match, with the string cargo will
/// compute here, and those left to cargo, with why.
#[derive(Debug, Default)]
pub(crate) struct Packages {
    pub matched: BTreeMap<UnitId, String>,
    pub rebuilt: BTreeMap<UnitId, Reason>,
}

/// Compares every unit of `manifest` that records its package's files.
pub(crate) fn judge(manifest: &Manifest, digests: &mut Digests) -> Packages {
    let mut out = Packages::default();
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
        match package::compare(&root, recorded, digests) {
            Ok(here) => {
                out.matched.insert(unit.id.clone(), here);
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
