//! What every snapshot of one publish shares (its options, commit,
//! toolchain and the machine's roots) and what publishing one returns.

use std::path::{Path, PathBuf};

use crate::git::CommitId;
use crate::publish::cover::Cover;
use crate::rustc::toolchain::Toolchain;
use crate::snapshot::inputs::Roots;
use crate::snapshot::secrets::SecretNames;
use crate::snapshot::signing::{KeyId, SecretKey, TrustedKeys};

pub struct PublishOptions<'a> {
    pub manifest_path: Option<&'a Path>,
    /// The cargo commands whose units are published (their union, one
    /// snapshot per profile directory they build into).
    pub covers: &'a [Cover],
    /// Which environment variables are secrets, besides the built-in names.
    pub secrets: &'a SecretNames,
    /// Sign the snapshot with this key (`CARGO_SEED_SIGNING_KEY`).
    pub signing_key: Option<&'a SecretKey>,
    /// The keys this workspace trusts, to warn when checkouts would refuse
    /// what is published.
    pub trusted: Option<&'a TrustedKeys>,
}

/// What was published.
#[derive(Debug)]
pub struct Published {
    pub commit: CommitId,
    pub key: String,
    pub units: usize,
    pub new_blobs: usize,
    pub new_bytes: u64,
    pub total_bytes: u64,
    /// Units and incremental dirs left out because of secrets.
    pub withheld: usize,
    /// The key that signed it, if any.
    pub signed_by: Option<KeyId>,
}

/// What every snapshot of one publish shares.
pub(super) struct Context<'a> {
    pub(super) toolchain: Toolchain,
    pub(super) commit: CommitId,
    pub(super) dirty: bool,
    pub(super) repository: PathBuf,
    pub(super) roots: Roots,
    /// The build-dir layout this cargo writes.
    pub(super) layout: crate::cargo::layout::Layout,
    pub(super) opts: &'a PublishOptions<'a>,
}
