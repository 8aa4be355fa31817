//! Getting blobs into the store: each unit packed and uploaded under its
//! content digest, or refreshed if the store holds it already, and the
//! check after the manifest is written that puts back any blob a
//! concurrent gc removed.

use std::path::Path;

use crate::pool;
use crate::report::{Event, Reporter};
use crate::snapshot::archive;
use crate::snapshot::manifest::Unit;
use crate::store::{blob_key, Store};
use crate::Error;

use super::plan::{Job, UnitDirs};

pub(super) fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(Error::io("write", path))
}

/// Puts back any blob of the snapshot that vanished after it was found in
/// the store: a `gc` running at the same moment may delete a blob that was
/// old and unreferenced when this publish saw it exist. Packing is
/// deterministic, so the same files give the same blob again.
pub(super) fn repair(
    store: &dyn Store,
    dirs: &UnitDirs,
    scratch: &Path,
    jobs: &[Job],
    units: &[Unit],
) -> Result<(), Error> {
    let present = pool::map(units, 16, |u| store.exists(&blob_key(&u.blob.sha256)))?;
    for ((job, unit), present) in jobs.iter().zip(units).zip(present) {
        if present {
            continue;
        }
        let (again, _) = pack_one(store, dirs, scratch, job)?;
        if again.blob.sha256 != unit.blob.sha256 {
            return Err(Error::Io {
                op: "re-upload a blob removed during publishing (its files changed meanwhile) for",
                path: dirs.of(unit.host).join(&unit.id),
                source: std::io::Error::other("publish again"),
            });
        }
    }
    Ok(())
}

/// Packs every job on all cores and uploads the blobs the store lacks.
/// Returns the units (with their blobs), the number of new blobs and bytes.
pub(super) fn pack_and_store(
    store: &dyn Store,
    dirs: &UnitDirs,
    scratch: &Path,
    jobs: &[Job],
    reporter: &Reporter,
) -> Result<(Vec<Unit>, usize, u64), Error> {
    let packed = pool::map(jobs, pool::threads(), |job| {
        pack_one(store, dirs, scratch, job)
    })?;
    let mut units = Vec::new();
    let (mut new_blobs, mut new_bytes) = (0, 0);
    for (unit, uploaded) in packed {
        if uploaded {
            new_blobs += 1;
            new_bytes += unit.blob.size;
            reporter.emit(Event::Stored {
                id: unit.id.clone(),
                name: unit.name.clone(),
                bytes: unit.blob.size,
            });
        }
        units.push(unit);
    }
    Ok((units, new_blobs, new_bytes))
}

pub(super) fn pack_one(
    store: &dyn Store,
    dirs: &UnitDirs,
    scratch: &Path,
    job: &Job,
) -> Result<(Unit, bool), Error> {
    // Unit ids are unique file names already.
    let tmp = scratch.join(format!("{}.zst", job.unit.id.replace('/', "_")));
    let blob = archive::pack(dirs.of(job.unit.host), &job.members, &tmp)?;
    let key = blob_key(&blob.sha256);
    // An existing blob is made fresh again, so that a concurrent gc's grace
    // period covers it. If that fails (it is not there, a gc removed it
    // meanwhile, the store cannot refresh an object this large, or, over
    // HTTP, the server wrote it too long ago), it is uploaded.
    let uploaded = if store.touch(&key).is_ok() {
        false
    } else {
        store.put_file(&key, &tmp)?;
        true
    };
    let _ = std::fs::remove_file(&tmp);
    let mut unit = job.unit.clone();
    unit.blob = blob;
    Ok((unit, uploaded))
}
