//! The other checkouts of this workspace's repository on this machine, and
//! the build dir of each: what `cargo seed --from auto` chooses a donor
//! among, `cargo seed list --local` shows, and `cargo seed clean-local`
//! looks after.
//!
//! Two sources: `git worktree list` (every worktree of the repository,
//! including those whose directory is gone), and the per-user
//! [registry](super::registry) of checkouts cargo-seed has seen, which
//! adds clones (those sharing a root commit with this one) and remembers
//! where a checkout that is gone kept its build dir. A build dir is asked
//! of cargo wherever the checkout exists; only a gone checkout's comes from
//! the registry.
//!
//! A workspace may sit below the top of its repository: in every checkout
//! it is taken at the same path below the top as this one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::registry::{self, Entry};
use crate::cargo::workspace::cargo_exe;
use crate::git::{self, CommitId, GitError};

/// Another checkout of this workspace's repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkout {
    /// The workspace root in it: its top joined with where this workspace
    /// sits below this checkout's top.
    pub root: PathBuf,
    /// The commit checked out; `None` when it is gone, or on an unborn
    /// branch.
    pub head: Option<CommitId>,
    /// A worktree git lists, rather than a clone cargo-seed has seen.
    pub worktree: bool,
    /// Its directory is there.
    pub exists: bool,
    /// Its build dir: asked of cargo when the checkout exists and has a
    /// `Cargo.toml` there; for one that is gone, the one it was last seen
    /// with. `None` when neither is known (or cargo could not say).
    pub build_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{} is not inside its git work tree {}", .root.display(), .toplevel.display())]
    OutsideRepository { root: PathBuf, toplevel: PathBuf },
    #[error("failed to update the record of checkouts {}", .file.display())]
    Registry {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// This workspace in its repository: the top of its checkout, and where
/// the workspace sits below it.
struct Here {
    toplevel: PathBuf,
    below_top: PathBuf,
}

impl Here {
    /// The workspace root in the checkout whose top is `top`.
    fn at(&self, top: &Path) -> PathBuf {
        match self.below_top.as_os_str().is_empty() {
            true => top.to_owned(),
            false => top.join(&self.below_top),
        }
    }
}

fn here(ws_root: &Path) -> Result<Here, LocalError> {
    let root = canonical(ws_root);
    let toplevel = canonical(&git::toplevel(&root)?);
    let below_top = root
        .strip_prefix(&toplevel)
        .map_err(|_| LocalError::OutsideRepository {
            root: root.clone(),
            toplevel: toplevel.clone(),
        })?
        .to_owned();
    Ok(Here {
        toplevel,
        below_top,
    })
}

/// The checkouts of `ws_root`'s repository on this machine other than
/// `ws_root`'s own: its worktrees first (as git lists them), then the
/// clones cargo-seed has seen, the most recently seen first. Bare
/// repositories are left out.
pub(crate) fn checkouts(ws_root: &Path) -> Result<Vec<Checkout>, LocalError> {
    let here = here(ws_root)?;
    let seen = registry::read(&registry::location());
    let last_build_dir = |root: &Path| {
        seen.iter()
            .find(|e| e.root == root)
            .map(|e| e.build_dir.clone())
    };
    let mut tops = HashSet::from([here.toplevel.clone()]);
    let mut out = Vec::new();
    for w in git::worktrees(ws_root)? {
        let top = canonical(&w.path);
        if w.bare || !tops.insert(top.clone()) {
            continue;
        }
        let root = here.at(&top);
        let exists = !w.prunable && top.is_dir();
        out.push(Checkout {
            build_dir: match exists {
                true => ask_cargo(&root),
                false => last_build_dir(&root),
            },
            root,
            head: w.head,
            worktree: true,
            exists,
        });
    }
    // Asked only when there is a clone to compare: on a long history
    // without a commit-graph, git walks all of it.
    let ours: HashSet<String> = match seen.is_empty() {
        true => HashSet::new(),
        false => git::root_commits(ws_root)?
            .into_iter()
            .map(|c| c.to_string())
            .collect(),
    };
    for e in &seen {
        // The same workspace of a checkout of the same repository.
        let same_workspace = e.root.strip_prefix(&e.toplevel).ok() == Some(&here.below_top);
        let same_repository = e.roots.iter().any(|r| ours.contains(r));
        if !same_workspace || !same_repository || !tops.insert(e.toplevel.clone()) {
            continue;
        }
        let exists = e.toplevel.is_dir();
        out.push(Checkout {
            root: e.root.clone(),
            head: exists
                .then(|| git::resolve_commit(&e.root, "HEAD").ok())
                .flatten(),
            worktree: false,
            exists,
            build_dir: match exists {
                true => ask_cargo(&e.root),
                false => Some(e.build_dir.clone()),
            },
        });
    }
    Ok(out)
}

/// Records that cargo-seed ran in the workspace at `root` with build dir
/// `build_dir`, for [`checkouts`] to find from the repository's other
/// checkouts. Called after a seed or publish succeeded; its failure is not
/// theirs.
pub(crate) fn remember(root: &Path, build_dir: &Path) -> Result<(), LocalError> {
    let root = canonical(root);
    let toplevel = canonical(&git::toplevel(&root)?);
    let roots = git::root_commits(&root)?
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    let entry = Entry {
        build_dir: canonical(build_dir),
        last_seen: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        root,
        toplevel,
        roots,
    };
    let file = registry::location();
    registry::update(&file, |entries| {
        entries.retain(|e| e.root != entry.root);
        entries.push(entry);
    })
    .map_err(|source| LocalError::Registry { file, source })
}

/// Drops a checkout from the registry (`clean-local`, once its build dir
/// is removed).
pub(crate) fn forget(root: &Path) -> Result<(), LocalError> {
    let file = registry::location();
    registry::update(&file, |entries| entries.retain(|e| e.root != root))
        .map_err(|source| LocalError::Registry { file, source })
}

/// The build dir cargo reports for the workspace at `root`, asked there
/// (cargo reads its configuration from the directory it runs in), or
/// `None` when it is not there or cargo cannot say.
fn ask_cargo(root: &Path) -> Option<PathBuf> {
    if !root.join("Cargo.toml").is_file() {
        return None;
    }
    let meta = cargo_metadata::MetadataCommand::new()
        .cargo_path(cargo_exe())
        .no_deps()
        .manifest_path(root.join("Cargo.toml"))
        .current_dir(root)
        .exec()
        .ok()?;
    Some(
        meta.build_directory
            .unwrap_or(meta.target_directory)
            .into_std_path_buf(),
    )
}

/// The path with links resolved, when it exists: git prints resolved
/// paths, and two spellings of one checkout must compare equal.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}
