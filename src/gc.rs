//! `cargo seed gc`: retention for a store. Removes snapshots older than the
//! retention (keeping the newest few regardless), then the blobs no remaining
//! snapshot references.
//!
//! It must never remove a blob a publish running at the same moment is about
//! to reference. Publishing uploads blobs before its manifest and refreshes
//! (touches) blobs it finds already there, so a blob younger than the grace
//! period is never removed; the set of referenced blobs is read after the
//! snapshots are removed, so a manifest written meanwhile is seen; a blob's
//! age is read again just before it is removed; and a publish checks its
//! blobs once more after writing its manifest, putting back any that a gc
//! took anyway.
//!
//! A snapshot's signature (`<variant>.json.sig`) goes with its manifest,
//! removed right after it (the manifest is what makes a snapshot exist). A
//! signature left without a manifest is removed only past the grace period:
//! a publish writes the signature just before the manifest.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use crate::report::{Event, Reporter};
use crate::seed::resolve::read_manifest;
use crate::snapshot::manifest::Manifest;
use crate::store::{self, signature_key, Listing, Store, StoreError};
use crate::Error;

pub(crate) struct GcOptions {
    pub keep_days: u64,
    pub keep_last: usize,
    pub grace: Duration,
    pub dry_run: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct GcReport {
    pub snapshots_kept: usize,
    pub snapshots_removed: usize,
    pub blobs_removed: usize,
    pub bytes_removed: u64,
    /// Unreferenced blobs left because they are younger than the grace period.
    pub blobs_in_grace: usize,
}

fn listing(store: &dyn Store, prefix: &str) -> Result<Vec<Listing>, Error> {
    store.list(prefix)?.ok_or_else(|| {
        Error::Store(StoreError::Http {
            store: store.location(),
            op: "list",
            key: prefix.to_owned(),
            detail: "this kind of store cannot list; run gc where its files are \
                     (a directory or object storage)"
                .into(),
        })
    })
}

/// Every readable manifest, and whether some could not be read.
fn manifests(store: &dyn Store) -> Result<(Vec<(String, Manifest)>, bool), Error> {
    let mut out = Vec::new();
    let mut unreadable = false;
    for l in listing(store, store::all_snapshots_prefix())? {
        if !store::looks_like_manifest(&l.key) {
            continue;
        }
        // gc only needs to know which blobs are referenced: it checks no
        // signatures, and removes a snapshot's signature with it.
        match read_manifest(store, &l.key, None) {
            Ok((m, _)) => out.push((l.key, m)),
            // Removed by someone else meanwhile: nothing to keep or remove.
            Err(Error::Store(StoreError::NotFound { .. })) => {}
            Err(Error::Manifest { .. } | Error::Store(StoreError::TooLarge { .. })) => {
                unreadable = true
            }
            Err(e) => return Err(e),
        }
    }
    Ok((out, unreadable))
}

/// Removes signatures whose manifest is gone and that are not `young`.
fn remove_orphaned_signatures(
    store: &dyn Store,
    young: &dyn Fn(SystemTime) -> bool,
) -> Result<(), Error> {
    let listed = listing(store, store::all_snapshots_prefix())?;
    let manifests: HashSet<&str> = listed.iter().map(|l| l.key.as_str()).collect();
    for l in &listed {
        let Some(manifest) = store::signed_manifest_key(&l.key) else {
            continue;
        };
        if !manifests.contains(manifest) && !young(l.modified) {
            store.delete(&l.key)?;
        }
    }
    Ok(())
}

pub fn gc(store: &dyn Store, opts: &GcOptions, reporter: &Reporter) -> Result<GcReport, Error> {
    let now = SystemTime::now();
    let now_secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let horizon = now_secs.saturating_sub(opts.keep_days.saturating_mul(86_400));
    let mut report = GcReport::default();
    let young = |t: SystemTime| now.duration_since(t).unwrap_or_default() < opts.grace;

    let (mut found, _) = manifests(store)?;
    found.sort_by_key(|(_, m)| std::cmp::Reverse(m.created));
    for (i, (key, m)) in found.iter().enumerate() {
        if i < opts.keep_last || m.created >= horizon {
            report.snapshots_kept += 1;
            continue;
        }
        report.snapshots_removed += 1;
        reporter.emit(Event::SnapshotRemoved {
            key: key.clone(),
            created: m.created,
            dry_run: opts.dry_run,
        });
        if !opts.dry_run {
            store.delete(key)?;
            store.delete(&signature_key(key))?;
        }
    }
    if !opts.dry_run {
        remove_orphaned_signatures(store, &young)?;
    }

    // Read again: a manifest published since the first read must count.
    let (remaining, unreadable) = manifests(store)?;
    if unreadable {
        reporter.emit(Event::Warning {
            message:
                "some manifests are unreadable, so no blob is removed (their blobs are unknown)"
                    .into(),
        });
        return Ok(report);
    }
    let removed_keys: HashSet<&str> = if opts.dry_run {
        found
            .iter()
            .skip(opts.keep_last)
            .filter(|(_, m)| m.created < horizon)
            .map(|(k, _)| k.as_str())
            .collect()
    } else {
        HashSet::new()
    };
    let referenced: HashSet<String> = remaining
        .iter()
        .filter(|(k, _)| !removed_keys.contains(k.as_str()))
        .flat_map(|(_, m)| m.units.iter().map(|u| u.blob.sha256.clone()))
        .collect();
    for blob in listing(store, store::all_blobs_prefix())? {
        let sha = store::blob_sha256(&blob.key);
        if referenced.contains(sha) {
            continue;
        }
        if young(blob.modified) {
            report.blobs_in_grace += 1;
            continue;
        }
        if !opts.dry_run {
            // A publish may have just touched it.
            match store.modified(&blob.key)? {
                Some(t) if young(t) => {
                    report.blobs_in_grace += 1;
                    continue;
                }
                None if store.exists(&blob.key)? => {}
                None => continue,
                Some(_) => {}
            }
            store.delete(&blob.key)?;
        }
        report.blobs_removed += 1;
        report.bytes_removed += blob.size;
    }
    reporter.emit(Event::Gc {
        store: store.location(),
        dry_run: opts.dry_run,
        snapshots_removed: report.snapshots_removed,
        snapshots_kept: report.snapshots_kept,
        blobs_removed: report.blobs_removed,
        bytes_removed: report.bytes_removed,
        blobs_in_grace: report.blobs_in_grace,
    });
    Ok(report)
}
