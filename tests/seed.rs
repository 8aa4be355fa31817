//! End to end on a local store: CI publishes, a developer's fresh clone at
//! another absolute path seeds, and `cargo build -v` must agree that exactly
//! the right units are fresh.

mod common;

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use common::*;

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::create)
}

const WORKSPACE: [&str; 4] = ["app", "gen", "greet", "shout"];
const REGISTRY: [&str; 2] = ["itoa", "memchr"];

fn stderr(out: &std::process::Output) -> String {
    text(&out.stderr)
}

fn assert_seeded(out: &std::process::Output) {
    assert!(out.status.success(), "cargo seed failed:\n{}", stderr(out));
}

#[test]
fn same_commit_compiles_nothing() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    let out = seed(&dir, &["--store", w.store_arg()]);
    assert_seeded(&out);
    assert!(
        stderr(&out).contains(&w.commits.base[..12]),
        "{}",
        stderr(&out)
    );

    let build = cargo_build(&dir);
    assert!(
        build.compiled.is_empty(),
        "compiled {:?}\n{}",
        build.compiled,
        build.stderr
    );
    assert_eq!(build.ran_build_scripts, 0, "{}", build.stderr);
    let mut all: Vec<&str> = WORKSPACE.to_vec();
    all.extend(REGISTRY);
    assert_eq!(build.fresh, sorted(&all), "{}", build.stderr);
    assert_eq!(
        run_app(&dir),
        "hello, seed (v1)\ngenerated: from the build script\nshout: QUIET!\ncount: 4\n"
    );
}

#[test]
fn older_snapshot_by_commit_rebuilds_the_changed_member_and_its_dependents() {
    let w = world();
    let dir = w.clone_at(&w.commits.greet_changed);
    let out = seed(
        &dir,
        &["--store", w.store_arg(), "--commit", &w.commits.base],
    );
    assert_seeded(&out);
    assert!(
        stderr(&out).contains(&w.commits.base[..12]),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("lib greet: src/lib.rs changed"),
        "{}",
        stderr(&out)
    );

    let build = cargo_build(&dir);
    assert_compiled(&build, &["app", "greet"]);
    assert_eq!(build.fresh, sorted(&["gen", "itoa", "memchr", "shout"]));
    assert!(run_app(&dir).starts_with("hi there, seed"));
}

/// Where `store` keeps the blob with this digest.
fn blob_path(store: &Path, sha: &str) -> std::path::PathBuf {
    store
        .join("blobs")
        .join(&sha[..2])
        .join(format!("{sha}.zst"))
}

/// A `--force` seed over a build dir an earlier seed filled keeps the units
/// that are still exactly as unpacked, and fetches the others. Shown with
/// stores that lack the kept units' blobs: the seed can only succeed by
/// taking them from the build dir. A unit with a file changed since the
/// earlier seed (same size, later mtime) is not kept: without its blob the
/// seed fails, with it the file is fetched again.
#[test]
fn force_keeps_units_the_build_dir_holds_unchanged_and_fetches_changed_ones() {
    let w = world();
    let dir = w.clone_at(&w.commits.greet_changed);
    assert_seeded(&seed(
        &dir,
        &["--store", w.store_arg(), "--commit", &w.commits.base],
    ));
    assert_compiled(&cargo_build(&dir), &["app", "greet"]);

    // The units the two snapshots share (same id, same blob): the build
    // dir holds them as that seed unpacked them. Every other unit of the
    // newer snapshot has a blob of its own, which stays in the stores.
    // (Incremental state is not fetched at all here: cargo does not compile
    // through the wrapper as CI did.)
    let units = |commit: &str| -> Vec<(String, String, String)> {
        World::manifest(&w.store, commit)["units"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["kind"] != "incremental")
            .map(|u| {
                let field = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
                (
                    field(&u["id"]),
                    field(&u["name"]),
                    field(&u["blob"]["sha256"]),
                )
            })
            .collect()
    };
    let older = units(&w.commits.base);
    let (shared, other): (Vec<_>, Vec<_>) = units(&w.commits.greet_changed)
        .into_iter()
        .partition(|u| older.contains(u));
    let names: Vec<&str> = shared.iter().map(|(_, name, _)| name.as_str()).collect();
    assert!(names.contains(&"lib itoa"), "{names:?}");
    assert!(
        shared
            .iter()
            .all(|(_, _, sha)| other.iter().all(|o| o.2 != *sha)),
        "a shared blob is also another unit's: {names:?}"
    );
    let without = |name: &str, keep: Option<&str>| {
        let store = w.store_copy(name);
        for (_, unit, sha) in &shared {
            if Some(unit.as_str()) != keep {
                fs::remove_file(blob_path(&store, sha)).unwrap();
            }
        }
        store
    };

    // itoa's rlib changes after the seed: one byte, same size, one second
    // later than the seed stamped it.
    let (itoa_id, _, itoa_sha) = shared.iter().find(|u| u.1 == "lib itoa").unwrap();
    let hash = itoa_id.rsplit('-').next().unwrap();
    let profile_dir = dir.join("target/debug");
    let rlib = profile_dir.join(unit_output(
        &profile_dir,
        &format!("libitoa-{hash}"),
        ".rlib",
    ));
    let original = fs::read(&rlib).unwrap();
    let stamped = fs::metadata(&rlib).unwrap().modified().unwrap();
    let mut changed = original.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 1;
    fs::write(&rlib, &changed).unwrap();
    fs::File::options()
        .write(true)
        .open(&rlib)
        .unwrap()
        .set_modified(stamped + std::time::Duration::from_secs(1))
        .unwrap();
    let before = tree_listing(&dir.join("target"));

    // No shared blob at all: itoa has to be fetched, and cannot be.
    let none = without("force-none-shared", None);
    let out = seed(&dir, &["--store", none.to_str().unwrap(), "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&itoa_sha[..12]), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert_same_tree(&before, &tree_listing(&dir.join("target")));

    // Only itoa's: the others come from the build dir, itoa from the store.
    let only_itoa = without("force-only-itoa", Some("lib itoa"));
    let out = seed(&dir, &["--store", only_itoa.to_str().unwrap(), "--force"]);
    assert_seeded(&out);
    let said = stderr(&out);
    assert!(said.contains(&w.commits.greet_changed[..12]), "{said}");
    assert!(
        said.contains(&format!(
            ", {} units kept from the build dir",
            shared.len() - 1
        )),
        "{said}"
    );
    assert!(
        fs::read(&rlib).unwrap() == original,
        "itoa's rlib was not fetched again"
    );
    assert_nothing_compiles(&dir, "hi there, seed");
}

#[test]
fn build_script_input_change_reruns_the_build_script() {
    let w = world();
    // The nearest snapshot is one commit back, before the input changed.
    let dir = w.clone_at(&w.commits.data_changed);
    let out = seed(&dir, &["--store", w.store_arg()]);
    assert_seeded(&out);
    assert!(stderr(&out).contains("(distance 1"), "{}", stderr(&out));

    let build = cargo_build(&dir);
    assert_eq!(build.ran_build_scripts, 1, "{}", build.stderr);
    assert_compiled(&build, &["app", "gen"]);
    assert!(run_app(&dir).contains("generated: regenerated\n"));
}

#[test]
fn uncommitted_edit_older_than_the_snapshot_is_rebuilt() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    let file = dir.join("shout/src/lib.rs");
    edit(&file, "{word}!", "{word}!!");
    // Older than anything restored: cargo's mtime check alone would miss it.
    backdate(&file);
    let out = seed(&dir, &["--store", w.store_arg()]);
    assert_seeded(&out);

    let build = cargo_build(&dir);
    assert_compiled(&build, &["app", "shout"]);
    assert!(run_app(&dir).contains("shout: QUIET!!\n"));
}

#[test]
fn dry_run_says_what_would_happen_and_changes_nothing() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    edit(&dir.join("greet/src/lib.rs"), "hello, ", "hey, ");
    let out = seed(&dir, &["--store", w.store_arg(), "--dry-run"]);
    assert_seeded(&out);
    let said = text(&out.stdout);
    assert!(
        said.contains("rebuild lib greet: src/lib.rs changed"),
        "{said}"
    );
    assert!(
        said.contains("rebuild bin app: depends on lib greet"),
        "{said}"
    );
    assert!(!dir.join("target").exists());
}

#[test]
fn publish_keeps_only_the_current_build_and_stores_unchanged_units_once() {
    let w = world();
    let base = World::manifest(&w.store, &w.commits.base);
    let next = World::manifest(&w.store, &w.commits.greet_changed);
    let units = |m: &serde_json::Value| -> Vec<(String, String, String)> {
        m["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                let s = |k: &str| u[k].as_str().unwrap().to_owned();
                (
                    s("id"),
                    s("name"),
                    u["blob"]["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (base, next) = (units(&base), units(&next));

    // The build with `greet/extra` left units behind; none was published.
    assert!(!w.leftovers.is_empty());
    for (id, name, _) in &base {
        assert!(
            !w.leftovers.contains(id),
            "leftover {name} ({id}) was published"
        );
    }
    let ci_units = fingerprint_dirs(&w.ci.join("target/debug"));
    let published = base
        .iter()
        .filter(|(id, ..)| !id.starts_with("incremental/"))
        .count();
    assert!(published < ci_units.len());

    // Publishing the next commit stored only the units that changed.
    let mut changed: Vec<&str> = next
        .iter()
        .filter(|n| !base.iter().any(|b| b.2 == n.2))
        .map(|n| n.1.as_str())
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            "bin app",
            "incremental app",
            "incremental greet",
            "lib greet"
        ],
        "publish output:\n{}",
        w.publish_greet
    );
    let mut blobs = 0;
    for dir in fs::read_dir(w.store.join("blobs")).unwrap() {
        blobs += fs::read_dir(dir.unwrap().path()).unwrap().count();
    }
    assert_eq!(blobs, base.len() + changed.len());
    assert!(w
        .publish_greet
        .contains(&format!("{} new blobs", changed.len())));
}

/// cargo-seed as rustc wrapper, as `cargo seed setup` makes it.
const WRAPPED: &[(&str, Option<&str>)] = &[("RUSTC_WRAPPER", Some(BIN))];

/// The blob of `unit` (by name) in `commit`'s manifest of `store` that
/// `other`'s manifest does not hold: a seed from `other` cannot have left
/// it in a build dir. (A crate can have several incremental dirs, one of
/// them CI's leftover from a build with other features.)
fn blob_of(store: &Path, commit: &str, unit: &str, other: &str) -> std::path::PathBuf {
    let held = referenced(&World::manifest(store, other));
    let m = World::manifest(store, commit);
    let sha = m["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["name"] == unit)
        .map(|u| u["blob"]["sha256"].as_str().unwrap())
        .find(|sha| !held.contains(*sha))
        .unwrap();
    blob_path(store, sha)
}

#[test]
fn bad_stores_fail_clearly_and_leave_the_build_dir_as_it_was() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    assert_seeded(&seed_env(&dir, &["--store", w.store_arg()], WRAPPED));
    assert!(cargo_build(&dir).compiled.is_empty());
    let before = tree_listing(&dir.join("target"));
    // The other snapshot's incremental state for `greet` differs from what
    // the build dir holds, so seeding it must fetch that blob (and it is
    // fetched where cargo compiles through the wrapper, as CI did).
    let target = w.commits.greet_changed.as_str();
    let victim = "incremental greet";

    // A flipped byte.
    let damaged = w.store_copy("damaged");
    let blob = blob_of(&damaged, target, victim, &w.commits.base);
    let mut bytes = fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&blob, bytes).unwrap();
    let out = seed_env(
        &dir,
        &[
            "--store",
            damaged.to_str().unwrap(),
            "--force",
            "--commit",
            target,
        ],
        WRAPPED,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not match its digest"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    assert_same_tree(&before, &tree_listing(&dir.join("target")));

    // A missing blob.
    let missing = w.store_copy("missing");
    fs::remove_file(blob_of(&missing, target, victim, &w.commits.base)).unwrap();
    let out = seed_env(
        &dir,
        &[
            "--store",
            missing.to_str().unwrap(),
            "--force",
            "--commit",
            target,
        ],
        WRAPPED,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert_same_tree(&before, &tree_listing(&dir.join("target")));

    // Blobs whose digest is right but whose tar escapes the target dir, or
    // plants a file of another unit (a fresh-looking output of a unit that
    // must be rebuilt).
    let planted = unit_output(&w.ci.join("target/debug"), "libgreet-", ".rlib");
    let planted = planted.to_str().unwrap();
    for (case, entry) in [("escape", "../../../escaped"), ("plant", planted)] {
        let hostile = w.store_copy(&format!("hostile-{case}"));
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..entry.len()].copy_from_slice(entry.as_bytes());
        h.set_size(4);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, &b"evil"[..]).unwrap();
        let tar = tar.into_inner().unwrap();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        let sha = cargo_seed::digest::sha256_hex(&zst);
        let blob_dir = hostile.join("blobs").join(&sha[..2]);
        fs::create_dir_all(&blob_dir).unwrap();
        fs::write(blob_dir.join(format!("{sha}.zst")), &zst).unwrap();
        World::edit_manifest(&hostile, target, |m| {
            for u in m["units"].as_array_mut().unwrap() {
                if u["name"] == victim {
                    u["blob"] = serde_json::json!({"sha256": sha, "size": zst.len(), "unpacked": tar.len()});
                }
            }
        });
        let out = seed_env(
            &dir,
            &[
                "--store",
                hostile.to_str().unwrap(),
                "--force",
                "--commit",
                target,
            ],
            WRAPPED,
        );
        assert_eq!(out.status.code(), Some(1), "{case}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("rejected entry"),
            "{case}: {}",
            stderr(&out)
        );
        for up in [
            dir.join("target"),
            dir.clone(),
            dir.parent().unwrap().to_owned(),
        ] {
            assert!(!up.join("escaped").exists());
        }
        assert_same_tree(&before, &tree_listing(&dir.join("target")));
    }

    // No staging directory is left behind, and the build still works.
    let leftovers: Vec<_> = fs::read_dir(dir.join("target"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".cargo-seed-staging") || n.starts_with(".cargo-seed-old"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(cargo_build(&dir).compiled.is_empty());
}

#[test]
fn existing_build_state_needs_force() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    assert_seeded(&seed(&dir, &["--store", w.store_arg()]));
    let before = tree_listing(&dir.join("target"));
    let out = seed(&dir, &["--store", w.store_arg()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_same_tree(&before, &tree_listing(&dir.join("target")));

    // Outputs without fingerprints are build state too (an aborted build).
    let other = w.clone_at(&w.commits.base);
    fs::create_dir_all(other.join("target/debug/deps")).unwrap();
    fs::write(other.join("target/debug/deps/libmine.rlib"), "mine").unwrap();
    let out = seed(&other, &["--store", w.store_arg()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(
        fs::read(other.join("target/debug/deps/libmine.rlib")).unwrap(),
        b"mine"
    );
}

#[test]
fn a_swap_cut_short_by_a_crash_is_undone_by_the_next_seed() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    assert_seeded(&seed(&dir, &["--store", w.store_arg()]));
    let before = tree_listing(&dir.join("target/debug"));
    // What a seed killed between its two renames leaves: the user's profile
    // dir moved aside and nothing in its place.
    fs::rename(
        dir.join("target/debug"),
        dir.join("target/.cargo-seed-old.debug.4242"),
    )
    .unwrap();
    let out = seed(&dir, &["--store", w.store_arg()]);
    assert!(stderr(&out).contains("Recovered"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_same_tree(&before, &tree_listing(&dir.join("target/debug")));
    assert!(cargo_build(&dir).compiled.is_empty());
}

#[test]
fn no_usable_snapshot_has_its_own_exit_code_and_says_why() {
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    let empty = w.root.join("empty-store");
    let out = seed(&dir, &["--store", empty.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no usable snapshot"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("hint: build normally"),
        "{}",
        stderr(&out)
    );

    // A snapshot from another toolchain is skipped, and the reason is named.
    // (Stored under the name that toolchain's snapshot has.)
    let other = w.store_copy("other-toolchain");
    let old_version = "rustc 1.80.0 (051478957 2024-07-21)";
    World::edit_manifest(&other, &w.commits.base, |m| {
        m["toolchain"]["verbose_version"] = old_version.into();
        m["toolchain"]["release"] = "1.80.0".into();
    });
    let path = World::manifest_path(&other, &w.commits.base);
    let name = path.file_name().unwrap().to_str().unwrap();
    let (prefix, _) = name.rsplit_once('-').unwrap();
    let key = cargo_seed::digest::short_digest(old_version.as_bytes());
    fs::rename(&path, path.with_file_name(format!("{prefix}-{key}.json"))).unwrap();
    let out = seed(
        &dir,
        &[
            "--store",
            other.to_str().unwrap(),
            "--commit",
            &w.commits.base,
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("toolchain `rustc 1.80.0"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("target").exists());

    let out = seed(&dir, &["list", "--store", other.to_str().unwrap()]);
    assert!(out.status.success());
    let listing = text(&out.stdout);
    assert!(listing.contains("no: toolchain `rustc 1.80.0"), "{listing}");
}

#[test]
fn list_shows_reachable_snapshots_nearest_first() {
    let w = world();
    let dir = w.clone_at(&w.commits.data_changed);
    let out = seed(&dir, &["list", "--store", w.store_arg()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = text(&out.stdout);
    // One row per snapshot; an indented line under it says what it covers.
    let rows: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .collect();
    assert_eq!(rows.len(), 2, "{listing}");
    assert!(listing.contains("covers: build --profile dev"), "{listing}");
    assert!(
        rows[0].starts_with(&w.commits.greet_changed[..12]),
        "{listing}"
    );
    assert!(rows[1].starts_with(&w.commits.base[..12]), "{listing}");
    assert!(
        rows[0].contains(" 1 ") && rows[1].contains(" 2 "),
        "{listing}"
    );
    assert!(rows.iter().all(|r| r.ends_with("yes")), "{listing}");
}

#[test]
fn a_failing_disk_write_leaves_the_build_dir_as_it_was() {
    use std::os::unix::process::CommandExt;
    let w = world();
    let dir = w.clone_at(&w.commits.base);
    assert_seeded(&seed(&dir, &["--store", w.store_arg()]));
    let before = tree_listing(&dir.join("target"));

    // A 1 MiB file-size limit: writing a larger restored file fails like a
    // full disk does, with an error from write(2). Copying the units the
    // build dir already holds fails first, then fetching them does.
    let mut cmd = command(BIN, &dir);
    cmd.args(["seed", "--store", w.store_arg(), "--force"]);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("failed to write"), "{}", stderr(&out));
    assert_same_tree(&before, &tree_listing(&dir.join("target")));
    assert!(cargo_build(&dir).compiled.is_empty());
}

#[test]
fn a_crate_that_embeds_its_manifest_dir_is_rebuilt_at_another_path() {
    let w = world();
    let origin = w.root.join("baked-origin");
    fs::create_dir_all(origin.join("src")).unwrap();
    fs::write(
        origin.join("Cargo.toml"),
        "[package]\nname = \"where\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(
        origin.join("src/main.rs"),
        "fn main() { println!(\"{}\", env!(\"CARGO_MANIFEST_DIR\")); }\n",
    )
    .unwrap();
    fs::write(origin.join(".gitignore"), "/target\n").unwrap();
    git(&origin, &["init", "-q"]);
    git(&origin, &["add", "-A"]);
    git(&origin, &["commit", "-qm", "where am I"]);
    let store = w.root.join("baked-store");
    let store = store.to_str().unwrap();
    let ci = w.root.join("baked-ci");
    git(
        &w.root,
        &[
            "clone",
            "-q",
            origin.to_str().unwrap(),
            ci.to_str().unwrap(),
        ],
    );
    ok(command("cargo", &ci).args(["build"]));
    ok(command("cargo", &ci).args(["seed", "publish", "--store", store]));

    let dev = w.root.join("baked-dev/elsewhere");
    git(
        &w.root,
        &[
            "clone",
            "-q",
            origin.to_str().unwrap(),
            dev.to_str().unwrap(),
        ],
    );
    let out = seed(&dev, &["--store", store]);
    assert_seeded(&out);
    assert!(
        stderr(&out).contains("embeds env!(\"CARGO_MANIFEST_DIR\")"),
        "{}",
        stderr(&out)
    );
    let build = cargo_build(&dev);
    assert_eq!(build.compiled, vec!["where".to_owned()], "{}", build.stderr);
    let printed = text(&ok(&mut command(dev.join("target/debug/where"), &dev)).stdout);
    assert_eq!(printed.trim(), dev.to_str().unwrap());
}
