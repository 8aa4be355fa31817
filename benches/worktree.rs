//! How fast `cargo seed --from` makes a new worktree's build dir from a
//! sibling checkout's, against a plain `cp -a` of the donor's profile dir,
//! and against the way without `--from`: `cargo seed publish` into a
//! local directory store, then `cargo seed` from it.
//!
//! The workspace is generated (`common::data`: over 2 GB of profile dir)
//! and built once in the main checkout, without incremental state (as the
//! `throughput` bench: it would be one more copy of the data, which a
//! checkout without cargo-seed's wrapper does not take at another path
//! anyway). Each timed `--from` seeds a new `git worktree` of it at another
//! path; each publish goes into an empty store. Every way runs once
//! untimed first, so all read from a warm page cache, and every timed run
//! starts after `sync`.
//!
//! `cargo bench --bench worktree` prints the median of `RUNS` runs (default
//! 5) with the range, and the ratio to `cp -a`. Leaves nothing behind in
//! `target/tmp` unless `KEEP` is set.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::data::{generate, sh};
use common::{dir_size, event, runs, spread, timed, BIN};

/// The `seeded` event's units reused and rebuilt.
fn seeded(stdout: &str) -> (u64, usize) {
    let event = event(stdout, "seeded");
    (
        event["reused"].as_u64().unwrap(),
        event["rebuilt"].as_array().unwrap().len(),
    )
}

struct Bench {
    root: PathBuf,
    main: PathBuf,
    n: usize,
}

impl Bench {
    /// A new worktree of the main checkout at a new path.
    fn worktree(&mut self) -> PathBuf {
        self.n += 1;
        let dir = self.root.join(format!("wt-{}/app", self.n));
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        sh(
            &self.main,
            &format!("git worktree add -q --detach {}", dir.display()),
        );
        dir
    }

    fn remove(&self, wt: &Path) {
        sh(
            &self.main,
            &format!("git worktree remove --force {}", wt.display()),
        );
    }

    /// `cargo seed --from` the main checkout into a new worktree: its time,
    /// and the worktree.
    fn from(&mut self) -> (f64, PathBuf) {
        let wt = self.worktree();
        let main = self.main.to_str().unwrap().to_owned();
        let (secs, out) = timed(
            &wt,
            BIN,
            &["seed", "--message-format", "json", "--from", &main],
        );
        let (reused, rebuilt) = seeded(&out);
        assert!(reused > 0 && rebuilt == 0, "every unit reused: {out}");
        (secs, wt)
    }

    /// `cargo seed publish` into a new empty store, then `cargo seed` from
    /// it in a new worktree: both times.
    fn publish_and_seed(&mut self, sync: &dyn Fn()) -> (f64, f64) {
        self.n += 1;
        let store = self.root.join(format!("store-{}", self.n));
        let store = store.to_str().unwrap().to_owned();
        sync();
        let (publish, _) = timed(
            &self.main,
            BIN,
            &["seed", "publish", "-q", "--store", &store],
        );
        let wt = self.worktree();
        sync();
        let (seed, out) = timed(
            &wt,
            BIN,
            &["seed", "--message-format", "json", "--store", &store],
        );
        assert_eq!(seeded(&out).1, 0, "every unit reused: {out}");
        self.remove(&wt);
        fs::remove_dir_all(&store).unwrap();
        (publish, seed)
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-worktree");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    std::env::set_var("CARGO_INCREMENTAL", "0");
    let main = root.join("main");
    fs::create_dir_all(&main).unwrap();
    generate(&main);
    let start = Instant::now();
    sh(&main, "cargo build -q");
    let build_s = start.elapsed().as_secs_f64();
    let profile = main.join("target/debug");
    println!(
        "donor: build {build_s:.1}s; profile dir {:.2} GB",
        dir_size(&profile) as f64 / 1e9
    );
    let mut b = Bench {
        root: root.clone(),
        main,
        n: 0,
    };
    let n = runs(5);

    // Each timed run starts after `sync`: the gigabytes the previous one
    // left dirty in the page cache are written back outside the timing, so
    // that no way pays for another's writes. `cp -a` and `--from` take
    // turns, so that both meet the same machine.
    let sync = || sh(&root, "sync");
    let copy = root.join("copy");
    let cp = || {
        sync();
        let (secs, _) = timed(
            &root,
            "cp",
            &["-a", profile.to_str().unwrap(), copy.to_str().unwrap()],
        );
        fs::remove_dir_all(&copy).unwrap();
        secs
    };
    // Untimed first, each way.
    cp();
    let (_, warm) = b.from();
    b.remove(&warm);
    let (mut copies, mut froms) = (Vec::new(), Vec::new());
    for i in 0..n {
        copies.push(cp());
        sync();
        let (secs, wt) = b.from();
        froms.push(secs);
        // The last one is built, to show it holds what cargo needs:
        // nothing compiles.
        if i + 1 == n {
            let out = Command::new("cargo")
                .args(["build", "-v"])
                .current_dir(&wt)
                .env_remove("CARGO_TARGET_DIR")
                .output()
                .unwrap();
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && !said.contains("Compiling"),
                "a build after --from compiled: {said}"
            );
        }
        b.remove(&wt);
    }

    b.publish_and_seed(&sync);
    let (mut publishes, mut seeds, mut sums) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (p, s) = b.publish_and_seed(&sync);
        publishes.push(p);
        seeds.push(s);
        sums.push(p + s);
    }

    let (cp, lo, hi) = spread(copies);
    println!("cp -a of the donor's profile dir: {cp:.2}s (range {lo:.2}–{hi:.2}s)");
    let (m, lo, hi) = spread(froms);
    println!(
        "cargo seed --from: {m:.2}s (range {lo:.2}–{hi:.2}s), {:.2}x cp -a",
        m / cp
    );
    let (p, plo, phi) = spread(publishes);
    let (s, slo, shi) = spread(seeds);
    let (t, tlo, thi) = spread(sums);
    println!(
        "publish into a local store, then seed: {t:.2}s (range {tlo:.2}–{thi:.2}s), {:.2}x cp -a \
         (publish {p:.2}s, range {plo:.2}–{phi:.2}s; seed {s:.2}s, range {slo:.2}–{shi:.2}s)",
        t / cp
    );
    if std::env::var_os("KEEP").is_none() {
        let _ = fs::remove_dir_all(&root);
    }
}
