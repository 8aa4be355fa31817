//! A store is untrusted input: each test plays an attacker who can write to
//! the store, against a developer's clone that already holds seeded build
//! state. Whatever the store says, nothing outside the build dir changes (a
//! guard directory, listed with digests, stays identical), no program it
//! names runs, and a refused seed leaves the build dir byte-identical.

#[path = "../common/mod.rs"]
mod common;

mod bounds;
mod replay;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::*;
use serde_json::{json, Value};

fn world() -> &'static World {
    // CI records rustc's command lines (RUSTC_WRAPPER), as the replay needs,
    // and builds under another CARGO_HOME, as CI machines do.
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World::create_in("hostile-tests", Some("ci-home")))
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

/// A clone seeded from the honest store, a guard directory beside it, and
/// a copy of the store for the attacker.
struct Victim {
    dir: PathBuf,
    guard: PathBuf,
    store: PathBuf,
}

impl Victim {
    fn new(case: &str) -> Victim {
        let w = world();
        let dir = w.clone_at(&w.commits.base);
        let out = seed(&dir, &["--store", w.store_arg()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let guard = w.root.join(format!("guard-{case}"));
        fs::create_dir_all(&guard).unwrap();
        fs::write(guard.join("victim"), "the developer's file\n").unwrap();
        Victim {
            dir,
            guard,
            store: w.store_copy(case),
        }
    }

    fn edit(&self, edit: impl FnOnce(&mut Value)) {
        World::edit_manifest(&self.store, &world().commits.base, edit);
    }

    /// `cargo seed --force` from the hostile store.
    /// Seeds as a developer whose cargo compiles through cargo-seed, as
    /// CI's did: the recorded command lines are then replayed.
    fn seed(&self) -> Output {
        seed_env(
            &self.dir,
            &[
                "--store",
                self.store.to_str().unwrap(),
                "--force",
                "--commit",
                &world().commits.base,
            ],
            &[("RUSTC_WRAPPER", Some(BIN))],
        )
    }

    /// Seeds from the hostile store and asserts the seed is refused with
    /// `code` and one error line containing `says`, and that neither the
    /// build dir nor the guard changed.
    fn assert_refused(&self, code: i32, says: &str) {
        let (target, guard) = (
            tree_listing(&self.dir.join("target")),
            tree_listing(&self.guard),
        );
        let out = self.seed();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(err.contains(says), "expected {says:?} in:\n{err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{err}"
        );
        assert_same_tree(&target, &tree_listing(&self.dir.join("target")));
        assert_same_tree(&guard, &tree_listing(&self.guard));
        // The build state is still whole: cargo reuses all of it.
        assert_nothing_compiles(&self.dir, "hello, seed (v1)");
    }
}

/// The manifest's unit named `name` (`lib greet`, `bin app`…).
fn unit<'a>(m: &'a mut Value, name: &str) -> &'a mut Value {
    m["units"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no unit {name}"))
}

/// The id of the manifest's unit named `name`.
fn id_of(manifest: &Value, name: &str) -> String {
    manifest["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no unit {name}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Appends to the recorded rustc command of every unit that has one.
fn add_rustc_args(m: &mut Value, extra: &[&str]) -> usize {
    let mut n = 0;
    for u in m["units"].as_array_mut().unwrap() {
        let recorded = u.get_mut("rustc").and_then(|r| r.get_mut("args"));
        if let Some(args) = recorded.and_then(Value::as_array_mut) {
            args.extend(extra.iter().map(|a| json!(a)));
            n += 1;
        }
    }
    n
}

/// A program that leaves a mark in the guard directory if it ever runs.
fn trap(guard: &Path) -> PathBuf {
    let script = guard.join("linker.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\ntouch {}/pwned\n", guard.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn recorded_rustc_arguments_never_run_a_program() {
    let v = Victim::new("linker");
    let script = trap(&v.guard);
    let script = script.to_str().unwrap();
    let wrapper = format!("link-arg=/bin/sh,-c,touch {}/pwned", v.guard.display());
    v.edit(|m| {
        let n = add_rustc_args(
            m,
            &[
                "-C",
                &format!("linker={script}"),
                "--codegen",
                &format!("linker={script}"),
                "-C",
                "link-arg=-wrapper",
                "-C",
                &wrapper,
            ],
        );
        assert!(n > 0, "CI recorded no rustc command line");
    });
    let guard = tree_listing(&v.guard);
    let out = v.seed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!v.guard.join("pwned").exists(), "a recorded linker ran");
    assert_same_tree(&guard, &tree_listing(&v.guard));
    assert_nothing_compiles(&v.dir, "hello, seed (v1)");
}

#[test]
fn a_recorded_output_path_refuses_the_replay() {
    let v = Victim::new("emit");
    let evil = v.guard.join("evil");
    v.edit(|m| {
        add_rustc_args(m, &[&format!("--emit=link={}", evil.display())]);
    });
    let guard = tree_listing(&v.guard);
    let out = v.seed();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("names an output path"), "{err}");
    assert!(!evil.exists(), "rustc wrote where the store said");
    assert_same_tree(&guard, &tree_listing(&v.guard));
    assert_nothing_compiles(&v.dir, "hello, seed (v1)");
}

#[test]
fn a_fingerprint_file_outside_its_unit_is_rejected() {
    let v = Victim::new("fp-file");
    let victim = v.guard.join("victim");
    v.edit(|m| {
        unit(m, "lib itoa")["fingerprint"]["file"] = json!(victim.to_str().unwrap());
    });
    v.assert_refused(3, "is not a plain file name");
}

#[test]
fn a_unit_id_that_climbs_out_is_rejected() {
    let v = Victim::new("unit-id");
    v.edit(|m| unit(m, "lib itoa")["id"] = json!("../../../../x"));
    v.assert_refused(3, "is not one cargo makes");
}

#[test]
fn a_newline_in_a_recorded_path_is_rejected() {
    let v = Victim::new("newline");
    v.edit(|m| {
        let root = m["workspace_root"].as_str().unwrap().to_owned();
        m["workspace_root"] = json!(format!("{root}\nshell touch /tmp/pwned"));
    });
    v.assert_refused(3, "control character");
}

#[test]
fn a_symlink_into_another_unit_is_rejected() {
    let v = Victim::new("symlink");
    let manifest = World::manifest(&v.store, &world().commits.base);
    let (greet, shout) = (
        id_of(&manifest, "lib greet"),
        id_of(&manifest, "proc-macro shout"),
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    // greet's fingerprint directory, a link to shout's, in the layout the
    // snapshot was built in. In the per-unit one, shout's directory is only
    // reached through `..`, which is refused on the link itself.
    let (link_at, target, refused) = match manifest["layout"].as_str() {
        Some("per-unit") => {
            let hash = |id: &str| id.rsplit_once('-').unwrap().1.to_owned();
            (
                format!("build/greet/{}/fingerprint", hash(&greet)),
                format!("../../shout/{}/fingerprint", hash(&shout)),
                "a symlink that may leave the target dir",
            )
        }
        _ => (
            format!(".fingerprint/{greet}"),
            shout.clone(),
            "a path through a symlink",
        ),
    };
    tar.append_link(&mut link, &link_at, &target).unwrap();
    let mut file = tar::Header::new_gnu();
    file.set_size(4);
    file.set_mode(0o644);
    tar.append_data(&mut file, format!("{link_at}/lib-shout"), &b"evil"[..])
        .unwrap();
    let blob = put_blob(&v.store, &tar.into_inner().unwrap());
    v.edit(|m| unit(m, "lib greet")["blob"] = blob);
    v.assert_refused(1, refused);
}

#[test]
fn two_units_with_one_hash_are_rejected() {
    let v = Victim::new("same-hash");
    v.edit(|m| {
        let shout = unit(m, "proc-macro shout")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, hash) = shout.rsplit_once('-').unwrap();
        unit(m, "lib greet")["id"] = json!(format!("greet-{hash}"));
    });
    v.assert_refused(3, "share the hash");
}

#[test]
fn a_workspace_unit_cannot_opt_out_of_its_content_check() {
    let v = Victim::new("check-none");
    edit(&v.dir.join("greet/src/lib.rs"), "hello, ", "edited here, ");
    v.edit(|m| unit(m, "lib greet")["check"] = json!("none"));
    v.assert_refused_after_edit(3, "carries no content check");

    // Relabelled as a registry package, it passes validation but is named
    // like a member of this workspace: cargo-seed rebuilds it.
    let v = Victim::new("relabel");
    edit(&v.dir.join("greet/src/lib.rs"), "hello, ", "edited here, ");
    v.edit(|m| {
        let u = unit(m, "lib greet");
        u["check"] = json!("none");
        u["package_id"] =
            json!("registry+https://github.com/rust-lang/crates.io-index#greet@0.1.0");
    });
    let out = v.seed();
    assert!(out.status.success(), "{}", stderr(&out));
    let build = cargo_build(&v.dir);
    assert_compiled(&build, &["app", "greet"]);
    assert!(
        run_app(&v.dir).starts_with("edited here, seed"),
        "{}",
        run_app(&v.dir)
    );
}

impl Victim {
    /// As [`Victim::assert_refused`], for a clone whose sources were
    /// edited after its seed: the build dir stays, and cargo rebuilds
    /// exactly the edited member and its dependents.
    fn assert_refused_after_edit(&self, code: i32, says: &str) {
        let (target, guard) = (
            tree_listing(&self.dir.join("target")),
            tree_listing(&self.guard),
        );
        let out = self.seed();
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
        assert_same_tree(&target, &tree_listing(&self.dir.join("target")));
        assert_same_tree(&guard, &tree_listing(&self.guard));
        assert_compiled(&cargo_build(&self.dir), &["app", "greet"]);
    }
}

#[test]
fn input_paths_outside_the_mapped_roots_are_rejected() {
    for (case, path) in [
        ("dev-zero", "/dev/zero"),
        ("outside", "../../../../etc/passwd"),
    ] {
        let v = Victim::new(case);
        v.edit(|m| {
            unit(m, "lib greet")["check"]["inputs"]["files"][0]["path"] = json!(path);
        });
        v.assert_refused(3, "is not a plain relative path");
    }
}

#[test]
fn an_oversized_manifest_is_not_read() {
    let v = Victim::new("huge");
    let path = World::manifest_path(&v.store, &world().commits.base);
    // Sparse: 512 MiB that take no disk space.
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(512 << 20)
        .unwrap();
    v.assert_refused(3, "larger than 32");
}

#[test]
fn malformed_digests_are_rejected_before_any_key_is_built() {
    for (case, digest) in [
        ("short", "a".to_owned()),
        ("traverse", format!("../../{}", "a".repeat(58))),
    ] {
        let v = Victim::new(&format!("digest-{case}"));
        v.edit(|m| unit(m, "lib greet")["blob"]["sha256"] = json!(digest));
        v.assert_refused(3, "is not a sha256");
    }
}

#[test]
fn a_decompression_bomb_is_rejected_by_its_declared_ratio() {
    let v = Victim::new("bomb");
    v.edit(|m| {
        let blob = &mut unit(m, "lib greet")["blob"];
        blob["size"] = json!(33 << 10);
        blob["unpacked"] = json!(1u64 << 30);
    });
    v.assert_refused(3, "times its size");
}

#[test]
fn a_snapshot_larger_than_the_free_space_is_not_unpacked() {
    let v = Victim::new("no-space");
    v.edit(|m| {
        let blob = &mut unit(m, "lib greet")["blob"];
        blob["size"] = json!(1u64 << 50);
        blob["unpacked"] = json!(1u64 << 50);
    });
    v.assert_refused(1, "free");
}

#[test]
fn the_token_is_never_sent_in_clear_to_another_host() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    let out = command("cargo", &dir)
        .args(["seed", "--store", "http://seed.invalid/app"])
        .env("CARGO_SEED_TOKEN", "s3cr3t-token")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("clear text"), "{err}");
    assert!(!err.contains("s3cr3t-token"), "{err}");
    assert!(!dir.join("target").exists());
}

/// Stores a tar as a blob and returns its manifest entry.
fn put_blob(store: &Path, tar: &[u8]) -> Value {
    let zst = zstd::encode_all(tar, 3).unwrap();
    let sha = cargo_seed::digest::sha256_hex(&zst);
    let dir = store.join("blobs").join(&sha[..2]);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("{sha}.zst")), &zst).unwrap();
    json!({"sha256": sha, "size": zst.len(), "unpacked": tar.len()})
}
mod reads;
