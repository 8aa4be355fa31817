//! The one edit cargo-seed makes to a dep graph: writing the local value
//! fingerprints of the path queries over CI's, in place.
//!
//! It must never write into a file that did not parse exactly with the
//! calibrated layout of the rustc that wrote it, nor write anything but the 16-byte value fingerprints
//! of path nodes whose value is CI's; it never creates or truncates a file.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::calibrate::Inconclusive;
use super::graph::{Graph, PathValues, WrongLayout};
use super::layout::Layout;
use super::read::{parse, Unreadable};

/// Why [`patch_paths`] or [`values`] left a file alone.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("failed to {op} {}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
    #[error(transparent)]
    WrongLayout(#[from] WrongLayout),
    /// No layout to read it with: nothing was read.
    #[error("rustc's dep-graph layout could not be calibrated: {0}")]
    Uncalibrated(#[from] Inconclusive),
}

/// What [`patch_paths`] did with a graph's path nodes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Patched {
    /// Held CI's value and now hold the local one.
    pub patched: usize,
    /// Already held the local value.
    pub already_local: usize,
    /// Held neither: the value was computed from something other than
    /// paths (or the replays differ from the real build), so it is left for
    /// rustc to recompute.
    pub not_ci: usize,
    /// Missing from one of the replays (a crate CI's or the local replay did
    /// not load); left alone.
    pub not_replayed: usize,
}

fn read(file: &Path, layout: &Layout) -> Result<Graph, Refused> {
    let bytes = fs::read(file).map_err(|source| Refused::Io {
        op: "read",
        path: file.to_owned(),
        source,
    })?;
    Ok(parse(&bytes, layout)?)
}

/// The path values of a stub replay's graph.
pub fn values(file: &Path, layout: &Layout) -> Result<PathValues, Refused> {
    Ok(read(file, layout)?.path_values()?)
}

/// Writes the local value into every path node of the restored graph `file`
/// whose value is CI's (`ci`, from a stub replay at CI's paths) and not the
/// local one (`local`, from a stub replay at the local paths).
///
/// A node whose value is not CI's depends on more than paths (or the stub
/// replays do not stand for the build) and is left for rustc to recompute.
/// Nothing is written unless the whole file parses exactly with `layout`,
/// calibrated against the rustc that wrote it; the file is written in place, 16 bytes per patched node.
///
/// A stub replay stands for the build when it has the build's options,
/// crate name and `--out-dir` (`output_filenames` holds the out dir and the
/// file stem; a linker that writes nothing keeps the real outputs intact),
/// and a source that loads every dependency (`extern crate name;` for each
/// `--extern`): rustc loads an `--extern` crate only when the source names
/// it, and a crate it did not load has no `used_crate_source` node.
pub fn patch_paths(
    file: &Path,
    layout: &Layout,
    ci: &PathValues,
    local: &PathValues,
) -> Result<Patched, Refused> {
    let graph = read(file, layout)?;
    let mut outcome = Patched::default();
    let mut writes = Vec::new();
    for node in graph.path_nodes()? {
        let id = (node.query, node.key);
        match (ci.get(&id), local.get(&id)) {
            (_, Some(&here)) if node.value == here => outcome.already_local += 1,
            (Some(&there), Some(&here)) if node.value == there => {
                outcome.patched += 1;
                writes.push((node.offset, here));
            }
            (Some(_), Some(_)) => outcome.not_ci += 1,
            _ => outcome.not_replayed += 1,
        }
    }
    if writes.is_empty() {
        return Ok(outcome);
    }
    let io = |op: &'static str| {
        move |source: io::Error| Refused::Io {
            op,
            path: file.to_owned(),
            source,
        }
    };
    // Opened for writing only: never created, never truncated.
    let mut f = File::options()
        .write(true)
        .open(file)
        .map_err(io("open for writing"))?;
    for (offset, value) in writes {
        f.seek(SeekFrom::Start(offset)).map_err(io("seek in"))?;
        f.write_all(&value).map_err(io("write"))?;
    }
    Ok(outcome)
}
