//! A store in S3-compatible object storage (AWS S3, R2, MinIO, GCS's
//! interoperability endpoint, …), spoken through the `object_store` crate.
//!
//! `s3://bucket/prefix` names the bucket and a key prefix; everything else
//! comes from the standard AWS environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, …). Plain `http://` endpoints are allowed on loopback
//! only, unless `AWS_ALLOW_HTTP=true` says otherwise.
//!
//! Requests are retried by `object_store` (5xx, 429, connection errors, with
//! bounded backoff), and a download whose body breaks is resumed from where
//! it stopped, pinned to the same ETag. Objects are written whole: a single
//! PUT, or a multipart upload completed in one request, so a key never shows
//! a partial object. A download as a whole is given up at its deadline:
//! three minutes plus its expected size at `CARGO_SEED_MIN_RATE` (see
//! `store::bound`).
//!
//! The parts: the client's `config`, the whole-object `upload`, the
//! streaming `download`, and `errors` shortened to one line; the store and
//! its operations are here.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::stream::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3ConfigKey, S3CopyIfNotExists};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, CopyMode, CopyOptions, ObjectStore, ObjectStoreExt, RetryConfig,
};
use tokio::runtime::Runtime;

use crate::store::api::{Listing, ReadBound, Store, StoreError};
use crate::store::bound::{Deadline, DEFAULT_WAIT};

mod config;
mod download;
mod errors;
#[cfg(test)]
mod tests;
mod upload;

use config::{is_loopback_http, with_defaults};
use download::Download;
use errors::{one_line, status_of, summarize};

pub struct S3Store {
    /// `s3://bucket/prefix`, for messages.
    location: String,
    /// The key prefix, without leading or trailing `/`; may be empty.
    prefix: String,
    client: AmazonS3,
    /// The same bucket, configured to send `x-amz-metadata-directive:
    /// REPLACE` with a copy: see [`Store::touch`].
    toucher: AmazonS3,
    runtime: Arc<Runtime>,
    /// `CARGO_SEED_MIN_RATE`, bytes per second: see `store::bound`.
    min_rate: u64,
}

impl S3Store {
    /// `url` is `s3://bucket[/prefix]`; the rest comes from the `AWS_*`
    /// environment (variables `object_store` does not know are ignored).
    pub fn new(url: &str) -> Result<S3Store, StoreError> {
        let settings = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .filter_map(|(k, v)| Some((k.to_ascii_lowercase().parse().ok()?, v)))
            .collect();
        S3Store::configured(url, settings)
    }

    /// As [`S3Store::new`], with the AWS settings given as `(key, value)`
    /// pairs (`aws_endpoint_url`, …) instead of read from the environment.
    pub fn with_config<'a>(
        url: &str,
        config: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<S3Store, StoreError> {
        let mut settings = Vec::new();
        for (key, value) in config {
            let parsed = key
                .to_ascii_lowercase()
                .parse()
                .map_err(|_| StoreError::Config {
                    store: url.to_owned(),
                    detail: format!("unknown S3 setting `{key}`"),
                })?;
            settings.push((parsed, value.to_owned()));
        }
        S3Store::configured(url, settings)
    }

    fn configured(
        url: &str,
        settings: Vec<(AmazonS3ConfigKey, String)>,
    ) -> Result<S3Store, StoreError> {
        let setup = |detail: String| StoreError::Config {
            store: url.to_owned(),
            detail,
        };
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/').to_owned();
        if bucket.is_empty() {
            return Err(setup("no bucket: write s3://bucket/prefix".into()));
        }
        // object_store escapes some characters and drops empty segments;
        // keys it lists would then not start with the prefix as written.
        if ObjectPath::from(prefix.as_str()).as_ref() != prefix {
            return Err(setup(format!(
                "the prefix `{prefix}` has characters or empty segments object storage \
                 paths cannot hold as they are; use letters, digits, `-`, `_`, `.` and `/`"
            )));
        }
        let location = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };

        let mut builder = with_defaults(settings)
            .with_bucket_name(bucket)
            // One DELETE a key: the bulk call is missing on some servers
            // (GCS's interoperability endpoint) and hides per-key refusals.
            .with_config(AmazonS3ConfigKey::DisableBulkDelete, "true")
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: 5,
                retry_timeout: Duration::from_secs(180),
            });
        // object_store prefers the S3-specific endpoint when both are set.
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
        if endpoint.as_deref().is_some_and(is_loopback_http) {
            builder = builder.with_allow_http(true);
        } else if let Some(e) = endpoint.filter(|e| e.starts_with("http://")) {
            let allowed = builder
                .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
                .is_some_and(|v| v == "true");
            if !allowed {
                return Err(setup(format!(
                    "the endpoint `{e}` is plain http on another machine; use https, \
                     or set AWS_ALLOW_HTTP=true to send requests unencrypted"
                )));
            }
        }
        let client = builder.clone().build().map_err(|e| setup(e.to_string()))?;
        // S3 has no "touch". Copying an object onto itself refreshes its
        // LastModified, and S3 accepts that copy only when it replaces the
        // metadata. `object_store` sends a configured header with a
        // create-mode copy, which is how that header is sent here.
        let toucher = builder
            .with_copy_if_not_exists(S3CopyIfNotExists::Header(
                "x-amz-metadata-directive".into(),
                "REPLACE".into(),
            ))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cargo-seed-s3")
            .enable_all()
            .build()
            .map_err(|e| setup(e.to_string()))?;
        let min_rate = crate::store::bound::min_rate(&location)?;
        Ok(S3Store {
            location,
            prefix,
            client,
            toucher,
            runtime: Arc::new(runtime),
            min_rate,
        })
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// The store's key for an object's full path, if it is under the prefix.
    fn key_of<'a>(&self, path: &'a str) -> Option<&'a str> {
        if self.prefix.is_empty() {
            Some(path)
        } else {
            path.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
        }
    }

    fn error(&self, op: &'static str, key: &str, e: object_store::Error) -> StoreError {
        if let object_store::Error::NotFound { .. } = e {
            return StoreError::NotFound {
                store: self.location(),
                key: key.to_owned(),
            };
        }
        let full = one_line(&e);
        match status_of(&full) {
            Some(status @ (401 | 403)) => StoreError::Denied {
                store: self.location(),
                op,
                key: key.to_owned(),
                status,
            },
            _ => StoreError::Http {
                store: self.location(),
                op,
                key: key.to_owned(),
                detail: summarize(&full),
            },
        }
    }
}

impl Store for S3Store {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn is_remote(&self) -> bool {
        true
    }

    /// The deadline is checked before the request and before each wait for
    /// the next chunk; `object_store`'s read timeout bounds each wait.
    fn get(&self, key: &str, bound: ReadBound) -> Result<Box<dyn Read + Send>, StoreError> {
        let deadline = Deadline::start(DEFAULT_WAIT, self.min_rate, bound);
        deadline
            .check()
            .map_err(|stop| stop.into_store(self.location(), key))?;
        let path = self.path(key);
        let result = self
            .runtime
            .block_on(self.client.get(&path))
            .map_err(|e| self.error("download", key, e))?;
        Ok(Box::new(Download {
            stream: result.into_stream(),
            chunk: bytes::Bytes::new(),
            failed: None,
            what: format!("{}/{key}", self.location),
            runtime: self.runtime.clone(),
            deadline,
        }))
    }

    fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.runtime.block_on(self.client.head(&self.path(key))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error("look up", key, e)),
        }
    }

    fn put_file(&self, key: &str, src: &Path) -> Result<(), StoreError> {
        self.runtime.block_on(self.upload(key, src))
    }

    fn list(&self, prefix: &str) -> Result<Option<Vec<Listing>>, StoreError> {
        let path = self.path(prefix.trim_end_matches('/'));
        let metas = self.runtime.block_on(async {
            let mut out = Vec::new();
            let mut stream = self.client.list(Some(&path));
            while let Some(meta) = stream.next().await {
                out.push(meta?);
            }
            Ok::<_, object_store::Error>(out)
        });
        let metas = metas.map_err(|e| self.error("list", prefix, e))?;
        let mut out = Vec::with_capacity(metas.len());
        for m in metas {
            let Some(key) = self.key_of(m.location.as_ref()) else {
                return Err(StoreError::Http {
                    store: self.location(),
                    op: "list",
                    key: prefix.to_owned(),
                    detail: format!("the server listed `{}`, outside the prefix", m.location),
                });
            };
            out.push(Listing {
                key: key.to_owned(),
                modified: m.last_modified.into(),
                size: m.size,
            });
        }
        Ok(Some(out))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.runtime.block_on(self.client.delete(&self.path(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", key, e)),
        }
    }

    fn modified(&self, key: &str) -> Result<Option<SystemTime>, StoreError> {
        match self.runtime.block_on(self.client.head(&self.path(key))) {
            Ok(meta) => Ok(Some(meta.last_modified.into())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("look up", key, e)),
        }
    }

    fn touch(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key);
        let copy =
            self.toucher
                .copy_opts(&path, &path, CopyOptions::new().with_mode(CopyMode::Create));
        self.runtime
            .block_on(copy)
            .map_err(|e| self.error("refresh", key, e))
    }
}
