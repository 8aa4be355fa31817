//! Packing a unit's files into a blob, and unpacking a blob safely.
//!
//! A blob is a tar stream in one zstd frame. Packing is deterministic (sorted
//! entries, zeroed owners and times) so an unchanged unit yields the same
//! blob and is stored once. Unpacking treats the blob as hostile: it checks
//! the sha256 and the declared sizes, and writes only plain files,
//! directories, hard links and downward relative symlinks below the staging
//! root. It must never write outside that root, whatever the blob says.
//!
//! The parts: `pack`, `unpack`, the checks on each unpacked `entry`, and
//! the `error` both report.

mod entry;
mod error;
mod pack;
#[cfg(test)]
mod tests;
mod unpack;

pub use error::ArchiveError;
pub use pack::pack;
#[cfg(test)]
pub use unpack::unpack;
pub use unpack::{unpack_timed, Room, UnpackTimes, Unpacked};
