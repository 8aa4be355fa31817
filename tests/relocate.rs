//! Seeding under another CARGO_HOME and workspace path than CI's: registry
//! units must be reused through rewritten fingerprints, and a fingerprint
//! cargo-seed cannot reproduce must be rebuilt, never trusted.

mod common;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use common::*;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::create_in("relocate-tests", Some("ci-cargo-home")))
}

fn seeded(out: &std::process::Output) -> String {
    let said = text(&out.stderr);
    assert!(out.status.success(), "cargo seed failed:\n{said}");
    said
}

#[test]
fn same_commit_under_another_cargo_home_compiles_nothing() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    let said = seeded(&seed(&dir, &["--store", w.store_arg()]));
    assert!(said.contains("CARGO_HOME differs"), "{said}");
    assert!(said.contains("0 units cannot be"), "{said}");

    let build = cargo_build(&dir);
    assert!(build.compiled.is_empty(), "{}", build.stderr);
    assert_eq!(
        build.fresh,
        sorted(&["app", "gen", "greet", "itoa", "memchr", "shout"]),
        "{}",
        build.stderr
    );
    assert!(run_app(&dir).starts_with("hello, seed"));

    // Paths that tools read now name this machine's directories.
    let ci_home = w.root.join("ci-cargo-home");
    let script = dir.join("target/debug/cargo-seed-paths.gdb");
    let gdb = fs::read_to_string(&script).unwrap();
    assert!(
        gdb.contains(&format!("set substitute-path {}", ci_home.display())),
        "{gdb}"
    );
    // What the maps resolve to: every directory they map to exists here,
    // and gdb, given the script, shows itoa's source from this CARGO_HOME.
    let lldb = fs::read_to_string(dir.join("target/debug/cargo-seed-paths.lldb")).unwrap();
    for line in gdb
        .lines()
        .chain(lldb.lines())
        .filter(|l| !l.starts_with('#'))
    {
        let to = line.rsplit(' ').next().unwrap();
        assert!(Path::new(to).is_dir(), "{line}");
    }
    let listed = ok(command("gdb", &w.root).args([
        "-batch",
        "-x",
        script.to_str().unwrap(),
        "-ex",
        "list itoa::Buffer::new",
        "-ex",
        "info source",
        dir.join("target/debug/app").to_str().unwrap(),
    ]));
    let listed = text(&listed.stdout) + &text(&listed.stderr);
    assert!(listed.contains("pub fn new() -> Buffer"), "{listed}");
    // Read from this machine's CARGO_HOME, not CI's (which, on this one
    // machine, exists too).
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cargo"));
    assert!(
        listed.contains(&format!("Located in {}/registry/src/", home.display())),
        "{listed}"
    );
    let profile_dir = dir.join("target/debug");
    let outputs = output_dirs(&profile_dir);
    assert!(!outputs.is_empty());
    for entry in outputs
        .iter()
        .flat_map(|d| fs::read_dir(profile_dir.join(d)).unwrap())
    {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "d") {
            let d = fs::read_to_string(&path).unwrap();
            assert!(
                !d.contains(&*ci_home.to_string_lossy()),
                "{}: {d}",
                path.display()
            );
            assert!(
                !d.contains(&*w.ci.to_string_lossy()),
                "{}: {d}",
                path.display()
            );
        }
    }
}

#[test]
fn a_later_commit_rebuilds_exactly_the_changed_member_and_its_dependents() {
    let w = world();
    let dir = w.clone_at(&w.commits.greet_changed);
    seeded(&seed(
        &dir,
        &["--store", w.store_arg(), "--commit", &w.commits.base],
    ));
    let build = cargo_build(&dir);
    assert_compiled(&build, &["app", "greet"]);
    assert!(run_app(&dir).starts_with("hi there, seed"));
}

#[test]
fn a_fingerprint_that_cannot_be_reproduced_is_rebuilt_with_its_dependents() {
    let w = world();
    let store = w.store_copy("tampered");
    World::edit_manifest(&store, &w.commits.base, |m| {
        for u in m["units"].as_array_mut().unwrap() {
            if u["name"] == "lib itoa" {
                // One hex digit of the hash cargo wrote: the recorded fields no
                // longer hash to it.
                let hash = u["fingerprint"]["hash"].as_str().unwrap().to_owned();
                let flipped = if hash.starts_with('0') { "1" } else { "0" };
                u["fingerprint"]["hash"] = format!("{flipped}{}", &hash[1..]).into();
            }
        }
    });

    let dir = w.clone_at(&w.commits.base);
    let said = seeded(&seed(&dir, &["--store", store.to_str().unwrap()]));
    assert!(
        said.contains("cannot reproduce its fingerprint hash"),
        "{said}"
    );
    let build = cargo_build(&dir);
    assert_compiled(&build, &["app", "greet", "itoa"]);
    assert_eq!(
        build.fresh,
        sorted(&["gen", "memchr", "shout"]),
        "{}",
        build.stderr
    );
    assert!(run_app(&dir).starts_with("hello, seed"));
}

/// The options hash in the header of each session of `krate` under `dir`.
fn session_hashes(dir: &std::path::Path, krate: &str) -> Vec<(String, [u8; 8])> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir.join("target/debug/incremental")).unwrap() {
        let crate_dir = entry.unwrap().path();
        let name = crate_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !name.starts_with(&format!("{krate}-")) {
            continue;
        }
        for session in cargo_seed::rustc::incremental::sessions(&crate_dir) {
            let header = cargo_seed::rustc::incremental::read_header(&session)
                .unwrap()
                .unwrap();
            let sname = session
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push((sname, header.options_hash));
        }
    }
    out.sort();
    out
}

#[test]
fn incremental_state_is_relocated_so_rustc_accepts_it() {
    let w = world();
    let dir = w.clone_at(&w.commits.greet_changed);
    // Compiling through the wrapper, as `cargo seed setup` makes it.
    let wrapped = &[("RUSTC_WRAPPER", Some(BIN))];
    let said = seeded(&seed_env(
        &dir,
        &["--store", w.store_arg(), "--commit", &w.commits.base],
        wrapped,
    ));
    assert!(
        said.contains("incremental state relocated for 5 of 5 crates"),
        "{said}"
    );

    // CI's sessions for `greet` carry the hash of CI's working directory;
    // the restored copy of the one the current build uses was rewritten.
    // (The other is from CI's earlier `--features greet/extra` build.)
    let ci = session_hashes(&w.ci, "greet");
    let restored = session_hashes(&dir, "greet");
    let rewritten: Vec<_> = restored
        .iter()
        .filter(|(name, hash)| ci.iter().any(|(n, h)| n == name && h != hash))
        .collect();
    assert_eq!(rewritten.len(), 1, "ci {ci:?}, restored {restored:?}");

    // rustc now compiles the changed crate here and writes a new session: its
    // header is what rustc compares a previous session's with before loading
    // it, and it must be exactly what cargo-seed wrote.
    let build = cargo_build_env(&dir, wrapped);
    assert_compiled(&build, &["app", "greet"]);
    let after = session_hashes(&dir, "greet");
    let new: Vec<_> = after.iter().filter(|s| !restored.contains(s)).collect();
    assert_eq!(new.len(), 1, "{after:?}");
    assert_eq!(
        new[0].1, rewritten[0].1,
        "rustc expects another options hash than cargo-seed wrote"
    );
    assert!(run_app(&dir).starts_with("hi there, seed"));
}
