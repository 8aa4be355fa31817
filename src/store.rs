//! Where snapshots live. A [`Store`] is a flat key → bytes namespace with a
//! few operations; nothing outside this module knows which backend it talks
//! to.
//!
//! Layout, the same on every backend:
//! - `blobs/<aa>/<sha256>.zst`: one unit's files, a tar stream in a zstd
//!   frame, named by the sha256 of those compressed bytes;
//! - `snapshots/<commit>/<variant>.json`: a manifest, written after every
//!   blob it names, so a reader never sees half a snapshot.
//!
//! A store must never expose a partially written object under its final key.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{store}: `{key}` does not exist")]
    NotFound { store: String, key: String },
    #[error("{store}: failed to {op} `{key}`")]
    Io {
        store: String,
        op: &'static str,
        key: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "unsupported store `{spec}`: this build reads local directories (a path or file:// URL)"
    )]
    Unsupported { spec: String },
}

/// The operations cargo-seed needs from a place that holds snapshots.
pub trait Store: Send + Sync {
    /// How to name this store in messages.
    fn location(&self) -> String;
    /// Opens an object for streaming.
    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError>;
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Stores the contents of `src` under `key`, atomically. `src` may be
    /// consumed (moved) by the store.
    fn put_file(&self, key: &str, src: &Path) -> Result<(), StoreError>;
    /// Keys directly or indirectly under `prefix` (which ends with `/`).
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

pub fn blob_key(sha256: &str) -> String {
    format!("blobs/{}/{sha256}.zst", &sha256[..2])
}

pub fn snapshot_prefix(commit: &str) -> String {
    format!("snapshots/{commit}/")
}

/// Opens the store named by `spec`: a directory path or `file://` URL.
pub fn open(spec: &str, relative_to: &Path) -> Result<Box<dyn Store>, StoreError> {
    if let Some(path) = spec.strip_prefix("file://") {
        return Ok(Box::new(LocalStore::new(PathBuf::from(path))));
    }
    if spec.contains("://") {
        return Err(StoreError::Unsupported {
            spec: spec.to_owned(),
        });
    }
    Ok(Box::new(LocalStore::new(relative_to.join(spec))))
}

/// The store used when none is configured: a per-user cache directory, so
/// publishing in one worktree and seeding in another needs no setup.
pub fn default_location() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("cargo-seed")
        .join("store")
}

/// A directory on a local (or mounted) file system.
pub struct LocalStore {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn io(&self, op: &'static str, key: &str) -> impl FnOnce(io::Error) -> StoreError + '_ {
        let key = key.to_owned();
        move |source| StoreError::Io {
            store: self.location(),
            op,
            key,
            source,
        }
    }

    /// A fresh name in `<root>/tmp`, on the same file system as the objects
    /// so that the final rename is atomic.
    fn scratch(&self) -> io::Result<PathBuf> {
        let dir = self.root.join("tmp");
        fs::create_dir_all(&dir)?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        Ok(dir.join(format!("{}-{n}.part", std::process::id())))
    }
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        match fs::File::open(self.path(key)) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
                store: self.location(),
                key: key.to_owned(),
            }),
            Err(e) => Err(self.io("read", key)(e)),
        }
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.path(key).try_exists().map_err(self.io("look up", key))
    }

    fn put_file(&self, key: &str, src: &Path) -> Result<(), StoreError> {
        let dest = self.path(key);
        let parent = dest.parent().expect("keys have a parent");
        fs::create_dir_all(parent).map_err(self.io("create the directory of", key))?;
        let tmp = self.scratch().map_err(self.io("stage", key))?;
        // A rename keeps a single copy when `src` is on the same file system;
        // otherwise copy into the store's scratch space first.
        if fs::rename(src, &tmp).is_err() {
            fs::copy(src, &tmp).map_err(self.io("write", key))?;
            let _ = fs::remove_file(src);
        }
        fs::rename(&tmp, &dest).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            self.io("publish", key)(e)
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut stack = vec![self.path(prefix)];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io("list", prefix)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(self.io("list", prefix))?;
                let path = entry.path();
                if entry.file_type().map_err(self.io("list", prefix))?.is_dir() {
                    stack.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(key)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.io("delete", key)(e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_store_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("s"));
        let src = dir.path().join("src");
        fs::write(&src, b"hello").unwrap();
        let key = blob_key("abcdef");
        assert!(!store.exists(&key).unwrap());
        store.put_file(&key, &src).unwrap();
        assert!(store.exists(&key).unwrap());
        let mut body = String::new();
        store.get(&key).unwrap().read_to_string(&mut body).unwrap();
        assert_eq!(body, "hello");
        assert_eq!(store.list("blobs/").unwrap(), vec![key.clone()]);
        assert!(matches!(
            store.get("blobs/zz/none.zst"),
            Err(StoreError::NotFound { .. })
        ));
        store.delete(&key).unwrap();
        assert!(!store.exists(&key).unwrap());
    }

    #[test]
    fn remote_schemes_are_refused_clearly() {
        let err = open("s3://bucket/x", Path::new("/")).err().unwrap();
        assert!(err.to_string().contains("s3://bucket/x"));
    }
}
