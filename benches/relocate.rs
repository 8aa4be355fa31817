//! Incremental rebuilds after seeding at another checkout path, against the
//! same rebuild in CI's own checkout (the goal: at most 1.2x), for a change
//! to a large library and for a change to the binary using it; and the
//! per-call cost of cargo-seed as `RUSTC_WRAPPER`.
//!
//! The workspace is generated: a library member of `MODULES` modules and a
//! binary with `BIN_FNS` functions of its own. CI sets up the wrapper
//! (`cargo seed setup` in its own `CARGO_HOME`), builds and publishes. Each
//! run clones afresh under another path and `CARGO_HOME`, seeds, edits one
//! function and times `cargo build`:
//! - in place: CI's checkout, the same edit;
//! - relocated with the setting: the developer ran `cargo seed setup`;
//! - relocated without it: the seed does not fetch the incremental state
//!   (rustc would not reuse it), so the changed crates compile without any,
//!   which is also the figure for "no incremental state".
//!
//! `cargo bench --bench relocate`; `RUNS=n` (default 5) runs per case, the
//! median and the range are printed.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::{run, runs, show, spread, Repo, BIN};

const MODULES: usize = 300;
const BIN_FNS: usize = 300;

fn generate(root: &Path) {
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"big\", \"app\"]\n",
    );
    write(
        "big/Cargo.toml",
        "[package]\nname = \"big\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        "app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nbig = { path = \"../big\" }\n",
    );
    let mut app = String::from("fn main() {\n    let mut n = big::total();\n");
    for f in 0..BIN_FNS {
        let _ = writeln!(app, "    n += b{f}(n % 7).len() as u64;");
    }
    app.push_str("    println!(\"{n}\");\n}\n");
    for f in 0..BIN_FNS {
        let _ = writeln!(
            app,
            "fn b{f}(x: u64) -> String {{ format!(\"{{:?}}\", (0..x % 11).map(|i| i * {f} + 3).collect::<Vec<u64>>()) }}"
        );
    }
    write("app/src/main.rs", &app);
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
    write("big/src/lib.rs", &lib);
    write(".gitignore", "/target\n");
}

/// One function body edited, in the library or in the binary.
const LIB_EDIT: &str = "sed -i 's/(0..x % 17).map(|i| i \\* 0 + 7)/(0..x % 19).map(|i| i * 0 + 7)/' big/src/lib.rs && grep -q 'x % 19' big/src/lib.rs";
const BIN_EDIT: &str =
    "sed -i 's/map(|i| i \\* 5 + 3)/map(|i| i * 5 + 4)/' app/src/main.rs && grep -q '5 + 4' app/src/main.rs";

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = runs(5);
    let repo = Repo::generate("bench-relocate", generate);
    let root = &repo.root;
    let clone = |to: &Path| repo.clone_to(to);
    let home = |name: &str| repo.home(name);

    // CI: its own CARGO_HOME, set up once, a full build, a publish.
    let ci_home = home("ci-home");
    let ci = root.join("ci/work/ws");
    clone(&ci);
    run(&ci, "cargo seed setup -q", &[("CARGO_HOME", &ci_home)]);
    let full = run(&ci, "cargo build -q", &[("CARGO_HOME", &ci_home)]);
    let store = root.join("store");
    run(
        &ci,
        &format!("cargo seed publish -q --store {}", store.display()),
        &[("CARGO_HOME", &ci_home)],
    );
    println!("full build of the workspace: {full:.2}s; {runs} runs per case");

    let mut n = 0;
    let mut seeded = |edit: &str, setup: bool| {
        n += 1;
        let dev = root.join(format!("dev-{n}/somewhere/else/ws"));
        let dev_home = home(&format!("dev-{n}/cargo-home"));
        clone(&dev);
        let env = [("CARGO_HOME", dev_home.as_path())];
        if setup {
            run(&dev, "cargo seed setup -q", &env);
        }
        run(
            &dev,
            &format!("cargo seed -q --store {}", store.display()),
            &env,
        );
        run(&dev, edit, &env);
        let t = run(&dev, "cargo build -q", &env);
        let _ = fs::remove_dir_all(root.join(format!("dev-{n}")));
        t
    };
    let in_place = |edit: &str| {
        let env = [("CARGO_HOME", ci_home.as_path())];
        run(&ci, edit, &env);
        let t = run(&ci, "cargo build -q", &env);
        run(&ci, "git checkout -q -- . && cargo build -q", &env);
        t
    };
    for (what, edit) in [("library", LIB_EDIT), ("binary", BIN_EDIT)] {
        println!("one-function edit in the {what}, rebuilt:");
        let base = show(
            "in place",
            (0..runs).map(|_| in_place(edit)).collect(),
            None,
        );
        show(
            "seeded elsewhere, with `cargo seed setup`",
            (0..runs).map(|_| seeded(edit, true)).collect(),
            Some(base),
        );
        show(
            "seeded elsewhere, without it (no incremental state)",
            (0..runs).map(|_| seeded(edit, false)).collect(),
            Some(base),
        );
    }

    // The wrapper on a call it passes through: `rustc -vV`, as cargo makes
    // it before every build.
    let calls = 100;
    let time = |cmd: &str| {
        run(
            root,
            &format!("for i in $(seq {calls}); do {cmd} -vV >/dev/null; done"),
            &[],
        ) / calls as f64
    };
    let rustc = String::from_utf8(
        Command::new("rustup")
            .args(["which", "rustc"])
            .output()
            .unwrap()
            .stdout,
    )
    .map(|s| s.trim().to_owned())
    .unwrap_or_else(|_| "rustc".into());
    let mut direct = Vec::new();
    let mut wrapped = Vec::new();
    for _ in 0..runs {
        direct.push(time(&rustc));
        wrapped.push(time(&format!("{BIN} {rustc}")));
    }
    let (d, dlo, dhi) = spread(direct);
    let (w, wlo, whi) = spread(wrapped);
    println!(
        "`rustc -vV`, {calls} calls, per call: direct {:.2} ms ({:.2}-{:.2}), through cargo-seed {:.2} ms ({:.2}-{:.2}): {:+.2} ms per call",
        d * 1e3,
        dlo * 1e3,
        dhi * 1e3,
        w * 1e3,
        wlo * 1e3,
        whi * 1e3,
        (w - d) * 1e3
    );
    if std::env::var_os("BENCH_KEEP").is_none() {
        let _ = fs::remove_dir_all(root);
    }
}
