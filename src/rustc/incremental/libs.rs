//! Which of the build dir's libraries a replay lets rustc load.
//!
//! rustc reads an `.rlib` or `.rmeta` as data (the crate's metadata), but it
//! `dlopen`s a proc-macro's `.so` as soon as a crate that uses it is loaded,
//! directly (`--extern`) or as the dependency of a dependency it finds in a
//! `-L dependency=` directory; the library's constructors then run inside
//! `cargo seed`. A snapshot's blobs are code nobody vouched for unless a
//! trusted key signed the manifest, so a replay of an unsigned snapshot only
//! sees a mirror of each dependency directory that holds links to crate
//! metadata, and rustc fails to find a proc-macro instead of running it.
//! rustc canonicalizes the paths of the crates it loads, so the replay still
//! records the paths the build will read.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The start of every `.rlib` (an `ar` archive).
const RLIB_MAGIC: &[u8] = b"!<arch>\n";
/// The start of every `.rmeta` rustc writes.
const RMETA_MAGIC: &[u8] = b"rust\0\0\0";

/// What a replay may load of the build dir.
pub struct Libraries {
    mirror: Option<Mirror>,
}

/// Directories of links to crate metadata, one per dependency directory.
struct Mirror {
    root: PathBuf,
    dirs: Mutex<HashMap<PathBuf, Option<PathBuf>>>,
}

impl Libraries {
    /// Every library cargo would load: for a snapshot a trusted key signed,
    /// and for CI's replay of its own build.
    pub fn all() -> Libraries {
        Libraries { mirror: None }
    }

    /// Crate metadata only, through mirrors made below `root` (a scratch
    /// directory the caller removes).
    pub fn metadata_only(root: PathBuf) -> Libraries {
        Libraries {
            mirror: Some(Mirror {
                root,
                dirs: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether rustc runs no code of a library it may load.
    pub fn is_metadata_only(&self) -> bool {
        self.mirror.is_some()
    }

    /// Whether `path`, named by an `--extern`, may be passed to rustc.
    pub fn may_load(&self, path: &Path) -> bool {
        self.mirror.is_none() || is_crate_metadata(path)
    }

    /// The directory to give rustc as `-L dependency=` for `dir`: `dir`
    /// itself, or its mirror (made once per seed) when `dir` holds a
    /// library rustc would load as code; `None` if no mirror can be made.
    ///
    /// rustc records a crate it finds in a search directory under the path
    /// it found it at, so a mirror changes the `used_crate_source` of every
    /// crate a binary links without naming it: those nodes keep values the
    /// build will not compute, and the binary's codegen units are compiled
    /// again. Hence the mirror only where it is needed.
    pub fn search_dir(&self, dir: &Path) -> Option<PathBuf> {
        let Some(mirror) = &self.mirror else {
            return Some(dir.to_owned());
        };
        let mut dirs = mirror.dirs.lock().unwrap_or_else(|e| e.into_inner());
        let n = dirs.len();
        dirs.entry(dir.to_owned())
            .or_insert_with(|| {
                if !holds_code(dir).unwrap_or(true) {
                    return Some(dir.to_owned());
                }
                let at = mirror.root.join(n.to_string());
                mirror_metadata(dir, &at).ok().map(|()| at)
            })
            .clone()
    }
}

/// Whether rustc could load a library of `dir` as code: rustc tells a
/// dynamic library (a proc-macro, a dylib) from crate metadata by its file
/// name, so any name with a dynamic library's suffix counts, whatever the
/// file is.
fn holds_code(dir: &Path) -> io::Result<bool> {
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy().to_ascii_lowercase();
        if [".so", ".dylib", ".dll"].iter().any(|s| name.ends_with(s)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Links every file of `dir` that is crate metadata into the new directory
/// `at`.
fn mirror_metadata(dir: &Path, at: &Path) -> io::Result<()> {
    fs::create_dir_all(at)?;
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if is_crate_metadata(&path) {
            if let Some(name) = path.file_name() {
                std::os::unix::fs::symlink(&path, at.join(name))?;
            }
        }
    }
    Ok(())
}

/// A regular file (not a link) named `.rlib` or `.rmeta` that starts as
/// rustc writes one: a file rustc reads, never runs.
pub(super) fn is_crate_metadata(path: &Path) -> bool {
    let magic = match path.extension().and_then(|e| e.to_str()) {
        Some("rlib") => RLIB_MAGIC,
        Some("rmeta") => RMETA_MAGIC,
        _ => return false,
    };
    let regular = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
    let mut start = [0u8; 8];
    regular
        && fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut start[..magic.len()]))
            .is_ok()
        && &start[..magic.len()] == magic
}
