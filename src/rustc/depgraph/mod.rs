//! rustc's dependency graph (`dep-graph.bin`), read exactly, and the one
//! edit cargo-seed makes to it: replacing the value fingerprints of the two
//! queries whose results are made of paths.
//!
//! In a binary, a test harness or a proc-macro crate built with debuginfo,
//! every codegen unit reads `used_crate_source(dep)` (the dependencies'
//! absolute, canonical rlib paths) and `output_filenames(())` (the output
//! directory). Restored at another path, their values differ from what the
//! graph remembers, so rustc marks every codegen unit red and reuses none.
//! Where the restored value is the one a stub build at CI's paths computes
//! (so it is made of paths and nothing else), writing the value a stub build
//! at the local paths computes makes rustc see the inputs as unchanged.
//!
//! The file comes from an untrusted store and its layout is private to each
//! rustc release (the node kind numbers move whenever rustc's query list
//! changes; rustc itself refuses a graph written by any other version). So
//! the layout is not assumed but learned from graphs the installed rustc
//! writes (`calibrate`), and this module must never:
//! - read a graph with a layout other than the one calibrated against the
//!   very rustc its header names, nor guess a layout when calibration is
//!   inconclusive;
//! - accept a graph that does not parse to its trailer, with every count the
//!   trailer claims matching what was read;
//! - write into a file it could not read that way, or write anything but
//!   16-byte value fingerprints of the two path queries;
//! - panic, or allocate more than the size of its input justifies.
//!
//! The parts, each depending only on those before it: `layout` (where the
//! node kinds sit), `graph` (what a parsed graph holds), `read` (the exact
//! parser, with the `cursor` it reads through), `calibrate` (learning a rustc's layout from graphs it writes,
//! and caching it) and `patch` (the one write).

mod calibrate;
mod cursor;
mod graph;
mod layout;
mod patch;
mod read;
#[cfg(test)]
mod tests;

pub use calibrate::{calibrate, calibrated, Build, Change, Inconclusive};
pub use graph::{Fingerprint, Graph, Node, PathNode, PathValues, WrongLayout};
pub use layout::{Layout, PathQuery};
pub use patch::{patch_paths, values, Patched, Refused};
pub use read::{parse, Damage, Unreadable};
