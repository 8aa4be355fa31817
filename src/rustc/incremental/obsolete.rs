//! Which of a crate's incremental sessions rustc will never load again, by
//! rustc's own rule (`compiler/rustc_incremental/src/persist/fs.rs`), so
//! that `cargo seed clean-local` can remove them.
//!
//! A crate's incremental dir (`<profile>/incremental/<crate>-<id>/`) holds
//! session directories and their lock files:
//!
//! | entry | what it is |
//! |---|---|
//! | `s-<time>-<random>-working` | a session a rustc is writing (or one a killed rustc left) |
//! | `s-<time>-<random>-<svh>` | a finalized session; never changed again |
//! | `s-<time>-<random>.lock` | the session's lock file, created and locked before the directory |
//!
//! `<time>` is microseconds since the Unix epoch, in base 36, as are the
//! random number and the SVH. rustc starts a session from the newest
//! finalized one (by `<time>`) that it can lock shared, and after a
//! successful session removes what it will not load again:
//!
//! - finalized sessions but the newest, each once it holds its lock
//!   exclusively without waiting (a held lock is a rustc copying from it);
//! - `-working` sessions older than ten seconds (the window between making
//!   a lock file and locking it) whose lock it can take the same way (a
//!   held one is a running rustc);
//! - session directories without a lock file (no rustc can lock, so none
//!   can load, them).
//!
//! [`obsolete_sessions`] applies the same rule, with two differences, both
//! toward keeping: the session kept is the newest finalized one *that has
//! a lock file* (the one rustc can load), and a directory holding any
//! entry whose name is not one of the above is left alone whole, as a
//! format this module does not know.
//!
//! It must never remove a session rustc may load or one a rustc holds: a
//! removal is made only through an [`Obsolete`], which holds the session's
//! lock until the session and its lock file are gone.

use std::collections::HashMap;
use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long rustc leaves a `-working` session alone whatever its lock says.
const YOUNG: Duration = Duration::from_secs(10);

/// Why rustc will not load a session again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stale {
    /// A finalized session older than the one rustc loads.
    Superseded,
    /// A `-working` session no rustc holds: one a killed rustc left.
    Abandoned,
    /// A session without a lock file, which no rustc can lock to load.
    Unlocked,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stale::Superseded => "older than the session rustc loads",
            Stale::Abandoned => "left unfinished by a rustc that is gone",
            Stale::Unlocked => "without the lock file rustc loads a session under",
        })
    }
}

/// A session rustc will not load again. While it exists its lock file (if
/// any) is held exclusively, so no rustc starts copying from it.
#[derive(Debug)]
pub struct Obsolete {
    pub dir: PathBuf,
    pub why: Stale,
    lock_file: Option<(PathBuf, File)>,
}

impl Obsolete {
    /// Removes the session, then its lock file, then lets go of the lock:
    /// rustc's order, so no other rustc sees the directory without its lock.
    pub fn remove(self) -> io::Result<()> {
        fs::remove_dir_all(&self.dir)?;
        if let Some((path, _held)) = &self.lock_file {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// What [`obsolete_sessions`] found in one crate's incremental dir.
#[derive(Debug, Default)]
pub struct Sessions {
    pub obsolete: Vec<Obsolete>,
    /// Sessions that would be obsolete but that a rustc holds.
    pub held: usize,
    /// The directory holds entries this module does not recognise, so
    /// nothing in it is called obsolete.
    pub unrecognised: bool,
}

/// A session directory's name, or a lock file's, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    /// `s-<time>-<random>`: what a session and its lock file share.
    stem: String,
    time: SystemTime,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Working,
    Finalized,
    Lock,
}

fn is_base36(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// Reads an entry's name by rustc's grammar; `None` for any other name.
fn parse(name: &str) -> Option<Name> {
    let (body, lock) = match name.strip_suffix(".lock") {
        Some(body) => (body, true),
        None => (name, false),
    };
    let parts: Vec<&str> = body.split('-').collect();
    let kind = match (lock, parts.as_slice()) {
        (true, ["s", _, _]) => Kind::Lock,
        (false, ["s", _, _, "working"]) => Kind::Working,
        (false, ["s", _, _, svh]) if is_base36(svh) => Kind::Finalized,
        _ => return None,
    };
    let (time, random) = (parts[1], parts[2]);
    if !is_base36(time) || !is_base36(random) {
        return None;
    }
    let micros = u64::from_str_radix(time, 36).ok()?;
    Some(Name {
        stem: format!("s-{time}-{random}"),
        time: UNIX_EPOCH + Duration::from_micros(micros),
        kind,
    })
}

/// Whether the lock file is free: it is then held, exclusively, by the
/// returned file. `Ok(None)` when a rustc holds it.
///
/// rustc locks with `flock` on Linux (`rustc_data_structures::flock`), as
/// `File::try_lock` does; on other Unix systems rustc takes `fcntl` locks,
/// which BSD-derived systems (macOS) make conflict with `flock`.
fn try_hold(lock: &Path) -> io::Result<Option<File>> {
    let file = File::options().read(true).write(true).open(lock)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// The sessions of one crate's incremental dir that rustc will not load
/// again (see the module's table), each held under its lock; `now` is the
/// time the ten-second rule counts from.
pub fn obsolete_sessions(crate_dir: &Path, now: SystemTime) -> io::Result<Sessions> {
    let mut sessions = Vec::new();
    let mut locks = HashMap::new();
    for entry in fs::read_dir(crate_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(parsed) = name.to_str().and_then(parse) else {
            return Ok(Sessions {
                unrecognised: true,
                ..Sessions::default()
            });
        };
        match parsed.kind {
            Kind::Lock => {
                locks.insert(parsed.stem.clone(), entry.path());
            }
            Kind::Working | Kind::Finalized => sessions.push((parsed, entry.path())),
        }
    }
    // The session rustc loads: the newest finalized one it can lock.
    let loaded = sessions
        .iter()
        .filter(|(n, _)| n.kind == Kind::Finalized && locks.contains_key(&n.stem))
        .map(|(n, _)| n.time)
        .max();
    let mut found = Sessions::default();
    for (name, dir) in sessions {
        let young = now.duration_since(name.time).unwrap_or_default() < YOUNG;
        let why = match (locks.contains_key(&name.stem), name.kind) {
            (false, _) => Stale::Unlocked,
            (true, Kind::Finalized) if Some(name.time) == loaded => continue,
            (true, Kind::Finalized) => Stale::Superseded,
            (true, _) if young => continue,
            (true, _) => Stale::Abandoned,
        };
        let lock_file = match locks.get(&name.stem) {
            None => None,
            Some(path) => match try_hold(path) {
                Ok(Some(file)) => Some((path.clone(), file)),
                Ok(None) => {
                    found.held += 1;
                    continue;
                }
                // Gone meanwhile (a rustc removed the session): not ours.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            },
        };
        found.obsolete.push(Obsolete {
            dir,
            why,
            lock_file,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names a real rustc (1.95) wrote, from a build dir.
    const FINAL: &str = "s-hot15xdii2-15hppy4-cvez5nghasomumh04uk1qmmdc";

    #[test]
    fn reads_rustcs_names_and_no_others() {
        let n = parse(FINAL).unwrap();
        assert_eq!(n.stem, "s-hot15xdii2-15hppy4");
        assert_eq!(n.kind, Kind::Finalized);
        let secs = n.time.duration_since(UNIX_EPOCH).unwrap().as_secs();
        // Late 2026 by the clock of the machine that ran that build.
        assert!((1_790_000_000..1_800_000_000).contains(&secs), "{secs}");
        assert_eq!(parse("s-hot15xdii2-15hppy4.lock").unwrap().kind, Kind::Lock);
        assert_eq!(
            parse("s-hot15xdii2-15hppy4-working").unwrap().kind,
            Kind::Working
        );
        for other in [
            "s-hot15xdii2-15hppy4",
            "s-HOT15XDII2-15hppy4-x",
            "s-hot15xdii2-15hppy4-x-y",
            "t-hot15xdii2-15hppy4-x",
            "s--15hppy4-x",
            "dep-graph.bin",
            "s-hot15xdii2-15hppy4-x.lock",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    /// `s-<time>-<random>-<tail>`, `time` seconds after a fixed moment, and
    /// its lock file when `lock`.
    fn session(dir: &Path, time: u64, random: &str, tail: &str, lock: bool) -> String {
        let mut micros = 1_700_000_000_000_000 + time * 1_000_000;
        let mut digits = Vec::new();
        while micros > 0 {
            digits.push(char::from_digit((micros % 36) as u32, 36).unwrap());
            micros /= 36;
        }
        let stem = format!("s-{}-{random}", digits.iter().rev().collect::<String>());
        let name = format!("{stem}-{tail}");
        fs::create_dir_all(dir.join(&name)).unwrap();
        fs::write(dir.join(&name).join("dep-graph.bin"), b"graph").unwrap();
        if lock {
            fs::write(dir.join(format!("{stem}.lock")), b"").unwrap();
        }
        name
    }

    fn names(s: &Sessions) -> Vec<(String, Stale)> {
        let mut v: Vec<(String, Stale)> = s
            .obsolete
            .iter()
            .map(|o| (o.dir.file_name().unwrap().to_string_lossy().into(), o.why))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn keeps_the_session_rustc_loads_and_those_in_use() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 100);
        let older = session(dir, 0, "aaa", "svh1", true);
        let loaded = session(dir, 10, "bbb", "svh2", true);
        let lockless = session(dir, 20, "ccc", "svh3", false);
        let abandoned = session(dir, 1, "ddd", "working", true);
        let young = session(dir, 95, "eee", "working", true);
        let held_dir = session(dir, 2, "fff", "svh4", true);
        let held_lock = format!("{}.lock", held_dir.strip_suffix("-svh4").unwrap());
        let held = File::options()
            .read(true)
            .write(true)
            .open(dir.join(&held_lock))
            .unwrap();
        held.lock().unwrap();

        let found = obsolete_sessions(dir, now).unwrap();
        assert_eq!(
            names(&found),
            [
                (older, Stale::Superseded),
                (abandoned, Stale::Abandoned),
                (lockless, Stale::Unlocked),
            ]
        );
        assert_eq!(found.held, 1);
        for o in found.obsolete {
            o.remove().unwrap();
        }
        let mut left: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .filter(|n: &String| !n.ends_with(".lock"))
            .collect();
        left.sort();
        let mut kept = vec![held_dir, loaded, young];
        kept.sort();
        assert_eq!(left, kept);
        let locks = fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".lock")
            })
            .count();
        assert_eq!(locks, 3, "the removed sessions' lock files go with them");
    }

    #[test]
    fn leaves_a_directory_it_does_not_recognise_alone() {
        let d = tempfile::tempdir().unwrap();
        session(d.path(), 0, "aaa", "svh1", true);
        session(d.path(), 10, "bbb", "svh2", true);
        fs::write(d.path().join("sessions.v2"), b"").unwrap();
        let found = obsolete_sessions(d.path(), SystemTime::now()).unwrap();
        assert!(found.unrecognised);
        assert!(found.obsolete.is_empty());
    }
}
