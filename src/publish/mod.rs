//! `cargo seed publish`: store the build state of `HEAD` so that other
//! checkouts can seed from it.
//!
//! Blobs go first, each under its content digest (so unchanged units of the
//! next commit are not uploaded again); then, when CI signs, the signature
//! of the manifest's exact bytes; the manifest goes last, so a reader never
//! sees a snapshot whose blobs (or signature) are not all there.
//!
//! Units that read a secret-looking variable set in CI, and everything built
//! from them, are never packed (see [`crate::snapshot::secrets`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

pub mod cover;
pub mod observe;

use crate::cargo::flags::{self, BuildFlags};
use crate::cargo::workspace::{self, Workspace};
use crate::git;
use crate::pool;
use crate::publish::cover::Cover;
use crate::report::{Event, Reporter};
use crate::rustc::toolchain::Toolchain;
use crate::seed::freshness::Roots;
use crate::snapshot::archive;
use crate::snapshot::manifest::{
    self, Blob, Check, Manifest, Unit, UnitKind, Withheld, WithheldWhy,
};
use crate::snapshot::secrets::{self, SecretNames};
use crate::snapshot::signing::{KeyId, SecretKey, TrustedKeys};
use crate::store::{blob_key, manifest_key, signature_key, Store};
use crate::Error;

pub struct PublishOptions<'a> {
    pub manifest_path: Option<&'a Path>,
    /// The cargo commands whose units are published (their union, one
    /// snapshot per profile directory they build into).
    pub covers: &'a [Cover],
    /// Which environment variables are secrets, besides the built-in names.
    pub secrets: &'a SecretNames,
    /// Sign the snapshot with this key (`CARGO_SEED_SIGNING_KEY`).
    pub signing_key: Option<&'a SecretKey>,
    /// The keys this workspace trusts, to warn when checkouts would refuse
    /// what is published.
    pub trusted: Option<&'a TrustedKeys>,
}

/// What was published.
#[derive(Debug)]
pub struct Published {
    pub commit: String,
    pub key: String,
    pub units: usize,
    pub new_blobs: usize,
    pub new_bytes: u64,
    pub total_bytes: u64,
    /// Units and incremental dirs left out because of secrets.
    pub withheld: usize,
    /// The key that signed it, if any.
    pub signed_by: Option<KeyId>,
}

/// A unit to pack: its record without the blob, and its files.
struct Job {
    unit: Unit,
    members: Vec<PathBuf>,
}

/// What to pack, and what not to.
struct Planned {
    jobs: Vec<Job>,
    withheld: Vec<Withheld>,
    native_cpu: bool,
    /// The distinct rustflags the compile units' fingerprints record.
    rustflags: BTreeSet<Vec<String>>,
    /// Of the published units' fingerprints, how many cargo-seed reproduces.
    reproduced: usize,
    recorded: usize,
}

/// What every snapshot of one publish shares.
struct Context<'a> {
    toolchain: Toolchain,
    commit: String,
    dirty: bool,
    repository: PathBuf,
    roots: Roots,
    opts: &'a PublishOptions<'a>,
}

/// Publishes one snapshot per profile directory the covered commands build
/// into (`debug` for build, test, check and clippy; `release`…), in that
/// order; blobs they share are stored once.
pub fn publish(
    ws: &Workspace,
    store: &dyn Store,
    opts: &PublishOptions,
    reporter: &Reporter,
) -> Result<Vec<Published>, Error> {
    let toolchain = Toolchain::detect(&ws.root)?;
    let commit = git::resolve_commit(&ws.root, "HEAD")?;
    let dirty = git::is_dirty(&ws.root)?;
    if dirty {
        reporter.emit(Event::Warning {
            message: "the working tree has uncommitted changes; seeding still decides freshness by content"
                .into(),
        });
    }
    match (opts.signing_key, opts.trusted) {
        (None, Some(_)) => reporter.emit(Event::Warning {
            message: "this workspace trusts only signed snapshots and CARGO_SEED_SIGNING_KEY is not set: \
                      checkouts will refuse this one"
                .into(),
        }),
        (Some(key), Some(trusted)) if !trusted.contains(&key.public()) => reporter.emit(Event::Warning {
            message: format!(
                "the signing key {} is not among this workspace's trusted keys: checkouts will refuse this snapshot",
                key.public().id()
            ),
        }),
        _ => {}
    }

    // Which covered command built which snapshot's units: a host build's
    // go by the profile directory that holds them, a `--target` build's
    // (with the host units of that build) by its profile and target.
    let mut groups: BTreeMap<Variant, Group> = BTreeMap::new();
    for cover in opts.covers {
        let messages =
            observe::observe(&workspace::cargo_exe(), &ws.root, opts.manifest_path, cover)?;
        let dirs = observe::profile_dirs(&ws.build_dir);
        let split = observe::split_by_profile_dir(messages, &dirs, &ws.build_dir, &ws.target_dir)?;
        let cross: Vec<&PathBuf> = split
            .keys()
            .filter(|d| d.components().count() == 2)
            .collect();
        let cross = match cross[..] {
            [] => None,
            [dir] => {
                let target = dir
                    .parent()
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                let profile = dir.file_name().map(PathBuf::from).unwrap_or_default();
                Some((target, profile))
            }
            _ => {
                return Err(Error::CoverTargets {
                    cover: cover.to_string(),
                })
            }
        };
        for (dir, messages) in split {
            let (variant, host) = match &cross {
                None => (
                    Variant {
                        dir: dir.clone(),
                        target: None,
                    },
                    false,
                ),
                Some((target, profile)) => (
                    Variant {
                        dir: profile.clone(),
                        target: Some(target.clone()),
                    },
                    dir == *profile,
                ),
            };
            // Read right after the command: the final artifacts it names
            // (`target/debug/app`) are linked to its units until another
            // command links them to its own.
            let live = observe::live_units(&ws.build_dir.join(&dir), &messages)?;
            let group = groups.entry(variant).or_default();
            group.live.extend(live, host);
            let shown = cover.to_string();
            if !group.covers.contains(&shown) {
                group.covers.push(shown);
            }
        }
    }
    let repository = git::toplevel(&ws.root)?;
    let cx = Context {
        roots: Roots::new(&ws.root, Some(&repository), &ws.cargo_home, &ws.build_dir),
        toolchain,
        commit,
        dirty,
        repository,
        opts,
    };
    let siblings: Vec<manifest::Sibling> = groups
        .keys()
        .filter_map(|v| {
            Some(manifest::Sibling {
                profile: workspace::profile_of_dir(&v.dir)?,
                target: v.target.clone(),
            })
        })
        .collect();
    let mut published = Vec::new();
    for (variant, group) in groups {
        let Some(profile) = workspace::profile_of_dir(&variant.dir) else {
            reporter.emit(Event::Skipped {
                what: format!(
                    "the units in {} (from `cargo {}`)",
                    ws.build_dir.join(&variant.dir).display(),
                    group.covers.join("`, `cargo ")
                ),
                reason: "not in a profile directory cargo-seed knows".into(),
            });
            continue;
        };
        let me = manifest::Sibling {
            profile: profile.clone(),
            target: variant.target.clone(),
        };
        let group = Group {
            published_with: siblings.iter().filter(|s| **s != me).cloned().collect(),
            ..group
        };
        published.push(publish_variant(
            ws,
            store,
            &cx,
            &profile,
            variant.target.as_deref(),
            group,
            reporter,
        )?);
    }
    if published.is_empty() {
        return Err(Error::NothingToPublish {
            covers: opts.covers.iter().map(|c| c.to_string()).collect(),
        });
    }
    Ok(published)
}

/// One snapshot of a publish: a profile directory (relative to the build
/// dir), and for a `--target` build its target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Variant {
    dir: PathBuf,
    target: Option<String>,
}

/// What the covered commands built for one snapshot: the units, and the
/// commands.
#[derive(Default)]
struct Group {
    live: observe::LiveBuild,
    covers: Vec<String>,
    /// The other snapshots of this publish.
    published_with: Vec<manifest::Sibling>,
}

/// Where a snapshot's units live: its profile directory, and for a cross
/// build the host's, which holds build scripts and proc-macros.
pub(crate) struct UnitDirs {
    pub main: PathBuf,
    pub host: PathBuf,
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

/// Publishes the units the covered commands built for one profile (and,
/// for a cross build, one target) as one snapshot.
fn publish_variant(
    ws: &Workspace,
    store: &dyn Store,
    cx: &Context,
    profile: &str,
    cross: Option<&str>,
    group: Group,
    reporter: &Reporter,
) -> Result<Published, Error> {
    let started = Instant::now();
    let opts = cx.opts;
    let commit = cx.commit.clone();
    let host_dir = ws.profile_build_dir(profile);
    let dirs = UnitDirs {
        main: match cross {
            Some(target) => ws
                .build_dir
                .join(target)
                .join(workspace::profile_dir_name(profile)),
            None => host_dir.clone(),
        },
        host: host_dir,
    };
    let Group {
        live,
        covers,
        published_with,
    } = group;
    let Planned {
        mut jobs,
        withheld,
        native_cpu,
        rustflags,
        reproduced,
        recorded,
    } = plan(ws, &cx.roots, &dirs, &live, opts.secrets)?;
    report_withheld(&withheld, reporter);
    let build_flags = build_flags(
        ws,
        cross.unwrap_or(&cx.toolchain.host),
        &rustflags,
        reporter,
    );
    let rustc_wrapper = record_path_values(ws, &mut jobs, reporter);
    reporter.emit(Event::Packing {
        commit: commit.clone(),
        profile: profile.to_owned(),
        units: jobs.len(),
    });
    let scratch = ws
        .build_dir
        .join(format!(".cargo-seed-tmp-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|source| Error::Io {
        op: "create",
        path: scratch.clone(),
        source,
    })?;
    let result = pack_and_store(store, &dirs, &scratch, &jobs, reporter);
    let (units, new_blobs, new_bytes) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(e);
        }
    };

    let manifest = Manifest {
        schema: manifest::SCHEMA,
        commit: commit.clone(),
        created: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        target: cross.unwrap_or(&cx.toolchain.host).to_owned(),
        cross: cross.is_some(),
        toolchain: cx.toolchain.clone(),
        profile: profile.to_owned(),
        profile_dir: workspace::profile_dir_name(profile).to_owned(),
        covers,
        published_with,
        workspace_root: ws.root.clone(),
        cargo_home: ws.cargo_home.clone(),
        build_dir: ws.build_dir.clone(),
        repository_root: (cx.repository != ws.root).then(|| cx.repository.clone()),
        dirty: cx.dirty,
        libc: manifest::detect_libc(),
        native_cpu,
        rustc_wrapper,
        build_flags,
        units,
        withheld,
    };
    if reproduced < recorded {
        reporter.emit(Event::Warning {
            message: format!(
                "cargo-seed reproduces {reproduced} of {recorded} fingerprints of this cargo; \
                 the others are rebuilt wherever CARGO_HOME differs from this one"
            ),
        });
    }
    let variant = manifest.variant();
    let key = manifest_key(&commit, &variant);
    let text = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    let tmp = ws
        .build_dir
        .join(format!(".cargo-seed-manifest-{}.json", std::process::id()));
    let sig_tmp = tmp.with_extension("json.sig");
    // The signature covers exactly the bytes uploaded as the manifest.
    let signature = opts
        .signing_key
        .map(|k| (k.public().id(), k.sign(&commit, &variant, &text)));
    let put = (|| -> Result<(), Error> {
        write(&tmp, &text)?;
        let sig_key = signature_key(&key);
        match &signature {
            Some((_, sig)) => {
                write(&sig_tmp, sig.as_bytes())?;
                store.put_file(&sig_key, &sig_tmp)?;
            }
            // A signature left by an earlier publish of this snapshot would
            // not match the new manifest.
            None if store.exists(&sig_key)? => store.delete(&sig_key)?,
            None => {}
        }
        store.put_file(&key, &tmp)?;
        repair(store, &dirs, &scratch, &jobs, &manifest.units)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&sig_tmp);
    let _ = std::fs::remove_dir_all(&scratch);
    put?;

    let published = Published {
        commit,
        key,
        units: manifest.units.len(),
        new_blobs,
        new_bytes,
        total_bytes: manifest.total_size(),
        withheld: manifest.withheld.len(),
        signed_by: signature.map(|(id, _)| id),
    };
    reporter.emit(Event::Published {
        commit: published.commit.clone(),
        key: published.key.clone(),
        store: store.location(),
        profile: manifest.profile.clone(),
        rustc: manifest.toolchain.release.clone(),
        units: published.units,
        new_blobs: published.new_blobs,
        new_bytes: published.new_bytes,
        total_bytes: published.total_bytes,
        withheld: published.withheld,
        signed_by: published.signed_by.as_ref().map(|id| id.to_string()),
        seconds: started.elapsed().as_secs_f64(),
    });
    Ok(published)
}

/// The rustflags and linker to record: read as cargo reads them, and only
/// if that agrees with what cargo recorded in the fingerprints, so that a
/// seed never refuses a snapshot over a reading cargo-seed got wrong.
fn build_flags(
    ws: &Workspace,
    target: &str,
    recorded: &BTreeSet<Vec<String>>,
    reporter: &Reporter,
) -> Option<BuildFlags> {
    let env = |var: &str| std::env::var(var).ok();
    let rustc = crate::rustc::incremental::rustc();
    let cfg = || flags::rustc_cfg(&rustc, target);
    let resolved = flags::resolve(&ws.root, &ws.cargo_home, target, &env, &cfg);
    match resolved {
        Some(r) if recorded.iter().all(|f| *f == r.flags.rustflags) => Some(r.flags),
        _ => {
            reporter.emit(Event::Warning {
                message: "cargo-seed cannot tell which rustflags cargo used (the fingerprints disagree with \
                          its reading of the configuration), so seeds will not compare them before downloading"
                    .into(),
            });
            None
        }
    }
}

/// One line on what was withheld and why; `-v` lists every unit.
fn report_withheld(withheld: &[Withheld], reporter: &Reporter) {
    if withheld.is_empty() {
        return;
    }
    let units = withheld
        .iter()
        .filter(|w| w.kind != UnitKind::Incremental)
        .count();
    let mut vars: Vec<&str> = withheld
        .iter()
        .filter_map(|w| match &w.why {
            WithheldWhy::Secret { var } => Some(var.as_str()),
            _ => None,
        })
        .collect();
    vars.sort();
    vars.dedup();
    reporter.emit(Event::Withheld {
        units,
        incremental_dirs: withheld.len() - units,
        secrets: vars.into_iter().map(str::to_owned).collect(),
        unreadable: withheld.iter().any(|w| w.why == WithheldWhy::Unreadable),
    });
    for w in withheld {
        reporter.emit(Event::WithheldUnit {
            id: w.id.clone(),
            name: w.name.clone(),
            kind: w.kind,
            reason: w.why.to_string(),
        });
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        op: "write",
        path: path.to_owned(),
        source,
    })
}

/// Turns the live units into pack jobs (files, dependency edges, checks,
/// fingerprints without environment values), leaving out units that read a
/// secret and everything built from them.
fn plan(
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
        let fp = observe::read_fingerprint(dirs.of(unit.host), id)?;
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
                Some(dep) => deps.push((*dep).to_owned()),
                // A dependency cargo-seed did not find among the live units:
                // name it so the unit is rebuilt rather than trusted.
                None => deps.push(format!("{name}-{hash:016x}")),
            }
        }
        let rel = |dir: &Path| dir.strip_prefix(&ws.build_dir).unwrap_or(dir).to_owned();
        let produced: Vec<PathBuf> = deps
            .iter()
            .filter_map(|d| live.get(d).map(|u| (d, u)))
            .filter(|(_, u)| u.kind == UnitKind::RunBuildScript)
            .map(|(d, u)| rel(dirs.of(u.host)).join("build").join(d))
            .collect();
        let check = observe::unit_check(unit, fp, roots, &produced)?;
        // A cross build's incremental state is published for the target's
        // crates; the host's stay with the host build's snapshot.
        if unit.kind == UnitKind::Compile && unit.package_id.starts_with("path+") && !unit.host {
            path_crates.insert(unit.crate_name.clone());
        }
        let mut members = observe::unit_members(profile_dir, id);
        if let Some((_, hash)) = id.rsplit_once('-') {
            members.extend(outputs.get(hash).into_iter().flatten().cloned());
        }
        let rustc_env = rustc_dep_info(profile_dir, &members)
            .map(|text| observe::rustc_env_deps(&text))
            .unwrap_or_default();
        let baked = observe::baked_paths(&rustc_env, &ws.root, &ws.cargo_home, &ws.build_dir);
        let secret = match observe::recorded_env(fp, &ws.build_dir) {
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
                id: id.clone(),
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
                rustc: id
                    .rsplit_once('-')
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
        .map(|job| &fingerprints[&job.unit.id])
        .filter(|fp| {
            crate::cargo::fingerprint::Fields::parse(&fp.record.fields).map(|f| f.hash())
                == Some(fp.hash)
        })
        .count();

    // rustc's incremental state of a withheld crate embeds what it read.
    let withheld_crates: HashMap<&str, &Withheld> = withheld
        .iter()
        .filter(|w| w.kind == UnitKind::Compile)
        .map(|w| (live[&w.id].crate_name.as_str(), w))
        .collect();
    let mut withheld_dirs = Vec::new();
    for (dir, members) in observe::incremental_dirs(&dirs.main, &path_crates)? {
        let krate = dir
            .rsplit_once('-')
            .map(|(k, _)| k)
            .unwrap_or(&dir)
            .to_owned();
        if let Some(w) = withheld_crates.get(krate.as_str()) {
            withheld_dirs.push(Withheld {
                id: format!("incremental/{dir}"),
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
                id: format!("incremental/{dir}"),
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
fn record_path_values(ws: &Workspace, jobs: &mut [Job], reporter: &Reporter) -> Option<u32> {
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
    let rustc = crate::rustc::incremental::rustc();
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
        };
        let src = unit.src_path.as_deref().expect("filtered");
        let replayed = crate::rustc::incremental::replay(
            &rustc,
            inv,
            src,
            &place,
            &scratch.join(i.to_string()),
        );
        Ok::<_, std::convert::Infallible>(replayed.ok().and_then(|r| r.paths.ok()))
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let values = match values {
        Ok(v) => v,
        Err(never) => match never {},
    };
    let mut replayed = 0;
    for (&i, values) in wrapped.iter().zip(values) {
        if let Some(values) = values {
            replayed += 1;
            jobs[i].unit.path_values = crate::rustc::incremental::to_records(&values);
        }
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
fn withhold(jobs: Vec<Job>, readers: BTreeMap<String, WithheldWhy>) -> (Vec<Job>, Vec<Withheld>) {
    let mut why = readers;
    let names: HashMap<&str, &str> = jobs
        .iter()
        .map(|j| (j.unit.id.as_str(), j.unit.name.as_str()))
        .collect();
    loop {
        let mut changed = false;
        for job in &jobs {
            if why.contains_key(&job.unit.id) {
                continue;
            }
            let found = job.unit.deps.iter().find_map(|dep| {
                let w = why.get(dep)?;
                Some(WithheldWhy::Dependency {
                    on: names[dep.as_str()].to_owned(),
                    var: w.var().map(str::to_owned),
                })
            });
            if let Some(w) = found {
                why.insert(job.unit.id.clone(), w);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let (kept, out): (Vec<Job>, Vec<Job>) = jobs
        .into_iter()
        .partition(|j| !why.contains_key(&j.unit.id));
    let withheld = out
        .into_iter()
        .map(|j| Withheld {
            why: why.remove(&j.unit.id).expect("partitioned by it"),
            id: j.unit.id,
            name: j.unit.name,
            kind: j.unit.kind,
        })
        .collect();
    (kept, withheld)
}

/// rustc's own dep-info of a compile unit (`deps/<name>-<hash>.d`, or the
/// build script's `.d` in its `build/` directory).
fn rustc_dep_info(profile_dir: &Path, members: &[PathBuf]) -> Option<String> {
    let mut candidates: Vec<PathBuf> = members
        .iter()
        .filter(|m| m.extension().is_some_and(|e| e == "d"))
        .cloned()
        .collect();
    for m in members.iter().filter(|m| m.starts_with("build")) {
        for entry in std::fs::read_dir(profile_dir.join(m))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "d") {
                candidates.push(path);
            }
        }
    }
    candidates
        .into_iter()
        .find_map(|c| std::fs::read_to_string(profile_dir.join(c)).ok())
}

/// Puts back any blob of the snapshot that vanished after it was found in
/// the store: a `gc` running at the same moment may delete a blob that was
/// old and unreferenced when this publish saw it exist. Packing is
/// deterministic, so the same files give the same blob again.
fn repair(
    store: &dyn Store,
    dirs: &UnitDirs,
    scratch: &Path,
    jobs: &[Job],
    units: &[Unit],
) -> Result<(), Error> {
    let present = pool::map(units, 16, |u| store.exists(&blob_key(&u.blob.sha256)))?;
    for ((job, unit), present) in jobs.iter().zip(units).zip(present) {
        if present {
            continue;
        }
        let (again, _) = pack_one(store, dirs, scratch, job)?;
        if again.blob.sha256 != unit.blob.sha256 {
            return Err(Error::Io {
                op: "re-upload a blob removed during publishing (its files changed meanwhile) for",
                path: dirs.of(unit.host).join(&unit.id),
                source: std::io::Error::other("publish again"),
            });
        }
    }
    Ok(())
}

/// Packs every job on all cores and uploads the blobs the store lacks.
/// Returns the units (with their blobs), the number of new blobs and bytes.
fn pack_and_store(
    store: &dyn Store,
    dirs: &UnitDirs,
    scratch: &Path,
    jobs: &[Job],
    reporter: &Reporter,
) -> Result<(Vec<Unit>, usize, u64), Error> {
    let packed = pool::map(jobs, pool::threads(), |job| {
        pack_one(store, dirs, scratch, job)
    })?;
    let mut units = Vec::new();
    let (mut new_blobs, mut new_bytes) = (0, 0);
    for (unit, uploaded) in packed {
        if uploaded {
            new_blobs += 1;
            new_bytes += unit.blob.size;
            reporter.emit(Event::Stored {
                id: unit.id.clone(),
                name: unit.name.clone(),
                bytes: unit.blob.size,
            });
        }
        units.push(unit);
    }
    Ok((units, new_blobs, new_bytes))
}

fn pack_one(
    store: &dyn Store,
    dirs: &UnitDirs,
    scratch: &Path,
    job: &Job,
) -> Result<(Unit, bool), Error> {
    // Unit ids are unique file names already.
    let tmp = scratch.join(format!("{}.zst", job.unit.id.replace('/', "_")));
    let blob = archive::pack(dirs.of(job.unit.host), &job.members, &tmp)?;
    let key = blob_key(&blob.sha256);
    // An existing blob is made fresh again, so that a concurrent gc's grace
    // period covers it. If that fails (it is not there, a gc removed it
    // meanwhile, the store cannot refresh an object this large, or, over
    // HTTP, the server wrote it too long ago), it is uploaded.
    let uploaded = if store.touch(&key).is_ok() {
        false
    } else {
        store.put_file(&key, &tmp)?;
        true
    };
    let _ = std::fs::remove_file(&tmp);
    let mut unit = job.unit.clone();
    unit.blob = blob;
    Ok((unit, uploaded))
}
