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
    // Every field by name: a field added to `Manifest` does not compile
    // until it has a rule here.
    let Manifest {
        schema,
        commit: its_commit,
        // Only shown (`list`), as a date.
        created: _,
        toolchain,
        target,
        cross,
        profile,
        profile_dir,
        layout,
        covers,
        published_with,
        workspace_root,
        cargo_home,
        build_dir,
        repository_root,
        // Flags, only shown or compared.
        dirty: _,
        libc,
        native_cpu: _,
        // Compared with this cargo-seed's scheme; any other is not used.
        rustc_wrapper: _,
        build_flags,
        units,
        withheld,
    } = m;
    let reads = crate::snapshot::manifest::READS;
    if !reads.contains(schema) {
        return Err(invalid(format!(
            "manifest schema {} (this cargo-seed reads {} to {})",
            schema,
            reads.start(),
            reads.end()
        )));
    }
    if *schema < 3 && *layout != crate::cargo::layout::Layout::Flat {
        return Err(invalid("a schema 2 manifest names a build-dir layout"));
    }
    if its_commit != commit {
        return Err(invalid(format!(
            "it says commit {} but is stored under commit {commit}",
            shown(its_commit)
        )));
    }
    if m.variant() != variant {
        return Err(invalid(format!(
            "it describes `{}` but is stored as `{variant}`",
            shown(&m.variant())
        )));
    }
    let crate::rustc::toolchain::Toolchain {
        verbose_version,
        release,
        host,
    } = toolchain;
    for (what, value) in [
        ("target", target.as_str()),
        ("profile", profile.as_str()),
        ("rustc version", verbose_version.as_str()),
        ("rustc release", release.as_str()),
        ("host", host.as_str()),
        ("C library", libc.as_deref().unwrap_or("")),
    ] {
        text(what, value, true)?;
    }
    if covers.len() > MAX_COVERS {
        return Err(invalid(format!(
            "it names {} covered commands (at most {MAX_COVERS})",
            covers.len()
        )));
    }
    for cover in covers {
        text("covered command", cover, false)?;
    }
    if published_with.len() > MAX_COVERS {
        return Err(invalid(format!(
            "it names {} snapshots published with it (at most {MAX_COVERS})",
            published_with.len()
        )));
    }
    for sibling in published_with {
        plain_name("profile published with it", &sibling.profile)?;
        if let Some(target) = &sibling.target {
            plain_name("target published with it", target)?;
        }
    }
    if let Some(crate::cargo::flags::BuildFlags { rustflags, linker }) = build_flags {
        if rustflags.len() > MAX_RUSTFLAGS {
            return Err(invalid(format!(
                "it names {} rustflags (at most {MAX_RUSTFLAGS})",
                rustflags.len()
            )));
        }
        for flag in rustflags {
            text("rustflag", flag, false)?;
        }
        text("linker", linker.as_deref().unwrap_or(""), false)?;
    }
    if *profile_dir != crate::cargo::workspace::profile_dir_name(profile) {
        return Err(invalid(format!(
            "its profile directory `{}` is not the one of profile `{}`",
            shown(profile_dir),
            shown(profile)
        )));
    }
    for (what, path) in [
        ("workspace root", workspace_root),
        ("CARGO_HOME", cargo_home),
        ("build dir", build_dir),
    ] {
        absolute(what, path)?;
    }
    if let Some(repository) = repository_root {
        absolute("repository root", repository)?;
        if !workspace_root.starts_with(repository) {
            return Err(invalid(
                "the workspace root is not inside the repository root",
            ));
        }
    }

    let mut ids = HashSet::new();
    // Files under deps/ and examples/ belong to a unit by their hash suffix,
    // so two units with one hash could write each other's files.
    let mut hashes = HashMap::new();
    if *cross {
        plain_name("target", target)?;
    }
    for unit in units {
        unit::unit(m, unit, &mut ids, &mut hashes)?;
    }
    // Withheld units are only named in messages.
    for w in withheld {
        unit::withheld(w)?;
    }
    Ok(())
}
