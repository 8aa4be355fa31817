//! The inputs a unit's freshness depends on, as both sides see them: the
//! directories a recorded input is relative to ([`Roots`]) and the digest
//! of a file or directory by content. Publish records these digests, a seed
//! compares them; one definition keeps the two from drifting apart.
//!
//! Nothing outside the roots is ever read: a recorded path that leads
//! elsewhere (a symlink, `..`) fails to digest, and the unit is rebuilt.
//!
//! A seed digests through [`Digests`]: each path once however many units
//! name it, and never more than its [`Budget`], since a manifest of a few
//! hundred bytes can name a directory of gigabytes, and name it again for
//! every unit.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::snapshot::manifest::Base;

/// The directories a recorded input may be relative to, on one machine.
///
/// Inputs are only ever read below these (after following symlinks), and
/// only regular files and directories are read: a manifest that names
/// `/dev/zero` or a file elsewhere on the machine gets "could not be read",
/// never a digest.
#[derive(Debug, Clone)]
pub(crate) struct Roots {
    pub workspace: PathBuf,
    pub repository: Option<PathBuf>,
    pub cargo_home: PathBuf,
    pub build_dir: PathBuf,
    /// The same, resolved, for containment checks.
    real: Vec<PathBuf>,
}

impl Roots {
    pub fn new(
        workspace: &Path,
        repository: Option<&Path>,
        cargo_home: &Path,
        build_dir: &Path,
    ) -> Roots {
        let all = [
            Some(workspace),
            repository,
            Some(cargo_home),
            Some(build_dir),
        ];
        let real = all
            .into_iter()
            .flatten()
            .filter_map(|p| fs::canonicalize(p).ok())
            .collect();
        Roots {
            workspace: workspace.to_owned(),
            repository: repository.map(Path::to_owned),
            cargo_home: cargo_home.to_owned(),
            build_dir: build_dir.to_owned(),
            real,
        }
    }

    /// The directory `base` names here (`None` for [`Base::Package`], and
    /// for the repository when the workspace is in none).
    pub fn dir(&self, base: Base) -> Option<&Path> {
        match base {
            Base::Package => None,
            Base::BuildDir => Some(&self.build_dir),
            Base::Workspace => Some(&self.workspace),
            Base::Repository => self.repository.as_deref(),
            Base::CargoHome => Some(&self.cargo_home),
        }
    }

    /// The narrowest of `bases` holding `abs` (a normalised absolute path),
    /// and the path relative to it.
    pub(crate) fn relativize(&self, abs: &Path, bases: &[Base]) -> Option<(Base, PathBuf)> {
        bases
            .iter()
            .filter_map(|b| {
                let rel = abs.strip_prefix(self.dir(*b)?).ok()?;
                Some((*b, rel.to_owned()))
            })
            .min_by_key(|(_, rel)| rel.components().count())
    }

    fn contains(&self, real: &Path) -> bool {
        self.real.iter().any(|r| real.starts_with(r))
    }
}

/// `path` with `.` and `..` resolved lexically; `None` if `..` climbs above
/// its start.
pub(crate) fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                _ => return None,
            },
            other => out.push(other),
        }
    }
    Some(out)
}

/// The most a seed reads to compare inputs by content, for all its units
/// together.
///
/// Without a bound, the work is the manifest's choice: one input of a few
/// hundred bytes naming `$CARGO_HOME/registry` costs a walk of the whole
/// registry, and [`Digests`] makes that once per path but a manifest can
/// still name many paths, nested ones included (each re-walks what is below
/// it). Honest inputs are source files, each named once and read once,
/// and now and then a directory a build script watches (`proto/`,
/// `assets/`): hundreds or thousands of entries, where cargo itself stats
/// every entry on every build. The limits sit far above that and far below
/// what would stall a seed (about half a million `stat`s and 4 GiB hashed
/// take seconds); an input past them is not compared and its unit is left
/// to cargo ([`Unchecked::OverBudget`]), so a limit costs reuse, never
/// soundness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Entries (files and directories) below one directory input.
    pub directory_entries: u64,
    /// Entries below all directory inputs together.
    pub entries: u64,
    /// Bytes of file contents read, for all inputs together.
    pub bytes: u64,
}

impl Budget {
    /// What one seed may read.
    pub(crate) const SEED: Budget = Budget {
        directory_entries: 100_000,
        entries: 500_000,
        bytes: 4 << 30,
    };

    /// For publish, which digests its own build's inputs.
    const UNLIMITED: Budget = Budget {
        directory_entries: u64::MAX,
        entries: u64::MAX,
        bytes: u64::MAX,
    };
}

/// What has been read so far: entries walked below directory inputs, and
/// bytes of file contents hashed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Work {
    pub entries: u64,
    pub bytes: u64,
}

/// Why an input's digest is not known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unchecked {
    /// It could not be read, or may not be (see [`digest_path`]).
    Unreadable(String),
    /// Digesting it would go past the [`Budget`].
    OverBudget,
}

/// The digests of the inputs one seed compares: each resolved path is
/// digested at most once (however many units name it, or by however many
/// names), and all of them within one [`Budget`].
#[derive(Debug)]
pub(crate) struct Digests<'r> {
    roots: &'r Roots,
    budget: Budget,
    done: Work,
    memo: HashMap<PathBuf, Result<Option<String>, Unchecked>>,
}

impl<'r> Digests<'r> {
    pub fn new(roots: &'r Roots, budget: Budget) -> Digests<'r> {
        Digests {
            roots,
            budget,
            done: Work::default(),
            memo: HashMap::new(),
        }
    }

    pub fn roots(&self) -> &'r Roots {
        self.roots
    }

    /// What has been read so far.
    #[cfg(test)]
    pub fn work(&self) -> Work {
        self.done
    }

    /// [`digest_path`]'s answer for `path`, unless that would read more
    /// than the budget has left.
    pub fn digest(&mut self, path: &Path) -> Result<Option<String>, Unchecked> {
        let real = match fs::canonicalize(path) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Unchecked::Unreadable(e.to_string())),
        };
        if let Some(known) = self.memo.get(&real) {
            return known.clone();
        }
        let mut meter = Meter {
            budget: self.budget,
            done: &mut self.done,
            walked: 0,
        };
        let result = match digest_real(&real, self.roots, &mut meter) {
            Ok(d) => Ok(Some(d)),
            Err(Stop::Io(e)) => Err(Unchecked::Unreadable(e.to_string())),
            Err(Stop::OverBudget) => Err(Unchecked::OverBudget),
        };
        self.memo.insert(real, result.clone());
        result
    }
}

/// Why a digest stopped short.
enum Stop {
    Io(io::Error),
    OverBudget,
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

/// Counts the work of one digest against the budget.
struct Meter<'w> {
    budget: Budget,
    done: &'w mut Work,
    /// Entries below the directory being digested.
    walked: u64,
}

impl Meter<'_> {
    fn entry(&mut self) -> Result<(), Stop> {
        self.walked += 1;
        self.done.entries += 1;
        if self.walked > self.budget.directory_entries || self.done.entries > self.budget.entries {
            return Err(Stop::OverBudget);
        }
        Ok(())
    }

    /// Before reading `n` more bytes.
    fn bytes(&mut self, n: u64) -> Result<(), Stop> {
        if self.done.bytes.saturating_add(n) > self.budget.bytes {
            return Err(Stop::OverBudget);
        }
        self.done.bytes += n;
        Ok(())
    }
}

/// sha256 of a file, or of everything below a directory (the names of its
/// files and subdirectories, empty ones included, and each file's contents
/// and executable bit, in sorted order); `None` when nothing is there.
///
/// Reads only regular files and directories that lie, after following
/// symlinks, below one of `roots`; anything else is an error.
pub(crate) fn digest_path(path: &Path, roots: &Roots) -> io::Result<Option<String>> {
    let real = match fs::canonicalize(path) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut done = Work::default();
    let mut meter = Meter {
        budget: Budget::UNLIMITED,
        done: &mut done,
        walked: 0,
    };
    match digest_real(&real, roots, &mut meter) {
        Ok(d) => Ok(Some(d)),
        Err(Stop::Io(e)) => Err(e),
        Err(Stop::OverBudget) => Err(io::Error::other("more than can be read")),
    }
}

/// [`digest_path`] of `real`, a resolved path that exists.
fn digest_real(real: &Path, roots: &Roots, meter: &mut Meter) -> Result<String, Stop> {
    let meta = readable(real, roots)?;
    let mut hasher = Sha256::new();
    if meta.is_dir() {
        let mut entries = Vec::new();
        walk(real, Path::new(""), roots, meter, &mut entries)?;
        entries.sort();
        for (rel, file) in entries {
            hasher.update(if file.is_some() { b"f\0" } else { b"d\0" });
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            if let Some(file) = file {
                hasher.update([u8::from(is_executable(&fs::metadata(&file)?))]);
                hasher.update(digest_file(&file, meter)?);
            }
        }
    } else {
        hasher.update(digest_file(real, meter)?);
    }
    Ok(hex(&hasher.finalize()))
}

/// The metadata of `real` (a resolved path) if it may be read.
fn readable(real: &Path, roots: &Roots) -> io::Result<fs::Metadata> {
    if !roots.contains(real) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "it lies outside the workspace, the repository, CARGO_HOME and the build dir",
        ));
    }
    let meta = fs::metadata(real)?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is not a regular file or a directory",
        ));
    }
    Ok(meta)
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &fs::Metadata) -> bool {
    false
}

fn digest_file(path: &Path, meter: &mut Meter) -> Result<[u8; 32], Stop> {
    let mut f = fs::File::open(path)?;
    // A file larger than the budget has left is not started on.
    if meter.done.bytes.saturating_add(f.metadata()?.len()) > meter.budget.bytes {
        return Err(Stop::OverBudget);
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        // Counted as read: a file that grows is stopped all the same.
        meter.bytes(n as u64)?;
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Every entry below `dir` (a resolved directory), by its name relative to
/// it, with the resolved file for files and `None` for directories.
fn walk(
    dir: &Path,
    rel: &Path,
    roots: &Roots,
    meter: &mut Meter,
    out: &mut Vec<(PathBuf, Option<PathBuf>)>,
) -> Result<(), Stop> {
    for entry in fs::read_dir(dir)? {
        meter.entry()?;
        let entry = entry?;
        let child = rel.join(entry.file_name());
        let real = fs::canonicalize(entry.path())?;
        if readable(&real, roots)?.is_dir() {
            // A link back up would recurse forever; cargo would not track it.
            if dir.starts_with(&real) {
                return Err(io::Error::other("a symlink loops back to a parent").into());
            }
            walk(&real, &child, roots, meter, out)?;
            out.push((child, None));
        } else {
            out.push((child, Some(real)));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Roots with only a workspace: tests need nothing else to be readable.
    pub(crate) fn roots(ws: &Path) -> Roots {
        Roots::new(
            ws,
            None,
            Path::new("/nonexistent"),
            Path::new("/nonexistent"),
        )
    }

    #[test]
    fn directory_digest_sees_a_new_file() {
        let d = tempfile::tempdir().unwrap();
        let roots = roots(d.path());
        fs::write(d.path().join("one"), "1").unwrap();
        let before = digest_path(d.path(), &roots).unwrap();
        fs::write(d.path().join("two"), "2").unwrap();
        let two = digest_path(d.path(), &roots).unwrap();
        assert_ne!(before, two);
        fs::create_dir(d.path().join("empty")).unwrap();
        assert_ne!(
            two,
            digest_path(d.path(), &roots).unwrap(),
            "an empty directory counts"
        );
        assert_eq!(digest_path(&d.path().join("none"), &roots).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_below_the_roots_are_read() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        fs::create_dir_all(ws.join("dir")).unwrap();
        fs::write(d.path().join("secret"), "outside").unwrap();
        fs::write(ws.join("inside"), "in").unwrap();
        let roots = roots(&ws);
        let link =
            |target: &Path, name: &str| std::os::unix::fs::symlink(target, ws.join(name)).unwrap();
        link(Path::new("inside"), "to-inside");
        link(&d.path().join("secret"), "to-secret");
        link(Path::new("/dev/zero"), "to-zero");
        assert_eq!(
            digest_path(&ws.join("to-inside"), &roots).unwrap(),
            digest_path(&ws.join("inside"), &roots).unwrap(),
            "a link within the workspace is read"
        );
        for name in ["to-secret", "to-zero"] {
            assert!(
                digest_path(&ws.join(name), &roots).is_err(),
                "{name} was read"
            );
        }
        assert!(digest_path(&d.path().join("secret"), &roots).is_err());
        assert!(digest_path(Path::new("/dev/zero"), &roots).is_err());
        // A directory holding a link out is not read either.
        std::os::unix::fs::symlink(d.path().join("secret"), ws.join("dir/out")).unwrap();
        assert!(digest_path(&ws.join("dir"), &roots).is_err());
    }

    #[test]
    fn lexical_normalisation_never_climbs_above_its_start() {
        assert_eq!(
            normalize(Path::new("/ws/a/src/../README.md")),
            Some(PathBuf::from("/ws/a/README.md"))
        );
        assert_eq!(
            normalize(Path::new("a/./b/../c")),
            Some(PathBuf::from("a/c"))
        );
        assert_eq!(normalize(Path::new("a/../../x")), None);
        assert_eq!(normalize(Path::new("/..")), None);
    }
}
