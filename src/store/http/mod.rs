//! A store behind a plain HTTP(S) server: GET/HEAD to read (with `Range` to
//! resume a dropped download), PUT to publish (WebDAV-style servers such as
//! nginx with `dav_methods PUT`, or an authenticated endpoint), DELETE for
//! retention.
//!
//! Transient failures (connection errors, timeouts, 5xx, 429) are retried
//! with bounded exponential backoff, honouring `Retry-After`. A request that
//! waits longer than `CARGO_SEED_HTTP_TIMEOUT` (60 s) for its answer, or a
//! download for its next bytes, is given up and retried (resumed). A
//! download as a whole is given up at its deadline: three such timeouts plus
//! its expected size at `CARGO_SEED_MIN_RATE` (see `store::bound`). The
//! bearer token from `CARGO_SEED_TOKEN` is sent but never printed. Proxies
//! follow `HTTP(S)_PROXY`/`NO_PROXY`; TLS is rustls.
//!
//! HTTP cannot refresh an object in place, so [`Store::touch`] only asks
//! for its age: a blob the server last wrote more than [`REFRESH_AFTER`] ago
//! is uploaded again by the publish that reuses it, which is what keeps a
//! `gc` on the served directory from removing it.
//!
//! The parts: the `request` and its retries, the resumable `download`; the
//! client, its configuration and the [`Store`] operations are here.
//!
//! Why not `object_store`'s HTTP store, whose retries would replace
//! `request`'s (S3 does use `object_store`): its `head` reports only
//! `Last-Modified`, and a blob's age must be measured against the server's
//! own `Date` so that no two machines' clocks are compared; and its listing
//! is WebDAV `PROPFIND`, which plain static servers answer with an error,
//! where this store says it cannot list and is asked for exact keys.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{HeaderMap, CONTENT_LENGTH, DATE, LAST_MODIFIED};

use crate::store::api::{Listing, ReadBound, Store, StoreError};
use crate::store::bound::{self, Deadline};

mod download;
mod request;
#[cfg(test)]
mod tests;

use download::Download;

/// How long a request waits for its answer (an upload: to send its body and
/// get the answer), and a download for its next bytes, unless
/// `CARGO_SEED_HTTP_TIMEOUT` says otherwise.
const TIMEOUT: Duration = Duration::from_secs(60);
/// A reused blob the server wrote longer ago than this is uploaded again,
/// which renews its modification time on the server's disk. Well inside
/// gc's default grace period (24 h): a gc on the served directory keeps
/// every blob a publish reuses as long as its grace period exceeds this
/// plus the time a publish and a gc take.
const REFRESH_AFTER: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub struct HttpStore {
    /// The base URL, ending with `/`.
    base: String,
    client: Client,
    token: Option<String>,
    /// How long a request waits for its answer: also what a download's
    /// deadline allows for answers and retries (three of them).
    timeout: Duration,
    /// `CARGO_SEED_MIN_RATE`, bytes per second.
    min_rate: u64,
}

impl HttpStore {
    /// The store at `url`, with `CARGO_SEED_TOKEN` as its bearer token,
    /// `CARGO_SEED_HTTP_TIMEOUT` (whole seconds) as its timeout and
    /// `CARGO_SEED_MIN_RATE` as the slowest it may send.
    pub fn new(url: &str) -> Result<HttpStore, StoreError> {
        let token = std::env::var("CARGO_SEED_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let timeout = match std::env::var("CARGO_SEED_HTTP_TIMEOUT") {
            Ok(v) if !v.is_empty() => parse_timeout(&v).ok_or_else(|| StoreError::Config {
                store: url.trim_end_matches('/').to_owned(),
                detail: format!(
                    "CARGO_SEED_HTTP_TIMEOUT must be a whole number of seconds (at least 1), not `{v}`"
                ),
            })?,
            _ => TIMEOUT,
        };
        let min_rate = bound::min_rate(url.trim_end_matches('/'))?;
        HttpStore::with_options(url, token, timeout, min_rate)
    }

    /// The store at `url` with this bearer token and the default timeout.
    #[cfg(test)]
    fn with_token(url: &str, token: Option<String>) -> Result<HttpStore, StoreError> {
        HttpStore::with_options(url, token, TIMEOUT, bound::DEFAULT_MIN_RATE)
    }

    /// The token only ever travels encrypted (plain `http://` is accepted
    /// for it on loopback alone), and only to the store's own origin:
    /// a redirect elsewhere is refused rather than followed.
    fn with_options(
        url: &str,
        token: Option<String>,
        timeout: Duration,
        min_rate: u64,
    ) -> Result<HttpStore, StoreError> {
        let base = if url.ends_with('/') {
            url.to_owned()
        } else {
            format!("{url}/")
        };
        let config = |detail: String| StoreError::Config {
            store: base.trim_end_matches('/').to_owned(),
            detail,
        };
        let parsed = reqwest::Url::parse(&base).map_err(|e| config(e.to_string()))?;
        if token.is_some() && parsed.scheme() == "http" && !is_loopback(&parsed) {
            return Err(config(
                "CARGO_SEED_TOKEN would be sent in clear text over plain http:// \
                 (allowed on loopback only); use an https:// store"
                    .into(),
            ));
        }
        let origin = parsed.origin();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.url().origin() != origin {
                attempt.error(
                    "the store redirected to another origin, which cargo-seed does not follow",
                )
            } else if attempt.previous().len() >= 10 {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // The blocking client applies it to the wait for the answer and
            // to every read of the body: a stalled download is resumed.
            .timeout(timeout)
            .redirect(redirects)
            .user_agent(concat!("cargo-seed/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config(e.to_string()))?;
        Ok(HttpStore {
            base,
            client,
            token,
            timeout,
            min_rate,
        })
    }

    fn url(&self, key: &str) -> String {
        format!("{}{key}", self.base)
    }

    fn with_auth(&self, req: RequestBuilder) -> RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }
}

fn parse_timeout(secs: &str) -> Option<Duration> {
    let secs: u64 = secs.trim().parse().ok()?;
    (secs > 0).then(|| Duration::from_secs(secs))
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// How long ago the server last wrote what it answered about, by the
/// server's own clock (its `Date`, else this machine's), so that a client
/// whose clock is wrong still judges age as a gc on the server would.
/// `None` when the server does not say (no `Last-Modified`, or not in the
/// IMF-fixdate form of RFC 9110).
fn age(headers: &HeaderMap) -> Option<Duration> {
    let date = |name| -> Option<SystemTime> {
        let text = headers.get(name)?.to_str().ok()?;
        Some(
            chrono::DateTime::parse_from_rfc2822(text.trim())
                .ok()?
                .into(),
        )
    };
    let modified = date(LAST_MODIFIED)?;
    let now = date(DATE).unwrap_or_else(SystemTime::now);
    Some(now.duration_since(modified).unwrap_or_default())
}

impl Store for HttpStore {
    fn location(&self) -> String {
        self.base.trim_end_matches('/').to_owned()
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn get(&self, key: &str, bound: ReadBound) -> Result<Box<dyn Read + Send>, StoreError> {
        let deadline = Deadline::start(self.timeout, self.min_rate, bound);
        let resp = self.send_within(Some(&deadline), "download", key, || {
            Ok(self.client.get(self.url(key)))
        })?;
        let total = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        Ok(Box::new(Download {
            store: self.clone(),
            key: key.to_owned(),
            resp: Some(resp),
            offset: 0,
            total,
            resumes: 0,
            deadline,
        }))
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.send("look up", key, || Ok(self.client.head(self.url(key)))) {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn put_file(&self, key: &str, src: &Path) -> Result<(), StoreError> {
        self.send("upload", key, || {
            let file = std::fs::File::open(src)?;
            let len = file.metadata()?.len();
            Ok(self
                .client
                .put(self.url(key))
                .header(CONTENT_LENGTH, len)
                .body(reqwest::blocking::Body::sized(file, len)))
        })?;
        Ok(())
    }

    fn list(&self, _prefix: &str) -> Result<Option<Vec<Listing>>, StoreError> {
        Ok(None)
    }

    /// Succeeds only for an object the server wrote less than
    /// `REFRESH_AFTER` ago; for any other the caller uploads it again.
    fn touch(&self, key: &str) -> Result<(), StoreError> {
        let resp = self.send("refresh", key, || Ok(self.client.head(self.url(key))))?;
        match age(resp.headers()) {
            Some(age) if age < REFRESH_AFTER => Ok(()),
            age => Err(StoreError::Stale {
                store: self.location(),
                key: key.to_owned(),
                age,
            }),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.send("delete", key, || Ok(self.client.delete(self.url(key)))) {
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
