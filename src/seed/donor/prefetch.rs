//! Copies of a donor's units made while cargo says which are fresh and the
//! seed plans and judges them: each unit is queued as soon as cargo reports
//! it fresh, so that copying (most of a `--from`) overlaps the rest. Only
//! units cargo found fresh are copied, never what else a build dir
//! holds. The copies go to a directory in this checkout's build dir, on the
//! staging dir's file system, and staging then takes them by rename; what
//! staging does not take (a unit judged to rebuild here) is removed with
//! the directory.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

use super::copy::{copy_tree, Mapping};
use crate::seed::cancel::CANCEL;

/// A member's files, relative to the profile dir, with their sizes.
type Files = Vec<(PathBuf, u64)>;

/// The prefix of a prefetch directory's name in the build dir.
pub(super) const PREFIX: &str = ".cargo-seed-prefetch-";
/// Held locked by the seed that uses the directory it is in.
const LOCK: &str = ".lock";

/// A directory of this seed's own, held locked while it exists, removed on
/// drop.
pub(super) struct Held {
    dir: tempfile::TempDir,
    _lock: fs::File,
}

impl Held {
    /// A new directory in `place`, named `prefix` and a random suffix.
    pub(super) fn new(place: &Path, prefix: &str) -> std::io::Result<Held> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(place)?;
        let lock = fs::File::create(dir.path().join(LOCK))?;
        lock.lock()?;
        Ok(Held { dir, _lock: lock })
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the directories named `prefix…` in `place` that a killed seed
/// left: those whose lock no seed holds (or that have none).
pub(super) fn remove_unheld(place: &Path, prefix: &str) {
    for entry in fs::read_dir(place).into_iter().flatten().flatten() {
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let free = fs::File::open(entry.path().join(LOCK)).map_or(true, |f| f.try_lock().is_ok());
        if free {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Copying in the background; [`Prefetch::finish`] waits for it.
pub(super) struct Prefetch {
    /// The directory; taken by [`Prefetch::finish`].
    place: Option<Held>,
    queue: Option<mpsc::Sender<PathBuf>>,
    queued: HashSet<PathBuf>,
    workers: Vec<JoinHandle<Vec<(PathBuf, Files)>>>,
    /// Set when the budget is spent, or the seed gave up: what is still
    /// queued is skipped.
    enough: Arc<AtomicBool>,
}

/// What the prefetch copied, by member.
pub(super) struct Prefetched {
    dir: Held,
    members: Mutex<HashMap<PathBuf, Files>>,
}

impl Prefetch {
    /// Starts `threads` copiers from the profile dir `from` into a new
    /// directory in `build_dir`, which stop taking members once `budget`
    /// bytes are copied.
    pub(super) fn start(
        from: &Path,
        build_dir: &Path,
        threads: usize,
        budget: u64,
        mapping: Arc<Mapping>,
    ) -> std::io::Result<Prefetch> {
        let dir = Held::new(build_dir, PREFIX)?;
        let (queue, rx) = mpsc::channel::<PathBuf>();
        let rx = Arc::new(Mutex::new(rx));
        let copied = Arc::new(AtomicU64::new(0));
        let enough = Arc::new(AtomicBool::new(false));
        let workers = (0..threads.max(1))
            .map(|_| {
                let (rx, copied, enough) = (rx.clone(), copied.clone(), enough.clone());
                let mapping = mapping.clone();
                let (from, to) = (from.to_owned(), dir.path().to_owned());
                std::thread::spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let next = rx.lock().expect("not poisoned").recv();
                        let Ok(member) = next else { break };
                        if CANCEL.load(Ordering::Relaxed) || enough.load(Ordering::Relaxed) {
                            continue;
                        }
                        let mut files = Vec::new();
                        // Stamped again when staging takes it.
                        let now = SystemTime::now();
                        match copy_tree(&from, &to, &member, (now, &mapping), &mut files) {
                            Ok(false) => {
                                let bytes: u64 = files.iter().map(|(_, n)| n).sum();
                                if copied.fetch_add(bytes, Ordering::Relaxed) + bytes > budget {
                                    enough.store(true, Ordering::Relaxed);
                                }
                                done.push((member, files));
                            }
                            // Left to staging, which copies it again (a
                            // link too) and reports what fails.
                            Ok(true) | Err(_) => {
                                let _ = fs::remove_dir_all(to.join(&member))
                                    .or_else(|_| fs::remove_file(to.join(&member)));
                            }
                        }
                    }
                    done
                })
            })
            .collect();
        Ok(Prefetch {
            place: Some(dir),
            queue: Some(queue),
            queued: HashSet::new(),
            workers,
            enough,
        })
    }

    /// Queues the members of a unit cargo found fresh (each once).
    pub(super) fn queue(&mut self, members: &[PathBuf]) {
        for m in members {
            if self.queued.insert(m.clone()) {
                if let Some(q) = &self.queue {
                    let _ = q.send(m.clone());
                }
            }
        }
    }

    /// Waits for the copies queued so far.
    pub(super) fn finish(mut self) -> Prefetched {
        let members = self.stop().into_iter().collect();
        let dir = self.place.take().expect("taken once");
        Prefetched {
            dir,
            members: Mutex::new(members),
        }
    }

    /// Closes the queue and waits for the copiers to finish what they
    /// took from it.
    fn stop(&mut self) -> Vec<(PathBuf, Files)> {
        self.queue = None;
        self.workers
            .drain(..)
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    }
}

impl Drop for Prefetch {
    /// Not finished (the seed failed before staging): the copiers stop
    /// before the directory is removed, so none writes into it after.
    fn drop(&mut self) {
        self.enough.store(true, Ordering::Relaxed);
        self.stop();
    }
}

impl Prefetched {
    /// Bytes already copied of `members`.
    pub(super) fn bytes_of<'a>(&self, members: impl Iterator<Item = &'a PathBuf>) -> u64 {
        let Ok(done) = self.members.lock() else {
            return 0;
        };
        members
            .filter_map(|m| done.get(m))
            .flatten()
            .map(|(_, n)| n)
            .sum()
    }

    /// Moves the copy of `member` to the same place below `root`, every
    /// file stamped `stamp`; returns its files, or `None` if there is no
    /// copy of it.
    pub(super) fn take(&self, member: &Path, root: &Path, stamp: SystemTime) -> Option<Files> {
        let files = self.members.lock().ok()?.remove(member)?;
        let dest = root.join(member);
        let moved = dest
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| fs::rename(self.dir.path().join(member), &dest));
        let times = fs::FileTimes::new().set_modified(stamp).set_accessed(stamp);
        let stamped = moved.and_then(|()| {
            files
                .iter()
                .try_for_each(|(rel, _)| fs::File::open(root.join(rel))?.set_times(times))
        });
        match stamped {
            Ok(()) => Some(files),
            // Copied from the donor again by the caller, over whatever of
            // it is there.
            Err(_) => {
                let _ = fs::remove_dir_all(&dest).or_else(|_| fs::remove_file(&dest));
                None
            }
        }
    }
}
