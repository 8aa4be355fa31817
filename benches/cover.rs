//! What covering a developer's first hour costs CI: the store size and the
//! publish time of a snapshot that covers `build`, `test --no-run`, `check
//! --all-targets` and `clippy --all-targets`, against one of `build` alone,
//! on a real workspace (a clone of this repository).
//!
//! `cargo bench --bench cover`; `RUNS=n` (default 3) publishes per case,
//! each into an empty store; prints the median and the range.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{dir_size, runs, spread};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-seed");
const COVERS: [&str; 4] = [
    "build",
    "test --no-run",
    "check --all-targets",
    "clippy --all-targets",
];

fn run(dir: &Path, program: &str, args: &[&str]) -> f64 {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WRAPPER")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

fn units(store: &Path) -> usize {
    let mut n = 0;
    for commit in fs::read_dir(store.join("snapshots")).unwrap().flatten() {
        for m in fs::read_dir(commit.path()).unwrap().flatten() {
            if m.path().extension().is_some_and(|e| e == "json") {
                let v: serde_json::Value =
                    serde_json::from_slice(&fs::read(m.path()).unwrap()).unwrap();
                n += v["units"].as_array().unwrap().len();
            }
        }
    }
    n
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = runs(3);
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-cover");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ci = root.join("ci");
    run(
        &root,
        "git",
        &["clone", "-q", repo.to_str().unwrap(), ci.to_str().unwrap()],
    );
    // CI's job: every covered command, once, before publishing.
    for cover in COVERS {
        let mut args: Vec<&str> = cover.split(' ').collect();
        args.push("--locked");
        run(&ci, "cargo", &args);
    }

    let mut cases = Vec::new();
    for (name, covers) in [("build only", &COVERS[..1]), ("first hour", &COVERS[..])] {
        let mut times = Vec::new();
        let mut size = (0, 0);
        for i in 0..runs {
            let store = root.join(format!("store-{}-{i}", name.replace(' ', "-")));
            let mut args = vec!["seed", "publish", "-q", "--store", store.to_str().unwrap()];
            for c in covers {
                args.extend(["--cover", c]);
            }
            times.push(run(&ci, BIN, &args));
            size = (dir_size(&store), units(&store));
        }
        let (median, low, high) = spread(times);
        println!(
            "{name}: publish {median:.2}s (range {low:.2}–{high:.2}s, {runs} runs), store {:.1} MiB, {} units",
            size.0 as f64 / (1 << 20) as f64,
            size.1
        );
        cases.push((median, size.0));
    }
    let (build, hour) = (cases[0], cases[1]);
    println!(
        "first hour vs build only: store {:.2}x ({:+.1} MiB), publish {:.2}x ({:+.2}s)",
        hour.1 as f64 / build.1 as f64,
        (hour.1 as f64 - build.1 as f64) / (1 << 20) as f64,
        hour.0 / build.0,
        hour.0 - build.0
    );
}
