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
const PREFIX: &str = ".cargo-seed-prefetch-";
/// Held locked by the seed that copies into the directory it is in.
const LOCK: &str = ".lock";

/// Removes what a seed that was killed left of its prefetch directories
/// in `build_dir`: those whose lock no seed holds.
pub(crate) fn remove_leftovers(build_dir: &Path) {
    for entry in fs::read_dir(build_dir).into_iter().flatten().flatten() {
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
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
    /// The directory, and its lock; taken by [`Prefetch::finish`].
    place: Option<(tempfile::TempDir, fs::File)>,
    queue: Option<mpsc::Sender<PathBuf>>,
    queued: HashSet<PathBuf>,
    workers: Vec<JoinHandle<Vec<(PathBuf, Files)>>>,
    /// Set when the budget is spent, or the seed gave up: what is still
    /// queued is skipped.
    enough: Arc<AtomicBool>,
}

/// What the prefetch copied, by member.
pub(super) struct Prefetched {
    dir: tempfile::TempDir,
    _lock: fs::File,
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
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .tempdir_in(build_dir)?;
        let lock = fs::File::create(dir.path().join(LOCK))?;
        lock.lock()?;
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
                            Ok(()) => {
                                let bytes: u64 = files.iter().map(|(_, n)| n).sum();
                                if copied.fetch_add(bytes, Ordering::Relaxed) + bytes > budget {
                                    enough.store(true, Ordering::Relaxed);
                                }
                                done.push((member, files));
                            }
                            // Left to staging, which copies it again and
                            // reports what fails.
                            Err(_) => {
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
            place: Some((dir, lock)),
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
        let (dir, lock) = self.place.take().expect("taken once");
        Prefetched {
            dir,
            _lock: lock,
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
            files.iter().try_for_each(|(rel, _)| {
                fs::File::options()
                    .write(true)
                    .open(root.join(rel))?
                    .set_times(times)
            })
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
