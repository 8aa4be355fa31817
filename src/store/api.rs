//! The contract every backend keeps: the [`Store`] trait, its errors and a
//! listing entry. Backends depend on this file only, never on each other or
//! on the module that picks one.

use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

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
    #[error("{store}: {detail}")]
    Config { store: String, detail: String },
    #[error("unsupported store `{spec}`: use a directory, a file:// URL, an http(s):// URL or s3://bucket/prefix")]
    Unsupported { spec: String },
    #[error("{store}: {op} `{key}` was refused (HTTP {status})")]
    Denied {
        store: String,
        op: &'static str,
        key: String,
        status: u16,
    },
    #[error("{store}: {op} `{key}` failed: {detail}")]
    Http {
        store: String,
        op: &'static str,
        key: String,
        detail: String,
    },
    /// [`Store::touch`] could not renew the object where it is: the
    /// caller uploads it again.
    #[error("{store}: `{key}` cannot be refreshed in place ({})", stale(.age))]
    Stale {
        store: String,
        key: String,
        /// How long ago the store last wrote it, if it says.
        age: Option<std::time::Duration>,
    },
    #[error("{store}: `{key}` is larger than {}, the most cargo-seed reads of it", crate::report::format::bytes(*.cap))]
    TooLarge {
        store: String,
        key: String,
        cap: u64,
    },
    /// A directory store (or the blob cache) holds something else than a
    /// regular file under a key: it is never opened for reading.
    #[error("{store}: `{key}` is {kind}, not a regular file")]
    NotAFile {
        store: String,
        key: String,
        kind: &'static str,
    },
    /// The download went on past its deadline (see [`ReadBound`]).
    #[error("{store}: download of `{key}` was given up: {why}")]
    TooSlow {
        store: String,
        key: String,
        why: String,
    },
    /// The read was stopped by its [`ReadBound::cancel`] flag (Ctrl-C).
    #[error("{store}: reading `{key}` was interrupted")]
    Interrupted { store: String, key: String },
}

fn stale(age: &Option<std::time::Duration>) -> String {
    match age {
        Some(age) => format!("last written {}s ago", age.as_secs()),
        None => "the store does not say when it was written".into(),
    }
}

/// The operations cargo-seed needs from a place that holds snapshots.
pub trait Store: Send + Sync {
    /// How to name this store in messages.
    fn location(&self) -> String;
    /// Whether objects come over the network from a place that others
    /// write (HTTP, S3), so that seeding from it without checking
    /// signatures deserves a warning. No default: each backend decides.
    fn is_remote(&self) -> bool;
    /// Opens an object for streaming, within `bound`: a directory store
    /// opens only a regular file (never a symlink, FIFO or device), and a
    /// remote store's reads fail once the download has taken longer than
    /// `bound.size` bytes may take at the minimum rate, or once
    /// `bound.cancel` is set. The caller still reads no more than the size
    /// it expects: the store does not cut the stream.
    fn get(&self, key: &str, bound: ReadBound) -> Result<Box<dyn Read + Send>, StoreError>;
    fn exists(&self, key: &str) -> Result<bool, StoreError>;
    /// Stores the contents of `src` under `key`, atomically. `src` may be
    /// consumed (moved) by the store.
    fn put_file(&self, key: &str, src: &Path) -> Result<(), StoreError>;
    /// Objects directly or indirectly under `prefix` (which ends with `/`),
    /// or `None` if this kind of store cannot list (plain HTTP).
    fn list(&self, prefix: &str) -> Result<Option<Vec<Listing>>, StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// When the object was last written or touched, if the store can tell.
    fn modified(&self, _key: &str) -> Result<Option<SystemTime>, StoreError> {
        Ok(None)
    }
    /// Marks an existing object as just used, so that `gc`'s grace period
    /// protects a blob a publish is about to reference, or fails, and the
    /// caller uploads the object again (which renews it as well). No
    /// default: a store that did nothing here would let a gc remove a blob
    /// a manifest is about to name. Plain HTTP cannot renew an object in
    /// place; it succeeds only for one the server wrote recently enough.
    /// Fails for an object that is not there: publishing relies on that
    /// instead of asking first.
    fn touch(&self, key: &str) -> Result<(), StoreError>;
}

/// What bounds one [`Store::get`]: the most bytes the object may hold, which
/// sets how long a remote store may take to send it, and a flag that stops
/// the reads once set (the seed's Ctrl-C flag).
#[derive(Debug, Clone, Copy)]
pub struct ReadBound {
    pub size: u64,
    pub cancel: &'static AtomicBool,
}

/// One object found by [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub key: String,
    pub modified: SystemTime,
    pub size: u64,
}

/// `e`'s causes, nearest first, without `e` itself: the one walk of an
/// error's `source()` chain, for every place that prints one.
pub(crate) fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |inner| (*inner).source())
}
