//! Unpacking a blob, treated as hostile: the sha256 and the declared size
//! are checked over the whole stream, and only plain files, directories,
//! hard links and downward relative symlinks that the unit owns are written
//! below the staging root.
//!
//! It must never write outside that root, whatever the blob says, nor report
//! a damaged blob as the symptom it caused (the digest is judged first), nor
//! read more than one byte past the blob's declared size, nor read on once
//! the cancel flag is set (every read of the stream checks it, so a stream
//! that never yields an entry stops too).
//!
//! What a blob may make is bounded by what its manifest declares, not only
//! its bytes: the declared size caps the tar stream (headers included), and
//! every entry, directory or link it makes, a directory implied by an
//! entry's path included, counts against the entries that size can hold
//! ([`max_entries`]). Paths are at most [`MAX_DEPTH`] components deep. What
//! is written is charged to the file system's free room ([`Room`]), in
//! inodes and blocks, so a snapshot cannot fill the disk.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, FileTimes};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::entry::{create_new, is_plain_relative, passes_a_symlink, symlink};
use super::error::{io_err, ArchiveError};
use crate::digest::hex;
use crate::snapshot::manifest::Blob;

/// What one blob put on disk: its regular files (hard links included) with
/// their sizes, relative to the root, and whether it made any symlink.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unpacked {
    pub files: Vec<(PathBuf, u64)>,
    pub symlinks: bool,
}

/// Which paths (relative to the root) a blob may create: `(path, is_dir)`.
pub(crate) type Owns<'a> = &'a (dyn Fn(&Path, bool) -> bool + Sync);

/// The most components an entry's path may have below the root. Cargo's
/// deepest are build scripts' outputs, `build/<pkg>-<hash>/out/...` (one
/// more level in the per-unit layout): the deepest in real build dirs
/// looked at is 9 (aws-lc-sys's
/// `out/include/openssl/experimental/kem_deterministic_api.h`).
pub const MAX_DEPTH: usize = 64;

/// A tar header: the least a tar stream spends on one entry.
const TAR_BLOCK: u64 = 512;

/// What a file system spends on a directory, and the block a file's bytes
/// are rounded up to, as charged to [`Room`] (ext4's and most others').
const FS_BLOCK: u64 = 4096;

/// How many entries (files, links, directories, whether the stream names
/// them or an entry's path implies them) a blob may make: one per tar
/// header its declared size holds, and the directories above its first
/// entry (a unit's shared top directories have no entries of their own).
pub fn max_entries(blob: &Blob) -> u64 {
    blob.unpacked / TAR_BLOCK + MAX_DEPTH as u64
}

/// The free room left on the file system being unpacked to, shared by
/// every blob of a seed: each file, directory and link takes what it costs
/// from it before it is made, and unpacking stops when it runs out.
#[derive(Debug)]
pub struct Room {
    bytes: AtomicU64,
    inodes: AtomicU64,
}

impl Room {
    pub fn new(bytes: u64, inodes: u64) -> Room {
        Room {
            bytes: AtomicU64::new(bytes),
            inodes: AtomicU64::new(inodes),
        }
    }

    /// Where the file system does not say (or has no inode limit).
    pub fn unlimited() -> Room {
        Room::new(u64::MAX, u64::MAX)
    }

    /// Takes `bytes` and `inodes`, or fails (taking nothing) naming what
    /// ran out.
    fn take(&self, bytes: u64, inodes: u64) -> Result<(), &'static str> {
        let take = |left: &AtomicU64, n: u64| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(n))
                .is_ok()
        };
        if !take(&self.inodes, inodes) {
            return Err("inodes");
        }
        if !take(&self.bytes, bytes) {
            self.inodes.fetch_add(inodes, Ordering::Relaxed);
            return Err("space");
        }
        Ok(())
    }
}

/// Where one unpack spent its time, on the thread that ran it: reading the
/// blob's bytes from their source (`fetch`), hashing them (`verify`),
/// creating and writing files, directories and links (`write`), and the
/// rest, zstd and tar parsing (`decompress`). The four add up to the
/// unpack's wall time.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnpackTimes {
    pub fetch: Duration,
    pub verify: Duration,
    pub decompress: Duration,
    pub write: Duration,
}

/// [`unpack_timed`], without the times.
#[cfg(test)]
pub fn unpack(
    reader: impl Read,
    blob: &Blob,
    root: &Path,
    owns: Owns,
    mtime: SystemTime,
    room: &Room,
    cancel: &AtomicBool,
) -> Result<Unpacked, ArchiveError> {
    let mut times = UnpackTimes::default();
    unpack_timed(reader, blob, root, owns, (mtime, room, cancel), &mut times)
}

/// Unpacks `blob` read from `reader` below `root`, stamping every file with
/// `mtime`. Every entry must be a path `owns` accepts, so a blob cannot plant
/// files of another unit. What it writes is taken from `room`. The digest is
/// checked over the whole stream, which is read to its end but never past
/// `blob.size + 1` bytes; once `cancel` is set the next read fails and the
/// result is [`ArchiveError::Cancelled`]. The caller must discard `root` on
/// any error. Adds where the time went to `times`, whatever the result.
pub fn unpack_timed(
    reader: impl Read,
    blob: &Blob,
    root: &Path,
    owns: Owns,
    (mtime, room, cancel): (SystemTime, &Room, &AtomicBool),
    times: &mut UnpackTimes,
) -> Result<Unpacked, ArchiveError> {
    let started = Instant::now();
    let mut spent = UnpackTimes::default();
    let result = unpack_stream(reader, blob, root, owns, (mtime, room, cancel), &mut spent);
    let accounted = spent.fetch + spent.verify + spent.write;
    times.fetch += spent.fetch;
    times.verify += spent.verify;
    times.write += spent.write;
    times.decompress += started.elapsed().saturating_sub(accounted);
    result
}

fn unpack_stream(
    reader: impl Read,
    blob: &Blob,
    root: &Path,
    owns: Owns,
    (mtime, room, cancel): (SystemTime, &Room, &AtomicBool),
    spent: &mut UnpackTimes,
) -> Result<Unpacked, ArchiveError> {
    let name = &blob.sha256;
    let corrupt = |detail: String| ArchiveError::Corrupt {
        blob: name.clone(),
        detail,
    };
    let mut hashed = HashingReader {
        // One byte more than declared shows that the blob is longer.
        inner: reader.take(blob.size.saturating_add(1)),
        hasher: Sha256::new(),
        n: 0,
        failed: None,
        cancel,
        fetch: Duration::ZERO,
        verify: Duration::ZERO,
    };
    let result = (|| {
        let decoder = zstd::Decoder::new(&mut hashed).map_err(|e| corrupt(e.to_string()))?;
        let limited = Limit {
            inner: decoder,
            left: blob.unpacked,
        };
        let mut archive = tar::Archive::new(limited);
        let bounds = Bounds {
            declared: blob.unpacked,
            entries: max_entries(blob),
            room,
        };
        let written = unpack_entries(
            &mut archive,
            name,
            root,
            owns,
            (mtime, cancel),
            &bounds,
            &mut spent.write,
        )?;
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| corrupt(e.to_string()))?;
        Ok(written)
    })();
    // Read to the end so the digest covers every byte, then judge the digest
    // first: a damaged blob is reported as such, not as the symptom it caused.
    let drained = io::copy(&mut hashed, &mut io::sink());
    spent.fetch = hashed.fetch;
    spent.verify = hashed.verify;
    if cancel.load(Ordering::Relaxed) {
        return Err(ArchiveError::Cancelled);
    }
    if let Some((kind, detail)) = hashed.failed.take() {
        // Whatever else failed, it failed because the bytes stopped coming.
        let blob = name.clone();
        return Err(if kind == io::ErrorKind::TimedOut {
            ArchiveError::TooSlow { blob, detail }
        } else {
            ArchiveError::Fetch { blob, detail }
        });
    }
    if hashed.n > blob.size {
        return Err(ArchiveError::Oversized {
            blob: name.clone(),
            size: blob.size,
        });
    }
    let actual = hex(&hashed.hasher.finalize_reset());
    if drained.is_ok() && (actual != blob.sha256 || hashed.n != blob.size) {
        return Err(ArchiveError::Digest {
            blob: name.clone(),
            actual,
            size: hashed.n,
        });
    }
    match (result, drained) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(corrupt(e.to_string())),
        (Ok(n), Ok(_)) => Ok(n),
    }
}

/// What one blob may make: entries by count, and room on the file system.
struct Bounds<'a> {
    /// The blob's declared size: no file is charged more.
    declared: u64,
    entries: u64,
    room: &'a Room,
}

fn unpack_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    name: &str,
    root: &Path,
    owns: Owns,
    (mtime, cancel): (SystemTime, &AtomicBool),
    bounds: &Bounds,
    write: &mut Duration,
) -> Result<Unpacked, ArchiveError> {
    let corrupt = |e: io::Error| ArchiveError::Corrupt {
        blob: name.to_owned(),
        detail: e.to_string(),
    };
    let hostile = |entry: &Path, why| ArchiveError::Hostile {
        blob: name.to_owned(),
        entry: entry.display().to_string(),
        why,
    };
    let times = FileTimes::new().set_modified(mtime).set_accessed(mtime);
    let mut ours: HashMap<PathBuf, u64> = HashMap::new();
    let mut real_dirs: HashSet<PathBuf> = HashSet::new();
    let mut done = Unpacked::default();
    // Every directory this blob has counted, named or implied.
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    let mut made = 0u64;
    // Counts one thing the blob makes and takes its cost from the room.
    let mut charge = |rel: &Path, bytes: u64, inodes: u64| {
        made += 1;
        if made > bounds.entries {
            return Err(ArchiveError::Excess {
                blob: name.to_owned(),
                detail: format!(
                    "it makes more than the {} files, links and directories its declared size holds",
                    bounds.entries
                ),
            });
        }
        bounds
            .room
            .take(bytes, inodes)
            .map_err(|what| ArchiveError::NoRoom {
                blob: name.to_owned(),
                entry: rel.display().to_string(),
                what,
            })
    };
    for entry in archive.entries().map_err(corrupt)? {
        if cancel.load(Ordering::Relaxed) {
            return Err(ArchiveError::Cancelled);
        }
        let mut entry = entry.map_err(corrupt)?;
        let rel = entry.path().map_err(corrupt)?.into_owned();
        if !is_plain_relative(&rel) {
            return Err(hostile(&rel, "not a plain relative path"));
        }
        if rel.components().count() > MAX_DEPTH {
            return Err(hostile(&rel, "a path deeper than cargo makes"));
        }
        let dest = root.join(&rel);
        let kind = entry.header().entry_type();
        if !owns(&rel, kind.is_dir()) {
            return Err(hostile(&rel, "a path outside its own unit"));
        }
        // A link this blob made must not become a way into another unit's
        // files: nothing is created through one.
        let through_link = if kind.is_dir() {
            Some(rel.as_path())
        } else {
            rel.parent()
        }
        .is_some_and(|dir| passes_a_symlink(root, dir, &mut real_dirs));
        if through_link {
            return Err(hostile(&rel, "a path through a symlink"));
        }
        // The directories the entry's path makes, itself if a directory.
        let new_dirs: Vec<&Path> = if kind.is_dir() {
            Some(rel.as_path())
        } else {
            rel.parent()
        }
        .into_iter()
        .flat_map(Path::ancestors)
        .filter(|d| !d.as_os_str().is_empty() && !dirs.contains(*d))
        .collect();
        for dir in new_dirs {
            charge(dir, FS_BLOCK, 1)?;
            dirs.insert(dir.to_owned());
        }
        let writing = Instant::now();
        if kind.is_dir() {
            fs::create_dir_all(&dest).map_err(io_err("create", &dest))?;
            *write += writing.elapsed();
            continue;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        *write += writing.elapsed();
        if kind.is_file() {
            let size = entry.header().size().map_err(corrupt)?;
            let size = size.min(bounds.declared);
            charge(&rel, size.div_ceil(FS_BLOCK) * FS_BLOCK, 1)?;
            let mode = entry.header().mode().map_err(corrupt)? & 0o777;
            let writing = Instant::now();
            let mut file = create_new(&dest, mode).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    hostile(&rel, "a second entry for the same path")
                } else {
                    io_err("create", &dest)(e)
                }
            })?;
            *write += writing.elapsed();
            let n = copy(&mut entry, &mut file, write).map_err(|e| match e {
                CopyError::Read(e) => corrupt(e),
                CopyError::Write(e) => io_err("write", &dest)(e),
            })?;
            let writing = Instant::now();
            file.set_times(times)
                .map_err(io_err("set the times of", &dest))?;
            drop(file);
            *write += writing.elapsed();
            ours.insert(rel.clone(), n);
            done.files.push((rel, n));
        } else if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(corrupt)?
                .ok_or_else(|| hostile(&rel, "a hard link without a target"))?
                .into_owned();
            let Some(&n) = ours.get(&target).filter(|_| is_plain_relative(&target)) else {
                return Err(hostile(&rel, "a hard link to a file outside this blob"));
            };
            charge(&rel, 0, 0)?;
            let writing = Instant::now();
            fs::hard_link(root.join(&target), &dest).map_err(io_err("link", &dest))?;
            *write += writing.elapsed();
            ours.insert(rel.clone(), n);
            done.files.push((rel, n));
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(corrupt)?
                .ok_or_else(|| hostile(&rel, "a symlink without a target"))?
                .into_owned();
            // Only downward relative links: they cannot leave the root,
            // whatever other links exist beside them.
            if !is_plain_relative(&target) {
                return Err(hostile(&rel, "a symlink that may leave the target dir"));
            }
            charge(&rel, 0, 1)?;
            symlink(&target, &dest).map_err(io_err("link", &dest))?;
            done.symlinks = true;
        } else if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        } else {
            return Err(hostile(&rel, "not a file, directory or link"));
        }
    }
    Ok(done)
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// `io::copy`, but telling a damaged source from a failing destination (a
/// full disk must not be reported as a damaged blob). Adds the time spent
/// writing to `write`.
fn copy(from: &mut impl Read, to: &mut File, write: &mut Duration) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        let len = match from.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        let writing = Instant::now();
        to.write_all(&buf[..len]).map_err(CopyError::Write)?;
        *write += writing.elapsed();
        n += len as u64;
    }
}

/// Fails the read that would go past the size the manifest declares, so a
/// decompression bomb stops at that size.
struct Limit<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Limit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = self.inner.read(buf)?;
        if len as u64 > self.left {
            return Err(io::Error::other(
                "it unpacks to more bytes than its manifest declares",
            ));
        }
        self.left -= len as u64;
        Ok(len)
    }
}

struct HashingReader<'a, R> {
    inner: R,
    hasher: Sha256,
    n: u64,
    /// The first error the underlying stream gave, if any: a `TimedOut` one
    /// is a deadline, not a broken connection.
    failed: Option<(io::ErrorKind, String)>,
    /// Once set, every read fails (with a kind that `io::copy` does not
    /// retry, unlike `Interrupted`).
    cancel: &'a AtomicBool,
    /// Time spent reading from `inner`, and hashing.
    fetch: Duration,
    verify: Duration,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("interrupted"));
        }
        let reading = Instant::now();
        let read = self.inner.read(buf);
        let hashing = Instant::now();
        self.fetch += hashing - reading;
        let len = match read {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                self.failed.get_or_insert_with(|| (e.kind(), e.to_string()));
                return Err(e);
            }
        };
        self.hasher.update(&buf[..len]);
        self.verify += hashing.elapsed();
        self.n += len as u64;
        Ok(len)
    }
}
