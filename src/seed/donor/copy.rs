//! Copying a donor's files into this checkout's build dir: the copy, and
//! the rewrite of the paths its text files name, done as it is copied.

use std::fs::{self, File, FileTimes};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cargo::layout::Layout;
use crate::cargo::workspace::Workspace;
use crate::git;
use crate::seed::relocate::Moves;

/// Copies `rel` (a file or a directory, relative to `from`) to the same
/// place below `to`, every file stamped `stamp` and every text file the
/// seed relocates mapped to this checkout's paths; adds each file with its
/// size to `files`, and says whether it made a link. A link is copied when
/// it points down into the unit's own directory, relative and without
/// `..` (as an unpacked snapshot's may); any other is refused, as it would
/// point back into the donor or out of the build dir.
pub(super) fn copy_tree(
    from: &Path,
    to: &Path,
    rel: &Path,
    (stamp, mapping): (SystemTime, &Mapping),
    files: &mut Vec<(PathBuf, u64)>,
) -> io::Result<bool> {
    let meta = fs::symlink_metadata(from.join(rel))?;
    if meta.is_dir() {
        fs::create_dir_all(to.join(rel))?;
        let mut links = false;
        for entry in fs::read_dir(from.join(rel))? {
            let child = rel.join(entry?.file_name());
            links |= copy_tree(from, to, &child, (stamp, mapping), files)?;
        }
        return Ok(links);
    }
    let dest = to.join(rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    if meta.is_symlink() {
        let target = fs::read_link(from.join(rel))?;
        let downward = target
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !downward {
            return Err(io::Error::other(format!(
                "a link to {}, out of its directory",
                target.display()
            )));
        }
        symlink(&target, &dest)?;
        return Ok(true);
    }
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file, directory or link"));
    }
    let size = if mapping.maps(rel) {
        let input = io::BufReader::new(File::open(from.join(rel))?);
        let out = File::options().write(true).create_new(true).open(&dest)?;
        mapping.moves.map_stream(input, out, u64::MAX)?.0
    } else {
        fs::copy(from.join(rel), &dest)?
    };
    // Opened to read: a read-only file (a header a build script copied
    // from a read-only place) takes its owner's times all the same.
    let times = FileTimes::new().set_modified(stamp).set_accessed(stamp);
    File::open(&dest)?.set_times(times)?;
    files.push((rel.to_owned(), size));
    Ok(false)
}

#[cfg(unix)]
fn symlink(target: &Path, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, at)
}
#[cfg(not(unix))]
fn symlink(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::other(
        "a link, which cargo-seed copies only on Unix",
    ))
}

/// The donor's paths as its text files name them, and this checkout's:
/// dep-info and build-script output are rewritten as they are copied, so
/// that relocation finds nothing left to change in them. (Rewriting a file
/// just written makes ext4 write its data back first, which while
/// gigabytes are copied waits a tenth of a second or more a file.)
pub(super) struct Mapping {
    moves: Moves,
    layout: Layout,
}

impl Mapping {
    /// What relocation would rewrite: rustc's `.d` files and build-script
    /// output.
    fn maps(&self, rel: &Path) -> bool {
        !self.moves.is_empty()
            && !self.layout.is_fingerprint_file(rel)
            && (rel.extension().is_some_and(|e| e == "d") || self.layout.is_script_output(rel))
    }
}

/// How the donor's paths move to this checkout's, as the seed's judgement
/// will find them from the donor's manifest.
pub(super) fn mapping(ws: &Workspace, donor: &Workspace, layout: Layout) -> Mapping {
    let from = [
        donor.build_dir.as_path(),
        donor.root.as_path(),
        donor.cargo_home.as_path(),
    ];
    let here = [
        ws.build_dir.as_path(),
        ws.root.as_path(),
        ws.cargo_home.as_path(),
    ];
    let theirs = git::toplevel(&donor.root)
        .ok()
        .filter(|top| *top != donor.root);
    let ours = git::toplevel(&ws.root).ok();
    let repository = theirs.as_deref().zip(ours.as_deref());
    Mapping {
        moves: Moves::between(from, here, repository),
        layout,
    }
}
