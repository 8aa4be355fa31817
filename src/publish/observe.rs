//! What a snapshot is made of, read off a build dir after a build: the units
//! the current build uses, the files of each, and what cargo checks to decide
//! whether each is fresh.
//!
//! The set of units comes from cargo itself (`--message-format json` of a
//! no-op build), never from the directory listing: a CI cache holds units of
//! earlier builds (old dependency versions…) that must not be published.

use crate::cargo::unit_id;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cargo_metadata::Message;

use crate::cargo::layout::{package_name, Layout};
use crate::publish::cover::Cover;
use crate::snapshot::manifest::UnitKind;

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
    #[error(transparent)]
    Read(#[from] crate::cargo::ReadError),
    #[error("cargo reported an artifact cargo-seed cannot place: {path}")]
    UnknownArtifact { path: PathBuf },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One unit of the current build, as found in the build dir.
#[derive(Debug, Clone)]
pub(crate) struct LiveUnit {
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
pub(crate) fn observe(
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

/// The units' compiled files by unit hash, and by inode (an uplifted copy
/// such as `target/debug/app` is a hard link to its unit's file).
struct OutputIndex {
    by_hash: HashMap<String, Vec<PathBuf>>,
    by_inode: HashMap<(u64, u64), String>,
}

impl OutputIndex {
    fn scan(profile_dir: &Path, layout: Layout) -> Result<OutputIndex, SnapshotError> {
        let by_hash = layout.outputs(profile_dir)?;
        let mut by_inode = HashMap::new();
        for (hash, files) in &by_hash {
            for file in files {
                if let Some(key) = fs::metadata(profile_dir.join(file))
                    .ok()
                    .and_then(|m| inode_key(&m))
                {
                    by_inode.insert(key, hash.clone());
                }
            }
        }
        Ok(OutputIndex { by_hash, by_inode })
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

/// The units of the current build, and the units' compiled files by unit
/// hash (read once, for both).
#[derive(Default)]
pub(crate) struct LiveBuild {
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
pub(crate) fn live_units(
    profile_dir: &Path,
    layout: Layout,
    messages: &[Message],
) -> Result<LiveBuild, SnapshotError> {
    let index = OutputIndex::scan(profile_dir, layout)?;
    let mut id_of_hash = HashMap::new();
    for id in layout.unit_ids(profile_dir)? {
        if let Some((_, hash)) = unit_id::split(&id) {
            id_of_hash.insert(hash.to_owned(), id.clone());
        }
    }
    let hash_of = |path: &Path| -> Option<String> {
        if let Some(hash) = path
            .strip_prefix(profile_dir)
            .ok()
            .and_then(|rel| layout.hash_of_file(rel))
        {
            return Some(hash);
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
            units.insert(id.clone(), unit);
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
                .strip_prefix(profile_dir)
                .ok()
                .and_then(|rel| layout.hash_of_file(rel))
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

/// Splits cargo's messages by the profile directory (one of `dirs`, below
/// `build_dir` or `target_dir`) that holds their files. A message whose
/// files lie in none of them is an error: it would be left out silently.
pub(crate) fn split_by_profile_dir(
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
