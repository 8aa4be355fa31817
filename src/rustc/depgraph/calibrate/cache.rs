//! Calibrated layouts, kept so that calibration runs once per toolchain and
//! machine: in this process per rustc and the directory it runs in, and on
//! disk per rustc commit (`<user cache dir>/cargo-seed/depgraph/<commit
//! hash>.json`).
//!
//! A cache file is a shortcut, not a source of truth: it must never be used
//! unless it parses as a consistent layout of exactly the rustc version that
//! `rustc -vV` prints, and it is recomputed otherwise. An inconclusive
//! calibration is never written, and a cache that cannot be written is only
//! a cache that misses.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Serialize};

use super::run::calibrate;
use super::why::Inconclusive;
use crate::rustc::depgraph::layout::Layout;

/// The layout of the graphs `rustc`, run in `cwd`, writes: calibrated once
/// per process, and read from the per-user cache when it was calibrated
/// before for the same rustc commit. The directory is part of the key
/// because through rustup, `rustc` is whichever toolchain a
/// `rust-toolchain.toml` there names.
pub fn calibrated(rustc: &Path, cwd: &Path) -> Result<Layout, Inconclusive> {
    type Memo = Mutex<HashMap<(PathBuf, PathBuf), Result<Layout, Inconclusive>>>;
    static MEMO: OnceLock<Memo> = OnceLock::new();
    // Held while calibrating: a seed replays its crates on several threads,
    // and only the first calibrates.
    let mut memo = MEMO
        .get_or_init(Memo::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let key = (rustc.to_owned(), cwd.to_owned());
    if let Some(known) = memo.get(&key) {
        return known.clone();
    }
    let result = identify(rustc, cwd).and_then(|id| through(&dir(), &id, || calibrate(rustc, cwd)));
    memo.insert(key, result.clone());
    result
}

/// Where layouts are cached: `depgraph` beside the default store in the
/// per-user cache directory.
fn dir() -> PathBuf {
    crate::store::default_location().with_file_name("depgraph")
}

/// What a cache file holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cached {
    /// [`CALIBRATION`] when the file was written.
    calibration: u32,
    layout: Layout,
}

/// The version of calibration's method: raised whenever what it learns
/// changes, so that no layout learned the old way is used again.
const CALIBRATION: u32 = 1;

/// What `rustc -vV` says about the rustc a layout is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Identity {
    /// The version as a graph header spells it: the first line without the
    /// leading `rustc `.
    pub version: String,
    /// The `commit-hash:` line, when it is a commit hash (a rustc built
    /// without git information says `unknown`, and is not cached on disk).
    pub commit: Option<String>,
}

impl Identity {
    pub(super) fn parse(vv: &str) -> Option<Identity> {
        let version = vv.lines().next()?.strip_prefix("rustc ")?.trim();
        let commit = vv
            .lines()
            .find_map(|l| l.strip_prefix("commit-hash:"))
            .map(str::trim)
            .filter(|c| (7..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase);
        Some(Identity {
            version: version.to_owned(),
            commit,
        })
    }
}

fn identify(rustc: &Path, cwd: &Path) -> Result<Identity, Inconclusive> {
    let run_error = |error: String| Inconclusive::Run {
        rustc: rustc.to_owned(),
        error,
    };
    let out = Command::new(rustc)
        .arg("-vV")
        .current_dir(cwd)
        .output()
        .map_err(|e| run_error(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(run_error(format!("`-vV` failed: {}", stderr.trim())));
    }
    Identity::parse(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| run_error("`-vV` printed no `rustc <version>` line".into()))
}

/// The layout cached in `dir` for `id`, or what `run` calibrates, which is
/// then cached when it is conclusive and of `id`'s version.
pub(super) fn through(
    dir: &Path,
    id: &Identity,
    run: impl FnOnce() -> Result<Layout, Inconclusive>,
) -> Result<Layout, Inconclusive> {
    let file = id.commit.as_ref().map(|c| dir.join(format!("{c}.json")));
    if let Some(file) = &file {
        let cached = fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Cached>(&bytes).ok())
            .filter(|c| c.calibration == CALIBRATION)
            .map(|c| c.layout)
            .filter(|l| l.rustc == id.version && l.is_consistent());
        if let Some(layout) = cached {
            return Ok(layout);
        }
    }
    let layout = run()?;
    if let Some(file) = &file {
        // The graphs name another version than `-vV` (a wrapper?): the file
        // would never be used, so it is not written.
        if layout.rustc == id.version {
            let _ = write(dir, file, &layout);
        }
    }
    Ok(layout)
}

/// Writes `layout` to `file` atomically: readers see the old file, none, or
/// the whole new one.
fn write(dir: &Path, file: &Path, layout: &Layout) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let cached = Cached {
        calibration: CALIBRATION,
        layout: layout.clone(),
    };
    serde_json::to_writer_pretty(&mut tmp, &cached)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const VV: &str = "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\n\
                      commit-hash: 59807616e1fa2540724bfbac14d7976d7e4a3860\n\
                      host: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";

    fn layout(rustc: &str) -> Layout {
        Layout {
            rustc: rustc.into(),
            node_kinds: 327,
            kind_bits: 9,
            output_filenames: 282,
            used_crate_source: 262,
        }
    }

    #[test]
    fn identifies_a_rustc_by_version_and_commit() {
        let id = Identity::parse(VV).unwrap();
        assert_eq!(id.version, "1.95.0 (59807616e 2026-04-14)");
        assert_eq!(
            id.commit.as_deref(),
            Some("59807616e1fa2540724bfbac14d7976d7e4a3860")
        );
        let local = Identity::parse("rustc 1.97.0-dev\ncommit-hash: unknown\n").unwrap();
        assert_eq!(local.commit, None);
        let sneaky = Identity::parse("rustc 1.0\ncommit-hash: ../../etc\n").unwrap();
        assert_eq!(sneaky.commit, None, "the commit names a file");
        assert!(Identity::parse("cargo 1.95.0\n").is_none());
    }

    #[test]
    fn calibrates_once_per_commit_and_ignores_a_file_it_cannot_trust() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("depgraph");
        let id = Identity::parse(VV).unwrap();
        let runs = Cell::new(0);
        let run = |rustc: &str| {
            let l = layout(rustc);
            let runs = &runs;
            move || {
                runs.set(runs.get() + 1);
                Ok(l)
            }
        };
        let file = dir.join("59807616e1fa2540724bfbac14d7976d7e4a3860.json");

        assert_eq!(
            through(&dir, &id, run(&id.version)),
            Ok(layout(&id.version))
        );
        assert_eq!(
            through(&dir, &id, run(&id.version)),
            Ok(layout(&id.version))
        );
        assert_eq!(runs.get(), 1, "the second came from {}", file.display());
        let written: Cached = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(written.layout, layout(&id.version));
        assert_eq!(written.calibration, CALIBRATION);

        // Not JSON, another rustc's, inconsistent, learned by another
        // calibration, unknown fields: recomputed and rewritten.
        let json = |calibration, layout| {
            serde_json::to_string(&Cached {
                calibration,
                layout,
            })
            .unwrap()
        };
        let mut inconsistent = layout(&id.version);
        inconsistent.kind_bits = 10;
        for bad in [
            "{".to_owned(),
            serde_json::to_string(&layout(&id.version)).unwrap(),
            json(CALIBRATION, layout("1.94.0 (x)")),
            json(CALIBRATION, inconsistent),
            json(CALIBRATION + 1, layout(&id.version)),
            json(CALIBRATION, layout(&id.version))
                .replace("{\"calibration", "{\"extra\":1,\"calibration"),
        ] {
            fs::write(&file, &bad).unwrap();
            let before = runs.get();
            assert_eq!(
                through(&dir, &id, run(&id.version)),
                Ok(layout(&id.version))
            );
            assert_eq!(runs.get(), before + 1, "{bad}");
            let again: Cached = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
            assert_eq!(again.layout, layout(&id.version));
        }
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    }

    #[test]
    fn writes_only_what_it_can_use_again() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("depgraph");
        let id = Identity::parse(VV).unwrap();
        let why = Inconclusive::NoRecordLayout;
        assert_eq!(through(&dir, &id, || Err(why.clone())), Err(why.clone()));
        assert!(!dir.exists(), "an inconclusive calibration is not cached");

        // Graphs that name another version than `-vV`: used, not cached.
        let other = layout("1.95.0 (wrapped)");
        assert_eq!(through(&dir, &id, || Ok(other.clone())), Ok(other));
        assert!(!dir.exists());

        // A rustc without a commit hash: calibrated every process.
        let unknown = Identity {
            commit: None,
            ..id.clone()
        };
        assert!(through(&dir, &unknown, || Ok(layout(&id.version))).is_ok());
        assert!(!dir.exists());
    }
}
