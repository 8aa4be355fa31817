//! Package sources that cargo has not unpacked on this machine yet.
//!
//! A unit of a registry or git package can carry files cargo tracks (a build
//! script's `rerun-if-changed`: `anyhow`, `serde`, `libc`…), and the seed
//! compares them by content. Under a `CARGO_HOME` that has never built the
//! workspace, cargo unpacks those sources only when it builds, after the
//! seed: every such file would look removed, and the unit and everything
//! depending on it would be rebuilt. So the seed asks cargo to unpack them
//! first, as the build would.

use std::path::Path;
use std::process::Command;

use crate::cargo::workspace::{cargo_exe, Workspace};
use crate::snapshot::manifest::{Base, Check, Manifest};

/// Runs `cargo fetch --locked` in the workspace when a package whose files
/// the manifest records under `CARGO_HOME` has no directory here; says what
/// it did, or nothing when every source is here. `--locked`: the seed never
/// changes `Cargo.lock`; when the lock file is out of date the fetch fails,
/// and those units are rebuilt, as the note says.
pub(super) fn unpack_missing(ws: &Workspace, manifest: &Manifest) -> Option<String> {
    let missing = missing_packages(&ws.cargo_home, manifest);
    if missing == 0 {
        return None;
    }
    let out = Command::new(cargo_exe())
        .args(["fetch", "--locked", "--quiet"])
        .current_dir(&ws.root)
        .output();
    Some(match out {
        Ok(out) if out.status.success() => format!(
            "the sources of {missing} packages were not unpacked in CARGO_HOME yet: \
             `cargo fetch` unpacked them, so that their files are compared"
        ),
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().find(|l| l.contains("error")).unwrap_or("");
            format!(
                "the sources of {missing} packages are not in CARGO_HOME and `cargo fetch --locked` \
                 failed ({}): those packages are rebuilt",
                first.trim()
            )
        }
        Err(e) => format!(
            "the sources of {missing} packages are not in CARGO_HOME and cargo could not be run \
             ({e}): those packages are rebuilt"
        ),
    })
}

/// How many packages the manifest records files of under `CARGO_HOME` that
/// have no directory under `cargo_home`.
fn missing_packages(cargo_home: &Path, manifest: &Manifest) -> usize {
    let mut roots: Vec<&Path> = manifest
        .units
        .iter()
        .filter_map(|u| match &u.check {
            Check::Inputs(i) if i.base == Base::CargoHome => Some(i.package_root.as_path()),
            _ => None,
        })
        .collect();
    roots.sort();
    roots.dedup();
    roots
        .into_iter()
        .filter(|rel| !cargo_home.join(rel).is_dir())
        .count()
}
