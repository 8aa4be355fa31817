//! What cargo writes and reads: the workspace as `cargo metadata` reports
//! it, the rustflags cargo would pass, and cargo's private on-disk formats
//! (fingerprints, encoded dep-info). Those formats are parsed and written
//! here and nowhere else.

pub mod depinfo;
pub mod fingerprint;
pub mod flags;
pub mod workspace;
