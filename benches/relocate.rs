//! Incremental rebuild after seeding at other paths, against the in-place
//! incremental rebuild of the same change (issue: at most 1.2x; without
//! relocated incremental state it is several times slower).
//!
//! The workspace is generated: a large library member (hundreds of modules)
//! and a binary using it. CI builds it with `RUSTC_WRAPPER=cargo-seed` and
//! publishes; a developer clones it under another path, seeds, edits one
//! function and rebuilds. `cargo bench --bench relocate`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_cargo-seed");
const MODULES: usize = 300;

fn run(dir: &Path, cmd: &str, env: &[(&str, &str)]) -> f64 {
    let start = Instant::now();
    let mut c = Command::new("bash");
    c.args(["-ec", cmd])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR");
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

fn generate(root: &Path) {
    let big = root.join("big/src");
    fs::create_dir_all(&big).unwrap();
    fs::create_dir_all(root.join("app/src")).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"big\", \"app\"]\n",
    )
    .unwrap();
    fs::write(
        root.join("big/Cargo.toml"),
        "[package]\nname = \"big\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(
        root.join("app/Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nbig = { path = \"../big\" }\n",
    )
    .unwrap();
    fs::write(
        root.join("app/src/main.rs"),
        "fn main() { println!(\"{}\", big::total()); }\n",
    )
    .unwrap();
    let mut lib = String::new();
    for m in 0..MODULES {
        let _ = writeln!(lib, "pub mod m{m} {{");
        let _ = writeln!(
            lib,
            "    #[derive(Debug, Clone, PartialEq, Default)]\n    pub struct S{m} {{ pub a: Vec<u64>, pub b: String, pub c: Option<Box<S{m}>> }}"
        );
        for f in 0..8 {
            let _ = writeln!(
                lib,
                "    pub fn f{f}(x: u64) -> u64 {{ let v: Vec<u64> = (0..x % 17).map(|i| i * {f} + {m}).collect(); \
                 let s = S{m} {{ a: v.clone(), b: format!(\"{{:?}}\", v), c: None }}; s.a.iter().sum::<u64>() + s.b.len() as u64 }}"
            );
        }
        let _ = writeln!(lib, "}}");
    }
    let _ = writeln!(lib, "pub fn total() -> u64 {{ 0");
    for m in 0..MODULES {
        let _ = writeln!(lib, "    + m{m}::f0({m})");
    }
    let _ = writeln!(lib, "}}");
    fs::write(big.join("lib.rs"), lib).unwrap();
    fs::write(root.join(".gitignore"), "/target\n").unwrap();
}

/// The same small edit everywhere: one function of one module.
const EDIT: &str = "sed -i 's/let v: Vec<u64> = (0..x % 17).map(|i| i \\* 0 + 7)/let v: Vec<u64> = (0..x % 19).map(|i| i * 0 + 7)/' big/src/lib.rs && grep -q 'x % 19' big/src/lib.rs";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-relocate");
    let _ = fs::remove_dir_all(&root);
    let origin = root.join("origin");
    generate(&origin);
    run(
        &origin,
        "git init -q && git add -A && git -c user.name=b -c user.email=b@b commit -qm gen",
        &[],
    );
    let git = |dir: &Path, to: &Path| {
        run(
            dir,
            &format!("git clone -q {} {}", origin.display(), to.display()),
            &[],
        )
    };

    // CI: a full build through the recording wrapper, then publish twice:
    // with the recorded command lines, and without (as a plain CI build).
    let ci = root.join("ci/work/ws");
    git(&root, &ci);
    let full = run(&ci, "cargo build -q", &[("RUSTC_WRAPPER", BIN)]);
    let with = root.join("store-with");
    let without = root.join("store-without");
    run(
        &ci,
        &format!("cargo seed publish -q --store {}", with.display()),
        &[],
    );
    run(&ci, &format!("mv target/debug/.cargo-seed-rustc ../rec && cargo seed publish -q --store {} && mv ../rec target/debug/.cargo-seed-rustc", without.display()), &[]);

    // The developer's rebuilds, at another path, after seeding.
    let seeded = |store: &Path, name: &str| {
        let dev = root.join(format!("{name}/elsewhere/ws"));
        git(&root, &dev);
        run(
            &dev,
            &format!("cargo seed --store {}", store.display()),
            &[],
        );
        run(&dev, EDIT, &[]);
        run(&dev, "cargo build -q", &[])
    };
    let relocated = seeded(&with, "dev-relocated");
    let ignored = seeded(&without, "dev-ignored");

    // In place: CI's own checkout, same edit.
    run(&ci, EDIT, &[]);
    let in_place = run(&ci, "cargo build -q", &[]);

    println!("full build of the workspace: {full:.2}s");
    println!(
        "rebuild after one edit: in place {in_place:.2}s; seeded elsewhere with relocated incremental state {relocated:.2}s ({:.2}x); seeded without it {ignored:.2}s ({:.2}x)",
        relocated / in_place,
        ignored / in_place
    );
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = fs::remove_dir_all(&root);
    }
}
