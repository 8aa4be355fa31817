//! The cache on temporary directories: verification, eviction, failures.

use std::time::Duration;

use super::*;
use std::fs::{File, FileTimes};

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Passes `bytes` through the cache's tee, reading to the end.
fn insert(cache: &BlobCache, bytes: &[u8]) -> String {
    let name = sha(bytes);
    let mut out = Vec::new();
    cache
        .tee(
            &name,
            bytes.len() as u64,
            Box::new(io::Cursor::new(bytes.to_vec())),
        )
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, bytes, "the tee passes every byte on");
    name
}

fn cached(cache: &BlobCache, name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    cache.get(name)?.read_to_end(&mut out).unwrap();
    Some(out)
}

fn set_used(cache: &BlobCache, name: &str, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    File::options()
        .write(true)
        .open(cache.path(name).unwrap())
        .unwrap()
        .set_times(FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

fn tmp_files(cache: &BlobCache) -> usize {
    fs::read_dir(cache.dir.join("tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_verified_blob_is_cached_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(dir.path().join("c"), 1 << 20).unwrap();
    let name = insert(&cache, b"a blob's bytes");
    assert_eq!(cached(&cache, &name).unwrap(), b"a blob's bytes");
    assert_eq!(tmp_files(&cache), 0);
    assert!(cache.take_trouble().is_none());
    cache.remove(&name);
    assert!(cache.get(&name).is_none());
}

#[test]
fn bytes_that_are_not_the_blob_never_reach_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(dir.path().join("c"), 1 << 20).unwrap();
    let name = sha(b"the real blob");
    let read = |bytes: &'static [u8], size: u64, to_end: bool| {
        let mut tee = cache.tee(&name, size, Box::new(bytes));
        let mut buf = [0u8; 4];
        if to_end {
            io::copy(&mut tee, &mut io::sink()).unwrap();
        } else {
            tee.read_exact(&mut buf).unwrap();
        }
    };
    // Damaged, longer than declared, and cut short before its end.
    read(b"the real bloB", 13, true);
    read(b"the real blob and more", 13, true);
    read(b"the real blob", 13, false);
    assert!(cache.get(&name).is_none());
    assert_eq!(tmp_files(&cache), 0, "temporary copies are deleted");
}

#[test]
fn the_least_recently_used_blobs_are_evicted_first() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(dir.path().join("c"), 100).unwrap();
    let a = insert(&cache, &[b'a'; 40]);
    let b = insert(&cache, &[b'b'; 40]);
    // `a` is older than `b`, but is read again now: `b` is the least
    // recently used when a third blob takes the cache over 100 bytes.
    set_used(&cache, &a, 1_000);
    set_used(&cache, &b, 2_000);
    assert!(cached(&cache, &a).is_some());
    let c = insert(&cache, &[b'c'; 40]);
    assert!(cache.get(&b).is_none(), "b was evicted");
    assert!(cached(&cache, &a).is_some() && cached(&cache, &c).is_some());

    // Without the read, the oldest goes.
    set_used(&cache, &a, 3_000);
    set_used(&cache, &c, 4_000);
    let d = insert(&cache, &[b'd'; 40]);
    assert!(cache.get(&a).is_none(), "a was evicted");
    assert!(cached(&cache, &c).is_some() && cached(&cache, &d).is_some());
}

#[test]
fn a_blob_larger_than_the_bound_is_passed_through_uncached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(dir.path().join("c"), 10).unwrap();
    let name = insert(&cache, &[7u8; 11]);
    assert!(cache.get(&name).is_none());
    assert!(!cache.dir.exists());
}

#[test]
fn an_unwritable_cache_degrades_to_no_cache() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be: nothing can be created in it.
    let blocked = dir.path().join("c");
    fs::write(&blocked, "").unwrap();
    let cache = BlobCache::new(blocked, 1 << 20).unwrap();
    let name = insert(&cache, b"still read");
    assert!(cache.get(&name).is_none());
    let trouble = cache.take_trouble().expect("the failure is kept for -v");
    assert!(trouble.to_string().contains("temporary file"), "{trouble}");
}

#[test]
fn a_zero_bound_disables_the_cache() {
    assert!(BlobCache::new(PathBuf::from("/nonexistent"), 0).is_none());
}

#[test]
fn names_that_are_not_digests_are_not_paths() {
    let cache = BlobCache::new(PathBuf::from("/c"), 1).unwrap();
    assert!(cache.path(&format!("../{}", "a".repeat(61))).is_none());
    assert!(cache.path(&"A".repeat(64)).is_none());
    assert!(cache.path(&"a".repeat(64)).is_some());
}

#[test]
fn sizes_read_as_people_write_them() {
    for (text, bytes) in [
        ("0", Some(0)),
        ("4096", Some(4096)),
        ("500M", Some(500 << 20)),
        ("10G", Some(10 << 30)),
        ("10 GiB", Some(10 << 30)),
        ("2gb", Some(2 << 30)),
        ("1.5K", Some(1536)),
        ("1T", Some(1 << 40)),
        ("", None),
        ("G", None),
        ("-1G", None),
        ("10 apples", None),
        ("99999999999T", None),
    ] {
        assert_eq!(parse_size(text), bytes, "{text:?}");
    }
}

#[cfg(unix)]
#[test]
fn an_entry_that_is_not_a_regular_file_is_a_miss_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::new(dir.path().join("c"), 1 << 20).unwrap();
    let bytes = b"a blob's bytes";
    let name = sha(bytes);
    let path = cache.path(&name).unwrap();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    assert!(cache.get(&name).is_none(), "a symlink is never read");
    let trouble = cache.take_trouble().expect("the refusal is noted");
    assert!(
        trouble.source.to_string().contains("a symbolic link"),
        "{trouble:?}"
    );
    assert!(fs::symlink_metadata(&path).is_err(), "the link is deleted");
    insert(&cache, bytes);
    assert_eq!(cached(&cache, &name).unwrap(), bytes);
}
