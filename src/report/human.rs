//! The text people read: every [`Event`] rendered as cargo prints its own
//! status lines, on stderr, with progress bars on a terminal; only what a
//! user may pipe (`keygen`, `list`, a dry run's plan) goes to stdout,
//! through `listing`.
//!
//! All the wording of cargo-seed's output lives here and there, and nothing
//! here decides anything: an event says what happened, this says it in words.
//! Every line goes out through `terminal`, which escapes what a store said.

use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::event::{Event, Garbage, HookStatus, SetupStatus, UnitAction};
use super::format::{age, bytes};
use super::listing;
use super::terminal;

/// The human renderer, with `-q`/`-v`/`--explain` and the state a few
/// events need (the fetch bar, whether `list`'s header was printed, the
/// verdicts an explained plan lists under its summary line).
#[derive(Debug, Default)]
pub(crate) struct Human {
    pub quiet: bool,
    pub verbose: bool,
    /// A dry run's plan lists every unit's verdict, not only the rebuilt.
    pub explain: bool,
    bar: Mutex<Option<ProgressBar>>,
    list_header: AtomicBool,
    local_header: AtomicBool,
    verdicts: Mutex<Vec<Event>>,
}

impl Human {
    pub fn new(quiet: bool, verbose: bool, explain: bool) -> Human {
        Human {
            quiet,
            verbose,
            explain,
            ..Human::default()
        }
    }

    /// A status line on stderr, as cargo prints them.
    fn status(&self, verb: &str, msg: impl std::fmt::Display) {
        if !self.quiet {
            terminal::stderr_line(format_args!("{verb:>12} {msg}"));
        }
    }

    /// A `warning:` line on stderr, as cargo prints them.
    fn warning(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            terminal::stderr_line(format_args!("warning: {msg}"));
        }
    }

    /// Detail shown with `-v`.
    fn detail(&self, msg: impl std::fmt::Display) {
        if self.verbose && !self.quiet {
            terminal::stderr_line(format_args!("{:>12} {msg}", ""));
        }
    }

    pub(crate) fn render(&self, event: &Event) {
        match event {
            Event::Resolved {
                commit,
                distance,
                profile,
                bytes: size,
                signed_by,
                ..
            } => {
                let signed = match signed_by {
                    Some(key) => format!(", signed by key {key}"),
                    None => String::new(),
                };
                self.status(
                    "Resolved",
                    format!(
                        "{} (distance {distance} from HEAD, {profile} profile, {}{signed})",
                        commit.short(),
                        bytes(*size)
                    ),
                );
            }
            Event::Note { message } => self.status("Note", message),
            Event::Recovered { message } => self.status("Recovered", message),
            Event::Blocking { dir } => {
                self.status("Blocking", format!("waiting for file lock on {dir}"))
            }
            Event::FetchStarted { bytes, .. } => {
                *self.bar.lock().unwrap() = Some(self.bytes_bar(*bytes, "Fetching"));
            }
            Event::Unit {
                action: UnitAction::Fetched | UnitAction::Kept,
                bytes,
                ..
            } => {
                if let Some(bar) = &*self.bar.lock().unwrap() {
                    bar.inc(*bytes);
                }
            }
            // Told under the plan's summary line, which comes after them.
            Event::Verdict { .. } if self.explain => {
                self.verdicts.lock().unwrap().push(event.clone())
            }
            Event::Unit { .. } | Event::Verdict { .. } | Event::Error { .. } => {}
            Event::FetchFinished => {
                if let Some(bar) = self.bar.lock().unwrap().take() {
                    bar.finish_and_clear();
                }
            }
            Event::CacheUnused { reason } => self.detail(format!(
                "the local blob cache was not used in full: {reason}"
            )),
            Event::Seeded {
                commit,
                distance,
                dir,
                reused,
                rebuilt,
                incremental,
                fetched_bytes,
                cached_bytes,
                copied_bytes,
                kept,
                seconds,
                stages,
            } => {
                let reasons: Vec<String> = rebuilt
                    .iter()
                    .take(3)
                    .map(|r| format!("{}: {}", r.name, r.reason.message))
                    .collect();
                let more = if rebuilt.len() > 3 {
                    format!("; {} more", rebuilt.len() - 3)
                } else {
                    String::new()
                };
                self.status(
                    "Seeded",
                    format!(
                        "{} (distance {distance}) into {dir}: {reused} units reused, {} to rebuild{}, {incremental} incremental dirs, {}{}{} in {seconds:.2}s",
                        commit.short(),
                        rebuilt.len(),
                        if rebuilt.is_empty() { String::new() } else { format!(" ({}{more})", reasons.join("; ")) },
                        if *copied_bytes > 0 { format!("{} copied", bytes(*copied_bytes)) } else { format!("{} fetched", bytes(*fetched_bytes)) },
                        if *cached_bytes > 0 { format!(", {} of it from the local cache", bytes(*cached_bytes)) } else { String::new() },
                        if *kept > 0 { format!(", {kept} units kept from the build dir") } else { String::new() },
                    ),
                );
                self.detail(stage_times(stages));
            }
            Event::Plan { .. } => {
                let verdicts = std::mem::take(&mut *self.verdicts.lock().unwrap());
                listing::plan(event, self.explain.then_some(&verdicts));
            }
            Event::Skipped { what, reason } => self.status("Skipped", format!("{what}: {reason}")),
            Event::Unauthenticated { store } => self.warning(format!(
                "the snapshot seeded from {store} is not authenticated: whoever can write to that store \
                 chooses what this build runs; make keys with `cargo seed keygen`, sign in CI with \
                 CARGO_SEED_SIGNING_KEY, and list the public key in [workspace.metadata.seed] trusted-keys"
            )),
            Event::Warning { message } => self.status("Warning", message),
            Event::Withheld {
                units,
                incremental_dirs,
                secrets,
                unreadable,
            } => {
                let mut causes = Vec::new();
                if !secrets.is_empty() {
                    causes.push(format!(
                        "read {} (secret-looking and set in this build)",
                        secrets.join(", ")
                    ));
                }
                if *unreadable {
                    causes.push(
                        "record environment values in a format cargo-seed cannot read".to_owned(),
                    );
                }
                causes.push("depend on a unit that does".to_owned());
                self.status(
                    "Withheld",
                    format!(
                        "{units} units and {incremental_dirs} incremental dirs, which {}; \
                         they are rebuilt wherever this snapshot is seeded{}",
                        causes.join(", or "),
                        if self.verbose { "" } else { " (-v lists them)" }
                    ),
                );
            }
            Event::WithheldUnit { name, reason, .. } => {
                self.detail(format!("withheld {name}: {reason}"))
            }
            Event::Wrapper {
                wrapped,
                path_units,
                recorded,
            } => self.status(
                "Wrapper",
                format!(
                    "{wrapped} of {path_units} path units compiled through cargo-seed's rustc wrapper; \
                     path queries recorded for {recorded}"
                ),
            ),
            Event::Packing {
                commit,
                profile,
                units,
            } => self.status(
                "Packing",
                format!("{units} units of {} ({profile} profile)", commit.short()),
            ),
            Event::Stored { name, bytes: size, .. } => {
                self.detail(format!("stored {name} ({})", bytes(*size)))
            }
            Event::Published {
                commit,
                store,
                profile,
                rustc,
                units,
                new_blobs,
                new_bytes,
                total_bytes,
                signed_by,
                seconds,
                ..
            } => {
                let signed = match signed_by {
                    Some(id) => format!(", signed with key {id}"),
                    None => String::new(),
                };
                self.status(
                    "Published",
                    format!(
                        "{} ({profile}, {rustc}) to {store}: {units} units, {new_blobs} new blobs ({}) of {} in {seconds:.2}s{signed}",
                        commit.short(),
                        bytes(*new_bytes),
                        bytes(*total_bytes),
                    ),
                );
            }
            Event::Snapshot { .. } => listing::list_row(event, &self.list_header),
            Event::Checkout { .. } => listing::checkout_row(event, &self.list_header),
            Event::Listed {
                store,
                commits_searched,
                snapshots,
            } => {
                if *snapshots == 0 {
                    listing::nothing_listed(store, *commits_searched);
                }
            }
            Event::ListedLocal { profile, checkouts } => {
                if *checkouts == 0 {
                    listing::no_checkouts(profile);
                }
            }
            Event::SnapshotRemoved { key, created, .. } => {
                self.detail(format!("remove snapshot {key} ({})", age(*created)))
            }
            Event::Gc {
                store,
                dry_run,
                snapshots_removed,
                snapshots_kept,
                blobs_removed,
                bytes_removed,
                blobs_in_grace,
            } => self.status(
                if *dry_run { "Would remove" } else { "Removed" },
                format!(
                    "{snapshots_removed} snapshots and {blobs_removed} blobs ({}) from {store}; kept {snapshots_kept} snapshots, {blobs_in_grace} unreferenced blobs younger than the grace period",
                    bytes(*bytes_removed),
                ),
            ),
            Event::Setup {
                status,
                config,
                other_wrapper,
            } => self.setup(*status, config.as_deref(), other_wrapper.as_deref()),
            Event::Keygen {
                secret_key,
                public_key,
                ..
            } => listing::keygen(secret_key, public_key),
            Event::Hook {
                status,
                hook,
                chained,
            } => self.hook(*status, hook, chained.as_deref()),
            Event::LocalCheckout { .. } => listing::local_row(event, &self.local_header),
            Event::LocalRemoval {
                path,
                garbage,
                bytes: size,
                dry_run,
            } => match garbage {
                Garbage::BuildDir { checkout } => self.status(
                    if *dry_run { "Would remove" } else { "Removed" },
                    format!(
                        "{path} ({}), the build dir of {checkout}, which is gone",
                        bytes(*size)
                    ),
                ),
                Garbage::Session { why } => self.detail(format!(
                    "{} {path} ({}): {why}",
                    if *dry_run { "would remove" } else { "removed" },
                    bytes(*size)
                )),
            },
            Event::CleanedLocal {
                dry_run,
                checkouts,
                total_bytes,
                build_dirs_removed,
                sessions_removed,
                sessions_held,
                bytes_freed,
            } => self.status(
                if *dry_run { "Would free" } else { "Freed" },
                format!(
                    "{}: {} of gone checkouts, {} rustc will not load again{}{}; the build \
                     dirs of {} hold {}{}",
                    bytes(*bytes_freed),
                    count(*build_dirs_removed, "build dir"),
                    count(*sessions_removed, "incremental session"),
                    if self.verbose || *sessions_removed == 0 { "" } else { " (-v lists them)" },
                    match sessions_held {
                        0 => String::new(),
                        n => format!(" ({n} more in use by a rustc)"),
                    },
                    count(*checkouts, "checkout"),
                    bytes(*total_bytes),
                    if *dry_run && *bytes_freed > 0 { "; --apply removes them" } else { "" },
                ),
            ),
        }
    }

    fn hook(&self, status: HookStatus, hook: &str, chained: Option<&str>) {
        let clones = || {
            self.status(
                "Note",
                format!(
                    "a clone gets no hooks: to seed one as git makes it, copy {hook} into \
                     <dir>/hooks/ and clone with `git clone --template <dir> <url>`"
                ),
            )
        };
        match status {
            HookStatus::Installed => {
                self.status(
                    "Installed",
                    format!(
                        "{hook}: `git worktree add` seeds the new worktree (from the best local \
                         checkout, else from the store){}; CARGO_SEED_HOOK=0 skips it, \
                         `cargo seed setup --worktrees --undo` removes it",
                        match chained {
                            Some(c) =>
                                format!(", after running the hook that was there, kept as {c}"),
                            None => String::new(),
                        }
                    ),
                );
                clones();
            }
            HookStatus::Updated => {
                self.status("Updated", format!("{hook}: it seeds this workspace too"));
                clones();
            }
            HookStatus::Already => self.status("Ready", format!("{hook} seeds new worktrees")),
            HookStatus::Removed => self.status(
                "Removed",
                format!(
                    "{hook}{}",
                    match chained {
                        Some(_) => "; the hook it chained is back in its place",
                        None => "",
                    }
                ),
            ),
            HookStatus::Unchanged => {
                self.status("Unchanged", format!("{hook} is not cargo-seed's hook"))
            }
        }
    }

    fn setup(&self, status: SetupStatus, config: Option<&str>, other: Option<&str>) {
        let config = config.unwrap_or_default();
        match status {
            SetupStatus::Ready => self.status(
                "Ready",
                format!("cargo compiles through cargo-seed (set in {config})"),
            ),
            SetupStatus::Already => self.status(
                "Ready",
                format!("cargo already compiles through cargo-seed (set in {config})"),
            ),
            SetupStatus::Written => self.status(
                "Set up",
                format!(
                    "build.rustc-wrapper = cargo-seed in {config}{}: path crates are compiled with their \
                     repository remapped to `.` in paths, so CI's incremental state is reused at this \
                     checkout's path; `cargo seed setup --undo` removes it",
                    match other {
                        Some(p) => format!(" (it runs `{p}`, the wrapper set before, in turn)"),
                        None => String::new(),
                    }
                ),
            ),
            SetupStatus::Removed => self.status(
                "Removed",
                format!(
                    "cargo-seed from {config}{}",
                    match other {
                        Some(p) => format!("; build.rustc-wrapper is `{p}` again"),
                        None => String::new(),
                    }
                ),
            ),
            SetupStatus::Unchanged => {
                self.status("Unchanged", "cargo-seed was not set up in CARGO_HOME")
            }
        }
    }

    /// A byte-counting progress bar, hidden when stderr is not a terminal,
    /// in CI, or with `-q`.
    fn bytes_bar(&self, total: u64, what: &str) -> ProgressBar {
        if self.quiet || std::env::var_os("CI").is_some() || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12.cyan.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

/// `1 checkout`, `2 checkouts`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The stages' times, for `-v`: wall seconds, the staging work inside
/// them in thread-seconds summed over the workers.
fn stage_times(t: &crate::seed::outcome::StageTimes) -> String {
    format!(
        "stages: resolve {:.2}s, judge {:.2}s, stage {:.2}s (summed over the workers: \
         fetch {:.2}s, verify {:.2}s, decompress {:.2}s, write {:.2}s, relocate {:.2}s), \
         swap {:.2}s, replay {:.2}s",
        t.resolve,
        t.judge,
        t.stage,
        t.fetch,
        t.verify,
        t.decompress,
        t.write,
        t.relocate,
        t.swap,
        t.replay
    )
}
