//! Round trips, digests and broken streams; hostile blobs in `hostile`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use super::*;
use crate::snapshot::manifest::Blob;

#[cfg(unix)]
mod hostile;

fn no_cancel() -> AtomicBool {
    AtomicBool::new(false)
}

fn any(_: &Path, _: bool) -> bool {
    true
}

/// Unpacks `reader` into `root`, expecting it to fail.
fn unpack_err(reader: impl Read, blob: &Blob, root: &Path) -> ArchiveError {
    unpack(
        reader,
        blob,
        root,
        &any,
        SystemTime::now(),
        &Room::unlimited(),
        &no_cancel(),
    )
    .unwrap_err()
}

/// The packed bytes of [`sample`]'s unit, and its blob record.
fn packed_sample(dir: &Path) -> (Vec<u8>, Blob) {
    let root = sample(dir);
    let out = dir.join("b.zst");
    let blob = pack(&root, &[PathBuf::from("unit")], &out).unwrap();
    (fs::read(&out).unwrap(), blob)
}

fn sample(dir: &Path) -> PathBuf {
    let root = dir.join("src");
    fs::create_dir_all(root.join("unit/out")).unwrap();
    fs::write(root.join("unit/a"), b"alpha").unwrap();
    fs::write(root.join("unit/out/b"), vec![7u8; 100_000]).unwrap();
    fs::hard_link(root.join("unit/a"), root.join("unit/a-link")).unwrap();
    root
}

#[test]
fn round_trip_is_deterministic_and_restores_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = sample(dir.path());
    let b1 = pack(&root, &[PathBuf::from("unit")], &dir.path().join("1.zst")).unwrap();
    let b2 = pack(&root, &[PathBuf::from("unit")], &dir.path().join("2.zst")).unwrap();
    assert_eq!(
        b1, b2,
        "packing the same files twice must give the same blob"
    );

    let dest = dir.path().join("dest");
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let f = File::open(dir.path().join("1.zst")).unwrap();
    unpack(f, &b1, &dest, &any, t, &Room::unlimited(), &no_cancel()).unwrap();
    assert_eq!(fs::read(dest.join("unit/a")).unwrap(), b"alpha");
    assert_eq!(fs::read(dest.join("unit/out/b")).unwrap().len(), 100_000);
    assert_eq!(
        fs::metadata(dest.join("unit/a"))
            .unwrap()
            .modified()
            .unwrap(),
        t
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let a = fs::metadata(dest.join("unit/a")).unwrap();
        let l = fs::metadata(dest.join("unit/a-link")).unwrap();
        assert_eq!(a.ino(), l.ino(), "hard links stay hard links");
    }
}

#[test]
fn flipped_byte_is_a_digest_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, blob) = packed_sample(dir.path());
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let err = unpack_err(&bytes[..], &blob, &dir.path().join("d"));
    assert!(matches!(err, ArchiveError::Digest { .. }), "{err}");
}

#[test]
fn a_stream_that_breaks_off_is_a_fetch_error_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, blob) = packed_sample(dir.path());
    // Half the blob, then an error, then (as a broken stream may) an end.
    let broken = (&bytes[..bytes.len() / 2]).chain(Failing(true));
    let err = unpack_err(broken, &blob, &dir.path().join("d"));
    assert!(matches!(err, ArchiveError::Fetch { .. }), "{err}");
    assert!(err.to_string().contains("connection reset"), "{err}");
}

/// Fails once, then reads as ended.
struct Failing(bool);

impl Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        if std::mem::take(&mut self.0) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ))
        } else {
            Ok(0)
        }
    }
}

/// Builds a blob by hand, bypassing `pack`'s checks.
fn hostile_blob(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> (Vec<u8>, Blob) {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let tar = b.into_inner().unwrap();
    let z = zstd::encode_all(&tar[..], 3).unwrap();
    let blob = Blob {
        sha256: crate::digest::sha256_hex(&z),
        size: z.len() as u64,
        unpacked: tar.len() as u64,
    };
    (z, blob)
}

fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    path: &[u8],
    link: &[u8],
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..path.len()].copy_from_slice(path);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data).unwrap();
}
