//! A download from an HTTP store that resumes with `Range` where its
//! connection broke, a bounded number of times.
//!
//! It must never hand on bytes twice or skip any: a server that ignores the
//! range is read past what was already delivered, and a body that ends
//! before its declared length is resumed, not taken as complete. Nor may it
//! read, resume or skip past its [`Deadline`] or after Ctrl-C: each read
//! and each resume checks it first.

use std::io::{self, Read};

use reqwest::blocking::Response;
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;

use super::HttpStore;
use crate::store::api::StoreError;
use crate::store::bound::{Deadline, Stop};

/// How many times one download may be resumed after its connection broke.
const RESUMES: u32 = 5;
/// A download that resumes with `Range` where its connection broke.
pub(super) struct Download {
    pub(super) store: HttpStore,
    pub(super) key: String,
    pub(super) resp: Option<Response>,
    pub(super) offset: u64,
    pub(super) total: Option<u64>,
    pub(super) resumes: u32,
    pub(super) deadline: Deadline,
}

impl Download {
    fn resume(&mut self, why: String) -> io::Result<()> {
        self.resp = None;
        self.resumes += 1;
        if self.resumes > RESUMES {
            return Err(io::Error::other(format!(
                "download of {} broke {RESUMES} times, last: {why}",
                self.store.url(&self.key)
            )));
        }
        let range = format!("bytes={}-", self.offset);
        let resp = self
            .store
            .send_within(Some(&self.deadline), "resume", &self.key, || {
                Ok(self
                    .store
                    .client
                    .get(self.store.url(&self.key))
                    .header(RANGE, &range))
            })
            .map_err(|e| match e {
                StoreError::TooSlow { why, .. } => Stop::TooSlow(why).into_io(),
                StoreError::Interrupted { .. } => Stop::Cancelled.into_io(),
                e => io::Error::other(e.to_string()),
            })?;
        let starts_at_offset = resp
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("bytes ")?
                    .split('-')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            == Some(self.offset);
        if resp.status() == StatusCode::PARTIAL_CONTENT && starts_at_offset {
            self.resp = Some(resp);
            return Ok(());
        }
        // The server ignored the range: skip what was already read.
        let mut skipped = crate::store::bound::Checked {
            inner: resp.take(self.offset),
            deadline: self.deadline.clone(),
        };
        io::copy(&mut skipped, &mut io::sink())?;
        self.resp = Some(skipped.inner.into_inner());
        Ok(())
    }
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.deadline.check().map_err(Stop::into_io)?;
            let Some(resp) = self.resp.as_mut() else {
                self.resume("no connection".into())?;
                continue;
            };
            match resp.read(buf) {
                Ok(0) if self.total.is_some_and(|t| self.offset < t) => {
                    let why = format!(
                        "the body ended after {} of {:?} bytes",
                        self.offset, self.total
                    );
                    self.resume(why)?;
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e.to_string())?,
            }
        }
    }
}
