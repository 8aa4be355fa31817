//! Packing a unit's files into a blob: a tar stream in one zstd frame,
//! deterministic (sorted entries, zeroed owners and times), so an unchanged
//! unit yields the same blob and is stored once.
//!
//! It must never read outside the members it is given, nor let anything but
//! the content decide the bytes it writes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{io_err, ArchiveError};
use crate::digest::hex;
use crate::snapshot::manifest::Blob;

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
