//! The files of a path package whose build script prints no
//! `rerun-if-changed`: cargo reruns such a script when the newest mtime over
//! the package's file list, or that file's name, differs from what its
//! fingerprint records (`LocalFingerprint::Precalculated`, made by cargo's
//! `PathSource::fingerprint`). Publish records the digest of every file of
//! that list; a seed restores the run only when the list here and every
//! digest are the same, and then gives cargo the string of *this*
//! checkout's mtimes.
//!
//! The list is computed as cargo's `PathSource::list_files` computes it:
//! - in a git work tree that tracks the package's `Cargo.toml`: the tracked
//!   and the untracked-but-not-ignored files below the package root, except
//!   untracked ones in its `target/` (tracked ones there come last, as cargo
//!   appends them), and except the directories of nested packages (those
//!   holding a listed `Cargo.toml`);
//! - otherwise a walk of the package root, skipping hidden entries, the
//!   top-level `target` and directories that hold a `Cargo.toml`.
//!
//! Both are in the order cargo visits files (each directory in the order the
//! file system lists it, depth first), which only decides which of several
//! files with the newest mtime the string names.
//!
//! It must never list fewer files than cargo does: a file cargo watches and
//! this list leaves out would let a change go unseen. Where it takes more
//! (the manifest's `exclude` patterns are not applied; an untracked
//! `Cargo.lock` below the repository's top is kept) a change there only
//! costs a rerun. What cannot be matched soundly (`include`, a symlink to a
//! directory, a submodule or nested repository, which cargo lists by their
//! own rules) is refused with an [`Unlisted`].

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::snapshot::inputs::{Digests, Unchecked};
use crate::snapshot::manifest::{PackageFile, PackageFiles};

/// The most files a recorded package list holds, and a seed lists: a
/// package's sources, not a data set.
pub(crate) const MAX_FILES: usize = 100_000;

/// Why a package's file list cannot be matched with cargo's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unlisted {
    #[error("its manifest sets `package.include`, and cargo-seed lists a package's files only as cargo does without it")]
    Include,
    #[error("{} is a symlink to a directory, which cargo walks by rules cargo-seed does not follow", .0.display())]
    SymlinkedDirectory(PathBuf),
    #[error("{} is a git submodule or a nested repository, whose files cargo lists by that repository's rules", .0.display())]
    NestedRepository(PathBuf),
    #[error("it holds more than {MAX_FILES} files")]
    TooMany,
    #[error("git cannot list its files ({0})")]
    Git(String),
    #[error("{} cannot be read ({})", .0.display(), .1)]
    Io(PathBuf, String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Unlisted + '_ {
    move |e| Unlisted::Io(path.to_owned(), e.to_string())
}

/// The files cargo fingerprints `root` by, relative to it, in cargo's order.
pub(crate) fn list(root: &Path) -> Result<Vec<PathBuf>, Unlisted> {
    if sets_include(root)? {
        return Err(Unlisted::Include);
    }
    let files = match git_files(root)? {
        Some(git) => listed_by_git(root, &git)?,
        None => {
            let mut out = Vec::new();
            walk(root, Path::new(""), Walk::Package, &mut out)?;
            out
        }
    };
    if files.len() > MAX_FILES {
        return Err(Unlisted::TooMany);
    }
    Ok(files)
}

/// Whether the package's manifest has a `package.include` key (its own or
/// inherited from the workspace: either way cargo then walks by it).
fn sets_include(root: &Path) -> Result<bool, Unlisted> {
    let path = root.join("Cargo.toml");
    let text = fs::read_to_string(&path).map_err(io_error(&path))?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| Unlisted::Io(path.clone(), e.to_string()))?;
    Ok(doc.get("package").and_then(|p| p.get("include")).is_some())
}

/// What git says of the files below a package root.
struct GitFiles {
    /// In the index, in its order.
    tracked: Vec<PathBuf>,
    /// Neither tracked nor ignored.
    untracked: Vec<PathBuf>,
    /// The package root is the work tree's top.
    at_top: bool,
}

/// Runs git in `root` with a NUL-separated output; `None` when `root` is
/// in no git work tree at all.
fn git(root: &Path, args: &[&str]) -> Result<Option<Vec<u8>>, Unlisted> {
    let out = Command::new("git")
        .args(["-c", "core.quotepath=off"])
        .args(args)
        .current_dir(root)
        // The package's own repository, whatever the environment says.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output();
    match out {
        Ok(out) if out.status.success() => Ok(Some(out.stdout)),
        // Cargo reads the repository itself (with gix), so a failing or
        // missing git is only "not in git" where there is no repository.
        _ if !in_work_tree(root) => Ok(None),
        Ok(out) => Err(Unlisted::Git(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )),
        Err(e) => Err(Unlisted::Git(e.to_string())),
    }
}

/// Whether a `.git` sits in `dir` or above it.
fn in_work_tree(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists())
}

fn split_nul(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|b| *b == 0).filter(|s| !s.is_empty())
}

#[cfg(unix)]
fn path_of(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn path_of(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

/// The git listing below `root`, when cargo would use git for it: the work
/// tree tracks `<root>/Cargo.toml`.
fn git_files(root: &Path) -> Result<Option<GitFiles>, Unlisted> {
    let Some(staged) = git(root, &["ls-files", "-z", "--stage", "--", "."])? else {
        return Ok(None);
    };
    let mut tracked = Vec::new();
    let mut seen = HashSet::new();
    for line in split_nul(&staged) {
        // `<mode> <object> <stage>\t<path>`
        let Some(tab) = line.iter().position(|b| *b == b'\t') else {
            return Err(Unlisted::Git(
                "unexpected `git ls-files --stage` output".into(),
            ));
        };
        let path = path_of(&line[tab + 1..]);
        if line.starts_with(b"160000 ") {
            return Err(Unlisted::NestedRepository(path));
        }
        if seen.insert(path.clone()) {
            tracked.push(path);
        }
    }
    if !seen.contains(Path::new("Cargo.toml")) {
        return Ok(None);
    }
    let others = git(
        root,
        &[
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            "--",
            ".",
        ],
    )?
    .unwrap_or_default();
    let mut untracked = Vec::new();
    for entry in split_nul(&others) {
        // git shows a repository inside the work tree as `dir/`.
        if entry.ends_with(b"/") {
            return Err(Unlisted::NestedRepository(path_of(entry)));
        }
        untracked.push(path_of(entry));
    }
    let prefix = git(root, &["rev-parse", "--show-prefix"])?.unwrap_or_default();
    Ok(Some(GitFiles {
        tracked,
        untracked,
        at_top: prefix.iter().all(u8::is_ascii_whitespace),
    }))
}

/// Cargo's list from git's: walked in the order cargo's directory walk
/// visits files, then the tracked files of `target/`, less nested packages.
fn listed_by_git(root: &Path, git: &GitFiles) -> Result<Vec<PathBuf>, Unlisted> {
    let target = Path::new("target");
    let mut files: HashSet<&Path> = HashSet::new();
    for path in &git.untracked {
        // Cargo leaves an untracked `Cargo.lock` at the top of the work
        // tree out; elsewhere one is listed like any file.
        let top_lock = git.at_top && path == Path::new("Cargo.lock");
        if !path.starts_with(target) && !top_lock {
            files.insert(path);
        }
    }
    for path in &git.tracked {
        if !path.starts_with(target) {
            files.insert(path);
        }
    }
    let dirs: HashSet<&Path> = files
        .iter()
        .flat_map(|p| p.ancestors().skip(1))
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    let mut ordered = Vec::with_capacity(files.len() + 1);
    walk_listed(root, Path::new(""), &files, &dirs, &mut ordered)?;
    // Cargo's walk leaves `target/` out and then appends what the index
    // holds below it.
    ordered.extend(
        git.tracked
            .iter()
            .filter(|p| p.starts_with(target))
            .cloned(),
    );
    Ok(without_nested_packages(ordered))
}

/// Appends the files of `wanted` below `root/rel` in the order the file
/// system lists them, depth first. A listed file missing on disk is left
/// out, as cargo's walk of the disk leaves it.
fn walk_listed(
    root: &Path,
    rel: &Path,
    wanted: &HashSet<&Path>,
    dirs: &HashSet<&Path>,
    out: &mut Vec<PathBuf>,
) -> Result<(), Unlisted> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
        let entry = entry.map_err(io_error(&dir))?;
        let child = rel.join(entry.file_name());
        if child == Path::new("target") {
            continue;
        }
        let kind = entry.file_type().map_err(io_error(&entry.path()))?;
        if kind.is_dir() {
            if dirs.contains(child.as_path()) {
                walk_listed(root, &child, wanted, dirs, out)?;
            }
        } else if wanted.contains(child.as_path()) {
            if kind.is_symlink() && entry.path().is_dir() {
                // git lists a link to a directory as a file; cargo walks the
                // directory through it, disregarding git's ignore rules,
                // hidden names included, unless it is a repository.
                if entry.path().join(".git").exists() {
                    return Err(Unlisted::NestedRepository(child));
                }
                walk(root, &child, Walk::Linked, out)?;
                continue;
            }
            out.push(child);
        }
    }
    Ok(())
}

/// Which of cargo's two directory walks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// A package outside git: hidden entries are skipped too.
    Package,
    /// A link to a directory that git listed: everything below it.
    Linked,
}

/// Cargo's directory walk: the top-level `target` and directories holding
/// a `Cargo.toml` are skipped, and hidden entries outside git; links to
/// files are followed. A link to a directory below a walked one is refused
/// (cargo would follow it too, and guard against loops).
fn walk(root: &Path, rel: &Path, how: Walk, out: &mut Vec<PathBuf>) -> Result<(), Unlisted> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
        let entry = entry.map_err(io_error(&dir))?;
        let name = entry.file_name();
        if how == Walk::Package && name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let child = rel.join(&name);
        let kind = entry.file_type().map_err(io_error(&entry.path()))?;
        let followed = fs::metadata(entry.path()).ok();
        let is_dir = followed.as_ref().is_some_and(fs::Metadata::is_dir);
        if is_dir && kind.is_symlink() {
            return Err(Unlisted::SymlinkedDirectory(child));
        }
        if is_dir {
            if child == Path::new("target") || entry.path().join("Cargo.toml").exists() {
                continue;
            }
            walk(root, &child, how, out)?;
        } else if followed.as_ref().is_none_or(fs::Metadata::is_file) {
            // A broken link is listed by cargo too (with no mtime).
            out.push(child);
        }
        if out.len() > MAX_FILES {
            return Err(Unlisted::TooMany);
        }
    }
    Ok(())
}

/// Drops the files of nested packages as cargo does while it lists: a
/// `Cargo.toml` below the root removes its directory's files listed so far
/// and those that follow.
fn without_nested_packages(ordered: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::with_capacity(ordered.len());
    let mut nested: Vec<PathBuf> = Vec::new();
    for path in ordered {
        if path.file_name() == Some(OsStr::new("Cargo.toml")) {
            let dir = path.parent().unwrap_or(Path::new(""));
            if !dir.as_os_str().is_empty() {
                files.retain(|f| !f.starts_with(dir));
                nested.push(dir.to_owned());
                continue;
            }
        }
        if !nested.iter().any(|d| path.starts_with(d)) {
            files.push(path);
        }
    }
    files
}

/// A file's mtime as cargo reads it (following links): seconds and
/// nanoseconds since the epoch; zero when it cannot be read, as cargo
/// counts it.
pub(crate) fn mtime(path: &Path) -> (i64, u32) {
    let Ok(meta) = fs::metadata(path) else {
        return (0, 0);
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.mtime(), meta.mtime_nsec() as u32)
    }
    #[cfg(not(unix))]
    {
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or((0, 0), |d| (d.as_secs() as i64, d.subsec_nanos()))
    }
}

/// The string cargo's `PathSource::fingerprint` makes of `mtimes` (one per
/// file of `files`, in cargo's order): the newest, and the first file that
/// has it.
pub(crate) fn precalculated(files: &[PathBuf], mtimes: &[(i64, u32)]) -> String {
    let mut newest = (0, 0);
    let mut which = Path::new("");
    for (file, t) in files.iter().zip(mtimes) {
        if *t > newest {
            newest = *t;
            which = file;
        }
    }
    crate::cargo::fingerprint::precalculated(newest.0, newest.1, which)
}

/// The mtimes of `files` below `root`.
pub(crate) fn mtimes(root: &Path, files: &[PathBuf]) -> Vec<(i64, u32)> {
    files.iter().map(|f| mtime(&root.join(f))).collect()
}

/// Why a package's files here are not those recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Differs {
    /// The list cannot be made here.
    Unlisted(Unlisted),
    Added(PathBuf),
    Removed(PathBuf),
    Changed(PathBuf),
    Unreadable(PathBuf, String),
    /// Reading it would go past the seed's budget.
    OverBudget(PathBuf),
    /// A file's mtime moved while the package was compared.
    Moving(PathBuf),
}

/// A package's file list here, as recorded, with each file's mtime read
/// before any of its digests is taken.
pub(crate) struct Listed {
    files: Vec<PathBuf>,
    before: Vec<(i64, u32)>,
}

/// Compares the files of the package at `root` with `recorded`; on a match,
/// the string cargo will compute here (from the mtimes read before and
/// after the digests, which must agree).
#[cfg(test)]
pub(crate) fn compare(
    root: &Path,
    recorded: &PackageFiles,
    digests: &mut Digests,
) -> Result<String, Differs> {
    let listed = list_here(root, recorded)?;
    compare_listed(root, recorded, listed, digests)
}

/// The first half of a comparison: the list here, which must be the
/// recorded one, and its mtimes.
pub(crate) fn list_here(root: &Path, recorded: &PackageFiles) -> Result<Listed, Differs> {
    let files = list(root).map_err(Differs::Unlisted)?;
    let before = mtimes(root, &files);
    // Sorted copies, to name the first file that differs.
    let mut here: Vec<&PathBuf> = files.iter().collect();
    here.sort();
    let mut there: Vec<&PathBuf> = recorded.files.iter().map(|f| &f.path).collect();
    there.sort();
    if let Some(diff) = first_difference(&here, &there) {
        return Err(diff);
    }
    Ok(Listed { files, before })
}

/// The second half: every digest, then the mtimes again. `digests`
/// remembers what it read, so each file's digest must have been taken
/// after `listed` read its mtime: a digest from before could be of
/// contents the mtimes no longer describe.
pub(crate) fn compare_listed(
    root: &Path,
    recorded: &PackageFiles,
    listed: Listed,
    digests: &mut Digests,
) -> Result<String, Differs> {
    let Listed { files, before } = listed;
    for PackageFile { path, sha256 } in &recorded.files {
        match digests.digest(&root.join(path)) {
            Ok(Some(d)) if d == *sha256 => {}
            Ok(None) => return Err(Differs::Removed(path.clone())),
            Ok(Some(_)) => return Err(Differs::Changed(path.clone())),
            Err(Unchecked::Unreadable(e)) => return Err(Differs::Unreadable(path.clone(), e)),
            Err(Unchecked::OverBudget) => return Err(Differs::OverBudget(path.clone())),
        }
    }
    let after = mtimes(root, &files);
    if let Some(i) = (0..files.len()).find(|&i| before[i] != after[i]) {
        return Err(Differs::Moving(files[i].clone()));
    }
    Ok(precalculated(&files, &after))
}

/// The first file (by name) in one sorted list and not the other.
fn first_difference(here: &[&PathBuf], there: &[&PathBuf]) -> Option<Differs> {
    let (mut i, mut j) = (0, 0);
    loop {
        match (here.get(i), there.get(j)) {
            (None, None) => return None,
            (Some(h), Some(t)) if h == t => {
                i += 1;
                j += 1;
            }
            (Some(h), Some(t)) if h < t => return Some(Differs::Added((*h).clone())),
            (Some(h), None) => return Some(Differs::Added((*h).clone())),
            (_, Some(t)) => return Some(Differs::Removed((*t).clone())),
        }
    }
}

#[cfg(test)]
mod tests;
