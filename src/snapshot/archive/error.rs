//! Why packing or unpacking a blob failed, with the blob and the path.
//!
//! It must never decide anything: it only names failures, and the variant
//! chosen (damage, transport, hostile entry, local I/O) is what the hint
//! shown to the user depends on.

use std::io;
use std::path::{Path, PathBuf};

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
    /// The blob makes more than its declared size accounts for.
    #[error("blob {blob} is refused: {detail}")]
    Excess { blob: String, detail: String },
    /// The file system ran out of room (less the margin kept for cargo).
    #[error("no {what} left for `{entry}` of blob {blob}: the file system is nearly full")]
    NoRoom {
        blob: String,
        entry: String,
        what: &'static str,
    },
    /// The store's stream broke off and could not be resumed: a transport
    /// failure, not damage.
    #[error("download of blob {blob} broke off: {detail}")]
    Fetch { blob: String, detail: String },
    /// More bytes came than the manifest declares: damage, and no more than
    /// one byte past the declared size was read.
    #[error("blob {blob} is longer than the {size} bytes its manifest declares")]
    Oversized { blob: String, size: u64 },
    /// The store's stream went on past its deadline: too slow, not damage.
    #[error("download of blob {blob} was given up: {detail}")]
    TooSlow { blob: String, detail: String },
    #[error("interrupted")]
    Cancelled,
}

pub(super) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> ArchiveError + 'a {
    move |source| ArchiveError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}
