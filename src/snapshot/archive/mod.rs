//! Packing a unit's files into a blob, and unpacking a blob safely.
//!
//! A blob is a tar stream in one zstd frame. Packing is deterministic (sorted
//! entries, zeroed owners and times) so an unchanged unit yields the same
//! blob and is stored once. Unpacking treats the blob as hostile: it checks
//! the sha256 and the declared sizes, and writes only plain files,
//! directories, hard links and downward relative symlinks below the staging
//! root. It must never write outside that root, whatever the blob says.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::digest::hex;
use crate::snapshot::manifest::Blob;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("failed to {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {blob} is damaged: {detail}")]
    Corrupt { blob: String, detail: String },
    #[error("blob {blob} does not match its digest (got sha256 {actual}, {size} bytes)")]
    Digest {
        blob: String,
        actual: String,
        size: u64,
    },
    #[error("blob {blob} holds a rejected entry `{entry}`: {why}")]
    Hostile {
        blob: String,
        entry: String,
        why: &'static str,
    },
    /// The store's stream broke off and could not be resumed: a transport
    /// failure, not damage.
    #[error("download of blob {blob} broke off: {detail}")]
    Fetch { blob: String, detail: String },
    #[error("interrupted")]
    Cancelled,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ArchiveError + 'a {
    move |source| ArchiveError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Level 3 is zstd's default: fast to compress in CI, fast to decompress.
const LEVEL: i32 = 3;
/// Units larger than this are compressed on two threads. The choice depends
/// only on the content, so the output stays deterministic.
const MT_THRESHOLD: u64 = 32 << 20;

/// Packs `members` (paths relative to `root`, files or directories, walked
/// recursively) into a blob written to `out`.
pub fn pack(root: &Path, members: &[PathBuf], out: &Path) -> Result<Blob, ArchiveError> {
    let mut entries = Vec::new();
    for m in members {
        collect(root, m, &mut entries)?;
    }
    entries.sort();
    entries.dedup();
    let total: u64 = entries
        .iter()
        .filter_map(|p| fs::symlink_metadata(root.join(p)).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();

    let file = File::create(out).map_err(io_err("create", out))?;
    let hashed = HashingWriter::new(file);
    let mut enc = zstd::Encoder::new(hashed, LEVEL).map_err(io_err("compress", out))?;
    if total > MT_THRESHOLD {
        enc.multithread(2).map_err(io_err("compress", out))?;
    }
    let counted = CountingWriter { inner: enc, n: 0 };
    let mut tar = tar::Builder::new(counted);
    let mut inodes: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for rel in &entries {
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path).map_err(io_err("read", &path))?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(mode_of(&meta) & 0o777);
        let write = |r: io::Result<()>| r.map_err(io_err("pack", &path));
        if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            write(tar.append_data(&mut header, rel, io::empty()))?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(io_err("read", &path))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            write(tar.append_link(&mut header, rel, target))?;
        } else if let Some(first) = inode(&meta).and_then(|k| inodes.get(&k)) {
            header.set_entry_type(tar::EntryType::Link);
            header.set_size(0);
            write(tar.append_link(&mut header, rel, first))?;
        } else {
            if let Some(k) = inode(&meta) {
                inodes.insert(k, rel.clone());
            }
            let f = File::open(&path).map_err(io_err("read", &path))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            write(tar.append_data(&mut header, rel, f))?;
        }
    }
    let counted = tar.into_inner().map_err(io_err("pack", out))?;
    let unpacked = counted.n;
    let hashed = counted.inner.finish().map_err(io_err("compress", out))?;
    let (mut file, sha, size) = hashed.finish();
    file.flush().map_err(io_err("write", out))?;
    Ok(Blob {
        sha256: sha,
        size,
        unpacked,
    })
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), ArchiveError> {
    let path = root.join(rel);
    let meta = fs::symlink_metadata(&path).map_err(io_err("read", &path))?;
    out.push(rel.to_owned());
    if meta.is_dir() {
        for entry in fs::read_dir(&path).map_err(io_err("list", &path))? {
            let entry = entry.map_err(io_err("list", &path))?;
            collect(root, &rel.join(entry.file_name()), out)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode()
}
#[cfg(not(unix))]
fn mode_of(meta: &fs::Metadata) -> u32 {
    if meta.is_dir() {
        0o755
    } else {
        0o644
    }
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()))
}
#[cfg(not(unix))]
fn inode(_: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// What one blob put on disk: its regular files (hard links included) with
/// their sizes, relative to the root, and whether it made any symlink.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unpacked {
    pub files: Vec<(PathBuf, u64)>,
    pub symlinks: bool,
}

impl Unpacked {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, n)| n).sum()
    }
}

/// Which paths (relative to the root) a blob may create: `(path, is_dir)`.
pub type Owns<'a> = &'a (dyn Fn(&Path, bool) -> bool + Sync);

/// Unpacks `blob` read from `reader` below `root`, stamping every file with
/// `mtime`. Every entry must be a path `owns` accepts, so a blob cannot plant
/// files of another unit. The digest is checked over the whole stream; the
/// caller must discard `root` on any error.
pub fn unpack(
    reader: impl Read,
    blob: &Blob,
    root: &Path,
    owns: Owns,
    mtime: SystemTime,
    cancel: &AtomicBool,
) -> Result<Unpacked, ArchiveError> {
    let name = &blob.sha256;
    let corrupt = |detail: String| ArchiveError::Corrupt {
        blob: name.clone(),
        detail,
    };
    let mut hashed = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
        n: 0,
        failed: None,
    };
    let result = (|| {
        let decoder = zstd::Decoder::new(&mut hashed).map_err(|e| corrupt(e.to_string()))?;
        let limited = Limit {
            inner: decoder,
            left: blob.unpacked,
        };
        let mut archive = tar::Archive::new(limited);
        let written = unpack_entries(&mut archive, name, root, owns, mtime, cancel)?;
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| corrupt(e.to_string()))?;
        Ok(written)
    })();
    // Read to the end so the digest covers every byte, then judge the digest
    // first: a damaged blob is reported as such, not as the symptom it caused.
    let drained = io::copy(&mut hashed, &mut io::sink());
    if let Some(detail) = hashed.failed.take() {
        // Whatever else failed, it failed because the bytes stopped coming.
        return Err(ArchiveError::Fetch {
            blob: name.clone(),
            detail,
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

fn unpack_entries<R: Read>(
    archive: &mut tar::Archive<R>,
    name: &str,
    root: &Path,
    owns: Owns,
    mtime: SystemTime,
    cancel: &AtomicBool,
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
    for entry in archive.entries().map_err(corrupt)? {
        if cancel.load(Ordering::Relaxed) {
            return Err(ArchiveError::Cancelled);
        }
        let mut entry = entry.map_err(corrupt)?;
        let rel = entry.path().map_err(corrupt)?.into_owned();
        if !is_plain_relative(&rel) {
            return Err(hostile(&rel, "not a plain relative path"));
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
        if kind.is_dir() {
            fs::create_dir_all(&dest).map_err(io_err("create", &dest))?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        if kind.is_file() {
            let mode = entry.header().mode().map_err(corrupt)? & 0o777;
            let mut file = create_new(&dest, mode).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    hostile(&rel, "a second entry for the same path")
                } else {
                    io_err("create", &dest)(e)
                }
            })?;
            let n = copy(&mut entry, &mut file).map_err(|e| match e {
                CopyError::Read(e) => corrupt(e),
                CopyError::Write(e) => io_err("write", &dest)(e),
            })?;
            file.set_times(times)
                .map_err(io_err("set the times of", &dest))?;
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
            fs::hard_link(root.join(&target), &dest).map_err(io_err("link", &dest))?;
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

/// Whether `dir` (relative to `root`) or a directory above it is a symlink.
/// Directories found real are remembered: this blob cannot turn one into a
/// link (a symlink is never created over an existing path).
fn passes_a_symlink(root: &Path, dir: &Path, real_dirs: &mut HashSet<PathBuf>) -> bool {
    let mut at = PathBuf::new();
    for part in dir.components() {
        at.push(part);
        if real_dirs.contains(&at) {
            continue;
        }
        match fs::symlink_metadata(root.join(&at)) {
            Ok(meta) if meta.file_type().is_symlink() => return true,
            Ok(meta) if meta.is_dir() => {
                real_dirs.insert(at.clone());
            }
            // Not there yet (created below), or a file (creating fails).
            _ => {}
        }
    }
    false
}

/// Relative, and made only of normal components: no root, no `..`, no `.`.
fn is_plain_relative(p: &Path) -> bool {
    !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(path)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}
#[cfg(not(unix))]
fn symlink(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "symlinks"))
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// `io::copy`, but telling a damaged source from a failing destination (a
/// full disk must not be reported as a damaged blob).
fn copy(from: &mut impl Read, to: &mut File) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        let len = match from.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..len]).map_err(CopyError::Write)?;
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

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    n: u64,
    /// The first error the underlying stream gave, if any.
    failed: Option<String>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = match self.inner.read(buf) {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                self.failed.get_or_insert_with(|| e.to_string());
                return Err(e);
            }
        };
        self.hasher.update(&buf[..len]);
        self.n += len as u64;
        Ok(len)
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    n: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            n: 0,
        }
    }
    fn finish(self) -> (W, String, u64) {
        (self.inner, hex(&self.hasher.finalize()), self.n)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = self.inner.write(buf)?;
        self.hasher.update(&buf[..len]);
        self.n += len as u64;
        Ok(len)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct CountingWriter<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = self.inner.write(buf)?;
        self.n += len as u64;
        Ok(len)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_cancel() -> AtomicBool {
        AtomicBool::new(false)
    }

    fn any(_: &Path, _: bool) -> bool {
        true
    }

    /// Unpacks `reader` into `root`, expecting it to fail.
    fn unpack_err(reader: impl Read, blob: &Blob, root: &Path) -> ArchiveError {
        unpack(reader, blob, root, &any, SystemTime::now(), &no_cancel()).unwrap_err()
    }

    /// The packed bytes of [`sample`]'s unit, and its blob record.
    fn packed_sample(dir: &Path) -> (Vec<u8>, Blob) {
        let root = sample(dir);
        let out = dir.join("b.zst");
        let blob = pack(&root, &[PathBuf::from("unit")], &out).unwrap();
        (fs::read(&out).unwrap(), blob)
    }

    fn sample(dir: &Path) -> PathBuf {
        let root = dir.join("src");
        fs::create_dir_all(root.join("unit/out")).unwrap();
        fs::write(root.join("unit/a"), b"alpha").unwrap();
        fs::write(root.join("unit/out/b"), vec![7u8; 100_000]).unwrap();
        fs::hard_link(root.join("unit/a"), root.join("unit/a-link")).unwrap();
        root
    }

    #[test]
    fn round_trip_is_deterministic_and_restores_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = sample(dir.path());
        let b1 = pack(&root, &[PathBuf::from("unit")], &dir.path().join("1.zst")).unwrap();
        let b2 = pack(&root, &[PathBuf::from("unit")], &dir.path().join("2.zst")).unwrap();
        assert_eq!(
            b1, b2,
            "packing the same files twice must give the same blob"
        );

        let dest = dir.path().join("dest");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let f = File::open(dir.path().join("1.zst")).unwrap();
        unpack(f, &b1, &dest, &any, t, &no_cancel()).unwrap();
        assert_eq!(fs::read(dest.join("unit/a")).unwrap(), b"alpha");
        assert_eq!(fs::read(dest.join("unit/out/b")).unwrap().len(), 100_000);
        assert_eq!(
            fs::metadata(dest.join("unit/a"))
                .unwrap()
                .modified()
                .unwrap(),
            t
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let a = fs::metadata(dest.join("unit/a")).unwrap();
            let l = fs::metadata(dest.join("unit/a-link")).unwrap();
            assert_eq!(a.ino(), l.ino(), "hard links stay hard links");
        }
    }

    #[test]
    fn flipped_byte_is_a_digest_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut bytes, blob) = packed_sample(dir.path());
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        let err = unpack_err(&bytes[..], &blob, &dir.path().join("d"));
        assert!(matches!(err, ArchiveError::Digest { .. }), "{err}");
    }

    #[test]
    fn a_stream_that_breaks_off_is_a_fetch_error_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, blob) = packed_sample(dir.path());
        // Half the blob, then an error, then (as a broken stream may) an end.
        let broken = (&bytes[..bytes.len() / 2]).chain(Failing(true));
        let err = unpack_err(broken, &blob, &dir.path().join("d"));
        assert!(matches!(err, ArchiveError::Fetch { .. }), "{err}");
        assert!(err.to_string().contains("connection reset"), "{err}");
    }

    /// Fails once, then reads as ended.
    struct Failing(bool);

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            if std::mem::take(&mut self.0) {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "connection reset",
                ))
            } else {
                Ok(0)
            }
        }
    }

    /// Builds a blob by hand, bypassing `pack`'s checks.
    fn hostile_blob(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (Vec<u8>, Blob) {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let tar = b.into_inner().unwrap();
        let z = zstd::encode_all(&tar[..], 3).unwrap();
        let blob = Blob {
            sha256: crate::digest::sha256_hex(&z),
            size: z.len() as u64,
            unpacked: tar.len() as u64,
        };
        (z, blob)
    }

    fn raw_entry(
        b: &mut tar::Builder<Vec<u8>>,
        kind: tar::EntryType,
        path: &[u8],
        link: &[u8],
        data: &[u8],
    ) {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    /// Unpacking hostile blobs into `root`, with `outside` beside it: each
    /// entry is refused by name and reason, and the file system shows that
    /// nothing reached what it aimed at. Links are never followed when
    /// looking, so a link left behind shows as a link.
    #[cfg(unix)]
    mod hostile {
        use super::*;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::MetadataExt;
        use tar::EntryType::*;

        /// A temporary directory holding the (empty) unpack root and,
        /// beside it, `outside` with one file, `secret`: a hard link made to
        /// it shows in its link count.
        struct Site {
            _dir: tempfile::TempDir,
            root: PathBuf,
            outside: PathBuf,
        }

        fn site() -> Site {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root");
            let outside = dir.path().join("outside");
            fs::create_dir(&root).unwrap();
            fs::create_dir(&outside).unwrap();
            fs::write(outside.join("secret"), b"secret").unwrap();
            Site {
                _dir: dir,
                root,
                outside,
            }
        }

        /// Everything below `dir` (links not followed), each path with what
        /// it is: a directory, a symlink and its target, or a file with its
        /// link count and bytes.
        fn listing(dir: &Path) -> Vec<(PathBuf, String)> {
            let mut out = Vec::new();
            let mut stack = vec![dir.to_owned()];
            while let Some(d) = stack.pop() {
                for entry in fs::read_dir(&d).unwrap() {
                    let path = entry.unwrap().path();
                    let meta = fs::symlink_metadata(&path).unwrap();
                    let what = if meta.file_type().is_symlink() {
                        format!("symlink to {}", fs::read_link(&path).unwrap().display())
                    } else if meta.is_dir() {
                        stack.push(path.clone());
                        "dir".to_owned()
                    } else if meta.is_file() {
                        let bytes = fs::read(&path).unwrap();
                        format!(
                            "file, {} link(s): {:?}",
                            meta.nlink(),
                            String::from_utf8_lossy(&bytes)
                        )
                    } else {
                        format!("{:?}", meta.file_type())
                    };
                    out.push((path.strip_prefix(dir).unwrap().to_owned(), what));
                }
            }
            out.sort();
            out
        }

        fn entries(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
            list.iter()
                .map(|(p, w)| (PathBuf::from(p), w.to_string()))
                .collect()
        }

        /// Unpacks the blob `build` writes (told the site, so it can aim at
        /// `outside`), asserts that `outside` is exactly as it was, and
        /// returns the site and the outcome (each test then checks the root,
        /// then the error).
        fn refused(
            build: impl FnOnce(&mut tar::Builder<Vec<u8>>, &Site),
        ) -> (Site, Result<Unpacked, ArchiveError>) {
            refused_in(site(), build)
        }

        /// As [`refused`], in a site the test prepared.
        fn refused_in(
            s: Site,
            build: impl FnOnce(&mut tar::Builder<Vec<u8>>, &Site),
        ) -> (Site, Result<Unpacked, ArchiveError>) {
            let before = listing(&s.outside);
            let (z, blob) = hostile_blob(|b| build(b, &s));
            let result = unpack(
                &z[..],
                &blob,
                &s.root,
                &any,
                SystemTime::now(),
                &no_cancel(),
            );
            // The file system first: it shows what an accepted entry did.
            assert_eq!(listing(&s.outside), before, "`outside` changed: {result:?}");
            (s, result)
        }

        fn assert_hostile(result: &Result<Unpacked, ArchiveError>, entry: &str, why: &str) {
            match result {
                Err(ArchiveError::Hostile {
                    entry: e, why: w, ..
                }) => {
                    assert_eq!((e.as_str(), *w), (entry, why))
                }
                other => panic!("expected entry `{entry}` refused ({why}), got: {other:?}"),
            }
        }

        /// A path as a tar header's field holds it (at most 100 bytes).
        fn bytes(p: &Path) -> &[u8] {
            let b = p.as_os_str().as_bytes();
            assert!(
                b.len() < 100,
                "{} is too long for a tar header",
                p.display()
            );
            b
        }

        #[test]
        fn a_path_climbing_out_with_dotdot_writes_nothing_there() {
            let (s, result) =
                refused(|b, _| raw_entry(b, Regular, b"../outside/escape", b"", b"x"));
            assert_eq!(listing(&s.root), []);
            assert_hostile(&result, "../outside/escape", "not a plain relative path");
        }

        #[test]
        fn an_absolute_path_writes_nothing_there() {
            let mut aimed = PathBuf::new();
            let (s, result) = refused(|b, s| {
                aimed = s.outside.join("escape");
                raw_entry(b, Regular, bytes(&aimed), b"", b"x");
            });
            assert_eq!(listing(&s.root), []);
            assert_hostile(
                &result,
                &aimed.display().to_string(),
                "not a plain relative path",
            );
        }

        /// The link is refused itself, so no file is ever written through it
        /// (and the refusal of paths through links is not what saves us).
        #[test]
        fn a_symlink_out_of_the_root_is_refused_and_nothing_is_written_through_it() {
            for absolute in [false, true] {
                let (s, result) = refused(|b, s| {
                    let target = if absolute {
                        s.outside.clone()
                    } else {
                        PathBuf::from("../outside")
                    };
                    raw_entry(b, Symlink, b"link", bytes(&target), b"");
                    raw_entry(b, Regular, b"link/planted", b"", b"x");
                });
                assert_eq!(listing(&s.root), [], "absolute: {absolute}");
                assert_hostile(&result, "link", "a symlink that may leave the target dir");
            }
        }

        /// A downward link is allowed, but nothing is created through it:
        /// another unit's directory must not receive this blob's files.
        #[test]
        fn nothing_is_created_through_a_symlink_within_the_root() {
            for (entry, kind) in [("way/planted", Regular), ("way/sub", Directory)] {
                let (s, result) = refused(|b, _| {
                    raw_entry(b, Directory, b"other", b"", b"");
                    raw_entry(b, Symlink, b"way", b"other", b"");
                    raw_entry(b, kind, entry.as_bytes(), b"", b"");
                });
                assert_eq!(
                    listing(&s.root),
                    entries(&[("other", "dir"), ("way", "symlink to other")])
                );
                assert_hostile(&result, entry, "a path through a symlink");
            }
        }

        /// A file entry at a path where this blob made a link: opening it
        /// would write where the link points.
        #[test]
        fn a_file_is_not_written_over_a_symlink() {
            let (s, result) = refused(|b, _| {
                raw_entry(b, Directory, b"other", b"", b"");
                raw_entry(b, Symlink, b"way", b"other/f", b"");
                raw_entry(b, Regular, b"way", b"", b"x");
            });
            assert_eq!(
                listing(&s.root),
                entries(&[("other", "dir"), ("way", "symlink to other/f")])
            );
            assert_hostile(&result, "way", "a second entry for the same path");
        }

        #[test]
        fn a_hard_link_to_a_file_outside_the_blob_is_refused() {
            for absolute in [false, true] {
                let (s, result) = refused(|b, s| {
                    let target = if absolute {
                        s.outside.join("secret")
                    } else {
                        PathBuf::from("../outside/secret")
                    };
                    raw_entry(b, Link, b"link", bytes(&target), b"");
                });
                assert_eq!(listing(&s.root), [], "absolute: {absolute}");
                assert_hostile(&result, "link", "a hard link to a file outside this blob");
            }
            // Units share the staging root: a file another unit unpacked is
            // not this blob's either.
            let s = site();
            fs::write(s.root.join("theirs"), b"theirs").unwrap();
            let (s, result) = refused_in(s, |b, _| raw_entry(b, Link, b"link", b"theirs", b""));
            assert_eq!(
                listing(&s.root),
                entries(&[("theirs", "file, 1 link(s): \"theirs\"")])
            );
            assert_hostile(&result, "link", "a hard link to a file outside this blob");
        }

        #[test]
        fn devices_and_fifos_are_refused() {
            for (name, kind) in [("char", Char), ("block", Block), ("fifo", Fifo)] {
                let (s, result) = refused(|b, _| raw_entry(b, kind, name.as_bytes(), b"", b""));
                assert_eq!(listing(&s.root), []);
                assert_hostile(&result, name, "not a file, directory or link");
            }
        }

        /// A decompression bomb: the digest is right, the manifest declares
        /// 64 KiB, the tar holds 1 MiB. Unpacking stops, and no more than the
        /// declared size was ever written.
        #[test]
        fn more_data_than_declared_is_refused_and_not_written() {
            let s = site();
            let (z, mut blob) =
                hostile_blob(|b| raw_entry(b, Regular, b"big", b"", &[1u8; 1 << 20]));
            blob.unpacked = 64 << 10;
            let result = unpack(
                &z[..],
                &blob,
                &s.root,
                &any,
                SystemTime::now(),
                &no_cancel(),
            );
            let written: u64 = fs::read_dir(&s.root)
                .unwrap()
                .map(|e| e.unwrap().metadata().unwrap().len())
                .sum();
            assert!(written <= blob.unpacked, "{written} bytes written");
            let err = result.expect_err("the blob was unpacked");
            assert!(matches!(err, ArchiveError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("more bytes than"), "{err}");
        }
    }
}
