//! Restore speed, store size, incremental publish and peak memory, measured
//! on a real workspace: a clone of this repository (about a hundred units).
//!
//! `cargo bench --bench restore` prints one line per figure: the median of
//! `RUNS` runs (default 5) with the range. The baseline is the same profile
//! dir packed with `tar | zstd -3 -T0` and unpacked with `zstd -dc | tar -x`.
//! Peak memory is cargo-seed's own (its `VmHWM`, sampled every 2 ms while
//! it runs, so a lower bound by at most the last 2 ms), and apart from it
//! the peak of it and the processes it ran (`cargo metadata`, git), as
//! `wait4` reports. Needs `git`, `tar` and `zstd` on PATH.

mod common;
// The tests' nginx and S3 harnesses, shared rather than written twice.
#[path = "../tests/common/http.rs"]
mod http;
#[path = "../tests/common/s3.rs"]
mod s3;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{dir_size, runs, spread};

const BIN: &str = env!("CARGO_BIN_EXE_cargo-seed");

fn sh(dir: &Path, script: &str) {
    let st = Command::new("bash")
        .args(["-ec", script])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .unwrap();
    assert!(st.success(), "failed: {script}");
}

/// What one run of a command took.
#[derive(Clone, Copy)]
struct Run {
    secs: f64,
    /// The command's own peak RSS, KiB (sampled `VmHWM`).
    own_kib: u64,
    /// The peak RSS of it or any process it waited for, KiB (`wait4`).
    with_children_kib: i64,
}

/// The highest `VmHWM` of `pid` seen until `done` is set.
fn sample_hwm(
    pid: i32,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak = peak.max(hwm.unwrap_or(0));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        peak
    })
}

/// Runs a command and measures it.
// The child is reaped by wait4, which std's Child does not know about.
#[allow(clippy::zombie_processes)]
fn measure(dir: &Path, program: &str, args: &[&str]) -> Run {
    let start = Instant::now();
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env("CI", "1")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_hwm(pid, done.clone());
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let secs = start.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let own_kib = sampler.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{program} {args:?} failed"
    );
    Run {
        secs,
        own_kib,
        with_children_kib: usage.ru_maxrss,
    }
}

fn median(v: Vec<f64>) -> f64 {
    spread(v).0
}

/// `1.234s (range 1.100–1.400s)`.
fn shown(v: Vec<f64>) -> String {
    let (m, lo, hi) = spread(v);
    format!("{m:.3}s (range {lo:.3}–{hi:.3}s)")
}

/// Peak memory of several runs, MiB: cargo-seed's own, and with children.
#[derive(Default, Clone, Copy)]
struct Peak {
    own_kib: u64,
    with_children_kib: i64,
}

impl Peak {
    fn add(&mut self, r: Run) {
        self.own_kib = self.own_kib.max(r.own_kib);
        self.with_children_kib = self.with_children_kib.max(r.with_children_kib);
    }
}

impl std::fmt::Display for Peak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} MiB own, {} MiB with the processes it ran",
            self.own_kib / 1024,
            self.with_children_kib / 1024
        )
    }
}

fn seed_bench(root: &Path, label: &str, src: &Path) -> (f64, Peak) {
    let store = root.join("store");
    let store = store.to_str().unwrap();
    let ci = root.join("ci");
    sh(root, &format!("git clone -q {} ci", src.display()));
    sh(&ci, "cargo build -q");
    let publish_s = measure(&ci, BIN, &["seed", "publish", "-q", "--store", store]).secs;

    // Baseline: the whole profile dir as one tar.zst.
    sh(
        &ci,
        "tar -C target -cf - debug | zstd -q -3 -T0 -o ../archive.tar.zst",
    );
    let archive = fs::metadata(root.join("archive.tar.zst")).unwrap().len();
    let mut base = Vec::new();
    let mut ours = Vec::new();
    let mut rss = Peak::default();
    for i in 0..runs(5) {
        let out = root.join(format!("untar-{i}"));
        fs::create_dir_all(&out).unwrap();
        let t = Instant::now();
        sh(&out, "zstd -q -dc ../archive.tar.zst | tar -x");
        base.push(t.elapsed().as_secs_f64());

        let dev = root.join(format!("dev-{i}/app"));
        sh(
            root,
            &format!("git clone -q {} {}", src.display(), dev.display()),
        );
        let r = measure(&dev, BIN, &["seed", "-q", "--store", store]);
        ours.push(r.secs);
        rss.add(r);
    }
    let stored = dir_size(&root.join("store/blobs"));
    let (b, o) = (median(base.clone()), median(ours.clone()));
    println!(
        "{label}: restore {} vs zstd -dc|tar -x {} ({:.2}x); store {:.1} MiB vs archive {:.1} MiB ({:.2}x); publish {publish_s:.2}s; peak RSS {rss}",
        shown(ours),
        shown(base),
        o / b,
        stored as f64 / 1048576.0,
        archive as f64 / 1048576.0,
        stored as f64 / archive as f64,
    );
    (o, rss)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-restore");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Remote restores are measured over the network: the local blob cache
    // (in the bench's own directory, not the user's) is off unless a
    // figure says it is used.
    std::env::set_var("CARGO_SEED_CACHE_DIR", root.join("blob-cache"));
    std::env::set_var("CARGO_SEED_CACHE_SIZE", "0");

    // Small: the test fixture as a one-commit repository.
    let small = root.join("small");
    fs::create_dir_all(&small).unwrap();
    sh(&small, &format!(
        "cp -r {}/fixtures/sample-ws src && cd src && rm -rf target && git init -q && git add -A && \
         git -c user.name=b -c user.email=b@b commit -qm base",
        repo.display()
    ));
    let (_, small_rss) = seed_bench(&small, "fixture", &small.join("src"));

    // Large: this repository at HEAD.
    let large = root.join("large");
    fs::create_dir_all(&large).unwrap();
    let (large_local, large_rss) = seed_bench(&large, "cargo-seed itself", repo);

    // The same snapshot over HTTP: nginx on loopback serving the store.
    let nginx = http::Nginx::start(&root.join("nginx"), &large.join("store"));
    let mut over_http = Vec::new();
    for i in 0..runs(5) {
        let dev = large.join(format!("http-{i}/app"));
        sh(
            &large,
            &format!("git clone -q {} {}", repo.display(), dev.display()),
        );
        over_http.push(measure(&dev, BIN, &["seed", "-q", "--store", &nginx.url]).secs);
    }
    let h = median(over_http.clone());
    println!(
        "cargo-seed itself over HTTP (nginx, loopback): restore {} vs local store {large_local:.3}s ({:.2}x)",
        shown(over_http),
        h / large_local
    );

    // Another worktree seeded from the same HTTP store, its blobs already
    // in the local cache from a first seed (not timed).
    std::env::set_var("CARGO_SEED_CACHE_SIZE", "10G");
    let warm = large.join("http-warm/app");
    sh(
        &large,
        &format!("git clone -q {} {}", repo.display(), warm.display()),
    );
    measure(&warm, BIN, &["seed", "-q", "--store", &nginx.url]);
    let mut cached = Vec::new();
    for i in 0..runs(5) {
        let dev = large.join(format!("http-cached-{i}/app"));
        sh(
            &large,
            &format!("git clone -q {} {}", repo.display(), dev.display()),
        );
        cached.push(measure(&dev, BIN, &["seed", "-q", "--store", &nginx.url]).secs);
    }
    println!(
        "cargo-seed itself over HTTP with every blob in the local cache: restore {} ({:.2}x the network restore)",
        shown(cached.clone()),
        median(cached) / h
    );
    std::env::set_var("CARGO_SEED_CACHE_SIZE", "0");

    // The same snapshot from S3: moto's server on loopback (a Python
    // server, so this is an upper bound for a real object store).
    let moto = s3::Moto::shared();
    for (k, v) in moto.env() {
        std::env::set_var(k, v);
    }
    let bucket = moto.bucket("bench");
    let s3_url = format!("s3://{bucket}/large");
    let s3_publish = measure(
        &large.join("ci"),
        BIN,
        &["seed", "publish", "-q", "--store", &s3_url],
    )
    .secs;
    let mut over_s3 = Vec::new();
    let mut s3_rss = Peak::default();
    for i in 0..runs(5) {
        let dev = large.join(format!("s3-{i}/app"));
        sh(
            &large,
            &format!("git clone -q {} {}", repo.display(), dev.display()),
        );
        let r = measure(&dev, BIN, &["seed", "-q", "--store", &s3_url]);
        over_s3.push(r.secs);
        s3_rss.add(r);
    }
    let o = median(over_s3.clone());
    println!(
        "cargo-seed itself over S3 (moto, loopback): publish {s3_publish:.2}s; restore {} vs local store {large_local:.3}s ({:.2}x); peak RSS {s3_rss}",
        shown(over_s3),
        o / large_local,
    );

    // Resolution: the only snapshot is 200 commits behind HEAD.
    let small_store = http::Nginx::start(&root.join("nginx-small"), &small.join("store"));
    let res = root.join("resolve/app");
    sh(
        &root,
        &format!(
            "git clone -q {} {}",
            small.join("src").display(),
            res.display()
        ),
    );
    sh(&res, "for i in $(seq 200); do git -c user.name=b -c user.email=b@b commit -q --allow-empty -m \"c$i\"; done");
    let log = root.join("nginx-small/access.log");
    let before = fs::read_to_string(&log)
        .map(|l| l.lines().count())
        .unwrap_or(0);
    let resolve = |store: &str| {
        let args = [
            "seed",
            "-q",
            "--dry-run",
            "--store",
            store,
            "--max-distance",
            "250",
        ];
        measure(&res, BIN, &args).secs
    };
    let t = resolve(&small_store.url);
    let requests = fs::read_to_string(&log)
        .map(|l| l.lines().count())
        .unwrap_or(0)
        - before;
    println!("resolution of the nearest snapshot 200 commits back over HTTP: {t:.3}s, {requests} requests");
    moto.upload_store(&small.join("store"), &bucket, "small");
    let t = resolve(&format!("s3://{bucket}/small"));
    println!("resolution of the nearest snapshot 200 commits back over S3 (moto): {t:.3}s");
    // The same snapshot restated for the commits 10 and then 1 back (an
    // unsigned store): requests made when the snapshot is near.
    let snapshot_dir = fs::read_dir(small.join("store/snapshots"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let manifest_file = fs::read_dir(&snapshot_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    for back in [10, 1] {
        let out = Command::new("git")
            .args(["rev-parse", &format!("HEAD~{back}")])
            .current_dir(&res)
            .output()
            .unwrap();
        let commit = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let mut manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(&manifest_file).unwrap()).unwrap();
        manifest["commit"] = serde_json::json!(commit);
        let dir = small.join("store/snapshots").join(&commit);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(manifest_file.file_name().unwrap()),
            serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
        let before = fs::read_to_string(&log)
            .map(|l| l.lines().count())
            .unwrap_or(0);
        let t = resolve(&small_store.url);
        let requests = fs::read_to_string(&log)
            .map(|l| l.lines().count())
            .unwrap_or(0)
            - before;
        println!("resolution of the nearest snapshot {back} commits back over HTTP: {t:.3}s, {requests} requests");
    }

    // Publishing the next commit stores only what changed.
    let ci = large.join("ci");
    let blobs = || dir_size(&large.join("store/blobs"));
    let before = blobs();
    sh(&ci, "echo '// bench edit' >> src/digest.rs && git -c user.name=b -c user.email=b@b commit -qam edit && cargo build -q");
    let store = large.join("store");
    measure(
        &ci,
        BIN,
        &["seed", "publish", "-q", "--store", store.to_str().unwrap()],
    );
    println!(
        "next commit (one file of one crate edited): {:.2} MiB stored of {:.1} MiB",
        (blobs() - before) as f64 / 1048576.0,
        blobs() as f64 / 1048576.0
    );
    println!(
        "peak RSS of cargo seed: on the fixture {small_rss}; on cargo-seed itself {large_rss}"
    );
    let _ = fs::remove_dir_all(&root);
}
