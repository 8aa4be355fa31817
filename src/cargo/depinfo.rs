//! Cargo's encoded dep-info (`.fingerprint/<unit>/dep-<kind>-<name>`): the
//! list of files cargo mtime-checks for a path unit.
//!
//! Format version 1 (cargo 1.83 and later): a marker `[1,0,0,0,0xff]`, a
//! version byte, then `u32` counts and length-prefixed strings, all
//! little-endian. Any other layout is refused rather than guessed at: a unit
//! whose inputs cannot be read is never restored.

use std::path::PathBuf;

/// Where a recorded path is rooted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathBase {
    /// Relative to the package root (`src/lib.rs`).
    Package,
    /// Relative to the build root (`debug/build/x-…/out/gen.rs`), or absolute.
    Build,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct EncodedDepInfo {
    pub files: Vec<(PathBase, PathBuf)>,
    pub env: Vec<(String, Option<String>)>,
}

const VERSION: u8 = 1;

/// Parses the encoded dep-info; `None` if it is not version 1 or is damaged.
pub fn parse(bytes: &[u8]) -> Option<EncodedDepInfo> {
    let mut r = Reader(bytes);
    // The marker reads as "one file, path type 0xff" to older parsers.
    if r.u32()? != 1 || r.u8()? != 0xff || r.u8()? != VERSION {
        return None;
    }
    let mut info = EncodedDepInfo::default();
    for _ in 0..r.u32()? {
        let base = match r.u8()? {
            0 => PathBase::Package,
            1 => PathBase::Build,
            _ => return None,
        };
        let path = bytes_to_path(r.bytes()?)?;
        if r.u8()? != 0 {
            // A checksum (only with -Zchecksum-freshness): length and digest.
            r.take(8)?;
            r.bytes()?;
        }
        info.files.push((base, path));
    }
    for _ in 0..r.u32()? {
        let key = String::from_utf8(r.bytes()?.to_vec()).ok()?;
        let value = match r.u8()? {
            0 => None,
            1 => Some(String::from_utf8(r.bytes()?.to_vec()).ok()?),
            _ => return None,
        };
        info.env.push((key, value));
    }
    r.0.is_empty().then_some(info)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(unix)]
fn bytes_to_path(b: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(b)))
}

#[cfg(not(unix))]
fn bytes_to_path(b: &[u8]) -> Option<PathBuf> {
    std::str::from_utf8(b).ok().map(PathBuf::from)
}

/// The `# env-dep:VAR=value` lines of rustc's own dep-info (`*.d`): every
/// `env!`/`option_env!` the crate read, with the value it saw (`None` if
/// unset). Values are unescaped as rustc escapes them.
pub(crate) fn rustc_env_deps(text: &str) -> Vec<(String, Option<String>)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# env-dep:"))
        .map(|dep| match dep.split_once('=') {
            Some((k, v)) => (
                k.to_owned(),
                Some(v.replace("\\n", "\n").replace("\\\\", "\\")),
            ),
            None => (dep.to_owned(), None),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes cargo 1.95 wrote for a bin with one source file (`dep-bin-app`).
    const APP: &[u8] = &[
        1, 0, 0, 0, 0xff, 1, 1, 0, 0, 0, 0, 11, 0, 0, 0, b's', b'r', b'c', b'/', b'm', b'a', b'i',
        b'n', b'.', b'r', b's', 0, 0, 0, 0, 0,
    ];

    #[test]
    fn parses_what_cargo_wrote() {
        let info = parse(APP).unwrap();
        assert_eq!(
            info.files,
            vec![(PathBase::Package, PathBuf::from("src/main.rs"))]
        );
        assert!(info.env.is_empty());
    }

    #[test]
    fn refuses_other_versions_and_damage() {
        let mut v2 = APP.to_vec();
        v2[5] = 2;
        assert_eq!(parse(&v2), None);
        assert_eq!(parse(&APP[..APP.len() - 1]), None);
        let mut extra = APP.to_vec();
        extra.push(0);
        assert_eq!(parse(&extra), None);
        // The pre-1.83 format began with the file count.
        assert_eq!(parse(&[0, 0, 0, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn reads_env_and_build_relative_paths() {
        let mut b = vec![1, 0, 0, 0, 0xff, 1, 1, 0, 0, 0, 1];
        b.extend(4u32.to_le_bytes());
        b.extend(b"a.rs");
        b.extend([1]);
        b.extend(3u64.to_le_bytes());
        b.extend(2u32.to_le_bytes());
        b.extend(b"ff");
        b.extend(1u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(b"K");
        b.extend([1]);
        b.extend(1u32.to_le_bytes());
        b.extend(b"v");
        let info = parse(&b).unwrap();
        assert_eq!(info.files, vec![(PathBase::Build, PathBuf::from("a.rs"))]);
        assert_eq!(info.env, vec![("K".to_owned(), Some("v".to_owned()))]);
    }
}
