//! `cargo seed clean-local`: the build dirs of this repository's checkouts
//! on this machine, how much each holds and when a build last wrote there,
//! and, with `--apply`, the removal of what no build will use again:
//!
//! | what | removed when |
//! |---|---|
//! | the build dir of a checkout that is gone | it looks like a cargo build dir, no existing checkout's root or build dir is in it or around it, and no build holds cargo's lock on a profile dir in it |
//! | an incremental session | rustc will not load it again ([`obsolete_sessions`], rustc's own rule), and no build holds cargo's lock on its profile dir |
//!
//! A gone checkout's build dir matters when it was not inside the checkout
//! (`CARGO_TARGET_DIR`, `build.build-dir` elsewhere): `rm -rf` of a
//! worktree, or `git worktree remove`, leaves it behind. Only the registry
//! of checkouts cargo-seed has seen knows where it is.
//!
//! Sizes count each file once by (device, inode), so hard links between
//! sessions, or between build dirs, are not counted twice; what a removal
//! frees counts only files whose every link it removes. A build dir's last
//! use is the newest modification time of anything below it: the last time
//! a build wrote there (a build that compiles nothing writes nothing, and
//! cargo's lock files keep the time they were made).
//!
//! It must never remove anything without `--apply`, nor a directory that
//! does not look like cargo's, nor anything an existing checkout builds in
//! but obsolete sessions, nor wait for a lock: what a build holds is
//! skipped, and said.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cargo::layout::{self, INCREMENTAL};
use crate::cargo::workspace::Workspace;
use crate::local::checkouts::{checkouts, forget, Checkout};
use crate::report::{Event, Garbage, Reporter};
use crate::rustc::incremental::{obsolete_sessions, Obsolete};
use crate::Error;

/// What `clean-local` removed (or would).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Cleaned {
    pub build_dirs: usize,
    pub sessions: usize,
    /// Sessions that would be removed but that a rustc holds.
    pub sessions_held: usize,
    /// What the removals free, in bytes.
    pub freed: u64,
}

/// One checkout and its build dir as listed.
struct Row {
    checkout: Checkout,
    current: bool,
}

/// What to remove, found with every lock its removal needs held.
#[derive(Default)]
struct Plan {
    garbage: Vec<Item>,
    /// Gone checkouts whose record has served once the plan is carried out.
    forget: Vec<PathBuf>,
    sessions_held: usize,
    /// Cargo's locks on every profile dir removed from, held until the
    /// plan is dropped.
    _locks: Vec<Vec<File>>,
}

enum Item {
    BuildDir { dir: PathBuf, checkout: String },
    Session(Obsolete),
}

/// Lists the build dirs of the checkouts of `ws`'s repository and what
/// would be removed; with `apply`, removes it.
pub(crate) fn clean_local(
    ws: &Workspace,
    apply: bool,
    reporter: &Reporter,
) -> Result<Cleaned, Error> {
    let rows = survey(ws)?;
    let total_bytes = list(&rows, reporter);
    let plan = plan(ws, &rows, apply, reporter)?;
    let cleaned = carry_out(plan, apply, reporter)?;
    reporter.emit(Event::CleanedLocal {
        dry_run: !apply,
        checkouts: rows.len(),
        total_bytes,
        build_dirs_removed: cleaned.build_dirs,
        sessions_removed: cleaned.sessions,
        sessions_held: cleaned.sessions_held,
        bytes_freed: cleaned.freed,
    });
    Ok(cleaned)
}

/// This checkout, then the others.
fn survey(ws: &Workspace) -> Result<Vec<Row>, Error> {
    let here = Checkout {
        root: ws.root.clone(),
        head: crate::git::resolve_commit(&ws.root, "HEAD").ok(),
        worktree: true,
        exists: true,
        build_dir: Some(ws.build_dir.clone()),
    };
    let mut rows = vec![Row {
        checkout: here,
        current: true,
    }];
    rows.extend(checkouts(&ws.root)?.into_iter().map(|checkout| Row {
        checkout,
        current: false,
    }));
    Ok(rows)
}

/// Emits a row per checkout; returns the bytes of every build dir, each
/// file counted once.
fn list(rows: &[Row], reporter: &Reporter) -> u64 {
    let mut all = Files::default();
    for row in rows {
        let c = &row.checkout;
        let dir = c.build_dir.as_deref().filter(|d| is_real_dir(d));
        let (bytes, last_used) = match dir {
            Some(dir) => {
                let mut files = Files::default();
                let newest = files.add(dir);
                all.merge(&files);
                (Some(files.bytes()), newest.map(unix_secs))
            }
            None => (None, None),
        };
        reporter.emit(Event::LocalCheckout {
            root: c.root.display().to_string(),
            head: c.head.clone(),
            worktree: c.worktree,
            exists: c.exists,
            current: row.current,
            build_dir: c.build_dir.as_ref().map(|d| d.display().to_string()),
            bytes,
            last_used,
        });
    }
    all.bytes()
}

/// What to remove: the build dirs of gone checkouts, then the obsolete
/// sessions in the build dirs of those that exist.
fn plan(ws: &Workspace, rows: &[Row], apply: bool, reporter: &Reporter) -> Result<Plan, Error> {
    let live = live_paths(ws, rows);
    let mut plan = Plan::default();
    for row in rows.iter().filter(|r| !r.checkout.exists) {
        match gone_build_dir(row, &live, apply, reporter)? {
            Gone::Remove(item, locks) => {
                plan.garbage.push(item);
                plan._locks.push(locks);
            }
            Gone::Keep => {}
            // Asked again next time.
            Gone::Busy => continue,
        }
        plan.forget.push(row.checkout.root.clone());
    }
    let mut build_dirs = HashSet::new();
    for row in rows.iter().filter(|r| r.checkout.exists) {
        let Some(dir) = &row.checkout.build_dir else {
            continue;
        };
        if build_dirs.insert(dir.clone()) {
            for profile_dir in profile_dirs(dir) {
                obsolete_in(&profile_dir, apply, &mut plan, reporter)?;
            }
        }
    }
    Ok(plan)
}

/// Says what each item frees, and with `apply` removes it; then forgets
/// the gone checkouts dealt with.
fn carry_out(plan: Plan, apply: bool, reporter: &Reporter) -> Result<Cleaned, Error> {
    let mut cleaned = Cleaned {
        sessions_held: plan.sessions_held,
        ..Cleaned::default()
    };
    let mut all = Files::default();
    for item in plan.garbage {
        let (dir, garbage) = match &item {
            Item::BuildDir { dir, checkout } => {
                cleaned.build_dirs += 1;
                let checkout = checkout.clone();
                (dir.clone(), Garbage::BuildDir { checkout })
            }
            Item::Session(session) => {
                cleaned.sessions += 1;
                (session.dir.clone(), Garbage::Session { why: session.why })
            }
        };
        let mut files = Files::default();
        files.add(&dir);
        all.merge(&files);
        reporter.emit(Event::LocalRemoval {
            path: dir.display().to_string(),
            garbage,
            bytes: files.freed(),
            dry_run: !apply,
        });
        if apply {
            match item {
                Item::BuildDir { .. } => fs::remove_dir_all(&dir),
                Item::Session(session) => session.remove(),
            }
            .map_err(Error::io("remove", &dir))?;
        }
    }
    if apply {
        for root in &plan.forget {
            // Its record has served: nothing of it is left to find.
            let _ = forget(root);
        }
    }
    cleaned.freed = all.freed();
    Ok(cleaned)
}

/// The roots and build dirs of every checkout that exists (this one's
/// target dir too): no removal may touch them, inside or around.
fn live_paths(ws: &Workspace, rows: &[Row]) -> Vec<PathBuf> {
    let mut live = vec![ws.root.clone(), ws.build_dir.clone(), ws.target_dir.clone()];
    for row in rows.iter().filter(|r| r.checkout.exists) {
        live.push(row.checkout.root.clone());
        live.extend(row.checkout.build_dir.clone());
    }
    live.iter().map(|p| canonical(p)).collect()
}

/// What becomes of a gone checkout's build dir.
enum Gone {
    /// Removed, under cargo's locks on its profile dirs.
    Remove(Item, Vec<File>),
    /// Not there, or never to be removed (said why).
    Keep,
    /// A build holds it (said).
    Busy,
}

/// A gone checkout's build dir: to remove when it is safe to.
fn gone_build_dir(
    row: &Row,
    live: &[PathBuf],
    apply: bool,
    reporter: &Reporter,
) -> Result<Gone, Error> {
    let checkout = row.checkout.root.display().to_string();
    let Some(dir) = row.checkout.build_dir.as_deref().filter(|d| is_real_dir(d)) else {
        return Ok(Gone::Keep);
    };
    let skip = |reason: String| {
        reporter.emit(Event::Skipped {
            what: format!(
                "{}, the build dir of gone checkout {checkout}",
                dir.display()
            ),
            reason,
        })
    };
    let dir = canonical(dir);
    if let Some(p) = live
        .iter()
        .find(|p| p.starts_with(&dir) || dir.starts_with(p))
    {
        skip(format!("{} exists and is in it or around it", p.display()));
        return Ok(Gone::Keep);
    }
    if !looks_like_build_dir(&dir) {
        skip("it does not look like a cargo build dir (no CACHEDIR.TAG from cargo, no .rustc_info.json, no profile dir with cargo's lock)".into());
        return Ok(Gone::Keep);
    }
    let mut locks = Vec::new();
    for profile_dir in profile_dirs(&dir) {
        match try_lock_cargo(&profile_dir, apply).map_err(Error::io("lock", &profile_dir))? {
            Some(held) => locks.extend(held),
            None => {
                skip(format!(
                    "a build holds cargo's lock on {}",
                    profile_dir.display()
                ));
                return Ok(Gone::Busy);
            }
        }
    }
    Ok(Gone::Remove(Item::BuildDir { dir, checkout }, locks))
}

/// Adds the obsolete incremental sessions of one profile dir to the plan,
/// with cargo's lock on it, taken without waiting.
fn obsolete_in(
    profile_dir: &Path,
    apply: bool,
    plan: &mut Plan,
    reporter: &Reporter,
) -> Result<(), Error> {
    let incremental = profile_dir.join(INCREMENTAL);
    let Ok(crates) = fs::read_dir(&incremental) else {
        return Ok(());
    };
    let Some(lock) = try_lock_cargo(profile_dir, apply).map_err(Error::io("lock", profile_dir))?
    else {
        reporter.emit(Event::Skipped {
            what: format!("the incremental sessions in {}", profile_dir.display()),
            reason: "a build holds cargo's lock on it".into(),
        });
        return Ok(());
    };
    plan._locks.push(lock);
    let now = SystemTime::now();
    for entry in crates.flatten() {
        let crate_dir = entry.path();
        if !is_real_dir(&crate_dir) {
            continue;
        }
        let found = obsolete_sessions(&crate_dir, now).map_err(Error::io("read", &crate_dir))?;
        if found.unrecognised {
            reporter.emit(Event::Skipped {
                what: format!("the incremental sessions in {}", crate_dir.display()),
                reason: "it holds names rustc does not write".into(),
            });
        }
        plan.sessions_held += found.held;
        plan.garbage
            .extend(found.obsolete.into_iter().map(Item::Session));
    }
    Ok(())
}

/// Cargo's locks on a profile dir ([`layout::LOCKS`]), each taken
/// exclusively without waiting, as `seed/swap` takes them waiting: `None`
/// when a build holds one. Without `create`, a lock file cargo has not
/// made is not made either (and not needed: no cargo that takes it ran).
fn try_lock_cargo(profile_dir: &Path, create: bool) -> io::Result<Option<Vec<File>>> {
    let mut held = Vec::new();
    for name in layout::LOCKS {
        let path = profile_dir.join(name);
        let file = match File::options()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => continue,
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => held.push(file),
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    Ok(Some(held))
}

/// The profile dirs of a build dir: `<build-dir>/<profile>` and a cross
/// build's `<build-dir>/<triple>/<profile>`, known by cargo's lock files or
/// an incremental dir.
fn profile_dirs(build_dir: &Path) -> Vec<PathBuf> {
    let is_profile = |d: &Path| {
        d.join(INCREMENTAL).is_dir() || layout::LOCKS.iter().any(|l| d.join(l).is_file())
    };
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_real_dir(p))
            .collect();
        v.sort();
        v
    };
    let mut out = Vec::new();
    for d in subdirs(build_dir) {
        if is_profile(&d) {
            out.push(d);
        } else {
            out.extend(subdirs(&d).into_iter().filter(|p| is_profile(p)));
        }
    }
    out
}

/// Whether cargo made this directory: its `CACHEDIR.TAG`, its cache of
/// what rustc said, or a profile dir with its lock.
fn looks_like_build_dir(dir: &Path) -> bool {
    let tag = fs::read_to_string(dir.join("CACHEDIR.TAG")).is_ok_and(|t| {
        t.starts_with("Signature: 8a477f597d28d172789f06886806bc55") && t.contains("cargo")
    });
    tag || dir.join(".rustc_info.json").is_file()
        || profile_dirs(dir)
            .iter()
            .any(|p| layout::LOCKS.iter().any(|l| p.join(l).is_file()))
}

/// A directory, not a link to one.
fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Files seen below some directories, each once by (device, inode), with
/// the bytes it takes on disk, its link count and how many of its links
/// were seen.
#[derive(Debug, Default)]
struct Files(HashMap<(u64, u64), Seen>);

#[derive(Debug, Clone, Copy)]
struct Seen {
    bytes: u64,
    links: u64,
    seen: u64,
}

impl Files {
    /// Walks `dir` (links are not followed); returns the newest
    /// modification time below it, itself included.
    fn add(&mut self, dir: &Path) -> Option<SystemTime> {
        use std::os::unix::fs::MetadataExt;
        let mut newest = fs::symlink_metadata(dir).and_then(|m| m.modified()).ok();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            for entry in fs::read_dir(&d).into_iter().flatten().flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if let Ok(t) = meta.modified() {
                    newest = newest.max(Some(t));
                }
                if meta.is_dir() {
                    stack.push(entry.path());
                    continue;
                }
                let seen = self.0.entry((meta.dev(), meta.ino())).or_insert(Seen {
                    bytes: meta.blocks() * 512,
                    links: meta.nlink(),
                    seen: 0,
                });
                seen.seen += 1;
            }
        }
        newest
    }

    /// Adds what `other` saw (walks of disjoint directories).
    fn merge(&mut self, other: &Files) {
        for (key, s) in &other.0 {
            self.0
                .entry(*key)
                .and_modify(|mine| mine.seen += s.seen)
                .or_insert(*s);
        }
    }

    /// The bytes of every file seen.
    fn bytes(&self) -> u64 {
        self.0.values().map(|s| s.bytes).sum()
    }

    /// The bytes removing everything seen would free: of the files whose
    /// every link was seen.
    fn freed(&self) -> u64 {
        self.0
            .values()
            .filter(|s| s.seen >= s.links)
            .map(|s| s.bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hard_link_is_counted_once_and_frees_nothing_while_another_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let (old, new) = (d.path().join("old"), d.path().join("new"));
        fs::create_dir_all(&old).unwrap();
        fs::create_dir_all(&new).unwrap();
        fs::write(old.join("shared.o"), vec![1u8; 64 << 10]).unwrap();
        fs::hard_link(old.join("shared.o"), new.join("shared.o")).unwrap();
        fs::write(old.join("own.o"), vec![2u8; 32 << 10]).unwrap();

        let mut both = Files::default();
        both.add(d.path());
        let mut only_old = Files::default();
        only_old.add(&old);
        let shared = fs::metadata(old.join("shared.o")).unwrap();
        let own = fs::metadata(old.join("own.o")).unwrap();
        use std::os::unix::fs::MetadataExt;
        let (shared, own) = (shared.blocks() * 512, own.blocks() * 512);
        assert_eq!(both.bytes(), shared + own, "the link is counted once");
        assert_eq!(only_old.bytes(), shared + own);
        assert_eq!(only_old.freed(), own, "the shared file stays linked in new");
        assert_eq!(both.freed(), shared + own);
    }

    #[test]
    fn a_build_dir_is_known_by_what_cargo_writes() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        fs::write(dir.join("notes.txt"), b"mine").unwrap();
        assert!(!looks_like_build_dir(dir));
        fs::write(
            dir.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55\n# made by a backup tool\n",
        )
        .unwrap();
        assert!(!looks_like_build_dir(dir), "another tool's cache tag");
        fs::create_dir_all(dir.join("debug")).unwrap();
        fs::write(dir.join("debug/.cargo-lock"), b"").unwrap();
        assert!(looks_like_build_dir(dir));
        assert_eq!(profile_dirs(dir), [dir.join("debug")]);
    }
}
