//! Making rustc load a snapshot's incremental state at another workspace
//! path (NOTES facts 9–12).
//!
//! rustc keys a crate's incremental session on a hash of its tracked
//! options, and the working directory is one of them, so a session made in
//! CI's checkout is ignored in any other. The hash is not computed here: the
//! unit's exact command line (recorded in CI by the `RUSTC_WRAPPER` mode) is
//! replayed with the local rustc, in the local working directory, on a stub
//! source file, and rustc writes a session whose header carries the hash it
//! will expect. Those 8 bytes are copied into the snapshot's sessions.
//!
//! A header whose layout or rustc version is not exactly the local one is
//! left untouched: a wrong hash only makes rustc ignore the state, but a
//! damaged file must never reach it.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::wrapper::Invocation;

const MAGIC: &[u8; 4] = b"RSIC";

/// The part of `dep-graph.bin` before the options hash, and the hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Magic, format version and rustc version: must match exactly.
    pub prefix: Vec<u8>,
    pub options_hash: [u8; 8],
}

/// Reads the header of a `dep-graph.bin`: `RSIC`, a u16 format version, a
/// length byte and the rustc version string, then the 8-byte options hash.
pub fn read_header(path: &Path) -> io::Result<Option<Header>> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 7];
    if f.read_exact(&mut head).is_err() || &head[..4] != MAGIC {
        return Ok(None);
    }
    let mut rest = vec![0u8; head[6] as usize + 8];
    if f.read_exact(&mut rest).is_err() {
        return Ok(None);
    }
    let split = rest.len() - 8;
    let mut prefix = head.to_vec();
    prefix.extend_from_slice(&rest[..split]);
    let options_hash = rest[split..].try_into().expect("8 bytes");
    Ok(Some(Header {
        prefix,
        options_hash,
    }))
}

/// Writes `expected`'s hash into `path` if its header prefix is exactly
/// `expected`'s; returns whether it did.
pub fn patch(path: &Path, expected: &Header) -> io::Result<bool> {
    match read_header(path)? {
        Some(h) if h.prefix == expected.prefix => {
            if h.options_hash != expected.options_hash {
                let mut f = File::options().write(true).open(path)?;
                f.seek(SeekFrom::Start(expected.prefix.len() as u64))?;
                f.write_all(&expected.options_hash)?;
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Finalized sessions' `dep-graph.bin` files in one crate's incremental dir.
pub fn sessions(crate_dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(crate_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("s-") && !name.ends_with("-working") && e.path().is_dir()
        })
        .map(|e| e.path().join("dep-graph.bin"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Replays `inv` in `cwd` with rustc on a stub source file, in `scratch`,
/// and returns the name of the incremental directory rustc used for the
/// crate and the header it wrote.
///
/// Only what does not enter the options hash is changed (NOTES fact 12): the
/// input file, `--out-dir`, `-C incremental`, `-L` and `--extern`.
pub fn expected_header(
    rustc: &Path,
    inv: &Invocation,
    src_path: &Path,
    cwd: &Path,
    scratch: &Path,
) -> Result<(String, Header), String> {
    let (out, inc) = (scratch.join("out"), scratch.join("inc"));
    let stub = scratch.join("stub.rs");
    fs::create_dir_all(&out)
        .and_then(|()| fs::create_dir_all(&inc))
        .and_then(|()| fs::write(&stub, "#![allow(dead_code)]\nfn main() {}\n"))
        .map_err(|e| format!("cannot prepare {}: {e}", scratch.display()))?;
    let args = replay_args(inv, src_path, &stub, &out, &inc)?;
    let result = Command::new(rustc)
        .args(&args)
        .current_dir(cwd)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", rustc.display()))?;
    if !result.status.success() {
        let err = String::from_utf8_lossy(&result.stderr);
        let first = err
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or("")
            .trim();
        return Err(format!("replaying its rustc command failed: {first}"));
    }
    let dirs: Vec<PathBuf> = fs::read_dir(&inc)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let [dir] = dirs.as_slice() else {
        return Err("the replay left no single incremental directory".into());
    };
    let header = sessions(dir)
        .first()
        .and_then(|s| read_header(s).ok().flatten())
        .ok_or("the replay wrote no session header")?;
    let name = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    Ok((name, header))
}

fn replay_args(
    inv: &Invocation,
    src_path: &Path,
    stub: &Path,
    out: &Path,
    inc: &Path,
) -> Result<Vec<String>, String> {
    let mut args = Vec::with_capacity(inv.args.len());
    let mut it = inv.args.iter();
    let mut replaced_src = false;
    let show = |p: &Path| p.to_string_lossy().into_owned();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out-dir" => {
                it.next();
                args.extend(["--out-dir".to_owned(), show(out)]);
            }
            "-L" | "--extern" => {
                it.next();
            }
            "-C" => {
                let value = it.next().ok_or("a dangling -C")?;
                if value.starts_with("incremental=") {
                    args.extend(["-C".to_owned(), format!("incremental={}", show(inc))]);
                } else {
                    args.extend(["-C".to_owned(), value.clone()]);
                }
            }
            _ if a.starts_with("-Cincremental=") => {
                args.push(format!("-Cincremental={}", show(inc)))
            }
            _ if a.starts_with("-L") || a.starts_with("--extern=") => {}
            _ if a.starts_with('@') => return Err("its command line uses an argument file".into()),
            _ if !replaced_src
                && !a.starts_with('-')
                && (Path::new(a) == src_path || inv.cwd.join(a) == src_path) =>
            {
                replaced_src = true;
                args.push(show(stub));
            }
            _ => args.push(a.clone()),
        }
    }
    if !replaced_src {
        return Err("its source file is not on its recorded command line".into());
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(version: &str, hash: [u8; 8]) -> Vec<u8> {
        let mut b = b"RSIC".to_vec();
        b.extend([0, 0, version.len() as u8]);
        b.extend(version.as_bytes());
        b.extend(hash);
        b.extend(b"rest of the graph");
        b
    }

    #[test]
    fn patches_only_a_header_of_the_same_layout_and_version() {
        let d = tempfile::tempdir().unwrap();
        let ours = d.path().join("ours.bin");
        fs::write(&ours, header_bytes("1.95.0 (x)", [9; 8])).unwrap();
        let expected = read_header(&ours).unwrap().unwrap();
        assert_eq!(expected.options_hash, [9; 8]);

        let theirs = d.path().join("theirs.bin");
        fs::write(&theirs, header_bytes("1.95.0 (x)", [1; 8])).unwrap();
        assert!(patch(&theirs, &expected).unwrap());
        assert_eq!(
            fs::read(&theirs).unwrap(),
            header_bytes("1.95.0 (x)", [9; 8])
        );

        let other = d.path().join("other.bin");
        let original = header_bytes("1.94.0 (y)", [1; 8]);
        fs::write(&other, &original).unwrap();
        assert!(!patch(&other, &expected).unwrap());
        assert_eq!(
            fs::read(&other).unwrap(),
            original,
            "another rustc's file is left alone"
        );

        let junk = d.path().join("junk.bin");
        fs::write(&junk, b"RS").unwrap();
        assert!(!patch(&junk, &expected).unwrap());
        assert_eq!(fs::read(&junk).unwrap(), b"RS");
    }

    #[test]
    fn replay_changes_only_untracked_arguments() {
        let inv = Invocation {
            cwd: "/ci/ws".into(),
            args: [
                "--crate-name",
                "app",
                "--edition=2021",
                "app/src/main.rs",
                "--crate-type",
                "bin",
                "-C",
                "metadata=abc",
                "--out-dir",
                "/ci/ws/target/debug/deps",
                "-C",
                "incremental=/ci/ws/target/debug/incremental",
                "-L",
                "dependency=/ci/ws/target/debug/deps",
                "--extern",
                "greet=/ci/ws/target/debug/deps/libgreet-1.rlib",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        };
        let args = replay_args(
            &inv,
            Path::new("/ci/ws/app/src/main.rs"),
            Path::new("/s/stub.rs"),
            Path::new("/s/out"),
            Path::new("/s/inc"),
        )
        .unwrap();
        assert_eq!(
            args,
            [
                "--crate-name",
                "app",
                "--edition=2021",
                "/s/stub.rs",
                "--crate-type",
                "bin",
                "-C",
                "metadata=abc",
                "--out-dir",
                "/s/out",
                "-C",
                "incremental=/s/inc",
            ]
        );
        let err = replay_args(
            &inv,
            Path::new("/elsewhere.rs"),
            Path::new("/s"),
            Path::new("/o"),
            Path::new("/i"),
        );
        assert!(err.is_err());
    }
}
