//! Restore speed, store size, incremental publish and peak memory, measured
//! on a real workspace: a clone of this repository (about a hundred units).
//!
//! `cargo bench --bench restore` prints one line per figure. The baseline is
//! the same profile dir packed with `tar | zstd -3 -T0` and unpacked with
//! `zstd -dc | tar -x`. Needs `git`, `tar` and `zstd` on PATH.

// The tests' nginx and S3 harnesses, shared rather than written twice.
#[path = "../tests/common/http.rs"]
mod http;
#[path = "../tests/common/s3.rs"]
mod s3;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_cargo-seed");
const RUNS: usize = 3;

fn sh(dir: &Path, script: &str) {
    let st = Command::new("bash")
        .args(["-ec", script])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .unwrap();
    assert!(st.success(), "failed: {script}");
}

/// Runs a command; returns wall seconds and the child's peak RSS in KiB.
// The child is reaped by wait4, which std's Child does not know about.
#[allow(clippy::zombie_processes)]
fn measure(dir: &Path, program: &str, args: &[&str]) -> (f64, i64) {
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
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child with valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let secs = start.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{program} {args:?} failed"
    );
    (secs, usage.ru_maxrss)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    n
}

fn seed_bench(root: &Path, label: &str, src: &Path) -> (f64, i64) {
    let store = root.join("store");
    let store = store.to_str().unwrap();
    let ci = root.join("ci");
    sh(root, &format!("git clone -q {} ci", src.display()));
    sh(&ci, "cargo build -q");
    let (publish_s, _) = measure(&ci, BIN, &["seed", "publish", "-q", "--store", store]);

    // Baseline: the whole profile dir as one tar.zst.
    sh(
        &ci,
        "tar -C target -cf - debug | zstd -q -3 -T0 -o ../archive.tar.zst",
    );
    let archive = fs::metadata(root.join("archive.tar.zst")).unwrap().len();
    let mut base = Vec::new();
    let mut ours = Vec::new();
    let mut rss = 0;
    for i in 0..RUNS {
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
        let (s, r) = measure(&dev, BIN, &["seed", "-q", "--store", store]);
        ours.push(s);
        rss = rss.max(r);
    }
    let stored = dir_size(&root.join("store/blobs"));
    let (b, o) = (median(base), median(ours));
    println!(
        "{label}: restore {o:.3}s vs zstd -dc|tar -x {b:.3}s ({:.2}x); store {:.1} MiB vs archive {:.1} MiB ({:.2}x); publish {publish_s:.2}s; peak RSS {} MiB",
        o / b,
        stored as f64 / 1048576.0,
        archive as f64 / 1048576.0,
        stored as f64 / archive as f64,
        rss / 1024
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
    for i in 0..RUNS {
        let dev = large.join(format!("http-{i}/app"));
        sh(
            &large,
            &format!("git clone -q {} {}", repo.display(), dev.display()),
        );
        over_http.push(measure(&dev, BIN, &["seed", "-q", "--store", &nginx.url]).0);
    }
    let h = median(over_http);
    println!(
        "cargo-seed itself over HTTP (nginx, loopback): restore {h:.3}s vs local store {large_local:.3}s ({:.2}x)",
        h / large_local
    );

    // The same snapshot from S3: moto's server on loopback (a Python
    // server, so this is an upper bound for a real object store).
    let moto = s3::Moto::shared();
    for (k, v) in moto.env() {
        std::env::set_var(k, v);
    }
    let bucket = moto.bucket("bench");
    let s3_url = format!("s3://{bucket}/large");
    let (s3_publish, _) = measure(
        &large.join("ci"),
        BIN,
        &["seed", "publish", "-q", "--store", &s3_url],
    );
    let mut over_s3 = Vec::new();
    let mut s3_rss = 0;
    for i in 0..RUNS {
        let dev = large.join(format!("s3-{i}/app"));
        sh(
            &large,
            &format!("git clone -q {} {}", repo.display(), dev.display()),
        );
        let (t, rss) = measure(&dev, BIN, &["seed", "-q", "--store", &s3_url]);
        over_s3.push(t);
        s3_rss = s3_rss.max(rss);
    }
    let o = median(over_s3);
    println!(
        "cargo-seed itself over S3 (moto, loopback): publish {s3_publish:.2}s; restore {o:.3}s vs local store {large_local:.3}s ({:.2}x); peak RSS {} MiB",
        o / large_local,
        s3_rss / 1024
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
        measure(&res, BIN, &args).0
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

    // Publishing the next commit stores only what changed.
    let ci = large.join("ci");
    let blobs = || dir_size(&large.join("store/blobs"));
    let before = blobs();
    sh(&ci, "echo '// bench edit' >> src/ui.rs && git -c user.name=b -c user.email=b@b commit -qam edit && cargo build -q");
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
        "peak RSS of cargo seed: {} MiB on the fixture, {} MiB on cargo-seed itself",
        small_rss / 1024,
        large_rss / 1024
    );
    let _ = fs::remove_dir_all(&root);
}
