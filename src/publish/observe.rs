//! What a snapshot is made of, read off a build dir after a build: the units
//! the current build uses, the files of each, and what cargo checks to decide
//! whether each is fresh.
//!
//! The set of units comes from cargo itself (`--message-format json` of a
//! no-op build), never from the directory listing: a CI cache holds units of
//! earlier builds (old dependency versions…) that must not be published.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use cargo_metadata::Message;
use serde::Deserialize;

use crate::cargo::depinfo::{self, PathBase};
use crate::publish::cover::Cover;
use crate::seed::freshness::{self, digest_path, Roots};
use crate::snapshot::manifest::{
    BakedPath, BakedRoot, Base, Check, FingerprintRecord, Input, Inputs, UnitKind,
};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("failed to run `{cmd}`")]
    Spawn {
        cmd: String,
        #[source]
        source: io::Error,
    },
    #[error("`{cmd}` failed ({status})")]
    BuildFailed { cmd: String, status: String },
    #[error("failed to read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cargo reported an artifact cargo-seed cannot place: {path}")]
    UnknownArtifact { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One unit of the current build, as found in the build dir.
#[derive(Debug, Clone)]
pub struct LiveUnit {
    /// `.fingerprint/<id>`, e.g. `greet-d2c3ef4c070f78bb`.
    pub id: String,
    pub kind: UnitKind,
    pub package_id: String,
    /// A human name: `lib greet`, `build-script gen`, `run-build-script gen`.
    pub name: String,
    /// The crate name rustc uses (for the incremental directory).
    pub crate_name: String,
    pub package_root: PathBuf,
    /// The target's source file (absolute), for compile units.
    pub src_path: Option<PathBuf>,
    /// Built for the host in a cross build: it lives in the host's profile
    /// directory.
    pub host: bool,
}

/// Runs one covered command (a no-op right after CI ran it) and returns
/// cargo's messages.
pub fn observe(
    cargo: &Path,
    workspace_root: &Path,
    manifest_path: Option<&Path>,
    cover: &Cover,
) -> Result<Vec<Message>, SnapshotError> {
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root)
        .args(cover.cargo_args(manifest_path))
        .stdout(Stdio::piped());
    let shown = format!("cargo {cover}");
    let mut child = cmd.spawn().map_err(|source| SnapshotError::Spawn {
        cmd: shown.clone(),
        source,
    })?;
    let stdout = child.stdout.take().expect("piped");
    let messages: Vec<Message> = Message::parse_stream(BufReader::new(stdout))
        .filter_map(Result::ok)
        .collect();
    let status = child.wait().map_err(|source| SnapshotError::Spawn {
        cmd: shown.clone(),
        source,
    })?;
    if !status.success() {
        return Err(SnapshotError::BuildFailed {
            cmd: shown,
            status: status.to_string(),
        });
    }
    Ok(messages)
}

/// The profile directories below the build dir that hold units: `debug`,
/// `release`, a custom profile's, and `<triple>/debug` for cross builds.
/// Relative to the build dir.
pub fn profile_dirs(build_dir: &Path) -> Vec<PathBuf> {
    let holds_units = |d: &Path| d.join(".fingerprint").is_dir();
    let mut out = Vec::new();
    for entry in fs::read_dir(build_dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = PathBuf::from(entry.file_name());
        if holds_units(&path) {
            out.push(name.clone());
        }
        for inner in fs::read_dir(&path).into_iter().flatten().flatten() {
            if holds_units(&inner.path()) {
                out.push(name.join(inner.file_name()));
            }
        }
    }
    out.sort();
    out
}

/// Splits cargo's messages by the profile directory (one of `dirs`, below
/// `build_dir` or `target_dir`) that holds their files. A message whose
/// files lie in none of them is an error: it would be left out silently.
pub fn split_by_profile_dir(
    messages: Vec<Message>,
    dirs: &[PathBuf],
    build_dir: &Path,
    target_dir: &Path,
) -> Result<BTreeMap<PathBuf, Vec<Message>>, SnapshotError> {
    // The deepest first, so that `<triple>/debug` wins over a `<triple>`.
    let mut dirs = dirs.to_vec();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    let dir_of = |file: &Path| {
        dirs.iter()
            .find(|d| file.starts_with(build_dir.join(d)) || file.starts_with(target_dir.join(d)))
            .cloned()
    };
    let mut out: BTreeMap<PathBuf, Vec<Message>> = BTreeMap::new();
    for msg in messages {
        let file = match &msg {
            Message::CompilerArtifact(a) => a.filenames.first().map(|f| f.as_std_path().to_owned()),
            Message::BuildScriptExecuted(b) => Some(b.out_dir.as_std_path().to_owned()),
            _ => continue,
        };
        let Some(file) = file else { continue };
        let Some(dir) = dir_of(&file) else {
            return Err(SnapshotError::UnknownArtifact { path: file });
        };
        out.entry(dir).or_default().push(msg);
    }
    Ok(out)
}

/// The `-<hash>` suffix cargo gives a unit's files and directories.
fn unit_hash(name: &str) -> Option<&str> {
    let stem = name.split('.').next()?;
    let (_, hash) = stem.rsplit_once('-')?;
    (hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hash)
}

/// Files of `deps/` and `examples/` indexed by unit hash and by inode.
struct OutputIndex {
    by_hash: HashMap<String, Vec<PathBuf>>,
    by_inode: HashMap<(u64, u64), String>,
}

impl OutputIndex {
    fn scan(profile_dir: &Path) -> Result<OutputIndex, SnapshotError> {
        let mut idx = OutputIndex {
            by_hash: HashMap::new(),
            by_inode: HashMap::new(),
        };
        for sub in ["deps", "examples"] {
            let dir = profile_dir.join(sub);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let entry = entry.map_err(io_err(&dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(hash) = unit_hash(&name) else {
                    continue;
                };
                if let Ok(meta) = entry.metadata() {
                    if let Some(key) = inode_key(&meta) {
                        idx.by_inode.insert(key, hash.to_owned());
                    }
                }
                idx.by_hash
                    .entry(hash.to_owned())
                    .or_default()
                    .push(Path::new(sub).join(&name));
            }
        }
        Ok(idx)
    }
}

#[cfg(unix)]
fn inode_key(meta: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}
#[cfg(not(unix))]
fn inode_key(_: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// The units of the current build, and the files of `deps/` and `examples/`
/// by unit hash (read once, for both).
#[derive(Default)]
pub struct LiveBuild {
    pub units: BTreeMap<String, LiveUnit>,
    pub outputs_by_hash: HashMap<String, Vec<PathBuf>>,
}

impl LiveBuild {
    /// Adds the units of another profile directory (`host`: the host's, in
    /// a cross build). Unit hashes are unique across directories.
    pub fn extend(&mut self, other: LiveBuild, host: bool) {
        for (id, unit) in other.units {
            self.units.insert(id, LiveUnit { host, ..unit });
        }
        self.outputs_by_hash.extend(other.outputs_by_hash);
    }
}

/// The units of the build that produced `messages`, keyed by id.
pub fn live_units(profile_dir: &Path, messages: &[Message]) -> Result<LiveBuild, SnapshotError> {
    let index = OutputIndex::scan(profile_dir)?;
    let fp_dir = profile_dir.join(".fingerprint");
    let mut id_of_hash = HashMap::new();
    for entry in fs::read_dir(&fp_dir).map_err(io_err(&fp_dir))? {
        let name = entry.map_err(io_err(&fp_dir))?.file_name();
        let name = name.to_string_lossy().into_owned();
        if let Some((_, hash)) = name.rsplit_once('-') {
            id_of_hash.insert(hash.to_owned(), name.clone());
        }
    }
    let hash_of = |path: &Path| -> Option<String> {
        let parent = path.parent()?;
        if parent.parent().map(|p| p.ends_with("build")) == Some(true) {
            return unit_hash(&parent.file_name()?.to_string_lossy()).map(str::to_owned);
        }
        if parent.ends_with("build") {
            return unit_hash(&path.file_name()?.to_string_lossy()).map(str::to_owned);
        }
        if let Some(h) = unit_hash(&path.file_name()?.to_string_lossy()) {
            return Some(h.to_owned());
        }
        // An uplifted copy (`target/debug/app`) is a hard link to its unit's output.
        let meta = fs::metadata(path).ok()?;
        index.by_inode.get(&inode_key(&meta)?).cloned()
    };

    let mut roots: HashMap<String, PathBuf> = HashMap::new();
    let mut units = BTreeMap::new();
    // Files the id of the unit `hash` names; false if there is none.
    let mut add = |hash: &str, unit: LiveUnit| match id_of_hash.get(hash) {
        Some(id) => {
            units.insert(
                id.clone(),
                LiveUnit {
                    id: id.clone(),
                    ..unit
                },
            );
            true
        }
        None => false,
    };
    for msg in messages {
        if let Message::CompilerArtifact(a) = msg {
            let root = PathBuf::from(a.manifest_path.parent().map(|p| p.as_str()).unwrap_or(""));
            roots.insert(a.package_id.repr.clone(), root.clone());
            let kind_name = a
                .target
                .kind
                .first()
                .map(|k| k.to_string())
                .unwrap_or_default();
            // `test lib app` (its test harness), `check lib app` (metadata
            // only, as `cargo check` and clippy build it), `lib app`.
            let mode = if a.profile.test {
                "test "
            } else if a.filenames.iter().all(|f| f.extension() == Some("rmeta")) {
                "check "
            } else {
                ""
            };
            let name = if kind_name == "custom-build" {
                format!("build-script {}", package_name(&a.package_id.repr))
            } else {
                format!("{mode}{kind_name} {}", a.target.name)
            };
            let unit = LiveUnit {
                id: String::new(),
                kind: UnitKind::Compile,
                package_id: a.package_id.repr.clone(),
                name,
                crate_name: a.target.name.replace('-', "_"),
                package_root: root,
                src_path: Some(a.target.src_path.clone().into()),
                host: false,
            };
            let mut placed = false;
            for file in &a.filenames {
                if let Some(hash) = hash_of(file.as_std_path()) {
                    placed |= add(&hash, unit.clone());
                }
            }
            if !placed {
                if let Some(f) = a.filenames.first() {
                    return Err(SnapshotError::UnknownArtifact {
                        path: f.clone().into(),
                    });
                }
            }
        }
    }
    for msg in messages {
        if let Message::BuildScriptExecuted(b) = msg {
            let out_dir = b.out_dir.as_std_path();
            let Some(hash) = out_dir
                .parent()
                .and_then(|p| unit_hash(&p.file_name()?.to_string_lossy()).map(str::to_owned))
            else {
                return Err(SnapshotError::UnknownArtifact {
                    path: out_dir.to_owned(),
                });
            };
            let root = roots.get(&b.package_id.repr).cloned().unwrap_or_default();
            let name = format!("run-build-script {}", package_name(&b.package_id.repr));
            add(
                &hash,
                LiveUnit {
                    id: String::new(),
                    kind: UnitKind::RunBuildScript,
                    package_id: b.package_id.repr.clone(),
                    name,
                    crate_name: String::new(),
                    package_root: root,
                    src_path: None,
                    host: false,
                },
            );
        }
    }
    Ok(LiveBuild {
        units,
        outputs_by_hash: index.by_hash,
    })
}

/// `serde` from `registry+https://…#serde@1.0.0` or `path+file:///…/app#0.1.0`.
pub fn package_name(package_id: &str) -> String {
    let frag = package_id
        .rsplit_once('#')
        .map(|(_, f)| f)
        .unwrap_or(package_id);
    match frag.split_once('@') {
        Some((name, _)) => name.to_owned(),
        // `…/app#0.1.0`: the name is the last path component.
        None => package_id
            .rsplit_once('#')
            .map(|(url, _)| url.rsplit('/').next().unwrap_or(url).to_owned())
            .unwrap_or_else(|| frag.to_owned()),
    }
}

/// The files of a unit, relative to the profile dir.
pub fn unit_members(profile_dir: &Path, id: &str) -> Vec<PathBuf> {
    let mut out = vec![Path::new(".fingerprint").join(id)];
    if profile_dir.join("build").join(id).is_dir() {
        out.push(Path::new("build").join(id));
    }
    out
}

/// Whether `path` (relative to the profile dir) belongs to the unit `id`:
/// the files [`unit_members`] and the `deps/`/`examples/` outputs give it, or
/// for `incremental/<dir>`, that directory. The top-level directories
/// themselves are shared.
pub fn owns(id: &str, path: &Path, is_dir: bool) -> bool {
    let mut parts = path.components().map(|c| c.as_os_str().to_string_lossy());
    let (Some(top), second) = (parts.next(), parts.next()) else {
        return false;
    };
    let Some(second) = second else {
        return is_dir
            && matches!(
                &*top,
                ".fingerprint" | "build" | "deps" | "examples" | "incremental"
            );
    };
    match (&*top, id.split_once('/')) {
        ("incremental", Some(("incremental", dir))) => second == dir,
        (".fingerprint" | "build", None) => second == id,
        ("deps" | "examples", None) => {
            parts.next().is_none() && id.rsplit_once('-').map(|(_, h)| h) == unit_hash(&second)
        }
        _ => false,
    }
}

/// rustc's incremental directories of the given crates, session by session,
/// relative to the profile dir; unfinished (`-working`) sessions are left out.
pub fn incremental_dirs(
    profile_dir: &Path,
    crate_names: &std::collections::HashSet<String>,
) -> Result<Vec<(String, Vec<PathBuf>)>, SnapshotError> {
    let dir = profile_dir.join("incremental");
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(out);
    };
    for entry in entries {
        let entry = entry.map_err(io_err(&dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((krate, _)) = name.rsplit_once('-') else {
            continue;
        };
        if !crate_names.contains(krate) || !entry.path().is_dir() {
            continue;
        }
        let sub = entry.path();
        let mut members = Vec::new();
        for s in fs::read_dir(&sub).map_err(io_err(&sub))? {
            let s = s
                .map_err(io_err(&sub))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            if !s.ends_with("-working") {
                members.push(Path::new("incremental").join(&name).join(s));
            }
        }
        out.push((name, members));
    }
    out.sort();
    Ok(out)
}

/// The `# env-dep:VAR=value` lines of rustc's own dep-info (`*.d`): every
/// `env!`/`option_env!` the crate read, with the value it saw (`None` if
/// unset). Values are unescaped as rustc escapes them.
pub fn rustc_env_deps(text: &str) -> Vec<(String, Option<String>)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# env-dep:"))
        .map(|dep| match dep.split_once('=') {
            Some((k, v)) => (
                k.to_owned(),
                Some(v.replace("\\n", "\n").replace("\\\\", "\\")),
            ),
            None => (dep.to_owned(), None),
        })
        .collect()
}

/// Every environment variable a unit's fingerprint records, with CI's value:
/// those its build script watches (`rerun-if-env-changed`) and those rustc
/// saw it read (cargo's encoded dep-info). `None` when an entry or the
/// dep-info has a format cargo-seed does not know, so that what it records
/// cannot be told.
pub fn recorded_env(fp: &Fingerprint, build_root: &Path) -> Option<Vec<(String, Option<String>)>> {
    let mut env = Vec::new();
    for local in &fp.json.local {
        let (variant, body) = local.as_object()?.iter().next()?;
        match variant.as_str() {
            "RerunIfEnvChanged" => {
                let var = body.get("var")?.as_str()?.to_owned();
                let val = match body.get("val")? {
                    serde_json::Value::Null => None,
                    v => Some(v.as_str()?.to_owned()),
                };
                env.push((var, val));
            }
            "CheckDepInfo" => {
                let rel = body.get("dep_info")?.as_str()?;
                let bytes = fs::read(build_root.join(rel)).ok()?;
                env.extend(depinfo::parse(&bytes)?.env);
            }
            "RerunIfChanged" | "Precalculated" => {}
            _ => return None,
        }
    }
    Some(env)
}

/// Which `env!` values of a unit embed the build machine's workspace root or
/// `CARGO_HOME`. Values under the build dir (`OUT_DIR` and paths below it)
/// are left out on purpose, as cargo itself leaves them when a target dir
/// moves: the files there are compared by content, and a crate that embeds
/// the directory's name as a string keeps the old one (cargo's
/// `dep_info.rs` documents the same gap).
pub fn baked_paths(
    env: &[(String, Option<String>)],
    workspace_root: &Path,
    cargo_home: &Path,
    build_dir: &Path,
) -> Vec<BakedPath> {
    // `p` itself or a path below it, not a longer name (`/ws/ci` is not in
    // `/ws/ci-home/x`).
    let has = |v: &str, p: &Path| {
        let p = p.to_string_lossy();
        !p.is_empty()
            && v.match_indices(&*p)
                .any(|(i, _)| matches!(v[i + p.len()..].chars().next(), None | Some('/')))
    };
    let mut out: Vec<BakedPath> = env
        .iter()
        .filter_map(|(var, value)| {
            let v = value.as_deref()?;
            let under = if has(v, build_dir) {
                return None;
            } else if has(v, workspace_root) {
                BakedRoot::Workspace
            } else if has(v, cargo_home) {
                BakedRoot::CargoHome
            } else {
                return None;
            };
            Some(BakedPath {
                var: var.clone(),
                under,
            })
        })
        .collect();
    out.sort_by(|a, b| a.var.cmp(&b.var));
    out.dedup();
    out
}

/// The parts of a fingerprint's `.json` that cargo-seed reads.
#[derive(Debug, Deserialize)]
pub struct FingerprintJson {
    #[serde(default)]
    pub deps: Vec<(u64, String, bool, u64)>,
    #[serde(default)]
    pub local: Vec<serde_json::Value>,
    #[serde(default)]
    pub rustflags: Vec<String>,
}

/// A unit's fingerprint: the hash cargo stored and the fields beside it.
pub struct Fingerprint {
    pub hash: u64,
    pub json: FingerprintJson,
    /// As cargo wrote them: the hash file's name, its text and the JSON.
    pub record: FingerprintRecord,
}

/// Reads `.fingerprint/<id>/<kind>-<name>{,.json}`.
pub fn read_fingerprint(profile_dir: &Path, id: &str) -> Result<Fingerprint, SnapshotError> {
    let dir = profile_dir.join(".fingerprint").join(id);
    let mut json_path = None;
    for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
        let path = entry.map_err(io_err(&dir))?.path();
        if path.extension().is_some_and(|e| e == "json") {
            json_path = Some(path);
        }
    }
    let json_path = json_path.ok_or_else(|| SnapshotError::Io {
        path: dir.clone(),
        source: io::Error::new(io::ErrorKind::NotFound, "no fingerprint .json"),
    })?;
    let bad = |why: &str| SnapshotError::Io {
        path: json_path.clone(),
        source: io::Error::new(io::ErrorKind::InvalidData, why.to_owned()),
    };
    let fields = fs::read_to_string(&json_path).map_err(io_err(&json_path))?;
    let json: FingerprintJson = serde_json::from_str(&fields).map_err(|e| bad(&e.to_string()))?;
    let hash_path = json_path.with_extension("");
    let text = fs::read_to_string(&hash_path).map_err(io_err(&hash_path))?;
    let hash = parse_hash_file(&text).ok_or_else(|| bad("unreadable fingerprint hash"))?;
    let file = hash_path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Fingerprint {
        hash,
        json,
        record: FingerprintRecord {
            file,
            hash: text.trim().to_owned(),
            fields,
            env: Vec::new(),
        },
    })
}

/// The hash file holds the u64 as hex of its little-endian bytes.
pub fn parse_hash_file(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.len() != 16 {
        return None;
    }
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(u64::from_le_bytes(bytes))
}

/// Decides how the unit's freshness can be checked, and records the digests
/// of everything cargo would mtime-check.
///
/// `produced` are the directories (relative to `build_root`) of the build
/// script runs this unit depends on: files there are restored with those
/// units and are fresh exactly when they are. Any other file under the build
/// dir is an input like a source file (a generated file, an artifact of
/// another build) and is compared by content.
///
/// Every input is recorded relative to a directory the seed maps to its own
/// machine (see [`Roots`]); a unit that reads a file outside all of them is
/// unverifiable, and so is one whose input is not a regular file.
pub fn unit_check(
    unit: &LiveUnit,
    fp: &Fingerprint,
    roots: &Roots,
    produced: &[PathBuf],
) -> Result<Check, SnapshotError> {
    let build_root = roots.build_dir.as_path();
    let is_path = unit.package_id.starts_with("path+");
    // Where cargo will look for each input on this machine.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut tracked = false;
    // Cargo's reference time for the unit: no input may be newer, or what is
    // on disk now is not what was compiled.
    let mut reference: Option<SystemTime> = None;
    let mut note_reference = |path: &Path| -> Result<(), SnapshotError> {
        let t = fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(io_err(path))?;
        reference = Some(reference.map_or(t, |r| r.min(t)));
        Ok(())
    };
    for local in &fp.json.local {
        let Some((variant, body)) = local.as_object().and_then(|o| o.iter().next()) else {
            return Ok(unverifiable("an unreadable fingerprint entry"));
        };
        match variant.as_str() {
            "CheckDepInfo" => {
                tracked = true;
                let Some(rel) = body.get("dep_info").and_then(|d| d.as_str()) else {
                    return Ok(unverifiable("a dep-info entry without a path"));
                };
                let path = build_root.join(rel);
                note_reference(&path)?;
                let bytes = fs::read(&path).map_err(io_err(&path))?;
                let Some(info) = depinfo::parse(&bytes) else {
                    return Ok(unverifiable("a dep-info file in an unknown format"));
                };
                for (base, p) in info.files {
                    files.push(match base {
                        PathBase::Package => unit.package_root.join(p),
                        PathBase::Build => build_root.join(p),
                    });
                }
            }
            "RerunIfChanged" => {
                tracked = true;
                if let Some(output) = body.get("output").and_then(|o| o.as_str()) {
                    note_reference(&build_root.join(output))?;
                }
                let paths = body.get("paths").and_then(|p| p.as_array());
                for p in paths.into_iter().flatten().filter_map(|p| p.as_str()) {
                    files.push(unit.package_root.join(p));
                }
            }
            "RerunIfEnvChanged" => {}
            "Precalculated" if !is_path => {}
            "Precalculated" => {
                return Ok(unverifiable(
                    "cargo decides it by the newest mtime in the package \
                     (a build script without rerun-if-changed)",
                ))
            }
            other => {
                return Ok(unverifiable(&format!(
                    "an unknown fingerprint kind `{other}`"
                )))
            }
        }
    }
    // A workspace unit always carries a content check, even an empty one
    // (a build script that watches only environment variables), so that a
    // manifest without one can be told apart and refused.
    if !tracked && !is_path {
        return Ok(Check::None);
    }
    const PACKAGE_BASES: [Base; 3] = [Base::Workspace, Base::Repository, Base::CargoHome];
    let Some((base, package_root)) = roots.relativize(&unit.package_root, &PACKAGE_BASES) else {
        return Ok(unverifiable(
            "its package lies outside the workspace, the repository and CARGO_HOME",
        ));
    };
    let mut located = Vec::with_capacity(files.len());
    for raw in files {
        let Some(abs) = freshness::normalize(&raw) else {
            return Ok(unverifiable(&format!(
                "it reads {}, a path that climbs above the root",
                raw.display()
            )));
        };
        // `a/../b` means what the file system says, which is what `..`
        // means lexically unless a symlink sits in between.
        if abs != raw && fs::canonicalize(&abs).ok() != fs::canonicalize(&raw).ok() {
            return Ok(unverifiable(&format!(
                "it reads {} through a symlink and `..`",
                raw.display()
            )));
        }
        let entry = if let Ok(rel) = abs.strip_prefix(build_root) {
            if produced.iter().any(|d| rel.starts_with(d)) {
                continue;
            }
            (Base::BuildDir, rel.to_owned())
        } else if let Ok(rel) = abs.strip_prefix(&unit.package_root) {
            (Base::Package, rel.to_owned())
        } else if let Some(found) = roots.relativize(&abs, &PACKAGE_BASES) {
            found
        } else {
            return Ok(unverifiable(&format!(
                "it reads {}, outside the workspace, the repository, CARGO_HOME and the build dir",
                abs.display()
            )));
        };
        located.push((entry, abs));
    }
    located.sort();
    located.dedup();
    let mut inputs = Vec::with_capacity(located.len());
    for ((base, path), abs) in located {
        let sha256 = match digest_path(&abs, roots) {
            Ok(d) => d,
            Err(e) => {
                return Ok(unverifiable(&format!(
                    "{} cannot be read ({e})",
                    path.display()
                )))
            }
        };
        // Checked after reading: an edit during the read shows up here too.
        if let (Some(reference), Ok(modified)) = (reference, newest_mtime(&abs)) {
            if modified > reference {
                return Ok(unverifiable(&format!(
                    "{} changed after the unit was compiled",
                    path.display()
                )));
            }
        }
        inputs.push(Input { base, path, sha256 });
    }
    Ok(Check::Inputs(Inputs {
        base,
        package_root,
        files: inputs,
    }))
}

/// The mtime cargo compares: the file's own, or for a directory the newest
/// below it.
fn newest_mtime(path: &Path) -> io::Result<SystemTime> {
    let meta = fs::metadata(path)?;
    let mut t = meta.modified()?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            t = t.max(newest_mtime(&entry?.path())?);
        }
    }
    Ok(t)
}

fn unverifiable(reason: &str) -> Check {
    Check::Unverifiable {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_roots(dir: &Path, build: &Path) -> Roots {
        Roots::new(&dir.join("ws"), None, &dir.join("home"), build)
    }

    /// Sets a file's mtime to `secs` after the epoch: tests order files in
    /// time explicitly, as no sleep can on a file system with 1-second
    /// timestamps.
    fn set_mtime(path: &Path, secs: u64) {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    }

    /// When the tests' compiles happened.
    const COMPILED: u64 = 1_700_000_000;

    #[test]
    fn unit_hash_from_file_names() {
        assert_eq!(
            unit_hash("libgreet-d2c3ef4c070f78bb.rmeta"),
            Some("d2c3ef4c070f78bb")
        );
        assert_eq!(unit_hash("app-3f5d035ce61743c3"), Some("3f5d035ce61743c3"));
        assert_eq!(
            unit_hash("build_script_build-6b6761007ad40275.d"),
            Some("6b6761007ad40275")
        );
        assert_eq!(unit_hash("libgreet.rlib"), None);
        assert_eq!(unit_hash("serde-json"), None);
    }

    #[test]
    fn units_own_only_their_paths() {
        let id = "greet-d2c3ef4c070f78bb";
        let own = |p: &str, dir| owns(id, Path::new(p), dir);
        assert!(own(".fingerprint/greet-d2c3ef4c070f78bb/lib-greet", false));
        assert!(own("build/greet-d2c3ef4c070f78bb/out/x.rs", false));
        assert!(own("deps/libgreet-d2c3ef4c070f78bb.rlib", false));
        assert!(own("deps", true));
        assert!(!own("deps", false));
        assert!(!own("deps/libitoa-d62e748016f8bd79.rlib", false));
        assert!(!own(".fingerprint/itoa-d62e748016f8bd79/lib-itoa", false));
        assert!(!own("deps/sub/libgreet-d2c3ef4c070f78bb.rlib", false));
        assert!(!own("app", false));
        assert!(!own("incremental/greet-2bym/s-1/dep-graph.bin", false));
        let inc = "incremental/greet-2bym";
        assert!(owns(
            inc,
            Path::new("incremental/greet-2bym/s-1/dep-graph.bin"),
            false
        ));
        assert!(!owns(
            inc,
            Path::new("incremental/app-31li/s-1/dep-graph.bin"),
            false
        ));
    }

    #[test]
    fn env_deps_that_embed_machine_paths() {
        let d = "/ci/ws/target/debug/deps/app-1: src/main.rs\n\n\
                 # env-dep:CARGO_MANIFEST_DIR=/ci/ws/app\n\
                 # env-dep:OUT_DIR=/ci/ws/target/debug/build/app-2/out\n\
                 # env-dep:REG=/ci/home/registry/src/x\n\
                 # env-dep:GREETING=hi\n\
                 # env-dep:UNSET\n";
        let env = rustc_env_deps(d);
        assert_eq!(env.len(), 5);
        assert_eq!(env[4], ("UNSET".to_owned(), None));
        let baked = baked_paths(
            &env,
            Path::new("/ci/ws"),
            Path::new("/ci/home"),
            Path::new("/ci/ws/target"),
        );
        assert_eq!(
            baked,
            vec![
                BakedPath {
                    var: "CARGO_MANIFEST_DIR".into(),
                    under: BakedRoot::Workspace
                },
                BakedPath {
                    var: "REG".into(),
                    under: BakedRoot::CargoHome
                },
            ]
        );
    }

    #[test]
    fn a_longer_name_is_not_under_a_root() {
        let env = [
            (
                "HOME_DIR".to_owned(),
                Some("/x/ci-home/git/embed".to_owned()),
            ),
            ("DATA".to_owned(), Some("/x/ci/target-data/f".to_owned())),
        ];
        let baked = baked_paths(
            &env,
            Path::new("/x/ci"),
            Path::new("/x/ci-home"),
            Path::new("/x/ci/target"),
        );
        // `target-data` is in the workspace, not the build dir.
        assert_eq!(
            baked,
            vec![
                BakedPath {
                    var: "DATA".into(),
                    under: BakedRoot::Workspace
                },
                BakedPath {
                    var: "HOME_DIR".into(),
                    under: BakedRoot::CargoHome
                },
            ]
        );
    }

    #[test]
    fn hash_file_is_little_endian_hex() {
        assert_eq!(parse_hash_file("0100000000000000"), Some(1));
        assert_eq!(parse_hash_file("00000000000000ff\n"), Some(0xff << 56));
        assert_eq!(parse_hash_file("xyz"), None);
    }

    #[test]
    fn an_input_newer_than_its_compile_is_not_vouched_for() {
        let d = tempfile::tempdir().unwrap();
        let (build, pkg) = (d.path().join("target"), d.path().join("ws/app"));
        fs::create_dir_all(build.join("debug/.fingerprint/app-0")).unwrap();
        fs::create_dir_all(pkg.join("src")).unwrap();
        // cargo's encoded dep-info listing src/main.rs (package-relative).
        let mut dep = vec![1, 0, 0, 0, 0xff, 1, 1, 0, 0, 0, 0, 11, 0, 0, 0];
        dep.extend(b"src/main.rs");
        dep.extend([0, 0, 0, 0, 0]);
        let dep_path = build.join("debug/.fingerprint/app-0/dep-bin-app");
        fs::write(pkg.join("src/main.rs"), "fn main() {}").unwrap();
        fs::write(&dep_path, &dep).unwrap();
        // Written, then compiled: cargo's reference is the dep-info's mtime.
        set_mtime(&pkg.join("src/main.rs"), COMPILED - 10);
        set_mtime(&dep_path, COMPILED);
        let unit = LiveUnit {
            id: "app-0".into(),
            kind: UnitKind::Compile,
            package_id: "path+file:///ws/app#0.1.0".into(),
            name: "bin app".into(),
            crate_name: "app".into(),
            package_root: pkg.clone(),
            src_path: None,
            host: false,
        };
        let fp = Fingerprint {
            hash: 0,
            record: FingerprintRecord::default(),
            json: serde_json::from_str(
                r#"{"deps":[],"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/app-0/dep-bin-app","checksum":false}}]}"#,
            )
            .unwrap(),
        };
        let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &[]).unwrap();
        let Check::Inputs(inputs) = check else {
            panic!("{check:?}")
        };
        assert_eq!(inputs.package_root, PathBuf::from("app"));
        assert_eq!(inputs.files[0].path, PathBuf::from("src/main.rs"));
        assert!(inputs.files[0].sha256.is_some());

        // Written in the same second as the compile, as a file system with
        // 1-second timestamps shows it: not newer, so cargo calls it fresh
        // and its digest is recorded.
        set_mtime(&pkg.join("src/main.rs"), COMPILED);
        let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &[]).unwrap();
        assert!(matches!(&check, Check::Inputs(_)), "{check:?}");

        // Edited after the compile: the digest would not be of what was built.
        fs::write(pkg.join("src/main.rs"), "fn main() { edited() }").unwrap();
        set_mtime(&pkg.join("src/main.rs"), COMPILED + 1);
        let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &[]).unwrap();
        assert!(
            matches!(&check, Check::Unverifiable { reason } if reason.contains("after")),
            "{check:?}"
        );
    }

    #[test]
    fn build_dir_inputs_are_compared_unless_a_dependency_produced_them() {
        let d = tempfile::tempdir().unwrap();
        let (build, pkg) = (d.path().join("target"), d.path().join("ws/app"));
        fs::create_dir_all(build.join("debug/.fingerprint/app-0")).unwrap();
        fs::create_dir_all(build.join("debug/build/app-1/out")).unwrap();
        fs::create_dir_all(build.join("gen")).unwrap();
        fs::create_dir_all(&pkg).unwrap();
        fs::write(build.join("gen/data.txt"), "made by another tool").unwrap();
        fs::write(build.join("debug/build/app-1/out/x.rs"), "// by build.rs").unwrap();
        let mut dep = vec![1, 0, 0, 0, 0xff, 1, 2, 0, 0, 0];
        for path in ["gen/data.txt", "debug/build/app-1/out/x.rs"] {
            dep.push(1);
            dep.extend((path.len() as u32).to_le_bytes());
            dep.extend(path.as_bytes());
            dep.push(0);
        }
        dep.extend([0, 0, 0, 0]);
        let dep_path = build.join("debug/.fingerprint/app-0/dep-lib-app");
        fs::write(&dep_path, &dep).unwrap();
        // Both inputs were there before the compile.
        set_mtime(&build.join("gen/data.txt"), COMPILED - 10);
        set_mtime(&build.join("debug/build/app-1/out/x.rs"), COMPILED - 10);
        set_mtime(&dep_path, COMPILED);
        let unit = LiveUnit {
            id: "app-0".into(),
            kind: UnitKind::Compile,
            package_id: "path+file:///ws/app#0.1.0".into(),
            name: "lib app".into(),
            crate_name: "app".into(),
            package_root: pkg,
            src_path: None,
            host: false,
        };
        let fp = Fingerprint {
            hash: 0,
            record: FingerprintRecord::default(),
            json: serde_json::from_str(
                r#"{"local":[{"CheckDepInfo":{"dep_info":"debug/.fingerprint/app-0/dep-lib-app","checksum":false}}]}"#,
            )
            .unwrap(),
        };
        let produced = [PathBuf::from("debug/build/app-1")];
        let check = unit_check(&unit, &fp, &test_roots(d.path(), &build), &produced).unwrap();
        let Check::Inputs(inputs) = check else {
            panic!("{check:?}")
        };
        let files: Vec<_> = inputs
            .files
            .iter()
            .map(|i| (i.base, i.path.clone()))
            .collect();
        assert_eq!(files, vec![(Base::BuildDir, PathBuf::from("gen/data.txt"))]);
    }

    #[test]
    fn package_names_from_ids() {
        assert_eq!(
            package_name("registry+https://github.com/rust-lang/crates.io-index#itoa@1.0.18"),
            "itoa"
        );
        assert_eq!(package_name("path+file:///tmp/ws1/gen#0.1.0"), "gen");
        assert_eq!(
            package_name("path+file:///tmp/ws1/my-dir#my-pkg@0.1.0"),
            "my-pkg"
        );
    }
}
