//! Putting the staged profile dir in place: the state file a later seed
//! reads, the locks (ours and cargo's), the recovery of what a killed seed
//! left, and the swap. Until the swap the user's build dir is untouched.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cargo::layout::{self, Layout};
use crate::cargo::unit_id::UnitId;
use crate::report::{Event, Reporter};
use crate::snapshot::archive::Unpacked;
use crate::Error;

/// The record cargo-seed leaves in a profile dir it restored, so that a later
/// `--force` seed can keep units that are still exactly as unpacked.
pub(super) const STATE_FILE: &str = ".cargo-seed.json";

#[derive(Serialize, Deserialize, Default)]
pub(super) struct State {
    pub(super) commit: String,
    /// The mtime every restored file was stamped with, in nanoseconds.
    pub(super) stamp_nanos: u128,
    /// The build machine's directories and this one's, as relocated.
    #[serde(default)]
    pub(super) moves: Vec<(PathBuf, PathBuf)>,
    /// The layout the units were unpacked in; units are kept only into
    /// the same.
    #[serde(default)]
    pub(super) layout: Layout,
    pub(super) units: BTreeMap<UnitId, UnitState>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct UnitState {
    pub(super) blob: String,
    pub(super) unpacked: Unpacked,
}

pub(super) fn read_state(profile_dir: &Path) -> Option<State> {
    serde_json::from_slice(&fs::read(profile_dir.join(STATE_FILE)).ok()?).ok()
}

/// Whether a profile dir holds anything cargo built: any file but cargo's
/// locks.
pub(super) fn holds_build_state(dir: &Path) -> bool {
    fn any_file(dir: &Path, top: bool) -> bool {
        let Ok(entries) = fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| match e.file_type() {
            Ok(t) if t.is_dir() => any_file(&e.path(), false),
            _ => !(top && layout::is_lock_file(&e.file_name())),
        })
    }
    any_file(dir, true)
}

/// Deals with what a killed run left: staging directories are removed; a
/// profile dir that was moved aside but never replaced is put back, so a
/// crash between the two renames of a swap loses nothing.
pub(super) fn recover_or_remove_leftovers(
    build_dir: &Path,
    dest: &Path,
    profile: &str,
) -> Result<Option<String>, Error> {
    let Ok(entries) = fs::read_dir(build_dir) else {
        return Ok(None);
    };
    let mut note = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!(".cargo-seed-staging.{profile}.")) {
            let _ = fs::remove_dir_all(entry.path());
        } else if name.starts_with(&format!(".cargo-seed-old.{profile}.")) {
            if dest.exists() {
                let _ = fs::remove_dir_all(entry.path());
            } else {
                fs::rename(entry.path(), dest).map_err(Error::io("put back", dest))?;
                note = Some(format!(
                    "{} from an interrupted seed, as it was before it",
                    dest.display()
                ));
            }
        }
    }
    Ok(note)
}

/// Adds a cross build's staged host units (build scripts, proc-macros and
/// their dependencies) to the host's profile directory, under cargo's lock
/// on it. A unit it already holds is left as it is: the same id is the same
/// unit, and cargo judges what is there. If a move fails, what was added is
/// taken back. Returns how many units were added.
pub(super) fn merge_host_units(
    staging: Staging,
    layout: Layout,
    dest: &Path,
    units: &BTreeMap<UnitId, Unpacked>,
    reporter: &Reporter,
) -> Result<usize, Error> {
    fs::create_dir_all(dest).map_err(Error::io("create", dest))?;
    let _lock = lock_cargo(dest, true, reporter)?;
    let mut added: Vec<PathBuf> = Vec::new();
    let mut count = 0;
    let result = (|| -> Result<(), Error> {
        for (id, unpacked) in units {
            if dest.join(layout.fingerprint_dir(id)).exists() {
                continue;
            }
            // The entries that are the unit's own.
            let mut tops: Vec<PathBuf> = unpacked
                .files
                .iter()
                .map(|(rel, _)| layout.unit_entry(rel))
                .collect();
            tops.sort();
            tops.dedup();
            if tops.iter().any(|t| dest.join(t).exists()) {
                continue;
            }
            for top in tops {
                let to = dest.join(&top);
                fs::create_dir_all(to.parent().unwrap_or(dest))
                    .map_err(Error::io("create", dest))?;
                fs::rename(staging.0.join(&top), &to).map_err(Error::io("move into place", &to))?;
                added.push(to);
            }
            count += 1;
        }
        Ok(())
    })();
    if let Err(e) = result {
        for path in added {
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
        return Err(e);
    }
    Ok(count)
}

/// The staging directory; removed on drop unless swapped in.
pub(super) struct Staging(pub(super) PathBuf);

impl Staging {
    pub(super) fn new(path: PathBuf) -> Result<Staging, Error> {
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).map_err(Error::io("create", &path))?;
        Ok(Staging(path))
    }

    /// Replaces `dest` with the staged directory while holding cargo's lock
    /// on both, so a concurrent `cargo build` waits and then sees the whole
    /// restored state. On failure `dest` is put back as it was.
    /// Renames the staging dir to `dest`, then runs `after` on it while
    /// still holding cargo's lock on it.
    pub(super) fn swap_into(
        self,
        dest: &Path,
        old_lock: Option<CargoLock>,
        reporter: &Reporter,
        after: impl FnOnce(&Path),
    ) -> Result<(), Error> {
        let new_lock = lock_cargo(&self.0, true, reporter)?;
        let aside = dest.with_file_name(format!(
            ".cargo-seed-old.{}.{}",
            dest.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let had_dest = dest.exists();
        if had_dest {
            fs::rename(dest, &aside).map_err(Error::io("move aside", dest))?;
        }
        if let Err(e) = fs::rename(&self.0, dest) {
            if had_dest {
                if let Err(back) = fs::rename(&aside, dest) {
                    return Err(Error::Io {
                        op: "move back (the previous build state is intact at the path below)",
                        path: aside,
                        source: back,
                    });
                }
            }
            return Err(Error::io("move into place", dest)(e));
        }
        after(dest);
        drop(new_lock);
        drop(old_lock);
        let _ = fs::remove_dir_all(&aside);
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Cargo's locks on a profile dir, held until dropped.
pub(super) struct CargoLock {
    _files: Vec<File>,
}

/// Takes every lock any cargo takes on a profile dir, exclusively and in
/// cargo's order ([`layout::LOCKS`]), so that an old cargo and a new one
/// both wait; says so if another process holds one, as cargo does. With
/// `wait` false, a lock another process holds is [`Error::Busy`].
pub(super) fn lock_cargo(
    profile_dir: &Path,
    wait: bool,
    reporter: &Reporter,
) -> Result<CargoLock, Error> {
    take_locks(profile_dir, false, wait, reporter)?.ok_or_else(|| Error::Busy {
        dir: profile_dir.to_owned(),
    })
}

/// Takes cargo's locks on a profile dir shared, as a reader: no build runs
/// there while they are held, and other readers (another seed from the
/// same donor) go on. A lock file cargo has not made yet is made, as cargo
/// would, so that a build started meanwhile waits too. Says so if a build
/// holds one; `None` if one does and `wait` is false.
pub(super) fn lock_cargo_shared(
    profile_dir: &Path,
    wait: bool,
    reporter: &Reporter,
) -> Result<Option<CargoLock>, Error> {
    take_locks(profile_dir, true, wait, reporter)
}

fn take_locks(
    profile_dir: &Path,
    shared: bool,
    wait: bool,
    reporter: &Reporter,
) -> Result<Option<CargoLock>, Error> {
    let mut files = Vec::new();
    let mut told = false;
    for name in layout::LOCKS {
        let path = profile_dir.join(name);
        let file = open_lock(&path)?;
        let free = match shared {
            true => file.try_lock_shared().is_ok(),
            false => file.try_lock().is_ok(),
        };
        if !free {
            if !wait {
                return Ok(None);
            }
            if !told {
                reporter.emit(Event::Blocking {
                    dir: profile_dir.display().to_string(),
                });
                told = true;
            }
            match shared {
                true => file.lock_shared(),
                false => file.lock(),
            }
            .map_err(Error::io("lock", &path))?;
        }
        files.push(file);
    }
    Ok(Some(CargoLock { _files: files }))
}

/// Whether cargo has ever locked this profile dir (it creates its locks
/// on first use).
pub(super) fn cargo_used(profile_dir: &Path) -> bool {
    layout::LOCKS
        .iter()
        .any(|name| profile_dir.join(name).exists())
}

/// An exclusive advisory lock (flock), as cargo takes on its lock files.
pub(super) fn lock_file(path: &Path) -> Result<File, Error> {
    let file = open_lock(path)?;
    file.lock().map_err(Error::io("lock", path))?;
    Ok(file)
}

pub(super) fn open_lock(path: &Path) -> Result<File, Error> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(Error::io("open", path))
}
