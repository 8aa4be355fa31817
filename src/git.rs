//! The commit graph, asked of `git`: which commit is checked out and how far
//! each ancestor is from it; and the repository around it: its root
//! commits, its worktrees, where it keeps its hooks.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

/// A full commit id, as git prints it: 40 lowercase hex digits (64 in a
/// SHA-256 repository). Only [`CommitId::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CommitId(String);

impl CommitId {
    pub fn parse(s: &str) -> Option<CommitId> {
        let hex = s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        (hex && matches!(s.len(), 40 | 64)).then(|| CommitId(s.to_owned()))
    }

    /// The first 12 digits, as the summaries show a commit.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for CommitId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("failed to run git in {dir}")]
    Spawn {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("git printed `{output}` in {dir} where a commit id belongs")]
    NotACommit { dir: PathBuf, output: String },
    #[error("`git {args}` failed in {dir}: {stderr}")]
    Failed {
        dir: PathBuf,
        args: String,
        stderr: String,
    },
}

fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|source| GitError::Spawn {
            dir: dir.to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(GitError::Failed {
            dir: dir.to_owned(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The full commit id `rev` names (`HEAD`, a branch, a short sha…).
pub(crate) fn resolve_commit(dir: &Path, rev: &str) -> Result<CommitId, GitError> {
    let spec = format!("{rev}^{{commit}}");
    let out = git(dir, &["rev-parse", "--verify", "--quiet", &spec])?;
    CommitId::parse(out.trim()).ok_or_else(|| GitError::NotACommit {
        dir: dir.to_owned(),
        output: out.trim().to_owned(),
    })
}

/// The top of the work tree that holds `dir`.
pub(crate) fn toplevel(dir: &Path) -> Result<PathBuf, GitError> {
    Ok(PathBuf::from(
        git(dir, &["rev-parse", "--show-toplevel"])?.trim(),
    ))
}

/// How many commits lie between `a` and `b` on either side (the length of
/// `git rev-list a...b`); `None` when this repository lacks one of them.
pub(crate) fn distance(dir: &Path, a: &str, b: &str) -> Option<usize> {
    let range = format!("{a}...{b}");
    git(dir, &["rev-list", "--count", &range])
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The root commits of `HEAD`'s history: what every clone and worktree of
/// one repository shares. Empty on an unborn branch.
pub(crate) fn root_commits(dir: &Path) -> Result<Vec<CommitId>, GitError> {
    if resolve_commit(dir, "HEAD").is_err() {
        return Ok(Vec::new());
    }
    let out = git(dir, &["rev-list", "--max-parents=0", "HEAD"])?;
    Ok(out.lines().filter_map(CommitId::parse).collect())
}

/// `git rev-parse --git-path <path>` run in `dir`, made absolute: where git
/// keeps `path` (`hooks` honours `core.hooksPath`, and a linked worktree's
/// resolves in the repository's common dir).
pub(crate) fn git_path(dir: &Path, path: &str) -> Result<PathBuf, GitError> {
    let out = git(dir, &["rev-parse", "--git-path", path])?;
    Ok(dir.join(out.trim_end_matches(['\n', '\r'])))
}

/// One entry of `git worktree list --porcelain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Worktree {
    /// The top of its work tree (for a bare repository, the repository).
    pub path: PathBuf,
    /// `None` on an unborn branch or for a bare repository.
    pub head: Option<CommitId>,
    pub bare: bool,
    /// Git can prune it: its directory is gone.
    pub prunable: bool,
}

/// The worktrees of the repository `dir` belongs to, the main one first.
pub(crate) fn worktrees(dir: &Path) -> Result<Vec<Worktree>, GitError> {
    // NUL-separated (git 2.36+) so that a path may hold a line break; an
    // older git is asked for lines.
    match git(dir, &["worktree", "list", "--porcelain", "-z"]) {
        Ok(out) => Ok(parse_worktrees(&out, '\0')),
        Err(GitError::Failed { .. }) => Ok(parse_worktrees(
            &git(dir, &["worktree", "list", "--porcelain"])?,
            '\n',
        )),
        Err(e) => Err(e),
    }
}

/// Reads `git worktree list --porcelain` output: records of `sep`-ended
/// fields (`worktree <path>`, `HEAD <id>`, `bare`, `prunable <why>`, …),
/// each record ended by an empty field. Fields it does not know are skipped.
fn parse_worktrees(out: &str, sep: char) -> Vec<Worktree> {
    let mut list = Vec::new();
    let mut current: Option<Worktree> = None;
    for field in out.split(sep) {
        let (key, value) = field.split_once(' ').unwrap_or((field, ""));
        match (key, current.as_mut()) {
            ("worktree", _) => {
                list.extend(current.take());
                current = Some(Worktree {
                    path: PathBuf::from(value),
                    head: None,
                    bare: false,
                    prunable: false,
                });
            }
            // An unborn branch's HEAD is printed as the null id.
            ("HEAD", Some(w)) => {
                w.head = CommitId::parse(value).filter(|id| id.0.bytes().any(|b| b != b'0'))
            }
            ("bare", Some(w)) => w.bare = true,
            ("prunable", Some(w)) => w.prunable = true,
            ("", _) => list.extend(current.take()),
            _ => {}
        }
    }
    list.extend(current);
    list
}

/// Whether the working tree differs from `HEAD` (tracked or untracked files).
pub(crate) fn is_dirty(dir: &Path) -> Result<bool, GitError> {
    Ok(!git(dir, &["status", "--porcelain"])?.trim().is_empty())
}

/// Ancestors of `from` (itself included, at distance 0), nearest first, up to
/// `max_distance` generations away. Distance is the length of the shortest
/// parent chain, so a merge's second parent is as near as its first.
pub(crate) fn ancestors(
    dir: &Path,
    from: &str,
    max_distance: usize,
) -> Result<Vec<(CommitId, usize)>, GitError> {
    // Commits within N generations number at most a few times N in practice;
    // the cap keeps a huge history from being listed whole.
    let cap = (max_distance + 1).saturating_mul(8).max(64).to_string();
    let listing = git(
        dir,
        &[
            "rev-list",
            "--parents",
            "--topo-order",
            "--max-count",
            &cap,
            from,
        ],
    )?;
    // Walked by commit id: `HEAD` or a branch name is no key of `parents`.
    let from = resolve_commit(dir, from)?;
    let from = from.as_str();
    let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
    for line in listing.lines() {
        let mut ids = line.split_whitespace();
        if let Some(id) = ids.next() {
            parents.insert(id, ids.collect());
        }
    }
    let mut out = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut queue = VecDeque::from([(from, 0usize)]);
    seen.insert(from, 0);
    while let Some((id, dist)) = queue.pop_front() {
        // Every id is git's own output; one that is not a commit id is
        // skipped rather than looked up in a store.
        if let Some(id) = CommitId::parse(id) {
            out.push((id, dist));
        }
        if dist == max_distance {
            continue;
        }
        for parent in parents.get(id).into_iter().flatten() {
            if !seen.contains_key(parent) {
                seen.insert(parent, dist + 1);
                queue.push_back((parent, dist + 1));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{parse_worktrees, CommitId, Worktree};
    use std::path::PathBuf;

    #[test]
    fn worktree_lists_as_git_prints_them() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let listing = format!(
            "worktree /src/repo.git\0bare\0\0\
             worktree /src/main\0HEAD {a}\0branch refs/heads/main\0\0\
             worktree /src/fix\nline\0HEAD {b}\0detached\0locked\0\
             prunable gitdir file points to non-existent location\0\0\
             worktree /src/new\0HEAD {}\0branch refs/heads/new\0\0",
            "0".repeat(40)
        );
        let wt = |path: &str, head: Option<&str>, bare, prunable| Worktree {
            path: PathBuf::from(path),
            head: head.and_then(CommitId::parse),
            bare,
            prunable,
        };
        assert_eq!(
            parse_worktrees(&listing, '\0'),
            [
                wt("/src/repo.git", None, true, false),
                wt("/src/main", Some(&a), false, false),
                wt("/src/fix\nline", Some(&b), false, true),
                wt("/src/new", None, false, false),
            ]
        );
        let lines = format!("worktree /src/main\nHEAD {a}\nbranch refs/heads/main\n\n");
        assert_eq!(
            parse_worktrees(&lines, '\n'),
            [wt("/src/main", Some(&a), false, false)]
        );
    }

    #[test]
    fn commit_ids_are_full_lowercase_hex() {
        let id = CommitId::parse("0123456789abcdef0123456789abcdef01234567").unwrap();
        assert_eq!(id.short(), "0123456789ab");
        assert!(CommitId::parse("0123456789ab").is_none());
        assert!(CommitId::parse("0123456789ABCDEF0123456789ABCDEF01234567").is_none());
        assert!(CommitId::parse("HEAD").is_none());
        assert!(CommitId::parse(&"a".repeat(64)).is_some());
    }
}
