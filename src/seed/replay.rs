//! Pointing restored incremental sessions at this checkout: rustc is run
//! once per workspace crate to learn the options hash and path queries it
//! would record here, and the sessions are patched to match. A session that
//! cannot be patched is left as it is, and rustc ignores it (never misreads).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, FileTimes};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use super::relocate::Moves;
use crate::cargo::layout;
use crate::cargo::unit_id::UnitId;
use crate::cargo::workspace::Workspace;
use crate::pool;
use crate::rustc::incremental;
use crate::snapshot::manifest::{Manifest, Unit, UnitKind};

/// Points the restored incremental sessions of every workspace crate at this
/// checkout (see [`incremental`] and [`crate::rustc::depgraph`]), and says how it
/// went. Runs on the profile dir in place, after the swap: the replays load
/// the dependencies from where the build will. Unless a trusted key signed
/// the snapshot (`signed`), they load only crate metadata of it, never a
/// library whose code would run.
pub(super) fn relocate_incremental(
    ws: &Workspace,
    manifest: &Manifest,
    profile_dir: &Path,
    moves: &Moves,
    stamp: SystemTime,
    signed: bool,
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
    let rustc = match crate::rustc::toolchain::sysroot_rustc(&ws.root) {
        Ok(rustc) => rustc,
        Err(e) => return format!("incremental state not relocated: {e}"),
    };
    let scratch = ws
        .build_dir
        .join(format!(".cargo-seed-replay-{}", std::process::id()));
    let libraries = match signed {
        true => incremental::Libraries::all(),
        false => incremental::Libraries::metadata_only(scratch.join("libs")),
    };
    let map = |p: &Path| moves.map(p);
    // Before the replays, which load the stand-ins as the build will load
    // the rebuilt libraries; removed once they are done.
    let stand_ins = StandIns::make(
        &rustc,
        ws,
        manifest,
        &candidates,
        &map,
        &scratch.join("stand-ins"),
        signed,
    );
    let results = pool::map(&candidates, pool::threads(), |unit| {
        let inv = unit.rustc.as_ref().expect("filtered");
        let src = unit.src_path.as_deref().expect("filtered");
        let cwd = moves.map(&inv.cwd).unwrap_or_else(|| inv.cwd.clone());
        let place = incremental::Place {
            cwd: &cwd,
            build_dir: &ws.build_dir,
            map: &map,
            libraries: &libraries,
        };
        let dir = scratch.join(unit.id.replace('/', "_"));
        let result = incremental::replay(&rustc, inv, src, &place, &dir)
            .map_err(NotRelocated::from)
            .and_then(|replayed| relocate_sessions(profile_dir, unit, &replayed, stamp));
        Ok::<_, std::convert::Infallible>((unit.name.clone(), result))
    });
    let stood_in = stand_ins.libraries;
    drop(stand_ins);
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
    if stood_in > 0 {
        note.push_str(&format!(
            ", with the paths of {stood_in} {} cargo rebuilds",
            if stood_in == 1 {
                "library"
            } else {
                "libraries"
            }
        ));
    }
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

/// Stand-ins for the libraries cargo will rebuild below the binaries and
/// test harnesses being relocated, where the build will write them.
///
/// Every codegen unit of a binary reads `used_crate_source` of every crate
/// it links, a value made of the libraries' paths alone. A library cargo
/// rebuilds keeps its unit hash, its `-C metadata` and so its file name, so
/// the path the build will read is known before the build; a stand-in (an
/// empty crate of the same name and `-C metadata`, compiled from the
/// library's recorded command line) at that path lets the replay compute the
/// value the build will. Why a wrong value cannot hide a change: the node
/// holds where the library's file is, not what it holds. The library's
/// contents reach its dependents through other queries (its crate hash,
/// its metadata), which are never rewritten, so a changed library still
/// recompiles what uses it. Were the build to write the library elsewhere,
/// the rewritten value would differ from the one rustc computes, and rustc
/// would recompile the codegen units that read it: slower, never wrong.
///
/// They are placed only where no file is, under cargo's lock (the seed
/// holds it), and removed before it is released. One left behind (the seed
/// killed in between) is harmless: its unit has no fingerprint, so cargo
/// compiles the library over it.
struct StandIns {
    /// How many libraries have a stand-in.
    libraries: usize,
    /// The files put in the build dir.
    placed: Vec<PathBuf>,
    /// The directories made for them, outermost first.
    made: Vec<PathBuf>,
}

impl StandIns {
    fn make(
        rustc: &Path,
        ws: &Workspace,
        manifest: &Manifest,
        candidates: &[&Unit],
        map: &(dyn Fn(&Path) -> Option<PathBuf> + Sync),
        scratch: &Path,
        signed: bool,
    ) -> StandIns {
        let mut made = StandIns {
            libraries: 0,
            placed: Vec::new(),
            made: Vec::new(),
        };
        let missing = missing_libraries(ws, manifest, candidates, map);
        // Dependencies come first; a library's level is one more than its
        // highest missing dependency's, and each level is compiled on all
        // cores once the one below is in place.
        let index: HashMap<&UnitId, usize> = missing
            .iter()
            .enumerate()
            .map(|(i, (u, ..))| (&u.id, i))
            .collect();
        let mut level = vec![0usize; missing.len()];
        for (i, (unit, ..)) in missing.iter().enumerate() {
            level[i] = unit
                .deps
                .iter()
                .filter_map(|d| index.get(d).filter(|&&j| j < i))
                .map(|&j| level[j] + 1)
                .max()
                .unwrap_or(0);
        }
        let top = level.iter().copied().max().unwrap_or(0);
        for at in 0..=top {
            let now: Vec<usize> = (0..missing.len()).filter(|&i| level[i] == at).collect();
            let compiled = pool::map(&now, pool::threads(), |&i| {
                let (unit, ..) = &missing[i];
                let (Some(inv), Some(src)) = (&unit.rustc, &unit.src_path) else {
                    return Ok::<_, std::convert::Infallible>(None);
                };
                let dir = scratch.join(i.to_string());
                // A mirror made now holds the stand-ins placed before.
                let libraries = match signed {
                    true => incremental::Libraries::all(),
                    false => incremental::Libraries::metadata_only(dir.join("libs")),
                };
                let cwd = map(&inv.cwd).unwrap_or_else(|| inv.cwd.clone());
                let place = incremental::Place {
                    cwd: &cwd,
                    build_dir: &ws.build_dir,
                    map,
                    libraries: &libraries,
                };
                // A library whose stand-in fails keeps its dependents' nodes
                // as CI's: rustc recompiles what reads them.
                Ok(incremental::stand_in(rustc, inv, src, &place, &dir).ok())
            });
            let compiled = match compiled {
                Ok(c) => c,
                Err(never) => match never {},
            };
            for (&i, written) in now.iter().zip(compiled) {
                let (_, lib, out_dir) = &missing[i];
                if let Some(written) = written {
                    made.place(&written, lib, out_dir, &ws.build_dir);
                }
            }
        }
        made
    }

    /// Links the stand-in's files named as the library's into `out_dir`,
    /// never over a file that is there.
    fn place(
        &mut self,
        written: &[PathBuf],
        lib: &incremental::Library,
        out_dir: &Path,
        build_dir: &Path,
    ) {
        let new_dirs: Vec<PathBuf> = out_dir
            .ancestors()
            .take_while(|d| d.starts_with(build_dir) && *d != build_dir && !d.exists())
            .map(Path::to_owned)
            .collect();
        // Below the build dir by what the file system says, links
        // included: the part that is there before anything is made, and
        // all of it after.
        let inside = |dir: &Path| {
            fs::canonicalize(dir)
                .ok()
                .zip(fs::canonicalize(build_dir).ok())
                .is_some_and(|(d, b)| d.starts_with(b))
        };
        let there = out_dir.ancestors().find(|d| d.exists());
        if !there.is_some_and(inside) || fs::create_dir_all(out_dir).is_err() {
            return;
        }
        self.made.extend(new_dirs.into_iter().rev());
        if !inside(out_dir) {
            return;
        }
        let placed = self.placed.len();
        for file in written {
            let Some(name) = file.file_name() else {
                continue;
            };
            if !lib.files.iter().any(|f| name == f.as_str()) {
                continue;
            }
            let dest = out_dir.join(name);
            if fs::hard_link(file, &dest).is_ok() {
                self.placed.push(dest);
            }
        }
        self.libraries += usize::from(self.placed.len() > placed);
    }
}

impl Drop for StandIns {
    fn drop(&mut self) {
        for file in &self.placed {
            let _ = fs::remove_file(file);
        }
        for dir in self.made.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// The libraries below the binaries and test harnesses among `candidates`
/// that are not in the build dir (cargo rebuilds them), each with its
/// directory here, dependencies before their dependents.
fn missing_libraries<'m>(
    ws: &Workspace,
    manifest: &'m Manifest,
    candidates: &[&'m Unit],
    map: &dyn Fn(&Path) -> Option<PathBuf>,
) -> Vec<(&'m Unit, incremental::Library, PathBuf)> {
    let by_id: HashMap<&UnitId, &Unit> = manifest.units.iter().map(|u| (&u.id, u)).collect();
    let roots = candidates.iter().filter(|u| {
        u.rustc
            .as_ref()
            .is_some_and(incremental::reads_dependency_paths)
    });
    // Depth first, each unit after its dependencies; no recursion, as a
    // manifest's chain of units can be long.
    let mut seen: HashSet<&UnitId> = HashSet::new();
    let mut order = Vec::new();
    let mut stack: Vec<(&Unit, bool)> = roots.map(|u| (*u, false)).collect();
    while let Some((unit, expanded)) = stack.pop() {
        if expanded {
            order.push(unit);
            continue;
        }
        if !seen.insert(&unit.id) {
            continue;
        }
        stack.push((unit, true));
        for dep in &unit.deps {
            if let Some(d) = by_id.get(dep).filter(|d| !seen.contains(&d.id)) {
                stack.push((d, false));
            }
        }
    }
    order
        .into_iter()
        .filter(|u| u.kind == UnitKind::Compile && u.src_path.is_some())
        .filter_map(|u| {
            let lib = incremental::library(u.rustc.as_ref()?)?;
            let out_dir = map(&lib.out_dir).unwrap_or_else(|| lib.out_dir.clone());
            let plain = out_dir.is_absolute()
                && out_dir
                    .components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
            let missing = !out_dir.join(&lib.files[0]).exists();
            (plain && missing && out_dir.starts_with(&ws.build_dir)).then_some((u, lib, out_dir))
        })
        .collect()
}

/// What relocating one crate's sessions did.
pub(super) struct Relocated {
    sessions: usize,
    /// Path-query nodes rewritten.
    nodes: usize,
    /// Why path-query nodes were left alone, if they were.
    paths_left: Option<PathsLeft>,
}

/// Why a crate's sessions were left as they are (rustc then ignores them).
#[derive(Debug, thiserror::Error)]
pub(super) enum NotRelocated {
    #[error(transparent)]
    Replay(#[from] incremental::ReplayError),
    #[error("{0}")]
    Session(std::io::Error),
    #[error("its session was written by another rustc or format")]
    OtherFormat,
}

/// Why a session's path-query nodes keep CI's values (rustc recompiles what
/// reads them).
#[derive(Debug, thiserror::Error)]
pub(super) enum PathsLeft {
    #[error("the snapshot has no path query values for it")]
    NoneRecorded,
    #[error("{0}")]
    NotReplayed(String),
    #[error(transparent)]
    Refused(#[from] crate::rustc::depgraph::Refused),
    #[error(
        "{0}: cargo-seed runs no code of a snapshot that no trusted key signed \
         (sign snapshots to relocate them: `cargo seed keygen`)"
    )]
    Unsigned(String),
}

/// Writes the options hash rustc expects here into every session of the
/// replayed crate, and this machine's values of the path queries where a
/// session holds CI's.
pub(super) fn relocate_sessions(
    profile_dir: &Path,
    unit: &Unit,
    replayed: &incremental::Replayed,
    stamp: SystemTime,
) -> Result<Relocated, NotRelocated> {
    let ci = incremental::from_records(&unit.path_values).unwrap_or_default();
    let mut done = Relocated {
        sessions: 0,
        nodes: 0,
        paths_left: None,
    };
    for session in incremental::sessions(&profile_dir.join(layout::INCREMENTAL).join(&replayed.dir))
    {
        let ok = incremental::patch(&session, &replayed.header).map_err(NotRelocated::Session)?;
        if !ok {
            return Err(NotRelocated::OtherFormat);
        }
        done.sessions += 1;
        let patched = match (&replayed.paths, ci.is_empty()) {
            (_, true) => Err(PathsLeft::NoneRecorded),
            (Err(e), false) => Err(PathsLeft::NotReplayed(e.to_string())),
            (Ok(local), false) => {
                crate::rustc::depgraph::patch_paths(&session, &local.layout, &ci, &local.values)
                    .map_err(PathsLeft::from)
            }
        };
        match patched {
            Ok(p) => done.nodes += p.patched,
            Err(why) => done.paths_left = Some(why),
        }
        if done.paths_left.is_none() {
            done.paths_left = unsigned_gap(&replayed.withheld);
        }
        let times = FileTimes::new().set_modified(stamp).set_accessed(stamp);
        if let Ok(f) = File::options().write(true).open(&session) {
            let _ = f.set_times(times);
        }
    }
    Ok(done)
}

/// Why some path values of a replay of an unsigned snapshot are unknown.
fn unsigned_gap(withheld: &incremental::Withheld) -> Option<PathsLeft> {
    match withheld {
        incremental::Withheld::Nothing => None,
        incremental::Withheld::Crates(names) => Some(PathsLeft::Unsigned(format!(
            "the paths of {} are left, as loading {} would run {}",
            names.join(", "),
            if names.len() == 1 { "it" } else { "them" },
            if names.len() == 1 {
                "its code"
            } else {
                "their code"
            },
        ))),
        incremental::Withheld::All => Some(PathsLeft::Unsigned(
            "its dependency paths are left, as a dependency of it uses a proc-macro, \
             whose loading would run its code"
                .to_owned(),
        )),
    }
}

pub(super) fn crate_name(args: &[String]) -> Option<&str> {
    let i = args.iter().position(|a| a == "--crate-name")?;
    args.get(i + 1).map(String::as_str)
}

pub(super) fn has_incremental_dir(profile_dir: &Path, krate: &str) -> bool {
    let prefix = format!("{krate}-");
    fs::read_dir(profile_dir.join(layout::INCREMENTAL))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
}
