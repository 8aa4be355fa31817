//! One request to an HTTP store, retried while its failure may pass:
//! connection errors, timeouts, 5xx, 408 and 429, with bounded exponential
//! backoff that honours `Retry-After`.
//!
//! It must never retry what cannot pass (404, 401/403, other 4xx), never
//! wait longer than its bounds, and never put a URL's query (a presigned
//! URL's credentials) or the bearer token into an error.

use std::io;
use std::time::Duration;

use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;

use super::HttpStore;
use crate::store::api::{Store, StoreError};
use crate::store::bound::Deadline;

/// How many times a request is sent before its failure is reported.
const ATTEMPTS: u32 = 5;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured; a server asking for more gets this.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(30);

impl HttpStore {
    /// Sends the request `make` builds, retrying what may pass. A 404 is
    /// `NotFound`; 401/403 are `Denied`; other statuses are errors.
    pub(super) fn send(
        &self,
        op: &'static str,
        key: &str,
        make: impl Fn() -> Result<RequestBuilder, io::Error>,
    ) -> Result<Response, StoreError> {
        self.send_within(None, op, key, make)
    }

    /// As [`HttpStore::send`], for a download: no attempt starts, and no
    /// wait between attempts goes on, past `deadline` or after its cancel
    /// flag is set.
    pub(super) fn send_within(
        &self,
        deadline: Option<&Deadline>,
        op: &'static str,
        key: &str,
        make: impl Fn() -> Result<RequestBuilder, io::Error>,
    ) -> Result<Response, StoreError> {
        let stopped = |stop: crate::store::bound::Stop| stop.into_store(self.location(), key);
        let mut delay = BACKOFF_START;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            if let Some(deadline) = deadline {
                deadline.check().map_err(stopped)?;
            }
            let req = make().map_err(|source| StoreError::Io {
                store: self.location(),
                op,
                key: key.to_owned(),
                source,
            })?;
            let wait = match self.with_auth(req).send() {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status() == StatusCode::NOT_FOUND => {
                    return Err(StoreError::NotFound {
                        store: self.location(),
                        key: key.to_owned(),
                    })
                }
                Ok(resp) if matches!(resp.status().as_u16(), 401 | 403) => {
                    return Err(StoreError::Denied {
                        store: self.location(),
                        op,
                        key: key.to_owned(),
                        status: resp.status().as_u16(),
                    })
                }
                Ok(resp) if is_transient(resp.status()) => {
                    last = format!("HTTP {}", resp.status());
                    retry_after(&resp).unwrap_or(delay)
                }
                Ok(resp) => {
                    return Err(StoreError::Http {
                        store: self.location(),
                        op,
                        key: key.to_owned(),
                        detail: format!("HTTP {}", resp.status()),
                    })
                }
                Err(e) => {
                    last = describe(e);
                    delay
                }
            };
            if attempt < ATTEMPTS {
                match deadline {
                    Some(deadline) => deadline.sleep(wait).map_err(stopped)?,
                    None => std::thread::sleep(wait),
                }
                delay = (delay * 2).min(BACKOFF_MAX);
            }
        }
        Err(StoreError::Http {
            store: self.location(),
            op,
            key: key.to_owned(),
            detail: format!("{last} (gave up after {ATTEMPTS} attempts)"),
        })
    }
}

fn is_transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// `Retry-After` in seconds (the HTTP-date form is treated as absent).
fn retry_after(resp: &Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(RETRY_AFTER_MAX))
}

/// An error's chain in one line, without the URL's query (which may carry
/// credentials in presigned URLs).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    for inner in crate::store::api::causes(&e) {
        s.push_str(": ");
        s.push_str(&inner.to_string());
    }
    s
}
