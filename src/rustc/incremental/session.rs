//! The sessions in a crate's incremental dir, and the header of their
//! `dep-graph.bin`: the rustc version and the options hash rustc keys a
//! session on.
//!
//! It must never write into a header whose layout and rustc version are not
//! exactly the expected ones, nor write anything but the 8-byte hash.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

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
