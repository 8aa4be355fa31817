//! What a snapshot is: the manifest, the border where every field read from
//! a store is validated, the signature that makes it trusted, what is kept
//! out of it (CI's secrets), and the archive format of its blobs.

pub mod archive;
pub mod inputs;
pub mod manifest;
pub mod secrets;
pub mod signing;
pub mod validate;
pub mod want;
