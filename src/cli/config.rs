//! Settings that come from more than one place, resolved in one order:
//! flag, then `CARGO_SEED_*` environment, then `[workspace.metadata.seed]`,
//! then the default. Secrets (the signing key) come only from the
//! environment.

use crate::cargo::workspace::Workspace;
use crate::publish::cover::Cover;
use crate::snapshot::signing::{SecretKey, TrustedKeys};
use crate::store::{self, BlobCache, Store};
use crate::Error;

/// The commands a publish covers: `--cover`s and the `--` shorthand, else
/// the workspace's `cover` list, else `build` in the chosen profile.
pub(super) fn covers_to_publish(
    ws: &Workspace,
    profile: &str,
    flags: &[String],
    build_args: &[String],
) -> Result<Vec<Cover>, Error> {
    let mut covers = flags
        .iter()
        .map(|c| Cover::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    if !build_args.is_empty() {
        covers.push(Cover::build(profile, build_args)?);
    }
    if covers.is_empty() {
        for c in &ws.configured_covers {
            covers.push(Cover::parse(c)?);
        }
    }
    if covers.is_empty() {
        covers.push(Cover::build(profile, &[])?);
    }
    Ok(covers)
}

/// `CARGO_SEED_SIGNING_KEY`, if set and not empty (CI systems pass an
/// empty value for a secret a job may not see).
pub(super) fn signing_key() -> Result<Option<SecretKey>, Error> {
    let Some(text) = std::env::var_os("CARGO_SEED_SIGNING_KEY") else {
        return Ok(None);
    };
    let text = text.to_string_lossy();
    if text.trim().is_empty() {
        return Ok(None);
    }
    SecretKey::parse(&text).map(Some).map_err(Error::SigningKey)
}

/// `CARGO_SEED_TRUSTED_KEYS`, else the workspace's `trusted-keys`.
pub(super) fn trusted_keys(ws: &Workspace) -> Result<Option<TrustedKeys>, Error> {
    let env = std::env::var_os("CARGO_SEED_TRUSTED_KEYS");
    let env = env.as_ref().map(|v| v.to_string_lossy());
    Ok(TrustedKeys::configured(
        env.as_deref(),
        &ws.configured_trusted_keys,
    )?)
}

/// The store from the flag or environment, else the workspace's
/// configuration (relative to the workspace root), else the default.
pub(super) fn open_store(ws: &Workspace, flag: Option<&str>) -> Result<Box<dyn Store>, Error> {
    let spec = match (flag, &ws.configured_store) {
        (Some(s), _) => s.to_owned(),
        (None, Some(s)) => s.clone(),
        (None, None) => store::default_location().display().to_string(),
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| ws.root.clone());
    let base = if flag.is_some() { cwd } else { ws.root.clone() };
    Ok(store::open(&spec, &base)?)
}

/// The local cache for blobs from a remote store; none for a local store,
/// which is as near as a cache would be. Its bound: the flag or
/// environment, else the workspace's `cache-size`, else the default.
pub(super) fn blob_cache(
    ws: &Workspace,
    flag: Option<u64>,
    store: &dyn Store,
) -> Option<BlobCache> {
    if !store.is_remote() {
        return None;
    }
    let limit = flag
        .or(ws.configured_cache_size)
        .unwrap_or(store::cache::DEFAULT_LIMIT);
    BlobCache::new(store::cache::location(), limit)
}
