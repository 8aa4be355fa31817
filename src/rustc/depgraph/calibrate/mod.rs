//! Learning the [`Layout`] of the installed rustc's dep graphs from graphs
//! it writes: a tiny library and a binary using it are compiled in a scratch
//! directory three times (as they are, with the library's rlib copied to
//! another directory, with another `--out-dir`), and the graphs are compared.
//!
//! - The record layout: node records are read with each candidate kind
//!   width; the LEB128 numbers left before the totals are one node count per
//!   kind and the session count, which gives the number of kinds. A width is
//!   kept when every graph then parses exactly (every per-kind count matching
//!   the records) and it is the bit length of the largest kind.
//! - `used_crate_source` is the one node kind whose values differ when only
//!   the dependency's rlib moved; `output_filenames` the one that differs when
//!   only `--out-dir` changed.
//!
//! It must never guess: anything but one record layout that reads every
//! graph, and exactly one kind per change, two different kinds, whose nodes
//! look like rustc's path nodes, is [`Inconclusive`], and then no graph is
//! read or written. It never touches anything outside its scratch directory
//! and the cache of learned layouts (`cache`).

mod cache;
mod learn;
mod run;
mod why;

pub use cache::calibrated;
#[cfg(test)]
pub(super) use learn::{learn, Graphs};
pub use run::calibrate;
pub use why::{Build, Change, Inconclusive};
