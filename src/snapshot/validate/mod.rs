//! The border: every field of a manifest read from a store is checked here,
//! before anything is fetched, compared, written or run.
//!
//! A store is untrusted input. Whoever can write to it chooses every byte of
//! a manifest, so nothing in one may name a path outside the directories the
//! seed maps to this machine, reuse another unit's files, skip the content
//! check of a workspace unit, or feed a malformed digest to code that builds
//! keys from it. The first violation rejects the whole snapshot with one
//! clear reason; no field is repaired or guessed at.
//!
//! This module must never accept a manifest it has not checked field by
//! field: a new field in [`Manifest`] needs its rule here.
//!
//! The parts: the snapshot-wide fields here, each unit's in `unit`, and the
//! rules for single fields in `field`.

use std::collections::{HashMap, HashSet};

use crate::snapshot::manifest::Manifest;

mod field;
#[cfg(test)]
mod tests;
mod unit;

use field::{absolute, invalid, plain_name, shown, text};

pub use field::Invalid;

/// Covered commands: a CI job runs a handful.
const MAX_COVERS: usize = 64;
/// Rustflags are compared, never passed on; a long list is still a sign of
/// a hostile manifest.
const MAX_RUSTFLAGS: usize = 1024;

/// Checks every field of `m`, which the store holds under
/// `snapshots/<commit>/<variant>.json`.
pub fn manifest(m: &Manifest, commit: &str, variant: &str) -> Result<(), Invalid> {
    let reads = crate::snapshot::manifest::READS;
    if !reads.contains(&m.schema) {
        return Err(invalid(format!(
            "manifest schema {} (this cargo-seed reads {} to {})",
            m.schema,
            reads.start(),
            reads.end()
        )));
    }
    if m.schema < 3 && m.layout != crate::cargo::layout::Layout::Flat {
        return Err(invalid("a schema 2 manifest names a build-dir layout"));
    }
    if m.commit != commit {
        return Err(invalid(format!(
            "it says commit {} but is stored under commit {commit}",
            shown(&m.commit)
        )));
    }
    if m.variant() != variant {
        return Err(invalid(format!(
            "it describes `{}` but is stored as `{variant}`",
            shown(&m.variant())
        )));
    }
    for (what, value) in [
        ("target", m.target.as_str()),
        ("profile", m.profile.as_str()),
        ("rustc version", m.toolchain.verbose_version.as_str()),
        ("rustc release", m.toolchain.release.as_str()),
        ("host", m.toolchain.host.as_str()),
        ("C library", m.libc.as_deref().unwrap_or("")),
    ] {
        text(what, value, true)?;
    }
    if m.covers.len() > MAX_COVERS {
        return Err(invalid(format!(
            "it names {} covered commands (at most {MAX_COVERS})",
            m.covers.len()
        )));
    }
    for cover in &m.covers {
        text("covered command", cover, false)?;
    }
    if m.published_with.len() > MAX_COVERS {
        return Err(invalid(format!(
            "it names {} snapshots published with it (at most {MAX_COVERS})",
            m.published_with.len()
        )));
    }
    for sibling in &m.published_with {
        plain_name("profile published with it", &sibling.profile)?;
        if let Some(target) = &sibling.target {
            plain_name("target published with it", target)?;
        }
    }
    if let Some(flags) = &m.build_flags {
        if flags.rustflags.len() > MAX_RUSTFLAGS {
            return Err(invalid(format!(
                "it names {} rustflags (at most {MAX_RUSTFLAGS})",
                flags.rustflags.len()
            )));
        }
        for flag in &flags.rustflags {
            text("rustflag", flag, false)?;
        }
        text("linker", flags.linker.as_deref().unwrap_or(""), false)?;
    }
    if m.profile_dir != crate::cargo::workspace::profile_dir_name(&m.profile) {
        return Err(invalid(format!(
            "its profile directory `{}` is not the one of profile `{}`",
            shown(&m.profile_dir),
            shown(&m.profile)
        )));
    }
    for (what, path) in [
        ("workspace root", &m.workspace_root),
        ("CARGO_HOME", &m.cargo_home),
        ("build dir", &m.build_dir),
    ] {
        absolute(what, path)?;
    }
    if let Some(repository) = &m.repository_root {
        absolute("repository root", repository)?;
        if !m.workspace_root.starts_with(repository) {
            return Err(invalid(
                "the workspace root is not inside the repository root",
            ));
        }
    }

    let mut ids = HashSet::new();
    // Files under deps/ and examples/ belong to a unit by their hash suffix,
    // so two units with one hash could write each other's files.
    let mut hashes = HashMap::new();
    if m.cross {
        plain_name("target", &m.target)?;
    }
    for unit in &m.units {
        unit::unit(m, unit, &mut ids, &mut hashes)?;
    }
    // Withheld units are only named in messages.
    for w in &m.withheld {
        unit::withheld(w)?;
    }
    Ok(())
}
