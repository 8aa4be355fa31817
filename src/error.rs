//! The errors `cargo seed` reports, and the exit code of each.
//!
//! Exit codes (documented in the README; scripts rely on them):
//! - 0: done (or nothing to do);
//! - 1: failed;
//! - 2: the command line is wrong (clap);
//! - 3: no usable snapshot: build normally;
//! - 4: the build dir already holds build state and `--force` was not given;
//! - 130: interrupted (Ctrl-C); nothing was changed.

use std::path::PathBuf;

use crate::cargo::workspace::WorkspaceError;
use crate::git::GitError;
use crate::publish::observe::SnapshotError;
use crate::report::terminal::{escape, stderr_line};
use crate::rustc::toolchain::ToolchainError;
use crate::snapshot::archive::ArchiveError;
use crate::snapshot::signing::{KeyError, Refusal, TrustedKeyError};
use crate::store::{self, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Failure = 1,
    Usage = 2,
    NoSnapshot = 3,
    BuildStatePresent = 4,
    Interrupted = 130,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Rewrite(#[from] crate::seed::relocate::RewriteError),
    #[error(transparent)]
    Layout(#[from] crate::cargo::layout::probe::ProbeError),
    #[error("{store}: manifest `{key}` is unreadable")]
    Manifest {
        store: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{store}: manifest `{key}` is rejected: {detail}")]
    InvalidManifest {
        store: String,
        key: String,
        detail: String,
    },
    #[error("the snapshot unpacks to {} but {} has {} free", crate::report::format::bytes(*.needed), .dir.display(), crate::report::format::bytes(*.available))]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("{} has {available} inodes free, fewer than the snapshot and cargo's work need", .dir.display())]
    NoInodes { dir: PathBuf, available: u64 },
    #[error("{store}: snapshot `{key}` is not authentic: {reason}")]
    Unauthentic {
        store: String,
        key: String,
        reason: Refusal,
    },
    #[error("CARGO_SEED_SIGNING_KEY is not a cargo-seed secret key; nothing was published")]
    SigningKey(#[source] KeyError),
    #[error(transparent)]
    TrustedKey(#[from] TrustedKeyError),
    #[error("could not make a key: the operating system's random source failed")]
    Random(#[source] getrandom::Error),
    #[error(transparent)]
    Setup(#[from] crate::setup::SetupError),
    #[error(transparent)]
    Local(#[from] crate::local::checkouts::LocalError),
    #[error(transparent)]
    Hook(#[from] crate::local::hook::HookError),
    #[error("this machine is not set up for relocatable incremental state: {why} (run `cargo seed setup`)")]
    NotSetUp { why: String },
    #[error("failed to {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no usable snapshot in {store}: {searched}{}", skipped_list(.skipped))]
    NoSnapshot {
        store: String,
        searched: String,
        skipped: Vec<String>,
    },
    #[error("{} is in use by a build or another seed, which a seed --from does not wait for", .dir.display())]
    Busy { dir: PathBuf },
    #[error("cannot seed from {}: {why}", .path.display())]
    Donor { path: PathBuf, why: String },
    #[error("{dir} already holds build state; cargo seed leaves it alone")]
    BuildStatePresent { dir: PathBuf },
    #[error("`{rev}` does not name a commit")]
    UnknownRevision { rev: String },
    #[error("the covered commands (`cargo {}`) built nothing cargo-seed can publish", .covers.join("`, `cargo "))]
    NothingToPublish { covers: Vec<String> },
    #[error(transparent)]
    Cover(#[from] crate::publish::cover::CoverError),
    #[error("`cargo {cover}` builds for several targets; cover one --target per command")]
    CoverTargets { cover: String },
    #[error("interrupted; the build dir was not changed")]
    Interrupted,
}

fn skipped_list(skipped: &[String]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    // One line per snapshot skipped: each reason quotes the store, so it is
    // escaped here, and the line breaks are the only ones in the message.
    let mut s = String::from("; skipped:");
    for line in skipped {
        s.push_str("\n  ");
        s.push_str(&escape(line));
    }
    s
}

impl Error {
    /// For `map_err`: an I/O failure, saying what was being done and where.
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| Error::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::NoSnapshot { .. } | Error::Donor { .. } => ExitCode::NoSnapshot,
            Error::BuildStatePresent { .. } => ExitCode::BuildStatePresent,
            Error::Interrupted
            | Error::Archive(ArchiveError::Cancelled)
            | Error::Store(StoreError::Interrupted { .. }) => ExitCode::Interrupted,
            _ => ExitCode::Failure,
        }
    }

    /// What the user can do about it, if anything.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::NoSnapshot { .. } => Some(
                "build normally (`cargo build`); publish snapshots from CI with `cargo seed publish`"
                    .into(),
            ),
            Error::Busy { .. } => {
                Some("run it again once that is done (nothing was changed)".into())
            }
            Error::BuildStatePresent { .. } => Some(
                "pass --force to replace it (units already there are reused), or run `cargo clean` first".into(),
            ),
            Error::Archive(
                ArchiveError::Digest { .. }
                | ArchiveError::Corrupt { .. }
                | ArchiveError::Oversized { .. },
            )
            | Error::Store(StoreError::NotFound { .. } | StoreError::NotAFile { .. }) => Some(
                "the snapshot in the store is damaged or incomplete; seed another with --commit, or republish it".into(),
            ),
            Error::Archive(ArchiveError::TooSlow { .. })
            | Error::Store(StoreError::TooSlow { .. }) => Some(
                "the store sent too slowly; check the connection, then seed again (nothing was changed), or allow a slower one with CARGO_SEED_MIN_RATE (bytes per second, such as 16K)".into(),
            ),
            Error::Archive(ArchiveError::Fetch { .. }) => Some(
                "the connection to the store kept failing; check that it is reachable, then seed again (nothing was changed)".into(),
            ),
            Error::Archive(ArchiveError::Hostile { .. }) => {
                Some("do not use this store: its snapshot tries to write outside the target dir".into())
            }
            Error::Rewrite(
                crate::seed::relocate::RewriteError::File { .. }
                | crate::seed::relocate::RewriteError::Seed { .. },
            ) => Some(
                "do not use this store: its snapshot's text files grow past any real build's when relocated".into(),
            ),
            Error::Archive(ArchiveError::Excess { .. }) => Some(
                "do not use this store: its snapshot makes more than its manifest declares".into(),
            ),
            Error::NoSpace { .. }
            | Error::NoInodes { .. }
            | Error::Archive(ArchiveError::NoRoom { .. }) => Some(
                "free some space where the build dir is (or seed an older, smaller snapshot); nothing was changed".into(),
            ),
            Error::InvalidManifest { .. } => Some(
                "do not use this store: its snapshot breaks cargo-seed's rules; republish it from CI".into(),
            ),
            Error::Archive(ArchiveError::Io { .. }) => Some(
                "check free space and permissions where the build dir is; nothing was changed".into(),
            ),
            Error::Store(StoreError::Denied { .. }) => Some(
                "check the store's credentials: CARGO_SEED_TOKEN for HTTP, AWS_* for S3".into(),
            ),
            Error::Store(StoreError::Http { store, .. }) if store::Kind::of(store) == Some(store::Kind::S3) => Some(
                "check the bucket, AWS_ENDPOINT_URL and AWS_REGION, and that the endpoint is reachable (HTTPS_PROXY/NO_PROXY)"
                    .into(),
            ),
            Error::Store(StoreError::Http { .. }) => Some(
                "check that the store is reachable (--store, CARGO_SEED_STORE, HTTPS_PROXY/NO_PROXY)"
                    .into(),
            ),
            Error::Store(StoreError::Config { .. }) => Some(
                "check --store (or CARGO_SEED_STORE) and, for S3, the AWS_* environment".into(),
            ),
            Error::Workspace(WorkspaceError::SecretEnv { .. }) => Some(
                "write it as `secret-env = [\"DATABASE_URL\", \"SENTRY_DSN\"]`".into(),
            ),
            Error::SigningKey(_) => Some(
                "set it to the secret key line of `cargo seed keygen` (`cargo-seed-secret-ed25519:` and 64 hex digits), or unset it to publish unsigned".into(),
            ),
            Error::TrustedKey(_) => Some(
                "a trusted key is a public key as `cargo seed keygen` prints it (`cargo-seed-ed25519:` and 64 hex digits); fix or remove this one".into(),
            ),
            Error::Hook(crate::local::hook::HookError::Occupied { chained, .. }) => Some(format!(
                "merge the two hooks into one, or move {} away, then run setup again",
                chained.display()
            )),
            Error::Store(StoreError::Unsupported { .. }) => Some(
                "use a directory path, a file:// URL, an http(s):// URL or s3://bucket/prefix".into(),
            ),
            _ => None,
        }
    }
}

/// Prints `error: …`, its causes and a `hint:` line to stderr, each line
/// escaped: messages quote what a store said (keys, entry names, manifest
/// fields), which must not reach the terminal raw.
pub fn report(err: &Error) {
    let message = err.to_string();
    let mut lines = message.lines();
    match err {
        // Its lines are `skipped_list`'s, each escaped already.
        Error::NoSnapshot { .. } => {
            stderr_line(format_args!("error: {}", lines.next().unwrap_or("")));
            for line in lines {
                stderr_line(format_args!("{line}"));
            }
        }
        _ => stderr_line(format_args!("error: {message}")),
    }
    for s in store::causes(err) {
        stderr_line(format_args!("  caused by: {s}"));
    }
    if let Some(hint) = err.hint() {
        stderr_line(format_args!("hint: {hint}"));
    }
}
/// A cargo file that could not be read is reported as the publish's
/// observation failing, as it was before the reading moved to `cargo`.
impl From<crate::cargo::ReadError> for Error {
    fn from(e: crate::cargo::ReadError) -> Self {
        Error::Snapshot(e.into())
    }
}

/// The messages of the errors that caused `err`, outermost first.
pub(crate) fn causes(err: &Error) -> Vec<String> {
    store::causes(err).map(|s| s.to_string()).collect()
}
