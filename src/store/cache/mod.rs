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

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// The bound when none is configured.
pub const DEFAULT_LIMIT: u64 = 10 << 30;

/// A temporary file older than this was left by a process that died while
/// writing it.
const STALE_TMP: Duration = Duration::from_secs(3600);

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

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
    pub fn get(&self, sha256: &str) -> Option<Box<dyn Read + Send>> {
        let path = self.path(sha256)?;
        let file = match File::open(&path) {
            Ok(f) => f,
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

    /// A new temporary file in `<dir>/tmp`, on the same file system as the
    /// blobs so that the final rename is atomic.
    fn scratch(&self) -> io::Result<(File, PathBuf)> {
        let dir = self.dir.join("tmp");
        fs::create_dir_all(&dir)?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}-{n}.part", std::process::id()));
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok((file, path))
    }

    /// Accounts for a blob of `size` bytes just added, and evicts if the
    /// cache is now over its limit.
    fn inserted(&self, size: u64) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let total = match *usage {
            Some(before) => before.saturating_add(size),
            // The scan sees the new blob already.
            None => self.entries().iter().map(|e| e.size).sum(),
        };
        *usage = Some(if total > self.limit {
            self.evict()
        } else {
            total
        });
    }

    /// Deletes the least recently used blobs until the cache fits in its
    /// limit; returns the bytes left.
    fn evict(&self) -> u64 {
        let mut entries = self.entries();
        entries.sort_by_key(|e| e.used);
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        for entry in entries {
            if total <= self.limit {
                break;
            }
            match fs::remove_file(&entry.path) {
                // Gone already: another process evicted it.
                Ok(()) => total -= entry.size,
                Err(e) if e.kind() == io::ErrorKind::NotFound => total -= entry.size,
                Err(e) => self.failed("evict", &entry.path, e),
            }
        }
        total
    }

    /// Every cached blob, skipping what vanishes while it is listed; stale
    /// temporary files are deleted on the way.
    fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        let Ok(shards) = fs::read_dir(&self.dir) else {
            return out;
        };
        for shard in shards.flatten() {
            let name = shard.file_name();
            if name == "tmp" {
                remove_stale(&shard.path());
                continue;
            }
            let Ok(files) = fs::read_dir(shard.path()) else {
                continue;
            };
            for file in files.flatten() {
                let is_blob = file
                    .file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".zst"))
                    .is_some_and(is_sha256);
                let Ok(meta) = file.metadata() else { continue };
                if is_blob && meta.is_file() {
                    out.push(Entry {
                        path: file.path(),
                        size: meta.len(),
                        used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    });
                }
            }
        }
        out
    }
}

struct Entry {
    path: PathBuf,
    size: u64,
    used: SystemTime,
}

/// Deletes temporary files that no live writer can still be using.
fn remove_stale(tmp: &Path) {
    let now = SystemTime::now();
    for file in fs::read_dir(tmp).into_iter().flatten().flatten() {
        let old = file
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > STALE_TMP));
        if old {
            let _ = fs::remove_file(file.path());
        }
    }
}

/// A reader that copies what it passes on into a temporary file while
/// hashing it, and renames the file into the cache when the stream ends with
/// the expected digest. See [`BlobCache::tee`].
struct Tee<'a> {
    cache: &'a BlobCache,
    inner: Box<dyn Read + Send + 'a>,
    sha256: String,
    size: u64,
    dest: PathBuf,
    /// The copy being written; `None` once caching was given up.
    copy: Option<(File, PathBuf)>,
    hasher: Sha256,
    n: u64,
}

impl Tee<'_> {
    /// Stops copying, deleting what was written.
    fn abandon(&mut self) {
        if let Some((file, path)) = self.copy.take() {
            drop(file);
            let _ = fs::remove_file(path);
        }
    }

    /// The stream ended: keep the copy if it is the blob.
    fn finish(&mut self) {
        let Some((file, tmp)) = self.copy.take() else {
            return;
        };
        drop(file);
        let digest = format!("{:x}", std::mem::take(&mut self.hasher).finalize());
        if digest != self.sha256 || self.n != self.size {
            let _ = fs::remove_file(tmp);
            return;
        }
        // Not synced: a copy torn by a power cut fails the digest check when
        // it is read, and is then fetched again.
        let placed = fs::create_dir_all(self.dest.parent().expect("blobs are in a shard"))
            .and_then(|()| fs::rename(&tmp, &self.dest));
        match placed {
            Ok(()) => self.cache.inserted(self.n),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                self.cache.failed("store", &self.dest, e);
            }
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
        } else if let Some((file, path)) = &mut self.copy {
            if let Err(e) = file.write_all(&buf[..n]) {
                let path = path.clone();
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::FileTimes;

    fn sha(bytes: &[u8]) -> String {
        format!("{:x}", Sha256::digest(bytes))
    }

    /// Passes `bytes` through the cache's tee, reading to the end.
    fn insert(cache: &BlobCache, bytes: &[u8]) -> String {
        let name = sha(bytes);
        let mut out = Vec::new();
        cache
            .tee(
                &name,
                bytes.len() as u64,
                Box::new(io::Cursor::new(bytes.to_vec())),
            )
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, bytes, "the tee passes every byte on");
        name
    }

    fn cached(cache: &BlobCache, name: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        cache.get(name)?.read_to_end(&mut out).unwrap();
        Some(out)
    }

    fn set_used(cache: &BlobCache, name: &str, secs: u64) {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        File::options()
            .write(true)
            .open(cache.path(name).unwrap())
            .unwrap()
            .set_times(FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    }

    fn tmp_files(cache: &BlobCache) -> usize {
        fs::read_dir(cache.dir.join("tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    #[test]
    fn a_verified_blob_is_cached_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().join("c"), 1 << 20).unwrap();
        let name = insert(&cache, b"a blob's bytes");
        assert_eq!(cached(&cache, &name).unwrap(), b"a blob's bytes");
        assert_eq!(tmp_files(&cache), 0);
        assert!(cache.take_trouble().is_none());
        cache.remove(&name);
        assert!(cache.get(&name).is_none());
    }

    #[test]
    fn bytes_that_are_not_the_blob_never_reach_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().join("c"), 1 << 20).unwrap();
        let name = sha(b"the real blob");
        let read = |bytes: &'static [u8], size: u64, to_end: bool| {
            let mut tee = cache.tee(&name, size, Box::new(bytes));
            let mut buf = [0u8; 4];
            if to_end {
                io::copy(&mut tee, &mut io::sink()).unwrap();
            } else {
                tee.read_exact(&mut buf).unwrap();
            }
        };
        // Damaged, longer than declared, and cut short before its end.
        read(b"the real bloB", 13, true);
        read(b"the real blob and more", 13, true);
        read(b"the real blob", 13, false);
        assert!(cache.get(&name).is_none());
        assert_eq!(tmp_files(&cache), 0, "temporary copies are deleted");
    }

    #[test]
    fn the_least_recently_used_blobs_are_evicted_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().join("c"), 100).unwrap();
        let a = insert(&cache, &[b'a'; 40]);
        let b = insert(&cache, &[b'b'; 40]);
        // `a` is older than `b`, but is read again now: `b` is the least
        // recently used when a third blob takes the cache over 100 bytes.
        set_used(&cache, &a, 1_000);
        set_used(&cache, &b, 2_000);
        assert!(cached(&cache, &a).is_some());
        let c = insert(&cache, &[b'c'; 40]);
        assert!(cache.get(&b).is_none(), "b was evicted");
        assert!(cached(&cache, &a).is_some() && cached(&cache, &c).is_some());

        // Without the read, the oldest goes.
        set_used(&cache, &a, 3_000);
        set_used(&cache, &c, 4_000);
        let d = insert(&cache, &[b'd'; 40]);
        assert!(cache.get(&a).is_none(), "a was evicted");
        assert!(cached(&cache, &c).is_some() && cached(&cache, &d).is_some());
    }

    #[test]
    fn a_blob_larger_than_the_bound_is_passed_through_uncached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().join("c"), 10).unwrap();
        let name = insert(&cache, &[7u8; 11]);
        assert!(cache.get(&name).is_none());
        assert!(!cache.dir.exists());
    }

    #[test]
    fn an_unwritable_cache_degrades_to_no_cache() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the directory should be: nothing can be created in it.
        let blocked = dir.path().join("c");
        fs::write(&blocked, "").unwrap();
        let cache = BlobCache::new(blocked, 1 << 20).unwrap();
        let name = insert(&cache, b"still read");
        assert!(cache.get(&name).is_none());
        let trouble = cache.take_trouble().expect("the failure is kept for -v");
        assert!(trouble.to_string().contains("temporary file"), "{trouble}");
    }

    #[test]
    fn a_zero_bound_disables_the_cache() {
        assert!(BlobCache::new(PathBuf::from("/nonexistent"), 0).is_none());
    }

    #[test]
    fn names_that_are_not_digests_are_not_paths() {
        let cache = BlobCache::new(PathBuf::from("/c"), 1).unwrap();
        assert!(cache.path(&format!("../{}", "a".repeat(61))).is_none());
        assert!(cache.path(&"A".repeat(64)).is_none());
        assert!(cache.path(&"a".repeat(64)).is_some());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        for (text, bytes) in [
            ("0", Some(0)),
            ("4096", Some(4096)),
            ("500M", Some(500 << 20)),
            ("10G", Some(10 << 30)),
            ("10 GiB", Some(10 << 30)),
            ("2gb", Some(2 << 30)),
            ("1.5K", Some(1536)),
            ("1T", Some(1 << 40)),
            ("", None),
            ("G", None),
            ("-1G", None),
            ("10 apples", None),
            ("99999999999T", None),
        ] {
            assert_eq!(parse_size(text), bytes, "{text:?}");
        }
    }
}
