//! `cargo seed`: fetch, verify and unpack the chosen snapshot into a staging
//! directory beside the build dir's profile directory, then swap it in.
//!
//! Until the swap, nothing the user had is touched: any failure (a damaged or
//! missing blob, a hostile entry, a full disk, Ctrl-C) removes the staging
//! directory and leaves the build dir exactly as it was.

use std::collections::BTreeMap;
use std::fs::{self};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use crate::cargo::workspace::{self, Workspace};
use crate::report::{Event, Reporter, UnitAction};
use crate::snapshot::archive::Room;
use crate::snapshot::manifest::Unit;
use crate::snapshot::signing::TrustedKeys;
use crate::snapshot::tracked;
use crate::store::{self, BlobCache, Store};
use crate::{pool, Error};
pub use cancel::CANCEL;
use fetch::{fetch_one, keep_from, refingerprint, relocate_unit, Origin};
pub use outcome::Outcome;
pub use plan::{choose, rebuilt_list, want};
use plan::{emit_verdicts, incremental_use, judge, selected, tally};
use replay::relocate_incremental;
use swap::{
    cargo_used, holds_build_state, lock_cargo, lock_file, merge_host_units, read_state,
    recover_or_remove_leftovers, Staging, State, UnitState, STATE_FILE,
};

mod cancel;
mod fetch;
pub mod freshness;
mod outcome;
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
}

pub fn restore(
    ws: &Workspace,
    store: &dyn Store,
    opts: &RestoreOptions,
    reporter: &Reporter,
) -> Result<Outcome, Error> {
    let started = Instant::now();
    let want = want(ws, opts.profile, opts.target)?;
    let found = choose(
        ws,
        store,
        &want,
        opts.trusted,
        opts.commit,
        opts.max_distance,
    )?;
    let manifest = &found.manifest;
    reporter.emit(Event::Resolved {
        commit: found.commit.clone(),
        distance: found.distance,
        store: store.location(),
        variant: manifest.variant(),
        profile: manifest.profile.clone(),
        target: manifest.target.clone(),
        bytes: manifest.total_size(),
        signed_by: found.signer.as_ref().map(|key| key.to_string()),
    });
    let profile_name = workspace::profile_dir_name(opts.profile);
    // A cross build's units live under the target's directory, its host
    // units (build scripts, proc-macros) in the host's profile directory.
    let host_dest = ws.profile_build_dir(opts.profile);
    let dest = match opts.target {
        Some(target) => ws.build_dir.join(target).join(profile_name),
        None => host_dest.clone(),
    };
    let area = dest.parent().unwrap_or(&ws.build_dir).to_owned();
    let has_state = holds_build_state(&dest);
    if has_state && !opts.force && !opts.dry_run {
        return Err(Error::BuildStatePresent { dir: dest });
    }

    let mut outcome = Outcome {
        commit: found.commit.clone(),
        distance: found.distance,
        reused: 0,
        rebuilt: Vec::new(),
        incremental: 0,
        fetched_bytes: 0,
        cached_bytes: 0,
        kept: 0,
        notes: Vec::new(),
        published_with: manifest.published_with.clone(),
    };

    // Told before anything is downloaded: incremental state that rustc
    // would not reuse here is not fetched at all.
    let incremental = incremental_use(ws, manifest);
    if let Err(why) = &incremental {
        reporter.emit(Event::Note {
            message: why.to_string(),
        });
    }
    let with_incremental = incremental.is_ok();
    if let Some(note) = sources::unpack_missing(ws, manifest) {
        reporter.emit(Event::Note { message: note });
    }

    if opts.dry_run {
        let (verdicts, ..) = judge(ws, manifest, &mut outcome.notes);
        tally(manifest, &verdicts, with_incremental, &mut outcome);
        emit_verdicts(manifest, &verdicts, &incremental, true, reporter);
        outcome.fetched_bytes = selected(manifest, &verdicts, with_incremental)
            .map(|u| u.blob.size)
            .sum();
        return Ok(outcome);
    }

    fs::create_dir_all(&ws.build_dir).map_err(Error::io("create", &ws.build_dir))?;
    let lock_path = ws.build_dir.join(".cargo-seed.lock");
    // One seed at a time per build dir; opened without truncation so a
    // failed seed leaves even this file's mtime as it was.
    let _seed_lock = lock_file(&lock_path)?;
    fs::create_dir_all(&area).map_err(Error::io("create", &area))?;
    if manifest.cross {
        recover_or_remove_leftovers(&ws.build_dir, &host_dest, profile_name)?;
    }
    if let Some(note) = recover_or_remove_leftovers(&area, &dest, profile_name)? {
        reporter.emit(Event::Recovered { message: note });
        if holds_build_state(&dest) && !opts.force {
            return Err(Error::BuildStatePresent { dir: dest });
        }
    }

    let staging = Staging::new(area.join(format!(
        ".cargo-seed-staging.{profile_name}.{}",
        std::process::id()
    )))?;
    // Where a cross build's host units wait until they join the host's
    // profile directory.
    let host_staging = Staging::new(ws.build_dir.join(format!(
        ".cargo-seed-staging.{profile_name}.host-{}",
        std::process::id()
    )))?;
    // The stamp is taken before any input is compared: see file_system_now.
    let stamp = freshness::file_system_now(&[&staging.0, &ws.root])
        .map_err(Error::io("read the clock of", &staging.0))?;
    let (verdicts, moves, plan) = judge(ws, manifest, &mut outcome.notes);
    tally(manifest, &verdicts, with_incremental, &mut outcome);
    emit_verdicts(manifest, &verdicts, &incremental, false, reporter);

    // Cargo's lock on the existing profile dir, held from before units are
    // kept from it until it has been swapped out, so a concurrent cargo
    // (rust-analyzer's `cargo check`, say) cannot change a file in between.
    let dest_lock = if cargo_used(&dest) {
        Some(lock_cargo(&dest, reporter)?)
    } else {
        None
    };
    let old_state = read_state(&dest);
    let units: Vec<&Unit> = selected(manifest, &verdicts, with_incremental).collect();
    let total: u64 = units.iter().map(|u| u.blob.size).sum();
    // What the blobs declare they unpack to: unpacking stops at that size.
    let declared = units
        .iter()
        .map(|u| u.blob.unpacked)
        .fold(0u64, u64::saturating_add);
    let room = free_room(declared, units.len(), &ws.build_dir, &staging.0)?;
    let text = relocate::TextRewrite::new(&moves, declared);
    reporter.emit(Event::FetchStarted {
        units: units.len(),
        bytes: total,
    });
    let state = Mutex::new(State {
        commit: found.commit.to_string(),
        stamp_nanos: stamp
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
        moves: moves.pairs().to_vec(),
        layout: manifest.layout,
        units: BTreeMap::new(),
    });
    let fetched = AtomicU64::new(0);
    let cached = AtomicU64::new(0);
    let kept = AtomicUsize::new(0);
    let old_state =
        old_state.filter(|old| old.moves == moves.pairs() && old.layout == manifest.layout);
    let host_units = Mutex::new(BTreeMap::new());
    let scripts = tracked::script_runs(manifest);
    let result = pool::map(&units, pool::threads().max(2), |unit| {
        let root = if unit.host {
            &host_staging.0
        } else {
            &staging.0
        };
        let kept_unit = old_state
            .as_ref()
            .filter(|_| !unit.host)
            .and_then(|old| keep_from(old, unit, &dest, &staging.0, stamp));
        let (unpacked, action, from_cache) = match kept_unit {
            // Kept files are as the previous seed left them: relocated for
            // the same paths already.
            Some(unpacked) => {
                kept.fetch_add(1, Ordering::Relaxed);
                let unpacked = refingerprint(root, manifest.layout, unit, unpacked, &plan, stamp)?;
                (unpacked, UnitAction::Kept, false)
            }
            None => {
                let (unpacked, from) = fetch_one(
                    store,
                    opts.cache,
                    unit,
                    (root, manifest.layout),
                    stamp,
                    &room,
                )?;
                fetched.fetch_add(unit.blob.size, Ordering::Relaxed);
                if from == Origin::Cache {
                    cached.fetch_add(unit.blob.size, Ordering::Relaxed);
                }
                let unpacked =
                    relocate_unit(root, manifest.layout, unit, unpacked, &text, &plan, stamp)?;
                (unpacked, UnitAction::Fetched, from == Origin::Cache)
            }
        };
        // Kept units too: the same blob may come with another manifest.
        tracked::dep_info(manifest, &scripts, unit, root, manifest.layout).map_err(|e| {
            Error::InvalidManifest {
                store: store.location(),
                key: store::manifest_key(&found.commit.to_string(), &manifest.variant()),
                detail: e.to_string(),
            }
        })?;
        reporter.emit(Event::Unit {
            id: unit.id.clone(),
            name: unit.name.clone(),
            kind: unit.kind,
            action,
            reason: None,
            bytes: unit.blob.size,
            from_cache,
        });
        if unit.host {
            host_units.lock().unwrap().insert(unit.id.clone(), unpacked);
            return Ok(());
        }
        state.lock().unwrap().units.insert(
            unit.id.clone(),
            UnitState {
                blob: unit.blob.sha256.clone(),
                unpacked,
            },
        );
        Ok::<_, Error>(())
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
    result?;
    outcome.fetched_bytes = fetched.into_inner();
    outcome.cached_bytes = cached.into_inner();
    outcome.kept = kept.into_inner();

    let mut maps = moves.pairs().to_vec();
    if manifest.rustc_wrapper.is_some() {
        // The wrapper names the repository `.` in path crates' debug info.
        let repository = crate::rustc::wrapper::repository_root(&ws.root);
        maps.push((crate::rustc::wrapper::VIRTUAL_ROOT.into(), repository));
    }
    if !maps.is_empty() {
        let (gdb, lldb, left_out) = relocate::debugger_scripts(&maps);
        for (name, text) in [(GDB_SCRIPT, gdb), (LLDB_SCRIPT, lldb)] {
            let path = staging.0.join(name);
            fs::write(&path, text).map_err(Error::io("write", &path))?;
        }
        for from in left_out {
            outcome.notes.push(format!(
                "{} is left out of the debugger maps: its characters would be read as commands",
                from.display()
            ));
        }
        outcome.notes.push(format!(
            "reused code carries the build machine's paths in its debug info: \
             `gdb -x {0}` or `lldb -s {1}` maps them (in {2})",
            GDB_SCRIPT,
            LLDB_SCRIPT,
            dest.display()
        ));
    }
    let state_path = staging.0.join(STATE_FILE);
    let text = serde_json::to_vec(&state.into_inner().unwrap()).expect("state serialises");
    fs::write(&state_path, text).map_err(Error::io("write", &state_path))?;
    let mut relocated = None;
    // Before the swap: the incremental replays after it load proc-macros
    // from there. Units added for nothing, should the swap fail, are
    // harmless: cargo judges each by its own fingerprint.
    let host_units = host_units.into_inner().unwrap();
    if !host_units.is_empty() {
        let added = merge_host_units(
            host_staging,
            manifest.layout,
            &host_dest,
            &host_units,
            reporter,
        )?;
        outcome.notes.push(format!(
            "{added} of the cross build's {} host units added to {} (the others were there)",
            host_units.len(),
            host_dest.display()
        ));
    }
    staging.swap_into(&dest, dest_lock, reporter, |dest| {
        // After the swap, under cargo's lock: the replays must find the
        // dependencies at the paths the build will load them from.
        if incremental == Ok(true) && outcome.incremental > 0 {
            relocated = Some(relocate_incremental(
                ws,
                manifest,
                dest,
                &moves,
                stamp,
                found.signer.is_some(),
            ));
        }
    })?;
    outcome.notes.extend(relocated);

    for note in &outcome.notes {
        reporter.emit(Event::Note {
            message: note.clone(),
        });
    }
    reporter.emit(Event::Seeded {
        commit: outcome.commit.clone(),
        distance: outcome.distance,
        dir: dest.display().to_string(),
        reused: outcome.reused,
        rebuilt: rebuilt_list(&outcome),
        incremental: outcome.incremental,
        fetched_bytes: outcome.fetched_bytes,
        cached_bytes: outcome.cached_bytes,
        kept: outcome.kept,
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(outcome)
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
    let (verdicts, ..) = judge(ws, &manifest, &mut Vec::new());
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
