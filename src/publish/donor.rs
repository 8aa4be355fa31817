//! Another checkout's build dir on this machine, seen as a snapshot that
//! never leaves it: `cargo seed --from <path>`.
//!
//! Which of the donor's units are offered is cargo's own decision: cargo
//! runs the covered commands over the donor's sources against a *shadow* of
//! its build dir, with a rustc wrapper that compiles nothing
//! ([`crate::rustc::wrapper::LOOK_ONLY_VAR`]) and `--keep-going`. A unit
//! cargo reports `fresh` matches the donor's current sources by cargo's own
//! rule; a stale one (a file edited after the last build, a dependency
//! rebuilt) is refused by the wrapper and never reported. The shadow holds
//! real copies of what cargo reads by content (fingerprints, build-script
//! run records) and, for every other file, an empty file with its mtime:
//! cargo reads only the mtime of outputs. The empty files are not
//! executable, so a build script cargo would run again fails to start: no
//! program of the donor runs. Cargo writes only into the shadow.
//!
//! The units are then planned as a publish plans them (every input's
//! digest, taken only if the input is no newer than the unit's build), so a
//! seed judges them exactly as a snapshot's.

use std::collections::HashMap;
use std::fs::{self, File, FileTimes};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use cargo_metadata::Message;

use super::context::{Context, PublishOptions};
use super::observe;
use super::plan::UnitDirs;
use super::variant::{plan_units, PlannedUnits};
use crate::cargo::layout::Layout;
use crate::cargo::unit_id::UnitId;
use crate::cargo::workspace::{self, Workspace};
use crate::git;
use crate::publish::cover::Cover;
use crate::report::Reporter;
use crate::rustc::toolchain::Toolchain;
use crate::snapshot::inputs::Roots;
use crate::snapshot::manifest::{Blob, Manifest};
use crate::snapshot::secrets::SecretNames;
use crate::{pool, Error};

/// A donor's build as a manifest, with where each unit's files are.
pub(crate) struct DonorBuild {
    pub manifest: Manifest,
    /// Each unit's files and directories, relative to [`DonorBuild::dir`].
    pub members: HashMap<UnitId, Vec<PathBuf>>,
    /// The donor's profile dir.
    pub dir: PathBuf,
    /// What cargo said when it refused to go on, if it found nothing fresh.
    pub cargo_said: Option<String>,
}

/// Plans the units of `donor`'s `profile` that are fresh for its current
/// sources, as `covers` build them. `scratch` is a directory of the
/// caller's where the shadow is made (and left for the caller to remove).
/// The caller holds cargo's lock on the donor's profile dir throughout.
pub(crate) fn observe_donor(
    donor: &Workspace,
    profile: &str,
    covers: &[Cover],
    layout: Layout,
    scratch: &Path,
) -> Result<DonorBuild, Error> {
    let dir = donor.profile_build_dir(profile);
    let dir_name = workspace::profile_dir_name(profile);
    let shadow = scratch.join("shadow");
    let shadow_dir = shadow.join(dir_name);
    make_shadow(&dir, &shadow_dir, layout).map_err(Error::io("make a shadow of", &dir))?;
    let mut messages = Vec::new();
    let mut cargo_said = None;
    for cover in covers {
        let (found, said) = fresh_units(donor, cover, &shadow)?;
        messages.extend(found);
        cargo_said = cargo_said.or(said);
    }
    let live = observe::live_units(&shadow_dir, layout, &messages)?;
    let repository = git::toplevel(&donor.root)?;
    let secrets = SecretNames::none();
    let opts = PublishOptions {
        manifest_path: None,
        covers,
        secrets: &secrets,
        signing_key: None,
        trusted: None,
    };
    let cx = Context {
        roots: Roots::new(
            &donor.root,
            Some(&repository),
            &donor.cargo_home,
            &donor.build_dir,
        ),
        toolchain: Toolchain::detect(&donor.root)?,
        commit: git::resolve_commit(&donor.root, "HEAD")?,
        // Not asked (a `git status` of the donor costs more than the rest
        // of this look): every unit is judged by content anyway.
        dirty: true,
        repository,
        layout,
        opts: &opts,
    };
    let dirs = UnitDirs {
        main: dir.clone(),
        host: dir.clone(),
        layout,
    };
    // Publish's notes speak of CI; the seed says what matters here.
    let planned = plan_units(donor, &cx, &dirs, &live, None, &Reporter::silent())?;
    let mut members = HashMap::new();
    let mut units = Vec::with_capacity(planned.jobs.len());
    for job in &planned.jobs {
        let size = job
            .members
            .iter()
            .map(|m| tree_size(&dir.join(m)))
            .fold(0u64, u64::saturating_add);
        let mut unit = job.unit.clone();
        unit.blob = Blob {
            sha256: String::new(),
            size,
            unpacked: size,
        };
        members.insert(unit.id.clone(), job.members.clone());
        units.push(unit);
    }
    let covers = covers.iter().map(ToString::to_string).collect();
    let manifest = super::variant::manifest_of(
        donor,
        &cx,
        (profile, None),
        covers,
        Vec::new(),
        units,
        PlannedUnits {
            jobs: Vec::new(),
            ..planned
        },
    );
    Ok(DonorBuild {
        manifest,
        members,
        dir,
        cargo_said: if live.units.is_empty() {
            cargo_said
        } else {
            None
        },
    })
}

/// Whether cargo reads `rel` (relative to a profile dir) by content when it
/// decides whether a unit is fresh: fingerprints and build-script run
/// records. Everything else it reads by mtime only.
fn read_by_cargo(layout: Layout, rel: &Path) -> bool {
    if layout.is_fingerprint_file(rel) {
        return true;
    }
    let names: Vec<_> = rel.components().map(|c| c.as_os_str()).collect();
    match (layout, &names[..]) {
        // `build/<unit>/{output,root-output,stderr,invoked.timestamp}`;
        // the compiled script and `out/` beside them are not read.
        (Layout::Flat, [build, _, name]) => {
            *build == "build"
                && ["output", "root-output", "stderr", "invoked.timestamp"]
                    .iter()
                    .any(|n| name == n)
        }
        (Layout::PerUnit, [build, _, _, run, _]) => *build == "build" && *run == "run",
        _ => false,
    }
}

/// Mirrors the unit directories of the profile dir `from` into `to`: the
/// files cargo reads by content copied, every other regular file an empty,
/// non-executable file with the same mtime. Incremental sessions and links
/// are left out (cargo's freshness never reads them). The directories are
/// made first, then the files on all cores.
fn make_shadow(from: &Path, to: &Path, layout: Layout) -> io::Result<()> {
    let mut files: Vec<(PathBuf, SystemTime)> = Vec::new();
    let mut stack: Vec<PathBuf> = layout
        .unit_dirs()
        .iter()
        .filter(|d| **d != crate::cargo::layout::INCREMENTAL)
        .map(PathBuf::from)
        .collect();
    fs::create_dir_all(to)?;
    while let Some(rel) = stack.pop() {
        let entries = match fs::read_dir(from.join(&rel)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        fs::create_dir(to.join(&rel))?;
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let child = rel.join(entry.file_name());
            if kind.is_dir() {
                stack.push(child);
            } else if kind.is_file() {
                files.push((child, entry.metadata()?.modified()?));
            }
        }
    }
    let made = pool::map(&files, pool::threads(), |(rel, mtime)| {
        let mut options = File::options();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
        let mut dest = options.open(to.join(rel))?;
        if read_by_cargo(layout, rel) {
            io::copy(&mut File::open(from.join(rel))?, &mut dest)?;
        }
        dest.set_times(FileTimes::new().set_modified(*mtime))
    });
    made.map(drop)
}

/// Runs one covered command over the donor's sources against the shadow
/// build dir `shadow`, compiling nothing; returns cargo's messages for the
/// units it found fresh, and cargo's last error line when it stopped.
fn fresh_units(
    donor: &Workspace,
    cover: &Cover,
    shadow: &Path,
) -> Result<(Vec<Message>, Option<String>), Error> {
    let mut args = cover.cargo_args(None);
    args.insert(1, "--keep-going".to_owned());
    let exe = std::env::current_exe().map_err(Error::io("find", Path::new("cargo-seed")))?;
    let cargo = workspace::cargo_exe();
    let out = Command::new(&cargo)
        .current_dir(&donor.root)
        .args(&args)
        .env("CARGO_TARGET_DIR", shadow)
        .env("CARGO_BUILD_BUILD_DIR", shadow)
        .env("RUSTC_WRAPPER", &exe)
        .env(crate::rustc::wrapper::LOOK_ONLY_VAR, "1")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .stdin(Stdio::null())
        .output()
        .map_err(Error::io("run", &cargo))?;
    let messages: Vec<Message> = Message::parse_stream(out.stdout.as_slice())
        .filter_map(Result::ok)
        .filter(|m| match m {
            Message::CompilerArtifact(a) => a.fresh,
            // Only a run cargo found fresh: a stale one would have to start
            // an empty file, and fails.
            Message::BuildScriptExecuted(_) => true,
            _ => false,
        })
        .collect();
    let said = (!out.status.success())
        .then(|| {
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rfind(|l| l.starts_with("error"))
                .map(str::to_owned)
        })
        .flatten();
    Ok((messages, said))
}

/// Bytes of the regular files at or below `path` (links not followed).
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| tree_size(&e.path()))
        .fold(0u64, u64::saturating_add)
}
