//! The commit graph, asked of `git`: which commit is checked out and how far
//! each ancestor is from it.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("failed to run git in {dir}")]
    Spawn {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
pub fn resolve_commit(dir: &Path, rev: &str) -> Result<String, GitError> {
    let spec = format!("{rev}^{{commit}}");
    Ok(git(dir, &["rev-parse", "--verify", "--quiet", &spec])?
        .trim()
        .to_owned())
}

/// The top of the work tree that holds `dir`.
pub fn toplevel(dir: &Path) -> Result<PathBuf, GitError> {
    Ok(PathBuf::from(
        git(dir, &["rev-parse", "--show-toplevel"])?.trim(),
    ))
}

/// Whether the working tree differs from `HEAD` (tracked or untracked files).
pub fn is_dirty(dir: &Path) -> Result<bool, GitError> {
    Ok(!git(dir, &["status", "--porcelain"])?.trim().is_empty())
}

/// Ancestors of `from` (itself included, at distance 0), nearest first, up to
/// `max_distance` generations away. Distance is the length of the shortest
/// parent chain, so a merge's second parent is as near as its first.
pub fn ancestors(
    dir: &Path,
    from: &str,
    max_distance: usize,
) -> Result<Vec<(String, usize)>, GitError> {
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
        out.push((id.to_owned(), dist));
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
