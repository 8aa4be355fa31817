//! `cargo seed`: fetch, verify and unpack the chosen snapshot into a staging
//! directory beside the build dir's profile directory, then swap it in.
//!
//! Until the swap, nothing the user had is touched: any failure (a damaged or
//! missing blob, a hostile entry, a full disk, Ctrl-C) removes the staging
//! directory and leaves the build dir exactly as it was.

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::cargo::workspace::{self, Workspace};
use crate::publish::observe as snapshot;
use crate::rustc::incremental;
use crate::rustc::toolchain::Toolchain;
use crate::snapshot::archive::{self, ArchiveError, Unpacked};
use crate::snapshot::manifest::{BakedRoot, Check, Manifest, Unit, UnitKind, Want};
use crate::snapshot::secrets;
use crate::snapshot::signing::TrustedKeys;
use crate::store::{blob_key, BlobCache, Store};
use crate::ui::{self, Ui};
use crate::{git, pool, Error};
use freshness::Verdict;
use relocate::Moves;
use resolve::Found;

pub mod freshness;
pub mod relocate;
pub mod resolve;

/// Set by the Ctrl-C handler; workers stop at the next entry.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// The record cargo-seed leaves in a profile dir it restored, so that a later
/// `--force` seed can keep units that are still exactly as unpacked.
const STATE_FILE: &str = ".cargo-seed.json";
/// Source-path maps for debuggers, written when paths differ from CI's.
const GDB_SCRIPT: &str = "cargo-seed-paths.gdb";
const LLDB_SCRIPT: &str = "cargo-seed-paths.lldb";

#[derive(Clone, Copy)]
pub struct RestoreOptions<'a> {
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

/// What a restore did (or, with `--dry-run`, would do).
#[derive(Debug)]
pub struct Outcome {
    pub commit: String,
    pub distance: usize,
    pub reused: usize,
    /// Units left for cargo to rebuild, with the reason.
    pub rebuilt: Vec<(String, String)>,
    pub incremental: usize,
    pub fetched_bytes: u64,
    /// The part of `fetched_bytes` read from the local blob cache.
    pub cached_bytes: u64,
    /// Units kept from the existing build dir instead of fetched.
    pub kept: usize,
    pub notes: Vec<String>,
    /// The other snapshots published with this one.
    pub published_with: Vec<crate::snapshot::manifest::Sibling>,
}

#[derive(Serialize, Deserialize, Default)]
struct State {
    commit: String,
    /// The mtime every restored file was stamped with, in nanoseconds.
    stamp_nanos: u128,
    /// The build machine's directories and this one's, as relocated.
    #[serde(default)]
    moves: Vec<(PathBuf, PathBuf)>,
    units: BTreeMap<String, UnitState>,
}

#[derive(Serialize, Deserialize)]
struct UnitState {
    blob: String,
    unpacked: Unpacked,
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

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
            let searched = format!("commit {} (from --commit {rev})", &id[..12]);
            resolve::nearest(store, &[(id, distance)], want, trust, searched)
        }
        None => {
            let head = git::resolve_commit(&ws.root, "HEAD")?;
            let ancestors = git::ancestors(&ws.root, &head, max_distance)?;
            let searched = format!(
                "{} commits from HEAD ({}) back to distance {max_distance}",
                ancestors.len(),
                &head[..12]
            );
            resolve::nearest(store, &ancestors, want, trust, searched)
        }
    }
}

pub fn want(ws: &Workspace, profile: &str, target: Option<&str>) -> Result<Want, Error> {
    let toolchain = Toolchain::detect(&ws.root)?;
    let triple = target.unwrap_or(&toolchain.host).to_owned();
    let env = |var: &str| std::env::var(var).ok();
    let rustc = incremental::rustc();
    let cfg = || crate::cargo::flags::rustc_cfg(&rustc, &triple);
    let flags = crate::cargo::flags::resolve(&ws.root, &ws.cargo_home, &triple, &env, &cfg);
    Ok(Want {
        flags,
        cross: target.is_some(),
        target: triple,
        toolchain,
        profile: profile.to_owned(),
        libc: crate::snapshot::manifest::detect_libc(),
    })
}

/// The directories recorded inputs are relative to, here.
fn roots(ws: &Workspace) -> freshness::Roots {
    let repository = git::toplevel(&ws.root).ok();
    freshness::Roots::new(
        &ws.root,
        repository.as_deref(),
        &ws.cargo_home,
        &ws.build_dir,
    )
}

/// Verdicts for every unit (what differs by content, what cargo reruns for
/// a watched variable whose value here is not CI's, what cannot be reused
/// at this checkout's paths), and how fingerprints are rewritten for them.
fn judge(
    ws: &Workspace,
    manifest: &Manifest,
    notes: &mut Vec<String>,
) -> (BTreeMap<String, Verdict>, Moves, relocate::Plan) {
    let home_moved = manifest.cargo_home != ws.cargo_home;
    let root_moved = manifest.workspace_root != ws.root;
    let repository = git::toplevel(&ws.root).ok();
    let moves = Moves::new(
        manifest,
        &ws.cargo_home,
        &ws.root,
        &ws.build_dir,
        repository.as_deref(),
    );
    // Fingerprints only change for units whose absolute source path lies
    // under a moved directory (registry and git crates under CARGO_HOME,
    // path packages outside the workspace), and for what depends on them.
    let needs_rewrite = manifest.units.iter().any(|u| {
        relocate::hashes_absolute_path(u, &manifest.workspace_root)
            && u.src_path.as_deref().and_then(|s| moves.map(s)).is_some()
    });
    let env = |var: &str| std::env::var_os(var);
    let plan = if needs_rewrite {
        relocate::plan(manifest, &moves, &env)
    } else {
        relocate::Plan::default()
    };
    if home_moved {
        notes.push(format!(
            "CARGO_HOME differs from the snapshot's ({}): {} fingerprints rewritten for it, {} units cannot be",
            manifest.cargo_home.display(),
            plan.rewrites.len(),
            plan.failed.len()
        ));
    }
    let mut marked = manifest.clone();
    for unit in &mut marked.units {
        let baked = unit.baked.iter().find(|b| match b.under {
            BakedRoot::Workspace => root_moved,
            BakedRoot::CargoHome => home_moved,
        });
        // Whatever the manifest says a unit is, one named like a package of
        // this workspace is only restored after its sources are compared.
        let unchecked_member = matches!(unit.check, Check::None)
            && unit.kind != UnitKind::Incremental
            && unit
                .id
                .rsplit_once('-')
                .is_some_and(|(package, _)| ws.members.iter().any(|m| m == package));
        // Cargo compares the watched values itself, but a unit it would rerun
        // is not worth fetching, and the summary should say why.
        let env_differs = unit
            .fingerprint
            .as_ref()
            .and_then(|f| secrets::local_values(&f.env, &env).err());
        // Cargo hashes the absolute directory of a path package outside the
        // workspace into its unit hash (and so into its file names and
        // `-C metadata`, and its dependents'): elsewhere it is another unit.
        let outside_moved = unit
            .package_id
            .as_deref()
            .is_some_and(|p| p.starts_with("path+"))
            && relocate::hashes_absolute_path(unit, &manifest.workspace_root)
            && unit
                .src_path
                .as_deref()
                .and_then(|s| moves.map(s))
                .is_some_and(|here| Some(here.as_path()) != unit.src_path.as_deref());
        let reason = if outside_moved {
            "it is a path package outside the workspace, and cargo hashes its absolute directory, \
             which differs here, into the unit's hash"
                .to_owned()
        } else if unchecked_member {
            "it is named like a package of this workspace, and the snapshot has no content check for it".to_owned()
        } else if let Some(why) = plan.failed.get(&unit.id) {
            why.to_string()
        } else if let Some(why) = env_differs {
            why.to_string()
        } else if let Some(b) = baked {
            format!("it embeds env!(\"{}\"), a path that differs here", b.var)
        } else {
            continue;
        };
        unit.check = Check::Unverifiable { reason };
    }
    let verdicts = freshness::evaluate(&marked, &roots(ws));
    (verdicts, moves, plan)
}

pub fn restore(
    ws: &Workspace,
    store: &dyn Store,
    opts: &RestoreOptions,
    ui: Ui,
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
    let signed = match &found.signer {
        Some(key) => format!(", signed by key {key}"),
        None => String::new(),
    };
    ui.status(
        "Resolved",
        format!(
            "{} (distance {} from HEAD, {} profile, {}{signed})",
            &found.commit[..12],
            found.distance,
            manifest.profile,
            ui::bytes(manifest.total_size())
        ),
    );
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
        ui.status("Note", why);
    }
    let with_incremental = incremental.is_ok();

    if opts.dry_run {
        let (verdicts, ..) = judge(ws, manifest, &mut outcome.notes);
        tally(manifest, &verdicts, with_incremental, &mut outcome);
        outcome.fetched_bytes = selected(manifest, &verdicts, with_incremental)
            .map(|u| u.blob.size)
            .sum();
        return Ok(outcome);
    }

    fs::create_dir_all(&ws.build_dir).map_err(io("create", &ws.build_dir))?;
    let lock_path = ws.build_dir.join(".cargo-seed.lock");
    // One seed at a time per build dir; opened without truncation so a
    // failed seed leaves even this file's mtime as it was.
    let _seed_lock = lock_file(&lock_path)?;
    fs::create_dir_all(&area).map_err(io("create", &area))?;
    if manifest.cross {
        recover_or_remove_leftovers(&ws.build_dir, &host_dest, profile_name)?;
    }
    if let Some(note) = recover_or_remove_leftovers(&area, &dest, profile_name)? {
        ui.status("Recovered", note);
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
        .map_err(io("read the clock of", &staging.0))?;
    let (verdicts, moves, plan) = judge(ws, manifest, &mut outcome.notes);
    tally(manifest, &verdicts, with_incremental, &mut outcome);

    // Cargo's lock on the existing profile dir, held from before units are
    // kept from it until it has been swapped out, so a concurrent cargo
    // (rust-analyzer's `cargo check`, say) cannot change a file in between.
    let dest_lock = if dest.join(".cargo-lock").exists() {
        Some(lock_cargo(&dest, ui)?)
    } else {
        None
    };
    let old_state = read_state(&dest);
    let units: Vec<&Unit> = selected(manifest, &verdicts, with_incremental).collect();
    let total: u64 = units.iter().map(|u| u.blob.size).sum();
    // What the blobs declare they unpack to (unpacking stops at that size),
    // against what the file system has: a snapshot cannot fill the disk.
    let needed = units
        .iter()
        .map(|u| u.blob.unpacked)
        .fold(0u64, u64::saturating_add);
    if let Some(available) = available_space(&staging.0) {
        if needed.saturating_add(FREE_SPACE_MARGIN) > available {
            return Err(Error::NoSpace {
                dir: ws.build_dir.clone(),
                needed,
                available,
            });
        }
    }
    let bar = ui.bytes_bar(total, "Fetching");
    let state = Mutex::new(State {
        commit: found.commit.clone(),
        stamp_nanos: stamp
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
        moves: moves.pairs().to_vec(),
        units: BTreeMap::new(),
    });
    let fetched = AtomicU64::new(0);
    let cached = AtomicU64::new(0);
    let kept = AtomicUsize::new(0);
    let old_state = old_state.filter(|old| old.moves == moves.pairs());
    let host_units = Mutex::new(BTreeMap::new());
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
        let unpacked = match kept_unit {
            // Kept files are as the previous seed left them: relocated for
            // the same paths already.
            Some(unpacked) => {
                kept.fetch_add(1, Ordering::Relaxed);
                unpacked
            }
            None => {
                let (unpacked, from) = fetch_one(store, opts.cache, unit, root, stamp)?;
                fetched.fetch_add(unit.blob.size, Ordering::Relaxed);
                if from == Origin::Cache {
                    cached.fetch_add(unit.blob.size, Ordering::Relaxed);
                }
                relocate_unit(root, unit, unpacked, &moves, &plan, stamp)?
            }
        };
        bar.inc(unit.blob.size);
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
    bar.finish_and_clear();
    if let Some(trouble) = opts.cache.and_then(BlobCache::take_trouble) {
        ui.detail(format!(
            "the local blob cache was not used in full: {trouble}: {}",
            trouble.source
        ));
    }
    result?;
    if CANCEL.load(Ordering::Relaxed) {
        return Err(Error::Interrupted);
    }
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
            fs::write(&path, text).map_err(io("write", &path))?;
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
    fs::write(&state_path, text).map_err(io("write", &state_path))?;
    let mut relocated = None;
    // Before the swap: the incremental replays after it load proc-macros
    // from there. Units added for nothing, should the swap fail, are
    // harmless: cargo judges each by its own fingerprint.
    let host_units = host_units.into_inner().unwrap();
    if !host_units.is_empty() {
        let added = merge_host_units(host_staging, &host_dest, &host_units, ui)?;
        outcome.notes.push(format!(
            "{added} of the cross build's {} host units added to {} (the others were there)",
            host_units.len(),
            host_dest.display()
        ));
    }
    staging.swap_into(&dest, dest_lock, ui, |dest| {
        // After the swap, under cargo's lock: the replays must find the
        // dependencies at the paths the build will load them from.
        if incremental == Ok(true) && outcome.incremental > 0 {
            relocated = Some(relocate_incremental(ws, manifest, dest, &moves, stamp));
        }
    })?;
    outcome.notes.extend(relocated);

    let rebuilt = outcome.rebuilt.len();
    let reasons: Vec<String> = outcome
        .rebuilt
        .iter()
        .take(3)
        .map(|(name, why)| format!("{name}: {why}"))
        .collect();
    let more = if rebuilt > 3 {
        format!("; {} more", rebuilt - 3)
    } else {
        String::new()
    };
    for note in &outcome.notes {
        ui.status("Note", note);
    }
    ui.status(
        "Seeded",
        format!(
            "{} (distance {}) into {}: {} units reused, {} to rebuild{}, {} incremental dirs, {} fetched{}{} in {:.2}s",
            &outcome.commit[..12],
            outcome.distance,
            dest.display(),
            outcome.reused,
            rebuilt,
            if rebuilt > 0 { format!(" ({}{more})", reasons.join("; ")) } else { String::new() },
            outcome.incremental,
            ui::bytes(outcome.fetched_bytes),
            if outcome.cached_bytes > 0 { format!(", {} of it from the local cache", ui::bytes(outcome.cached_bytes)) } else { String::new() },
            if outcome.kept > 0 { format!(", {} units kept from the build dir", outcome.kept) } else { String::new() },
            started.elapsed().as_secs_f64()
        ),
    );
    Ok(outcome)
}

/// Left free after unpacking, for cargo's own work.
const FREE_SPACE_MARGIN: u64 = 256 << 20;

/// Bytes an unprivileged user may still write on the file system of `dir`.
fn available_space(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let st = rustix::fs::statvfs(dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// The units to put in place: those reused, and all incremental state.
fn selected<'a>(
    manifest: &'a Manifest,
    verdicts: &'a BTreeMap<String, Verdict>,
    with_incremental: bool,
) -> impl Iterator<Item = &'a Unit> + 'a {
    manifest.units.iter().filter(move |u| {
        verdicts[&u.id] == Verdict::Reuse && (with_incremental || u.kind != UnitKind::Incremental)
    })
}

fn tally(
    manifest: &Manifest,
    verdicts: &BTreeMap<String, Verdict>,
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
        let why = format!("not in the snapshot: {}", w.why);
        outcome.rebuilt.push((w.name.clone(), why));
    }
}

/// Whether rustc would reuse the snapshot's incremental state here:
/// `Ok(relocate)` if so (`relocate`: its sessions must be pointed at this
/// checkout first), or why not. Incremental state is only worth fetching
/// where this machine compiles as CI did: in CI's own checkout, or at any
/// path when both ran rustc through the same rewrite of cargo-seed's wrapper.
fn incremental_use(ws: &Workspace, manifest: &Manifest) -> Result<bool, String> {
    let here = crate::setup::detect(&ws.root, &ws.cargo_home);
    let moved = manifest.workspace_root != ws.root
        || manifest.build_dir != ws.build_dir
        || manifest.cargo_home != ws.cargo_home;
    let fix = "run `cargo seed setup` once to compile through cargo-seed's rustc wrapper as CI did";
    match (manifest.rustc_wrapper, here.is_ours()) {
        (Some(crate::rustc::wrapper::SCHEME), true) => Ok(moved),
        (None, false) if !moved => Ok(false),
        (Some(crate::rustc::wrapper::SCHEME), false) => Err(format!(
            "the snapshot was compiled through cargo-seed's rustc wrapper and cargo here {}, \
             so rustc would not reuse its incremental state, which is not fetched: {fix}",
            match &here {
                crate::setup::Wrapper::Other { program, from } => {
                    format!("runs `{program}` instead (set in {from})")
                }
                _ => "does not use it".to_owned(),
            }
        )),
        (None, true) => Err(
            "this machine compiles through cargo-seed's rustc wrapper and CI did not, so rustc \
             would not reuse the snapshot's incremental state, which is not fetched \
             (hint: RUSTC_WRAPPER=cargo-seed for CI's build)"
                .to_owned(),
        ),
        (None, false) => Err(format!(
            "the snapshot's incremental state was made at another path without cargo-seed's rustc \
             wrapper, so rustc would recompile those crates from scratch here; it is not fetched \
             (hint: RUSTC_WRAPPER=cargo-seed for CI's build, and {})",
            &fix[..fix.find(" as CI").unwrap_or(fix.len())]
        )),
        (Some(other), _) => Err(format!(
            "the snapshot was compiled through rewrite scheme {other} of cargo-seed's rustc \
             wrapper and this cargo-seed has scheme {}: its incremental state is not fetched",
            crate::rustc::wrapper::SCHEME
        )),
    }
}

/// Points the restored incremental sessions of every workspace crate at this
/// checkout (see [`incremental`] and [`crate::rustc::depgraph`]), and says how it
/// went. Runs on the profile dir in place, after the swap: the replays load
/// the dependencies from where the build will.
fn relocate_incremental(
    ws: &Workspace,
    manifest: &Manifest,
    profile_dir: &Path,
    moves: &Moves,
    stamp: SystemTime,
) -> String {
    let candidates: Vec<&Unit> = manifest
        .units
        .iter()
        .filter(|u| u.kind == UnitKind::Compile && u.rustc.is_some() && u.src_path.is_some())
        .filter(|u| {
            let krate = u.rustc.as_ref().and_then(|r| crate_name(&r.args));
            krate.is_some_and(|k| has_incremental_dir(profile_dir, k))
        })
        .collect();
    let rustc = incremental::rustc();
    let scratch = ws
        .build_dir
        .join(format!(".cargo-seed-replay-{}", std::process::id()));
    let map = |p: &Path| moves.map(p);
    let results = pool::map(&candidates, pool::threads(), |unit| {
        let inv = unit.rustc.as_ref().expect("filtered");
        let src = unit.src_path.as_deref().expect("filtered");
        let cwd = moves.map(&inv.cwd).unwrap_or_else(|| inv.cwd.clone());
        let place = incremental::Place {
            cwd: &cwd,
            build_dir: &ws.build_dir,
            map: &map,
        };
        let dir = scratch.join(unit.id.replace('/', "_"));
        let result = incremental::replay(&rustc, inv, src, &place, &dir)
            .map_err(|e| e.to_string())
            .and_then(|replayed| relocate_sessions(profile_dir, unit, &replayed, stamp));
        Ok::<_, std::convert::Infallible>((unit.name.clone(), result))
    });
    let _ = fs::remove_dir_all(&scratch);
    let results = match results {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let done = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(s) if s.sessions > 0))
        .count();
    let mut failed = Vec::new();
    let mut unpatched = Vec::new();
    let (mut sessions, mut nodes) = (0, 0);
    for (name, result) in &results {
        match result {
            Ok(s) => {
                nodes += s.nodes;
                sessions += usize::from(s.nodes > 0);
                if let Some(why) = &s.paths_left {
                    unpatched.push(format!("{name}: {why}"));
                }
            }
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    let mut note = format!(
        "incremental state relocated for {done} of {} crates; dependency paths rewritten in {nodes} \
         nodes of {sessions} sessions",
        results.len()
    );
    if !failed.is_empty() {
        note.push_str(&format!(
            " (left as is, so rustc ignores it: {})",
            failed.join("; ")
        ));
    }
    if !unpatched.is_empty() {
        note.push_str(&format!(
            " (paths left as they are, so rustc recompiles what reads them: {})",
            unpatched.join("; ")
        ));
    }
    note
}

/// What relocating one crate's sessions did.
struct Relocated {
    sessions: usize,
    /// Path-query nodes rewritten.
    nodes: usize,
    /// Why path-query nodes were left alone, if they were.
    paths_left: Option<String>,
}

/// Writes the options hash rustc expects here into every session of the
/// replayed crate, and this machine's values of the path queries where a
/// session holds CI's.
fn relocate_sessions(
    profile_dir: &Path,
    unit: &Unit,
    replayed: &incremental::Replayed,
    stamp: SystemTime,
) -> Result<Relocated, String> {
    let ci = incremental::from_records(&unit.path_values).unwrap_or_default();
    let mut done = Relocated {
        sessions: 0,
        nodes: 0,
        paths_left: None,
    };
    for session in incremental::sessions(&profile_dir.join("incremental").join(&replayed.dir)) {
        let ok = incremental::patch(&session, &replayed.header).map_err(|e| e.to_string())?;
        if !ok {
            return Err("its session was written by another rustc or format".into());
        }
        done.sessions += 1;
        let patched = match (&replayed.paths, ci.is_empty()) {
            (_, true) => Err("the snapshot has no path query values for it".to_owned()),
            (Err(e), false) => Err(e.to_string()),
            (Ok(local), false) => {
                crate::rustc::depgraph::patch_paths(&session, &ci, local).map_err(|e| e.to_string())
            }
        };
        match patched {
            Ok(p) => done.nodes += p.patched,
            Err(why) => done.paths_left = Some(why),
        }
        let times = FileTimes::new().set_modified(stamp).set_accessed(stamp);
        if let Ok(f) = File::options().write(true).open(&session) {
            let _ = f.set_times(times);
        }
    }
    Ok(done)
}

fn crate_name(args: &[String]) -> Option<&str> {
    let i = args.iter().position(|a| a == "--crate-name")?;
    args.get(i + 1).map(String::as_str)
}

fn has_incremental_dir(profile_dir: &Path, krate: &str) -> bool {
    let prefix = format!("{krate}-");
    fs::read_dir(profile_dir.join("incremental"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
}

/// Rewrites what a fetched unit says about the build machine's paths: its
/// fingerprint (when the plan changed it), rustc's `*.d` files and a build
/// script's `output`. Returns the unpacked files with their new sizes.
fn relocate_unit(
    root: &Path,
    unit: &Unit,
    mut unpacked: Unpacked,
    moves: &Moves,
    plan: &relocate::Plan,
    stamp: SystemTime,
) -> Result<Unpacked, Error> {
    if moves.is_empty() {
        return Ok(unpacked);
    }
    if let Some(record) = plan.rewrites.get(&unit.id) {
        relocate::write_fingerprint(root, &unit.id, record, stamp).map_err(io(
            "rewrite the fingerprint in",
            &root.join(".fingerprint").join(&unit.id),
        ))?;
    }
    for (rel, size) in &mut unpacked.files {
        let is_text = rel.extension().is_some_and(|e| e == "d")
            || (rel.starts_with("build") && rel.file_name().is_some_and(|n| n == "output"));
        if !is_text || rel.starts_with(".fingerprint") {
            continue;
        }
        let path = root.join(&*rel);
        relocate::rewrite_text(&path, moves, stamp).map_err(io("rewrite", &path))?;
        *size = fs::metadata(&path).map_err(io("read", &path))?.len();
    }
    if plan.rewrites.contains_key(&unit.id) {
        for (rel, size) in &mut unpacked.files {
            if rel.starts_with(".fingerprint") {
                *size = fs::metadata(root.join(&*rel))
                    .map_err(io("read", rel))?
                    .len();
            }
        }
    }
    Ok(unpacked)
}

/// Where a unit's blob was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Cache,
    Store,
}

/// Whether unpacking failed because of the bytes read (or their reading),
/// so that another copy of the blob may succeed.
fn is_damage(e: &ArchiveError) -> bool {
    matches!(
        e,
        ArchiveError::Digest { .. } | ArchiveError::Corrupt { .. } | ArchiveError::Fetch { .. }
    )
}

/// Fetches and unpacks one unit: from the local cache if it holds the blob,
/// else from the store (caching what verifies). A copy that fails the
/// digest check is never used: a damaged cached copy is deleted and the blob
/// fetched from the store; a blob that arrives damaged from the store is
/// fetched once more, from nothing, before the seed fails.
fn fetch_one(
    store: &dyn Store,
    cache: Option<&BlobCache>,
    unit: &Unit,
    root: &Path,
    stamp: SystemTime,
) -> Result<(Unpacked, Origin), Error> {
    let owns = |path: &Path, is_dir: bool| snapshot::owns(&unit.id, path, is_dir);
    let sha256 = &unit.blob.sha256;
    let unpack = |reader| archive::unpack(reader, &unit.blob, root, &owns, stamp, &CANCEL);
    if let Some(cache) = cache {
        if let Some(local) = cache.get(sha256) {
            match unpack(local) {
                Ok(unpacked) => return Ok((unpacked, Origin::Cache)),
                Err(e) if is_damage(&e) => {
                    cache.remove(sha256);
                    remove_unit(root, &unit.id);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let attempt = || -> Result<Unpacked, Error> {
        let reader = store.get(&blob_key(sha256))?;
        let reader = match cache {
            Some(cache) => cache.tee(sha256, unit.blob.size, reader),
            None => reader,
        };
        Ok(unpack(reader)?)
    };
    let unpacked = match attempt() {
        Err(Error::Archive(e)) if is_damage(&e) => {
            remove_unit(root, &unit.id);
            attempt()
        }
        other => other,
    }?;
    Ok((unpacked, Origin::Store))
}

/// Removes whatever a failed unpack of unit `id` left in `root`.
fn remove_unit(root: &Path, id: &str) {
    for top in [".fingerprint", "build", "deps", "examples", "incremental"] {
        for entry in fs::read_dir(root.join(top)).into_iter().flatten().flatten() {
            let rel = Path::new(top).join(entry.file_name());
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let owned =
                snapshot::owns(id, &rel, false) || snapshot::owns(id, &rel.join("x"), false);
            if owned {
                let _ = if is_dir {
                    fs::remove_dir_all(entry.path())
                } else {
                    fs::remove_file(entry.path())
                };
            }
        }
    }
}

/// Copies a unit from the existing profile dir when a previous seed put the
/// same blob there and every file is still as it was unpacked (same size, the
/// seed's own stamp: cargo rewrites a file it rebuilds).
fn keep_from(
    old: &State,
    unit: &Unit,
    dest: &Path,
    staging: &Path,
    stamp: SystemTime,
) -> Option<Unpacked> {
    let prev = old.units.get(&unit.id)?;
    if prev.blob != unit.blob.sha256 || prev.unpacked.symlinks {
        return None;
    }
    let old_stamp =
        SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(old.stamp_nanos).ok()?);
    for (rel, size) in &prev.unpacked.files {
        let meta = fs::symlink_metadata(dest.join(rel)).ok()?;
        if !meta.is_file() || meta.len() != *size || meta.modified().ok()? != old_stamp {
            return None;
        }
    }
    let times = FileTimes::new().set_modified(stamp).set_accessed(stamp);
    let copy = |rel: &PathBuf| -> std::io::Result<()> {
        let to = staging.join(rel);
        fs::create_dir_all(to.parent().unwrap_or(staging))?;
        fs::copy(dest.join(rel), &to)?;
        File::options().write(true).open(&to)?.set_times(times)
    };
    for (i, (rel, _)) in prev.unpacked.files.iter().enumerate() {
        if copy(rel).is_err() {
            // Undo, so that fetching the blob instead starts from nothing
            // (and reports the real problem if it recurs, e.g. a full disk).
            for (done, _) in &prev.unpacked.files[..=i] {
                let _ = fs::remove_file(staging.join(done));
            }
            return None;
        }
    }
    Some(prev.unpacked.clone())
}

fn read_state(profile_dir: &Path) -> Option<State> {
    serde_json::from_slice(&fs::read(profile_dir.join(STATE_FILE)).ok()?).ok()
}

/// Whether a profile dir holds anything cargo built: any file but the lock.
fn holds_build_state(dir: &Path) -> bool {
    fn any_file(dir: &Path, top: bool) -> bool {
        let Ok(entries) = fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| match e.file_type() {
            Ok(t) if t.is_dir() => any_file(&e.path(), false),
            _ => !(top && e.file_name() == ".cargo-lock"),
        })
    }
    any_file(dir, true)
}

/// Deals with what a killed run left: staging directories are removed; a
/// profile dir that was moved aside but never replaced is put back, so a
/// crash between the two renames of a swap loses nothing.
fn recover_or_remove_leftovers(
    build_dir: &Path,
    dest: &Path,
    profile: &str,
) -> Result<Option<String>, Error> {
    let Ok(entries) = fs::read_dir(build_dir) else {
        return Ok(None);
    };
    let mut note = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!(".cargo-seed-staging.{profile}.")) {
            let _ = fs::remove_dir_all(entry.path());
        } else if name.starts_with(&format!(".cargo-seed-old.{profile}.")) {
            if dest.exists() {
                let _ = fs::remove_dir_all(entry.path());
            } else {
                fs::rename(entry.path(), dest).map_err(io("put back", dest))?;
                note = Some(format!(
                    "{} from an interrupted seed, as it was before it",
                    dest.display()
                ));
            }
        }
    }
    Ok(note)
}

/// Adds a cross build's staged host units (build scripts, proc-macros and
/// their dependencies) to the host's profile directory, under cargo's lock
/// on it. A unit it already holds is left as it is: the same id is the same
/// unit, and cargo judges what is there. If a move fails, what was added is
/// taken back. Returns how many units were added.
fn merge_host_units(
    staging: Staging,
    dest: &Path,
    units: &BTreeMap<String, Unpacked>,
    ui: Ui,
) -> Result<usize, Error> {
    fs::create_dir_all(dest).map_err(io("create", dest))?;
    let _lock = lock_cargo(dest, ui)?;
    let mut added: Vec<PathBuf> = Vec::new();
    let mut count = 0;
    let result = (|| -> Result<(), Error> {
        for (id, unpacked) in units {
            if dest.join(".fingerprint").join(id).exists() {
                continue;
            }
            // `.fingerprint/<id>`, `build/<id>`, `deps/<file>`: the unit's own.
            let mut tops: Vec<PathBuf> = unpacked
                .files
                .iter()
                .map(|(rel, _)| rel.components().take(2).collect())
                .collect();
            tops.sort();
            tops.dedup();
            if tops.iter().any(|t| dest.join(t).exists()) {
                continue;
            }
            for top in tops {
                let to = dest.join(&top);
                fs::create_dir_all(to.parent().unwrap_or(dest)).map_err(io("create", dest))?;
                fs::rename(staging.0.join(&top), &to).map_err(io("move into place", &to))?;
                added.push(to);
            }
            count += 1;
        }
        Ok(())
    })();
    if let Err(e) = result {
        for path in added {
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
        return Err(e);
    }
    Ok(count)
}

/// The staging directory; removed on drop unless swapped in.
struct Staging(PathBuf);

impl Staging {
    fn new(path: PathBuf) -> Result<Staging, Error> {
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).map_err(io("create", &path))?;
        Ok(Staging(path))
    }

    /// Replaces `dest` with the staged directory while holding cargo's lock
    /// on both, so a concurrent `cargo build` waits and then sees the whole
    /// restored state. On failure `dest` is put back as it was.
    /// Renames the staging dir to `dest`, then runs `after` on it while
    /// still holding cargo's lock on it.
    fn swap_into(
        self,
        dest: &Path,
        old_lock: Option<File>,
        ui: Ui,
        after: impl FnOnce(&Path),
    ) -> Result<(), Error> {
        let new_lock = lock_cargo(&self.0, ui)?;
        let aside = dest.with_file_name(format!(
            ".cargo-seed-old.{}.{}",
            dest.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let had_dest = dest.exists();
        if had_dest {
            fs::rename(dest, &aside).map_err(io("move aside", dest))?;
        }
        if let Err(e) = fs::rename(&self.0, dest) {
            if had_dest {
                if let Err(back) = fs::rename(&aside, dest) {
                    return Err(Error::Io {
                        op: "move back (the previous build state is intact at the path below)",
                        path: aside,
                        source: back,
                    });
                }
            }
            return Err(io("move into place", dest)(e));
        }
        after(dest);
        drop(new_lock);
        drop(old_lock);
        let _ = fs::remove_dir_all(&aside);
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Takes cargo's own exclusive lock on a profile dir (`.cargo-lock`),
/// saying so if another process holds it, as cargo does.
fn lock_cargo(profile_dir: &Path, ui: Ui) -> Result<File, Error> {
    let path = profile_dir.join(".cargo-lock");
    let file = open_lock(&path)?;
    if file.try_lock().is_err() {
        ui.status(
            "Blocking",
            format!("waiting for file lock on {}", profile_dir.display()),
        );
        file.lock().map_err(io("lock", &path))?;
    }
    Ok(file)
}

/// An exclusive advisory lock (flock), as cargo takes on its lock files.
fn lock_file(path: &Path) -> Result<File, Error> {
    let file = open_lock(path)?;
    file.lock().map_err(io("lock", path))?;
    Ok(file)
}

fn open_lock(path: &Path) -> Result<File, Error> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io("open", path))
}
