//! The command line as clap sees it: every flag, with its environment
//! form where it has one. Parsing only; what a flag means is decided in
//! [`super`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::report::MessageFormat;
use crate::store::{self};

#[derive(Debug, Parser)]
#[command(
    name = "cargo-seed",
    bin_name = "cargo seed",
    version,
    about = "Seed the build dir from the nearest CI-published snapshot, so cargo rebuilds only what changed",
    after_help = "Exit codes: 0 done, 1 failed, 2 bad usage, 3 no usable snapshot, \
                  4 build dir already holds build state (see --force), 130 interrupted.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub restore: RestoreArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where snapshots live: a directory or file:// URL, an http(s):// URL, or
    /// s3://bucket/prefix [default: a per-user cache directory]
    #[arg(long, global = true, env = "CARGO_SEED_STORE", value_name = "STORE")]
    pub store: Option<String>,
    /// The cargo profile whose build state is published or restored
    #[arg(
        long,
        global = true,
        env = "CARGO_SEED_PROFILE",
        default_value = "dev",
        value_name = "PROFILE"
    )]
    pub profile: String,
    /// Path to Cargo.toml
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// No output but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say what is done to every unit
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// How to report: status lines for people on stderr, or one JSON
    /// object per line on stdout for scripts
    #[arg(
        long,
        global = true,
        env = "CARGO_SEED_MESSAGE_FORMAT",
        value_enum,
        default_value_t = MessageFormat::Human,
        value_name = "FMT"
    )]
    pub message_format: MessageFormat,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Seed from this commit's snapshot instead of the nearest ancestor's
    #[arg(long, value_name = "REV")]
    pub commit: Option<String>,
    /// Seed the snapshot of a `--target TRIPLE` build (its target's profile
    /// directory, and the host units it needs)
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// How many generations back from HEAD to look for a snapshot
    #[arg(
        long,
        env = "CARGO_SEED_MAX_DISTANCE",
        default_value_t = 200,
        value_name = "N"
    )]
    pub max_distance: usize,
    /// Replace existing build state (units it already holds are kept, not fetched)
    #[arg(long)]
    pub force: bool,
    /// Say what would be restored and rebuilt; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Say, for every unit, whether it would be reused and why not: a dry
    /// run that lists each unit, before anything is downloaded
    #[arg(long)]
    pub explain: bool,
    /// Seed from another checkout of this repository on this machine (a git
    /// worktree or a clone): its build dir's fresh units are copied, with
    /// no store. `auto` picks the checkout whose units this one would
    /// reuse most
    #[arg(long, value_name = "PATH|auto", conflicts_with_all = ["commit", "target", "all"])]
    pub from: Option<PathBuf>,
    /// Also seed the other snapshots published with the chosen one (other
    /// profiles; cross targets whose standard library is installed here)
    #[arg(long)]
    pub all: bool,
    /// Bound of the per-user cache of blobs fetched from remote stores, such
    /// as 10G or 500M; 0 turns it off [default: 10G]
    #[arg(long, env = "CARGO_SEED_CACHE_SIZE", value_name = "SIZE", value_parser = cache_size)]
    pub cache_size: Option<u64>,
}

pub(super) fn cache_size(text: &str) -> Result<u64, String> {
    store::cache::parse_size(text)
        .ok_or_else(|| "expected a size such as 10G, 500M or 0 (no cache)".to_owned())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish the build state of HEAD (run in CI after the build)
    Publish {
        /// Variables whose values are secrets, besides names containing TOKEN, SECRET,
        /// PASSWORD, PASSWD, KEY, CREDENTIAL, AUTH or PRIVATE (comma or space separated;
        /// replaces `secret-env` in [workspace.metadata.seed] unless empty)
        #[arg(long, env = "CARGO_SEED_SECRET_ENV", value_name = "NAMES")]
        secret_env: Option<String>,
        /// A cargo command whose units the snapshot holds, with its
        /// arguments as CI ran it (`build`, `"test --no-run"`, `"check
        /// --all-targets"`, `"clippy --all-targets"`; repeat for several);
        /// replaces `cover` in [workspace.metadata.seed] [default: build]
        #[arg(long = "cover", value_name = "COMMAND")]
        covers: Vec<String>,
        /// Shorthand for --cover "build --profile P <CARGO_BUILD_ARGS>"
        #[arg(last = true, value_name = "CARGO_BUILD_ARGS")]
        build_args: Vec<String>,
    },
    /// Remove old snapshots, and blobs no snapshot references, from a store
    Gc {
        /// Keep snapshots published within this many days
        #[arg(long, default_value_t = 90, value_name = "D")]
        keep_days: u64,
        /// Keep this many of the newest snapshots, however old
        #[arg(long, default_value_t = 10, value_name = "N")]
        keep_last: usize,
        /// Never remove a blob written or used within this many hours (a
        /// publish may be about to reference it)
        #[arg(long, default_value_t = 24, value_name = "H")]
        grace_hours: u64,
        /// Say what would be removed; remove nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Print a new key pair for signing snapshots: the secret key for CI's
    /// secrets, the public key for `[workspace.metadata.seed] trusted-keys`
    Keygen,
    /// Compile through cargo-seed's rustc wrapper on this machine (once), so
    /// that incremental state from CI is reused at this checkout's path:
    /// sets `build.rustc-wrapper` in $CARGO_HOME/config.toml
    Setup {
        /// Only say whether this machine is set up (exit 1 if not)
        #[arg(long, conflicts_with_all = ["undo", "worktrees"])]
        check: bool,
        /// Remove the setting (a wrapper it chained is put back); with
        /// --worktrees, the hook (a hook it chained is put back)
        #[arg(long)]
        undo: bool,
        /// Instead, install a git post-checkout hook in this repository
        /// that seeds each new worktree as `git worktree add` makes it, from
        /// the best local checkout or else the store (an existing hook is
        /// kept and run first; CARGO_SEED_HOOK=0 skips it)
        #[arg(long)]
        worktrees: bool,
    },
    /// List the build dirs of this repository's checkouts on this machine
    /// with their size and last use, and what removing the build dirs of
    /// checkouts that are gone, and incremental sessions rustc will not
    /// load again, would free
    CleanLocal {
        /// Remove them (nothing a build holds is touched)
        #[arg(long)]
        apply: bool,
    },
    /// List the snapshots reachable from HEAD and whether each is usable here
    /// (with --local: this repository's other checkouts on this machine,
    /// and what `cargo seed --from` each would give)
    List {
        /// List the other checkouts of this repository on this machine
        /// with a build of the profile, instead of the store's snapshots
        #[arg(long, conflicts_with = "target")]
        local: bool,
        /// Judge the snapshots of a `--target TRIPLE` build
        #[arg(long, value_name = "TRIPLE")]
        target: Option<String>,
        /// How many generations back from HEAD to look
        #[arg(
            long,
            env = "CARGO_SEED_MAX_DISTANCE",
            default_value_t = 200,
            value_name = "N"
        )]
        max_distance: usize,
    },
}
