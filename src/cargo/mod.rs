//! What cargo writes and reads: the workspace as `cargo metadata` reports
//! it, the rustflags cargo would pass, and cargo's private on-disk formats
//! (fingerprints, encoded dep-info). Those formats are parsed and written
//! here and nowhere else.

pub(crate) mod depinfo;
pub(crate) mod fingerprint;
pub(crate) mod flags;
pub(crate) mod layout;
pub(crate) mod unit_id;
pub mod workspace;

use std::io;
use std::path::{Path, PathBuf};

/// A file of cargo's that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("failed to read {path}")]
pub struct ReadError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> ReadError + '_ {
    move |source| ReadError {
        path: path.to_owned(),
        source,
    }
}

/// Whether a package id (`path+file:///…#name@1.0.0`) names a path
/// package: one whose sources are files of a checkout, not of a registry
/// or git cache.
pub(crate) fn is_path_package(package_id: &str) -> bool {
    package_id.starts_with("path+")
}
