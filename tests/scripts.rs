//! A path package whose build script prints no `rerun-if-changed`: cargo
//! reruns it when the newest mtime among the package's files changes, so a
//! fresh clone (every file stamped with the clone time) would rerun it and
//! rebuild everything above it. The seed restores it only when the
//! package's files are CI's by content, and rewrites its fingerprint for
//! this checkout's mtimes; any added, removed or changed file, tracked or
//! not, at the top or in a subdirectory, leaves it to cargo.
//!
//! One published world: the fixture with a package `stamp` whose build
//! script turns every file below `stamp/data` into an environment variable
//! the app prints; each test seeds its own clone.

mod common;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use common::*;

/// What the app prints of `stamp` as committed.
const STAMP: &str = "stamp: a.txt=alpha;sub/b.txt=beta\n";

fn add_stamp(origin: &Path) {
    let write = |rel: &str, text: &str| {
        let path = origin.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    write(
        "stamp/Cargo.toml",
        "[package]\nname = \"stamp\"\nversion.workspace = true\nedition.workspace = true\npublish.workspace = true\n",
    );
    // No `rerun-if-*` line: cargo decides by the package's newest mtime.
    write(
        "stamp/build.rs",
        r#"//! Every file below data/, with its contents, as STAMP.
use std::{fs, path::Path};

fn files(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            files(&entry.path(), &format!("{name}/"), out);
        } else {
            let text = fs::read_to_string(entry.path()).unwrap();
            out.push(format!("{name}={}", text.trim()));
        }
    }
}

fn main() {
    let mut out = Vec::new();
    files(Path::new("data"), "", &mut out);
    out.sort();
    println!("cargo:rustc-env=STAMP={}", out.join(";"));
}
"#,
    );
    write(
        "stamp/src/lib.rs",
        "pub const STAMP: &str = env!(\"STAMP\");\n",
    );
    write("stamp/data/a.txt", "alpha\n");
    write("stamp/data/sub/b.txt", "beta\n");
    let edit = |rel: &str, from: &str, to: &str| {
        let path = origin.join(rel);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{rel}");
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit("Cargo.toml", "\"shout\"]", "\"shout\", \"stamp\"]");
    edit(
        "app/Cargo.toml",
        "shout = { path = \"../shout\" }",
        "shout = { path = \"../shout\" }\nstamp = { path = \"../stamp\" }",
    );
    edit(
        "app/src/main.rs",
        "    println!(\"count:",
        "    println!(\"stamp: {}\", stamp::STAMP);\n    println!(\"count:",
    );
    // Cargo writes the lock file for the new member; no registry is asked.
    ok(command("cargo", origin).args(["metadata", "--format-version", "1", "--offline"]));
}

fn world() -> &'static OneCommit {
    static WORLD: OnceLock<OneCommit> = OnceLock::new();
    WORLD.get_or_init(|| OneCommit::create("scripts", add_stamp, &[]))
}

/// Seeds `dir` from the world's store and returns what the seed said.
fn seeded(dir: &Path) -> String {
    let out = seed(dir, &["--store", world().store_arg()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stderr)
}

/// The app's line about `stamp`.
fn stamp_line(dir: &Path) -> String {
    let said = run_app(dir);
    said.lines()
        .find(|l| l.starts_with("stamp: "))
        .map(|l| format!("{l}\n"))
        .unwrap_or(said)
}

#[test]
fn publish_records_the_package_s_files() {
    let w = world();
    let manifest = World::manifest(&w.store, &w.commit);
    let run = manifest["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "run-build-script stamp")
        .expect("stamp's build-script run is published");
    let files: Vec<&str> = run["check"]["package-files"]["files"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", run["check"]))
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "Cargo.toml",
            "build.rs",
            "data/a.txt",
            "data/sub/b.txt",
            "src/lib.rs"
        ]
    );
    assert_eq!(run["check"]["package-files"]["package_root"], "stamp");
}

#[test]
fn unchanged_the_run_and_its_dependents_are_fresh_at_another_path() {
    let dir = world().clone_dev();
    let said = seeded(&dir);
    assert!(!said.contains("run-build-script stamp:"), "{said}");
    let build = cargo_build(&dir);
    assert!(build.compiled.is_empty(), "{}", build.stderr);
    assert_eq!(build.ran_build_scripts, 0, "{}", build.stderr);
    assert!(
        build.fresh.contains(&"stamp".to_owned()),
        "{}",
        build.stderr
    );
    assert_eq!(stamp_line(&dir), STAMP);
}

/// After `change` in a fresh clone, the seed leaves stamp's run to cargo
/// naming `file`, and cargo reruns it: the app prints `prints`.
fn reruns_after(change: impl FnOnce(&Path), file: &str, prints: &str) {
    let dir = world().clone_dev();
    change(&dir.join("stamp"));
    let said = seeded(&dir);
    let build = cargo_build(&dir);
    assert!(
        build.ran_build_scripts >= 1,
        "stamp's build script did not run:\n{}",
        build.stderr
    );
    assert!(
        build.compiled.contains(&"stamp".to_owned()) && build.compiled.contains(&"app".to_owned()),
        "{}",
        build.stderr
    );
    assert_eq!(stamp_line(&dir), prints);
    assert!(
        said.contains(&format!("run-build-script stamp: {file}")),
        "{said}"
    );
}

#[test]
fn an_untracked_file_added_in_a_subdirectory_reruns_it() {
    reruns_after(
        |pkg| fs::write(pkg.join("data/sub/c.txt"), "gamma\n").unwrap(),
        "data/sub/c.txt was added",
        "stamp: a.txt=alpha;sub/b.txt=beta;sub/c.txt=gamma\n",
    );
}

#[test]
fn a_removed_file_reruns_it() {
    reruns_after(
        |pkg| fs::remove_file(pkg.join("data/sub/b.txt")).unwrap(),
        "data/sub/b.txt was removed",
        "stamp: a.txt=alpha\n",
    );
}

#[test]
fn a_changed_file_reruns_it() {
    reruns_after(
        |pkg| fs::write(pkg.join("data/a.txt"), "ALPHA\n").unwrap(),
        "data/a.txt changed",
        "stamp: a.txt=ALPHA;sub/b.txt=beta\n",
    );
}

/// In CI's own checkout nothing moved, but a touched file gives cargo
/// another newest mtime: the restored fingerprint carries this one.
#[test]
fn in_place_a_touched_file_alone_reruns_nothing() {
    let w = world();
    let dir = w.root.join("in-place");
    clone(&w.root, &w.origin, &dir);
    // The same path as CI's: the seed maps no directory.
    let ci = w.ci.clone();
    fs::rename(&ci, w.root.join("ci-built")).unwrap();
    fs::rename(&dir, &ci).unwrap();
    let text = fs::read(ci.join("stamp/data/a.txt")).unwrap();
    fs::write(ci.join("stamp/data/a.txt"), text).unwrap();
    let said = seeded(&ci);
    assert!(!said.contains("run-build-script stamp:"), "{said}");
    let build = cargo_build(&ci);
    assert!(build.compiled.is_empty(), "{}", build.stderr);
    assert_eq!(build.ran_build_scripts, 0, "{}", build.stderr);
    assert_eq!(stamp_line(&ci), STAMP);
}

/// A second seed over the first keeps its units, and still gives the run
/// the string of the mtimes now: a file touched in between (same content)
/// reruns nothing.
#[test]
fn a_kept_run_gets_the_mtimes_of_the_second_seed() {
    let dir = world().clone_dev();
    seeded(&dir);
    let path = dir.join("stamp/data/sub/b.txt");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, bytes).unwrap();
    let out = seed(&dir, &["--store", world().store_arg(), "--force", "-v"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let build = cargo_build(&dir);
    assert!(build.compiled.is_empty(), "{}", build.stderr);
    assert_eq!(build.ran_build_scripts, 0, "{}", build.stderr);
    assert_eq!(stamp_line(&dir), STAMP);
}
