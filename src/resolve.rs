//! Which snapshot: the nearest ancestor of `HEAD` (or the commit asked for)
//! that has a snapshot this toolchain, target and profile can reuse.

use std::io::Read;

use crate::manifest::{Manifest, Want};
use crate::store::{snapshot_prefix, Store, StoreError};
use crate::{validate, Error};

/// A snapshot found in the store, usable or not.
#[derive(Debug)]
pub struct Listed {
    pub commit: String,
    pub distance: usize,
    pub key: String,
    /// The manifest, or why it could not be read.
    pub manifest: Result<Manifest, String>,
    /// Why it cannot be used here; `None` if it can.
    pub unusable: Option<String>,
}

/// The snapshot chosen for restoring.
#[derive(Debug)]
pub struct Found {
    pub commit: String,
    pub distance: usize,
    pub key: String,
    pub manifest: Manifest,
}

/// The most a manifest may weigh: a workspace of thousands of units with
/// every input listed stays far below it, and nothing larger is read.
pub const MANIFEST_CAP: u64 = 32 << 20;

/// Reads, parses and validates the manifest stored under `key`
/// (`snapshots/<commit>/<variant>.json`). Nothing in it is used before
/// [`validate::manifest`] has accepted every field.
pub fn read_manifest(store: &dyn Store, key: &str) -> Result<Manifest, Error> {
    let invalid = |detail: String| Error::InvalidManifest {
        store: store.location(),
        key: key.to_owned(),
        detail,
    };
    let (commit, variant) = key
        .strip_prefix("snapshots/")
        .and_then(|k| k.split_once('/'))
        .and_then(|(c, v)| Some((c, v.strip_suffix(".json")?)))
        .ok_or_else(|| invalid("not a manifest key".into()))?;
    let mut body = Vec::new();
    store
        .get(key)?
        .take(MANIFEST_CAP + 1)
        .read_to_end(&mut body)
        .map_err(|source| crate::store::StoreError::Io {
            store: store.location(),
            op: "read",
            key: key.to_owned(),
            source,
        })?;
    if body.len() as u64 > MANIFEST_CAP {
        return Err(invalid(format!(
            "it is larger than {} MiB",
            MANIFEST_CAP >> 20
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&body).map_err(|source| Error::Manifest {
        store: store.location(),
        key: key.to_owned(),
        source,
    })?;
    validate::manifest(&manifest, commit, variant).map_err(|e| invalid(e.to_string()))?;
    Ok(manifest)
}

/// Every snapshot of `commit` in the store, judged against `want`.
pub fn snapshots_at(
    store: &dyn Store,
    commit: &str,
    distance: usize,
    want: &Want,
) -> Result<Vec<Listed>, Error> {
    let prefix = snapshot_prefix(commit);
    // A store that cannot list (plain HTTP) is asked for the one manifest
    // this toolchain, target and profile would use.
    let (keys, exact) = match store.list(&prefix)? {
        Some(listed) => (listed.into_iter().map(|l| l.key).collect(), false),
        None => {
            let variant = crate::manifest::variant(&want.profile, &want.target, &want.toolchain);
            (vec![format!("{prefix}{variant}.json")], true)
        }
    };
    let mut out = Vec::new();
    for key in keys {
        if !key.ends_with(".json") {
            continue;
        }
        let (manifest, unusable) = match read_manifest(store, &key) {
            Err(Error::Store(StoreError::NotFound { .. })) if exact => continue,
            Ok(m) => {
                let why = m.incompatibility(want);
                (Ok(m), why)
            }
            // A manifest that is there but unreadable is skipped and named;
            // a store that cannot be read is an error of its own.
            Err(e @ Error::Manifest { .. }) => {
                let why = format!("unreadable manifest ({e})");
                (Err(why.clone()), Some(why))
            }
            // A manifest that breaks a rule is never used, whatever else it
            // says: the store may be hostile.
            Err(Error::InvalidManifest { detail, .. }) => {
                let why = format!("rejected manifest: {detail}");
                (Err(why.clone()), Some(why))
            }
            Err(e) => return Err(e),
        };
        out.push(Listed {
            commit: commit.to_owned(),
            distance,
            key,
            manifest,
            unusable,
        });
    }
    Ok(out)
}

/// How many commits are asked about at once: a remote store answers each
/// in a round trip, so resolution among hundreds of ancestors overlaps them.
const CONCURRENT_LOOKUPS: usize = 16;

/// The snapshots of every ancestor, in the ancestors' order.
fn ask_all(
    store: &dyn Store,
    ancestors: &[(String, usize)],
    want: &Want,
) -> Result<Vec<Vec<Listed>>, Error> {
    crate::pool::map(ancestors, CONCURRENT_LOOKUPS, |(commit, distance)| {
        snapshots_at(store, commit, *distance, want)
    })
}

/// Every snapshot among `ancestors`, nearest first.
pub fn list(
    store: &dyn Store,
    ancestors: &[(String, usize)],
    want: &Want,
) -> Result<Vec<Listed>, Error> {
    let mut out = Vec::new();
    for found in ask_all(store, ancestors, want)? {
        out.extend(found);
    }
    Ok(out)
}

/// The nearest usable snapshot among `ancestors` (nearest first), or a
/// [`Error::NoSnapshot`] that says what was searched and why each found
/// snapshot was skipped.
pub fn nearest(
    store: &dyn Store,
    ancestors: &[(String, usize)],
    want: &Want,
    searched: String,
) -> Result<Found, Error> {
    let mut skipped = Vec::new();
    for ((commit, distance), found) in ancestors.iter().zip(ask_all(store, ancestors, want)?) {
        for listed in found {
            match (listed.manifest, listed.unusable) {
                (Ok(manifest), None) => {
                    return Ok(Found {
                        commit: listed.commit,
                        distance: listed.distance,
                        key: listed.key,
                        manifest,
                    })
                }
                (_, why) => skipped.push(format!(
                    "{} (distance {}): {}",
                    &commit[..commit.len().min(12)],
                    distance,
                    why.unwrap_or_default()
                )),
            }
        }
    }
    Err(Error::NoSnapshot {
        store: store.location(),
        searched,
        skipped,
    })
}
