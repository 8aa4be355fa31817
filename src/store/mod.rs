//! Where snapshots live. A [`Store`] is a flat key → bytes namespace with a
//! few operations; nothing outside this module knows which backend it talks
//! to.
//!
//! The key layout, the same on every backend, is known to the `layout`
//! module only; everyone else builds and reads keys through its functions,
//! re-exported here.
//!
//! A store must never expose a partially written object under its final key.
//!
//! Blobs fetched from a remote store are also kept in a local [`BlobCache`]
//! (see `cache`); the layout of that cache is known here only.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

mod api;
pub(crate) mod bound;
pub(crate) mod cache;
mod file;
mod http;
mod layout;
mod local;
mod s3;

pub(crate) use api::causes;
pub use api::{Listing, ReadBound, Store, StoreError};
pub use cache::BlobCache;
pub use http::HttpStore;
pub use layout::{
    all_blobs_prefix, all_snapshots_prefix, blob_key, blob_sha256, looks_like_manifest,
    manifest_key, parse_manifest_key, signature_key, signed_manifest_key, snapshot_prefix,
};
pub use local::LocalStore;
pub use s3::S3Store;

/// An object's bytes, refused with [`StoreError::TooLarge`] beyond `cap`
/// bytes: at most `cap + 1` bytes are ever read, whatever the store sends,
/// within the time `cap` bytes may take (see `bound`); once `cancel` is set
/// the read stops with [`StoreError::Interrupted`].
pub(crate) fn read_capped(
    store: &dyn Store,
    key: &str,
    cap: u64,
    cancel: &'static AtomicBool,
) -> Result<Vec<u8>, StoreError> {
    let mut body = Vec::new();
    let bound = ReadBound { size: cap, cancel };
    store
        .get(key, bound)?
        .take(cap.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|source| read_error(store, key, cancel, source))?;
    if body.len() as u64 > cap {
        return Err(StoreError::TooLarge {
            store: store.location(),
            key: key.to_owned(),
            cap,
        });
    }
    Ok(body)
}

/// A failed read of `key` as its reader saw it: stopped by its flag, past
/// its deadline, or broken.
fn read_error(store: &dyn Store, key: &str, cancel: &AtomicBool, source: io::Error) -> StoreError {
    let (store, key) = (store.location(), key.to_owned());
    if cancel.load(Ordering::Relaxed) {
        StoreError::Interrupted { store, key }
    } else if source.kind() == io::ErrorKind::TimedOut {
        StoreError::TooSlow {
            store,
            key,
            why: source.to_string(),
        }
    } else {
        StoreError::Io {
            store,
            op: "read",
            key,
            source,
        }
    }
}

/// Which backend a store is: what a `--store` value names, and what a
/// [`Store::location`] names again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A directory, given as a path or a `file://` URL.
    Local,
    /// An `http://` or `https://` URL.
    Http,
    /// `s3://bucket/prefix`.
    S3,
}

impl Kind {
    /// The backend `spec` names, or `None` for a URL of a scheme no backend
    /// serves.
    pub fn of(spec: &str) -> Option<Kind> {
        if spec.starts_with("file://") {
            Some(Kind::Local)
        } else if spec.starts_with("http://") || spec.starts_with("https://") {
            Some(Kind::Http)
        } else if spec.starts_with("s3://") {
            Some(Kind::S3)
        } else if spec.contains("://") {
            None
        } else {
            Some(Kind::Local)
        }
    }
}

/// Opens the store named by `spec`: a directory path, a `file://` URL, an
/// `http(s)://` URL or `s3://bucket/prefix`.
pub fn open(spec: &str, relative_to: &Path) -> Result<Box<dyn Store>, StoreError> {
    Ok(match Kind::of(spec) {
        Some(Kind::Local) => Box::new(LocalStore::new(match spec.strip_prefix("file://") {
            Some(path) => PathBuf::from(path),
            None => relative_to.join(spec),
        })),
        Some(Kind::Http) => Box::new(HttpStore::new(spec)?),
        Some(Kind::S3) => Box::new(S3Store::new(spec)?),
        None => {
            return Err(StoreError::Unsupported {
                spec: spec.to_owned(),
            })
        }
    })
}

/// The store used when none is configured: a per-user cache directory, so
/// publishing in one worktree and seeding in another needs no setup.
pub(crate) fn default_location() -> PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("cargo-seed")
        .join("store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    static NEVER: AtomicBool = AtomicBool::new(false);
    const ANY: ReadBound = ReadBound {
        size: 1 << 20,
        cancel: &NEVER,
    };

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
        store
            .get(&key, ANY)
            .unwrap()
            .read_to_string(&mut body)
            .unwrap();
        assert_eq!(body, "hello");
        let listed = store.list("blobs/").unwrap().unwrap();
        assert_eq!(listed.iter().map(|l| &l.key).collect::<Vec<_>>(), [&key]);
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        fs::File::options()
            .write(true)
            .open(dir.path().join("s").join(&key))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(store.modified(&key).unwrap(), Some(old));
        store.touch(&key).unwrap();
        assert!(store.modified(&key).unwrap().unwrap() > old);
        assert!(matches!(
            store.get("blobs/zz/none.zst", ANY),
            Err(StoreError::NotFound { .. })
        ));
        store.delete(&key).unwrap();
        assert!(!store.exists(&key).unwrap());
    }

    #[test]
    fn capped_reads_refuse_what_is_larger_and_read_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_owned());
        fs::create_dir_all(dir.path().join("k")).unwrap();
        fs::write(dir.path().join("k/exact"), [7u8; 16]).unwrap();
        assert_eq!(
            read_capped(&store, "k/exact", 16, &NEVER).unwrap(),
            [7u8; 16]
        );
        assert!(matches!(
            read_capped(&store, "k/exact", 15, &NEVER),
            Err(StoreError::TooLarge { cap: 15, .. })
        ));
        assert!(matches!(
            read_capped(&store, "k/none", 15, &NEVER),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_store_reads_no_key_that_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_owned());
        fs::create_dir_all(dir.path().join("k/dir")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("k/zero")).unwrap();
        for (key, kind) in [("k/zero", "a symbolic link"), ("k/dir", "a directory")] {
            match read_capped(&store, key, 15, &NEVER) {
                Err(e @ StoreError::NotAFile { .. }) => {
                    assert!(e.to_string().contains(kind), "{e}")
                }
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn remote_schemes_are_refused_clearly() {
        let err = open("gs://bucket/x", Path::new("/")).err().unwrap();
        assert!(err.to_string().contains("gs://bucket/x"));
    }
}
