//! Which snapshot, and which of its units: resolving the commit, what this
//! machine wants of a snapshot, and telling and counting the verdicts
//! (decided in [`super::freshness`]) before anything is fetched.

use std::collections::BTreeMap;

use super::freshness::Verdict;
use super::reason::{NoIncremental, Reason};
use super::resolve::{self, Found};
use crate::cargo::unit_id::UnitId;
use crate::cargo::workspace::Workspace;
use crate::report::{Event, Rebuilt, Reporter, UnitAction, Why};
use crate::rustc::incremental;
use crate::rustc::toolchain::Toolchain;
use crate::snapshot::manifest::{Manifest, Unit, UnitKind};
use crate::snapshot::signing::TrustedKeys;
use crate::snapshot::want::Want;
use crate::store::Store;
use crate::{git, Error};

use super::outcome::Outcome;

/// Chooses the snapshot: `--commit`, or the nearest usable ancestor of HEAD.
pub fn choose(
    ws: &Workspace,
    store: &dyn Store,
    want: &Want,
    trust: Option<&TrustedKeys>,
    commit: Option<&str>,
    max_distance: usize,
) -> Result<Found, Error> {
    match commit {
        Some(rev) => {
            let id = git::resolve_commit(&ws.root, rev).map_err(|_| Error::UnknownRevision {
                rev: rev.to_owned(),
            })?;
            let distance = git::ancestors(&ws.root, "HEAD", max_distance)
                .ok()
                .and_then(|a| a.into_iter().find(|(c, _)| *c == id).map(|(_, d)| d))
                .unwrap_or(0);
            let searched = format!("commit {} (from --commit {rev})", id.short());
            resolve::nearest(store, &[(id, distance)], want, trust, searched)
        }
        None => {
            let head = git::resolve_commit(&ws.root, "HEAD")?;
            let ancestors = git::ancestors(&ws.root, head.as_str(), max_distance)?;
            let searched = format!(
                "{} commits from HEAD ({}) back to distance {max_distance}",
                ancestors.len(),
                head.short()
            );
            resolve::nearest(store, &ancestors, want, trust, searched)
        }
    }
}

pub fn want(ws: &Workspace, profile: &str, target: Option<&str>) -> Result<Want, Error> {
    want_with(ws, profile, target, None)
}

/// [`want`], with the layout (and cargo's rustc cache) already known, as
/// a donor checkout's build dir tells them: no probe is run.
pub(crate) fn want_with(
    ws: &Workspace,
    profile: &str,
    target: Option<&str>,
    known: Option<(crate::cargo::layout::Layout, Option<Vec<u8>>)>,
) -> Result<Want, Error> {
    let toolchain = Toolchain::detect(&ws.root)?;
    let triple = target.unwrap_or(&toolchain.host).to_owned();
    let env = |var: &str| std::env::var(var).ok();
    let rustc = incremental::rustc();
    let cfg = || crate::cargo::flags::rustc_cfg(&rustc, &triple);
    let flags = crate::cargo::flags::resolve(&ws.root, &ws.cargo_home, &triple, &env, &cfg);
    let (layout, rustc_info) = match known {
        Some(known) => known,
        None => crate::cargo::layout::probe::probe_with_rustc_info(
            &crate::cargo::workspace::cargo_exe(),
            &ws.root,
        )?,
    };
    Ok(Want {
        flags,
        cross: target.is_some(),
        target: triple,
        toolchain,
        profile: profile.to_owned(),
        libc: crate::snapshot::want::detect_libc(),
        layout,
        rustc_info,
    })
}

/// The units to put in place: those reused, and all incremental state.
pub(super) fn selected<'a>(
    manifest: &'a Manifest,
    verdicts: &'a BTreeMap<UnitId, Verdict>,
    with_incremental: bool,
) -> impl Iterator<Item = &'a Unit> + 'a {
    manifest.units.iter().filter(move |u| {
        verdicts[&u.id] == Verdict::Reuse && (with_incremental || u.kind != UnitKind::Incremental)
    })
}

/// The units left for cargo, with why, as the summaries list them.
pub fn rebuilt_list(outcome: &Outcome) -> Vec<Rebuilt> {
    outcome
        .rebuilt
        .iter()
        .map(|(name, reason)| Rebuilt {
            name: name.clone(),
            reason: reason.clone().into(),
        })
        .collect()
}

/// Tells each unit's verdict, decided before anything is fetched: every
/// unit's with `dry_run`, else those of the units not restored (the others
/// are told as they are put in place).
pub(super) fn emit_verdicts(
    manifest: &Manifest,
    verdicts: &BTreeMap<UnitId, Verdict>,
    incremental: &Result<bool, NoIncremental>,
    dry_run: bool,
    reporter: &Reporter,
) {
    let units = manifest.units.iter().map(|u| {
        let reason = match (&verdicts[&u.id], incremental) {
            (Verdict::Rebuild(why), _) => Some(why.clone()),
            (Verdict::Reuse, Err(why)) if u.kind == UnitKind::Incremental => {
                Some(Reason::Incremental { why: why.clone() })
            }
            (Verdict::Reuse, _) => None,
        };
        (&u.id, &u.name, u.kind, reason, u.blob.size)
    });
    let withheld = manifest.withheld.iter().map(|w| {
        let reason = Reason::Withheld { why: w.why.clone() };
        (&w.id, &w.name, w.kind, Some(reason), 0)
    });
    for (id, name, kind, reason, bytes) in units.chain(withheld) {
        let event = if dry_run {
            Event::Verdict {
                id: id.clone(),
                name: name.clone(),
                kind,
                reuse: reason.is_none(),
                reason: reason.map(Why::from),
                bytes,
            }
        } else if reason.is_some() {
            Event::Unit {
                id: id.clone(),
                name: name.clone(),
                kind,
                action: if kind == UnitKind::Incremental {
                    UnitAction::Skipped
                } else {
                    UnitAction::Rebuilt
                },
                reason: reason.map(Why::from),
                bytes,
                from_cache: false,
            }
        } else {
            continue;
        };
        reporter.emit(event);
    }
}

pub(super) fn tally(
    manifest: &Manifest,
    verdicts: &BTreeMap<UnitId, Verdict>,
    with_incremental: bool,
    outcome: &mut Outcome,
) {
    for unit in &manifest.units {
        match (&verdicts[&unit.id], unit.kind) {
            (_, UnitKind::Incremental) => outcome.incremental += usize::from(with_incremental),
            (Verdict::Reuse, _) => outcome.reused += 1,
            (Verdict::Rebuild(why), _) => outcome.rebuilt.push((unit.name.clone(), why.clone())),
        }
    }
    let withheld = manifest
        .withheld
        .iter()
        .filter(|w| w.kind != UnitKind::Incremental);
    for w in withheld {
        let why = Reason::Withheld { why: w.why.clone() };
        outcome.rebuilt.push((w.name.clone(), why));
    }
}

/// Whether rustc would reuse the snapshot's incremental state here:
/// `Ok(relocate)` if so (`relocate`: its sessions must be pointed at this
/// checkout first), or why not. Incremental state is only worth fetching
/// where this machine compiles as CI did: in CI's own checkout, or at any
/// path when both ran rustc through the same rewrite of cargo-seed's wrapper.
pub(super) fn incremental_use(ws: &Workspace, manifest: &Manifest) -> Result<bool, NoIncremental> {
    use crate::rustc::wrapper::SCHEME;
    let here = crate::setup::detect(&ws.root, &ws.cargo_home);
    let moved = manifest.workspace_root != ws.root
        || manifest.build_dir != ws.build_dir
        || manifest.cargo_home != ws.cargo_home;
    match (manifest.rustc_wrapper, here.is_ours()) {
        (Some(SCHEME), true) => Ok(moved),
        (None, false) if !moved => Ok(false),
        (Some(SCHEME), false) => Err(NoIncremental::WrapperNotHere {
            other: match here {
                crate::setup::Wrapper::Other { program, from } => Some((program, from.to_string())),
                _ => None,
            },
        }),
        (None, true) => Err(NoIncremental::WrapperNotInCi),
        (None, false) => Err(NoIncremental::MovedWithoutWrapper),
        (Some(theirs), _) => Err(NoIncremental::OtherScheme {
            theirs,
            ours: SCHEME,
        }),
    }
}
