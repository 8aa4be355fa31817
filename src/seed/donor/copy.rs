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
/// place below `to`, every file stamped `stamp`; adds each file with its
/// size to `files`. A link is refused: a unit's files are cargo's and
/// rustc's, which write none, and one would point back into the donor.
pub(super) fn copy_tree(
    from: &Path,
    to: &Path,
    rel: &Path,
    (stamp, mapping): (SystemTime, &Mapping),
    files: &mut Vec<(PathBuf, u64)>,
) -> io::Result<()> {
    let meta = fs::symlink_metadata(from.join(rel))?;
    if meta.is_dir() {
        fs::create_dir_all(to.join(rel))?;
        for entry in fs::read_dir(from.join(rel))? {
            let child = rel.join(entry?.file_name());
            copy_tree(from, to, &child, (stamp, mapping), files)?;
        }
        return Ok(());
    }
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file or directory"));
    }
    let dest = to.join(rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    let size = if mapping.maps(rel, meta.len()) {
        let text = fs::read(from.join(rel))?;
        let out = File::options().write(true).create_new(true).open(&dest)?;
        mapping.moves.map_stream(&text[..], out, u64::MAX)?.0
    } else {
        fs::copy(from.join(rel), &dest)?
    };
    let times = FileTimes::new().set_modified(stamp).set_accessed(stamp);
    File::options().write(true).open(&dest)?.set_times(times)?;
    files.push((rel.to_owned(), size));
    Ok(())
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
    /// output, up to the size it rewrites in memory.
    fn maps(&self, rel: &Path, size: u64) -> bool {
        !self.moves.is_empty()
            && size <= 4 << 20
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
