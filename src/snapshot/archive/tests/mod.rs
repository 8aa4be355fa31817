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

/// Zeros without end, counting what was read; once `cancel_at` bytes were
/// read it sets `cancel`, and past `give_up` bytes it fails, so that a test
/// whose protection is gone fails instead of hanging.
struct Endless<'a> {
    read: u64,
    cancel_at: Option<(u64, &'a AtomicBool)>,
    give_up: u64,
}

impl Read for Endless<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read >= self.give_up {
            return Err(io::Error::other("the test's reader gave up"));
        }
        if let Some((at, flag)) = self.cancel_at {
            if self.read >= at {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        buf.fill(0);
        self.read += buf.len() as u64;
        Ok(buf.len())
    }
}

#[test]
fn an_endless_stream_is_read_one_byte_past_the_declared_size() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, blob) = packed_sample(dir.path());
    for (case, prefix) in [("zeros", &[][..]), ("the blob, then zeros", &bytes[..])] {
        let mut endless = Endless {
            read: 0,
            cancel_at: None,
            give_up: 64 << 20,
        };
        let err = unpack_err(prefix.chain(&mut endless), &blob, &dir.path().join(case));
        assert!(
            matches!(err, ArchiveError::Oversized { .. }),
            "{case}: {err}"
        );
        let read = prefix.len() as u64 + endless.read;
        assert!(read <= blob.size + 1, "{case}: read {read} bytes");
    }
}

#[test]
fn a_read_that_yields_no_entry_stops_once_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut blob) = packed_sample(dir.path());
    blob.size = u64::MAX / 2;
    let cancel = no_cancel();
    let mut endless = Endless {
        read: 0,
        cancel_at: Some((1 << 20, &cancel)),
        give_up: 64 << 20,
    };
    let err = unpack(
        &mut endless,
        &blob,
        &dir.path().join("d"),
        &any,
        SystemTime::now(),
        &Room::unlimited(),
        &cancel,
    )
    .unwrap_err();
    assert!(matches!(err, ArchiveError::Cancelled), "{err}");
    assert!(endless.read < 2 << 20, "read {} bytes", endless.read);
}

#[test]
fn a_stream_past_its_deadline_is_too_slow_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, blob) = packed_sample(dir.path());
    let slow = (&bytes[..10]).chain(TimesOut);
    let err = unpack_err(slow, &blob, &dir.path().join("d"));
    assert!(matches!(err, ArchiveError::TooSlow { .. }), "{err}");
}

/// A store's reader past its deadline.
struct TimesOut;

impl Read for TimesOut {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::new(io::ErrorKind::TimedOut, "too slow"))
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
