//! The README's guarantees that no other test file shows: exit codes, the
//! search distance, what makes a snapshot unusable here, Ctrl-C and cargo's
//! lock during a seed, build-script output and `env!` paths under another
//! `CARGO_HOME`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::create_in("guarantee-tests", None))
}

fn stderr(out: &std::process::Output) -> String {
    text(&out.stderr)
}

#[test]
fn a_bad_command_line_exits_2() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    for args in [
        &["--no-such-flag"][..],
        &["--max-distance", "many"],
        &["publish", "--cover"],
    ] {
        let out = seed(&dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    assert!(!dir.join("target").exists());
}

#[test]
fn max_distance_bounds_the_search() {
    let w = world();
    // Snapshots exist 1 (greet_changed) and 2 (base) commits back.
    let dir = w.clone_at(&w.commits.data_changed);
    let out = seed(
        &dir,
        &["--store", w.store_arg(), "--max-distance", "0", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = seed(
        &dir,
        &["--store", w.store_arg(), "--max-distance", "1", "--dry-run"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text(&out.stdout).contains(&w.commits.greet_changed[..12]));
    // Without the nearer snapshot, distance 1 finds nothing and 2 finds base.
    let store = w.store_copy("max-distance");
    fs::remove_dir_all(store.join("snapshots").join(&w.commits.greet_changed)).unwrap();
    let store = store.to_str().unwrap();
    let out = seed(
        &dir,
        &["--store", store, "--max-distance", "1", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = seed(
        &dir,
        &["--store", store, "--max-distance", "2", "--dry-run"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text(&out.stdout).contains(&w.commits.base[..12]));
}

#[test]
fn commit_reports_its_true_distance_from_head() {
    let w = world();
    let dir = w.clone_at(&w.commits.data_changed);
    let out = seed(
        &dir,
        &[
            "--store",
            w.store_arg(),
            "--commit",
            &w.commits.base,
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!(
            "would seed {} (distance 2)",
            &w.commits.base[..12]
        )),
        "{said}"
    );
}

#[test]
fn another_c_library_is_not_usable_here() {
    let w = world();
    let store = w.store_copy("glibc");
    for commit in [&w.commits.base, &w.commits.greet_changed] {
        World::edit_manifest(&store, commit, |m| {
            m["libc"] = serde_json::json!("glibc 2.0");
        });
    }
    let dir = w.clone_at(&w.commits.base);
    let out = seed(&dir, &["--store", store.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let here = text(&ok(command("getconf", &dir).arg("GNU_LIBC_VERSION")).stdout);
    assert!(
        stderr(&out).contains(&format!("C library glibc 2.0 (here {})", here.trim())),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("target").exists());
}

#[test]
fn a_snapshot_built_for_the_build_machines_cpu_is_not_used() {
    let flags = [("RUSTFLAGS", "-Ctarget-cpu=native")];
    let c = OneCommit::create("native-cpu", |_| {}, &flags);
    assert_eq!(World::manifest(&c.store, &c.commit)["native_cpu"], true);
    let dir = c.clone_dev();
    // The same flags here: only the CPU stands in the way.
    let out = seed_env(
        &dir,
        &["--store", c.store_arg()],
        &[("RUSTFLAGS", Some(flags[0].1))],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("target-cpu=native"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("target").exists());
}

/// How long the stalled blob keeps a seed mid-fetch.
const STALL: Duration = Duration::from_secs(6);

/// A copy of the store, served over HTTP, in which the blob of `commit`'s
/// unit named `prefix…` sends half its bytes, then nothing for [`STALL`],
/// then the rest: a seed that fetches it is mid-fetch that long. (A FIFO in
/// a directory store no longer stalls one: only regular files are read.)
fn stalling_store(w: &World, name: &str, commit: &str, prefix: &str) -> common::http::Server {
    let store = w.store_copy(name);
    let manifest = World::manifest(&store, commit);
    let unit = manifest["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"].as_str().unwrap().starts_with(prefix))
        .unwrap();
    let sha = unit["blob"]["sha256"].as_str().unwrap();
    let server = common::http::Server::start(store);
    server.inject_for(
        &format!("blobs/{}/{sha}.zst", &sha[..2]),
        [common::http::Fault::Stall(STALL)],
    );
    server
}

/// Waits until `cond` holds (or panics after a minute).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a seed has begun fetching into `dir`'s build dir.
fn staging_exists(dir: &Path) -> bool {
    fs::read_dir(dir.join("target"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".cargo-seed-staging.")
        })
}

fn spawn_seed(dir: &Path, args: &[&str]) -> Child {
    command("cargo", dir)
        .arg("seed")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A seeded clone at `base` with a build in it: build state to protect.
fn built_clone(w: &World) -> PathBuf {
    let dir = w.clone_at(&w.commits.greet_changed);
    let out = seed(
        &dir,
        &["--store", w.store_arg(), "--commit", &w.commits.base],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    cargo_build(&dir);
    dir
}

#[test]
fn ctrl_c_during_a_seed_exits_130_and_changes_nothing() {
    let w = world();
    let dir = built_clone(w);
    let server = stalling_store(w, "sigint", &w.commits.greet_changed, "greet-");
    let before = tree_listing(&dir.join("target"));
    let child = spawn_seed(&dir, &["--store", &server.url, "--force"]);
    wait_until("the seed to start fetching", || staging_exists(&dir));
    // cargo execs an external subcommand, so the child is cargo-seed.
    // SAFETY: signalling our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    // The stalled read returns once more bytes come; the seed stops there.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    assert_same_tree(&before, &tree_listing(&dir.join("target")));
}

#[test]
fn a_build_started_during_the_seed_waits_for_it_and_sees_it_whole() {
    let w = world();
    let dir = built_clone(w);
    let server = stalling_store(w, "lock", &w.commits.greet_changed, "greet-");
    let seeding = spawn_seed(&dir, &["--store", &server.url, "--force"]);
    wait_until("the seed to start fetching", || staging_exists(&dir));
    // rust-analyzer's check, say, starting while blobs are fetched.
    let build = command("cargo", &dir)
        .args(["build", "-v"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let seeded = seeding.wait_with_output().unwrap();
    assert!(seeded.status.success(), "{}", stderr(&seeded));
    let built = build.wait_with_output().unwrap();
    let said = stderr(&built);
    assert!(built.status.success(), "{said}");
    assert!(said.contains("Blocking waiting for file lock"), "{said}");
    // It ran on the seeded state: greet's new text, nothing compiled.
    assert!(!said.contains("Compiling"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(run_app(&dir).starts_with("hi there, seed"));
}

#[test]
fn build_script_output_names_the_local_out_dir_after_a_seed_elsewhere() {
    // A build script whose output names its OUT_DIR (a library it built
    // there, as `cc` does): cargo passes the directory to rustc.
    let c = OneCommit::create(
        "script-output",
        |origin| {
            edit(
                &origin.join("gen/build.rs"),
                "    println!(\"cargo:rerun-if-changed=data/greeting.txt\");",
                "    println!(\"cargo:rerun-if-changed=data/greeting.txt\");\n    \
                 println!(\"cargo:rustc-link-search=native={}\", env::var(\"OUT_DIR\").unwrap());",
            );
        },
        &[],
    );
    let ci_output = output_file(&c.ci);
    assert!(fs::read_to_string(&ci_output)
        .unwrap()
        .contains(c.ci.to_str().unwrap()));
    let dir = c.clone_dev();
    let out = seed(&dir, &["--store", c.store_arg()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let output = fs::read_to_string(output_file(&dir)).unwrap();
    // `build/gen-<hash>/{output,out}` or `build/gen/<hash>/{run/stdout,out}`.
    let out_dir = output_file(&dir)
        .ancestors()
        .map(|a| a.join("out"))
        .find(|a| a.is_dir())
        .unwrap();
    assert!(
        output.contains(&format!(
            "cargo:rustc-link-search=native={}",
            out_dir.display()
        )),
        "{output}"
    );
    assert!(!output.contains(c.ci.to_str().unwrap()), "{output}");
    assert_nothing_compiles(&dir, "hello, seed");
}

/// The output of gen's build-script run as cargo reads it back:
/// `build/gen-*/output` (flat layout) or `build/gen/*/run/stdout` (per-unit).
fn output_file(checkout: &Path) -> PathBuf {
    let profile_dir = checkout.join("target/debug");
    let per_unit = is_per_unit(&profile_dir);
    fingerprint_dirs(&profile_dir)
        .into_iter()
        .filter_map(|id| {
            let (package, hash) = id.rsplit_once('-')?;
            (package == "gen").then(|| match per_unit {
                true => profile_dir.join("build/gen").join(hash).join("run/stdout"),
                false => profile_dir.join("build").join(&id).join("output"),
            })
        })
        .find(|p| p.is_file())
        .unwrap()
}

#[test]
fn a_dependency_under_cargo_home_that_embeds_its_path_is_rebuilt_for_another_home() {
    let root = scratch("embed-home");
    // A git dependency (checked out under CARGO_HOME) whose code embeds the
    // directory it was compiled in.
    let embed = root.join("embed");
    fs::create_dir_all(embed.join("src")).unwrap();
    fs::write(
        embed.join("Cargo.toml"),
        "[package]\nname = \"embed\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(
        embed.join("src/lib.rs"),
        "pub const DIR: &str = env!(\"CARGO_MANIFEST_DIR\");\n",
    )
    .unwrap();
    git(
        &root,
        &["init", "-q", "-b", "main", embed.to_str().unwrap()],
    );
    git(&embed, &["add", "-A"]);
    git(&embed, &["commit", "-qm", "embed"]);

    let origin = root.join("origin");
    fs::create_dir_all(origin.join("src")).unwrap();
    fs::write(
        origin.join("Cargo.toml"),
        format!(
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nembed = {{ git = \"file://{}\" }}\n",
            embed.display()
        ),
    )
    .unwrap();
    fs::write(
        origin.join("src/main.rs"),
        "fn main() { println!(\"{}\", embed::DIR); }\n",
    )
    .unwrap();
    let home = |name: &str| {
        let h = root.join(name);
        fs::create_dir_all(&h).unwrap();
        h
    };
    let (ci_home, dev_home) = (home("ci-home"), home("dev-home"));
    let cargo = |dir: &Path, h: &Path, args: &[&str]| {
        let mut cmd = command("cargo", dir);
        cmd.env("CARGO_HOME", h).args(args);
        ok(&mut cmd)
    };
    cargo(&origin, &ci_home, &["generate-lockfile"]);
    git(
        &root,
        &["init", "-q", "-b", "main", origin.to_str().unwrap()],
    );
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "-qm", "app"]);
    let (ci, store) = (root.join("ci"), root.join("store"));
    clone(&root, &origin, &ci);
    cargo(&ci, &ci_home, &["build", "--locked"]);
    cargo(
        &ci,
        &ci_home,
        &["seed", "publish", "--store", store.to_str().unwrap()],
    );

    let dev = root.join("dev/app");
    clone(&root, &origin, &dev);
    let said = text(
        &cargo(
            &dev,
            &dev_home,
            &["seed", "--store", store.to_str().unwrap()],
        )
        .stderr,
    );
    assert!(
        said.contains("embeds env!(\"CARGO_MANIFEST_DIR\")"),
        "{said}"
    );
    let built = text(&cargo(&dev, &dev_home, &["build", "-v", "--locked"]).stderr);
    assert!(built.contains("Compiling embed"), "{built}");
    // The program names this machine's checkout of the dependency.
    let printed = text(&ok(&mut command(dev.join("target/debug/app"), &dev)).stdout);
    assert!(printed.starts_with(dev_home.to_str().unwrap()), "{printed}");
}
