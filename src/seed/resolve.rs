//! Which snapshot: the nearest ancestor of `HEAD` (or the commit asked for)
//! that has a snapshot this toolchain, target and profile can reuse and,
//! when trusted keys are configured, that one of them signed.
//!
//! This is the border for manifests: a manifest is read here, capped in
//! size, and authenticated before a byte of it is parsed.

use crate::git::CommitId;
use crate::snapshot::manifest::Manifest;
use crate::snapshot::signing::{KeyId, Refusal, SignatureFileError, TrustedKeys, SIGNATURE_CAP};
use crate::snapshot::validate;
use crate::snapshot::want::{Mismatch, Want};
use crate::store::{self, snapshot_prefix, Store, StoreError};
use crate::Error;

use super::cancel::CANCEL;

/// A snapshot found in the store, usable or not.
#[derive(Debug)]
pub(crate) struct Listed {
    pub commit: CommitId,
    pub distance: usize,
    /// The manifest, or why it could not be read.
    pub manifest: Result<Manifest, Unusable>,
    /// Why it cannot be used here; `None` if it can.
    pub unusable: Option<Unusable>,
    /// The trusted key that signed it, when signatures are checked.
    pub signer: Option<KeyId>,
}

/// Why a snapshot in the store cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unusable {
    /// Built for another toolchain, target, profile, flags or C library.
    Mismatch { why: Mismatch },
    /// Too large, or not JSON of a manifest.
    Unreadable { error: String },
    /// Unsigned, or signed by no trusted key, while signatures are checked.
    Unauthentic { reason: String },
    /// It breaks a validation rule: the store may be hostile.
    Rejected { detail: String },
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Mismatch { why } => why.fmt(f),
            Unusable::Unreadable { error } => write!(f, "unreadable manifest ({error})"),
            Unusable::Unauthentic { reason } => write!(f, "not authentic: {reason}"),
            Unusable::Rejected { detail } => write!(f, "rejected manifest: {detail}"),
        }
    }
}

/// The snapshot chosen for restoring.
#[derive(Debug)]
pub(crate) struct Found {
    pub commit: CommitId,
    pub distance: usize,
    pub manifest: Manifest,
    /// The trusted key that signed it, when signatures are checked.
    pub signer: Option<KeyId>,
}

/// The most of a manifest that is read: real ones are well under a MiB, and
/// a store must not make a reader swallow gigabytes.
pub(crate) const MANIFEST_CAP: u64 = 32 << 20;

/// Reads the manifest at `key` and, when `trust` is given, checks its
/// signature; returns it with the key that signed it.
///
/// The steps keep this order: the raw bytes (capped), then the signature
/// over exactly those bytes, then parsing, then [`validate::manifest`] on
/// every field, so that nothing a trusted key did not sign reaches the JSON
/// parser, and nothing unvalidated reaches anything after it.
pub(crate) fn read_manifest(
    store: &dyn Store,
    key: &str,
    trust: Option<&TrustedKeys>,
) -> Result<(Manifest, Option<KeyId>), Error> {
    let raw = match store::read_capped(store, key, MANIFEST_CAP, &CANCEL) {
        Ok(raw) => raw,
        Err(StoreError::Interrupted { .. }) => return Err(Error::Interrupted),
        Err(e) => return Err(e.into()),
    };
    let signer = match trust {
        Some(trust) => Some(authenticate(store, key, &raw, trust)?),
        None => None,
    };
    let manifest = serde_json::from_slice(&raw).map_err(|source| Error::Manifest {
        store: store.location(),
        key: key.to_owned(),
        source,
    })?;
    let (commit, variant) =
        store::parse_manifest_key(key).ok_or_else(|| Error::InvalidManifest {
            store: store.location(),
            key: key.to_owned(),
            detail: "not a manifest key".into(),
        })?;
    validate::manifest(&manifest, commit, variant).map_err(|e| Error::InvalidManifest {
        store: store.location(),
        key: key.to_owned(),
        detail: e.to_string(),
    })?;
    Ok((manifest, signer))
}

/// Checks the signature beside the manifest at `key` over its `raw` bytes.
fn authenticate(
    store: &dyn Store,
    key: &str,
    raw: &[u8],
    trust: &TrustedKeys,
) -> Result<KeyId, Error> {
    let refused = |reason| Error::Unauthentic {
        store: store.location(),
        key: key.to_owned(),
        reason,
    };
    let Some((commit, variant)) = store::parse_manifest_key(key) else {
        return Err(refused(Refusal::Misplaced));
    };
    let signature =
        match store::read_capped(store, &store::signature_key(key), SIGNATURE_CAP, &CANCEL) {
            Ok(bytes) => Some(bytes),
            Err(StoreError::NotFound { .. }) => None,
            Err(StoreError::TooLarge { .. }) => {
                return Err(refused(Refusal::Malformed(SignatureFileError::TooLarge)))
            }
            Err(e) => return Err(e.into()),
        };
    trust
        .verify(commit, variant, raw, signature.as_deref())
        .map_err(refused)
}

/// Every snapshot of `commit` in the store, judged against `want` and, if
/// given, `trust`.
pub(crate) fn snapshots_at(
    store: &dyn Store,
    commit: &CommitId,
    distance: usize,
    want: &Want,
    trust: Option<&TrustedKeys>,
) -> Result<Vec<Listed>, Error> {
    let prefix = snapshot_prefix(commit.as_str());
    // A store that cannot list (plain HTTP) is asked for the one manifest
    // this toolchain, target and profile would use.
    let (keys, exact) = match store.list(&prefix)? {
        Some(listed) => (listed.into_iter().map(|l| l.key).collect(), false),
        None => {
            let variant = crate::snapshot::manifest::variant(
                &want.profile,
                &want.target,
                want.cross,
                &want.toolchain,
            );
            (vec![store::manifest_key(commit.as_str(), &variant)], true)
        }
    };
    let mut out = Vec::new();
    for key in keys {
        if !store::looks_like_manifest(&key) {
            continue;
        }
        let (manifest, unusable, signer) = match read_manifest(store, &key, trust) {
            Err(Error::Store(StoreError::NotFound { .. })) if exact => continue,
            Ok((m, signer)) => {
                let why = m
                    .incompatibility(want)
                    .map(|why| Unusable::Mismatch { why });
                (Ok(m), why, signer)
            }
            // A manifest that is there but unreadable (too large, or not a
            // regular file) or not authentic is skipped and named; a store
            // that cannot be read is an error of its own.
            Err(
                e @ (Error::Manifest { .. }
                | Error::Store(StoreError::TooLarge { .. } | StoreError::NotAFile { .. })),
            ) => {
                let why = Unusable::Unreadable {
                    error: e.to_string(),
                };
                (Err(why.clone()), Some(why), None)
            }
            Err(Error::Unauthentic { reason, .. }) => {
                let why = Unusable::Unauthentic {
                    reason: reason.to_string(),
                };
                (Err(why.clone()), Some(why), None)
            }
            // A manifest that breaks a rule is never used, whatever else it
            // says: the store may be hostile.
            Err(Error::InvalidManifest { detail, .. }) => {
                let why = Unusable::Rejected { detail };
                (Err(why.clone()), Some(why), None)
            }
            Err(e) => return Err(e),
        };
        out.push(Listed {
            commit: commit.clone(),
            distance,
            manifest,
            unusable,
            signer,
        });
    }
    Ok(out)
}

/// How many commits are asked about at once: a remote store answers each
/// in a round trip, so resolution among hundreds of ancestors overlaps them.
const CONCURRENT_LOOKUPS: usize = 16;

/// `ancestors` in batches that grow from 2 to [`CONCURRENT_LOOKUPS`]: a
/// snapshot a commit or two back is found with a request or two, a far one
/// still with overlapping round trips.
fn nearest_first_batches<T>(ancestors: &[T]) -> Vec<&[T]> {
    let mut batches = Vec::new();
    let (mut rest, mut size) = (ancestors, 2);
    while !rest.is_empty() {
        let (batch, tail) = rest.split_at(size.min(rest.len()));
        batches.push(batch);
        rest = tail;
        size = (size * 2).min(CONCURRENT_LOOKUPS);
    }
    batches
}

/// The snapshots of every ancestor, in the ancestors' order.
fn ask_all(
    store: &dyn Store,
    ancestors: &[(CommitId, usize)],
    want: &Want,
    trust: Option<&TrustedKeys>,
) -> Result<Vec<Vec<Listed>>, Error> {
    crate::pool::map(ancestors, CONCURRENT_LOOKUPS, |(commit, distance)| {
        snapshots_at(store, commit, *distance, want, trust)
    })
}

/// Every snapshot among `ancestors`, nearest first.
pub fn list(
    store: &dyn Store,
    ancestors: &[(CommitId, usize)],
    want: &Want,
    trust: Option<&TrustedKeys>,
) -> Result<Vec<Listed>, Error> {
    let mut out = Vec::new();
    for found in ask_all(store, ancestors, want, trust)? {
        out.extend(found);
    }
    Ok(out)
}

/// The nearest usable snapshot among `ancestors` (nearest first), or a
/// [`Error::NoSnapshot`] that says what was searched and why each found
/// snapshot was skipped.
pub fn nearest(
    store: &dyn Store,
    ancestors: &[(CommitId, usize)],
    want: &Want,
    trust: Option<&TrustedKeys>,
    searched: String,
) -> Result<Found, Error> {
    let mut skipped = Vec::new();
    for batch in nearest_first_batches(ancestors) {
        let found = ask_all(store, batch, want, trust)?;
        for ((commit, distance), found) in batch.iter().zip(found) {
            for listed in found {
                match (listed.manifest, listed.unusable) {
                    (Ok(manifest), None) => {
                        return Ok(Found {
                            commit: listed.commit,
                            distance: listed.distance,
                            manifest,
                            signer: listed.signer,
                        })
                    }
                    (_, why) => skipped.push(format!(
                        "{} (distance {}): {}",
                        commit.short(),
                        distance,
                        why.map(|w| w.to_string()).unwrap_or_default()
                    )),
                }
            }
        }
    }
    Err(Error::NoSnapshot {
        store: store.location(),
        searched,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_are_asked_in_growing_batches_nearest_first() {
        let ancestors: Vec<(String, usize)> = (0..40).map(|d| (format!("c{d}"), d)).collect();
        let sizes: Vec<usize> = nearest_first_batches(&ancestors)
            .iter()
            .map(|b| b.len())
            .collect();
        assert_eq!(sizes, [2, 4, 8, 16, 10]);
        assert_eq!(nearest_first_batches(&ancestors)[1][0].1, 2);
        assert!(nearest_first_batches::<(String, usize)>(&[]).is_empty());
    }
}
