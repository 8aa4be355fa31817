//! What goes into one snapshot: for every live unit, its fingerprint, the
//! inputs a seed compares, the machine paths it embeds and the path-query
//! values of its incremental state; and which units are withheld (those
//! that read a secret, and everything built from them).

use crate::cargo::unit_id;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::cargo::layout::{self, Layout};
use crate::cargo::unit_id::UnitId;
use crate::cargo::workspace::Workspace;
use crate::cargo::{depinfo, fingerprint};
use crate::pool;
use crate::report::{Event, Reporter};
use crate::snapshot::inputs::Roots;
use crate::snapshot::manifest::{Blob, Check, Unit, UnitKind, Withheld, WithheldWhy};
use crate::snapshot::secrets::{self, SecretNames};
use crate::Error;

use super::{check, observe};

/// A unit to pack: its record without the blob, and its files.
pub(super) struct Job {
    pub(super) unit: Unit,
    pub(super) members: Vec<PathBuf>,
}

/// What to pack, and what not to.
pub(super) struct Planned {
    pub(super) jobs: Vec<Job>,
    pub(super) withheld: Vec<Withheld>,
    pub(super) native_cpu: bool,
    /// The distinct rustflags the compile units' fingerprints record.
    pub(super) rustflags: BTreeSet<Vec<String>>,
    /// Of the published units' fingerprints, how many cargo-seed reproduces.
    pub(super) reproduced: usize,
    pub(super) recorded: usize,
}

/// Turns the live units into pack jobs (files, dependency edges, checks,
/// fingerprints without environment values), leaving out units that read a
/// secret and everything built from them.
pub(super) fn plan(
    ws: &Workspace,
    roots: &Roots,
    dirs: &UnitDirs,
    live: &observe::LiveBuild,
    names: &SecretNames,
) -> Result<Planned, Error> {
    let outputs = &live.outputs_by_hash;
    let live = &live.units;
    let mut fingerprints = HashMap::new();
    let mut id_of_hash: HashMap<u64, &str> = HashMap::new();
    for (id, unit) in live {
        let fp = fingerprint::read_fingerprint(dirs.of(unit.host), dirs.layout, id)?;
        id_of_hash.insert(fp.hash, id);
        fingerprints.insert(id.clone(), fp);
    }
    let mut jobs = Vec::new();
    let mut secret_readers = BTreeMap::new();
    let mut path_crates = HashSet::new();
    // A cross build passes them to the target's units only.
    let rustflags = live
        .iter()
        .filter(|(_, u)| u.kind == UnitKind::Compile && !u.host)
        .map(|(id, _)| fingerprints[id].json.rustflags.clone())
        .collect();
    let native_cpu = fingerprints.values().any(|fp| {
        fp.json
            .rustflags
            .iter()
            .any(|f| f.contains("target-cpu=native"))
    });
    for (id, unit) in live {
        let fp = &fingerprints[id];
        let profile_dir = dirs.of(unit.host);
        let mut deps = Vec::new();
        for (_, name, _, hash) in &fp.json.deps {
            match id_of_hash.get(hash) {
                Some(dep) => deps.push(UnitId::from(*dep)),
                // A dependency cargo-seed did not find among the live units:
                // name it so the unit is rebuilt rather than trusted.
                None => deps.push(format!("{name}-{hash:016x}").into()),
            }
        }
        let rel = |dir: &Path| dir.strip_prefix(&ws.build_dir).unwrap_or(dir).to_owned();
        let produced: Vec<PathBuf> = deps
            .iter()
            .filter_map(|d| live.get(d.as_str()).map(|u| (d, u)))
            .filter(|(_, u)| u.kind == UnitKind::RunBuildScript)
            .map(|(d, u)| rel(dirs.of(u.host)).join(dirs.layout.build_script_dir(d)))
            .collect();
        let check = check::unit_check(unit, fp, roots, &produced)?;
        // A cross build's incremental state is published for the target's
        // crates; the host's stay with the host build's snapshot.
        if unit.kind == UnitKind::Compile
            && crate::cargo::is_path_package(&unit.package_id)
            && !unit.host
        {
            path_crates.insert(unit.crate_name.clone());
        }
        let members = dirs.layout.unit_members(profile_dir, id, outputs);
        let rustc_env = rustc_dep_info(profile_dir, dirs.layout, &members)
            .map(|text| depinfo::rustc_env_deps(&text))
            .unwrap_or_default();
        let baked = check::baked_paths(&rustc_env, &ws.root, &ws.cargo_home, &ws.build_dir);
        let secret = match check::recorded_env(fp, &ws.build_dir) {
            None => Some(WithheldWhy::Unreadable),
            Some(env) => {
                let all = env.iter().chain(&rustc_env);
                secrets::secret_read(all.map(|(k, v)| (k.as_str(), v.as_deref())), names).map(
                    |var| WithheldWhy::Secret {
                        var: var.to_owned(),
                    },
                )
            }
        };
        if let Some(why) = secret {
            secret_readers.insert(id.clone(), why);
        }
        jobs.push(Job {
            unit: Unit {
                id: id.as_str().into(),
                name: unit.name.clone(),
                kind: unit.kind,
                host: unit.host,
                package_id: Some(unit.package_id.clone()),
                blob: Blob {
                    sha256: String::new(),
                    size: 0,
                    unpacked: 0,
                },
                deps,
                check,
                baked,
                fingerprint: Some(secrets::redact(&fp.record, names)),
                src_path: unit.src_path.clone(),
                rustc: unit_id::split(id)
                    .and_then(|(_, hash)| crate::rustc::wrapper::recorded(profile_dir, hash)),
                path_values: Vec::new(),
            },
            members,
        });
    }
    let (mut jobs, mut withheld) = withhold(jobs, secret_readers);

    // Proven now and again when seeding (with the values the manifest does
    // not hold): a fingerprint whose hash cannot be reproduced is never
    // rewritten for other paths.
    let recorded = jobs.len();
    let reproduced = jobs
        .iter()
        .map(|job| &fingerprints[job.unit.id.as_str()])
        .filter(|fp| {
            crate::cargo::fingerprint::Fields::parse(&fp.record.fields)
                .is_some_and(|f| f.reproduces(fp.hash))
        })
        .count();

    // rustc's incremental state of a withheld crate embeds what it read.
    let withheld_crates: HashMap<&str, &Withheld> = withheld
        .iter()
        .filter(|w| w.kind == UnitKind::Compile)
        .map(|w| (live[w.id.as_str()].crate_name.as_str(), w))
        .collect();
    let mut withheld_dirs = Vec::new();
    for (dir, members) in layout::incremental_dirs(&dirs.main, &path_crates)? {
        let krate = unit_id::split(&dir)
            .map(|(k, _)| k)
            .unwrap_or(&dir)
            .to_owned();
        if let Some(w) = withheld_crates.get(krate.as_str()) {
            withheld_dirs.push(Withheld {
                id: format!("incremental/{dir}").into(),
                name: format!("incremental {krate}"),
                kind: UnitKind::Incremental,
                why: WithheldWhy::Incremental {
                    of: w.name.clone(),
                    var: w.why.var().map(str::to_owned),
                },
            });
            continue;
        }
        jobs.push(Job {
            unit: Unit {
                id: format!("incremental/{dir}").into(),
                name: format!("incremental {krate}"),
                kind: UnitKind::Incremental,
                host: false,
                package_id: None,
                blob: Blob {
                    sha256: String::new(),
                    size: 0,
                    unpacked: 0,
                },
                deps: Vec::new(),
                check: Check::None,
                baked: Vec::new(),
                fingerprint: None,
                src_path: None,
                rustc: None,
                path_values: Vec::new(),
            },
            members,
        });
    }
    withheld.extend(withheld_dirs);
    Ok(Planned {
        jobs,
        withheld,
        native_cpu,
        rustflags,
        reproduced,
        recorded,
    })
}

/// For every unit compiled through cargo-seed's wrapper, replays its
/// command line here and records the values of the path-only queries in the
/// replay's graph, which a seed compares restored sessions with. Returns the
/// wrapper's scheme when the workspace's crates were built through it, and
/// says how many were.
pub(super) fn record_path_values(
    ws: &Workspace,
    jobs: &mut [Job],
    reporter: &Reporter,
) -> Option<u32> {
    let wrapped: Vec<usize> = (0..jobs.len())
        .filter(|&i| {
            let u = &jobs[i].unit;
            u.src_path.is_some()
                && u.rustc
                    .as_ref()
                    .is_some_and(|r| r.scheme == Some(crate::rustc::wrapper::SCHEME))
        })
        .collect();
    let incremental_units = jobs
        .iter()
        .filter(|j| j.unit.kind == UnitKind::Compile && matches!(j.unit.check, Check::Inputs(_)))
        .count();
    if wrapped.is_empty() {
        if incremental_units > 0 {
            reporter.emit(Event::Note {
                message: "this build did not run rustc through cargo-seed's wrapper: its incremental state \
                          is only reused at this same path (hint: `cargo seed setup`, or \
                          RUSTC_WRAPPER=cargo-seed for CI's build)"
                    .into(),
            });
        }
        return None;
    }
    let rustc = match crate::rustc::toolchain::sysroot_rustc(&ws.root) {
        Ok(rustc) => rustc,
        Err(e) => {
            reporter.emit(Event::Note {
                message: format!("dependency paths are not recorded: {e}"),
            });
            return Some(crate::rustc::wrapper::SCHEME);
        }
    };
    // CI's own build: every library is what it just compiled.
    let libraries = crate::rustc::incremental::Libraries::all();
    let scratch = ws
        .build_dir
        .join(format!(".cargo-seed-replay-{}", std::process::id()));
    let no_move = |_: &Path| None;
    let values = pool::map(&wrapped, pool::threads(), |&i| {
        let unit = &jobs[i].unit;
        let inv = unit.rustc.as_ref().expect("filtered");
        let place = crate::rustc::incremental::Place {
            cwd: &inv.cwd,
            build_dir: &ws.build_dir,
            map: &no_move,
            libraries: &libraries,
        };
        let src = unit.src_path.as_deref().expect("filtered");
        let replayed = crate::rustc::incremental::replay(
            &rustc,
            inv,
            src,
            &place,
            &scratch.join(i.to_string()),
        );
        Ok::<_, std::convert::Infallible>(replayed.ok().map(|r| r.paths))
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let values = match values {
        Ok(v) => v,
        Err(never) => match never {},
    };
    let mut replayed = 0;
    let mut uncalibrated = None;
    for (&i, values) in wrapped.iter().zip(values) {
        match values {
            Some(Ok(paths)) => {
                replayed += 1;
                jobs[i].unit.path_values = crate::rustc::incremental::to_records(&paths.values);
            }
            Some(Err(why @ crate::rustc::depgraph::Refused::Uncalibrated(_))) => {
                uncalibrated = Some(why)
            }
            _ => {}
        }
    }
    if let Some(why) = uncalibrated {
        reporter.emit(Event::Note {
            message: format!(
                "dependency paths are not recorded, so a binary seeded at another path \
                 recompiles its codegen units: {why}"
            ),
        });
    }
    reporter.emit(Event::Wrapper {
        wrapped: wrapped.len(),
        path_units: incremental_units,
        recorded: replayed,
    });
    Some(crate::rustc::wrapper::SCHEME)
}

/// Splits off the units that read a secret (`readers`) and every unit that
/// depends on one of them, directly or not: a build script can pass a value
/// on (`cargo:rustc-env`, a generated file), and a developer rebuilds those
/// units anyway, since cargo rebuilds whatever depends on a rebuilt unit.
pub(super) fn withhold(
    jobs: Vec<Job>,
    readers: BTreeMap<String, WithheldWhy>,
) -> (Vec<Job>, Vec<Withheld>) {
    let mut why = readers;
    let names: HashMap<&str, &str> = jobs
        .iter()
        .map(|j| (j.unit.id.as_str(), j.unit.name.as_str()))
        .collect();
    loop {
        let mut changed = false;
        for job in &jobs {
            if why.contains_key(job.unit.id.as_str()) {
                continue;
            }
            let found = job.unit.deps.iter().find_map(|dep| {
                let w = why.get(dep.as_str())?;
                Some(WithheldWhy::Dependency {
                    on: names[dep.as_str()].to_owned(),
                    var: w.var().map(str::to_owned),
                })
            });
            if let Some(w) = found {
                why.insert(job.unit.id.to_string(), w);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let (kept, out): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|j| !why.contains_key(j.unit.id.as_str()));
    let withheld = out
        .into_iter()
        .map(|j| Withheld {
            why: why.remove(j.unit.id.as_str()).expect("partitioned by it"),
            id: j.unit.id,
            name: j.unit.name,
            kind: j.unit.kind,
        })
        .collect();
    (kept, withheld)
}

/// rustc's own dep-info of a compile unit (or of a build script).
pub(super) fn rustc_dep_info(
    profile_dir: &Path,
    layout: Layout,
    members: &[PathBuf],
) -> Option<String> {
    layout
        .rustc_dep_infos(profile_dir, members)
        .into_iter()
        .find_map(|c| std::fs::read_to_string(profile_dir.join(c)).ok())
}

/// Where a snapshot's units live: its profile directory, and for a cross
/// build the host's, which holds build scripts and proc-macros.
pub(crate) struct UnitDirs {
    pub main: PathBuf,
    pub host: PathBuf,
    pub layout: Layout,
}

impl UnitDirs {
    pub fn of(&self, unit_host: bool) -> &Path {
        if unit_host {
            &self.host
        } else {
            &self.main
        }
    }
}
