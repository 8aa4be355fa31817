//! Pointing restored incremental sessions at this checkout: rustc is run
//! once per workspace crate to learn the options hash and path queries it
//! would record here, and the sessions are patched to match. A session that
//! cannot be patched is left as it is, and rustc ignores it (never misreads).

use std::fs::{self, File, FileTimes};
use std::path::Path;
use std::time::SystemTime;

use super::relocate::Moves;
use crate::cargo::layout;
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
