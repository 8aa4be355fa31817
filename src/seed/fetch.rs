//! Getting one unit into the staging area: kept from a previous seed of
//! the same blob, or fetched (cache first, then the store), verified and
//! unpacked, then its paths rewritten for this machine. Nothing here writes
//! outside the staging directory it is given.

use std::fs::{self, File, FileTimes};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::cancel::CANCEL;
use super::relocate::{self, TextRewrite};
use crate::cargo::layout::Layout;
use crate::snapshot::archive::{self, ArchiveError, Room, UnpackTimes, Unpacked};
use crate::snapshot::manifest::Unit;
use crate::store::{blob_key, BlobCache, ReadBound, Store};
use crate::Error;

use super::swap::State;

/// Rewrites what a fetched unit says about the build machine's paths: its
/// fingerprint (when the plan changed it), rustc's `*.d` files and a build
/// script's `output`. Returns the unpacked files with their new sizes.
pub(super) fn relocate_unit(
    root: &Path,
    layout: Layout,
    unit: &Unit,
    mut unpacked: Unpacked,
    text: &TextRewrite,
    plan: &relocate::Plan,
    stamp: SystemTime,
) -> Result<Unpacked, Error> {
    if !text.moves().is_empty() {
        for (rel, size) in &mut unpacked.files {
            let is_text = rel.extension().is_some_and(|e| e == "d") || layout.is_script_output(rel);
            if !is_text || layout.is_fingerprint_file(rel) {
                continue;
            }
            *size = text.rewrite(&root.join(&*rel), stamp)?;
        }
    }
    refingerprint(root, layout, unit, unpacked, plan, stamp)
}

/// Writes the unit's fingerprint as the plan rewrote it, if it did. A
/// fingerprint may change with nothing moved (a build-script run judged by
/// its package's files takes this checkout's mtimes), and a unit kept from
/// a previous seed may have had another one then.
pub(super) fn refingerprint(
    root: &Path,
    layout: Layout,
    unit: &Unit,
    mut unpacked: Unpacked,
    plan: &relocate::Plan,
    stamp: SystemTime,
) -> Result<Unpacked, Error> {
    let Some(record) = plan.rewrites.get(&unit.id) else {
        return Ok(unpacked);
    };
    relocate::write_fingerprint(root, layout, &unit.id, record, stamp).map_err(Error::io(
        "rewrite the fingerprint in",
        &root.join(layout.fingerprint_dir(&unit.id)),
    ))?;
    for (rel, size) in &mut unpacked.files {
        if layout.is_fingerprint_file(rel) {
            *size = fs::metadata(root.join(&*rel))
                .map_err(Error::io("read", rel))?
                .len();
        }
    }
    Ok(unpacked)
}

/// Where a unit's blob was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Cache,
    Store,
    /// Copied from a donor checkout (`--from`).
    Checkout,
}

/// Whether unpacking failed because of the bytes read (or their reading),
/// so that another copy of the blob may succeed.
pub(super) fn is_damage(e: &ArchiveError) -> bool {
    matches!(
        e,
        ArchiveError::Digest { .. }
            | ArchiveError::Corrupt { .. }
            | ArchiveError::Fetch { .. }
            | ArchiveError::Oversized { .. }
    )
}

/// Fetches and unpacks one unit: from the local cache if it holds the blob,
/// else from the store (caching what verifies). A copy that fails the
/// digest check is never used: a damaged cached copy is deleted and the blob
/// fetched from the store; a blob that arrives damaged from the store is
/// fetched once more, from nothing, before the seed fails. Adds where the
/// time went to `times`, every attempt's.
pub(super) fn fetch_one(
    store: &dyn Store,
    cache: Option<&BlobCache>,
    unit: &Unit,
    (root, layout): (&Path, Layout),
    (stamp, room): (SystemTime, &Room),
    times: &mut UnpackTimes,
) -> Result<(Unpacked, Origin), Error> {
    let owns = |path: &Path, is_dir: bool| layout.owns(&unit.id, path, is_dir);
    let sha256 = &unit.blob.sha256;
    let mut unpack = |reader| {
        let limits = (stamp, room, &CANCEL);
        archive::unpack_timed(reader, &unit.blob, root, &owns, limits, times)
    };
    if let Some(cache) = cache {
        if let Some(local) = cache.get(sha256) {
            match unpack(local) {
                Ok(unpacked) => return Ok((unpacked, Origin::Cache)),
                Err(e) if is_damage(&e) => {
                    cache.remove(sha256);
                    remove_unit(root, layout, &unit.id);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut attempt = || -> Result<Unpacked, Error> {
        let bound = ReadBound {
            size: unit.blob.size,
            cancel: &CANCEL,
        };
        let reader = store.get(&blob_key(sha256), bound)?;
        let reader = match cache {
            Some(cache) => cache.tee(sha256, unit.blob.size, reader),
            None => reader,
        };
        Ok(unpack(reader)?)
    };
    let unpacked = match attempt() {
        Err(Error::Archive(e)) if is_damage(&e) => {
            remove_unit(root, layout, &unit.id);
            attempt()
        }
        other => other,
    }?;
    Ok((unpacked, Origin::Store))
}

/// Removes whatever a failed unpack of unit `id` left in `root`.
pub(super) fn remove_unit(root: &Path, layout: Layout, id: &str) {
    for rel in layout.entries_of(root, id) {
        let path = root.join(rel);
        let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
    }
}

/// Copies a unit from the existing profile dir when a previous seed put the
/// same blob there and every file is still as it was unpacked (same size, the
/// seed's own stamp: cargo rewrites a file it rebuilds).
pub(super) fn keep_from(
    old: &State,
    unit: &Unit,
    dest: &Path,
    staging: &Path,
    stamp: SystemTime,
) -> Option<Unpacked> {
    let prev = old.units.get(&unit.id)?;
    if prev.blob != unit.blob.sha256 || prev.unpacked.symlinks {
        return None;
    }
    let old_stamp =
        SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(old.stamp_nanos).ok()?);
    for (rel, size) in &prev.unpacked.files {
        let meta = fs::symlink_metadata(dest.join(rel)).ok()?;
        if !meta.is_file() || meta.len() != *size || meta.modified().ok()? != old_stamp {
            return None;
        }
    }
    let times = FileTimes::new().set_modified(stamp).set_accessed(stamp);
    let copy = |rel: &PathBuf| -> std::io::Result<()> {
        let to = staging.join(rel);
        fs::create_dir_all(to.parent().unwrap_or(staging))?;
        fs::copy(dest.join(rel), &to)?;
        File::options().write(true).open(&to)?.set_times(times)
    };
    for (i, (rel, _)) in prev.unpacked.files.iter().enumerate() {
        if copy(rel).is_err() {
            // Undo, so that fetching the blob instead starts from nothing
            // (and reports the real problem if it recurs, e.g. a full disk).
            for (done, _) in &prev.unpacked.files[..=i] {
                let _ = fs::remove_file(staging.join(done));
            }
            return None;
        }
    }
    Some(prev.unpacked.clone())
}
