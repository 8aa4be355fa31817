//! Filling the cache while a blob is downloaded: what passes through is
//! copied into a temporary file and hashed, and renamed under the blob's
//! name only when the stream ended with the blob's digest and size.
//!
//! It must never put bytes under a blob's name before their whole sha256
//! matched it, nor leave a copy behind when a download is dropped early.

use std::fs;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use super::BlobCache;

impl BlobCache {
    /// A new temporary file in `<dir>/tmp`, on the same file system as the
    /// blobs so that the final rename is atomic; deleted when dropped.
    pub(super) fn scratch(&self) -> io::Result<NamedTempFile> {
        let dir = self.dir.join("tmp");
        fs::create_dir_all(&dir)?;
        tempfile::Builder::new().suffix(".part").tempfile_in(dir)
    }
}

/// A reader that copies what it passes on into a temporary file while
/// hashing it, and renames the file into the cache when the stream ends with
/// the expected digest. See [`BlobCache::tee`].
pub(super) struct Tee<'a> {
    pub(super) cache: &'a BlobCache,
    pub(super) inner: Box<dyn Read + Send + 'a>,
    pub(super) sha256: String,
    pub(super) size: u64,
    pub(super) dest: PathBuf,
    /// The copy being written; `None` once caching was given up.
    pub(super) copy: Option<NamedTempFile>,
    pub(super) hasher: Sha256,
    pub(super) n: u64,
}

impl Tee<'_> {
    /// Stops copying, deleting what was written.
    fn abandon(&mut self) {
        // Dropping the temporary file deletes it.
        self.copy = None;
    }

    /// The stream ended: keep the copy if it is the blob.
    fn finish(&mut self) {
        let Some(tmp) = self.copy.take() else {
            return;
        };
        let digest = format!("{:x}", std::mem::take(&mut self.hasher).finalize());
        if digest != self.sha256 || self.n != self.size {
            return;
        }
        // Not synced: a copy torn by a power cut fails the digest check when
        // it is read, and is then fetched again.
        let placed = fs::create_dir_all(self.dest.parent().expect("blobs are in a shard"))
            .and_then(|()| tmp.persist(&self.dest).map(drop).map_err(|e| e.error));
        match placed {
            Ok(()) => self.cache.inserted(self.n),
            // The temporary file went with the error, and is deleted.
            Err(e) => self.cache.failed("store", &self.dest, e),
        }
    }
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.copy.is_none() {
            return Ok(n);
        }
        if n == 0 && !buf.is_empty() {
            self.finish();
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        if self.n > self.size {
            // More than the blob holds: not the blob, and not worth disk.
            self.abandon();
        } else if let Some(tmp) = &mut self.copy {
            if let Err(e) = tmp.write_all(&buf[..n]) {
                let path = tmp.path().to_owned();
                self.abandon();
                self.cache.failed("write", &path, e);
            }
        }
        Ok(n)
    }
}

impl Drop for Tee<'_> {
    /// A download dropped before its end (an error, Ctrl-C) caches nothing.
    fn drop(&mut self) {
        self.abandon();
    }
}
