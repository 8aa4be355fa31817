//! One snapshot of a publish: the units of one profile directory (or one
//! cross target), planned, packed and stored, then its manifest, signed,
//! written last so no reader sees it before its blobs.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use super::context::{Context, Published};
use super::observe;
use super::pack::{pack_and_store, repair, write};
use super::plan::UnitDirs;
use super::plan::{plan, record_path_values, Job, Planned};
use crate::cargo::flags::{self, BuildFlags};
use crate::cargo::workspace::{self, Workspace};
use crate::report::{Event, Reporter};
use crate::snapshot::manifest::{self, Manifest, UnitKind, Withheld, WithheldWhy};
use crate::snapshot::signing::KeyId;
use crate::store::{manifest_key, signature_key, Store};
use crate::Error;

/// One snapshot of a publish: a profile directory (relative to the build
/// dir), and for a `--target` build its target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Variant {
    pub(super) dir: PathBuf,
    pub(super) target: Option<String>,
}

/// What the covered commands built for one snapshot: the units, and the
/// commands.
#[derive(Default)]
pub(super) struct Group {
    pub(super) live: observe::LiveBuild,
    pub(super) covers: Vec<String>,
    /// The other snapshots of this publish.
    pub(super) published_with: Vec<manifest::Sibling>,
}

/// Publishes the units the covered commands built for one profile (and,
/// for a cross build, one target) as one snapshot, as its stages: plan the
/// units, pack and store their blobs, write the manifest (last), report.
pub(super) fn publish_variant(
    ws: &Workspace,
    store: &dyn Store,
    cx: &Context,
    profile: &str,
    cross: Option<&str>,
    group: Group,
    reporter: &Reporter,
) -> Result<Published, Error> {
    let started = Instant::now();
    let dirs = unit_dirs(ws, cx, profile, cross);
    let Group {
        live,
        covers,
        published_with,
    } = group;
    let mut planned = plan_units(ws, cx, &dirs, &live, cross, reporter)?;
    let Packed {
        units,
        new_blobs,
        new_bytes,
        scratch,
    } = pack(ws, store, cx, profile, &dirs, &planned.jobs, reporter)?;
    let reproduced = (planned.reproduced, planned.recorded);
    let jobs = std::mem::take(&mut planned.jobs);
    let manifest = manifest_of(
        ws,
        cx,
        (profile, cross),
        covers,
        published_with,
        units,
        planned,
    );
    let (reproduced, recorded) = reproduced;
    if reproduced < recorded {
        reporter.emit(Event::Warning {
            message: format!(
                "cargo-seed reproduces {reproduced} of {recorded} fingerprints of this cargo; \
                 the others are rebuilt wherever CARGO_HOME differs from this one"
            ),
        });
    }
    let written = write_manifest(ws, store, cx, (&dirs, &jobs, &scratch), &manifest);
    drop(scratch);
    let written = written?;
    let published = Published {
        commit: cx.commit.clone(),
        key: written.key,
        units: manifest.units.len(),
        new_blobs,
        new_bytes,
        total_bytes: manifest.total_size(),
        withheld: manifest.withheld.len(),
        signed_by: written.signed_by,
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

/// The manifest of one snapshot: what the plan recorded beside its
/// `units`, which are packed (or, for a donor checkout, listed).
pub(super) fn manifest_of(
    ws: &Workspace,
    cx: &Context,
    (profile, cross): (&str, Option<&str>),
    covers: Vec<String>,
    published_with: Vec<manifest::Sibling>,
    units: Vec<manifest::Unit>,
    planned: PlannedUnits,
) -> Manifest {
    let PlannedUnits {
        withheld,
        native_cpu,
        build_flags,
        rustc_wrapper,
        ..
    } = planned;
    Manifest {
        schema: manifest::SCHEMA,
        commit: cx.commit.to_string(),
        created: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        target: cross.unwrap_or(&cx.toolchain.host).to_owned(),
        cross: cross.is_some(),
        toolchain: cx.toolchain.clone(),
        profile: profile.to_owned(),
        profile_dir: workspace::profile_dir_name(profile).to_owned(),
        layout: cx.layout,
        covers,
        published_with,
        workspace_root: ws.root.clone(),
        cargo_home: ws.cargo_home.clone(),
        build_dir: ws.build_dir.clone(),
        repository_root: (cx.repository != ws.root).then(|| cx.repository.clone()),
        dirty: cx.dirty,
        libc: crate::snapshot::want::detect_libc(),
        native_cpu,
        rustc_wrapper,
        build_flags,
        units,
        withheld,
    }
}

/// Where one snapshot's units are: the profile dir (a cross build's target
/// one), and the host's for its build scripts and proc-macros.
fn unit_dirs(ws: &Workspace, cx: &Context, profile: &str, cross: Option<&str>) -> UnitDirs {
    let host_dir = ws.profile_build_dir(profile);
    UnitDirs {
        main: match cross {
            Some(target) => ws
                .build_dir
                .join(target)
                .join(workspace::profile_dir_name(profile)),
            None => host_dir.clone(),
        },
        host: host_dir,
        layout: cx.layout,
    }
}

/// The units planned, with what the manifest records beside them.
pub(super) struct PlannedUnits {
    pub(super) jobs: Vec<Job>,
    pub(super) withheld: Vec<Withheld>,
    pub(super) native_cpu: bool,
    pub(super) build_flags: Option<BuildFlags>,
    pub(super) rustc_wrapper: Option<u32>,
    pub(super) reproduced: usize,
    pub(super) recorded: usize,
}

/// Stage "plan": the live units turned into pack jobs (what was withheld
/// told), the rustflags and linker to record, and the path values of units
/// compiled through the wrapper.
pub(super) fn plan_units(
    ws: &Workspace,
    cx: &Context,
    dirs: &UnitDirs,
    live: &observe::LiveBuild,
    cross: Option<&str>,
    reporter: &Reporter,
) -> Result<PlannedUnits, Error> {
    let Planned {
        mut jobs,
        withheld,
        native_cpu,
        rustflags,
        reproduced,
        recorded,
    } = plan(ws, &cx.roots, dirs, live, cx.opts.secrets)?;
    report_withheld(&withheld, reporter);
    let build_flags = build_flags(
        ws,
        cross.unwrap_or(&cx.toolchain.host),
        &rustflags,
        reporter,
    );
    let rustc_wrapper = record_path_values(ws, &mut jobs, reporter);
    Ok(PlannedUnits {
        jobs,
        withheld,
        native_cpu,
        build_flags,
        rustc_wrapper,
        reproduced,
        recorded,
    })
}

/// The blobs packed and stored, and the scratch dir they were packed in
/// (removed on drop).
struct Packed {
    units: Vec<manifest::Unit>,
    new_blobs: usize,
    new_bytes: u64,
    scratch: Scratch,
}

/// A directory of this process's own, removed with everything in it on
/// drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stage "pack": every job packed into a blob and stored unless the store
/// has it.
fn pack(
    ws: &Workspace,
    store: &dyn Store,
    cx: &Context,
    profile: &str,
    dirs: &UnitDirs,
    jobs: &[Job],
    reporter: &Reporter,
) -> Result<Packed, Error> {
    reporter.emit(Event::Packing {
        commit: cx.commit.clone(),
        profile: profile.to_owned(),
        units: jobs.len(),
    });
    let scratch = Scratch(
        ws.build_dir
            .join(format!(".cargo-seed-tmp-{}", std::process::id())),
    );
    std::fs::create_dir_all(&scratch.0).map_err(Error::io("create", &scratch.0))?;
    let (units, new_blobs, new_bytes) = pack_and_store(store, dirs, &scratch.0, jobs, reporter)?;
    Ok(Packed {
        units,
        new_blobs,
        new_bytes,
        scratch,
    })
}

/// Where the manifest was written, and who signed it.
struct Written {
    key: String,
    signed_by: Option<KeyId>,
}

/// Stage "write": the manifest signed and put (its signature first), then
/// any blob a concurrent `gc` removed meanwhile put back.
fn write_manifest(
    ws: &Workspace,
    store: &dyn Store,
    cx: &Context,
    (dirs, jobs, scratch): (&UnitDirs, &[Job], &Scratch),
    manifest: &Manifest,
) -> Result<Written, Error> {
    let commit = &cx.commit;
    let variant = manifest.variant();
    let key = manifest_key(commit.as_str(), &variant);
    let text = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
    let tmp = ws
        .build_dir
        .join(format!(".cargo-seed-manifest-{}.json", std::process::id()));
    let sig_tmp = tmp.with_extension("json.sig");
    // The signature covers exactly the bytes uploaded as the manifest.
    let signature = cx
        .opts
        .signing_key
        .map(|k| (k.public().id(), k.sign(commit.as_str(), &variant, &text)));
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
        repair(store, dirs, &scratch.0, jobs, &manifest.units)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&sig_tmp);
    put?;
    Ok(Written {
        key,
        signed_by: signature.map(|(id, _)| id),
    })
}

/// The rustflags and linker to record: read as cargo reads them, and only
/// if that agrees with what cargo recorded in the fingerprints, so that a
/// seed never refuses a snapshot over a reading cargo-seed got wrong.
pub(super) fn build_flags(
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
pub(super) fn report_withheld(withheld: &[Withheld], reporter: &Reporter) {
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
