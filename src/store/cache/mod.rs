//! The per-user cache of blobs fetched from a remote store, so that seeding
//! another worktree, another branch or another commit fetches only the blobs
//! it does not have yet (sccache's second tier, for build snapshots).
//!
//! Only blobs are cached: they are named by the sha256 of their bytes, so a
//! local copy is either exactly the blob or detectably damaged. Manifests
//! and signatures change and are authenticated; they are always read from
//! the store, and this module has no way to hold one.
//!
//! What it must never do:
//! - put bytes under a blob's name before their whole sha256 matched it
//!   (they are written to a temporary file, renamed into place when the
//!   stream ended with the right digest, and deleted otherwise);
//! - fail a seed: a cache that cannot be read or written is a cache that
//!   misses, and the first such failure is kept for `-v`.
//!
//! A cached blob is no more trusted than a fetched one: the caller unpacks it
//! through the same digest check, and [`BlobCache::remove`]s a copy that
//! fails it before fetching the blob from the store.
//!
//! The cache is bounded: when this process's inserts take it over its limit,
//! the least recently used blobs (oldest mtime; a hit refreshes it) are
//! deleted until it fits. Other processes may insert and evict at the same
//! time; a file that vanishes meanwhile is simply gone, and a reader that
//! already opened it keeps reading it.
//!
//! Layout below the cache directory: `<aa>/<sha256>.zst`, as in a store's
//! `blobs/`, and `tmp/` for copies being written.
//!
//! The parts: the `tee` that fills the cache during a download, and the
//! `evict`ion that keeps it within its bound.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

mod evict;
mod tee;
#[cfg(test)]
mod tests;

use crate::store::file::open_regular;
use tee::Tee;

/// The bound when none is configured.
pub const DEFAULT_LIMIT: u64 = 10 << 30;

/// Why the cache could not be used as intended. Never fatal: see the module
/// docs.
#[derive(Debug, thiserror::Error)]
#[error("failed to {op} {}", .path.display())]
pub struct CacheError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// A directory of blobs, bounded in size.
pub struct BlobCache {
    dir: PathBuf,
    limit: u64,
    /// The bytes believed to be in the cache: read from disk at this
    /// process's first insert, then kept up to date by its own inserts and
    /// evictions (other processes' show at the next eviction's scan).
    usage: Mutex<Option<u64>>,
    /// The first failure, for `-v`.
    trouble: Mutex<Option<CacheError>>,
}

/// The cache directory: `CARGO_SEED_CACHE_DIR`, else `blobs` beside the
/// default store in the per-user cache directory.
pub fn location() -> PathBuf {
    match std::env::var_os("CARGO_SEED_CACHE_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => super::default_location().with_file_name("blobs"),
    }
}

/// A size as people write it: `10G`, `500M`, `1.5GiB`, `4096` (bytes).
/// Units are binary (K = 1024); a trailing `B` or `iB` is optional.
/// (`bytesize`, which prints sizes here, reads `10G` as 10^10 bytes: that
/// would change what `--cache-size 10G` means, so the reading stays ours.)
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    if number.is_empty() {
        return None;
    }
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(1 << shift);
    }
    let n: f64 = number.parse().ok()?;
    let bytes = n * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl BlobCache {
    /// The cache in `dir`, holding at most about `limit` bytes; `None` when
    /// `limit` is 0 (caching disabled). Nothing is created until a blob is
    /// inserted.
    pub fn new(dir: PathBuf, limit: u64) -> Option<BlobCache> {
        (limit > 0).then(|| BlobCache {
            dir,
            limit,
            usage: Mutex::new(None),
            trouble: Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob named `sha256` lives; `None` for a name that is not a
    /// sha256 (it would not be a path inside the cache).
    fn path(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256(sha256).then(|| self.dir.join(&sha256[..2]).join(format!("{sha256}.zst")))
    }

    /// Notes a failure; only the first is kept.
    fn failed(&self, op: &'static str, path: &Path, source: io::Error) {
        let mut trouble = self.trouble.lock().unwrap_or_else(|e| e.into_inner());
        trouble.get_or_insert(CacheError {
            op,
            path: path.to_owned(),
            source,
        });
    }

    /// The first failure since the last call, if any.
    pub fn take_trouble(&self) -> Option<CacheError> {
        self.trouble
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The cached copy of the blob, if there is one, marked as just used.
    /// Its bytes are whatever the disk holds: unpack them through the digest
    /// check, and [`BlobCache::remove`] the copy if they fail it.
    ///
    /// Anything but a regular file under the blob's name (a symlink, a
    /// FIFO, a device) is never read: it is a miss, noted for `-v`, and
    /// deleted so that the blob fetched from the store takes its place.
    pub fn get(&self, sha256: &str) -> Option<Box<dyn Read + Send>> {
        let path = self.path(sha256)?;
        let file = match open_regular(&path) {
            Ok(Ok(f)) => f,
            Ok(Err(kind)) => {
                let why = format!("it is {kind}, not a regular file");
                self.failed("read", &path, io::Error::other(why));
                self.remove(sha256);
                return None;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => {
                self.failed("read", &path, e);
                return None;
            }
        };
        // Recency for eviction. Failing to record it only makes this blob
        // an earlier candidate.
        let _ = file.set_modified(SystemTime::now());
        Some(Box::new(file))
    }

    /// Deletes the cached copy of a blob (one that failed its digest check).
    pub fn remove(&self, sha256: &str) {
        let Some(path) = self.path(sha256) else {
            return;
        };
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => self.failed("remove", &path, e),
            _ => {}
        }
    }

    /// Wraps a download of the blob named `sha256`, of `size` bytes, so that
    /// the bytes it passes on are also written to the cache: under the
    /// blob's name once the stream ended and they had that digest and size,
    /// never otherwise.
    pub fn tee<'a>(
        &'a self,
        sha256: &str,
        size: u64,
        inner: Box<dyn Read + Send + 'a>,
    ) -> Box<dyn Read + Send + 'a> {
        let Some(dest) = self.path(sha256).filter(|_| size <= self.limit) else {
            return inner;
        };
        let copy = match self.scratch() {
            Ok(copy) => Some(copy),
            Err(e) => {
                self.failed("create a temporary file in", &self.dir.join("tmp"), e);
                None
            }
        };
        Box::new(Tee {
            cache: self,
            inner,
            sha256: sha256.to_owned(),
            size,
            dest,
            copy,
            hasher: Sha256::new(),
            n: 0,
        })
    }
}
