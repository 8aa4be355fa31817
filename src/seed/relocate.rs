//! Making a snapshot's units reusable at this machine's paths.
//!
//! Cargo hashes the absolute source path of every unit outside the workspace
//! (registry and git crates, under `CARGO_HOME`) into its fingerprint, and a
//! unit's hash covers its dependencies' hashes. So when
//! `CARGO_HOME` differs, every fingerprint from those crates up to the
//! workspace members is recomputed here for the local paths.
//!
//! Each unit is proven first: its recorded fields must hash to the value cargo
//! wrote, and its source path to the recorded `path` field. A unit that fails
//! either, or depends on one that does, is not relocated and is rebuilt;
//! nothing is rewritten on a guess.
//!
//! The manifest holds no values of the variables build scripts watch, only
//! digests ([`crate::snapshot::secrets`]). The proof runs with this machine's values
//! where their digests are CI's, which makes the fields exactly CI's again;
//! where a value differs cargo would rerun the unit anyway, so it is left to
//! rebuild.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, FileTimes};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::cargo::fingerprint::parse_hash_file;
use crate::cargo::fingerprint::{self, Fields};
use crate::cargo::layout::Layout;
use crate::cargo::unit_id::UnitId;
use crate::snapshot::manifest::{FingerprintRecord, Manifest, UnitKind};
use crate::snapshot::secrets::{self, EnvMismatch};

/// The build machine's directories and this one's.
#[derive(Debug, Clone, Default)]
pub(crate) struct Moves {
    /// `(from, to)`, longest `from` first so that nested roots map right.
    pairs: Vec<(PathBuf, PathBuf)>,
}

impl Moves {
    /// `repository` is this checkout's repository top level, which CI's
    /// maps to when the manifest records one.
    pub fn new(
        manifest: &Manifest,
        cargo_home: &Path,
        root: &Path,
        build_dir: &Path,
        repository: Option<&Path>,
    ) -> Moves {
        let from = [
            &manifest.build_dir,
            &manifest.workspace_root,
            &manifest.cargo_home,
        ];
        let here = [build_dir, root, cargo_home];
        let repository = manifest.repository_root.as_deref().zip(repository);
        Moves::between(from.map(PathBuf::as_path), here, repository)
    }

    /// The moves from another machine's (or checkout's) build dir,
    /// workspace root and `CARGO_HOME` to these, and its repository's top to
    /// this one's, when both are given.
    pub(crate) fn between(
        from: [&Path; 3],
        here: [&Path; 3],
        repository: Option<(&Path, &Path)>,
    ) -> Moves {
        let mut pairs: Vec<(PathBuf, PathBuf)> = from
            .into_iter()
            .zip(here)
            .chain(repository)
            .filter(|(from, to)| from != to && !from.as_os_str().is_empty())
            .map(|(from, to)| (from.to_owned(), to.to_owned()))
            .collect();
        pairs.sort_by_key(|(from, _)| std::cmp::Reverse(from.as_os_str().len()));
        Moves { pairs }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub(crate) fn pairs(&self) -> &[(PathBuf, PathBuf)] {
        &self.pairs
    }

    /// `path` on this machine, if it lies under a moved directory.
    pub fn map(&self, path: &Path) -> Option<PathBuf> {
        self.pairs
            .iter()
            .find_map(|(from, to)| Some(to.join(path.strip_prefix(from).ok()?)))
    }

    /// Replaces every moved directory in `text`.
    pub(crate) fn map_text(&self, text: &str) -> String {
        let mut out = Vec::new();
        self.map_stream(text.as_bytes(), &mut out, u64::MAX)
            .expect("a Vec takes any size");
        match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// How many times larger than its input a mapped text can be: the
    /// largest ratio of a local directory's length to the one it replaces,
    /// as each replacement consumes its `from`.
    pub(crate) fn growth_factor(&self) -> u64 {
        self.pairs
            .iter()
            .map(|(from, to)| {
                let (from, to) = (path_bytes(from).len() as u64, path_bytes(to).len() as u64);
                to.div_ceil(from.max(1))
            })
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// Copies `input` to `output` with every moved directory replaced, in
    /// one pass: at each position the longest matching directory is
    /// replaced, and nothing written is scanned again (so a local path
    /// holding CI's is not replaced twice). A directory's name matches only
    /// whole: `/ci/app` is not the start of `/ci/app-tools`. Reads and writes a window at a
    /// time. Fails with [`Overflow`] before writing more than `limit`
    /// bytes. Returns the bytes written and whether any was replaced.
    pub(crate) fn map_stream(
        &self,
        mut input: impl Read,
        output: impl Write,
        limit: u64,
    ) -> io::Result<(u64, bool)> {
        let pairs: Vec<(&[u8], &[u8])> = self
            .pairs
            .iter()
            .map(|(from, to)| (path_bytes(from), path_bytes(to)))
            .filter(|(from, _)| !from.is_empty())
            .collect();
        let mut starts = [false; 256];
        for (from, _) in &pairs {
            starts[usize::from(from[0])] = true;
        }
        let longest = pairs.iter().map(|(from, _)| from.len()).max().unwrap_or(0);
        let mut out = Bounded {
            inner: io::BufWriter::new(output),
            left: limit,
        };
        let mut replaced = false;
        let mut window: Vec<u8> = Vec::with_capacity(WINDOW + longest);
        let mut chunk = vec![0u8; WINDOW];
        let mut eof = false;
        while !eof || !window.is_empty() {
            if !eof {
                let n = match input.read(&mut chunk) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                eof = n == 0;
                window.extend_from_slice(&chunk[..n]);
            }
            // Positions whose match, and the byte after it, may run past
            // the window wait for more input, unless there is none.
            let settled = if eof {
                window.len()
            } else {
                window.len().saturating_sub(longest)
            };
            let mut at = 0;
            while at < settled {
                let next = window[at..settled]
                    .iter()
                    .position(|b| starts[usize::from(*b)])
                    .map_or(settled, |i| at + i);
                out.write_all(&window[at..next])?;
                at = next;
                if at == settled {
                    break;
                }
                let whole = |from: &[u8]| {
                    window[at..].starts_with(from)
                        && window
                            .get(at + from.len())
                            .is_none_or(|b| !continues_name(*b))
                };
                match pairs.iter().find(|(from, _)| whole(from)) {
                    Some((from, to)) => {
                        out.write_all(to)?;
                        at += from.len();
                        replaced = true;
                    }
                    None => {
                        out.write_all(&window[at..=at])?;
                        at += 1;
                    }
                }
            }
            window.drain(..at);
        }
        out.inner.flush()?;
        Ok((limit - out.left, replaced))
    }
}

/// Whether `b`, right after a directory's path in a text, makes it the
/// start of another name (`/ci/app-tools`, `/ci/app.old`, `/ci/app2`)
/// rather than the directory itself (`/ci/app/…`, `/ci/app:`, `/ci/app `).
fn continues_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.+~@".contains(&b) || b >= 0x80
}

/// The bytes of a path as they appear in the text files that hold it.
fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

/// How much of a text file is held in memory at once while it is mapped.
const WINDOW: usize = 64 << 10;

/// A writer that refuses to write more than `left` bytes in all.
struct Bounded<W> {
    inner: W,
    left: u64,
}

/// The error [`Moves::map_stream`] fails with at its limit.
#[derive(Debug)]
pub(crate) struct Overflow;

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the rewritten text would exceed its bound")
    }
}

impl std::error::Error for Overflow {}

impl<W: Write> Write for Bounded<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::other(Overflow));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The fingerprints to write and the units that cannot be relocated.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// New fingerprint files by unit id, for units whose hash changes.
    pub rewrites: BTreeMap<UnitId, FingerprintRecord>,
    /// Why a unit cannot be reused here, by unit id.
    pub failed: BTreeMap<UnitId, Unrelocatable>,
}

/// Why a unit's fingerprint is not rewritten for this machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unrelocatable {
    NoFingerprint,
    UnknownFields,
    UnreadableHash,
    HashNotReproduced,
    PathNotReproduced,
    /// A dependency the snapshot does not hold.
    UnknownDependency,
    /// A dependency (named) that cannot be relocated itself.
    Dependency(String),
    Cycle,
    /// A watched variable whose value here is not CI's.
    Env(EnvMismatch),
}

impl fmt::Display for Unrelocatable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unrelocatable::NoFingerprint => f.write_str("the snapshot has no fingerprint for it"),
            Unrelocatable::UnknownFields => {
                f.write_str("its fingerprint has fields this cargo-seed does not know")
            }
            Unrelocatable::UnreadableHash => f.write_str("its fingerprint hash is unreadable"),
            Unrelocatable::HashNotReproduced => {
                f.write_str("cargo-seed cannot reproduce its fingerprint hash")
            }
            Unrelocatable::PathNotReproduced => {
                f.write_str("cargo-seed cannot reproduce the hash of its source path")
            }
            Unrelocatable::UnknownDependency => {
                f.write_str("it depends on a unit the snapshot does not hold")
            }
            Unrelocatable::Dependency(name) => {
                write!(f, "it depends on {name}, which cannot be relocated")
            }
            Unrelocatable::Cycle => f.write_str("its fingerprints depend on each other"),
            Unrelocatable::Env(why) => why.fmt(f),
        }
    }
}

/// Reads an environment variable of this machine.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// Recomputes every unit's fingerprint for the local paths, with the
/// values `env` gives the variables build scripts watch.
#[cfg(test)]
pub fn plan(manifest: &Manifest, moves: &Moves, env: Lookup) -> Plan {
    plan_with_packages(manifest, moves, env, &BTreeMap::new(), true)
}

/// [`plan`], with the `Precalculated` string cargo will compute here for
/// the build-script runs in `packages` (see [`crate::snapshot::package`]):
/// each such unit's fingerprint is proven with CI's string, then given
/// this one, and every unit depending on it gets its new hash. Without
/// `everything` (no unit hashes an absolute path under a moved directory)
/// only those units and their dependents are rewritten, and only their
/// failures count: the others' hashes stay cargo's.
pub(crate) fn plan_with_packages(
    manifest: &Manifest,
    moves: &Moves,
    env: Lookup,
    packages: &BTreeMap<UnitId, String>,
    everything: bool,
) -> Plan {
    let mut plan = Plan::default();
    if moves.is_empty() && packages.is_empty() {
        return plan;
    }
    let units: HashMap<&str, &crate::snapshot::manifest::Unit> = manifest
        .units
        .iter()
        .filter(|u| u.kind != UnitKind::Incremental)
        .map(|u| (u.id.as_str(), u))
        .collect();
    let id_of_hash: HashMap<u64, &str> = units
        .values()
        .filter_map(|u| {
            Some((
                parse_hash_file(&u.fingerprint.as_ref()?.hash)?,
                u.id.as_str(),
            ))
        })
        .collect();
    let mut memo: HashMap<&str, Result<u64, Unrelocatable>> = HashMap::new();
    let ctx = Context {
        workspace_root: &manifest.workspace_root,
        units: &units,
        id_of_hash: &id_of_hash,
        moves,
        env,
        packages,
    };
    let wanted: Vec<&str> = if moves.is_empty() || !everything {
        dependents_of(manifest, packages)
            .into_iter()
            .filter(|id| units.contains_key(id))
            .collect()
    } else {
        units.keys().copied().collect()
    };
    for id in &wanted {
        relocate_from(id, &ctx, &mut memo, &mut plan);
    }
    let wanted: std::collections::HashSet<&str> = wanted.into_iter().collect();
    for (id, result) in memo {
        if let Err(why) = result {
            if wanted.contains(id) {
                plan.failed.insert(id.into(), why);
            }
        }
    }
    plan
}

/// The units of `packages` and every unit that depends on one of them,
/// directly or not.
fn dependents_of<'m>(manifest: &'m Manifest, packages: &BTreeMap<UnitId, String>) -> Vec<&'m str> {
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for unit in &manifest.units {
        for dep in &unit.deps {
            dependents
                .entry(dep.as_str())
                .or_default()
                .push(unit.id.as_str());
        }
    }
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut work: Vec<&str> = manifest
        .units
        .iter()
        .map(|u| u.id.as_str())
        .filter(|id| packages.contains_key(*id))
        .collect();
    while let Some(id) = work.pop() {
        if seen.insert(id) {
            work.extend(dependents.get(id).into_iter().flatten().copied());
        }
    }
    let mut out: Vec<&str> = seen.into_iter().collect();
    out.sort_unstable();
    out
}

/// What every unit's relocation reads.
struct Context<'a, 'e> {
    workspace_root: &'a Path,
    units: &'a HashMap<&'a str, &'a crate::snapshot::manifest::Unit>,
    id_of_hash: &'a HashMap<u64, &'a str>,
    moves: &'a Moves,
    env: Lookup<'e>,
    packages: &'a BTreeMap<UnitId, String>,
}

/// A unit proven and pointed at this machine's paths, waiting for its
/// dependencies' new hashes.
struct Proven<'a> {
    record: &'a FingerprintRecord,
    fields: Fields,
    old: u64,
    /// Each dependency's hash as CI recorded it, and its unit.
    deps: Vec<(u64, &'a str)>,
}

/// Relocates unit `root` and every unit it depends on that is not in `memo`
/// yet, dependencies first. Depth-first with a stack of its own rather than
/// by recursion: a manifest chooses how long a chain of dependencies is,
/// and must not choose how deep the seed's stack grows.
fn relocate_from<'a>(
    root: &'a str,
    ctx: &Context<'a, '_>,
    memo: &mut HashMap<&'a str, Result<u64, Unrelocatable>>,
    plan: &mut Plan,
) {
    // A unit is on the stack twice: to be proven (its dependencies then go
    // on top of it), and, proven, to be finished once they are.
    let mut stack: Vec<(&'a str, Option<Proven<'a>>)> = vec![(root, None)];
    while let Some((id, proven)) = stack.pop() {
        let Some(proven) = proven else {
            if memo.contains_key(id) {
                continue;
            }
            // Marks the unit while its dependencies are computed: a cycle
            // (which cargo never writes) then fails instead of looping.
            memo.insert(id, Err(Unrelocatable::Cycle));
            match prove(ctx.units[id], ctx) {
                Ok(proven) => {
                    let deps: Vec<&'a str> = proven.deps.iter().map(|(_, d)| *d).collect();
                    stack.push((id, Some(proven)));
                    stack.extend(
                        deps.into_iter()
                            .filter(|d| !memo.contains_key(d))
                            .map(|d| (d, None)),
                    );
                }
                Err(why) => {
                    memo.insert(id, Err(why));
                }
            }
            continue;
        };
        let result = finish(id, proven, ctx, memo, plan);
        memo.insert(id, result);
    }
}

/// Checks that `unit`'s recorded fields give the hash cargo wrote, with
/// this machine's values of the watched variables, and points its source
/// path at this machine's.
fn prove<'a>(
    unit: &'a crate::snapshot::manifest::Unit,
    ctx: &Context<'a, '_>,
) -> Result<Proven<'a>, Unrelocatable> {
    let record = unit
        .fingerprint
        .as_ref()
        .ok_or(Unrelocatable::NoFingerprint)?;
    let mut fields = Fields::parse(&record.fields).ok_or(Unrelocatable::UnknownFields)?;
    let values = secrets::local_values(&record.env, ctx.env).map_err(Unrelocatable::Env)?;
    fields
        .set_watched_values(values)
        .ok_or(Unrelocatable::UnknownFields)?;
    let old = parse_hash_file(&record.hash).ok_or(Unrelocatable::UnreadableHash)?;
    if !fields.reproduces(old) {
        return Err(Unrelocatable::HashNotReproduced);
    }
    if let Some(here) = ctx.packages.get(&unit.id) {
        fields
            .set_precalculated(here.clone())
            .ok_or(Unrelocatable::UnknownFields)?;
    }
    if let (true, Some(src)) = (
        hashes_absolute_path(unit, ctx.workspace_root),
        &unit.src_path,
    ) {
        if fingerprint::hash_path(src) != fields.path() {
            return Err(Unrelocatable::PathNotReproduced);
        }
        if let Some(local) = ctx.moves.map(src) {
            fields.set_path(fingerprint::hash_path(&local));
        }
    }
    let mut deps = Vec::new();
    for dep in fields.dep_hashes() {
        let dep_id = *ctx
            .id_of_hash
            .get(&dep)
            .ok_or(Unrelocatable::UnknownDependency)?;
        deps.push((dep, dep_id));
    }
    Ok(Proven {
        record,
        fields,
        old,
        deps,
    })
}

/// The new hash of unit `id`, once its dependencies' are in `memo`, and
/// its rewritten fingerprint if the hash changes.
fn finish(
    id: &str,
    proven: Proven,
    ctx: &Context,
    memo: &HashMap<&str, Result<u64, Unrelocatable>>,
    plan: &mut Plan,
) -> Result<u64, Unrelocatable> {
    let Proven {
        record,
        mut fields,
        old,
        deps,
    } = proven;
    let mut new_deps = HashMap::new();
    for (dep, dep_id) in deps {
        match memo.get(dep_id) {
            Some(Ok(new)) => new_deps.insert(dep, *new),
            _ => return Err(Unrelocatable::Dependency(ctx.units[dep_id].name.clone())),
        };
    }
    fields
        .map_deps(|d| new_deps.get(&d).copied())
        .ok_or(Unrelocatable::UnknownDependency)?;
    let new = fields.hash();
    if new != old {
        plan.rewrites.insert(
            id.into(),
            // Cargo's own files again: the fields with this machine's
            // values, which are CI's.
            FingerprintRecord {
                file: record.file.clone(),
                hash: fingerprint::to_hash_file(new),
                fields: fields.to_json(),
                env: Vec::new(),
            },
        );
    }
    Ok(new)
}

/// Whether cargo hashed the unit's absolute source path into its
/// fingerprint: it passes rustc a path relative to the workspace root for a
/// path package inside the workspace, and the absolute path for any other
/// (registry and git crates, path packages outside the workspace).
pub(crate) fn hashes_absolute_path(
    unit: &crate::snapshot::manifest::Unit,
    workspace_root: &Path,
) -> bool {
    let path_package = unit
        .package_id
        .as_deref()
        .is_some_and(crate::cargo::is_path_package);
    match &unit.src_path {
        Some(src) => !(path_package && src.starts_with(workspace_root)),
        None => false,
    }
}

/// Writes the rewritten fingerprint of a restored unit into `profile_dir`.
pub(crate) fn write_fingerprint(
    profile_dir: &Path,
    layout: Layout,
    id: &str,
    record: &FingerprintRecord,
    stamp: SystemTime,
) -> io::Result<()> {
    let dir = profile_dir.join(layout.fingerprint_dir(id));
    let hash = dir.join(&record.file);
    let json = dir.join(format!("{}.json", record.file));
    write_stamped(&hash, record.hash.as_bytes(), stamp)?;
    write_stamped(&json, record.fields.as_bytes(), stamp)
}

/// Rewrites the build machine's directories in the text files tools read
/// (rustc's `*.d`, a build script's `output`), within bounds: a file grows
/// at most by the [`Moves::growth_factor`], and all files of a seed
/// together by at most what the seed's blobs declare they unpack to. A
/// blob over either is refused, not left to cargo: the files are rewritten
/// after the unit's verdict, and only a hostile store makes one (CI's text
/// files name each path in full, once per line).
#[derive(Debug)]
pub(crate) struct TextRewrite<'a> {
    moves: &'a Moves,
    /// Bytes the rewritten files of the seed may still grow by.
    growth_left: AtomicU64,
}

/// Why a text file could not be rewritten for this machine.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("failed to rewrite the build machine's paths in {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("rewriting the build machine's paths in {} would write more than {limit} bytes: more than its paths account for", .path.display())]
    File { path: PathBuf, limit: u64 },
    #[error("rewriting the build machine's paths in {} would grow the snapshot's files by more than the {budget} bytes its blobs declare", .path.display())]
    Seed { path: PathBuf, budget: u64 },
}

impl<'a> TextRewrite<'a> {
    /// `declared`: the size the seed's blobs declare they unpack to.
    pub(crate) fn new(moves: &'a Moves, declared: u64) -> TextRewrite<'a> {
        TextRewrite {
            moves,
            growth_left: AtomicU64::new(declared),
        }
    }

    pub(crate) fn moves(&self) -> &Moves {
        self.moves
    }

    /// Rewrites `path` in place (keeping its inode, so hard links to it
    /// see the change) and stamps it, if it names a moved directory;
    /// returns its size after. A file of at most [`IN_MEMORY`] bytes is
    /// read once and written only if it changes; a larger one is streamed
    /// through a file beside it, never held whole.
    pub(crate) fn rewrite(&self, path: &Path, stamp: SystemTime) -> Result<u64, RewriteError> {
        let io = |source| RewriteError::Io {
            path: path.to_owned(),
            source,
        };
        let size = fs::metadata(path).map_err(io)?.len();
        let budget = self.growth_left.load(Ordering::Relaxed);
        let per_file = size.saturating_mul(self.moves.growth_factor());
        let limit = per_file.min(size.saturating_add(budget));
        let refused = |e: io::Error| match e.get_ref().is_some_and(|e| e.is::<Overflow>()) {
            true if limit == per_file => RewriteError::File {
                path: path.to_owned(),
                limit,
            },
            true => RewriteError::Seed {
                path: path.to_owned(),
                budget,
            },
            false => io(e),
        };
        let charge = |written: u64| {
            self.growth_left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(written.saturating_sub(size))
                })
                .map(drop)
                .map_err(|_| RewriteError::Seed {
                    path: path.to_owned(),
                    budget,
                })
        };
        if size <= IN_MEMORY {
            let text = fs::read(path).map_err(io)?;
            let mut mapped = Vec::new();
            let (written, replaced) = self
                .moves
                .map_stream(&text[..], &mut mapped, limit)
                .map_err(refused)?;
            if !replaced {
                return Ok(text.len() as u64);
            }
            charge(written)?;
            replace_stamped(path, &mapped, stamp).map_err(io)?;
            return Ok(written);
        }
        let mut temp_name = path.as_os_str().to_owned();
        temp_name.push(".cargo-seed-rewrite");
        let temp = PathBuf::from(temp_name);
        let mapped = (|| {
            let input = File::open(path)?;
            let output = File::options().write(true).create_new(true).open(&temp)?;
            self.moves.map_stream(input, output, limit)
        })();
        let (written, replaced) = match mapped {
            Ok(done) => done,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(refused(e));
            }
        };
        let result = match charge(written) {
            Err(e) => Err(e),
            Ok(()) if replaced => copy_stamped(&temp, path, stamp)
                .map(|()| written)
                .map_err(io),
            Ok(()) => Ok(size),
        };
        let _ = fs::remove_file(&temp);
        result
    }
}

/// The largest text file [`TextRewrite::rewrite`] maps in memory. CI's
/// dep-info and build-script output are far smaller, bar the largest
/// crates' dep-info.
const IN_MEMORY: u64 = 4 << 20;

/// Replaces `to`'s contents with `from`'s in place, and stamps it.
fn copy_stamped(from: &Path, to: &Path, stamp: SystemTime) -> io::Result<()> {
    let mut out = File::options().write(true).truncate(true).open(to)?;
    io::copy(&mut File::open(from)?, &mut out)?;
    out.set_times(FileTimes::new().set_modified(stamp).set_accessed(stamp))
}

/// Replaces a file in the staging dir with one of `bytes`, stamped: the old
/// one removed, a new one made. Truncating a file just written, or renaming
/// a new one over it, makes ext4 write back its data first (its
/// `auto_da_alloc`), which while gigabytes are being copied waits up to half
/// a second for each of hundreds of dep-info files. A file with other links
/// is rewritten in place, so that they see the change.
fn replace_stamped(path: &Path, bytes: &[u8], stamp: SystemTime) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if fs::symlink_metadata(path)?.nlink() > 1 {
            return write_stamped(path, bytes, stamp);
        }
    }
    fs::remove_file(path)?;
    let mut file = File::options().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.set_times(FileTimes::new().set_modified(stamp).set_accessed(stamp))
}

/// Replaces a file's contents in place (keeping its inode, so hard links to
/// it see the change) and stamps it.
fn write_stamped(path: &Path, bytes: &[u8], stamp: SystemTime) -> io::Result<()> {
    let mut file = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.set_times(FileTimes::new().set_modified(stamp).set_accessed(stamp))
}

/// Commands for gdb and lldb that map the build machine's source paths, which
/// reused object code carries in its debug info, to this machine's.
///
/// A path is written only if it is made of characters that neither
/// debugger reads as syntax; a pair with any other is left out (and named
/// in the returned list), so nothing a manifest says becomes a command.
pub(crate) fn debugger_scripts(maps: &[(PathBuf, PathBuf)]) -> (String, String, Vec<PathBuf>) {
    let mut gdb = String::from("# Generated by cargo seed: `gdb -x <this file>`\n");
    let mut lldb = String::from("# Generated by cargo seed: `lldb -s <this file>`\n");
    let mut left_out = Vec::new();
    for (from, to) in maps {
        let (Some(f), Some(t)) = (script_safe(from), script_safe(to)) else {
            left_out.push(from.clone());
            continue;
        };
        gdb.push_str(&format!("set substitute-path {f} {t}\n"));
        lldb.push_str(&format!("settings append target.source-map {f} {t}\n"));
    }
    (gdb, lldb, left_out)
}

fn script_safe(path: &Path) -> Option<&str> {
    let s = path.to_str()?;
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+~@%,:=".contains(c);
    (!s.is_empty() && s.chars().all(safe)).then_some(s)
}

#[cfg(test)]
mod tests;
