//! The rules for one unit of a manifest (and one withheld unit): its id as
//! cargo makes them, the hash suffix that decides which files it owns, its
//! blob, its content check, its recorded rustc command and path values.
//!
//! It must never accept a workspace unit without its content check, nor two
//! units that would own the same files.

use crate::cargo::unit_id;
use std::collections::{HashMap, HashSet};

use super::field::{
    absolute, digest, invalid, is_env_name, plain_name, relative, shown, text, Invalid,
};
use crate::cargo::is_path_package;
use crate::rustc::wrapper::Invocation;
use crate::snapshot::manifest::{
    BakedPath, Base, Blob, Check, EnvValue, FingerprintRecord, Manifest, PackageFile, PackageFiles,
    Unit, UnitKind, Withheld, WithheldWhy,
};
use crate::snapshot::package::MAX_FILES;
use std::path::Path;

/// Path query values per unit: one per crate the unit loads, and one.
const MAX_PATH_VALUES: usize = 4096;
/// How far a blob may expand: a tar of build outputs compresses a few times,
/// a decompression bomb thousands of times. The slack admits small blobs
/// whose tar headers alone outweigh their compressed size.
const MAX_RATIO: u64 = 200;
const RATIO_SLACK: u64 = 1 << 20;

/// Checks `unit` of `m`; `ids` and `hashes` hold what the units before it
/// claimed.
pub(super) fn unit<'m>(
    m: &'m Manifest,
    unit: &'m Unit,
    ids: &mut HashSet<&'m str>,
    hashes: &mut HashMap<&'m str, &'m str>,
) -> Result<(), Invalid> {
    // Every field by name: a field added to `Unit` does not compile until
    // it has a rule here.
    let Unit {
        id,
        name,
        kind,
        host,
        package_id,
        blob,
        deps,
        check: content_check,
        baked,
        fingerprint,
        src_path,
        rustc,
        path_values,
    } = unit;
    unit_id(id, *kind)?;
    if *host && (!m.cross || *kind == UnitKind::Incremental) {
        return Err(invalid(format!(
            "unit `{id}` is placed in the host's directory, which only a cross build's compile and build-script units are"
        )));
    }
    if !ids.insert(id.as_str()) {
        return Err(invalid(format!("unit `{id}` appears twice")));
    }
    if let Some(hash) = id.hash().filter(|_| *kind != UnitKind::Incremental) {
        if let Some(other) = hashes.insert(hash, id.as_str()) {
            return Err(invalid(format!(
                "units `{other}` and `{id}` share the hash {hash}, so they would own the same files"
            )));
        }
    }
    let at = |what: &str| format!("{what} of unit `{id}`");
    text(&at("the name"), name, false)?;
    if let Some(p) = package_id {
        text(&at("the package id"), p, false)?;
    }
    let Blob {
        sha256,
        size,
        unpacked,
    } = blob;
    digest(&at("the blob digest"), sha256)?;
    if *unpacked > size.saturating_mul(MAX_RATIO) + RATIO_SLACK {
        return Err(invalid(format!(
            "the blob of unit `{id}` declares {unpacked} bytes unpacked from {size}: more than {MAX_RATIO} times its size"
        )));
    }
    for dep in deps {
        unit_id(dep, UnitKind::Compile).map_err(|e| invalid(format!("{} (a dependency)", e.0)))?;
    }
    check(id, *kind, package_id.as_deref(), content_check)?;
    crate::snapshot::tracked::crate_root(m, unit).map_err(|e| invalid(e.to_string()))?;
    for BakedPath { var, under: _ } in baked {
        if !is_env_name(var) {
            return Err(invalid(format!(
                "{} names no environment variable",
                at("an env! entry")
            )));
        }
    }
    if let Some(FingerprintRecord {
        file,
        hash,
        // Parsed as cargo's JSON where it is used; a text cargo-seed does
        // not recognise leaves the unit to cargo.
        fields: _,
        env,
    }) = fingerprint
    {
        plain_name(&at("the fingerprint file"), file)?;
        for watched in env {
            if !is_env_name(&watched.var) {
                return Err(invalid(format!(
                    "{} names no environment variable",
                    at("a watched variable")
                )));
            }
            if let EnvValue::Sha256(d) = &watched.value {
                digest(&at("the digest of a watched variable"), d)?;
            }
        }
        if hash.len() != 16 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "{} is not 16 hex digits",
                at("the fingerprint hash")
            )));
        }
    }
    if let Some(src) = src_path {
        absolute(&at("the source path"), src)?;
    }
    if let Some(Invocation {
        cwd,
        args,
        // Replayed only if it is this cargo-seed's scheme.
        scheme: _,
    }) = rustc
    {
        // Replayed in this checkout's root, or for a path package
        // outside the workspace in its directory inside the repository.
        let inside = m
            .repository_root
            .as_ref()
            .is_some_and(|r| cwd.starts_with(r) && absolute("", cwd).is_ok());
        if *cwd != m.workspace_root && !inside {
            return Err(invalid(format!(
                "{} ran outside the workspace root and its repository",
                at("the recorded rustc command")
            )));
        }
        // A toolchain file there would be the store's.
        if cwd.starts_with(&m.build_dir) {
            return Err(invalid(format!(
                "{} ran in the build dir",
                at("the recorded rustc command")
            )));
        }
        for arg in args {
            text(&at("the recorded rustc command"), arg, false)?;
        }
    }
    if path_values.len() > MAX_PATH_VALUES {
        return Err(invalid(format!(
            "{} are more than {MAX_PATH_VALUES}",
            at("the path query values")
        )));
    }
    if crate::rustc::incremental::from_records(path_values).is_none() {
        return Err(invalid(format!(
            "{} are not 32 lowercase hex digits each",
            at("the path query values")
        )));
    }

    Ok(())
}

/// Checks a withheld unit, which is only named in messages.
pub(super) fn withheld(w: &Withheld) -> Result<(), Invalid> {
    unit_id(&w.id, w.kind)?;
    text(
        &format!("the name of withheld unit `{}`", w.id),
        &w.name,
        false,
    )?;
    let var = match &w.why {
        WithheldWhy::Secret { var } => Some(var),
        WithheldWhy::Dependency { on, var } | WithheldWhy::Incremental { of: on, var } => {
            text(
                &format!("the reason of withheld unit `{}`", w.id),
                on,
                false,
            )?;
            var.as_ref()
        }
        WithheldWhy::Unreadable => None,
    };
    if var.is_some_and(|v| !is_env_name(v)) {
        return Err(invalid(format!(
            "withheld unit `{}` names no environment variable",
            w.id
        )));
    }

    Ok(())
}

/// A workspace (path) unit always carries its content check: without one,
/// a restored unit would be fresh to cargo whatever the sources say.
fn check(id: &str, kind: UnitKind, package_id: Option<&str>, check: &Check) -> Result<(), Invalid> {
    match check {
        Check::None => {
            let is_path = package_id.is_none_or(crate::cargo::is_path_package);
            if kind != UnitKind::Incremental && is_path {
                return Err(invalid(format!(
                    "unit `{id}` of a workspace package carries no content check"
                )));
            }
        }
        Check::Unverifiable { reason } => {
            text(&format!("the reason of unit `{id}`"), reason, false)?
        }
        Check::PackageFiles(PackageFiles {
            base,
            package_root,
            files,
        }) => {
            package_base(id, *base, package_root)?;
            // The seed runs git in the package's directory: one of this
            // checkout's, never one below CARGO_HOME.
            if *base == Base::CargoHome {
                return Err(invalid(format!(
                    "the package file list of unit `{id}` is of a package below CARGO_HOME"
                )));
            }
            if kind != UnitKind::RunBuildScript || !package_id.is_some_and(is_path_package) {
                return Err(invalid(format!(
                    "unit `{id}` carries a package file list, which only a path package's build-script run has"
                )));
            }
            if files.len() > MAX_FILES {
                return Err(invalid(format!(
                    "unit `{id}` lists {} package files (at most {MAX_FILES})",
                    files.len()
                )));
            }
            for PackageFile { path, sha256 } in files {
                relative(&format!("a package file of unit `{id}`"), path)?;
                digest(
                    &format!("the digest of package file `{}`", path.display()),
                    sha256,
                )?;
            }
            // Sorted and each once: the seed compares two sorted lists.
            if files.windows(2).any(|w| w[0].path >= w[1].path) {
                return Err(invalid(format!(
                    "the package files of unit `{id}` are not sorted, each once"
                )));
            }
        }
        Check::Inputs(inputs) => {
            if !matches!(
                inputs.base,
                Base::Workspace | Base::Repository | Base::CargoHome
            ) {
                return Err(invalid(format!(
                    "the package root of unit `{id}` is not under the workspace, the repository or CARGO_HOME"
                )));
            }
            if !inputs.package_root.as_os_str().is_empty() {
                relative(
                    &format!("the package root of unit `{id}`"),
                    &inputs.package_root,
                )?;
            }
            for input in &inputs.files {
                relative(&format!("an input of unit `{id}`"), &input.path)?;
                if let Some(d) = &input.sha256 {
                    digest(
                        &format!("the digest of input `{}`", input.path.display()),
                        d,
                    )?;
                }
            }
        }
    }
    Ok(())
}

/// A package root: relative to the workspace, the repository or
/// `CARGO_HOME`, and plain.
fn package_base(id: &str, base: Base, package_root: &Path) -> Result<(), Invalid> {
    if !matches!(base, Base::Workspace | Base::Repository | Base::CargoHome) {
        return Err(invalid(format!(
            "the package root of unit `{id}` is not under the workspace, the repository or CARGO_HOME"
        )));
    }
    if !package_root.as_os_str().is_empty() {
        relative(&format!("the package root of unit `{id}`"), package_root)?;
    }
    Ok(())
}

/// `<package>-<16 hex>` for a compile or build-script unit, as cargo names
/// `.fingerprint/` entries; `incremental/<crate>-<id>` for rustc's state.
pub(super) fn unit_id(id: &str, kind: UnitKind) -> Result<(), Invalid> {
    let bad = || invalid(format!("unit id `{}` is not one cargo makes", shown(id)));
    let name_ok = |s: &str, extra: char| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == extra)
    };
    if kind == UnitKind::Incremental {
        let dir = id.strip_prefix("incremental/").ok_or_else(bad)?;
        let (krate, tag) = unit_id::split(dir).ok_or_else(bad)?;
        let tag_ok = !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric());
        return (name_ok(krate, '_') && tag_ok)
            .then_some(())
            .ok_or_else(bad);
    }
    let (package, hash) = unit_id::split(id).ok_or_else(bad)?;
    let hash_ok = hash.len() == 16 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (name_ok(package, '-') && hash_ok)
        .then_some(())
        .ok_or_else(bad)
}
