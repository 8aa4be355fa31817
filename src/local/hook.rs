//! `cargo seed setup --worktrees`: a git `post-checkout` hook that seeds
//! a new checkout's build dir as git makes it, and `--undo`.
//!
//! The hook goes where git looks for this repository's hooks (`git
//! rev-parse --git-path hooks`: `core.hooksPath` if set, else the common
//! dir's `hooks`, shared by every worktree). On a fresh checkout (`git
//! worktree add`, `git clone --template`: git passes the null commit as the
//! previous `HEAD`, and `1` for a branch checkout) it runs, in each
//! workspace it was installed for, `cargo seed --from auto` (the best
//! local donor), and when that fails `cargo seed` (the store). On any other
//! checkout it does nothing.
//!
//! It must never fail or hang the checkout (git makes the hook's exit
//! status the command's): it exits with the status of the hook it chains,
//! 0 when there is none, whatever the seed did; it runs nothing when
//! `cargo-seed` is not on `PATH`, nor when `CARGO_SEED_HOOK=0`; the seed
//! reads no terminal. And it must never lose a hook that was there: one
//! that is not cargo-seed's is renamed to [`CHAINED`] and run first with the
//! same arguments; `--undo` renames it back (same bytes, same mode). A hook
//! that is not ours is never written over.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::git::{self, GitError};

pub(crate) const HOOK: &str = "post-checkout";

/// Where a hook that was there before is kept, and run from ours.
pub(crate) const CHAINED: &str = "post-checkout.cargo-seed-chained";

/// The line that makes a hook ours.
const MARKER: &str = "# cargo-seed post-checkout hook";

/// What `setup --worktrees` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Done {
    /// Written; `chained` is the hook that was there, kept and run first.
    Installed {
        hook: PathBuf,
        chained: Option<PathBuf>,
    },
    /// Ours was there; rewritten to seed this workspace too (or in this
    /// version's words).
    Updated { hook: PathBuf },
    /// Ours was there, as it would be written.
    Already { hook: PathBuf },
    /// `--undo` removed ours; `restored` is the chained hook put back.
    Removed {
        hook: PathBuf,
        restored: Option<PathBuf>,
    },
    /// `--undo` found no hook of ours.
    NothingToUndo { hook: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(
        "{} is not cargo-seed's, and {} (where cargo-seed keeps a hook it chains) is taken; \
         writing the hook would lose one of them",
        .hook.display(), .chained.display()
    )]
    Occupied { hook: PathBuf, chained: PathBuf },
    #[error("failed to {op} {}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> HookError + 'a {
    move |source| HookError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// What is at a hook's path.
enum Found {
    Nothing,
    /// Ours, seeding these workspaces (relative to the checkout's top).
    Ours(Vec<String>),
    /// Anything else, a link included.
    Theirs,
}

fn found(path: &Path) -> Found {
    if fs::symlink_metadata(path).is_err() {
        return Found::Nothing;
    }
    match fs::read_to_string(path)
        .ok()
        .and_then(|s| workspaces_of(&s))
    {
        Some(list) => Found::Ours(list),
        None => Found::Theirs,
    }
}

/// The workspaces our hook seeds, or `None` if `script` is not ours.
fn workspaces_of(script: &str) -> Option<Vec<String>> {
    let mut lines = script.lines();
    if lines.next() != Some("#!/bin/sh") || !lines.next()?.starts_with(MARKER) {
        return None;
    }
    Some(
        lines
            .filter_map(|line| match shlex::split(line.trim())?.as_slice() {
                [call, dir] if call == "seed_workspace" => Some(dir.clone()),
                _ => None,
            })
            .collect(),
    )
}

/// The hooks dir git uses for the repository of `ws_root`, and where the
/// workspace sits below the top of its checkout (`.` at the top).
fn place(ws_root: &Path) -> Result<(PathBuf, String), HookError> {
    let root = ws_root.canonicalize().map_err(io("read", ws_root))?;
    let top = git::toplevel(&root)?;
    let top = top.canonicalize().map_err(io("read", &top))?;
    let below = root.strip_prefix(&top).unwrap_or(Path::new(""));
    let below = match below.to_string_lossy() {
        s if s.is_empty() => ".".to_owned(),
        s => s.into_owned(),
    };
    Ok((git::git_path(&top, "hooks")?, below))
}

/// Installs the hook for the repository of `ws_root`, to seed that
/// workspace; one already there for other workspaces of the repository
/// seeds this one too.
pub(crate) fn install(ws_root: &Path) -> Result<Done, HookError> {
    let (dir, workspace) = place(ws_root)?;
    let (hook, chained) = (dir.join(HOOK), dir.join(CHAINED));
    let before = found(&hook);
    let mut workspaces = match &before {
        Found::Ours(list) => list.clone(),
        Found::Nothing | Found::Theirs => Vec::new(),
    };
    if !workspaces.contains(&workspace) {
        workspaces.push(workspace);
    }
    let text = script(&workspaces);
    let moved = matches!(before, Found::Theirs);
    match before {
        Found::Ours(_) if fs::read_to_string(&hook).ok().as_deref() == Some(text.as_str()) => {
            return Ok(Done::Already { hook })
        }
        Found::Ours(_) => {
            write_executable(&hook, &text)?;
            return Ok(Done::Updated { hook });
        }
        Found::Theirs if fs::symlink_metadata(&chained).is_ok() => {
            return Err(HookError::Occupied { hook, chained })
        }
        // A rename keeps the hook whole: its bytes, its mode, a link as a link.
        Found::Theirs => fs::rename(&hook, &chained).map_err(io("rename", &hook))?,
        Found::Nothing => fs::create_dir_all(&dir).map_err(io("create", &dir))?,
    }
    if let Err(e) = write_executable(&hook, &text) {
        // Theirs goes back where it was.
        if moved {
            let _ = fs::rename(&chained, &hook);
        }
        return Err(e);
    }
    Ok(Done::Installed {
        chained: fs::symlink_metadata(&chained).is_ok().then_some(chained),
        hook,
    })
}

/// Removes our hook from the repository of `ws_root` and puts back the
/// hook it chained. A hook that is not ours is left alone.
pub(crate) fn uninstall(ws_root: &Path) -> Result<Done, HookError> {
    let (dir, _) = place(ws_root)?;
    let (hook, chained) = (dir.join(HOOK), dir.join(CHAINED));
    match found(&hook) {
        Found::Theirs => return Ok(Done::NothingToUndo { hook }),
        Found::Ours(_) => fs::remove_file(&hook).map_err(io("remove", &hook))?,
        // Ours was removed by hand: the chained hook still goes back.
        Found::Nothing if fs::symlink_metadata(&chained).is_err() => {
            return Ok(Done::NothingToUndo { hook })
        }
        Found::Nothing => {}
    }
    let restored = if fs::symlink_metadata(&chained).is_ok() {
        fs::rename(&chained, &hook).map_err(io("rename", &chained))?;
        Some(hook.clone())
    } else {
        None
    };
    Ok(Done::Removed { hook, restored })
}

/// Writes beside and renames over, so git never runs half a hook.
fn write_executable(path: &Path, text: &str) -> Result<(), HookError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io("write in", dir))?;
    tmp.write_all(text.as_bytes())
        .map_err(io("write", tmp.path()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755))
            .map_err(io("make executable", path))?;
    }
    tmp.persist(path)
        .map_err(|e| io("replace", path)(e.error))?;
    Ok(())
}

/// The hook, seeding `workspaces` (relative to the checkout's top).
fn script(workspaces: &[String]) -> String {
    let calls: String = workspaces
        .iter()
        .map(|w| {
            // A path with a NUL byte cannot be a workspace's.
            let quoted = shlex::try_quote(w).unwrap_or_default();
            format!("        seed_workspace {quoted}\n")
        })
        .collect();
    format!(
        r#"#!/bin/sh
{MARKER}: written by `cargo seed setup --worktrees`, removed
# (with the hook it chains put back) by `cargo seed setup --worktrees --undo`.
#
# On a fresh checkout (`git worktree add`, a clone: the previous HEAD is the
# null commit and this is a branch checkout) it seeds each workspace below
# from the best local checkout (`cargo seed --from auto`), else from the
# store (`cargo seed`); on any other checkout it does nothing. It never fails
# the checkout: it exits with the status of the hook it chains (0 if none).
# CARGO_SEED_HOOK=0 turns it off.

status=0
chained="$(dirname "$0")/{CHAINED}"
if [ -x "$chained" ]; then
    "$chained" "$@"
    status=$?
fi

say() {{
    echo "cargo-seed hook: $*" >&2
}}

seed_workspace() {{
    (
        cd "$1" 2>/dev/null && [ -f Cargo.toml ] || exit 0
        # Git may point these at the checkout it runs the hook for; cargo-seed
        # also runs git in other checkouts.
        unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_PREFIX
        say "seeding $PWD from the best local checkout (cargo seed --from auto)"
        cargo seed --from auto </dev/null >&2
        code=$?
        [ "$code" -eq 0 ] && exit 0
        if [ "$code" -eq 3 ]; then
            say "no local checkout to seed from; seeding from the store (cargo seed)"
        else
            say "cargo seed --from auto failed (exit $code); seeding from the store (cargo seed)"
        fi
        cargo seed </dev/null >&2
        code=$?
        [ "$code" -eq 0 ] || say "cargo seed did not seed $PWD (exit $code); cargo will build it from scratch"
    )
}}

fresh_checkout() {{
    case "$1" in
        "" | *[!0]*) return 1 ;;
    esac
    [ "$3" = 1 ]
}}

if fresh_checkout "$@" && [ "${{CARGO_SEED_HOOK:-1}}" != 0 ]; then
    if command -v cargo-seed >/dev/null 2>&1 && command -v cargo >/dev/null 2>&1; then
{calls}    else
        say "cargo-seed is not on PATH; the new checkout is not seeded"
    fi
fi
exit "$status"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_is_ours_by_its_first_lines_and_lists_its_workspaces() {
        let dirs = [".".to_owned(), "tools/my ws".to_owned(), "it's".to_owned()];
        let text = script(&dirs);
        assert_eq!(workspaces_of(&text).unwrap(), dirs);
        assert_eq!(workspaces_of("#!/bin/sh\necho mine\n"), None);
        assert_eq!(
            workspaces_of(&text.replacen("#!/bin/sh", "#!/bin/bash", 1)),
            None
        );
    }
}
