//! rustc's incremental state reused at another checkout path: CI and the
//! developer both compile through cargo-seed's wrapper (`cargo seed setup`),
//! under other paths and other `CARGO_HOME`s.
//!
//! The repository is a monorepo: the workspace lives in `ws/`, and a path
//! dependency `ext/` of its member `tool` lies outside it, beside it.
//! `ws/big` is a library large enough to have many codegen units; `ws/app`
//! is the binary using it. A codegen unit
//! counts as reused when its object file in rustc's new session is a hard
//! link of one in the restored session (rustc links what it reuses).

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use common::*;

const MODULES: usize = 120;
/// What CI's build reads with `option_env!`.
const GREETING: &str = "SEED_GREETING";

struct Mono {
    root: PathBuf,
    origin: PathBuf,
    store: PathBuf,
    /// The commit CI published.
    base: String,
    /// One function of `big` and the text `app` prints changed.
    next: String,
    /// Only the text `app` prints changed (a branch off `base`).
    app_changed: String,
    counter: AtomicUsize,
}

fn generate(repo: &Path) {
    let write = |rel: &str, text: &str| {
        let path = repo.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(".gitignore", "target/\n");
    write(
        "ws/Cargo.toml",
        "[workspace]\nresolver = \"2\"\nmembers = [\"base\", \"big\", \"app\", \"tool\"]\n",
    );
    // `app` links `base` only through `big`: rustc finds it in a
    // `-L dependency=` directory, not through an `--extern`.
    write(
        "ws/big/Cargo.toml",
        "[package]\nname = \"big\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\
         base = { path = \"../base\" }\n",
    );
    write(
        "ws/base/Cargo.toml",
        "[package]\nname = \"base\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write("ws/base/src/lib.rs", "pub fn one() -> u64 {\n    1\n}\n");
    write(
        "ext/Cargo.toml",
        "[package]\nname = \"ext\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(
        "ext/src/lib.rs",
        "pub fn name() -> &'static str {\n    \"ext\"\n}\n",
    );
    write(
        "ws/app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\
         big = { path = \"../big\" }\n",
    );
    write(
        "ws/tool/Cargo.toml",
        "[package]\nname = \"tool\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\
         ext = { path = \"../../ext\" }\n",
    );
    write(
        "ws/tool/src/main.rs",
        "fn main() {\n    println!(\"tool uses {}\", ext::name());\n}\n",
    );
    let mut app = String::from(
        "fn main() {\n    if std::env::args().nth(1).as_deref() == Some(\"panic\") {\n        \
         panic!(\"asked to\");\n    }\n    println!(\"total {}\", big::total());\n    \
         println!(\"greeting: {}\", option_env!(\"SEED_GREETING\").unwrap_or(\"unset\"));\n    \
         println!(\"parts: {}\", all::parts());\n}\n",
    );
    // A module per function: rustc gives each module its own codegen unit,
    // so that an edit to `main` leaves most of them as they were.
    for m in 0..40 {
        let _ = writeln!(
            app,
            "pub mod a{m} {{ pub fn f(x: u64) -> String {{ format!(\"{{:?}}\", (0..x).map(|i| i * {m}).collect::<Vec<_>>()) }} }}"
        );
    }
    let parts: String = (0..40)
        .map(|m| format!(" + crate::a{m}::f(3).len()"))
        .collect();
    let _ = writeln!(
        app,
        "pub mod all {{ pub fn parts() -> usize {{ 0{parts} }} }}"
    );
    write("ws/app/src/main.rs", &app);
    let mut lib = String::new();
    for m in 0..MODULES {
        let _ = writeln!(
            lib,
            "pub mod m{m} {{\n    #[derive(Debug, Clone, PartialEq, Default)]\n    \
             pub struct S{m} {{ pub a: Vec<u64>, pub b: String }}"
        );
        for f in 0..8 {
            let _ = writeln!(
                lib,
                "    pub fn f{f}(x: u64) -> u64 {{ let v: Vec<u64> = (0..x % 17).map(|i| i * {f} + {m}).collect(); \
                 let s = S{m} {{ a: v.clone(), b: format!(\"{{:?}}\", v) }}; s.a.iter().sum::<u64>() + s.b.len() as u64 }}"
            );
        }
        let _ = writeln!(lib, "}}");
    }
    let sum: String = (0..MODULES).map(|m| format!(" + m{m}::f0({m})")).collect();
    let _ = writeln!(lib, "pub fn total() -> u64 {{ base::one(){sum} }}");
    write("ws/big/src/lib.rs", &lib);
}

fn world() -> &'static Mono {
    static WORLD: OnceLock<Mono> = OnceLock::new();
    WORLD.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("incremental-tests-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let origin = root.join("origin");
        generate(&origin);
        ok(command("cargo", &origin.join("ws")).args(["generate-lockfile", "--offline"]));
        git(&origin, &["init", "-q", "-b", "main"]);
        git(&origin, &["add", "-A"]);
        git(&origin, &["commit", "-qm", "base"]);
        let base = git(&origin, &["rev-parse", "HEAD"]);
        edit(
            &origin.join("ws/big/src/lib.rs"),
            "pub fn f0(x: u64) -> u64 { let v: Vec<u64> = (0..x % 17).map(|i| i * 0 + 7)",
            "pub fn f0(x: u64) -> u64 { let v: Vec<u64> = (0..x % 17).map(|i| i * 2 + 7)",
        );
        edit(&origin.join("ws/app/src/main.rs"), "total {}", "sum {}");
        git(&origin, &["commit", "-qam", "big and app change"]);
        let next = git(&origin, &["rev-parse", "HEAD"]);
        git(&origin, &["checkout", "-q", "-b", "app-only", &base]);
        edit(&origin.join("ws/app/src/main.rs"), "total {}", "sum {}");
        git(&origin, &["commit", "-qam", "app changes"]);
        let app_changed = git(&origin, &["rev-parse", "HEAD"]);
        git(&origin, &["checkout", "-q", "main"]);

        // CI: its own path and CARGO_HOME, set up once, then build and
        // publish the base commit.
        let store = root.join("store");
        let ci = root.join("ci/work/repo");
        fs::create_dir_all(ci.parent().unwrap()).unwrap();
        clone(&root, &origin, &ci);
        git(&ci, &["checkout", "-q", "--detach", &base]);
        let ci_env = [
            (
                "CARGO_HOME",
                root.join("ci-home").to_str().unwrap().to_owned(),
            ),
            (GREETING, "from-ci".to_owned()),
        ];
        let ci_cargo = |args: &[&str]| {
            let mut cmd = command("cargo", &ci.join("ws"));
            cmd.envs(ci_env.iter().map(|(k, v)| (k, v))).args(args);
            ok(&mut cmd)
        };
        ci_cargo(&["seed", "setup"]);
        ci_cargo(&["build", "--locked"]);
        let published =
            text(&ci_cargo(&["seed", "publish", "--store", store.to_str().unwrap()]).stderr);
        assert!(
            published.contains("5 of 5 path units compiled through cargo-seed's rustc wrapper"),
            "{published}"
        );
        Mono {
            root,
            origin,
            store,
            base,
            next,
            app_changed,
            counter: AtomicUsize::new(0),
        }
    })
}

/// A developer's clone: its repository, workspace and environment.
struct Dev {
    repo: PathBuf,
    env: Vec<(&'static str, Option<String>)>,
}

impl Dev {
    /// A clone at `commit` under a new, longer path, with its own
    /// `CARGO_HOME`; `setup` runs `cargo seed setup` there.
    fn new(w: &Mono, commit: &str, setup: bool) -> Dev {
        let n = w.counter.fetch_add(1, Ordering::Relaxed);
        let repo = w.root.join(format!("dev-{n}/somewhere/else/repo"));
        fs::create_dir_all(repo.parent().unwrap()).unwrap();
        clone(&w.root, &w.origin, &repo);
        git(&repo, &["checkout", "-q", "--detach", commit]);
        let home = w.root.join(format!("dev-{n}/cargo-home"));
        fs::create_dir_all(&home).unwrap();
        let dev = Dev {
            repo,
            env: vec![
                ("CARGO_HOME", Some(home.to_str().unwrap().to_owned())),
                (GREETING, Some("from-ci".to_owned())),
            ],
        };
        if setup {
            let said = dev.cargo(&["seed", "setup"]);
            assert!(said.contains("Set up"), "{said}");
        }
        dev
    }

    fn ws(&self) -> PathBuf {
        self.repo.join("ws")
    }

    fn env(&self) -> Vec<(&str, Option<&str>)> {
        self.env.iter().map(|(k, v)| (*k, v.as_deref())).collect()
    }

    /// Runs cargo in the workspace; returns what it said on stderr.
    fn cargo(&self, args: &[&str]) -> String {
        let mut cmd = command("cargo", &self.ws());
        text(&ok(with_env(cmd.args(args), &self.env())).stderr)
    }

    fn seed(&self, w: &Mono) -> String {
        self.cargo(&[
            "seed",
            "--store",
            w.store.to_str().unwrap(),
            "--commit",
            &w.base,
        ])
    }

    fn build(&self) -> BuildReport {
        cargo_build_env(&self.ws(), &self.env())
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        command(self.ws().join("target/debug/app"), &self.ws())
            .args(args)
            .output()
            .unwrap()
    }
}

#[test]
fn with_the_setting_the_changed_members_compile_and_reuse_codegen_units() {
    let w = world();
    let dev = Dev::new(w, &w.next, true);
    let said = dev.seed(w);
    assert!(
        said.contains("incremental state relocated for 5 of 5 crates"),
        "{said}"
    );
    let (big, app) = (objects(&dev.ws(), "big"), objects(&dev.ws(), "app"));
    assert!(!big.is_empty() && !app.is_empty(), "{said}");
    let before = [sessions(&dev.ws(), "big"), sessions(&dev.ws(), "app")].concat();
    // The stand-in for `big` is gone once the seed is: no library of it is
    // in the build dir before cargo compiles one.
    let libs = files_named(&dev.ws().join("target"), "libbig-");
    assert!(libs.is_empty(), "{libs:?}");

    // The changed members, and the path package outside the workspace with
    // its dependent (see the test below).
    let build = dev.build();
    assert_compiled(&build, &["app", "big", "ext", "tool"]);
    let out = text(&dev.run(&[]).stdout);
    assert!(out.starts_with("sum "), "{out}");
    assert!(out.contains("greeting: from-ci"), "{out}");

    let (linked, of) = reused(&dev.ws(), "big", &before, &big);
    assert!(
        linked * 10 >= of * 9,
        "big reused {linked} of {of} codegen units"
    );
    // Every codegen unit of a binary reads its dependencies' paths, and
    // `big`'s rlib is not here before the build (cargo rebuilds it): the
    // replay computed its path with a stand-in where the build writes it,
    // so app's codegen units are reused but for the changed `main`, and
    // the program prints what the changed `big` computes.
    assert!(
        said.contains("with the paths of 2 libraries cargo rebuilds"),
        "{said}"
    );
    let (linked, of) = reused(&dev.ws(), "app", &before, &app);
    eprintln!("app reused {linked} of {of} codegen units over a changed library");
    assert!(
        linked * 10 >= of * 9,
        "app reused {linked} of {of} codegen units"
    );
    assert_eq!(out.lines().next(), Some(expected_sum().as_str()), "{out}");
}

/// The files below `dir` whose names start with `prefix`.
fn files_named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if e.file_name().to_string_lossy().starts_with(prefix) {
                found.push(path);
            }
        }
    }
    found
}

/// What `app` prints first at the commit where `big::m7::f0` changed: the
/// sum `big::total` computes, worked out here from the changed source.
fn expected_sum() -> String {
    let f0 = |m: u64| -> u64 {
        let k = if m == 7 { 2 } else { 0 };
        let v: Vec<u64> = (0..m % 17).map(|i| i * k + m).collect();
        v.iter().sum::<u64>() + format!("{v:?}").len() as u64
    };
    let total: u64 = 1 + (0..MODULES as u64).map(f0).sum::<u64>();
    format!("sum {total}")
}

#[test]
fn a_binary_change_reuses_the_binarys_codegen_units() {
    let w = world();
    let dev = Dev::new(w, &w.app_changed, true);
    let said = dev.seed(w);
    assert!(said.contains("2 units reused, 3 to rebuild"), "{said}");
    let app = objects(&dev.ws(), "app");
    let before = sessions(&dev.ws(), "app");

    let build = dev.build();
    assert_compiled(&build, &["app", "ext", "tool"]);
    let out = text(&dev.run(&[]).stdout);
    assert!(out.starts_with("sum "), "{out}");
    // The dependencies' paths were rewritten for this checkout: only the
    // codegen units of the changed function are compiled again.
    assert!(said.contains("dependency paths rewritten in"), "{said}");
    let (linked, of) = reused(&dev.ws(), "app", &before, &app);
    eprintln!("app reused {linked} of {of} codegen units");
    assert!(
        linked * 10 >= of * 9,
        "app reused {linked} of {of} codegen units"
    );
}

#[test]
fn without_the_setting_the_same_members_compile_and_the_summary_says_why() {
    let w = world();
    let dev = Dev::new(w, &w.next, false);
    let said = dev.seed(w);
    assert!(
        said.contains("does not use it, so rustc would not reuse its incremental state, which is not fetched: run `cargo seed setup`"),
        "{said}"
    );
    assert!(said.contains("0 incremental dirs"), "{said}");
    assert!(objects(&dev.ws(), "big").is_empty());

    let build = dev.build();
    assert_compiled(&build, &["app", "big", "ext", "tool"]);
    let out = text(&dev.run(&[]).stdout);
    assert!(out.starts_with("sum "), "{out}");
}

#[test]
fn a_value_read_with_option_env_that_differs_here_is_recompiled() {
    let w = world();
    let mut dev = Dev::new(w, &w.base, true);
    dev.env[1].1 = Some("from-dev".to_owned());
    let said = dev.seed(w);
    assert!(said.contains("relocated for 5 of 5 crates"), "{said}");

    let build = dev.build();
    assert_compiled(&build, &["app", "ext", "tool"]);
    assert!(
        build.stderr.contains("Dirty app") && build.stderr.contains(GREETING),
        "{}",
        build.stderr
    );
    let out = text(&dev.run(&[]).stdout);
    assert!(out.contains("greeting: from-dev"), "{out}");
}

/// Cargo hashes the absolute directory of a path package outside the
/// workspace into its unit hash, so at another path it is another unit
/// (`fingerprint error` in cargo's log): the seed says so, and its count
/// matches what cargo then compiles.
#[test]
fn a_path_dependency_outside_the_workspace_is_rebuilt_as_the_summary_says() {
    let w = world();
    let dev = Dev::new(w, &w.base, true);
    let said = dev.seed(w);
    assert!(said.contains("3 units reused, 2 to rebuild"), "{said}");
    assert!(
        said.contains("lib ext: it is a path package outside the workspace, and cargo hashes its absolute directory"),
        "{said}"
    );
    let build = dev.build();
    assert_compiled(&build, &["ext", "tool"]);
    assert_eq!(
        build.fresh,
        sorted(&["app", "base", "big"]),
        "{}",
        build.stderr
    );
    let tool = ok(&mut command(dev.ws().join("target/debug/tool"), &dev.ws()));
    assert_eq!(text(&tool.stdout), "tool uses ext\n");
}

#[test]
fn panics_and_debuggers_name_this_checkouts_files() {
    let w = world();
    let dev = Dev::new(w, &w.base, true);
    dev.seed(w);
    // The binary is CI's, built at CI's path.
    let build = dev.build();
    assert!(
        !build.compiled.contains(&"app".to_owned()),
        "{}",
        build.stderr
    );
    let panicked = dev.run(&["panic"]);
    let said = text(&panicked.stderr);
    assert!(said.contains("panicked at app/src/main.rs:3:"), "{said}");

    // gdb, started elsewhere, finds the source through the map cargo-seed
    // wrote.
    let gdb_version = std::process::Command::new("gdb").arg("--version").output();
    assert!(
        gdb_version.is_ok_and(|o| o.status.success()),
        "gdb is missing: .ci/deps installs it"
    );
    let script = dev.ws().join("target/debug/cargo-seed-paths.gdb");
    let out = ok(command("gdb", &w.root)
        .args(["-batch", "-x"])
        .arg(&script)
        .args(["-ex", "break app::main", "-ex", "run", "-ex", "info source"])
        .arg(dev.ws().join("target/debug/app")));
    let said = text(&out.stdout);
    let expected = format!("Located in {}", dev.ws().join("app/src/main.rs").display());
    assert!(said.contains(&expected), "{said}");

    // So does lldb with its script: the source lines it lists are only
    // found through the map (debug info names `app/src/main.rs`, relative
    // to the repository, and lldb runs elsewhere).
    let script = dev.ws().join("target/debug/cargo-seed-paths.lldb");
    let list = |with_script: bool| {
        let mut cmd = command("lldb", &w.root);
        cmd.arg("--batch");
        if with_script {
            cmd.arg("-s").arg(&script);
        }
        cmd.args(["-o", "source list -n app::main"])
            .arg(dev.ws().join("target/debug/app"));
        // lldb exits 1 when it cannot find the file: the output says it.
        text(&cmd.output().unwrap().stdout)
    };
    let listed = list(true);
    assert!(listed.contains("panic!(\"asked to\")"), "{listed}");
    assert!(
        !list(false).contains("panic!(\"asked to\")"),
        "found without the map"
    );
}
