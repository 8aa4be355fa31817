//! Worktree upkeep: the post-checkout hook of `cargo seed setup
//! --worktrees`, run by a real git on `git worktree add` and on branch
//! switches, and `cargo seed clean-local` on real build dirs of real
//! worktrees and clones.
//!
//! The hook's tests put a fake `cargo` (and `cargo-seed`) first on git's
//! `PATH`, which records how it was called, so that nothing is built; the
//! hook is installed by the real binary.

mod common;

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// A repository at `<root>/main` holding a one-crate workspace at `below`
/// (`.` for the top), committed.
fn repo(root: &Path, below: &str) -> PathBuf {
    let top = root.join("main");
    let ws = top.join(below);
    fs::create_dir_all(ws.join("src")).unwrap();
    fs::write(
        ws.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    fs::write(ws.join("src/lib.rs"), "pub fn tiny() -> u8 { 7 }\n").unwrap();
    fs::write(top.join(".gitignore"), "target/\nCargo.lock\n").unwrap();
    git(&top, &["init", "-q", "-b", "main"]);
    git(&top, &["add", "-A"]);
    git(&top, &["commit", "-qm", "tiny"]);
    top
}

/// The directory on `PATH` that holds `program`.
fn dir_of(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .find(|d| d.join(program).is_file())
        .unwrap_or_else(|| panic!("no {program} on PATH"))
}

/// A directory with a fake `cargo` that appends `<cwd>|<args>` to
/// `$FAKE_LOG` and exits with `$FAKE_FROM_EXIT` for `seed --from auto`,
/// `$FAKE_SEED_EXIT` otherwise; and, with `with_seed`, a `cargo-seed`.
fn fake_bin(dir: &Path, with_seed: bool) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    let script = |name: &str, body: &str| {
        let path = dir.join(name);
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    };
    script(
        "cargo",
        "#!/bin/sh\nprintf '%s|%s\\n' \"$PWD\" \"$*\" >> \"$FAKE_LOG\"\n\
         case \"$*\" in\n  'seed --from auto') exit \"${FAKE_FROM_EXIT:-0}\" ;;\n\
         esac\nexit \"${FAKE_SEED_EXIT:-0}\"\n",
    );
    if with_seed {
        script("cargo-seed", "#!/bin/sh\nexit 0\n");
    }
    dir.to_owned()
}

/// `git <args>` in `dir` with only `bin` (the fakes), git and sh on `PATH`.
fn git_hooked(dir: &Path, bin: &Path, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let path = std::env::join_paths([bin.to_owned(), dir_of("git"), dir_of("sh")]).unwrap();
    command("git", dir)
        .args(args)
        .env("PATH", path)
        .env("FAKE_LOG", log)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The lines the fake cargo logged.
fn logged(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The events of `cargo seed <args> --message-format json` run in `dir`
/// with the record of checkouts at `record`, and whether it succeeded.
fn events(dir: &Path, record: &Path, args: &[&str]) -> (Vec<serde_json::Value>, Output) {
    let mut all = args.to_vec();
    all.extend(["--message-format", "json"]);
    let out = seed_env(dir, &all, &[("CARGO_SEED_CHECKOUTS", record.to_str())]);
    let events = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (events, out)
}

fn of_kind<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// The hooks in a hooks dir, without git's samples.
fn hooks(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".sample"))
        .collect();
    v.sort();
    v
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_hook_installs_once_runs_the_hook_it_chains_and_undo_puts_that_back() {
    let root = scratch("local-hook-chain");
    let top = repo(&root, ".");
    let record = root.join("checkouts.json");
    let hooks_dir = top.join(".git/hooks");
    let user_log = root.join("user-hook.log");
    let theirs = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\nexit \"${{USER_HOOK_EXIT:-0}}\"\n",
        user_log.display()
    );
    let post_checkout = hooks_dir.join("post-checkout");
    fs::write(&post_checkout, &theirs).unwrap();
    fs::set_permissions(&post_checkout, fs::Permissions::from_mode(0o750)).unwrap();

    let (first, out) = events(&top, &record, &["setup", "--worktrees"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(first[0]["status"], "installed", "{first:?}");
    let chained = hooks_dir.join("post-checkout.cargo-seed-chained");
    assert_eq!(first[0]["chained"], chained.to_str().unwrap());
    let (again, _) = events(&top, &record, &["setup", "--worktrees"]);
    assert_eq!(again[0]["status"], "already", "{again:?}");
    assert_eq!(
        hooks(&hooks_dir),
        ["post-checkout", "post-checkout.cargo-seed-chained"],
        "one hook of ours, and theirs kept"
    );
    assert_eq!(fs::read_to_string(&chained).unwrap(), theirs);

    // git runs ours, which runs theirs first with git's arguments and
    // passes its exit status on, then seeds.
    let bin = fake_bin(&root.join("bin"), true);
    let log = root.join("cargo.log");
    let out = git_hooked(
        &top,
        &bin,
        &log,
        &["worktree", "add", "-q", "../wt"],
        &[("USER_HOOK_EXIT", "5")],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let wt = root.join("wt").canonicalize().unwrap();
    let head = git(&wt, &["rev-parse", "HEAD"]);
    assert_eq!(
        fs::read_to_string(&user_log).unwrap(),
        format!("{} {head} 1\n", "0".repeat(40))
    );
    assert_eq!(logged(&log), [format!("{}|seed --from auto", wt.display())]);
    let out = git_hooked(&top, &bin, &log, &["checkout", "-q", "-b", "other"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(&user_log).unwrap().lines().count(),
        2,
        "theirs runs on every checkout, as before"
    );

    let (undone, _) = events(&top, &record, &["setup", "--worktrees", "--undo"]);
    assert_eq!(undone[0]["status"], "removed", "{undone:?}");
    assert_eq!(hooks(&hooks_dir), ["post-checkout"]);
    assert_eq!(fs::read(&post_checkout).unwrap(), theirs.as_bytes());
    assert_eq!(mode(&post_checkout), 0o750);
    let (nothing, _) = events(&top, &record, &["setup", "--worktrees", "--undo"]);
    assert_eq!(nothing[0]["status"], "unchanged", "{nothing:?}");
    assert_eq!(fs::read(&post_checkout).unwrap(), theirs.as_bytes());
}

#[test]
fn the_hook_seeds_a_new_worktree_never_fails_it_and_ignores_branch_switches() {
    let root = scratch("local-hook-seed");
    // The workspace sits below the top of the repository.
    let top = repo(&root, "rust");
    let ws = top.join("rust");
    let record = root.join("checkouts.json");
    let (done, out) = events(&ws, &record, &["setup", "--worktrees"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(done[0]["status"], "installed");
    assert_eq!(done[0]["chained"], serde_json::Value::Null);
    let bin = fake_bin(&root.join("bin"), true);
    let log = root.join("cargo.log");
    let add = |name: &str, env: &[(&str, &str)]| {
        let out = git_hooked(&top, &bin, &log, &["worktree", "add", "-q", name], env);
        assert!(
            out.status.success(),
            "the checkout must not fail: {}",
            text(&out.stderr)
        );
        assert!(root.join(name.trim_start_matches("../")).is_dir());
        let at = root
            .join(name.trim_start_matches("../"))
            .canonicalize()
            .unwrap();
        (at.join("rust").display().to_string(), text(&out.stderr))
    };

    let (wt, _) = add("../wt", &[]);
    assert_eq!(logged(&log), [format!("{wt}|seed --from auto")]);

    for switch in [
        &["checkout", "-q", "-b", "other"][..],
        &["checkout", "-q", "main"],
        &["switch", "-q", "other"],
    ] {
        let out = git_hooked(&top, &bin, &log, switch, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    assert_eq!(logged(&log).len(), 1, "a branch switch seeds nothing");

    let (wt2, said) = add("../wt2", &[("FAKE_FROM_EXIT", "3")]);
    assert_eq!(
        logged(&log)[1..],
        [format!("{wt2}|seed --from auto"), format!("{wt2}|seed")],
        "no local donor: the store"
    );
    assert!(said.contains("no local checkout to seed from"), "{said}");

    let (wt3, said) = add(
        "../wt3",
        &[("FAKE_FROM_EXIT", "1"), ("FAKE_SEED_EXIT", "1")],
    );
    assert_eq!(
        logged(&log)[3..],
        [format!("{wt3}|seed --from auto"), format!("{wt3}|seed")]
    );
    assert!(said.contains("did not seed"), "{said}");

    add("../wt4", &[("CARGO_SEED_HOOK", "0")]);
    assert_eq!(logged(&log).len(), 5, "CARGO_SEED_HOOK=0 skips it");

    // No cargo-seed on PATH: nothing is run, and the checkout goes on.
    let bare_bin = fake_bin(&root.join("bin-without-seed"), false);
    let out = git_hooked(
        &top,
        &bare_bin,
        &log,
        &["worktree", "add", "-q", "../wt5"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cargo-seed is not on PATH"));
    assert_eq!(logged(&log).len(), 5);

    // The worktrees are this workspace's checkouts, at the same path below
    // their tops, each with the build dir cargo reports there.
    let (listed, out) = events(&ws, &record, &["clean-local"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = of_kind(&listed, "local_checkout");
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(rows[0]["current"], true);
    let found = rows.iter().find(|r| r["root"] == wt.as_str()).unwrap();
    assert_eq!(found["worktree"], true);
    assert_eq!(found["exists"], true);
    assert_eq!(found["build_dir"], format!("{wt}/target"));
}

#[test]
fn setup_never_writes_over_a_hook_it_cannot_keep() {
    let root = scratch("local-hook-occupied");
    let top = repo(&root, ".");
    let record = root.join("checkouts.json");
    let hooks_dir = top.join(".git/hooks");
    fs::write(hooks_dir.join("post-checkout"), "#!/bin/sh\necho mine\n").unwrap();
    fs::write(
        hooks_dir.join("post-checkout.cargo-seed-chained"),
        "#!/bin/sh\necho also mine\n",
    )
    .unwrap();
    let out = seed_env(
        &top,
        &["setup", "--worktrees"],
        &[("CARGO_SEED_CHECKOUTS", record.to_str())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("would lose one of them"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(hooks_dir.join("post-checkout")).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    assert_eq!(
        fs::read_to_string(hooks_dir.join("post-checkout.cargo-seed-chained")).unwrap(),
        "#!/bin/sh\necho also mine\n"
    );
}

/// A base-36 timestamp far enough in the past for rustc's ten-second rule.
const LONG_AGO: &str = "h000000000";

/// The crate dirs in a profile dir's incremental dir, each with its newest
/// finalized session's name.
fn crate_sessions(profile_dir: &Path) -> Vec<(PathBuf, String)> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(profile_dir.join("incremental"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let newest = fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".lock") && !n.ends_with("-working"))
                .max()
                .unwrap();
            (dir, newest)
        })
        .collect()
}

/// The finalized session's SVH, the last part of its name.
fn svh(session: &str) -> &str {
    session.rsplit('-').next().unwrap()
}

/// A copy of `newest` (hard-linked, as rustc makes its sessions) named
/// `s-<time>-<random>-<tail>`, with its lock file; returns its name and
/// its lock file.
fn add_session(
    crate_dir: &Path,
    newest: &str,
    time: &str,
    random: &str,
    tail: &str,
) -> (String, PathBuf) {
    let name = format!("s-{time}-{random}-{tail}");
    fs::create_dir(crate_dir.join(&name)).unwrap();
    for f in fs::read_dir(crate_dir.join(newest)).unwrap() {
        let f = f.unwrap();
        fs::hard_link(f.path(), crate_dir.join(&name).join(f.file_name())).unwrap();
    }
    let lock = crate_dir.join(format!("s-{time}-{random}.lock"));
    fs::write(&lock, b"").unwrap();
    (name, lock)
}

/// An exclusive flock on `path`, as a running rustc or cargo holds one.
fn hold(path: &Path) -> File {
    let f = File::options().read(true).write(true).open(path).unwrap();
    f.lock().unwrap();
    f
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn clean_local_lists_build_dirs_and_removes_only_what_no_build_uses() {
    let root = scratch("local-clean");
    let top = repo(&root, ".");
    let record = root.join("checkouts.json");
    let record_env = [("CARGO_SEED_CHECKOUTS", record.to_str())];
    cargo_build(&top);
    git(&top, &["worktree", "add", "-q", "../wt"]);
    let wt = root.join("wt").canonicalize().unwrap();
    cargo_build(&wt);

    // Clones that published (so cargo-seed saw them) with their build dir
    // outside, then were deleted.
    let store = root.join("store");
    let gone_clone = |name: &str, target_dir: &Path| {
        let clone_dir = root.join(name);
        clone(&root, &top, &clone_dir);
        let target = target_dir.to_str().unwrap();
        let out = seed_env(
            &clone_dir,
            &["publish", "--store", store.to_str().unwrap()],
            &[record_env[0], ("CARGO_TARGET_DIR", Some(target))],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        fs::remove_dir_all(&clone_dir).unwrap();
        clone_dir
    };
    let outside = root.join("outside");
    let gone = gone_clone("gone", &outside);
    // One whose build dir's path now holds something that is not cargo's.
    let reused = root.join("reused");
    gone_clone("gone-reused", &reused);
    fs::remove_dir_all(&reused).unwrap();
    fs::create_dir_all(&reused).unwrap();
    fs::write(reused.join("precious.txt"), "keep me").unwrap();
    // One that built into this checkout's build dir.
    gone_clone("gone-shared", &top.join("target"));

    // Sessions rustc will not load again beside the one it will, and two
    // it may: one a rustc holds, one it is writing now.
    let profile = top.join("target/debug");
    let sessions = crate_sessions(&profile);
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let (crate_dir, newest) = sessions[0].clone();
    // The clone's build (another path, the same crate) left the session of
    // this checkout's own build behind: rustc will not load it again.
    let rustc_left: Vec<String> = names(&crate_dir)
        .into_iter()
        .filter(|n| !n.ends_with(".lock") && *n != newest)
        .collect();
    let (superseded, _) = add_session(&crate_dir, &newest, LONG_AGO, "0000000", svh(&newest));
    let (abandoned, _) = add_session(&crate_dir, &newest, "h000000001", "0000001", "working");
    let (in_use, in_use_lock) =
        add_session(&crate_dir, &newest, "h000000002", "0000002", svh(&newest));
    let (writing, _) = add_session(&crate_dir, &newest, "zzzzzzzzzz", "0000003", "working");
    let rustc = hold(&in_use_lock);
    // In the worktree's build dir, old sessions in a profile dir a build
    // holds.
    let wt_profile = wt.join("target/debug");
    let wt_old: Vec<PathBuf> = crate_sessions(&wt_profile)
        .iter()
        .map(|(dir, newest)| dir.join(add_session(dir, newest, LONG_AGO, "0000000", svh(newest)).0))
        .collect();
    let build = hold(&wt_profile.join(".cargo-lock"));

    let dirs = [
        top.join("target"),
        wt.join("target"),
        outside.clone(),
        reused.clone(),
    ];
    let before: Vec<_> = dirs.iter().map(|d| tree_listing(d)).collect();
    let (listed, out) = events(&top, &record, &["clean-local"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (dir, before) in dirs.iter().zip(&before) {
        assert_same_tree(before, &tree_listing(dir));
    }
    let rows = of_kind(&listed, "local_checkout");
    let row = |root: &Path| {
        *rows
            .iter()
            .find(|r| r["root"] == root.to_str().unwrap())
            .unwrap_or_else(|| panic!("{} not listed: {rows:?}", root.display()))
    };
    assert_eq!(row(&top)["current"], true);
    assert!(row(&top)["bytes"].as_u64().unwrap() > 0);
    assert_eq!(row(&wt)["worktree"], true);
    assert_eq!(row(&gone)["exists"], false);
    assert_eq!(row(&gone)["build_dir"], outside.to_str().unwrap());
    assert!(row(&gone)["bytes"].as_u64().unwrap() > 0);
    assert!(row(&gone)["last_used"].as_u64().is_some());
    let removals: Vec<(String, String)> = of_kind(&listed, "local_removal")
        .iter()
        .map(|r| {
            assert_eq!(r["dry_run"], true);
            let path = PathBuf::from(r["path"].as_str().unwrap());
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, r["kind"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut expected = vec![
        ("outside".to_owned(), "build_dir".to_owned()),
        (superseded.clone(), "session".to_owned()),
        (abandoned.clone(), "session".to_owned()),
    ];
    expected.extend(rustc_left.iter().map(|n| (n.clone(), "session".to_owned())));
    let mut got = removals.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    let skipped: Vec<String> = of_kind(&listed, "skipped")
        .iter()
        .map(|s| format!("{}: {}", s["what"], s["reason"]))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:#?}");
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("reused") && s.contains("does not look like a cargo build dir")),
        "{skipped:#?}"
    );
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("gone-shared") && s.contains("exists")),
        "{skipped:#?}"
    );
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("a build holds cargo's lock")),
        "{skipped:#?}"
    );
    let summary = of_kind(&listed, "cleaned_local")[0];
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["build_dirs_removed"], 1);
    assert_eq!(summary["sessions_removed"], 2 + rustc_left.len());
    assert_eq!(summary["sessions_held"], 1, "the one a rustc holds");

    let out = seed_env(&top, &["clean-local", "--apply"], &record_env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!outside.exists(), "the gone clone's build dir is removed");
    assert_eq!(names(&reused), ["precious.txt"], "not a build dir: kept");
    // cargo-seed takes every lock any cargo takes, making the lock file of
    // cargo 1.97+ where an older cargo made none; nothing else changes.
    let mut wt_after = tree_listing(&wt.join("target"));
    let build_lock = Path::new("debug/.cargo-build-lock");
    if !before[1].contains_key(build_lock) {
        wt_after.remove(build_lock);
    }
    assert_same_tree(&before[1], &wt_after);
    for old in &wt_old {
        assert!(old.is_dir(), "its build holds the lock: {}", old.display());
    }
    let mut kept = vec![
        newest.clone(),
        in_use,
        writing,
        newest.rsplit_once('-').unwrap().0.to_owned() + ".lock",
        "s-h000000002-0000002.lock".to_owned(),
        "s-zzzzzzzzzz-0000003.lock".to_owned(),
    ];
    kept.sort();
    assert_eq!(
        names(&crate_dir),
        kept,
        "{superseded} and {abandoned} are removed"
    );

    // The build dir is whole for cargo.
    drop((rustc, build));
    assert_compiled(&cargo_build(&top), &[]);
}
