//! What a snapshot is: the manifest, the border where every field read from
//! a store is validated, the signature that makes it trusted, what is kept
//! out of it (CI's secrets), and the archive format of its blobs.

pub(crate) mod archive;
pub(crate) mod inputs;
pub(crate) mod manifest;
pub(crate) mod package;
pub mod secrets;
pub mod signing;
pub(crate) mod tracked;
pub(crate) mod validate;
pub(crate) mod want;
