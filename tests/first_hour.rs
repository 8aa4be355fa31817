//! A snapshot that covers a developer's first hour: CI runs `build`,
//! `test --no-run`, `check --all-targets` and `clippy --all-targets` (and a
//! release build), publishes once, and a clone at another path then finds
//! every one of those commands fresh, or compiles only the member that
//! changed since.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;

const COVERS: [&str; 5] = [
    "build",
    "test --no-run",
    "check --all-targets",
    "clippy --all-targets",
    "build --release",
];

/// The covered commands: [`COVERS`], and a `--target` build for the host's
/// own triple given explicitly, which cargo builds as a cross target (its
/// own directory, build scripts and proc-macros apart).
fn covers() -> Vec<String> {
    let mut all: Vec<String> = COVERS.iter().map(|c| c.to_string()).collect();
    all.push(format!("build --target {}", host()));
    all
}

/// What a first hour runs, each with `-v` so cargo names every unit:
/// rust-analyzer's check (its default command line), tests, clippy.
const FIRST_HOUR: [&[&str]; 4] = [
    &[
        "check",
        "--workspace",
        "--message-format=json-diagnostic-rendered-ansi",
        "--all-targets",
        "-v",
    ],
    &["test", "-v"],
    &["check", "--all-targets", "-v"],
    &["clippy", "--all-targets", "-v"],
];

struct Covered {
    root: PathBuf,
    origin: PathBuf,
    store: PathBuf,
    base: String,
    /// `app/src/main.rs` changed; no snapshot.
    app_changed: String,
    publish: String,
}

/// CI builds through cargo-seed's wrapper (as the README says) and the
/// developers here do too: the wrapper's rewrite is part of what rustc sees.
const WRAPPED: [(&str, Option<&str>); 1] = [("RUSTC_WRAPPER", Some(BIN))];

fn covered() -> &'static Covered {
    static C: OnceLock<Covered> = OnceLock::new();
    C.get_or_init(|| {
        let root = scratch("cover-tests");
        // The covered commands come from the workspace's configuration, as
        // a team would keep them, so CI's line is just `cargo seed publish`.
        let base = fixture_origin(&root, |origin| {
            let manifest = origin.join("Cargo.toml");
            let mut text = std::fs::read_to_string(&manifest).unwrap();
            text.push_str(&format!(
                "\n[workspace.metadata.seed]\ncover = {:?}\n",
                covers()
            ));
            std::fs::write(&manifest, text).unwrap();
            // Flags that enter every fingerprint, committed as teams do.
            std::fs::create_dir_all(origin.join(".cargo")).unwrap();
            std::fs::write(
                origin.join(".cargo/config.toml"),
                "[build]\nrustflags = [\"--cfg\", \"seeded_fixture\"]\n",
            )
            .unwrap();
        });
        let origin = root.join("origin");
        edit(&origin.join("app/src/main.rs"), "count: ", "vowels: ");
        git(&origin, &["commit", "-qam", "app says vowels"]);
        let app_changed = git(&origin, &["rev-parse", "HEAD"]);

        let (ci, store) = (root.join("ci"), root.join("store"));
        clone(&root, &origin, &ci);
        git(&ci, &["checkout", "-q", "--detach", &base]);
        for cover in covers() {
            let mut args: Vec<&str> = cover.split(' ').collect();
            args.push("--locked");
            ok(with_env(command("cargo", &ci).args(&args), &WRAPPED));
        }
        let publish = ok(with_env(
            command("cargo", &ci).args([
                "seed",
                "publish",
                "-v",
                "--store",
                store.to_str().unwrap(),
            ]),
            &WRAPPED,
        ));
        Covered {
            root,
            origin,
            store,
            base,
            app_changed,
            publish: text(&publish.stderr),
        }
    })
}

fn clone_dev(c: &Covered, n: usize, commit: &str) -> PathBuf {
    clone_into(&c.root, &c.origin, n, commit)
}

fn seed_ok(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["--store", covered().store.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = seed_env(dir, &all, &WRAPPED);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stderr)
}

#[test]
fn one_publish_covers_test_check_and_clippy_at_the_same_commit() {
    let c = covered();
    assert!(
        c.publish.contains("(dev profile)") && c.publish.contains("(release profile)"),
        "one snapshot per profile directory: {}",
        c.publish
    );
    let dev = clone_dev(c, 0, &c.base);
    seed_ok(&dev, &[]);
    for args in FIRST_HOUR {
        let report = cargo_report(&dev, args, &WRAPPED);
        assert_compiled(&report, &[]);
        assert!(!report.fresh.is_empty(), "{}", report.stderr);
    }
    // The tests ran (and passed: `ok` asserts it) from the seeded binaries.
    let tested = cargo_report(&dev, &["test", "-v"], &WRAPPED);
    let harness = match is_per_unit(&dev.join("target/debug")) {
        true => "/out/greeting-",
        false => "/target/debug/deps/greeting-",
    };
    assert!(tested.stderr.contains(harness), "{}", tested.stderr);
    assert_nothing_compiles(&dev, "hello, seed");
}

#[test]
fn a_later_commit_compiles_only_the_changed_member_in_every_command() {
    let c = covered();
    // A clone per command: commands share units (rust-analyzer's check and
    // `check --all-targets` are one), so each is judged on its own.
    for (n, args) in FIRST_HOUR.iter().enumerate() {
        let dev = clone_dev(c, 100 + n, &c.app_changed);
        let said = seed_ok(&dev, &[]);
        assert!(said.contains("distance 1"), "{said}");
        let report = cargo_report(&dev, args, &WRAPPED);
        assert_compiled(&report, &["app"]);
    }
    let dev = clone_dev(c, 1, &c.app_changed);
    seed_ok(&dev, &[]);
    assert_compiled(&cargo_build_env(&dev, &WRAPPED), &["app"]);
    assert!(run_app(&dev).contains("vowels: "));
}

/// Seeds `args` (a profile, a target) at the base commit and one commit
/// later, and checks that `build` with `build_args` compiles nothing, then
/// only the changed member, and that the program in `app` runs.
fn seeded_variant(n: usize, args: &[&str], build_args: &[&str], app: &str) {
    let c = covered();
    for (i, commit, compiled, prints) in [
        (0, &c.base, &[][..], "count: "),
        (1, &c.app_changed, &["app"][..], "vowels: "),
    ] {
        let dev = clone_dev(c, n + i, commit);
        seed_ok(&dev, args);
        let mut build = vec!["build", "-v"];
        build.extend_from_slice(build_args);
        let report = cargo_report(&dev, &build, &WRAPPED);
        assert_compiled(&report, compiled);
        assert!(report.fresh.len() >= 5, "{}", report.stderr);
        let printed = text(&ok(&mut command(dev.join("target").join(app), &dev)).stdout);
        assert!(
            printed.starts_with("hello, seed") && printed.contains(prints),
            "{printed}"
        );
    }
}

#[test]
fn the_release_profile_is_seeded_on_request() {
    seeded_variant(20, &["--profile", "release"], &["--release"], "release/app");
}

#[test]
fn a_target_build_is_seeded_with_the_host_units_it_needs() {
    let host = host();
    let c = covered();
    let dev = clone_dev(c, 30, &c.base);
    let said = seed_ok(&dev, &["--target", &host]);
    // The build script and the proc-macro, built for the host.
    assert!(
        said.contains("2 of the cross build's 2 host units added"),
        "{said}"
    );
    seeded_variant(
        31,
        &["--target", &host],
        &["--target", &host],
        &format!("{host}/debug/app"),
    );
    // Asked for a target nobody published: nothing usable.
    let out = seed_env(
        &dev,
        &[
            "--store",
            c.store.to_str().unwrap(),
            "--target",
            "x86_64-unknown-none",
        ],
        &WRAPPED,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

#[test]
fn list_shows_what_each_snapshot_covers() {
    let c = covered();
    let dev = clone_dev(c, 3, &c.base);
    for profile in ["dev", "release"] {
        let out = ok(with_env(
            command("cargo", &dev).args([
                "seed",
                "list",
                "--profile",
                profile,
                "--store",
                c.store.to_str().unwrap(),
            ]),
            &WRAPPED,
        ));
        let listed = text(&out.stdout);
        let expected = if profile == "dev" {
            "build, test --no-run, check --all-targets, clippy --all-targets"
        } else {
            "build --release"
        };
        assert!(listed.contains(expected), "{listed}");
    }
}

fn host() -> String {
    let out = ok(command("rustc", Path::new(".")).arg("-vV"));
    let vv = text(&out.stdout);
    vv.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_owned()
}

#[test]
fn other_rustflags_or_linker_here_skip_the_snapshot_before_downloading() {
    let c = covered();
    let manifest = World::manifest(&c.store, &c.base);
    assert_eq!(
        manifest["build_flags"]["rustflags"],
        serde_json::json!(["--cfg", "seeded_fixture"]),
        "read from the workspace's .cargo/config.toml, as cargo did"
    );
    let linker_var = format!(
        "CARGO_TARGET_{}_LINKER",
        host().to_uppercase().replace('-', "_")
    );
    let cases = [
        (
            "RUSTFLAGS",
            "-Dwarnings",
            "rustflags `-Dwarnings`, from RUSTFLAGS",
        ),
        (linker_var.as_str(), "cc", "linker `cc`"),
    ];
    for (n, (var, value, said)) in cases.into_iter().enumerate() {
        let dev = clone_dev(c, 10 + n, &c.base);
        let out = seed_env(
            &dev,
            &["--store", c.store.to_str().unwrap()],
            &[WRAPPED[0], (var, Some(value))],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(
            err.contains("built with rustflags `--cfg seeded_fixture`") && err.contains(said),
            "{err}"
        );
        assert!(!dev.join("target").exists(), "nothing was downloaded");
        // What the skip spares: seeded anyway, cargo rebuilds every unit.
        seed_ok(&dev, &[]);
        let report = cargo_report(&dev, &["build", "-v"], &[WRAPPED[0], (var, Some(value))]);
        assert!(report.fresh.is_empty(), "{}", report.stderr);
        assert!(!report.compiled.is_empty(), "{}", report.stderr);
    }
}

/// The fixture at its base commit, built and published by CI with `env`
/// (and the wrapper); returns the test's root, origin, store and commit.
fn ci_with(
    tag: &str,
    env: &dyn Fn(&Path) -> Vec<(String, String)>,
) -> (PathBuf, PathBuf, PathBuf, String) {
    let root = scratch(tag);
    let commit = fixture_origin(&root, |_| {});
    let (origin, ci, store) = (root.join("origin"), root.join("ci"), root.join("store"));
    clone(&root, &origin, &ci);
    let run = |args: &[&str]| {
        let mut cmd = command("cargo", &ci);
        cmd.envs(env(&root.join("ci-side")))
            .env("RUSTC_WRAPPER", BIN)
            .args(args);
        ok(&mut cmd)
    };
    run(&["build", "--locked"]);
    run(&["seed", "publish", "--store", store.to_str().unwrap()]);
    (root, origin, store, commit)
}

/// Seeds a clone at another path with `env`, builds, and checks that cargo
/// compiles nothing and the program, found where `app_dir` says, runs.
fn seeded_build_is_fresh(
    tag: &str,
    env: &dyn Fn(&Path) -> Vec<(String, String)>,
    app_dir: &dyn Fn(&Path, &Path) -> PathBuf,
) {
    let (root, origin, store, commit) = ci_with(tag, env);
    let dev = clone_into(&root, &origin, 0, &commit);
    let side = root.join("dev-side");
    let vars = env(&side);
    let mut all: Vec<(&str, Option<&str>)> = vars
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    all.push(WRAPPED[0]);
    let out = seed_env(&dev, &["--store", store.to_str().unwrap()], &all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = cargo_report(&dev, &["build", "-v"], &all);
    assert_compiled(&report, &[]);
    assert!(!report.fresh.is_empty(), "{}", report.stderr);
    let app = app_dir(&dev, &side).join("debug/app");
    let printed = text(&ok(&mut command(&app, &dev)).stdout);
    assert!(printed.starts_with("hello, seed"), "{printed}");
}

#[test]
fn a_build_dir_apart_from_the_target_dir_is_seeded() {
    // cargo's build.build-dir: intermediate artifacts outside the workspace,
    // the final ones in target/.
    seeded_build_is_fresh(
        "build-dir",
        &|side| {
            vec![(
                "CARGO_BUILD_BUILD_DIR".into(),
                side.join("build").display().to_string(),
            )]
        },
        &|dev, _| dev.join("target"),
    );
}

#[test]
fn a_target_dir_outside_the_workspace_is_seeded() {
    seeded_build_is_fresh(
        "outside-target",
        &|side| {
            vec![(
                "CARGO_TARGET_DIR".into(),
                side.join("target").display().to_string(),
            )]
        },
        &|_, side| side.join("target"),
    );
}

#[test]
fn the_onboarding_script_sets_up_seeds_and_builds_and_can_run_again() {
    let (root, origin, store, commit) = ci_with("onboard", &|_| vec![]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/onboard.sh");
    let home = fresh_cargo_home(&root.join("dev-home"));
    let dev = clone_into(&root, &origin, 0, &commit);
    let env = [
        ("CARGO_HOME", Some(home.to_str().unwrap())),
        ("CARGO_SEED_STORE", Some(store.to_str().unwrap())),
    ];
    let onboard = |dir: &Path, env: &[(&str, Option<&str>)]| {
        let out = ok(with_env(command("bash", dir).arg(&script), env));
        text(&out.stderr)
    };

    // cargo-seed is on PATH (the test harness puts it first): not installed.
    let first = onboard(&dev, &env);
    assert!(!first.contains("installing"), "{first}");
    assert!(
        first.contains("Set up") && first.contains("Seeded"),
        "{first}"
    );
    assert!(first.contains("onboard: ready"), "{first}");
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    assert!(config.contains("rustc-wrapper"), "{config}");
    // The build the script ran reused the snapshot: nothing was compiled.
    assert!(!first.contains("Compiling"), "{first}");
    assert_compiled(&cargo_report(&dev, &["build", "-v"], &env), &[]);

    let again = onboard(&dev, &env);
    assert!(
        again.contains("already holds build state, left as it is"),
        "{again}"
    );
    assert!(!again.contains("Set up"), "set up once: {again}");
    assert_compiled(&cargo_report(&dev, &["build", "-v"], &env), &[]);

    // A store that cannot be reached: said, and the build still happens.
    let other = clone_into(&root, &origin, 1, &commit);
    let unreachable = [
        env[0],
        ("CARGO_SEED_STORE", Some("http://127.0.0.1:9/none")),
    ];
    let said = onboard(&other, &unreachable);
    assert!(
        said.contains("warning: seeding failed") && said.contains("onboard: ready"),
        "{said}"
    );
    assert!(other.join("target/debug/app").is_file());
}

#[test]
fn all_seeds_every_snapshot_published_together() {
    let c = covered();
    let host = host();
    let dev = clone_dev(c, 40, &c.base);
    let said = seed_ok(&dev, &["--all"]);
    assert_eq!(
        said.matches("Seeded").count(),
        3,
        "dev, release and --target: {said}"
    );
    for build in [
        vec!["build", "-v"],
        vec!["test", "-v"],
        vec!["build", "--release", "-v"],
        vec!["build", "--target", &host, "-v"],
    ] {
        let report = cargo_report(&dev, &build, &WRAPPED);
        assert_compiled(&report, &[]);
        assert!(report.fresh.len() >= 5, "{}", report.stderr);
    }
    // Again with --force: every directory keeps what it already holds.
    let again = seed_ok(&dev, &["--all", "--force"]);
    assert_eq!(
        again.matches("kept from the build dir").count(),
        3,
        "{again}"
    );
}

#[test]
fn a_registry_packages_tracked_files_are_unpacked_before_they_are_compared() {
    let (root, origin, store, commit) = ci_with("unpack-sources", &|_| vec![]);
    // A registry unit that tracks a file of its package, as the build
    // scripts of anyhow, serde or libc do with `rerun-if-changed`. itoa's
    // tracks none, so its entry is given its own `src/lib.rs`, with the
    // digest of CI's copy.
    World::edit_manifest(&store, &commit, |m| {
        let home = PathBuf::from(m["cargo_home"].as_str().unwrap());
        let itoa = m["units"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|u| u["name"] == "lib itoa")
            .unwrap();
        let src = PathBuf::from(itoa["src_path"].as_str().unwrap());
        let package = src.parent().unwrap().parent().unwrap();
        // cargo-seed's digest of a file: the sha256 of its sha256.
        let digest = text(&ok(std::process::Command::new("bash").args([
            "-c",
            "sha256sum \"$0\" | cut -c1-64 | perl -ne 'chomp; print pack(\"H*\", $_)' | sha256sum",
            src.to_str().unwrap(),
        ]))
        .stdout);
        itoa["check"] = serde_json::json!({"inputs": {
            "base": "cargo-home",
            "package_root": package.strip_prefix(&home).unwrap(),
            "files": [{"path": "src/lib.rs", "sha256": digest.split(' ').next().unwrap()}],
        }});
    });
    // A newcomer's CARGO_HOME: cargo has unpacked no source in it yet.
    let home = fresh_cargo_home(&root.join("dev-home"));
    let dev = clone_into(&root, &origin, 0, &commit);
    let env = [("CARGO_HOME", Some(home.to_str().unwrap())), WRAPPED[0]];
    let out = seed_env(&dev, &["--store", store.to_str().unwrap()], &env);
    let said = text(&out.stderr);
    assert!(out.status.success(), "{said}");
    // itoa's file was compared, not found missing: cargo compiles nothing.
    assert_compiled(&cargo_report(&dev, &["build", "-v"], &env), &[]);
    assert!(said.contains("`cargo fetch` unpacked them"), "{said}");
}

#[test]
fn the_first_build_after_a_seed_finds_what_cargo_asked_rustc() {
    let (root, origin, store, commit) = ci_with("rustc-info", &|_| vec![]);
    let dev = clone_into(&root, &origin, 0, &commit);
    let env = [WRAPPED[0]];
    let out = seed_env(&dev, &["--store", store.to_str().unwrap()], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cache = dev.join("target/.rustc_info.json");
    let given = std::fs::read(&cache).expect("the seed gives cargo's rustc cache");
    assert_compiled(&cargo_report(&dev, &["build", "-v"], &env), &[]);
    // Cargo found its key in it and asked rustc nothing more: it would
    // have rewritten the file.
    assert_eq!(std::fs::read(&cache).unwrap(), given);
}
