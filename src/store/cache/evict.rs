//! Keeping the cache within its bound: the size it holds, and the least
//! recently used blobs deleted when an insert takes it over.
//!
//! It must never fail a seed (a blob it cannot delete is noted for `-v`),
//! and never delete a temporary file that a live writer may still be using.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{is_sha256, BlobCache};

/// A temporary file older than this was left by a process that died while
/// writing it.
const STALE_TMP: Duration = Duration::from_secs(3600);

impl BlobCache {
    /// Accounts for a blob of `size` bytes just added, and evicts if the
    /// cache is now over its limit.
    pub(super) fn inserted(&self, size: u64) {
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
