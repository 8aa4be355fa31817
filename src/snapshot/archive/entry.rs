//! The checks and file operations for one entry of a blob being unpacked:
//! plain relative paths only, no path through a symlink, files created new.
//!
//! It must never follow a symlink, create over an existing path, or accept
//! a path with a root, `.` or `..`.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};

/// Whether `dir` (relative to `root`) or a directory above it is a symlink.
/// Directories found real are remembered: this blob cannot turn one into a
/// link (a symlink is never created over an existing path).
pub(super) fn passes_a_symlink(root: &Path, dir: &Path, real_dirs: &mut HashSet<PathBuf>) -> bool {
    let mut at = PathBuf::new();
    for part in dir.components() {
        at.push(part);
        if real_dirs.contains(&at) {
            continue;
        }
        match fs::symlink_metadata(root.join(&at)) {
            Ok(meta) if meta.file_type().is_symlink() => return true,
            Ok(meta) if meta.is_dir() => {
                real_dirs.insert(at.clone());
            }
            // Not there yet (created below), or a file (creating fails).
            _ => {}
        }
    }
    false
}

/// Relative, and made only of normal components: no root, no `..`, no `.`.
pub(super) fn is_plain_relative(p: &Path) -> bool {
    !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

pub(super) fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(path)
}

#[cfg(unix)]
pub(super) fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}
#[cfg(not(unix))]
pub(super) fn symlink(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "symlinks"))
}
