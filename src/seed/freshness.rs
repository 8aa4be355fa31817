//! Deciding by content which units cargo may reuse, and making cargo agree.
//!
//! Cargo decides a path unit's freshness by mtimes (an input newer than the
//! unit's dep-info makes it dirty), and a
//! fresh clone's mtimes say nothing about what changed. So cargo-seed compares
//! the digest of every file cargo tracks with what CI compiled. A unit whose
//! inputs all match is restored, every file stamped with one time `T` that is
//! not older than any of its inputs; a unit that differs, or depends on one
//! that does, is not restored at all, so cargo rebuilds it by its own rules
//! (a missing unit is never fresh, and its dependents see a stale dependency).
//!
//! This module must never report a unit fresh without having compared every
//! recorded input.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::snapshot::manifest::{Base, Check, Manifest, UnitKind};

/// The directories a recorded input may be relative to, on one machine.
///
/// Inputs are only ever read below these (after following symlinks), and
/// only regular files and directories are read: a manifest that names
/// `/dev/zero` or a file elsewhere on the machine gets "could not be read",
/// never a digest.
#[derive(Debug, Clone)]
pub struct Roots {
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
    pub fn relativize(&self, abs: &Path, bases: &[Base]) -> Option<(Base, PathBuf)> {
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
pub fn normalize(path: &Path) -> Option<PathBuf> {
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

/// sha256 of a file, or of everything below a directory (the names of its
/// files and subdirectories, empty ones included, and each file's contents
/// and executable bit, in sorted order); `None` when nothing is there.
///
/// Reads only regular files and directories that lie, after following
/// symlinks, below one of `roots`; anything else is an error.
pub fn digest_path(path: &Path, roots: &Roots) -> io::Result<Option<String>> {
    let real = match fs::canonicalize(path) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = readable(&real, roots)?;
    let mut hasher = Sha256::new();
    if meta.is_dir() {
        let mut entries = Vec::new();
        walk(&real, Path::new(""), roots, &mut entries)?;
        entries.sort();
        for (rel, file) in entries {
            hasher.update(if file.is_some() { b"f\0" } else { b"d\0" });
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            if let Some(file) = file {
                hasher.update([u8::from(is_executable(&fs::metadata(&file)?))]);
                hasher.update(digest_file(&file)?);
            }
        }
    } else {
        hasher.update(digest_file(&real)?);
    }
    Ok(Some(hex(&hasher.finalize())))
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

fn digest_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut f = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
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
    out: &mut Vec<(PathBuf, Option<PathBuf>)>,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let child = rel.join(entry.file_name());
        let real = fs::canonicalize(entry.path())?;
        if readable(&real, roots)?.is_dir() {
            // A link back up would recurse forever; cargo would not track it.
            if dir.starts_with(&real) {
                return Err(io::Error::other("a symlink loops back to a parent"));
            }
            walk(&real, &child, roots, out)?;
            out.push((child, None));
        } else {
            out.push((child, Some(real)));
        }
    }
    Ok(())
}

/// Whether a unit may be restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Reuse,
    Rebuild(String),
}

/// Compares every unit's recorded inputs with the files here, then spreads
/// "rebuild" to every unit that depends on a rebuilt (or missing) one.
/// Incremental state is always reused: rustc checks it itself.
pub fn evaluate(manifest: &Manifest, roots: &Roots) -> BTreeMap<String, Verdict> {
    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    for unit in &manifest.units {
        let v = match &unit.check {
            Check::None => Verdict::Reuse,
            Check::Unverifiable { reason } => Verdict::Rebuild(reason.clone()),
            Check::Inputs(inputs) => {
                compare(inputs, roots).map_or(Verdict::Reuse, Verdict::Rebuild)
            }
        };
        verdicts.insert(unit.id.clone(), v);
    }
    // Spread along dependency edges until nothing changes; the graph is a DAG
    // of at most a few thousand units, so this converges quickly.
    let names: HashMap<&str, &str> = manifest
        .units
        .iter()
        .map(|u| (u.id.as_str(), u.name.as_str()))
        .collect();
    loop {
        let mut changed = false;
        for unit in &manifest.units {
            if verdicts[&unit.id] != Verdict::Reuse || unit.kind == UnitKind::Incremental {
                continue;
            }
            let why = unit.deps.iter().find_map(|dep| match verdicts.get(dep) {
                None => Some(format!("depends on {dep}, which is not in the snapshot")),
                Some(Verdict::Rebuild(_)) => Some(format!(
                    "depends on {}, which is rebuilt",
                    names[dep.as_str()]
                )),
                Some(Verdict::Reuse) => None,
            });
            if let Some(why) = why {
                verdicts.insert(unit.id.clone(), Verdict::Rebuild(why));
                changed = true;
            }
        }
        if !changed {
            return verdicts;
        }
    }
}

/// Why the files here differ from `inputs`, or `None` if none does.
fn compare(inputs: &crate::snapshot::manifest::Inputs, roots: &Roots) -> Option<String> {
    let Some(base) = roots.dir(inputs.base) else {
        return Some("its package lies outside this workspace's repository".into());
    };
    let package = base.join(&inputs.package_root);
    inputs.files.iter().find_map(|input| {
        let shown = input.path.display();
        let local = match (input.base, roots.dir(input.base)) {
            (Base::Package, _) => package.join(&input.path),
            (_, Some(dir)) => dir.join(&input.path),
            (_, None) => return Some(format!("{shown} lies outside this workspace's repository")),
        };
        match digest_path(&local, roots) {
            Ok(d) if d == input.sha256 => None,
            Ok(None) => Some(format!("{shown} was removed")),
            Ok(Some(_)) if input.sha256.is_none() => Some(format!("{shown} was added")),
            Ok(Some(_)) => Some(format!("{shown} changed")),
            Err(e) => Some(format!("{shown} could not be read ({e})")),
        }
    })
}

/// The earliest of the file systems' own ideas of "now", read off a file
/// written in each of `dirs`, after waiting for each clock to tick past it.
///
/// Restored files are stamped with this time. Every input compared after this
/// call returns, if edited later, gets an mtime strictly greater, so cargo's
/// own check catches edits that race with seeding; and every input already
/// on disk is no newer, so it does not make a matching unit stale. Sources
/// and the build dir may sit on different file systems (a network mount, a
/// VM share, coarse timestamps), hence one probe each.
pub fn file_system_now(dirs: &[&Path]) -> io::Result<SystemTime> {
    let mut earliest: Option<SystemTime> = None;
    for dir in dirs {
        let probe = dir.join(format!(".cargo-seed-clock-{}", std::process::id()));
        let stamp = |i: u32| -> io::Result<SystemTime> {
            fs::write(&probe, i.to_le_bytes())?;
            fs::metadata(&probe)?.modified()
        };
        let result = (|| -> io::Result<SystemTime> {
            let t = stamp(0)?;
            for i in 1.. {
                if stamp(i)? > t {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(t)
        })();
        let _ = fs::remove_file(&probe);
        let t = result?;
        earliest = Some(earliest.map_or(t, |e: SystemTime| e.min(t)));
    }
    Ok(earliest.unwrap_or_else(SystemTime::now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rustc::toolchain::Toolchain;
    use crate::snapshot::manifest::{Blob, Input, Inputs, Unit, SCHEMA};

    fn unit(id: &str, check: Check, deps: &[&str]) -> Unit {
        Unit {
            id: id.into(),
            name: format!("lib {id}"),
            kind: UnitKind::Compile,
            host: false,
            package_id: None,
            blob: Blob {
                sha256: String::new(),
                size: 0,
                unpacked: 0,
            },
            deps: deps.iter().map(|d| d.to_string()).collect(),
            check,
            baked: vec![],
            fingerprint: None,
            src_path: None,
            rustc: None,
            path_values: Vec::new(),
        }
    }

    fn manifest(units: Vec<Unit>) -> Manifest {
        Manifest {
            schema: SCHEMA,
            commit: String::new(),
            created: 0,
            toolchain: Toolchain {
                verbose_version: String::new(),
                release: String::new(),
                host: String::new(),
            },
            target: String::new(),
            cross: false,
            profile: "dev".into(),
            profile_dir: "debug".into(),
            covers: vec![],
            published_with: vec![],
            workspace_root: "/ci".into(),
            cargo_home: "/ci/.cargo".into(),
            build_dir: "/ci/target".into(),
            dirty: false,
            libc: None,
            native_cpu: false,
            rustc_wrapper: None,
            build_flags: None,
            repository_root: None,
            units,
            withheld: vec![],
        }
    }

    fn roots(ws: &Path) -> Roots {
        Roots::new(
            ws,
            None,
            Path::new("/nonexistent"),
            Path::new("/nonexistent"),
        )
    }

    #[test]
    fn content_decides_and_rebuilds_spread_to_dependents() {
        let ws = tempfile::tempdir().unwrap();
        let roots = roots(ws.path());
        fs::create_dir_all(ws.path().join("a/src")).unwrap();
        fs::write(ws.path().join("a/src/lib.rs"), "pub fn a() {}").unwrap();
        let recorded = digest_path(&ws.path().join("a/src/lib.rs"), &roots).unwrap();
        let inputs = |sha: Option<String>| {
            Check::Inputs(Inputs {
                base: Base::Workspace,
                package_root: "a".into(),
                files: vec![Input {
                    base: Base::Package,
                    path: "src/lib.rs".into(),
                    sha256: sha,
                }],
            })
        };
        let m = manifest(vec![
            unit("reg", Check::None, &[]),
            unit("a", inputs(recorded.clone()), &["reg"]),
            unit("bin", Check::None, &["a"]),
        ]);
        let v = evaluate(&m, &roots);
        assert!(v.values().all(|v| *v == Verdict::Reuse), "{v:?}");

        // Same content, any mtime: still reused.
        let lib = ws.path().join("a/src/lib.rs");
        for secs in [1, 2_000_000_000] {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            fs::File::options()
                .write(true)
                .open(&lib)
                .unwrap()
                .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
                .unwrap();
            assert_eq!(fs::metadata(&lib).unwrap().modified().unwrap(), t);
            let v = evaluate(&m, &roots);
            assert!(
                v.values().all(|v| *v == Verdict::Reuse),
                "mtime {t:?}: {v:?}"
            );
        }

        // Other content: rebuilt, and so is everything above it, but not
        // what is below.
        fs::write(ws.path().join("a/src/lib.rs"), "pub fn a() { changed() }").unwrap();
        let v = evaluate(&m, &roots);
        assert_eq!(v["reg"], Verdict::Reuse);
        assert_eq!(v["a"], Verdict::Rebuild("src/lib.rs changed".into()));
        assert!(matches!(&v["bin"], Verdict::Rebuild(r) if r.contains("lib a")));

        fs::remove_file(ws.path().join("a/src/lib.rs")).unwrap();
        assert_eq!(
            evaluate(&m, &roots)["a"],
            Verdict::Rebuild("src/lib.rs was removed".into())
        );
    }

    #[test]
    fn unknown_dependencies_and_unverifiable_units_rebuild() {
        let m = manifest(vec![
            unit("x", Check::None, &["gone"]),
            unit(
                "y",
                Check::Unverifiable {
                    reason: "why".into(),
                },
                &[],
            ),
        ]);
        let v = evaluate(&m, &roots(Path::new("/nonexistent")));
        assert!(matches!(&v["x"], Verdict::Rebuild(r) if r.contains("not in the snapshot")));
        assert_eq!(v["y"], Verdict::Rebuild("why".into()));
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

    #[test]
    fn clock_probe_is_not_in_the_future() {
        let d = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let t = file_system_now(&[d.path(), other.path()]).unwrap();
        assert!(t <= SystemTime::now());
        fs::write(d.path().join("later"), "x").unwrap();
        assert!(
            fs::metadata(d.path().join("later"))
                .unwrap()
                .modified()
                .unwrap()
                > t
        );
    }
}
