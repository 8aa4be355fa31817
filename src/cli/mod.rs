//! The command line: `cargo seed`, `cargo seed publish`, `cargo seed list`,
//! `cargo seed gc`, `cargo seed keygen`, `cargo seed setup`, `cargo seed
//! clean-local`.
//!
//! Settings resolve as flag > `CARGO_SEED_*` environment >
//! `[workspace.metadata.seed]` > default. The signing key is read from the
//! environment only (`CARGO_SEED_SIGNING_KEY`): a flag would show it to
//! everyone who can list processes.

use std::process::ExitCode;

use clap::Parser;

use crate::cargo::workspace::Workspace;
use crate::error::{report, ExitCode as Code};
use crate::publish::{self, PublishOptions};
use crate::report::{Event, Explained, Reporter, SetupStatus};
use crate::seed::resolve;
use crate::seed::{self, RestoreOptions};
use crate::snapshot::secrets::SecretNames;
use crate::snapshot::signing::{SecretKey, TrustedKeys};
use crate::store::{self, Store};
use crate::{git, Error};

mod args;
mod config;

pub use args::{Cli, Command, GlobalArgs, RestoreArgs};
use config::{blob_cache, covers_to_publish, open_store, signing_key, trusted_keys};

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
    match cli.command {
        Some(Command::Setup {
            worktrees: true,
            undo,
            ..
        }) => return setup_hook(&ws, undo, reporter),
        Some(Command::Setup { check, undo, .. }) => return setup(&ws, check, undo, reporter),
        Some(Command::CleanLocal { apply }) => {
            crate::local::clean::clean_local(&ws, apply, reporter)?;
            return Ok(());
        }
        _ => {}
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
            remember(&ws);
        }
        Some(Command::List { local: true, .. }) => list_local(&ws, profile, reporter)?,
        Some(Command::List {
            max_distance,
            target,
            ..
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
        Some(Command::Setup { .. } | Command::CleanLocal { .. }) => {
            unreachable!("handled before the store is opened")
        }
        None => {
            // Restoring stops cleanly at the next archive entry and removes
            // its staging directory; elsewhere Ctrl-C keeps its default.
            let _ = ctrlc::set_handler(|| {
                seed::CANCEL.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let a = &cli.restore;
            let cache = blob_cache(&ws, a.cache_size, store.as_ref());
            let covers = match &a.from {
                Some(_) => seed::donor::covers(&ws, profile)?,
                None => Vec::new(),
            };
            let opts = RestoreOptions {
                profile,
                target: a.target.as_deref(),
                commit: a.commit.as_deref(),
                max_distance: a.max_distance,
                force: a.force,
                dry_run: a.dry_run || a.explain,
                trusted: trusted.as_ref(),
                cache: cache.as_ref(),
                from: a.from.as_deref().map(|p| (p, covers.as_slice())),
            };
            let outcome = seed::restore(&ws, store.as_ref(), &opts, reporter)?;
            if opts.dry_run {
                print_plan(&outcome, reporter);
            } else {
                remember(&ws);
            }
            if a.all {
                seed_siblings(&ws, store.as_ref(), &opts, &outcome, reporter)?;
            }
            if !opts.dry_run && a.from.is_none() && trusted.is_none() && store.is_remote() {
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

/// Records this checkout for its repository's others to find
/// ([`crate::local::checkouts`]). A hint for later commands: its failure
/// is not this one's.
fn remember(ws: &Workspace) {
    let _ = crate::local::checkouts::remember(&ws.root, &ws.build_dir);
}

/// `setup --worktrees [--undo]`: the post-checkout hook.
fn setup_hook(ws: &Workspace, undo: bool, reporter: &Reporter) -> Result<(), Error> {
    use crate::local::hook::{self, Done};
    use crate::report::HookStatus;
    let done = if undo {
        hook::uninstall(&ws.root)?
    } else {
        hook::install(&ws.root)?
    };
    let shown = |p: &std::path::Path| p.display().to_string();
    let (status, hook, chained) = match done {
        Done::Installed { hook, chained } => (HookStatus::Installed, hook, chained),
        Done::Updated { hook } => (HookStatus::Updated, hook, None),
        Done::Already { hook } => (HookStatus::Already, hook, None),
        Done::Removed { hook, restored } => (HookStatus::Removed, hook, restored),
        Done::NothingToUndo { hook } => (HookStatus::Unchanged, hook, None),
    };
    reporter.emit(Event::Hook {
        status,
        hook: shown(&hook),
        chained: chained.as_deref().map(shown),
    });
    Ok(())
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

/// `cargo seed list --local`: every other checkout of this repository
/// with a build of `profile`, nearest commit first, and what a seed from
/// it would give here.
fn list_local(ws: &Workspace, profile: &str, reporter: &Reporter) -> Result<(), Error> {
    let covers = seed::donor::covers(ws, profile)?;
    let want = seed::want(ws, profile, None)?;
    let (offers, _) = seed::donor::survey(ws, profile, &covers, &want, usize::MAX)?;
    let checkouts = offers.len();
    for o in offers {
        let gives = o.gives.as_ref().ok();
        reporter.emit(Event::Checkout {
            root: o.root.display().to_string(),
            commit: o.commit,
            distance: o.distance,
            worktree: o.worktree,
            reused: gives.map(|g| g.reused),
            rebuilt: gives.map(|g| g.rebuilt),
            bytes: gives.map(|g| g.bytes),
            unusable: o.gives.err(),
        });
    }
    reporter.emit(Event::ListedLocal {
        profile: profile.to_owned(),
        checkouts,
    });
    Ok(())
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
            unusable: l.unusable.map(Explained::from),
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
