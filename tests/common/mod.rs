//! Shared test harness: the fixture workspace as a real git repository, CI's
//! checkout that builds and publishes, and fresh clones at other paths.
//!
//! The expensive part (CI's build) happens once per test binary; every test
//! then works in its own clone, so tests can run in parallel.

#![allow(dead_code)]

pub mod http;
pub mod s3;
pub mod window;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

pub const BIN: &str = env!("CARGO_BIN_EXE_cargo-seed");

/// Environment that would redirect or change the fixture's builds.
const SCRUB: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "CARGO_SEED_STORE",
    "CARGO_SEED_PROFILE",
    "CARGO_SEED_SIGNING_KEY",
    "CARGO_SEED_TRUSTED_KEYS",
    "CARGO_SEED_CACHE_SIZE",
    "CARGO_SEED_MESSAGE_FORMAT",
    "CARGO_SEED_TOKEN",
    "CARGO_SEED_HTTP_TIMEOUT",
    "CARGO_SEED_MIN_RATE",
    "CARGO_INCREMENTAL",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "CARGO_MANIFEST_DIR",
    "CARGO_PKG_NAME",
];

/// A local blob cache of its own for every command, so that no test reads
/// blobs another test (or the developer running them) cached, and counts of
/// downloads and damaged stores mean what they say. A test that wants a
/// shared cache sets `CARGO_SEED_CACHE_DIR` itself.
fn fresh_cache_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("seed-caches-{}", std::process::id()))
        .join(n.to_string())
}

pub fn command(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir);
    for var in SCRUB {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_SEED_CACHE_DIR", fresh_cache_dir());
    // Seeds and publishes remember their checkout: in the test binary's own
    // record, never the user's (a test that reads it sets its own).
    cmd.env(
        "CARGO_SEED_CHECKOUTS",
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("checkouts-{}.json", std::process::id())),
    );
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin_dir.to_owned()];
    paths.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(paths).unwrap())
        .env("CARGO_TERM_COLOR", "never")
        .env("GIT_AUTHOR_NAME", "ci")
        .env("GIT_AUTHOR_EMAIL", "ci@example.com")
        .env("GIT_COMMITTER_NAME", "ci")
        .env("GIT_COMMITTER_EMAIL", "ci@example.com");
    cmd
}

/// Runs and returns the output; panics with both streams if it fails.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    text(&ok(command("git", dir).args(args)).stdout)
        .trim()
        .to_owned()
}

/// `cargo seed <args>` in `dir` (not asserted: tests check the outcome).
pub fn seed(dir: &Path, args: &[&str]) -> Output {
    seed_env(dir, args, &[])
}

/// Sets (`Some`) or removes (`None`) environment variables.
pub fn with_env<'a>(cmd: &'a mut Command, env: &[(&str, Option<&str>)]) -> &'a mut Command {
    for (var, value) in env {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    cmd
}

/// As [`seed`], with `env` changed.
pub fn seed_env(dir: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    with_env(command("cargo", dir).arg("seed").args(args), env)
        .output()
        .unwrap()
}

/// What `cargo build -v` said about each package.
#[derive(Debug, Default)]
pub struct BuildReport {
    pub fresh: Vec<String>,
    pub compiled: Vec<String>,
    pub ran_build_scripts: usize,
    pub stderr: String,
}

/// Sorted owned names, to compare with a [`BuildReport`]'s lists.
pub fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Asserts exactly these packages compiled, showing cargo's output if not.
pub fn assert_compiled(build: &BuildReport, expected: &[&str]) {
    assert_eq!(build.compiled, sorted(expected), "{}", build.stderr);
}

pub fn cargo_build(dir: &Path) -> BuildReport {
    cargo_build_env(dir, &[])
}

/// As [`cargo_build`], with `env` changed.
pub fn cargo_build_env(dir: &Path, env: &[(&str, Option<&str>)]) -> BuildReport {
    cargo_report(dir, &["build", "-v"], env)
}

/// What cargo said (`Fresh`, `Compiling` or `Checking`) about each package
/// when running `args` (which should include `-v`) in `dir`.
pub fn cargo_report(dir: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> BuildReport {
    let out = ok(with_env(command("cargo", dir).args(args), env));
    let stderr = text(&out.stderr);
    let mut r = BuildReport::default();
    for line in stderr.lines() {
        let line = line.trim_start();
        let name = |rest: &str| rest.split_whitespace().next().unwrap_or("").to_owned();
        if let Some(rest) = line.strip_prefix("Fresh ") {
            r.fresh.push(name(rest));
        } else if let Some(rest) = line
            .strip_prefix("Compiling ")
            .or_else(|| line.strip_prefix("Checking "))
        {
            r.compiled.push(name(rest));
        } else if line.starts_with("Running `")
            && (line.contains("build-script-build`") || line.contains("/build_script_build`"))
        {
            // `build/<pkg>-<hash>/build-script-build` (flat layout) or
            // `build/<pkg>/<hash>/out/build_script_build` (per-unit).
            r.ran_build_scripts += 1;
        }
    }
    r.fresh.sort();
    r.compiled.sort();
    r.stderr = stderr;
    r
}

/// What the fixture's binary prints.
/// `cargo build -v` finds every unit fresh, and the built app's output
/// starts with `prints`.
pub fn assert_nothing_compiles(dir: &Path, prints: &str) {
    let build = cargo_build(dir);
    assert!(build.compiled.is_empty(), "{}", build.stderr);
    let said = run_app(dir);
    assert!(said.starts_with(prints), "{said}");
}

/// The blobs a manifest references.
pub fn referenced(manifest: &serde_json::Value) -> std::collections::BTreeSet<String> {
    manifest["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["blob"]["sha256"].as_str().unwrap().to_owned())
        .collect()
}

pub fn run_app(dir: &Path) -> String {
    text(&ok(&mut command(dir.join("target/debug/app"), dir)).stdout)
}

/// The commits of the fixture's history, oldest first.
pub struct Commits {
    /// The fixture as committed.
    pub base: String,
    /// `greet` prints "hi there" instead of "hello".
    pub greet_changed: String,
    /// The build script's input `gen/data/greeting.txt` changed.
    pub data_changed: String,
}

pub struct World {
    pub root: PathBuf,
    pub origin: PathBuf,
    pub ci: PathBuf,
    pub store: PathBuf,
    pub commits: Commits,
    /// `.fingerprint` dirs a build with `greet/extra` left in CI's build dir.
    pub leftovers: Vec<String>,
    /// Output of the two publishes.
    pub publish_base: String,
    pub publish_greet: String,
    counter: AtomicUsize,
}

pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The fixture as a git repository at `<root>/origin`, changed by `change`
/// before its first commit; returns that commit.
pub fn fixture_origin(root: &Path, change: impl FnOnce(&Path)) -> String {
    let origin = root.join("origin");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample-ws"),
        &origin,
    );
    change(&origin);
    git(&origin, &["init", "-q", "-b", "main"]);
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "-qm", "base"]);
    git(&origin, &["rev-parse", "HEAD"])
}

/// A fresh clone of `origin` at `<root>/dev-<n>/work/app`, checked out at
/// `commit`.
pub fn clone_into(root: &Path, origin: &Path, n: usize, commit: &str) -> PathBuf {
    let dir = root.join(format!("dev-{n}/work/app"));
    fs::create_dir_all(dir.parent().unwrap()).unwrap();
    clone(root, origin, &dir);
    git(&dir, &["checkout", "-q", "--detach", commit]);
    dir
}

/// The test's own directory, `target/tmp/<tag>-<pid>`, emptied.
pub fn scratch(tag: &str) -> PathBuf {
    let root =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    root
}

/// One commit of the fixture, changed before it is committed, that CI built
/// and published (`cargo seed publish -v`) with some environment set.
pub struct OneCommit {
    pub root: PathBuf,
    pub origin: PathBuf,
    pub ci: PathBuf,
    pub store: PathBuf,
    pub commit: String,
    /// What the publish printed.
    pub publish: String,
    counter: AtomicUsize,
}

impl OneCommit {
    pub fn create(tag: &str, change: impl FnOnce(&Path), ci_env: &[(&str, &str)]) -> OneCommit {
        let root = scratch(tag);
        let commit = fixture_origin(&root, change);
        let (origin, ci, store) = (root.join("origin"), root.join("ci"), root.join("store"));
        clone(&root, &origin, &ci);
        let cargo_ci = |args: &[&str]| {
            let mut cmd = command("cargo", &ci);
            cmd.envs(ci_env.iter().copied()).args(args);
            ok(&mut cmd)
        };
        cargo_ci(&["build", "--locked"]);
        let store_arg = store.to_str().unwrap();
        let publish = text(&cargo_ci(&["seed", "publish", "--store", store_arg, "-v"]).stderr);
        OneCommit {
            root,
            origin,
            ci,
            store,
            commit,
            publish,
            counter: AtomicUsize::new(0),
        }
    }

    /// A fresh clone at a new absolute path.
    pub fn clone_dev(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        clone_into(&self.root, &self.origin, n, &self.commit)
    }

    pub fn store_arg(&self) -> &str {
        self.store.to_str().unwrap()
    }
}

/// The tests' own reading of cargo's build-dir layouts, independent of
/// cargo-seed's: whether a profile dir is in the per-unit layout (cargo
/// 1.100+, `build/<package>/<hash>/`) rather than the flat one
/// (`.fingerprint/`, `deps/`).
pub fn is_per_unit(profile_dir: &Path) -> bool {
    !profile_dir.join(".fingerprint").exists() && profile_dir.join("build").exists()
}

/// The units of a profile dir, `<package>-<hash>`, in either layout.
pub fn fingerprint_dirs(profile_dir: &Path) -> Vec<String> {
    let names = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut v: Vec<String> = if is_per_unit(profile_dir) {
        let build = profile_dir.join("build");
        names(&build)
            .into_iter()
            .flat_map(|package| {
                let dir = build.join(&package);
                names(&dir)
                    .into_iter()
                    .filter(|hash| dir.join(hash).join("fingerprint").is_dir())
                    .map(|hash| format!("{package}-{hash}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    } else {
        names(&profile_dir.join(".fingerprint"))
    };
    v.sort();
    v
}

/// The directories of units' compiled files (and build-script runs'
/// `OUT_DIR`s, per-unit), relative to the profile dir: `deps` (flat) or
/// every `build/<package>/<hash>/out` (per-unit).
pub fn output_dirs(profile_dir: &Path) -> Vec<PathBuf> {
    if is_per_unit(profile_dir) {
        fingerprint_dirs(profile_dir)
            .iter()
            .map(|id| {
                let (package, hash) = id.rsplit_once('-').unwrap();
                Path::new("build").join(package).join(hash).join("out")
            })
            .collect()
    } else {
        vec![PathBuf::from("deps")]
    }
}

/// A unit's compiled file, relative to the profile dir: the first in
/// [`output_dirs`] whose name starts with `prefix` and ends with `suffix`.
pub fn unit_output(profile_dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    output_dirs(profile_dir)
        .iter()
        .flat_map(|d| {
            fs::read_dir(profile_dir.join(d))
                .into_iter()
                .flatten()
                .map(move |e| d.join(e.unwrap().file_name()))
        })
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
        .unwrap_or_else(|| panic!("no {prefix}…{suffix} in {}", profile_dir.display()))
}

impl World {
    /// Builds the history, then plays CI: build and publish `base`, then
    /// `greet_changed`. `data_changed` has no snapshot.
    pub fn create() -> World {
        World::create_in("seed-tests", None)
    }

    /// As [`World::create`], under `target/tmp/<tag>-<pid>`; with
    /// `ci_cargo_home`, CI builds and publishes under that `CARGO_HOME`
    /// (filled from crates.io first) instead of the default one. CI always
    /// builds with `RUSTC_WRAPPER=cargo-seed`.
    pub fn create_in(tag: &str, ci_cargo_home: Option<&str>) -> World {
        let root = scratch(tag);
        let base = fixture_origin(&root, |_| {});
        let origin = root.join("origin");
        edit(&origin.join("greet/src/lib.rs"), "hello, ", "hi there, ");
        git(&origin, &["commit", "-qam", "greet says hi"]);
        let greet_changed = git(&origin, &["rev-parse", "HEAD"]);
        fs::write(origin.join("gen/data/greeting.txt"), "regenerated\n").unwrap();
        git(&origin, &["commit", "-qam", "new build-script input"]);
        let data_changed = git(&origin, &["rev-parse", "HEAD"]);

        let store = root.join("store");
        let ci = root.join("ci-checkout");
        clone(&root, &origin, &ci);
        git(&ci, &["checkout", "-q", "--detach", &base]);
        let ci_home = ci_cargo_home.map(|h| root.join(h));
        let cargo_ci = |args: &[&str]| {
            let mut cmd = command("cargo", &ci);
            if let Some(home) = &ci_home {
                cmd.env("CARGO_HOME", home);
            }
            // As the README tells CI to build: through cargo-seed's wrapper.
            cmd.env("RUSTC_WRAPPER", BIN);
            cmd.args(args);
            ok(&mut cmd)
        };
        if let Some(home) = &ci_home {
            fresh_cargo_home(home);
            cargo_ci(&["fetch", "--locked"]);
        }
        let profile_dir = ci.join("target/debug");
        cargo_ci(&["build", "--locked"]);
        let current = fingerprint_dirs(&profile_dir);
        // An earlier CI run with other features: its units stay in the cache.
        cargo_ci(&["build", "--locked", "--features", "greet/extra"]);
        let leftovers: Vec<String> = fingerprint_dirs(&profile_dir)
            .into_iter()
            .filter(|d| !current.contains(d))
            .collect();
        cargo_ci(&["build", "--locked"]);
        let store_arg = store.to_str().unwrap();
        let publish_base = text(&cargo_ci(&["seed", "publish", "--store", store_arg, "-v"]).stderr);
        git(&ci, &["checkout", "-q", "--detach", &greet_changed]);
        cargo_ci(&["build", "--locked"]);
        let publish_greet =
            text(&cargo_ci(&["seed", "publish", "--store", store_arg, "-v"]).stderr);
        World {
            root,
            origin,
            ci,
            store,
            commits: Commits {
                base,
                greet_changed,
                data_changed,
            },
            leftovers,
            publish_base,
            publish_greet,
            counter: AtomicUsize::new(0),
        }
    }

    /// A fresh clone at a new absolute path, checked out at `commit`.
    pub fn clone_at(&self, commit: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        clone_into(&self.root, &self.origin, n, commit)
    }

    pub fn store_arg(&self) -> &str {
        self.store.to_str().unwrap()
    }

    /// A copy of the store that a test may damage.
    pub fn store_copy(&self, name: &str) -> PathBuf {
        let to = self.root.join(format!("store-{name}"));
        copy_tree(&self.store, &to);
        to
    }

    /// The one manifest of `commit` in `store` (not its signature).
    pub fn manifest_path(store: &Path, commit: &str) -> PathBuf {
        let dir = store.join("snapshots").join(commit);
        fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .unwrap()
    }

    pub fn manifest(store: &Path, commit: &str) -> serde_json::Value {
        serde_json::from_slice(&fs::read(Self::manifest_path(store, commit)).unwrap()).unwrap()
    }

    /// Rewrites `commit`'s manifest in `store` through `edit`.
    pub fn edit_manifest(store: &Path, commit: &str, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut m = Self::manifest(store, commit);
        edit(&mut m);
        fs::write(
            Self::manifest_path(store, commit),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
    }
}

/// A `CARGO_HOME` of the test's own at `at`, keeping the user's registry
/// configuration (mirrors, replacements) from the default one.
pub fn fresh_cargo_home(at: &Path) -> PathBuf {
    fs::create_dir_all(at).unwrap();
    let default_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    for name in ["config.toml", "config"] {
        if default_home.join(name).is_file() {
            fs::copy(default_home.join(name), at.join(name)).unwrap();
        }
    }
    at.to_owned()
}

/// `git clone -q <from> <to>`, run in `dir`.
pub fn clone(dir: &Path, from: &Path, to: &Path) {
    git(
        dir,
        &["clone", "-q", from.to_str().unwrap(), to.to_str().unwrap()],
    );
}

pub fn edit(path: &Path, from: &str, to: &str) {
    let s = fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} lacks {from:?}", path.display());
    fs::write(path, s.replacen(from, to, 1)).unwrap();
}

/// Sets a file's mtime to a fixed time long ago.
pub fn backdate(path: &Path) {
    let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

/// Every file below `dir` with its size, mtime and a digest of its bytes:
/// two equal listings mean nothing was changed.
pub fn tree_listing(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let bytes = fs::read(entry.path()).unwrap_or_default();
                let digest = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
                    (h ^ *b as u64).wrapping_mul(0x100000001b3)
                });
                out.insert(
                    entry.path().strip_prefix(dir).unwrap().to_owned(),
                    (meta.len(), meta.modified().unwrap(), digest),
                );
            }
        }
    }
    out
}

/// Asserts two listings are equal, naming only what differs.
pub fn assert_same_tree(
    before: &BTreeMap<PathBuf, (u64, SystemTime, u64)>,
    after: &BTreeMap<PathBuf, (u64, SystemTime, u64)>,
) {
    let mut diffs = Vec::new();
    for (path, b) in before {
        match after.get(path) {
            None => diffs.push(format!("removed {}", path.display())),
            Some(a) if a != b => diffs.push(format!("changed {}: {b:?} -> {a:?}", path.display())),
            _ => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("added {}", path.display()));
    }
    assert!(
        diffs.is_empty(),
        "the target dir changed:\n{}",
        diffs.join("\n")
    );
}

// rustc's incremental sessions in a checkout's `target/debug`: a codegen
// unit counts as reused when its object file in the session a build just
// wrote is a hard link of one the seed restored (rustc links what it
// reuses).

/// The inodes of the object files in `krate`'s incremental sessions.
pub fn objects(ws: &Path, krate: &str) -> BTreeSet<u64> {
    sessions(ws, krate)
        .iter()
        .flat_map(|s| object_files(s))
        .map(|o| fs::metadata(o).unwrap().ino())
        .collect()
}

pub fn sessions(ws: &Path, krate: &str) -> Vec<PathBuf> {
    let inc = ws.join("target/debug/incremental");
    let mut out = Vec::new();
    for dir in fs::read_dir(&inc).into_iter().flatten().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{krate}-")) {
            continue;
        }
        for s in fs::read_dir(dir.path()).unwrap().flatten() {
            if s.path().is_dir() {
                out.push(s.path());
            }
        }
    }
    out
}

pub fn object_files(session: &Path) -> Vec<PathBuf> {
    fs::read_dir(session)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
        .collect()
}

/// Of the object files of the session of `krate` that the build just
/// wrote (the one not among `before`), how many are restored ones
/// (`restored`), and how many there are.
pub fn reused(
    ws: &Path,
    krate: &str,
    before: &[PathBuf],
    restored: &BTreeSet<u64>,
) -> (usize, usize) {
    let new: Vec<PathBuf> = sessions(ws, krate)
        .into_iter()
        .filter(|s| !before.contains(s))
        .collect();
    assert_eq!(new.len(), 1, "one new session of {krate}: {new:?}");
    let objects = object_files(&new[0]);
    let linked = objects
        .iter()
        .filter(|o| restored.contains(&fs::metadata(o).unwrap().ino()))
        .count();
    (linked, objects.len())
}
