//! The builds `tests/depgraph.rs` checks calibration against: two tiny
//! crates compiled by rustc directly, with `-Z incremental-info`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const DEP: &str = r#"
pub fn hello() -> &'static str { "hi" }
pub fn show<T: std::fmt::Display>(t: T) -> String { format!("<{t}>") }
#[inline]
pub fn twice(x: u32) -> u32 { x * 2 }
"#;

const APP: &str = r#"
mod a { pub fn f() -> String { dep::show(1u8) } }
mod b { pub fn g() -> u32 { dep::twice(3) } }
fn main() { println!("{} {} {}", dep::hello(), a::f(), b::g()); }
"#;

/// One session rustc wrote, and what it printed about it.
pub struct Session {
    pub graph: PathBuf,
    /// Node count per kind name, from `-Z incremental-info`.
    pub counts: BTreeMap<String, u64>,
    pub total: u64,
}

pub struct World {
    pub root: PathBuf,
    /// The library.
    pub dep: Session,
    /// The binary, against `out/libdep.rlib`.
    pub app: Session,
    /// The same, against a copy of the rlib in `moved/`.
    pub moved: Session,
    /// The same as `app`, with `--out-dir out-elsewhere`.
    pub elsewhere: Session,
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::create)
}

impl World {
    fn create() -> World {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("depgraph-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("moved")).unwrap();
        fs::write(root.join("dep.rs"), DEP).unwrap();
        fs::write(root.join("app.rs"), APP).unwrap();

        let dep = compile(
            &root,
            "dep",
            &["--crate-type=lib", "dep.rs", "--out-dir=out"],
        );
        fs::copy(root.join("out/libdep.rlib"), root.join("moved/libdep.rlib")).unwrap();
        let app = compile(&root, "app", &app_args("app.rs", "out", "out"));
        let moved = compile(&root, "moved", &app_args("app.rs", "out", "moved"));
        let elsewhere = compile(
            &root,
            "elsewhere",
            &app_args("app.rs", "out-elsewhere", "out"),
        );
        World {
            root,
            dep,
            app,
            moved,
            elsewhere,
        }
    }

    pub fn sessions(&self) -> [(&str, &Session); 4] {
        [
            ("dep", &self.dep),
            ("app", &self.app),
            ("moved", &self.moved),
            ("elsewhere", &self.elsewhere),
        ]
    }
}

/// The binary's command line: `src` compiled as crate `app`.
pub fn app_args(src: &str, out_dir: &str, rlib_dir: &str) -> Vec<String> {
    vec![
        "--crate-type=bin".into(),
        "--crate-name=app".into(),
        src.into(),
        format!("--out-dir={out_dir}"),
        format!("--extern=dep={rlib_dir}/libdep.rlib"),
    ]
}

pub fn rustc_program() -> String {
    std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())
}

/// Runs rustc in `root` with the options every build shares and
/// `-C incremental=inc/<inc>`; returns the session it wrote.
pub fn compile(root: &Path, inc: &str, args: &[impl AsRef<str>]) -> Session {
    let mut cmd = Command::new(rustc_program());
    cmd.current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["--edition=2021", "-Cdebuginfo=2", "-Zincremental-info"])
        .arg(format!("-Cincremental=inc/{inc}"))
        .args(args.iter().map(AsRef::as_ref));
    let out = cmd.output().expect("run rustc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{stderr}");
    let (counts, total) = incremental_info(&stderr);
    Session {
        graph: newest_graph(&root.join("inc").join(inc)),
        counts,
        total,
    }
}

/// The `dep-graph.bin` of the newest session in an incremental directory
/// that holds one crate.
pub fn newest_graph(inc: &Path) -> PathBuf {
    let crates: Vec<PathBuf> = fs::read_dir(inc)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    let [crate_dir] = crates.as_slice() else {
        panic!("{} holds {crates:?}, not one crate", inc.display());
    };
    let sessions = cargo_seed::rustc::incremental::sessions(crate_dir);
    sessions.last().expect("a finished session").clone()
}

/// The per-kind node counts and the total that `-Z incremental-info` prints:
/// `[incremental]  used_crate_source   |   0.9% |   20 |   0.0 |`.
fn incremental_info(stderr: &str) -> (BTreeMap<String, u64>, u64) {
    let mut counts = BTreeMap::new();
    let mut total = None;
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("[incremental]") else {
            continue;
        };
        if let Some(n) = rest.trim().strip_prefix("Total Node Count:") {
            total = n.trim().parse().ok();
        }
        let fields: Vec<&str> = rest.split('|').map(str::trim).collect();
        if let [name, _, count, ..] = fields.as_slice() {
            if let Ok(count) = count.parse() {
                counts.insert(name.to_string(), count);
            }
        }
    }
    assert!(
        !counts.is_empty(),
        "rustc printed no node counts:\n{stderr}"
    );
    (counts, total.expect("rustc printed no total node count"))
}

/// Inodes of the object files of the newest session in `inc`.
#[cfg(unix)]
pub fn objects(inc: &Path) -> BTreeSet<u64> {
    use std::os::unix::fs::MetadataExt;
    let session = newest_graph(inc);
    fs::read_dir(session.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "o"))
        .map(|p| fs::metadata(p).unwrap().ino())
        .collect()
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}
