//! The rebuild after seeding at another path and under another
//! `CARGO_HOME`, against the same rebuild in CI's own checkout (the goal:
//! at most 1.1x), when a path package's build script prints no
//! `rerun-if-changed`. Cargo reruns such a script whenever the package's
//! newest mtime differs, which in a fresh clone it always does; the seed
//! compares the package's files by content and gives cargo this checkout's
//! mtimes, so only what was edited rebuilds.
//!
//! The workspace is generated, with no registry dependency: `probe` (the
//! build script, unchanged), `DEPENDENTS` libraries of `MODULES` modules
//! that depend on it, a small library `leaf`, and a binary over all of them
//! (the crate edited after the snapshot). CI sets up the wrapper (`cargo
//! seed setup` in its own `CARGO_HOME`), builds and publishes. Each run
//! clones afresh under another path and `CARGO_HOME`, sets up the wrapper
//! there too, seeds, edits one function of the binary and times `cargo
//! build`; in place, CI's checkout gets the same edit. A third case adds a
//! file to `probe` first: the script reruns and everything above it
//! rebuilds, which is what every seed did before such scripts were judged
//! by content.
//!
//! `cargo bench --bench scripts`; `RUNS=n` (default 5) runs per case, the
//! median and the range are printed.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use common::{run, runs, show, Repo};

const DEPENDENTS: usize = 4;
const MODULES: usize = 80;

/// Times `cargo build -v` in `dir`, and returns which packages cargo
/// compiled (a build script's run shows as its package's `Compiling`).
fn build(dir: &Path, env: &[(&str, &Path)]) -> (f64, Vec<String>) {
    let log = dir.join("../build.log");
    let t = run(dir, &format!("cargo build -v 2>{}", log.display()), env);
    let text = fs::read_to_string(&log).unwrap();
    let compiled = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Compiling "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    (t, compiled)
}

fn package(name: &str, deps: &[&str]) -> String {
    let mut toml = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n"
    );
    for d in deps {
        let _ = writeln!(toml, "{d} = {{ path = \"../{d}\" }}");
    }
    toml
}

/// A library of `MODULES` modules, each using `probe`'s value.
fn library(tag: usize) -> String {
    let mut lib = String::new();
    for m in 0..MODULES {
        let _ = writeln!(lib, "pub mod m{m} {{");
        for f in 0..6 {
            let _ = writeln!(
                lib,
                "    pub fn f{f}(x: u64) -> u64 {{ let v: Vec<u64> = (0..x % 17).map(|i| i * {f} + {m} + {tag}).collect(); \
                 format!(\"{{:?}}{{}}\", v, probe::PROBE).len() as u64 + v.iter().sum::<u64>() }}"
            );
        }
        let _ = writeln!(lib, "}}");
    }
    let _ = writeln!(lib, "pub fn total() -> u64 {{ 0");
    for m in 0..MODULES {
        let _ = writeln!(lib, "    + m{m}::f0({m})");
    }
    let _ = writeln!(lib, "}}");
    lib
}

fn generate(root: &Path) {
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    let dependents: Vec<String> = (0..DEPENDENTS).map(|d| format!("dep{d}")).collect();
    let mut members: Vec<String> = vec!["probe".into(), "leaf".into(), "app".into()];
    members.extend(dependents.iter().cloned());
    let list: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    write(
        "Cargo.toml",
        &format!(
            "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
            list.join(", ")
        ),
    );
    write(".gitignore", "/target\n");
    // The build script prints no `rerun-if-*`: cargo fingerprints the
    // whole package by its newest mtime.
    write("probe/Cargo.toml", &package("probe", &[]));
    write(
        "probe/build.rs",
        "fn main() {\n    let n = std::fs::read_dir(\"data\").unwrap().count();\n    println!(\"cargo:rustc-env=PROBE={n}\");\n}\n",
    );
    for f in 0..20 {
        write(&format!("probe/data/f{f}.txt"), &format!("{f}\n"));
    }
    write(
        "probe/src/lib.rs",
        "pub const PROBE: &str = env!(\"PROBE\");\n",
    );
    for (i, d) in dependents.iter().enumerate() {
        write(&format!("{d}/Cargo.toml"), &package(d, &["probe"]));
        write(&format!("{d}/src/lib.rs"), &library(i));
    }
    write("leaf/Cargo.toml", &package("leaf", &[]));
    write(
        "leaf/src/lib.rs",
        "pub fn leaf(x: u64) -> u64 { (0..x % 17).map(|i| i * 3 + 1).sum() }\n",
    );
    let deps: Vec<&str> = dependents
        .iter()
        .map(String::as_str)
        .chain(["leaf", "probe"])
        .collect();
    write("app/Cargo.toml", &package("app", &deps));
    let mut main = String::from(
        "fn own(x: u64) -> u64 {\n    (0..x % 17).map(|i| i * 3 + 1).sum()\n}\n\nfn main() {\n    let mut n = leaf::leaf(40) + own(40);\n",
    );
    for d in &dependents {
        let _ = writeln!(main, "    n += {d}::total();");
    }
    main.push_str("    println!(\"{n} {}\", probe::PROBE);\n}\n");
    write("app/src/main.rs", &main);
}

/// One function body of the binary edited: a library edited under it
/// would measure how a binary over a changed dependency rebuilds, which is
/// another matter than the build script's.
const EDIT: &str =
    "sed -i 's/i \\* 3 + 1/i * 3 + 2/' app/src/main.rs && grep -q '3 + 2' app/src/main.rs";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = runs(5);
    let repo = Repo::generate("bench-scripts", generate);
    let root = &repo.root;
    let clone = |to: &Path| repo.clone_to(to);
    let home = |name: &str| repo.home(name);

    // CI: its own CARGO_HOME, set up once, a full build, a publish.
    let ci_home = home("ci-home");
    let ci = root.join("ci/work/ws");
    clone(&ci);
    let ci_env = [("CARGO_HOME", ci_home.as_path())];
    run(&ci, "cargo seed setup -q", &ci_env);
    let full = run(&ci, "cargo build -q", &ci_env);
    let store = root.join("store");
    run(
        &ci,
        &format!("cargo seed publish -q --store {}", store.display()),
        &ci_env,
    );
    println!(
        "full build of the workspace ({DEPENDENTS} libraries over a build script without rerun-if-changed): {full:.2}s; {runs} runs per case"
    );

    let mut n = 0;
    let mut compiled = Vec::new();
    let mut seeded = |compiled: &mut Vec<Vec<String>>, before: &str| {
        n += 1;
        let dev = root.join(format!("dev-{n}/somewhere/else/ws"));
        let dev_home = home(&format!("dev-{n}/cargo-home"));
        clone(&dev);
        let env = [("CARGO_HOME", dev_home.as_path())];
        run(&dev, before, &env);
        run(&dev, "cargo seed setup -q", &env);
        run(
            &dev,
            &format!("cargo seed -q --store {}", store.display()),
            &env,
        );
        run(&dev, EDIT, &env);
        let (t, which) = build(&dev, &env);
        compiled.push(which);
        let _ = fs::remove_dir_all(root.join(format!("dev-{n}")));
        t
    };
    let in_place = |compiled: &mut Vec<Vec<String>>| {
        run(&ci, EDIT, &ci_env);
        let (t, which) = build(&ci, &ci_env);
        compiled.push(which);
        run(&ci, "git checkout -q -- . && cargo build -q", &ci_env);
        t
    };
    println!("one-function edit in the binary, rebuilt:");
    let base = show(
        "in place",
        (0..runs).map(|_| in_place(&mut compiled)).collect(),
        None,
    );
    println!("    compiled: {:?}", compiled.last().unwrap());
    compiled.clear();
    show(
        "seeded elsewhere (another path and CARGO_HOME, the wrapper on both sides)",
        (0..runs).map(|_| seeded(&mut compiled, "true")).collect(),
        Some(base),
    );
    compiled.dedup();
    println!("    compiled: {compiled:?}");
    // What every seed cost before build scripts were judged by content:
    // the run was never restored, so it and all above it rebuilt. A file
    // the script does not read, added to its package, brings that back.
    compiled.clear();
    show(
        "seeded elsewhere, a file added to `probe` (the script reruns, as it always did before)",
        (0..runs)
            .map(|_| seeded(&mut compiled, "echo note > probe/notes.txt"))
            .collect(),
        Some(base),
    );
    compiled.dedup();
    println!("    compiled: {compiled:?}");
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = fs::remove_dir_all(root);
    }
}
