//! Hex digests: the sha256 and short digests that name blobs, toolchains
//! and keys. A leaf: it depends on nothing else in the crate, so any module
//! may use it without creating a cycle.
//!
//! It must never grow knowledge of what is being digested (manifests,
//! toolchains, keys); callers decide that.

use sha2::{Digest, Sha256};

/// The sha256 of `bytes`, 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `bytes` as lowercase hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The first 16 hex digits of a sha256: short, and stable across platforms.
pub fn short_digest(bytes: &[u8]) -> String {
    sha256_hex(bytes)[..16].to_owned()
}
