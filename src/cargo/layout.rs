//! Cargo's build-dir layout: which profile directories hold units, which
//! files belong to which unit (by the hash cargo puts in their names), and
//! where rustc keeps a crate's incremental sessions. Read-only: nothing
//! here writes to a build dir.

use crate::cargo::unit_id;
use std::fs;
use std::path::{Path, PathBuf};

use super::{read_error, ReadError};

/// The directories of a profile dir that hold units' files: a unit's files
/// are in these and nowhere else.
pub(crate) const UNIT_DIRS: [&str; 5] =
    [".fingerprint", "build", "deps", "examples", "incremental"];

/// The profile directories below the build dir that hold units: `debug`,
/// `release`, a custom profile's, and `<triple>/debug` for cross builds.
/// Relative to the build dir.
pub(crate) fn profile_dirs(build_dir: &Path) -> Vec<PathBuf> {
    let holds_units = |d: &Path| d.join(".fingerprint").is_dir();
    let mut out = Vec::new();
    for entry in fs::read_dir(build_dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = PathBuf::from(entry.file_name());
        if holds_units(&path) {
            out.push(name.clone());
        }
        for inner in fs::read_dir(&path).into_iter().flatten().flatten() {
            if holds_units(&inner.path()) {
                out.push(name.join(inner.file_name()));
            }
        }
    }
    out.sort();
    out
}

/// The `-<hash>` suffix cargo gives a unit's files and directories.
pub(crate) fn unit_hash(name: &str) -> Option<&str> {
    let stem = name.split('.').next()?;
    let (_, hash) = unit_id::split(stem)?;
    (hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}

/// `serde` from `registry+https://…#serde@1.0.0` or `path+file:///…/app#0.1.0`.
pub(crate) fn package_name(package_id: &str) -> String {
    let frag = package_id
        .rsplit_once('#')
        .map(|(_, f)| f)
        .unwrap_or(package_id);
    match frag.split_once('@') {
        Some((name, _)) => name.to_owned(),
        // `…/app#0.1.0`: the name is the last path component.
        None => package_id
            .rsplit_once('#')
            .map(|(url, _)| url.rsplit('/').next().unwrap_or(url).to_owned())
            .unwrap_or_else(|| frag.to_owned()),
    }
}

/// The files of a unit, relative to the profile dir.
pub(crate) fn unit_members(profile_dir: &Path, id: &str) -> Vec<PathBuf> {
    let mut out = vec![Path::new(".fingerprint").join(id)];
    if profile_dir.join("build").join(id).is_dir() {
        out.push(Path::new("build").join(id));
    }
    out
}

/// Whether `path` (relative to the profile dir) belongs to the unit `id`:
/// the files [`unit_members`] and the `deps/`/`examples/` outputs give it, or
/// for `incremental/<dir>`, that directory. The top-level directories
/// themselves are shared.
pub(crate) fn owns(id: &str, path: &Path, is_dir: bool) -> bool {
    let mut parts = path.components().map(|c| c.as_os_str().to_string_lossy());
    let (Some(top), second) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(second) = second else {
        return is_dir && UNIT_DIRS.contains(&&*top);
    };
    match (&*top, id.split_once('/')) {
        ("incremental", Some(("incremental", dir))) => second == dir,
        (".fingerprint" | "build", None) => second == id,
        ("deps" | "examples", None) => {
            parts.next().is_none() && unit_id::split(id).map(|(_, h)| h) == unit_hash(&second)
        }
        _ => false,
    }
}

/// rustc's incremental directories of the given crates, session by session,
/// relative to the profile dir; unfinished (`-working`) sessions are left out.
pub(crate) fn incremental_dirs(
    profile_dir: &Path,
    crate_names: &std::collections::HashSet<String>,
) -> Result<Vec<(String, Vec<PathBuf>)>, ReadError> {
    let dir = profile_dir.join("incremental");
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(out);
    };
    for entry in entries {
        let entry = entry.map_err(read_error(&dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((krate, _)) = unit_id::split(&name) else {
            continue;
        };
        if !crate_names.contains(krate) || !entry.path().is_dir() {
            continue;
        }
        let sub = entry.path();
        let mut members = Vec::new();
        for s in fs::read_dir(&sub).map_err(read_error(&sub))? {
            let s = s
                .map_err(read_error(&sub))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if !s.ends_with("-working") {
                members.push(Path::new("incremental").join(&name).join(s));
            }
        }
        out.push((name, members));
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_hash_from_file_names() {
        assert_eq!(
            unit_hash("libgreet-d2c3ef4c070f78bb.rmeta"),
            Some("d2c3ef4c070f78bb")
        );
        assert_eq!(unit_hash("app-3f5d035ce61743c3"), Some("3f5d035ce61743c3"));
        assert_eq!(
            unit_hash("build_script_build-6b6761007ad40275.d"),
            Some("6b6761007ad40275")
        );
        assert_eq!(unit_hash("libgreet.rlib"), None);
        assert_eq!(unit_hash("serde-json"), None);
    }

    #[test]
    fn units_own_only_their_paths() {
        let id = "greet-d2c3ef4c070f78bb";
        let own = |p: &str, dir| owns(id, Path::new(p), dir);
        assert!(own(".fingerprint/greet-d2c3ef4c070f78bb/lib-greet", false));
        assert!(own("build/greet-d2c3ef4c070f78bb/out/x.rs", false));
        assert!(own("deps/libgreet-d2c3ef4c070f78bb.rlib", false));
        assert!(own("deps", true));
        assert!(!own("deps", false));
        assert!(!own("deps/libitoa-d62e748016f8bd79.rlib", false));
        assert!(!own(".fingerprint/itoa-d62e748016f8bd79/lib-itoa", false));
        assert!(!own("deps/sub/libgreet-d2c3ef4c070f78bb.rlib", false));
        assert!(!own("app", false));
        assert!(!own("incremental/greet-2bym/s-1/dep-graph.bin", false));
        let inc = "incremental/greet-2bym";
        assert!(owns(
            inc,
            Path::new("incremental/greet-2bym/s-1/dep-graph.bin"),
            false
        ));
        assert!(!owns(
            inc,
            Path::new("incremental/app-31li/s-1/dep-graph.bin"),
            false
        ));
    }

    #[test]
    fn package_names_from_ids() {
        assert_eq!(
            package_name("registry+https://github.com/rust-lang/crates.io-index#itoa@1.0.18"),
            "itoa"
        );
        assert_eq!(package_name("path+file:///tmp/ws1/gen#0.1.0"), "gen");
        assert_eq!(
            package_name("path+file:///tmp/ws1/my-dir#my-pkg@0.1.0"),
            "my-pkg"
        );
    }
}
