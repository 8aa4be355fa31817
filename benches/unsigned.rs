//! What seeding from an unsigned store costs in reuse: the replay of an
//! unsigned snapshot never loads a proc-macro from it, so a crate that uses
//! one keeps CI's paths for it, and rustc recompiles what reads them.
//!
//! On the fixture workspace (`fixtures/sample-ws`, whose `app` uses the
//! proc-macro `shout`): CI builds through the wrapper and publishes a signed
//! snapshot; a developer elsewhere (another path, another `CARGO_HOME`, `cargo
//! seed setup`) seeds it trusting the key, or without keys, edits `app`'s
//! `main.rs` and builds. A codegen unit of `app` counts as reused when its
//! object file in rustc's new session is a hard link of one in the seeded
//! session. Builds are timed too.
//!
//! `cargo bench --bench unsigned`; `RUNS=n` (default 3).

mod common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{runs, spread};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-seed");

fn run(dir: &Path, cmd: &str, env: &[(&str, &str)]) -> (f64, String) {
    let start = Instant::now();
    let mut c = Command::new("bash");
    c.args(["-ec", cmd])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_SEED_TRUSTED_KEYS")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    c.env("PATH", path);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "failed: {cmd}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (start.elapsed().as_secs_f64(), said)
}

/// The object files of `app`'s incremental sessions, by inode.
fn app_objects(profile: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    for krate in fs::read_dir(profile.join("incremental"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if !krate.file_name().to_string_lossy().starts_with("app-") {
            continue;
        }
        for session in fs::read_dir(krate.path()).into_iter().flatten().flatten() {
            for file in fs::read_dir(session.path()).into_iter().flatten().flatten() {
                let p = file.path();
                if p.extension().is_some_and(|e| e == "o") {
                    out.push((p, file.metadata().unwrap().ino()));
                }
            }
        }
    }
    out
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = runs(3);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-unsigned");
    let _ = fs::remove_dir_all(&root);
    let origin = root.join("origin");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample-ws");
    run(
        root.parent().unwrap(),
        &format!(
            "mkdir -p {o} && cp -r {f}/. {o} && rm -rf {o}/target && cd {o} && git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm fixture",
            o = origin.display(),
            f = fixture.display()
        ),
        &[],
    );
    let keys = run(&root, "cargo seed keygen", &[]).1;
    let key = |prefix: &str| {
        keys.split_whitespace()
            .find(|w| w.starts_with(prefix))
            .unwrap()
            .to_owned()
    };
    let (secret, public) = (
        key("cargo-seed-secret-ed25519:"),
        key("cargo-seed-ed25519:"),
    );

    let ci = root.join("ci/work/ws");
    let ci_home = root.join("ci-home");
    fs::create_dir_all(&ci_home).unwrap();
    let ci_home = ci_home.to_str().unwrap();
    let store = root.join("store");
    let store = store.to_str().unwrap();
    run(
        &root,
        &format!("git clone -q {} {}", origin.display(), ci.display()),
        &[],
    );
    run(
        &ci,
        "cargo seed setup -q && cargo build -q",
        &[("CARGO_HOME", ci_home)],
    );
    run(
        &ci,
        &format!("cargo seed publish -q --store {store}"),
        &[("CARGO_HOME", ci_home), ("CARGO_SEED_SIGNING_KEY", &secret)],
    );

    let mut n = 0;
    let mut seeded = |trusted: bool| -> (f64, usize, usize) {
        n += 1;
        let dev = root.join(format!("dev-{n}/somewhere/else/ws"));
        let home = root.join(format!("dev-{n}/cargo-home"));
        fs::create_dir_all(&home).unwrap();
        let home = home.to_str().unwrap().to_owned();
        run(
            &root,
            &format!("git clone -q {} {}", origin.display(), dev.display()),
            &[],
        );
        let mut env = vec![("CARGO_HOME", home.as_str())];
        run(&dev, "cargo seed setup -q", &env);
        if trusted {
            env.push(("CARGO_SEED_TRUSTED_KEYS", &public));
        }
        run(&dev, &format!("cargo seed --store {store}"), &env);
        run(
            &dev,
            "sed -i 's/count: /vowels: /' app/src/main.rs && grep -q vowels app/src/main.rs",
            &env,
        );
        let profile = dev.join("target/debug");
        let seeded: HashSet<u64> = app_objects(&profile).into_iter().map(|(_, i)| i).collect();
        let (t, _) = run(&dev, "cargo build -q", &env);
        let after = app_objects(&profile);
        let reused = after.iter().filter(|(_, i)| seeded.contains(i)).count();
        let _ = fs::remove_dir_all(root.join(format!("dev-{n}")));
        (t, reused, after.len())
    };
    println!("fixture `app` (uses the proc-macro `shout`), `main.rs` edited after the seed, {runs} runs per case:");
    for (name, trusted) in [
        ("signed snapshot, key trusted", true),
        ("same snapshot, no trusted keys", false),
    ] {
        let results: Vec<(f64, usize, usize)> = (0..runs).map(|_| seeded(trusted)).collect();
        let (m, lo, hi) = spread(results.iter().map(|r| r.0).collect());
        let (reused, total) = (results[0].1, results[0].2);
        let same = results.iter().all(|r| (r.1, r.2) == (reused, total));
        println!(
            "  {name}: {reused} of {total} codegen units of app reused{}; cargo build median {m:.2}s (range {lo:.2}-{hi:.2}s)",
            if same { "" } else { " (varies between runs)" }
        );
    }
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = fs::remove_dir_all(&root);
    }
}
