//! `cargo seed --from`: a git worktree seeded from a sibling checkout's build
//! dir, with no store. Every checkout compiles through cargo-seed's rustc
//! wrapper (as `cargo seed setup` makes it), so incremental state moves
//! between paths. The suite runs on both build-dir layouts (CI runs it
//! again on the nightly with the per-unit layout).
//!
//! The fixture's `greet` gets a module of many functions, so that rustc
//! splits it into many codegen units: a codegen unit counts as reused when
//! its object file in rustc's new session is a hard link of one the seed
//! copied in (rustc links what it reuses).

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use common::*;

const MODULES: usize = 48;

struct Repo {
    root: PathBuf,
    /// The main worktree, built at `base`: the donor.
    main: PathBuf,
    base: String,
    /// `greet` says "hi there" and one function of its module changed.
    next: String,
    counter: AtomicUsize,
}

/// `greet/src/many.rs`: `MODULES` modules of small functions, summed by
/// `total`, which `greeting` prints.
fn many(factor: u64) -> String {
    let mut s = String::new();
    for m in 0..MODULES {
        let _ = writeln!(
            s,
            "pub mod m{m} {{ pub fn f(x: u64) -> u64 {{ let v: Vec<u64> = (0..x % 13).map(|i| i * {} + {m}).collect(); v.iter().sum::<u64>() + x }} }}",
            if m == 0 { factor } else { m as u64 }
        );
    }
    s.push_str("pub fn total() -> u64 {\n    0");
    for m in 0..MODULES {
        let _ = write!(s, " + m{m}::f({})", m + 20);
    }
    s.push_str("\n}\n");
    s
}

fn repo() -> &'static Repo {
    static REPO: OnceLock<Repo> = OnceLock::new();
    REPO.get_or_init(|| {
        let root = scratch("worktrees");
        let base = fixture_origin(&root, |ws| {
            fs::write(ws.join("greet/src/many.rs"), many(1)).unwrap();
            edit(
                &ws.join("greet/src/lib.rs"),
                "mod suffix;",
                "mod many;\nmod suffix;",
            );
            edit(
                &ws.join("greet/src/lib.rs"),
                "format!(\"hello, {name} (v{}){}\", buf.format(1), suffix::suffix())",
                "format!(\"hello, {name} (v{}){} {}\", buf.format(1), suffix::suffix(), many::total())",
            );
        });
        let origin = root.join("origin");
        edit(&origin.join("greet/src/lib.rs"), "hello, ", "hi there, ");
        fs::write(origin.join("greet/src/many.rs"), many(3)).unwrap();
        git(&origin, &["commit", "-qam", "greet says hi"]);
        let next = git(&origin, &["rev-parse", "HEAD"]);
        let main = root.join("checkouts/main");
        fs::create_dir_all(main.parent().unwrap()).unwrap();
        clone(&root, &origin, &main);
        git(&main, &["checkout", "-q", "--detach", &base]);
        let r = Repo {
            root,
            main,
            base,
            next,
            counter: AtomicUsize::new(0),
        };
        cargo(&r.main, &["build", "--locked"]);
        r
    })
}

/// Every command of these tests compiles through cargo-seed's wrapper.
const WRAPPED: [(&str, Option<&str>); 1] = [("RUSTC_WRAPPER", Some(BIN))];

fn cargo(dir: &Path, args: &[&str]) -> String {
    let mut cmd = command("cargo", dir);
    text(&ok(with_env(cmd.args(args), &WRAPPED)).stderr)
}

fn build(dir: &Path) -> BuildReport {
    cargo_build_env(dir, &WRAPPED)
}

impl Repo {
    /// A new worktree of the main checkout, at another path, at `commit`:
    /// `checkouts/main-<n>`, as `git worktree add ../main-fix` names them,
    /// so that the donor's path is a prefix of its own.
    fn worktree(&self, commit: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join(format!("checkouts/main-{n}"));
        fs::create_dir_all(dir.parent().unwrap()).unwrap();
        add_worktree(&self.main, &dir, commit);
        dir
    }

    /// The expected first line of the app at `commit`'s greeting.
    fn greeting(&self, hi: bool, factor: u64) -> String {
        let total: u64 = (0..MODULES as u64)
            .map(|m| {
                let k = if m == 0 { factor } else { m };
                let x = m + 20;
                (0..x % 13).map(|i| i * k + m).sum::<u64>() + x
            })
            .sum();
        let word = if hi { "hi there" } else { "hello" };
        format!("{word}, seed (v1) {total}")
    }
}

/// `git worktree add` of the repository at `repo`: `dir`, detached at
/// `commit`.
fn add_worktree(repo: &Path, dir: &Path, commit: &str) {
    let dir = dir.to_str().unwrap();
    git(repo, &["worktree", "add", "-q", "--detach", dir, commit]);
}

/// The first JSON event named `name` among `out`'s lines.
fn event(out: &str, name: &str) -> serde_json::Value {
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == name)
        .unwrap_or_else(|| panic!("no {name} event in {out}"))
}

fn seed_from(dir: &Path, donor: &Path) -> String {
    let said = cargo(dir, &["seed", "--from", donor.to_str().unwrap(), "-v"]);
    mapped_once(dir, donor);
    said
}

/// The donor's paths in the text files the seed relocates (rustc's
/// dep-info, build scripts' output) became this checkout's once: where the
/// donor's path is a prefix of this one's, mapping twice would give
/// `main-1-1`.
fn mapped_once(dir: &Path, donor: &Path) {
    let (here, there) = (dir.to_str().unwrap(), donor.to_str().unwrap());
    let Some(tail) = here.strip_prefix(there) else {
        return;
    };
    let twice = format!("{here}{tail}");
    let mut stack = vec![dir.join("target")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "d")
                || p.file_name()
                    .is_some_and(|n| n == "output" || n == "stdout")
            {
                let text = String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned();
                assert!(
                    !text.contains(&twice),
                    "{} names {twice}:\n{text}",
                    p.display()
                );
            }
        }
    }
}

#[test]
fn at_the_same_commit_nothing_compiles_and_the_donor_is_untouched() {
    let r = repo();
    let before = tree_listing(&r.main.join("target"));
    let wt = r.worktree(&r.base);
    let said = seed_from(&wt, &r.main);
    assert!(said.contains("0 to rebuild"), "{said}");
    let b = build(&wt);
    assert!(b.compiled.is_empty(), "{}\n{said}", b.stderr);
    assert!(b.fresh.contains(&"greet".to_owned()), "{}", b.stderr);
    assert_eq!(run_app(&wt).lines().next().unwrap(), r.greeting(false, 1));
    assert_same_tree(&before, &tree_listing(&r.main.join("target")));
}

#[test]
fn one_commit_apart_the_changed_crate_and_its_dependents_compile_reusing_codegen_units() {
    let r = repo();
    let wt = r.worktree(&r.next);
    let said = seed_from(&wt, &r.main);
    assert!(said.contains("incremental state relocated"), "{said}");
    let (greet, app) = (objects(&wt, "greet"), objects(&wt, "app"));
    assert!(!greet.is_empty() && !app.is_empty(), "{said}");
    let before = [sessions(&wt, "greet"), sessions(&wt, "app")].concat();
    let b = build(&wt);
    assert_compiled(&b, &["greet", "app"]);
    let (linked, all) = reused(&wt, "greet", &before, &greet);
    assert!(
        linked * 2 > all,
        "greet reused {linked} of {all} codegen units\n{said}"
    );
    let (linked, all) = reused(&wt, "app", &before, &app);
    assert!(
        linked * 2 > all,
        "app reused {linked} of {all} codegen units\n{said}"
    );
    assert_eq!(run_app(&wt).lines().next().unwrap(), r.greeting(true, 3));
}

/// A donor seeded from the main checkout and built: a build of `base` at
/// yet another path.
fn built_donor(r: &Repo) -> PathBuf {
    let donor = r.worktree(&r.base);
    seed_from(&donor, &r.main);
    assert_compiled(&build(&donor), &[]);
    donor
}

/// A checkout at `next` takes `greet` from a donor only if the donor's
/// `greet` was compiled from `next`'s sources: its files are `next`'s.
fn next_compiles(r: &Repo, donor: &Path, expected: &[&str]) {
    let wt = r.worktree(&r.next);
    let said = seed_from(&wt, donor);
    let b = build(&wt);
    assert_eq!(b.compiled, sorted(expected), "{}\n{said}", b.stderr);
    assert_eq!(run_app(&wt).lines().next().unwrap(), r.greeting(true, 3));
}

#[test]
fn a_donor_whose_build_is_stale_never_hands_over_the_stale_unit() {
    let r = repo();
    let donor = built_donor(r);
    // Checked out at `next`, not built: its `greet` is `base`'s, its
    // sources are `next`'s, equal by content to the checkout's.
    git(&donor, &["checkout", "-q", "--detach", &r.next]);
    next_compiles(r, &donor, &["greet", "app"]);
}

#[test]
fn a_donor_mid_edit_never_hands_over_the_edited_unit_and_hands_it_over_once_built() {
    let r = repo();
    let donor = built_donor(r);
    // An uncommitted edit, after the donor's last build: `next`'s files.
    for file in ["greet/src/lib.rs", "greet/src/many.rs"] {
        let text = git(&r.main, &["show", &format!("{}:{file}", r.next)]);
        fs::write(donor.join(file), text + "\n").unwrap();
    }
    let source = fs::read_to_string(donor.join("greet/src/lib.rs")).unwrap();
    assert!(source.contains("hi there"), "{source}");
    next_compiles(r, &donor, &["greet", "app"]);
    // Built there, the edit is what the units were compiled from.
    assert_compiled(&build(&donor), &["greet", "app"]);
    next_compiles(r, &donor, &[]);
}

/// `--from auto` and `list --local` in a clone of their own, with a record
/// of checkouts of their own: the other tests' worktrees are not theirs.
#[test]
fn auto_takes_the_checkout_that_gives_most_not_the_nearest_commit() {
    let r = repo();
    let record = r.root.join("auto-checkouts.json");
    let env = [
        ("RUSTC_WRAPPER", Some(BIN)),
        ("CARGO_SEED_CHECKOUTS", Some(record.to_str().unwrap())),
    ];
    let run = |dir: &Path, args: &[&str]| {
        let mut cmd = command("cargo", dir);
        ok(with_env(cmd.args(args), &env))
    };
    let worktree = |home: &Path, name: &str, commit: &str| {
        let dir = r.root.join("auto").join(name);
        add_worktree(home, &dir, commit);
        dir
    };
    // A clone at `base`, fully built (seeded from the main checkout).
    let home = r.root.join("auto/home");
    clone(&r.root, &r.root.join("origin"), &home);
    git(&home, &["checkout", "-q", "--detach", &r.base]);
    run(&home, &["seed", "--from", r.main.to_str().unwrap()]);
    assert_compiled(&cargo_build_env(&home, &env), &[]);
    // The nearest commit: a worktree at `next` whose build is stale, built
    // at `base`, then checked out at `next` with the build script's input
    // edited on top.
    let near = worktree(&home, "near", &r.base);
    run(&near, &["seed", "--from", home.to_str().unwrap()]);
    assert_compiled(&cargo_build_env(&near, &env), &[]);
    git(&near, &["checkout", "-q", "--detach", &r.next]);
    fs::write(near.join("gen/data/greeting.txt"), "edited\n").unwrap();

    let wt = worktree(&home, "wt", &r.next);
    let listed = text(
        &run(
            &wt,
            &["seed", "list", "--local", "--message-format", "json"],
        )
        .stdout,
    );
    let rows: Vec<serde_json::Value> = listed
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["event"] == "checkout")
        .collect();
    let row = |dir: &Path| {
        rows.iter()
            .find(|e| Path::new(e["root"].as_str().unwrap()) == fs::canonicalize(dir).unwrap())
            .unwrap_or_else(|| panic!("{} not listed: {listed}", dir.display()))
    };
    let (near_row, home_row) = (row(&near), row(&home));
    assert_eq!(near_row["distance"], 0, "{listed}");
    assert_eq!(home_row["distance"], 1, "{listed}");
    assert_eq!(event(&listed, "listed_local")["checkouts"], 2, "{listed}");
    let reused = |e: &serde_json::Value| e["reused"].as_u64().unwrap();
    assert!(reused(home_row) > reused(near_row), "{listed}");

    let said = text(&run(&wt, &["seed", "--from", "auto", "--message-format", "json"]).stdout);
    let resolved = event(&said, "resolved");
    let home_shown = fs::canonicalize(&home).unwrap().display().to_string();
    assert_eq!(
        resolved["store"],
        format!("checkout {home_shown}"),
        "{said}"
    );
    // `home` was itself seeded: it hands on the incremental state too, as
    // the seed gave it the wrapper's records of the units it restored.
    let seeded = event(&said, "seeded");
    assert!(seeded["incremental"].as_u64().unwrap() > 0, "{said}");
    // Copied, not fetched.
    assert!(seeded["copied_bytes"].as_u64().unwrap() > 0, "{said}");
    assert_eq!(seeded["fetched_bytes"], 0, "{said}");
    let b = cargo_build_env(&wt, &env);
    assert_compiled(&b, &["greet", "app"]);
    assert_eq!(run_app(&wt).lines().next().unwrap(), r.greeting(true, 3));
}
