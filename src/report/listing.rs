//! The outputs people may pipe or paste, on stdout: `list`'s table, a dry
//! run's plan (with `--explain`, every unit's verdict), and `keygen`'s pair.
//! Printed whatever `-q` says, as they are the command's result; never
//! used with `--message-format json`, where stdout is JSON only.

use std::sync::atomic::{AtomicBool, Ordering};

use super::event::Event;
use super::format::{age, bytes};
use crate::snapshot::manifest::UnitKind;

/// A line on stdout, escaped: table cells and reasons quote the store.
macro_rules! out {
    ($($arg:tt)*) => {
        super::terminal::stdout_line(format_args!($($arg)*))
    };
}

/// A row of `cargo seed list` on stdout, after the header the first
/// time; an indented line under it names what the snapshot covers.
pub fn list_row(event: &Event, header_printed: &AtomicBool) {
    let Event::Snapshot {
        commit,
        distance,
        rustc,
        profile,
        bytes: size,
        created,
        wrapper,
        covers,
        unusable,
        ..
    } = event
    else {
        return;
    };
    if !header_printed.swap(true, Ordering::Relaxed) {
        out!(
            "{:<12} {:>8}  {:<8} {:<8} {:>10} {:>5} {:<7}  usable",
            "commit",
            "distance",
            "rustc",
            "profile",
            "size",
            "age",
            "wrapper"
        );
    }
    let (size, age, wrapper) = match (size, created) {
        (Some(size), Some(created)) => (
            bytes(*size),
            age(*created),
            match wrapper {
                Some(scheme) => format!("yes/{scheme}"),
                None => "no".to_owned(),
            },
        ),
        _ => Default::default(),
    };
    let usable = match unusable {
        None => "yes".to_owned(),
        Some(why) => format!("no: {}", why.message),
    };
    out!(
        "{:<12} {:>8}  {:<8} {:<8} {:>10} {:>5} {:<7}  {usable}",
        commit.short(),
        distance,
        rustc.as_deref().unwrap_or_default(),
        profile.as_deref().unwrap_or_default(),
        size,
        age,
        wrapper
    );
    if !covers.is_empty() {
        out!("{:<12} covers: {}", "", covers.join(", "));
    }
}

/// A row of `cargo seed list --local` on stdout, after the header the
/// first time.
pub fn checkout_row(event: &Event, header_printed: &AtomicBool) {
    let Event::Checkout {
        root,
        commit,
        distance,
        worktree,
        reused,
        rebuilt,
        bytes: size,
        unusable,
    } = event
    else {
        return;
    };
    if !header_printed.swap(true, Ordering::Relaxed) {
        out!(
            "{:<12} {:>8}  {:<8} {:>6} {:>7} {:>10}  checkout",
            "commit",
            "distance",
            "kind",
            "reuse",
            "rebuild",
            "copies"
        );
    }
    let shown = |n: &Option<usize>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
    out!(
        "{:<12} {:>8}  {:<8} {:>6} {:>7} {:>10}  {root}",
        commit.as_ref().map(|c| c.short()).unwrap_or("?"),
        shown(distance),
        if *worktree { "worktree" } else { "clone" },
        shown(reused),
        shown(rebuilt),
        size.map(bytes).unwrap_or_else(|| "-".into()),
    );
    if let Some(why) = unusable {
        out!("{:<12} offers nothing: {why}", "");
    }
}

/// `list --local` when no other checkout has a build.
pub(crate) fn no_checkouts(profile: &str) {
    out!("no other checkout of this repository on this machine has a {profile} build");
}

/// A row of `cargo seed clean-local`'s table on stdout, after the header
/// the first time: a checkout and what its build dir holds; the build dir
/// on a line of its own when it is not the checkout's `target`.
pub fn local_row(event: &Event, header_printed: &AtomicBool) {
    let Event::LocalCheckout {
        root,
        head,
        worktree,
        exists,
        current,
        build_dir,
        bytes: size,
        last_used,
    } = event
    else {
        return;
    };
    if !header_printed.swap(true, Ordering::Relaxed) {
        out!("{:<12} {:>10} {:>5}  checkout", "commit", "size", "used");
    }
    let what = match (current, exists, worktree) {
        (true, _, _) => "this one",
        (_, false, _) => "gone",
        (_, _, true) => "worktree",
        (_, _, false) => "clone",
    };
    out!(
        "{:<12} {:>10} {:>5}  {root} ({what})",
        head.as_ref().map_or("-", |c| c.short()),
        size.map_or_else(|| "-".to_owned(), bytes),
        last_used.map_or_else(|| "-".to_owned(), age),
    );
    if let Some(dir) = build_dir {
        if std::path::Path::new(dir) != std::path::Path::new(root).join("target") {
            out!("{:<30}build dir {dir}", "");
        }
    }
}

/// `list` when no snapshot is reachable.
pub(crate) fn nothing_listed(store: &str, commits_searched: usize) {
    out!("no snapshots in {store} among {commits_searched} commits from HEAD");
}

/// A dry run's plan: its summary line, then the rebuilt units and why
/// (with `explain`, the verdict of every unit instead), then its notes.
pub fn plan(event: &Event, explained: Option<&[Event]>) {
    let Event::Plan {
        commit,
        distance,
        reused,
        rebuilt,
        incremental,
        fetch_bytes,
        notes,
    } = event
    else {
        return;
    };
    out!(
        "would seed {} (distance {distance}): {reused} units reused, {} rebuilt, {incremental} incremental dirs, {} to fetch",
        commit.short(),
        rebuilt.len(),
        bytes(*fetch_bytes)
    );
    match explained {
        Some(verdicts) => explain(verdicts),
        None => {
            for r in rebuilt {
                out!("  rebuild {}: {}", r.name, r.reason.message);
            }
        }
    }
    for note in notes {
        out!("  note: {note}");
    }
}

/// `--explain`'s lines under a plan: first what would be rebuilt and why,
/// the answer to "why does cargo still compile this"; then incremental
/// state left out, one line per reason (it is usually one reason for all);
/// then what would be reused.
fn explain(verdicts: &[Event]) {
    let mut skipped: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut reused = Vec::new();
    for verdict in verdicts {
        let Event::Verdict {
            name,
            kind,
            reason,
            bytes: size,
            ..
        } = verdict
        else {
            continue;
        };
        match reason {
            None => reused.push(format!("  {:<7} {name} ({})", "reuse", bytes(*size))),
            Some(why) if *kind == UnitKind::Incremental => {
                match skipped.iter_mut().find(|(w, _)| *w == why.message) {
                    Some((_, names)) => names.push(name),
                    None => skipped.push((&why.message, vec![name])),
                }
            }
            Some(why) => out!("  {:<7} {name}: {}", "rebuild", why.message),
        }
    }
    for (why, names) in skipped {
        out!("  {:<7} {}: {why}", "skip", names.join(", "));
    }
    for line in reused {
        out!("{line}");
    }
}

pub fn keygen(secret_key: &str, public_key: &str) {
    out!("secret key (keep in CI's secrets, as CARGO_SEED_SIGNING_KEY): {secret_key}");
    out!("public key (commit under [workspace.metadata.seed] trusted-keys): {public_key}");
}
