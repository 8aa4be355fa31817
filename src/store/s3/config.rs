//! The `object_store` client's settings: cargo-seed's timeouts under the
//! user's `AWS_*` settings, and which plain-http endpoints are allowed.
//!
//! It must never override a setting the user gave, nor allow plain http to
//! anything but this machine unless `AWS_ALLOW_HTTP` says so.

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::ClientConfigKey;

/// cargo-seed's defaults, then the user's settings, which override them: no
/// limit on a whole request (a large blob may take minutes), but a
/// connection that stalls for 30 s is broken, and retried.
pub(super) fn with_defaults(settings: Vec<(AmazonS3ConfigKey, String)>) -> AmazonS3Builder {
    let client = AmazonS3ConfigKey::Client;
    let mut builder = AmazonS3Builder::new()
        .with_config(client(ClientConfigKey::ConnectTimeout), "10s")
        .with_config(client(ClientConfigKey::ReadTimeout), "30s")
        .with_config(client(ClientConfigKey::Timeout), "1h")
        .with_config(
            client(ClientConfigKey::UserAgent),
            concat!("cargo-seed/", env!("CARGO_PKG_VERSION")),
        );
    for (key, value) in settings {
        builder = builder.with_config(key, value);
    }
    builder
}

/// Whether `endpoint` is a plain-http URL to this machine.
pub(super) fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
