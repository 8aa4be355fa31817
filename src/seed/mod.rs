//! `cargo seed`: fetch, verify and unpack the chosen snapshot into a staging
//! directory beside the build dir's profile directory, then swap it in.
//!
//! Until the swap, nothing the user had is touched: any failure (a damaged or
//! missing blob, a hostile entry, a full disk, Ctrl-C) removes the staging
//! directory and leaves the build dir exactly as it was.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use crate::cargo::unit_id::UnitId;
use crate::cargo::workspace::{self, Workspace};
use crate::report::{Event, Reporter, UnitAction};
use crate::snapshot::archive::{Room, UnpackTimes, Unpacked};
use crate::snapshot::manifest::{Manifest, Unit};
use crate::snapshot::signing::TrustedKeys;
use crate::snapshot::tracked;
use crate::store::{self, BlobCache, Store};
use crate::{pool, Error};
pub use cancel::CANCEL;
use fetch::{fetch_one, keep_from, refingerprint, relocate_unit, Origin};
use freshness::Verdict;
pub use outcome::{Outcome, StageTimes};
pub use plan::{choose, rebuilt_list, want};
use plan::{emit_verdicts, incremental_use, selected, tally};
use reason::NoIncremental;
use relocate::Moves;
use replay::relocate_incremental;
use resolve::Found;
use swap::{
    cargo_used, holds_build_state, lock_cargo, lock_file, merge_host_units, read_state,
    recover_or_remove_leftovers, CargoLock, Staging, State, UnitState, STATE_FILE,
};

mod cancel;
pub(crate) mod donor;
mod fetch;
pub mod freshness;
pub mod outcome;
mod packages;
mod plan;
pub mod reason;
pub mod relocate;
mod replay;
pub mod resolve;
mod sources;
mod swap;

/// Source-path maps for debuggers, written when paths differ from CI's.
const GDB_SCRIPT: &str = "cargo-seed-paths.gdb";
const LLDB_SCRIPT: &str = "cargo-seed-paths.lldb";

#[derive(Clone, Copy)]
pub(crate) struct RestoreOptions<'a> {
    pub profile: &'a str,
    /// `--target`: the snapshot of a cross build for this triple.
    pub target: Option<&'a str>,
    pub commit: Option<&'a str>,
    pub max_distance: usize,
    pub force: bool,
    pub dry_run: bool,
    /// Accept only snapshots these keys signed; `None`: accept any.
    pub trusted: Option<&'a TrustedKeys>,
    /// Where blobs from a remote store are kept locally; `None`: fetch
    /// every blob from the store.
    pub cache: Option<&'a BlobCache>,
    /// `--from`: seed from this checkout's build dir instead of the store,
    /// its fresh units as these commands build them.
    pub from: Option<(&'a Path, &'a [crate::publish::cover::Cover])>,
}

/// `cargo seed`, as its stages: choose the snapshot, prepare the place it
/// goes, judge every unit, stage the reused ones, swap them in (and replay
/// the incremental sessions under the same lock), report.
pub fn restore(
    ws: &Workspace,
    store: &dyn Store,
    opts: &RestoreOptions,
    reporter: &Reporter,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let mut times = StageTimes::default();
    let clock = Instant::now();
    let chosen = choose_snapshot(ws, store, opts, reporter)?;
    times.resolve = clock.elapsed().as_secs_f64();
    let manifest = &chosen.found.manifest;
    let mut outcome = Outcome::of(&chosen.found);
    if opts.dry_run {
        let judged = judge(ws, manifest, &chosen, false, &mut outcome, reporter);
        outcome.fetched_bytes = judged.units(manifest).map(|u| u.blob.size).sum();
        return Ok(outcome);
    }
    let place = prepare(ws, opts, &chosen, reporter)?;
    let clock = Instant::now();
    let judged = judge(ws, manifest, &chosen, true, &mut outcome, reporter);
    times.judge = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let staged = stage(ws, store, opts, &chosen, &place, &judged, reporter)?;
    times.stage = clock.elapsed().as_secs_f64();
    staged.times.add_to(&mut times);
    outcome.fetched_bytes = staged.fetched;
    outcome.cached_bytes = staged.cached;
    outcome.copied_bytes = staged.copied;
    outcome.kept = staged.kept;
    outcome.notes.extend(staged.notes);
    let clock = Instant::now();
    let swapped = swap(
        ws,
        &chosen,
        place,
        &judged,
        staged.host_units,
        &outcome,
        reporter,
    )?;
    times.swap = clock.elapsed().as_secs_f64() - swapped.replay;
    times.replay = swapped.replay;
    outcome.notes.extend(swapped.notes);
    outcome.stages = times;

    for note in &outcome.notes {
        reporter.emit(Event::Note {
            message: note.clone(),
        });
    }
    reporter.emit(Event::Seeded {
        commit: outcome.commit.clone(),
        distance: outcome.distance,
        dir: swapped.dir.display().to_string(),
        reused: outcome.reused,
        rebuilt: rebuilt_list(&outcome),
        incremental: outcome.incremental,
        fetched_bytes: outcome.fetched_bytes,
        cached_bytes: outcome.cached_bytes,
        copied_bytes: outcome.copied_bytes,
        kept: outcome.kept,
        seconds: started.elapsed().as_secs_f64(),
        stages: times,
    });
    Ok(outcome)
}

/// The snapshot chosen, and where its units go here.
struct Chosen {
    found: Found,
    /// The profile dir the snapshot's units go to.
    dest: PathBuf,
    /// A cross build's host units (build scripts, proc-macros) go to the
    /// host's profile dir.
    host_dest: PathBuf,
    profile_name: String,
    /// Whether rustc would reuse the snapshot's incremental state here
    /// (`Ok(relocate)`), or why not; told before anything is downloaded.
    incremental: Result<bool, NoIncremental>,
    /// Cargo's cache of what it asked rustc here, from the layout probe.
    rustc_info: Option<Vec<u8>>,
    /// `--from`: the checkout the units are copied from, locked.
    donor: Option<donor::Donor>,
    /// Whether the snapshot's code may run in the incremental replay
    /// (proc-macros): a trusted key signed it, or it is this user's build.
    runs_code: bool,
}

/// Stage "choose": what this machine wants, the nearest snapshot that
/// fits, and whether its incremental state is worth fetching.
fn choose_snapshot(
    ws: &Workspace,
    store: &dyn Store,
    opts: &RestoreOptions,
    reporter: &Reporter,
) -> Result<Chosen, Error> {
    let (want, found, donor) = match opts.from {
        Some((path, covers)) if path == Path::new("auto") => {
            let want = want(ws, opts.profile, opts.target)?;
            let (found, donor) = donor::open_best(ws, opts.profile, covers, &want)?;
            (want, found, Some(donor))
        }
        Some((path, covers)) => {
            let donor_ws = donor::locate(ws, path)?;
            let known = donor::layout_of(&donor_ws, opts.profile);
            let want = plan::want_with(ws, opts.profile, opts.target, known)?;
            let (found, donor) = donor::open(
                ws,
                (path, donor_ws),
                opts.profile,
                covers,
                &want,
                (!opts.dry_run, true),
                reporter,
            )?;
            (want, found, Some(donor))
        }
        None => {
            let want = want(ws, opts.profile, opts.target)?;
            let found = choose(
                ws,
                store,
                &want,
                opts.trusted,
                opts.commit,
                opts.max_distance,
            )?;
            (want, found, None)
        }
    };
    let manifest = &found.manifest;
    reporter.emit(Event::Resolved {
        commit: found.commit.clone(),
        distance: found.distance,
        store: source_name(store, donor.as_ref()),
        variant: manifest.variant(),
        profile: manifest.profile.clone(),
        target: manifest.target.clone(),
        bytes: manifest.total_size(),
        signed_by: found.signer.as_ref().map(|key| key.to_string()),
    });
    let profile_name = workspace::profile_dir_name(opts.profile);
    let host_dest = ws.profile_build_dir(opts.profile);
    let dest = match opts.target {
        Some(target) => ws.build_dir.join(target).join(profile_name),
        None => host_dest.clone(),
    };
    if holds_build_state(&dest) && !opts.force && !opts.dry_run {
        return Err(Error::BuildStatePresent { dir: dest });
    }
    let incremental = incremental_use(ws, manifest);
    if let Err(why) = &incremental {
        reporter.emit(Event::Note {
            message: why.to_string(),
        });
    }
    if let Some(note) = sources::unpack_missing(ws, manifest) {
        reporter.emit(Event::Note { message: note });
    }
    let runs_code = found.signer.is_some() || donor.as_ref().is_some_and(|d| d.own);
    Ok(Chosen {
        found,
        dest,
        host_dest,
        profile_name: profile_name.to_owned(),
        incremental,
        rustc_info: want.rustc_info,
        donor,
        runs_code,
    })
}

/// Where the units come from, as the user would name it.
fn source_name(store: &dyn Store, donor: Option<&donor::Donor>) -> String {
    match donor {
        Some(d) => format!("checkout {}", d.root.display()),
        None => store.location(),
    }
}

/// The place a seed writes, held until the swap.
struct Place {
    _seed_lock: File,
    staging: Staging,
    /// Where a cross build's host units wait until they join the host's
    /// profile directory.
    host_staging: Staging,
    /// Every restored file's mtime, taken before any input is compared
    /// (see [`freshness::file_system_now`]).
    stamp: SystemTime,
    /// Cargo's lock on the existing profile dir, taken before the staging
    /// dir is made.
    dest_lock: Option<CargoLock>,
}

/// Stage "prepare": our lock on the build dir, what a killed seed left
/// undone, the staging dirs, the stamp, cargo's lock on the profile dir.
fn prepare(
    ws: &Workspace,
    opts: &RestoreOptions,
    chosen: &Chosen,
    reporter: &Reporter,
) -> Result<Place, Error> {
    let (dest, profile_name) = (&chosen.dest, chosen.profile_name.as_str());
    let area = dest.parent().unwrap_or(&ws.build_dir).to_owned();
    fs::create_dir_all(&ws.build_dir).map_err(Error::io("create", &ws.build_dir))?;
    let lock_path = ws.build_dir.join(".cargo-seed.lock");
    // One seed at a time per build dir; opened without truncation so a
    // failed seed leaves even this file's mtime as it was.
    let seed_lock = lock_file(&lock_path)?;
    donor::remove_leftovers(&ws.build_dir);
    fs::create_dir_all(&area).map_err(Error::io("create", &area))?;
    if chosen.found.manifest.cross {
        recover_or_remove_leftovers(&ws.build_dir, &chosen.host_dest, profile_name)?;
    }
    if let Some(note) = recover_or_remove_leftovers(&area, dest, profile_name)? {
        reporter.emit(Event::Recovered { message: note });
        if holds_build_state(dest) && !opts.force {
            return Err(Error::BuildStatePresent { dir: dest.clone() });
        }
    }
    // Cargo's lock on the existing profile dir, held from before the
    // staging dir is made until it has been swapped out, so a concurrent
    // cargo (rust-analyzer's `cargo check`, say) cannot change a file in
    // between (units are kept from it) nor run on the old state once the
    // seed has begun. With a donor's lock held, not waiting: a seed from
    // here into the donor, waiting the other way, would wait for ever.
    let dest_lock = match cargo_used(dest) {
        true => Some(lock_cargo(dest, chosen.donor.is_none(), reporter)?),
        false => None,
    };
    let staging = Staging::new(area.join(format!(
        ".cargo-seed-staging.{profile_name}.{}",
        std::process::id()
    )))?;
    let host_staging = Staging::new(ws.build_dir.join(format!(
        ".cargo-seed-staging.{profile_name}.host-{}",
        std::process::id()
    )))?;
    let stamp = freshness::file_system_now(&[&staging.0, &ws.root])
        .map_err(Error::io("read the clock of", &staging.0))?;
    Ok(Place {
        _seed_lock: seed_lock,
        staging,
        host_staging,
        stamp,
        dest_lock,
    })
}

/// Every unit's verdict, and how this machine's paths differ from CI's.
struct Judged {
    verdicts: BTreeMap<UnitId, Verdict>,
    moves: Moves,
    plan: relocate::Plan,
    with_incremental: bool,
}

impl Judged {
    /// The units to put in place: those reused, and the incremental state
    /// worth fetching.
    fn units<'a>(&'a self, manifest: &'a Manifest) -> impl Iterator<Item = &'a Unit> + 'a {
        selected(manifest, &self.verdicts, self.with_incremental)
    }
}

/// Stage "judge": every unit's verdict ([`freshness::judge`]), counted into
/// `outcome` and told (every unit's under `--dry-run`, else the units not
/// restored).
fn judge(
    ws: &Workspace,
    manifest: &Manifest,
    chosen: &Chosen,
    restoring: bool,
    outcome: &mut Outcome,
    reporter: &Reporter,
) -> Judged {
    let (verdicts, moves, plan) = freshness::judge(ws, manifest, &mut outcome.notes);
    let with_incremental = chosen.incremental.is_ok();
    tally(manifest, &verdicts, with_incremental, outcome);
    emit_verdicts(
        manifest,
        &verdicts,
        &chosen.incremental,
        !restoring,
        reporter,
    );
    Judged {
        verdicts,
        moves,
        plan,
        with_incremental,
    }
}

/// What the staging dirs hold once every unit is in.
struct Staged {
    /// A cross build's host units, unpacked in the host staging dir.
    host_units: BTreeMap<UnitId, Unpacked>,
    fetched: u64,
    cached: u64,
    copied: u64,
    kept: usize,
    times: WorkerTimes,
    notes: Vec<String>,
}

/// The time spent in each part of staging, summed over the units.
#[derive(Default)]
struct WorkerTimes {
    unpack: UnpackTimes,
    relocate: Duration,
    /// Checking unpacked dep-info against the recorded inputs.
    check: Duration,
    /// Copying units kept from the build dir.
    keep: Duration,
}

impl WorkerTimes {
    fn add(&mut self, other: &WorkerTimes) {
        let UnpackTimes {
            fetch,
            verify,
            decompress,
            write,
        } = other.unpack;
        self.unpack.fetch += fetch;
        self.unpack.verify += verify;
        self.unpack.decompress += decompress;
        self.unpack.write += write;
        self.relocate += other.relocate;
        self.check += other.check;
        self.keep += other.keep;
    }

    fn add_to(&self, times: &mut StageTimes) {
        times.fetch = self.unpack.fetch.as_secs_f64();
        times.verify = (self.unpack.verify + self.check).as_secs_f64();
        times.decompress = self.unpack.decompress.as_secs_f64();
        times.write = (self.unpack.write + self.keep).as_secs_f64();
        times.relocate = self.relocate.as_secs_f64();
    }
}

/// Stage "stage": every selected unit kept from the previous seed or
/// fetched, verified, unpacked and relocated into the staging dirs on all
/// cores, its dep-info checked; then the debugger maps and the state file a
/// later seed reads.
fn stage(
    ws: &Workspace,
    store: &dyn Store,
    opts: &RestoreOptions,
    chosen: &Chosen,
    place: &Place,
    judged: &Judged,
    reporter: &Reporter,
) -> Result<Staged, Error> {
    let found = &chosen.found;
    let manifest = &found.manifest;
    let old_state = read_state(&chosen.dest);
    let (staging, host_staging, stamp) = (&place.staging.0, &place.host_staging.0, place.stamp);
    let moves = &judged.moves;
    let mut units: Vec<&Unit> = judged.units(manifest).collect();
    // Largest first: the workers pull units in this order, and a large unit
    // started last would leave the other workers idle while it finishes.
    units.sort_by_key(|u| std::cmp::Reverse(u.blob.unpacked));
    let total: u64 = units.iter().map(|u| u.blob.size).sum();
    // What the blobs declare they unpack to: unpacking stops at that size.
    let declared = units
        .iter()
        .map(|u| u.blob.unpacked)
        .fold(0u64, u64::saturating_add);
    // A donor's units copied ahead already took their room.
    let ahead = chosen.donor.as_ref().map_or(0, |d| d.copied_ahead(&units));
    let room = free_room(
        declared.saturating_sub(ahead),
        units.len(),
        &ws.build_dir,
        staging,
    )?;
    let text = relocate::TextRewrite::new(moves, declared);
    let unmoved = Moves::default();
    let no_text = relocate::TextRewrite::new(&unmoved, 0);
    reporter.emit(Event::FetchStarted {
        units: units.len(),
        bytes: total,
    });
    // A donor's units have no blob digest to tell a kept unit by.
    let old_state = old_state.as_ref().filter(|old| {
        chosen.donor.is_none() && old.moves == moves.pairs() && old.layout == manifest.layout
    });
    let scripts = tracked::script_runs(manifest);
    let invalid = |e: tracked::Untracked| Error::InvalidManifest {
        store: source_name(store, chosen.donor.as_ref()),
        key: store::manifest_key(&found.commit.to_string(), &manifest.variant()),
        detail: e.to_string(),
    };
    let result = pool::map(&units, pool::threads().max(2), |unit| {
        let root: &Path = if unit.host { host_staging } else { staging };
        let mut times = WorkerTimes::default();
        let clock = Instant::now();
        let kept_unit = old_state
            .filter(|_| !unit.host)
            .and_then(|old| keep_from(old, unit, &chosen.dest, staging, stamp));
        let (unpacked, origin) = match kept_unit {
            // Kept files are as the previous seed left them: relocated for
            // the same paths already.
            Some(unpacked) => {
                // A kept build-script run may take this checkout's mtimes.
                let unpacked =
                    refingerprint(root, manifest.layout, unit, unpacked, &judged.plan, stamp)?;
                times.keep = clock.elapsed();
                (unpacked, None)
            }
            None => {
                let place = (root, manifest.layout);
                let limits = (stamp, &room);
                let (unpacked, from) = match &chosen.donor {
                    Some(donor) => {
                        let clock = Instant::now();
                        let copied = donor.copy_unit(unit, root, manifest.layout, stamp)?;
                        times.unpack.write += clock.elapsed();
                        (copied, Origin::Checkout)
                    }
                    None => fetch_one(store, opts.cache, unit, place, limits, &mut times.unpack)?,
                };
                let clock = Instant::now();
                // A donor's text files got this checkout's paths as they
                // were copied; mapping them again would map a path that
                // holds the donor's (`../app` in `../app-fix`) twice.
                let text = match from {
                    Origin::Checkout => &no_text,
                    _ => &text,
                };
                let unpacked = relocate_unit(
                    root,
                    manifest.layout,
                    unit,
                    unpacked,
                    text,
                    &judged.plan,
                    stamp,
                )?;
                times.relocate = clock.elapsed();
                (unpacked, Some(from))
            }
        };
        // Kept units too: the same blob may come with another manifest.
        let clock = Instant::now();
        tracked::dep_info(manifest, &scripts, unit, root, manifest.layout).map_err(invalid)?;
        times.check = clock.elapsed();
        reporter.emit(Event::Unit {
            id: unit.id.clone(),
            name: unit.name.clone(),
            kind: unit.kind,
            action: match origin {
                None => UnitAction::Kept,
                Some(_) => UnitAction::Fetched,
            },
            reason: None,
            bytes: unit.blob.size,
            from_cache: origin == Some(Origin::Cache),
        });
        Ok::<_, Error>((unpacked, origin, times))
    });
    reporter.emit(Event::FetchFinished);
    if let Some(trouble) = opts.cache.and_then(BlobCache::take_trouble) {
        reporter.emit(Event::CacheUnused {
            reason: format!("{trouble}: {}", trouble.source),
        });
    }
    // Before the workers' errors: a read that Ctrl-C stopped fails in
    // whatever way its reader reports it.
    if CANCEL.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
    let mut staged = Staged {
        host_units: BTreeMap::new(),
        fetched: 0,
        cached: 0,
        copied: 0,
        kept: 0,
        times: WorkerTimes::default(),
        notes: Vec::new(),
    };
    let mut state = State {
        commit: found.commit.to_string(),
        stamp_nanos: stamp
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
        moves: moves.pairs().to_vec(),
        layout: manifest.layout,
        units: BTreeMap::new(),
    };
    for (unit, (unpacked, origin, times)) in units.iter().zip(result?) {
        staged.times.add(&times);
        match origin {
            None => staged.kept += 1,
            Some(Origin::Checkout) => staged.copied += unit.blob.size,
            Some(from) => {
                staged.fetched += unit.blob.size;
                if from == Origin::Cache {
                    staged.cached += unit.blob.size;
                }
            }
        }
        if unit.host {
            staged.host_units.insert(unit.id.clone(), unpacked);
        } else {
            let blob = unit.blob.sha256.clone();
            state
                .units
                .insert(unit.id.clone(), UnitState { blob, unpacked });
        }
    }
    staged.notes = debugger_maps(ws, manifest, moves, staging, &chosen.dest)?;
    write_records(staging, &units, moves)?;
    let state_path = staging.join(STATE_FILE);
    let text = serde_json::to_vec(&state).expect("state serialises");
    fs::write(&state_path, text).map_err(Error::io("write", &state_path))?;
    Ok(staged)
}

/// Gives the restored units the rustc wrapper's records of the build they
/// come from, their paths this checkout's: what cargo runs here for the
/// same unit (its hash and fingerprint are the same). Without them, this
/// build dir would look as if it were not compiled through the wrapper to a
/// publish or a seed `--from` it.
fn write_records(staging: &Path, units: &[&Unit], moves: &Moves) -> Result<(), Error> {
    for unit in units.iter().filter(|u| !u.host) {
        let (Some(inv), Some((_, hash))) = (&unit.rustc, crate::cargo::unit_id::split(&unit.id))
        else {
            continue;
        };
        let here = crate::rustc::wrapper::Invocation {
            cwd: moves.map(&inv.cwd).unwrap_or_else(|| inv.cwd.clone()),
            args: inv.args.iter().map(|a| moves.map_text(a)).collect(),
            scheme: inv.scheme,
        };
        crate::rustc::wrapper::write_record(staging, hash, &here)
            .map_err(Error::io("write a rustc record in", staging))?;
    }
    Ok(())
}

/// Writes the debugger scripts that map the build machine's source paths
/// to this one's into `staging`, when paths differ; returns the notes that
/// say so.
fn debugger_maps(
    ws: &Workspace,
    manifest: &Manifest,
    moves: &Moves,
    staging: &Path,
    dest: &Path,
) -> Result<Vec<String>, Error> {
    let mut notes = Vec::new();
    let mut maps = moves.pairs().to_vec();
    if manifest.rustc_wrapper.is_some() {
        // The wrapper names the repository `.` in path crates' debug info.
        let repository = crate::rustc::wrapper::repository_root(&ws.root);
        maps.push((crate::rustc::wrapper::VIRTUAL_ROOT.into(), repository));
    }
    if maps.is_empty() {
        return Ok(notes);
    }
    let (gdb, lldb, left_out) = relocate::debugger_scripts(&maps);
    for (name, text) in [(GDB_SCRIPT, gdb), (LLDB_SCRIPT, lldb)] {
        let path = staging.join(name);
        fs::write(&path, text).map_err(Error::io("write", &path))?;
    }
    for from in left_out {
        notes.push(format!(
            "{} is left out of the debugger maps: its characters would be read as commands",
            from.display()
        ));
    }
    notes.push(format!(
        "reused code carries the build machine's paths in its debug info: \
         `gdb -x {0}` or `lldb -s {1}` maps them (in {2})",
        GDB_SCRIPT,
        LLDB_SCRIPT,
        dest.display()
    ));
    Ok(notes)
}

/// What the swap did.
struct Swapped {
    /// The profile dir now in place.
    dir: PathBuf,
    notes: Vec<String>,
    /// Seconds spent replaying incremental sessions, inside the swap.
    replay: f64,
}

/// Stage "swap": a cross build's host units joined to the host's profile
/// dir, then the staged profile dir renamed into place under cargo's
/// lock, and the incremental sessions replayed before that lock is let go.
fn swap(
    ws: &Workspace,
    chosen: &Chosen,
    place: Place,
    judged: &Judged,
    host_units: BTreeMap<UnitId, Unpacked>,
    outcome: &Outcome,
    reporter: &Reporter,
) -> Result<Swapped, Error> {
    let manifest = &chosen.found.manifest;
    let mut notes = Vec::new();
    // Before the swap: the incremental replays after it load proc-macros
    // from there. Units added for nothing, should the swap fail, are
    // harmless: cargo judges each by its own fingerprint.
    if !host_units.is_empty() {
        let added = merge_host_units(
            place.host_staging,
            manifest.layout,
            &chosen.host_dest,
            &host_units,
            reporter,
        )?;
        notes.push(format!(
            "{added} of the cross build's {} host units added to {} (the others were there)",
            host_units.len(),
            chosen.host_dest.display()
        ));
    }
    let mut replay_seconds = 0.0;
    let mut relocated = None;
    let stamp = place.stamp;
    place
        .staging
        .swap_into(&chosen.dest, place.dest_lock, reporter, |dest| {
            // After the swap, under cargo's lock: the replays must find the
            // dependencies at the paths the build will load them from.
            if chosen.incremental == Ok(true) && outcome.incremental > 0 {
                let clock = Instant::now();
                relocated = Some(replay(ws, chosen, dest, &judged.moves, stamp));
                replay_seconds = clock.elapsed().as_secs_f64();
            }
        })?;
    notes.extend(relocated);
    if let Some(info) = &chosen.rustc_info {
        give_rustc_info(&ws.build_dir, info);
    }
    Ok(Swapped {
        dir: chosen.dest.clone(),
        notes,
        replay: replay_seconds,
    })
}

/// Gives the build dir the cache of what cargo asked rustc, as the layout
/// probe's cargo wrote it with this machine's rustc and configuration, when
/// it has none: cargo then does not run rustc twice more before the first
/// build. Cargo keys the cache on the rustc, its wrapper and the flags, and
/// checks the key before it uses any of it, so a cache that does not fit is
/// only replaced. Written beside, then linked into place: never over a file
/// that is there, never half written where cargo reads it.
fn give_rustc_info(build_dir: &Path, info: &[u8]) {
    let dest = build_dir.join(crate::cargo::layout::probe::RUSTC_INFO);
    if dest.exists() {
        return;
    }
    let part = build_dir.join(format!(".cargo-seed-rustc-info.{}", std::process::id()));
    if fs::write(&part, info).is_ok() {
        let _ = fs::hard_link(&part, &dest);
    }
    let _ = fs::remove_file(&part);
}

/// Stage "replay": the restored incremental sessions pointed at this
/// checkout, on the profile dir in place; says how it went.
fn replay(
    ws: &Workspace,
    chosen: &Chosen,
    dest: &Path,
    moves: &Moves,
    stamp: SystemTime,
) -> String {
    let found = &chosen.found;
    relocate_incremental(ws, &found.manifest, dest, moves, stamp, chosen.runs_code)
}

/// What a seed decides before anything is downloaded, for a manifest
/// given as JSON: it is parsed, every field validated (against the commit
/// and variant it names itself), and every unit judged for `ws`; returns
/// how many units are reused and how many rebuilt. For `benches/verdicts.rs`,
/// which times these stages on synthetic manifests; not an interface.
#[doc(hidden)]
pub fn verdicts_of(ws: &Workspace, json: &[u8]) -> Result<(usize, usize), Error> {
    let invalid = |detail: String| Error::InvalidManifest {
        store: "(given)".into(),
        key: "(given)".into(),
        detail,
    };
    let manifest: crate::snapshot::manifest::Manifest =
        serde_json::from_slice(json).map_err(|e| invalid(e.to_string()))?;
    crate::snapshot::validate::manifest(&manifest, &manifest.commit, &manifest.variant())
        .map_err(|e| invalid(e.to_string()))?;
    let (verdicts, ..) = freshness::judge(ws, &manifest, &mut Vec::new());
    let reused = verdicts
        .values()
        .filter(|v| **v == freshness::Verdict::Reuse)
        .count();
    Ok((reused, verdicts.len() - reused))
}

/// Left free after unpacking, for cargo's own work.
const FREE_SPACE_MARGIN: u64 = 256 << 20;
/// Inodes left free after unpacking, for cargo's own work.
const FREE_INODES_MARGIN: u64 = 64 << 10;

/// The room `units` blobs that declare `needed` bytes may take on the file
/// system of `staging`: what it has free, less the margins kept for cargo.
/// Refused at once when the declared sizes do not fit, or no inode is left
/// for one file per unit; while unpacking, each file, directory and link
/// takes its cost from the room, so a snapshot cannot fill the disk
/// whatever its blobs hold.
fn free_room(needed: u64, units: usize, build_dir: &Path, staging: &Path) -> Result<Room, Error> {
    let Some((available, inodes)) = free_space(staging) else {
        return Ok(Room::unlimited());
    };
    if needed.saturating_add(FREE_SPACE_MARGIN) > available {
        return Err(Error::NoSpace {
            dir: build_dir.to_owned(),
            needed,
            available,
        });
    }
    let inodes = match inodes {
        Some(free) if (units as u64).saturating_add(FREE_INODES_MARGIN) > free => {
            return Err(Error::NoInodes {
                dir: build_dir.to_owned(),
                available: free,
            })
        }
        Some(free) => free - FREE_INODES_MARGIN,
        None => u64::MAX,
    };
    Ok(Room::new(available - FREE_SPACE_MARGIN, inodes))
}

/// Bytes and inodes an unprivileged user may still take on the file system
/// of `dir`; no inode count where the file system has no fixed number of
/// them (btrfs reports none in total).
fn free_space(dir: &Path) -> Option<(u64, Option<u64>)> {
    #[cfg(unix)]
    {
        let st = rustix::fs::statvfs(dir).ok()?;
        let inodes = (st.f_files > 0).then_some(st.f_favail);
        Some((st.f_bavail.saturating_mul(st.f_frsize), inodes))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}
