//! Unpacking hostile blobs into `root`, with `outside` beside it: each
//! entry is refused by name and reason, and the file system shows that
//! nothing reached what it aimed at. Links are never followed when
//! looking, so a link left behind shows as a link.

use super::*;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use tar::EntryType::*;

/// A temporary directory holding the (empty) unpack root and,
/// beside it, `outside` with one file, `secret`: a hard link made to
/// it shows in its link count.
struct Site {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    Site {
        _dir: dir,
        root,
        outside,
    }
}

/// Everything below `dir` (links not followed), each path with what
/// it is: a directory, a symlink and its target, or a file with its
/// link count and bytes.
fn listing(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("symlink to {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if meta.is_file() {
                let bytes = fs::read(&path).unwrap();
                format!(
                    "file, {} link(s): {:?}",
                    meta.nlink(),
                    String::from_utf8_lossy(&bytes)
                )
            } else {
                format!("{:?}", meta.file_type())
            };
            out.push((path.strip_prefix(dir).unwrap().to_owned(), what));
        }
    }
    out.sort();
    out
}

fn entries(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    list.iter()
        .map(|(p, w)| (PathBuf::from(p), w.to_string()))
        .collect()
}

/// Unpacks the blob `build` writes (told the site, so it can aim at
/// `outside`), asserts that `outside` is exactly as it was, and
/// returns the site and the outcome (each test then checks the root,
/// then the error).
fn refused(
    build: impl FnOnce(&mut tar::Builder<Vec<u8>>, &Site),
) -> (Site, Result<Unpacked, ArchiveError>) {
    refused_in(site(), build)
}

/// As [`refused`], in a site the test prepared.
fn refused_in(
    s: Site,
    build: impl FnOnce(&mut tar::Builder<Vec<u8>>, &Site),
) -> (Site, Result<Unpacked, ArchiveError>) {
    let before = listing(&s.outside);
    let (z, blob) = hostile_blob(|b| build(b, &s));
    let result = unpack(
        &z[..],
        &blob,
        &s.root,
        &any,
        SystemTime::now(),
        &Room::unlimited(),
        &no_cancel(),
    );
    // The file system first: it shows what an accepted entry did.
    assert_eq!(listing(&s.outside), before, "`outside` changed: {result:?}");
    (s, result)
}

fn assert_hostile(result: &Result<Unpacked, ArchiveError>, entry: &str, why: &str) {
    match result {
        Err(ArchiveError::Hostile {
            entry: e, why: w, ..
        }) => {
            assert_eq!((e.as_str(), *w), (entry, why))
        }
        other => panic!("expected entry `{entry}` refused ({why}), got: {other:?}"),
    }
}

/// A path as a tar header's field holds it (at most 100 bytes).
fn bytes(p: &Path) -> &[u8] {
    let b = p.as_os_str().as_bytes();
    assert!(
        b.len() < 100,
        "{} is too long for a tar header",
        p.display()
    );
    b
}

#[test]
fn a_path_climbing_out_with_dotdot_writes_nothing_there() {
    let (s, result) = refused(|b, _| raw_entry(b, Regular, b"../outside/escape", b"", b"x"));
    assert_eq!(listing(&s.root), []);
    assert_hostile(&result, "../outside/escape", "not a plain relative path");
}

#[test]
fn an_absolute_path_writes_nothing_there() {
    let mut aimed = PathBuf::new();
    let (s, result) = refused(|b, s| {
        aimed = s.outside.join("escape");
        raw_entry(b, Regular, bytes(&aimed), b"", b"x");
    });
    assert_eq!(listing(&s.root), []);
    assert_hostile(
        &result,
        &aimed.display().to_string(),
        "not a plain relative path",
    );
}

/// The link is refused itself, so no file is ever written through it
/// (and the refusal of paths through links is not what saves us).
#[test]
fn a_symlink_out_of_the_root_is_refused_and_nothing_is_written_through_it() {
    for absolute in [false, true] {
        let (s, result) = refused(|b, s| {
            let target = if absolute {
                s.outside.clone()
            } else {
                PathBuf::from("../outside")
            };
            raw_entry(b, Symlink, b"link", bytes(&target), b"");
            raw_entry(b, Regular, b"link/planted", b"", b"x");
        });
        assert_eq!(listing(&s.root), [], "absolute: {absolute}");
        assert_hostile(&result, "link", "a symlink that may leave the target dir");
    }
}

/// A downward link is allowed, but nothing is created through it:
/// another unit's directory must not receive this blob's files.
#[test]
fn nothing_is_created_through_a_symlink_within_the_root() {
    for (entry, kind) in [("way/planted", Regular), ("way/sub", Directory)] {
        let (s, result) = refused(|b, _| {
            raw_entry(b, Directory, b"other", b"", b"");
            raw_entry(b, Symlink, b"way", b"other", b"");
            raw_entry(b, kind, entry.as_bytes(), b"", b"");
        });
        assert_eq!(
            listing(&s.root),
            entries(&[("other", "dir"), ("way", "symlink to other")])
        );
        assert_hostile(&result, entry, "a path through a symlink");
    }
}

/// A file entry at a path where this blob made a link: opening it
/// would write where the link points.
#[test]
fn a_file_is_not_written_over_a_symlink() {
    let (s, result) = refused(|b, _| {
        raw_entry(b, Directory, b"other", b"", b"");
        raw_entry(b, Symlink, b"way", b"other/f", b"");
        raw_entry(b, Regular, b"way", b"", b"x");
    });
    assert_eq!(
        listing(&s.root),
        entries(&[("other", "dir"), ("way", "symlink to other/f")])
    );
    assert_hostile(&result, "way", "a second entry for the same path");
}

#[test]
fn a_hard_link_to_a_file_outside_the_blob_is_refused() {
    for absolute in [false, true] {
        let (s, result) = refused(|b, s| {
            let target = if absolute {
                s.outside.join("secret")
            } else {
                PathBuf::from("../outside/secret")
            };
            raw_entry(b, Link, b"link", bytes(&target), b"");
        });
        assert_eq!(listing(&s.root), [], "absolute: {absolute}");
        assert_hostile(&result, "link", "a hard link to a file outside this blob");
    }
    // Units share the staging root: a file another unit unpacked is
    // not this blob's either.
    let s = site();
    fs::write(s.root.join("theirs"), b"theirs").unwrap();
    let (s, result) = refused_in(s, |b, _| raw_entry(b, Link, b"link", b"theirs", b""));
    assert_eq!(
        listing(&s.root),
        entries(&[("theirs", "file, 1 link(s): \"theirs\"")])
    );
    assert_hostile(&result, "link", "a hard link to a file outside this blob");
}

#[test]
fn devices_and_fifos_are_refused() {
    for (name, kind) in [("char", Char), ("block", Block), ("fifo", Fifo)] {
        let (s, result) = refused(|b, _| raw_entry(b, kind, name.as_bytes(), b"", b""));
        assert_eq!(listing(&s.root), []);
        assert_hostile(&result, name, "not a file, directory or link");
    }
}

/// A decompression bomb: the digest is right, the manifest declares
/// 64 KiB, the tar holds 1 MiB. Unpacking stops, and no more than the
/// declared size was ever written.
#[test]
fn more_data_than_declared_is_refused_and_not_written() {
    let s = site();
    let (z, mut blob) = hostile_blob(|b| raw_entry(b, Regular, b"big", b"", &[1u8; 1 << 20]));
    blob.unpacked = 64 << 10;
    let result = unpack(
        &z[..],
        &blob,
        &s.root,
        &any,
        SystemTime::now(),
        &Room::unlimited(),
        &no_cancel(),
    );
    let written: u64 = fs::read_dir(&s.root)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(written <= blob.unpacked, "{written} bytes written");
    let err = result.expect_err("the blob was unpacked");
    assert!(matches!(err, ArchiveError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("more bytes than"), "{err}");
}

/// Appends a regular file through the builder, which writes a GNU long
/// name header for a path longer than a header holds.
fn long_entry(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, path, data).unwrap();
}

/// Directories below `dir`, links not followed.
fn dirs_below(dir: &Path) -> usize {
    listing(dir)
        .iter()
        .filter(|(_, what)| what == "dir")
        .count()
}

#[test]
fn a_path_deeper_than_cargo_makes_is_refused() {
    let deep = format!("{}f", "d/".repeat(unpack::MAX_DEPTH));
    let (s, result) = refused(|b, _| {
        // Declared bytes enough for every directory on the way.
        long_entry(b, "pad", &[0u8; 128 << 10]);
        long_entry(b, &deep, b"x");
    });
    assert_eq!(dirs_below(&s.root), 0);
    assert_hostile(&result, &deep, "a path deeper than cargo makes");
}

#[test]
fn unpacking_stops_where_the_file_system_room_runs_out() {
    let blob = |b: &mut tar::Builder<Vec<u8>>| {
        for i in 0..20 {
            long_entry(b, &format!("dir/f{i}"), b"x");
        }
        long_entry(b, "big", &[7u8; 64 << 10]);
    };
    for (room, what) in [
        (Room::new(1 << 30, 10), "inodes"),
        (Room::new(20 * 4096 + 4096, 1000), "space"),
    ] {
        let s = site();
        let (z, declared) = hostile_blob(blob);
        let result = unpack(
            &z[..],
            &declared,
            &s.root,
            &any,
            SystemTime::now(),
            &room,
            &no_cancel(),
        );
        match result {
            Err(ArchiveError::NoRoom { what: w, .. }) => assert_eq!(w, what),
            other => panic!("expected no room for {what}, got {other:?}"),
        }
        let made = listing(&s.root).len();
        assert!(made <= 21, "{made} entries made");
        assert!(!s.root.join("big").exists());
    }
}
