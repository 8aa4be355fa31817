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
/// `on_fresh` is told the files of each unit (relative to the profile dir)
/// as soon as cargo reports it fresh, so that copying can start while cargo
/// and the planning go on.
pub(crate) fn observe_donor(
    donor: &Workspace,
    profile: &str,
    covers: &[Cover],
    (layout, toolchain, rustc): (Layout, &Toolchain, Option<&Path>),
    scratch: &Path,
    on_fresh: &mut dyn FnMut(&[PathBuf]),
) -> Result<DonorBuild, Error> {
    let dir = donor.profile_build_dir(profile);
    let dir_name = workspace::profile_dir_name(profile);
    let shadow = scratch.join("shadow");
    let shadow_dir = shadow.join(dir_name);
    let by_inode =
        make_shadow(&dir, &shadow_dir, layout).map_err(Error::io("make a shadow of", &dir))?;
    let outputs = layout.outputs(&dir)?;
    let ids: HashMap<String, String> = layout
        .unit_ids(&dir)?
        .into_iter()
        .filter_map(|id| Some((crate::cargo::unit_id::split(&id)?.1.to_owned(), id.clone())))
        .collect();
    // The files of the unit a message names: its first file is the unit's
    // own, or a link to one (a member's library or binary at the top).
    let mut tell = |message: &Message| {
        let file = match message {
            Message::CompilerArtifact(a) => a.filenames.first().map(|f| f.as_std_path()),
            Message::BuildScriptExecuted(b) => Some(b.out_dir.as_std_path()),
            _ => None,
        };
        let own = |f: &Path| -> Option<PathBuf> {
            let rel = f.strip_prefix(&shadow_dir).ok()?;
            if layout.hash_of_file(rel).is_some() {
                return Some(rel.to_owned());
            }
            by_inode.get(&inode(&fs::metadata(f).ok()?)?).cloned()
        };
        let id = file
            .and_then(own)
            .and_then(|rel| layout.hash_of_file(&rel))
            .and_then(|hash| ids.get(&hash));
        if let Some(id) = id {
            on_fresh(&layout.unit_members(&dir, id, &outputs));
        }
    };
    let mut messages = Vec::new();
    let mut cargo_said = None;
    for cover in covers {
        let (found, said) = fresh_units(donor, cover, (&shadow, rustc), &mut tell)?;
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
        // This checkout's: cargo ran with its rustc, so a unit another
        // compiled is not fresh.
        toolchain: toolchain.clone(),
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
/// made first, then the files on all cores. Returns the files by inode:
/// cargo names a workspace member's library or binary by the copy it links
/// at the top of the profile dir.
fn make_shadow(from: &Path, to: &Path, layout: Layout) -> io::Result<HashMap<(u64, u64), PathBuf>> {
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
        dest.set_times(FileTimes::new().set_modified(*mtime))?;
        Ok::<_, io::Error>(inode(&dest.metadata()?).map(|key| (key, rel.clone())))
    });
    Ok(made?.into_iter().flatten().collect())
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}
#[cfg(not(unix))]
fn inode(_: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Runs one covered command over the donor's sources against the shadow
/// build dir `shadow`, compiling nothing; returns cargo's messages for the
/// units it found fresh, and cargo's last error line when it stopped.
fn fresh_units(
    donor: &Workspace,
    cover: &Cover,
    (shadow, rustc): (&Path, Option<&Path>),
    tell: &mut dyn FnMut(&Message),
) -> Result<(Vec<Message>, Option<String>), Error> {
    let mut args = cover.cargo_args(None);
    // Never the network, never the donor's `Cargo.lock`: a donor whose
    // lockfile would change has nothing fresh to give.
    args.splice(1..1, ["--keep-going".to_owned(), "--frozen".to_owned()]);
    let exe = std::env::current_exe().map_err(Error::io("find", Path::new("cargo-seed")))?;
    let cargo = workspace::cargo_exe();
    // cargo's errors (the units it was refused) go to a file, so that
    // neither pipe can fill while the other is read.
    let errors = shadow.join("cargo-stderr");
    let mut cmd = Command::new(&cargo);
    // This checkout's rustc (and, under rustup, toolchain), not the one the
    // donor's `rust-toolchain.toml` names, which rustup would install.
    if let Some(rustc) = rustc {
        if std::env::var_os("RUSTC").is_none() {
            cmd.env("RUSTC", rustc);
        }
        let sysroot = rustc.parent().and_then(Path::parent);
        let rustup = sysroot
            .and_then(Path::parent)
            .is_some_and(|d| d.file_name().is_some_and(|n| n == "toolchains"));
        if let (true, Some(name)) = (rustup, sysroot.and_then(Path::file_name)) {
            cmd.env("RUSTUP_TOOLCHAIN", name);
        }
    }
    let mut child = cmd
        .current_dir(&donor.root)
        .args(&args)
        .env("CARGO_TARGET_DIR", shadow)
        .env("CARGO_BUILD_BUILD_DIR", shadow)
        .env("RUSTC_WRAPPER", &exe)
        .env(crate::rustc::wrapper::LOOK_ONLY_VAR, "1")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env("RUSTUP_AUTO_INSTALL", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&errors).map_err(Error::io("create", &errors))?)
        .spawn()
        .map_err(Error::io("run", &cargo))?;
    let stdout = child.stdout.take().expect("piped");
    let mut messages = Vec::new();
    for message in Message::parse_stream(io::BufReader::new(stdout)).flatten() {
        let fresh = match &message {
            Message::CompilerArtifact(a) => a.fresh,
            // Only a run cargo found fresh: a stale one would have to start
            // an empty file, and fails.
            Message::BuildScriptExecuted(_) => true,
            _ => false,
        };
        if fresh {
            tell(&message);
            messages.push(message);
        }
    }
    let status = child.wait().map_err(Error::io("run", &cargo))?;
    let said = (!status.success())
        .then(|| {
            fs::read_to_string(&errors)
                .unwrap_or_default()
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
