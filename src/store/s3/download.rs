//! A streaming download from S3, read synchronously.
//!
//! It must never make a broken download look complete: once the stream has
//! failed, every later read fails with the same reason.

use std::io::{self, Read};
use std::sync::Arc;

use futures_util::stream::{BoxStream, StreamExt};
use tokio::runtime::Runtime;

use super::errors::{one_line, summarize};
use crate::store::bound::{Deadline, Stop};

/// A streaming download. `object_store` retries a body that breaks
/// mid-way with a ranged GET pinned to the object's ETag.
pub(super) struct Download {
    // Dropped before the runtime it runs on.
    pub(super) stream: BoxStream<'static, object_store::Result<bytes::Bytes>>,
    pub(super) chunk: bytes::Bytes,
    /// Once the stream has failed it only ends, so the failure is kept and
    /// given to every later read: a broken download never looks complete.
    pub(super) failed: Option<String>,
    pub(super) what: String,
    pub(super) runtime: Arc<Runtime>,
    /// Checked before each wait for a chunk.
    pub(super) deadline: Deadline,
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            if let Some(why) = &self.failed {
                return Err(io::Error::other(why.clone()));
            }
            self.deadline.check().map_err(Stop::into_io)?;
            match self.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => {
                    self.failed = Some(format!(
                        "download of {} failed: {}",
                        self.what,
                        summarize(&one_line(&e))
                    ));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}
