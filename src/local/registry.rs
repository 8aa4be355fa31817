//! The checkouts cargo-seed has seen on this machine: a small per-user
//! JSON file, `checkouts.json` beside the default store (or the file
//! `CARGO_SEED_CHECKOUTS` names), written after each seed and publish.
//! git lists a repository's worktrees but not its clones, and says nothing
//! of where a checkout that is gone kept its build dir: this file does.
//!
//! It is a hint, never a source of truth: a damaged or unreadable file
//! reads as empty, and what it says of a checkout that exists is asked
//! again of cargo. It must never be seen half written (written beside and
//! renamed over, under a lock so two writers do not lose each other's
//! entries) nor grow without bound ([`CAP`] entries, the least recently
//! seen dropped).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The most checkouts remembered.
pub(super) const CAP: usize = 200;

const VERSION: u32 = 1;

/// One checkout as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    /// The workspace root.
    pub root: PathBuf,
    /// The top of its git work tree (the workspace root or above it).
    pub toplevel: PathBuf,
    /// The build dir cargo reported for it.
    pub build_dir: PathBuf,
    /// Its history's root commits: which repository it is.
    pub roots: Vec<String>,
    /// Unix seconds.
    pub last_seen: u64,
}

#[derive(Serialize, Deserialize)]
struct Registry {
    version: u32,
    checkouts: Vec<Entry>,
}

/// The file: `CARGO_SEED_CHECKOUTS`, else `checkouts.json` beside the
/// default store.
pub(super) fn location() -> PathBuf {
    match std::env::var_os("CARGO_SEED_CHECKOUTS").filter(|p| !p.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => crate::store::default_location().with_file_name("checkouts.json"),
    }
}

/// Every entry; none when the file is missing, unreadable, damaged or of
/// another version.
pub(super) fn read(file: &Path) -> Vec<Entry> {
    fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Registry>(&bytes).ok())
        .filter(|r| r.version == VERSION)
        .map(|r| r.checkouts)
        .unwrap_or_default()
}

/// Reads, changes through `change`, caps and writes the file, under an
/// exclusive lock on `<file>.lock` held throughout.
pub(super) fn update(file: &Path, change: impl FnOnce(&mut Vec<Entry>)) -> io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let lock_path = file.with_extension("json.lock");
    let lock = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path)?;
    lock.lock()?;
    let mut entries = read(file);
    change(&mut entries);
    entries.sort_by_key(|e| std::cmp::Reverse(e.last_seen));
    entries.truncate(CAP);
    let body = serde_json::to_vec_pretty(&Registry {
        version: VERSION,
        checkouts: entries,
    })
    .map_err(io::Error::other)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&body)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> Entry {
        Entry {
            root: PathBuf::from(format!("/src/{n}")),
            toplevel: PathBuf::from(format!("/src/{n}")),
            build_dir: PathBuf::from(format!("/src/{n}/target")),
            roots: vec!["a".repeat(40)],
            last_seen: n,
        }
    }

    #[test]
    fn keeps_the_most_recently_seen_and_survives_damage() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("cache/checkouts.json");
        assert!(read(&file).is_empty(), "no file reads as empty");
        update(&file, |e| e.extend((0..CAP as u64 + 5).map(entry))).unwrap();
        let read_back = read(&file);
        assert_eq!(read_back.len(), CAP);
        assert_eq!(read_back[0], entry(CAP as u64 + 4));
        assert!(
            !read_back.contains(&entry(4)) && read_back.contains(&entry(5)),
            "the oldest are dropped"
        );

        fs::write(&file, b"{\"version\": 1, \"checkouts\": [tru").unwrap();
        assert!(read(&file).is_empty(), "a damaged file reads as empty");
        update(&file, |e| e.push(entry(7))).unwrap();
        assert_eq!(read(&file), [entry(7)], "and is replaced whole");
        let names: Vec<_> = fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }
}
