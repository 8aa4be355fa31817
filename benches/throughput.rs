//! How fast a seed makes a large build dir, against `cp -a` of the same
//! directory: from a directory store, and from an HTTP store whose blobs
//! are all in the local blob cache already.
//!
//! The workspace is generated (`common::data`: over 2 GB of profile dir).
//! It is built once, published once into a directory store, and seeded
//! into fresh clones at another path.
//!
//! `cargo bench --bench throughput` prints, for each way, the median of
//! `RUNS` runs (default 5) with the range, the ratio to `cp -a`, and the
//! median of each stage time the `seeded` event reports. The page cache
//! cannot be dropped here: every way runs once untimed first, so all of
//! them read from a warm page cache. Needs `git`, `cp` and nginx (as the
//! restore bench). Leaves nothing behind in `target/tmp` unless `KEEP` is
//! set.

mod common;
#[path = "../tests/common/http.rs"]
mod http;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::data::{generate, sh, DATA_CRATES, DATA_MIB, SMALL_CRATES};
use common::{dir_size, event, runs, spread, timed};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-seed");

/// The stages of the `seeded` event, and how many units were rebuilt.
fn seeded(stdout: &str) -> (Vec<(String, f64)>, usize) {
    let event = event(stdout, "seeded");
    let stages = event["stages"]
        .as_object()
        .expect("stages")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect();
    (stages, event["rebuilt"].as_array().unwrap().len())
}

/// The timed runs of one way of seeding, and the median of each stage.
struct Way {
    secs: Vec<f64>,
    stages: Vec<Vec<(String, f64)>>,
}

impl Way {
    fn stage_medians(&self) -> String {
        let names: Vec<String> = self.stages[0].iter().map(|(k, _)| k.clone()).collect();
        let order = [
            "resolve",
            "judge",
            "stage",
            "fetch",
            "verify",
            "decompress",
            "write",
            "relocate",
            "swap",
            "replay",
        ];
        order
            .iter()
            .filter(|n| names.iter().any(|k| k == *n))
            .map(|name| {
                let v: Vec<f64> = self
                    .stages
                    .iter()
                    .map(|s| s.iter().find(|(k, _)| k == name).unwrap().1)
                    .collect();
                format!("{name} {:.2}", spread(v).0)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Seeds a fresh clone of `src` at `dir` from `store`; returns the time,
/// the stages, and the seeded profile dir.
fn seed_once(src: &Path, dir: &Path, store: &str) -> (f64, Vec<(String, f64)>, PathBuf) {
    sh(
        dir.parent().unwrap(),
        &format!("git clone -q {} {}", src.display(), dir.display()),
    );
    let (secs, out) = timed(
        dir,
        BIN,
        &["seed", "--message-format", "json", "--store", store],
    );
    let (stages, rebuilt) = seeded(&out);
    assert_eq!(rebuilt, 0, "every unit reused: {out}");
    (secs, stages, dir.join("target/debug"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-throughput");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    // The bench's own blob cache, never the user's.
    std::env::set_var("CARGO_SEED_CACHE_DIR", root.join("blob-cache"));
    std::env::set_var("CARGO_SEED_CACHE_SIZE", "10G");
    // No incremental state: it would be a fourth copy of the data, which a
    // seed at another path without the wrapper does not fetch anyway.
    std::env::set_var("CARGO_INCREMENTAL", "0");

    let ci = root.join("ci");
    fs::create_dir_all(&ci).unwrap();
    generate(&ci);
    let start = Instant::now();
    sh(&ci, "cargo build -q");
    let build_s = start.elapsed().as_secs_f64();
    let profile = ci.join("target/debug");
    let size = dir_size(&profile);
    let store = root.join("store");
    let start = Instant::now();
    sh(
        &ci,
        &format!("{BIN} seed publish -q --store {}", store.display()),
    );
    let publish_s = start.elapsed().as_secs_f64();
    println!(
        "workspace: {} units of data ({DATA_MIB} MiB each), {SMALL_CRATES} small, a binary; \
         build {build_s:.1}s; profile dir {:.2} GB; store {:.2} GB; publish {publish_s:.1}s",
        DATA_CRATES,
        size as f64 / 1e9,
        dir_size(&store) as f64 / 1e9,
    );
    // Only the store is read from here on: the CI checkout's build dir goes.
    fs::remove_dir_all(ci.join("target")).unwrap();

    let n = runs(5);
    let dir_store = store.to_str().unwrap().to_owned();
    let nginx = http::Nginx::start(&root.join("nginx"), &store);
    let mut ways: Vec<(&str, Way)> = Vec::new();
    let mut copies = Vec::new();
    let mut dev_i = 0;
    let mut next_dev = || {
        dev_i += 1;
        let d = root.join(format!("dev-{dev_i}"));
        fs::create_dir_all(&d).unwrap();
        d
    };
    for (label, store) in [
        ("seed from a directory store", dir_store.as_str()),
        (
            "seed from HTTP, every blob in the local cache",
            nginx.url.as_str(),
        ),
    ] {
        // Untimed: warms the page cache (and, over HTTP, fills the blob
        // cache), and leaves the profile dir that `cp -a` copies.
        let warm = next_dev();
        let (_, _, seeded_dir) = seed_once(&ci, &warm.join("app"), store);
        if copies.is_empty() {
            let copy = root.join("copy");
            timed(
                &root,
                "cp",
                &["-a", seeded_dir.to_str().unwrap(), copy.to_str().unwrap()],
            );
            fs::remove_dir_all(&copy).unwrap();
            for _ in 0..n {
                let (secs, _) = timed(
                    &root,
                    "cp",
                    &["-a", seeded_dir.to_str().unwrap(), copy.to_str().unwrap()],
                );
                copies.push(secs);
                fs::remove_dir_all(&copy).unwrap();
            }
            println!(
                "seeded profile dir: {:.2} GB",
                dir_size(&seeded_dir) as f64 / 1e9
            );
        }
        fs::remove_dir_all(&warm).unwrap();
        let mut way = Way {
            secs: Vec::new(),
            stages: Vec::new(),
        };
        for _ in 0..n {
            let dev = next_dev();
            let (secs, stages, _) = seed_once(&ci, &dev.join("app"), store);
            way.secs.push(secs);
            way.stages.push(stages);
            fs::remove_dir_all(&dev).unwrap();
        }
        ways.push((label, way));
    }
    let (cp, lo, hi) = spread(copies);
    println!("cp -a of the seeded profile dir: {cp:.2}s (range {lo:.2}–{hi:.2}s)");
    for (label, way) in &ways {
        let (m, lo, hi) = spread(way.secs.clone());
        println!(
            "{label}: {m:.2}s (range {lo:.2}–{hi:.2}s), {:.2}x cp -a; stages (median s; \
             fetch to relocate summed over the workers): {}",
            m / cp,
            way.stage_medians()
        );
    }
    drop(nginx);
    // `KEEP=1` leaves the CI checkout and the store, to profile a seed by
    // hand.
    if std::env::var_os("KEEP").is_none() {
        let _ = fs::remove_dir_all(&root);
    }
}
