//! The command line: `cargo seed`, `cargo seed publish`, `cargo seed list`,
//! `cargo seed gc`, `cargo seed keygen`.
//!
//! Settings resolve as flag > `CARGO_SEED_*` environment >
//! `[workspace.metadata.seed]` > default. The signing key is read from the
//! environment only (`CARGO_SEED_SIGNING_KEY`): a flag would show it to
//! everyone who can list processes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::cargo::workspace::Workspace;
use crate::error::{report, ExitCode as Code};
use crate::publish::cover::Cover;
use crate::publish::{self, PublishOptions};
use crate::report::{Event, MessageFormat, Reporter, SetupStatus};
use crate::seed::resolve;
use crate::seed::{self, RestoreOptions};
use crate::snapshot::secrets::SecretNames;
use crate::snapshot::signing::{SecretKey, TrustedKeys};
use crate::store::{self, BlobCache, Store};
use crate::{git, Error};

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
    /// Also seed the other snapshots published with the chosen one (other
    /// profiles; cross targets whose standard library is installed here)
    #[arg(long)]
    pub all: bool,
    /// Bound of the per-user cache of blobs fetched from remote stores, such
    /// as 10G or 500M; 0 turns it off [default: 10G]
    #[arg(long, env = "CARGO_SEED_CACHE_SIZE", value_name = "SIZE", value_parser = cache_size)]
    pub cache_size: Option<u64>,
}

fn cache_size(text: &str) -> Result<u64, String> {
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
        #[arg(long, conflicts_with = "undo")]
        check: bool,
        /// Remove the setting (a wrapper it chained is put back)
        #[arg(long)]
        undo: bool,
    },
    /// List the snapshots reachable from HEAD and whether each is usable here
    List {
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

pub fn main() -> ExitCode {
    // As a cargo subcommand the binary is called as `cargo-seed seed …`; as
    // RUSTC_WRAPPER, as `cargo-seed /path/to/rustc …`.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(crate::rustc::wrapper::is_wrapper_call)
    {
        let mut rest = args.split_off(1).into_iter();
        let rustc = rest.next().expect("checked above");
        return crate::rustc::wrapper::run(rustc, rest.collect());
    }
    if args.get(1).is_some_and(|a| a == "seed") {
        args.remove(1);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Code::Usage as u8 } else { 0 });
        }
    };
    let reporter = Reporter::new(
        cli.global.message_format,
        cli.global.quiet,
        cli.global.verbose,
    )
    .explaining(cli.restore.explain);
    match run(cli, &reporter) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            let code = e.exit_code() as u8;
            if reporter.is_json() {
                reporter.emit(Event::Error {
                    message: e.to_string(),
                    causes: crate::error::causes(&e),
                    hint: e.hint(),
                    exit_code: code,
                });
            }
            ExitCode::from(code)
        }
    }
}

pub fn run(cli: Cli, reporter: &Reporter) -> Result<(), Error> {
    if let Some(Command::Keygen) = cli.command {
        return keygen(reporter);
    }
    // gc looks after a store and may run where there is no workspace (on the
    // machine that serves the store), given --store.
    let flag = cli.global.store.as_deref();
    if let (Some(Command::Gc { .. }), Some(spec)) = (&cli.command, flag) {
        if Workspace::load(cli.global.manifest_path.as_deref()).is_err() {
            let cwd = std::env::current_dir().unwrap_or_default();
            return run_gc(&cli.command, store::open(spec, &cwd)?.as_ref(), reporter);
        }
    }
    let ws = Workspace::load(cli.global.manifest_path.as_deref())?;
    if let Some(Command::Setup { check, undo }) = cli.command {
        return setup(&ws, check, undo, reporter);
    }
    let store = open_store(&ws, flag)?;
    let profile = cli.global.profile.as_str();
    // Read, and refused if one is malformed, before anything else is done.
    let trusted = match cli.command {
        Some(Command::Gc { .. }) => None,
        _ => trusted_keys(&ws)?,
    };
    match cli.command {
        Some(Command::Publish {
            build_args,
            covers,
            secret_env,
        }) => {
            let covers = covers_to_publish(&ws, profile, &covers, &build_args)?;
            // An empty list (an unset CI variable expanded to "") does not
            // clear the workspace's: that would publish what it names.
            let given = secret_env.map(|list| SecretNames::parse_list(&list));
            let secrets = SecretNames::new(match given {
                Some(names) if !names.is_empty() => names,
                _ => ws.configured_secret_env.clone(),
            });
            let signing_key = signing_key()?;
            let opts = PublishOptions {
                manifest_path: cli.global.manifest_path.as_deref(),
                covers: &covers,
                secrets: &secrets,
                signing_key: signing_key.as_ref(),
                trusted: trusted.as_ref(),
            };
            publish::publish(&ws, store.as_ref(), &opts, reporter)?;
        }
        Some(Command::List {
            max_distance,
            target,
        }) => list(
            &ws,
            store.as_ref(),
            profile,
            target.as_deref(),
            max_distance,
            trusted.as_ref(),
            reporter,
        )?,
        Some(Command::Gc { .. }) => run_gc(&cli.command, store.as_ref(), reporter)?,
        Some(Command::Keygen) => unreachable!("handled before the workspace is loaded"),
        Some(Command::Setup { .. }) => unreachable!("handled before the store is opened"),
        None => {
            // Restoring stops cleanly at the next archive entry and removes
            // its staging directory; elsewhere Ctrl-C keeps its default.
            let _ = ctrlc::set_handler(|| {
                seed::CANCEL.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let a = &cli.restore;
            let cache = blob_cache(&ws, a.cache_size, store.as_ref());
            let opts = RestoreOptions {
                profile,
                target: a.target.as_deref(),
                commit: a.commit.as_deref(),
                max_distance: a.max_distance,
                force: a.force,
                dry_run: a.dry_run || a.explain,
                trusted: trusted.as_ref(),
                cache: cache.as_ref(),
            };
            let outcome = seed::restore(&ws, store.as_ref(), &opts, reporter)?;
            if opts.dry_run {
                print_plan(&outcome, reporter);
            }
            if a.all {
                seed_siblings(&ws, store.as_ref(), &opts, &outcome, reporter)?;
            }
            if !opts.dry_run && trusted.is_none() && store.is_remote() {
                reporter.emit(Event::Unauthenticated {
                    store: store.location(),
                });
            }
        }
    }
    Ok(())
}

/// `--all`: seeds, at the commit just seeded, every other snapshot
/// published with it that this machine can use. One that is not usable
/// here, or whose directory already holds build state, is said and skipped.
fn seed_siblings(
    ws: &Workspace,
    store: &dyn Store,
    first: &RestoreOptions,
    outcome: &seed::Outcome,
    reporter: &Reporter,
) -> Result<(), Error> {
    for sibling in &outcome.published_with {
        let shown = match &sibling.target {
            Some(t) => format!("{} profile for --target {t}", sibling.profile),
            None => format!("{} profile", sibling.profile),
        };
        if let Some(target) = &sibling.target {
            if !crate::rustc::toolchain::has_std(target) {
                reporter.emit(Event::Skipped {
                    what: format!("the {shown}"),
                    reason: format!(
                        "its standard library is not installed (rustup target add {target})"
                    ),
                });
                continue;
            }
        }
        let opts = RestoreOptions {
            profile: &sibling.profile,
            target: sibling.target.as_deref(),
            commit: Some(outcome.commit.as_str()),
            ..*first
        };
        match seed::restore(ws, store, &opts, reporter) {
            Ok(o) if first.dry_run => print_plan(&o, reporter),
            Ok(_) => {}
            Err(e @ (Error::NoSnapshot { .. } | Error::BuildStatePresent { .. })) => {
                reporter.emit(Event::Skipped {
                    what: format!("the {shown}"),
                    reason: e.to_string(),
                })
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn setup(ws: &Workspace, check: bool, undo: bool, reporter: &Reporter) -> Result<(), Error> {
    use crate::setup::{Done, Wrapper};
    let said = |status, config: Option<String>, other_wrapper| {
        reporter.emit(Event::Setup {
            status,
            config,
            other_wrapper,
        })
    };
    if check {
        return match crate::setup::detect(&ws.root, &ws.cargo_home) {
            Wrapper::Ours(from) => {
                said(SetupStatus::Ready, Some(from.to_string()), None);
                Ok(())
            }
            Wrapper::Other { program, from } => Err(Error::NotSetUp {
                why: format!("cargo compiles through `{program}` (set in {from})"),
            }),
            Wrapper::Absent => Err(Error::NotSetUp {
                why: "cargo compiles without a rustc wrapper".into(),
            }),
        };
    }
    let done = if undo {
        crate::setup::uninstall(&ws.cargo_home)?
    } else {
        let exe = std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .map_err(|source| Error::Io {
                op: "find",
                path: "the cargo-seed executable".into(),
                source,
            })?;
        crate::setup::install(&ws.root, &ws.cargo_home, &exe)?
    };
    match done {
        Done::Already(from) => said(SetupStatus::Already, Some(from.to_string()), None),
        Done::Written { file, chained } => said(
            SetupStatus::Written,
            Some(file.display().to_string()),
            chained,
        ),
        Done::Removed { file, restored } => said(
            SetupStatus::Removed,
            Some(file.display().to_string()),
            restored,
        ),
        Done::NothingToUndo => said(SetupStatus::Unchanged, None, None),
    }
    Ok(())
}

/// The commands a publish covers: `--cover`s and the `--` shorthand, else
/// the workspace's `cover` list, else `build` in the chosen profile.
fn covers_to_publish(
    ws: &Workspace,
    profile: &str,
    flags: &[String],
    build_args: &[String],
) -> Result<Vec<Cover>, Error> {
    let mut covers = flags
        .iter()
        .map(|c| Cover::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    if !build_args.is_empty() {
        covers.push(Cover::build(profile, build_args)?);
    }
    if covers.is_empty() {
        for c in &ws.configured_covers {
            covers.push(Cover::parse(c)?);
        }
    }
    if covers.is_empty() {
        covers.push(Cover::build(profile, &[])?);
    }
    Ok(covers)
}

/// `CARGO_SEED_SIGNING_KEY`, if set and not empty (CI systems pass an
/// empty value for a secret a job may not see).
fn signing_key() -> Result<Option<SecretKey>, Error> {
    let Some(text) = std::env::var_os("CARGO_SEED_SIGNING_KEY") else {
        return Ok(None);
    };
    let text = text.to_string_lossy();
    if text.trim().is_empty() {
        return Ok(None);
    }
    SecretKey::parse(&text).map(Some).map_err(Error::SigningKey)
}

/// `CARGO_SEED_TRUSTED_KEYS`, else the workspace's `trusted-keys`.
fn trusted_keys(ws: &Workspace) -> Result<Option<TrustedKeys>, Error> {
    let env = std::env::var_os("CARGO_SEED_TRUSTED_KEYS");
    let env = env.as_ref().map(|v| v.to_string_lossy());
    Ok(TrustedKeys::configured(
        env.as_deref(),
        &ws.configured_trusted_keys,
    )?)
}

/// Reports a new key pair, which both renderers print on stdout only.
fn keygen(reporter: &Reporter) -> Result<(), Error> {
    let key = SecretKey::generate().map_err(Error::Random)?;
    reporter.emit(Event::Keygen {
        secret_key: key.to_text(),
        public_key: key.public().to_string(),
        key_id: key.public().id().to_string(),
    });
    Ok(())
}

fn run_gc(command: &Option<Command>, store: &dyn Store, reporter: &Reporter) -> Result<(), Error> {
    let Some(Command::Gc {
        keep_days,
        keep_last,
        grace_hours,
        dry_run,
    }) = *command
    else {
        unreachable!("called for gc only")
    };
    let opts = crate::gc::GcOptions {
        keep_days,
        keep_last,
        grace: std::time::Duration::from_secs(grace_hours.saturating_mul(3600)),
        dry_run,
    };
    crate::gc::gc(store, &opts, reporter)?;
    Ok(())
}

/// The store from the flag or environment, else the workspace's
/// configuration (relative to the workspace root), else the default.
fn open_store(ws: &Workspace, flag: Option<&str>) -> Result<Box<dyn Store>, Error> {
    let spec = match (flag, &ws.configured_store) {
        (Some(s), _) => s.to_owned(),
        (None, Some(s)) => s.clone(),
        (None, None) => store::default_location().display().to_string(),
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| ws.root.clone());
    let base = if flag.is_some() { cwd } else { ws.root.clone() };
    Ok(store::open(&spec, &base)?)
}

/// The local cache for blobs from a remote store; none for a local store,
/// which is as near as a cache would be. Its bound: the flag or
/// environment, else the workspace's `cache-size`, else the default.
fn blob_cache(ws: &Workspace, flag: Option<u64>, store: &dyn Store) -> Option<BlobCache> {
    if !store.is_remote() {
        return None;
    }
    let limit = flag
        .or(ws.configured_cache_size)
        .unwrap_or(store::cache::DEFAULT_LIMIT);
    BlobCache::new(store::cache::location(), limit)
}

fn print_plan(o: &seed::Outcome, reporter: &Reporter) {
    reporter.emit(Event::Plan {
        commit: o.commit.clone(),
        distance: o.distance,
        reused: o.reused,
        rebuilt: seed::rebuilt_list(o),
        incremental: o.incremental,
        fetch_bytes: o.fetched_bytes,
        notes: o.notes.clone(),
    });
}

fn list(
    ws: &Workspace,
    store: &dyn Store,
    profile: &str,
    target: Option<&str>,
    max_distance: usize,
    trusted: Option<&TrustedKeys>,
    reporter: &Reporter,
) -> Result<(), Error> {
    let want = seed::want(ws, profile, target)?;
    let head = git::resolve_commit(&ws.root, "HEAD")?;
    let ancestors = git::ancestors(&ws.root, head.as_str(), max_distance)?;
    let found = resolve::list(store, &ancestors, &want, trusted)?;
    let snapshots = found.len();
    for l in found {
        let m = l.manifest.as_ref().ok();
        reporter.emit(Event::Snapshot {
            commit: l.commit,
            distance: l.distance,
            rustc: m.map(|m| m.toolchain.release.clone()),
            profile: m.map(|m| m.profile.clone()),
            target: m.map(|m| m.target.clone()),
            bytes: m.map(|m| m.total_size()),
            created: m.map(|m| m.created),
            wrapper: m.and_then(|m| m.rustc_wrapper),
            covers: m.map(|m| m.covers.clone()).unwrap_or_default(),
            usable: l.unusable.is_none(),
            unusable: l.unusable,
            signed_by: l.signer.map(|k| k.to_string()),
        });
    }
    reporter.emit(Event::Listed {
        store: store.location(),
        commits_searched: ancestors.len(),
        snapshots,
    });
    Ok(())
}
