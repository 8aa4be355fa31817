//! A store behind a plain HTTP(S) server: GET/HEAD to read (with `Range` to
//! resume a dropped download), PUT to publish (WebDAV-style servers such as
//! nginx with `dav_methods PUT`, or an authenticated endpoint), DELETE for
//! retention.
//!
//! Transient failures (connection errors, timeouts, 5xx, 429) are retried
//! with bounded exponential backoff, honouring `Retry-After`. A request that
//! waits longer than `CARGO_SEED_HTTP_TIMEOUT` (60 s) for its answer, or a
//! download for its next bytes, is given up and retried (resumed). The
//! bearer token from `CARGO_SEED_TOKEN` is sent but never printed. Proxies
//! follow `HTTP(S)_PROXY`/`NO_PROXY`; TLS is rustls.
//!
//! HTTP cannot refresh an object in place, so [`Store::touch`] only asks
//! for its age: a blob the server last wrote more than [`REFRESH_AFTER`] ago
//! is uploaded again by the publish that reuses it, which is what keeps a
//! `gc` on the served directory from removing it.

use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, SystemTime};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{
    HeaderMap, CONTENT_LENGTH, CONTENT_RANGE, DATE, LAST_MODIFIED, RANGE, RETRY_AFTER,
};
use reqwest::StatusCode;

use super::{Listing, Store, StoreError};

/// How many times a request is sent before its failure is reported.
const ATTEMPTS: u32 = 5;
/// How many times one download may be resumed after its connection broke.
const RESUMES: u32 = 5;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured; a server asking for more gets this.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(30);
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
}

impl HttpStore {
    /// The store at `url`, with `CARGO_SEED_TOKEN` as its bearer token and
    /// `CARGO_SEED_HTTP_TIMEOUT` (whole seconds) as its timeout.
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
        HttpStore::with_options(url, token, timeout)
    }

    /// The store at `url` with this bearer token and the default timeout.
    pub fn with_token(url: &str, token: Option<String>) -> Result<HttpStore, StoreError> {
        HttpStore::with_options(url, token, TIMEOUT)
    }

    /// The token only ever travels encrypted (plain `http://` is accepted
    /// for it on loopback alone), and only to the store's own origin:
    /// a redirect elsewhere is refused rather than followed.
    fn with_options(
        url: &str,
        token: Option<String>,
        timeout: Duration,
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

    /// Sends the request `make` builds, retrying what may pass. A 404 is
    /// `NotFound`; 401/403 are `Denied`; other statuses are errors.
    fn send(
        &self,
        op: &'static str,
        key: &str,
        make: impl Fn() -> Result<RequestBuilder, io::Error>,
    ) -> Result<Response, StoreError> {
        let mut delay = BACKOFF_START;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
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
                std::thread::sleep(wait);
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

/// An error's chain in one line, without the URL's query (which may carry
/// credentials in presigned URLs).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut s = e.to_string();
    for inner in super::causes(&e) {
        s.push_str(": ");
        s.push_str(&inner.to_string());
    }
    s
}

impl Store for HttpStore {
    fn location(&self) -> String {
        self.base.trim_end_matches('/').to_owned()
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn get(&self, key: &str) -> Result<Box<dyn Read + Send>, StoreError> {
        let resp = self.send("download", key, || Ok(self.client.get(self.url(key))))?;
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
    /// [`REFRESH_AFTER`] ago; for any other the caller uploads it again.
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

/// A download that resumes with `Range` where its connection broke.
struct Download {
    store: HttpStore,
    key: String,
    resp: Option<Response>,
    offset: u64,
    total: Option<u64>,
    resumes: u32,
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
            .send("resume", &self.key, || {
                Ok(self
                    .store
                    .client
                    .get(self.store.url(&self.key))
                    .header(RANGE, &range))
            })
            .map_err(|e| io::Error::other(e.to_string()))?;
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
        let mut resp = resp;
        io::copy(&mut (&mut resp).take(self.offset), &mut io::sink())?;
        self.resp = Some(resp);
        Ok(())
    }
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    #[test]
    fn the_token_travels_in_clear_only_to_loopback() {
        let token = || Some("s3cr3t".to_owned());
        for url in ["http://seed.example.com/app", "http://10.0.0.8/app"] {
            let err = HttpStore::with_token(url, token()).err().expect(url);
            assert!(err.to_string().contains("clear text"), "{err}");
            assert!(!err.to_string().contains("s3cr3t"));
        }
        for url in [
            "https://seed.example.com/app",
            "http://127.0.0.1:8080/app",
            "http://localhost/app",
            "http://[::1]/app",
        ] {
            assert!(HttpStore::with_token(url, token()).is_ok(), "{url}");
        }
        assert!(HttpStore::with_token("http://seed.example.com/app", None).is_ok());
    }

    /// A server that answers every request with `answer` and reports each
    /// request's head.
    fn one_shot(answer: String) -> (String, std::sync::mpsc::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(4) {
                let mut stream = stream.unwrap();
                let mut head = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let _ = tx.send(head);
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (url, rx)
    }

    #[test]
    fn only_a_blob_the_server_wrote_recently_counts_as_refreshed() {
        // The server's clock says 2015: its `Date`, not this machine's
        // clock, is what ages the object.
        let answer = |modified: Option<&str>| {
            let modified = modified.map_or(String::new(), |m| format!("last-modified: {m}\r\n"));
            format!(
                "HTTP/1.1 200 OK\r\ndate: Wed, 18 Feb 2015 23:16:09 GMT\r\n{modified}\
                 content-length: 0\r\nconnection: close\r\n\r\n"
            )
        };
        let touch = |modified| {
            let (url, _) = one_shot(answer(modified));
            HttpStore::with_token(&url, None)
                .unwrap()
                .touch("blobs/ab/ab.zst")
        };
        assert!(touch(Some("Wed, 18 Feb 2015 22:17:09 GMT")).is_ok());
        let two_hours = Duration::from_secs(7200);
        assert!(matches!(
            touch(Some("Wed, 18 Feb 2015 21:16:09 GMT")),
            Err(StoreError::Stale { age: Some(a), .. }) if a == two_hours
        ));
        assert!(matches!(
            touch(None),
            Err(StoreError::Stale { age: None, .. })
        ));
    }

    #[test]
    fn the_timeout_is_whole_seconds() {
        assert_eq!(parse_timeout("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_timeout(" 1 "), Some(Duration::from_secs(1)));
        for bad in ["0", "-1", "1.5", "5s", ""] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_redirect_to_another_origin_is_not_followed() {
        let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi".to_owned();
        let (elsewhere, seen_elsewhere) = one_shot(ok);
        let redirect = format!(
            "HTTP/1.1 302 Found\r\nlocation: {elsewhere}/x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        let (store_url, seen) = one_shot(redirect);
        let store = HttpStore::with_token(&store_url, Some("s3cr3t".into())).unwrap();
        let err = store
            .get("snapshots/x.json")
            .err()
            .expect("a redirect elsewhere fails");
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        let first = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            first
                .to_ascii_lowercase()
                .contains("authorization: bearer s3cr3t"),
            "{first}"
        );
        assert!(
            seen_elsewhere
                .recv_timeout(Duration::from_millis(500))
                .is_err(),
            "the other origin was asked"
        );
    }
}
