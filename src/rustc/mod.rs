//! What rustc is and what it keeps: the toolchain, the wrapper that makes
//! its incremental state path-independent, and the incremental sessions
//! with their dependency graph, rustc's private format, confined here.

pub mod depgraph;
pub mod incremental;
pub(crate) mod toolchain;
pub(crate) mod wrapper;
