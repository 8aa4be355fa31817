//! What the benches share: how many runs, the median with its range, and
//! the size of a directory.

#![allow(dead_code)]

pub mod data;

use std::fs;
use std::path::Path;

/// Runs per case: `RUNS`, else `default`.
pub fn runs(default: usize) -> usize {
    std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(default)
}

/// Median, lowest and highest.
pub fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Bytes of every file below `p`.
pub fn dir_size(p: &Path) -> u64 {
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

/// The cargo-seed binary under bench; its directory goes first on `PATH`.
pub const BIN: &str = env!("CARGO_BIN_EXE_cargo-seed");

/// Runs `cmd` with bash in `dir`, cargo-seed on `PATH` and no rustc
/// wrapper or target dir from the caller's environment; returns its
/// seconds, and panics if it fails.
pub fn run(dir: &Path, cmd: &str, env: &[(&str, &Path)]) -> f64 {
    let start = std::time::Instant::now();
    let mut c = std::process::Command::new("bash");
    c.args(["-ec", cmd])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_BUILD_RUSTC_WRAPPER");
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    c.env("PATH", path);
    for (k, v) in env {
        c.env(k, v);
    }
    let st = c.status().unwrap();
    assert!(st.success(), "failed: {cmd}");
    start.elapsed().as_secs_f64()
}

/// Runs `program` in `dir` with no target dir, build dir or rustc wrapper
/// from the caller's environment (and `CI` set: no progress bars); returns
/// its wall time and stdout, and panics if it fails.
pub fn timed(dir: &Path, program: &str, args: &[&str]) -> (f64, String) {
    let start = std::time::Instant::now();
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_BUILD_DIR")
        .env_remove("RUSTC_WRAPPER")
        .env("CI", "1")
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{program} {args:?} failed");
    (secs, String::from_utf8(out.stdout).unwrap())
}

/// The first JSON event named `name` among `stdout`'s lines.
pub fn event(stdout: &str, name: &str) -> serde_json::Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {stdout}"))
}

/// Prints a case's median and range, and its ratio to `base`; returns the
/// median.
pub fn show(name: &str, times: Vec<f64>, base: Option<f64>) -> f64 {
    let (m, lo, hi) = spread(times);
    let ratio = base.map_or(String::new(), |b| format!(" ({:.2}x in place)", m / b));
    println!("  {name}: median {m:.2}s (range {lo:.2}-{hi:.2}s){ratio}");
    m
}

/// A generated repository, committed once, that CI and developers clone.
pub struct Repo {
    pub root: std::path::PathBuf,
    pub origin: std::path::PathBuf,
}

impl Repo {
    /// A new scratch root `tag` under the bench's tmpdir holding `origin`,
    /// written by `generate` and committed.
    pub fn generate(tag: &str, generate: impl FnOnce(&Path)) -> Repo {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(tag);
        let _ = fs::remove_dir_all(&root);
        let origin = root.join("origin");
        generate(&origin);
        run(
            &origin,
            "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm gen",
            &[],
        );
        Repo { root, origin }
    }

    /// `git clone` of the origin into `to`.
    pub fn clone_to(&self, to: &Path) {
        run(
            &self.root,
            &format!("git clone -q {} {}", self.origin.display(), to.display()),
            &[],
        );
    }

    /// An empty directory `name` under the root, for a `CARGO_HOME`.
    pub fn home(&self, name: &str) -> std::path::PathBuf {
        let h = self.root.join(name);
        fs::create_dir_all(&h).unwrap();
        h
    }
}
