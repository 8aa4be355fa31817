//! The store's key layout, the same on every backend, known here only:
//!
//! - `blobs/<aa>/<sha256>.zst`: one unit's files, a tar stream in a zstd
//!   frame, named by the sha256 of those compressed bytes;
//! - `snapshots/<commit>/<variant>.json`: a manifest, written after every
//!   blob it names, so a reader never sees half a snapshot;
//! - `snapshots/<commit>/<variant>.json.sig`: its signature, when CI signs,
//!   written just before the manifest.
//!
//! Every other module builds and reads keys through these functions. This
//! module must never talk to a store or read what an object holds: it only
//! names objects.

const SNAPSHOTS: &str = "snapshots/";
const BLOBS: &str = "blobs/";
const MANIFEST_SUFFIX: &str = ".json";
const SIGNATURE_SUFFIX: &str = ".sig";
const BLOB_SUFFIX: &str = ".zst";

/// The key of the blob whose compressed bytes have this sha256.
pub fn blob_key(sha256: &str) -> String {
    format!("{BLOBS}{}/{sha256}{BLOB_SUFFIX}", &sha256[..2])
}

/// The prefix under which every blob lies, for [`Store::list`](super::Store::list).
pub fn all_blobs_prefix() -> &'static str {
    BLOBS
}

/// The sha256 a blob key names: its file name without `.zst`, or `""` when
/// it has no such name (a stray object that no manifest can reference).
pub fn blob_sha256(key: &str) -> &str {
    key.rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(BLOB_SUFFIX))
        .unwrap_or("")
}

/// The prefix under which every manifest (and signature) lies, for
/// [`Store::list`](super::Store::list).
pub fn all_snapshots_prefix() -> &'static str {
    SNAPSHOTS
}

/// The prefix under which the manifests of `commit` lie.
pub fn snapshot_prefix(commit: &str) -> String {
    format!("{SNAPSHOTS}{commit}/")
}

pub fn manifest_key(commit: &str, variant: &str) -> String {
    format!("{}{variant}{MANIFEST_SUFFIX}", snapshot_prefix(commit))
}

/// Whether a listed key is meant as a manifest (rather than a signature or
/// something else). Such a key may still be laid out wrongly:
/// [`parse_manifest_key`] is the strict check.
pub fn looks_like_manifest(key: &str) -> bool {
    key.ends_with(MANIFEST_SUFFIX)
}

/// The signature file beside a manifest.
pub fn signature_key(manifest_key: &str) -> String {
    format!("{manifest_key}{SIGNATURE_SUFFIX}")
}

/// The manifest key a signature key belongs to, if `key` is a signature's.
pub fn signed_manifest_key(key: &str) -> Option<&str> {
    key.strip_suffix(SIGNATURE_SUFFIX)
}

/// The commit and variant a manifest key names, if it is laid out as
/// [`manifest_key`] makes them.
pub fn parse_manifest_key(key: &str) -> Option<(&str, &str)> {
    let (commit, file) = key.strip_prefix(SNAPSHOTS)?.split_once('/')?;
    let variant = file.strip_suffix(MANIFEST_SUFFIX)?;
    let plain = |s: &str| !s.is_empty() && !s.contains('/');
    (plain(commit) && plain(variant)).then_some((commit, variant))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_keys_name_their_commit_and_variant() {
        let key = manifest_key("abc123", "dev-x86_64-unknown-linux-gnu-0f");
        assert_eq!(key, "snapshots/abc123/dev-x86_64-unknown-linux-gnu-0f.json");
        assert_eq!(
            parse_manifest_key(&key),
            Some(("abc123", "dev-x86_64-unknown-linux-gnu-0f"))
        );
        assert_eq!(signature_key(&key), format!("{key}.sig"));
        assert_eq!(signed_manifest_key(&signature_key(&key)), Some(&*key));
        assert_eq!(signed_manifest_key(&key), None);
        assert!(looks_like_manifest(&key));
        assert!(!looks_like_manifest(&signature_key(&key)));
        for other in [
            "snapshots/abc123/nested/v.json",
            "snapshots/abc123/.json",
            "snapshots//v.json",
            "snapshots/abc123/v.json.sig",
            "blobs/ab/abcd.zst",
        ] {
            assert_eq!(parse_manifest_key(other), None, "{other}");
        }
    }

    #[test]
    fn blob_keys_name_their_digest() {
        let sha = "ab".repeat(32);
        let key = blob_key(&sha);
        assert_eq!(key, format!("blobs/ab/{sha}.zst"));
        assert!(key.starts_with(all_blobs_prefix()));
        assert_eq!(blob_sha256(&key), sha);
        assert_eq!(blob_sha256("blobs/ab/stray.tmp"), "");
    }
}
